#include "srm_error.h"

#include <errno.h>
#include <string.h>

static const char *const messages[] = {
#define SRM__E_MSG(name, msg) [SRM__E_##name - SRM_E_BASE] = msg,
    SRM_ERROR_MAP(SRM__E_MSG)
#undef SRM__E_MSG
};

static const char *const names[] = {
#define SRM__E_NAME(name, msg) [SRM__E_##name - SRM_E_BASE] = "SRM_E" #name,
    SRM_ERROR_MAP(SRM__E_NAME)
#undef SRM__E_NAME
};

static int project_index(int err)
{
    int code = err < 0 ? -err : err;

    if (code >= SRM_E_BASE && code < SRM__E_LAST)
        return code - SRM_E_BASE;
    return -1;
}

const char *srm_strerror(int err)
{
    int i = project_index(err);

    if (i >= 0)
        return messages[i];
    /* strerror() of glibc returns a static string for every known errno. */
    return strerror(err < 0 ? -err : err);
}

const char *srm_errname(int err)
{
    int i = project_index(err);

    if (i >= 0)
        return names[i];
    {
        const char *name = strerrorname_np(err < 0 ? -err : err);
        return name ? name : "EUNKNOWN";
    }
}
