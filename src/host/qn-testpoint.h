/* Test-only crash and pause points, called at each step of a launch. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * qn_test_crash_point:
 * @name: the step ("before-plan", "after-plan", "reserving", "after-reserve", "before-exec",
 *   and in src/host/qn-reserve.c the reservation's own steps)
 *
 * Test-only: when QEMU_NUMA_TEST_CRASH equals @name, the process SIGKILLs itself here, so tests
 * prove that a crash at each step leaks nothing. When QEMU_NUMA_TEST_PAUSE equals @name, it
 * SIGSTOPs itself (every thread) instead, so a test can change the host at that exact step
 * (take hugepages, fill the state directory) and then send SIGCONT. Its own file, so that the
 * reservation (qn-reserve.c) and the launch (qn-launch.c) both call it without including each
 * other.
 */
void qn_test_crash_point(const char *name);

G_END_DECLS
