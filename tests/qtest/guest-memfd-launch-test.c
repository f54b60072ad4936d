/*
 * QTest for memory-backend-guest-memfd: confidential launch in place
 *
 * SEV-SNP and TDX guests launched in place from guest_memfd RAM and
 * firmware, on the KVM model, and their convert-in-place property.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/units.h"
#include "qemu/bswap.h"
#include "libqtest.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "system/kvm-gmem-uapi.h"
#include "guest-memfd-util.h"
#include "gmem-guest/gmem-guest.h"

/*
 * An SEV-SNP launch in place, end to end.  This host has no SEV-SNP, so
 * the KVM model provides it (GMEM_KVM_MODEL_SNP): the SNP VM type over an
 * ordinary VM, /dev/sev, and the launch commands as the in-place series
 * documents them, without encryption.  Its LAUNCH_UPDATE refuses pages
 * that are not private in their guest_memfd, and logs a checksum of what
 * it measured.  Guest RAM and the firmware are real guest_memfds of this
 * host's kernel.  The firmware is a minimal OVMF image: the GUIDed table
 * with the SEV information block and the SEV metadata (zero, secrets and
 * CPUID pages), and a reset vector that halts.
 */
static uint64_t fnv(uint64_t h, const void *buf, size_t n)
{
    const uint8_t *b = buf;

    for (size_t i = 0; i < n; i++) {
        h = (h ^ b[i]) * 0x100000001b3ULL;
    }
    return h;
}

#define FNV_INIT UINT64_C(0xcbf29ce484222325)

/* Kernel generations that convert in place, for an SEV-SNP launch */
typedef struct InPlaceKernel {
    const char *revision;       /* GMEM_KVM_MODEL_INPLACE */
    const char *flags;          /* GMEM_KVM_MODEL_FLAGS */
    unsigned preserve_flags;    /* what a conversion preserving contents uses */
} InPlaceKernel;

static const InPlaceKernel in_place_v8 = { "v8", "0", 0 };
/* v4/v5: ZERO and PRESERVE flags */
static const InPlaceKernel in_place_v5 = { "v5", "3", 2 };

static QTestState *snp_start(const char *dir, const InPlaceKernel *k,
                             const char *backend, const char *log)
{
    g_autofree char *preload = g_canonicalize_filename(kvm_model(), NULL);
    g_autofree char *fw_path = g_build_filename(dir, "fw.bin", NULL);
    g_autofree uint8_t *fw = snp_firmware();
    QTestState *qts;

    g_assert(g_file_set_contents(fw_path, (char *)fw, SNP_FW_SIZE, NULL));
    g_setenv("LD_PRELOAD", preload, true);
    g_setenv("GMEM_KVM_MODEL_SNP", "1", true);
    g_setenv("GMEM_KVM_MODEL_INPLACE", k->revision, true);
    g_setenv("GMEM_KVM_MODEL_FLAGS", k->flags, true);
    g_setenv("GMEM_KVM_MODEL_LOG", log, true);
    qts = qtest_initf("-accel kvm -cpu host -nodefaults -display none -S "
                      "-m %dM -object %s,id=m0,size=%dM "
                      "-object sev-snp-guest,id=sev0,cbitpos=%u,"
                      "reduced-phys-bits=1,convert-in-place=on "
                      "-machine q35,confidential-guest-support=sev0,"
                      "memory-backend=m0 -bios %s",
                      RAM_MB, backend, RAM_MB, host_cbitpos(), fw_path);
    g_unsetenv("LD_PRELOAD");
    g_unsetenv("GMEM_KVM_MODEL_SNP");
    g_unsetenv("GMEM_KVM_MODEL_INPLACE");
    g_unsetenv("GMEM_KVM_MODEL_FLAGS");
    g_unsetenv("GMEM_KVM_MODEL_LOG");
    return qts;
}

/* The model's log of SEV-SNP commands and conversions, in order */
static char *snp_kernel_calls(const char *log_path)
{
    g_autofree char *log = NULL;
    g_auto(GStrv) lines = NULL;
    GString *s = g_string_new("");

    g_assert(g_file_get_contents(log_path, &log, NULL, NULL));
    lines = g_strsplit(log, "\n", -1);
    for (int i = 0; lines[i]; i++) {
        if (g_str_has_prefix(lines[i], "snp-") ||
            g_str_has_prefix(lines[i], "tdx-") ||
            g_str_has_prefix(lines[i], "attributes ")) {
            g_string_append_printf(s, "%s\n", lines[i]);
        }
    }
    return g_string_free(s, false);
}

static QDict *gmem_backend(QTestState *qts, const char *name)
{
    QDict *resp = qtest_qmp(qts, "{ 'execute': 'query-kvm-guest-memfd' }");
    QList *list = qdict_get_qlist(qdict_get_qdict(resp, "return"),
                                  "backends");
    QListEntry *e;
    QDict *found = NULL;

    QLIST_FOREACH_ENTRY(list, e) {
        QDict *b = qobject_to(QDict, qlist_entry_obj(e));

        if (!strcmp(qdict_get_str(b, "name"), name)) {
            found = b;
            qobject_ref(found);
        }
    }
    qobject_unref(resp);
    g_assert(found);
    return found;
}

static void test_snp_launch_in_place(const void *data)
{
    const InPlaceKernel *k = data;
    g_autofree char *dir = NULL;
    g_autofree char *log = NULL;
    g_autofree char *calls = NULL;
    g_autofree char *want = NULL;
    g_autofree uint8_t *fw = snp_firmware();
    g_autofree uint8_t *zeros = g_malloc0(0x9000);
    char cpuid[19], before[19];
    const char *p;
    QTestState *qts;
    QDict *b, *rsp;

    if (!have_kvm()) {
        return;
    }
    dir = test_dir_new();
    log = g_build_filename(dir, "model", NULL);
    qts = snp_start(dir, k, "memory-backend-guest-memfd", log);

    /* The launch finishes when the guest first runs */
    qtest_qmp_assert_success(qts, "{ 'execute': 'cont' }");
    rsp = qtest_qmp(qts, "{ 'execute': 'query-status' }");
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(rsp, "return"), "status"),
                    ==, "running");
    qobject_unref(rsp);

    /*
     * The CPUID page was updated from QEMU's copy, which holds what QEMU
     * wrote in place: the page is private now, and QEMU cannot read it.
     */
    calls = snp_kernel_calls(log);
    p = strstr(calls, "type=6 source=copy");
    g_assert(p);
    g_assert(sscanf(p, "type=6 source=copy sum=%18s before=%18s", cpuid,
                    before) == 2);
    g_assert_cmpstr(cpuid, ==, before);

    /*
     * Each range converted to private, then measured; the firmware from
     * the guest_memfd it was loaded into: what was measured is the image.
     * Then the rest of RAM; 0xc0000-0xe0000 is pc.rom, which hides RAM.
     */
    want = g_strdup_printf(
        "snp-init2\n"
        "snp-launch-start\n"
        "attributes offset=0x0 size=0x10000 attributes=0x8 flags=0x%x ret=0 "
        "error_offset=0x0\n"
        "snp-update gpa=0xffff0000 len=0x10000 type=1 source=in-place "
        "sum=0x%016" PRIx64 "\n"
        "attributes offset=0x800000 size=0x9000 attributes=0x8 flags=0x0 "
        "ret=0 error_offset=0x0\n"
        "snp-update gpa=0x800000 len=0x9000 type=3 source=in-place "
        "sum=0x%016" PRIx64 "\n"
        "attributes offset=0x809000 size=0x1000 attributes=0x8 flags=0x0 "
        "ret=0 error_offset=0x0\n"
        "snp-update gpa=0x809000 len=0x1000 type=5 source=in-place "
        "sum=0x%016" PRIx64 "\n"
        "attributes offset=0x80a000 size=0x1000 attributes=0x8 flags=0x0 "
        "ret=0 error_offset=0x0\n"
        "snp-update gpa=0x80a000 len=0x1000 type=6 source=copy "
        "sum=%s before=%s\n"
        "attributes offset=0x80b000 size=0x2000 attributes=0x8 flags=0x0 "
        "ret=0 error_offset=0x0\n"
        "snp-update gpa=0x80b000 len=0x2000 type=3 source=in-place "
        "sum=0x%016" PRIx64 "\n"
        "attributes offset=0x0 size=0xc0000 attributes=0x8 flags=0x0 ret=0 "
        "error_offset=0x0\n"
        "attributes offset=0x0 size=0x20000 attributes=0x8 flags=0x0 ret=0 "
        "error_offset=0x0\n"
        "attributes offset=0xe0000 size=0x720000 attributes=0x8 flags=0x0 "
        "ret=0 error_offset=0x0\n"
        "attributes offset=0x80d000 size=0x%x attributes=0x8 flags=0x0 "
        "ret=0 error_offset=0x0\n"
        "snp-finish files=3 shared=0 private=%d\n",
        k->preserve_flags, fnv(FNV_INIT, fw, SNP_FW_SIZE),
        fnv(FNV_INIT, zeros, 0x9000),
        FNV_INIT, cpuid, cpuid,
        fnv(FNV_INIT, zeros, 0x2000), RAM_MB * 0x100000 - 0x80d000,
        (RAM_MB * 0x100000 - 0x20000 + 0x20000 + SNP_FW_SIZE) / 0x1000);
    g_assert_cmpstr(calls, ==, want);

    /* QEMU's view: the firmware is guest_memfd, private, not discarded */
    b = gmem_backend(qts, "pc.bios");
    g_assert_cmpint(qdict_get_int(b, "private"), ==, SNP_FW_SIZE);
    g_assert_cmpint(qdict_get_int(b, "shared"), ==, 0);
    qobject_unref(b);
    b = gmem_backend(qts, "m0");
    g_assert_cmpint(qdict_get_int(b, "shared"), ==, 0x20000);
    g_assert_cmpint(qdict_get_int(b, "failures"), ==, 0);
    qobject_unref(b);

    qtest_quit(qts);
    test_dir_remove(dir);
}

/*
 * A TD launched in place, end to end, on the KVM model's TDX (this host
 * has none): the TDVF firmware volume is added from the guest_memfd it was
 * loaded into and stays there, the hand-off blocks are built in guest RAM
 * and added from there, TEMP_MEM is zeroed in RAM, then all RAM becomes
 * private before FINALIZE_VM.
 */
static void test_tdx_launch_in_place(const void *data)
{
    const InPlaceKernel *k = data;
    g_autofree char *preload = g_canonicalize_filename(kvm_model(), NULL);
    g_autofree char *dir = test_dir_new();
    g_autofree char *log = g_build_filename(dir, "model", NULL);
    g_autofree char *fw_path = g_build_filename(dir, "fw.bin", NULL);
    g_autofree uint8_t *fw = tdx_firmware(false);
    g_autofree uint8_t *zeros = g_malloc0(0x9000);
    g_autofree char *calls = NULL;
    g_autofree char *want = NULL;
    char hob[19];
    uint64_t rss_kb;
    const char *p;
    QTestState *qts;
    QDict *b, *rsp;

    if (!have_kvm()) {
        return;
    }
    g_assert(g_file_set_contents(fw_path, (char *)fw, SNP_FW_SIZE, NULL));
    g_setenv("LD_PRELOAD", preload, true);
    g_setenv("GMEM_KVM_MODEL_TDX", "1", true);
    g_setenv("GMEM_KVM_MODEL_INPLACE", k->revision, true);
    g_setenv("GMEM_KVM_MODEL_FLAGS", k->flags, true);
    g_setenv("GMEM_KVM_MODEL_LOG", log, true);
    /* TDX finalizes the launch when the machine is created */
    qts = qtest_initf("-accel kvm -cpu host -nodefaults -display none "
                      "-m %dM -object memory-backend-guest-memfd,id=m0,"
                      "size=%dM -object tdx-guest,id=tdx0,"
                      "convert-in-place=on -machine q35,"
                      "confidential-guest-support=tdx0,memory-backend=m0,"
                      "kernel-irqchip=split -bios %s",
                      RAM_MB, RAM_MB, fw_path);
    g_unsetenv("LD_PRELOAD");
    g_unsetenv("GMEM_KVM_MODEL_TDX");
    g_unsetenv("GMEM_KVM_MODEL_INPLACE");
    g_unsetenv("GMEM_KVM_MODEL_FLAGS");
    g_unsetenv("GMEM_KVM_MODEL_LOG");

    rsp = qtest_qmp(qts, "{ 'execute': 'query-status' }");
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(rsp, "return"), "status"),
                    ==, "running");
    qobject_unref(rsp);

    /*
     * The hand-off blocks, built in guest RAM, start with the PHIT
     * (EFI_HOB_TYPE_HANDOFF, 1); QEMU cannot read them, now private.
     */
    calls = snp_kernel_calls(log);
    p = strstr(calls, "tdx-add gpa=0x809000 len=0x2000 source=in-place "
               "measure=0 head=0100 sum=");
    g_assert(p);
    g_assert(sscanf(p + strlen("tdx-add gpa=0x809000 len=0x2000 source="
                               "in-place measure=0 head=0100 sum="),
                    "%18s", hob) == 1);
    /* The firmware's memory still holds the firmware: nothing discarded */
    g_assert(find_gmem_mapping(qtest_pid(qts), SNP_FW_SIZE, &rss_kb));
    g_assert_cmpint(rss_kb, ==, SNP_FW_SIZE / 1024);

    want = g_strdup_printf(
        "tdx-init-vm\n"
        "tdx-init-vcpu hob=0x%x\n"
        "attributes offset=0x0 size=0x10000 attributes=0x8 flags=0x%x ret=0 "
        "error_offset=0x0\n"
        "tdx-add gpa=0xffff0000 len=0x10000 source=in-place measure=1 "
        "head=030a sum=0x%016" PRIx64 "\n"
        "attributes offset=0x809000 size=0x2000 attributes=0x8 flags=0x%x "
        "ret=0 error_offset=0x0\n"
        "tdx-add gpa=0x809000 len=0x2000 source=in-place measure=0 "
        "head=0100 sum=%s\n"
        "attributes offset=0x800000 size=0x9000 attributes=0x8 flags=0x%x "
        "ret=0 error_offset=0x0\n"
        "tdx-add gpa=0x800000 len=0x9000 source=in-place measure=0 "
        "head=0000 sum=0x%016" PRIx64 "\n"
        "attributes offset=0x0 size=0x800000 attributes=0x8 flags=0x0 ret=0 "
        "error_offset=0x0\n"
        "attributes offset=0x80b000 size=0x%x attributes=0x8 flags=0x0 "
        "ret=0 error_offset=0x0\n"
        "tdx-finalize files=2 shared=0 private=%d\n",
        TDX_HOB_GPA, k->preserve_flags, fnv(FNV_INIT, fw, SNP_FW_SIZE),
        k->preserve_flags, hob,
        k->preserve_flags, fnv(FNV_INIT, zeros, 0x9000),
        RAM_MB * 0x100000 - 0x80b000,
        (RAM_MB * 0x100000 + SNP_FW_SIZE) / 0x1000);
    g_assert_cmpstr(calls, ==, want);

    b = gmem_backend(qts, "pc.bios");
    g_assert_cmpint(qdict_get_int(b, "private"), ==, SNP_FW_SIZE);
    qobject_unref(b);
    b = gmem_backend(qts, "m0");
    g_assert_cmpint(qdict_get_int(b, "shared"), ==, 0);
    qobject_unref(b);

    qtest_quit(qts);
    test_dir_remove(dir);
}

/* -object memory-backend-guest-memfd,help lists the properties */
/*
 * convert-in-place is a property of sev-snp-guest and tdx-guest, off by
 * default, fixed once the accelerator is up; it means nothing for an
 * object the machine does not use.
 */
static void test_convert_in_place_property(void)
{
    QTestState *qts;
    QDict *rsp;

    if (!have_kvm()) {
        return;
    }
    qts = qtest_init("-accel kvm -nodefaults -display none -S "
                     "-object sev-snp-guest,id=sev0,cbitpos=51,"
                     "reduced-phys-bits=1 "
                     "-object tdx-guest,id=tdx0,convert-in-place=on");
    g_assert_false(qtest_qom_get_bool(qts, "/objects/sev0",
                                      "convert-in-place"));
    g_assert_true(qtest_qom_get_bool(qts, "/objects/tdx0",
                                     "convert-in-place"));

    rsp = qtest_qmp(qts, "{ 'execute': 'qom-set', 'arguments': { "
                    "'path': '/objects/sev0', 'property': "
                    "'convert-in-place', 'value': true } }");
    g_assert(qdict_haskey(rsp, "error"));
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(rsp, "error"), "desc"), ==,
                    "cannot change 'convert-in-place' of sev-snp-guest "
                    "once the accelerator is set up");
    qobject_unref(rsp);
    g_assert_false(qtest_qom_get_bool(qts, "/objects/sev0",
                                      "convert-in-place"));
    qtest_qmp_assert_success(qts, "{ 'execute': 'query-status' }");
    qtest_quit(qts);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    qtest_add_func("/guest-memfd/convert-in-place/property",
                   test_convert_in_place_property);
    qtest_add_data_func("/guest-memfd/convert-in-place/snp-launch/v8",
                        &in_place_v8, test_snp_launch_in_place);
    qtest_add_data_func("/guest-memfd/convert-in-place/snp-launch/v5",
                        &in_place_v5, test_snp_launch_in_place);
    qtest_add_data_func("/guest-memfd/convert-in-place/tdx-launch/v8",
                        &in_place_v8, test_tdx_launch_in_place);
    qtest_add_data_func("/guest-memfd/convert-in-place/tdx-launch/v5",
                        &in_place_v5, test_tdx_launch_in_place);
    return g_test_run();
}
