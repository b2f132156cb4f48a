#include "config.h"

#include "qn-ctl-ops.h"

#include <stdio.h>
#include <string.h>

#include "qn-error.h"

#include "qn-ledger.h"
#include "qn-metrics.h"
#include "qn-nrt.h"
#include "qn-pool.h"
#include "qn-program.h"
#include "qn-sysfs.h"

/* every readable entry, after the sweep `list` does; @ret_bad: files skipped */
static GPtrArray *
qn_ctl_entries(const QnConfig *cfg, guint *ret_bad, GHashTable *exits, GPtrArray *launches,
               GError **error)
{
    g_autoptr(QnLedger) ledger = NULL;
    g_autoptr(GPtrArray) bad = NULL;
    GPtrArray *entries;

    *ret_bad = 0;
    if (!g_file_test(cfg->state_dir, G_FILE_TEST_IS_DIR)) {
        return g_ptr_array_new_with_free_func((GDestroyNotify)qn_ledger_entry_free);
    }
    ledger = qn_ledger_open_read(cfg->state_dir, error);
    if (ledger == NULL) {
        return NULL;
    }
    qn_ledger_sweep(ledger, cfg->proc_root);
    entries = qn_ledger_list(ledger, &bad);
    *ret_bad = bad->len;
    if (exits != NULL) {
        g_autoptr(GDir) d = g_dir_open(cfg->state_dir, 0, NULL);
        const char *user;

        while (d != NULL && (user = g_dir_read_name(d)) != NULL) {
            g_autofree gchar *dir = g_build_filename(cfg->state_dir, user, NULL);
            g_autofree gchar *path = qn_ledger_exits_path(dir);
            g_autofree gchar *old = g_strconcat(path, ".1", NULL);

            if (user[0] == '.' || !g_file_test(dir, G_FILE_TEST_IS_DIR)) {
                continue;
            }
            g_hash_table_insert(exits, g_strdup(user),
                                GUINT_TO_POINTER(qn_metrics_count_lines(path) +
                                                 qn_metrics_count_lines(old)));
            if (launches != NULL) {
                g_autoptr(GPtrArray) mine = qn_ledger_read_launches(dir);

                g_ptr_array_extend_and_steal(launches, g_steal_pointer(&mine));
            }
        }
    }
    return entries;
}

int
qn_ctl_metrics(const QnConfig *cfg, const char *textfile_dir, GError **error)
{
    g_autoptr(QnTopology) t = qn_topology_load(cfg->sysfs_root, cfg->proc_root, error);
    g_autoptr(GHashTable) exits = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_autoptr(GPtrArray) entries = NULL;
    g_autoptr(GArray) monitors = NULL;
    g_autoptr(GPtrArray) launches =
        g_ptr_array_new_with_free_func((GDestroyNotify)qn_launch_record_free);
    g_autofree gchar *text = NULL;
    QnMetricsExtra x = { 0 };

    if (t == NULL) {
        return 1;
    }
    qn_pool_count_ready(t, cfg->state_dir);
    entries = qn_ctl_entries(cfg, &x.unreadable, exits, launches, error);
    if (entries == NULL) {
        return 1;
    }
    monitors = qn_metrics_find_monitors(cfg->proc_root, cfg->state_dir);
    x.monitors = monitors;
    x.exits = exits;
    x.launches = launches;
    text = qn_metrics_format(t, entries, &x);
    if (textfile_dir != NULL) {
        return qn_metrics_write_textfile(textfile_dir, text, error) ? 0 : 1;
    }
    fputs(text, stdout);
    return 0;
}

/* an RFC 1123 subdomain (a Kubernetes node name: metadata.name of a Node) */
static gboolean
qn_k8s_name_valid(const char *s)
{
    gsize len = strlen(s);

    if (len == 0 || len > 253) {
        return FALSE;
    }
    for (gsize i = 0; i < len; i++) {
        gboolean alnum = g_ascii_islower(s[i]) || g_ascii_isdigit(s[i]);
        gboolean edge = i == 0 || i + 1 == len || s[i - 1] == '.' || s[i + 1] == '.';

        if (!alnum && (edge || (s[i] != '-' && s[i] != '.'))) {
            return FALSE;
        }
    }
    return TRUE;
}

int
qn_ctl_nrt(const QnConfig *cfg, const char *node_name, gboolean yaml, GError **error)
{
    g_autoptr(QnTopology) t = qn_topology_load(cfg->sysfs_root, cfg->proc_root, error);
    g_autoptr(QnReservations) resv = NULL;
    g_autoptr(GPtrArray) entries = NULL;
    g_autoptr(JsonNode) root = NULL;
    g_autofree gchar *host = NULL;
    guint bad = 0;

    if (node_name != NULL && !qn_k8s_name_valid(node_name)) {
        g_set_error(error, QN_ERROR, QN_ERROR_BAD_CONFIG,
                    "--node-name '%s': not a Kubernetes node name (RFC 1123 subdomain)",
                    node_name);
        return 1;
    }
    if (t == NULL) {
        return 1;
    }
    qn_pool_count_ready(t, cfg->state_dir);
    entries = qn_ctl_entries(cfg, &bad, NULL, NULL, error);
    if (entries == NULL) {
        return 1;
    }
    if (g_file_test(cfg->state_dir, G_FILE_TEST_IS_DIR)) {
        g_autoptr(QnLedger) ledger = qn_ledger_open_read(cfg->state_dir, error);

        if (ledger == NULL) {
            return 1;
        }
        resv = qn_ledger_reservations(ledger, cfg->proc_root);
    }
    if (node_name == NULL) {
        /* kubelet's default node name: the host name, lower-cased (--hostname-override) */
        host = g_ascii_strdown(g_get_host_name(), -1);
    }
    root = qn_nrt_build(t, resv, entries, node_name ? node_name : host, cfg->policy);
    if (yaml) {
        g_autofree gchar *y = qn_nrt_to_yaml(root);

        fputs(y, stdout);
    } else {
        qn_program_print_json(root);
    }
    return 0;
}
