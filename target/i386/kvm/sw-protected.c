/*
 * Software-protected VMs: KVM_X86_SW_PROTECTED_VM
 *
 * A VM type with private memory that KVM protects from the host by
 * itself, without encryption or attestation: the kernel's own vehicle for
 * guest_memfd and its conversions, and what pKVM-like designs build on.
 * Its RAM is guest_memfd converted in place; the guest converts memory
 * with KVM_HC_MAP_GPA_RANGE and memory faults, and contents survive a
 * conversion in either direction.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qom/object_interfaces.h"
#include "system/kvm.h"
#include <linux/kvm_para.h>
#include "cpu.h"
#include "hw/i386/x86.h"
#include "hw/qdev-core.h"
#include "../confidential-guest.h"
#include "kvm_i386.h"

#define TYPE_SW_PROTECTED_GUEST "sw-protected-guest"
OBJECT_DECLARE_SIMPLE_TYPE(SwProtectedGuest, SW_PROTECTED_GUEST)

struct SwProtectedGuest {
    X86ConfidentialGuest parent_obj;
};

static int sw_protected_guest_kvm_init(ConfidentialGuestSupport *cgs,
                                       Error **errp)
{
    X86MachineState *x86ms = X86_MACHINE(qdev_get_machine());

    /* KVM refuses memory slots in the SMM address space of this VM type */
    if (x86ms->smm == ON_OFF_AUTO_AUTO) {
        x86ms->smm = ON_OFF_AUTO_OFF;
    } else if (x86ms->smm == ON_OFF_AUTO_ON) {
        error_setg(errp, "%s '%s' does not support SMM",
                   TYPE_SW_PROTECTED_GUEST,
                   object_get_canonical_path_component(OBJECT(cgs)));
        error_append_hint(errp, "Use smm=off, or leave it out.\n");
        return -1;
    }
    if (!kvm_enable_hypercall(BIT_ULL(KVM_HC_MAP_GPA_RANGE))) {
        error_setg(errp, "%s '%s': KVM cannot pass the guest's "
                   "KVM_HC_MAP_GPA_RANGE hypercalls to QEMU",
                   TYPE_SW_PROTECTED_GUEST,
                   object_get_canonical_path_component(OBJECT(cgs)));
        error_append_hint(errp, "The host kernel needs "
                          "KVM_CAP_EXIT_HYPERCALL (Linux 6.0 or later).\n");
        return -1;
    }
    /* Nothing is measured: the guest runs as launched from the start */
    cgs->launched = true;
    cgs->ready = true;
    return 0;
}

static int sw_protected_guest_kvm_type(X86ConfidentialGuest *cg)
{
    return KVM_X86_SW_PROTECTED_VM;
}

static void sw_protected_guest_init(Object *obj)
{
    ConfidentialGuestSupport *cgs = CONFIDENTIAL_GUEST_SUPPORT(obj);

    /*
     * Guest RAM is guest_memfd converted in place (refused otherwise);
     * firmware stays ordinary memory, ROM where it is ROM, which the guest
     * never converts: nothing is launched from it, unlike SEV-SNP and TDX.
     */
    cgs->convert_in_place = true;
    cgs->private_plain = true;
}

static void sw_protected_guest_class_init(ObjectClass *oc, const void *data)
{
    ConfidentialGuestSupportClass *klass = CONFIDENTIAL_GUEST_SUPPORT_CLASS(oc);
    X86ConfidentialGuestClass *x86_klass = X86_CONFIDENTIAL_GUEST_CLASS(oc);

    klass->kvm_init = sw_protected_guest_kvm_init;
    x86_klass->kvm_type = sw_protected_guest_kvm_type;
}

static const TypeInfo sw_protected_guest_info = {
    .parent = TYPE_X86_CONFIDENTIAL_GUEST,
    .name = TYPE_SW_PROTECTED_GUEST,
    .instance_size = sizeof(SwProtectedGuest),
    .instance_init = sw_protected_guest_init,
    .class_init = sw_protected_guest_class_init,
    .interfaces = (const InterfaceInfo[]) {
        { TYPE_USER_CREATABLE },
        { }
    },
};

static void sw_protected_guest_register_types(void)
{
    type_register_static(&sw_protected_guest_info);
}

type_init(sw_protected_guest_register_types)
