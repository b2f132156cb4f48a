/* qemu-numa: strings from other users made safe to show on a terminal. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * qn_text_escape_terminal:
 * @str: (nullable): a NUL-terminated string read from a ledger file, a QMP message or another
 *   place another user can write: any bytes
 *
 * The form in which qemu-numa-ctl's human output (and every program's log lines) shows such a
 * string: each byte of a control character, C0 (U+0000-U+001F, tab and newline included:
 * output is one line per item), DEL (U+007F) and C1 (U+0080-U+009F, which some terminals take
 * as CSI and OSC), and each byte that is not part of valid UTF-8, written as the four
 * characters `\xNN` (lower-case hex), the same notation qn_ledger_name_to_utf8() stores for
 * invalid bytes; everything else is copied. ESC (`\x1b`) and BEL (`\x07`) thus never reach
 * the terminal, so a VM named "\x1b]0;pwned\x07" cannot retitle root's window or clear its
 * screen. A backslash is copied as is: the result is for people to read, not to parse back
 * (`--json` is the exact form). Pure.
 * Returns: (transfer full) (nullable): valid UTF-8 without control characters; %NULL when
 *   @str is %NULL.
 */
gchar *qn_text_escape_terminal(const char *str);

G_END_DECLS
