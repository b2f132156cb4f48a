#include "config.h"

#include "qn-ledger.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "qn-error.h"
#include "qn-json.h"
#include "qn-monitor.h"
#include "qn-plan-json.h"

QnLedger *
qn_ledger_open(const char *state_dir, GError **error)
{
    g_autofree gchar *lock = g_build_filename(state_dir, ".lock", NULL);
    QnLedger *l;
    int fd;

    if (g_mkdir_with_parents(state_dir, 0700) != 0) {
        g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "state directory '%s': %s", state_dir,
                    g_strerror(errno));
        return NULL;
    }
    /* O_NOFOLLOW: a symlink planted as .lock must not make us create or lock its target */
    fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "state directory '%s': %s", state_dir,
                    g_strerror(errno));
        return NULL;
    }
    {
        /* a hard link planted as .lock (fs.protected_hardlinks=0) must not become ours */
        struct stat lst;

        if (fstat(fd, &lst) != 0 || !S_ISREG(lst.st_mode) || lst.st_nlink != 1) {
            g_set_error(error, QN_ERROR, QN_ERROR_LEDGER,
                        "lock '%s': not a regular file with one link", lock);
            close(fd);
            return NULL;
        }
    }
    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "lock '%s': %s", lock,
                        g_strerror(errno));
            close(fd);
            return NULL;
        }
    }
    l = g_new0(QnLedger, 1);
    l->dir = g_strdup(state_dir);
    l->lock_fd = fd;
    {
        struct stat st;

        if (fstatat(AT_FDCWD, state_dir, &st, 0) == 0) {
            l->owner_uid = st.st_uid;
            l->owner_gid = st.st_gid;
        }
    }
    qn_ledger_give(l, lock);
    return l;
}

void
qn_ledger_give(const QnLedger *ledger, const char *path)
{
    struct stat st;

    /* Never a file with other names: with fs.protected_hardlinks=0 the directory's owner can
     * hard-link any file of the filesystem (/etc/shadow) under one of our names. */
    if (geteuid() == 0 && ledger->owner_uid != 0 && lstat(path, &st) == 0 &&
        (S_ISREG(st.st_mode) || S_ISSOCK(st.st_mode)) && st.st_nlink == 1) {
        /* best effort: a failure leaves the file root's, which root's own runs still read */
        (void)!lchown(path, ledger->owner_uid, ledger->owner_gid);
    }
}

void
qn_ledger_close(QnLedger *ledger)
{
    if (ledger == NULL) {
        return;
    }
    if (ledger->lock_fd >= 0) {
        close(ledger->lock_fd); /* releases the flock */
    }
    g_free(ledger->dir);
    g_free(ledger);
}

guint64
qn_proc_start_time(const char *proc_root, gint pid)
{
    g_autofree gchar *path = g_strdup_printf("%s/%d/stat", proc_root, pid);
    g_autofree gchar *data = NULL;
    const char *p;
    g_auto(GStrv) fields = NULL;

    if (pid <= 0 || !g_file_get_contents(path, &data, NULL, NULL)) {
        return 0;
    }
    /* comm (field 2) may hold spaces and ')': fields restart after the last ')'. */
    p = strrchr(data, ')');
    if (p == NULL) {
        return 0;
    }
    fields = g_strsplit(p + 2, " ", -1);
    /* after ')': field 3 is index 0, so starttime (22) is index 19. A zombie (state Z, or X)
     * has exited: its hugepages are already free, whoever reaps it later. */
    if (g_strv_length(fields) < 20 || fields[0][0] == 'Z' || fields[0][0] == 'X') {
        return 0;
    }
    return g_ascii_strtoull(fields[19], NULL, 10);
}

gchar *
qn_ledger_name_to_utf8(const char *raw)
{
    GString *out;
    const char *p, *end;

    if (raw == NULL) {
        return NULL;
    }
    if (g_utf8_validate(raw, -1, NULL)) {
        return g_strdup(raw);
    }
    out = g_string_new(NULL);
    p = raw;
    while (!g_utf8_validate(p, -1, &end)) {
        g_string_append_len(out, p, end - p);
        g_string_append_printf(out, "\\x%02x", (guint)(guchar)*end);
        p = end + 1;
    }
    g_string_append(out, p);
    return g_string_free(out, FALSE);
}

JsonNode *
qn_ledger_entry_new(const char *name, const char *uuid, gint pid, guint64 start_time,
                    const char *state, const QnPlan *plan)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    g_autofree gchar *created = g_date_time_format_iso8601(now);
    /* json-glib writes strings unchecked: a non-UTF-8 name (QEMU takes any bytes) would make
     * the whole entry unreadable, the VM invisible to list, status, sweep and its monitor */
    g_autofree gchar *name8 = qn_ledger_name_to_utf8(name);
    g_autofree gchar *uuid8 = qn_ledger_name_to_utf8(uuid);

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "version");
    json_builder_add_int_value(b, 1);
    json_builder_set_member_name(b, "name");
    name8 ? json_builder_add_string_value(b, name8) : json_builder_add_null_value(b);
    json_builder_set_member_name(b, "uuid");
    uuid8 ? json_builder_add_string_value(b, uuid8) : json_builder_add_null_value(b);
    json_builder_set_member_name(b, "pid");
    json_builder_add_int_value(b, pid);
    json_builder_set_member_name(b, "start_time");
    json_builder_add_int_value(b, (gint64)start_time);
    json_builder_set_member_name(b, "state");
    json_builder_add_string_value(b, state);
    json_builder_set_member_name(b, "created");
    json_builder_add_string_value(b, created);
    json_builder_set_member_name(b, "plan");
    json_builder_add_value(b, qn_plan_to_json(plan));
    json_builder_set_member_name(b, "reservations");
    json_builder_begin_array(b);
    json_builder_end_array(b);
    json_builder_set_member_name(b, "pinned_cpus");
    {
        g_autofree gchar *held = plan->held_pcpus ? qn_bitmap_format_list(plan->held_pcpus, ",")
                                                  : g_strdup("");

        json_builder_add_string_value(b, held);
    }
    json_builder_set_member_name(b, "events");
    json_builder_begin_array(b);
    json_builder_end_array(b);
    json_builder_end_object(b);
    return json_builder_get_root(b);
}

static gchar *
qn_entry_path(QnLedger *ledger, gint pid)
{
    g_autofree gchar *name = g_strdup_printf("%d.json", pid);

    return g_build_filename(ledger->dir, name, NULL);
}

/* Atomic replace of @dir/@name: a temporary file beside it (".<name>.XXXXXX": qn_ledger_list
 * skips dot files), fsync, rename; the temporary file is removed on failure. Returns 0 or
 * -errno (a full or read-only state directory: ENOSPC, EROFS, EDQUOT). */
static int
qn_write_atomic(const char *dir, const char *name, const char *data, gsize len)
{
    g_autofree gchar *tmp = g_strdup_printf("%s/.%s.XXXXXX", dir, name);
    g_autofree gchar *path = g_build_filename(dir, name, NULL);
    int fd = g_mkstemp_full(tmp, O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
    gsize done = 0;
    int err = 0;

    if (fd < 0) {
        return -errno;
    }
    while (done < len) {
        ssize_t n = write(fd, data + done, len - done);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            err = -errno;
            break;
        }
        done += (gsize)n;
    }
    if (err == 0 && fsync(fd) != 0) {
        err = -errno;
    }
    if (close(fd) != 0 && err == 0) {
        err = -errno;
    }
    if (err == 0 && rename(tmp, path) != 0) {
        err = -errno;
    }
    if (err != 0) {
        unlink(tmp);
    }
    return err;
}

gboolean
qn_ledger_write(QnLedger *ledger, gint pid, JsonNode *entry, GError **error)
{
    g_autofree gchar *name = g_strdup_printf("%d.json", pid);
    g_autoptr(JsonGenerator) gen = json_generator_new();
    g_autofree gchar *data = NULL;
    gsize len;
    int r;

    json_generator_set_pretty(gen, TRUE);
    json_generator_set_root(gen, entry);
    data = json_generator_to_data(gen, &len);
    r = qn_write_atomic(ledger->dir, name, data, len);
    if (r < 0) {
        /* one line naming the directory: glib's own message quoted both temporary paths */
        g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "state directory '%s': writing %s: %s",
                    ledger->dir, name, g_strerror(-r));
        return FALSE;
    }
    {
        g_autofree gchar *path = qn_entry_path(ledger, pid);

        qn_ledger_give(ledger, path); /* under the lock: no reader sees root's file */
    }
    return TRUE;
}

JsonNode *
qn_ledger_entry_parse(const char *data, gsize len, GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autoptr(JsonNode) root = NULL;

    /* Any user of the state directory writes here: bounded before json-glib recurses. */
    root = qn_json_parse_bounded(data, len, QN_JSON_MAX_DEPTH, QN_LEDGER_ENTRY_MAX_LEN, &local);
    if (root == NULL) {
        g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "%s", local->message);
        return NULL;
    }
    if (!JSON_NODE_HOLDS_OBJECT(root)) {
        g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "not a JSON object");
        return NULL;
    }
    return g_steal_pointer(&root);
}

gboolean
qn_file_read_untrusted(const char *path, gsize max_len, gchar **ret_data, gsize *ret_len,
                       GError **error)
{
    g_autofree gchar *data = NULL;
    struct stat st;
    gsize len = 0;
    int fd;

    g_assert(path != NULL && ret_data != NULL && ret_len != NULL);
    /* O_NOFOLLOW: a planted symlink (to a secret, to /dev/zero) is refused, not read through;
     * O_NONBLOCK: opening a planted FIFO returns at once instead of waiting for a writer */
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "%s", g_strerror(errno));
        return FALSE;
    }
    if (fstat(fd, &st) != 0) {
        g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "%s", g_strerror(errno));
        close(fd);
        return FALSE;
    }
    if (!S_ISREG(st.st_mode)) {
        g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "not a regular file");
        close(fd);
        return FALSE;
    }
    if ((guint64)st.st_size > max_len) {
        g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "longer than %" G_GSIZE_FORMAT " bytes",
                    max_len);
        close(fd);
        return FALSE;
    }
    /* the size may change under us: read at most one byte more than the cap, to see it */
    data = g_malloc(max_len + 2);
    while (len <= max_len) {
        ssize_t n = read(fd, data + len, max_len + 1 - len);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "%s", g_strerror(errno));
            close(fd);
            return FALSE;
        }
        if (n == 0) {
            break;
        }
        len += (gsize)n;
    }
    close(fd);
    if (len > max_len) {
        g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "longer than %" G_GSIZE_FORMAT " bytes",
                    max_len);
        return FALSE;
    }
    data[len] = '\0';
    *ret_data = g_realloc(g_steal_pointer(&data), len + 1);
    *ret_len = len;
    return TRUE;
}

/* The entry in file @path: the same parser as every other reader, so fuzzing it covers them. */
static JsonNode *
qn_ledger_entry_load(const char *path, GError **error)
{
    g_autofree gchar *data = NULL;
    gsize len = 0;
    g_autoptr(GError) local = NULL;
    JsonNode *root;

    if (!qn_file_read_untrusted(path, QN_LEDGER_ENTRY_MAX_LEN, &data, &len, &local)) {
        g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "ledger '%s': %s", path, local->message);
        return NULL;
    }
    root = qn_ledger_entry_parse(data, len, error);
    if (root == NULL) {
        g_prefix_error(error, "ledger '%s': ", path);
    }
    return root;
}

JsonNode *
qn_ledger_read(QnLedger *ledger, gint pid, GError **error)
{
    g_autofree gchar *path = qn_entry_path(ledger, pid);

    return qn_ledger_entry_load(path, error);
}

gboolean
qn_ledger_remove(QnLedger *ledger, gint pid, GError **error)
{
    g_autofree gchar *path = qn_entry_path(ledger, pid);

    if (g_unlink(path) != 0 && errno != ENOENT) {
        g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "ledger '%s': %s", path,
                    g_strerror(errno));
        return FALSE;
    }
    return TRUE;
}

static gboolean
qn_entry_name_matches(JsonObject *o, const char *file_name)
{
    JsonNode *pid = json_object_get_member(o, "pid");
    g_autofree gchar *want = NULL;

    if (pid == NULL || !JSON_NODE_HOLDS_VALUE(pid) ||
        json_node_get_value_type(pid) != G_TYPE_INT64) {
        return FALSE;
    }
    /* pid 1 is init, never a QEMU we exec'd (issue 12: a forged 1.json claiming the whole
     * host survived every sweep, since init is alive with the start time it gave) */
    if (json_node_get_int(pid) <= 1) {
        return FALSE;
    }
    want = g_strdup_printf("%" G_GINT64_FORMAT ".json", json_node_get_int(pid));
    return strcmp(want, file_name) == 0;
}

static gint
qn_entry_cmp(gconstpointer a, gconstpointer b)
{
    JsonObject *x = json_node_get_object(*(JsonNode *const *)a);
    JsonObject *y = json_node_get_object(*(JsonNode *const *)b);
    gint64 px = qn_json_get_int(x, "pid", 0);
    gint64 py = qn_json_get_int(y, "pid", 0);

    return px < py ? -1 : px > py;
}

GPtrArray *
qn_ledger_list(QnLedger *ledger, GPtrArray **ret_bad)
{
    GPtrArray *entries = g_ptr_array_new_with_free_func((GDestroyNotify)json_node_unref);
    g_autoptr(GDir) d = g_dir_open(ledger->dir, 0, NULL);
    const char *name;

    if (ret_bad != NULL) {
        *ret_bad = g_ptr_array_new_with_free_func(g_free);
    }
    while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
        g_autofree gchar *path = NULL;
        g_autoptr(JsonNode) root = NULL;

        /* temporary files of an interrupted atomic write are ".<name>.XXXXXX" */
        if (!g_str_has_suffix(name, ".json") || name[0] == '.') {
            continue;
        }
        path = g_build_filename(ledger->dir, name, NULL);
        /* An entry is "<pid>.json" holding that pid: a file claiming another VM's pid (a
         * copy edited by hand) must not make a sweep delete that VM's own entry. */
        root = qn_ledger_entry_load(path, NULL);
        if (root == NULL || !qn_entry_name_matches(json_node_get_object(root), name)) {
            if (ret_bad != NULL) {
                g_ptr_array_add(*ret_bad, g_strdup(name));
            }
            continue;
        }
        g_ptr_array_add(entries, g_steal_pointer(&root));
    }
    g_ptr_array_sort(entries, qn_entry_cmp);
    return entries;
}

guint
qn_ledger_sweep(QnLedger *ledger, const char *proc_root)
{
    g_autoptr(GPtrArray) entries = qn_ledger_list(ledger, NULL);
    guint removed = 0;

    for (guint i = 0; i < entries->len; i++) {
        JsonObject *o = json_node_get_object(g_ptr_array_index(entries, i));
        gint pid = (gint)json_object_get_int_member_with_default(o, "pid", 0);
        JsonNode *st = json_object_get_member(o, "start_time");
        gboolean known = st != NULL && JSON_NODE_HOLDS_VALUE(st) &&
                         json_node_get_value_type(st) == G_TYPE_INT64 && json_node_get_int(st) > 0;
        guint64 now = qn_proc_start_time(proc_root, pid);

        /* Stale: the process is gone, or its pid now belongs to a process started at another
         * time. A start time that cannot be compared (removed or mangled by hand, or not
         * readable at launch) leaves the pid alone to decide: a live VM's entry is never
         * dropped on a guess. */
        if (now == 0 || (known && now != (guint64)json_node_get_int(st))) {
            /* the QMP sockets the launcher added for this VM go with it */
            qn_monitor_remove_sockets(ledger->dir, pid);
            removed += qn_ledger_remove(ledger, pid, NULL);
        }
    }
    return removed;
}

void
qn_ledger_entry_add_reservations(JsonObject *entry, QnReservations *r)
{
    const char *state = qn_json_get_string(entry, "state", "");
    g_autoptr(GError) err = NULL;
    g_autoptr(QnPlan) plan = qn_plan_from_json(json_object_get_member(entry, "plan"), &err);

    if (plan == NULL || plan->kind != QN_PLAN_ALIGNED) {
        return;
    }
    for (guint k = 0; k < plan->guest_nodes->len; k++) {
        const QnGuestNode *g = g_ptr_array_index(plan->guest_nodes, k);
        guint nh = qn_bitmap_count(g->host_nodes);

        if (nh == 0 || (g->page_size != 0 && strcmp(state, "reserving") != 0)) {
            continue;
        }
        QN_BITMAP_FOREACH(g->host_nodes, h) {
            qn_reservations_add(r, (guint)h, g->page_size, g->bytes / nh);
        }
    }
    {
        g_autoptr(QnBitmap) pinned = qn_bitmap_parse_list(
            qn_json_get_string(entry, "pinned_cpus", ""), NULL);

        if (pinned != NULL) {
            qn_bitmap_or(r->pinned_cpus, pinned);
        }
    }
}

QnReservations *
qn_ledger_reservations(QnLedger *ledger)
{
    QnReservations *r = qn_reservations_new();
    g_autoptr(GPtrArray) entries = qn_ledger_list(ledger, NULL);

    for (guint i = 0; i < entries->len; i++) {
        qn_ledger_entry_add_reservations(json_node_get_object(g_ptr_array_index(entries, i)), r);
    }
    return r;
}
