/* Fuzz target "sysfs": the buffer parsers of sysfs and procfs files in src/core/qn-topology.c
 * and src/core/qn-bitmap.c, as src/host/qn-sysfs.c and the monitor call them.
 *
 * Input: the first byte picks the parser (modulo the table below), the rest is the file's
 * content, read up to the first NUL as g_file_get_contents() callers do. Invariants: every
 * value a parser returns is in the range its doc comment promises. */
#include "config.h"

#include <glib.h>

#include "fuzz.h"
#include "qn-bitmap.h"
#include "qn-topology.h"

const char qn_fuzz_target[] = "sysfs";

/* The file each first byte stands for; tests/fuzz/make-corpus writes seeds with these bytes. */
enum {
    QN_FUZZ_CPULIST,     /* nodeN/cpulist, node/online, has_memory, thread_siblings_list */
    QN_FUZZ_DISTANCE,    /* nodeN/distance */
    QN_FUZZ_MEMINFO,     /* nodeN/meminfo */
    QN_FUZZ_COUNTER,     /* hugepages-<K>kB/{nr,free,surplus,resv}_hugepages, core_id ... */
    QN_FUZZ_DIRNAME,     /* a hugepages-<K>kB directory name */
    QN_FUZZ_MOUNTINFO,   /* /proc/self/mountinfo */
    QN_FUZZ_STATUS,      /* /proc/self/status */
    QN_FUZZ_PROCMEMINFO, /* /proc/meminfo */
    QN_FUZZ_NUMA_MAPS,   /* /proc/PID/numa_maps */
    QN_FUZZ_CPUMASK,     /* cpumap, Cpus_allowed */
    QN_FUZZ_N_PARSERS
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    qn_fuzz_init_logging();
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree gchar *text = NULL;
    g_autoptr(GError) error = NULL;

    if (size < 1) {
        return 0;
    }
    text = g_strndup((const char *)data + 1, size - 1);
    switch (data[0] % QN_FUZZ_N_PARSERS) {
    case QN_FUZZ_CPULIST: {
        g_autoptr(QnBitmap) b = qn_bitmap_parse_list(text, &error);

        g_assert((b == NULL) == (error != NULL));
        if (b != NULL && qn_bitmap_next(b, QN_BITMAP_MAX_ID) >= 0) {
            qn_fuzz_fail("cpulist '%s': an id >= %u", text, QN_BITMAP_MAX_ID);
        }
        break;
    }
    case QN_FUZZ_DISTANCE: {
        g_autoptr(GArray) row = qn_parse_distance_row(text, &error);

        g_assert((row == NULL) == (error != NULL));
        for (guint i = 0; row != NULL && i < row->len; i++) {
            if (g_array_index(row, guint, i) > 255) {
                qn_fuzz_fail("distance '%s': %u > 255", text, g_array_index(row, guint, i));
            }
        }
        break;
    }
    case QN_FUZZ_MEMINFO: {
        guint64 total = 1, free_b = 1;
        gboolean ok = qn_parse_node_meminfo(text, &total, &free_b, &error);

        g_assert(ok == (error == NULL));
        if (ok && ((total | free_b) & 1023) != 0) {
            qn_fuzz_fail("meminfo: sizes not in whole kB");
        }
        break;
    }
    case QN_FUZZ_COUNTER: {
        guint64 v;

        g_assert(qn_parse_counter(text, &v, &error) == (error == NULL));
        break;
    }
    case QN_FUZZ_DIRNAME:
        if ((qn_parse_hugepage_dirname(text) & 1023) != 0) {
            qn_fuzz_fail("hugepage dirname '%s': size not in whole kB", text);
        }
        break;
    case QN_FUZZ_MOUNTINFO: {
        g_autoptr(GPtrArray) mounts = qn_parse_mountinfo_hugetlbfs(text, 2 << 20);

        for (guint i = 0; i < mounts->len; i++) {
            const QnHugetlbfsMount *m = g_ptr_array_index(mounts, i);

            g_assert(m->path != NULL && m->page_size != 0);
        }
        break;
    }
    case QN_FUZZ_STATUS: {
        g_autoptr(QnBitmap) cpus = NULL;
        g_autoptr(QnBitmap) mems = NULL;
        gboolean ok = qn_parse_status_allowed(text, &cpus, &mems, &error);

        g_assert(ok == (error == NULL));
        g_assert(ok == (cpus != NULL && mems != NULL));
        break;
    }
    case QN_FUZZ_PROCMEMINFO:
        (void)qn_parse_meminfo_hugepagesize(text);
        break;
    case QN_FUZZ_NUMA_MAPS: {
        g_autoptr(GHashTable) per_node = qn_parse_numa_maps(text);
        GHashTableIter it;
        gpointer key;

        g_hash_table_iter_init(&it, per_node);
        while (g_hash_table_iter_next(&it, &key, NULL)) {
            g_assert(GPOINTER_TO_UINT(key) <= 1023);
        }
        break;
    }
    case QN_FUZZ_CPUMASK: {
        g_autoptr(QnBitmap) b = qn_bitmap_parse_mask(text, &error);

        g_assert((b == NULL) == (error != NULL));
        break;
    }
    default:
        g_assert_not_reached();
    }
    return 0;
}
