/* The host's state for Prometheus: `qemu-numa-ctl metrics` (issue 17). */
#pragma once

#include <glib.h>

#include "qn-entry.h"
#include "qn-topology.h"

G_BEGIN_DECLS

/* one qemu-numa-monitor process (src/host/qn-monitor.c qn_monitor_spawn()) */
typedef struct {
    gint pid;             /* the monitor's own pid */
    gint vm_pid;          /* the QEMU it watches (its argv[1]) */
    guint64 rss_bytes;    /* VmRSS of /proc/PID/status */
} QnMonitorProc;

/* What qn_metrics_format() reports beside the topology and the entries. */
typedef struct {
    GArray *monitors;     /* nullable: QnMonitorProc (qn_metrics_find_monitors()) */
    GHashTable *exits;    /* nullable: user name -> lines of its exits.jsonl(.1) (GUINT) */
    guint unreadable;     /* ledger files qn_ledger_list() skipped */
    GPtrArray *launches;  /* nullable: QnLaunchRecord* of every user's launches.jsonl(.1)
                           * (qn_ledger_read_launches()) */
} QnMetricsExtra;

/** QN_METRICS_RESERVE_SECONDS_BUCKETS: upper bounds of qemu_numa_reserve_seconds, seconds. */
#define QN_METRICS_RESERVE_SECONDS_BUCKETS                                                      \
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120

/** QN_METRICS_RESERVE_RATE_BUCKETS: of qemu_numa_reserve_bytes_per_second, bytes/s. */
#define QN_METRICS_RESERVE_RATE_BUCKETS                                                         \
    1e8, 2.5e8, 5e8, 1e9, 2e9, 4e9, 6e9, 8e9, 1e10, 1.5e10, 2e10, 4e10

/**
 * qn_metrics_find_monitors:
 * @proc_root: "/proc"
 * @state_dir: the state directory the monitors were started with (their argv[2])
 *
 * Finds the qemu-numa-monitor processes of @state_dir by their command line
 * (`qemu-numa-monitor PID STATE_DIR PROC_ROOT cont|nocont`, qn_monitor_spawn()). A command line
 * is chosen by the process's owner: it is read bounded (64 KiB) and only counted, never
 * trusted; the caller keeps only monitors whose VM pid has a ledger entry. Processes that
 * vanish while we read are skipped. Never fails.
 * Returns: (transfer full): GArray of QnMonitorProc, ascending pid
 */
GArray *qn_metrics_find_monitors(const char *proc_root, const char *state_dir);

/**
 * qn_metrics_count_lines:
 * @path: a file another user may have written (exits.jsonl): read through
 *   qn_file_read_untrusted() (no links, no FIFOs, at most 1 MiB), and only when owned by the
 *   owner of its directory (the user it belongs to)
 * Returns: its number of non-empty lines, 0 when missing or unreadable
 */
guint qn_metrics_count_lines(const char *path);

/**
 * qn_metrics_format:
 * @topo: the host (qn_topology_load())
 * @entries: QnLedgerEntry* (qn_ledger_list()), with their users set
 * @extra: (nullable): monitors, exits and unreadable files
 *
 * The Prometheus text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/): every family with its HELP
 * and TYPE lines, values in base units (bytes; page sizes as a `page_size_bytes` label), label
 * values escaped as the format says (backslash, double quote, line feed). Names follow
 * https://prometheus.io/docs/practices/naming/ (`qemu_numa_` prefix, `_bytes` suffix). Families
 * and what they count are listed in README "Metrics". Pure: no I/O.
 * Returns: (transfer full): the text, ending in a line feed
 */
gchar *qn_metrics_format(const QnTopology *topo, GPtrArray *entries,
                         const QnMetricsExtra *extra);

/**
 * qn_metrics_write_textfile:
 * @dir: node_exporter's --collector.textfile.directory
 * @text: qn_metrics_format()'s output
 * @error: %QN_ERROR_FAILED naming the file and errno's text
 *
 * Writes `@dir/qemu_numa.prom` atomically, mode 0644: g_file_set_contents_full() writes a
 * temporary `qemu_numa.prom.XXXXXX` beside it (ignored by the collector, which reads `*.prom`
 * only), fsyncs it and renames it over the old file, so node_exporter never serves half a
 * file (its textfile collector documentation asks for exactly this).
 * Returns: %TRUE when written
 */
gboolean qn_metrics_write_textfile(const char *dir, const char *text, GError **error);

G_END_DECLS
