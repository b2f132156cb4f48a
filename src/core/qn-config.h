/* Settings: /etc/qemu-numa/qemu-numa.conf (a glib key file) overridden by QEMU_NUMA_* variables. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/** QnPolicy: the Kubernetes Topology Manager policy names (kubelet --topology-manager-policy;
 * OpenShift Virtualization's NUMA guide ties a VM's placement to them). */
typedef enum {
    QN_POLICY_NONE,             /* pass the argv through untouched */
    QN_POLICY_BEST_EFFORT,      /* aligned if possible, else the OS allocates (recorded) */
    QN_POLICY_RESTRICTED,       /* aligned on any number of nodes, or refuse */
    QN_POLICY_SINGLE_NUMA_NODE, /* all memory on one host node, or refuse */
} QnPolicy;

/** QnMemoryMode: libvirt's <numatune><memory mode=...> modes (strict is our bind), QEMU's
 * memory backend `policy` (qom memory-backend policy=bind|preferred|interleave). */
typedef enum {
    QN_MEMORY_MODE_BIND,
    QN_MEMORY_MODE_PREFERRED,
    QN_MEMORY_MODE_INTERLEAVE,
} QnMemoryMode;

typedef enum {
    QN_GUEST_NODES_AUTO,        /* 1 node if it fits, else 2, 4, ... */
    QN_GUEST_NODES_FIXED,       /* exactly guest_nodes (kept across hosts, Cloudpods) */
    QN_GUEST_NODES_PASSTHROUGH, /* one guest node per host node used (KubeVirt) */
} QnGuestNodesMode;

typedef enum {
    QN_PACKING_BEST_FIT,  /* the fitting node(s) with the least free pages left after */
    QN_PACKING_WORST_FIT, /* the fitting node(s) with the most free pages left after */
} QnPacking;

/** QnCpuThreadPolicy: Nova's hw:cpu_thread_policy for dedicated vCPUs. */
typedef enum {
    QN_CPU_THREADS_PREFER,  /* fill whole cores first, siblings of one core together */
    QN_CPU_THREADS_ISOLATE, /* one vCPU per core; its SMT siblings stay idle (held) */
    QN_CPU_THREADS_REQUIRE, /* vCPUs on SMT sibling pairs only */
} QnCpuThreadPolicy;

/** QnPoolSpec: one entry of the `pool` setting, NODE:SIZE[@PAGESIZE]. */
typedef struct {
    guint node;                  /* host node id */
    guint64 bytes;               /* a multiple of page_size */
    guint64 page_size;           /* bytes; 0 = the host's default hugepage size */
} QnPoolSpec;

typedef struct {
    gchar *qemu;                 /* "" = search PATH for qemu-system-x86_64, skipping ourselves */
    QnPolicy policy;
    QnMemoryMode memory_mode;
    QnGuestNodesMode guest_nodes_mode;
    guint guest_nodes;           /* with QN_GUEST_NODES_FIXED: 1..64 */
    guint64 hugepage_size;       /* bytes; 0 = auto (largest that fits), G_MAXUINT64 = none */
    gchar *hugetlbfs;            /* "" = a mount of the page size found in mountinfo */
    gchar *state_dir;
    gchar *sysfs_root;
    gchar *proc_root;
    gboolean allow_cpuless_nodes; /* back vCPU-carrying guest nodes by CPU-less host nodes */
    QnPacking packing;
    gboolean dedicated_cpus;     /* pin each vCPU 1:1 to a pCPU (KubeVirt dedicatedCpuPlacement) */
    QnCpuThreadPolicy cpu_thread_policy;
    gboolean isolate_emulator;   /* emulator threads on a pCPU of their own (isolateEmulatorThread) */
    gboolean mirror_distances;   /* argv-defined guest topologies too get -numa dist lines that
                                  * mirror the host nodes chosen (off: the argv's SLIT) */
    gboolean hotplug_headroom;   /* hold -m maxmem's room for hotplug (maxmem - ram - the argv's
                                  * memory devices) on the guest nodes' host nodes, in the
                                  * ledger: hotplug-headroom = on (default off) */
    gboolean device_locality_first; /* a vfio-pci device's host node outranks the page size
                                     * (device-locality = first, the default); FALSE: page
                                     * size first (after-page-size) */
    GLogLevelFlags log_level;    /* messages at or above this level reach stderr */
    guint reserve_threads;       /* at most this many reservation workers per guest node */
    GArray *pool;                /* QnPoolSpec: what `qemu-numa-ctl pool run` keeps ready */
    GHashTable *test_device_nodes; /* test only (QEMU_NUMA_TEST_DEVICE_NODE=ID:NODE[,...]): the
                                    * host node of an emulated -device id=ID, which has none;
                                    * gchar* id -> GUINT_TO_POINTER(node + 1); never %NULL */
} QnConfig;

/* QEMU's own cap on its prealloc threads (util/oslib-posix.c MAX_MEM_PREALLOC_THREAD_COUNT) */
#define QN_RESERVE_THREADS_DEFAULT 16

#define QN_HUGEPAGE_SIZE_AUTO 0
#define QN_HUGEPAGE_SIZE_NONE G_MAXUINT64

QnConfig *qn_config_new_default(void);
void qn_config_free(QnConfig *cfg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QnConfig, qn_config_free)

/**
 * qn_config_load:
 * @keyfile_data: (nullable): contents of the key file (group [qemu-numa]), %NULL for none
 * @keyfile_name: the file's path, for messages
 * @envp: (nullable): the environment ("NAME=value" strings); QEMU_NUMA_* variables override
 *   the key file. QEMU_NUMA_CONFIG and QEMU_NUMA_TEST_* are read by the programs, not here,
 *   except QEMU_NUMA_TEST_DEVICE_NODE=ID:NODE[,ID:NODE...] (the host node of an emulated
 *   device, so tests can drive the device-locality path without a vfio device)
 * @error: %QN_ERROR_BAD_CONFIG naming the setting and the bad value: an unknown key, group or
 *   QEMU_NUMA_ variable, or an invalid value. Never ignored silently.
 *
 * Every setting, its variable, default and meaning is in README.md "Configuration".
 * Returns: (transfer full): the settings, or %NULL on error.
 */
QnConfig *qn_config_load(const char *keyfile_data, const char *keyfile_name,
                         const char *const *envp, GError **error);

/**
 * qn_pool_spec_parse:
 * @text: the `pool` setting: comma-separated NODE:SIZE[@PAGESIZE] ("0:64G,1:64G@1G"); "" for
 *   none. SIZE takes qn_size_parse()'s suffixes (default MiB); PAGESIZE a power of two >= 4K;
 *   without it the host's default hugepage size. One entry per node and page size.
 * @error: %QN_ERROR_BAD_CONFIG naming the bad entry
 * Returns: (transfer full): a QnPoolSpec array, or %NULL on error.
 */
GArray *qn_pool_spec_parse(const char *text, GError **error);

const char *qn_policy_to_string(QnPolicy policy);
const char *qn_memory_mode_to_string(QnMemoryMode mode);
const char *qn_cpu_thread_policy_to_string(QnCpuThreadPolicy policy);
/** qn_memory_mode_from_qemu: QEMU backend policy name -> mode; FALSE for "default"/unknown. */
gboolean qn_memory_mode_from_qemu(const char *policy, QnMemoryMode *ret_mode);

G_END_DECLS
