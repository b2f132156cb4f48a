/* Launch benchmark: qemu-numa against plain qemu-system-x86_64 given the backend qemu-numa
 * would give it, and our reservation against the kernel's fastest ways to allocate the same
 * hugepages, all measured in one run. Needs root (hugepages, a hugetlbfs mount).
 *
 * Usage: bench-launch [--smoke] QEMU-NUMA-BINARY HUGETLBFS-2M-MOUNT */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <numa.h>
#include <numaif.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gio/gio.h>

#include "qn-argv.h"
#include "qn-config.h"
#include "qn-plan.h"
#include "qn-reserve.h"
#include "qn-size.h"
#include "qn-sysfs.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static double
now_s(void)
{
    return (double)g_get_monotonic_time() / 1e6;
}

/* Seconds from spawn to the QMP greeting on @sock; then quit QEMU and reap it. */
static double
time_to_greeting(const char *const *argv, const char *const *envp, const char *sock)
{
    double t0 = now_s(), t = -1;
    GPid pid;
    struct sockaddr_un addr = { .sun_family = AF_UNIX };

    unlink(sock);
    g_strlcpy(addr.sun_path, sock, sizeof(addr.sun_path));
    if (!g_spawn_async(NULL, (gchar **)argv, (gchar **)envp,
                       G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, &pid,
                       NULL)) {
        return -1;
    }
    while (now_s() - t0 < 60) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        char buf[256];

        if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
            read(fd, buf, sizeof(buf)) > 0) {
            t = now_s() - t0;
            {
                /* QEMU drops queued commands of a client that hangs up: read until it closes */
                const char *q = "{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"quit\"}\n";
                struct timeval tv = { 10, 0 };

                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
                if (write(fd, q, strlen(q)) < 0) {
                    kill(pid, SIGTERM);
                }
                while (read(fd, buf, sizeof(buf)) > 0) {
                }
            }
            close(fd);
            break;
        }
        close(fd);
        g_usleep(500);
    }
    if (t < 0) {
        kill(pid, SIGKILL);
    }
    waitpid(pid, NULL, 0);
    return t;
}

static gint
cmp_d(gconstpointer a, gconstpointer b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double
gib_per_s(guint64 bytes, double secs)
{
    return (double)bytes / (1 << 30) / secs;
}

/* The kernel's paths, one thread, same node: fallocate under set_mempolicy, and
 * mmap + mbind + MADV_POPULATE_WRITE; then memset bandwidth, the ceiling (pages are zeroed). */
static double
kernel_fallocate(const char *dir, guint64 bytes)
{
    struct bitmask *m = numa_allocate_nodemask();
    g_autofree gchar *tmpl = g_strdup_printf("%s/bench-XXXXXX", dir);
    int fd;
    double t0, t;

    numa_bitmask_setbit(m, 0);
    set_mempolicy(MPOL_BIND, m->maskp, m->size + 1);
    fd = g_mkstemp(tmpl);
    unlink(tmpl);
    t0 = now_s();
    if (fallocate(fd, 0, 0, (off_t)bytes) != 0) {
        t = -1;
    } else {
        t = now_s() - t0;
    }
    close(fd);
    set_mempolicy(MPOL_DEFAULT, NULL, 0);
    numa_free_nodemask(m);
    return t < 0 ? 0 : gib_per_s(bytes, t);
}

static double
kernel_populate(const char *dir, guint64 bytes)
{
    struct bitmask *m = numa_allocate_nodemask();
    g_autofree gchar *tmpl = g_strdup_printf("%s/bench-XXXXXX", dir);
    int fd = g_mkstemp(tmpl);
    void *p;
    double t0, t = -1;

    unlink(tmpl);
    numa_bitmask_setbit(m, 0);
    if (ftruncate(fd, (off_t)bytes) == 0) {
        p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p != MAP_FAILED) {
            mbind(p, bytes, MPOL_BIND, m->maskp, m->size + 1, 0);
            t0 = now_s();
            if (madvise(p, bytes, MADV_POPULATE_WRITE) == 0) {
                t = now_s() - t0;
            }
            munmap(p, bytes);
        }
    }
    close(fd);
    numa_free_nodemask(m);
    return t < 0 ? 0 : gib_per_s(bytes, t);
}

static double
memset_bw(guint64 bytes)
{
    char *p = g_malloc(bytes);
    double t0, t;

    memset(p, 1, bytes); /* fault it in first */
    t0 = now_s();
    memset(p, 0, bytes);
    t = now_s() - t0;
    g_free(p);
    return gib_per_s(bytes, t);
}

/* Our reservation path (qn_reservation_make) for one guest node of @bytes on node 0. */
static double
ours_reserve(const char *dir, guint64 bytes, double *ret_plan_us)
{
    g_autoptr(QnTopology) topo = qn_topology_load("/sys", "/proc", NULL);
    g_autoptr(QnConfig) cfg = qn_config_new_default();
    g_autofree gchar *m = g_strdup_printf("%" G_GUINT64_FORMAT "M", bytes >> 20);
    const char *argv[] = { "qemu", "-m", m, NULL };
    g_autoptr(QnQemuArgv) qa = qn_qemu_argv_parse(argv, NULL);
    g_autoptr(QnPlan) plan = NULL;
    g_autoptr(QnReservation) r = NULL;
    double t0;

    cfg->hugepage_size = 2 * QN_MiB;
    g_free(cfg->hugetlbfs);
    cfg->hugetlbfs = g_strdup(dir);
    t0 = now_s();
    plan = qn_plan_compute(topo, NULL, qa, cfg, NULL);
    *ret_plan_us = (now_s() - t0) * 1e6;
    if (plan == NULL || plan->kind != QN_PLAN_ALIGNED) {
        return 0;
    }
    t0 = now_s();
    r = qn_reservation_make(plan, topo, "/sys", NULL);
    return r ? gib_per_s(bytes, now_s() - t0) : 0;
}

int
main(int argc, char **argv)
{
    gboolean smoke = argc > 1 && strcmp(argv[1], "--smoke") == 0;
    const char *qn, *dir;
    static const guint gib_sizes[] = { 1, 4, 8 };
    guint reps;
    g_autofree gchar *tmp = g_dir_make_tmp("qn-bench-XXXXXX", NULL);
    g_autofree gchar *sock = g_build_filename(tmp, "qmp.sock", NULL);
    g_autofree gchar *state = g_build_filename(tmp, "state", NULL);
    g_autofree gchar *qmparg = g_strdup_printf("unix:%s,server=on,wait=off", sock);
    g_autofree gchar *qemu = g_find_program_in_path("qemu-system-x86_64");

    if (smoke) {
        argv++;
        argc--;
    }
    if (argc != 3 || qemu == NULL) {
        g_printerr("usage: bench-launch [--smoke] QEMU-NUMA HUGETLBFS-2M-MOUNT\n");
        return 2;
    }
    qn = argv[1];
    dir = argv[2];
    reps = smoke ? 1 : 7;
    printf("## Launch: exec to QMP greeting (median of %u alternating runs each)\n\n", reps);
    printf("| guest | plain QEMU (s) | qemu-numa (s) | ratio median | ratio min | ratio max |\n"
           "|---|---|---|---|---|---|\n");
    for (guint s = 0; s < (smoke ? 1 : G_N_ELEMENTS(gib_sizes)); s++) {
        guint gib = gib_sizes[s];
        g_autofree gchar *m = g_strdup_printf("%uG", gib);
        g_autofree gchar *obj = g_strdup_printf(
            "memory-backend-file,id=ram0,size=%uG,mem-path=%s,share=on,prealloc=on,"
            "host-nodes=0,policy=bind", gib, dir);
        const char *plain[] = { qemu, "-machine", "pc,memory-backend=ram0", "-m", m, "-object",
                                obj, "-nodefaults", "-display", "none", "-S", "-qmp", qmparg,
                                NULL };
        const char *ours[] = { qn, "-machine", "pc", "-m", m, "-nodefaults", "-display", "none",
                               "-S", "-qmp", qmparg, NULL };
        g_autofree gchar *e1 = g_strdup_printf("QEMU_NUMA_STATE_DIR=%s", state);
        g_autofree gchar *e2 = g_strdup_printf("QEMU_NUMA_HUGETLBFS=%s", dir);
        const char *env[] = { e1, e2, "QEMU_NUMA_HUGEPAGE_SIZE=2M", "QEMU_NUMA_CONFIG=/dev/null",
                              "PATH=/usr/bin:/bin", NULL };
        g_autoptr(GArray) a = g_array_new(FALSE, FALSE, sizeof(double));
        g_autoptr(GArray) b = g_array_new(FALSE, FALSE, sizeof(double));
        g_autoptr(GArray) ratio = g_array_new(FALSE, FALSE, sizeof(double));

        for (guint i = 0; i < reps; i++) {
            double tp = time_to_greeting(plain, env, sock);
            double tq = time_to_greeting(ours, env, sock);
            double rr = tq / tp;

            g_array_append_val(a, tp);
            g_array_append_val(b, tq);
            g_array_append_val(ratio, rr);
            g_usleep(200000); /* let the monitor drop the entry */
        }
        g_array_sort(a, cmp_d);
        g_array_sort(b, cmp_d);
        g_array_sort(ratio, cmp_d);
        printf("| %u GiB 2M pages | %.3f | %.3f | %.3f | %.3f | %.3f |\n", gib,
               g_array_index(a, double, reps / 2), g_array_index(b, double, reps / 2),
               g_array_index(ratio, double, reps / 2), g_array_index(ratio, double, 0),
               g_array_index(ratio, double, reps - 1));
        fflush(stdout);
    }
    {
        guint64 bytes = (smoke ? 1ULL : 4ULL) << 30;
        guint rounds = smoke ? 1 : 5;
        double plan_us = 0;
        g_autoptr(GArray) o = g_array_new(FALSE, FALSE, sizeof(double));
        g_autoptr(GArray) f = g_array_new(FALSE, FALSE, sizeof(double));
        g_autoptr(GArray) q = g_array_new(FALSE, FALSE, sizeof(double));
        g_autoptr(GArray) w = g_array_new(FALSE, FALSE, sizeof(double));
        double ours_bw, fa, po, ms, best;

        /* alternating rounds, medians: one run of each swung by +-15% here */
        for (guint i = 0; i < rounds; i++) {
            double v;

            v = ours_reserve(dir, bytes, &plan_us);
            g_array_append_val(o, v);
            v = kernel_fallocate(dir, bytes);
            g_array_append_val(f, v);
            v = kernel_populate(dir, bytes);
            g_array_append_val(q, v);
            v = memset_bw(bytes);
            g_array_append_val(w, v);
        }
        g_array_sort(o, cmp_d);
        g_array_sort(f, cmp_d);
        g_array_sort(q, cmp_d);
        g_array_sort(w, cmp_d);
        ours_bw = g_array_index(o, double, rounds / 2);
        fa = g_array_index(f, double, rounds / 2);
        po = g_array_index(q, double, rounds / 2);
        ms = g_array_index(w, double, rounds / 2);
        best = MAX(fa, po);

        printf("\n## Reservation of %" G_GUINT64_FORMAT " GiB of 2M pages on node 0, one thread "
               "(median of %u alternating rounds)\n\n", bytes >> 30, rounds);
        printf("| path | GiB/s | vs kernel's best |\n|---|---|---|\n");
        printf("| qemu-numa (qn_reservation_make: allocate + verify with move_pages) | %.2f | "
               "%.2f |\n", ours_bw, ours_bw / best);
        printf("| kernel: fallocate under set_mempolicy | %.2f | %.2f |\n", fa, fa / best);
        printf("| kernel: mmap + mbind + MADV_POPULATE_WRITE | %.2f | %.2f |\n", po, po / best);
        printf("| memset bandwidth (the ceiling: every page is zeroed) | %.2f | %.2f |\n", ms,
               ms / best);
        printf("\nplanner: %.0f us for this plan\n", plan_us);
    }
    {
        const char *rm[] = { "rm", "-rf", tmp, NULL };

        g_spawn_sync(NULL, (gchar **)rm, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL,
                     NULL);
    }
    return 0;
}
