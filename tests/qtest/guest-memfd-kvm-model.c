/*
 * A model of other host kernels for guest-memfd-test, used with LD_PRELOAD
 *
 * - The KVM capabilities listed in GMEM_KVM_MODEL_HIDE_CAPS (numbers,
 *   separated by commas) read as 0 from KVM_CHECK_EXTENSION, as they do
 *   on a kernel that predates them; those in GMEM_KVM_MODEL_SET_CAPS
 *   ("cap=value,...") read as the value given, as on a newer kernel.
 * - With GMEM_KVM_MODEL_SMM=1, KVM supports SMM: a second address space
 *   whose memory slots the model keeps itself (the host's KVM may have
 *   none), logged to the file GMEM_KVM_MODEL_LOG.
 * - As the kernel does, a range of a guest_memfd can be bound to one
 *   memory slot only (EEXIST), whatever the address space.
 *
 * Every other ioctl reaches the kernel.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <linux/kvm.h>

#define MAX_BINDINGS 512

typedef struct Binding {
    unsigned slot;              /* address space << 16 | slot */
    ino_t ino;
    unsigned long long start, end;
} Binding;

static Binding bindings[MAX_BINDINGS];
static int nr_bindings;

static bool listed(const char *env, long value)
{
    const char *p = getenv(env);

    while (p && *p) {
        long n = 0;

        while (*p >= '0' && *p <= '9') {
            n = n * 10 + (*p++ - '0');
        }
        if (n == value) {
            return true;
        }
        p = *p == ',' ? p + 1 : NULL;
    }
    return false;
}

/* The value GMEM_KVM_MODEL_SET_CAPS gives @cap, or -1 */
static long set_cap(long cap)
{
    const char *p = getenv("GMEM_KVM_MODEL_SET_CAPS");

    while (p && *p) {
        long n = 0, v = 0;

        while (*p >= '0' && *p <= '9') {
            n = n * 10 + (*p++ - '0');
        }
        if (*p++ != '=') {
            return -1;
        }
        while (*p >= '0' && *p <= '9') {
            v = v * 10 + (*p++ - '0');
        }
        if (n == cap) {
            return v;
        }
        p = *p == ',' ? p + 1 : NULL;
    }
    return -1;
}

static bool model_smm(void)
{
    return listed("GMEM_KVM_MODEL_SMM", 1);
}

static void model_log(const struct kvm_userspace_memory_region2 *m)
{
    const char *path = getenv("GMEM_KVM_MODEL_LOG");
    FILE *f = path ? fopen(path, "a") : NULL;

    if (f) {
        fprintf(f, "as=%u slot=%u flags=0x%x gpa=0x%llx size=0x%llx "
                "guest_memfd=%d offset=0x%llx\n", m->slot >> 16,
                m->slot & 0xffff, m->flags,
                (unsigned long long)m->guest_phys_addr,
                (unsigned long long)m->memory_size, (int)m->guest_memfd,
                (unsigned long long)m->guest_memfd_offset);
        fclose(f);
    }
}

static void unbind(unsigned slot)
{
    for (int i = 0; i < nr_bindings; i++) {
        if (bindings[i].slot == slot) {
            bindings[i--] = bindings[--nr_bindings];
        }
    }
}

/* The memslot rules of guest_memfd; returns 0 or a negative errno */
static int bind(const struct kvm_userspace_memory_region2 *m)
{
    unsigned long long start = m->guest_memfd_offset;
    unsigned long long end = start + m->memory_size;
    struct stat st;

    unbind(m->slot);
    if (!m->memory_size || !(m->flags & KVM_MEM_GUEST_MEMFD)) {
        return 0;
    }
    if (fstat(m->guest_memfd, &st)) {
        return -EINVAL;
    }
    for (int i = 0; i < nr_bindings; i++) {
        if (bindings[i].ino == st.st_ino &&
            start < bindings[i].end && bindings[i].start < end) {
            return -EEXIST;
        }
    }
    if (nr_bindings == MAX_BINDINGS) {
        return -ENOMEM;
    }
    bindings[nr_bindings++] = (Binding) { m->slot, st.st_ino, start, end };
    return 0;
}

int ioctl(int fd, unsigned long request, ...)
{
    static int (*real_ioctl)(int, unsigned long, void *);
    va_list ap;
    void *arg;

    va_start(ap, request);
    arg = va_arg(ap, void *);
    va_end(ap);

    if (!real_ioctl) {
        real_ioctl = dlsym(RTLD_NEXT, "ioctl");
    }
    if (request == KVM_CHECK_EXTENSION) {
        long cap = (long)arg;

        if (listed("GMEM_KVM_MODEL_HIDE_CAPS", cap)) {
            return 0;
        }
        if (set_cap(cap) >= 0) {
            return set_cap(cap);
        }
        if (model_smm() && cap == KVM_CAP_X86_SMM) {
            return 1;
        }
        if (model_smm() && cap == KVM_CAP_MULTI_ADDRESS_SPACE) {
            return 2;
        }
    }
    if (request == KVM_SET_USER_MEMORY_REGION2) {
        const struct kvm_userspace_memory_region2 *m = arg;
        int err = bind(m);
        int ret;

        if (err) {
            errno = -err;
            return -1;
        }
        if (model_smm() && m->slot >> 16 == 1) {
            model_log(m);
            return 0;
        }
        ret = real_ioctl(fd, request, arg);
        if (ret < 0) {
            unbind(m->slot);
        }
        return ret;
    }
    return real_ioctl(fd, request, arg);
}
