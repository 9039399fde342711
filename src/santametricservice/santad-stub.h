/* SPDX-License-Identifier: Apache-2.0 */
/* Settable stand-ins for santad's state; see santad-stub.c. */
#pragma once

#include "santad.h"

extern santa_config stub_config;
extern santad_counters stub_counters;
extern santad_rule_counts stub_rules;
extern uint64_t stub_cache_count;
extern uint64_t stub_events;
