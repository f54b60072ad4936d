/*
 * KVM guest_memfd: converting memory between shared and private in place
 *
 * A conversion keeps three things in step: the kernel's attributes of the
 * guest_memfd, the state that the RamBlockAttributes of its RAM block
 * keeps, and the mappings of that state's listeners (VFIO), in the order
 * that never leaves a listener mapping private memory; and it undoes what
 * it did when a step fails.  The kernel is reached only through KvmGmemOps.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "system/kvm-gmem-convert.h"
#include "system/kvm-gmem-uapi.h"
#include "system/ramblock.h"

void kvm_gmem_file_init(KvmGmemFile *f, int fd, uint64_t size,
                        unsigned page_shift, RamBlockAttributes *attr,
                        const KvmGmemOps *ops, void *opaque,
                        const KvmGmemTable *table)
{
    assert((uint64_t)attr->bitmap_size << page_shift == size);
    *f = (KvmGmemFile) {
        .fd = fd,
        .size = size,
        .page_shift = page_shift,
        .attr = attr,
        .ops = ops,
        .opaque = opaque,
        .table = table,
    };
}

uint64_t kvm_gmem_file_shared_bytes(const KvmGmemFile *f)
{
    return f->attr->nr_populated << f->page_shift;
}

uint64_t kvm_gmem_file_private_bytes(const KvmGmemFile *f)
{
    return f->size - kvm_gmem_file_shared_bytes(f);
}

static bool kvm_gmem_range_valid(const KvmGmemFile *f, uint64_t offset,
                                 uint64_t size)
{
    uint64_t mask = (1ULL << f->page_shift) - 1;

    return size && !(offset & mask) && !(size & mask) &&
           offset < f->size && size <= f->size - offset;
}

/* The kernel call, once: 0 or -errno; *@error_offset on -EAGAIN */
static int kvm_gmem_set_attributes_once(KvmGmemFile *f, uint64_t offset,
                                        uint64_t size, bool to_private,
                                        uint64_t flags,
                                        uint64_t *error_offset)
{
    return f->ops->set_attributes(f->opaque, f->fd, offset, size,
                                  to_private ? KVM_MEMORY_ATTRIBUTE_PRIVATE :
                                               0, flags, error_offset);
}

static void kvm_gmem_set_attributes_error(uint64_t offset, uint64_t size,
                                          bool to_private, int ret,
                                          uint64_t error_offset, Error **errp)
{
    if (ret == -EAGAIN && to_private) {
        error_setg(errp, "cannot convert guest_memfd range 0x%" PRIx64
                   "+0x%" PRIx64 " to private: offset 0x%" PRIx64 " is "
                   "still in use after %d tries", offset, size, error_offset,
                   KVM_GMEM_CONVERT_TRIES);
    } else if (ret) {
        error_setg_errno(errp, -ret, "cannot convert guest_memfd range 0x%"
                         PRIx64 "+0x%" PRIx64 " to %s", offset, size,
                         to_private ? "private" : "shared");
    }
}

/*
 * The kernel call, retried while pages are busy, for memory that nothing
 * maps meanwhile (QEMU holds it private already)
 */
static int kvm_gmem_set_attributes(KvmGmemFile *f, uint64_t offset,
                                   uint64_t size, bool to_private,
                                   uint64_t flags, Error **errp)
{
    uint64_t error_offset = 0;
    int ret;

    for (unsigned attempt = 1; ; attempt++) {
        ret = kvm_gmem_set_attributes_once(f, offset, size, to_private, flags,
                                           &error_offset);
        /* Only conversions to private check that pages are unused */
        if (ret != -EAGAIN || !to_private ||
            attempt == KVM_GMEM_CONVERT_TRIES) {
            break;
        }
        f->retries++;
        f->ops->backoff(f->opaque, attempt);
    }
    kvm_gmem_set_attributes_error(offset, size, to_private, ret,
                                  error_offset, errp);
    return ret;
}

static int kvm_gmem_convert_to_private(KvmGmemFile *f, uint64_t offset,
                                       uint64_t size, uint64_t flags,
                                       Error **errp)
{
    uint64_t error_offset = 0;
    int ret;

    for (unsigned attempt = 1; ; attempt++) {
        /* Nothing may map memory that is becoming private */
        ret = ram_block_attributes_discard_begin(f->attr, offset, size);
        if (ret) {
            error_setg(errp, "cannot convert guest_memfd range 0x%" PRIx64
                       "+0x%" PRIx64 " to private: a device has it mapped",
                       offset, size);
            return ret;
        }
        ret = kvm_gmem_set_attributes_once(f, offset, size, true, flags,
                                           &error_offset);
        /*
         * Done, or still shared: then the listeners get it back, also
         * while busy pages are waited for, which may let other threads
         * run (KvmGmemOps.backoff): nothing is half-done meanwhile.
         */
        ram_block_attributes_discard_end(f->attr, offset, size, !ret);
        if (ret != -EAGAIN || attempt == KVM_GMEM_CONVERT_TRIES) {
            break;
        }
        f->retries++;
        f->ops->backoff(f->opaque, attempt);
    }
    kvm_gmem_set_attributes_error(offset, size, true, ret, error_offset,
                                  errp);
    return ret;
}

static int kvm_gmem_punch_run(void *opaque, uint64_t offset, uint64_t size)
{
    KvmGmemFile *f = opaque;

    return f->ops->punch_hole(f->opaque, f->fd, offset, size);
}

/*
 * Convert a run that was private back to private; where the kernel keeps
 * it shared, so does QEMU, and the listeners map it
 */
static int kvm_gmem_revert_run(void *opaque, uint64_t offset, uint64_t size)
{
    KvmGmemFile *f = opaque;

    if (kvm_gmem_set_attributes(f, offset, size, true, 0, NULL)) {
        ram_block_attributes_populate_anyway(f->attr, offset, size);
    }
    return 0;
}

static int kvm_gmem_convert_to_shared(KvmGmemFile *f, uint64_t offset,
                                      uint64_t size, uint64_t flags,
                                      bool punch, Error **errp)
{
    int ret;

    /*
     * Memory that is shared already (and may be mapped, even pinned) is
     * not converted and keeps its contents: when all of it is, only the
     * kernel is asked, as it would be about any range.
     */
    ret = kvm_gmem_set_attributes(f, offset, size, false, flags, errp);
    if (ret || ram_block_attributes_range_is(f->attr, offset, size, true)) {
        return ret;
    }
    /* What was private reads back as zeros once it is a hole */
    if (punch) {
        ret = ram_block_attributes_for_each_range(f->attr, offset, size,
                                                  false, kvm_gmem_punch_run,
                                                  f);
        if (ret) {
            error_setg_errno(errp, -ret, "cannot zero guest_memfd range 0x%"
                             PRIx64 "+0x%" PRIx64, offset, size);
            goto revert;
        }
    }
    /* Tell the listeners about what was private and is shared now */
    ret = ram_block_attributes_populate(f->attr, offset, size);
    if (ret) {
        error_setg_errno(errp, -ret, "cannot map guest_memfd range 0x%"
                         PRIx64 "+0x%" PRIx64 " once shared", offset, size);
        goto revert;
    }
    return 0;

revert:
    /* What was private goes back to private; what was shared stays */
    ram_block_attributes_for_each_range(f->attr, offset, size, false,
                                        kvm_gmem_revert_run, f);
    return ret;
}

int kvm_gmem_convert(KvmGmemFile *f, uint64_t offset, uint64_t size,
                     bool to_private, KvmGuestMemfdPhase phase,
                     KvmGuestMemfdContent content, Error **errp)
{
    KvmGuestMemfdDirection dir = to_private ?
        KVM_GUEST_MEMFD_DIRECTION_TO_PRIVATE :
        KVM_GUEST_MEMFD_DIRECTION_TO_SHARED;
    KvmGuestMemfdMeans means;
    uint64_t flags = 0;
    int ret;

    if (!kvm_gmem_range_valid(f, offset, size)) {
        error_setg(errp, "cannot convert guest_memfd range 0x%" PRIx64
                   "+0x%" PRIx64 ": not page-aligned or not within its 0x%"
                   PRIx64 " bytes", offset, size, f->size);
        f->failures++;
        return -EINVAL;
    }
    means = f->table->means[phase][dir][content];
    switch (means) {
    case KVM_GUEST_MEMFD_MEANS_UNSUPPORTED:
        error_setg(errp, "cannot convert guest_memfd memory to %s %s%s: "
                   "the host kernel does not support it",
                   to_private ? "private" : "shared",
                   phase == KVM_GUEST_MEMFD_PHASE_PRE_LAUNCH ?
                   "before launch" : "at runtime",
                   content == KVM_GUEST_MEMFD_CONTENT_ZERO ? ", zeroed" :
                   content == KVM_GUEST_MEMFD_CONTENT_PRESERVE ?
                   ", preserving its contents" : "");
        f->failures++;
        return -ENOTSUP;
    case KVM_GUEST_MEMFD_MEANS_KERNEL_FLAG:
        flags = content == KVM_GUEST_MEMFD_CONTENT_ZERO ?
                KVM_SET_MEMORY_ATTRIBUTES2_ZERO :
                KVM_SET_MEMORY_ATTRIBUTES2_PRESERVE;
        break;
    default:
        /* plain; or the launch update, or the hole punched below */
        break;
    }

    if (to_private) {
        ret = kvm_gmem_convert_to_private(f, offset, size, flags, errp);
    } else {
        ret = kvm_gmem_convert_to_shared(f, offset, size, flags,
                                         means ==
                                         KVM_GUEST_MEMFD_MEANS_USERSPACE,
                                         errp);
    }
    if (ret) {
        f->failures++;
    } else {
        f->conversions++;
    }
    return ret;
}
