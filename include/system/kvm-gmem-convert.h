/*
 * KVM guest_memfd: converting memory between shared and private in place
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef SYSTEM_KVM_GMEM_CONVERT_H
#define SYSTEM_KVM_GMEM_CONVERT_H

#include "system/kvm-gmem.h"

/*
 * The kernel calls of in-place conversion, behind one small table: the
 * ioctls in QEMU, a model of the kernel's documented behaviour in tests.
 */
typedef struct KvmGmemOps {
    /*
     * KVM_SET_MEMORY_ATTRIBUTES2 on the guest_memfd @fd: 0 or -errno; on
     * -EAGAIN, *@error_offset is the first offset that could not convert.
     * Nothing is converted when it fails.
     */
    int (*set_attributes)(void *opaque, int fd, uint64_t offset,
                          uint64_t size, uint64_t attributes, uint64_t flags,
                          uint64_t *error_offset);
    /* Punch a hole in the file (the range then reads as zeros): 0/-errno */
    int (*punch_hole)(void *opaque, int fd, uint64_t offset, uint64_t size);
    /*
     * Wait before retry number @attempt (from 1) of a busy conversion.  It
     * may let other threads run meanwhile (release the BQL): the engine
     * leaves nothing half-done across it.
     */
    void (*backoff)(void *opaque, unsigned attempt);
} KvmGmemOps;

/* How often a conversion is tried while the kernel reports EAGAIN */
#define KVM_GMEM_CONVERT_TRIES 8

typedef struct RamBlockAttributes RamBlockAttributes;

/*
 * A guest_memfd mapped in place, whose shared/private state is kept by
 * the RamBlockAttributes of its RAM block: shared memory is populated,
 * private memory discarded, and the listeners (VFIO) map shared memory.
 */
typedef struct KvmGmemFile {
    int fd;
    uint64_t size;
    unsigned page_shift;
    RamBlockAttributes *attr;
    const KvmGmemOps *ops;
    void *opaque;
    /* How conversions are carried out on this host */
    const KvmGmemTable *table;
    /* Statistics */
    uint64_t conversions;
    uint64_t failures;
    uint64_t retries;
} KvmGmemFile;

/*
 * @size bytes of @fd from offset 0, in pages of 1 << @page_shift bytes,
 * whose state @attr keeps (at the same granularity)
 */
void kvm_gmem_file_init(KvmGmemFile *f, int fd, uint64_t size,
                        unsigned page_shift, RamBlockAttributes *attr,
                        const KvmGmemOps *ops, void *opaque,
                        const KvmGmemTable *table);

uint64_t kvm_gmem_file_shared_bytes(const KvmGmemFile *f);
uint64_t kvm_gmem_file_private_bytes(const KvmGmemFile *f);

/**
 * kvm_gmem_convert: convert a range of the file between shared and private
 * @f: the file
 * @offset, @size: the range, page-aligned and within the file
 * @to_private: the direction
 * @phase: the launch phase of the VM
 * @content: what the conversion must guarantee about the contents
 * @errp: pointer to Error*, to store an error if it happens
 *
 * Toward private, the listeners are told to discard first, then the
 * kernel converts, and the listeners get the memory back if it fails; a
 * range held shared (a device maps it) fails with -EBUSY.  Toward shared,
 * the kernel converts first, then the listeners are told, and if one fails
 * the kernel converts the range back.  While the kernel
 * reports EAGAIN toward private (a page still referenced), the conversion
 * is retried up to KVM_GMEM_CONVERT_TRIES times; toward shared the kernel
 * checks no references, and an EAGAIN is an error like any other.  A
 * content request this host cannot honour fails: it is never weakened.
 * On failure, the shared/private state of every page is as it was; only
 * memory that the kernel had made shared before a listener failed, and
 * that was converted back, has lost its contents, as a conversion to
 * private without PRESERVE does.  Where converting it back fails too (a
 * page still busy after the retries), it stays shared, the listeners are
 * told about it again, and QEMU's state says so.
 *
 * Returns: 0 or -errno.
 */
int kvm_gmem_convert(KvmGmemFile *f, uint64_t offset, uint64_t size,
                     bool to_private, KvmGuestMemfdPhase phase,
                     KvmGuestMemfdContent content, Error **errp);

#endif
