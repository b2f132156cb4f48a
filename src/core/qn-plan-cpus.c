/* CPU choice: dedicated pCPUs for the vCPUs of each guest node, on the guest node's host node
 * (for a CPU-less host node, on the nearest node with free pCPUs: qn_cpu_home()).
 *
 * Rules: vCPUs pinned 1:1 to pCPUs, as KubeVirt's dedicatedCpuPlacement and Nova's
 * hw:cpu_policy=dedicated do; SMT siblings handled by the thread policy, named after Nova's
 * hw:cpu_thread_policy (prefer: any free thread; require: cores with 2+ free threads;
 * isolate: one vCPU per whole core, its siblings left idle); QEMU's other threads (the
 * emulator) either share the vCPUs' pCPUs or get one of their own (Nova
 * hw:emulator_threads_policy=isolate, libvirt <emulatorpin>). pCPUs pinned by other VMs (the
 * ledger) are never handed out. */
#include "qn-planner.h"

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

/* How many vCPUs thread policy @policy lets @node take. */
static guint
qn_pcpu_slots(const QnPlanner *p, guint node_id, const QnBitmap *busy, QnCpuThreadPolicy policy)
{
    g_autoptr(GArray) whole = NULL;
    g_autoptr(GPtrArray) cores = qn_free_cores(p, node_id, busy, &whole);
    guint slots = 0;

    for (guint i = 0; i < cores->len; i++) {
        guint n = qn_bitmap_count(cores->pdata[i]);

        switch (policy) {
        case QN_CPU_THREADS_ISOLATE: slots += g_array_index(whole, gboolean, i) ? 1 : 0; break;
        case QN_CPU_THREADS_REQUIRE: slots += n >= 2 ? n : 0; break;
        default: slots += n; break;
        }
    }
    return slots;
}

/* qn_pcpu_slots(node, taken) under the configured policy, computed once per node and plan:
 * the search asks it of every candidate node of every try. */
guint
qn_cached_slots(const QnPlanner *p, guint node_id)
{
    gpointer v;

    if (g_hash_table_lookup_extended(p->slots, GUINT_TO_POINTER(node_id), NULL, &v)) {
        return GPOINTER_TO_UINT(v);
    }
    {
        guint slots = qn_pcpu_slots(p, node_id, p->taken, p->cfg->cpu_thread_policy);

        g_hash_table_insert(p->slots, GUINT_TO_POINTER(node_id), GUINT_TO_POINTER(slots));
        return slots;
    }
}

/**
 * qn_cpu_home:
 * The host node whose pCPUs take @need dedicated vCPUs of a guest node backed by host node
 * @node_id: @node_id itself when it has CPUs (-1 if it has fewer than @need free slots); for a
 * CPU-less node (cpuless-nodes = allow: HBM, CXL or GPU memory, which the kernel onlines as
 * memory of no CPU), the nearest node with @need free slots, ties by most slots then lowest id,
 * -1 if none. Slots are counted free of @busy, or of the ledger's pCPUs when @busy is %NULL.
 * The vCPUs then reach their memory at SLIT(home, @node_id), as an unbound vCPU touching a
 * CPU-less node's memory would: the bench's GH200 left such guests to the OS, which spread their
 * vCPUs to other superchips (120 where the GPU's own Grace is at 80; issue 19).
 */
gint
qn_cpu_home(const QnPlanner *p, guint node_id, guint need, const QnBitmap *busy)
{
    const QnHostNode *node = node_id < p->dim ? p->node_by_id[node_id] : NULL;
    gint best = -1;
    guint best_d = 0, best_slots = 0;

    if (node == NULL) {
        return -1;
    }
    if (qn_bitmap_count(node->cpus) > 0) {
        guint slots = busy != NULL ? qn_pcpu_slots(p, node_id, busy, p->cfg->cpu_thread_policy)
                                   : qn_cached_slots(p, node_id);

        return slots >= need ? (gint)node_id : -1;
    }
    for (guint k = 0; k < p->topo->nodes->len; k++) {
        const QnHostNode *h = g_ptr_array_index(p->topo->nodes, k);
        guint d, slots;

        if (!h->allowed || qn_bitmap_count(h->cpus) == 0) {
            continue;
        }
        slots = busy != NULL ? qn_pcpu_slots(p, h->id, busy, p->cfg->cpu_thread_policy)
                             : qn_cached_slots(p, h->id);
        d = qn_pair_distance(p, node_id, h->id);
        if (slots < need || d >= 255) {
            continue;
        }
        if (best < 0 || d < best_d || (d == best_d && slots > best_slots)) {
            best = (gint)h->id;
            best_d = d;
            best_slots = slots;
        }
    }
    return best;
}

/* Dedicated vCPUs each host node of an @n-node try must hold: the present vCPUs (-smp cpus,
 * not the hotplug slots) of the largest guest node. */
guint
qn_cpus_needed_per_node(const QnPlanner *p, guint n)
{
    guint need = p->single ? p->qa->smp.cpus : (p->qa->smp.cpus + n - 1) / n;

    for (guint i = 0; p->shape != NULL && i < p->shape->len; i++) {
        guint present = 0;

        QN_BITMAP_FOREACH(((QnShapeNode *)p->shape->pdata[i])->vcpus, v) {
            present += (guint)v < p->qa->smp.cpus;
        }
        need = i == 0 ? present : MAX(need, present);
    }
    return need;
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

/* Pick @count pCPUs of @node for vCPUs, whole cores first, under thread policy @policy. Adds
 * what it picks, and under `isolate` the idle siblings, to @busy. Returns FALSE when the node
 * cannot. */
static gboolean
qn_pick_pcpus(const QnPlanner *p, guint node_id, guint count, QnCpuThreadPolicy policy,
              QnBitmap *busy, GArray *out)
{
    g_autoptr(GArray) whole = NULL;
    g_autoptr(GPtrArray) cores = qn_free_cores(p, node_id, busy, &whole);
    guint got = 0;

    if (qn_pcpu_slots(p, node_id, busy, policy) < count) {
        return FALSE;
    }
    if (policy == QN_CPU_THREADS_ISOLATE) {
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
        if (policy == QN_CPU_THREADS_REQUIRE && qn_bitmap_count(cores->pdata[i]) < 2) {
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

/* Give each guest node's present vCPUs pCPUs of its host node; adds them to @busy and @mine. */
static gboolean
qn_assign_vcpu_pcpus(const QnPlanner *p, QnPlan *plan, QnBitmap *busy, QnBitmap *mine,
                     gchar **ret_why)
{
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
        if (host >= 0) {
            /* a CPU-less host node's vCPUs: on the nearest node with free pCPUs */
            gint home = qn_cpu_home(p, (guint)host, count, busy);

            host = home >= 0 ? home : host;
        }
        if (host < 0 || !qn_pick_pcpus(p, (guint)host, count, p->cfg->cpu_thread_policy, busy,
                                       g->pcpus)) {
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
    return TRUE;
}

/* The emulator's pCPU: with isolate-emulator one free pCPU of its own, nearest first (the host
 * node of guest node 0, then the others of the plan); else the vCPUs' pCPUs (@mine). */
static gboolean
qn_assign_emulator(const QnPlanner *p, QnPlan *plan, QnBitmap *busy, const QnBitmap *mine,
                   gchar **ret_why)
{
    plan->emulator_pcpus = qn_bitmap_new();
    if (!p->cfg->isolate_emulator) {
        qn_bitmap_or(plan->emulator_pcpus, mine);
        return TRUE;
    }
    for (guint i = 0; i < plan->guest_nodes->len; i++) {
        QnGuestNode *g = g_ptr_array_index(plan->guest_nodes, i);
        g_autoptr(GArray) one = g_array_new(FALSE, FALSE, sizeof(guint));
        gint host = qn_bitmap_next(g->host_nodes, 0);

        if (host >= 0 && qn_cpu_home(p, (guint)host, 1, busy) >= 0) {
            host = qn_cpu_home(p, (guint)host, 1, busy);
        }
        /* any free thread will do for the emulator */
        if (host >= 0 && qn_pick_pcpus(p, (guint)host, 1, QN_CPU_THREADS_PREFER, busy, one)) {
            qn_bitmap_set(plan->emulator_pcpus, g_array_index(one, guint, 0));
            return TRUE;
        }
    }
    *ret_why = g_strdup("no free pCPU left for the isolated emulator threads");
    return FALSE;
}

/**
 * qn_plan_stage_cpus:
 * With dedicated CPUs, pins each present vCPU of p->plan to a pCPU of its guest node's host
 * node and places the emulator; records the pCPUs the VM holds. No fit when a host node lacks
 * free pCPUs under the thread policy: a fallback then leaves memory and CPUs to the OS.
 */
QnStageResult
qn_plan_stage_cpus(QnPlanner *p, GError **error)
{
    QnPlan *plan = p->plan;
    g_autoptr(QnBitmap) busy = NULL;
    g_autoptr(QnBitmap) mine = NULL;
    g_autofree gchar *why = NULL;

    if (!p->cfg->dedicated_cpus) {
        return QN_STAGE_OK;
    }
    busy = qn_bitmap_copy(p->taken);
    mine = qn_bitmap_new();
    if (!qn_assign_vcpu_pcpus(p, plan, busy, mine, &why) ||
        !qn_assign_emulator(p, plan, busy, mine, &why)) {
        qn_planner_no_fit(p, "memory and CPUs", "dedicated CPUs: %s", why);
        return QN_STAGE_NO_FIT;
    }
    plan->held_pcpus = qn_bitmap_copy(busy);
    qn_bitmap_and_not(plan->held_pcpus, p->taken);
    plan->dedicated = TRUE;
    plan->thread_policy = p->cfg->cpu_thread_policy;
    return QN_STAGE_OK;
}
