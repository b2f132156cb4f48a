/* The argv rewriter: a plan and the user's argv in, the argv QEMU gets out. Pure. */
#pragma once

#include <glib.h>

#include "qn-argv.h"
#include "qn-plan.h"

G_BEGIN_DECLS

/**
 * qn_rewrite_argv:
 * @qa: the user's argv, parsed
 * @plan: an aligned, fallback or passthrough plan for @qa
 * @mem_paths: (nullable): one `mem-path` per guest node of @plan (same order), for guest nodes
 *   with hugepages: the launcher passes "/proc/self/fd/N" of the reserved, unlinked file; a
 *   dry run passes what it likes. %NULL entries (or a %NULL array) mean no mem-path. Then
 *   one per hotplug memory device the plan reserves (QnPlanMemDevice.reserve), in
 *   plan->mem_devices order: qn_reservation_mem_paths() gives them in that order too.
 *
 * Output rules (QEMU 7.2): each guest node with memory gets a memory backend
 * (`memory-backend-file` with `share=on,prealloc=on` over pre-allocated hugepages, or
 * `memory-backend-ram`) with `host-nodes` and `policy`; the user's own backends are rewritten in
 * place and keep every other property and their form (JSON stays JSON); backends we add go
 * before the first `-numa` (or at the end); one guest node of an automatic topology is given
 * with `-machine memory-backend=`, several with `-numa node,nodeid=,cpus=,memdev=` and
 * `-numa dist` for every ordered pair when the user wrote no `-numa dist`; `-mem-path` and
 * `-mem-prealloc` are dropped when we back the memory; a reserved hugepage DIMM's backend becomes
 * `memory-backend-file` over its reserved fd (`memory-backend-memfd,hugetlb=on` too: QEMU
 * would take a second set of pages for it otherwise). Every other option keeps its place and
 * its bytes. Passthrough and fallback plans return the argv unchanged.
 *
 * Returns: (transfer full): the argv with its memory options rewritten, argv[0] first. Not yet
 *   all QEMU gets: qn_rewrite_qemu_argv() adds our monitors and -S.
 */
GStrv qn_rewrite_argv(const QnQemuArgv *qa, const QnPlan *plan, const char *const *mem_paths);

/* Our own QMP monitors, in this order: the one the per-VM monitor process holds, and the one
 * `qemu-numa-ctl status` connects to. Their names make the chardev ids ("qn-monitor",
 * "qn-ctl") and the socket file names (qn_monitor_socket_path()). */
#define QN_REWRITE_MONITORS 2

/**
 * qn_rewrite_monitor_name:
 * @i: 0 .. %QN_REWRITE_MONITORS - 1
 * Returns: (transfer none): "monitor" or "ctl", a static string.
 */
const char *qn_rewrite_monitor_name(guint i);

/**
 * qn_rewrite_wants_monitors:
 * @plan: the plan the launch execs with (after a failed reservation: the fallback that
 *   replaced it)
 *
 * The rule: our QMP monitors go to QEMU exactly when the launch records the VM in the ledger,
 * which is every plan but passthrough (aligned, and fallback so the ledger says why). A
 * passthrough plan (policy none, a probe like `-version`) leaves the argv to QEMU untouched.
 * Returns: whether qn_rewrite_qemu_argv() should be given monitor fds for @plan.
 */
gboolean qn_rewrite_wants_monitors(const QnPlan *plan);

/**
 * qn_rewrite_wants_start_paused:
 * @plan: as for qn_rewrite_wants_monitors()
 * @qa: the user's argv
 *
 * The rule: with dedicated CPUs, the vCPUs must be pinned before the guest runs, so QEMU starts
 * paused (`-S`) and our monitor sends `cont` after pinning. Not when the user (or libvirt)
 * already gave -S (they resume it themselves), nor with -incoming (a migration target runs
 * when the migration ends, never on `cont` from us). Implies qn_rewrite_wants_monitors().
 * Returns: whether to append `-S`, and so whether the monitor must resume QEMU.
 */
gboolean qn_rewrite_wants_start_paused(const QnPlan *plan, const QnQemuArgv *qa);

typedef struct {
    /* As for qn_rewrite_argv(): one mem-path per guest node, or %NULL. */
    const char *const *mem_paths;
    /* %NULL: no monitors of ours. Else %QN_REWRITE_MONITORS listening socket fds as text, in
     * qn_rewrite_monitor_name() order: "17" for the exec, a placeholder such as "<qn-monitor>"
     * for display. Not checked: they are written as given. */
    const char *const *monitor_fds;
    /* Append `-S` (see qn_rewrite_wants_start_paused()); needs monitor_fds: only our monitor
     * resumes the guest. */
    gboolean start_paused;
} QnRewriteInput;

/**
 * qn_rewrite_qemu_argv:
 * @qa: the user's argv, parsed
 * @plan: as for qn_rewrite_argv()
 * @in: the fds and choices only the launch knows (the golden tests and `qemu-numa-ctl plan`
 *   pass placeholders)
 *
 * The whole argv QEMU is exec'd with: qn_rewrite_argv()'s, then for each of our monitors
 * `-chardev socket,id=qn-NAME,fd=FD,server=on,wait=off -mon chardev=qn-NAME,mode=control`
 * (QEMU serves several QMP monitors; the user's own, libvirt's `charmonitor` included, keep
 * their place and bytes: the ids differ), then `-S` if @in asks for it.
 *
 * Returns: (transfer full): the argv, argv[0] first.
 */
GStrv qn_rewrite_qemu_argv(const QnQemuArgv *qa, const QnPlan *plan, const QnRewriteInput *in);

G_END_DECLS
