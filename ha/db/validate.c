/*
 * Validation of names and texts, the parameter table, state and reason names, the
 * failed-over predicate and the assignment modes. Pure: no I/O, no allocation.
 */
#include "internal.h"

#include "srm_error.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int srm__db_err(char *errbuf, size_t errlen, int err, const char *fmt, ...)
{
    if (errbuf && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return err;
}

void srm__db_strlcpy(char *dst, const char *src, size_t dstlen)
{
    if (!dst || dstlen == 0)
        return;
    snprintf(dst, dstlen, "%s", src ? src : "");
}

/* Decodes one UTF-8 sequence at s; returns its length, or 0 if it is malformed. */
static size_t utf8_next(const unsigned char *s, uint32_t *ret_cp)
{
    uint32_t cp;
    size_t len;

    if (s[0] < 0x80) {
        *ret_cp = s[0];
        return 1;
    }
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        cp = s[0] & 0x1f;
        len = 2;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        cp = s[0] & 0x0f;
        len = 3;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        cp = s[0] & 0x07;
        len = 4;
    } else {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    /* overlong forms, surrogates, beyond U+10FFFF */
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    *ret_cp = cp;
    return len;
}

/* Names: ASCII from a set, 1..max characters. */
static int check_ascii_name(const char *what, const char *name, const char *extra, size_t max,
                            const char *allowed, char *errbuf, size_t errlen)
{
    if (!name)
        return srm__db_err(errbuf, errlen, -EINVAL, "%s is missing", what);
    size_t len = strlen(name);
    if (len == 0)
        return srm__db_err(errbuf, errlen, -EINVAL, "%s is empty; use 1 to %zu %s", what, max,
                           allowed);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  (c != 0 && strchr(extra, c));
        if (!ok) {
            if (c >= 0x20 && c < 0x7f)
                return srm__db_err(errbuf, errlen, -EINVAL,
                                   "%s \"%.*s\" has a forbidden character '%c' at offset %zu; "
                                   "use only %s",
                                   what, len > 64 ? 64 : (int)len, name, c, i, allowed);
            return srm__db_err(errbuf, errlen, -EINVAL,
                               "%s has a forbidden byte 0x%02x at offset %zu; use only %s", what, c,
                               i, allowed);
        }
    }
    if (len > max)
        return srm__db_err(errbuf, errlen, SRM_ETOOBIG,
                           "%s \"%.32s...\" is %zu characters long; the limit is %zu", what, name,
                           len, max);
    return 0;
}

int srm_db_validate_group_name(const char *name, char *errbuf, size_t errlen)
{
    return check_ascii_name("group name", name, "_-", SRM_DB_NAME_MAX,
                            "letters, digits, '_' and '-'", errbuf, errlen);
}

int srm_db_validate_node_name(const char *name, char *errbuf, size_t errlen)
{
    return check_ascii_name("node name", name, "_-.", SRM_DB_NAME_MAX,
                            "letters, digits, '_', '-' and '.'", errbuf, errlen);
}

int srm_db_validate_address(const char *address, char *errbuf, size_t errlen)
{
    return check_ascii_name("node address", address, "_.:%[]-", SRM_DB_ADDRESS_MAX,
                            "letters, digits and _.:%[]-", errbuf, errlen);
}

int srm_db_validate_user_name(const char *name, char *errbuf, size_t errlen)
{
    return check_ascii_name("user name", name, "._@+-", SRM_DB_USER_NAME_MAX,
                            "letters, digits, '.', '_', '@', '+' and '-'", errbuf, errlen);
}

/* Free text: UTF-8, at most max code points, no control character, none of `forbidden`. */
static int check_text(const char *what, const char *text, size_t max, const char *forbidden,
                      char *errbuf, size_t errlen)
{
    if (!text)
        return srm__db_err(errbuf, errlen, -EINVAL, "%s is missing", what);
    const unsigned char *s = (const unsigned char *)text;
    size_t chars = 0;
    size_t off = 0;
    while (s[off]) {
        uint32_t cp;
        size_t n = utf8_next(s + off, &cp);
        if (n == 0)
            return srm__db_err(errbuf, errlen, SRM_EBADUTF8,
                               "%s is not valid UTF-8 (at byte %zu); re-enter it as UTF-8 text",
                               what, off);
        if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0))
            return srm__db_err(errbuf, errlen, -EINVAL,
                               "%s has a control character (U+%04" PRIX32 ") at byte %zu; "
                               "remove it",
                               what, cp, off);
        if (cp < 0x80 && forbidden[0] && strchr(forbidden, (int)cp))
            return srm__db_err(errbuf, errlen, -EINVAL,
                               "%s has a forbidden character '%c' at byte %zu; "
                               "the characters %s are not allowed",
                               what, (char)cp, off, forbidden);
        off += n;
        chars++;
    }
    if (chars > max)
        return srm__db_err(errbuf, errlen, SRM_ETOOBIG,
                           "%s is %zu characters long; the limit is %zu", what, chars, max);
    return 0;
}

int srm_db_validate_description(const char *description, char *errbuf, size_t errlen)
{
    return check_text("group description", description, SRM_DB_DESCRIPTION_MAX, "\"%&\\<>", errbuf,
                      errlen);
}

int srm_db_validate_cause(const char *cause, char *errbuf, size_t errlen)
{
    return check_text("cause", cause, SRM_DB_CAUSE_MAX, "", errbuf, errlen);
}

/* ---- States and reasons (SPEC.md §3) ---- */

static const char *const state_names[] = {
    "Initializing",
    "Idle",
    "Normal",
    "Running in Backup Mode",
    "Taking Over",
    "Failing Over",
    "Failed Over",
    "Failed Over with Critical Services not Running",
    "Taking Back",
    "Falling Back",
    "Running in Failed Mode",
    "Backup Activated",
    "Failing Over Affected Services",
    "Unknown",
};

static const char *const reason_names[] = {
    "Normal",
    "Admin Request",
    "Initialization",
    "Critical Service Down",
    "Database Failure",
    "Peer Down",
    "Peer Reboot",
    "Peer Down During Initialization",
    "Critical Service Startup Failure",
    "Takeover User Failure",
    "Takeback User Failure",
    "Automatic Fallback",
    "Auto Recover Database Failure",
    "Auto Recover Critical Service Down",
    "Unknown",
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static bool in_list(const char *s, const char *const *list, size_t n)
{
    if (!s)
        return false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}

bool srm_db_state_valid(const char *state)
{
    return in_list(state, state_names, ARRAY_SIZE(state_names));
}

bool srm_db_reason_valid(const char *reason)
{
    return in_list(reason, reason_names, ARRAY_SIZE(reason_names));
}

bool srm_db_state_is_failed_over(const char *state)
{
    /* Mirrors srm_state_is_failed_over() of migrations/002_rules.sql. */
    if (!state)
        return true;
    return strcmp(state, "Normal") != 0 && strcmp(state, "Initializing") != 0;
}

/* ---- Assignment modes ---- */

static const char *const mode_names[SRM_DB_ASSIGN_MAX] = {
    [SRM_DB_ASSIGN_BALANCED] = "balanced",
    [SRM_DB_ASSIGN_ACTIVE_STANDBY] = "active-standby",
    [SRM_DB_ASSIGN_NONE] = "none",
};

const char *srm_db_assign_mode_name(enum srm_db_assign_mode mode)
{
    if ((unsigned)mode >= SRM_DB_ASSIGN_MAX)
        return NULL;
    return mode_names[mode];
}

int srm_db_assign_mode_parse(const char *name, enum srm_db_assign_mode *ret_mode, char *errbuf,
                             size_t errlen)
{
    for (int i = 0; name && i < SRM_DB_ASSIGN_MAX; i++) {
        if (strcmp(name, mode_names[i]) == 0) {
            *ret_mode = (enum srm_db_assign_mode)i;
            return 0;
        }
    }
    return srm__db_err(errbuf, errlen, -EINVAL,
                       "unknown assignment mode \"%.64s\"; use balanced, active-standby or none",
                       name ? name : "");
}

/* ---- Parameters ---- */

static const struct srm_db_param_def param_defs[SRM_DB_PARAM_MAX] = {
#define SRM__DB_PARAM_DEF(id, nm, kd, un, df, mn, mx, pn, ds)                                      \
    [SRM_DB_PARAM_##id] = {.name = nm,                                                             \
                           .kind = SRM_DB_PARAM_KIND_##kd,                                         \
                           .unit = un,                                                             \
                           .default_value = df,                                                    \
                           .min_value = mn,                                                        \
                           .max_value = mx,                                                        \
                           .per_node = pn,                                                         \
                           .description = ds},
    SRM_DB_PARAM_MAP(SRM__DB_PARAM_DEF)
#undef SRM__DB_PARAM_DEF
};

const struct srm_db_param_def *srm_db_param_def(enum srm_db_param param)
{
    if ((unsigned)param >= SRM_DB_PARAM_MAX)
        return NULL;
    return &param_defs[param];
}

int srm_db_param_lookup(const char *name, enum srm_db_param *ret_param, char *errbuf, size_t errlen)
{
    for (int i = 0; name && i < SRM_DB_PARAM_MAX; i++) {
        if (strcmp(name, param_defs[i].name) == 0) {
            *ret_param = (enum srm_db_param)i;
            return 0;
        }
    }
    char known[512] = "";
    size_t off = 0;
    for (int i = 0; i < SRM_DB_PARAM_MAX && off < sizeof(known); i++)
        off += (size_t)snprintf(known + off, sizeof(known) - off, "%s%s", i ? ", " : "",
                                param_defs[i].name);
    return srm__db_err(errbuf, errlen, -EINVAL,
                       "no parameter named \"%.64s\"; known parameters: %s", name ? name : "",
                       known);
}

static int range_error(const struct srm_db_param_def *d, int64_t v, char *errbuf, size_t errlen)
{
    if (d->kind == SRM_DB_PARAM_KIND_BOOL)
        return srm__db_err(errbuf, errlen, -ERANGE,
                           "%s = %" PRId64 " is out of range: it is a boolean (0 or 1)", d->name,
                           v);
    return srm__db_err(errbuf, errlen, -ERANGE,
                       "%s = %" PRId64 " is out of range: allowed %" PRId64 " to %" PRId64 "%s%s",
                       d->name, v, d->min_value, d->max_value, d->unit[0] ? " " : "", d->unit);
}

int srm_db_param_parse_value(enum srm_db_param param, const char *text, int64_t *ret_value,
                             char *errbuf, size_t errlen)
{
    const struct srm_db_param_def *d = srm_db_param_def(param);
    int64_t v;

    if (!d)
        return srm__db_err(errbuf, errlen, -EINVAL, "unknown parameter %d", (int)param);
    if (!text || !text[0])
        return srm__db_err(errbuf, errlen, -EINVAL, "no value given for %s", d->name);
    if (d->kind == SRM_DB_PARAM_KIND_BOOL) {
        static const char *const yes[] = {"true", "on", "yes", "1"};
        static const char *const no[] = {"false", "off", "no", "0"};
        for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
            if (strcasecmp(text, yes[i]) == 0) {
                *ret_value = 1;
                return 0;
            }
            if (strcasecmp(text, no[i]) == 0) {
                *ret_value = 0;
                return 0;
            }
        }
        return srm__db_err(errbuf, errlen, -EINVAL,
                           "%s is a boolean; \"%.32s\" is not one (use true or false)", d->name,
                           text);
    }
    char *end;
    errno = 0;
    long long ll = strtoll(text, &end, 10);
    bool sign_or_digit = (text[0] >= '0' && text[0] <= '9') || text[0] == '-' || text[0] == '+';
    if (!sign_or_digit || end == text || *end != '\0' || errno == ERANGE)
        return srm__db_err(errbuf, errlen, -EINVAL,
                           "%s takes a whole number%s%s; \"%.32s\" is not one", d->name,
                           d->unit[0] ? " of " : "", d->unit[0] ? "seconds" : "", text);
    v = ll;
    if (v < d->min_value || v > d->max_value)
        return range_error(d, v, errbuf, errlen);
    *ret_value = v;
    return 0;
}

void srm_db_params_defaults(int64_t values[SRM_DB_PARAM_MAX])
{
    for (int i = 0; i < SRM_DB_PARAM_MAX; i++)
        values[i] = param_defs[i].default_value;
}

int srm_db_params_check(const int64_t values[SRM_DB_PARAM_MAX], char *errbuf, size_t errlen)
{
    for (int i = 0; i < SRM_DB_PARAM_MAX; i++)
        if (values[i] < param_defs[i].min_value || values[i] > param_defs[i].max_value)
            return range_error(&param_defs[i], values[i], errbuf, errlen);

    /* Mirrors srm_params_check() of migrations/002_rules.sql, same messages. */
    int64_t ki = values[SRM_DB_PARAM_KEEPALIVE_INTERVAL];
    int64_t kt = values[SRM_DB_PARAM_KEEPALIVE_TIMEOUT];
    int64_t it = values[SRM_DB_PARAM_INIT_KEEPALIVE_TIMEOUT];
    if (kt < 2 * ki)
        return srm__db_err(errbuf, errlen, -ERANGE,
                           "keepalive_timeout (%" PRId64 " s) must be at least twice "
                           "keepalive_interval (%" PRId64 " s); raise keepalive_timeout or lower "
                           "keepalive_interval first",
                           kt, ki);
    if (it < 2 * ki)
        return srm__db_err(errbuf, errlen, -ERANGE,
                           "init_keepalive_timeout (%" PRId64 " s) must be at least twice "
                           "keepalive_interval (%" PRId64 " s); raise init_keepalive_timeout or "
                           "lower keepalive_interval first",
                           it, ki);
    int64_t lo = values[SRM_DB_PARAM_RELOGIN_LOWER];
    int64_t hi = values[SRM_DB_PARAM_RELOGIN_UPPER];
    if (lo > hi)
        return srm__db_err(errbuf, errlen, -ERANGE,
                           "relogin_lower (%" PRId64 " s) must not exceed relogin_upper (%" PRId64
                           " s); change them in an order that keeps relogin_lower <= "
                           "relogin_upper",
                           lo, hi);
    return 0;
}
