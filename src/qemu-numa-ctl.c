/* qemu-numa-ctl: what runs where. `host`, `plan -- QEMU-ARGS`, `list`, `status`, `events`,
 * `migrate-args`, `sweep`; `--json` on each.
 * Exit status: 0 ok, 1 error, 2 usage. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>

#include <json-glib/json-glib.h>

#include "qn-ctl-ops.h"
#include "qn-error.h"
#include "qn-launch.h"
#include "qn-qemu-options.h"
#include "qn-qmp-client.h"
#include "qn-json.h"
#include "qn-ledger.h"
#include "qn-migrate-args.h"
#include "qn-plan-json.h"
#include "qn-pool.h"
#include "qn-program.h"
#include "qn-size.h"
#include "qn-sysfs.h"
#include "qn-text.h"

static gboolean opt_json;
static gboolean opt_version;
static gchar *opt_textfile;
static gboolean opt_yaml;
static gchar *opt_node_name;

static const GOptionEntry qn_ctl_options[] = {
    { "json", 'j', 0, G_OPTION_ARG_NONE, &opt_json, "Print JSON (schema in README)", NULL },
    { "version", 'V', 0, G_OPTION_ARG_NONE, &opt_version, "Print the version and exit", NULL },
    { "textfile", 0, 0, G_OPTION_ARG_FILENAME, &opt_textfile,
      "metrics: write DIR/qemu_numa.prom atomically (node_exporter's textfile collector)", "DIR" },
    { "yaml", 0, 0, G_OPTION_ARG_NONE, &opt_yaml, "nrt: print YAML", NULL },
    { "node-name", 0, 0, G_OPTION_ARG_STRING, &opt_node_name,
      "nrt: the Kubernetes node name (default: the host name)", "N" },
    G_OPTION_ENTRY_NULL
};

/* A string read from the ledger or QMP (any user's), for the human output: control characters
 * and invalid UTF-8 as \xNN, so escape sequences never reach root's terminal. The returned
 * strings live until the next call with the same @slot. --json escapes on its own. */
static const char *
qn_safe(guint slot, const char *s)
{
    static gchar *kept[8];

    g_assert(slot < G_N_ELEMENTS(kept));
    g_free(kept[slot]);
    kept[slot] = qn_text_escape_terminal(s);
    return kept[slot];
}


static JsonNode *
qn_host_to_json(const QnTopology *t, const QnReservations *resv)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    guint n = t->nodes->len;
    gboolean any_pages = FALSE;

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "version");
    json_builder_add_int_value(b, QN_LEDGER_ENTRY_VERSION);
    json_builder_set_member_name(b, "nodes");
    json_builder_begin_array(b);
    for (guint i = 0; i < n; i++) {
        const QnHostNode *node = g_ptr_array_index(t->nodes, i);
        g_autofree gchar *cpus = qn_bitmap_format_list(node->cpus, ",");

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "id");
        json_builder_add_int_value(b, node->id);
        json_builder_set_member_name(b, "cpus");
        json_builder_add_string_value(b, cpus);
        json_builder_set_member_name(b, "mem_total");
        json_builder_add_int_value(b, (gint64)node->mem_total);
        json_builder_set_member_name(b, "mem_free");
        json_builder_add_int_value(b, (gint64)node->mem_free);
        json_builder_set_member_name(b, "allowed");
        json_builder_add_boolean_value(b, node->allowed);
        json_builder_set_member_name(b, "hugepages");
        json_builder_begin_array(b);
        for (guint k = 0; k < node->pools->len; k++) {
            const QnHugepagePool *p = &g_array_index(node->pools, QnHugepagePool, k);
            guint64 held = 0;

            for (guint r = 0; resv && r < resv->items->len; r++) {
                const QnNodeReservation *nr = &g_array_index(resv->items, QnNodeReservation, r);

                if (nr->node == node->id && nr->page_size == p->page_size) {
                    held += nr->bytes / p->page_size;
                }
            }
            any_pages |= p->nr > 0;
            json_builder_begin_object(b);
            json_builder_set_member_name(b, "page_size");
            json_builder_add_int_value(b, (gint64)p->page_size);
            json_builder_set_member_name(b, "total");
            json_builder_add_int_value(b, (gint64)p->nr);
            json_builder_set_member_name(b, "free");
            json_builder_add_int_value(b, (gint64)p->free);
            json_builder_set_member_name(b, "surplus");
            json_builder_add_int_value(b, (gint64)p->surplus);
            json_builder_set_member_name(b, "held_by_ledger");
            json_builder_add_int_value(b, (gint64)held);
            json_builder_end_object(b);
        }
        json_builder_end_array(b);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
    /* global per size, not per node: pages mappings reserved and have not faulted in yet,
     * counted in "free" above, which the planner does not use (qn_topology_resv_pages()) */
    json_builder_set_member_name(b, "resv_hugepages");
    json_builder_begin_array(b);
    for (guint k = 0; k < t->page_sizes->len; k++) {
        guint64 ps = g_array_index(t->page_sizes, guint64, k);

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "page_size");
        json_builder_add_int_value(b, (gint64)ps);
        json_builder_set_member_name(b, "pages");
        json_builder_add_int_value(b, (gint64)qn_topology_resv_pages(t, ps));
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
    json_builder_set_member_name(b, "distance");
    json_builder_begin_array(b);
    for (guint i = 0; i < n; i++) {
        json_builder_begin_array(b);
        for (guint j = 0; j < n; j++) {
            json_builder_add_int_value(b, t->distance[i * n + j]);
        }
        json_builder_end_array(b);
    }
    json_builder_end_array(b);
    json_builder_set_member_name(b, "hugetlbfs_mounts");
    json_builder_begin_array(b);
    for (guint i = 0; i < t->mounts->len; i++) {
        const QnHugetlbfsMount *m = g_ptr_array_index(t->mounts, i);

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "path");
        json_builder_add_string_value(b, m->path);
        json_builder_set_member_name(b, "page_size");
        json_builder_add_int_value(b, (gint64)m->page_size);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
    json_builder_set_member_name(b, "checks");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "hugepages_configured");
    json_builder_add_boolean_value(b, any_pages);
    json_builder_set_member_name(b, "hugetlbfs_mounted");
    json_builder_add_boolean_value(b, t->mounts->len > 0);
    json_builder_set_member_name(b, "multiple_nodes");
    json_builder_add_boolean_value(b, n > 1);
    json_builder_end_object(b);
    json_builder_end_object(b);
    return json_builder_get_root(b);
}

static void
qn_host_print(const QnTopology *t, JsonNode *root)
{
    JsonObject *o = json_node_get_object(root);
    JsonObject *checks = json_object_get_object_member(o, "checks");
    guint n = t->nodes->len;

    printf("%-5s %-16s %-10s %-10s %-8s", "NODE", "CPUS", "MEMTOTAL", "MEMFREE", "ALLOWED");
    for (guint k = 0; k < t->page_sizes->len; k++) {
        g_autofree gchar *ps = qn_size_format(g_array_index(t->page_sizes, guint64, k));

        printf(" %-18s", ps);
    }
    printf("\n");
    for (guint i = 0; i < n; i++) {
        const QnHostNode *node = g_ptr_array_index(t->nodes, i);
        g_autofree gchar *cpus = qn_bitmap_format_list(node->cpus, ",");
        g_autofree gchar *tot = qn_size_format_human(node->mem_total);
        g_autofree gchar *fr = qn_size_format_human(node->mem_free);

        printf("%-5u %-16s %-10s %-10s %-8s", node->id, cpus[0] ? cpus : "-", tot, fr,
               node->allowed ? "yes" : "no");
        for (guint k = 0; k < node->pools->len; k++) {
            const QnHugepagePool *p = &g_array_index(node->pools, QnHugepagePool, k);
            g_autofree gchar *cell = g_strdup_printf("%" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT
                                                     " free", p->free, p->nr);

            printf(" %-18s", cell);
        }
        printf("\n");
    }
    if (t->page_sizes->len > 0) {
        printf("%-5s %-16s %-10s %-10s %-8s", "resv", "(all nodes)", "", "", "");
        for (guint k = 0; k < t->page_sizes->len; k++) {
            guint64 ps = g_array_index(t->page_sizes, guint64, k);
            g_autofree gchar *cell = g_strdup_printf("%" G_GUINT64_FORMAT " reserved",
                                                     qn_topology_resv_pages(t, ps));

            printf(" %-18s", cell);
        }
        printf("\n");
    }
    printf("\ndistances:\n%5s", "");
    for (guint j = 0; j < n; j++) {
        printf(" %4u", ((QnHostNode *)g_ptr_array_index(t->nodes, j))->id);
    }
    printf("\n");
    for (guint i = 0; i < n; i++) {
        printf("%4u:", ((QnHostNode *)g_ptr_array_index(t->nodes, i))->id);
        for (guint j = 0; j < n; j++) {
            printf(" %4u", t->distance[i * n + j]);
        }
        printf("\n");
    }
    printf("\nhugetlbfs mounts:\n");
    for (guint i = 0; i < t->mounts->len; i++) {
        const QnHugetlbfsMount *m = g_ptr_array_index(t->mounts, i);
        g_autofree gchar *ps = qn_size_format(m->page_size);

        printf("  %-30s %s pages\n", qn_safe(0, m->path), ps);
    }
    if (t->mounts->len == 0) {
        printf("  none\n");
    }
    printf("\nchecks:\n  %-24s %s\n  %-24s %s\n  %-24s %s\n", "hugepages configured",
           json_object_get_boolean_member(checks, "hugepages_configured") ? "yes" : "NO",
           "hugetlbfs mounted",
           json_object_get_boolean_member(checks, "hugetlbfs_mounted") ? "yes" : "NO",
           "more than one node",
           json_object_get_boolean_member(checks, "multiple_nodes") ? "yes" : "no");
}

typedef struct {
    GMainLoop *loop;
    gchar *out;
    gboolean done;
} QnVersionRun;

static void
qn_version_done(GObject *proc, GAsyncResult *res, gpointer data)
{
    QnVersionRun *run = data;

    if (!g_subprocess_communicate_utf8_finish(G_SUBPROCESS(proc), res, &run->out, NULL, NULL)) {
        g_clear_pointer(&run->out, g_free);
    }
    run->done = TRUE;
    g_main_loop_quit(run->loop);
}

static gboolean
qn_version_timeout(gpointer data)
{
    g_main_loop_quit(((QnVersionRun *)data)->loop);
    return G_SOURCE_REMOVE;
}

/* One line when the real QEMU is newer than the argv model's option table (issue 20): its new
 * options pass through only while their argument does not start with '-'. The binary is run
 * with --version directly (no shell), for 2 s at most (a QEMU that hangs is killed and says
 * nothing); a QEMU that cannot be found or run says nothing here (the launch itself reports
 * that). */
static void
qn_host_print_qemu_version(const QnConfig *cfg)
{
    g_autofree gchar *qemu = qn_qemu_resolve(cfg->qemu, g_getenv("PATH"), "/proc/self/exe", NULL);
    g_autofree gchar *version = NULL;
    g_autoptr(GSubprocess) proc = NULL;
    g_autoptr(GMainContext) ctx = NULL;
    g_autoptr(GMainLoop) loop = NULL;
    g_autoptr(GSource) timeout = NULL;
    g_autoptr(GCancellable) cancel = g_cancellable_new();
    QnVersionRun run = { 0 };

    if (qemu == NULL) {
        return;
    }
    proc = g_subprocess_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_SILENCE,
                            NULL, qemu, "--version", NULL);
    if (proc == NULL) {
        return;
    }
    ctx = g_main_context_new();
    loop = g_main_loop_new(ctx, FALSE);
    run.loop = loop;
    g_main_context_push_thread_default(ctx);
    g_subprocess_communicate_utf8_async(proc, NULL, cancel, qn_version_done, &run);
    timeout = g_timeout_source_new(2000);
    g_source_set_callback(timeout, qn_version_timeout, &run, NULL);
    g_source_attach(timeout, ctx);
    g_main_loop_run(loop);
    if (!run.done) {
        /* killed; its children may hold the pipe open: stop reading it too */
        g_subprocess_force_exit(proc);
        g_cancellable_cancel(cancel);
        while (!run.done) {
            g_main_context_iteration(ctx, TRUE);
        }
    }
    g_source_destroy(timeout);
    g_main_context_pop_thread_default(ctx);
    if (run.out != NULL && g_subprocess_get_if_exited(proc) &&
        g_subprocess_get_exit_status(proc) == 0 &&
        qn_qemu_version_newer_than_table(run.out, &version)) {
        printf("note: QEMU %s (%s) is newer than qemu-numa's option table (QEMU %d.%d): options "
               "it adds pass through only while their argument does not start with '-'\n",
               version, qemu, QN_QEMU_OPTIONS_MAJOR, QN_QEMU_OPTIONS_MINOR);
    }
    g_free(run.out);
}

static int
qn_cmd_host(const QnConfig *cfg, GError **error)
{
    g_autoptr(QnTopology) t = qn_topology_load(cfg->sysfs_root, cfg->proc_root, error);
    g_autoptr(QnReservations) resv = NULL;
    g_autoptr(JsonNode) j = NULL;

    if (t == NULL) {
        return 1;
    }
    if (g_file_test(cfg->state_dir, G_FILE_TEST_IS_DIR)) {
        g_autoptr(QnLedger) ledger = qn_ledger_open_read(cfg->state_dir, NULL);

        if (ledger != NULL) {
            resv = qn_ledger_reservations(ledger, cfg->proc_root);
        }
    }
    j = qn_host_to_json(t, resv);
    if (opt_json) {
        qn_program_print_json(j);
    } else {
        qn_host_print(t, j);
        qn_host_print_qemu_version(cfg);
    }
    return 0;
}

static int
qn_cmd_plan(const QnConfig *cfg, int argc, char **argv, GError **error)
{
    g_autoptr(GPtrArray) qargv = g_ptr_array_new();
    g_autoptr(QnLaunch) l = NULL;
    g_auto(GStrv) out = NULL;

    g_ptr_array_add(qargv, (gpointer) "qemu-system-x86_64");
    for (int i = 0; i < argc; i++) {
        g_ptr_array_add(qargv, argv[i]);
    }
    g_ptr_array_add(qargv, NULL);
    l = qn_launch_prepare(cfg, (const char *const *)qargv->pdata, TRUE, error);
    if (l == NULL) {
        return 1;
    }
    out = qn_launch_argv(l, FALSE);
    if (opt_json) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonNode) root = NULL;

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "version");
        json_builder_add_int_value(b, QN_LEDGER_ENTRY_VERSION);
        json_builder_set_member_name(b, "plan");
        json_builder_add_value(b, qn_plan_to_json(l->plan));
        json_builder_set_member_name(b, "argv");
        json_builder_begin_array(b);
        for (guint i = 0; out[i] != NULL; i++) {
            /* JSON is UTF-8: a non-UTF-8 argument (a -name, a path) shows its bytes as \xNN */
            g_autofree gchar *arg8 = qn_ledger_name_to_utf8(out[i]);

            json_builder_add_string_value(b, arg8);
        }
        json_builder_end_array(b);
        json_builder_end_object(b);
        root = json_builder_get_root(b);
        qn_program_print_json(root);
    } else {
        g_autofree gchar *summary = qn_plan_summary(l->plan);

        printf("plan: %s\n", summary);
        if (l->plan->distance != NULL) {
            guint n = l->plan->guest_nodes->len;

            printf("guest distances (mirroring the host nodes, mean %.1f):\n",
                   l->plan->mean_distance);
            for (guint i = 0; i < n; i++) {
                printf("  ");
                for (guint j = 0; j < n; j++) {
                    printf(" %3u", l->plan->distance[i * n + j]);
                }
                printf("\n");
            }
        }
        printf("argv:\n");
        for (guint i = 0; out[i] != NULL; i++) {
            g_autofree gchar *q = g_shell_quote(out[i]);

            printf("  %s\n", out[i][0] == '-' || i == 0 ? out[i] : q);
        }
    }
    return 0;
}

static int
qn_cmd_list(const QnConfig *cfg, GError **error)
{
    g_autoptr(QnLedger) ledger = NULL;
    g_autoptr(GPtrArray) entries = NULL;

    if (!g_file_test(cfg->state_dir, G_FILE_TEST_IS_DIR)) {
        entries = g_ptr_array_new();
    } else {
        ledger = qn_ledger_open_read(cfg->state_dir, error);
        if (ledger == NULL) {
            return 1;
        }
        g_autoptr(GPtrArray) bad = NULL;

        qn_ledger_sweep(ledger, cfg->proc_root);
        entries = qn_ledger_list(ledger, &bad);
        /* A file that does not parse is reported, never deleted: it may be evidence. */
        for (guint i = 0; i < bad->len; i++) {
            g_warning("ledger file '%s/%s' is not a valid entry: skipped", cfg->state_dir,
                      qn_safe(0, bad->pdata[i]));
        }
    }
    if (opt_json) {
        g_autoptr(JsonNode) root = qn_ledger_list_to_json(entries);

        qn_program_print_json(root);
        return 0;
    }
    printf("%-8s %-20s %-10s %-10s %s\n", "PID", "NAME", "STATE", "QEMU", "PLAN");
    for (guint i = 0; i < entries->len; i++) {
        const QnLedgerEntry *e = g_ptr_array_index(entries, i);
        g_autofree gchar *summary = e->plan ? qn_plan_summary(e->plan) : g_strdup("?");

        printf("%-8d %-20s %-10s %-10s %s\n", e->pid, qn_safe(0, e->name ? e->name : "-"),
               qn_entry_state_name(e->state), qn_safe(1, e->qemu_status ? e->qemu_status : "-"),
               qn_safe(2, summary));
    }
    return 0;
}

static int
qn_cmd_sweep(const QnConfig *cfg, GError **error)
{
    g_autoptr(QnLedger) ledger = qn_ledger_open_read(cfg->state_dir, error);
    guint n;

    if (ledger == NULL) {
        return 1;
    }
    n = qn_ledger_sweep(ledger, cfg->proc_root);
    if (opt_json) {
        printf("{\"version\": %d, \"removed\": %u}\n", QN_LEDGER_ENTRY_VERSION, n);
    } else {
        printf("removed %u stale entr%s\n", n, n == 1 ? "y" : "ies");
    }
    return 0;
}

/* The ledger entry of NAME, UUID or PID, after a sweep. */
static QnLedgerEntry *
qn_find_vm(const QnConfig *cfg, const char *which, GError **error)
{
    g_autoptr(QnLedger) ledger = NULL;
    g_autoptr(GPtrArray) entries = NULL;
    /* names are stored in UTF-8, invalid bytes as \xNN: match the argument the same way */
    g_autofree gchar *which8 = qn_ledger_name_to_utf8(which);

    if (!g_file_test(cfg->state_dir, G_FILE_TEST_IS_DIR)) {
        g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "'%s': no such VM", which8);
        return NULL;
    }
    ledger = qn_ledger_open_read(cfg->state_dir, error);
    if (ledger == NULL) {
        return NULL;
    }
    qn_ledger_sweep(ledger, cfg->proc_root);
    entries = qn_ledger_list(ledger, NULL);
    for (guint i = 0; i < entries->len; i++) {
        const QnLedgerEntry *e = g_ptr_array_index(entries, i);
        g_autofree gchar *pid = g_strdup_printf("%d", e->pid);

        if (g_strcmp0(e->name, which8) == 0 || g_strcmp0(e->uuid, which8) == 0 ||
            strcmp(pid, which) == 0) {
            return g_ptr_array_steal_index(entries, i);
        }
    }
    g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "'%s': no such VM", which8);
    return NULL;
}

/* query-status of VM @pid on its ctl socket @sock in its user's directory @state_dir,
 * connected to only when it is what the launcher made: a socket (not a link to one), owned by
 * the directory's owner (the VM's user),
 * reached through an O_PATH descriptor of that very file (no second lookup by name), and
 * served by QEMU's pid (SO_PEERCRED). A planted link or socket gets no byte from root. */
static JsonNode *
qn_ctl_query_status(const char *state_dir, const char *sock, gint pid, GError **error)
{
    struct stat dir_st, st;
    g_autofree gchar *via = NULL;
    JsonNode *live;
    int fd;

    if (lstat(state_dir, &dir_st) != 0 || !S_ISDIR(dir_st.st_mode)) {
        g_set_error(error, QN_ERROR, QN_ERROR_QMP, "'%s': %s", state_dir, g_strerror(errno));
        return NULL;
    }
    fd = open(sock, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        g_set_error(error, QN_ERROR, QN_ERROR_QMP, "'%s': %s", sock, g_strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode) || st.st_uid != dir_st.st_uid) {
        g_set_error(error, QN_ERROR, QN_ERROR_QMP,
                    "'%s': not a socket of its directory's owner: not used", sock);
        close(fd);
        return NULL;
    }
    via = g_strdup_printf("/proc/self/fd/%d", fd);
    live = qn_qmp_query_peer(via, pid, "query-status", NULL, 3000, error);
    close(fd);
    return live;
}

/* QEMU's run state now, when its ctl socket answers, into @e (else the monitor's record stays);
 * the measured memory per host node now, from /proc/PID/numa_maps. */
static void
qn_status_refresh(const QnConfig *cfg, QnLedgerEntry *e, GError **ret_qerr)
{
    /* the VM's user's directory: its user is set by qn_ledger_list() from the directory */
    g_autofree gchar *udir = g_build_filename(cfg->state_dir, e->user ? e->user : "?", NULL);
    g_autofree gchar *sock = qn_ledger_socket_path(udir, e->pid, "ctl");
    g_autofree gchar *maps_path = g_strdup_printf("%s/%d/numa_maps", cfg->proc_root, e->pid);
    g_autofree gchar *maps = NULL;
    g_autoptr(JsonNode) live = qn_ctl_query_status(udir, sock, e->pid, ret_qerr);

    if (live != NULL && JSON_NODE_HOLDS_OBJECT(live)) {
        const char *st = qn_json_get_string(json_node_get_object(live), "status", NULL);

        if (st != NULL) {
            qn_ledger_entry_set_qemu_status(e, st);
            e->qemu_status_live = TRUE;
        }
    }
    if (g_file_get_contents(maps_path, &maps, NULL, NULL)) {
        g_autoptr(GHashTable) per_node = qn_parse_numa_maps(maps);

        qn_ledger_entry_set_measured_memory(e, per_node);
    }
    if (e->memory_devices != NULL) {
        /* the devices as the monitor last listed them, their backends' pages measured now */
        g_autofree gchar *vma_path = g_strdup_printf("%s/%d/maps", cfg->proc_root, e->pid);
        g_autofree gchar *vmas = NULL;

        if (g_file_get_contents(vma_path, &vmas, NULL, NULL) && maps != NULL) {
            qn_entry_memory_devices_measure(e->memory_devices, vmas, maps);
        }
    }
}

/* `status` text: the memory devices the monitor saw and where their backends' pages are. */
static void
qn_print_memory_devices(const QnLedgerEntry *e)
{
    if (e->memory_devices == NULL) {
        return;
    }
    printf("memory devices (query-memory-devices; backend pages by host node, measured):\n");
    for (guint i = 0; i < e->memory_devices->len; i++) {
        const QnEntryMemoryDevice *d = g_ptr_array_index(e->memory_devices, i);
        g_autofree gchar *size = qn_size_format_human(d->size);
        g_autoptr(GString) where = g_string_new(NULL);

        for (guint k = 0; d->placement != NULL && k < d->placement->len; k++) {
            const QnEntryNodeBytes *nb = &g_array_index(d->placement, QnEntryNodeBytes, k);
            g_autofree gchar *h = qn_size_format_human(nb->bytes);

            g_string_append_printf(where, "%shost node %u %s", k ? ", " : "", nb->host_node, h);
        }
        if (d->placement == NULL) {
            g_string_append_printf(where, "not measured (%u mappings of its backend's size)",
                                   d->mappings);
        } else if (d->placement->len == 0) {
            g_string_append(where, "no page touched yet");
        }
        printf("  %-10s %-10s memdev %s, guest node %d, %s%s: %s\n",
               qn_safe(0, d->id ? d->id : "-"), qn_safe(1, d->type),
               qn_safe(2, d->memdev ? d->memdev : "-"), d->node, size,
               d->hotplugged == 1 ? ", hotplugged" : "", where->str);
    }
}

static int
qn_cmd_status(const QnConfig *cfg, const char *which, GError **error)
{
    g_autoptr(QnLedgerEntry) e = qn_find_vm(cfg, which, error);
    g_autoptr(GError) qerr = NULL;
    g_autofree gchar *summary = NULL;

    if (e == NULL) {
        return 1;
    }
    qn_status_refresh(cfg, e, &qerr);
    if (qerr != NULL) {
        g_debug("%s", qerr->message);
    }
    if (opt_json) {
        g_autoptr(JsonNode) root = qn_ledger_entry_to_json(e, TRUE);

        qn_program_print_json(root);
        return 0;
    }
    summary = e->plan ? qn_plan_summary(e->plan) : g_strdup("?");
    printf("%-10s %s\n", "name:", qn_safe(0, e->name ? e->name : "-"));
    printf("%-10s %d\n", "pid:", e->pid);
    printf("%-10s %s\n", "state:", qn_entry_state_name(e->state));
    printf("%-10s %s%s\n", "qemu:", qn_safe(0, e->qemu_status ? e->qemu_status : "-"),
           e->qemu_status_live ? "" : " (as last recorded; QEMU did not answer now)");
    if (!e->qemu_status_live && qerr != NULL) {
        printf("%-10s %s\n", "live:", qn_safe(0, qerr->message));
    }
    if (e->migration_role != NULL) {
        printf("%-10s %s, %s at %s\n", "migration:", qn_safe(0, e->migration_role),
               qn_safe(1, e->migration_status), qn_safe(2, e->migration_time ? e->migration_time
                                                                              : "?"));
    }
    printf("%-10s %s\n", "plan:", qn_safe(0, summary));
    printf("memory by host node (measured, /proc/%d/numa_maps):\n", e->pid);
    for (guint i = 0; e->measured_memory != NULL && i < e->measured_memory->len; i++) {
        const QnEntryNodeBytes *nb = &g_array_index(e->measured_memory, QnEntryNodeBytes, i);
        g_autofree gchar *h = qn_size_format_human(nb->bytes);

        printf("  node %-4u %s\n", nb->host_node, h);
    }
    qn_print_memory_devices(e);
    return 0;
}

static int
qn_cmd_events(const QnConfig *cfg, const char *which, GError **error)
{
    g_autoptr(QnLedgerEntry) e = qn_find_vm(cfg, which, error);

    if (e == NULL) {
        return 1;
    }
    if (opt_json) {
        g_autoptr(JsonNode) root = qn_ledger_events_to_json(e);

        qn_program_print_json(root);
        return 0;
    }
    printf("%-32s %s\n", "TIME", "EVENT");
    for (guint i = 0; i < e->events->len; i++) {
        const QnEntryEvent *ev = g_ptr_array_index(e->events, i);
        g_autofree gchar *data = NULL;

        if (ev->data != NULL) {
            g_autoptr(JsonGenerator) gen = json_generator_new();
            g_autoptr(JsonNode) n = json_node_new(JSON_NODE_OBJECT);

            json_node_set_object(n, ev->data);
            json_generator_set_root(gen, n);
            data = json_generator_to_data(gen, NULL);
        }
        printf("%-32s %s%s%s\n", qn_safe(0, ev->time), qn_safe(1, ev->event), data ? " " : "",
               data ? qn_safe(2, data) : "");
    }
    return 0;
}

/* The argv QEMU @pid runs with, from /proc/PID/cmdline: its user can rewrite that memory, so it
 * is read as untrusted (bounded, no link followed) and parsed by the launcher's own parser. */
static QnQemuArgv *
qn_read_qemu_argv(const QnConfig *cfg, gint pid, GError **error)
{
    g_autofree gchar *path = g_strdup_printf("%s/%d/cmdline", cfg->proc_root, pid);
    g_autofree gchar *data = NULL;
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    gsize len = 0;

    if (!qn_file_read_untrusted(path, (uid_t)-1, QN_LEDGER_ENTRY_MAX_LEN, &data, &len, error)) {
        return NULL;
    }
    for (gsize off = 0; off < len; off += strlen(data + off) + 1) {
        g_ptr_array_add(argv, data + off);
    }
    if (argv->len == 0) {
        g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "'%s': empty: QEMU is gone", path);
        return NULL;
    }
    g_ptr_array_add(argv, NULL);
    return qn_qemu_argv_parse((const char *const *)argv->pdata, error);
}

/* `migrate-args NAME|UUID|PID`: the guest-visible layout of a running VM as QEMU options, for
 * a migration destination's command line (qn_migrate_args(); issue 14). Text: one line of
 * shell-quoted words; --json: {"version", "pid", "name", "args": [...]}. */
static int
qn_cmd_migrate_args(const QnConfig *cfg, const char *which, GError **error)
{
    g_autoptr(QnLedgerEntry) e = qn_find_vm(cfg, which, error);
    g_autoptr(QnQemuArgv) qa = NULL;
    g_auto(GStrv) args = NULL;

    if (e == NULL || (qa = qn_read_qemu_argv(cfg, e->pid, error)) == NULL ||
        (args = qn_migrate_args(qa, e->plan, error)) == NULL) {
        return 1;
    }
    if (opt_json) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonNode) root = NULL;

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "version");
        json_builder_add_int_value(b, QN_LEDGER_ENTRY_VERSION);
        json_builder_set_member_name(b, "pid");
        json_builder_add_int_value(b, e->pid);
        json_builder_set_member_name(b, "name");
        if (e->name != NULL) {
            json_builder_add_string_value(b, e->name);
        } else {
            json_builder_add_null_value(b);
        }
        json_builder_set_member_name(b, "args");
        json_builder_begin_array(b);
        for (guint i = 0; args[i] != NULL; i++) {
            json_builder_add_string_value(b, args[i]);
        }
        json_builder_end_array(b);
        json_builder_end_object(b);
        root = json_builder_get_root(b);
        qn_program_print_json(root);
        return 0;
    }
    for (guint i = 0; args[i] != NULL; i++) {
        /* quoted for sh only where it needs it: most values are plain keyval */
        gboolean plain = args[i][0] != '\0' &&
                         strspn(args[i], "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                         "0123456789,=._:/+-@%") == strlen(args[i]);
        g_autofree gchar *q = plain ? g_strdup(args[i]) : g_shell_quote(args[i]);

        printf("%s%s", i ? " " : "", qn_safe(0, q));
    }
    printf("\n");
    return 0;
}

static const char *qn_usage =
    "COMMAND\n\n"
    "Commands:\n"
    "  host                 host NUMA topology, hugepages per node, readiness checks\n"
    "  plan -- QEMU-ARGS    dry run: the placement plan and the argv QEMU would get\n"
    "  list                 VMs in the reservation ledger\n"
    "  status NAME|UUID|PID the VM's plan, state, live QMP status, memory per host node\n"
    "  events NAME|UUID|PID the VM's recorded QMP events\n"
    "  migrate-args NAME|UUID|PID  the VM's guest layout as QEMU options (for -incoming)\n"
    "  sweep                remove ledger entries whose QEMU is gone\n"
    "  metrics              Prometheus text exposition of nodes, hugepages, VMs (--textfile DIR)\n"
    "  nrt                  Kubernetes NodeResourceTopology v1alpha2 (--yaml, --node-name N)\n"
    "  pool run|status|drain the pre-zeroed hugepage pool: serve it (foreground), what is\n"
    "                       ready per node, give every page back";

/* `pool run`: the service, in the foreground; `pool status [--json]`: ready bytes per node
 * and page size, and refill progress; `pool drain`: every pool page back to the kernel. */
static int
qn_cmd_pool(const QnConfig *cfg, const char *verb, GError **error)
{
    if (strcmp(verb, "run") == 0) {
        g_autoptr(QnTopology) t = qn_topology_load(cfg->sysfs_root, cfg->proc_root, error);

        return t != NULL && qn_pool_run(cfg, t, error) ? 0 : 1;
    }
    if (strcmp(verb, "drain") == 0) {
        g_autofree gchar *r = qn_pool_request(cfg->state_dir, "drain", error);

        if (r == NULL) {
            return 1;
        }
        if (strcmp(r, "ok") != 0) {
            g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "pool drain: %s", r);
            return 1;
        }
        return 0;
    }
    if (strcmp(verb, "status") == 0) {
        g_autofree gchar *r = qn_pool_request(cfg->state_dir, "status", error);
        g_autoptr(JsonNode) root = NULL;
        JsonArray *shelves;

        if (r == NULL) {
            return 1;
        }
        root = qn_json_parse_bounded(r, strlen(r), QN_JSON_MAX_DEPTH, QN_POOL_REPLY_MAX, error);
        if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root) ||
            json_object_get_array_member(json_node_get_object(root), "shelves") == NULL) {
            g_clear_error(error);
            g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "pool status: a bad reply");
            return 1;
        }
        if (opt_json) {
            printf("%s\n", r);
            return 0;
        }
        shelves = json_object_get_array_member(json_node_get_object(root), "shelves");
        printf("%-6s %-6s %-10s %-10s %-6s %-10s %s\n", "NODE", "PAGE", "READY", "TARGET",
               "FILES", "FILLING", "ERROR");
        for (guint i = 0; i < json_array_get_length(shelves); i++) {
            JsonObject *o = json_array_get_object_element(shelves, i);
            g_autofree gchar *ps = NULL, *ready = NULL, *target = NULL, *filling = NULL;

            if (o == NULL) {
                continue;
            }
            ps = qn_size_format((guint64)json_object_get_int_member_with_default(o, "page_size",
                                                                                   0));
            ready = qn_size_format((guint64)json_object_get_int_member_with_default(
                o, "ready_bytes", 0));
            target = qn_size_format((guint64)json_object_get_int_member_with_default(
                o, "target_bytes", 0));
            filling = qn_size_format((guint64)json_object_get_int_member_with_default(
                o, "filling_bytes", 0));
            printf("%-6" G_GINT64_FORMAT " %-6s %-10s %-10s %-6" G_GINT64_FORMAT " %-10s %s\n",
                   json_object_get_int_member_with_default(o, "node", -1), ps, ready, target,
                   json_object_get_int_member_with_default(o, "files", 0), filling,
                   qn_safe(0, json_object_get_string_member_with_default(o, "error", "-")));
        }
        return 0;
    }
    g_set_error(error, QN_ERROR, QN_ERROR_BAD_ARGV, "pool '%s': expected run, status or drain",
                verb);
    return 2;
}

int
main(int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GOptionContext) ctx = g_option_context_new(qn_usage);
    g_autoptr(QnConfig) cfg = NULL;
    int qemu_argc = 0;
    char **qemu_argv = NULL;
    int rc;

    /* Everything after "--" belongs to QEMU: hide it from GOption. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            qemu_argv = argv + i + 1;
            qemu_argc = argc - i - 1;
            argc = i;
            break;
        }
    }
    g_option_context_add_main_entries(ctx, qn_ctl_options, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        fprintf(stderr, "qemu-numa-ctl: %s\n", error->message);
        return 2;
    }
    if (opt_version) {
        printf("qemu-numa-ctl %s\n", PACKAGE_VERSION);
        return 0;
    }
    if (argc < 2) {
        fprintf(stderr, "qemu-numa-ctl: missing command (host, plan, list, status, events, "
                        "migrate-args, sweep, metrics, nrt, pool)\n");
        return 2;
    }
    if (argc != ((strcmp(argv[1], "status") == 0 || strcmp(argv[1], "events") == 0 ||
                  strcmp(argv[1], "migrate-args") == 0 || strcmp(argv[1], "pool") == 0) ? 3 : 2)) {
        fprintf(stderr, "qemu-numa-ctl: %s: wrong number of arguments\n", argv[1]);
        return 2;
    }
    qn_program_setup_log("qemu-numa-ctl", G_LOG_LEVEL_WARNING);
    cfg = qn_program_load_config(&error);
    if (cfg == NULL) {
        fprintf(stderr, "qemu-numa-ctl: %s\n", error->message);
        return 1;
    }
    if (strcmp(argv[1], "host") == 0) {
        rc = qn_cmd_host(cfg, &error);
    } else if (strcmp(argv[1], "plan") == 0) {
        if (qemu_argv == NULL) {
            fprintf(stderr, "qemu-numa-ctl: plan: QEMU arguments go after '--'\n");
            return 2;
        }
        rc = qn_cmd_plan(cfg, qemu_argc, qemu_argv, &error);
    } else if (strcmp(argv[1], "list") == 0) {
        rc = qn_cmd_list(cfg, &error);
    } else if (strcmp(argv[1], "status") == 0) {
        rc = qn_cmd_status(cfg, argv[2], &error);
    } else if (strcmp(argv[1], "events") == 0) {
        rc = qn_cmd_events(cfg, argv[2], &error);
    } else if (strcmp(argv[1], "migrate-args") == 0) {
        rc = qn_cmd_migrate_args(cfg, argv[2], &error);
    } else if (strcmp(argv[1], "sweep") == 0) {
        rc = qn_cmd_sweep(cfg, &error);
    } else if (strcmp(argv[1], "metrics") == 0) {
        rc = qn_ctl_metrics(cfg, opt_textfile, &error);
    } else if (strcmp(argv[1], "nrt") == 0) {
        rc = qn_ctl_nrt(cfg, opt_node_name, opt_yaml, &error);
    } else if (strcmp(argv[1], "pool") == 0) {
        rc = qn_cmd_pool(cfg, argv[2], &error);
    } else {
        fprintf(stderr, "qemu-numa-ctl: '%s': unknown command\n", argv[1]);
        return 2;
    }
    if (rc != 0 && error != NULL) {
        /* the message may quote a ledger file or a QMP reply */
        fprintf(stderr, "qemu-numa-ctl: %s\n", qn_safe(0, error->message));
    }
    return rc;
}
