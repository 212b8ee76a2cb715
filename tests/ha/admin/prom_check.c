#include "prom_check.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAMILIES_MAX 256
#define SERIES_MAX   8192

struct fam {
    char name[128];
    bool help, type, samples_done;
    int nsamples;
};

struct st {
    struct fam fams[FAMILIES_MAX];
    int nfams;
    int current; /* family whose samples are being read, -1 */
    char *series[SERIES_MAX];
    size_t nseries;
    int line;
    char *err;
    size_t errlen;
};

static int fail(struct st *s, const char *fmt, ...)
{
    char m[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof(m), fmt, ap);
    va_end(ap);
    snprintf(s->err, s->errlen, "line %d: %s", s->line, m);
    return -1;
}

static bool name_char(char c, bool first, bool colon)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':') ||
           (!first && c >= '0' && c <= '9');
}

/* Reads a metric or label name at *p; returns its length (0 if none). */
static size_t read_name(const char *p, const char *end, bool colon)
{
    size_t n = 0;
    while (p + n < end && name_char(p[n], n == 0, colon))
        n++;
    return n;
}

static struct fam *family(struct st *s, const char *name, size_t len, bool create)
{
    for (int i = 0; i < s->nfams; i++)
        if (strlen(s->fams[i].name) == len && strncmp(s->fams[i].name, name, len) == 0)
            return &s->fams[i];
    if (!create || s->nfams == FAMILIES_MAX || len >= sizeof(s->fams[0].name))
        return NULL;
    struct fam *f = &s->fams[s->nfams++];
    memset(f, 0, sizeof(*f));
    memcpy(f->name, name, len);
    return f;
}

static bool value_ok(const char *p, const char *end)
{
    size_t n = (size_t)(end - p);
    if ((n == 3 && strncmp(p, "NaN", 3) == 0) || (n == 4 && strncmp(p, "+Inf", 4) == 0) ||
        (n == 4 && strncmp(p, "-Inf", 4) == 0))
        return true;
    char buf[64];
    if (n == 0 || n >= sizeof(buf))
        return false;
    memcpy(buf, p, n);
    buf[n] = '\0';
    char *e;
    strtod(buf, &e);
    return *e == '\0' && strpbrk(buf, "xXpP") == NULL && strstr(buf, "nan") == NULL &&
           strstr(buf, "inf") == NULL;
}

static int help_text_ok(struct st *s, const char *p, const char *end)
{
    for (; p < end; p++)
        if (*p == '\\') {
            if (p + 1 >= end || (p[1] != '\\' && p[1] != 'n'))
                return fail(s, "bad escape in HELP text");
            p++;
        }
    return 0;
}

static int sample(struct st *s, const char *p, const char *end)
{
    size_t nl = read_name(p, end, true);
    if (nl == 0)
        return fail(s, "sample does not start with a metric name");
    struct fam *f = family(s, p, nl, false);
    if (!f || !f->type)
        return fail(s, "sample of %.*s before its TYPE line", (int)nl, p);
    if (f->samples_done)
        return fail(s, "samples of %s are not contiguous", f->name);
    int idx = (int)(f - s->fams);
    if (s->current != idx) {
        if (s->current >= 0)
            s->fams[s->current].samples_done = true;
        s->current = idx;
    }
    const char *key_start = p;
    p += nl;
    char lnames[16][128];
    int nlabels = 0;
    if (p < end && *p == '{') {
        p++;
        while (p < end && *p != '}') {
            size_t ln = read_name(p, end, false);
            if (ln == 0 || ln >= 128)
                return fail(s, "bad label name");
            if (ln >= 2 && p[0] == '_' && p[1] == '_')
                return fail(s, "label name starts with __");
            for (int i = 0; i < nlabels; i++)
                if (strlen(lnames[i]) == ln && strncmp(lnames[i], p, ln) == 0)
                    return fail(s, "label %.*s twice", (int)ln, p);
            if (nlabels == 16)
                return fail(s, "too many labels");
            memcpy(lnames[nlabels], p, ln);
            lnames[nlabels++][ln] = '\0';
            p += ln;
            if (p + 1 >= end || p[0] != '=' || p[1] != '"')
                return fail(s, "expected =\" after a label name");
            p += 2;
            while (p < end && *p != '"') {
                if (*p == '\n')
                    return fail(s, "raw newline in a label value");
                if (*p == '\\') {
                    if (p + 1 >= end || (p[1] != '\\' && p[1] != '"' && p[1] != 'n'))
                        return fail(s, "bad escape in a label value");
                    p++;
                }
                p++;
            }
            if (p >= end)
                return fail(s, "unterminated label value");
            p++;
            if (p < end && *p == ',')
                p++;
            else if (p < end && *p != '}')
                return fail(s, "expected , or } after a label value");
        }
        if (p >= end)
            return fail(s, "unterminated label set");
        p++;
    }
    size_t klen = (size_t)(p - key_start);
    if (p >= end || *p != ' ')
        return fail(s, "expected one space before the value");
    p++;
    const char *v = p;
    while (p < end && *p != ' ')
        p++;
    if (!value_ok(v, p))
        return fail(s, "bad value \"%.*s\"", (int)(p - v), v);
    if (p < end) {
        p++;
        const char *ts = p;
        while (p < end && ((*p >= '0' && *p <= '9') || *p == '-'))
            p++;
        if (p != end || p == ts)
            return fail(s, "trailing garbage after the value");
    }
    for (size_t i = 0; i < s->nseries; i++)
        if (strlen(s->series[i]) == klen && strncmp(s->series[i], key_start, klen) == 0)
            return fail(s, "series %.*s twice", (int)klen, key_start);
    if (s->nseries == SERIES_MAX)
        return fail(s, "too many series for the checker");
    s->series[s->nseries] = strndup(key_start, klen);
    if (!s->series[s->nseries])
        return fail(s, "out of memory");
    s->nseries++;
    f->nsamples++;
    return 0;
}

static int comment(struct st *s, const char *p, const char *end)
{
    bool help = (size_t)(end - p) > 7 && strncmp(p, "# HELP ", 7) == 0;
    bool type = (size_t)(end - p) > 7 && strncmp(p, "# TYPE ", 7) == 0;
    if (!help && !type)
        return 0; /* other comments are allowed */
    p += 7;
    size_t nl = read_name(p, end, true);
    if (nl == 0)
        return fail(s, "%s without a metric name", help ? "HELP" : "TYPE");
    struct fam *f = family(s, p, nl, true);
    if (!f)
        return fail(s, "too many families");
    if (f->nsamples > 0 || f->samples_done)
        return fail(s, "%s of %s after its samples", help ? "HELP" : "TYPE", f->name);
    p += nl;
    if (p >= end || *p != ' ')
        return fail(s, "expected a space after the metric name");
    p++;
    if (help) {
        if (f->help)
            return fail(s, "second HELP for %s", f->name);
        f->help = true;
        return help_text_ok(s, p, end);
    }
    if (f->type)
        return fail(s, "second TYPE for %s", f->name);
    size_t n = (size_t)(end - p);
    bool counter = n == 7 && strncmp(p, "counter", 7) == 0;
    if (!counter && !(n == 5 && strncmp(p, "gauge", 5) == 0) &&
        !(n == 7 && strncmp(p, "untyped", 7) == 0) &&
        !(n == 9 && strncmp(p, "histogram", 9) == 0) && !(n == 7 && strncmp(p, "summary", 7) == 0))
        return fail(s, "unknown type \"%.*s\"", (int)n, p);
    if (counter && (strlen(f->name) < 7 || strcmp(f->name + strlen(f->name) - 6, "_total") != 0))
        return fail(s, "counter %s does not end in _total", f->name);
    f->type = true;
    return 0;
}

int prom_check(const char *text, size_t len, size_t *ret_samples, char *err, size_t errlen)
{
    struct st *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->current = -1;
    s->err = err;
    s->errlen = errlen;
    int rc = 0;
    if (len > 0 && text[len - 1] != '\n') {
        s->line = 0;
        rc = fail(s, "the text does not end with a newline");
    }
    const char *p = text, *end = text + len;
    while (rc == 0 && p < end) {
        s->line++;
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        if (memchr(p, '\0', (size_t)(eol - p)))
            rc = fail(s, "NUL byte");
        else if (eol == p)
            rc = fail(s, "empty line");
        else if (*p == '#')
            rc = comment(s, p, eol);
        else
            rc = sample(s, p, eol);
        p = eol + 1;
    }
    if (rc == 0 && ret_samples)
        *ret_samples = s->nseries;
    for (size_t i = 0; i < s->nseries; i++)
        free(s->series[i]);
    free(s);
    return rc;
}
