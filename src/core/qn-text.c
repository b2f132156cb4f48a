#include "qn-text.h"

#include <string.h>

static void
qn_text_append_hex(GString *out, const char *p, gsize n)
{
    for (gsize i = 0; i < n; i++) {
        g_string_append_printf(out, "\\x%02x", (guchar)p[i]);
    }
}

gchar *
qn_text_escape_terminal(const char *str)
{
    GString *out;
    const char *p;

    if (str == NULL) {
        return NULL;
    }
    out = g_string_sized_new(strlen(str));
    for (p = str; *p != '\0';) {
        gunichar c = g_utf8_get_char_validated(p, -1);
        gsize n;

        if (c == (gunichar)-1 || c == (gunichar)-2) {
            qn_text_append_hex(out, p, 1); /* not UTF-8: this byte alone, then resync */
            p++;
            continue;
        }
        n = (gsize)(g_utf8_next_char(p) - p);
        if (c < 0x20 || c == 0x7f || (c >= 0x80 && c <= 0x9f)) {
            qn_text_append_hex(out, p, n);
        } else {
            g_string_append_len(out, p, (gssize)n);
        }
        p += n;
    }
    return g_string_free(out, FALSE);
}
