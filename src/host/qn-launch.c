#include "config.h"

#include "qn-launch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qn-error.h"
#include "qn-monitor.h"
#include "qn-pool.h"
#include "qn-rewrite.h"
#include "qn-sysfs.h"
#include "qn-testpoint.h"

void
qn_launch_free(QnLaunch *l)
{
    if (l == NULL) {
        return;
    }
    qn_qemu_argv_free(l->qa);
    g_free(l->qemu);
    qn_topology_free(l->topo);
    qn_ledger_close(l->ledger);
    qn_plan_free(l->plan);
    qn_reservation_free(l->reservation);
    for (guint i = 0; i < G_N_ELEMENTS(l->qmp_sockets); i++) {
        g_clear_object(&l->qmp_sockets[i]);
    }
    g_free(l);
}

static gboolean
qn_same_file(const char *a, const struct stat *self)
{
    struct stat st;

    return self != NULL && stat(a, &st) == 0 && st.st_dev == self->st_dev &&
           st.st_ino == self->st_ino;
}

gchar *
qn_qemu_resolve(const char *configured, const char *path_env, const char *self_exe,
                GError **error)
{
    const char *name = configured && configured[0] ? configured : "qemu-system-x86_64";
    struct stat self_st;
    const struct stat *self = self_exe && stat(self_exe, &self_st) == 0 ? &self_st : NULL;

    if (strchr(name, '/') != NULL) {
        if (access(name, X_OK) != 0) {
            g_set_error(error, QN_ERROR, QN_ERROR_EXEC, "QEMU binary '%s': %s", name,
                        g_strerror(errno));
            return NULL;
        }
        if (qn_same_file(name, self)) {
            g_set_error(error, QN_ERROR, QN_ERROR_EXEC,
                        "QEMU binary '%s': is qemu-numa itself", name);
            return NULL;
        }
        return g_canonicalize_filename(name, NULL);
    }
    {
        g_auto(GStrv) dirs = g_strsplit(path_env ? path_env : "/usr/bin:/bin", ":", -1);

        for (guint i = 0; dirs[i] != NULL; i++) {
            g_autofree gchar *cand = g_build_filename(dirs[i][0] ? dirs[i] : ".", name, NULL);

            if (access(cand, X_OK) == 0 && !qn_same_file(cand, self)) {
                return g_canonicalize_filename(cand, NULL);
            }
        }
    }
    g_set_error(error, QN_ERROR, QN_ERROR_EXEC, "QEMU binary '%s': not found in PATH", name);
    return NULL;
}

/* Appends this launch's outcome to our launches.jsonl while we hold the ledger lock (nothing
 * to record without it: a dry run, a probe, policy none). Best effort: a log that cannot be
 * written never stops or fails a launch. @error: the refusal's, for QN_OUTCOME_REFUSED. */
static void
qn_launch_record(QnLaunch *l, QnLaunchOutcome outcome, GError **error)
{
    g_autoptr(QnLaunchRecord) r = NULL;
    g_autoptr(GError) local = NULL;
    g_autoptr(GError) unknown = NULL;
    const GError *why = error != NULL ? *error : NULL;

    if (l->ledger == NULL) {
        return;
    }
    if (outcome == QN_OUTCOME_REFUSED && why == NULL) {
        unknown = g_error_new_literal(QN_ERROR, QN_ERROR_FAILED, "refused");
        why = unknown;
    }
    r = qn_launch_record_new(l->pid, l->qa ? l->qa->name : NULL, outcome, l->cfg->policy,
                             outcome == QN_OUTCOME_REFUSED ? why : NULL,
                             outcome != QN_OUTCOME_REFUSED && l->plan != NULL &&
                                     l->plan->kind == QN_PLAN_FALLBACK
                                 ? l->plan->reason
                                 : NULL);
    r->reserve_seconds = l->reserve_seconds;
    r->reserved_bytes = l->reserved_bytes;
    if (!qn_ledger_record_launch(l->ledger, r, &local)) {
        g_debug("launch outcome not recorded: %s", local->message);
    }
}

QnLaunch *
qn_launch_prepare(const QnConfig *cfg, const char *const *argv, gboolean dry_run,
                  GError **error)
{
    g_autoptr(QnLaunch) l = g_new0(QnLaunch, 1);
    g_autoptr(QnReservations) resv = NULL;

    l->cfg = cfg;
    l->pid = getpid();
    l->reserve_seconds = -1;
    l->qa = qn_qemu_argv_parse(argv, error);
    if (l->qa == NULL) {
        return NULL;
    }
    l->qemu = qn_qemu_resolve(cfg->qemu, g_getenv("PATH"), "/proc/self/exe", error);
    if (l->qemu == NULL) {
        return NULL;
    }
    if (l->qa->probe || cfg->policy == QN_POLICY_NONE) {
        l->plan = qn_plan_compute(NULL, NULL, l->qa, cfg, error);
        return l->plan ? g_steal_pointer(&l) : NULL;
    }
    if (!dry_run) {
        /* Lock first, read the counters second: counters read before the lock may already
         * be spent by the launch that holds it (the 16-way race test found this). */
        l->ledger = qn_ledger_open(cfg->state_dir, error);
        if (l->ledger == NULL) {
            return NULL;
        }
        qn_ledger_sweep(l->ledger, cfg->proc_root);
        resv = qn_ledger_reservations(l->ledger, cfg->proc_root);
    } else {
        /* A dry run reads the ledger without waiting on launches in flight if it cannot. */
        g_autoptr(QnLedger) ledger = g_file_test(cfg->state_dir, G_FILE_TEST_IS_DIR)
                                         ? qn_ledger_open_read(cfg->state_dir, NULL)
                                         : NULL;

        resv = ledger ? qn_ledger_reservations(ledger, cfg->proc_root) : qn_reservations_new();
    }
    l->topo = qn_topology_load(cfg->sysfs_root, cfg->proc_root, error);
    if (l->topo == NULL) {
        qn_launch_record(l, QN_OUTCOME_REFUSED, error);
        return NULL;
    }
    if (!dry_run) {
        /* under the ledger lock: the pool's refill steps take it too, so no page is counted
         * both free and ready, and no launch in between takes one we count */
        qn_pool_count_free(l->topo, cfg->state_dir);
    }
    qn_test_crash_point("before-plan");
    l->plan = qn_plan_compute(l->topo, resv, l->qa, cfg, error);
    if (l->plan == NULL) {
        qn_launch_record(l, QN_OUTCOME_REFUSED, error);
        return NULL;
    }
    qn_test_crash_point("after-plan");
    return g_steal_pointer(&l);
}

/* hugepage bytes @r placed (guest nodes of regular memory have no file) */
static guint64
qn_reserved_bytes(const QnReservation *r)
{
    guint64 bytes = 0;

    for (guint i = 0; r != NULL && i < r->nodes->len; i++) {
        const QnNodeReservationResult *n = g_ptr_array_index(r->nodes, i);

        bytes += n->page_size != 0 ? n->bytes : 0;
    }
    return bytes;
}

/* "<node>:<page size>" -> pages (qn-reserve.c's counters) into @out, sorted */
static void
qn_free_pages_from(GHashTable *counts, GArray *out)
{
    GHashTableIter it;
    gpointer k, v;

    g_hash_table_iter_init(&it, counts);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        guint node;
        guint64 ps;

        if (sscanf(k, "%u:%" G_GUINT64_FORMAT, &node, &ps) == 2) {
            QnEntryFreePages f = { node, ps, GPOINTER_TO_SIZE(v) };

            g_array_append_val(out, f);
        }
    }
}

static gint
qn_free_pages_cmp(gconstpointer a, gconstpointer b)
{
    const QnEntryFreePages *x = a, *y = b;

    if (x->host_node != y->host_node) {
        return x->host_node < y->host_node ? -1 : 1;
    }
    return x->page_size < y->page_size ? -1 : x->page_size > y->page_size;
}

static gint
qn_node_pages_cmp(gconstpointer a, gconstpointer b)
{
    const QnEntryNodePages *x = a, *y = b;

    return x->host_node < y->host_node ? -1 : x->host_node > y->host_node;
}

/* What the reservation got, into the entry: per guest node, the pages on each host node, and
 * the free hugepage counters before and after. */
static void
qn_entry_set_reservation(QnLedgerEntry *e, const QnReservation *r, const QnPlan *plan)
{
    GHashTableIter it;
    gpointer k, v;

    g_ptr_array_set_size(e->reservations, 0);
    g_array_set_size(e->free_before, 0);
    g_array_set_size(e->free_after, 0);
    for (guint i = 0; r != NULL && i < r->nodes->len; i++) {
        const QnNodeReservationResult *n = g_ptr_array_index(r->nodes, i);
        QnEntryReservation *er = g_new0(QnEntryReservation, 1);

        er->guest_node = n->guest_node;
        er->memdev = g_strdup(n->memdev);
        er->host_nodes = qn_bitmap_copy(n->host_nodes);
        er->page_size = n->page_size;
        er->bytes = n->bytes;
        er->pages_on = g_array_new(FALSE, TRUE, sizeof(QnEntryNodePages));
        g_hash_table_iter_init(&it, n->pages_on);
        while (g_hash_table_iter_next(&it, &k, &v)) {
            QnEntryNodePages p = { (guint)GPOINTER_TO_INT(k), GPOINTER_TO_SIZE(v) };

            g_array_append_val(er->pages_on, p);
        }
        g_array_sort(er->pages_on, qn_node_pages_cmp);
        g_ptr_array_add(e->reservations, er);
    }
    if (r != NULL) {
        qn_free_pages_from(r->free_before, e->free_before);
        qn_free_pages_from(r->free_after, e->free_after);
        g_array_sort(e->free_before, qn_free_pages_cmp);
        g_array_sort(e->free_after, qn_free_pages_cmp);
    }
}

/*
 * The directory our hugepage files are created in: the user's own mem-path directory when a
 * memory backend or -mem-path names one on the plan's mount, else the mount itself. libvirt
 * gives each domain a directory /dev/hugepages/libvirt/qemu/<id>-<name>, owned by the domain's
 * user and present in the domain's private /dev; the mount's root is writable by root only
 * (measured: EACCES for libvirt-qemu). A mem-path naming a file means its directory.
 */
static gchar *
qn_hugepage_dir(const QnQemuArgv *qa, const char *mount)
{
    g_autoptr(GPtrArray) paths = g_ptr_array_new();

    for (guint i = 0; i < qa->backends->len; i++) {
        const QnMemoryBackend *b = g_ptr_array_index(qa->backends, i);

        if (b->mem_path != NULL) {
            g_ptr_array_add(paths, b->mem_path);
        }
    }
    if (qa->mem_path != NULL) {
        g_ptr_array_add(paths, qa->mem_path);
    }
    for (guint i = 0; i < paths->len; i++) {
        const char *p = g_ptr_array_index(paths, i);
        g_autofree gchar *parent = g_path_get_dirname(p);

        if (!g_path_is_absolute(p) || !qn_path_is_under(p, mount)) {
            continue;
        }
        if (g_file_test(p, G_FILE_TEST_IS_DIR)) {
            return g_strdup(p);
        }
        if (qn_path_is_under(parent, mount) && g_file_test(parent, G_FILE_TEST_IS_DIR)) {
            return g_steal_pointer(&parent);
        }
    }
    return g_strdup(mount);
}

gboolean
qn_launch_reserve(QnLaunch *l, GError **error)
{
    g_autoptr(QnLedgerEntry) entry = NULL;
    g_autoptr(GError) local = NULL;
    guint64 start = qn_proc_start_time(l->cfg->proc_root, l->pid);
    QnEntryState state;
    gint64 t0;

    if (l->plan->kind == QN_PLAN_PASSTHROUGH || l->ledger == NULL) {
        return TRUE;
    }
    if (l->plan->kind == QN_PLAN_ALIGNED) {
        if (l->plan->hugetlbfs != NULL) {
            gchar *dir = qn_hugepage_dir(l->qa, l->plan->hugetlbfs);

            g_free(l->plan->hugetlbfs);
            l->plan->hugetlbfs = dir;
        }
        entry = qn_ledger_entry_new(l->qa->name, l->qa->uuid, l->pid, start,
                                    QN_ENTRY_RESERVING, l->plan);
        if (!qn_ledger_write(l->ledger, entry, error)) {
            qn_launch_record(l, QN_OUTCOME_REFUSED, error);
            return FALSE;
        }
        l->ledger_entry = TRUE;
        qn_test_crash_point("reserving");
        t0 = g_get_monotonic_time();
        l->reservation = qn_reservation_make(l->plan, l->topo, l->cfg->sysfs_root,
                                              l->cfg->reserve_threads, l->cfg->state_dir,
                                              &local);
        l->reserve_seconds = (gdouble)(g_get_monotonic_time() - t0) / G_USEC_PER_SEC;
        l->reserved_bytes = qn_reserved_bytes(l->reservation);
        if (l->reservation == NULL) {
            if (l->cfg->policy != QN_POLICY_BEST_EFFORT) {
                qn_ledger_remove(l->ledger, l->pid, NULL);
                l->ledger_entry = FALSE;
                g_propagate_error(error, g_steal_pointer(&local));
                qn_launch_record(l, QN_OUTCOME_REFUSED, error);
                return FALSE;
            }
            /* best-effort: the OS allocates, and the ledger says why */
            {
                QnPlan *fb = qn_plan_new_fallback(l->plan, "reservation failed: %s: memory "
                                                  "left to the OS", local->message);

                qn_plan_free(l->plan);
                l->plan = fb;
            }
        }
        qn_test_crash_point("after-reserve");
    }
    state = l->plan->kind == QN_PLAN_ALIGNED ? QN_ENTRY_RESERVED : QN_ENTRY_FALLBACK;
    if (l->qa->incoming != NULL) {
        state = QN_ENTRY_INCOMING; /* until the guest has arrived: the monitor ends it */
    }
    g_clear_pointer(&entry, qn_ledger_entry_free);
    entry = qn_ledger_entry_new(l->qa->name, l->qa->uuid, l->pid, start, state, l->plan);
    qn_entry_set_reservation(entry, l->reservation, l->plan);
    entry->reserve_seconds = l->reserve_seconds;
    if (!qn_ledger_write(l->ledger, entry, error)) {
        qn_ledger_remove(l->ledger, l->pid, NULL);
        l->ledger_entry = FALSE;
        qn_launch_record(l, QN_OUTCOME_REFUSED, error);
        return FALSE;
    }
    l->ledger_entry = TRUE;
    return TRUE;
}

/* Removes our ledger entry and our QMP sockets, through the ledger we hold if we still hold
 * it (a second flock of the same lock file from this process would wait for ourselves). */
static void
qn_launch_forget(QnLaunch *l)
{
    g_autofree gchar *dir = qn_state_user_dir(l->cfg->state_dir);

    qn_ledger_remove_files(dir, l->pid);
    if (l->ledger != NULL) {
        qn_ledger_remove(l->ledger, l->pid, NULL);
    } else {
        g_autoptr(QnLedger) ledger = qn_ledger_open(l->cfg->state_dir, NULL);

        if (ledger != NULL) {
            qn_ledger_remove(ledger, l->pid, NULL);
        }
    }
    l->ledger_entry = FALSE;
}

GStrv
qn_launch_argv(QnLaunch *l, gboolean for_exec)
{
    gchar **paths = NULL;
    gchar *fds[QN_REWRITE_MONITORS + 1] = { NULL };
    QnRewriteInput in = { 0 };
    GStrv argv;
    guint n = l->plan->guest_nodes->len;
    guint reserved = 0; /* hugepage DIMMs the plan reserves: their paths follow the nodes' */
    /* The exec's condition is the ledger entry we wrote; a dry run shows what a launch of this
     * plan would write (the same rule: qn_rewrite_wants_monitors()). */
    gboolean monitors = for_exec ? l->ledger_entry : qn_rewrite_wants_monitors(l->plan);

    for (guint i = 0; l->plan->mem_devices != NULL && i < l->plan->mem_devices->len; i++) {
        reserved += ((const QnPlanMemDevice *)g_ptr_array_index(l->plan->mem_devices, i))->reserve;
    }
    if (l->reservation != NULL) {
        paths = qn_reservation_mem_paths(l->reservation, for_exec);
    } else if (l->plan->kind == QN_PLAN_ALIGNED) {
        guint k = n;

        paths = g_new0(gchar *, n + reserved + 1);
        for (guint i = 0; i < n; i++) {
            const QnGuestNode *g = g_ptr_array_index(l->plan->guest_nodes, i);

            if (g->page_size != 0) {
                paths[i] = g_strdup_printf("/proc/self/fd/<%s>", g->memdev);
            }
        }
        for (guint i = 0; i < l->plan->mem_devices->len; i++) {
            const QnPlanMemDevice *d = g_ptr_array_index(l->plan->mem_devices, i);

            if (d->reserve) {
                paths[k++] = g_strdup_printf("/proc/self/fd/<%s>", d->memdev);
            }
        }
    }
    for (guint i = 0; monitors && i < QN_REWRITE_MONITORS; i++) {
        if (for_exec) {
            g_assert(l->qmp_sockets[i] != NULL);
            fds[i] = g_strdup_printf("%d", g_socket_get_fd(l->qmp_sockets[i]));
        } else {
            fds[i] = g_strdup_printf("<qn-%s>", qn_rewrite_monitor_name(i));
        }
    }
    in.mem_paths = (const char *const *)paths;
    in.monitor_fds = monitors ? (const char *const *)fds : NULL;
    in.start_paused = monitors && qn_rewrite_wants_start_paused(l->plan, l->qa);
    argv = qn_rewrite_qemu_argv(l->qa, l->plan, &in);
    for (guint i = 0; paths != NULL && i < n + reserved; i++) {
        g_free(paths[i]); /* %NULL holes: guest nodes without hugepages */
    }
    g_free(paths);
    for (guint i = 0; i < QN_REWRITE_MONITORS; i++) {
        g_free(fds[i]);
    }
    g_free(argv[0]);
    argv[0] = g_strdup(l->qemu);
    return argv;
}

gboolean
qn_launch_exec(QnLaunch *l, GError **error)
{
    g_auto(GStrv) argv = NULL;
    int err;

    G_STATIC_ASSERT(QN_REWRITE_MONITORS == G_N_ELEMENTS(l->qmp_sockets));
    if (l->ledger_entry) {
        /* Our own QMP monitors beside the user's (QEMU keeps several): one the monitor
         * process holds, one for qemu-numa-ctl status. The sockets listen before the argv is
         * made: it names their fds. */
        qn_ledger_remove_files(l->ledger->dir, l->pid);
        for (guint i = 0; i < QN_REWRITE_MONITORS; i++) {
            l->qmp_sockets[i] = qn_monitor_listen(l->ledger, l->pid, qn_rewrite_monitor_name(i),
                                                  error);
            if (l->qmp_sockets[i] == NULL) {
                qn_launch_forget(l);
                qn_launch_record(l, QN_OUTCOME_REFUSED, error);
                return FALSE;
            }
        }
    }
    /* Exactly the rewriter's argv; this clears FD_CLOEXEC on the reserved hugepage fds. */
    argv = qn_launch_argv(l, TRUE);
    if (l->ledger_entry) {
        /* The monitor resumes QEMU exactly when the argv has our -S. */
        gboolean resume = qn_rewrite_wants_start_paused(l->plan, l->qa);

        if (!qn_monitor_spawn(l->cfg->state_dir, l->cfg->proc_root, l->pid, resume, error)) {
            qn_launch_forget(l);
            qn_launch_record(l, QN_OUTCOME_REFUSED, error);
            return FALSE;
        }
        for (guint i = 0; i < QN_REWRITE_MONITORS; i++) {
            int fd = g_socket_get_fd(l->qmp_sockets[i]);

            fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) & ~FD_CLOEXEC);
        }
    }
    qn_launch_record(l, l->qa->incoming != NULL       ? QN_OUTCOME_INCOMING
                        : l->plan->kind == QN_PLAN_ALIGNED ? QN_OUTCOME_PLACED
                                                           : QN_OUTCOME_FALLBACK,
                     NULL);
    qn_test_crash_point("before-exec");
    /* The fds keep the pages; the entry keeps the books. Others may plan now. */
    g_clear_pointer(&l->ledger, qn_ledger_close);
    execv(l->qemu, argv);
    err = errno;
    if (l->ledger_entry) {
        /* The monitor sees no QEMU and leaves; the entry must not wait for the next sweep. */
        qn_launch_forget(l);
    }
    g_set_error(error, QN_ERROR, QN_ERROR_EXEC, "exec '%s': %s", l->qemu, g_strerror(err));
    return FALSE;
}
