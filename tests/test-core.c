/* Unit tests of the pure core: sets, sizes, keyval, sysfs/proc parsers, settings, argv model,
 * planner choices (each with the reason the answer is right). */
#include "config.h"

#include <string.h>

#include "qn-argv.h"
#include "qn-bitmap.h"
#include "qn-config.h"
#include "qn-error.h"
#include "qn-json.h"
#include "qn-keyval.h"
#include "qn-ledger.h"
#include "qn-migrate-args.h"
#include "qn-plan.h"
#include "qn-plan-json.h"
#include "qn-qemu-options.h"
#include "qn-rewrite.h"
#include "qn-reserve.h"
#include "qn-size.h"
#include "qn-text.h"
#include "qn-sysfs.h"
#include "qn-topology.h"

static const char *srcdir;

static void
test_bitmap_list(void)
{
    static const struct {
        const char *in, *out;
    } ok[] = {
        { "0-3,8-11\n", "0-3,8-11" }, { "5", "5" }, { "", "" }, { "\n", "" },
        { "0,2,4-5", "0,2,4-5" },     { "1,0", "0-1" }, { " 7 ", "7" },
    };
    static const char *const bad[] = { "a", "3-1", "1,", ",1", "1--2", "8192", "0-8192", "1 2" };

    for (guint i = 0; i < G_N_ELEMENTS(ok); i++) {
        g_autoptr(GError) e = NULL;
        g_autoptr(QnBitmap) b = qn_bitmap_parse_list(ok[i].in, &e);
        g_autofree gchar *s = NULL;

        g_assert_no_error(e);
        s = qn_bitmap_format_list(b, ",");
        g_assert_cmpstr(s, ==, ok[i].out);
    }
    for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) e = NULL;
        g_autoptr(QnBitmap) b = qn_bitmap_parse_list(bad[i], &e);

        g_assert_null(b);
        g_assert_error(e, QN_ERROR, QN_ERROR_TOPOLOGY);
    }
}

static void
test_bitmap_mask(void)
{
    g_autoptr(QnBitmap) b = qn_bitmap_parse_mask("00000001,00000003\n", NULL);
    g_autofree gchar *s = qn_bitmap_format_list(b, ",");

    g_assert_cmpstr(s, ==, "0-1,32");
    g_assert_cmpuint(qn_bitmap_count(b), ==, 3);
    g_assert_null(qn_bitmap_parse_mask("xyz", NULL));
}

static void
test_size(void)
{
    static const struct {
        const char *in;
        guint64 unit, want;
    } ok[] = {
        { "8G", 1, 8ULL << 30 },  { "512", QN_MiB, 512ULL << 20 }, { "512", 1, 512 },
        { "1.5G", 1, 3ULL << 29 }, { "2m", 1, 2ULL << 20 },         { "0x1000", 1, 4096 },
        { "4k", 1, 4096 },         { "1T", 1, 1ULL << 40 },          { "16B", QN_MiB, 16 },
    };
    static const char *const bad[] = { "", "12Q", "G", "1.G", "-1", " 8G", "8G ", "0x1G",
                                       "1.3B", "99999999999999999999", "16E" };

    for (guint i = 0; i < G_N_ELEMENTS(ok); i++) {
        guint64 v = 0;
        g_autoptr(GError) e = NULL;

        g_assert_true(qn_size_parse(ok[i].in, ok[i].unit, &v, &e));
        g_assert_cmpuint(v, ==, ok[i].want);
    }
    for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
        guint64 v = 7;
        g_autoptr(GError) e = NULL;

        g_assert_false(qn_size_parse(bad[i], 1, &v, &e));
        g_assert_error(e, QN_ERROR, QN_ERROR_BAD_ARGV);
        g_assert_cmpuint(v, ==, 7); /* ret_* untouched on error */
    }
    {
        g_autofree gchar *a = qn_size_format(8ULL << 30);
        g_autofree gchar *b = qn_size_format(1536ULL << 20);
        g_autofree gchar *c = qn_size_format(1000);

        g_assert_cmpstr(a, ==, "8G");
        g_assert_cmpstr(b, ==, "1536M");
        g_assert_cmpstr(c, ==, "1000");
    }
}

static void
test_keyval(void)
{
    g_autoptr(QnKeyval) kv = qn_keyval_parse("node,nodeid=0,cpus=0-1,cpus=4,name=a,,b,flag",
                                             "type", NULL);
    g_autofree gchar *esc = qn_keyval_escape("a,b");

    g_assert_nonnull(kv);
    g_assert_cmpstr(qn_keyval_get(kv, "type"), ==, "node");
    g_assert_cmpuint(qn_keyval_count(kv, "cpus"), ==, 2);
    g_assert_cmpstr(qn_keyval_get(kv, "cpus"), ==, "4");
    g_assert_cmpstr(qn_keyval_get(kv, "name"), ==, "a,b");
    g_assert_cmpstr(qn_keyval_get(kv, "flag"), ==, "on");
    g_assert_cmpstr(esc, ==, "a,,b");
    g_assert_null(qn_keyval_parse("a,=b", NULL, NULL));
}

static void
test_parsers(void)
{
    g_autoptr(GArray) row = qn_parse_distance_row("10 11 20 20\n", NULL);
    guint64 total, fr;
    const char *mi =
        "Node 0 MemTotal:        4942036 kB\nNode 0 MemFree:         1409648 kB\n"
        "Node 0 MemUsed:         3532388 kB\n";
    const char *mountinfo =
        "22 1 0:21 / / rw - ext4 /dev/vda rw\n"
        "42 24 0:39 / /dev/huge\\040pages rw,relatime shared:5 - hugetlbfs none rw,pagesize=2M\n"
        "43 24 0:40 / /mnt/1g rw - hugetlbfs none rw,pagesize=1024M\n"
        "44 24 0:41 / /mnt/dflt rw - hugetlbfs none rw\n"
        "garbage\n";
    g_autoptr(GPtrArray) mounts = qn_parse_mountinfo_hugetlbfs(mountinfo, 2 * QN_MiB);
    g_autoptr(QnBitmap) cpus = NULL;
    g_autoptr(QnBitmap) mems = NULL;

    g_assert_cmpuint(row->len, ==, 4);
    g_assert_cmpuint(g_array_index(row, guint, 2), ==, 20);
    g_assert_null(qn_parse_distance_row("10 256", NULL));
    g_assert_true(qn_parse_node_meminfo(mi, &total, &fr, NULL));
    g_assert_cmpuint(total, ==, 4942036ULL << 10);
    g_assert_cmpuint(fr, ==, 1409648ULL << 10);
    g_assert_false(qn_parse_node_meminfo("Node 0 MemTotal: x kB\n", &total, &fr, NULL));
    g_assert_cmpuint(qn_parse_hugepage_dirname("hugepages-2048kB"), ==, 2 * QN_MiB);
    g_assert_cmpuint(qn_parse_hugepage_dirname("hugepages-1048576kB"), ==, QN_GiB);
    g_assert_cmpuint(qn_parse_hugepage_dirname("hugepages-kB"), ==, 0);
    g_assert_cmpuint(mounts->len, ==, 3);
    g_assert_cmpstr(((QnHugetlbfsMount *)mounts->pdata[0])->path, ==, "/dev/huge pages");
    g_assert_cmpuint(((QnHugetlbfsMount *)mounts->pdata[1])->page_size, ==, QN_GiB);
    g_assert_cmpuint(((QnHugetlbfsMount *)mounts->pdata[2])->page_size, ==, 2 * QN_MiB);
    g_assert_true(qn_parse_status_allowed("Name:\tx\nCpus_allowed_list:\t0-3\n"
                                          "Mems_allowed_list:\t1\n", &cpus, &mems, NULL));
    g_assert_true(qn_bitmap_test(mems, 1));
    g_assert_false(qn_bitmap_test(mems, 0));
    {
        /* a repeated line: the last wins, and the first's set is freed (found by fuzzing:
         * ASan's leak check in CI runs this) */
        g_autoptr(QnBitmap) c2 = NULL;
        g_autoptr(QnBitmap) m2 = NULL;

        g_assert_true(qn_parse_status_allowed("Cpus_allowed_list:\t0\nCpus_allowed_list:\t2\n"
                                              "Mems_allowed_list:\t0\nMems_allowed_list:\t1\n",
                                              &c2, &m2, NULL));
        g_assert_true(qn_bitmap_test(c2, 2) && !qn_bitmap_test(c2, 0));
        g_assert_true(qn_bitmap_test(m2, 1) && !qn_bitmap_test(m2, 0));
    }
    g_assert_cmpuint(qn_parse_meminfo_hugepagesize("Hugepagesize:       2048 kB\n"), ==,
                     2 * QN_MiB);
    {
        /* two mappings: 4K pages on nodes 0 and 1, 2M hugepages on node 1 */
        g_autoptr(GHashTable) m = qn_parse_numa_maps(
            "7f00 bind:1 file=/proc/self/fd/5 huge dirty=64 N1=64 kernelpagesize_kB=2048\n"
            "5600 default file=/usr/bin/qemu anon=3 N0=2 N1=1 kernelpagesize_kB=4\n"
            "ffff default stack\n");

        g_assert_cmpuint(GPOINTER_TO_SIZE(g_hash_table_lookup(m, GUINT_TO_POINTER(1))), ==,
                         64 * 2 * QN_MiB + 4096);
        g_assert_cmpuint(GPOINTER_TO_SIZE(g_hash_table_lookup(m, GUINT_TO_POINTER(0))), ==,
                         2 * 4096);
    }
    {
        /* one backend's mapping, told apart by its length (32M), then two of 8M: not told */
        const char *maps = "7f0000000000-7f0002000000 rw-p 00000000 00:00 0 \n"
                           "7f0002000000-7f0002001000 ---p 00000000 00:00 0 \n"
                           "7f1000000000-7f1000800000 rw-p 00000000 00:00 0 \n"
                           "7f2000000000-7f2000800000 rw-s 00000000 00:0e 7 /dev/hugepages/x\n";
        const char *numa = "7f0000000000 default anon=8192 dirty=8192 N0=6000 N1=2192 "
                           "kernelpagesize_kB=4\n"
                           "7f1000000000 bind:1 anon=10 N1=10 kernelpagesize_kB=4\n";
        guint matches = 0;
        g_autoptr(GHashTable) m = qn_parse_numa_maps_mapping(maps, numa, 32 * QN_MiB,
                                                             &matches);

        g_assert_cmpuint(matches, ==, 1);
        g_assert_cmpuint(g_hash_table_size(m), ==, 2);
        g_assert_cmpuint(GPOINTER_TO_SIZE(g_hash_table_lookup(m, GUINT_TO_POINTER(1))), ==,
                         2192 * 4096);
        g_assert_null(qn_parse_numa_maps_mapping(maps, numa, 8 * QN_MiB, &matches));
        g_assert_cmpuint(matches, ==, 2);
        g_assert_null(qn_parse_numa_maps_mapping(maps, numa, 1 * QN_MiB, &matches));
        g_assert_cmpuint(matches, ==, 0);
        g_assert_null(qn_parse_numa_maps_mapping("garbage\n-\nzz-1 x\n", "", 0, &matches));
    }
}

/* query-memory-devices as QEMU 7.2 answers it (a hotplugged DIMM, a virtio-mem device, a
 * malformed member skipped) into the entry, measured, and back through its JSON reader. */
static void
test_entry_memory_devices(void)
{
    g_autoptr(JsonNode) reply = json_from_string(
        "[{\"type\": \"dimm\", \"data\": {\"id\": \"dimm1\", \"memdev\": \"/objects/hp1\","
        " \"node\": 1, \"size\": 33554432, \"slot\": 0, \"addr\": 4294967296,"
        " \"hotplugged\": true, \"hotpluggable\": true}},"
        " {\"type\": \"virtio-mem\", \"data\": {\"id\": \"vm0\", \"memdev\": \"/objects/m0\","
        " \"node\": 0, \"size\": 0, \"requested-size\": 0, \"max-size\": 8388608,"
        " \"block-size\": 2097152, \"memaddr\": 0}},"
        " {\"type\": \"dimm\", \"data\": 7}, 3]", NULL);
    g_autoptr(GPtrArray) devs = qn_entry_memory_devices_from_qmp(reply);
    g_autoptr(GPtrArray) again = qn_entry_memory_devices_from_qmp(reply);
    g_autoptr(QnLedgerEntry) e = NULL;
    const char *maps = "7f0000000000-7f0002000000 rw-p 00000000 00:00 0 \n";
    const char *numa = "7f0000000000 default anon=16 N1=16 kernelpagesize_kB=4\n";
    const QnEntryMemoryDevice *d;
    g_autoptr(JsonNode) j = NULL;
    g_autoptr(QnLedgerEntry) back = NULL;
    g_autoptr(JsonNode) minimal = json_from_string("{\"pid\": 42}", NULL);

    g_assert_null(qn_entry_memory_devices_from_qmp(NULL));
    g_assert_nonnull(devs);
    g_assert_cmpuint(devs->len, ==, 2);
    g_assert_true(qn_entry_memory_devices_equal(devs, again));
    qn_entry_memory_devices_measure(devs, maps, numa);
    d = g_ptr_array_index(devs, 0);
    g_assert_cmpstr(d->memdev, ==, "hp1");
    g_assert_cmpint(d->node, ==, 1);
    g_assert_cmpint(d->hotplugged, ==, 1);
    g_assert_cmpuint(d->mappings, ==, 1);
    g_assert_cmpuint(d->placement->len, ==, 1);
    g_assert_cmpuint(g_array_index(d->placement, QnEntryNodeBytes, 0).bytes, ==, 16 * 4096);
    d = g_ptr_array_index(devs, 1);
    g_assert_cmpuint(d->backend_size, ==, 8 * QN_MiB); /* virtio-mem: its whole region */
    g_assert_cmpint(d->hotplugged, ==, -1);
    g_assert_null(d->placement);
    g_ptr_array_remove_index(again, 1);
    g_assert_false(qn_entry_memory_devices_equal(devs, again));
    e = qn_ledger_entry_from_json(minimal, NULL); /* only "pid" is required */
    g_assert_null(e->memory_devices);
    qn_ledger_entry_set_memory_devices(e, g_ptr_array_ref(devs));
    j = qn_ledger_entry_to_json(e, FALSE);
    back = qn_ledger_entry_from_json(j, NULL);
    g_assert_nonnull(back);
    g_assert_true(qn_entry_memory_devices_equal(back->memory_devices, devs));
    d = g_ptr_array_index(back->memory_devices, 0);
    g_assert_cmpuint(d->mappings, ==, 1);
    g_assert_cmpuint(g_array_index(d->placement, QnEntryNodeBytes, 0).host_node, ==, 1);
    g_assert_false(json_object_has_member(back->extra, "memory_devices"));
}

static void
test_config(void)
{
    const char *env[] = { "QEMU_NUMA_POLICY=restricted", "QEMU_NUMA_GUEST_NODES=4",
                          "PATH=/bin", NULL };
    const char *kf = "[qemu-numa]\npolicy=single-numa-node\nmemory-mode=interleave\n"
                     "hugepage-size=1G\nreserve-threads=4\npool=0:64G,1:2G@1G\n";
    g_autoptr(GError) e = NULL;
    g_autoptr(QnConfig) c = qn_config_load(kf, "test.conf", env, &e);

    g_assert_no_error(e);
    g_assert_cmpint(c->policy, ==, QN_POLICY_RESTRICTED); /* environment beats the file */
    g_assert_cmpint(c->memory_mode, ==, QN_MEMORY_MODE_INTERLEAVE);
    g_assert_cmpint(c->guest_nodes_mode, ==, QN_GUEST_NODES_FIXED);
    g_assert_cmpuint(c->guest_nodes, ==, 4);
    g_assert_cmpuint(c->hugepage_size, ==, QN_GiB);
    g_assert_cmpuint(c->reserve_threads, ==, 4);
    g_assert_cmpuint(c->pool->len, ==, 2);
    g_assert_cmpuint(g_array_index(c->pool, QnPoolSpec, 0).node, ==, 0);
    g_assert_cmpuint(g_array_index(c->pool, QnPoolSpec, 0).bytes, ==, 64 * QN_GiB);
    g_assert_cmpuint(g_array_index(c->pool, QnPoolSpec, 0).page_size, ==, 0);
    g_assert_cmpuint(g_array_index(c->pool, QnPoolSpec, 1).node, ==, 1);
    g_assert_cmpuint(g_array_index(c->pool, QnPoolSpec, 1).bytes, ==, 2 * QN_GiB);
    g_assert_cmpuint(g_array_index(c->pool, QnPoolSpec, 1).page_size, ==, QN_GiB);
    {
        const char *bad_env[] = { "QEMU_NUMA_POLIC=bind", NULL };
        g_autoptr(GError) e2 = NULL;
        g_autoptr(QnConfig) c2 = qn_config_load(NULL, "x", bad_env, &e2);

        g_assert_null(c2);
        g_assert_error(e2, QN_ERROR, QN_ERROR_BAD_CONFIG);
        g_assert_cmpstr(e2->message, ==, "unknown variable 'QEMU_NUMA_POLIC'");
    }
    {
        g_autoptr(GError) e3 = NULL;
        g_autoptr(QnConfig) c3 = qn_config_load("[qemu-numa]\nstate-dir=relative\n", "f.conf",
                                                NULL, &e3);

        g_assert_null(c3);
        g_assert_cmpstr(e3->message, ==, "f.conf: state-dir 'relative': invalid value, "
                                         "expected an absolute directory path");
    }
    {
        g_autoptr(GError) e4 = NULL;
        g_autoptr(QnConfig) c4 = qn_config_load("[other]\nx=1\n", "f.conf", NULL, &e4);

        g_assert_null(c4);
        g_assert_error(e4, QN_ERROR, QN_ERROR_BAD_CONFIG);
    }
}

static void
test_argv_libvirt(void)
{
    /* a real libvirt 9.0 command line, captured on Debian 12 (copied from shared/data) */
    g_autofree gchar *path = g_build_filename(srcdir, "tests", "data", "libvirt",
                                              "libvirt-9.0-numa-2cell.argv", NULL);
    g_autofree gchar *data = NULL;
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(QnQemuArgv) qa = NULL;
    g_autoptr(GError) e = NULL;
    g_auto(GStrv) back = NULL;

    g_assert_true(g_file_get_contents(path, &data, NULL, NULL));
    {
        g_auto(GStrv) lines = g_strsplit(data, "\n", -1);
        gboolean started = FALSE;

        for (guint i = 0; lines[i] != NULL; i++) {
            g_autofree gchar *l = g_strdup(lines[i]);
            g_auto(GStrv) words = NULL;

            if (g_str_has_suffix(l, " \\")) {
                l[strlen(l) - 2] = '\0';
            }
            if (!started && strstr(l, "qemu-numa") == NULL) {
                continue; /* the environment lines */
            }
            started = TRUE;
            if (l[0] == '\0' || !g_shell_parse_argv(l, NULL, &words, NULL)) {
                continue;
            }
            for (guint k = 0; words[k] != NULL; k++) {
                g_ptr_array_add(argv, g_strdup(words[k]));
            }
        }
    }
    g_ptr_array_add(argv, NULL);
    qa = qn_qemu_argv_parse((const char *const *)argv->pdata, &e);
    g_assert_no_error(e);
    g_assert_cmpstr(qa->name, ==, "numatest");
    g_assert_cmpuint(qa->ram_size, ==, 256ULL << 20); /* "-m 256": MiB */
    g_assert_cmpuint(qa->smp.cpus, ==, 2);
    g_assert_cmpuint(qa->numa_nodes->len, ==, 2);
    g_assert_cmpuint(qa->numa_dists->len, ==, 4);
    g_assert_cmpuint(qa->backends->len, ==, 2);
    g_assert_true(qa->start_paused);
    g_assert_cmpstr(((QnMemoryBackend *)qa->backends->pdata[1])->policy, ==, "interleave");
    back = qn_qemu_argv_to_strv(qa);
    g_assert_cmpuint(g_strv_length(back), ==, argv->len - 1);
    for (guint i = 0; back[i] != NULL; i++) {
        g_assert_cmpstr(back[i], ==, argv->pdata[i]); /* byte for byte */
    }
}

static void
test_argv_smp(void)
{
    static const struct {
        const char *smp;
        guint cpus, maxcpus, sockets, cores, threads;
    } cases[] = {
        { "8", 8, 8, 1, 8, 1 },
        { "cpus=4,maxcpus=8", 4, 8, 1, 8, 1 },
        { "sockets=2,cores=4,threads=2", 16, 16, 2, 4, 2 },
        { "2,sockets=2,dies=1,cores=1,threads=1", 2, 2, 2, 1, 1 },
    };

    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        const char *argv[] = { "qemu", "-smp", cases[i].smp, NULL };
        g_autoptr(GError) e = NULL;
        g_autoptr(QnQemuArgv) qa = qn_qemu_argv_parse(argv, &e);

        g_assert_no_error(e);
        g_assert_cmpuint(qa->smp.cpus, ==, cases[i].cpus);
        g_assert_cmpuint(qa->smp.maxcpus, ==, cases[i].maxcpus);
        g_assert_cmpuint(qa->smp.sockets, ==, cases[i].sockets);
        g_assert_cmpuint(qa->smp.cores, ==, cases[i].cores);
        g_assert_cmpuint(qa->smp.threads, ==, cases[i].threads);
    }
}

static QnTopology *
qn_fake(const char *name)
{
    g_autofree gchar *sysfs = g_build_filename(srcdir, "tests", "data", "sysfs", name, NULL);
    g_autofree gchar *proc = g_build_filename(srcdir, "tests", "data", "proc", "fake", NULL);
    g_autoptr(GError) e = NULL;
    QnTopology *t = qn_topology_load(sysfs, proc, &e);

    g_assert_no_error(e);
    return t;
}

/* The reservation workers' CPUs: a host node's own allowed CPUs; a CPU-less HBM node (Xeon Max
 * SNC4: nodes 8-15) borrows those of its nearest node by SLIT (node 8 -> 0 at 13, node 10 -> 2);
 * T is capped by reserve-threads and by the page count. */
static void
test_reserve_worker_cpus(void)
{
    g_autoptr(QnTopology) t = qn_fake("xeon-max-snc4");
    static const struct {
        const char *nodes;
        const char *cpus;
    } cases[] = {
        { "0", "0-13,112-125" },
        { "8", "0-13,112-125" },
        { "10", "28-41,140-153" },
        { "1,9", "14-27,126-139" },
        { "8,10", "0-13,28-41,112-125,140-153" },
    };

    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(QnBitmap) nodes = qn_bitmap_parse_list(cases[i].nodes, NULL);
        g_autoptr(QnBitmap) cpus = qn_reserve_worker_cpus(t, nodes);
        g_autofree gchar *got = qn_bitmap_format_list(cpus, ",");

        g_assert_cmpstr(got, ==, cases[i].cpus);
    }
    {
        g_autoptr(QnBitmap) nodes = qn_bitmap_parse_list("8", NULL);
        g_autoptr(QnBitmap) cpus = qn_reserve_worker_cpus(t, nodes);
        g_autoptr(QnBitmap) none = qn_bitmap_new();

        g_assert_cmpuint(qn_reserve_thread_count(cpus, 16, 1 << 20), ==, 16);
        g_assert_cmpuint(qn_reserve_thread_count(cpus, 64, 1 << 20), ==, 28);
        g_assert_cmpuint(qn_reserve_thread_count(cpus, 16, 3), ==, 3);
        g_assert_cmpuint(qn_reserve_thread_count(none, 16, 1 << 20), ==, 1);
    }
}

static void
test_topology_trees(void)
{
    static const struct {
        const char *name;
        guint nodes;
        guint cpus;
    } trees[] = {
        { "one-node", 1, 2 },    { "2x2", 4, 64 },           { "epyc-nps4", 8, 256 },
        { "8-socket", 8, 384 },  { "xeon-max-snc4", 16, 224 }, { "gh200x4", 36, 288 },
        { "sparse-ids", 4, 64 }, { "memless", 4, 36 },       { "no-1g", 2, 72 },
        { "sixty-four", 64, 512 },
    };

    for (guint i = 0; i < G_N_ELEMENTS(trees); i++) {
        g_autoptr(QnTopology) t = qn_fake(trees[i].name);

        g_assert_cmpuint(t->nodes->len, ==, trees[i].nodes);
        g_assert_cmpuint(t->cpus->len, ==, trees[i].cpus);
        for (guint a = 0; a < t->nodes->len; a++) {
            /* SLIT: 10 on the diagonal, symmetric */
            g_assert_cmpuint(t->distance[a * t->nodes->len + a], ==, 10);
            for (guint b = 0; b < t->nodes->len; b++) {
                g_assert_cmpuint(t->distance[a * t->nodes->len + b], ==,
                                 t->distance[b * t->nodes->len + a]);
            }
        }
    }
    {
        g_autoptr(QnTopology) t = qn_fake("sparse-ids");

        g_assert_nonnull(qn_topology_node(t, 5));
        g_assert_null(qn_topology_node(t, 1));
    }
    {
        g_autoptr(QnTopology) t = qn_fake("memless");

        g_assert_cmpuint(qn_topology_node(t, 1)->mem_total, ==, 0);
        g_assert_cmpuint(qn_bitmap_count(qn_topology_node(t, 3)->cpus), ==, 0);
    }
    {
        g_autoptr(QnTopology) t = qn_fake("no-1g");

        g_assert_cmpuint(qn_host_node_pool(qn_topology_node(t, 1), QN_GiB)->nr, ==, 0);
        g_assert_cmpuint(qn_host_node_pool(qn_topology_node(t, 0), QN_GiB)->nr, >, 0);
    }
}

static QnPlan *
qn_plan_for(const char *tree, const char *const *env, const char *const *args, GError **error)
{
    g_autoptr(QnTopology) t = qn_fake(tree);
    g_autoptr(QnConfig) c = qn_config_load(NULL, "t", env, NULL);
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autoptr(QnQemuArgv) qa = NULL;

    g_ptr_array_add(argv, (gpointer) "qemu");
    for (guint i = 0; args[i] != NULL; i++) {
        g_ptr_array_add(argv, (gpointer)args[i]);
    }
    g_ptr_array_add(argv, NULL);
    qa = qn_qemu_argv_parse((const char *const *)argv->pdata, NULL);
    g_assert_nonnull(qa);
    return qn_plan_compute(t, NULL, qa, c, error);
}

static guint
qn_host_of(const QnPlan *p, guint i)
{
    return (guint)qn_bitmap_next(((QnGuestNode *)p->guest_nodes->pdata[i])->host_nodes, 0);
}

static void
test_plan_choices(void)
{
    /* 2x2 (Xen's "Use neighbouring NUMA nodes" design): 10G fits no node; nodes 0+1 share a
     * socket (11), so not 0+2 (20). */
    {
        const char *args[] = { "-m", "10G", "-smp", "8", NULL };
        g_autoptr(QnPlan) p = qn_plan_for("2x2", NULL, args, NULL);
        g_autoptr(QnTopology) t = qn_fake("2x2");

        g_assert_cmpint(p->kind, ==, QN_PLAN_ALIGNED);
        g_assert_cmpuint(p->guest_nodes->len, ==, 2);
        g_assert_cmpuint(qn_topology_distance(t, qn_host_of(p, 0),
                                              qn_host_of(p, 1)), ==, 11);
        g_assert_cmpuint(p->distance[1], ==, 11); /* guest SLIT mirrors the host */
    }
    /* restricted refuses with QN_ERROR_NO_FIT; best-effort falls back and says why. */
    {
        const char *args[] = { "-m", "40G", NULL };
        const char *restricted[] = { "QEMU_NUMA_POLICY=restricted",
                                     "QEMU_NUMA_HUGEPAGE_SIZE=2M", NULL };
        const char *best[] = { "QEMU_NUMA_HUGEPAGE_SIZE=2M", "QEMU_NUMA_POLICY=best-effort",
                               NULL };
        g_autoptr(GError) e = NULL;
        g_autoptr(QnPlan) p = qn_plan_for("2x2", restricted, args, &e);
        g_autoptr(QnPlan) fb = NULL;

        g_assert_null(p);
        g_assert_error(e, QN_ERROR, QN_ERROR_NO_FIT);
        fb = qn_plan_for("2x2", best, args, NULL);
        g_assert_nonnull(fb);
        g_assert_cmpint(fb->kind, !=, QN_PLAN_PASSTHROUGH);
        g_assert_nonnull(fb->reason);
    }
    /* memless: a node without memory never backs a guest node. */
    for (guint gb = 1; gb <= 6; gb++) {
        g_autofree gchar *m = g_strdup_printf("%uG", gb);
        const char *args[] = { "-m", m, "-smp", "4", NULL };
        g_autoptr(QnPlan) p = qn_plan_for("memless", NULL, args, NULL);

        for (guint i = 0; p && p->kind == QN_PLAN_ALIGNED && i < p->guest_nodes->len; i++) {
            g_assert_false(qn_bitmap_test(((QnGuestNode *)p->guest_nodes->pdata[i])->host_nodes,
                                          1));
            g_assert_false(qn_bitmap_test(((QnGuestNode *)p->guest_nodes->pdata[i])->host_nodes,
                                          3));
        }
    }
    /* No even split of 13G fits 2x2 (2M free 8G/5.9G/2G/0, 1G free 4/2/4/1): guest nodes sized
     * to the nearest nodes with room, 0 and 1 (same socket), unevenly, before any fallback. */
    {
        const char *args[] = { "-m", "13G", "-smp", "8", NULL };
        g_autoptr(QnPlan) p = qn_plan_for("2x2", NULL, args, NULL);
        const QnGuestNode *g0, *g1;

        g_assert_cmpint(p->kind, ==, QN_PLAN_ALIGNED);
        g_assert_cmpuint(p->guest_nodes->len, ==, 2);
        g0 = p->guest_nodes->pdata[0];
        g1 = p->guest_nodes->pdata[1];
        g_assert_cmpuint(qn_host_of(p, 0), ==, 0);
        g_assert_cmpuint(qn_host_of(p, 1), ==, 1);
        g_assert_cmpuint(g0->bytes + g1->bytes, ==, 13 * QN_GiB);
        g_assert_cmpuint(g0->bytes, >, g1->bytes);
        g_assert_cmpuint(g0->bytes % (2 * QN_MiB), ==, 0);
        g_assert_cmpuint(qn_bitmap_count(g0->vcpus) + qn_bitmap_count(g1->vcpus), ==, 8);
        /* the uneven split, then filled nearest first by the locality stage */
        g_assert_nonnull(strstr(p->reason, "nearest"));
    }
    /* Deterministic: the same input, the same plan (JSON compared). */
    {
        const char *args[] = { "-m", "40G", "-smp", "16", NULL };
        g_autoptr(QnPlan) a = qn_plan_for("sixty-four", NULL, args, NULL);
        g_autoptr(QnPlan) b = qn_plan_for("sixty-four", NULL, args, NULL);
        g_autoptr(JsonNode) ja = qn_plan_to_json(a);
        g_autoptr(JsonNode) jb = qn_plan_to_json(b);

        g_assert_true(json_node_equal(ja, jb));
    }
}

/* The locality stage (qn-plan-locality.c, issue 19): a guest no node holds fills the node with
 * room first; interleave and a vfio-pci node leave the search's even split alone. */
static void
test_plan_locality(void)
{
    {
        /* 2x2, 2M free 8G/5.9G/2G/0: 8G + 2G on nodes 0+1, every vCPU with the 8G, node 1
         * memory-only */
        const char *args[] = { "-m", "10G", "-smp", "8", NULL };
        g_autoptr(QnPlan) p = qn_plan_for("2x2", NULL, args, NULL);
        const QnGuestNode *g0 = p->guest_nodes->pdata[0], *g1 = p->guest_nodes->pdata[1];

        g_assert_cmpuint(p->guest_nodes->len, ==, 2);
        g_assert_cmpuint(qn_host_of(p, 0), ==, 0);
        g_assert_cmpuint(qn_host_of(p, 1), ==, 1);
        g_assert_cmpuint(g0->bytes, ==, 8 * QN_GiB);
        g_assert_cmpuint(g1->bytes, ==, 2 * QN_GiB);
        g_assert_cmpuint(qn_bitmap_count(g0->vcpus), ==, 8);
        g_assert_cmpuint(qn_bitmap_count(g1->vcpus), ==, 0);
        g_assert_nonnull(strstr(p->reason, "nearest host node first"));
    }
    {
        const char *env[] = { "QEMU_NUMA_MEMORY_MODE=interleave", NULL };
        const char *args[] = { "-m", "10G", "-smp", "8", NULL };
        g_autoptr(QnPlan) p = qn_plan_for("2x2", env, args, NULL);

        g_assert_true(p->reason == NULL || strstr(p->reason, "nearest host node") == NULL);
    }
    {
        const char *args[] = { "-m", "24G", "-smp", "16", "-device", "vfio-pci,host=0000:41:00.0",
                               NULL };
        g_autoptr(QnPlan) p = qn_plan_for("epyc-nps4", NULL, args, NULL);

        g_assert_cmpuint(p->guest_nodes->len, ==, 4);
        for (guint i = 0; i < 4; i++) {
            g_assert_cmpuint(((QnGuestNode *)p->guest_nodes->pdata[i])->bytes, ==, 6 * QN_GiB);
        }
    }
}

static void
test_plan_json_roundtrip(void)
{
    const char *args[] = { "-m", "10G", "-smp", "8", NULL };
    g_autoptr(QnPlan) p = qn_plan_for("2x2", NULL, args, NULL);
    g_autoptr(JsonNode) j = qn_plan_to_json(p);
    g_autoptr(QnPlan) q = qn_plan_from_json(j, NULL);
    g_autofree gchar *a = qn_plan_summary(p);
    g_autofree gchar *b = qn_plan_summary(q);

    g_assert_cmpstr(a, ==, b);

    /* issue 16: the vCPU topology (hotplug sockets dealt in turn) and hotplug memory too; two
     * guest nodes fixed, so the split is even and the locality stage (which may leave a
     * memory-only node) stays out of it */
    {
        const char *const env2[] = { "QEMU_NUMA_GUEST_NODES=2", NULL };
        const char *args2[] = { "-m", "10G,slots=2,maxmem=12G", "-smp", "4,maxcpus=8",
                                "-object", "memory-backend-ram,id=d1,size=1G", "-device",
                                "pc-dimm,memdev=d1,node=1", NULL };
        g_autoptr(QnPlan) p2 = qn_plan_for("2x2", env2, args2, NULL);
        g_autoptr(JsonNode) j2 = qn_plan_to_json(p2);
        g_autoptr(QnPlan) q2 = qn_plan_from_json(j2, NULL);
        g_autofree gchar *a2 = qn_plan_summary(p2);
        g_autofree gchar *b2 = NULL;

        g_assert_nonnull(q2);
        b2 = qn_plan_summary(q2);
        g_assert_cmpstr(a2, ==, b2);
        g_assert_nonnull(strstr(a2, "sockets 0,2"));
        g_assert_nonnull(strstr(a2, "pc-dimm d1 -> guest 1, host 1"));
    }

    /* Hand-edited ledger plans: a member of the wrong type is an error naming it, never a
     * json-glib critical (g_test makes those fatal). Found by the ledger fuzz target. */
    {
        static const char *const bad[] = {
            "{\"kind\": {}}",
            "{\"kind\": \"aligned\", \"policy\": \"none\", \"memory_mode\": \"bind\", "
            "\"guest_topology\": \"auto\", \"reason\": [], \"guest_nodes\": []}",
            "{\"kind\": \"aligned\", \"policy\": \"none\", \"memory_mode\": \"bind\", "
            "\"guest_topology\": \"auto\", \"guest_nodes\": [{\"vcpus\": \"0\", "
            "\"mode\": \"bind\", \"memdev\": \"m\", \"bytes\": {}, \"host_nodes\": []}]}",
            "{\"kind\": \"aligned\", \"policy\": \"none\", \"memory_mode\": \"bind\", "
            "\"guest_topology\": \"auto\", \"guest_nodes\": [{\"vcpus\": \"0\", "
            "\"mode\": \"bind\", \"memdev\": \"m\", \"host_nodes\": [[0]]}]}",
        };

        for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
            g_autoptr(JsonNode) node = json_from_string(bad[i], NULL);
            g_autoptr(GError) error = NULL;
            g_autoptr(QnPlan) plan = qn_plan_from_json(node, &error);

            g_assert_null(plan);
            g_assert_error(error, QN_ERROR, QN_ERROR_LEDGER);
        }
    }
}

/* @args (NULL-terminated, no argv0) with "qemu" in front, parsed. */
static QnQemuArgv *
qn_parse_args(const char *const *args)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();

    g_ptr_array_add(argv, (gpointer) "qemu");
    for (guint i = 0; args[i] != NULL; i++) {
        g_ptr_array_add(argv, (gpointer)args[i]);
    }
    g_ptr_array_add(argv, NULL);
    return qn_qemu_argv_parse((const char *const *)argv->pdata, NULL);
}

/* Issue 14: a 2-guest-node VM's exec'd argv (the locality stage's 8G + 2G split, the vCPUs'
 * one socket on guest node 0, guest node 1 memory-only) -> qn_migrate_args() -> a destination's argv with
 * -incoming on another host (EPYC, guest-nodes=1): the planner keeps the guest nodes' ids,
 * backends, sizes and page sizes and chooses only host nodes. A plan of an argv without a
 * topology under -incoming is one node, pc.ram, "incoming", and reads back from JSON. */
static void
test_migrate_args(void)
{
    const char *args[] = { "-m", "10G", "-smp", "8", NULL };
    const char *paths[] = { "/proc/self/fd/10", "/proc/self/fd/11", NULL };
    const char *env1[] = { "QEMU_NUMA_GUEST_NODES=1", NULL };
    g_autoptr(QnPlan) p = qn_plan_for("2x2", NULL, args, NULL);
    QnRewriteInput in = { paths, NULL, FALSE };
    g_autoptr(QnQemuArgv) sqa = qn_parse_args(args);
    g_auto(GStrv) exec = qn_rewrite_qemu_argv(sqa, p, &in);
    g_autoptr(QnQemuArgv) qa = qn_qemu_argv_parse((const char *const *)exec, NULL);
    g_autoptr(GError) error = NULL;
    g_auto(GStrv) ma = NULL;
    g_autofree gchar *joined = NULL;
    g_autoptr(GPtrArray) dst = g_ptr_array_new();
    g_autoptr(QnPlan) d = NULL;

    g_assert_nonnull(qa);
    ma = qn_migrate_args(qa, p, &error);
    g_assert_no_error(error);
    joined = g_strjoinv(" ", ma);
    g_assert_cmpstr(joined, ==,
                    "-m 10G -smp 8 "
                    "-object memory-backend-memfd,id=qn-ram0,size=8589934592,hugetlb=on,"
                    "hugetlbsize=2097152 "
                    "-object memory-backend-memfd,id=qn-ram1,size=2147483648,hugetlb=on,"
                    "hugetlbsize=2097152 "
                    "-numa node,nodeid=0,memdev=qn-ram0 "
                    "-numa node,nodeid=1,memdev=qn-ram1 "
                    "-numa cpu,node-id=0,socket-id=0 "
                    "-numa dist,src=0,dst=0,val=10 -numa dist,src=0,dst=1,val=11 "
                    "-numa dist,src=1,dst=0,val=11 -numa dist,src=1,dst=1,val=10");
    for (guint i = 0; ma[i] != NULL; i++) {
        g_ptr_array_add(dst, ma[i]);
    }
    g_ptr_array_add(dst, (gpointer) "-incoming");
    g_ptr_array_add(dst, (gpointer) "defer");
    g_ptr_array_add(dst, NULL);
    d = qn_plan_for("epyc-nps4", env1, (const char *const *)dst->pdata, &error);
    g_assert_no_error(error);
    g_assert_cmpint(d->kind, ==, QN_PLAN_ALIGNED);
    g_assert_cmpuint(d->guest_nodes->len, ==, 2);
    for (guint i = 0; i < 2; i++) {
        const QnGuestNode *a = g_ptr_array_index(p->guest_nodes, i);
        const QnGuestNode *b = g_ptr_array_index(d->guest_nodes, i);

        g_assert_cmpstr(a->memdev, ==, b->memdev);
        g_assert_cmpuint(a->bytes, ==, b->bytes);
        g_assert_cmpuint(a->page_size, ==, b->page_size);
        g_assert_true(qn_bitmap_equal(a->vcpus, b->vcpus));
    }
    /* without a topology: one node, pc.ram, whatever guest-nodes=2 says */
    {
        const char *env2[] = { "QEMU_NUMA_GUEST_NODES=2", NULL };
        const char *plain[] = { "-m", "4G", "-smp", "4", "-incoming", "defer", NULL };
        g_autoptr(QnPlan) o = qn_plan_for("2x2", env2, plain, NULL);
        g_autoptr(JsonNode) j = qn_plan_to_json(o);
        g_autoptr(QnPlan) back = qn_plan_from_json(j, NULL);

        g_assert_cmpuint(o->guest_nodes->len, ==, 1);
        g_assert_cmpstr(((QnGuestNode *)o->guest_nodes->pdata[0])->memdev, ==, "pc.ram");
        g_assert_cmpint(o->guest_topology, ==, QN_GUEST_TOPOLOGY_INCOMING);
        g_assert_nonnull(back);
        g_assert_cmpint(back->guest_topology, ==, QN_GUEST_TOPOLOGY_INCOMING);
    }
}

/* qn_plan_new_fallback(): what qn-launch.c makes of an aligned plan whose reservation failed.
 * It keeps the plan's policy, mode and guest topology, nothing of its placement, and reads
 * back from the ledger's JSON as it was written. */
static void
test_plan_fallback(void)
{
    const char *args[] = { "-m", "10G", "-smp", "8", NULL };
    g_autoptr(QnPlan) p = qn_plan_for("2x2", NULL, args, NULL);
    g_autoptr(QnPlan) fb = NULL;
    g_autoptr(JsonNode) j = NULL;
    g_autoptr(QnPlan) back = NULL;
    g_autofree gchar *summary = NULL;

    g_assert_cmpint(p->kind, ==, QN_PLAN_ALIGNED);
    fb = qn_plan_new_fallback(p, "reservation failed: %s: memory left to the OS", "no pages");
    g_assert_cmpint(fb->kind, ==, QN_PLAN_FALLBACK);
    g_assert_cmpint(fb->policy, ==, p->policy);
    g_assert_cmpint(fb->mode, ==, p->mode);
    g_assert_cmpint(fb->guest_topology, ==, p->guest_topology);
    g_assert_cmpuint(fb->guest_nodes->len, ==, 0);
    g_assert_null(fb->hugetlbfs);
    g_assert_null(fb->distance);
    g_assert_false(fb->dedicated);
    g_assert_cmpstr(fb->reason, ==, "reservation failed: no pages: memory left to the OS");
    summary = qn_plan_summary(fb);
    g_assert_cmpstr(summary, ==, "fallback: reservation failed: no pages: memory left to the OS");
    j = qn_plan_to_json(fb);
    back = qn_plan_from_json(j, NULL);
    g_assert_nonnull(back);
    g_assert_cmpint(back->kind, ==, QN_PLAN_FALLBACK);
    g_assert_cmpstr(back->reason, ==, fb->reason);
}

/* The hostile-input catalogue (issue 6): each bad value gives its error code and a message
 * naming it. The launch tests check that such inputs also allocate nothing. */
typedef struct {
    const char *kind;    /* "conf", "env", "argv", "sysfs-distance", "sysfs-meminfo",
                          * "sysfs-counter", "sysfs-list", "sysfs-mask" */
    const char *input;   /* conf: key file; env: one VAR=value; argv: shell words */
    gint code;
    const char *needle;  /* a substring of the message */
} Hostile;

static const Hostile hostile[] = {
    { "conf", "[qemu-numa]\npolicy=bogus\n", QN_ERROR_BAD_CONFIG, "policy 'bogus'" },
    { "conf", "no group at all\n", QN_ERROR_BAD_CONFIG, "f.conf" },
    { "conf", "[qemu-numa]\nunknown=1\n", QN_ERROR_BAD_CONFIG, "unknown setting 'unknown'" },
    { "conf", "[other]\nx=1\n", QN_ERROR_BAD_CONFIG, "unknown group '[other]'" },
    { "conf", "[qemu-numa]\nguest-nodes=0\n", QN_ERROR_BAD_CONFIG, "guest-nodes '0'" },
    { "conf", "[qemu-numa]\nguest-nodes=65\n", QN_ERROR_BAD_CONFIG, "guest-nodes '65'" },
    { "conf", "[qemu-numa]\nreserve-threads=0\n", QN_ERROR_BAD_CONFIG, "reserve-threads '0'" },
    { "conf", "[qemu-numa]\npool=0:1G@3M\n", QN_ERROR_BAD_CONFIG, "pool '0:1G@3M'" },
    { "conf", "[qemu-numa]\npool=0:3M@2M\n", QN_ERROR_BAD_CONFIG, "pool '0:3M@2M'" },
    { "conf", "[qemu-numa]\npool=0:1G,0:2G\n", QN_ERROR_BAD_CONFIG, "pool '0:1G,0:2G'" },
    { "conf", "[qemu-numa]\npool=x:1G\n", QN_ERROR_BAD_CONFIG, "pool 'x:1G'" },
    { "conf", "[qemu-numa]\npool=1G\n", QN_ERROR_BAD_CONFIG, "pool '1G'" },
    { "conf", "[qemu-numa]\nhugepage-size=3M\n", QN_ERROR_BAD_CONFIG, "hugepage-size '3M'" },
    { "conf", "[qemu-numa]\nhugepage-size=-2M\n", QN_ERROR_BAD_CONFIG, "hugepage-size '-2M'" },
    { "conf", "[qemu-numa]\nstate-dir=relative/dir\n", QN_ERROR_BAD_CONFIG, "'relative/dir'" },
    { "conf", "[qemu-numa]\nhugetlbfs=hp\n", QN_ERROR_BAD_CONFIG, "hugetlbfs 'hp'" },
    { "conf", "[qemu-numa]\nlog-level=loud\n", QN_ERROR_BAD_CONFIG, "log-level 'loud'" },
    { "conf", "[qemu-numa]\ndedicated-cpus=maybe\n", QN_ERROR_BAD_CONFIG, "'maybe'" },
    { "conf", "[qemu-numa]\ncpu-thread-policy=mixed\n", QN_ERROR_BAD_CONFIG, "'mixed'" },
    { "conf", "[qemu-numa]\nemulator-threads=everywhere\n", QN_ERROR_BAD_CONFIG, "'everywhere'" },
    { "conf", "[qemu-numa]\npacking=random\n", QN_ERROR_BAD_CONFIG, "packing 'random'" },
    { "conf", "[qemu-numa]\ncpuless-nodes=sometimes\n", QN_ERROR_BAD_CONFIG, "'sometimes'" },
    { "conf", "[qemu-numa]\nhotplug-headroom=all\n", QN_ERROR_BAD_CONFIG,
      "hotplug-headroom 'all'" },
    { "env", "QEMU_NUMA_HOTPLUG_HEADROOM=2", QN_ERROR_BAD_CONFIG,
      "QEMU_NUMA_HOTPLUG_HEADROOM '2'" },
    { "conf", "[qemu-numa]\nmirror-distances=host\n", QN_ERROR_BAD_CONFIG,
      "mirror-distances 'host'" },
    { "conf", "[qemu-numa]\ndevice-locality=last\n", QN_ERROR_BAD_CONFIG,
      "device-locality 'last'" },
    { "env", "QEMU_NUMA_DEVICE_LOCALITY=", QN_ERROR_BAD_CONFIG, "QEMU_NUMA_DEVICE_LOCALITY ''" },
    { "env", "QEMU_NUMA_TEST_DEVICE_NODE=net0", QN_ERROR_BAD_CONFIG, "'net0'" },
    { "env", "QEMU_NUMA_TEST_DEVICE_NODE=:1", QN_ERROR_BAD_CONFIG, "':1'" },
    { "env", "QEMU_NUMA_TEST_DEVICE_NODE=net0:x", QN_ERROR_BAD_CONFIG, "'net0:x'" },
    { "env", "QEMU_NUMA_MIRROR_DISTANCES=2", QN_ERROR_BAD_CONFIG, "QEMU_NUMA_MIRROR_DISTANCES '2'" },
    { "env", "QEMU_NUMA_MEMORY_MODE=strict", QN_ERROR_BAD_CONFIG, "'strict'" },
    { "env", "QEMU_NUMA_GUEST_NODES=abc", QN_ERROR_BAD_CONFIG, "'abc'" },
    { "env", "QEMU_NUMA_TYPO=1", QN_ERROR_BAD_CONFIG, "'QEMU_NUMA_TYPO'" },
    { "env", "QEMU_NUMA_SYSFS_ROOT=", QN_ERROR_BAD_CONFIG, "QEMU_NUMA_SYSFS_ROOT ''" },
    { "argv", "-m ''", QN_ERROR_BAD_ARGV, "''" },
    { "argv", "-m 1.5.5G", QN_ERROR_BAD_ARGV, "'1.5.5G'" },
    { "argv", "-m 0x", QN_ERROR_BAD_ARGV, "'0x'" },
    { "argv", "-m size=", QN_ERROR_BAD_ARGV, "-m" },
    { "argv", "-m 1G,slots=abc", QN_ERROR_BAD_ARGV, "'abc'" },
    { "argv", "-m 1G,foo=1", QN_ERROR_BAD_ARGV, "'foo'" },
    { "argv", "-m 99999999999999999999G", QN_ERROR_BAD_ARGV, "invalid size" },
    { "argv", "-smp cpus=-1", QN_ERROR_BAD_ARGV, "'-1'" },
    { "argv", "-smp 4,bogus=1", QN_ERROR_BAD_ARGV, "'bogus'" },
    { "argv", "-smp 99999", QN_ERROR_BAD_ARGV, "'99999'" },
    { "argv", "-numa node,cpus=3-1", QN_ERROR_BAD_ARGV, "'3-1'" },
    { "argv", "-numa dist,src=0,dst=1", QN_ERROR_BAD_ARGV, "-numa dist val" },
    { "argv", "-numa dist,src=0,dst=1,val=300", QN_ERROR_BAD_ARGV, "'300'" },
    { "argv", "-numa bogus", QN_ERROR_BAD_ARGV, "'bogus'" },
    { "argv", "-numa node,mem=1G,memdev=m0", QN_ERROR_BAD_ARGV, "mutually exclusive" },
    { "argv", "-numa node,color=red", QN_ERROR_BAD_ARGV, "'color'" },
    { "argv", "-object memory-backend-ram,size=1G", QN_ERROR_BAD_ARGV, "missing id" },
    { "argv", "-object memory-backend-ram,id=m0", QN_ERROR_BAD_ARGV, "missing size" },
    { "argv", "-object memory-backend-ram,id=m0,size=0", QN_ERROR_BAD_ARGV, "size '0'" },
    { "argv", "-object memory-backend-ram,id=m0,size=1G,policy=weird", QN_ERROR_BAD_ARGV,
      "'weird'" },
    { "argv", "-object memory-backend-ram,id=m0,size=1G,host-nodes=a", QN_ERROR_BAD_ARGV, "'a'" },
    { "argv", "-object '{\"qom-type\":\"memory-backend-ram\",\"id\":\"m0\",\"size\":1,"
              "\"host-nodes\":\"0\"}'", QN_ERROR_BAD_ARGV, "host-nodes" },
    { "argv", "-object '{\"qom-type\":\"memory-backend-ram\",\"id\":\"m0\",\"size\":\"1Q\"}'",
      QN_ERROR_BAD_ARGV, "'1Q'" },
    { "argv", "-object '{}'", QN_ERROR_BAD_ARGV, "missing qom-type" },
    { "argv", "-object memory-backend-ram,id=m,size=1G -object memory-backend-ram,id=m,size=1G",
      QN_ERROR_BAD_ARGV, "duplicate id 'm'" },
    { "argv", "-m", QN_ERROR_BAD_ARGV, "'-m': option requires an argument" },
    { "argv", "-m=1G", QN_ERROR_BAD_ARGV, "'-m=1G'" },
    { "argv", "-object", QN_ERROR_BAD_ARGV, "'-object'" },
    /* found by fuzzing: two guest nodes with one id got one backend id and two reservations */
    { "argv", "-numa node,nodeid=0 -numa node,nodeid=0", QN_ERROR_BAD_ARGV,
      "duplicate NUMA nodeid 0" },
    { "argv", "-numa node,nodeid=1 -numa node", QN_ERROR_BAD_ARGV, "duplicate NUMA nodeid 1" },
    { "argv", "-numa node,nodeid=128", QN_ERROR_BAD_ARGV,
      "-numa node nodeid '128': QEMU allows node ids 0 to 127" },
    { "argv", "-m 4G -object memory-backend-ram,id=m0,size=2G -numa node,memdev=m0 "
              "-numa node,memdev=m0", QN_ERROR_BAD_ARGV, "memdev 'm0' is used by another node" },
    { "sysfs-distance", "10 abc\n", QN_ERROR_TOPOLOGY, "'10 abc'" },
    { "sysfs-distance", "10 300\n", QN_ERROR_TOPOLOGY, "'10 300'" },
    { "sysfs-meminfo", "Node 0 MemTotal: 100 kB\n", QN_ERROR_TOPOLOGY, "MemFree" },
    { "sysfs-counter", "x\n", QN_ERROR_TOPOLOGY, "'x'" },
    { "sysfs-counter", "-1\n", QN_ERROR_TOPOLOGY, "'-1'" },
    { "sysfs-list", "0-\n", QN_ERROR_TOPOLOGY, "'0-'" },
    { "sysfs-list", "9999\n", QN_ERROR_TOPOLOGY, "'9999'" },
    { "sysfs-mask", "zz,00000001\n", QN_ERROR_TOPOLOGY, "'zz,00000001'" },
};

static void
test_hostile(void)
{
    for (guint i = 0; i < G_N_ELEMENTS(hostile); i++) {
        const Hostile *h = &hostile[i];
        g_autoptr(GError) e = NULL;
        gboolean failed = FALSE;

        if (!strcmp(h->kind, "conf")) {
            g_autoptr(QnConfig) c = qn_config_load(h->input, "f.conf", NULL, &e);

            failed = c == NULL;
        } else if (!strcmp(h->kind, "env")) {
            const char *env[] = { h->input, NULL };
            g_autoptr(QnConfig) c = qn_config_load(NULL, "f.conf", env, &e);

            failed = c == NULL;
        } else if (!strcmp(h->kind, "argv")) {
            g_autofree gchar *line = g_strdup_printf("qemu %s", h->input);
            g_auto(GStrv) words = NULL;
            g_autoptr(QnQemuArgv) qa = NULL;

            g_assert_true(g_shell_parse_argv(line, NULL, &words, NULL));
            qa = qn_qemu_argv_parse((const char *const *)words, &e);
            failed = qa == NULL;
        } else if (!strcmp(h->kind, "sysfs-distance")) {
            g_autoptr(GArray) row = qn_parse_distance_row(h->input, &e);

            failed = row == NULL;
        } else if (!strcmp(h->kind, "sysfs-meminfo")) {
            guint64 t, f;

            failed = !qn_parse_node_meminfo(h->input, &t, &f, &e);
        } else if (!strcmp(h->kind, "sysfs-counter")) {
            guint64 v;

            failed = !qn_parse_counter(h->input, &v, &e);
        } else if (!strcmp(h->kind, "sysfs-list")) {
            g_autoptr(QnBitmap) b = qn_bitmap_parse_list(h->input, &e);

            failed = b == NULL;
        } else if (!strcmp(h->kind, "sysfs-mask")) {
            g_autoptr(QnBitmap) b = qn_bitmap_parse_mask(h->input, &e);

            failed = b == NULL;
        }
        if (!failed || e == NULL || e->domain != QN_ERROR || e->code != h->code ||
            strstr(e->message, h->needle) == NULL || strchr(e->message, '\n') != NULL) {
            g_test_fail_printf("hostile %u (%s '%s'): got %s", i, h->kind, h->input,
                               e ? e->message : "no error");
        }
    }
    g_test_message("%u hostile inputs", (guint)G_N_ELEMENTS(hostile));
}


/* "[" or "{\"a\":" repeated @n times: @n levels, unclosed (the parser never gets there). */
static gchar *
deep_json(const char *open, guint n)
{
    GString *s = g_string_new(NULL);

    for (guint i = 0; i < n; i++) {
        g_string_append(s, open);
    }
    return g_string_free(s, FALSE);
}

/* "[[...1...]]": @n levels, closed, valid JSON. */
static gchar *
nested_array(guint n)
{
    GString *s = g_string_new(NULL);

    for (guint i = 0; i < n; i++) {
        g_string_append_c(s, '[');
    }
    g_string_append_c(s, '1');
    for (guint i = 0; i < n; i++) {
        g_string_append_c(s, ']');
    }
    return g_string_free(s, FALSE);
}

static void
assert_refused(const char *data, gsize len, guint depth, gsize max, const char *message)
{
    g_autoptr(GError) e = NULL;
    g_autoptr(GError) e2 = NULL;
    g_autoptr(JsonNode) node = NULL;

    g_assert_false(qn_json_check_bounds(data, len, depth, max, &e));
    g_assert_error(e, QN_ERROR, QN_ERROR_JSON);
    g_assert_cmpstr(e->message, ==, message);
    /* the wrapper refuses with the same error before json-glib runs */
    node = qn_json_parse_bounded(data, len, depth, max, &e2);
    g_assert_null(node);
    g_assert_error(e2, QN_ERROR, QN_ERROR_JSON);
    g_assert_cmpstr(e2->message, ==, message);
}

static void
assert_within(const char *data, guint depth)
{
    g_autoptr(GError) e = NULL;

    g_assert_true(qn_json_check_bounds(data, strlen(data), depth, G_MAXSIZE, &e));
    g_assert_no_error(e);
}

/* The bounds check that stands before json-glib 1.6, whose recursive parser has no depth
 * limit: each case is one a hostile ledger file or QMP line could use to hide depth. */
static void
test_json_bounds(void)
{
    g_autofree gchar *brackets = deep_json("[", 100 * 1000);
    g_autofree gchar *members = deep_json("{\"a\":", 20 * 1000);
    g_autofree gchar *at = nested_array(QN_JSON_MAX_DEPTH);
    g_autofree gchar *over = nested_array(QN_JSON_MAX_DEPTH + 1);
    g_autofree gchar *in_string = NULL;
    g_autofree gchar *big = g_strnfill(2 * 1024 * 1024, ' ');
    g_autoptr(GError) e = NULL;
    g_autoptr(JsonNode) node = NULL;
    g_autofree gchar *depth_msg = g_strdup_printf("JSON nested deeper than %u", QN_JSON_MAX_DEPTH);

    /* 100 KB of '[': what crashed every qemu-numa-ctl command from one ledger file */
    assert_refused(brackets, strlen(brackets), QN_JSON_MAX_DEPTH, G_MAXSIZE, depth_msg);
    assert_refused(members, strlen(members), QN_JSON_MAX_DEPTH, G_MAXSIZE, depth_msg);
    /* exactly at the limit parses; one more level is refused */
    node = qn_json_parse_bounded(at, strlen(at), QN_JSON_MAX_DEPTH, G_MAXSIZE, &e);
    g_assert_no_error(e);
    g_assert_true(JSON_NODE_HOLDS_ARRAY(node));
    assert_refused(over, strlen(over), QN_JSON_MAX_DEPTH, G_MAXSIZE, depth_msg);
    /* depth is the number open at once, brackets and braces alike, not the total */
    assert_within("[[1],[2],{\"a\":[3]}]", 3);
    assert_refused("[[{}]]", 6, 2, G_MAXSIZE, "JSON nested deeper than 2");
    /* brackets inside strings are text */
    in_string = g_strdup_printf("[\"%s\"]", brackets);
    assert_within(in_string, 1);
    assert_within("[\"]]]]{{{{[[[[\", '[[[[\"[[[[', 1]", 1);
    /* escaped quotes do not end the string; an escaped backslash does not escape the quote */
    assert_within("[\"\\\"[[[[\"]", 1);
    assert_refused("[\"\\\\\",[[[1]]]]", 13, 3, G_MAXSIZE, "JSON nested deeper than 3");
    /* json-glib reads '...' as a string with no escapes: '\' ends there, the brackets count */
    assert_refused("['\\', [[[1]]]]", 14, 3, G_MAXSIZE, "JSON nested deeper than 3");
    /* a C comment (json-glib skips them) hides a quote, not the brackets after it */
    assert_refused("[/* \" */ [[[1]]]]", 17, 3, G_MAXSIZE, "JSON nested deeper than 3");
    assert_within("[1 /* [[[[ */]", 1);
    /* \u escapes json-glib reads further than we would: refused */
    assert_within("[\"\\u005b\\uD83D\\uDE00\"]", 1);
    assert_refused("[\"\\u12\", [[1]]]", 15, 64, G_MAXSIZE, "JSON with a malformed \\u escape");
    assert_refused("[\"\\uD800\"]", 10, 64, G_MAXSIZE, "JSON with a malformed \\u escape");
    assert_refused("[\"\\uDC00\\uDC00\"]", 16, 64, G_MAXSIZE, "JSON with a malformed \\u escape");
    assert_within("[\"\\", 1); /* cut after a backslash: the parser's error to report */
    /* a NUL byte: json-glib goes on after "\<NUL>" where a scanner stopping there would not */
    assert_refused("[\"\\\0\", [[1]]]", 12, 64, G_MAXSIZE, "JSON with a NUL byte");
    /* size: over the cap refused, at the cap accepted */
    assert_refused(big, strlen(big), QN_JSON_MAX_DEPTH, 1024 * 1024,
                   "JSON longer than 1048576 bytes");
    g_assert_true(qn_json_check_bounds(big, 1024 * 1024, QN_JSON_MAX_DEPTH, 1024 * 1024, NULL));
    /* the wrapper passes json-glib's own errors on, and refuses an empty document */
    g_clear_error(&e);
    g_assert_null(qn_json_parse_bounded("[1,", 3, QN_JSON_MAX_DEPTH, G_MAXSIZE, &e));
    g_assert_error(e, QN_ERROR, QN_ERROR_JSON);
    g_assert_true(strstr(e->message, "Parse error") != NULL);
    g_clear_error(&e);
    g_assert_null(qn_json_parse_bounded(" ", 1, QN_JSON_MAX_DEPTH, G_MAXSIZE, &e));
    g_assert_error(e, QN_ERROR, QN_ERROR_JSON);
    g_assert_cmpstr(e->message, ==, "no JSON value");
}

/* A ledger file is written by whoever can write the state directory: the entry parser refuses
 * deep and oversized files with its own code before json-glib sees them. */
static void
test_ledger_entry_bounds(void)
{
    g_autofree gchar *brackets = deep_json("[", 100 * 1000);
    g_autofree gchar *big = g_strnfill(QN_LEDGER_ENTRY_MAX_LEN + 1, ' ');
    g_autoptr(GError) e = NULL;
    g_autoptr(JsonNode) entry = NULL;

    g_assert_null(qn_ledger_entry_parse(brackets, strlen(brackets), &e));
    g_assert_error(e, QN_ERROR, QN_ERROR_LEDGER);
    g_assert_cmpstr(e->message, ==, "JSON nested deeper than 64");
    g_clear_error(&e);
    big[0] = '{';
    big[QN_LEDGER_ENTRY_MAX_LEN] = '}';
    g_assert_null(qn_ledger_entry_parse(big, QN_LEDGER_ENTRY_MAX_LEN + 1, &e));
    g_assert_error(e, QN_ERROR, QN_ERROR_LEDGER);
    g_assert_cmpstr(e->message, ==, "JSON longer than 1048576 bytes");
    g_clear_error(&e);
    /* one byte less is an (empty, blank-padded) entry */
    big[QN_LEDGER_ENTRY_MAX_LEN - 1] = '}';
    entry = qn_ledger_entry_parse(big, QN_LEDGER_ENTRY_MAX_LEN, &e);
    g_assert_no_error(e);
    g_assert_true(JSON_NODE_HOLDS_OBJECT(entry));
}

/* Strings from the ledger or QMP shown on root's terminal: no byte of a control sequence gets
 * through; printable text, UTF-8 included, is unchanged. */
static void
test_text_escape_terminal(void)
{
    static const struct {
        const char *in;
        const char *out;
    } cases[] = {
        { "vm-1", "vm-1" },
        { "", "" },
        { "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
          "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80" },
        /* OSC window title ended by BEL, and "clear screen" */
        { "\x1b]0;pwned\x07vm\x1b[2J", "\\x1b]0;pwned\\x07vm\\x1b[2J" },
        { "a\tb\nc\rd", "a\\x09b\\x0ac\\x0dd" },
        { "\x01\x1f\x7f", "\\x01\\x1f\\x7f" },
        /* C1: U+009B is CSI on terminals that take 8-bit controls; U+0080 and U+009F bound it */
        { "x\xc2\x9b" "2J", "x\\xc2\\x9b" "2J" },
        { "\xc2\x80\xc2\x9f\xc2\xa0", "\\xc2\\x80\\xc2\\x9f\xc2\xa0" },
        /* not UTF-8: a lone C1 byte, a cut sequence, an overlong '/' and a surrogate */
        { "\x9b" "2J", "\\x9b" "2J" },
        { "ab\xe2\x82", "ab\\xe2\\x82" },
        { "\xc0\xaf", "\\xc0\\xaf" },
        { "\xed\xa0\x80", "\\xed\\xa0\\x80" },
        /* a backslash is text */
        { "a\\x1b", "a\\x1b" },
    };

    g_assert_null(qn_text_escape_terminal(NULL));
    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree gchar *got = qn_text_escape_terminal(cases[i].in);

        g_assert_cmpstr(got, ==, cases[i].out);
        g_assert_true(g_utf8_validate(got, -1, NULL));
        g_assert_null(strchr(got, '\x1b'));
        g_assert_null(strchr(got, '\x07'));
    }
}

/* Sets resv_hugepages of @page_size in @t, as qn-sysfs.c reads it. */
static void
qn_set_resv(QnTopology *t, guint64 page_size, guint64 pages)
{
    for (guint i = 0; i < t->page_sizes->len; i++) {
        if (g_array_index(t->page_sizes, guint64, i) == page_size) {
            g_array_index(t->page_resv, guint64, i) = pages;
        }
    }
    g_assert_cmpuint(qn_topology_resv_pages(t, page_size), ==, pages);
}

/* resv_hugepages is global per page size: the pages a plan takes of one size, on all nodes
 * together, stay within free - (held in the ledger) - resv, even where one node's free pages
 * would hold the guest. 2x2's free 2M pages: 4096 + 3000 + 1024 + 0 = 8120. */
/* hotplug-headroom = on (issue 16): a VM's held maxmem room, through its ledger entry (the
 * plan's JSON and back), is taken for the next launch's planner. On 2x2 (free 2M pages: 4096,
 * 3000, 1024, 0) a 3G guest with maxmem=4G goes on host 1 (best fit) and holds 1G more there;
 * a 5G guest (2560 pages) then no longer fits host 1 (3000 - 512) and goes to host 0, where
 * without the headroom it went to host 1. With the setting off, the entry holds nothing (its
 * reserved pages are in the kernel's counters). */
static void
test_plan_headroom(void)
{
    const char *argv_a[] = { "qemu", "-m", "3G,slots=1,maxmem=4G", "-smp", "2", NULL };
    const char *argv_b[] = { "qemu", "-m", "5G", "-smp", "2", NULL };
    const char *on_env[] = { "QEMU_NUMA_POLICY=restricted", "QEMU_NUMA_HUGEPAGE_SIZE=2M",
                             "QEMU_NUMA_GUEST_NODES=1", "QEMU_NUMA_HOTPLUG_HEADROOM=on", NULL };
    const char *off_env[] = { "QEMU_NUMA_POLICY=restricted", "QEMU_NUMA_HUGEPAGE_SIZE=2M",
                              "QEMU_NUMA_GUEST_NODES=1", NULL };
    g_autoptr(QnTopology) t = qn_fake("2x2");
    g_autoptr(QnConfig) on = qn_config_load(NULL, "t", on_env, NULL);
    g_autoptr(QnConfig) off = qn_config_load(NULL, "t", off_env, NULL);
    g_autoptr(QnQemuArgv) qa = qn_qemu_argv_parse(argv_a, NULL);
    g_autoptr(QnQemuArgv) qb = qn_qemu_argv_parse(argv_b, NULL);
    g_autoptr(QnPlan) a = qn_plan_compute(t, NULL, qa, on, NULL);
    g_autoptr(QnPlan) a_off = qn_plan_compute(t, NULL, qa, off, NULL);
    g_autoptr(QnLedgerEntry) ea = NULL;
    g_autoptr(QnLedgerEntry) ea_off = NULL;
    g_autoptr(QnReservations) held = qn_reservations_new();
    g_autoptr(QnReservations) none = qn_reservations_new();
    g_autoptr(QnPlan) b = NULL;
    g_autoptr(QnPlan) b_free = NULL;
    const QnGuestNode *ga;
    guint h;

    g_assert_true(on->hotplug_headroom && !off->hotplug_headroom);
    g_assert_nonnull(a);
    ga = g_ptr_array_index(a->guest_nodes, 0);
    g_assert_cmpuint(ga->headroom, ==, 1 * QN_GiB);
    h = (guint)qn_bitmap_next(ga->host_nodes, 0);
    ea = qn_ledger_entry_new("a", NULL, 42, 0, QN_ENTRY_RESERVED, a);
    g_assert_cmpuint(((const QnGuestNode *)g_ptr_array_index(ea->plan->guest_nodes, 0))->headroom,
                     ==, 1 * QN_GiB); /* through the plan's JSON */
    qn_ledger_entry_add_reservations(ea, held);
    g_assert_cmpuint(held->items->len, ==, 1);
    g_assert_cmpuint(g_array_index(held->items, QnNodeReservation, 0).node, ==, h);
    g_assert_cmpuint(g_array_index(held->items, QnNodeReservation, 0).bytes, ==, 1 * QN_GiB);
    g_assert_cmpuint(h, ==, 1);
    ea_off = qn_ledger_entry_new("a", NULL, 43, 0, QN_ENTRY_RESERVED, a_off);
    qn_ledger_entry_add_reservations(ea_off, none);
    g_assert_cmpuint(none->items->len, ==, 0); /* reserved hugepages show in the counters */
    b_free = qn_plan_compute(t, none, qb, off, NULL);
    b = qn_plan_compute(t, held, qb, off, NULL);
    g_assert_nonnull(b_free);
    g_assert_nonnull(b);
    g_assert_true(qn_bitmap_test(((const QnGuestNode *)g_ptr_array_index(b_free->guest_nodes,
                                                                          0))->host_nodes, h));
    g_assert_false(qn_bitmap_test(((const QnGuestNode *)g_ptr_array_index(b->guest_nodes,
                                                                           0))->host_nodes, h));
}

static void
test_plan_resv(void)
{
    const char *argv[] = { "qemu", "-m", "1G", "-smp", "4", NULL }; /* 512 pages of 2M */
    const char *env[] = { "QEMU_NUMA_POLICY=restricted", "QEMU_NUMA_HUGEPAGE_SIZE=2M", NULL };
    const char *best_env[] = { "QEMU_NUMA_HUGEPAGE_SIZE=2M", NULL };
    g_autoptr(QnTopology) t = qn_fake("2x2");
    g_autoptr(QnConfig) c = qn_config_load(NULL, "t", env, NULL);
    g_autoptr(QnConfig) best = qn_config_load(NULL, "t", best_env, NULL);
    g_autoptr(QnQemuArgv) qa = qn_qemu_argv_parse(argv, NULL);
    g_autoptr(QnReservations) held = qn_reservations_new();

    /* the trees: 2x2 as captured (64 and 1), 2x2-resv with most free pages reserved */
    {
        g_autoptr(QnTopology) r = qn_fake("2x2-resv");

        g_assert_cmpuint(qn_topology_resv_pages(t, 2 * QN_MiB), ==, 64);
        g_assert_cmpuint(qn_topology_resv_pages(t, QN_GiB), ==, 1);
        g_assert_cmpuint(qn_topology_resv_pages(r, 2 * QN_MiB), ==, 7900);
        g_assert_cmpuint(qn_topology_resv_pages(r, QN_GiB), ==, 11);
        g_assert_cmpuint(qn_topology_resv_pages(r, 4096), ==, 0); /* not a hugepage size */
    }
    /* exactly 512 usable: fits, on one node (node 0 alone has 4096 free) */
    qn_set_resv(t, 2 * QN_MiB, 8120 - 512);
    {
        g_autoptr(GError) e = NULL;
        g_autoptr(QnPlan) p = qn_plan_compute(t, NULL, qa, c, &e);

        g_assert_no_error(e);
        g_assert_cmpint(p->kind, ==, QN_PLAN_ALIGNED);
        g_assert_cmpuint(p->guest_nodes->len, ==, 1);
    }
    /* one page fewer: restricted refuses and names the reservation */
    qn_set_resv(t, 2 * QN_MiB, 8120 - 511);
    {
        g_autoptr(GError) e = NULL;
        g_autoptr(QnPlan) p = qn_plan_compute(t, NULL, qa, c, &e);
        g_autoptr(QnPlan) fb = NULL;

        g_assert_null(p);
        g_assert_error(e, QN_ERROR, QN_ERROR_NO_FIT);
        g_assert_nonnull(strstr(e->message, "2M pages: 512 needed but 511 usable on all nodes "
                                            "(8120 free, 7609 of them reserved by mappings not "
                                            "yet faulted in: resv_hugepages)"));
        /* best-effort: no hugepage plan, regular memory bound, the reservation as reason */
        fb = qn_plan_compute(t, NULL, qa, best, NULL);
        g_assert_nonnull(fb);
        g_assert_cmpint(fb->kind, ==, QN_PLAN_ALIGNED);
        g_assert_cmpuint(((QnGuestNode *)fb->guest_nodes->pdata[0])->page_size, ==, 0);
        g_assert_nonnull(strstr(fb->reason, "resv_hugepages"));
    }
    /* pages other launches hold in the ledger count against the same total */
    qn_set_resv(t, 2 * QN_MiB, 8120 - 512 - 100);
    qn_reservations_add(held, 2, 2 * QN_MiB, 100 * 2 * QN_MiB);
    {
        g_autoptr(QnPlan) p = qn_plan_compute(t, held, qa, c, NULL);

        g_assert_nonnull(p);
    }
    qn_reservations_add(held, 2, 2 * QN_MiB, 2 * QN_MiB);
    {
        g_autoptr(GError) e = NULL;
        g_autoptr(QnPlan) p = qn_plan_compute(t, held, qa, c, &e);

        g_assert_null(p);
        g_assert_nonnull(strstr(e->message, "511 usable on all nodes (8120 free, 7508 of them "
                                            "reserved by mappings not yet faulted in: "
                                            "resv_hugepages, 101 held by launches under way)"));
    }
}

/* `qemu-numa-ctl host` says when the real QEMU is newer than the option table (7.2). */
static void
test_qemu_version(void)
{
    static const struct {
        const char *text;
        const char *newer; /* NULL: not newer or unreadable */
    } cases[] = {
        { "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright", NULL },
        { "QEMU emulator version 7.1.0\n", NULL },
        { "QEMU emulator version 6.2.0 (Debian 1:6.2+dfsg-2ubuntu6.26)\n", NULL },
        { "QEMU emulator version 7.3.0\n", "7.3.0" },
        { "QEMU emulator version 8.2.2 (Debian 1:8.2.2+ds-0ubuntu1.4)\n", "8.2.2" },
        { "QEMU emulator version 10.0.0\n", "10.0.0" },
        { "QEMU emulator version x.y\n", NULL },
        { "qemu-numa 1.0\n", NULL },
        { "", NULL },
    };

    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree gchar *v = NULL;
        gboolean newer = qn_qemu_version_newer_than_table(cases[i].text, &v);

        g_assert_cmpint(newer, ==, cases[i].newer != NULL);
        g_assert_cmpstr(v, ==, cases[i].newer);
    }
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    srcdir = g_getenv("QN_TOP_SRCDIR") ? g_getenv("QN_TOP_SRCDIR") : ".";
    g_test_add_func("/core/bitmap/list", test_bitmap_list);
    g_test_add_func("/core/bitmap/mask", test_bitmap_mask);
    g_test_add_func("/core/size", test_size);
    g_test_add_func("/core/keyval", test_keyval);
    g_test_add_func("/core/parsers", test_parsers);
    g_test_add_func("/core/entry/memory-devices", test_entry_memory_devices);
    g_test_add_func("/core/config", test_config);
    g_test_add_func("/core/argv/libvirt", test_argv_libvirt);
    g_test_add_func("/core/argv/smp", test_argv_smp);
    g_test_add_func("/core/argv/qemu-version", test_qemu_version);
    g_test_add_func("/core/topology/trees", test_topology_trees);
    g_test_add_func("/core/plan/choices", test_plan_choices);
    g_test_add_func("/core/plan/locality", test_plan_locality);
    g_test_add_func("/core/plan/json-roundtrip", test_plan_json_roundtrip);
    g_test_add_func("/core/plan/fallback", test_plan_fallback);
    g_test_add_func("/core/plan/resv", test_plan_resv);
    g_test_add_func("/core/plan/headroom", test_plan_headroom);
    g_test_add_func("/core/plan/migrate-args", test_migrate_args);
    g_test_add_func("/core/reserve/worker-cpus", test_reserve_worker_cpus);
    g_test_add_func("/core/hostile", test_hostile);
    g_test_add_func("/core/json/bounds", test_json_bounds);
    g_test_add_func("/core/json/ledger-entry", test_ledger_entry_bounds);
    g_test_add_func("/core/text/escape-terminal", test_text_escape_terminal);
    return g_test_run();
}
