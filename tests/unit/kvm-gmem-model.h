/*
 * A model of the kernel's in-place guest_memfd conversion, its listeners
 * and their invariants, for the unit test and the fuzzer of the
 * conversion engine
 *
 * No kernel on the machines this is developed on converts guest_memfd
 * memory in place, so the kernel here is a model.  Each behaviour follows
 * the v8 posting of "KVM: guest_memfd: In-place conversion support"
 * (2026-06-18; the patch named in brackets) and, for the content flags,
 * v5, as summarised in the project's kernel-uapi notes, section 2; the
 * kernel lab's differential test (tests/kernel-lab/) compares the model
 * with a real kernel.
 *
 * KVM_SET_MEMORY_ATTRIBUTES2 on the file:
 * - ENOTTY while in-place conversion is off (the ioctl is not there);
 * - EINVAL, in v8's order: flags other than 0 where the revision has no
 *   content flags (v6-v8), a VM type without private memory, attributes
 *   other than PRIVATE, an empty, overflowing, misaligned or out-of-file
 *   range ["Add base support for KVM_SET_MEMORY_ATTRIBUTES2"];
 * - v5: EINVAL for unknown flags or ZERO with PRESERVE, EOPNOTSUPP for a
 *   flag not advertised and for ZERO toward private;
 * - 0 at once, nothing touched, when the whole range has the requested
 *   attributes already and no content flag asks for more ["Return early
 *   if range already has requested attributes"];
 * - toward private only, EAGAIN with error_offset at a page that is
 *   still referenced ["Ensure pages are not in use before conversion"];
 *   toward shared there is no such check;
 * - ENOMEM with error_offset = offset where tracking needs memory;
 * - otherwise the whole range converts (all or nothing).
 * Contents: v5's content flags apply to the whole range, pages already in
 * the target state included; without a flag, v5 scrambles what converts.
 * v6 to v8 convert the page in place: memory that is not encrypted
 * (software-protected VMs, @plain) keeps its contents; encrypted memory
 * is garbage to the other side, which the model makes it.
 *
 * The listeners check, on every call, that they never map private memory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TESTS_UNIT_KVM_GMEM_MODEL_H
#define TESTS_UNIT_KVM_GMEM_MODEL_H

#include "qemu/bitmap.h"
#include "qapi/error.h"
#include "system/kvm-gmem-convert.h"
#include "system/kvm-gmem-uapi.h"
#include "system/memory.h"
#include "system/ramblock.h"

#define SHIFT 12
#define PAGE (1ULL << SHIFT)
#define NR_PAGES 1024
#define FILE_SIZE (NR_PAGES * PAGE)
#define ZERO KVM_SET_MEMORY_ATTRIBUTES2_ZERO
#define PRESERVE KVM_SET_MEMORY_ATTRIBUTES2_PRESERVE
#define RUNTIME KVM_GUEST_MEMFD_PHASE_RUNTIME
#define PRE_LAUNCH KVM_GUEST_MEMFD_PHASE_PRE_LAUNCH
#define UNSPEC KVM_GUEST_MEMFD_CONTENT_UNSPECIFIED
#define C_ZERO KVM_GUEST_MEMFD_CONTENT_ZERO
#define C_PRESERVE KVM_GUEST_MEMFD_CONTENT_PRESERVE

typedef struct Model {
    bool private[NR_PAGES];
    uint32_t content[NR_PAGES];
    uint64_t flags_supported;   /* 0: v6-v8, no content flags at all */
    bool in_place_off;          /* ENOTTY */
    bool default_vm;            /* a VM type without private memory */
    bool plain;                 /* private memory is not encrypted */
    int64_t busy_page;          /* EAGAIN while in range, busy_tries times */
    int busy_tries;
    unsigned busy_from;         /* ...from this call on (0: any) */
    int fail_next;              /* errno of the next call */
    int punch_fail;
    unsigned calls, punches, backoffs;
    uint32_t garbage;
    GString *log;
} Model;

/* Log a kernel or listener call, unless the log is off (NULL) */
static inline void G_GNUC_PRINTF(2, 3) model_log(Model *m, const char *fmt,
                                 ...)
{
    va_list ap;

    if (m->log) {
        va_start(ap, fmt);
        g_string_append_vprintf(m->log, fmt, ap);
        va_end(ap);
    }
}

static inline int model_set_attributes(void *opaque, int fd,
                                       uint64_t offset, uint64_t size,
                                       uint64_t attrs, uint64_t flags,
                                       uint64_t *error_offset)
{
    Model *m = opaque;
    bool to_private = attrs & KVM_MEMORY_ATTRIBUTE_PRIVATE;
    uint64_t first = offset / PAGE, end;
    bool done = true;

    m->calls++;
    model_log(m, "K%c %" PRIx64 "+%" PRIx64 ";",
              to_private ? 'P' : 'S', offset, size);
    if (m->in_place_off) {
        return -ENOTTY;
    }
    if (!m->flags_supported && flags) {
        return -EINVAL;
    }
    if (m->default_vm || attrs & ~KVM_MEMORY_ATTRIBUTE_PRIVATE) {
        return -EINVAL;
    }
    if (!size || offset + size < offset || (offset | size) & (PAGE - 1) ||
        offset >= FILE_SIZE || size > FILE_SIZE - offset) {
        return -EINVAL;
    }
    if (flags & ~(ZERO | PRESERVE) || (flags & ZERO && flags & PRESERVE)) {
        return -EINVAL;
    }
    if (flags & ~m->flags_supported || (to_private && (flags & ZERO))) {
        return -EOPNOTSUPP;
    }
    end = first + size / PAGE;
    for (uint64_t i = first; i < end; i++) {
        done &= m->private[i] == to_private;
    }
    if (done && !flags) {
        return 0;
    }
    if (to_private && m->busy_tries && m->calls >= m->busy_from &&
        m->busy_page >= first && m->busy_page < end) {
        m->busy_tries--;
        *error_offset = m->busy_page * PAGE;
        return -EAGAIN;
    }
    if (m->fail_next) {
        int err = m->fail_next;

        m->fail_next = 0;
        *error_offset = offset;
        return -err;
    }
    /* the point of no return: all of it converts */
    for (uint64_t i = first; i < end; i++) {
        if (flags & ZERO) {
            m->content[i] = 0;
        } else if (m->private[i] != to_private && !(flags & PRESERVE) &&
                   (m->flags_supported || !m->plain)) {
            m->content[i] = ++m->garbage | 0x80000000;
        }
        m->private[i] = to_private;
    }
    return 0;
}

static inline int model_punch_hole(void *opaque, int fd, uint64_t offset,
                                   uint64_t size)
{
    Model *m = opaque;

    m->punches++;
    model_log(m, "H %" PRIx64 "+%" PRIx64 ";", offset,
              size);
    if (m->punch_fail) {
        return -m->punch_fail;
    }
    for (uint64_t i = offset / PAGE; i < (offset + size) / PAGE; i++) {
        g_assert_false(m->private[i]);
        m->content[i] = 0;
    }
    return 0;
}

static inline void model_backoff(void *opaque, unsigned attempt)
{
    Model *m = opaque;

    m->backoffs++;
}

static const KvmGmemOps model_ops = {
    .set_attributes = model_set_attributes,
    .punch_hole = model_punch_hole,
    .backoff = model_backoff,
};

typedef struct TestListener {
    RamDiscardListener rdl;
    MemoryRegionSection section;
    /* The part of the file it follows */
    uint64_t offset;
    uint64_t size;
    Model *m;
    char name;
    bool mapped[NR_PAGES];
    int fail_in;                /* fail the populate call after this many */
    unsigned populates;
} TestListener;

static inline int listener_populate(RamDiscardListener *rdl,
                                    MemoryRegionSection *s)
{
    TestListener *t = container_of(rdl, TestListener, rdl);
    uint64_t offset = s->offset_within_region;
    uint64_t size = int128_get64(s->size);

    model_log(t->m, "P%c %" PRIx64 "+%" PRIx64 ";",
              t->name, offset, size);
    t->populates++;
    if (t->fail_in && !--t->fail_in) {
        return -ENOMEM;
    }
    g_assert(offset >= t->offset && offset + size <= t->offset + t->size);
    for (uint64_t i = offset / PAGE; i < (offset + size) / PAGE; i++) {
        /* the kernel has made it shared already, and it is not mapped */
        g_assert_false(t->m->private[i]);
        g_assert_false(t->mapped[i]);
        t->mapped[i] = true;
    }
    return 0;
}

static inline void listener_discard(RamDiscardListener *rdl,
                                    MemoryRegionSection *s)
{
    TestListener *t = container_of(rdl, TestListener, rdl);
    uint64_t offset = s->offset_within_region;
    uint64_t size = int128_get64(s->size);

    model_log(t->m, "D%c %" PRIx64 "+%" PRIx64 ";",
              t->name, offset, size);
    for (uint64_t i = offset / PAGE; i < (offset + size) / PAGE; i++) {
        /* the kernel has not made it private yet, and it is mapped */
        g_assert_false(t->m->private[i]);
        g_assert_true(t->mapped[i]);
        t->mapped[i] = false;
    }
}

static inline void listener_init(TestListener *t, Model *m, char name,
                                 uint64_t offset, uint64_t size)
{
    *t = (TestListener) {
        .offset = offset,
        .size = size,
        .m = m,
        .name = name,
    };
    ram_discard_listener_init(&t->rdl, listener_populate, listener_discard,
                              false);
}

/*
 * Make @t a listener of @f's [@offset, @offset + @size), and register it
 * with the RamBlockAttributes of @f, which tells it what is shared
 */
static inline void listener_add(KvmGmemFile *f, TestListener *t, Model *m,
                                char name, uint64_t offset, uint64_t size)
{
    RamDiscardManager *rdm = RAM_DISCARD_MANAGER(f->attr);

    listener_init(t, m, name, offset, size);
    t->section = (MemoryRegionSection) {
        .mr = f->attr->ram_block->mr,
        .offset_within_region = offset,
        .size = int128_make64(size),
    };
    RAM_DISCARD_MANAGER_GET_CLASS(rdm)->register_listener(rdm, &t->rdl,
                                                          &t->section);
}

/* Unregister @t, which is told to discard the shared memory it follows */
static inline void listener_del(KvmGmemFile *f, TestListener *t)
{
    RamDiscardManager *rdm = RAM_DISCARD_MANAGER(f->attr);

    RAM_DISCARD_MANAGER_GET_CLASS(rdm)->unregister_listener(rdm, &t->rdl);
}

typedef struct Fixture {
    Model m;
    KvmGmemTable table;
    MemoryRegion mr;
    RAMBlock rb;
    KvmGmemFile f;
} Fixture;

/* The RamBlockAttributes of a block of FILE_SIZE bytes */
static inline RamBlockAttributes *fixture_attributes(MemoryRegion *mr,
                                                     RAMBlock *rb,
                                                     uint64_t size,
                                                     bool shared)
{
    memset(mr, 0, sizeof(*mr));
    memset(rb, 0, sizeof(*rb));
    mr->size = int128_make64(size);
    rb->mr = mr;
    rb->max_length = size;
    rb->flags = RAM_GUEST_MEMFD | (shared ? RAM_GUEST_MEMFD_INPLACE : 0);
    return ram_block_attributes_create(rb);
}

/* A host of the model: what its KVM reports, and the VM type */
typedef struct ModelHost {
    KvmGmemCaps caps;
    KvmGmemVmType vm;
} ModelHost;

/* @caps: the capabilities of a ModelHost, such as caps_v8 below */
static inline void fixture_init(Fixture *x, const KvmGmemCaps *caps)
{
    const ModelHost *host = container_of(caps, const ModelHost, caps);

    memset(x, 0, sizeof(*x));
    x->m.log = g_string_new("");
    x->m.busy_page = -1;
    x->m.flags_supported = caps->attr2_flags | caps->pre_launch_flags |
                           caps->post_launch_flags;
    x->m.plain = host->vm.private_plain;
    kvm_gmem_caps_table(caps, &host->vm, &x->table);
    kvm_gmem_file_init(&x->f, 42, FILE_SIZE, SHIFT,
                       fixture_attributes(&x->mr, &x->rb, FILE_SIZE, true),
                       &model_ops, &x->m, &x->table);
}

static inline void fixture_destroy(Fixture *x)
{
    g_assert(QLIST_EMPTY(&x->f.attr->rdl_list));
    ram_block_attributes_destroy(x->f.attr);
    if (x->m.log) {
        g_string_free(x->m.log, true);
    }
}

/* Remove the listeners @ls, then destroy @x */
static inline void fixture_destroy_listeners(Fixture *x, TestListener **ls,
                                             int n)
{
    for (int i = 0; i < n; i++) {
        listener_del(&x->f, ls[i]);
    }
    fixture_destroy(x);
}

/*
 * The tests name a host by its capabilities (&caps_v8), and
 * fixture_init() finds the VM type next to them
 */
#define caps_v8 (host_v8.caps)
#define caps_v8_sw (host_v8_sw.caps)
#define caps_v5 (host_v5.caps)
#define caps_v5_snp (host_v5_snp.caps)

/* v8, encrypted memory without launch: in-place, no content flags */
static const ModelHost host_v8 = {
    .caps = {
        .guest_memfd = true, .gmem_flags = 3,
        .gmem_attrs = KVM_MEMORY_ATTRIBUTE_PRIVATE,
    },
};
/* v8, software-protected VM: conversions keep the contents */
static const ModelHost host_v8_sw = {
    .caps = {
        .guest_memfd = true, .gmem_flags = 3,
        .gmem_attrs = KVM_MEMORY_ATTRIBUTE_PRIVATE,
    },
    .vm = { .private_plain = true },
};
/* v5, SW-protected VM: content flags at any time */
static const ModelHost host_v5 = {
    .caps = {
        .guest_memfd = true, .gmem_flags = 3,
        .gmem_attrs = KVM_MEMORY_ATTRIBUTE_PRIVATE,
        .attr2_flags = ZERO | PRESERVE,
    },
};
/* v5, SEV-SNP: PRESERVE only before launch, toward private */
static const ModelHost host_v5_snp = {
    .caps = {
        .guest_memfd = true, .gmem_flags = 3,
        .gmem_attrs = KVM_MEMORY_ATTRIBUTE_PRIVATE,
        .attr2_flags = ZERO | PRESERVE,
    },
    .vm = { .launch_update = true },
};

/* QEMU's state equals the model kernel's; counts equal a recount */
static inline void check_state(Fixture *x, TestListener **ls, int nr_ls)
{
    const RamBlockAttributes *attr = x->f.attr;
    uint64_t shared = 0;

    for (int i = 0; i < NR_PAGES; i++) {
        bool s = test_bit(i, attr->bitmap);

        g_assert_cmpint(s, ==, !x->m.private[i]);
        g_assert_cmpint(ram_block_attributes_range_is(attr, i * PAGE, PAGE,
                                                      true), ==, s);
        g_assert_cmpint(ram_block_attributes_range_is(attr, i * PAGE, PAGE,
                                                      false), ==, !s);
        shared += s;
        for (int j = 0; j < nr_ls; j++) {
            bool in = i * PAGE >= ls[j]->offset &&
                      i * PAGE < ls[j]->offset + ls[j]->size;

            g_assert_cmpint(ls[j]->mapped[i], ==, s && in);
        }
    }
    g_assert_cmpuint(attr->nr_populated, ==, shared);
    g_assert_cmpuint(attr->nr_populated, ==,
                     bitmap_count_one(attr->bitmap, NR_PAGES));
    g_assert_cmpuint(kvm_gmem_file_shared_bytes(&x->f), ==, shared * PAGE);
    g_assert_cmpuint(kvm_gmem_file_shared_bytes(&x->f) +
                     kvm_gmem_file_private_bytes(&x->f), ==, FILE_SIZE);
}

#endif
