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

G_END_DECLS
