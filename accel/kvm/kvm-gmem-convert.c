/*
 * KVM guest_memfd: converting memory between shared and private in place
 *
 * The shared/private state of a guest_memfd that QEMU maps is kept here,
 * one bit per page, with the things that map its shared memory (VFIO and
 * other listeners).  A conversion keeps the three in step: the kernel's
 * attributes, the bits, and the listeners' mappings, in the order that
 * never leaves a listener mapping private memory, and undoes what it did
 * when a step fails.  The kernel is reached only through KvmGmemOps.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bitmap.h"
#include "qapi/error.h"
#include "system/kvm-gmem-convert.h"
#include "system/kvm-gmem-uapi.h"

void kvm_gmem_file_init(KvmGmemFile *f, int fd, uint64_t size,
                        unsigned page_shift, bool shared,
                        const KvmGmemOps *ops, void *opaque,
                        const KvmGmemTable *table)
{
    *f = (KvmGmemFile) {
        .fd = fd,
        .size = size,
        .page_shift = page_shift,
        .nr_pages = size >> page_shift,
        .ops = ops,
        .opaque = opaque,
        .table = table,
    };
    f->shared = bitmap_new(f->nr_pages);
    if (shared) {
        bitmap_fill(f->shared, f->nr_pages);
        f->nr_shared = f->nr_pages;
    }
    QLIST_INIT(&f->listeners);
}

void kvm_gmem_file_destroy(KvmGmemFile *f)
{
    g_assert(QLIST_EMPTY(&f->listeners));
    g_free(f->shared);
    f->shared = NULL;
}

static bool kvm_gmem_range_valid(const KvmGmemFile *f, uint64_t offset,
                                 uint64_t size)
{
    uint64_t mask = (1ULL << f->page_shift) - 1;

    return size && !(offset & mask) && !(size & mask) &&
           offset < f->size && size <= f->size - offset;
}

/*
 * The next run of bits equal to @set in @map, from bit *@p below @nr:
 * [*@start, *@end).  Returns false when there is none.  A NULL @map has
 * all its bits clear.
 */
static bool kvm_gmem_next_run(const unsigned long *map, uint64_t nr,
                              bool set, uint64_t *p, uint64_t *start,
                              uint64_t *end)
{
    if (!map) {
        if (set || *p >= nr) {
            return false;
        }
        *start = *p;
        *end = *p = nr;
        return true;
    }
    *start = set ? find_next_bit(map, nr, *p) :
                   find_next_zero_bit(map, nr, *p);
    if (*start >= nr) {
        return false;
    }
    *end = set ? find_next_zero_bit(map, nr, *start) :
                 find_next_bit(map, nr, *start);
    *p = *end;
    return true;
}

/* Whether pages [@first, @end) are all shared (@shared) or all private */
static bool kvm_gmem_pages_are(const KvmGmemFile *f, uint64_t first,
                               uint64_t end, bool shared)
{
    if (end - first == 1) {
        return test_bit(first, f->shared) == shared;
    }
    return (shared ? find_next_zero_bit(f->shared, end, first) :
                     find_next_bit(f->shared, end, first)) >= end;
}

bool kvm_gmem_file_is(const KvmGmemFile *f, uint64_t offset, uint64_t size,
                      bool shared)
{
    assert(kvm_gmem_range_valid(f, offset, size));
    return kvm_gmem_pages_are(f, offset >> f->page_shift,
                              (offset + size) >> f->page_shift, shared);
}

int kvm_gmem_file_for_each_run(const KvmGmemFile *f, uint64_t offset,
                               uint64_t size, bool shared, KvmGmemRunFn fn,
                               void *opaque)
{
    uint64_t p = offset >> f->page_shift;
    uint64_t end = (offset + size) >> f->page_shift;
    uint64_t s, e;

    assert(kvm_gmem_range_valid(f, offset, size));
    while (kvm_gmem_next_run(f->shared, end, shared, &p, &s, &e)) {
        int ret = fn(opaque, s << f->page_shift, (e - s) << f->page_shift);

        if (ret) {
            return ret;
        }
    }
    return 0;
}

/* Tell @l about the part of [@offset, @offset + @size) it follows */
static int kvm_gmem_populate_one(KvmGmemListener *l, uint64_t offset,
                                 uint64_t size)
{
    uint64_t start = MAX(offset, l->offset);
    uint64_t end = MIN(offset + size, l->offset + l->size);

    return start < end ? l->populate(l, start, end - start) : 0;
}

static void kvm_gmem_discard_one(KvmGmemListener *l, uint64_t offset,
                                 uint64_t size)
{
    uint64_t start = MAX(offset, l->offset);
    uint64_t end = MIN(offset + size, l->offset + l->size);

    if (start < end) {
        l->discard(l, start, end - start);
    }
}

/* Tell every listener, in order; on failure, *@failed is the one */
static int kvm_gmem_populate_all(KvmGmemFile *f, uint64_t offset,
                                 uint64_t size, KvmGmemListener **failed)
{
    KvmGmemListener *l;

    QLIST_FOREACH(l, &f->listeners, next) {
        int ret = kvm_gmem_populate_one(l, offset, size);

        if (ret) {
            *failed = l;
            return ret;
        }
    }
    return 0;
}

/* Tell every listener before @stop (all, if NULL) */
static void kvm_gmem_discard_all(KvmGmemFile *f, uint64_t offset,
                                 uint64_t size, KvmGmemListener *stop)
{
    KvmGmemListener *l;

    QLIST_FOREACH(l, &f->listeners, next) {
        if (l == stop) {
            break;
        }
        kvm_gmem_discard_one(l, offset, size);
    }
}

/* The part of the file that @l follows, clipped to the file */
static bool kvm_gmem_listener_range(const KvmGmemFile *f,
                                    const KvmGmemListener *l,
                                    uint64_t *first, uint64_t *end)
{
    *first = MIN(l->offset, f->size) >> f->page_shift;
    *end = MIN(l->offset + l->size, f->size) >> f->page_shift;
    return *first < *end;
}

int kvm_gmem_listener_add(KvmGmemFile *f, KvmGmemListener *l)
{
    uint64_t p, end, s, e;

    if (kvm_gmem_listener_range(f, l, &p, &end)) {
        uint64_t first = p;

        while (kvm_gmem_next_run(f->shared, end, true, &p, &s, &e)) {
            int ret = l->populate(l, s << f->page_shift,
                                  (e - s) << f->page_shift);

            if (ret) {
                uint64_t failed = s;

                /* take back the runs before this one */
                p = first;
                while (kvm_gmem_next_run(f->shared, failed, true, &p, &s,
                                         &e)) {
                    l->discard(l, s << f->page_shift,
                               (e - s) << f->page_shift);
                }
                return ret;
            }
        }
    }
    QLIST_INSERT_HEAD(&f->listeners, l, next);
    return 0;
}

void kvm_gmem_listener_del(KvmGmemFile *f, KvmGmemListener *l)
{
    uint64_t p, end, s, e;

    QLIST_REMOVE(l, next);
    if (kvm_gmem_listener_range(f, l, &p, &end)) {
        while (kvm_gmem_next_run(f->shared, end, true, &p, &s, &e)) {
            l->discard(l, s << f->page_shift, (e - s) << f->page_shift);
        }
    }
}

/*
 * Pages [@first, @first + @nr) become shared (@shared) or private; @changed
 * of them were in the other state, which the caller has counted already.
 */
static void kvm_gmem_set_state(KvmGmemFile *f, uint64_t first, uint64_t nr,
                               bool shared, uint64_t changed)
{
    if (shared) {
        bitmap_set(f->shared, first, nr);
        f->nr_shared += changed;
    } else {
        bitmap_clear(f->shared, first, nr);
        f->nr_shared -= changed;
    }
}

/* The kernel call, retried while pages are busy */
static int kvm_gmem_set_attributes(KvmGmemFile *f, uint64_t offset,
                                   uint64_t size, bool to_private,
                                   uint64_t flags, Error **errp)
{
    uint64_t attrs = to_private ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0;
    uint64_t error_offset = 0;
    int ret;

    for (unsigned attempt = 1; ; attempt++) {
        ret = f->ops->set_attributes(f->opaque, f->fd, offset, size, attrs,
                                     flags, &error_offset);
        /* Only conversions to private check that pages are unused */
        if (ret != -EAGAIN || !to_private ||
            attempt == KVM_GMEM_CONVERT_TRIES) {
            break;
        }
        f->retries++;
        f->ops->backoff(f->opaque, attempt);
    }
    if (ret == -EAGAIN && to_private) {
        error_setg(errp, "cannot convert guest_memfd range 0x%" PRIx64
                   "+0x%" PRIx64 " to %s: offset 0x%" PRIx64 " is still "
                   "in use after %d tries", offset, size,
                   to_private ? "private" : "shared", error_offset,
                   KVM_GMEM_CONVERT_TRIES);
    } else if (ret) {
        error_setg_errno(errp, -ret, "cannot convert guest_memfd range 0x%"
                         PRIx64 "+0x%" PRIx64 " to %s", offset, size,
                         to_private ? "private" : "shared");
    }
    return ret;
}

static int kvm_gmem_convert_to_private(KvmGmemFile *f, uint64_t offset,
                                       uint64_t size, uint64_t flags,
                                       Error **errp)
{
    uint64_t first = offset >> f->page_shift;
    uint64_t end = (offset + size) >> f->page_shift;
    uint64_t nr_shared = 0;
    uint64_t p, s, e;
    int ret;

    /* Nothing may map memory that is becoming private */
    p = kvm_gmem_pages_are(f, first, end, false) ? end : first;
    while (kvm_gmem_next_run(f->shared, end, true, &p, &s, &e)) {
        kvm_gmem_discard_all(f, s << f->page_shift, (e - s) << f->page_shift,
                             NULL);
        nr_shared += e - s;
    }
    ret = kvm_gmem_set_attributes(f, offset, size, true, flags, errp);
    if (ret) {
        /*
         * Still shared: give it back to every listener; one that fails
         * goes without, and does not keep it from the others
         */
        p = first;
        while (nr_shared &&
               kvm_gmem_next_run(f->shared, end, true, &p, &s, &e)) {
            KvmGmemListener *l;

            QLIST_FOREACH(l, &f->listeners, next) {
                kvm_gmem_populate_one(l, s << f->page_shift,
                                      (e - s) << f->page_shift);
            }
        }
        return ret;
    }
    if (nr_shared) {
        kvm_gmem_set_state(f, first, end - first, false, nr_shared);
    }
    return 0;
}

static int kvm_gmem_convert_to_shared(KvmGmemFile *f, uint64_t offset,
                                      uint64_t size, uint64_t flags,
                                      bool punch, Error **errp)
{
    uint64_t first = offset >> f->page_shift;
    uint64_t nr = size >> f->page_shift;
    g_autofree unsigned long *was = NULL;
    KvmGmemListener *failed = NULL;
    uint64_t nr_private = nr;
    uint64_t p, s, e, ps, pe;
    int ret;

    /*
     * Memory that is shared already (and may be mapped, even pinned) is
     * not converted and keeps its contents: when all of it is, only the
     * kernel is asked, as it would be about any range.
     */
    if (kvm_gmem_pages_are(f, first, first + nr, true)) {
        return kvm_gmem_set_attributes(f, offset, size, false, flags, errp);
    }
    /* What was shared before; NULL (all private) is the common case */
    if (!kvm_gmem_pages_are(f, first, first + nr, false)) {
        was = bitmap_new(nr);
        bitmap_copy_with_src_offset(was, f->shared, first, nr);
        nr_private = nr - bitmap_count_one(was, nr);
    }
    ret = kvm_gmem_set_attributes(f, offset, size, false, flags, errp);
    if (ret) {
        return ret;
    }
    /* What was private reads back as zeros once it is a hole */
    p = 0;
    while (punch && kvm_gmem_next_run(was, nr, false, &p, &s, &e)) {
        ret = f->ops->punch_hole(f->opaque, f->fd,
                                 (first + s) << f->page_shift,
                                 (e - s) << f->page_shift);
        if (ret) {
            error_setg_errno(errp, -ret, "cannot zero guest_memfd range 0x%"
                             PRIx64 "+0x%" PRIx64, offset, size);
            goto revert;
        }
    }

    /* Tell the listeners about what was private and is shared now */
    kvm_gmem_set_state(f, first, nr, true, nr_private);
    p = 0;
    while (kvm_gmem_next_run(was, nr, false, &p, &s, &e)) {
        ret = kvm_gmem_populate_all(f, (first + s) << f->page_shift,
                                    (e - s) << f->page_shift, &failed);
        if (ret) {
            error_setg_errno(errp, -ret, "cannot map guest_memfd range 0x%"
                             PRIx64 "+0x%" PRIx64 " once shared", offset,
                             size);
            /* Undo: the runs before, then this run's earlier listeners */
            uint64_t q = 0;
            while (kvm_gmem_next_run(was, s, false, &q, &ps, &pe)) {
                kvm_gmem_discard_all(f, (first + ps) << f->page_shift,
                                     (pe - ps) << f->page_shift, NULL);
            }
            kvm_gmem_discard_all(f, (first + s) << f->page_shift,
                                 (e - s) << f->page_shift, failed);
            kvm_gmem_set_state(f, first, nr, false, nr);
            q = 0;
            while (kvm_gmem_next_run(was, nr, true, &q, &ps, &pe)) {
                kvm_gmem_set_state(f, first + ps, pe - ps, true, pe - ps);
            }
            goto revert;
        }
    }
    return 0;

revert:
    /* What was private goes back to private; what was shared stays */
    p = 0;
    while (kvm_gmem_next_run(was, nr, false, &p, &s, &e)) {
        if (kvm_gmem_set_attributes(f, (first + s) << f->page_shift,
                                    (e - s) << f->page_shift, true, 0,
                                    NULL)) {
            KvmGmemListener *l;

            /*
             * The kernel keeps it shared: so does QEMU, and the listeners
             * map it again; one that fails goes without
             */
            kvm_gmem_set_state(f, first + s, e - s, true, e - s);
            QLIST_FOREACH(l, &f->listeners, next) {
                kvm_gmem_populate_one(l, (first + s) << f->page_shift,
                                      (e - s) << f->page_shift);
            }
        }
    }
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
