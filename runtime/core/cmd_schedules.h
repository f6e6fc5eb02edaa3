/*
 * cmd_schedules - `nova-worker schedules`: the enabled plugins' schedules.
 *
 *   schedules [--count N]     every schedule with its next N runs (default 3),
 *                             and what Redis holds for it (next slot, runs so far)
 *   schedules run NAME        adds one run of schedule NAME now, as an extra
 *                             job (the schedule itself is not moved)
 *
 * The schedules come from the plugins' descriptors and the configuration
 * (no plugin is started). -c FILE is taken anywhere on the line (main.c).
 * Returns the exit code: 0, 1 (failure), 2 (usage).
 */
#ifndef NOVA_RUNTIME_CMD_SCHEDULES_H
#define NOVA_RUNTIME_CMD_SCHEDULES_H

#include "common/conf.h"

int nova__cmd_schedules(const struct nova__config *cfg, int argc, char **argv);

#endif
