/*
 * srmd: the server recovery manager daemon of one node.
 *
 *   srmd --config FILE [--log-level LEVEL]
 *
 * Signals: SIGTERM / SIGINT stop it (the peer takes this node's users over if it does not
 * come back; the engines keep serving until their lease runs out); SIGHUP restarts it in
 * place, announced to the peer, which then waits for the keepalive timeout instead of
 * taking over (SPEC §4 rows 5-9), while the engines keep serving.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "srm_error.h"
#include "srm_log.h"
#include "srmd.h"
#include "srmd_internal.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: srmd --config FILE [--log-level error|warn|notice|info|debug]\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"log-level", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL;
    enum srm_log_level level = SRM_LOG_NOTICE;
    struct srmd_conf conf;
    char err[512];
    int c, status;

    while ((c = getopt_long(argc, argv, "c:l:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'l':
            if (srm_log_parse_level(optarg, &level) < 0) {
                fprintf(stderr, "srmd: unknown log level \"%s\"\n", optarg);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!config) {
        usage(stderr);
        return 2;
    }
    srm_log_set_level(level);
    if (srmd_conf_load(config, &conf, err, sizeof(err)) < 0) {
        fprintf(stderr, "srmd: %s\n", err);
        return 1;
    }
    status = srmd_run(&conf);
    srmd_conf_free(&conf);
    if (status == SRMD_EXIT_RESTART) {
        /* An announced restart: the new process starts at once. */
        execv("/proc/self/exe", argv);
        fprintf(stderr, "srmd: restarting: %s\n", strerror(errno));
        return 1;
    }
    return status;
}
