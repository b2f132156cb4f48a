/* The guest-visible layout of a running VM as QEMU options (see qn-migrate-args.h). */
#include "qn-migrate-args.h"

#include <string.h>

#include "qn-error.h"
#include "qn-keyval.h"
#include "qn-size.h"

/* The last value of option @name in @qa, or %NULL. */
static const char *
qn_last_value(const QnQemuArgv *qa, const char *name)
{
    const char *v = NULL;

    for (guint i = 0; i < qa->args->len; i++) {
        const QnArg *a = g_ptr_array_index(qa->args, i);

        if (g_strcmp0(a->name, name) == 0) {
            v = a->value;
        }
    }
    return v;
}

/* One backend of @bytes on @page_size pages (0: regular memory), with id @id. */
static gchar *
qn_backend_option(const char *id, guint64 bytes, guint64 page_size)
{
    g_autofree gchar *eid = qn_keyval_escape(id);

    if (page_size == 0) {
        return g_strdup_printf("memory-backend-ram,id=%s,size=%" G_GUINT64_FORMAT, eid, bytes);
    }
    return g_strdup_printf("memory-backend-memfd,id=%s,size=%" G_GUINT64_FORMAT
                           ",hugetlb=on,hugetlbsize=%" G_GUINT64_FORMAT, eid, bytes, page_size);
}

/* The backends: the plan's guest nodes, else the argv's backends the guest's nodes use. */
static gboolean
qn_add_backends(GStrvBuilder *out, const QnQemuArgv *qa, const QnPlan *plan, GError **error)
{
    if (plan != NULL && plan->guest_nodes->len > 0) {
        for (guint i = 0; i < plan->guest_nodes->len; i++) {
            const QnGuestNode *g = g_ptr_array_index(plan->guest_nodes, i);
            g_autofree gchar *o = NULL;

            if (g->bytes == 0 || g->memdev == NULL) {
                continue; /* a memory-less guest node has no backend */
            }
            if (qn_qemu_argv_find_backend(qa, g->memdev) == NULL) {
                g_set_error(error, QN_ERROR, QN_ERROR_BAD_ARGV,
                            "guest node %u: memdev '%s' is not in QEMU's argv", g->id,
                            g->memdev);
                return FALSE;
            }
            o = qn_backend_option(g->memdev, g->bytes, g->page_size);
            g_strv_builder_add_many(out, "-object", o, NULL);
        }
        return TRUE;
    }
    for (guint i = 0; i < qa->backends->len; i++) {
        const QnMemoryBackend *b = g_ptr_array_index(qa->backends, i);
        gboolean used = g_strcmp0(b->id, qa->machine_memory_backend) == 0;
        g_autofree gchar *o = NULL;

        for (guint k = 0; k < qa->numa_nodes->len && !used; k++) {
            used = g_strcmp0(((QnNumaNode *)g_ptr_array_index(qa->numa_nodes, k))->memdev,
                             b->id) == 0;
        }
        if (used) {
            o = qn_backend_option(b->id, b->size, 0);
            g_strv_builder_add_many(out, "-object", o, NULL);
        }
    }
    return TRUE;
}

GStrv
qn_migrate_args(const QnQemuArgv *qa, const QnPlan *plan, GError **error)
{
    g_autoptr(GStrvBuilder) out = g_strv_builder_new();
    const char *m = qn_last_value(qa, "m");
    const char *smp = qn_last_value(qa, "smp");

    g_return_val_if_fail(qa != NULL, NULL);
    if (m != NULL) {
        g_strv_builder_add_many(out, "-m", m, NULL);
    }
    if (smp != NULL) {
        g_strv_builder_add_many(out, "-smp", smp, NULL);
    }
    if (!qn_add_backends(out, qa, plan, error)) {
        return NULL;
    }
    for (guint i = 0; i < qa->args->len; i++) {
        const QnArg *a = g_ptr_array_index(qa->args, i);

        if (g_strcmp0(a->name, "numa") == 0) {
            g_strv_builder_add_many(out, "-numa", a->value, NULL);
        }
    }
    if (qa->machine_memory_backend != NULL) {
        g_autofree gchar *id = qn_keyval_escape(qa->machine_memory_backend);
        g_autofree gchar *v = g_strdup_printf("memory-backend=%s", id);

        g_strv_builder_add_many(out, "-machine", v, NULL);
    }
    return g_strv_builder_end(out);
}
