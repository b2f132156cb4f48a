/* Hotplug memory: the argv's pc-dimm, nvdimm and virtio-mem devices, bound where their guest
 * node is.
 *
 * Rules: a memory device belongs to the guest node of its node= property (QEMU's default 0;
 * hw/mem/pc-dimm.c, hw/virtio/virtio-mem.c put its memory in that node's SRAT range or its
 * hotplug range), so its backend must be on that guest node's host nodes, with the guest
 * node's policy (QEMU backends/hostmem.c host_memory_backend_memory_complete() mbinds the
 * range to host-nodes= with policy= before it preallocates, and Linux allocates on first touch
 * otherwise: on whatever node the touching vCPU thread runs). A backend that names its own
 * host-nodes keeps them, as libvirt's <numatune><memnode> does for guest nodes. Each device is
 * counted in the plan; a host node short of room for it is noted, not refused: the device
 * may be plugged later, or never filled (virtio-mem requested-size=0). */
#include "qn-planner.h"

static const QnGuestNode *
qn_memdev_guest_node(const QnPlan *plan, guint id)
{
    for (guint i = 0; i < plan->guest_nodes->len; i++) {
        const QnGuestNode *g = g_ptr_array_index(plan->guest_nodes, i);

        if (g->id == id) {
            return g;
        }
    }
    return NULL;
}

/* Bytes the plan puts on host node @h in @page_size pages (guest nodes with the headroom set
 * so far, devices before @upto included). */
static guint64
qn_memdev_host_bytes(const QnPlan *plan, guint h, guint64 page_size, guint upto)
{
    guint64 sum = 0;

    for (guint i = 0; i < plan->guest_nodes->len; i++) {
        const QnGuestNode *g = g_ptr_array_index(plan->guest_nodes, i);
        guint nh = qn_bitmap_count(g->host_nodes);

        if (g->page_size == page_size && nh > 0 && qn_bitmap_test(g->host_nodes, h)) {
            sum += (g->bytes + g->headroom) / nh;
        }
    }
    for (guint i = 0; i <= upto && i < plan->mem_devices->len; i++) {
        const QnPlanMemDevice *d = g_ptr_array_index(plan->mem_devices, i);
        guint nh = qn_bitmap_count(d->host_nodes);

        if (d->page_size == page_size && nh > 0 && qn_bitmap_test(d->host_nodes, h)) {
            sum += d->bytes / nh;
        }
    }
    return sum;
}

static void
qn_memdev_note(QnPlan *plan, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void
qn_memdev_note(QnPlan *plan, const char *fmt, ...)
{
    va_list ap;
    g_autofree gchar *note = NULL;
    gchar *r;

    va_start(ap, fmt);
    note = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    r = plan->reason ? g_strdup_printf("%s; %s", plan->reason, note) : g_steal_pointer(&note);
    g_free(plan->reason);
    plan->reason = r;
}

/* Does backend @b preallocate (prealloc=on, keyval or JSON)? */
static gboolean
qn_memdev_prealloc(const QnMemoryBackend *b)
{
    JsonNode *n = json_object_get_member(b->props, "prealloc");

    if (n == NULL || !JSON_NODE_HOLDS_VALUE(n)) {
        return FALSE;
    }
    if (json_node_get_value_type(n) == G_TYPE_BOOLEAN) {
        return json_node_get_boolean(n);
    }
    return json_node_get_value_type(n) == G_TYPE_STRING &&
           (g_strcmp0(json_node_get_string(n), "on") == 0 ||
            g_strcmp0(json_node_get_string(n), "yes") == 0 ||
            g_strcmp0(json_node_get_string(n), "true") == 0);
}

/* The hugepage size of the plan's guest nodes (the size of its hugetlbfs mount), or 0. */
static guint64
qn_memdev_plan_page_size(const QnPlan *plan)
{
    for (guint i = 0; i < plan->guest_nodes->len; i++) {
        const QnGuestNode *g = g_ptr_array_index(plan->guest_nodes, i);

        if (g->page_size != 0) {
            return g->page_size;
        }
    }
    return 0;
}

/* One device placed: bound to its guest node's host nodes, or the user's own. */
static void
qn_memdev_place(QnPlanner *p, const QnMemDevice *md, const QnMemoryBackend *b)
{
    QnPlan *plan = p->plan;
    const QnGuestNode *g = qn_memdev_guest_node(plan, md->node);
    QnPlanMemDevice *d = g_new0(QnPlanMemDevice, 1);
    QnMemoryMode user_mode;

    d->memdev = g_strdup(b->id);
    d->driver = g_strdup(md->driver);
    d->node = md->node;
    d->bytes = b->size;
    d->page_size = qn_shape_backend_page_size(p, b);
    d->host_nodes = qn_bitmap_new();
    d->mode = g != NULL ? g->mode : p->cfg->memory_mode;
    if (b->host_nodes != NULL && qn_bitmap_count(b->host_nodes) > 0) {
        qn_bitmap_or(d->host_nodes, b->host_nodes);
        d->host_nodes_from_user = TRUE;
        if (qn_memory_mode_from_qemu(b->policy, &user_mode)) {
            d->mode = user_mode;
        }
    } else if (g != NULL) {
        qn_bitmap_or(d->host_nodes, g->host_nodes);
    } else {
        qn_memdev_note(plan, "%s %s: no guest node %u, left unbound", md->driver, b->id,
                       md->node);
    }
    /* A hugepage DIMM QEMU would preallocate: we take its pages the way we take a guest
     * node's (reserved, verified page by page, in the ledger), when they are of the mount the
     * plan reserves from; others stay QEMU's to allocate, bound. Not virtio-mem: it plugs
     * blocks of its region at run time (requested-size) and preallocates those with its own
     * prealloc property (hw/virtio/virtio-mem.c), so taking the whole region up front would
     * hold pages the guest may never get. */
    d->reserve = d->page_size != 0 && !d->host_nodes_from_user &&
                 !g_str_has_prefix(md->driver, "virtio-mem") &&
                 qn_bitmap_count(d->host_nodes) > 0 && qn_memdev_prealloc(b) &&
                 plan->hugetlbfs != NULL && d->page_size == qn_memdev_plan_page_size(plan) &&
                 d->bytes % d->page_size == 0;
    g_ptr_array_add(plan->mem_devices, d);
    QN_BITMAP_FOREACH(d->host_nodes, h) {
        guint64 want = qn_memdev_host_bytes(plan, (guint)h, d->page_size,
                                            plan->mem_devices->len - 1);

        if (want > qn_capacity(p, (guint)h, d->page_size)) {
            g_autofree gchar *sz = qn_size_format(d->bytes);

            qn_memdev_note(plan, "%s %s (%s): host node %d has no room for it now", md->driver,
                           b->id, sz, h);
        }
    }
}

/*
 * hotplug-headroom = on: the room -m maxmem= leaves for hotplug (maxmem - ram - the argv's
 * memory devices; QEMU hw/i386/pc.c pc_memory_init() makes the device region of maxmem - ram)
 * is held on the guest nodes' host nodes, in their page sizes, as a reservation in the ledger
 * that is never allocated: other launches plan around it (qn_ledger_entry_add_reservations()),
 * and a later object-add + device_add finds its pages. Split evenly over the guest nodes with
 * memory, in whole pages, the remainder's pages to the first nodes; a host node that lacks the
 * room now is noted, not refused (the same rule as a device's).
 */
static void
qn_memdev_headroom(QnPlanner *p)
{
    QnPlan *plan = p->plan;
    guint64 used = p->qa->ram_size;
    guint64 room;
    guint n = 0;

    for (guint i = 0; i < plan->mem_devices->len; i++) {
        used += ((const QnPlanMemDevice *)g_ptr_array_index(plan->mem_devices, i))->bytes;
    }
    for (guint i = 0; i < plan->guest_nodes->len; i++) {
        const QnGuestNode *g = g_ptr_array_index(plan->guest_nodes, i);

        n += g->bytes > 0 && qn_bitmap_count(g->host_nodes) > 0;
    }
    if (p->qa->maxmem <= used || n == 0) {
        return;
    }
    room = p->qa->maxmem - used;
    for (guint i = 0, k = 0; i < plan->guest_nodes->len; i++) {
        QnGuestNode *g = g_ptr_array_index(plan->guest_nodes, i);
        guint64 page = g->page_size ? g->page_size : 4096;
        guint64 pages = room / page;
        guint nh = qn_bitmap_count(g->host_nodes);

        if (g->bytes == 0 || nh == 0) {
            continue;
        }
        /* whole pages on each host node of the guest node */
        g->headroom = (pages / n + (k < pages % n)) * page;
        g->headroom -= g->headroom % (page * nh);
        k++;
        QN_BITMAP_FOREACH(g->host_nodes, h) {
            guint64 want = qn_memdev_host_bytes(plan, (guint)h, g->page_size,
                                                plan->mem_devices->len);

            if (g->headroom > 0 && want > qn_capacity(p, (guint)h, g->page_size)) {
                g_autofree gchar *sz = qn_size_format(g->headroom);

                qn_memdev_note(plan, "hotplug headroom %s of guest %u: host node %d has no "
                               "room for it now", sz, g->id, h);
            }
        }
    }
}

/**
 * qn_plan_stage_mem_devices:
 * Places the argv's hotplug memory devices (QnQemuArgv.mem_devices) on p->plan: one
 * QnPlanMemDevice each, in argv order. A device whose memdev names no memory backend is left
 * to QEMU (which refuses it). Never fails.
 */
QnStageResult
qn_plan_stage_mem_devices(QnPlanner *p, GError **error)
{
    (void)error;
    for (guint i = 0; i < p->qa->mem_devices->len; i++) {
        const QnMemDevice *md = g_ptr_array_index(p->qa->mem_devices, i);
        const QnMemoryBackend *b = qn_qemu_argv_find_backend(p->qa, md->memdev);

        if (b != NULL) {
            qn_memdev_place(p, md, b);
        }
    }
    if (p->cfg->hotplug_headroom && p->plan->kind == QN_PLAN_ALIGNED) {
        qn_memdev_headroom(p);
    }
    return QN_STAGE_OK;
}
