#include "qn-keyval.h"

#include <string.h>

#include "qn-error.h"

static void
qn_kv_free(gpointer p)
{
    QnKv *kv = p;

    g_free(kv->key);
    g_free(kv->value);
    g_free(kv);
}

void
qn_keyval_free(QnKeyval *kv)
{
    if (kv == NULL) {
        return;
    }
    g_ptr_array_unref(kv->items);
    g_free(kv);
}

/* One element up to an unescaped ',' with ",," unescaped; *p is left after the separator. */
static gchar *
qn_keyval_next_element(const char **p, gboolean *ret_had_eq, gchar **ret_key)
{
    GString *key = g_string_new(NULL);
    GString *val = g_string_new(NULL);
    gboolean in_value = FALSE;
    const char *s = *p;

    while (*s != '\0') {
        if (*s == ',') {
            if (s[1] == ',') {
                g_string_append_c(in_value ? val : key, ',');
                s += 2;
                continue;
            }
            s++;
            break;
        }
        if (*s == '=' && !in_value) {
            in_value = TRUE;
            s++;
            continue;
        }
        g_string_append_c(in_value ? val : key, *s);
        s++;
    }
    *p = s;
    *ret_had_eq = in_value;
    *ret_key = g_string_free(key, FALSE);
    return g_string_free(val, FALSE);
}

QnKeyval *
qn_keyval_parse(const char *text, const char *implied_key, GError **error)
{
    g_autoptr(QnKeyval) kv = g_new0(QnKeyval, 1);
    const char *p = text;
    gboolean first = TRUE;

    kv->items = g_ptr_array_new_with_free_func(qn_kv_free);
    while (*p != '\0' || first) {
        gboolean had_eq;
        gchar *key;
        gchar *value = qn_keyval_next_element(&p, &had_eq, &key);
        QnKv *item = g_new0(QnKv, 1);

        if (!had_eq && first && implied_key != NULL) {
            item->key = g_strdup(implied_key);
            item->value = key;
            g_free(value);
        } else if (!had_eq) {
            item->key = key;
            item->value = g_strdup("on");
            g_free(value);
        } else {
            item->key = key;
            item->value = value;
        }
        g_ptr_array_add(kv->items, item);
        if (item->key[0] == '\0' && !(first && implied_key != NULL)) {
            g_set_error(error, QN_ERROR, QN_ERROR_BAD_ARGV, "'%s': empty parameter name", text);
            return NULL;
        }
        first = FALSE;
        if (*p == '\0') {
            break;
        }
    }
    return g_steal_pointer(&kv);
}

const char *
qn_keyval_get(const QnKeyval *kv, const char *key)
{
    for (guint i = kv->items->len; i > 0; i--) {
        QnKv *item = g_ptr_array_index(kv->items, i - 1);

        if (strcmp(item->key, key) == 0) {
            return item->value;
        }
    }
    return NULL;
}

guint
qn_keyval_count(const QnKeyval *kv, const char *key)
{
    guint n = 0;

    for (guint i = 0; i < kv->items->len; i++) {
        QnKv *item = g_ptr_array_index(kv->items, i);

        n += strcmp(item->key, key) == 0;
    }
    return n;
}

gchar *
qn_keyval_escape(const char *value)
{
    GString *s = g_string_new(NULL);

    for (const char *c = value; *c; c++) {
        g_string_append_c(s, *c);
        if (*c == ',') {
            g_string_append_c(s, ',');
        }
    }
    return g_string_free(s, FALSE);
}
