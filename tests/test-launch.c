/* Real QEMU through qemu-numa on this host, the launch itself: hugepages reserved and hugetlbfs
 * mounted by the test (qn-test-fixture), QEMU checked over QMP (query-memdev), the kernel's
 * per-node free_hugepages counters checked before, during and after; refusals of bad input.
 * Needs root; QN_TEST_REQUIRE_ALL=1 (set by .ci/run) turns a skip into a failure. The monitor
 * is tested in test-monitor.c, faults and races in test-faults.c. */
#include "config.h"

#include <string.h>
#include <unistd.h>

#include "qn-nrt.h"
#include "qn-qmp-client.h"
#include "qn-test-fixture.h"

static void
test_launch_2m(QnTestLaunch *f, gconstpointer data)
{
    const char *args[] = { "-name", "t2m", "-m", "64M", "-smp", "2", "-machine", "pc",
                           "-nodefaults", "-display", "none", NULL };
    guint64 during;
    Vm *vm;
    g_autoptr(JsonNode) md = NULL;
    g_autofree gchar *entry = NULL;
    g_autofree gchar *exe = NULL;
    g_autofree gchar *link = NULL;
    g_autofree gchar *state = NULL;

    if (f->skipped) {
        return;
    }
    vm = qn_vm_start(qn_launch_env(f, NULL), args);
    md = qn_vm_qmp(vm, "query-memdev");
    qn_assert_memdev(qn_memdev(md, "pc.ram"), 64 << 20, "bind");
    during = qn_free_pages(2048);
    /* exactly the guest's 32 pages, held by QEMU's fd */
    g_assert_cmpuint(f->before - during, ==, 32);
    /* QEMU runs in the pid we started (exec, not a child) */
    link = g_strdup_printf("/proc/%s/exe", g_subprocess_get_identifier(vm->proc));
    exe = g_file_read_link(link, NULL);
    g_assert_true(g_str_has_suffix(exe, "qemu-system-x86_64"));
    entry = g_strdup_printf("%s/%s.json", f->udir, g_subprocess_get_identifier(vm->proc));
    g_assert_true(g_file_get_contents(entry, &state, NULL, NULL));
    /* "reserved" by the launcher; QEMU's own status goes to "qemu" (JSON version 2) */
    g_assert_nonnull(strstr(state, "\"state\" : \"reserved\""));
    g_assert_nonnull(strstr(state, "\"pages_per_host_node\" : [\n        {\n          "
                                   "\"host_node\" : 0,\n          \"pages\" : 32"));
    g_assert_nonnull(strstr(state, "\"name\" : \"t2m\""));
    qn_vm_quit(vm);
}

static void
test_launch_1g(QnTestLaunch *f, gconstpointer data)
{
    const char *args[] = { "-m", "1G", "-smp", "1", "-machine", "pc", "-nodefaults", "-display",
                           "none", NULL };
    g_autofree gchar *henv = NULL;
    guint64 before;
    Vm *vm;
    g_autoptr(JsonNode) md = NULL;

    if (f->skipped || qn_launch_skip_unless(f, qn_test_host.have_1g,
                                            "needs root and one free 1G hugepage")) {
        return;
    }
    henv = g_strdup_printf("QEMU_NUMA_HUGETLBFS=%s", qn_test_host.mnt1g);
    before = qn_free_pages(1048576);
    vm = qn_vm_start(qn_launch_env(f, "QEMU_NUMA_HUGEPAGE_SIZE=1G", henv, NULL), args);
    md = qn_vm_qmp(vm, "query-memdev");
    qn_assert_memdev(qn_memdev(md, "pc.ram"), 1 << 30, "bind");
    g_assert_cmpuint(before - qn_free_pages(1048576), ==, 1);
    qn_vm_quit(vm);
    g_assert_cmpuint(qn_free_pages_settled(1048576, before), ==, before);
}

static void
test_launch_two_guest_nodes(QnTestLaunch *f, gconstpointer data)
{
    const char *args[] = { "-m", "128M", "-smp", "2", "-machine", "pc", "-nodefaults",
                           "-display", "none", NULL };
    Vm *vm;
    g_autoptr(JsonNode) md = NULL;

    if (f->skipped) {
        return;
    }
    vm = qn_vm_start(qn_launch_env(f, "QEMU_NUMA_GUEST_NODES=2", NULL), args);
    md = qn_vm_qmp(vm, "query-memdev");
    qn_assert_memdev(qn_memdev(md, "qn-ram0"), 64 << 20, "bind");
    qn_assert_memdev(qn_memdev(md, "qn-ram1"), 64 << 20, "bind");
    g_assert_cmpuint(f->before - qn_free_pages(2048), ==, 64);
    qn_vm_quit(vm);
}

/* libvirt-style: JSON -object on a hugetlbfs directory, -numa node lines; share forced on. No
 * QEMU_NUMA_HUGEPAGE_SIZE: the size is the mount's. */
static void
test_launch_libvirt_style(QnTestLaunch *f, gconstpointer data)
{
    const char *mnt = qn_test_host.mnt2m;
    g_autofree gchar *obj0 = NULL, *obj1 = NULL, *henv = NULL, *senv = NULL;
    Vm *vm;
    g_autoptr(JsonNode) md = NULL;

    if (f->skipped) {
        return;
    }
    henv = g_strdup_printf("QEMU_NUMA_HUGETLBFS=%s", mnt);
    senv = g_strdup_printf("QEMU_NUMA_STATE_DIR=%s", f->state);
    obj0 = g_strdup_printf("{\"qom-type\":\"memory-backend-file\",\"id\":\"ram-node0\","
                           "\"mem-path\":\"%s\",\"prealloc\":true,\"size\":33554432}", mnt);
    obj1 = g_strdup_printf("{\"qom-type\":\"memory-backend-file\",\"id\":\"ram-node1\","
                           "\"mem-path\":\"%s\",\"prealloc\":true,\"size\":33554432}", mnt);
    {
        const char *env[] = { henv, senv, NULL };
        const char *args[] = { "-name", "guest=lv,debug-threads=on", "-machine", "pc",
                               "-m", "64", "-smp", "2,sockets=2,cores=1,threads=1",
                               "-object", obj0, "-numa", "node,nodeid=0,cpus=0,memdev=ram-node0",
                               "-object", obj1, "-numa", "node,nodeid=1,cpus=1,memdev=ram-node1",
                               "-nodefaults", "-display", "none", NULL };

        vm = qn_vm_start(env, args);
    }
    md = qn_vm_qmp(vm, "query-memdev");
    qn_assert_memdev(qn_memdev(md, "ram-node0"), 32 << 20, "bind");
    qn_assert_memdev(qn_memdev(md, "ram-node1"), 32 << 20, "bind");
    g_assert_cmpuint(f->before - qn_free_pages(2048), ==, 32);
    qn_vm_quit(vm);
}

/* issue 16: a hugepage pc-dimm with prealloc on our mount is reserved like a guest node: QEMU
 * gets our fd (share=on: a private mapping would take a second set of pages), query-memdev shows
 * it bound to node 0, node 0's free 2M pages drop by the guest's 32 plus the DIMM's 16 and no
 * more, the ledger's reservations name it, and the tear-down sees every page back. */
static void
test_launch_hugepage_dimm(QnTestLaunch *f, gconstpointer data)
{
    g_autofree gchar *obj = NULL;
    g_autofree gchar *entry = NULL;
    g_autofree gchar *state = NULL;
    g_autoptr(JsonNode) md = NULL;
    Vm *vm;

    if (f->skipped) {
        return;
    }
    obj = g_strdup_printf("memory-backend-file,id=d1,size=32M,mem-path=%s,prealloc=on",
                          qn_test_host.mnt2m);
    {
        const char *args[] = { "-name", "tdimm", "-m", "64M,slots=2,maxmem=256M", "-smp", "2",
                               "-machine", "pc", "-object", obj, "-device",
                               "pc-dimm,id=dimm1,memdev=d1,node=0", "-nodefaults", "-display",
                               "none", NULL };

        vm = qn_vm_start(qn_launch_env(f, NULL), args);
    }
    md = qn_vm_qmp(vm, "query-memdev");
    qn_assert_memdev(qn_memdev(md, "pc.ram"), 64 << 20, "bind");
    qn_assert_memdev(qn_memdev(md, "d1"), 32 << 20, "bind");
    g_assert_cmpuint(f->before - qn_free_pages(2048), ==, 32 + 16);
    entry = g_strdup_printf("%s/%s.json", f->udir, g_subprocess_get_identifier(vm->proc));
    g_assert_true(g_file_get_contents(entry, &state, NULL, NULL));
    g_assert_nonnull(strstr(state, "\"memdev\" : \"d1\",\n      \"host_nodes\" : [\n        0\n"
                                   "      ],\n      \"page_size\" : 2097152,\n      \"bytes\" : "
                                   "33554432,\n      \"pages_per_host_node\" : [\n        {\n"
                                   "          \"host_node\" : 0,\n          \"pages\" : 16"));
    qn_vm_quit(vm);
}

/* One argv element with its run-time numbers folded: `fd=23` and `fd=<qn-ctl>` both become
 * `fd=<>`, `/proc/self/fd/12` and `/proc/self/fd/<qn-ram0>` both `/proc/self/fd/<>`. */
static gchar *
qn_fold_fds(const char *arg)
{
    g_autoptr(GRegex) fd = g_regex_new("fd=(\\d+|<[^>,]*>)", 0, 0, NULL);
    g_autoptr(GRegex) path = g_regex_new("/proc/self/fd/(\\d+|<[^>,]*>)", 0, 0, NULL);
    g_autofree gchar *a = g_regex_replace_literal(path, arg, -1, 0, "/proc/self/fd/<>", 0, NULL);

    return g_regex_replace_literal(fd, a, -1, 0, "fd=<>", 0, NULL);
}

/* What `qemu-numa-ctl plan` prints is what QEMU is exec'd with (the man page promises it): the
 * memory options, our two monitors and, with dedicated CPUs and no -S of the user's, our -S.
 * The plan is taken first, on the same free pages the launch then sees. */
static void
test_launch_argv_as_planned(QnTestLaunch *f, gconstpointer data)
{
    const char *const *env = qn_launch_env(f, "QEMU_NUMA_GUEST_NODES=2",
                                           "QEMU_NUMA_DEDICATED_CPUS=on", NULL);
    g_autofree gchar *qmp_dir = qn_new_dir("argv");
    g_autofree gchar *qmp = g_strdup_printf("unix:%s/qmp.sock,server=on,wait=off", qmp_dir);
    const char *args[] = { "-name", "argv", "-m", "128M", "-smp", "2", "-machine", "pc",
                           "-nodefaults", "-display", "none", "-qmp", qmp, NULL };
    g_autoptr(GPtrArray) plan_args = g_ptr_array_new();
    g_auto(QnCtlRun) r = { 0 };
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autoptr(GSubprocessLauncher) l = NULL;
    g_autoptr(GSubprocess) proc = NULL;
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    g_autofree gchar *cmdline_path = NULL;
    g_autofree gchar *cmdline = NULL;
    g_autofree gchar *sock = g_strdup_printf("%s/qmp.sock", qmp_dir);
    g_autoptr(GError) error = NULL;
    JsonArray *planned;
    gsize len = 0;
    guint n = 0;

    if (f->skipped) {
        return;
    }
    g_ptr_array_add(plan_args, (gpointer) "--json");
    g_ptr_array_add(plan_args, (gpointer) "plan");
    g_ptr_array_add(plan_args, (gpointer) "--");
    for (guint i = 0; args[i] != NULL; i++) {
        g_ptr_array_add(plan_args, (gpointer)args[i]);
    }
    g_ptr_array_add(plan_args, NULL);
    qn_ctl_run(f->state, env, (const char *const *)plan_args->pdata, &r);
    g_assert_true(r.exited);
    g_assert_cmpint(r.status, ==, 0);
    g_assert_true(json_parser_load_from_data(parser, r.out, -1, &error));
    planned = json_object_get_array_member(json_node_get_object(json_parser_get_root(parser)),
                                           "argv");

    l = qn_launcher(f->state, env);
    g_ptr_array_add(argv, g_build_filename(qn_test_host.builddir, "qemu-numa", NULL));
    for (guint i = 0; args[i] != NULL; i++) {
        g_ptr_array_add(argv, g_strdup(args[i]));
    }
    g_ptr_array_add(argv, NULL);
    proc = g_subprocess_launcher_spawnv(l, (const char *const *)argv->pdata, &error);
    g_assert_no_error(error);
    qn_user_qmp(sock, "query-status");
    cmdline_path = g_strdup_printf("/proc/%s/cmdline", g_subprocess_get_identifier(proc));
    g_assert_true(g_file_get_contents(cmdline_path, &cmdline, &len, NULL));
    for (gsize off = 0; off < len; off += strlen(cmdline + off) + 1, n++) {
        g_autofree gchar *got = qn_fold_fds(cmdline + off);
        g_autofree gchar *want = NULL;

        g_assert_cmpuint(n, <, json_array_get_length(planned));
        want = qn_fold_fds(json_array_get_string_element(planned, n));
        g_assert_cmpstr(got, ==, want);
    }
    g_assert_cmpuint(n, ==, json_array_get_length(planned));
    /* the -S is ours (dedicated CPUs): the monitor pins, then resumes the guest */
    g_assert_cmpstr(json_array_get_string_element(planned, n - 1), ==, "-S");
    {
        g_autoptr(JsonNode) quit = qn_qmp_query(sock, "quit", NULL, 10000, NULL);

        (void)quit; /* QEMU may close before answering */
    }
    g_assert_true(g_subprocess_wait(proc, NULL, NULL));
}

/* `qemu-numa-ctl --version` is ours; `qemu-numa --version` is QEMU's own (scripts and libvirt
 * read QEMU's version from it), with no ledger entry and nothing planned. */
static void
test_version(QnTestLaunch *f, gconstpointer data)
{
    g_autofree gchar *qn = g_build_filename(qn_test_host.builddir, "qemu-numa", NULL);
    g_autoptr(GSubprocessLauncher) l = qn_launcher(f->state, NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(GSubprocess) p = NULL;
    g_autofree gchar *out = NULL;
    g_autofree gchar *want = g_strdup_printf("qemu-numa-ctl %s\n", PACKAGE_VERSION);
    const char *version[] = { "--version", NULL };
    g_auto(QnCtlRun) r = { 0 };

    qn_ctl_run(f->state, NULL, version, &r);
    g_assert_cmpint(r.status, ==, 0);
    g_assert_cmpstr(r.out, ==, want);
    g_subprocess_launcher_set_flags(l, G_SUBPROCESS_FLAGS_STDOUT_PIPE);
    p = g_subprocess_launcher_spawn(l, &error, qn, "--version", NULL);
    g_assert_no_error(error);
    g_assert_true(g_subprocess_communicate_utf8(p, NULL, NULL, &out, NULL, &error));
    g_assert_cmpint(g_subprocess_get_exit_status(p), ==, 0);
    g_assert_true(g_str_has_prefix(out, "QEMU emulator version "));
}

/* A capability probe reaches QEMU with the argv untouched (argv[0] aside: the real binary). */
static void
test_probe_untouched(QnTestLaunch *f, gconstpointer data)
{
    g_autofree gchar *sock = g_strdup_printf("%s/probe.sock", f->state);
    g_autofree gchar *qmp = g_strdup_printf("unix:%s,server=on,wait=off", sock);
    g_autofree gchar *bin = g_build_filename(qn_test_host.builddir, "qemu-numa", NULL);
    const char *argv[] = { bin, "-S", "-no-user-config", "-nodefaults", "-nographic",
                           "-machine", "none,accel=kvm:tcg", "-qmp", qmp, NULL };
    g_autoptr(GSubprocessLauncher) l = qn_launcher(f->state, NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(GSubprocess) p = g_subprocess_launcher_spawnv(l, argv, &error);
    g_autoptr(JsonNode) st = NULL;
    g_autoptr(JsonNode) q = NULL;
    g_autofree gchar *cmdline = NULL;
    g_autofree gchar *path = NULL;
    g_autoptr(GString) want = g_string_new(NULL);
    gsize len, skip;

    g_assert_no_error(error);
    st = qn_qmp_query(sock, "query-status", NULL, 20000, &error);
    g_assert_no_error(error);
    path = g_strdup_printf("/proc/%s/cmdline", g_subprocess_get_identifier(p));
    g_assert_true(g_file_get_contents(path, &cmdline, &len, NULL));
    for (guint i = 1; argv[i] != NULL; i++) {
        g_string_append_len(want, argv[i], (gssize)strlen(argv[i]) + 1);
    }
    skip = strlen(cmdline) + 1; /* argv[0]: the real QEMU */
    g_assert_cmpmem(cmdline + skip, len - skip, want->str, want->len);
    g_assert_cmpuint(qn_state_entries(f->state), ==, 0);
    q = qn_qmp_query(sock, "quit", NULL, 10000, NULL);
    g_subprocess_wait(p, NULL, NULL);
}

/* Invoked as qemu-system-x86_64 through a link first in PATH (make install's libexec link),
 * qemu-numa finds the real QEMU further down PATH and never execs itself. */
static void
test_path_link(QnTestLaunch *f, gconstpointer data)
{
    g_autofree gchar *dir = qn_new_dir("path");
    g_autofree gchar *link = g_build_filename(dir, "qemu-system-x86_64", NULL);
    g_autofree gchar *target = g_build_filename(qn_test_host.builddir, "qemu-numa", NULL);
    g_autofree gchar *path = g_strdup_printf("%s:%s", dir, g_getenv("PATH"));
    g_autoptr(GSubprocessLauncher) l = qn_launcher(f->state, NULL);
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

typedef struct {
    const char *name;
    const char *env;       /* one VAR=value, or NULL */
    const char *args[12];
    const char *message;   /* a substring of the one stderr line */
} BadCase;

static const BadCase bad_cases[] = {
    { "m-zero", NULL, { "-m", "0" }, "-m '0': memory size must be greater than zero" },
    { "m-suffix", NULL, { "-m", "12Q" }, "-m '12Q': invalid size" },
    { "policy", "QEMU_NUMA_POLICY=fast", { "-m", "64M" },
      "QEMU_NUMA_POLICY 'fast': invalid value" },
    { "too-big", NULL, { "-m", "64T" }, "guest memory exceeds" },
    { "numa", NULL, { "-m", "64M", "-numa", "node,nodeid=x" }, "-numa node nodeid 'x'" },
    { "object", NULL, { "-m", "64M", "-object", "{\"qom-type\":" }, "invalid JSON" },
    { "qemu", "QEMU_NUMA_QEMU=/nonexistent/qemu", { "-m", "64M" },
      "QEMU binary '/nonexistent/qemu'" },
    { "no-mount", "QEMU_NUMA_HUGEPAGE_SIZE=4M", { "-m", "64M" }, "hugepage size '4M'" },
    /* the file named as the configuration file, the bad value quoted */
    { "config", "QEMU_NUMA_CONFIG=/nonexistent", { "-m", "64M" },
      "configuration file '/nonexistent': No such file or directory" },
    /* -m is set at run time to 64 pages more than node 0 has free: see test_bad_input */
    { "restricted", "QEMU_NUMA_POLICY=restricted", { "-m", "RUNTIME", "-smp", "2" },
      "policy restricted: no aligned plan" },
};

/* Bad input: exit 1, one line "qemu-numa: ..." naming it; the tear-down checks that no page is
 * held and no entry written. */
static void
test_bad_input(QnTestLaunch *f, gconstpointer data)
{
    const BadCase *c = data;
    const char *mnt = qn_test_host.mnt2m;
    g_autofree gchar *henv = g_strdup_printf("QEMU_NUMA_HUGETLBFS=%s", mnt ? mnt : "");
    gboolean restricted = c->env && g_str_has_prefix(c->env, "QEMU_NUMA_POLICY=restricted");
    /* the restricted case plans against our mount's pool; the others see only their own
     * variable (env[1] NULL ends the list) */
    const char *env[] = { c->env, restricted && mnt ? henv : NULL,
                          "QEMU_NUMA_HUGEPAGE_SIZE=2M", NULL };
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autofree gchar *err = NULL;
    g_autofree gchar *runtime_m = NULL;
    gint rc;

    if (restricted) {
        /* more 2M pages than node 0 has free, whatever the pool is now */
        runtime_m = g_strdup_printf("%" G_GUINT64_FORMAT "M", (qn_free_pages(2048) + 64) * 2);
    }
    for (guint i = 0; c->args[i] != NULL; i++) {
        g_ptr_array_add(argv, strcmp(c->args[i], "RUNTIME") == 0 ? runtime_m
                                                                 : (gpointer)c->args[i]);
    }
    g_ptr_array_add(argv, NULL);
    rc = qn_run_launcher(f->state, env, (const char *const *)argv->pdata, &err);
    g_assert_cmpint(rc, ==, 1);
    qn_assert_one_line(err, c->message);
    g_assert_cmpuint(qn_state_entries(f->state), ==, 0);
}

/* The pool's first shelf member @member (ready_bytes, made_bytes) from `pool status --json`,
 * or -1 when no service answers. */
static gint64
qn_pool_member(QnTestLaunch *f, const char *member)
{
    const char *status[] = { "pool", "status", NULL };
    g_autoptr(JsonNode) st = qn_ctl_json(f->state, status);
    JsonArray *shelves;

    if (st == NULL) {
        return -1;
    }
    shelves = json_object_get_array_member(json_node_get_object(st), "shelves");
    g_assert_cmpuint(json_array_get_length(shelves), ==, 1);
    return json_object_get_int_member(json_array_get_object_element(shelves, 0), member);
}

/* Polls @member until it is @want, for 20 s at most; returns the last value. */
static gint64
qn_pool_wait(QnTestLaunch *f, const char *member, gint64 want)
{
    gint64 v = -1;

    for (guint i = 0; i < 200 && (v = qn_pool_member(f, member)) != want; i++) {
        g_usleep(100000);
    }
    return v;
}

static GSubprocess *
qn_pool_start(QnTestLaunch *f, const char *const *env)
{
    g_autoptr(GSubprocessLauncher) l = qn_launcher(f->state, env);
    g_autofree gchar *ctl = g_build_filename(qn_test_host.builddir, "qemu-numa-ctl", NULL);
    const char *run[] = { ctl, "pool", "run", NULL };
    g_autoptr(GError) error = NULL;
    GSubprocess *p = g_subprocess_launcher_spawnv(l, run, &error);

    g_assert_no_error(error);
    return p;
}

/* The pre-zeroed pool: `pool run` keeps 64M ready on node 0 (32 pages taken from the kernel,
 * before any launch); a 64M launch takes that file over SCM_RIGHTS instead of allocating
 * (the pool has made a second 64M file since: made_bytes 128M, and the host is 64 pages down:
 * 32 in QEMU, 32 ready again); the guest's memory is bound and verified as ever. kill -9 of
 * the service leaks nothing; `pool drain` of the next one gives its pages back and ends it. */
static void
test_launch_pool(QnTestLaunch *f, gconstpointer data)
{
    const char *args[] = { "-name", "tpool", "-m", "64M", "-machine", "pc", "-nodefaults",
                           "-display", "none", NULL };
    const char *drain[] = { "pool", "drain", NULL };
    const char *const *env = qn_launch_env(f, "QEMU_NUMA_POOL=0:64M", NULL);
    g_autoptr(GSubprocess) pool = NULL;
    g_autoptr(GSubprocess) pool2 = NULL;
    g_autoptr(JsonNode) md = NULL;
    g_autoptr(GError) error = NULL;
    g_auto(QnCtlRun) r = { 0 };
    Vm *vm;

    if (f->skipped) {
        return;
    }
    pool = qn_pool_start(f, env);
    g_assert_cmpint(qn_pool_wait(f, "ready_bytes", 64 << 20), ==, 64 << 20);
    g_assert_cmpuint(qn_free_pages(2048), ==, f->before - 32);
    /* the reports count what the pool holds ready: the metric, and NRT's available 2M pages,
     * which the kernel's free counter no longer includes */
    {
        const char *metrics[] = { "metrics", NULL };
        const char *nrt[] = { "--json", "nrt", NULL };
        g_auto(QnCtlRun) m = { 0 };
        g_auto(QnCtlRun) z = { 0 };
        g_autofree gchar *want_nrt = NULL;

        qn_ctl_run(f->state, env, metrics, &m);
        g_assert_cmpint(m.status, ==, 0);
        g_assert_nonnull(strstr(m.out, "qemu_numa_hugepages_pool_bytes{node=\"0\","
                                       "page_size_bytes=\"2097152\"} 67108864\n"));
        qn_ctl_run(f->state, env, nrt, &z);
        g_assert_cmpint(z.status, ==, 0);
        {
            g_autofree gchar *q = qn_nrt_quantity(((f->before - 32) * 2 + 64) << 20);

            want_nrt = g_strdup_printf("\"available\" : \"%s\"", q);
        }
        g_test_message("nrt: want %s", want_nrt);
        g_assert_nonnull(strstr(z.out, want_nrt));
    }
    vm = qn_vm_start(env, args);
    md = qn_vm_qmp(vm, "query-memdev");
    qn_assert_memdev(qn_memdev(md, "pc.ram"), 64 << 20, "bind");
    /* the launch took the pool's file: the pool refills one more */
    g_assert_cmpint(qn_pool_wait(f, "made_bytes", 128 << 20), ==, 128 << 20);
    g_assert_cmpint(qn_pool_wait(f, "ready_bytes", 64 << 20), ==, 64 << 20);
    g_assert_cmpuint(qn_free_pages(2048), ==, f->before - 64);
    qn_vm_quit(vm);
    g_subprocess_force_exit(pool); /* SIGKILL */
    g_assert_true(g_subprocess_wait(pool, NULL, &error));
    g_assert_cmpuint(qn_free_pages_settled(2048, f->before), ==, f->before);

    pool2 = qn_pool_start(f, env); /* takes over the killed one's lock and socket */
    g_assert_cmpint(qn_pool_wait(f, "ready_bytes", 64 << 20), ==, 64 << 20);
    qn_ctl_run(f->state, NULL, drain, &r);
    g_assert_true(r.exited);
    g_assert_cmpint(r.status, ==, 0);
    g_assert_true(g_subprocess_wait_check(pool2, NULL, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(qn_free_pages_settled(2048, f->before), ==, f->before);
    g_assert_cmpint(qn_pool_member(f, "ready_bytes"), ==, -1); /* nobody serves */
}

int
main(int argc, char **argv)
{
    qn_test_init_host(&argc, &argv, "launch");
    qn_test_add_launch("/launch/2m", NULL, test_launch_2m);
    qn_test_add_launch("/launch/1g", NULL, test_launch_1g);
    qn_test_add_launch("/launch/two-guest-nodes", NULL, test_launch_two_guest_nodes);
    qn_test_add_launch("/launch/pool", NULL, test_launch_pool);
    qn_test_add_launch("/launch/libvirt-style", NULL, test_launch_libvirt_style);
    qn_test_add_launch("/launch/hugepage-dimm", NULL, test_launch_hugepage_dimm);
    qn_test_add_launch("/launch/argv-as-planned", NULL, test_launch_argv_as_planned);
    qn_test_add_plain("/launch/probe-untouched", NULL, test_probe_untouched);
    qn_test_add_plain("/launch/version", NULL, test_version);
    qn_test_add_plain("/launch/path-link", NULL, test_path_link);
    for (guint i = 0; i < G_N_ELEMENTS(bad_cases); i++) {
        g_autofree gchar *path = g_strdup_printf("/launch/bad-input/%s", bad_cases[i].name);

        qn_test_add_plain(path, &bad_cases[i], test_bad_input);
    }
    return qn_test_run();
}
