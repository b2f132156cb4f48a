#include "config.h"

#include "qn-ledger.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "qn-error.h"
#include "qn-json.h"

gchar *
qn_state_user_name(uid_t uid)
{
    struct passwd pw, *res = NULL;
    char buf[4096];

    if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res != NULL &&
        res->pw_name[0] != '\0' && res->pw_name[0] != '.' && strchr(res->pw_name, '/') == NULL) {
        return g_strdup(res->pw_name);
    }
    return g_strdup_printf("%u", (guint)uid);
}

gchar *
qn_state_user_dir(const char *state_dir)
{
    g_autofree gchar *name = qn_state_user_name(geteuid());

    return g_build_filename(state_dir, name, NULL);
}

/* Any owner will do, for qn_check_dir(). */
#define QN_ANY_UID ((uid_t)-1)

/* @path must be a directory (not a link) owned by @want_a or @want_b (either QN_ANY_UID: any
 * owner), writable by its owner only; its stat in *@ret_st. One line naming @path otherwise
 * (%QN_ERROR_LEDGER). */
static gboolean
qn_check_dir(const char *path, uid_t want_a, uid_t want_b, struct stat *ret_st, GError **error)
{
    struct stat st;

    if (lstat(path, &st) != 0) {
        g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "state directory '%s': %s", path,
                    g_strerror(errno));
        return FALSE;
    }
    if (!S_ISDIR(st.st_mode)) {
        g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "state directory '%s': not a directory",
                    path);
        return FALSE;
    }
    if (want_a != QN_ANY_UID && st.st_uid != want_a && st.st_uid != want_b) {
        g_autofree gchar *owner = qn_state_user_name(st.st_uid);
        g_autofree gchar *me = qn_state_user_name(want_b);

        g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "state directory '%s': owned by %s, not "
                    "by %s: Permission denied", path, owner, me);
        return FALSE;
    }
    if ((st.st_mode & 022) != 0) {
        g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "state directory '%s': writable by group "
                    "or others (mode %04o)", path, (guint)(st.st_mode & 07777));
        return FALSE;
    }
    if (ret_st != NULL) {
        *ret_st = st;
    }
    return TRUE;
}

static QnLedger *qn_ledger_open_full(const char *state_dir, gboolean writer, GError **error);

/* mkdir @path 0755 if missing (EEXIST is fine), mode set exactly, whatever the umask. */
static gboolean
qn_make_dir(const char *path, GError **error)
{
    if (mkdir(path, 0755) == 0) {
        if (chmod(path, 0755) != 0) {
            g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "state directory '%s': %s", path,
                        g_strerror(errno));
            return FALSE;
        }
    } else if (errno != EEXIST) {
        g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "state directory '%s': %s", path,
                    g_strerror(errno));
        return FALSE;
    }
    return TRUE;
}

QnLedger *
qn_ledger_open(const char *state_dir, GError **error)
{
    return qn_ledger_open_full(state_dir, TRUE, error);
}

QnLedger *
qn_ledger_open_read(const char *state_dir, GError **error)
{
    return qn_ledger_open_full(state_dir, FALSE, error);
}

static QnLedger *
qn_ledger_open_full(const char *state_dir, gboolean writer, GError **error)
{
    g_autofree gchar *lock = g_build_filename(state_dir, ".lock", NULL);
    g_autofree gchar *dir = qn_state_user_dir(state_dir);
    uid_t me = geteuid();
    struct stat top_st, lst;
    gint64 deadline;
    QnLedger *l;
    int fd;

    g_assert(state_dir != NULL);
    /* the top: root's (or, for a user's private set-up, the user's own), 0755 */
    if (!g_file_test(state_dir, G_FILE_TEST_EXISTS)) {
        g_autofree gchar *parent = g_path_get_dirname(state_dir);

        if (g_mkdir_with_parents(parent, 0755) != 0 || !qn_make_dir(state_dir, NULL)) {
            g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "state directory '%s': %s", state_dir,
                        g_strerror(errno));
            return NULL;
        }
    }
    /* A writer's files go under it: it must be root's or ours. A reader only reads, every file
     * as hostile input, so root's qemu-numa-ctl also reads a user's own state directory. */
    if (!qn_check_dir(state_dir, writer ? 0 : QN_ANY_UID, me, &top_st, error)) {
        return NULL;
    }
    /* this user's directory: only the top's owner can make it (the package makes
     * libvirt-qemu's); nobody else may write in it */
    if (writer && (!qn_make_dir(dir, error) || !qn_check_dir(dir, me, me, NULL, error))) {
        return NULL;
    }
    /* The lock belongs to the top's owner, readable by all: flock needs no write access, so
     * every user's launchers serialise on the same file, and no one else's file is ours. */
    if (top_st.st_uid == me) {
        fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd >= 0) {
            (void)!fchmod(fd, 0644);
        }
    } else {
        fd = open(lock, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    }
    if (fd < 0) {
        g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "state directory '%s': lock '%s': %s",
                    state_dir, lock, g_strerror(errno));
        return NULL;
    }
    /* a hard link planted as .lock (fs.protected_hardlinks=0) is another file */
    if (fstat(fd, &lst) != 0 || !S_ISREG(lst.st_mode) || lst.st_nlink != 1 ||
        lst.st_uid != top_st.st_uid) {
        g_set_error(error, QN_ERROR, QN_ERROR_LEDGER,
                    "lock '%s': not a regular file of the state directory's owner", lock);
        close(fd);
        return NULL;
    }
    /* Bounded: another user of the host (a compromised QEMU's user) can take this lock too,
     * and could hold it to stall every launch; it cannot make one wait forever. */
    deadline = g_get_monotonic_time() + QN_LEDGER_LOCK_WAIT_S * G_USEC_PER_SEC;
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "lock '%s': %s", lock,
                        g_strerror(errno));
            close(fd);
            return NULL;
        }
        if (g_get_monotonic_time() > deadline) {
            g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "lock '%s': held by another process "
                        "for %d s", lock, QN_LEDGER_LOCK_WAIT_S);
            close(fd);
            return NULL;
        }
        g_usleep(2000);
    }
    l = g_new0(QnLedger, 1);
    l->top = g_strdup(state_dir);
    l->dir = g_steal_pointer(&dir);
    l->lock_fd = fd;
    return l;
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
    g_free(ledger->top);
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

static gchar *
qn_entry_path(QnLedger *ledger, gint pid)
{
    g_autofree gchar *name = g_strdup_printf("%d.json", pid);

    return g_build_filename(ledger->dir, name, NULL);
}

/* Atomic replace of @dir/@name: a temporary file beside it (".<name>.XXXXXX": qn_ledger_list
 * skips dot files), then rename; the temporary file is removed on failure. Returns 0 or
 * -errno (a full or read-only state directory: ENOSPC, EROFS, EDQUOT).
 * No fsync: an entry describes pages held by a live process's fds, and the only failures
 * fsync guards against (power loss, a kernel crash) end every such process and free every
 * such page, so every entry is stale after them whatever reached the disk. A process killed
 * at any point loses nothing (the page cache outlives it) and rename(2) keeps readers from
 * ever seeing half an entry. On a disk-backed state directory the fsync cost 7 ms per write,
 * two writes per launch (bench/launch.c, "Where the fixed cost goes"); on /run (tmpfs) it
 * is a no-op. */
static int
qn_write_atomic(const char *dir, const char *name, const char *data, gsize len)
{
    g_autofree gchar *tmp = g_strdup_printf("%s/.%s.XXXXXX", dir, name);
    g_autofree gchar *path = g_build_filename(dir, name, NULL);
    /* 0644: every user's launchers read every entry (the host's books); only we write it */
    int fd = g_mkstemp_full(tmp, O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
    gsize done = 0;
    int err = 0;

    if (fd < 0 || fchmod(fd, 0644) != 0) { /* whatever the caller's umask */
        int e = errno;

        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        return -e;
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
qn_ledger_write(QnLedger *ledger, const QnLedgerEntry *entry, GError **error)
{
    g_autofree gchar *name = NULL;
    g_autoptr(JsonGenerator) gen = json_generator_new();
    g_autoptr(JsonNode) root = NULL;
    g_autofree gchar *data = NULL;
    gsize len;
    int r;

    g_assert(ledger != NULL && entry != NULL);
    name = g_strdup_printf("%d.json", entry->pid);
    root = qn_ledger_entry_to_json(entry, FALSE);
    json_generator_set_pretty(gen, TRUE);
    json_generator_set_root(gen, root);
    data = json_generator_to_data(gen, &len);
    r = qn_write_atomic(ledger->dir, name, data, len);
    if (r < 0) {
        /* one line naming the directory: glib's own message quoted both temporary paths */
        g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "state directory '%s': writing %s: %s",
                    ledger->dir, name, g_strerror(-r));
        return FALSE;
    }
    return TRUE;
}

gchar *
qn_ledger_socket_path(const char *dir, gint pid, const char *which)
{
    g_autofree gchar *name = g_strdup_printf("%d%s.qmp", pid,
                                             g_strcmp0(which, "ctl") == 0 ? ".ctl" : "");

    return g_build_filename(dir, name, NULL);
}

gchar *
qn_ledger_log_path(const char *dir, gint pid)
{
    g_autofree gchar *name = g_strdup_printf("%d.log", pid);

    return g_build_filename(dir, name, NULL);
}

gchar *
qn_ledger_exits_path(const char *dir)
{
    return g_build_filename(dir, "exits.jsonl", NULL);
}

gchar *
qn_ledger_launches_path(const char *dir)
{
    return g_build_filename(dir, "launches.jsonl", NULL);
}

static int
qn_jsonl_open(const char *path)
{
    return open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY |
                O_NONBLOCK, 0600);
}

gboolean
qn_ledger_append_line(const char *path, const char *line, GError **error)
{
    g_autofree gchar *data = NULL;
    struct stat st;
    int fd, err;
    gsize len;
    gssize n;

    g_assert(path != NULL && line != NULL);
    fd = qn_jsonl_open(path);
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
        (guint64)st.st_size >= QN_LEDGER_JSONL_MAX) {
        g_autofree gchar *old = g_strconcat(path, ".1", NULL);

        close(fd);
        fd = rename(path, old) == 0 ? qn_jsonl_open(path) : -1;
    }
    if (fd < 0) {
        err = errno;
        g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "'%s': %s", path, g_strerror(err));
        return FALSE;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
        /* a hard link (or a FIFO) planted under our name: never append to another file */
        close(fd);
        g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "'%s': not a regular file with one link",
                    path);
        return FALSE;
    }
    /* one write(2) of the whole line: O_APPEND keeps concurrent writers' lines whole */
    data = g_strconcat(line, "\n", NULL);
    len = strlen(data);
    n = write(fd, data, len);
    err = errno;
    close(fd);
    if (n != (gssize)len) {
        g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "'%s': %s", path,
                    n < 0 ? g_strerror(err) : "short write");
        return FALSE;
    }
    return TRUE;
}

gboolean
qn_ledger_record_launch(QnLedger *ledger, const QnLaunchRecord *record, GError **error)
{
    g_autofree gchar *path = NULL;
    g_autofree gchar *line = NULL;
    g_autoptr(JsonNode) node = NULL;
    g_autoptr(JsonGenerator) gen = json_generator_new();

    g_assert(ledger != NULL && record != NULL);
    path = qn_ledger_launches_path(ledger->dir);
    node = qn_launch_record_to_json(record);
    json_generator_set_root(gen, node);
    line = json_generator_to_data(gen, NULL);
    return qn_ledger_append_line(path, line, error);
}

GPtrArray *
qn_ledger_read_launches(const char *dir)
{
    GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)qn_launch_record_free);
    g_autofree gchar *path = NULL;
    struct stat dst;

    g_assert(dir != NULL);
    /* only the directory owner's own file: a link into another user's file is not theirs */
    if (lstat(dir, &dst) != 0 || !S_ISDIR(dst.st_mode)) {
        return out;
    }
    path = qn_ledger_launches_path(dir);
    /* the older generation first, so the records come oldest first */
    for (guint gen = 0; gen < 2; gen++) {
        g_autofree gchar *file = gen == 0 ? g_strconcat(path, ".1", NULL) : g_strdup(path);
        g_autofree gchar *data = NULL;
        g_auto(GStrv) lines = NULL;
        gsize len = 0;

        if (!qn_file_read_untrusted(file, dst.st_uid, QN_LEDGER_JSONL_READ_MAX, &data, &len,
                                    NULL)) {
            continue;
        }
        lines = g_strsplit(data, "\n", -1);
        for (guint i = 0; lines[i] != NULL; i++) {
            g_autoptr(JsonNode) node = NULL;
            QnLaunchRecord *r;

            if (lines[i][0] == '\0') {
                continue;
            }
            node = qn_json_parse_bounded(lines[i], strlen(lines[i]), QN_JSON_MAX_DEPTH,
                                         QN_LEDGER_JSONL_READ_MAX, NULL);
            r = node ? qn_launch_record_from_json(node, NULL) : NULL;
            if (r != NULL) {
                g_ptr_array_add(out, r);
            }
        }
    }
    return out;
}

void
qn_ledger_remove_files(const char *dir, gint pid)
{
    g_autofree gchar *mon = qn_ledger_socket_path(dir, pid, "monitor");
    g_autofree gchar *ctl = qn_ledger_socket_path(dir, pid, "ctl");
    g_autofree gchar *log = qn_ledger_log_path(dir, pid);

    g_unlink(mon);
    g_unlink(ctl);
    g_unlink(log); /* the VM's story is its exits.jsonl record from here on */
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
qn_file_read_untrusted(const char *path, uid_t owner, gsize max_len, gchar **ret_data,
                       gsize *ret_len, GError **error)
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
    if (owner != (uid_t)-1 && st.st_uid != owner) {
        g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "owned by uid %u, not %u",
                    (guint)st.st_uid, (guint)owner);
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

QnLedgerEntry *
qn_ledger_entry_from_data(const char *data, gsize len, GError **error)
{
    g_autoptr(JsonNode) root = qn_ledger_entry_parse(data, len, error);

    return root ? qn_ledger_entry_from_json(root, error) : NULL;
}

/* The entry in file @path, which must belong to @owner: the same parser as every other
 * reader, so fuzzing it covers them. */
static QnLedgerEntry *
qn_ledger_entry_load(const char *path, uid_t owner, GError **error)
{
    g_autofree gchar *data = NULL;
    gsize len = 0;
    g_autoptr(GError) local = NULL;
    QnLedgerEntry *e;

    if (!qn_file_read_untrusted(path, owner, QN_LEDGER_ENTRY_MAX_LEN, &data, &len, &local)) {
        g_set_error(error, QN_ERROR, QN_ERROR_LEDGER, "ledger '%s': %s", path, local->message);
        return NULL;
    }
    e = qn_ledger_entry_from_data(data, len, error);
    if (e == NULL) {
        g_prefix_error(error, "ledger '%s': ", path);
    }
    return e;
}

QnLedgerEntry *
qn_ledger_read(QnLedger *ledger, gint pid, GError **error)
{
    g_autofree gchar *path = qn_entry_path(ledger, pid);

    return qn_ledger_entry_load(path, geteuid(), error);
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

/* An entry is "<pid>.json" holding that pid (the reader refuses pid 1 and below: init is
 * never a QEMU we exec'd, and issue 12 found a forged 1.json claiming the whole host survived
 * every sweep, since init is alive with the start time it gave). */
static gboolean
qn_entry_name_matches(const QnLedgerEntry *e, const char *file_name)
{
    g_autofree gchar *want = g_strdup_printf("%d.json", e->pid);

    return strcmp(want, file_name) == 0;
}

static gint
qn_entry_cmp(gconstpointer a, gconstpointer b)
{
    const QnLedgerEntry *x = *(QnLedgerEntry *const *)a;
    const QnLedgerEntry *y = *(QnLedgerEntry *const *)b;

    return x->pid < y->pid ? -1 : x->pid > y->pid;
}

/* Entries of one user's directory @top/@user into @entries (each given its user from the
 * directory, never from the file), bad files as "user/name" into @bad. The directory must
 * be the user's own (its name is its owner's), writable by it alone; each file must belong
 * to that owner. */
static void
qn_ledger_list_user(const char *top, const char *user, GPtrArray *entries, GPtrArray *bad)
{
    g_autofree gchar *dir = g_build_filename(top, user, NULL);
    g_autofree gchar *owner_name = NULL;
    g_autoptr(GDir) d = NULL;
    struct stat st;
    const char *name;

    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        return; /* not a user's directory: old-layout files, the lock, anything else */
    }
    owner_name = qn_state_user_name(st.st_uid);
    if (strcmp(owner_name, user) != 0 || (st.st_mode & 022) != 0) {
        if (bad != NULL) {
            g_ptr_array_add(bad, g_strdup_printf("%s/", user));
        }
        return;
    }
    d = g_dir_open(dir, 0, NULL);
    while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
        g_autofree gchar *path = NULL;
        g_autoptr(QnLedgerEntry) e = NULL;

        /* temporary files of an interrupted atomic write are ".<name>.XXXXXX" */
        if (!g_str_has_suffix(name, ".json") || name[0] == '.') {
            continue;
        }
        path = g_build_filename(dir, name, NULL);
        /* A file claiming another VM's pid (a copy edited by hand) must not make a sweep
         * delete that VM's own entry. */
        e = qn_ledger_entry_load(path, st.st_uid, NULL);
        if (e == NULL || !qn_entry_name_matches(e, name)) {
            if (bad != NULL) {
                g_ptr_array_add(bad, g_strdup_printf("%s/%s", user, name));
            }
            continue;
        }
        g_free(e->user);
        e->user = g_strdup(user);
        g_ptr_array_add(entries, g_steal_pointer(&e));
    }
}

GPtrArray *
qn_ledger_list(QnLedger *ledger, GPtrArray **ret_bad)
{
    GPtrArray *entries = g_ptr_array_new_with_free_func((GDestroyNotify)qn_ledger_entry_free);
    g_autoptr(GDir) d = g_dir_open(ledger->top, 0, NULL);
    const char *name;

    if (ret_bad != NULL) {
        *ret_bad = g_ptr_array_new_with_free_func(g_free);
    }
    while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
        if (name[0] != '.') {
            qn_ledger_list_user(ledger->top, name, entries, ret_bad ? *ret_bad : NULL);
        }
    }
    g_ptr_array_sort(entries, qn_entry_cmp);
    return entries;
}

/* Whether entry @e names a live process of its user: the pid alive (not a zombie), started
 * when the entry says (a start time of 0, unknown, leaves it to the pid), and run by the
 * entry's user, unless that user is root (root's launches may run QEMU as anyone).
 * Sets *@ret_stale when the process is gone. */
static gboolean
qn_entry_counts(const QnLedgerEntry *e, const char *top, const char *proc_root,
                gboolean *ret_stale)
{
    guint64 now = qn_proc_start_time(proc_root, e->pid);
    g_autofree gchar *pdir = g_strdup_printf("%s/%d", proc_root, e->pid);
    g_autofree gchar *udir = g_build_filename(top, e->user ? e->user : "?", NULL);
    struct stat pst, ust;

    *ret_stale = now == 0 || (e->start_time > 0 && now != e->start_time);
    if (*ret_stale) {
        return FALSE;
    }
    if (lstat(udir, &ust) != 0 || stat(pdir, &pst) != 0) {
        return FALSE;
    }
    return ust.st_uid == 0 || pst.st_uid == ust.st_uid;
}

/* "<pid>.log", "<pid>.qmp" or "<pid>.ctl.qmp": the pid, else 0 */
static gint
qn_vm_file_pid(const char *name)
{
    static const char *const suffixes[] = { ".log", ".ctl.qmp", ".qmp" };

    for (guint i = 0; i < G_N_ELEMENTS(suffixes); i++) {
        if (g_str_has_suffix(name, suffixes[i])) {
            g_autofree gchar *num = g_strndup(name, strlen(name) - strlen(suffixes[i]));
            gint64 pid;

            return g_ascii_string_to_signed(num, 10, 2, G_MAXINT, &pid, NULL) ? (gint)pid : 0;
        }
    }
    return 0;
}

/* Sockets and logs in @dir of VMs that have no entry (@entries) and no process: a monitor
 * killed before it cleaned up, or one of version 1, which left logs of failed launches. */
static void
qn_sweep_orphans(const char *dir, GPtrArray *entries, const char *user, const char *proc_root)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;

    while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
        gint pid = qn_vm_file_pid(name);
        gboolean has_entry = FALSE;

        for (guint i = 0; pid > 0 && i < entries->len; i++) {
            const QnLedgerEntry *e = g_ptr_array_index(entries, i);

            has_entry |= e->pid == pid && g_strcmp0(e->user, user) == 0;
        }
        if (pid > 0 && !has_entry && qn_proc_start_time(proc_root, pid) == 0) {
            g_autofree gchar *path = g_build_filename(dir, name, NULL);

            g_unlink(path);
        }
    }
}

guint
qn_ledger_sweep(QnLedger *ledger, const char *proc_root)
{
    g_autoptr(GPtrArray) entries = qn_ledger_list(ledger, NULL);
    g_autofree gchar *me = qn_state_user_name(geteuid());
    guint removed = 0;

    for (guint i = 0; i < entries->len; i++) {
        const QnLedgerEntry *e = g_ptr_array_index(entries, i);
        gboolean stale;

        /* Stale: the process is gone, or its pid now belongs to a process started at another
         * time. A start time that cannot be compared (removed or mangled by hand, or not
         * readable at launch) leaves the pid alone to decide: a live VM's entry is never
         * dropped on a guess. Only our own entries go, or anyone's when we are root. */
        qn_entry_counts(e, ledger->top, proc_root, &stale);
        if (stale && (geteuid() == 0 || strcmp(e->user, me) == 0)) {
            g_autofree gchar *dir = g_build_filename(ledger->top, e->user, NULL);
            g_autofree gchar *path = g_strdup_printf("%s/%d.json", dir, e->pid);

            /* the QMP sockets and log the launcher and monitor made for this VM go with it */
            qn_ledger_remove_files(dir, e->pid);
            removed += g_unlink(path) == 0;
        }
    }
    {
        /* what a VM left beside no entry: ours, or every user's when we are root */
        g_autoptr(GDir) d = g_dir_open(ledger->top, 0, NULL);
        const char *user;

        while (d != NULL && (user = g_dir_read_name(d)) != NULL) {
            g_autofree gchar *dir = g_build_filename(ledger->top, user, NULL);
            struct stat st;

            if (user[0] != '.' && (geteuid() == 0 || strcmp(user, me) == 0) &&
                lstat(dir, &st) == 0 && S_ISDIR(st.st_mode)) {
                qn_sweep_orphans(dir, entries, user, proc_root);
            }
        }
    }
    return removed;
}

void
qn_ledger_entry_add_reservations(const QnLedgerEntry *entry, QnReservations *r)
{
    const QnPlan *plan = entry->plan;

    if (plan == NULL || plan->kind != QN_PLAN_ALIGNED) {
        return;
    }
    for (guint k = 0; k < plan->guest_nodes->len; k++) {
        const QnGuestNode *g = g_ptr_array_index(plan->guest_nodes, k);
        guint nh = qn_bitmap_count(g->host_nodes);

        if (nh == 0) {
            continue;
        }
        /* hotplug headroom (hotplug-headroom = on): held, never allocated, so it always counts:
         * the kernel's counters never show it */
        QN_BITMAP_FOREACH(g->host_nodes, h) {
            if (g->headroom > 0) {
                qn_reservations_add(r, (guint)h, g->page_size, g->headroom / nh);
            }
        }
        if (g->page_size != 0 && entry->state != QN_ENTRY_RESERVING) {
            continue;
        }
        QN_BITMAP_FOREACH(g->host_nodes, h) {
            qn_reservations_add(r, (guint)h, g->page_size, g->bytes / nh);
        }
    }
    /* Hotplug memory backends (src/core/qn-plan-memdev.c) by the same rule: regular memory
     * always, hugepages while the entry reserves. */
    for (guint k = 0; plan->mem_devices != NULL && k < plan->mem_devices->len; k++) {
        const QnPlanMemDevice *d = g_ptr_array_index(plan->mem_devices, k);
        guint nh = qn_bitmap_count(d->host_nodes);

        if (nh == 0 || (d->page_size != 0 && entry->state != QN_ENTRY_RESERVING)) {
            continue;
        }
        QN_BITMAP_FOREACH(d->host_nodes, h) {
            qn_reservations_add(r, (guint)h, d->page_size, d->bytes / nh);
        }
    }
    qn_bitmap_or(r->pinned_cpus, entry->pinned_cpus);
}

QnReservations *
qn_ledger_reservations(QnLedger *ledger, const char *proc_root)
{
    QnReservations *r = qn_reservations_new();
    g_autoptr(GPtrArray) entries = qn_ledger_list(ledger, NULL);

    for (guint i = 0; i < entries->len; i++) {
        const QnLedgerEntry *e = g_ptr_array_index(entries, i);
        gboolean stale;

        /* only live VMs of the entry's own user count (issue 12: a forged entry naming
         * another user's process, or a dead one, reserves nothing) */
        if (qn_entry_counts(e, ledger->top, proc_root, &stale)) {
            qn_ledger_entry_add_reservations(e, r);
        }
    }
    return r;
}
