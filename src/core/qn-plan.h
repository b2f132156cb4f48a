/* The placement plan and the planner: topology + reservations + request + config -> plan. */
#pragma once

#include <glib.h>

#include "qn-argv.h"
#include "qn-bitmap.h"
#include "qn-config.h"
#include "qn-topology.h"

G_BEGIN_DECLS

/**
 * QnReservations:
 * What the ledger says other launches hold that the sysfs counters do not show yet. Hugepages
 * of a VM whose reservation finished are already gone from free_hugepages, so only entries
 * still reserving count (see src/host/qn-ledger.c); regular memory always counts, because
 * MemFree drops only as the guest touches it.
 */
typedef struct {
    guint node;
    guint64 page_size; /* bytes; 0 = regular memory */
    guint64 bytes;
} QnNodeReservation;

typedef struct {
    GArray *items;        /* QnNodeReservation */
    QnBitmap *pinned_cpus; /* pCPUs dedicated to running VMs */
} QnReservations;

QnReservations *qn_reservations_new(void);
void qn_reservations_free(QnReservations *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QnReservations, qn_reservations_free)
void qn_reservations_add(QnReservations *r, guint node, guint64 page_size, guint64 bytes);

typedef enum {
    QN_PLAN_PASSTHROUGH, /* policy none or a probe: exec QEMU with the argv untouched */
    QN_PLAN_ALIGNED,     /* every guest node on its planned host node(s) */
    QN_PLAN_FALLBACK,    /* best-effort found no aligned plan: the OS allocates (see reason) */
} QnPlanKind;

typedef enum {
    QN_GUEST_TOPOLOGY_AUTO,            /* we chose the guest node count */
    QN_GUEST_TOPOLOGY_FIXED,           /* guest-nodes=N */
    QN_GUEST_TOPOLOGY_PASSTHROUGH,     /* guest-nodes=passthrough */
    QN_GUEST_TOPOLOGY_USER,            /* the argv's own -numa node lines */
    QN_GUEST_TOPOLOGY_MACHINE_BACKEND, /* -machine memory-backend= (libvirt without <numa>) */
    QN_GUEST_TOPOLOGY_INCOMING,        /* -incoming with no topology in the argv: one node, as
                                        * the source has it (issue 14) */
} QnGuestTopology;

typedef struct {
    guint id;              /* guest node id (QEMU nodeid) */
    QnBitmap *vcpus;       /* guest CPU indexes, hotplug slots included */
    guint64 bytes;         /* memory of this guest node */
    guint64 page_size;     /* bytes; 0 = regular memory (memory-backend-ram) */
    QnBitmap *host_nodes;  /* host nodeset backing it (one node unless interleave) */
    QnMemoryMode mode;
    gchar *memdev;         /* backend id: "qn-ram<id>" for ours, or the user's id */
    gint user_node;        /* index into QnQemuArgv.numa_nodes, -1 if we made the node */
    gboolean host_nodes_from_user; /* the user's backend named host-nodes: kept as given */
    GArray *pcpus;         /* guint: with dedicated CPUs, the pCPU of each present vCPU of
                            * this node, in ascending vCPU order; empty otherwise */
    QnBitmap *sockets;     /* guest socket-ids this node holds whole (plan->by_socket), else
                            * empty */
    gint initiator;        /* with plan->hmat: a memory-only guest node's initiator= (the
                            * nearest guest node with vCPUs), else -1 */
    guint64 headroom;      /* bytes of maxmem's hotplug room held for this guest node on its
                            * host nodes, in its page size, never allocated (hotplug-headroom:
                            * src/core/qn-plan-memdev.c); 0: none */
} QnGuestNode;

/**
 * QnPlanHmatLb: the host's HMAT figures for one initiator/target pair of guest nodes, written
 * as `-numa hmat-lb` lines (src/core/qn-plan-tiers.c). Latencies in ns, bandwidths in MB/s;
 * 0: not given.
 */
typedef struct {
    guint initiator;       /* guest node id with vCPUs */
    guint target;          /* guest node id with memory */
    guint64 read_latency, write_latency;
    guint64 read_bandwidth, write_bandwidth;
} QnPlanHmatLb;

/** QnPlanMemDevice: a hotplug memory device of the argv (pc-dimm, nvdimm, virtio-mem) as placed. */
typedef struct {
    gchar *memdev;         /* its backend's id */
    gchar *driver;         /* "pc-dimm" ... */
    guint node;            /* guest node id (the device's node=) */
    guint64 bytes;         /* the backend's size */
    guint64 page_size;     /* bytes; 0 = regular memory */
    QnBitmap *host_nodes;  /* where it is bound: its guest node's host nodes, the user's own
                            * host-nodes, or empty (no such guest node: left to QEMU) */
    QnMemoryMode mode;
    gboolean host_nodes_from_user;
    gboolean reserve;      /* hugepages with prealloc, of the plan's page size and mount: we
                            * pre-allocate and verify it as a guest node (src/host/qn-reserve.c)
                            * and QEMU gets the reserved fd as its mem-path */
} QnPlanMemDevice;

void qn_plan_mem_device_free(QnPlanMemDevice *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QnPlanMemDevice, qn_plan_mem_device_free)

/**
 * QnPlanPciDevice: a -device of the argv with a host node (vfio-pci, or the test setting's), as
 * the device-locality stage placed it in the guest (src/core/qn-plan-devices.c).
 */
typedef struct {
    guint arg_index;       /* index in QnQemuArgv.args of its -device */
    gchar *driver;
    gchar *id;             /* nullable */
    guint host_node;       /* where the device is on the host */
    guint guest_node;      /* the guest node it belongs to (the one on host_node, or nearest) */
    gchar *user_bus;       /* nullable: the argv's bus=, kept: the device is left there */
    guint expander;        /* index in QnPlan.expanders, when user_bus is %NULL */
    guint port;            /* q35: its root port's number (qn-rpN) on that expander */
} QnPlanPciDevice;

void qn_plan_pci_device_free(QnPlanPciDevice *d);

/**
 * QnPlanExpander: a PCI expander bus of ours for one guest node: pxb-pcie on q35 (with a
 * pcie-root-port per device), pxb on pc (the devices plugged straight into it).
 */
typedef struct {
    guint guest_node;      /* its numa_node= */
    guint bus_nr;          /* its bus_nr=: the first bus number of its hierarchy */
    gboolean pcie;         /* pxb-pcie (q35) rather than pxb (pc) */
} QnPlanExpander;

typedef struct {
    QnPlanKind kind;
    QnPolicy policy;
    QnMemoryMode mode;
    QnGuestTopology guest_topology;
    GPtrArray *guest_nodes;  /* QnGuestNode*, by guest node id */
    guint *distance;         /* guest_nodes->len^2 to emit as -numa dist, or %NULL */
    gdouble mean_distance;   /* mean pairwise host distance of the host nodes used (0 if 1) */
    gchar *hugetlbfs;        /* mount used for hugepage guest nodes, %NULL if none */
    gchar *reason;           /* fallback reason, or notes on the choice; nullable */
    gboolean dedicated;      /* vCPUs pinned 1:1 (guest_nodes[].pcpus) */
    QnCpuThreadPolicy thread_policy;
    QnBitmap *emulator_pcpus; /* dedicated: where QEMU's other threads run; else %NULL */
    QnBitmap *held_pcpus;    /* dedicated: every pCPU this VM keeps from others (vCPUs,
                              * emulator, and SMT siblings left idle by `isolate`) */
    QnSmp smp;               /* the guest's vCPU topology: the argv's, or ours (smp_ours) */
    gboolean smp_ours;       /* -smp rewritten: the argv gave a vCPU count and no sockets */
    gboolean by_socket;      /* each guest node holds whole sockets: -numa cpu,socket-id= */
    GPtrArray *mem_devices;  /* QnPlanMemDevice*: the argv's hotplug memory, bound per node */
    GPtrArray *pci_devices;  /* QnPlanPciDevice*: devices with a host node, in argv order */
    GArray *expanders;       /* QnPlanExpander: ours, one per guest node with devices */
    gchar *devices_note;     /* nullable: why devices with a host node got no expander */
    GArray *hmat;            /* QnPlanHmatLb, or %NULL: no -machine hmat=on of ours */
} QnPlan;

void qn_guest_node_free(QnGuestNode *g);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QnGuestNode, qn_guest_node_free)
void qn_plan_free(QnPlan *plan);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QnPlan, qn_plan_free)

/**
 * qn_plan_compute:
 * @topo: (nullable): the host; only nodes with allowed=TRUE are used (the process's cpuset);
 *   %NULL only for a probe or policy none, which plan nothing
 * @resv: (nullable): reservations not visible in @topo's counters
 * @qa: the parsed QEMU argv (the request: -m, -smp, the guest topology if it defines one)
 * @cfg: policy, memory mode, guest node mode, hugepage size, packing
 * @error: %QN_ERROR_NO_FIT when the policy is restricted or single-numa-node and no aligned plan
 *   exists, or when the guest is larger than the host's usable memory (restricted and
 *   single-numa-node always; best-effort only where QEMU would not start it either: a prealloc,
 *   hugepages, or one mapping larger than the host; else best-effort falls back);
 *   %QN_ERROR_BAD_ARGV when the argv's own topology breaks QEMU's rules (node sizes that do not
 *   sum to -m, a -numa node memdev naming no backend); %QN_ERROR_HUGEPAGES when a configured
 *   hugepage size has no hugetlbfs mount
 *
 * Placement rules: guest node counts 1, 2, 4 ... then the others, memory split evenly in whole
 * pages (Cloudpods' host agent splits a guest so); among the host node sets that fit, the one
 * with the least summed SLIT distance (Xen libxl's automatic placement, Kubernetes Topology
 * Manager's prefer-closest-numa-nodes), then packing; then, for an automatic split, the split
 * that fills the nearest node with room first when its expected vCPU-to-memory distance is
 * lower (qn-plan-locality.c); policy names from the Kubernetes Topology Manager. Each rule is stated where it is applied (src/core/qn-plan-*.c, stages listed in
 * src/core/qn-planner.h). Deterministic: the same input gives the same plan. No syscalls.
 *
 * Returns: (transfer full): the plan, or %NULL on error.
 */
QnPlan *qn_plan_compute(const QnTopology *topo, const QnReservations *resv,
                        const QnQemuArgv *qa, const QnConfig *cfg, GError **error);

/**
 * qn_plan_new_fallback:
 * @from: the plan that cannot be carried out (an aligned plan whose reservation or pCPUs
 *   failed, or the planner's draft): the fallback keeps its policy, memory mode and guest
 *   topology, and nothing else (no guest nodes, no pCPUs, no hugetlbfs)
 * @reason_format: printf format of the reason, the whole phrase as the ledger and
 *   `qemu-numa-ctl status` show it, e.g. "reservation failed: %s: memory left to the OS"
 *
 * The plan of a best-effort launch that found or kept no aligned placement: QEMU runs with the
 * user's argv and the OS allocates (Kubernetes Topology Manager's best-effort policy).
 *
 * Returns: (transfer full): a %QN_PLAN_FALLBACK plan; free with qn_plan_free().
 */
QnPlan *qn_plan_new_fallback(const QnPlan *from, const char *reason_format, ...)
    G_GNUC_PRINTF(2, 3);

/** qn_plan_summary: one line for people ("2 guest nodes: 0->host 0 (4G 2M pages), ..."). */
gchar *qn_plan_summary(const QnPlan *plan);

const char *qn_plan_kind_to_string(QnPlanKind kind);
const char *qn_guest_topology_to_string(QnGuestTopology t);

G_END_DECLS
