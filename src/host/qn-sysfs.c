#include "qn-sysfs.h"

#include <string.h>

#include "qn-error.h"

static gchar *
qn_read(const char *path, gboolean optional, GError **error)
{
    gchar *data = NULL;
    g_autoptr(GError) local = NULL;

    if (!g_file_get_contents(path, &data, NULL, &local)) {
        if (optional && g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
            return NULL;
        }
        g_set_error(error, QN_ERROR, QN_ERROR_TOPOLOGY, "%s: %s", path, local->message);
        return NULL;
    }
    return data;
}

static gboolean
qn_read_counter_file(const char *path, guint64 *ret, GError **error)
{
    g_autofree gchar *data = qn_read(path, TRUE, error);

    if (data == NULL) {
        if (error != NULL && *error != NULL) {
            return FALSE;
        }
        *ret = 0;
        return TRUE;
    }
    if (!qn_parse_counter(data, ret, error)) {
        g_prefix_error(error, "%s: ", path);
        return FALSE;
    }
    return TRUE;
}

static gchar *
qn_hugepage_dir(guint64 page_size)
{
    return g_strdup_printf("hugepages-%" G_GUINT64_FORMAT "kB", page_size >> 10);
}

gboolean
qn_read_free_hugepages(const char *sysfs_root, guint node, guint64 page_size, guint64 *ret_free,
                       GError **error)
{
    g_autofree gchar *dir = qn_hugepage_dir(page_size);
    g_autofree gchar *path = g_strdup_printf("%s/devices/system/node/node%u/hugepages/%s/"
                                             "free_hugepages", sysfs_root, node, dir);
    g_autofree gchar *data = qn_read(path, FALSE, error);

    if (data == NULL) {
        return FALSE;
    }
    if (!qn_parse_counter(data, ret_free, error)) {
        g_prefix_error(error, "%s: ", path);
        return FALSE;
    }
    return TRUE;
}

static gint
qn_cmp_u64(gconstpointer a, gconstpointer b)
{
    guint64 x = *(const guint64 *)a, y = *(const guint64 *)b;

    return x < y ? -1 : x > y;
}

static gboolean
qn_load_page_sizes(QnTopology *topo, const char *sysfs_root, GError **error)
{
    g_autofree gchar *dir = g_strdup_printf("%s/kernel/mm/hugepages", sysfs_root);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;

    if (d == NULL) {
        return TRUE; /* no hugetlb support: no page sizes */
    }
    while ((name = g_dir_read_name(d)) != NULL) {
        guint64 ps = qn_parse_hugepage_dirname(name);

        if (ps != 0) {
            g_array_append_val(topo->page_sizes, ps);
        }
    }
    g_array_sort(topo->page_sizes, qn_cmp_u64);
    /* resv_hugepages is global per size (no per-node file): the planner caps its total by it */
    g_array_set_size(topo->page_resv, topo->page_sizes->len);
    for (guint i = 0; i < topo->page_sizes->len; i++) {
        g_autofree gchar *hd = qn_hugepage_dir(g_array_index(topo->page_sizes, guint64, i));
        g_autofree gchar *p = g_strdup_printf("%s/%s/resv_hugepages", dir, hd);

        /* a missing file (older captures) reads as 0 */
        if (!qn_read_counter_file(p, &g_array_index(topo->page_resv, guint64, i), error)) {
            return FALSE;
        }
    }
    return TRUE;
}

/* nodeN/access0/initiators/ (Linux 5.2+, only with an ACPI HMAT): the initiator nodes are
 * entries named nodeM (symlinks: only their names are read, never followed), the figures four
 * counter files. Absent: no HMAT, an empty set. A figure that does not parse is an error. */
static gboolean
qn_load_node_hmat(QnHostNode *node, const char *base, GError **error)
{
    g_autofree gchar *dir = g_strdup_printf("%s/access0/initiators", base);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;
    static const char *const files[] = { "read_latency", "write_latency", "read_bandwidth",
                                         "write_bandwidth" };
    guint64 *values[] = { &node->hmat_read_latency, &node->hmat_write_latency,
                          &node->hmat_read_bandwidth, &node->hmat_write_bandwidth };

    node->hmat_initiators = qn_bitmap_new();
    while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
        guint64 id;

        if (g_str_has_prefix(name, "node") &&
            g_ascii_string_to_unsigned(name + 4, 10, 0, QN_BITMAP_MAX_ID - 1, &id, NULL)) {
            qn_bitmap_set(node->hmat_initiators, (guint)id);
        }
    }
    for (guint i = 0; d != NULL && i < G_N_ELEMENTS(files); i++) {
        g_autofree gchar *path = g_strdup_printf("%s/%s", dir, files[i]);

        if (!qn_read_counter_file(path, values[i], error)) {
            return FALSE;
        }
    }
    return TRUE;
}

static gboolean
qn_load_node(QnTopology *topo, const char *sysfs_root, guint id, GArray **ret_row,
             GError **error)
{
    g_autofree gchar *base = g_strdup_printf("%s/devices/system/node/node%u", sysfs_root, id);
    g_autofree gchar *cpulist_path = g_strdup_printf("%s/cpulist", base);
    g_autofree gchar *dist_path = g_strdup_printf("%s/distance", base);
    g_autofree gchar *meminfo_path = g_strdup_printf("%s/meminfo", base);
    g_autofree gchar *cpulist = NULL, *dist = NULL, *meminfo = NULL;
    QnHostNode *node = g_new0(QnHostNode, 1);

    node->id = id;
    node->allowed = TRUE;
    node->pools = g_array_new(FALSE, FALSE, sizeof(QnHugepagePool));
    g_ptr_array_add(topo->nodes, node);
    if ((cpulist = qn_read(cpulist_path, FALSE, error)) == NULL ||
        (dist = qn_read(dist_path, FALSE, error)) == NULL ||
        (meminfo = qn_read(meminfo_path, FALSE, error)) == NULL) {
        return FALSE;
    }
    node->cpus = qn_bitmap_parse_list(cpulist, error);
    if (node->cpus == NULL) {
        g_prefix_error(error, "%s: ", cpulist_path);
        return FALSE;
    }
    *ret_row = qn_parse_distance_row(dist, error);
    if (*ret_row == NULL) {
        g_prefix_error(error, "%s: ", dist_path);
        return FALSE;
    }
    if (!qn_parse_node_meminfo(meminfo, &node->mem_total, &node->mem_free, error)) {
        g_prefix_error(error, "%s: ", meminfo_path);
        return FALSE;
    }
    for (guint i = 0; i < topo->page_sizes->len; i++) {
        QnHugepagePool pool = { .page_size = g_array_index(topo->page_sizes, guint64, i) };
        g_autofree gchar *hd = qn_hugepage_dir(pool.page_size);
        g_autofree gchar *nr = g_strdup_printf("%s/hugepages/%s/nr_hugepages", base, hd);
        g_autofree gchar *fr = g_strdup_printf("%s/hugepages/%s/free_hugepages", base, hd);
        g_autofree gchar *su = g_strdup_printf("%s/hugepages/%s/surplus_hugepages", base, hd);

        if (!qn_read_counter_file(nr, &pool.nr, error) ||
            !qn_read_counter_file(fr, &pool.free, error) ||
            !qn_read_counter_file(su, &pool.surplus, error)) {
            return FALSE;
        }
        g_array_append_val(node->pools, pool);
    }
    return qn_load_node_hmat(node, base, error);
}

/* One CPU's siblings, core and package from its topology directory. */
static gboolean
qn_load_cpu(QnHostCpu *cpu, const char *sysfs_root, GError **error)
{
    g_autofree gchar *base = g_strdup_printf("%s/devices/system/cpu/cpu%u/topology", sysfs_root,
                                             cpu->id);
    g_autofree gchar *sib_path = g_strdup_printf("%s/thread_siblings_list", base);
    g_autofree gchar *core_path = g_strdup_printf("%s/core_id", base);
    g_autofree gchar *pkg_path = g_strdup_printf("%s/physical_package_id", base);
    g_autofree gchar *sib = qn_read(sib_path, TRUE, error);
    guint64 v;

    if (error != NULL && *error != NULL) {
        return FALSE;
    }
    cpu->siblings = sib ? qn_bitmap_parse_list(sib, error) : qn_bitmap_new();
    if (cpu->siblings == NULL) {
        g_prefix_error(error, "%s: ", sib_path);
        return FALSE;
    }
    if (qn_bitmap_count(cpu->siblings) == 0) {
        qn_bitmap_set(cpu->siblings, cpu->id);
    }
    if (!qn_read_counter_file(core_path, &v, error)) {
        return FALSE;
    }
    cpu->core = (guint)v;
    if (!qn_read_counter_file(pkg_path, &v, error)) {
        return FALSE;
    }
    cpu->package = (guint)v;
    return TRUE;
}

static gboolean
qn_load_cpus(QnTopology *topo, const char *sysfs_root, GError **error)
{
    /* CPU id -> the first-read CPU of its core. SMT siblings are by definition threads of one
     * core of one package (Documentation/ABI/stable/sysfs-devices-system-cpu), so a sibling
     * of a CPU already read takes its three values instead of reading them again: half the
     * opens with 2 threads a core (measured in bench/launch.c: these reads were most of a
     * topology load, 9 ms on the 8-socket tree's 384 CPUs, 18 ms on 64 nodes). */
    g_autoptr(GHashTable) read = g_hash_table_new(g_direct_hash, g_direct_equal);

    for (guint n = 0; n < topo->nodes->len; n++) {
        const QnHostNode *node = g_ptr_array_index(topo->nodes, n);

        QN_BITMAP_FOREACH(node->cpus, c) {
            QnHostCpu *cpu = g_new0(QnHostCpu, 1);
            const QnHostCpu *first = g_hash_table_lookup(read, GINT_TO_POINTER(c));

            cpu->id = (guint)c;
            cpu->node = node->id;
            cpu->allowed = TRUE;
            g_ptr_array_add(topo->cpus, cpu);
            if (first != NULL && qn_bitmap_test(first->siblings, (guint)c)) {
                cpu->siblings = qn_bitmap_copy(first->siblings);
                cpu->core = first->core;
                cpu->package = first->package;
                continue;
            }
            if (!qn_load_cpu(cpu, sysfs_root, error)) {
                return FALSE;
            }
            QN_BITMAP_FOREACH(cpu->siblings, s) {
                if (s != c) {
                    g_hash_table_insert(read, GINT_TO_POINTER(s), cpu);
                }
            }
        }
    }
    return TRUE;
}

static void
qn_load_pci(QnTopology *topo, const char *sysfs_root)
{
    g_autofree gchar *dir = g_strdup_printf("%s/bus/pci/devices", sysfs_root);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;

    while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
        g_autofree gchar *p = g_strdup_printf("%s/%s/numa_node", dir, name);
        g_autofree gchar *data = qn_read(p, TRUE, NULL);
        gint64 v;
        QnPciDevice *dev;

        if (data == NULL || !g_ascii_string_to_signed(g_strstrip(data), 10, -1, 1023, &v,
                                                      NULL)) {
            continue;
        }
        dev = g_new0(QnPciDevice, 1);
        dev->address = g_strdup(name);
        dev->node = (gint)v;
        g_ptr_array_add(topo->pci, dev);
    }
}

QnTopology *
qn_topology_load(const char *sysfs_root, const char *proc_root, GError **error)
{
    g_autoptr(QnTopology) topo = qn_topology_new();
    g_autofree gchar *online_path = g_strdup_printf("%s/devices/system/node/online", sysfs_root);
    g_autofree gchar *online = NULL;
    g_autoptr(QnBitmap) online_set = NULL;
    g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func((GDestroyNotify)g_array_unref);
    g_autofree gchar *meminfo_path = g_strdup_printf("%s/meminfo", proc_root);
    g_autofree gchar *meminfo = qn_read(meminfo_path, TRUE, NULL);
    g_autofree gchar *status_path = g_strdup_printf("%s/self/status", proc_root);
    g_autofree gchar *status = qn_read(status_path, TRUE, NULL);
    g_autofree gchar *mi_path = g_strdup_printf("%s/self/mountinfo", proc_root);
    g_autofree gchar *mountinfo = qn_read(mi_path, TRUE, NULL);
    guint n;

    topo->default_page_size = meminfo ? qn_parse_meminfo_hugepagesize(meminfo) : 0;
    if (!qn_load_page_sizes(topo, sysfs_root, error)) {
        return NULL;
    }
    if (topo->default_page_size == 0 && topo->page_sizes->len > 0) {
        topo->default_page_size = g_array_index(topo->page_sizes, guint64, 0);
    }
    online = qn_read(online_path, FALSE, error);
    if (online == NULL) {
        return NULL;
    }
    online_set = qn_bitmap_parse_list(online, error);
    if (online_set == NULL) {
        g_prefix_error(error, "%s: ", online_path);
        return NULL;
    }
    QN_BITMAP_FOREACH(online_set, id) {
        GArray *row = NULL;

        if (!qn_load_node(topo, sysfs_root, (guint)id, &row, error)) {
            if (row != NULL) {
                g_array_unref(row);
            }
            return NULL;
        }
        g_ptr_array_add(rows, row);
    }
    n = topo->nodes->len;
    if (n == 0) {
        g_set_error(error, QN_ERROR, QN_ERROR_TOPOLOGY, "%s: no online node", online_path);
        return NULL;
    }
    topo->distance = g_new0(guint, n * n);
    for (guint i = 0; i < n; i++) {
        GArray *row = g_ptr_array_index(rows, i);

        /* The kernel prints one entry per online node (node_read_distance). */
        if (row->len != n) {
            g_set_error(error, QN_ERROR, QN_ERROR_TOPOLOGY,
                        "node%u/distance: %u entries for %u online nodes",
                        ((QnHostNode *)g_ptr_array_index(topo->nodes, i))->id, row->len, n);
            return NULL;
        }
        for (guint j = 0; j < n; j++) {
            topo->distance[i * n + j] = g_array_index(row, guint, j);
        }
    }
    if (!qn_load_cpus(topo, sysfs_root, error)) {
        return NULL;
    }
    qn_load_pci(topo, sysfs_root);
    if (mountinfo != NULL) {
        g_ptr_array_unref(topo->mounts);
        topo->mounts = qn_parse_mountinfo_hugetlbfs(mountinfo, topo->default_page_size);
    }
    if (status != NULL) {
        g_autoptr(QnBitmap) cpus = NULL;
        g_autoptr(QnBitmap) mems = NULL;

        if (!qn_parse_status_allowed(status, &cpus, &mems, error)) {
            g_prefix_error(error, "%s: ", status_path);
            return NULL;
        }
        for (guint i = 0; i < n; i++) {
            QnHostNode *node = g_ptr_array_index(topo->nodes, i);

            node->allowed = qn_bitmap_test(mems, node->id);
        }
        for (guint i = 0; i < topo->cpus->len; i++) {
            QnHostCpu *cpu = g_ptr_array_index(topo->cpus, i);

            cpu->allowed = qn_bitmap_test(cpus, cpu->id);
        }
    }
    return g_steal_pointer(&topo);
}
