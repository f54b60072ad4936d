/*
 * KVM guest_memfd: from what KVM offers to how QEMU converts memory
 *
 * The guest_memfd conversion interface exists in several revisions: none
 * (Linux 6.18: mappable guest_memfd, shared memory only); the VM memory
 * attributes of the two-backing model; and per-file attributes that
 * convert the pages of one guest_memfd in place, with content flags in
 * some revisions (v4/v5, possibly per launch phase) and none in others
 * (v6 to v8, where launch updates with a NULL source preserve contents).
 * One table says how each conversion is done on this host, so that a
 * caller asking for a content guarantee gets it or an error, never less.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "system/kvm-gmem.h"
#include "system/kvm-gmem-uapi.h"

static KvmGuestMemfdMode kvm_gmem_mode(const KvmGmemCaps *caps)
{
    if (!caps->guest_memfd) {
        return KVM_GUEST_MEMFD_MODE_NONE;
    }
    if (caps->gmem_attrs & KVM_MEMORY_ATTRIBUTE_PRIVATE) {
        return KVM_GUEST_MEMFD_MODE_IN_PLACE;
    }
    if (caps->vm_attrs & KVM_MEMORY_ATTRIBUTE_PRIVATE) {
        return KVM_GUEST_MEMFD_MODE_LEGACY;
    }
    if (caps->gmem_flags & GUEST_MEMFD_FLAG_MMAP) {
        return KVM_GUEST_MEMFD_MODE_SHARED_ONLY;
    }
    return KVM_GUEST_MEMFD_MODE_NONE;
}

/* Content flags at all: revisions v4/v5 of in-place conversion */
static bool kvm_gmem_has_content_flags(const KvmGmemCaps *caps)
{
    return caps->attr2_flags || caps->pre_launch_flags ||
           caps->post_launch_flags;
}

/* The content flags of KVM_SET_MEMORY_ATTRIBUTES2 usable in @phase */
static uint64_t kvm_gmem_content_flags(const KvmGmemCaps *caps,
                                       KvmGuestMemfdPhase phase)
{
    uint64_t flags;

    if (caps->pre_launch_flags || caps->post_launch_flags) {
        return phase == KVM_GUEST_MEMFD_PHASE_PRE_LAUNCH ?
               caps->pre_launch_flags : caps->post_launch_flags;
    }
    /*
     * One mask for all phases: by the rule of the thread that proposed the
     * flags, VM types whose memory is encrypted can preserve contents only
     * before launch (and only toward private, see kvm_gmem_means()).
     */
    flags = caps->attr2_flags;
    if (caps->launch_update && phase == KVM_GUEST_MEMFD_PHASE_RUNTIME) {
        flags &= ~KVM_SET_MEMORY_ATTRIBUTES2_PRESERVE;
    }
    return flags;
}

static KvmGuestMemfdMeans kvm_gmem_means(const KvmGmemCaps *caps,
                                         KvmGuestMemfdMode mode,
                                         KvmGuestMemfdPhase phase,
                                         KvmGuestMemfdDirection dir,
                                         KvmGuestMemfdContent content)
{
    bool to_private = dir == KVM_GUEST_MEMFD_DIRECTION_TO_PRIVATE;
    bool pre_launch = phase == KVM_GUEST_MEMFD_PHASE_PRE_LAUNCH;
    uint64_t flags = kvm_gmem_content_flags(caps, phase);

    if (mode != KVM_GUEST_MEMFD_MODE_LEGACY &&
        mode != KVM_GUEST_MEMFD_MODE_IN_PLACE) {
        return KVM_GUEST_MEMFD_MEANS_UNSUPPORTED;
    }

    switch (content) {
    case KVM_GUEST_MEMFD_CONTENT_UNSPECIFIED:
        return KVM_GUEST_MEMFD_MEANS_PLAIN;

    case KVM_GUEST_MEMFD_CONTENT_ZERO:
        /* Only the guest reads private memory, and it accepts it first */
        if (to_private) {
            return KVM_GUEST_MEMFD_MEANS_UNSUPPORTED;
        }
        if (mode == KVM_GUEST_MEMFD_MODE_LEGACY) {
            return KVM_GUEST_MEMFD_MEANS_INHERENT;
        }
        if (flags & KVM_SET_MEMORY_ATTRIBUTES2_ZERO) {
            return KVM_GUEST_MEMFD_MEANS_KERNEL_FLAG;
        }
        /* A hole punched in shared memory reads back as zeros */
        return KVM_GUEST_MEMFD_MEANS_USERSPACE;

    case KVM_GUEST_MEMFD_CONTENT_PRESERVE:
        /* Encrypted memory never becomes readable in clear again */
        if (caps->launch_update && !to_private) {
            return KVM_GUEST_MEMFD_MEANS_UNSUPPORTED;
        }
        if (mode == KVM_GUEST_MEMFD_MODE_IN_PLACE &&
            (flags & KVM_SET_MEMORY_ATTRIBUTES2_PRESERVE)) {
            return KVM_GUEST_MEMFD_MEANS_KERNEL_FLAG;
        }
        /*
         * The launch update carries the contents in: from the shared
         * backing with two backings, or in place with a NULL source, which
         * in-place kernels without content flags (v6 on) accept instead.
         */
        if (caps->launch_update && pre_launch &&
            (mode == KVM_GUEST_MEMFD_MODE_LEGACY ||
             !kvm_gmem_has_content_flags(caps))) {
            return KVM_GUEST_MEMFD_MEANS_POPULATE;
        }
        return KVM_GUEST_MEMFD_MEANS_UNSUPPORTED;

    default:
        g_assert_not_reached();
    }
}

void kvm_gmem_caps_table(const KvmGmemCaps *caps, KvmGmemTable *table)
{
    table->mode = kvm_gmem_mode(caps);
    for (int p = 0; p < KVM_GUEST_MEMFD_PHASE__MAX; p++) {
        for (int d = 0; d < KVM_GUEST_MEMFD_DIRECTION__MAX; d++) {
            for (int c = 0; c < KVM_GUEST_MEMFD_CONTENT__MAX; c++) {
                table->means[p][d][c] = kvm_gmem_means(caps, table->mode,
                                                       p, d, c);
            }
        }
    }
}

bool kvm_gmem_check_in_place(const KvmGmemTable *table, Error **errp)
{
    if (table->mode == KVM_GUEST_MEMFD_MODE_IN_PLACE) {
        return true;
    }
    error_setg(errp, "the host's KVM cannot convert guest_memfd memory in "
               "place (mode %s): it needs per-file memory attributes "
               "(KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES) and "
               "kvm.vm_memory_attributes=0",
               KvmGuestMemfdMode_str(table->mode));
    return false;
}
