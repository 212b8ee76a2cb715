/* Scenario files and random fault schedules for the simulator (see scenario.c). */
#ifndef SRM_SIM_SCENARIO_H
#define SRM_SIM_SCENARIO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sim.h"

/* Runs one scenario; checks that fail are reported on err. Returns 0 when every check
 * passed, -EPROTO when one failed, -EINVAL for a file without checks. */
int scenario_run(FILE *in, const char *name, FILE *timeline, FILE *err);

/* Runs one seeded random schedule of `actions` faults and admin operations, heals every
 * fault, applies the operations the spec prescribes until the group is Normal/Normal, and
 * checks the invariants throughout. Returns 0, or -EPROTO with the reason in why. */
int scenario_random(uint64_t seed, int actions, FILE *timeline, FILE *trace, char *why,
                    size_t why_size);

/* Starts the two nodes from the given persisted states (SRM_FSM_STATE_MAX: nothing
 * persisted; SRM_FSM_STATE_UNKNOWN: unreadable), then applies the operations the spec
 * prescribes until the group is Normal/Normal. Returns 0, or -EPROTO with why. */
int scenario_from_states(enum srm_fsm_state s1, enum srm_fsm_state s2, FILE *timeline, char *why,
                         size_t why_size);

#endif
