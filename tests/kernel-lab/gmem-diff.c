/*
 * gmem-diff: one fixed sequence of guest_memfd operations, one line each
 *
 * Run against a real kernel (the kernel lab's L1, Linux with the
 * guest_memfd in-place conversion series) and against the LD_PRELOAD
 * model of that kernel (tests/qtest/guest-memfd-kvm-model.c) on a host
 * without it; tests/kernel-lab/diff-model.sh compares the two transcripts.
 *
 * Each line is "ID OP ARGS => RESULT".  ID names the case and is the same
 * in every run; RESULT holds what the kernel answered: return value,
 * errno, error_offset ("-" when the kernel left the field as the program
 * set it) and, after each conversion, the state of every page of the file
 * as the host sees it through its mapping ('S' readable, 'P' SIGBUS).
 * Lines starting with '#' describe the run and are not compared.
 *
 * Pinning a page (the case of a page an IOMMU or get_user_pages holds):
 * on a real kernel, through /sys/kernel/debug/gup_test (CONFIG_GUP_TEST,
 * PIN_LONGTERM_TEST_START/STOP).  Under the model (GMEM_DIFF_PIN=model),
 * the pin is the model's GMEM_KVM_MODEL_BUSY: set to the pinned page's
 * file offset while the page is pinned, unset when it is unpinned.
 *
 * Build: static for the lab's initramfs, dynamic for LD_PRELOAD.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

/*
 * The uAPI, spelled out here so that the program builds against any
 * installed kernel headers.  In-place conversion (series v8): capability
 * 250, the ioctl 0xd2 on the guest_memfd with a 128-byte argument.
 */
#define GD_KVMIO                        0xAE
#define GD_KVM_GET_API_VERSION          _IO(GD_KVMIO, 0x00)
#define GD_KVM_CREATE_VM                _IO(GD_KVMIO, 0x01)
#define GD_KVM_CHECK_EXTENSION          _IO(GD_KVMIO, 0x03)

struct gd_memory_attributes {           /* VM ioctl, Linux 6.8+ */
    uint64_t address;
    uint64_t size;
    uint64_t attributes;
    uint64_t flags;
};
#define GD_KVM_SET_MEMORY_ATTRIBUTES \
    _IOW(GD_KVMIO, 0xd2, struct gd_memory_attributes)

struct gd_memory_attributes2 {          /* guest_memfd ioctl, in-place series */
    uint64_t offset;
    uint64_t size;
    uint64_t attributes;
    uint64_t flags;
    uint64_t error_offset;
    uint64_t reserved[11];
};
#define GD_KVM_SET_MEMORY_ATTRIBUTES2 \
    _IOWR(GD_KVMIO, 0xd2, struct gd_memory_attributes2)

struct gd_create_guest_memfd {
    uint64_t size;
    uint64_t flags;
    uint64_t reserved[6];
};
#define GD_KVM_CREATE_GUEST_MEMFD \
    _IOWR(GD_KVMIO, 0xd4, struct gd_create_guest_memfd)

#define GD_GMEM_MMAP                    (1ULL << 0)
#define GD_GMEM_INIT_SHARED             (1ULL << 1)
#define GD_ATTR_PRIVATE                 (1ULL << 3)

#define GD_CAP_MEMORY_ATTRIBUTES        233
#define GD_CAP_VM_TYPES                 235
#define GD_CAP_GUEST_MEMFD_FLAGS        244

#define GD_VM_DEFAULT                   0
#define GD_VM_SW_PROTECTED              1

/* mm/gup_test.h (CONFIG_GUP_TEST): pin pages until told to unpin them */
struct gd_pin_longterm_test {
    uint64_t addr;
    uint64_t size;
    uint32_t flags;
};
#define GD_PIN_LONGTERM_TEST_START \
    _IOW('g', 7, struct gd_pin_longterm_test)
#define GD_PIN_LONGTERM_TEST_STOP       _IO('g', 8)
#define GD_PIN_LONGTERM_TEST_FLAG_USE_WRITE 1

#define PAGE        4096ULL
#define FILE_PAGES  16
#define FILE_SIZE   (FILE_PAGES * PAGE)
#define SENTINEL    0x5e5e5e5e5e5e0000ULL

static int kvm_fd = -1;
static int gup_fd = -1;
static int gup_errno;
static int pin_by_model;

/* A line's result: what the call returned and errno */
/*
 * The errno's name, as the transcripts spell it; stable across libcs,
 * unlike strerror()'s text
 */
static const char *errno_name(int err)
{
    static char other[16];

    switch (err) {
    case EINVAL: return "EINVAL";
    case ENOTTY: return "ENOTTY";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EFAULT: return "EFAULT";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case ENOENT: return "ENOENT";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case EIO: return "EIO";
    case ENOSPC: return "ENOSPC";
    case E2BIG: return "E2BIG";
    case ENXIO: return "ENXIO";
    case EBADF: return "EBADF";
    case ENODEV: return "ENODEV";
    case ENOSYS: return "ENOSYS";
    default:
        snprintf(other, sizeof(other), "errno%d", err);
        return other;
    }
}

static void print_ret(long ret, int err)
{
    printf("ret=%ld errno=%s", ret, ret < 0 ? errno_name(err) : "0");
}

static void check_extension(const char *who, int fd, long cap)
{
    long ret = ioctl(fd, GD_KVM_CHECK_EXTENSION, cap);
    int err = errno;

    printf("%s check-extension cap=%ld => ", who, cap);
    print_ret(ret, err);
    printf("\n");
}

/* Host access to one page through the mapping, SIGBUS caught */

static sigjmp_buf probe_env;
static volatile sig_atomic_t probing;

static void probe_signal(int sig)
{
    if (probing) {
        siglongjmp(probe_env, sig);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

/* 0 if the access worked, else the signal it raised */
static int probe(volatile uint8_t *p, int write, uint8_t value, uint8_t *out)
{
    int sig;

    probing = 1;
    sig = sigsetjmp(probe_env, 1);
    if (sig == 0) {
        if (write) {
            *p = value;
        } else {
            *out = *p;
        }
    }
    probing = 0;
    return sig;
}

typedef struct GFile {
    const char *name;   /* "vm1.sh" */
    int fd;
    uint8_t *map;
} GFile;

static void print_state(GFile *f)
{
    char s[FILE_PAGES + 1];
    uint8_t v;

    if (!f->map) {
        printf(" state=unmapped");
        return;
    }
    for (int i = 0; i < FILE_PAGES; i++) {
        int sig = probe(f->map + i * PAGE, 0, 0, &v);

        s[i] = sig == 0 ? 'S' : sig == SIGBUS ? 'P' : '?';
    }
    s[FILE_PAGES] = 0;
    printf(" state=%s", s);
}

static void access_page(GFile *f, const char *id, int page, int write,
                        uint8_t value)
{
    uint8_t v = 0;
    int sig;

    printf("%s %s %s page=%d => ", f->name, id, write ? "write" : "read",
           page);
    if (!f->map) {
        printf("unmapped\n");
        return;
    }
    sig = probe(f->map + page * PAGE, write, value, &v);
    if (sig) {
        printf("%s\n", sig == SIGBUS ? "SIGBUS" : "SIGNAL");
    } else if (write) {
        printf("ok value=0x%02x\n", value);
    } else {
        printf("ok value=0x%02x\n", v);
    }
}

/*
 * One KVM_SET_MEMORY_ATTRIBUTES2 on @fd.  @rsv is the index of a reserved
 * word to set to 1, or -1.
 */
static void attr2_fd(const char *who, const char *id, int fd, GFile *state,
                     uint64_t offset, uint64_t size, uint64_t attributes,
                     uint64_t flags, int rsv)
{
    struct gd_memory_attributes2 a = {
        .offset = offset, .size = size, .attributes = attributes,
        .flags = flags, .error_offset = SENTINEL,
    };
    long ret;
    int err;

    if (rsv >= 0) {
        a.reserved[rsv] = 1;
    }
    ret = ioctl(fd, GD_KVM_SET_MEMORY_ATTRIBUTES2, &a);
    err = errno;
    printf("%s %s attr2 offset=0x%llx size=0x%llx attributes=0x%llx "
           "flags=0x%llx reserved%s => ", who, id,
           (unsigned long long)offset, (unsigned long long)size,
           (unsigned long long)attributes, (unsigned long long)flags,
           rsv >= 0 ? (rsv == 0 ? "[0]=1" : "[10]=1") : "=0");
    print_ret(ret, err);
    if (a.error_offset == SENTINEL) {
        printf(" error_offset=-");
    } else {
        printf(" error_offset=0x%llx", (unsigned long long)a.error_offset);
    }
    if (state) {
        print_state(state);
    }
    printf("\n");
}

static void attr2(GFile *f, const char *id, uint64_t offset, uint64_t size,
                  uint64_t attributes, uint64_t flags, int rsv)
{
    if (f->fd < 0) {
        printf("%s %s attr2 offset=0x%llx size=0x%llx attributes=0x%llx "
               "flags=0x%llx reserved%s => no-file\n", f->name, id,
               (unsigned long long)offset, (unsigned long long)size,
               (unsigned long long)attributes, (unsigned long long)flags,
               rsv >= 0 ? (rsv == 0 ? "[0]=1" : "[10]=1") : "=0");
        return;
    }
    attr2_fd(f->name, id, f->fd, f, offset, size, attributes, flags, rsv);
}

static void vm_attributes(const char *who, int vm, uint64_t attributes)
{
    struct gd_memory_attributes a = {
        .address = 0, .size = PAGE, .attributes = attributes,
    };
    long ret = ioctl(vm, GD_KVM_SET_MEMORY_ATTRIBUTES, &a);
    int err = errno;

    printf("%s vm-set-memory-attributes address=0x0 size=0x1000 "
           "attributes=0x%llx => ", who, (unsigned long long)attributes);
    print_ret(ret, err);
    printf("\n");
}

/* How the kernel names a guest_memfd in /proc (not compared: it varies) */
static void print_names(GFile *f)
{
    char path[64], link[256] = "", line[512];
    unsigned long start, end;
    FILE *maps;
    ssize_t n;

    snprintf(path, sizeof(path), "/proc/self/fd/%d", f->fd);
    n = readlink(path, link, sizeof(link) - 1);
    link[n > 0 ? n : 0] = 0;
    printf("# %s: /proc/self/fd link '%s'", f->name, link);
    maps = fopen("/proc/self/maps", "r");
    while (maps && fgets(line, sizeof(line), maps)) {
        if (sscanf(line, "%lx-%lx", &start, &end) == 2 &&
            start == (uintptr_t)f->map) {
            line[strcspn(line, "\n")] = 0;
            printf(", /proc/self/maps '%s'", line);
        }
    }
    if (maps) {
        fclose(maps);
    }
    printf("\n");
}

static GFile create_gmem(int vm, const char *name, uint64_t flags)
{
    struct gd_create_guest_memfd g = { .size = FILE_SIZE, .flags = flags };
    GFile f = { .name = name, .fd = -1 };
    long ret;
    int err;

    ret = vm >= 0 ? ioctl(vm, GD_KVM_CREATE_GUEST_MEMFD, &g) : -1;
    err = vm >= 0 ? errno : EBADF;
    printf("%s create-guest-memfd size=0x%llx flags=%s => ", name,
           (unsigned long long)FILE_SIZE,
           flags == (GD_GMEM_MMAP | GD_GMEM_INIT_SHARED) ? "MMAP|INIT_SHARED" :
           flags == GD_GMEM_MMAP ? "MMAP" : "0");
    printf("%s errno=%s", ret >= 0 ? "ret=fd" : "ret=-1",
           ret >= 0 ? "0" : errno_name(err));
    f.fd = ret;
    if (ret >= 0) {
        void *m = mmap(NULL, FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
                       f.fd, 0);

        printf(" mmap=%s", m == MAP_FAILED ? errno_name(errno) : "ok");
        f.map = m == MAP_FAILED ? NULL : m;
        print_state(&f);
    }
    printf("\n");
    if (f.fd >= 0) {
        print_names(&f);
    }
    return f;
}

/*
 * Pin @page of @f as an IOMMU mapping or get_user_pages would hold it.
 * Returns whether the pin is in place.
 */
static int pin(GFile *f, int page)
{
    struct gd_pin_longterm_test t = {
        .addr = (uintptr_t)(f->map + page * PAGE), .size = PAGE,
        .flags = GD_PIN_LONGTERM_TEST_FLAG_USE_WRITE,
    };
    char busy[32];
    long ret;
    int err = 0;

    if (!f->map) {
        printf("%s pin page=%d => unmapped\n", f->name, page);
        return 0;
    }
    if (pin_by_model) {
        /* the model's stand-in for a referenced page: its file offset */
        snprintf(busy, sizeof(busy), "0x%llx", (unsigned long long)page * PAGE);
        setenv("GMEM_KVM_MODEL_BUSY", busy, 1);
        ret = 0;
        printf("# pin: GMEM_KVM_MODEL_BUSY=%s stands in for the pin\n", busy);
    } else if (gup_fd < 0) {
        printf("# pin: /sys/kernel/debug/gup_test: %s\n", strerror(gup_errno));
        ret = -1;
        err = ENODEV;
    } else {
        ret = ioctl(gup_fd, GD_PIN_LONGTERM_TEST_START, &t);
        err = errno;
    }
    printf("%s pin page=%d => ", f->name, page);
    print_ret(ret, err);
    printf("\n");
    return ret == 0;
}

static void unpin(GFile *f)
{
    long ret = 0;
    int err = 0;

    if (pin_by_model) {
        unsetenv("GMEM_KVM_MODEL_BUSY");
    } else if (gup_fd >= 0) {
        ret = ioctl(gup_fd, GD_PIN_LONGTERM_TEST_STOP, 0);
        err = errno;
    } else {
        ret = -1;
        err = ENODEV;
    }
    printf("%s unpin => ", f->name);
    print_ret(ret, err);
    printf("\n");
}

static void run_vm(int type)
{
    char who[8], sh_name[16], pr_name[16];
    GFile sh, pr;
    long vm;
    int err;
    int mfd;

    snprintf(who, sizeof(who), "vm%d", type);
    snprintf(sh_name, sizeof(sh_name), "vm%d.sh", type);
    snprintf(pr_name, sizeof(pr_name), "vm%d.pr", type);

    vm = ioctl(kvm_fd, GD_KVM_CREATE_VM, (unsigned long)type);
    err = errno;
    printf("%s create-vm type=%d => %s errno=%s\n", who, type,
           vm >= 0 ? "ret=fd" : "ret=-1", vm >= 0 ? "0" : errno_name(err));

    if (vm >= 0) {
        check_extension(who, vm, GD_CAP_MEMORY_ATTRIBUTES);
        check_extension(who, vm, GD_CAP_GUEST_MEMFD_FLAGS);
        check_extension(who, vm, 249);
        check_extension(who, vm, 250);
        check_extension(who, vm, 251);
        vm_attributes(who, vm, GD_ATTR_PRIVATE);
        vm_attributes(who, vm, 0);
        /* the file ioctl on a file that is no guest_memfd */
        attr2_fd(who, "not-gmem-vmfd", vm, NULL, 0, PAGE, GD_ATTR_PRIVATE,
                 0, -1);
        mfd = syscall(SYS_memfd_create, "gmem-diff", 0);
        if (mfd >= 0 && ftruncate(mfd, FILE_SIZE) == 0) {
            attr2_fd(who, "not-gmem-memfd", mfd, NULL, 0, PAGE,
                     GD_ATTR_PRIVATE, 0, -1);
        }
        if (mfd >= 0) {
            close(mfd);
        }
    }

    /* A file that starts shared */
    sh = create_gmem(vm, sh_name, GD_GMEM_MMAP | GD_GMEM_INIT_SHARED);
    attr2(&sh, "to-private-1", 0, PAGE, GD_ATTR_PRIVATE, 0, -1);
    access_page(&sh, "private-read", 0, 0, 0);
    access_page(&sh, "private-write", 0, 1, 0x11);
    attr2(&sh, "to-private-again", 0, PAGE, GD_ATTR_PRIVATE, 0, -1);
    attr2(&sh, "to-private-4", 0, 4 * PAGE, GD_ATTR_PRIVATE, 0, -1);
    attr2(&sh, "to-shared-1", PAGE, PAGE, 0, 0, -1);
    attr2(&sh, "to-shared-again", PAGE, PAGE, 0, 0, -1);
    /* invalid requests */
    attr2(&sh, "misaligned-offset", 0x800, PAGE, GD_ATTR_PRIVATE, 0, -1);
    attr2(&sh, "misaligned-size", 8 * PAGE, PAGE + 0x10, GD_ATTR_PRIVATE,
          0, -1);
    attr2(&sh, "zero-size", 8 * PAGE, 0, GD_ATTR_PRIVATE, 0, -1);
    attr2(&sh, "offset-at-end", FILE_SIZE, PAGE, GD_ATTR_PRIVATE, 0, -1);
    attr2(&sh, "past-end", FILE_SIZE - PAGE, 2 * PAGE, GD_ATTR_PRIVATE,
          0, -1);
    attr2(&sh, "overflow", ~0ULL - PAGE + 1, 2 * PAGE, GD_ATTR_PRIVATE,
          0, -1);
    attr2(&sh, "flags-1", 8 * PAGE, PAGE, GD_ATTR_PRIVATE, 1, -1);
    attr2(&sh, "flags-2", 8 * PAGE, PAGE, GD_ATTR_PRIVATE, 2, -1);
    attr2(&sh, "flags-to-shared", 0, PAGE, 0, 1, -1);
    attr2(&sh, "reserved-0", 8 * PAGE, PAGE, GD_ATTR_PRIVATE, 0, 0);
    attr2(&sh, "reserved-10", 8 * PAGE, PAGE, GD_ATTR_PRIVATE, 0, 10);
    attr2(&sh, "attr-unknown", 8 * PAGE, PAGE, 1, 0, -1);
    attr2(&sh, "attr-private-unknown", 8 * PAGE, PAGE,
          GD_ATTR_PRIVATE | 1, 0, -1);
    attr2(&sh, "attr-high", 8 * PAGE, PAGE, 1ULL << 63, 0, -1);
    /* contents across a round trip */
    access_page(&sh, "fill", 10, 1, 0xa5);
    attr2(&sh, "roundtrip-private", 10 * PAGE, PAGE, GD_ATTR_PRIVATE, 0, -1);
    attr2(&sh, "roundtrip-shared", 10 * PAGE, PAGE, 0, 0, -1);
    access_page(&sh, "after-roundtrip", 10, 0, 0);
    /* a pinned page: toward private refused, toward shared not checked */
    access_page(&sh, "pin-fault-in", 5, 1, 0x55);
    if (pin(&sh, 5)) {
        attr2(&sh, "pinned-to-private", 4 * PAGE, 4 * PAGE, GD_ATTR_PRIVATE,
              0, -1);
        access_page(&sh, "pinned-read", 5, 0, 0);
        attr2(&sh, "pinned-other-page", 6 * PAGE, PAGE, GD_ATTR_PRIVATE,
              0, -1);
        attr2(&sh, "pinned-to-shared", 4 * PAGE, 4 * PAGE, 0, 0, -1);
        attr2(&sh, "pinned-already-shared", 5 * PAGE, PAGE, 0, 0, -1);
        unpin(&sh);
        attr2(&sh, "unpinned-to-private", 4 * PAGE, 4 * PAGE,
              GD_ATTR_PRIVATE, 0, -1);
    }
    /* whole file both ways */
    attr2(&sh, "all-shared", 0, FILE_SIZE, 0, 0, -1);
    attr2(&sh, "all-private", 0, FILE_SIZE, GD_ATTR_PRIVATE, 0, -1);
    attr2(&sh, "all-shared-2", 0, FILE_SIZE, 0, 0, -1);

    /* A file that starts private */
    pr = create_gmem(vm, pr_name, GD_GMEM_MMAP);
    access_page(&pr, "initial-read", 0, 0, 0);
    attr2(&pr, "to-private-again", 0, FILE_SIZE, GD_ATTR_PRIVATE, 0, -1);
    attr2(&pr, "to-shared-1", 0, PAGE, 0, 0, -1);
    access_page(&pr, "shared-read", 0, 0, 0);
    access_page(&pr, "shared-write", 0, 1, 0x77);
    attr2(&pr, "to-private-1", 0, PAGE, GD_ATTR_PRIVATE, 0, -1);
    attr2(&pr, "to-shared-mid", 7 * PAGE, 2 * PAGE, 0, 0, -1);
    attr2(&pr, "to-shared-last", FILE_SIZE - PAGE, PAGE, 0, 0, -1);
    access_page(&pr, "private-read", 3, 0, 0);

    if (sh.map) {
        munmap(sh.map, FILE_SIZE);
    }
    if (pr.map) {
        munmap(pr.map, FILE_SIZE);
    }
    if (sh.fd >= 0) {
        close(sh.fd);
    }
    if (pr.fd >= 0) {
        close(pr.fd);
    }
    if (vm >= 0) {
        close(vm);
    }
}

int main(void)
{
    struct sigaction sa = { .sa_handler = probe_signal };
    struct utsname u;
    const char *pin_mode = getenv("GMEM_DIFF_PIN");
    long ret;

    setvbuf(stdout, NULL, _IOLBF, 0);
    sigaction(SIGBUS, &sa, NULL);
    sigaction(SIGSEGV, &sa, NULL);
    pin_by_model = pin_mode && !strcmp(pin_mode, "model");

    uname(&u);
    printf("# gmem-diff on Linux %s %s\n", u.release, u.version);
    printf("# pin: %s\n", pin_by_model ? "GMEM_KVM_MODEL_BUSY (model)" :
           "/sys/kernel/debug/gup_test PIN_LONGTERM_TEST_START");

    kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm_fd < 0) {
        printf("# /dev/kvm: %s\n", strerror(errno));
        return 2;
    }
    if (!pin_by_model) {
        gup_fd = open("/sys/kernel/debug/gup_test", O_RDWR | O_CLOEXEC);
        gup_errno = errno;
    }
    ret = ioctl(kvm_fd, GD_KVM_GET_API_VERSION, 0);
    printf("kvm api-version => ret=%ld\n", ret);
    check_extension("kvm", kvm_fd, GD_CAP_MEMORY_ATTRIBUTES);
    check_extension("kvm", kvm_fd, GD_CAP_VM_TYPES);
    check_extension("kvm", kvm_fd, GD_CAP_GUEST_MEMFD_FLAGS);
    check_extension("kvm", kvm_fd, 249);
    check_extension("kvm", kvm_fd, 250);
    check_extension("kvm", kvm_fd, 251);

    run_vm(GD_VM_DEFAULT);
    run_vm(GD_VM_SW_PROTECTED);
    printf("# end\n");
    return 0;
}
