/*
 * QTest for memory-backend-guest-memfd: conversion in place
 *
 * How KVM can convert guest_memfd memory, as QEMU probes and reports it,
 * and the conversions a guest asks for, carried out in place: on a model
 * of the in-place kernel (guest-memfd-kvm-model.so), and on this host's
 * kernel where it converts in place (the kvm/ paths, which skip
 * elsewhere).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sys/ioctl.h>
#include <linux/kvm_para.h>
#include "qemu/units.h"
#include "qemu/bswap.h"
#include "libqtest.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "system/kvm-gmem-uapi.h"
#include "hw/pci/pci_regs.h"
#include "guest-memfd-util.h"
#include "gmem-guest/gmem-guest.h"

/*
 * query-kvm-guest-memfd of a QEMU started with @args, under the KVM model
 * with the environment @env ("NAME=value" strings, NULL-terminated) if
 * given
 */
static QDict *query_gmem_caps(const char *const *env, const char *args)
{
    g_autofree char *preload = g_canonicalize_filename(kvm_model(), NULL);
    QTestState *qts;
    QDict *resp, *info;

    for (int i = 0; env && env[i]; i++) {
        g_auto(GStrv) kv = g_strsplit(env[i], "=", 2);

        g_setenv("LD_PRELOAD", preload, true);
        g_setenv(kv[0], kv[1], true);
    }
    qts = qtest_initf("-accel kvm %s", args);
    for (int i = 0; env && env[i]; i++) {
        g_auto(GStrv) kv = g_strsplit(env[i], "=", 2);

        g_unsetenv("LD_PRELOAD");
        g_unsetenv(kv[0]);
    }
    resp = qtest_qmp(qts, "{ 'execute': 'query-kvm-guest-memfd' }");
    info = qdict_get_qdict(resp, "return");
    g_assert(info);
    qobject_ref(info);
    qobject_unref(resp);
    qtest_quit(qts);
    return info;
}

/* Kernels of the KVM model, as environments */
static const char *const swprot_v8[] = {
    "GMEM_KVM_MODEL_INPLACE=v8", "GMEM_KVM_MODEL_SWPROT=1", NULL
};
static const char *const swprot_v7[] = {
    "GMEM_KVM_MODEL_INPLACE=v7", "GMEM_KVM_MODEL_SWPROT=1", NULL
};
static const char *const swprot_v5[] = {
    "GMEM_KVM_MODEL_INPLACE=v5", "GMEM_KVM_MODEL_SWPROT=1", NULL
};
static const char *const default_v8[] = { "GMEM_KVM_MODEL_INPLACE=v8", NULL };
/* 250 answers PRIVATE, but the kernel has no conversion ioctl */
static const char *const lying[] = { "GMEM_KVM_MODEL_SET_CAPS=250=8", NULL };

/* "phase direction content" -> means, as query-kvm-guest-memfd says */
static char *conversions_str(QDict *info)
{
    GString *s = g_string_new("");
    QListEntry *e;

    QLIST_FOREACH_ENTRY(qdict_get_qlist(info, "conversions"), e) {
        QDict *c = qobject_to(QDict, qlist_entry_obj(e));

        g_string_append_printf(s, "%s %s %s %s\n",
                               qdict_get_str(c, "phase"),
                               qdict_get_str(c, "direction"),
                               qdict_get_str(c, "content"),
                               qdict_get_str(c, "means"));
    }
    return g_string_free(s, false);
}

/*
 * What KVM offers for guest_memfd, as QEMU probed it: this host's kernel,
 * whose mode the test works out from /dev/kvm itself, and (through the
 * model) a kernel with in-place conversion.
 */
static void test_kvm_caps(void)
{
    int kvm, vm;
    long gmem, flags, vm_attrs;
    const char *expect;
    QDict *info;
    g_autofree char *conv = NULL;
    QTestState *qts;
    char *hmp;

    if (!have_kvm()) {
        return;
    }
    kvm = open("/dev/kvm", O_RDWR);
    g_assert(kvm >= 0);
    vm = ioctl(kvm, KVM_CREATE_VM, 0);
    g_assert(vm >= 0);
    gmem = ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD);
    flags = ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD_FLAGS);
    vm_attrs = ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_MEMORY_ATTRIBUTES);
    close(vm);
    close(kvm);
    expect = vm_attrs > 0 && (vm_attrs & KVM_MEMORY_ATTRIBUTE_PRIVATE) ?
             "legacy" : gmem > 0 && flags > 0 &&
             (flags & GUEST_MEMFD_FLAG_MMAP) ? "shared-only" : "none";

    info = query_gmem_caps(NULL, "-machine none");
    g_assert_cmpstr(qdict_get_str(info, "mode"), ==, expect);
    g_assert_cmpint(qdict_get_int(info, "guest-memfd-flags"), ==,
                    MAX(flags, 0));
    conv = conversions_str(info);
    if (g_str_equal(expect, "shared-only")) {
        /* no private memory: no conversion of any kind */
        g_assert_cmpint(qlist_size(qdict_get_qlist(info, "conversions")),
                        ==, 12);
        g_assert_null(strstr(conv, "plain"));
        g_assert_null(strstr(conv, "kernel-flag"));
    }
    qobject_unref(info);
    g_clear_pointer(&conv, g_free);

    /*
     * v8 (model): per-file attributes for a VM type with private memory,
     * whose private memory is not encrypted and keeps its contents
     */
    info = query_gmem_caps(swprot_v8, SWPROT_ARGS);
    g_assert_cmpstr(qdict_get_str(info, "mode"), ==, "in-place");
    g_assert_cmpint(qdict_get_int(info, "guest-memfd-memory-attributes"),
                    ==, 8);
    conv = conversions_str(info);
    g_assert(strstr(conv, "runtime to-private unspecified plain\n"));
    g_assert(strstr(conv, "runtime to-private zero unsupported\n"));
    g_assert(strstr(conv, "runtime to-shared zero userspace\n"));
    g_assert(strstr(conv, "runtime to-shared preserve inherent\n"));
    g_assert(strstr(conv, "runtime to-private preserve inherent\n"));
    qobject_unref(info);
    g_clear_pointer(&conv, g_free);

    /* v8 (model): a default VM reads 0, so no in-place conversion */
    info = query_gmem_caps(default_v8, "-machine none");
    g_assert_cmpstr(qdict_get_str(info, "mode"), ==, expect);
    g_assert_cmpint(qdict_get_int(info, "guest-memfd-memory-attributes"),
                    ==, 0);
    qobject_unref(info);

    /* v5 (model): content flags at 250, beside the attributes at 249 */
    info = query_gmem_caps(swprot_v5, SWPROT_ARGS);
    g_assert_cmpstr(qdict_get_str(info, "mode"), ==, "in-place");
    conv = conversions_str(info);
    g_assert(strstr(conv, "runtime to-shared zero kernel-flag\n"));
    g_assert(strstr(conv, "runtime to-shared preserve kernel-flag\n"));
    qobject_unref(info);
    g_clear_pointer(&conv, g_free);

    /* v7 (model): the attributes at 249, without flags */
    info = query_gmem_caps(swprot_v7, SWPROT_ARGS);
    g_assert_cmpstr(qdict_get_str(info, "mode"), ==, "in-place");
    conv = conversions_str(info);
    g_assert(strstr(conv, "runtime to-shared zero userspace\n"));
    qobject_unref(info);

    qts = qtest_init("-accel kvm -machine none");
    hmp = qtest_hmp(qts, "info kvm-guest-memfd");
    g_assert(strstr(hmp, "mode: "));
    g_assert(strstr(hmp, expect));
    g_free(hmp);
    qtest_quit(qts);
}

/*
 * A capability that answers, but whose conversion fails (here: 250 reads
 * PRIVATE on a kernel without the ioctl) is ignored, with a warning that
 * names it, and QEMU runs on without in-place conversion.
 */
static void test_kvm_caps_lying(void)
{
    g_autofree char *preload = g_canonicalize_filename(kvm_model(), NULL);
    g_autofree char *cmd = NULL;
    g_autofree char *err = NULL;
    g_auto(GStrv) argv = NULL;
    g_auto(GStrv) envp = NULL;
    QDict *info;
    int status;

    if (!have_kvm()) {
        return;
    }
    envp = g_environ_setenv(g_get_environ(), "LD_PRELOAD", preload, true);
    envp = g_environ_setenv(envp, "GMEM_KVM_MODEL_SET_CAPS", "250=8", true);
    /* an unknown device ends QEMU once the accelerator is up */
    cmd = g_strdup_printf("%s -accel kvm -machine none -display none "
                          "-device no-such-device",
                          g_getenv("QTEST_QEMU_BINARY"));
    g_assert(g_shell_parse_argv(cmd, NULL, &argv, NULL));
    g_assert(g_spawn_sync(NULL, argv, envp, G_SPAWN_STDOUT_TO_DEV_NULL, NULL,
                          NULL, NULL, &err, &status, NULL));
    if (g_test_verbose()) {
        g_printerr("%s", err);
    }
    g_assert(strstr(err, "warning: KVM capability 250 reports that "
                    "guest_memfd memory converts in place, but converting "
                    "a page of a guest_memfd of this VM failed "
                    "(Inappropriate ioctl for device): ignoring it\n"));

    info = query_gmem_caps(lying, "-machine none");
    g_assert_cmpstr(qdict_get_str(info, "mode"), !=, "in-place");
    g_assert_cmpint(qdict_get_int(info, "guest-memfd-memory-attributes"),
                    ==, 0);
    qobject_unref(info);
}

/*
 * Conversions a guest asks for, end to end: the guest makes
 * KVM_HC_MAP_GPA_RANGE hypercalls and private memory faults, which QEMU
 * carries out through the conversion engine and the guest_memfd attribute
 * ioctl.  The host's KVM
 * can neither produce these exits for an ordinary VM nor convert in place,
 * so the model (GMEM_KVM_MODEL_REQUESTS) turns the guest's requests into
 * those exits, and keeps the guest_memfd's attributes as the in-place
 * series documents them (v8 capabilities).
 */
typedef struct ConvRequest {
    uint32_t kind, gpa, size, attributes;
    uint32_t result;            /* what the guest should read back */
} ConvRequest;

#define REQ_HC          GMEM_GUEST_REQ_MAP_GPA_RANGE
#define REQ_FAULT       GMEM_GUEST_REQ_MEMORY_FAULT
#define ENCRYPTED       KVM_MAP_GPA_RANGE_ENCRYPTED
#define FAULT_PRIVATE   KVM_MEMORY_EXIT_FLAG_PRIVATE
#define HC_EINVAL       ((uint32_t)-KVM_EINVAL)
#define HC_EFAULT       ((uint32_t)-KVM_EFAULT)

typedef struct ConvVm {
    QTestState *qts;
    char *dir, *console, *model_log;
} ConvVm;

/* Start the VM stopped, with @args added to its command line */
static void conv_vm_start_stopped(ConvVm *vm, const char *busy,
                                  const char *tries, const char *args)
{
    g_autofree char *preload = g_canonicalize_filename(kvm_model(), NULL);
    g_autofree char *extra = NULL;

    vm->dir = test_dir_new();
    vm->console = g_build_filename(vm->dir, "console", NULL);
    vm->model_log = g_build_filename(vm->dir, "model", NULL);
    extra = g_strdup_printf("-S -object sw-protected-guest,id=swp0 "
                            "-kernel %s -append 'mode=halt mb=1' "
                            "-chardev file,id=dbg,path=%s "
                            "-device isa-debugcon,iobase=0xe9,chardev=dbg %s",
                            guest_elf(), vm->console, args);
    g_setenv("LD_PRELOAD", preload, true);
    g_setenv("GMEM_KVM_MODEL_INPLACE", "v8", true);
    g_setenv("GMEM_KVM_MODEL_SWPROT", "1", true);
    g_setenv("GMEM_KVM_MODEL_REQUESTS", "1", true);
    g_setenv("GMEM_KVM_MODEL_LOG", vm->model_log, true);
    if (busy) {
        g_setenv("GMEM_KVM_MODEL_BUSY", busy, true);
    }
    if (tries) {
        g_setenv("GMEM_KVM_MODEL_BUSY_TRIES", tries, true);
    }
    vm->qts = start_vm("pc,confidential-guest-support=swp0", "", extra);
    g_unsetenv("LD_PRELOAD");
    g_unsetenv("GMEM_KVM_MODEL_INPLACE");
    g_unsetenv("GMEM_KVM_MODEL_SWPROT");
    g_unsetenv("GMEM_KVM_MODEL_REQUESTS");
    g_unsetenv("GMEM_KVM_MODEL_LOG");
    g_unsetenv("GMEM_KVM_MODEL_BUSY");
    g_unsetenv("GMEM_KVM_MODEL_BUSY_TRIES");
}

/*
 * A software-protected VM on the real kernel, stopped: the test guest with
 * hc=1 and @append on its command line, and @args for QEMU
 */
static void kvm_vm_start(ConvVm *vm, const char *append, const char *args)
{
    g_autofree char *extra = NULL;

    vm->dir = test_dir_new();
    vm->console = g_build_filename(vm->dir, "console", NULL);
    vm->model_log = NULL;
    extra = g_strdup_printf("-S -object sw-protected-guest,id=swp0 "
                            "-kernel %s -append 'mode=halt mb=1 hc=1%s' "
                            "-chardev file,id=dbg,path=%s "
                            "-device isa-debugcon,iobase=0xe9,chardev=dbg %s",
                            guest_elf(), append, vm->console, args);
    vm->qts = start_vm("pc,confidential-guest-support=swp0", "", extra);
}

/* Leave @n requests in the mailbox, and let the guest run */
static void conv_vm_requests(ConvVm *vm, const ConvRequest *req, int n)
{
    for (int i = 0; i < n; i++) {
        uint64_t r = GMEM_GUEST_MAILBOX_GPA + GMEM_GUEST_MB_REQUESTS +
                     i * sizeof(GmemGuestRequest);

        qtest_writel(vm->qts, r + offsetof(GmemGuestRequest, kind),
                     req[i].kind);
        qtest_writel(vm->qts, r + offsetof(GmemGuestRequest, gpa),
                     req[i].gpa);
        qtest_writel(vm->qts, r + offsetof(GmemGuestRequest, size),
                     req[i].size);
        qtest_writel(vm->qts, r + offsetof(GmemGuestRequest, attributes),
                     req[i].attributes);
    }
    qtest_writel(vm->qts, GMEM_GUEST_MAILBOX_GPA + GMEM_GUEST_MB_NR_REQUESTS,
                 n);
    qtest_qmp_assert_success(vm->qts, "{ 'execute': 'cont' }");
}

static void conv_vm_start(ConvVm *vm, const char *busy, const char *tries,
                          const ConvRequest *req, int n)
{
    conv_vm_start_stopped(vm, busy, tries, "");
    conv_vm_requests(vm, req, n);
}

/* Request @i: whether the guest made it, and what it read back */
static bool conv_vm_result(ConvVm *vm, int i, uint32_t *result)
{
    uint64_t r = GMEM_GUEST_MAILBOX_GPA + GMEM_GUEST_MB_REQUESTS +
                 i * sizeof(GmemGuestRequest);

    /* The guest writes the result before done: read done first */
    if (!qtest_readl(vm->qts, r + offsetof(GmemGuestRequest, done))) {
        return false;
    }
    *result = qtest_readl(vm->qts, r + offsetof(GmemGuestRequest, result));
    return true;
}

/* The one guest_memfd backend of query-kvm-guest-memfd */
static QDict *conv_vm_backend_of(QTestState *qts)
{
    QDict *resp = qtest_qmp(qts, "{ 'execute': 'query-kvm-guest-memfd' }");
    QList *list = qdict_get_qlist(qdict_get_qdict(resp, "return"),
                                  "backends");
    QDict *b;

    g_assert_cmpint(qlist_size(list), ==, 1);
    b = qobject_to(QDict, qlist_peek(list));
    qobject_ref(b);
    qobject_unref(resp);
    return b;
}

static QDict *conv_vm_backend(ConvVm *vm)
{
    return conv_vm_backend_of(vm->qts);
}

/* The conversions the guest asked for and QEMU refused */
static uint64_t conv_vm_guest_errors(ConvVm *vm)
{
    QDict *resp = qtest_qmp(vm->qts,
                            "{ 'execute': 'query-kvm-guest-memfd' }");
    uint64_t n = qdict_get_uint(qdict_get_qdict(resp, "return"),
                                "guest-errors");

    qobject_unref(resp);
    return n;
}

static void conv_vm_end(ConvVm *vm)
{
    g_autofree char *text = read_console(vm->console);

    if (g_test_verbose()) {
        g_printerr("%s", text);
    }
    if (vm->qts) {
        qtest_quit(vm->qts);
    }
    test_dir_remove(vm->dir);
    g_free(vm->console);
    g_free(vm->model_log);
    g_free(vm->dir);
}

/* The model's log of KVM_SET_MEMORY_ATTRIBUTES2 calls, one line each */
static char *conv_vm_kernel_calls(ConvVm *vm)
{
    g_autofree char *log = NULL;
    g_auto(GStrv) lines = NULL;
    GString *s = g_string_new("");

    g_assert(g_file_get_contents(vm->model_log, &log, NULL, NULL));
    lines = g_strsplit(log, "\n", -1);
    for (int i = 0; lines[i]; i++) {
        if (g_str_has_prefix(lines[i], "attributes ")) {
            g_string_append_printf(s, "%s\n", lines[i] + 11);
        }
    }
    return g_string_free(s, false);
}

static const ConvRequest conv_requests[] = {
    /* 64 KiB at 18 MiB to private, then 8 KiB of it back to shared */
    { REQ_HC, 0x1200000, 16, ENCRYPTED, 0 },
    { REQ_HC, 0x1201000, 2, 0, 0 },
    /* a private access to a shared page: KVM_EXIT_MEMORY_FAULT */
    { REQ_FAULT, 0x1300000, 0x1000, FAULT_PRIVATE, 0 },
    /* MMIO (the I/O APIC) is shared already, and cannot be private */
    { REQ_HC, 0xfec00000, 1, 0, 0 },
    { REQ_HC, 0xfec00000, 1, ENCRYPTED, HC_EINVAL },
    /* the last page of RAM and what follows it: refused whole */
    { REQ_HC, RAM_MB * MiB - 0x1000, 2, ENCRYPTED, HC_EINVAL },
    /* nowhere near memory */
    { REQ_HC, 0xfffff000, 0xffffffff, ENCRYPTED, HC_EINVAL },
    /* misaligned: KVM refuses it before any exit */
    { REQ_HC, 0x1200800, 1, ENCRYPTED, HC_EINVAL },
    /* a page still referenced for 3 tries (GMEM_KVM_MODEL_BUSY) */
    { REQ_HC, 0x1400000, 2, ENCRYPTED, 0 },
};

/* Wait until the guest is done, or the VM stopped on an error */
static void conv_vm_wait(ConvVm *vm, bool done)
{
    for (int i = 0; i < GUEST_TIMEOUT_S * 10; i++) {
        QDict *resp = qtest_qmp(vm->qts, "{ 'execute': 'query-status' }");
        const char *status = qdict_get_str(qdict_get_qdict(resp, "return"),
                                           "status");
        bool stopped = g_str_equal(status, "internal-error");

        qobject_unref(resp);
        if (done && qtest_readl(vm->qts, GMEM_GUEST_MAILBOX_GPA +
                                GMEM_GUEST_MB_GUEST_MAGIC) ==
            GMEM_GUEST_DONE_MAGIC) {
            g_assert_cmpuint(qtest_readl(vm->qts, GMEM_GUEST_MAILBOX_GPA +
                                         GMEM_GUEST_MB_STATUS), ==, 0);
            return;
        }
        if (stopped) {
            g_assert_false(done);
            return;
        }
        g_usleep(100 * 1000);
    }
    g_assert_not_reached();
}

static void check_requests(ConvVm *vm, const ConvRequest *req, int n)
{
    for (int i = 0; i < n; i++) {
        uint32_t result;

        g_assert(conv_vm_result(vm, i, &result));
        if (result != req[i].result) {
            g_printerr("request %d: 0x%x, expected 0x%x\n", i, result,
                       req[i].result);
        }
        g_assert_cmphex(result, ==, req[i].result);
    }
}

static void test_convert(void)
{
    ConvVm vm;
    g_autofree char *calls = NULL;
    QDict *b;

    if (!have_kvm()) {
        return;
    }
    if (!have_guest()) {
        return;
    }
    conv_vm_start(&vm, "0x1401000", "3", conv_requests,
                  ARRAY_SIZE(conv_requests));
    conv_vm_wait(&vm, true);
    check_requests(&vm, conv_requests, ARRAY_SIZE(conv_requests));

    /* QEMU's state: 64 - 8 + 4 + 8 KiB private, 4 conversions, 3 retries */
    b = conv_vm_backend(&vm);
    g_assert_cmpuint(qdict_get_uint(b, "private"), ==, 68 * KiB);
    g_assert_cmpuint(qdict_get_uint(b, "shared"), ==,
                     RAM_MB * MiB - 68 * KiB);
    g_assert_cmpuint(qdict_get_uint(b, "conversions"), ==, 4);
    g_assert_cmpuint(qdict_get_uint(b, "failures"), ==, 0);
    g_assert_cmpuint(qdict_get_uint(b, "retries"), ==, 3);
    qobject_unref(b);
    /* the requests QEMU refused: MMIO, past the end of RAM, no memory */
    g_assert_cmpuint(conv_vm_guest_errors(&vm), ==, 3);

    /* what reached the kernel, in order, at file offsets */
    calls = conv_vm_kernel_calls(&vm);
    g_assert_cmpstr(calls, ==,
        "offset=0x1200000 size=0x10000 attributes=0x8 flags=0x0 ret=0 "
        "error_offset=0x0\n"
        "offset=0x1201000 size=0x2000 attributes=0x0 flags=0x0 ret=0 "
        "error_offset=0x0\n"
        "offset=0x1300000 size=0x1000 attributes=0x8 flags=0x0 ret=0 "
        "error_offset=0x0\n"
        "offset=0x1400000 size=0x2000 attributes=0x8 flags=0x0 ret=-11 "
        "error_offset=0x1401000\n"
        "offset=0x1400000 size=0x2000 attributes=0x8 flags=0x0 ret=-11 "
        "error_offset=0x1401000\n"
        "offset=0x1400000 size=0x2000 attributes=0x8 flags=0x0 ret=-11 "
        "error_offset=0x1401000\n"
        "offset=0x1400000 size=0x2000 attributes=0x8 flags=0x0 ret=0 "
        "error_offset=0x0\n");
    conv_vm_end(&vm);
}

/*
 * Several vCPUs converting overlapping ranges at once.  The guest starts
 * its application processors (INIT-SIPI-SIPI, a real-mode trampoline,
 * flat 32-bit mode), and each of the STRESS_CPUS vCPUs makes its own
 * seeded series of KVM_HC_MAP_GPA_RANGE requests, both ways, over the
 * same window, which the KVM model turns into hypercall exits of that
 * vCPU.  Each vCPU's requests follow from the seed; the order in which
 * they meet does not, nor then the final state.  The model aborts if two
 * conversions of the guest_memfd ever run at once (QEMU holds the BQL and
 * the block's map_lock around them).  Afterwards QEMU answers, and its
 * state equals the model's: page by page over the window (a host read of
 * a private page fails), and in the counters of query-kvm-guest-memfd.
 * GMEM_STRESS_ROUNDS sets the number of requests per vCPU (make fuzz runs
 * more), GMEM_STRESS_SEED the seed.
 */
#define STRESS_CPUS     4
#define STRESS_GPA      0x1400000   /* clear of image, mailbox and data */
#define STRESS_PAGES    64
#define STRESS_ROUNDS   250
#define STRESS_SEED     0x5eed5eed

static uint32_t stress_env(const char *name, uint32_t dflt)
{
    const char *v = g_getenv(name);

    return v ? g_ascii_strtoull(v, NULL, 0) : dflt;
}

static void stress_writel(QTestState *qts, size_t field, uint32_t val)
{
    qtest_writel(qts, GMEM_GUEST_MAILBOX_GPA + GMEM_GUEST_MB_STRESS + field,
                 val);
}

static uint32_t stress_readl(QTestState *qts, size_t field)
{
    return qtest_readl(qts, GMEM_GUEST_MAILBOX_GPA + GMEM_GUEST_MB_STRESS +
                       field);
}

/* Can the host read the page at @gpa, that is, is it shared? */
static bool host_can_read(QTestState *qts, uint64_t gpa)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'pmemsave', 'arguments': { "
                           "'val': %" PRIu64 ", 'size': 4096, "
                           "'filename': '/dev/null' } }", gpa);
    bool ok = !qdict_haskey(rsp, "error");

    qobject_unref(rsp);
    return ok;
}

static bool have_inplace_kvm(void);

/*
 * With @data, the same on this host's own kernel (the kernel lab): the
 * vCPUs make real hypercalls, and QEMU's view is checked against the
 * kernel's by reading every page QEMU calls shared (a private one would
 * kill QEMU with SIGBUS), and against its own counters.
 */
static void test_convert_smp(const void *data)
{
    bool real = data;
    uint32_t rounds = stress_env("GMEM_STRESS_ROUNDS", STRESS_ROUNDS);
    uint32_t seed = stress_env("GMEM_STRESS_SEED", STRESS_SEED);
    g_autofree char *gpa = g_strdup_printf("%u", STRESS_GPA);
    g_autofree char *pages = g_strdup_printf("%u", STRESS_PAGES);
    g_autofree char *log = NULL;
    g_auto(GStrv) lines = NULL;
    bool shared[STRESS_PAGES];
    uint64_t shared_bytes, private_bytes;
    int nr_pages = 0, nr_private = 0, nr_files = 0;
    ConvVm vm = { 0 };
    QDict *rsp, *b;

    if (real ? !have_inplace_kvm() : !have_kvm()) {
        return;
    }
    if (!have_guest()) {
        return;
    }
    g_test_message("%u vCPUs, %u requests each, seed 0x%x", STRESS_CPUS,
                   rounds, seed);
    if (real) {
        kvm_vm_start(&vm, "", "-smp " stringify(STRESS_CPUS));
    } else {
        g_setenv("GMEM_KVM_MODEL_DUMP_GPA", gpa, true);
        g_setenv("GMEM_KVM_MODEL_DUMP_PAGES", pages, true);
        conv_vm_start_stopped(&vm, NULL, NULL,
                              "-smp " stringify(STRESS_CPUS));
        g_unsetenv("GMEM_KVM_MODEL_DUMP_GPA");
        g_unsetenv("GMEM_KVM_MODEL_DUMP_PAGES");
    }
    stress_writel(vm.qts, offsetof(GmemGuestStress, cpus), STRESS_CPUS);
    stress_writel(vm.qts, offsetof(GmemGuestStress, seed), seed);
    stress_writel(vm.qts, offsetof(GmemGuestStress, gpa), STRESS_GPA);
    stress_writel(vm.qts, offsetof(GmemGuestStress, pages), STRESS_PAGES);
    stress_writel(vm.qts, offsetof(GmemGuestStress, count), rounds);
    qtest_qmp_assert_success(vm.qts, "{ 'execute': 'cont' }");
    conv_vm_wait(&vm, true);

    /* every vCPU took part and made all its requests, which all worked */
    g_assert_cmpuint(stress_readl(vm.qts, offsetof(GmemGuestStress, started)),
                     ==, STRESS_CPUS);
    for (int i = 0; i < STRESS_CPUS; i++) {
        g_assert_cmpuint(stress_readl(vm.qts, offsetof(GmemGuestStress,
                                                       made[i])), ==, rounds);
        g_assert_cmpuint(stress_readl(vm.qts, offsetof(GmemGuestStress,
                                                       failed[i])), ==, 0);
    }

    /* QEMU runs on; its view: the window page by page, and the counters */
    rsp = qtest_qmp(vm.qts, "{ 'execute': 'query-status' }");
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(rsp, "return"), "status"),
                    ==, "running");
    qobject_unref(rsp);
    for (int i = 0; i < STRESS_PAGES; i++) {
        shared[i] = host_can_read(vm.qts, STRESS_GPA + i * 4096);
    }
    b = conv_vm_backend(&vm);
    shared_bytes = qdict_get_uint(b, "shared");
    private_bytes = qdict_get_uint(b, "private");
    g_assert_cmpuint(shared_bytes + private_bytes, ==, RAM_MB * MiB);
    g_assert_cmpuint(qdict_get_uint(b, "failures"), ==, 0);
    qobject_unref(b);
    g_assert_cmpuint(conv_vm_guest_errors(&vm), ==, 0);
    if (real) {
        /* QEMU read every page it calls shared, and is still there */
        for (int i = 0; i < STRESS_PAGES; i++) {
            nr_private += !shared[i];
        }
        qtest_qmp_assert_success(vm.qts, "{ 'execute': 'query-status' }");
        g_assert_cmpuint(private_bytes, ==, nr_private * 4096ULL);
        g_test_message("%" PRIu64 " KiB private, %d of %d pages of the "
                       "window", private_bytes / KiB, nr_private,
                       STRESS_PAGES);
        conv_vm_end(&vm);
        return;
    }
    qtest_quit(vm.qts);
    vm.qts = NULL;

    /* the model's, logged when QEMU exited */
    g_assert(g_file_get_contents(vm.model_log, &log, NULL, NULL));
    lines = g_strsplit(log, "\n", -1);
    for (int i = 0; lines[i]; i++) {
        unsigned long total, vcpus;
        uint64_t s, p, page;
        int private;

        if (sscanf(lines[i], "requests total=%lu vcpus=%lu", &total,
                   &vcpus) == 2) {
            g_assert_cmpuint(total, ==, (uint64_t)rounds * STRESS_CPUS);
            g_assert_cmpuint(vcpus, ==, STRESS_CPUS);
        } else if (sscanf(lines[i], "file shared=%" SCNu64 " private=%"
                          SCNu64, &s, &p) == 2) {
            g_assert_cmpuint(s * 4096, ==, shared_bytes);
            g_assert_cmpuint(p * 4096, ==, private_bytes);
            nr_files++;
        } else if (sscanf(lines[i], "page 0x%" SCNx64 " private=%d", &page,
                          &private) == 2) {
            g_assert_cmpuint(page, ==, STRESS_GPA + nr_pages * 4096);
            if (shared[nr_pages] == private) {
                g_printerr("page 0x%" PRIx64 ": QEMU says %s, the model "
                           "%s\n", page, shared[nr_pages] ? "shared" :
                           "private", private ? "private" : "shared");
            }
            g_assert_cmpint(shared[nr_pages], !=, private);
            nr_private += private;
            nr_pages++;
        }
    }
    g_assert_cmpint(nr_files, ==, 1);
    g_assert_cmpint(nr_pages, ==, STRESS_PAGES);
    g_test_message("%" PRIu64 " KiB private, %d of %d pages of the window",
                   private_bytes / KiB, nr_private, STRESS_PAGES);
    conv_vm_end(&vm);
}

/*
 * Conversions the guest asks for and QEMU refuses are counted
 * (guest-errors) and logged as guest errors, five lines a second at most:
 * of twelve bad requests made at once, five are logged; the first of
 * twelve more, over a second later, says first how many were left out.
 */
#define BAD_REQUESTS    12

static int count_lines(const char *path, const char *what)
{
    g_autofree char *text = NULL;
    int n = 0;

    g_assert(g_file_get_contents(path, &text, NULL, NULL));
    for (const char *p = text; (p = strstr(p, what)); p++) {
        n++;
    }
    return n;
}

static void bad_requests_wait(ConvVm *vm)
{
    gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
    uint32_t result;

    for (int i = 0; i < BAD_REQUESTS; i++) {
        while (!conv_vm_result(vm, i, &result)) {
            g_assert(g_get_monotonic_time() < deadline);
            g_usleep(10 * 1000);
        }
        g_assert_cmphex(result, ==, HC_EINVAL);
    }
}

static void test_convert_guest_errors(void)
{
    const ConvRequest bad = { REQ_HC, 0xfec00000, 1, ENCRYPTED, HC_EINVAL };
    ConvRequest req[BAD_REQUESTS];
    g_autofree char *dir = NULL;
    g_autofree char *log = NULL;
    g_autofree char *args = NULL;
    uint64_t mb = GMEM_GUEST_MAILBOX_GPA;
    ConvVm vm;

    if (!have_kvm()) {
        return;
    }
    if (!have_guest()) {
        return;
    }
    dir = test_dir_new();
    log = g_build_filename(dir, "qemu.log", NULL);
    args = g_strdup_printf("-append 'mode=halt mb=1 serve=1' "
                           "-d guest_errors -D %s", log);
    for (int i = 0; i < BAD_REQUESTS; i++) {
        req[i] = bad;
    }
    conv_vm_start_stopped(&vm, NULL, NULL, args);
    conv_vm_requests(&vm, req, BAD_REQUESTS);
    bad_requests_wait(&vm);
    g_assert_cmpuint(conv_vm_guest_errors(&vm), ==, BAD_REQUESTS);
    g_assert_cmpint(count_lines(log, "cannot convert 0xfec00000+0x1000 to "
                                "private"), ==, 5);
    g_assert_cmpint(count_lines(log, "not logged"), ==, 0);

    /* the same again, in the next second */
    g_usleep(1100 * 1000);
    for (int i = 0; i < BAD_REQUESTS; i++) {
        qtest_writel(vm.qts, mb + GMEM_GUEST_MB_REQUESTS +
                     i * sizeof(GmemGuestRequest) +
                     offsetof(GmemGuestRequest, done), 0);
    }
    qtest_writel(vm.qts, mb + GMEM_GUEST_MB_SERVE_CMD, GMEM_GUEST_SERVE_GO);
    /* done when the guest clears the command: no STOP to overwrite then */
    while (qtest_readl(vm.qts, mb + GMEM_GUEST_MB_SERVE_CMD)) {
        g_usleep(10 * 1000);
    }
    bad_requests_wait(&vm);
    g_assert_cmpuint(conv_vm_guest_errors(&vm), ==, 2 * BAD_REQUESTS);
    g_assert_cmpint(count_lines(log, "cannot convert 0xfec00000+0x1000 to "
                                "private"), ==, 10);
    g_assert_cmpint(count_lines(log, "\n7 more conversions the guest asked "
                                "for were refused, not logged\n"), ==, 1);

    qtest_writel(vm.qts, mb + GMEM_GUEST_MB_SERVE_CMD, GMEM_GUEST_SERVE_STOP);
    conv_vm_wait(&vm, true);
    conv_vm_end(&vm);
    test_dir_remove(dir);
}

/*
 * A page that stays referenced: the hypercall fails after the bounded
 * retries and the guest reads an error; a private memory fault on it
 * cannot be resolved, so the VM stops with an internal error.  QEMU
 * stays up and its state stays exact.
 */
static const ConvRequest conv_busy_requests[] = {
    { REQ_HC, 0x1400000, 2, ENCRYPTED, HC_EFAULT },
    { REQ_HC, 0x1500000, 1, ENCRYPTED, 0 },
    { REQ_FAULT, 0x1401000, 0x1000, FAULT_PRIVATE, 0 },
};

/*
 * Wait until @n conversions have failed after their retries, asking QEMU
 * all along: whether it answered while one was retrying, with the BQL
 * free.  Each failed conversion retried KVM_GMEM_CONVERT_TRIES - 1 times.
 */
static bool conv_vm_answered_while_busy(ConvVm *vm, uint64_t n)
{
    g_autoptr(GTimer) timer = g_timer_new();
    bool answered = false;

    while (g_timer_elapsed(timer, NULL) < GUEST_TIMEOUT_S) {
        QDict *b = conv_vm_backend(vm);
        uint64_t failures = qdict_get_uint(b, "failures");
        uint64_t retries = qdict_get_uint(b, "retries");

        qobject_unref(b);
        if (failures >= n) {
            return answered;
        }
        answered |= retries > failures * 7;
    }
    g_assert_not_reached();
}

static void test_convert_busy(void)
{
    ConvVm vm;
    uint32_t result;
    QDict *b;

    if (!have_kvm()) {
        return;
    }
    if (!have_guest()) {
        return;
    }
    conv_vm_start(&vm, "0x1401000", NULL, conv_busy_requests,
                  ARRAY_SIZE(conv_busy_requests));
    /* a vCPU waiting for busy pages lets go of the BQL */
    g_assert_true(conv_vm_answered_while_busy(&vm, 2));
    conv_vm_wait(&vm, false);
    check_requests(&vm, conv_busy_requests, 2);
    g_assert_false(conv_vm_result(&vm, 2, &result));

    b = conv_vm_backend(&vm);
    g_assert_cmpuint(qdict_get_uint(b, "private"), ==, 4 * KiB);
    g_assert_cmpuint(qdict_get_uint(b, "conversions"), ==, 1);
    g_assert_cmpuint(qdict_get_uint(b, "failures"), ==, 2);
    g_assert_cmpuint(qdict_get_uint(b, "retries"), ==, 14);
    qobject_unref(b);
    /* the hypercall and the memory fault */
    g_assert_cmpuint(conv_vm_guest_errors(&vm), ==, 2);
    conv_vm_end(&vm);
}

/*
 * DMA in flight over memory the guest converts to private.  A virtio-blk
 * whose disk (null-co) answers after a latency holds its map of the
 * guest's buffer (address_space_map()) until the read completes.  A
 * software-protected VM on the KVM model (v8), whose guest converts on
 * request (serve=1).  While the buffer is mapped, converting it to private
 * fails, and the guest reads an error; QEMU answers, the read completes
 * into shared memory, and then the same conversion succeeds.  Without the
 * hold, the conversion succeeds under the device, on the model and on a
 * real in-place kernel alike (/guest-memfd/kvm/convert-mapped, run by the
 * kernel lab), and this test fails.  It shows the refusal, not the
 * signal a later copy into the page would raise: null-co writes its
 * zeros when the request starts, before its latency, so no copy is left
 * to fault.
 */
#define BLK_HDR_GPA     0x1600000
#define BLK_LATENCY_S   4

/*
 * Have a serve=1 guest make the requests in its mailbox: write GO, wait
 * until the guest is done.  Returns how long that took, in seconds.
 */
static double conv_serve_go(QTestState *qts)
{
    uint64_t cmd = GMEM_GUEST_MAILBOX_GPA + GMEM_GUEST_MB_SERVE_CMD;
    gint64 t0 = g_get_monotonic_time();

    qtest_writel(qts, cmd, GMEM_GUEST_SERVE_GO);
    while (qtest_readl(qts, cmd)) {
        g_assert(g_get_monotonic_time() - t0 <
                 GUEST_TIMEOUT_S * G_USEC_PER_SEC);
        g_usleep(2000);
    }
    return (g_get_monotonic_time() - t0) / 1e6;
}

static void conv_serve(QTestState *qts, const ConvRequest *req,
                       uint32_t *result)
{
    uint64_t mb = GMEM_GUEST_MAILBOX_GPA;
    uint64_t r = mb + GMEM_GUEST_MB_REQUESTS;

    qtest_writel(qts, r + offsetof(GmemGuestRequest, kind), req->kind);
    qtest_writel(qts, r + offsetof(GmemGuestRequest, gpa), req->gpa);
    qtest_writel(qts, r + offsetof(GmemGuestRequest, size), req->size);
    qtest_writel(qts, r + offsetof(GmemGuestRequest, attributes),
                 req->attributes);
    qtest_writel(qts, r + offsetof(GmemGuestRequest, done), 0);
    qtest_writel(qts, mb + GMEM_GUEST_MB_NR_REQUESTS, 1);
    conv_serve_go(qts);
    g_assert_cmpint(qtest_readl(qts, r + offsetof(GmemGuestRequest, done)),
                    ==, 1);
    *result = qtest_readl(qts, r + offsetof(GmemGuestRequest, result));
}

/*
 * Wait until a serve=1 guest is in its serve loop: past the requests it
 * makes when it starts, so that it makes those of conv_serve() once
 */
static void conv_serve_ready(QTestState *qts)
{
    qtest_writel(qts, GMEM_GUEST_MAILBOX_GPA + GMEM_GUEST_MB_NR_REQUESTS, 0);
    conv_serve_go(qts);
}

/*
 * Reset the legacy virtio-blk at I/O port @io, and have it read @len
 * bytes of sector 0 into @buf; returns the address of the used ring
 */
static uint64_t virtio_blk_legacy_read(QTestState *qts, uint16_t io,
                                       uint64_t buf, uint32_t len)
{
    uint64_t ring = RING_GPA, avail, used;
    uint64_t hdr = BLK_HDR_GPA, status = BLK_HDR_GPA + 0x100;

    avail = virtio_legacy_queue(qts, io, ring, true, &used);
    /* VIRTIO_BLK_T_IN, sector 0 */
    qtest_writel(qts, hdr, 0);
    qtest_writel(qts, hdr + 4, 0);
    qtest_writeq(qts, hdr + 8, 0);
    qtest_writeb(qts, status, 0xff);
    qtest_writeq(qts, ring, hdr);                       /* desc[0] */
    qtest_writel(qts, ring + 8, 16);
    qtest_writew(qts, ring + 12, VRING_DESC_F_NEXT);
    qtest_writew(qts, ring + 14, 1);
    qtest_writeq(qts, ring + 16, buf);                  /* desc[1] */
    qtest_writel(qts, ring + 24, len);
    qtest_writew(qts, ring + 28, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT);
    qtest_writew(qts, ring + 30, 2);
    qtest_writeq(qts, ring + 32, status);               /* desc[2] */
    qtest_writel(qts, ring + 40, 1);
    qtest_writew(qts, ring + 44, VRING_DESC_F_WRITE);
    virtio_legacy_kick(qts, io, ring, avail);
    return used;
}

static void test_convert_mapped(const void *data)
{
    static const ConvRequest to_private = {
        REQ_HC, BUF_GPA, 1, ENCRYPTED, 0
    };
    bool real = data;
    g_autofree char *preload = g_canonicalize_filename(kvm_model(), NULL);
    g_autofree char *dir = NULL;
    g_autofree char *console = NULL;
    g_autofree char *extra = NULL;
    uint32_t result;
    uint64_t used;
    uint16_t io;
    gint64 deadline, submitted;
    QTestState *qts;
    QDict *b, *rsp;

    if (real ? !have_inplace_kvm() : !have_kvm()) {
        return;
    }
    if (!have_guest()) {
        return;
    }
    dir = test_dir_new();
    console = g_build_filename(dir, "console", NULL);
    extra = g_strdup_printf("-object sw-protected-guest,id=swp0 "
                            "-kernel %s -append 'mode=halt mb=1 serve=1%s' "
                            "-chardev file,id=dbg,path=%s "
                            "-device isa-debugcon,iobase=0xe9,chardev=dbg "
                            "-blockdev driver=null-co,node-name=disk0,"
                            "size=1048576,read-zeroes=on,"
                            "latency-ns=%" PRIu64 " "
                            /* a confidential VM disables these */
                            "-device virtio-blk-pci,id=blk0,drive=disk0,"
                            "disable-modern=on,disable-legacy=off,"
                            "iommu_platform=off,addr=04.0",
                            guest_elf(), real ? " hc=1" : "", console,
                            (uint64_t)BLK_LATENCY_S * 1000000000);
    if (!real) {
        g_setenv("LD_PRELOAD", preload, true);
        g_setenv("GMEM_KVM_MODEL_INPLACE", "v8", true);
        g_setenv("GMEM_KVM_MODEL_SWPROT", "1", true);
        g_setenv("GMEM_KVM_MODEL_REQUESTS", "1", true);
    }
    qts = start_vm("pc,confidential-guest-support=swp0", "", extra);
    g_unsetenv("LD_PRELOAD");
    g_unsetenv("GMEM_KVM_MODEL_INPLACE");
    g_unsetenv("GMEM_KVM_MODEL_SWPROT");
    g_unsetenv("GMEM_KVM_MODEL_REQUESTS");

    /* the guest is up, past the firmware that set up PCI */
    deadline = g_get_monotonic_time() + GUEST_TIMEOUT_S * G_USEC_PER_SEC;
    for (;;) {
        g_autofree char *text = read_console(console);

        if (strstr(text, "gmem-guest: mode=halt")) {
            break;
        }
        g_assert(g_get_monotonic_time() < deadline);
        g_usleep(50 * 1000);
    }
    conv_serve_ready(qts);
    io = pci_cfg_readl(qts, VIRTIO_DEVFN, PCI_BASE_ADDRESS_0) &
         PCI_BASE_ADDRESS_IO_MASK;
    g_assert(io);
    pci_cfg_writel(qts, VIRTIO_DEVFN, PCI_COMMAND,
                   PCI_COMMAND_IO | PCI_COMMAND_MASTER);
    qtest_memset(qts, BUF_GPA, 0x5a, 512);

    /* the device maps the buffer; the disk answers seconds later */
    submitted = g_get_monotonic_time();
    used = virtio_blk_legacy_read(qts, io, BUF_GPA, 512);

    /* the guest converts the mapped buffer: busy, an error to the guest */
    conv_serve(qts, &to_private, &result);
    g_assert_cmpint(g_get_monotonic_time() - submitted, <,
                    BLK_LATENCY_S * G_USEC_PER_SEC);
    g_assert_cmpint(qtest_readw(qts, used + 2), ==, 0);
    g_assert_cmphex(result, ==, HC_EFAULT);
    b = conv_vm_backend_of(qts);
    g_assert_cmpuint(qdict_get_uint(b, "private"), ==, 0);
    g_assert_cmpuint(qdict_get_uint(b, "failures"), ==, 1);
    qobject_unref(b);
    qtest_qmp_assert_success(qts, "{ 'execute': 'query-status' }");

    /* the read completes into shared memory, and the device lets go */
    deadline = g_get_monotonic_time() + 4 * BLK_LATENCY_S * G_USEC_PER_SEC;
    while (qtest_readw(qts, used + 2) != 1) {
        g_assert(g_get_monotonic_time() < deadline);
        g_usleep(20 * 1000);
    }
    g_assert_cmphex(qtest_readb(qts, BLK_HDR_GPA + 0x100), ==, 0);
    g_assert_cmphex(qtest_readb(qts, BUF_GPA), ==, 0);
    g_assert_cmphex(qtest_readb(qts, BUF_GPA + 511), ==, 0);

    /* now the same conversion goes through */
    conv_serve(qts, &to_private, &result);
    g_assert_cmphex(result, ==, 0);
    b = conv_vm_backend_of(qts);
    g_assert_cmpuint(qdict_get_uint(b, "private"), ==, 4 * KiB);
    qobject_unref(b);
    if (real) {
        /* a real private page now: the host cannot read it, QEMU lives */
        rsp = qtest_qmp(qts, "{ 'execute': 'pmemsave', 'arguments': { "
                        "'val': %d, 'size': 512, 'filename': '/dev/null' } }",
                        BUF_GPA);
        g_assert(qdict_haskey(rsp, "error"));
        qobject_unref(rsp);
        qtest_qmp_assert_success(qts, "{ 'execute': 'query-status' }");
    }

    qtest_writel(qts, GMEM_GUEST_MAILBOX_GPA + GMEM_GUEST_MB_SERVE_CMD,
                 GMEM_GUEST_SERVE_STOP);
    qtest_quit(qts);
    test_dir_remove(dir);
}

/*
 * The same conversions on this host's own kernel, without the model: a
 * software-protected VM whose guest makes real KVM_HC_MAP_GPA_RANGE
 * hypercalls (hc=1), carried out by QEMU through the kernel's own
 * guest_memfd attribute ioctl, with real private pages behind QEMU's
 * mapping.  They need a kernel with the in-place conversion series and
 * KVM_X86_SW_PROTECTED_VM (the kernel lab runs them on one); elsewhere
 * they skip, saying what the kernel lacks ("the kernel lacks ..."), as
 * the test found it from /dev/kvm itself, so that a QEMU that wrongly
 * refuses such a kernel fails here instead of skipping.
 */
static bool have_inplace_kvm(void)
{
    struct kvm_create_guest_memfd g = {
        .size = 4096,
        .flags = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED,
    };
    struct kvm_memory_attributes2 a = {
        .size = 4096, .attributes = KVM_MEMORY_ATTRIBUTE_PRIVATE,
    };
    const char *why = NULL;
    int kvm, vm = -1, gmem = -1;
    long types;

    if (!have_kvm()) {
        return false;
    }
    kvm = open("/dev/kvm", O_RDWR);
    g_assert(kvm >= 0);
    types = ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_VM_TYPES);
    if (types > 0 && (types & (1 << KVM_X86_SW_PROTECTED_VM))) {
        vm = ioctl(kvm, KVM_CREATE_VM, KVM_X86_SW_PROTECTED_VM);
    }
    if (vm >= 0) {
        gmem = ioctl(vm, KVM_CREATE_GUEST_MEMFD, &g);
    }
    if (types <= 0 || !(types & (1 << KVM_X86_SW_PROTECTED_VM))) {
        why = "the kernel lacks KVM_X86_SW_PROTECTED_VM (KVM_CAP_VM_TYPES); "
              "the kernel lab runs this test";
    } else if (vm < 0) {
        why = "the kernel lacks a working KVM_X86_SW_PROTECTED_VM "
              "(KVM_CREATE_VM failed)";
    } else if (gmem < 0) {
        why = "the kernel lacks a mappable, shared guest_memfd for a "
              "software-protected VM";
    } else if (ioctl(gmem, KVM_SET_MEMORY_ATTRIBUTES2, &a)) {
        why = "the kernel lacks in-place conversion of guest_memfd memory "
              "(KVM_SET_MEMORY_ATTRIBUTES2 on a guest_memfd); the kernel lab "
              "runs this test";
    }
    if (gmem >= 0) {
        close(gmem);
    }
    if (vm >= 0) {
        close(vm);
    }
    close(kvm);
    if (why) {
        g_test_skip(why);
        return false;
    }
    return true;
}

static const ConvRequest kvm_conv_requests[] = {
    /* 64 KiB at 18 MiB to private, then 8 KiB of it back to shared */
    { REQ_HC, 0x1200000, 16, ENCRYPTED, 0 },
    { REQ_HC, 0x1201000, 2, 0, 0 },
    /* MMIO (the I/O APIC) is shared already, and cannot be private */
    { REQ_HC, 0xfec00000, 1, 0, 0 },
    { REQ_HC, 0xfec00000, 1, ENCRYPTED, HC_EINVAL },
    /* the last page of RAM and what follows it: refused whole */
    { REQ_HC, RAM_MB * MiB - 0x1000, 2, ENCRYPTED, HC_EINVAL },
    /* nowhere near memory */
    { REQ_HC, 0xfffff000, 0xffffffff, ENCRYPTED, HC_EINVAL },
    /* misaligned: KVM refuses it before any exit */
    { REQ_HC, 0x1200800, 1, ENCRYPTED, HC_EINVAL },
    /* a memory fault is the model's: the guest cannot ask for one */
    { REQ_FAULT, 0x1300000, 0x1000, FAULT_PRIVATE,
      GMEM_GUEST_RESULT_UNSUPPORTED },
};

static void test_kvm_convert(const void *data)
{
    g_autofree char *conv = NULL;
    g_autofree char *model_conv = NULL;
    g_autofree char *out = NULL;
    g_autofree uint32_t *pattern = g_new(uint32_t, 2048);
    g_autofree uint32_t *back = g_new(uint32_t, 2048);
    ConvVm vm = { 0 };
    QDict *resp, *info, *b;

    if (!have_inplace_kvm()) {
        return;
    }
    if (!have_guest()) {
        return;
    }
    kvm_vm_start(&vm, "", "");

    /* what the kernel offers, as QEMU probed it: what the model says v8 is */
    resp = qtest_qmp(vm.qts, "{ 'execute': 'query-kvm-guest-memfd' }");
    info = qdict_get_qdict(resp, "return");
    g_assert_cmpstr(qdict_get_str(info, "mode"), ==, "in-place");
    g_assert_cmpint(qdict_get_int(info, "guest-memfd-memory-attributes"),
                    ==, KVM_MEMORY_ATTRIBUTE_PRIVATE);
    conv = conversions_str(info);
    qobject_unref(resp);
    info = query_gmem_caps(swprot_v8, SWPROT_ARGS);
    model_conv = conversions_str(info);
    qobject_unref(info);
    g_assert_cmpstr(conv, ==, model_conv);

    /* data the host wrote where the guest converts, to private and back */
    for (int i = 0; i < 2048; i++) {
        pattern[i] = gmem_guest_pattern(0x1201000 + 4 * i, 0x600d);
    }
    qtest_memwrite(vm.qts, 0x1201000, pattern, 8 * KiB);

    conv_vm_requests(&vm, kvm_conv_requests, ARRAY_SIZE(kvm_conv_requests));
    conv_vm_wait(&vm, true);
    check_requests(&vm, kvm_conv_requests, ARRAY_SIZE(kvm_conv_requests));

    /* QEMU's state: 64 - 8 KiB private, two conversions */
    b = conv_vm_backend(&vm);
    g_assert_cmpuint(qdict_get_uint(b, "private"), ==, 56 * KiB);
    g_assert_cmpuint(qdict_get_uint(b, "shared"), ==,
                     RAM_MB * MiB - 56 * KiB);
    g_assert_cmpuint(qdict_get_uint(b, "conversions"), ==, 2);
    g_assert_cmpuint(qdict_get_uint(b, "failures"), ==, 0);
    qobject_unref(b);

    /*
     * A software-protected VM's memory keeps its contents through both
     * conversions (what QEMU reports as "preserve inherent")
     */
    qtest_memread(vm.qts, 0x1201000, back, 8 * KiB);
    g_assert(memcmp(back, pattern, 8 * KiB) == 0);

    /* the host paths meet real private pages: they fail, QEMU lives */
    out = qtest_hmp(vm.qts, "xp /4x 0x1200000");
    g_assert(strstr(out, "Cannot access memory"));
    resp = qtest_qmp(vm.qts, "{ 'execute': 'pmemsave', 'arguments': { "
                     "'val': %d, 'size': 4096, 'filename': '/dev/null' } }",
                     0x1203000);
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(resp, "error"), "desc"), ==,
                    "guest memory at 0x1203000+0x400 cannot be read by the "
                    "host");
    qobject_unref(resp);
    qtest_readl(vm.qts, 0x1200000);
    qtest_writel(vm.qts, 0x120f000, 0x12345678);
    qtest_qmp_assert_success(vm.qts, "{ 'execute': 'query-status' }");

    conv_vm_end(&vm);
}

/*
 * A page that a device holds (a long-term pin, as DMA takes it) cannot
 * become private: the real kernel answers EAGAIN, QEMU retries
 * (KVM_GMEM_CONVERT_TRIES in all), then fails the guest's request and
 * counts it; once the pin is gone, the same request goes through.  The
 * pin is the kernel's own (CONFIG_GUP_TEST), taken inside QEMU by
 * guest-memfd-pin.so, which changes nothing else.
 */
#define PIN_GPA         0x1300000

static const char *pin_lib(void)
{
    const char *lib = g_getenv("GMEM_PIN_LIB");

    return lib ? lib : "tests/qtest/guest-memfd-pin.so";
}

static void pin_command(const char *ctl, const char *cmd)
{
    g_autofree char *ack = g_strdup_printf("%s.ack", ctl);
    g_autofree char *want = g_strdup_printf("%s 0\n", cmd);
    gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
    char *text = NULL;

    unlink(ack);
    g_assert(g_file_set_contents(ctl, cmd, -1, NULL));
    while (!g_file_get_contents(ack, &text, NULL, NULL)) {
        g_assert(g_get_monotonic_time() < deadline);
        g_usleep(10 * 1000);
    }
    g_assert_cmpstr(text, ==, want);
    g_free(text);
}

static void test_kvm_convert_pinned(void)
{
    static const ConvRequest to_private = {
        REQ_HC, PIN_GPA, 1, ENCRYPTED, 0
    };
    g_autofree char *preload = g_canonicalize_filename(pin_lib(), NULL);
    g_autofree char *dir = NULL;
    g_autofree char *ctl = NULL;
    g_autofree char *ack = NULL;
    g_autofree char *gpa = g_strdup_printf("0x%x", PIN_GPA);
    ConvVm vm;
    QTestState *qts;
    uint32_t result;
    QDict *b;
    int gup;

    if (!have_inplace_kvm()) {
        return;
    }
    if (!have_guest()) {
        return;
    }
    gup = open("/sys/kernel/debug/gup_test", O_RDWR);
    if (gup < 0) {
        g_test_skip("the kernel lacks /sys/kernel/debug/gup_test to pin a "
                    "page with (CONFIG_GUP_TEST, debugfs mounted)");
        return;
    }
    close(gup);
    dir = test_dir_new();
    ctl = g_build_filename(dir, "pin", NULL);
    ack = g_strdup_printf("%s.ack", ctl);
    g_setenv("LD_PRELOAD", preload, true);
    g_setenv("GMEM_PIN_GPA", gpa, true);
    g_setenv("GMEM_PIN_CTL", ctl, true);
    kvm_vm_start(&vm, " serve=1", "");
    qts = vm.qts;
    g_unsetenv("LD_PRELOAD");
    g_unsetenv("GMEM_PIN_GPA");
    g_unsetenv("GMEM_PIN_CTL");
    qtest_qmp_assert_success(qts, "{ 'execute': 'cont' }");
    conv_serve_ready(qts);

    /* pinned: every try meets EAGAIN, and the guest reads an error */
    pin_command(ctl, "pin");
    conv_serve(qts, &to_private, &result);
    g_assert_cmphex(result, ==, HC_EFAULT);
    b = conv_vm_backend_of(qts);
    g_assert_cmpuint(qdict_get_uint(b, "private"), ==, 0);
    g_assert_cmpuint(qdict_get_uint(b, "failures"), ==, 1);
    /* KVM_GMEM_CONVERT_TRIES - 1 */
    g_assert_cmpuint(qdict_get_uint(b, "retries"), ==, 7);
    qobject_unref(b);
    /* still shared, and QEMU reads it */
    qtest_writel(qts, PIN_GPA, 0x600dcafe);
    g_assert_cmphex(qtest_readl(qts, PIN_GPA), ==, 0x600dcafe);

    /* unpinned: the same request goes through at once */
    pin_command(ctl, "unpin");
    conv_serve(qts, &to_private, &result);
    g_assert_cmphex(result, ==, 0);
    b = conv_vm_backend_of(qts);
    g_assert_cmpuint(qdict_get_uint(b, "private"), ==, 4 * KiB);
    g_assert_cmpuint(qdict_get_uint(b, "conversions"), ==, 1);
    g_assert_cmpuint(qdict_get_uint(b, "retries"), ==, 7);
    qobject_unref(b);

    qtest_writel(qts, GMEM_GUEST_MAILBOX_GPA + GMEM_GUEST_MB_SERVE_CMD,
                 GMEM_GUEST_SERVE_STOP);
    conv_vm_end(&vm);
    test_dir_remove(dir);
}

/*
 * The rate of conversions a guest gets through QEMU, against a plain loop
 * of the same ioctl on the same kernel (the most a VMM could reach), in
 * alternating pairs, for 4 KiB and 2 MiB ranges.  A figure for the
 * kernel lab's report, not a pass/fail threshold: it asserts only that
 * every conversion went through and was counted.
 */
#define RATE_GPA        0x1200000   /* 2 MiB aligned */
#define RATE_PAIRS      7
#define RATE_RUN_S      0.4

static double now_s(void)
{
    return g_get_monotonic_time() / 1e6;
}

/* @n conversions of @size bytes, alternately private and shared */
static double raw_rate(int gmem, uint64_t size, uint64_t n)
{
    double t0 = now_s();

    for (uint64_t i = 0; i < n; i++) {
        struct kvm_memory_attributes2 a = {
            .offset = 0, .size = size,
            .attributes = i % 2 ? 0 : KVM_MEMORY_ATTRIBUTE_PRIVATE,
        };

        g_assert_cmpint(ioctl(gmem, KVM_SET_MEMORY_ATTRIBUTES2, &a), ==, 0);
    }
    return n / (now_s() - t0);
}

/* The guest converts @size bytes at RATE_GPA there and back @rounds times */
static double qemu_rate(QTestState *qts, uint64_t size, uint32_t rounds)
{
    static uint64_t total;
    uint64_t mb = GMEM_GUEST_MAILBOX_GPA;
    uint64_t r = mb + GMEM_GUEST_MB_REQUESTS;
    double t;
    QDict *b;

    for (int i = 0; i < 2; i++) {
        uint64_t ri = r + i * sizeof(GmemGuestRequest);

        qtest_writel(qts, ri + offsetof(GmemGuestRequest, kind), REQ_HC);
        qtest_writel(qts, ri + offsetof(GmemGuestRequest, gpa), RATE_GPA);
        qtest_writel(qts, ri + offsetof(GmemGuestRequest, size),
                     size / 4096);
        qtest_writel(qts, ri + offsetof(GmemGuestRequest, attributes),
                     i ? 0 : ENCRYPTED);
        qtest_writel(qts, ri + offsetof(GmemGuestRequest, result), ~0u);
    }
    qtest_writel(qts, mb + GMEM_GUEST_MB_NR_REQUESTS, 2);
    qtest_writel(qts, mb + GMEM_GUEST_MB_REPEAT, rounds);
    t = conv_serve_go(qts);
    g_assert_cmphex(qtest_readl(qts, r + offsetof(GmemGuestRequest, result)),
                    ==, 0);
    g_assert_cmphex(qtest_readl(qts, r + sizeof(GmemGuestRequest) +
                                offsetof(GmemGuestRequest, result)), ==, 0);
    total += 2 * rounds;
    b = conv_vm_backend_of(qts);
    g_assert_cmpuint(qdict_get_uint(b, "conversions"), ==, total);
    g_assert_cmpuint(qdict_get_uint(b, "private"), ==, 0);
    qobject_unref(b);
    return 2 * rounds / t;
}

/*
 * The same requests from a minimal guest of the test's own: a
 * software-protected VM whose 4 MiB are one guest_memfd bound to a memory
 * slot, and a vCPU in real mode that makes KVM_HC_MAP_GPA_RANGE hypercalls
 * in a loop, served by a plain loop of KVM_RUN and the attribute ioctl:
 * what QEMU does for a guest's request, without QEMU.
 */
#define RAW_VM_SIZE     (4 * MiB)
#define RAW_VM_CODE     0x1000
#define RAW_VM_RANGE    0x200000

typedef struct RawVm {
    int vm, vcpu, gmem;
    struct kvm_run *run;
    size_t run_size;
    uint8_t *mem;
} RawVm;

static bool host_is_amd(void)
{
    uint32_t a = 0, b, c, d;

    __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "=c"(c), "=d"(d));
    return b == 0x68747541u && d == 0x69746e65u && c == 0x444d4163u;
}

static void raw_vm_init(RawVm *r, int kvm, uint32_t pages)
{
    struct kvm_create_guest_memfd g = {
        .size = RAW_VM_SIZE,
        .flags = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED,
    };
    struct kvm_enable_cap cap = {
        .cap = KVM_CAP_EXIT_HYPERCALL,
        .args[0] = 1 << KVM_HC_MAP_GPA_RANGE,
    };
    struct kvm_userspace_memory_region2 slot = {
        .flags = KVM_MEM_GUEST_MEMFD, .memory_size = RAW_VM_SIZE,
    };
    struct kvm_sregs sregs;
    struct kvm_regs regs = { .rip = RAW_VM_CODE, .rflags = 2 };
    /* real mode: mov eax/ebx/ecx/edx (0x66 prefix), vmmcall, twice; jmp */
    uint8_t code[] = {
        0x66, 0xb8, 12, 0, 0, 0,
        0x66, 0xbb, 0, 0, RAW_VM_RANGE >> 16, 0,
        0x66, 0xb9, pages, pages >> 8, 0, 0,
        0x66, 0xba, KVM_MAP_GPA_RANGE_ENCRYPTED, 0, 0, 0,
        0x0f, 0x01, 0xd9,
        0x66, 0xb8, 12, 0, 0, 0,
        0x66, 0xbb, 0, 0, RAW_VM_RANGE >> 16, 0,
        0x66, 0xb9, pages, pages >> 8, 0, 0,
        0x66, 0x31, 0xd2,
        0x0f, 0x01, 0xd9,
        0xeb, 0xcb,
    };

    if (!host_is_amd()) {
        /* vmcall */
        code[26] = code[50] = 0xc1;
    }
    r->vm = ioctl(kvm, KVM_CREATE_VM, KVM_X86_SW_PROTECTED_VM);
    g_assert(r->vm >= 0);
    g_assert_cmpint(ioctl(r->vm, KVM_ENABLE_CAP, &cap), ==, 0);
    r->gmem = ioctl(r->vm, KVM_CREATE_GUEST_MEMFD, &g);
    g_assert(r->gmem >= 0);
    r->mem = mmap(NULL, RAW_VM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
                  r->gmem, 0);
    g_assert(r->mem != MAP_FAILED);
    memset(r->mem, 0x5a, RAW_VM_SIZE);
    memcpy(r->mem + RAW_VM_CODE, code, sizeof(code));
    slot.userspace_addr = (uintptr_t)r->mem;
    slot.guest_memfd = r->gmem;
    g_assert_cmpint(ioctl(r->vm, KVM_SET_USER_MEMORY_REGION2, &slot), ==, 0);

    r->vcpu = ioctl(r->vm, KVM_CREATE_VCPU, 0);
    g_assert(r->vcpu >= 0);
    r->run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    r->run = mmap(NULL, r->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                  r->vcpu, 0);
    g_assert(r->run != MAP_FAILED);
    g_assert_cmpint(ioctl(r->vcpu, KVM_GET_SREGS, &sregs), ==, 0);
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    g_assert_cmpint(ioctl(r->vcpu, KVM_SET_SREGS, &sregs), ==, 0);
    g_assert_cmpint(ioctl(r->vcpu, KVM_SET_REGS, &regs), ==, 0);
}

static void raw_vm_destroy(RawVm *r)
{
    munmap(r->run, r->run_size);
    close(r->vcpu);
    munmap(r->mem, RAW_VM_SIZE);
    close(r->gmem);
    close(r->vm);
}

/*
 * @n requests of the raw VM's guest, served; with @prefault, each followed
 * by KVM_PRE_FAULT_MEMORY of the range, as QEMU does
 */
static double raw_vm_rate(RawVm *r, uint64_t n, bool prefault)
{
    double t0 = now_s();

    for (uint64_t i = 0; i < n; i++) {
        struct kvm_memory_attributes2 a = { 0 };
        int ret;

        do {
            ret = ioctl(r->vcpu, KVM_RUN, 0);
        } while (ret < 0 && errno == EINTR);
        g_assert_cmpint(ret, ==, 0);
        g_assert_cmpint(r->run->exit_reason, ==, KVM_EXIT_HYPERCALL);
        g_assert_cmpint(r->run->hypercall.nr, ==, KVM_HC_MAP_GPA_RANGE);
        a.offset = r->run->hypercall.args[0];
        a.size = r->run->hypercall.args[1] * 4096;
        a.attributes = r->run->hypercall.args[2] &
                       KVM_MAP_GPA_RANGE_ENCRYPTED ?
                       KVM_MEMORY_ATTRIBUTE_PRIVATE : 0;
        r->run->hypercall.ret = ioctl(r->gmem, KVM_SET_MEMORY_ATTRIBUTES2,
                                      &a) ? -errno : 0;
        g_assert_cmpint(r->run->hypercall.ret, ==, 0);
        if (prefault) {
            struct kvm_pre_fault_memory pf = {
                .gpa = a.offset, .size = a.size,
            };

            while (pf.size && !ioctl(r->vcpu, KVM_PRE_FAULT_MEMORY, &pf)) {
                /* on until done or failed, as QEMU */
            }
        }
    }
    return n / (now_s() - t0);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static void test_kvm_convert_rate(void)
{
    static const uint64_t sizes[] = { 4 * KiB, 2 * MiB };
    static const char *const names[] = {
        "ioctl_loop", "guest_loop", "guest_loop_prefault", "qemu",
    };
    struct kvm_create_guest_memfd g = {
        .size = 2 * MiB,
        .flags = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED,
    };
    ConvVm vm;
    QTestState *qts;
    int kvm, rawvm, gmem;
    bool prefault;
    void *map;

    if (!have_inplace_kvm()) {
        return;
    }
    if (!have_guest()) {
        return;
    }
    /* the plain loop's own VM and file, written all over */
    kvm = open("/dev/kvm", O_RDWR);
    rawvm = ioctl(kvm, KVM_CREATE_VM, KVM_X86_SW_PROTECTED_VM);
    g_assert(rawvm >= 0);
    prefault = ioctl(rawvm, KVM_CHECK_EXTENSION,
                     KVM_CAP_PRE_FAULT_MEMORY) > 0;
    gmem = ioctl(rawvm, KVM_CREATE_GUEST_MEMFD, &g);
    g_assert(gmem >= 0);
    map = mmap(NULL, g.size, PROT_READ | PROT_WRITE, MAP_SHARED, gmem, 0);
    g_assert(map != MAP_FAILED);
    memset(map, 0x5a, g.size);

    kvm_vm_start(&vm, " serve=1", "");
    qts = vm.qts;
    qtest_memset(qts, RATE_GPA, 0x5a, 2 * MiB);
    qtest_qmp_assert_success(qts, "{ 'execute': 'cont' }");
    conv_serve_ready(qts);

    for (int s = 0; s < ARRAY_SIZE(sizes); s++) {
        double rate[4][RATE_PAIRS], ratio[RATE_PAIRS], med[4];
        GString *line = g_string_new("");
        uint32_t rounds;
        RawVm rvm;

        raw_vm_init(&rvm, kvm, sizes[s] / 4096);
        /* size the runs to about RATE_RUN_S each */
        rounds = MAX(2, qemu_rate(qts, sizes[s], 20) * RATE_RUN_S / 2);
        for (int i = 0; i < RATE_PAIRS; i++) {
            /* each kind first in turn */
            for (int k = 0; k < 4; k++) {
                int m = (i + k) % 4;

                switch (m) {
                case 0:
                    rate[m][i] = raw_rate(gmem, sizes[s], 2 * rounds);
                    break;
                case 1:
                case 2:
                    rate[m][i] = raw_vm_rate(&rvm, 2 * rounds,
                                             m == 2 && prefault);
                    break;
                default:
                    rate[m][i] = qemu_rate(qts, sizes[s], rounds);
                    break;
                }
            }
            /* QEMU makes the same ioctls as the loop with pre-faults */
            ratio[i] = rate[3][i] / rate[2][i];
        }
        raw_vm_destroy(&rvm);
        for (int m = 0; m < 4; m++) {
            qsort(rate[m], RATE_PAIRS, sizeof(double), cmp_double);
            med[m] = rate[m][RATE_PAIRS / 2];
            g_string_append_printf(line, " %s=%.0f", names[m], med[m]);
        }
        qsort(ratio, RATE_PAIRS, sizeof(double), cmp_double);
        g_test_message("convert-rate size=%" PRIu64 " rounds=%d "
                       "conversions_per_run=%u per_second:%s "
                       "ratio_qemu_to_same_ioctls=%.3f (min %.3f max %.3f) "
                       "qemu_to_ioctl_loop=%.3f prefault=%s",
                       sizes[s], RATE_PAIRS, 2 * rounds, line->str,
                       ratio[RATE_PAIRS / 2], ratio[0],
                       ratio[RATE_PAIRS - 1], med[3] / med[0],
                       prefault ? "yes" : "no");
        g_string_free(line, true);
    }

    qtest_writel(qts, GMEM_GUEST_MAILBOX_GPA + GMEM_GUEST_MB_SERVE_CMD,
                 GMEM_GUEST_SERVE_STOP);
    conv_vm_end(&vm);
    munmap(map, g.size);
    close(gmem);
    close(rawvm);
    close(kvm);
}

/* Without KVM, the command says so */
static void test_no_kvm_caps(void)
{
    QTestState *qts = qtest_init("-machine none");
    QDict *resp = qtest_qmp(qts, "{ 'execute': 'query-kvm-guest-memfd' }");

    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(resp, "error"), "desc"),
                    ==, "KVM is not enabled: use -accel kvm");
    qobject_unref(resp);
    qtest_quit(qts);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    qtest_add_func("/guest-memfd/kvm-caps", test_kvm_caps);
    qtest_add_func("/guest-memfd/kvm-caps/lying", test_kvm_caps_lying);
    qtest_add_func("/guest-memfd/no-kvm-caps", test_no_kvm_caps);
    qtest_add_func("/guest-memfd/convert", test_convert);
    qtest_add_func("/guest-memfd/convert-busy", test_convert_busy);
    qtest_add_data_func("/guest-memfd/convert-smp", NULL, test_convert_smp);
    qtest_add_data_func("/guest-memfd/kvm/convert-smp", "real",
                        test_convert_smp);
    qtest_add_func("/guest-memfd/convert-guest-errors",
                   test_convert_guest_errors);
    qtest_add_data_func("/guest-memfd/convert-mapped", NULL,
                        test_convert_mapped);
    qtest_add_data_func("/guest-memfd/kvm/convert", NULL, test_kvm_convert);
    qtest_add_data_func("/guest-memfd/kvm/convert-mapped", "real",
                        test_convert_mapped);
    qtest_add_func("/guest-memfd/kvm/convert-pinned",
                   test_kvm_convert_pinned);
    qtest_add_func("/guest-memfd/kvm/convert-rate", test_kvm_convert_rate);
    return g_test_run();
}
