/* The planner's private state, shared by its stages (src/core/qn-plan*.c) and by nothing else.
 *
 * qn_plan_compute() (qn-plan.c) runs the stages in order over one QnPlanner:
 *   qn-plan-shape.c     guest shape: node counts, sizes, vCPU split, page sizes, the argv's
 *                       own topology, the uneven split, the hugetlbfs mount
 *   qn-plan-search.c    candidate search: host node sets (exhaustive or greedy), packing,
 *                       scoring, feasibility; the guest's distance matrix
 *   qn-plan-sockets.c   vCPU topology: whole guest sockets per guest node, hotplug slots
 *                       spread socket by socket
 *   qn-plan-memdev.c    hotplug memory (pc-dimm, nvdimm, virtio-mem) bound per guest node
 *   qn-plan-tiers.c     memory tiers: CPU-less guest nodes on CPU-less host nodes, the HMAT
 *   qn-plan-devices.c   PCI devices with a host node behind a pxb(-pcie) of their guest node
 *   qn-plan-locality.c  a split filling the nearest node first, when nearer than the search's
 *   qn-plan-cpus.c      CPU choice: dedicated pCPUs, thread policies, the emulator
 *   qn-plan-fallback.c  the fallback: why no aligned plan, and the plan or error that says so
 *   qn-plan-host.c      what the host offers: node indexes, capacity, distances, global pools
 *   qn-plan-incoming.c  -incoming: the argv alone decides the guest layout; refuse early
 * Each stage file includes this header and no other stage's file. A new rule (sockets, hotplug,
 * devices, migration) lands as a stage with the QnPlanStage signature, or as a rule inside one.
 */
#pragma once

#include <glib.h>

#include "qn-plan.h"
#include "qn-size.h"

G_BEGIN_DECLS

/* Regular memory is split in whole 2M units when -m allows it (the THP size on x86-64). */
#define QN_REGULAR_GRANULE (2 * QN_MiB)

/* The id QEMU gives the PC machines' own RAM (MachineClass.default_ram_id of pc-i440fx and q35):
 * the RAM block name migration matches on. */
#define QN_MACHINE_RAM_ID "pc.ram"

/* One guest node as the request asks for it, before host nodes are chosen. */
typedef struct {
    guint64 bytes;          /* 0: no memory given (the argv's nodes are CPU-only) */
    QnBitmap *vcpus;
    gint user_node;         /* index into QnQemuArgv.numa_nodes, -1 if none */
    gchar *memdev;          /* the user's backend id, or %NULL */
    gint64 page_size;       /* -1: ours to choose; else fixed by the user's backend */
    QnBitmap *user_hosts;   /* host-nodes= of the user's backend, or %NULL */
    gboolean has_user_mode;
    QnMemoryMode user_mode;
    guint id;
} QnShapeNode;

typedef struct {
    /* the request */
    const QnTopology *topo;
    const QnReservations *resv;
    const QnConfig *cfg;
    const QnQemuArgv *qa;

    /* the host, indexed once by qn_planner_init() */
    GArray *usable;          /* guint node ids the planner may use */
    QnBitmap *pci_nodes;     /* nodes of the argv's vfio-pci devices */
    GPtrArray *cpu_by_id;    /* QnHostCpu* indexed by CPU id (NULL holes) */
    QnBitmap *taken;         /* pCPUs pinned by other VMs (ledger) */
    GHashTable *slots;       /* node id -> pCPU slots free of `taken` (cache, dedicated only) */
    guint dim;               /* largest node id + 1 */
    guint *dist;             /* dim x dim SLIT by node id (255: no such node) */
    QnHostNode **node_by_id; /* dim entries, NULL holes */
    guint64 *caps;           /* dim x (topo page sizes + 1): qn_capacity(), computed once;
                              * column 0 regular memory, column k+1 topo->page_sizes[k] */

    /* the guest shape (qn_plan_stage_shape) */
    GPtrArray *shape;        /* QnShapeNode*: the argv's own topology, or %NULL: ours */
    QnGuestTopology kind;
    GArray *page_sizes;      /* guint64 hugepage sizes to try, largest first */
    GArray *counts;          /* guint guest node counts to try, in order */
    gboolean fixed_shape;    /* the node count is not ours to change */
    gboolean single;         /* policy single-numa-node */
    gboolean user_sizes;     /* the argv gives the guest nodes' memory */
    gboolean user_hosts;     /* an argv backend names its host nodes */
    gboolean span;           /* -incoming without a topology: the one guest node may be
                              * backed by a nodeset (qn_plan_stage_incoming) */

    /* the search under way (qn_plan_stage_search) */
    guint need_pcpus;        /* dedicated: vCPUs per guest node of the try under way, else 0 */
    gboolean fixed_tried;    /* the user's fixed page sizes were tried (they get one try) */
    gchar *why;              /* the first try that did not fit, described */
    gchar *resv_why;         /* the first plan qn_plan_check_resv() dropped */
    guint tried_max;         /* largest guest node count tried */

    /* the outcome */
    QnPlan *plan;            /* the aligned plan the stages build, or %NULL */
    gchar *no_fit;           /* why no aligned plan ("no aligned plan for ..."), or %NULL */
    const char *left_to_os;  /* what a fallback leaves to the OS ("memory") */
} QnPlanner;

/* What a stage tells qn_plan_compute(). */
typedef enum {
    QN_STAGE_OK,     /* done: the next stage goes on */
    QN_STAGE_NO_FIT, /* no aligned plan: qn_planner_no_fit() said why */
    QN_STAGE_ERROR,  /* @error is set: the request itself is wrong */
} QnStageResult;

typedef QnStageResult (*QnPlanStage)(QnPlanner *p, GError **error);

/* qn-plan.c */
QnPlan *qn_plan_new(const QnConfig *cfg, QnPlanKind kind);

/* qn-plan-host.c */
void qn_planner_init(QnPlanner *p, const QnTopology *topo, const QnReservations *resv,
                     const QnQemuArgv *qa, const QnConfig *cfg);
void qn_planner_clear(QnPlanner *p);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(QnPlanner, qn_planner_clear)
guint64 qn_capacity(const QnPlanner *p, guint node_id, guint64 page_size);
gchar *qn_plan_check_resv(const QnPlanner *p, const QnPlan *plan);

/* The SLIT distance between host nodes @a and @b (255: no such node). Id-indexed and inline:
 * the search asks millions of times on big hosts (profiled: a linear lookup was 93% of a
 * 64-node plan, and a call into another file made the 64-node bench 40% slower). */
static inline guint
qn_pair_distance(const QnPlanner *p, guint a, guint b)
{
    return a < p->dim && b < p->dim ? p->dist[a * p->dim + b] : 255;
}

/* qn-plan-shape.c */
QnStageResult qn_plan_stage_shape(QnPlanner *p, GError **error);
QnStageResult qn_plan_stage_mount(QnPlanner *p, GError **error);
gboolean qn_shape_sizes(const QnPlanner *p, guint n, guint64 page_size, guint64 *ret_sizes,
                        gboolean *ret_user_fixed_ps);
QnPlan *qn_shape_build_plan(const QnPlanner *p, guint n, const guint64 *sizes, guint64 page_size,
                            GPtrArray *hosts);
gboolean qn_shape_uneven_allowed(const QnPlanner *p);
guint64 qn_shape_backend_page_size(const QnPlanner *p, const QnMemoryBackend *b);
QnPlan *qn_shape_build_sized_plan(const QnPlanner *p, guint n, const guint *set,
                                  const guint64 *sizes, guint64 page_size, QnBitmap **vcpus,
                                  const char *reason);
QnPlan *qn_shape_try_uneven(QnPlanner *p);

/* qn-plan-incoming.c */
QnStageResult qn_plan_stage_incoming(QnPlanner *p, GError **error);
QnStageResult qn_plan_stage_incoming_note(QnPlanner *p, GError **error);

/* qn-plan-search.c */
QnStageResult qn_plan_stage_search(QnPlanner *p, GError **error);
QnStageResult qn_plan_stage_distances(QnPlanner *p, GError **error);
gboolean qn_choose_distinct(const QnPlanner *p, GArray *cands, const guint64 *sizes, guint n,
                            guint64 page_size, guint *ret_set);

/* qn-plan-sockets.c */
QnStageResult qn_plan_stage_sockets(QnPlanner *p, GError **error);
guint qn_sockets_max_nodes(const QnPlanner *p);

/* qn-plan-memdev.c */
QnStageResult qn_plan_stage_mem_devices(QnPlanner *p, GError **error);
/* qn-plan-tiers.c */
QnStageResult qn_plan_stage_tiers(QnPlanner *p, GError **error);
/* qn-plan-devices.c */
QnStageResult qn_plan_stage_devices(QnPlanner *p, GError **error);
/* qn-plan-locality.c */
QnStageResult qn_plan_stage_locality(QnPlanner *p, GError **error);

/* qn-plan-cpus.c */
QnStageResult qn_plan_stage_cpus(QnPlanner *p, GError **error);
guint qn_cpus_needed_per_node(const QnPlanner *p, guint n);
guint qn_cached_slots(const QnPlanner *p, guint node_id);
gint qn_cpu_home(const QnPlanner *p, guint node_id, guint need, const QnBitmap *busy);

/* qn-plan-fallback.c */
void qn_planner_no_fit(QnPlanner *p, const char *left_to_os, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);
void qn_planner_note_miss(QnPlanner *p, const guint64 *sizes, guint n);
gchar *qn_planner_regular_reason(const QnPlanner *p);
QnStageResult qn_planner_no_fit_memory(QnPlanner *p);
QnPlan *qn_plan_stage_outcome(QnPlanner *p, QnStageResult result, GError **error);

G_END_DECLS
