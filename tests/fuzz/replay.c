/* Replays a fuzz target's corpus without libFuzzer, so `make check` (gcc, no sanitizer
 * runtime) proves every seed and every crash found so far still runs cleanly.
 *
 * Usage: replay-<target> [FILE|DIR]...; without arguments the corpus is
 * $QN_TOP_SRCDIR/tests/fuzz/corpus/<target>/. Prints TAP, one line per file; an input that
 * crashes aborts the run, and the TAP driver counts the missing lines and the exit status as
 * failures. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "fuzz.h"

static gint
qn_cmp_paths(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Adds @path, or the regular files directly inside it, to @files. */
static gboolean
qn_collect(const char *path, GPtrArray *files)
{
    g_autoptr(GDir) d = NULL;
    const char *name;

    if (!g_file_test(path, G_FILE_TEST_IS_DIR)) {
        g_ptr_array_add(files, g_strdup(path));
        return TRUE;
    }
    d = g_dir_open(path, 0, NULL);
    if (d == NULL) {
        return FALSE;
    }
    while ((name = g_dir_read_name(d)) != NULL) {
        g_autofree gchar *p = g_build_filename(path, name, NULL);

        if (g_file_test(p, G_FILE_TEST_IS_REGULAR)) {
            g_ptr_array_add(files, g_steal_pointer(&p));
        }
    }
    return TRUE;
}

int
main(int argc, char **argv)
{
    g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);
    guint failed = 0;

    LLVMFuzzerInitialize(&argc, &argv);
    if (argc > 1) {
        for (int i = 1; i < argc; i++) {
            if (!qn_collect(argv[i], files)) {
                printf("Bail out! %s: cannot read\n", argv[i]);
                return 1;
            }
        }
    } else {
        const char *top = g_getenv("QN_TOP_SRCDIR");
        g_autofree gchar *dir = g_build_filename(top ? top : ".", "tests", "fuzz", "corpus",
                                                 qn_fuzz_target, NULL);

        if (!qn_collect(dir, files) || files->len == 0) {
            printf("Bail out! %s: no corpus\n", dir);
            return 1;
        }
    }
    g_ptr_array_sort(files, qn_cmp_paths);
    printf("1..%u\n", files->len);
    fflush(stdout);
    for (guint i = 0; i < files->len; i++) {
        const char *path = g_ptr_array_index(files, i);
        g_autofree gchar *data = NULL;
        g_autofree gchar *base = g_path_get_basename(path);
        gsize len = 0;

        if (!g_file_get_contents(path, &data, &len, NULL)) {
            printf("not ok %u - %s %s: cannot read\n", i + 1, qn_fuzz_target, base);
            failed++;
            continue;
        }
        /* Announce the input before running it: a crash then names its file in the log. */
        printf("# %s\n", path);
        fflush(stdout);
        LLVMFuzzerTestOneInput((const uint8_t *)data, len);
        printf("ok %u - %s %s\n", i + 1, qn_fuzz_target, base);
        fflush(stdout);
    }
    return failed ? 1 : 0;
}
