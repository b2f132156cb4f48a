/* The fallback: why no aligned plan exists, and what the policy makes of it.
 *
 * Rules (policy names from the Kubernetes Topology Manager): best-effort runs the guest anyway
 * with its memory (and with dedicated CPUs, its CPUs) left to the OS, and records why in the
 * plan; restricted and single-numa-node refuse with %QN_ERROR_NO_FIT and the same why. The
 * texts of every "why" live here, so the ledger, `qemu-numa-ctl` and the errors agree. */
#include "qn-planner.h"

#include "qn-error.h"

QnPlan *
qn_plan_new_fallback(const QnPlan *from, const char *reason_format, ...)
{
    QnPlan *plan;
    va_list ap;

    g_return_val_if_fail(from != NULL, NULL);
    g_return_val_if_fail(reason_format != NULL, NULL);

    plan = g_new0(QnPlan, 1);
    plan->kind = QN_PLAN_FALLBACK;
    plan->policy = from->policy;
    plan->mode = from->mode;
    plan->guest_topology = from->guest_topology;
    plan->guest_nodes = g_ptr_array_new_with_free_func((GDestroyNotify)qn_guest_node_free);
    va_start(ap, reason_format);
    plan->reason = g_strdup_vprintf(reason_format, ap);
    va_end(ap);
    return plan;
}

/* Record that no aligned plan exists and why; a fallback leaves @left_to_os to the OS. */
void
qn_planner_no_fit(QnPlanner *p, const char *left_to_os, const char *fmt, ...)
{
    va_list ap;

    g_free(p->no_fit);
    va_start(ap, fmt);
    p->no_fit = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    p->left_to_os = left_to_os;
}

/* What a try needed, against what each usable host node has free. */
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

/* A try of @n guest nodes of @sizes did not fit: the first such try is the one described. */
void
qn_planner_note_miss(QnPlanner *p, const guint64 *sizes, guint n)
{
    if (p->why == NULL) {
        p->why = qn_describe_need(p, sizes, n);
    }
    p->tried_max = MAX(p->tried_max, n);
}

/* "-m 1025M is not a whole number of 2M pages" when -m (ours to split) is a whole number of
 * none of the hugepage sizes tried, so no hugepage try was made at all; else %NULL. A hugepage
 * guest node must be whole pages: QEMU rounds a memory-backend-file up to its page size
 * (file_ram_alloc() in system/physmem.c), which would take a page the plan did not count, and
 * the kernel refuses to size a hugetlbfs file or hugetlb memfd to anything else
 * (hugetlbfs_setattr() in fs/hugetlbfs/inode.c: EINVAL). */
static gchar *
qn_planner_unwhole_pages(const QnPlanner *p)
{
    g_autoptr(GString) sizes = g_string_new(NULL);
    g_autofree gchar *m = NULL;

    if (p->user_sizes || p->page_sizes == NULL || p->page_sizes->len == 0) {
        return NULL;
    }
    for (guint k = 0; k < p->page_sizes->len; k++) {
        guint64 ps = g_array_index(p->page_sizes, guint64, k);
        g_autofree gchar *s = qn_size_format(ps);

        if (p->qa->ram_size % ps == 0) {
            return NULL;
        }
        g_string_append_printf(sizes, "%s%s", k ? " or " : "", s);
    }
    m = qn_size_format(p->qa->ram_size);
    return g_strdup_printf("-m %s is not a whole number of %s pages", m, sizes->str);
}

/* The note of a plan on regular memory: why no hugepage plan. */
gchar *
qn_planner_regular_reason(const QnPlanner *p)
{
    g_autofree gchar *unwhole = qn_planner_unwhole_pages(p);
    const char *why = p->resv_why != NULL ? p->resv_why
                      : unwhole != NULL   ? unwhole
                      : p->page_sizes->len ? "not enough free hugepages per node"
                      : p->cfg->hugepage_size == QN_HUGEPAGE_SIZE_NONE ? "hugepage-size none"
                                                                       : "no hugetlbfs mount";

    return g_strdup_printf("no hugepage plan (%s): regular memory bound to its nodes", why);
}

/* The search found no plan: say what it tried (the first miss, the largest count, the global
 * hugepage limit) or, when it could try nothing, why not. */
QnStageResult
qn_planner_no_fit_memory(QnPlanner *p)
{
    g_autofree gchar *unwhole = NULL;

    if (p->why != NULL) {
        qn_planner_no_fit(p, "memory", "no aligned plan for %s (tried up to %u guest node%s)%s%s",
                          p->why, p->tried_max, p->tried_max == 1 ? "" : "s",
                          p->resv_why ? "; " : "", p->resv_why ? p->resv_why : "");
    } else if ((unwhole = qn_planner_unwhole_pages(p)) != NULL) {
        qn_planner_no_fit(p, "memory", "no aligned plan: %s", unwhole);
    } else {
        qn_planner_no_fit(p, "memory", "no aligned plan for no usable host node");
    }
    return QN_STAGE_NO_FIT;
}

/**
 * qn_plan_stage_outcome:
 * The last stage: the aligned plan the stages built; or, when one found no fit, the fallback
 * plan (best-effort) or %QN_ERROR_NO_FIT (other policies), both saying why.
 * Returns: (transfer full) (nullable): the plan, or %NULL with @error set.
 */
QnPlan *
qn_plan_stage_outcome(QnPlanner *p, QnStageResult result, GError **error)
{
    const QnConfig *cfg = p->cfg;
    QnPlan head = { .policy = cfg->policy, .mode = cfg->memory_mode, .guest_topology = p->kind };

    switch (result) {
    case QN_STAGE_OK:
        return g_steal_pointer(&p->plan);
    case QN_STAGE_ERROR:
        return NULL;
    case QN_STAGE_NO_FIT:
    default:
        break;
    }
    if (cfg->policy == QN_POLICY_BEST_EFFORT) {
        return qn_plan_new_fallback(&head, "%s: %s left to the OS", p->no_fit, p->left_to_os);
    }
    g_set_error(error, QN_ERROR, QN_ERROR_NO_FIT, "policy %s: %s", qn_policy_to_string(cfg->policy),
                p->no_fit);
    return NULL;
}
