/* qemu-numa: a QMP client on a GMainContext, over a unix socket or an inherited fd.
 *
 * One read is always in flight while the connection is open; each chunk goes through the pure
 * decoder and every complete message is dispatched: greeting, reply (matched by id to a pending
 * command) or event. Writes go through a queue, one write_all in flight at a time, so commands
 * reach QEMU whole and in order.
 *
 * Our own reads and writes do not keep the client alive (its last unref must be able to close
 * the socket): their callbacks get a small QnQmpIoOp holding the client's cancellable, which is
 * cancelled, always, before the client goes away, and they leave the client alone once it is.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>

#include "qn-error.h"
#include "qn-qmp-client.h"

/* Bytes per read; a big reply simply takes several. */
#define QN_QMP_READ_CHUNK 65536

/* Delays between connection attempts while QEMU has not created or is not listening on the
 * socket yet: short at first since QEMU usually needs a few ms, then capped. */
#define QN_QMP_RETRY_MIN_MS 5
#define QN_QMP_RETRY_MAX_MS 200

/* A command sent and not answered yet. */
typedef struct {
    QnQmpClient *client;    /* unowned: the client owns the pending table */
    guint64 seq;            /* its number, also in its id; orders failures on close */
    gchar *id;              /* "qn-<seq>", key in the pending table */
    gchar *execute;         /* the command name, for error messages */
    GTask *task;            /* returns the "return" JsonNode */
    GSource *cancel_source; /* watches the caller's cancellable, if any */
} QnQmpPending;

/* One read or write of ours in flight. */
typedef struct {
    QnQmpClient *client;       /* unowned, valid only while @cancellable is not cancelled */
    GCancellable *cancellable; /* the client's, cancelled when it closes or is finalized */
    GBytes *bytes;             /* what a write sends, kept alive until it is done */
} QnQmpIoOp;

struct _QnQmpClient {
    GObject parent_instance;

    GMainContext *context;
    GSocketConnection *connection;
    GInputStream *input;       /* owned by @connection */
    GOutputStream *output;     /* owned by @connection */
    GCancellable *cancellable; /* cancelled on close: stops our reads and writes */
    QnQmpDecoder *decoder;
    gboolean reading;
    gboolean writing;
    gboolean closed;
    GQueue write_queue; /* GBytes, whole encoded commands */
    GHashTable *pending; /* id -> QnQmpPending */
    guint64 last_seq;

    JsonNode *greeting;
    gboolean handshaking;             /* from handshake_async to its capabilities reply */
    GTask *handshake_task;            /* a handshake waiting for the greeting */
    GSource *handshake_cancel_source; /* watches its cancellable */

    QnQmpEventFunc event_func;
    gpointer event_data;
    GDestroyNotify event_destroy;
    QnQmpClosedFunc closed_func;
    gpointer closed_data;
    GDestroyNotify closed_destroy;
};

G_DEFINE_FINAL_TYPE(QnQmpClient, qn_qmp_client, G_TYPE_OBJECT)

static void qn_qmp_client_read_start(QnQmpClient *self);
static void qn_qmp_client_write_next(QnQmpClient *self);

static void
qn_qmp_source_clear(GSource **source)
{
    if (*source != NULL) {
        g_source_destroy(*source);
        g_source_unref(*source);
        *source = NULL;
    }
}

static void
qn_qmp_pending_free(QnQmpPending *p)
{
    if (p == NULL) {
        return;
    }
    qn_qmp_source_clear(&p->cancel_source);
    g_clear_object(&p->task);
    g_free(p->id);
    g_free(p->execute);
    g_free(p);
}

static void
qn_qmp_io_op_free(QnQmpIoOp *op)
{
    if (op == NULL) {
        return;
    }
    g_clear_object(&op->cancellable);
    g_clear_pointer(&op->bytes, g_bytes_unref);
    g_free(op);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QnQmpIoOp, qn_qmp_io_op_free)

static QnQmpIoOp *
qn_qmp_io_op_new(QnQmpClient *self, GBytes *bytes)
{
    QnQmpIoOp *op = g_new0(QnQmpIoOp, 1);

    op->client = self;
    op->cancellable = g_object_ref(self->cancellable);
    op->bytes = bytes;
    return op;
}

static gint
qn_qmp_pending_compare(gconstpointer a, gconstpointer b)
{
    const QnQmpPending *pa = *(QnQmpPending *const *) a;
    const QnQmpPending *pb = *(QnQmpPending *const *) b;

    return pa->seq < pb->seq ? -1 : pa->seq > pb->seq;
}

/* Ends the connection for @take_reason (transfer full): fails whatever waits on it, then tells the
 * closed handler. Idempotent. */
static void
qn_qmp_client_close_with(QnQmpClient *self, GError *take_reason)
{
    g_autoptr(GError) reason = take_reason;
    g_autoptr(GPtrArray) failed = NULL;
    g_autoptr(QnQmpClient) keep = NULL;
    GHashTableIter iter;
    gpointer value;

    if (self->closed) {
        return;
    }
    /* Callbacks below may drop the caller's last reference. */
    keep = g_object_ref(self);
    self->closed = TRUE;
    g_cancellable_cancel(self->cancellable);
    /* Close the fd now, pending operations or not, so QEMU sees the end at once. */
    g_socket_close(g_socket_connection_get_socket(self->connection), NULL);
    g_queue_clear_full(&self->write_queue, (GDestroyNotify) g_bytes_unref);

    qn_qmp_source_clear(&self->handshake_cancel_source);
    if (self->handshake_task != NULL) {
        g_autoptr(GTask) task = g_steal_pointer(&self->handshake_task);

        self->handshaking = FALSE;
        g_task_return_new_error(task, QN_ERROR, QN_ERROR_QMP, "%s: no greeting", reason->message);
    }

    failed = g_ptr_array_new_with_free_func((GDestroyNotify) qn_qmp_pending_free);
    g_hash_table_iter_init(&iter, self->pending);
    while (g_hash_table_iter_next(&iter, NULL, &value)) {
        g_hash_table_iter_steal(&iter);
        g_ptr_array_add(failed, value);
    }
    g_ptr_array_sort(failed, qn_qmp_pending_compare);
    for (guint i = 0; i < failed->len; i++) {
        QnQmpPending *p = g_ptr_array_index(failed, i);

        g_task_return_new_error(p->task, QN_ERROR, QN_ERROR_QMP, "%s: no reply to '%s'",
                                reason->message, p->execute);
    }
    g_clear_pointer(&failed, g_ptr_array_unref);

    if (self->closed_func != NULL) {
        self->closed_func(self, reason, self->closed_data);
    }
}

static void
qn_qmp_client_dispatch_reply(QnQmpClient *self, JsonNode *msg)
{
    const char *id = qn_qmp_message_get_id(msg);
    GError *error = NULL;
    QnQmpPending *p = NULL;

    /* A reply without one of our ids answers nothing we wait for: a command whose caller
     * cancelled (stolen below already), or one QEMU could not even parse. Drop it. */
    if (id == NULL || !g_hash_table_steal_extended(self->pending, id, NULL, (gpointer *) &p)) {
        return;
    }
    if (!qn_qmp_message_check_error(msg, &error)) {
        g_task_return_error(p->task, error);
    } else {
        g_task_return_pointer(p->task, json_node_copy(qn_qmp_message_get_return(msg)),
                              (GDestroyNotify) json_node_unref);
    }
    qn_qmp_pending_free(p);
}

static void
qn_qmp_client_capabilities_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
    QnQmpClient *self = QN_QMP_CLIENT(source);
    g_autoptr(GTask) task = user_data;
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) ret = qn_qmp_client_execute_finish(self, result, &error);

    self->handshaking = FALSE;
    if (ret == NULL) {
        g_task_return_error(task, g_steal_pointer(&error));
        return;
    }
    g_task_return_boolean(task, TRUE);
}

/* The greeting is here and a handshake waits for it: negotiate. */
static void
qn_qmp_client_send_capabilities(QnQmpClient *self)
{
    GTask *task = g_steal_pointer(&self->handshake_task);

    qn_qmp_source_clear(&self->handshake_cancel_source);
    qn_qmp_client_execute_async(self, "qmp_capabilities", NULL, g_task_get_cancellable(task),
                                qn_qmp_client_capabilities_cb, task);
}

static void
qn_qmp_client_dispatch(QnQmpClient *self, JsonNode *msg)
{
    const char *event = NULL;
    JsonObject *data = NULL;
    gint64 ts_usec = -1;

    switch (qn_qmp_message_classify(msg)) {
    case QN_QMP_MESSAGE_GREETING:
        if (self->greeting == NULL) {
            self->greeting = json_node_ref(msg);
            if (self->handshake_task != NULL) {
                qn_qmp_client_send_capabilities(self);
            }
        }
        break;
    case QN_QMP_MESSAGE_RETURN:
    case QN_QMP_MESSAGE_ERROR:
        qn_qmp_client_dispatch_reply(self, msg);
        break;
    case QN_QMP_MESSAGE_EVENT:
        if (self->event_func != NULL &&
            qn_qmp_message_get_event(msg, &event, &data, &ts_usec)) {
            self->event_func(self, event, data, ts_usec, self->event_data);
        }
        break;
    case QN_QMP_MESSAGE_UNKNOWN:
    default:
        /* Future QMP additions; nothing waits for them. */
        break;
    }
}

/* Dispatches every complete message buffered. A malformed message ends the connection: it may
 * have been a reply, and failing its command now beats letting it wait forever. */
static void
qn_qmp_client_process(QnQmpClient *self)
{
    while (!self->closed) {
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) msg = qn_qmp_decoder_pop(self->decoder, &error);

        if (error != NULL) {
            qn_qmp_client_close_with(self, g_error_new(QN_ERROR, QN_ERROR_QMP,
                                                       "QMP connection closed: %s",
                                                       error->message));
            return;
        }
        if (msg == NULL) {
            return;
        }
        qn_qmp_client_dispatch(self, msg);
    }
}

/* The peer closed (@reset: abortively, as QEMU does when it exits with bytes of ours unread). */
static void
qn_qmp_client_close_by_peer(QnQmpClient *self, gboolean reset)
{
    g_autoptr(GString) reason = g_string_new("QMP connection closed by peer");
    gsize partial;

    /* A nested read may have left messages for us (see read_cb): deliver them first. */
    qn_qmp_client_process(self);
    if (reset) {
        g_string_append(reason, " with a reset");
    }
    partial = qn_qmp_decoder_get_buffered(self->decoder);
    if (partial > 0) {
        g_string_append_printf(reason,
                               " in the middle of a message (%" G_GSIZE_FORMAT " bytes received)",
                               partial);
    }
    qn_qmp_client_close_with(self, g_error_new_literal(QN_ERROR, QN_ERROR_QMP, reason->str));
}

static void
qn_qmp_client_read_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autoptr(QnQmpIoOp) op = user_data;
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) bytes = g_input_stream_read_bytes_finish(G_INPUT_STREAM(source), result,
                                                               &error);
    g_autoptr(QnQmpClient) self = NULL;
    gsize size = 0;
    gconstpointer data;

    if (g_cancellable_is_cancelled(op->cancellable)) {
        return; /* closed, maybe finalized: op->client must not be touched */
    }
    self = g_object_ref(op->client);
    self->reading = FALSE;

    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED)) {
        qn_qmp_client_close_by_peer(self, TRUE);
        return;
    }
    if (bytes == NULL) {
        qn_qmp_client_close_with(self, g_error_new(QN_ERROR, QN_ERROR_QMP,
                                                   "QMP connection closed: read error: %s",
                                                   error->message));
        return;
    }
    data = g_bytes_get_data(bytes, &size);
    if (size == 0) {
        qn_qmp_client_close_by_peer(self, FALSE);
        return;
    }
    qn_qmp_decoder_feed(self->decoder, data, size);
    /* Read on before dispatching: a handler that calls a _sync function iterates the context
     * from inside this callback and needs the next read to be in flight. Messages stay in
     * order since every dispatch pops from the same decoder. */
    qn_qmp_client_read_start(self);
    qn_qmp_client_process(self);
}

static void
qn_qmp_client_read_start(QnQmpClient *self)
{
    if (self->closed || self->reading) {
        return;
    }
    self->reading = TRUE;
    g_main_context_push_thread_default(self->context);
    g_input_stream_read_bytes_async(self->input, QN_QMP_READ_CHUNK, G_PRIORITY_DEFAULT,
                                    self->cancellable, qn_qmp_client_read_cb,
                                    qn_qmp_io_op_new(self, NULL));
    g_main_context_pop_thread_default(self->context);
}

static void
qn_qmp_client_write_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autoptr(QnQmpIoOp) op = user_data;
    g_autoptr(GError) error = NULL;
    gboolean ok = g_output_stream_write_all_finish(G_OUTPUT_STREAM(source), result, NULL, &error);
    g_autoptr(QnQmpClient) self = NULL;

    if (g_cancellable_is_cancelled(op->cancellable)) {
        return; /* closed, maybe finalized */
    }
    self = g_object_ref(op->client);
    self->writing = FALSE;
    if (!ok) {
        qn_qmp_client_close_with(self, g_error_new(QN_ERROR, QN_ERROR_QMP,
                                                   "QMP connection closed: write error: %s",
                                                   error->message));
        return;
    }
    qn_qmp_client_write_next(self);
}

static void
qn_qmp_client_write_next(QnQmpClient *self)
{
    GBytes *bytes;
    QnQmpIoOp *op;

    if (self->closed || self->writing || g_queue_is_empty(&self->write_queue)) {
        return;
    }
    bytes = g_queue_pop_head(&self->write_queue);
    op = qn_qmp_io_op_new(self, bytes);
    self->writing = TRUE;
    g_main_context_push_thread_default(self->context);
    g_output_stream_write_all_async(self->output, g_bytes_get_data(bytes, NULL),
                                    g_bytes_get_size(bytes), G_PRIORITY_DEFAULT, self->cancellable,
                                    qn_qmp_client_write_cb, op);
    g_main_context_pop_thread_default(self->context);
}

static void
qn_qmp_client_dispose(GObject *object)
{
    QnQmpClient *self = QN_QMP_CLIENT(object);

    /* Whoever dropped the last reference does not want to hear from us any more. */
    qn_qmp_client_set_event_handler(self, NULL, NULL, NULL);
    qn_qmp_client_set_closed_handler(self, NULL, NULL, NULL);
    if (self->connection != NULL) {
        qn_qmp_client_close_with(self, g_error_new_literal(QN_ERROR, QN_ERROR_QMP,
                                                           "QMP client finalized"));
    }
    G_OBJECT_CLASS(qn_qmp_client_parent_class)->dispose(object);
}

static void
qn_qmp_client_finalize(GObject *object)
{
    QnQmpClient *self = QN_QMP_CLIENT(object);

    g_queue_clear_full(&self->write_queue, (GDestroyNotify) g_bytes_unref);
    g_hash_table_unref(self->pending);
    qn_qmp_decoder_free(self->decoder);
    g_clear_pointer(&self->greeting, json_node_unref);
    g_clear_object(&self->connection);
    g_clear_object(&self->cancellable);
    g_clear_pointer(&self->context, g_main_context_unref);
    G_OBJECT_CLASS(qn_qmp_client_parent_class)->finalize(object);
}

static void
qn_qmp_client_class_init(QnQmpClientClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);

    object_class->dispose = qn_qmp_client_dispose;
    object_class->finalize = qn_qmp_client_finalize;
}

static void
qn_qmp_client_init(QnQmpClient *self)
{
    self->cancellable = g_cancellable_new();
    self->decoder = qn_qmp_decoder_new(0);
    self->pending = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                          (GDestroyNotify) qn_qmp_pending_free);
    g_queue_init(&self->write_queue);
}

/* Takes a connected @socket (referenced) and starts reading. */
static QnQmpClient *
qn_qmp_client_new_for_socket(GSocket *socket, GMainContext *context)
{
    QnQmpClient *self = g_object_new(QN_TYPE_QMP_CLIENT, NULL);

    self->context = context != NULL ? g_main_context_ref(context)
                                    : g_main_context_ref_thread_default();
    self->connection = g_socket_connection_factory_create_connection(socket);
    self->input = g_io_stream_get_input_stream(G_IO_STREAM(self->connection));
    self->output = g_io_stream_get_output_stream(G_IO_STREAM(self->connection));
    qn_qmp_client_read_start(self);
    return self;
}

QnQmpClient *
qn_qmp_client_new_for_fd(int fd, GMainContext *context, GError **error)
{
    g_autoptr(GError) local_error = NULL;
    g_autoptr(GSocket) socket = NULL;
    int copy;

    g_return_val_if_fail(fd >= 0, NULL);
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    /* g_socket_new_from_fd() closes the fd when it fails; work on a copy so that the caller
     * keeps @fd on error, as documented. */
    copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (copy < 0) {
        int errsv = errno;

        g_set_error(error, QN_ERROR, QN_ERROR_QMP, "cannot use fd %d for QMP: %s", fd,
                    g_strerror(errsv));
        return NULL;
    }
    socket = g_socket_new_from_fd(copy, &local_error);
    if (socket == NULL) {
        g_set_error(error, QN_ERROR, QN_ERROR_QMP, "cannot use fd %d for QMP: %s", fd,
                    local_error->message);
        return NULL;
    }
    g_close(fd, NULL);
    return qn_qmp_client_new_for_socket(socket, context);
}

void
qn_qmp_client_set_event_handler(QnQmpClient *self, QnQmpEventFunc func, gpointer user_data,
                                GDestroyNotify destroy)
{
    gpointer old_data;
    GDestroyNotify old_destroy;

    g_return_if_fail(QN_IS_QMP_CLIENT(self));

    old_data = self->event_data;
    old_destroy = self->event_destroy;
    self->event_func = func;
    self->event_data = user_data;
    self->event_destroy = destroy;
    if (old_destroy != NULL) {
        old_destroy(old_data);
    }
}

void
qn_qmp_client_set_closed_handler(QnQmpClient *self, QnQmpClosedFunc func, gpointer user_data,
                                 GDestroyNotify destroy)
{
    gpointer old_data;
    GDestroyNotify old_destroy;

    g_return_if_fail(QN_IS_QMP_CLIENT(self));

    old_data = self->closed_data;
    old_destroy = self->closed_destroy;
    self->closed_func = func;
    self->closed_data = user_data;
    self->closed_destroy = destroy;
    if (old_destroy != NULL) {
        old_destroy(old_data);
    }
}

void
qn_qmp_client_close(QnQmpClient *self)
{
    g_return_if_fail(QN_IS_QMP_CLIENT(self));

    qn_qmp_client_close_with(self, g_error_new_literal(QN_ERROR, QN_ERROR_QMP,
                                                       "QMP connection closed by the client"));
}

gboolean
qn_qmp_client_is_closed(QnQmpClient *self)
{
    g_return_val_if_fail(QN_IS_QMP_CLIENT(self), TRUE);

    return self->closed;
}

JsonNode *
qn_qmp_client_get_greeting(QnQmpClient *self)
{
    g_return_val_if_fail(QN_IS_QMP_CLIENT(self), NULL);

    return self->greeting;
}

GMainContext *
qn_qmp_client_get_context(QnQmpClient *self)
{
    g_return_val_if_fail(QN_IS_QMP_CLIENT(self), NULL);

    return self->context;
}

/* ---- commands ---- */

static gboolean
qn_qmp_client_pending_cancelled_cb(GCancellable *cancellable G_GNUC_UNUSED, gpointer user_data)
{
    QnQmpPending *p = user_data;

    /* Stop waiting; a late reply finds no pending entry and is dropped. */
    g_hash_table_steal(p->client->pending, p->id);
    g_task_return_error_if_cancelled(p->task);
    qn_qmp_pending_free(p);
    return G_SOURCE_REMOVE;
}

void
qn_qmp_client_execute_async(QnQmpClient *self, const char *execute, JsonObject *arguments,
                            GCancellable *cancellable, GAsyncReadyCallback callback,
                            gpointer user_data)
{
    g_autoptr(GTask) task = NULL;
    QnQmpPending *p;
    gchar *line;
    gsize len = 0;

    g_return_if_fail(QN_IS_QMP_CLIENT(self));
    g_return_if_fail(execute != NULL);

    task = g_task_new(self, cancellable, callback, user_data);
    g_task_set_source_tag(task, qn_qmp_client_execute_async);
    if (self->closed) {
        g_task_return_new_error(task, QN_ERROR, QN_ERROR_QMP,
                                "QMP connection is closed: cannot send '%s'", execute);
        return;
    }
    if (g_task_return_error_if_cancelled(task)) {
        return;
    }

    p = g_new0(QnQmpPending, 1);
    p->client = self;
    p->seq = ++self->last_seq;
    p->id = g_strdup_printf("qn-%" G_GUINT64_FORMAT, p->seq);
    p->execute = g_strdup(execute);
    p->task = g_steal_pointer(&task);
    line = qn_qmp_command_encode(execute, arguments, p->id, &len);
    if (cancellable != NULL) {
        /* A source rather than a "cancelled" handler: it runs on our context whatever thread
         * cancels. */
        p->cancel_source = g_cancellable_source_new(cancellable);
        g_source_set_callback(p->cancel_source, G_SOURCE_FUNC(qn_qmp_client_pending_cancelled_cb),
                              p, NULL);
        g_source_attach(p->cancel_source, self->context);
    }
    g_hash_table_insert(self->pending, p->id, p);
    g_queue_push_tail(&self->write_queue, g_bytes_new_take(line, len));
    qn_qmp_client_write_next(self);
}

JsonNode *
qn_qmp_client_execute_finish(QnQmpClient *self, GAsyncResult *result, GError **error)
{
    g_return_val_if_fail(QN_IS_QMP_CLIENT(self), NULL);
    g_return_val_if_fail(g_task_is_valid(result, self), NULL);
    g_return_val_if_fail(g_task_get_source_tag(G_TASK(result)) == qn_qmp_client_execute_async,
                         NULL);

    return g_task_propagate_pointer(G_TASK(result), error);
}

/* ---- handshake ---- */

static gboolean
qn_qmp_client_handshake_cancelled_cb(GCancellable *cancellable G_GNUC_UNUSED, gpointer user_data)
{
    QnQmpClient *self = user_data;
    g_autoptr(GTask) task = g_steal_pointer(&self->handshake_task);

    qn_qmp_source_clear(&self->handshake_cancel_source);
    self->handshaking = FALSE;
    if (task != NULL) {
        g_task_return_error_if_cancelled(task);
    }
    return G_SOURCE_REMOVE;
}

void
qn_qmp_client_handshake_async(QnQmpClient *self, GCancellable *cancellable,
                              GAsyncReadyCallback callback, gpointer user_data)
{
    g_autoptr(GTask) task = NULL;

    g_return_if_fail(QN_IS_QMP_CLIENT(self));

    task = g_task_new(self, cancellable, callback, user_data);
    g_task_set_source_tag(task, qn_qmp_client_handshake_async);
    if (self->closed) {
        g_task_return_new_error(task, QN_ERROR, QN_ERROR_QMP,
                                "QMP connection is closed: cannot handshake");
        return;
    }
    if (self->handshaking) {
        g_task_return_new_error(task, QN_ERROR, QN_ERROR_QMP, "QMP handshake already in progress");
        return;
    }
    if (g_task_return_error_if_cancelled(task)) {
        return;
    }
    self->handshaking = TRUE;
    self->handshake_task = g_steal_pointer(&task);
    if (self->greeting != NULL) {
        qn_qmp_client_send_capabilities(self);
        return;
    }
    if (cancellable != NULL) {
        self->handshake_cancel_source = g_cancellable_source_new(cancellable);
        g_source_set_callback(self->handshake_cancel_source,
                              G_SOURCE_FUNC(qn_qmp_client_handshake_cancelled_cb), self, NULL);
        g_source_attach(self->handshake_cancel_source, self->context);
    }
}

gboolean
qn_qmp_client_handshake_finish(QnQmpClient *self, GAsyncResult *result, GError **error)
{
    g_return_val_if_fail(QN_IS_QMP_CLIENT(self), FALSE);
    g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
    g_return_val_if_fail(g_task_get_source_tag(G_TASK(result)) == qn_qmp_client_handshake_async,
                         FALSE);

    return g_task_propagate_boolean(G_TASK(result), error);
}

/* ---- running an async operation to completion ---- */

typedef struct {
    GAsyncResult *result;      /* set by the operation's callback */
    GCancellable *cancellable; /* give it to the operation; cancelled on timeout */
    GSource *timeout;
    gboolean timed_out;
} QnQmpSyncWait;

static void
qn_qmp_sync_wait_cb(GObject *source G_GNUC_UNUSED, GAsyncResult *result, gpointer user_data)
{
    QnQmpSyncWait *w = user_data;

    w->result = g_object_ref(result);
}

static gboolean
qn_qmp_sync_wait_timeout_cb(gpointer user_data)
{
    QnQmpSyncWait *w = user_data;

    w->timed_out = TRUE;
    g_cancellable_cancel(w->cancellable);
    return G_SOURCE_REMOVE;
}

/* Call with @context pushed as thread default, so that the operation's callback comes there. */
static void
qn_qmp_sync_wait_init(QnQmpSyncWait *w, GMainContext *context, guint timeout_ms)
{
    memset(w, 0, sizeof(*w));
    w->cancellable = g_cancellable_new();
    if (timeout_ms > 0) {
        w->timeout = g_timeout_source_new(timeout_ms);
        g_source_set_callback(w->timeout, qn_qmp_sync_wait_timeout_cb, w, NULL);
        g_source_attach(w->timeout, context);
    }
}

static void
qn_qmp_sync_wait_run(QnQmpSyncWait *w, GMainContext *context)
{
    while (w->result == NULL) {
        g_main_context_iteration(context, TRUE);
    }
    qn_qmp_source_clear(&w->timeout);
}

static void
qn_qmp_sync_wait_clear(QnQmpSyncWait *w)
{
    qn_qmp_source_clear(&w->timeout);
    g_clear_object(&w->result);
    g_clear_object(&w->cancellable);
}

/* Replaces the cancellation our own timeout caused by a timeout error. */
static void
qn_qmp_sync_wait_check_timeout(QnQmpSyncWait *w, GError **error, const char *what,
                               guint timeout_ms)
{
    if (w->timed_out && error != NULL && g_error_matches(*error, G_IO_ERROR,
                                                         G_IO_ERROR_CANCELLED)) {
        g_clear_error(error);
        g_set_error(error, QN_ERROR, QN_ERROR_QMP, "%s timed out after %u ms", what, timeout_ms);
    }
}

gboolean
qn_qmp_client_handshake_sync(QnQmpClient *self, guint timeout_ms, GError **error)
{
    QnQmpSyncWait w;
    g_autoptr(GError) local_error = NULL;
    gboolean ok;

    g_return_val_if_fail(QN_IS_QMP_CLIENT(self), FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    g_main_context_push_thread_default(self->context);
    qn_qmp_sync_wait_init(&w, self->context, timeout_ms);
    qn_qmp_client_handshake_async(self, w.cancellable, qn_qmp_sync_wait_cb, &w);
    qn_qmp_sync_wait_run(&w, self->context);
    ok = qn_qmp_client_handshake_finish(self, w.result, &local_error);
    qn_qmp_sync_wait_check_timeout(&w, &local_error, "QMP handshake", timeout_ms);
    qn_qmp_sync_wait_clear(&w);
    g_main_context_pop_thread_default(self->context);
    if (!ok) {
        g_propagate_error(error, g_steal_pointer(&local_error));
    }
    return ok;
}

JsonNode *
qn_qmp_client_execute_sync(QnQmpClient *self, const char *execute, JsonObject *arguments,
                           guint timeout_ms, GError **error)
{
    QnQmpSyncWait w;
    g_autoptr(GError) local_error = NULL;
    g_autofree gchar *what = NULL;
    JsonNode *ret;

    g_return_val_if_fail(QN_IS_QMP_CLIENT(self), NULL);
    g_return_val_if_fail(execute != NULL, NULL);
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    g_main_context_push_thread_default(self->context);
    qn_qmp_sync_wait_init(&w, self->context, timeout_ms);
    qn_qmp_client_execute_async(self, execute, arguments, w.cancellable, qn_qmp_sync_wait_cb, &w);
    qn_qmp_sync_wait_run(&w, self->context);
    ret = qn_qmp_client_execute_finish(self, w.result, &local_error);
    what = g_strdup_printf("QMP command '%s'", execute);
    qn_qmp_sync_wait_check_timeout(&w, &local_error, what, timeout_ms);
    qn_qmp_sync_wait_clear(&w);
    g_main_context_pop_thread_default(self->context);
    if (ret == NULL) {
        g_propagate_error(error, g_steal_pointer(&local_error));
    }
    return ret;
}

/* ---- connecting to a socket path ---- */

typedef struct {
    gchar *path;
    GMainContext *context;
    guint timeout_ms;
    guint delay_ms;                /* before the next attempt */
    GCancellable *cancellable;     /* ours: cancelled by the caller's one and by the timeout */
    GCancellable *user_cancellable;
    gulong user_cancel_id;
    GSource *retry_source;
    GSource *timeout_source;
    GSource *cancel_source; /* watches @cancellable while no handshake is running */
    gboolean timed_out;
    gboolean handshaking;
    GError *last_error; /* why the last attempt failed, for the timeout message */
    gint peer_pid;      /* > 0: the process that must serve the socket (SO_PEERCRED) */
    QnQmpClient *client;
} QnQmpConnect;

static void
qn_qmp_connect_stop(QnQmpConnect *c)
{
    qn_qmp_source_clear(&c->retry_source);
    qn_qmp_source_clear(&c->timeout_source);
    qn_qmp_source_clear(&c->cancel_source);
    if (c->user_cancel_id != 0) {
        g_cancellable_disconnect(c->user_cancellable, c->user_cancel_id);
        c->user_cancel_id = 0;
    }
}

static void
qn_qmp_connect_free(QnQmpConnect *c)
{
    if (c == NULL) {
        return;
    }
    qn_qmp_connect_stop(c);
    g_clear_object(&c->client);
    g_clear_object(&c->cancellable);
    g_clear_object(&c->user_cancellable);
    g_clear_error(&c->last_error);
    g_clear_pointer(&c->context, g_main_context_unref);
    g_free(c->path);
    g_free(c);
}

/* Ends the operation, dropping the reference it held on @task since connect_async. */
static void
qn_qmp_connect_return_error(GTask *task, GError *error)
{
    qn_qmp_connect_stop(g_task_get_task_data(task));
    g_task_return_error(task, error);
    g_object_unref(task);
}

static GError *
qn_qmp_connect_cancel_error(QnQmpConnect *c)
{
    if (!c->timed_out) {
        return g_error_new_literal(G_IO_ERROR, G_IO_ERROR_CANCELLED, "Operation was cancelled");
    }
    return g_error_new(QN_ERROR, QN_ERROR_QMP,
                       "cannot connect to QMP socket '%s': timed out after %u ms (%s)", c->path,
                       c->timeout_ms,
                       c->last_error != NULL ? c->last_error->message : "no attempt finished");
}

static void qn_qmp_connect_attempt(GTask *task);

static gboolean
qn_qmp_connect_retry_cb(gpointer user_data)
{
    GTask *task = user_data;
    QnQmpConnect *c = g_task_get_task_data(task);

    qn_qmp_source_clear(&c->retry_source);
    qn_qmp_connect_attempt(task);
    return G_SOURCE_REMOVE;
}

static gboolean
qn_qmp_connect_timeout_cb(gpointer user_data)
{
    QnQmpConnect *c = g_task_get_task_data(G_TASK(user_data));

    qn_qmp_source_clear(&c->timeout_source);
    c->timed_out = TRUE;
    g_cancellable_cancel(c->cancellable);
    return G_SOURCE_REMOVE;
}

static gboolean
qn_qmp_connect_cancelled_cb(GCancellable *cancellable G_GNUC_UNUSED, gpointer user_data)
{
    GTask *task = user_data;
    QnQmpConnect *c = g_task_get_task_data(task);

    qn_qmp_source_clear(&c->cancel_source);
    /* A running handshake sees the same cancellable and fails by itself. */
    if (!c->handshaking) {
        qn_qmp_connect_return_error(task, qn_qmp_connect_cancel_error(c));
    }
    return G_SOURCE_REMOVE;
}

static void
qn_qmp_connect_user_cancelled_cb(GCancellable *user_cancellable G_GNUC_UNUSED, gpointer user_data)
{
    /* Any thread: only forward to our own cancellable, whose source runs on our context. */
    g_cancellable_cancel(G_CANCELLABLE(user_data));
}

static void
qn_qmp_connect_handshake_cb(GObject *source G_GNUC_UNUSED, GAsyncResult *result, gpointer user_data)
{
    GTask *task = user_data;
    QnQmpConnect *c = g_task_get_task_data(task);
    g_autoptr(GError) error = NULL;

    c->handshaking = FALSE;
    if (!qn_qmp_client_handshake_finish(c->client, result, &error)) {
        if (c->timed_out && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
            g_clear_error(&error);
            g_set_error(&error, QN_ERROR, QN_ERROR_QMP,
                        "QMP handshake on '%s' timed out after %u ms", c->path, c->timeout_ms);
        } else if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
            g_prefix_error(&error, "QMP handshake on '%s' failed: ", c->path);
        }
        qn_qmp_connect_return_error(task, g_steal_pointer(&error));
        return;
    }
    qn_qmp_connect_stop(c);
    g_task_return_pointer(task, g_steal_pointer(&c->client), g_object_unref);
    g_object_unref(task);
}

/* Not created yet, not listening yet (or QEMU restarting), backlog full: worth retrying. Linux
 * also refuses connections to files that are not sockets; those will not get better. */
static gboolean
qn_qmp_connect_error_is_transient(const GError *error, const char *path, GError **ret_error)
{
    GStatBuf st;

    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED) &&
        g_stat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
        *ret_error = g_error_new(QN_ERROR, QN_ERROR_QMP,
                                 "cannot connect to QMP socket '%s': not a socket", path);
        return FALSE;
    }
    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND) ||
        g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED) ||
        g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK) ||
        g_error_matches(error, G_IO_ERROR, G_IO_ERROR_PENDING)) {
        return TRUE;
    }
    *ret_error = g_error_new(QN_ERROR, QN_ERROR_QMP, "cannot connect to QMP socket '%s': %s", path,
                             error->message);
    return FALSE;
}

static void
qn_qmp_connect_attempt(GTask *task)
{
    QnQmpConnect *c = g_task_get_task_data(task);
    g_autoptr(GError) error = NULL;
    g_autoptr(GSocket) socket = NULL;
    g_autoptr(GSocketAddress) address = NULL;

    socket = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT,
                          &error);
    if (socket == NULL) {
        qn_qmp_connect_return_error(task, g_error_new(QN_ERROR, QN_ERROR_QMP,
                                                      "cannot create a unix socket: %s",
                                                      error->message));
        return;
    }
    /* Unix connects complete or fail at once; non-blocking only so a full backlog cannot
     * stall the main context. */
    g_socket_set_blocking(socket, FALSE);
    address = g_unix_socket_address_new(c->path);
    if (!g_socket_connect(socket, address, NULL, &error)) {
        GError *fatal = NULL;

        if (!qn_qmp_connect_error_is_transient(error, c->path, &fatal)) {
            qn_qmp_connect_return_error(task, fatal);
            return;
        }
        /* The timeout, if any, ends the retries through the cancel source. */
        g_clear_error(&c->last_error);
        c->last_error = g_steal_pointer(&error);
        c->retry_source = g_timeout_source_new(c->delay_ms);
        c->delay_ms = MIN(c->delay_ms * 2, QN_QMP_RETRY_MAX_MS);
        g_source_set_callback(c->retry_source, qn_qmp_connect_retry_cb, task, NULL);
        g_source_attach(c->retry_source, c->context);
        return;
    }
    /* Before a byte is sent: whoever can rename files in the socket's directory can put another
     * server's socket there. The kernel's SO_PEERCRED names the process that listened. */
    if (c->peer_pid > 0) {
        g_autoptr(GCredentials) creds = g_socket_get_credentials(socket, &error);
        pid_t pid = creds != NULL ? g_credentials_get_unix_pid(creds, &error) : -1;

        if (pid != c->peer_pid) {
            qn_qmp_connect_return_error(
                task, pid < 0 ? g_error_new(QN_ERROR, QN_ERROR_QMP,
                                            "QMP socket '%s': no peer credentials: %s",
                                            c->path, error->message)
                              : g_error_new(QN_ERROR, QN_ERROR_QMP,
                                            "QMP socket '%s' is served by pid %d, not by "
                                            "QEMU's pid %d", c->path, (int)pid, c->peer_pid));
            return;
        }
    }

    c->client = qn_qmp_client_new_for_socket(socket, c->context);
    c->handshaking = TRUE;
    g_main_context_push_thread_default(c->context);
    qn_qmp_client_handshake_async(c->client, c->cancellable, qn_qmp_connect_handshake_cb, task);
    g_main_context_pop_thread_default(c->context);
}

void
qn_qmp_client_connect_async(const char *socket_path, GMainContext *context, guint timeout_ms,
                            GCancellable *cancellable, GAsyncReadyCallback callback,
                            gpointer user_data)
{
    qn_qmp_client_connect_peer_async(socket_path, 0, context, timeout_ms, cancellable, callback,
                                     user_data);
}

void
qn_qmp_client_connect_peer_async(const char *socket_path, gint peer_pid, GMainContext *context,
                                 guint timeout_ms, GCancellable *cancellable,
                                 GAsyncReadyCallback callback, gpointer user_data)
{
    /* Held by the operation until one of its ends returns it. */
    GTask *task;
    QnQmpConnect *c;

    g_return_if_fail(socket_path != NULL);

    task = g_task_new(NULL, cancellable, callback, user_data);
    g_task_set_source_tag(task, qn_qmp_client_connect_async);
    c = g_new0(QnQmpConnect, 1);
    c->path = g_strdup(socket_path);
    c->context = context != NULL ? g_main_context_ref(context)
                                 : g_main_context_ref_thread_default();
    c->timeout_ms = timeout_ms;
    c->delay_ms = QN_QMP_RETRY_MIN_MS;
    c->peer_pid = peer_pid;
    c->cancellable = g_cancellable_new();
    g_task_set_task_data(task, c, (GDestroyNotify) qn_qmp_connect_free);

    c->cancel_source = g_cancellable_source_new(c->cancellable);
    g_source_set_callback(c->cancel_source, G_SOURCE_FUNC(qn_qmp_connect_cancelled_cb), task,
                          NULL);
    g_source_attach(c->cancel_source, c->context);
    if (timeout_ms > 0) {
        c->timeout_source = g_timeout_source_new(timeout_ms);
        g_source_set_callback(c->timeout_source, qn_qmp_connect_timeout_cb, task, NULL);
        g_source_attach(c->timeout_source, c->context);
    }
    if (cancellable != NULL) {
        c->user_cancellable = g_object_ref(cancellable);
        c->user_cancel_id = g_cancellable_connect(cancellable,
                                                  G_CALLBACK(qn_qmp_connect_user_cancelled_cb),
                                                  g_object_ref(c->cancellable), g_object_unref);
    }
    qn_qmp_connect_attempt(task);
}

QnQmpClient *
qn_qmp_client_connect_finish(GAsyncResult *result, GError **error)
{
    g_return_val_if_fail(g_task_is_valid(result, NULL), NULL);
    g_return_val_if_fail(g_task_get_source_tag(G_TASK(result)) == qn_qmp_client_connect_async,
                         NULL);

    return g_task_propagate_pointer(G_TASK(result), error);
}

static QnQmpClient *
qn_qmp_connect_sync(const char *socket_path, gint peer_pid, GMainContext *context,
                    guint timeout_ms, GError **error);

QnQmpClient *
qn_qmp_client_connect_sync(const char *socket_path, GMainContext *context, guint timeout_ms,
                           GError **error)
{
    return qn_qmp_connect_sync(socket_path, 0, context, timeout_ms, error);
}

static QnQmpClient *
qn_qmp_connect_sync(const char *socket_path, gint peer_pid, GMainContext *context,
                    guint timeout_ms, GError **error)
{
    g_autoptr(GMainContext) ctx = context != NULL ? g_main_context_ref(context)
                                                  : g_main_context_ref_thread_default();
    QnQmpSyncWait w;
    QnQmpClient *client;

    g_return_val_if_fail(socket_path != NULL, NULL);
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    g_main_context_push_thread_default(ctx);
    /* No timeout here: connect_async has its own, with better messages. */
    qn_qmp_sync_wait_init(&w, ctx, 0);
    qn_qmp_client_connect_peer_async(socket_path, peer_pid, ctx, timeout_ms, NULL,
                                     qn_qmp_sync_wait_cb, &w);
    qn_qmp_sync_wait_run(&w, ctx);
    client = qn_qmp_client_connect_finish(w.result, error);
    qn_qmp_sync_wait_clear(&w);
    g_main_context_pop_thread_default(ctx);
    return client;
}

JsonNode *
qn_qmp_query(const char *socket_path, const char *execute, JsonObject *arguments,
             guint timeout_ms, GError **error)
{
    return qn_qmp_query_peer(socket_path, 0, execute, arguments, timeout_ms, error);
}

JsonNode *
qn_qmp_query_peer(const char *socket_path, gint peer_pid, const char *execute,
                  JsonObject *arguments, guint timeout_ms, GError **error)
{
    g_autoptr(GMainContext) context = g_main_context_new();
    g_autoptr(QnQmpClient) client = NULL;
    gint64 start = g_get_monotonic_time();
    guint remaining_ms = 0;
    JsonNode *ret = NULL;

    g_return_val_if_fail(socket_path != NULL, NULL);
    g_return_val_if_fail(execute != NULL, NULL);
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    client = qn_qmp_connect_sync(socket_path, peer_pid, context, timeout_ms, error);
    if (client != NULL) {
        if (timeout_ms > 0) {
            gint64 spent_ms = (g_get_monotonic_time() - start) / 1000;

            remaining_ms = spent_ms < timeout_ms ? timeout_ms - (guint) spent_ms : 1;
        }
        ret = qn_qmp_client_execute_sync(client, execute, arguments, remaining_ms, error);
        qn_qmp_client_close(client);
        g_clear_object(&client);
    }
    /* Let our cancelled reads and writes complete, so that nothing leaks with the context. */
    while (g_main_context_iteration(context, FALSE)) {
    }
    return ret;
}
