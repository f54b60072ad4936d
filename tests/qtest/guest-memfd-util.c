/*
 * Helpers for the memory-backend-guest-memfd qtests
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sys/wait.h>
#include "qemu/units.h"
#include "qemu/bswap.h"
#include "libqtest.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "guest-memfd-util.h"
#include "gmem-guest/gmem-guest.h"

const char *guest_elf(void)
{
    const char *elf = g_getenv("GMEM_GUEST_ELF");

    return elf ? elf : "tests/qtest/gmem-guest.elf";
}

/*
 * Skip, saying why, where the test guest was not built (meson builds it
 * only with a compiler for 32-bit x86)
 */
bool have_guest(void)
{
    if (!g_file_test(guest_elf(), G_FILE_TEST_EXISTS)) {
        g_test_skip("no test guest (gmem-guest.elf): the build found no "
                    "compiler for 32-bit x86 (gcc -m32)");
        return false;
    }
    return true;
}

/* Skip, saying why, unless KVM and a mappable guest_memfd are here */
bool have_kvm(void)
{
    if (!qtest_has_accel("kvm")) {
        g_test_skip("KVM is not available (/dev/kvm)");
        return false;
    }
    return true;
}

QTestState *start_vm(const char *machine, const char *backend_opts,
                     const char *extra)
{
    return qtest_initf("-accel kvm -cpu max -nodefaults -display none "
                       "-machine %s,memory-backend=m0 -m %dM "
                       "-object memory-backend-guest-memfd,id=m0,size=%dM%s "
                       "%s",
                       machine, RAM_MB, RAM_MB, backend_opts, extra);
}

void assert_kvm_accel(QTestState *qts)
{
    QDict *resp = qtest_qmp(qts, "{ 'execute': 'query-kvm' }");
    QDict *ret = qdict_get_qdict(resp, "return");

    g_assert(qdict_get_bool(ret, "enabled"));
    qobject_unref(resp);
}

/*
 * What /proc calls a guest_memfd: an anonymous inode up to Linux 6.18,
 * "/[kvm-gmem] (deleted)" on later kernels (seen on 7.1)
 */
bool is_gmem_name(const char *name)
{
    return g_str_equal(name, "anon_inode:[kvm-gmem]") ||
           g_str_has_prefix(name, "/[kvm-gmem]");
}

/*
 * Find QEMU's mapping of guest RAM: the one mapping of the whole size from
 * a guest_memfd.  Returns its inode; its resident size in KiB goes to
 * @rss_kb.
 */
uint64_t find_gmem_mapping(pid_t pid, uint64_t size, uint64_t *rss_kb)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/smaps", pid);
    g_autofree char *smaps = NULL;
    g_auto(GStrv) lines = NULL;
    uint64_t inode = 0;
    bool in_ram = false;
    int found = 0;

    g_assert(g_file_get_contents(path, &smaps, NULL, NULL));
    lines = g_strsplit(smaps, "\n", -1);
    for (int i = 0; lines[i]; i++) {
        unsigned long start, end, ino;
        char name[64] = "";
        unsigned long kb;

        if (sscanf(lines[i], "%lx-%lx %*s %*s %*s %lu %63s",
                   &start, &end, &ino, name) >= 3) {
            in_ram = end - start == size &&
                     is_gmem_name(name);
            if (in_ram) {
                inode = ino;
                found++;
            }
        } else if (in_ram && sscanf(lines[i], "Rss: %lu kB", &kb) == 1) {
            *rss_kb = kb;
        }
    }
    g_assert_cmpint(found, ==, 1);
    return inode;
}

/* A new directory for a test's files: logs, sockets, images */
char *test_dir_new(void)
{
    char *dir = g_dir_make_tmp("gmem-XXXXXX", NULL);

    g_assert(dir);
    return dir;
}

/* Remove @dir and the files in it */
void test_dir_remove(const char *dir)
{
    GDir *d = g_dir_open(dir, 0, NULL);
    const char *name;

    g_assert(d);
    while ((name = g_dir_read_name(d))) {
        g_autofree char *path = g_build_filename(dir, name, NULL);

        g_assert_cmpint(unlink(path), ==, 0);
    }
    g_dir_close(d);
    g_assert_cmpint(rmdir(dir), ==, 0);
}

/* Is the file with this inode among QEMU's open guest_memfds? */
bool gmem_fd_open(pid_t pid, uint64_t inode)
{
    g_autofree char *dir = g_strdup_printf("/proc/%d/fd", pid);
    GDir *d = g_dir_open(dir, 0, NULL);
    const char *ent;
    bool found = false;

    g_assert(d);
    while (!found && (ent = g_dir_read_name(d))) {
        g_autofree char *fd = g_build_filename(dir, ent, NULL);
        g_autofree char *link = g_file_read_link(fd, NULL);
        struct stat st;

        found = link && is_gmem_name(link) &&
                !stat(fd, &st) && st.st_ino == inode;
    }
    g_dir_close(d);
    return found;
}

char *read_console(const char *path)
{
    char *text = NULL;

    if (!g_file_get_contents(path, &text, NULL, NULL)) {
        text = g_strdup("(no console output)");
    }
    return text;
}

/*
 * Run QEMU with @args in the environment @envp: it must refuse them, that
 * is exit with status 1, without a signal, and within two minutes (a
 * refusal that hangs is killed, and fails the test).  Returns what it
 * printed on stderr, which ends in a newline.
 */
char *refused(const char *args, char **envp, const char *name)
{
    g_autofree char *cmd = NULL;
    g_autofree char *out = NULL;
    g_autoptr(GError) gerr = NULL;
    g_auto(GStrv) argv = NULL;
    char *err = NULL;
    int status;

    cmd = g_strdup_printf("timeout -s KILL 120 %s %s",
                          g_getenv("QTEST_QEMU_BINARY"), args);
    g_assert(g_shell_parse_argv(cmd, NULL, &argv, NULL));
    g_assert(g_spawn_sync(NULL, argv, envp, G_SPAWN_SEARCH_PATH, NULL, NULL,
                          &out, &err, &status, &gerr));
    if (g_test_verbose()) {
        g_printerr("%s: %s", name, err);
    }
    g_assert_false(WIFSIGNALED(status));
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 1);
    g_assert(g_str_has_suffix(err, "\n"));
    return err;
}

/*
 * The life of a VM on guest_memfd RAM: migration, dumps, memory hotplug.
 * The guest runs under KVM from the host's guest_memfd; in mode=loop it
 * rewrites part of its memory until told to stop, then checks that it
 * lost nothing.
 */

uint32_t mailbox_readl(QTestState *qts, uint32_t field)
{
    return qtest_readl(qts, GMEM_GUEST_MAILBOX_GPA + field);
}

/* A VM whose RAM is backend @backend (a -object type), running the guest */
QTestState *guest_vm_start(const char *backend, const char *append,
                           const char *log, const char *extra)
{
    return qtest_initf("-accel kvm -cpu max -nodefaults -display none "
                       "-machine q35,memory-backend=m0 -m %dM "
                       "-object %s,id=m0,size=%dM "
                       "-kernel %s -append '%s' "
                       "-chardev file,id=dbg,path=%s "
                       "-device isa-debugcon,iobase=0xe9,chardev=dbg "
                       "-device isa-debug-exit,iobase=0xf4,iosize=4 %s",
                       RAM_MB, backend, RAM_MB, guest_elf(), append, log,
                       extra);
}

void guest_fail(const char *log, const char *what)
{
    g_autofree char *text = read_console(log);

    g_printerr("guest console:\n%s", text);
    g_error("%s", what);
}

/* Wait until the guest in mode=loop has made @n passes */
void wait_loop_passes(QTestState *qts, uint32_t n, const char *log)
{
    gint64 deadline = g_get_monotonic_time() +
                      GUEST_TIMEOUT_S * G_USEC_PER_SEC;

    while (mailbox_readl(qts, GMEM_GUEST_MB_LOOP_PASSES) < n) {
        if (g_get_monotonic_time() > deadline) {
            guest_fail(log, "the guest's loop did not get going");
        }
        g_usleep(20 * 1000);
    }
}

/* Wait for the guest's result: it must have passed */
void wait_guest_pass(QTestState *qts, const char *log)
{
    gint64 deadline = g_get_monotonic_time() +
                      GUEST_TIMEOUT_S * G_USEC_PER_SEC;

    while (mailbox_readl(qts, GMEM_GUEST_MB_GUEST_MAGIC) !=
           GMEM_GUEST_DONE_MAGIC) {
        if (g_get_monotonic_time() > deadline) {
            guest_fail(log, "the guest did not finish");
        }
        g_usleep(20 * 1000);
    }
    if (mailbox_readl(qts, GMEM_GUEST_MB_STATUS) != GMEM_GUEST_ERR_NONE) {
        guest_fail(log, "the guest failed");
    }
}

/*
 * Stop the guest's loop: it checks all it wrote and exits with success;
 * returns the passes it made
 */
unsigned stop_loop(QTestState *qts, const char *log)
{
    char *text;
    unsigned passes = 0;

    qtest_writel(qts, GMEM_GUEST_MAILBOX_GPA + GMEM_GUEST_MB_LOOP_CMD,
                 GMEM_GUEST_LOOP_STOP);
    qtest_set_expected_status(qts, GMEM_GUEST_STATUS_PASS);
    qtest_wait_qemu(qts);
    text = read_console(log);
    if (g_test_verbose()) {
        g_printerr("%s", text);
    }
    g_assert(sscanf(strstr(text, "gmem-guest: loop data verified") ?: "",
                    "gmem-guest: loop data verified after %u", &passes) == 1);
    g_assert(strstr(text, "gmem-guest: PASS"));
    g_free(text);
    return passes;
}

const char *kvm_model(void)
{
    const char *lib = g_getenv("GMEM_KVM_MODEL");

    return lib ? lib : "tests/qtest/guest-memfd-kvm-model.so";
}

/* The state query-kvm-guest-memfd reports for backend @name */
void check_gmem_backend(QTestState *qts, const char *name,
                        uint64_t shared, uint64_t private)
{
    QDict *resp = qtest_qmp(qts, "{ 'execute': 'query-kvm-guest-memfd' }");
    QList *list = qdict_get_qlist(qdict_get_qdict(resp, "return"),
                                  "backends");
    QListEntry *e;
    int found = 0;

    QLIST_FOREACH_ENTRY(list, e) {
        QDict *b = qobject_to(QDict, qlist_entry_obj(e));

        if (g_str_equal(qdict_get_str(b, "name"), name)) {
            g_assert_cmpuint(qdict_get_uint(b, "shared"), ==, shared);
            g_assert_cmpuint(qdict_get_uint(b, "private"), ==, private);
            g_assert_cmpuint(qdict_get_uint(b, "conversions"), ==, 0);
            g_assert_cmpuint(qdict_get_uint(b, "failures"), ==, 0);
            found++;
        }
    }
    g_assert_cmpint(found, ==, 1);
    qobject_unref(resp);
}

/*
 * Minimal firmware images for the SEV-SNP and TDX launches (and their
 * refusals).  The SEV-SNP image is a minimal OVMF image: the GUIDed
 * table with the SEV information block and the SEV metadata (zero,
 * secrets and CPUID pages), and a reset vector that halts.
 */
static const struct {
    uint32_t base, len, type;
} snp_metadata[] = {
    { 0x800000, 0x9000, 1 },    /* SNP_SEC_MEM: a zero page */
    { 0x809000, 0x1000, 2 },    /* SNP_SECRETS */
    { 0x80a000, 0x1000, 3 },    /* CPUID */
    { 0x80b000, 0x2000, 1 },
};

static void put_guid(uint8_t *p, const char *guid)
{
    unsigned a, b, c, d[8];

    g_assert(sscanf(guid, "%8x-%4x-%4x-%2x%2x-%2x%2x%2x%2x%2x%2x", &a, &b,
                    &c, &d[0], &d[1], &d[2], &d[3], &d[4], &d[5], &d[6],
                    &d[7]) == 11);
    stl_le_p(p, a);
    stw_le_p(p + 4, b);
    stw_le_p(p + 6, c);
    for (int i = 0; i < 8; i++) {
        p[8 + i] = d[i];
    }
}

/* Put a GUIDed table entry whose end is at @end; returns its start */
static uint8_t *put_entry(uint8_t *end, const char *guid, uint32_t value)
{
    put_guid(end - 16, guid);
    stw_le_p(end - 18, 4 + 18);
    stl_le_p(end - 22, value);
    return end - 22;
}

/* An image with a reset vector that halts, and room for metadata */
static uint8_t *fw_image(void)
{
    uint8_t *fw = g_malloc(SNP_FW_SIZE);

    for (int i = 0; i < SNP_FW_SIZE; i++) {
        fw[i] = i * 7 + 3;
    }
    /* the reset vector: hlt; jmp $-1 */
    memset(fw + SNP_FW_SIZE - 16, 0, 16);
    memcpy(fw + SNP_FW_SIZE - 16, "\xf4\xeb\xfd", 3);
    return fw;
}

uint8_t *snp_firmware(void)
{
    uint8_t *fw = fw_image();
    uint8_t *md = fw + SNP_FW_SIZE - 0x1000;
    uint8_t *end = fw + SNP_FW_SIZE - 32;
    uint8_t *p;

    /* the SEV metadata, 4 KiB before the end */
    memcpy(md, "ASEV", 4);
    stl_le_p(md + 4, 16 + 12 * ARRAY_SIZE(snp_metadata));
    stl_le_p(md + 8, 1);
    stl_le_p(md + 12, ARRAY_SIZE(snp_metadata));
    for (int i = 0; i < ARRAY_SIZE(snp_metadata); i++) {
        stl_le_p(md + 16 + 12 * i, snp_metadata[i].base);
        stl_le_p(md + 20 + 12 * i, snp_metadata[i].len);
        stl_le_p(md + 24 + 12 * i, snp_metadata[i].type);
    }

    /* the GUIDed table, which ends 32 bytes before the end of the image */
    put_guid(end - 16, "96b582de-1fb2-45f7-baea-a366c55a082d");
    stw_le_p(end - 18, 2 * 22 + 18);
    p = put_entry(end - 18, "00f771de-1a7e-4fcb-890e-68c77e2fb44e",
                  0xffff0000);
    put_entry(p, "dc886566-984a-4798-a75e-5585a7bf67cc", 0x1000);
    return fw;
}

/*
 * A minimal TDVF image: the firmware volume is the whole image, mapped
 * below 4 GiB where it is measured; hand-off blocks and temporary memory
 * are in RAM.
 */
uint8_t *tdx_firmware(bool bfv_moved)
{
    struct {
        uint32_t data_offset, data_size;
        uint64_t gpa, size;
        uint32_t type, attributes;
    } sections[] = {
        { 0, SNP_FW_SIZE, SNP_FW_GPA, SNP_FW_SIZE, 0, 1 },  /* BFV, MR_EXTEND */
        { 0, 0, TDX_HOB_GPA, 0x2000, 2, 0 },                /* TD_HOB */
        { 0, 0, TDX_TEMP_GPA, 0x9000, 3, 0 },               /* TEMP_MEM */
    };
    uint8_t *fw = fw_image();
    uint8_t *md = fw + SNP_FW_SIZE - 0x1000;
    uint8_t *end = fw + SNP_FW_SIZE - 32;

    stl_le_p(md, 0x46564454);   /* "TDVF" */
    if (bfv_moved) {
        /* The volume's data in the image is not where it is measured */
        sections[0].data_offset = 0x1000;
        sections[0].data_size = sections[0].size = SNP_FW_SIZE - 0x2000;
    }
    stl_le_p(md + 4, 16 + 32 * ARRAY_SIZE(sections));
    stl_le_p(md + 8, 1);
    stl_le_p(md + 12, ARRAY_SIZE(sections));
    for (int i = 0; i < ARRAY_SIZE(sections); i++) {
        uint8_t *e = md + 16 + 32 * i;

        stl_le_p(e, sections[i].data_offset);
        stl_le_p(e + 4, sections[i].data_size);
        stq_le_p(e + 8, sections[i].gpa);
        stq_le_p(e + 16, sections[i].size);
        stl_le_p(e + 24, sections[i].type);
        stl_le_p(e + 28, sections[i].attributes);
    }
    put_guid(end - 16, "96b582de-1fb2-45f7-baea-a366c55a082d");
    stw_le_p(end - 18, 22 + 18);
    put_entry(end - 18, "e47a6535-984a-4798-865e-4685a7bf8ec2", 0x1000);
    return fw;
}

/*
 * The C-bit position QEMU compares the cbitpos property with: CPUID
 * 0x8000001f of the host, which QEMU reports when they differ.  A
 * memory backend that is not guest_memfd makes QEMU exit when they do not.
 */
unsigned host_cbitpos(void)
{
    static int cbitpos = -1;
    g_autofree char *preload = NULL;
    g_autofree char *cmd = NULL;
    g_autofree char *err = NULL;
    g_auto(GStrv) argv = NULL;
    g_auto(GStrv) envp = NULL;
    const char *host;
    int status;

    if (cbitpos >= 0) {
        return cbitpos;
    }
    preload = g_canonicalize_filename(kvm_model(), NULL);
    envp = g_environ_setenv(g_get_environ(), "LD_PRELOAD", preload, true);
    envp = g_environ_setenv(envp, "GMEM_KVM_MODEL_SNP", "1", true);
    envp = g_environ_setenv(envp, "GMEM_KVM_MODEL_INPLACE", "v8", true);
    cmd = g_strdup_printf("%s -accel kvm -nodefaults -display none -m 32M "
                          "-object sev-snp-guest,id=sev0,cbitpos=63,"
                          "reduced-phys-bits=1,convert-in-place=on "
                          "-object memory-backend-memfd,id=m0,size=32M "
                          "-machine q35,confidential-guest-support=sev0,"
                          "memory-backend=m0", g_getenv("QTEST_QEMU_BINARY"));
    g_assert(g_shell_parse_argv(cmd, NULL, &argv, NULL));
    g_assert(g_spawn_sync(NULL, argv, envp, G_SPAWN_STDOUT_TO_DEV_NULL, NULL,
                          NULL, NULL, &err, &status, NULL));
    host = strstr(err, "cbitpos check failed, host '");
    cbitpos = host ? atoi(host + strlen("cbitpos check failed, host '")) :
                     63;
    return cbitpos;
}

/* The guest-physical address of pc-dimm @id */
uint64_t dimm_addr(QTestState *qts, const char *id)
{
    QDict *resp = qtest_qmp(qts, "{ 'execute': 'query-memory-devices' }");
    QListEntry *e;
    uint64_t addr = 0;

    QLIST_FOREACH_ENTRY(qdict_get_qlist(resp, "return"), e) {
        QDict *d = qdict_get_qdict(qobject_to(QDict, qlist_entry_obj(e)),
                                   "data");

        if (g_str_equal(qdict_get_str(d, "id"), id)) {
            addr = qdict_get_uint(d, "addr");
        }
    }
    qobject_unref(resp);
    g_assert(addr);
    return addr;
}

uint32_t pci_cfg_readl(QTestState *qts, int devfn, int offset)
{
    qtest_outl(qts, 0xcf8, 0x80000000 | devfn << 8 | offset);
    return qtest_inl(qts, 0xcfc);
}

void pci_cfg_writel(QTestState *qts, int devfn, int offset,
                    uint32_t val)
{
    qtest_outl(qts, 0xcf8, 0x80000000 | devfn << 8 | offset);
    qtest_outl(qts, 0xcfc, val);
}

/*
 * Reset the legacy virtio device at I/O port @io and lay out its queue 0
 * at @ring, zeroing the rings when @zero: returns the address of the
 * available ring, and that of the used ring in *@used
 */
uint64_t virtio_legacy_queue(QTestState *qts, uint16_t io, uint64_t ring,
                             bool zero, uint64_t *used)
{
    uint16_t num;
    uint64_t avail;

    qtest_outb(qts, io + VIRTIO_PCI_STATUS, 0);
    qtest_outb(qts, io + VIRTIO_PCI_STATUS, 1 | 2);   /* ACK, DRIVER */
    qtest_outl(qts, io + VIRTIO_PCI_GUEST_FEATURES, 0);
    qtest_outw(qts, io + VIRTIO_PCI_QUEUE_SEL, 0);
    num = qtest_inw(qts, io + VIRTIO_PCI_QUEUE_NUM);
    g_assert_cmpint(num, >, 0);
    avail = ring + 16 * num;
    *used = ROUND_UP(avail + 4 + 2 * num + 2, VRING_ALIGN);
    if (zero) {
        g_autofree uint8_t *buf = g_malloc0(*used + VRING_ALIGN - ring);

        qtest_memwrite(qts, ring, buf, *used + VRING_ALIGN - ring);
    }
    return avail;
}

/*
 * Make the chain at descriptor 0 available through the available ring at
 * @avail (unless @avail is 0: the rings are not the host's to write), give
 * the device its queue 0 at @ring, and kick it
 */
void virtio_legacy_kick(QTestState *qts, uint16_t io, uint64_t ring,
                        uint64_t avail)
{
    if (avail) {
        qtest_writew(qts, avail + 4, 0);                /* ring[0] */
        qtest_writew(qts, avail + 2, 1);                /* idx */
    }
    qtest_outl(qts, io + VIRTIO_PCI_QUEUE_PFN, ring / VRING_ALIGN);
    qtest_outb(qts, io + VIRTIO_PCI_STATUS, 1 | 2 | 4);   /* DRIVER_OK */
    qtest_outw(qts, io + VIRTIO_PCI_QUEUE_NOTIFY, 0);
}

/*
 * Reset the legacy virtio device at I/O port @io and give it queue 0 at
 * @ring with one device-writable buffer at @buf; returns the address of
 * the used ring
 */
uint64_t virtio_legacy_start(QTestState *qts, uint16_t io,
                             uint64_t ring, uint64_t buf,
                             bool ring_shared)
{
    uint64_t avail, used;

    avail = virtio_legacy_queue(qts, io, ring, ring_shared, &used);
    if (ring_shared) {
        qtest_writeq(qts, ring, buf);                   /* desc[0] */
        qtest_writel(qts, ring + 8, BUF_LEN);
        qtest_writew(qts, ring + 12, VRING_DESC_F_WRITE);
    }
    virtio_legacy_kick(qts, io, ring, ring_shared ? avail : 0);
    return used;
}
