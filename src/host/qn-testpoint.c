#include "config.h"

#include "qn-testpoint.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

void
qn_test_crash_point(const char *name)
{
    const char *want = g_getenv("QEMU_NUMA_TEST_CRASH");
    const char *pause = g_getenv("QEMU_NUMA_TEST_PAUSE");

    g_assert(name != NULL);
    if (want != NULL && strcmp(want, name) == 0) {
        kill(getpid(), SIGKILL);
    }
    if (pause != NULL && strcmp(pause, name) == 0) {
        /* raise(), not kill(getpid()): directed at this thread, the stop takes effect before
         * the next line runs. A process-directed SIGSTOP let a reservation thread go on into
         * fallocate, take a page and come back with EINTR. The whole process stops (every
         * thread) until the test sends SIGCONT. */
        raise(SIGSTOP);
    }
}
