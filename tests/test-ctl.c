/* qemu-numa-ctl, the built binary, against state directories written the way a hostile user of
 * that directory could write them (under libvirt, whoever escapes a guest into QEMU runs as
 * libvirt-qemu and owns /run/qemu-numa). Needs no root: the ledger entries name this test's
 * own process, so the sweep every command runs first keeps them. */
#include "config.h"

#include <string.h>
#include <sys/resource.h>
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "qn-json.h"
#include "qn-ledger.h"
#include "qn-test-fixture.h"

/* qn_ctl_run() of a command that must end by itself at once, with exit status 0, whatever the
 * state directory holds (a hostile file must neither crash nor hang it: 5 s at most). */
static void
ctl_run_bounded(const char *state, const char *const *args, QnCtlRun *r)
{
    qn_ctl_run(state, NULL, args, r);
    g_test_message("%s: exit %d in %" G_GINT64_FORMAT " ms", args[0], r->status,
                   r->elapsed_us / 1000);
    g_assert_true(r->exited);
    g_assert_cmpint(r->status, ==, 0);
    g_assert_cmpint(r->elapsed_us, <, 5 * G_USEC_PER_SEC);
}

/* A ledger entry for this process, as the launcher writes it, with @name and @extra members
 * (JSON text, may be empty) spliced in. */
/* Our own user's directory in state directory @dir (the layout of qn-ledger.h), made. */
static gchar *
user_dir(const char *dir)
{
    gchar *udir = qn_state_user_dir(dir);

    g_assert_true(g_mkdir(udir, 0755) == 0 || errno == EEXIST);
    return udir;
}

static void
write_entry(const char *dir, const char *name_json, const char *extra)
{
    gint pid = getpid();
    guint64 start = qn_proc_start_time("/proc", pid);
    g_autofree gchar *udir = user_dir(dir);
    g_autofree gchar *path = g_strdup_printf("%s/%d.json", udir, pid);
    g_autofree gchar *text = g_strdup_printf(
        "{\"version\": 1, \"name\": %s, \"uuid\": null, \"pid\": %d, \"start_time\": %"
        G_GUINT64_FORMAT ", \"created\": \"2026-01-01T00:00:00Z\", \"reservations\": []%s}",
        name_json, pid, start, extra);

    g_assert_cmpuint(start, >, 0);
    g_assert_true(g_file_set_contents(path, text, -1, NULL));
}

/* The largest child process so far, in KiB (ru_maxrss). */
static glong
getrusage_children_kib(void)
{
    struct rusage ru;

    g_assert_cmpint(getrusage(RUSAGE_CHILDREN, &ru), ==, 0);
    return ru.ru_maxrss;
}

static gchar *
make_state_dir(void)
{
    g_autoptr(GError) error = NULL;
    gchar *dir = g_dir_make_tmp("qn-test-ctl-XXXXXX", &error);

    g_assert_no_error(error);
    return dir;
}

/* Removes @dir, its files and its user directories' files. */
static void
remove_state_dir(const char *dir)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *n;

    while (d != NULL && (n = g_dir_read_name(d)) != NULL) {
        g_autofree gchar *p = g_build_filename(dir, n, NULL);

        if (g_file_test(p, G_FILE_TEST_IS_DIR) && !g_file_test(p, G_FILE_TEST_IS_SYMLINK)) {
            remove_state_dir(p);
        } else {
            g_unlink(p);
        }
    }
    g_rmdir(dir);
}

/* 100 KB of '[' saved as 77777.json made every qemu-numa-ctl command (and every launch) die
 * with SIGSEGV inside json-glib. Now the file is skipped with a warning, the valid entry beside
 * it is still listed, and each command ends at once in bounded memory. */
static void
test_deep_ledger_file(void)
{
    g_autofree gchar *dir = make_state_dir();
    g_autofree gchar *udir = user_dir(dir);
    g_autofree gchar *deep = g_strnfill(100 * 1000, '[');
    g_autofree gchar *deep_path = g_build_filename(udir, "77777.json", NULL);
    g_autofree gchar *pid = g_strdup_printf("%d", getpid());
    const char *list[] = { "list", NULL };
    const char *list_json[] = { "--json", "list", NULL };
    const char *status[] = { "status", pid, NULL };
    const char *const *runs[] = { list, list_json, status };

    g_assert_true(g_file_set_contents(deep_path, deep, -1, NULL));
    write_entry(dir, "\"good-vm\"", ", \"state\": \"running\"");
    for (guint i = 0; i < G_N_ELEMENTS(runs); i++) {
        g_auto(QnCtlRun) r = { 0 };

        ctl_run_bounded(dir, runs[i], &r);
        if (runs[i] != status) { /* status looks for one VM: it reports no other files */
            g_assert_nonnull(strstr(r.err, "77777.json' is not a valid entry: skipped"));
        }
        g_assert_nonnull(strstr(r.out, "good-vm"));
    }
    /* the largest child so far, in KiB: json-glib never got the 100 KB of brackets */
    g_test_message("largest qemu-numa-ctl: %ld KiB", getrusage_children_kib());
    g_assert_cmpint(getrusage_children_kib(), <, 64 * 1024);
    /* nothing deleted: a hostile file may be evidence */
    g_assert_true(g_file_test(deep_path, G_FILE_TEST_EXISTS));
    remove_state_dir(dir);
}

/* Files another user of the state directory can plant (issue 12): a FIFO named 6.json (it
 * blocked `list` with the ledger lock held), 5.json -> /dev/zero (it grew `list` past 1 GB),
 * 8.json -> a file holding a JSON object (read through the link, its contents would reach the
 * output), and a forged 1.json claiming init with its real start time (it survived every sweep
 * and counted as reserved). None is read or counted, each is reported as not a valid entry,
 * nothing is deleted, and the real entry beside them is listed. */
static void
test_planted_files(void)
{
    g_autofree gchar *dir = make_state_dir();
    g_autofree gchar *udir = user_dir(dir);
    g_autofree gchar *secret_dir = make_state_dir();
    g_autofree gchar *secret = g_build_filename(secret_dir, "secret.json", NULL);
    g_autofree gchar *fifo = g_build_filename(udir, "6.json", NULL);
    g_autofree gchar *zero = g_build_filename(udir, "5.json", NULL);
    g_autofree gchar *link = g_build_filename(udir, "8.json", NULL);
    g_autofree gchar *init = g_build_filename(udir, "1.json", NULL);
    g_autofree gchar *init_text = g_strdup_printf(
        "{\"version\": 1, \"name\": \"claims-the-host\", \"pid\": 1, \"start_time\": %"
        G_GUINT64_FORMAT ", \"state\": \"reserving\", \"reservations\": []}",
        qn_proc_start_time("/proc", 1));
    const char *list[] = { "list", NULL };
    const char *list_json[] = { "--json", "list", NULL };
    const char *sweep[] = { "sweep", NULL };
    const char *const *runs[] = { list, list_json, sweep, list };
    const char *bad[] = { "6.json", "5.json", "8.json", "1.json" };

    g_assert_true(g_file_set_contents(secret, "{\"version\": 1, \"name\": \"SECRET-MARKER\", "
                                              "\"pid\": 8, \"reservations\": []}", -1, NULL));
    g_assert_cmpint(mkfifo(fifo, 0600), ==, 0);
    g_assert_cmpint(symlink("/dev/zero", zero), ==, 0);
    g_assert_cmpint(symlink(secret, link), ==, 0);
    g_assert_true(g_file_set_contents(init, init_text, -1, NULL));
    write_entry(dir, "\"good-vm\"", ", \"state\": \"running\"");
    for (guint i = 0; i < G_N_ELEMENTS(runs); i++) {
        g_auto(QnCtlRun) r = { 0 };

        ctl_run_bounded(dir, runs[i], &r);
        g_assert_null(strstr(r.out, "SECRET-MARKER"));
        g_assert_null(strstr(r.err, "SECRET-MARKER"));
        g_assert_null(strstr(r.out, "claims-the-host"));
        if (runs[i] != sweep) {
            g_assert_nonnull(strstr(r.out, "good-vm"));
            for (guint b = 0; b < G_N_ELEMENTS(bad); b++) {
                g_autofree gchar *want = g_strdup_printf("%s' is not a valid entry", bad[b]);

                g_assert_nonnull(strstr(r.err, want));
            }
        }
    }
    g_assert_cmpint(getrusage_children_kib(), <, 64 * 1024);
    /* nothing deleted or followed: the planted files are all still there, the secret intact */
    g_assert_true(g_file_test(fifo, G_FILE_TEST_EXISTS));
    g_assert_true(g_file_test(zero, G_FILE_TEST_IS_SYMLINK));
    g_assert_true(g_file_test(link, G_FILE_TEST_IS_SYMLINK));
    g_assert_true(g_file_test(init, G_FILE_TEST_EXISTS));
    g_unlink(secret);
    g_rmdir(secret_dir);
    remove_state_dir(dir);
}

/* A listening unix socket at @path whose listen() was made by a short-lived child, so that
 * SO_PEERCRED names that child and not this process (the entry's pid). Non-blocking. */
static int
listen_as_child(const char *path)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    pid_t child;
    int st;

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpuint(strlen(path), <, sizeof(a.sun_path));
    strcpy(a.sun_path, path);
    g_assert_cmpint(bind(fd, (struct sockaddr *)&a, sizeof(a)), ==, 0);
    child = fork();
    g_assert_cmpint(child, >=, 0);
    if (child == 0) {
        _exit(listen(fd, 8) == 0 ? 0 : 1);
    }
    g_assert_cmpint(waitpid(child, &st, 0), ==, child);
    g_assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    return fd;
}

/* A fake QMP server on a listening socket: for 5 s, accepts one connection, sends a QMP
 * greeting and keeps what the client sends within 1 s. The result: %NULL when nobody
 * connected, else the bytes received ("" when the client said nothing). */
static gpointer
fake_qmp_server(gpointer data)
{
    int lfd = GPOINTER_TO_INT(data);
    static const char greeting[] = "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, "
                                   "\"minor\": 2, \"major\": 7}, \"package\": \"\"}, "
                                   "\"capabilities\": []}}\r\n";
    GString *got = NULL;
    gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
    int c = -1;

    while (c < 0 && g_get_monotonic_time() < deadline) {
        c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
            g_usleep(10 * 1000);
        }
    }
    if (c < 0) {
        return NULL;
    }
    got = g_string_new(NULL);
    (void)!send(c, greeting, strlen(greeting), MSG_NOSIGNAL); /* the client may be gone */
    deadline = g_get_monotonic_time() + G_USEC_PER_SEC;
    while (g_get_monotonic_time() < deadline) {
        struct pollfd pfd = { .fd = c, .events = POLLIN };
        char buf[256];
        ssize_t n;

        if (poll(&pfd, 1, 50) <= 0) {
            continue;
        }
        n = read(c, buf, sizeof(buf));
        if (n <= 0) {
            break;
        }
        g_string_append_len(got, buf, n);
    }
    close(c);
    return g_string_free(got, FALSE);
}

/* `qemu-numa-ctl status` connects to a VM's <pid>.ctl.qmp (issue 12, item 5): a symlink planted
 * there, to a socket of another server, is not followed (no connection at all); a socket
 * planted there and served by another process than the VM's pid, greeting like QEMU, gets no
 * byte (SO_PEERCRED is checked before the QMP handshake). status still answers, without live
 * data. */
static void
test_planted_ctl_socket(void)
{
    g_autofree gchar *dir = make_state_dir();
    g_autofree gchar *udir = user_dir(dir);
    g_autofree gchar *other_dir = make_state_dir();
    g_autofree gchar *other = g_build_filename(other_dir, "server.sock", NULL);
    g_autofree gchar *pid = g_strdup_printf("%d", getpid());
    g_autofree gchar *ctl_sock = g_strdup_printf("%s/%d.ctl.qmp", udir, getpid());
    const char *status[] = { "--json", "status", pid, NULL };

    write_entry(dir, "\"sock-vm\"", ", \"state\": \"running\"");
    for (guint round = 0; round < 2; round++) {
        g_auto(QnCtlRun) r = { 0 };
        int lfd;
        GThread *server;
        g_autofree gchar *got = NULL;

        if (round == 0) { /* a link to another server's socket */
            lfd = listen_as_child(other);
            g_assert_cmpint(symlink(other, ctl_sock), ==, 0);
        } else { /* a socket in the directory, served by another process */
            lfd = listen_as_child(ctl_sock);
        }
        server = g_thread_new("fake-qmp", fake_qmp_server, GINT_TO_POINTER(lfd));
        qn_ctl_run(dir, NULL, status, &r);
        g_test_message("round %u: exit %d, stderr %s", round, r.status, r.err);
        g_assert_true(r.exited);
        g_assert_cmpint(r.status, ==, 0);
        /* QEMU's run state stays the one the monitor recorded: nobody answered now */
        g_assert_nonnull(strstr(r.out, "\"live\" : false"));
        got = g_thread_join(server);
        g_test_message("round %u: the fake server got %s", round, got ? got : "no connection");
        if (round == 0) {
            g_assert_null(got); /* never even connected */
        } else {
            g_assert_true(got == NULL || got[0] == '\0'); /* not even qmp_capabilities */
        }
        close(lfd);
        g_unlink(ctl_sock);
        g_unlink(other);
    }
    g_rmdir(other_dir);
    remove_state_dir(dir);
}

/* A VM name, state, plan reason or event from the ledger carries escape sequences (an OSC that
 * retitles root's terminal, ending in BEL; "clear screen"): the human output shows them as
 * \xNN, --json keeps the exact string. */
static void
test_escape_sequences(void)
{
    static const char name[] = "\x1b]0;pwned\x07vm\x1b[2J";
    static const char name_json[] = "\"\\u001b]0;pwned\\u0007vm\\u001b[2J\"";
    g_autofree gchar *dir = make_state_dir();
    g_autofree gchar *udir = user_dir(dir);
    g_autofree gchar *bad_path = g_build_filename(udir, "\x1b[2J.json", NULL);
    const char *list[] = { "list", NULL };
    const char *status[] = { "status", name, NULL };
    const char *events[] = { "events", name, NULL };
    const char *missing[] = { "status", "\x1b[2Jnone", NULL };
    const char *const *runs[] = { list, status, events, missing };
    const char *list_json[] = { "--json", "list", NULL };
    const char *status_json[] = { "--json", "status", name, NULL };
    const char *const *json_runs[] = { list_json, status_json };

    write_entry(dir, name_json,
                ", \"state\": \"\\u001b[31mrunning\\u0007\","
                " \"plan\": {\"kind\": \"fallback\", \"policy\": \"best-effort\","
                " \"memory_mode\": \"bind\", \"guest_topology\": \"auto\", \"guest_nodes\": [],"
                " \"reason\": \"\\u001b]0;reason\\u0007\\u009b2J\"},"
                " \"events\": [{\"event\": \"\\u001b[2JRESUME\", \"time\": \"\\u001b[1m\","
                " \"data\": {\"x\": \"\\u009b2J\\u001b\"}}]");
    g_assert_true(g_file_set_contents(bad_path, "{", -1, NULL));
    for (guint i = 0; i < G_N_ELEMENTS(runs); i++) {
        g_auto(QnCtlRun) r = { 0 };

        qn_ctl_run(dir, NULL, runs[i], &r);
        g_test_message("%s: exit %d, stdout %s", runs[i][0], r.status, r.out);
        g_assert_true(r.exited);
        g_assert_cmpint(r.status, ==, i == 3 ? 1 : 0);
        g_assert_null(memchr(r.out, 0x1b, r.out_len));
        g_assert_null(memchr(r.out, 0x07, r.out_len));
        g_assert_null(strstr(r.out, "\xc2\x9b"));
        g_assert_null(memchr(r.err, 0x1b, r.err_len));
        g_assert_null(memchr(r.err, 0x07, r.err_len));
        if (i < 2) {
            g_assert_nonnull(strstr(r.out, "\\x1b]0;pwned\\x07vm\\x1b[2J"));
        }
    }
    for (guint i = 0; i < G_N_ELEMENTS(json_runs); i++) {
        g_auto(QnCtlRun) r = { 0 };
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) root = NULL;
        JsonObject *o;

        qn_ctl_run(dir, NULL, json_runs[i], &r);
        g_assert_true(r.exited);
        g_assert_cmpint(r.status, ==, 0);
        root = qn_json_parse_bounded(r.out, r.out_len, QN_JSON_MAX_DEPTH, G_MAXSIZE, &error);
        g_assert_no_error(error);
        o = json_node_get_object(root);
        g_assert_cmpint(json_object_get_int_member(o, "version"), ==, 2);
        if (json_object_has_member(o, "vms")) { /* list: {"version": 2, "vms": [entry]} */
            o = json_array_get_object_element(json_object_get_array_member(o, "vms"), 0);
        }
        g_assert_cmpstr(json_object_get_string_member(o, "name"), ==, name);
    }
    remove_state_dir(dir);
}

/* A configuration file that cannot be read is named as the configuration file, with the bad
 * path quoted and the reason, on one line; exit 1 (qemu-numa says the same: test-launch's
 * /launch/bad-input/config). */
static void
test_config_unreadable(void)
{
    g_autofree gchar *dir = make_state_dir();
    const char *const missing[] = { "QEMU_NUMA_CONFIG=/nonexistent", NULL };
    const char *const directory[] = { "QEMU_NUMA_CONFIG=/", NULL };
    const char *list[] = { "list", NULL };
    g_auto(QnCtlRun) r = { 0 };
    g_auto(QnCtlRun) r2 = { 0 };

    qn_ctl_run(dir, missing, list, &r);
    g_assert_true(r.exited);
    g_assert_cmpint(r.status, ==, 1);
    g_assert_cmpstr(r.err, ==, "qemu-numa-ctl: configuration file '/nonexistent': "
                               "No such file or directory\n");
    g_assert_cmpstr(r.out, ==, "");
    qn_ctl_run(dir, directory, list, &r2);
    g_assert_cmpint(r2.status, ==, 1);
    g_assert_cmpstr(r2.err, ==, "qemu-numa-ctl: configuration file '/': Is a directory\n");
    remove_state_dir(dir);
}

/* Sockets and monitor logs of a pid with no entry and no process (a monitor killed before it
 * cleaned up) go with a sweep; those of a live pid, or of a pid with an entry, stay. */
static void
test_sweep_orphans(void)
{
    g_autofree gchar *dir = make_state_dir();
    g_autofree gchar *udir = user_dir(dir);
    /* pid_max is at most 4194304: this pid cannot be alive */
    const char *dead[] = { "99999999.log", "99999999.qmp", "99999999.ctl.qmp" };
    g_autofree gchar *live_log = g_strdup_printf("%s/%d.log", udir, getppid());
    g_autofree gchar *entry_log = g_strdup_printf("%s/%d.log", udir, getpid());
    g_autofree gchar *other = g_build_filename(udir, "notes.log", NULL);
    const char *sweep[] = { "--json", "sweep", NULL };
    g_auto(QnCtlRun) r = { 0 };

    write_entry(dir, "\"kept-vm\"", ", \"state\": \"reserved\"");
    for (guint i = 0; i < G_N_ELEMENTS(dead); i++) {
        g_autofree gchar *p = g_build_filename(udir, dead[i], NULL);

        g_assert_true(g_file_set_contents(p, "", 0, NULL));
    }
    g_assert_true(g_file_set_contents(live_log, "", 0, NULL));
    g_assert_true(g_file_set_contents(entry_log, "", 0, NULL));
    g_assert_true(g_file_set_contents(other, "", 0, NULL));
    qn_ctl_run(dir, NULL, sweep, &r);
    g_assert_true(r.exited);
    g_assert_cmpint(r.status, ==, 0);
    g_assert_nonnull(strstr(r.out, "\"removed\": 0"));
    for (guint i = 0; i < G_N_ELEMENTS(dead); i++) {
        g_autofree gchar *p = g_build_filename(udir, dead[i], NULL);

        g_assert_false(g_file_test(p, G_FILE_TEST_EXISTS));
    }
    g_assert_true(g_file_test(live_log, G_FILE_TEST_EXISTS));
    g_assert_true(g_file_test(entry_log, G_FILE_TEST_EXISTS));
    g_assert_true(g_file_test(other, G_FILE_TEST_EXISTS));
    remove_state_dir(dir);
}

/* `host` runs the real QEMU's --version to say when it is newer than our option table: a fake
 * QEMU that says 9.1.0 gets the note, one that hangs (with a child holding its stdout) is
 * killed after 2 s and `host` still answers, with no note. */
static void
test_host_qemu_version(void)
{
    g_autofree gchar *dir = make_state_dir();
    g_autofree gchar *newer = g_build_filename(dir, "qemu-newer", NULL);
    g_autofree gchar *hang = g_build_filename(dir, "qemu-hang", NULL);
    g_autofree gchar *newer_env = g_strdup_printf("QEMU_NUMA_QEMU=%s", newer);
    g_autofree gchar *hang_env = g_strdup_printf("QEMU_NUMA_QEMU=%s", hang);
    const char *const env_newer[] = { newer_env, NULL };
    const char *const env_hang[] = { hang_env, NULL };
    const char *host[] = { "host", NULL };
    g_auto(QnCtlRun) r = { 0 };
    g_auto(QnCtlRun) r2 = { 0 };

    g_assert_true(g_file_set_contents(newer, "#!/bin/sh\necho 'QEMU emulator version 9.1.0'\n",
                                      -1, NULL));
    g_assert_true(g_file_set_contents(hang, "#!/bin/sh\nsleep 60\n", -1, NULL));
    g_assert_cmpint(chmod(newer, 0755), ==, 0);
    g_assert_cmpint(chmod(hang, 0755), ==, 0);
    qn_ctl_run(dir, env_newer, host, &r);
    g_assert_cmpint(r.status, ==, 0);
    g_assert_nonnull(strstr(r.out, "note: QEMU 9.1.0 ("));
    g_assert_nonnull(strstr(r.out, "is newer than qemu-numa's option table (QEMU 7.2)"));
    qn_ctl_run(dir, env_hang, host, &r2);
    g_test_message("host with a hanging QEMU: exit %d in %" G_GINT64_FORMAT " ms", r2.status,
                   r2.elapsed_us / 1000);
    g_assert_true(r2.exited);
    g_assert_cmpint(r2.status, ==, 0);
    g_assert_null(strstr(r2.out, "note: QEMU"));
    g_assert_nonnull(strstr(r2.out, "hugetlbfs mounted"));
    g_assert_cmpint(r2.elapsed_us, <, 30 * G_USEC_PER_SEC);
    remove_state_dir(dir);
}

int
main(int argc, char **argv)
{
    qn_test_init_programs(&argc, &argv);
    g_test_add_func("/ctl/config/unreadable", test_config_unreadable);
    g_test_add_func("/ctl/host/qemu-version", test_host_qemu_version);
    g_test_add_func("/ctl/hostile/deep-ledger-file", test_deep_ledger_file);
    g_test_add_func("/ctl/hostile/escape-sequences", test_escape_sequences);
    g_test_add_func("/ctl/hostile/planted-files", test_planted_files);
    g_test_add_func("/ctl/hostile/planted-ctl-socket", test_planted_ctl_socket);
    g_test_add_func("/ctl/sweep-orphans", test_sweep_orphans);
    return g_test_run();
}
