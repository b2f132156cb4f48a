/* The QEMU command-line model: every argv element in order, plus what we understand of it. */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include "qn-bitmap.h"
#include "qn-keyval.h"

G_BEGIN_DECLS

/**
 * QnArg:
 * One option (or positional argument) of the user's argv, kept byte for byte so the rewriter
 * can write it back unchanged.
 */
typedef struct {
    gchar *name;  /* option name without dashes ("m", "object"), %NULL for a positional */
    gchar *flag;  /* the element as written ("-m", "--object"), or the positional itself */
    gchar *value; /* the option's argument, %NULL when it takes none */
} QnArg;

/**
 * QnMemoryBackend:
 * A `-object memory-backend-{ram,file,memfd}` the user (or libvirt) defined.
 */
typedef struct {
    guint arg_index;      /* index in QnQemuArgv.args of its -object */
    gboolean json;        /* written as JSON ('{"qom-type":...}') rather than keyval */
    gchar *qom_type;      /* "memory-backend-file" ... */
    gchar *id;
    guint64 size;         /* bytes */
    gchar *mem_path;      /* nullable */
    gchar *policy;        /* nullable: "default", "preferred", "bind", "interleave" */
    QnBitmap *host_nodes; /* nullable: no host-nodes property */
    JsonObject *props;    /* every property, typed as JSON would carry it (keyval: strings) */
    QnKeyval *keyval;     /* keyval form: the parsed pairs in order; %NULL for JSON */
} QnMemoryBackend;

/** QnNumaNode: one `-numa node,...`. */
typedef struct {
    guint arg_index;
    gint nodeid;          /* -1 when not given: QEMU numbers nodes in order */
    QnBitmap *cpus;       /* union of every cpus= (may be empty) */
    gchar *memdev;        /* nullable */
    guint64 mem;          /* legacy mem= in bytes, 0 when absent */
    gboolean has_mem;
} QnNumaNode;

/** QnNumaDist: one `-numa dist,src=,dst=,val=`. */
typedef struct {
    guint src, dst, val;
} QnNumaDist;

/** QnSmp: `-smp` after QEMU 7.2's rules for missing values (hw/core/machine-smp.c). */
typedef struct {
    guint cpus;    /* vCPUs present at start */
    guint maxcpus; /* vCPU slots including hotpluggable ones */
    guint sockets, dies, clusters, cores, threads;
    gboolean layout_given;  /* sockets=, dies=, clusters= or cores= written: the user's sockets
                             * are the guest's, we split only on their boundaries */
} QnSmp;

/**
 * QnMemDevice:
 * A `-device pc-dimm|nvdimm|virtio-mem-pci|virtio-mem` (hotplug memory) and the guest node it
 * belongs to (its node= property; QEMU's default is node 0: hw/mem/pc-dimm.c,
 * hw/virtio/virtio-mem.c).
 */
typedef struct {
    guint arg_index;  /* index in QnQemuArgv.args of its -device */
    gchar *driver;    /* "pc-dimm", "nvdimm", "virtio-mem-pci" ... */
    gchar *memdev;    /* nullable: the backend's id (a -device without one is QEMU's to refuse) */
    guint node;       /* guest node id */
} QnMemDevice;

/**
 * QnPciDeviceArg:
 * A `-device` of the argv other than hotplug memory: what the device-locality stage needs to
 * put it behind a PCI expander bus of its guest node (src/core/qn-plan-devices.c).
 */
typedef struct {
    guint arg_index;      /* index in QnQemuArgv.args of its -device */
    gboolean json;        /* written as JSON rather than keyval */
    gchar *driver;        /* "vfio-pci", "virtio-net-pci" ... */
    gchar *id;            /* nullable: id= */
    gchar *bus;           /* nullable: the bus= the argv chose */
    gchar *vfio_address;  /* nullable: vfio-pci's host PCI address, "0000:3b:00.0" */
} QnPciDeviceArg;

typedef struct {
    gchar *argv0;
    GPtrArray *args;           /* QnArg*, in order; argv0 excluded */

    /* What a probe or informational run looks like: exec QEMU untouched. */
    gboolean probe;
    gchar *probe_reason;       /* e.g. "-machine none" */

    guint64 ram_size;          /* bytes; QEMU's default 128 MiB when there is no -m */
    gboolean has_m;
    guint64 maxmem;            /* bytes, 0 when absent */
    guint slots;
    QnSmp smp;
    gint smp_index;            /* index in args of the first -smp, -1 when there is none */

    GPtrArray *numa_nodes;     /* QnNumaNode* */
    GPtrArray *numa_dists;     /* QnNumaDist* */
    gboolean has_numa_cpu;     /* -numa cpu,... present (we keep the user's nodes then); the
                                * vCPUs each names are in its node's QnNumaNode.cpus */
    GPtrArray *backends;       /* QnMemoryBackend*, memory backends only */
    gchar *machine_type;       /* nullable, last -machine type= */
    gchar *machine_memory_backend; /* nullable, -machine memory-backend= */
    gchar *mem_path;           /* nullable, -mem-path */
    gboolean mem_prealloc;

    gchar *name;               /* -name guest= (nullable) */
    gchar *uuid;               /* -uuid (nullable) */
    gboolean start_paused;     /* -S */
    gchar *incoming;           /* -incoming (nullable) */
    gboolean daemonize;
    gchar *pidfile;
    GPtrArray *vfio_hosts;     /* gchar*, "0000:3b:00.0" of each -device vfio-pci,host= or
                                * sysfsdev=/sys/bus/pci/devices/0000:3b:00.0 */
    GPtrArray *mem_devices;    /* QnMemDevice*: pc-dimm, nvdimm, virtio-mem devices */
    GPtrArray *pci_devices;    /* QnPciDeviceArg*: every other -device, in order */
    GArray *numa_cpus;         /* gint x5 per -numa cpu: node-id, socket-, die-, core-,
                                * thread-id (-1: not given); resolved into numa_nodes */
} QnQemuArgv;

void qn_qemu_argv_free(QnQemuArgv *qa);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QnQemuArgv, qn_qemu_argv_free)

/**
 * qn_qemu_argv_parse:
 * @argv: a QEMU command line, argv[0] first, %NULL-terminated (not modified, copied)
 * @error: %QN_ERROR_BAD_ARGV with a one-line message naming the bad option and value:
 *   an option we own that is malformed (-m, -smp, -numa, -object memory-backend-*, -machine
 *   memory-backend=), a missing argument, or `-opt=value` (QEMU 7.2 rejects that form as
 *   "invalid option"; we say so before anything is reserved)
 *
 * Options we do not own are kept as written, even if QEMU would reject them: QEMU reports its
 * own errors. Probe runs (-machine none, -version, -help, any "help" or "?" argument) parse
 * with @probe set and nothing else checked.
 *
 * Returns: (transfer full): the model, or %NULL on error.
 */
QnQemuArgv *qn_qemu_argv_parse(const char *const *argv, GError **error);

/** qn_qemu_argv_find_backend: the memory backend with @id, or %NULL. (transfer none) */
QnMemoryBackend *qn_qemu_argv_find_backend(const QnQemuArgv *qa, const char *id);

/**
 * qn_qemu_argv_to_strv:
 * Returns: (transfer full): the argv written back, argv0 first; equals the input of
 *   qn_qemu_argv_parse() byte for byte.
 */
GStrv qn_qemu_argv_to_strv(const QnQemuArgv *qa);

G_END_DECLS
