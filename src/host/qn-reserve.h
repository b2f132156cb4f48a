/* Pre-allocating each guest node's hugepages on its host node(s), verified, leak-proof. */
#pragma once

#include <glib.h>

#include "qn-plan.h"

G_BEGIN_DECLS

typedef struct {
    guint guest_node;       /* QnGuestNode.id (a DIMM's: its node=) */
    gchar *memdev;          /* %NULL for a guest node; a reserved hugepage DIMM's backend id */
    QnBitmap *host_nodes;   /* where its pages must be */
    gint fd;                /* the unlinked hugetlbfs file, O_CLOEXEC until exec; -1 if none */
    guint64 bytes;
    guint64 page_size;
    guint threads;          /* workers that populated it (0: regular memory) */
    gboolean from_pool;     /* the file came from the pool service, pages pre-zeroed */
    GHashTable *pages_on;   /* host node id -> pages that landed there (move_pages) */
} QnNodeReservationResult;

typedef struct {
    GPtrArray *nodes;       /* QnNodeReservationResult*, same order as plan->guest_nodes, then
                             * one per reserved DIMM (QnPlanMemDevice.reserve) in
                             * plan->mem_devices order */
    GHashTable *free_before; /* "node:page_size" -> free_hugepages before */
    GHashTable *free_after;  /* "node:page_size" -> free_hugepages after */
} QnReservation;

/** qn_reservation_free: closes every fd still open, which frees the pages (kernel). */
void qn_reservation_free(QnReservation *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QnReservation, qn_reservation_free)

/**
 * qn_reservation_make:
 * @plan: an aligned plan; guest nodes with page_size 0 (regular memory) get fd -1; hotplug
 *   memory devices with QnPlanMemDevice.reserve are reserved the same way, after the nodes
 * @topo: the topology the plan was made from (each host node's allowed CPUs and distances,
 *   for the workers)
 * @sysfs_root: for the per-node free_hugepages counters
 * @max_threads: the `reserve-threads` setting: at most this many workers per guest node
 * @pool_dir: (nullable): the state directory of a pool service (qn-pool.h) to take each
 *   one-node `bind` guest node's file from, when it has one of that node and size; %NULL
 *   (or no service, or no such file): allocate here
 * @error: %QN_ERROR_HUGEPAGES when a file cannot be created, mapped or populated (the pool is
 *   smaller than the plan thought: another process took pages) or a thread cannot be made;
 *   %QN_ERROR_PLACEMENT when pages landed outside the planned nodeset under
 *   `bind`/`interleave` (MPOL_MF_STRICT is ignored for hugepages: STYLE.md)
 *
 * Per guest node: create a file on the plan's hugetlbfs mount, unlinked at once (a crash at any
 * later step frees the pages: they belong to an fd only), size it, map it shared and bind the
 * node's policy on the mapping (mbind: MPOL_BIND|MPOL_PREFERRED|MPOL_INTERLEAVE). Then T
 * workers per guest node (qn_reserve_thread_count()), pinned to qn_reserve_worker_cpus(), all
 * created before any starts, every guest node at once, each MADV_POPULATE_WRITE its disjoint
 * range of the file and ask move_pages(2) where each of its pages is. This is QEMU's own
 * prealloc (util/oslib-posix.c qemu_prealloc_mem: populate threads on disjoint ranges, a
 * thread-context for their CPUs) with the pages put in a file we hand over. On any failure every
 * fd is closed before returning.
 *
 * Returns: (transfer full): the reservation, or %NULL on error with nothing left allocated.
 */
QnReservation *qn_reservation_make(const QnPlan *plan, const QnTopology *topo,
                                   const char *sysfs_root, guint max_threads,
                                   const char *pool_dir, GError **error);

/**
 * qn_reserve_worker_cpus:
 * @topo: the host topology (pure: nothing is read here)
 * @host_nodes: a guest node's host node ids
 *
 * The CPUs a guest node's reservation workers run on: the allowed CPUs (Cpus_allowed) of its
 * host nodes; for a host node without one (CPU-less HBM or CXL memory, or a cpuset that
 * excludes its CPUs), those of the nearest node by SLIT distance that has some (ties: the
 * lowest id). Empty when no node has an allowed CPU: the workers then run anywhere.
 *
 * Returns: (transfer full): a bitmap of CPU ids.
 */
QnBitmap *qn_reserve_worker_cpus(const QnTopology *topo, const QnBitmap *host_nodes);

/**
 * qn_reserve_thread_count:
 * @cpus: the workers' CPUs (qn_reserve_worker_cpus())
 * @max_threads: the `reserve-threads` cap (QEMU caps its prealloc threads at 16 too:
 *   util/oslib-posix.c MAX_MEM_PREALLOC_THREAD_COUNT)
 * @pages: the guest node's page count
 *
 * Returns: T = min(|cpus| (1 if empty), max_threads, pages), at least 1.
 */
guint qn_reserve_thread_count(const QnBitmap *cpus, guint max_threads, guint64 pages);

/**
 * qn_reservation_release_for_exec:
 * Clears FD_CLOEXEC on every reserved fd so QEMU inherits them, and returns the mem-path of
 * each guest node ("/proc/self/fd/N", or %NULL for regular memory), in plan order, then of
 * each reserved DIMM (the order qn_rewrite_argv() reads them in).
 * Returns: (transfer full): a %NULL-padded array of r->nodes->len strings.
 */
gchar **qn_reservation_mem_paths(const QnReservation *r, gboolean clear_cloexec);

G_END_DECLS
