#include "qn-config.h"

#include <string.h>

#include "qn-error.h"
#include "qn-size.h"

#define QN_CONFIG_GROUP "qemu-numa"

QnConfig *
qn_config_new_default(void)
{
    QnConfig *c = g_new0(QnConfig, 1);

    c->qemu = g_strdup("");
    c->policy = QN_POLICY_BEST_EFFORT;
    c->memory_mode = QN_MEMORY_MODE_BIND;
    c->guest_nodes_mode = QN_GUEST_NODES_AUTO;
    c->hugepage_size = QN_HUGEPAGE_SIZE_AUTO;
    c->reserve_threads = QN_RESERVE_THREADS_DEFAULT;
    c->pool = g_array_new(FALSE, TRUE, sizeof(QnPoolSpec));
    c->hugetlbfs = g_strdup("");
    c->state_dir = g_strdup("/run/qemu-numa");
    c->sysfs_root = g_strdup("/sys");
    c->proc_root = g_strdup("/proc");
    c->packing = QN_PACKING_BEST_FIT;
    c->device_locality_first = TRUE;
    c->log_level = G_LOG_LEVEL_WARNING;
    c->test_device_nodes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    return c;
}

void
qn_config_free(QnConfig *cfg)
{
    if (cfg == NULL) {
        return;
    }
    g_free(cfg->qemu);
    g_free(cfg->hugetlbfs);
    g_free(cfg->state_dir);
    g_free(cfg->sysfs_root);
    g_free(cfg->proc_root);
    if (cfg->pool != NULL) {
        g_array_unref(cfg->pool);
    }
    g_hash_table_unref(cfg->test_device_nodes);
    g_free(cfg);
}

const char *
qn_policy_to_string(QnPolicy policy)
{
    static const char *const names[] = { "none", "best-effort", "restricted",
                                         "single-numa-node" };

    return names[policy];
}

const char *
qn_memory_mode_to_string(QnMemoryMode mode)
{
    static const char *const names[] = { "bind", "preferred", "interleave" };

    return names[mode];
}

gboolean
qn_memory_mode_from_qemu(const char *policy, QnMemoryMode *ret_mode)
{
    for (guint i = 0; i <= QN_MEMORY_MODE_INTERLEAVE; i++) {
        if (g_strcmp0(policy, qn_memory_mode_to_string(i)) == 0) {
            *ret_mode = i;
            return TRUE;
        }
    }
    return FALSE;
}

const char *
qn_cpu_thread_policy_to_string(QnCpuThreadPolicy policy)
{
    static const char *const names[] = { "prefer", "isolate", "require" };

    return names[policy];
}

typedef gboolean (*QnSettingSetter)(QnConfig *cfg, const char *value);

static gboolean
set_string(gchar **field, const char *value, gboolean allow_empty, gboolean absolute)
{
    if (!allow_empty && value[0] == '\0') {
        return FALSE;
    }
    if (absolute && value[0] != '\0' && !g_path_is_absolute(value)) {
        return FALSE;
    }
    g_free(*field);
    *field = g_strdup(value);
    return TRUE;
}

static gboolean
set_qemu(QnConfig *c, const char *v)
{
    return set_string(&c->qemu, v, TRUE, FALSE);
}

static gboolean
set_policy(QnConfig *c, const char *v)
{
    for (guint i = 0; i <= QN_POLICY_SINGLE_NUMA_NODE; i++) {
        if (strcmp(v, qn_policy_to_string(i)) == 0) {
            c->policy = i;
            return TRUE;
        }
    }
    return FALSE;
}

static gboolean
set_memory_mode(QnConfig *c, const char *v)
{
    return qn_memory_mode_from_qemu(v, &c->memory_mode);
}

static gboolean
set_guest_nodes(QnConfig *c, const char *v)
{
    guint64 n;

    if (strcmp(v, "auto") == 0) {
        c->guest_nodes_mode = QN_GUEST_NODES_AUTO;
    } else if (strcmp(v, "passthrough") == 0) {
        c->guest_nodes_mode = QN_GUEST_NODES_PASSTHROUGH;
    } else if (g_ascii_string_to_unsigned(v, 10, 1, 64, &n, NULL)) {
        c->guest_nodes_mode = QN_GUEST_NODES_FIXED;
        c->guest_nodes = (guint)n;
    } else {
        return FALSE;
    }
    return TRUE;
}

static gboolean
set_hugepage_size(QnConfig *c, const char *v)
{
    guint64 bytes;

    if (strcmp(v, "auto") == 0) {
        c->hugepage_size = QN_HUGEPAGE_SIZE_AUTO;
    } else if (strcmp(v, "none") == 0) {
        c->hugepage_size = QN_HUGEPAGE_SIZE_NONE;
    } else if (qn_size_parse(v, 1, &bytes, NULL) && bytes >= 4096 && (bytes & (bytes - 1)) == 0) {
        c->hugepage_size = bytes;
    } else {
        return FALSE;
    }
    return TRUE;
}

GArray *
qn_pool_spec_parse(const char *text, GError **error)
{
    g_autoptr(GArray) out = g_array_new(FALSE, TRUE, sizeof(QnPoolSpec));
    g_auto(GStrv) items = NULL;

    g_return_val_if_fail(text != NULL, NULL);
    if (*text == '\0') {
        return g_steal_pointer(&out);
    }
    items = g_strsplit(text, ",", -1);
    for (guint i = 0; items[i] != NULL; i++) {
        const char *colon = strchr(items[i], ':');
        const char *at = strchr(items[i], '@');
        g_autofree gchar *node_s = colon ? g_strndup(items[i], (gsize)(colon - items[i])) : NULL;
        g_autofree gchar *size_s = colon ? g_strndup(colon + 1, at ? (gsize)(at - colon - 1)
                                                                   : strlen(colon + 1))
                                         : NULL;
        QnPoolSpec spec = { 0 };
        guint64 v;

        if (node_s == NULL || !g_ascii_string_to_unsigned(node_s, 10, 0, 4095, &v, NULL) ||
            (at != NULL && at < colon)) {
            goto bad;
        }
        spec.node = (guint)v;
        if (!qn_size_parse(size_s, QN_MiB, &spec.bytes, NULL) || spec.bytes == 0) {
            goto bad;
        }
        if (at != NULL && (!qn_size_parse(at + 1, 1, &spec.page_size, NULL) ||
                           spec.page_size < 4096 || (spec.page_size & (spec.page_size - 1)))) {
            goto bad;
        }
        if (spec.page_size != 0 && spec.bytes % spec.page_size != 0) {
            goto bad;
        }
        for (guint k = 0; k < out->len; k++) {
            const QnPoolSpec *o = &g_array_index(out, QnPoolSpec, k);

            if (o->node == spec.node && o->page_size == spec.page_size) {
                goto bad;
            }
        }
        g_array_append_val(out, spec);
        continue;
bad:
        g_set_error(error, QN_ERROR, QN_ERROR_BAD_CONFIG, "pool entry '%s': expected "
                    "NODE:SIZE[@PAGESIZE], SIZE a multiple of PAGESIZE, one per node and page "
                    "size", items[i]);
        return NULL;
    }
    return g_steal_pointer(&out);
}

static gboolean
set_pool(QnConfig *c, const char *v)
{
    GArray *p = qn_pool_spec_parse(v, NULL);

    if (p == NULL) {
        return FALSE;
    }
    g_array_unref(c->pool);
    c->pool = p;
    return TRUE;
}

static gboolean
set_reserve_threads(QnConfig *c, const char *v)
{
    guint64 n;

    if (!g_ascii_string_to_unsigned(v, 10, 1, 1024, &n, NULL)) {
        return FALSE;
    }
    c->reserve_threads = (guint)n;
    return TRUE;
}

static gboolean
set_hugetlbfs(QnConfig *c, const char *v)
{
    return set_string(&c->hugetlbfs, v, TRUE, TRUE);
}

static gboolean
set_state_dir(QnConfig *c, const char *v)
{
    return set_string(&c->state_dir, v, FALSE, TRUE);
}

static gboolean
set_sysfs_root(QnConfig *c, const char *v)
{
    return set_string(&c->sysfs_root, v, FALSE, TRUE);
}

static gboolean
set_proc_root(QnConfig *c, const char *v)
{
    return set_string(&c->proc_root, v, FALSE, TRUE);
}

static gboolean
set_cpuless(QnConfig *c, const char *v)
{
    if (strcmp(v, "avoid") == 0) {
        c->allow_cpuless_nodes = FALSE;
    } else if (strcmp(v, "allow") == 0) {
        c->allow_cpuless_nodes = TRUE;
    } else {
        return FALSE;
    }
    return TRUE;
}

static gboolean
set_packing(QnConfig *c, const char *v)
{
    if (strcmp(v, "best-fit") == 0) {
        c->packing = QN_PACKING_BEST_FIT;
    } else if (strcmp(v, "worst-fit") == 0) {
        c->packing = QN_PACKING_WORST_FIT;
    } else {
        return FALSE;
    }
    return TRUE;
}

static gboolean
set_onoff(gboolean *field, const char *v)
{
    if (strcmp(v, "on") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "true") == 0) {
        *field = TRUE;
    } else if (strcmp(v, "off") == 0 || strcmp(v, "no") == 0 || strcmp(v, "false") == 0) {
        *field = FALSE;
    } else {
        return FALSE;
    }
    return TRUE;
}

static gboolean
set_dedicated(QnConfig *c, const char *v)
{
    return set_onoff(&c->dedicated_cpus, v);
}

static gboolean
set_mirror_distances(QnConfig *c, const char *v)
{
    return set_onoff(&c->mirror_distances, v);
}

static gboolean
set_hotplug_headroom(QnConfig *c, const char *v)
{
    return set_onoff(&c->hotplug_headroom, v);
}

static gboolean
set_device_locality(QnConfig *c, const char *v)
{
    if (strcmp(v, "first") == 0) {
        c->device_locality_first = TRUE;
    } else if (strcmp(v, "after-page-size") == 0) {
        c->device_locality_first = FALSE;
    } else {
        return FALSE;
    }
    return TRUE;
}

static gboolean
set_emulator(QnConfig *c, const char *v)
{
    if (strcmp(v, "isolate") == 0) {
        c->isolate_emulator = TRUE;
    } else if (strcmp(v, "shared") == 0) {
        c->isolate_emulator = FALSE;
    } else {
        return FALSE;
    }
    return TRUE;
}

static gboolean
set_thread_policy(QnConfig *c, const char *v)
{
    for (guint i = 0; i <= QN_CPU_THREADS_REQUIRE; i++) {
        if (strcmp(v, qn_cpu_thread_policy_to_string(i)) == 0) {
            c->cpu_thread_policy = i;
            return TRUE;
        }
    }
    return FALSE;
}

static gboolean
set_log_level(QnConfig *c, const char *v)
{
    static const struct {
        const char *name;
        GLogLevelFlags level;
    } levels[] = {
        { "error", G_LOG_LEVEL_CRITICAL }, { "warning", G_LOG_LEVEL_WARNING },
        { "info", G_LOG_LEVEL_INFO },      { "debug", G_LOG_LEVEL_DEBUG },
    };

    for (guint i = 0; i < G_N_ELEMENTS(levels); i++) {
        if (strcmp(v, levels[i].name) == 0) {
            c->log_level = levels[i].level;
            return TRUE;
        }
    }
    return FALSE;
}

static const struct {
    const char *key;
    const char *env;
    QnSettingSetter set;
    const char *expected;
} qn_settings[] = {
    { "qemu", "QEMU_NUMA_QEMU", set_qemu, "a QEMU binary path or name" },
    { "policy", "QEMU_NUMA_POLICY", set_policy,
      "none, best-effort, restricted or single-numa-node" },
    { "memory-mode", "QEMU_NUMA_MEMORY_MODE", set_memory_mode, "bind, preferred or interleave" },
    { "guest-nodes", "QEMU_NUMA_GUEST_NODES", set_guest_nodes,
      "auto, passthrough or a count from 1 to 64" },
    { "hugepage-size", "QEMU_NUMA_HUGEPAGE_SIZE", set_hugepage_size,
      "auto, none or a power-of-two size such as 2M or 1G" },
    { "hugetlbfs", "QEMU_NUMA_HUGETLBFS", set_hugetlbfs, "an absolute mount point path" },
    { "reserve-threads", "QEMU_NUMA_RESERVE_THREADS", set_reserve_threads,
      "a thread count from 1 to 1024" },
    { "pool", "QEMU_NUMA_POOL", set_pool,
      "NODE:SIZE[@PAGESIZE],... such as 0:64G,1:64G@1G (SIZE a multiple of PAGESIZE)" },
    { "state-dir", "QEMU_NUMA_STATE_DIR", set_state_dir, "an absolute directory path" },
    { "sysfs-root", "QEMU_NUMA_SYSFS_ROOT", set_sysfs_root, "an absolute directory path" },
    { "proc-root", "QEMU_NUMA_PROC_ROOT", set_proc_root, "an absolute directory path" },
    { "cpuless-nodes", "QEMU_NUMA_CPULESS_NODES", set_cpuless, "avoid or allow" },
    { "packing", "QEMU_NUMA_PACKING", set_packing, "best-fit or worst-fit" },
    { "dedicated-cpus", "QEMU_NUMA_DEDICATED_CPUS", set_dedicated, "on or off" },
    { "cpu-thread-policy", "QEMU_NUMA_CPU_THREAD_POLICY", set_thread_policy,
      "prefer, isolate or require" },
    { "emulator-threads", "QEMU_NUMA_EMULATOR_THREADS", set_emulator, "shared or isolate" },
    { "mirror-distances", "QEMU_NUMA_MIRROR_DISTANCES", set_mirror_distances, "on or off" },
    { "hotplug-headroom", "QEMU_NUMA_HOTPLUG_HEADROOM", set_hotplug_headroom, "on or off" },
    { "device-locality", "QEMU_NUMA_DEVICE_LOCALITY", set_device_locality,
      "first or after-page-size" },
    { "log-level", "QEMU_NUMA_LOG_LEVEL", set_log_level, "error, warning, info or debug" },
};

static gboolean
qn_config_apply(QnConfig *cfg, guint i, const char *value, const char *where, GError **error)
{
    if (!qn_settings[i].set(cfg, value)) {
        g_set_error(error, QN_ERROR, QN_ERROR_BAD_CONFIG, "%s '%s': invalid value, expected %s",
                    where, value, qn_settings[i].expected);
        return FALSE;
    }
    return TRUE;
}

/* QEMU_NUMA_TEST_DEVICE_NODE=ID:NODE[,ID:NODE...]: test only, see QnConfig. */
static gboolean
qn_config_test_device_nodes(QnConfig *cfg, const char *value, GError **error)
{
    g_auto(GStrv) items = g_strsplit(value, ",", -1);

    for (guint i = 0; items[i] != NULL; i++) {
        const char *colon = strrchr(items[i], ':');
        guint64 node;

        if (colon == NULL || colon == items[i] ||
            !g_ascii_string_to_unsigned(colon + 1, 10, 0, 1023, &node, NULL)) {
            g_set_error(error, QN_ERROR, QN_ERROR_BAD_CONFIG, "QEMU_NUMA_TEST_DEVICE_NODE '%s': "
                        "invalid value, expected ID:NODE[,ID:NODE...]", value);
            return FALSE;
        }
        g_hash_table_insert(cfg->test_device_nodes, g_strndup(items[i], colon - items[i]),
                            GUINT_TO_POINTER((guint)node + 1));
    }
    return TRUE;
}

QnConfig *
qn_config_load(const char *keyfile_data, const char *keyfile_name, const char *const *envp,
               GError **error)
{
    g_autoptr(QnConfig) cfg = qn_config_new_default();

    if (keyfile_data != NULL) {
        g_autoptr(GKeyFile) kf = g_key_file_new();
        g_autoptr(GError) local = NULL;
        g_auto(GStrv) groups = NULL;
        g_auto(GStrv) keys = NULL;

        if (!g_key_file_load_from_data(kf, keyfile_data, (gsize)-1, G_KEY_FILE_NONE, &local)) {
            g_set_error(error, QN_ERROR, QN_ERROR_BAD_CONFIG, "%s: %s", keyfile_name,
                        local->message);
            return NULL;
        }
        groups = g_key_file_get_groups(kf, NULL);
        for (guint g = 0; groups[g] != NULL; g++) {
            if (strcmp(groups[g], QN_CONFIG_GROUP) != 0) {
                g_set_error(error, QN_ERROR, QN_ERROR_BAD_CONFIG, "%s: unknown group '[%s]'",
                            keyfile_name, groups[g]);
                return NULL;
            }
        }
        keys = g_key_file_get_keys(kf, QN_CONFIG_GROUP, NULL, NULL);
        for (guint k = 0; keys != NULL && keys[k] != NULL; k++) {
            g_autofree gchar *value = g_key_file_get_string(kf, QN_CONFIG_GROUP, keys[k], NULL);
            g_autofree gchar *where = g_strdup_printf("%s: %s", keyfile_name, keys[k]);
            guint i;

            for (i = 0; i < G_N_ELEMENTS(qn_settings); i++) {
                if (strcmp(keys[k], qn_settings[i].key) == 0) {
                    break;
                }
            }
            if (i == G_N_ELEMENTS(qn_settings)) {
                g_set_error(error, QN_ERROR, QN_ERROR_BAD_CONFIG, "%s: unknown setting '%s'",
                            keyfile_name, keys[k]);
                return NULL;
            }
            if (!qn_config_apply(cfg, i, value ? value : "", where, error)) {
                return NULL;
            }
        }
    }
    for (guint e = 0; envp != NULL && envp[e] != NULL; e++) {
        const char *eq = strchr(envp[e], '=');
        g_autofree gchar *name = NULL;
        guint i;

        if (!g_str_has_prefix(envp[e], "QEMU_NUMA_") || eq == NULL) {
            continue;
        }
        name = g_strndup(envp[e], (gsize)(eq - envp[e]));
        if (strcmp(name, "QEMU_NUMA_TEST_DEVICE_NODE") == 0) {
            if (!qn_config_test_device_nodes(cfg, eq + 1, error)) {
                return NULL;
            }
            continue;
        }
        if (strcmp(name, "QEMU_NUMA_CONFIG") == 0 || g_str_has_prefix(name, "QEMU_NUMA_TEST_")) {
            continue;
        }
        for (i = 0; i < G_N_ELEMENTS(qn_settings); i++) {
            if (strcmp(name, qn_settings[i].env) == 0) {
                break;
            }
        }
        if (i == G_N_ELEMENTS(qn_settings)) {
            g_set_error(error, QN_ERROR, QN_ERROR_BAD_CONFIG, "unknown variable '%s'", name);
            return NULL;
        }
        if (!qn_config_apply(cfg, i, eq + 1, name, error)) {
            return NULL;
        }
    }
    return g_steal_pointer(&cfg);
}
