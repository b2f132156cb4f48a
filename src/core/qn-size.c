#include "qn-size.h"

#include <string.h>

#include "qn-error.h"

static guint64
qn_size_suffix_unit(char c)
{
    switch (g_ascii_toupper(c)) {
    case 'B': return 1;
    case 'K': return QN_KiB;
    case 'M': return QN_MiB;
    case 'G': return QN_GiB;
    case 'T': return QN_GiB << 10;
    case 'P': return QN_GiB << 20;
    case 'E': return QN_GiB << 30;
    default: return 0;
    }
}

gboolean
qn_size_parse(const char *text, guint64 default_unit, guint64 *ret_bytes, GError **error)
{
    const char *p = text;
    guint64 whole = 0, unit = default_unit;
    guint64 frac_num = 0, frac_den = 1;
    gboolean hex = FALSE;

    if (text == NULL || !g_ascii_isdigit(*p)) {
        goto bad;
    }
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        hex = TRUE;
        p += 2;
        if (!g_ascii_isxdigit(*p)) {
            goto bad;
        }
        while (g_ascii_isxdigit(*p)) {
            if (whole > (G_MAXUINT64 >> 4)) {
                goto bad;
            }
            whole = whole * 16 + (guint64)g_ascii_xdigit_value(*p++);
        }
    } else {
        while (g_ascii_isdigit(*p)) {
            if (whole > (G_MAXUINT64 - 9) / 10) {
                goto bad;
            }
            whole = whole * 10 + (guint64)(*p++ - '0');
        }
        if (*p == '.') {
            p++;
            if (!g_ascii_isdigit(*p)) {
                goto bad;
            }
            while (g_ascii_isdigit(*p)) {
                if (frac_den < G_GUINT64_CONSTANT(1000000000000)) {
                    frac_num = frac_num * 10 + (guint64)(*p - '0');
                    frac_den *= 10;
                } else if (*p != '0') {
                    goto bad;
                }
                p++;
            }
        }
    }
    if (*p != '\0') {
        unit = qn_size_suffix_unit(*p);
        /* QEMU deprecates and we refuse hex with a suffix: "0x1G" is ambiguous ("0x1" "G"?). */
        if (unit == 0 || p[1] != '\0' || hex) {
            goto bad;
        }
    }
    if (whole > G_MAXINT64 / unit) {
        goto bad;
    }
    {
        guint64 bytes = whole * unit;

        if (frac_num != 0) {
            /* unit <= 2^60 and frac_den <= 10^12: split to stay in 64 bits. */
            guint64 q = unit / frac_den, r = unit % frac_den;
            guint64 frac_bytes = frac_num * q + (frac_num * r) / frac_den;

            if ((frac_num * r) % frac_den != 0) {
                goto bad; /* not a whole number of bytes */
            }
            if (bytes > (guint64)G_MAXINT64 - frac_bytes) {
                goto bad;
            }
            bytes += frac_bytes;
        }
        *ret_bytes = bytes;
    }
    return TRUE;

bad:
    g_set_error(error, QN_ERROR, QN_ERROR_BAD_ARGV, "'%s': invalid size", text ? text : "");
    return FALSE;
}

gchar *
qn_size_format(guint64 bytes)
{
    static const char suffixes[] = "KMGTPE";

    if (bytes == 0) {
        return g_strdup("0");
    }
    for (int i = 5; i >= 0; i--) {
        guint64 unit = G_GUINT64_CONSTANT(1) << (10 * (i + 1));

        if (bytes % unit == 0) {
            return g_strdup_printf("%" G_GUINT64_FORMAT "%c", bytes / unit, suffixes[i]);
        }
    }
    return g_strdup_printf("%" G_GUINT64_FORMAT, bytes);
}

gchar *
qn_size_format_human(guint64 bytes)
{
    static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
    double v = (double)bytes;
    guint i = 0;

    while (v >= 1024.0 && i < G_N_ELEMENTS(units) - 1) {
        v /= 1024.0;
        i++;
    }
    if (i == 0) {
        return g_strdup_printf("%" G_GUINT64_FORMAT " B", bytes);
    }
    return g_strdup_printf("%.1f %s", v, units[i]);
}
