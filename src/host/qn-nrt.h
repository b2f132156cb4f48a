/* This host as a Kubernetes NodeResourceTopology (topology.node.k8s.io/v1alpha2), issue 17. */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include "qn-config.h"
#include "qn-plan.h"
#include "qn-topology.h"

G_BEGIN_DECLS

/**
 * qn_nrt_quantity:
 * @value: an amount in base units (bytes, CPUs)
 * The Kubernetes quantity (k8s.io/apimachinery/pkg/api/resource, the pattern of the v1alpha2
 * CRD's capacity/allocatable/available) of @value: with a binary suffix (Ki, Mi, Gi, Ti, Pi, Ei)
 * when @value is a whole number of the largest such unit, else the plain integer; "0" for 0.
 * Returns: (transfer full)
 */
gchar *qn_nrt_quantity(guint64 value);

/**
 * qn_nrt_resource_name:
 * @page_size: bytes
 * Returns: (transfer full): kubelet's hugepage resource name: "hugepages-2Mi", "hugepages-1Gi"
 *   (v1.ResourceHugePagesPrefix + the size as a quantity)
 */
gchar *qn_nrt_resource_name(guint64 page_size);

/**
 * qn_nrt_fingerprint:
 * @entries: QnLedgerEntry* (qn_ledger_list())
 * A fingerprint of the ledger's generation: SHA-256 over each entry's user, pid, start time,
 * our state and plan summary, in pid order, as "sha256:" + 16 hex digits. It changes when a VM
 * comes, goes, or changes state, and not with QEMU's events or run state (those change no
 * reservation), so a consumer can tell an object that no longer matches the books.
 * Returns: (transfer full)
 */
gchar *qn_nrt_fingerprint(GPtrArray *entries);

/**
 * qn_nrt_build:
 * @topo: the host (qn_topology_load())
 * @resv: (nullable): what the ledger has promised and the kernel does not show yet
 *   (qn_ledger_reservations(): hugepages of entries still reserving, regular memory of live
 *   entries, pinned pCPUs)
 * @entries: QnLedgerEntry* for the fingerprint
 * @node_name: metadata.name (the Kubernetes node name)
 * @policy: the configured policy, published as attribute topologyManagerPolicy
 *
 * The NodeResourceTopology object of this host, after the v1alpha2 types of
 * github.com/k8stopologyawareschedwg/noderesourcetopology-api pkg/apis/topology/v1alpha2/
 * types.go (Zone, ResourceInfo, CostInfo, AttributeInfo), zone names from its
 * helper/numanode IDToName ("node-N"). One zone per online node, type "Node", costs to every
 * zone (itself included) from the SLIT. Resources per zone, all in base units as quantities:
 * - cpu: capacity the node's CPUs, allocatable those in our Cpus_allowed, available those
 *   minus the pCPUs pinned for VMs;
 * - memory: capacity MemTotal minus the node's hugepage pools, allocatable the same, available
 *   MemFree minus regular memory the ledger promised;
 * - hugepages-<size>: capacity = allocatable = the pool, available = free pages + our pool (none
 *   yet: 0) - pages the ledger promised that the kernel does not count yet, never below 0.
 * Top-level attributes: topologyManagerPolicy, topologyManagerScope ("pod": a VM is one
 * container's QEMU), and qemu-numa.io/ledger-generation (qn_nrt_fingerprint()).
 * Returns: (transfer full): the object
 */
JsonNode *qn_nrt_build(const QnTopology *topo, const QnReservations *resv, GPtrArray *entries,
                       const char *node_name, QnPolicy policy);

/**
 * qn_nrt_to_yaml:
 * @node: a JSON tree of objects, arrays, strings, integers and booleans
 * YAML 1.2 of @node, block style, two-space indent; every string double-quoted with JSON's
 * escapes, which YAML 1.2 reads the same, so no value can turn into another type.
 * Returns: (transfer full)
 */
gchar *qn_nrt_to_yaml(JsonNode *node);

G_END_DECLS
