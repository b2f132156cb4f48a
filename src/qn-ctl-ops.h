/* qemu-numa-ctl's commands for operators and clusters (issue 17): metrics and nrt. */
#pragma once

#include <glib.h>

#include "qn-config.h"

G_BEGIN_DECLS

/**
 * qn_ctl_metrics:
 * @cfg: the settings (state directory, sysfs and proc roots)
 * @textfile_dir: (nullable): write `<dir>/qemu_numa.prom` atomically instead of printing
 * @error: the topology's, the ledger's or the textfile's error
 * `qemu-numa-ctl metrics [--textfile DIR]`: qn_metrics_format() of this host.
 * Returns: the exit status (0 ok, 1 error with @error set)
 */
int qn_ctl_metrics(const QnConfig *cfg, const char *textfile_dir, GError **error);

/**
 * qn_ctl_nrt:
 * @node_name: (nullable): metadata.name; the host name when %NULL
 * @yaml: print YAML instead of JSON
 * `qemu-numa-ctl nrt [--yaml] [--node-name N]`: qn_nrt_build() of this host.
 * Returns: the exit status (0 ok, 1 error with @error set)
 */
int qn_ctl_nrt(const QnConfig *cfg, const char *node_name, gboolean yaml, GError **error);

G_END_DECLS
