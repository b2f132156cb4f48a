/* The plan's types, and qn_plan_compute(): the planner's stages in order. The stages live in
 * src/core/qn-plan-*.c and share the state of src/core/qn-planner.h. */
#include "qn-plan.h"

#include "qn-planner.h"

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
    qn_bitmap_free(g->sockets);
    g_free(g);
}

void
qn_plan_mem_device_free(QnPlanMemDevice *d)
{
    if (d == NULL) {
        return;
    }
    g_free(d->memdev);
    g_free(d->driver);
    qn_bitmap_free(d->host_nodes);
    g_free(d);
}

void
qn_plan_pci_device_free(QnPlanPciDevice *d)
{
    if (d == NULL) {
        return;
    }
    g_free(d->driver);
    g_free(d->id);
    g_free(d->user_bus);
    g_free(d);
}

void
qn_plan_free(QnPlan *plan)
{
    if (plan == NULL) {
        return;
    }
    g_ptr_array_unref(plan->guest_nodes);
    if (plan->mem_devices != NULL) {
        g_ptr_array_unref(plan->mem_devices);
    }
    if (plan->pci_devices != NULL) {
        g_ptr_array_unref(plan->pci_devices);
    }
    if (plan->expanders != NULL) {
        g_array_unref(plan->expanders);
    }
    g_free(plan->devices_note);
    if (plan->hmat != NULL) {
        g_array_unref(plan->hmat);
    }
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
                                         "machine-backend", "incoming" };

    return names[t];
}

QnPlan *
qn_plan_new(const QnConfig *cfg, QnPlanKind kind)
{
    QnPlan *plan = g_new0(QnPlan, 1);

    plan->kind = kind;
    plan->policy = cfg->policy;
    plan->mode = cfg->memory_mode;
    plan->guest_nodes = g_ptr_array_new_with_free_func((GDestroyNotify)qn_guest_node_free);
    plan->mem_devices = g_ptr_array_new_with_free_func((GDestroyNotify)qn_plan_mem_device_free);
    plan->pci_devices = g_ptr_array_new_with_free_func((GDestroyNotify)qn_plan_pci_device_free);
    plan->expanders = g_array_new(FALSE, FALSE, sizeof(QnPlanExpander));
    return plan;
}

/* The planner, stage by stage. Each reads and fills the QnPlanner; the first that finds no
 * aligned plan or an error ends the list, and qn_plan_stage_outcome() turns that into the
 * fallback plan or the error. A new rule (sockets, hotplug, devices, migration) is a new line
 * here or a rule inside one stage. */
static const QnPlanStage qn_plan_stages[] = {
    qn_plan_stage_shape,     /* guest nodes, sizes, page sizes and node counts to try */
    qn_plan_stage_incoming,  /* -incoming: the argv alone decides the guest layout */
    qn_plan_stage_search,    /* host nodes for each guest node: the aligned plan */
    qn_plan_stage_locality,  /* or the split that fills the nearest node first, if nearer */
    qn_plan_stage_mount,     /* the hugetlbfs mount of its hugepages */
    qn_plan_stage_tiers,     /* CPU-less host nodes as CPU-less guest nodes; the host's HMAT */
    qn_plan_stage_sockets,   /* whole guest sockets per guest node; -smp if ours */
    qn_plan_stage_mem_devices, /* hotplug memory bound to its guest node's host nodes */
    qn_plan_stage_devices,   /* PCI devices behind an expander bus of their guest node */
    qn_plan_stage_cpus,      /* dedicated pCPUs for vCPUs and emulator */
    qn_plan_stage_distances, /* the guest's SLIT */
    qn_plan_stage_incoming_note, /* -incoming: the plan says why its layout is the argv's */
};

QnPlan *
qn_plan_compute(const QnTopology *topo, const QnReservations *resv, const QnQemuArgv *qa,
                const QnConfig *cfg, GError **error)
{
    g_auto(QnPlanner) p = { 0 };
    QnStageResult result = QN_STAGE_OK;

    g_return_val_if_fail(qa != NULL, NULL);
    g_return_val_if_fail(cfg != NULL, NULL);

    /* A probe or policy none plans nothing: the launcher reads no topology for it (NULL) */
    if (cfg->policy == QN_POLICY_NONE || qa->probe) {
        /* no topology needed: qn_launch_prepare() passes none for these */
        QnPlan *plan = qn_plan_new(cfg, QN_PLAN_PASSTHROUGH);

        plan->reason = g_strdup(qa->probe ? qa->probe_reason : "policy none");
        return plan;
    }
    g_return_val_if_fail(topo != NULL, NULL);
    qn_planner_init(&p, topo, resv, qa, cfg);
    for (guint i = 0; i < G_N_ELEMENTS(qn_plan_stages) && result == QN_STAGE_OK; i++) {
        result = qn_plan_stages[i](&p, error);
    }
    return qn_plan_stage_outcome(&p, result, error);
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

        if (g->memdev == NULL && g->bytes == 0) {
            /* the argv's memory-less node: nothing of ours behind it */
            g_string_append_printf(s, "%s guest %u -> no memory (vCPUs %s)", i ? ";" : "", g->id,
                                   vcpus[0] ? vcpus : "-");
            continue;
        }
        g_string_append_printf(s, "%s guest %u -> host %s (%s in %s pages, %s, vCPUs %s",
                               i ? ";" : "", g->id, hosts[0] ? hosts : "-", bytes, ps,
                               qn_memory_mode_to_string(g->mode), vcpus[0] ? vcpus : "-");
        if (plan->by_socket) {
            g_autofree gchar *sk = qn_bitmap_format_list(g->sockets, ",");

            g_string_append_printf(s, " in sockets %s", sk[0] ? sk : "-");
        }
        if (g->pcpus != NULL && g->pcpus->len > 0) {
            g_string_append(s, " on pCPUs ");
            for (guint k = 0; k < g->pcpus->len; k++) {
                g_string_append_printf(s, "%s%u", k ? "," : "", g_array_index(g->pcpus, guint, k));
            }
        }
        g_string_append_c(s, ')');
    }
    if (plan->by_socket) {
        g_string_append_printf(s, "; vCPU topology %s: sockets=%u,cores=%u,threads=%u, whole "
                               "sockets per guest node", plan->smp_ours ? "ours" : "the argv's",
                               plan->smp.sockets, plan->smp.cores, plan->smp.threads);
    }
    for (guint i = 0; plan->mem_devices != NULL && i < plan->mem_devices->len; i++) {
        const QnPlanMemDevice *d = g_ptr_array_index(plan->mem_devices, i);
        g_autofree gchar *hosts = qn_bitmap_format_list(d->host_nodes, ",");
        g_autofree gchar *bytes = qn_size_format(d->bytes);
        g_autofree gchar *ps = d->page_size ? qn_size_format(d->page_size) : g_strdup("4K");

        g_string_append_printf(s, "; %s %s -> guest %u, host %s (%s in %s pages, %s%s)",
                               d->driver, d->memdev, d->node, hosts[0] ? hosts : "unbound",
                               bytes, ps, qn_memory_mode_to_string(d->mode),
                               d->reserve ? ", reserved" : "");
    }
    for (guint i = 0; i < plan->guest_nodes->len; i++) {
        const QnGuestNode *g = g_ptr_array_index(plan->guest_nodes, i);
        g_autofree gchar *hosts = qn_bitmap_format_list(g->host_nodes, ",");
        g_autofree gchar *bytes = qn_size_format(g->headroom);
        g_autofree gchar *ps = g->page_size ? qn_size_format(g->page_size) : g_strdup("4K");

        if (g->headroom > 0) {
            g_string_append_printf(s, "; hotplug headroom held for guest %u on host %s (%s in "
                                   "%s pages)", g->id, hosts, bytes, ps);
        }
    }
    for (guint i = 0; plan->pci_devices != NULL && i < plan->pci_devices->len; i++) {
        const QnPlanPciDevice *d = g_ptr_array_index(plan->pci_devices, i);
        const char *name = d->id ? d->id : d->driver;

        if (d->user_bus != NULL) {
            g_string_append_printf(s, "; device %s (host node %u) on the argv's bus=%s: left "
                                   "there", name, d->host_node, d->user_bus);
        } else {
            const QnPlanExpander *e = &g_array_index(plan->expanders, QnPlanExpander,
                                                     d->expander);

            g_string_append_printf(s, "; device %s (host node %u) -> guest %u behind %s "
                                   "bus_nr=%u", name, d->host_node, d->guest_node,
                                   e->pcie ? "pxb-pcie" : "pxb", e->bus_nr);
        }
    }
    if (plan->hmat != NULL) {
        g_string_append_printf(s, "; HMAT: hmat=on, %u initiator/target pair%s from the host",
                               plan->hmat->len, plan->hmat->len == 1 ? "" : "s");
        for (guint i = 0; i < plan->guest_nodes->len; i++) {
            const QnGuestNode *g = g_ptr_array_index(plan->guest_nodes, i);

            if (g->initiator >= 0) {
                g_string_append_printf(s, ", guest %u initiator %d", g->id, g->initiator);
            }
        }
    }
    if (plan->devices_note != NULL) {
        g_string_append_printf(s, "; devices: %s", plan->devices_note);
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
