/* Fuzz target "qmp": the QMP wire decoder and message accessors, qmp/qn-qmp-proto.c.
 *
 * Input: byte 0 picks the decoder's line cap (0: the default, else 8 x byte), byte 1 the chunk
 * size (1-256 bytes) the stream is fed in, the rest is what QEMU wrote on the socket.
 * Invariants:
 * - chunking does not matter: the stream fed whole and fed in chunks (popping after each
 *   chunk, as the client does) gives the same messages and the same number of errors, in the
 *   same order; the cap only bounds memory, so a line the whole feed accepts must not be
 *   rejected because its "\r\n" arrived in another read;
 * - every accessor accepts every decoded message (no critical, no crash);
 * - a decoded message used as a command's "arguments" encodes to one line that decodes back
 *   to {"execute", "arguments"} equal to it (when one more level stays within the limit);
 * - no message nested deeper than QN_JSON_MAX_DEPTH is decoded, and whatever
 *   qn_json_check_bounds() lets through json-glib parses no deeper (each line,
 *   qn_fuzz_check_json_bounds()). */
#include "config.h"

#include <string.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include "fuzz.h"
#include "qn-qmp-proto.h"

const char qn_fuzz_target[] = "qmp";

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    qn_fuzz_init_logging();
    return 0;
}

/* The arrays below hold NULL for an error, which json_node_unref() refuses. */
static void
qn_node_unref0(gpointer node)
{
    if (node != NULL) {
        json_node_unref(node);
    }
}

/* Pops everything complete into @out: a message as its JSON text, an error as NULL. */
static void
qn_pop_all(QnQmpDecoder *dec, GPtrArray *out)
{
    for (;;) {
        g_autoptr(GError) error = NULL;
        JsonNode *msg = qn_qmp_decoder_pop(dec, &error);

        if (msg != NULL) {
            g_ptr_array_add(out, msg);
        } else if (error != NULL) {
            g_ptr_array_add(out, NULL);
        } else {
            return;
        }
    }
}

static void
qn_check_accessors(JsonNode *msg)
{
    g_autoptr(GError) error = NULL;
    const char *event = NULL;
    JsonObject *data = NULL;
    gint64 ts = 0;
    gint major, minor, micro;
    QnQmpMessageKind kind = qn_qmp_message_classify(msg);
    gboolean ok;

    (void)qn_qmp_message_get_id(msg);
    if ((qn_qmp_message_get_return(msg) != NULL) != (kind == QN_QMP_MESSAGE_RETURN)) {
        qn_fuzz_fail("a RETURN message without its return, or the other way round");
    }
    ok = qn_qmp_message_check_error(msg, &error);
    if (ok != (kind != QN_QMP_MESSAGE_ERROR) || ok != (error == NULL)) {
        qn_fuzz_fail("check_error disagrees with classify");
    }
    if (error != NULL) {
        (void)qn_qmp_error_has_class(error, "GenericError");
    }
    if (qn_qmp_message_get_event(msg, &event, &data, &ts)) {
        g_assert(kind == QN_QMP_MESSAGE_EVENT && event != NULL);
        g_assert(ts >= -1);
    }
    if (qn_qmp_greeting_get_version(msg, &major, &minor, &micro)) {
        g_assert(kind == QN_QMP_MESSAGE_GREETING && major >= 0 && minor >= 0 && micro >= 0);
    }
}

/* Can json-glib write @node back as JSON it reads again? Not when it holds a number that
 * overflowed to infinity ("1e999" parses as inf: written "inf.0"), nor a finite double whose
 * shortest form is an exponent without a '.' (1e48 is written "1e+48.0": json-glib 1.6 appends
 * ".0" to a double written without a '.'; found by fuzzing). The commands we send never carry
 * a double, so the encoder round trip is not asked of such messages; qn_qmp_command_encode()
 * documents the limit. */
static gboolean
qn_json_glib_can_write(JsonNode *node)
{
    g_autofree gchar *text = json_to_string(node, FALSE);
    g_autoptr(JsonParser) parser = json_parser_new();

    return json_parser_load_from_data(parser, text, -1, NULL);
}

static void
qn_check_encode(JsonNode *msg)
{
    g_autoptr(QnQmpDecoder) dec = qn_qmp_decoder_new(0);
    g_autoptr(GPtrArray) back = g_ptr_array_new_with_free_func(qn_node_unref0);
    gsize len = 0;
    g_autofree gchar *line = qn_qmp_command_encode("qn-fuzz", json_node_get_object(msg),
                                                   "qn-1", &len);
    JsonNode *args;

    g_assert(len == strlen(line) && g_str_has_suffix(line, "\r\n"));
    if (memchr(line, '\n', len - 1) != NULL) {
        qn_fuzz_fail("encoded command holds a raw newline: %s", line);
    }
    qn_qmp_decoder_feed(dec, line, len);
    qn_pop_all(dec, back);
    if (back->len != 1 || g_ptr_array_index(back, 0) == NULL) {
        qn_fuzz_fail("encoded command does not decode to one message: %s", line);
    }
    args = json_object_get_member(json_node_get_object(g_ptr_array_index(back, 0)), "arguments");
    if (args == NULL || !json_node_equal(args, msg)) {
        qn_fuzz_fail("encoded command decodes to other arguments: %s", line);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(QnQmpDecoder) whole = NULL;
    g_autoptr(QnQmpDecoder) chunked = NULL;
    g_autoptr(GPtrArray) a = g_ptr_array_new_with_free_func(qn_node_unref0);
    g_autoptr(GPtrArray) b = g_ptr_array_new_with_free_func(qn_node_unref0);
    const char *stream;
    gsize len, chunk;
    gsize max_line;

    if (size < 2) {
        return 0;
    }
    max_line = (gsize)data[0] * 8;
    chunk = (gsize)data[1] + 1;
    stream = (const char *)data + 2;
    len = size - 2;

    /* per line, as the decoder hands lines to the parser (the whole stream would double the
     * json-glib work per input for a case the decoder never parses) */
    for (const char *line = stream, *end = stream + len; line < end;) {
        const char *nl = memchr(line, '\n', (gsize)(end - line));
        const char *stop = nl != NULL ? nl : end;

        qn_fuzz_check_json_bounds(line, (gsize)(stop - line));
        line = stop + 1;
    }

    whole = qn_qmp_decoder_new(max_line);
    qn_qmp_decoder_feed(whole, stream, len);
    qn_pop_all(whole, a);

    chunked = qn_qmp_decoder_new(max_line);
    for (gsize off = 0; off < len; off += chunk) {
        qn_qmp_decoder_feed(chunked, stream + off, MIN(chunk, len - off));
        qn_pop_all(chunked, b);
    }
    if (a->len != b->len) {
        qn_fuzz_fail("fed whole: %u messages and errors; in chunks of %" G_GSIZE_FORMAT ": %u",
                a->len, chunk, b->len);
    }
    for (guint i = 0; i < a->len; i++) {
        JsonNode *x = g_ptr_array_index(a, i);
        JsonNode *y = g_ptr_array_index(b, i);

        if ((x == NULL) != (y == NULL) || (x != NULL && !json_node_equal(x, y))) {
            g_autofree gchar *xs = x ? json_to_string(x, FALSE) : g_strdup("(error)");
            g_autofree gchar *ys = y ? json_to_string(y, FALSE) : g_strdup("(error)");

            qn_fuzz_fail("item %u differs between whole and chunked feeds (chunk %" G_GSIZE_FORMAT
                         ", cap %" G_GSIZE_FORMAT "):\nwhole:   %s\nchunked: %s",
                         i, chunk, max_line, xs, ys);
        }
        if (x != NULL) {
            guint depth = qn_fuzz_json_depth(x, QN_JSON_MAX_DEPTH);

            if (depth > QN_JSON_MAX_DEPTH) {
                qn_fuzz_fail("item %u: a message nested deeper than %u was decoded", i,
                             QN_JSON_MAX_DEPTH);
            }
            qn_check_accessors(x);
            /* the command wraps @x in one more object: at the limit it is refused, rightly */
            if (depth < QN_JSON_MAX_DEPTH && qn_json_glib_can_write(x)) {
                qn_check_encode(x);
            }
        }
    }
    return 0;
}
