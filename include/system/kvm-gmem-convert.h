/*
 * KVM guest_memfd: converting memory between shared and private in place
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef SYSTEM_KVM_GMEM_CONVERT_H
#define SYSTEM_KVM_GMEM_CONVERT_H

#include "qemu/queue.h"
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
    /* Wait before retry number @attempt (from 1) of a busy conversion */
    void (*backoff)(void *opaque, unsigned attempt);
} KvmGmemOps;

/* How often a conversion is tried while the kernel reports EAGAIN */
#define KVM_GMEM_CONVERT_TRIES 8

typedef struct KvmGmemListener KvmGmemListener;

/*
 * Something that maps shared memory of the file, such as VFIO DMA: told
 * before memory in its range becomes private, and after it became shared.
 */
struct KvmGmemListener {
    /* The part of the file it follows */
    uint64_t offset;
    uint64_t size;
    /* Memory in [offset, offset + size) is now shared: 0 or -errno */
    int (*populate)(KvmGmemListener *l, uint64_t offset, uint64_t size);
    /* Memory in [offset, offset + size) is about to become private */
    void (*discard)(KvmGmemListener *l, uint64_t offset, uint64_t size);
    QLIST_ENTRY(KvmGmemListener) next;
};

/* The shared/private state of one guest_memfd mapped in place */
typedef struct KvmGmemFile {
    int fd;
    uint64_t size;
    unsigned page_shift;
    uint64_t nr_pages;
    /* One bit per page, set when shared; nr_shared of them */
    unsigned long *shared;
    uint64_t nr_shared;
    QLIST_HEAD(, KvmGmemListener) listeners;
    const KvmGmemOps *ops;
    void *opaque;
    /* How conversions are carried out on this host */
    const KvmGmemTable *table;
    /* Statistics */
    uint64_t conversions;
    uint64_t failures;
    uint64_t retries;
} KvmGmemFile;

void kvm_gmem_file_init(KvmGmemFile *f, int fd, uint64_t size,
                        unsigned page_shift, bool shared,
                        const KvmGmemOps *ops, void *opaque,
                        const KvmGmemTable *table);
void kvm_gmem_file_destroy(KvmGmemFile *f);

static inline uint64_t kvm_gmem_file_shared_bytes(const KvmGmemFile *f)
{
    return f->nr_shared << f->page_shift;
}

static inline uint64_t kvm_gmem_file_private_bytes(const KvmGmemFile *f)
{
    return (f->nr_pages - f->nr_shared) << f->page_shift;
}

/* Is all of [@offset, @offset + @size) in the state @shared? */
bool kvm_gmem_file_is(const KvmGmemFile *f, uint64_t offset, uint64_t size,
                      bool shared);

/*
 * Call @fn for each maximal run of pages in the state @shared within
 * [@offset, @offset + @size), in order; stop at the first error.
 */
typedef int (*KvmGmemRunFn)(void *opaque, uint64_t offset, uint64_t size);
int kvm_gmem_file_for_each_run(const KvmGmemFile *f, uint64_t offset,
                               uint64_t size, bool shared, KvmGmemRunFn fn,
                               void *opaque);

/*
 * Add a listener, and tell it about the shared memory in its range, one
 * call per run.  If that fails, it is told to discard what it was given,
 * and is not added.  Returns 0 or -errno.
 */
int kvm_gmem_listener_add(KvmGmemFile *f, KvmGmemListener *l);
/* Remove a listener, telling it to discard the shared memory it follows */
void kvm_gmem_listener_del(KvmGmemFile *f, KvmGmemListener *l);

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
 * kernel converts, and the listeners get the memory back if it fails.
 * Toward shared, the kernel converts first, then the listeners are told,
 * and if one fails the kernel converts the range back.  While the kernel
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
