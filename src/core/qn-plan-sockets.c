/* vCPU topology: each guest node holds whole guest sockets, and hotplug slots are spread so
 * every guest node has present vCPUs.
 *
 * Rules: a guest socket shares its last-level cache (QEMU 7.2 target/i386/cpu.c describes L3
 * as shared by a die's cores in CPUID leaf 4, and -smp without dies= has one die a socket), and
 * Linux warns when the CPUs of one LLC or one core are on two nodes (arch/x86/kernel/smpboot.c
 * topology_sane(): "sched: CPU #2's llc-sibling CPU #0 is not on the same node!" and a
 * WARNING), then builds scheduler domains that do not match the memory. So a split guest gets
 * whole sockets per node: when the argv gave only a vCPU count we write -smp with as many
 * sockets as the split needs (the largest socket that divides every node's share), when it
 * gave sockets/dies/clusters/cores we keep them and split only on socket boundaries (node
 * counts above the socket count are not tried, qn_sockets_max_nodes()). The mapping is
 * written as `-numa cpu,node-id=,socket-id=` (QEMU docs/system/..., qemu-options.hx: the
 * non-legacy form of -numa node,cpus=). QEMU makes vCPUs 0..cpus-1 present at start
 * (hw/core/machine-smp.c, hw/i386/x86.c x86_cpus_init()), so with hotplug slots
 * (maxcpus > cpus) sockets are dealt to guest nodes in turn rather than in blocks: every node
 * gets present vCPUs and its share of slots, socket by socket (libvirt leaves this to the
 * user; KubeVirt spreads hotplug sockets the same way). */
#include "qn-planner.h"

static guint
qn_gcd(guint a, guint b)
{
    while (b != 0) {
        guint t = a % b;

        a = b;
        b = t;
    }
    return a;
}

/**
 * qn_sockets_max_nodes:
 * The most guest nodes our own split may make without cutting one of the argv's sockets: its
 * socket count when -smp gave sockets/dies/clusters/cores, else no limit (G_MAXUINT).
 */
guint
qn_sockets_max_nodes(const QnPlanner *p)
{
    g_assert(p != NULL && p->qa != NULL);
    return p->qa->smp.layout_given ? MAX(p->qa->smp.sockets, 1) : G_MAXUINT;
}

/* Our -smp for a split of @w vCPU slots per node (whole cores of smp.threads): sockets of the
 * largest core count dividing every node's cores, and with hotplug slots also each node's
 * share of the present cores, so the present sockets reach every node. Writes each node's
 * socket count to @quota; returns the vCPUs per socket. */
static guint
qn_sockets_ours(QnPlanner *p, const guint *w, guint n, guint *quota)
{
    QnSmp *smp = &p->plan->smp;
    guint t = MAX(smp->threads, 1);
    guint k = 0, total = 0;

    for (guint i = 0; i < n; i++) {
        k = qn_gcd(k, w[i] / t);
        total += w[i] / t;
    }
    if (smp->maxcpus > smp->cpus && smp->cpus / t >= n) {
        k = qn_gcd(k, smp->cpus / t / n);
    }
    k = MAX(k, 1);
    for (guint i = 0; i < n; i++) {
        quota[i] = w[i] / t / k;
    }
    p->plan->smp_ours = smp->sockets != total / k || smp->cores != k || smp->dies != 1 ||
                        smp->clusters != 1;
    smp->sockets = total / k;
    smp->cores = k;
    smp->dies = 1;
    smp->clusters = 1;
    return k * t;
}

/* The argv's sockets shared out in proportion to @w (the split's vCPU slots per node): each
 * node one socket at least while there are sockets, the rest in node order. Nodes past the
 * socket count get none: memory-only guest nodes, which Linux takes without complaint. */
static guint
qn_sockets_user(QnPlanner *p, const guint *w, guint n, guint *quota)
{
    const QnSmp *smp = &p->plan->smp;
    guint s = MAX(smp->sockets, 1), given = 0, wsum = 0;

    for (guint i = 0; i < n; i++) {
        wsum += w[i];
    }
    for (guint i = 0; i < n; i++) {
        quota[i] = wsum ? (guint)((guint64)s * w[i] / wsum) : 0;
        given += quota[i];
    }
    for (guint i = 0; i < n && given < s; i++) {
        if (quota[i] == 0) {
            quota[i]++;
            given++;
        }
    }
    for (guint i = 0; given < s; i = (i + 1) % n) {
        quota[i]++;
        given++;
    }
    return smp->maxcpus / s;
}

/* Socket-ids to guest nodes: in blocks (node 0 the first ones) when every vCPU is present, else
 * dealt in turn to the node furthest behind its quota, so present sockets go round first. */
static void
qn_sockets_assign(QnPlan *plan, const guint *quota, guint n, guint per_socket)
{
    g_autofree guint *got = g_new0(guint, n);
    gboolean spread = plan->smp.maxcpus > plan->smp.cpus;
    guint sockets = 0, node = 0;

    for (guint i = 0; i < n; i++) {
        sockets += quota[i];
    }
    for (guint s = 0; s < sockets; s++) {
        QnGuestNode *g;

        if (spread) {
            gint best = -1;

            for (guint i = 0; i < n; i++) {
                /* behind = got/quota smallest: compare got[i]*quota[b] < got[b]*quota[i] */
                if (got[i] < quota[i] &&
                    (best < 0 || (guint64)got[i] * quota[best] < (guint64)got[best] * quota[i])) {
                    best = (gint)i;
                }
            }
            node = (guint)best;
        } else {
            while (got[node] == quota[node]) {
                node++;
            }
        }
        got[node]++;
        g = g_ptr_array_index(plan->guest_nodes, node);
        qn_bitmap_set(g->sockets, s);
        for (guint v = s * per_socket; v < (s + 1) * per_socket; v++) {
            qn_bitmap_set(g->vcpus, v);
        }
    }
}

/* What the plan says of the rule, after any note already there. */
static void
qn_sockets_note(QnPlanner *p, guint n)
{
    QnPlan *plan = p->plan;
    g_autofree gchar *note = NULL;
    guint empty = 0;

    for (guint i = 0; i < n; i++) {
        empty += qn_bitmap_count(((QnGuestNode *)plan->guest_nodes->pdata[i])->sockets) == 0;
    }
    if (p->kind == QN_GUEST_TOPOLOGY_FIXED && p->cfg->guest_nodes > n) {
        note = g_strdup_printf("guest-nodes=%u: the argv's %u sockets make %u guest nodes",
                               p->cfg->guest_nodes, plan->smp.sockets, n);
    } else if (empty > 0 && p->qa->smp.layout_given) {
        note = g_strdup_printf("%u guest node%s without vCPUs: the argv has %u socket%s", empty,
                               empty == 1 ? "" : "s", plan->smp.sockets,
                               plan->smp.sockets == 1 ? "" : "s");
    }
    if (note != NULL) {
        gchar *r = plan->reason ? g_strdup_printf("%s; %s", plan->reason, note)
                                : g_steal_pointer(&note);

        g_free(plan->reason);
        plan->reason = r;
    }
}

/**
 * qn_plan_stage_sockets:
 * Gives each guest node of our own split whole guest sockets (see the rules above): fills
 * p->plan's smp, smp_ours, by_socket and each guest node's sockets, and redraws its vCPUs.
 * The argv's own -numa nodes, and one guest node, keep the argv's topology untouched.
 * Never fails.
 */
QnStageResult
qn_plan_stage_sockets(QnPlanner *p, GError **error)
{
    QnPlan *plan = p->plan;
    guint n = plan->guest_nodes->len;
    g_autofree guint *w = g_new0(guint, MAX(n, 1));
    g_autofree guint *quota = g_new0(guint, MAX(n, 1));
    guint per_socket;

    (void)error;
    plan->smp = p->qa->smp;
    if (p->shape != NULL || n < 2) {
        return QN_STAGE_OK;
    }
    for (guint i = 0; i < n; i++) {
        QnGuestNode *g = g_ptr_array_index(plan->guest_nodes, i);

        w[i] = qn_bitmap_count(g->vcpus);
        qn_bitmap_free(g->vcpus);
        g->vcpus = qn_bitmap_new();
    }
    per_socket = p->qa->smp.layout_given ? qn_sockets_user(p, w, n, quota)
                                         : qn_sockets_ours(p, w, n, quota);
    qn_sockets_assign(plan, quota, n, per_socket);
    plan->by_socket = TRUE;
    qn_sockets_note(p, n);
    return QN_STAGE_OK;
}
