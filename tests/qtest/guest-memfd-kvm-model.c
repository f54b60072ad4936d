/*
 * A model of other host kernels for the guest-memfd qtests, with LD_PRELOAD
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
 * - GMEM_KVM_MODEL_INPLACE=v8 (or v7, v5, v4) makes KVM a kernel with
 *   that revision of the guest_memfd in-place conversion series, booted
 *   with in-place conversion on; without it, KVM_SET_MEMORY_ATTRIBUTES2
 *   fails with ENOTTY, as where the ioctl does not exist, and with
 *   GMEM_KVM_MODEL_INPLACE=off the in-place capabilities read 0 too, on
 *   any host.  Each behaviour
 *   follows the posted series (v8, 2026-06-18, and v5 for the content
 *   flags), as the project's kernel-uapi notes (section 2) summarise it;
 *   the kernel lab's differential test (tests/kernel-lab/) compares this
 *   model with a real v8 kernel:
 *   - KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES, at 250 in v8 and 249 before,
 *     reads PRIVATE on /dev/kvm and on the fd of a VM type with private
 *     memory (SW-protected, SEV-SNP, TDX), 0 on a default VM's fd; v4
 *     and v5 have KVM_CAP_MEMORY_ATTRIBUTES2_FLAGS at 250, reading
 *     GMEM_KVM_MODEL_FLAGS (default ZERO|PRESERVE);
 *   - KVM_SET_MEMORY_ATTRIBUTES2 on a guest_memfd fails, in v8's order,
 *     with EINVAL for flags (v6-v8: any; v4/v5: unknown ones or both),
 *     reserved bytes, a guest_memfd of a VM type without private memory,
 *     attributes other than PRIVATE, and an empty, misaligned or
 *     out-of-file range; v4/v5 with EOPNOTSUPP for a flag not advertised
 *     and ZERO toward private.  A range that has the requested
 *     attributes already returns 0 at once (unless a content flag is
 *     given).  Toward private only, EAGAIN with error_offset while the
 *     page at file offset GMEM_KVM_MODEL_BUSY is referenced (the first
 *     GMEM_KVM_MODEL_BUSY_TRIES calls, or always); ENOMEM with
 *     error_offset = offset for a range that starts at file offset
 *     GMEM_KVM_MODEL_ENOMEM.  Otherwise the whole range converts.  Each
 *     file starts shared or private as its flags say.  Calls are logged
 *     to GMEM_KVM_MODEL_LOG.
 * - With GMEM_KVM_MODEL_SWPROT=1, KVM_X86_SW_PROTECTED_VM is a VM type
 *   (an ordinary VM underneath).
 * - The guest's "in eax, 0x99" (GMEM_GUEST_MODEL_PORT) becomes the exit a
 *   confidential guest's conversion request produces, which the host's KVM
 *   cannot produce for an ordinary VM: with eax = 12, KVM_EXIT_HYPERCALL
 *   for KVM_HC_MAP_GPA_RANGE (gpa in ebx, pages in ecx, attributes in esi),
 *   whose result the guest reads back in eax; with eax = 0xfa17,
 *   KVM_EXIT_MEMORY_FAULT (gpa in ebx, bytes in ecx, flags in esi), after
 *   which eax reads 0.
 *   Each KVM_HC_MAP_GPA_RANGE request is counted, and at exit, with
 *   GMEM_KVM_MODEL_DUMP_PAGES=n, the model logs those counts, the pages of
 *   each guest_memfd that is guest memory ("file shared=... private=..."),
 *   and the n pages from guest-physical GMEM_KVM_MODEL_DUMP_GPA one by
 *   one ("page 0x... private=0|1").
 * - Two KVM_SET_MEMORY_ATTRIBUTES2 at once on one guest_memfd, which
 *   QEMU's locking must prevent, print a line and abort().
 * - With GMEM_KVM_MODEL_SNP=1, KVM and the platform support SEV-SNP as the
 *   in-place series documents it, with no encryption: KVM_X86_SNP_VM is a
 *   VM type (an ordinary VM underneath), /dev/sev answers
 *   SEV_PLATFORM_STATUS, and KVM_MEMORY_ENCRYPT_OP takes KVM_SEV_INIT2 and
 *   the SNP launch commands.  KVM_SEV_SNP_LAUNCH_UPDATE updates pages
 *   from the first on while they are bound to a guest_memfd and private
 *   in it: EIO if the first is not, otherwise 0 with gfn_start, len and
 *   uaddr advanced past the pages it did, as the kernel reports progress
 *   (not all or nothing).  It reads each page in place (NULL uaddr) or
 *   copies it from uaddr first, and logs a checksum of what it measured
 *   (and, with a uaddr, of what the page held before).  The page at
 *   GMEM_KVM_MODEL_SHARED_GPA is made shared before each launch update
 *   (SNP and TDX), as a concurrent conversion would.
 *   KVM_SEV_SNP_LAUNCH_FINISH
 *   logs how many pages that memory slots bind to a guest_memfd, that is
 *   the guest's memory, are still shared.
 * - With GMEM_KVM_MODEL_TDX=1, likewise for TDX: KVM_X86_TDX_VM, and the
 *   TDX commands of KVM_MEMORY_ENCRYPT_OP.  KVM_TDX_CAPABILITIES offers
 *   every attribute and XFAM bit, and the host's supported CPUID as
 *   configurable; KVM_TDX_GET_CPUID returns the vCPU's CPUID.
 *   KVM_TDX_INIT_MEM_REGION adds pages one at a time and stops at the
 *   first that is not private, with EIO (the notes name no other errno
 *   for TDX) and gpa, source_addr and nr_pages advanced past those it
 *   added; it logs whether it extends the measurement and the first two
 *   bytes of the range;
 *   KVM_TDX_FINALIZE_VM logs the shared pages as LAUNCH_FINISH does.
 *
 * - KVM_CREATE_GUEST_MEMFD fails with ENOMEM, as when the host is out of
 *   memory, for files of GMEM_KVM_MODEL_CREATE_FAIL bytes.
 * - fallocate() of more than one page fails with the errno
 *   GMEM_KVM_MODEL_FALLOCATE_FAIL after allocating the first half, as
 *   when the host runs out of memory part way.
 *
 * Every other ioctl reaches the kernel.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <dlfcn.h>
#include <sched.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <unistd.h>
#include <linux/kvm_para.h>
#include <linux/psp-sev.h>
#include "system/kvm-gmem-uapi.h"
#include "gmem-guest/gmem-guest.h"

#define MAX_BINDINGS 512

typedef struct Binding {
    unsigned slot;              /* address space << 16 | slot */
    ino_t ino;
    int fd;
    unsigned long long start, end;
    unsigned long long gpa;
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

static void model_log_to(const char *path,
                         const struct kvm_userspace_memory_region2 *m)
{
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

static void model_log(const struct kvm_userspace_memory_region2 *m)
{
    model_log_to(getenv("GMEM_KVM_MODEL_LOG"), m);
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
    bindings[nr_bindings++] = (Binding) {
        m->slot, st.st_ino, m->guest_memfd, start, end, m->guest_phys_addr
    };
    return 0;
}

/* Per-file memory attributes, as the in-place series keeps them */

#define MAX_FILES 16
#define MODEL_PAGE 4096ULL

typedef struct File {
    ino_t ino;
    unsigned long long size;
    bool init_shared;
    bool private_vm;            /* made on a VM type with private memory */
    unsigned char *private;     /* one byte per page */
    unsigned busy_calls;
} File;

static File files[MAX_FILES];
static int nr_files;

/* The number (decimal, or hexadecimal after 0x) in $@name, or @dflt */
static unsigned long long env_ull(const char *name, unsigned long long dflt)
{
    const char *v = getenv(name);
    unsigned long long n = 0;
    int base = 10;

    if (!v || !*v) {
        return dflt;
    }
    if (v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
        base = 16;
        v += 2;
    }
    for (; *v; v++) {
        int d = *v >= '0' && *v <= '9' ? *v - '0' :
                *v >= 'a' && *v <= 'f' ? *v - 'a' + 10 :
                *v >= 'A' && *v <= 'F' ? *v - 'A' + 10 : base;

        if (d >= base) {
            return dflt;
        }
        n = n * base + d;
    }
    return n;
}

static File *file_of(int fd, bool create, bool init_shared)
{
    struct stat st;

    if (fstat(fd, &st)) {
        return NULL;
    }
    for (int i = 0; i < nr_files; i++) {
        if (files[i].ino == st.st_ino) {
            if (!create) {
                return &files[i];
            }
            /* a new file where a closed one was: forget the old one */
            free(files[i].private);
            files[i--] = files[--nr_files];
        }
    }
    if (!create || nr_files == MAX_FILES) {
        return NULL;
    }
    files[nr_files] = (File) {
        .ino = st.st_ino,
        .size = st.st_size,
        .init_shared = init_shared,
        .private = calloc(st.st_size / MODEL_PAGE + 1, 1),
    };
    memset(files[nr_files].private, !init_shared, st.st_size / MODEL_PAGE);
    return &files[nr_files++];
}

/* Is the file @fd bound to a memory slot, that is guest memory? */
static bool bound(int fd)
{
    struct stat st;

    if (fstat(fd, &st)) {
        return false;
    }
    for (int i = 0; i < nr_bindings; i++) {
        if (bindings[i].ino == st.st_ino) {
            return true;
        }
    }
    return false;
}

/* Calls on guest memory as "attributes", others (QEMU's probe) apart */
static void log_attributes(int fd, const struct kvm_memory_attributes2 *a,
                           int ret)
{
    const char *path = getenv("GMEM_KVM_MODEL_LOG");
    FILE *f = path ? fopen(path, "a") : NULL;

    if (f) {
        fprintf(f, "%s offset=0x%llx size=0x%llx attributes=0x%llx "
                "flags=0x%llx ret=%d error_offset=0x%llx\n",
                bound(fd) ? "attributes" : "unbound-attributes",
                (unsigned long long)a->offset, (unsigned long long)a->size,
                (unsigned long long)a->attributes,
                (unsigned long long)a->flags, ret,
                (unsigned long long)a->error_offset);
        fclose(f);
    }
}

/* The revision of the in-place series GMEM_KVM_MODEL_INPLACE names, or 0 */
static int model_inplace(void)
{
    const char *v = getenv("GMEM_KVM_MODEL_INPLACE");

    if (!v || v[0] != 'v' || v[1] < '4' || v[1] > '9' || v[2]) {
        return 0;
    }
    return v[1] - '0';
}

/* The content flags of v4/v5, or 0 */
static unsigned long long model_flags(void)
{
    return model_inplace() <= 5 ?
           env_ull("GMEM_KVM_MODEL_FLAGS",
                   KVM_SET_MEMORY_ATTRIBUTES2_ZERO |
                   KVM_SET_MEMORY_ATTRIBUTES2_PRESERVE) : 0;
}

static int set_attributes(int fd, struct kvm_memory_attributes2 *a)
{
    const unsigned long long zero = KVM_SET_MEMORY_ATTRIBUTES2_ZERO;
    const unsigned long long preserve = KVM_SET_MEMORY_ATTRIBUTES2_PRESERVE;
    File *file = file_of(fd, false, false);
    unsigned long long busy = env_ull("GMEM_KVM_MODEL_BUSY", ~0ULL);
    unsigned long long busy_tries = env_ull("GMEM_KVM_MODEL_BUSY_TRIES", ~0ULL);
    bool to_private = a->attributes & KVM_MEMORY_ATTRIBUTE_PRIVATE;
    int rev = model_inplace();
    bool done = true;

    if (!file || !rev) {
        return -ENOTTY;
    }
    if (rev >= 6 ? a->flags != 0 :
        (a->flags & ~(zero | preserve)) ||
        ((a->flags & zero) && (a->flags & preserve))) {
        return -EINVAL;
    }
    for (int i = 0; i < 11; i++) {
        if (a->reserved[i]) {
            return -EINVAL;
        }
    }
    if (!file->private_vm ||
        a->attributes & ~(unsigned long long)KVM_MEMORY_ATTRIBUTE_PRIVATE) {
        return -EINVAL;
    }
    if (!a->size || a->offset + a->size < a->offset ||
        (a->offset | a->size) & (MODEL_PAGE - 1) ||
        a->offset >= file->size || a->size > file->size - a->offset) {
        return -EINVAL;
    }
    if ((a->flags & ~model_flags()) || (to_private && (a->flags & zero))) {
        return -EOPNOTSUPP;
    }
    for (unsigned long long off = a->offset; off < a->offset + a->size;
         off += MODEL_PAGE) {
        done &= file->private[off / MODEL_PAGE] == to_private;
    }
    if (done && !a->flags) {
        return 0;
    }
    if (to_private && busy >= a->offset && busy - a->offset < a->size &&
        file->busy_calls < busy_tries) {
        file->busy_calls++;
        a->error_offset = busy & ~(MODEL_PAGE - 1);
        return -EAGAIN;
    }
    if (a->offset == env_ull("GMEM_KVM_MODEL_ENOMEM", ~0ULL)) {
        a->error_offset = a->offset;
        return -ENOMEM;
    }
    memset(file->private + a->offset / MODEL_PAGE, to_private,
           a->size / MODEL_PAGE);
    return 0;
}

/* Conversion requests of the guest, as the exits they would be */

#define MODEL_REQ_MAP_GPA_RANGE 12
#define MODEL_REQ_MEMORY_FAULT  0xfa17
#define MAX_VCPU_FD 1024

typedef struct Vcpu {
    struct kvm_run *run;
    bool pending;
    bool hypercall;
    uint32_t data_offset;
} Vcpu;

static Vcpu vcpus[MAX_VCPU_FD];

/* KVM_HC_MAP_GPA_RANGE requests, and the vCPUs that made them */
static unsigned long nr_requests;
static unsigned long nr_vcpus_requesting;
static bool requested[MAX_VCPU_FD];

static void count_request(int fd)
{
    __atomic_fetch_add(&nr_requests, 1, __ATOMIC_RELAXED);
    if (!__atomic_exchange_n(&requested[fd], true, __ATOMIC_RELAXED)) {
        __atomic_fetch_add(&nr_vcpus_requesting, 1, __ATOMIC_RELAXED);
    }
}

static int (*real_ioctl)(int, unsigned long, void *);

static bool model_requests(void)
{
    return listed("GMEM_KVM_MODEL_REQUESTS", 1);
}

/* Before KVM_RUN: give the guest the result of its request */
static void vcpu_enter(int fd)
{
    Vcpu *v = &vcpus[fd];
    uint32_t result;

    if (!v->pending) {
        return;
    }
    result = v->hypercall ? (uint32_t)v->run->hypercall.ret : 0;
    memcpy((char *)v->run + v->data_offset, &result, sizeof(result));
    v->pending = false;
}

/* What vcpu_exit() returns when the guest is to run on without an exit */
#define MODEL_RUN_AGAIN 1

/*
 * After KVM_RUN: turn a request into its exit.  Returns the ioctl's
 * result, or MODEL_RUN_AGAIN.
 */
static int vcpu_exit(int fd, int ret)
{
    Vcpu *v = &vcpus[fd];
    struct kvm_run *run;
    struct kvm_regs regs;

    if (ret || !v->run) {
        return ret;
    }
    run = v->run;
    if (run->exit_reason != KVM_EXIT_IO ||
        run->io.port != GMEM_GUEST_MODEL_PORT ||
        run->io.direction != KVM_EXIT_IO_IN || run->io.size != 4 ||
        run->io.count != 1 || real_ioctl(fd, KVM_GET_REGS, &regs)) {
        return ret;
    }
    if ((uint32_t)regs.rax == MODEL_REQ_MAP_GPA_RANGE &&
        (regs.rbx & (MODEL_PAGE - 1) || !(uint32_t)regs.rcx)) {
        /* refused by KVM itself, without an exit */
        uint32_t result = -EINVAL;

        count_request(fd);
        memcpy((char *)run + run->io.data_offset, &result, sizeof(result));
        return MODEL_RUN_AGAIN;
    }
    if ((uint32_t)regs.rax == MODEL_REQ_MAP_GPA_RANGE) {
        count_request(fd);
        v->data_offset = run->io.data_offset;
        run->exit_reason = KVM_EXIT_HYPERCALL;
        memset(&run->hypercall, 0, sizeof(run->hypercall));
        run->hypercall.nr = KVM_HC_MAP_GPA_RANGE;
        run->hypercall.args[0] = (uint32_t)regs.rbx;
        run->hypercall.args[1] = (uint32_t)regs.rcx;
        run->hypercall.args[2] = (uint32_t)regs.rsi;
        v->pending = v->hypercall = true;
        return 0;
    }
    if ((uint32_t)regs.rax == MODEL_REQ_MEMORY_FAULT) {
        v->data_offset = run->io.data_offset;
        run->exit_reason = KVM_EXIT_MEMORY_FAULT;
        memset(&run->memory_fault, 0, sizeof(run->memory_fault));
        run->memory_fault.gpa = (uint32_t)regs.rbx;
        run->memory_fault.size = (uint32_t)regs.rcx;
        run->memory_fault.flags = (uint32_t)regs.rsi;
        v->pending = true;
        v->hypercall = false;
        errno = EFAULT;
        return -1;
    }
    return ret;
}

/* SEV-SNP */

static int sev_fd = -1;
static int kvm_fd = -1;

/* The type + 1 of each VM fd the model saw created; 0 for other fds */
static unsigned char vm_types[MAX_VCPU_FD];

static bool model_snp(void)
{
    return listed("GMEM_KVM_MODEL_SNP", 1);
}

static bool model_swprot(void)
{
    return listed("GMEM_KVM_MODEL_SWPROT", 1);
}

/* Is @fd the fd of a VM whose type has no private memory? */
static bool default_vm(int fd)
{
    int type = fd >= 0 && fd < MAX_VCPU_FD ? vm_types[fd] - 1 : -1;

    return type >= 0 && type != KVM_X86_SW_PROTECTED_VM &&
           type != KVM_X86_SNP_VM && type != KVM_X86_TDX_VM;
}

/* The VM types the model adds, as KVM_CAP_VM_TYPES bits */
static int model_vm_types(void)
{
    return (model_swprot() ? 1 << KVM_X86_SW_PROTECTED_VM : 0) |
           (model_snp() ? 1 << KVM_X86_SNP_VM : 0) |
           (listed("GMEM_KVM_MODEL_TDX", 1) ? 1 << KVM_X86_TDX_VM : 0);
}

static bool model_tdx(void)
{
    return listed("GMEM_KVM_MODEL_TDX", 1);
}

static void model_printf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static void model_printf(const char *fmt, ...)
{
    const char *path = getenv("GMEM_KVM_MODEL_LOG");
    FILE *f = path ? fopen(path, "a") : NULL;
    va_list ap;

    if (f) {
        va_start(ap, fmt);
        vfprintf(f, fmt, ap);
        va_end(ap);
        fclose(f);
    }
}

static int open_model(const char *path, int flags, mode_t mode,
                      const char *real)
{
    int (*real_open)(const char *, int, ...) = dlsym(RTLD_NEXT, real);

    if (model_snp() && !strcmp(path, "/dev/sev")) {
        sev_fd = real_open("/dev/null", O_RDWR);
        return sev_fd;
    }
    return real_open(path, flags, mode);
}

/* With _FILE_OFFSET_BITS=64, as QEMU is built, this is open64() */
int open(const char *path, int flags, ...)
{
    va_list ap;
    mode_t mode;

    va_start(ap, flags);
    mode = va_arg(ap, mode_t);
    va_end(ap);
    return open_model(path, flags, mode, "open64");
}

static int sev_platform(struct sev_issue_cmd *cmd)
{
    struct sev_user_data_status *status;

    if (cmd->cmd != SEV_PLATFORM_STATUS) {
        return -EINVAL;
    }
    status = (void *)(uintptr_t)cmd->data;
    memset(status, 0, sizeof(*status));
    status->api_major = 1;
    status->api_minor = 55;
    status->build = 21;
    return 0;
}

static unsigned long long fnv(unsigned long long h, const void *p, size_t n)
{
    const unsigned char *b = p;

    for (size_t i = 0; i < n; i++) {
        h = (h ^ b[i]) * 0x100000001b3ULL;
    }
    return h;
}

static const Binding *binding_of(unsigned long long gpa)
{
    for (int i = 0; i < nr_bindings; i++) {
        const Binding *b = &bindings[i];

        if (!(b->slot >> 16) && gpa >= b->gpa &&
            gpa - b->gpa < b->end - b->start) {
            return b;
        }
    }
    return NULL;
}

/* How many bytes from @gpa, up to @len, are guest_memfd memory and private */
static unsigned long long private_prefix(unsigned long long gpa,
                                         unsigned long long len)
{
    unsigned long long off;

    for (off = 0; off < len; off += MODEL_PAGE) {
        const Binding *b = binding_of(gpa + off);
        File *file = b ? file_of(b->fd, false, false) : NULL;

        if (!file ||
            !file->private[(b->start + gpa + off - b->gpa) / MODEL_PAGE]) {
            break;
        }
    }
    return off;
}

/* The page at GMEM_KVM_MODEL_SHARED_GPA becomes shared, as if converted */
static void share_injected_page(void)
{
    unsigned long long gpa = env_ull("GMEM_KVM_MODEL_SHARED_GPA", ~0ULL);
    const Binding *b = gpa != ~0ULL ? binding_of(gpa) : NULL;
    File *file = b ? file_of(b->fd, false, false) : NULL;

    if (file) {
        file->private[(b->start + gpa - b->gpa) / MODEL_PAGE] = 0;
    }
}

/*
 * Populate private pages as a launch update does: zero them, or copy
 * them from @source, or (NULL) take them as they are; returns the
 * checksum of what is measured, unless @measure is false.
 */
static int populate(unsigned long long gpa, unsigned long long len,
                    const void *source, bool zero, bool measure,
                    unsigned long long *sum, unsigned long long *before,
                    unsigned *head)
{
    *sum = *before = 0xcbf29ce484222325ULL;
    *head = 0;
    for (unsigned long long off = 0; off < len; off += MODEL_PAGE) {
        const Binding *b = binding_of(gpa + off);
        unsigned long long foff = b->start + gpa + off - b->gpa;
        unsigned char *page = mmap(NULL, MODEL_PAGE, PROT_READ | PROT_WRITE,
                                   MAP_SHARED, b->fd, foff);

        if (page == MAP_FAILED) {
            return -EFAULT;
        }
        *before = fnv(*before, page, MODEL_PAGE);
        if (zero) {
            memset(page, 0, MODEL_PAGE);
        } else if (source) {
            memcpy(page, (const char *)source + off, MODEL_PAGE);
        }
        if (measure) {
            *sum = fnv(*sum, page, MODEL_PAGE);
        }
        if (!off) {
            *head = page[0] << 8 | page[1];
        }
        munmap(page, MODEL_PAGE);
    }
    return 0;
}

static int snp_launch_update(struct kvm_sev_snp_launch_update *u)
{
    unsigned long long gpa = u->gfn_start * MODEL_PAGE;
    unsigned long long sum, before, len;
    unsigned head;
    const char *source = u->uaddr ? "copy" : "in-place";
    bool secrets = u->type == KVM_SEV_SNP_PAGE_TYPE_SECRETS;
    int ret;

    if (!u->len || u->len & (MODEL_PAGE - 1) ||
        u->type < KVM_SEV_SNP_PAGE_TYPE_NORMAL ||
        u->type > KVM_SEV_SNP_PAGE_TYPE_CPUID) {
        return -EINVAL;
    }
    /* Page by page while private; EIO if the first is not */
    share_injected_page();
    len = private_prefix(gpa, u->len);
    if (!len) {
        model_printf("snp-update gpa=0x%llx len=0x%llx type=%u ret=%d\n",
                     gpa, (unsigned long long)u->len, u->type, -EIO);
        return -EIO;
    }
    ret = populate(gpa, len,
                   secrets ? NULL : (void *)(uintptr_t)u->uaddr,
                   u->type == KVM_SEV_SNP_PAGE_TYPE_ZERO, !secrets, &sum,
                   &before, &head);
    if (ret) {
        return ret;
    }
    /* With a source, also what the page held in place */
    model_printf("snp-update gpa=0x%llx len=0x%llx type=%u source=%s "
                 "sum=0x%016llx", gpa, len, u->type, source, sum);
    if (u->uaddr) {
        model_printf(" before=0x%016llx", before);
    }
    model_printf("\n");
    /* As the kernel reports progress, also when it stopped early */
    u->gfn_start += len / MODEL_PAGE;
    if (u->uaddr && u->type != KVM_SEV_SNP_PAGE_TYPE_ZERO) {
        u->uaddr += len;
    }
    u->len -= len;
    return 0;
}

/* How many guest_memfds are guest memory (QEMU's probe file is not) */
static int nr_bound_files(void)
{
    int n = 0;

    for (int i = 0; i < nr_files; i++) {
        for (int j = 0; j < nr_bindings; j++) {
            if (bindings[j].ino == files[i].ino) {
                n++;
                break;
            }
        }
    }
    return n;
}

/* How many pages of the guest's memory are shared and private */
static void count_bound(unsigned long long *shared, unsigned long long *private)
{
    *shared = *private = 0;
    for (int i = 0; i < nr_bindings; i++) {
        const Binding *b = &bindings[i];
        File *file = file_of(b->fd, false, false);

        for (unsigned long long off = b->start;
             file && !(b->slot >> 16) && off < b->end; off += MODEL_PAGE) {
            if (file->private[off / MODEL_PAGE]) {
                (*private)++;
            } else {
                (*shared)++;
            }
        }
    }
}

static int tdx_op(int fd, struct kvm_tdx_cmd *cmd)
{
    unsigned long long shared, private, sum, before;
    unsigned head;

    switch (cmd->id) {
    case KVM_TDX_CAPABILITIES: {
        struct kvm_tdx_capabilities *caps = (void *)(uintptr_t)cmd->data;
        int ret;

        caps->supported_attrs = ~0ULL;
        caps->supported_xfam = ~0ULL;
        ret = real_ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, &caps->cpuid);
        return ret < 0 ? -errno : 0;
    }
    case KVM_TDX_INIT_VM:
        model_printf("tdx-init-vm\n");
        return 0;
    case KVM_TDX_INIT_VCPU:
        model_printf("tdx-init-vcpu hob=0x%llx\n",
                     (unsigned long long)cmd->data);
        return 0;
    case KVM_TDX_GET_CPUID: {
        int ret = real_ioctl(fd, KVM_GET_CPUID2, (void *)(uintptr_t)cmd->data);

        return ret < 0 ? -errno : 0;
    }
    case KVM_TDX_INIT_MEM_REGION: {
        struct kvm_tdx_init_mem_region *r = (void *)(uintptr_t)cmd->data;
        unsigned long long len = r->nr_pages * MODEL_PAGE, done;
        bool measure = cmd->flags & KVM_TDX_MEASURE_MEMORY_REGION;
        int ret;

        if (!r->nr_pages || r->gpa & (MODEL_PAGE - 1)) {
            return -EINVAL;
        }
        /* One page at a time, stopping at the first that is not private */
        share_injected_page();
        done = private_prefix(r->gpa, len);
        if (done) {
            ret = populate(r->gpa, done, (void *)(uintptr_t)r->source_addr,
                           false, true, &sum, &before, &head);
            if (ret) {
                return ret;
            }
            model_printf("tdx-add gpa=0x%llx len=0x%llx source=%s "
                         "measure=%d head=%04x sum=0x%016llx\n",
                         (unsigned long long)r->gpa, done,
                         r->source_addr ? "copy" : "in-place", measure,
                         head, sum);
            r->gpa += done;
            if (r->source_addr) {
                r->source_addr += done;
            }
            r->nr_pages -= done / MODEL_PAGE;
        }
        if (done < len) {
            model_printf("tdx-add gpa=0x%llx len=0x%llx ret=%d\n",
                         (unsigned long long)r->gpa, len - done, -EIO);
            return -EIO;
        }
        return 0;
    }
    case KVM_TDX_FINALIZE_VM:
        count_bound(&shared, &private);
        model_printf("tdx-finalize files=%d shared=%llu private=%llu\n",
                     nr_bound_files(), shared, private);
        return 0;
    default:
        return -EINVAL;
    }
}

static int sev_vm_op(struct kvm_sev_cmd *cmd)
{
    unsigned long long shared = 0, private = 0;

    switch (cmd->id) {
    case KVM_SEV_INIT2:
        model_printf("snp-init2\n");
        return 0;
    case KVM_SEV_SNP_LAUNCH_START:
        model_printf("snp-launch-start\n");
        return 0;
    case KVM_SEV_SNP_LAUNCH_UPDATE:
        return snp_launch_update((void *)(uintptr_t)cmd->data);
    case KVM_SEV_SNP_LAUNCH_FINISH:
        count_bound(&shared, &private);
        model_printf("snp-finish files=%d shared=%llu private=%llu\n",
                     nr_bound_files(), shared, private);
        return 0;
    default:
        return -EINVAL;
    }
}

/* With _FILE_OFFSET_BITS=64, as QEMU is built, this is fallocate64() */
int fallocate64(int fd, int mode, off_t offset, off_t len)
{
    static int (*real_fallocate)(int, int, off_t, off_t);
    int err = env_ull("GMEM_KVM_MODEL_FALLOCATE_FAIL", 0);

    if (!real_fallocate) {
        real_fallocate = dlsym(RTLD_NEXT, "fallocate64");
    }
    if (err && !(mode & FALLOC_FL_PUNCH_HOLE) && len > MODEL_PAGE) {
        real_fallocate(fd, mode, offset, len / 2 & ~(MODEL_PAGE - 1));
        errno = err;
        return -1;
    }
    return real_fallocate(fd, mode, offset, len);
}

/* Per guest_memfd: is a KVM_SET_MEMORY_ATTRIBUTES2 running on it? */
static bool converting[MAX_VCPU_FD];

static void converting_enter(int fd)
{
    if (fd < 0 || fd >= MAX_VCPU_FD) {
        return;
    }
    if (__atomic_exchange_n(&converting[fd], true, __ATOMIC_ACQUIRE)) {
        fprintf(stderr, "guest-memfd-kvm-model: two KVM_SET_MEMORY_ATTRIBUTES2 "
                "at once on guest_memfd %d\n", fd);
        abort();
    }
    /* let a second caller, if the locking lets one in, meet this one */
    sched_yield();
}

static void converting_exit(int fd)
{
    if (fd >= 0 && fd < MAX_VCPU_FD) {
        __atomic_store_n(&converting[fd], false, __ATOMIC_RELEASE);
    }
}

/* At exit: the requests, and the state of the guest's memory */
static void __attribute__((destructor)) dump_pages(void)
{
    unsigned long long gpa = env_ull("GMEM_KVM_MODEL_DUMP_GPA", 0);
    unsigned long long n = env_ull("GMEM_KVM_MODEL_DUMP_PAGES", 0);

    if (!n) {
        return;
    }
    model_printf("requests total=%lu vcpus=%lu\n", nr_requests,
                 nr_vcpus_requesting);
    for (int i = 0; i < nr_files; i++) {
        unsigned long long private = 0, pages = files[i].size / MODEL_PAGE;

        for (int j = 0; j < nr_bindings; j++) {
            if (bindings[j].ino == files[i].ino) {
                for (unsigned long long p = 0; p < pages; p++) {
                    private += files[i].private[p];
                }
                model_printf("file shared=%llu private=%llu\n",
                             pages - private, private);
                break;
            }
        }
    }
    for (unsigned long long p = 0; p < n; p++) {
        const Binding *b = binding_of(gpa + p * MODEL_PAGE);
        File *file = b ? file_of(b->fd, false, false) : NULL;

        if (!file) {
            model_printf("page 0x%llx unbound\n", gpa + p * MODEL_PAGE);
            continue;
        }
        model_printf("page 0x%llx private=%d\n", gpa + p * MODEL_PAGE,
                     file->private[(b->start + gpa + p * MODEL_PAGE -
                                    b->gpa) / MODEL_PAGE]);
    }
}

int ioctl(int fd, unsigned long request, ...)
{
    va_list ap;
    void *arg;

    va_start(ap, request);
    arg = va_arg(ap, void *);
    va_end(ap);

    if (!real_ioctl) {
        real_ioctl = dlsym(RTLD_NEXT, "ioctl");
    }
    if (request == KVM_CREATE_VM) {
        unsigned long type = (unsigned long)arg;
        bool modelled = type < 32 && (model_vm_types() & 1 << type);
        /* An ordinary VM underneath a modelled type */
        int vfd = real_ioctl(fd, request, modelled ? (void *)0UL : arg);

        if (type == KVM_X86_TDX_VM) {
            kvm_fd = fd;
        }
        if (vfd >= 0 && vfd < MAX_VCPU_FD) {
            vm_types[vfd] = type + 1;
        }
        return vfd;
    }
    if (request == KVM_CHECK_EXTENSION && (long)arg == KVM_CAP_VM_TYPES &&
        model_vm_types()) {
        int ret = real_ioctl(fd, request, arg);

        return (ret > 0 ? ret : 1) | model_vm_types();
    }
    if (model_tdx()) {
        int err = 1;

        if (request == KVM_MEMORY_ENCRYPT_OP) {
            err = tdx_op(fd, arg);
        }
        if (err <= 0) {
            if (err) {
                errno = -err;
                return -1;
            }
            return 0;
        }
    }
    if (model_snp()) {
        int err = 1;

        if (fd == sev_fd && sev_fd >= 0 && request == SEV_ISSUE_CMD) {
            err = sev_platform(arg);
        } else if (request == KVM_MEMORY_ENCRYPT_OP) {
            err = sev_vm_op(arg);
        } else if (request == KVM_GET_DEVICE_ATTR &&
                   ((struct kvm_device_attr *)arg)->group ==
                   KVM_X86_GRP_SEV) {
            *(uint64_t *)(uintptr_t)((struct kvm_device_attr *)arg)->addr = 0;
            err = 0;
        }
        if (err <= 0) {
            if (err) {
                errno = -err;
                return -1;
            }
            return 0;
        }
    }
    if (request == KVM_CHECK_EXTENSION) {
        long cap = (long)arg;

        if (listed("GMEM_KVM_MODEL_HIDE_CAPS", cap)) {
            return 0;
        }
        if (set_cap(cap) >= 0) {
            return set_cap(cap);
        }
        /* a kernel without in-place conversion, whatever the host has */
        if (cap >= 249 && cap <= 251 && getenv("GMEM_KVM_MODEL_INPLACE") &&
            !strcmp(getenv("GMEM_KVM_MODEL_INPLACE"), "off")) {
            return 0;
        }
        /* the in-place capabilities of the revision, on the VM type */
        if (model_inplace() && cap == (model_inplace() >= 8 ? 250 : 249)) {
            return default_vm(fd) ? 0 : KVM_MEMORY_ATTRIBUTE_PRIVATE;
        }
        if (model_inplace() && model_inplace() <= 5 && cap == 250) {
            return default_vm(fd) ? 0 : (int)model_flags();
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
        } else {
            /* every memory slot the kernel took, for tests to follow */
            model_log_to(getenv("GMEM_KVM_MODEL_SLOT_LOG"), m);
        }
        return ret;
    }
    if (request == KVM_CREATE_GUEST_MEMFD) {
        const struct kvm_create_guest_memfd *g = arg;
        int gfd;

        if (g->size == env_ull("GMEM_KVM_MODEL_CREATE_FAIL", 0)) {
            errno = ENOMEM;
            return -1;
        }
        /* INIT_SHARED on a VM type with private memory needs in-place */
        if (!default_vm(fd) && !model_inplace() &&
            (g->flags & GUEST_MEMFD_FLAG_INIT_SHARED) &&
            fd >= 0 && fd < MAX_VCPU_FD && vm_types[fd]) {
            errno = EINVAL;
            return -1;
        }
        gfd = real_ioctl(fd, request, arg);
        if (gfd >= 0) {
            File *file = file_of(gfd, true,
                                 g->flags & GUEST_MEMFD_FLAG_INIT_SHARED);

            if (file) {
                file->private_vm = !default_vm(fd);
            }
        }
        return gfd;
    }
    if (request == KVM_SET_MEMORY_ATTRIBUTES2) {
        struct kvm_memory_attributes2 *a = arg;
        int err;

        converting_enter(fd);
        err = set_attributes(fd, a);
        log_attributes(fd, a, err);
        converting_exit(fd);
        if (err) {
            errno = -err;
            return -1;
        }
        return 0;
    }
    if (request == KVM_CREATE_VCPU && model_requests()) {
        int vfd = real_ioctl(fd, request, arg);

        if (vfd >= 0 && vfd < MAX_VCPU_FD) {
            vcpus[vfd].run = mmap(NULL, 2 * MODEL_PAGE,
                                  PROT_READ | PROT_WRITE, MAP_SHARED, vfd, 0);
            if (vcpus[vfd].run == MAP_FAILED) {
                vcpus[vfd].run = NULL;
            }
        }
        return vfd;
    }
    if (request == KVM_RUN && fd >= 0 && fd < MAX_VCPU_FD &&
        vcpus[fd].run) {
        int ret;

        vcpu_enter(fd);
        do {
            ret = vcpu_exit(fd, real_ioctl(fd, request, arg));
        } while (ret == MODEL_RUN_AGAIN);
        return ret;
    }
    return real_ioctl(fd, request, arg);
}
