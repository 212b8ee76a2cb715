/*
 * libFuzzer target for the decoders of ha/db: the cache file (and through it the snapshot
 * reader, which also reads what the database returns) and the notification payloads.
 * Invariants: no crash, no leak; a snapshot that is accepted serializes and reads back.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct srm_db_change change;
    struct srm_db_config *cfg = NULL, *again = NULL;
    char msg[SRM_DB_ERRMSG_MAX];

    (void)srm_db_change_parse((const char *)data, size, &change);

    if (srm__db_cache_parse((const char *)data, size, "fuzz", &cfg, msg, sizeof(msg)) == 0) {
        char *text = srm__db_cache_serialize(cfg);
        if (!text)
            abort();
        if (srm__db_cache_parse(text, strlen(text), "fuzz", &again, msg, sizeof(msg)) != 0)
            abort(); /* what we write, we must read */
        if (again->n_nodes != cfg->n_nodes || again->n_groups != cfg->n_groups ||
            memcmp(again->params, cfg->params, sizeof(cfg->params)) != 0)
            abort();
        free(text);
        srm_db_config_free(again);
        srm_db_config_free(cfg);
    }
    return 0;
}
