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
 *   dry run passes what it likes. %NULL entries (or a %NULL array) mean no mem-path.
 *
 * Output rules (QEMU 7.2): each guest node with memory gets a memory backend
 * (`memory-backend-file` with `share=on,prealloc=on` over pre-allocated hugepages, or
 * `memory-backend-ram`) with `host-nodes` and `policy`; the user's own backends are rewritten in
 * place and keep every other property and their form (JSON stays JSON); backends we add go
 * before the first `-numa` (or at the end); one guest node of an automatic topology is given
 * with `-machine memory-backend=`, several with `-numa node,nodeid=,cpus=,memdev=` and
 * `-numa dist` for every ordered pair when the user wrote no `-numa dist`; `-mem-path` and
 * `-mem-prealloc` are dropped when we back the memory. Every other option keeps its place and
 * its bytes. Passthrough and fallback plans return the argv unchanged.
 *
 * Returns: (transfer full): the new argv, argv[0] first.
 */
GStrv qn_rewrite_argv(const QnQemuArgv *qa, const QnPlan *plan, const char *const *mem_paths);

G_END_DECLS
