/* A valid snapshot as srm_config_snapshot() returns it, for the unit tests. */
#ifndef SRM_TEST_SAMPLE_CONFIG_H
#define SRM_TEST_SAMPLE_CONFIG_H

#define SAMPLE_NODE_PARAMS                                                                         \
    "{\"service_port\": 22001, \"admin_rpc_port\": 20075, "                                        \
    "\"critical_service_down_delay\": 90, \"automatic_fallback\": 0, "                             \
    "\"automatic_fallback_delay\": 1800, \"init_keepalive_timeout\": 120, "                        \
    "\"keepalive_timeout\": 60, \"keepalive_interval\": 15, \"monitor_xcp_auth\": 0, "             \
    "\"relogin_lower\": 120, \"relogin_upper\": 537}"

#define SAMPLE_CONFIG                                                                              \
    "{\"schema_version\": 2, \"taken_at_us\": 1700000000000000, "                                  \
    "\"assignment_mode\": \"active-standby\", "                                                    \
    "\"params\": {\"keepalive_interval\": 5, \"keepalive_timeout\": 20, "                          \
    "\"automatic_fallback\": 1, \"automatic_fallback_delay\": 60}, "                               \
    "\"groups\": ["                                                                                \
    "{\"id\": 1, \"name\": \"g1\", \"description\": \"pair one \\u00e9\", "                        \
    "\"ha_enabled\": true}, "                                                                      \
    "{\"id\": 2, \"name\": \"g2\", \"description\": \"\", \"ha_enabled\": false}], "               \
    "\"nodes\": ["                                                                                 \
    "{\"id\": 1, \"name\": \"n1\", \"address\": \"10.200.0.1\", \"group_id\": 1, "                 \
    "\"position\": 1, \"is_publisher\": true, \"assignable\": true, \"users\": 500, "              \
    "\"state\": \"Idle\", \"reason\": \"Admin Request\", "                                         \
    "\"state_since_us\": 1699999999000000, \"params\": " SAMPLE_NODE_PARAMS "}, "                  \
    "{\"id\": 2, \"name\": \"n2\", \"address\": \"10.200.0.2\", \"group_id\": 1, "                 \
    "\"position\": 2, \"is_publisher\": false, \"assignable\": true, \"users\": 0, "               \
    "\"state\": \"Running in Backup Mode\", \"reason\": \"Admin Request\", "                       \
    "\"state_since_us\": 1699999999000001, \"params\": {\"relogin_lower\": 30, "                   \
    "\"relogin_upper\": 60}}, "                                                                    \
    "{\"id\": 3, \"name\": \"n3\", \"address\": \"10.200.0.3\", \"group_id\": 2, "                 \
    "\"position\": 2, \"is_publisher\": false, \"assignable\": false, \"users\": 0, "              \
    "\"params\": {}}], "                                                                           \
    "\"users_total\": 501, \"users_unassigned\": 1}"

#endif
