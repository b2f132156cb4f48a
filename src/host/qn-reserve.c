#include "config.h"

#include "qn-reserve.h"

#include <errno.h>
#include <fcntl.h>
#include <numa.h>
#include <numaif.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qn-error.h"
#include "qn-pool.h"
#include "qn-size.h"
#include "qn-sysfs.h"
#include "qn-testpoint.h"

static void
qn_node_result_free(gpointer p)
{
    QnNodeReservationResult *n = p;

    if (n->fd >= 0) {
        close(n->fd);
    }
    if (n->pages_on != NULL) {
        g_hash_table_unref(n->pages_on);
    }
    g_free(n->memdev);
    qn_bitmap_free(n->host_nodes);
    g_free(n);
}

void
qn_reservation_free(QnReservation *r)
{
    if (r == NULL) {
        return;
    }
    g_ptr_array_unref(r->nodes);
    g_hash_table_unref(r->free_before);
    g_hash_table_unref(r->free_after);
    g_free(r);
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14: include/uapi/asm-generic/mman-common.h */
#endif

/* move_pages(2) takes arrays: ask about this many pages per call (16 KiB of arrays). */
#define QN_VERIFY_BATCH 1024

/* Every worker waits here until all of them exist. Creating a thread maps its stack, which
 * takes the mmap lock for writing; populating faults take it for reading, so workers started
 * while others are still being created convoy behind each creation (cloud-hypervisor measured
 * this on ~3 TiB guests and creates all its prefault threads first). */
typedef struct {
    GMutex lock;
    GCond cond;
    gboolean open;
    gboolean abort;          /* a thread could not be created: nobody populates */
} QnGate;

/* One guest node (or reserved DIMM): its file, mapped once with the node's policy, shared by
 * its workers. */
typedef struct {
    const QnGuestNode *g;
    gchar *what;             /* "guest node N" or "memdev 'ID'", for its errors */
    QnNodeReservationResult *res;
    char *map;               /* MAP_SHARED over the whole file, or NULL */
    QnBitmap *cpus;          /* where its workers run; empty: anywhere */
    guint threads;
    int err;                 /* errno of the first failing step */
    const char *step;
} QnNodeJob;

typedef struct {
    QnNodeJob *job;
    QnGate *gate;
    guint64 first;           /* pages, from the start of the file */
    guint64 count;
    GHashTable *pages_on;    /* host node (or -errno) -> pages of this range */
    int err;
    const char *step;
} QnWorker;

static int
qn_mpol_mode(QnMemoryMode m)
{
    switch (m) {
    case QN_MEMORY_MODE_PREFERRED: return MPOL_PREFERRED;
    case QN_MEMORY_MODE_INTERLEAVE: return MPOL_INTERLEAVE;
    case QN_MEMORY_MODE_BIND:
    default: return MPOL_BIND;
    }
}

/* The guest node's host nodes as a libnuma mask; MPOL_PREFERRED takes one node, the first. */
static struct bitmask *
qn_policy_nodes(const QnGuestNode *g)
{
    struct bitmask *nodes = numa_allocate_nodemask();

    if (g->mode == QN_MEMORY_MODE_PREFERRED) {
        numa_bitmask_setbit(nodes, (unsigned)qn_bitmap_next(g->host_nodes, 0));
        return nodes;
    }
    QN_BITMAP_FOREACH(g->host_nodes, h) {
        numa_bitmask_setbit(nodes, (unsigned)h);
    }
    return nodes;
}

/* Allowed CPUs of node @id into @into; FALSE if it has none. */
static gboolean
qn_node_allowed_cpus(const QnTopology *topo, guint id, QnBitmap *into)
{
    gboolean any = FALSE;

    for (guint i = 0; i < topo->cpus->len; i++) {
        const QnHostCpu *c = g_ptr_array_index(topo->cpus, i);

        if (c->node == id && c->allowed) {
            qn_bitmap_set(into, c->id);
            any = TRUE;
        }
    }
    return any;
}

QnBitmap *
qn_reserve_worker_cpus(const QnTopology *topo, const QnBitmap *host_nodes)
{
    QnBitmap *cpus = qn_bitmap_new();

    g_return_val_if_fail(topo != NULL && host_nodes != NULL, cpus);
    QN_BITMAP_FOREACH(host_nodes, h) {
        guint best_dist = G_MAXUINT;
        gint best = -1;

        if (qn_node_allowed_cpus(topo, (guint)h, cpus)) {
            continue;
        }
        /* CPU-less (HBM, CXL) or no allowed CPU: the nearest node that has some */
        for (guint i = 0; i < topo->nodes->len; i++) {
            const QnHostNode *n = g_ptr_array_index(topo->nodes, i);
            g_autoptr(QnBitmap) probe = qn_bitmap_new();
            guint d = qn_topology_distance(topo, (guint)h, n->id);

            if (n->id != (guint)h && d < best_dist &&
                qn_node_allowed_cpus(topo, n->id, probe)) {
                best_dist = d;
                best = (gint)n->id;
            }
        }
        if (best >= 0) {
            qn_node_allowed_cpus(topo, (guint)best, cpus);
        }
    }
    return cpus;
}

guint
qn_reserve_thread_count(const QnBitmap *cpus, guint max_threads, guint64 pages)
{
    guint64 t = MAX(qn_bitmap_count(cpus), 1);

    t = MIN(t, MAX(max_threads, 1));
    t = MIN(t, MAX(pages, 1));
    return (guint)t;
}

static void
qn_pin_to(const QnBitmap *cpus)
{
    cpu_set_t set;

    if (qn_bitmap_count(cpus) == 0) {
        return;
    }
    CPU_ZERO(&set);
    QN_BITMAP_FOREACH(cpus, c) {
        if (c < CPU_SETSIZE) {
            CPU_SET(c, &set);
        }
    }
    /* Zeroing runs on this thread: near the memory is faster (not required, so unchecked). */
    (void)sched_setaffinity(0, sizeof(set), &set);
}

/* Where are pages [0, @count) of @start? Into @into, by node (or -errno of move_pages). */
static gboolean
qn_pages_where(char *start, guint64 count, guint64 page_size, GHashTable *into)
{
    void *addrs[QN_VERIFY_BATCH];
    int status[QN_VERIFY_BATCH];

    for (guint64 done = 0; done < count;) {
        gsize n = (gsize)MIN(count - done, QN_VERIFY_BATCH);

        for (gsize i = 0; i < n; i++) {
            addrs[i] = start + (done + i) * page_size;
        }
        if (move_pages(0, n, addrs, NULL, status, 0) != 0) {
            return FALSE;
        }
        for (gsize i = 0; i < n; i++) {
            gpointer key = GINT_TO_POINTER(status[i]);
            guint64 c = GPOINTER_TO_SIZE(g_hash_table_lookup(into, key));

            g_hash_table_insert(into, key, GSIZE_TO_POINTER(c + 1));
        }
        done += n;
    }
    return TRUE;
}

static gpointer
qn_reserve_worker(gpointer data)
{
    QnWorker *w = data;
    guint64 ps = w->job->g->page_size;
    char *start = w->job->map + w->first * ps;
    gboolean go;
    int rc;

    qn_pin_to(w->job->cpus);
    g_mutex_lock(&w->gate->lock);
    while (!w->gate->open) {
        g_cond_wait(&w->gate->cond, &w->gate->lock);
    }
    go = !w->gate->abort;
    g_mutex_unlock(&w->gate->lock);
    if (!go) {
        return NULL;
    }
    /* Faults in (allocates, zeroes) this range's pages under the mapping's policy. It gives
     * up with EINTR on a pending signal (a stop signal included); the pages populated so far
     * stay in the file and a retry skips them (mm/madvise.c madvise_populate). */
    while ((rc = madvise(start, w->count * ps, MADV_POPULATE_WRITE)) != 0 && errno == EINTR) {
    }
    if (rc != 0) {
        w->err = errno;
        w->step = "populate";
        return NULL;
    }
    /* Every page of the range, not a sample: measured in bench/launch.c, asking for all of
     * them costs little next to zeroing them, and only this catches one misplaced page. */
    if (!qn_pages_where(start, w->count, ps, w->pages_on)) {
        w->err = errno;
        w->step = "move_pages";
    }
    return NULL;
}

/* The guest node's file: created unlinked (from here on only the fd holds its pages), sized,
 * mapped shared and its policy bound on the mapping. The mapping reserves the pages from the
 * pool (hugetlbfs counts a shared mapping's pages at mmap: ENOMEM if they are not there), but
 * allocates none: the workers do. */
static gboolean
qn_node_job_setup(QnNodeJob *job, const char *dir, const char *pool_dir)
{
    const QnGuestNode *g = job->g;
    g_autofree gchar *tmpl = NULL;
    g_autofree gchar *point = g_strdup_printf("allocating-node-%u", g->id);
    struct bitmask *nodes;
    int fd, mode = qn_mpol_mode(g->mode);
    void *map;

    /* Pre-zeroed pages from the pool when it has a file for this node (one node, bind: the
     * pool's files are bound to one node). Mapped, bound and populated below like our own: the
     * populate finds every page present (cheap) and the check still asks where each is. */
    fd = -1;
    if (pool_dir != NULL && g->mode == QN_MEMORY_MODE_BIND &&
        qn_bitmap_count(g->host_nodes) == 1) {
        fd = qn_pool_take(pool_dir, (guint)qn_bitmap_next(g->host_nodes, 0), g->page_size,
                          g->bytes, NULL);
        job->res->from_pool = fd >= 0;
    }
    if (fd < 0) {
        fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    }
    if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
        tmpl = g_strdup_printf("%s/qemu-numa-XXXXXX", dir);
        fd = g_mkstemp_full(tmpl, O_RDWR | O_CLOEXEC, 0600);
        if (fd >= 0) {
            unlink(tmpl);
        }
    }
    if (fd < 0) {
        job->err = errno;
        job->step = "create a file";
        return FALSE;
    }
    job->res->fd = fd;
    /* test-only: stop (or die) just before this guest node's pages are taken, so a test can
     * shrink the pool the plan counted on */
    qn_test_crash_point(point);
    if (ftruncate(fd, (off_t)g->bytes) != 0) {
        job->err = errno;
        job->step = "ftruncate";
        return FALSE;
    }
    nodes = qn_policy_nodes(g);
    /* The reservation at mmap counts the free pages of the nodes the calling thread may
     * allocate from (mm/hugetlb.c hugetlb_acct_memory, allowed_mems_nr: the task's MPOL_BIND
     * nodes); bind this thread for the call so a short node fails here, not at a fault. */
    (void)set_mempolicy(mode, nodes->maskp, nodes->size + 1);
    map = mmap(NULL, g->bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    job->err = errno;
    (void)set_mempolicy(MPOL_DEFAULT, NULL, 0);
    if (map == MAP_FAILED) {
        numa_free_nodemask(nodes);
        job->step = "mmap";
        return FALSE;
    }
    job->map = map;
    /* The mapping's policy decides where each fault allocates (QEMU's hostmem.c binds its
     * mapping the same way before its prealloc threads touch it). */
    if (mbind(map, g->bytes, mode, nodes->maskp, nodes->size + 1, 0) != 0) {
        job->err = errno;
        job->step = "mbind";
        numa_free_nodemask(nodes);
        return FALSE;
    }
    numa_free_nodemask(nodes);
    job->err = 0;
    return TRUE;
}

static gchar *
qn_pool_key(guint node, guint64 page_size)
{
    return g_strdup_printf("%u:%" G_GUINT64_FORMAT, node, page_size);
}

/* What is reserved, one QnGuestNode each: the plan's guest nodes, then its reserved hugepage
 * DIMMs, described as guest nodes in @dimms (issue 16: a DIMM QEMU would preallocate is taken
 * and verified the same way, so the ledger sees its pages and no other launch counts them). */
static GPtrArray *
qn_reserve_units(const QnPlan *plan, GArray *dimms)
{
    GPtrArray *units = g_ptr_array_new();

    for (guint i = 0; i < plan->guest_nodes->len; i++) {
        g_ptr_array_add(units, g_ptr_array_index(plan->guest_nodes, i));
    }
    for (guint i = 0; plan->mem_devices != NULL && i < plan->mem_devices->len; i++) {
        const QnPlanMemDevice *d = g_ptr_array_index(plan->mem_devices, i);
        QnGuestNode g = { .id = d->node, .bytes = d->bytes, .page_size = d->page_size,
                          .host_nodes = d->host_nodes, .mode = d->mode, .memdev = d->memdev };

        if (d->reserve) {
            g_array_append_val(dimms, g);
        }
    }
    for (guint i = 0; i < dimms->len; i++) {
        g_ptr_array_add(units, &g_array_index(dimms, QnGuestNode, i));
    }
    return units;
}

static void
qn_read_pools(GPtrArray *units, const char *sysfs_root, GHashTable *into)
{
    for (guint i = 0; i < units->len; i++) {
        const QnGuestNode *g = g_ptr_array_index(units, i);

        if (g->page_size == 0) {
            continue;
        }
        QN_BITMAP_FOREACH(g->host_nodes, h) {
            guint64 v;

            if (qn_read_free_hugepages(sysfs_root, (guint)h, g->page_size, &v, NULL)) {
                g_hash_table_insert(into, qn_pool_key((guint)h, g->page_size),
                                    GSIZE_TO_POINTER(v));
            }
        }
    }
}

/* libnuma prints and may exit() from these: we check every result ourselves (STYLE.md). */
void numa_error(char *where);
void numa_warn(int num, char *fmt, ...);

void
numa_error(char *where)
{
    (void)where;
}

void
numa_warn(int num, char *fmt, ...)
{
    (void)num;
    (void)fmt;
}

/* The failed step of guest node @job as the one-line error. */
static void
qn_node_job_error(const QnNodeJob *job, const char *dir, GError **error)
{
    const QnGuestNode *g = job->g;
    g_autofree gchar *hosts = qn_bitmap_format_list(g->host_nodes, ",");
    g_autofree gchar *ps = qn_size_format(g->page_size);
    gboolean short_pool = (strcmp(job->step, "mmap") == 0 && job->err == ENOMEM) ||
                          (strcmp(job->step, "populate") == 0 &&
                           (job->err == ENOMEM || job->err == EFAULT));

    /* a hugetlb fault that finds no page is SIGBUS, which MADV_POPULATE_WRITE reports as
     * EFAULT (mm/gup.c faultin_page: VM_FAULT_SIGBUS) */
    if (short_pool) {
        g_set_error(error, QN_ERROR, QN_ERROR_HUGEPAGES,
                    "%s: host node %s has fewer than %" G_GUINT64_FORMAT
                    " free %s hugepages", job->what, hosts, g->bytes / g->page_size, ps);
    } else {
        g_set_error(error, QN_ERROR, QN_ERROR_HUGEPAGES, "%s: %s on '%s': %s", job->what,
                    job->step, dir, g_strerror(job->err));
    }
}

/* Under bind and interleave every page must be in the nodeset; preferred may spill, and the
 * result records where. */
static gboolean
qn_node_job_check(const QnNodeJob *job, GError **error)
{
    const QnGuestNode *g = job->g;
    GHashTableIter it;
    gpointer key, value;

    if (g->mode == QN_MEMORY_MODE_PREFERRED) {
        return TRUE;
    }
    g_hash_table_iter_init(&it, job->res->pages_on);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        gint node = GPOINTER_TO_INT(key);

        if (node < 0 || !qn_bitmap_test(g->host_nodes, (guint)node)) {
            g_autofree gchar *hosts = qn_bitmap_format_list(g->host_nodes, ",");
            g_autofree gchar *ps = qn_size_format(g->page_size);

            g_set_error(error, QN_ERROR, QN_ERROR_PLACEMENT,
                        "%s: %" G_GSIZE_FORMAT " %s pages landed on node %d, "
                        "not on host node %s", job->what, GPOINTER_TO_SIZE(value), ps, node,
                        hosts);
            return FALSE;
        }
    }
    return TRUE;
}

/* Creates every worker of every job (they wait at @gate), then lets them all go and joins
 * them; the first error of a job's workers becomes the job's. */
static void
qn_run_workers(QnNodeJob *jobs, guint n, GError **error)
{
    QnGate gate = { 0 };
    g_autoptr(GArray) workers = g_array_new(FALSE, TRUE, sizeof(QnWorker));
    g_autoptr(GPtrArray) threads = g_ptr_array_new();
    guint created = 0;

    g_mutex_init(&gate.lock);
    g_cond_init(&gate.cond);
    for (guint i = 0; i < n; i++) {
        guint64 pages = jobs[i].map ? jobs[i].g->bytes / jobs[i].g->page_size : 0;

        for (guint k = 0; jobs[i].map != NULL && k < jobs[i].threads; k++) {
            /* disjoint ranges, sizes within one page of each other */
            QnWorker w = { .job = &jobs[i], .gate = &gate, .first = pages * k / jobs[i].threads,
                           .pages_on = g_hash_table_new(g_direct_hash, g_direct_equal) };

            w.count = pages * (k + 1) / jobs[i].threads - w.first;
            g_array_append_val(workers, w);
        }
    }
    for (guint i = 0; i < workers->len; i++) {
        GThread *t = g_thread_try_new("qn-reserve", qn_reserve_worker,
                                      &g_array_index(workers, QnWorker, i), error);

        if (t == NULL) {
            g_prefix_error(error, "reservation thread: ");
            gate.abort = TRUE;
            break;
        }
        g_ptr_array_add(threads, t);
        created++;
    }
    g_mutex_lock(&gate.lock);
    gate.open = TRUE;
    g_cond_broadcast(&gate.cond);
    g_mutex_unlock(&gate.lock);
    for (guint i = 0; i < threads->len; i++) {
        g_thread_join(g_ptr_array_index(threads, i));
    }
    for (guint i = 0; i < workers->len; i++) {
        QnWorker *w = &g_array_index(workers, QnWorker, i);
        GHashTableIter it;
        gpointer k, v;

        if (i < created && w->step != NULL && w->job->step == NULL) {
            w->job->step = w->step;
            w->job->err = w->err;
        }
        g_hash_table_iter_init(&it, w->pages_on);
        while (g_hash_table_iter_next(&it, &k, &v)) {
            guint64 c = GPOINTER_TO_SIZE(g_hash_table_lookup(w->job->res->pages_on, k));

            g_hash_table_insert(w->job->res->pages_on, k,
                                GSIZE_TO_POINTER(c + GPOINTER_TO_SIZE(v)));
        }
        g_hash_table_unref(w->pages_on);
    }
    g_cond_clear(&gate.cond);
    g_mutex_clear(&gate.lock);
}

static void
qn_node_jobs_free(QnNodeJob *jobs, guint n)
{
    for (guint i = 0; i < n; i++) {
        if (jobs[i].map != NULL) {
            munmap(jobs[i].map, jobs[i].g->bytes); /* the pages stay in the file */
        }
        qn_bitmap_free(jobs[i].cpus);
        g_free(jobs[i].what);
    }
    g_free(jobs);
}

QnReservation *
qn_reservation_make(const QnPlan *plan, const QnTopology *topo, const char *sysfs_root,
                    guint max_threads, const char *pool_dir, GError **error)
{
    g_autoptr(QnReservation) r = g_new0(QnReservation, 1);
    g_autoptr(GArray) dimms = g_array_new(FALSE, FALSE, sizeof(QnGuestNode)); /* not owning */
    g_autoptr(GPtrArray) units = qn_reserve_units(plan, dimms);
    guint n = units->len;
    guint nodes = plan->guest_nodes->len;
    QnNodeJob *jobs = g_new0(QnNodeJob, n);
    g_autoptr(GError) local = NULL;
    gboolean ok = FALSE;

    r->nodes = g_ptr_array_new_with_free_func(qn_node_result_free);
    r->free_before = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    r->free_after = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    qn_read_pools(units, sysfs_root, r->free_before);

    for (guint i = 0; i < n; i++) {
        const QnGuestNode *g = g_ptr_array_index(units, i);
        QnNodeReservationResult *res = g_new0(QnNodeReservationResult, 1);

        res->guest_node = g->id;
        res->memdev = i < nodes ? NULL : g_strdup(g->memdev);
        res->host_nodes = qn_bitmap_copy(g->host_nodes);
        res->fd = -1;
        res->bytes = g->bytes;
        res->page_size = g->page_size;
        res->pages_on = g_hash_table_new(g_direct_hash, g_direct_equal);
        g_ptr_array_add(r->nodes, res);
        jobs[i].g = g;
        jobs[i].what = i < nodes ? g_strdup_printf("guest node %u", g->id)
                                 : g_strdup_printf("memdev '%s'", g->memdev);
        jobs[i].res = res;
        jobs[i].cpus = qn_reserve_worker_cpus(topo, g->host_nodes);
        if (g->page_size == 0 || g->bytes == 0) {
            continue;
        }
        if (plan->hugetlbfs == NULL) {
            g_set_error(error, QN_ERROR, QN_ERROR_HUGEPAGES, "no hugetlbfs mount in the plan");
            goto out;
        }
        jobs[i].threads = qn_reserve_thread_count(jobs[i].cpus, max_threads,
                                                  g->bytes / g->page_size);
        res->threads = jobs[i].threads;
        if (!qn_node_job_setup(&jobs[i], plan->hugetlbfs, pool_dir)) {
            qn_node_job_error(&jobs[i], plan->hugetlbfs, error);
            goto out;
        }
    }
    qn_run_workers(jobs, n, &local);
    if (local != NULL) {
        g_propagate_error(error, g_steal_pointer(&local));
        goto out;
    }
    qn_read_pools(units, sysfs_root, r->free_after);
    for (guint i = 0; i < n; i++) {
        if (jobs[i].step != NULL) {
            qn_node_job_error(&jobs[i], plan->hugetlbfs, error);
            goto out;
        }
    }
    for (guint i = 0; i < n; i++) {
        g_autofree gchar *point = g_strdup_printf("reserving-node-%u", jobs[i].g->id);

        /* test-only: die with the pages allocated, the files still mapped here */
        qn_test_crash_point(point);
        if (jobs[i].g->page_size != 0 && !qn_node_job_check(&jobs[i], error)) {
            goto out;
        }
    }
    ok = TRUE;
out:
    qn_node_jobs_free(jobs, n);
    /* on failure r's fds close with it: the kernel frees the pages */
    return ok ? g_steal_pointer(&r) : NULL;
}

gchar **
qn_reservation_mem_paths(const QnReservation *r, gboolean clear_cloexec)
{
    gchar **paths = g_new0(gchar *, r->nodes->len + 1);

    for (guint i = 0; i < r->nodes->len; i++) {
        const QnNodeReservationResult *n = g_ptr_array_index(r->nodes, i);

        if (n->fd < 0) {
            continue;
        }
        if (clear_cloexec) {
            int flags = fcntl(n->fd, F_GETFD);

            if (flags >= 0) {
                fcntl(n->fd, F_SETFD, flags & ~FD_CLOEXEC);
            }
        }
        paths[i] = g_strdup_printf("/proc/self/fd/%d", n->fd);
    }
    return paths;
}
