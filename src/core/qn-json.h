/* Typed reads of JSON object members whose type we do not control: hand-edited or damaged
 * ledger files, the user's JSON -object. json-glib's *_member_with_default() getters log a
 * critical (and abort under G_DEBUG=fatal-criticals) when such a member is an object or an
 * array; library code never logs (STYLE.md), so these say "wrong type" instead. */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/**
 * QN_JSON_MAX_DEPTH:
 * The one nesting limit for JSON that another user can write (ledger files, QMP lines) and for
 * the user's JSON -object/-device values: at most this many arrays and objects open at once
 * (`[]` is depth 1, `{"a":[1]}` depth 2), counted as QEMU counts them (brackets plus braces).
 *
 * json-glib 1.6 parses by recursion without any limit, so 100 KB of `[` overflows the stack
 * (SIGSEGV) of whoever parses it: root's launcher, monitor and qemu-numa-ctl. QEMU's own parser
 * refuses nesting beyond 1024 (qobject/json-streamer.c, MAX_NESTING); what we read is far
 * shallower: a ledger entry is about 6 deep (entry, "events", an event, its QMP "data"),
 * query-status and the QMP greeting 3, libvirt's -object JSON 2. 64 leaves ten times that
 * margin while keeping json-glib's recursion to a few KiB of stack.
 */
#define QN_JSON_MAX_DEPTH 64

/**
 * qn_json_check_bounds:
 * @data: (array length=len): JSON text, not necessarily NUL-terminated
 * @len: bytes in @data
 * @max_depth: most arrays and objects open at once, e.g. %QN_JSON_MAX_DEPTH
 * @max_len: most bytes accepted
 * @error: %QN_ERROR_JSON: "JSON longer than N bytes", "JSON nested deeper than N", "JSON with a
 *   NUL byte", "JSON with a malformed \u escape"
 *
 * One pass over @data, before any parser sees it, that follows json-glib 1.6's tokenizer
 * (json-glib/json-scanner.c) wherever a bracket might hide: double-quoted strings with
 * backslash escapes, single-quoted strings without escapes and C comments, which json-glib all
 * accepts; brackets inside them are not counted. Where json-glib would read past the end of a
 * string that this pass saw end, nesting could hide from the count, so those inputs are
 * refused too, none of them valid JSON (RFC 8259 §7): a NUL byte (json-glib goes on after a
 * backslash and NUL), a `\u` not followed by four hex digits (json-glib eats the next non-hex
 * character, a closing quote included) and a surrogate escape that is not a high one followed
 * by `\u` and a low one (json-glib reads the next six characters as the low half). Input that
 * passes may still be malformed in other ways: the parser reports those.
 * Returns: TRUE when @data is within both limits.
 */
gboolean qn_json_check_bounds(const char *data, gsize len, guint max_depth, gsize max_len,
                              GError **error);

/**
 * qn_json_parse_bounded:
 * @data: (array length=len): JSON text from a file or socket another user can write, or an
 *   argument; not necessarily NUL-terminated
 * @len: bytes in @data
 * @max_depth: as in qn_json_check_bounds(), normally %QN_JSON_MAX_DEPTH
 * @max_len: as in qn_json_check_bounds(); each caller documents its own
 * @error: %QN_ERROR_JSON with qn_json_check_bounds()'s message, json-glib's parse error (e.g.
 *   "<data>:1:2: Parse error: unexpected end of file, expected ..."), or "no JSON value" for
 *   empty or blank input
 *
 * The only way untrusted JSON reaches json_parser_load_from_data(): the bounds check first.
 * Returns: (transfer full): the root node (of any type: callers check it), or %NULL.
 */
JsonNode *qn_json_parse_bounded(const char *data, gsize len, guint max_depth, gsize max_len,
                                GError **error);

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
