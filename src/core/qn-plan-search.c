/* Candidate search: which host nodes hold the guest nodes.
 *
 * Rules: each guest node on its own host node when it can be; among the node sets that fit,
 * the one with the fewest missed PCI nodes (the argv's vfio-pci devices), then the least sum of
 * pairwise SLIT distances (Xen libxl's automatic placement and Kubernetes Topology Manager's
 * prefer-closest-numa-nodes both prefer neighbouring nodes), then the packing rule (best-fit
 * or worst-fit, chosen with bench/placement). Every set is tried while there are few (below
 * QN_EXHAUSTIVE_LIMIT); above, sets grow greedily from every seed node. Hugepage sizes first,
 * largest first; regular memory only when no hugepage plan exists and the policy allows it. */
#include "qn-planner.h"

#include <string.h>

/* Enumerate every node set when there are at most this many; else grow sets greedily. Every
 * real host seen (<= 36 nodes) choosing <= 4 stays exhaustive below ~60k; the 64-node case
 * switches to the greedy search, O(seeds * n * candidates). */
#define QN_EXHAUSTIVE_LIMIT 20000

typedef struct {
    guint pci_miss;
    guint64 cpu_far;   /* dedicated: sum of SLIT(vCPUs' node, memory's node) - 10 */
    guint64 dist_sum;
    gint64 pack;
} QnScore;

static gint
qn_score_cmp(const QnScore *a, const QnScore *b)
{
    if (a->pci_miss != b->pci_miss) {
        return a->pci_miss < b->pci_miss ? -1 : 1;
    }
    if (a->cpu_far != b->cpu_far) {
        return a->cpu_far < b->cpu_far ? -1 : 1;
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
qn_score_set(const QnPlanner *p, const guint *set, const guint64 *fars, guint n,
             gint64 leftover_mib, QnScore *ret)
{
    ret->pci_miss = 0;
    ret->cpu_far = 0;
    for (guint i = 0; i < n; i++) {
        ret->cpu_far += fars[i];
    }
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

/* One choice of @n distinct nodes under way: the candidates that hold the smallest guest node,
 * and the best set so far. */
typedef struct {
    const QnPlanner *p;
    guint n;
    guint64 *sizes_desc;  /* the guest nodes' sizes, largest first */
    GArray *fit;          /* guint candidate node ids */
    GArray *cap;          /* guint64 their capacity */
    GArray *far;          /* guint64 their SLIT to their vCPUs' node - 10 (qn_cpu_home) */
    guint *cur;           /* the set being looked at, n ids */
    guint64 *caps;        /* its capacities */
    guint64 *fars;        /* its far values */
    guint *best;
    QnScore best_score;
    gboolean found;
} QnSetSearch;

static void
qn_set_search_clear(QnSetSearch *s)
{
    g_free(s->sizes_desc);
    g_array_unref(s->fit);
    g_array_unref(s->cap);
    g_array_unref(s->far);
    g_free(s->cur);
    g_free(s->caps);
    g_free(s->fars);
    g_free(s->best);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(QnSetSearch, qn_set_search_clear)

/* Keep s->cur if it beats the best set so far. */
static void
qn_set_search_offer(QnSetSearch *s, gint64 leftover_mib)
{
    QnScore score;

    qn_score_set(s->p, s->cur, s->fars, s->n, leftover_mib, &score);
    if (!s->found || qn_score_cmp(&score, &s->best_score) < 0) {
        s->found = TRUE;
        s->best_score = score;
        memcpy(s->best, s->cur, s->n * sizeof(guint));
    }
}

/* Every n-subset of the candidates, in lexicographic order. */
static void
qn_set_search_exhaustive(QnSetSearch *s)
{
    guint n = s->n, m = s->fit->len;
    g_autofree guint *idx = g_new0(guint, n);
    /* Equal sizes (every automatic split): each candidate already holds one, so every set
     * fits and no matching is needed. */
    gboolean equal = s->sizes_desc[0] == s->sizes_desc[n - 1];

    for (guint i = 0; i < n; i++) {
        idx[i] = i;
    }
    for (;;) {
        gint64 left = 0;
        guint64 min_left;
        gint i = (gint)n - 1;

        for (guint k = 0; k < n; k++) {
            s->cur[k] = g_array_index(s->fit, guint, idx[k]);
            s->caps[k] = g_array_index(s->cap, guint64, idx[k]);
            s->fars[k] = g_array_index(s->far, guint64, idx[k]);
            left += (gint64)((s->caps[k] - s->sizes_desc[n - 1]) >> 20);
        }
        if (equal || qn_set_feasible(s->sizes_desc, s->caps, n, &left, &min_left)) {
            qn_set_search_offer(s, left);
        }
        /* next combination */
        while (i >= 0 && idx[i] == m - n + (guint)i) {
            i--;
        }
        if (i < 0) {
            return;
        }
        idx[i]++;
        for (guint j = (guint)i + 1; j < n; j++) {
            idx[j] = idx[j - 1] + 1;
        }
    }
}

/* From @seed, add the candidate closest to the set so far (sum of distances), ties by packing
 * then id, until the set has n nodes. FALSE when no candidate holds the next guest node. Each
 * candidate's distance to the set (@to_set) grows by one lookup per added node. */
static gboolean
qn_set_search_grow(QnSetSearch *s, guint seed, gboolean *used, guint64 *to_set)
{
    const QnPlanner *p = s->p;
    guint m = s->fit->len;

    memset(used, 0, m * sizeof(gboolean));
    memset(to_set, 0, m * sizeof(guint64));
    used[seed] = TRUE;
    s->cur[0] = g_array_index(s->fit, guint, seed);
    s->caps[0] = g_array_index(s->cap, guint64, seed);
    s->fars[0] = g_array_index(s->far, guint64, seed);
    for (guint k = 1; k < s->n; k++) {
        gint pick = -1;
        guint64 pick_d = 0, pick_c = 0, pick_f = 0;

        for (guint c = 0; c < m; c++) {
            guint64 cc = g_array_index(s->cap, guint64, c);
            guint64 cf = g_array_index(s->far, guint64, c);

            if (used[c]) {
                continue;
            }
            to_set[c] += qn_pair_distance(p, s->cur[k - 1], g_array_index(s->fit, guint, c));
            if (cc < s->sizes_desc[k]) {
                continue;
            }
            if (pick < 0 || cf < pick_f || (cf == pick_f && to_set[c] < pick_d) ||
                (cf == pick_f && to_set[c] == pick_d &&
                 (p->cfg->packing == QN_PACKING_BEST_FIT ? cc < pick_c : cc > pick_c))) {
                pick = (gint)c;
                pick_d = to_set[c];
                pick_c = cc;
                pick_f = cf;
            }
        }
        if (pick < 0) {
            return FALSE;
        }
        used[pick] = TRUE;
        s->cur[k] = g_array_index(s->fit, guint, pick);
        s->caps[k] = pick_c;
        s->fars[k] = pick_f;
    }
    return TRUE;
}

/* Greedy from every seed. Exact on hierarchical SLITs (socket > die > node). */
static void
qn_set_search_greedy(QnSetSearch *s)
{
    g_autofree gboolean *used = g_new0(gboolean, s->fit->len);
    g_autofree guint64 *to_set = g_new0(guint64, s->fit->len);

    for (guint seed = 0; seed < s->fit->len; seed++) {
        gint64 left;
        guint64 min_left;

        if (qn_set_search_grow(s, seed, used, to_set) &&
            qn_set_feasible(s->sizes_desc, s->caps, s->n, &left, &min_left)) {
            qn_set_search_offer(s, left);
        }
    }
}

/**
 * qn_choose_distinct:
 * Choose @n distinct host nodes for guest nodes of @sizes bytes (@page_size pages), among
 * @cands (with dedicated CPUs, only nodes with p->need_pcpus free pCPU slots). Writes the
 * chosen nodes, ascending, to @ret_set. Lowest score wins: PCI nodes missed, then (dedicated
 * vCPUs) how far CPU-less nodes are from the node whose pCPUs take their vCPUs (so a node with
 * CPUs of its own always wins when one fits), then the sum (= n(n-1)/2 x mean) of pairwise
 * distances, then packing.
 */
gboolean
qn_choose_distinct(const QnPlanner *p, GArray *cands, const guint64 *sizes, guint n,
                   guint64 page_size, guint *ret_set)
{
    g_auto(QnSetSearch) s = {
        .p = p,
        .n = n,
        .sizes_desc = g_memdup2(sizes, n * sizeof(guint64)),
        .fit = g_array_new(FALSE, FALSE, sizeof(guint)),
        .cap = g_array_new(FALSE, FALSE, sizeof(guint64)),
        .far = g_array_new(FALSE, FALSE, sizeof(guint64)),
        .cur = g_new0(guint, n),
        .caps = g_new0(guint64, n),
        .fars = g_new0(guint64, n),
        .best = g_new0(guint, n),
    };
    guint64 combos = 1;

    qsort(s.sizes_desc, n, sizeof(guint64), qn_cmp_u64_desc);
    for (guint i = 0; i < cands->len; i++) {
        guint id = g_array_index(cands, guint, i);
        guint64 c = qn_capacity(p, id, page_size);
        guint64 far = 0;

        if (p->need_pcpus > 0) {
            /* dedicated vCPUs need free pCPUs: the node's, or for a CPU-less node its
             * nearest node's (qn_cpu_home) */
            gint home = qn_cpu_home(p, id, p->need_pcpus, NULL);

            if (home < 0) {
                continue;
            }
            far = home == (gint)id ? 0 : qn_pair_distance(p, (guint)home, id) - 10;
        }
        if (c >= s.sizes_desc[n - 1]) {
            g_array_append_val(s.fit, id);
            g_array_append_val(s.cap, c);
            g_array_append_val(s.far, far);
        }
    }
    if (s.fit->len < n) {
        return FALSE;
    }
    for (guint i = 0; i < n && combos <= QN_EXHAUSTIVE_LIMIT; i++) {
        combos = combos * (s.fit->len - i) / (i + 1);
    }
    if (combos <= QN_EXHAUSTIVE_LIMIT) {
        qn_set_search_exhaustive(&s);
    } else {
        qn_set_search_greedy(&s);
    }
    if (!s.found) {
        return FALSE;
    }
    for (guint i = 0; i < n; i++) {
        for (guint j = i + 1; j < n; j++) {
            if (s.best[j] < s.best[i]) {
                guint t = s.best[i];

                s.best[i] = s.best[j];
                s.best[j] = t;
            }
        }
    }
    memcpy(ret_set, s.best, n * sizeof(guint));
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
    g_autofree gboolean *taken = NULL;
    g_autofree guint *order = NULL;

    for (guint i = 0; i < n; i++) {
        in_order &= qn_capacity(p, set[i], page_size) >= sizes[i];
    }
    if (in_order) {
        memcpy(ret_assign, set, n * sizeof(guint));
        return;
    }
    /* guest nodes by size, largest first; each takes the largest free host node */
    taken = g_new0(gboolean, n);
    order = qn_order_by_size_desc(sizes, n);
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

/* Interleave: each guest node over the K nearest nodes that hold an even share of @total;
 * K = 1 if one node holds it all (interleave over one node is bind), else 2, 4 ... */
static gboolean
qn_place_interleave(const QnPlanner *p, guint64 total, guint n, guint64 page_size,
                    QnBitmap **ret_hosts)
{
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

/* Try to place guest nodes of @sizes on one page size. Writes one nodeset per guest node. */
static gboolean
qn_try_place(const QnPlanner *p, const guint64 *sizes, guint n, guint64 page_size,
             QnMemoryMode mode, gboolean allow_share, gboolean single_node, QnBitmap **ret_hosts)
{
    g_autofree guint *assign = g_new0(guint, n);
    g_autofree guint *set = g_new0(guint, n);
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
    if (mode == QN_MEMORY_MODE_INTERLEAVE || p->span) {
        /* -incoming: the one guest node on as many nodes as it needs (qn-plan-shape.c) */
        return qn_place_interleave(p, total, n, page_size, ret_hosts);
    }
    if (qn_choose_distinct(p, p->usable, sizes, n, page_size, set)) {
        qn_assign_set(p, set, sizes, n, page_size, assign);
    } else if (!allow_share || !qn_choose_shared(p, p->usable, sizes, n, page_size, assign)) {
        return FALSE;
    }
    for (guint i = 0; i < n; i++) {
        qn_bitmap_set(ret_hosts[i], assign[i]);
    }
    return TRUE;
}

/* The argv's own guest nodes when a backend fixes its page size or names its host nodes: each
 * keeps its page size and, if given, its host nodes (checked for room); the others are placed
 * together, on distinct nodes if possible, or one at a time when their page sizes differ. */
static gboolean
qn_place_user_nodes(const QnPlanner *p, guint n, const guint64 *sizes, guint64 ps,
                    GPtrArray *hosts)
{
    g_autofree guint64 *free_sizes = g_new0(guint64, n);
    g_autofree QnBitmap **free_hosts = g_new0(QnBitmap *, n);
    guint nfree = 0;
    gint64 free_ps = -2; /* -2: none yet; -1: mixed */
    gboolean ok = TRUE;

    for (guint i = 0; i < n; i++) {
        const QnShapeNode *s = g_ptr_array_index(p->shape, i);
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
        ok = qn_try_place(p, free_sizes, nfree, (guint64)free_ps, p->cfg->memory_mode, TRUE,
                          p->single, free_hosts);
    }
    for (guint i = 0; i < n && ok; i++) {
        const QnShapeNode *s = g_ptr_array_index(p->shape, i);
        guint64 gps = s->page_size >= 0 ? (guint64)s->page_size : ps;
        QnBitmap *h = g_ptr_array_index(hosts, i);

        if (sizes[i] == 0) {
            continue;
        }
        if (s->user_hosts != NULL) {
            guint64 cap = 0;

            QN_BITMAP_FOREACH(s->user_hosts, hn) {
                const QnHostNode *hnode = qn_topology_node(p->topo, (guint)hn);

                if (hnode == NULL || !hnode->allowed) {
                    ok = FALSE;
                }
                cap += qn_capacity(p, (guint)hn, gps);
            }
            ok = ok && cap >= sizes[i] && (gps == 0 || sizes[i] % gps == 0);
            qn_bitmap_or(h, s->user_hosts);
        } else if (free_ps < 0) {
            QnBitmap *one[1] = { h };

            ok = qn_try_place(p, &sizes[i], 1, gps, p->cfg->memory_mode, FALSE, FALSE, one);
        }
    }
    return ok;
}

/* Guest nodes whose page size and host nodes are ours to choose; memory-less guest nodes
 * (0 bytes) take no host node. */
static gboolean
qn_place_even(const QnPlanner *p, guint n, const guint64 *sizes, guint64 ps, GPtrArray *hosts)
{
    g_autofree guint64 *nz = g_new0(guint64, n);
    g_autofree QnBitmap **nzh = g_new0(QnBitmap *, n);
    guint m = 0;

    for (guint i = 0; i < n; i++) {
        if (sizes[i] > 0) {
            nz[m] = sizes[i];
            nzh[m++] = g_ptr_array_index(hosts, i);
        }
    }
    return m > 0 && qn_try_place(p, nz, m, ps, p->cfg->memory_mode, p->fixed_shape || p->single,
                                 p->single, nzh);
}

/* One try: @n guest nodes on @ps pages (0: regular memory, the @regular pass). Returns the
 * plan, or %NULL with the miss recorded; *@ret_stop when no further page size of this count
 * is worth a try. */
static QnPlan *
qn_search_try(QnPlanner *p, gboolean regular, guint n, guint64 ps, gboolean *ret_stop)
{
    const QnConfig *cfg = p->cfg;
    g_autofree guint64 *sizes = g_new0(guint64, n);
    g_autoptr(GPtrArray) hosts = g_ptr_array_new_with_free_func((GDestroyNotify)qn_bitmap_free);
    gboolean user_fixed_ps = FALSE;
    g_autoptr(QnPlan) plan = NULL;
    g_autofree gchar *over = NULL;

    if (regular && cfg->hugepage_size != QN_HUGEPAGE_SIZE_AUTO &&
        cfg->hugepage_size != QN_HUGEPAGE_SIZE_NONE && cfg->policy != QN_POLICY_BEST_EFFORT) {
        *ret_stop = TRUE; /* a configured hugepage size is a requirement unless best-effort */
        return NULL;
    }
    if (!qn_shape_sizes(p, n, ps, sizes, &user_fixed_ps)) {
        return NULL;
    }
    if (user_fixed_ps && p->fixed_tried) {
        *ret_stop = TRUE; /* the user's backends fix their page sizes: one try */
        return NULL;
    }
    /* That try is the first one made, whichever pass: with no hugepage size to try
     * (hugepage-size=none, no hugetlbfs mount) pass 0 makes none, and the user's
     * regular-memory backends were never placed at all. */
    p->fixed_tried = user_fixed_ps;
    for (guint i = 0; i < n; i++) {
        g_ptr_array_add(hosts, qn_bitmap_new());
    }
    if (!(user_fixed_ps || p->user_hosts ? qn_place_user_nodes(p, n, sizes, ps, hosts)
                                         : qn_place_even(p, n, sizes, ps, hosts))) {
        qn_planner_note_miss(p, sizes, n);
        return NULL;
    }
    plan = qn_shape_build_plan(p, n, sizes, ps, hosts);
    if (regular) {
        plan->reason = qn_planner_regular_reason(p);
        return g_steal_pointer(&plan);
    }
    over = qn_plan_check_resv(p, plan);
    if (over != NULL) {
        qn_planner_note_miss(p, sizes, n);
        if (p->resv_why == NULL) {
            p->resv_why = g_steal_pointer(&over);
        }
        return NULL;
    }
    return g_steal_pointer(&plan);
}

/* How many of the argv's vfio-pci host nodes no guest node of @plan is on. */
static guint
qn_search_pci_missed(const QnPlanner *p, const QnPlan *plan)
{
    g_autoptr(QnBitmap) all = qn_bitmap_new();
    guint missed = 0;

    for (guint i = 0; i < plan->guest_nodes->len; i++) {
        qn_bitmap_or(all, ((QnGuestNode *)g_ptr_array_index(plan->guest_nodes, i))->host_nodes);
    }
    QN_BITMAP_FOREACH(p->pci_nodes, pn) {
        missed += !qn_bitmap_test(all, (guint)pn);
    }
    return missed;
}

/* One guest node count: each hugepage size, largest first, or regular memory.
 *
 * Device locality (issue 16): with device-locality = first, a plan that leaves a vfio-pci
 * device's host node out does not end the search: smaller page sizes are tried for one that
 * holds every device node, and the larger-page plan is kept only when none does. A device's DMA
 * and interrupts cross the inter-node link on every I/O, a larger page saves TLB misses only
 * (OpenStack Nova's PCI NUMA affinity policy "required"/"preferred" ranks the device's node the
 * same way, ahead of hw:mem_page_size). A smaller page size is preferred over more guest nodes:
 * the node count order stays the search's. */
static QnPlan *
qn_search_count(QnPlanner *p, gboolean regular, guint n)
{
    guint nps = regular ? 1 : p->page_sizes->len;
    g_autoptr(QnPlan) first = NULL;
    gboolean stop = FALSE;

    if (p->cfg->dedicated_cpus) {
        p->need_pcpus = qn_cpus_needed_per_node(p, n);
    }
    for (guint k = 0; k < nps && !stop; k++) {
        guint64 ps = regular ? 0 : g_array_index(p->page_sizes, guint64, k);
        g_autoptr(QnPlan) plan = qn_search_try(p, regular, n, ps, &stop);

        if (plan == NULL) {
            continue;
        }
        if (!p->cfg->device_locality_first || qn_search_pci_missed(p, plan) == 0) {
            if (first != NULL && plan->reason == NULL) {
                g_autofree gchar *fps = qn_size_format(
                    ((QnGuestNode *)g_ptr_array_index(first->guest_nodes, 0))->page_size);

                plan->reason = g_strdup_printf("the vfio-pci devices' host nodes outrank %s "
                                               "pages elsewhere (device-locality = first)", fps);
            }
            return g_steal_pointer(&plan);
        }
        if (first == NULL) {
            first = g_steal_pointer(&plan);
        }
    }
    if (first != NULL && first->reason == NULL && p->cfg->device_locality_first) {
        first->reason = g_strdup("no plan with smaller pages holds the vfio-pci devices' host "
                                 "nodes");
    }
    return g_steal_pointer(&first);
}

/* One pass over the node counts, fewest first. */
static QnPlan *
qn_search_pass(QnPlanner *p, gboolean regular)
{
    const QnConfig *cfg = p->cfg;
    QnPlan *plan = NULL;

    for (guint ci = 0; ci < p->counts->len && plan == NULL; ci++) {
        plan = qn_search_count(p, regular, g_array_index(p->counts, guint, ci));
        if (regular && cfg->policy != QN_POLICY_BEST_EFFORT &&
            cfg->hugepage_size != QN_HUGEPAGE_SIZE_NONE && p->page_sizes->len > 0) {
            break; /* restricted: regular memory on the first count only */
        }
    }
    return plan;
}

/**
 * qn_plan_stage_search:
 * Host nodes for each guest node: hugepage sizes first (largest first, fewest nodes first);
 * then, for an automatic topology, the uneven split; then regular memory (page size 0) when
 * the policy allows it. Sets p->plan, or says why not (no fit).
 */
QnStageResult
qn_plan_stage_search(QnPlanner *p, GError **error)
{
    p->plan = qn_search_pass(p, FALSE);
    if (p->plan == NULL && qn_shape_uneven_allowed(p)) {
        /* No even hugepage split anywhere: hugepages on the nearest node set that holds
         * them, unevenly, before regular memory or the OS. */
        p->plan = qn_shape_try_uneven(p);
    }
    if (p->plan == NULL) {
        p->plan = qn_search_pass(p, TRUE);
    }
    return p->plan != NULL ? QN_STAGE_OK : qn_planner_no_fit_memory(p);
}

/* Does the guest's SLIT belong to the argv? It does when the argv defines the guest topology
 * (libvirt's <numa> cells, the user's -numa node lines): libvirt writes -numa dist only for
 * <distances>, and without them QEMU gives the guest 10/20 (hw/core/numa.c
 * complete_init_numa_distance). Distances of ours would change the guest's ACPI SLIT from what
 * libvirt defined, and differ on a migration destination that picks other host nodes: so only
 * the operator's mirror-distances = on mirrors there. Our own layouts always mirror. */
static gboolean
qn_distances_are_argvs(const QnPlanner *p)
{
    return p->qa->numa_dists->len > 0 ||
           (p->kind == QN_GUEST_TOPOLOGY_USER && !p->cfg->mirror_distances);
}

/* Does every guest node of @plan have host memory? A memory-less guest node (a generic
 * initiator's, a CPU-only node) has no host node to mirror a distance from, and QEMU wants
 * every pair once any -numa dist is given (hw/core/numa.c validate_numa_distance). */
static gboolean
qn_distances_all_backed(const QnPlan *plan)
{
    for (guint i = 0; i < plan->guest_nodes->len; i++) {
        const QnGuestNode *g = g_ptr_array_index(plan->guest_nodes, i);

        if (qn_bitmap_count(g->host_nodes) == 0) {
            return FALSE;
        }
    }
    return TRUE;
}

/**
 * qn_plan_stage_distances:
 * The mean host distance of the plan, and the guest's SLIT (-numa dist) mirroring the host's
 * for the layouts we create. An argv that defines its guest topology keeps its own SLIT (see
 * qn_distances_are_argvs()) unless mirror-distances = on, and memory-less guest nodes of
 * the argv make the argv's SLIT the only one. Never fails.
 */
QnStageResult
qn_plan_stage_distances(QnPlanner *p, GError **error)
{
    QnPlan *plan = p->plan;
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
    if (n < 2 || qn_distances_are_argvs(p) || !qn_distances_all_backed(plan) ||
        (p->qa->numa_nodes->len > 0 && n != p->qa->numa_nodes->len)) {
        return QN_STAGE_OK; /* one node has no distances; the argv's SLIT stays */
    }
    plan->distance = g_new0(guint, n * n);
    for (guint i = 0; i < n; i++) {
        const QnGuestNode *gi = g_ptr_array_index(plan->guest_nodes, i);

        for (guint j = 0; j < n; j++) {
            const QnGuestNode *gj = g_ptr_array_index(plan->guest_nodes, j);
            guint d = 10;

            if (i != j) {
                /* Mirror the host SLIT (KubeVirt copies it too). Interleaved nodesets: the
                 * largest distance between them. Two guest nodes on one host node get 11:
                 * Linux rejects a SLIT whose off-diagonal entries are <= 10
                 * (drivers/acpi/numa/srat.c slit_valid). */
                d = 11;
                QN_BITMAP_FOREACH(gi->host_nodes, a) {
                    QN_BITMAP_FOREACH(gj->host_nodes, b) {
                        d = MAX(d, a == b ? 11 : qn_pair_distance(p, (guint)a, (guint)b));
                    }
                }
            }
            plan->distance[i * n + j] = d;
        }
    }
    return QN_STAGE_OK;
}
