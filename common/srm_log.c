#include "srm_log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int srm__log_level = SRM_LOG_NOTICE;

static srm_log_sink_cb *sink;
static void *sink_data;

static const char *const level_names[] = {"error", "warn", "notice", "info", "debug"};

void srm_log_set_level(enum srm_log_level level)
{
    srm__log_level = (int)level;
}

int srm_log_parse_level(const char *name, enum srm_log_level *ret_level)
{
    for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *ret_level = (enum srm_log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

void srm_log_set_sink(srm_log_sink_cb *cb, void *data)
{
    sink = cb;
    sink_data = data;
}

void srm__log(enum srm_log_level level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    if (sink) {
        sink(level, msg, sink_data);
        return;
    }

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    fprintf(stderr, "%02d:%02d:%02d.%03ld %-6s %s\n", tm.tm_hour, tm.tm_min, tm.tm_sec,
            ts.tv_nsec / 1000000, level_names[level], msg);
}
