/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The parts of santad's internal API (santad.h) that santad's metrics.c
 * reads, stubbed with settable values, so that its snapshot and export can
 * be tested without a fanotify daemon.
 */
#include "santad-stub.h"

#include <string.h>

santa_config stub_config;
santad_counters stub_counters;
santad_rule_counts stub_rules;
uint64_t stub_cache_count;
uint64_t stub_events;

const santa_config *santad_config(const santad *d)
{
	return &stub_config;
}

santa_client_mode santad_client_mode(const santad *d)
{
	return stub_config.client_mode;
}

const santad_counters *santad_get_counters(const santad *d)
{
	return &stub_counters;
}

uint64_t santad_cache_count(const santad *d)
{
	return stub_cache_count;
}

int santad_rules_count(santad *d, santad_rule_counts *ret)
{
	*ret = stub_rules;
	return 0;
}

size_t santad_static_rule_count(const santad *d)
{
	return stub_config.n_static_rules;
}

int santad_events_count(santad *d, uint64_t *ret)
{
	*ret = stub_events;
	return 0;
}

const char *santad_decision_name(santad_decision d)
{
	return d == SANTAD_DECISION_ALLOW ? "ALLOW" : d == SANTAD_DECISION_DENY ? "DENY" : "NONE";
}

const char *santad_reason_name(santad_reason r)
{
	static const char *const names[] = {
		"UNKNOWN", "BINARY", "CERT", "TEAMID", "SIGNINGID", "CDHASH", "SCOPE",
		"COMPILER", "TRANSITIVE", "PENDING_TRANSITIVE", "LONG_PATH", "NOTRUNNING",
	};

	return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "UNKNOWN";
}
