/* Real QEMU through qemu-numa on this host: hugepages reserved and hugetlbfs mounted by the
 * test, QEMU checked over QMP (query-memdev), the kernel's per-node free_hugepages counters
 * checked before, during and after. Needs root; QN_TEST_REQUIRE_ALL=1 (set by .ci/run) turns
 * a skip into a failure. */
#include "config.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib/gstdio.h>

#include "qn-error.h"
#include "qn-ledger.h"
#include "qn-qmp-client.h"

static gchar *builddir;
static gchar *tmpdir;
static gchar *mnt2m, *mnt1g;
static gboolean have_1g;
static gchar *setup_error; /* the set-up step that failed, with its error */

static gboolean
qn_skip_unless(gboolean ok, const char *why)
{
    if (ok) {
        return FALSE;
    }
    if (setup_error != NULL) {
        why = setup_error; /* the step that failed says more than what the test needed */
    }
    if (g_getenv("QN_TEST_REQUIRE_ALL") != NULL) {
        g_test_fail_printf("required but cannot run: %s", why);
    } else {
        g_test_skip(why);
    }
    return TRUE;
}

static guint64
qn_free_pages(guint64 kb);

/* Hugepages come back when the kernel drops QEMU's last reference to the file, which can be a
 * moment after its exit is reported: wait for @want, at most 2 s (the bound). */
static guint64
qn_free_pages_settled(guint64 kb, guint64 want)
{
    gint64 deadline = g_get_monotonic_time() + 2 * G_USEC_PER_SEC;
    guint64 v;

    while ((v = qn_free_pages(kb)) != want && g_get_monotonic_time() < deadline) {
        g_usleep(20 * 1000);
    }
    return v;
}

static guint64
qn_free_pages(guint64 kb)
{
    g_autofree gchar *p = g_strdup_printf("/sys/devices/system/node/node0/hugepages/"
                                          "hugepages-%" G_GUINT64_FORMAT "kB/free_hugepages", kb);
    g_autofree gchar *s = NULL;

    g_assert_true(g_file_get_contents(p, &s, NULL, NULL));
    return g_ascii_strtoull(s, NULL, 10);
}

static gboolean
qn_write_file(const char *path, const char *value)
{
    return g_file_set_contents_full(path, value, -1, G_FILE_SET_CONTENTS_NONE, 0644, NULL) ||
           /* sysfs files cannot be replaced by rename: write in place */
           ({
               FILE *f = fopen(path, "w");
               gboolean ok = f && fputs(value, f) >= 0;
               if (f) {
                   ok = (fclose(f) == 0) && ok;
               }
               ok;
           });
}

/* Ledger entry files (*.json) of every user's directory in state directory @state (the
 * layout of qn-ledger.h: <state>/<user>/<pid>.json), counted directly. */
static guint
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

/* <state>/<our user>: where root's launches put their entries, sockets and logs. */
static gchar *
qn_udir(const char *state)
{
    return qn_state_user_dir(state);
}

static guint
qn_wait_files(const char *state, guint want, gint64 limit_ms);

typedef struct {
    GSubprocess *proc;
    gchar *sock;
    gchar *state;
} Vm;

/* A test that fails part-way must not leave QEMU holding hugepages: each child (and the
 * QEMU it execs: the setting survives exec) is killed when the test process dies. */
static void
qn_child_setup(gpointer data)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static GSubprocessLauncher *
qn_launcher(const char *state, const char *const *env)
{
    GSubprocessLauncher *l = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDERR_PIPE |
                                                       G_SUBPROCESS_FLAGS_STDOUT_SILENCE);

    g_subprocess_launcher_set_child_setup(l, qn_child_setup, NULL, NULL);

    g_subprocess_launcher_setenv(l, "QEMU_NUMA_STATE_DIR", state, TRUE);
    g_subprocess_launcher_setenv(l, "QEMU_NUMA_CONFIG", "/dev/null", TRUE);
    for (guint i = 0; env != NULL && env[i] != NULL; i++) {
        g_auto(GStrv) kv = g_strsplit(env[i], "=", 2);

        g_subprocess_launcher_setenv(l, kv[0], kv[1], TRUE);
    }
    return l;
}

static gchar *
qn_new_dir(const char *what)
{
    g_autofree gchar *t = g_strdup_printf("%s/%s-XXXXXX", tmpdir, what);

    return g_strdup(g_mkdtemp(t));
}

/* Start qemu-numa with @args + a QMP socket, paused (-S) if @paused. */
static Vm *
qn_vm_start_full(const char *const *env, const char *const *args, gboolean paused)
{
    Vm *vm = g_new0(Vm, 1);
    g_autoptr(GSubprocessLauncher) l = NULL;
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GError) error = NULL;

    vm->state = qn_new_dir("state");
    vm->sock = g_strdup_printf("%s/qmp.sock", vm->state);
    l = qn_launcher(vm->state, env); /* env may name another (shared) state directory */
    g_ptr_array_add(argv, g_build_filename(builddir, "qemu-numa", NULL));
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

static Vm *
qn_vm_start(const char *const *env, const char *const *args)
{
    return qn_vm_start_full(env, args, TRUE);
}

static JsonNode *
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

static void
qn_vm_quit(Vm *vm)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) r = qn_qmp_query(vm->sock, "quit", NULL, 10000, &error);

    (void)r; /* QEMU may close before answering */
    g_assert_true(g_subprocess_wait(vm->proc, NULL, NULL));
    g_object_unref(vm->proc);
    g_free(vm->sock);
    g_free(vm->state);
    g_free(vm);
}

static JsonObject *
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

static void
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

static void
test_launch_2m(void)
{
    const char *env[] = { "QEMU_NUMA_HUGEPAGE_SIZE=2M", NULL, NULL };
    const char *args[] = { "-name", "t2m", "-m", "64M", "-smp", "2", "-machine", "pc",
                           "-nodefaults", "-display", "none", NULL };
    g_autofree gchar *henv = g_strdup_printf("QEMU_NUMA_HUGETLBFS=%s", mnt2m);
    guint64 before, during;
    Vm *vm;
    g_autoptr(JsonNode) md = NULL;
    g_autofree gchar *entry = NULL;
    g_autofree gchar *exe = NULL;
    g_autofree gchar *state = NULL;

    if (qn_skip_unless(mnt2m != NULL, "needs root and 2M hugepages")) {
        return;
    }
    env[1] = henv;
    before = qn_free_pages(2048);
    vm = qn_vm_start(env, args);
    md = qn_vm_qmp(vm, "query-memdev");
    qn_assert_memdev(qn_memdev(md, "qn-ram0"), 64 << 20, "bind");
    during = qn_free_pages(2048);
    /* exactly the guest's 32 pages, held by QEMU's fd */
    g_assert_cmpuint(before - during, ==, 32);
    /* QEMU runs in the pid we started (exec, not a child) */
    {
        g_autofree gchar *link = g_strdup_printf("/proc/%s/exe",
                                                 g_subprocess_get_identifier(vm->proc));

        exe = g_file_read_link(link, NULL);
        g_assert_true(g_str_has_suffix(exe, "qemu-system-x86_64"));
    }
    {
        g_autofree gchar *udir = qn_udir(vm->state);

        entry = g_strdup_printf("%s/%s.json", udir, g_subprocess_get_identifier(vm->proc));
    }
    g_assert_true(g_file_get_contents(entry, &state, NULL, NULL));
    /* "reserved" by the launcher; QEMU's own status goes to "qemu" (JSON version 2) */
    g_assert_nonnull(strstr(state, "\"state\" : \"reserved\""));
    g_assert_nonnull(strstr(state, "\"pages_per_host_node\" : [\n        {\n          "
                                   "\"host_node\" : 0,\n          \"pages\" : 32"));
    g_assert_nonnull(strstr(state, "\"name\" : \"t2m\""));
    qn_vm_quit(vm);
    g_assert_cmpuint(qn_free_pages_settled(2048, before), ==, before);
}

static void
test_launch_1g(void)
{
    const char *env[] = { "QEMU_NUMA_HUGEPAGE_SIZE=1G", NULL, NULL };
    const char *args[] = { "-m", "1G", "-smp", "1", "-machine", "pc", "-nodefaults", "-display",
                           "none", NULL };
    g_autofree gchar *henv = g_strdup_printf("QEMU_NUMA_HUGETLBFS=%s", mnt1g);
    guint64 before;
    Vm *vm;
    g_autoptr(JsonNode) md = NULL;

    if (qn_skip_unless(have_1g, "needs root and one free 1G hugepage")) {
        return;
    }
    env[1] = henv;
    before = qn_free_pages(1048576);
    vm = qn_vm_start(env, args);
    md = qn_vm_qmp(vm, "query-memdev");
    qn_assert_memdev(qn_memdev(md, "qn-ram0"), 1 << 30, "bind");
    g_assert_cmpuint(before - qn_free_pages(1048576), ==, 1);
    qn_vm_quit(vm);
    g_assert_cmpuint(qn_free_pages_settled(1048576, before), ==, before);
}

static void
test_launch_two_guest_nodes(void)
{
    const char *env[] = { "QEMU_NUMA_HUGEPAGE_SIZE=2M", "QEMU_NUMA_GUEST_NODES=2", NULL, NULL };
    const char *args[] = { "-m", "128M", "-smp", "2", "-machine", "pc", "-nodefaults",
                           "-display", "none", NULL };
    g_autofree gchar *henv = g_strdup_printf("QEMU_NUMA_HUGETLBFS=%s", mnt2m);
    guint64 before;
    Vm *vm;
    g_autoptr(JsonNode) md = NULL;

    if (qn_skip_unless(mnt2m != NULL, "needs root and 2M hugepages")) {
        return;
    }
    env[2] = henv;
    before = qn_free_pages(2048);
    vm = qn_vm_start(env, args);
    md = qn_vm_qmp(vm, "query-memdev");
    qn_assert_memdev(qn_memdev(md, "qn-ram0"), 64 << 20, "bind");
    qn_assert_memdev(qn_memdev(md, "qn-ram1"), 64 << 20, "bind");
    g_assert_cmpuint(before - qn_free_pages(2048), ==, 64);
    qn_vm_quit(vm);
    g_assert_cmpuint(qn_free_pages_settled(2048, before), ==, before);
}

/* libvirt-style: JSON -object on a hugetlbfs directory, -numa node lines; share forced on. */
static void
test_launch_libvirt_style(void)
{
    g_autofree gchar *obj0 = NULL, *obj1 = NULL, *henv = NULL;
    const char *env[] = { NULL, NULL };
    guint64 before;
    Vm *vm;
    g_autoptr(JsonNode) md = NULL;

    if (qn_skip_unless(mnt2m != NULL, "needs root and 2M hugepages")) {
        return;
    }
    henv = g_strdup_printf("QEMU_NUMA_HUGETLBFS=%s", mnt2m);
    env[0] = henv;
    obj0 = g_strdup_printf("{\"qom-type\":\"memory-backend-file\",\"id\":\"ram-node0\","
                           "\"mem-path\":\"%s\",\"prealloc\":true,\"size\":33554432}", mnt2m);
    obj1 = g_strdup_printf("{\"qom-type\":\"memory-backend-file\",\"id\":\"ram-node1\","
                           "\"mem-path\":\"%s\",\"prealloc\":true,\"size\":33554432}", mnt2m);
    {
        const char *args[] = { "-name", "guest=lv,debug-threads=on", "-machine", "pc",
                               "-m", "64", "-smp", "2,sockets=2,cores=1,threads=1",
                               "-object", obj0, "-numa", "node,nodeid=0,cpus=0,memdev=ram-node0",
                               "-object", obj1, "-numa", "node,nodeid=1,cpus=1,memdev=ram-node1",
                               "-nodefaults", "-display", "none", NULL };

        before = qn_free_pages(2048);
        vm = qn_vm_start(env, args);
    }
    md = qn_vm_qmp(vm, "query-memdev");
    qn_assert_memdev(qn_memdev(md, "ram-node0"), 32 << 20, "bind");
    qn_assert_memdev(qn_memdev(md, "ram-node1"), 32 << 20, "bind");
    g_assert_cmpuint(before - qn_free_pages(2048), ==, 32);
    qn_vm_quit(vm);
    g_assert_cmpuint(qn_free_pages_settled(2048, before), ==, before);
}

/* `qemu-numa-ctl --version` is ours; `qemu-numa --version` is QEMU's own (scripts and libvirt
 * read QEMU's version from it), with no ledger entry and nothing planned. */
static void
test_version(void)
{
    g_autofree gchar *ctl = g_build_filename(builddir, "qemu-numa-ctl", NULL);
    g_autofree gchar *qn = g_build_filename(builddir, "qemu-numa", NULL);
    g_autofree gchar *state = qn_new_dir("state");
    const char *const env[] = { NULL };
    g_autoptr(GSubprocessLauncher) l = qn_launcher(state, env);
    g_autoptr(GError) error = NULL;
    g_autoptr(GSubprocess) p = NULL;
    g_autofree gchar *out = NULL;
    g_autofree gchar *want = g_strdup_printf("qemu-numa-ctl %s\n", PACKAGE_VERSION);

    g_subprocess_launcher_set_flags(l, G_SUBPROCESS_FLAGS_STDOUT_PIPE);
    p = g_subprocess_launcher_spawn(l, &error, ctl, "--version", NULL);
    g_assert_no_error(error);
    g_assert_true(g_subprocess_communicate_utf8(p, NULL, NULL, &out, NULL, &error));
    g_assert_cmpint(g_subprocess_get_exit_status(p), ==, 0);
    g_assert_cmpstr(out, ==, want);
    g_clear_object(&p);
    g_clear_pointer(&out, g_free);
    p = g_subprocess_launcher_spawn(l, &error, qn, "--version", NULL);
    g_assert_no_error(error);
    g_assert_true(g_subprocess_communicate_utf8(p, NULL, NULL, &out, NULL, &error));
    g_assert_cmpint(g_subprocess_get_exit_status(p), ==, 0);
    g_assert_true(g_str_has_prefix(out, "QEMU emulator version "));
    g_assert_cmpuint(qn_state_entries(state), ==, 0);
}

/* A capability probe reaches QEMU with the argv untouched (argv[0] aside: the real binary). */
static void
test_probe_untouched(void)
{
    g_autofree gchar *state = qn_new_dir("probe");
    g_autofree gchar *sock = g_strdup_printf("%s/probe.sock", state);
    g_autofree gchar *qmp = g_strdup_printf("unix:%s,server=on,wait=off", sock);
    g_autofree gchar *bin = g_build_filename(builddir, "qemu-numa", NULL);
    const char *argv[] = { bin, "-S", "-no-user-config", "-nodefaults", "-nographic",
                           "-machine", "none,accel=kvm:tcg", "-qmp", qmp, NULL };
    g_autoptr(GSubprocessLauncher) l = qn_launcher(state, NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(GSubprocess) p = g_subprocess_launcher_spawnv(l, argv, &error);
    g_autoptr(JsonNode) st = NULL;
    g_autofree gchar *cmdline = NULL;
    g_autofree gchar *path = NULL;
    gsize len;
    GString *want = g_string_new(NULL);

    g_assert_no_error(error);
    st = qn_qmp_query(sock, "query-status", NULL, 20000, &error);
    g_assert_no_error(error);
    path = g_strdup_printf("/proc/%s/cmdline", g_subprocess_get_identifier(p));
    g_assert_true(g_file_get_contents(path, &cmdline, &len, NULL));
    for (guint i = 1; argv[i] != NULL; i++) {
        g_string_append_len(want, argv[i], (gssize)strlen(argv[i]) + 1);
    }
    {
        gsize skip = strlen(cmdline) + 1; /* argv[0]: the real QEMU */

        g_assert_cmpmem(cmdline + skip, len - skip, want->str, want->len);
    }
    g_string_free(want, TRUE);
    g_assert_cmpuint(qn_state_entries(state), ==, 0);
    {
        g_autoptr(JsonNode) q = qn_qmp_query(sock, "quit", NULL, 10000, NULL);

        (void)q;
    }
    g_subprocess_wait(p, NULL, NULL);
}

typedef struct {
    const char *name;
    const char *env;       /* one VAR=value, or NULL */
    const char *args[12];
    const char *message;   /* a substring of the one stderr line */
} BadCase;

static const BadCase bad_cases[] = {
    { "m-zero", NULL, { "-m", "0" }, "-m '0': memory size must be greater than zero" },
    { "m-suffix", NULL, { "-m", "12Q" }, "-m '12Q': invalid size" },
    { "policy", "QEMU_NUMA_POLICY=fast", { "-m", "64M" }, "QEMU_NUMA_POLICY 'fast': invalid value" },
    { "too-big", NULL, { "-m", "64T" }, "guest memory exceeds" },
    { "numa", NULL, { "-m", "64M", "-numa", "node,nodeid=x" }, "-numa node nodeid 'x'" },
    { "object", NULL, { "-m", "64M", "-object", "{\"qom-type\":" }, "invalid JSON" },
    { "qemu", "QEMU_NUMA_QEMU=/nonexistent/qemu", { "-m", "64M" },
      "QEMU binary '/nonexistent/qemu'" },
    { "no-mount", "QEMU_NUMA_HUGEPAGE_SIZE=4M", { "-m", "64M" }, "hugepage size '4M'" },
    /* -m is set at run time to 64 pages more than node 0 has free: see test_bad_input */
    { "restricted", "QEMU_NUMA_POLICY=restricted", { "-m", "RUNTIME", "-smp", "2" },
      "policy restricted: no aligned plan" },
};

static void
test_bad_input(gconstpointer data)
{
    const BadCase *c = data;
    g_autofree gchar *state = qn_new_dir("bad");
    g_autofree gchar *bin = g_build_filename(builddir, "qemu-numa", NULL);
    const char *env[] = { c->env, NULL };
    g_autoptr(GSubprocessLauncher) l = qn_launcher(state, env);
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autoptr(GError) error = NULL;
    g_autoptr(GSubprocess) p = NULL;
    g_autofree gchar *err = NULL;
    guint64 before2 = mnt2m ? qn_free_pages(2048) : 0;
    g_auto(GStrv) lines = NULL;

    if (c->env && g_str_has_prefix(c->env, "QEMU_NUMA_POLICY=restricted") && mnt2m != NULL) {
        g_subprocess_launcher_setenv(l, "QEMU_NUMA_HUGETLBFS", mnt2m, TRUE);
        g_subprocess_launcher_setenv(l, "QEMU_NUMA_HUGEPAGE_SIZE", "2M", TRUE);
    }
    g_autofree gchar *runtime_m = g_strdup_printf("%" G_GUINT64_FORMAT "M",
                                                  (qn_free_pages(2048) + 64) * 2);

    g_ptr_array_add(argv, bin);
    for (guint i = 0; c->args[i] != NULL; i++) {
        /* more 2M pages than node 0 has free, whatever the pool is now */
        g_ptr_array_add(argv, strcmp(c->args[i], "RUNTIME") == 0 ? runtime_m
                                                                 : (gpointer)c->args[i]);
    }
    g_ptr_array_add(argv, NULL);
    p = g_subprocess_launcher_spawnv(l, (const char *const *)argv->pdata, &error);
    g_assert_no_error(error);
    g_assert_true(g_subprocess_communicate_utf8(p, NULL, NULL, NULL, &err, &error));
    g_assert_no_error(error);
    g_assert_true(g_subprocess_get_if_exited(p));
    g_assert_cmpint(g_subprocess_get_exit_status(p), ==, 1);
    lines = g_strsplit(g_strchomp(err), "\n", -1);
    g_assert_cmpuint(g_strv_length(lines), ==, 1);
    g_assert_true(g_str_has_prefix(lines[0], "qemu-numa: "));
    if (strstr(lines[0], c->message) == NULL) {
        g_test_fail_printf("%s: got '%s', want it to contain '%s'", c->name, lines[0],
                           c->message);
    }
    g_assert_cmpuint(qn_state_entries(state), ==, 0);
    if (mnt2m != NULL) {
        g_assert_cmpuint(qn_free_pages_settled(2048, before2), ==, before2);
    }
}

/* The pools this run grew, as path, old nr_hugepages pairs: given back at the end by the
 * janitor (qn_start_janitor()), so a test run leaves the host's memory as it found it. */
static GPtrArray *pools_grown;

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
    g_autofree gchar *why = NULL;

    if (geteuid() != 0) {
        setup_error = g_strdup("needs root (hugepage pools, hugetlbfs mounts)");
        return;
    }
    if (qn_free_pages(2048) < 256 && !qn_grow_pool(2048, 256 - qn_free_pages(2048), &why)) {
        setup_error = g_steal_pointer(&why);
        return;
    }
    if (qn_free_pages(2048) < 256) {
        setup_error = g_strdup_printf("node 0 has %" G_GUINT64_FORMAT " free 2M hugepages after "
                                      "growing its pool, want 256", qn_free_pages(2048));
        return;
    }
    /* A 1G page is optional (memory may be too fragmented): /launch/1g says so */
    if (qn_free_pages(1048576) < 1 && !qn_grow_pool(1048576, 1, &why)) {
        g_printerr("# 1G pool: %s\n", why);
    }
    /* A private mount namespace: the hugetlbfs mounts below (seen by the qemu-numa and QEMU
     * we start, which share it) vanish with this process, even when a test aborts. */
    if (unshare(CLONE_NEWNS) != 0 || mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
        setup_error = g_strdup_printf("private mount namespace: %s", g_strerror(errno));
        return;
    }
    mnt2m = g_build_filename(tmpdir, "huge2m", NULL);
    mnt1g = g_build_filename(tmpdir, "huge1g", NULL);
    if (g_mkdir(mnt2m, 0755) != 0 || g_mkdir(mnt1g, 0755) != 0) {
        setup_error = g_strdup_printf("mkdir %s: %s", mnt2m, g_strerror(errno));
        g_clear_pointer(&mnt2m, g_free);
        return;
    }
    if (mount("none", mnt2m, "hugetlbfs", 0, "pagesize=2M") != 0) {
        setup_error = g_strdup_printf("mount -t hugetlbfs -o pagesize=2M none %s: %s", mnt2m,
                                      g_strerror(errno));
        g_clear_pointer(&mnt2m, g_free);
        return;
    }
    have_1g = qn_free_pages(1048576) >= 1 &&
              mount("none", mnt1g, "hugetlbfs", 0, "pagesize=1G") == 0;
}

/* ---- the monitor: lifecycle accounting through the ledger ---- */

/* QEMU's run state in a `status --json` answer (JSON version 2: "qemu": {"status"}) */
static const char *
qn_qemu_status(JsonNode *st)
{
    JsonNode *q = json_object_get_member(json_node_get_object(st), "qemu");

    return q != NULL && JSON_NODE_HOLDS_OBJECT(q)
               ? json_object_get_string_member(json_node_get_object(q), "status")
               : NULL;
}

static JsonNode *
qn_ctl_json(const char *state, const char *const *args)
{
    g_autofree gchar *bin = g_build_filename(builddir, "qemu-numa-ctl", NULL);
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE);
    g_autoptr(GSubprocess) p = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree gchar *out = NULL;
    g_autoptr(JsonParser) parser = json_parser_new();

    g_subprocess_launcher_setenv(l, "QEMU_NUMA_STATE_DIR", state, TRUE);
    g_subprocess_launcher_setenv(l, "QEMU_NUMA_CONFIG", "/dev/null", TRUE);
    g_ptr_array_add(argv, bin);
    g_ptr_array_add(argv, (gpointer) "--json");
    for (guint i = 0; args[i] != NULL; i++) {
        g_ptr_array_add(argv, (gpointer)args[i]);
    }
    g_ptr_array_add(argv, NULL);
    p = g_subprocess_launcher_spawnv(l, (const char *const *)argv->pdata, &error);
    g_assert_no_error(error);
    g_assert_true(g_subprocess_communicate_utf8(p, NULL, NULL, &out, NULL, &error));
    if (g_subprocess_get_exit_status(p) != 0) {
        return NULL;
    }
    g_assert_true(json_parser_load_from_data(parser, out, -1, &error));
    /* JSON version 2: list and events are {"version": 2, "vms"/"events": [...]}; the tests
     * read the array */
    if (strcmp(args[0], "list") == 0 || strcmp(args[0], "events") == 0) {
        JsonObject *o = json_node_get_object(json_parser_get_root(parser));

        g_assert_cmpint(json_object_get_int_member(o, "version"), ==, 2);
        return json_node_copy(json_object_get_member(o, args[0][0] == 'l' ? "vms" : "events"));
    }
    return json_node_ref(json_parser_get_root(parser));
}

/* `qemu-numa-ctl ARGS...` (human output) against @state: its stdout and stderr together,
 * with its length in @ret_len (the bytes may hold NULs only if ctl wrote them). */
static gchar *
qn_ctl_text(const char *state, const char *const *args, gsize *ret_len)
{
    g_autofree gchar *bin = g_build_filename(builddir, "qemu-numa-ctl", NULL);
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new(
        G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE);
    g_autoptr(GSubprocess) p = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) out = NULL;

    g_subprocess_launcher_setenv(l, "QEMU_NUMA_STATE_DIR", state, TRUE);
    g_subprocess_launcher_setenv(l, "QEMU_NUMA_CONFIG", "/dev/null", TRUE);
    g_ptr_array_add(argv, bin);
    for (guint i = 0; args[i] != NULL; i++) {
        g_ptr_array_add(argv, (gpointer)args[i]);
    }
    g_ptr_array_add(argv, NULL);
    p = g_subprocess_launcher_spawnv(l, (const char *const *)argv->pdata, &error);
    g_assert_no_error(error);
    g_assert_true(g_subprocess_communicate(p, NULL, NULL, &out, NULL, &error));
    g_assert_true(g_subprocess_get_if_exited(p));
    *ret_len = g_bytes_get_size(out);
    return *ret_len > 0 ? g_strndup(g_bytes_get_data(out, NULL), *ret_len) : g_strdup("");
}

/* Wait (bounded) until `ctl list` shows @want entries; the spec allows 2 s. */
static guint
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

static GPid
qn_monitor_pid_of(const char *qemu_pid)
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

static void
qn_user_qmp(const char *sock, const char *cmd)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) r = qn_qmp_query(sock, cmd, NULL, 10000, &error);

    g_assert_no_error(error);
    g_assert_nonnull(r);
}

static void
test_monitor_lifecycle(void)
{
    g_autofree gchar *state = NULL;
    g_autofree gchar *henv = NULL, *senv = NULL;
    const char *env[] = { "QEMU_NUMA_HUGEPAGE_SIZE=2M", NULL, NULL, NULL };
    Vm *vms[3];
    guint64 before;
    g_autofree gchar *usock[3] = { NULL, NULL, NULL };

    if (qn_skip_unless(mnt2m != NULL, "needs root and 2M hugepages")) {
        return;
    }
    state = qn_new_dir("shared-state");
    henv = g_strdup_printf("QEMU_NUMA_HUGETLBFS=%s", mnt2m);
    senv = g_strdup_printf("QEMU_NUMA_STATE_DIR=%s", state);
    env[1] = henv;
    env[2] = senv;
    before = qn_free_pages(2048);
    /* three VMs started at once, each with the user's own QMP socket (vm->sock) */
    for (guint i = 0; i < 3; i++) {
        g_autofree gchar *name = g_strdup_printf("mon%u", i);
        const char *args[] = { "-name", name, "-m", "32M", "-smp", "1", "-machine", "pc",
                               "-nodefaults", "-display", "none", NULL };

        vms[i] = qn_vm_start(env, args);
        usock[i] = g_strdup(vms[i]->sock);
    }
    for (guint i = 0; i < 3; i++) {
        g_autoptr(JsonNode) st = qn_vm_qmp(vms[i], "query-status");

        (void)st;
    }
    g_assert_cmpuint(qn_wait_entries(state, 3, 5000), ==, 3);
    g_assert_cmpuint(before - qn_free_pages(2048), ==, 3 * 16);
    {
        const char *args[] = { "list", NULL };
        g_autoptr(JsonNode) list = qn_ctl_json(state, args);
        JsonArray *a = json_node_get_array(list);

        for (guint i = 0; i < 3; i++) {
            JsonObject *e = json_array_get_object_element(a, i);
            JsonObject *plan = json_object_get_object_member(e, "plan");

            g_assert_cmpstr(json_object_get_string_member(plan, "kind"), ==, "aligned");
            g_assert_true(g_str_has_prefix(json_object_get_string_member(e, "name"), "mon"));
        }
    }
    /* pause/resume through the user's own socket: seen by status and events */
    qn_user_qmp(usock[0], "cont");
    qn_user_qmp(usock[0], "stop");
    {
        const char *args[] = { "status", "mon0", NULL };
        gint64 deadline = g_get_monotonic_time() + 2 * G_USEC_PER_SEC;
        g_autoptr(JsonNode) st = NULL;

        do {
            g_clear_pointer(&st, json_node_unref);
            st = qn_ctl_json(state, args);
        } while (g_strcmp0(qn_qemu_status(st),
                           "paused") != 0 &&
                 g_get_monotonic_time() < deadline && (g_usleep(50000), TRUE));
        g_assert_cmpstr(qn_qemu_status(st), ==,
                        "paused");
        g_assert_true(json_object_get_boolean_member(
            json_object_get_object_member(json_node_get_object(st), "qemu"), "live"));
        /* measured from numa_maps: node 0 holds at least the guest's 32M */
        {
            JsonObject *m0 = json_array_get_object_element(
                json_object_get_array_member(json_node_get_object(st), "measured_memory"), 0);

            g_assert_cmpint(json_object_get_int_member(m0, "host_node"), ==, 0);
            g_assert_cmpint(json_object_get_int_member(m0, "bytes"), >=, 32 << 20);
        }
    }
    {
        const char *args[] = { "events", "mon0", NULL };
        g_autoptr(JsonNode) ev = qn_ctl_json(state, args);
        JsonArray *a = json_node_get_array(ev);
        guint n = json_array_get_length(a);

        g_assert_cmpuint(n, >=, 2);
        g_assert_cmpstr(json_object_get_string_member(json_array_get_object_element(a, n - 2),
                                                      "event"), ==, "RESUME");
        g_assert_cmpstr(json_object_get_string_member(json_array_get_object_element(a, n - 1),
                                                      "event"), ==, "STOP");
    }
    /* 1: quit from the user's socket: entry gone and pages back within 2 s */
    qn_vm_quit(vms[0]);
    g_assert_cmpuint(qn_wait_files(state, 2, 2000), ==, 2); /* files: `ctl list` would sweep */
    g_assert_cmpuint(before - qn_free_pages_settled(2048, before - 2 * 16), ==, 2 * 16);
    /* 2: kill -9 QEMU: the same */
    kill(atoi(g_subprocess_get_identifier(vms[1]->proc)), SIGKILL);
    g_subprocess_wait(vms[1]->proc, NULL, NULL);
    g_assert_cmpuint(qn_wait_files(state, 1, 2000), ==, 1);
    g_assert_cmpuint(before - qn_free_pages_settled(2048, before - 16), ==, 16);
    /* 3: kill -9 the monitor, then QEMU ends: the entry waits for the next sweep */
    {
        GPid mon = qn_monitor_pid_of(g_subprocess_get_identifier(vms[2]->proc));
        const char *sweep[] = { "sweep", NULL };
        g_autoptr(JsonNode) r = NULL;

        g_assert_cmpint(mon, >, 0);
        kill(mon, SIGKILL);
        qn_vm_quit(vms[2]);
        g_assert_cmpuint(qn_free_pages_settled(2048, before), ==, before); /* the kernel freed the pages */
        r = qn_ctl_json(state, sweep);
        g_assert_nonnull(r);
        g_assert_cmpuint(qn_state_entries(state), ==, 0);
    }
    for (guint i = 0; i < 3; i++) {
        g_free(usock[i]);
        usock[i] = NULL;
    }
    g_object_unref(vms[1]->proc);
    g_free(vms[1]->sock);
    g_free(vms[1]->state);
    g_free(vms[1]);
}

/* 16 launches at once racing for fewer hugepages than they ask for together: the ledger lock
 * serialises plan + reservation, so no node is promised more than it has; each launch either
 * runs with its plan or exits 1 with a clear error. */
static void
test_parallel_race(void)
{
    g_autofree gchar *state = NULL, *henv = NULL, *senv = NULL;
    const char *env[] = { "QEMU_NUMA_HUGEPAGE_SIZE=2M", "QEMU_NUMA_POLICY=restricted", NULL,
                          NULL, NULL };
    guint64 before, per_vm;
    g_autofree gchar *mem = NULL;
    Vm *vms[16];
    guint ran = 0, refused = 0;

    if (qn_skip_unless(mnt2m != NULL, "needs root and 2M hugepages")) {
        return;
    }
    state = qn_new_dir("race-state");
    henv = g_strdup_printf("QEMU_NUMA_HUGETLBFS=%s", mnt2m);
    senv = g_strdup_printf("QEMU_NUMA_STATE_DIR=%s", state);
    env[2] = henv;
    env[3] = senv;
    before = qn_free_pages(2048);
    per_vm = before / 10; /* room for 10 of the 16 */
    mem = g_strdup_printf("%" G_GUINT64_FORMAT "M", per_vm * 2);
    for (guint i = 0; i < 16; i++) {
        g_autofree gchar *name = g_strdup_printf("race%u", i);
        const char *args[] = { "-name", name, "-m", mem, "-smp", "1", "-machine", "pc",
                               "-nodefaults", "-display", "none", NULL };

        vms[i] = qn_vm_start(env, args);
    }
    for (guint i = 0; i < 16; i++) {
        g_autoptr(JsonNode) md = NULL;
        gint64 deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;

        /* either QEMU answers on the user's socket, or the launcher has exited */
        while (md == NULL && g_get_monotonic_time() < deadline) {
            const char *id = g_subprocess_get_identifier(vms[i]->proc);
            g_autofree gchar *stat_path = id ? g_strdup_printf("/proc/%s/stat", id) : NULL;
            g_autofree gchar *stat = NULL;

            md = qn_qmp_query(vms[i]->sock, "query-memdev", NULL, 200, NULL);
            if (md == NULL && (id == NULL || !g_file_get_contents(stat_path, &stat, NULL, NULL) ||
                               strstr(stat, ") Z ") != NULL)) {
                break;
            }
        }
        if (md != NULL) {
            qn_assert_memdev(qn_memdev(md, "qn-ram0"), (gint64)(per_vm * 2) << 20, "bind");
            ran++;
            continue;
        }
        /* no QMP: the launch must have failed cleanly */
        {
            g_autofree gchar *err = NULL;

            g_assert_true(g_subprocess_communicate_utf8(vms[i]->proc, NULL, NULL, NULL, &err,
                                                        NULL));
            g_assert_cmpint(g_subprocess_get_exit_status(vms[i]->proc), ==, 1);
            if (!g_str_has_prefix(err, "qemu-numa: policy restricted: no aligned plan")) {
                g_error("launch %u: unexpected error: %s", i, err);
            }
            g_assert_null(strchr(err, '\n') == err + strlen(err) - 1 ? NULL : strchr(err, '\n'));
            refused++;
        }
    }
    g_test_message("%u ran, %u refused, %" G_GUINT64_FORMAT " pages each of %" G_GUINT64_FORMAT,
                   ran, refused, per_vm, before);
    g_assert_cmpuint(ran, ==, before / per_vm); /* every page that could be used, was */
    g_assert_cmpuint(ran + refused, ==, 16);
    g_assert_cmpuint(before - qn_free_pages(2048), ==, ran * per_vm);
    g_assert_cmpuint(qn_wait_entries(state, ran, 5000), ==, ran);
    for (guint i = 0; i < 16; i++) {
        if (g_subprocess_get_identifier(vms[i]->proc) != NULL) {
            qn_vm_quit(vms[i]);
        } else {
            g_object_unref(vms[i]->proc);
            g_free(vms[i]->sock);
            g_free(vms[i]->state);
            g_free(vms[i]);
        }
    }
    g_assert_cmpuint(qn_free_pages_settled(2048, before), ==, before);
    g_assert_cmpuint(qn_wait_entries(state, 0, 2000), ==, 0);
}

static gchar *
qn_task_cpus(const char *pid, gint64 tid)
{
    g_autofree gchar *path = g_strdup_printf("/proc/%s/task/%" G_GINT64_FORMAT "/status", pid,
                                             tid);
    g_autofree gchar *text = NULL;
    const char *p;

    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    p = strstr(text, "Cpus_allowed_list:");
    g_assert_nonnull(p);
    p += strlen("Cpus_allowed_list:");
    while (*p == '\t' || *p == ' ') {
        p++;
    }
    return g_strndup(p, strcspn(p, "\n"));
}

/* Dedicated vCPUs: each vCPU thread's affinity is its planned pCPU, every other thread's the
 * emulator pCPU; the launcher added -S and the monitor resumed the guest after pinning. A
 * second VM asking for dedicated pCPUs does not get the ones the first holds. */
static void
test_monitor_pinning(void)
{
    g_autofree gchar *state = NULL, *henv = NULL, *senv = NULL;
    const char *env[] = { "QEMU_NUMA_HUGEPAGE_SIZE=2M", "QEMU_NUMA_DEDICATED_CPUS=on",
                          "QEMU_NUMA_EMULATOR_THREADS=isolate", "QEMU_NUMA_POLICY=restricted",
                          NULL, NULL, NULL };
    const char *args[] = { "-name", "pin0", "-m", "32M", "-smp", "1", "-machine", "pc",
                           "-nodefaults", "-display", "none", NULL };
    Vm *vm;
    g_autoptr(JsonNode) st = NULL;
    g_autoptr(JsonNode) cpus = NULL;
    const char *status_args[] = { "status", "pin0", NULL };
    JsonObject *plan;
    gint64 vcpu_pcpu;
    const char *emu;
    const char *pid;

    if (qn_skip_unless(mnt2m != NULL && g_get_num_processors() >= 2,
                       "needs root, 2M hugepages and 2 CPUs")) {
        return;
    }
    state = qn_new_dir("pin-state");
    henv = g_strdup_printf("QEMU_NUMA_HUGETLBFS=%s", mnt2m);
    senv = g_strdup_printf("QEMU_NUMA_STATE_DIR=%s", state);
    env[4] = henv;
    env[5] = senv;
    vm = qn_vm_start_full(env, args, FALSE);
    pid = g_subprocess_get_identifier(vm->proc);
    {
        /* running once pinned: wait (bounded) for the monitor's cont */
        gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

        for (;;) {
            g_autoptr(JsonNode) q = qn_vm_qmp(vm, "query-status");

            if (json_object_get_boolean_member(json_node_get_object(q), "running") ||
                g_get_monotonic_time() > deadline) {
                g_assert_true(json_object_get_boolean_member(json_node_get_object(q),
                                                             "running"));
                break;
            }
            g_usleep(50 * 1000);
        }
    }
    st = qn_ctl_json(state, status_args);
    plan = json_object_get_object_member(json_node_get_object(st), "plan");
    g_assert_true(json_object_get_boolean_member(plan, "dedicated"));
    vcpu_pcpu = json_array_get_int_element(
        json_object_get_array_member(
            json_array_get_object_element(json_object_get_array_member(plan, "guest_nodes"), 0),
            "pcpus"),
        0);
    emu = json_object_get_string_member(plan, "emulator_pcpus");
    g_assert_cmpstr(json_object_get_string_member(json_node_get_object(st), "pinned_cpus"), !=,
                    "");
    cpus = qn_vm_qmp(vm, "query-cpus-fast");
    {
        JsonArray *a = json_node_get_array(cpus);
        gint64 vtid = json_object_get_int_member(json_array_get_object_element(a, 0),
                                                 "thread-id");
        g_autofree gchar *vaff = qn_task_cpus(pid, vtid);
        g_autofree gchar *want = g_strdup_printf("%" G_GINT64_FORMAT, vcpu_pcpu);
        g_autofree gchar *task_dir = g_strdup_printf("/proc/%s/task", pid);
        g_autoptr(GDir) d = g_dir_open(task_dir, 0, NULL);
        const char *n;

        g_assert_cmpstr(vaff, ==, want);
        while ((n = g_dir_read_name(d)) != NULL) {
            gint64 tid = g_ascii_strtoll(n, NULL, 10);
            g_autofree gchar *aff = NULL;

            if (tid == vtid) {
                continue;
            }
            aff = qn_task_cpus(pid, tid);
            g_assert_cmpstr(aff, ==, emu);
        }
    }
    /* a second dedicated VM: both pCPUs are held by the first: refused (restricted) */
    {
        g_autofree gchar *bin = g_build_filename(builddir, "qemu-numa", NULL);
        const char *argv2[] = { bin, "-m", "32M", "-smp", "1", "-machine", "pc", "-nodefaults",
                                "-display", "none", NULL };
        g_autoptr(GSubprocessLauncher) l = qn_launcher(state, env);
        g_autoptr(GSubprocess) p = g_subprocess_launcher_spawnv(l, argv2, NULL);
        g_autofree gchar *err = NULL;

        g_assert_true(g_subprocess_communicate_utf8(p, NULL, NULL, NULL, &err, NULL));
        g_assert_cmpint(g_subprocess_get_exit_status(p), ==, 1);
        g_assert_nonnull(strstr(err, "policy restricted: no aligned plan"));
    }
    qn_vm_quit(vm);
}

/* Invoked as qemu-system-x86_64 through a link first in PATH (make install's libexec link),
 * qemu-numa finds the real QEMU further down PATH and never execs itself. */
static void
test_path_link(void)
{
    g_autofree gchar *dir = qn_new_dir("path");
    g_autofree gchar *link = g_build_filename(dir, "qemu-system-x86_64", NULL);
    g_autofree gchar *target = g_build_filename(builddir, "qemu-numa", NULL);
    g_autofree gchar *path = g_strdup_printf("%s:%s", dir, g_getenv("PATH"));
    g_autoptr(GSubprocessLauncher) l = qn_launcher(dir, NULL);
    const char *argv[] = { "qemu-system-x86_64", "-version", NULL };
    g_autoptr(GSubprocess) p = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree gchar *out = NULL;

    g_assert_cmpint(symlink(target, link), ==, 0);
    g_subprocess_launcher_set_flags(l, G_SUBPROCESS_FLAGS_STDOUT_PIPE);
    g_subprocess_launcher_setenv(l, "PATH", path, TRUE);
    p = g_subprocess_launcher_spawnv(l, argv, &error);
    g_assert_no_error(error);
    g_assert_true(g_subprocess_communicate_utf8(p, NULL, NULL, &out, NULL, &error));
    g_assert_cmpint(g_subprocess_get_exit_status(p), ==, 0);
    g_assert_true(g_str_has_prefix(out, "QEMU emulator version"));
}

/* SIGKILL at every step of a launch (test-only crash points), two guest nodes so that the
 * reservation can die between them: afterwards no hugepage is held, `sweep` leaves no entry,
 * and a normal launch works. */
static void
test_crash_points(void)
{
    static const char *const points[] = { "before-plan", "after-plan", "reserving",
                                          "reserving-node-0", "reserving-node-1",
                                          "after-reserve", "before-exec" };
    g_autofree gchar *state = NULL, *henv = NULL, *senv = NULL;
    g_autofree gchar *bin = g_build_filename(builddir, "qemu-numa", NULL);
    guint64 before;

    if (qn_skip_unless(mnt2m != NULL, "needs root and 2M hugepages")) {
        return;
    }
    state = qn_new_dir("crash-state");
    henv = g_strdup_printf("QEMU_NUMA_HUGETLBFS=%s", mnt2m);
    senv = g_strdup_printf("QEMU_NUMA_STATE_DIR=%s", state);
    before = qn_free_pages(2048);
    for (guint i = 0; i < G_N_ELEMENTS(points); i++) {
        g_autofree gchar *crash = g_strdup_printf("QEMU_NUMA_TEST_CRASH=%s", points[i]);
        const char *env[] = { "QEMU_NUMA_HUGEPAGE_SIZE=2M", "QEMU_NUMA_GUEST_NODES=2", henv,
                              senv, crash, NULL };
        const char *argv[] = { bin, "-m", "128M", "-smp", "2", "-machine", "pc", "-nodefaults",
                               "-display", "none", "-S", NULL };
        g_autoptr(GSubprocessLauncher) l = qn_launcher(state, env);
        g_autoptr(GSubprocess) p = g_subprocess_launcher_spawnv(l, argv, NULL);
        const char *sweep[] = { "sweep", NULL };
        g_autoptr(JsonNode) r = NULL;

        g_assert_nonnull(p);
        g_assert_true(g_subprocess_wait(p, NULL, NULL));
        if (!g_subprocess_get_if_signaled(p) || g_subprocess_get_term_sig(p) != SIGKILL) {
            g_test_fail_printf("crash point %s: the launcher was not killed there", points[i]);
        }
        g_assert_cmpuint(qn_free_pages_settled(2048, before), ==, before);
        r = qn_ctl_json(state, sweep);
        g_assert_nonnull(r);
        g_assert_cmpuint(qn_wait_entries(state, 0, 2000), ==, 0);
    }
    {
        const char *env[] = { "QEMU_NUMA_HUGEPAGE_SIZE=2M", henv, senv, NULL };
        const char *args[] = { "-m", "64M", "-machine", "pc", "-nodefaults", "-display", "none",
                               NULL };
        Vm *vm = qn_vm_start(env, args);
        g_autoptr(JsonNode) md = qn_vm_qmp(vm, "query-memdev");

        qn_assert_memdev(qn_memdev(md, "qn-ram0"), 64 << 20, "bind");
        qn_vm_quit(vm);
    }
    g_assert_cmpuint(qn_free_pages_settled(2048, before), ==, before);
}

/* A symlink planted where we create files never redirects a write. */
static void
test_planted_symlinks(void)
{
    g_autofree gchar *state = qn_new_dir("planted");
    g_autofree gchar *victim = g_build_filename(tmpdir, "victim", NULL);
    g_autofree gchar *lock = g_build_filename(state, ".lock", NULL);
    g_autofree gchar *bin = g_build_filename(builddir, "qemu-numa-ctl", NULL);
    const char *argv[] = { bin, "sweep", NULL };
    g_autoptr(GSubprocessLauncher) l = qn_launcher(state, NULL);
    g_autoptr(GSubprocess) p = NULL;
    g_autofree gchar *err = NULL;
    struct stat st;

    g_assert_cmpint(symlink(victim, lock), ==, 0);
    p = g_subprocess_launcher_spawnv(l, argv, NULL);
    g_assert_true(g_subprocess_communicate_utf8(p, NULL, NULL, NULL, &err, NULL));
    g_assert_cmpint(g_subprocess_get_exit_status(p), ==, 1);
    g_assert_nonnull(strstr(err, "state directory"));
    g_assert_cmpint(stat(victim, &st), !=, 0); /* not created through the link */
    g_assert_cmpint(stat(state, &st), ==, 0);
}

/* Truncated, garbage and hand-edited ledger files: a launch still plans and runs, `list`
 * reports them and lists the live VM, and nothing deletes them. */
static void
test_garbage_ledger(void)
{
    g_autofree gchar *state = NULL, *henv = NULL, *senv = NULL;
    static const struct {
        const char *file, *content;
    } junk[] = {
        { "99001.json", "{\"version\": 1, \"pid\": 99001, \"plan\": {\"kind\": \"ali" },
        { "99002.json", "\x7f" "ELF garbage \xff\xfe" },
        { "99003.json", "[1, 2, 3]" },
        { "99004.json", "{\"pid\": \"not a number\", \"state\": \"reserved\"}" },
    };
    const char *list[] = { "list", NULL };

    if (qn_skip_unless(mnt2m != NULL, "needs root and 2M hugepages")) {
        return;
    }
    state = qn_new_dir("junk-state");
    henv = g_strdup_printf("QEMU_NUMA_HUGETLBFS=%s", mnt2m);
    senv = g_strdup_printf("QEMU_NUMA_STATE_DIR=%s", state);
    for (guint i = 0; i < G_N_ELEMENTS(junk); i++) {
        g_autofree gchar *udir = qn_udir(state);
        g_autofree gchar *path = g_build_filename(udir, junk[i].file, NULL);

        g_assert_true(g_mkdir(udir, 0755) == 0 || errno == EEXIST);

        g_assert_true(g_file_set_contents(path, junk[i].content, -1, NULL));
    }
    {
        const char *env[] = { "QEMU_NUMA_HUGEPAGE_SIZE=2M", henv, senv, NULL };
        const char *args[] = { "-name", "survivor", "-m", "32M", "-machine", "pc",
                               "-nodefaults", "-display", "none", NULL };
        Vm *vm = qn_vm_start(env, args);
        g_autoptr(JsonNode) md = qn_vm_qmp(vm, "query-memdev");
        g_autoptr(JsonNode) entries = NULL;
        gboolean found = FALSE;

        qn_assert_memdev(qn_memdev(md, "qn-ram0"), 32 << 20, "bind");
        entries = qn_ctl_json(state, list);
        g_assert_nonnull(entries);
        for (guint i = 0; i < json_array_get_length(json_node_get_array(entries)); i++) {
            JsonObject *e = json_array_get_object_element(json_node_get_array(entries), i);

            found |= g_strcmp0(json_object_get_string_member_with_default(e, "name", ""),
                               "survivor") == 0;
        }
        g_assert_true(found);
        qn_vm_quit(vm);
    }
    for (guint i = 0; i < G_N_ELEMENTS(junk); i++) {
        g_autofree gchar *udir = qn_udir(state);
        g_autofree gchar *path = g_build_filename(udir, junk[i].file, NULL);

        g_assert_true(g_mkdir(udir, 0755) == 0 || errno == EEXIST);

        g_assert_true(g_file_test(path, G_FILE_TEST_EXISTS)); /* reported, never deleted */
    }
}

/* ---- issue 6, the remaining faults ---- */

/* Ledger entry files (*.json) in @state, counted directly: `ctl list` would sweep, and these
 * tests must see what the monitor itself removed. Waits (bounded) until there are @want. */
static guint
qn_wait_files(const char *state, guint want, gint64 limit_ms)
{
    gint64 deadline = g_get_monotonic_time() + limit_ms * 1000;
    guint n;

    while ((n = qn_state_entries(state)) != want && g_get_monotonic_time() < deadline) {
        g_usleep(20 * 1000);
    }
    return n;
}

/* What a VM leaves in the state directory is bounded (issue 12, item 8): exits.jsonl moves to
 * exits.jsonl.1 past 256 KiB (one generation), the monitor's <pid>.log goes with its VM, and
 * a hard link planted as exits.jsonl (to a file elsewhere, as fs.protected_hardlinks=0 lets
 * the directory's owner make) is never appended to. */
static void
test_bounded_files(void)
{
    g_autofree gchar *henv = NULL, *senv = NULL;
    const char *env[] = { "QEMU_NUMA_HUGEPAGE_SIZE=2M", NULL, NULL, NULL };
    const char *args[] = { "-name", "bounded", "-m", "32M", "-smp", "1", "-machine", "pc",
                           "-nodefaults", "-display", "none", NULL };

    if (qn_skip_unless(mnt2m != NULL, "needs root and 2M hugepages")) {
        return;
    }
    henv = g_strdup_printf("QEMU_NUMA_HUGETLBFS=%s", mnt2m);
    env[1] = henv;
    for (guint round = 0; round < 2; round++) {
        g_autofree gchar *state = qn_new_dir("bounded-state");
        g_autofree gchar *udir = qn_udir(state);
        g_autofree gchar *exits = g_build_filename(udir, "exits.jsonl", NULL);
        g_autofree gchar *exits1 = g_build_filename(udir, "exits.jsonl.1", NULL);
        g_autofree gchar *victim_dir = qn_new_dir("victim");
        g_autofree gchar *victim = g_build_filename(victim_dir, "victim", NULL);
        g_autofree gchar *old = NULL;
        g_autofree gchar *text = NULL;
        g_autofree gchar *log = NULL;
        g_autofree gchar *want = NULL;
        Vm *vm;
        gint pid;

        senv = (g_free(senv), g_strdup_printf("QEMU_NUMA_STATE_DIR=%s", state));
        env[2] = senv;
        g_assert_cmpint(g_mkdir(udir, 0755), ==, 0); /* as the first launch would make it */
        if (round == 0) { /* 300 KiB of earlier exits */
            GString *g = g_string_new(NULL);

            while (g->len < 300 * 1024) {
                g_string_append(g, "{\"pid\":2,\"name\":\"old\",\"reason\":\"earlier\"}\n");
            }
            old = g_string_free(g, FALSE);
            g_assert_true(g_file_set_contents(exits, old, -1, NULL));
        } else { /* a hard link to a file outside the directory */
            old = g_strdup("VICTIM CONTENTS\n");
            g_assert_true(g_file_set_contents(victim, old, -1, NULL));
            g_assert_cmpint(link(victim, exits), ==, 0);
        }
        vm = qn_vm_start(env, args);
        {
            g_autoptr(JsonNode) st = qn_vm_qmp(vm, "query-status");

            (void)st;
        }
        g_assert_cmpuint(qn_wait_files(state, 1, 5000), ==, 1);
        pid = g_ascii_strtoll(g_subprocess_get_identifier(vm->proc), NULL, 10);
        log = g_strdup_printf("%s/%d.log", udir, pid);
        want = g_strdup_printf("\"pid\":%d,", pid);
        g_assert_true(g_file_test(log, G_FILE_TEST_EXISTS));
        qn_vm_quit(vm);
        g_assert_cmpuint(qn_wait_files(state, 0, 5000), ==, 0);
        /* the monitor is done once its log is gone (it removes it last, with the sockets) */
        for (guint i = 0; i < 100 && g_file_test(log, G_FILE_TEST_EXISTS); i++) {
            g_usleep(20 * 1000);
        }
        g_assert_false(g_file_test(log, G_FILE_TEST_EXISTS));
        if (round == 0) {
            g_assert_true(g_file_get_contents(exits1, &text, NULL, NULL));
            g_assert_cmpstr(text, ==, old); /* the old generation, whole */
            g_clear_pointer(&text, g_free);
            g_assert_true(g_file_get_contents(exits, &text, NULL, NULL));
            g_assert_nonnull(strstr(text, want)); /* this exit, in a new file */
            g_assert_cmpuint(strlen(text), <, 1024);
        } else {
            g_assert_true(g_file_get_contents(victim, &text, NULL, NULL));
            g_assert_cmpstr(text, ==, old); /* not appended to */
            g_assert_false(g_file_test(exits1, G_FILE_TEST_EXISTS));
        }
    }
}

/* The state letter of /proc/@pid/stat (R, S, T, Z, ...), or 0 when the process is gone. */
static char
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

/* Waits (bounded, 20 s) until @pid has stopped itself at a QEMU_NUMA_TEST_PAUSE point. */
static void
qn_wait_stopped(const char *pid)
{
    gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;

    while (qn_proc_state(pid) != 'T' && g_get_monotonic_time() < deadline) {
        g_usleep(10 * 1000);
    }
    g_assert_cmpint(qn_proc_state(pid), ==, 'T');
}

/* Hugetlb memory mapped by @pid, kB (smaps_rollup: its own, whatever the machine's pool does). */
static guint64
qn_hugetlb_kb(const char *pid)
{
    g_autofree gchar *path = g_strdup_printf("/proc/%s/smaps_rollup", pid);
    g_autofree gchar *text = NULL;
    g_auto(GStrv) lines = NULL;
    guint64 kb = 0;

    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    lines = g_strsplit(text, "\n", -1);
    for (guint i = 0; lines[i] != NULL; i++) {
        if (g_str_has_prefix(lines[i], "Shared_Hugetlb:") ||
            g_str_has_prefix(lines[i], "Private_Hugetlb:")) {
            kb += g_ascii_strtoull(strchr(lines[i], ':') + 1, NULL, 10);
        }
    }
    return kb;
}

/* stderr of a failed launch is exactly one line, "qemu-numa: ..." containing @want. */
static void
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

/* Runs qemu-numa @args to its end with @env (VAR=value strings) and @state; returns its exit
 * status (128 + signal if killed), its stderr in @ret_err. */
static gint
qn_run_launcher(const char *state, const char *const *env, const char *const *args,
                gchar **ret_err)
{
    g_autofree gchar *bin = g_build_filename(builddir, "qemu-numa", NULL);
    g_autoptr(GSubprocessLauncher) l = qn_launcher(state, env);
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autoptr(GSubprocess) p = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) err = NULL;

    g_ptr_array_add(argv, bin);
    for (guint i = 0; args[i] != NULL; i++) {
        g_ptr_array_add(argv, (gpointer)args[i]);
    }
    g_ptr_array_add(argv, NULL);
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

static void
qn_vm_free(Vm *vm)
{
    g_object_unref(vm->proc);
    g_free(vm->sock);
    g_free(vm->state);
    g_free(vm);
}

/* kill -9 of QEMU and of its monitor together: the kernel frees the pages; the entry, whose
 * monitor is gone, waits for the next sweep (a launch or `ctl sweep`), which removes it and
 * QEMU's sockets, and a launch in the same state directory then works. */
static void
test_monitor_kill_both(void)
{
    g_autofree gchar *state = NULL, *henv = NULL, *senv = NULL;
    const char *env[] = { "QEMU_NUMA_HUGEPAGE_SIZE=2M", NULL, NULL, NULL };
    const char *args[] = { "-name", "both", "-m", "32M", "-machine", "pc", "-nodefaults",
                           "-display", "none", NULL };
    const char *sweep[] = { "sweep", NULL };
    guint64 before;
    Vm *vm;
    GPid mon, qemu;

    if (qn_skip_unless(mnt2m != NULL, "needs root and 2M hugepages")) {
        return;
    }
    state = qn_new_dir("both-state");
    henv = g_strdup_printf("QEMU_NUMA_HUGETLBFS=%s", mnt2m);
    senv = g_strdup_printf("QEMU_NUMA_STATE_DIR=%s", state);
    env[1] = henv;
    env[2] = senv;
    before = qn_free_pages(2048);
    vm = qn_vm_start(env, args);
    {
        g_autoptr(JsonNode) st = qn_vm_qmp(vm, "query-status");

        (void)st;
    }
    qemu = (GPid)atoi(g_subprocess_get_identifier(vm->proc));
    {
        gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;

        while ((mon = qn_monitor_pid_of(g_subprocess_get_identifier(vm->proc))) == 0 &&
               g_get_monotonic_time() < deadline) {
            g_usleep(20 * 1000);
        }
    }
    g_assert_cmpint(mon, >, 0);
    g_assert_cmpuint(before - qn_free_pages(2048), ==, 16);
    kill(mon, SIGKILL);
    kill(qemu, SIGKILL);
    g_subprocess_wait(vm->proc, NULL, NULL);
    g_assert_cmpuint(qn_free_pages_settled(2048, before), ==, before);
    g_assert_cmpuint(qn_state_entries(state), ==, 1); /* nobody left to remove it */
    {
        g_autoptr(JsonNode) r = qn_ctl_json(state, sweep);

        g_assert_nonnull(r);
        g_assert_cmpint(json_object_get_int_member(json_node_get_object(r), "removed"), ==, 1);
    }
    g_assert_cmpuint(qn_state_entries(state), ==, 0);
    {
        g_autofree gchar *udir = qn_udir(state);
        g_autofree gchar *sock = g_strdup_printf("%s/%d.qmp", udir, qemu);

        g_assert_false(g_file_test(sock, G_FILE_TEST_EXISTS));
    }
    qn_vm_free(vm);
    vm = qn_vm_start(env, args);
    {
        g_autoptr(JsonNode) md = qn_vm_qmp(vm, "query-memdev");

        qn_assert_memdev(qn_memdev(md, "qn-ram0"), 32 << 20, "bind");
    }
    qn_vm_quit(vm);
    g_assert_cmpuint(qn_free_pages_settled(2048, before), ==, before);
    g_assert_cmpuint(qn_wait_files(state, 0, 2000), ==, 0);
}

/* QEMU exits before the monitor connects: (a) a "QEMU" that exits at once (/bin/true: no QMP
 * socket ever), (b) real QEMU refusing a bad machine property before it creates its monitors.
 * The monitor itself (no sweep) removes the entry within 2 s and records the exit; no page is
 * held. */
static void
test_monitor_qemu_exits_early(void)
{
    g_autofree gchar *henv = NULL;
    guint64 before;

    if (qn_skip_unless(mnt2m != NULL, "needs root and 2M hugepages")) {
        return;
    }
    henv = g_strdup_printf("QEMU_NUMA_HUGETLBFS=%s", mnt2m);
    before = qn_free_pages(2048);
    for (guint k = 0; k < 2; k++) {
        g_autofree gchar *state = qn_new_dir("early-state");
        g_autofree gchar *udir = qn_udir(state);
        g_autofree gchar *exits = g_build_filename(udir, "exits.jsonl", NULL);
        g_autofree gchar *text = NULL;
        g_autofree gchar *err = NULL;
        const char *env[] = { "QEMU_NUMA_HUGEPAGE_SIZE=2M", henv,
                              k == 0 ? "QEMU_NUMA_QEMU=/bin/true" : NULL, NULL };
        const char *args[] = { "-name", "early", "-m", "32M", "-machine",
                               k == 0 ? "pc" : "pc,qn-no-such-property=on", "-nodefaults",
                               "-display", "none", NULL };
        gint rc = qn_run_launcher(state, env, args, &err);

        g_test_message("early exit %u: rc %d, stderr: %s", k, rc, err);
        g_assert_cmpint(rc, ==, k == 0 ? 0 : 1); /* /bin/true's status, QEMU's */
        g_assert_cmpuint(qn_wait_files(state, 0, 2000), ==, 0);
        g_assert_cmpuint(qn_free_pages_settled(2048, before), ==, before);
        {
            /* the exit is recorded once the entry is gone: wait for the line (bounded) */
            gint64 deadline = g_get_monotonic_time() + 2 * G_USEC_PER_SEC;

            while (!g_file_get_contents(exits, &text, NULL, NULL) &&
                   g_get_monotonic_time() < deadline) {
                g_usleep(20 * 1000);
            }
        }
        g_assert_nonnull(text);
        g_assert_nonnull(strstr(text, "\"name\":\"early\""));
    }
}

/* The pool shrinks between planning and allocating: the launcher stops itself just before
 * guest node 0's fallocate (QEMU_NUMA_TEST_PAUSE), the test takes all but 16 of the free
 * pages through its own hugetlbfs file, then lets it go on. restricted: exit 1, one line, no
 * page held, no entry. best-effort: QEMU runs on memory the OS allocates, the entry says
 * "fallback" and why, and no hugepage is held for it. */
static void
test_pool_shrinks(gconstpointer data)
{
    const char *policy = data;
    gboolean restricted = strcmp(policy, "restricted") == 0;
    g_autofree gchar *state = NULL, *henv = NULL, *penv = NULL, *thief_path = NULL;
    const char *env[] = { "QEMU_NUMA_HUGEPAGE_SIZE=2M", "QEMU_NUMA_TEST_PAUSE=allocating-node-0",
                          NULL, NULL, NULL };
    const char *args[] = { "-name", "shrink", "-m", "64M", "-machine", "pc", "-nodefaults",
                           "-display", "none", NULL };
    guint64 before, stolen;
    int thief;
    Vm *vm;
    const char *pid;

    if (qn_skip_unless(mnt2m != NULL, "needs root and 2M hugepages")) {
        return;
    }
    henv = g_strdup_printf("QEMU_NUMA_HUGETLBFS=%s", mnt2m);
    penv = g_strdup_printf("QEMU_NUMA_POLICY=%s", policy);
    env[2] = henv;
    env[3] = penv;
    before = qn_free_pages(2048);
    vm = qn_vm_start(env, args);
    state = g_strdup(vm->state);
    pid = g_subprocess_get_identifier(vm->proc);
    qn_wait_stopped(pid);
    /* planned (32 pages) and its entry says "reserving", but nothing allocated yet */
    g_assert_cmpuint(qn_state_entries(state), ==, 1);
    /* another process takes pages: all but 16, fewer than the 32 planned (counted now: the
     * pool is the machine's, and libvirt's QEMUs beside these tests may move it) */
    stolen = qn_free_pages(2048) - 16;
    before = stolen + 16;
    thief_path = g_build_filename(mnt2m, "thief", NULL);
    thief = open(thief_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    g_assert_cmpint(thief, >=, 0);
    unlink(thief_path);
    g_assert_cmpint(fallocate(thief, 0, 0, (off_t)(stolen << 21)), ==, 0);
    g_assert_cmpuint(qn_free_pages(2048), ==, 16);
    kill(atoi(pid), SIGCONT);
    if (restricted) {
        g_autofree gchar *err = NULL;
        g_autoptr(GError) error = NULL;

        g_assert_true(g_subprocess_communicate_utf8(vm->proc, NULL, NULL, NULL, &err, &error));
        g_assert_no_error(error);
        g_test_message("restricted, pool shrunk to 16 pages: %s", err);
        g_assert_cmpint(g_subprocess_get_exit_status(vm->proc), ==, 1);
        qn_assert_one_line(err, "has fewer than 32 free 2M hugepages");
        g_assert_cmpuint(qn_free_pages_settled(2048, 16), ==, 16); /* nothing held */
        g_assert_cmpuint(qn_state_entries(state), ==, 0);
        qn_vm_free(vm);
    } else {
        g_autoptr(JsonNode) md = qn_vm_qmp(vm, "query-memdev");
        const char *list_args[] = { "list", NULL };
        g_autoptr(JsonNode) list = qn_ctl_json(state, list_args);
        JsonObject *e, *plan;

        /* QEMU's own -m RAM, no qn-ram backend, no hugepage taken for it */
        g_assert_cmpuint(json_array_get_length(json_node_get_array(md)), ==, 1);
        g_assert_cmpstr(json_object_get_string_member(
                            json_array_get_object_element(json_node_get_array(md), 0), "id"),
                        ==, "pc.ram");
        g_assert_cmpuint(qn_hugetlb_kb(pid), ==, 0);
        {
            /* nor an fd of the failed reservation, which would hold pages unmapped */
            g_autofree gchar *fds = g_strdup_printf("/proc/%s/fd", pid);
            g_autoptr(GDir) d = g_dir_open(fds, 0, NULL);
            const char *n;

            g_assert_nonnull(d);
            while ((n = g_dir_read_name(d)) != NULL) {
                g_autofree gchar *link = g_build_filename(fds, n, NULL);
                g_autofree gchar *target = g_file_read_link(link, NULL);

                g_assert_false(target != NULL && g_str_has_prefix(target, mnt2m));
            }
        }
        g_assert_cmpuint(json_array_get_length(json_node_get_array(list)), ==, 1);
        e = json_array_get_object_element(json_node_get_array(list), 0);
        plan = json_object_get_object_member(e, "plan");
        g_assert_cmpstr(json_object_get_string_member(plan, "kind"), ==, "fallback");
        g_test_message("best-effort, pool shrunk: reason '%s'",
                       json_object_get_string_member(plan, "reason"));
        g_assert_nonnull(strstr(json_object_get_string_member(plan, "reason"),
                                "has fewer than 32 free 2M hugepages"));
        g_assert_cmpuint(json_array_get_length(json_object_get_array_member(e, "reservations")),
                         ==, 0);
        qn_vm_quit(vm);
        g_assert_cmpuint(qn_wait_files(state, 0, 2000), ==, 0);
    }
    close(thief);
    g_assert_cmpuint(qn_free_pages_settled(2048, before), ==, before);
}

/* The state directory full (a 64 KiB tmpfs mounted over it, filled) or read-only: one line
 * naming the directory, exit 1, no hugepage held, no entry. */
static void
test_state_dir_unusable(gconstpointer data)
{
    const char *how = data;
    g_autofree gchar *state = qn_new_dir("unusable-state");
    g_autofree gchar *henv = NULL, *err = NULL;
    const char *env[] = { "QEMU_NUMA_HUGEPAGE_SIZE=2M", "QEMU_NUMA_POLICY=restricted", NULL,
                          NULL };
    const char *args[] = { "-name", "nospace", "-m", "32M", "-machine", "pc", "-nodefaults",
                           "-display", "none", NULL };
    guint64 before;
    gint rc;

    if (qn_skip_unless(mnt2m != NULL, "needs root and 2M hugepages")) {
        return;
    }
    henv = g_strdup_printf("QEMU_NUMA_HUGETLBFS=%s", mnt2m);
    env[2] = henv;
    if (strcmp(how, "full") == 0) {
        g_autofree gchar *fill = g_build_filename(state, "fill", NULL);
        g_autofree gchar *block = g_malloc0(4096);
        int fd;

        /* in the test's private mount namespace: gone with it */
        g_assert_cmpint(mount("none", state, "tmpfs", 0, "size=64k,mode=0700"), ==, 0);
        fd = open(fill, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        g_assert_cmpint(fd, >=, 0);
        while (write(fd, block, 4096) == 4096) {
        }
        g_assert_cmpint(errno, ==, ENOSPC);
        close(fd);
    } else {
        g_assert_cmpint(mount("none", state, "tmpfs", MS_RDONLY, "mode=0700"), ==, 0);
    }
    before = qn_free_pages(2048);
    rc = qn_run_launcher(state, env, args, &err);
    g_test_message("state directory %s: rc %d, %s", how, rc, err);
    g_assert_cmpint(rc, ==, 1);
    qn_assert_one_line(err, state);
    g_assert_cmpuint(qn_free_pages_settled(2048, before), ==, before);
    g_assert_cmpuint(qn_state_entries(state), ==, 0);
    umount(state);
}

/* A live VM's entry edited by hand (an extra member, its layout changed, a field of ours
 * removed) is kept by launches and sweeps, counted, and the monitor keeps the edit while it
 * records events; the monitor removes it when QEMU exits. */
static void
test_hand_edited_live_entry(void)
{
    g_autofree gchar *state = NULL, *henv = NULL, *senv = NULL, *path = NULL, *udir = NULL;
    const char *env[] = { "QEMU_NUMA_HUGEPAGE_SIZE=2M", NULL, NULL, NULL };
    const char *args[] = { "-name", "edited", "-m", "32M", "-machine", "pc", "-nodefaults",
                           "-display", "none", NULL };
    const char *sweep[] = { "sweep", NULL };
    const char *status[] = { "status", "edited", NULL };
    Vm *vm, *vm2;
    guint64 before;

    if (qn_skip_unless(mnt2m != NULL, "needs root and 2M hugepages")) {
        return;
    }
    state = qn_new_dir("edited-state");
    henv = g_strdup_printf("QEMU_NUMA_HUGETLBFS=%s", mnt2m);
    senv = g_strdup_printf("QEMU_NUMA_STATE_DIR=%s", state);
    env[1] = henv;
    env[2] = senv;
    before = qn_free_pages(2048);
    vm = qn_vm_start(env, args);
    {
        g_autoptr(JsonNode) st = qn_vm_qmp(vm, "query-status");

        (void)st;
    }
    udir = qn_udir(state);
    path = g_strdup_printf("%s/%s.json", udir, g_subprocess_get_identifier(vm->proc));
    {
        /* edit as an operator would, under the ledger lock (the monitor writes too) */
        g_autofree gchar *lock = g_build_filename(state, ".lock", NULL);
        int lfd = open(lock, O_RDWR | O_CLOEXEC);
        g_autoptr(JsonParser) p = json_parser_new();
        g_autoptr(JsonGenerator) gen = json_generator_new();
        g_autofree gchar *text = NULL;
        JsonObject *o;

        g_assert_cmpint(lfd, >=, 0);
        g_assert_cmpint(flock(lfd, LOCK_EX), ==, 0);
        g_assert_true(json_parser_load_from_file(p, path, NULL));
        o = json_node_get_object(json_parser_get_root(p));
        json_object_set_string_member(o, "note", "moved to rack 4 by hand");
        json_object_remove_member(o, "created");
        json_object_remove_member(o, "start_time"); /* cannot be checked against /proc now */
        json_generator_set_root(gen, json_parser_get_root(p));
        text = json_generator_to_data(gen, NULL); /* one line, not our layout */
        g_assert_true(g_file_set_contents(path, text, -1, NULL));
        close(lfd);
    }
    {
        /* a copy under another name, claiming the live VM's pid with a wrong start time: it is
         * reported, and must not make a sweep remove the live VM's own entry */
        g_autofree gchar *text = NULL;
        g_autofree gchar *copy = g_build_filename(udir, "99005.json", NULL);
        g_autofree gchar *edited = NULL;

        g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
        edited = g_strdup_printf("{\"start_time\": 1, %s", strchr(text, '{') + 1);
        g_assert_true(g_file_set_contents(copy, edited, -1, NULL));
    }
    /* a second launch sweeps the ledger, then `ctl sweep`: the edited entry stays */
    vm2 = qn_vm_start(env, (const char *const[]){ "-name", "second", "-m", "32M", "-machine",
                                                  "pc", "-nodefaults", "-display", "none",
                                                  NULL });
    {
        g_autoptr(JsonNode) md = qn_vm_qmp(vm2, "query-memdev"); /* it runs: swept */
        g_autoptr(JsonNode) r = qn_ctl_json(state, sweep);

        qn_assert_memdev(qn_memdev(md, "qn-ram0"), 32 << 20, "bind");
        g_assert_cmpint(json_object_get_int_member(json_node_get_object(r), "removed"), ==, 0);
    }
    g_assert_cmpuint(before - qn_free_pages(2048), ==, 32);
    /* the monitor records a STOP/RESUME and keeps the edit */
    qn_user_qmp(vm->sock, "cont");
    {
        gint64 deadline = g_get_monotonic_time() + 2 * G_USEC_PER_SEC;
        g_autoptr(JsonNode) st = NULL;

        do {
            g_clear_pointer(&st, json_node_unref);
            st = qn_ctl_json(state, status);
            g_assert_nonnull(st);
        } while (g_strcmp0(qn_qemu_status(st),
                           "running") != 0 &&
                 g_get_monotonic_time() < deadline && (g_usleep(50000), TRUE));
        g_assert_cmpstr(qn_qemu_status(st), ==,
                        "running");
        g_assert_cmpstr(json_object_get_string_member(json_node_get_object(st), "note"), ==,
                        "moved to rack 4 by hand");
    }
    qn_vm_quit(vm);
    qn_vm_quit(vm2);
    /* the monitors removed both entries; the copy is reported, never deleted */
    g_assert_cmpuint(qn_wait_files(state, 1, 2000), ==, 1);
    {
        g_autofree gchar *copy = g_build_filename(udir, "99005.json", NULL);

        g_assert_true(g_file_test(copy, G_FILE_TEST_EXISTS));
    }
    g_assert_cmpuint(qn_free_pages_settled(2048, before), ==, before);
}

/* Names QEMU accepts must launch and never become part of a path we write: `../../etc`, with
 * slashes, with spaces and quotes, 4 KiB long, not UTF-8, holding terminal escape sequences.
 * Afterwards the shared state directory holds only files named by pid (and the lock), `ctl
 * list --json` is valid JSON (UTF-8: the non-UTF-8 name shows its bytes as \xNN), `ctl status
 * NAME` finds each VM by the very bytes it was launched with, and the human `list` and
 * `status NAME` put no ESC or BEL byte on root's terminal. */
static void
test_vm_names(void)
{
    g_autofree gchar *state = NULL, *henv = NULL, *senv = NULL, *longname = NULL;
    const char *env[] = { "QEMU_NUMA_HUGEPAGE_SIZE=2M", "QEMU_NUMA_POLICY=restricted", NULL,
                          NULL, NULL };
    const char *names[] = { "../../etc", "a/b/../c/", " spaced 'quoted' \"name\" ",
                            NULL /* 4 KiB */, "not-utf8-\xff\xfe-\xc3(",
                            "\x1b]0;pwned\x07vm\x1b[2J" };
    const char *stored[] = { NULL, NULL, NULL, NULL, "not-utf8-\\xff\\xfe-\\xc3(", NULL };
    Vm *vms[G_N_ELEMENTS(names)];
    guint64 before;
    /* a monitor may be mid-write: its temporary file is named by pid too */
    g_autoptr(GRegex) ours = g_regex_new("^(\\.lock|exits\\.jsonl|[0-9]+\\.(json|log|qmp|ctl\\.qmp)|"
                                         "\\.[0-9]+\\.json\\.[A-Za-z0-9]{6})$", 0, 0, NULL);

    if (qn_skip_unless(mnt2m != NULL, "needs root and 2M hugepages")) {
        return;
    }
    state = qn_new_dir("names-state");
    henv = g_strdup_printf("QEMU_NUMA_HUGETLBFS=%s", mnt2m);
    senv = g_strdup_printf("QEMU_NUMA_STATE_DIR=%s", state);
    env[2] = henv;
    env[3] = senv;
    longname = g_strnfill(4096, 'n');
    names[3] = longname;
    before = qn_free_pages(2048);
    for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
        const char *args[] = { "-name", names[i], "-m", "16M", "-machine", "pc", "-nodefaults",
                               "-display", "none", NULL };
        g_autoptr(JsonNode) md = NULL;

        vms[i] = qn_vm_start(env, args);
        md = qn_vm_qmp(vms[i], "query-memdev");
        qn_assert_memdev(qn_memdev(md, "qn-ram0"), 16 << 20, "bind");
    }
    g_assert_cmpuint(before - qn_free_pages(2048), ==, 8 * G_N_ELEMENTS(names));
    g_assert_cmpuint(qn_wait_files(state, G_N_ELEMENTS(names), 2000), ==, G_N_ELEMENTS(names));
    {
        /* the top holds the lock and our user's directory only; that directory, files
         * named by pid only */
        g_autofree gchar *udir = qn_udir(state);
        g_autofree gchar *uname = g_path_get_basename(udir);
        g_autoptr(GDir) top = g_dir_open(state, 0, NULL);
        g_autoptr(GDir) d = g_dir_open(udir, 0, NULL);
        const char *n;

        while ((n = g_dir_read_name(top)) != NULL) {
            if (strcmp(n, ".lock") != 0 && strcmp(n, uname) != 0) {
                g_test_fail_printf("state directory holds '%s'", n);
            }
        }
        while ((n = g_dir_read_name(d)) != NULL) {
            g_autofree gchar *p = g_build_filename(udir, n, NULL);

            if (!g_regex_match(ours, n, 0, NULL) || g_file_test(p, G_FILE_TEST_IS_DIR)) {
                g_test_fail_printf("user directory holds '%s'", n);
            }
        }
        g_assert_false(g_file_test("/etc.json", G_FILE_TEST_EXISTS));
    }
    {
        const char *list[] = { "list", NULL };
        g_autoptr(JsonNode) l = qn_ctl_json(state, list); /* parses: valid UTF-8 JSON */

        g_assert_nonnull(l);
        g_assert_cmpuint(json_array_get_length(json_node_get_array(l)), ==, G_N_ELEMENTS(names));
    }
    for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
        const char *status[] = { "status", names[i], NULL };
        g_autoptr(JsonNode) st = qn_ctl_json(state, status);
        JsonObject *o;

        if (st == NULL) {
            g_test_fail_printf("ctl status: name %u not found", i);
            continue;
        }
        o = json_node_get_object(st);
        g_assert_cmpstr(json_object_get_string_member(o, "name"), ==,
                        stored[i] ? stored[i] : names[i]);
        g_assert_cmpint(json_object_get_int_member(o, "pid"), ==,
                        atoi(g_subprocess_get_identifier(vms[i]->proc)));
    }
    {
        const char *list[] = { "list", NULL };
        const char *status[] = { "status", names[G_N_ELEMENTS(names) - 1], NULL };
        const char *const *runs[] = { list, status };

        for (guint i = 0; i < G_N_ELEMENTS(runs); i++) {
            gsize len;
            g_autofree gchar *out = qn_ctl_text(state, runs[i], &len);

            g_assert_null(memchr(out, 0x1b, len));
            g_assert_null(memchr(out, 0x07, len));
            g_assert_nonnull(strstr(out, "\\x1b]0;pwned\\x07vm\\x1b[2J"));
        }
    }
    for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
        qn_vm_quit(vms[i]);
    }
    g_assert_cmpuint(qn_wait_files(state, 0, 2000), ==, 0);
    g_assert_cmpuint(qn_free_pages_settled(2048, before), ==, before);
}

typedef struct {
    uid_t uid;
    gid_t gid;
} QnIds;

/* The child becomes @data's uid and gid before exec, as libvirt runs QEMU as `qemu`. Parent
 * death is set after setuid(), which clears it. */
static void
qn_child_setup_ids(gpointer data)
{
    const QnIds *ids = data;

    if (setgroups(0, NULL) != 0 || setgid(ids->gid) != 0 || setuid(ids->uid) != 0) {
        _exit(126);
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static gchar *
qn_proc_status_field(const char *pid, const char *field)
{
    g_autofree gchar *path = g_strdup_printf("/proc/%s/status", pid);
    g_autofree gchar *text = NULL;
    const char *p;

    if (!g_file_get_contents(path, &text, NULL, NULL) || (p = strstr(text, field)) == NULL) {
        return NULL;
    }
    p += strlen(field);
    while (*p == '\t' || *p == ' ') {
        p++;
    }
    return g_strndup(p, strcspn(p, "\t\n"));
}

/* Unprivileged, as libvirt's `qemu` user runs it: with a hugetlbfs mount (uid=, gid=, mode=)
 * and a state directory that uid owns, the VM is placed, its monitor (same uid) records its
 * state and removes the entry when it quits. With a state directory it cannot write, or
 * (restricted) a hugetlbfs mount it cannot write, one line names the directory, exit 1,
 * nothing held. */
static void
test_unprivileged(void)
{
    struct passwd *pw = getpwnam("nobody");
    QnIds ids;
    g_autofree gchar *udir = NULL, *hmnt = NULL, *state = NULL, *rootonly = NULL;
    g_autofree gchar *opts = NULL, *bin = g_build_filename(builddir, "qemu-numa", NULL);
    g_autofree gchar *usock = NULL, *qmp = NULL, *henv = NULL, *senv = NULL;
    guint64 before;

    if (qn_skip_unless(mnt2m != NULL && pw != NULL,
                       "needs root, 2M hugepages and a 'nobody' user")) {
        return;
    }
    ids.uid = pw->pw_uid;
    ids.gid = pw->pw_gid;
    /* the test's directories are root's 0700: let others through to the ones below */
    g_assert_cmpint(chmod(tmpdir, 0711), ==, 0);
    udir = qn_new_dir("unpriv");
    g_assert_cmpint(chmod(udir, 0755), ==, 0);
    hmnt = g_build_filename(udir, "huge", NULL);
    state = g_build_filename(udir, "state", NULL);
    rootonly = g_build_filename(udir, "root-state", NULL);
    g_assert_cmpint(g_mkdir(hmnt, 0755), ==, 0);
    g_assert_cmpint(g_mkdir(state, 0700), ==, 0);
    g_assert_cmpint(chown(state, ids.uid, ids.gid), ==, 0);
    g_assert_cmpint(g_mkdir(rootonly, 0755), ==, 0);
    opts = g_strdup_printf("pagesize=2M,uid=%u,gid=%u,mode=0700", (guint)ids.uid,
                           (guint)ids.gid);
    g_assert_cmpint(mount("none", hmnt, "hugetlbfs", 0, opts), ==, 0);
    usock = g_build_filename(state, "user.sock", NULL);
    qmp = g_strdup_printf("unix:%s,server=on,wait=off", usock);
    henv = g_strdup_printf("QEMU_NUMA_HUGETLBFS=%s", hmnt);
    senv = g_strdup_printf("QEMU_NUMA_STATE_DIR=%s", state);
    before = qn_free_pages(2048);
    {
        const char *env[] = { "QEMU_NUMA_HUGEPAGE_SIZE=2M", "QEMU_NUMA_POLICY=restricted", henv,
                              senv, NULL };
        const char *argv[] = { bin, "-name", "unpriv", "-m", "16M", "-machine", "pc",
                               "-nodefaults", "-display", "none", "-S", "-qmp", qmp, NULL };
        g_autoptr(GSubprocessLauncher) l = qn_launcher(state, env);
        g_autoptr(GSubprocess) p = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) md = NULL;
        g_autofree gchar *uid = NULL, *muid = NULL;
        const char *pid;
        GPid mon = 0;

        g_subprocess_launcher_set_child_setup(l, qn_child_setup_ids, &ids, NULL);
        p = g_subprocess_launcher_spawnv(l, argv, &error);
        g_assert_no_error(error);
        pid = g_subprocess_get_identifier(p);
        md = qn_qmp_query(usock, "query-memdev", NULL, 20000, &error);
        g_assert_no_error(error);
        qn_assert_memdev(qn_memdev(md, "qn-ram0"), 16 << 20, "bind");
        g_assert_cmpuint(before - qn_free_pages(2048), ==, 8);
        uid = qn_proc_status_field(pid, "Uid:");
        {
            g_autofree gchar *want = g_strdup_printf("%u", (guint)ids.uid);

            g_assert_true(g_str_has_prefix(uid, want)); /* QEMU runs as that user */
        }
        {
            /* the monitor runs as the same user and records QEMU's state itself */
            const char *status[] = { "status", "unpriv", NULL };
            gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
            g_autoptr(JsonNode) st = NULL;

            while ((mon = qn_monitor_pid_of(pid)) == 0 && g_get_monotonic_time() < deadline) {
                g_usleep(20 * 1000);
            }
            g_assert_cmpint(mon, >, 0);
            {
                g_autofree gchar *m = g_strdup_printf("%d", mon);

                muid = qn_proc_status_field(m, "Uid:");
            }
            g_assert_cmpstr(muid, ==, uid);
            do {
                g_clear_pointer(&st, json_node_unref);
                st = qn_ctl_json(state, status);
                g_assert_nonnull(st);
            } while (g_strcmp0(qn_qemu_status(st),
                               "prelaunch") != 0 &&
                     g_get_monotonic_time() < deadline && (g_usleep(50000), TRUE));
            g_assert_cmpstr(qn_qemu_status(st), ==,
                            "prelaunch");
        }
        {
            g_autoptr(JsonNode) q = qn_qmp_query(usock, "quit", NULL, 10000, NULL);

            (void)q;
        }
        g_assert_true(g_subprocess_wait(p, NULL, NULL));
        g_assert_cmpuint(qn_wait_files(state, 0, 2000), ==, 0); /* the monitor's doing */
        g_assert_cmpuint(qn_free_pages_settled(2048, before), ==, before);
    }
    /* a state directory it cannot write; then a hugetlbfs mount it cannot write (root's) */
    for (guint k = 0; k < 2; k++) {
        g_autofree gchar *s2 = g_strdup_printf("QEMU_NUMA_STATE_DIR=%s", k == 0 ? rootonly
                                                                                 : state);
        g_autofree gchar *h2 = g_strdup_printf("QEMU_NUMA_HUGETLBFS=%s", k == 0 ? hmnt : mnt2m);
        const char *env[] = { "QEMU_NUMA_HUGEPAGE_SIZE=2M", "QEMU_NUMA_POLICY=restricted", h2,
                              s2, NULL };
        const char *argv[] = { bin, "-m", "16M", "-machine", "pc", "-nodefaults", "-display",
                               "none", "-S", NULL };
        g_autoptr(GSubprocessLauncher) l = qn_launcher(state, env);
        g_autoptr(GSubprocess) p = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree gchar *err = NULL;

        g_subprocess_launcher_set_child_setup(l, qn_child_setup_ids, &ids, NULL);
        p = g_subprocess_launcher_spawnv(l, argv, &error);
        g_assert_no_error(error);
        g_assert_true(g_subprocess_communicate_utf8(p, NULL, NULL, NULL, &err, &error));
        g_test_message("unprivileged, %s not writable: %s", k == 0 ? "state directory"
                                                                   : "hugetlbfs mount", err);
        g_assert_cmpint(g_subprocess_get_exit_status(p), ==, 1);
        qn_assert_one_line(err, k == 0 ? rootonly : mnt2m);
        g_assert_cmpuint(qn_free_pages_settled(2048, before), ==, before);
        g_assert_cmpuint(qn_state_entries(k == 0 ? rootonly : state), ==, 0);
    }
    umount(hmnt);
    chmod(tmpdir, 0700);
}

/* ---- 64 launches at once, sampled ---- */

typedef struct {
    const char *state;
    guint64 pool;             /* node 0's free 2M pages when the test began */
    gint stop;                /* atomic: the main thread is done launching */
    guint samples;
    guint64 max_reserved;     /* most 2M pages the ledger held at one sample */
    guint64 max_used;         /* most pages gone from the pool at one sample */
    guint violations;
    gchar *first_violation;
} QnSampler;

/* 2M pages the ledger files in @state say are reserved (aligned plans), read without the
 * ledger lock (files are replaced atomically, so each read is a whole entry). */
static guint64
qn_ledger_pages(const char *top)
{
    g_autofree gchar *state = qn_udir(top); /* the launches are root's */
    g_autoptr(GDir) d = g_dir_open(state, 0, NULL);
    const char *n;
    guint64 pages = 0;

    while (d != NULL && (n = g_dir_read_name(d)) != NULL) {
        g_autofree gchar *path = NULL;
        g_autoptr(JsonParser) p = NULL;
        JsonObject *plan;
        JsonArray *gns;

        if (n[0] == '.' || !g_str_has_suffix(n, ".json")) {
            continue;
        }
        path = g_build_filename(state, n, NULL);
        p = json_parser_new();
        if (!json_parser_load_from_file(p, path, NULL)) {
            continue; /* removed between readdir and open */
        }
        plan = json_object_get_object_member(json_node_get_object(json_parser_get_root(p)),
                                             "plan");
        if (g_strcmp0(json_object_get_string_member(plan, "kind"), "aligned") != 0) {
            continue;
        }
        gns = json_object_get_array_member(plan, "guest_nodes");
        for (guint i = 0; i < json_array_get_length(gns); i++) {
            JsonObject *g = json_array_get_object_element(gns, i);

            if (json_object_get_int_member(g, "page_size") == 2 << 20) {
                pages += (guint64)json_object_get_int_member(g, "bytes") >> 21;
            }
        }
    }
    return pages;
}

/* Every few ms: free pages first, then the ledger. A page in use at the first read belongs to
 * a launch whose entry was written before it allocated, and no entry is removed while this
 * runs (nothing quits yet), so at every sample: pages used <= pages the ledger holds <= the
 * pool. */
static gpointer
qn_sampler(gpointer data)
{
    QnSampler *s = data;

    while (!g_atomic_int_get(&s->stop)) {
        guint64 free_now = qn_free_pages(2048);
        guint64 reserved = qn_ledger_pages(s->state);
        guint64 used = s->pool > free_now ? s->pool - free_now : 0;

        s->samples++;
        s->max_reserved = MAX(s->max_reserved, reserved);
        s->max_used = MAX(s->max_used, used);
        if (reserved > s->pool || used > reserved) {
            if (s->violations++ == 0) {
                s->first_violation = g_strdup_printf(
                    "sample %u: ledger %" G_GUINT64_FORMAT " pages, used %" G_GUINT64_FORMAT
                    ", pool %" G_GUINT64_FORMAT, s->samples, reserved, used, s->pool);
            }
        }
        g_usleep(5 * 1000);
    }
    return NULL;
}

/* 64 launches at once, random sizes (seed printed; QN_TEST_SEED=N repeats a run) summing to
 * about twice node 0's free 2M pages, restricted: a sampler thread checks the counters and the
 * ledger while they run; in the end each launch runs with its plan in the ledger and its pages
 * taken, or exited 1 with one line; everything is released after quit. */
static void
test_parallel_sampled(void)
{
    enum { N = 64 };
    g_autofree gchar *state = NULL, *henv = NULL, *senv = NULL;
    const char *env[] = { "QEMU_NUMA_HUGEPAGE_SIZE=2M", "QEMU_NUMA_POLICY=restricted", NULL,
                          NULL, NULL };
    guint64 seed = g_getenv("QN_TEST_SEED") ? g_ascii_strtoull(g_getenv("QN_TEST_SEED"), NULL,
                                                               10)
                                            : 20261122;
    g_autoptr(GRand) rand = g_rand_new_with_seed((guint32)seed);
    guint64 pages[N], asked = 0, placed_pages = 0, avg;
    Vm *vms[N];
    gboolean ran[N];
    guint placed = 0, refused = 0;
    QnSampler s = { 0 };
    GThread *sampler;
    gint64 t0;

    if (qn_skip_unless(mnt2m != NULL, "needs root and 2M hugepages")) {
        return;
    }
    state = qn_new_dir("sampled-state");
    henv = g_strdup_printf("QEMU_NUMA_HUGETLBFS=%s", mnt2m);
    senv = g_strdup_printf("QEMU_NUMA_STATE_DIR=%s", state);
    env[2] = henv;
    env[3] = senv;
    s.state = state;
    s.pool = qn_free_pages(2048);
    avg = MAX(s.pool / (N / 2), 8);
    for (guint i = 0; i < N; i++) {
        pages[i] = MAX(g_rand_int_range(rand, (gint32)(avg / 2), (gint32)(avg * 3 / 2) + 1), 4);
        asked += pages[i];
    }
    g_test_message("seed %" G_GUINT64_FORMAT " (QN_TEST_SEED), pool %" G_GUINT64_FORMAT
                   " free 2M pages, %d launches asking %" G_GUINT64_FORMAT " pages", seed,
                   s.pool, N, asked);
    sampler = g_thread_new("qn-sampler", qn_sampler, &s);
    t0 = g_get_monotonic_time();
    for (guint i = 0; i < N; i++) {
        g_autofree gchar *name = g_strdup_printf("s%02u", i);
        g_autofree gchar *mem = g_strdup_printf("%" G_GUINT64_FORMAT "M", pages[i] * 2);
        const char *args[] = { "-name", name, "-m", mem, "-smp", "1", "-machine", "pc",
                               "-nodefaults", "-display", "none", NULL };

        vms[i] = qn_vm_start(env, args);
    }
    for (guint i = 0; i < N; i++) {
        g_autoptr(JsonNode) md = NULL;
        gint64 deadline = g_get_monotonic_time() + 120 * G_USEC_PER_SEC;
        const char *id = g_subprocess_get_identifier(vms[i]->proc);

        /* either QEMU answers on the user's socket, or the launcher has exited */
        while (md == NULL && g_get_monotonic_time() < deadline) {
            char st = qn_proc_state(id);

            md = qn_qmp_query(vms[i]->sock, "query-memdev", NULL, 500, NULL);
            if (md == NULL && (st == 0 || st == 'Z')) {
                break;
            }
        }
        ran[i] = md != NULL;
        if (ran[i]) {
            qn_assert_memdev(qn_memdev(md, "qn-ram0"), (gint64)(pages[i] << 21), "bind");
            placed++;
            placed_pages += pages[i];
            continue;
        }
        {
            g_autofree gchar *err = NULL;

            g_assert_true(g_subprocess_communicate_utf8(vms[i]->proc, NULL, NULL, NULL, &err,
                                                        NULL));
            g_assert_cmpint(g_subprocess_get_exit_status(vms[i]->proc), ==, 1);
            qn_assert_one_line(err, "policy restricted: no aligned plan");
            refused++;
        }
    }
    g_atomic_int_set(&s.stop, 1);
    g_thread_join(sampler);
    g_test_message("%u placed (%" G_GUINT64_FORMAT " pages), %u refused in %.1f s; %u samples, "
                   "ledger at most %" G_GUINT64_FORMAT " pages, pool used at most %"
                   G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT, placed, placed_pages, refused,
                   (double)(g_get_monotonic_time() - t0) / G_USEC_PER_SEC, s.samples,
                   s.max_reserved, s.max_used, s.pool);
    if (s.violations > 0) {
        g_test_fail_printf("%u samples broke the books, first: %s", s.violations,
                           s.first_violation);
    }
    g_free(s.first_violation);
    g_assert_cmpuint(placed + refused, ==, N);
    g_assert_cmpuint(placed, >, 0);
    g_assert_cmpuint(refused, >, 0);
    g_assert_cmpuint(placed_pages, <=, s.pool);
    g_assert_cmpuint(s.samples, >, 10);
    /* every placed VM has its plan in the ledger, and the ledger holds exactly those pages */
    g_assert_cmpuint(qn_state_entries(state), ==, placed);
    g_assert_cmpuint(qn_ledger_pages(state), ==, placed_pages);
    for (guint i = 0; i < N; i++) {
        if (ran[i]) {
            qn_vm_quit(vms[i]);
        } else {
            qn_vm_free(vms[i]);
        }
    }
    g_assert_cmpuint(qn_wait_files(state, 0, 5000), ==, 0);
    g_assert_cmpuint(qn_free_pages_settled(2048, s.pool), ==, s.pool);
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
    int p[2];
    pid_t pid;
    gboolean keep = g_getenv("QN_TEST_KEEP") != NULL;

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
        if (mnt2m != NULL) {
            umount2(mnt2m, MNT_DETACH);
        }
        if (have_1g) {
            umount2(mnt1g, MNT_DETACH);
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
        execlp("rm", "rm", "-rf", tmpdir, (char *)NULL);
        _exit(127);
    }
    close(p[0]); /* p[1] stays open, close-on-exec, until this process ends */
}

int
main(int argc, char **argv)
{
    int rc;

    g_test_init(&argc, &argv, NULL);
    builddir = g_strdup(g_getenv("QN_TOP_BUILDDIR") ? g_getenv("QN_TOP_BUILDDIR") : ".");
    tmpdir = g_dir_make_tmp("qn-launch-XXXXXX", NULL);
    {
        /* Node 0's hugepage pool is the machine's: every test program and bench/smoke of every
         * build tree on this machine holds the same lock while it counts pages, a flock on the
         * pool's own sysfs file. It is machine-wide whatever mount namespace or /run a test
         * runs in (.ci/fresh-machine gives each run a /run of its own), and nothing is made. */
        const char *lock = "/sys/devices/system/node/node0/hugepages/hugepages-2048kB/"
                           "nr_hugepages";
        int fd = -1;

        if (geteuid() == 0 && (fd = open(lock, O_RDONLY | O_CLOEXEC)) < 0) {
            setup_error = g_strdup_printf("lock %s: %s", lock, g_strerror(errno));
        } else if (fd >= 0) {
            flock(fd, LOCK_EX); /* held until exit */
        }
    }
    if (setup_error == NULL) {
        qn_setup_hugepages();
    }
    if (setup_error != NULL) {
        g_printerr("# set-up: %s\n", setup_error);
    }
    g_test_add_func("/launch/2m", test_launch_2m);
    g_test_add_func("/launch/1g", test_launch_1g);
    g_test_add_func("/launch/two-guest-nodes", test_launch_two_guest_nodes);
    g_test_add_func("/launch/libvirt-style", test_launch_libvirt_style);
    g_test_add_func("/launch/probe-untouched", test_probe_untouched);
    g_test_add_func("/launch/version", test_version);
    g_test_add_func("/launch/path-link", test_path_link);
    g_test_add_func("/monitor/lifecycle", test_monitor_lifecycle);
    g_test_add_func("/launch/parallel-race", test_parallel_race);
    g_test_add_func("/monitor/pinning", test_monitor_pinning);
    g_test_add_func("/faults/crash-points", test_crash_points);
    g_test_add_func("/faults/planted-symlinks", test_planted_symlinks);
    g_test_add_func("/faults/garbage-ledger", test_garbage_ledger);
    g_test_add_func("/monitor/kill-both", test_monitor_kill_both);
    g_test_add_func("/monitor/qemu-exits-early", test_monitor_qemu_exits_early);
    g_test_add_data_func("/faults/pool-shrinks/restricted", "restricted", test_pool_shrinks);
    g_test_add_data_func("/faults/pool-shrinks/best-effort", "best-effort", test_pool_shrinks);
    g_test_add_data_func("/faults/state-dir/full", "full", test_state_dir_unusable);
    g_test_add_data_func("/faults/state-dir/read-only", "read-only", test_state_dir_unusable);
    g_test_add_func("/faults/hand-edited-live-entry", test_hand_edited_live_entry);
    g_test_add_func("/faults/vm-names", test_vm_names);
    g_test_add_func("/faults/unprivileged", test_unprivileged);
    g_test_add_func("/faults/bounded-files", test_bounded_files);
    g_test_add_func("/launch/parallel-sampled", test_parallel_sampled);
    for (guint i = 0; i < G_N_ELEMENTS(bad_cases); i++) {
        g_autofree gchar *path = g_strdup_printf("/launch/bad-input/%s", bad_cases[i].name);

        g_test_add_data_func(path, &bad_cases[i], test_bad_input);
    }
    qn_start_janitor();
    rc = g_test_run();
    return rc; /* the janitor cleans up once this process is gone */
}
