/* The guest-visible layout of a running VM as QEMU options: what a migration destination needs
 * on its own command line (issue 14, `qemu-numa-ctl migrate-args`). */
#pragma once

#include <glib.h>

#include "qn-argv.h"
#include "qn-plan.h"

G_BEGIN_DECLS

/**
 * qn_migrate_args:
 * @qa: the argv QEMU was exec'd with (its /proc/PID/cmdline, parsed): the rewritten one, so
 *   the guest nodes we made are in it as -numa lines
 * @plan: (nullable): the VM's plan from the ledger: the backend of each guest node, its size
 *   and page size; %NULL or a plan without guest nodes (fallback, passthrough): the argv's own
 *   backends, taken as regular memory
 * @error: %QN_ERROR_BAD_ARGV when a guest node names a backend the argv does not define
 *
 * The options that fix what the guest sees and what migration matches on, and nothing of this
 * host: -m and -smp as given; one backend per guest node with the same id and size and no host
 * path or nodes (`memory-backend-memfd,hugetlb=on,hugetlbsize=` for hugepages, so postcopy's
 * page sizes match: migration/ram.c "Mismatched RAM page size"; `memory-backend-ram` for
 * regular memory); every -numa line (node, dist, cpu, hmat) as given; and
 * `-machine memory-backend=` when the argv uses it. QEMU matches RAM blocks by backend id and
 * size (migration/ram.c), so a destination started with its own options plus these accepts the
 * migration, whether it is plain QEMU or qemu-numa (which then chooses its own host nodes:
 * qn-plan-incoming.c). This is what `virsh dumpxml --migratable` is to libvirt.
 *
 * Returns: (transfer full): the options, NULL-terminated; %NULL with @error set.
 */
GStrv qn_migrate_args(const QnQemuArgv *qa, const QnPlan *plan, GError **error);

G_END_DECLS
