/* qemu-numa: a QMP client on a GMainContext, over a unix socket or an inherited fd.
 *
 * Main contexts: a client is bound, for its whole life, to the GMainContext given at creation
 * (NULL: the thread-default context of the caller at that moment). Its socket I/O, timeouts and
 * the event and closed handlers run there, and every function must be called from the thread
 * that iterates that context. Async results (GAsyncReadyCallback) are delivered, as usual in GIO,
 * to the thread-default context of the caller of the _async function.
 *
 * The _sync functions iterate the client's own context until they are done. For a plain program,
 * or to avoid dispatching unrelated sources in the middle of a call, give the client a private
 * context (g_main_context_new(), as qn_qmp_query() does); with the thread's main context the
 * _sync calls work as well, inside or outside a running GMainLoop, but are re-entrant: other
 * sources of that context (and our own event handler) may run while they wait.
 *
 * A private context must be iterated until idle after the client is closed or released, before it
 * is dropped (while (g_main_context_iteration(ctx, FALSE)); as qn_qmp_query() does): the
 * cancelled socket operations complete there and free their state.
 *
 * QnQmpClient is a GObject rather than a struct with a _free(): GTask needs a GObject source and
 * the reference count keeps the client alive while commands are in flight. Release it with
 * g_object_unref() or g_autoptr(QnQmpClient); that closes the connection without calling the
 * closed handler.
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "qn-qmp-proto.h"

G_BEGIN_DECLS

#define QN_TYPE_QMP_CLIENT (qn_qmp_client_get_type())
G_DECLARE_FINAL_TYPE(QnQmpClient, qn_qmp_client, QN, QMP_CLIENT, GObject)

/**
 * QnQmpEventFunc:
 * @client: the client
 * @event: the event name, e.g. "SHUTDOWN"
 * @data: (nullable) (transfer none): the event's "data" object, NULL when it has none; valid
 *     only during the call (json_object_ref() it to keep it)
 * @ts_usec: QEMU's timestamp in microseconds since the Unix epoch, -1 when unknown
 * @user_data: as given to qn_qmp_client_set_event_handler()
 */
typedef void (*QnQmpEventFunc)(QnQmpClient *client, const char *event, JsonObject *data,
                               gint64 ts_usec, gpointer user_data);

/**
 * QnQmpClosedFunc:
 * @client: the client
 * @reason: why the connection ended (%QN_ERROR_QMP), valid only during the call
 * @user_data: as given to qn_qmp_client_set_closed_handler()
 */
typedef void (*QnQmpClosedFunc)(QnQmpClient *client, const GError *reason, gpointer user_data);

/**
 * qn_qmp_client_new_for_fd:
 * @fd: a connected stream socket (e.g. one end of a socketpair(), or a monitor fd QEMU inherits)
 * @context: (nullable): the main context to run on; NULL for the thread-default context
 * @error: %QN_ERROR_QMP if @fd is not a usable socket
 *
 * Wraps @fd and starts reading from it; no handshake is done: call
 * qn_qmp_client_handshake_async() or _sync() next.
 *
 * Returns: (transfer full) (nullable): the client, owning @fd from now on; NULL on error, when
 *     the caller still owns @fd
 */
QnQmpClient *qn_qmp_client_new_for_fd(int fd, GMainContext *context, GError **error);

/**
 * qn_qmp_client_connect_async:
 * @socket_path: the QMP unix socket
 * @context: (nullable): the main context the client runs on; NULL for the thread-default one
 * @timeout_ms: limit for connecting and handshaking together, in milliseconds; 0 for none
 * @cancellable: (nullable): cancels the whole operation
 * @callback: called on the caller's thread-default context
 * @user_data: for @callback
 *
 * Connects to @socket_path, retrying while it does not exist or refuses connections (QEMU
 * creates it some time after it starts), then reads the greeting and negotiates capabilities.
 */
void qn_qmp_client_connect_async(const char *socket_path, GMainContext *context, guint timeout_ms,
                                 GCancellable *cancellable, GAsyncReadyCallback callback,
                                 gpointer user_data);

/**
 * qn_qmp_client_connect_peer_async:
 * @socket_path: the QMP unix socket
 * @peer_pid: the process that must be listening on it, or 0 for no check
 * @context: (nullable): as for qn_qmp_client_connect_async()
 * @timeout_ms: as for qn_qmp_client_connect_async()
 * @cancellable: (nullable): as for qn_qmp_client_connect_async()
 * @callback: as for qn_qmp_client_connect_async()
 * @user_data: as for qn_qmp_client_connect_async()
 *
 * qn_qmp_client_connect_async() that, once connected and before the handshake, fails with
 * %QN_ERROR_QMP unless SO_PEERCRED names @peer_pid (not retried: another server is there).
 */
void qn_qmp_client_connect_peer_async(const char *socket_path, gint peer_pid,
                                      GMainContext *context, guint timeout_ms,
                                      GCancellable *cancellable, GAsyncReadyCallback callback,
                                      gpointer user_data);

/**
 * qn_qmp_client_connect_finish:
 * @result: as given to the callback
 * @error: %QN_ERROR_QMP on a connection, handshake or timeout failure, %QN_ERROR_QMP_COMMAND if
 *     QEMU refused qmp_capabilities, %G_IO_ERROR_CANCELLED if cancelled
 *
 * Returns: (transfer full) (nullable): a client ready for commands, or NULL
 */
QnQmpClient *qn_qmp_client_connect_finish(GAsyncResult *result, GError **error);

/**
 * qn_qmp_client_connect_sync:
 * @socket_path: the QMP unix socket
 * @context: (nullable): the main context the client runs on; NULL for the thread-default one.
 *     It is iterated until the handshake is done
 * @timeout_ms: limit for connecting and handshaking together, in milliseconds; 0 for none
 * @error: as for qn_qmp_client_connect_finish()
 *
 * Synchronous qn_qmp_client_connect_async().
 *
 * Returns: (transfer full) (nullable): a client ready for commands, or NULL
 */
QnQmpClient *qn_qmp_client_connect_sync(const char *socket_path, GMainContext *context,
                                        guint timeout_ms, GError **error);

/**
 * qn_qmp_client_handshake_async:
 * @client: a client from qn_qmp_client_new_for_fd()
 * @cancellable: (nullable): cancels the handshake
 * @callback: called on the caller's thread-default context
 * @user_data: for @callback
 *
 * Waits for QEMU's greeting (it may have arrived already) and sends qmp_capabilities.
 */
void qn_qmp_client_handshake_async(QnQmpClient *client, GCancellable *cancellable,
                                   GAsyncReadyCallback callback, gpointer user_data);

/**
 * qn_qmp_client_handshake_finish:
 * @client: the client
 * @result: as given to the callback
 * @error: %QN_ERROR_QMP (connection closed, handshake already running), %QN_ERROR_QMP_COMMAND
 *     (capabilities refused) or %G_IO_ERROR_CANCELLED
 *
 * Returns: TRUE when the client is ready for commands
 */
gboolean qn_qmp_client_handshake_finish(QnQmpClient *client, GAsyncResult *result,
                                        GError **error);

/**
 * qn_qmp_client_handshake_sync:
 * @client: the client
 * @timeout_ms: limit in milliseconds; 0 for none
 * @error: as for qn_qmp_client_handshake_finish(); %QN_ERROR_QMP on timeout
 *
 * Synchronous qn_qmp_client_handshake_async(), iterating the client's context.
 *
 * Returns: TRUE when the client is ready for commands
 */
gboolean qn_qmp_client_handshake_sync(QnQmpClient *client, guint timeout_ms, GError **error);

/**
 * qn_qmp_client_execute_async:
 * @client: the client
 * @execute: the command name
 * @arguments: (nullable): the command's arguments; referenced, not copied, until encoded (now)
 * @cancellable: (nullable): stops waiting for the reply; the command may still run in QEMU and
 *     its late reply is dropped
 * @callback: called on the caller's thread-default context
 * @user_data: for @callback
 *
 * Sends a command with a fresh id ("qn-N") and matches the reply by that id, so commands may be
 * outstanding together and be answered in any order.
 */
void qn_qmp_client_execute_async(QnQmpClient *client, const char *execute, JsonObject *arguments,
                                 GCancellable *cancellable, GAsyncReadyCallback callback,
                                 gpointer user_data);

/**
 * qn_qmp_client_execute_finish:
 * @client: the client
 * @result: as given to the callback
 * @error: %QN_ERROR_QMP_COMMAND for an error reply ("Class: desc", see qn_qmp_error_has_class()),
 *     %QN_ERROR_QMP when the connection closed first, %G_IO_ERROR_CANCELLED if cancelled
 *
 * Returns: (transfer full) (nullable): the reply's "return" value (often an empty object), or NULL
 */
JsonNode *qn_qmp_client_execute_finish(QnQmpClient *client, GAsyncResult *result, GError **error);

/**
 * qn_qmp_client_execute_sync:
 * @client: the client
 * @execute: the command name
 * @arguments: (nullable): the command's arguments
 * @timeout_ms: how long to wait for the reply, in milliseconds; 0 for no limit
 * @error: as for qn_qmp_client_execute_finish(); %QN_ERROR_QMP on timeout
 *
 * Synchronous qn_qmp_client_execute_async(), iterating the client's context; events that arrive
 * meanwhile go to the event handler as usual.
 *
 * Returns: (transfer full) (nullable): the reply's "return" value, or NULL
 */
JsonNode *qn_qmp_client_execute_sync(QnQmpClient *client, const char *execute,
                                     JsonObject *arguments, guint timeout_ms, GError **error);

/**
 * qn_qmp_client_set_event_handler:
 * @client: the client
 * @func: (nullable): called for every event, in arrival order; NULL drops events
 * @user_data: for @func
 * @destroy: (nullable): frees @user_data when replaced or when the client is finalized
 */
void qn_qmp_client_set_event_handler(QnQmpClient *client, QnQmpEventFunc func, gpointer user_data,
                                     GDestroyNotify destroy);

/**
 * qn_qmp_client_set_closed_handler:
 * @client: the client
 * @func: (nullable): called once when the connection ends: end of file, I/O or protocol error,
 *     or qn_qmp_client_close(); after the outstanding commands have been failed
 * @user_data: for @func
 * @destroy: (nullable): frees @user_data when replaced or when the client is finalized
 */
void qn_qmp_client_set_closed_handler(QnQmpClient *client, QnQmpClosedFunc func,
                                      gpointer user_data, GDestroyNotify destroy);

/**
 * qn_qmp_client_close:
 * @client: the client
 *
 * Closes the socket; outstanding commands fail with %QN_ERROR_QMP and the closed handler runs.
 * Does nothing if already closed.
 */
void qn_qmp_client_close(QnQmpClient *client);

/**
 * qn_qmp_client_is_closed:
 * @client: the client
 *
 * Returns: TRUE once the connection has ended, for whatever reason
 */
gboolean qn_qmp_client_is_closed(QnQmpClient *client);

/**
 * qn_qmp_client_get_greeting:
 * @client: the client
 *
 * Returns: (transfer none) (nullable): the greeting message ({"QMP": ...}), or NULL before it
 *     arrived; see qn_qmp_greeting_get_version()
 */
JsonNode *qn_qmp_client_get_greeting(QnQmpClient *client);

/**
 * qn_qmp_client_get_context:
 * @client: the client
 *
 * Returns: (transfer none): the main context the client runs on
 */
GMainContext *qn_qmp_client_get_context(QnQmpClient *client);

/**
 * qn_qmp_query:
 * @socket_path: the QMP unix socket
 * @execute: the command name, e.g. "query-memdev"
 * @arguments: (nullable): the command's arguments
 * @timeout_ms: limit for the whole exchange, in milliseconds; 0 for none
 * @error: as for qn_qmp_client_connect_sync() and qn_qmp_client_execute_sync()
 *
 * Connects, handshakes, runs one command and disconnects, on a private main context: usable from
 * any thread and any program, without a main loop. Events are ignored.
 *
 * Returns: (transfer full) (nullable): the reply's "return" value, or NULL
 */
JsonNode *qn_qmp_query(const char *socket_path, const char *execute, JsonObject *arguments,
                       guint timeout_ms, GError **error);

/**
 * qn_qmp_query_peer:
 * @socket_path: the QMP unix socket
 * @peer_pid: the process that must be listening on it (QEMU's pid), or 0 for no check
 * @execute: the command name
 * @arguments: (nullable): the command's arguments
 * @timeout_ms: limit for the whole exchange, in milliseconds; 0 for none
 * @error: as for qn_qmp_query(); %QN_ERROR_QMP "QMP socket 'P' is served by pid N, not by
 *   QEMU's pid M" when the socket's listener (SO_PEERCRED) is another process
 *
 * qn_qmp_query(), refusing a socket served by anyone but @peer_pid before a byte is sent: a
 * socket path in a directory another user can write may name any server (issue 12).
 *
 * Returns: (transfer full) (nullable): the reply's "return" value, or NULL
 */
JsonNode *qn_qmp_query_peer(const char *socket_path, gint peer_pid, const char *execute,
                            JsonObject *arguments, guint timeout_ms, GError **error);

G_END_DECLS
