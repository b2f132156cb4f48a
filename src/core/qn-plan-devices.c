/* Device locality in the guest: the guest learns which guest node each PCI device is near.
 *
 * Rules: QEMU puts every device on the root bus (pcie.0 / pci.0), which has no NUMA node, so a
 * guest kernel logs "pci_bus 0000:00: Unknown NUMA node" and schedules a device's interrupts and
 * DMA buffers anywhere. A PCI expander bridge has one: `pxb-pcie` (q35) and `pxb` (pc) take
 * numa_node=, which QEMU writes as the host bridge's _PXM in the ACPI DSDT (hw/pci-bridge/
 * pci_expander_bridge.c, docs/pci_expander_bridge.txt, hw/i386/acpi-build.c build_dsdt), and
 * Linux gives every device below it that node (drivers/acpi/pci_root.c, pcibus_to_node).
 * KubeVirt puts passthrough devices behind one pxb-pcie per host NUMA node (VEP 115); libvirt's
 * <controller model='pcie-expander-bus'><target><node> is the same, the matching left to the
 * management layer: this stage is that layer.
 *
 * A device has a host node when it is a vfio-pci device (its sysfs numa_node) or, in tests
 * only, when QEMU_NUMA_TEST_DEVICE_NODE names one (emulated devices have none). Its guest node
 * is the guest node on that host node, else the guest node nearest to it (SLIT); among equals,
 * the one with the fewest devices so far. Each guest node
 * with such devices gets one expander (bus_nr spaced so each hierarchy has its own bus
 * numbers); on q35 each device gets a pcie-root-port on it (a PCIe endpoint cannot sit on a
 * pxb-pcie's root bus itself: docs/pcie.txt), on pc the device plugs into the pxb. A device the
 * argv put on a bus= of its own is left there and the plan says so. Only when the guest has
 * NUMA nodes (-numa node lines: two guest nodes or more, or the argv's own) and the machine is
 * q35 or pc (i440fx); otherwise the plan notes why not. */
#include "qn-planner.h"

#include <string.h>

/* The first bus number of the first expander's hierarchy, and the most buses one hierarchy
 * gets. The root bus's own bridges and root ports take bus numbers 1, 2 ... in firmware
 * enumeration (SeaBIOS, OVMF), so the expanders start in the upper half, as libvirt's
 * pcie-expander-bus examples do (busNr 252, 254 ...). */
#define QN_PXB_BUS_FIRST 0x80
#define QN_PXB_BUS_SPAN  0x20

/* The machine type's bus family: 1 = q35 (PCIe), 0 = pc (i440fx), -1 = neither. QEMU 7.2's
 * qemu-system-x86_64 defaults to pc. */
static gint
qn_devices_machine_pcie(const char *type)
{
    if (type == NULL || strcmp(type, "pc") == 0 || g_str_has_prefix(type, "pc-i440fx")) {
        return 0;
    }
    if (strcmp(type, "q35") == 0 || g_str_has_prefix(type, "pc-q35")) {
        return 1;
    }
    return -1;
}

/* The host node of argv device @a, or -1. */
static gint
qn_devices_host_node(const QnPlanner *p, const QnPciDeviceArg *a)
{
    if (a->id != NULL && g_hash_table_contains(p->cfg->test_device_nodes, a->id)) {
        return (gint)GPOINTER_TO_UINT(g_hash_table_lookup(p->cfg->test_device_nodes, a->id)) - 1;
    }
    if (a->vfio_address == NULL) {
        return -1;
    }
    for (guint k = 0; k < p->topo->pci->len; k++) {
        const QnPciDevice *d = g_ptr_array_index(p->topo->pci, k);

        if (strcmp(d->address, a->vfio_address) == 0) {
            return d->node;
        }
    }
    return -1;
}

/* Devices of @plan already given guest node @id. */
static guint
qn_devices_on_guest_node(const QnPlan *plan, guint id)
{
    guint c = 0;

    for (guint i = 0; i < plan->pci_devices->len; i++) {
        c += ((const QnPlanPciDevice *)g_ptr_array_index(plan->pci_devices, i))->guest_node == id;
    }
    return c;
}

/* The guest node on host node @h, else the one nearest to it; guest nodes without host memory
 * are never chosen. Ties (several guest nodes on one host node, or equally near): the one with
 * the fewest devices so far, each equally right, so the devices' interrupts and DMA spread
 * over them; then the lowest id. */
static guint
qn_devices_guest_node(const QnPlanner *p, const QnPlan *plan, guint h)
{
    guint best = 0, best_d = G_MAXUINT, best_n = G_MAXUINT;

    for (guint i = 0; i < plan->guest_nodes->len; i++) {
        const QnGuestNode *g = g_ptr_array_index(plan->guest_nodes, i);
        guint nd = qn_devices_on_guest_node(plan, g->id);

        QN_BITMAP_FOREACH(g->host_nodes, hn) {
            guint d = (guint)hn == h ? 0 : qn_pair_distance(p, (guint)hn, h);

            if (d < best_d || (d == best_d && nd < best_n)) {
                best_d = d;
                best_n = nd;
                best = g->id;
            }
        }
    }
    return best;
}

/* The expander of guest node @guest_node, added when it has none yet. */
static guint
qn_devices_expander(QnPlan *plan, guint guest_node, gboolean pcie)
{
    QnPlanExpander e = { guest_node, 0, pcie };

    for (guint i = 0; i < plan->expanders->len; i++) {
        if (g_array_index(plan->expanders, QnPlanExpander, i).guest_node == guest_node) {
            return i;
        }
    }
    e.bus_nr = QN_PXB_BUS_FIRST + QN_PXB_BUS_SPAN * plan->expanders->len;
    g_array_append_val(plan->expanders, e);
    return plan->expanders->len - 1;
}

/**
 * qn_plan_stage_devices:
 * Each argv device with a host node: its guest node, and the expander bus and root port it
 * moves behind, or left on the argv's bus= (see the rules above). Never fails; a guest with
 * more guest nodes with devices than the bus numbers allow (above 4) or a machine type other
 * than q35 and pc keeps its devices where they are, with a note.
 */
QnStageResult
qn_plan_stage_devices(QnPlanner *p, GError **error)
{
    QnPlan *plan = p->plan;
    gint pcie = qn_devices_machine_pcie(p->qa->machine_type);
    gboolean numa = plan->guest_nodes->len > 1 || p->kind == QN_GUEST_TOPOLOGY_USER;
    guint ports = 0;

    (void)error;
    for (guint i = 0; i < p->qa->pci_devices->len; i++) {
        const QnPciDeviceArg *a = g_ptr_array_index(p->qa->pci_devices, i);
        gint h = qn_devices_host_node(p, a);
        QnPlanPciDevice *d;

        if (h < 0) {
            continue;
        }
        if (!numa) {
            continue; /* one guest node, no SRAT: every bus is on it */
        }
        if (pcie < 0) {
            g_free(plan->devices_note);
            plan->devices_note = g_strdup_printf("machine '%s' has no pxb: devices left on its "
                                                 "root bus", p->qa->machine_type);
            continue;
        }
        d = g_new0(QnPlanPciDevice, 1);
        d->arg_index = a->arg_index;
        d->driver = g_strdup(a->driver);
        d->id = g_strdup(a->id);
        d->host_node = (guint)h;
        d->guest_node = qn_devices_guest_node(p, plan, (guint)h);
        d->user_bus = g_strdup(a->bus);
        if (d->user_bus == NULL) {
            d->expander = qn_devices_expander(plan, d->guest_node, pcie == 1);
            d->port = ports++;
        }
        g_ptr_array_add(plan->pci_devices, d);
    }
    if (QN_PXB_BUS_FIRST + QN_PXB_BUS_SPAN * plan->expanders->len > 0x100) {
        /* bus numbers are 8 bits: no room for this many hierarchies; leave all where they are */
        for (guint i = plan->pci_devices->len; i-- > 0;) {
            const QnPlanPciDevice *d = g_ptr_array_index(plan->pci_devices, i);

            if (d->user_bus == NULL) {
                g_ptr_array_remove_index(plan->pci_devices, i);
            }
        }
        g_array_set_size(plan->expanders, 0);
        g_free(plan->devices_note);
        plan->devices_note = g_strdup("more guest nodes with devices than expander bus "
                                      "numbers: devices left on the root bus");
    }
    return QN_STAGE_OK;
}
