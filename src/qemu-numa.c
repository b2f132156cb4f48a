/* qemu-numa: a drop-in qemu-system-x86_64 that places guest memory on host NUMA nodes.
 * Takes QEMU's argv, plans, pre-allocates hugepages per guest node on its host node, and
 * execs the real QEMU in this same process (libvirt and scripts keep their pid). */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "qn-error.h"
#include "qn-launch.h"
#include "qn-monitor.h"
#include "qn-program.h"

int
main(int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(QnConfig) cfg = NULL;
    g_autoptr(QnLaunch) l = NULL;

    {
        /* The same binary is the per-VM monitor (qn_monitor_spawn execs /proc/self/exe). */
        g_autofree gchar *base = g_path_get_basename(argv[0]);

        if (strcmp(base, "qemu-numa-monitor") == 0) {
            return qn_monitor_main(argc, argv);
        }
    }
    qn_program_setup_log("qemu-numa", G_LOG_LEVEL_WARNING);
    cfg = qn_program_load_config(&error);
    if (cfg == NULL) {
        fprintf(stderr, "qemu-numa: %s\n", error->message);
        return 1;
    }
    qn_program_setup_log("qemu-numa", cfg->log_level);
    l = qn_launch_prepare(cfg, (const char *const *)argv, FALSE, &error);
    if (l == NULL || !qn_launch_reserve(l, &error)) {
        fprintf(stderr, "qemu-numa: %s\n", error->message);
        return 1;
    }
    if (l->plan->kind == QN_PLAN_FALLBACK) {
        g_warning("%s", l->plan->reason);
    } else if (l->plan->kind == QN_PLAN_ALIGNED) {
        g_autofree gchar *summary = qn_plan_summary(l->plan);

        g_info("%s", summary);
    }
    qn_launch_exec(l, &error);
    fprintf(stderr, "qemu-numa: %s\n", error->message);
    return 1;
}
