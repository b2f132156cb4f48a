#include "config.h"

#include "qn-entry.h"

#include <math.h>
#include <string.h>

#include "qn-error.h"
#include "qn-json.h"
#include "qn-plan-json.h"
#include "qn-topology.h"

/*
 * Every JSON member name of a ledger entry and of an exits.jsonl line is in this file
 * (issue 13: a state record has a type, as crun's libcrun_container_status_s owns its status
 * file). Schema: doc/schema/ledger-entry.json, doc/schema/exit.json.
 */

gchar *
qn_ledger_name_to_utf8(const char *raw)
{
    GString *out;
    const char *p, *end;

    if (raw == NULL) {
        return NULL;
    }
    if (g_utf8_validate(raw, -1, NULL)) {
        return g_strdup(raw);
    }
    out = g_string_new(NULL);
    p = raw;
    while (!g_utf8_validate(p, -1, &end)) {
        g_string_append_len(out, p, end - p);
        g_string_append_printf(out, "\\x%02x", (guint)(guchar)*end);
        p = end + 1;
    }
    g_string_append(out, p);
    return g_string_free(out, FALSE);
}

static const char *const qn_state_names[] = { "reserving", "reserved", "fallback",
                                              "incoming" };

const char *
qn_entry_state_name(QnEntryState s)
{
    g_assert((guint)s < G_N_ELEMENTS(qn_state_names));
    return qn_state_names[s];
}

QnEntryThread *
qn_entry_thread_new(gint vcpu, gint64 thread_id, const QnBitmap *pcpus)
{
    QnEntryThread *t = g_new0(QnEntryThread, 1);

    t->vcpu = vcpu;
    t->thread_id = thread_id;
    t->pcpus = pcpus ? qn_bitmap_copy(pcpus) : qn_bitmap_new();
    return t;
}

void
qn_entry_thread_free(QnEntryThread *t)
{
    if (t == NULL) {
        return;
    }
    qn_bitmap_free(t->pcpus);
    g_free(t);
}

void
qn_entry_reservation_free(QnEntryReservation *r)
{
    if (r == NULL) {
        return;
    }
    qn_bitmap_free(r->host_nodes);
    g_clear_pointer(&r->pages_on, g_array_unref);
    g_free(r->memdev);
    g_free(r);
}

static void
qn_entry_event_free(QnEntryEvent *ev)
{
    if (ev == NULL) {
        return;
    }
    g_free(ev->event);
    g_free(ev->time);
    g_clear_pointer(&ev->data, json_object_unref);
    g_free(ev);
}

static QnLedgerEntry *
qn_entry_alloc(void)
{
    QnLedgerEntry *e = g_new0(QnLedgerEntry, 1);

    e->version = QN_LEDGER_ENTRY_VERSION;
    e->reserve_seconds = -1;
    e->reservations = g_ptr_array_new_with_free_func((GDestroyNotify)qn_entry_reservation_free);
    e->free_before = g_array_new(FALSE, TRUE, sizeof(QnEntryFreePages));
    e->free_after = g_array_new(FALSE, TRUE, sizeof(QnEntryFreePages));
    e->pinned_cpus = qn_bitmap_new();
    e->threads = g_ptr_array_new_with_free_func((GDestroyNotify)qn_entry_thread_free);
    e->events = g_ptr_array_new_with_free_func((GDestroyNotify)qn_entry_event_free);
    e->extra = json_object_new();
    return e;
}

void
qn_ledger_entry_free(QnLedgerEntry *e)
{
    if (e == NULL) {
        return;
    }
    g_free(e->name);
    g_free(e->uuid);
    g_free(e->user);
    g_free(e->created);
    qn_plan_free(e->plan);
    g_ptr_array_unref(e->reservations);
    g_array_unref(e->free_before);
    g_array_unref(e->free_after);
    qn_bitmap_free(e->pinned_cpus);
    g_free(e->qemu_status);
    g_free(e->qemu_status_time);
    g_clear_pointer(&e->measured_memory, g_array_unref);
    g_clear_pointer(&e->memory_devices, g_ptr_array_unref);
    g_ptr_array_unref(e->threads);
    qn_bitmap_free(e->emulator_pcpus);
    g_ptr_array_unref(e->events);
    g_free(e->migration_role);
    g_free(e->migration_status);
    g_free(e->migration_time);
    json_object_unref(e->extra);
    g_free(e);
}

static gchar *
qn_now_iso8601(void)
{
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();

    return g_date_time_format_iso8601(now);
}

QnLedgerEntry *
qn_ledger_entry_new(const char *name, const char *uuid, gint pid, guint64 start_time,
                    QnEntryState state, const QnPlan *plan)
{
    QnLedgerEntry *e = qn_entry_alloc();
    g_autoptr(JsonNode) pj = NULL;

    g_assert(plan != NULL);
    e->name = qn_ledger_name_to_utf8(name);
    e->uuid = qn_ledger_name_to_utf8(uuid);
    e->pid = pid;
    e->start_time = start_time;
    e->state = state;
    e->created = qn_now_iso8601();
    pj = qn_plan_to_json(plan);
    e->plan = qn_plan_from_json(pj, NULL);
    if (plan->held_pcpus != NULL) {
        qn_bitmap_or(e->pinned_cpus, plan->held_pcpus);
    }
    return e;
}

/* ---- reading: every member checked for its type; a bad one is kept in extra ---- */

/* A non-negative integer (of at most @max) in @n, or FALSE. */
static gboolean
qn_node_uint(JsonNode *n, guint64 max, guint64 *ret)
{
    gint64 v;

    if (n == NULL || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64) {
        return FALSE;
    }
    v = json_node_get_int(n);
    if (v < 0 || (guint64)v > max) {
        return FALSE;
    }
    *ret = (guint64)v;
    return TRUE;
}

static gboolean
qn_member_uint(JsonObject *o, const char *name, guint64 max, guint64 *ret)
{
    return qn_node_uint(json_object_get_member(o, name), max, ret);
}

static JsonArray *
qn_member_array(JsonObject *o, const char *name)
{
    JsonNode *n = json_object_get_member(o, name);

    return n != NULL && JSON_NODE_HOLDS_ARRAY(n) ? json_node_get_array(n) : NULL;
}

static JsonObject *
qn_element_object(JsonArray *a, guint i)
{
    JsonNode *n = json_array_get_element(a, i);

    return JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
}

/* An array of node ids ([0, 2]) or, version 1, a list string ("0,2"); NULL if neither. */
static QnBitmap *
qn_member_nodes(JsonObject *o, const char *name)
{
    JsonNode *n = json_object_get_member(o, name);
    g_autoptr(QnBitmap) b = NULL;

    if (n != NULL && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING) {
        return qn_bitmap_parse_list(json_node_get_string(n), NULL);
    }
    if (n == NULL || !JSON_NODE_HOLDS_ARRAY(n)) {
        return NULL;
    }
    b = qn_bitmap_new();
    for (guint i = 0; i < json_array_get_length(json_node_get_array(n)); i++) {
        guint64 id;

        if (!qn_node_uint(json_array_get_element(json_node_get_array(n), i), 65535, &id)) {
            return NULL;
        }
        qn_bitmap_set(b, (guint)id);
    }
    return g_steal_pointer(&b);
}

/* [{"host_node", "page_size", "pages"}] (version 2) or {"<node>:<page size>": pages}. */
static gboolean
qn_read_free_pages(JsonObject *o, const char *name, GArray *out)
{
    JsonNode *n = json_object_get_member(o, name);

    if (n != NULL && JSON_NODE_HOLDS_OBJECT(n)) { /* version 1 */
        return TRUE; /* informational only: dropped rather than converted */
    }
    if (n == NULL || !JSON_NODE_HOLDS_ARRAY(n)) {
        return n == NULL;
    }
    for (guint i = 0; i < json_array_get_length(json_node_get_array(n)); i++) {
        JsonObject *x = qn_element_object(json_node_get_array(n), i);
        QnEntryFreePages f = { 0 };
        guint64 node;

        if (x == NULL || !qn_member_uint(x, "host_node", 65535, &node) ||
            !qn_member_uint(x, "page_size", G_MAXINT64, &f.page_size) ||
            !qn_member_uint(x, "pages", G_MAXINT64, &f.pages)) {
            g_array_set_size(out, 0);
            return FALSE;
        }
        f.host_node = (guint)node;
        g_array_append_val(out, f);
    }
    return TRUE;
}

static QnEntryReservation *
qn_read_reservation(JsonObject *x)
{
    g_autoptr(QnBitmap) hosts = x ? qn_member_nodes(x, "host_nodes") : NULL;
    QnEntryReservation *r;
    guint64 gn, ps, bytes;
    JsonArray *on;

    if (hosts == NULL || !qn_member_uint(x, "guest_node", 65535, &gn) ||
        !qn_member_uint(x, "page_size", G_MAXINT64, &ps) ||
        !qn_member_uint(x, "bytes", G_MAXINT64, &bytes)) {
        return NULL;
    }
    r = g_new0(QnEntryReservation, 1);
    r->guest_node = (guint)gn;
    r->memdev = g_strdup(qn_json_get_string(x, "memdev", NULL));
    r->host_nodes = g_steal_pointer(&hosts);
    r->page_size = ps;
    r->bytes = bytes;
    r->pages_on = g_array_new(FALSE, TRUE, sizeof(QnEntryNodePages));
    on = qn_member_array(x, "pages_per_host_node");
    for (guint i = 0; on != NULL && i < json_array_get_length(on); i++) {
        JsonObject *p = qn_element_object(on, i);
        QnEntryNodePages np = { 0 };
        guint64 node;

        if (p != NULL && qn_member_uint(p, "host_node", 65535, &node) &&
            qn_member_uint(p, "pages", G_MAXINT64, &np.pages)) {
            np.host_node = (guint)node;
            g_array_append_val(r->pages_on, np);
        }
    }
    return r;
}

static gboolean
qn_read_reservations(JsonObject *o, QnLedgerEntry *e)
{
    JsonArray *a = qn_member_array(o, "reservations");

    for (guint i = 0; a != NULL && i < json_array_get_length(a); i++) {
        QnEntryReservation *r = qn_read_reservation(qn_element_object(a, i));

        if (r == NULL) {
            g_ptr_array_set_size(e->reservations, 0);
            return FALSE;
        }
        g_ptr_array_add(e->reservations, r);
    }
    return a != NULL || !json_object_has_member(o, "reservations");
}

static gboolean
qn_read_events(JsonObject *o, QnLedgerEntry *e)
{
    JsonArray *a = qn_member_array(o, "events");

    for (guint i = 0; a != NULL && i < json_array_get_length(a); i++) {
        JsonObject *x = qn_element_object(a, i);
        JsonNode *data = x ? json_object_get_member(x, "data") : NULL;
        QnEntryEvent *ev;

        if (x == NULL) {
            continue;
        }
        ev = g_new0(QnEntryEvent, 1);
        ev->event = g_strdup(qn_json_get_string(x, "event", "?"));
        ev->time = g_strdup(qn_json_get_string(x, "time", ""));
        if (data != NULL && JSON_NODE_HOLDS_OBJECT(data)) {
            ev->data = json_object_ref(json_node_get_object(data));
        }
        g_ptr_array_add(e->events, ev);
    }
    return a != NULL || !json_object_has_member(o, "events");
}

/* "migration": null, or {"role", "status", "time"} (issue 14) */
static gboolean
qn_read_migration(JsonObject *o, QnLedgerEntry *e)
{
    JsonNode *n = json_object_get_member(o, "migration");
    JsonObject *m;
    const char *role, *status, *time;

    if (n == NULL || JSON_NODE_HOLDS_NULL(n)) {
        return TRUE;
    }
    if (!JSON_NODE_HOLDS_OBJECT(n)) {
        return FALSE;
    }
    m = json_node_get_object(n);
    if (!qn_json_member_string(m, "role", NULL, &role) || role == NULL ||
        (strcmp(role, "source") != 0 && strcmp(role, "destination") != 0) ||
        !qn_json_member_string(m, "status", NULL, &status) || status == NULL ||
        !qn_json_member_string(m, "time", NULL, &time)) {
        return FALSE;
    }
    e->migration_role = g_strdup(role);
    e->migration_status = g_strdup(status);
    e->migration_time = g_strdup(time);
    return TRUE;
}

static gboolean
qn_read_qemu(JsonObject *o, QnLedgerEntry *e)
{
    JsonNode *n = json_object_get_member(o, "qemu");
    JsonObject *q;

    if (n == NULL || JSON_NODE_HOLDS_NULL(n)) {
        return TRUE;
    }
    if (!JSON_NODE_HOLDS_OBJECT(n)) {
        return FALSE;
    }
    q = json_node_get_object(n);
    e->qemu_status = g_strdup(qn_json_get_string(q, "status", NULL));
    e->qemu_status_time = g_strdup(qn_json_get_string(q, "time", NULL));
    qn_json_member_bool(q, "live", FALSE, &e->qemu_status_live);
    return e->qemu_status != NULL;
}

/* [{"host_node", "bytes"}] into a new array; malformed elements are skipped */
static GArray *
qn_read_node_bytes(JsonArray *a)
{
    GArray *out = g_array_new(FALSE, TRUE, sizeof(QnEntryNodeBytes));

    for (guint i = 0; i < json_array_get_length(a); i++) {
        JsonObject *x = qn_element_object(a, i);
        QnEntryNodeBytes nb = { 0 };
        guint64 node;

        if (x != NULL && qn_member_uint(x, "host_node", 65535, &node) &&
            qn_member_uint(x, "bytes", G_MAXINT64, &nb.bytes)) {
            nb.host_node = (guint)node;
            g_array_append_val(out, nb);
        }
    }
    return out;
}

static gboolean
qn_read_measured(JsonObject *o, QnLedgerEntry *e)
{
    JsonNode *n = json_object_get_member(o, "measured_memory");

    if (n == NULL || JSON_NODE_HOLDS_NULL(n)) {
        return TRUE;
    }
    if (!JSON_NODE_HOLDS_ARRAY(n)) {
        return FALSE;
    }
    e->measured_memory = qn_read_node_bytes(json_node_get_array(n));
    return TRUE;
}

static gboolean
qn_read_memory_devices(JsonObject *o, QnLedgerEntry *e)
{
    JsonNode *n = json_object_get_member(o, "memory_devices");

    if (n == NULL || JSON_NODE_HOLDS_NULL(n)) {
        return TRUE;
    }
    if (!JSON_NODE_HOLDS_ARRAY(n)) {
        return FALSE;
    }
    e->memory_devices = g_ptr_array_new_with_free_func(
        (GDestroyNotify)qn_entry_memory_device_free);
    for (guint i = 0; i < json_array_get_length(json_node_get_array(n)); i++) {
        JsonObject *x = qn_element_object(json_node_get_array(n), i);
        QnEntryMemoryDevice *d;
        JsonArray *pl;
        JsonNode *hp;
        guint64 v;

        if (x == NULL) {
            continue;
        }
        d = g_new0(QnEntryMemoryDevice, 1);
        d->id = g_strdup(qn_json_get_string(x, "id", NULL));
        d->type = g_strdup(qn_json_get_string(x, "type", "unknown"));
        d->memdev = g_strdup(qn_json_get_string(x, "memdev", NULL));
        d->node = qn_member_uint(x, "node", 65535, &v) ? (gint)v : -1;
        d->size = qn_member_uint(x, "size", G_MAXINT64, &v) ? v : 0;
        d->requested_size = qn_member_uint(x, "requested_size", G_MAXINT64, &v) ? v : 0;
        d->backend_size = qn_member_uint(x, "backend_size", G_MAXINT64, &v) ? v : d->size;
        hp = json_object_get_member(x, "hotplugged");
        d->hotplugged = hp != NULL && JSON_NODE_HOLDS_VALUE(hp) &&
                                json_node_get_value_type(hp) == G_TYPE_BOOLEAN
                            ? json_node_get_boolean(hp)
                            : -1;
        d->mappings = qn_member_uint(x, "mappings", G_MAXUINT, &v) ? (guint)v : 0;
        pl = qn_member_array(x, "placement");
        d->placement = pl != NULL ? qn_read_node_bytes(pl) : NULL;
        g_ptr_array_add(e->memory_devices, d);
    }
    return TRUE;
}

static gboolean
qn_read_pinning(JsonObject *o, QnLedgerEntry *e)
{
    JsonNode *n = json_object_get_member(o, "pinning");
    JsonObject *p;
    JsonArray *a;
    const char *by;

    if (n == NULL || JSON_NODE_HOLDS_NULL(n)) {
        return TRUE;
    }
    if (!JSON_NODE_HOLDS_OBJECT(n)) {
        return FALSE;
    }
    p = json_node_get_object(n);
    by = qn_json_get_string(p, "by", "qemu-numa");
    a = qn_member_array(p, "threads");
    e->pinned = TRUE;
    e->pinned_by_caller = strcmp(by, "caller") == 0;
    e->emulator_pcpus = qn_bitmap_parse_list(qn_json_get_string(p, "emulator_pcpus", ""), NULL);
    for (guint i = 0; a != NULL && i < json_array_get_length(a); i++) {
        JsonObject *t = qn_element_object(a, i);
        g_autoptr(QnBitmap) cpus = NULL;

        if (t == NULL) {
            continue;
        }
        cpus = qn_bitmap_parse_list(qn_json_get_string(t, "pcpus", ""), NULL);
        g_ptr_array_add(e->threads, qn_entry_thread_new((gint)qn_json_get_int(t, "vcpu", -1),
                                                        qn_json_get_int(t, "thread_id", 0),
                                                        cpus));
    }
    return TRUE;
}

/* A non-negative number of seconds (integer or not) into *@ret; TRUE too when it is absent
 * (*@ret untouched), FALSE when it is there but not such a number. */
static gboolean
qn_read_seconds(JsonObject *o, const char *name, gdouble *ret)
{
    JsonNode *n = json_object_get_member(o, name);
    GType t;

    if (n == NULL) {
        return TRUE;
    }
    t = JSON_NODE_HOLDS_VALUE(n) ? json_node_get_value_type(n) : G_TYPE_INVALID;
    if (t != G_TYPE_DOUBLE && t != G_TYPE_INT64) {
        return FALSE;
    }
    if (json_node_get_double(n) < 0 || !isfinite(json_node_get_double(n))) {
        return FALSE;
    }
    *ret = json_node_get_double(n);
    return TRUE;
}

/* "state": ours, or (version 1, or a hand edit) anything else: inferred from the plan */
static void
qn_read_state(JsonObject *o, QnLedgerEntry *e)
{
    const char *s = qn_json_get_string(o, "state", "");

    for (guint i = 0; i < G_N_ELEMENTS(qn_state_names); i++) {
        if (strcmp(s, qn_state_names[i]) == 0) {
            e->state = (QnEntryState)i;
            return;
        }
    }
    e->state = e->plan != NULL && e->plan->kind == QN_PLAN_ALIGNED ? QN_ENTRY_RESERVED
                                                                   : QN_ENTRY_FALLBACK;
    if (s[0] != '\0' && e->qemu_status == NULL && e->version < 2) {
        e->qemu_status = g_strdup(s); /* version 1 kept QEMU's run state here */
    }
}

/* Known members: read into fields; the rest (and known ones that did not read) go to extra. */
static const char *const qn_known[] = {
    "version", "name", "uuid", "pid", "start_time", "user", "state", "created", "plan",
    "reservations", "free_hugepages_before", "free_hugepages_after", "pinned_cpus", "qemu",
    "measured_memory", "memory_devices", "pinning", "events", "migration", "reserve_seconds",
    /* version 1 only, dropped: QEMU's state was in "state"; a per-node map nobody read */
    "memory_per_node", "live_status", "measured_memory_per_node",
};

static gboolean
qn_is_known(const char *name)
{
    for (guint i = 0; i < G_N_ELEMENTS(qn_known); i++) {
        if (strcmp(name, qn_known[i]) == 0) {
            return TRUE;
        }
    }
    return FALSE;
}

static void
qn_keep(QnLedgerEntry *e, JsonObject *o, const char *name)
{
    JsonNode *n = json_object_get_member(o, name);

    if (n != NULL) {
        json_object_set_member(e->extra, name, json_node_copy(n));
    }
}

QnLedgerEntry *
qn_ledger_entry_from_json(JsonNode *node, GError **error)
{
    g_autoptr(QnLedgerEntry) e = qn_entry_alloc();
    JsonObject *o;
    guint64 pid = 0, st = 0;
    const char *s;
    GList *members;

    if (node == NULL || !JSON_NODE_HOLDS_OBJECT(node)) {
        g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "not a JSON object");
        return NULL;
    }
    o = json_node_get_object(node);
    if (!qn_member_uint(o, "pid", G_MAXINT, &pid) || pid <= 1) {
        g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "member 'pid': not an integer above 1");
        return NULL;
    }
    e->pid = (gint)pid;
    e->version = qn_json_get_int(o, "version", 1);
    if (qn_member_uint(o, "start_time", G_MAXINT64, &st)) {
        e->start_time = st;
    } else {
        qn_keep(e, o, "start_time");
    }
    if (!qn_json_member_string(o, "name", NULL, &s)) {
        qn_keep(e, o, "name");
    }
    e->name = g_strdup(s);
    if (!qn_json_member_string(o, "uuid", NULL, &s)) {
        qn_keep(e, o, "uuid");
    }
    e->uuid = g_strdup(s);
    e->created = g_strdup(qn_json_get_string(o, "created", NULL));
    if (json_object_has_member(o, "plan")) {
        e->plan = qn_plan_from_json(json_object_get_member(o, "plan"), NULL);
        if (e->plan == NULL) {
            qn_keep(e, o, "plan");
        }
    }
    if (!qn_read_qemu(o, e)) {
        qn_keep(e, o, "qemu");
    }
    if (!qn_read_migration(o, e)) {
        qn_keep(e, o, "migration");
    }
    qn_read_state(o, e);
    if (!qn_read_reservations(o, e)) {
        qn_keep(e, o, "reservations");
    }
    if (!qn_read_free_pages(o, "free_hugepages_before", e->free_before)) {
        qn_keep(e, o, "free_hugepages_before");
    }
    if (!qn_read_free_pages(o, "free_hugepages_after", e->free_after)) {
        qn_keep(e, o, "free_hugepages_after");
    }
    {
        /* a malformed list holds no pCPU */
        g_autoptr(QnBitmap) pinned = qn_bitmap_parse_list(
            qn_json_get_string(o, "pinned_cpus", ""), NULL);

        if (pinned != NULL) {
            qn_bitmap_or(e->pinned_cpus, pinned);
        }
    }
    if (!qn_read_measured(o, e)) {
        qn_keep(e, o, "measured_memory");
    }
    if (!qn_read_seconds(o, "reserve_seconds", &e->reserve_seconds)) {
        qn_keep(e, o, "reserve_seconds");
    }
    if (!qn_read_memory_devices(o, e)) {
        qn_keep(e, o, "memory_devices");
    }
    if (!qn_read_pinning(o, e)) {
        qn_keep(e, o, "pinning");
    }
    if (!qn_read_events(o, e)) {
        qn_keep(e, o, "events");
    }
    members = json_object_get_members(o);
    for (GList *l = members; l != NULL; l = l->next) {
        if (!qn_is_known(l->data)) {
            qn_keep(e, o, l->data);
        }
    }
    g_list_free(members);
    return g_steal_pointer(&e);
}

/* ---- writing ---- */

static void
qn_add_nodes(JsonBuilder *b, const char *name, const QnBitmap *nodes)
{
    json_builder_set_member_name(b, name);
    json_builder_begin_array(b);
    QN_BITMAP_FOREACH(nodes, h) {
        json_builder_add_int_value(b, h);
    }
    json_builder_end_array(b);
}

static void
qn_add_string(JsonBuilder *b, const char *name, const char *value)
{
    json_builder_set_member_name(b, name);
    value ? json_builder_add_string_value(b, value) : json_builder_add_null_value(b);
}

static void
qn_add_int(JsonBuilder *b, const char *name, gint64 value)
{
    json_builder_set_member_name(b, name);
    json_builder_add_int_value(b, value);
}

static void
qn_add_cpus(JsonBuilder *b, const char *name, const QnBitmap *cpus)
{
    g_autofree gchar *list = cpus ? qn_bitmap_format_list(cpus, ",") : g_strdup("");

    qn_add_string(b, name, list);
}

static void
qn_add_free_pages(JsonBuilder *b, const char *name, GArray *pages)
{
    json_builder_set_member_name(b, name);
    json_builder_begin_array(b);
    for (guint i = 0; i < pages->len; i++) {
        const QnEntryFreePages *f = &g_array_index(pages, QnEntryFreePages, i);

        json_builder_begin_object(b);
        qn_add_int(b, "host_node", f->host_node);
        qn_add_int(b, "page_size", (gint64)f->page_size);
        qn_add_int(b, "pages", (gint64)f->pages);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
}

static void
qn_add_reservations(JsonBuilder *b, const QnLedgerEntry *e)
{
    json_builder_set_member_name(b, "reservations");
    json_builder_begin_array(b);
    for (guint i = 0; i < e->reservations->len; i++) {
        const QnEntryReservation *r = g_ptr_array_index(e->reservations, i);

        json_builder_begin_object(b);
        qn_add_int(b, "guest_node", r->guest_node);
        if (r->memdev != NULL) {
            qn_add_string(b, "memdev", r->memdev);
        }
        qn_add_nodes(b, "host_nodes", r->host_nodes);
        qn_add_int(b, "page_size", (gint64)r->page_size);
        qn_add_int(b, "bytes", (gint64)r->bytes);
        json_builder_set_member_name(b, "pages_per_host_node");
        json_builder_begin_array(b);
        for (guint k = 0; k < r->pages_on->len; k++) {
            const QnEntryNodePages *p = &g_array_index(r->pages_on, QnEntryNodePages, k);

            json_builder_begin_object(b);
            qn_add_int(b, "host_node", p->host_node);
            qn_add_int(b, "pages", (gint64)p->pages);
            json_builder_end_object(b);
        }
        json_builder_end_array(b);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
}

static void
qn_add_pinning(JsonBuilder *b, const QnLedgerEntry *e)
{
    json_builder_set_member_name(b, "pinning");
    if (!e->pinned) {
        json_builder_add_null_value(b);
        return;
    }
    json_builder_begin_object(b);
    qn_add_string(b, "by", e->pinned_by_caller ? "caller" : "qemu-numa");
    json_builder_set_member_name(b, "threads");
    json_builder_begin_array(b);
    for (guint i = 0; i < e->threads->len; i++) {
        const QnEntryThread *t = g_ptr_array_index(e->threads, i);

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "vcpu");
        t->vcpu >= 0 ? json_builder_add_int_value(b, t->vcpu) : json_builder_add_null_value(b);
        qn_add_int(b, "thread_id", t->thread_id);
        qn_add_cpus(b, "pcpus", t->pcpus);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
    json_builder_set_member_name(b, "emulator_pcpus");
    if (e->emulator_pcpus != NULL) {
        g_autofree gchar *emu = qn_bitmap_format_list(e->emulator_pcpus, ",");

        json_builder_add_string_value(b, emu);
    } else {
        json_builder_add_null_value(b);
    }
    json_builder_end_object(b);
}

static void
qn_add_events(JsonBuilder *b, const QnLedgerEntry *e)
{
    json_builder_set_member_name(b, "events");
    json_builder_begin_array(b);
    for (guint i = 0; i < e->events->len; i++) {
        const QnEntryEvent *ev = g_ptr_array_index(e->events, i);

        json_builder_begin_object(b);
        qn_add_string(b, "event", ev->event);
        qn_add_string(b, "time", ev->time);
        if (ev->data != NULL) {
            g_autoptr(JsonNode) d = json_node_new(JSON_NODE_OBJECT);

            json_node_set_object(d, ev->data);
            json_builder_set_member_name(b, "data");
            json_builder_add_value(b, g_steal_pointer(&d));
        }
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
}

static void
qn_add_qemu(JsonBuilder *b, const QnLedgerEntry *e)
{
    json_builder_set_member_name(b, "qemu");
    if (e->qemu_status == NULL) {
        json_builder_add_null_value(b);
        return;
    }
    json_builder_begin_object(b);
    qn_add_string(b, "status", e->qemu_status);
    qn_add_string(b, "time", e->qemu_status_time);
    json_builder_set_member_name(b, "live");
    json_builder_add_boolean_value(b, e->qemu_status_live);
    json_builder_end_object(b);
}

static void
qn_add_migration(JsonBuilder *b, const QnLedgerEntry *e)
{
    json_builder_set_member_name(b, "migration");
    if (e->migration_role == NULL) {
        json_builder_add_null_value(b);
        return;
    }
    json_builder_begin_object(b);
    qn_add_string(b, "role", e->migration_role);
    qn_add_string(b, "status", e->migration_status);
    qn_add_string(b, "time", e->migration_time);
    json_builder_end_object(b);
}

static void
qn_add_node_bytes(JsonBuilder *b, const char *name, const GArray *a)
{
    json_builder_set_member_name(b, name);
    if (a == NULL) {
        json_builder_add_null_value(b);
        return;
    }
    json_builder_begin_array(b);
    for (guint i = 0; i < a->len; i++) {
        const QnEntryNodeBytes *nb = &g_array_index(a, QnEntryNodeBytes, i);

        json_builder_begin_object(b);
        qn_add_int(b, "host_node", nb->host_node);
        qn_add_int(b, "bytes", (gint64)nb->bytes);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
}

static void
qn_add_memory_devices(JsonBuilder *b, const QnLedgerEntry *e)
{
    json_builder_set_member_name(b, "memory_devices");
    if (e->memory_devices == NULL) {
        json_builder_add_null_value(b);
        return;
    }
    json_builder_begin_array(b);
    for (guint i = 0; i < e->memory_devices->len; i++) {
        const QnEntryMemoryDevice *d = g_ptr_array_index(e->memory_devices, i);

        json_builder_begin_object(b);
        qn_add_string(b, "id", d->id);
        qn_add_string(b, "type", d->type);
        qn_add_string(b, "memdev", d->memdev);
        json_builder_set_member_name(b, "node");
        d->node >= 0 ? json_builder_add_int_value(b, d->node) : json_builder_add_null_value(b);
        qn_add_int(b, "size", (gint64)d->size);
        json_builder_set_member_name(b, "requested_size");
        if (strcmp(d->type, "virtio-mem") == 0) {
            json_builder_add_int_value(b, (gint64)d->requested_size);
        } else {
            json_builder_add_null_value(b);
        }
        qn_add_int(b, "backend_size", (gint64)d->backend_size);
        json_builder_set_member_name(b, "hotplugged");
        d->hotplugged >= 0 ? json_builder_add_boolean_value(b, d->hotplugged)
                           : json_builder_add_null_value(b);
        qn_add_int(b, "mappings", d->mappings);
        qn_add_node_bytes(b, "placement", d->placement);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
}

JsonNode *
qn_ledger_entry_to_json(const QnLedgerEntry *e, gboolean with_user)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autoptr(JsonNode) root = NULL;
    GList *members;

    g_assert(e != NULL);
    json_builder_begin_object(b);
    qn_add_int(b, "version", QN_LEDGER_ENTRY_VERSION);
    qn_add_string(b, "name", e->name);
    qn_add_string(b, "uuid", e->uuid);
    qn_add_int(b, "pid", e->pid);
    qn_add_int(b, "start_time", (gint64)e->start_time);
    if (with_user) {
        qn_add_string(b, "user", e->user);
    }
    qn_add_string(b, "state", qn_entry_state_name(e->state));
    qn_add_string(b, "created", e->created);
    if (e->plan != NULL) {
        json_builder_set_member_name(b, "plan");
        json_builder_add_value(b, qn_plan_to_json(e->plan));
    }
    qn_add_reservations(b, e);
    qn_add_free_pages(b, "free_hugepages_before", e->free_before);
    qn_add_free_pages(b, "free_hugepages_after", e->free_after);
    qn_add_cpus(b, "pinned_cpus", e->pinned_cpus);
    if (e->reserve_seconds >= 0) {
        json_builder_set_member_name(b, "reserve_seconds");
        json_builder_add_double_value(b, e->reserve_seconds);
    }
    qn_add_qemu(b, e);
    qn_add_migration(b, e);
    qn_add_node_bytes(b, "measured_memory", e->measured_memory);
    qn_add_memory_devices(b, e);
    qn_add_pinning(b, e);
    qn_add_events(b, e);
    json_builder_end_object(b);
    root = json_builder_get_root(b);
    /* hand edits and members of a newer version come back as they were */
    members = json_object_get_members(e->extra);
    for (GList *l = members; l != NULL; l = l->next) {
        JsonObject *o = json_node_get_object(root);

        if (!json_object_has_member(o, l->data)) {
            json_object_set_member(o, l->data,
                                   json_node_copy(json_object_get_member(e->extra, l->data)));
        }
    }
    g_list_free(members);
    return g_steal_pointer(&root);
}

JsonNode *
qn_ledger_list_to_json(GPtrArray *entries)
{
    g_autoptr(JsonBuilder) b = json_builder_new();

    json_builder_begin_object(b);
    qn_add_int(b, "version", QN_LEDGER_ENTRY_VERSION);
    json_builder_set_member_name(b, "vms");
    json_builder_begin_array(b);
    for (guint i = 0; i < entries->len; i++) {
        json_builder_add_value(b, qn_ledger_entry_to_json(g_ptr_array_index(entries, i), TRUE));
    }
    json_builder_end_array(b);
    json_builder_end_object(b);
    return json_builder_get_root(b);
}

JsonNode *
qn_ledger_events_to_json(const QnLedgerEntry *e)
{
    g_autoptr(JsonBuilder) b = json_builder_new();

    json_builder_begin_object(b);
    qn_add_int(b, "version", QN_LEDGER_ENTRY_VERSION);
    qn_add_int(b, "pid", e->pid);
    qn_add_events(b, e);
    json_builder_end_object(b);
    return json_builder_get_root(b);
}

void
qn_ledger_entry_add_event(QnLedgerEntry *e, const char *event, JsonObject *data, gint64 ts_usec)
{
    QnEntryEvent *ev = g_new0(QnEntryEvent, 1);
    /* g_date_time_new_from_unix_utc_usec() is glib 2.80: build it from seconds + usec. */
    g_autoptr(GDateTime) secs = g_date_time_new_from_unix_utc(ts_usec / G_USEC_PER_SEC);
    g_autoptr(GDateTime) t = secs ? g_date_time_add(secs, ts_usec % G_USEC_PER_SEC) : NULL;

    ev->event = g_strdup(event);
    ev->time = t ? g_date_time_format_iso8601(t) : g_strdup("");
    ev->data = data ? json_object_ref(data) : NULL;
    while (e->events->len >= QN_LEDGER_MAX_EVENTS) {
        g_ptr_array_remove_index(e->events, 0);
    }
    g_ptr_array_add(e->events, ev);
}

void
qn_ledger_entry_set_qemu_status(QnLedgerEntry *e, const char *status)
{
    g_free(e->qemu_status);
    g_free(e->qemu_status_time);
    e->qemu_status = g_strdup(status);
    e->qemu_status_time = qn_now_iso8601();
    e->qemu_status_live = FALSE;
}

void
qn_ledger_entry_end_incoming(QnLedgerEntry *e)
{
    if (e->state == QN_ENTRY_INCOMING) {
        e->state = e->plan != NULL && e->plan->kind == QN_PLAN_ALIGNED ? QN_ENTRY_RESERVED
                                                                        : QN_ENTRY_FALLBACK;
    }
}

/* A migration that is over: QEMU's MigrationStatus values that end one. */
static gboolean
qn_migration_over(const char *status)
{
    return status == NULL || !strcmp(status, "completed") || !strcmp(status, "failed") ||
           !strcmp(status, "cancelled") || !strcmp(status, "none");
}

void
qn_ledger_entry_note_migration(QnLedgerEntry *e, const char *status)
{
    /* A destination resumes its guest before its last MIGRATION event (QEMU 7.2
     * process_incoming_migration_bh: vm_start(), then "completed"): a destination's migration
     * under way stays the destination's whatever the state says by then. */
    gboolean dest = e->state == QN_ENTRY_INCOMING ||
                    (g_strcmp0(e->migration_role, "destination") == 0 &&
                     !qn_migration_over(e->migration_status));

    g_free(e->migration_role);
    g_free(e->migration_status);
    g_free(e->migration_time);
    e->migration_role = g_strdup(dest ? "destination" : "source");
    e->migration_status = g_strdup(status);
    e->migration_time = qn_now_iso8601();
    if (g_strcmp0(status, "completed") == 0) {
        qn_ledger_entry_end_incoming(e);
    }
}

static gint
qn_node_bytes_cmp(gconstpointer a, gconstpointer b)
{
    const QnEntryNodeBytes *x = a, *y = b;

    return x->host_node < y->host_node ? -1 : x->host_node > y->host_node;
}

void
qn_ledger_entry_set_measured_memory(QnLedgerEntry *e, GHashTable *per_node)
{
    GHashTableIter it;
    gpointer k, v;

    g_clear_pointer(&e->measured_memory, g_array_unref);
    e->measured_memory = g_array_new(FALSE, TRUE, sizeof(QnEntryNodeBytes));
    g_hash_table_iter_init(&it, per_node);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        QnEntryNodeBytes nb = { GPOINTER_TO_UINT(k), GPOINTER_TO_SIZE(v) };

        g_array_append_val(e->measured_memory, nb);
    }
    g_array_sort(e->measured_memory, qn_node_bytes_cmp);
}

JsonNode *
qn_exit_record_to_json(gint pid, const char *name, const char *time, gint exit_status,
                       gint signal, const char *reason)
{
    g_autoptr(JsonBuilder) b = json_builder_new();

    json_builder_begin_object(b);
    qn_add_int(b, "version", QN_LEDGER_ENTRY_VERSION);
    qn_add_int(b, "pid", pid);
    qn_add_string(b, "name", name);
    qn_add_string(b, "time", time);
    json_builder_set_member_name(b, "exit_status");
    exit_status >= 0 ? json_builder_add_int_value(b, exit_status)
                     : json_builder_add_null_value(b);
    json_builder_set_member_name(b, "signal");
    signal > 0 ? json_builder_add_int_value(b, signal) : json_builder_add_null_value(b);
    qn_add_string(b, "reason", reason);
    json_builder_end_object(b);
    return json_builder_get_root(b);
}

/* ---- launches.jsonl (issue 17): one line per launch outcome ---- */

static const char *const qn_outcome_names[] = { "placed", "fallback", "refused", "incoming" };

G_STATIC_ASSERT(G_N_ELEMENTS(qn_outcome_names) == QN_LAUNCH_OUTCOMES);

const char *
qn_launch_outcome_name(QnLaunchOutcome o)
{
    g_assert((guint)o < G_N_ELEMENTS(qn_outcome_names));
    return qn_outcome_names[o];
}

/* QnError codes as a record names them (qn-error.h's order) */
static const char *const qn_error_names[] = {
    "failed", "bad-argv", "bad-config", "topology", "no-fit", "hugepages", "placement",
    "ledger", "exec", "qmp", "qmp-command", "json",
};

G_STATIC_ASSERT(G_N_ELEMENTS(qn_error_names) == QN_ERROR_JSON + 1);

static const char *
qn_error_code_name(const GError *error)
{
    if (error->domain != QN_ERROR || error->code < 0 ||
        (guint)error->code >= G_N_ELEMENTS(qn_error_names)) {
        return "failed";
    }
    return qn_error_names[error->code];
}

/* @raw as valid UTF-8 of at most QN_LAUNCH_RECORD_TEXT_MAX characters */
static gchar *
qn_record_text(const char *raw)
{
    g_autofree gchar *utf8 = qn_ledger_name_to_utf8(raw);

    if (utf8 == NULL || g_utf8_strlen(utf8, -1) <= QN_LAUNCH_RECORD_TEXT_MAX) {
        return g_steal_pointer(&utf8);
    }
    return g_utf8_substring(utf8, 0, QN_LAUNCH_RECORD_TEXT_MAX);
}

void
qn_launch_record_free(QnLaunchRecord *r)
{
    if (r == NULL) {
        return;
    }
    g_free(r->name);
    g_free(r->time);
    g_free(r->fallback_class);
    g_free(r->error);
    g_free(r->message);
    g_free(r);
}

QnLaunchRecord *
qn_launch_record_new(gint pid, const char *name, QnLaunchOutcome outcome, QnPolicy policy,
                     const GError *error, const char *fallback_reason)
{
    QnLaunchRecord *r = g_new0(QnLaunchRecord, 1);

    r->pid = pid;
    r->name = qn_record_text(name);
    r->time = qn_now_iso8601();
    r->outcome = outcome;
    r->policy = policy;
    r->reserve_seconds = -1;
    if (error != NULL) {
        r->error = g_strdup(qn_error_code_name(error));
        r->message = qn_record_text(error->message);
    } else if (fallback_reason != NULL) {
        r->fallback_class = g_strdup(qn_launch_fallback_class(fallback_reason));
        r->message = qn_record_text(fallback_reason);
    }
    return r;
}

const char *
qn_launch_fallback_class(const char *reason)
{
    /* the phrases qn_launch_reserve() and qn-plan-cpus.c's qn_planner_no_fit() begin with */
    if (reason != NULL && g_str_has_prefix(reason, "reservation failed")) {
        return "reservation";
    }
    if (reason != NULL && g_str_has_prefix(reason, "dedicated CPUs")) {
        return "cpus";
    }
    return "memory";
}

JsonNode *
qn_launch_record_to_json(const QnLaunchRecord *r)
{
    g_autoptr(JsonBuilder) b = json_builder_new();

    g_assert(r != NULL);
    json_builder_begin_object(b);
    qn_add_int(b, "version", QN_LEDGER_ENTRY_VERSION);
    qn_add_int(b, "pid", r->pid);
    qn_add_string(b, "name", r->name);
    qn_add_string(b, "time", r->time);
    qn_add_string(b, "outcome", qn_launch_outcome_name(r->outcome));
    qn_add_string(b, "policy", qn_policy_to_string(r->policy));
    qn_add_string(b, "fallback_class", r->fallback_class);
    qn_add_string(b, "error", r->error);
    qn_add_string(b, "message", r->message);
    json_builder_set_member_name(b, "reserve_seconds");
    r->reserve_seconds >= 0 ? json_builder_add_double_value(b, r->reserve_seconds)
                            : json_builder_add_null_value(b);
    qn_add_int(b, "reserved_bytes", (gint64)MIN(r->reserved_bytes, (guint64)G_MAXINT64));
    json_builder_end_object(b);
    return json_builder_get_root(b);
}

/* @s's index in @names, or -1 */
static gint
qn_name_index(const char *s, const char *const *names, guint n)
{
    for (guint i = 0; s != NULL && i < n; i++) {
        if (strcmp(s, names[i]) == 0) {
            return (gint)i;
        }
    }
    return -1;
}

QnLaunchRecord *
qn_launch_record_from_json(JsonNode *node, GError **error)
{
    g_autoptr(QnLaunchRecord) r = g_new0(QnLaunchRecord, 1);
    JsonObject *o;
    guint64 pid = 0, bytes = 0;
    gint outcome, policy = -1;
    const char *s, *ps;

    if (node == NULL || !JSON_NODE_HOLDS_OBJECT(node)) {
        g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "launch record: not a JSON object");
        return NULL;
    }
    o = json_node_get_object(node);
    outcome = qn_name_index(qn_json_get_string(o, "outcome", NULL), qn_outcome_names,
                            G_N_ELEMENTS(qn_outcome_names));
    ps = qn_json_get_string(o, "policy", "");
    for (guint p = QN_POLICY_NONE; p <= QN_POLICY_SINGLE_NUMA_NODE; p++) {
        policy = strcmp(ps, qn_policy_to_string(p)) == 0 ? (gint)p : policy;
    }
    if (!qn_member_uint(o, "pid", G_MAXINT, &pid) || pid <= 1 || outcome < 0 || policy < 0) {
        g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "launch record: member '%s' does not "
                    "read", outcome < 0 ? "outcome" : policy < 0 ? "policy" : "pid");
        return NULL;
    }
    r->pid = (gint)pid;
    r->outcome = (QnLaunchOutcome)outcome;
    r->policy = (QnPolicy)policy;
    r->reserve_seconds = -1;
    if (!qn_read_seconds(o, "reserve_seconds", &r->reserve_seconds)) {
        r->reserve_seconds = -1;
    }
    if (qn_member_uint(o, "reserved_bytes", G_MAXINT64, &bytes)) {
        r->reserved_bytes = bytes;
    }
    r->name = qn_json_member_string(o, "name", NULL, &s) ? g_strdup(s) : NULL;
    r->time = g_strdup(qn_json_get_string(o, "time", NULL));
    r->fallback_class = g_strdup(qn_json_get_string(o, "fallback_class", NULL));
    r->error = g_strdup(qn_json_get_string(o, "error", NULL));
    r->message = g_strdup(qn_json_get_string(o, "message", NULL));
    return g_steal_pointer(&r);
}

void
qn_entry_memory_device_free(QnEntryMemoryDevice *d)
{
    if (d == NULL) {
        return;
    }
    g_free(d->id);
    g_free(d->type);
    g_free(d->memdev);
    g_clear_pointer(&d->placement, g_array_unref);
    g_free(d);
}

/* QEMU names a backend by its QOM path, "/objects/<id>" for one made by -object or object-add */
static gchar *
qn_memdev_id(const char *path)
{
    const char *slash = path ? strrchr(path, '/') : NULL;

    return path == NULL ? NULL : g_strdup(slash ? slash + 1 : path);
}

GPtrArray *
qn_entry_memory_devices_from_qmp(JsonNode *reply)
{
    GPtrArray *devs;
    JsonArray *a;

    if (reply == NULL || !JSON_NODE_HOLDS_ARRAY(reply)) {
        return NULL;
    }
    a = json_node_get_array(reply);
    devs = g_ptr_array_new_with_free_func((GDestroyNotify)qn_entry_memory_device_free);
    for (guint i = 0; i < json_array_get_length(a); i++) {
        JsonObject *x = qn_element_object(a, i);
        JsonNode *dn = x ? json_object_get_member(x, "data") : NULL;
        JsonObject *data;
        QnEntryMemoryDevice *d;
        JsonNode *hp;
        guint64 v;

        if (dn == NULL || !JSON_NODE_HOLDS_OBJECT(dn)) {
            continue;
        }
        data = json_node_get_object(dn);
        d = g_new0(QnEntryMemoryDevice, 1);
        d->type = qn_ledger_name_to_utf8(qn_json_get_string(x, "type", "unknown"));
        d->id = qn_ledger_name_to_utf8(qn_json_get_string(data, "id", NULL));
        {
            g_autofree gchar *raw = qn_memdev_id(qn_json_get_string(data, "memdev", NULL));

            d->memdev = qn_ledger_name_to_utf8(raw);
        }
        d->node = qn_member_uint(data, "node", 65535, &v) ? (gint)v : -1;
        d->size = qn_member_uint(data, "size", G_MAXINT64, &v) ? v : 0;
        d->requested_size = qn_member_uint(data, "requested-size", G_MAXINT64, &v) ? v : 0;
        /* virtio-mem maps its whole region (max-size) and plugs blocks of it */
        d->backend_size = qn_member_uint(data, "max-size", G_MAXINT64, &v) ? v : d->size;
        hp = json_object_get_member(data, "hotplugged");
        d->hotplugged = hp != NULL && JSON_NODE_HOLDS_VALUE(hp) &&
                                json_node_get_value_type(hp) == G_TYPE_BOOLEAN
                            ? json_node_get_boolean(hp)
                            : -1;
        g_ptr_array_add(devs, d);
    }
    return devs;
}

static GArray *
qn_node_bytes_from_table(GHashTable *per_node)
{
    GArray *out = g_array_new(FALSE, TRUE, sizeof(QnEntryNodeBytes));
    GHashTableIter it;
    gpointer k, v;

    g_hash_table_iter_init(&it, per_node);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        QnEntryNodeBytes nb = { GPOINTER_TO_UINT(k), GPOINTER_TO_SIZE(v) };

        g_array_append_val(out, nb);
    }
    g_array_sort(out, qn_node_bytes_cmp);
    return out;
}

void
qn_entry_memory_devices_measure(GPtrArray *devs, const char *maps, const char *numa_maps)
{
    g_assert(devs != NULL);
    for (guint i = 0; i < devs->len; i++) {
        QnEntryMemoryDevice *d = g_ptr_array_index(devs, i);
        g_autoptr(GHashTable) per_node = NULL;

        g_clear_pointer(&d->placement, g_array_unref);
        d->mappings = 0;
        if (maps == NULL || numa_maps == NULL || d->backend_size == 0) {
            continue;
        }
        per_node = qn_parse_numa_maps_mapping(maps, numa_maps, d->backend_size, &d->mappings);
        if (per_node != NULL) {
            d->placement = qn_node_bytes_from_table(per_node);
        }
    }
}

gboolean
qn_entry_memory_devices_equal(GPtrArray *a, GPtrArray *b)
{
    if (a == NULL || b == NULL) {
        return a == b;
    }
    if (a->len != b->len) {
        return FALSE;
    }
    for (guint i = 0; i < a->len; i++) {
        const QnEntryMemoryDevice *x = g_ptr_array_index(a, i);
        const QnEntryMemoryDevice *y = g_ptr_array_index(b, i);

        if (g_strcmp0(x->id, y->id) != 0 || g_strcmp0(x->type, y->type) != 0 ||
            g_strcmp0(x->memdev, y->memdev) != 0 || x->node != y->node ||
            x->size != y->size || x->requested_size != y->requested_size ||
            x->backend_size != y->backend_size || x->hotplugged != y->hotplugged) {
            return FALSE;
        }
    }
    return TRUE;
}

void
qn_ledger_entry_set_memory_devices(QnLedgerEntry *e, GPtrArray *devs)
{
    g_clear_pointer(&e->memory_devices, g_ptr_array_unref);
    e->memory_devices = devs;
}
