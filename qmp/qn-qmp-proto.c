/* qemu-numa: the QMP wire protocol, bytes <-> JSON, with no file descriptors and no syscalls. */
#include "config.h"

#include <string.h>

#include "qn-error.h"
#include "qn-json.h"
#include "qn-qmp-proto.h"

/* How much of a bad line an error message quotes. */
#define QN_QMP_EXCERPT_LEN 64

struct _QnQmpDecoder {
    GByteArray *buf;    /* received bytes; [start, buf->len) not consumed yet */
    gsize start;        /* first unconsumed byte */
    gsize scan;         /* bytes in [start, scan) hold no '\n': memchr resumes here */
    gsize max_line;     /* longest accepted line, terminator excluded */
    gboolean discarding; /* dropping the rest of an over-long line up to its '\n' */
};

QnQmpDecoder *
qn_qmp_decoder_new(gsize max_line)
{
    QnQmpDecoder *dec = g_new0(QnQmpDecoder, 1);

    dec->buf = g_byte_array_new();
    dec->max_line = max_line != 0 ? max_line : QN_QMP_DECODER_MAX_LINE_DEFAULT;
    return dec;
}

void
qn_qmp_decoder_free(QnQmpDecoder *dec)
{
    if (dec == NULL) {
        return;
    }
    g_byte_array_unref(dec->buf);
    g_free(dec);
}

gsize
qn_qmp_decoder_get_buffered(const QnQmpDecoder *dec)
{
    return dec->buf->len - dec->start;
}

/* Drops consumed bytes once they are at least half the buffer, so that popping many small
 * messages from one big chunk does not memmove the tail once per message. */
static void
qn_qmp_decoder_compact(QnQmpDecoder *dec)
{
    if (dec->start == 0) {
        return;
    }
    if (dec->start == dec->buf->len) {
        g_byte_array_set_size(dec->buf, 0);
    } else if (dec->start >= dec->buf->len / 2) {
        g_byte_array_remove_range(dec->buf, 0, dec->start);
    } else {
        return;
    }
    dec->scan -= dec->start;
    dec->start = 0;
}

void
qn_qmp_decoder_feed(QnQmpDecoder *dec, const char *buf, gsize len)
{
    g_return_if_fail(dec != NULL);
    g_return_if_fail(buf != NULL || len == 0);

    if (dec->discarding) {
        const char *nl = memchr(buf, '\n', len);

        if (nl == NULL) {
            return;
        }
        dec->discarding = FALSE;
        len -= (gsize) (nl + 1 - buf);
        buf = nl + 1;
    }
    if (len == 0) {
        return;
    }
    qn_qmp_decoder_compact(dec);
    /* GByteArray lengths are guint: a feed that would overflow one is already far over any
     * sane line cap, so it is caught below as a too-long line. */
    g_return_if_fail(len <= G_MAXUINT - dec->buf->len);
    g_byte_array_append(dec->buf, (const guint8 *) buf, (guint) len);
}

/* A printable, quoted excerpt of a bad line for error messages. */
static gchar *
qn_qmp_excerpt(const char *line, gsize len)
{
    g_autofree gchar *head = g_strndup(line, MIN(len, QN_QMP_EXCERPT_LEN));
    g_autofree gchar *escaped = g_strescape(head, NULL);

    return g_strdup_printf("'%s%s'", escaped, len > QN_QMP_EXCERPT_LEN ? "..." : "");
}

static JsonNode *
qn_qmp_decoder_parse_line(QnQmpDecoder *dec, const char *line, gsize len, GError **error)
{
    g_autoptr(GError) local_error = NULL;
    g_autoptr(JsonNode) root = NULL;

    if (memchr(line, '\0', len) != NULL) {
        g_autofree gchar *excerpt = qn_qmp_excerpt(line, len);

        g_set_error(error, QN_ERROR, QN_ERROR_QMP, "malformed QMP message %s: contains a NUL byte",
                    excerpt);
        return NULL;
    }
    /* The line's length is already capped; its depth is checked before json-glib recurses. */
    root = qn_json_parse_bounded(line, len, QN_JSON_MAX_DEPTH, dec->max_line, &local_error);
    if (root == NULL) {
        g_autofree gchar *excerpt = qn_qmp_excerpt(line, len);

        g_set_error(error, QN_ERROR, QN_ERROR_QMP, "malformed QMP message %s: %s", excerpt,
                    local_error->message);
        return NULL;
    }
    if (!JSON_NODE_HOLDS_OBJECT(root)) {
        g_autofree gchar *excerpt = qn_qmp_excerpt(line, len);

        g_set_error(error, QN_ERROR, QN_ERROR_QMP, "QMP message %s is not a JSON object", excerpt);
        return NULL;
    }
    return g_steal_pointer(&root);
}

JsonNode *
qn_qmp_decoder_pop(QnQmpDecoder *dec, GError **error)
{
    g_return_val_if_fail(dec != NULL, NULL);
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    for (;;) {
        const char *data = (const char *) dec->buf->data;
        const char *nl = NULL;
        const char *line;
        gsize len;

        if (dec->scan < dec->buf->len) {
            nl = memchr(data + dec->scan, '\n', dec->buf->len - dec->scan);
        }
        if (nl == NULL) {
            gsize have = dec->buf->len - dec->start;
            /* A trailing '\r' may be the first half of "\r\n", which the cap does not count:
             * a line of exactly max_line bytes must not fail because its "\n" comes in the
             * next read. */
            gsize counted = have > 0 && data[dec->buf->len - 1] == '\r' ? have - 1 : have;

            dec->scan = dec->buf->len;
            if (counted > dec->max_line) {
                /* Nothing of this line is worth keeping; drop the rest as it arrives. */
                g_byte_array_set_size(dec->buf, 0);
                dec->start = dec->scan = 0;
                dec->discarding = TRUE;
                g_set_error(error, QN_ERROR, QN_ERROR_QMP,
                            "QMP message longer than %" G_GSIZE_FORMAT " bytes (%" G_GSIZE_FORMAT
                            " received without a line end)",
                            dec->max_line, have);
            }
            return NULL;
        }

        line = data + dec->start;
        len = (gsize) (nl - line);
        dec->start = dec->scan = (gsize) (nl + 1 - data);
        if (len > 0 && line[len - 1] == '\r') {
            len--;
        }
        if (len > dec->max_line) {
            g_set_error(error, QN_ERROR, QN_ERROR_QMP,
                        "QMP message longer than %" G_GSIZE_FORMAT " bytes (%" G_GSIZE_FORMAT
                        " bytes)",
                        dec->max_line, len);
            return NULL;
        }
        while (len > 0 && g_ascii_isspace(line[len - 1])) {
            len--;
        }
        while (len > 0 && g_ascii_isspace(line[0])) {
            line++;
            len--;
        }
        if (len == 0) {
            continue;
        }
        return qn_qmp_decoder_parse_line(dec, line, len, error);
    }
}

QnQmpMessageKind
qn_qmp_message_classify(JsonNode *msg)
{
    JsonObject *obj;

    if (msg == NULL || !JSON_NODE_HOLDS_OBJECT(msg)) {
        return QN_QMP_MESSAGE_UNKNOWN;
    }
    obj = json_node_get_object(msg);
    if (json_object_has_member(obj, "QMP")) {
        return QN_QMP_MESSAGE_GREETING;
    }
    if (json_object_has_member(obj, "return")) {
        return QN_QMP_MESSAGE_RETURN;
    }
    if (json_object_has_member(obj, "error")) {
        return QN_QMP_MESSAGE_ERROR;
    }
    if (json_object_has_member(obj, "event")) {
        return QN_QMP_MESSAGE_EVENT;
    }
    return QN_QMP_MESSAGE_UNKNOWN;
}

/* The member @name of object node @node if it is a string, else NULL. */
static const char *
qn_qmp_get_string_member(JsonNode *node, const char *name)
{
    JsonNode *member;

    if (node == NULL || !JSON_NODE_HOLDS_OBJECT(node)) {
        return NULL;
    }
    member = json_object_get_member(json_node_get_object(node), name);
    if (member == NULL || json_node_get_value_type(member) != G_TYPE_STRING) {
        return NULL;
    }
    return json_node_get_string(member);
}

/* The member @name of object node @node if it is an object, else NULL. */
static JsonNode *
qn_qmp_get_object_member(JsonNode *node, const char *name)
{
    JsonNode *member;

    if (node == NULL || !JSON_NODE_HOLDS_OBJECT(node)) {
        return NULL;
    }
    member = json_object_get_member(json_node_get_object(node), name);
    if (member == NULL || !JSON_NODE_HOLDS_OBJECT(member)) {
        return NULL;
    }
    return member;
}

/* The member @name of object node @node if it is an integer, else @fallback. */
static gint64
qn_qmp_get_int_member(JsonNode *node, const char *name, gint64 fallback)
{
    JsonNode *member;

    if (node == NULL || !JSON_NODE_HOLDS_OBJECT(node)) {
        return fallback;
    }
    member = json_object_get_member(json_node_get_object(node), name);
    if (member == NULL || json_node_get_value_type(member) != G_TYPE_INT64) {
        return fallback;
    }
    return json_node_get_int(member);
}

const char *
qn_qmp_message_get_id(JsonNode *msg)
{
    return qn_qmp_get_string_member(msg, "id");
}

JsonNode *
qn_qmp_message_get_return(JsonNode *msg)
{
    if (qn_qmp_message_classify(msg) != QN_QMP_MESSAGE_RETURN) {
        return NULL;
    }
    return json_object_get_member(json_node_get_object(msg), "return");
}

gboolean
qn_qmp_message_check_error(JsonNode *msg, GError **error)
{
    JsonNode *err;
    const char *klass;
    const char *desc;

    if (qn_qmp_message_classify(msg) != QN_QMP_MESSAGE_ERROR) {
        return TRUE;
    }
    err = json_object_get_member(json_node_get_object(msg), "error");
    klass = qn_qmp_get_string_member(err, "class");
    desc = qn_qmp_get_string_member(err, "desc");
    g_set_error(error, QN_ERROR, QN_ERROR_QMP_COMMAND, "%s: %s",
                klass != NULL ? klass : "GenericError", desc != NULL ? desc : "no description");
    return FALSE;
}

gboolean
qn_qmp_error_has_class(const GError *error, const char *error_class)
{
    gsize n;

    g_return_val_if_fail(error_class != NULL, FALSE);

    if (!g_error_matches(error, QN_ERROR, QN_ERROR_QMP_COMMAND)) {
        return FALSE;
    }
    n = strlen(error_class);
    return strncmp(error->message, error_class, n) == 0 && error->message[n] == ':';
}

gboolean
qn_qmp_message_get_event(JsonNode *msg, const char **ret_event, JsonObject **ret_data,
                         gint64 *ret_ts_usec)
{
    const char *event = qn_qmp_get_string_member(msg, "event");
    JsonNode *data;
    JsonNode *ts;
    gint64 sec;
    gint64 usec;

    if (event == NULL || qn_qmp_message_classify(msg) != QN_QMP_MESSAGE_EVENT) {
        return FALSE;
    }
    data = qn_qmp_get_object_member(msg, "data");
    ts = qn_qmp_get_object_member(msg, "timestamp");
    sec = qn_qmp_get_int_member(ts, "seconds", -1);
    usec = qn_qmp_get_int_member(ts, "microseconds", -1);

    if (ret_event != NULL) {
        *ret_event = event;
    }
    if (ret_data != NULL) {
        *ret_data = data != NULL ? json_node_get_object(data) : NULL;
    }
    if (ret_ts_usec != NULL) {
        /* QEMU reports -1/-1 when its clock failed; anything out of range is just as useless. */
        if (sec < 0 || usec < 0 || usec >= G_USEC_PER_SEC ||
            sec > G_MAXINT64 / G_USEC_PER_SEC - 1) {
            *ret_ts_usec = -1;
        } else {
            *ret_ts_usec = sec * G_USEC_PER_SEC + usec;
        }
    }
    return TRUE;
}

gboolean
qn_qmp_greeting_get_version(JsonNode *msg, gint *ret_major, gint *ret_minor, gint *ret_micro)
{
    JsonNode *qmp = qn_qmp_get_object_member(msg, "QMP");
    JsonNode *version = qn_qmp_get_object_member(qmp, "version");
    JsonNode *qemu = qn_qmp_get_object_member(version, "qemu");
    gint64 major = qn_qmp_get_int_member(qemu, "major", -1);
    gint64 minor = qn_qmp_get_int_member(qemu, "minor", -1);
    gint64 micro = qn_qmp_get_int_member(qemu, "micro", -1);

    if (major < 0 || minor < 0 || micro < 0 || major > G_MAXINT || minor > G_MAXINT ||
        micro > G_MAXINT) {
        return FALSE;
    }
    if (ret_major != NULL) {
        *ret_major = (gint) major;
    }
    if (ret_minor != NULL) {
        *ret_minor = (gint) minor;
    }
    if (ret_micro != NULL) {
        *ret_micro = (gint) micro;
    }
    return TRUE;
}

gchar *
qn_qmp_command_encode(const char *execute, JsonObject *arguments, const char *id, gsize *ret_len)
{
    g_autoptr(JsonObject) obj = json_object_new();
    g_autoptr(JsonNode) root = json_node_alloc();
    g_autoptr(JsonGenerator) gen = json_generator_new();
    GString *out;

    g_return_val_if_fail(execute != NULL, NULL);

    json_object_set_string_member(obj, "execute", execute);
    if (arguments != NULL) {
        json_object_set_object_member(obj, "arguments", json_object_ref(arguments));
    }
    if (id != NULL) {
        json_object_set_string_member(obj, "id", id);
    }
    json_node_init_object(root, obj);
    json_generator_set_root(gen, root);
    out = json_generator_to_gstring(gen, g_string_new(NULL));
    g_string_append(out, "\r\n");
    if (ret_len != NULL) {
        *ret_len = out->len;
    }
    return g_string_free(out, FALSE);
}
