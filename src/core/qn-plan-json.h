/* Placement plans as JSON: the ledger's "plan" member and `qemu-numa-ctl plan --json`. */
#pragma once

#include <json-glib/json-glib.h>

#include "qn-plan.h"

G_BEGIN_DECLS

/**
 * qn_plan_to_json:
 * Schema (stable; README "The ledger", PLAN): {"kind": "aligned"|"fallback"|"passthrough",
 * "policy", "memory_mode", "guest_topology", "reason": string|null, "mean_distance": number,
 * "hugetlbfs": string|null, "guest_nodes": [{"id", "vcpus": "0-3", "bytes", "page_size" (0 =
 * regular memory), "host_nodes": [ids], "mode", "memdev"}], "distance": [[...]]|null}.
 * Returns: (transfer full): a JSON object node.
 */
JsonNode *qn_plan_to_json(const QnPlan *plan);

/**
 * qn_plan_from_json:
 * @node: what qn_plan_to_json() wrote
 * @error: %QN_ERROR_LEDGER naming the first missing or mistyped member
 * Returns: (transfer full): the plan, or %NULL on error.
 */
QnPlan *qn_plan_from_json(JsonNode *node, GError **error);

G_END_DECLS
