/* libFuzzer entry points shared by the fuzz targets (tests/fuzz/fuzz-*.c) and the replay
 * driver (tests/fuzz/replay.c) that `make check` runs over each target's corpus. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include "qn-json.h"

/**
 * qn_fuzz_target:
 * The target's name ("argv", "sysfs", ...): its corpus is tests/fuzz/corpus/<name>/.
 */
extern const char qn_fuzz_target[];

/**
 * LLVMFuzzerInitialize:
 * Called once before any input, by libFuzzer and by the replay driver. Targets load what
 * they share between inputs here (the argv target's fake topologies are loaded lazily instead).
 * Returns: 0.
 */
int LLVMFuzzerInitialize(int *argc, char ***argv);

/**
 * LLVMFuzzerTestOneInput:
 * @data: (array length=size): one input, not NUL-terminated, owned by the caller
 * @size: bytes in @data
 *
 * Runs the target on one input. Everything allocated is freed before returning (LeakSanitizer
 * runs under libFuzzer); a broken invariant calls g_error(), which aborts.
 * Returns: 0 (libFuzzer's convention: the input may be added to the corpus).
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant: print why and abort(). Not g_error(): glib stops on SIGTRAP, which
 * libFuzzer does not catch, so it would neither save the input nor say which it was. */
#define qn_fuzz_fail(...)                                                                       \
    do {                                                                                        \
        g_printerr(__VA_ARGS__);                                                                \
        g_printerr("\n");                                                                       \
        abort();                                                                                \
    } while (0)

static inline void
qn_fuzz_log_handler(const gchar *domain, GLogLevelFlags level, const gchar *message,
                    gpointer data)
{
    g_printerr("%s: %s\n", domain ? domain : "glib", message);
    if (level & (G_LOG_FLAG_FATAL | G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL |
                 G_LOG_LEVEL_WARNING)) {
        abort();
    }
}

/**
 * qn_fuzz_init_logging:
 * Makes every warning and critical abort, through abort() (see qn_fuzz_fail()): a
 * g_return_if_fail() that input can reach is a bug that input found, and library code never
 * logs otherwise (STYLE.md). Debug and info messages are dropped.
 */
static inline void
qn_fuzz_init_logging(void)
{
    g_log_set_default_handler(qn_fuzz_log_handler, NULL);
}

/**
 * qn_fuzz_json_depth:
 * @node: (nullable): a parsed tree
 * @limit: deepest level worth telling apart
 *
 * Arrays and objects nested in @node, counted as qn_json_check_bounds() counts them (`1` is 0,
 * `[]` 1, `{"a":[1]}` 2). Stops descending past @limit, so a tree deeper than any bound does
 * not overflow this function's own stack.
 * Returns: the depth, or @limit + 1 when it is over @limit.
 */
static inline guint
qn_fuzz_json_depth(JsonNode *node, guint limit)
{
    guint deepest = 0;

    if (node == NULL || (!JSON_NODE_HOLDS_ARRAY(node) && !JSON_NODE_HOLDS_OBJECT(node))) {
        return 0;
    }
    if (limit == 0) {
        return 1;
    }
    if (JSON_NODE_HOLDS_ARRAY(node)) {
        JsonArray *a = json_node_get_array(node);

        for (guint i = 0; i < json_array_get_length(a); i++) {
            /* not inside MAX(): it evaluates its arguments twice, 2^depth calls */
            guint d = qn_fuzz_json_depth(json_array_get_element(a, i), limit - 1);

            deepest = MAX(deepest, d);
        }
    } else {
        JsonObjectIter it;
        JsonNode *m;

        json_object_iter_init(&it, json_node_get_object(node));
        while (json_object_iter_next(&it, NULL, &m)) {
            guint d = qn_fuzz_json_depth(m, limit - 1);

            deepest = MAX(deepest, d);
        }
    }
    return deepest + 1;
}

/**
 * qn_fuzz_check_json_bounds:
 * @data: (array length=len): bytes a target got
 * @len: bytes in @data
 *
 * The invariant behind qn_json_check_bounds(): whatever it lets through, json-glib parses to a
 * tree no deeper than %QN_JSON_MAX_DEPTH. Differential: the check follows json-glib's
 * tokenizer (strings, comments, escapes) by hand, and a disagreement about where a string ends
 * would let depth hide from the count. Refused input is not parsed (json-glib would crash).
 */
static inline void
qn_fuzz_check_json_bounds(const char *data, gsize len)
{
    g_autoptr(JsonParser) parser = NULL;
    guint depth;

    if (!qn_json_check_bounds(data, len, QN_JSON_MAX_DEPTH, G_MAXSIZE, NULL)) {
        return;
    }
    parser = json_parser_new();
    if (!json_parser_load_from_data(parser, len > 0 ? data : "", (gssize)len, NULL)) {
        return;
    }
    depth = qn_fuzz_json_depth(json_parser_get_root(parser), QN_JSON_MAX_DEPTH);
    if (depth > QN_JSON_MAX_DEPTH) {
        qn_fuzz_fail("qn_json_check_bounds() let through JSON that json-glib parses deeper "
                     "than %u", QN_JSON_MAX_DEPTH);
    }
}
