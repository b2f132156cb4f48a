/* The QEMU 7.2 command-line option table (names and whether each takes an argument). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
    const char *name; /* without the leading dash(es), e.g. "m", "object" */
    gboolean has_arg; /* QEMU's HAS_ARG: the next argv element is the option's argument */
} QnQemuOption;

/**
 * qn_qemu_option_lookup:
 * @name: option name without leading dashes ("m", not "-m")
 *
 * Returns: (transfer none) (nullable): the static table entry, or %NULL when QEMU 7.2 has no
 * such option (QEMU itself would reject it with "invalid option").
 */
const QnQemuOption *qn_qemu_option_lookup(const char *name);

/* The QEMU release the option table was taken from. */
#define QN_QEMU_OPTIONS_MAJOR 7
#define QN_QEMU_OPTIONS_MINOR 2

/**
 * qn_qemu_version_newer_than_table:
 * @version_text: what `qemu-system-x86_64 --version` printed ("QEMU emulator version 8.2.2
 *   (Debian ...)\n..."), any length; only its first line is read
 * @ret_version: (out) (optional): "8.2.2", when it is newer
 *
 * Options a newer QEMU adds pass through the argv model only while their argument does not
 * start with '-' (an unknown option is taken to have no argument, and a following '-x' parses
 * as an option of its own): the operator should know when the binary is newer than the table.
 * Returns: TRUE when the text names a QEMU release newer than QN_QEMU_OPTIONS_MAJOR.MINOR;
 * FALSE when it is not newer or cannot be read.
 */
gboolean qn_qemu_version_newer_than_table(const char *version_text, gchar **ret_version);

G_END_DECLS
