/* Placement simulator: our planner (libqncore, not a copy) against baseline planners written
 * from the published algorithms, on the same topology, trace and accounting.
 *
 * Usage: bench-placement [--smoke] [--seed N] [--out DIR] TOPOLOGY-DIR...
 *
 * Accounting shared by every planner: 2M hugepages per node (90% of the node's memory, CPU-less
 * nodes included) and pCPUs per node (vCPUs are dedicated: one pCPU each). A placement is a list
 * of (host node, pages, vCPUs); "OS" placements spread memory over every node in proportion to
 * its free pages and vCPUs over the nodes with free pCPUs. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "qn-argv.h"
#include "qn-config.h"
#include "qn-plan.h"
#include "qn-size.h"
#include "qn-sysfs.h"

#define PAGE (2 * QN_MiB)
#define MAXN 64

typedef struct {
    guint n;                 /* nodes */
    guint id[MAXN];          /* kernel ids */
    guint dist[MAXN][MAXN];
    guint64 pages[MAXN];     /* capacity */
    guint cpus[MAXN];        /* capacity */
    guint64 free_pages[MAXN];
    guint free_cpus[MAXN];
    QnTopology *topo;        /* for our planner: pools rewritten from free_pages */
    QnBitmap *pinned;        /* our planner's pinned pCPUs (same counts as free_cpus) */
} Host;

typedef struct {
    guint vcpus;
    guint64 pages;
    guint numa_nodes;        /* Nova flavor hw:numa_nodes */
} Req;

typedef struct {
    guint k;                 /* parts */
    guint node[MAXN];        /* index into Host */
    guint64 pages[MAXN];
    guint vcpus[MAXN];
    gboolean os;             /* not aligned: left to the OS */
    QnBitmap *pcpus;         /* ours: the pinned pCPU ids */
} Placement;

typedef gboolean (*Planner)(Host *h, const Req *r, Placement *p);

/* ---- helpers shared by the baselines ---- */

static gboolean
even_split_fits(const Host *h, const guint *set, guint k, const Req *r, Placement *p)
{
    p->k = k;
    p->os = FALSE;
    for (guint i = 0; i < k; i++) {
        guint64 pg = r->pages / k + (i < r->pages % k);
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

/* The OS: memory in proportion to free pages everywhere, vCPUs where pCPUs are free. */
static gboolean
os_place(const Host *h, const Req *r, Placement *p)
{
    guint64 total = 0, left = r->pages;
    guint cpus = 0, vleft = r->vcpus;

    for (guint i = 0; i < h->n; i++) {
        total += h->free_pages[i];
        cpus += h->free_cpus[i];
    }
    if (total < r->pages || cpus < r->vcpus) {
        return FALSE;
    }
    p->k = 0;
    p->os = TRUE;
    for (guint i = 0; i < h->n && (left > 0 || vleft > 0); i++) {
        guint64 pg = MIN(left, (guint64)((double)r->pages * h->free_pages[i] / total + 0.999));
        guint vc = MIN(vleft, (guint)((double)r->vcpus * h->free_cpus[i] / cpus + 0.999));

        pg = MIN(pg, h->free_pages[i]);
        vc = MIN(vc, h->free_cpus[i]);
        if (pg == 0 && vc == 0) {
            continue;
        }
        p->node[p->k] = i;
        p->pages[p->k] = pg;
        p->vcpus[p->k] = vc;
        p->k++;
        left -= pg;
        vleft -= vc;
    }
    /* rounding leftovers: first nodes with room */
    for (guint i = 0; i < h->n && (left > 0 || vleft > 0); i++) {
        for (guint j = 0; j < p->k; j++) {
            if (p->node[j] == i) {
                guint64 room = h->free_pages[i] - p->pages[j];
                guint croom = h->free_cpus[i] - p->vcpus[j];
                guint64 a = MIN(room, left);
                guint c = MIN(croom, vleft);

                p->pages[j] += a;
                p->vcpus[j] += c;
                left -= a;
                vleft -= c;
            }
        }
    }
    return left == 0 && vleft == 0;
}

static gint
cmp_free_desc(gconstpointer a, gconstpointer b, gpointer host)
{
    const Host *h = host;
    guint x = *(const guint *)a, y = *(const guint *)b;

    if (h->free_pages[x] != h->free_pages[y]) {
        return h->free_pages[x] > h->free_pages[y] ? -1 : 1;
    }
    return (gint)x - (gint)y;
}

/* ---- Cloudpods host-agent ("Host Enable NUMA Memory Allocation", Cloudpods docs): sort by
 * free hugepage memory, first N of 1, 2, 4 ---- */
static gboolean
plan_cloudpods(Host *h, const Req *r, Placement *p)
{
    guint order[MAXN];

    for (guint i = 0; i < h->n; i++) {
        order[i] = i;
    }
    g_qsort_with_data(order, (gint)h->n, sizeof(guint), cmp_free_desc, h);
    for (guint k = 1; k <= h->n; k *= 2) {
        if (even_split_fits(h, order, k, r, p)) {
            return TRUE;
        }
    }
    return os_place(h, r, p);
}

/* ---- Nova numa_fit_instance_to_host: flavor's cell count, cells by free memory (spread),
 * first permutation where every guest cell fits, else reject ---- */
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
    g_qsort_with_data(order, (gint)h->n, sizeof(guint), cmp_free_desc, h);
    return nova_dfs(h, order, k, 0, chosen, used, r, p);
}

/* ---- Xen libxl (libxl_numa.c): smallest k from ceil(vcpus / cpus per node); every
 * k-combination with enough free memory; fewest vCPUs already running there, then most free
 * memory; memory striped over the set. Gives up above 16 nodes. ---- */
static gboolean
plan_libxl(Host *h, const Req *r, Placement *p)
{
    guint cpn = 0, k0;
    guint idx[MAXN];
    gboolean found = FALSE;
    guint best[MAXN];
    guint best_k = 0;
    guint64 best_busy = 0, best_free = 0;

    if (h->n > 16) {
        return os_place(h, r, p);
    }
    for (guint i = 0; i < h->n; i++) {
        cpn = MAX(cpn, h->cpus[i]);
    }
    k0 = cpn ? MAX(1, (r->vcpus + cpn - 1) / cpn) : 1;
    for (guint k = k0; k <= h->n && !found; k++) {
        for (guint i = 0; i < k; i++) {
            idx[i] = i;
        }
        for (;;) {
            guint64 fp = 0, busy = 0;
            guint fc = 0;

            for (guint i = 0; i < k; i++) {
                fp += h->free_pages[idx[i]];
                fc += h->free_cpus[idx[i]];
                busy += h->cpus[idx[i]] - h->free_cpus[idx[i]];
            }
            if (fp >= r->pages && fc >= r->vcpus &&
                (!found || busy < best_busy || (busy == best_busy && fp > best_free))) {
                found = TRUE;
                best_k = k;
                best_busy = busy;
                best_free = fp;
                memcpy(best, idx, k * sizeof(guint));
            }
            {
                gint i = (gint)k - 1;

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
    }
    if (!found) {
        return os_place(h, r, p);
    }
    {
        /* striped: equal stripes, a node short of its stripe passes the rest on */
        guint64 left = r->pages;
        guint vleft = r->vcpus;

        p->k = best_k;
        p->os = FALSE;
        for (guint i = 0; i < best_k; i++) {
            p->node[i] = best[i];
            p->pages[i] = 0;
            p->vcpus[i] = 0;
        }
        while (left > 0 || vleft > 0) {
            gboolean moved = FALSE;

            for (guint i = 0; i < best_k; i++) {
                if (left > 0 && p->pages[i] < h->free_pages[best[i]]) {
                    p->pages[i]++;
                    left--;
                    moved = TRUE;
                }
                if (vleft > 0 && p->vcpus[i] < h->free_cpus[best[i]]) {
                    p->vcpus[i]++;
                    vleft--;
                    moved = TRUE;
                }
            }
            if (!moved) {
                return FALSE;
            }
        }
    }
    return TRUE;
}

/* ---- numad -w: magnitude = free memory x free CPUs; centre = argmax sum magnitude / d^2;
 * add nodes by distance from the centre until the request fits; memory by first touch
 * (in proportion to free memory) within the set ---- */
static gboolean
plan_numad(Host *h, const Req *r, Placement *p)
{
    double best = -1;
    guint centre = 0;
    guint order[MAXN];
    guint k = 0;
    guint64 fp = 0;
    guint fc = 0;

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
    for (guint i = 0; i < h->n; i++) {
        order[i] = i;
    }
    for (guint i = 0; i < h->n; i++) { /* by distance from the centre */
        for (guint j = i + 1; j < h->n; j++) {
            if (h->dist[centre][order[j]] < h->dist[centre][order[i]] ||
                (h->dist[centre][order[j]] == h->dist[centre][order[i]] && order[j] == centre)) {
                guint t = order[i];

                order[i] = order[j];
                order[j] = t;
            }
        }
    }
    while (k < h->n && (fp < r->pages || fc < r->vcpus)) {
        fp += h->free_pages[order[k]];
        fc += h->free_cpus[order[k]];
        k++;
    }
    if (fp < r->pages || fc < r->vcpus) {
        return os_place(h, r, p);
    }
    {
        Host sub = *h;
        Placement q;

        /* the OS rule, restricted to the set */
        for (guint i = 0; i < h->n; i++) {
            gboolean in = FALSE;

            for (guint j = 0; j < k; j++) {
                in |= order[j] == i;
            }
            if (!in) {
                sub.free_pages[i] = 0;
                sub.free_cpus[i] = 0;
            }
        }
        if (!os_place(&sub, r, &q)) {
            return FALSE;
        }
        *p = q;
        p->os = FALSE;
    }
    return TRUE;
}

static gboolean
plan_os(Host *h, const Req *r, Placement *p)
{
    return os_place(h, r, p);
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
    qn_bitmap_or(resv->pinned_cpus, h->pinned);
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
        guint idx = 0;

        while (h->id[idx] != (guint)host) {
            idx++;
        }
        p->node[p->k] = idx;
        p->pages[p->k] = gn->bytes / PAGE;
        p->vcpus[p->k] = 0;
        /* vCPUs and held siblings are counted where the pCPUs are */
        p->k++;
    }
    for (guint j = 0; j < p->k; j++) {
        const QnHostNode *node = qn_topology_node(h->topo, h->id[p->node[j]]);
        g_autoptr(QnBitmap) mine = qn_bitmap_copy(p->pcpus);

        qn_bitmap_and(mine, node->cpus);
        p->vcpus[j] = qn_bitmap_count(mine);
    }
    return TRUE;
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
    { "OS default", plan_os, 0 },
};

typedef struct {
    guint64 offered, accepted, aligned, minimal;
    double loc_sum;
    GArray *locs;          /* double */
    double gap_sum;        /* locality - exhaustive best, over decisions with a best */
    guint64 gap_n, best_missed;
    double stranded_gib;   /* at the first rejection */
    guint stranded_cpus;
    gboolean rejected_once;
    double plan_ns;
} Stats;

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

/* The best locality any even split on distinct nodes could reach now (hosts <= 8 nodes). */
static double
exhaustive_best(const Host *h, const Req *r)
{
    double best = -1;

    for (guint mask = 1; mask < (1u << h->n); mask++) {
        guint set[MAXN], k = 0;
        Placement p;

        for (guint i = 0; i < h->n; i++) {
            if (mask & (1u << i)) {
                set[k++] = i;
            }
        }
        if (even_split_fits(h, set, k, r, &p)) {
            double l = locality(h, &p, r);

            if (best < 0 || l < best) {
                best = l;
            }
        }
    }
    return best;
}

/* Smallest k for which k distinct nodes can hold an even split: k nodes each with room for
 * the larger share (ceil) of pages and vCPUs. O(n) per k. */
static guint
minimal_count(const Host *h, const Req *r)
{
    for (guint k = 1; k <= h->n; k++) {
        guint64 pg = (r->pages + k - 1) / k;
        guint vc = (r->vcpus + k - 1) / k;
        guint fit = 0;

        for (guint i = 0; i < h->n; i++) {
            fit += h->free_pages[i] >= pg && h->free_cpus[i] >= vc;
        }
        if (fit >= k) {
            return k;
        }
    }
    return 0;
}

typedef struct {
    double t;      /* arrival time */
    double life;
    Req req;
} Arrival;

static Host *
host_load(const char *dir)
{
    g_autoptr(GError) error = NULL;
    g_autofree gchar *proc = g_build_filename(dir, "..", "..", "proc", "fake", NULL);
    Host *h = g_new0(Host, 1);

    h->topo = qn_topology_load(dir, proc, &error);
    if (h->topo == NULL) {
        g_printerr("bench-placement: %s\n", error->message);
        return NULL;
    }
    h->pinned = qn_bitmap_new();
    for (guint i = 0; i < h->topo->nodes->len && h->n < MAXN; i++) {
        QnHostNode *node = g_ptr_array_index(h->topo->nodes, i);

        h->id[h->n] = node->id;
        h->pages[h->n] = node->mem_total * 9 / 10 / PAGE;
        h->cpus[h->n] = qn_bitmap_count(node->cpus);
        if (qn_host_node_pool(node, PAGE) == NULL) {
            QnHugepagePool pool = { PAGE, 0, 0, 0 };

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
host_reset(Host *h)
{
    for (guint i = 0; i < h->n; i++) {
        h->free_pages[i] = h->pages[i];
        h->free_cpus[i] = h->cpus[i];
    }
    qn_bitmap_free(h->pinned);
    h->pinned = qn_bitmap_new();
}

static GArray *
make_trace(const Host *h, guint count, guint32 seed)
{
    /* flavor mix: vCPUs and GiB; the last ones are larger than most nodes */
    static const struct {
        guint vcpus, gib, weight;
    } flavors[] = {
        { 1, 1, 20 }, { 2, 4, 20 }, { 4, 8, 18 }, { 8, 16, 14 }, { 16, 32, 10 },
        { 16, 64, 6 }, { 32, 128, 6 }, { 64, 256, 4 }, { 64, 512, 2 },
    };
    GRand *rng = g_rand_new_with_seed(seed);
    GArray *trace = g_array_new(FALSE, FALSE, sizeof(Arrival));
    guint wsum = 0;
    double mean_pages = 0, cap = 0, t = 0, mean_life;
    guint64 node_max = 0;

    for (guint i = 0; i < G_N_ELEMENTS(flavors); i++) {
        wsum += flavors[i].weight;
    }
    for (guint i = 0; i < G_N_ELEMENTS(flavors); i++) {
        mean_pages += (double)flavors[i].weight / wsum * flavors[i].gib * 512;
    }
    for (guint i = 0; i < h->n; i++) {
        cap += (double)h->pages[i];
        node_max = MAX(node_max, h->pages[i]);
    }
    /* offered load 1.5 x capacity: runs to saturation */
    mean_life = 1.5 * cap / mean_pages;
    for (guint i = 0; i < count; i++) {
        Arrival a;
        guint w = (guint)g_rand_int_range(rng, 0, (gint32)wsum);
        guint f = 0;

        while (w >= flavors[f].weight) {
            w -= flavors[f].weight;
            f++;
        }
        t += -log(1.0 - g_rand_double(rng));
        a.t = t;
        a.life = -log(1.0 - g_rand_double(rng)) * mean_life;
        a.req.vcpus = flavors[f].vcpus;
        a.req.pages = (guint64)flavors[f].gib * 512;
        /* Nova flavors ask for as many cells as a node cannot hold */
        a.req.numa_nodes = 1;
        while (a.req.pages / a.req.numa_nodes > node_max && a.req.numa_nodes < 8) {
            a.req.numa_nodes *= 2;
        }
        g_array_append_val(trace, a);
    }
    g_rand_free(rng);
    return trace;
}

typedef struct {
    double end;
    Placement p;
} Running;

static void
apply(Host *h, const Placement *p, gint sign)
{
    for (guint i = 0; i < p->k; i++) {
        h->free_pages[p->node[i]] = (guint64)((gint64)h->free_pages[p->node[i]] -
                                              sign * (gint64)p->pages[i]);
        h->free_cpus[p->node[i]] = (guint)((gint)h->free_cpus[p->node[i]] -
                                           sign * (gint)p->vcpus[i]);
    }
    if (p->pcpus != NULL) {
        if (sign > 0) {
            qn_bitmap_or(h->pinned, p->pcpus);
        } else {
            qn_bitmap_and_not(h->pinned, p->pcpus);
        }
    }
}

static gint
cmp_double(gconstpointer a, gconstpointer b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static void
simulate(Host *h, GArray *trace, const PlannerDef *pd, Stats *st)
{
    GArray *running = g_array_new(FALSE, FALSE, sizeof(Running));

    host_reset(h);
    memset(st, 0, sizeof(*st));
    st->locs = g_array_new(FALSE, FALSE, sizeof(double));
    ours_packing = pd->packing;
    for (guint i = 0; i < trace->len; i++) {
        Arrival *a = &g_array_index(trace, Arrival, i);
        Placement p = { 0 };
        gboolean ok;
        gint64 t0;
        double best = -1;
        guint kmin;

        for (guint k = 0; k < running->len;) {
            Running *r = &g_array_index(running, Running, k);

            if (r->end <= a->t) {
                apply(h, &r->p, -1);
                qn_bitmap_free(r->p.pcpus);
                g_array_remove_index_fast(running, k);
            } else {
                k++;
            }
        }
        st->offered++;
        if (h->n <= 8) {
            best = exhaustive_best(h, &a->req);
        }
        kmin = minimal_count(h, &a->req);
        t0 = g_get_monotonic_time();
        ok = pd->fn(h, &a->req, &p);
        st->plan_ns += (double)(g_get_monotonic_time() - t0) * 1000.0;
        if (!ok) {
            if (!st->rejected_once) {
                st->rejected_once = TRUE;
                for (guint n = 0; n < h->n; n++) {
                    if (h->free_cpus[n] == 0) {
                        st->stranded_gib += (double)h->free_pages[n] * 2 / 1024;
                    }
                    if (h->free_pages[n] == 0) {
                        st->stranded_cpus += h->free_cpus[n];
                    }
                }
            }
            if (best >= 0) {
                st->best_missed++;
            }
            continue;
        }
        st->accepted++;
        st->aligned += !p.os;
        st->minimal += !p.os && kmin > 0 && p.k == kmin;
        {
            double l = locality(h, &p, &a->req);

            st->loc_sum += l;
            g_array_append_val(st->locs, l);
            if (best >= 0) {
                st->gap_sum += l - best;
                st->gap_n++;
            }
        }
        apply(h, &p, +1);
        {
            Running r = { a->t + a->life, p };

            g_array_append_val(running, r);
        }
    }
    for (guint k = 0; k < running->len; k++) {
        qn_bitmap_free(g_array_index(running, Running, k).p.pcpus);
    }
    g_array_unref(running);
}

int
main(int argc, char **argv)
{
    gboolean smoke = FALSE;
    guint32 seed = 42;
    const char *outdir = "bench/results";
    guint count;
    g_autoptr(GString) md = g_string_new(NULL);

    while (argc > 1 && argv[1][0] == '-') {
        if (!strcmp(argv[1], "--smoke")) {
            smoke = TRUE;
        } else if (!strcmp(argv[1], "--seed") && argc > 2) {
            seed = (guint32)atoi(argv[2]);
            argv++;
            argc--;
        } else if (!strcmp(argv[1], "--out") && argc > 2) {
            outdir = argv[2];
            argv++;
            argc--;
        } else {
            g_printerr("usage: bench-placement [--smoke] [--seed N] [--out DIR] TOPOLOGY...\n");
            return 2;
        }
        argv++;
        argc--;
    }
    count = smoke ? 200 : 3000;
    g_mkdir_with_parents(outdir, 0755);
    for (int t = 1; t < argc; t++) {
        Host *h = host_load(argv[t]);
        g_autofree gchar *name = g_path_get_basename(argv[t]);
        g_autoptr(GArray) trace = NULL;
        g_autofree gchar *dat_path = g_strdup_printf("%s/%s.dat", outdir, name);
        FILE *dat;

        if (h == NULL) {
            return 1;
        }
        trace = make_trace(h, count, seed);
        g_string_append_printf(md, "\n### %s (%u nodes, %u arrivals, seed %u)\n\n", name, h->n,
                               count, seed);
        g_string_append(md, "| planner | accepted | aligned | on minimal node count | "
                            "locality mean | locality p95 | gap to best (<=8 nodes) | "
                            "best missed | stranded GiB / pCPUs at 1st reject | us per plan |\n"
                            "|---|---|---|---|---|---|---|---|---|---|\n");
        dat = fopen(dat_path, "w");
        for (guint k = 0; k < G_N_ELEMENTS(planners); k++) {
            Stats st;
            double p95 = 0;

            simulate(h, trace, &planners[k], &st);
            if (st.locs->len > 0) {
                g_array_sort(st.locs, cmp_double);
                p95 = g_array_index(st.locs, double, (guint)(0.95 * (st.locs->len - 1)));
            }
            g_string_append_printf(
                md, "| %s | %.1f%% | %.1f%% | %.1f%% | %.3f | %.3f | %s | %" G_GUINT64_FORMAT
                " | %.0f / %u | %.1f |\n",
                planners[k].name, 100.0 * st.accepted / st.offered,
                100.0 * st.aligned / st.offered,
                st.accepted ? 100.0 * st.minimal / st.accepted : 0.0,
                st.accepted ? st.loc_sum / st.accepted : 0.0, p95,
                st.gap_n ? g_strdup_printf("%.3f", st.gap_sum / st.gap_n) : g_strdup("n/a"),
                st.best_missed, st.stranded_gib, st.stranded_cpus, st.plan_ns / 1000.0 / st.offered);
            if (dat != NULL) {
                fprintf(dat, "\"%s\" %.2f %.4f\n", planners[k].name,
                        100.0 * st.accepted / st.offered,
                        st.accepted ? st.loc_sum / st.accepted : 0.0);
            }
            g_array_unref(st.locs);
        }
        if (dat != NULL) {
            fclose(dat);
        }
        qn_topology_free(h->topo);
        qn_bitmap_free(h->pinned);
        g_free(h);
    }
    printf("%s", md->str);
    {
        g_autofree gchar *path = g_strdup_printf("%s/placement.md", outdir);

        g_file_set_contents(path, md->str, -1, NULL);
    }
    return 0;
}
