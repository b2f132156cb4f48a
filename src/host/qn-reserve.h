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
 * @topo: the topology the plan was made from (each host node's CPUs, for the threads)
 * @sysfs_root: for the per-node free_hugepages counters
 * @error: %QN_ERROR_HUGEPAGES when a file cannot be created or fallocate() fails (the pool is
 *   smaller than the plan thought: another process took pages); %QN_ERROR_PLACEMENT when pages
 *   landed outside the planned nodeset under `bind`/`interleave` (QEMU's own mbind would not
 *   move them, and MPOL_MF_STRICT is ignored for hugepages: STYLE.md)
 *
 * Per guest node, in parallel (one thread each): bind the thread to the host node's CPUs,
 * set_mempolicy(MPOL_BIND|MPOL_PREFERRED|MPOL_INTERLEAVE, host nodes), create a file on the
 * plan's hugetlbfs mount and unlink it at once (so a crash at any later step frees the pages:
 * they belong to an fd only), fallocate() the guest node's bytes, then map it and ask
 * move_pages(2) where every page is. On any failure every fd is closed before returning.
 *
 * Returns: (transfer full): the reservation, or %NULL on error with nothing left allocated.
 */
QnReservation *qn_reservation_make(const QnPlan *plan, const QnTopology *topo,
                                   const char *sysfs_root, GError **error);

/**
 * qn_reservation_release_for_exec:
 * Clears FD_CLOEXEC on every reserved fd so QEMU inherits them, and returns the mem-path of
 * each guest node ("/proc/self/fd/N", or %NULL for regular memory), in plan order, then of
 * each reserved DIMM (the order qn_rewrite_argv() reads them in).
 * Returns: (transfer full): a %NULL-padded array of r->nodes->len strings.
 */
gchar **qn_reservation_mem_paths(const QnReservation *r, gboolean clear_cloexec);

G_END_DECLS
