#include "config.h"

#include "qn-monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gio/gunixsocketaddress.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "qn-error.h"
#include "qn-json.h"
#include "qn-ledger.h"
#include "qn-qmp-client.h"
#include "qn-text.h"
#include "qn-topology.h"

GSocket *
qn_monitor_listen(const QnLedger *ledger, gint pid, const char *which, GError **error)
{
    g_autofree gchar *path = qn_ledger_socket_path(ledger->dir, pid, which);
    g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(path);
    g_autoptr(GSocket) sock = NULL;
    g_autoptr(GError) local = NULL;
    mode_t old;
    gboolean bound;

    sock = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT,
                        &local);
    if (sock == NULL) {
        g_set_error(error, QN_ERROR, QN_ERROR_FAILED, "QMP socket '%s': %s", path,
                    local->message);
        return NULL;
    }
    old = umask(0177);
    bound = g_socket_bind(sock, addr, FALSE, &local);
    umask(old);
    if (!bound || !g_socket_listen(sock, &local)) {
        g_set_error(error, QN_ERROR, QN_ERROR_FAILED, "QMP socket '%s': %s", path,
                    local->message);
        return NULL;
    }
    return g_steal_pointer(&sock);
}

gboolean
qn_monitor_spawn(const char *state_dir, const char *proc_root, gint pid, gboolean resume,
                 GError **error)
{
    g_autofree gchar *pid_s = g_strdup_printf("%d", pid);
    g_autofree gchar *dir = qn_state_user_dir(state_dir);
    g_autofree gchar *log = qn_ledger_log_path(dir, pid);
    char *const argv[] = { (char *)"qemu-numa-monitor", pid_s, (char *)state_dir,
                           (char *)proc_root, (char *)(resume ? "cont" : "nocont"), NULL };
    pid_t child = fork();

    if (child < 0) {
        g_set_error(error, QN_ERROR, QN_ERROR_FAILED, "fork: %s", g_strerror(errno));
        return FALSE;
    }
    if (child == 0) {
        /* Only async-signal-safe calls from here: the parent may have had threads. */
        pid_t grandchild = fork();
        int fd;

        if (grandchild != 0) {
            _exit(grandchild < 0 ? 1 : 0);
        }
        setsid();
        fd = open("/dev/null", O_RDONLY);
        if (fd >= 0) {
            dup2(fd, 0);
        }
        fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
        {
            /* a hard link planted under the log's name is another file: log nowhere instead */
            struct stat st;

            if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1)) {
                close(fd);
                fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
            }
        }
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        syscall(SYS_close_range, 3U, ~0U, 0U);
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    while (waitpid(child, NULL, 0) < 0 && errno == EINTR) {
    }
    return TRUE;
}

typedef struct {
    gint pid;
    gchar *state_dir; /* the top: for qn_ledger_open() */
    gchar *dir;       /* our user's directory in it: sockets, log, exits.jsonl */
    gchar *proc_root;
    GMainLoop *loop;
    QnQmpClient *qmp;
    GError *connect_error;
    gchar *last_shutdown_reason;
    const char *early_exit;    /* nullable: QEMU was gone before the monitor could watch it */
    gboolean qmp_closed;
    gboolean qemu_gone;
    guint64 start_time;        /* QEMU's, when the monitor started (0: unknown) */
    gint exit_status;          /* -1: unknown */
    gint exit_signal;          /* 0: none or unknown */
    gboolean migration_failed; /* a MIGRATION event said "failed" */
    QnPlan *pin_plan;          /* pinning waits for the caller's first `cont` (RESUME) */
    GHashTable *vcpu_affinity; /* thread id -> cpulist when we connected (gchar*) */
    GPtrArray *memory_devices; /* QnEntryMemoryDevice*: query-memory-devices as last recorded */
    gboolean memdev_check_queued; /* an idle check is already on its way */
} QnMonitor;

static void
qn_log(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static gboolean qn_pin_deferred(gpointer user);

/* A monitor's log (<state>/<pid>.log, its stderr) and exits.jsonl are bounded (issue 12): the
 * log stops at QN_MONITOR_LOG_MAX bytes and goes with its VM (qn_ledger_remove_files(), and a
 * sweep removes one left by a monitor that died first);
 * exits.jsonl moves to exits.jsonl.1 once it reaches QN_LEDGER_JSONL_MAX bytes, one generation
 * kept. */
#define QN_MONITOR_LOG_MAX (256U * 1024)
static gsize qn_log_bytes;

static void
qn_log(const char *fmt, ...)
{
    va_list ap;
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    g_autofree gchar *ts = g_date_time_format_iso8601(now);
    g_autofree gchar *msg = NULL;

    g_autofree gchar *safe = NULL;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    /* messages quote QMP replies and events: an admin reading the log sees no escapes */
    safe = qn_text_escape_terminal(msg);
    /* bounded: a QEMU that makes us log on every event cannot fill the state directory */
    if (qn_log_bytes > QN_MONITOR_LOG_MAX) {
        return;
    }
    qn_log_bytes += strlen(ts) + strlen(safe) + 21;
    if (qn_log_bytes > QN_MONITOR_LOG_MAX) {
        fprintf(stderr, "%s qemu-numa-monitor: log reached %u bytes: nothing more is logged\n",
                ts, QN_MONITOR_LOG_MAX);
    } else {
        fprintf(stderr, "%s qemu-numa-monitor: %s\n", ts, safe);
    }
    fflush(stderr);
}

/* Read-modify-write of this VM's ledger entry under the ledger lock. */
typedef void (*QnEntryEdit)(QnLedgerEntry *entry, gpointer data);

static gboolean
qn_entry_update(QnMonitor *m, QnEntryEdit edit, gpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(QnLedger) ledger = qn_ledger_open(m->state_dir, &error);
    g_autoptr(QnLedgerEntry) entry = NULL;

    if (ledger == NULL) {
        qn_log("%s", error->message);
        return FALSE;
    }
    /* Only this VM's file: an event costs one read, however many VMs the host runs. */
    entry = qn_ledger_read(ledger, m->pid, NULL);
    if (entry == NULL) {
        return FALSE;
    }
    edit(entry, data);
    if (!qn_ledger_write(ledger, entry, &error)) {
        qn_log("%s", error->message);
        return FALSE;
    }
    return TRUE;
}

static void
qn_edit_qemu_status(QnLedgerEntry *e, gpointer data)
{
    qn_ledger_entry_set_qemu_status(e, data);
}

typedef struct {
    const char *event;
    JsonObject *data;
    gint64 ts_usec;
    const char *qemu_status; /* nullable: the run state the event implies */
} QnEventRecord;

static void
qn_edit_event(QnLedgerEntry *e, gpointer user)
{
    QnEventRecord *r = user;

    qn_ledger_entry_add_event(e, r->event, r->data, r->ts_usec);
    if (r->qemu_status != NULL) {
        qn_ledger_entry_set_qemu_status(e, r->qemu_status);
    }
    /* the ledger follows a migrating VM (issue 14): a destination is "incoming" until its
     * guest runs or has arrived; either end records the migration's last status */
    if (!strcmp(r->event, "MIGRATION") && r->data != NULL) {
        qn_ledger_entry_note_migration(e, qn_json_get_string(r->data, "status", "unknown"));
    }
    if (!strcmp(r->event, "RESUME")) {
        qn_ledger_entry_end_incoming(e);
    }
}

static void
qn_edit_memory(QnLedgerEntry *e, gpointer user)
{
    qn_ledger_entry_set_measured_memory(e, user);
}

static void
qn_measure_memory(QnMonitor *m)
{
    g_autofree gchar *path = g_strdup_printf("%s/%d/numa_maps", m->proc_root, m->pid);
    g_autofree gchar *text = NULL;
    g_autoptr(GHashTable) per_node = NULL;

    if (!g_file_get_contents(path, &text, NULL, NULL)) {
        return;
    }
    per_node = qn_parse_numa_maps(text);
    qn_entry_update(m, qn_edit_memory, per_node);
}

/* How often the monitor asks QEMU for its memory devices (QN_MEMDEV_POLL_S seconds): QEMU 7.2
 * sends no event when one is added (device_add of a pc-dimm or virtio-mem says nothing: it
 * has no DEVICE_ADDED), so `qemu-numa-ctl status` sees a hotplugged DIMM within this
 * time. One bounded QMP round trip a VM; the entry is written only when the list changed. */
#define QN_MEMDEV_POLL_S 2

static void
qn_edit_memory_devices(QnLedgerEntry *e, gpointer user)
{
    qn_ledger_entry_set_memory_devices(e, g_ptr_array_ref(user));
}

/* Reads QEMU's /proc/PID/@what (maps, numa_maps): QEMU's own files, read by root, bounded by
 * the kernel's view of its mappings. Returns: (transfer full) (nullable). */
static gchar *
qn_proc_read(const QnMonitor *m, const char *what)
{
    g_autofree gchar *path = g_strdup_printf("%s/%d/%s", m->proc_root, m->pid, what);
    gchar *text = NULL;

    return g_file_get_contents(path, &text, NULL, NULL) ? text : NULL;
}

/* query-memory-devices: when the devices differ from the last record (a DIMM or virtio-mem
 * added, removed, resized), their backends' placement is measured now and the entry
 * rewritten (issue 16 item 3). */
static void
qn_check_memory_devices(QnMonitor *m)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) r = qn_qmp_client_execute_sync(m->qmp, "query-memory-devices", NULL,
                                                       10000, &error);
    g_autoptr(GPtrArray) devs = qn_entry_memory_devices_from_qmp(r);
    g_autofree gchar *maps = NULL;
    g_autofree gchar *numa_maps = NULL;

    if (devs == NULL) {
        if (error != NULL && !m->qmp_closed) {
            qn_log("query-memory-devices: %s", error->message);
        }
        return;
    }
    if (m->memory_devices != NULL && qn_entry_memory_devices_equal(m->memory_devices, devs)) {
        return;
    }
    maps = qn_proc_read(m, "maps");
    numa_maps = qn_proc_read(m, "numa_maps");
    qn_entry_memory_devices_measure(devs, maps, numa_maps);
    if (qn_entry_update(m, qn_edit_memory_devices, devs)) {
        qn_log("%u memory device(s) recorded", devs->len);
        g_clear_pointer(&m->memory_devices, g_ptr_array_unref);
        m->memory_devices = g_steal_pointer(&devs);
    }
}

static gboolean
qn_memdev_poll(gpointer user)
{
    QnMonitor *m = user;

    if (!m->qmp_closed && !m->qemu_gone) {
        qn_check_memory_devices(m);
    }
    return G_SOURCE_CONTINUE;
}

static gboolean
qn_memdev_idle(gpointer user)
{
    QnMonitor *m = user;

    m->memdev_check_queued = FALSE;
    qn_memdev_poll(m);
    return G_SOURCE_REMOVE;
}

static const char *
qn_state_after(const char *event, JsonObject *data)
{
    if (!strcmp(event, "STOP")) {
        return "paused";
    }
    if (!strcmp(event, "RESUME")) {
        return "running";
    }
    if (!strcmp(event, "SHUTDOWN")) {
        return "shutdown";
    }
    if (!strcmp(event, "GUEST_PANICKED")) {
        return "guest-panicked";
    }
    if (!strcmp(event, "MIGRATION") && data != NULL) {
        const char *st = qn_json_get_string(data, "status", "");

        return !strcmp(st, "completed") ? "postmigrate" : NULL;
    }
    return NULL;
}

static void
qn_on_event(QnQmpClient *client, const char *event, JsonObject *data, gint64 ts_usec,
            gpointer user)
{
    QnMonitor *m = user;
    QnEventRecord r = { event, data, ts_usec >= 0 ? ts_usec : g_get_real_time(),
                        qn_state_after(event, data) };

    if (!strcmp(event, "MIGRATION") && data != NULL &&
        !strcmp(qn_json_get_string(data, "status", ""), "failed")) {
        m->migration_failed = TRUE;
    }
    if (!strcmp(event, "SHUTDOWN") && data != NULL) {
        g_free(m->last_shutdown_reason);
        m->last_shutdown_reason =
            g_strdup(qn_json_get_string(data, "reason", "unknown"));
    }
    qn_entry_update(m, qn_edit_event, &r);
    /* virtio-mem resized (QEMU 7.2 hw/virtio/virtio-mem.c), a device gone: look again now */
    if ((!strcmp(event, "MEMORY_DEVICE_SIZE_CHANGE") || !strcmp(event, "DEVICE_DELETED")) &&
        !m->memdev_check_queued) {
        m->memdev_check_queued = TRUE;
        g_idle_add(qn_memdev_idle, m); /* QMP commands cannot wait inside this callback */
    }
    if (!strcmp(event, "RESUME")) {
        qn_measure_memory(m); /* pages touched so far, as they really landed */
        if (m->pin_plan != NULL) {
            g_idle_add(qn_pin_deferred, m); /* QMP commands cannot wait inside this callback */
        }
    }
}

/* QEMU sends MIGRATION events only with the "events" migration capability on
 * (migration/migration.c, migrate_generate_event()); libvirt turns it on for the same reason.
 * It changes nothing in the migration stream. Without it the ledger could not follow a
 * migrating VM (issue 14): an error is logged, the VM runs on. */
static void
qn_migration_events_on(QnMonitor *m)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) args = json_from_string(
        "{\"capabilities\": [{\"capability\": \"events\", \"state\": true}]}", NULL);
    g_autoptr(JsonNode) r = qn_qmp_client_execute_sync(m->qmp, "migrate-set-capabilities",
                                                       json_node_get_object(args), 10000,
                                                       &error);

    if (r == NULL) {
        qn_log("migrate-set-capabilities events: %s", error->message);
    }
}

/* Appends @line to @exits (our own exits.jsonl), rotated under the ledger lock at
 * QN_LEDGER_JSONL_MAX bytes to exits.jsonl.1 (qn_ledger_append_line()). */
static void
qn_exits_append(const char *exits, const char *line)
{
    g_autoptr(GError) error = NULL;

    if (!qn_ledger_append_line(exits, line, &error)) {
        qn_log("%s: exit not recorded", error->message);
    }
}

/* Why QEMU ended, for exits.jsonl: its SHUTDOWN reason, else its exit status or signal when
 * the zombie could still be read (a migration destination that fails to load exits 1 with no
 * SHUTDOWN event: it did not crash), else "killed or crashed". */
static gchar *
qn_exit_reason(const QnMonitor *m)
{
    if (m->last_shutdown_reason != NULL) {
        return g_strdup(m->last_shutdown_reason);
    }
    if (m->exit_signal > 0) {
        return g_strdup_printf("killed by signal %d (%s)", m->exit_signal,
                               g_strsignal(m->exit_signal));
    }
    if (m->exit_status >= 0) {
        return g_strdup_printf("exited with status %d%s%s", m->exit_status,
                               m->early_exit ? ", " : " (no SHUTDOWN event)",
                               m->early_exit ? m->early_exit : "");
    }
    if (m->early_exit != NULL) {
        return g_strdup(m->early_exit);
    }
    if (m->migration_failed) {
        return g_strdup("exited after its incoming migration failed");
    }
    return g_strdup("killed or crashed (no SHUTDOWN event)");
}

static void
qn_finish(QnMonitor *m)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(QnLedger) ledger = NULL;
    g_autofree gchar *ts = NULL;
    g_autofree gchar *exits = qn_ledger_exits_path(m->dir);
    g_autofree gchar *line = NULL;
    g_autofree gchar *reason = qn_exit_reason(m);
    g_autoptr(QnLedgerEntry) entry = NULL;
    g_autoptr(JsonNode) record = NULL;
    g_autoptr(JsonGenerator) gen = json_generator_new();
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();

    ts = g_date_time_format_iso8601(now);
    ledger = qn_ledger_open(m->state_dir, &error);
    if (ledger == NULL) {
        qn_log("%s", error->message);
        return;
    }
    entry = qn_ledger_read(ledger, m->pid, NULL);
    record = qn_exit_record_to_json(m->pid, entry ? entry->name : NULL, ts, m->exit_status,
                                    m->exit_signal, reason);
    json_generator_set_root(gen, record);
    line = json_generator_to_data(gen, NULL);
    qn_exits_append(exits, line);
    qn_ledger_remove(ledger, m->pid, NULL);
    qn_ledger_remove_files(m->dir, m->pid);
    qn_log("QEMU pid %d exited (%s): ledger entry removed", m->pid, reason);
}

/* The exit status (or killing signal) of QEMU, our pid's zombie, from /proc/PID/stat field 52
 * (exit_code, Linux 3.5): readable from when the pidfd fires until QEMU's parent reaps it,
 * which usually comes after. Left unknown (-1, 0) when it is gone already. */
static void
qn_read_exit_code(QnMonitor *m)
{
    g_autofree gchar *path = g_strdup_printf("%s/%d/stat", m->proc_root, m->pid);
    g_autofree gchar *data = NULL;
    g_auto(GStrv) fields = NULL;
    const char *p;
    gint64 code;

    if (!g_file_get_contents(path, &data, NULL, NULL) || (p = strrchr(data, ')')) == NULL) {
        return;
    }
    fields = g_strsplit(p + 2, " ", -1);
    /* after ')': field 3 is index 0: state 0, starttime (22) 19, exit_code (52) 49 */
    if (g_strv_length(fields) < 50 || fields[0][0] != 'Z' ||
        (m->start_time > 0 && g_ascii_strtoull(fields[19], NULL, 10) != m->start_time) ||
        !g_ascii_string_to_signed(g_strstrip(fields[49]), 10, 0, G_MAXINT, &code, NULL)) {
        return;
    }
    if (WIFSIGNALED((int)code)) {
        m->exit_signal = WTERMSIG((int)code);
    } else if (WIFEXITED((int)code)) {
        m->exit_status = WEXITSTATUS((int)code);
    }
}

static gboolean
qn_on_pidfd(gint fd, GIOCondition cond, gpointer user)
{
    QnMonitor *m = user;

    qn_read_exit_code(m); /* first: QEMU's parent may reap it at any moment */
    m->qemu_gone = TRUE;
    g_main_loop_quit(m->loop);
    return G_SOURCE_REMOVE;
}

static void
qn_on_closed(QnQmpClient *client, const GError *reason, gpointer user)
{
    QnMonitor *m = user;

    /* QMP closes a moment before the process is gone: the pidfd says when. */
    m->qmp_closed = TRUE;
}

/* The plan recorded in this VM's ledger entry. */
static QnPlan *
qn_monitor_plan(QnMonitor *m)
{
    g_autoptr(QnLedger) ledger = qn_ledger_open(m->state_dir, NULL);
    g_autoptr(QnLedgerEntry) entry = ledger ? qn_ledger_read(ledger, m->pid, NULL) : NULL;

    return entry ? g_steal_pointer(&entry->plan) : NULL;
}

static gboolean
qn_set_affinity(gint tid, const QnBitmap *cpus)
{
    cpu_set_t set;

    CPU_ZERO(&set);
    QN_BITMAP_FOREACH(cpus, c) {
        if (c < CPU_SETSIZE) {
            CPU_SET(c, &set);
        }
    }
    return sched_setaffinity(tid, sizeof(set), &set) == 0;
}

/* The cpulist thread @tid may run on ("0-3"), or %NULL when it cannot be read. */
static gchar *
qn_get_affinity(gint tid)
{
    cpu_set_t set;
    g_autoptr(QnBitmap) b = qn_bitmap_new();

    if (sched_getaffinity(tid, sizeof(set), &set) != 0) {
        return NULL;
    }
    for (guint c = 0; c < CPU_SETSIZE; c++) {
        if (CPU_ISSET(c, &set)) {
            qn_bitmap_set(b, c);
        }
    }
    return qn_bitmap_format_list(b, ",");
}

/* Whether @tid is one of QEMU's own threads: listed under /proc/<QEMU pid>/task/. */
static gboolean
qn_is_qemu_thread(const QnMonitor *m, gint64 tid)
{
    g_autofree gchar *path = g_strdup_printf("%s/%d/task/%" G_GINT64_FORMAT, m->proc_root,
                                             m->pid, tid);

    return tid > 0 && tid <= G_MAXINT && g_file_test(path, G_FILE_TEST_IS_DIR);
}

/* thread id -> current cpulist of every vCPU thread QEMU reports (query-cpus-fast), or %NULL
 * when QMP does not answer. */
static GHashTable *
qn_vcpu_affinity(QnMonitor *m)
{
    g_autoptr(JsonNode) cpus = qn_qmp_client_execute_sync(m->qmp, "query-cpus-fast", NULL,
                                                          10000, NULL);
    GHashTable *h;

    if (cpus == NULL || !JSON_NODE_HOLDS_ARRAY(cpus)) {
        return NULL;
    }
    h = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
    for (guint i = 0; i < json_array_get_length(json_node_get_array(cpus)); i++) {
        JsonObject *c = json_array_get_object_element(json_node_get_array(cpus), i);
        gint64 tid = qn_json_get_int(c, "thread-id", 0);
        gchar *aff = qn_is_qemu_thread(m, tid) ? qn_get_affinity((gint)tid) : NULL;

        if (aff != NULL) {
            g_hash_table_insert(h, GINT_TO_POINTER((gint)tid), aff);
        }
    }
    return h;
}

/* A pinning to record in the entry: the monitor's, or the one the caller made. */
typedef struct {
    gboolean by_caller;
    GPtrArray *threads;       /* QnEntryThread* */
    QnBitmap *emulator_pcpus; /* nullable */
} QnPinRecord;

static void
qn_edit_pinning(QnLedgerEntry *e, gpointer data)
{
    QnPinRecord *r = data;

    e->pinned = TRUE;
    e->pinned_by_caller = r->by_caller;
    g_ptr_array_set_size(e->threads, 0);
    for (guint i = 0; i < r->threads->len; i++) {
        const QnEntryThread *t = g_ptr_array_index(r->threads, i);

        g_ptr_array_add(e->threads, qn_entry_thread_new(t->vcpu, t->thread_id, t->pcpus));
    }
    g_clear_pointer(&e->emulator_pcpus, qn_bitmap_free);
    e->emulator_pcpus = r->emulator_pcpus ? qn_bitmap_copy(r->emulator_pcpus) : NULL;
}

/* The pCPU the plan gives vCPU @index, or -1. */
static gint
qn_plan_pcpu_of(const QnPlan *plan, gint64 index)
{
    for (guint g = 0; g < plan->guest_nodes->len; g++) {
        const QnGuestNode *gn = g_ptr_array_index(plan->guest_nodes, g);
        guint pos = 0;

        QN_BITMAP_FOREACH(gn->vcpus, v) {
            if (v == index && pos < gn->pcpus->len) {
                return (gint)g_array_index(gn->pcpus, guint, pos);
            }
            pos++;
        }
    }
    return -1;
}

/* vCPU threads 1:1 on their pCPUs, every other thread on the emulator pCPUs (the placement of
 * KubeVirt's dedicatedCpuPlacement with isolateEmulatorThread, and of libvirt's <vcpupin> plus
 * <emulatorpin>, which the plan's "dedicated" mode follows). */
static gboolean
qn_pin(QnMonitor *m, const QnPlan *plan)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) cpus = qn_qmp_client_execute_sync(m->qmp, "query-cpus-fast", NULL,
                                                          10000, &error);
    g_autoptr(GHashTable) vcpu_tids = g_hash_table_new(g_direct_hash, g_direct_equal);
    g_autoptr(GPtrArray) threads = g_ptr_array_new_with_free_func(
        (GDestroyNotify)qn_entry_thread_free);
    QnPinRecord record = { FALSE, threads, plan->emulator_pcpus };
    g_autofree gchar *task_dir = g_strdup_printf("%s/%d/task", m->proc_root, m->pid);
    g_autoptr(GDir) d = NULL;
    const char *name;
    gboolean ok = TRUE;

    if (cpus == NULL || !JSON_NODE_HOLDS_ARRAY(cpus)) {
        qn_log("query-cpus-fast: %s", error ? error->message : "not an array");
        return FALSE;
    }
    for (guint i = 0; i < json_array_get_length(json_node_get_array(cpus)); i++) {
        JsonObject *c = json_array_get_object_element(json_node_get_array(cpus), i);
        gint64 index = qn_json_get_int(c, "cpu-index", -1);
        gint64 tid = qn_json_get_int(c, "thread-id", 0);
        gint pcpu = qn_plan_pcpu_of(plan, index);
        g_autoptr(QnBitmap) one = qn_bitmap_new();

        if (pcpu < 0 || tid <= 0) {
            continue;
        }
        if (!qn_is_qemu_thread(m, tid)) {
            /* QMP's thread ids are QEMU's word, not the kernel's: never pin another process */
            qn_log("vCPU %" G_GINT64_FORMAT ": thread id %" G_GINT64_FORMAT " is not a thread "
                   "of QEMU pid %d: not pinned", index, tid, m->pid);
            ok = FALSE;
            continue;
        }
        qn_bitmap_set(one, (guint)pcpu);
        if (!qn_set_affinity((gint)tid, one)) {
            qn_log("vCPU %" G_GINT64_FORMAT " thread %" G_GINT64_FORMAT ": "
                   "sched_setaffinity(%d): %s", index, tid, pcpu, g_strerror(errno));
            ok = FALSE;
        }
        g_hash_table_add(vcpu_tids, GINT_TO_POINTER((gint)tid));
        g_ptr_array_add(threads, qn_entry_thread_new((gint)index, tid, one));
    }
    d = g_dir_open(task_dir, 0, NULL);
    while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
        gint tid = (gint)g_ascii_strtoll(name, NULL, 10);

        if (tid > 0 && !g_hash_table_contains(vcpu_tids, GINT_TO_POINTER(tid)) &&
            !qn_set_affinity(tid, plan->emulator_pcpus)) {
            qn_log("emulator thread %d: sched_setaffinity: %s", tid, g_strerror(errno));
            ok = FALSE;
        }
    }
    qn_entry_update(m, qn_edit_pinning, &record);
    return ok;
}

/*
 * The caller started QEMU with -S (libvirt always does) and resumed it: its set-up is over.
 * libvirt moves vCPU threads into cgroups before `cont`, and with cgroup v1 a move into a
 * cpuset resets the thread's affinity, so pinning earlier would be undone. When the caller
 * pinned the vCPUs itself (libvirt <vcpupin>, <cputune>: a vCPU thread's affinity changed
 * since we connected), its choice is kept and recorded, and ours is not applied.
 */
static gboolean
qn_pin_deferred(gpointer user)
{
    QnMonitor *m = user;
    g_autoptr(GHashTable) now = qn_vcpu_affinity(m);
    g_autoptr(QnPlan) plan = g_steal_pointer(&m->pin_plan);
    g_autoptr(GPtrArray) threads = g_ptr_array_new_with_free_func(
        (GDestroyNotify)qn_entry_thread_free);
    QnPinRecord record = { TRUE, threads, NULL };
    GHashTableIter it;
    gpointer k, v;
    gboolean changed = FALSE;

    if (now == NULL) {
        qn_log("query-cpus-fast failed: vCPUs NOT pinned");
        return G_SOURCE_REMOVE;
    }
    g_hash_table_iter_init(&it, now);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        const char *before = m->vcpu_affinity ? g_hash_table_lookup(m->vcpu_affinity, k) : NULL;
        g_autoptr(QnBitmap) cpus = qn_bitmap_parse_list(v, NULL);

        changed |= g_strcmp0(before, v) != 0;
        g_ptr_array_add(threads, qn_entry_thread_new(-1, GPOINTER_TO_INT(k), cpus));
    }
    if (changed) {
        qn_entry_update(m, qn_edit_pinning, &record);
        qn_log("the caller pinned the vCPU threads itself: its pinning is kept");
    } else {
        qn_log("vCPU and emulator threads %s", qn_pin(m, plan) ? "pinned" : "NOT all pinned");
    }
    return G_SOURCE_REMOVE;
}

static void
qn_on_connected(GObject *source, GAsyncResult *res, gpointer user)
{
    QnMonitor *m = user;

    m->qmp = qn_qmp_client_connect_finish(res, &m->connect_error);
    g_main_loop_quit(m->loop);
}

int
qn_monitor_main(int argc, char **argv)
{
    QnMonitor m = { 0 };
    g_autoptr(GError) error = NULL;
    g_autofree gchar *sock = NULL;
    g_autofree gchar *user_dir = NULL;
    int pidfd;
    gint64 pid64;
    guint memdev_timer = 0;

    if (argc != 5 || !g_ascii_string_to_signed(argv[1], 10, 1, G_MAXINT, &pid64, NULL)) {
        fprintf(stderr, "usage: qemu-numa-monitor PID STATE_DIR PROC_ROOT cont|nocont\n");
        return 2;
    }
    m.pid = (gint)pid64;
    m.state_dir = argv[2];
    user_dir = qn_state_user_dir(m.state_dir);
    m.dir = user_dir;
    m.proc_root = argv[3];
    m.exit_status = -1;
    m.start_time = qn_proc_start_time(m.proc_root, m.pid);
    m.loop = g_main_loop_new(NULL, FALSE);
    pidfd = (int)syscall(SYS_pidfd_open, m.pid, 0);
    if (pidfd < 0 && errno == ESRCH) {
        /* QEMU exited (and was reaped) before this process got here, e.g. on a bad option:
         * its pages went with it; the entry must go too, not wait for a sweep. */
        m.early_exit = "exited before the monitor started";
        qn_finish(&m);
        g_main_loop_unref(m.loop);
        return 0;
    }
    if (pidfd < 0) {
        qn_log("pidfd_open(%d): %s", m.pid, g_strerror(errno));
        return 1;
    }
    g_unix_fd_add(pidfd, G_IO_IN, qn_on_pidfd, &m);
    sock = qn_ledger_socket_path(m.dir, m.pid, "monitor");
    /* Connect asynchronously, so that QEMU dying before its monitor is up (the pidfd fires)
     * ends the wait at once instead of at the connect timeout. Only to QEMU itself: the
     * launcher listened on this socket in the pid it then exec'd QEMU in, and whoever can
     * rename files in the state directory could have bound another server at this path
     * (whose query-cpus-fast thread ids we would pin). */
    qn_qmp_client_connect_peer_async(sock, m.pid, NULL, 60000, NULL, qn_on_connected, &m);
    g_main_loop_run(m.loop);
    if (m.qmp == NULL && !m.qemu_gone && m.connect_error != NULL) {
        qn_log("QMP %s: %s", sock, m.connect_error->message);
    }
    g_clear_error(&m.connect_error);
    if (m.qmp == NULL) {
        /* QEMU died before its monitor came up: nothing to watch, release the entry. */
        if (m.qemu_gone) {
            m.early_exit = "exited before its QMP monitor was up";
        }
        qn_log("QEMU pid %d gone before its QMP monitor answered", m.pid);
    } else {
        g_autoptr(JsonNode) st = NULL;

        g_autoptr(QnPlan) plan = qn_monitor_plan(&m);

        qn_qmp_client_set_event_handler(m.qmp, qn_on_event, &m, NULL);
        qn_qmp_client_set_closed_handler(m.qmp, qn_on_closed, &m, NULL);
        qn_migration_events_on(&m);
        if (plan != NULL && plan->dedicated) {
            g_autoptr(JsonNode) st0 = qn_qmp_client_execute_sync(m.qmp, "query-status", NULL,
                                                                 10000, NULL);
            gboolean running = st0 != NULL && JSON_NODE_HOLDS_OBJECT(st0) &&
                               json_object_get_boolean_member_with_default(
                                   json_node_get_object(st0), "running", FALSE);

            if (strcmp(argv[4], "cont") != 0 && !running) {
                /* the caller's -S: pin when the caller resumes the guest */
                m.vcpu_affinity = qn_vcpu_affinity(&m);
                m.pin_plan = g_steal_pointer(&plan);
                qn_log("pinning waits until the caller resumes the guest");
            } else {
                gboolean pinned = qn_pin(&m, plan);

                qn_log("vCPU and emulator threads %s", pinned ? "pinned" : "NOT all pinned");
            }
        }
        if (strcmp(argv[4], "cont") == 0) {
            g_autoptr(JsonNode) r = qn_qmp_client_execute_sync(m.qmp, "cont", NULL, 10000,
                                                               &error);

            if (r == NULL) {
                qn_log("cont: %s", error->message);
                g_clear_error(&error);
            }
        }
        st = qn_qmp_client_execute_sync(m.qmp, "query-status", NULL, 10000, &error);
        if (st != NULL && JSON_NODE_HOLDS_OBJECT(st)) {
            const char *status = qn_json_get_string(
                json_node_get_object(st), "status", "unknown");

            qn_entry_update(&m, qn_edit_qemu_status, (gpointer)status);
        }
        qn_measure_memory(&m);
        qn_check_memory_devices(&m);
        memdev_timer = g_timeout_add_seconds(QN_MEMDEV_POLL_S, qn_memdev_poll, &m);
        qn_log("watching QEMU pid %d", m.pid);
        if (!m.qemu_gone) {
            g_main_loop_run(m.loop);
        }
    }
    if (!m.qemu_gone) {
        /* wait for the process itself to be gone */
        while (!m.qemu_gone) {
            g_main_context_iteration(NULL, TRUE);
        }
    }
    if (memdev_timer != 0) {
        g_source_remove(memdev_timer);
    }
    qn_finish(&m);
    g_clear_object(&m.qmp);
    g_clear_pointer(&m.memory_devices, g_ptr_array_unref);
    g_free(m.last_shutdown_reason);
    qn_plan_free(m.pin_plan);
    g_clear_pointer(&m.vcpu_affinity, g_hash_table_unref);
    g_main_loop_unref(m.loop);
    close(pidfd);
    return 0;
}
