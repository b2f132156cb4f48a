/* qemu-numa: the one error domain every module reports through. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define QN_ERROR (qn_error_quark())

/**
 * QnError:
 * Codes of the %QN_ERROR domain; callers branch on them, messages are for people.
 * Messages follow STYLE.md: one phrase, no trailing period, the bad value quoted.
 */
typedef enum {
    QN_ERROR_FAILED,      /* anything not covered below */
    QN_ERROR_BAD_ARGV,    /* a QEMU option we own is malformed or contradicts another */
    QN_ERROR_BAD_CONFIG,  /* a setting (key file or environment) has an invalid value */
    QN_ERROR_TOPOLOGY,    /* the host's sysfs/proc files cannot be read or parsed */
    QN_ERROR_NO_FIT,      /* the policy forbids every plan that fits the free resources */
    QN_ERROR_HUGEPAGES,   /* hugetlbfs mount missing or pages could not be allocated */
    QN_ERROR_PLACEMENT,   /* pages were allocated but not on the planned host node */
    QN_ERROR_LEDGER,      /* the reservation ledger cannot be read, locked or written */
    QN_ERROR_EXEC,        /* the real QEMU binary cannot be found or executed */
    QN_ERROR_QMP,         /* QMP transport or protocol failure */
    QN_ERROR_QMP_COMMAND, /* QEMU answered a QMP command with {"error": ...} */
    QN_ERROR_JSON,        /* untrusted JSON is malformed, or over a depth or size limit
                           * (qn_json_check_bounds(), qn_json_parse_bounded()) */
} QnError;

GQuark qn_error_quark(void);

G_END_DECLS
