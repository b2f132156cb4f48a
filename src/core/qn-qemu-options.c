/* QEMU 7.2 option table: which options take an argument.
 *
 * Generated from the real binary, not typed by hand: every name that
 * `qemu-system-x86_64 -help` prints (plus the few it does not: -M, -g, -qtest,
 * -qtest-log, -prom-env, -semihosting*, -preconfig) was run as
 * `qemu-system-x86_64 -version NAME`; QEMU's first argv pass reports
 * "requires an argument" for exactly the options declared HAS_ARG in qemu-options.hx.
 * See contrib/gen-qemu-options. */
#include "qn-qemu-options.h"

#include <string.h>

static const QnQemuOption qn_qemu_options[] = {
    { "D", TRUE },
    { "L", TRUE },
    { "M", TRUE },
    { "S", FALSE },
    { "accel", TRUE },
    { "acpitable", TRUE },
    { "action", TRUE },
    { "add-fd", TRUE },
    { "append", TRUE },
    { "async-teardown", FALSE },
    { "audio", TRUE },
    { "audio-help", FALSE },
    { "audiodev", TRUE },
    { "bios", TRUE },
    { "blockdev", TRUE },
    { "boot", TRUE },
    { "cdrom", TRUE },
    { "chardev", TRUE },
    { "chroot", TRUE },
    { "compat", TRUE },
    { "cpu", TRUE },
    { "d", TRUE },
    { "daemonize", FALSE },
    { "debugcon", TRUE },
    { "device", TRUE },
    { "dfilter", TRUE },
    { "display", TRUE },
    { "drive", TRUE },
    { "dtb", TRUE },
    { "dump-vmstate", TRUE },
    { "echr", TRUE },
    { "enable-kvm", FALSE },
    { "enable-sync-profile", FALSE },
    { "fda", TRUE },
    { "fsdev", TRUE },
    { "full-screen", FALSE },
    { "fw_cfg", TRUE },
    { "g", TRUE },
    { "gdb", TRUE },
    { "global", TRUE },
    { "h", FALSE },
    { "hda", TRUE },
    { "hdc", TRUE },
    { "icount", TRUE },
    { "incoming", TRUE },
    { "initrd", TRUE },
    { "iscsi", TRUE },
    { "k", TRUE },
    { "kernel", TRUE },
    { "loadvm", TRUE },
    { "m", TRUE },
    { "machine", TRUE },
    { "mem-path", TRUE },
    { "mem-prealloc", FALSE },
    { "mon", TRUE },
    { "monitor", TRUE },
    { "msg", TRUE },
    { "mtdblock", TRUE },
    { "name", TRUE },
    { "net", TRUE },
    { "netdev", TRUE },
    { "nic", TRUE },
    { "no-acpi", FALSE },
    { "no-fd-bootchk", FALSE },
    { "no-hpet", FALSE },
    { "no-reboot", FALSE },
    { "no-shutdown", FALSE },
    { "no-user-config", FALSE },
    { "nodefaults", FALSE },
    { "nographic", FALSE },
    { "numa", TRUE },
    { "object", TRUE },
    { "only-migratable", FALSE },
    { "option-rom", TRUE },
    { "overcommit", TRUE },
    { "parallel", TRUE },
    { "pflash", TRUE },
    { "pidfile", TRUE },
    { "plugin", TRUE },
    { "portrait", FALSE },
    { "preconfig", FALSE },
    { "prom-env", TRUE },
    { "qmp", TRUE },
    { "qmp-pretty", TRUE },
    { "qtest", TRUE },
    { "qtest-log", TRUE },
    { "readconfig", TRUE },
    { "rotate", TRUE },
    { "rtc", TRUE },
    { "runas", TRUE },
    { "s", FALSE },
    { "sandbox", TRUE },
    { "sd", TRUE },
    { "seed", TRUE },
    { "semihosting", FALSE },
    { "semihosting-config", TRUE },
    { "serial", TRUE },
    { "set", TRUE },
    { "singlestep", FALSE },
    { "smbios", TRUE },
    { "smp", TRUE },
    { "snapshot", FALSE },
    { "spice", TRUE },
    { "tpmdev", TRUE },
    { "trace", TRUE },
    { "usb", FALSE },
    { "usbdevice", TRUE },
    { "uuid", TRUE },
    { "version", FALSE },
    { "vga", TRUE },
    { "virtfs", TRUE },
    { "vnc", TRUE },
    { "watchdog-action", TRUE },
    { "win2k-hack", FALSE },
    { "xen-attach", FALSE },
    { "xen-domid", TRUE },
    { "xen-domid-restrict", FALSE },
};

const QnQemuOption *
qn_qemu_option_lookup(const char *name)
{
    /* Linear search: ~110 entries, called once per argv element. */
    for (gsize i = 0; i < G_N_ELEMENTS(qn_qemu_options); i++) {
        if (strcmp(qn_qemu_options[i].name, name) == 0) {
            return &qn_qemu_options[i];
        }
    }
    return NULL;
}

gboolean
qn_qemu_version_newer_than_table(const char *version_text, gchar **ret_version)
{
    static const char prefix[] = "QEMU emulator version ";
    const char *v;
    guint64 major, minor;
    gchar *end = NULL;
    gsize len;

    g_return_val_if_fail(version_text != NULL, FALSE);
    if (!g_str_has_prefix(version_text, prefix)) {
        return FALSE;
    }
    v = version_text + strlen(prefix);
    major = g_ascii_strtoull(v, &end, 10);
    if (end == v || *end != '.') {
        return FALSE;
    }
    minor = g_ascii_strtoull(end + 1, &end, 10);
    if (major < QN_QEMU_OPTIONS_MAJOR ||
        (major == QN_QEMU_OPTIONS_MAJOR && minor <= QN_QEMU_OPTIONS_MINOR)) {
        return FALSE;
    }
    for (len = 0; v[len] != '\0' && (g_ascii_isdigit(v[len]) || v[len] == '.') && len < 32;
         len++) {
    }
    if (ret_version != NULL) {
        *ret_version = g_strndup(v, len);
    }
    return TRUE;
}
