/* What the placement and fleet benchmarks share: the VM arrival/departure trace and quantiles.
 * One copy, so the fleet (bench/fleet.c) runs exactly the placement benchmark's trace. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* One VM of the trace: arrives at @t, lives @life (both in mean inter-arrival times), asks
 * @vcpus vCPUs and @pages 2M pages. */
typedef struct {
    double t;
    double life;
    guint vcpus;
    guint64 pages;
} BenchArrival;

/**
 * bench_trace_new:
 * @cap_pages: the capacity the trace is scaled to, in 2M pages (one host's, or a fleet's)
 * @count: arrivals
 * @seed: the GRand seed; the same seed and capacity give the same trace
 *
 * Poisson arrivals of a flavor mix from 1 vCPU / 1 GiB to 64 vCPUs / 512 GiB (the largest
 * bigger than most nodes), exponential lifetimes with the offered load at 1.5 x @cap_pages,
 * so a run reaches saturation.
 * Returns: (transfer full): a GArray of BenchArrival, by arrival time.
 */
GArray *bench_trace_new(double cap_pages, guint count, guint32 seed);

/**
 * bench_quantile:
 * The @q quantile (0..1, nearest rank) of the doubles in @v, which it sorts; 0 when empty.
 */
double bench_quantile(GArray *v, double q);

G_END_DECLS
