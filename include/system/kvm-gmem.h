/*
 * KVM guest_memfd: what the host offers, and how QEMU converts memory
 * between shared and private with it
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef SYSTEM_KVM_GMEM_H
#define SYSTEM_KVM_GMEM_H

#include "qapi/qapi-types-accelerator.h"
#include "system/kvm.h"

/* What the host's KVM reports for a VM, probed once when KVM starts */
typedef struct KvmGmemCaps {
    /* KVM_CAP_GUEST_MEMFD and KVM_CAP_USER_MEMORY2 */
    bool guest_memfd;
    /* KVM_CAP_GUEST_MEMFD_FLAGS */
    uint64_t gmem_flags;
    /* KVM_CAP_MEMORY_ATTRIBUTES */
    uint64_t vm_attrs;
    /* KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES */
    uint64_t gmem_attrs;
    /* KVM_CAP_MEMORY_ATTRIBUTES2_FLAGS (proposed) */
    uint64_t attr2_flags;
    /* KVM_CAP_MEMORY_ATTRIBUTES2_{PRE,POST}_LAUNCH_FLAGS (proposed) */
    uint64_t pre_launch_flags;
    uint64_t post_launch_flags;
    /* The VM type populates private memory at launch (SEV-SNP, TDX) */
    bool launch_update;
} KvmGmemCaps;

/* How each kind of conversion is carried out on this host */
typedef struct KvmGmemTable {
    KvmGuestMemfdMode mode;
    KvmGuestMemfdMeans means[KVM_GUEST_MEMFD_PHASE__MAX]
                            [KVM_GUEST_MEMFD_DIRECTION__MAX]
                            [KVM_GUEST_MEMFD_CONTENT__MAX];
} KvmGmemTable;

/**
 * kvm_gmem_caps_table: decide how to convert memory with what KVM offers
 * @caps: what KVM reports
 * @table: filled with the mode and, for each launch phase, direction and
 *         content request, the means of carrying the conversion out
 *
 * A pure function of @caps, so that every kernel generation can be tested.
 */
void kvm_gmem_caps_table(const KvmGmemCaps *caps, KvmGmemTable *table);

/**
 * kvm_gmem_check_in_place: can this host convert memory in place?
 * @table: what kvm_gmem_caps_table() derived
 * @errp: pointer to Error*, to store the reason if it cannot
 *
 * Returns: true if guest_memfd memory converts between shared and private
 * in place, with per-file memory attributes.
 */
bool kvm_gmem_check_in_place(const KvmGmemTable *table, Error **errp);

/**
 * kvm_gmem_init: probe what KVM offers for guest_memfd memory
 * @s: the KVM state, with its VM created
 * @ms: the machine
 * @errp: pointer to Error*, to store an error if it happens
 *
 * Called once when KVM starts, before the confidential guest support
 * starts its launch.  Fails if that asks to convert memory in place and
 * the host cannot.
 */
bool kvm_gmem_init(KVMState *s, MachineState *ms, Error **errp);

/* What kvm_gmem_init() found, and the table it derived */
const KvmGmemCaps *kvm_gmem_get_caps(void);
const KvmGmemTable *kvm_gmem_get_table(void);

#endif
