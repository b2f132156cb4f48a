/* The destination of a live migration (-incoming): the argv alone decides the guest's layout.
 *
 * QEMU matches RAM blocks by name and size (migration/ram.c: "Unknown ramblock", "Size
 * mismatch"), with postcopy their page sizes too ("Mismatched RAM page size"), and it has no
 * command that changes a backend's host-nodes at runtime. So a destination must give the guest
 * exactly the layout the source gave it, whatever this host's free pages or the guest-nodes
 * setting would choose for a new guest (issue 14):
 *   - with a topology in the argv (the user's -numa lines, libvirt's, `qemu-numa-ctl
 *     migrate-args`), only the host nodes behind it are chosen here, as Nova re-fits a
 *     migrated guest's NUMA topology to the destination since Train; the shape stage keeps
 *     that topology already;
 *   - with none, the guest keeps the one node the source had (pc.ram, qn-plan-shape.c), backed
 *     by as many host nodes as it needs (a nodeset, bound or interleaved);
 *   - a layout this host cannot hold is refused before QEMU starts listening, naming the guest
 *     node that does not fit: the source then sees a refused connection, not a half-received
 *     guest. Best-effort refuses only a node whose page size the argv fixes (QEMU itself would
 *     fail to pre-allocate it); a node whose page size is ours falls back as any launch does.
 */
#include "qn-planner.h"

#include "qn-error.h"

/* The guest node @i as the argv gives it: its bytes (0: not known before the search), its
 * page size (-1: ours), its host nodes (nullable) and its backend id. */
static void
qn_incoming_node(const QnPlanner *p, guint i, guint64 *ret_bytes, gint64 *ret_ps,
                 const QnBitmap **ret_hosts, const char **ret_memdev, guint *ret_id)
{
    const QnShapeNode *s = p->shape ? g_ptr_array_index(p->shape, i) : NULL;

    *ret_bytes = s ? (p->user_sizes ? s->bytes : 0) : p->qa->ram_size;
    *ret_ps = s ? s->page_size : -1;
    *ret_hosts = s ? s->user_hosts : NULL;
    *ret_memdev = s && s->memdev ? s->memdev : QN_MACHINE_RAM_ID;
    *ret_id = s ? s->id : 0;
}

/* Free bytes of @ps on @node, less what earlier guest nodes took in this check (@taken: one
 * guint64 per node id and page size index). */
static guint64
qn_incoming_room(const QnPlanner *p, const guint64 *taken, guint node, guint k, guint64 ps)
{
    guint64 cap = qn_capacity(p, node, ps);
    guint64 t = taken[node * (p->page_sizes->len + 1) + k];

    return cap > t ? cap - t : 0;
}

/* Can @bytes of @ps (index @k in the sizes tried) go on @hosts (NULL: any usable node; one node
 * unless p->span)? Takes it from @taken if so. *@ret_most: the most one node (or, spanning,
 * the nodes together) still has. */
static gboolean
qn_incoming_take(const QnPlanner *p, guint64 *taken, guint64 bytes, guint k, guint64 ps,
                 const QnBitmap *hosts, guint64 *ret_most)
{
    guint stride = p->page_sizes->len + 1;
    guint64 sum = 0, best_room = 0;
    gint best = -1;

    *ret_most = 0;
    if (ps != 0 && bytes % ps != 0) {
        return FALSE;
    }
    for (guint i = 0; i < p->usable->len; i++) {
        guint id = g_array_index(p->usable, guint, i);
        guint64 room = qn_incoming_room(p, taken, id, k, ps);

        if (hosts != NULL && !qn_bitmap_test(hosts, id)) {
            continue;
        }
        sum += room;
        *ret_most = MAX(*ret_most, room);
        if (room >= bytes && (best < 0 || room < best_room)) {
            best = (gint)id; /* best fit: the node with the least room that holds it */
            best_room = room;
        }
    }
    if (hosts != NULL || p->span) {
        *ret_most = sum;
        if (sum < bytes) {
            return FALSE;
        }
        for (guint i = 0; i < p->usable->len && bytes > 0; i++) {
            guint id = g_array_index(p->usable, guint, i);
            guint64 give;

            if (hosts != NULL && !qn_bitmap_test(hosts, id)) {
                continue;
            }
            give = MIN(bytes, qn_incoming_room(p, taken, id, k, ps));
            taken[id * stride + k] += give;
            bytes -= give;
        }
        return TRUE;
    }
    if (best < 0) {
        return FALSE;
    }
    taken[(guint)best * stride + k] += bytes;
    return TRUE;
}

/* May a guest node whose page size is ours take regular memory? As the search's regular pass:
 * not when a configured hugepage size is a requirement (any policy but best-effort). */
static gboolean
qn_incoming_regular_allowed(const QnPlanner *p)
{
    guint64 want = p->cfg->hugepage_size;

    return p->cfg->policy == QN_POLICY_BEST_EFFORT || want == QN_HUGEPAGE_SIZE_AUTO ||
           want == QN_HUGEPAGE_SIZE_NONE;
}

/* The guest node that does not fit, as one line; %NULL when each fits in turn. The page sizes
 * a node may take: the argv's, else the hugepage sizes tried and regular memory. */
static gchar *
qn_incoming_misfit(const QnPlanner *p)
{
    guint n = p->shape ? p->shape->len : 1;
    guint nps = p->page_sizes->len;
    g_autofree guint64 *taken = g_new0(guint64, (gsize)p->dim * (nps + 1));

    for (guint i = 0; i < n; i++) {
        guint64 bytes, most = 0, most_ps = 0;
        gint64 fixed;
        const QnBitmap *hosts;
        const char *memdev;
        guint id;
        gboolean fits = FALSE;

        qn_incoming_node(p, i, &bytes, &fixed, &hosts, &memdev, &id);
        if (bytes == 0) {
            continue; /* memory-less, or sized by the search: nothing fixed to check */
        }
        for (guint k = 0; k <= nps && !fits; k++) {
            guint64 ps = k < nps ? g_array_index(p->page_sizes, guint64, k) : 0;
            guint64 m = 0;

            if ((fixed >= 0 && (guint64)fixed != ps) || (fixed < 0 && k == nps &&
                                                          !qn_incoming_regular_allowed(p))) {
                continue;
            }
            fits = qn_incoming_take(p, taken, bytes, k, ps, hosts, &m);
            if (k == 0 || (fixed >= 0)) {
                most = m;
                most_ps = ps;
            }
        }
        if (!fits && (fixed > 0 || p->cfg->policy != QN_POLICY_BEST_EFFORT)) {
            g_autofree gchar *b = qn_size_format(bytes);
            g_autofree gchar *ps = most_ps ? qn_size_format(most_ps) : g_strdup("4K");
            g_autofree gchar *m = qn_size_format(most);

            return g_strdup_printf("-incoming: guest node %u (memdev '%s', %s in %s pages) does "
                                   "not fit on this host: %s free %s", id, memdev, b, ps, m,
                                   hosts != NULL || p->span ? "on the host nodes it may use"
                                                            : "on one host node at most");
        }
    }
    return NULL;
}

/**
 * qn_plan_stage_incoming:
 * Under -incoming: an argv without a topology keeps one guest node (pc.ram), whatever
 * guest-nodes says, and that node may span host nodes (p->span, unless single-numa-node); then
 * a guest node this host cannot hold is a %QN_ERROR_NO_FIT naming it (see the top of this
 * file for when best-effort refuses). Nothing changes without -incoming.
 */
QnStageResult
qn_plan_stage_incoming(QnPlanner *p, GError **error)
{
    g_autofree gchar *misfit = NULL;

    if (p->qa->incoming == NULL) {
        return QN_STAGE_OK;
    }
    if (p->shape == NULL) {
        guint one = 1;

        p->kind = QN_GUEST_TOPOLOGY_INCOMING;
        p->fixed_shape = TRUE;
        p->span = !p->single;
        g_array_set_size(p->counts, 0);
        g_array_append_val(p->counts, one);
    }
    misfit = qn_incoming_misfit(p);
    if (misfit != NULL) {
        g_set_error_literal(error, QN_ERROR, QN_ERROR_NO_FIT, misfit);
        return QN_STAGE_ERROR;
    }
    return QN_STAGE_OK;
}

/**
 * qn_plan_stage_incoming_note:
 * Under -incoming, the plan's reason says that its guest layout is the argv's, and why its one
 * node spans host nodes when it does.
 */
QnStageResult
qn_plan_stage_incoming_note(QnPlanner *p, GError **error)
{
    QnPlan *plan = p->plan;
    g_autofree gchar *note = NULL;

    if (p->qa->incoming == NULL || plan == NULL) {
        return QN_STAGE_OK;
    }
    if (p->kind == QN_GUEST_TOPOLOGY_INCOMING) {
        const QnGuestNode *g = g_ptr_array_index(plan->guest_nodes, 0);
        g_autofree gchar *hosts = qn_bitmap_format_list(g->host_nodes, ",");

        note = g_strdup_printf("incoming migration: one guest node as the argv gives it (%s), "
                               "whatever guest-nodes says%s%s%s", g->memdev,
                               qn_bitmap_count(g->host_nodes) > 1
                                   ? "; no one host node holds it: on host nodes " : "",
                               qn_bitmap_count(g->host_nodes) > 1 ? hosts : "",
                               qn_bitmap_count(g->host_nodes) > 1 ? " together" : "");
    } else {
        note = g_strdup("incoming migration: the argv's guest layout is kept; only its host "
                        "nodes are chosen here");
    }
    if (plan->reason != NULL) {
        gchar *r = g_strdup_printf("%s; %s", plan->reason, note);

        g_free(plan->reason);
        plan->reason = r;
    } else {
        plan->reason = g_steal_pointer(&note);
    }
    return QN_STAGE_OK;
}
