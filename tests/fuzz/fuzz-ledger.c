/* Fuzz target "ledger": one ledger file (src/host/qn-ledger.c) as qemu-numa-ctl and the
 * launcher read it: qn_ledger_entry_parse(), the typed entry (qn_ledger_entry_from_json()),
 * the reservations it holds (qn_ledger_entry_add_reservations()) and its plan
 * (qn_plan_from_json(), src/core); and the same object as a line of launches.jsonl
 * (qn_launch_record_from_json(), what qemu-numa-ctl metrics reads of every user's log).
 *
 * Input: the file's bytes. Ledger files may be truncated, binary or hand-edited (README
 * "Reliability"): none of that may crash, leak, or reach a g_return_if_fail().
 * Invariants: an entry that reads writes back (qn_ledger_entry_to_json()) to JSON that reads
 * and writes back to the same text, and so does a launch record; a plan that decodes encodes back to JSON that decodes to
 * the same plan, so what qemu-numa-ctl shows is what the planner and the monitor use; no
 * entry deeper than QN_JSON_MAX_DEPTH is parsed, and whatever qn_json_check_bounds() lets
 * through json-glib parses no deeper (qn_fuzz_check_json_bounds()). */
#include "config.h"

#include <glib.h>
#include <json-glib/json-glib.h>

#include "fuzz.h"
#include "qn-ledger.h"
#include "qn-plan-json.h"

const char qn_fuzz_target[] = "ledger";

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    qn_fuzz_init_logging();
    return 0;
}

static gchar *
qn_to_text(JsonNode *node)
{
    g_autoptr(JsonGenerator) gen = json_generator_new();

    json_generator_set_root(gen, node);
    return json_generator_to_data(gen, NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) entry = qn_ledger_entry_parse((const char *)data, size, &error);
    g_autoptr(QnReservations) resv = qn_reservations_new();
    g_autoptr(QnPlan) plan = NULL;
    g_autoptr(JsonNode) json = NULL;
    g_autoptr(QnPlan) again = NULL;
    g_autoptr(JsonNode) json2 = NULL;
    g_autofree gchar *text = NULL, *text2 = NULL, *summary = NULL;

    qn_fuzz_check_json_bounds((const char *)data, size);
    if (entry == NULL) {
        g_assert(error != NULL);
        return 0;
    }
    if (qn_fuzz_json_depth(entry, QN_JSON_MAX_DEPTH) > QN_JSON_MAX_DEPTH) {
        qn_fuzz_fail("an entry nested deeper than %u was parsed", QN_JSON_MAX_DEPTH);
    }
    g_assert(error == NULL && JSON_NODE_HOLDS_OBJECT(entry));
    {
        g_autoptr(QnLedgerEntry) e = qn_ledger_entry_from_json(entry, NULL);
        g_autoptr(QnLedgerEntry) e2 = NULL;
        g_autoptr(JsonNode) w = NULL, w2 = NULL, w3 = NULL;
        g_autofree gchar *t2 = NULL, *t3 = NULL;

        if (e != NULL) {
            qn_ledger_entry_add_reservations(e, resv);
            w = qn_ledger_entry_to_json(e, FALSE);
            e2 = qn_ledger_entry_from_json(w, NULL);
            if (e2 == NULL) {
                qn_fuzz_fail("a written entry does not read back");
            }
            w2 = qn_ledger_entry_to_json(e2, FALSE);
            g_clear_pointer(&e, qn_ledger_entry_free);
            e = qn_ledger_entry_from_json(w2, NULL);
            w3 = qn_ledger_entry_to_json(e, FALSE);
            t2 = qn_to_text(w2);
            t3 = qn_to_text(w3);
            if (g_strcmp0(t2, t3) != 0) {
                qn_fuzz_fail("entry JSON changes on a round trip:\n%s\n%s", t2, t3);
            }
        }
    }

    {
        g_autoptr(QnLaunchRecord) r = qn_launch_record_from_json(entry, NULL);
        g_autoptr(QnLaunchRecord) r2 = NULL;
        g_autoptr(JsonNode) w = NULL, w2 = NULL;
        g_autofree gchar *t = NULL, *t2 = NULL;

        if (r != NULL) {
            w = qn_launch_record_to_json(r);
            r2 = qn_launch_record_from_json(w, NULL);
            if (r2 == NULL) {
                qn_fuzz_fail("a written launch record does not read back");
            }
            w2 = qn_launch_record_to_json(r2);
            t = qn_to_text(w);
            t2 = qn_to_text(w2);
            if (g_strcmp0(t, t2) != 0) {
                qn_fuzz_fail("launch record JSON changes on a round trip:\n%s\n%s", t, t2);
            }
        }
    }

    plan = qn_plan_from_json(json_object_get_member(json_node_get_object(entry), "plan"),
                             &error);
    if (plan == NULL) {
        g_assert(error != NULL);
        return 0;
    }
    summary = qn_plan_summary(plan);
    json = qn_plan_to_json(plan);
    text = qn_to_text(json);
    again = qn_plan_from_json(json, &error);
    if (again == NULL) {
        qn_fuzz_fail("a decoded plan encodes to JSON that does not decode: %s: %s", error->message,
                text);
    }
    json2 = qn_plan_to_json(again);
    text2 = qn_to_text(json2);
    if (g_strcmp0(text, text2) != 0) {
        qn_fuzz_fail("plan JSON changes on a round trip:\n%s\n%s", text, text2);
    }
    return 0;
}
