/* Typed reads of JSON object members whose type we do not control: hand-edited or damaged
 * ledger files, the user's JSON -object. json-glib's *_member_with_default() getters log a
 * critical (and abort under G_DEBUG=fatal-criticals) when such a member is an object or an
 * array; library code never logs (STYLE.md), so these say "wrong type" instead. */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/**
 * qn_json_member_string:
 * @o: an object
 * @name: the member
 * @def: (nullable): what *@ret is when the member is absent or null
 * @ret: (out) (transfer none): the string, owned by @o, or @def
 * Returns: FALSE when the member is there with another type (@ret is then @def).
 */
gboolean qn_json_member_string(JsonObject *o, const char *name, const char *def,
                               const char **ret);

/**
 * qn_json_member_int:
 * Like qn_json_member_string() for an integer (a JSON number without fraction or exponent).
 */
gboolean qn_json_member_int(JsonObject *o, const char *name, gint64 def, gint64 *ret);

/** qn_json_member_double: like qn_json_member_int(); an integer is taken as a double too. */
gboolean qn_json_member_double(JsonObject *o, const char *name, gdouble def, gdouble *ret);

/** qn_json_member_bool: like qn_json_member_string() for true/false. */
gboolean qn_json_member_bool(JsonObject *o, const char *name, gboolean def, gboolean *ret);

/**
 * qn_json_get_string:
 * Returns: (transfer none) (nullable): the member @name of @o if it is a string, else @def
 *   (absent, null or another type alike), for readers that only display or compare it.
 */
const char *qn_json_get_string(JsonObject *o, const char *name, const char *def);

/** qn_json_get_int: the member @name of @o if it is an integer, else @def. */
gint64 qn_json_get_int(JsonObject *o, const char *name, gint64 def);

G_END_DECLS
