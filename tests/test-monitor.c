/* Real QEMU through qemu-numa, the monitor: lifecycle accounting through the ledger (entries,
 * events, pages given back however QEMU ends), vCPU pinning, the monitor killed with QEMU,
 * QEMU ending before the monitor connects. Needs root and hugepages (qn-test-fixture);
 * QN_TEST_REQUIRE_ALL=1 (set by .ci/run) turns a skip into a failure. */
#include "config.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "qn-qmp-client.h"
#include "qn-test-fixture.h"

/* `ctl list` of three running VMs: aligned plans, their names. */
static void
qn_assert_listed(const char *state)
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

/* Paused and resumed through the user's own socket: seen by `ctl status` and `ctl events`. */
static void
qn_assert_pause_seen(const char *state, const char *usock)
{
    const char *status[] = { "status", "mon0", NULL };
    const char *events[] = { "events", "mon0", NULL };
    g_autoptr(JsonNode) st = NULL;
    g_autoptr(JsonNode) ev = NULL;
    JsonArray *a;
    guint n;

    qn_user_qmp(usock, "cont");
    qn_user_qmp(usock, "stop");
    st = qn_ctl_wait_qemu_status(state, status, "paused", 2000);
    g_assert_cmpstr(qn_qemu_status(st), ==, "paused");
    /* asked of QEMU just now, not the monitor's last record */
    g_assert_true(json_object_get_boolean_member(
        json_object_get_object_member(json_node_get_object(st), "qemu"), "live"));
    /* measured from numa_maps: node 0 holds at least the guest's 32M */
    {
        JsonObject *m0 = json_array_get_object_element(
            json_object_get_array_member(json_node_get_object(st), "measured_memory"), 0);

        g_assert_cmpint(json_object_get_int_member(m0, "host_node"), ==, 0);
        g_assert_cmpint(json_object_get_int_member(m0, "bytes"), >=, 32 << 20);
    }
    ev = qn_ctl_json(state, events);
    a = json_node_get_array(ev);
    n = json_array_get_length(a);
    g_assert_cmpuint(n, >=, 2);
    g_assert_cmpstr(json_object_get_string_member(json_array_get_object_element(a, n - 2),
                                                  "event"), ==, "RESUME");
    g_assert_cmpstr(json_object_get_string_member(json_array_get_object_element(a, n - 1),
                                                  "event"), ==, "STOP");
}

/* Three VMs in one state directory, each with the user's own QMP socket: listed, paused and
 * resumed as the user did it; then each ends another way (quit from the user's socket, kill -9
 * of QEMU, kill -9 of the monitor then quit) and its pages come back within 2 s; the entry
 * whose monitor was killed waits for the next sweep. */
static void
test_monitor_lifecycle(QnTestLaunch *f, gconstpointer data)
{
    const char *const *env;
    const char *sweep[] = { "sweep", NULL };
    g_autoptr(JsonNode) r = NULL;
    guint64 before = f->before;
    Vm *vms[3];
    GPid mon;

    if (f->skipped) {
        return;
    }
    env = qn_launch_env(f, NULL);
    for (guint i = 0; i < 3; i++) {
        g_autofree gchar *name = g_strdup_printf("mon%u", i);
        const char *args[] = { "-name", name, "-m", "32M", "-smp", "1", "-machine", "pc",
                               "-nodefaults", "-display", "none", NULL };

        vms[i] = qn_vm_start(env, args);
    }
    for (guint i = 0; i < 3; i++) {
        qn_vm_wait_qmp(vms[i]);
    }
    g_assert_cmpuint(qn_wait_entries(f->state, 3, 5000), ==, 3);
    g_assert_cmpuint(before - qn_free_pages(2048), ==, 3 * 16);
    qn_assert_listed(f->state);
    qn_assert_pause_seen(f->state, vms[0]->sock);
    /* 1: quit from the user's socket: entry gone and pages back within 2 s */
    qn_vm_quit(vms[0]);
    g_assert_cmpuint(qn_wait_files(f->state, 2, 2000), ==, 2); /* files: `ctl list` sweeps */
    g_assert_cmpuint(before - qn_free_pages_settled(2048, before - 2 * 16), ==, 2 * 16);
    /* 2: kill -9 QEMU: the same */
    kill(atoi(g_subprocess_get_identifier(vms[1]->proc)), SIGKILL);
    g_subprocess_wait(vms[1]->proc, NULL, NULL);
    g_assert_cmpuint(qn_wait_files(f->state, 1, 2000), ==, 1);
    g_assert_cmpuint(before - qn_free_pages_settled(2048, before - 16), ==, 16);
    qn_vm_free(vms[1]);
    /* 3: kill -9 the monitor, then QEMU ends: the entry waits for the next sweep */
    mon = qn_monitor_pid_of(g_subprocess_get_identifier(vms[2]->proc));
    g_assert_cmpint(mon, >, 0);
    kill(mon, SIGKILL);
    qn_vm_quit(vms[2]);
    g_assert_cmpuint(qn_free_pages_settled(2048, before), ==, before); /* the kernel freed them */
    r = qn_ctl_json(f->state, sweep);
    g_assert_nonnull(r);
    g_assert_cmpuint(qn_state_entries(f->state), ==, 0);
}

/* Cpus_allowed_list of thread @tid of process @pid. */
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

/* The affinity of every thread of QEMU @pid: the vCPU thread @vtid's is @vcpu_pcpu, every
 * other thread's is @emu. */
static void
qn_assert_affinities(const char *pid, gint64 vtid, gint64 vcpu_pcpu, const char *emu)
{
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

/* Waits (10 s at most) until the VM runs: the monitor's cont once it has pinned. */
static void
qn_vm_wait_running(Vm *vm)
{
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

    for (;;) {
        g_autoptr(JsonNode) q = qn_vm_qmp(vm, "query-status");

        if (json_object_get_boolean_member(json_node_get_object(q), "running") ||
            g_get_monotonic_time() > deadline) {
            g_assert_true(json_object_get_boolean_member(json_node_get_object(q), "running"));
            return;
        }
        g_usleep(50 * 1000);
    }
}

/* Dedicated vCPUs: each vCPU thread's affinity is its planned pCPU, every other thread's the
 * emulator pCPU; the launcher added -S and the monitor resumed the guest after pinning. A
 * second VM asking for dedicated pCPUs does not get the ones the first holds. */
static void
test_monitor_pinning(QnTestLaunch *f, gconstpointer data)
{
    const char *const *env;
    const char *args[] = { "-name", "pin0", "-m", "32M", "-smp", "1", "-machine", "pc",
                           "-nodefaults", "-display", "none", NULL };
    const char *args2[] = { "-m", "32M", "-smp", "1", "-machine", "pc", "-nodefaults",
                            "-display", "none", NULL };
    const char *status_args[] = { "status", "pin0", NULL };
    Vm *vm;
    g_autoptr(JsonNode) st = NULL;
    g_autoptr(JsonNode) cpus = NULL;
    g_autofree gchar *err = NULL;
    JsonObject *plan;
    gint64 vcpu_pcpu;

    if (f->skipped || qn_launch_skip_unless(f, g_get_num_processors() >= 2,
                                            "needs root, 2M hugepages and 2 CPUs")) {
        return;
    }
    env = qn_launch_env(f, "QEMU_NUMA_DEDICATED_CPUS=on", "QEMU_NUMA_EMULATOR_THREADS=isolate",
                        "QEMU_NUMA_POLICY=restricted", NULL);
    vm = qn_vm_start_full(env, args, FALSE);
    qn_vm_wait_running(vm);
    st = qn_ctl_json(f->state, status_args);
    plan = json_object_get_object_member(json_node_get_object(st), "plan");
    g_assert_true(json_object_get_boolean_member(plan, "dedicated"));
    vcpu_pcpu = json_array_get_int_element(
        json_object_get_array_member(
            json_array_get_object_element(json_object_get_array_member(plan, "guest_nodes"), 0),
            "pcpus"),
        0);
    g_assert_cmpstr(json_object_get_string_member(json_node_get_object(st), "pinned_cpus"), !=,
                    "");
    cpus = qn_vm_qmp(vm, "query-cpus-fast");
    qn_assert_affinities(g_subprocess_get_identifier(vm->proc),
                         json_object_get_int_member(
                             json_array_get_object_element(json_node_get_array(cpus), 0),
                             "thread-id"),
                         vcpu_pcpu, json_object_get_string_member(plan, "emulator_pcpus"));
    /* a second dedicated VM: both pCPUs are held by the first: refused (restricted) */
    g_assert_cmpint(qn_run_launcher(f->state, env, args2, &err), ==, 1);
    g_assert_nonnull(strstr(err, "policy restricted: no aligned plan"));
    qn_vm_quit(vm);
}

/* kill -9 of QEMU and of its monitor together: the kernel frees the pages; the entry, whose
 * monitor is gone, waits for the next sweep (a launch or `ctl sweep`), which removes it and
 * QEMU's sockets, and a launch in the same state directory then works. */
static void
test_monitor_kill_both(QnTestLaunch *f, gconstpointer data)
{
    const char *const *env;
    const char *args[] = { "-name", "both", "-m", "32M", "-machine", "pc", "-nodefaults",
                           "-display", "none", NULL };
    const char *sweep[] = { "sweep", NULL };
    g_autoptr(JsonNode) r = NULL;
    g_autoptr(JsonNode) md = NULL;
    g_autofree gchar *sock = NULL;
    Vm *vm;
    GPid mon, qemu;

    if (f->skipped) {
        return;
    }
    env = qn_launch_env(f, NULL);
    vm = qn_vm_start(env, args);
    qn_vm_wait_qmp(vm);
    qemu = (GPid)atoi(g_subprocess_get_identifier(vm->proc));
    mon = qn_monitor_pid_of(g_subprocess_get_identifier(vm->proc));
    g_assert_cmpint(mon, >, 0);
    g_assert_cmpuint(f->before - qn_free_pages(2048), ==, 16);
    kill(mon, SIGKILL);
    kill(qemu, SIGKILL);
    g_subprocess_wait(vm->proc, NULL, NULL);
    g_assert_cmpuint(qn_free_pages_settled(2048, f->before), ==, f->before);
    g_assert_cmpuint(qn_state_entries(f->state), ==, 1); /* nobody left to remove it */
    r = qn_ctl_json(f->state, sweep);
    g_assert_nonnull(r);
    g_assert_cmpint(json_object_get_int_member(json_node_get_object(r), "removed"), ==, 1);
    g_assert_cmpuint(qn_state_entries(f->state), ==, 0);
    sock = g_strdup_printf("%s/%d.qmp", f->udir, qemu);
    g_assert_false(g_file_test(sock, G_FILE_TEST_EXISTS));
    qn_vm_free(vm);
    vm = qn_vm_start(env, args);
    md = qn_vm_qmp(vm, "query-memdev");
    qn_assert_memdev(qn_memdev(md, "pc.ram"), 32 << 20, "bind");
    qn_vm_quit(vm);
}

/* QEMU exits before the monitor connects: (a) a "QEMU" that exits at once (/bin/true: no QMP
 * socket ever), (b) real QEMU refusing a bad machine property before it creates its monitors.
 * The monitor itself (no sweep) removes the entry within 2 s and records the exit; no page is
 * held. */
static void
test_monitor_qemu_exits_early(QnTestLaunch *f, gconstpointer data)
{
    const char *early = data;
    gboolean fake = strcmp(early, "exits-at-once") == 0;
    g_autofree gchar *exits = g_build_filename(f->udir, "exits.jsonl", NULL);
    g_autofree gchar *text = NULL;
    g_autofree gchar *err = NULL;
    const char *args[] = { "-name", "early", "-m", "32M", "-machine",
                           fake ? "pc" : "pc,qn-no-such-property=on", "-nodefaults",
                           "-display", "none", NULL };
    gint64 deadline;
    gint rc;

    if (f->skipped) {
        return;
    }
    rc = qn_run_launcher(f->state, qn_launch_env(f, fake ? "QEMU_NUMA_QEMU=/bin/true" : NULL,
                                                 NULL),
                         args, &err);
    g_test_message("early exit %s: rc %d, stderr: %s", early, rc, err);
    g_assert_cmpint(rc, ==, fake ? 0 : 1); /* /bin/true's status, QEMU's */
    g_assert_cmpuint(qn_wait_files(f->state, 0, 2000), ==, 0);
    g_assert_cmpuint(qn_free_pages_settled(2048, f->before), ==, f->before);
    /* the exit is recorded once the entry is gone: wait for the line (bounded) */
    deadline = g_get_monotonic_time() + 2 * G_USEC_PER_SEC;
    while (!g_file_get_contents(exits, &text, NULL, NULL) && g_get_monotonic_time() < deadline) {
        g_usleep(20 * 1000);
    }
    g_assert_nonnull(text);
    g_assert_nonnull(strstr(text, "\"name\":\"early\""));
}

/* The user's own QMP command @cmd with @args (JSON text), which must succeed. */
static void
qn_user_qmp_args(const char *sock, const char *cmd, const char *args)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) a = json_from_string(args, &error);
    g_autoptr(JsonNode) r = NULL;

    g_assert_no_error(error);
    r = qn_qmp_query(sock, cmd, json_node_get_object(a), 10000, &error);
    g_assert_no_error(error);
    g_assert_nonnull(r);
}

/* The memory device @id in a `status --json` answer, or NULL. */
static JsonObject *
qn_status_memory_device(JsonNode *st, const char *id)
{
    JsonNode *n = json_object_get_member(json_node_get_object(st), "memory_devices");
    JsonArray *a;

    if (n == NULL || !JSON_NODE_HOLDS_ARRAY(n)) {
        return NULL;
    }
    a = json_node_get_array(n);
    for (guint i = 0; i < json_array_get_length(a); i++) {
        JsonObject *d = json_array_get_object_element(a, i);

        if (g_strcmp0(json_object_get_string_member_with_default(d, "id", NULL), id) == 0) {
            return d;
        }
    }
    return NULL;
}

/* Memory hotplugged over the user's own QMP socket (issue 16 item 3): QEMU 7.2 sends no event
 * for a device_add, yet `ctl status` lists the DIMM within a few seconds with its size, guest
 * node and backend, hotplugged, and its backend's pages (preallocated: all resident) measured
 * on host node 0; the text output shows it too. */
static void
test_monitor_memory_hotplug(QnTestLaunch *f, gconstpointer data)
{
    const char *const *env;
    const char *args[] = { "-name", "hp0", "-m", "64M,slots=2,maxmem=256M", "-smp", "1",
                           "-machine", "pc", "-nodefaults", "-display", "none", NULL };
    const char *status[] = { "status", "hp0", NULL };
    g_autofree gchar *text = NULL;
    JsonObject *d = NULL;
    JsonObject *p0;
    JsonArray *placement;
    gint64 t0, deadline;
    gsize len;
    Vm *vm;

    if (f->skipped) {
        return;
    }
    env = qn_launch_env(f, NULL);
    vm = qn_vm_start(env, args);
    qn_vm_wait_qmp(vm);
    g_assert_cmpuint(qn_wait_entries(f->state, 1, 5000), ==, 1);
    qn_user_qmp_args(vm->sock, "object-add",
                     "{\"qom-type\": \"memory-backend-ram\", \"id\": \"hp1\", "
                     "\"size\": 33554432, \"prealloc\": true}");
    qn_user_qmp_args(vm->sock, "device_add",
                     "{\"driver\": \"pc-dimm\", \"id\": \"dimm1\", \"memdev\": \"hp1\", "
                     "\"node\": 0}");
    t0 = g_get_monotonic_time();
    deadline = t0 + 5 * G_USEC_PER_SEC;
    for (;;) {
        g_autoptr(JsonNode) st = qn_ctl_json(f->state, status);

        g_assert_nonnull(st);
        d = qn_status_memory_device(st, "dimm1");
        if (d != NULL || g_get_monotonic_time() > deadline) {
            g_assert_nonnull(d);
            d = json_object_ref(d);
            break;
        }
        g_usleep(100 * 1000);
    }
    g_test_message("dimm1 listed %" G_GINT64_FORMAT " ms after device_add",
                   (g_get_monotonic_time() - t0) / 1000);
    g_assert_cmpstr(json_object_get_string_member(d, "type"), ==, "dimm");
    g_assert_cmpstr(json_object_get_string_member(d, "memdev"), ==, "hp1");
    g_assert_cmpint(json_object_get_int_member(d, "node"), ==, 0);
    g_assert_cmpint(json_object_get_int_member(d, "size"), ==, 32 << 20);
    g_assert_true(json_object_get_boolean_member(d, "hotplugged"));
    g_assert_cmpint(json_object_get_int_member(d, "mappings"), ==, 1);
    placement = json_object_get_array_member(d, "placement");
    g_assert_cmpuint(json_array_get_length(placement), ==, 1);
    p0 = json_array_get_object_element(placement, 0);
    g_assert_cmpint(json_object_get_int_member(p0, "host_node"), ==, 0);
    g_assert_cmpint(json_object_get_int_member(p0, "bytes"), ==, 32 << 20);
    json_object_unref(d);
    text = qn_ctl_text(f->state, status, &len);
    g_test_message("%s", text);
    g_assert_nonnull(strstr(text, "dimm1"));
    g_assert_nonnull(strstr(text, "memdev hp1, guest node 0, 32.0 MiB, hotplugged: host node 0"));
    qn_vm_quit(vm);
}

int
main(int argc, char **argv)
{
    qn_test_init_host(&argc, &argv, "monitor");
    qn_test_add_launch("/monitor/lifecycle", NULL, test_monitor_lifecycle);
    qn_test_add_launch("/monitor/pinning", NULL, test_monitor_pinning);
    qn_test_add_launch("/monitor/kill-both", NULL, test_monitor_kill_both);
    qn_test_add_launch("/monitor/memory-hotplug", NULL, test_monitor_memory_hotplug);
    qn_test_add_launch("/monitor/qemu-exits-early/exits-at-once", "exits-at-once",
                       test_monitor_qemu_exits_early);
    qn_test_add_launch("/monitor/qemu-exits-early/bad-machine", "bad-machine",
                       test_monitor_qemu_exits_early);
    return qn_test_run();
}
