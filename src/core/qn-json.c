#include "qn-json.h"

#include <string.h>

#include "qn-error.h"

/* The member as a value of @type, NULL when absent or null; FALSE for another type. */
static gboolean
qn_json_member(JsonObject *o, const char *name, GType type, JsonNode **ret)
{
    JsonNode *m = json_object_get_member(o, name);
    GType t;

    *ret = NULL;
    if (m == NULL || JSON_NODE_HOLDS_NULL(m)) {
        return TRUE;
    }
    if (!JSON_NODE_HOLDS_VALUE(m)) {
        return FALSE;
    }
    t = json_node_get_value_type(m);
    if (t != type && !(type == G_TYPE_DOUBLE && t == G_TYPE_INT64)) {
        return FALSE;
    }
    *ret = m;
    return TRUE;
}

gboolean
qn_json_member_string(JsonObject *o, const char *name, const char *def, const char **ret)
{
    JsonNode *m;
    gboolean ok = qn_json_member(o, name, G_TYPE_STRING, &m);

    *ret = m != NULL ? json_node_get_string(m) : def;
    return ok;
}

gboolean
qn_json_member_int(JsonObject *o, const char *name, gint64 def, gint64 *ret)
{
    JsonNode *m;
    gboolean ok = qn_json_member(o, name, G_TYPE_INT64, &m);

    *ret = m != NULL ? json_node_get_int(m) : def;
    return ok;
}

gboolean
qn_json_member_double(JsonObject *o, const char *name, gdouble def, gdouble *ret)
{
    JsonNode *m;
    gboolean ok = qn_json_member(o, name, G_TYPE_DOUBLE, &m);

    *ret = m != NULL ? json_node_get_double(m) : def;
    return ok;
}

gboolean
qn_json_member_bool(JsonObject *o, const char *name, gboolean def, gboolean *ret)
{
    JsonNode *m;
    gboolean ok = qn_json_member(o, name, G_TYPE_BOOLEAN, &m);

    *ret = m != NULL ? json_node_get_boolean(m) : def;
    return ok;
}

const char *
qn_json_get_string(JsonObject *o, const char *name, const char *def)
{
    const char *s;

    return qn_json_member_string(o, name, def, &s) ? s : def;
}

gint64
qn_json_get_int(JsonObject *o, const char *name, gint64 def)
{
    gint64 v;

    return qn_json_member_int(o, name, def, &v) ? v : def;
}

/* The value of the four hex digits at @p, or -1 when one of them is not a hex digit. */
static gint
qn_json_hex4(const char *p)
{
    gint v = 0;

    for (guint i = 0; i < 4; i++) {
        gint d = g_ascii_xdigit_value(p[i]);

        if (d < 0) {
            return -1;
        }
        v = v * 16 + d;
    }
    return v;
}

/* Length of the escape starting at data[i] == '\\' inside a double-quoted string, backslash
 * included, or 0 for a \u escape that json-glib would not read as exactly what we skip. */
static gsize
qn_json_escape_len(const char *data, gsize len, gsize i)
{
    gint hi, lo;

    if (i + 1 >= len || data[i + 1] != 'u') {
        return 2; /* \" \\ \n ...: json-glib takes one character; octal digits are harmless */
    }
    if (len - i < 6 || (hi = qn_json_hex4(data + i + 2)) < 0) {
        return 0;
    }
    if (hi < 0xd800 || hi > 0xdfff) {
        return 6;
    }
    if (hi > 0xdbff || len - i < 12 || data[i + 6] != '\\' || data[i + 7] != 'u' ||
        (lo = qn_json_hex4(data + i + 8)) < 0xdc00 || lo > 0xdfff) {
        return 0;
    }
    return 12;
}

gboolean
qn_json_check_bounds(const char *data, gsize len, guint max_depth, gsize max_len,
                     GError **error)
{
    enum { CODE, DQ_STRING, SQ_STRING, COMMENT } state = CODE;
    guint depth = 0;

    g_return_val_if_fail(data != NULL || len == 0, FALSE);

    if (len > max_len) {
        g_set_error(error, QN_ERROR, QN_ERROR_JSON, "JSON longer than %" G_GSIZE_FORMAT " bytes",
                    max_len);
        return FALSE;
    }
    if (len > 0 && memchr(data, '\0', len) != NULL) {
        g_set_error(error, QN_ERROR, QN_ERROR_JSON, "JSON with a NUL byte");
        return FALSE;
    }
    for (gsize i = 0; i < len; i++) {
        char c = data[i];

        switch (state) {
        case CODE:
            if (c == '"') {
                state = DQ_STRING;
            } else if (c == '\'') {
                state = SQ_STRING;
            } else if (c == '/' && i + 1 < len && data[i + 1] == '*') {
                state = COMMENT;
                i++;
            } else if (c == '[' || c == '{') {
                if (++depth > max_depth) {
                    g_set_error(error, QN_ERROR, QN_ERROR_JSON, "JSON nested deeper than %u",
                                max_depth);
                    return FALSE;
                }
            } else if ((c == ']' || c == '}') && depth > 0) {
                depth--;
            }
            break;
        case DQ_STRING:
            if (c == '"') {
                state = CODE;
            } else if (c == '\\') {
                gsize n = qn_json_escape_len(data, len, i);

                if (n == 0) {
                    g_set_error(error, QN_ERROR, QN_ERROR_JSON,
                                "JSON with a malformed \\u escape");
                    return FALSE;
                }
                i += n - 1;
            }
            break;
        case SQ_STRING:
            if (c == '\'') {
                state = CODE;
            }
            break;
        case COMMENT:
            if (c == '*' && i + 1 < len && data[i + 1] == '/') {
                state = CODE;
                i++;
            }
            break;
        }
    }
    return TRUE;
}

JsonNode *
qn_json_parse_bounded(const char *data, gsize len, guint max_depth, gsize max_len,
                      GError **error)
{
    g_autoptr(JsonParser) parser = NULL;
    g_autoptr(GError) local = NULL;
    JsonNode *root;

    g_return_val_if_fail(data != NULL || len == 0, NULL);

    if (!qn_json_check_bounds(data, len, max_depth, max_len, error)) {
        return NULL;
    }
    if (len > G_MAXSSIZE) {
        g_set_error(error, QN_ERROR, QN_ERROR_JSON, "JSON longer than %" G_GSSIZE_FORMAT " bytes",
                    G_MAXSSIZE);
        return NULL;
    }
    parser = json_parser_new(); /* mutable: the monitor edits entries it reads */
    if (!json_parser_load_from_data(parser, len > 0 ? data : "", (gssize)len, &local)) {
        g_set_error(error, QN_ERROR, QN_ERROR_JSON, "%s", local->message);
        return NULL;
    }
    root = json_parser_steal_root(parser);
    if (root == NULL) {
        g_set_error(error, QN_ERROR, QN_ERROR_JSON, "no JSON value");
        return NULL;
    }
    return root;
}
