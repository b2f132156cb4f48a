/* Golden argv cases (libvirt's qemuxml2argv style): tests/data/argv/<case>.in gives a host
 * (fake sysfs tree), settings, ledger reservations and the user's QEMU argv; <case>.args holds
 * the expected argv (one element a line), or <case>.err the expected error message. The argv is
 * the whole one the launch execs (qn_rewrite_qemu_argv()): memory options, our QMP monitors
 * whenever the plan is not passthrough, and -S by qn_rewrite_wants_start_paused(). Fds are
 * placeholders: mem-paths /proc/self/fd/100 + guest node (200 + n for reserved hugepage DIMMs),
 * monitors fd=<qn-monitor>.
 * QN_TEST_REGENERATE=1 rewrites the expected files: review every diff.
 *
 * .in lines:  topology NAME | proc NAME (tests/data/proc/NAME, default fake) | env NAME=VALUE | cpuset CPUS MEMS | reserve NODE PAGESIZE BYTES
 *             | pinned CPULIST (pCPUs other VMs hold) | argv SHELL-WORDS (several argv
 *             lines concatenate) | # comment */
#include "config.h"

#include <stdio.h>
#include <glib/gstdio.h>

#include <string.h>

#include "qn-argv.h"
#include "qn-config.h"
#include "qn-error.h"
#include "qn-plan.h"
#include "qn-rewrite.h"
#include "qn-sysfs.h"

static const char *srcdir;

/* The reserved hugepage DIMMs' mem-paths follow the guest nodes' (qn_rewrite_argv()):
 * /proc/self/fd/200 + the device's index among them. */
static void
qn_add_dimm_paths(const QnPlan *plan, GPtrArray *paths)
{
    guint k = 0;

    for (guint i = 0; plan->mem_devices != NULL && i < plan->mem_devices->len; i++) {
        const QnPlanMemDevice *d = g_ptr_array_index(plan->mem_devices, i);

        if (d->reserve) {
            g_ptr_array_add(paths, g_strdup_printf("/proc/self/fd/%u", 200 + k++));
        }
    }
}

static gchar *
qn_run_case(const char *in_path, gboolean *ret_is_error)
{
    g_autofree gchar *text = NULL;
    g_auto(GStrv) lines = NULL;
    g_autoptr(GStrvBuilder) env = g_strv_builder_new();
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    g_autofree gchar *topology = NULL;
    g_autofree gchar *cpus_allowed = NULL, *mems_allowed = NULL;
    g_autoptr(QnReservations) resv = qn_reservations_new();
    g_autoptr(GError) error = NULL;
    g_auto(GStrv) envv = NULL;
    g_autoptr(QnConfig) cfg = NULL;
    g_autoptr(QnTopology) topo = NULL;
    g_autoptr(QnQemuArgv) qa = NULL;
    g_autoptr(QnPlan) plan = NULL;
    g_auto(GStrv) out = NULL;
    g_autofree gchar *sysfs = NULL, *proc = NULL, *proc_name = NULL;
    GString *res;

    g_assert_true(g_file_get_contents(in_path, &text, NULL, NULL));
    lines = g_strsplit(text, "\n", -1);
    g_ptr_array_add(argv, g_strdup("qemu-system-x86_64"));
    for (guint i = 0; lines[i] != NULL; i++) {
        const char *l = lines[i];

        if (l[0] == '#' || l[0] == '\0') {
            continue;
        }
        if (g_str_has_prefix(l, "topology ")) {
            topology = g_strdup(l + 9);
        } else if (g_str_has_prefix(l, "proc ")) {
            proc_name = g_strdup(l + 5);
        } else if (g_str_has_prefix(l, "env ")) {
            g_strv_builder_add(env, l + 4);
        } else if (g_str_has_prefix(l, "cpuset ")) {
            g_auto(GStrv) f = g_strsplit(l + 7, " ", 2);

            cpus_allowed = g_strdup(f[0]);
            mems_allowed = g_strdup(f[1]);
        } else if (g_str_has_prefix(l, "reserve ")) {
            guint64 node, ps, bytes;

            g_assert_cmpint(sscanf(l + 8, "%" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT
                                   " %" G_GUINT64_FORMAT, &node, &ps, &bytes), ==, 3);
            qn_reservations_add(resv, (guint)node, ps, bytes);
        } else if (g_str_has_prefix(l, "pinned ")) {
            g_autoptr(QnBitmap) b = qn_bitmap_parse_list(l + 7, NULL);

            g_assert_nonnull(b);
            qn_bitmap_or(resv->pinned_cpus, b);
        } else if (g_str_has_prefix(l, "argv ")) {
            g_auto(GStrv) words = NULL;
            g_autoptr(GError) perr = NULL;

            if (!g_shell_parse_argv(l + 5, NULL, &words, &perr)) {
                g_error("%s: %s", in_path, perr->message);
            }
            for (guint k = 0; words[k] != NULL; k++) {
                g_ptr_array_add(argv, g_strdup(words[k]));
            }
        } else {
            g_error("%s: unknown line '%s'", in_path, l);
        }
    }
    g_ptr_array_add(argv, NULL);
    g_assert_nonnull(topology);
    envv = g_strv_builder_end(env);
    res = g_string_new(NULL);
    *ret_is_error = TRUE;

    cfg = qn_config_load(NULL, "test", (const char *const *)envv, &error);
    if (cfg == NULL) {
        goto err;
    }
    sysfs = g_build_filename(srcdir, "tests", "data", "sysfs", topology, NULL);
    proc = g_build_filename(srcdir, "tests", "data", "proc", proc_name ? proc_name : "fake",
                            NULL);
    topo = qn_topology_load(sysfs, proc, &error);
    g_assert_no_error(error);
    if (cpus_allowed != NULL) {
        g_autofree gchar *status = g_strdup_printf("Cpus_allowed_list:\t%s\nMems_allowed_list:\t"
                                                   "%s\n", cpus_allowed, mems_allowed);
        g_autoptr(QnBitmap) c = NULL;
        g_autoptr(QnBitmap) m = NULL;

        g_assert_true(qn_parse_status_allowed(status, &c, &m, NULL));
        for (guint i = 0; i < topo->nodes->len; i++) {
            QnHostNode *n = g_ptr_array_index(topo->nodes, i);

            n->allowed = qn_bitmap_test(m, n->id);
        }
        for (guint i = 0; i < topo->cpus->len; i++) {
            QnHostCpu *hc = g_ptr_array_index(topo->cpus, i);

            hc->allowed = qn_bitmap_test(c, hc->id);
        }
    }
    qa = qn_qemu_argv_parse((const char *const *)argv->pdata, &error);
    if (qa == NULL) {
        goto err;
    }
    plan = qn_plan_compute(topo, resv, qa, cfg, &error);
    if (plan == NULL) {
        goto err;
    }
    {
        static const char *const monitor_fds[QN_REWRITE_MONITORS] = { "<qn-monitor>",
                                                                       "<qn-ctl>" };
        g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func(g_free);
        g_autofree gchar *summary = qn_plan_summary(plan);
        QnRewriteInput in = { 0 };

        for (guint i = 0; i < plan->guest_nodes->len; i++) {
            const QnGuestNode *g = g_ptr_array_index(plan->guest_nodes, i);

            g_ptr_array_add(paths, g->page_size ? g_strdup_printf("/proc/self/fd/%u", 100 + i)
                                                : NULL);
        }
        qn_add_dimm_paths(plan, paths);
        g_ptr_array_add(paths, NULL);
        /* The whole argv the launch execs: our monitors (fd placeholders, as `qemu-numa-ctl
         * plan` shows them) by the same rule as the launch, a function of the plan. */
        in.mem_paths = (const char *const *)paths->pdata;
        in.monitor_fds = qn_rewrite_wants_monitors(plan) ? monitor_fds : NULL;
        in.start_paused = qn_rewrite_wants_start_paused(plan, qa);
        out = qn_rewrite_qemu_argv(qa, plan, &in);
        *ret_is_error = FALSE;
        g_string_append_printf(res, "# plan: %s\n", summary);
        if (proc_name != NULL) {
            /* cases of their own mount table say which mount the files go to */
            g_string_append_printf(res, "# hugetlbfs: %s\n", plan->hugetlbfs);
        }
        for (guint i = 0; out[i] != NULL; i++) {
            g_string_append_printf(res, "%s\n", out[i]);
        }
        /* The output must re-parse, and our own topology must be what QEMU would see. */
        {
            g_autoptr(QnQemuArgv) again = qn_qemu_argv_parse((const char *const *)out, &error);

            g_assert_no_error(error);
            g_assert_nonnull(again);
        }
    }
    return g_string_free(res, FALSE);

err:
    g_string_append_printf(res, "%s\n", error->message);
    return g_string_free(res, FALSE);
}

static void
test_case(gconstpointer data)
{
    const char *name = data;
    g_autofree gchar *base = g_build_filename(srcdir, "tests", "data", "argv", name, NULL);
    g_autofree gchar *in = g_strdup_printf("%s.in", base);
    g_autofree gchar *args = g_strdup_printf("%s.args", base);
    g_autofree gchar *err = g_strdup_printf("%s.err", base);
    gboolean is_error;
    g_autofree gchar *got = qn_run_case(in, &is_error);
    g_autofree gchar *want = NULL;

    if (g_getenv("QN_TEST_REGENERATE") != NULL) {
        g_unlink(is_error ? args : err);
        g_assert_true(g_file_set_contents(is_error ? err : args, got, -1, NULL));
        return;
    }
    if (!g_file_get_contents(is_error ? err : args, &want, NULL, NULL)) {
        g_test_message("%s: got %s:\n%s", name, is_error ? "an error" : "an argv", got);
        g_test_fail_printf("%s: no expected %s file", name, is_error ? ".err" : ".args");
        return;
    }
    if (strcmp(got, want) != 0) {
        g_test_fail_printf("%s: output differs\n--- want\n%s--- got\n%s", name, want, got);
    }
}

static gint
qn_cmp_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* ---- libvirt's own command lines (tests/data/libvirt-args/, see its README) ----
 * Each file is libvirt's qemuxml2argv output as libvirt's test suite keeps it: environment
 * lines, the binary, then one option per line ending in " \". Each runs on the 2x2 and the
 * one-node trees with the default settings, and must keep the guest-visible layout libvirt
 * wrote: every option that is not a memory backend, in order and byte for byte (-numa
 * dist/hmat-lb/hmat-cache/cpu lines, -smp, devices); the -numa node lines' ids, CPUs and
 * memdev ids; every backend's id and size; libvirt's host-nodes and policy where it gave them,
 * and where it did not, the host nodes the plan chose written in the backend. The plan of each
 * run is listed in plans.txt (QN_TEST_REGENERATE=1 rewrites it; review the diff). */

static GPtrArray *qn_libvirt_plans; /* "case topology: summary" lines, in test order */

static GPtrArray *
qn_libvirt_argv_read(const char *path)
{
    g_autofree gchar *text = NULL;
    g_auto(GStrv) lines = NULL;
    GPtrArray *argv = g_ptr_array_new_with_free_func(g_free);
    gboolean in_cmd = FALSE;

    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    lines = g_strsplit(text, "\n", -1);
    for (guint i = 0; lines[i] != NULL; i++) {
        g_autofree gchar *l = g_strdup(lines[i]);
        g_auto(GStrv) words = NULL;
        g_autoptr(GError) err = NULL;

        if (g_str_has_suffix(l, " \\")) {
            l[strlen(l) - 2] = '\0';
        }
        if (l[0] == '\0' || (!in_cmd && l[0] != '/')) {
            continue; /* the environment libvirt sets */
        }
        in_cmd = TRUE;
        if (!g_shell_parse_argv(l, NULL, &words, &err)) {
            g_error("%s: %s", path, err->message);
        }
        for (guint k = 0; words[k] != NULL; k++) {
            g_ptr_array_add(argv, g_strdup(words[k]));
        }
    }
    g_assert_cmpuint(argv->len, >, 1);
    g_free(argv->pdata[0]);
    argv->pdata[0] = g_strdup("qemu-system-x86_64");
    g_ptr_array_add(argv, NULL);
    return argv;
}

static gboolean
qn_is_backend_arg(const QnQemuArgv *qa, guint index)
{
    for (guint i = 0; i < qa->backends->len; i++) {
        if (((const QnMemoryBackend *)g_ptr_array_index(qa->backends, i))->arg_index == index) {
            return TRUE;
        }
    }
    return FALSE;
}

/* Every option of @in that is neither a memory backend nor a -numa node line appears in @out
 * in the same order with the same bytes. */
static void
qn_assert_kept_in_order(const char *what, const QnQemuArgv *in, const QnQemuArgv *out)
{
    guint j = 0;

    for (guint i = 0; i < in->args->len; i++) {
        const QnArg *a = g_ptr_array_index(in->args, i);

        if (qn_is_backend_arg(in, i) ||
            (g_strcmp0(a->name, "numa") == 0 && g_str_has_prefix(a->value, "node"))) {
            continue;
        }
        while (j < out->args->len) {
            const QnArg *b = g_ptr_array_index(out->args, j++);

            if (g_strcmp0(a->flag, b->flag) == 0 && g_strcmp0(a->value, b->value) == 0) {
                break;
            }
            if (j == out->args->len) {
                g_test_fail_printf("%s: '%s %s' lost or moved", what, a->flag,
                                   a->value ? a->value : "");
                return;
            }
        }
    }
}

static const QnGuestNode *
qn_plan_node_of_memdev(const QnPlan *plan, const char *memdev)
{
    for (guint i = 0; i < plan->guest_nodes->len; i++) {
        const QnGuestNode *g = g_ptr_array_index(plan->guest_nodes, i);

        if (g_strcmp0(g->memdev, memdev) == 0) {
            return g;
        }
    }
    return NULL;
}

/* The guest-visible layout of @in is @out's: -numa node lines, dists, backends and sizes. */
static void
qn_assert_layout_kept(const char *what, const QnQemuArgv *in, const QnQemuArgv *out,
                      const QnPlan *plan)
{
    g_assert_cmpuint(out->numa_nodes->len, ==, in->numa_nodes->len);
    g_assert_cmpuint(out->numa_dists->len, ==, in->numa_dists->len);
    g_assert_cmpuint(out->ram_size, ==, in->ram_size);
    for (guint i = 0; i < in->numa_nodes->len; i++) {
        const QnNumaNode *a = g_ptr_array_index(in->numa_nodes, i);
        const QnNumaNode *b = g_ptr_array_index(out->numa_nodes, i);

        g_assert_cmpint(a->nodeid, ==, b->nodeid);
        g_assert_true(qn_bitmap_equal(a->cpus, b->cpus));
        if (a->memdev != NULL) {
            g_assert_cmpstr(a->memdev, ==, b->memdev);
        } else if (a->has_mem && plan->kind != QN_PLAN_ALIGNED) {
            g_assert_true(b->has_mem && b->mem == a->mem); /* the argv as given */
        } else if (a->has_mem) {
            /* legacy mem= (refused by QEMU 7.2's machine types): a backend of that size */
            const QnMemoryBackend *ob = qn_qemu_argv_find_backend(out, b->memdev);

            g_assert_nonnull(ob);
            g_assert_cmpuint(ob->size, ==, a->mem);
        } else {
            g_assert_null(b->memdev); /* memory-less: no backend of ours */
            g_assert_false(b->has_mem);
        }
    }
    for (guint i = 0; i < in->numa_dists->len; i++) {
        const QnNumaDist *a = g_ptr_array_index(in->numa_dists, i);
        const QnNumaDist *b = g_ptr_array_index(out->numa_dists, i);

        g_assert_true(a->src == b->src && a->dst == b->dst && a->val == b->val);
    }
    for (guint i = 0; i < in->backends->len; i++) {
        const QnMemoryBackend *a = g_ptr_array_index(in->backends, i);
        const QnMemoryBackend *b = qn_qemu_argv_find_backend(out, a->id);
        const QnGuestNode *g = qn_plan_node_of_memdev(plan, a->id);

        if (b == NULL) {
            g_test_fail_printf("%s: backend '%s' lost", what, a->id);
            return;
        }
        g_assert_cmpuint(a->size, ==, b->size);
        if (a->host_nodes != NULL) {
            /* libvirt's <numatune>: kept as given */
            g_assert_true(b->host_nodes != NULL && qn_bitmap_equal(a->host_nodes, b->host_nodes));
            g_assert_cmpstr(a->policy, ==, b->policy);
        } else if (plan->kind == QN_PLAN_ALIGNED && g != NULL) {
            /* left to us: the plan's choice, written in the backend and in the plan */
            g_assert_nonnull(b->host_nodes);
            g_assert_true(qn_bitmap_equal(b->host_nodes, g->host_nodes));
            g_assert_cmpuint(qn_bitmap_count(g->host_nodes), >, 0);
        }
    }
}

static void
test_libvirt_case(gconstpointer data)
{
    const char *const *c = data; /* { file name, topology } */
    g_autofree gchar *path = g_build_filename(srcdir, "tests", "data", "libvirt-args", c[0],
                                              NULL);
    g_autofree gchar *sysfs = g_build_filename(srcdir, "tests", "data", "sysfs", c[1], NULL);
    g_autofree gchar *proc = g_build_filename(srcdir, "tests", "data", "proc", "fake", NULL);
    g_autofree gchar *what = g_strdup_printf("%s on %s", c[0], c[1]);
    g_autoptr(GPtrArray) argv = qn_libvirt_argv_read(path);
    g_autoptr(GError) error = NULL;
    g_autoptr(QnConfig) cfg = qn_config_load(NULL, "test", NULL, &error);
    g_autoptr(QnTopology) topo = qn_topology_load(sysfs, proc, &error);
    g_autoptr(QnQemuArgv) qa = NULL;
    g_autoptr(QnQemuArgv) again = NULL;
    g_autoptr(QnPlan) plan = NULL;
    g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func(g_free);
    g_autofree gchar *summary = NULL;
    g_auto(GStrv) out = NULL;
    QnRewriteInput in = { 0 };
    static const char *const monitor_fds[QN_REWRITE_MONITORS] = { "<qn-monitor>", "<qn-ctl>" };

    g_assert_no_error(error);
    qa = qn_qemu_argv_parse((const char *const *)argv->pdata, &error);
    if (qa == NULL) {
        /* lines of libvirt's tests for old QEMU capabilities that QEMU 7.2 refuses too */
        g_ptr_array_add(qn_libvirt_plans, g_strdup_printf("%s %s: argv error: %s", c[0], c[1],
                                                          error->message));
        return;
    }
    plan = qn_plan_compute(topo, NULL, qa, cfg, &error);
    if (plan == NULL) {
        g_ptr_array_add(qn_libvirt_plans, g_strdup_printf("%s %s: error: %s", c[0], c[1],
                                                          error->message));
        return;
    }
    summary = qn_plan_summary(plan);
    g_ptr_array_add(qn_libvirt_plans, g_strdup_printf("%s %s: %s", c[0], c[1], summary));
    for (guint i = 0; i < plan->guest_nodes->len; i++) {
        const QnGuestNode *g = g_ptr_array_index(plan->guest_nodes, i);

        g_ptr_array_add(paths, g->page_size ? g_strdup_printf("/proc/self/fd/%u", 100 + i)
                                            : NULL);
    }
    qn_add_dimm_paths(plan, paths);
    g_ptr_array_add(paths, NULL);
    in.mem_paths = (const char *const *)paths->pdata;
    in.monitor_fds = qn_rewrite_wants_monitors(plan) ? monitor_fds : NULL;
    in.start_paused = qn_rewrite_wants_start_paused(plan, qa);
    out = qn_rewrite_qemu_argv(qa, plan, &in);
    again = qn_qemu_argv_parse((const char *const *)out, &error);
    g_assert_no_error(error);
    g_assert_true(plan->distance == NULL || qa->numa_nodes->len == 0);
    qn_assert_kept_in_order(what, qa, again);
    qn_assert_layout_kept(what, qa, again, plan);
}

static void
test_libvirt_plans(void)
{
    g_autofree gchar *path = g_build_filename(srcdir, "tests", "data", "libvirt-args",
                                              "plans.txt", NULL);
    g_autofree gchar *want = NULL;
    GString *got = g_string_new(NULL);
    g_autofree gchar *got_s = NULL;

    for (guint i = 0; i < qn_libvirt_plans->len; i++) {
        g_string_append_printf(got, "%s\n", (const char *)g_ptr_array_index(qn_libvirt_plans, i));
    }
    got_s = g_string_free(got, FALSE);
    if (g_getenv("QN_TEST_REGENERATE") != NULL) {
        g_assert_true(g_file_set_contents(path, got_s, -1, NULL));
        return;
    }
    if (!g_file_get_contents(path, &want, NULL, NULL) || strcmp(want, got_s) != 0) {
        g_test_fail_printf("libvirt-args/plans.txt differs\n--- want\n%s--- got\n%s",
                           want ? want : "", got_s);
    }
}

static void
qn_add_libvirt_cases(void)
{
    static GPtrArray *keep; /* the cases' data, alive while the tests run */

    static const char *const topologies[] = { "2x2", "one-node" };
    g_autofree gchar *dir = g_build_filename(srcdir, "tests", "data", "libvirt-args", NULL);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);
    const char *n;

    g_assert_nonnull(d);
    while ((n = g_dir_read_name(d)) != NULL) {
        if (g_str_has_suffix(n, ".args")) {
            g_ptr_array_add(files, g_strdup(n));
        }
    }
    g_ptr_array_sort(files, qn_cmp_names);
    qn_libvirt_plans = g_ptr_array_new_with_free_func(g_free);
    keep = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < files->len; i++) {
        for (guint t = 0; t < G_N_ELEMENTS(topologies); t++) {
            const char **c = g_new0(const char *, 2);
            g_autofree gchar *tpath = NULL;

            c[0] = g_strdup(g_ptr_array_index(files, i));
            c[1] = topologies[t];
            g_ptr_array_add(keep, (gpointer)c[0]);
            g_ptr_array_add(keep, c);
            /* one flat suite: the cases run in this order, plans.txt last */
            tpath = g_strdup_printf("/libvirt-args/%s@%s", c[0], c[1]);
            g_test_add_data_func(tpath, c, test_libvirt_case);
        }
    }
    g_test_add_func("/libvirt-args/zz-plans", test_libvirt_plans);
}

int
main(int argc, char **argv)
{
    g_autofree gchar *dir = NULL;
    g_autoptr(GDir) d = NULL;
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    const char *n;

    g_test_init(&argc, &argv, NULL);
    srcdir = g_getenv("QN_TOP_SRCDIR") ? g_getenv("QN_TOP_SRCDIR") : ".";
    dir = g_build_filename(srcdir, "tests", "data", "argv", NULL);
    d = g_dir_open(dir, 0, NULL);
    g_assert_nonnull(d);
    while ((n = g_dir_read_name(d)) != NULL) {
        if (g_str_has_suffix(n, ".in")) {
            g_ptr_array_add(names, g_strndup(n, strlen(n) - 3));
        }
    }
    g_ptr_array_sort(names, qn_cmp_names);
    for (guint i = 0; i < names->len; i++) {
        const char *name = *(const char **)&g_ptr_array_index(names, i);
        g_autofree gchar *path = g_strdup_printf("/golden/%s", name);

        g_test_add_data_func(path, name, test_case);
    }
    qn_add_libvirt_cases();
    return g_test_run();
}
