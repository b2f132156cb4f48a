/* Launch benchmark, everything side by side in one run (alternating, medians and p95):
 * 1. spawn to QMP greeting: qemu-numa with T reservation threads against plain QEMU 7.2
 *    `prealloc=on` and against QEMU with `prealloc-threads=T` and a `thread-context` with
 *    `node-affinity=0` (what libvirt gives it), 64 MiB (the fixed cost) to 4 GiB, T = 1, 2;
 * 2. reservation throughput per thread count: ours (qn_reservation_make) against the kernel's
 *    paths with the same threads (MADV_POPULATE_WRITE on disjoint ranges; fallocate, which
 *    holds the inode lock for the whole range and so has one thread) and memset bandwidth;
 *    placement verification: move_pages over every page against a sample;
 *    and the warm pool: a 4 GiB guest taking its pages from `qemu-numa-ctl pool run` against
 *    a 64 MiB guest launched without a pool;
 * 3. where the fixed cost goes: topology reads on this host and on the 8-socket and 64-node
 *    fake trees, the planner, the ledger write, our process start.
 * Needs root (hugepages, a hugetlbfs mount).
 *
 * Usage: bench-launch [--smoke] QEMU-NUMA-BINARY HUGETLBFS-2M-MOUNT [SRCDIR] */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <numa.h>
#include <numaif.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib/gstdio.h>

#include "qn-argv.h"
#include "qn-config.h"
#include "qn-entry.h"
#include "qn-ledger.h"
#include "qn-plan.h"
#include "qn-pool.h"
#include "qn-reserve.h"
#include "qn-size.h"
#include "qn-sysfs.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static double
now_s(void)
{
    return (double)g_get_monotonic_time() / 1e6;
}

/* Seconds from spawn to the QMP greeting on @sock; then quit QEMU and reap it. */
static double
time_to_greeting(const char *const *argv, const char *const *envp, const char *sock)
{
    double t0 = now_s(), t = -1;
    GPid pid;
    struct sockaddr_un addr = { .sun_family = AF_UNIX };

    unlink(sock);
    g_strlcpy(addr.sun_path, sock, sizeof(addr.sun_path));
    if (!g_spawn_async(NULL, (gchar **)argv, (gchar **)envp,
                       G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, &pid,
                       NULL)) {
        return -1;
    }
    while (now_s() - t0 < 60) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        char buf[256];

        if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
            read(fd, buf, sizeof(buf)) > 0) {
            t = now_s() - t0;
            {
                /* QEMU drops queued commands of a client that hangs up: read until it closes */
                const char *q = "{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"quit\"}\n";
                struct timeval tv = { 10, 0 };

                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
                if (write(fd, q, strlen(q)) < 0) {
                    kill(pid, SIGTERM);
                }
                while (read(fd, buf, sizeof(buf)) > 0) {
                }
            }
            close(fd);
            break;
        }
        close(fd);
        g_usleep(500);
    }
    if (t < 0) {
        kill(pid, SIGKILL);
    }
    waitpid(pid, NULL, 0);
    return t;
}

static gint
cmp_d(gconstpointer a, gconstpointer b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* Sorts @a; its median and p95 (nearest rank). */
static double
median(GArray *a)
{
    g_array_sort(a, cmp_d);
    return a->len ? g_array_index(a, double, a->len / 2) : 0;
}

static double
p95(GArray *a)
{
    guint rank = (guint)((a->len * 95 + 99) / 100);

    g_array_sort(a, cmp_d);
    return a->len ? g_array_index(a, double, MAX(rank, 1) - 1) : 0;
}

static double
gib_per_s(guint64 bytes, double secs)
{
    return secs > 0 ? (double)bytes / (1 << 30) / secs : 0;
}

static void
bind_node0(void)
{
    struct bitmask *m = numa_allocate_nodemask();

    numa_bitmask_setbit(m, 0);
    set_mempolicy(MPOL_BIND, m->maskp, m->size + 1);
    numa_free_nodemask(m);
}

/* The kernel's one-file path without our code: fallocate under set_mempolicy (one thread: it
 * holds the inode lock for the whole range, mm/hugetlbfs/inode.c hugetlbfs_fallocate). */
static double
kernel_fallocate(const char *dir, guint64 bytes)
{
    g_autofree gchar *tmpl = g_strdup_printf("%s/bench-XXXXXX", dir);
    int fd;
    double t0, t = -1;

    bind_node0();
    fd = g_mkstemp(tmpl);
    unlink(tmpl);
    t0 = now_s();
    if (fallocate(fd, 0, 0, (off_t)bytes) == 0) {
        t = now_s() - t0;
    }
    close(fd);
    set_mempolicy(MPOL_DEFAULT, NULL, 0);
    return t < 0 ? 0 : gib_per_s(bytes, t);
}

typedef struct {
    char *p;
    gsize len;
    int advice;     /* MADV_POPULATE_WRITE, or -1: memset */
} Range;

static gpointer
range_worker(gpointer data)
{
    Range *r = data;

    if (r->advice < 0) {
        memset(r->p, 0, r->len);
    } else if (madvise(r->p, r->len, r->advice) != 0) {
        r->len = 0;
    }
    return NULL;
}

/* @threads threads over disjoint ranges of @p, all created first (like ours). */
static double
run_ranges(char *p, guint64 bytes, guint threads, int advice)
{
    g_autofree Range *r = g_new0(Range, threads);
    g_autofree GThread **t = g_new0(GThread *, threads);
    guint64 pages = bytes >> 21;
    double t0;

    for (guint i = 0; i < threads; i++) {
        guint64 a = pages * i / threads, b = pages * (i + 1) / threads;

        r[i] = (Range){ p + (a << 21), (b - a) << 21, advice };
    }
    t0 = now_s();
    for (guint i = 0; i < threads; i++) {
        t[i] = g_thread_new("bench", range_worker, &r[i]);
    }
    for (guint i = 0; i < threads; i++) {
        g_thread_join(t[i]);
    }
    return now_s() - t0;
}

/* The kernel's best path with @threads threads: mmap + mbind + MADV_POPULATE_WRITE on
 * disjoint ranges (QEMU's prealloc without QEMU). */
static double
kernel_populate(const char *dir, guint64 bytes, guint threads)
{
    struct bitmask *m = numa_allocate_nodemask();
    g_autofree gchar *tmpl = g_strdup_printf("%s/bench-XXXXXX", dir);
    int fd = g_mkstemp(tmpl);
    void *p;
    double t = -1;

    unlink(tmpl);
    numa_bitmask_setbit(m, 0);
    if (ftruncate(fd, (off_t)bytes) == 0) {
        p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p != MAP_FAILED) {
            mbind(p, bytes, MPOL_BIND, m->maskp, m->size + 1, 0);
            t = run_ranges(p, bytes, threads, MADV_POPULATE_WRITE);
            munmap(p, bytes);
        }
    }
    close(fd);
    numa_free_nodemask(m);
    return t < 0 ? 0 : gib_per_s(bytes, t);
}

/* memset over already-faulted memory with @threads threads: the ceiling, every page is
 * zeroed once. */
static double
memset_bw(guint64 bytes, guint threads)
{
    char *p = g_malloc(bytes);
    double t;

    memset(p, 1, bytes); /* fault it in first */
    t = run_ranges(p, bytes, threads, -1);
    g_free(p);
    return gib_per_s(bytes, t);
}

/* Placement check on a populated 2M mapping: move_pages over every page against a sample of
 * 64 evenly spaced ones (which misses a lone misplaced page with probability 1 - 64/pages),
 * both in microseconds. */
static void
verify_cost(const char *dir, guint64 bytes, double *ret_all_us, double *ret_sample_us)
{
    g_autofree gchar *tmpl = g_strdup_printf("%s/bench-XXXXXX", dir);
    int fd = g_mkstemp(tmpl);
    guint64 pages = bytes >> 21;
    g_autofree void **addrs = g_new(void *, pages);
    g_autofree int *status = g_new(int, pages);
    char *p;
    double t0;

    unlink(tmpl);
    *ret_all_us = *ret_sample_us = 0;
    if (ftruncate(fd, (off_t)bytes) != 0 ||
        (p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0)) ==
            MAP_FAILED) {
        close(fd);
        return;
    }
    for (guint64 i = 0; i < pages; i++) {
        addrs[i] = p + (i << 21);
    }
    t0 = now_s();
    move_pages(0, pages, addrs, NULL, status, 0);
    *ret_all_us = (now_s() - t0) * 1e6;
    for (guint i = 0; i < 64; i++) {
        addrs[i] = p + ((pages * i / 64) << 21);
    }
    t0 = now_s();
    move_pages(0, MIN(pages, 64), addrs, NULL, status, 0);
    *ret_sample_us = (now_s() - t0) * 1e6;
    munmap(p, bytes);
    close(fd);
}

/* Our reservation path (qn_reservation_make) for one guest node of @bytes on node 0. */
static double
ours_reserve(const char *dir, guint64 bytes, guint threads)
{
    g_autoptr(QnTopology) topo = qn_topology_load("/sys", "/proc", NULL);
    g_autoptr(QnConfig) cfg = qn_config_new_default();
    g_autofree gchar *m = g_strdup_printf("%" G_GUINT64_FORMAT "M", bytes >> 20);
    const char *argv[] = { "qemu", "-m", m, NULL };
    g_autoptr(QnQemuArgv) qa = qn_qemu_argv_parse(argv, NULL);
    g_autoptr(QnPlan) plan = NULL;
    g_autoptr(QnReservation) r = NULL;
    double t0;

    cfg->hugepage_size = 2 * QN_MiB;
    g_free(cfg->hugetlbfs);
    cfg->hugetlbfs = g_strdup(dir);
    plan = qn_plan_compute(topo, NULL, qa, cfg, NULL);
    if (plan == NULL || plan->kind != QN_PLAN_ALIGNED) {
        return 0;
    }
    t0 = now_s();
    r = qn_reservation_make(plan, topo, "/sys", threads, NULL, NULL);
    return r ? gib_per_s(bytes, now_s() - t0) : 0;
}

/* Section 1: one size, every variant, @reps alternating rounds. */
typedef struct {
    const char *label;
    gboolean ours;
    guint threads;          /* 0: plain prealloc=on (QEMU's default, one thread) */
} Variant;

static void
launch_row(const char *qn, const char *dir, const char *sock, const char *state, guint64 mib,
           guint reps)
{
    static const Variant variants[] = {
        { "QEMU prealloc=on", FALSE, 0 },
        { "QEMU 1 thread + thread-context", FALSE, 1 },
        { "QEMU 2 threads + thread-context", FALSE, 2 },
        { "qemu-numa, 1 thread", TRUE, 1 },
        { "qemu-numa, 2 threads", TRUE, 2 },
    };
    g_autofree gchar *m = g_strdup_printf("%" G_GUINT64_FORMAT "M", mib);
    g_autofree gchar *qmparg = g_strdup_printf("unix:%s,server=on,wait=off", sock);
    g_autofree gchar *qemu = g_find_program_in_path("qemu-system-x86_64");
    g_autofree gchar *e1 = g_strdup_printf("QEMU_NUMA_STATE_DIR=%s", state);
    g_autofree gchar *e2 = g_strdup_printf("QEMU_NUMA_HUGETLBFS=%s", dir);
    GArray *t[G_N_ELEMENTS(variants)];
    double base;

    for (guint v = 0; v < G_N_ELEMENTS(variants); v++) {
        t[v] = g_array_new(FALSE, FALSE, sizeof(double));
    }
    for (guint i = 0; i < reps; i++) {
        for (guint v = 0; v < G_N_ELEMENTS(variants); v++) {
            const Variant *var = &variants[v];
            g_autofree gchar *obj = g_strdup_printf(
                "memory-backend-file,id=ram0,size=%s,mem-path=%s,share=on,prealloc=on,"
                "host-nodes=0,policy=bind%s%.0u", m, dir,
                var->threads ? ",prealloc-context=tc0,prealloc-threads=" : "", var->threads);
            const char *plain[] = { qemu, "-machine", "pc,memory-backend=ram0", "-m", m,
                                    "-object", "thread-context,id=tc0,node-affinity=0",
                                    "-object", obj, "-nodefaults", "-display", "none", "-S",
                                    "-qmp", qmparg, NULL };
            const char *ours[] = { qn, "-machine", "pc", "-m", m, "-nodefaults", "-display",
                                   "none", "-S", "-qmp", qmparg, NULL };
            g_autofree gchar *e3 = g_strdup_printf("QEMU_NUMA_RESERVE_THREADS=%u",
                                                   MAX(var->threads, 1));
            const char *env[] = { e1, e2, e3, "QEMU_NUMA_HUGEPAGE_SIZE=2M",
                                  "QEMU_NUMA_CONFIG=/dev/null", "PATH=/usr/bin:/bin", NULL };
            double d;

            if (!var->ours && var->threads == 0) {
                /* no thread-context object for plain prealloc=on */
                memmove(&plain[5], &plain[7], sizeof(plain) - 7 * sizeof(plain[0]));
            }
            d = time_to_greeting(var->ours ? ours : plain, env, sock);
            g_array_append_val(t[v], d);
            if (var->ours) {
                g_usleep(200000); /* let the monitor drop the entry */
            }
        }
    }
    base = median(t[0]);
    printf("| %" G_GUINT64_FORMAT " MiB |", mib);
    for (guint v = 0; v < G_N_ELEMENTS(variants); v++) {
        double md = median(t[v]);

        printf(" %.3f / %.3f (%.2f) |", md, p95(t[v]), md / base);
        g_array_unref(t[v]);
    }
    printf("\n");
    fflush(stdout);
}

/* Waits (60 s at most) until the pool in @state has @pages 2M pages ready on node 0. */
static gboolean
pool_wait_ready(const char *state, guint64 pages)
{
    for (guint i = 0; i < 600; i++) {
        g_autoptr(GHashTable) ready = qn_pool_ready_pages(state, 2 * QN_MiB);

        if (GPOINTER_TO_SIZE(g_hash_table_lookup(ready, GINT_TO_POINTER(0))) >= pages) {
            return TRUE;
        }
        g_usleep(100000);
    }
    return FALSE;
}

/* Section 1b: the warm pool. `qemu-numa-ctl pool run` keeps @mib ready on node 0; a guest of
 * @mib launched with it against a 64 MiB guest launched without one (another state
 * directory: no pool there), alternating; the pool is full again before each warm launch. */
static void
warm_pool(const char *qn, const char *dir, const char *sock, const char *state,
          const char *cold_state, guint64 mib, guint reps)
{
    g_autofree gchar *bindir = g_path_get_dirname(qn);
    g_autofree gchar *ctl = g_build_filename(bindir, "qemu-numa-ctl", NULL);
    g_autofree gchar *qmparg = g_strdup_printf("unix:%s,server=on,wait=off", sock);
    g_autofree gchar *m = g_strdup_printf("%" G_GUINT64_FORMAT "M", mib);
    g_autofree gchar *e1 = g_strdup_printf("QEMU_NUMA_STATE_DIR=%s", state);
    g_autofree gchar *e1c = g_strdup_printf("QEMU_NUMA_STATE_DIR=%s", cold_state);
    g_autofree gchar *e2 = g_strdup_printf("QEMU_NUMA_HUGETLBFS=%s", dir);
    g_autofree gchar *e3 = g_strdup_printf("QEMU_NUMA_POOL=0:%s", m);
    const char *env[] = { e1, e2, e3, "QEMU_NUMA_HUGEPAGE_SIZE=2M",
                          "QEMU_NUMA_CONFIG=/dev/null", "PATH=/usr/bin:/bin", NULL };
    const char *cold_env[] = { e1c, e2, "QEMU_NUMA_HUGEPAGE_SIZE=2M",
                               "QEMU_NUMA_CONFIG=/dev/null", "PATH=/usr/bin:/bin", NULL };
    const char *run[] = { ctl, "pool", "run", NULL };
    const char *big[] = { qn, "-machine", "pc", "-m", m, "-nodefaults", "-display", "none",
                          "-S", "-qmp", qmparg, NULL };
    const char *small[] = { qn, "-machine", "pc", "-m", "64M", "-nodefaults", "-display",
                            "none", "-S", "-qmp", qmparg, NULL };
    g_autoptr(GArray) w = g_array_new(FALSE, FALSE, sizeof(double));
    g_autoptr(GArray) c = g_array_new(FALSE, FALSE, sizeof(double));
    g_autoptr(GArray) ratio = g_array_new(FALSE, FALSE, sizeof(double));
    GPid pool;

    if (!g_spawn_async(NULL, (gchar **)run, (gchar **)env, G_SPAWN_DO_NOT_REAP_CHILD, NULL,
                       NULL, &pool, NULL)) {
        printf("\n(warm pool: could not start %s)\n", ctl);
        return;
    }
    for (guint i = 0; i < reps; i++) {
        double tw, tc, r;

        if (!pool_wait_ready(state, mib / 2)) {
            printf("\n(warm pool: the pool did not fill in 60 s)\n");
            break;
        }
        tw = time_to_greeting(big, env, sock);
        g_usleep(200000);
        tc = time_to_greeting(small, cold_env, sock);
        g_usleep(200000);
        r = tw / tc;
        g_array_append_val(w, tw);
        g_array_append_val(c, tc);
        g_array_append_val(ratio, r);
    }
    kill(pool, SIGTERM);
    waitpid(pool, NULL, 0);
    if (w->len == 0) {
        return;
    }
    printf("\n## Warm pool: a %" G_GUINT64_FORMAT " MiB guest from the pool against a 64 MiB "
           "guest without one (%u alternating rounds; median / p95 s)\n\n", mib, w->len);
    printf("| %" G_GUINT64_FORMAT " MiB, warm pool | 64 MiB, no pool | ratio median (p95) |\n"
           "|---|---|---|\n| %.3f / %.3f | %.3f / %.3f | %.2f (%.2f) |\n", mib, median(w),
           p95(w), median(c), p95(c), median(ratio), p95(ratio));
    fflush(stdout);
}

/* Section 3: median microseconds of @n calls of qn_topology_load on @sysfs/@proc. */
static double
topology_us(const char *sysfs, const char *proc, guint n)
{
    g_autoptr(GArray) a = g_array_new(FALSE, FALSE, sizeof(double));

    for (guint i = 0; i < n; i++) {
        double t0 = now_s();
        QnTopology *t = qn_topology_load(sysfs, proc, NULL);

        if (t == NULL) {
            return -1;
        }
        qn_topology_free(t);
        t0 = (now_s() - t0) * 1e6;
        g_array_append_val(a, t0);
    }
    return median(a);
}

static void
fixed_cost(const char *qn, const char *srcdir, const char *state, guint n)
{
    g_autofree gchar *fake_proc = g_build_filename(srcdir, "tests/data/proc/fake", NULL);
    static const char *const trees[] = { "8-socket", "sixty-four" };
    g_autoptr(QnTopology) topo = qn_topology_load("/sys", "/proc", NULL);
    g_autoptr(QnConfig) cfg = qn_config_new_default();
    const char *argv[] = { "qemu", "-m", "64M", NULL };
    g_autoptr(QnQemuArgv) qa = qn_qemu_argv_parse(argv, NULL);
    g_autoptr(GArray) plan = g_array_new(FALSE, FALSE, sizeof(double));
    g_autoptr(GArray) ledger = g_array_new(FALSE, FALSE, sizeof(double));
    g_autoptr(GArray) start = g_array_new(FALSE, FALSE, sizeof(double));
    g_autoptr(GArray) truebin = g_array_new(FALSE, FALSE, sizeof(double));

    printf("\n## Where the fixed cost goes (median of %u, microseconds)\n\n", n);
    printf("| step | us |\n|---|---|\n");
    printf("| topology load, this host (%u nodes, %u CPUs) | %.0f |\n", topo->nodes->len,
           topo->cpus->len, topology_us("/sys", "/proc", n));
    for (guint i = 0; i < G_N_ELEMENTS(trees); i++) {
        g_autofree gchar *sysfs = g_build_filename(srcdir, "tests/data/sysfs", trees[i], NULL);
        g_autoptr(QnTopology) ft = qn_topology_load(sysfs, fake_proc, NULL);

        printf("| topology load, fake %s (%u nodes, %u CPUs) | %.0f |\n", trees[i],
               ft ? ft->nodes->len : 0, ft ? ft->cpus->len : 0, topology_us(sysfs, fake_proc, n));
    }
    cfg->hugepage_size = 2 * QN_MiB;
    for (guint i = 0; i < n; i++) {
        double t0 = now_s();
        g_autoptr(QnPlan) p = qn_plan_compute(topo, NULL, qa, cfg, NULL);
        double d = (now_s() - t0) * 1e6;

        g_array_append_val(plan, d);
        if (p != NULL) {
            /* lock, write (fsync, rename), remove, unlock: a launch's ledger I/O */
            g_autoptr(QnLedgerEntry) e = qn_ledger_entry_new("bench", NULL, 1, 0,
                                                             QN_ENTRY_RESERVING, p);
            QnLedger *l;

            t0 = now_s();
            l = qn_ledger_open(state, NULL);
            if (l != NULL) {
                qn_ledger_write(l, e, NULL);
                qn_ledger_remove(l, 1, NULL);
                qn_ledger_close(l);
            }
            d = (now_s() - t0) * 1e6;
            g_array_append_val(ledger, d);
        }
    }
    printf("| planner, 64 MiB guest | %.0f |\n", median(plan));
    printf("| ledger: lock, write an entry (temporary file, rename), remove it, unlock | %.0f |\n",
           median(ledger));
    for (guint i = 0; i < n; i++) {
        const char *v[] = { qn, "-m", "12Q", NULL };
        const char *tv[] = { "/bin/true", NULL };
        double t0 = now_s(), d;

        /* exits at once on the bad size: exec, libraries, config, argv model, no more */
        g_spawn_sync(NULL, (gchar **)v, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, NULL,
                     NULL, NULL, NULL);
        d = (now_s() - t0) * 1e6;
        g_array_append_val(start, d);
        t0 = now_s();
        g_spawn_sync(NULL, (gchar **)tv, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL);
        d = (now_s() - t0) * 1e6;
        g_array_append_val(truebin, d);
    }
    printf("| spawn qemu-numa until it refuses `-m 12Q` (exec, libraries, config, argv) | "
           "%.0f |\n| spawn /bin/true (the floor) | %.0f |\n", median(start), median(truebin));
}

int
main(int argc, char **argv)
{
    gboolean smoke = argc > 1 && strcmp(argv[1], "--smoke") == 0;
    const char *qn, *dir, *srcdir;
    static const guint64 mib_sizes[] = { 64, 1024, 2048, 4096 };
    guint reps;
    g_autofree gchar *tmp = g_dir_make_tmp("qn-bench-XXXXXX", NULL);
    g_autofree gchar *sock = g_build_filename(tmp, "qmp.sock", NULL);
    g_autofree gchar *state = g_build_filename(tmp, "state", NULL);
    g_autofree gchar *state2 = g_build_filename(tmp, "state2", NULL);
    g_autofree gchar *state3 = g_build_filename(tmp, "state3", NULL);

    if (smoke) {
        argv++;
        argc--;
    }
    if (argc < 3 || argc > 4 || g_find_program_in_path("qemu-system-x86_64") == NULL) {
        g_printerr("usage: bench-launch [--smoke] QEMU-NUMA HUGETLBFS-2M-MOUNT [SRCDIR]\n");
        return 2;
    }
    qn = argv[1];
    dir = argv[2];
    srcdir = argc == 4 ? argv[3] : ".";
    reps = smoke ? 1 : 7;
    printf("## Launch: spawn to QMP greeting, cold, 2M pages on node 0 (%u alternating rounds)\n\n"
           "Each cell: median / p95 seconds (median / QEMU prealloc=on's median).\n\n", reps);
    printf("| guest | QEMU prealloc=on | QEMU 1 thread + thread-context | QEMU 2 threads + "
           "thread-context | qemu-numa 1 thread | qemu-numa 2 threads |\n"
           "|---|---|---|---|---|---|\n");
    for (guint s = 0; s < (smoke ? 2 : G_N_ELEMENTS(mib_sizes)); s++) {
        launch_row(qn, dir, sock, state, mib_sizes[s], reps);
    }
    warm_pool(qn, dir, sock, state3, state, smoke ? 256 : 4096, reps);
    {
        guint64 bytes = (smoke ? 1ULL : 4ULL) << 30;
        guint rounds = smoke ? 1 : 6;

        printf("\n## Reservation of %" G_GUINT64_FORMAT " GiB of 2M pages on node 0 "
               "(median of %u alternating rounds, GiB/s)\n\n", bytes >> 30, rounds);
        printf("| threads | qemu-numa (populate + verify every page) | kernel: MADV_POPULATE_WRITE "
               "ranges | kernel: fallocate (1 thread) | memset | ours / kernel's best |\n"
               "|---|---|---|---|---|---|\n");
        for (guint th = 1; th <= 2; th++) {
            g_autoptr(GArray) o = g_array_new(FALSE, FALSE, sizeof(double));
            g_autoptr(GArray) f = g_array_new(FALSE, FALSE, sizeof(double));
            g_autoptr(GArray) q = g_array_new(FALSE, FALSE, sizeof(double));
            g_autoptr(GArray) w = g_array_new(FALSE, FALSE, sizeof(double));
            double ob, fa, po, best;

            for (guint i = 0; i < rounds; i++) {
                double v;

                /* ours first in even rounds, last in odd ones: no order bias */
                if (i % 2 == 0) {
                    v = ours_reserve(dir, bytes, th);
                    g_array_append_val(o, v);
                }
                v = kernel_fallocate(dir, bytes);
                g_array_append_val(f, v);
                v = kernel_populate(dir, bytes, th);
                g_array_append_val(q, v);
                v = memset_bw(bytes, th);
                g_array_append_val(w, v);
                if (i % 2 == 1) {
                    v = ours_reserve(dir, bytes, th);
                    g_array_append_val(o, v);
                }
            }
            ob = median(o);
            fa = median(f);
            po = median(q);
            best = MAX(th == 1 ? fa : 0, po);
            printf("| %u | %.2f | %.2f | %.2f | %.2f | %.2f |\n", th, ob, po, fa, median(w),
                   ob / best);
        }
        {
            g_autoptr(GArray) all = g_array_new(FALSE, FALSE, sizeof(double));
            g_autoptr(GArray) sam = g_array_new(FALSE, FALSE, sizeof(double));

            for (guint i = 0; i < rounds; i++) {
                double a, b;

                verify_cost(dir, bytes, &a, &b);
                g_array_append_val(all, a);
                g_array_append_val(sam, b);
            }
            printf("\nplacement check of %" G_GUINT64_FORMAT " pages: move_pages over every page "
                   "%.0f us, over a 64-page sample %.0f us\n", bytes >> 21, median(all),
                   median(sam));
        }
    }
    fixed_cost(qn, srcdir, state2, smoke ? 3 : 21);
    {
        const char *rm[] = { "rm", "-rf", tmp, NULL };

        g_spawn_sync(NULL, (gchar **)rm, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL,
                     NULL);
    }
    return 0;
}
