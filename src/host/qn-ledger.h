/* The reservation ledger: one JSON file per VM in the state directory, under one flock. */
#pragma once

#include <glib.h>
#include <sys/types.h>
#include <json-glib/json-glib.h>

#include "qn-entry.h"
#include "qn-plan.h"

G_BEGIN_DECLS

/*
 * The layout (issue 12, doc/security.md): the state directory is root's, 0755, and holds
 *   .lock          root's, 0644: every user's launchers flock it (read-only is enough)
 *   <user>/        one directory per user that launches VMs, owned by that user, 0755:
 *     <pid>.json   its VMs' entries, 0644: published read-only, checked on read
 *     <pid>.qmp, <pid>.ctl.qmp, <pid>.log, exits.jsonl, launches.jsonl: its own, 0600
 *                  (paths: below)
 * Nothing root makes is given to another user, and no user can write another's files.
 */
typedef struct {
    gchar *top;   /* the state directory */
    gchar *dir;   /* top/<our user>: where our entries, sockets and logs go */
    gint lock_fd; /* holds LOCK_EX on <top>/.lock while open */
} QnLedger;

/** QN_LEDGER_LOCK_WAIT_S: how long qn_ledger_open() waits for the lock, in seconds. */
#define QN_LEDGER_LOCK_WAIT_S 60

/**
 * qn_state_user_name:
 * @uid: a user id
 *
 * The name of @uid's directory in the state directory: its login name, or the number when
 * it has none (or one that could not be a file name).
 *
 * Returns: (transfer full): the name
 */
gchar *qn_state_user_name(uid_t uid);

/**
 * qn_state_user_dir:
 * @state_dir: the state directory
 *
 * Returns: (transfer full): @state_dir/<name of our effective user>, where our entries,
 *   sockets, logs and exits.jsonl go (nothing is checked or made)
 */
gchar *qn_state_user_dir(const char *state_dir);

/**
 * qn_ledger_open:
 * @state_dir: the state directory; made (0755, parents too) if missing and we may
 * @error: %QN_ERROR_LEDGER, one line naming the directory, when @state_dir is not a directory
 *   owned by root or by us and writable by its owner alone, when our own directory in it
 *   cannot be made (only the state directory's owner can make it: the package makes
 *   libvirt-qemu's) or is not ours alone ("state directory '/run/qemu-numa/libvirt-qemu':
 *   owned by root, not by libvirt-qemu: Permission denied"), or when the lock cannot be opened
 *   or is not held within %QN_LEDGER_LOCK_WAIT_S seconds
 *
 * Takes an exclusive flock on `<state_dir>/.lock`, waiting for other launchers and
 * qemu-numa-ctl (of every user) to release it: plan + reservation of one launch never
 * interleave with another's. The wait is bounded because any user of the host can take it.
 * Returns: (transfer full): the locked ledger; qn_ledger_close() unlocks.
 */
QnLedger *qn_ledger_open(const char *state_dir, GError **error);

/**
 * qn_ledger_open_read:
 * @state_dir: the state directory (made if missing, as for qn_ledger_open())
 * @error: as for qn_ledger_open()
 *
 * qn_ledger_open() for a reader (qemu-numa-ctl list, status, events, host, plan): takes the
 * same lock, but needs no directory of our own in @state_dir and makes none, so any user may
 * read the host's books. qn_ledger_write() and qn_ledger_sweep() need qn_ledger_open().
 * Returns: (transfer full): the locked ledger
 */
QnLedger *qn_ledger_open_read(const char *state_dir, GError **error);
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
 * qn_ledger_write:
 * @entry: written as `<dir>/<entry->pid>.json` by qn_ledger_entry_to_json()
 * Writes the entry atomically (temporary file `.<pid>.json.XXXXXX` opened O_NOFOLLOW, fsync,
 * rename), mode 0644. A reader never sees half a file; on failure the old entry (if any) is
 * unchanged and no temporary file is left.
 * @error: %QN_ERROR_LEDGER, one line naming the state directory and the errno text (a full,
 *   read-only or unwritable directory: "state directory '/run/qemu-numa': writing 42.json: No
 *   space left on device")
 */
gboolean qn_ledger_write(QnLedger *ledger, const QnLedgerEntry *entry, GError **error);

/**
 * qn_ledger_socket_path:
 * @dir: a user's directory in the state directory (QnLedger.dir, or another user's)
 * @which: "monitor" or "ctl"
 * Returns: (transfer full): `<dir>/<pid>.qmp` (@which "monitor": the monitor process's) or
 *   `<dir>/<pid>.ctl.qmp` (@which "ctl": qemu-numa-ctl status's): the QMP monitors the launcher
 *   adds to QEMU's command line beside the user's (QEMU keeps several monitors; each chardev
 *   socket serves one client at a time, hence two).
 */
gchar *qn_ledger_socket_path(const char *dir, gint pid, const char *which);

/**
 * qn_ledger_log_path:
 * Returns: (transfer full): `<dir>/<pid>.log`, the monitor's stderr for VM @pid
 */
gchar *qn_ledger_log_path(const char *dir, gint pid);

/**
 * qn_ledger_exits_path:
 * Returns: (transfer full): `<dir>/exits.jsonl`, one line per VM that ended
 *   (qn_exit_record_to_json()), rotated to exits.jsonl.1 by the monitor at 256 KiB
 */
gchar *qn_ledger_exits_path(const char *dir);

/**
 * QN_LEDGER_JSONL_MAX:
 * Size at which qn_ledger_append_line() moves a log to `<log>.1` (256 KiB; one generation
 * kept): exits.jsonl and launches.jsonl stay under 512 KiB a user.
 */
#define QN_LEDGER_JSONL_MAX (256U * 1024)

/** QN_LEDGER_JSONL_READ_MAX: largest log generation read (1 MiB, 4x what one may reach). */
#define QN_LEDGER_JSONL_READ_MAX ((gsize)1024 * 1024)

/**
 * qn_ledger_launches_path:
 * Returns: (transfer full): `<dir>/launches.jsonl`, one line per launch outcome
 *   (qn_ledger_record_launch()), rotated like exits.jsonl
 */
gchar *qn_ledger_launches_path(const char *dir);

/**
 * qn_ledger_append_line:
 * @path: one of our own logs (exits.jsonl, launches.jsonl), in our own directory
 * @line: one line, without its line feed
 * @error: %QN_ERROR_LEDGER naming @path: errno's text (a planted symlink is ELOOP), or "not a
 *   regular file with one link" (a planted hard link or FIFO)
 *
 * Appends @line in one write(2) to @path (made 0600), first moving @path to `@path.1` (one
 * generation kept, the older one dropped) once it holds %QN_LEDGER_JSONL_MAX bytes. Opened
 * O_NOFOLLOW | O_NONBLOCK and checked with fstat: never appends through a link. Callers hold
 * the ledger lock, so rotations do not race (issue 12).
 * Returns: %TRUE when the line was written
 */
gboolean qn_ledger_append_line(const char *path, const char *line, GError **error);

/**
 * qn_ledger_record_launch:
 * @ledger: held by qn_ledger_open() (our own directory exists)
 * @record: what became of the launch (qn_launch_record_new())
 * @error: as for qn_ledger_append_line()
 * Appends @record (qn_launch_record_to_json()) to our launches.jsonl.
 * Returns: %TRUE when recorded
 */
gboolean qn_ledger_record_launch(QnLedger *ledger, const QnLaunchRecord *record,
                                 GError **error);

/**
 * qn_ledger_read_launches:
 * @dir: a user's directory in the state directory (another user's files are hostile input)
 * Reads launches.jsonl.1 then launches.jsonl through qn_file_read_untrusted() (no links, no
 * FIFOs, at most %QN_LEDGER_JSONL_READ_MAX bytes each), each line through
 * qn_json_parse_bounded() and qn_launch_record_from_json(); lines that do not read are
 * skipped, a missing or refused file gives nothing. Never fails.
 * Returns: (transfer full): QnLaunchRecord*, oldest first
 */
GPtrArray *qn_ledger_read_launches(const char *dir);

/**
 * qn_ledger_remove_files:
 * @dir: the VM's user's directory
 * Unlinks the files the launcher and monitor made for @pid beside its entry: both QMP sockets
 * and the monitor's log; missing ones are fine. Called when the entry goes (the monitor at
 * QEMU's exit, a failed exec, a sweep of a stale entry), so nothing of a VM outlives it but
 * its exits.jsonl record.
 */
void qn_ledger_remove_files(const char *dir, gint pid);

/**
 * QN_LEDGER_ENTRY_MAX_LEN:
 * Largest ledger file read, in bytes (1 MiB). The state directory is writable by the user QEMU
 * runs as, so a file there may be anything; root reads every entry on each launch and each
 * qemu-numa-ctl command. An entry we write is a few KiB: the plan, and at most
 * QN_MONITOR_MAX_EVENTS (1000) QMP events of typically 100-300 bytes each, pretty-printed.
 * A QEMU that sends huge or deep events can push its own entry over this or over
 * %QN_JSON_MAX_DEPTH; the entry is then skipped as unreadable, as if that QEMU had written
 * the file itself, which it can.
 */
#define QN_LEDGER_ENTRY_MAX_LEN ((gsize)1024 * 1024)

/**
 * qn_file_read_untrusted:
 * @path: a file whose name, type and contents another user may have chosen
 * @owner: the user the file must belong to, or (uid_t)-1 for any
 * @max_len: the most bytes accepted
 * @ret_data: (out) (transfer full): the contents, NUL-terminated; written only on success
 * @ret_len: (out): bytes in *@ret_data, NUL excluded; written only on success
 * @error: %QN_ERROR_LEDGER with a one-phrase reason: errno's text (a symlink is ELOOP: "Too
 *   many levels of symbolic links"), "not a regular file" (a FIFO, socket or device, opened
 *   without blocking), "owned by uid N, not M", or "longer than N bytes"
 *
 * Reads a file whose name, type and contents another user may have chosen: opened with
 * O_NOFOLLOW | O_NONBLOCK (a planted link is refused, a planted FIFO does not block), checked
 * with fstat to be a regular file within @max_len, and read to at most @max_len + 1 bytes, so
 * a file that grows while we read is refused rather than followed. Rule: issue 12 (the trust
 * boundary), as systemd's chase() and openat users do.
 *
 * Returns: %TRUE with the contents
 */
gboolean qn_file_read_untrusted(const char *path, uid_t owner, gsize max_len,
                                gchar **ret_data, gsize *ret_len, GError **error);

/**
 * qn_ledger_entry_parse:
 * @data: (array length=len): the bytes of one ledger file, not necessarily NUL-terminated
 * @len: bytes in @data
 * @error: %QN_ERROR_LEDGER when @data is not JSON or its root is not an object, or is over
 *   %QN_LEDGER_ENTRY_MAX_LEN bytes or nested deeper than %QN_JSON_MAX_DEPTH (the message is
 *   qn_json_parse_bounded()'s: "JSON nested deeper than 64")
 *
 * The bounded JSON step of qn_ledger_entry_from_data(), on a buffer (STYLE.md: parsers take
 * buffers) so tests and tests/fuzz/fuzz-ledger.c feed it directly. Checks only that the entry
 * is an object: its members are read by qn_ledger_entry_from_json() (src/host/qn-entry.c),
 * the one reader that knows them.
 * Returns: (transfer full): the entry's root object node, or %NULL on error.
 */
JsonNode *qn_ledger_entry_parse(const char *data, gsize len, GError **error);

/**
 * qn_ledger_entry_from_data:
 * @data, @len, @error: as for qn_ledger_entry_parse(), or qn_ledger_entry_from_json()'s errors
 * qn_ledger_entry_parse() then qn_ledger_entry_from_json(): what every reader of a ledger file
 * runs, on a buffer (tests/fuzz/fuzz-ledger.c feeds it).
 * Returns: (transfer full): the entry, or %NULL
 */
QnLedgerEntry *qn_ledger_entry_from_data(const char *data, gsize len, GError **error);

/**
 * qn_ledger_read:
 * The entry of @pid (`<dir>/<pid>.json`), or %NULL with %QN_ERROR_LEDGER when it is missing or
 * does not read. One file is read, not the whole ledger.
 * Returns: (transfer full)
 */
QnLedgerEntry *qn_ledger_read(QnLedger *ledger, gint pid, GError **error);

/** qn_ledger_remove: unlinks `<dir>/<pid>.json`; a missing file is not an error. */
gboolean qn_ledger_remove(QnLedger *ledger, gint pid, GError **error);

/**
 * qn_ledger_list:
 * Returns: (transfer full): every readable entry of every user's directory (QnLedgerEntry*),
 *   sorted by pid, each with its user set from its directory (never read from the file).
 *   Files that do not parse, are not objects, are not their directory owner's, are nested
 *   deeper than %QN_JSON_MAX_DEPTH, are not named after their integer "pid" member
 *   (`<pid>.json`), or name pid 1 or below, are skipped and reported through @ret_bad (nullable,
 *   "user/file" names), as are user directories not owned by the user they are named after;
 *   nothing here deletes them.
 */
GPtrArray *qn_ledger_list(QnLedger *ledger, GPtrArray **ret_bad);

/**
 * qn_ledger_sweep:
 * Removes entries whose process is gone (no /proc/PID, or a different start time: the pid was
 * reused). Their hugepages were freed by the kernel with the process's last fd. An entry whose
 * "start_time" is missing, not a positive integer (edited by hand) or was unreadable at launch
 * is judged by its pid alone: kept while the pid lives. Files qn_ledger_list() skips are never
 * touched. Only our own user's entries are removed, or every user's when we are root; each
 * goes with its sockets and log (qn_ledger_remove_files()). Sockets and logs of a pid that has
 * no entry and no process left (a monitor killed before it cleaned up) go too.
 * Returns: the number of entries removed.
 */
guint qn_ledger_sweep(QnLedger *ledger, const char *proc_root);

/**
 * qn_ledger_reservations:
 * What the planner must subtract from the sysfs counters: hugepages of entries still in state
 * "reserving" (not yet visible in free_hugepages) and regular memory of every live entry. An
 * entry counts only while its process lives with the recorded start time and is run by the
 * entry's user (any process for root's entries): a forged entry naming another user's
 * process, init or a dead pid reserves nothing (issue 12).
 * Returns: (transfer full)
 */
QnReservations *qn_ledger_reservations(QnLedger *ledger, const char *proc_root);

/**
 * qn_ledger_entry_add_reservations:
 * @entry: one ledger entry (qn_ledger_entry_from_data()), possibly hand-edited or damaged
 * @r: where to add what the entry holds
 *
 * The per-entry part of qn_ledger_reservations(): adds the entry's hugepages while it is still
 * "reserving", its regular memory, and its "pinned_cpus". An entry whose plan does not parse,
 * or is not aligned, adds nothing; a malformed "pinned_cpus" adds no pCPU. Never fails.
 */
void qn_ledger_entry_add_reservations(const QnLedgerEntry *entry, QnReservations *r);

G_END_DECLS
