#include "config.h"

#include "qn-metrics.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "qn-error.h"
#include "qn-ledger.h"

#define QN_METRICS_CMDLINE_MAX ((gsize)64 * 1024)
#define QN_METRICS_EXITS_MAX ((gsize)1024 * 1024)

/* VmRSS of a /proc/PID/status text, in bytes; 0 when absent */
static guint64
qn_status_rss(const char *text)
{
    const char *p = strstr(text, "\nVmRSS:");

    if (p == NULL) {
        return 0;
    }
    return g_ascii_strtoull(p + strlen("\nVmRSS:"), NULL, 10) * 1024;
}

static gint
qn_monitor_cmp(gconstpointer a, gconstpointer b)
{
    const QnMonitorProc *x = a, *y = b;

    return (x->pid > y->pid) - (x->pid < y->pid);
}

/* The monitor's VM pid when @cmdline (NUL-separated, @len bytes) is a monitor of @state_dir */
static gint
qn_monitor_cmdline_vm(const char *cmdline, gsize len, const char *state_dir)
{
    const char *args[3] = { NULL, NULL, NULL };
    const char *p = cmdline;
    gint64 vm;
    char *end = NULL;

    for (guint i = 0; i < 3; i++) {
        const char *nul = memchr(p, '\0', len - (gsize)(p - cmdline));

        if (nul == NULL) {
            return 0;
        }
        args[i] = p;
        p = nul + 1;
        if (p >= cmdline + len) {
            break;
        }
    }
    if (args[2] == NULL || strcmp(args[0], "qemu-numa-monitor") != 0 ||
        strcmp(args[2], state_dir) != 0) {
        return 0;
    }
    vm = g_ascii_strtoll(args[1], &end, 10);
    return (end != args[1] && *end == '\0' && vm > 1 && vm <= G_MAXINT) ? (gint)vm : 0;
}

GArray *
qn_metrics_find_monitors(const char *proc_root, const char *state_dir)
{
    GArray *out = g_array_new(FALSE, TRUE, sizeof(QnMonitorProc));
    g_autoptr(GDir) d = NULL;
    const char *name;

    g_assert(proc_root != NULL && state_dir != NULL);
    d = g_dir_open(proc_root, 0, NULL);
    while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
        g_autofree gchar *cl_path = NULL, *st_path = NULL, *cl = NULL, *st = NULL;
        gsize len = 0, st_len = 0;
        QnMonitorProc m = { 0 };
        gint64 pid;
        char *end = NULL;

        pid = g_ascii_strtoll(name, &end, 10);
        if (end == name || *end != '\0' || pid < 2 || pid > G_MAXINT) {
            continue;
        }
        cl_path = g_build_filename(proc_root, name, "cmdline", NULL);
        if (!qn_file_read_untrusted(cl_path, (uid_t)-1, QN_METRICS_CMDLINE_MAX, &cl, &len,
                                    NULL) || len == 0) {
            continue;
        }
        m.vm_pid = qn_monitor_cmdline_vm(cl, len, state_dir);
        if (m.vm_pid == 0) {
            continue;
        }
        m.pid = (gint)pid;
        st_path = g_build_filename(proc_root, name, "status", NULL);
        if (qn_file_read_untrusted(st_path, (uid_t)-1, QN_METRICS_CMDLINE_MAX, &st, &st_len,
                                   NULL)) {
            m.rss_bytes = qn_status_rss(st);
        }
        g_array_append_val(out, m);
    }
    g_array_sort(out, qn_monitor_cmp);
    return out;
}

guint
qn_metrics_count_lines(const char *path)
{
    g_autofree gchar *data = NULL;
    g_autofree gchar *dir = g_path_get_dirname(path);
    struct stat dst;
    gsize len = 0;
    guint n = 0;

    /* only the directory owner's own file: a link into another user's file is not theirs */
    if (lstat(dir, &dst) != 0 || !S_ISDIR(dst.st_mode) ||
        !qn_file_read_untrusted(path, dst.st_uid, QN_METRICS_EXITS_MAX, &data, &len, NULL)) {
        return 0;
    }
    for (gsize i = 0; i < len; i++) {
        if (data[i] == '\n' && i > 0 && data[i - 1] != '\n') {
            n++;
        }
    }
    if (len > 0 && data[len - 1] != '\n') {
        n++;
    }
    return n;
}

/* A label value as the exposition format wants it: \\, \" and \n escaped. NULL is "". */
static void
qn_label(GString *out, const char *name, const char *value, gboolean first)
{
    g_string_append_printf(out, "%s%s=\"", first ? "" : ",", name);
    for (const char *p = value ? value : ""; *p != '\0'; p++) {
        if (*p == '\\') {
            g_string_append(out, "\\\\");
        } else if (*p == '"') {
            g_string_append(out, "\\\"");
        } else if (*p == '\n') {
            g_string_append(out, "\\n");
        } else {
            g_string_append_c(out, *p);
        }
    }
    g_string_append_c(out, '"');
}

static void
qn_family(GString *out, const char *name, const char *type, const char *help)
{
    g_string_append_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* the labels that name a VM: name, uuid, pid */
static void
qn_vm_labels(GString *out, const QnLedgerEntry *e)
{
    g_autofree gchar *pid = g_strdup_printf("%d", e->pid);

    qn_label(out, "name", e->name, TRUE);
    qn_label(out, "uuid", e->uuid, FALSE);
    qn_label(out, "pid", pid, FALSE);
}

static void
qn_node_size_labels(GString *out, guint node, guint64 page_size)
{
    g_string_append_printf(out, "{node=\"%u\",page_size_bytes=\"%" G_GUINT64_FORMAT "\"}", node,
                           page_size);
}

/* hugepages our VMs hold on @node in @page_size pages, in bytes: what the kernel placed for
 * each reservation (reservations[].pages_on, verified at launch) */
static guint64
qn_held_bytes(GPtrArray *entries, guint node, guint64 page_size)
{
    guint64 held = 0;

    for (guint i = 0; i < entries->len; i++) {
        const QnLedgerEntry *e = g_ptr_array_index(entries, i);

        for (guint r = 0; e->reservations && r < e->reservations->len; r++) {
            const QnEntryReservation *res = g_ptr_array_index(e->reservations, r);

            for (guint k = 0; res->page_size == page_size && k < res->pages_on->len; k++) {
                const QnEntryNodePages *np = &g_array_index(res->pages_on, QnEntryNodePages, k);

                if (np->host_node == node) {
                    held += np->pages * page_size;
                }
            }
        }
    }
    return held;
}

static void
qn_format_nodes(GString *out, const QnTopology *t, GPtrArray *entries)
{
    static const char *const fam[][2] = {
        { "qemu_numa_node_memory_total_bytes", "MemTotal of the host node (nodeN/meminfo)" },
        { "qemu_numa_node_memory_free_bytes", "MemFree of the host node (nodeN/meminfo)" },
        { "qemu_numa_hugepages_total_bytes",
          "Hugepages in the node's pool of this page size (nr_hugepages x page size)" },
        { "qemu_numa_hugepages_free_bytes",
          "Free hugepages of the node's pool (free_hugepages x page size)" },
        { "qemu_numa_hugepages_held_bytes",
          "Hugepages held by qemu-numa's VMs on the node (ledger reservations, as placed)" },
        { "qemu_numa_hugepages_pool_bytes",
          "Hugepages held ready by qemu-numa's pre-zeroed pool service on the node" },
    };

    for (guint f = 0; f < G_N_ELEMENTS(fam); f++) {
        qn_family(out, fam[f][0], "gauge", fam[f][1]);
        for (guint i = 0; i < t->nodes->len; i++) {
            const QnHostNode *n = g_ptr_array_index(t->nodes, i);

            if (f < 2) {
                g_string_append_printf(out, "%s{node=\"%u\"} %" G_GUINT64_FORMAT "\n", fam[f][0],
                                       n->id, f == 0 ? n->mem_total : n->mem_free);
                continue;
            }
            for (guint k = 0; k < n->pools->len; k++) {
                const QnHugepagePool *p = &g_array_index(n->pools, QnHugepagePool, k);
                guint64 v = f == 2 ? p->nr * p->page_size
                          : f == 3 ? p->free * p->page_size
                          : f == 4 ? qn_held_bytes(entries, n->id, p->page_size)
                                   : p->ours_ready * p->page_size;

                g_string_append(out, fam[f][0]);
                qn_node_size_labels(out, n->id, p->page_size);
                g_string_append_printf(out, " %" G_GUINT64_FORMAT "\n", v);
            }
        }
    }
}

/* planned bytes of @e per host node: each guest node's bytes, split evenly over its host
 * nodeset (interleave) */
static void
qn_format_planned(GString *out, const QnLedgerEntry *e)
{
    if (e->plan == NULL || e->plan->kind != QN_PLAN_ALIGNED) {
        return;
    }
    for (guint g = 0; g < e->plan->guest_nodes->len; g++) {
        const QnGuestNode *gn = g_ptr_array_index(e->plan->guest_nodes, g);
        guint count = gn->host_nodes ? qn_bitmap_count(gn->host_nodes) : 0;

        for (gint h = count ? qn_bitmap_next(gn->host_nodes, 0) : -1; h >= 0;
             h = qn_bitmap_next(gn->host_nodes, (guint)h + 1)) {
            g_autofree gchar *node = g_strdup_printf("%d", h);
            g_autofree gchar *gnode = g_strdup_printf("%u", gn->id);
            g_autofree gchar *ps = g_strdup_printf("%" G_GUINT64_FORMAT, gn->page_size);

            g_string_append(out, "qemu_numa_vm_planned_bytes{");
            qn_vm_labels(out, e);
            qn_label(out, "guest_node", gnode, FALSE);
            qn_label(out, "node", node, FALSE);
            qn_label(out, "page_size_bytes", ps, FALSE);
            g_string_append_printf(out, "} %" G_GUINT64_FORMAT "\n", gn->bytes / count);
        }
    }
}

static void
qn_format_vms(GString *out, GPtrArray *entries)
{
    qn_family(out, "qemu_numa_vm_info", "gauge",
              "1 per VM in the ledger; state is ours (reserving, reserved, fallback), qemu is "
              "QEMU's run state as the monitor last saw it");
    for (guint i = 0; i < entries->len; i++) {
        const QnLedgerEntry *e = g_ptr_array_index(entries, i);

        g_string_append(out, "qemu_numa_vm_info{");
        qn_vm_labels(out, e);
        qn_label(out, "user", e->user, FALSE);
        qn_label(out, "state", qn_entry_state_name(e->state), FALSE);
        qn_label(out, "policy", e->plan ? qn_policy_to_string(e->plan->policy) : "", FALSE);
        qn_label(out, "qemu", e->qemu_status, FALSE);
        g_string_append(out, "} 1\n");
    }
    qn_family(out, "qemu_numa_vm_planned_bytes", "gauge",
              "Memory the plan puts on each host node, per guest node (aligned plans only)");
    for (guint i = 0; i < entries->len; i++) {
        qn_format_planned(out, g_ptr_array_index(entries, i));
    }
    qn_family(out, "qemu_numa_vm_measured_bytes", "gauge",
              "QEMU's memory resident on each host node (/proc/PID/numa_maps, read by the "
              "monitor)");
    for (guint i = 0; i < entries->len; i++) {
        const QnLedgerEntry *e = g_ptr_array_index(entries, i);

        for (guint k = 0; e->measured_memory && k < e->measured_memory->len; k++) {
            const QnEntryNodeBytes *nb = &g_array_index(e->measured_memory, QnEntryNodeBytes, k);
            g_autofree gchar *node = g_strdup_printf("%u", nb->host_node);

            g_string_append(out, "qemu_numa_vm_measured_bytes{");
            qn_vm_labels(out, e);
            qn_label(out, "node", node, FALSE);
            g_string_append_printf(out, "} %" G_GUINT64_FORMAT "\n", nb->bytes);
        }
    }
    qn_family(out, "qemu_numa_vm_fallback", "gauge",
              "1 when the VM fell back to the OS's allocation (reason: the planner's why), else 0");
    for (guint i = 0; i < entries->len; i++) {
        const QnLedgerEntry *e = g_ptr_array_index(entries, i);
        gboolean fb = e->state == QN_ENTRY_FALLBACK;

        g_string_append(out, "qemu_numa_vm_fallback{");
        qn_vm_labels(out, e);
        qn_label(out, "reason", fb && e->plan ? e->plan->reason : "", FALSE);
        g_string_append_printf(out, "} %d\n", fb);
    }
}

static void
qn_format_outcomes(GString *out, GPtrArray *entries)
{
    static const char *const outcomes[] = { "reserving", "reserved", "fallback" };

    qn_family(out, "qemu_numa_vms", "gauge",
              "Running VMs in the ledger by placement outcome (reserved: aligned, fallback: the "
              "OS allocates) and policy; refusals leave no entry and are not counted");
    for (guint o = 0; o < G_N_ELEMENTS(outcomes); o++) {
        for (guint p = QN_POLICY_NONE; p <= QN_POLICY_SINGLE_NUMA_NODE; p++) {
            guint n = 0;

            for (guint i = 0; i < entries->len; i++) {
                const QnLedgerEntry *e = g_ptr_array_index(entries, i);

                n += e->plan && (guint)e->plan->policy == p &&
                     strcmp(qn_entry_state_name(e->state), outcomes[o]) == 0;
            }
            g_string_append_printf(out, "qemu_numa_vms{outcome=\"%s\",policy=\"%s\"} %u\n",
                                   outcomes[o], qn_policy_to_string(p), n);
        }
    }
}

static void
qn_format_extra(GString *out, GPtrArray *entries, const QnMetricsExtra *x)
{
    guint n = 0;

    qn_family(out, "qemu_numa_vm_exits_recorded", "gauge",
              "Lines of the user's exits.jsonl and exits.jsonl.1 (VMs that ended; rotated at 256 "
              "KiB, so not a counter)");
    if (x != NULL && x->exits != NULL) {
        g_autoptr(GList) users = g_list_sort(g_hash_table_get_keys(x->exits),
                                             (GCompareFunc)strcmp);

        for (GList *u = users; u != NULL; u = u->next) {
            g_string_append(out, "qemu_numa_vm_exits_recorded{");
            qn_label(out, "user", u->data, TRUE);
            g_string_append_printf(out, "} %u\n",
                                   GPOINTER_TO_UINT(g_hash_table_lookup(x->exits, u->data)));
        }
    }
    qn_family(out, "qemu_numa_monitor_resident_bytes", "gauge",
              "VmRSS of each qemu-numa-monitor process (vm_pid: the QEMU it watches)");
    for (guint i = 0; x != NULL && x->monitors != NULL && i < x->monitors->len; i++) {
        const QnMonitorProc *m = &g_array_index(x->monitors, QnMonitorProc, i);
        gboolean known = FALSE;

        for (guint k = 0; k < entries->len && !known; k++) {
            known = ((const QnLedgerEntry *)g_ptr_array_index(entries, k))->pid == m->vm_pid;
        }
        if (!known) {
            continue; /* a process that only calls itself a monitor */
        }
        n++;
        g_string_append_printf(out, "qemu_numa_monitor_resident_bytes{pid=\"%d\",vm_pid=\"%d\"} "
                               "%" G_GUINT64_FORMAT "\n", m->pid, m->vm_pid, m->rss_bytes);
    }
    qn_family(out, "qemu_numa_monitors", "gauge",
              "qemu-numa-monitor processes watching a VM of the ledger");
    g_string_append_printf(out, "qemu_numa_monitors %u\n", n);
    qn_family(out, "qemu_numa_ledger_unreadable_files", "gauge",
              "Ledger files skipped as not valid entries (qemu-numa-ctl list warns of each)");
    g_string_append_printf(out, "qemu_numa_ledger_unreadable_files %u\n",
                           x != NULL ? x->unreadable : 0);
}

/* counters over both generations of every user's launches.jsonl */
static void
qn_format_placements(GString *out, GPtrArray *launches)
{
    static const char *const classes[] = { "memory", "cpus", "reservation" };
    static const char *const errors[] = { "no-fit", "hugepages", "placement", "topology",
                                          "ledger", "exec", "failed" };
    const char *other = "other";

    qn_family(out, "qemu_numa_placements_total", "counter",
              "Launches by outcome (placed: aligned, fallback: the OS allocates, refused: the "
              "launcher exited 1, incoming: a migration destination) and policy, from "
              "launches.jsonl and launches.jsonl.1 of every user; resets when a rotation at "
              "256 KiB drops the older generation");
    for (guint o = 0; o < QN_LAUNCH_OUTCOMES; o++) {
        for (guint p = QN_POLICY_BEST_EFFORT; p <= QN_POLICY_SINGLE_NUMA_NODE; p++) {
            guint n = 0;

            for (guint i = 0; launches != NULL && i < launches->len; i++) {
                const QnLaunchRecord *r = g_ptr_array_index(launches, i);

                n += r->outcome == o && (guint)r->policy == p;
            }
            g_string_append_printf(out, "qemu_numa_placements_total{outcome=\"%s\",policy=\"%s\"} "
                                   "%u\n", qn_launch_outcome_name(o), qn_policy_to_string(p), n);
        }
    }
    qn_family(out, "qemu_numa_placement_fallbacks_total", "counter",
              "Fallback launches (incoming ones too) by the class of their reason (memory: no "
              "node set had it, cpus: no dedicated pCPUs, reservation: the kernel fell short); "
              "resets as qemu_numa_placements_total");
    for (guint c = 0; c < G_N_ELEMENTS(classes); c++) {
        guint n = 0;

        for (guint i = 0; launches != NULL && i < launches->len; i++) {
            const QnLaunchRecord *r = g_ptr_array_index(launches, i);

            n += g_strcmp0(r->fallback_class, classes[c]) == 0;
        }
        g_string_append_printf(out, "qemu_numa_placement_fallbacks_total{reason=\"%s\"} %u\n",
                               classes[c], n);
    }
    qn_family(out, "qemu_numa_placement_refusals_total", "counter",
              "Refused launches by error code (no-fit: the policy allows no plan; other: codes "
              "not listed); resets as qemu_numa_placements_total");
    for (guint c = 0; c <= G_N_ELEMENTS(errors); c++) {
        const char *code = c < G_N_ELEMENTS(errors) ? errors[c] : other;
        guint n = 0;

        for (guint i = 0; launches != NULL && i < launches->len; i++) {
            const QnLaunchRecord *r = g_ptr_array_index(launches, i);
            gboolean listed = FALSE;

            if (r->outcome != QN_OUTCOME_REFUSED) {
                continue;
            }
            for (guint k = 0; k < G_N_ELEMENTS(errors); k++) {
                listed = listed || g_strcmp0(r->error, errors[k]) == 0;
            }
            n += listed ? g_strcmp0(r->error, code) == 0 : code == other;
        }
        g_string_append_printf(out, "qemu_numa_placement_refusals_total{error=\"%s\"} %u\n",
                               code, n);
    }
}

/* one histogram family of @values (gdouble), cumulative buckets @le */
static void
qn_format_histogram(GString *out, const char *name, const char *help, const gdouble *le,
                    guint n_le, GArray *values)
{
    char buf[G_ASCII_DTOSTR_BUF_SIZE];
    gdouble sum = 0;

    qn_family(out, name, "histogram", help);
    for (guint b = 0; b <= n_le; b++) {
        const char *bound = b == n_le ? "+Inf" : g_ascii_formatd(buf, sizeof(buf), "%g", le[b]);
        guint n = 0;

        for (guint i = 0; i < values->len; i++) {
            n += b == n_le || g_array_index(values, gdouble, i) <= le[b];
        }
        g_string_append_printf(out, "%s_bucket{le=\"%s\"} %u\n", name, bound, n);
    }
    for (guint i = 0; i < values->len; i++) {
        sum += g_array_index(values, gdouble, i);
    }
    g_string_append_printf(out, "%s_sum %s\n", name,
                           g_ascii_formatd(buf, sizeof(buf), "%.9g", sum));
    g_string_append_printf(out, "%s_count %u\n", name, values->len);
}

/* hugepage bytes an entry's reservation placed */
static guint64
qn_entry_reserved_bytes(const QnLedgerEntry *e)
{
    guint64 bytes = 0;

    for (guint r = 0; e->reservations != NULL && r < e->reservations->len; r++) {
        const QnEntryReservation *res = g_ptr_array_index(e->reservations, r);

        bytes += res->page_size != 0 ? res->bytes : 0;
    }
    return bytes;
}

static void
qn_add_reservation(GArray *secs, GArray *rates, gdouble seconds, guint64 bytes)
{
    gdouble rate;

    if (seconds < 0) {
        return;
    }
    g_array_append_val(secs, seconds);
    if (bytes > 0 && seconds > 0) {
        rate = (gdouble)bytes / seconds;
        g_array_append_val(rates, rate);
    }
}

/* The reservations of every launch in the outcome logs, and of running VMs whose launch has
 * no line there (started before the log existed, or rotated out): no launch twice. */
static void
qn_format_reserve(GString *out, GPtrArray *entries, GPtrArray *launches)
{
    static const gdouble secs_le[] = { QN_METRICS_RESERVE_SECONDS_BUCKETS };
    static const gdouble rate_le[] = { QN_METRICS_RESERVE_RATE_BUCKETS };
    g_autoptr(GArray) secs = g_array_new(FALSE, FALSE, sizeof(gdouble));
    g_autoptr(GArray) rates = g_array_new(FALSE, FALSE, sizeof(gdouble));
    g_autoptr(GHashTable) pids = g_hash_table_new(g_direct_hash, g_direct_equal);

    for (guint i = 0; launches != NULL && i < launches->len; i++) {
        const QnLaunchRecord *r = g_ptr_array_index(launches, i);

        g_hash_table_add(pids, GINT_TO_POINTER(r->pid));
        qn_add_reservation(secs, rates, r->reserve_seconds, r->reserved_bytes);
    }
    for (guint i = 0; i < entries->len; i++) {
        const QnLedgerEntry *e = g_ptr_array_index(entries, i);

        if (!g_hash_table_contains(pids, GINT_TO_POINTER(e->pid))) {
            qn_add_reservation(secs, rates, e->reserve_seconds, qn_entry_reserved_bytes(e));
        }
    }
    qn_format_histogram(out, "qemu_numa_reserve_seconds",
                        "Time the launcher took to reserve (allocate, place and verify) a "
                        "launch's memory, from launches.jsonl(.1) and the ledger; resets as "
                        "qemu_numa_placements_total",
                        secs_le, G_N_ELEMENTS(secs_le), secs);
    qn_format_histogram(out, "qemu_numa_reserve_bytes_per_second",
                        "Hugepage bytes a reservation placed over the time it took, per launch "
                        "that reserved hugepages; resets as qemu_numa_placements_total",
                        rate_le, G_N_ELEMENTS(rate_le), rates);
}

gchar *
qn_metrics_format(const QnTopology *topo, GPtrArray *entries, const QnMetricsExtra *extra)
{
    GString *out = g_string_new(NULL);

    g_assert(topo != NULL && entries != NULL);
    qn_format_nodes(out, topo, entries);
    qn_format_vms(out, entries);
    qn_format_outcomes(out, entries);
    qn_format_placements(out, extra != NULL ? extra->launches : NULL);
    qn_format_reserve(out, entries, extra != NULL ? extra->launches : NULL);
    qn_format_extra(out, entries, extra);
    return g_string_free(out, FALSE);
}

gboolean
qn_metrics_write_textfile(const char *dir, const char *text, GError **error)
{
    g_autofree gchar *path = g_build_filename(dir, "qemu_numa.prom", NULL);
    g_autoptr(GError) local = NULL;

    g_assert(dir != NULL && text != NULL);
    if (!g_file_set_contents_full(path, text, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0644,
                                  &local)) {
        g_set_error(error, QN_ERROR, QN_ERROR_FAILED, "textfile '%s': %s", path,
                    local->message);
        return FALSE;
    }
    return TRUE;
}
