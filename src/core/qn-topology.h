/* The host's NUMA topology as the planner sees it: pure data, filled by src/host/qn-sysfs.c. */
#pragma once

#include <glib.h>

#include "qn-bitmap.h"

G_BEGIN_DECLS

/** QnHugepagePool: one hugepage size on one node (sysfs nodeN/hugepages/hugepages-<K>kB). */
typedef struct {
    guint64 page_size; /* bytes */
    guint64 nr;        /* nr_hugepages: pages in the pool */
    guint64 free;      /* free_hugepages: not yet allocated to any file or mapping */
    guint64 surplus;   /* surplus_hugepages */
    guint64 ours_ready; /* pages qemu-numa's pool service holds ready here (allocated, so not
                         * in free): set by qn_pool_count_ready(), else 0 */
} QnHugepagePool;

typedef struct {
    guint id;            /* kernel node id; ids may be sparse */
    QnBitmap *cpus;      /* may be empty (CPU-less node, e.g. HBM or CXL memory) */
    guint64 mem_total;   /* bytes; 0 for a memory-less node */
    guint64 mem_free;    /* bytes */
    GArray *pools;       /* QnHugepagePool, ascending page size */
    gboolean allowed;    /* in this process's Mems_allowed (cpuset) */
    /* The ACPI HMAT as Linux publishes it for this node as a memory target
     * (nodeN/access0/initiators/: Documentation/admin-guide/mm/numaperf.rst): the nodes with
     * the best access to it, and that access's figures; an empty set when the host has no
     * HMAT. Latencies in ns, bandwidths in MB/s (the kernel's units), 0 when not given. */
    QnBitmap *hmat_initiators;
    guint64 hmat_read_latency, hmat_write_latency;
    guint64 hmat_read_bandwidth, hmat_write_bandwidth;
} QnHostNode;

typedef struct {
    guint id;
    guint node;          /* the node whose cpulist holds it */
    guint package;       /* physical_package_id */
    guint core;          /* core_id */
    QnBitmap *siblings;  /* thread_siblings_list, includes itself */
    gboolean allowed;    /* in Cpus_allowed */
} QnHostCpu;

/** QnHugetlbfsMount: a hugetlbfs mount from /proc/self/mountinfo. */
typedef struct {
    gchar *path;
    guint64 page_size;   /* bytes: its pagesize= option or the default hugepage size */
} QnHugetlbfsMount;

typedef struct {
    gchar *address;      /* "0000:3b:00.0" */
    gint node;           /* -1: no affinity */
} QnPciDevice;

typedef struct {
    GPtrArray *nodes;       /* QnHostNode*, ascending id, online nodes only */
    guint *distance;        /* nodes->len x nodes->len SLIT, row-major by position */
    GPtrArray *cpus;        /* QnHostCpu*, ascending id */
    GArray *page_sizes;     /* guint64 bytes, every hugepage size the kernel has, ascending */
    guint64 default_page_size; /* "Hugepagesize:" of /proc/meminfo; 0 when unknown */
    GArray *page_resv;      /* guint64 per entry of page_sizes: the size's resv_hugepages */
    GPtrArray *mounts;      /* QnHugetlbfsMount* */
    GPtrArray *pci;         /* QnPciDevice* */
} QnTopology;

QnTopology *qn_topology_new(void);
void qn_topology_free(QnTopology *topo);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QnTopology, qn_topology_free)

/** qn_topology_node_index: position of node @id in topo->nodes, or -1. */
gint qn_topology_node_index(const QnTopology *topo, guint id);
/** qn_topology_node: (transfer none) the node with kernel id @id, or %NULL. */
QnHostNode *qn_topology_node(const QnTopology *topo, guint id);
/** qn_topology_distance: SLIT distance between node ids @a and @b (255 if unknown). */
guint qn_topology_distance(const QnTopology *topo, guint a, guint b);
/**
 * qn_topology_resv_pages:
 * @page_size: bytes
 * Returns: resv_hugepages of @page_size (kernel/mm/hugepages/hugepages-<K>kB/resv_hugepages):
 *   pages that mappings have reserved but not faulted in yet. The kernel counts them in
 *   free_hugepages and keeps them for those mappings; the count is global, not per node
 *   (Documentation/admin-guide/mm/hugetlbpage.rst). 0 for an unknown size or a missing file.
 */
guint64 qn_topology_resv_pages(const QnTopology *topo, guint64 page_size);

/** qn_host_node_pool: (transfer none) the pool of @page_size bytes on @node, or %NULL. */
QnHugepagePool *qn_host_node_pool(const QnHostNode *node, guint64 page_size);
/** qn_topology_mount_for: (transfer none) the first mount of @page_size, or %NULL. */
const QnHugetlbfsMount *qn_topology_mount_for(const QnTopology *topo, guint64 page_size);
/**
 * qn_path_is_under:
 * @path: an absolute path (not resolved: no symlinks are followed, no I/O)
 * @dir: an absolute directory path, with or without a trailing '/'
 *
 * Returns: %TRUE when @path is @dir itself or lies below it by whole path components
 * ("/dev/hugepages/x" is under "/dev/hugepages", "/dev/hugepages1G" is not).
 */
gboolean qn_path_is_under(const char *path, const char *dir);

/* Parsers: buffers in, values out (STYLE.md: parsers take buffers, not paths). All report
 * %QN_ERROR_TOPOLOGY naming the bad text. */

/**
 * qn_parse_distance_row:
 * @text: a `nodeN/distance` file: space-separated SLIT values, one per online node
 * Returns: (transfer full): GArray of guint, or %NULL on error (a value > 255 or junk).
 */
GArray *qn_parse_distance_row(const char *text, GError **error);

/**
 * qn_parse_node_meminfo:
 * @text: a `nodeN/meminfo` file ("Node 0 MemTotal:  123 kB" lines)
 * @ret_total, @ret_free: (out): MemTotal and MemFree in bytes
 */
gboolean qn_parse_node_meminfo(const char *text, guint64 *ret_total, guint64 *ret_free,
                               GError **error);

/** qn_parse_counter: a sysfs file holding one unsigned decimal integer. */
gboolean qn_parse_counter(const char *text, guint64 *ret, GError **error);

/**
 * qn_parse_hugepage_dirname:
 * @name: a directory name "hugepages-2048kB"
 * Returns: the page size in bytes, 0 when @name is not of that form.
 */
guint64 qn_parse_hugepage_dirname(const char *name);

/**
 * qn_parse_mountinfo_hugetlbfs:
 * @text: /proc/self/mountinfo (Documentation/filesystems/proc.rst 3.5)
 * @default_page_size: bytes, for a hugetlbfs mount without pagesize= (the kernel's default
 *   hugepage size); mountinfo always shows pagesize= on current kernels
 * Returns: (transfer full): QnHugetlbfsMount* of every hugetlbfs mount, in file order, with
 *   octal escapes (\040) in paths decoded. Never fails: lines that are not hugetlbfs are
 *   skipped, malformed ones too.
 */
GPtrArray *qn_parse_mountinfo_hugetlbfs(const char *text, guint64 default_page_size);

/**
 * qn_parse_status_allowed:
 * @text: /proc/self/status
 * @ret_cpus, @ret_mems: (out) (transfer full): Cpus_allowed_list and Mems_allowed_list
 * @error: %QN_ERROR_TOPOLOGY when either line is missing or malformed
 */
gboolean qn_parse_status_allowed(const char *text, QnBitmap **ret_cpus, QnBitmap **ret_mems,
                                 GError **error);

/**
 * qn_parse_meminfo_hugepagesize:
 * @text: /proc/meminfo
 * Returns: "Hugepagesize:" in bytes, 0 when absent.
 */
guint64 qn_parse_meminfo_hugepagesize(const char *text);

void qn_hugetlbfs_mount_free(QnHugetlbfsMount *m);

G_END_DECLS

G_BEGIN_DECLS

/**
 * qn_parse_numa_maps:
 * @text: /proc/PID/numa_maps (Documentation/filesystems/proc.rst "numa_maps"): one mapping a
 *   line with "N<node>=<pages>" counts and "kernelpagesize_kB=<size>"
 * Returns: (transfer full): node id (GUINT_TO_POINTER) -> bytes (GSIZE_TO_POINTER) resident on
 *   that node, summed over all mappings. Lines without counts are skipped; never fails.
 */
GHashTable *qn_parse_numa_maps(const char *text);

/**
 * qn_parse_numa_maps_mapping:
 * @maps: /proc/PID/maps (Documentation/filesystems/proc.rst: "start-end perms ..." a line,
 *   addresses in hex)
 * @numa_maps: /proc/PID/numa_maps of the same process: each line starts with its mapping's
 *   start address (mm/mempolicy.c show_numa_map(): "%08lx")
 * @size: the length in bytes of the mapping wanted: a memory backend's size (QEMU 7.2 maps a
 *   RAM block as one mapping of exactly its size, with a PROT_NONE guard page after it:
 *   util/mmap-alloc.c qemu_ram_mmap())
 * @ret_matches: (out): how many mappings of @maps are exactly @size bytes long
 *
 * A backend has no name in numa_maps (anonymous, or a hugetlbfs or memfd file we cannot tie to
 * it), so it is told apart by its length alone: only when exactly one mapping has it.
 * Returns: (transfer full) (nullable): host node -> bytes resident on it, as
 *   qn_parse_numa_maps(), of that one mapping (empty if numa_maps no longer lists it); %NULL
 *   when no mapping or more than one is @size bytes long.
 */
GHashTable *qn_parse_numa_maps_mapping(const char *maps, const char *numa_maps, guint64 size,
                                       guint *ret_matches);

G_END_DECLS
