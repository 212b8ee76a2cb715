/* Small helpers: growable buffers, percent-encoding, query strings, error to HTTP status. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static bool buf_grow(struct srm__admin_buf *b, size_t need)
{
    if (b->oom)
        return false;
    if (b->len + need + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + need + 1)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void srm__admin_buf_put(struct srm__admin_buf *b, const void *p, size_t n)
{
    if (n == 0 || !buf_grow(b, n))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void srm__admin_buf_puts(struct srm__admin_buf *b, const char *s)
{
    srm__admin_buf_put(b, s, strlen(s));
}

void srm__admin_buf_printf(struct srm__admin_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0 || !buf_grow(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

int srm__admin_buf_terminate(struct srm__admin_buf *b)
{
    if (!buf_grow(b, 0))
        return -ENOMEM;
    b->data[b->len] = '\0';
    return 0;
}

void srm__admin_buf_free(struct srm__admin_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int srm__admin_pct_decode(const char *s, size_t len, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= len)
                return -EINVAL;
            int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
            if (h < 0 || l < 0)
                return -EINVAL;
            c = (char)(h * 16 + l);
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (c == '\0' || o + 1 >= outlen)
            return -EINVAL;
        out[o++] = c;
    }
    if (outlen == 0)
        return -EINVAL;
    out[o] = '\0';
    return 0;
}

int srm__admin_query_get(const char *query, const char *key, char *out, size_t outlen)
{
    size_t klen = strlen(key);
    const char *p = query;
    while (p && *p) {
        const char *amp = strchr(p, '&');
        size_t plen = amp ? (size_t)(amp - p) : strlen(p);
        if (plen >= klen && strncmp(p, key, klen) == 0 && (plen == klen || p[klen] == '=')) {
            if (plen == klen) {
                if (outlen == 0)
                    return -EINVAL;
                out[0] = '\0';
                return 1;
            }
            int rc = srm__admin_pct_decode(p + klen + 1, plen - klen - 1, out, outlen);
            return rc < 0 ? rc : 1;
        }
        p = amp ? amp + 1 : NULL;
    }
    return 0;
}

void srm__admin_pct_encode(struct srm__admin_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            srm__admin_buf_put(b, &c, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            srm__admin_buf_put(b, e, 3);
        }
    }
}

int srm__admin_http_status(int err)
{
    switch (err) {
    case -EINVAL:
    case -ERANGE:
    case SRM_ETOOBIG:
    case SRM_EBADUTF8:
        return 400;
    case SRM_ENOTFOUND:
    case -ENOENT:
        return 404;
    case SRM_EEXISTS:
    case SRM_EREFUSED:
    case SRM_EFAILED_OVER:
        return 409;
    case SRM_EUNREACHABLE:
    case SRM_ETLS:
    case SRM_EPEER_CERT:
        return 502;
    case SRM_EDB_DOWN:
    case SRM_EDB_SCHEMA:
    case -ECANCELED:
    case -EAGAIN:
        return 503;
    case -ETIMEDOUT:
        return 504;
    default:
        return 500;
    }
}

void srm__admin_fmt(char *out, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, len, fmt, ap);
    va_end(ap);
}
