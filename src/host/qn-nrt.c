#include "config.h"

#include "qn-nrt.h"

#include <string.h>

#include "qn-entry.h"

gchar *
qn_nrt_quantity(guint64 value)
{
    static const char *const suffix[] = { "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei" };
    guint k = 0;

    while (value != 0 && k + 1 < G_N_ELEMENTS(suffix) && value % 1024 == 0) {
        value /= 1024;
        k++;
    }
    return g_strdup_printf("%" G_GUINT64_FORMAT "%s", value, suffix[k]);
}

gchar *
qn_nrt_resource_name(guint64 page_size)
{
    g_autofree gchar *q = qn_nrt_quantity(page_size);

    return g_strconcat("hugepages-", q, NULL);
}

gchar *
qn_nrt_fingerprint(GPtrArray *entries)
{
    g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);

    g_assert(entries != NULL);
    for (guint i = 0; i < entries->len; i++) {
        const QnLedgerEntry *e = g_ptr_array_index(entries, i);
        g_autofree gchar *plan = e->plan ? qn_plan_summary(e->plan) : g_strdup("");
        g_autofree gchar *line = g_strdup_printf("%s\n%d\n%" G_GUINT64_FORMAT "\n%s\n%s\n",
                                                 e->user ? e->user : "", e->pid, e->start_time,
                                                 qn_entry_state_name(e->state), plan);

        g_checksum_update(sum, (const guchar *)line, -1);
    }
    return g_strdup_printf("sha256:%.16s", g_checksum_get_string(sum));
}

/* what @resv holds on @node in pages of @page_size (0: regular memory), in bytes */
static guint64
qn_resv_bytes(const QnReservations *resv, guint node, guint64 page_size)
{
    guint64 sum = 0;

    for (guint i = 0; resv != NULL && i < resv->items->len; i++) {
        const QnNodeReservation *r = &g_array_index(resv->items, QnNodeReservation, i);

        if (r->node == node && r->page_size == page_size) {
            sum += r->bytes;
        }
    }
    return sum;
}

static void
qn_add_resource(JsonBuilder *b, const char *name, guint64 capacity, guint64 allocatable,
                guint64 available)
{
    g_autofree gchar *c = qn_nrt_quantity(capacity);
    g_autofree gchar *al = qn_nrt_quantity(allocatable);
    g_autofree gchar *av = qn_nrt_quantity(available);

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "name");
    json_builder_add_string_value(b, name);
    json_builder_set_member_name(b, "capacity");
    json_builder_add_string_value(b, c);
    json_builder_set_member_name(b, "allocatable");
    json_builder_add_string_value(b, al);
    json_builder_set_member_name(b, "available");
    json_builder_add_string_value(b, av);
    json_builder_end_object(b);
}

static guint64
qn_sub(guint64 a, guint64 b)
{
    return a > b ? a - b : 0;
}

static void
qn_add_zone_resources(JsonBuilder *b, const QnTopology *t, const QnHostNode *n,
                      const QnReservations *resv)
{
    guint64 cpus = qn_bitmap_count(n->cpus), allowed = 0, pinned = 0, huge = 0;

    for (guint i = 0; i < t->cpus->len; i++) {
        const QnHostCpu *c = g_ptr_array_index(t->cpus, i);

        if (c->node == n->id && c->allowed) {
            allowed++;
            pinned += resv && resv->pinned_cpus && qn_bitmap_test(resv->pinned_cpus, c->id);
        }
    }
    for (guint k = 0; k < n->pools->len; k++) {
        const QnHugepagePool *p = &g_array_index(n->pools, QnHugepagePool, k);

        huge += p->nr * p->page_size;
    }
    json_builder_begin_array(b);
    qn_add_resource(b, "cpu", cpus, allowed, qn_sub(allowed, pinned));
    qn_add_resource(b, "memory", qn_sub(n->mem_total, huge), qn_sub(n->mem_total, huge),
                    qn_sub(n->mem_free, qn_resv_bytes(resv, n->id, 0)));
    for (guint k = 0; k < n->pools->len; k++) {
        const QnHugepagePool *p = &g_array_index(n->pools, QnHugepagePool, k);
        g_autofree gchar *name = qn_nrt_resource_name(p->page_size);
        guint64 pool = p->ours_ready * p->page_size; /* ready in our pool service: ours */

        qn_add_resource(b, name, p->nr * p->page_size, p->nr * p->page_size,
                        qn_sub(p->free * p->page_size + pool,
                               qn_resv_bytes(resv, n->id, p->page_size)));
    }
    json_builder_end_array(b);
}

static void
qn_add_attribute(JsonBuilder *b, const char *name, const char *value)
{
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "name");
    json_builder_add_string_value(b, name);
    json_builder_set_member_name(b, "value");
    json_builder_add_string_value(b, value);
    json_builder_end_object(b);
}

JsonNode *
qn_nrt_build(const QnTopology *topo, const QnReservations *resv, GPtrArray *entries,
             const char *node_name, QnPolicy policy)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autofree gchar *fp = qn_nrt_fingerprint(entries);
    guint n = topo->nodes->len;

    g_assert(node_name != NULL);
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "apiVersion");
    json_builder_add_string_value(b, "topology.node.k8s.io/v1alpha2");
    json_builder_set_member_name(b, "kind");
    json_builder_add_string_value(b, "NodeResourceTopology");
    json_builder_set_member_name(b, "metadata");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "name");
    json_builder_add_string_value(b, node_name);
    json_builder_end_object(b);
    json_builder_set_member_name(b, "zones");
    json_builder_begin_array(b);
    for (guint i = 0; i < n; i++) {
        const QnHostNode *node = g_ptr_array_index(topo->nodes, i);
        g_autofree gchar *name = g_strdup_printf("node-%u", node->id);

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "name");
        json_builder_add_string_value(b, name);
        json_builder_set_member_name(b, "type");
        json_builder_add_string_value(b, "Node");
        json_builder_set_member_name(b, "costs");
        json_builder_begin_array(b);
        for (guint j = 0; j < n; j++) {
            const QnHostNode *to = g_ptr_array_index(topo->nodes, j);
            g_autofree gchar *to_name = g_strdup_printf("node-%u", to->id);

            json_builder_begin_object(b);
            json_builder_set_member_name(b, "name");
            json_builder_add_string_value(b, to_name);
            json_builder_set_member_name(b, "value");
            json_builder_add_int_value(b, topo->distance[i * n + j]);
            json_builder_end_object(b);
        }
        json_builder_end_array(b);
        json_builder_set_member_name(b, "resources");
        qn_add_zone_resources(b, topo, node, resv);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
    json_builder_set_member_name(b, "attributes");
    json_builder_begin_array(b);
    qn_add_attribute(b, "topologyManagerPolicy", qn_policy_to_string(policy));
    qn_add_attribute(b, "topologyManagerScope", "pod");
    qn_add_attribute(b, "qemu-numa.io/ledger-generation", fp);
    json_builder_end_array(b);
    json_builder_end_object(b);
    return json_builder_get_root(b);
}

static void
qn_yaml_scalar(GString *out, JsonNode *node)
{
    if (JSON_NODE_HOLDS_NULL(node)) {
        g_string_append(out, "null");
    } else if (json_node_get_value_type(node) == G_TYPE_STRING) {
        g_autofree gchar *s = json_to_string(node, FALSE);

        g_string_append(out, s); /* JSON's double-quoted form is YAML's too */
    } else {
        g_autofree gchar *s = json_to_string(node, FALSE);

        g_string_append(out, s);
    }
}

static gboolean
qn_yaml_is_empty_container(JsonNode *node)
{
    if (JSON_NODE_HOLDS_OBJECT(node)) {
        return json_object_get_size(json_node_get_object(node)) == 0;
    }
    return JSON_NODE_HOLDS_ARRAY(node) && json_array_get_length(json_node_get_array(node)) == 0;
}

/* [A-Za-z][A-Za-z0-9_.-]*: a YAML plain scalar that is a string in every schema */
static gboolean
qn_yaml_plain_key(const char *key)
{
    if (!g_ascii_isalpha(key[0])) {
        return FALSE;
    }
    for (const char *p = key; *p != '\0'; p++) {
        if (!g_ascii_isalnum(*p) && *p != '_' && *p != '-' && *p != '.') {
            return FALSE;
        }
    }
    return strcmp(key, "null") != 0 && strcmp(key, "true") != 0 && strcmp(key, "false") != 0;
}

static void qn_yaml_node(GString *out, JsonNode *node, guint indent, gboolean inline_first);

/* @node after "key:" or "- ": a scalar on the same line, a container on the next lines */
static void
qn_yaml_value(GString *out, JsonNode *node, guint indent)
{
    if (JSON_NODE_HOLDS_VALUE(node) || JSON_NODE_HOLDS_NULL(node)) {
        g_string_append_c(out, ' ');
        qn_yaml_scalar(out, node);
        g_string_append_c(out, '\n');
    } else if (qn_yaml_is_empty_container(node)) {
        g_string_append(out, JSON_NODE_HOLDS_OBJECT(node) ? " {}\n" : " []\n");
    } else {
        g_string_append_c(out, '\n');
        qn_yaml_node(out, node, indent, FALSE);
    }
}

static void
qn_yaml_node(GString *out, JsonNode *node, guint indent, gboolean inline_first)
{
    if (JSON_NODE_HOLDS_OBJECT(node)) {
        JsonObjectIter it;
        const char *key;
        JsonNode *v;
        gboolean first = TRUE;

        json_object_iter_init_ordered(&it, json_node_get_object(node));
        while (json_object_iter_next_ordered(&it, &key, &v)) {
            g_autoptr(JsonNode) k = json_node_init_string(json_node_alloc(), key);
            /* plain keys as they are (all of ours), anything else quoted */
            g_autofree gchar *ks = qn_yaml_plain_key(key) ? g_strdup(key)
                                                          : json_to_string(k, FALSE);

            if (!(first && inline_first)) {
                g_string_append_printf(out, "%*s", (int)indent, "");
            }
            first = FALSE;
            g_string_append_printf(out, "%s:", ks);
            qn_yaml_value(out, v, indent + 2);
        }
    } else if (JSON_NODE_HOLDS_ARRAY(node)) {
        JsonArray *a = json_node_get_array(node);

        for (guint i = 0; i < json_array_get_length(a); i++) {
            JsonNode *v = json_array_get_element(a, i);

            g_string_append_printf(out, "%*s-", (int)indent, "");
            if (JSON_NODE_HOLDS_OBJECT(v) && !qn_yaml_is_empty_container(v)) {
                g_string_append_c(out, ' ');
                qn_yaml_node(out, v, indent + 2, TRUE);
            } else {
                qn_yaml_value(out, v, indent + 2);
            }
        }
    } else {
        g_string_append_printf(out, "%*s", (int)indent, "");
        qn_yaml_scalar(out, node);
        g_string_append_c(out, '\n');
    }
}

gchar *
qn_nrt_to_yaml(JsonNode *node)
{
    GString *out = g_string_new(NULL);

    g_assert(node != NULL);
    qn_yaml_node(out, node, 0, FALSE);
    return g_string_free(out, FALSE);
}
