/* A fleet, simulated, through the real planner (issue 17): N hosts of the recorded topologies,
 * the placement benchmark's arrival/departure trace, and two cluster schedulers in front of
 * our per-host planner (libqncore's qn_plan_compute(), as bench/placement.c calls it):
 *
 *   blind  kube-scheduler's NodeResourcesFit: filter on host totals (free 2M pages, free
 *          pCPUs), score LeastAllocated (mean free share of CPU and memory after placing);
 *   nrt    scheduler-plugins' NodeResourceTopologyMatch reading each host's
 *          NodeResourceTopology (what `qemu-numa-ctl nrt` publishes, assumed fresh): filter
 *          on a zone with room (single-numa-node) or a zone set with room (best-effort),
 *          score LeastNUMANodes (KEP 2858: narrowest zone set that fits, +half a step when it
 *          has the minimum mean distance of its width; 100 - k * 100/8).
 *
 * Both sample as kube-scheduler does (percentageOfNodesToScore, adaptive: max(5, 50 - N/125)%
 * of N, at least 100 feasible hosts, from a rotating start) and break score ties at random.
 * The chosen host then runs our planner with the kubelet-like policy; a NULL plan is the
 * VM refused at the host after the cluster picked it (TopologyAffinityError).
 *
 * Usage: bench-fleet [--smoke] [--seed N] [--hosts N] [--arrivals N] [--out DIR] SYSFS-DIR...
 * The trace is bench/placement.c's (bench-common.c); the host model follows placement.c's. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench-common.h"
#include "qn-argv.h"
#include "qn-config.h"
#include "qn-plan.h"
#include "qn-size.h"
#include "qn-sysfs.h"

#define PAGE (2 * QN_MiB)
#define MAXN 64
#define HIGHEST_NUMA_ID 8   /* the KEP's normalisation constant (kubelet's 8-node limit) */
#define MAX_COMBOS 2048     /* zone sets enumerated per width; above: greedy by free pages */

typedef struct {
    gchar *name;
    guint n;
    guint id[MAXN];
    guint dist[MAXN][MAXN];
    guint64 pages[MAXN];
    guint cpus[MAXN];
    guint64 total_pages;
    guint total_cpus;
    QnTopology *topo;       /* shared by the hosts of this type: pools rewritten per plan */
} HostType;

typedef struct {
    const HostType *type;
    guint64 free_pages[MAXN];
    guint free_cpus[MAXN];
    QnBitmap *pinned;
} Host;

typedef struct {
    guint vcpus;
    guint64 pages;
} Req;

typedef struct {
    guint k;
    guint node[MAXN];
    guint64 pages[MAXN];
    guint vcpus[MAXN];
    gboolean os;
    QnBitmap *pcpus;
} Placement;

typedef struct {
    double t, life;
    Req req;
} Arrival;

/* ---- host model (bench/placement.c) ---- */

static HostType *
type_load(const char *dir)
{
    g_autoptr(GError) error = NULL;
    g_autofree gchar *proc = g_build_filename(dir, "..", "..", "proc", "fake", NULL);
    HostType *h = g_new0(HostType, 1);

    h->name = g_path_get_basename(dir);
    h->topo = qn_topology_load(dir, proc, &error);
    if (h->topo == NULL) {
        g_printerr("bench-fleet: %s\n", error->message);
        return NULL;
    }
    for (guint i = 0; i < h->topo->nodes->len && h->n < MAXN; i++) {
        QnHostNode *node = g_ptr_array_index(h->topo->nodes, i);

        h->id[h->n] = node->id;
        h->pages[h->n] = node->mem_total * 9 / 10 / PAGE;
        h->cpus[h->n] = qn_bitmap_count(node->cpus);
        h->total_pages += h->pages[h->n];
        h->total_cpus += h->cpus[h->n];
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
host_reset(Host *h)
{
    for (guint i = 0; i < h->type->n; i++) {
        h->free_pages[i] = h->type->pages[i];
        h->free_cpus[i] = h->type->cpus[i];
    }
    qn_bitmap_free(h->pinned);
    h->pinned = qn_bitmap_new();
}

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

/* the OS (best-effort's fallback): memory in proportion to free pages, vCPUs where free */
static gboolean
os_place(const Host *h, const Req *r, Placement *p)
{
    guint64 total = 0, left = r->pages;
    guint cpus = 0, vleft = r->vcpus;

    for (guint i = 0; i < h->type->n; i++) {
        total += h->free_pages[i];
        cpus += h->free_cpus[i];
    }
    if (total < r->pages || cpus < r->vcpus) {
        return FALSE;
    }
    p->k = 0;
    p->os = TRUE;
    for (guint i = 0; i < h->type->n && (left > 0 || vleft > 0); i++) {
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
    for (guint i = 0; i < h->type->n && (left > 0 || vleft > 0); i++) {
        for (guint j = 0; j < p->k; j++) {
            if (p->node[j] == i) {
                guint64 a = MIN(h->free_pages[i] - p->pages[j], left);
                guint c = MIN(h->free_cpus[i] - p->vcpus[j], vleft);

                p->pages[j] += a;
                p->vcpus[j] += c;
                left -= a;
                vleft -= c;
            }
        }
    }
    return left == 0 && vleft == 0;
}

/* ---- the host: our real planner ---- */

/* Our planner on @h under @policy: %FALSE when it refuses (the kubelet's admission error). */
static gboolean
plan_host(Host *h, const Req *r, QnPolicy policy, Placement *p)
{
    const HostType *t = h->type;
    g_autoptr(QnConfig) cfg = qn_config_new_default();
    g_autoptr(QnReservations) resv = qn_reservations_new();
    g_autoptr(QnQemuArgv) qa = NULL;
    g_autoptr(QnPlan) plan = NULL;
    g_autofree gchar *m = g_strdup_printf("%" G_GUINT64_FORMAT "M", r->pages * 2);
    g_autofree gchar *smp = g_strdup_printf("%u", r->vcpus);
    const char *argv[] = { "qemu", "-m", m, "-smp", smp, NULL };

    cfg->hugepage_size = PAGE;
    cfg->dedicated_cpus = TRUE;
    cfg->allow_cpuless_nodes = TRUE;
    cfg->policy = policy;
    for (guint i = 0; i < t->n; i++) {
        QnHostNode *node = qn_topology_node(t->topo, t->id[i]);
        QnHugepagePool *pool = qn_host_node_pool(node, PAGE);

        pool->nr = t->pages[i];
        pool->free = h->free_pages[i];
        node->mem_free = 0;
        node->mem_total = MAX(node->mem_total, t->pages[i] * PAGE);
    }
    qn_bitmap_or(resv->pinned_cpus, h->pinned);
    qa = qn_qemu_argv_parse(argv, NULL);
    plan = qn_plan_compute(t->topo, resv, qa, cfg, NULL);
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

        while (t->id[idx] != (guint)host) {
            idx++;
        }
        p->node[p->k] = idx;
        p->pages[p->k] = gn->bytes / PAGE;
        p->k++;
    }
    for (guint j = 0; j < p->k; j++) {
        const QnHostNode *node = qn_topology_node(t->topo, t->id[p->node[j]]);
        g_autoptr(QnBitmap) mine = qn_bitmap_copy(p->pcpus);

        qn_bitmap_and(mine, node->cpus);
        p->vcpus[j] = qn_bitmap_count(mine);
    }
    return TRUE;
}

static double
locality(const HostType *t, const Placement *p, const Req *r)
{
    double s = 0;

    for (guint i = 0; i < p->k; i++) {
        for (guint j = 0; j < p->k; j++) {
            s += ((double)p->vcpus[i] / r->vcpus) * ((double)p->pages[j] / r->pages) *
                 t->dist[p->node[i]][p->node[j]] / 10.0;
        }
    }
    return s;
}

/* ---- the cluster schedulers ---- */

typedef enum { SCHED_BLIND, SCHED_NRT } SchedKind;

static gboolean
fits_totals(const Host *h, const Req *r)
{
    guint64 pages = 0;
    guint cpus = 0;

    for (guint i = 0; i < h->type->n; i++) {
        pages += h->free_pages[i];
        cpus += h->free_cpus[i];
    }
    return pages >= r->pages && cpus >= r->vcpus;
}

/* NodeResourcesFit LeastAllocated, 0..100 */
static double
score_least_allocated(const Host *h, const Req *r)
{
    guint64 pages = 0;
    guint cpus = 0;

    for (guint i = 0; i < h->type->n; i++) {
        pages += h->free_pages[i];
        cpus += h->free_cpus[i];
    }
    return 50.0 * ((double)(cpus - r->vcpus) / h->type->total_cpus +
                   (double)(pages - r->pages) / h->type->total_pages);
}

/* next k-combination of 0..n-1 in lexicographic order (lowest ids first, as the KEP's) */
static gboolean
next_combo(guint *c, guint k, guint n)
{
    for (gint i = (gint)k - 1; i >= 0; i--) {
        if (c[i] < n - k + (guint)i) {
            c[i]++;
            for (guint j = (guint)i + 1; j < k; j++) {
                c[j] = c[j - 1] + 1;
            }
            return TRUE;
        }
    }
    return FALSE;
}

static double
mean_distance(const HostType *t, const guint *c, guint k)
{
    double s = 0;

    if (k == 1) {
        return t->dist[c[0]][c[0]];
    }
    for (guint i = 0; i < k; i++) {
        for (guint j = 0; j < k; j++) {
            s += i == j ? 0 : t->dist[c[i]][c[j]];
        }
    }
    return s / (k * (k - 1));
}

static guint64
n_choose_k(guint n, guint k)
{
    guint64 r = 1;

    for (guint i = 1; i <= k; i++) {
        r = r * (n - k + i) / i;
        if (r > G_MAXUINT32) {
            return G_MAXUINT32;
        }
    }
    return r;
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

/* LeastNUMANodes (KEP 2858): the narrowest zone set whose summed available pages and CPUs
 * hold the request; whether one of that width with the minimum mean distance does. Widths
 * with more than MAX_COMBOS sets take the greedy set (most free pages first) instead.
 * Returns the width, 0 when no set holds it; @work counts sets examined. */
static guint
least_numa_nodes(const Host *h, const Req *r, guint max_width, gboolean *ret_min_dist,
                 guint64 *work)
{
    const HostType *t = h->type;

    for (guint k = 1; k <= MIN(max_width, t->n); k++) {
        guint c[MAXN];
        double best_any = G_MAXDOUBLE, best_fit = G_MAXDOUBLE;

        if (n_choose_k(t->n, k) > MAX_COMBOS) {
            guint order[MAXN];
            guint64 pages = 0;
            guint cpus = 0;

            for (guint i = 0; i < t->n; i++) {
                order[i] = i;
            }
            g_qsort_with_data(order, (gint)t->n, sizeof(guint), cmp_free_desc, (gpointer)h);
            for (guint i = 0; i < k; i++) {
                pages += h->free_pages[order[i]];
                cpus += h->free_cpus[order[i]];
            }
            *work += t->n;
            if (pages >= r->pages && cpus >= r->vcpus) {
                *ret_min_dist = FALSE;
                return k;
            }
            continue;
        }
        for (guint i = 0; i < k; i++) {
            c[i] = i;
        }
        do {
            guint64 pages = 0;
            guint cpus = 0;
            double d = mean_distance(t, c, k);

            (*work)++;
            for (guint i = 0; i < k; i++) {
                pages += h->free_pages[c[i]];
                cpus += h->free_cpus[c[i]];
            }
            best_any = MIN(best_any, d);
            if (pages >= r->pages && cpus >= r->vcpus) {
                best_fit = MIN(best_fit, d);
            }
        } while (next_combo(c, k, t->n));
        if (best_fit < G_MAXDOUBLE) {
            *ret_min_dist = best_fit <= best_any;
            return k;
        }
    }
    return 0;
}

typedef struct {
    guint64 work;            /* hosts examined + zone sets examined */
    guint64 examined;        /* hosts filtered */
} SchedCost;

/* kube-scheduler's numFeasibleNodesToFind (percentageOfNodesToScore adaptive default) */
static guint
feasible_to_find(guint hosts)
{
    double pct = MAX(5.0, 50.0 - hosts / 125.0);
    guint n = (guint)(hosts * pct / 100.0);

    return hosts < 100 ? hosts : MAX(100u, n);
}

/* The host the cluster picks for @r, or -1; @start rotates as kube-scheduler's
 * nextStartNodeIndex. */
static gint
schedule(Host *hosts, guint nhosts, const Req *r, SchedKind kind, QnPolicy policy,
         guint *start, GRand *rng, SchedCost *cost)
{
    guint want = feasible_to_find(nhosts), found = 0, ties = 0, examined = 0;
    double best = -1;
    gint pick = -1;

    for (guint k = 0; k < nhosts && found < want; k++) {
        Host *h = &hosts[(*start + k) % nhosts];
        double s;

        examined++;
        cost->work++;
        if (!fits_totals(h, r)) {
            continue;
        }
        if (kind == SCHED_BLIND) {
            s = score_least_allocated(h, r);
        } else {
            gboolean min_dist = FALSE;
            guint width = least_numa_nodes(h, r, policy == QN_POLICY_SINGLE_NUMA_NODE ? 1 : MAXN,
                                           &min_dist, &cost->work);
            double step = 100.0 / HIGHEST_NUMA_ID;

            if (width == 0) {
                continue; /* the zone filter */
            }
            s = MAX(0.0, 100.0 - width * step + (min_dist ? step / 2 : 0));
        }
        found++;
        if (s > best) {
            best = s;
            pick = (gint)((*start + k) % nhosts);
            ties = 1;
        } else if (s == best && g_rand_int_range(rng, 0, (gint32)++ties) == 0) {
            pick = (gint)((*start + k) % nhosts); /* reservoir sampling, as selectHost */
        }
    }
    *start = (*start + examined) % nhosts;
    cost->examined += examined;
    return pick;
}

/* whether any host's zones (as NRT shows them) could hold @r under @policy: the refusal at
 * the host was the cluster scheduler's wrong pick, not a VM no host could take */
static gboolean
placeable_elsewhere(Host *hosts, guint nhosts, const Req *r, QnPolicy policy)
{
    guint64 work = 0;

    for (guint i = 0; i < nhosts; i++) {
        gboolean min_dist;

        if (fits_totals(&hosts[i], r) &&
            least_numa_nodes(&hosts[i], r, policy == QN_POLICY_SINGLE_NUMA_NODE ? 1 : MAXN,
                             &min_dist, &work) > 0) {
            return TRUE;
        }
    }
    return FALSE;
}

/* ---- the trace: the placement benchmark's (bench-common.c), scaled to the fleet ---- */

static GArray *
make_trace(guint64 cap_pages, guint count, guint32 seed)
{
    g_autoptr(GArray) common = bench_trace_new((double)cap_pages, count, seed);
    GArray *trace = g_array_new(FALSE, FALSE, sizeof(Arrival));

    for (guint i = 0; i < common->len; i++) {
        const BenchArrival *c = &g_array_index(common, BenchArrival, i);
        Arrival a = { .t = c->t, .life = c->life, .req = { c->vcpus, c->pages } };

        g_array_append_val(trace, a);
    }
    return trace;
}

/* ---- the simulation ---- */

typedef struct {
    double end;
    guint host;
    Placement p;
} Running;

/* a binary min-heap of Running by end time */
static void
heap_push(GArray *h, Running r)
{
    guint i;

    g_array_append_val(h, r);
    for (i = h->len - 1; i > 0; i = (i - 1) / 2) {
        Running *a = &g_array_index(h, Running, i), *p = &g_array_index(h, Running, (i - 1) / 2);
        Running tmp;

        if (p->end <= a->end) {
            break;
        }
        tmp = *a;
        *a = *p;
        *p = tmp;
    }
}

static Running
heap_pop(GArray *h)
{
    Running top = g_array_index(h, Running, 0);
    guint i = 0;

    g_array_index(h, Running, 0) = g_array_index(h, Running, h->len - 1);
    g_array_set_size(h, h->len - 1);
    for (;;) {
        guint l = 2 * i + 1, r = l + 1, m = i;
        Running tmp;

        if (l < h->len && g_array_index(h, Running, l).end < g_array_index(h, Running, m).end) {
            m = l;
        }
        if (r < h->len && g_array_index(h, Running, r).end < g_array_index(h, Running, m).end) {
            m = r;
        }
        if (m == i) {
            break;
        }
        tmp = g_array_index(h, Running, i);
        g_array_index(h, Running, i) = g_array_index(h, Running, m);
        g_array_index(h, Running, m) = tmp;
        i = m;
    }
    return top;
}

typedef struct {
    guint64 offered, placed, cluster_refused, host_refused, aligned, single_node;
    guint64 host_refused_elsewhere; /* of host_refused: another host had a zone set with room */
    double loc_sum;
    GArray *plan_us;         /* double: our planner per host decision */
    double sched_ns;         /* cluster scheduler, filter + score */
    SchedCost cost;
} Stats;

static void
simulate(Host *hosts, guint nhosts, GArray *trace, SchedKind kind, QnPolicy policy,
         guint32 seed, Stats *st)
{
    GArray *running = g_array_new(FALSE, FALSE, sizeof(Running));
    GRand *rng = g_rand_new_with_seed(seed);
    guint start = 0;

    memset(st, 0, sizeof(*st));
    st->plan_us = g_array_new(FALSE, FALSE, sizeof(double));
    for (guint i = 0; i < nhosts; i++) {
        host_reset(&hosts[i]);
    }
    for (guint i = 0; i < trace->len; i++) {
        const Arrival *a = &g_array_index(trace, Arrival, i);
        Placement p = { 0 };
        gint64 t0;
        gint pick;

        while (running->len > 0 && g_array_index(running, Running, 0).end <= a->t) {
            Running r = heap_pop(running);

            apply(&hosts[r.host], &r.p, -1);
            qn_bitmap_free(r.p.pcpus);
        }
        st->offered++;
        t0 = g_get_monotonic_time();
        pick = schedule(hosts, nhosts, &a->req, kind, policy, &start, rng, &st->cost);
        st->sched_ns += (double)(g_get_monotonic_time() - t0) * 1000.0;
        if (pick < 0) {
            st->cluster_refused++;
            continue;
        }
        t0 = g_get_monotonic_time();
        if (!plan_host(&hosts[pick], &a->req, policy, &p)) {
            double us = (double)(g_get_monotonic_time() - t0);

            g_array_append_val(st->plan_us, us);
            st->host_refused++;
            st->host_refused_elsewhere += placeable_elsewhere(hosts, nhosts, &a->req, policy);
            continue;
        }
        {
            double us = (double)(g_get_monotonic_time() - t0);
            Running r = { a->t + a->life, (guint)pick, p };

            g_array_append_val(st->plan_us, us);
            st->placed++;
            st->aligned += !p.os;
            st->single_node += !p.os && p.k == 1;
            st->loc_sum += locality(hosts[pick].type, &p, &a->req);
            apply(&hosts[pick], &p, +1);
            heap_push(running, r);
        }
    }
    for (guint k = 0; k < running->len; k++) {
        qn_bitmap_free(g_array_index(running, Running, k).p.pcpus);
    }
    g_array_unref(running);
    g_rand_free(rng);
}

static Host *
fleet_new(HostType **types, guint ntypes, guint nhosts, guint64 *ret_cap)
{
    Host *hosts = g_new0(Host, nhosts);

    *ret_cap = 0;
    for (guint i = 0; i < nhosts; i++) {
        hosts[i].type = types[i % ntypes];
        *ret_cap += hosts[i].type->total_pages;
    }
    return hosts;
}

static void
fleet_free(Host *hosts, guint nhosts)
{
    for (guint i = 0; i < nhosts; i++) {
        qn_bitmap_free(hosts[i].pinned);
    }
    g_free(hosts);
}

static const char *
policy_name(QnPolicy p)
{
    return qn_policy_to_string(p);
}

int
main(int argc, char **argv)
{
    gboolean smoke = FALSE;
    guint32 seed = 42;
    guint nhosts = 1000;
    guint arrivals = 0;
    const char *outdir = "bench/results";
    HostType *types[16];
    guint ntypes = 0;
    g_autoptr(GString) md = g_string_new(NULL);
    static const QnPolicy policies[] = { QN_POLICY_SINGLE_NUMA_NODE, QN_POLICY_BEST_EFFORT };
    static const SchedKind kinds[] = { SCHED_BLIND, SCHED_NRT };
    static const char *const kind_names[] = { "NUMA-blind (NodeResourcesFit)",
                                              "NRT (zone filter + LeastNUMANodes)" };

    while (argc > 1 && argv[1][0] == '-') {
        if (!strcmp(argv[1], "--smoke")) {
            smoke = TRUE;
        } else if (!strcmp(argv[1], "--seed") && argc > 2) {
            seed = (guint32)atoi(argv[2]);
            argv++;
            argc--;
        } else if (!strcmp(argv[1], "--hosts") && argc > 2) {
            nhosts = (guint)atoi(argv[2]);
            argv++;
            argc--;
        } else if (!strcmp(argv[1], "--arrivals") && argc > 2) {
            arrivals = (guint)atoi(argv[2]);
            argv++;
            argc--;
        } else if (!strcmp(argv[1], "--out") && argc > 2) {
            outdir = argv[2];
            argv++;
            argc--;
        } else {
            g_printerr("usage: bench-fleet [--smoke] [--seed N] [--hosts N] [--arrivals N] "
                       "[--out DIR] SYSFS-DIR...\n");
            return 2;
        }
        argv++;
        argc--;
    }
    for (int t = 1; t < argc && ntypes < G_N_ELEMENTS(types); t++) {
        types[ntypes] = type_load(argv[t]);
        if (types[ntypes] == NULL) {
            return 1;
        }
        ntypes++;
    }
    if (ntypes == 0 || nhosts == 0) {
        g_printerr("bench-fleet: no topology or no host\n");
        return 2;
    }
    if (smoke) {
        nhosts = MIN(nhosts, 20);
    }
    {
        guint64 cap;
        Host *hosts = fleet_new(types, ntypes, nhosts, &cap);
        /* 60 per host: about 3 mean lifetimes, saturated; fewer (--arrivals) for the growth of
         * the scheduler's work alone */
        guint count = arrivals ? arrivals : smoke ? 200 : nhosts * 60;
        g_autoptr(GArray) trace = make_trace(cap, count, seed);

        g_string_append_printf(md, "\n### %u hosts (", nhosts);
        for (guint t = 0; t < ntypes; t++) {
            g_string_append_printf(md, "%s%s", t ? ", " : "", types[t]->name);
        }
        g_string_append_printf(md, " in turn), %u arrivals, offered load 1.5 x capacity, "
                               "seed %u\n\n", count, seed);
        g_string_append(md, "| host policy | cluster scheduler | placed | refused by cluster | "
                            "refused at host (another host had room) | aligned (of placed) | "
                            "on 1 node | locality mean | plan us p50 / p99 | "
                            "scheduler us per decision | hosts examined |\n"
                            "|---|---|---|---|---|---|---|---|---|---|---|\n");
        for (guint pi = 0; pi < G_N_ELEMENTS(policies); pi++) {
            for (guint k = 0; k < G_N_ELEMENTS(kinds); k++) {
                Stats st;

                simulate(hosts, nhosts, trace, kinds[k], policies[pi], seed, &st);
                g_string_append_printf(
                    md, "| %s | %s | %.1f%% | %.1f%% | %.1f%% (%" G_GUINT64_FORMAT
                    ", %" G_GUINT64_FORMAT ") | %.1f%% "
                    "| %.1f%% | %.3f | %.0f / %.0f | %.1f | %.0f |\n",
                    policy_name(policies[pi]), kind_names[k], 100.0 * st.placed / st.offered,
                    100.0 * st.cluster_refused / st.offered,
                    100.0 * st.host_refused / st.offered, st.host_refused,
                    st.host_refused_elsewhere,
                    st.placed ? 100.0 * st.aligned / st.placed : 0.0,
                    st.placed ? 100.0 * st.single_node / st.placed : 0.0,
                    st.placed ? st.loc_sum / st.placed : 0.0, bench_quantile(st.plan_us, 0.5),
                    bench_quantile(st.plan_us, 0.99), st.sched_ns / 1000.0 / st.offered,
                    (double)st.cost.examined / st.offered);
                g_array_unref(st.plan_us);
            }
        }
        fleet_free(hosts, nhosts);
    }
    printf("%s", md->str);
    g_mkdir_with_parents(outdir, 0755);
    {
        g_autofree gchar *path = g_strdup_printf("%s/fleet-%u.md", outdir, nhosts);

        g_file_set_contents(path, md->str, -1, NULL);
    }
    for (guint t = 0; t < ntypes; t++) {
        qn_topology_free(types[t]->topo);
        g_free(types[t]->name);
        g_free(types[t]);
    }
    return 0;
}
