/* A VM's ledger entry as a C type: the one place that knows its JSON member names. */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include "qn-bitmap.h"
#include "qn-config.h"
#include "qn-plan.h"

G_BEGIN_DECLS

/**
 * QN_LEDGER_ENTRY_VERSION:
 * The "version" member of every entry written and of every qemu-numa-ctl --json output (README
 * "JSON changes in version 2"). Version 1 (qemu-numa up to issue 13) overwrote "state" with
 * QEMU's run state, wrote reservations[].host_nodes as a cpulist-like string, keyed
 * free_hugepages_* by "node:page size" strings and had an undocumented "memory_per_node".
 * Entries of version 1 are still read (a VM started before an upgrade keeps its reservation).
 */
#define QN_LEDGER_ENTRY_VERSION 2

/**
 * qn_ledger_name_to_utf8:
 * @raw: (nullable): a VM name or uuid as QEMU got it: any bytes but NUL
 * The form the ledger stores and `qemu-numa-ctl status NAME` matches: @raw itself when it is
 * valid UTF-8, else each byte that is not part of a valid sequence written as the four
 * characters `\xNN` (lower-case hex). JSON must be UTF-8 and json-glib writes strings
 * unchecked, so a raw non-UTF-8 name would make its entry unreadable. A name is never part of
 * a path: entries and sockets are named by pid.
 * Returns: (transfer full) (nullable): valid UTF-8, %NULL when @raw is %NULL.
 */
gchar *qn_ledger_name_to_utf8(const char *raw);

/* Our own state of a VM's reservation, never QEMU's run state (QnLedgerEntry.qemu_status). */
typedef enum {
    QN_ENTRY_RESERVING, /* entry written, pages being allocated: counted against free pages */
    QN_ENTRY_RESERVED,  /* pages allocated and placed: the kernel's counters show them */
    QN_ENTRY_FALLBACK,  /* no aligned placement: the OS allocates (plan.reason says why) */
    QN_ENTRY_INCOMING,  /* a migration destination (-incoming), placed as reserved or fallback
                         * says, until RESUME or MIGRATION completed (issue 14) */
} QnEntryState;

/** qn_entry_state_name: "reserving", "reserved", "fallback" or "incoming". */
const char *qn_entry_state_name(QnEntryState s);

/* pages (of the reservation's page size) that landed on one host node */
typedef struct {
    guint host_node;
    guint64 pages;
} QnEntryNodePages;

/* free hugepages of one size on one host node, in pages */
typedef struct {
    guint host_node;
    guint64 page_size; /* bytes */
    guint64 pages;
} QnEntryFreePages;

/* bytes of a process's memory on one host node (/proc/PID/numa_maps) */
typedef struct {
    guint host_node;
    guint64 bytes;
} QnEntryNodeBytes;

/* one guest node's hugepage reservation, or a hugepage DIMM's (memdev set) */
typedef struct {
    guint guest_node;
    gchar *memdev;     /* nullable: the reserved DIMM's backend id; %NULL for a guest node */
    QnBitmap *host_nodes;
    guint64 page_size; /* bytes */
    guint64 bytes;
    GArray *pages_on;  /* QnEntryNodePages, by host node */
} QnEntryReservation;

/* one memory device QEMU reports (query-memory-devices, QEMU 7.2 qapi/machine.json
 * MemoryDeviceInfo): cold-plugged from the argv or added later over QMP */
typedef struct {
    gchar *id;              /* nullable: the device's id */
    gchar *type;            /* QEMU's MemoryDeviceInfoKind: "dimm", "nvdimm", "virtio-mem"... */
    gchar *memdev;          /* nullable: its backend's id (the last part of QEMU's QOM path) */
    gint node;              /* its guest node, -1 when QEMU gives none (virtio-pmem) */
    guint64 size;           /* bytes the guest has (virtio-mem: plugged now) */
    guint64 requested_size; /* virtio-mem's requested-size, 0 for the others */
    guint64 backend_size;   /* bytes of its backend (virtio-mem: max-size), else @size */
    gint hotplugged;        /* 1, 0, or -1 when QEMU does not say (all but DIMMs) */
    guint mappings;         /* mappings of @backend_size bytes when measured (1: told apart) */
    GArray *placement;      /* nullable: QnEntryNodeBytes: the backend's mapping's pages by host
                             * node (numa_maps); %NULL when not measured or not told apart */
} QnEntryMemoryDevice;

/* one thread the monitor pinned, or found pinned by the caller */
typedef struct {
    gint vcpu;         /* the vCPU index, -1 when unknown (the caller pinned it) */
    gint64 thread_id;
    QnBitmap *pcpus;   /* where it may run */
} QnEntryThread;

/* one QMP event the monitor saw */
typedef struct {
    gchar *event;
    gchar *time;       /* ISO 8601, UTC */
    JsonObject *data;  /* nullable: QEMU's "data", as QEMU sent it */
} QnEntryEvent;

/**
 * QnLedgerEntry:
 * One VM's entry, `<state-dir>/<user>/<pid>.json` (layout: qn-ledger.h, schema:
 * doc/schema/ledger-entry.json). Read by qn_ledger_entry_from_json(), written by
 * qn_ledger_entry_to_json(); other files use the fields. Strings are UTF-8.
 */
typedef struct {
    gint64 version;        /* as read (QN_LEDGER_ENTRY_VERSION when made here) */
    gchar *name;           /* nullable: -name, through qn_ledger_name_to_utf8() */
    gchar *uuid;           /* nullable: -uuid, likewise */
    gint pid;              /* QEMU's (and the launcher's) pid */
    guint64 start_time;    /* /proc/PID/stat starttime, clock ticks since boot; 0: unknown */
    gchar *user;           /* nullable: the directory it was read from; never in the file */
    QnEntryState state;
    gchar *created;        /* nullable: ISO 8601 UTC */
    QnPlan *plan;          /* nullable: a plan that does not parse stays in @extra */
    GPtrArray *reservations; /* QnEntryReservation*, one per hugepage-backed guest node, then
                              * one per reserved hugepage DIMM */
    GArray *free_before;   /* QnEntryFreePages: free hugepages before the reservation */
    GArray *free_after;    /* QnEntryFreePages: and after it */
    QnBitmap *pinned_cpus; /* pCPUs held for this VM's dedicated vCPUs and emulator */
    gdouble reserve_seconds; /* how long qn_reservation_make() took (monotonic clock); -1:
                              * not recorded (no reservation, or written before issue 17) */
    gchar *qemu_status;    /* nullable: QEMU's run state (query-status), as the monitor saw it */
    gchar *qemu_status_time; /* nullable: when it was seen, ISO 8601 UTC */
    gboolean qemu_status_live; /* QEMU answered query-status just now (qemu-numa-ctl status) */
    GArray *measured_memory; /* nullable (never measured): QnEntryNodeBytes */
    GPtrArray *memory_devices; /* nullable (never asked): QnEntryMemoryDevice*, as the monitor
                              * last saw them (query-memory-devices) */
    gboolean pinned;       /* the pinning record below is set */
    gboolean pinned_by_caller; /* the caller (libvirt <vcpupin>) pinned, not the monitor */
    GPtrArray *threads;    /* QnEntryThread*: vCPU threads as pinned */
    QnBitmap *emulator_pcpus; /* nullable: where the other threads went */
    GPtrArray *events;     /* QnEntryEvent*, oldest first */
    gchar *migration_role; /* nullable (no MIGRATION event yet): "source" or "destination" */
    gchar *migration_status; /* nullable: the last MIGRATION event's status ("completed"...) */
    gchar *migration_time; /* nullable: when it came, ISO 8601 UTC */
    JsonObject *extra;     /* members we do not know (hand edits): written back as they came */
} QnLedgerEntry;

/**
 * qn_ledger_entry_new:
 * @name, @uuid: (nullable): as QEMU got them (any bytes): stored through
 *   qn_ledger_name_to_utf8()
 * @plan: copied (through its JSON form)
 * Returns: (transfer full): a version-2 entry in @state, created now, with no reservation
 *   yet, "pinned_cpus" the plan's held pCPUs.
 */
QnLedgerEntry *qn_ledger_entry_new(const char *name, const char *uuid, gint pid,
                                   guint64 start_time, QnEntryState state, const QnPlan *plan);

/** qn_ledger_entry_free: NULL-safe. */
void qn_ledger_entry_free(QnLedgerEntry *e);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QnLedgerEntry, qn_ledger_entry_free)

/**
 * qn_ledger_entry_from_json:
 * @node: the root of one ledger file (already bounded: qn_ledger_entry_parse())
 * @error: %QN_ERROR_LEDGER "not a JSON object", or "member 'pid': not an integer above 1"
 *
 * The one reader of an entry. Anyone who can write the state directory may have written it:
 * only "pid" is required; any other member of the wrong type (or a plan that does not parse)
 * is left at its default and kept, as read, in @extra, so the monitor's rewrite keeps hand
 * edits. A "state" that is not ours (version 1 wrote QEMU's run state there) is "reserved" for
 * an aligned plan, "fallback" otherwise: either way the launch had finished reserving.
 * Returns: (transfer full): the entry, or %NULL
 */
QnLedgerEntry *qn_ledger_entry_from_json(JsonNode *node, GError **error);

/**
 * qn_ledger_entry_to_json:
 * @with_user: add "user" (qemu-numa-ctl's outputs), not for the file
 * The one writer: the entry in the version-2 layout (doc/schema/ledger-entry.json).
 * Returns: (transfer full): an object node
 */
JsonNode *qn_ledger_entry_to_json(const QnLedgerEntry *e, gboolean with_user);

/**
 * qn_ledger_list_to_json:
 * @entries: QnLedgerEntry* (qn_ledger_list())
 * Returns: (transfer full): `qemu-numa-ctl list --json`: {"version": 2, "vms": [entry, with
 *   "user"]} (doc/schema/ctl-list.json)
 */
JsonNode *qn_ledger_list_to_json(GPtrArray *entries);

/**
 * qn_ledger_events_to_json:
 * Returns: (transfer full): `qemu-numa-ctl events --json`: {"version": 2, "pid", "events":
 *   [{"event", "time", "data"}]} (doc/schema/ctl-events.json)
 */
JsonNode *qn_ledger_events_to_json(const QnLedgerEntry *e);

/**
 * qn_ledger_entry_add_event:
 * Appends a QMP event (@data, nullable, is referenced) at @ts_usec (µs since the epoch, UTC),
 * dropping the oldest beyond %QN_LEDGER_MAX_EVENTS.
 */
void qn_ledger_entry_add_event(QnLedgerEntry *e, const char *event, JsonObject *data,
                               gint64 ts_usec);

/** QN_LEDGER_MAX_EVENTS: events kept per entry (the oldest go first). */
#define QN_LEDGER_MAX_EVENTS 1000

/**
 * qn_ledger_entry_set_qemu_status:
 * Records QEMU's run state @status (query-status "status", or the state an event implies) as
 * seen now.
 */
void qn_ledger_entry_set_qemu_status(QnLedgerEntry *e, const char *status);

/**
 * qn_ledger_entry_note_migration:
 * Records a MIGRATION event's @status (QEMU's MigrationStatus: "setup", "active",
 * "completed", "failed", ...) as seen now: the role is "destination" while the entry is
 * %QN_ENTRY_INCOMING, else "source". A destination's "completed" ends its incoming state
 * (qn_ledger_entry_end_incoming()).
 */
void qn_ledger_entry_note_migration(QnLedgerEntry *e, const char *status);

/**
 * qn_ledger_entry_end_incoming:
 * A %QN_ENTRY_INCOMING entry becomes %QN_ENTRY_RESERVED (aligned plan) or %QN_ENTRY_FALLBACK:
 * the guest has arrived (RESUME, or MIGRATION completed). Other states are left as they are.
 */
void qn_ledger_entry_end_incoming(QnLedgerEntry *e);

/**
 * qn_ledger_entry_set_measured_memory:
 * @per_node: host node id (GUINT_TO_POINTER) -> bytes (GSIZE_TO_POINTER), as
 *   qn_parse_numa_maps() gives
 */
void qn_ledger_entry_set_measured_memory(QnLedgerEntry *e, GHashTable *per_node);

/** qn_entry_memory_device_free: NULL-safe. */
void qn_entry_memory_device_free(QnEntryMemoryDevice *d);

/**
 * qn_entry_memory_devices_from_qmp:
 * @reply: QEMU's answer to query-memory-devices (already bounded by the QMP client): an
 *   array of {"type", "data": {...}} (QEMU 7.2 qapi/machine.json MemoryDeviceInfo)
 * Members of an unexpected type are skipped, never fatal: QEMU is not trusted to be well formed.
 * Returns: (transfer full) (nullable): QnEntryMemoryDevice*, in QEMU's order, with no placement
 *   yet; %NULL when @reply is not an array.
 */
GPtrArray *qn_entry_memory_devices_from_qmp(JsonNode *reply);

/**
 * qn_entry_memory_devices_measure:
 * @devs: QnEntryMemoryDevice*
 * @maps, @numa_maps: (nullable): QEMU's /proc/PID/maps and numa_maps read now
 * Sets each device's placement to its backend's mapping's pages by host node, when exactly one
 * mapping of QEMU is its backend's size (qn_parse_numa_maps_mapping()); else (or without the
 * files) no placement, and @mappings says how many had that size.
 */
void qn_entry_memory_devices_measure(GPtrArray *devs, const char *maps, const char *numa_maps);

/**
 * qn_entry_memory_devices_equal:
 * Whether @a and @b (nullable) list the same devices: ids, types, backends, nodes and sizes,
 * placement aside (what makes the monitor write the entry again).
 */
gboolean qn_entry_memory_devices_equal(GPtrArray *a, GPtrArray *b);

/**
 * qn_ledger_entry_set_memory_devices:
 * @devs: (transfer full) (nullable): QnEntryMemoryDevice*; replaces the entry's list
 */
void qn_ledger_entry_set_memory_devices(QnLedgerEntry *e, GPtrArray *devs);

/** qn_entry_thread_new: a pinning record; @pcpus is copied. */
QnEntryThread *qn_entry_thread_new(gint vcpu, gint64 thread_id, const QnBitmap *pcpus);
void qn_entry_thread_free(QnEntryThread *t);

/** qn_entry_reservation_free: NULL-safe. */
void qn_entry_reservation_free(QnEntryReservation *r);

/**
 * qn_exit_record_to_json:
 * @name: (nullable): the VM's name
 * @exit_status: its exit status, or -1 when unknown; @signal: the signal that killed it, or 0
 * @reason: why it ended ("shutdown reason" of its SHUTDOWN event, "exited with status 1", ...)
 * One line of `<user dir>/exits.jsonl` (doc/schema/exit.json).
 * Returns: (transfer full): an object node
 */
JsonNode *qn_exit_record_to_json(gint pid, const char *name, const char *time, gint exit_status,
                                 gint signal, const char *reason);

/* What became of one launch that held the ledger lock (issue 17): a line of launches.jsonl. */
typedef enum {
    QN_OUTCOME_PLACED,   /* aligned: the plan's pages reserved on its host nodes */
    QN_OUTCOME_FALLBACK, /* best-effort found no aligned plan: the OS allocates */
    QN_OUTCOME_REFUSED,  /* the launcher exited 1: no plan the policy allows, or a failure */
    QN_OUTCOME_INCOMING, /* a migration destination, placed (aligned or fallback) for it */
} QnLaunchOutcome;

/** QN_LAUNCH_OUTCOMES: the number of QnLaunchOutcome values. */
#define QN_LAUNCH_OUTCOMES (QN_OUTCOME_INCOMING + 1)

/** qn_launch_outcome_name: "placed", "fallback", "refused" or "incoming". */
const char *qn_launch_outcome_name(QnLaunchOutcome o);

/**
 * QnLaunchRecord:
 * One line of `<user dir>/launches.jsonl` (doc/schema/launch.json), written by the launcher
 * under the ledger lock (qn_ledger_record_launch()), read by qemu-numa-ctl metrics.
 */
typedef struct {
    gint pid;
    gchar *name;             /* nullable: -name through qn_ledger_name_to_utf8(), cut to
                              * QN_LAUNCH_RECORD_TEXT_MAX characters */
    gchar *time;             /* ISO 8601 UTC */
    QnLaunchOutcome outcome;
    QnPolicy policy;
    gchar *fallback_class;   /* fallback and incoming fallback: "memory", "cpus" or
                              * "reservation" (qn_launch_fallback_class()); else NULL */
    gchar *error;            /* refused: the QnError code's name ("no-fit"...); else NULL */
    gchar *message;          /* nullable: the refusal's or fallback's phrase, cut likewise */
    gdouble reserve_seconds; /* -1: nothing was reserved */
    guint64 reserved_bytes;  /* hugepage bytes the reservation placed (0 when it failed) */
} QnLaunchRecord;

/** QN_LAUNCH_RECORD_TEXT_MAX: characters kept of a name or message in a record. */
#define QN_LAUNCH_RECORD_TEXT_MAX 256

/** qn_launch_record_free: NULL-safe. */
void qn_launch_record_free(QnLaunchRecord *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QnLaunchRecord, qn_launch_record_free)

/**
 * qn_launch_record_new:
 * @name, @message: (nullable): any bytes; stored through qn_ledger_name_to_utf8() and cut to
 *   %QN_LAUNCH_RECORD_TEXT_MAX characters, so a line stays bounded (under 4 KiB even when
 *   every character is a control character JSON escapes in 6 bytes)
 * @error: (nullable): a refusal's error: its code's name and message are recorded
 * @fallback_reason: (nullable): a fallback plan's reason: recorded as the message, with its
 *   class (qn_launch_fallback_class())
 * Returns: (transfer full): a record timed now, with nothing reserved
 */
QnLaunchRecord *qn_launch_record_new(gint pid, const char *name, QnLaunchOutcome outcome,
                                     QnPolicy policy, const GError *error,
                                     const char *fallback_reason);

/**
 * qn_launch_fallback_class:
 * @reason: (nullable): a fallback plan's reason
 * The class a metric can label by: "reservation" (qn_launch_reserve() fell back after the
 * kernel could not give the pages), "cpus" (the CPU stage found no dedicated pCPUs), else
 * "memory" (no host node set had the memory: the planner's qn_planner_no_fit_memory()).
 * Returns: a static string
 */
const char *qn_launch_fallback_class(const char *reason);

/**
 * qn_launch_record_to_json:
 * Returns: (transfer full): the record as one object (doc/schema/launch.json)
 */
JsonNode *qn_launch_record_to_json(const QnLaunchRecord *r);

/**
 * qn_launch_record_from_json:
 * @node: one parsed line of a launches.jsonl another user may have written
 * @error: %QN_ERROR_LEDGER "launch record: ..." naming the member that does not read
 * The one reader: "pid", "outcome" and "policy" are required; a "reserve_seconds" or
 * "reserved_bytes" that is not a non-negative number reads as none.
 * Returns: (transfer full): the record, or %NULL
 */
QnLaunchRecord *qn_launch_record_from_json(JsonNode *node, GError **error);

G_END_DECLS
