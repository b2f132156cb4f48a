#include "qn-argv.h"

#include <string.h>

#include "qn-error.h"
#include "qn-json.h"
#include "qn-qemu-options.h"
#include "qn-size.h"

static void
qn_arg_free(gpointer p)
{
    QnArg *a = p;

    g_free(a->name);
    g_free(a->flag);
    g_free(a->value);
    g_free(a);
}

static void
qn_backend_free(gpointer p)
{
    QnMemoryBackend *b = p;

    g_free(b->qom_type);
    g_free(b->id);
    g_free(b->mem_path);
    g_free(b->policy);
    qn_bitmap_free(b->host_nodes);
    if (b->props != NULL) {
        json_object_unref(b->props);
    }
    qn_keyval_free(b->keyval);
    g_free(b);
}

static void
qn_numa_node_free(gpointer p)
{
    QnNumaNode *n = p;

    qn_bitmap_free(n->cpus);
    g_free(n->memdev);
    g_free(n);
}

void
qn_qemu_argv_free(QnQemuArgv *qa)
{
    if (qa == NULL) {
        return;
    }
    g_free(qa->argv0);
    g_ptr_array_unref(qa->args);
    g_free(qa->probe_reason);
    g_ptr_array_unref(qa->numa_nodes);
    g_ptr_array_unref(qa->numa_dists);
    g_ptr_array_unref(qa->backends);
    g_free(qa->machine_type);
    g_free(qa->machine_memory_backend);
    g_free(qa->mem_path);
    g_free(qa->name);
    g_free(qa->uuid);
    g_free(qa->incoming);
    g_free(qa->pidfile);
    g_ptr_array_unref(qa->vfio_hosts);
    g_ptr_array_unref(qa->mem_devices);
    g_ptr_array_unref(qa->pci_devices);
    g_array_unref(qa->numa_cpus);
    g_free(qa);
}

static gboolean
qn_parse_uint(const char *text, guint max, guint *ret, const char *what, GError **error)
{
    guint64 v;

    if (text == NULL || !g_ascii_string_to_unsigned(text, 10, 0, max, &v, NULL)) {
        g_set_error(error, QN_ERROR, QN_ERROR_BAD_ARGV, "%s '%s': invalid number", what,
                    text ? text : "");
        return FALSE;
    }
    *ret = (guint)v;
    return TRUE;
}

static gboolean
qn_is_help(const char *value)
{
    /* "help", "?" and QemuOpts' "driver,help" all print and exit without starting a VM. */
    return value != NULL &&
           (strcmp(value, "help") == 0 || strcmp(value, "?") == 0 ||
            g_str_has_suffix(value, ",help") || g_str_has_suffix(value, ",?") ||
            g_str_has_prefix(value, "help,"));
}

static gboolean
qn_parse_m(QnQemuArgv *qa, const char *value, GError **error)
{
    g_autoptr(QnKeyval) kv = qn_keyval_parse(value, "size", error);
    const char *s;

    if (kv == NULL) {
        return FALSE;
    }
    s = qn_keyval_get(kv, "size");
    if (s != NULL) {
        /* softmmu/vl.c parse_memory_options(): a suffix-less size is in MiB. */
        if (!qn_size_parse(s, QN_MiB, &qa->ram_size, error)) {
            g_prefix_error(error, "-m ");
            return FALSE;
        }
        if (qa->ram_size == 0) {
            g_set_error(error, QN_ERROR, QN_ERROR_BAD_ARGV, "-m '%s': memory size must be "
                        "greater than zero", s);
            return FALSE;
        }
    }
    s = qn_keyval_get(kv, "maxmem");
    if (s != NULL && !qn_size_parse(s, 1, &qa->maxmem, error)) {
        g_prefix_error(error, "-m maxmem: ");
        return FALSE;
    }
    s = qn_keyval_get(kv, "slots");
    if (s != NULL && !qn_parse_uint(s, G_MAXUINT32, &qa->slots, "-m slots", error)) {
        return FALSE;
    }
    for (guint i = 0; i < kv->items->len; i++) {
        QnKv *item = g_ptr_array_index(kv->items, i);

        if (strcmp(item->key, "size") && strcmp(item->key, "maxmem") &&
            strcmp(item->key, "slots")) {
            g_set_error(error, QN_ERROR, QN_ERROR_BAD_ARGV, "-m '%s': unknown parameter '%s'",
                        value, item->key);
            return FALSE;
        }
    }
    qa->has_m = TRUE;
    return TRUE;
}

static gboolean
qn_parse_smp(QnQemuArgv *qa, const char *value, GError **error)
{
    static const char *const keys[] = { "cpus", "maxcpus", "sockets", "dies", "clusters",
                                        "cores", "threads", "books", "drawers" };
    g_autoptr(QnKeyval) kv = qn_keyval_parse(value, "cpus", error);
    guint v[G_N_ELEMENTS(keys)] = { 0 };
    guint64 total;
    QnSmp *smp = &qa->smp;

    if (kv == NULL) {
        return FALSE;
    }
    for (guint i = 0; i < kv->items->len; i++) {
        QnKv *item = g_ptr_array_index(kv->items, i);
        gboolean known = FALSE;

        for (guint k = 0; k < G_N_ELEMENTS(keys); k++) {
            if (strcmp(item->key, keys[k]) == 0) {
                g_autofree gchar *what = g_strdup_printf("-smp %s", keys[k]);

                if (!qn_parse_uint(item->value, 4096, &v[k], what, error)) {
                    return FALSE;
                }
                known = TRUE;
            }
        }
        if (!known) {
            g_set_error(error, QN_ERROR, QN_ERROR_BAD_ARGV, "-smp '%s': unknown parameter '%s'",
                        value, item->key);
            return FALSE;
        }
    }
    smp->cpus = v[0];
    smp->maxcpus = v[1];
    smp->sockets = v[2];
    smp->dies = v[3] ? v[3] : 1;
    smp->clusters = v[4] ? v[4] : 1;
    smp->cores = v[5];
    smp->threads = v[6];
    smp->layout_given = v[2] || v[3] || v[4] || v[5];
    /* hw/core/machine-smp.c machine_parse_smp_config(), for machines that prefer cores
     * (pc/q35 >= 6.2). */
    if (smp->cpus == 0 && smp->maxcpus == 0) {
        smp->sockets = smp->sockets ? smp->sockets : 1;
        smp->cores = smp->cores ? smp->cores : 1;
        smp->threads = smp->threads ? smp->threads : 1;
    } else {
        guint maxcpus = smp->maxcpus ? smp->maxcpus : smp->cpus;

        smp->sockets = smp->sockets ? smp->sockets : 1;
        smp->threads = smp->threads ? smp->threads : 1;
        if (smp->cores == 0) {
            smp->cores = maxcpus / (smp->sockets * smp->dies * smp->clusters * smp->threads);
        }
    }
    total = (guint64)smp->sockets * smp->dies * smp->clusters * smp->cores * smp->threads;
    smp->maxcpus = smp->maxcpus ? smp->maxcpus : (guint)MIN(total, G_MAXUINT);
    smp->cpus = smp->cpus ? smp->cpus : smp->maxcpus;
    if (total != smp->maxcpus || total == 0) {
        g_set_error(error, QN_ERROR, QN_ERROR_BAD_ARGV,
                    "-smp '%s': invalid CPU topology: the product of sockets, dies, clusters, "
                    "cores and threads must equal maxcpus", value);
        return FALSE;
    }
    if (smp->cpus > smp->maxcpus) {
        g_set_error(error, QN_ERROR, QN_ERROR_BAD_ARGV,
                    "-smp '%s': maxcpus must be equal to or greater than cpus", value);
        return FALSE;
    }
    return TRUE;
}

/* -numa cpu,node-id=N[,socket-id=][,die-id=][,core-id=][,thread-id=]: kept as 5 gints
 * (-1: not given) until -smp is known (qn_resolve_numa_cpus()). */
static gboolean
qn_parse_numa_cpu(const QnKeyval *kv, const char *value, GArray *out, GError **error)
{
    static const char *const keys[] = { "node-id", "socket-id", "die-id", "core-id",
                                        "thread-id" };
    gint ids[G_N_ELEMENTS(keys)];

    for (guint k = 0; k < G_N_ELEMENTS(keys); k++) {
        const char *s = qn_keyval_get(kv, keys[k]);
        g_autofree gchar *what = g_strdup_printf("-numa cpu %s", keys[k]);
        guint v;

        ids[k] = -1;
        if (s != NULL) {
            if (!qn_parse_uint(s, 4095, &v, what, error)) {
                return FALSE;
            }
            ids[k] = (gint)v;
        }
    }
    if (ids[0] < 0) {
        g_set_error(error, QN_ERROR, QN_ERROR_BAD_ARGV, "-numa '%s': missing node-id", value);
        return FALSE;
    }
    g_array_append_vals(out, ids, G_N_ELEMENTS(ids));
    return TRUE;
}

/* The vCPUs each -numa cpu line names, added to its node's cpus. x86 numbers vCPU indexes
 * threads first, then cores, dies, sockets (hw/i386/x86.c x86_topo_ids_from_idx()); core-id
 * counts within a die. A node-id naming no -numa node is QEMU's to refuse. */
static void
qn_resolve_numa_cpus(QnQemuArgv *qa)
{
    const QnSmp *smp = &qa->smp;
    guint t = MAX(smp->threads, 1), c = MAX(smp->cores * MAX(smp->clusters, 1), 1);
    guint d = MAX(smp->dies, 1);

    for (guint e = 0; e + 5 <= qa->numa_cpus->len; e += 5) {
        const gint *ids = &g_array_index(qa->numa_cpus, gint, e);
        QnNumaNode *node = NULL;

        for (guint i = 0; i < qa->numa_nodes->len && node == NULL; i++) {
            QnNumaNode *n = g_ptr_array_index(qa->numa_nodes, i);

            node = (n->nodeid >= 0 ? n->nodeid : (gint)i) == ids[0] ? n : NULL;
        }
        for (guint v = 0; node != NULL && v < smp->maxcpus; v++) {
            gint have[] = { (gint)(v / (t * c * d)), (gint)(v / (t * c) % d),
                            (gint)(v / t % c), (gint)(v % t) };
            gboolean match = TRUE;

            for (guint k = 0; k < G_N_ELEMENTS(have); k++) {
                match &= ids[k + 1] < 0 || ids[k + 1] == have[k];
            }
            if (match) {
                qn_bitmap_set(node->cpus, v);
            }
        }
    }
}

static gboolean
qn_parse_numa(QnQemuArgv *qa, guint index, const char *value, GError **error)
{
    g_autoptr(QnKeyval) kv = qn_keyval_parse(value, "type", error);
    const char *type;

    if (kv == NULL) {
        return FALSE;
    }
    type = qn_keyval_get(kv, "type");
    if (g_strcmp0(type, "node") == 0) {
        QnNumaNode *node = g_new0(QnNumaNode, 1);
        const char *s;

        node->arg_index = index;
        node->nodeid = -1;
        node->cpus = qn_bitmap_new();
        g_ptr_array_add(qa->numa_nodes, node);
        for (guint i = 0; i < kv->items->len; i++) {
            QnKv *item = g_ptr_array_index(kv->items, i);

            if (strcmp(item->key, "cpus") == 0) {
                g_autoptr(QnBitmap) cpus = qn_bitmap_parse_list(item->value, NULL);

                /* QEMU takes one range per cpus= and repeats the key; accept lists too. */
                if (cpus == NULL) {
                    g_set_error(error, QN_ERROR, QN_ERROR_BAD_ARGV,
                                "-numa '%s': invalid cpus '%s'", value, item->value);
                    return FALSE;
                }
                qn_bitmap_or(node->cpus, cpus);
            } else if (strcmp(item->key, "type") && strcmp(item->key, "nodeid") &&
                       strcmp(item->key, "memdev") && strcmp(item->key, "mem") &&
                       strcmp(item->key, "initiator")) {
                g_set_error(error, QN_ERROR, QN_ERROR_BAD_ARGV,
                            "-numa '%s': unknown parameter '%s'", value, item->key);
                return FALSE;
            }
        }
        s = qn_keyval_get(kv, "nodeid");
        if (s != NULL) {
            guint id;

            if (!qn_parse_uint(s, G_MAXUINT, &id, "-numa node nodeid", error)) {
                return FALSE;
            }
            /* QEMU 7.2's MAX_NODES (measured: "Max number of NUMA nodes reached: 128"):
             * refused here, before any page is reserved for it. */
            if (id >= 128) {
                g_set_error(error, QN_ERROR, QN_ERROR_BAD_ARGV,
                            "-numa node nodeid '%s': QEMU allows node ids 0 to 127", s);
                return FALSE;
            }
            node->nodeid = (gint)id;
        }
        /* QEMU numbers a node without nodeid= by the count of nodes before it, and refuses a
         * number taken twice (hw/core/numa.c "Duplicate NUMA nodeid"). We must too: two guest
         * nodes with one id would get one backend id ("qn-ram<id>") and two reservations. */
        for (guint j = 0; j + 1 < qa->numa_nodes->len; j++) {
            const QnNumaNode *prev = g_ptr_array_index(qa->numa_nodes, j);
            guint prev_id = prev->nodeid >= 0 ? (guint)prev->nodeid : j;
            guint this_id = node->nodeid >= 0 ? (guint)node->nodeid : qa->numa_nodes->len - 1;

            if (prev_id == this_id) {
                g_set_error(error, QN_ERROR, QN_ERROR_BAD_ARGV,
                            "-numa '%s': duplicate NUMA nodeid %u", value, this_id);
                return FALSE;
            }
        }
        node->memdev = g_strdup(qn_keyval_get(kv, "memdev"));
        /* QEMU maps a backend once ("memory backend ... can only be used once"); two guest
         * nodes on one backend would be planned on two host nodes and rewritten as one. */
        for (guint j = 0; node->memdev != NULL && j + 1 < qa->numa_nodes->len; j++) {
            const QnNumaNode *prev = g_ptr_array_index(qa->numa_nodes, j);

            if (g_strcmp0(prev->memdev, node->memdev) == 0) {
                g_set_error(error, QN_ERROR, QN_ERROR_BAD_ARGV,
                            "-numa '%s': memdev '%s' is used by another node", value,
                            node->memdev);
                return FALSE;
            }
        }
        s = qn_keyval_get(kv, "mem");
        if (s != NULL) {
            /* hw/core/numa.c parse_numa(): legacy suffix-less mem= is in MiB. */
            if (!qn_size_parse(s, QN_MiB, &node->mem, error)) {
                g_prefix_error(error, "-numa node mem: ");
                return FALSE;
            }
            node->has_mem = TRUE;
        }
        if (node->memdev != NULL && node->has_mem) {
            g_set_error(error, QN_ERROR, QN_ERROR_BAD_ARGV,
                        "-numa '%s': mem and memdev are mutually exclusive", value);
            return FALSE;
        }
    } else if (g_strcmp0(type, "dist") == 0) {
        QnNumaDist d;

        if (!qn_parse_uint(qn_keyval_get(kv, "src"), 1023, &d.src, "-numa dist src", error) ||
            !qn_parse_uint(qn_keyval_get(kv, "dst"), 1023, &d.dst, "-numa dist dst", error) ||
            !qn_parse_uint(qn_keyval_get(kv, "val"), 255, &d.val, "-numa dist val", error)) {
            return FALSE;
        }
        g_ptr_array_add(qa->numa_dists, g_memdup2(&d, sizeof(d)));
    } else if (g_strcmp0(type, "cpu") == 0) {
        qa->has_numa_cpu = TRUE;
        return qn_parse_numa_cpu(kv, value, qa->numa_cpus, error);
    } else if (g_strcmp0(type, "hmat-lb") != 0 && g_strcmp0(type, "hmat-cache") != 0) {
        g_set_error(error, QN_ERROR, QN_ERROR_BAD_ARGV, "-numa '%s': unknown type '%s'", value,
                    type ? type : "");
        return FALSE;
    }
    return TRUE;
}

/* Values of a JSON or keyval property as a string, for both forms alike. */
static gchar *
qn_json_scalar_to_string(JsonNode *node)
{
    if (node == NULL || !JSON_NODE_HOLDS_VALUE(node)) {
        return NULL;
    }
    switch (json_node_get_value_type(node)) {
    case G_TYPE_STRING:
        return g_strdup(json_node_get_string(node));
    case G_TYPE_INT64:
        return g_strdup_printf("%" G_GINT64_FORMAT, json_node_get_int(node));
    case G_TYPE_BOOLEAN:
        return g_strdup(json_node_get_boolean(node) ? "on" : "off");
    case G_TYPE_DOUBLE:
        return g_strdup_printf("%.0f", json_node_get_double(node));
    default:
        return NULL;
    }
}

static gboolean
qn_backend_fill(QnMemoryBackend *b, const char *value, GError **error)
{
    JsonNode *n;
    g_autofree gchar *size = NULL;

    b->qom_type = g_strdup(qn_json_get_string(b->props, "qom-type", ""));
    n = json_object_get_member(b->props, "id");
    b->id = qn_json_scalar_to_string(n);
    if (b->id == NULL || b->id[0] == '\0') {
        g_set_error(error, QN_ERROR, QN_ERROR_BAD_ARGV, "-object '%s': missing id", value);
        return FALSE;
    }
    n = json_object_get_member(b->props, "size");
    size = qn_json_scalar_to_string(n);
    if (size == NULL) {
        g_set_error(error, QN_ERROR, QN_ERROR_BAD_ARGV, "-object '%s': missing size", value);
        return FALSE;
    }
    /* QAPI 'size' properties take bytes when there is no suffix. */
    if (!qn_size_parse(size, 1, &b->size, error)) {
        g_prefix_error(error, "-object %s size: ", b->id);
        return FALSE;
    }
    if (b->size == 0) {
        g_set_error(error, QN_ERROR, QN_ERROR_BAD_ARGV, "-object %s size '%s': must be greater "
                    "than zero", b->id, size);
        return FALSE;
    }
    b->mem_path = qn_json_scalar_to_string(json_object_get_member(b->props, "mem-path"));
    b->policy = qn_json_scalar_to_string(json_object_get_member(b->props, "policy"));
    if (b->policy != NULL && strcmp(b->policy, "default") && strcmp(b->policy, "preferred") &&
        strcmp(b->policy, "bind") && strcmp(b->policy, "interleave")) {
        g_set_error(error, QN_ERROR, QN_ERROR_BAD_ARGV, "-object %s policy '%s': invalid policy",
                    b->id, b->policy);
        return FALSE;
    }
    n = json_object_get_member(b->props, "host-nodes");
    if (n != NULL) {
        b->host_nodes = qn_bitmap_new();
        if (JSON_NODE_HOLDS_ARRAY(n)) {
            JsonArray *arr = json_node_get_array(n);

            for (guint i = 0; i < json_array_get_length(arr); i++) {
                JsonNode *e = json_array_get_element(arr, i);

                if (!JSON_NODE_HOLDS_VALUE(e) || json_node_get_value_type(e) != G_TYPE_INT64 ||
                    json_node_get_int(e) < 0 || json_node_get_int(e) >= 1024) {
                    g_set_error(error, QN_ERROR, QN_ERROR_BAD_ARGV,
                                "-object %s host-nodes: invalid node id", b->id);
                    return FALSE;
                }
                qn_bitmap_set(b->host_nodes, (guint)json_node_get_int(e));
            }
        } else if (b->keyval != NULL) {
            /* keyval: host-nodes=0-1 and repeated host-nodes=0,host-nodes=2 both work. */
            for (guint i = 0; i < b->keyval->items->len; i++) {
                QnKv *item = g_ptr_array_index(b->keyval->items, i);
                g_autoptr(QnBitmap) part = NULL;

                if (strcmp(item->key, "host-nodes") != 0) {
                    continue;
                }
                part = qn_bitmap_parse_list(item->value, NULL);
                if (part == NULL) {
                    g_set_error(error, QN_ERROR, QN_ERROR_BAD_ARGV,
                                "-object %s host-nodes '%s': invalid node list", b->id,
                                item->value);
                    return FALSE;
                }
                qn_bitmap_or(b->host_nodes, part);
            }
        } else {
            g_set_error(error, QN_ERROR, QN_ERROR_BAD_ARGV,
                        "-object %s host-nodes: must be an array of node ids", b->id);
            return FALSE;
        }
    }
    return TRUE;
}

static gboolean
qn_parse_object(QnQemuArgv *qa, guint index, const char *value, GError **error)
{
    g_autoptr(JsonObject) props = NULL;
    g_autoptr(QnKeyval) kv = NULL;
    const char *qom_type;
    QnMemoryBackend *b;

    if (value[0] == '{') {
        g_autoptr(GError) local = NULL;
        g_autoptr(JsonNode) root = NULL;

        /* Bounded like every JSON we parse: Linux caps one argument at 128 KiB
         * (MAX_ARG_STRLEN), so only the depth limit matters here. */
        root = qn_json_parse_bounded(value, strlen(value), QN_JSON_MAX_DEPTH, G_MAXSIZE, &local);
        if (root == NULL) {
            g_set_error(error, QN_ERROR, QN_ERROR_BAD_ARGV, "-object '%s': invalid JSON: %s",
                        value, local->message);
            return FALSE;
        }
        if (!JSON_NODE_HOLDS_OBJECT(root)) {
            g_set_error(error, QN_ERROR, QN_ERROR_BAD_ARGV, "-object '%s': not a JSON object",
                        value);
            return FALSE;
        }
        props = json_object_ref(json_node_get_object(root));
    } else {
        kv = qn_keyval_parse(value, "qom-type", error);
        if (kv == NULL) {
            return FALSE;
        }
        props = json_object_new();
        for (guint i = 0; i < kv->items->len; i++) {
            QnKv *item = g_ptr_array_index(kv->items, i);

            json_object_set_string_member(props, item->key, item->value);
        }
    }
    qom_type = qn_json_get_string(props, "qom-type", NULL);
    if (qom_type == NULL || qom_type[0] == '\0') {
        g_set_error(error, QN_ERROR, QN_ERROR_BAD_ARGV, "-object '%s': missing qom-type", value);
        return FALSE;
    }
    if (!g_str_has_prefix(qom_type, "memory-backend-")) {
        return TRUE;
    }
    b = g_new0(QnMemoryBackend, 1);
    b->arg_index = index;
    b->json = kv == NULL;
    b->props = g_steal_pointer(&props);
    b->keyval = g_steal_pointer(&kv);
    g_ptr_array_add(qa->backends, b);
    if (!qn_backend_fill(b, value, error)) {
        return FALSE;
    }
    for (guint i = 0; i + 1 < qa->backends->len; i++) {
        QnMemoryBackend *other = g_ptr_array_index(qa->backends, i);

        if (strcmp(other->id, b->id) == 0) {
            g_set_error(error, QN_ERROR, QN_ERROR_BAD_ARGV, "-object: duplicate id '%s'", b->id);
            return FALSE;
        }
    }
    return TRUE;
}

static gboolean
qn_parse_machine(QnQemuArgv *qa, const char *value, GError **error)
{
    g_autoptr(QnKeyval) kv = qn_keyval_parse(value, "type", error);
    const char *s;

    if (kv == NULL) {
        return FALSE;
    }
    s = qn_keyval_get(kv, "type");
    if (s != NULL) {
        g_free(qa->machine_type);
        qa->machine_type = g_strdup(s);
    }
    s = qn_keyval_get(kv, "memory-backend");
    if (s != NULL) {
        g_free(qa->machine_memory_backend);
        qa->machine_memory_backend = g_strdup(s);
    }
    return TRUE;
}

static void
qn_mem_device_free(gpointer ptr)
{
    QnMemDevice *d = ptr;

    g_free(d->driver);
    g_free(d->memdev);
    g_free(d);
}

static void
qn_pci_device_arg_free(gpointer p)
{
    QnPciDeviceArg *d = p;

    g_free(d->driver);
    g_free(d->id);
    g_free(d->bus);
    g_free(d->vfio_address);
    g_free(d);
}

static gboolean
qn_is_mem_device(const char *driver)
{
    return !g_strcmp0(driver, "pc-dimm") || !g_strcmp0(driver, "nvdimm") ||
           !g_strcmp0(driver, "virtio-mem-pci") || !g_strcmp0(driver, "virtio-mem");
}

/* The PCI address of a vfio-pci device: host= ("3b:00.0" means domain 0, sysfs names carry
 * the domain), or the last element of sysfsdev= (hw/vfio/pci.c takes either). */
static gchar *
qn_vfio_address(const char *host, const char *sysfsdev)
{
    if (host != NULL) {
        return strchr(host, ':') == strrchr(host, ':') ? g_strdup_printf("0000:%s", host)
                                                       : g_strdup(host);
    }
    if (sysfsdev != NULL && strrchr(sysfsdev, '/') != NULL && strrchr(sysfsdev, '/')[1]) {
        return g_strdup(strrchr(sysfsdev, '/') + 1);
    }
    return NULL;
}

/* -device: we only look for vfio-pci host=/sysfsdev= and hotplug memory devices; a malformed
 * -device is QEMU's to report. */
static void
qn_parse_device(QnQemuArgv *qa, guint index, const char *value)
{
    static const char *const keys[] = { "driver", "host", "sysfsdev", "memdev", "node", "id",
                                        "bus" };
    gchar *v[G_N_ELEMENTS(keys)] = { NULL };
    g_autofree gchar *addr = NULL;

    if (value[0] == '{') {
        g_autoptr(JsonNode) root = NULL;

        root = qn_json_parse_bounded(value, strlen(value), QN_JSON_MAX_DEPTH, G_MAXSIZE, NULL);
        if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root)) {
            return;
        }
        for (guint k = 0; k < G_N_ELEMENTS(keys); k++) {
            v[k] = qn_json_scalar_to_string(
                json_object_get_member(json_node_get_object(root), keys[k]));
        }
    } else {
        g_autoptr(QnKeyval) kv = qn_keyval_parse(value, "driver", NULL);

        if (kv == NULL) {
            return;
        }
        for (guint k = 0; k < G_N_ELEMENTS(keys); k++) {
            v[k] = g_strdup(qn_keyval_get(kv, keys[k]));
        }
    }
    if (v[0] != NULL && !qn_is_mem_device(v[0])) {
        QnPciDeviceArg *d = g_new0(QnPciDeviceArg, 1);

        d->arg_index = index;
        d->json = value[0] == '{';
        d->driver = g_strdup(v[0]);
        d->id = g_strdup(v[5]);
        d->bus = g_strdup(v[6]);
        if (g_strcmp0(v[0], "vfio-pci") == 0) {
            d->vfio_address = qn_vfio_address(v[1], v[2]);
        }
        g_ptr_array_add(qa->pci_devices, d);
    }
    if (g_strcmp0(v[0], "vfio-pci") == 0 && (addr = qn_vfio_address(v[1], v[2])) != NULL) {
        g_ptr_array_add(qa->vfio_hosts, g_steal_pointer(&addr));
    } else if (qn_is_mem_device(v[0])) {
        QnMemDevice *d = g_new0(QnMemDevice, 1);
        guint64 node = 0;

        d->arg_index = index;
        d->driver = g_strdup(v[0]);
        d->memdev = g_strdup(v[3]);
        if (v[4] != NULL && !g_ascii_string_to_unsigned(v[4], 10, 0, 1023, &node, NULL)) {
            node = G_MAXUINT; /* QEMU refuses it; we bind it nowhere */
        }
        d->node = (guint)node;
        g_ptr_array_add(qa->mem_devices, d);
    }
    for (guint k = 0; k < G_N_ELEMENTS(keys); k++) {
        g_free(v[k]);
    }
}

static void
qn_mark_probe(QnQemuArgv *qa, const char *flag, const char *value)
{
    if (!qa->probe) {
        qa->probe = TRUE;
        qa->probe_reason = value ? g_strdup_printf("%s %s", flag, value) : g_strdup(flag);
    }
}

/* Interpret one option we own; everything else is only kept. */
static gboolean
qn_interpret(QnQemuArgv *qa, guint index, const QnArg *a, GError **error)
{
    const char *n = a->name;
    const char *v = a->value;

    if (n == NULL) {
        return TRUE;
    }
    if (!strcmp(n, "m")) {
        return qn_parse_m(qa, v, error);
    }
    if (!strcmp(n, "smp")) {
        qa->smp_index = qa->smp_index < 0 ? (gint)index : qa->smp_index;
        return qn_parse_smp(qa, v, error);
    }
    if (!strcmp(n, "numa")) {
        return qn_parse_numa(qa, index, v, error);
    }
    if (!strcmp(n, "object")) {
        return qn_parse_object(qa, index, v, error);
    }
    if (!strcmp(n, "machine") || !strcmp(n, "M")) {
        return qn_parse_machine(qa, v, error);
    }
    if (!strcmp(n, "device")) {
        qn_parse_device(qa, index, v);
    } else if (!strcmp(n, "mem-path")) {
        g_free(qa->mem_path);
        qa->mem_path = g_strdup(v);
    } else if (!strcmp(n, "mem-prealloc")) {
        qa->mem_prealloc = TRUE;
    } else if (!strcmp(n, "name")) {
        g_autoptr(QnKeyval) kv = qn_keyval_parse(v, "guest", NULL);

        g_free(qa->name);
        qa->name = kv ? g_strdup(qn_keyval_get(kv, "guest")) : NULL;
    } else if (!strcmp(n, "uuid")) {
        g_free(qa->uuid);
        qa->uuid = g_strdup(v);
    } else if (!strcmp(n, "S")) {
        qa->start_paused = TRUE;
    } else if (!strcmp(n, "incoming")) {
        g_free(qa->incoming);
        qa->incoming = g_strdup(v);
    } else if (!strcmp(n, "daemonize")) {
        qa->daemonize = TRUE;
    } else if (!strcmp(n, "pidfile")) {
        g_free(qa->pidfile);
        qa->pidfile = g_strdup(v);
    }
    return TRUE;
}

QnQemuArgv *
qn_qemu_argv_parse(const char *const *argv, GError **error)
{
    g_autoptr(QnQemuArgv) qa = g_new0(QnQemuArgv, 1);

    g_return_val_if_fail(argv != NULL && argv[0] != NULL, NULL);
    qa->argv0 = g_strdup(argv[0]);
    qa->args = g_ptr_array_new_with_free_func(qn_arg_free);
    qa->numa_nodes = g_ptr_array_new_with_free_func(qn_numa_node_free);
    qa->numa_dists = g_ptr_array_new_with_free_func(g_free);
    qa->backends = g_ptr_array_new_with_free_func(qn_backend_free);
    qa->vfio_hosts = g_ptr_array_new_with_free_func(g_free);
    qa->mem_devices = g_ptr_array_new_with_free_func(qn_mem_device_free);
    qa->pci_devices = g_ptr_array_new_with_free_func(qn_pci_device_arg_free);
    qa->numa_cpus = g_array_new(FALSE, FALSE, sizeof(gint));
    qa->ram_size = 128 * QN_MiB; /* hw/i386/pc: default_ram_size */
    qa->smp = (QnSmp){ 1, 1, 1, 1, 1, 1, 1, FALSE };
    qa->smp_index = -1;

    /* First pass: split argv into options exactly as softmmu/vl.c lookup_opt() does. */
    for (guint i = 1; argv[i] != NULL; i++) {
        const char *elem = argv[i];
        QnArg *a = g_new0(QnArg, 1);

        a->flag = g_strdup(elem);
        g_ptr_array_add(qa->args, a);
        if (elem[0] != '-' || elem[1] == '\0') {
            continue; /* positional: the hda image */
        }
        {
            const char *name = elem + 1 + (elem[1] == '-');
            const QnQemuOption *opt = qn_qemu_option_lookup(name);
            const char *eq = strchr(name, '=');

            a->name = g_strdup(name);
            if (opt == NULL && eq != NULL) {
                g_autofree gchar *base = g_strndup(name, (gsize)(eq - name));

                if (qn_qemu_option_lookup(base) != NULL) {
                    g_set_error(error, QN_ERROR, QN_ERROR_BAD_ARGV,
                                "'%s': QEMU does not accept -option=value, write '-%s %s'", elem,
                                base, eq + 1);
                    return NULL;
                }
            }
            if (opt != NULL && opt->has_arg) {
                if (argv[i + 1] == NULL) {
                    g_set_error(error, QN_ERROR, QN_ERROR_BAD_ARGV,
                                "'%s': option requires an argument", elem);
                    return NULL;
                }
                a->value = g_strdup(argv[++i]);
            }
        }
    }
    /* A probe execs QEMU untouched: look for it before judging any option we own (QEMU's
     * -version exits before it reads -m, so "-m 12Q -version" prints the version). */
    for (guint i = 0; i < qa->args->len; i++) {
        QnArg *a = g_ptr_array_index(qa->args, i);

        if (a->name != NULL && (qn_is_help(a->value) || !strcmp(a->name, "version") ||
                                !strcmp(a->name, "help") || !strcmp(a->name, "h") ||
                                !strcmp(a->name, "dump-vmstate") ||
                                !strcmp(a->name, "audio-help"))) {
            qn_mark_probe(qa, a->flag, a->value);
        }
        if (a->name != NULL && (!strcmp(a->name, "machine") || !strcmp(a->name, "M"))) {
            g_autoptr(QnKeyval) kv = qn_keyval_parse(a->value, "type", NULL);

            if (kv != NULL && g_strcmp0(qn_keyval_get(kv, "type"), "none") == 0) {
                qn_mark_probe(qa, a->flag, a->value);
            }
        }
    }
    for (guint i = 0; i < qa->args->len && !qa->probe; i++) {
        if (!qn_interpret(qa, i, g_ptr_array_index(qa->args, i), error)) {
            return NULL;
        }
    }
    qn_resolve_numa_cpus(qa);
    return g_steal_pointer(&qa);
}

QnMemoryBackend *
qn_qemu_argv_find_backend(const QnQemuArgv *qa, const char *id)
{
    for (guint i = 0; i < qa->backends->len; i++) {
        QnMemoryBackend *b = g_ptr_array_index(qa->backends, i);

        if (g_strcmp0(b->id, id) == 0) {
            return b;
        }
    }
    return NULL;
}

GStrv
qn_qemu_argv_to_strv(const QnQemuArgv *qa)
{
    g_autoptr(GStrvBuilder) b = g_strv_builder_new();

    g_strv_builder_add(b, qa->argv0);
    for (guint i = 0; i < qa->args->len; i++) {
        QnArg *a = g_ptr_array_index(qa->args, i);

        g_strv_builder_add(b, a->flag);
        if (a->value != NULL) {
            g_strv_builder_add(b, a->value);
        }
    }
    return g_strv_builder_end(b);
}
