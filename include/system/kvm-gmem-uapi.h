/*
 * KVM guest_memfd in-place shared/private conversion: the proposed uAPI
 *
 * PROPOSED, not in any released kernel, so it cannot be imported into
 * linux-headers/ by scripts/update-linux-headers.sh.  From the public
 * review of "KVM: guest_memfd: In-place conversion support" (newest
 * revision seen: v8) and the threads it grew from.  Each group is guarded
 * on its own, so that a linux-headers update that brings some of them
 * wins for those and this file supplies the rest; remove it once
 * linux-headers has them all.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef SYSTEM_KVM_GMEM_UAPI_H
#define SYSTEM_KVM_GMEM_UAPI_H

#include <linux/kvm.h>

/*
 * KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES and KVM_CAP_MEMORY_ATTRIBUTES2_FLAGS
 * are not defined here: their numbers moved with every revision and were
 * given to other capabilities later, so accel/kvm/kvm-gmem-caps.c keeps
 * the numbers of each revision and confirms what they answer by
 * converting memory.  The per-launch-phase flag capabilities proposed in
 * review were never numbered; QEMU reads them only where a kernel header
 * defines them.
 */

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
