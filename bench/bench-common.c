#include "config.h"

#include "bench-common.h"

#include <math.h>

#define GIB_PAGES 512 /* 2M pages in a GiB */

GArray *
bench_trace_new(double cap_pages, guint count, guint32 seed)
{
    /* flavor mix: vCPUs and GiB; the last ones are larger than most nodes */
    static const struct {
        guint vcpus, gib, weight;
    } flavors[] = {
        { 1, 1, 20 }, { 2, 4, 20 }, { 4, 8, 18 }, { 8, 16, 14 }, { 16, 32, 10 },
        { 16, 64, 6 }, { 32, 128, 6 }, { 64, 256, 4 }, { 64, 512, 2 },
    };
    GRand *rng = g_rand_new_with_seed(seed);
    GArray *trace = g_array_new(FALSE, FALSE, sizeof(BenchArrival));
    guint wsum = 0;
    double mean_pages = 0, t = 0, mean_life;

    for (guint i = 0; i < G_N_ELEMENTS(flavors); i++) {
        wsum += flavors[i].weight;
    }
    for (guint i = 0; i < G_N_ELEMENTS(flavors); i++) {
        mean_pages += (double)flavors[i].weight / wsum * flavors[i].gib * GIB_PAGES;
    }
    /* offered load 1.5 x capacity: runs to saturation */
    mean_life = 1.5 * cap_pages / mean_pages;
    for (guint i = 0; i < count; i++) {
        BenchArrival a;
        guint w = (guint)g_rand_int_range(rng, 0, (gint32)wsum);
        guint f = 0;

        while (w >= flavors[f].weight) {
            w -= flavors[f].weight;
            f++;
        }
        t += -log(1.0 - g_rand_double(rng));
        a.t = t;
        a.life = -log(1.0 - g_rand_double(rng)) * mean_life;
        a.vcpus = flavors[f].vcpus;
        a.pages = (guint64)flavors[f].gib * GIB_PAGES;
        g_array_append_val(trace, a);
    }
    g_rand_free(rng);
    return trace;
}

static gint
bench_cmp_double(gconstpointer a, gconstpointer b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

double
bench_quantile(GArray *v, double q)
{
    if (v->len == 0) {
        return 0;
    }
    g_array_sort(v, bench_cmp_double);
    return g_array_index(v, double, (guint)(q * (v->len - 1) + 0.5));
}
