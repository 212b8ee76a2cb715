/*
 * Unit tests of ha/db/cache.c: the cache file round trip, its atomic write, and the
 * refusal, with a clear message, of every kind of bad file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "internal.h"
#include "sample_config.h"
#include "srm_error.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];
static char path[128];
static char msg[SRM_DB_ERRMSG_MAX];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/srm-db-cache-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof(path), "%s/config.json", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[512];
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
    return 0;
}

static struct srm_db_config *sample(void)
{
    struct srm_db_config *cfg = NULL;
    json_t *root = json_loads(SAMPLE_CONFIG, 0, NULL);
    assert_non_null(root);
    assert_int_equal(srm__db_config_from_json(root, SRM_DB_SOURCE_DATABASE, &cfg, msg, sizeof(msg)),
                     0);
    json_decref(root);
    return cfg;
}

static void write_file(const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int files_in_dir(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void test_round_trip(void **state)
{
    (void)state;
    struct srm_db_config *a = sample(), *b = NULL;

    assert_int_equal(srm_db_cache_save(a, path, msg, sizeof(msg)), 0);
    assert_int_equal(files_in_dir(), 1); /* no temporary file left behind */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    assert_int_equal(srm_db_cache_load(path, &b, msg, sizeof(msg)), 0);
    assert_int_equal(b->source, SRM_DB_SOURCE_CACHE);
    assert_int_equal(b->schema_version, a->schema_version);
    assert_int_equal(b->taken_at_us, a->taken_at_us);
    assert_int_equal(b->assignment_mode, a->assignment_mode);
    assert_memory_equal(b->params, a->params, sizeof(a->params));
    assert_int_equal(b->users_total, a->users_total);
    assert_int_equal(b->users_unassigned, a->users_unassigned);
    assert_int_equal(b->n_groups, a->n_groups);
    for (size_t i = 0; i < a->n_groups; i++) {
        assert_int_equal(b->groups[i].id, a->groups[i].id);
        assert_string_equal(b->groups[i].name, a->groups[i].name);
        assert_string_equal(b->groups[i].description, a->groups[i].description);
        assert_int_equal(b->groups[i].ha_enabled, a->groups[i].ha_enabled);
        assert_int_equal(b->groups[i].n_nodes, a->groups[i].n_nodes);
    }
    assert_int_equal(b->n_nodes, a->n_nodes);
    for (size_t i = 0; i < a->n_nodes; i++) {
        const struct srm_db_node *x = &a->nodes[i], *y = &b->nodes[i];
        assert_int_equal(y->id, x->id);
        assert_string_equal(y->name, x->name);
        assert_string_equal(y->address, x->address);
        assert_int_equal(y->group_id, x->group_id);
        assert_int_equal(y->position, x->position);
        assert_int_equal(y->is_publisher, x->is_publisher);
        assert_int_equal(y->assignable, x->assignable);
        assert_int_equal(y->users, x->users);
        if (x->state) {
            assert_string_equal(y->state, x->state);
            assert_string_equal(y->reason, x->reason);
        } else {
            assert_null(y->state);
        }
        assert_int_equal(y->state_since_us, x->state_since_us);
        assert_memory_equal(y->params, x->params, sizeof(x->params));
    }

    /* saving again replaces the file atomically */
    a->users_total = 999;
    assert_int_equal(srm_db_cache_save(a, path, msg, sizeof(msg)), 0);
    srm_db_config_free(b);
    assert_int_equal(srm_db_cache_load(path, &b, msg, sizeof(msg)), 0);
    assert_int_equal(b->users_total, 999);
    assert_int_equal(files_in_dir(), 1);
    srm_db_config_free(a);
    srm_db_config_free(b);
}

static void expect_refused(int expected, const char *part)
{
    struct srm_db_config *cfg = (struct srm_db_config *)0x1;
    int err = srm_db_cache_load(path, &cfg, msg, sizeof(msg));
    if (err != expected || !strstr(msg, part))
        fail_msg("expected %d \"%s\", got %d \"%s\"", expected, part, err, msg);
    assert_ptr_equal(cfg, (struct srm_db_config *)0x1); /* untouched */
}

static void test_corrupt_files(void **state)
{
    (void)state;
    expect_refused(-ENOENT, "no cache file at");

    write_file("");
    expect_refused(SRM_ECORRUPT, "is corrupt: not JSON");
    write_file("{\"format\": \"srm-config-cache\", \"version\": 1, \"config\": {\"schema");
    expect_refused(SRM_ECORRUPT, "not JSON (line 1");
    assert_non_null(strstr(msg, "delete it"));
    write_file("{\"hello\": \"world\"}");
    expect_refused(SRM_ECORRUPT, "is not an srm configuration cache file");
    write_file("{\"format\": \"srm-config-cache\", \"version\": 2, \"config\": {}}");
    expect_refused(SRM_ECORRUPT, "unknown version");
    write_file("{\"format\": \"srm-config-cache\", \"version\": 1}");
    expect_refused(SRM_ECORRUPT, "not a JSON object");

    /* valid JSON whose content breaks a rule */
    struct srm_db_config *cfg = sample();
    cfg->nodes[0].params[SRM_DB_PARAM_KEEPALIVE_INTERVAL] = 0;
    assert_int_equal(srm_db_cache_save(cfg, path, msg, sizeof(msg)), 0);
    expect_refused(SRM_ECORRUPT, "nodes[0].params");
    assert_non_null(strstr(msg, "keepalive_interval = 0 is out of range"));
    srm_db_config_free(cfg);

    cfg = sample();
    cfg->nodes[1].is_publisher = true;
    assert_int_equal(srm_db_cache_save(cfg, path, msg, sizeof(msg)), 0);
    expect_refused(SRM_ECORRUPT, "several publisher nodes");
    srm_db_config_free(cfg);

    /* a flipped byte in a valid file */
    cfg = sample();
    assert_int_equal(srm_db_cache_save(cfg, path, msg, sizeof(msg)), 0);
    srm_db_config_free(cfg);
    FILE *f = fopen(path, "r+");
    char buf[8192];
    size_t n = fread(buf, 1, sizeof(buf), f);
    char *at = memmem(buf, n, "\"g2\"", 4);
    assert_non_null(at);
    at[1] = '#';
    rewind(f);
    fwrite(buf, 1, n, f);
    fclose(f);
    expect_refused(SRM_ECORRUPT, "groups[1].name");

    /* a directory is not a cache file */
    unlink(path);
    assert_int_equal(mkdir(path, 0700), 0);
    expect_refused(SRM_ECORRUPT, "is not a regular file");
    rmdir(path);
}

static void test_write_errors(void **state)
{
    (void)state;
    struct srm_db_config *cfg = sample();
    char bad[160];
    snprintf(bad, sizeof(bad), "%s/missing-dir/config.json", dir);
    assert_int_equal(srm_db_cache_save(cfg, bad, msg, sizeof(msg)), -ENOENT);
    assert_non_null(strstr(msg, "missing-dir/config.json"));
    assert_non_null(strstr(msg, "check that the directory exists"));
    assert_int_equal(srm_db_cache_save(NULL, path, msg, sizeof(msg)), -EINVAL);
    srm_db_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
