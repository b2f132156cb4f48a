#include "qn-json.h"

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
