/* Memory tiers: what the guest believes about CPU-less memory (HBM, CXL) and its performance.
 *
 * Rules: a CPU-less host node is memory a CPU reaches from elsewhere (Xeon Max's HBM nodes,
 * a CXL expander): Linux puts such a node in a lower or higher memory tier than the CPUs' own
 * and demotes or promotes pages between them (mm/memory-tiers.c), from the ACPI HMAT's
 * figures when there are any. A guest node backed only by CPU-less host nodes (possible under
 * cpuless-nodes = allow) that also carries vCPUs tells the guest the opposite: that its vCPUs
 * sit next to that memory. So, when the plan also has guest nodes on host nodes with CPUs,
 * its vCPUs move to the nearest of those (SLIT; ties to the lower guest node id) and it becomes
 * a CPU-less guest node, as the host node is. A plan whose guest nodes are all CPU-less keeps
 * its vCPUs where they are (they must be somewhere) and says so.
 *
 * When every host node the plan uses publishes HMAT figures (nodeN/access0/initiators/), the
 * guest gets them: `-machine hmat=on`, each memory-only guest node's `initiator=` (its nearest
 * guest node with vCPUs: QEMU puts it in the SRAT memory affinity's proximity domain,
 * hw/acpi/hmat.c), and a `-numa hmat-lb` line per figure for each guest initiator/target pair
 * whose host initiator node is among the target host node's access0 initiators (the figures
 * the kernel gives are those of the best initiators only; other pairs are left out, which
 * QEMU 7.2 takes: measured). Only for guest layouts we create with two guest nodes or more;
 * an argv that defines its own guest topology keeps its own HMAT (libvirt's <interconnects>). */
#include "qn-planner.h"

/* Does every host node of @g lack CPUs? FALSE for a guest node without host memory. */
static gboolean
qn_tiers_cpuless(const QnPlanner *p, const QnGuestNode *g)
{
    if (qn_bitmap_count(g->host_nodes) == 0) {
        return FALSE;
    }
    QN_BITMAP_FOREACH(g->host_nodes, h) {
        const QnHostNode *n = (guint)h < p->dim ? p->node_by_id[h] : NULL;

        if (n != NULL && qn_bitmap_count(n->cpus) > 0) {
            return FALSE;
        }
    }
    return TRUE;
}

/* The largest SLIT distance between the host nodes of two guest nodes. */
static guint
qn_tiers_distance(const QnPlanner *p, const QnGuestNode *a, const QnGuestNode *b)
{
    guint d = 0;

    QN_BITMAP_FOREACH(a->host_nodes, x) {
        QN_BITMAP_FOREACH(b->host_nodes, y) {
            d = MAX(d, qn_pair_distance(p, (guint)x, (guint)y));
        }
    }
    return d;
}

/* The nearest guest node to @g among those @want selects (with vCPUs, or on CPU host nodes),
 * or %NULL. */
static QnGuestNode *
qn_tiers_nearest(const QnPlanner *p, const QnGuestNode *g, gboolean by_vcpus)
{
    QnGuestNode *best = NULL;
    guint best_d = G_MAXUINT;

    for (guint i = 0; i < p->plan->guest_nodes->len; i++) {
        QnGuestNode *o = g_ptr_array_index(p->plan->guest_nodes, i);
        gboolean ok = by_vcpus ? qn_bitmap_count(o->vcpus) > 0
                               : qn_bitmap_count(o->host_nodes) > 0 && !qn_tiers_cpuless(p, o);
        guint d;

        if (o == g || !ok) {
            continue;
        }
        d = qn_tiers_distance(p, g, o);
        if (d < best_d) {
            best_d = d;
            best = o;
        }
    }
    return best;
}

/* vCPUs of guest nodes on CPU-less host nodes go to the nearest guest node on CPU host nodes. */
static void
qn_tiers_move_vcpus(QnPlanner *p)
{
    QnPlan *plan = p->plan;
    g_autoptr(GString) moved = g_string_new(NULL);

    for (guint i = 0; i < plan->guest_nodes->len; i++) {
        QnGuestNode *g = g_ptr_array_index(plan->guest_nodes, i);
        QnGuestNode *to;

        if (qn_bitmap_count(g->vcpus) == 0 || !qn_tiers_cpuless(p, g)) {
            continue;
        }
        to = qn_tiers_nearest(p, g, FALSE);
        if (to == NULL) {
            g_string_append_printf(moved, "%sguest %u keeps its vCPUs (no guest node on host "
                                   "CPUs)", moved->len ? ", " : "", g->id);
            continue;
        }
        qn_bitmap_or(to->vcpus, g->vcpus);
        qn_bitmap_free(g->vcpus);
        g->vcpus = qn_bitmap_new();
        g_string_append_printf(moved, "%sguest %u CPU-less as its host node (vCPUs to guest %u)",
                               moved->len ? ", " : "", g->id, to->id);
    }
    if (moved->len > 0) {
        gchar *r = plan->reason ? g_strdup_printf("%s; %s", plan->reason, moved->str)
                                : g_strdup(moved->str);

        g_free(plan->reason);
        plan->reason = r;
    }
}

/* Do all host nodes of the plan publish HMAT figures? */
static gboolean
qn_tiers_have_hmat(const QnPlanner *p)
{
    for (guint i = 0; i < p->plan->guest_nodes->len; i++) {
        const QnGuestNode *g = g_ptr_array_index(p->plan->guest_nodes, i);

        QN_BITMAP_FOREACH(g->host_nodes, h) {
            const QnHostNode *n = (guint)h < p->dim ? p->node_by_id[h] : NULL;

            if (n == NULL || n->hmat_initiators == NULL ||
                qn_bitmap_count(n->hmat_initiators) == 0) {
                return FALSE;
            }
        }
    }
    return TRUE;
}

/* The hmat-lb figures of guest initiator @i to guest target @t, if the host has them. */
static gboolean
qn_tiers_pair(const QnPlanner *p, const QnGuestNode *i, const QnGuestNode *t, QnPlanHmatLb *ret)
{
    if (qn_bitmap_count(t->host_nodes) != 1 || qn_bitmap_count(i->host_nodes) != 1) {
        return FALSE; /* interleaved sets: no one figure to give */
    }
    QN_BITMAP_FOREACH(t->host_nodes, th) {
        const QnHostNode *tn = p->node_by_id[th];

        QN_BITMAP_FOREACH(i->host_nodes, ih) {
            if (!qn_bitmap_test(tn->hmat_initiators, (guint)ih)) {
                return FALSE;
            }
        }
        *ret = (QnPlanHmatLb){ i->id, t->id, tn->hmat_read_latency, tn->hmat_write_latency,
                               tn->hmat_read_bandwidth, tn->hmat_write_bandwidth };
    }
    return ret->read_latency || ret->write_latency || ret->read_bandwidth ||
           ret->write_bandwidth;
}

/* -machine hmat=on, initiators, hmat-lb figures (see the rules above). */
static void
qn_tiers_hmat(QnPlanner *p)
{
    QnPlan *plan = p->plan;

    plan->hmat = g_array_new(FALSE, FALSE, sizeof(QnPlanHmatLb));
    for (guint k = 0; k < plan->guest_nodes->len; k++) {
        QnGuestNode *g = g_ptr_array_index(plan->guest_nodes, k);
        const QnGuestNode *near = NULL;

        g->initiator = -1;
        if (qn_bitmap_count(g->vcpus) == 0 && (near = qn_tiers_nearest(p, g, TRUE)) != NULL) {
            g->initiator = (gint)near->id;
        }
    }
    for (guint a = 0; a < plan->guest_nodes->len; a++) {
        const QnGuestNode *ini = g_ptr_array_index(plan->guest_nodes, a);

        for (guint b = 0; b < plan->guest_nodes->len && qn_bitmap_count(ini->vcpus) > 0; b++) {
            const QnGuestNode *tgt = g_ptr_array_index(plan->guest_nodes, b);
            QnPlanHmatLb lb;

            if (tgt->bytes > 0 && qn_tiers_pair(p, ini, tgt, &lb)) {
                g_array_append_val(plan->hmat, lb);
            }
        }
    }
    for (guint k = 0; k < plan->guest_nodes->len && plan->hmat->len == 0; k++) {
        const QnGuestNode *g = g_ptr_array_index(plan->guest_nodes, k);

        if (g->initiator >= 0) {
            return; /* an initiator alone is worth telling */
        }
    }
    if (plan->hmat->len == 0) {
        g_clear_pointer(&plan->hmat, g_array_unref); /* nothing the guest would learn */
    }
}

/**
 * qn_plan_stage_tiers:
 * CPU-less guest nodes where the plan's host nodes are CPU-less, and the host's HMAT for the
 * guest (see the rules above). Layouts we create only (automatic, fixed, passthrough), two
 * guest nodes or more. Never fails.
 */
QnStageResult
qn_plan_stage_tiers(QnPlanner *p, GError **error)
{
    (void)error;
    if (p->kind == QN_GUEST_TOPOLOGY_USER || p->kind == QN_GUEST_TOPOLOGY_MACHINE_BACKEND ||
        p->plan->guest_nodes->len < 2) {
        return QN_STAGE_OK;
    }
    if (p->cfg->allow_cpuless_nodes) {
        qn_tiers_move_vcpus(p);
    }
    if (qn_tiers_have_hmat(p)) {
        qn_tiers_hmat(p);
    }
    return QN_STAGE_OK;
}
