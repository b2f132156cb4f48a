#include "qn-rewrite.h"

#include <string.h>

#include "qn-json.h"
#include "qn-keyval.h"
#include "qn-size.h"

/* "host-nodes=0-1,host-nodes=4": keyval lists repeat the key, one range each. */
static void
qn_append_ranges(GString *s, const char *key, const QnBitmap *set)
{
    g_autofree gchar *list = qn_bitmap_format_list(set, ",");
    g_auto(GStrv) ranges = g_strsplit(list, ",", -1);

    for (guint i = 0; ranges[i] != NULL; i++) {
        if (ranges[i][0] != '\0') {
            g_string_append_printf(s, ",%s=%s", key, ranges[i]);
        }
    }
}

/* @text with "key=value" added. QEMU takes "node," as "node" (a trailing separator ends the
 * list), so appending ",memdev=..." there would make ",," an escaped comma inside the first
 * element: after an odd run of trailing commas the separator is already there. */
static gchar *
qn_keyval_append(const char *text, const char *key, const char *value)
{
    g_autofree gchar *v = qn_keyval_escape(value);
    gsize len = strlen(text);
    gsize commas = 0;

    while (commas < len && text[len - 1 - commas] == ',') {
        commas++;
    }
    return g_strdup_printf("%s%s%s=%s", text, commas % 2 ? "" : ",", key, v);
}

/* A -numa node line of the argv with memdev=@memdev in place of its legacy mem= (QEMU 7.2
 * refuses both together, and refuses mem= alone on machine types from 5.1 on:
 * hw/core/numa.c parse_numa_node); every other element stays in order. */
static gchar *
qn_numa_node_with_memdev(const char *text, const char *memdev)
{
    g_autoptr(QnKeyval) kv = qn_keyval_parse(text, "type", NULL);
    GString *s;

    if (kv == NULL || qn_keyval_count(kv, "mem") == 0) {
        return qn_keyval_append(text, "memdev", memdev);
    }
    s = g_string_new(NULL);
    for (guint i = 0; i < kv->items->len; i++) {
        const QnKv *e = g_ptr_array_index(kv->items, i);
        g_autofree gchar *v = qn_keyval_escape(e->value);

        if (strcmp(e->key, "mem") == 0) {
            continue;
        }
        if (i == 0 && strcmp(e->key, "type") == 0) {
            g_string_append(s, v);
        } else {
            g_string_append_printf(s, "%s%s=%s", s->len ? "," : "", e->key, v);
        }
    }
    {
        g_autofree gchar *out = g_string_free(s, FALSE);

        return qn_keyval_append(out, "memdev", memdev);
    }
}

static JsonNode *
qn_json_nodes_array(const QnBitmap *set)
{
    JsonArray *arr = json_array_new();
    JsonNode *node = json_node_new(JSON_NODE_ARRAY);

    QN_BITMAP_FOREACH(set, id) {
        json_array_add_int_element(arr, id);
    }
    json_node_take_array(node, arr);
    return node;
}

static gboolean
qn_is_memfd_only(const char *key)
{
    return !strcmp(key, "hugetlb") || !strcmp(key, "hugetlbsize") || !strcmp(key, "seal");
}

/* Keys we write ourselves on a backend we back with reserved hugepages. */
static gboolean
qn_is_owned_key(const char *key, gboolean huge)
{
    return !strcmp(key, "qom-type") || !strcmp(key, "id") || !strcmp(key, "size") ||
           !strcmp(key, "host-nodes") || !strcmp(key, "policy") ||
           (huge && (!strcmp(key, "mem-path") || !strcmp(key, "share") ||
                     !strcmp(key, "prealloc") || qn_is_memfd_only(key)));
}

static gchar *
qn_backend_keyval(const QnGuestNode *g, const char *mem_path, const QnKeyval *user)
{
    gboolean huge = g->page_size != 0;
    GString *s = g_string_new(huge ? "memory-backend-file" : "memory-backend-ram");
    g_autofree gchar *id = qn_keyval_escape(g->memdev);

    if (!huge && user != NULL) {
        g_string_assign(s, qn_keyval_get(user, "qom-type"));
    }
    g_string_append_printf(s, ",id=%s,size=%" G_GUINT64_FORMAT, id, g->bytes);
    if (huge) {
        g_autofree gchar *path = qn_keyval_escape(mem_path ? mem_path : "");

        g_string_append_printf(s, ",mem-path=%s,share=on,prealloc=on", path);
    }
    qn_append_ranges(s, "host-nodes", g->host_nodes);
    g_string_append_printf(s, ",policy=%s", qn_memory_mode_to_string(g->mode));
    for (guint i = 0; user != NULL && i < user->items->len; i++) {
        QnKv *kv = g_ptr_array_index(user->items, i);
        g_autofree gchar *k = NULL, *v = NULL;

        if (qn_is_owned_key(kv->key, huge)) {
            continue;
        }
        k = qn_keyval_escape(kv->key);
        v = qn_keyval_escape(kv->value);
        g_string_append_printf(s, ",%s=%s", k, v);
    }
    return g_string_free(s, FALSE);
}

static gchar *
qn_backend_json(const QnGuestNode *g, const char *mem_path, JsonObject *user)
{
    gboolean huge = g->page_size != 0;
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autoptr(JsonGenerator) gen = json_generator_new();
    g_autoptr(JsonNode) root = NULL;
    const char *qom_type = huge ? "memory-backend-file"
                                : qn_json_get_string(user, "qom-type",
                                                     "memory-backend-ram");
    gboolean wrote_owned = FALSE;

    json_builder_begin_object(b);
    /* Keep the user's member order (libvirt's logs stay comparable), our values in place. */
    for (GList *l = json_object_get_members(user), *h = l; l != NULL || (g_list_free(h), 0);
         l = l->next) {
        const char *key = l->data;

        if (qn_is_owned_key(key, huge)) {
            if (!strcmp(key, "qom-type")) {
                json_builder_set_member_name(b, "qom-type");
                json_builder_add_string_value(b, qom_type);
            } else if (!strcmp(key, "id")) {
                json_builder_set_member_name(b, "id");
                json_builder_add_string_value(b, g->memdev);
            }
            continue;
        }
        if (!wrote_owned && (!strcmp(key, "prealloc-context") || l->next == NULL)) {
            /* ours go before the first member we keep that usually trails */
        }
        json_builder_set_member_name(b, key);
        json_builder_add_value(b, json_node_copy(json_object_get_member(user, key)));
    }
    if (!json_object_has_member(user, "qom-type")) {
        json_builder_set_member_name(b, "qom-type");
        json_builder_add_string_value(b, qom_type);
    }
    if (huge) {
        json_builder_set_member_name(b, "mem-path");
        json_builder_add_string_value(b, mem_path ? mem_path : "");
        json_builder_set_member_name(b, "share");
        json_builder_add_boolean_value(b, TRUE);
        json_builder_set_member_name(b, "prealloc");
        json_builder_add_boolean_value(b, TRUE);
    }
    json_builder_set_member_name(b, "size");
    json_builder_add_int_value(b, (gint64)g->bytes);
    json_builder_set_member_name(b, "host-nodes");
    json_builder_add_value(b, qn_json_nodes_array(g->host_nodes));
    json_builder_set_member_name(b, "policy");
    json_builder_add_string_value(b, qn_memory_mode_to_string(g->mode));
    json_builder_end_object(b);
    root = json_builder_get_root(b);
    json_generator_set_root(gen, root);
    return json_generator_to_data(gen, NULL);
}

/* A libvirt thread-context used as prealloc-context: keep its node-affinity on our nodes. */
static gchar *
qn_thread_context_rewrite(const char *value, GHashTable *affinity)
{
    if (value[0] == '{') {
        g_autoptr(JsonNode) root = qn_json_parse_bounded(value, strlen(value), QN_JSON_MAX_DEPTH,
                                                         G_MAXSIZE, NULL);
        JsonObject *obj;
        const QnBitmap *nodes;
        g_autoptr(JsonGenerator) gen = NULL;

        if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root)) {
            return NULL;
        }
        obj = json_node_get_object(root);
        if (g_strcmp0(qn_json_get_string(obj, "qom-type", ""), "thread-context") != 0 ||
            !json_object_has_member(obj, "node-affinity")) {
            return NULL;
        }
        nodes = g_hash_table_lookup(affinity, qn_json_get_string(obj, "id", ""));
        if (nodes == NULL) {
            return NULL;
        }
        json_object_set_member(obj, "node-affinity", qn_json_nodes_array(nodes));
        gen = json_generator_new();
        json_generator_set_root(gen, root);
        return json_generator_to_data(gen, NULL);
    } else {
        g_autoptr(QnKeyval) kv = qn_keyval_parse(value, "qom-type", NULL);
        const QnBitmap *nodes;
        GString *s;

        if (kv == NULL || g_strcmp0(qn_keyval_get(kv, "qom-type"), "thread-context") != 0 ||
            qn_keyval_get(kv, "node-affinity") == NULL ||
            (nodes = g_hash_table_lookup(affinity, qn_keyval_get(kv, "id") ?: "")) == NULL) {
            return NULL;
        }
        s = g_string_new("thread-context");
        for (guint i = 1; i < kv->items->len; i++) {
            QnKv *item = g_ptr_array_index(kv->items, i);
            g_autofree gchar *k = qn_keyval_escape(item->key);
            g_autofree gchar *v = qn_keyval_escape(item->value);

            if (strcmp(item->key, "node-affinity") != 0) {
                g_string_append_printf(s, ",%s=%s", k, v);
            }
        }
        qn_append_ranges(s, "node-affinity", nodes);
        return g_string_free(s, FALSE);
    }
}

/* The -smp of a plan whose vCPU topology is ours (QnPlan.smp_ours): the argv's vCPU counts
 * with the sockets the guest nodes hold whole (src/core/qn-plan-sockets.c), in QEMU's own
 * -smp keys (docs/system/..., hw/core/machine-smp.c); %NULL when the argv's -smp stays. */
static gchar *
qn_rewrite_smp(const QnPlan *plan)
{
    const QnSmp *smp = &plan->smp;
    GString *s;

    if (!plan->smp_ours) {
        return NULL;
    }
    s = g_string_new(NULL);
    g_string_append_printf(s, "%u", smp->cpus);
    if (smp->maxcpus != smp->cpus) {
        g_string_append_printf(s, ",maxcpus=%u", smp->maxcpus);
    }
    g_string_append_printf(s, ",sockets=%u,cores=%u", smp->sockets, smp->cores);
    if (smp->threads > 1) {
        g_string_append_printf(s, ",threads=%u", smp->threads);
    }
    return g_string_free(s, FALSE);
}

/* `-numa cpu,node-id=G,socket-id=S` for every socket of a by-socket plan: the guest node of
 * each socket, said explicitly (qemu-options.hx: -numa cpu assigns CPU slots by topology
 * properties; -numa node,cpus= is the legacy form by index). Added to @numa. */
static void
qn_rewrite_numa_cpus(const QnPlan *plan, GPtrArray *numa)
{
    for (guint i = 0; plan->by_socket && i < plan->guest_nodes->len; i++) {
        const QnGuestNode *g = g_ptr_array_index(plan->guest_nodes, i);

        QN_BITMAP_FOREACH(g->sockets, sk) {
            g_ptr_array_add(numa, g_strdup_printf("cpu,node-id=%u,socket-id=%d", g->id, sk));
        }
    }
}

/* The backend of a hotplug memory device, bound to @d's host nodes with its policy: the
 * user's other properties kept in order and form (keyval stays keyval, JSON stays JSON). */
static gchar *
qn_mem_device_backend(const QnMemoryBackend *b, const QnPlanMemDevice *d)
{
    const char *policy = qn_memory_mode_to_string(d->mode);

    if (b->json) {
        g_autoptr(JsonObject) o = json_object_new();
        g_autoptr(JsonNode) root = json_node_new(JSON_NODE_OBJECT);
        g_autoptr(JsonGenerator) gen = json_generator_new();
        g_autoptr(GList) keys = json_object_get_members(b->props);

        for (GList *l = keys; l != NULL; l = l->next) {
            if (strcmp(l->data, "host-nodes") != 0 && strcmp(l->data, "policy") != 0) {
                json_object_set_member(o, l->data,
                                       json_node_copy(json_object_get_member(b->props, l->data)));
            }
        }
        json_object_set_member(o, "host-nodes", qn_json_nodes_array(d->host_nodes));
        json_object_set_string_member(o, "policy", policy);
        json_node_set_object(root, o);
        json_generator_set_root(gen, root);
        return json_generator_to_data(gen, NULL);
    } else {
        GString *s = g_string_new(qn_keyval_get(b->keyval, "qom-type"));

        for (guint i = 0; i < b->keyval->items->len; i++) {
            QnKv *kv = g_ptr_array_index(b->keyval->items, i);
            g_autofree gchar *k = NULL, *v = NULL;

            if (!strcmp(kv->key, "qom-type") || !strcmp(kv->key, "host-nodes") ||
                !strcmp(kv->key, "policy")) {
                continue;
            }
            k = qn_keyval_escape(kv->key);
            v = qn_keyval_escape(kv->value);
            g_string_append_printf(s, ",%s=%s", k, v);
        }
        qn_append_ranges(s, "host-nodes", d->host_nodes);
        g_string_append_printf(s, ",policy=%s", policy);
        return g_string_free(s, FALSE);
    }
}

/* Hotplug memory backends (pc-dimm, nvdimm, virtio-mem) bound where the plan put them
 * (src/core/qn-plan-memdev.c): their -object replaced in @replace (arg index -> value). The
 * user's own host-nodes, and devices with no guest node, are left as written. */
static void
qn_rewrite_mem_devices(const QnQemuArgv *qa, const QnPlan *plan, const char *const *mem_paths,
                       GHashTable *replace)
{
    guint k = plan->guest_nodes->len; /* the reserved devices' mem_paths follow the nodes' */

    for (guint i = 0; plan->mem_devices != NULL && i < plan->mem_devices->len; i++) {
        const QnPlanMemDevice *d = g_ptr_array_index(plan->mem_devices, i);
        const QnMemoryBackend *b = qn_qemu_argv_find_backend(qa, d->memdev);
        const char *mp = d->reserve && mem_paths != NULL ? mem_paths[k] : NULL;

        k += d->reserve;
        if (b == NULL || d->host_nodes_from_user || qn_bitmap_count(d->host_nodes) == 0 ||
            g_hash_table_contains(replace, GUINT_TO_POINTER(b->arg_index))) {
            continue;
        }
        if (d->reserve) {
            /* a guest node's backend over reserved pages, the user's other keys kept */
            QnGuestNode g = { .bytes = d->bytes, .page_size = d->page_size,
                              .host_nodes = d->host_nodes, .mode = d->mode,
                              .memdev = d->memdev };

            g_hash_table_insert(replace, GUINT_TO_POINTER(b->arg_index),
                                b->json ? qn_backend_json(&g, mp, b->props)
                                        : qn_backend_keyval(&g, mp, b->keyval));
            continue;
        }
        g_hash_table_insert(replace, GUINT_TO_POINTER(b->arg_index),
                            qn_mem_device_backend(b, d));
    }
}

/* The -device value of argv device @a moved to bus @bus (keyval or JSON as written). */
static gchar *
qn_device_on_bus(const QnArg *a, gboolean json, const char *bus)
{
    g_autoptr(JsonNode) root = NULL;

    if (!json) {
        return qn_keyval_append(a->value, "bus", bus);
    }
    root = qn_json_parse_bounded(a->value, strlen(a->value), QN_JSON_MAX_DEPTH, G_MAXSIZE, NULL);
    if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root)) {
        return g_strdup(a->value); /* the parser read it: cannot happen */
    }
    json_object_set_string_member(json_node_get_object(root), "bus", bus);
    return json_to_string(root, FALSE);
}

/* The device-locality stage's expanders (src/core/qn-plan-devices.c): their -device lines
 * (pxb-pcie + one pcie-root-port per device on q35, pxb on pc), then each moved device's new
 * -device value, all in @tail, which goes at the end of the argv; the moved devices' own
 * indexes in @moved. At the end, because QEMU creates -device lines in order and puts a device
 * without bus= on the last PCI bus it finds once an expander exists, which takes bridges only
 * ("PCI: Only PCI/PCIe bridges can be plugged into pxb-pcie", QEMU 7.2): the argv's other
 * devices must be created before it; a moved device needs its bus before it (bus= is looked up
 * by id at creation). */
static void
qn_rewrite_devices(const QnQemuArgv *qa, const QnPlan *plan, GHashTable *moved, GPtrArray *tail)
{
    g_autoptr(GPtrArray) devs = g_ptr_array_new_with_free_func(g_free);

    for (guint e = 0; plan->expanders != NULL && e < plan->expanders->len; e++) {
        const QnPlanExpander *x = &g_array_index(plan->expanders, QnPlanExpander, e);

        g_ptr_array_add(tail, g_strdup_printf("%s,id=qn-pxb%u,bus_nr=%u,numa_node=%u,bus=%s",
                                                 x->pcie ? "pxb-pcie" : "pxb", x->guest_node,
                                                 x->bus_nr, x->guest_node,
                                                 x->pcie ? "pcie.0" : "pci.0"));
    }
    for (guint i = 0; plan->pci_devices != NULL && i < plan->pci_devices->len; i++) {
        const QnPlanPciDevice *d = g_ptr_array_index(plan->pci_devices, i);
        const QnArg *a = g_ptr_array_index(qa->args, d->arg_index);
        const QnPlanExpander *x;
        g_autofree gchar *bus = NULL;
        gboolean json = a->value != NULL && a->value[0] == '{';

        if (d->user_bus != NULL) {
            continue;
        }
        x = &g_array_index(plan->expanders, QnPlanExpander, d->expander);
        if (x->pcie) {
            /* chassis/slot pairs must be unique among root ports (hw/pci/pcie.c
             * pcie_chassis_add_slot); libvirt numbers its own chassis from 1 */
            bus = g_strdup_printf("qn-rp%u", d->port);
            g_ptr_array_add(tail, g_strdup_printf("pcie-root-port,id=%s,bus=qn-pxb%u,"
                                                     "chassis=%u,slot=0", bus, x->guest_node,
                                                     0xa0 + d->port));
        } else {
            bus = g_strdup_printf("qn-pxb%u", x->guest_node);
        }
        g_ptr_array_add(devs, qn_device_on_bus(a, json, bus));
        g_hash_table_add(moved, GUINT_TO_POINTER(d->arg_index));
    }
    for (guint i = 0; i < devs->len; i++) {
        g_ptr_array_add(tail, g_steal_pointer(&devs->pdata[i]));
    }
}

/* One hmat-lb figure pair (read, write) as -numa lines: access-* when both are equal, else
 * read-* and write-*; a 0 is not given. Bandwidth in MB/s as QEMU's "M" (QEMU wants it 1MB
 * aligned: numa.c parse_numa_hmat_lb). */
static void
qn_rewrite_hmat_figure(GPtrArray *numa, const QnPlanHmatLb *lb, const char *kind,
                       guint64 read, guint64 write)
{
    gboolean bw = g_str_equal(kind, "bandwidth");
    const char *unit = bw ? "M" : "";

    if (read == write && read != 0) {
        g_ptr_array_add(numa, g_strdup_printf("hmat-lb,initiator=%u,target=%u,hierarchy=memory,"
                                              "data-type=access-%s,%s=%" G_GUINT64_FORMAT "%s",
                                              lb->initiator, lb->target, kind, kind, read,
                                              unit));
        return;
    }
    if (read != 0) {
        g_ptr_array_add(numa, g_strdup_printf("hmat-lb,initiator=%u,target=%u,hierarchy=memory,"
                                              "data-type=read-%s,%s=%" G_GUINT64_FORMAT "%s",
                                              lb->initiator, lb->target, kind, kind, read,
                                              unit));
    }
    if (write != 0) {
        g_ptr_array_add(numa, g_strdup_printf("hmat-lb,initiator=%u,target=%u,hierarchy=memory,"
                                              "data-type=write-%s,%s=%" G_GUINT64_FORMAT "%s",
                                              lb->initiator, lb->target, kind, kind, write,
                                              unit));
    }
}

/* The plan's HMAT figures (src/core/qn-plan-tiers.c) as -numa hmat-lb lines. */
static void
qn_rewrite_hmat(const QnPlan *plan, GPtrArray *numa)
{
    for (guint i = 0; plan->hmat != NULL && i < plan->hmat->len; i++) {
        const QnPlanHmatLb *lb = &g_array_index(plan->hmat, QnPlanHmatLb, i);

        qn_rewrite_hmat_figure(numa, lb, "latency", lb->read_latency, lb->write_latency);
        qn_rewrite_hmat_figure(numa, lb, "bandwidth", lb->read_bandwidth, lb->write_bandwidth);
    }
}

static void
qn_add(GStrvBuilder *b, const char *flag, const char *value)
{
    g_strv_builder_add(b, flag);
    if (value != NULL) {
        g_strv_builder_add(b, value);
    }
}

/* One rewrite under way: what qn_rewrite_argv() collects before it writes the argv. */
typedef struct {
    const QnQemuArgv *qa;
    const QnPlan *plan;
    const char *const *mem_paths;
    GPtrArray *ours;         /* -object values of our own backends */
    GPtrArray *numa;         /* -numa values */
    GHashTable *replace;     /* argv index -> the value that replaces it */
    GHashTable *affinity;    /* thread-context id -> host nodes (prealloc-context) */
    GPtrArray *tail;         /* -device values that go last (expanders, moved devices) */
    GHashTable *moved;       /* argv indexes of the devices moved to the tail */
    gboolean machine_backend;
    gchar *smp;              /* our -smp, or NULL */
} QnRewrite;

static void
qn_rewrite_clear(QnRewrite *rw)
{
    g_ptr_array_unref(rw->ours);
    g_ptr_array_unref(rw->numa);
    g_hash_table_unref(rw->replace);
    g_hash_table_unref(rw->affinity);
    g_ptr_array_unref(rw->tail);
    g_hash_table_unref(rw->moved);
    g_free(rw->smp);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(QnRewrite, qn_rewrite_clear)

/* Each guest node's backend: the user's rewritten in place (and its prealloc-context's
 * thread-context noted for its nodes), or one of ours. */
static void
qn_rewrite_backends(QnRewrite *rw)
{
    for (guint i = 0; i < rw->plan->guest_nodes->len; i++) {
        const QnGuestNode *g = g_ptr_array_index(rw->plan->guest_nodes, i);
        const char *mp = rw->mem_paths ? rw->mem_paths[i] : NULL;
        const QnMemoryBackend *ub = qn_qemu_argv_find_backend(rw->qa, g->memdev);

        if (g->bytes == 0) {
            continue;
        }
        if (ub == NULL) {
            g_ptr_array_add(rw->ours, qn_backend_keyval(g, mp, NULL));
            continue;
        }
        if (g->page_size == 0 && g->host_nodes_from_user) {
            continue; /* the user's regular-memory backend, nodes and all: untouched */
        }
        g_hash_table_insert(rw->replace, GUINT_TO_POINTER(ub->arg_index),
                            ub->json ? qn_backend_json(g, mp, ub->props)
                                     : qn_backend_keyval(g, mp, ub->keyval));
        if (json_object_has_member(ub->props, "prealloc-context")) {
            JsonNode *ctx = json_object_get_member(ub->props, "prealloc-context");

            if (JSON_NODE_HOLDS_VALUE(ctx) && json_node_get_value_type(ctx) == G_TYPE_STRING) {
                g_hash_table_insert(rw->affinity, (gpointer)json_node_get_string(ctx),
                                    g->host_nodes);
            }
        }
    }
}

/* The -numa lines: memdev= added to the user's nodes that have no memory of their own, or our
 * own node lines (-machine memory-backend= for one node), then distances and HMAT. */
static void
qn_rewrite_numa_lines(QnRewrite *rw)
{
    const QnPlan *plan = rw->plan;
    guint n = plan->guest_nodes->len;

    if (plan->guest_topology == QN_GUEST_TOPOLOGY_USER) {
        for (guint i = 0; i < n; i++) {
            const QnGuestNode *g = g_ptr_array_index(plan->guest_nodes, i);
            const QnNumaNode *un;
            const QnArg *a;

            if (g->user_node < 0 || g->bytes == 0) {
                continue;
            }
            un = g_ptr_array_index(rw->qa->numa_nodes, g->user_node);
            if (un->memdev != NULL) {
                continue;
            }
            a = g_ptr_array_index(rw->qa->args, un->arg_index);
            g_hash_table_insert(rw->replace, GUINT_TO_POINTER(un->arg_index),
                                qn_numa_node_with_memdev(a->value, g->memdev));
        }
    } else if (plan->guest_topology != QN_GUEST_TOPOLOGY_MACHINE_BACKEND) {
        if (n == 1 && plan->guest_topology != QN_GUEST_TOPOLOGY_PASSTHROUGH) {
            rw->machine_backend = TRUE;
        } else {
            for (guint i = 0; i < n; i++) {
                const QnGuestNode *g = g_ptr_array_index(plan->guest_nodes, i);
                GString *s = g_string_new(NULL);

                g_string_append_printf(s, "node,nodeid=%u", g->id);
                if (!plan->by_socket) {
                    qn_append_ranges(s, "cpus", g->vcpus);
                }
                g_string_append_printf(s, ",memdev=%s", g->memdev);
                if (plan->hmat != NULL && g->initiator >= 0) {
                    g_string_append_printf(s, ",initiator=%d", g->initiator);
                }
                g_ptr_array_add(rw->numa, g_string_free(s, FALSE));
            }
            qn_rewrite_numa_cpus(plan, rw->numa);
        }
    }
    for (guint i = 0; plan->distance != NULL && i < n; i++) {
        for (guint j = 0; j < n; j++) {
            const QnGuestNode *gi = g_ptr_array_index(plan->guest_nodes, i);
            const QnGuestNode *gj = g_ptr_array_index(plan->guest_nodes, j);

            g_ptr_array_add(rw->numa, g_strdup_printf("dist,src=%u,dst=%u,val=%u", gi->id,
                                                      gj->id, plan->distance[i * n + j]));
        }
    }
    qn_rewrite_hmat(plan, rw->numa);
}

/* Argv option @i as QEMU gets it, appended to @out (or nothing: dropped or moved). */
static void
qn_rewrite_emit_arg(QnRewrite *rw, guint i, gint first_numa, GStrvBuilder *out)
{
    const QnArg *a = g_ptr_array_index(rw->qa->args, i);
    const char *nv = g_hash_table_lookup(rw->replace, GUINT_TO_POINTER(i));
    QnGuestTopology topo = rw->plan->guest_topology;

    if (rw->smp != NULL && g_strcmp0(a->name, "smp") == 0) {
        /* ours replaces the first -smp; QEMU merges later ones into it, so they go */
        if ((gint)i == rw->qa->smp_index) {
            qn_add(out, a->flag, rw->smp);
        }
        return;
    }
    if ((gint)i == first_numa) {
        for (guint k = 0; k < rw->ours->len; k++) {
            qn_add(out, "-object", g_ptr_array_index(rw->ours, k));
        }
        g_ptr_array_set_size(rw->ours, 0);
    }
    if (g_hash_table_contains(rw->moved, GUINT_TO_POINTER(i))) {
        return; /* at the end, behind its expander */
    }
    if (topo != QN_GUEST_TOPOLOGY_USER && topo != QN_GUEST_TOPOLOGY_MACHINE_BACKEND &&
        (g_strcmp0(a->name, "mem-path") == 0 || g_strcmp0(a->name, "mem-prealloc") == 0)) {
        return; /* our backends replace them; QEMU refuses both together */
    }
    if (nv == NULL && g_strcmp0(a->name, "object") == 0 && g_hash_table_size(rw->affinity)) {
        g_autofree gchar *tc = qn_thread_context_rewrite(a->value, rw->affinity);

        if (tc != NULL) {
            qn_add(out, a->flag, tc);
            return;
        }
    }
    qn_add(out, a->flag, nv ? nv : a->value);
}

/* The argv: the user's options in their order (our backends before the first -numa), then
 * ours: the rest of our backends, -machine memory-backend=, -smp, hmat=on, -numa, devices. */
static GStrv
qn_rewrite_emit(QnRewrite *rw)
{
    g_autoptr(GStrvBuilder) out = g_strv_builder_new();
    gint first_numa = -1;

    for (guint i = 0; i < rw->qa->args->len && first_numa < 0; i++) {
        const QnArg *a = g_ptr_array_index(rw->qa->args, i);

        if (g_strcmp0(a->name, "numa") == 0) {
            first_numa = (gint)i;
        }
    }
    g_strv_builder_add(out, rw->qa->argv0);
    for (guint i = 0; i < rw->qa->args->len; i++) {
        qn_rewrite_emit_arg(rw, i, first_numa, out);
    }
    for (guint k = 0; k < rw->ours->len; k++) {
        qn_add(out, "-object", g_ptr_array_index(rw->ours, k));
    }
    if (rw->machine_backend) {
        const QnGuestNode *g = g_ptr_array_index(rw->plan->guest_nodes, 0);
        g_autofree gchar *id = qn_keyval_escape(g->memdev);
        g_autofree gchar *v = g_strdup_printf("memory-backend=%s", id);

        qn_add(out, "-machine", v);
    }
    if (rw->smp != NULL && rw->qa->smp_index < 0) {
        qn_add(out, "-smp", rw->smp);
    }
    if (rw->plan->hmat != NULL) {
        qn_add(out, "-machine", "hmat=on"); /* QEMU merges -machine options */
    }
    for (guint k = 0; k < rw->numa->len; k++) {
        qn_add(out, "-numa", g_ptr_array_index(rw->numa, k));
    }
    for (guint k = 0; k < rw->tail->len; k++) {
        qn_add(out, "-device", g_ptr_array_index(rw->tail, k));
    }
    return g_strv_builder_end(out);
}

GStrv
qn_rewrite_argv(const QnQemuArgv *qa, const QnPlan *plan, const char *const *mem_paths)
{
    g_auto(QnRewrite) rw = {
        .qa = qa,
        .plan = plan,
        .mem_paths = mem_paths,
        .ours = g_ptr_array_new_with_free_func(g_free),
        .numa = g_ptr_array_new_with_free_func(g_free),
        .replace = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free),
        .affinity = g_hash_table_new(g_str_hash, g_str_equal),
        .tail = g_ptr_array_new_with_free_func(g_free),
        .moved = g_hash_table_new(g_direct_hash, g_direct_equal),
    };

    if (plan->kind != QN_PLAN_ALIGNED) {
        return qn_qemu_argv_to_strv(qa);
    }
    rw.smp = qn_rewrite_smp(plan);
    qn_rewrite_backends(&rw);
    qn_rewrite_mem_devices(qa, plan, mem_paths, rw.replace);
    qn_rewrite_devices(qa, plan, rw.moved, rw.tail);
    qn_rewrite_numa_lines(&rw);
    return qn_rewrite_emit(&rw);
}

const char *
qn_rewrite_monitor_name(guint i)
{
    static const char *const names[QN_REWRITE_MONITORS] = { "monitor", "ctl" };

    g_assert(i < G_N_ELEMENTS(names));
    return names[i];
}

gboolean
qn_rewrite_wants_monitors(const QnPlan *plan)
{
    g_assert(plan != NULL);
    return plan->kind != QN_PLAN_PASSTHROUGH;
}

gboolean
qn_rewrite_wants_start_paused(const QnPlan *plan, const QnQemuArgv *qa)
{
    g_assert(plan != NULL && qa != NULL);
    return qn_rewrite_wants_monitors(plan) && plan->dedicated && !qa->start_paused &&
           qa->incoming == NULL;
}

GStrv
qn_rewrite_qemu_argv(const QnQemuArgv *qa, const QnPlan *plan, const QnRewriteInput *in)
{
    g_auto(GStrv) mem = NULL;
    g_autoptr(GStrvBuilder) out = g_strv_builder_new();

    g_assert(qa != NULL && plan != NULL && in != NULL);
    g_assert(!in->start_paused || in->monitor_fds != NULL);
    mem = qn_rewrite_argv(qa, plan, in->mem_paths);
    g_strv_builder_addv(out, (const char **)mem);
    for (guint i = 0; in->monitor_fds != NULL && i < QN_REWRITE_MONITORS; i++) {
        const char *name = qn_rewrite_monitor_name(i);
        g_autofree gchar *chardev = g_strdup_printf("socket,id=qn-%s,fd=%s,server=on,wait=off",
                                                    name, in->monitor_fds[i]);
        g_autofree gchar *mon = g_strdup_printf("chardev=qn-%s,mode=control", name);

        g_strv_builder_add_many(out, "-chardev", chardev, "-mon", mon, NULL);
    }
    if (in->start_paused) {
        g_strv_builder_add(out, "-S");
    }
    return g_strv_builder_end(out);
}
