/*
 * srm-setup: prepares the cluster configuration database before any srmd runs.
 *
 *   srm-setup [--database CONNINFO] migrate
 *   srm-setup [--database CONNINFO] group NAME [DESCRIPTION]
 *   srm-setup [--database CONNINFO] node NAME ADDRESS GROUP
 *   srm-setup [--database CONNINFO] ha GROUP on|off
 *   srm-setup [--database CONNINFO] param NAME VALUE [NODE]
 *   srm-setup [--database CONNINFO] users COUNT [PREFIX]      adds PREFIX00001.. (default u)
 *
 * CONNINFO is a libpq connection string (default: the PG* environment). Once the srmd
 * daemons run, use srmctl: it checks the states (users cannot be added while a node is
 * failed over, for instance) and reaches every node. Exit status 0, or 1 with the reason on
 * stderr.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srm_db.h"
#include "srm_error.h"

static int usage(void)
{
    fprintf(stderr, "usage: srm-setup [--database CONNINFO] migrate\n"
                    "       srm-setup [--database CONNINFO] group NAME [DESCRIPTION]\n"
                    "       srm-setup [--database CONNINFO] node NAME ADDRESS GROUP\n"
                    "       srm-setup [--database CONNINFO] ha GROUP on|off\n"
                    "       srm-setup [--database CONNINFO] param NAME VALUE [NODE]\n"
                    "       srm-setup [--database CONNINFO] users COUNT [PREFIX]\n");
    return 2;
}

static int fail(struct srm_db_sync *db, const char *what, int r)
{
    const char *msg = db ? srm_db_sync_errmsg(db) : "";
    fprintf(stderr, "srm-setup: %s: %s\n", what, msg && msg[0] ? msg : srm_strerror(r));
    return 1;
}

static int add_users(struct srm_db_sync *db, long count, const char *prefix)
{
    const long batch = 5000;
    char **names = calloc((size_t)batch, sizeof(*names));
    long done = 0;

    if (!names)
        return -ENOMEM;
    while (done < count) {
        long n = count - done < batch ? count - done : batch;
        int64_t added = 0;
        for (long i = 0; i < n; i++)
            if (asprintf(&names[i], "%s%05ld", prefix, done + i + 1) < 0)
                return -ENOMEM;
        int r =
            srm_db_sync_users_add(db, (const char *const *)names, (size_t)n, NULL, &added, NULL);
        for (long i = 0; i < n; i++)
            free(names[i]);
        if (r < 0) {
            free(names);
            return r;
        }
        done += n;
        printf("users: %ld/%ld\n", done, count);
    }
    free(names);
    return 0;
}

int main(int argc, char **argv)
{
    const char *conninfo = getenv("SRM_DATABASE");
    struct srm_db_sync *db = NULL;
    char err[512];
    int a = 1, r;

    if (argc > 2 && strcmp(argv[1], "--database") == 0) {
        conninfo = argv[2];
        a = 3;
    }
    if (a >= argc)
        return usage();
    r = srm_db_sync_open(conninfo ? conninfo : "", &db, err, sizeof(err));
    if (r < 0) {
        fprintf(stderr, "srm-setup: %s\n", err);
        return 1;
    }
    const char *cmd = argv[a];
    int n = argc - a - 1;
    char **v = argv + a + 1;
    int status = 0;

    /* Every command first brings the schema up to date. */
    int version = 0;
    r = srm_db_sync_migrate(db, &version);
    if (r < 0) {
        status = fail(db, "migrating the schema", r);
    } else if (strcmp(cmd, "migrate") == 0 && n == 0) {
        printf("schema version %d\n", version);
    } else if (strcmp(cmd, "group") == 0 && (n == 1 || n == 2)) {
        r = srm_db_sync_group_create(db, v[0], n == 2 ? v[1] : "", NULL);
        if (r < 0 && r != SRM_EEXISTS)
            status = fail(db, "creating the group", r);
    } else if (strcmp(cmd, "node") == 0 && n == 3) {
        r = srm_db_sync_node_add(db, v[0], v[1], v[2], NULL, NULL);
        if (r < 0 && r != SRM_EEXISTS)
            status = fail(db, "adding the node", r);
    } else if (strcmp(cmd, "ha") == 0 && n == 2 &&
               (strcmp(v[1], "on") == 0 || strcmp(v[1], "off") == 0)) {
        r = srm_db_sync_group_set_ha(db, v[0], strcmp(v[1], "on") == 0);
        if (r < 0)
            status = fail(db, "setting HA", r);
    } else if (strcmp(cmd, "param") == 0 && (n == 2 || n == 3)) {
        r = srm_db_sync_param_set(db, v[0], n == 3 ? v[2] : NULL, v[1]);
        if (r < 0)
            status = fail(db, "setting the parameter", r);
    } else if (strcmp(cmd, "users") == 0 && (n == 1 || n == 2)) {
        char *end;
        long count = strtol(v[0], &end, 10);
        if (*end || count < 1 || count > 10000000) {
            fprintf(stderr, "srm-setup: COUNT must be between 1 and 10000000\n");
            status = 2;
        } else if ((r = add_users(db, count, n == 2 ? v[1] : "u")) < 0) {
            status = fail(db, "adding users", r);
        }
    } else {
        status = usage();
    }
    srm_db_sync_close(db);
    return status;
}
