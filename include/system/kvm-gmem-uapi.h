/*
 * KVM guest_memfd in-place shared/private conversion: the proposed uAPI
 *
 * PROPOSED, not in any released kernel, so it cannot be imported into
 * linux-headers/ by scripts/update-linux-headers.sh.  From the public
 * review of "KVM: guest_memfd: In-place conversion support" (newest
 * revision seen: v8) and the threads it grew from.  The numbers moved
 * between revisions: every proposed constant is here, so that one edit
 * retargets a revision.  Each group is guarded on its own, so that a
 * linux-headers update that brings some of them wins for those and this
 * file supplies the rest; remove it once linux-headers has them all.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef SYSTEM_KVM_GMEM_UAPI_H
#define SYSTEM_KVM_GMEM_UAPI_H

#include <linux/kvm.h>

/* attributes KVM_SET_MEMORY_ATTRIBUTES2 accepts on a guest_memfd (v8) */
#ifndef KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES
#define KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES 250   /* 246, 248, 249 before */
#endif

/* proposed in v4/v5: content flags of KVM_SET_MEMORY_ATTRIBUTES2 */
#ifndef KVM_CAP_MEMORY_ATTRIBUTES2_FLAGS
#define KVM_CAP_MEMORY_ATTRIBUTES2_FLAGS 251        /* 250 in v4 */
#endif

/* proposed in review of v5: the same, per launch phase */
#ifndef KVM_CAP_MEMORY_ATTRIBUTES2_PRE_LAUNCH_FLAGS
#define KVM_CAP_MEMORY_ATTRIBUTES2_PRE_LAUNCH_FLAGS 252
#define KVM_CAP_MEMORY_ATTRIBUTES2_POST_LAUNCH_FLAGS 253
#endif

/* A guest_memfd ioctl, with KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES */
#ifndef KVM_SET_MEMORY_ATTRIBUTES2
struct kvm_memory_attributes2 {
    union {
        __u64 address;
        __u64 offset;
    };
    __u64 size;
    __u64 attributes;
    __u64 flags;
    __u64 error_offset;     /* out: the first offset that failed */
    __u64 reserved[11];
};

#define KVM_SET_MEMORY_ATTRIBUTES2 \
    _IOWR(KVMIO, 0xd2, struct kvm_memory_attributes2)
#endif

/* proposed in v4/v5 (v6 to v8 require flags == 0) */
#ifndef KVM_SET_MEMORY_ATTRIBUTES2_ZERO
#define KVM_SET_MEMORY_ATTRIBUTES2_ZERO         (1ULL << 0)
#define KVM_SET_MEMORY_ATTRIBUTES2_PRESERVE     (1ULL << 1)
#endif

#endif
