/* Golden argv cases (libvirt's qemuxml2argv style): tests/data/argv/<case>.in gives a host
 * (fake sysfs tree), settings, ledger reservations and the user's QEMU argv; <case>.args holds
 * the expected argv (one element a line), or <case>.err the expected error message. The argv is
 * the whole one the launch execs (qn_rewrite_qemu_argv()): memory options, our QMP monitors
 * whenever the plan is not passthrough, and -S by qn_rewrite_wants_start_paused(). Fds are
 * placeholders: mem-paths /proc/self/fd/100 + guest node, monitors fd=<qn-monitor>.
 * QN_TEST_REGENERATE=1 rewrites the expected files: review every diff.
 *
 * .in lines:  topology NAME | env NAME=VALUE | cpuset CPUS MEMS | reserve NODE PAGESIZE BYTES
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
    g_autofree gchar *sysfs = NULL, *proc = NULL;
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
    proc = g_build_filename(srcdir, "tests", "data", "proc", "fake", NULL);
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
        g_ptr_array_add(paths, NULL);
        /* The whole argv the launch execs: our monitors (fd placeholders, as `qemu-numa-ctl
         * plan` shows them) by the same rule as the launch, a function of the plan. */
        in.mem_paths = (const char *const *)paths->pdata;
        in.monitor_fds = qn_rewrite_wants_monitors(plan) ? monitor_fds : NULL;
        in.start_paused = qn_rewrite_wants_start_paused(plan, qa);
        out = qn_rewrite_qemu_argv(qa, plan, &in);
        *ret_is_error = FALSE;
        g_string_append_printf(res, "# plan: %s\n", summary);
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
    return g_test_run();
}
