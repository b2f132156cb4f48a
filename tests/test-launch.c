/* Real QEMU through qemu-numa on this host: hugepages reserved and hugetlbfs mounted by the
 * test, QEMU checked over QMP (query-memdev), the kernel's per-node free_hugepages counters
 * checked before, during and after. Needs root; QN_TEST_REQUIRE_ALL=1 (set by .ci/run) turns
 * a skip into a failure. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib/gstdio.h>

#include "qn-error.h"
#include "qn-qmp-client.h"

static gchar *builddir;
static gchar *tmpdir;
static gchar *mnt2m, *mnt1g;
static gboolean have_1g;

static gboolean
qn_skip_unless(gboolean ok, const char *why)
{
    if (ok) {
        return FALSE;
    }
    if (g_getenv("QN_TEST_REQUIRE_ALL") != NULL) {
        g_test_fail_printf("required but cannot run: %s", why);
    } else {
        g_test_skip(why);
    }
    return TRUE;
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

static guint
qn_state_entries(const char *state)
{
    g_autoptr(GDir) d = g_dir_open(state, 0, NULL);
    const char *n;
    guint count = 0;

    while (d && (n = g_dir_read_name(d)) != NULL) {
        count += g_str_has_suffix(n, ".json");
    }
    return count;
}

typedef struct {
    GSubprocess *proc;
    gchar *sock;
    gchar *state;
} Vm;

static GSubprocessLauncher *
qn_launcher(const char *state, const char *const *env)
{
    GSubprocessLauncher *l = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDERR_PIPE |
                                                       G_SUBPROCESS_FLAGS_STDOUT_SILENCE);

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

/* Start qemu-numa with @args + a QMP socket, paused (-S). */
static Vm *
qn_vm_start(const char *const *env, const char *const *args)
{
    Vm *vm = g_new0(Vm, 1);
    g_autoptr(GSubprocessLauncher) l = NULL;
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GError) error = NULL;

    vm->state = qn_new_dir("state");
    vm->sock = g_strdup_printf("%s/qmp.sock", vm->state);
    l = qn_launcher(vm->state, env);
    g_ptr_array_add(argv, g_build_filename(builddir, "qemu-numa", NULL));
    for (guint i = 0; args[i] != NULL; i++) {
        g_ptr_array_add(argv, g_strdup(args[i]));
    }
    g_ptr_array_add(argv, g_strdup("-S"));
    g_ptr_array_add(argv, g_strdup("-qmp"));
    g_ptr_array_add(argv, g_strdup_printf("unix:%s,server=on,wait=off", vm->sock));
    g_ptr_array_add(argv, NULL);
    vm->proc = g_subprocess_launcher_spawnv(l, (const char *const *)argv->pdata, &error);
    g_assert_no_error(error);
    return vm;
}

static JsonNode *
qn_vm_qmp(Vm *vm, const char *cmd)
{
    g_autoptr(GError) error = NULL;
    JsonNode *r = qn_qmp_query(vm->sock, cmd, NULL, 20000, &error);

    if (r == NULL) {
        g_autofree gchar *err = NULL;
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
    entry = g_strdup_printf("%s/%s.json", vm->state, g_subprocess_get_identifier(vm->proc));
    g_assert_true(g_file_get_contents(entry, &state, NULL, NULL));
    g_assert_nonnull(strstr(state, "\"state\" : \"reserved\""));
    g_assert_nonnull(strstr(state, "\"name\" : \"t2m\""));
    qn_vm_quit(vm);
    g_assert_cmpuint(qn_free_pages(2048), ==, before);
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
    g_assert_cmpuint(qn_free_pages(1048576), ==, before);
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
    g_assert_cmpuint(qn_free_pages(2048), ==, before);
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
    g_assert_cmpuint(qn_free_pages(2048), ==, before);
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
    { "restricted", "QEMU_NUMA_POLICY=restricted", { "-m", "4G", "-smp", "2" },
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
    g_ptr_array_add(argv, bin);
    for (guint i = 0; c->args[i] != NULL; i++) {
        g_ptr_array_add(argv, (gpointer)c->args[i]);
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
        g_assert_cmpuint(qn_free_pages(2048), ==, before2);
    }
}

static void
qn_setup_hugepages(void)
{
    g_autofree gchar *nr = NULL;

    if (geteuid() != 0) {
        return;
    }
    /* At least 256 free 2M pages and 1 free 1G page on node 0 for these tests. */
    if (qn_free_pages(2048) < 256) {
        g_autofree gchar *cur = NULL;
        g_autofree gchar *want = NULL;

        g_file_get_contents("/sys/devices/system/node/node0/hugepages/hugepages-2048kB/"
                            "nr_hugepages", &cur, NULL, NULL);
        want = g_strdup_printf("%" G_GUINT64_FORMAT "\n",
                               g_ascii_strtoull(cur, NULL, 10) + 256 - qn_free_pages(2048));
        qn_write_file("/sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages",
                      want);
    }
    if (qn_free_pages(1048576) < 1) {
        g_autofree gchar *cur = NULL;
        g_autofree gchar *want = NULL;

        g_file_get_contents("/sys/devices/system/node/node0/hugepages/hugepages-1048576kB/"
                            "nr_hugepages", &cur, NULL, NULL);
        want = g_strdup_printf("%" G_GUINT64_FORMAT "\n", g_ascii_strtoull(cur, NULL, 10) + 1);
        qn_write_file("/sys/devices/system/node/node0/hugepages/hugepages-1048576kB/"
                      "nr_hugepages", want);
    }
    mnt2m = g_build_filename(tmpdir, "huge2m", NULL);
    mnt1g = g_build_filename(tmpdir, "huge1g", NULL);
    g_mkdir(mnt2m, 0755);
    g_mkdir(mnt1g, 0755);
    if (qn_free_pages(2048) < 128 || mount("none", mnt2m, "hugetlbfs", 0, "pagesize=2M") != 0) {
        g_clear_pointer(&mnt2m, g_free);
    }
    have_1g = qn_free_pages(1048576) >= 1 &&
              mount("none", mnt1g, "hugetlbfs", 0, "pagesize=1G") == 0;
}

int
main(int argc, char **argv)
{
    int rc;

    g_test_init(&argc, &argv, NULL);
    builddir = g_strdup(g_getenv("QN_TOP_BUILDDIR") ? g_getenv("QN_TOP_BUILDDIR") : ".");
    tmpdir = g_dir_make_tmp("qn-launch-XXXXXX", NULL);
    qn_setup_hugepages();
    g_test_add_func("/launch/2m", test_launch_2m);
    g_test_add_func("/launch/1g", test_launch_1g);
    g_test_add_func("/launch/two-guest-nodes", test_launch_two_guest_nodes);
    g_test_add_func("/launch/libvirt-style", test_launch_libvirt_style);
    g_test_add_func("/launch/probe-untouched", test_probe_untouched);
    for (guint i = 0; i < G_N_ELEMENTS(bad_cases); i++) {
        g_autofree gchar *path = g_strdup_printf("/launch/bad-input/%s", bad_cases[i].name);

        g_test_add_data_func(path, &bad_cases[i], test_bad_input);
    }
    rc = g_test_run();
    if (mnt2m != NULL) {
        umount(mnt2m);
    }
    if (have_1g) {
        umount(mnt1g);
    }
    {
        /* state directories, sockets and mount points of this run */
        const char *rm[] = { "rm", "-rf", tmpdir, NULL };

        g_spawn_sync(NULL, (gchar **)rm, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
                     NULL, NULL);
    }
    return rc;
}
