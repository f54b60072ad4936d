/*
 * KVM guest_memfd: probing what the host offers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sys/ioctl.h>
#include "hw/boards.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "system/confidential-guest-support.h"
#include "system/kvm.h"
#include "system/kvm_int.h"
#include "system/kvm-gmem.h"
#include "system/kvm-gmem-uapi.h"
#include "trace.h"

static KvmGmemCaps kvm_gmem_caps;
static KvmGmemVmType kvm_gmem_vm_type;
static KvmGmemTable kvm_gmem_table;

static uint64_t kvm_gmem_check(void *opaque, unsigned int cap)
{
    int ret = kvm_vm_check_extension(opaque, cap);

    return ret > 0 ? ret : 0;
}

/* The module parameter that switches in-place conversion, if any */
static KvmGmemParam kvm_gmem_param(void)
{
    if (access("/sys/module/kvm/parameters/gmem_in_place_conversion",
               F_OK) == 0) {
        return KVM_GMEM_PARAM_GMEM_IN_PLACE;
    }
    if (access("/sys/module/kvm/parameters/vm_memory_attributes",
               F_OK) == 0) {
        return KVM_GMEM_PARAM_VM_MEMORY_ATTRS;
    }
    return KVM_GMEM_PARAM_UNKNOWN;
}

static int kvm_gmem_try(void *opaque, bool to_private, uint64_t flags)
{
    struct kvm_memory_attributes2 attrs = {
        .size = qemu_real_host_page_size(),
        .attributes = to_private ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0,
        .flags = flags,
    };
    int ret = ioctl(*(int *)opaque, KVM_SET_MEMORY_ATTRIBUTES2, &attrs);

    ret = ret < 0 ? -errno : 0;
    trace_kvm_gmem_caps_try(to_private, flags, ret);
    return ret;
}

/*
 * Confirm what the capabilities claim about converting in place on a
 * guest_memfd of one page, created for it and closed again.
 */
static void kvm_gmem_confirm(KVMState *s, KvmGmemCaps *caps)
{
    uint64_t shared = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED;
    bool start_shared = (caps->gmem_flags & shared) == shared;
    struct kvm_create_guest_memfd gmem = {
        .size = qemu_real_host_page_size(),
        .flags = start_shared ? shared : 0,
    };
    Error *err = NULL;
    int fd;

    if (!(caps->gmem_attrs & KVM_MEMORY_ATTRIBUTE_PRIVATE)) {
        return;
    }
    fd = kvm_vm_ioctl(s, KVM_CREATE_GUEST_MEMFD, &gmem);
    if (fd < 0) {
        warn_report("KVM capability %u reports that guest_memfd memory "
                    "converts in place, but a guest_memfd to check it "
                    "cannot be created (%s): ignoring it",
                    caps->gmem_attrs_cap, strerror(-fd));
        caps->gmem_attrs = caps->attr2_flags = 0;
        caps->pre_launch_flags = caps->post_launch_flags = 0;
        return;
    }
    if (!kvm_gmem_caps_confirm(caps, start_shared, kvm_gmem_try, &fd,
                               &err)) {
        warn_report_err(err);
    }
    close(fd);
}

bool kvm_gmem_init(KVMState *s, MachineState *ms, Error **errp)
{
    KvmGmemCaps *caps = &kvm_gmem_caps;
    KvmGmemVmType *vm = &kvm_gmem_vm_type;
    ConfidentialGuestSupport *cgs = ms->cgs;

    kvm_gmem_caps_read(caps, kvm_gmem_check, s);
    caps->param = kvm_gmem_param();
    kvm_gmem_confirm(s, caps);

    /* The confidential guests that encrypt memory populate it at launch */
    vm->private_plain = cgs && cgs->private_plain;
    vm->launch_update = machine_require_guest_memfd(ms) &&
                        !vm->private_plain;
    kvm_gmem_caps_table(caps, vm, &kvm_gmem_table);
    trace_kvm_gmem_caps(KvmGuestMemfdMode_str(kvm_gmem_table.mode),
                        caps->gmem_flags, caps->vm_attrs, caps->gmem_attrs,
                        caps->gmem_attrs_cap,
                        caps->attr2_flags, caps->pre_launch_flags,
                        caps->post_launch_flags, vm->launch_update);

    if (machine_convert_in_place(ms) &&
        !kvm_gmem_check_in_place(&kvm_gmem_table, errp)) {
        /* Some types always convert in place, others on request */
        bool asked = object_property_find(OBJECT(ms->cgs),
                                          "convert-in-place");

        error_prepend(errp, "%s '%s' %s, but ",
                      object_get_typename(OBJECT(ms->cgs)),
                      object_get_canonical_path_component(OBJECT(ms->cgs)),
                      asked ? "has convert-in-place=on" :
                      "converts memory in place");
        return false;
    }
    /* Without VM memory attributes, there is no second backing */
    if (machine_require_guest_memfd(ms) && !machine_convert_in_place(ms) &&
        kvm_gmem_table.mode == KVM_GUEST_MEMFD_MODE_IN_PLACE &&
        !(caps->vm_attrs & KVM_MEMORY_ATTRIBUTE_PRIVATE)) {
        error_setg(errp, "%s '%s' needs convert-in-place=on: the host's KVM "
                   "converts guest_memfd memory in place and keeps no "
                   "private memory apart",
                   object_get_typename(OBJECT(ms->cgs)),
                   object_get_canonical_path_component(OBJECT(ms->cgs)));
        error_append_hint(errp, "Add convert-in-place=on to %s '%s', with "
                          "memory-backend-guest-memfd for guest RAM.\n",
                          object_get_typename(OBJECT(ms->cgs)),
                          object_get_canonical_path_component(
                              OBJECT(ms->cgs)));
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
