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
                                       const KvmGmemVmType *vm,
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
    if (vm->launch_update && phase == KVM_GUEST_MEMFD_PHASE_RUNTIME) {
        flags &= ~KVM_SET_MEMORY_ATTRIBUTES2_PRESERVE;
    }
    return flags;
}

static KvmGuestMemfdMeans kvm_gmem_means(const KvmGmemCaps *caps,
                                         const KvmGmemVmType *vm,
                                         KvmGuestMemfdMode mode,
                                         KvmGuestMemfdPhase phase,
                                         KvmGuestMemfdDirection dir,
                                         KvmGuestMemfdContent content)
{
    bool to_private = dir == KVM_GUEST_MEMFD_DIRECTION_TO_PRIVATE;
    bool pre_launch = phase == KVM_GUEST_MEMFD_PHASE_PRE_LAUNCH;
    uint64_t flags = kvm_gmem_content_flags(caps, vm, phase);

    if (mode != KVM_GUEST_MEMFD_MODE_LEGACY &&
        mode != KVM_GUEST_MEMFD_MODE_IN_PLACE) {
        return KVM_GUEST_MEMFD_MEANS_UNSUPPORTED;
    }

    switch (content) {
    case KVM_GUEST_MEMFD_CONTENT_UNSPECIFIED:
        return KVM_GUEST_MEMFD_MEANS_PLAIN;

    case KVM_GUEST_MEMFD_CONTENT_ZERO:
        /*
         * Only the guest reads private memory, and it accepts it first;
         * v5 refuses ZERO toward private with EOPNOTSUPP
         */
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
        if (vm->launch_update && !to_private) {
            return KVM_GUEST_MEMFD_MEANS_UNSUPPORTED;
        }
        if (mode == KVM_GUEST_MEMFD_MODE_IN_PLACE &&
            (flags & KVM_SET_MEMORY_ATTRIBUTES2_PRESERVE)) {
            return KVM_GUEST_MEMFD_MEANS_KERNEL_FLAG;
        }
        /*
         * Without content flags (v6 on), a conversion in place keeps the
         * page, and memory that is not encrypted keeps what it holds
         */
        if (mode == KVM_GUEST_MEMFD_MODE_IN_PLACE && vm->private_plain &&
            !kvm_gmem_has_content_flags(caps)) {
            return KVM_GUEST_MEMFD_MEANS_INHERENT;
        }
        /*
         * The launch update carries the contents in: from the shared
         * backing with two backings, or in place with a NULL source, which
         * in-place kernels without content flags (v6 on) accept instead.
         */
        if (vm->launch_update && pre_launch &&
            (mode == KVM_GUEST_MEMFD_MODE_LEGACY ||
             !kvm_gmem_has_content_flags(caps))) {
            return KVM_GUEST_MEMFD_MEANS_POPULATE;
        }
        return KVM_GUEST_MEMFD_MEANS_UNSUPPORTED;

    default:
        g_assert_not_reached();
    }
}

void kvm_gmem_caps_table(const KvmGmemCaps *caps, const KvmGmemVmType *vm,
                         KvmGmemTable *table)
{
    table->mode = kvm_gmem_mode(caps);
    table->param = caps->param;
    for (int p = 0; p < KVM_GUEST_MEMFD_PHASE__MAX; p++) {
        for (int d = 0; d < KVM_GUEST_MEMFD_DIRECTION__MAX; d++) {
            for (int c = 0; c < KVM_GUEST_MEMFD_CONTENT__MAX; c++) {
                table->means[p][d][c] = kvm_gmem_means(caps, vm,
                                                       table->mode, p, d, c);
            }
        }
    }
}

/* How to switch in-place conversion on, for the kernel this is */
static void kvm_gmem_hint_in_place(const KvmGmemTable *table, Error **errp)
{
    switch (table->param) {
    case KVM_GMEM_PARAM_GMEM_IN_PLACE:
        error_append_hint(errp, "Boot the host with "
                          "kvm.gmem_in_place_conversion=1 (or load kvm "
                          "with gmem_in_place_conversion=1), and use a VM "
                          "type with private memory.\n");
        break;
    case KVM_GMEM_PARAM_VM_MEMORY_ATTRS:
        error_append_hint(errp, "Boot the host with "
                          "kvm.vm_memory_attributes=0 (or load kvm with "
                          "vm_memory_attributes=0), and use a VM type with "
                          "private memory.\n");
        break;
    default:
        error_append_hint(errp, "It needs a host kernel with the guest_memfd "
                          "in-place conversion series, booted with "
                          "kvm.gmem_in_place_conversion=1 (v8 and later) "
                          "or kvm.vm_memory_attributes=0 (earlier "
                          "revisions).\n");
        break;
    }
}

bool kvm_gmem_check_in_place(const KvmGmemTable *table, Error **errp)
{
    if (table->mode == KVM_GUEST_MEMFD_MODE_IN_PLACE) {
        return true;
    }
    error_setg(errp, "the host's KVM cannot convert guest_memfd memory in "
               "place (mode %s): it offers no per-file memory attributes "
               "(KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES) for this VM",
               KvmGuestMemfdMode_str(table->mode));
    kvm_gmem_hint_in_place(table, errp);
    return false;
}

/*
 * The numbers KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES and
 * KVM_CAP_MEMORY_ATTRIBUTES2_FLAGS had in the revisions of the in-place
 * conversion series, newest first: 249 and 250 in v4 and v5, 249 alone in
 * v7 (v6 dropped the flags), 250 in v8, 251 in a later work tree.  Later
 * kernels gave 250 and 251 to other capabilities (KVM_CAP_PPC_COMPAT_CAPS,
 * KVM_CAP_ARM_PMU_V3_STRICT), so an answer is evidence, never proof.  A
 * kernel header that numbers the capability replaces the table.
 */
typedef struct KvmGmemRevision {
    unsigned int attrs_cap;
    unsigned int flags_cap;     /* 0: the revision has no content flags */
} KvmGmemRevision;

static const KvmGmemRevision kvm_gmem_revisions[] = {
#ifdef KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES
#ifdef KVM_CAP_MEMORY_ATTRIBUTES2_FLAGS
    { KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES, KVM_CAP_MEMORY_ATTRIBUTES2_FLAGS },
#else
    { KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES, 0 },
#endif
#else
    { 250, 0 },         /* v8 */
    { 251, 0 },         /* a later work tree */
    { 249, 250 },       /* v4, v5; v7 without the flags */
#endif
};

#define KVM_GMEM_CONTENT_FLAGS \
    (KVM_SET_MEMORY_ATTRIBUTES2_ZERO | KVM_SET_MEMORY_ATTRIBUTES2_PRESERVE)

void kvm_gmem_caps_read(KvmGmemCaps *caps, KvmGmemCheckFn check,
                        void *opaque)
{
    caps->guest_memfd = check(opaque, KVM_CAP_GUEST_MEMFD) &&
                        check(opaque, KVM_CAP_USER_MEMORY2);
    caps->gmem_flags = check(opaque, KVM_CAP_GUEST_MEMFD_FLAGS);
    caps->vm_attrs = check(opaque, KVM_CAP_MEMORY_ATTRIBUTES);
    caps->gmem_attrs = caps->attr2_flags = 0;
    caps->gmem_attrs_cap = caps->attr2_flags_cap = 0;

    for (int i = 0; i < ARRAY_SIZE(kvm_gmem_revisions); i++) {
        const KvmGmemRevision *r = &kvm_gmem_revisions[i];
        uint64_t attrs = check(opaque, r->attrs_cap);
        uint64_t flags;

        if (!(attrs & KVM_MEMORY_ATTRIBUTE_PRIVATE)) {
            continue;
        }
        caps->gmem_attrs = KVM_MEMORY_ATTRIBUTE_PRIVATE;
        caps->gmem_attrs_cap = r->attrs_cap;
        flags = r->flags_cap ? check(opaque, r->flags_cap) : 0;
        if (flags && !(flags & ~KVM_GMEM_CONTENT_FLAGS)) {
            caps->attr2_flags = flags;
            caps->attr2_flags_cap = r->flags_cap;
        }
        break;
    }

#ifdef KVM_CAP_MEMORY_ATTRIBUTES2_PRE_LAUNCH_FLAGS
    caps->pre_launch_flags =
        check(opaque, KVM_CAP_MEMORY_ATTRIBUTES2_PRE_LAUNCH_FLAGS) &
        KVM_GMEM_CONTENT_FLAGS;
    caps->post_launch_flags =
        check(opaque, KVM_CAP_MEMORY_ATTRIBUTES2_POST_LAUNCH_FLAGS) &
        KVM_GMEM_CONTENT_FLAGS;
#else
    caps->pre_launch_flags = caps->post_launch_flags = 0;
#endif
}

/* Convert the scratch page to the other state, and back to @shared */
static int kvm_gmem_try_round_trip(KvmGmemTryFn try, void *opaque,
                                   bool shared, uint64_t there,
                                   uint64_t back)
{
    int ret = try(opaque, shared, there);

    if (ret) {
        return ret;
    }
    ret = try(opaque, !shared, back);
    if (ret && back) {
        /* back without the flag, for the next check */
        try(opaque, !shared, 0);
    }
    return ret;
}

bool kvm_gmem_caps_confirm(KvmGmemCaps *caps, bool start_shared,
                           KvmGmemTryFn try, void *opaque, Error **errp)
{
    uint64_t zero = KVM_SET_MEMORY_ATTRIBUTES2_ZERO;
    uint64_t preserve = KVM_SET_MEMORY_ATTRIBUTES2_PRESERVE;
    uint64_t claimed, dropped = 0;
    int ret;

    if (!(caps->gmem_attrs & KVM_MEMORY_ATTRIBUTE_PRIVATE)) {
        return true;
    }
    ret = kvm_gmem_try_round_trip(try, opaque, start_shared, 0, 0);
    if (ret) {
        error_setg(errp, "KVM capability %u reports that guest_memfd memory "
                   "converts in place, but converting a page of a "
                   "guest_memfd of this VM failed (%s): ignoring it",
                   caps->gmem_attrs_cap, strerror(-ret));
        caps->gmem_attrs = caps->attr2_flags = 0;
        caps->gmem_attrs_cap = caps->attr2_flags_cap = 0;
        caps->pre_launch_flags = caps->post_launch_flags = 0;
        return false;
    }

    /* ZERO on the way to shared, PRESERVE on the way to private */
    claimed = caps->attr2_flags | caps->pre_launch_flags |
              caps->post_launch_flags;
    if ((claimed & zero) &&
        kvm_gmem_try_round_trip(try, opaque, start_shared,
                                start_shared ? 0 : zero,
                                start_shared ? zero : 0)) {
        dropped |= zero;
    }
    if ((claimed & preserve) &&
        kvm_gmem_try_round_trip(try, opaque, start_shared,
                                start_shared ? preserve : 0,
                                start_shared ? 0 : preserve)) {
        dropped |= preserve;
    }
    if (dropped) {
        error_setg(errp, "KVM reports the guest_memfd conversion flags 0x%"
                   PRIx64 ", but conversions with 0x%" PRIx64 " failed: "
                   "ignoring those", claimed, dropped);
        caps->attr2_flags &= ~dropped;
        caps->pre_launch_flags &= ~dropped;
        caps->post_launch_flags &= ~dropped;
        return false;
    }
    return true;
}
