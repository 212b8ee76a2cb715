/*
 * The local cache of the configuration (README.md "Cache file"): the last snapshot loaded
 * from the database, so that srmd can start and keep working while the database is down.
 *
 *   {"format": "srm-config-cache", "version": 1, "config": { ...snapshot... }}
 *
 * Written atomically (temporary file, fsync, rename, fsync of the directory); read with
 * every check that a snapshot from the database gets.
 */
#include "internal.h"

#include "srm_error.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CACHE_FORMAT    "srm-config-cache"
#define CACHE_VERSION   1
#define CACHE_MAX_BYTES ((off_t)64 * 1024 * 1024)

char *srm__db_cache_serialize(const struct srm_db_config *config)
{
    json_t *cfg = srm__db_config_to_json(config);
    if (!cfg)
        return NULL;
    json_t *root = json_pack("{s:s, s:i, s:o}", "format", CACHE_FORMAT, "version", CACHE_VERSION,
                             "config", cfg);
    if (!root)
        return NULL;
    char *text = json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS);
    json_decref(root);
    return text;
}

static int sys_error(char *errbuf, size_t errlen, const char *call, const char *path)
{
    int err = -errno;
    return srm__db_err(errbuf, errlen, err,
                       "cache file %s: %s failed: %s; check that the directory exists and is "
                       "writable",
                       path, call, strerror(-err));
}

int srm__db_cache_write(const char *path, const char *text, char *errbuf, size_t errlen)
{
    char tmp[4096];
    int fd, err = 0;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp))
        return srm__db_err(errbuf, errlen, -ENAMETOOLONG, "cache file path is too long: %.64s...",
                           path);
    fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600, a name no other writer uses */
    if (fd < 0)
        return sys_error(errbuf, errlen, "open of the temporary file", path);
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            err = sys_error(errbuf, errlen, "write", path);
            goto fail;
        }
        off += (size_t)w;
    }
    if (fsync(fd) < 0) {
        err = sys_error(errbuf, errlen, "fsync", path);
        goto fail;
    }
    if (close(fd) < 0) {
        fd = -1;
        err = sys_error(errbuf, errlen, "close", path);
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        err = sys_error(errbuf, errlen, "rename", path);
        goto fail;
    }
    /* The rename itself must reach the disk: fsync the directory. */
    char dir[4096];
    srm__db_strlcpy(dir, path, sizeof(dir));
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return sys_error(errbuf, errlen, "open of the directory", path);
    if (fsync(dfd) < 0)
        err = sys_error(errbuf, errlen, "fsync of the directory", path);
    close(dfd);
    return err;

fail:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return err;
}

int srm_db_cache_save(const struct srm_db_config *config, const char *path, char *errbuf,
                      size_t errlen)
{
    if (!config || !path)
        return srm__db_err(errbuf, errlen, -EINVAL, "cache save: no configuration or no path");
    char *text = srm__db_cache_serialize(config);
    if (!text)
        return srm__db_err(errbuf, errlen, -ENOMEM, "cache file %s: out of memory", path);
    int err = srm__db_cache_write(path, text, errbuf, errlen);
    free(text);
    return err;
}

static int read_file(const char *path, char **ret_text, size_t *ret_len, char *errbuf,
                     size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = -errno;
        if (err == -ENOENT)
            return srm__db_err(errbuf, errlen, err,
                               "no cache file at %s: the database has never been reached from "
                               "this node",
                               path);
        return srm__db_err(errbuf, errlen, err, "cache file %s: cannot open it: %s", path,
                           strerror(-err));
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > CACHE_MAX_BYTES) {
        close(fd);
        return srm__db_err(errbuf, errlen, SRM_ECORRUPT,
                           "cache file %s is not a regular file of at most %lld bytes; delete it, "
                           "it is rewritten at the next load from the database",
                           path, (long long)CACHE_MAX_BYTES);
    }
    size_t cap = (size_t)st.st_size + 1, len = 0;
    char *text = malloc(cap);
    if (!text) {
        close(fd);
        return -ENOMEM;
    }
    for (;;) {
        ssize_t r = read(fd, text + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int err = -errno;
            free(text);
            close(fd);
            return srm__db_err(errbuf, errlen, err, "cache file %s: read failed: %s", path,
                               strerror(-err));
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len == cap) { /* the file grew: refuse rather than read a moving target */
            free(text);
            close(fd);
            return srm__db_err(errbuf, errlen, SRM_ECORRUPT,
                               "cache file %s changed while being read", path);
        }
    }
    close(fd);
    text[len] = '\0';
    *ret_text = text;
    *ret_len = len;
    return 0;
}

int srm__db_cache_parse(const char *text, size_t len, const char *path,
                        struct srm_db_config **ret_config, char *errbuf, size_t errlen)
{
    json_error_t jerr;
    char msg[SRM_DB_ERRMSG_MAX];
    int err;

    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return srm__db_err(errbuf, errlen, SRM_ECORRUPT,
                           "cache file %s is corrupt: not JSON (line %d, column %d: %s); delete "
                           "it, it is rewritten at the next load from the database",
                           path, jerr.line, jerr.column, jerr.text);
    json_t *format = json_object_get(root, "format");
    json_t *version = json_object_get(root, "version");
    if (!json_is_object(root) || !json_is_string(format) ||
        strcmp(json_string_value(format), CACHE_FORMAT) != 0) {
        err = srm__db_err(errbuf, errlen, SRM_ECORRUPT,
                          "%s is not an srm configuration cache file (no \"format\": \"%s\"); "
                          "check the path",
                          path, CACHE_FORMAT);
    } else if (!json_is_integer(version) || json_integer_value(version) != CACHE_VERSION) {
        err = srm__db_err(errbuf, errlen, SRM_ECORRUPT,
                          "cache file %s has an unknown version (this program reads version "
                          "%d); delete it, it is rewritten at the next load from the database",
                          path, CACHE_VERSION);
    } else {
        err = srm__db_config_from_json(json_object_get(root, "config"), SRM_DB_SOURCE_CACHE,
                                       ret_config, msg, sizeof(msg));
        if (err == SRM_ECORRUPT)
            srm__db_err(errbuf, errlen, err,
                        "cache file %s is corrupt: in \"config\", %s; delete it, it is rewritten "
                        "at the next load from the database",
                        path, msg);
        else if (err < 0)
            srm__db_err(errbuf, errlen, err, "cache file %s: %s", path, srm_strerror(err));
    }
    json_decref(root);
    return err;
}

int srm_db_cache_load(const char *path, struct srm_db_config **ret_config, char *errbuf,
                      size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    int err;

    if (!path || !ret_config)
        return srm__db_err(errbuf, errlen, -EINVAL, "cache load: no path");
    if ((err = read_file(path, &text, &len, errbuf, errlen)) < 0)
        return err;
    err = srm__db_cache_parse(text, len, path, ret_config, errbuf, errlen);
    free(text);
    return err;
}
