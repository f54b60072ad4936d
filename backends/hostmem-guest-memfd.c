/*
 * QEMU host memory backend on a KVM guest_memfd
 *
 * The guest's RAM is one guest_memfd, created mappable (and, by default,
 * with all of its pages shared) and mapped into QEMU.  KVM maps guest
 * memory from the same file, so shared and private memory are the same
 * pages and nothing is allocated twice.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <linux/falloc.h>
#include <linux/kvm.h>
#include "system/hostmem.h"
#include "system/kvm.h"
#include "qom/object_interfaces.h"
#include "qapi/error.h"
#include "migration/blocker.h"
#include "qemu/error-report.h"
#include "qemu/module.h"
#include "qemu/units.h"
#include "trace.h"

OBJECT_DECLARE_SIMPLE_TYPE(HostMemoryBackendGuestMemfd,
                           MEMORY_BACKEND_GUEST_MEMFD)

struct HostMemoryBackendGuestMemfd {
    HostMemoryBackend parent_obj;

    bool init_shared;
    Error *migration_blocker;
};

/* A "Name: N kB" line of a meminfo file, in bytes; 0 if there is none */
static uint64_t guest_memfd_meminfo(const char *path, const char *name)
{
    g_autofree char *text = NULL;
    const char *p;

    if (!g_file_get_contents(path, &text, NULL, NULL)) {
        return 0;
    }
    for (p = text; (p = strstr(p, name)); p++) {
        if ((p == text || p[-1] == '\n' || p[-1] == ' ') &&
            p[strlen(name)] == ':') {
            return g_ascii_strtoull(p + strlen(name) + 1, NULL, 10) * KiB;
        }
    }
    return 0;
}

/* What this process's cgroup lets it still allocate, or UINT64_MAX */
static uint64_t guest_memfd_cgroup_room(void)
{
    g_autofree char *cg = NULL;
    g_autofree char *max = NULL;
    g_autofree char *cur = NULL;
    g_autofree char *dir = NULL;
    char *nl;
    uint64_t limit, used;

    /* cgroup v2: one line "0::/path" */
    if (!g_file_get_contents("/proc/self/cgroup", &cg, NULL, NULL) ||
        !g_str_has_prefix(cg, "0::")) {
        return UINT64_MAX;
    }
    nl = strchr(cg, '\n');
    if (nl) {
        *nl = 0;
    }
    dir = g_build_filename("/sys/fs/cgroup", cg + 3, NULL);
    max = g_build_filename(dir, "memory.max", NULL);
    cur = g_build_filename(dir, "memory.current", NULL);
    g_free(cg);
    cg = NULL;
    if (!g_file_get_contents(max, &cg, NULL, NULL) ||
        g_str_has_prefix(cg, "max")) {
        return UINT64_MAX;
    }
    limit = g_ascii_strtoull(cg, NULL, 10);
    g_free(cg);
    cg = NULL;
    used = g_file_get_contents(cur, &cg, NULL, NULL) ?
           g_ascii_strtoull(cg, NULL, 10) : 0;
    return limit > used ? limit - used : 0;
}

/*
 * guest_memfd pages are neither swapped nor moved: memory the host does
 * not have is never there, and asking for it wakes the OOM killer, whose
 * victim can be any process.  Refuse what cannot fit: the whole size if
 * it is preallocated (against the host's available memory, the cgroup's
 * room, and the free memory of the nodes policy=bind names), and
 * otherwise a size beyond all of the host's memory.
 */
static bool guest_memfd_backend_check_memory(HostMemoryBackend *backend,
                                             Error **errp)
{
    g_autofree char *name = host_memory_backend_get_name(backend);
    uint64_t total = guest_memfd_meminfo("/proc/meminfo", "MemTotal");
    uint64_t room = guest_memfd_meminfo("/proc/meminfo", "MemAvailable");
    const char *what = "available on the host (MemAvailable)";
    uint64_t cgroup = guest_memfd_cgroup_room();

    if (!backend->prealloc) {
        if (total && backend->size > total) {
            error_setg(errp, "memory-backend-guest-memfd '%s' size %" PRIu64
                       " MiB exceeds the host's memory (%" PRIu64 " MiB): "
                       "guest_memfd memory cannot be swapped", name,
                       backend->size / MiB, total / MiB);
            error_append_hint(errp, "Use a size that the host can hold.\n");
            return false;
        }
        return true;
    }
    if (cgroup < room) {
        room = cgroup;
        what = "left in this process's cgroup (memory.max)";
    }
#ifdef CONFIG_NUMA
    if (backend->policy == HOST_MEM_POLICY_BIND) {
        uint64_t nodes = 0;
        unsigned long n;

        for (n = find_first_bit(backend->host_nodes, MAX_NODES);
             n < MAX_NODES;
             n = find_next_bit(backend->host_nodes, MAX_NODES, n + 1)) {
            g_autofree char *path = g_strdup_printf(
                "/sys/devices/system/node/node%lu/meminfo", n);
            g_autofree char *field = g_strdup_printf("Node %lu MemFree", n);

            nodes += guest_memfd_meminfo(path, field);
        }
        if (nodes && nodes < room) {
            room = nodes;
            what = "free on the host nodes of policy=bind";
        }
    }
#endif
    if (room && backend->size > room) {
        error_setg(errp, "cannot preallocate memory-backend-guest-memfd "
                   "'%s': %" PRIu64 " MiB asked, %" PRIu64 " MiB %s",
                   name, backend->size / MiB, room / MiB, what);
        error_append_hint(errp, "guest_memfd memory cannot be swapped or "
                          "reclaimed: use a smaller size, or prealloc=off "
                          "to allocate as the guest touches memory.\n");
        return false;
    }
    return true;
}

static bool
guest_memfd_backend_memory_alloc(HostMemoryBackend *backend, Error **errp)
{
    HostMemoryBackendGuestMemfd *m = MEMORY_BACKEND_GUEST_MEMFD(backend);
    g_autofree char *name = host_memory_backend_get_name(backend);
    uint64_t flags = GUEST_MEMFD_FLAG_MMAP;
    uint32_t ram_flags;
    int64_t supported;
    int fd;

    if (!kvm_enabled()) {
        error_setg(errp, "memory-backend-guest-memfd '%s' needs the KVM "
                   "accelerator: use -accel kvm", name);
        return false;
    }
    if (!backend->share) {
        error_setg(errp, "memory-backend-guest-memfd '%s' is always shared "
                   "with KVM: remove share=off", name);
        return false;
    }
    if (backend->merge) {
        error_setg(errp, "memory-backend-guest-memfd '%s' cannot be merged "
                   "by KSM: remove merge=on", name);
        return false;
    }
    if (!backend->size) {
        error_setg(errp, "memory-backend-guest-memfd '%s' needs a size: "
                   "set size to a non-zero multiple of the page size", name);
        return false;
    }
    if (!QEMU_IS_ALIGNED(backend->size, qemu_real_host_page_size())) {
        error_setg(errp, "memory-backend-guest-memfd '%s' size 0x%" PRIx64
                   " is not a multiple of the page size 0x%zx: round it up",
                   name, backend->size, qemu_real_host_page_size());
        return false;
    }

    if (!guest_memfd_backend_check_memory(backend, errp)) {
        return false;
    }

    supported = kvm_guest_memfd_flags();
    if (supported < 0) {
        error_setg(errp, "memory-backend-guest-memfd '%s': the host kernel "
                   "cannot bind guest_memfd to this VM's memory "
                   "(KVM_CAP_GUEST_MEMFD): Linux 6.18 or later is needed",
                   name);
        return false;
    }
    if (m->init_shared) {
        flags |= GUEST_MEMFD_FLAG_INIT_SHARED;
    }
    if ((supported & flags) != flags) {
        error_setg(errp, "memory-backend-guest-memfd '%s': the host kernel "
                   "cannot map guest_memfd (KVM_CAP_GUEST_MEMFD_FLAGS 0x%"
                   PRIx64 " lacks 0x%" PRIx64 "): Linux 6.18 or later is "
                   "needed", name, supported, flags & ~supported);
        return false;
    }

    /*
     * Migration finds the pages the guest dirtied through KVM's dirty log,
     * which KVM keeps for shared memory only (kvm_log_global_start), and
     * it cannot read private pages.
     */
    if (!m->init_shared) {
        error_setg(&m->migration_blocker, "memory-backend-guest-memfd '%s' "
                   "has init-shared=off: QEMU cannot read or track its "
                   "private pages, so the VM cannot be migrated or "
                   "snapshotted", name);
        if (migrate_add_blocker(&m->migration_blocker, errp) < 0) {
            return false;
        }
    }

    fd = kvm_create_guest_memfd(backend->size, flags, errp);
    if (fd < 0) {
        migrate_del_blocker(&m->migration_blocker);
        return false;
    }
    trace_guest_memfd_backend_alloc(name, backend->size, flags, fd);

    backend->aligned = true;
    ram_flags = RAM_SHARED | RAM_GUEST_MEMFD | RAM_GUEST_MEMFD_INPLACE;
    ram_flags |= m->init_shared ? 0 : RAM_GUEST_MEMFD_INIT_PRIVATE;
    ram_flags |= backend->reserve ? 0 : RAM_NORESERVE;
    if (!memory_region_init_ram_from_fd(&backend->mr, OBJECT(backend), name,
                                        backend->size, ram_flags, fd, 0,
                                        errp)) {
        error_prepend(errp, "memory-backend-guest-memfd '%s': ", name);
        close(fd);
        migrate_del_blocker(&m->migration_blocker);
        return false;
    }
    return true;
}

static bool
guest_memfd_backend_prealloc(HostMemoryBackend *backend, bool async,
                             Error **errp)
{
    HostMemoryBackendGuestMemfd *m = MEMORY_BACKEND_GUEST_MEMFD(backend);
    int fd = memory_region_get_fd(&backend->mr);
    void *ptr = memory_region_get_ram_ptr(&backend->mr);
    uint64_t sz = memory_region_size(&backend->mr);

    /*
     * Allocating the file's pages is much faster than faulting them in one
     * by one, and it works for private pages, which the host cannot touch.
     */
    if (!guest_memfd_backend_check_memory(backend, errp)) {
        return false;
    }
    if (fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, sz)) {
        g_autofree char *name = host_memory_backend_get_name(backend);
        int err = errno;

        /*
         * Give back what was allocated before it failed, unless a guest
         * uses the memory already (prealloc set at runtime): that would
         * lose its data
         */
        if (!host_memory_backend_is_mapped(backend) &&
            fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
                      sz)) {
            warn_report("memory-backend-guest-memfd '%s': cannot free its "
                        "partial preallocation: %s", name, strerror(errno));
        }
        error_setg_errno(errp, err, "cannot preallocate "
                         "memory-backend-guest-memfd '%s' (%" PRIu64 " MiB)",
                         name, sz / MiB);
        if (err == ENOMEM || err == ENOSPC) {
            error_append_hint(errp, "The host ran out of memory: use a "
                              "smaller size, or prealloc=off.\n");
        }
        return false;
    }
    if (!m->init_shared) {
        return true;
    }
    /*
     * Then map them, so that QEMU's own accesses do not fault either.  The
     * pages exist already: read faults map them writable (the mapping is
     * shared and needs no write notification) and are much cheaper than
     * the write faults that qemu_prealloc_mem() takes.
     */
    if (madvise(ptr, sz, MADV_POPULATE_READ)) {
        g_autofree char *name = host_memory_backend_get_name(backend);

        error_setg_errno(errp, errno, "cannot map the preallocated "
                         "memory of memory-backend-guest-memfd '%s'", name);
        return false;
    }
    return true;
}

static bool
guest_memfd_backend_get_init_shared(Object *o, Error **errp)
{
    return MEMORY_BACKEND_GUEST_MEMFD(o)->init_shared;
}

static void
guest_memfd_backend_set_init_shared(Object *o, bool value, Error **errp)
{
    HostMemoryBackend *backend = MEMORY_BACKEND(o);

    if (host_memory_backend_mr_inited(backend)) {
        error_setg(errp, "cannot change property 'init-shared' of %s",
                   object_get_typename(o));
        return;
    }
    MEMORY_BACKEND_GUEST_MEMFD(o)->init_shared = value;
}

static void
guest_memfd_backend_instance_init(Object *obj)
{
    HostMemoryBackend *backend = MEMORY_BACKEND(obj);

    MEMORY_BACKEND_GUEST_MEMFD(obj)->init_shared = true;
    backend->share = true;
    /* KSM does not merge file memory: do not inherit the machine's mem-merge */
    backend->merge = false;
}

static void
guest_memfd_backend_instance_finalize(Object *obj)
{
    migrate_del_blocker(&MEMORY_BACKEND_GUEST_MEMFD(obj)->migration_blocker);
}

static void
guest_memfd_backend_class_init(ObjectClass *oc, const void *data)
{
    HostMemoryBackendClass *bc = MEMORY_BACKEND_CLASS(oc);

    bc->alloc = guest_memfd_backend_memory_alloc;
    bc->prealloc = guest_memfd_backend_prealloc;
    bc->can_convert_in_place = true;

    object_class_property_add_bool(oc, "init-shared",
                                   guest_memfd_backend_get_init_shared,
                                   guest_memfd_backend_set_init_shared);
    object_class_property_set_description(oc, "init-shared",
        "Create the memory shared with the host (default), or private");
}

static const TypeInfo guest_memfd_backend_info = {
    .name = TYPE_MEMORY_BACKEND_GUEST_MEMFD,
    .parent = TYPE_MEMORY_BACKEND,
    .instance_init = guest_memfd_backend_instance_init,
    .instance_finalize = guest_memfd_backend_instance_finalize,
    .class_init = guest_memfd_backend_class_init,
    .instance_size = sizeof(HostMemoryBackendGuestMemfd),
};

static void register_types(void)
{
    type_register_static(&guest_memfd_backend_info);
}

type_init(register_types);
