/* qemu-numa: tests of the QMP client against a scripted server on a socketpair() or a unix
 * socket, and against a real QEMU. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "qn-error.h"
#include "qn-qmp-client.h"

/* Verbatim from QEMU 7.2 (Debian 12). */
#define GREETING_72                                                                            \
    "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, "         \
    "\"package\": \"Debian 1:7.2+dfsg-7+deb12u18+b3\"}, \"capabilities\": [\"oob\"]}}\r\n"

/* Generous: only a broken client takes this long. */
#define WAIT_MS 10000

/* ---- the scripted server side: plain blocking I/O in its own thread ---- */

typedef struct _Server Server;
typedef void (*ServerScript)(Server *srv);

struct _Server {
    int fd;
    GString *in; /* received, not yet consumed */
    ServerScript script;
    GThread *thread;
    gpointer data; /* for the script */
};

/* Next line sent by the client without its "\r\n", or NULL at end of file. */
static gchar *
server_read_line(Server *srv)
{
    for (;;) {
        char buf[4096];
        const char *nl = memchr(srv->in->str, '\n', srv->in->len);
        ssize_t n;

        if (nl != NULL) {
            gsize len = (gsize) (nl - srv->in->str);
            gchar *line = g_strndup(srv->in->str, len > 0 && nl[-1] == '\r' ? len - 1 : len);

            g_string_erase(srv->in, 0, (gssize) len + 1);
            return line;
        }
        n = read(srv->fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        g_assert_cmpint(n, >=, 0);
        if (n == 0) {
            return NULL;
        }
        g_string_append_len(srv->in, buf, n);
    }
}

static void
server_write(Server *srv, const char *data)
{
    gsize len = strlen(data);

    while (len > 0) {
        ssize_t n = write(srv->fd, data, len);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        g_assert_cmpint(n, >, 0);
        data += n;
        len -= (gsize) n;
    }
}

static void G_GNUC_PRINTF(2, 3)
server_printf(Server *srv, const char *format, ...)
{
    g_autofree gchar *text = NULL;
    va_list ap;

    va_start(ap, format);
    text = g_strdup_vprintf(format, ap);
    va_end(ap);
    server_write(srv, text);
}

/* Reads one command, checks its name, returns its id (g_free it). */
static gchar *
server_expect(Server *srv, const char *execute)
{
    g_autofree gchar *line = server_read_line(srv);
    g_autoptr(JsonNode) msg = NULL;
    JsonObject *obj;

    g_assert_nonnull(line);
    msg = json_from_string(line, NULL);
    g_assert_nonnull(msg);
    obj = json_node_get_object(msg);
    g_assert_cmpstr(json_object_get_string_member(obj, "execute"), ==, execute);
    g_assert_nonnull(qn_qmp_message_get_id(msg));
    g_assert_true(g_str_has_prefix(qn_qmp_message_get_id(msg), "qn-"));
    return g_strdup(qn_qmp_message_get_id(msg));
}

static void
server_negotiate(Server *srv)
{
    g_autofree gchar *id = NULL;

    server_write(srv, GREETING_72);
    id = server_expect(srv, "qmp_capabilities");
    server_printf(srv, "{\"return\": {}, \"id\": \"%s\"}\r\n", id);
}

/* Waits for the client to close. */
static void
server_wait_eof(Server *srv)
{
    g_autofree gchar *line = server_read_line(srv);

    g_assert_null(line);
}

static void
server_close(Server *srv)
{
    g_assert_cmpint(close(srv->fd), ==, 0);
    srv->fd = -1;
}

static gpointer
server_thread(gpointer data)
{
    Server *srv = data;

    srv->script(srv);
    return NULL;
}

static void
server_start(Server *srv, ServerScript script)
{
    srv->script = script;
    srv->thread = g_thread_new("qmp-server", server_thread, srv);
}

/* ---- the client side ---- */

typedef struct {
    gchar *name;
    gint64 ts_usec;
    JsonObject *data;
} Event;

static void
event_free(Event *ev)
{
    g_free(ev->name);
    g_clear_pointer(&ev->data, json_object_unref);
    g_free(ev);
}

typedef struct {
    GMainContext *context; /* thread default while the test runs */
    QnQmpClient *client;
    Server srv;
    GPtrArray *events;
    guint closed_count;
    gchar *closed_reason;
} Fixture;

static void
on_event(QnQmpClient *client G_GNUC_UNUSED, const char *event, JsonObject *data, gint64 ts_usec,
         gpointer user_data)
{
    Fixture *fx = user_data;
    Event *ev = g_new0(Event, 1);

    ev->name = g_strdup(event);
    ev->ts_usec = ts_usec;
    ev->data = data != NULL ? json_object_ref(data) : NULL;
    g_ptr_array_add(fx->events, ev);
}

static void
on_closed(QnQmpClient *client, const GError *reason, gpointer user_data)
{
    Fixture *fx = user_data;

    g_assert_error(reason, QN_ERROR, QN_ERROR_QMP);
    g_assert_true(qn_qmp_client_is_closed(client));
    fx->closed_count++;
    g_free(fx->closed_reason);
    fx->closed_reason = g_strdup(reason->message);
}

static gboolean
flag_set_cb(gpointer user_data)
{
    *(gboolean *) user_data = TRUE;
    return G_SOURCE_REMOVE;
}

/* Iterates @context until *@flag, failing the test after WAIT_MS. */
static void
wait_until(GMainContext *context, const gboolean *flag)
{
    gboolean expired = FALSE;
    GSource *timeout = g_timeout_source_new(WAIT_MS);

    g_source_set_callback(timeout, flag_set_cb, &expired, NULL);
    g_source_attach(timeout, context);
    while (!*flag && !expired) {
        g_main_context_iteration(context, TRUE);
    }
    g_source_destroy(timeout);
    g_source_unref(timeout);
    g_assert_false(expired);
}

/* Iterates until the closed handler ran, failing the test after WAIT_MS. */
static void
wait_closed(Fixture *fx)
{
    gboolean closed;
    gboolean expired = FALSE;
    GSource *timeout = g_timeout_source_new(WAIT_MS);

    g_source_set_callback(timeout, flag_set_cb, &expired, NULL);
    g_source_attach(timeout, fx->context);
    while (fx->closed_count == 0 && !expired) {
        g_main_context_iteration(fx->context, TRUE);
    }
    closed = fx->closed_count > 0;
    g_source_destroy(timeout);
    g_source_unref(timeout);
    g_assert_true(closed);
}

static void
drain(GMainContext *context)
{
    while (g_main_context_iteration(context, FALSE)) {
    }
}

static void
fixture_attach(Fixture *fx)
{
    fx->events = g_ptr_array_new_with_free_func((GDestroyNotify) event_free);
    qn_qmp_client_set_event_handler(fx->client, on_event, fx, NULL);
    qn_qmp_client_set_closed_handler(fx->client, on_closed, fx, NULL);
}

static void
fixture_setup(Fixture *fx, gconstpointer user_data G_GNUC_UNUSED)
{
    g_autoptr(GError) error = NULL;
    int fds[2];

    memset(fx, 0, sizeof(*fx));
    fx->context = g_main_context_new();
    g_main_context_push_thread_default(fx->context);
    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), ==, 0);
    fx->srv.fd = fds[1];
    fx->srv.in = g_string_new(NULL);
    /* NULL context: the thread default, i.e. fx->context. */
    fx->client = qn_qmp_client_new_for_fd(fds[0], NULL, &error);
    g_assert_no_error(error);
    g_assert_nonnull(fx->client);
    g_assert_true(qn_qmp_client_get_context(fx->client) == fx->context);
    fixture_attach(fx);
}

static void
fixture_teardown(Fixture *fx, gconstpointer user_data G_GNUC_UNUSED)
{
    if (fx->client != NULL) {
        qn_qmp_client_set_closed_handler(fx->client, NULL, NULL, NULL);
        qn_qmp_client_close(fx->client);
        g_clear_object(&fx->client);
    }
    if (fx->srv.thread != NULL) {
        g_thread_join(fx->srv.thread);
    }
    if (fx->srv.fd >= 0) {
        close(fx->srv.fd);
    }
    if (fx->srv.in != NULL) {
        g_string_free(fx->srv.in, TRUE);
    }
    drain(fx->context);
    g_main_context_pop_thread_default(fx->context);
    g_main_context_unref(fx->context);
    g_clear_pointer(&fx->events, g_ptr_array_unref);
    g_free(fx->closed_reason);
}

typedef struct {
    gboolean done;
    guint order; /* completion rank, from 1 */
    JsonNode *ret;
    GError *error;
} Reply;

static guint completions;

static void
reply_clear(Reply *r)
{
    g_clear_pointer(&r->ret, json_node_unref);
    g_clear_error(&r->error);
}

static void
execute_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
    Reply *r = user_data;

    g_assert_false(r->done);
    r->ret = qn_qmp_client_execute_finish(QN_QMP_CLIENT(source), result, &r->error);
    g_assert_true((r->ret == NULL) != (r->error == NULL));
    r->done = TRUE;
    r->order = ++completions;
}

static void
handshake(Fixture *fx)
{
    g_autoptr(GError) error = NULL;

    g_assert_true(qn_qmp_client_handshake_sync(fx->client, WAIT_MS, &error));
    g_assert_no_error(error);
}

/* ---- socketpair tests ---- */

static void
script_handshake(Server *srv)
{
    /* Let the client ask for the handshake before the greeting is there. */
    g_usleep(50 * 1000);
    server_negotiate(srv);
    server_wait_eof(srv);
}

static void
test_handshake(Fixture *fx, gconstpointer user_data G_GNUC_UNUSED)
{
    gint major = 0, minor = 0, micro = 0;

    server_start(&fx->srv, script_handshake);
    g_assert_null(qn_qmp_client_get_greeting(fx->client));
    handshake(fx);
    g_assert_true(qn_qmp_greeting_get_version(qn_qmp_client_get_greeting(fx->client), &major,
                                              &minor, &micro));
    g_assert_cmpint(major, ==, 7);
    g_assert_cmpint(minor, ==, 2);
    g_assert_cmpint(micro, ==, 22);
    g_assert_false(qn_qmp_client_is_closed(fx->client));
    g_assert_cmpuint(fx->closed_count, ==, 0);
}

static void
script_greeting_first(Server *srv)
{
    server_negotiate(srv);
    server_wait_eof(srv);
}

static void
test_handshake_after_greeting(Fixture *fx, gconstpointer user_data G_GNUC_UNUSED)
{
    server_start(&fx->srv, script_greeting_first);
    /* The greeting arrives (and is kept) before anyone asks for a handshake. */
    while (qn_qmp_client_get_greeting(fx->client) == NULL) {
        g_main_context_iteration(fx->context, TRUE);
    }
    handshake(fx);
}

static void
script_out_of_order(Server *srv)
{
    g_autofree gchar *id_a = NULL;
    g_autofree gchar *id_b = NULL;

    server_negotiate(srv);
    id_a = server_expect(srv, "query-status");
    id_b = server_expect(srv, "query-version");
    g_assert_cmpstr(id_a, !=, id_b);
    /* Both replies in one write, B's first. */
    server_printf(srv,
                  "{\"return\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, "
                  "\"package\": \"\"}, \"id\": \"%s\"}\r\n"
                  "{\"return\": {\"status\": \"prelaunch\", \"singlestep\": false, "
                  "\"running\": false}, \"id\": \"%s\"}\r\n",
                  id_b, id_a);
    server_wait_eof(srv);
}

static void
test_out_of_order(Fixture *fx, gconstpointer user_data G_GNUC_UNUSED)
{
    Reply a = {0};
    Reply b = {0};
    JsonObject *qemu;

    server_start(&fx->srv, script_out_of_order);
    handshake(fx);
    qn_qmp_client_execute_async(fx->client, "query-status", NULL, NULL, execute_cb, &a);
    qn_qmp_client_execute_async(fx->client, "query-version", NULL, NULL, execute_cb, &b);
    wait_until(fx->context, &a.done);
    wait_until(fx->context, &b.done);
    g_assert_no_error(a.error);
    g_assert_no_error(b.error);
    g_assert_cmpuint(b.order, <, a.order);
    g_assert_cmpstr(json_object_get_string_member(json_node_get_object(a.ret), "status"), ==,
                    "prelaunch");
    qemu = json_object_get_object_member(json_node_get_object(b.ret), "qemu");
    g_assert_cmpint(json_object_get_int_member(qemu, "major"), ==, 7);
    reply_clear(&a);
    reply_clear(&b);
}

static void
script_event_before_reply(Server *srv)
{
    g_autofree gchar *id = NULL;

    server_negotiate(srv);
    id = server_expect(srv, "stop");
    server_write(srv, "{\"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 123456}, "
                      "\"event\": \"STOP\"}\r\n");
    g_usleep(10 * 1000);
    server_printf(srv,
                  "{\"timestamp\": {\"seconds\": 1700000001, \"microseconds\": 0}, "
                  "\"event\": \"DEVICE_DELETED\", \"data\": {\"path\": \"/machine/peripheral/x\"}}"
                  "\r\n{\"return\": {}, \"id\": \"%s\"}\r\n",
                  id);
    server_wait_eof(srv);
}

static void
test_event_before_reply(Fixture *fx, gconstpointer user_data G_GNUC_UNUSED)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) ret = NULL;
    Event *ev;

    server_start(&fx->srv, script_event_before_reply);
    handshake(fx);
    ret = qn_qmp_client_execute_sync(fx->client, "stop", NULL, WAIT_MS, &error);
    g_assert_no_error(error);
    g_assert_true(JSON_NODE_HOLDS_OBJECT(ret));
    g_assert_cmpuint(json_object_get_size(json_node_get_object(ret)), ==, 0);

    /* Both events were delivered while the sync call waited, in order. */
    g_assert_cmpuint(fx->events->len, ==, 2);
    ev = g_ptr_array_index(fx->events, 0);
    g_assert_cmpstr(ev->name, ==, "STOP");
    g_assert_cmpint(ev->ts_usec, ==, G_GINT64_CONSTANT(1700000000123456));
    g_assert_null(ev->data);
    ev = g_ptr_array_index(fx->events, 1);
    g_assert_cmpstr(ev->name, ==, "DEVICE_DELETED");
    g_assert_cmpint(ev->ts_usec, ==, G_GINT64_CONSTANT(1700000001000000));
    g_assert_cmpstr(json_object_get_string_member(ev->data, "path"), ==, "/machine/peripheral/x");
}

static void
script_error_reply(Server *srv)
{
    g_autofree gchar *id = NULL;

    server_negotiate(srv);
    id = server_expect(srv, "foo");
    server_printf(srv,
                  "{\"id\": \"%s\", \"error\": {\"class\": \"CommandNotFound\", \"desc\": "
                  "\"The command foo has not been found\"}}\r\n",
                  id);
    server_wait_eof(srv);
}

static void
test_error_reply(Fixture *fx, gconstpointer user_data G_GNUC_UNUSED)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) ret = NULL;

    server_start(&fx->srv, script_error_reply);
    handshake(fx);
    ret = qn_qmp_client_execute_sync(fx->client, "foo", NULL, WAIT_MS, &error);
    g_assert_null(ret);
    g_assert_error(error, QN_ERROR, QN_ERROR_QMP_COMMAND);
    g_assert_cmpstr(error->message, ==, "CommandNotFound: The command foo has not been found");
    g_assert_true(qn_qmp_error_has_class(error, "CommandNotFound"));
    /* The connection stays usable. */
    g_assert_false(qn_qmp_client_is_closed(fx->client));
}

/* Writes @text in pieces of @piece bytes, pausing between them. */
static void
server_write_slowly(Server *srv, const char *text, gsize piece)
{
    gsize len = strlen(text);

    for (gsize off = 0; off < len; off += piece) {
        g_autofree gchar *part = g_strndup(text + off, MIN(piece, len - off));

        server_write(srv, part);
        g_usleep(300);
    }
}

static void
script_split_reply(Server *srv)
{
    g_autofree gchar *caps_id = NULL;
    g_autofree gchar *id = NULL;
    g_autofree gchar *caps = NULL;
    g_autofree gchar *reply = NULL;

    server_write_slowly(srv, GREETING_72, 1);
    caps_id = server_expect(srv, "qmp_capabilities");
    caps = g_strdup_printf("{\"return\": {}, \"id\": \"%s\"}\r\n", caps_id);
    server_write_slowly(srv, caps, 7);
    id = server_expect(srv, "query-status");
    reply = g_strdup_printf("{\"return\": {\"status\": \"running\", \"singlestep\": false, "
                            "\"running\": true}, \"id\": \"%s\"}",
                            id);
    /* Body, then "\r" alone, then "\n" alone. */
    server_write_slowly(srv, reply, 16);
    g_usleep(1000);
    server_write(srv, "\r");
    g_usleep(1000);
    server_write(srv, "\n");
    server_wait_eof(srv);
}

static void
test_split_reply(Fixture *fx, gconstpointer user_data G_GNUC_UNUSED)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) ret = NULL;

    server_start(&fx->srv, script_split_reply);
    handshake(fx);
    ret = qn_qmp_client_execute_sync(fx->client, "query-status", NULL, WAIT_MS, &error);
    g_assert_no_error(error);
    g_assert_true(json_object_get_boolean_member(json_node_get_object(ret), "running"));
}

static void
script_close_mid_reply(Server *srv)
{
    g_autofree gchar *id_a = NULL;
    g_autofree gchar *id_b = NULL;

    server_negotiate(srv);
    id_a = server_expect(srv, "query-status");
    id_b = server_expect(srv, "query-version");
    server_write(srv, "{\"return\": {\"status\": \"prel");
    g_usleep(20 * 1000);
    /* QEMU dies. */
    server_close(srv);
}

static void
test_close_mid_reply(Fixture *fx, gconstpointer user_data G_GNUC_UNUSED)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) ret = NULL;
    Reply a = {0};
    Reply b = {0};

    server_start(&fx->srv, script_close_mid_reply);
    handshake(fx);
    qn_qmp_client_execute_async(fx->client, "query-status", NULL, NULL, execute_cb, &a);
    qn_qmp_client_execute_async(fx->client, "query-version", NULL, NULL, execute_cb, &b);
    wait_until(fx->context, &a.done);
    wait_until(fx->context, &b.done);
    g_assert_error(a.error, QN_ERROR, QN_ERROR_QMP);
    g_assert_error(b.error, QN_ERROR, QN_ERROR_QMP);
    g_assert_cmpstr(a.error->message, ==,
                    "QMP connection closed by peer in the middle of a message (27 bytes "
                    "received): no reply to 'query-status'");
    g_assert_cmpstr(b.error->message, ==,
                    "QMP connection closed by peer in the middle of a message (27 bytes "
                    "received): no reply to 'query-version'");
    /* Failed in the order they were sent. */
    g_assert_cmpuint(a.order, <, b.order);
    g_assert_cmpuint(fx->closed_count, ==, 1);
    g_assert_true(g_str_has_prefix(fx->closed_reason, "QMP connection closed by peer"));
    g_assert_true(qn_qmp_client_is_closed(fx->client));

    /* Later commands fail at once; the closed handler does not run again. */
    ret = qn_qmp_client_execute_sync(fx->client, "query-status", NULL, WAIT_MS, &error);
    g_assert_null(ret);
    g_assert_error(error, QN_ERROR, QN_ERROR_QMP);
    g_assert_cmpstr(error->message, ==, "QMP connection is closed: cannot send 'query-status'");
    qn_qmp_client_close(fx->client);
    drain(fx->context);
    g_assert_cmpuint(fx->closed_count, ==, 1);
    reply_clear(&a);
    reply_clear(&b);
}

static void
script_close_idle(Server *srv)
{
    server_negotiate(srv);
    server_close(srv);
}

static void
test_close_idle(Fixture *fx, gconstpointer user_data G_GNUC_UNUSED)
{
    server_start(&fx->srv, script_close_idle);
    handshake(fx);
    wait_closed(fx);
    g_assert_cmpuint(fx->closed_count, ==, 1);
    g_assert_cmpstr(fx->closed_reason, ==, "QMP connection closed by peer");
}

static void
script_close_before_greeting(Server *srv)
{
    server_write(srv, "{\"QMP\": {\"version\"");
    server_close(srv);
}

static void
test_close_before_greeting(Fixture *fx, gconstpointer user_data G_GNUC_UNUSED)
{
    g_autoptr(GError) error = NULL;

    server_start(&fx->srv, script_close_before_greeting);
    g_assert_false(qn_qmp_client_handshake_sync(fx->client, WAIT_MS, &error));
    g_assert_error(error, QN_ERROR, QN_ERROR_QMP);
    g_assert_true(g_str_has_prefix(error->message, "QMP connection closed by peer"));
    g_assert_true(g_str_has_suffix(error->message, ": no greeting"));
    g_assert_cmpuint(fx->closed_count, ==, 1);
}

static void
script_ignore(Server *srv)
{
    gchar *line;

    server_negotiate(srv);
    while ((line = server_read_line(srv)) != NULL) {
        g_free(line);
    }
}

static void
test_local_close(Fixture *fx, gconstpointer user_data G_GNUC_UNUSED)
{
    Reply a = {0};

    server_start(&fx->srv, script_ignore);
    handshake(fx);
    qn_qmp_client_execute_async(fx->client, "query-status", NULL, NULL, execute_cb, &a);
    qn_qmp_client_close(fx->client);
    wait_until(fx->context, &a.done);
    g_assert_error(a.error, QN_ERROR, QN_ERROR_QMP);
    g_assert_cmpstr(a.error->message, ==,
                    "QMP connection closed by the client: no reply to 'query-status'");
    g_assert_cmpuint(fx->closed_count, ==, 1);
    qn_qmp_client_close(fx->client);
    g_assert_cmpuint(fx->closed_count, ==, 1);
    reply_clear(&a);
}

static void
test_unref_closes(Fixture *fx, gconstpointer user_data G_GNUC_UNUSED)
{
    /* A read is in flight: dropping the last reference must still close the socket (the
     * server thread waits for end of file), without calling the closed handler. */
    server_start(&fx->srv, script_greeting_first);
    handshake(fx);
    g_clear_object(&fx->client);
    g_thread_join(fx->srv.thread);
    fx->srv.thread = NULL;
    g_assert_cmpuint(fx->closed_count, ==, 0);
}

static void
script_cancel(Server *srv)
{
    g_autofree gchar *id_a = NULL;
    g_autofree gchar *id_b = NULL;

    server_negotiate(srv);
    id_a = server_expect(srv, "query-status");
    id_b = server_expect(srv, "query-version");
    /* The cancelled command's late reply, then the next one's. */
    server_printf(srv,
                  "{\"return\": {\"late\": true}, \"id\": \"%s\"}\r\n"
                  "{\"return\": {\"late\": false}, \"id\": \"%s\"}\r\n",
                  id_a, id_b);
    server_wait_eof(srv);
}

static void
test_cancel(Fixture *fx, gconstpointer user_data G_GNUC_UNUSED)
{
    g_autoptr(GCancellable) cancellable = g_cancellable_new();
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) ret = NULL;
    Reply a = {0};

    server_start(&fx->srv, script_cancel);
    handshake(fx);
    qn_qmp_client_execute_async(fx->client, "query-status", NULL, cancellable, execute_cb, &a);
    g_cancellable_cancel(cancellable);
    wait_until(fx->context, &a.done);
    g_assert_error(a.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    ret = qn_qmp_client_execute_sync(fx->client, "query-version", NULL, WAIT_MS, &error);
    g_assert_no_error(error);
    g_assert_false(json_object_get_boolean_member(json_node_get_object(ret), "late"));
    g_assert_false(qn_qmp_client_is_closed(fx->client));
    reply_clear(&a);
}

static void
script_timeout(Server *srv)
{
    g_autofree gchar *id_a = NULL;
    g_autofree gchar *id_b = NULL;

    server_negotiate(srv);
    id_a = server_expect(srv, "query-status");
    id_b = server_expect(srv, "query-version");
    server_printf(srv, "{\"return\": {\"answered\": true}, \"id\": \"%s\"}\r\n", id_b);
    server_wait_eof(srv);
}

static void
test_sync_timeout(Fixture *fx, gconstpointer user_data G_GNUC_UNUSED)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GError) error2 = NULL;
    g_autoptr(JsonNode) ret = NULL;
    g_autoptr(JsonNode) ret2 = NULL;
    gint64 start;

    server_start(&fx->srv, script_timeout);
    handshake(fx);
    start = g_get_monotonic_time();
    ret = qn_qmp_client_execute_sync(fx->client, "query-status", NULL, 100, &error);
    g_assert_null(ret);
    g_assert_error(error, QN_ERROR, QN_ERROR_QMP);
    g_assert_cmpstr(error->message, ==, "QMP command 'query-status' timed out after 100 ms");
    g_assert_cmpint(g_get_monotonic_time() - start, >=, 100 * 1000);
    ret2 = qn_qmp_client_execute_sync(fx->client, "query-version", NULL, WAIT_MS, &error2);
    g_assert_no_error(error2);
    g_assert_true(json_object_get_boolean_member(json_node_get_object(ret2), "answered"));
}

static void
script_malformed(Server *srv)
{
    g_autofree gchar *id = NULL;

    server_negotiate(srv);
    id = server_expect(srv, "query-status");
    server_write(srv, "{\"return\": this is not JSON\r\n");
    server_wait_eof(srv);
}

static void
test_malformed(Fixture *fx, gconstpointer user_data G_GNUC_UNUSED)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) ret = NULL;

    server_start(&fx->srv, script_malformed);
    handshake(fx);
    ret = qn_qmp_client_execute_sync(fx->client, "query-status", NULL, WAIT_MS, &error);
    g_assert_null(ret);
    g_assert_error(error, QN_ERROR, QN_ERROR_QMP);
    g_assert_true(g_str_has_prefix(error->message, "QMP connection closed: malformed QMP message"));
    g_assert_true(g_str_has_suffix(error->message, ": no reply to 'query-status'"));
    g_assert_cmpuint(fx->closed_count, ==, 1);
}

static void
script_reentrant(Server *srv)
{
    g_autofree gchar *id_a = NULL;
    g_autofree gchar *id_b = NULL;

    server_negotiate(srv);
    id_a = server_expect(srv, "cont");
    server_write(srv, "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, "
                      "\"event\": \"RESUME\"}\r\n");
    id_b = server_expect(srv, "query-status");
    server_printf(srv,
                  "{\"return\": {\"status\": \"running\", \"running\": true}, \"id\": \"%s\"}\r\n",
                  id_b);
    g_usleep(10 * 1000);
    server_printf(srv, "{\"return\": {}, \"id\": \"%s\"}\r\n", id_a);
    server_wait_eof(srv);
}

typedef struct {
    Fixture *fx;
    JsonNode *status;
} Reentrant;

static void
on_event_query(QnQmpClient *client, const char *event, JsonObject *data G_GNUC_UNUSED,
               gint64 ts_usec G_GNUC_UNUSED, gpointer user_data)
{
    Reentrant *re = user_data;
    g_autoptr(GError) error = NULL;

    /* A sync call from the event handler, itself inside a sync call. */
    g_assert_cmpstr(event, ==, "RESUME");
    g_assert_null(re->status);
    re->status = qn_qmp_client_execute_sync(client, "query-status", NULL, WAIT_MS, &error);
    g_assert_no_error(error);
}

static void
test_reentrant(Fixture *fx, gconstpointer user_data G_GNUC_UNUSED)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) ret = NULL;
    Reentrant re = {fx, NULL};

    server_start(&fx->srv, script_reentrant);
    handshake(fx);
    qn_qmp_client_set_event_handler(fx->client, on_event_query, &re, NULL);
    ret = qn_qmp_client_execute_sync(fx->client, "cont", NULL, WAIT_MS, &error);
    g_assert_no_error(error);
    g_assert_nonnull(re.status);
    g_assert_cmpstr(json_object_get_string_member(json_node_get_object(re.status), "status"), ==,
                    "running");
    json_node_unref(re.status);
}

static void
script_arguments(Server *srv)
{
    g_autofree gchar *line = NULL;
    g_autoptr(JsonNode) msg = NULL;
    JsonObject *args;

    server_negotiate(srv);
    line = server_read_line(srv);
    msg = json_from_string(line, NULL);
    g_assert_cmpstr(json_object_get_string_member(json_node_get_object(msg), "execute"), ==,
                    "qom-get");
    args = json_object_get_object_member(json_node_get_object(msg), "arguments");
    g_assert_cmpstr(json_object_get_string_member(args, "path"), ==, "/objects/mem0");
    g_assert_cmpstr(json_object_get_string_member(args, "property"), ==, "size");
    server_printf(srv, "{\"return\": 1073741824, \"id\": \"%s\"}\r\n",
                  qn_qmp_message_get_id(msg));
    server_wait_eof(srv);
}

static void
test_arguments(Fixture *fx, gconstpointer user_data G_GNUC_UNUSED)
{
    g_autoptr(JsonObject) args = json_object_new();
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) ret = NULL;

    server_start(&fx->srv, script_arguments);
    handshake(fx);
    json_object_set_string_member(args, "path", "/objects/mem0");
    json_object_set_string_member(args, "property", "size");
    ret = qn_qmp_client_execute_sync(fx->client, "qom-get", args, WAIT_MS, &error);
    g_assert_no_error(error);
    g_assert_cmpint(json_node_get_int(ret), ==, G_GINT64_CONSTANT(1073741824));
}

static void
test_new_for_fd_bad(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(QnQmpClient) client = NULL;
    int fds[2];

    g_assert_cmpint(pipe(fds), ==, 0);
    client = qn_qmp_client_new_for_fd(fds[0], NULL, &error);
    g_assert_null(client);
    g_assert_error(error, QN_ERROR, QN_ERROR_QMP);
    /* The caller still owns the fd. */
    g_assert_cmpint(fcntl(fds[0], F_GETFD), !=, -1);
    close(fds[0]);
    close(fds[1]);
}

/* ---- unix socket path tests ---- */

typedef struct {
    gchar *dir;
    gchar *path;
    guint accepts;           /* connections to serve */
    gboolean silent;         /* accept but never greet */
    GThread *thread;
} PathServer;

static gpointer
path_server_thread(gpointer data)
{
    PathServer *ps = data;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int lfd;

    /* Not there yet (ENOENT), then there but not listening (ECONNREFUSED), then listening. */
    g_usleep(100 * 1000);
    lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_assert_cmpint(lfd, >=, 0);
    g_strlcpy(addr.sun_path, ps->path, sizeof(addr.sun_path));
    g_assert_cmpint(bind(lfd, (struct sockaddr *) &addr, sizeof(addr)), ==, 0);
    g_usleep(100 * 1000);
    g_assert_cmpint(listen(lfd, 4), ==, 0);

    for (guint i = 0; i < ps->accepts; i++) {
        Server srv = {.in = g_string_new(NULL)};
        g_autofree gchar *id = NULL;

        srv.fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        g_assert_cmpint(srv.fd, >=, 0);
        if (!ps->silent) {
            server_negotiate(&srv);
            id = server_expect(&srv, "query-memdev");
            server_printf(&srv,
                          "{\"return\": [{\"size\": 1073741824, \"merge\": true, "
                          "\"dump\": true, \"prealloc\": false, \"share\": false, \"host-nodes\": "
                          "[0], \"policy\": \"bind\", \"id\": \"mem%u\"}], \"id\": \"%s\"}\r\n",
                          i, id);
        }
        server_wait_eof(&srv);
        close(srv.fd);
        g_string_free(srv.in, TRUE);
    }
    close(lfd);
    return NULL;
}

static void
path_server_start(PathServer *ps, guint accepts, gboolean silent)
{
    g_autoptr(GError) error = NULL;

    ps->dir = g_dir_make_tmp("qn-qmp-XXXXXX", &error);
    g_assert_no_error(error);
    ps->path = g_build_filename(ps->dir, "qmp.sock", NULL);
    ps->accepts = accepts;
    ps->silent = silent;
    ps->thread = g_thread_new("qmp-path-server", path_server_thread, ps);
}

static void
path_server_stop(PathServer *ps)
{
    g_thread_join(ps->thread);
    g_unlink(ps->path);
    g_rmdir(ps->dir);
    g_free(ps->path);
    g_free(ps->dir);
}

static void
assert_memdev(JsonNode *ret, const char *id)
{
    JsonArray *array;

    g_assert_nonnull(ret);
    array = json_node_get_array(ret);
    g_assert_cmpuint(json_array_get_length(array), ==, 1);
    g_assert_cmpstr(json_object_get_string_member(json_array_get_object_element(array, 0), "id"),
                    ==, id);
}

static void
test_connect_retry(void)
{
    g_autoptr(GMainContext) context = g_main_context_new();
    g_autoptr(GError) error = NULL;
    g_autoptr(QnQmpClient) client = NULL;
    g_autoptr(JsonNode) first = NULL;
    g_autoptr(JsonNode) second = NULL;
    PathServer ps = {0};

    path_server_start(&ps, 2, FALSE);
    /* The helper, while the socket does not exist yet. */
    first = qn_qmp_query(ps.path, "query-memdev", NULL, WAIT_MS, &error);
    g_assert_no_error(error);
    assert_memdev(first, "mem0");

    /* A long-lived client on a context of its own (not the thread default). */
    client = qn_qmp_client_connect_sync(ps.path, context, WAIT_MS, &error);
    g_assert_no_error(error);
    g_assert_nonnull(qn_qmp_client_get_greeting(client));
    second = qn_qmp_client_execute_sync(client, "query-memdev", NULL, WAIT_MS, &error);
    g_assert_no_error(error);
    assert_memdev(second, "mem1");
    qn_qmp_client_close(client);
    g_clear_object(&client);
    drain(context);
    path_server_stop(&ps);
}

static void
connect_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
    Reply *r = user_data;
    QnQmpClient *client = qn_qmp_client_connect_finish(result, &r->error);

    g_assert_null(source);
    g_assert_true((client == NULL) != (r->error == NULL));
    g_clear_object(&client);
    r->done = TRUE;
}

static void
test_connect_timeout(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(QnQmpClient) client = NULL;
    g_autofree gchar *dir = g_dir_make_tmp("qn-qmp-XXXXXX", NULL);
    g_autofree gchar *path = g_build_filename(dir, "missing.sock", NULL);
    g_autofree gchar *want = g_strdup_printf("cannot connect to QMP socket '%s': timed out after "
                                             "150 ms (",
                                             path);
    gint64 start = g_get_monotonic_time();

    client = qn_qmp_client_connect_sync(path, NULL, 150, &error);
    g_assert_null(client);
    g_assert_error(error, QN_ERROR, QN_ERROR_QMP);
    g_assert_true(g_str_has_prefix(error->message, want));
    g_assert_cmpint(g_get_monotonic_time() - start, >=, 150 * 1000);
    g_rmdir(dir);
}

static void
test_connect_not_a_socket(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) ret = NULL;
    g_autofree gchar *dir = g_dir_make_tmp("qn-qmp-XXXXXX", NULL);

    /* A directory: no point in retrying. */
    ret = qn_qmp_query(dir, "query-status", NULL, WAIT_MS, &error);
    g_assert_null(ret);
    g_assert_error(error, QN_ERROR, QN_ERROR_QMP);
    g_assert_true(g_str_has_prefix(error->message, "cannot connect to QMP socket '"));
    g_rmdir(dir);
}

static void
test_handshake_timeout(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) ret = NULL;
    g_autofree gchar *want = NULL;
    PathServer ps = {0};

    path_server_start(&ps, 1, TRUE);
    ret = qn_qmp_query(ps.path, "query-status", NULL, 500, &error);
    g_assert_null(ret);
    g_assert_error(error, QN_ERROR, QN_ERROR_QMP);
    want = g_strdup_printf("QMP handshake on '%s' timed out after 500 ms", ps.path);
    g_assert_cmpstr(error->message, ==, want);
    path_server_stop(&ps);
}

static void
test_connect_cancel(void)
{
    g_autoptr(GMainContext) context = g_main_context_new();
    g_autoptr(GCancellable) cancellable = g_cancellable_new();
    g_autofree gchar *dir = g_dir_make_tmp("qn-qmp-XXXXXX", NULL);
    g_autofree gchar *path = g_build_filename(dir, "missing.sock", NULL);
    Reply r = {0};

    g_main_context_push_thread_default(context);
    qn_qmp_client_connect_async(path, NULL, 0, cancellable, connect_cb, &r);
    g_main_context_iteration(context, FALSE);
    g_cancellable_cancel(cancellable);
    wait_until(context, &r.done);
    g_assert_error(r.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_clear_error(&r.error);
    drain(context);
    g_main_context_pop_thread_default(context);
    g_rmdir(dir);
}

/* ---- real QEMU ---- */

typedef struct {
    GMainContext *context;
    gchar *dir;
    gchar *path;
    GSubprocess *qemu;
} Qemu;

/* Starts QEMU with a QMP socket, or skips the test. */
static gboolean
qemu_start(Qemu *q)
{
    const char *env = g_getenv("QN_QEMU");
    g_autofree gchar *binary = NULL;
    g_autofree gchar *qmp = NULL;
    g_autoptr(GError) error = NULL;

    binary = env != NULL && *env != '\0' ? g_strdup(env)
                                         : g_find_program_in_path("qemu-system-x86_64");
    if (binary == NULL) {
        g_test_skip("no qemu-system-x86_64 in PATH and QN_QEMU not set");
        return FALSE;
    }
    memset(q, 0, sizeof(*q));
    q->context = g_main_context_new();
    g_main_context_push_thread_default(q->context);
    q->dir = g_dir_make_tmp("qn-qmp-XXXXXX", &error);
    g_assert_no_error(error);
    q->path = g_build_filename(q->dir, "qmp.sock", NULL);
    qmp = g_strdup_printf("unix:%s,server=on,wait=off", q->path);
    q->qemu = g_subprocess_new(G_SUBPROCESS_FLAGS_STDIN_PIPE, &error, binary, "-machine", "none",
                               "-nodefaults", "-display", "none", "-S", "-qmp", qmp, NULL);
    g_assert_no_error(error);
    return TRUE;
}

static void
qemu_stop(Qemu *q)
{
    if (g_subprocess_get_identifier(q->qemu) != NULL) {
        g_subprocess_force_exit(q->qemu);
    }
    g_assert_true(g_subprocess_wait(q->qemu, NULL, NULL));
    g_clear_object(&q->qemu);
    g_unlink(q->path);
    g_rmdir(q->dir);
    g_free(q->path);
    g_free(q->dir);
    drain(q->context);
    g_main_context_pop_thread_default(q->context);
    g_main_context_unref(q->context);
}

static void
test_qemu_session(void)
{
    Fixture fx = {0};
    Qemu q;
    g_autoptr(GError) error = NULL;
    g_autoptr(GError) not_found = NULL;
    g_autoptr(JsonNode) status = NULL;
    g_autoptr(JsonNode) version = NULL;
    g_autoptr(JsonNode) schema = NULL;
    g_autoptr(JsonNode) bad = NULL;
    g_autoptr(JsonNode) quit = NULL;
    JsonObject *obj;
    gboolean shutdown_seen = FALSE;
    gint major = 0;

    if (!qemu_start(&q)) {
        return;
    }
    fx.client = qn_qmp_client_connect_sync(q.path, NULL, WAIT_MS, &error);
    g_assert_no_error(error);
    g_assert_true(qn_qmp_client_get_context(fx.client) == q.context);
    fixture_attach(&fx);
    g_assert_true(qn_qmp_greeting_get_version(qn_qmp_client_get_greeting(fx.client), &major,
                                              NULL, NULL));
    g_assert_cmpint(major, ==, 7);

    status = qn_qmp_client_execute_sync(fx.client, "query-status", NULL, WAIT_MS, &error);
    g_assert_no_error(error);
    obj = json_node_get_object(status);
    g_assert_cmpstr(json_object_get_string_member(obj, "status"), ==, "prelaunch");
    g_assert_false(json_object_get_boolean_member(obj, "running"));

    version = qn_qmp_client_execute_sync(fx.client, "query-version", NULL, WAIT_MS, &error);
    g_assert_no_error(error);
    obj = json_object_get_object_member(json_node_get_object(version), "qemu");
    g_assert_cmpint(json_object_get_int_member(obj, "major"), ==, 7);

    /* A big reply (some 150 KiB in 7.2), many reads. */
    schema = qn_qmp_client_execute_sync(fx.client, "query-qmp-schema", NULL, WAIT_MS, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(json_array_get_length(json_node_get_array(schema)), >, 500);

    bad = qn_qmp_client_execute_sync(fx.client, "no-such-command", NULL, WAIT_MS, &not_found);
    g_assert_null(bad);
    g_assert_error(not_found, QN_ERROR, QN_ERROR_QMP_COMMAND);
    g_assert_true(qn_qmp_error_has_class(not_found, "CommandNotFound"));
    g_assert_cmpstr(not_found->message, ==,
                    "CommandNotFound: The command no-such-command has not been found");

    /* quit: SHUTDOWN, the reply, then end of file. */
    quit = qn_qmp_client_execute_sync(fx.client, "quit", NULL, WAIT_MS, &error);
    g_assert_no_error(error);
    fx.context = q.context;
    wait_closed(&fx);
    g_assert_cmpuint(fx.closed_count, ==, 1);
    /* QEMU 7.2 sometimes resets the connection as it exits. */
    g_assert_true(g_str_equal(fx.closed_reason, "QMP connection closed by peer") ||
                  g_str_equal(fx.closed_reason, "QMP connection closed by peer with a reset"));
    for (guint i = 0; i < fx.events->len; i++) {
        Event *ev = g_ptr_array_index(fx.events, i);

        if (g_str_equal(ev->name, "SHUTDOWN")) {
            shutdown_seen = TRUE;
            g_assert_cmpstr(json_object_get_string_member(ev->data, "reason"), ==,
                            "host-qmp-quit");
            g_assert_cmpint(ev->ts_usec, >, 0);
        }
    }
    g_assert_true(shutdown_seen);
    g_assert_true(g_subprocess_wait(q.qemu, NULL, &error));
    g_assert_no_error(error);
    g_assert_true(g_subprocess_get_if_exited(q.qemu));
    g_assert_cmpint(g_subprocess_get_exit_status(q.qemu), ==, 0);

    g_clear_object(&fx.client);
    g_clear_pointer(&fx.events, g_ptr_array_unref);
    g_free(fx.closed_reason);
    qemu_stop(&q);
}

static void
test_qemu_query(void)
{
    Qemu q;
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) memdev = NULL;
    g_autoptr(JsonNode) status = NULL;

    if (!qemu_start(&q)) {
        return;
    }
    /* Each call connects anew: QEMU serves one QMP client at a time, so this also checks that
     * the first one let go. */
    memdev = qn_qmp_query(q.path, "query-memdev", NULL, WAIT_MS, &error);
    g_assert_no_error(error);
    g_assert_true(JSON_NODE_HOLDS_ARRAY(memdev));
    g_assert_cmpuint(json_array_get_length(json_node_get_array(memdev)), ==, 0);
    status = qn_qmp_query(q.path, "query-status", NULL, WAIT_MS, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(json_object_get_string_member(json_node_get_object(status), "status"), ==,
                    "prelaunch");
    qemu_stop(&q);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

#define ADD(path, func) g_test_add(path, Fixture, NULL, fixture_setup, func, fixture_teardown)
    ADD("/qmp-client/pair/handshake", test_handshake);
    ADD("/qmp-client/pair/handshake-after-greeting", test_handshake_after_greeting);
    ADD("/qmp-client/pair/out-of-order", test_out_of_order);
    ADD("/qmp-client/pair/event-before-reply", test_event_before_reply);
    ADD("/qmp-client/pair/error-reply", test_error_reply);
    ADD("/qmp-client/pair/split-reply", test_split_reply);
    ADD("/qmp-client/pair/close-mid-reply", test_close_mid_reply);
    ADD("/qmp-client/pair/close-idle", test_close_idle);
    ADD("/qmp-client/pair/close-before-greeting", test_close_before_greeting);
    ADD("/qmp-client/pair/local-close", test_local_close);
    ADD("/qmp-client/pair/unref-closes", test_unref_closes);
    ADD("/qmp-client/pair/cancel", test_cancel);
    ADD("/qmp-client/pair/sync-timeout", test_sync_timeout);
    ADD("/qmp-client/pair/malformed", test_malformed);
    ADD("/qmp-client/pair/reentrant", test_reentrant);
    ADD("/qmp-client/pair/arguments", test_arguments);
#undef ADD
    g_test_add_func("/qmp-client/new-for-fd-bad", test_new_for_fd_bad);
    g_test_add_func("/qmp-client/path/connect-retry", test_connect_retry);
    g_test_add_func("/qmp-client/path/connect-timeout", test_connect_timeout);
    g_test_add_func("/qmp-client/path/connect-not-a-socket", test_connect_not_a_socket);
    g_test_add_func("/qmp-client/path/handshake-timeout", test_handshake_timeout);
    g_test_add_func("/qmp-client/path/connect-cancel", test_connect_cancel);
    g_test_add_func("/qmp-client/qemu/session", test_qemu_session);
    g_test_add_func("/qmp-client/qemu/query", test_qemu_query);
    return g_test_run();
}
