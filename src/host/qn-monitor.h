/* The per-VM monitor: a detached process that keeps the ledger right while QEMU lives. */
#pragma once

#include <gio/gio.h>
#include <glib.h>

#include "qn-ledger.h"

G_BEGIN_DECLS

/**
 * qn_monitor_listen:
 * @ledger: the ledger the launcher holds: the socket goes in its directory (mode 0700) and to
 *   its owner (qn_ledger_give())
 * @pid: QEMU's pid-to-be
 * @which: "monitor" or "ctl", as for qn_ledger_socket_path()
 * @error: %QN_ERROR_FAILED naming the path when the socket cannot be created, bound (a file,
 *   socket or symlink already at the path: bind(2) never follows or replaces one) or listened on
 *
 * Creates the listening unix socket QEMU serves QMP on, mode 0600 (bound under umask 0177, so
 * it is never open to others, whatever umask our caller gave us: libvirt gives 0002), and
 * QEMU gets it as `-chardev socket,fd=N,server=on` the way libvirt passes its own monitor. The
 * socket exists before QEMU does, so the monitor's connect cannot race QEMU's start.
 *
 * Returns: (transfer full): the listening socket (close-on-exec set; the launcher clears it
 *   just before exec), or %NULL.
 */
GSocket *qn_monitor_listen(const QnLedger *ledger, gint pid, const char *which, GError **error);

/**
 * qn_monitor_spawn:
 * @state_dir, @proc_root: passed on to the monitor
 * @pid: QEMU's pid-to-be (this process)
 * @resume: the launcher added -S only so that vCPUs are pinned before the guest runs: the
 *   monitor sends `cont` after pinning (never when the user passed -S or -incoming)
 *
 * Every fd above 2 is closed in the monitor: nothing of the launcher's (hugetlbfs fds,
 * libvirt's monitor socket and pidfile lock) stays open in it.
 * @error: %QN_ERROR_FAILED when fork() fails
 *
 * Forks twice (the monitor is nobody's child but init's: QEMU never reaps it), and the
 * grandchild starts a new session, sends its output to `<state_dir>/<pid>.log`, and execs
 * /proc/self/exe as "qemu-numa-monitor". Returns in the caller once the intermediate child has
 * exited, i.e. before QEMU is exec'd.
 */
gboolean qn_monitor_spawn(const char *state_dir, const char *proc_root, gint pid,
                          gboolean resume, GError **error);

/**
 * qn_monitor_main:
 * The monitor process (argv: qemu-numa-monitor PID STATE_DIR PROC_ROOT cont|nocont): connects
 * to QEMU's
 * QMP socket; with dedicated CPUs in the plan pins each vCPU thread (`query-cpus-fast`
 * thread-id) to its pCPU and every other thread to the emulator pCPUs, then `cont` if asked;
 * records state, events (with timestamps) and measured memory per host node
 * (/proc/PID/numa_maps) in the VM's ledger entry, and when QEMU exits (QMP EOF, then its pidfd
 * becomes readable: no polling) appends the exit (with QEMU's exit status or signal when its
 * zombie can still be read) to `<state_dir>/<user>/exits.jsonl` and removes the
 * entry. Returns the process exit status.
 */
int qn_monitor_main(int argc, char **argv);

G_END_DECLS
