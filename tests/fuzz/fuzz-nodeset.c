/* Fuzz target "nodeset": the kernel's id-list format ("0-3,8", cpulist, Mems_allowed_list,
 * host-nodes=, -numa cpus=) and hex masks ("00000000,00000003"), src/core/qn-bitmap.c.
 *
 * Input: any bytes, read up to the first NUL as the kernel's files are. Both parsers run on it.
 * Invariant: whatever parses formats back to a list that parses to the same set, and
 * formatting is a fixed point (format(parse(format(s))) == format(s)). */
#include "config.h"

#include <glib.h>

#include "fuzz.h"
#include "qn-bitmap.h"

const char qn_fuzz_target[] = "nodeset";

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    qn_fuzz_init_logging();
    return 0;
}

static void
qn_check_round_trip(const QnBitmap *set, const char *what, const char *text)
{
    g_autofree gchar *list = qn_bitmap_format_list(set, ",");
    g_autoptr(GError) error = NULL;
    g_autoptr(QnBitmap) again = qn_bitmap_parse_list(list, &error);
    g_autofree gchar *list2 = NULL;

    if (again == NULL) {
        qn_fuzz_fail("%s '%s': formatted as '%s', which does not parse: %s", what, text, list,
                error->message);
    }
    if (!qn_bitmap_equal(set, again)) {
        qn_fuzz_fail("%s '%s': formatted as '%s', which parses to another set", what, text, list);
    }
    list2 = qn_bitmap_format_list(again, ",");
    if (g_strcmp0(list, list2) != 0) {
        qn_fuzz_fail("%s '%s': formatted '%s' then '%s'", what, text, list, list2);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree gchar *text = g_strndup((const char *)data, size);
    g_autoptr(QnBitmap) list = qn_bitmap_parse_list(text, NULL);
    g_autoptr(QnBitmap) mask = qn_bitmap_parse_mask(text, NULL);

    if (list != NULL) {
        qn_check_round_trip(list, "list", text);
    }
    if (mask != NULL) {
        qn_check_round_trip(mask, "mask", text);
    }
    return 0;
}
