/* Guest shape: how many guest nodes, of what size, with which vCPUs and page sizes, before any
 * host node is chosen; and, once the search has chosen, the guest nodes of the plan.
 *
 * Rules: an automatic topology tries 1 guest node, then 2, 4 ..., then the other counts, memory
 * split evenly in whole hugepages and vCPU slots evenly in whole cores (the split of Cloudpods'
 * host agent, extended past powers of two: a 6-node host may need 3). The argv's own topology
 * (-numa node lines, or -machine memory-backend= as libvirt writes without <numa>) is kept as
 * QEMU will read it, and must obey QEMU's rules: the nodes' memory sums to -m (hw/core/numa.c),
 * a memdev names a backend. Hugepage sizes are tried largest first. */
#include "qn-planner.h"

#include <string.h>

#include "qn-error.h"

static void
qn_shape_node_free(gpointer ptr)
{
    QnShapeNode *s = ptr;

    qn_bitmap_free(s->vcpus);
    g_free(s->memdev);
    qn_bitmap_free(s->user_hosts);
    g_free(s);
}

/* The hugepage size of a memory-backend-memfd with hugetlb=on: hugetlbsize=, else the host's
 * default (memfd_create(MFD_HUGETLB) without a size flag). 0 when not hugetlb. */
static guint64
qn_page_size_of_memfd(const QnPlanner *p, const QnMemoryBackend *b)
{
    JsonNode *h = json_object_get_member(b->props, "hugetlb");
    JsonNode *s = json_object_get_member(b->props, "hugetlbsize");
    gboolean huge = FALSE;
    guint64 size = 0;

    if (h != NULL && JSON_NODE_HOLDS_VALUE(h)) {
        huge = json_node_get_value_type(h) == G_TYPE_BOOLEAN
                   ? json_node_get_boolean(h)
                   : g_strcmp0(json_node_get_string(h), "on") == 0 ||
                         g_strcmp0(json_node_get_string(h), "true") == 0;
    }
    if (!huge) {
        return 0;
    }
    if (s != NULL && JSON_NODE_HOLDS_VALUE(s)) {
        if (json_node_get_value_type(s) == G_TYPE_INT64) {
            size = (guint64)json_node_get_int(s);
        } else {
            qn_size_parse(json_node_get_string(s), 1, &size, NULL);
        }
    }
    return size ? size : p->topo->default_page_size;
}

/* The page size of the user's backend: a memory-backend-file's mem-path under a hugetlbfs
 * mount (the deepest mount that holds it), a hugetlb memfd; 0 for regular memory. */
static guint64
qn_page_size_of_backend(const QnPlanner *p, const QnMemoryBackend *b)
{
    if (g_strcmp0(b->qom_type, "memory-backend-file") == 0 && b->mem_path != NULL) {
        guint64 best = 0;
        gsize best_len = 0;

        for (guint i = 0; i < p->topo->mounts->len; i++) {
            const QnHugetlbfsMount *m = g_ptr_array_index(p->topo->mounts, i);
            gsize len = strlen(m->path);

            if (qn_path_is_under(b->mem_path, m->path) && len >= best_len) {
                best = m->page_size;
                best_len = len;
            }
        }
        return best;
    }
    if (g_strcmp0(b->qom_type, "memory-backend-memfd") == 0) {
        return qn_page_size_of_memfd(p, b);
    }
    return 0;
}

/**
 * qn_shape_backend_page_size:
 * The page size in bytes of the argv's backend @b (0: regular memory), as
 * qn_page_size_of_backend() reads it: for hotplug memory backends too.
 */
guint64
qn_shape_backend_page_size(const QnPlanner *p, const QnMemoryBackend *b)
{
    return qn_page_size_of_backend(p, b);
}

/* What a user backend fixes of its guest node: size, id, page size, host nodes, policy. */
static void
qn_shape_node_from_backend(const QnPlanner *p, QnShapeNode *s, const QnMemoryBackend *b)
{
    s->bytes = b->size;
    s->memdev = g_strdup(b->id);
    s->page_size = (gint64)qn_page_size_of_backend(p, b);
    if (b->host_nodes != NULL && qn_bitmap_count(b->host_nodes) > 0) {
        s->user_hosts = qn_bitmap_copy(b->host_nodes);
    }
    s->has_user_mode = qn_memory_mode_from_qemu(b->policy, &s->user_mode);
}

/* The guest nodes of the argv's -numa node lines. */
static GPtrArray *
qn_shape_from_numa_nodes(const QnPlanner *p, GError **error)
{
    const QnQemuArgv *qa = p->qa;
    g_autoptr(GPtrArray) shape = g_ptr_array_new_with_free_func(qn_shape_node_free);
    guint64 sum = 0;
    gboolean any_mem = FALSE;

    for (guint i = 0; i < qa->numa_nodes->len; i++) {
        const QnNumaNode *un = g_ptr_array_index(qa->numa_nodes, i);

        any_mem |= un->memdev != NULL || un->has_mem;
    }
    for (guint i = 0; i < qa->numa_nodes->len; i++) {
        const QnNumaNode *un = g_ptr_array_index(qa->numa_nodes, i);
        QnShapeNode *s = g_new0(QnShapeNode, 1);

        s->id = un->nodeid >= 0 ? (guint)un->nodeid : i;
        s->user_node = (gint)i;
        s->vcpus = qn_bitmap_copy(un->cpus);
        s->page_size = -1;
        g_ptr_array_add(shape, s);
        if (un->memdev != NULL) {
            const QnMemoryBackend *b = qn_qemu_argv_find_backend(qa, un->memdev);

            if (b == NULL) {
                g_set_error(error, QN_ERROR, QN_ERROR_BAD_ARGV,
                            "-numa node memdev '%s': no such memory backend", un->memdev);
                return NULL;
            }
            qn_shape_node_from_backend(p, s, b);
        } else if (un->has_mem) {
            s->bytes = un->mem;
        }
        sum += s->bytes;
    }
    if (!any_mem) {
        /* Nodes with CPUs but no memory at all: QEMU 7.2 refuses that for pc/q35, so the
         * memory is ours to split, evenly, as for auto. Marked by bytes == 0 here. */
        return g_steal_pointer(&shape);
    }
    if (sum != qa->ram_size) {
        g_autofree gchar *a = qn_size_format(sum);
        g_autofree gchar *b = qn_size_format(qa->ram_size);

        g_set_error(error, QN_ERROR, QN_ERROR_BAD_ARGV,
                    "-numa: the guest nodes' memory (%s) does not equal -m (%s)", a, b);
        return NULL;
    }
    return g_steal_pointer(&shape);
}

/* The one guest node of -machine memory-backend= (libvirt's argv for a guest without <numa>). */
static GPtrArray *
qn_shape_from_machine_backend(const QnPlanner *p, GError **error)
{
    const QnQemuArgv *qa = p->qa;
    const QnMemoryBackend *b = qn_qemu_argv_find_backend(qa, qa->machine_memory_backend);
    g_autoptr(GPtrArray) shape = g_ptr_array_new_with_free_func(qn_shape_node_free);
    QnShapeNode *s;

    if (b == NULL) {
        g_set_error(error, QN_ERROR, QN_ERROR_BAD_ARGV,
                    "-machine memory-backend '%s': no such memory backend",
                    qa->machine_memory_backend);
        return NULL;
    }
    if (qa->has_m && b->size != qa->ram_size) {
        g_autofree gchar *a = qn_size_format(b->size);
        g_autofree gchar *c = qn_size_format(qa->ram_size);

        g_set_error(error, QN_ERROR, QN_ERROR_BAD_ARGV,
                    "-machine memory-backend '%s': size %s does not equal -m (%s)", b->id, a, c);
        return NULL;
    }
    s = g_new0(QnShapeNode, 1);
    s->user_node = -1;
    s->vcpus = qn_bitmap_new();
    for (guint c = 0; c < qa->smp.maxcpus; c++) {
        qn_bitmap_set(s->vcpus, c);
    }
    qn_shape_node_from_backend(p, s, b);
    g_ptr_array_add(shape, s);
    return g_steal_pointer(&shape);
}

/* Does the argv give any guest node memory? (If not, -m is ours to split.) */
static gboolean
qn_shape_has_memory(const GPtrArray *shape)
{
    for (guint i = 0; shape != NULL && i < shape->len; i++) {
        if (((const QnShapeNode *)g_ptr_array_index(shape, i))->bytes > 0) {
            return TRUE;
        }
    }
    return FALSE;
}

/* Does any of the argv's backends name its host nodes (libvirt <numatune>)? */
static gboolean
qn_shape_has_user_hosts(const GPtrArray *shape)
{
    for (guint i = 0; shape != NULL && i < shape->len; i++) {
        if (((const QnShapeNode *)g_ptr_array_index(shape, i))->user_hosts != NULL) {
            return TRUE;
        }
    }
    return FALSE;
}

/* Hugepage sizes to try, largest first; 0 (regular memory) is not in the list. */
static GArray *
qn_page_sizes(const QnPlanner *p, GError **error)
{
    g_autoptr(GArray) sizes = g_array_new(FALSE, FALSE, sizeof(guint64));
    guint64 want = p->cfg->hugepage_size;

    if (want == QN_HUGEPAGE_SIZE_NONE) {
        return g_steal_pointer(&sizes);
    }
    if (want != QN_HUGEPAGE_SIZE_AUTO) {
        gboolean known = FALSE;
        g_autofree gchar *s = qn_size_format(want);

        for (guint i = 0; i < p->topo->page_sizes->len; i++) {
            known |= g_array_index(p->topo->page_sizes, guint64, i) == want;
        }
        if (!known) {
            g_set_error(error, QN_ERROR, QN_ERROR_HUGEPAGES,
                        "hugepage size '%s': this host has no hugepages of that size", s);
            return NULL;
        }
        if (!qn_topology_mount_for(p->topo, want)) {
            g_set_error(error, QN_ERROR, QN_ERROR_HUGEPAGES,
                        "hugepage size '%s': no hugetlbfs mount of that page size", s);
            return NULL;
        }
        g_array_append_val(sizes, want);
        return g_steal_pointer(&sizes);
    }
    for (guint i = p->topo->page_sizes->len; i > 0; i--) {
        guint64 ps = g_array_index(p->topo->page_sizes, guint64, i - 1);

        if (qn_topology_mount_for(p->topo, ps) != NULL) {
            g_array_append_val(sizes, ps);
        }
    }
    return g_steal_pointer(&sizes);
}

/* Node counts to try: the argv's or the configured one, else 1, 2, 4 ... then the other
 * counts (a 6-node host may need 3: better aligned on 3 than left to the OS). */
static GArray *
qn_node_counts(const QnPlanner *p)
{
    GArray *counts = g_array_new(FALSE, FALSE, sizeof(guint));
    guint maxn = MAX(p->usable->len, 1);

    if (p->shape != NULL) {
        guint c = p->shape->len;

        g_array_append_val(counts, c);
    } else if (p->kind == QN_GUEST_TOPOLOGY_FIXED) {
        /* the argv's sockets cap it: the nearest count that splits on socket boundaries */
        guint c = MIN(p->cfg->guest_nodes, qn_sockets_max_nodes(p));

        g_array_append_val(counts, c);
    } else if (p->single) {
        guint one = 1;

        g_array_append_val(counts, one);
    } else {
        /* the argv's sockets cap it: no guest node may split a socket (qn-plan-sockets.c) */
        maxn = MIN(maxn, qn_sockets_max_nodes(p));
        for (guint c = 1; c <= maxn; c *= 2) {
            g_array_append_val(counts, c);
        }
        for (guint c = 3; c <= maxn; c++) {
            if ((c & (c - 1)) != 0) {
                g_array_append_val(counts, c);
            }
        }
    }
    return counts;
}

/* Does backend @b preallocate (prealloc=on/true, as QEMU's qom bool property parses it)? */
static gboolean
qn_backend_preallocs(const QnMemoryBackend *b)
{
    JsonNode *v = json_object_get_member(b->props, "prealloc");

    if (v == NULL || !JSON_NODE_HOLDS_VALUE(v)) {
        return FALSE;
    }
    if (json_node_get_value_type(v) == G_TYPE_BOOLEAN) {
        return json_node_get_boolean(v);
    }
    return json_node_get_value_type(v) == G_TYPE_STRING &&
           (g_strcmp0(json_node_get_string(v), "on") == 0 ||
            g_strcmp0(json_node_get_string(v), "true") == 0 ||
            g_strcmp0(json_node_get_string(v), "yes") == 0);
}

/* Would QEMU itself start a guest of more memory than @host_total? Only when nothing is
 * preallocated and every mapping is of regular memory and no larger than the host: QEMU maps a
 * memory-backend-ram (or a file off hugetlbfs) without touching it, and the kernel's default
 * overcommit heuristic refuses only a single mapping larger than RAM + swap
 * (mm/util.c __vm_enough_memory, OVERCOMMIT_GUESS). A hugetlbfs or hugetlb memfd mapping
 * reserves its pages at mmap (mm/hugetlb.c hugetlb_reserve_pages), and -m alone is one
 * mapping of -m. *@ret_prealloc: the backend that preallocates ("-mem-prealloc" for the
 * option), or %NULL. */
static gboolean
qn_shape_qemu_overcommits(const QnPlanner *p, guint64 host_total, const char **ret_prealloc)
{
    const QnQemuArgv *qa = p->qa;
    gboolean legacy = FALSE;
    gboolean all_regular;

    /* legacy -numa node,mem= nodes: one mapping each, as the backends we write for them */
    for (guint i = 0; i < qa->numa_nodes->len; i++) {
        const QnNumaNode *un = g_ptr_array_index(qa->numa_nodes, i);

        legacy |= un->has_mem;
        if (un->has_mem && un->mem > host_total) {
            return FALSE;
        }
    }
    all_regular = (qa->backends->len > 0 || legacy) && qa->mem_path == NULL;
    *ret_prealloc = qa->mem_prealloc ? "-mem-prealloc" : NULL;
    for (guint i = 0; i < qa->backends->len; i++) {
        const QnMemoryBackend *b = g_ptr_array_index(qa->backends, i);

        if (qn_backend_preallocs(b) && *ret_prealloc == NULL) {
            *ret_prealloc = b->id;
        }
        all_regular &= qn_page_size_of_backend(p, b) == 0 && b->size <= host_total;
    }
    return *ret_prealloc == NULL && all_regular;
}

/* A guest larger than all the memory this process may use. restricted and single-numa-node
 * refuse it. best-effort never refuses what QEMU itself would start (the libvirt rule: the
 * guest is libvirt's): overcommitted regular memory without prealloc falls back to the OS and
 * says why; a prealloc that cannot fit is refused with QEMU's own reason (util/oslib-posix.c
 * qemu_prealloc_mem, QEMU 7.2); a single mapping larger than the host, as the kernel would. */
static QnStageResult
qn_shape_check_host_memory(QnPlanner *p, GError **error)
{
    guint64 host_total = 0;
    g_autofree gchar *a = NULL;
    g_autofree gchar *b = NULL;
    const char *prealloc = NULL;

    for (guint i = 0; i < p->usable->len; i++) {
        host_total += qn_topology_node(p->topo, g_array_index(p->usable, guint, i))->mem_total;
    }
    if (p->qa->ram_size <= host_total) {
        return QN_STAGE_OK;
    }
    a = qn_size_format_human(p->qa->ram_size);
    b = qn_size_format_human(host_total);
    if (p->cfg->policy == QN_POLICY_BEST_EFFORT &&
        qn_shape_qemu_overcommits(p, host_total, &prealloc)) {
        qn_planner_no_fit(p, "memory",
                          "-m %s: guest memory exceeds the %s of memory on the host nodes this "
                          "process may use (QEMU overcommits regular memory without prealloc)",
                          a, b);
        return QN_STAGE_NO_FIT;
    }
    if (p->cfg->policy == QN_POLICY_BEST_EFFORT && prealloc != NULL) {
        g_set_error(error, QN_ERROR, QN_ERROR_NO_FIT,
                    "-m %s: guest memory exceeds the %s of memory on the host nodes this "
                    "process may use and '%s' preallocates: QEMU would fail with "
                    "'qemu_prealloc_mem: preallocating memory failed'", a, b, prealloc);
        return QN_STAGE_ERROR;
    }
    g_set_error(error, QN_ERROR, QN_ERROR_NO_FIT,
                "-m %s: guest memory exceeds the %s of memory on the host nodes this "
                "process may use", a, b);
    return QN_STAGE_ERROR;
}

/**
 * qn_plan_stage_shape:
 * Fills the planner's guest shape: the argv's own topology if it has one, the guest topology
 * kind, the hugepage sizes and the node counts to try. Errors: the guest is larger than the
 * usable memory and QEMU would not start it either, or the policy is not best-effort (see
 * qn_shape_check_host_memory(); best-effort's overcommit is a %QN_STAGE_NO_FIT fallback), the
 * argv's topology breaks QEMU's rules, a configured hugepage size the host cannot give.
 */
QnStageResult
qn_plan_stage_shape(QnPlanner *p, GError **error)
{
    const QnConfig *cfg = p->cfg;
    GError *local = NULL;
    QnStageResult size_check;

    if (p->qa->numa_nodes->len > 0) {
        p->kind = QN_GUEST_TOPOLOGY_USER;
        p->shape = qn_shape_from_numa_nodes(p, &local);
    } else if (p->qa->machine_memory_backend != NULL) {
        p->shape = qn_shape_from_machine_backend(p, &local);
        p->kind = p->shape != NULL ? QN_GUEST_TOPOLOGY_MACHINE_BACKEND : p->kind;
    }
    if (local != NULL) {
        g_propagate_error(error, local);
        return QN_STAGE_ERROR;
    }
    /* After the argv's topology: its errors come first, and a fallback keeps its kind. */
    size_check = qn_shape_check_host_memory(p, error);
    if (size_check != QN_STAGE_OK) {
        return size_check;
    }
    p->page_sizes = qn_page_sizes(p, error);
    if (p->page_sizes == NULL) {
        return QN_STAGE_ERROR;
    }
    p->fixed_shape = p->shape != NULL || cfg->guest_nodes_mode == QN_GUEST_NODES_FIXED;
    if (p->shape == NULL && cfg->guest_nodes_mode == QN_GUEST_NODES_FIXED) {
        p->kind = QN_GUEST_TOPOLOGY_FIXED;
    } else if (p->shape == NULL && cfg->guest_nodes_mode == QN_GUEST_NODES_PASSTHROUGH) {
        p->kind = QN_GUEST_TOPOLOGY_PASSTHROUGH;
    }
    p->single = cfg->policy == QN_POLICY_SINGLE_NUMA_NODE;
    p->user_sizes = qn_shape_has_memory(p->shape);
    p->user_hosts = qn_shape_has_user_hosts(p->shape);
    p->counts = qn_node_counts(p);
    return QN_STAGE_OK;
}

/* Split @total bytes into @n whole-@granule parts, the first ones one granule larger. */
static gboolean
qn_split_bytes(guint64 total, guint n, guint64 granule, guint64 *ret_sizes)
{
    guint64 units;

    if (total % granule != 0) {
        return FALSE;
    }
    units = total / granule;
    if (units < n) {
        return FALSE;
    }
    for (guint i = 0; i < n; i++) {
        ret_sizes[i] = (units / n + (i < units % n)) * granule;
    }
    return TRUE;
}

/**
 * qn_shape_sizes:
 * The bytes of each of @n guest nodes on @page_size pages (0: regular memory): the argv's own
 * sizes, or -m split evenly in whole pages (regular memory: whole 2M units when -m is a
 * multiple of 2M, else 4K). *@ret_user_fixed_ps: a backend of the argv fixes its page size.
 * Returns: FALSE when -m does not split so (not a whole number of pages, fewer pages than
 * nodes).
 */
gboolean
qn_shape_sizes(const QnPlanner *p, guint n, guint64 page_size, guint64 *ret_sizes,
               gboolean *ret_user_fixed_ps)
{
    guint64 ram = p->qa->ram_size;

    *ret_user_fixed_ps = FALSE;
    if (!p->user_sizes) {
        return qn_split_bytes(ram, n,
                              page_size ? page_size
                                        : (ram % QN_REGULAR_GRANULE ? 4096 : QN_REGULAR_GRANULE),
                              ret_sizes);
    }
    for (guint i = 0; i < n; i++) {
        const QnShapeNode *s = g_ptr_array_index(p->shape, i);

        ret_sizes[i] = s->bytes;
        if (s->bytes > 0 && s->page_size >= 0) {
            *ret_user_fixed_ps = TRUE;
        }
    }
    return TRUE;
}

/* vCPU slots 0..maxcpus-1 split evenly in whole cores (SMT siblings stay together). */
static void
qn_split_vcpus(const QnSmp *smp, guint n, QnBitmap **ret)
{
    guint threads = MAX(smp->threads, 1);
    guint cores = smp->maxcpus / threads;
    guint next = 0;

    for (guint i = 0; i < n; i++) {
        guint take = cores / n + (i < cores % n);

        ret[i] = qn_bitmap_new();
        for (guint c = 0; c < take * threads; c++) {
            qn_bitmap_set(ret[i], next++);
        }
    }
    /* maxcpus not a multiple of threads cannot happen: -smp checked the product. */
}

static QnGuestNode *
qn_guest_node_new(guint id, const QnShapeNode *s, guint64 bytes, guint64 page_size,
                  QnMemoryMode mode)
{
    QnGuestNode *g = g_new0(QnGuestNode, 1);

    g->id = id;
    g->vcpus = s && s->vcpus ? qn_bitmap_copy(s->vcpus) : qn_bitmap_new();
    g->bytes = bytes;
    g->page_size = page_size;
    g->host_nodes = qn_bitmap_new();
    g->mode = mode;
    g->memdev = s && s->memdev ? g_strdup(s->memdev) : g_strdup_printf("qn-ram%u", id);
    g->user_node = s ? s->user_node : -1;
    g->pcpus = g_array_new(FALSE, FALSE, sizeof(guint));
    g->sockets = qn_bitmap_new();
    return g;
}

/* Same name as QEMU: a guest with no topology of its own in the argv that we give one guest node
 * gets it as -machine memory-backend= (qn-rewrite.c), so its backend takes the id QEMU gives the
 * machine's own RAM, "pc.ram" (hw/i386/pc_piix.c, pc_q35.c: default_ram_id). QEMU migrates RAM
 * blocks by name (migration/ram.c: "Unknown ramblock"), and libvirt names a <numa>-less guest's
 * backend so for the same reason (qemuBuildMemoryBackendProps, "pc.ram"): plain QEMU and
 * qemu-numa then migrate both ways with the same argv (issue 14). Guest nodes of passthrough
 * become -numa node lines, which plain QEMU's argv does not have, so they keep ours, as does a
 * guest whose argv already has a backend named pc.ram that the machine does not use. */
static void
qn_shape_name_machine_ram(const QnPlanner *p, QnPlan *plan)
{
    QnGuestNode *g;

    if (p->shape != NULL || plan->guest_nodes->len != 1 ||
        p->kind == QN_GUEST_TOPOLOGY_PASSTHROUGH) {
        return;
    }
    if (qn_qemu_argv_find_backend(p->qa, QN_MACHINE_RAM_ID) != NULL) {
        /* the argv has a backend of that id that is not the machine's (no -machine
         * memory-backend= names it): ours keeps its own id, so the user's is not rewritten as
         * ours (found by fuzz-argv) */
        return;
    }
    g = g_ptr_array_index(plan->guest_nodes, 0);
    g_free(g->memdev);
    g->memdev = g_strdup(QN_MACHINE_RAM_ID);
}

/**
 * qn_shape_build_plan:
 * The aligned plan of @n guest nodes of @sizes bytes on @page_size pages, each on the host
 * nodeset of @hosts (QnBitmap*, one per guest node). The argv's own nodes keep their id,
 * vCPUs, backend, page size and policy; ours get an even vCPU split. A guest node of 0 bytes
 * (the argv's memory-less node) gets no memdev (%NULL) and no host node.
 */
QnPlan *
qn_shape_build_plan(const QnPlanner *p, guint n, const guint64 *sizes, guint64 page_size,
                    GPtrArray *hosts)
{
    QnPlan *plan = qn_plan_new(p->cfg, QN_PLAN_ALIGNED);
    g_autofree QnBitmap **vcpus = g_new0(QnBitmap *, n);

    plan->guest_topology = p->kind;
    if (!p->user_sizes && p->shape == NULL) {
        qn_split_vcpus(&p->qa->smp, n, vcpus);
    }
    for (guint i = 0; i < n; i++) {
        const QnShapeNode *s = p->shape ? g_ptr_array_index(p->shape, i) : NULL;
        QnMemoryMode mode = s && s->has_user_mode ? s->user_mode : p->cfg->memory_mode;
        guint64 gps = s && s->page_size >= 0 ? (guint64)s->page_size : page_size;
        QnGuestNode *g = qn_guest_node_new(s ? s->id : i, s, sizes[i], sizes[i] ? gps : 0,
                                           mode);

        if (vcpus[i] != NULL) {
            qn_bitmap_free(g->vcpus);
            g->vcpus = vcpus[i];
        }
        qn_bitmap_or(g->host_nodes, g_ptr_array_index(hosts, i));
        g->host_nodes_from_user = s && s->user_hosts;
        if (s != NULL && sizes[i] == 0) {
            /* A memory-less node of the argv (-numa node,nodeid=N with neither memdev nor
             * mem: libvirt's generic initiators, CPU-only cells) has no backend, no host node
             * and no page size; its -numa line stays as the argv gives it. */
            g_clear_pointer(&g->memdev, g_free);
            g->page_size = 0;
        }
        g_ptr_array_add(plan->guest_nodes, g);
    }
    qn_shape_name_machine_ram(p, plan);
    return plan;
}

/* ---- uneven split: the last aligned try before the OS ---- */

/* The nearest node set whose free @page_size capacity adds up to @total: greedily from every
 * seed node, fewest nodes first, then least summed distance. Writes it to @ret_set (room for
 * every usable node). Returns the node count, 0 if none. Capacities are read once and each
 * candidate's distance to the set grows by one lookup per added node: O(seeds x nodes x
 * candidates), not x set size again (profiled: 73% of a 64-node plan before). */
static guint
qn_uneven_node_set(const QnPlanner *p, guint64 total, guint64 page_size, guint64 granule,
                   guint *ret_set)
{
    guint m = p->usable->len;
    guint best_n = 0;
    guint64 best_dist = 0;
    g_autofree guint *set = g_new0(guint, m);
    g_autofree gboolean *used = g_new0(gboolean, m);
    g_autofree guint64 *caps = g_new0(guint64, m);
    g_autofree guint64 *to_set = g_new0(guint64, m);

    for (guint c = 0; c < m; c++) {
        caps[c] = qn_capacity(p, g_array_index(p->usable, guint, c), page_size);
    }
    for (guint seed = 0; seed < m; seed++) {
        guint64 cap = caps[seed], dist = 0;
        guint n = 1, last = seed;

        if (cap < granule) {
            continue;
        }
        memset(used, 0, m * sizeof(gboolean));
        memset(to_set, 0, m * sizeof(guint64));
        set[0] = g_array_index(p->usable, guint, seed);
        used[seed] = TRUE;
        while (cap < total && n < m) {
            gint pick = -1;
            guint last_id = g_array_index(p->usable, guint, last);

            for (guint c = 0; c < m; c++) {
                if (used[c] || caps[c] < granule) {
                    continue;
                }
                to_set[c] += qn_pair_distance(p, last_id, g_array_index(p->usable, guint, c));
                if (pick < 0 || to_set[c] < to_set[pick]) {
                    pick = (gint)c;
                }
            }
            if (pick < 0) {
                break;
            }
            used[pick] = TRUE;
            last = (guint)pick;
            set[n++] = g_array_index(p->usable, guint, pick);
            cap += caps[pick];
            dist += to_set[pick];
        }
        if (cap < total) {
            continue;
        }
        if (best_n == 0 || n < best_n || (n == best_n && dist < best_dist)) {
            best_n = n;
            best_dist = dist;
            memcpy(ret_set, set, n * sizeof(guint));
        }
    }
    return best_n;
}

/* When no even split fits, the nearest node set whose free capacity adds up to the guest still
 * beats the OS: guest nodes sized in proportion to each host node's free pages (whole pages),
 * vCPU slots in proportion to memory (whole cores). numad binds such a set too, but gives the
 * guest one flat node; here each guest node stays on its own host node. Writes @ret_set and
 * @ret_sizes (bytes) for *ret_n nodes. */
static gboolean
qn_uneven_split(const QnPlanner *p, guint64 total, guint64 page_size, guint *ret_n,
                guint *ret_set, guint64 *ret_sizes)
{
    guint64 granule = page_size ? page_size : QN_REGULAR_GRANULE;
    g_autofree guint *best = g_new0(guint, MAX(p->usable->len, 1));
    guint best_n;
    guint64 units = total / granule, given = 0, capsum = 0;

    if (total % granule != 0) {
        return FALSE;
    }
    best_n = qn_uneven_node_set(p, total, page_size, granule, best);
    if (best_n < 2) {
        return FALSE; /* one node would have been an even split */
    }
    for (guint i = 0; i < best_n; i++) {
        capsum += qn_capacity(p, best[i], page_size) / granule;
    }
    for (guint i = 0; i < best_n; i++) {
        guint64 c = qn_capacity(p, best[i], page_size) / granule;

        ret_sizes[i] = MIN(c, units * c / capsum);
        given += ret_sizes[i];
    }
    for (guint i = 0; i < best_n && given < units; i++) {
        guint64 room = qn_capacity(p, best[i], page_size) / granule - ret_sizes[i];
        guint64 add = MIN(room, units - given);

        ret_sizes[i] += add;
        given += add;
    }
    if (given != units) {
        return FALSE;
    }
    for (guint i = 0; i < best_n; i++) {
        ret_sizes[i] *= granule;
        ret_set[i] = best[i];
    }
    *ret_n = best_n;
    return TRUE;
}

/* vCPU slots in proportion to @sizes, in whole cores, each node at least one core while there
 * are cores to give. */
static void
qn_split_vcpus_weighted(const QnSmp *smp, guint n, const guint64 *sizes, QnBitmap **ret)
{
    guint threads = MAX(smp->threads, 1);
    guint cores = smp->maxcpus / threads, given = 0, next = 0;
    g_autofree guint *take = g_new0(guint, n);
    guint64 total = 0;

    for (guint i = 0; i < n; i++) {
        total += sizes[i];
    }
    for (guint i = 0; i < n; i++) {
        take[i] = (guint)((guint64)cores * sizes[i] / total);
        if (take[i] == 0 && given < cores) {
            take[i] = 1;
        }
        given += take[i];
    }
    for (guint i = 0; given < cores; i = (i + 1) % n) {
        take[i]++;
        given++;
    }
    for (guint i = n; given > cores && i > 0; i--) {
        while (take[i - 1] > 1 && given > cores) {
            take[i - 1]--;
            given--;
        }
    }
    for (guint i = 0; i < n; i++) {
        ret[i] = qn_bitmap_new();
        for (guint c = 0; c < take[i] * threads && next < smp->maxcpus; c++) {
            qn_bitmap_set(ret[i], next++);
        }
    }
}

/* The uneven split applies to an automatic topology in bind or preferred mode: an interleaved
 * guest node spreads over its nodes anyway, and a fixed or user shape is not ours to size. */
gboolean
qn_shape_uneven_allowed(const QnPlanner *p)
{
    return p->shape == NULL && p->kind == QN_GUEST_TOPOLOGY_AUTO && !p->single &&
           p->cfg->memory_mode != QN_MEMORY_MODE_INTERLEAVE;
}

/**
 * qn_shape_build_sized_plan:
 * The aligned plan of @n automatic guest nodes of @sizes bytes on @page_size pages, guest
 * node i on host node @set[i] with the vCPU slots @vcpus[i] (taken; the array is not), and
 * @reason as its note. Used by the uneven split and the locality stage.
 */
QnPlan *
qn_shape_build_sized_plan(const QnPlanner *p, guint n, const guint *set, const guint64 *sizes,
                          guint64 page_size, QnBitmap **vcpus, const char *reason)
{
    QnPlan *plan = qn_plan_new(p->cfg, QN_PLAN_ALIGNED);

    plan->guest_topology = p->kind;
    plan->reason = g_strdup(reason);
    for (guint i = 0; i < n; i++) {
        QnGuestNode *g = qn_guest_node_new(i, NULL, sizes[i], page_size, p->cfg->memory_mode);

        qn_bitmap_free(g->vcpus);
        g->vcpus = vcpus[i];
        qn_bitmap_set(g->host_nodes, set[i]);
        g_ptr_array_add(plan->guest_nodes, g);
    }
    return plan;
}

/* The uneven split on one hugepage size; %NULL when it does not fit. */
static QnPlan *
qn_uneven_plan(QnPlanner *p, guint64 ps)
{
    guint n = 0;
    g_autofree guint *set = g_new0(guint, MAX(p->usable->len, 1));
    g_autofree guint64 *sizes = g_new0(guint64, MAX(p->usable->len, 1));
    g_autofree QnBitmap **vcpus = NULL;
    g_autoptr(QnPlan) plan = NULL;
    g_autofree gchar *over = NULL;

    if (!qn_uneven_split(p, p->qa->ram_size, ps, &n, set, sizes)) {
        return NULL;
    }
    vcpus = g_new0(QnBitmap *, n);
    qn_split_vcpus_weighted(&p->qa->smp, n, sizes, vcpus);
    plan = qn_shape_build_sized_plan(p, n, set, sizes, ps, vcpus,
                                     "no even split fits: guest nodes sized to the nearest node "
                                     "set with room");
    over = qn_plan_check_resv(p, plan);
    if (over != NULL) {
        if (p->resv_why == NULL) {
            p->resv_why = g_steal_pointer(&over);
        }
        return NULL;
    }
    return g_steal_pointer(&plan);
}

/**
 * qn_shape_try_uneven:
 * The uneven split, hugepage sizes largest first (dedicated pCPUs are not counted here: the
 * CPU stage checks them on the plan). Returns: (transfer full) (nullable): the plan.
 */
QnPlan *
qn_shape_try_uneven(QnPlanner *p)
{
    guint need_pcpus = p->need_pcpus;
    QnPlan *plan = NULL;

    p->need_pcpus = 0;
    for (guint k = 0; k < p->page_sizes->len && plan == NULL; k++) {
        plan = qn_uneven_plan(p, g_array_index(p->page_sizes, guint64, k));
    }
    p->need_pcpus = need_pcpus;
    return plan;
}

/* The hugetlbfs mount of @page_size that holds a mem-path of the argv (a backend's, or
 * -mem-path), the deepest if nested; %NULL if none. Two mounts of one size are common under
 * libvirt (/dev/hugepages and its per-size /dev/hugepages2M, or a mount per domain): the one
 * libvirt's mem-path names is where QEMU would have put the guest, and where the launcher must
 * create its files. */
static const QnHugetlbfsMount *
qn_mount_named_by_argv(const QnPlanner *p, guint64 page_size)
{
    const QnHugetlbfsMount *best = NULL;

    for (guint i = 0; i <= p->qa->backends->len; i++) {
        const char *path = i < p->qa->backends->len
                               ? ((const QnMemoryBackend *)p->qa->backends->pdata[i])->mem_path
                               : p->qa->mem_path;

        for (guint k = 0; path != NULL && k < p->topo->mounts->len; k++) {
            const QnHugetlbfsMount *m = g_ptr_array_index(p->topo->mounts, k);

            if (m->page_size == page_size && qn_path_is_under(path, m->path) &&
                (best == NULL || strlen(m->path) > strlen(best->path))) {
                best = m;
            }
        }
        if (best != NULL) {
            return best;
        }
    }
    return NULL;
}

/**
 * qn_plan_stage_mount:
 * The hugetlbfs mount of p->plan's hugepage guest nodes: the configured one, which must be of
 * their page size (%QN_ERROR_HUGEPAGES otherwise), else the mount of that size a mem-path of
 * the argv names (qn_mount_named_by_argv()), else the host's first mount of that size.
 */
QnStageResult
qn_plan_stage_mount(QnPlanner *p, GError **error)
{
    QnPlan *plan = p->plan;
    const QnConfig *cfg = p->cfg;

    for (guint i = 0; i < plan->guest_nodes->len && plan->hugetlbfs == NULL; i++) {
        const QnGuestNode *g = g_ptr_array_index(plan->guest_nodes, i);
        const QnHugetlbfsMount *m = NULL;

        if (g->page_size == 0) {
            continue;
        }
        if (cfg->hugetlbfs[0] == '\0') {
            m = qn_mount_named_by_argv(p, g->page_size);
            m = m != NULL ? m : qn_topology_mount_for(p->topo, g->page_size);
        } else {
            for (guint k = 0; k < p->topo->mounts->len; k++) {
                const QnHugetlbfsMount *mm = g_ptr_array_index(p->topo->mounts, k);

                if (strcmp(mm->path, cfg->hugetlbfs) == 0) {
                    m = mm;
                }
            }
            if (m == NULL || m->page_size != g->page_size) {
                g_autofree gchar *s = qn_size_format(g->page_size);

                g_set_error(error, QN_ERROR, QN_ERROR_HUGEPAGES,
                            "hugetlbfs '%s': not a hugetlbfs mount of %s pages", cfg->hugetlbfs,
                            s);
                return QN_STAGE_ERROR;
            }
        }
        if (m != NULL) {
            plan->hugetlbfs = g_strdup(m->path);
        }
    }
    return QN_STAGE_OK;
}
