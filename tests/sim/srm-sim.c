/*
 * srm-sim: runs the two-node simulator.
 *
 *   srm-sim [--timeline] [--trace] FILE...      run scenario files
 *   srm-sim --random [--seeds N] [--first S] [--actions K] [--timeline] [--trace]
 *   srm-sim --random --seed S --timeline        replay one schedule
 *
 * Exit status 0 when every scenario and schedule passed.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scenario.h"

static void usage(void)
{
    fprintf(stderr, "usage: srm-sim [--timeline] [--trace] FILE...\n"
                    "       srm-sim --random [--seeds N] [--first S] [--seed S] [--actions K] "
                    "[--timeline] [--trace]\n");
}

int main(int argc, char **argv)
{
    bool random = false, timeline = false, trace = false;
    uint64_t first = 1, seeds = 1000;
    int actions = 40, nfiles = 0, failed = 0;
    char **files = calloc((size_t)argc, sizeof(*files));

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--random") == 0)
            random = true;
        else if (strcmp(argv[i], "--timeline") == 0)
            timeline = true;
        else if (strcmp(argv[i], "--trace") == 0)
            trace = true;
        else if (strcmp(argv[i], "--seeds") == 0 && i + 1 < argc)
            seeds = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--first") == 0 && i + 1 < argc)
            first = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            first = strtoull(argv[++i], NULL, 10);
            seeds = 1;
        } else if (strcmp(argv[i], "--actions") == 0 && i + 1 < argc)
            actions = atoi(argv[++i]);
        else if (argv[i][0] == '-') {
            usage();
            return 2;
        } else
            files[nfiles++] = argv[i];
    }

    if (random) {
        time_t t0 = time(NULL);
        for (uint64_t s = first; s < first + seeds; s++) {
            char why[600];
            if (scenario_random(s, actions, timeline ? stdout : NULL, trace ? stdout : NULL, why,
                                sizeof(why)) != 0) {
                printf("FAIL seed %" PRIu64 ": %s\n  replay: srm-sim --random --seed %" PRIu64
                       " --actions %d --timeline\n",
                       s, why, s, actions);
                if (++failed >= 5)
                    break;
            }
            if (seeds >= 1000 && (s - first + 1) % 1000 == 0) {
                printf("%" PRIu64 "/%" PRIu64 " schedules, %d failed (%lds)\n", s - first + 1,
                       seeds, failed, (long)(time(NULL) - t0));
                fflush(stdout);
            }
        }
        printf("%s: %" PRIu64 " random schedules from seed %" PRIu64 " (%d actions each), "
               "%d failed\n",
               failed ? "FAIL" : "ok", seeds, first, actions, failed);
        free(files);
        return failed ? 1 : 0;
    }

    if (nfiles == 0) {
        usage();
        free(files);
        return 2;
    }
    for (int i = 0; i < nfiles; i++) {
        FILE *in = fopen(files[i], "r");
        if (!in) {
            fprintf(stderr, "%s: %s\n", files[i], strerror(errno));
            failed++;
            continue;
        }
        int r = scenario_run(in, files[i], timeline ? stdout : NULL, stderr);
        fclose(in);
        printf("%s %s\n", r == 0 ? "ok  " : "FAIL", files[i]);
        if (r != 0)
            failed++;
    }
    free(files);
    return failed ? 1 : 0;
}
