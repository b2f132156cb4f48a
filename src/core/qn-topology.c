#include "qn-topology.h"

#include <string.h>

#include "qn-error.h"

static void
qn_host_node_free(gpointer p)
{
    QnHostNode *n = p;

    qn_bitmap_free(n->cpus);
    qn_bitmap_free(n->hmat_initiators);
    g_array_unref(n->pools);
    g_free(n);
}

static void
qn_host_cpu_free(gpointer p)
{
    QnHostCpu *c = p;

    qn_bitmap_free(c->siblings);
    g_free(c);
}

void
qn_hugetlbfs_mount_free(QnHugetlbfsMount *m)
{
    if (m != NULL) {
        g_free(m->path);
        g_free(m);
    }
}

static void
qn_pci_free(gpointer p)
{
    QnPciDevice *d = p;

    g_free(d->address);
    g_free(d);
}

QnTopology *
qn_topology_new(void)
{
    QnTopology *t = g_new0(QnTopology, 1);

    t->nodes = g_ptr_array_new_with_free_func(qn_host_node_free);
    t->cpus = g_ptr_array_new_with_free_func(qn_host_cpu_free);
    t->page_sizes = g_array_new(FALSE, FALSE, sizeof(guint64));
    t->page_resv = g_array_new(FALSE, TRUE, sizeof(guint64));
    t->mounts = g_ptr_array_new_with_free_func((GDestroyNotify)qn_hugetlbfs_mount_free);
    t->pci = g_ptr_array_new_with_free_func(qn_pci_free);
    return t;
}

void
qn_topology_free(QnTopology *topo)
{
    if (topo == NULL) {
        return;
    }
    g_ptr_array_unref(topo->nodes);
    g_free(topo->distance);
    g_ptr_array_unref(topo->cpus);
    g_array_unref(topo->page_sizes);
    g_array_unref(topo->page_resv);
    g_ptr_array_unref(topo->mounts);
    g_ptr_array_unref(topo->pci);
    g_free(topo);
}

guint64
qn_topology_resv_pages(const QnTopology *topo, guint64 page_size)
{
    for (guint i = 0; i < topo->page_sizes->len && i < topo->page_resv->len; i++) {
        if (g_array_index(topo->page_sizes, guint64, i) == page_size) {
            return g_array_index(topo->page_resv, guint64, i);
        }
    }
    return 0;
}

gint
qn_topology_node_index(const QnTopology *topo, guint id)
{
    for (guint i = 0; i < topo->nodes->len; i++) {
        if (((QnHostNode *)g_ptr_array_index(topo->nodes, i))->id == id) {
            return (gint)i;
        }
    }
    return -1;
}

QnHostNode *
qn_topology_node(const QnTopology *topo, guint id)
{
    gint i = qn_topology_node_index(topo, id);

    return i < 0 ? NULL : g_ptr_array_index(topo->nodes, i);
}

guint
qn_topology_distance(const QnTopology *topo, guint a, guint b)
{
    gint i = qn_topology_node_index(topo, a);
    gint j = qn_topology_node_index(topo, b);

    if (i < 0 || j < 0 || topo->distance == NULL) {
        return 255;
    }
    return topo->distance[(guint)i * topo->nodes->len + (guint)j];
}

QnHugepagePool *
qn_host_node_pool(const QnHostNode *node, guint64 page_size)
{
    for (guint i = 0; i < node->pools->len; i++) {
        QnHugepagePool *p = &g_array_index(node->pools, QnHugepagePool, i);

        if (p->page_size == page_size) {
            return p;
        }
    }
    return NULL;
}

const QnHugetlbfsMount *
qn_topology_mount_for(const QnTopology *topo, guint64 page_size)
{
    for (guint i = 0; i < topo->mounts->len; i++) {
        const QnHugetlbfsMount *m = g_ptr_array_index(topo->mounts, i);

        if (m->page_size == page_size) {
            return m;
        }
    }
    return NULL;
}

gboolean
qn_path_is_under(const char *path, const char *dir)
{
    gsize len = strlen(dir);

    return g_str_has_prefix(path, dir) &&
           (path[len] == '\0' || path[len] == '/' || (len > 0 && dir[len - 1] == '/'));
}

GArray *
qn_parse_distance_row(const char *text, GError **error)
{
    g_autoptr(GArray) row = g_array_new(FALSE, FALSE, sizeof(guint));
    g_auto(GStrv) parts = g_strsplit_set(text, " \t\n", -1);

    for (guint i = 0; parts[i] != NULL; i++) {
        guint64 v;

        if (parts[i][0] == '\0') {
            continue;
        }
        if (!g_ascii_string_to_unsigned(parts[i], 10, 0, 255, &v, NULL)) {
            g_autofree gchar *t = g_strchomp(g_strdup(text));

            g_set_error(error, QN_ERROR, QN_ERROR_TOPOLOGY, "'%s': invalid distance row", t);
            return NULL;
        }
        {
            guint d = (guint)v;

            g_array_append_val(row, d);
        }
    }
    return g_steal_pointer(&row);
}

gboolean
qn_parse_node_meminfo(const char *text, guint64 *ret_total, guint64 *ret_free, GError **error)
{
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    guint64 total = 0, free_kb = 0;
    gboolean have_total = FALSE, have_free = FALSE;

    for (guint i = 0; lines[i] != NULL; i++) {
        g_auto(GStrv) f = g_strsplit_set(lines[i], " \t", -1);
        const char *words[5];
        guint n = 0;

        for (guint j = 0; f[j] != NULL && n < 5; j++) {
            if (f[j][0] != '\0') {
                words[n++] = f[j];
            }
        }
        /* "Node", "0", "MemTotal:", "123", "kB" */
        if (n < 4 || strcmp(words[0], "Node") != 0) {
            continue;
        }
        if (strcmp(words[2], "MemTotal:") == 0) {
            have_total = g_ascii_string_to_unsigned(words[3], 10, 0, G_MAXUINT64 >> 10, &total,
                                                    NULL);
        } else if (strcmp(words[2], "MemFree:") == 0) {
            have_free = g_ascii_string_to_unsigned(words[3], 10, 0, G_MAXUINT64 >> 10, &free_kb,
                                                   NULL);
        }
    }
    if (!have_total || !have_free) {
        g_set_error(error, QN_ERROR, QN_ERROR_TOPOLOGY,
                    "node meminfo: missing or invalid MemTotal/MemFree");
        return FALSE;
    }
    *ret_total = total << 10;
    *ret_free = free_kb << 10;
    return TRUE;
}

gboolean
qn_parse_counter(const char *text, guint64 *ret, GError **error)
{
    g_autofree gchar *t = g_strstrip(g_strdup(text));

    if (!g_ascii_string_to_unsigned(t, 10, 0, G_MAXUINT64, ret, NULL)) {
        g_set_error(error, QN_ERROR, QN_ERROR_TOPOLOGY, "'%s': invalid counter", t);
        return FALSE;
    }
    return TRUE;
}

guint64
qn_parse_hugepage_dirname(const char *name)
{
    guint64 kb;
    g_autofree gchar *num = NULL;

    if (!g_str_has_prefix(name, "hugepages-") || !g_str_has_suffix(name, "kB")) {
        return 0;
    }
    num = g_strndup(name + strlen("hugepages-"), strlen(name) - strlen("hugepages-") - 2);
    if (!g_ascii_string_to_unsigned(num, 10, 1, G_MAXUINT64 >> 10, &kb, NULL)) {
        return 0;
    }
    return kb << 10;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static gchar *
qn_unescape_octal(const char *s)
{
    GString *out = g_string_new(NULL);

    for (const char *p = s; *p; p++) {
        if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' &&
            p[3] >= '0' && p[3] <= '7') {
            g_string_append_c(out, (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0')));
            p += 3;
        } else {
            g_string_append_c(out, *p);
        }
    }
    return g_string_free(out, FALSE);
}

GPtrArray *
qn_parse_mountinfo_hugetlbfs(const char *text, guint64 default_page_size)
{
    GPtrArray *mounts = g_ptr_array_new_with_free_func((GDestroyNotify)qn_hugetlbfs_mount_free);
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);

    for (guint i = 0; lines[i] != NULL; i++) {
        g_auto(GStrv) f = g_strsplit(lines[i], " ", -1);
        guint n = g_strv_length(f), sep;
        guint64 page_size = default_page_size;

        /* id parent maj:min root mountpoint options [optional...] - fstype source superopts */
        for (sep = 6; sep < n && strcmp(f[sep], "-") != 0; sep++) {
        }
        if (n < 5 || sep + 3 >= n + 1 || sep + 1 >= n || strcmp(f[sep + 1], "hugetlbfs") != 0) {
            continue;
        }
        if (sep + 3 < n) {
            g_auto(GStrv) opts = g_strsplit(f[sep + 3], ",", -1);

            for (guint j = 0; opts[j] != NULL; j++) {
                if (g_str_has_prefix(opts[j], "pagesize=")) {
                    const char *v = opts[j] + strlen("pagesize=");
                    guint64 num;
                    gchar *end = NULL;

                    /* The kernel prints pagesize=2M / 1024M / 16G (hugetlbfs_show_options). */
                    num = g_ascii_strtoull(v, &end, 10);
                    if (end == v) {
                        continue;
                    }
                    switch (*end) {
                    case 'K': page_size = num << 10; break;
                    case 'M': page_size = num << 20; break;
                    case 'G': page_size = num << 30; break;
                    case '\0': page_size = num; break;
                    default: break;
                    }
                }
            }
        }
        if (page_size == 0) {
            continue;
        }
        {
            QnHugetlbfsMount *m = g_new0(QnHugetlbfsMount, 1);

            m->path = qn_unescape_octal(f[4]);
            m->page_size = page_size;
            g_ptr_array_add(mounts, m);
        }
    }
    return mounts;
}

gboolean
qn_parse_status_allowed(const char *text, QnBitmap **ret_cpus, QnBitmap **ret_mems,
                        GError **error)
{
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    g_autoptr(QnBitmap) cpus = NULL;
    g_autoptr(QnBitmap) mems = NULL;

    for (guint i = 0; lines[i] != NULL; i++) {
        /* The kernel writes each line once; should one repeat, the last wins (no leak). */
        if (g_str_has_prefix(lines[i], "Cpus_allowed_list:")) {
            g_clear_pointer(&cpus, qn_bitmap_free);
            cpus = qn_bitmap_parse_list(lines[i] + strlen("Cpus_allowed_list:"), error);
            if (cpus == NULL) {
                return FALSE;
            }
        } else if (g_str_has_prefix(lines[i], "Mems_allowed_list:")) {
            g_clear_pointer(&mems, qn_bitmap_free);
            mems = qn_bitmap_parse_list(lines[i] + strlen("Mems_allowed_list:"), error);
            if (mems == NULL) {
                return FALSE;
            }
        }
    }
    if (cpus == NULL || mems == NULL) {
        g_set_error(error, QN_ERROR, QN_ERROR_TOPOLOGY,
                    "status: missing Cpus_allowed_list or Mems_allowed_list");
        return FALSE;
    }
    *ret_cpus = g_steal_pointer(&cpus);
    *ret_mems = g_steal_pointer(&mems);
    return TRUE;
}

guint64
qn_parse_meminfo_hugepagesize(const char *text)
{
    const char *p = strstr(text, "Hugepagesize:");
    guint64 kb;

    if (p == NULL) {
        return 0;
    }
    p += strlen("Hugepagesize:");
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    kb = g_ascii_strtoull(p, NULL, 10);
    return kb << 10;
}

GHashTable *
qn_parse_numa_maps(const char *text)
{
    GHashTable *per_node = g_hash_table_new(g_direct_hash, g_direct_equal);
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);

    for (guint i = 0; lines[i] != NULL; i++) {
        g_auto(GStrv) f = g_strsplit(lines[i], " ", -1);
        guint64 page_kb = 4;

        for (guint k = 0; f[k] != NULL; k++) {
            if (g_str_has_prefix(f[k], "kernelpagesize_kB=")) {
                page_kb = g_ascii_strtoull(f[k] + strlen("kernelpagesize_kB="), NULL, 10);
            }
        }
        for (guint k = 0; f[k] != NULL; k++) {
            const char *eq = strchr(f[k], '=');
            guint64 node, pages;

            if (f[k][0] != 'N' || eq == NULL || !g_ascii_isdigit(f[k][1])) {
                continue;
            }
            {
                g_autofree gchar *id = g_strndup(f[k] + 1, (gsize)(eq - f[k] - 1));

                if (!g_ascii_string_to_unsigned(id, 10, 0, 1023, &node, NULL) ||
                    !g_ascii_string_to_unsigned(eq + 1, 10, 0, G_MAXUINT64 >> 32, &pages,
                                                NULL)) {
                    continue;
                }
            }
            {
                gpointer key = GUINT_TO_POINTER((guint)node);
                gsize have = GPOINTER_TO_SIZE(g_hash_table_lookup(per_node, key));

                g_hash_table_insert(per_node, key,
                                    GSIZE_TO_POINTER(have + (gsize)(pages * page_kb * 1024)));
            }
        }
    }
    return per_node;
}

GHashTable *
qn_parse_numa_maps_mapping(const char *maps, const char *numa_maps, guint64 size,
                           guint *ret_matches)
{
    g_auto(GStrv) lines = g_strsplit(maps, "\n", -1);
    g_auto(GStrv) nlines = NULL;
    guint64 found = 0;
    guint matches = 0;

    g_assert(maps != NULL && numa_maps != NULL && ret_matches != NULL);
    for (guint i = 0; lines[i] != NULL; i++) {
        const char *dash = strchr(lines[i], '-');
        gchar *end = NULL;
        guint64 start, stop;

        if (dash == NULL) {
            continue;
        }
        start = g_ascii_strtoull(lines[i], &end, 16);
        if (end != dash) {
            continue;
        }
        stop = g_ascii_strtoull(dash + 1, &end, 16);
        if (end == dash + 1 || *end != ' ' || stop <= start) {
            continue;
        }
        if (stop - start == size) {
            found = start;
            matches++;
        }
    }
    *ret_matches = matches;
    if (matches != 1) {
        return NULL;
    }
    nlines = g_strsplit(numa_maps, "\n", -1);
    for (guint i = 0; nlines[i] != NULL; i++) {
        gchar *end = NULL;
        guint64 start = g_ascii_strtoull(nlines[i], &end, 16);

        if (end != nlines[i] && *end == ' ' && start == found) {
            return qn_parse_numa_maps(nlines[i]);
        }
    }
    return g_hash_table_new(g_direct_hash, g_direct_equal);
}
