#include "qn-plan.h"

#include <string.h>

#include "qn-error.h"
#include "qn-size.h"

/* Enumerate every node set when there are at most this many; else grow sets greedily. Every
 * real host seen (<= 36 nodes) choosing <= 4 stays exhaustive below ~60k; the 64-node case
 * switches to the greedy search, O(seeds * n * candidates). */
#define QN_EXHAUSTIVE_LIMIT 20000
#define QN_REGULAR_GRANULE (2 * QN_MiB)

QnReservations *
qn_reservations_new(void)
{
    QnReservations *r = g_new0(QnReservations, 1);

    r->items = g_array_new(FALSE, FALSE, sizeof(QnNodeReservation));
    r->pinned_cpus = qn_bitmap_new();
    return r;
}

void
qn_reservations_free(QnReservations *r)
{
    if (r == NULL) {
        return;
    }
    g_array_unref(r->items);
    qn_bitmap_free(r->pinned_cpus);
    g_free(r);
}

void
qn_reservations_add(QnReservations *r, guint node, guint64 page_size, guint64 bytes)
{
    QnNodeReservation item = { node, page_size, bytes };

    g_array_append_val(r->items, item);
}

void
qn_guest_node_free(QnGuestNode *g)
{
    if (g == NULL) {
        return;
    }

    qn_bitmap_free(g->vcpus);
    qn_bitmap_free(g->host_nodes);
    g_free(g->memdev);
    if (g->pcpus != NULL) {
        g_array_unref(g->pcpus);
    }
    g_free(g);
}

void
qn_plan_free(QnPlan *plan)
{
    if (plan == NULL) {
        return;
    }
    g_ptr_array_unref(plan->guest_nodes);
    g_free(plan->distance);
    g_free(plan->hugetlbfs);
    g_free(plan->reason);
    qn_bitmap_free(plan->emulator_pcpus);
    qn_bitmap_free(plan->held_pcpus);
    g_free(plan);
}

const char *
qn_plan_kind_to_string(QnPlanKind kind)
{
    static const char *const names[] = { "passthrough", "aligned", "fallback" };

    return names[kind];
}

const char *
qn_guest_topology_to_string(QnGuestTopology t)
{
    static const char *const names[] = { "auto", "fixed", "passthrough", "user",
                                         "machine-backend" };

    return names[t];
}

/* ---- the request: one entry per guest node, before host nodes are chosen ---- */

typedef struct {
    guint64 bytes;
    QnBitmap *vcpus;
    gint user_node;
    gchar *memdev;
    gint64 page_size;        /* -1: ours to choose; else fixed by the user's backend */
    QnBitmap *user_hosts;    /* host-nodes= of the user's backend, or NULL */
    gboolean has_user_mode;
    QnMemoryMode user_mode;
    guint id;
} QnShapeNode;

static void
qn_shape_node_free(gpointer p)
{
    QnShapeNode *s = p;

    qn_bitmap_free(s->vcpus);
    g_free(s->memdev);
    qn_bitmap_free(s->user_hosts);
    g_free(s);
}

typedef struct {
    const QnTopology *topo;
    const QnReservations *resv;
    const QnConfig *cfg;
    const QnQemuArgv *qa;
    GArray *usable;          /* guint node ids the planner may use */
    QnBitmap *pci_nodes;     /* nodes of the argv's vfio-pci devices */
    GPtrArray *cpu_by_id;    /* QnHostCpu* indexed by CPU id (NULL holes) */
    QnBitmap *taken;         /* pCPUs pinned by other VMs (ledger) */
    guint need_pcpus;        /* dedicated: vCPUs per guest node of the try under way, else 0 */
    GHashTable *slots;       /* node id -> pCPU slots free of `taken` (cache, dedicated only) */
    guint dim;               /* largest node id + 1 */
    guint *dist;             /* dim x dim SLIT by node id (255: no such node) */
    QnHostNode **node_by_id; /* dim entries, NULL holes */
} QnPlanner;

/* Bytes of @page_size memory still available on @node to a new guest. */
static guint64
qn_capacity(const QnPlanner *p, guint node_id, guint64 page_size)
{
    const QnHostNode *node = node_id < p->dim ? p->node_by_id[node_id] : NULL;
    guint64 avail = 0, held = 0;

    if (node == NULL) {
        return 0;
    }
    if (page_size == 0) {
        avail = node->mem_free;
    } else {
        const QnHugepagePool *pool = qn_host_node_pool(node, page_size);

        avail = pool ? pool->free * page_size : 0;
    }
    for (guint i = 0; p->resv != NULL && i < p->resv->items->len; i++) {
        const QnNodeReservation *r = &g_array_index(p->resv->items, QnNodeReservation, i);

        if (r->node == node_id && r->page_size == page_size) {
            held += r->bytes;
        }
    }
    return avail > held ? avail - held : 0;
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
static gchar *
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

static guint
qn_pair_distance(const QnPlanner *p, guint a, guint b)
{
    /* id-indexed: the planner asks millions of times on big hosts (profiled: the linear lookup
     * was 93% of a 64-node plan) */
    return a < p->dim && b < p->dim ? p->dist[a * p->dim + b] : 255;
}

typedef struct {
    guint pci_miss;
    guint64 dist_sum;
    gint64 pack;
} QnScore;

static gint
qn_score_cmp(const QnScore *a, const QnScore *b)
{
    if (a->pci_miss != b->pci_miss) {
        return a->pci_miss < b->pci_miss ? -1 : 1;
    }
    if (a->dist_sum != b->dist_sum) {
        return a->dist_sum < b->dist_sum ? -1 : 1;
    }
    if (a->pack != b->pack) {
        return a->pack < b->pack ? -1 : 1;
    }
    return 0;
}

static gint
qn_cmp_u64_desc(gconstpointer a, gconstpointer b)
{
    guint64 x = *(const guint64 *)a, y = *(const guint64 *)b;

    return x > y ? -1 : x < y;
}

/* Can distinct nodes @set (with capacities @caps) hold @sizes? Sorted matching is exact for
 * this threshold problem: the largest guest node needs the largest node, and so on. */
static gboolean
qn_set_feasible(const guint64 *sizes_desc, const guint64 *caps, guint n, gint64 *ret_leftover,
                guint64 *ret_min_leftover)
{
    g_autofree guint64 *c = g_memdup2(caps, n * sizeof(guint64));
    gint64 left = 0;
    guint64 min_left = G_MAXUINT64;

    qsort(c, n, sizeof(guint64), qn_cmp_u64_desc);
    for (guint i = 0; i < n; i++) {
        if (c[i] < sizes_desc[i]) {
            return FALSE;
        }
        left += (gint64)((c[i] - sizes_desc[i]) >> 20);
        min_left = MIN(min_left, c[i] - sizes_desc[i]);
    }
    *ret_leftover = left;
    *ret_min_leftover = min_left;
    return TRUE;
}

static void
qn_score_set(const QnPlanner *p, const guint *set, guint n, gint64 leftover_mib,
             QnScore *ret)
{
    ret->pci_miss = 0;
    QN_BITMAP_FOREACH(p->pci_nodes, pn) {
        gboolean in = FALSE;

        for (guint i = 0; i < n; i++) {
            in |= set[i] == (guint)pn;
        }
        ret->pci_miss += !in;
    }
    ret->dist_sum = 0;
    for (guint i = 0; i < n; i++) {
        for (guint j = i + 1; j < n; j++) {
            ret->dist_sum += qn_pair_distance(p, set[i], set[j]);
        }
    }
    ret->pack = p->cfg->packing == QN_PACKING_BEST_FIT ? leftover_mib : -leftover_mib;
}

/* ---- dedicated pCPUs (seed 004 dedicatedCpuPlacement; Nova cpu_thread_policy) ---- */

/* Free pCPUs of @node grouped by core: each entry a QnBitmap of the core's free threads, the
 * cores in ascending first-thread order. @busy are pCPUs not to hand out. A core counts as
 * whole when none of its threads is busy or disallowed. */
static GPtrArray *
qn_free_cores(const QnPlanner *p, guint node_id, const QnBitmap *busy, GArray **ret_whole)
{
    const QnHostNode *node = qn_topology_node(p->topo, node_id);
    GPtrArray *cores = g_ptr_array_new_with_free_func((GDestroyNotify)qn_bitmap_free);
    g_autoptr(QnBitmap) seen = qn_bitmap_new();

    *ret_whole = g_array_new(FALSE, FALSE, sizeof(gboolean));
    if (node == NULL) {
        return cores;
    }
    QN_BITMAP_FOREACH(node->cpus, c) {
        const QnHostCpu *hc = (guint)c < p->cpu_by_id->len ? p->cpu_by_id->pdata[c] : NULL;
        QnBitmap *core;
        gboolean whole = TRUE;

        if (hc == NULL || qn_bitmap_test(seen, (guint)c)) {
            continue;
        }
        core = qn_bitmap_new();
        QN_BITMAP_FOREACH(hc->siblings, t) {
            const QnHostCpu *ht = (guint)t < p->cpu_by_id->len ? p->cpu_by_id->pdata[t] : NULL;

            qn_bitmap_set(seen, (guint)t);
            if (ht != NULL && ht->allowed && !qn_bitmap_test(busy, (guint)t)) {
                qn_bitmap_set(core, (guint)t);
            } else {
                whole = FALSE;
            }
        }
        if (qn_bitmap_count(core) == 0) {
            qn_bitmap_free(core);
            continue;
        }
        g_ptr_array_add(cores, core);
        g_array_append_val(*ret_whole, whole);
    }
    return cores;
}

/* How many vCPUs the thread policy lets @node take. */
static guint
qn_pcpu_slots(const QnPlanner *p, guint node_id, const QnBitmap *busy)
{
    g_autoptr(GArray) whole = NULL;
    g_autoptr(GPtrArray) cores = qn_free_cores(p, node_id, busy, &whole);
    guint slots = 0;

    for (guint i = 0; i < cores->len; i++) {
        guint n = qn_bitmap_count(cores->pdata[i]);

        switch (p->cfg->cpu_thread_policy) {
        case QN_CPU_THREADS_ISOLATE: slots += g_array_index(whole, gboolean, i) ? 1 : 0; break;
        case QN_CPU_THREADS_REQUIRE: slots += n >= 2 ? n : 0; break;
        default: slots += n; break;
        }
    }
    return slots;
}

/* qn_pcpu_slots(node, taken), computed once per node and plan. */
static guint
qn_cached_slots(const QnPlanner *p, guint node_id)
{
    gpointer v;

    if (g_hash_table_lookup_extended(p->slots, GUINT_TO_POINTER(node_id), NULL, &v)) {
        return GPOINTER_TO_UINT(v);
    }
    {
        guint slots = qn_pcpu_slots(p, node_id, p->taken);

        g_hash_table_insert(p->slots, GUINT_TO_POINTER(node_id), GUINT_TO_POINTER(slots));
        return slots;
    }
}

static gint
qn_cmp_core_fill(gconstpointer a, gconstpointer b)
{
    guint na = qn_bitmap_count(*(QnBitmap *const *)a), nb = qn_bitmap_count(*(QnBitmap *const *)b);

    /* whole (fuller) cores first; then lower ids (g_ptr_array_sort is stable since 2.?:
     * compare first thread to be sure) */
    if (na != nb) {
        return na > nb ? -1 : 1;
    }
    return qn_bitmap_next(*(QnBitmap *const *)a, 0) - qn_bitmap_next(*(QnBitmap *const *)b, 0);
}

/* Pick @count pCPUs of @node for vCPUs, whole cores first. Adds what it picks, and under
 * `isolate` the idle siblings, to @busy. Returns FALSE when the node cannot. */
static gboolean
qn_pick_pcpus(const QnPlanner *p, guint node_id, guint count, QnBitmap *busy, GArray *out)
{
    g_autoptr(GArray) whole = NULL;
    g_autoptr(GPtrArray) cores = qn_free_cores(p, node_id, busy, &whole);
    guint got = 0;

    if (qn_pcpu_slots(p, node_id, busy) < count) {
        return FALSE;
    }
    if (p->cfg->cpu_thread_policy == QN_CPU_THREADS_ISOLATE) {
        for (guint i = 0; i < cores->len && got < count; i++) {
            gint first;

            if (!g_array_index(whole, gboolean, i)) {
                continue;
            }
            first = qn_bitmap_next(cores->pdata[i], 0);
            g_array_append_val(out, first);
            qn_bitmap_or(busy, cores->pdata[i]); /* the siblings stay idle */
            got++;
        }
        return got == count;
    }
    g_ptr_array_sort(cores, qn_cmp_core_fill);
    for (guint i = 0; i < cores->len && got < count; i++) {
        if (p->cfg->cpu_thread_policy == QN_CPU_THREADS_REQUIRE &&
            qn_bitmap_count(cores->pdata[i]) < 2) {
            continue;
        }
        QN_BITMAP_FOREACH((QnBitmap *)cores->pdata[i], t) {
            if (got < count) {
                guint id = (guint)t;

                g_array_append_val(out, id);
                qn_bitmap_set(busy, id);
                got++;
            }
        }
    }
    return got == count;
}

/* Give each guest node's present vCPUs pCPUs of its host node, and the emulator its pCPU(s). */
static gboolean
qn_plan_assign_pcpus(const QnPlanner *p, QnPlan *plan, gchar **ret_why)
{
    g_autoptr(QnBitmap) busy = qn_bitmap_copy(p->taken);
    g_autoptr(QnBitmap) mine = qn_bitmap_new();

    for (guint i = 0; i < plan->guest_nodes->len; i++) {
        QnGuestNode *g = g_ptr_array_index(plan->guest_nodes, i);
        guint count = 0;
        gint host = qn_bitmap_next(g->host_nodes, 0);

        QN_BITMAP_FOREACH(g->vcpus, v) {
            count += (guint)v < p->qa->smp.cpus;
        }
        if (count == 0) {
            continue;
        }
        if (host < 0 || !qn_pick_pcpus(p, (guint)host, count, busy, g->pcpus)) {
            *ret_why = g_strdup_printf("host node %d has fewer than %u free pCPUs for guest node "
                                       "%u (cpu-thread-policy %s)", host, count, g->id,
                                       qn_cpu_thread_policy_to_string(
                                           p->cfg->cpu_thread_policy));
            return FALSE;
        }
        for (guint k = 0; k < g->pcpus->len; k++) {
            qn_bitmap_set(mine, g_array_index(g->pcpus, guint, k));
        }
    }
    plan->emulator_pcpus = qn_bitmap_new();
    if (p->cfg->isolate_emulator) {
        gboolean found = FALSE;

        /* nearest first: the host node of guest node 0, then the others of the plan */
        for (guint i = 0; i < plan->guest_nodes->len && !found; i++) {
            QnGuestNode *g = g_ptr_array_index(plan->guest_nodes, i);
            g_autoptr(GArray) one = g_array_new(FALSE, FALSE, sizeof(guint));
            gint host = qn_bitmap_next(g->host_nodes, 0);
            QnPlanner tmp = *p;
            QnConfig cfg = *p->cfg;

            /* any free thread will do for the emulator */
            cfg.cpu_thread_policy = QN_CPU_THREADS_PREFER;
            tmp.cfg = &cfg;
            if (host >= 0 && qn_pick_pcpus(&tmp, (guint)host, 1, busy, one)) {
                qn_bitmap_set(plan->emulator_pcpus, g_array_index(one, guint, 0));
                found = TRUE;
            }
        }
        if (!found) {
            *ret_why = g_strdup("no free pCPU left for the isolated emulator threads");
            return FALSE;
        }
    } else {
        qn_bitmap_or(plan->emulator_pcpus, mine);
    }
    plan->held_pcpus = qn_bitmap_copy(busy);
    qn_bitmap_and_not(plan->held_pcpus, p->taken);
    plan->dedicated = TRUE;
    plan->thread_policy = p->cfg->cpu_thread_policy;
    return TRUE;
}

/**
 * Choose @n distinct host nodes for guest nodes of @sizes bytes (@page_size pages), among
 * @cands. Writes the chosen nodes, ascending, to @ret_set. Lowest score wins: PCI nodes
 * missed, then the sum (= n(n-1)/2 x mean) of pairwise distances, then packing.
 */
static gboolean
qn_choose_distinct(const QnPlanner *p, GArray *cands, const guint64 *sizes, guint n,
                   guint64 page_size, guint *ret_set)
{
    g_autofree guint64 *sizes_desc = g_memdup2(sizes, n * sizeof(guint64));
    g_autoptr(GArray) fit = g_array_new(FALSE, FALSE, sizeof(guint));
    g_autoptr(GArray) cap = g_array_new(FALSE, FALSE, sizeof(guint64));
    g_autofree guint *best = g_new0(guint, n);
    g_autofree guint *cur = g_new0(guint, n);
    g_autofree guint64 *caps = g_new0(guint64, n);
    QnScore best_score = { 0 };
    gboolean found = FALSE;
    gboolean equal;
    guint m;
    guint64 combos = 1;

    qsort(sizes_desc, n, sizeof(guint64), qn_cmp_u64_desc);
    equal = sizes_desc[0] == sizes_desc[n - 1];
    for (guint i = 0; i < cands->len; i++) {
        guint id = g_array_index(cands, guint, i);
        guint64 c = qn_capacity(p, id, page_size);

        if (p->need_pcpus > 0 && qn_cached_slots(p, id) < p->need_pcpus) {
            continue; /* dedicated vCPUs need the node's free pCPUs too */
        }
        if (c >= sizes_desc[n - 1]) {
            g_array_append_val(fit, id);
            g_array_append_val(cap, c);
        }
    }
    m = fit->len;
    if (m < n) {
        return FALSE;
    }
    for (guint i = 0; i < n && combos <= QN_EXHAUSTIVE_LIMIT; i++) {
        combos = combos * (m - i) / (i + 1);
    }
    if (combos <= QN_EXHAUSTIVE_LIMIT) {
        g_autofree guint *idx = g_new0(guint, n);

        for (guint i = 0; i < n; i++) {
            idx[i] = i;
        }
        for (;;) {
            gint64 left;
            guint64 min_left;

            gboolean feasible = TRUE;

            left = 0;
            for (guint i = 0; i < n; i++) {
                cur[i] = g_array_index(fit, guint, idx[i]);
                caps[i] = g_array_index(cap, guint64, idx[i]);
                left += (gint64)((caps[i] - sizes_desc[n - 1]) >> 20);
            }
            /* Equal sizes (every automatic split): each candidate already holds one, so every
             * set fits and no matching is needed. */
            if (!equal) {
                feasible = qn_set_feasible(sizes_desc, caps, n, &left, &min_left);
            }
            if (feasible) {
                QnScore s;

                qn_score_set(p, cur, n, left, &s);
                if (!found || qn_score_cmp(&s, &best_score) < 0) {
                    found = TRUE;
                    best_score = s;
                    memcpy(best, cur, n * sizeof(guint));
                }
            }
            /* next combination in lexicographic order */
            {
                gint i = (gint)n - 1;

                while (i >= 0 && idx[i] == m - n + (guint)i) {
                    i--;
                }
                if (i < 0) {
                    break;
                }
                idx[i]++;
                for (guint j = (guint)i + 1; j < n; j++) {
                    idx[j] = idx[j - 1] + 1;
                }
            }
        }
    } else {
        /* Greedy from every seed: add the node closest to the set so far (sum of distances),
         * ties by packing then id. Exact on hierarchical SLITs (socket > die > node). */
        g_autofree gboolean *used = g_new0(gboolean, m);

        for (guint seed = 0; seed < m; seed++) {
            gint64 left;
            guint64 min_left;

            memset(used, 0, m * sizeof(gboolean));
            used[seed] = TRUE;
            cur[0] = g_array_index(fit, guint, seed);
            caps[0] = g_array_index(cap, guint64, seed);
            for (guint k = 1; k < n; k++) {
                gint pick = -1;
                guint64 pick_d = 0, pick_c = 0;

                for (guint c = 0; c < m; c++) {
                    guint64 d = 0, cc = g_array_index(cap, guint64, c);

                    if (used[c] || cc < sizes_desc[k]) {
                        continue;
                    }
                    for (guint j = 0; j < k; j++) {
                        d += qn_pair_distance(p, cur[j], g_array_index(fit, guint, c));
                    }
                    if (pick < 0 || d < pick_d ||
                        (d == pick_d && (p->cfg->packing == QN_PACKING_BEST_FIT ? cc < pick_c
                                                                                : cc > pick_c))) {
                        pick = (gint)c;
                        pick_d = d;
                        pick_c = cc;
                    }
                }
                if (pick < 0) {
                    break;
                }
                used[pick] = TRUE;
                cur[k] = g_array_index(fit, guint, pick);
                caps[k] = pick_c;
                if (k == n - 1) {
                    if (qn_set_feasible(sizes_desc, caps, n, &left, &min_left)) {
                        QnScore s;

                        qn_score_set(p, cur, n, left, &s);
                        if (!found || qn_score_cmp(&s, &best_score) < 0) {
                            found = TRUE;
                            best_score = s;
                            memcpy(best, cur, n * sizeof(guint));
                        }
                    }
                }
            }
            if (n == 1 && qn_set_feasible(sizes_desc, caps, 1, &left, &min_left)) {
                QnScore s;

                qn_score_set(p, cur, 1, left, &s);
                if (!found || qn_score_cmp(&s, &best_score) < 0) {
                    found = TRUE;
                    best_score = s;
                    best[0] = cur[0];
                }
            }
        }
    }
    if (!found) {
        return FALSE;
    }
    for (guint i = 0; i < n; i++) {
        for (guint j = i + 1; j < n; j++) {
            if (best[j] < best[i]) {
                guint t = best[i];

                best[i] = best[j];
                best[j] = t;
            }
        }
    }
    memcpy(ret_set, best, n * sizeof(guint));
    return TRUE;
}

/* Indexes 0..n-1 of @sizes, largest size first (stable: equal sizes keep their order). */
static guint *
qn_order_by_size_desc(const guint64 *sizes, guint n)
{
    guint *order = g_new0(guint, n);

    for (guint i = 0; i < n; i++) {
        order[i] = i;
    }
    for (guint i = 0; i < n; i++) {
        for (guint j = i + 1; j < n; j++) {
            if (sizes[order[j]] > sizes[order[i]]) {
                guint t = order[i];

                order[i] = order[j];
                order[j] = t;
            }
        }
    }
    return order;
}

/* Map guest nodes to the chosen distinct set: in order (guest 0 on the lowest host id) when
 * that fits, else by sorted matching. */
static void
qn_assign_set(const QnPlanner *p, const guint *set, const guint64 *sizes, guint n,
              guint64 page_size, guint *ret_assign)
{
    gboolean in_order = TRUE;

    for (guint i = 0; i < n; i++) {
        in_order &= qn_capacity(p, set[i], page_size) >= sizes[i];
    }
    if (in_order) {
        memcpy(ret_assign, set, n * sizeof(guint));
        return;
    }
    {
        g_autofree gboolean *taken = g_new0(gboolean, n);
        /* guest nodes by size, largest first; each takes the largest free host node */
        g_autofree guint *order = qn_order_by_size_desc(sizes, n);

        for (guint i = 0; i < n; i++) {
            gint bestj = -1;

            for (guint j = 0; j < n; j++) {
                if (!taken[j] && (bestj < 0 || qn_capacity(p, set[j], page_size) >
                                                   qn_capacity(p, set[bestj], page_size))) {
                    bestj = (gint)j;
                }
            }
            taken[bestj] = TRUE;
            ret_assign[order[i]] = set[bestj];
        }
    }
}

/* Guest nodes may share host nodes (a fixed count larger than the usable nodes, or
 * single-numa-node): first-fit decreasing, preferring nodes close to those already used. */
static gboolean
qn_choose_shared(const QnPlanner *p, GArray *cands, const guint64 *sizes, guint n,
                 guint64 page_size, guint *ret_assign)
{
    g_autofree guint64 *rem = g_new0(guint64, cands->len);
    g_autofree guint *order = qn_order_by_size_desc(sizes, n);
    g_autofree gboolean *used = g_new0(gboolean, cands->len);

    for (guint c = 0; c < cands->len; c++) {
        rem[c] = qn_capacity(p, g_array_index(cands, guint, c), page_size);
    }
    for (guint k = 0; k < n; k++) {
        guint g = order[k];
        gint pick = -1;
        guint64 pick_d = 0;

        for (guint c = 0; c < cands->len; c++) {
            guint64 d = 0;

            if (rem[c] < sizes[g]) {
                continue;
            }
            for (guint u = 0; u < cands->len; u++) {
                if (used[u] && u != c) {
                    d += qn_pair_distance(p, g_array_index(cands, guint, u),
                                          g_array_index(cands, guint, c));
                }
            }
            if (pick < 0 || d < pick_d ||
                (d == pick_d && (p->cfg->packing == QN_PACKING_BEST_FIT ? rem[c] < rem[pick]
                                                                        : rem[c] > rem[pick]))) {
                pick = (gint)c;
                pick_d = d;
            }
        }
        if (pick < 0) {
            return FALSE;
        }
        rem[pick] -= sizes[g];
        used[pick] = TRUE;
        ret_assign[g] = g_array_index(cands, guint, pick);
    }
    return TRUE;
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
        JsonNode *h = json_object_get_member(b->props, "hugetlb");
        gboolean huge = FALSE;

        if (h != NULL && JSON_NODE_HOLDS_VALUE(h)) {
            huge = json_node_get_value_type(h) == G_TYPE_BOOLEAN
                       ? json_node_get_boolean(h)
                       : g_strcmp0(json_node_get_string(h), "on") == 0 ||
                             g_strcmp0(json_node_get_string(h), "true") == 0;
        }
        if (huge) {
            JsonNode *s = json_object_get_member(b->props, "hugetlbsize");
            guint64 size = 0;

            if (s != NULL && JSON_NODE_HOLDS_VALUE(s)) {
                if (json_node_get_value_type(s) == G_TYPE_INT64) {
                    size = (guint64)json_node_get_int(s);
                } else {
                    qn_size_parse(json_node_get_string(s), 1, &size, NULL);
                }
            }
            return size ? size : p->topo->default_page_size;
        }
    }
    return 0;
}

/* The guest's nodes as the argv defines them (user -numa lines or a machine backend). */
static GPtrArray *
qn_shape_from_argv(const QnPlanner *p, QnGuestTopology *ret_kind, GError **error)
{
    const QnQemuArgv *qa = p->qa;
    g_autoptr(GPtrArray) shape = g_ptr_array_new_with_free_func(qn_shape_node_free);
    guint64 sum = 0;
    gboolean any_mem = FALSE;

    if (qa->numa_nodes->len > 0) {
        *ret_kind = QN_GUEST_TOPOLOGY_USER;
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
                s->bytes = b->size;
                s->memdev = g_strdup(b->id);
                s->page_size = (gint64)qn_page_size_of_backend(p, b);
                if (b->host_nodes != NULL && qn_bitmap_count(b->host_nodes) > 0) {
                    s->user_hosts = qn_bitmap_copy(b->host_nodes);
                }
                s->has_user_mode = qn_memory_mode_from_qemu(b->policy, &s->user_mode);
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
    if (qa->machine_memory_backend != NULL) {
        const QnMemoryBackend *b = qn_qemu_argv_find_backend(qa, qa->machine_memory_backend);
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
                        "-machine memory-backend '%s': size %s does not equal -m (%s)", b->id, a,
                        c);
            return NULL;
        }
        *ret_kind = QN_GUEST_TOPOLOGY_MACHINE_BACKEND;
        s = g_new0(QnShapeNode, 1);
        s->user_node = -1;
        s->bytes = b->size;
        s->memdev = g_strdup(b->id);
        s->page_size = (gint64)qn_page_size_of_backend(p, b);
        s->vcpus = qn_bitmap_new();
        for (guint c = 0; c < qa->smp.maxcpus; c++) {
            qn_bitmap_set(s->vcpus, c);
        }
        if (b->host_nodes != NULL && qn_bitmap_count(b->host_nodes) > 0) {
            s->user_hosts = qn_bitmap_copy(b->host_nodes);
        }
        s->has_user_mode = qn_memory_mode_from_qemu(b->policy, &s->user_mode);
        g_ptr_array_add(shape, s);
        return g_steal_pointer(&shape);
    }
    return NULL; /* no topology in the argv: ours to choose */
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
    GArray *sizes = g_array_new(FALSE, FALSE, sizeof(guint64));
    guint64 want = p->cfg->hugepage_size;

    if (want == QN_HUGEPAGE_SIZE_NONE) {
        return sizes;
    }
    if (want != QN_HUGEPAGE_SIZE_AUTO) {
        gboolean known = FALSE;

        for (guint i = 0; i < p->topo->page_sizes->len; i++) {
            known |= g_array_index(p->topo->page_sizes, guint64, i) == want;
        }
        if (!known) {
            g_autofree gchar *s = qn_size_format(want);

            g_set_error(error, QN_ERROR, QN_ERROR_HUGEPAGES,
                        "hugepage size '%s': this host has no hugepages of that size", s);
            g_array_unref(sizes);
            return NULL;
        }
        if (!qn_topology_mount_for(p->topo, want)) {
            g_autofree gchar *s = qn_size_format(want);

            g_set_error(error, QN_ERROR, QN_ERROR_HUGEPAGES,
                        "hugepage size '%s': no hugetlbfs mount of that page size", s);
            g_array_unref(sizes);
            return NULL;
        }
        g_array_append_val(sizes, want);
        return sizes;
    }
    for (guint i = p->topo->page_sizes->len; i > 0; i--) {
        guint64 ps = g_array_index(p->topo->page_sizes, guint64, i - 1);

        if (qn_topology_mount_for(p->topo, ps) != NULL) {
            g_array_append_val(sizes, ps);
        }
    }
    return sizes;
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
    return g;
}

/* ---- uneven split: the last aligned try before the OS ---- */

/* When no even split fits, the nearest node set whose free capacity adds up to the guest still
 * beats the OS: guest nodes sized in proportion to each host node's free pages (whole pages),
 * vCPU slots in proportion to memory (whole cores). numad binds such a set too, but gives the
 * guest one flat node; here each guest node stays on its own host node. Writes @ret_set and
 * @ret_sizes (bytes) for *ret_n nodes. */
static gboolean
qn_uneven_split(const QnPlanner *p, guint64 total, guint64 page_size, guint *ret_n,
                guint *ret_set, guint64 *ret_sizes)
{
    guint m = p->usable->len;
    guint best_n = 0;
    guint64 best_dist = 0;
    g_autofree guint *set = g_new0(guint, m);
    g_autofree guint *best = g_new0(guint, m);
    g_autofree gboolean *used = g_new0(gboolean, m);
    guint64 granule = page_size ? page_size : QN_REGULAR_GRANULE;

    if (total % granule != 0) {
        return FALSE;
    }
    for (guint seed = 0; seed < m; seed++) {
        guint64 cap, dist = 0;
        guint n = 1;

        memset(used, 0, m * sizeof(gboolean));
        set[0] = g_array_index(p->usable, guint, seed);
        used[seed] = TRUE;
        cap = qn_capacity(p, set[0], page_size);
        if (cap < granule) {
            continue;
        }
        while (cap < total && n < m) {
            gint pick = -1;
            guint64 pick_d = 0;

            for (guint c = 0; c < m; c++) {
                guint id = g_array_index(p->usable, guint, c);
                guint64 d = 0;

                if (used[c] || qn_capacity(p, id, page_size) < granule) {
                    continue;
                }
                for (guint j = 0; j < n; j++) {
                    d += qn_pair_distance(p, set[j], id);
                }
                if (pick < 0 || d < pick_d) {
                    pick = (gint)c;
                    pick_d = d;
                }
            }
            if (pick < 0) {
                break;
            }
            used[pick] = TRUE;
            set[n++] = g_array_index(p->usable, guint, pick);
            cap += qn_capacity(p, set[n - 1], page_size);
            dist += pick_d;
        }
        if (cap < total) {
            continue;
        }
        if (best_n == 0 || n < best_n || (n == best_n && dist < best_dist)) {
            best_n = n;
            best_dist = dist;
            memcpy(best, set, n * sizeof(guint));
        }
    }
    if (best_n < 2) {
        return FALSE; /* one node would have been an even split */
    }
    {
        guint64 units = total / granule, given = 0, capsum = 0;

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

static QnPlan *
qn_plan_new(const QnConfig *cfg, QnPlanKind kind);

static void
qn_plan_fill_distances(const QnPlanner *p, QnPlan *plan);

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

/* Try to place guest nodes of @sizes on one page size. Writes one nodeset per guest node. */
static gboolean
qn_try_place(const QnPlanner *p, const guint64 *sizes, guint n, guint64 page_size,
             QnMemoryMode mode, gboolean allow_share, gboolean single_node, QnBitmap **ret_hosts)
{
    g_autofree guint *assign = g_new0(guint, n);
    guint64 total = 0;

    for (guint i = 0; i < n; i++) {
        if (page_size != 0 && sizes[i] % page_size != 0) {
            return FALSE;
        }
        total += sizes[i];
    }
    if (single_node) {
        guint host;

        if (!qn_choose_distinct(p, p->usable, &total, 1, page_size, &host)) {
            return FALSE;
        }
        for (guint i = 0; i < n; i++) {
            qn_bitmap_set(ret_hosts[i], host);
        }
        return TRUE;
    }
    if (mode == QN_MEMORY_MODE_INTERLEAVE) {
        /* Interleave each guest node over the K nearest nodes that hold an even share:
         * K = 1 if one node holds it all (interleave over one node is bind), else 2, 4 ... */
        guint64 granule = page_size ? page_size : 4096;
        guint64 pages = (total + granule - 1) / granule;

        for (guint k = 1; k <= p->usable->len; k = k < 2 ? 2 : k * 2) {
            g_autofree guint *set = g_new0(guint, k);
            g_autofree guint64 *share = g_new0(guint64, k);

            for (guint i = 0; i < k; i++) {
                share[i] = ((pages + k - 1) / k) * granule;
            }
            if (qn_choose_distinct(p, p->usable, share, k, page_size, set)) {
                for (guint i = 0; i < n; i++) {
                    for (guint j = 0; j < k; j++) {
                        qn_bitmap_set(ret_hosts[i], set[j]);
                    }
                }
                return TRUE;
            }
        }
        return FALSE;
    }
    {
        g_autofree guint *set = g_new0(guint, n);

        if (qn_choose_distinct(p, p->usable, sizes, n, page_size, set)) {
            qn_assign_set(p, set, sizes, n, page_size, assign);
        } else if (!allow_share || !qn_choose_shared(p, p->usable, sizes, n, page_size, assign)) {
            return FALSE;
        }
    }
    for (guint i = 0; i < n; i++) {
        qn_bitmap_set(ret_hosts[i], assign[i]);
    }
    return TRUE;
}

static void
qn_plan_fill_distances(const QnPlanner *p, QnPlan *plan)
{
    guint n = plan->guest_nodes->len;
    guint pairs = 0;
    guint64 sum = 0;
    g_autoptr(QnBitmap) all = qn_bitmap_new();

    for (guint i = 0; i < n; i++) {
        qn_bitmap_or(all, ((QnGuestNode *)g_ptr_array_index(plan->guest_nodes, i))->host_nodes);
    }
    QN_BITMAP_FOREACH(all, a) {
        QN_BITMAP_FOREACH(all, b) {
            if (a < b) {
                sum += qn_pair_distance(p, (guint)a, (guint)b);
                pairs++;
            }
        }
    }
    plan->mean_distance = pairs ? (gdouble)sum / pairs : 0.0;
    if (n < 2 || p->qa->numa_dists->len > 0) {
        return; /* one node has no distances; the user's own -numa dist lines stay */
    }
    plan->distance = g_new0(guint, n * n);
    for (guint i = 0; i < n; i++) {
        const QnGuestNode *gi = g_ptr_array_index(plan->guest_nodes, i);

        for (guint j = 0; j < n; j++) {
            const QnGuestNode *gj = g_ptr_array_index(plan->guest_nodes, j);
            guint d;

            if (i == j) {
                d = 10;
            } else {
                /* Mirror the host SLIT (KubeVirt copies it too). Interleaved nodesets: the
                 * largest distance between them. Two guest nodes on one host node get 11:
                 * Linux rejects a SLIT whose off-diagonal entries are <= 10
                 * (drivers/acpi/numa/srat.c slit_valid). */
                d = 0;
                QN_BITMAP_FOREACH(gi->host_nodes, a) {
                    QN_BITMAP_FOREACH(gj->host_nodes, b) {
                        d = MAX(d, a == b ? 11 : qn_pair_distance(p, (guint)a, (guint)b));
                    }
                }
                d = MAX(d, 11);
            }
            plan->distance[i * n + j] = d;
        }
    }
}

static QnPlan *
qn_plan_new(const QnConfig *cfg, QnPlanKind kind)
{
    QnPlan *plan = g_new0(QnPlan, 1);

    plan->kind = kind;
    plan->policy = cfg->policy;
    plan->mode = cfg->memory_mode;
    plan->guest_nodes = g_ptr_array_new_with_free_func((GDestroyNotify)qn_guest_node_free);
    return plan;
}

static gchar *
qn_describe_need(const QnPlanner *p, const guint64 *sizes, guint n)
{
    g_autofree gchar *total = NULL;
    guint64 t = 0;
    GString *s = g_string_new(NULL);

    for (guint i = 0; i < n; i++) {
        t += sizes[i];
    }
    total = qn_size_format(t);
    g_string_append_printf(s, "%s", total);
    g_string_append(s, "; free per host node:");
    for (guint i = 0; i < p->usable->len; i++) {
        guint id = g_array_index(p->usable, guint, i);
        g_autoptr(GString) per = g_string_new(NULL);

        for (guint k = p->topo->page_sizes->len; k > 0; k--) {
            guint64 ps = g_array_index(p->topo->page_sizes, guint64, k - 1);
            g_autofree gchar *a = qn_size_format(qn_capacity(p, id, ps));
            g_autofree gchar *b = qn_size_format(ps);

            g_string_append_printf(per, "%s%s of %s pages", per->len ? ", " : "", a, b);
        }
        if (p->need_pcpus > 0) {
            g_string_append_printf(per, "%s%u pCPUs free for dedicated vCPUs", per->len ? ", " : "",
                                   qn_cached_slots(p, id));
        }
        g_string_append_printf(s, " %u (%s)", id, per->len ? per->str : "no hugepages");
    }
    if (p->need_pcpus > 0) {
        g_string_append_printf(s, "; %u dedicated vCPUs per guest node (cpu-thread-policy %s)",
                               p->need_pcpus,
                               qn_cpu_thread_policy_to_string(p->cfg->cpu_thread_policy));
    }
    if (p->usable->len == 0) {
        g_string_append(s, " none usable");
    }
    return g_string_free(s, FALSE);
}

/* The uneven-split try, for an automatic topology in bind or preferred mode: hugepage sizes
 * largest first. Returns the plan, or %NULL. */
static QnPlan *
qn_try_uneven(QnPlanner *pp, const QnQemuArgv *qa, const QnConfig *cfg, QnGuestTopology kind,
              GArray *page_sizes, GArray *usable, gchar **resv_why)
{
    QnPlan *plan = NULL;
    QnPlanner p = *pp;

    for (guint k = 0; k < page_sizes->len && plan == NULL; k++) {
        guint64 ps = g_array_index(page_sizes, guint64, k);
        guint n = 0;
        g_autofree guint *set = g_new0(guint, MAX(usable->len, 1));
        g_autofree guint64 *sizes = g_new0(guint64, MAX(usable->len, 1));

        p.need_pcpus = 0;
        if (!qn_uneven_split(&p, qa->ram_size, ps, &n, set, sizes)) {
            continue;
        }
        plan = qn_plan_new(cfg, QN_PLAN_ALIGNED);
        plan->guest_topology = kind;
        plan->reason = g_strdup("no even split fits: guest nodes sized to the nearest node set "
                                "with room");
        {
            g_autofree QnBitmap **vcpus = g_new0(QnBitmap *, n);

            qn_split_vcpus_weighted(&qa->smp, n, sizes, vcpus);
            for (guint i = 0; i < n; i++) {
                QnGuestNode *g = qn_guest_node_new(i, NULL, sizes[i], ps, cfg->memory_mode);

                qn_bitmap_free(g->vcpus);
                g->vcpus = vcpus[i];
                qn_bitmap_set(g->host_nodes, set[i]);
                g_ptr_array_add(plan->guest_nodes, g);
            }
        }
        {
            g_autofree gchar *over = qn_plan_check_resv(&p, plan);

            if (over != NULL) {
                g_clear_pointer(&plan, qn_plan_free);
                if (*resv_why == NULL) {
                    *resv_why = g_steal_pointer(&over);
                }
            }
        }
    }
    return plan;
}

QnPlan *
qn_plan_compute(const QnTopology *topo, const QnReservations *resv, const QnQemuArgv *qa,
                const QnConfig *cfg, GError **error)
{
    g_autoptr(GHashTable) slots = g_hash_table_new(g_direct_hash, g_direct_equal);
    QnPlanner p = { topo, resv, cfg, qa, NULL, NULL, NULL, NULL, 0, slots, 0, NULL, NULL };
    g_autofree guint *dist = NULL;
    g_autofree QnHostNode **node_by_id = NULL;
    g_autoptr(GPtrArray) cpu_by_id = g_ptr_array_new();
    g_autoptr(QnBitmap) taken = NULL;
    g_autoptr(GArray) usable = NULL;
    g_autoptr(QnBitmap) pci_nodes = qn_bitmap_new();
    g_autoptr(GPtrArray) shape = NULL;
    g_autoptr(GArray) page_sizes = NULL;
    g_autoptr(QnPlan) plan = NULL;
    QnGuestTopology kind = QN_GUEST_TOPOLOGY_AUTO;
    guint64 host_total = 0;
    gboolean fixed_shape;
    gboolean single = cfg->policy == QN_POLICY_SINGLE_NUMA_NODE;
    g_autofree gchar *why = NULL;
    g_autofree gchar *resv_why = NULL; /* the first plan qn_plan_check_resv() dropped */
    guint tried_max = 0;

    if (cfg->policy == QN_POLICY_NONE || qa->probe) {
        plan = qn_plan_new(cfg, QN_PLAN_PASSTHROUGH);
        plan->reason = g_strdup(qa->probe ? qa->probe_reason : "policy none");
        return g_steal_pointer(&plan);
    }
    for (guint i = 0; i < topo->cpus->len; i++) {
        QnHostCpu *hc = g_ptr_array_index(topo->cpus, i);

        if (hc->id >= cpu_by_id->len) {
            g_ptr_array_set_size(cpu_by_id, hc->id + 1);
        }
        cpu_by_id->pdata[hc->id] = hc;
    }
    p.cpu_by_id = cpu_by_id;
    for (guint i = 0; i < topo->nodes->len; i++) {
        p.dim = MAX(p.dim, ((QnHostNode *)topo->nodes->pdata[i])->id + 1);
    }
    dist = g_new(guint, (gsize)p.dim * p.dim);
    node_by_id = g_new0(QnHostNode *, p.dim);
    for (guint i = 0; i < (guint)p.dim * p.dim; i++) {
        dist[i] = 255;
    }
    for (guint i = 0; i < topo->nodes->len; i++) {
        QnHostNode *a = topo->nodes->pdata[i];

        node_by_id[a->id] = a;
        for (guint j = 0; j < topo->nodes->len; j++) {
            QnHostNode *b = topo->nodes->pdata[j];

            dist[a->id * p.dim + b->id] = topo->distance[i * topo->nodes->len + j];
        }
    }
    p.dist = dist;
    p.node_by_id = node_by_id;
    taken = resv != NULL ? qn_bitmap_copy(resv->pinned_cpus) : qn_bitmap_new();
    p.taken = taken;
    usable = qn_usable_nodes(&p);
    p.usable = usable;
    for (guint i = 0; i < qa->vfio_hosts->len; i++) {
        for (guint k = 0; k < topo->pci->len; k++) {
            const QnPciDevice *d = g_ptr_array_index(topo->pci, k);

            if (strcmp(d->address, g_ptr_array_index(qa->vfio_hosts, i)) == 0 && d->node >= 0) {
                qn_bitmap_set(pci_nodes, (guint)d->node);
            }
        }
    }
    p.pci_nodes = pci_nodes;

    for (guint i = 0; i < usable->len; i++) {
        host_total += qn_topology_node(topo, g_array_index(usable, guint, i))->mem_total;
    }
    if (qa->ram_size > host_total) {
        g_autofree gchar *a = qn_size_format_human(qa->ram_size);
        g_autofree gchar *b = qn_size_format_human(host_total);

        g_set_error(error, QN_ERROR, QN_ERROR_NO_FIT,
                    "-m %s: guest memory exceeds the %s of memory on the host nodes this "
                    "process may use", a, b);
        return NULL;
    }

    shape = qn_shape_from_argv(&p, &kind, error);
    if (shape == NULL && error != NULL && *error != NULL) {
        return NULL;
    }
    page_sizes = qn_page_sizes(&p, error);
    if (page_sizes == NULL) {
        return NULL;
    }
    fixed_shape = shape != NULL || cfg->guest_nodes_mode == QN_GUEST_NODES_FIXED;
    if (shape == NULL && cfg->guest_nodes_mode == QN_GUEST_NODES_FIXED) {
        kind = QN_GUEST_TOPOLOGY_FIXED;
    } else if (shape == NULL && cfg->guest_nodes_mode == QN_GUEST_NODES_PASSTHROUGH) {
        kind = QN_GUEST_TOPOLOGY_PASSTHROUGH;
    }

    /* Node counts to try: the argv's or the configured one, else 1, 2, 4 ... then the other
     * counts (a 6-node host may need 3: better aligned on 3 than left to the OS). */
    {
        g_autoptr(GArray) counts = g_array_new(FALSE, FALSE, sizeof(guint));
        guint maxn = MAX(usable->len, 1);
        gboolean user_sizes = qn_shape_has_memory(shape);
        gboolean user_hosts = qn_shape_has_user_hosts(shape);
        gboolean fixed_tried = FALSE;

        if (shape != NULL) {
            guint c = shape->len;

            g_array_append_val(counts, c);
        } else if (kind == QN_GUEST_TOPOLOGY_FIXED) {
            g_array_append_val(counts, cfg->guest_nodes);
        } else if (single) {
            guint one = 1;

            g_array_append_val(counts, one);
        } else {
            for (guint c = 1; c <= maxn; c *= 2) {
                g_array_append_val(counts, c);
            }
            for (guint c = 3; c <= maxn; c++) {
                if ((c & (c - 1)) != 0) {
                    g_array_append_val(counts, c);
                }
            }
        }

        /* Hugepage sizes first (largest first, fewest nodes first), then regular memory
         * (page size 0) when no hugepage plan exists and the policy allows it. */
        for (guint pass = 0; pass < 2 && plan == NULL; pass++) {
            if (pass == 1 && shape == NULL && kind == QN_GUEST_TOPOLOGY_AUTO && !single &&
                cfg->memory_mode != QN_MEMORY_MODE_INTERLEAVE) {
                /* No even hugepage split anywhere: hugepages on the nearest node set that
                 * holds them, unevenly, before regular memory or the OS. */
                plan = qn_try_uneven(&p, qa, cfg, kind, page_sizes, usable, &resv_why);
                if (plan != NULL) {
                    break;
                }
            }
            for (guint ci = 0; ci < counts->len && plan == NULL; ci++) {
                guint n = g_array_index(counts, guint, ci);
                g_autofree guint64 *sizes = g_new0(guint64, n);

                if (cfg->dedicated_cpus) {
                    p.need_pcpus = single ? qa->smp.cpus : (qa->smp.cpus + n - 1) / n;
                    for (guint i = 0; shape != NULL && i < shape->len; i++) {
                        guint present = 0;

                        QN_BITMAP_FOREACH(((QnShapeNode *)shape->pdata[i])->vcpus, v) {
                            present += (guint)v < qa->smp.cpus;
                        }
                        p.need_pcpus = i == 0 ? present : MAX(p.need_pcpus, present);
                    }
                }
                g_autoptr(GPtrArray) hosts = g_ptr_array_new_with_free_func(
                    (GDestroyNotify)qn_bitmap_free);
                guint nps = pass == 0 ? page_sizes->len : 1;

                for (guint k = 0; k < nps && plan == NULL; k++) {
                    guint64 ps = pass == 0 ? g_array_index(page_sizes, guint64, k) : 0;
                    gboolean ok;
                    gboolean user_fixed_ps = FALSE;

                    if (pass == 1 && cfg->hugepage_size != QN_HUGEPAGE_SIZE_AUTO &&
                        cfg->hugepage_size != QN_HUGEPAGE_SIZE_NONE &&
                        cfg->policy != QN_POLICY_BEST_EFFORT) {
                        break;
                    }
                    if (user_sizes) {
                        for (guint i = 0; i < n; i++) {
                            const QnShapeNode *s = g_ptr_array_index(shape, i);

                            sizes[i] = s->bytes;
                            if (s->bytes > 0 && s->page_size >= 0) {
                                user_fixed_ps = TRUE;
                            }
                        }
                    } else if (!qn_split_bytes(qa->ram_size, n,
                                               ps ? ps : (qa->ram_size % QN_REGULAR_GRANULE
                                                              ? 4096 : QN_REGULAR_GRANULE),
                                               sizes)) {
                        continue;
                    }
                    if (user_fixed_ps && fixed_tried) {
                        break; /* the user's backends fix their page sizes: one try */
                    }
                    /* That try is the first one made, whichever pass: with no hugepage size
                     * to try (hugepage-size=none, no hugetlbfs mount) pass 0 makes none, and
                     * the user's regular-memory backends were never placed at all. */
                    fixed_tried = user_fixed_ps;
                    g_ptr_array_set_size(hosts, 0);
                    for (guint i = 0; i < n; i++) {
                        g_ptr_array_add(hosts, qn_bitmap_new());
                    }
                    if (user_fixed_ps || user_hosts) {
                        /* Per guest node: its own page size and, if given, its host nodes.
                         * The others are placed together, on distinct nodes if possible. */
                        g_autofree guint64 *free_sizes = g_new0(guint64, n);
                        g_autofree QnBitmap **free_hosts = g_new0(QnBitmap *, n);
                        guint nfree = 0;
                        gint64 free_ps = -2;

                        ok = TRUE;
                        for (guint i = 0; i < n; i++) {
                            const QnShapeNode *s = g_ptr_array_index(shape, i);
                            gint64 gps = s->page_size >= 0 ? s->page_size : (gint64)ps;

                            if (sizes[i] == 0 || s->user_hosts != NULL) {
                                continue;
                            }
                            if (free_ps != -2 && free_ps != gps) {
                                free_ps = -1; /* mixed page sizes: one at a time */
                            } else if (free_ps == -2) {
                                free_ps = gps;
                            }
                            free_sizes[nfree] = sizes[i];
                            free_hosts[nfree++] = g_ptr_array_index(hosts, i);
                        }
                        if (nfree > 0 && free_ps >= 0) {
                            ok = qn_try_place(&p, free_sizes, nfree, (guint64)free_ps,
                                              cfg->memory_mode, TRUE, single, free_hosts);
                        }
                        for (guint i = 0; i < n && ok; i++) {
                            const QnShapeNode *s = g_ptr_array_index(shape, i);
                            guint64 gps = s->page_size >= 0 ? (guint64)s->page_size : ps;
                            QnBitmap *h = g_ptr_array_index(hosts, i);

                            if (sizes[i] == 0) {
                                continue;
                            }
                            if (s->user_hosts != NULL) {
                                guint64 cap = 0;

                                QN_BITMAP_FOREACH(s->user_hosts, hn) {
                                    const QnHostNode *hnode = qn_topology_node(topo, (guint)hn);

                                    if (hnode == NULL || !hnode->allowed) {
                                        ok = FALSE;
                                    }
                                    cap += qn_capacity(&p, (guint)hn, gps);
                                }
                                ok = ok && cap >= sizes[i] && (gps == 0 || sizes[i] % gps == 0);
                                qn_bitmap_or(h, s->user_hosts);
                            } else if (free_ps < 0) {
                                QnBitmap *one[1] = { h };

                                ok = qn_try_place(&p, &sizes[i], 1, gps, cfg->memory_mode,
                                                  FALSE, FALSE, one);
                            }
                        }
                    } else {
                        /* Memory-less guest nodes (0 bytes) take no host node. */
                        g_autofree guint64 *nz = g_new0(guint64, n);
                        g_autofree QnBitmap **nzh = g_new0(QnBitmap *, n);
                        guint m = 0;

                        for (guint i = 0; i < n; i++) {
                            if (sizes[i] > 0) {
                                nz[m] = sizes[i];
                                nzh[m++] = g_ptr_array_index(hosts, i);
                            }
                        }
                        ok = m > 0 && qn_try_place(&p, nz, m, ps, cfg->memory_mode,
                                                   fixed_shape || single, single, nzh);
                    }
                    if (!ok) {
                        if (why == NULL) {
                            why = qn_describe_need(&p, sizes, n);
                        }
                        tried_max = MAX(tried_max, n);
                        continue;
                    }
                    plan = qn_plan_new(cfg, QN_PLAN_ALIGNED);
                    plan->guest_topology = kind;
                    {
                        g_autofree QnBitmap **vcpus = g_new0(QnBitmap *, n);

                        if (!user_sizes && shape == NULL) {
                            qn_split_vcpus(&qa->smp, n, vcpus);
                        }
                        for (guint i = 0; i < n; i++) {
                            const QnShapeNode *s = shape ? g_ptr_array_index(shape, i) : NULL;
                            QnMemoryMode mode = s && s->has_user_mode ? s->user_mode
                                                                      : cfg->memory_mode;
                            guint64 gps = s && s->page_size >= 0 ? (guint64)s->page_size : ps;
                            QnGuestNode *g = qn_guest_node_new(s ? s->id : i, s, sizes[i],
                                                               sizes[i] ? gps : 0, mode);

                            if (vcpus[i] != NULL) {
                                qn_bitmap_free(g->vcpus);
                                g->vcpus = vcpus[i];
                            }
                            qn_bitmap_or(g->host_nodes, g_ptr_array_index(hosts, i));
                            g->host_nodes_from_user = s && s->user_hosts;
                            if (s != NULL && s->memdev == NULL && sizes[i] > 0) {
                                g_free(g->memdev);
                                g->memdev = g_strdup_printf("qn-ram%u", g->id);
                            }
                            g_ptr_array_add(plan->guest_nodes, g);
                        }
                    }
                    if (pass == 1) {
                        plan->reason = g_strdup_printf(
                            "no hugepage plan (%s): regular memory bound to its nodes",
                            resv_why != NULL ? resv_why
                            : page_sizes->len ? "not enough free hugepages per node"
                            : cfg->hugepage_size == QN_HUGEPAGE_SIZE_NONE ? "hugepage-size none"
                                                                : "no hugetlbfs mount");
                    } else {
                        g_autofree gchar *over = qn_plan_check_resv(&p, plan);

                        if (over != NULL) {
                            g_clear_pointer(&plan, qn_plan_free);
                            if (why == NULL) {
                                why = qn_describe_need(&p, sizes, n);
                            }
                            if (resv_why == NULL) {
                                resv_why = g_steal_pointer(&over);
                            }
                            tried_max = MAX(tried_max, n);
                        }
                    }
                }
                if (pass == 1 && cfg->policy != QN_POLICY_BEST_EFFORT &&
                    cfg->hugepage_size != QN_HUGEPAGE_SIZE_NONE && page_sizes->len > 0) {
                    break;
                }
            }
        }
    }

    if (plan == NULL) {
        g_autofree gchar *need = why ? g_strdup_printf("%s (tried up to %u guest node%s)%s%s",
                                                       why, tried_max, tried_max == 1 ? "" : "s",
                                                       resv_why ? "; " : "",
                                                       resv_why ? resv_why : "")
                                     : g_strdup("no usable host node");

        if (cfg->policy == QN_POLICY_BEST_EFFORT) {
            plan = qn_plan_new(cfg, QN_PLAN_FALLBACK);
            plan->guest_topology = kind;
            plan->reason = g_strdup_printf("no aligned plan for %s: memory left to the OS", need);
            return g_steal_pointer(&plan);
        }
        g_set_error(error, QN_ERROR, QN_ERROR_NO_FIT, "policy %s: no aligned plan for %s",
                    qn_policy_to_string(cfg->policy), need);
        return NULL;
    }
    for (guint i = 0; i < plan->guest_nodes->len; i++) {
        const QnGuestNode *g = g_ptr_array_index(plan->guest_nodes, i);

        if (g->page_size != 0 && plan->hugetlbfs == NULL) {
            const QnHugetlbfsMount *m = NULL;

            if (cfg->hugetlbfs[0] != '\0') {
                for (guint k = 0; k < topo->mounts->len; k++) {
                    const QnHugetlbfsMount *mm = g_ptr_array_index(topo->mounts, k);

                    if (strcmp(mm->path, cfg->hugetlbfs) == 0) {
                        m = mm;
                    }
                }
                if (m == NULL || m->page_size != g->page_size) {
                    g_autofree gchar *s = qn_size_format(g->page_size);

                    g_set_error(error, QN_ERROR, QN_ERROR_HUGEPAGES,
                                "hugetlbfs '%s': not a hugetlbfs mount of %s pages",
                                cfg->hugetlbfs, s);
                    return NULL;
                }
            } else {
                m = qn_topology_mount_for(topo, g->page_size);
            }
            if (m != NULL) {
                plan->hugetlbfs = g_strdup(m->path);
            }
        }
    }
    if (cfg->dedicated_cpus) {
        g_autofree gchar *cpu_why = NULL;

        if (!qn_plan_assign_pcpus(&p, plan, &cpu_why)) {
            if (cfg->policy != QN_POLICY_BEST_EFFORT) {
                g_set_error(error, QN_ERROR, QN_ERROR_NO_FIT, "policy %s: dedicated CPUs: %s",
                            qn_policy_to_string(cfg->policy), cpu_why);
                return NULL;
            }
            g_clear_pointer(&plan, qn_plan_free);
            plan = qn_plan_new(cfg, QN_PLAN_FALLBACK);
            plan->guest_topology = kind;
            plan->reason = g_strdup_printf("dedicated CPUs: %s: memory and CPUs left to the OS",
                                           cpu_why);
            return g_steal_pointer(&plan);
        }
    }
    qn_plan_fill_distances(&p, plan);
    return g_steal_pointer(&plan);
}

gchar *
qn_plan_summary(const QnPlan *plan)
{
    GString *s = g_string_new(NULL);

    if (plan->kind != QN_PLAN_ALIGNED) {
        g_string_append_printf(s, "%s: %s", qn_plan_kind_to_string(plan->kind),
                               plan->reason ? plan->reason : "");
        return g_string_free(s, FALSE);
    }
    g_string_append_printf(s, "%u guest node%s (%s, %s):", plan->guest_nodes->len,
                           plan->guest_nodes->len == 1 ? "" : "s",
                           qn_guest_topology_to_string(plan->guest_topology),
                           qn_policy_to_string(plan->policy));
    for (guint i = 0; i < plan->guest_nodes->len; i++) {
        const QnGuestNode *g = g_ptr_array_index(plan->guest_nodes, i);
        g_autofree gchar *hosts = qn_bitmap_format_list(g->host_nodes, ",");
        g_autofree gchar *vcpus = qn_bitmap_format_list(g->vcpus, ",");
        g_autofree gchar *bytes = qn_size_format(g->bytes);
        g_autofree gchar *ps = g->page_size ? qn_size_format(g->page_size) : g_strdup("4K");

        g_string_append_printf(s, "%s guest %u -> host %s (%s in %s pages, %s, vCPUs %s",
                               i ? ";" : "", g->id, hosts[0] ? hosts : "-", bytes, ps,
                               qn_memory_mode_to_string(g->mode), vcpus[0] ? vcpus : "-");
        if (g->pcpus != NULL && g->pcpus->len > 0) {
            g_string_append(s, " on pCPUs ");
            for (guint k = 0; k < g->pcpus->len; k++) {
                g_string_append_printf(s, "%s%u", k ? "," : "", g_array_index(g->pcpus, guint, k));
            }
        }
        g_string_append_c(s, ')');
    }
    if (plan->dedicated && plan->emulator_pcpus != NULL) {
        g_autofree gchar *emu = qn_bitmap_format_list(plan->emulator_pcpus, ",");

        g_string_append_printf(s, "; emulator on pCPUs %s", emu);
    }
    if (plan->reason != NULL) {
        g_string_append_printf(s, "; note: %s", plan->reason);
    }
    return g_string_free(s, FALSE);
}
