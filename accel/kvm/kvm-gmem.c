/*
 * KVM guest_memfd: probing what the host offers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "hw/boards.h"
#include "qapi/error.h"
#include "system/confidential-guest-support.h"
#include "system/kvm.h"
#include "system/kvm_int.h"
#include "system/kvm-gmem.h"
#include "system/kvm-gmem-uapi.h"
#include "trace.h"

static KvmGmemCaps kvm_gmem_caps;
static KvmGmemTable kvm_gmem_table;

static uint64_t kvm_gmem_check(KVMState *s, unsigned int cap)
{
    int ret = kvm_vm_check_extension(s, cap);

    return ret > 0 ? ret : 0;
}

bool kvm_gmem_init(KVMState *s, MachineState *ms, Error **errp)
{
    KvmGmemCaps *caps = &kvm_gmem_caps;

    caps->guest_memfd = kvm_gmem_check(s, KVM_CAP_GUEST_MEMFD) &&
                        kvm_gmem_check(s, KVM_CAP_USER_MEMORY2);
    caps->gmem_flags = kvm_gmem_check(s, KVM_CAP_GUEST_MEMFD_FLAGS);
    caps->vm_attrs = kvm_gmem_check(s, KVM_CAP_MEMORY_ATTRIBUTES);
    caps->gmem_attrs = kvm_gmem_check(s, KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES);
    caps->attr2_flags = kvm_gmem_check(s, KVM_CAP_MEMORY_ATTRIBUTES2_FLAGS);
    caps->pre_launch_flags =
        kvm_gmem_check(s, KVM_CAP_MEMORY_ATTRIBUTES2_PRE_LAUNCH_FLAGS);
    caps->post_launch_flags =
        kvm_gmem_check(s, KVM_CAP_MEMORY_ATTRIBUTES2_POST_LAUNCH_FLAGS);
    /* The confidential guests that need guest_memfd populate it at launch */
    caps->launch_update = machine_require_guest_memfd(ms);

    kvm_gmem_caps_table(caps, &kvm_gmem_table);
    trace_kvm_gmem_caps(KvmGuestMemfdMode_str(kvm_gmem_table.mode),
                        caps->gmem_flags, caps->vm_attrs, caps->gmem_attrs,
                        caps->attr2_flags, caps->pre_launch_flags,
                        caps->post_launch_flags, caps->launch_update);

    if (machine_convert_in_place(ms) &&
        !kvm_gmem_check_in_place(&kvm_gmem_table, errp)) {
        error_prepend(errp, "%s '%s' has convert-in-place=on, but ",
                      object_get_typename(OBJECT(ms->cgs)),
                      object_get_canonical_path_component(OBJECT(ms->cgs)));
        return false;
    }
    /* Without VM memory attributes, there is no second backing */
    if (machine_require_guest_memfd(ms) && !machine_convert_in_place(ms) &&
        kvm_gmem_table.mode == KVM_GUEST_MEMFD_MODE_IN_PLACE &&
        !(caps->vm_attrs & KVM_MEMORY_ATTRIBUTE_PRIVATE)) {
        error_setg(errp, "%s '%s' needs convert-in-place=on: the host's KVM "
                   "converts guest_memfd memory in place "
                   "(kvm.vm_memory_attributes=0) and keeps no private memory "
                   "apart", object_get_typename(OBJECT(ms->cgs)),
                   object_get_canonical_path_component(OBJECT(ms->cgs)));
        return false;
    }
    return true;
}

const KvmGmemTable *kvm_gmem_get_table(void)
{
    return &kvm_gmem_table;
}

const KvmGmemCaps *kvm_gmem_get_caps(void)
{
    return &kvm_gmem_caps;
}
