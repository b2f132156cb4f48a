/* Real QEMU through qemu-numa, faults and races: SIGKILL at every step of a launch, planted and
 * garbage files in the state directory, the pool shrinking under a launch, a full or
 * read-only state directory, hand-edited entries, hostile VM names, an unprivileged user,
 * bounded files, and many launches racing for the pool. Needs root and hugepages
 * (qn-test-fixture); QN_TEST_REQUIRE_ALL=1 (set by .ci/run) turns a skip into a failure. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "qn-qmp-client.h"
#include "qn-test-fixture.h"

/* The launch test_crash_points kills: two guest nodes, so that the reservation can die
 * between them; paused (-S), it needs no QMP socket. */
static const char *const qn_two_nodes_args[] = { "-m", "128M", "-smp", "2", "-machine", "pc",
                                                 "-nodefaults", "-display", "none", "-S", NULL };

/* SIGKILL at every step of a launch (test-only crash points), two guest nodes so that the
 * reservation can die between them: afterwards no hugepage is held, `sweep` leaves no entry,
 * and a normal launch works. */
static void
test_crash_points(QnTestLaunch *f, gconstpointer data)
{
    static const char *const points[] = { "before-plan", "after-plan", "reserving",
                                          "reserving-node-0", "reserving-node-1",
                                          "after-reserve", "before-exec" };
    const char *args[] = { "-m", "64M", "-machine", "pc", "-nodefaults", "-display", "none",
                           NULL };
    const char *sweep[] = { "sweep", NULL };
    Vm *vm;
    g_autoptr(JsonNode) md = NULL;

    if (f->skipped) {
        return;
    }
    for (guint i = 0; i < G_N_ELEMENTS(points); i++) {
        g_autofree gchar *crash = g_strdup_printf("QEMU_NUMA_TEST_CRASH=%s", points[i]);
        const char *const *env = qn_launch_env(f, "QEMU_NUMA_GUEST_NODES=2", crash, NULL);
        g_autoptr(JsonNode) r = NULL;
        gint rc = qn_run_launcher(f->state, env, qn_two_nodes_args, NULL);

        if (rc != 128 + SIGKILL) {
            g_test_fail_printf("crash point %s: the launcher was not killed there", points[i]);
        }
        g_assert_cmpuint(qn_free_pages_settled(2048, f->before), ==, f->before);
        r = qn_ctl_json(f->state, sweep);
        g_assert_nonnull(r);
        g_assert_cmpuint(qn_wait_entries(f->state, 0, 2000), ==, 0);
    }
    vm = qn_vm_start(qn_launch_env(f, NULL), args);
    md = qn_vm_qmp(vm, "query-memdev");
    qn_assert_memdev(qn_memdev(md, "pc.ram"), 64 << 20, "bind");
    qn_vm_quit(vm);
}

/* A symlink planted where we create files never redirects a write. */
static void
test_planted_symlinks(QnTestLaunch *f, gconstpointer data)
{
    g_autofree gchar *victim = g_build_filename(qn_test_host.tmpdir, "victim", NULL);
    g_autofree gchar *lock = g_build_filename(f->state, ".lock", NULL);
    const char *sweep[] = { "sweep", NULL };
    g_auto(QnCtlRun) r = { 0 };
    struct stat st;

    g_assert_cmpint(symlink(victim, lock), ==, 0);
    qn_ctl_run(f->state, NULL, sweep, &r);
    g_assert_cmpint(r.status, ==, 1);
    g_assert_nonnull(strstr(r.err, "state directory"));
    g_assert_cmpint(stat(victim, &st), !=, 0); /* not created through the link */
    g_assert_cmpint(stat(f->state, &st), ==, 0);
}

/* Truncated, garbage and hand-edited ledger files: a launch still plans and runs, `list`
 * reports them and lists the live VM, and nothing deletes them (the tear-down counts them). */
static void
test_garbage_ledger(QnTestLaunch *f, gconstpointer data)
{
    static const struct {
        const char *file, *content;
    } junk[] = {
        { "99001.json", "{\"version\": 1, \"pid\": 99001, \"plan\": {\"kind\": \"ali" },
        { "99002.json", "\x7f" "ELF garbage \xff\xfe" },
        { "99003.json", "[1, 2, 3]" },
        { "99004.json", "{\"pid\": \"not a number\", \"state\": \"reserved\"}" },
    };
    const char *list[] = { "list", NULL };
    const char *args[] = { "-name", "survivor", "-m", "32M", "-machine", "pc", "-nodefaults",
                           "-display", "none", NULL };
    Vm *vm;
    g_autoptr(JsonNode) md = NULL;
    g_autoptr(JsonNode) entries = NULL;
    gboolean found = FALSE;

    if (f->skipped) {
        return;
    }
    g_assert_true(g_mkdir(f->udir, 0755) == 0 || errno == EEXIST);
    for (guint i = 0; i < G_N_ELEMENTS(junk); i++) {
        g_autofree gchar *path = g_build_filename(f->udir, junk[i].file, NULL);

        g_assert_true(g_file_set_contents(path, junk[i].content, -1, NULL));
    }
    f->entries_left = G_N_ELEMENTS(junk); /* reported, never deleted */
    vm = qn_vm_start(qn_launch_env(f, NULL), args);
    md = qn_vm_qmp(vm, "query-memdev");
    qn_assert_memdev(qn_memdev(md, "pc.ram"), 32 << 20, "bind");
    entries = qn_ctl_json(f->state, list);
    g_assert_nonnull(entries);
    for (guint i = 0; i < json_array_get_length(json_node_get_array(entries)); i++) {
        JsonObject *e = json_array_get_object_element(json_node_get_array(entries), i);

        found |= g_strcmp0(json_object_get_string_member_with_default(e, "name", ""),
                           "survivor") == 0;
    }
    g_assert_true(found);
    qn_vm_quit(vm);
    for (guint i = 0; i < G_N_ELEMENTS(junk); i++) {
        g_autofree gchar *path = g_build_filename(f->udir, junk[i].file, NULL);

        g_assert_true(g_file_test(path, G_FILE_TEST_EXISTS));
    }
}

/* Earlier exits for round 0 of test_bounded_files: 300 KiB of lines. */
static gchar *
qn_old_exits(void)
{
    GString *g = g_string_new(NULL);

    while (g->len < 300 * 1024) {
        g_string_append(g, "{\"pid\":2,\"name\":\"old\",\"reason\":\"earlier\"}\n");
    }
    return g_string_free(g, FALSE);
}

/* What a VM leaves in the state directory is bounded (issue 12, item 8): exits.jsonl moves to
 * exits.jsonl.1 past 256 KiB (one generation), the monitor's <pid>.log goes with its VM, and
 * a hard link planted as exits.jsonl (to a file elsewhere, as fs.protected_hardlinks=0 lets
 * the directory's owner make) is never appended to. The launcher's launches.jsonl (issue 17)
 * follows the same rules. @data: "rotated" or "hard-link". */
static void
test_bounded_files(QnTestLaunch *f, gconstpointer data)
{
    gboolean rotated = strcmp(data, "rotated") == 0;
    const char *args[] = { "-name", "bounded", "-m", "32M", "-smp", "1", "-machine", "pc",
                           "-nodefaults", "-display", "none", NULL };
    g_autofree gchar *exits = g_build_filename(f->udir, "exits.jsonl", NULL);
    g_autofree gchar *exits1 = g_build_filename(f->udir, "exits.jsonl.1", NULL);
    g_autofree gchar *launches = g_build_filename(f->udir, "launches.jsonl", NULL);
    g_autofree gchar *launches1 = g_build_filename(f->udir, "launches.jsonl.1", NULL);
    g_autofree gchar *victim_dir = qn_new_dir("victim");
    g_autofree gchar *victim = g_build_filename(victim_dir, "victim", NULL);
    g_autofree gchar *old = NULL, *text = NULL, *log = NULL, *want = NULL;
    Vm *vm;
    gint pid;

    if (f->skipped) {
        return;
    }
    g_assert_cmpint(g_mkdir(f->udir, 0755), ==, 0); /* as the first launch would make it */
    if (rotated) { /* 300 KiB of earlier exits */
        old = qn_old_exits();
        g_assert_true(g_file_set_contents(exits, old, -1, NULL));
        g_assert_true(g_file_set_contents(launches, old, -1, NULL));
    } else { /* a hard link to a file outside the directory */
        old = g_strdup("VICTIM CONTENTS\n");
        g_assert_true(g_file_set_contents(victim, old, -1, NULL));
        g_assert_cmpint(link(victim, exits), ==, 0);
        g_assert_cmpint(link(victim, launches), ==, 0);
    }
    vm = qn_vm_start(qn_launch_env(f, NULL), args);
    qn_vm_wait_qmp(vm);
    g_assert_cmpuint(qn_wait_files(f->state, 1, 5000), ==, 1);
    pid = g_ascii_strtoll(g_subprocess_get_identifier(vm->proc), NULL, 10);
    log = g_strdup_printf("%s/%d.log", f->udir, pid);
    want = g_strdup_printf("\"pid\":%d,", pid);
    g_assert_true(g_file_test(log, G_FILE_TEST_EXISTS));
    qn_vm_quit(vm);
    g_assert_cmpuint(qn_wait_files(f->state, 0, 5000), ==, 0);
    /* the monitor is done once its log is gone (it removes it last, with the sockets) */
    for (guint i = 0; i < 100 && g_file_test(log, G_FILE_TEST_EXISTS); i++) {
        g_usleep(20 * 1000);
    }
    g_assert_false(g_file_test(log, G_FILE_TEST_EXISTS));
    if (rotated) {
        g_assert_true(g_file_get_contents(exits1, &text, NULL, NULL));
        g_assert_cmpstr(text, ==, old); /* the old generation, whole */
        g_clear_pointer(&text, g_free);
        g_assert_true(g_file_get_contents(exits, &text, NULL, NULL));
        g_assert_nonnull(strstr(text, want)); /* this exit, in a new file */
        g_assert_cmpuint(strlen(text), <, 1024);
        g_clear_pointer(&text, g_free);
        g_assert_true(g_file_get_contents(launches1, &text, NULL, NULL));
        g_assert_cmpstr(text, ==, old);
        g_clear_pointer(&text, g_free);
        g_assert_true(g_file_get_contents(launches, &text, NULL, NULL));
        g_assert_nonnull(strstr(text, want)); /* this launch's line, in a new file */
        g_assert_nonnull(strstr(text, "\"outcome\":\"placed\""));
        g_assert_cmpuint(strlen(text), <, 2048);
    } else {
        g_assert_true(g_file_get_contents(victim, &text, NULL, NULL));
        g_assert_cmpstr(text, ==, old); /* not appended to */
        g_assert_false(g_file_test(exits1, G_FILE_TEST_EXISTS));
        g_assert_false(g_file_test(launches1, G_FILE_TEST_EXISTS));
    }
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

/* The fallback of a shrunk pool: QEMU's own -m RAM, no qn-ram backend, no hugepage taken for it
 * nor an fd of the failed reservation; the entry says "fallback" and why. */
static void
qn_assert_shrunk_fallback(QnTestLaunch *f, Vm *vm)
{
    const char *pid = g_subprocess_get_identifier(vm->proc);
    g_autoptr(JsonNode) md = qn_vm_qmp(vm, "query-memdev");
    const char *list_args[] = { "list", NULL };
    g_autoptr(JsonNode) list = qn_ctl_json(f->state, list_args);
    g_autofree gchar *fds = g_strdup_printf("/proc/%s/fd", pid);
    g_autoptr(GDir) d = g_dir_open(fds, 0, NULL);
    const char *n;
    JsonObject *e, *plan;

    g_assert_cmpuint(json_array_get_length(json_node_get_array(md)), ==, 1);
    g_assert_cmpstr(json_object_get_string_member(
                        json_array_get_object_element(json_node_get_array(md), 0), "id"),
                    ==, "pc.ram");
    g_assert_cmpuint(qn_hugetlb_kb(pid), ==, 0);
    /* nor an fd of the failed reservation, which would hold pages unmapped */
    g_assert_nonnull(d);
    while ((n = g_dir_read_name(d)) != NULL) {
        g_autofree gchar *link = g_build_filename(fds, n, NULL);
        g_autofree gchar *target = g_file_read_link(link, NULL);

        g_assert_false(target != NULL && g_str_has_prefix(target, qn_test_host.mnt2m));
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
}

/* The pool shrinks between planning and allocating: the launcher stops itself just before
 * guest node 0's fallocate (QEMU_NUMA_TEST_PAUSE), the test takes all but 16 of the free
 * pages through its own hugetlbfs file, then lets it go on. restricted: exit 1, one line, no
 * page held, no entry. best-effort: QEMU runs on memory the OS allocates, the entry says
 * "fallback" and why, and no hugepage is held for it. */
static void
test_pool_shrinks(QnTestLaunch *f, gconstpointer data)
{
    const char *policy = data;
    gboolean restricted = strcmp(policy, "restricted") == 0;
    g_autofree gchar *penv = g_strdup_printf("QEMU_NUMA_POLICY=%s", policy);
    g_autofree gchar *thief_path = NULL;
    const char *args[] = { "-name", "shrink", "-m", "64M", "-machine", "pc", "-nodefaults",
                           "-display", "none", NULL };
    guint64 stolen;
    int thief;
    Vm *vm;
    const char *pid;

    if (f->skipped) {
        return;
    }
    vm = qn_vm_start(qn_launch_env(f, "QEMU_NUMA_TEST_PAUSE=allocating-node-0", penv, NULL),
                     args);
    pid = g_subprocess_get_identifier(vm->proc);
    qn_wait_stopped(pid);
    /* planned (32 pages) and its entry says "reserving", but nothing allocated yet */
    g_assert_cmpuint(qn_state_entries(f->state), ==, 1);
    /* another process takes pages: all but 16, fewer than the 32 planned (counted now: the
     * pool is the machine's, and libvirt's QEMUs beside these tests may move it) */
    stolen = qn_free_pages(2048) - 16;
    f->before = stolen + 16;
    thief_path = g_build_filename(qn_test_host.mnt2m, "thief", NULL);
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
        g_assert_cmpuint(qn_state_entries(f->state), ==, 0);
        qn_vm_free(vm);
    } else {
        qn_assert_shrunk_fallback(f, vm);
        qn_vm_quit(vm);
        g_assert_cmpuint(qn_wait_files(f->state, 0, 2000), ==, 0);
    }
    close(thief); /* the tear-down sees the pool back where it was */
}

/* The state directory full (a 64 KiB tmpfs mounted over it, filled) or read-only: one line
 * naming the directory, exit 1, no hugepage held, no entry. */
static void
test_state_dir_unusable(QnTestLaunch *f, gconstpointer data)
{
    const char *how = data;
    g_autofree gchar *err = NULL;
    const char *args[] = { "-name", "nospace", "-m", "32M", "-machine", "pc", "-nodefaults",
                           "-display", "none", NULL };
    gint rc;

    if (f->skipped) {
        return;
    }
    if (strcmp(how, "full") == 0) {
        g_autofree gchar *fill = g_build_filename(f->state, "fill", NULL);
        g_autofree gchar *block = g_malloc0(4096);
        int fd;

        /* in the test's private mount namespace: gone with it */
        g_assert_cmpint(mount("none", f->state, "tmpfs", 0, "size=64k,mode=0700"), ==, 0);
        fd = open(fill, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        g_assert_cmpint(fd, >=, 0);
        while (write(fd, block, 4096) == 4096) {
        }
        g_assert_cmpint(errno, ==, ENOSPC);
        close(fd);
    } else {
        g_assert_cmpint(mount("none", f->state, "tmpfs", MS_RDONLY, "mode=0700"), ==, 0);
    }
    rc = qn_run_launcher(f->state, qn_launch_env(f, "QEMU_NUMA_POLICY=restricted", NULL), args,
                         &err);
    g_test_message("state directory %s: rc %d, %s", how, rc, err);
    g_assert_cmpint(rc, ==, 1);
    qn_assert_one_line(err, f->state);
    g_assert_cmpuint(qn_free_pages_settled(2048, f->before), ==, f->before);
    g_assert_cmpuint(qn_state_entries(f->state), ==, 0);
    umount(f->state);
}

/* Edits @path as an operator would, under the ledger lock of @state (the monitor writes too):
 * a member added, two of ours removed, written on one line (not our layout). */
static void
qn_edit_entry(const char *state, const char *path)
{
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

/* A live VM's entry edited by hand (an extra member, its layout changed, a field of ours
 * removed) is kept by launches and sweeps, counted, and the monitor keeps the edit while it
 * records events; the monitor removes it when QEMU exits. */
static void
test_hand_edited_live_entry(QnTestLaunch *f, gconstpointer data)
{
    const char *const *env;
    const char *args[] = { "-name", "edited", "-m", "32M", "-machine", "pc", "-nodefaults",
                           "-display", "none", NULL };
    const char *args2[] = { "-name", "second", "-m", "32M", "-machine", "pc", "-nodefaults",
                            "-display", "none", NULL };
    const char *sweep[] = { "sweep", NULL };
    const char *status[] = { "status", "edited", NULL };
    g_autofree gchar *path = NULL, *text = NULL, *edited = NULL;
    g_autofree gchar *copy = NULL;
    g_autoptr(JsonNode) md = NULL;
    g_autoptr(JsonNode) r = NULL;
    g_autoptr(JsonNode) st = NULL;
    Vm *vm, *vm2;

    if (f->skipped) {
        return;
    }
    env = qn_launch_env(f, NULL);
    vm = qn_vm_start(env, args);
    qn_vm_wait_qmp(vm);
    path = g_strdup_printf("%s/%s.json", f->udir, g_subprocess_get_identifier(vm->proc));
    qn_edit_entry(f->state, path);
    /* a copy under another name, claiming the live VM's pid with a wrong start time: it is
     * reported, and must not make a sweep remove the live VM's own entry */
    copy = g_build_filename(f->udir, "99005.json", NULL);
    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    edited = g_strdup_printf("{\"start_time\": 1, %s", strchr(text, '{') + 1);
    g_assert_true(g_file_set_contents(copy, edited, -1, NULL));
    f->entries_left = 1; /* the copy is reported, never deleted */
    /* a second launch sweeps the ledger, then `ctl sweep`: the edited entry stays */
    vm2 = qn_vm_start(env, args2);
    md = qn_vm_qmp(vm2, "query-memdev"); /* it runs: swept */
    r = qn_ctl_json(f->state, sweep);
    qn_assert_memdev(qn_memdev(md, "pc.ram"), 32 << 20, "bind");
    g_assert_cmpint(json_object_get_int_member(json_node_get_object(r), "removed"), ==, 0);
    g_assert_cmpuint(f->before - qn_free_pages(2048), ==, 32);
    /* the monitor records a STOP/RESUME and keeps the edit */
    qn_user_qmp(vm->sock, "cont");
    st = qn_ctl_wait_qemu_status(f->state, status, "running", 2000);
    g_assert_cmpstr(qn_qemu_status(st), ==, "running");
    g_assert_cmpstr(json_object_get_string_member(json_node_get_object(st), "note"), ==,
                    "moved to rack 4 by hand");
    qn_vm_quit(vm);
    qn_vm_quit(vm2);
    /* the monitors removed both entries; the copy is reported, never deleted */
    g_assert_cmpuint(qn_wait_files(f->state, 1, 2000), ==, 1);
    g_assert_true(g_file_test(copy, G_FILE_TEST_EXISTS));
}

/* Only our files in state directory @state: the top holds the lock and our user's directory
 * only; that directory, files named by pid only. */
static void
qn_assert_only_ours(const char *state)
{
    /* a monitor may be mid-write: its temporary file is named by pid too */
    g_autoptr(GRegex) ours = g_regex_new("^(\\.lock|(exits|launches)\\.jsonl(\\.1)?|"
                                         "[0-9]+\\.(json|log|qmp|ctl\\.qmp)|"
                                         "\\.[0-9]+\\.json\\.[A-Za-z0-9]{6})$", 0, 0, NULL);
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

/* `ctl list` and `ctl status NAME` (human output) put no ESC or BEL byte on the terminal and
 * show the name escaped. */
static void
qn_assert_no_escapes(const char *state, const char *name)
{
    const char *list[] = { "list", NULL };
    const char *status[] = { "status", name, NULL };
    const char *const *runs[] = { list, status };

    for (guint i = 0; i < G_N_ELEMENTS(runs); i++) {
        gsize len;
        g_autofree gchar *out = qn_ctl_text(state, runs[i], &len);

        g_assert_null(memchr(out, 0x1b, len));
        g_assert_null(memchr(out, 0x07, len));
        g_assert_nonnull(strstr(out, "\\x1b]0;pwned\\x07vm\\x1b[2J"));
    }
}

/* Names QEMU accepts must launch and never become part of a path we write: `../../etc`, with
 * slashes, with spaces and quotes, 4 KiB long, not UTF-8, holding terminal escape sequences.
 * Afterwards the shared state directory holds only files named by pid (and the lock), `ctl
 * list --json` is valid JSON (UTF-8: the non-UTF-8 name shows its bytes as \xNN), `ctl status
 * NAME` finds each VM by the very bytes it was launched with, and the human `list` and
 * `status NAME` put no ESC or BEL byte on root's terminal. */
static void
test_vm_names(QnTestLaunch *f, gconstpointer data)
{
    g_autofree gchar *longname = g_strnfill(4096, 'n');
    const char *names[] = { "../../etc", "a/b/../c/", " spaced 'quoted' \"name\" ",
                            longname, "not-utf8-\xff\xfe-\xc3(",
                            "\x1b]0;pwned\x07vm\x1b[2J" };
    const char *stored[] = { NULL, NULL, NULL, NULL, "not-utf8-\\xff\\xfe-\\xc3(", NULL };
    const char *list[] = { "list", NULL };
    const char *const *env;
    Vm *vms[G_N_ELEMENTS(names)];
    g_autoptr(JsonNode) l = NULL;

    if (f->skipped) {
        return;
    }
    env = qn_launch_env(f, "QEMU_NUMA_POLICY=restricted", NULL);
    for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
        const char *args[] = { "-name", names[i], "-m", "16M", "-machine", "pc", "-nodefaults",
                               "-display", "none", NULL };
        g_autoptr(JsonNode) md = NULL;

        vms[i] = qn_vm_start(env, args);
        md = qn_vm_qmp(vms[i], "query-memdev");
        qn_assert_memdev(qn_memdev(md, "pc.ram"), 16 << 20, "bind");
    }
    g_assert_cmpuint(f->before - qn_free_pages(2048), ==, 8 * G_N_ELEMENTS(names));
    g_assert_cmpuint(qn_wait_files(f->state, G_N_ELEMENTS(names), 2000), ==,
                     G_N_ELEMENTS(names));
    qn_assert_only_ours(f->state);
    l = qn_ctl_json(f->state, list); /* parses: valid UTF-8 JSON */
    g_assert_nonnull(l);
    g_assert_cmpuint(json_array_get_length(json_node_get_array(l)), ==, G_N_ELEMENTS(names));
    for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
        const char *status[] = { "status", names[i], NULL };
        g_autoptr(JsonNode) st = qn_ctl_json(f->state, status);
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
    qn_assert_no_escapes(f->state, names[G_N_ELEMENTS(names) - 1]);
    for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
        qn_vm_quit(vms[i]);
    }
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

/* The directories of test_unprivileged, under a directory others may pass through. */
typedef struct {
    QnIds ids;
    gchar *hmnt;     /* a hugetlbfs mount that uid owns (uid=, gid=, mode=0700) */
    gchar *state;    /* a state directory that uid owns */
    gchar *rootonly; /* a state directory it cannot write */
} QnUnpriv;

static void
qn_unpriv_make(QnUnpriv *u, const struct passwd *pw)
{
    g_autofree gchar *top = NULL, *opts = NULL;

    u->ids.uid = pw->pw_uid;
    u->ids.gid = pw->pw_gid;
    /* the test's directories are root's 0700: let others through to the ones below */
    g_assert_cmpint(chmod(qn_test_host.tmpdir, 0711), ==, 0);
    top = qn_new_dir("unpriv");
    g_assert_cmpint(chmod(top, 0755), ==, 0);
    u->hmnt = g_build_filename(top, "huge", NULL);
    u->state = g_build_filename(top, "state", NULL);
    u->rootonly = g_build_filename(top, "root-state", NULL);
    g_assert_cmpint(g_mkdir(u->hmnt, 0755), ==, 0);
    g_assert_cmpint(g_mkdir(u->state, 0700), ==, 0);
    g_assert_cmpint(chown(u->state, u->ids.uid, u->ids.gid), ==, 0);
    g_assert_cmpint(g_mkdir(u->rootonly, 0755), ==, 0);
    opts = g_strdup_printf("pagesize=2M,uid=%u,gid=%u,mode=0700", (guint)u->ids.uid,
                           (guint)u->ids.gid);
    g_assert_cmpint(mount("none", u->hmnt, "hugetlbfs", 0, opts), ==, 0);
}

/* A launcher of qemu-numa as @u's user with @env. */
static GSubprocessLauncher *
qn_unpriv_launcher(QnUnpriv *u, const char *const *env)
{
    GSubprocessLauncher *l = qn_launcher(u->state, env);

    g_subprocess_launcher_set_child_setup(l, qn_child_setup_ids, &u->ids, NULL);
    return l;
}

/* The VM of test_unprivileged runs as that user, and so does its monitor, which records
 * QEMU's state itself and removes the entry when it quits. */
static void
qn_unpriv_runs(QnUnpriv *u, const char *const *env, guint64 before)
{
    g_autofree gchar *bin = g_build_filename(qn_test_host.builddir, "qemu-numa", NULL);
    g_autofree gchar *usock = g_build_filename(u->state, "user.sock", NULL);
    g_autofree gchar *qmp = g_strdup_printf("unix:%s,server=on,wait=off", usock);
    const char *argv[] = { bin, "-name", "unpriv", "-m", "16M", "-machine", "pc",
                           "-nodefaults", "-display", "none", "-S", "-qmp", qmp, NULL };
    const char *status[] = { "status", "unpriv", NULL };
    g_autoptr(GSubprocessLauncher) l = qn_unpriv_launcher(u, env);
    g_autoptr(GSubprocess) p = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) md = NULL;
    g_autoptr(JsonNode) st = NULL;
    g_autoptr(JsonNode) q = NULL;
    g_autofree gchar *uid = NULL, *muid = NULL, *want = NULL, *m = NULL;
    const char *pid;
    GPid mon;

    p = g_subprocess_launcher_spawnv(l, argv, &error);
    g_assert_no_error(error);
    pid = g_subprocess_get_identifier(p);
    md = qn_qmp_query(usock, "query-memdev", NULL, 20000, &error);
    g_assert_no_error(error);
    qn_assert_memdev(qn_memdev(md, "pc.ram"), 16 << 20, "bind");
    g_assert_cmpuint(before - qn_free_pages(2048), ==, 8);
    uid = qn_proc_status_field(pid, "Uid:");
    want = g_strdup_printf("%u", (guint)u->ids.uid);
    g_assert_true(g_str_has_prefix(uid, want)); /* QEMU runs as that user */
    /* the monitor runs as the same user and records QEMU's state itself */
    mon = qn_monitor_pid_of(pid);
    g_assert_cmpint(mon, >, 0);
    m = g_strdup_printf("%d", mon);
    muid = qn_proc_status_field(m, "Uid:");
    g_assert_cmpstr(muid, ==, uid);
    st = qn_ctl_wait_qemu_status(u->state, status, "prelaunch", 5000);
    g_assert_cmpstr(qn_qemu_status(st), ==, "prelaunch");
    q = qn_qmp_query(usock, "quit", NULL, 10000, NULL);
    g_assert_true(g_subprocess_wait(p, NULL, NULL));
    g_assert_cmpuint(qn_wait_files(u->state, 0, 2000), ==, 0); /* the monitor's doing */
    g_assert_cmpuint(qn_free_pages_settled(2048, before), ==, before);
}

/* Unprivileged, as libvirt's `qemu` user runs it: with a hugetlbfs mount (uid=, gid=, mode=)
 * and a state directory that uid owns, the VM is placed, its monitor (same uid) records its
 * state and removes the entry when it quits. With a state directory it cannot write, or
 * (restricted) a hugetlbfs mount it cannot write, one line names the directory, exit 1,
 * nothing held. */
static void
test_unprivileged(QnTestLaunch *f, gconstpointer data)
{
    struct passwd *pw = getpwnam("nobody");
    QnUnpriv u = { 0 };
    g_autofree gchar *henv = NULL, *senv = NULL;

    if (f->skipped ||
        qn_launch_skip_unless(f, pw != NULL, "needs root, 2M hugepages and a 'nobody' user")) {
        return;
    }
    qn_unpriv_make(&u, pw);
    henv = g_strdup_printf("QEMU_NUMA_HUGETLBFS=%s", u.hmnt);
    senv = g_strdup_printf("QEMU_NUMA_STATE_DIR=%s", u.state);
    qn_unpriv_runs(&u, qn_launch_env(f, "QEMU_NUMA_POLICY=restricted", henv, senv, NULL),
                   f->before);
    /* a state directory it cannot write; then a hugetlbfs mount it cannot write (root's) */
    for (guint k = 0; k < 2; k++) {
        g_autofree gchar *s2 = g_strdup_printf("QEMU_NUMA_STATE_DIR=%s", k == 0 ? u.rootonly
                                                                                 : u.state);
        g_autofree gchar *h2 = g_strdup_printf("QEMU_NUMA_HUGETLBFS=%s",
                                               k == 0 ? u.hmnt : qn_test_host.mnt2m);
        const char *const *env = qn_launch_env(f, "QEMU_NUMA_POLICY=restricted", h2, s2, NULL);
        g_autofree gchar *bin = g_build_filename(qn_test_host.builddir, "qemu-numa", NULL);
        const char *argv[] = { bin, "-m", "16M", "-machine", "pc", "-nodefaults", "-display",
                               "none", "-S", NULL };
        g_autoptr(GSubprocessLauncher) l = qn_unpriv_launcher(&u, env);
        g_autoptr(GSubprocess) p = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree gchar *err = NULL;

        p = g_subprocess_launcher_spawnv(l, argv, &error);
        g_assert_no_error(error);
        g_assert_true(g_subprocess_communicate_utf8(p, NULL, NULL, NULL, &err, &error));
        g_test_message("unprivileged, %s not writable: %s", k == 0 ? "state directory"
                                                                   : "hugetlbfs mount", err);
        g_assert_cmpint(g_subprocess_get_exit_status(p), ==, 1);
        qn_assert_one_line(err, k == 0 ? u.rootonly : qn_test_host.mnt2m);
        g_assert_cmpuint(qn_free_pages_settled(2048, f->before), ==, f->before);
        g_assert_cmpuint(qn_state_entries(k == 0 ? u.rootonly : u.state), ==, 0);
    }
    umount(u.hmnt);
    chmod(qn_test_host.tmpdir, 0700);
    g_free(u.hmnt);
    g_free(u.state);
    g_free(u.rootonly);
}

/* ---- races: many launches at once for fewer hugepages than they ask for together ---- */

/* A launch that got no QMP answer failed cleanly: exit 1, one line containing @want. */
static void
qn_assert_refused(Vm *vm, guint i, const char *want)
{
    g_autofree gchar *err = NULL;

    g_assert_true(g_subprocess_communicate_utf8(vm->proc, NULL, NULL, NULL, &err, NULL));
    g_test_message("launch %u refused: %s", i, err);
    g_assert_cmpint(g_subprocess_get_exit_status(vm->proc), ==, 1);
    qn_assert_one_line(err, want);
}

/* Quits the VMs that ran, frees the others. */
static void
qn_vms_end(Vm **vms, const gboolean *ran, guint n)
{
    for (guint i = 0; i < n; i++) {
        if (ran[i]) {
            qn_vm_quit(vms[i]);
        } else {
            qn_vm_free(vms[i]);
        }
    }
}

/* 16 launches at once racing for fewer hugepages than they ask for together: the ledger lock
 * serialises plan + reservation, so no node is promised more than it has; each launch either
 * runs with its plan or exits 1 with a clear error. */
static void
test_parallel_race(QnTestLaunch *f, gconstpointer data)
{
    const char *const *env;
    guint64 before = f->before, per_vm;
    g_autofree gchar *mem = NULL;
    Vm *vms[16];
    gboolean ran[16];
    guint placed = 0, refused = 0;

    if (f->skipped) {
        return;
    }
    env = qn_launch_env(f, "QEMU_NUMA_POLICY=restricted", NULL);
    per_vm = before / 10; /* room for 10 of the 16 */
    mem = g_strdup_printf("%" G_GUINT64_FORMAT "M", per_vm * 2);
    for (guint i = 0; i < 16; i++) {
        g_autofree gchar *name = g_strdup_printf("race%u", i);
        const char *args[] = { "-name", name, "-m", mem, "-smp", "1", "-machine", "pc",
                               "-nodefaults", "-display", "none", NULL };

        vms[i] = qn_vm_start(env, args);
    }
    for (guint i = 0; i < 16; i++) {
        g_autoptr(JsonNode) md = qn_vm_wait_memdev(vms[i], 30);

        ran[i] = md != NULL;
        if (ran[i]) {
            qn_assert_memdev(qn_memdev(md, "pc.ram"), (gint64)(per_vm * 2) << 20, "bind");
            placed++;
        } else {
            qn_assert_refused(vms[i], i, "policy restricted: no aligned plan");
            refused++;
        }
    }
    g_test_message("%u ran, %u refused, %" G_GUINT64_FORMAT " pages each of %" G_GUINT64_FORMAT,
                   placed, refused, per_vm, before);
    g_assert_cmpuint(placed, ==, before / per_vm); /* every page that could be used, was */
    g_assert_cmpuint(placed + refused, ==, 16);
    g_assert_cmpuint(before - qn_free_pages(2048), ==, placed * per_vm);
    g_assert_cmpuint(qn_wait_entries(f->state, placed, 5000), ==, placed);
    qn_vms_end(vms, ran, 16);
    g_assert_cmpuint(qn_free_pages_settled(2048, before), ==, before);
    g_assert_cmpuint(qn_wait_entries(f->state, 0, 2000), ==, 0);
}

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

/* 2M pages the ledger files in @top say are reserved (aligned plans), read without the
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

enum { QN_SAMPLED_N = 64 };

/* Random sizes (@seed) summing to about twice @pool pages, 4 at least each, into @pages;
 * returns their sum. */
static guint64
qn_sampled_sizes(guint64 seed, guint64 pool, guint64 *pages)
{
    g_autoptr(GRand) rand = g_rand_new_with_seed((guint32)seed);
    guint64 avg = MAX(pool / (QN_SAMPLED_N / 2), 8), asked = 0;

    for (guint i = 0; i < QN_SAMPLED_N; i++) {
        pages[i] = MAX(g_rand_int_range(rand, (gint32)(avg / 2), (gint32)(avg * 3 / 2) + 1), 4);
        asked += pages[i];
    }
    return asked;
}

/* 64 launches at once, random sizes (seed printed; QN_TEST_SEED=N repeats a run) summing to
 * about twice node 0's free 2M pages, restricted: a sampler thread checks the counters and the
 * ledger while they run; in the end each launch runs with its plan in the ledger and its pages
 * taken, or exited 1 with one line; everything is released after quit. */
static void
test_parallel_sampled(QnTestLaunch *f, gconstpointer data)
{
    enum { N = QN_SAMPLED_N };
    const char *const *env;
    guint64 seed = g_getenv("QN_TEST_SEED") ? g_ascii_strtoull(g_getenv("QN_TEST_SEED"), NULL,
                                                               10)
                                            : 20261122;
    guint64 pages[N], asked, placed_pages = 0;
    Vm *vms[N];
    gboolean ran[N];
    guint placed = 0, refused = 0;
    QnSampler s = { 0 };
    GThread *sampler;
    gint64 t0;

    if (f->skipped) {
        return;
    }
    env = qn_launch_env(f, "QEMU_NUMA_POLICY=restricted", NULL);
    s.state = f->state;
    s.pool = f->before;
    asked = qn_sampled_sizes(seed, s.pool, pages);
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
        g_autoptr(JsonNode) md = qn_vm_wait_memdev(vms[i], 120);

        ran[i] = md != NULL;
        if (ran[i]) {
            qn_assert_memdev(qn_memdev(md, "pc.ram"), (gint64)(pages[i] << 21), "bind");
            placed++;
            placed_pages += pages[i];
        } else {
            qn_assert_refused(vms[i], i, "policy restricted: no aligned plan");
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
    g_assert_cmpuint(qn_state_entries(f->state), ==, placed);
    g_assert_cmpuint(qn_ledger_pages(f->state), ==, placed_pages);
    qn_vms_end(vms, ran, N);
    g_assert_cmpuint(qn_wait_files(f->state, 0, 5000), ==, 0);
}

int
main(int argc, char **argv)
{
    qn_test_init_host(&argc, &argv, "faults");
    qn_test_add_launch("/faults/crash-points", NULL, test_crash_points);
    qn_test_add_plain("/faults/planted-symlinks", NULL, test_planted_symlinks);
    qn_test_add_launch("/faults/garbage-ledger", NULL, test_garbage_ledger);
    qn_test_add_launch("/faults/pool-shrinks/restricted", "restricted", test_pool_shrinks);
    qn_test_add_launch("/faults/pool-shrinks/best-effort", "best-effort", test_pool_shrinks);
    qn_test_add_launch("/faults/state-dir/full", "full", test_state_dir_unusable);
    qn_test_add_launch("/faults/state-dir/read-only", "read-only", test_state_dir_unusable);
    qn_test_add_launch("/faults/hand-edited-live-entry", NULL, test_hand_edited_live_entry);
    qn_test_add_launch("/faults/vm-names", NULL, test_vm_names);
    qn_test_add_launch("/faults/unprivileged", NULL, test_unprivileged);
    qn_test_add_launch("/faults/bounded-files/rotated", "rotated", test_bounded_files);
    qn_test_add_launch("/faults/bounded-files/hard-link", "hard-link", test_bounded_files);
    qn_test_add_launch("/faults/parallel-race", NULL, test_parallel_race);
    qn_test_add_launch("/faults/parallel-sampled", NULL, test_parallel_sampled);
    return qn_test_run();
}
