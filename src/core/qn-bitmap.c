#include "qn-bitmap.h"

#include <string.h>

#include "qn-error.h"

QnBitmap *
qn_bitmap_new(void)
{
    return g_new0(QnBitmap, 1);
}

QnBitmap *
qn_bitmap_copy(const QnBitmap *src)
{
    QnBitmap *bm = qn_bitmap_new();

    if (src->nwords > 0) {
        bm->words = g_memdup2(src->words, src->nwords * sizeof(guint64));
        bm->nwords = src->nwords;
    }
    return bm;
}

void
qn_bitmap_free(QnBitmap *bitmap)
{
    if (bitmap == NULL) {
        return;
    }
    g_free(bitmap->words);
    g_free(bitmap);
}

static void
qn_bitmap_grow(QnBitmap *bm, guint nwords)
{
    if (nwords <= bm->nwords) {
        return;
    }
    bm->words = g_renew(guint64, bm->words, nwords);
    memset(bm->words + bm->nwords, 0, (nwords - bm->nwords) * sizeof(guint64));
    bm->nwords = nwords;
}

void
qn_bitmap_set(QnBitmap *bitmap, guint id)
{
    g_assert(id < QN_BITMAP_MAX_ID);
    qn_bitmap_grow(bitmap, id / 64 + 1);
    bitmap->words[id / 64] |= G_GUINT64_CONSTANT(1) << (id % 64);
}

void
qn_bitmap_clear(QnBitmap *bitmap, guint id)
{
    if (id / 64 < bitmap->nwords) {
        bitmap->words[id / 64] &= ~(G_GUINT64_CONSTANT(1) << (id % 64));
    }
}

gboolean
qn_bitmap_test(const QnBitmap *bitmap, guint id)
{
    return id / 64 < bitmap->nwords && (bitmap->words[id / 64] >> (id % 64)) & 1;
}

guint
qn_bitmap_count(const QnBitmap *bitmap)
{
    guint n = 0;

    for (guint i = 0; i < bitmap->nwords; i++) {
        n += (guint)__builtin_popcountll(bitmap->words[i]);
    }
    return n;
}

gint
qn_bitmap_next(const QnBitmap *bitmap, guint from)
{
    for (guint w = from / 64; w < bitmap->nwords; w++) {
        guint64 word = bitmap->words[w];

        if (w == from / 64) {
            word &= ~G_GUINT64_CONSTANT(0) << (from % 64);
        }
        if (word != 0) {
            return (gint)(w * 64 + (guint)__builtin_ctzll(word));
        }
    }
    return -1;
}

gboolean
qn_bitmap_equal(const QnBitmap *a, const QnBitmap *b)
{
    guint n = MAX(a->nwords, b->nwords);

    for (guint i = 0; i < n; i++) {
        guint64 x = i < a->nwords ? a->words[i] : 0;
        guint64 y = i < b->nwords ? b->words[i] : 0;

        if (x != y) {
            return FALSE;
        }
    }
    return TRUE;
}

void
qn_bitmap_and(QnBitmap *a, const QnBitmap *b)
{
    for (guint i = 0; i < a->nwords; i++) {
        a->words[i] &= i < b->nwords ? b->words[i] : 0;
    }
}

void
qn_bitmap_or(QnBitmap *a, const QnBitmap *b)
{
    qn_bitmap_grow(a, b->nwords);
    for (guint i = 0; i < b->nwords; i++) {
        a->words[i] |= b->words[i];
    }
}

void
qn_bitmap_and_not(QnBitmap *a, const QnBitmap *b)
{
    for (guint i = 0; i < a->nwords && i < b->nwords; i++) {
        a->words[i] &= ~b->words[i];
    }
}

static gboolean
qn_parse_id(const char **p, guint *ret_id)
{
    guint64 v = 0;
    const char *s = *p;

    if (!g_ascii_isdigit(*s)) {
        return FALSE;
    }
    while (g_ascii_isdigit(*s)) {
        v = v * 10 + (guint64)(*s - '0');
        if (v >= QN_BITMAP_MAX_ID) {
            return FALSE;
        }
        s++;
    }
    *p = s;
    *ret_id = (guint)v;
    return TRUE;
}

QnBitmap *
qn_bitmap_parse_list(const char *text, GError **error)
{
    g_autoptr(QnBitmap) bm = qn_bitmap_new();
    g_autofree gchar *copy = g_strstrip(g_strdup(text));
    const char *p = copy;

    if (*p == '\0') {
        return g_steal_pointer(&bm);
    }
    for (;;) {
        guint lo, hi;

        if (!qn_parse_id(&p, &lo)) {
            goto bad;
        }
        hi = lo;
        if (*p == '-') {
            p++;
            if (!qn_parse_id(&p, &hi) || hi < lo) {
                goto bad;
            }
        }
        for (guint id = lo; id <= hi; id++) {
            qn_bitmap_set(bm, id);
        }
        if (*p == '\0') {
            break;
        }
        if (*p != ',') {
            goto bad;
        }
        p++;
    }
    return g_steal_pointer(&bm);

bad:
    g_set_error(error, QN_ERROR, QN_ERROR_TOPOLOGY, "'%s': invalid id list", copy);
    return NULL;
}

QnBitmap *
qn_bitmap_parse_mask(const char *text, GError **error)
{
    g_autoptr(QnBitmap) bm = qn_bitmap_new();
    g_autofree gchar *copy = g_strstrip(g_strdup(text));
    g_auto(GStrv) words = g_strsplit(copy, ",", -1);
    guint n = g_strv_length(words);

    if (n == 0 || n * 32 > QN_BITMAP_MAX_ID) {
        goto bad;
    }
    for (guint i = 0; i < n; i++) {
        const char *w = words[n - 1 - i];
        gsize len = strlen(w);
        guint64 v = 0;

        if (len == 0 || len > 8) {
            goto bad;
        }
        for (const char *c = w; *c; c++) {
            if (!g_ascii_isxdigit(*c)) {
                goto bad;
            }
            v = v * 16 + (guint64)g_ascii_xdigit_value(*c);
        }
        for (guint bit = 0; bit < 32; bit++) {
            if ((v >> bit) & 1) {
                qn_bitmap_set(bm, i * 32 + bit);
            }
        }
    }
    return g_steal_pointer(&bm);

bad:
    g_set_error(error, QN_ERROR, QN_ERROR_TOPOLOGY, "'%s': invalid hex mask", copy);
    return NULL;
}

gchar *
qn_bitmap_format_list(const QnBitmap *bitmap, const char *sep)
{
    GString *s = g_string_new(NULL);
    gint id = qn_bitmap_next(bitmap, 0);

    while (id >= 0) {
        gint end = id;

        while (qn_bitmap_test(bitmap, (guint)end + 1)) {
            end++;
        }
        if (s->len > 0) {
            g_string_append(s, sep);
        }
        if (end == id) {
            g_string_append_printf(s, "%d", id);
        } else {
            g_string_append_printf(s, "%d-%d", id, end);
        }
        id = qn_bitmap_next(bitmap, (guint)end + 1);
    }
    return g_string_free(s, FALSE);
}
