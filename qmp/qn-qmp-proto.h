/* qemu-numa: the QMP wire protocol, bytes <-> JSON, with no file descriptors and no syscalls. */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* Longest line the decoder buffers before giving up on it; a QEMU 7.2 query-qmp-schema reply
 * is about 200 KiB, so this leaves a wide margin while bounding memory. */
#define QN_QMP_DECODER_MAX_LINE_DEFAULT ((gsize) 64 * 1024 * 1024)

/**
 * QnQmpDecoder:
 * Splits a QMP byte stream into messages. QEMU writes one compact JSON object per line, ended
 * by "\r\n"; "\n" alone also ends a line. Chunks may cut messages anywhere. A pretty-printed
 * monitor (`-mon ...,pretty=on`) spreads objects over several lines and is not supported.
 */
typedef struct _QnQmpDecoder QnQmpDecoder;

/**
 * qn_qmp_decoder_new:
 * @max_line: longest accepted line in bytes, terminator excluded; 0 means
 *     %QN_QMP_DECODER_MAX_LINE_DEFAULT
 *
 * Returns: (transfer full): an empty decoder, free with qn_qmp_decoder_free()
 */
QnQmpDecoder *qn_qmp_decoder_new(gsize max_line);

/**
 * qn_qmp_decoder_free:
 * @dec: (nullable): the decoder
 */
void qn_qmp_decoder_free(QnQmpDecoder *dec);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QnQmpDecoder, qn_qmp_decoder_free)

/**
 * qn_qmp_decoder_feed:
 * @dec: the decoder
 * @buf: (array length=len): bytes read from the monitor, copied
 * @len: number of bytes in @buf, may be 0
 *
 * Appends bytes; messages they complete are taken with qn_qmp_decoder_pop(). Bytes of a line
 * already reported as too long are dropped up to its end. Call pop until it returns NULL after
 * each feed: unpopped lines stay buffered, so the line cap only bounds memory for callers that do.
 */
void qn_qmp_decoder_feed(QnQmpDecoder *dec, const char *buf, gsize len);

/**
 * qn_qmp_decoder_pop:
 * @dec: the decoder
 * @error: set when the next line is not a JSON object, is too long, or is nested deeper
 *   than %QN_JSON_MAX_DEPTH (checked before json-glib parses it: "malformed QMP message
 *   '[[[...': JSON nested deeper than 64")
 *
 * Takes the next complete message. Blank lines are skipped. A bad line is consumed and reported
 * once, as %QN_ERROR_QMP; the following call goes on with the next line, so the caller chooses
 * whether a protocol error ends the connection.
 *
 * Returns: (transfer full) (nullable): a JSON object node, or NULL with @error unset when no
 *     complete line is buffered, or NULL with @error set
 */
JsonNode *qn_qmp_decoder_pop(QnQmpDecoder *dec, GError **error);

/**
 * qn_qmp_decoder_get_buffered:
 * @dec: the decoder
 *
 * Returns: bytes buffered that are not yet part of a popped message (for diagnostics, e.g. a
 *     connection closed in the middle of a reply)
 */
gsize qn_qmp_decoder_get_buffered(const QnQmpDecoder *dec);

/**
 * QnQmpMessageKind:
 * What a QMP server message is, from its distinguishing key.
 */
typedef enum {
    QN_QMP_MESSAGE_UNKNOWN,  /* not an object, or none of the keys below */
    QN_QMP_MESSAGE_GREETING, /* {"QMP": {"version": ..., "capabilities": [...]}} */
    QN_QMP_MESSAGE_RETURN,   /* {"return": ..., "id": ...} */
    QN_QMP_MESSAGE_ERROR,    /* {"error": {"class": ..., "desc": ...}, "id": ...} */
    QN_QMP_MESSAGE_EVENT,    /* {"event": ..., "data": ..., "timestamp": {...}} */
} QnQmpMessageKind;

/**
 * qn_qmp_message_classify:
 * @msg: (nullable): a decoded message
 *
 * Returns: the kind of @msg; UNKNOWN for NULL or a non-object
 */
QnQmpMessageKind qn_qmp_message_classify(JsonNode *msg);

/**
 * qn_qmp_message_get_id:
 * @msg: (nullable): a decoded message
 *
 * Returns: (transfer none) (nullable): the string "id" member of a reply, owned by @msg; NULL
 *     if absent or not a string (we only send string ids)
 */
const char *qn_qmp_message_get_id(JsonNode *msg);

/**
 * qn_qmp_message_get_return:
 * @msg: (nullable): a decoded message
 *
 * Returns: (transfer none) (nullable): the "return" member of a RETURN message, owned by @msg;
 *     json_node_copy() it to keep it (cheap: containers are shared, not copied)
 */
JsonNode *qn_qmp_message_get_return(JsonNode *msg);

/**
 * qn_qmp_message_check_error:
 * @msg: (nullable): a decoded message
 * @error: set when @msg is an error reply
 *
 * Turns {"error": {"class": C, "desc": D}} into a %QN_ERROR_QMP_COMMAND error with the message
 * "C: D" (e.g. "CommandNotFound: The command foo has not been found"). A missing class reads
 * "GenericError", a missing desc "no description".
 *
 * Returns: FALSE with @error set if @msg is an error reply, else TRUE
 */
gboolean qn_qmp_message_check_error(JsonNode *msg, GError **error);

/**
 * qn_qmp_error_has_class:
 * @error: (nullable): an error from this module
 * @error_class: a QMP error class, e.g. "CommandNotFound"
 *
 * Returns: TRUE if @error is %QN_ERROR_QMP_COMMAND and came from a reply of class @error_class
 */
gboolean qn_qmp_error_has_class(const GError *error, const char *error_class);

/**
 * qn_qmp_message_get_event:
 * @msg: (nullable): a decoded message
 * @ret_event: (out) (optional) (transfer none): the event name, owned by @msg
 * @ret_data: (out) (optional) (transfer none) (nullable): the "data" object, owned by @msg;
 *     NULL when the event has none
 * @ret_ts_usec: (out) (optional): QEMU's timestamp in microseconds since the Unix epoch, or -1
 *     when absent or malformed
 *
 * Outputs are written only when @msg is an event.
 *
 * Returns: TRUE if @msg is an event with a string name
 */
gboolean qn_qmp_message_get_event(JsonNode *msg, const char **ret_event, JsonObject **ret_data,
                                  gint64 *ret_ts_usec);

/**
 * qn_qmp_greeting_get_version:
 * @msg: (nullable): a decoded message
 * @ret_major: (out) (optional): QEMU major version
 * @ret_minor: (out) (optional): QEMU minor version
 * @ret_micro: (out) (optional): QEMU micro version
 *
 * Outputs are written only on success.
 *
 * Returns: TRUE if @msg is a greeting carrying QMP.version.qemu.{major,minor,micro}
 */
gboolean qn_qmp_greeting_get_version(JsonNode *msg, gint *ret_major, gint *ret_minor,
                                     gint *ret_micro);

/**
 * qn_qmp_command_encode:
 * @execute: the command name, UTF-8
 * @arguments: (nullable): the "arguments" object; omitted when NULL
 * @id: (nullable): the "id" to echo in the reply; omitted when NULL
 * @ret_len: (out) (optional): length of the result in bytes, terminator included
 *
 * Encodes {"execute": ..., "arguments": ..., "id": ...} as one line ending with "\r\n"; control
 * characters in strings are escaped, so the line never contains a raw newline.
 *
 * Limit: numbers are written by json-glib, which writes some doubles as invalid JSON
 * (infinity as "inf.0", 1e48 as "1e+48.0": json-glib 1.6 appends ".0" to any double written
 * without a '.'; found by fuzzing). No command we send carries a double; pass integers.
 *
 * Returns: (transfer full): the NUL-terminated line, g_free() it
 */
gchar *qn_qmp_command_encode(const char *execute, JsonObject *arguments, const char *id,
                             gsize *ret_len);

G_END_DECLS
