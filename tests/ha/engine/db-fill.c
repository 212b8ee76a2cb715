/*
 * db-fill: puts a small cluster into the configuration database for the engine tests:
 * migrations, group g1 with nodes n1 and n2, group g2 with node n3, and users placed on
 * each node by hand. Uses the PG* environment.
 *
 *   db-fill N1 N2 N3    users u1@example.org... on n1, p1... on n2, q1... on n3
 */
#include "srm_db.h"
#include "srm_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int add_users(struct srm_db_sync *db, const char *prefix, size_t n, const char *node)
{
    char **names = calloc(n ? n : 1, sizeof(char *));
    int64_t added = 0;
    int r;

    if (!names)
        return -1;
    if (n == 0) {
        free(names);
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        if (asprintf(&names[i], "%s%zu@example.org", prefix, i + 1) < 0)
            return -1;
    r = srm_db_sync_users_add(db, (const char *const *)names, n, node, &added, NULL);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (r < 0)
        fprintf(stderr, "db-fill: users on %s: %s\n", node, srm_db_sync_errmsg(db));
    return r;
}

int main(int argc, char **argv)
{
    struct srm_db_sync *db = NULL;
    char err[SRM_DB_ERRMSG_MAX];
    int r;

    if (argc != 4) {
        fprintf(stderr, "usage: db-fill N1 N2 N3\n");
        return 2;
    }
    r = srm_db_sync_open(NULL, &db, err, sizeof(err));
    if (r < 0) {
        fprintf(stderr, "db-fill: %s\n", err);
        return 1;
    }
    if ((r = srm_db_sync_migrate(db, NULL)) < 0 ||
        (r = srm_db_sync_assignment_mode_set(db, SRM_DB_ASSIGN_NONE)) < 0 ||
        (r = srm_db_sync_group_create(db, "g1", "engine test", NULL)) < 0 ||
        (r = srm_db_sync_node_add(db, "n1", "10.0.0.1", "g1", NULL, NULL)) < 0 ||
        (r = srm_db_sync_node_add(db, "n2", "10.0.0.2", "g1", NULL, NULL)) < 0 ||
        (r = srm_db_sync_group_create(db, "g2", "engine test", NULL)) < 0 ||
        (r = srm_db_sync_node_add(db, "n3", "10.0.0.3", "g2", NULL, NULL)) < 0) {
        fprintf(stderr, "db-fill: %s\n", srm_db_sync_errmsg(db));
        srm_db_sync_close(db);
        return 1;
    }
    r = add_users(db, "u", strtoul(argv[1], NULL, 10), "n1");
    if (r == 0)
        r = add_users(db, "p", strtoul(argv[2], NULL, 10), "n2");
    if (r == 0)
        r = add_users(db, "q", strtoul(argv[3], NULL, 10), "n3");
    srm_db_sync_close(db);
    return r < 0 ? 1 : 0;
}
