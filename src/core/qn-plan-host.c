/* What the host offers the planner: node and CPU indexes, free capacity per node, distances,
 * and the kernel's global hugepage accounting. Built once per qn_plan_compute(). */
#include "qn-planner.h"

#include <string.h>

/* Candidate host nodes: allowed by the cpuset, with memory, with CPUs unless allowed. */
static GArray *
qn_usable_nodes(const QnPlanner *p)
{
    GArray *ids = g_array_new(FALSE, FALSE, sizeof(guint));

    for (guint i = 0; i < p->topo->nodes->len; i++) {
        const QnHostNode *n = g_ptr_array_index(p->topo->nodes, i);
        gboolean has_cpu = FALSE;

        QN_BITMAP_FOREACH(n->cpus, c) {
            const QnHostCpu *hc = (guint)c < p->cpu_by_id->len ? p->cpu_by_id->pdata[c] : NULL;

            has_cpu |= hc != NULL && hc->allowed;
        }
        if (!n->allowed || n->mem_total == 0 || (!has_cpu && !p->cfg->allow_cpuless_nodes)) {
            continue;
        }
        g_array_append_val(ids, n->id);
    }
    return ids;
}

/* The SLIT and the nodes indexed by node id (ids may be sparse). */
static void
qn_planner_index_nodes(QnPlanner *p)
{
    const QnTopology *topo = p->topo;

    for (guint i = 0; i < topo->nodes->len; i++) {
        p->dim = MAX(p->dim, ((QnHostNode *)topo->nodes->pdata[i])->id + 1);
    }
    p->dist = g_new(guint, (gsize)p->dim * p->dim);
    p->node_by_id = g_new0(QnHostNode *, p->dim);
    for (guint i = 0; i < (guint)p->dim * p->dim; i++) {
        p->dist[i] = 255;
    }
    for (guint i = 0; i < topo->nodes->len; i++) {
        QnHostNode *a = topo->nodes->pdata[i];

        p->node_by_id[a->id] = a;
        for (guint j = 0; j < topo->nodes->len; j++) {
            QnHostNode *b = topo->nodes->pdata[j];

            p->dist[a->id * p->dim + b->id] = topo->distance[i * topo->nodes->len + j];
        }
    }
}

/* Host nodes of the argv's vfio-pci devices: the scoring prefers sets that hold them. */
static QnBitmap *
qn_pci_nodes(const QnTopology *topo, const QnQemuArgv *qa)
{
    QnBitmap *nodes = qn_bitmap_new();

    for (guint i = 0; i < qa->vfio_hosts->len; i++) {
        for (guint k = 0; k < topo->pci->len; k++) {
            const QnPciDevice *d = g_ptr_array_index(topo->pci, k);

            if (strcmp(d->address, g_ptr_array_index(qa->vfio_hosts, i)) == 0 && d->node >= 0) {
                qn_bitmap_set(nodes, (guint)d->node);
            }
        }
    }
    return nodes;
}

/* Bytes of @page_size memory (0: regular memory) still available on @node to a new guest:
 * free less what the ledger's launches under way hold there. */
static guint64
qn_capacity_compute(const QnPlanner *p, const QnHostNode *node, guint64 page_size)
{
    guint64 avail = 0, held = 0;

    if (page_size == 0) {
        avail = node->mem_free;
    } else {
        const QnHugepagePool *pool = qn_host_node_pool(node, page_size);

        avail = pool ? pool->free * page_size : 0;
    }
    for (guint i = 0; p->resv != NULL && i < p->resv->items->len; i++) {
        const QnNodeReservation *r = &g_array_index(p->resv->items, QnNodeReservation, i);

        if (r->node == node->id && r->page_size == page_size) {
            held += r->bytes;
        }
    }
    return avail > held ? avail - held : 0;
}

/* The capacity table: every node's capacity of every size, once per plan. The search asks
 * qn_capacity() of every candidate of every try (profiled on 64 nodes: the pool lookup and
 * the ledger walk were ~18% of a plan); nothing changes the host while a plan is computed. */
static void
qn_planner_index_capacity(QnPlanner *p)
{
    guint cols = p->topo->page_sizes->len + 1;

    p->caps = g_new0(guint64, (gsize)p->dim * cols);
    for (guint id = 0; id < p->dim; id++) {
        const QnHostNode *node = p->node_by_id[id];

        for (guint k = 0; node != NULL && k < cols; k++) {
            guint64 ps = k == 0 ? 0 : g_array_index(p->topo->page_sizes, guint64, k - 1);

            p->caps[id * cols + k] = qn_capacity_compute(p, node, ps);
        }
    }
}

void
qn_planner_init(QnPlanner *p, const QnTopology *topo, const QnReservations *resv,
                const QnQemuArgv *qa, const QnConfig *cfg)
{
    memset(p, 0, sizeof(*p));
    p->topo = topo;
    p->resv = resv;
    p->qa = qa;
    p->cfg = cfg;
    p->kind = QN_GUEST_TOPOLOGY_AUTO;
    p->slots = g_hash_table_new(g_direct_hash, g_direct_equal);
    p->cpu_by_id = g_ptr_array_new();
    for (guint i = 0; i < topo->cpus->len; i++) {
        QnHostCpu *hc = g_ptr_array_index(topo->cpus, i);

        if (hc->id >= p->cpu_by_id->len) {
            g_ptr_array_set_size(p->cpu_by_id, hc->id + 1);
        }
        p->cpu_by_id->pdata[hc->id] = hc;
    }
    qn_planner_index_nodes(p);
    qn_planner_index_capacity(p);
    p->taken = resv != NULL ? qn_bitmap_copy(resv->pinned_cpus) : qn_bitmap_new();
    p->usable = qn_usable_nodes(p);
    p->pci_nodes = qn_pci_nodes(topo, qa);
}

void
qn_planner_clear(QnPlanner *p)
{
    g_clear_pointer(&p->usable, g_array_unref);
    g_clear_pointer(&p->pci_nodes, qn_bitmap_free);
    g_clear_pointer(&p->cpu_by_id, g_ptr_array_unref);
    g_clear_pointer(&p->taken, qn_bitmap_free);
    g_clear_pointer(&p->slots, g_hash_table_unref);
    g_clear_pointer(&p->dist, g_free);
    g_clear_pointer(&p->node_by_id, g_free);
    g_clear_pointer(&p->caps, g_free);
    g_clear_pointer(&p->shape, g_ptr_array_unref);
    g_clear_pointer(&p->page_sizes, g_array_unref);
    g_clear_pointer(&p->counts, g_array_unref);
    g_clear_pointer(&p->why, g_free);
    g_clear_pointer(&p->resv_why, g_free);
    g_clear_pointer(&p->plan, qn_plan_free);
    g_clear_pointer(&p->no_fit, g_free);
}

/* Bytes of @page_size memory still available on @node to a new guest (the capacity table). */
guint64
qn_capacity(const QnPlanner *p, guint node_id, guint64 page_size)
{
    guint cols = p->topo->page_sizes->len + 1;
    const QnHostNode *node = node_id < p->dim ? p->node_by_id[node_id] : NULL;

    if (node == NULL) {
        return 0;
    }
    if (page_size == 0) {
        return p->caps[node_id * cols];
    }
    for (guint k = 1; k < cols; k++) {
        if (g_array_index(p->topo->page_sizes, guint64, k - 1) == page_size) {
            return p->caps[node_id * cols + k];
        }
    }
    return qn_capacity_compute(p, node, page_size); /* a size the kernel does not list */
}

/* Pages of @page_size a new guest may take on all nodes together. The kernel keeps
 * resv_hugepages (pages mappings reserved but have not faulted in) out of free_hugepages, and
 * counts both globally, not per node: a mapping whose reservation would need more than
 * free - resv is refused (mm/hugetlb.c, hugetlb_acquire_pages() via gather_surplus_pages()).
 * So the sum over nodes of free pages, less the pages other launches hold in the ledger, less
 * resv, caps the total a plan takes of that size; qn_capacity() still caps each node. */
static guint64
qn_global_pages(const QnPlanner *p, guint64 page_size, guint64 *ret_free, guint64 *ret_held)
{
    guint64 free = 0, held = 0, resv = qn_topology_resv_pages(p->topo, page_size);

    for (guint i = 0; i < p->topo->nodes->len; i++) {
        const QnHugepagePool *pool = qn_host_node_pool(p->topo->nodes->pdata[i], page_size);

        free += pool != NULL ? pool->free : 0;
    }
    for (guint i = 0; p->resv != NULL && i < p->resv->items->len; i++) {
        const QnNodeReservation *r = &g_array_index(p->resv->items, QnNodeReservation, i);

        if (r->page_size == page_size) {
            held += (r->bytes + page_size - 1) / page_size;
        }
    }
    *ret_free = free;
    *ret_held = held;
    return free > held + resv ? free - held - resv : 0;
}

/* NULL when @plan takes, of each hugepage size, at most qn_global_pages(); else why not, for
 * the reason of the refusal or fallback. Checked on each complete candidate plan, after the
 * per-node placement: a plan over it is dropped and the search goes on (smaller pages, other
 * node counts), as when a node lacks free pages. */
gchar *
qn_plan_check_resv(const QnPlanner *p, const QnPlan *plan)
{
    for (guint k = 0; k < p->topo->page_sizes->len; k++) {
        guint64 ps = g_array_index(p->topo->page_sizes, guint64, k);
        guint64 need = 0, free, held, usable;

        for (guint i = 0; i < plan->guest_nodes->len; i++) {
            const QnGuestNode *g = g_ptr_array_index(plan->guest_nodes, i);

            need += g->page_size == ps ? g->bytes / ps : 0;
        }
        if (need == 0 || need <= (usable = qn_global_pages(p, ps, &free, &held))) {
            continue;
        }
        {
            g_autofree gchar *size = qn_size_format(ps);
            g_autofree gchar *in_ledger = held > 0 ? g_strdup_printf(
                ", %" G_GUINT64_FORMAT " held by launches under way", held) : g_strdup("");

            return g_strdup_printf("%s pages: %" G_GUINT64_FORMAT " needed but %" G_GUINT64_FORMAT
                                   " usable on all nodes (%" G_GUINT64_FORMAT " free, %"
                                   G_GUINT64_FORMAT " of them reserved by mappings not yet "
                                   "faulted in: resv_hugepages%s)",
                                   size, need, usable, free, qn_topology_resv_pages(p->topo, ps),
                                   in_ledger);
        }
    }
    return NULL;
}
