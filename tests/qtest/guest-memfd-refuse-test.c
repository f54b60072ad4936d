/*
 * QTest for memory-backend-guest-memfd: refusals
 *
 * The configurations QEMU refuses that need the KVM model (kernels that
 * cannot map guest_memfd or cannot convert in place, failing
 * preallocation) or concern conversion in place: confidential guests
 * whose memory is not all guest_memfd, SEV-SNP and TDX launches that
 * cannot be done in place, software-protected VMs.  Those of the backend
 * alone are in guest-memfd-test.c.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sys/ioctl.h>
#include <sys/wait.h>
#include "qemu/units.h"
#include "qemu/bswap.h"
#include "libqtest.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "system/kvm-gmem-uapi.h"
#include "guest-memfd-util.h"
#include "gmem-guest/gmem-guest.h"

/*
 * Refusals: QEMU exits with status 1 and one line that names the problem
 * and the fix, without dumping core.
 */
typedef struct Refusal {
    const char *name;
    bool kvm;               /* needs /dev/kvm to reach the check */
    const char *hide_caps;  /* KVM capabilities the kernel model hides */
    const char *args;
    const char *message;
    /*
     * Instead of @message where the host's KVM has @vm_type + 1 (that VM
     * type, so that QEMU gets as far as its own check)
     */
    const char *message2;
    /* An SEV-SNP or TDX guest with convert-in-place=on, on the KVM model */
    enum {
        MODEL_NONE, MODEL_SNP, MODEL_SNP_OFF, MODEL_TDX, MODEL_TDX_BFV_MOVED,
        MODEL_SWPROT
    } model;
    const char *inplace;    /* the in-place revision of the kernel model */
    const char *hint;       /* the hint QEMU prints after the line, if any */
    const char *flags;      /* the kernel model's content flags (v4/v5) */
    const char *model_env;  /* "NAME=value" for the kernel model */
    int vm_type;            /* see @message2 */
} Refusal;

/* This host has neither module parameter: the hint names both */
#define IN_PLACE_HINT \
    "It needs a host kernel with the guest_memfd in-place conversion " \
    "series, booted with kvm.gmem_in_place_conversion=1 (v8 and later) " \
    "or kvm.vm_memory_attributes=0 (earlier revisions)."

#define MACHINE_ARGS \
    "-cpu max -nodefaults -display none -S -machine q35,memory-backend=m0 "
#define BACKEND "-object memory-backend-guest-memfd,id=m0"

/*
 * Confidential guests that convert memory in place.  These machines have
 * neither SEV-SNP nor TDX: under KVM, creating the VM fails first, so the
 * checks of guest memory are reached with TCG, where memory backends are
 * created before anything looks for SEV or TDX.  The launch itself is
 * tested by the planner's unit test (tests/unit/test-gmem-launch-plan.c).
 */
#define SNP_IN_PLACE \
    "-nodefaults -display none -S -object sev-snp-guest,id=sev0,cbitpos=51," \
    "reduced-phys-bits=1,convert-in-place=on " \
    "-machine q35,confidential-guest-support=sev0"
#define TDX_IN_PLACE \
    "-nodefaults -display none -S -object tdx-guest,id=tdx0," \
    "convert-in-place=on -machine q35,confidential-guest-support=tdx0"
#define NOT_GMEM(backend, type, cgs) \
    "memory backend '" backend "' is " type ", but " cgs " converts " \
    "memory in place: back guest memory with memory-backend-guest-memfd"

static const Refusal refusals[] = {
    /* Linux 6.8 to 6.17: guest_memfd, but it cannot be mapped */
    { "kernel-no-mmap", true, "244",
      "-accel kvm " MACHINE_ARGS BACKEND ",size=32M",
      "the host kernel cannot map guest_memfd (KVM_CAP_GUEST_MEMFD_FLAGS 0x0 "
      "lacks 0x3): Linux 6.18 or later is needed" },
    /* before Linux 6.8: no guest_memfd at all */
    { "kernel-no-gmem", true, "234,244",
      "-accel kvm " MACHINE_ARGS BACKEND ",size=32M",
      "the host kernel cannot bind guest_memfd to this VM's memory "
      "(KVM_CAP_GUEST_MEMFD): Linux 6.18 or later is needed" },
    /* fallocate() failing part way (the model): undone, one line */
    { "prealloc-enomem", true, NULL,
      "-accel kvm " MACHINE_ARGS "-m 32M " BACKEND ",size=32M,prealloc=on",
      "cannot preallocate memory-backend-guest-memfd 'm0' (32 MiB): "
      "Cannot allocate memory", NULL, MODEL_NONE, NULL,
      "The host ran out of memory: use a smaller size, or prealloc=off.",
      NULL, "GMEM_KVM_MODEL_FALLOCATE_FAIL=12" },
    { "sev-convert-in-place", false, NULL,
      "-accel tcg -object sev-guest,id=s0,cbitpos=51,reduced-phys-bits=1,"
      "convert-in-place=on",
      "Invalid parameter 'convert-in-place'" },
    /* convert-in-place=on: all guest memory must be guest_memfd */
    { "in-place/snp-default-ram", false, NULL,
      "-accel tcg " SNP_IN_PLACE,
      NOT_GMEM("pc.ram", "memory-backend-ram", "sev-snp-guest 'sev0'") },
    { "in-place/snp-memfd", false, NULL,
      "-accel tcg " SNP_IN_PLACE ",memory-backend=m0 -m 32M "
      "-object memory-backend-memfd,id=m0,size=32M",
      NOT_GMEM("m0", "memory-backend-memfd", "sev-snp-guest 'sev0'") },
    { "in-place/tdx-mem-path", false, NULL,
      "-accel tcg -mem-path /dev/shm " TDX_IN_PLACE,
      NOT_GMEM("pc.ram", "memory-backend-file", "tdx-guest 'tdx0'") },
    { "in-place/tdx-numa", false, NULL,
      "-accel tcg " TDX_IN_PLACE " -m 32M -numa node,memdev=n0 "
      "-object memory-backend-ram,id=n0,size=32M",
      NOT_GMEM("n0", "memory-backend-ram", "tdx-guest 'tdx0'") },
    /* guest_memfd, but no KVM */
    { "in-place/snp-tcg", false, NULL,
      "-accel tcg " SNP_IN_PLACE ",memory-backend=m0 -m 32M "
      BACKEND ",size=32M",
      "memory-backend-guest-memfd 'm0' needs the KVM accelerator: "
      "use -accel kvm" },
    { "in-place/value", false, NULL,
      "-accel tcg -object tdx-guest,id=tdx0,convert-in-place=maybe",
      "Parameter 'convert-in-place' expects 'on' or 'off'" },
    /*
     * Under KVM, a host without SEV-SNP or TDX refuses the VM type; one
     * with them but without in-place conversion refuses convert-in-place.
     */
    { "in-place/snp-kvm", true, NULL,
      "-accel kvm " SNP_IN_PLACE ",memory-backend=m0 -m 32M "
      BACKEND ",size=32M",
      "vm-type SEV-SNP not supported by KVM",
      "sev-snp-guest 'sev0' has convert-in-place=on, but the host's KVM "
      "cannot convert guest_memfd memory in place",
      .vm_type = KVM_X86_SNP_VM + 1 },
    /* SEV-SNP from the KVM model; see test_snp_launch_in_place() */
    /*
     * SEV-SNP from the KVM model; see test_snp_launch_in_place().  This
     * host has neither module parameter: the hint names both.
     */
    { "in-place/snp-model-no-in-place", true, NULL,
      "-machine memory-backend=m0 " BACKEND ",size=32M",
      "sev-snp-guest 'sev0' has convert-in-place=on, but the host's KVM "
      "cannot convert guest_memfd memory in place (mode shared-only): it "
      "offers no per-file memory attributes "
      "(KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES) for this VM",
      NULL, MODEL_SNP, "off", IN_PLACE_HINT },
    { "in-place/snp-model-memfd", true, NULL,
      "-machine memory-backend=m0 "
      "-object memory-backend-memfd,id=m0,size=32M",
      NOT_GMEM("m0", "memory-backend-memfd", "sev-snp-guest 'sev0'"),
      NULL, MODEL_SNP, "v8" },
    /* content flags, but not PRESERVE: the firmware cannot be carried in */
    { "in-place/snp-model-no-preserve", true, NULL,
      "-machine memory-backend=m0 " BACKEND ",size=32M",
      "SEV-SNP page at 0xffff0000+0x10000: cannot convert to private "
      "preserving its contents: the host's KVM has neither the PRESERVE "
      "conversion flag nor launch updates from the page itself",
      NULL, MODEL_SNP, "v5", NULL, "1" },
    /* an in-place host has no second backing for convert-in-place=off */
    { "in-place/snp-model-off", true, NULL,
      "-machine memory-backend=m0 -object memory-backend-memfd,id=m0,"
      "size=32M",
      "sev-snp-guest 'sev0' needs convert-in-place=on: the host's KVM "
      "converts guest_memfd memory in place and keeps no private memory "
      "apart", NULL, MODEL_SNP_OFF, "v8",
      "Add convert-in-place=on to sev-snp-guest 'sev0', with "
      "memory-backend-guest-memfd for guest RAM." },
    /* a launch update that meets a shared page: EIO, named */
    { "in-place/snp-model-shared-page", true, NULL,
      "-machine memory-backend=m0 " BACKEND ",size=32M",
      "(SEV-SNP page) stopped at GPA 0xffff4000, which is not private in "
      "its guest_memfd (EIO), after 0x4000 bytes",
      NULL, MODEL_SNP, "v8", NULL, NULL,
      /* a concurrent conversion of the firmware's fifth page */
      "GMEM_KVM_MODEL_SHARED_GPA=0xffff4000" },
    { "in-place/tdx-model-no-in-place", true, NULL,
      "-machine memory-backend=m0 " BACKEND ",size=32M",
      "tdx-guest 'tdx0' has convert-in-place=on, but the host's KVM "
      "cannot convert guest_memfd memory in place (mode shared-only)",
      NULL, MODEL_TDX, "off", IN_PLACE_HINT },
    /* a firmware volume that its image does not map where it is measured */
    { "in-place/tdx-model-bfv-moved", true, NULL,
      "-machine memory-backend=m0 " BACKEND ",size=32M",
      "TDVF BFV section at 0xffff0000+0xe000: its contents are not at that "
      "address in guest memory, so it cannot be populated in place",
      NULL, MODEL_TDX_BFV_MOVED, "v8" },
    { "in-place/tdx-model-shared-page", true, NULL,
      "-machine memory-backend=m0 " BACKEND ",size=32M",
      "KVM_TDX_INIT_MEM_REGION stopped at GPA 0xffff4000, which is not "
      "private in its guest_memfd (EIO), after adding 0x4000 of 0x10000 "
      "bytes", NULL, MODEL_TDX, "v8", NULL, NULL,
      /* a concurrent conversion of the firmware's fifth page */
      "GMEM_KVM_MODEL_SHARED_GPA=0xffff4000" },
    /* software-protected VMs: this host has no such VM type */
    { "sw-protected/kvm", true, NULL,
      "-accel kvm " SWPROT_ARGS,
      "vm-type SW-protected not supported by KVM", NULL, MODEL_NONE, NULL,
      "The host kernel needs CONFIG_KVM_SW_PROTECTED_VM=y" },
    /* ...the KVM model has one, but no in-place conversion */
    { "sw-protected/model-no-in-place", true, NULL, SWPROT_ARGS,
      "sw-protected-guest 'swp0' converts memory in place, but the host's "
      "KVM cannot convert guest_memfd memory in place (mode shared-only)",
      NULL, MODEL_SWPROT, "off", IN_PLACE_HINT },
    /* KVM refuses memory slots in SMM's address space for this VM type */
    { "sw-protected/smm", true, NULL,
      "-nodefaults -display none -S -m 32M "
      "-object memory-backend-guest-memfd,id=m0,size=32M "
      "-object sw-protected-guest,id=swp0 "
      "-machine q35,memory-backend=m0,confidential-guest-support=swp0,"
      "smm=on",
      "sw-protected-guest 'swp0' does not support SMM",
      NULL, MODEL_SWPROT, "v8", "Use smm=off, or leave it out." },
    { "sw-protected/model-memfd", true, NULL,
      "-nodefaults -display none -S -m 32M "
      "-object memory-backend-memfd,id=m0,size=32M "
      "-object sw-protected-guest,id=swp0 "
      "-machine q35,memory-backend=m0,confidential-guest-support=swp0",
      NOT_GMEM("m0", "memory-backend-memfd", "sw-protected-guest 'swp0'"),
      NULL, MODEL_SWPROT, "v8" },
    { "in-place/tdx-kvm", true, NULL,
      "-accel kvm " TDX_IN_PLACE ",memory-backend=m0,kernel-irqchip=split "
      "-m 32M " BACKEND ",size=32M",
      "vm-type TDX not supported by KVM",
      "tdx-guest 'tdx0' has convert-in-place=on, but the host's KVM "
      "cannot convert guest_memfd memory in place",
      .vm_type = KVM_X86_TDX_VM + 1 },
};

/* KVM_CAP_VM_TYPES of the host's KVM */
static int host_vm_types(void)
{
    int kvm = open("/dev/kvm", O_RDWR);
    int types;

    g_assert(kvm >= 0);
    types = ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_VM_TYPES);
    close(kvm);
    return types > 0 ? types : 1;
}

static void test_refusal(const void *data)
{
    const Refusal *r = data;
    g_auto(GStrv) envp = g_get_environ();
    g_autofree char *cmd = NULL;
    g_autofree char *err = NULL;
    g_autofree char *dir = NULL;
    g_autofree char *fw_path = NULL;
    g_autofree char *snp = NULL;
    char *nl;

    if (r->kvm && !have_kvm()) {
        return;
    }
    if (g_str_equal(r->name, "sw-protected/kvm") &&
        host_vm_types() & (1 << KVM_X86_SW_PROTECTED_VM)) {
        g_test_skip("this host's KVM has software-protected VMs: nothing "
                    "to refuse");
        return;
    }
    if (r->model == MODEL_SWPROT) {
        g_autofree char *preload = g_canonicalize_filename(kvm_model(), NULL);

        snp = g_strdup("-accel kvm ");
        envp = g_environ_setenv(envp, "LD_PRELOAD", preload, true);
        envp = g_environ_setenv(envp, "GMEM_KVM_MODEL_SWPROT", "1", true);
    } else if (r->model != MODEL_NONE) {
        g_autofree char *preload = g_canonicalize_filename(kvm_model(), NULL);
        bool tdx = r->model == MODEL_TDX || r->model == MODEL_TDX_BFV_MOVED;
        g_autofree uint8_t *fw = tdx ?
            tdx_firmware(r->model == MODEL_TDX_BFV_MOVED) : snp_firmware();

        dir = test_dir_new();
        fw_path = g_build_filename(dir, "fw.bin", NULL);
        g_assert(g_file_set_contents(fw_path, (char *)fw, SNP_FW_SIZE, NULL));
        if (tdx) {
            snp = g_strdup_printf("-accel kvm -cpu host -nodefaults "
                                  "-display none -m 32M -object tdx-guest,"
                                  "id=tdx0,convert-in-place=on "
                                  "-machine q35,confidential-guest-support="
                                  "tdx0,kernel-irqchip=split -bios %s ",
                                  fw_path);
        } else {
            snp = g_strdup_printf("-accel kvm -cpu host -nodefaults "
                                  "-display none -m 32M -object "
                                  "sev-snp-guest,id=sev0,cbitpos=%u,"
                                  "reduced-phys-bits=1,convert-in-place=%s "
                                  "-machine q35,confidential-guest-support="
                                  "sev0 -bios %s ", host_cbitpos(),
                                  r->model == MODEL_SNP_OFF ? "off" : "on",
                                  fw_path);
        }
        envp = g_environ_setenv(envp, "LD_PRELOAD", preload, true);
        envp = g_environ_setenv(envp, tdx ? "GMEM_KVM_MODEL_TDX" :
                                "GMEM_KVM_MODEL_SNP", "1", true);
    }
    if (r->inplace) {
        envp = g_environ_setenv(envp, "GMEM_KVM_MODEL_INPLACE", r->inplace,
                                true);
    }
    if (r->model_env) {
        g_autofree char *preload = g_canonicalize_filename(kvm_model(), NULL);
        g_auto(GStrv) kv = g_strsplit(r->model_env, "=", 2);

        envp = g_environ_setenv(envp, "LD_PRELOAD", preload, true);
        envp = g_environ_setenv(envp, kv[0], kv[1], true);
    }
    if (r->flags) {
        envp = g_environ_setenv(envp, "GMEM_KVM_MODEL_FLAGS", r->flags,
                                true);
    }
    if (r->hide_caps) {
        g_autofree char *preload = g_canonicalize_filename(kvm_model(), NULL);

        g_assert(g_file_test(preload, G_FILE_TEST_EXISTS));
        envp = g_environ_setenv(envp, "LD_PRELOAD", preload, true);
        envp = g_environ_setenv(envp, "GMEM_KVM_MODEL_HIDE_CAPS",
                                r->hide_caps, true);
    }
    cmd = g_strdup_printf("%s%s", snp ?: "", r->args);
    err = refused(cmd, envp, r->name);
    if (fw_path) {
        test_dir_remove(dir);
    }
    /* one line that names the problem, then at most the hint */
    nl = strchr(err, '\n');
    *nl = 0;
    /* where the host has the VM type, only QEMU's own check will do */
    if (r->message2 && host_vm_types() & (1 << (r->vm_type - 1))) {
        g_assert(strstr(err, r->message2));
    } else {
        g_assert(strstr(err, r->message));
    }
    /* the hint of the first message; a host that gets further has others */
    if (r->hint && g_str_equal(r->hint, IN_PLACE_HINT)) {
        /* it names the module parameter of the host's kernel, or both */
        g_assert(strstr(nl + 1, "kvm.gmem_in_place_conversion=1") ||
                 strstr(nl + 1, "kvm.vm_memory_attributes=0"));
    } else if (r->hint && strstr(err, r->message)) {
        g_assert(g_str_has_prefix(nl + 1, r->hint));
    } else if (!r->hint) {
        g_assert_cmpstr(nl + 1, ==, "");
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    for (int i = 0; i < ARRAY_SIZE(refusals); i++) {
        g_autofree char *path = g_strdup_printf("/guest-memfd/refuse/%s",
                                                refusals[i].name);

        qtest_add_data_func(path, &refusals[i], test_refusal);
    }
    return g_test_run();
}
