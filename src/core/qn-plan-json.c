#include "qn-plan-json.h"

#include <string.h>

#include "qn-error.h"
#include "qn-json.h"

static const char *
qn_mode_name(QnMemoryMode m)
{
    return qn_memory_mode_to_string(m);
}

/* "vcpu_topology": the -smp of a by-socket plan (src/core/qn-plan-sockets.c). */
static void
qn_plan_smp_to_json(JsonBuilder *b, const QnPlan *plan)
{
    const struct {
        const char *name;
        guint value;
    } f[] = { { "cpus", plan->smp.cpus },       { "maxcpus", plan->smp.maxcpus },
              { "sockets", plan->smp.sockets }, { "dies", plan->smp.dies },
              { "clusters", plan->smp.clusters }, { "cores", plan->smp.cores },
              { "threads", plan->smp.threads } };

    json_builder_set_member_name(b, "vcpu_topology");
    json_builder_begin_object(b);
    for (guint i = 0; i < G_N_ELEMENTS(f); i++) {
        json_builder_set_member_name(b, f[i].name);
        json_builder_add_int_value(b, f[i].value);
    }
    json_builder_set_member_name(b, "ours");
    json_builder_add_boolean_value(b, plan->smp_ours);
    json_builder_end_object(b);
}

/* Reads "vcpu_topology" back; absent: not a by-socket plan (entries before issue 16). */
static gboolean
qn_plan_smp_from_json(JsonObject *o, QnPlan *plan)
{
    static const char *const names[] = { "cpus", "maxcpus", "sockets", "dies", "clusters",
                                         "cores", "threads" };
    guint *fields[] = { &plan->smp.cpus, &plan->smp.maxcpus, &plan->smp.sockets,
                        &plan->smp.dies, &plan->smp.clusters, &plan->smp.cores,
                        &plan->smp.threads };
    JsonNode *m = json_object_get_member(o, "vcpu_topology");
    JsonObject *t;

    if (m == NULL || JSON_NODE_HOLDS_NULL(m)) {
        return TRUE;
    }
    if (!JSON_NODE_HOLDS_OBJECT(m)) {
        return FALSE;
    }
    t = json_node_get_object(m);
    for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
        gint64 v;

        if (!qn_json_member_int(t, names[i], -1, &v) || v < 1 || v > 4096) {
            return FALSE;
        }
        *fields[i] = (guint)v;
    }
    plan->by_socket = TRUE;
    return qn_json_member_bool(t, "ours", FALSE, &plan->smp_ours);
}

/* "mem_devices": the argv's hotplug memory as placed (src/core/qn-plan-memdev.c). */
static void
qn_plan_mem_devices_to_json(JsonBuilder *b, const QnPlan *plan)
{
    json_builder_set_member_name(b, "mem_devices");
    json_builder_begin_array(b);
    for (guint i = 0; plan->mem_devices != NULL && i < plan->mem_devices->len; i++) {
        const QnPlanMemDevice *d = g_ptr_array_index(plan->mem_devices, i);

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "memdev");
        json_builder_add_string_value(b, d->memdev);
        json_builder_set_member_name(b, "driver");
        json_builder_add_string_value(b, d->driver);
        json_builder_set_member_name(b, "node");
        json_builder_add_int_value(b, d->node);
        json_builder_set_member_name(b, "bytes");
        json_builder_add_int_value(b, (gint64)d->bytes);
        json_builder_set_member_name(b, "page_size");
        json_builder_add_int_value(b, (gint64)d->page_size);
        json_builder_set_member_name(b, "host_nodes");
        json_builder_begin_array(b);
        QN_BITMAP_FOREACH(d->host_nodes, h) {
            json_builder_add_int_value(b, h);
        }
        json_builder_end_array(b);
        json_builder_set_member_name(b, "mode");
        json_builder_add_string_value(b, qn_mode_name(d->mode));
        json_builder_set_member_name(b, "host_nodes_from_user");
        json_builder_add_boolean_value(b, d->host_nodes_from_user);
        json_builder_set_member_name(b, "reserved");
        json_builder_add_boolean_value(b, d->reserve);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
}

/* "pci_devices": the argv's devices with a host node as placed (src/core/qn-plan-devices.c).
 * Written for people and scripts; a plan read back does not need them (never re-rewritten). */
static void
qn_plan_pci_devices_to_json(JsonBuilder *b, const QnPlan *plan)
{
    json_builder_set_member_name(b, "pci_devices");
    json_builder_begin_array(b);
    for (guint i = 0; plan->pci_devices != NULL && i < plan->pci_devices->len; i++) {
        const QnPlanPciDevice *d = g_ptr_array_index(plan->pci_devices, i);

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "driver");
        json_builder_add_string_value(b, d->driver);
        json_builder_set_member_name(b, "id");
        d->id ? json_builder_add_string_value(b, d->id) : json_builder_add_null_value(b);
        json_builder_set_member_name(b, "host_node");
        json_builder_add_int_value(b, d->host_node);
        json_builder_set_member_name(b, "guest_node");
        json_builder_add_int_value(b, d->guest_node);
        json_builder_set_member_name(b, "bus");
        if (d->user_bus != NULL) {
            json_builder_add_string_value(b, d->user_bus);
        } else {
            const QnPlanExpander *e = &g_array_index(plan->expanders, QnPlanExpander,
                                                     d->expander);
            g_autofree gchar *bus = g_strdup_printf("%s bus_nr=%u", e->pcie ? "pxb-pcie" : "pxb",
                                                    e->bus_nr);

            json_builder_add_string_value(b, bus);
        }
        json_builder_set_member_name(b, "bus_is_users");
        json_builder_add_boolean_value(b, d->user_bus != NULL);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
}

JsonNode *
qn_plan_to_json(const QnPlan *plan)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    guint n = plan->guest_nodes->len;

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "kind");
    json_builder_add_string_value(b, qn_plan_kind_to_string(plan->kind));
    json_builder_set_member_name(b, "policy");
    json_builder_add_string_value(b, qn_policy_to_string(plan->policy));
    json_builder_set_member_name(b, "memory_mode");
    json_builder_add_string_value(b, qn_mode_name(plan->mode));
    json_builder_set_member_name(b, "guest_topology");
    json_builder_add_string_value(b, qn_guest_topology_to_string(plan->guest_topology));
    json_builder_set_member_name(b, "reason");
    if (plan->reason != NULL) {
        json_builder_add_string_value(b, plan->reason);
    } else {
        json_builder_add_null_value(b);
    }
    json_builder_set_member_name(b, "mean_distance");
    json_builder_add_double_value(b, plan->mean_distance);
    json_builder_set_member_name(b, "hugetlbfs");
    if (plan->hugetlbfs != NULL) {
        json_builder_add_string_value(b, plan->hugetlbfs);
    } else {
        json_builder_add_null_value(b);
    }
    json_builder_set_member_name(b, "guest_nodes");
    json_builder_begin_array(b);
    for (guint i = 0; i < n; i++) {
        const QnGuestNode *g = g_ptr_array_index(plan->guest_nodes, i);
        g_autofree gchar *vcpus = qn_bitmap_format_list(g->vcpus, ",");

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "id");
        json_builder_add_int_value(b, g->id);
        json_builder_set_member_name(b, "vcpus");
        json_builder_add_string_value(b, vcpus);
        json_builder_set_member_name(b, "bytes");
        json_builder_add_int_value(b, (gint64)g->bytes);
        json_builder_set_member_name(b, "page_size");
        json_builder_add_int_value(b, (gint64)g->page_size);
        json_builder_set_member_name(b, "host_nodes");
        json_builder_begin_array(b);
        QN_BITMAP_FOREACH(g->host_nodes, h) {
            json_builder_add_int_value(b, h);
        }
        json_builder_end_array(b);
        json_builder_set_member_name(b, "mode");
        json_builder_add_string_value(b, qn_mode_name(g->mode));
        json_builder_set_member_name(b, "memdev");
        if (g->memdev != NULL) {
            json_builder_add_string_value(b, g->memdev);
        } else {
            json_builder_add_null_value(b); /* a guest node without memory has no backend */
        }
        json_builder_set_member_name(b, "host_nodes_from_user");
        json_builder_add_boolean_value(b, g->host_nodes_from_user);
        json_builder_set_member_name(b, "user_node");
        json_builder_add_int_value(b, g->user_node);
        json_builder_set_member_name(b, "headroom");
        json_builder_add_int_value(b, (gint64)g->headroom);
        if (plan->by_socket) {
            g_autofree gchar *sk = qn_bitmap_format_list(g->sockets, ",");

            json_builder_set_member_name(b, "sockets");
            json_builder_add_string_value(b, sk);
        }
        json_builder_set_member_name(b, "pcpus");
        json_builder_begin_array(b);
        for (guint k = 0; g->pcpus != NULL && k < g->pcpus->len; k++) {
            json_builder_add_int_value(b, g_array_index(g->pcpus, guint, k));
        }
        json_builder_end_array(b);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
    json_builder_set_member_name(b, "dedicated");
    json_builder_add_boolean_value(b, plan->dedicated);
    if (plan->dedicated) {
        g_autofree gchar *emu = qn_bitmap_format_list(plan->emulator_pcpus, ",");
        g_autofree gchar *held = qn_bitmap_format_list(plan->held_pcpus, ",");

        json_builder_set_member_name(b, "cpu_thread_policy");
        json_builder_add_string_value(b, qn_cpu_thread_policy_to_string(plan->thread_policy));
        json_builder_set_member_name(b, "emulator_pcpus");
        json_builder_add_string_value(b, emu);
        json_builder_set_member_name(b, "held_pcpus");
        json_builder_add_string_value(b, held);
    }
    if (plan->by_socket) {
        qn_plan_smp_to_json(b, plan);
    }
    qn_plan_mem_devices_to_json(b, plan);
    qn_plan_pci_devices_to_json(b, plan);
    json_builder_set_member_name(b, "distance");
    if (plan->distance != NULL) {
        json_builder_begin_array(b);
        for (guint i = 0; i < n; i++) {
            json_builder_begin_array(b);
            for (guint j = 0; j < n; j++) {
                json_builder_add_int_value(b, plan->distance[i * n + j]);
            }
            json_builder_end_array(b);
        }
        json_builder_end_array(b);
    } else {
        json_builder_add_null_value(b);
    }
    json_builder_end_object(b);
    return json_builder_get_root(b);
}

static gboolean
qn_enum_from(const char *s, const char *(*name)(guint), guint max, guint *ret)
{
    for (guint i = 0; i <= max; i++) {
        if (g_strcmp0(s, name(i)) == 0) {
            *ret = i;
            return TRUE;
        }
    }
    return FALSE;
}

static const char *
qn_kind_name(guint i)
{
    return qn_plan_kind_to_string(i);
}

static const char *
qn_policy_name(guint i)
{
    return qn_policy_to_string(i);
}

static const char *
qn_mode_name_u(guint i)
{
    return qn_memory_mode_to_string(i);
}

static const char *
qn_topo_name(guint i)
{
    return qn_guest_topology_to_string(i);
}

/* Reads "mem_devices" back; absent: none (entries before issue 16). */
static gboolean
qn_plan_mem_devices_from_json(JsonObject *o, QnPlan *plan)
{
    JsonNode *m = json_object_get_member(o, "mem_devices");
    JsonArray *a;

    if (m == NULL) {
        return TRUE;
    }
    if (!JSON_NODE_HOLDS_ARRAY(m)) {
        return FALSE;
    }
    a = json_node_get_array(m);
    for (guint i = 0; i < json_array_get_length(a); i++) {
        JsonNode *e = json_array_get_element(a, i);
        g_autoptr(QnPlanMemDevice) d = g_new0(QnPlanMemDevice, 1);
        const char *memdev, *driver, *mode;
        gint64 node, bytes, page_size;
        JsonNode *hn;
        JsonObject *eo;
        guint v;

        if (!JSON_NODE_HOLDS_OBJECT(e)) {
            return FALSE;
        }
        eo = json_node_get_object(e);
        hn = json_object_get_member(eo, "host_nodes");
        if (!qn_json_member_string(eo, "memdev", NULL, &memdev) || memdev == NULL ||
            !qn_json_member_string(eo, "driver", NULL, &driver) || driver == NULL ||
            !qn_json_member_string(eo, "mode", NULL, &mode) ||
            !qn_enum_from(mode, qn_mode_name_u, QN_MEMORY_MODE_INTERLEAVE, &v) ||
            !qn_json_member_int(eo, "node", -1, &node) || node < 0 || node > G_MAXUINT ||
            !qn_json_member_int(eo, "bytes", -1, &bytes) || bytes < 0 ||
            !qn_json_member_int(eo, "page_size", -1, &page_size) || page_size < 0 ||
            !qn_json_member_bool(eo, "host_nodes_from_user", FALSE, &d->host_nodes_from_user) ||
            !qn_json_member_bool(eo, "reserved", FALSE, &d->reserve) ||
            hn == NULL || !JSON_NODE_HOLDS_ARRAY(hn)) {
            return FALSE;
        }
        d->memdev = g_strdup(memdev);
        d->driver = g_strdup(driver);
        d->node = (guint)node;
        d->bytes = (guint64)bytes;
        d->page_size = (guint64)page_size;
        d->mode = v;
        d->host_nodes = qn_bitmap_new();
        for (guint k = 0; k < json_array_get_length(json_node_get_array(hn)); k++) {
            JsonNode *el = json_array_get_element(json_node_get_array(hn), k);
            gint64 hid;

            if (!JSON_NODE_HOLDS_VALUE(el) || json_node_get_value_type(el) != G_TYPE_INT64 ||
                (hid = json_node_get_int(el)) < 0 || hid >= 1024) {
                return FALSE;
            }
            qn_bitmap_set(d->host_nodes, (guint)hid);
        }
        g_ptr_array_add(plan->mem_devices, g_steal_pointer(&d));
    }
    return TRUE;
}

#define QN_BAD(what)                                                                      \
    do {                                                                                  \
        g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "plan: missing or invalid '%s'", what); \
        return NULL;                                                                      \
    } while (0)

QnPlan *
qn_plan_from_json(JsonNode *node, GError **error)
{
    g_autoptr(QnPlan) plan = g_new0(QnPlan, 1);
    JsonObject *o;
    JsonArray *nodes;
    JsonNode *m;
    guint v;
    const char *s;

    plan->guest_nodes = g_ptr_array_new_with_free_func((GDestroyNotify)qn_guest_node_free);
    plan->mem_devices = g_ptr_array_new_with_free_func((GDestroyNotify)qn_plan_mem_device_free);
    if (node == NULL || !JSON_NODE_HOLDS_OBJECT(node)) {
        QN_BAD("plan");
    }
    o = json_node_get_object(node);
    /* Ledger files may be hand-edited: every member is read through qn-json.h, which says
     * "wrong type" where json-glib's getters would log a critical. */
    if (!qn_json_member_string(o, "kind", NULL, &s) ||
        !qn_enum_from(s, qn_kind_name, QN_PLAN_FALLBACK, &v)) {
        QN_BAD("kind");
    }
    plan->kind = v;
    if (!qn_json_member_string(o, "policy", NULL, &s) ||
        !qn_enum_from(s, qn_policy_name, QN_POLICY_SINGLE_NUMA_NODE, &v)) {
        QN_BAD("policy");
    }
    plan->policy = v;
    if (!qn_json_member_string(o, "memory_mode", NULL, &s) ||
        !qn_enum_from(s, qn_mode_name_u, QN_MEMORY_MODE_INTERLEAVE, &v)) {
        QN_BAD("memory_mode");
    }
    plan->mode = v;
    if (!qn_json_member_string(o, "guest_topology", NULL, &s) ||
        !qn_enum_from(s, qn_topo_name, QN_GUEST_TOPOLOGY_INCOMING, &v)) {
        QN_BAD("guest_topology");
    }
    plan->guest_topology = v;
    if (!qn_json_member_string(o, "reason", NULL, &s)) {
        QN_BAD("reason");
    }
    plan->reason = g_strdup(s);
    if (!qn_json_member_string(o, "hugetlbfs", NULL, &s)) {
        QN_BAD("hugetlbfs");
    }
    plan->hugetlbfs = g_strdup(s);
    if (!qn_json_member_double(o, "mean_distance", 0.0, &plan->mean_distance)) {
        QN_BAD("mean_distance");
    }
    m = json_object_get_member(o, "guest_nodes");
    if (m == NULL || !JSON_NODE_HOLDS_ARRAY(m)) {
        QN_BAD("guest_nodes");
    }
    if (!qn_json_member_bool(o, "dedicated", FALSE, &plan->dedicated)) {
        QN_BAD("dedicated");
    }
    if (plan->dedicated) {
        const char *emu, *held;

        if (!qn_json_member_string(o, "emulator_pcpus", "", &emu) ||
            !qn_json_member_string(o, "held_pcpus", "", &held) ||
            (plan->emulator_pcpus = qn_bitmap_parse_list(emu, NULL)) == NULL ||
            (plan->held_pcpus = qn_bitmap_parse_list(held, NULL)) == NULL) {
            QN_BAD("emulator_pcpus/held_pcpus");
        }
    }
    if (!qn_plan_smp_from_json(o, plan)) {
        QN_BAD("vcpu_topology");
    }
    if (!qn_plan_mem_devices_from_json(o, plan)) {
        QN_BAD("mem_devices");
    }
    nodes = json_node_get_array(m);
    for (guint i = 0; i < json_array_get_length(nodes); i++) {
        JsonNode *e = json_array_get_element(nodes, i);
        JsonObject *go;
        g_autoptr(QnGuestNode) g = NULL;
        JsonNode *hn;
        JsonNode *pc;
        const char *vcpus, *mode, *memdev;
        gint64 id, bytes, page_size, user_node, headroom;

        if (!JSON_NODE_HOLDS_OBJECT(e)) {
            QN_BAD("guest_nodes[]");
        }
        go = json_node_get_object(e);
        hn = json_object_get_member(go, "host_nodes");
        pc = json_object_get_member(go, "pcpus");
        if (!qn_json_member_string(go, "vcpus", "", &vcpus) ||
            !qn_json_member_string(go, "mode", NULL, &mode) ||
            !qn_enum_from(mode, qn_mode_name_u, QN_MEMORY_MODE_INTERLEAVE, &v) ||
            !json_object_has_member(go, "memdev") ||
            !qn_json_member_string(go, "memdev", NULL, &memdev) ||
            !qn_json_member_int(go, "id", i, &id) || id < 0 || id > G_MAXUINT ||
            !qn_json_member_int(go, "bytes", 0, &bytes) || bytes < 0 ||
            !qn_json_member_int(go, "page_size", 0, &page_size) || page_size < 0 ||
            !qn_json_member_int(go, "user_node", -1, &user_node) || user_node < -1 ||
            !qn_json_member_int(go, "headroom", 0, &headroom) || headroom < 0 ||
            user_node > G_MAXINT || hn == NULL || !JSON_NODE_HOLDS_ARRAY(hn) ||
            (pc != NULL && !JSON_NODE_HOLDS_ARRAY(pc) && !JSON_NODE_HOLDS_NULL(pc))) {
            QN_BAD("guest_nodes[]");
        }
        g = g_new0(QnGuestNode, 1);
        g->id = (guint)id;
        g->vcpus = qn_bitmap_parse_list(vcpus, NULL);
        g->bytes = (guint64)bytes;
        g->page_size = (guint64)page_size;
        g->mode = v;
        g->memdev = g_strdup(memdev);
        g->user_node = (gint)user_node;
        g->headroom = (guint64)headroom;
        g->host_nodes = qn_bitmap_new();
        g->pcpus = g_array_new(FALSE, FALSE, sizeof(guint));
        if (g->vcpus == NULL ||
            !qn_json_member_bool(go, "host_nodes_from_user", FALSE, &g->host_nodes_from_user)) {
            QN_BAD("guest_nodes[]");
        }
        if (!qn_json_member_string(go, "sockets", "", &s) ||
            (g->sockets = qn_bitmap_parse_list(s, NULL)) == NULL) {
            QN_BAD("sockets");
        }
        for (guint k = 0; pc != NULL && JSON_NODE_HOLDS_ARRAY(pc) &&
                          k < json_array_get_length(json_node_get_array(pc));
             k++) {
            JsonNode *el = json_array_get_element(json_node_get_array(pc), k);
            gint64 c;

            if (!JSON_NODE_HOLDS_VALUE(el) || json_node_get_value_type(el) != G_TYPE_INT64) {
                QN_BAD("pcpus");
            }
            c = json_node_get_int(el);
            if (c >= 0 && c < QN_BITMAP_MAX_ID) {
                guint cu = (guint)c;

                g_array_append_val(g->pcpus, cu);
            }
        }
        for (guint k = 0; k < json_array_get_length(json_node_get_array(hn)); k++) {
            JsonNode *el = json_array_get_element(json_node_get_array(hn), k);
            gint64 hid;

            if (!JSON_NODE_HOLDS_VALUE(el) || json_node_get_value_type(el) != G_TYPE_INT64 ||
                (hid = json_node_get_int(el)) < 0 || hid >= 1024) {
                QN_BAD("host_nodes");
            }
            qn_bitmap_set(g->host_nodes, (guint)hid);
        }
        g_ptr_array_add(plan->guest_nodes, g_steal_pointer(&g));
    }
    return g_steal_pointer(&plan);
}
