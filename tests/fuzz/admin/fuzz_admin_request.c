/*
 * libFuzzer target of the admin API's decoders: the input is a request body or an answer
 * (JSON) given to every decoder of ha/admin (status, operation answer, users, parameter and
 * HA requests, history event), and a query string given to the query parser. A decoded value
 * is encoded again and must decode to the same thing.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void status(const json_t *j)
{
    struct srm_admin_status *st = NULL;
    char e[256];
    if (srm_admin_status_from_json(j, &st, e, sizeof(e)) != 0)
        return;
    json_t *again = NULL;
    if (srm_admin_status_to_json(st, &again) != 0)
        abort();
    struct srm_admin_status *st2 = NULL;
    if (srm_admin_status_from_json(again, &st2, e, sizeof(e)) != 0)
        abort();
    json_t *third = NULL;
    if (srm_admin_status_to_json(st2, &third) != 0 || !json_equal(again, third))
        abort();
    json_decref(again);
    json_decref(third);
    srm_admin_status_free(st);
    srm_admin_status_free(st2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char e[256];
    json_t *j =
        json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL);
    if (j) {
        status(j);
        struct srm_admin_op_answer a;
        if (srm_admin_op_answer_from_json(j, &a, e, sizeof(e)) == 0) {
            json_t *again = NULL;
            if (srm_admin_op_answer_to_json(&a, &again) != 0)
                abort();
            json_decref(again);
        }
        struct srm_admin_users_request u = {0};
        if (srm_admin_users_request_from_json(j, &u, e, sizeof(e)) == 0) {
            json_t *again = NULL;
            if (srm_admin_users_request_to_json(&u, &again) != 0)
                abort();
            json_decref(again);
            srm_admin_users_request_clear(&u);
        }
        struct srm_admin_param_request p;
        if (srm_admin_param_request_from_json(j, &p, e, sizeof(e)) == 0 &&
            (strlen(p.value) >= sizeof(p.value) || strlen(p.node) > SRM_DB_NAME_MAX))
            abort();
        bool en;
        srm_admin_ha_request_from_json(j, &en, e, sizeof(e));
        struct srm_db_event ev;
        if (srm_admin_event_from_json(j, &ev, e, sizeof(e)) == 0) {
            json_t *again = NULL;
            if (srm_admin_event_to_json(&ev, &again) != 0)
                abort();
            json_decref(again);
            srm_admin_event_clear(&ev);
        }
        json_decref(j);
    }
    /* the same bytes as a query string */
    char *q = malloc(size + 1);
    if (!q)
        return 0;
    memcpy(q, data, size);
    q[size] = '\0';
    char out[64];
    static const char *const keys[] = {"node", "after", "limit", "wait", "scope", "unassigned"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (srm__admin_query_get(q, keys[i], out, sizeof(out)) == 1 && strlen(out) >= sizeof(out))
            abort();
    free(q);
    return 0;
}
