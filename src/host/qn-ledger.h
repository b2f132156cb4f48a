/* The reservation ledger: one JSON file per VM in the state directory, under one flock. */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include "qn-plan.h"

G_BEGIN_DECLS

typedef struct {
    gchar *dir;
    gint lock_fd; /* holds LOCK_EX on <dir>/.lock while open */
} QnLedger;

/**
 * qn_ledger_open:
 * @state_dir: created with mode 0700 if missing (and its parent, 0755)
 * @error: %QN_ERROR_LEDGER when the directory or its lock file cannot be created or locked
 *
 * Takes an exclusive flock on `<state_dir>/.lock`, blocking until other launchers and
 * qemu-numa-ctl release it: plan + reservation of one launch never interleave with another's.
 * Returns: (transfer full): the locked ledger; qn_ledger_close() unlocks.
 */
QnLedger *qn_ledger_open(const char *state_dir, GError **error);
void qn_ledger_close(QnLedger *ledger);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QnLedger, qn_ledger_close)

/**
 * qn_proc_start_time:
 * @proc_root: "/proc"
 * @pid: process id
 * Returns: field 22 (starttime, clock ticks since boot) of /proc/PID/stat, or 0 when the
 *   process does not exist or is a zombie. Pid + start time names a process without pid-reuse mistakes.
 */
guint64 qn_proc_start_time(const char *proc_root, gint pid);

/**
 * qn_ledger_entry_new:
 * Builds an entry (schema: README "Ledger entry"): {"version": 1, "name", "uuid", "pid",
 * "start_time", "state", "created" (ISO 8601 UTC), "plan", "reservations": [{"node",
 * "page_size", "bytes", "pages_on": {"<node>": pages}}], "free_hugepages_before"/"after":
 * {"<node>:<page size>": pages}, "pinned_cpus": "", "events": []}.
 * Returns: (transfer full): the entry's JSON object node.
 */
JsonNode *qn_ledger_entry_new(const char *name, const char *uuid, gint pid, guint64 start_time,
                              const char *state, const QnPlan *plan);

/**
 * qn_ledger_write:
 * Writes `<dir>/<pid>.json` atomically (temporary file, fsync, rename: g_file_set_contents_full
 * with G_FILE_SET_CONTENTS_CONSISTENT), mode 0600. A reader never sees half a file.
 * @error: %QN_ERROR_LEDGER
 */
gboolean qn_ledger_write(QnLedger *ledger, gint pid, JsonNode *entry, GError **error);

/**
 * qn_ledger_entry_parse:
 * @data: (array length=len): the bytes of one ledger file, not necessarily NUL-terminated
 * @len: bytes in @data
 * @error: %QN_ERROR_LEDGER when @data is not JSON or its root is not an object
 *
 * The parser behind qn_ledger_read() and qn_ledger_list(), on a buffer (STYLE.md: parsers take
 * buffers) so tests and tests/fuzz/fuzz-ledger.c feed it directly. Checks only that the entry
 * is an object: members are checked where they are used (qn_plan_from_json() for "plan").
 * Returns: (transfer full): the entry's root object node, or %NULL on error.
 */
JsonNode *qn_ledger_entry_parse(const char *data, gsize len, GError **error);

/**
 * qn_ledger_read:
 * The entry of @pid (`<dir>/<pid>.json`), or %NULL with %QN_ERROR_LEDGER when it is missing or
 * is not a JSON object. One file is read, not the whole ledger.
 * Returns: (transfer full)
 */
JsonNode *qn_ledger_read(QnLedger *ledger, gint pid, GError **error);

/** qn_ledger_remove: unlinks `<dir>/<pid>.json`; a missing file is not an error. */
gboolean qn_ledger_remove(QnLedger *ledger, gint pid, GError **error);

/**
 * qn_ledger_list:
 * Returns: (transfer full): every readable entry (JsonNode* objects), sorted by pid. Files that
 *   do not parse are skipped and reported through @ret_bad (nullable, file names).
 */
GPtrArray *qn_ledger_list(QnLedger *ledger, GPtrArray **ret_bad);

/**
 * qn_ledger_sweep:
 * Removes entries whose process is gone (no /proc/PID, or a different start time: the pid was
 * reused). Their hugepages were freed by the kernel with the process's last fd.
 * Returns: the number of entries removed.
 */
guint qn_ledger_sweep(QnLedger *ledger, const char *proc_root);

/**
 * qn_ledger_reservations:
 * What the planner must subtract from the sysfs counters: hugepages of entries still in state
 * "reserving" (not yet visible in free_hugepages) and regular memory of every live entry.
 * Returns: (transfer full)
 */
QnReservations *qn_ledger_reservations(QnLedger *ledger);

/**
 * qn_ledger_entry_add_reservations:
 * @entry: one ledger entry (from qn_ledger_entry_parse()), possibly hand-edited or damaged
 * @r: where to add what the entry holds
 *
 * The per-entry part of qn_ledger_reservations(): adds the entry's hugepages while it is still
 * "reserving", its regular memory, and its "pinned_cpus". An entry whose plan does not parse,
 * or is not aligned, adds nothing; a malformed "pinned_cpus" adds no pCPU. Never fails.
 */
void qn_ledger_entry_add_reservations(JsonObject *entry, QnReservations *r);

G_END_DECLS
