/*
 * Logging. Only daemons log above debug level; libraries return errors instead.
 *
 * SRM_LOG(level, fmt, ...) does not evaluate its arguments when the level is filtered out.
 * The sink is set by the daemon (srm_log_set_sink); the default writes to stderr with a
 * monotonic timestamp.
 */
#ifndef SRM_LOG_H
#define SRM_LOG_H

#include <stdarg.h>

enum srm_log_level {
    SRM_LOG_ERROR = 0,
    SRM_LOG_WARN = 1,
    SRM_LOG_NOTICE = 2,
    SRM_LOG_INFO = 3,
    SRM_LOG_DEBUG = 4,
};

extern int srm__log_level;

typedef void srm_log_sink_cb(enum srm_log_level level, const char *msg, void *data);

void srm_log_set_level(enum srm_log_level level);
/* Parses "error", "warn", "notice", "info", "debug"; returns -EINVAL otherwise. */
int srm_log_parse_level(const char *name, enum srm_log_level *ret_level);
void srm_log_set_sink(srm_log_sink_cb *cb, void *data);
void srm__log(enum srm_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define SRM_LOG(level, ...)                                                                        \
    do {                                                                                           \
        if ((int)(level) <= srm__log_level)                                                        \
            srm__log((level), __VA_ARGS__);                                                        \
    } while (0)

#define srm_log_error(...)  SRM_LOG(SRM_LOG_ERROR, __VA_ARGS__)
#define srm_log_warn(...)   SRM_LOG(SRM_LOG_WARN, __VA_ARGS__)
#define srm_log_notice(...) SRM_LOG(SRM_LOG_NOTICE, __VA_ARGS__)
#define srm_log_info(...)   SRM_LOG(SRM_LOG_INFO, __VA_ARGS__)
#define srm_log_debug(...)  SRM_LOG(SRM_LOG_DEBUG, __VA_ARGS__)

#endif
