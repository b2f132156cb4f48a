/* What both programs share: loading settings and routing log messages to stderr. */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include "qn-config.h"

/**
 * qn_program_load_config:
 * Reads QEMU_NUMA_CONFIG (or the built-in default path; a missing default file is fine, a
 * missing QEMU_NUMA_CONFIG file is an error) and the QEMU_NUMA_* environment.
 * Returns: (transfer full): the settings, or NULL with QN_ERROR_BAD_CONFIG; a file that cannot
 * be read gives "configuration file 'PATH': REASON" (REASON as strerror() says it).
 */
QnConfig *qn_program_load_config(GError **error);

/** qn_program_setup_log: "PROG: warning: ..." lines on stderr at or above cfg's level. */
void qn_program_setup_log(const char *prog, GLogLevelFlags level);

/**
 * qn_program_print_json:
 * @root: (transfer none): a JSON document
 * Prints @root pretty (two-space indent) and a newline on stdout: every `--json` answer.
 */
void qn_program_print_json(JsonNode *root);
