/*
 * The metrics registry and its two renderers (Prometheus text format 0.0.4, JSON).
 *
 * Families are kept sorted by name and each family's series by label values (byte order),
 * so lookups are binary searches and rendering is a walk: the output order is stable
 * whatever order srmd fills things in.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct series {
    char *values[SRM_ADMIN_METRIC_LABELS_MAX];
    double value;
};

struct srm_admin_metric_family {
    char *name;
    char *help;
    enum srm_admin_metric_type type;
    unsigned nlabels;
    char *labels[SRM_ADMIN_METRIC_LABELS_MAX];
    size_t n, cap;
    struct series *series;
};

struct srm_admin_metrics {
    size_t n, cap;
    struct srm_admin_metric_family **families;
};

int srm_admin_metrics_new(struct srm_admin_metrics **ret_metrics)
{
    struct srm_admin_metrics *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    *ret_metrics = m;
    return 0;
}

static void series_clear(struct srm_admin_metric_family *f, struct series *s)
{
    for (unsigned i = 0; i < f->nlabels; i++)
        free(s->values[i]);
}

static void family_free(struct srm_admin_metric_family *f)
{
    if (!f)
        return;
    srm_admin_metric_clear(f);
    free(f->series);
    for (unsigned i = 0; i < f->nlabels; i++)
        free(f->labels[i]);
    free(f->name);
    free(f->help);
    free(f);
}

void srm_admin_metrics_free(struct srm_admin_metrics *metrics)
{
    if (!metrics)
        return;
    for (size_t i = 0; i < metrics->n; i++)
        family_free(metrics->families[i]);
    free(metrics->families);
    free(metrics);
}

static bool name_ok(const char *s, bool colon)
{
    if (!s || !s[0])
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool alpha =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
        if (!alpha && !(p != s && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

bool srm__admin_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned c = *p;
        size_t n;
        unsigned min;
        if (c < 0x80) {
            p++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1, min = 0x80, c &= 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2, min = 0x800, c &= 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3, min = 0x10000, c &= 0x07;
        } else {
            return false;
        }
        if ((size_t)(end - p) <= n)
            return false;
        for (size_t i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            c = (c << 6) | (p[i] & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
            return false;
        p += n + 1;
    }
    return true;
}

static size_t family_index(const struct srm_admin_metrics *m, const char *name, bool *found)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(m->families[mid]->name, name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

struct srm_admin_metric_family *srm_admin_metrics_find(const struct srm_admin_metrics *metrics,
                                                       const char *name)
{
    bool found;
    if (!metrics || !name)
        return NULL;
    size_t i = family_index(metrics, name, &found);
    return found ? metrics->families[i] : NULL;
}

int srm_admin_metrics_family(struct srm_admin_metrics *metrics, const char *name,
                             enum srm_admin_metric_type type, const char *help, unsigned nlabels,
                             const char *const *labels, struct srm_admin_metric_family **ret_family)
{
    if (!metrics || !name_ok(name, true) || !help || strchr(help, '\n') ||
        !srm__admin_utf8_valid(help, strlen(help)) || nlabels > SRM_ADMIN_METRIC_LABELS_MAX ||
        (nlabels > 0 && !labels) ||
        (type != SRM_ADMIN_METRIC_COUNTER && type != SRM_ADMIN_METRIC_GAUGE))
        return -EINVAL;
    size_t nlen = strlen(name);
    if (type == SRM_ADMIN_METRIC_COUNTER && (nlen <= 6 || strcmp(name + nlen - 6, "_total") != 0))
        return -EINVAL;
    for (unsigned i = 0; i < nlabels; i++) {
        if (!name_ok(labels[i], false) || strncmp(labels[i], "__", 2) == 0)
            return -EINVAL;
        for (unsigned j = 0; j < i; j++)
            if (strcmp(labels[i], labels[j]) == 0)
                return -EINVAL;
    }
    bool found;
    size_t at = family_index(metrics, name, &found);
    if (found) {
        struct srm_admin_metric_family *f = metrics->families[at];
        if (f->type != type || f->nlabels != nlabels)
            return -EEXIST;
        for (unsigned i = 0; i < nlabels; i++)
            if (strcmp(f->labels[i], labels[i]) != 0)
                return -EEXIST;
        if (ret_family)
            *ret_family = f;
        return 0;
    }
    if (metrics->n == metrics->cap) {
        size_t cap = metrics->cap ? metrics->cap * 2 : 16;
        void *p = realloc(metrics->families, cap * sizeof(*metrics->families));
        if (!p)
            return -ENOMEM;
        metrics->families = p;
        metrics->cap = cap;
    }
    struct srm_admin_metric_family *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    f->name = strdup(name);
    f->help = strdup(help);
    f->type = type;
    f->nlabels = nlabels;
    bool oom = !f->name || !f->help;
    for (unsigned i = 0; i < nlabels; i++) {
        f->labels[i] = strdup(labels[i]);
        oom |= !f->labels[i];
    }
    if (oom) {
        family_free(f);
        return -ENOMEM;
    }
    memmove(&metrics->families[at + 1], &metrics->families[at],
            (metrics->n - at) * sizeof(*metrics->families));
    metrics->families[at] = f;
    metrics->n++;
    if (ret_family)
        *ret_family = f;
    return 0;
}

static int values_check(const struct srm_admin_metric_family *f, const char *const *values)
{
    if (!f || (f->nlabels > 0 && !values))
        return -EINVAL;
    for (unsigned i = 0; i < f->nlabels; i++) {
        if (!values[i])
            return -EINVAL;
        size_t len = strlen(values[i]);
        if (len > SRM_ADMIN_METRIC_VALUE_MAX || !srm__admin_utf8_valid(values[i], len))
            return -EINVAL;
    }
    return 0;
}

static int series_cmp(const struct srm_admin_metric_family *f, const struct series *s,
                      const char *const *values)
{
    for (unsigned i = 0; i < f->nlabels; i++) {
        int c = strcmp(s->values[i], values[i]);
        if (c)
            return c;
    }
    return 0;
}

static size_t series_index(const struct srm_admin_metric_family *f, const char *const *values,
                           bool *found)
{
    size_t lo = 0, hi = f->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = series_cmp(f, &f->series[mid], values);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static int series_get(struct srm_admin_metric_family *f, const char *const *values,
                      struct series **ret)
{
    bool found;
    size_t at = series_index(f, values, &found);
    if (found) {
        *ret = &f->series[at];
        return 0;
    }
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        void *p = realloc(f->series, cap * sizeof(*f->series));
        if (!p)
            return -ENOMEM;
        f->series = p;
        f->cap = cap;
    }
    struct series s = {0};
    for (unsigned i = 0; i < f->nlabels; i++) {
        s.values[i] = strdup(values[i]);
        if (!s.values[i]) {
            series_clear(f, &s);
            return -ENOMEM;
        }
    }
    memmove(&f->series[at + 1], &f->series[at], (f->n - at) * sizeof(*f->series));
    f->series[at] = s;
    f->n++;
    *ret = &f->series[at];
    return 0;
}

int srm_admin_metric_set(struct srm_admin_metric_family *family, const char *const *values,
                         double value)
{
    int rc = values_check(family, values);
    if (rc < 0)
        return rc;
    if (family->type == SRM_ADMIN_METRIC_COUNTER && (isnan(value) || value < 0))
        return -EINVAL;
    struct series *s;
    rc = series_get(family, values, &s);
    if (rc < 0)
        return rc;
    s->value = value;
    return 0;
}

int srm_admin_metric_add(struct srm_admin_metric_family *family, const char *const *values,
                         double delta)
{
    int rc = values_check(family, values);
    if (rc < 0)
        return rc;
    if (isnan(delta) || (family->type == SRM_ADMIN_METRIC_COUNTER && delta < 0))
        return -EINVAL;
    struct series *s;
    rc = series_get(family, values, &s);
    if (rc < 0)
        return rc;
    s->value += delta;
    return 0;
}

int srm_admin_metric_get(const struct srm_admin_metric_family *family, const char *const *values,
                         double *ret_value)
{
    int rc = values_check(family, values);
    if (rc < 0)
        return rc;
    bool found;
    size_t at = series_index(family, values, &found);
    if (!found)
        return -ENOENT;
    *ret_value = family->series[at].value;
    return 0;
}

int srm_admin_metric_remove(struct srm_admin_metric_family *family, const char *const *values)
{
    int rc = values_check(family, values);
    if (rc < 0)
        return rc;
    bool found;
    size_t at = series_index(family, values, &found);
    if (!found)
        return -ENOENT;
    series_clear(family, &family->series[at]);
    memmove(&family->series[at], &family->series[at + 1],
            (family->n - at - 1) * sizeof(*family->series));
    family->n--;
    return 0;
}

void srm_admin_metric_clear(struct srm_admin_metric_family *family)
{
    if (!family)
        return;
    for (size_t i = 0; i < family->n; i++)
        series_clear(family, &family->series[i]);
    family->n = 0;
}

/* ---- rendering ---- */

static void format_value(double v, char *buf, size_t len)
{
    if (isnan(v))
        snprintf(buf, len, "NaN");
    else if (isinf(v))
        snprintf(buf, len, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 9007199254740992.0)
        snprintf(buf, len, "%.0f", v);
    else
        snprintf(buf, len, "%.17g", v);
}

static void put_escaped(struct srm__admin_buf *b, const char *s, bool quote)
{
    for (const char *p = s; *p; p++) {
        if (*p == '\\')
            srm__admin_buf_puts(b, "\\\\");
        else if (*p == '\n')
            srm__admin_buf_puts(b, "\\n");
        else if (quote && *p == '"')
            srm__admin_buf_puts(b, "\\\"");
        else
            srm__admin_buf_put(b, p, 1);
    }
}

int srm_admin_metrics_render_text(const struct srm_admin_metrics *metrics, char **ret_text,
                                  size_t *ret_len)
{
    struct srm__admin_buf b = {0};
    char num[64];
    for (size_t i = 0; metrics && i < metrics->n; i++) {
        const struct srm_admin_metric_family *f = metrics->families[i];
        srm__admin_buf_printf(&b, "# HELP %s ", f->name);
        put_escaped(&b, f->help, false);
        srm__admin_buf_printf(&b, "\n# TYPE %s %s\n", f->name,
                              f->type == SRM_ADMIN_METRIC_COUNTER ? "counter" : "gauge");
        for (size_t j = 0; j < f->n; j++) {
            const struct series *s = &f->series[j];
            srm__admin_buf_puts(&b, f->name);
            if (f->nlabels > 0) {
                srm__admin_buf_puts(&b, "{");
                for (unsigned k = 0; k < f->nlabels; k++) {
                    srm__admin_buf_printf(&b, "%s%s=\"", k ? "," : "", f->labels[k]);
                    put_escaped(&b, s->values[k], true);
                    srm__admin_buf_puts(&b, "\"");
                }
                srm__admin_buf_puts(&b, "}");
            }
            format_value(s->value, num, sizeof(num));
            srm__admin_buf_printf(&b, " %s\n", num);
        }
    }
    if (srm__admin_buf_terminate(&b) < 0) {
        free(b.data);
        return -ENOMEM;
    }
    *ret_len = b.len;
    *ret_text = b.data;
    return 0;
}

int srm_admin_metrics_to_json(const struct srm_admin_metrics *metrics, json_t **ret_json)
{
    json_t *fams = json_array();
    json_t *root = json_pack("{s:o}", "families", fams);
    if (!root)
        return -ENOMEM;
    for (size_t i = 0; metrics && i < metrics->n; i++) {
        const struct srm_admin_metric_family *f = metrics->families[i];
        json_t *series = json_array();
        json_t *jf = json_pack("{s:s, s:s, s:s, s:o}", "name", f->name, "type",
                               f->type == SRM_ADMIN_METRIC_COUNTER ? "counter" : "gauge", "help",
                               f->help, "series", series);
        if (!jf || json_array_append_new(fams, jf) < 0)
            goto oom;
        for (size_t j = 0; j < f->n; j++) {
            json_t *labels = json_object();
            if (!labels)
                goto oom;
            for (unsigned k = 0; k < f->nlabels; k++)
                if (json_object_set_new(labels, f->labels[k], json_string(f->series[j].values[k])) <
                    0) {
                    json_decref(labels);
                    goto oom;
                }
            double v = f->series[j].value;
            json_t *jv = isfinite(v) && v == floor(v) && fabs(v) < 9007199254740992.0
                             ? json_integer((json_int_t)v)
                         : isfinite(v) ? json_real(v)
                                       : json_null();
            json_t *js = json_pack("{s:o, s:o}", "labels", labels, "value", jv);
            if (!js || json_array_append_new(series, js) < 0)
                goto oom;
        }
    }
    *ret_json = root;
    return 0;
oom:
    json_decref(root);
    return -ENOMEM;
}

/* ---- the standard families ---- */

int srm_admin_metrics_standard(struct srm_admin_metrics *metrics,
                               struct srm_admin_std_metrics *ret_std)
{
    static const char *const node[] = {"node"};
    static const char *const node_state[] = {"node", "state"};
    static const char *const node_reason[] = {"node", "reason"};
    static const char *const node_service[] = {"node", "service"};
    const enum srm_admin_metric_type C = SRM_ADMIN_METRIC_COUNTER, G = SRM_ADMIN_METRIC_GAUGE;
    const struct {
        const char *name;
        enum srm_admin_metric_type type;
        const char *help;
        unsigned nlabels;
        const char *const *labels;
        size_t off;
    } defs[] = {
#define STD(field) offsetof(struct srm_admin_std_metrics, field)
        {"srm_node_state", G, "State of the node (SPEC §3): 1 for the current state, 0 otherwise",
         2, node_state, STD(node_state)},
        {"srm_node_reason", G, "Reason beside the node's state: 1 for the current reason", 2,
         node_reason, STD(node_reason)},
        {"srm_transitions_total", C, "State transitions of the node, by the reason entered", 2,
         node_reason, STD(transitions)},
        {"srm_failovers_total", C, "Failovers of the node (its users moved to its peer), by reason",
         2, node_reason, STD(failovers)},
        {"srm_users_assigned", G, "Users whose home node this is", 1, node, STD(users_assigned)},
        {"srm_users_active", G, "Users with an active session on the node", 1, node,
         STD(users_active)},
        {"srm_keepalives_sent_total", C, "Keepalives sent to the group peer", 1, node,
         STD(keepalives_sent)},
        {"srm_keepalives_missed_total", C,
         "Keepalive intervals that passed without one from the peer", 1, node,
         STD(keepalives_missed)},
        {"srm_critical_service_up", G, "Critical service state: 1 up, 0 down", 2, node_service,
         STD(service_up)},
        {"srm_replication_lag_entries", G, "Log entries not yet acknowledged by the peer", 1, node,
         STD(repl_lag_entries)},
        {"srm_replication_lag_bytes", G, "Bytes sent to the peer and not yet acknowledged", 1, node,
         STD(repl_lag_bytes)},
        {"srm_replication_lag_ms", G, "Age of the oldest write not yet acknowledged, milliseconds",
         1, node, STD(repl_lag_ms)},
        {"srm_replication_reconnects_total", C, "Replication links established after the first", 1,
         node, STD(repl_reconnects)},
        {"srm_replication_snapshots_sent_total", C, "Snapshots sent to the peer", 1, node,
         STD(repl_snapshots_sent)},
        {"srm_replication_snapshots_installed_total", C, "Snapshots installed from the peer", 1,
         node, STD(repl_snapshots_installed)},
        {"srm_replication_sync_degradations_total", C,
         "Times synchronous replication degraded to asynchronous", 1, node,
         STD(repl_sync_degradations)},
#undef STD
    };
    struct srm_admin_std_metrics std;
    for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++) {
        struct srm_admin_metric_family *f;
        int rc = srm_admin_metrics_family(metrics, defs[i].name, defs[i].type, defs[i].help,
                                          defs[i].nlabels, defs[i].labels, &f);
        if (rc < 0)
            return rc;
        memcpy((char *)&std + defs[i].off, &f, sizeof(f));
    }
    *ret_std = std;
    return 0;
}

int srm_admin_metrics_set_node_state(const struct srm_admin_std_metrics *std, const char *node,
                                     enum srm_fsm_state state, enum srm_fsm_reason reason)
{
    if (!std || !node || (unsigned)state >= SRM_FSM_STATE_MAX ||
        (unsigned)reason >= SRM_FSM_REASON_MAX)
        return -EINVAL;
    for (int s = 0; s < SRM_FSM_STATE_MAX; s++) {
        const char *v[] = {node, srm_fsm_state_name(s)};
        int rc = srm_admin_metric_set(std->node_state, v, s == (int)state ? 1 : 0);
        if (rc < 0)
            return rc;
    }
    for (int r = 0; r < SRM_FSM_REASON_MAX; r++) {
        const char *v[] = {node, srm_fsm_reason_name(r)};
        int rc = srm_admin_metric_set(std->node_reason, v, r == (int)reason ? 1 : 0);
        if (rc < 0)
            return rc;
    }
    return 0;
}
