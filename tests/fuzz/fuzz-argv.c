/* Fuzz target "argv": the QEMU argv model (src/core/qn-argv.c), the planner
 * (src/core/qn-plan.c) and the argv rewriter (src/core/qn-rewrite.c), end to end as the
 * launcher and `qemu-numa-ctl plan` run them, on the fake hosts of tests/data/sysfs/.
 *
 * Input: NUL-separated words (a trailing NUL ends the last word). Leading words
 * "@<tree>" pick the fake host (tests/data/sysfs/<tree>; default 2x2) and leading words
 * "QEMU_NUMA_<NAME>=<value>" are settings (as in the environment); the other words are the
 * user's argv after argv[0]. tests/fuzz/make-corpus writes the golden cases this way.
 *
 * Invariants:
 * 1. The model writes back the argv it parsed, byte for byte (qn_qemu_argv_to_strv()).
 * 2. The rewritten argv parses (QEMU would get what we understand).
 * 3. Re-planning the rewritten argv against the same host and settings gives the same guest:
 *    the rewriter's output states the plan completely, in QEMU's terms. The planner reads our
 *    backends back as the user's own topology (USER or MACHINE_BACKEND instead of AUTO, each
 *    node's host-nodes given, as libvirt's <numatune> would), so a sound plan must keep, per
 *    guest node in order: id, vCPUs, bytes, page size, host nodes, memory mode and memdev; and
 *    the host nodes used give the same mean distance. Nothing was reserved between the two
 *    plans, so the free-page counters the first plan fitted in still hold; the mem-paths we
 *    pass lie inside a hugetlbfs mount of the node's page size, which is how the planner learns
 *    a backend's page size (a guest node whose page size has no mount, e.g. a memfd
 *    hugetlbsize the host does not mount, leaves nothing to compare and is skipped). pCPUs of
 *    dedicated vCPUs are not in the argv (the monitor pins them), so they are not compared.
 * 4. When the plan emits -numa dist, the rewritten argv carries exactly that matrix.
 * 5. A plan that leaves the argv alone (passthrough, fallback) returns it unchanged.
 * 6. A JSON value that qn_json_check_bounds() lets through json-glib parses no deeper than
 *    QN_JSON_MAX_DEPTH (qn_fuzz_check_json_bounds()). */
#include "config.h"

#include <string.h>

#include <glib.h>

#include "fuzz.h"
#include "qn-argv.h"
#include "qn-config.h"
#include "qn-plan-json.h"
#include "qn-plan.h"
#include "qn-rewrite.h"
#include "qn-sysfs.h"

#ifndef QN_FUZZ_SRCDIR
#define QN_FUZZ_SRCDIR "."
#endif

const char qn_fuzz_target[] = "argv";

/* tree name -> QnTopology*, loaded on first use and kept for the process's life. */
static GHashTable *topologies;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    qn_fuzz_init_logging();
    topologies = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                       (GDestroyNotify)qn_topology_free);
    return 0;
}

/* The fake host @name, or the 2x2 one when @name is not a tree of tests/data/sysfs. */
static const QnTopology *
qn_fuzz_topology(const char *name)
{
    const char *top = g_getenv("QN_TOP_SRCDIR") ? g_getenv("QN_TOP_SRCDIR") : QN_FUZZ_SRCDIR;
    QnTopology *topo;
    g_autofree gchar *sysfs = NULL;
    g_autofree gchar *proc = NULL;
    g_autoptr(GError) error = NULL;

    if (name == NULL || strchr(name, '/') != NULL || name[0] == '.' || name[0] == '\0') {
        name = "2x2";
    }
    topo = g_hash_table_lookup(topologies, name);
    if (topo != NULL) {
        return topo;
    }
    sysfs = g_build_filename(top, "tests", "data", "sysfs", name, NULL);
    if (!g_file_test(sysfs, G_FILE_TEST_IS_DIR)) {
        return qn_fuzz_topology("2x2");
    }
    proc = g_build_filename(top, "tests", "data", "proc", "fake", NULL);
    topo = qn_topology_load(sysfs, proc, &error);
    if (topo == NULL) {
        qn_fuzz_fail("fake host %s: %s (set QN_TOP_SRCDIR to the source tree)", sysfs,
                error->message);
    }
    g_hash_table_insert(topologies, g_strdup(name), topo);
    return topo;
}

static gchar *
qn_plan_text(const QnPlan *plan)
{
    g_autoptr(JsonNode) json = qn_plan_to_json(plan);
    g_autoptr(JsonGenerator) gen = json_generator_new();

    json_generator_set_root(gen, json);
    return json_generator_to_data(gen, NULL);
}

static gchar *
qn_argv_text(const char *const *argv)
{
    g_autoptr(GString) s = g_string_new(NULL);

    for (guint i = 0; argv[i] != NULL; i++) {
        g_autofree gchar *q = g_shell_quote(argv[i]);

        g_string_append_printf(s, "%s%s", i ? " " : "", q);
    }
    return g_strdup(s->str);
}

static void G_GNUC_NORETURN
qn_fail(const char *what, const char *const *in, const char *const *out, const QnPlan *a,
        const QnPlan *b)
{
    g_autofree gchar *in_text = qn_argv_text(in);
    g_autofree gchar *out_text = out ? qn_argv_text(out) : g_strdup("-");
    g_autofree gchar *a_text = a ? qn_plan_text(a) : g_strdup("-");
    g_autofree gchar *b_text = b ? qn_plan_text(b) : g_strdup("-");

    qn_fuzz_fail("%s\nin:    %s\nout:   %s\nplan:  %s\nagain: %s", what, in_text, out_text, a_text,
            b_text);
}

static gboolean
qn_same_guest_node(const QnGuestNode *x, const QnGuestNode *y)
{
    return x->id == y->id && qn_bitmap_equal(x->vcpus, y->vcpus) && x->bytes == y->bytes &&
           x->page_size == y->page_size && qn_bitmap_equal(x->host_nodes, y->host_nodes) &&
           x->mode == y->mode && g_strcmp0(x->memdev, y->memdev) == 0;
}

/* Invariant 4: the -numa dist lines of @again are @plan's matrix, one line per ordered pair. */
static gboolean
qn_same_distances(const QnPlan *plan, const QnQemuArgv *again)
{
    guint n = plan->guest_nodes->len;

    if (again->numa_dists->len != n * n) {
        return FALSE;
    }
    for (guint k = 0; k < again->numa_dists->len; k++) {
        const QnNumaDist *d = g_ptr_array_index(again->numa_dists, k);
        gboolean found = FALSE;

        for (guint i = 0; i < n && !found; i++) {
            for (guint j = 0; j < n && !found; j++) {
                const QnGuestNode *gi = g_ptr_array_index(plan->guest_nodes, i);
                const QnGuestNode *gj = g_ptr_array_index(plan->guest_nodes, j);

                found = gi->id == d->src && gj->id == d->dst &&
                        plan->distance[i * n + j] == d->val;
            }
        }
        if (!found) {
            return FALSE;
        }
    }
    return TRUE;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(GPtrArray) words = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autoptr(GPtrArray) env = g_ptr_array_new();
    g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func(g_free);
    const char *tree = NULL;
    const QnTopology *topo;
    g_autoptr(QnConfig) cfg = NULL;
    g_autoptr(QnQemuArgv) qa = NULL;
    g_autoptr(QnPlan) plan = NULL;
    g_autoptr(QnQemuArgv) again = NULL;
    g_autoptr(QnPlan) plan2 = NULL;
    g_auto(GStrv) back = NULL;
    g_auto(GStrv) out = NULL;
    g_autoptr(GError) error = NULL;
    gsize start = 0;
    guint i = 0;
    gboolean comparable = TRUE;

    for (gsize k = 0; k <= size; k++) {
        if (k == size || data[k] == '\0') {
            if (k < size || k > start) {
                g_ptr_array_add(words, g_strndup((const char *)data + start, k - start));
            }
            start = k + 1;
        }
    }
    for (; i < words->len; i++) {
        const char *w = g_ptr_array_index(words, i);

        if (w[0] == '@') {
            tree = w + 1;
        } else if (g_str_has_prefix(w, "QEMU_NUMA_") && strchr(w, '=') != NULL) {
            g_ptr_array_add(env, (gpointer)w);
        } else {
            break;
        }
    }
    g_ptr_array_add(env, NULL);
    g_ptr_array_add(argv, (gpointer) "qemu-system-x86_64");
    for (; i < words->len; i++) {
        const char *w = g_ptr_array_index(words, i);

        /* a JSON -object/-device value: what the bounds check lets through stays shallow */
        if (w[0] == '{') {
            qn_fuzz_check_json_bounds(w, strlen(w));
        }
        g_ptr_array_add(argv, (gpointer)w);
    }
    g_ptr_array_add(argv, NULL);

    topo = qn_fuzz_topology(tree);
    cfg = qn_config_load(NULL, "fuzz", (const char *const *)env->pdata, &error);
    if (cfg == NULL) {
        return 0;
    }
    qa = qn_qemu_argv_parse((const char *const *)argv->pdata, &error);
    if (qa == NULL) {
        g_assert(error != NULL);
        return 0;
    }
    back = qn_qemu_argv_to_strv(qa);
    if (!g_strv_equal((const char *const *)argv->pdata, (const char *const *)back)) {
        qn_fail("the model does not write back its input", (const char *const *)argv->pdata,
                (const char *const *)back, NULL, NULL);
    }
    plan = qn_plan_compute(topo, NULL, qa, cfg, &error);
    if (plan == NULL) {
        g_assert(error != NULL);
        return 0;
    }
    for (guint k = 0; k < plan->guest_nodes->len; k++) {
        const QnGuestNode *g = g_ptr_array_index(plan->guest_nodes, k);
        const QnHugetlbfsMount *m = g->page_size ? qn_topology_mount_for(topo, g->page_size)
                                                 : NULL;

        if (g->page_size != 0 && m == NULL) {
            comparable = FALSE;
        }
        g_ptr_array_add(paths, m ? g_strdup_printf("%s/qn-fuzz-%u", m->path, k) : NULL);
    }
    g_ptr_array_add(paths, NULL);
    out = qn_rewrite_argv(qa, plan, (const char *const *)paths->pdata);
    if (plan->kind != QN_PLAN_ALIGNED) {
        if (!g_strv_equal((const char *const *)out, (const char *const *)back)) {
            qn_fail("a plan that is not aligned changed the argv",
                    (const char *const *)argv->pdata, (const char *const *)out, plan, NULL);
        }
        return 0;
    }
    again = qn_qemu_argv_parse((const char *const *)out, &error);
    if (again == NULL) {
        g_autofree gchar *why = g_strdup_printf("the rewritten argv does not parse: %s",
                                                error->message);

        qn_fail(why, (const char *const *)argv->pdata, (const char *const *)out, plan, NULL);
    }
    if (plan->distance != NULL && !qn_same_distances(plan, again)) {
        qn_fail("the rewritten -numa dist lines are not the plan's matrix",
                (const char *const *)argv->pdata, (const char *const *)out, plan, NULL);
    }
    if (!comparable) {
        return 0;
    }
    plan2 = qn_plan_compute(topo, NULL, again, cfg, &error);
    if (plan2 == NULL) {
        g_autofree gchar *why = g_strdup_printf("the rewritten argv does not plan: %s",
                                                error->message);

        qn_fail(why, (const char *const *)argv->pdata, (const char *const *)out, plan, NULL);
    }
    if (plan2->kind != QN_PLAN_ALIGNED || plan2->guest_nodes->len != plan->guest_nodes->len ||
        plan2->mean_distance != plan->mean_distance) {
        qn_fail("the rewritten argv plans to another guest", (const char *const *)argv->pdata,
                (const char *const *)out, plan, plan2);
    }
    for (guint k = 0; k < plan->guest_nodes->len; k++) {
        if (!qn_same_guest_node(g_ptr_array_index(plan->guest_nodes, k),
                                g_ptr_array_index(plan2->guest_nodes, k))) {
            qn_fail("the rewritten argv plans another guest node",
                    (const char *const *)argv->pdata, (const char *const *)out, plan, plan2);
        }
    }
    return 0;
}
