/* Sizes as QEMU writes them ("8G", "512", "1.5G") and as we print them. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define QN_KiB (G_GUINT64_CONSTANT(1) << 10)
#define QN_MiB (G_GUINT64_CONSTANT(1) << 20)
#define QN_GiB (G_GUINT64_CONSTANT(1) << 30)

/**
 * qn_size_parse:
 * @text: a size as QEMU's qemu_strtosz() accepts it (util/cutils.c): a decimal number with an
 *   optional fraction, or a hex integer ("0x..."), followed by an optional suffix B, K, M, G,
 *   T, P, E (case-insensitive, powers of 1024). Leading/trailing whitespace is refused, as
 *   QEMU does.
 * @default_unit: the multiplier when there is no suffix: 1 for most options, %QN_MiB for the
 *   legacy suffix-less `-m 512` and `-numa node,mem=512` forms (softmmu/vl.c, hw/core/numa.c).
 * @ret_bytes: (out): the size in bytes, written only on success
 * @error: %QN_ERROR_BAD_ARGV ("'12Q': invalid size") for junk, a fraction that is not a whole
 *   number of bytes, or a value above 2^63 bytes
 */
gboolean qn_size_parse(const char *text, guint64 default_unit, guint64 *ret_bytes,
                       GError **error);

/**
 * qn_size_format:
 * Returns: (transfer full): @bytes in the largest binary unit that divides it exactly,
 *   QEMU style ("8G", "512M", "2M", "4097K", "123B" is "123"), for messages and -m values.
 */
gchar *qn_size_format(guint64 bytes);

/**
 * qn_size_format_human:
 * Returns: (transfer full): @bytes with one decimal in the largest unit below it ("7.5 GiB"),
 *   for people; never parsed back.
 */
gchar *qn_size_format_human(guint64 bytes);

G_END_DECLS
