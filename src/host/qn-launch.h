/* One launch, end to end: argv -> plan -> reservation -> ledger -> exec. */
#pragma once

#include <glib.h>

#include "qn-argv.h"
#include "qn-config.h"
#include "qn-ledger.h"
#include "qn-plan.h"
#include "qn-reserve.h"
#include "qn-topology.h"

G_BEGIN_DECLS

typedef struct {
    const QnConfig *cfg;
    QnQemuArgv *qa;
    gchar *qemu;            /* absolute path of the real QEMU */
    QnTopology *topo;
    QnLedger *ledger;       /* held (locked) from plan until exec */
    QnPlan *plan;
    QnReservation *reservation;
    gint pid;
    gboolean ledger_entry;  /* an entry for pid exists */
    gdouble reserve_seconds; /* how long the reservation took; -1: none was tried */
    guint64 reserved_bytes; /* hugepage bytes it placed */
    GSocket *qmp_sockets[2]; /* listening: our monitor's and qemu-numa-ctl's, passed by fd */
} QnLaunch;

void qn_launch_free(QnLaunch *l);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QnLaunch, qn_launch_free)

/**
 * qn_qemu_resolve:
 * @configured: the `qemu` setting: "" (search @path_env for qemu-system-x86_64), a name
 *   (searched in @path_env) or a path
 * @path_env: (nullable): the PATH variable
 * @self_exe: (nullable): our own executable ("/proc/self/exe"): any candidate that is the same
 *   file (st_dev, st_ino) is skipped, so the `qemu-system-x86_64` link to qemu-numa first in
 *   PATH never execs itself
 * @error: %QN_ERROR_EXEC "QEMU binary 'X': not found" / "is qemu-numa itself" / not executable
 * Returns: (transfer full): an absolute path.
 */
gchar *qn_qemu_resolve(const char *configured, const char *path_env, const char *self_exe,
                       GError **error);

/**
 * qn_launch_prepare:
 * @cfg: settings
 * @argv: the QEMU argv (argv[0] first)
 * @dry_run: plan only: no ledger lock is kept and nothing is reserved
 * @error: any error of the argv model, topology, ledger or planner (see their docs)
 *
 * Parses, resolves QEMU (before anything is reserved), and for a non-probe run with a policy
 * other than none: loads the topology, locks the ledger, sweeps dead entries, and plans. A
 * failure once the lock is held is recorded as a refusal in launches.jsonl
 * (qn_ledger_record_launch()), best effort.
 * Returns: (transfer full): the launch, or %NULL on error with nothing left behind.
 */
QnLaunch *qn_launch_prepare(const QnConfig *cfg, const char *const *argv, gboolean dry_run,
                            GError **error);

/**
 * qn_launch_reserve:
 * Records the plan in the ledger (state "reserving"), pre-allocates the pages, and records the
 * result (state "reserved", or "fallback" with the reason). Under best-effort a failed
 * reservation turns into a fallback plan (the OS allocates); otherwise it is an error and the
 * ledger entry is removed and every page freed, and the refusal recorded in launches.jsonl.
 * The time the reservation took goes into the entry ("reserve_seconds", monotonic clock).
 */
gboolean qn_launch_reserve(QnLaunch *l, GError **error);

/**
 * qn_launch_argv:
 * @for_exec: %TRUE: the argv for execv(): the reserved fds' mem-paths (FD_CLOEXEC cleared on
 *   them) and, when the launch wrote a ledger entry, our listening QMP sockets' fds (they must
 *   be listening already; qn_launch_exec() clears their FD_CLOEXEC itself). %FALSE: the same
 *   argv for display, with placeholders `/proc/self/fd/<qn-ram0>` and `fd=<qn-monitor>`, and
 *   our monitors wherever a launch of this plan would add them (qn_rewrite_wants_monitors())
 *
 * Returns: (transfer full): the whole argv QEMU gets (qn_rewrite_qemu_argv(): memory options,
 *   our monitors, -S), argv[0] the real QEMU's path.
 */
GStrv qn_launch_argv(QnLaunch *l, gboolean for_exec);

/**
 * qn_launch_exec:
 * Records the launch's outcome in launches.jsonl (placed, fallback or incoming; a failure to
 * start the monitor as refused), unlocks the ledger and execs QEMU in this process. Returns
 * only on failure, after removing this launch's ledger entry (the fds close with the process
 * or the launch); an execv() failure comes after the unlock and is recorded as placed.
 * @error: %QN_ERROR_EXEC
 */
gboolean qn_launch_exec(QnLaunch *l, GError **error);

G_END_DECLS
