#include "config.h"

#include "qn-program.h"

#include <errno.h>
#include <stdio.h>

#include "qn-error.h"
#include "qn-text.h"

static const char *qn_prog = "qemu-numa";
static GLogLevelFlags qn_level = G_LOG_LEVEL_WARNING;

/* The reason of a g_file_get_contents() error alone, as strerror() says it ("No such file or
 * directory"): glib's message repeats the path. Codes without an errno give glib's message. */
static const char *
qn_program_file_error(const GError *e)
{
    static const struct {
        GFileError code;
        int err;
    } map[] = {
        { G_FILE_ERROR_NOENT, ENOENT }, { G_FILE_ERROR_ACCES, EACCES },
        { G_FILE_ERROR_PERM, EPERM },   { G_FILE_ERROR_ISDIR, EISDIR },
        { G_FILE_ERROR_LOOP, ELOOP },   { G_FILE_ERROR_NAMETOOLONG, ENAMETOOLONG },
        { G_FILE_ERROR_NOTDIR, ENOTDIR }, { G_FILE_ERROR_NOMEM, ENOMEM },
        { G_FILE_ERROR_IO, EIO },
    };

    for (gsize i = 0; e->domain == G_FILE_ERROR && i < G_N_ELEMENTS(map); i++) {
        if (e->code == (gint)map[i].code) {
            return g_strerror(map[i].err);
        }
    }
    return e->message;
}

QnConfig *
qn_program_load_config(GError **error)
{
    const char *path = g_getenv("QEMU_NUMA_CONFIG");
    gboolean explicit = path != NULL;
    g_autofree gchar *data = NULL;
    g_autoptr(GError) local = NULL;
    g_auto(GStrv) env = g_get_environ();

    if (path == NULL) {
        path = QN_DEFAULT_CONFIG_FILE;
    }
    if (!g_file_get_contents(path, &data, NULL, &local)) {
        if (explicit || !g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
            /* glib's "Failed to open file “PATH”: ..." names no role: say which file it is */
            g_set_error(error, QN_ERROR, QN_ERROR_BAD_CONFIG, "configuration file '%s': %s", path,
                        qn_program_file_error(local));
            return NULL;
        }
    }
    return qn_config_load(data, path, (const char *const *)env, error);
}

static GLogWriterOutput
qn_log_writer(GLogLevelFlags level, const GLogField *fields, gsize n, gpointer user)
{
    const char *msg = NULL;
    const char *what = "error";

    if ((level & G_LOG_LEVEL_MASK) > qn_level) {
        return G_LOG_WRITER_HANDLED;
    }
    for (gsize i = 0; i < n; i++) {
        if (g_strcmp0(fields[i].key, "MESSAGE") == 0) {
            msg = fields[i].value;
        }
    }
    switch (level & G_LOG_LEVEL_MASK) {
    case G_LOG_LEVEL_WARNING: what = "warning"; break;
    case G_LOG_LEVEL_MESSAGE:
    case G_LOG_LEVEL_INFO: what = "info"; break;
    case G_LOG_LEVEL_DEBUG: what = "debug"; break;
    default: break;
    }
    {
        /* messages quote ledger files and QMP replies: no control sequence reaches a terminal */
        g_autofree gchar *safe = qn_text_escape_terminal(msg ? msg : "");

        fprintf(stderr, "%s: %s: %s\n", qn_prog, what, safe);
    }
    return G_LOG_WRITER_HANDLED;
}

void
qn_program_setup_log(const char *prog, GLogLevelFlags level)
{
    static gboolean installed;

    qn_prog = prog;
    qn_level = level;
    if (!installed) {
        /* glib allows one writer per process: later calls only change the level. */
        g_log_set_writer_func(qn_log_writer, NULL, NULL);
        installed = TRUE;
    }
}

void
qn_program_print_json(JsonNode *root)
{
    g_autoptr(JsonGenerator) gen = json_generator_new();
    g_autofree gchar *s = NULL;

    json_generator_set_pretty(gen, TRUE);
    json_generator_set_root(gen, root);
    s = json_generator_to_data(gen, NULL);
    printf("%s\n", s);
}
