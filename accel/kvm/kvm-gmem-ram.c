/*
 * KVM guest_memfd: RAM blocks converted in place
 *
 * A RAM block that is a guest_memfd mapped in place gets a KvmGmemRam: the
 * RamDiscardManager of its memory region (shared memory is "populated",
 * private memory "discarded"), over the conversion engine's state of the
 * file.  Guest conversions (KVM_EXIT_MEMORY_FAULT, KVM_HC_MAP_GPA_RANGE)
 * reach it through kvm_convert_memory() when KVM converts in place.
 * query-kvm-guest-memfd reports the host's table and each block's state.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <linux/falloc.h>
#include <sys/ioctl.h>
#include "qapi/error.h"
#include "qapi/qapi-commands-accelerator.h"
#include "qemu/error-report.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "qom/object.h"
#include "hw/boards.h"
#include "system/confidential-guest-support.h"
#include "system/kvm.h"
#include "system/kvm-gmem-convert.h"
#include "system/kvm-gmem-uapi.h"
#include "system/kvm_int.h"
#include "system/memory.h"
#include "system/address-spaces.h"
#include "system/ramblock.h"
#include "trace.h"

#define TYPE_KVM_GMEM_RAM "kvm-guest-memfd-ram"
OBJECT_DECLARE_SIMPLE_TYPE(KvmGmemRam, KVM_GMEM_RAM)

typedef struct KvmGmemRdl {
    KvmGmemListener l;
    RamDiscardListener *rdl;
    QLIST_ENTRY(KvmGmemRdl) next;
} KvmGmemRdl;

/* A range of the block that a host pointer holds shared */
typedef struct KvmGmemMap {
    uint64_t offset;
    uint64_t len;
} KvmGmemMap;

struct KvmGmemRam {
    Object parent_obj;

    RAMBlock *ram_block;
    KvmGmemFile file;
    QLIST_HEAD(, KvmGmemRdl) rdls;
    QLIST_ENTRY(KvmGmemRam) next;
    /*
     * Maps by address_space_map(), taken and released on any thread;
     * conversions hold the lock too, so that a map and a conversion to
     * private never cross.  A few at a time: I/O in flight.
     */
    QemuMutex map_lock;
    GArray *maps;
};

OBJECT_DEFINE_SIMPLE_TYPE_WITH_INTERFACES(KvmGmemRam, kvm_gmem_ram,
                                          KVM_GMEM_RAM, OBJECT,
                                          { TYPE_RAM_DISCARD_MANAGER },
                                          { })

static QLIST_HEAD(, KvmGmemRam) kvm_gmem_rams =
    QLIST_HEAD_INITIALIZER(kvm_gmem_rams);

/* The kernel, for the conversion engine */

static int kvm_gmem_ioctl_set_attributes(void *opaque, int fd,
                                         uint64_t offset, uint64_t size,
                                         uint64_t attributes, uint64_t flags,
                                         uint64_t *error_offset)
{
    struct kvm_memory_attributes2 attrs = {
        .offset = offset,
        .size = size,
        .attributes = attributes,
        .flags = flags,
    };
    int ret;

    QEMU_BUILD_BUG_ON(sizeof(attrs) != 128);
    ret = ioctl(fd, KVM_SET_MEMORY_ATTRIBUTES2, &attrs);
    ret = ret < 0 ? -errno : 0;
    if (ret == -EAGAIN && error_offset) {
        *error_offset = attrs.error_offset;
    }
    trace_kvm_gmem_set_attributes(fd, offset, size, attributes, flags, ret);
    return ret;
}

static int kvm_gmem_punch_hole(void *opaque, int fd, uint64_t offset,
                               uint64_t size)
{
    if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset,
                  size)) {
        return -errno;
    }
    return 0;
}

static void kvm_gmem_backoff(void *opaque, unsigned attempt)
{
    /* 0.1 ms, doubling: under 26 ms in all */
    g_usleep(100 << attempt);
}

static const KvmGmemOps kvm_gmem_kernel_ops = {
    .set_attributes = kvm_gmem_ioctl_set_attributes,
    .punch_hole = kvm_gmem_punch_hole,
    .backoff = kvm_gmem_backoff,
};

/* RamDiscardManager */

static int kvm_gmem_rdl_populate(KvmGmemListener *l, uint64_t offset,
                                 uint64_t size)
{
    KvmGmemRdl *r = container_of(l, KvmGmemRdl, l);
    MemoryRegionSection section = *r->rdl->section;

    if (!memory_region_section_intersect_range(&section, offset, size)) {
        return 0;
    }
    return r->rdl->notify_populate(r->rdl, &section);
}

static void kvm_gmem_rdl_discard(KvmGmemListener *l, uint64_t offset,
                                 uint64_t size)
{
    KvmGmemRdl *r = container_of(l, KvmGmemRdl, l);
    MemoryRegionSection section = *r->rdl->section;

    if (memory_region_section_intersect_range(&section, offset, size)) {
        r->rdl->notify_discard(r->rdl, &section);
    }
}

static uint64_t kvm_gmem_ram_get_min_granularity(const RamDiscardManager *rdm,
                                                 const MemoryRegion *mr)
{
    return 1ULL << KVM_GMEM_RAM(rdm)->file.page_shift;
}

/*
 * Is any of [@offset, @offset + @len) private?  Constant time when the RAM
 * is all shared or all private: host accesses ask this first.
 */
static bool kvm_gmem_ram_is_private(KvmGmemRam *g, uint64_t offset,
                                    uint64_t len)
{
    const KvmGmemFile *f = &g->file;
    uint64_t mask = (1ULL << f->page_shift) - 1;
    uint64_t start = offset & ~mask;
    uint64_t end;

    if (!len || offset >= f->size) {
        return false;
    }
    end = ROUND_UP(MIN(offset + len, f->size), mask + 1);
    return !f->nr_shared ||
           (f->nr_shared != f->nr_pages &&
            !kvm_gmem_file_is(f, start, end - start, true));
}

/*
 * Keep a range shared while the host holds a pointer to it: a device that
 * maps guest memory (address_space_map()) may copy to or from it long
 * after, without the BQL.  Until kvm_gmem_ram_unmap(), a conversion of any
 * of it to private fails as busy, so that the pointer never reaches
 * private memory (SIGBUS).  False, holding nothing, if any of it is
 * private.
 */
static bool kvm_gmem_ram_map(KvmGmemRam *g, uint64_t offset, uint64_t len)
{
    KvmGmemMap m = { .offset = offset, .len = len };

    QEMU_LOCK_GUARD(&g->map_lock);
    if (kvm_gmem_ram_is_private(g, offset, len)) {
        return false;
    }
    g_array_append_val(g->maps, m);
    return true;
}

/* Let go of a range kvm_gmem_ram_map() held */
static void kvm_gmem_ram_unmap(KvmGmemRam *g, uint64_t offset, uint64_t len)
{
    QEMU_LOCK_GUARD(&g->map_lock);
    for (guint i = 0; i < g->maps->len; i++) {
        KvmGmemMap *m = &g_array_index(g->maps, KvmGmemMap, i);

        if (m->offset == offset && m->len == len) {
            g_array_remove_index_fast(g->maps, i);
            return;
        }
    }
}

static bool kvm_gmem_ram_is_populated(const RamDiscardManager *rdm,
                                      const MemoryRegionSection *section)
{
    return !kvm_gmem_ram_is_private(KVM_GMEM_RAM(rdm),
                                    section->offset_within_region,
                                    int128_get64(section->size));
}

static bool kvm_gmem_ram_hold_populated(RamDiscardManager *rdm,
                                        const MemoryRegionSection *section)
{
    return kvm_gmem_ram_map(KVM_GMEM_RAM(rdm), section->offset_within_region,
                            int128_get64(section->size));
}

static void kvm_gmem_ram_release_populated(RamDiscardManager *rdm,
                                           const MemoryRegionSection *section)
{
    kvm_gmem_ram_unmap(KVM_GMEM_RAM(rdm), section->offset_within_region,
                       int128_get64(section->size));
}

static void kvm_gmem_ram_register_listener(RamDiscardManager *rdm,
                                           RamDiscardListener *rdl,
                                           MemoryRegionSection *section)
{
    KvmGmemRam *g = KVM_GMEM_RAM(rdm);
    KvmGmemRdl *r = g_new0(KvmGmemRdl, 1);
    int ret;

    rdl->section = memory_region_section_new_copy(section);
    r->rdl = rdl;
    r->l.offset = section->offset_within_region;
    r->l.size = int128_get64(section->size);
    r->l.populate = kvm_gmem_rdl_populate;
    r->l.discard = kvm_gmem_rdl_discard;
    ret = kvm_gmem_listener_add(&g->file, &r->l);
    if (ret) {
        /* As for any RamDiscardManager: a listener cannot be refused */
        error_report("cannot map the shared memory of %s: %s",
                     memory_region_name(g->ram_block->mr), strerror(-ret));
        exit(1);
    }
    QLIST_INSERT_HEAD(&g->rdls, r, next);
}

static void kvm_gmem_ram_unregister_listener(RamDiscardManager *rdm,
                                             RamDiscardListener *rdl)
{
    KvmGmemRam *g = KVM_GMEM_RAM(rdm);
    KvmGmemRdl *r;

    QLIST_FOREACH(r, &g->rdls, next) {
        if (r->rdl == rdl) {
            break;
        }
    }
    g_assert(r);
    kvm_gmem_listener_del(&g->file, &r->l);
    QLIST_REMOVE(r, next);
    g_free(r);
    memory_region_section_free_copy(rdl->section);
    rdl->section = NULL;
}

typedef struct KvmGmemReplay {
    MemoryRegionSection *section;
    ReplayRamDiscardState fn;
    void *opaque;
} KvmGmemReplay;

static int kvm_gmem_ram_replay_cb(void *opaque, uint64_t offset,
                                  uint64_t size)
{
    KvmGmemReplay *r = opaque;
    MemoryRegionSection section = *r->section;

    if (!memory_region_section_intersect_range(&section, offset, size)) {
        return 0;
    }
    return r->fn(&section, r->opaque);
}

static int kvm_gmem_ram_replay(const RamDiscardManager *rdm,
                               MemoryRegionSection *section, bool populated,
                               ReplayRamDiscardState fn, void *opaque)
{
    const KvmGmemFile *f = &KVM_GMEM_RAM(rdm)->file;
    KvmGmemReplay r = { section, fn, opaque };
    uint64_t mask = (1ULL << f->page_shift) - 1;
    uint64_t start = section->offset_within_region & ~mask;
    uint64_t end = ROUND_UP(section->offset_within_region +
                            int128_get64(section->size), mask + 1);

    if (start >= end) {
        return 0;
    }
    return kvm_gmem_file_for_each_run(f, start, end - start, populated,
                                      kvm_gmem_ram_replay_cb, &r);
}

static int kvm_gmem_ram_replay_populated(const RamDiscardManager *rdm,
                                         MemoryRegionSection *section,
                                         ReplayRamDiscardState fn,
                                         void *opaque)
{
    return kvm_gmem_ram_replay(rdm, section, true, fn, opaque);
}

static int kvm_gmem_ram_replay_discarded(const RamDiscardManager *rdm,
                                         MemoryRegionSection *section,
                                         ReplayRamDiscardState fn,
                                         void *opaque)
{
    return kvm_gmem_ram_replay(rdm, section, false, fn, opaque);
}

static void kvm_gmem_ram_init(Object *obj)
{
    KvmGmemRam *g = KVM_GMEM_RAM(obj);

    QLIST_INIT(&g->rdls);
    qemu_mutex_init(&g->map_lock);
    g->maps = g_array_new(false, false, sizeof(KvmGmemMap));
}

static void kvm_gmem_ram_finalize(Object *obj)
{
    KvmGmemRam *g = KVM_GMEM_RAM(obj);

    g_array_free(g->maps, true);
    qemu_mutex_destroy(&g->map_lock);
}

static void kvm_gmem_ram_class_init(ObjectClass *klass, const void *data)
{
    RamDiscardManagerClass *rdmc = RAM_DISCARD_MANAGER_CLASS(klass);

    rdmc->get_min_granularity = kvm_gmem_ram_get_min_granularity;
    rdmc->register_listener = kvm_gmem_ram_register_listener;
    rdmc->unregister_listener = kvm_gmem_ram_unregister_listener;
    rdmc->is_populated = kvm_gmem_ram_is_populated;
    rdmc->replay_populated = kvm_gmem_ram_replay_populated;
    rdmc->replay_discarded = kvm_gmem_ram_replay_discarded;
    rdmc->hold_populated = kvm_gmem_ram_hold_populated;
    rdmc->release_populated = kvm_gmem_ram_release_populated;
}

KvmGmemRam *kvm_gmem_ram_create(RAMBlock *rb, Error **errp)
{
    KvmGmemRam *g = KVM_GMEM_RAM(object_new(TYPE_KVM_GMEM_RAM));
    bool shared = !(rb->flags & RAM_GUEST_MEMFD_INIT_PRIVATE);

    g->ram_block = rb;
    /* Conversions are at host page granularity, as the file's pages */
    kvm_gmem_file_init(&g->file, rb->guest_memfd, rb->max_length,
                       ctz64(qemu_real_host_page_size()), shared,
                       &kvm_gmem_kernel_ops, g, kvm_gmem_get_table());
    trace_kvm_gmem_ram_create(memory_region_name(rb->mr), rb->guest_memfd,
                              rb->max_length, shared);
    if (!shared &&
        kvm_gmem_get_table()->mode != KVM_GUEST_MEMFD_MODE_IN_PLACE) {
        warn_report("memory '%s' is private (init-shared=off) and this VM "
                    "cannot convert it: a guest cannot run from it, nor QEMU "
                    "read it", memory_region_name(rb->mr));
    }
    if (memory_region_set_ram_discard_manager(rb->mr,
                                              RAM_DISCARD_MANAGER(g))) {
        error_setg(errp, "memory region %s has a RamDiscardManager already",
                   memory_region_name(rb->mr));
        kvm_gmem_file_destroy(&g->file);
        object_unref(OBJECT(g));
        return NULL;
    }
    /* Shared memory that cannot be converted keeps the fast paths */
    memory_region_set_may_be_private(rb->mr, !shared ||
                                     kvm_gmem_get_table()->mode ==
                                     KVM_GUEST_MEMFD_MODE_IN_PLACE);
    QLIST_INSERT_HEAD(&kvm_gmem_rams, g, next);
    return g;
}

void kvm_gmem_ram_destroy(KvmGmemRam *g)
{
    QLIST_REMOVE(g, next);
    memory_region_set_may_be_private(g->ram_block->mr, false);
    memory_region_set_ram_discard_manager(g->ram_block->mr, NULL);
    kvm_gmem_file_destroy(&g->file);
    object_unref(OBJECT(g));
}

/* Does a map hold any of [@offset, @offset + @size)?  Under map_lock */
static bool kvm_gmem_ram_mapped(KvmGmemRam *g, uint64_t offset,
                                uint64_t size)
{
    for (guint i = 0; i < g->maps->len; i++) {
        KvmGmemMap *m = &g_array_index(g->maps, KvmGmemMap, i);

        if (m->offset < offset + size && offset < m->offset + m->len) {
            return true;
        }
    }
    return false;
}

KvmGuestMemfdPhase kvm_gmem_phase(void)
{
    ConfidentialGuestSupport *cgs = current_machine ? current_machine->cgs :
                                                      NULL;

    /* Only guests that populate private memory at launch have a launch */
    if (cgs && cgs->require_guest_memfd && !cgs->launched) {
        return KVM_GUEST_MEMFD_PHASE_PRE_LAUNCH;
    }
    return KVM_GUEST_MEMFD_PHASE_RUNTIME;
}

int kvm_gmem_ram_convert(KvmGmemRam *g, uint64_t offset, uint64_t size,
                         bool to_private, KvmGuestMemfdContent content,
                         Error **errp)
{
    KvmGuestMemfdPhase phase = kvm_gmem_phase();
    KvmGuestMemfdDirection dir = to_private ?
        KVM_GUEST_MEMFD_DIRECTION_TO_PRIVATE :
        KVM_GUEST_MEMFD_DIRECTION_TO_SHARED;
    uint64_t retries = g->file.retries;
    int ret;

    assert(bql_locked());
    qemu_mutex_lock(&g->map_lock);
    if (to_private && kvm_gmem_ram_mapped(g, offset, size)) {
        /* Not waited for: the device may need the BQL to finish */
        error_setg(errp, "cannot convert %s 0x%" PRIx64 "+0x%" PRIx64
                   " to private: a device has it mapped",
                   memory_region_name(g->ram_block->mr), offset, size);
        g->file.failures++;
        ret = -EBUSY;
    } else {
        ret = kvm_gmem_convert(&g->file, offset, size, to_private, phase,
                               content, errp);
    }
    qemu_mutex_unlock(&g->map_lock);
    trace_kvm_gmem_convert(memory_region_name(g->ram_block->mr), offset, size,
                           KvmGuestMemfdDirection_str(dir),
                           KvmGuestMemfdContent_str(content),
                           KvmGuestMemfdMeans_str(
                               g->file.table->means[phase][dir][content]),
                           ret, g->file.retries - retries);
    return ret;
}

/*
 * Walk the guest-physical range [@start, @start + @size): check that all
 * of it can be converted, or (@convert) convert the guest_memfd RAM in it.
 */
static int kvm_gmem_walk_range(hwaddr start, hwaddr size, bool to_private,
                               KvmGuestMemfdContent content, bool convert,
                               Error **errp)
{
    while (size) {
        MemoryRegionSection section = memory_region_find(get_system_memory(),
                                                         start, size);
        MemoryRegion *mr = section.mr;
        hwaddr hole = mr ? section.offset_within_address_space - start : size;
        uint64_t len;
        int ret = 0;

        if (hole) {
            /* Nothing there: it is not memory to make private */
            if (to_private) {
                error_setg(errp, "cannot convert 0x%" HWADDR_PRIx "+0x%"
                           HWADDR_PRIx " to private: no memory there",
                           start, hole);
                if (mr) {
                    memory_region_unref(mr);
                }
                return -EINVAL;
            }
            if (!mr) {
                return 0;
            }
            start += hole;
            size -= hole;
        }
        len = int128_get64(section.size);
        if (!mr->ram_block || !mr->ram_block->gmem) {
            bool ram = memory_region_is_ram(mr) || memory_region_is_rom(mr) ||
                       memory_region_is_romd(mr);

            /* MMIO is shared already */
            if (to_private || ram) {
                error_setg(errp, "cannot convert 0x%" HWADDR_PRIx "+0x%"
                           HWADDR_PRIx " to %s: %s is not guest_memfd "
                           "memory converted in place", start, len,
                           to_private ? "private" : "shared",
                           memory_region_name(mr));
                ret = -EINVAL;
            }
        } else if (convert) {
            ret = kvm_gmem_ram_convert(mr->ram_block->gmem,
                                       section.offset_within_region, len,
                                       to_private, content, errp);
        }
        memory_region_unref(mr);
        if (ret) {
            return ret;
        }
        start += len;
        size -= len;
    }
    return 0;
}

int kvm_gmem_convert_range(hwaddr start, hwaddr size, bool to_private,
                           KvmGuestMemfdContent content, Error **errp)
{
    BQL_LOCK_GUARD();

    if (start + size < start) {
        error_setg(errp, "cannot convert 0x%" HWADDR_PRIx "+0x%" HWADDR_PRIx
                   ": the range wraps around", start, size);
        return -EINVAL;
    }
    /* What QEMU refuses, it refuses whole, before anything is converted */
    return kvm_gmem_walk_range(start, size, to_private, content, false,
                               errp) ?:
           kvm_gmem_walk_range(start, size, to_private, content, true, errp);
}

/* Conversions the guest asked for and QEMU refused; under the BQL */
static uint64_t kvm_gmem_guest_errors;

/* At most this many of them logged per second */
#define KVM_GMEM_GUEST_ERROR_LINES 5

static int64_t kvm_gmem_guest_error_second;
static unsigned kvm_gmem_guest_error_lines;
static uint64_t kvm_gmem_guest_error_quiet;

void kvm_gmem_guest_error(Error *err)
{
    int64_t now = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);

    BQL_LOCK_GUARD();
    kvm_gmem_guest_errors++;
    if (now - kvm_gmem_guest_error_second >= 1000) {
        if (kvm_gmem_guest_error_quiet) {
            qemu_log_mask(LOG_GUEST_ERROR, "%" PRIu64 " more conversions "
                          "the guest asked for were refused, not logged\n",
                          kvm_gmem_guest_error_quiet);
        }
        kvm_gmem_guest_error_second = now;
        kvm_gmem_guest_error_lines = 0;
        kvm_gmem_guest_error_quiet = 0;
    }
    if (kvm_gmem_guest_error_lines < KVM_GMEM_GUEST_ERROR_LINES) {
        kvm_gmem_guest_error_lines++;
        qemu_log_mask(LOG_GUEST_ERROR, "%s\n", error_get_pretty(err));
    } else {
        kvm_gmem_guest_error_quiet++;
    }
    error_free(err);
}

KvmGuestMemfdInfo *qmp_query_kvm_guest_memfd(Error **errp)
{
    const KvmGmemCaps *caps = kvm_gmem_get_caps();
    const KvmGmemTable *table = kvm_gmem_get_table();
    KvmGuestMemfdConversionList **conv;
    KvmGuestMemfdBackendList **tail;
    KvmGuestMemfdInfo *info;
    KvmGmemRam *g;

    if (!kvm_enabled()) {
        error_setg(errp, "KVM is not enabled: use -accel kvm");
        return NULL;
    }

    info = g_new0(KvmGuestMemfdInfo, 1);
    info->mode = table->mode;
    info->guest_memfd_flags = caps->gmem_flags;
    info->vm_memory_attributes = caps->vm_attrs;
    info->guest_memfd_memory_attributes = caps->gmem_attrs;
    info->guest_errors = kvm_gmem_guest_errors;
    conv = &info->conversions;
    for (int p = 0; p < KVM_GUEST_MEMFD_PHASE__MAX; p++) {
        for (int d = 0; d < KVM_GUEST_MEMFD_DIRECTION__MAX; d++) {
            for (int c = 0; c < KVM_GUEST_MEMFD_CONTENT__MAX; c++) {
                KvmGuestMemfdConversion *kc = g_new(KvmGuestMemfdConversion,
                                                    1);

                kc->phase = p;
                kc->direction = d;
                kc->content = c;
                kc->means = table->means[p][d][c];
                QAPI_LIST_APPEND(conv, kc);
            }
        }
    }

    tail = &info->backends;
    QLIST_FOREACH(g, &kvm_gmem_rams, next) {
        KvmGuestMemfdBackend *b = g_new0(KvmGuestMemfdBackend, 1);

        b->name = g_strdup(memory_region_name(g->ram_block->mr));
        b->shared = kvm_gmem_file_shared_bytes(&g->file);
        b->q_private = kvm_gmem_file_private_bytes(&g->file);
        b->conversions = g->file.conversions;
        b->failures = g->file.failures;
        b->retries = g->file.retries;
        QAPI_LIST_APPEND(tail, b);
    }
    return info;
}

void kvm_gmem_report_private_ram(void)
{
    KvmGmemRam *g;

    if (kvm_gmem_get_table()->mode == KVM_GUEST_MEMFD_MODE_IN_PLACE) {
        return;
    }
    QLIST_FOREACH(g, &kvm_gmem_rams, next) {
        if (kvm_gmem_file_private_bytes(&g->file)) {
            error_report("memory '%s' is private (init-shared=off) and this "
                         "VM cannot convert it: the guest stopped where it "
                         "needs it", memory_region_name(g->ram_block->mr));
        }
    }
}
