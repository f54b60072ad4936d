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

/* Which module parameter switches in-place conversion on this host */
typedef enum KvmGmemParam {
    KVM_GMEM_PARAM_UNKNOWN,             /* neither exists */
    KVM_GMEM_PARAM_GMEM_IN_PLACE,       /* kvm.gmem_in_place_conversion */
    KVM_GMEM_PARAM_VM_MEMORY_ATTRS,     /* kvm.vm_memory_attributes */
} KvmGmemParam;

/* What the host's KVM reports for a VM, probed once when KVM starts */
typedef struct KvmGmemCaps {
    /* KVM_CAP_GUEST_MEMFD and KVM_CAP_USER_MEMORY2 */
    bool guest_memfd;
    /* KVM_CAP_GUEST_MEMFD_FLAGS */
    uint64_t gmem_flags;
    /* KVM_CAP_MEMORY_ATTRIBUTES */
    uint64_t vm_attrs;
    /* KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES, and the number it answered at */
    uint64_t gmem_attrs;
    unsigned int gmem_attrs_cap;
    /* KVM_CAP_MEMORY_ATTRIBUTES2_FLAGS (v4/v5), and its number */
    uint64_t attr2_flags;
    unsigned int attr2_flags_cap;
    /* Per launch phase; only where a kernel header numbers them */
    uint64_t pre_launch_flags;
    uint64_t post_launch_flags;
    KvmGmemParam param;
} KvmGmemCaps;

/* What the VM type, set by the machine's configuration, does with memory */
typedef struct KvmGmemVmType {
    /* It populates private memory at launch (SEV-SNP, TDX) */
    bool launch_update;
    /*
     * Private memory is not encrypted, so a conversion in place keeps the
     * contents (software-protected VMs)
     */
    bool private_plain;
} KvmGmemVmType;

/* KVM_CHECK_EXTENSION on the VM: the value, 0 for none */
typedef uint64_t (*KvmGmemCheckFn)(void *opaque, unsigned int cap);

/**
 * kvm_gmem_caps_read: read the guest_memfd capabilities of a VM
 * @caps: filled with what KVM reports; @param is left alone
 * @check: asks KVM about one capability
 * @opaque: for @check
 *
 * The in-place capabilities had other numbers in each revision of the
 * kernel series, and later kernels gave those numbers to unrelated
 * capabilities: a value read here is evidence only, which
 * kvm_gmem_caps_confirm() must back with behaviour.
 */
void kvm_gmem_caps_read(KvmGmemCaps *caps, KvmGmemCheckFn check,
                        void *opaque);

/* Convert the scratch page of kvm_gmem_caps_confirm(): 0 or -errno */
typedef int (*KvmGmemTryFn)(void *opaque, bool to_private, uint64_t flags);

/**
 * kvm_gmem_caps_confirm: check by conversions what the capabilities claim
 * @caps: what kvm_gmem_caps_read() found; claims that fail are removed
 * @start_shared: whether the scratch page starts shared
 * @try: converts a scratch page of a guest_memfd of this VM
 * @opaque: for @try
 * @errp: set, for a warning, to what was removed and why
 *
 * In-place conversion is confirmed by converting the page to the other
 * state and back, each content flag by a conversion that uses it.
 *
 * Returns: true if every claim held.
 */
bool kvm_gmem_caps_confirm(KvmGmemCaps *caps, bool start_shared,
                           KvmGmemTryFn try, void *opaque, Error **errp);

/* How each kind of conversion is carried out on this host */
typedef struct KvmGmemTable {
    KvmGuestMemfdMode mode;
    /* For the hint of a refusal: how in-place conversion is switched on */
    KvmGmemParam param;
    KvmGuestMemfdMeans means[KVM_GUEST_MEMFD_PHASE__MAX]
                            [KVM_GUEST_MEMFD_DIRECTION__MAX]
                            [KVM_GUEST_MEMFD_CONTENT__MAX];
} KvmGmemTable;

/**
 * kvm_gmem_caps_table: decide how to convert memory with what KVM offers
 * @caps: what KVM reports
 * @vm: what the VM type does with memory
 * @table: filled with the mode and, for each launch phase, direction and
 *         content request, the means of carrying the conversion out
 *
 * A pure function of @caps and @vm, so that every kernel generation can
 * be tested with every VM type.
 */
void kvm_gmem_caps_table(const KvmGmemCaps *caps, const KvmGmemVmType *vm,
                         KvmGmemTable *table);

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

/*
 * kvm_gmem_phase: the launch phase of the VM: pre-launch for a
 * confidential guest that populates private memory at launch, until it
 * finishes its launch; runtime after that, and for every other VM.
 */
KvmGuestMemfdPhase kvm_gmem_phase(void);

#endif
