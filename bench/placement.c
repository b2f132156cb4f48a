/* Placement simulator: our planner (libqncore, not a copy) against baseline planners written
 * from the published algorithms, on the same topology, trace and accounting.
 *
 * Usage: bench-placement [--smoke] [--seeds A,B,C] [--out DIR] TOPOLOGY-DIR...
 *        bench-placement --self-test TOPOLOGY-DIR     (the books' own test: TAP)
 *
 * One set of books for every planner (books_take/books_release): 2M hugepages per node (90% of
 * the node's memory, CPU-less nodes included) and dedicated pCPUs (one per vCPU), each pCPU a
 * bit in Host.pinned, whoever placed the VM. A placement that names no pCPUs (a baseline, the
 * OS) gets the lowest free pCPUs of each of its nodes; one that names them (ours) must name free
 * ones. Every take and release is checked against the capacities; a violation ends the run
 * naming the planner, the VM and the node (exit 3).
 *
 * Deviations of the baselines from their real code, and whom they favour (README, Benchmarks):
 * - every baseline sees exact free hugepages per node (numad, Cloudpods and libxl read free
 *   memory, not hugepage pools): favours them;
 * - numad: magnitude = free pages x free pCPUs summed over all nodes weighted by 1/d^2 (real
 *   numad: its own magnitude over the minimum node count, nearest first, growing by at least
 *   that count, with a 100 MB margin): generous to numad, which here can always pick the best
 *   centre of the whole host;
 * - Xen libxl: candidate sets by free memory and busy vCPUs as in libxl_numa.c, but no memory
 *   claim check and no "cpupool" restriction: neutral;
 * - Nova: the flavor's hw:numa_nodes is chosen for it (as many cells as a node cannot hold), no
 *   PCI or pagesize extra specs: neutral;
 * - the OS model (no binding): vCPUs start on the node with the most free pCPUs and spread to the
 *   nearest, memory local-first (each vCPU's share on its node, spilling to the nearest nodes
 *   with free pages), as Linux's default policy does; the older proportional model (memory over
 *   every node in proportion to its free pages) is a second row. Every planner that falls back
 *   falls back to the local-first model, so acceptance cannot separate them: only Nova rejects. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench-common.h"
#include "qn-argv.h"
#include "qn-config.h"
#include "qn-plan.h"
#include "qn-size.h"
#include "qn-sysfs.h"

#define PAGE (2 * QN_MiB)
#define GIB_PAGES 512
#define MAXN 64
#define MAXSEEDS 8
#define EXIT_BOOKS 3

typedef struct {
    guint n;                 /* nodes */
    guint id[MAXN];          /* kernel ids */
    guint dist[MAXN][MAXN];
    guint64 pages[MAXN];     /* capacity */
    guint cpus[MAXN];        /* capacity */
    guint64 free_pages[MAXN];
    guint free_cpus[MAXN];
    QnBitmap *node_cpus[MAXN]; /* the node's pCPU ids */
    QnTopology *topo;        /* for our planner: pools rewritten from free_pages */
    QnBitmap *pinned;        /* every planner's pinned pCPUs (the books) */
} Host;

typedef struct {
    guint vcpus;
    guint64 pages;
    guint numa_nodes;        /* Nova flavor hw:numa_nodes */
} Req;

typedef struct {
    guint k;                 /* parts, one per distinct node */
    guint node[MAXN];        /* index into Host */
    guint64 pages[MAXN];
    guint vcpus[MAXN];
    gboolean os;             /* not aligned: left to the OS */
    QnBitmap *pcpus;         /* the pinned pCPU ids (ours: the plan's; else set by the books) */
} Placement;

typedef gboolean (*Planner)(Host *h, const Req *r, Placement *p);

/* Add @pages and @vcpus on node @node to @p, merging with the node's part if it has one. */
static void
placement_add(Placement *p, guint node, guint64 pages, guint vcpus)
{
    for (guint i = 0; i < p->k; i++) {
        if (p->node[i] == node) {
            p->pages[i] += pages;
            p->vcpus[i] += vcpus;
            return;
        }
    }
    p->node[p->k] = node;
    p->pages[p->k] = pages;
    p->vcpus[p->k] = vcpus;
    p->k++;
}

/* ---- the books: one accounting path for every planner ---- */

/* Why @p cannot be taken from @h as it stands, or %NULL. Checks every part against the free
 * capacity (no unsigned wrap can follow), the totals against the request, and named pCPUs
 * against the pinned ones and the parts' nodes. */
static gchar *
books_check_take(const Host *h, const Placement *p, const Req *r)
{
    guint64 pages = 0;
    guint vcpus = 0;

    for (guint i = 0; i < p->k; i++) {
        guint n = p->node[i];

        if (n >= h->n) {
            return g_strdup_printf("part %u on node index %u of %u", i, n, h->n);
        }
        for (guint j = 0; j < i; j++) {
            if (p->node[j] == n) {
                return g_strdup_printf("node %u: two parts", h->id[n]);
            }
        }
        if (p->pcpus != NULL) {
            g_autoptr(QnBitmap) mine = qn_bitmap_copy(p->pcpus);
            g_autoptr(QnBitmap) both = qn_bitmap_copy(p->pcpus);

            qn_bitmap_and(mine, h->node_cpus[n]);
            qn_bitmap_and(both, h->pinned);
            qn_bitmap_and(both, h->node_cpus[n]);
            if (qn_bitmap_count(both) > 0) {
                g_autofree gchar *l = qn_bitmap_format_list(both, ",");

                return g_strdup_printf("node %u: pCPUs %s already pinned (double-booked)",
                                       h->id[n], l);
            }
            if (qn_bitmap_count(mine) != p->vcpus[i]) {
                return g_strdup_printf("node %u: %u vCPUs but %u pCPUs named", h->id[n],
                                       p->vcpus[i], qn_bitmap_count(mine));
            }
        }
        if (p->pages[i] > h->free_pages[n]) {
            return g_strdup_printf("node %u: %" G_GUINT64_FORMAT " pages promised, %"
                                   G_GUINT64_FORMAT " free", h->id[n], p->pages[i],
                                   h->free_pages[n]);
        }
        if (p->vcpus[i] > h->free_cpus[n]) {
            return g_strdup_printf("node %u: %u pCPUs promised, %u free", h->id[n], p->vcpus[i],
                                   h->free_cpus[n]);
        }
        pages += p->pages[i];
        vcpus += p->vcpus[i];
    }
    if (pages != r->pages || vcpus != r->vcpus) {
        return g_strdup_printf("placement holds %" G_GUINT64_FORMAT " pages / %u vCPUs of %"
                               G_GUINT64_FORMAT " / %u asked", pages, vcpus, r->pages, r->vcpus);
    }
    return NULL;
}

/* The lowest @count free pCPUs of node @n, added to @out. */
static void
books_pick_pcpus(const Host *h, guint n, guint count, QnBitmap *out)
{
    QN_BITMAP_FOREACH(h->node_cpus[n], c) {
        if (count > 0 && !qn_bitmap_test(h->pinned, (guint)c) && !qn_bitmap_test(out, (guint)c)) {
            qn_bitmap_set(out, (guint)c);
            count--;
        }
    }
}

/* After each take and release: every node's free counts agree with its pinned pCPUs and
 * stay within capacity. */
static gchar *
books_check_host(const Host *h)
{
    for (guint n = 0; n < h->n; n++) {
        g_autoptr(QnBitmap) used = qn_bitmap_copy(h->pinned);

        qn_bitmap_and(used, h->node_cpus[n]);
        if (h->free_pages[n] > h->pages[n] || h->free_cpus[n] > h->cpus[n] ||
            h->cpus[n] - h->free_cpus[n] != qn_bitmap_count(used)) {
            return g_strdup_printf("node %u: %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT
                                   " pages free, %u/%u pCPUs free, %u pinned", h->id[n],
                                   h->free_pages[n], h->pages[n], h->free_cpus[n], h->cpus[n],
                                   qn_bitmap_count(used));
        }
    }
    return NULL;
}

/* Take @p from @h, giving it pCPUs if it names none. Returns why not (@h unchanged), or
 * %NULL. */
static gchar *
books_try_take(Host *h, Placement *p, const Req *r)
{
    gchar *why = books_check_take(h, p, r);

    if (why != NULL) {
        return why;
    }
    if (p->pcpus == NULL) {
        p->pcpus = qn_bitmap_new();
        for (guint i = 0; i < p->k; i++) {
            books_pick_pcpus(h, p->node[i], p->vcpus[i], p->pcpus);
        }
    }
    for (guint i = 0; i < p->k; i++) {
        h->free_pages[p->node[i]] -= p->pages[i];
        h->free_cpus[p->node[i]] -= p->vcpus[i];
    }
    qn_bitmap_or(h->pinned, p->pcpus);
    return books_check_host(h);
}

static gchar *
books_try_release(Host *h, const Placement *p)
{
    for (guint i = 0; i < p->k; i++) {
        guint n = p->node[i];

        if (h->free_pages[n] + p->pages[i] > h->pages[n] ||
            h->free_cpus[n] + p->vcpus[i] > h->cpus[n]) {
            return g_strdup_printf("node %u: release above capacity", h->id[n]);
        }
        h->free_pages[n] += p->pages[i];
        h->free_cpus[n] += p->vcpus[i];
    }
    qn_bitmap_and_not(h->pinned, p->pcpus);
    return books_check_host(h);
}

/* The books do not balance: end the run, naming who and where. */
static void
books_fail(const char *planner, guint vm, const char *what, const char *why)
{
    g_printerr("bench-placement: books: planner '%s', VM %u (%s): %s\n", planner, vm, what, why);
    exit(EXIT_BOOKS);
}

/* ---- the OS (no binding) ---- */

typedef enum { OS_LOCAL_FIRST, OS_PROPORTIONAL } OsModel;

/* Fill @want units over nodes in @order (room in @room), writing what each takes to @take. */
static guint64
fill_in_order(const guint *order, guint n, const guint64 *room, guint64 want, guint64 *take)
{
    for (guint i = 0; i < n && want > 0; i++) {
        guint64 a = MIN(room[order[i]] - take[order[i]], want);

        take[order[i]] += a;
        want -= a;
    }
    return want;
}

/* Node indexes by distance from @from; ties by most @tie, then index. */
static void
order_by_distance(const Host *h, guint from, const guint64 *tie, guint *order)
{
    for (guint i = 0; i < h->n; i++) {
        order[i] = i;
    }
    for (guint i = 0; i < h->n; i++) {
        for (guint j = i + 1; j < h->n; j++) {
            guint a = order[i], b = order[j];
            gboolean swap = h->dist[from][b] < h->dist[from][a] ||
                            (h->dist[from][b] == h->dist[from][a] && tie[b] > tie[a]);

            if (swap) {
                order[i] = b;
                order[j] = a;
            }
        }
    }
}

/* Linux's default: the scheduler starts the VM on the node with the most idle pCPUs and
 * spreads to the nearest; each vCPU touches its share of memory first, so pages land on its
 * node, then on the nearest nodes with free pages. Restricted to @allowed when not %NULL. */
static gboolean
os_local_first(const Host *h, const Req *r, const gboolean *allowed, Placement *p)
{
    guint64 room_c[MAXN] = { 0 }, room_p[MAXN] = { 0 }, vc[MAXN] = { 0 }, pg[MAXN] = { 0 };
    guint order[MAXN], start = 0;
    guint64 left = r->pages;
    guint given = 0;

    for (guint i = 0; i < h->n; i++) {
        gboolean ok = allowed == NULL || allowed[i];

        room_c[i] = ok ? h->free_cpus[i] : 0;
        room_p[i] = ok ? h->free_pages[i] : 0;
        if (room_c[i] > room_c[start] ||
            (room_c[i] == room_c[start] && room_p[i] > room_p[start])) {
            start = i;
        }
    }
    order_by_distance(h, start, room_c, order);
    if (fill_in_order(order, h->n, room_c, r->vcpus, vc) > 0) {
        return FALSE;
    }
    for (guint k = 0; k < h->n; k++) {
        guint i = order[k];
        guint64 share;
        guint near[MAXN];

        if (vc[i] == 0) {
            continue;
        }
        given += (guint)vc[i];
        /* this node's vCPUs' share, the last one takes the rounding */
        share = given == r->vcpus ? left : r->pages * vc[i] / r->vcpus;
        order_by_distance(h, i, room_p, near);
        if (fill_in_order(near, h->n, room_p, share, pg) > 0) {
            return FALSE;
        }
        left -= share;
    }
    p->k = 0;
    p->os = TRUE;
    for (guint i = 0; i < h->n; i++) {
        if (pg[i] > 0 || vc[i] > 0) {
            placement_add(p, i, pg[i], (guint)vc[i]);
        }
    }
    return TRUE;
}

/* The older model: memory over every node in proportion to its free pages, vCPUs in proportion
 * to free pCPUs. */
static gboolean
os_proportional(const Host *h, const Req *r, Placement *p)
{
    guint64 total = 0, cpus = 0, pg[MAXN] = { 0 }, vc[MAXN] = { 0 };
    guint64 room_c[MAXN], room_p[MAXN];
    guint order[MAXN];

    for (guint i = 0; i < h->n; i++) {
        total += h->free_pages[i];
        cpus += h->free_cpus[i];
        room_c[i] = h->free_cpus[i];
        room_p[i] = h->free_pages[i];
        order[i] = i;
    }
    if (total < r->pages || cpus < r->vcpus) {
        return FALSE;
    }
    for (guint i = 0; i < h->n; i++) {
        pg[i] = MIN(room_p[i], r->pages * room_p[i] / total);
        vc[i] = MIN(room_c[i], r->vcpus * room_c[i] / cpus);
    }
    {
        guint64 ps = 0, cs = 0;

        for (guint i = 0; i < h->n; i++) {
            ps += pg[i];
            cs += vc[i];
        }
        /* rounding leftovers: first nodes with room */
        fill_in_order(order, h->n, room_p, r->pages - ps, pg);
        fill_in_order(order, h->n, room_c, r->vcpus - cs, vc);
    }
    p->k = 0;
    p->os = TRUE;
    for (guint i = 0; i < h->n; i++) {
        if (pg[i] > 0 || vc[i] > 0) {
            placement_add(p, i, pg[i], (guint)vc[i]);
        }
    }
    return TRUE;
}

/* The OS model every planner's fallback gets (--fallback-os): local-first by default, the
 * proportional one to compare every planner with the "OS (proportional)" row on equal terms. */
static OsModel fallback_model = OS_LOCAL_FIRST;

/* What every planner that does not reject falls back to. */
static gboolean
os_place(const Host *h, const Req *r, Placement *p)
{
    return fallback_model == OS_PROPORTIONAL ? os_proportional(h, r, p)
                                             : os_local_first(h, r, NULL, p);
}

/* ---- helpers shared by the baselines ---- */

/* @r split over @k nodes @set: pages in whole @granule units, the first nodes one unit more. */
static gboolean
split_fits(const Host *h, const guint *set, guint k, const Req *r, guint64 granule,
           Placement *p)
{
    guint64 units = r->pages / granule;

    if (r->pages % granule != 0 || units < k) {
        return FALSE;
    }
    p->k = k;
    p->os = FALSE;
    for (guint i = 0; i < k; i++) {
        guint64 pg = (units / k + (i < units % k)) * granule;
        guint vc = r->vcpus / k + (i < r->vcpus % k);

        if (h->free_pages[set[i]] < pg || h->free_cpus[set[i]] < vc) {
            return FALSE;
        }
        p->node[i] = set[i];
        p->pages[i] = pg;
        p->vcpus[i] = vc;
    }
    return TRUE;
}

static gboolean
even_split_fits(const Host *h, const guint *set, guint k, const Req *r, Placement *p)
{
    return split_fits(h, set, k, r, 1, p);
}

static gint
cmp_free_pages_desc(gconstpointer a, gconstpointer b, gpointer host)
{
    const Host *h = host;
    guint x = *(const guint *)a, y = *(const guint *)b;

    if (h->free_pages[x] != h->free_pages[y]) {
        return h->free_pages[x] > h->free_pages[y] ? -1 : 1;
    }
    return (gint)x - (gint)y;
}

/* Nova's spread: most free pCPUs first, then most free memory. */
static gint
cmp_free_cpus_then_pages_desc(gconstpointer a, gconstpointer b, gpointer host)
{
    const Host *h = host;
    guint x = *(const guint *)a, y = *(const guint *)b;

    if (h->free_cpus[x] != h->free_cpus[y]) {
        return h->free_cpus[x] > h->free_cpus[y] ? -1 : 1;
    }
    return cmp_free_pages_desc(a, b, host);
}

/* ---- Cloudpods host-agent ("Host Enable NUMA Memory Allocation", Cloudpods docs): nodes by
 * free hugepage memory, the first N of 1, 2, 4 ... while N is at most the vCPU count, whole
 * GiB per node; else the OS ---- */
static gboolean
plan_cloudpods(Host *h, const Req *r, Placement *p)
{
    guint order[MAXN];

    for (guint i = 0; i < h->n; i++) {
        order[i] = i;
    }
    g_qsort_with_data(order, (gint)h->n, sizeof(guint), cmp_free_pages_desc, h);
    for (guint k = 1; k <= h->n && k <= r->vcpus; k *= 2) {
        if (split_fits(h, order, k, r, GIB_PAGES, p)) {
            return TRUE;
        }
    }
    return os_place(h, r, p);
}

/* ---- Nova numa_fit_instance_to_host (nova/virt/hardware.py): the flavor's cell count, host
 * cells sorted for spread (free pCPUs, then free memory), first permutation where every guest
 * cell fits, else reject ---- */
static gboolean
nova_dfs(const Host *h, const guint *order, guint k, guint depth, guint *chosen, gboolean *used,
         const Req *r, Placement *p)
{
    if (depth == k) {
        return even_split_fits(h, chosen, k, r, p);
    }
    for (guint i = 0; i < h->n; i++) {
        guint64 pg = r->pages / k + (depth < r->pages % k);
        guint vc = r->vcpus / k + (depth < r->vcpus % k);
        guint c = order[i];

        if (used[c] || h->free_pages[c] < pg || h->free_cpus[c] < vc) {
            continue;
        }
        used[c] = TRUE;
        chosen[depth] = c;
        if (nova_dfs(h, order, k, depth + 1, chosen, used, r, p)) {
            return TRUE;
        }
        used[c] = FALSE;
    }
    return FALSE;
}

static gboolean
plan_nova(Host *h, const Req *r, Placement *p)
{
    guint order[MAXN], chosen[MAXN];
    gboolean used[MAXN] = { FALSE };
    guint k = MIN(r->numa_nodes, h->n);

    for (guint i = 0; i < h->n; i++) {
        order[i] = i;
    }
    g_qsort_with_data(order, (gint)h->n, sizeof(guint), cmp_free_cpus_then_pages_desc, h);
    return nova_dfs(h, order, k, 0, chosen, used, r, p);
}

/* ---- Xen libxl (libxl_numa.c): smallest k from ceil(vcpus / cpus per node); every
 * k-combination with enough free memory; fewest vCPUs already running there, then most free
 * memory; memory striped over the set. Gives up above 16 nodes. ---- */
typedef struct {
    gboolean found;
    guint set[MAXN];
    guint k;
    guint64 busy, free;
} LibxlBest;

static void
libxl_offer(const Host *h, const guint *idx, guint k, const Req *r, LibxlBest *b)
{
    guint64 fp = 0, busy = 0;
    guint fc = 0;

    for (guint i = 0; i < k; i++) {
        fp += h->free_pages[idx[i]];
        fc += h->free_cpus[idx[i]];
        busy += h->cpus[idx[i]] - h->free_cpus[idx[i]];
    }
    if (fp >= r->pages && fc >= r->vcpus &&
        (!b->found || busy < b->busy || (busy == b->busy && fp > b->free))) {
        b->found = TRUE;
        b->k = k;
        b->busy = busy;
        b->free = fp;
        memcpy(b->set, idx, k * sizeof(guint));
    }
}

/* Striped: equal stripes, a node short of its stripe passes the rest on. */
static gboolean
libxl_stripe(const Host *h, const LibxlBest *b, const Req *r, Placement *p)
{
    guint64 left = r->pages;
    guint vleft = r->vcpus;

    p->k = b->k;
    p->os = FALSE;
    for (guint i = 0; i < b->k; i++) {
        p->node[i] = b->set[i];
        p->pages[i] = 0;
        p->vcpus[i] = 0;
    }
    while (left > 0 || vleft > 0) {
        gboolean moved = FALSE;

        for (guint i = 0; i < b->k; i++) {
            if (left > 0 && p->pages[i] < h->free_pages[b->set[i]]) {
                p->pages[i]++;
                left--;
                moved = TRUE;
            }
            if (vleft > 0 && p->vcpus[i] < h->free_cpus[b->set[i]]) {
                p->vcpus[i]++;
                vleft--;
                moved = TRUE;
            }
        }
        if (!moved) {
            return FALSE;
        }
    }
    return TRUE;
}

static gboolean
plan_libxl(Host *h, const Req *r, Placement *p)
{
    guint cpn = 0, k0;
    guint idx[MAXN];
    LibxlBest b = { 0 };

    if (h->n > 16) {
        return os_place(h, r, p);
    }
    for (guint i = 0; i < h->n; i++) {
        cpn = MAX(cpn, h->cpus[i]);
    }
    k0 = cpn ? MAX(1, (r->vcpus + cpn - 1) / cpn) : 1;
    for (guint k = k0; k <= h->n && !b.found; k++) {
        for (guint i = 0; i < k; i++) {
            idx[i] = i;
        }
        for (;;) {
            gint i = (gint)k - 1;

            libxl_offer(h, idx, k, r, &b);
            while (i >= 0 && idx[i] == h->n - k + (guint)i) {
                i--;
            }
            if (i < 0) {
                break;
            }
            idx[i]++;
            for (guint j = (guint)i + 1; j < k; j++) {
                idx[j] = idx[j - 1] + 1;
            }
        }
    }
    if (!b.found) {
        return os_place(h, r, p);
    }
    return libxl_stripe(h, &b, r, p);
}

/* ---- numad -w: magnitude = free pages x free pCPUs; centre = argmax sum magnitude / d^2;
 * add nodes by distance from the centre until the request fits; within the set, the OS rule
 * (numad binds the set, the kernel places inside it) ---- */
static gboolean
plan_numad(Host *h, const Req *r, Placement *p)
{
    double best = -1;
    guint centre = 0, k = 0;
    guint order[MAXN];
    guint64 fp = 0, fc = 0, zero[MAXN] = { 0 };
    gboolean in[MAXN] = { FALSE };

    for (guint i = 0; i < h->n; i++) {
        double s = 0;

        for (guint j = 0; j < h->n; j++) {
            double d = h->dist[i][j] / 10.0;

            s += (double)h->free_pages[j] * h->free_cpus[j] / (d * d);
        }
        if (s > best) {
            best = s;
            centre = i;
        }
    }
    order_by_distance(h, centre, zero, order);
    while (k < h->n && (fp < r->pages || fc < r->vcpus)) {
        fp += h->free_pages[order[k]];
        fc += h->free_cpus[order[k]];
        in[order[k]] = TRUE;
        k++;
    }
    if (fp < r->pages || fc < r->vcpus) {
        return os_place(h, r, p);
    }
    if (!os_local_first(h, r, in, p)) {
        return FALSE;
    }
    p->os = FALSE;
    return TRUE;
}

static gboolean
plan_os(Host *h, const Req *r, Placement *p)
{
    return os_local_first(h, r, NULL, p);
}

static gboolean
plan_os_proportional(Host *h, const Req *r, Placement *p)
{
    return os_proportional(h, r, p);
}

/* ---- ours: the real planner, as the launcher calls it ---- */
static QnPacking ours_packing;

static void
sync_topology(Host *h)
{
    for (guint i = 0; i < h->n; i++) {
        QnHostNode *node = qn_topology_node(h->topo, h->id[i]);
        QnHugepagePool *pool = qn_host_node_pool(node, PAGE);

        pool->nr = h->pages[i];
        pool->free = h->free_pages[i];
        node->mem_free = 0; /* hugepages only: no regular-memory plans */
        node->mem_total = MAX(node->mem_total, h->pages[i] * PAGE);
    }
}

static guint
host_index(const Host *h, guint id)
{
    guint idx = 0;

    while (idx < h->n && h->id[idx] != id) {
        idx++;
    }
    return idx;
}

static gboolean
plan_ours(Host *h, const Req *r, Placement *p)
{
    g_autoptr(QnConfig) cfg = qn_config_new_default();
    g_autoptr(QnReservations) resv = qn_reservations_new();
    g_autoptr(QnQemuArgv) qa = NULL;
    g_autoptr(QnPlan) plan = NULL;
    g_autofree gchar *m = g_strdup_printf("%" G_GUINT64_FORMAT "M", r->pages * 2);
    g_autofree gchar *smp = g_strdup_printf("%u", r->vcpus);
    const char *argv[] = { "qemu", "-m", m, "-smp", smp, NULL };

    cfg->hugepage_size = PAGE;
    cfg->dedicated_cpus = TRUE;
    cfg->allow_cpuless_nodes = TRUE; /* same rules as the baselines: CPU-less nodes count */
    cfg->packing = ours_packing;
    sync_topology(h);
    qn_bitmap_or(resv->pinned_cpus, h->pinned); /* every planner's pinned pCPUs: one book */
    qa = qn_qemu_argv_parse(argv, NULL);
    plan = qn_plan_compute(h->topo, resv, qa, cfg, NULL);
    if (plan == NULL) {
        return FALSE;
    }
    if (plan->kind != QN_PLAN_ALIGNED) {
        return os_place(h, r, p);
    }
    p->k = 0;
    p->os = FALSE;
    p->pcpus = qn_bitmap_copy(plan->held_pcpus);
    for (guint g = 0; g < plan->guest_nodes->len; g++) {
        const QnGuestNode *gn = g_ptr_array_index(plan->guest_nodes, g);
        gint host = qn_bitmap_next(gn->host_nodes, 0);

        placement_add(p, host_index(h, (guint)host), gn->bytes / PAGE, 0);
    }
    /* vCPUs (and any held siblings) are counted where the pCPUs are */
    for (guint n = 0; n < h->n; n++) {
        g_autoptr(QnBitmap) mine = qn_bitmap_copy(p->pcpus);

        qn_bitmap_and(mine, h->node_cpus[n]);
        if (qn_bitmap_count(mine) > 0) {
            placement_add(p, n, 0, qn_bitmap_count(mine));
        }
    }
    return TRUE;
}

/* ---- locality and the best any placement could do ---- */

static double
locality(const Host *h, const Placement *p, const Req *r)
{
    double s = 0;

    for (guint i = 0; i < p->k; i++) {
        for (guint j = 0; j < p->k; j++) {
            s += ((double)p->vcpus[i] / r->vcpus) * ((double)p->pages[j] / r->pages) *
                 h->dist[p->node[i]][p->node[j]] / 10.0;
        }
    }
    return s;
}

/* Fill @want units on the nodes of least @cost first, each up to @room. Returns what could
 * not be placed. */
static guint64
fill_by_cost(const Host *h, const double *cost, const guint64 *room, guint64 want,
             guint64 *take)
{
    guint order[MAXN];

    for (guint i = 0; i < h->n; i++) {
        order[i] = i;
        take[i] = 0;
    }
    for (guint i = 0; i < h->n; i++) {
        for (guint j = i + 1; j < h->n; j++) {
            if (cost[order[j]] < cost[order[i]]) {
                guint t = order[i];

                order[i] = order[j];
                order[j] = t;
            }
        }
    }
    return fill_in_order(order, h->n, room, want, take);
}

/* The best locality of any placement now, even or not (hosts <= 8 nodes), -1 when nothing
 * fits. Exact: locality is v' D m over the vCPUs v and pages m per node. For fixed v the best m
 * fills the nodes of least cost (D v) first, so the best locality is min over v of a concave
 * function of v, which a vertex of v's polytope (0 <= v_i <= free pCPUs, sum v = vCPUs)
 * attains: some nodes full, at most one partial, the rest empty. Every such vertex is tried. */
static double
exhaustive_best(const Host *h, const Req *r)
{
    double best = -1;

    for (guint mask = 0; mask < (1u << h->n); mask++) {
        guint64 full = 0;

        for (guint i = 0; i < h->n; i++) {
            full += mask & (1u << i) ? h->free_cpus[i] : 0;
        }
        if (full >= r->vcpus) {
            continue;
        }
        for (guint part = 0; part < h->n; part++) {
            guint64 v[MAXN], m[MAXN];
            double cost[MAXN], l = 0;

            if ((mask & (1u << part)) || full + h->free_cpus[part] < r->vcpus) {
                continue;
            }
            for (guint i = 0; i < h->n; i++) {
                v[i] = mask & (1u << i) ? h->free_cpus[i] : 0;
            }
            v[part] = r->vcpus - full;
            for (guint j = 0; j < h->n; j++) {
                cost[j] = 0;
                for (guint i = 0; i < h->n; i++) {
                    cost[j] += (double)v[i] * h->dist[i][j];
                }
            }
            if (fill_by_cost(h, cost, h->free_pages, r->pages, m) > 0) {
                return -1; /* not enough pages anywhere */
            }
            for (guint j = 0; j < h->n; j++) {
                l += cost[j] * (double)m[j];
            }
            l /= 10.0 * r->vcpus * (double)r->pages;
            best = best < 0 || l < best ? l : best;
        }
    }
    return best;
}

/* ---- the simulation ---- */

typedef struct {
    const char *name;
    Planner fn;
    QnPacking packing;
} PlannerDef;

static const PlannerDef planners[] = {
    { "qemu-numa (best-fit)", plan_ours, QN_PACKING_BEST_FIT },
    { "qemu-numa (worst-fit)", plan_ours, QN_PACKING_WORST_FIT },
    { "Cloudpods", plan_cloudpods, 0 },
    { "Nova", plan_nova, 0 },
    { "Xen libxl", plan_libxl, 0 },
    { "numad", plan_numad, 0 },
    { "OS (local-first)", plan_os, 0 },
    { "OS (proportional)", plan_os_proportional, 0 },
};

/* What one planner did on one trace. */
typedef enum {
    M_ACCEPTED,
    M_ALIGNED,
    M_ONE_NODE,
    M_LOC_MEAN,
    M_LOC_P95,
    M_LOC_P99,
    M_LOC_GIB,
    M_GAP,
    M_BEATS_BEST,
    M_US_MEDIAN,
    M_US_P99,
    M_US_MAX,
    M_COUNT
} Metric;

static const struct {
    const char *head;
    int decimals;
} metric_info[M_COUNT] = {
    { "accepted %", 1 },    { "aligned %", 1 }, { "on one node %", 1 },
    { "locality mean", 3 }, { "p95", 3 },       { "p99", 3 },
    { "GiB-weighted", 3 },  { "gap to best (<=8 nodes)", 3 },
    { "beats best", 0 },    { "plan us median", 1 }, { "p99", 0 },
    { "max", 0 },
};

typedef struct {
    double m[M_COUNT];
} Result;

typedef struct {
    double t;      /* arrival time */
    double life;
    Req req;
} Arrival;

typedef struct {
    double end;
    Placement p;
} Running;

static Host *
host_load(const char *dir)
{
    g_autoptr(GError) error = NULL;
    g_autofree gchar *proc = g_build_filename(dir, "..", "..", "proc", "fake", NULL);
    Host *h = g_new0(Host, 1);

    h->topo = qn_topology_load(dir, proc, &error);
    if (h->topo == NULL) {
        g_printerr("bench-placement: %s\n", error->message);
        g_free(h);
        return NULL;
    }
    h->pinned = qn_bitmap_new();
    /* The books are the whole host: no mapping outside them holds reserved pages (the fake
     * trees' resv_hugepages would make our planner alone refuse the last free GiB). */
    for (guint k = 0; h->topo->page_resv != NULL && k < h->topo->page_resv->len; k++) {
        g_array_index(h->topo->page_resv, guint64, k) = 0;
    }
    for (guint i = 0; i < h->topo->nodes->len && h->n < MAXN; i++) {
        QnHostNode *node = g_ptr_array_index(h->topo->nodes, i);

        h->id[h->n] = node->id;
        h->pages[h->n] = node->mem_total * 9 / 10 / PAGE;
        h->cpus[h->n] = qn_bitmap_count(node->cpus);
        h->node_cpus[h->n] = qn_bitmap_copy(node->cpus);
        if (qn_host_node_pool(node, PAGE) == NULL) {
            QnHugepagePool pool = { .page_size = PAGE };

            g_array_append_val(node->pools, pool);
        }
        h->n++;
    }
    for (guint i = 0; i < h->n; i++) {
        for (guint j = 0; j < h->n; j++) {
            h->dist[i][j] = h->topo->distance[i * h->topo->nodes->len + j];
        }
    }
    return h;
}

static void
host_free(Host *h)
{
    for (guint i = 0; i < h->n; i++) {
        qn_bitmap_free(h->node_cpus[i]);
    }
    qn_topology_free(h->topo);
    qn_bitmap_free(h->pinned);
    g_free(h);
}

static void
host_reset(Host *h)
{
    for (guint i = 0; i < h->n; i++) {
        h->free_pages[i] = h->pages[i];
        h->free_cpus[i] = h->cpus[i];
    }
    qn_bitmap_free(h->pinned);
    h->pinned = qn_bitmap_new();
}

/* bench_trace_new() scaled to @h's pages, each arrival with the cells a Nova flavor asks. */
static GArray *
make_trace(const Host *h, guint count, guint32 seed)
{
    g_autoptr(GArray) common = NULL;
    GArray *trace = g_array_new(FALSE, FALSE, sizeof(Arrival));
    double cap = 0;
    guint64 node_max = 0;

    for (guint i = 0; i < h->n; i++) {
        cap += (double)h->pages[i];
        node_max = MAX(node_max, h->pages[i]);
    }
    common = bench_trace_new(cap, count, seed);
    for (guint i = 0; i < common->len; i++) {
        const BenchArrival *c = &g_array_index(common, BenchArrival, i);
        Arrival a = { .t = c->t, .life = c->life };

        a.req.vcpus = c->vcpus;
        a.req.pages = c->pages;
        /* Nova flavors ask for as many cells as a node cannot hold */
        a.req.numa_nodes = 1;
        while (a.req.pages / a.req.numa_nodes > node_max && a.req.numa_nodes < 8) {
            a.req.numa_nodes *= 2;
        }
        g_array_append_val(trace, a);
    }
    return trace;
}

/* Release every VM that ended by @now. */
static void
release_ended(Host *h, GArray *running, double now, const char *planner)
{
    for (guint k = 0; k < running->len;) {
        Running *r = &g_array_index(running, Running, k);

        if (r->end <= now) {
            g_autofree gchar *why = books_try_release(h, &r->p);

            if (why != NULL) {
                books_fail(planner, k, "release", why);
            }
            qn_bitmap_free(r->p.pcpus);
            g_array_remove_index_fast(running, k);
        } else {
            k++;
        }
    }
}

/* Sums over one run, turned into a Result by sim_result(). */
typedef struct {
    guint64 offered, accepted, aligned, one_node, gap_n, beats_best;
    double loc_gib, gib, gap_sum;
    GArray *locs;   /* double */
    GArray *us;     /* double: plan time per decision */
} Sums;

static void
sim_result(Sums *s, Result *res)
{
    double loc_sum = 0;

    for (guint i = 0; i < s->locs->len; i++) {
        loc_sum += g_array_index(s->locs, double, i);
    }
    res->m[M_ACCEPTED] = 100.0 * s->accepted / s->offered;
    res->m[M_ALIGNED] = 100.0 * s->aligned / s->offered;
    res->m[M_ONE_NODE] = s->accepted ? 100.0 * s->one_node / s->accepted : 0;
    res->m[M_LOC_MEAN] = s->accepted ? loc_sum / s->accepted : 0;
    res->m[M_LOC_P95] = bench_quantile(s->locs, 0.95);
    res->m[M_LOC_P99] = bench_quantile(s->locs, 0.99);
    res->m[M_LOC_GIB] = s->gib > 0 ? s->loc_gib / s->gib : 0;
    res->m[M_GAP] = s->gap_n ? s->gap_sum / s->gap_n : NAN;
    res->m[M_BEATS_BEST] = s->gap_n ? (double)s->beats_best : NAN;
    res->m[M_US_MEDIAN] = bench_quantile(s->us, 0.5);
    res->m[M_US_P99] = bench_quantile(s->us, 0.99);
    res->m[M_US_MAX] = bench_quantile(s->us, 1.0);
}

/* One accepted placement into the sums. */
static void
sim_count(Sums *s, const Host *h, const Placement *p, const Req *r, double best)
{
    double l = locality(h, p, r), gib = (double)r->pages / GIB_PAGES;

    s->accepted++;
    s->aligned += !p->os;
    s->one_node += p->k == 1;
    g_array_append_val(s->locs, l);
    s->loc_gib += l * gib;
    s->gib += gib;
    if (best >= 0) {
        s->gap_sum += l - best;
        s->gap_n++;
        s->beats_best += l < best - 1e-9;
    }
}

/* CPU time of this thread in ns: plan time is the planner's own work, not the time other
 * processes on a shared machine took the CPU from it (wall time made max and p99 noise). */
static gint64
thread_cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (gint64)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
simulate(Host *h, GArray *trace, const PlannerDef *pd, Result *res)
{
    g_autoptr(GArray) running = g_array_new(FALSE, FALSE, sizeof(Running));
    Sums s = { 0 };

    host_reset(h);
    s.locs = g_array_new(FALSE, FALSE, sizeof(double));
    s.us = g_array_new(FALSE, FALSE, sizeof(double));
    ours_packing = pd->packing;
    for (guint i = 0; i < trace->len; i++) {
        Arrival *a = &g_array_index(trace, Arrival, i);
        Placement p = { 0 };
        gboolean ok;
        gint64 t0;
        double best = -1, us;

        release_ended(h, running, a->t, pd->name);
        s.offered++;
        if (h->n <= 8) {
            best = exhaustive_best(h, &a->req);
        }
        t0 = thread_cpu_ns();
        ok = pd->fn(h, &a->req, &p);
        us = (double)(thread_cpu_ns() - t0) / 1000.0;
        g_array_append_val(s.us, us);
        if (ok) {
            g_autofree gchar *why = books_try_take(h, &p, &a->req);
            Running run = { a->t + a->life, p };

            if (why != NULL) {
                books_fail(pd->name, i, "take", why);
            }
            sim_count(&s, h, &p, &a->req, best);
            g_array_append_val(running, run);
        }
    }
    for (guint k = 0; k < running->len; k++) {
        qn_bitmap_free(g_array_index(running, Running, k).p.pcpus);
    }
    sim_result(&s, res);
    g_array_unref(s.locs);
    g_array_unref(s.us);
}

/* ---- the report ---- */

/* "mean (min-max)" over @nseeds results of metric @m. */
static void
append_cell(GString *md, const Result *res, guint nseeds, Metric m)
{
    double lo = res[0].m[m], hi = lo, sum = 0;

    if (isnan(lo)) {
        g_string_append(md, " n/a |");
        return;
    }
    for (guint s = 0; s < nseeds; s++) {
        lo = MIN(lo, res[s].m[m]);
        hi = MAX(hi, res[s].m[m]);
        sum += res[s].m[m];
    }
    g_string_append_c(md, ' ');
    g_string_append_printf(md, "%.*f", metric_info[m].decimals, sum / nseeds);
    if (nseeds > 1) {
        g_string_append(md, " (");
        g_string_append_printf(md, "%.*f", metric_info[m].decimals, lo);
        g_string_append(md, "–");
        g_string_append_printf(md, "%.*f", metric_info[m].decimals, hi);
        g_string_append_c(md, ')');
    }
    g_string_append(md, " |");
}

/* One topology: every planner on every seed's trace; a table row per planner. */
static gboolean
run_topology(const char *dir, const guint32 *seeds, guint nseeds, guint count, const char *outdir,
             GString *md)
{
    Host *h = host_load(dir);
    g_autofree gchar *name = g_path_get_basename(dir);
    g_autofree gchar *dat_path = g_strdup_printf("%s/%s.dat", outdir, name);
    GArray *traces[MAXSEEDS];
    FILE *dat;

    if (h == NULL) {
        return FALSE;
    }
    g_string_append_printf(md, "\n### %s (%u nodes, %u arrivals, seeds", name, h->n, count);
    for (guint s = 0; s < nseeds; s++) {
        traces[s] = make_trace(h, count, seeds[s]);
        g_string_append_printf(md, "%s %u", s ? "," : "", seeds[s]);
    }
    g_string_append(md, ": mean over the seeds (min–max))\n\n| planner |");
    for (guint m = 0; m < M_COUNT; m++) {
        g_string_append_printf(md, " %s |", metric_info[m].head);
    }
    g_string_append(md, "\n|---|");
    for (guint m = 0; m < M_COUNT; m++) {
        g_string_append(md, "---|");
    }
    g_string_append_c(md, '\n');
    dat = fopen(dat_path, "w");
    for (guint k = 0; k < G_N_ELEMENTS(planners); k++) {
        Result res[MAXSEEDS];
        double acc = 0, loc = 0;

        for (guint s = 0; s < nseeds; s++) {
            simulate(h, traces[s], &planners[k], &res[s]);
            acc += res[s].m[M_ACCEPTED] / nseeds;
            loc += res[s].m[M_LOC_MEAN] / nseeds;
        }
        g_string_append_printf(md, "| %s |", planners[k].name);
        for (guint m = 0; m < M_COUNT; m++) {
            append_cell(md, res, nseeds, (Metric)m);
        }
        g_string_append_c(md, '\n');
        if (dat != NULL) {
            fprintf(dat, "\"%s\" %.2f %.4f\n", planners[k].name, acc, loc);
        }
    }
    if (dat != NULL) {
        fclose(dat);
    }
    for (guint s = 0; s < nseeds; s++) {
        g_array_unref(traces[s]);
    }
    host_free(h);
    return TRUE;
}

/* ---- decision by decision: where planner A places worse than planner B ---- */

/* Run A on @trace; before each of A's decisions, ask B on the same state (B's placement is
 * dropped). Prints, per flavor and node counts, how often and by how much A is worse. */
static void
why_worse(Host *h, GArray *trace, const PlannerDef *a, const PlannerDef *b)
{
    g_autoptr(GArray) running = g_array_new(FALSE, FALSE, sizeof(Running));
    g_autoptr(GHashTable) buckets = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                                          g_free);
    GHashTableIter it;
    gpointer key, val;
    guint worse = 0, better = 0, decisions = 0;

    host_reset(h);
    for (guint i = 0; i < trace->len; i++) {
        Arrival *ar = &g_array_index(trace, Arrival, i);
        Placement pa = { 0 }, pb = { 0 };
        gboolean okb;

        release_ended(h, running, ar->t, a->name);
        ours_packing = b->packing;
        okb = b->fn(h, &ar->req, &pb);
        ours_packing = a->packing;
        if (a->fn(h, &ar->req, &pa)) {
            g_autofree gchar *why = books_try_take(h, &pa, &ar->req);
            Running run = { ar->t + ar->life, pa };
            double la = locality(h, &pa, &ar->req), lb = okb ? locality(h, &pb, &ar->req) : 0;

            if (why != NULL) {
                books_fail(a->name, i, "take", why);
            }
            decisions++;
            if (okb && la > lb + 1e-9) {
                g_autofree gchar *k = g_strdup_printf(
                    "%2u vCPUs %3" G_GUINT64_FORMAT " GiB: A on %u node(s)%s, B on %u", ar->req.vcpus,
                    ar->req.pages / GIB_PAGES, pa.k, pa.os ? " (OS)" : "", pb.k);
                double *acc = g_hash_table_lookup(buckets, k);

                if (acc == NULL) {
                    acc = g_new0(double, 2);
                    g_hash_table_insert(buckets, g_steal_pointer(&k), acc);
                }
                acc[0] += 1;
                acc[1] += la - lb;
                worse++;
            }
            better += okb && la < lb - 1e-9;
            g_array_append_val(running, run);
        }
        qn_bitmap_free(pb.pcpus);
    }
    printf("# %s against %s: %u decisions, worse in %u, better in %u\n", a->name, b->name,
           decisions, worse, better);
    g_hash_table_iter_init(&it, buckets);
    while (g_hash_table_iter_next(&it, &key, &val)) {
        const double *acc = val;

        printf("%5.0f x %s: locality +%.3f each\n", acc[0], (const char *)key, acc[1] / acc[0]);
    }
    for (guint k = 0; k < running->len; k++) {
        qn_bitmap_free(g_array_index(running, Running, k).p.pcpus);
    }
}

static const PlannerDef *
planner_by_name(const char *name)
{
    for (guint k = 0; k < G_N_ELEMENTS(planners); k++) {
        if (g_str_has_prefix(planners[k].name, name)) {
            return &planners[k];
        }
    }
    return NULL;
}

/* ---- the books' own test (TAP), run by make check through bench/smoke ---- */

static guint self_test_n;
static gboolean self_test_failed;

static void
self_test_ok(gboolean ok, const char *what)
{
    printf("%sok %u - %s\n", ok ? "" : "not ", ++self_test_n, what);
    self_test_failed |= !ok;
}

/* The double-booking of issue 19: a VM left to the OS used to take node 0's pCPUs from the free
 * counts but pin none, so our planner pinned the same pCPUs again; and a count taken below zero
 * wrapped to 4294967294. */
static int
self_test(const char *dir)
{
    Host *h = host_load(dir);
    Req all0, two = { 2, 4 * GIB_PAGES, 1 };
    Placement os = { 0 }, ours = { 0 }, over = { 0 }, bad = { 0 };
    g_autofree gchar *why_os = NULL, *why_ours = NULL, *why_over = NULL, *why_bad = NULL;

    if (h == NULL) {
        return 1;
    }
    host_reset(h);
    /* a VM the OS placed, all of node 0's pCPUs */
    all0.vcpus = h->cpus[0];
    all0.pages = GIB_PAGES;
    all0.numa_nodes = 1;
    placement_add(&os, 0, GIB_PAGES, h->cpus[0]);
    os.os = TRUE;
    why_os = books_try_take(h, &os, &all0);
    self_test_ok(why_os == NULL && h->free_cpus[0] == 0 &&
                     qn_bitmap_count(h->pinned) == h->cpus[0],
                 "an OS placement pins the pCPUs it takes");
    ours_packing = QN_PACKING_BEST_FIT;
    self_test_ok(plan_ours(h, &two, &ours) && (why_ours = books_try_take(h, &ours, &two)) == NULL,
                 "our planner then pins none of them");
    if (why_ours != NULL) {
        printf("# %s\n", why_ours);
    }
    /* the old bug, replayed: pCPUs of node 0 named again */
    placement_add(&bad, 0, 1, 1);
    bad.pcpus = qn_bitmap_new();
    qn_bitmap_set(bad.pcpus, (guint)qn_bitmap_next(h->node_cpus[0], 0));
    why_bad = books_try_take(h, &bad, &(Req){ 1, 1, 1 });
    self_test_ok(why_bad != NULL && strstr(why_bad, "double-booked") != NULL,
                 "a pCPU pinned twice is refused, naming the node");
    /* more pCPUs than free: refused before the count could wrap */
    placement_add(&over, 0, 1, 2);
    why_over = books_try_take(h, &over, &(Req){ 2, 1, 1 });
    self_test_ok(why_over != NULL && h->free_cpus[0] == 0, "no free count wraps below zero");
    qn_bitmap_free(os.pcpus);
    qn_bitmap_free(ours.pcpus);
    qn_bitmap_free(bad.pcpus);
    qn_bitmap_free(over.pcpus);
    host_free(h);
    printf("1..%u\n", self_test_n);
    return self_test_failed ? 1 : 0;
}

/* "42,43,44" into @seeds; returns how many. */
static guint
parse_seeds(const char *s, guint32 *seeds)
{
    g_auto(GStrv) parts = g_strsplit(s, ",", MAXSEEDS);
    guint n = 0;

    for (guint i = 0; parts[i] != NULL && n < MAXSEEDS; i++) {
        seeds[n++] = (guint32)g_ascii_strtoull(parts[i], NULL, 10);
    }
    return n;
}

int
main(int argc, char **argv)
{
    gboolean smoke = FALSE;
    guint32 seeds[MAXSEEDS] = { 42, 43, 44 };
    guint nseeds = 3;
    const char *outdir = "bench/results";
    g_autoptr(GString) md = g_string_new(NULL);

    while (argc > 1 && argv[1][0] == '-') {
        if (!strcmp(argv[1], "--smoke")) {
            smoke = TRUE;
        } else if (!strcmp(argv[1], "--self-test") && argc == 3) {
            return self_test(argv[2]);
        } else if (!strcmp(argv[1], "--why") && argc == 5) {
            /* --why A B TOPOLOGY: A's decisions worse than B's, first seed */
            const PlannerDef *pa = planner_by_name(argv[2]), *pb = planner_by_name(argv[3]);
            Host *h = host_load(argv[4]);
            g_autoptr(GArray) trace = NULL;

            if (pa == NULL || pb == NULL || h == NULL) {
                return 2;
            }
            trace = make_trace(h, 3000, seeds[0]);
            why_worse(h, trace, pa, pb);
            host_free(h);
            return 0;
        } else if ((!strcmp(argv[1], "--seeds") || !strcmp(argv[1], "--seed")) && argc > 2) {
            nseeds = parse_seeds(argv[2], seeds);
            argv++;
            argc--;
        } else if (!strcmp(argv[1], "--fallback-os") && argc > 2 &&
                   (!strcmp(argv[2], "local-first") || !strcmp(argv[2], "proportional"))) {
            fallback_model = !strcmp(argv[2], "proportional") ? OS_PROPORTIONAL : OS_LOCAL_FIRST;
            argv++;
            argc--;
        } else if (!strcmp(argv[1], "--out") && argc > 2) {
            outdir = argv[2];
            argv++;
            argc--;
        } else {
            g_printerr("usage: bench-placement [--smoke] [--seeds A,B,C] [--fallback-os local-first|proportional]\n"
                       "                       [--out DIR] TOPOLOGY...\n"
                       "       bench-placement --self-test TOPOLOGY\n");
            return 2;
        }
        argv++;
        argc--;
    }
    if (nseeds == 0) {
        g_printerr("bench-placement: --seeds: no seed\n");
        return 2;
    }
    if (smoke) {
        nseeds = 1;
    }
    g_mkdir_with_parents(outdir, 0755);
    for (int t = 1; t < argc; t++) {
        if (!run_topology(argv[t], seeds, nseeds, smoke ? 200 : 3000, outdir, md)) {
            return 1;
        }
    }
    printf("%s", md->str);
    {
        g_autofree gchar *path = g_strdup_printf("%s/placement.md", outdir);

        g_file_set_contents(path, md->str, -1, NULL);
    }
    return 0;
}
