/* libFuzzer entry points shared by the fuzz targets (tests/fuzz/fuzz-*.c) and the replay
 * driver (tests/fuzz/replay.c) that `make check` runs over each target's corpus. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <glib.h>

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
