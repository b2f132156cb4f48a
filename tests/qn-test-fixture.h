/* What the test programs share: running the built qemu-numa and qemu-numa-ctl (test-ctl and the
 * real-QEMU tests), and for the real-QEMU tests (test-launch, test-monitor, test-faults) the
 * machine set-up they need and one fixture for a launch environment.
 *
 * The machine set-up (qn_test_init_host()) is made here and not assumed: node 0's hugepage
 * pools grown, hugetlbfs mounts of our own in a private mount namespace, a scratch directory;
 * a janitor process gives it all back when the test program ends, even by an abort. Every test
 * program that counts node 0's hugepages holds one machine-wide flock while it runs. */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* The run's set-up, written once by qn_test_init_*() before any test runs. */
typedef struct {
    gchar *builddir;    /* the build tree: QN_TOP_BUILDDIR, else "." */
    gchar *tmpdir;      /* this run's scratch directory (state directories, mounts) */
    gchar *mnt2m;       /* our 2M hugetlbfs mount, NULL when the set-up failed */
    gchar *mnt1g;       /* our 1G hugetlbfs mount point, mounted only if have_1g */
    gboolean have_1g;   /* one free 1G page on node 0 and a 1G mount */
    gchar *setup_error; /* the set-up step that failed, with its error, or NULL */
} QnTestHost;

extern QnTestHost qn_test_host;

/**
 * qn_test_init_programs:
 * g_test_init() and qn_test_host.builddir: enough for tests that only run the programs.
 */
void qn_test_init_programs(int *argc, char ***argv);

/**
 * qn_test_init_host:
 * qn_test_init_programs(), then, as root, the machine-wide hugepage flock (waits for any other
 * test program holding it) and the set-up: 256 free 2M pages and, if it can, one free 1G page
 * on node 0, hugetlbfs mounts under tmpdir. The first step that fails is kept in
 * qn_test_host.setup_error (and printed as a TAP comment); mnt2m stays NULL.
 */
void qn_test_init_host(int *argc, char ***argv, const char *name);

/**
 * qn_test_run:
 * Starts the janitor (what qn_test_init_host() made goes back when this process ends, unless
 * QN_TEST_KEEP is set: then the state directories and logs stay to be read) and runs the tests.
 * Returns: g_test_run()'s status.
 */
int qn_test_run(void);

/**
 * qn_skip_unless:
 * Skips the running test with @why unless @ok (the set-up's own error, if there was one, says
 * more than @why); under QN_TEST_REQUIRE_ALL (set by .ci/run) it fails it instead.
 * Returns: TRUE when the test must return.
 */
gboolean qn_skip_unless(gboolean ok, const char *why);

/* ---- node 0's hugepages ---- */

/** qn_free_pages: node 0's free_hugepages for pages of @kb KiB. */
guint64 qn_free_pages(guint64 kb);

/**
 * qn_free_pages_settled:
 * Pages come back when the kernel drops QEMU's last reference to the file, a moment after its
 * exit is reported: waits (2 s at most) until node 0 has @want free pages of @kb KiB.
 * Returns: the last count read.
 */
guint64 qn_free_pages_settled(guint64 kb, guint64 want);

/* ---- the state directory (the layout of qn-ledger.h: <state>/<user>/<pid>.json) ---- */

/** qn_new_dir: a new directory under tmpdir named @what-XXXXXX. Returns: (transfer full). */
gchar *qn_new_dir(const char *what);

/** qn_udir: <state>/<our user>, where our launches put entries, sockets and logs. */
gchar *qn_udir(const char *state);

/** qn_state_entries: ledger entry files (*.json) in every user's directory of @state. */
guint qn_state_entries(const char *state);

/**
 * qn_wait_files:
 * Waits (@limit_ms at most) until @state holds @want entry files, counted directly (`ctl
 * list` would sweep: these tests must see what the monitor itself removed).
 * Returns: the last count.
 */
guint qn_wait_files(const char *state, guint want, gint64 limit_ms);

/* ---- running the programs ---- */

/* A child dies with the test process (PR_SET_PDEATHSIG; QEMU keeps it across exec). */
void qn_child_setup(gpointer data);

/**
 * qn_launcher:
 * A launcher for our programs: stderr piped, stdout silenced, QEMU_NUMA_STATE_DIR=@state,
 * QEMU_NUMA_CONFIG=/dev/null, then @env's VAR=value strings (NULL-terminated, may be NULL).
 * Returns: (transfer full).
 */
GSubprocessLauncher *qn_launcher(const char *state, const char *const *env);

/**
 * qn_run_launcher:
 * Runs qemu-numa @args to its end with @env and @state (qn_launcher()).
 * Returns: its exit status (128 + signal if killed); its stderr (bytes) in @ret_err.
 */
gint qn_run_launcher(const char *state, const char *const *env, const char *const *args,
                     gchar **ret_err);

/** qn_assert_one_line: @err is exactly one line, "qemu-numa: ..." containing @want. */
void qn_assert_one_line(const char *err, const char *want);

/* What one run of qemu-numa-ctl did. */
typedef struct {
    gchar *out;         /* stdout, NUL-terminated ("" when empty); out_len bytes */
    gchar *err;
    gsize out_len;
    gsize err_len;
    gboolean exited;    /* FALSE: killed by a signal */
    gint status;        /* exit status when exited, else minus the signal */
    gint64 elapsed_us;
} QnCtlRun;

void qn_ctl_run_clear(QnCtlRun *r);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(QnCtlRun, qn_ctl_run_clear)

/**
 * qn_ctl_run:
 * Runs qemu-numa-ctl @args (NULL-terminated) to its end with QEMU_NUMA_STATE_DIR=@state,
 * QEMU_NUMA_CONFIG=/dev/null and @env's VAR=value strings (may be NULL); fills @r.
 */
void qn_ctl_run(const char *state, const char *const *env, const char *const *args, QnCtlRun *r);

/** qn_ctl_json: `qemu-numa-ctl --json ARGS` parsed. Returns: (transfer full), NULL if it failed. */
JsonNode *qn_ctl_json(const char *state, const char *const *args);

/**
 * qn_ctl_text:
 * `qemu-numa-ctl ARGS` (human output): its stdout, then its stderr, with their length in
 * @ret_len (the bytes may hold NULs only if ctl wrote them). Returns: (transfer full).
 */
gchar *qn_ctl_text(const char *state, const char *const *args, gsize *ret_len);

/** qn_wait_entries: waits (@limit_ms at most) until `ctl list` shows @want entries. */
guint qn_wait_entries(const char *state, guint want, gint64 limit_ms);

/**
 * qn_qemu_status:
 * QEMU's run state in a `status --json` answer @st (JSON version 2: "qemu": {"status"}), or
 * %NULL when none is recorded. Returns: (transfer none): owned by @st.
 */
const char *qn_qemu_status(JsonNode *st);

/**
 * qn_ctl_wait_qemu_status:
 * Runs `ctl --json ARGS` (a status) until QEMU's run state in it (qn_qemu_status()) is @want
 * (@limit_ms at most). Returns: (transfer full): the last answer, non-NULL.
 */
JsonNode *qn_ctl_wait_qemu_status(const char *state, const char *const *args, const char *want,
                                  gint64 limit_ms);

/* ---- processes ---- */

/** qn_monitor_pid_of: the monitor of QEMU @qemu_pid, waited for (5 s at most), or 0. */
GPid qn_monitor_pid_of(const char *qemu_pid);

/** qn_proc_state: the state letter of /proc/@pid/stat (R, S, T, Z...), 0 when it is gone. */
char qn_proc_state(const char *pid);

/** qn_wait_stopped: waits (20 s at most) until @pid stopped itself (QEMU_NUMA_TEST_PAUSE). */
void qn_wait_stopped(const char *pid);

/* ---- a VM: qemu-numa started with a QMP socket of the test's (the user's own) ---- */

typedef struct {
    GSubprocess *proc;
    gchar *dir;  /* a directory of its own: the socket, and the state directory unless the
                  * env names one */
    gchar *sock; /* the user's QMP socket */
} Vm;

/**
 * qn_vm_start_full:
 * Starts qemu-numa @args (NULL-terminated, no argv[0]) + the user's -qmp socket, paused (-S)
 * if @paused, with @env (qn_launcher()). Returns: (transfer full): free with qn_vm_quit() or,
 * once it has ended, qn_vm_free().
 */
Vm *qn_vm_start_full(const char *const *env, const char *const *args, gboolean paused);

/**
 * qn_vm_start_exe:
 * qn_vm_start_full() of another program @exe (plain qemu-system-x86_64 for a migration's other
 * end): the same directory, QMP socket and -S rule, nothing of ours between test and QEMU.
 */
Vm *qn_vm_start_exe(const char *exe, const char *const *env, const char *const *args,
                    gboolean paused);

/** qn_vm_start: qn_vm_start_full(), paused. */
Vm *qn_vm_start(const char *const *env, const char *const *args);

/** qn_vm_qmp: @cmd's answer on the VM's socket (20 s to connect); no answer is fatal. */
JsonNode *qn_vm_qmp(Vm *vm, const char *cmd);

/** qn_vm_wait_qmp: waits until QEMU answers on the VM's socket (query-status). */
void qn_vm_wait_qmp(Vm *vm);

/**
 * qn_vm_wait_memdev:
 * query-memdev on the VM's socket, tried until it answers or the launcher has exited (@limit_s
 * seconds at most). Returns: (transfer full): the answer, or NULL: the launch ended.
 */
JsonNode *qn_vm_wait_memdev(Vm *vm, gint64 limit_s);

/** qn_vm_quit: quit on the VM's socket, waits for its end, frees @vm. */
void qn_vm_quit(Vm *vm);

/** qn_vm_free: frees @vm, whose process has ended. */
void qn_vm_free(Vm *vm);

/** qn_user_qmp: @cmd on a QMP socket @sock, which must answer. */
void qn_user_qmp(const char *sock, const char *cmd);

/** qn_memdev: the member of query-memdev's answer @list with id @id; none is fatal. */
JsonObject *qn_memdev(JsonNode *list, const char *id);

/** qn_assert_memdev: shared, preallocated, @size bytes, @policy, host node 0 alone. */
void qn_assert_memdev(JsonObject *m, gint64 size, const char *policy);

/* ---- the launch fixture (g_test_add's fixture form) ---- */

/* One launch environment: a state directory of the test's own, the environment every launch
 * of it gets, and what the tear-down checks: node 0's free 2M pages back where they were and no
 * ledger entry left (but the @entries_left files a test planted and must not see deleted). */
typedef struct {
    gboolean skipped;   /* the set-up or the test skipped: the tear-down checks nothing */
    gchar *state;       /* QEMU_NUMA_STATE_DIR of every launch */
    gchar *udir;        /* qn_udir(state) */
    guint64 before;     /* node 0's free 2M pages at set-up; a test may re-count it */
    guint entries_left; /* entry files the tear-down expects, 0 unless planted */
    gboolean pages_checked; /* FALSE: no hugepages here, the tear-down does not count them */
    GPtrArray *envs;    /* the qn_launch_env() arrays, freed by the tear-down */
} QnTestLaunch;

/**
 * qn_launch_setup:
 * The fixture for a launch on our 2M hugetlbfs mount: skips (qn_skip_unless()) without one.
 */
void qn_launch_setup(QnTestLaunch *f, gconstpointer data);

/**
 * qn_launch_setup_plain:
 * The fixture without the hugepage requirement (tests of refusals, probes, the state
 * directory); node 0's pages are still checked when the set-up mounted hugetlbfs.
 */
void qn_launch_setup_plain(QnTestLaunch *f, gconstpointer data);

/** qn_launch_teardown: checks nothing leaked (unless skipped), frees the fixture. */
void qn_launch_teardown(QnTestLaunch *f, gconstpointer data);

/** qn_launch_skip_unless: qn_skip_unless() that also tells the tear-down. */
gboolean qn_launch_skip_unless(QnTestLaunch *f, gboolean ok, const char *why);

/**
 * qn_launch_env:
 * The environment of a launch in @f: QEMU_NUMA_HUGEPAGE_SIZE=2M, QEMU_NUMA_HUGETLBFS=<mnt2m>,
 * QEMU_NUMA_STATE_DIR=<state>, then the VAR=value strings given (NULL-terminated list; later
 * ones win). Returns: (transfer none): owned by @f.
 */
const char *const *qn_launch_env(QnTestLaunch *f, ...) G_GNUC_NULL_TERMINATED;

/* g_test_add() of a QnTestLaunch test with qn_launch_setup() / qn_launch_setup_plain(). */
#define qn_test_add_launch(path, data, test) \
    g_test_add((path), QnTestLaunch, (data), qn_launch_setup, (test), qn_launch_teardown)
#define qn_test_add_plain(path, data, test) \
    g_test_add((path), QnTestLaunch, (data), qn_launch_setup_plain, (test), qn_launch_teardown)

G_END_DECLS
