/* The pre-zeroed hugepage pool: a service that keeps allocated, never-mapped hugetlbfs files
 * ready on each node, and hands one over by fd to a launch. */
#pragma once

#include <glib.h>

#include "qn-config.h"
#include "qn-topology.h"

G_BEGIN_DECLS

/** QN_POOL_SOCKET: the service's socket in the state directory (SOCK_SEQPACKET). */
#define QN_POOL_SOCKET "pool.sock"
/** QN_POOL_REQUEST_MAX: a request longer than this is refused unread. */
#define QN_POOL_REQUEST_MAX 128
/** QN_POOL_REPLY_MAX: the longest reply (status) a client reads. */
#define QN_POOL_REPLY_MAX 65536

/**
 * qn_pool_run:
 * @cfg: the settings: `pool` (what to keep), `state-dir` (socket and ledger lock),
 *   `hugetlbfs` (or a mount of each page size from @topo)
 * @topo: the host (mounts, the default hugepage size)
 * @error: %QN_ERROR_BAD_CONFIG for an empty `pool` or a page size without a mount;
 *   %QN_ERROR_LEDGER when another pool service runs (`<state-dir>/pool.lock`) or the socket
 *   cannot be made
 *
 * Runs in the foreground (for systemd) until SIGTERM/SIGINT or a `drain` request. Per `pool`
 * entry it fills a shelf of unlinked hugetlbfs files (O_TMPFILE: a killed service leaks
 * nothing, the kernel frees the pages with the fds) by fallocate under
 * set_mempolicy(MPOL_BIND, node): the kernel zeroes each page when it allocates it, and the
 * files are never mapped, so no page can hold a previous guest's data. Refill runs in one
 * SCHED_IDLE thread, 2 s after the last take at the earliest (the taker is still starting
 * QEMU), in steps of at most 128 MiB each taken under the ledger lock, so a launch (which
 * holds that lock while it plans and reserves) never counts a page twice and waits for at
 * most one step.
 *
 * Requests on `<state-dir>/pool.sock`, one datagram each, at most %QN_POOL_REQUEST_MAX
 * bytes, from a peer whose SO_PEERCRED uid is root, ours or libvirt-qemu's (drain: root or
 * ours): `take NODE PAGESIZE BYTES` -> `ok BYTES` with the fd (SCM_RIGHTS) of a file cut to
 * exactly BYTES, or `none`; `status` -> JSON; `drain` -> every file closed, then the service
 * exits 0.
 * Returns: %TRUE when it stopped on a signal or a drain.
 */
gboolean qn_pool_run(const QnConfig *cfg, const QnTopology *topo, GError **error);

/**
 * qn_pool_take:
 * @state_dir: where the service's socket is
 * @node, @page_size, @bytes: what the guest node needs (@bytes a multiple of @page_size)
 * @error: set only for a pool that answered badly (wrong size or file system of the fd)
 *
 * Returns: an O_CLOEXEC fd of a hugetlbfs file of exactly @bytes with every page allocated
 *   on @node by the pool (the reservation still verifies where they are), or -1: no pool
 *   service, or none of its files is large enough (then the caller allocates itself).
 */
gint qn_pool_take(const char *state_dir, guint node, guint64 page_size, guint64 bytes,
                  GError **error);

/**
 * qn_pool_request:
 * @state_dir: where the service's socket is
 * @request: "status" or "drain"
 * @error: %QN_ERROR_LEDGER when no service answers
 * Returns: (transfer full): the reply's text (NUL-terminated, at most %QN_POOL_REPLY_MAX).
 */
gchar *qn_pool_request(const char *state_dir, const char *request, GError **error);

/**
 * qn_pool_ready_pages:
 * @state_dir: where the service's socket is
 * @page_size: the page size to count
 * Returns: (transfer full): host node id -> ready pages of @page_size in the pool (empty with
 *   no service), for the planner's capacity: call it under the ledger lock.
 */
GHashTable *qn_pool_ready_pages(const char *state_dir, guint64 page_size);

/**
 * qn_pool_count_free:
 * @topo: the host, just loaded; each node's hugepage pools get the pool service's ready
 *   pages of their size added to `free` (the planner counts them as free for us: a launch
 *   takes them by qn_pool_take() instead of allocating)
 * @state_dir: where the service's socket is; no service, nothing added
 *
 * Call it under the ledger lock (the refill steps hold it), so a page is never counted both
 * free in the kernel and ready in the pool, and no other launch takes one in between.
 */
void qn_pool_count_free(QnTopology *topo, const char *state_dir);

/**
 * qn_pool_count_ready:
 * @topo: the host, just loaded: each node's hugepage pools get `ours_ready` = the pool
 *   service's ready pages of their size (they are allocated, so `free` does not count them)
 * @state_dir: where the service's socket is; no service, nothing set
 *
 * For reports (metrics, NodeResourceTopology); a launch uses qn_pool_count_free().
 */
void qn_pool_count_ready(QnTopology *topo, const char *state_dir);

G_END_DECLS
