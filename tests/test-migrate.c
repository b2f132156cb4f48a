/* Real QEMU through qemu-numa, live migration (issue 14): two QEMUs on this host, TCG, over a
 * unix socket, on 2M hugepages; plain QEMU on either end or on none. Each case checks that
 * query-migrate says completed (or that the destination refused cleanly), that the destination
 * runs, that query-memdev gives the same ids and sizes on both ends, and (the fixture's
 * tear-down) that every hugepage and ledger entry is released afterwards. Needs root and
 * hugepages (qn-test-fixture); QN_TEST_REQUIRE_ALL=1 (set by .ci/run) turns a skip into a
 * failure. */
#include "config.h"

#include <string.h>

#include "qn-qmp-client.h"
#include "qn-test-fixture.h"

/* One end of a migration: qemu-numa (a fixture Vm) or plain QEMU started here the same way. */
typedef struct {
    Vm *vm;
    gboolean qn;
} End;

/* Plain qemu-system-x86_64 with @args and the user's QMP socket, started as qemu-numa is:
 * nothing of ours between the test and QEMU. */
static Vm *
qn_plain_start(const char *const *args)
{
    g_autofree gchar *qemu = g_find_program_in_path("qemu-system-x86_64");

    g_assert_nonnull(qemu);
    return qn_vm_start_exe(qemu, NULL, args, FALSE);
}

/* @args (NULL-terminated) followed by @more (NULL-terminated, may be NULL). */
static GPtrArray *
qn_args_cat(const char *const *args, const char *const *more)
{
    GPtrArray *a = g_ptr_array_new_with_free_func(g_free);

    for (guint i = 0; args[i] != NULL; i++) {
        g_ptr_array_add(a, g_strdup(args[i]));
    }
    for (guint i = 0; more != NULL && more[i] != NULL; i++) {
        g_ptr_array_add(a, g_strdup(more[i]));
    }
    g_ptr_array_add(a, NULL);
    return a;
}

/* Waits (10 s at most) until qemu-numa's monitor has turned on the "events" migration
 * capability of @vm (it connects a moment after QEMU is up): before that a MIGRATION event
 * would not reach the ledger. */
static void
qn_wait_events_cap(Vm *vm)
{
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    gboolean on = FALSE;

    while (!on && g_get_monotonic_time() < deadline) {
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) r = qn_qmp_query(vm->sock, "query-migrate-capabilities", NULL,
                                             20000, &error);
        JsonArray *a = r ? json_node_get_array(r) : NULL;

        for (guint i = 0; a != NULL && i < json_array_get_length(a); i++) {
            JsonObject *c = json_array_get_object_element(a, i);

            on |= !strcmp(json_object_get_string_member(c, "capability"), "events") &&
                  json_object_get_boolean_member(c, "state");
        }
        if (!on) {
            g_usleep(20 * 1000);
        }
    }
    g_assert_true(on);
}

static End
qn_end_start(QnTestLaunch *f, gboolean qn, const char *const *env, const char *const *args)
{
    End e = { NULL, qn };

    e.vm = qn ? qn_vm_start_full(env ? env : qn_launch_env(f, NULL), args, FALSE)
              : qn_plain_start(args);
    if (qn) {
        qn_wait_events_cap(e.vm);
    }
    return e;
}

/* A QMP command with arguments (a JSON object text) on @sock; an error is fatal. */
static JsonNode *
qn_qmp_args(const char *sock, const char *cmd, const char *json_args)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) a = json_args ? json_from_string(json_args, &error) : NULL;
    JsonNode *r;

    g_assert_no_error(error);
    r = qn_qmp_query(sock, cmd, a ? json_node_get_object(a) : NULL, 20000, &error);
    if (r == NULL) {
        g_error("QMP %s %s on %s: %s", cmd, json_args ? json_args : "", sock, error->message);
    }
    return r;
}

/* Waits (60 s at most) until @sock's query-migrate status is neither active nor setting up.
 * Returns: (transfer full): the last answer. */
static JsonNode *
qn_migrate_wait(const char *sock)
{
    gint64 deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;

    for (;;) {
        JsonNode *r = qn_qmp_args(sock, "query-migrate", NULL);
        const char *st = json_object_get_string_member_with_default(json_node_get_object(r),
                                                                     "status", "none");

        if (!strcmp(st, "completed") || !strcmp(st, "failed") || !strcmp(st, "cancelled") ||
            g_get_monotonic_time() > deadline) {
            return r;
        }
        json_node_unref(r);
        g_usleep(20 * 1000);
    }
}

/* Both ends have the same memory backends: ids and sizes (QEMU matches RAM blocks so). */
static void
qn_assert_same_memdevs(Vm *src, Vm *dst)
{
    g_autoptr(JsonNode) a = qn_vm_qmp(src, "query-memdev");
    g_autoptr(JsonNode) b = qn_vm_qmp(dst, "query-memdev");
    JsonArray *la = json_node_get_array(a);

    g_assert_cmpuint(json_array_get_length(la), ==,
                     json_array_get_length(json_node_get_array(b)));
    for (guint i = 0; i < json_array_get_length(la); i++) {
        JsonObject *m = json_array_get_object_element(la, i);
        const char *id = json_object_get_string_member(m, "id");

        g_assert_cmpint(json_object_get_int_member(qn_memdev(b, id), "size"), ==,
                        json_object_get_int_member(m, "size"));
    }
}

/* QEMU's run state on @vm's socket. */
static gchar *
qn_run_state(Vm *vm)
{
    g_autoptr(JsonNode) st = qn_vm_qmp(vm, "query-status");

    return g_strdup(json_object_get_string_member(json_node_get_object(st), "status"));
}

/* How qn_migrate() migrates. */
typedef enum {
    QN_MIG_PRECOPY,
    QN_MIG_DEFER,    /* the destination has -incoming defer: migrate-incoming first */
    QN_MIG_POSTCOPY, /* deferred too, postcopy-ram on both ends, migrate-start-postcopy */
} QnMigHow;

/* Postcopy: the capability on both ends, the source's precopy slowed to 64 KB/s so that
 * migrate-start-postcopy finds the migration active (an idle guest's 64M are zero pages, a few
 * bytes each: at 4 MB/s precopy ended in 0.1 s, before the switch); postcopy then runs at full
 * speed (max-postcopy-bandwidth 0). */
static void
qn_postcopy_prepare(End *src, End *dst)
{
    const char *caps = "{\"capabilities\": [{\"capability\": \"postcopy-ram\", "
                       "\"state\": true}]}";

    json_node_unref(qn_qmp_args(src->vm->sock, "migrate-set-capabilities", caps));
    json_node_unref(qn_qmp_args(dst->vm->sock, "migrate-set-capabilities", caps));
    json_node_unref(qn_qmp_args(src->vm->sock, "migrate-set-parameters",
                                "{\"max-bandwidth\": 65536}"));
}

/* Waits until the source's migration is active, then switches it to postcopy. */
static void
qn_postcopy_start(End *src)
{
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

    for (;;) {
        g_autoptr(JsonNode) r = qn_qmp_args(src->vm->sock, "query-migrate", NULL);
        const char *st = json_object_get_string_member_with_default(json_node_get_object(r),
                                                                     "status", "none");

        if (!strcmp(st, "active") || g_get_monotonic_time() > deadline) {
            g_assert_cmpstr(st, ==, "active");
            break;
        }
        g_usleep(10 * 1000);
    }
    json_node_unref(qn_qmp_args(src->vm->sock, "migrate-start-postcopy", NULL));
}

/* Migrates @src to @dst (listening on @uri, or deferred: @how): completed, the destination
 * runs, the same backends on both ends. Returns: (transfer full): the source's final
 * query-migrate. */
static JsonNode *
qn_migrate(End *src, End *dst, const char *uri, QnMigHow how)
{
    g_autofree gchar *margs = g_strdup_printf("{\"uri\": \"%s\"}", uri);
    g_autoptr(JsonNode) r = NULL;
    g_autofree gchar *st = NULL;
    JsonNode *q;
    gint64 deadline;

    qn_vm_wait_qmp(src->vm);
    st = qn_run_state(dst->vm);
    g_assert_cmpstr(st, ==, "inmigrate");
    if (how == QN_MIG_POSTCOPY) {
        qn_postcopy_prepare(src, dst);
    }
    if (how != QN_MIG_PRECOPY) {
        r = qn_qmp_args(dst->vm->sock, "migrate-incoming", margs);
    }
    json_node_unref(qn_qmp_args(src->vm->sock, "migrate", margs));
    if (how == QN_MIG_POSTCOPY) {
        qn_postcopy_start(src);
    }
    q = qn_migrate_wait(src->vm->sock);
    g_assert_cmpstr(json_object_get_string_member(json_node_get_object(q), "status"), ==,
                    "completed");
    /* the destination resumes once it has loaded the last page: wait for it (bounded) */
    deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    do {
        g_free(st);
        st = qn_run_state(dst->vm);
    } while (strcmp(st, "running") != 0 && g_get_monotonic_time() < deadline &&
             (g_usleep(20 * 1000), TRUE));
    g_assert_cmpstr(st, ==, "running");
    g_free(st);
    st = qn_run_state(src->vm);
    g_assert_cmpstr(st, ==, "postmigrate");
    qn_assert_same_memdevs(src->vm, dst->vm);
    return q;
}

/* `ctl status --json` of the qemu-numa VM @vm (by pid) in @state, waited for (5 s at most)
 * until its entry says @state_want (nullable) and its migration's status is @mig_want
 * (nullable: no migration recorded). Returns: (transfer full): the last answer. */
static JsonNode *
qn_wait_entry(const char *state, Vm *vm, const char *state_want, const char *mig_want)
{
    const char *args[] = { "status", g_subprocess_get_identifier(vm->proc), NULL };
    gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;

    for (;;) {
        JsonNode *st = qn_ctl_json(state, args);
        JsonObject *o = st ? json_node_get_object(st) : NULL;
        JsonNode *mn = o ? json_object_get_member(o, "migration") : NULL;
        const char *ms = mn && JSON_NODE_HOLDS_OBJECT(mn)
                             ? json_object_get_string_member(json_node_get_object(mn), "status")
                             : NULL;

        if (o != NULL && g_strcmp0(json_object_get_string_member(o, "state"), state_want) == 0 &&
            g_strcmp0(ms, mig_want) == 0) {
            return st;
        }
        if (g_get_monotonic_time() > deadline) {
            g_autofree gchar *text = st ? json_to_string(st, FALSE) : g_strdup("(none)");

            g_error("entry of %s: wanted state %s, migration %s: %s",
                    g_subprocess_get_identifier(vm->proc), state_want, mig_want, text);
        }
        if (st != NULL) {
            json_node_unref(st);
        }
        g_usleep(50 * 1000);
    }
}

/* The role recorded in a `status --json` answer's "migration". */
static const char *
qn_mig_role(JsonNode *st)
{
    return json_object_get_string_member(
        json_object_get_object_member(json_node_get_object(st), "migration"), "role");
}

/* The guest of every case: 64M (32 pages of 2M) on one vCPU, booting nothing (SeaBIOS loops). */
#define QN_GUEST "-m", "64M", "-smp", "1", "-machine", "pc", "-nodefaults", "-display", "none"

/* Plain QEMU <-> qemu-numa with the same argv (issue 14, item 1): plain QEMU's machine RAM on
 * our hugetlbfs (-mem-path, the RAM block "pc.ram"), qemu-numa's one backend named the same.
 * @data: "to-qn" (plain -> qemu-numa) or "from-qn". */
static void
test_migrate_plain(QnTestLaunch *f, gconstpointer data)
{
    gboolean to_qn = strcmp(data, "to-qn") == 0;
    g_autofree gchar *dir = NULL, *uri = NULL;
    const char *base[] = { QN_GUEST, "-mem-path", qn_test_host.mnt2m, "-mem-prealloc", NULL };
    g_autoptr(GPtrArray) dargs = NULL;
    g_autoptr(JsonNode) q = NULL;
    End src, dst;
    guint64 during;
    gsize tlen = 0;

    if (f->skipped) {
        return;
    }
    dir = qn_new_dir("mig");
    uri = g_strdup_printf("unix:%s/mig.sock", dir);
    {
        const char *more[] = { "-incoming", uri, NULL };

        dargs = qn_args_cat(base, more);
    }
    src = qn_end_start(f, !to_qn, NULL, base);
    qn_vm_wait_qmp(src.vm);
    dst = qn_end_start(f, to_qn, NULL, (const char *const *)dargs->pdata);
    qn_vm_wait_qmp(dst.vm);
    /* both hold their 32 pages: the destination pre-allocated before listening */
    during = qn_free_pages(2048);
    g_assert_cmpuint(f->before - during, ==, 64);
    if (to_qn) {
        /* the ledger follows the VM: "incoming" until the guest has arrived */
        json_node_unref(qn_wait_entry(f->state, dst.vm, "incoming", NULL));
    }
    q = qn_migrate(&src, &dst, uri, QN_MIG_PRECOPY);
    {
        g_autoptr(JsonNode) st = qn_wait_entry(f->state, to_qn ? dst.vm : src.vm, "reserved",
                                               "completed");

        const char *args[] = { "status", g_subprocess_get_identifier((to_qn ? dst.vm : src.vm)
                                                                       ->proc), NULL };
        g_autofree gchar *text = qn_ctl_text(f->state, args, &tlen);

        g_assert_cmpstr(qn_mig_role(st), ==, to_qn ? "destination" : "source");
        /* `ctl status` shows it to people too */
        g_assert_nonnull(strstr(text, to_qn ? "migration: destination, completed at "
                                            : "migration: source, completed at "));
    }
    /* a source that migrated away keeps its pages until its QEMU exits */
    g_assert_cmpuint(qn_free_pages(2048), ==, during);
    g_test_message("%s: total-time %" G_GINT64_FORMAT " ms, downtime %" G_GINT64_FORMAT " ms",
                   (const char *)data,
                   json_object_get_int_member(json_node_get_object(q), "total-time"),
                   json_object_get_int_member(json_node_get_object(q), "downtime"));
    {
        g_autoptr(JsonNode) md = qn_vm_qmp(to_qn ? dst.vm : src.vm, "query-memdev");

        qn_assert_memdev(qn_memdev(md, "pc.ram"), 64 << 20, "bind");
    }
    qn_vm_quit(src.vm);
    qn_vm_quit(dst.vm);
}

/* A destination that cannot hold the layout refuses before QEMU listens (issue 14, item 4):
 * guest node 1's backend fixes 2M pages, more than this host has free. qemu-numa exits 1 with
 * one line naming that node, nothing listens on the migration socket, and a source that tries
 * sees its migration fail and keeps running; nothing is left allocated or in the ledger. */
static void
test_migrate_refuse(QnTestLaunch *f, gconstpointer data)
{
    const char *base[] = { QN_GUEST, NULL };
    g_autofree gchar *dir = NULL, *uri = NULL, *path = NULL, *err = NULL;
    g_autofree gchar *m = NULL, *obj0 = NULL, *obj1 = NULL, *margs = NULL, *st = NULL;
    g_autoptr(JsonNode) q = NULL;
    End src;
    gint rc;

    if (f->skipped) {
        return;
    }
    dir = qn_new_dir("mig");
    path = g_strdup_printf("%s/mig.sock", dir);
    uri = g_strdup_printf("unix:%s", path);
    m = g_strdup_printf("%" G_GUINT64_FORMAT "M", 32 + (f->before + 1) * 2);
    obj0 = g_strdup_printf("memory-backend-file,id=m0,size=32M,mem-path=%s", qn_test_host.mnt2m);
    obj1 = g_strdup_printf("memory-backend-file,id=m1,size=%" G_GUINT64_FORMAT "M,mem-path=%s",
                           (f->before + 1) * 2, qn_test_host.mnt2m);
    {
        const char *args[] = { "-m", m, "-smp", "2", "-machine", "pc", "-nodefaults", "-display",
                               "none", "-object", obj0, "-object", obj1,
                               "-numa", "node,nodeid=0,cpus=0,memdev=m0",
                               "-numa", "node,nodeid=1,cpus=1,memdev=m1", "-incoming", uri,
                               NULL };

        rc = qn_run_launcher(f->state, qn_launch_env(f, NULL), args, &err);
    }
    g_assert_cmpint(rc, ==, 1);
    qn_assert_one_line(err, "-incoming: guest node 1 (memdev 'm1', ");
    g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
    g_assert_cmpuint(qn_state_entries(f->state), ==, 0);
    /* the source (qemu-numa) sees a refused connection, and runs on with its pages */
    src = qn_end_start(f, TRUE, NULL, base);
    qn_vm_wait_qmp(src.vm);
    margs = g_strdup_printf("{\"uri\": \"%s\"}", uri);
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) a = json_from_string(margs, NULL);
        g_autoptr(JsonNode) r = qn_qmp_query(src.vm->sock, "migrate", json_node_get_object(a),
                                             20000, &error);

        /* QEMU 7.2 fails the command itself when connect() is refused, or later in the
         * migration state: either way it is "failed", never "completed" */
        if (r == NULL) {
            g_test_message("migrate refused: %s", error->message);
        } else {
            q = qn_migrate_wait(src.vm->sock);
            g_assert_cmpstr(json_object_get_string_member(json_node_get_object(q), "status"),
                            ==, "failed");
        }
    }
    st = qn_run_state(src.vm);
    g_assert_cmpstr(st, ==, "running");
    {
        g_autoptr(JsonNode) e = qn_wait_entry(f->state, src.vm, "reserved", "failed");

        g_assert_cmpstr(qn_mig_role(e), ==, "source");
        g_assert_cmpstr(qn_qemu_status(e), ==, "running");
    }
    g_assert_cmpuint(f->before - qn_free_pages(2048), ==, 32);
    qn_vm_quit(src.vm);
}

/* HMP `info numa` on @vm: the nodes, their CPUs and memory as QEMU gives them to the guest. */
static gchar *
qn_info_numa(Vm *vm)
{
    g_autoptr(JsonNode) r = qn_qmp_args(vm->sock, "human-monitor-command",
                                        "{\"command-line\": \"info numa\"}");

    return g_strdup(json_node_get_string(r));
}

/* A qemu-numa VM with 2 guest nodes (guest-nodes=2) migrated through `qemu-numa-ctl
 * migrate-args` (issue 14, item 3): the destination is started with its own options (machine,
 * display) plus those printed, on qemu-numa (@data "to-qn": it chooses its own host nodes) or
 * on plain QEMU ("to-plain"). Same backends, same `info numa`, completed, running. */
static void
test_migrate_args(QnTestLaunch *f, gconstpointer data)
{
    gboolean to_qn = strcmp(data, "to-qn") == 0;
    const char *src_args[] = { "-name", "mig2", "-m", "64M", "-smp", "2", "-machine", "pc",
                               "-nodefaults", "-display", "none", NULL };
    const char *own[] = { "-machine", "pc", "-nodefaults", "-display", "none", NULL };
    const char *ma[] = { "migrate-args", "mig2", NULL };
    g_autofree gchar *dir = NULL, *uri = NULL, *before = NULL, *after = NULL, *text = NULL;
    g_autoptr(JsonNode) j = NULL;
    g_autoptr(JsonNode) q = NULL;
    g_autoptr(GPtrArray) dargs = g_ptr_array_new_with_free_func(g_free);
    JsonArray *a;
    gsize tlen = 0;
    End src, dst;

    if (f->skipped) {
        return;
    }
    dir = qn_new_dir("mig");
    uri = g_strdup_printf("unix:%s/mig.sock", dir);
    src = qn_end_start(f, TRUE, qn_launch_env(f, "QEMU_NUMA_GUEST_NODES=2", NULL), src_args);
    qn_vm_wait_qmp(src.vm);
    j = qn_ctl_json(f->state, ma);
    g_assert_nonnull(j);
    text = qn_ctl_text(f->state, ma, &tlen);
    g_test_message("migrate-args: %s", text);
    /* no host path or node in it: only what the guest sees */
    g_assert_null(strstr(text, "mem-path"));
    g_assert_null(strstr(text, "host-nodes"));
    g_assert_nonnull(strstr(text, "memory-backend-memfd,id=qn-ram1,size=33554432,hugetlb=on,"
                                  "hugetlbsize=2097152"));
    for (guint i = 0; own[i] != NULL; i++) {
        g_ptr_array_add(dargs, g_strdup(own[i]));
    }
    a = json_object_get_array_member(json_node_get_object(j), "args");
    for (guint i = 0; i < json_array_get_length(a); i++) {
        g_ptr_array_add(dargs, g_strdup(json_array_get_string_element(a, i)));
    }
    g_ptr_array_add(dargs, g_strdup("-incoming"));
    g_ptr_array_add(dargs, g_strdup(uri));
    g_ptr_array_add(dargs, NULL);
    dst = qn_end_start(f, to_qn, NULL, (const char *const *)dargs->pdata);
    qn_vm_wait_qmp(dst.vm);
    before = qn_info_numa(src.vm);
    g_assert_nonnull(strstr(before, "2 nodes"));
    q = qn_migrate(&src, &dst, uri, QN_MIG_PRECOPY);
    after = qn_info_numa(dst.vm);
    g_assert_cmpstr(after, ==, before);
    if (to_qn) {
        /* placed by the destination's own planner: the argv's 2 nodes on 2M pages */
        const char *st[] = { "status", g_subprocess_get_identifier(dst.vm->proc), NULL };
        g_autoptr(JsonNode) e = qn_ctl_json(f->state, st);
        JsonObject *plan;

        g_assert_nonnull(e);
        plan = json_object_get_object_member(json_node_get_object(e), "plan");
        g_assert_cmpstr(json_object_get_string_member(plan, "guest_topology"), ==, "user");
        g_assert_cmpuint(json_array_get_length(json_object_get_array_member(plan,
                                                                            "guest_nodes")),
                         ==, 2);
    }
    qn_vm_quit(src.vm);
    qn_vm_quit(dst.vm);
}

/* The MIGRATION statuses in the ledger's events of the qemu-numa VM @vm, comma-separated. */
static gchar *
qn_mig_events(const char *state, Vm *vm)
{
    const char *args[] = { "events", g_subprocess_get_identifier(vm->proc), NULL };
    g_autoptr(JsonNode) ev = qn_ctl_json(state, args);
    JsonArray *a = json_node_get_array(ev);
    GString *s = g_string_new(NULL);

    for (guint i = 0; i < json_array_get_length(a); i++) {
        JsonObject *e = json_array_get_object_element(a, i);

        if (!strcmp(json_object_get_string_member(e, "event"), "MIGRATION")) {
            g_string_append_printf(s, "%s%s", s->len ? "," : "",
                                   json_object_get_string_member(
                                       json_object_get_object_member(e, "data"), "status"));
        }
    }
    return g_string_free(s, FALSE);
}

/* qemu-numa -> qemu-numa, the destination started with -incoming defer then migrate-incoming
 * (@data "defer"), or also with postcopy on 2M hugepages on both ends ("postcopy":
 * migrate-set-capabilities postcopy-ram, migrate-start-postcopy; page sizes must match). */
static void
test_migrate_defer(QnTestLaunch *f, gconstpointer data)
{
    gboolean postcopy = strcmp(data, "postcopy") == 0;
    const char *args[] = { QN_GUEST, NULL };
    const char *dargs[] = { QN_GUEST, "-incoming", "defer", NULL };
    g_autofree gchar *dir = NULL, *uri = NULL, *sev = NULL, *dev = NULL;
    g_autoptr(JsonNode) q = NULL;
    End src, dst;

    if (f->skipped) {
        return;
    }
    dir = qn_new_dir("mig");
    uri = g_strdup_printf("unix:%s/mig.sock", dir);
    src = qn_end_start(f, TRUE, NULL, args);
    dst = qn_end_start(f, TRUE, NULL, dargs);
    json_node_unref(qn_wait_entry(f->state, dst.vm, "incoming", NULL));
    q = qn_migrate(&src, &dst, uri, postcopy ? QN_MIG_POSTCOPY : QN_MIG_DEFER);
    g_test_message("%s: total-time %" G_GINT64_FORMAT " ms, downtime %" G_GINT64_FORMAT " ms",
                   (const char *)data,
                   json_object_get_int_member(json_node_get_object(q), "total-time"),
                   json_object_get_int_member(json_node_get_object(q), "downtime"));
    json_node_unref(qn_wait_entry(f->state, dst.vm, "reserved", "completed"));
    json_node_unref(qn_wait_entry(f->state, src.vm, "reserved", "completed"));
    sev = qn_mig_events(f->state, src.vm);
    dev = qn_mig_events(f->state, dst.vm);
    g_test_message("MIGRATION events: source %s; destination %s", sev, dev);
    if (postcopy) {
        g_assert_nonnull(strstr(sev, "postcopy-active"));
        g_assert_nonnull(strstr(dev, "postcopy-active"));
    }
    {
        g_autoptr(JsonNode) md = qn_vm_qmp(dst.vm, "query-memdev");

        qn_assert_memdev(qn_memdev(md, "pc.ram"), 64 << 20, "bind");
    }
    /* 32 pages each until the source quits */
    g_assert_cmpuint(f->before - qn_free_pages(2048), ==, 64);
    qn_vm_quit(src.vm);
    qn_vm_quit(dst.vm);
}

/* The image of contrib/guest/init-migrate (kernel, initramfs, command line), built once into
 * <builddir>/build/migrate-guest (the kernel download cached in build/guest-cache, as
 * tests/libvirt/run-libvirt does). Returns: the directory, or NULL when it could not be built
 * (the reason in @ret_why). */
static gchar *
qn_guest_image(gchar **ret_why)
{
    const char *src = g_getenv("QN_TOP_SRCDIR") ? g_getenv("QN_TOP_SRCDIR") : ".";
    g_autofree gchar *out = g_build_filename(qn_test_host.builddir, "build", "migrate-guest",
                                             NULL);
    g_autofree gchar *cache = g_build_filename(qn_test_host.builddir, "build", "guest-cache",
                                               NULL);
    g_autofree gchar *tool = g_build_filename(src, "contrib", "guest", "build-image", NULL);
    g_autofree gchar *init = g_build_filename(src, "contrib", "guest", "init-migrate", NULL);
    const char *argv[] = { tool, "--out", out, "--cache", cache, "--init", init, NULL };
    g_autofree gchar *err = NULL;
    gint status = 0;

    if (!g_spawn_sync(NULL, (gchar **)argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL,
                      &err, &status, NULL) ||
        !g_spawn_check_wait_status(status, NULL)) {
        *ret_why = g_strdup_printf("contrib/guest/build-image failed: %s", err ? err : "");
        return NULL;
    }
    return g_steal_pointer(&out);
}

/* The last whole topology block in the serial log @path (its lines between BEGIN and END,
 * without the sequence numbers), or NULL; @ret_seq: its sequence number. */
static gchar *
qn_guest_block(const char *path, guint *ret_seq)
{
    g_autofree gchar *text = NULL;
    g_auto(GStrv) lines = NULL;
    GString *cur = NULL;
    gchar *last = NULL;

    if (!g_file_get_contents(path, &text, NULL, NULL)) {
        return NULL;
    }
    lines = g_strsplit(text, "\n", -1);
    for (guint i = 0; lines[i] != NULL; i++) {
        const char *l = g_strchomp(lines[i]);

        if (g_str_has_prefix(l, "QN-GUEST-BEGIN seq=")) {
            if (cur != NULL) {
                g_string_free(cur, TRUE);
            }
            cur = g_string_new(NULL);
        } else if (g_str_has_prefix(l, "QN-GUEST-END seq=") && cur != NULL) {
            g_free(last);
            last = g_string_free(cur, FALSE);
            cur = NULL;
            *ret_seq = (guint)g_ascii_strtoull(l + strlen("QN-GUEST-END seq="), NULL, 10);
        } else if (cur != NULL && g_str_has_prefix(l, "QN-GUEST ")) {
            g_string_append_printf(cur, "%s\n", l);
        }
    }
    if (cur != NULL) {
        g_string_free(cur, TRUE);
    }
    return last;
}

/* Waits (@limit_s) for a whole block in @path numbered above @after. Returns: it, or fatal. */
static gchar *
qn_wait_guest_block(const char *path, guint after, guint *ret_seq, gint64 limit_s)
{
    gint64 deadline = g_get_monotonic_time() + limit_s * G_USEC_PER_SEC;

    for (;;) {
        guint seq = 0;
        gchar *b = qn_guest_block(path, &seq);

        if (b != NULL && seq > after) {
            *ret_seq = seq;
            return b;
        }
        g_free(b);
        if (g_get_monotonic_time() > deadline) {
            g_error("%s: no topology block after seq %u in %" G_GINT64_FORMAT " s", path, after,
                    limit_s);
        }
        g_usleep(100 * 1000);
    }
}

/* A booted Linux guest with 2 NUMA nodes (qemu-numa, guest-nodes=2) printing its topology every
 * half second, migrated mid-run to a qemu-numa destination started with its own options plus
 * `migrate-args`: the guest goes on printing on the destination's console, and what it sees
 * (nodes, CPUs, memory per node, distances) is what it saw before. */
static void
test_migrate_guest(QnTestLaunch *f, gconstpointer data)
{
    g_autofree gchar *why = NULL, *img = NULL, *kernel = NULL, *initrd = NULL, *cmdline = NULL;
    g_autofree gchar *dir = NULL, *uri = NULL, *slog = NULL, *dlog = NULL, *sser = NULL;
    g_autofree gchar *dser = NULL, *before = NULL, *after = NULL;
    const char *ma[] = { "migrate-args", "migguest", NULL };
    g_autoptr(JsonNode) j = NULL;
    g_autoptr(JsonNode) q = NULL;
    g_autoptr(GPtrArray) dargs = g_ptr_array_new_with_free_func(g_free);
    JsonArray *a;
    guint seq = 0, seq2 = 0;
    End src, dst;

    if (f->skipped) {
        return;
    }
    img = qn_guest_image(&why);
    if (qn_launch_skip_unless(f, img != NULL, why ? why : "")) {
        return;
    }
    kernel = g_build_filename(img, "vmlinux", NULL);
    if (!g_file_test(kernel, G_FILE_TEST_EXISTS)) {
        g_free(kernel);
        kernel = g_build_filename(img, "bzImage", NULL);
    }
    initrd = g_build_filename(img, "initramfs.gz", NULL);
    {
        g_autofree gchar *p = g_build_filename(img, "kernel-cmdline", NULL);

        g_assert_true(g_file_get_contents(p, &cmdline, NULL, NULL));
        g_strchomp(cmdline);
    }
    dir = qn_new_dir("mig");
    uri = g_strdup_printf("unix:%s/mig.sock", dir);
    slog = g_strdup_printf("%s/source.serial", dir);
    dlog = g_strdup_printf("%s/destination.serial", dir);
    sser = g_strdup_printf("file:%s", slog);
    dser = g_strdup_printf("file:%s", dlog);
    {
        const char *args[] = { "-name", "migguest", "-m", "192M", "-smp", "2", "-machine", "pc",
                               "-nodefaults", "-display", "none", "-no-reboot", "-kernel",
                               kernel, "-initrd", initrd, "-append", cmdline, "-serial", sser,
                               NULL };

        src = qn_end_start(f, TRUE, qn_launch_env(f, "QEMU_NUMA_GUEST_NODES=2", NULL), args);
    }
    before = qn_wait_guest_block(slog, 1, &seq, 120);
    g_test_message("the guest on the source (block %u):\n%s", seq, before);
    g_assert_nonnull(strstr(before, "QN-GUEST nodes=0-1\n"));
    j = qn_ctl_json(f->state, ma);
    g_assert_nonnull(j);
    {
        const char *own[] = { "-machine", "pc", "-nodefaults", "-display", "none", "-no-reboot",
                              "-kernel", kernel, "-initrd", initrd, "-append", cmdline,
                              "-serial", dser, NULL };

        for (guint i = 0; own[i] != NULL; i++) {
            g_ptr_array_add(dargs, g_strdup(own[i]));
        }
    }
    a = json_object_get_array_member(json_node_get_object(j), "args");
    for (guint i = 0; i < json_array_get_length(a); i++) {
        g_ptr_array_add(dargs, g_strdup(json_array_get_string_element(a, i)));
    }
    g_ptr_array_add(dargs, g_strdup("-incoming"));
    g_ptr_array_add(dargs, g_strdup(uri));
    g_ptr_array_add(dargs, NULL);
    dst = qn_end_start(f, TRUE, NULL, (const char *const *)dargs->pdata);
    q = qn_migrate(&src, &dst, uri, QN_MIG_PRECOPY);
    g_test_message("booted guest: total-time %" G_GINT64_FORMAT " ms, downtime %" G_GINT64_FORMAT
                   " ms", json_object_get_int_member(json_node_get_object(q), "total-time"),
                   json_object_get_int_member(json_node_get_object(q), "downtime"));
    /* the guest goes on where it was: its next blocks are on the destination's console */
    {
        guint s0 = 0;

        g_free(qn_guest_block(slog, &s0)); /* only the sequence number of its last block */
        after = qn_wait_guest_block(dlog, s0, &seq2, 30);
    }
    g_test_message("the guest on the destination (block %u):\n%s", seq2, after);
    g_assert_cmpstr(after, ==, before);
    qn_vm_quit(src.vm);
    qn_vm_quit(dst.vm);
}

int
main(int argc, char **argv)
{
    qn_test_init_host(&argc, &argv, "migrate");
    qn_test_add_launch("/migrate/plain/to-qemu-numa", "to-qn", test_migrate_plain);
    qn_test_add_launch("/migrate/plain/from-qemu-numa", "from-qn", test_migrate_plain);
    qn_test_add_launch("/migrate/refuse", NULL, test_migrate_refuse);
    qn_test_add_launch("/migrate/args/to-qemu-numa", "to-qn", test_migrate_args);
    qn_test_add_launch("/migrate/args/to-plain", "to-plain", test_migrate_args);
    qn_test_add_launch("/migrate/defer", "defer", test_migrate_defer);
    qn_test_add_launch("/migrate/postcopy", "postcopy", test_migrate_defer);
    qn_test_add_launch("/migrate/booted-guest", NULL, test_migrate_guest);
    return qn_test_run();
}
