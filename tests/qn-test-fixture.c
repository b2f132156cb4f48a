/* The test programs' shared set-up, helpers and launch fixture: see qn-test-fixture.h. */
#include "config.h"

#include "qn-test-fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "qn-ledger.h"
#include "qn-qmp-client.h"

QnTestHost qn_test_host;

/* The pools this run grew, as path, old nr_hugepages pairs: given back at the end by the
 * janitor (qn_test_run()), so a test run leaves the host's memory as it found it. */
static GPtrArray *pools_grown;

gboolean
qn_skip_unless(gboolean ok, const char *why)
{
    if (ok) {
        return FALSE;
    }
    if (qn_test_host.setup_error != NULL) {
        why = qn_test_host.setup_error; /* the step that failed says more than the test's need */
    }
    if (g_getenv("QN_TEST_REQUIRE_ALL") != NULL) {
        g_test_fail_printf("required but cannot run: %s", why);
    } else {
        g_test_skip(why);
    }
    return TRUE;
}

/* ---- node 0's hugepages ---- */

guint64
qn_free_pages(guint64 kb)
{
    g_autofree gchar *p = g_strdup_printf("/sys/devices/system/node/node0/hugepages/"
                                          "hugepages-%" G_GUINT64_FORMAT "kB/free_hugepages", kb);
    g_autofree gchar *s = NULL;

    g_assert_true(g_file_get_contents(p, &s, NULL, NULL));
    return g_ascii_strtoull(s, NULL, 10);
}

guint64
qn_free_pages_settled(guint64 kb, guint64 want)
{
    gint64 deadline = g_get_monotonic_time() + 2 * G_USEC_PER_SEC;
    guint64 v;

    while ((v = qn_free_pages(kb)) != want && g_get_monotonic_time() < deadline) {
        g_usleep(20 * 1000);
    }
    return v;
}

/* Writes @value to @path: replaced atomically, or in place for a sysfs file (which cannot be
 * replaced by rename). */
static gboolean
qn_write_file(const char *path, const char *value)
{
    FILE *f;
    gboolean ok;

    if (g_file_set_contents_full(path, value, -1, G_FILE_SET_CONTENTS_NONE, 0644, NULL)) {
        return TRUE;
    }
    f = fopen(path, "w");
    ok = f != NULL && fputs(value, f) >= 0;
    if (f != NULL) {
        ok = (fclose(f) == 0) && ok;
    }
    return ok;
}

/* Add @more pages of @kb KiB to node 0's pool; FALSE with errno's text in *ret_why. */
static gboolean
qn_grow_pool(guint64 kb, guint64 more, gchar **ret_why)
{
    g_autofree gchar *path = g_strdup_printf("/sys/devices/system/node/node0/hugepages/"
                                             "hugepages-%" G_GUINT64_FORMAT "kB/nr_hugepages",
                                             kb);
    g_autofree gchar *cur = NULL;
    g_autofree gchar *want = NULL;
    g_autoptr(GError) error = NULL;

    if (!g_file_get_contents(path, &cur, NULL, &error)) {
        *ret_why = g_strdup_printf("reading %s: %s", path, error->message);
        return FALSE;
    }
    if (pools_grown == NULL) {
        pools_grown = g_ptr_array_new_with_free_func(g_free);
    }
    g_ptr_array_add(pools_grown, g_strdup(path)); /* restored by the janitor */
    g_ptr_array_add(pools_grown, g_strdup(cur));
    want = g_strdup_printf("%" G_GUINT64_FORMAT "\n", g_ascii_strtoull(cur, NULL, 10) + more);
    if (!qn_write_file(path, want)) {
        *ret_why = g_strdup_printf("writing %s to %s: %s", g_strchomp(want), path,
                                   g_strerror(errno));
        return FALSE;
    }
    return TRUE;
}

/* The machine set-up every real launch needs, made here and not assumed (a brand-new machine
 * has no /dev/hugepages, no pool and no /run/qemu-numa): node 0's pools grown to 256 free 2M
 * pages and 1 free 1G page, and hugetlbfs mounts of our own under tmpdir. The first step that
 * fails stops the set-up, and its own error becomes every test's skip (or, under
 * QN_TEST_REQUIRE_ALL, failure) reason: mnt2m stays NULL. */
static void
qn_setup_hugepages(void)
{
    QnTestHost *h = &qn_test_host;
    g_autofree gchar *why = NULL;

    if (geteuid() != 0) {
        h->setup_error = g_strdup("needs root (hugepage pools, hugetlbfs mounts)");
        return;
    }
    if (qn_free_pages(2048) < 256 && !qn_grow_pool(2048, 256 - qn_free_pages(2048), &why)) {
        h->setup_error = g_steal_pointer(&why);
        return;
    }
    if (qn_free_pages(2048) < 256) {
        h->setup_error = g_strdup_printf("node 0 has %" G_GUINT64_FORMAT " free 2M hugepages "
                                         "after growing its pool, want 256", qn_free_pages(2048));
        return;
    }
    /* A 1G page is optional (memory may be too fragmented): /launch/1g says so */
    if (qn_free_pages(1048576) < 1 && !qn_grow_pool(1048576, 1, &why)) {
        g_printerr("# 1G pool: %s\n", why);
    }
    /* A private mount namespace: the hugetlbfs mounts below (seen by the qemu-numa and QEMU
     * we start, which share it) vanish with this process, even when a test aborts. */
    if (unshare(CLONE_NEWNS) != 0 || mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
        h->setup_error = g_strdup_printf("private mount namespace: %s", g_strerror(errno));
        return;
    }
    h->mnt2m = g_build_filename(h->tmpdir, "huge2m", NULL);
    h->mnt1g = g_build_filename(h->tmpdir, "huge1g", NULL);
    if (g_mkdir(h->mnt2m, 0755) != 0 || g_mkdir(h->mnt1g, 0755) != 0) {
        h->setup_error = g_strdup_printf("mkdir %s: %s", h->mnt2m, g_strerror(errno));
        g_clear_pointer(&h->mnt2m, g_free);
        return;
    }
    if (mount("none", h->mnt2m, "hugetlbfs", 0, "pagesize=2M") != 0) {
        h->setup_error = g_strdup_printf("mount -t hugetlbfs -o pagesize=2M none %s: %s",
                                         h->mnt2m, g_strerror(errno));
        g_clear_pointer(&h->mnt2m, g_free);
        return;
    }
    h->have_1g = qn_free_pages(1048576) >= 1 &&
                 mount("none", h->mnt1g, "hugetlbfs", 0, "pagesize=1G") == 0;
}

void
qn_test_init_programs(int *argc, char ***argv)
{
    g_test_init(argc, argv, NULL);
    qn_test_host.builddir = g_strdup(g_getenv("QN_TOP_BUILDDIR") ? g_getenv("QN_TOP_BUILDDIR")
                                                                 : ".");
}

void
qn_test_init_host(int *argc, char ***argv, const char *name)
{
    QnTestHost *h = &qn_test_host;
    g_autofree gchar *tmpl = g_strdup_printf("qn-%s-XXXXXX", name);
    /* Node 0's hugepage pool is the machine's: every test program and bench/smoke of every
     * build tree on this machine holds the same lock while it counts pages, a flock on the
     * pool's own sysfs file. It is machine-wide whatever mount namespace or /run a test runs
     * in (.ci/fresh-machine gives each run a /run of its own), and nothing is made. */
    const char *lock = "/sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages";
    int fd = -1;

    qn_test_init_programs(argc, argv);
    h->tmpdir = g_dir_make_tmp(tmpl, NULL);
    if (geteuid() == 0 && (fd = open(lock, O_RDONLY | O_CLOEXEC)) < 0) {
        h->setup_error = g_strdup_printf("lock %s: %s", lock, g_strerror(errno));
    } else if (fd >= 0) {
        flock(fd, LOCK_EX); /* held until exit, and by the janitor until the pools are back */
    }
    if (h->setup_error == NULL) {
        qn_setup_hugepages();
    }
    if (h->setup_error != NULL) {
        g_printerr("# set-up: %s\n", h->setup_error);
    }
}

/* What this run made goes back even when a test aborts (a failed g_assert ends the process
 * with SIGABRT, past any cleanup code of ours): a janitor process, forked once the set-up is
 * done, waits for this process to end (end of file on a pipe whose only writer is us), then
 * unmounts our hugetlbfs mounts, gives node 0's pools back and removes tmpdir (state
 * directories, sockets, mount points). The QEMUs we started die with us (PR_SET_PDEATHSIG).
 * The janitor shares our open file descriptions, the hugepage test lock among them, so the
 * next test program waits until the pools are back. Only async-signal-safe calls after fork. */
static void
qn_start_janitor(void)
{
    QnTestHost *h = &qn_test_host;
    int p[2];
    pid_t pid;
    gboolean keep = g_getenv("QN_TEST_KEEP") != NULL;

    if (h->tmpdir == NULL) {
        return; /* qn_test_init_programs() alone: nothing to give back */
    }
    if (pipe2(p, O_CLOEXEC) != 0) {
        g_printerr("# janitor: pipe: %s\n", g_strerror(errno));
        return;
    }
    pid = fork();
    if (pid < 0) {
        g_printerr("# janitor: fork: %s\n", g_strerror(errno));
        close(p[0]);
        close(p[1]);
        return;
    }
    if (pid == 0) {
        char c;

        signal(SIGINT, SIG_IGN); /* a Ctrl-C of the test run still gets cleaned up */
        signal(SIGTERM, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        close(p[1]);
        while (read(p[0], &c, 1) < 0 && errno == EINTR) {
        }
        if (h->mnt2m != NULL) {
            umount2(h->mnt2m, MNT_DETACH);
        }
        if (h->have_1g) {
            umount2(h->mnt1g, MNT_DETACH);
        }
        for (guint i = 0; pools_grown != NULL && i + 1 < pools_grown->len; i += 2) {
            const char *v = pools_grown->pdata[i + 1];
            int fd = open(pools_grown->pdata[i], O_WRONLY | O_CLOEXEC);

            if (fd >= 0) {
                (void)!write(fd, v, strlen(v));
                close(fd);
            }
        }
        if (keep) { /* QN_TEST_KEEP=1: state directories and logs stay, to read after */
            _exit(0);
        }
        execlp("rm", "rm", "-rf", h->tmpdir, (char *)NULL);
        _exit(127);
    }
    close(p[0]); /* p[1] stays open, close-on-exec, until this process ends */
}

int
qn_test_run(void)
{
    qn_start_janitor();
    return g_test_run(); /* the janitor cleans up once this process is gone */
}

/* ---- the state directory ---- */

gchar *
qn_new_dir(const char *what)
{
    g_autofree gchar *t = g_strdup_printf("%s/%s-XXXXXX", qn_test_host.tmpdir, what);

    return g_strdup(g_mkdtemp(t));
}

gchar *
qn_udir(const char *state)
{
    return qn_state_user_dir(state);
}

guint
qn_state_entries(const char *state)
{
    g_autoptr(GDir) d = g_dir_open(state, 0, NULL);
    const char *u;
    guint count = 0;

    while (d && (u = g_dir_read_name(d)) != NULL) {
        g_autofree gchar *udir = g_build_filename(state, u, NULL);
        g_autoptr(GDir) ud = u[0] == '.' ? NULL : g_dir_open(udir, 0, NULL);
        const char *n;

        while (ud && (n = g_dir_read_name(ud)) != NULL) {
            count += g_str_has_suffix(n, ".json") && n[0] != '.';
        }
    }
    return count;
}

guint
qn_wait_files(const char *state, guint want, gint64 limit_ms)
{
    gint64 deadline = g_get_monotonic_time() + limit_ms * 1000;
    guint n;

    while ((n = qn_state_entries(state)) != want && g_get_monotonic_time() < deadline) {
        g_usleep(20 * 1000);
    }
    return n;
}

/* ---- running the programs ---- */

void
qn_child_setup(gpointer data)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
}

/* Sets @env's VAR=value strings (NULL-terminated, may be NULL) in @l. */
static void
qn_launcher_setenv(GSubprocessLauncher *l, const char *const *env)
{
    for (guint i = 0; env != NULL && env[i] != NULL; i++) {
        g_auto(GStrv) kv = g_strsplit(env[i], "=", 2);

        g_subprocess_launcher_setenv(l, kv[0], kv[1], TRUE);
    }
}

GSubprocessLauncher *
qn_launcher(const char *state, const char *const *env)
{
    GSubprocessLauncher *l = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDERR_PIPE |
                                                       G_SUBPROCESS_FLAGS_STDOUT_SILENCE);

    g_subprocess_launcher_set_child_setup(l, qn_child_setup, NULL, NULL);
    g_subprocess_launcher_setenv(l, "QEMU_NUMA_STATE_DIR", state, TRUE);
    g_subprocess_launcher_setenv(l, "QEMU_NUMA_CONFIG", "/dev/null", TRUE);
    qn_launcher_setenv(l, env);
    return l;
}

/* A NULL-terminated argv: the program @prog of the build tree, @pre (may be NULL), @args. */
static GPtrArray *
qn_argv(const char *prog, const char *pre, const char *const *args)
{
    GPtrArray *argv = g_ptr_array_new_with_free_func(g_free);

    g_ptr_array_add(argv, g_build_filename(qn_test_host.builddir, prog, NULL));
    if (pre != NULL) {
        g_ptr_array_add(argv, g_strdup(pre));
    }
    for (guint i = 0; args[i] != NULL; i++) {
        g_ptr_array_add(argv, g_strdup(args[i]));
    }
    g_ptr_array_add(argv, NULL);
    return argv;
}

gint
qn_run_launcher(const char *state, const char *const *env, const char *const *args,
                gchar **ret_err)
{
    g_autoptr(GSubprocessLauncher) l = qn_launcher(state, env);
    g_autoptr(GPtrArray) argv = qn_argv("qemu-numa", NULL, args);
    g_autoptr(GSubprocess) p = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) err = NULL;

    p = g_subprocess_launcher_spawnv(l, (const char *const *)argv->pdata, &error);
    g_assert_no_error(error);
    /* bytes, not utf8: stderr may quote a non-UTF-8 value */
    g_assert_true(g_subprocess_communicate(p, NULL, NULL, NULL, &err, &error));
    g_assert_no_error(error);
    if (ret_err != NULL) {
        *ret_err = g_strndup(g_bytes_get_data(err, NULL), g_bytes_get_size(err));
    }
    return g_subprocess_get_if_exited(p) ? g_subprocess_get_exit_status(p)
                                         : 128 + g_subprocess_get_term_sig(p);
}

void
qn_assert_one_line(const char *err, const char *want)
{
    g_auto(GStrv) lines = NULL;
    g_autofree gchar *copy = g_strdup(err ? err : "");

    lines = g_strsplit(g_strchomp(copy), "\n", -1);
    if (g_strv_length(lines) != 1 || !g_str_has_prefix(lines[0], "qemu-numa: ") ||
        strstr(lines[0], want) == NULL) {
        g_test_fail_printf("stderr '%s': want one line 'qemu-numa: ...%s...'", err, want);
    }
}

void
qn_ctl_run_clear(QnCtlRun *r)
{
    g_free(r->out);
    g_free(r->err);
}

void
qn_ctl_run(const char *state, const char *const *env, const char *const *args, QnCtlRun *r)
{
    g_autoptr(GPtrArray) argv = qn_argv("qemu-numa-ctl", NULL, args);
    g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new(
        G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
    g_autoptr(GSubprocess) p = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) out = NULL;
    g_autoptr(GBytes) err = NULL;
    gint64 start = g_get_monotonic_time();

    g_subprocess_launcher_setenv(l, "QEMU_NUMA_STATE_DIR", state, TRUE);
    g_subprocess_launcher_setenv(l, "QEMU_NUMA_CONFIG", "/dev/null", TRUE);
    qn_launcher_setenv(l, env);
    p = g_subprocess_launcher_spawnv(l, (const char *const *)argv->pdata, &error);
    g_assert_no_error(error);
    g_assert_true(g_subprocess_communicate(p, NULL, NULL, &out, &err, &error));
    g_assert_no_error(error);
    r->elapsed_us = g_get_monotonic_time() - start;
    r->exited = g_subprocess_get_if_exited(p);
    r->status = r->exited ? g_subprocess_get_exit_status(p) : -g_subprocess_get_term_sig(p);
    /* NUL-terminated copies (an empty stream gives ""), lengths kept for byte searches */
    r->out_len = g_bytes_get_size(out);
    r->err_len = g_bytes_get_size(err);
    r->out = r->out_len > 0 ? g_strndup(g_bytes_get_data(out, NULL), r->out_len) : g_strdup("");
    r->err = r->err_len > 0 ? g_strndup(g_bytes_get_data(err, NULL), r->err_len) : g_strdup("");
}

JsonNode *
qn_ctl_json(const char *state, const char *const *args)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_auto(QnCtlRun) r = { 0 };
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autoptr(GError) error = NULL;

    g_ptr_array_add(argv, (gpointer) "--json");
    for (guint i = 0; args[i] != NULL; i++) {
        g_ptr_array_add(argv, (gpointer)args[i]);
    }
    g_ptr_array_add(argv, NULL);
    qn_ctl_run(state, NULL, (const char *const *)argv->pdata, &r);
    if (r.err_len > 0) {
        g_test_message("ctl %s: %s", args[0], g_strchomp(r.err));
    }
    if (!r.exited || r.status != 0) {
        return NULL;
    }
    g_assert_true(json_parser_load_from_data(parser, r.out, -1, &error));
    /* JSON version 2: list and events are {"version": 2, "vms"/"events": [...]}; the tests
     * read the array */
    if (strcmp(args[0], "list") == 0 || strcmp(args[0], "events") == 0) {
        JsonObject *o = json_node_get_object(json_parser_get_root(parser));

        g_assert_cmpint(json_object_get_int_member(o, "version"), ==, 2);
        return json_node_copy(json_object_get_member(o, args[0][0] == 'l' ? "vms" : "events"));
    }
    return json_node_ref(json_parser_get_root(parser));
}

gchar *
qn_ctl_text(const char *state, const char *const *args, gsize *ret_len)
{
    g_auto(QnCtlRun) r = { 0 };
    gchar *both;

    qn_ctl_run(state, NULL, args, &r);
    g_assert_true(r.exited);
    both = g_malloc(r.out_len + r.err_len + 1);
    memcpy(both, r.out, r.out_len);
    memcpy(both + r.out_len, r.err, r.err_len);
    both[r.out_len + r.err_len] = '\0';
    *ret_len = r.out_len + r.err_len;
    return both;
}

guint
qn_wait_entries(const char *state, guint want, gint64 limit_ms)
{
    gint64 deadline = g_get_monotonic_time() + limit_ms * 1000;
    const char *args[] = { "list", NULL };

    for (;;) {
        g_autoptr(JsonNode) list = qn_ctl_json(state, args);
        guint n = list ? json_array_get_length(json_node_get_array(list)) : 0;

        if (n == want || g_get_monotonic_time() > deadline) {
            return n;
        }
        g_usleep(50 * 1000);
    }
}

const char *
qn_qemu_status(JsonNode *st)
{
    JsonNode *q = json_object_get_member(json_node_get_object(st), "qemu");

    return q != NULL && JSON_NODE_HOLDS_OBJECT(q)
               ? json_object_get_string_member_with_default(json_node_get_object(q), "status",
                                                            NULL)
               : NULL;
}

JsonNode *
qn_ctl_wait_qemu_status(const char *state, const char *const *args, const char *want,
                        gint64 limit_ms)
{
    gint64 deadline = g_get_monotonic_time() + limit_ms * 1000;

    for (;;) {
        g_autoptr(JsonNode) st = qn_ctl_json(state, args);

        g_assert_nonnull(st);
        if (g_strcmp0(qn_qemu_status(st), want) == 0 || g_get_monotonic_time() > deadline) {
            return g_steal_pointer(&st);
        }
        g_usleep(50 * 1000);
    }
}

/* ---- processes ---- */

/* The monitor of QEMU @qemu_pid (its argv: qemu-numa-monitor PID), or 0. */
static GPid
qn_monitor_find(const char *qemu_pid)
{
    g_autoptr(GDir) d = g_dir_open("/proc", 0, NULL);
    const char *n;

    while ((n = g_dir_read_name(d)) != NULL) {
        g_autofree gchar *path = g_strdup_printf("/proc/%s/cmdline", n);
        g_autofree gchar *cmd = NULL;
        gsize len;

        if (g_file_get_contents(path, &cmd, &len, NULL) && len > 0 &&
            strcmp(cmd, "qemu-numa-monitor") == 0 &&
            strcmp(cmd + strlen(cmd) + 1, qemu_pid) == 0) {
            return (GPid)g_ascii_strtoll(n, NULL, 10);
        }
    }
    return 0;
}

GPid
qn_monitor_pid_of(const char *qemu_pid)
{
    gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
    GPid mon;

    while ((mon = qn_monitor_find(qemu_pid)) == 0 && g_get_monotonic_time() < deadline) {
        g_usleep(20 * 1000);
    }
    return mon;
}

char
qn_proc_state(const char *pid)
{
    g_autofree gchar *path = g_strdup_printf("/proc/%s/stat", pid);
    g_autofree gchar *stat = NULL;
    const char *p;

    if (pid == NULL || !g_file_get_contents(path, &stat, NULL, NULL) ||
        (p = strrchr(stat, ')')) == NULL || p[1] == '\0') {
        return 0;
    }
    return p[2];
}

void
qn_wait_stopped(const char *pid)
{
    gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;

    while (qn_proc_state(pid) != 'T' && g_get_monotonic_time() < deadline) {
        g_usleep(10 * 1000);
    }
    g_assert_cmpint(qn_proc_state(pid), ==, 'T');
}

/* ---- a VM ---- */

Vm *
qn_vm_start_exe(const char *exe, const char *const *env, const char *const *args,
                gboolean paused)
{
    Vm *vm = g_new0(Vm, 1);
    g_autoptr(GSubprocessLauncher) l = NULL;
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GError) error = NULL;

    vm->dir = qn_new_dir("vm");
    vm->sock = g_strdup_printf("%s/qmp.sock", vm->dir);
    l = qn_launcher(vm->dir, env); /* env may name another (shared) state directory */
    g_ptr_array_add(argv, g_strdup(exe));
    for (guint i = 0; args[i] != NULL; i++) {
        g_ptr_array_add(argv, g_strdup(args[i]));
    }
    if (paused) {
        g_ptr_array_add(argv, g_strdup("-S"));
    }
    g_ptr_array_add(argv, g_strdup("-qmp"));
    g_ptr_array_add(argv, g_strdup_printf("unix:%s,server=on,wait=off", vm->sock));
    g_ptr_array_add(argv, NULL);
    vm->proc = g_subprocess_launcher_spawnv(l, (const char *const *)argv->pdata, &error);
    g_assert_no_error(error);
    return vm;
}

Vm *
qn_vm_start_full(const char *const *env, const char *const *args, gboolean paused)
{
    g_autofree gchar *qn = g_build_filename(qn_test_host.builddir, "qemu-numa", NULL);

    return qn_vm_start_exe(qn, env, args, paused);
}

Vm *
qn_vm_start(const char *const *env, const char *const *args)
{
    return qn_vm_start_full(env, args, TRUE);
}

JsonNode *
qn_vm_qmp(Vm *vm, const char *cmd)
{
    g_autoptr(GError) error = NULL;
    JsonNode *r = qn_qmp_query(vm->sock, cmd, NULL, 20000, &error);

    if (r == NULL) {
        GInputStream *s = g_subprocess_get_stderr_pipe(vm->proc);
        char buf[4096];
        gssize n = g_input_stream_read(s, buf, sizeof(buf) - 1, NULL, NULL);

        buf[n > 0 ? n : 0] = '\0';
        g_error("QMP %s: %s (qemu-numa stderr: %s)", cmd, error->message, buf);
    }
    return r;
}

void
qn_vm_wait_qmp(Vm *vm)
{
    g_autoptr(JsonNode) st = qn_vm_qmp(vm, "query-status");

    g_assert_nonnull(st);
}

JsonNode *
qn_vm_wait_memdev(Vm *vm, gint64 limit_s)
{
    gint64 deadline = g_get_monotonic_time() + limit_s * G_USEC_PER_SEC;
    const char *id = g_subprocess_get_identifier(vm->proc);
    JsonNode *md = NULL;

    /* either QEMU answers on the user's socket, or the launcher has exited */
    while (md == NULL && g_get_monotonic_time() < deadline) {
        char st = qn_proc_state(id);

        md = qn_qmp_query(vm->sock, "query-memdev", NULL, 500, NULL);
        if (md == NULL && (st == 0 || st == 'Z')) {
            break;
        }
    }
    return md;
}

void
qn_vm_free(Vm *vm)
{
    g_object_unref(vm->proc);
    g_free(vm->sock);
    g_free(vm->dir);
    g_free(vm);
}

void
qn_vm_quit(Vm *vm)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) r = qn_qmp_query(vm->sock, "quit", NULL, 10000, &error);

    (void)r; /* QEMU may close before answering */
    g_assert_true(g_subprocess_wait(vm->proc, NULL, NULL));
    qn_vm_free(vm);
}

void
qn_user_qmp(const char *sock, const char *cmd)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) r = qn_qmp_query(sock, cmd, NULL, 10000, &error);

    g_assert_no_error(error);
    g_assert_nonnull(r);
}

JsonObject *
qn_memdev(JsonNode *list, const char *id)
{
    JsonArray *a = json_node_get_array(list);

    for (guint i = 0; i < json_array_get_length(a); i++) {
        JsonObject *o = json_array_get_object_element(a, i);

        if (g_strcmp0(json_object_get_string_member(o, "id"), id) == 0) {
            return o;
        }
    }
    g_error("no memdev '%s'", id);
    return NULL;
}

void
qn_assert_memdev(JsonObject *m, gint64 size, const char *policy)
{
    JsonArray *hn = json_object_get_array_member(m, "host-nodes");

    g_assert_cmpint(json_object_get_int_member(m, "size"), ==, size);
    g_assert_cmpstr(json_object_get_string_member(m, "policy"), ==, policy);
    g_assert_true(json_object_get_boolean_member(m, "share"));
    g_assert_true(json_object_get_boolean_member(m, "prealloc"));
    g_assert_cmpuint(json_array_get_length(hn), ==, 1);
    g_assert_cmpint(json_array_get_int_element(hn, 0), ==, 0);
}

/* ---- the launch fixture ---- */

gboolean
qn_launch_skip_unless(QnTestLaunch *f, gboolean ok, const char *why)
{
    if (qn_skip_unless(ok, why)) {
        f->skipped = TRUE;
    }
    return f->skipped;
}

void
qn_launch_setup_plain(QnTestLaunch *f, gconstpointer data)
{
    f->state = qn_new_dir("state");
    f->udir = qn_udir(f->state);
    f->envs = g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev);
    f->pages_checked = qn_test_host.mnt2m != NULL;
    f->before = f->pages_checked ? qn_free_pages(2048) : 0;
}

void
qn_launch_setup(QnTestLaunch *f, gconstpointer data)
{
    qn_launch_setup_plain(f, data);
    qn_launch_skip_unless(f, qn_test_host.mnt2m != NULL, "needs root and 2M hugepages");
}

void
qn_launch_teardown(QnTestLaunch *f, gconstpointer data)
{
    if (!f->skipped) {
        /* nothing leaked: every page back (the kernel frees them a moment after QEMU's
         * exit) and no entry left, the monitors' own doing (files: `ctl list` would sweep) */
        if (f->pages_checked) {
            g_assert_cmpuint(qn_free_pages_settled(2048, f->before), ==, f->before);
        }
        g_assert_cmpuint(qn_wait_files(f->state, f->entries_left, 2000), ==, f->entries_left);
    }
    g_ptr_array_unref(f->envs);
    g_free(f->udir);
    g_free(f->state);
}

const char *const *
qn_launch_env(QnTestLaunch *f, ...)
{
    GPtrArray *env = g_ptr_array_new();
    const char *kv;
    va_list ap;

    g_ptr_array_add(env, g_strdup("QEMU_NUMA_HUGEPAGE_SIZE=2M"));
    g_ptr_array_add(env, g_strdup_printf("QEMU_NUMA_HUGETLBFS=%s",
                                         qn_test_host.mnt2m ? qn_test_host.mnt2m : ""));
    g_ptr_array_add(env, g_strdup_printf("QEMU_NUMA_STATE_DIR=%s", f->state));
    va_start(ap, f);
    while ((kv = va_arg(ap, const char *)) != NULL) {
        g_ptr_array_add(env, g_strdup(kv));
    }
    va_end(ap);
    g_ptr_array_add(env, NULL);
    g_ptr_array_add(f->envs, g_ptr_array_free(env, FALSE));
    return g_ptr_array_index(f->envs, f->envs->len - 1);
}
