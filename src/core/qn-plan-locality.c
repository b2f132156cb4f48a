/* Locality: keep the guest's memory where its vCPUs are.
 *
 * Rule: a guest that no host node holds alone is split over several. The search
 * (qn-plan-search.c) finds the even split of fewest nodes and least summed distance; an even
 * split over n nodes sends (n-1)/n of each vCPU's accesses to other nodes even when the nearest
 * node has room for most of the guest. Filling the node with room first and spilling to its
 * nearest neighbours (what numad's placement does inside its node set, and Linux's local-first
 * policy does for an unbound guest) keeps most vCPUs and most memory on one node. This stage
 * builds that concentrated split from every seed node and keeps it when its expected distance
 * from a vCPU to a byte of guest memory,
 *     sum over guest nodes i, j of vcpus_i / V x bytes_j / M x SLIT(host_i, host_j) / 10,
 * (bench/placement's "locality", 1.0 = all local) is lower than the search's plan. Found with
 * bench/placement --why (issue 19): numad's better p95 on EPYC, Xeon Max and 64 nodes came from
 * these decisions (16 vCPUs / 64G on EPYC: even 32G + 32G = 1.100, concentrated 1.034).
 *
 * Each guest node keeps its own host node (the guest sees the split in its SLIT). vCPUs go, in
 * whole cores, where they are nearest to the memory: with dedicated CPUs no more than the host
 * node has free pCPU slots, without no more than it has CPUs; a guest node may get none (a
 * memory-only node, which QEMU and Linux guests take), never vCPUs without memory. Only
 * automatic topologies in bind or preferred mode (the sizes are ours), on hugepages, with no
 * vfio-pci node to keep (the search's first rule). */
#include "qn-planner.h"

#include <string.h>

/* The expected distance of @n guest nodes: on host @set, @vcpus vCPU slots and @bytes each. */
static double
qn_expected_distance(const QnPlanner *p, guint n, const guint *set, const guint *vcpus,
                     const guint64 *bytes)
{
    double v = 0, m = 0, s = 0;

    for (guint i = 0; i < n; i++) {
        v += vcpus[i];
        m += (double)bytes[i];
    }
    for (guint i = 0; i < n; i++) {
        for (guint j = 0; j < n; j++) {
            s += vcpus[i] * (double)bytes[j] * qn_pair_distance(p, set[i], set[j]);
        }
    }
    return v > 0 && m > 0 ? s / (v * m * 10.0) : 0;
}

/* vCPUs host node @id may take: free pCPU slots (dedicated), else its CPUs. */
static guint
qn_locality_vcpu_room(const QnPlanner *p, guint id)
{
    const QnHostNode *node = id < p->dim ? p->node_by_id[id] : NULL;

    if (p->cfg->dedicated_cpus) {
        return qn_cached_slots(p, id);
    }
    return node != NULL ? qn_bitmap_count(node->cpus) : 0;
}

/* One candidate split under way. */
typedef struct {
    guint n;
    guint *set;       /* host node ids, seed first */
    guint64 *bytes;
    guint *cores;     /* whole cores of vCPU slots per guest node */
    double dist;      /* expected distance */
} QnSplit;

static void
qn_split_clear(QnSplit *s)
{
    g_free(s->set);
    g_free(s->bytes);
    g_free(s->cores);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(QnSplit, qn_split_clear)

/* Usable node indexes that can hold a page, by distance from @seed, then by capacity (largest
 * first), then id; @seed itself only if it can hold a core too. Returns how many. */
static guint
qn_locality_order(const QnPlanner *p, guint seed, const guint64 *caps, const guint *room,
                  guint64 granule, guint threads, guint *order)
{
    guint m = 0, sid = g_array_index(p->usable, guint, seed);

    for (guint c = 0; c < p->usable->len; c++) {
        if (caps[c] >= granule && (c != seed || room[c] >= threads)) {
            order[m++] = c;
        }
    }
    for (guint i = 1; i < m; i++) {
        guint x = order[i], j = i;
        guint dx = qn_pair_distance(p, sid, g_array_index(p->usable, guint, x));

        while (j > 0) {
            guint y = order[j - 1];
            guint dy = qn_pair_distance(p, sid, g_array_index(p->usable, guint, y));

            if (dy < dx || (dy == dx && caps[y] >= caps[x])) {
                break;
            }
            order[j] = y;
            j--;
        }
        order[j] = x;
    }
    return m;
}

/* Cores of vCPU slots for the nodes of @s: to the nodes nearest to the memory first (least
 * sum of bytes x distance), each up to @room (vCPUs) / threads. A node left without vCPUs is a
 * memory-only guest node, as the memory a vCPU's node spills to under Linux's local-first
 * policy; every vCPU is on a guest node with memory. */
static gboolean
qn_locality_cores(const QnPlanner *p, QnSplit *s, const guint *room, guint cores, guint threads)
{
    g_autofree double *cost = g_new0(double, s->n);
    g_autofree guint *by_cost = g_new0(guint, s->n);
    guint left = cores;

    for (guint i = 0; i < s->n; i++) {
        s->cores[i] = 0;
        by_cost[i] = i;
        for (guint j = 0; j < s->n; j++) {
            cost[i] += (double)s->bytes[j] * qn_pair_distance(p, s->set[i], s->set[j]);
        }
    }
    for (guint i = 1; i < s->n; i++) {
        for (guint j = i; j > 0 && cost[by_cost[j]] < cost[by_cost[j - 1]]; j--) {
            guint t = by_cost[j];

            by_cost[j] = by_cost[j - 1];
            by_cost[j - 1] = t;
        }
    }
    for (guint k = 0; k < s->n && left > 0; k++) {
        guint i = by_cost[k];
        guint add = MIN(left, room[i] / threads);

        s->cores[i] += add;
        left -= add;
    }
    return left == 0;
}

/* When the nodes holding the memory have too few vCPU slots (dedicated pCPUs taken), add the
 * next nearest nodes with slots, each with one @granule of memory taken from the largest part
 * (a guest node's vCPUs need memory on their node). */
static void
qn_locality_add_cpu_nodes(const QnPlanner *p, QnSplit *s, const guint *order, guint cands,
                          const guint *room, guint64 granule, guint threads, guint *node_room)
{
    guint want = p->qa->smp.maxcpus / threads, have = 0;

    for (guint i = 0; i < s->n; i++) {
        have += node_room[i] / threads;
    }
    for (guint k = s->n; k < cands && have < want; k++) {
        guint big = 0;

        if (room[order[k]] < threads) {
            continue;
        }
        for (guint i = 1; i < s->n; i++) {
            big = s->bytes[i] > s->bytes[big] ? i : big;
        }
        if (s->bytes[big] < 2 * granule) {
            return;
        }
        s->bytes[big] -= granule;
        s->set[s->n] = g_array_index(p->usable, guint, order[k]);
        s->bytes[s->n] = granule;
        node_room[s->n] = room[order[k]];
        s->n++;
        have += room[order[k]] / threads;
    }
}

/* The concentrated split from usable node @seed: memory fills the nearest nodes in turn,
 * whole pages. FALSE when it does not fit. */
static gboolean
qn_locality_from(const QnPlanner *p, guint seed, const guint64 *caps, const guint *room,
                 guint64 granule, QnSplit *s)
{
    const QnSmp *smp = &p->qa->smp;
    guint threads = MAX(smp->threads, 1);
    guint m = p->usable->len;
    g_autofree guint *order = g_new0(guint, m);
    g_autofree guint *node_room = g_new0(guint, m);
    g_autofree guint *vcpus = g_new0(guint, m);
    guint cands = qn_locality_order(p, seed, caps, room, granule, threads, order);
    guint64 left = p->qa->ram_size;

    s->n = 0;
    if (cands == 0 || order[0] != seed) {
        return FALSE;
    }
    for (guint k = 0; k < cands && left > 0; k++) {
        guint64 take = MIN(caps[order[k]] / granule * granule, left);

        s->set[s->n] = g_array_index(p->usable, guint, order[k]);
        s->bytes[s->n] = take;
        node_room[s->n] = room[order[k]];
        s->n++;
        left -= take;
    }
    if (left > 0) {
        return FALSE;
    }
    qn_locality_add_cpu_nodes(p, s, order, cands, room, granule, threads, node_room);
    if (s->n < 2 || !qn_locality_cores(p, s, node_room, smp->maxcpus / threads, threads)) {
        return FALSE;
    }
    for (guint i = 0; i < s->n; i++) {
        vcpus[i] = s->cores[i] * threads;
    }
    s->dist = qn_expected_distance(p, s->n, s->set, vcpus, s->bytes);
    return TRUE;
}

/* The expected distance of the search's plan (one host node per guest node, else -1;
 * G_MAXDOUBLE when a guest node has more vCPUs than its host node has free pCPU slots). */
static double
qn_plan_expected_distance(const QnPlanner *p, const QnPlan *plan)
{
    guint n = plan->guest_nodes->len;
    g_autofree guint *set = g_new0(guint, n);
    g_autofree guint *vcpus = g_new0(guint, n);
    g_autofree guint64 *bytes = g_new0(guint64, n);

    for (guint i = 0; i < n; i++) {
        const QnGuestNode *g = g_ptr_array_index(plan->guest_nodes, i);

        if (qn_bitmap_count(g->host_nodes) != 1) {
            return -1;
        }
        set[i] = (guint)qn_bitmap_next(g->host_nodes, 0);
        vcpus[i] = qn_bitmap_count(g->vcpus);
        bytes[i] = g->bytes;
        if (p->cfg->dedicated_cpus && vcpus[i] > qn_cached_slots(p, set[i])) {
            return G_MAXDOUBLE; /* the CPU stage would refuse it: any aligned split is nearer */
        }
    }
    return qn_expected_distance(p, n, set, vcpus, bytes);
}

/* The best concentrated split over every seed on @ps pages; FALSE if none. */
static gboolean
qn_locality_best(const QnPlanner *p, guint64 ps, QnSplit *best)
{
    guint m = p->usable->len;
    g_autofree guint64 *caps = g_new0(guint64, m);
    g_autofree guint *room = g_new0(guint, m);
    g_auto(QnSplit) s = { 0, g_new0(guint, m), g_new0(guint64, m), g_new0(guint, m), 0 };
    gboolean found = FALSE;

    for (guint c = 0; c < m; c++) {
        guint id = g_array_index(p->usable, guint, c);

        caps[c] = qn_capacity(p, id, ps);
        room[c] = qn_locality_vcpu_room(p, id);
    }
    for (guint seed = 0; seed < m; seed++) {
        if (qn_locality_from(p, seed, caps, room, ps, &s) &&
            (!found || s.dist < best->dist || (s.dist == best->dist && s.n < best->n))) {
            found = TRUE;
            best->n = s.n;
            best->dist = s.dist;
            memcpy(best->set, s.set, s.n * sizeof(guint));
            memcpy(best->bytes, s.bytes, s.n * sizeof(guint64));
            memcpy(best->cores, s.cores, s.n * sizeof(guint));
        }
    }
    return found;
}

/**
 * qn_plan_stage_locality:
 * After the search: replaces p->plan, an automatic split over two or more host nodes, by the
 * concentrated split (see the top of this file) when that lowers the expected distance from
 * the guest's vCPUs to its memory. Never fails: the search's plan stays otherwise.
 */
QnStageResult
qn_plan_stage_locality(QnPlanner *p, GError **error)
{
    const QnPlan *plan = p->plan;
    const QnGuestNode *g0 = plan->guest_nodes->len ? plan->guest_nodes->pdata[0] : NULL;
    guint m = p->usable->len;
    g_auto(QnSplit) best = { 0, g_new0(guint, m), g_new0(guint64, m), g_new0(guint, m), 0 };
    g_autofree QnBitmap **vcpus = NULL;
    guint next = 0;
    double now;

    if (plan->guest_nodes->len < 2 || !qn_shape_uneven_allowed(p) || g0->page_size == 0 ||
        qn_bitmap_count(p->pci_nodes) > 0 || p->qa->ram_size % g0->page_size != 0) {
        return QN_STAGE_OK;
    }
    now = qn_plan_expected_distance(p, plan);
    if (now < 0 || !qn_locality_best(p, g0->page_size, &best) || best.dist >= now - 1e-9) {
        return QN_STAGE_OK;
    }
    vcpus = g_new0(QnBitmap *, best.n);
    for (guint i = 0; i < best.n; i++) {
        vcpus[i] = qn_bitmap_new();
        for (guint c = 0; c < best.cores[i] * MAX(p->qa->smp.threads, 1); c++) {
            qn_bitmap_set(vcpus[i], next++);
        }
    }
    {
        guint64 page_size = g0->page_size; /* g0 goes with the plan it belongs to */

        qn_plan_free(p->plan);
        p->plan = qn_shape_build_sized_plan(p, best.n, best.set, best.bytes, page_size, vcpus,
                                            "guest nodes sized to fill the nearest host node "
                                            "first (nearer memory than an even split)");
    }
    return QN_STAGE_OK;
}
