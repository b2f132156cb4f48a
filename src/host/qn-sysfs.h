/* Reading the host: sysfs and procfs under injectable roots. */
#pragma once

#include <glib.h>

#include "qn-topology.h"

G_BEGIN_DECLS

/**
 * qn_topology_load:
 * @sysfs_root: where sysfs is ("/sys", or a fake tree tests/data/sysfs/<host>)
 * @proc_root: where procfs is ("/proc"); `self/status` gives Cpus_allowed_list and
 *   Mems_allowed_list (the cpuset libvirt puts the emulator in), `self/mountinfo` the
 *   hugetlbfs mounts, `meminfo` the default hugepage size. A @proc_root without `self/status`
 *   leaves every node and CPU allowed (fake roots for tests).
 * @error: %QN_ERROR_TOPOLOGY naming the file that cannot be read or parsed
 *
 * Reads, per online node: cpulist, distance, meminfo, hugepages/hugepages-<K>kB/{nr,free,
 * surplus}_hugepages; per CPU: topology/{thread_siblings_list,core_id,physical_package_id};
 * host-wide: kernel/mm/hugepages/hugepages-SIZE (page sizes, resv_hugepages); bus/pci/devices/ADDR/numa_node.
 * Missing optional files (a node without hugepages-1048576kB, a CPU without topology/)
 * read as zero/empty, as on kernels that omit them.
 *
 * Returns: (transfer full): the topology, or %NULL on error.
 */
QnTopology *qn_topology_load(const char *sysfs_root, const char *proc_root, GError **error);

/**
 * qn_read_free_hugepages:
 * @sysfs_root: as above
 * @node: host node id
 * @page_size: bytes
 * @ret_free: (out): free_hugepages of that pool, written on success
 * @error: %QN_ERROR_TOPOLOGY when the counter cannot be read
 */
gboolean qn_read_free_hugepages(const char *sysfs_root, guint node, guint64 page_size,
                                guint64 *ret_free, GError **error);

G_END_DECLS
