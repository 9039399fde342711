/* SPDX-License-Identifier: Apache-2.0 */
/* Rule import files are read from wherever an administrator got them:
 * parse arbitrary bytes, and export whatever parsed. */
#include <stdint.h>
#include <stdlib.h>

#include "rule_io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	santactl_rules rs;
	char err[512], *json;

	if (santactl_rules_parse((const char *)data, size, &rs, err, sizeof(err)) < 0)
		return 0;
	json = santactl_rules_to_json(rs.rules, rs.n, NULL);
	free(json);
	santactl_rules_done(&rs);
	return 0;
}
