/*
 * Scenario files and seeded random fault schedules for the simulator.
 *
 * A scenario is plain text, one command or check per line; '#' starts a comment.
 *
 *   param NAME VALUE            simulator parameter (sim_params_set), before power-on
 *   power-on n1|n2|all          boot (services start, srmd starts)
 *   ACTION n1|n2                any sim_action name: crash-srm, restart-srm, pause, ...
 *   heal | ha-on | ha-off       cluster-wide actions
 *   delay-spike MS              messages between the nodes take MS longer for 10 s
 *   failover NODE | fallback NODE | recover      admin operations (srmctl)
 *   run DURATION                advance the clock ("90s", "500ms", "31m")
 *   settle [DURATION]           run until both nodes are stable (default at most 10m)
 *   expect NODE "State" "Reason"|*              check state and reason (SPEC §3 names)
 *   expect-serving NODE own|peer|all|none       check which users the node serves
 *   expect-refused OP NODE "text"               OP is refused and the reason has "text"
 *   say "text"                  narration for the timeline
 *   show                        both nodes' state, reason and users, on the timeline
 *
 * Every check also fails if the simulator saw an invariant violation.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "scenario.h"
#include "srm_error.h"

#define MAX_TOKENS 8

static int tokenize(char *line, char **tok, int max)
{
    int n = 0;
    char *p = line;

    while (*p && n < max) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p || *p == '#')
            break;
        if (*p == '"') {
            char *end = strchr(p + 1, '"');
            if (!end)
                return -EINVAL;
            *end = '\0';
            tok[n++] = p + 1;
            p = end + 1;
        } else {
            tok[n++] = p;
            while (*p && *p != ' ' && *p != '\t')
                p++;
            if (*p)
                *p++ = '\0';
        }
    }
    return n;
}

static int parse_node(const char *s)
{
    if (strcmp(s, "n1") == 0)
        return 0;
    if (strcmp(s, "n2") == 0)
        return 1;
    return -1;
}

static int parse_serving(const char *s, unsigned *ret)
{
    if (strcmp(s, "none") == 0)
        *ret = 0;
    else if (strcmp(s, "own") == 0)
        *ret = SRM_FSM_PART_OWN;
    else if (strcmp(s, "peer") == 0)
        *ret = SRM_FSM_PART_PEER;
    else if (strcmp(s, "all") == 0)
        *ret = SRM_FSM_PART_ALL;
    else
        return -EINVAL;
    return 0;
}

static const char *serving_name(unsigned s)
{
    static const char *const names[] = {"none", "own", "peer", "all"};
    return names[s & 3];
}

static int parse_op(const char *s, enum srm_fsm_event_type *ret)
{
    if (strcmp(s, "failover") == 0)
        *ret = SRM_FSM_EVENT_ADMIN_FAILOVER;
    else if (strcmp(s, "fallback") == 0)
        *ret = SRM_FSM_EVENT_ADMIN_FALLBACK;
    else if (strcmp(s, "recover") == 0)
        *ret = SRM_FSM_EVENT_ADMIN_RECOVER;
    else
        return -EINVAL;
    return 0;
}

int scenario_run(FILE *in, const char *name, FILE *timeline, FILE *err)
{
    struct sim_params params;
    struct sim *sim = NULL;
    char line[1024];
    int lineno = 0, failures = 0, checks = 0;

    sim_params_default(&params);

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(err, "%s:%d: ", name, lineno);                                                     \
        fprintf(err, __VA_ARGS__);                                                                 \
        fputc('\n', err);                                                                          \
        failures++;                                                                                \
    } while (0)

    while (fgets(line, sizeof(line), in)) {
        char *tok[MAX_TOKENS];
        int nt;
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        nt = tokenize(line, tok, MAX_TOKENS);
        if (nt < 0) {
            FAIL("unterminated quote");
            break;
        }
        if (nt == 0)
            continue;

        if (strcmp(tok[0], "param") == 0) {
            if (nt != 3 || sim_params_set(&params, tok[1], tok[2]) < 0) {
                FAIL("bad parameter: %s", nt > 1 ? tok[1] : "");
                break;
            }
            if (sim) {
                FAIL("param after the first power-on has no effect");
                break;
            }
            continue;
        }
        if (!sim) {
            if (sim_new(&params, 1, &sim) < 0) {
                FAIL("out of memory");
                break;
            }
            sim_set_timeline(sim, timeline);
            if (getenv("SRM_SIM_TRACE"))
                sim_set_trace(sim, timeline ? timeline : stderr);
        }

        if (strcmp(tok[0], "say") == 0) {
            if (timeline)
                fprintf(timeline, "\n== %s\n", nt > 1 ? tok[1] : "");
        } else if (strcmp(tok[0], "show") == 0) {
            if (timeline)
                for (int i = 0; i < SIM_NODES; i++) {
                    const struct srm_fsm *f = sim_fsm(sim, i);
                    fprintf(timeline, "   n%d  %-48s %-34s serves %s\n", i + 1,
                            srm_fsm_state_name(f->state), srm_fsm_reason_name(f->reason),
                            serving_name(sim_serving(sim, i)));
                }
        } else if (strcmp(tok[0], "run") == 0 || strcmp(tok[0], "settle") == 0) {
            int64_t ms = 10 * 60000;
            if (nt > 1 && sim_parse_duration(tok[1], &ms) < 0) {
                FAIL("bad duration: %s", tok[1]);
                break;
            }
            if (tok[0][0] == 'r')
                sim_run_for(sim, ms);
            else if (sim_settle(sim, ms) < 0)
                FAIL("did not settle within %s", nt > 1 ? tok[1] : "10m");
        } else if (strcmp(tok[0], "expect") == 0) {
            enum srm_fsm_state st;
            enum srm_fsm_reason rs = SRM_FSM_REASON_MAX;
            int node = nt == 4 ? parse_node(tok[1]) : -1;
            checks++;
            if (node < 0 || srm_fsm_state_parse(tok[2], &st) < 0 ||
                (strcmp(tok[3], "*") != 0 && srm_fsm_reason_parse(tok[3], &rs) < 0)) {
                FAIL("usage: expect n1|n2 \"State\" \"Reason\"|*");
                break;
            }
            const struct srm_fsm *f = sim_fsm(sim, node);
            if (f->state != st || (rs != SRM_FSM_REASON_MAX && f->reason != rs))
                FAIL("%s is %s / %s, expected %s / %s", tok[1], srm_fsm_state_name(f->state),
                     srm_fsm_reason_name(f->reason), srm_fsm_state_name(st),
                     rs == SRM_FSM_REASON_MAX ? "*" : srm_fsm_reason_name(rs));
        } else if (strcmp(tok[0], "expect-serving") == 0) {
            unsigned want;
            int node = nt == 3 ? parse_node(tok[1]) : -1;
            checks++;
            if (node < 0 || parse_serving(tok[2], &want) < 0) {
                FAIL("usage: expect-serving n1|n2 own|peer|all|none");
                break;
            }
            if (sim_serving(sim, node) != want)
                FAIL("%s serves %s, expected %s", tok[1], serving_name(sim_serving(sim, node)),
                     tok[2]);
        } else if (strcmp(tok[0], "expect-refused") == 0) {
            enum srm_fsm_event_type op = SRM_FSM_EVENT_ADMIN_RECOVER;
            const char *why = NULL;
            int node = nt == 4 ? parse_node(tok[2]) : -1;
            checks++;
            if (nt != 4 || parse_op(tok[1], &op) < 0 ||
                (node < 0 && op != SRM_FSM_EVENT_ADMIN_RECOVER)) {
                FAIL("usage: expect-refused failover|fallback|recover NODE \"text\"");
                break;
            }
            int r = sim_admin(sim, op, node < 0 ? 0 : node, &why);
            if (r == 0)
                FAIL("%s %s was accepted, expected a refusal", tok[1], tok[2]);
            else if (!why || !strstr(why, tok[3]))
                FAIL("%s %s refused with \"%s\", expected it to mention \"%s\"", tok[1], tok[2],
                     why ? why : "", tok[3]);
        } else if (strcmp(tok[0], "failover") == 0 || strcmp(tok[0], "fallback") == 0 ||
                   strcmp(tok[0], "recover") == 0) {
            enum srm_fsm_event_type op = SRM_FSM_EVENT_ADMIN_RECOVER;
            const char *why = NULL;
            int node = nt > 1 ? parse_node(tok[1]) : 0;
            parse_op(tok[0], &op);
            if (node < 0 || (op != SRM_FSM_EVENT_ADMIN_RECOVER && nt != 2)) {
                FAIL("usage: %s NODE", tok[0]);
                break;
            }
            if (sim_admin(sim, op, node, &why) != 0)
                FAIL("%s refused: %s", tok[0], why ? why : "");
        } else {
            enum sim_action a;
            if (sim_action_parse(tok[0], &a) < 0) {
                FAIL("unknown command: %s", tok[0]);
                break;
            }
            if (a == SIM_HEAL || a == SIM_HA_ON || a == SIM_HA_OFF) {
                sim_act(sim, a, 0, 0);
            } else if (a == SIM_DELAY_SPIKE) {
                int64_t ms = 500;
                if (nt > 1 && sim_parse_duration(tok[1], &ms) < 0) {
                    FAIL("bad duration");
                    break;
                }
                sim_act(sim, a, 0, ms);
            } else if (a == SIM_POWER_ON && nt == 2 && strcmp(tok[1], "all") == 0) {
                sim_act(sim, a, 0, 0);
                sim_act(sim, a, 1, 0);
            } else {
                int node = nt == 2 ? parse_node(tok[1]) : -1;
                if (node < 0) {
                    FAIL("usage: %s n1|n2", tok[0]);
                    break;
                }
                sim_act(sim, a, node, 0);
            }
        }
        if (sim && sim_violation(sim)) {
            FAIL("invariant violated: %s", sim_violation(sim));
            break;
        }
    }
#undef FAIL
    sim_free(sim);
    if (checks == 0 && failures == 0) {
        fprintf(err, "%s: no checks\n", name);
        return -EINVAL;
    }
    return failures ? -EPROTO : 0;
}

/* ---- random schedules ---------------------------------------------------------------- */

struct weighted {
    int action; /* enum sim_action, or one of the admin pseudo actions below */
    int weight;
};

enum { RA_FAILOVER = 100, RA_FALLBACK, RA_RECOVER };

static const struct weighted chaos[] = {
    {SIM_POWER_OFF, 4},      {SIM_POWER_ON, 6},      {SIM_CRASH_SRM, 6},
    {SIM_START_SRM, 8},      {SIM_RESTART_SRM, 5},   {SIM_PAUSE, 4},
    {SIM_RESUME, 6},         {SIM_ISOLATE, 5},       {SIM_HEAL, 6},
    {SIM_CS_DOWN, 6},        {SIM_CS_REPAIR, 6},     {SIM_START_SERVICES, 3},
    {SIM_STARTFAIL_ON, 2},   {SIM_STARTFAIL_OFF, 3}, {SIM_DB_FAIL, 4},
    {SIM_DB_OK, 5},          {SIM_TAKEOVER_FAIL, 2}, {SIM_TAKEBACK_FAIL, 2},
    {SIM_INTERNAL_ERROR, 1}, {SIM_CORRUPT_STATE, 1}, {SIM_DELAY_SPIKE, 3},
    {SIM_HA_OFF, 2},         {SIM_HA_ON, 3},         {RA_FAILOVER, 8},
    {RA_FALLBACK, 8},        {RA_RECOVER, 5},
};

static int pick(struct sim *sim)
{
    int total = 0;
    for (size_t i = 0; i < sizeof(chaos) / sizeof(chaos[0]); i++)
        total += chaos[i].weight;
    int r = (int)(sim_rand(sim) % (uint64_t)total);
    for (size_t i = 0; i < sizeof(chaos) / sizeof(chaos[0]); i++) {
        if (r < chaos[i].weight)
            return chaos[i].action;
        r -= chaos[i].weight;
    }
    return SIM_HEAL;
}

static int64_t gap(struct sim *sim)
{
    uint64_t r = sim_rand(sim) % 100;
    if (r < 30)
        return (int64_t)(sim_rand(sim) % 500); /* races */
    if (r < 70)
        return 1000 + (int64_t)(sim_rand(sim) % 30000); /* seconds */
    return 60000 + (int64_t)(sim_rand(sim) % 240000);   /* minutes: timers fire */
}

static bool normal_pair(const struct sim *sim)
{
    for (int i = 0; i < SIM_NODES; i++) {
        const struct srm_fsm *f = sim_fsm(sim, i);
        if (f->state != SRM_FSM_STATE_NORMAL || f->reason != SRM_FSM_REASON_NORMAL)
            return false;
        if (sim_serving(sim, i) != SRM_FSM_PART_OWN)
            return false;
    }
    return true;
}

static void restore_everything(struct sim *sim)
{
    sim_act(sim, SIM_HEAL, 0, 0);
    sim_act(sim, SIM_HA_ON, 0, 0);
    for (int i = 0; i < SIM_NODES; i++) {
        sim_act(sim, SIM_STARTFAIL_OFF, i, 0);
        sim_act(sim, SIM_CS_REPAIR, i, 0);
        sim_act(sim, SIM_DB_OK, i, 0);
        sim_act(sim, SIM_POWER_ON, i, 0);
        sim_act(sim, SIM_RESUME, i, 0);
        sim_act(sim, SIM_START_SRM, i, 0);
    }
}

/* Applies the operation the spec prescribes for the states the group is in (what an
 * admin reading `srmctl status` would do). Returns what it did, or NULL. */
static const char *prescribe(struct sim *sim)
{
    const struct srm_fsm *f[2] = {sim_fsm(sim, 0), sim_fsm(sim, 1)};

    for (int i = 0; i < SIM_NODES; i++)
        if (f[i]->state == SRM_FSM_STATE_FAILED_MODE || f[i]->state == SRM_FSM_STATE_UNKNOWN) {
            sim_admin(sim, SRM_FSM_EVENT_ADMIN_RECOVER, 0, NULL);
            return "recover";
        }
    for (int i = 0; i < SIM_NODES; i++) {
        if ((f[i]->state == SRM_FSM_STATE_IDLE || f[i]->state == SRM_FSM_STATE_FAILED_OVER) &&
            f[1 - i]->state == SRM_FSM_STATE_BACKUP_MODE) {
            sim_admin(sim, SRM_FSM_EVENT_ADMIN_FALLBACK, i, NULL);
            return "fallback";
        }
        if (f[i]->state == SRM_FSM_STATE_FAILED_OVER_CS_DOWN) {
            sim_act(sim, SIM_START_SERVICES, i, 0);
            return "start-services";
        }
    }
    return NULL;
}

static void heal_to_normal(struct sim *sim)
{
    for (int round = 0; round < 12 && !normal_pair(sim) && !sim_violation(sim); round++) {
        sim_settle(sim, 10 * 60000);
        if (normal_pair(sim))
            break;
        if (!prescribe(sim))
            sim_run_for(sim, 5 * 60000);
        else
            sim_run_for(sim, 60000);
    }
}

static int verdict(struct sim *sim, char *why, size_t why_size);

int scenario_random(uint64_t seed, int actions, FILE *timeline, FILE *trace, char *why,
                    size_t why_size)
{
    struct sim_params params;
    struct sim *sim;
    int r = 0;

    sim_params_default(&params);
    /* The cluster around the group: a quorum device (one other vote), or the other nodes
     * of a four- or five-node cluster. */
    params.others = 1 + (int)(seed % 3);
    if (sim_new(&params, seed, &sim) < 0)
        return -ENOMEM;
    sim_set_timeline(sim, timeline);
    sim_set_trace(sim, trace);

    sim_act(sim, SIM_POWER_ON, 0, 0);
    sim_act(sim, SIM_POWER_ON, 1, 0);
    sim_run_for(sim, 3 * 60000);

    for (int k = 0; k < actions && !sim_violation(sim); k++) {
        int a = pick(sim);
        int node = (int)(sim_rand(sim) % 2);
        if (a == RA_FAILOVER)
            sim_admin(sim, SRM_FSM_EVENT_ADMIN_FAILOVER, node, NULL);
        else if (a == RA_FALLBACK)
            sim_admin(sim, SRM_FSM_EVENT_ADMIN_FALLBACK, node, NULL);
        else if (a == RA_RECOVER)
            sim_admin(sim, SRM_FSM_EVENT_ADMIN_RECOVER, 0, NULL);
        else
            sim_act(sim, (enum sim_action)a, node, 100 + (int64_t)(sim_rand(sim) % 2000));
        sim_run_for(sim, gap(sim));
    }

    if (!sim_violation(sim)) {
        if (timeline)
            fprintf(timeline, "\n== heal every fault\n");
        restore_everything(sim);
        heal_to_normal(sim);
    }
    r = verdict(sim, why, why_size);
    sim_free(sim);
    return r;
}

int scenario_from_states(enum srm_fsm_state s1, enum srm_fsm_state s2, FILE *timeline, char *why,
                         size_t why_size)
{
    struct sim_params params;
    struct sim *sim;
    enum srm_fsm_state st[2] = {s1, s2};
    int r;

    sim_params_default(&params);
    if (sim_new(&params, 1, &sim) < 0)
        return -ENOMEM;
    sim_set_timeline(sim, timeline);
    for (int i = 0; i < SIM_NODES; i++) {
        if (st[i] == SRM_FSM_STATE_UNKNOWN)
            sim_act(sim, SIM_CORRUPT_STATE, i, 0);
        else if (st[i] != SRM_FSM_STATE_MAX)
            sim_set_persisted(sim, i, st[i], SRM_FSM_REASON_ADMIN_REQUEST, 1);
    }
    sim_act(sim, SIM_POWER_ON, 0, 0);
    sim_act(sim, SIM_POWER_ON, 1, 0);
    sim_run_for(sim, 3 * 60000);
    heal_to_normal(sim);
    r = verdict(sim, why, why_size);
    sim_free(sim);
    return r;
}

static int verdict(struct sim *sim, char *why, size_t why_size)
{
    int r = 0;

    if (sim_violation(sim)) {
        snprintf(why, why_size, "%s", sim_violation(sim));
        r = -EPROTO;
    } else if (!normal_pair(sim)) {
        const struct srm_fsm *a = sim_fsm(sim, 0), *b = sim_fsm(sim, 1);
        snprintf(why, why_size,
                 "did not return to Normal/Normal: n1 %s / %s serving %s, n2 %s / %s serving %s",
                 srm_fsm_state_name(a->state), srm_fsm_reason_name(a->reason),
                 serving_name(sim_serving(sim, 0)), srm_fsm_state_name(b->state),
                 srm_fsm_reason_name(b->reason), serving_name(sim_serving(sim, 1)));
        r = -EPROTO;
    }
    return r;
}
