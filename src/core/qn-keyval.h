/* QEMU's "key=value,key=value" option syntax (QemuOpts and keyval), order-preserving. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
    gchar *key;
    gchar *value;
} QnKv;

typedef struct {
    GPtrArray *items; /* QnKv*, in the order written; a key may repeat (cpus=, host-nodes=) */
} QnKeyval;

void qn_keyval_free(QnKeyval *kv);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QnKeyval, qn_keyval_free)

/**
 * qn_keyval_parse:
 * @text: an option argument such as "node,nodeid=0,cpus=0-3,memdev=m0"; ",," is a literal
 *   comma inside a value (QemuOpts and util/keyval.c agree on this).
 * @implied_key: (nullable): key of a first element that has no '=' ("size" for -m, "type" for
 *   -numa, "qom-type" for -object, "cpus" for -smp); %NULL when the option has none.
 *   A later element without '=' is the boolean "key=on", as QemuOpts reads it.
 * @error: %QN_ERROR_BAD_ARGV for an empty key ("=x", "a,,=b" forms) naming @text
 *
 * Returns: (transfer full): the pairs in order, or %NULL on error.
 */
QnKeyval *qn_keyval_parse(const char *text, const char *implied_key, GError **error);

/** qn_keyval_get: last value of @key (QemuOpts: the last one wins), or %NULL. (transfer none) */
const char *qn_keyval_get(const QnKeyval *kv, const char *key);

/** qn_keyval_count: how many times @key occurs. */
guint qn_keyval_count(const QnKeyval *kv, const char *key);

/** qn_keyval_escape: @value with every ',' doubled, for writing back. (transfer full) */
gchar *qn_keyval_escape(const char *value);

G_END_DECLS
