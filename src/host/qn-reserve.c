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

typedef struct {
    const QnGuestNode *g;
    const char *dir;
    QnBitmap *cpus;          /* CPUs of the host nodes, for sched_setaffinity */
    QnNodeReservationResult *res;
    int err;                 /* errno of the failing step */
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

static gpointer
qn_reserve_worker(gpointer data)
{
    QnWorker *w = data;
    const QnGuestNode *g = w->g;
    struct bitmask *nodes = numa_allocate_nodemask();
    g_autofree gchar *tmpl = NULL;
    int fd, rc;
    gsize npages;
    char *map;

    QN_BITMAP_FOREACH(g->host_nodes, h) {
        numa_bitmask_setbit(nodes, (unsigned)h);
    }
    if (qn_bitmap_count(w->cpus) > 0) {
        cpu_set_t set;

        CPU_ZERO(&set);
        QN_BITMAP_FOREACH(w->cpus, c) {
            if (c < CPU_SETSIZE) {
                CPU_SET(c, &set);
            }
        }
        /* Zeroing pages runs on this thread: near the memory is faster (not required). */
        (void)sched_setaffinity(0, sizeof(set), &set);
    }
    /* MPOL_PREFERRED takes one node: the first of the set. */
    if (g->mode == QN_MEMORY_MODE_PREFERRED) {
        gint first = qn_bitmap_next(g->host_nodes, 0);

        numa_bitmask_clearall(nodes);
        numa_bitmask_setbit(nodes, (unsigned)first);
    }
    if (set_mempolicy(qn_mpol_mode(g->mode), nodes->maskp, nodes->size + 1) != 0) {
        w->err = errno;
        w->step = "set_mempolicy";
        numa_free_nodemask(nodes);
        return NULL;
    }
    numa_free_nodemask(nodes);

    /* Unlinked from the start: from here on only the fd holds the pages. */
    fd = open(w->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
        tmpl = g_strdup_printf("%s/qemu-numa-XXXXXX", w->dir);
        fd = g_mkstemp_full(tmpl, O_RDWR | O_CLOEXEC, 0600);
        if (fd >= 0) {
            unlink(tmpl);
        }
    }
    if (fd < 0) {
        w->err = errno;
        w->step = "create a file";
        return NULL;
    }
    w->res->fd = fd;
    {
        /* test-only: stop (or die) just before this guest node's pages are taken, so a test
         * can shrink the pool the plan counted on */
        g_autofree gchar *point = g_strdup_printf("allocating-node-%u", g->id);

        qn_test_crash_point(point);
    }
    /* hugetlbfs's fallocate gives up with EINTR whenever a signal is pending, a stop signal
     * included (Ctrl-Z, a debugger, SIGSTOP from another thread: the pool-shrink test's first
     * pause point hit it). The pages allocated so far stay in the file and a retry skips
     * them: retry, rather than fail (restricted) or fall back (best-effort) on a signal. */
    while ((rc = fallocate(fd, 0, 0, (off_t)g->bytes)) != 0 && errno == EINTR) {
    }
    if (rc != 0) {
        w->err = errno;
        w->step = "fallocate";
        return NULL;
    }
    {
        /* test-only: die with this guest node's pages allocated, the next perhaps not */
        g_autofree gchar *point = g_strdup_printf("reserving-node-%u", g->id);

        qn_test_crash_point(point);
    }
    /* Where did the pages land? Map them (no new allocation: they exist) and ask. */
    npages = g->bytes / g->page_size;
    map = mmap(NULL, g->bytes, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (map == MAP_FAILED) {
        w->err = errno;
        w->step = "mmap";
        return NULL;
    }
    {
        g_autofree void **addrs = g_new(void *, npages);
        g_autofree int *status = g_new(int, npages);

        for (gsize i = 0; i < npages; i++) {
            addrs[i] = map + i * g->page_size;
        }
        if (move_pages(0, npages, addrs, NULL, status, 0) != 0) {
            w->err = errno;
            w->step = "move_pages";
            munmap(map, g->bytes);
            return NULL;
        }
        for (gsize i = 0; i < npages; i++) {
            gpointer key = GINT_TO_POINTER(status[i]);
            guint64 count = GPOINTER_TO_SIZE(g_hash_table_lookup(w->res->pages_on, key));

            g_hash_table_insert(w->res->pages_on, key, GSIZE_TO_POINTER(count + 1));
        }
    }
    munmap(map, g->bytes);
    return NULL;
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

QnReservation *
qn_reservation_make(const QnPlan *plan, const QnTopology *topo, const char *sysfs_root,
                    GError **error)
{
    g_autoptr(QnReservation) r = g_new0(QnReservation, 1);
    g_autofree QnWorker *workers = NULL;
    g_autoptr(GPtrArray) threads = g_ptr_array_new();
    g_autoptr(GArray) dimms = g_array_new(FALSE, FALSE, sizeof(QnGuestNode)); /* not owning */
    g_autoptr(GPtrArray) units = qn_reserve_units(plan, dimms);
    guint n = units->len;
    guint nodes = plan->guest_nodes->len;

    r->nodes = g_ptr_array_new_with_free_func(qn_node_result_free);
    r->free_before = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    r->free_after = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    workers = g_new0(QnWorker, n);
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
        workers[i].g = g;
        workers[i].dir = plan->hugetlbfs;
        workers[i].res = res;
        workers[i].cpus = qn_bitmap_new();
        QN_BITMAP_FOREACH(g->host_nodes, h) {
            /* CPUs per host node, for binding the allocating threads */
            const QnHostNode *hn = qn_topology_node(topo, (guint)h);

            if (hn != NULL) {
                qn_bitmap_or(workers[i].cpus, hn->cpus);
            }
        }
        if (g->page_size == 0 || g->bytes == 0) {
            continue;
        }
        if (plan->hugetlbfs == NULL) {
            g_set_error(error, QN_ERROR, QN_ERROR_HUGEPAGES, "no hugetlbfs mount in the plan");
            goto fail;
        }
        g_ptr_array_add(threads, g_thread_new("qn-reserve", qn_reserve_worker, &workers[i]));
    }
    for (guint i = 0; i < threads->len; i++) {
        g_thread_join(g_ptr_array_index(threads, i));
    }
    g_ptr_array_set_size(threads, 0);
    qn_read_pools(units, sysfs_root, r->free_after);

    for (guint i = 0; i < n; i++) {
        const QnGuestNode *g = g_ptr_array_index(units, i);
        QnWorker *w = &workers[i];
        g_autofree gchar *hosts = qn_bitmap_format_list(g->host_nodes, ",");
        g_autofree gchar *ps = g->page_size ? qn_size_format(g->page_size) : NULL;
        g_autofree gchar *what = i < nodes ? g_strdup_printf("guest node %u", g->id)
                                           : g_strdup_printf("memdev '%s'", g->memdev);

        if (w->step != NULL) {
            if (g_strcmp0(w->step, "fallocate") == 0 && (w->err == ENOSPC || w->err == ENOMEM)) {
                g_set_error(error, QN_ERROR, QN_ERROR_HUGEPAGES,
                            "%s: host node %s has fewer than %" G_GUINT64_FORMAT
                            " free %s hugepages", what, hosts, g->bytes / g->page_size, ps);
            } else {
                g_set_error(error, QN_ERROR, QN_ERROR_HUGEPAGES, "%s: %s on '%s': %s", what,
                            w->step, plan->hugetlbfs, g_strerror(w->err));
            }
            goto fail;
        }
        if (g->page_size == 0) {
            continue;
        }
        /* Verify placement page by page: under bind and interleave every page must be in
         * the nodeset; preferred may spill, and the result records where. */
        if (g->mode != QN_MEMORY_MODE_PREFERRED) {
            GHashTableIter it;
            gpointer key, value;

            g_hash_table_iter_init(&it, w->res->pages_on);
            while (g_hash_table_iter_next(&it, &key, &value)) {
                gint node = GPOINTER_TO_INT(key);

                if (node < 0 || !qn_bitmap_test(g->host_nodes, (guint)node)) {
                    g_set_error(error, QN_ERROR, QN_ERROR_PLACEMENT,
                                "%s: %" G_GSIZE_FORMAT " %s pages landed on node %d, "
                                "not on host node %s", what, GPOINTER_TO_SIZE(value), ps, node,
                                hosts);
                    goto fail;
                }
            }
        }
    }
    for (guint i = 0; i < n; i++) {
        qn_bitmap_free(workers[i].cpus);
    }
    return g_steal_pointer(&r);

fail:
    for (guint i = 0; i < threads->len; i++) {
        g_thread_join(g_ptr_array_index(threads, i));
    }
    for (guint i = 0; i < n; i++) {
        qn_bitmap_free(workers[i].cpus);
    }
    return NULL; /* r's fds close with it: the kernel frees the pages */
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
