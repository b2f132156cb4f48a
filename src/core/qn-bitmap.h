/* Sets of CPU or node ids: the kernel's list format ("0-3,8-11") and hex masks. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Ids are below this bound: Linux's NR_CPUS maximum is 8192 and MAX_NUMNODES 1024. */
#define QN_BITMAP_MAX_ID 8192u

/**
 * QnBitmap:
 * A growable set of small non-negative ids (CPU numbers, node ids). Pure data, no syscalls.
 * libnuma's struct bitmask is not used here because src/core must not link libnuma (its
 * constructor reads /proc and /sys); src/host converts with qn_bitmap_to_numa().
 */
typedef struct {
    guint64 *words;
    guint nwords;
} QnBitmap;

QnBitmap *qn_bitmap_new(void);
QnBitmap *qn_bitmap_copy(const QnBitmap *src);
void qn_bitmap_free(QnBitmap *bitmap);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QnBitmap, qn_bitmap_free)

/** qn_bitmap_set: add @id (< %QN_BITMAP_MAX_ID, programmer error otherwise). */
void qn_bitmap_set(QnBitmap *bitmap, guint id);
void qn_bitmap_clear(QnBitmap *bitmap, guint id);
gboolean qn_bitmap_test(const QnBitmap *bitmap, guint id);
/** qn_bitmap_count: number of ids in the set. */
guint qn_bitmap_count(const QnBitmap *bitmap);
/** qn_bitmap_next: smallest id >= @from in the set, or -1 when there is none. */
gint qn_bitmap_next(const QnBitmap *bitmap, guint from);
gboolean qn_bitmap_equal(const QnBitmap *a, const QnBitmap *b);
/** qn_bitmap_and / qn_bitmap_or: in place, @a becomes a&b or a|b. */
void qn_bitmap_and(QnBitmap *a, const QnBitmap *b);
void qn_bitmap_or(QnBitmap *a, const QnBitmap *b);
/** qn_bitmap_and_not: in place, @a becomes a & ~b. */
void qn_bitmap_and_not(QnBitmap *a, const QnBitmap *b);

#define QN_BITMAP_FOREACH(bm, var) \
    for (gint var = qn_bitmap_next((bm), 0); var >= 0; var = qn_bitmap_next((bm), (guint)var + 1))

/**
 * qn_bitmap_parse_list:
 * @text: the kernel's list format (Documentation/admin-guide/cputopology.rst, the format of
 *   `cpulist`, `online`, `Mems_allowed_list`): comma-separated ids and ranges "a-b", optional
 *   stride "a-b:c/d" is not accepted; surrounding whitespace and a trailing newline are ignored;
 *   an empty string is the empty set.
 * @error: %QN_ERROR_TOPOLOGY naming the bad text, for junk, a reversed range, or an id
 *   >= %QN_BITMAP_MAX_ID
 *
 * Returns: (transfer full): the set, or %NULL on error.
 */
QnBitmap *qn_bitmap_parse_list(const char *text, GError **error);

/**
 * qn_bitmap_parse_mask:
 * @text: the kernel's hex mask format ("00000000,00000003", as in `Cpus_allowed` and `cpumap`):
 *   comma-separated 32-bit hex words, most significant first.
 * @error: %QN_ERROR_TOPOLOGY for junk or more than %QN_BITMAP_MAX_ID bits
 *
 * Returns: (transfer full): the set, or %NULL on error.
 */
QnBitmap *qn_bitmap_parse_mask(const char *text, GError **error);

/**
 * qn_bitmap_format_list:
 * @sep: separator between ranges: "," for the kernel list format, ":" for QEMU's `host-nodes=`
 *   keyval form is NOT what QEMU takes (it takes repeated keys), so callers use ",".
 *
 * Returns: (transfer full): "0-3,8", or "" for the empty set.
 */
gchar *qn_bitmap_format_list(const QnBitmap *bitmap, const char *sep);

G_END_DECLS
