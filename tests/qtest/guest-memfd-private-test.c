/*
 * QTest for memory-backend-guest-memfd: private memory
 *
 * Memory the host must not touch: the data a software-protected guest
 * and the host share through one guest_memfd, private memory
 * (init-shared=off) that a VM cannot convert, and each way the host
 * (monitor, qtest, gdbstub, dumps, migration, devices) reaches private
 * memory failing, with QEMU answering after each.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include "qemu/units.h"
#include "qemu/bswap.h"
#include "libqtest.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "hw/pci/pci_regs.h"
#include "guest-memfd-util.h"
#include "gmem-guest/gmem-guest.h"

#define HOST_DATA_LEN   (256 * KiB)

/*
 * One backing: the host writes a pattern before the guest runs and the
 * guest verifies it; the guest writes one and the host reads it back.
 * QEMU's RAM mapping is the guest_memfd that KVM runs the guest from.
 */
static void test_shared_data(void)
{
    g_autofree char *dir = test_dir_new();
    g_autofree char *log = g_build_filename(dir, "console", NULL);
    g_autofree char *extra = NULL;
    g_autofree uint32_t *buf = g_malloc(GMEM_GUEST_GUEST_DATA_SIZE);
    uint64_t rss_kb = 0, inode;
    uint32_t magic = 0, seed = 0x600d5eed;
    QTestState *qts;
    gint64 deadline;

    if (!have_kvm()) {
        return;
    }
    if (!have_guest()) {
        return;
    }
    extra = g_strdup_printf("-S -object sw-protected-guest,id=swp0 "
                            "-kernel %s -append 'mode=halt mb=1' "
                            "-chardev file,id=dbg,path=%s "
                            "-device isa-debugcon,iobase=0xe9,chardev=dbg",
                            guest_elf(), log);
    qts = start_vm("q35", "", extra);
    assert_kvm_accel(qts);

    inode = find_gmem_mapping(qtest_pid(qts), RAM_MB * MiB, &rss_kb);
    g_assert(gmem_fd_open(qtest_pid(qts), inode));

    for (uint32_t i = 0; i < HOST_DATA_LEN / 4; i++) {
        buf[i] = cpu_to_le32(gmem_guest_pattern(GMEM_GUEST_HOST_DATA_GPA +
                                                i * 4, seed));
    }
    qtest_memwrite(qts, GMEM_GUEST_HOST_DATA_GPA, buf, HOST_DATA_LEN);
    qtest_writel(qts, GMEM_GUEST_MAILBOX_GPA + GMEM_GUEST_MB_HOST_SEED, seed);
    qtest_writel(qts, GMEM_GUEST_MAILBOX_GPA + GMEM_GUEST_MB_HOST_LEN,
                 HOST_DATA_LEN);
    qtest_writel(qts, GMEM_GUEST_MAILBOX_GPA + GMEM_GUEST_MB_HOST_MAGIC,
                 GMEM_GUEST_HOST_MAGIC);
    qtest_qmp_assert_success(qts, "{ 'execute': 'cont' }");

    deadline = g_get_monotonic_time() + GUEST_TIMEOUT_S * G_USEC_PER_SEC;
    while (g_get_monotonic_time() < deadline) {
        magic = qtest_readl(qts, GMEM_GUEST_MAILBOX_GPA +
                            GMEM_GUEST_MB_GUEST_MAGIC);
        if (magic == GMEM_GUEST_DONE_MAGIC) {
            break;
        }
        g_usleep(100 * 1000);
    }
    if (magic != GMEM_GUEST_DONE_MAGIC ||
        qtest_readl(qts, GMEM_GUEST_MAILBOX_GPA + GMEM_GUEST_MB_STATUS)) {
        g_autofree char *text = read_console(log);

        g_printerr("guest console:\n%s", text);
    }
    g_assert_cmphex(magic, ==, GMEM_GUEST_DONE_MAGIC);
    g_assert_cmpint(qtest_readl(qts, GMEM_GUEST_MAILBOX_GPA +
                                GMEM_GUEST_MB_STATUS), ==, GMEM_GUEST_ERR_NONE);
    g_assert_cmpint(qtest_readl(qts, GMEM_GUEST_MAILBOX_GPA +
                                GMEM_GUEST_MB_HOST_CHECKED), ==, 1);

    /* On this kernel, neither the legacy nor the in-place path converted */
    check_gmem_backend(qts, "m0", RAM_MB * MiB, 0);

    /* What the guest wrote, read back through QEMU's mapping */
    seed = qtest_readl(qts, GMEM_GUEST_MAILBOX_GPA + GMEM_GUEST_MB_GUEST_SEED);
    g_assert_cmpint(qtest_readl(qts, GMEM_GUEST_MAILBOX_GPA +
                                GMEM_GUEST_MB_GUEST_LEN), ==,
                    GMEM_GUEST_GUEST_DATA_SIZE);
    qtest_memread(qts, GMEM_GUEST_GUEST_DATA_GPA, buf,
                  GMEM_GUEST_GUEST_DATA_SIZE);
    for (uint32_t i = 0; i < GMEM_GUEST_GUEST_DATA_SIZE / 4; i++) {
        uint32_t addr = GMEM_GUEST_GUEST_DATA_GPA + i * 4;

        if (le32_to_cpu(buf[i]) != gmem_guest_pattern(addr, seed)) {
            g_error("guest data at 0x%x: 0x%x, expected 0x%x", addr,
                    le32_to_cpu(buf[i]), gmem_guest_pattern(addr, seed));
        }
    }
    qtest_quit(qts);
    test_dir_remove(dir);
}

/*
 * Private RAM on a VM that cannot convert it (this host; SEV-SNP, TDX
 * and software-protected VMs convert): a warning when it is created, and
 * when the guest stops on it, a line that says why before KVM's dump.
 */
static void test_init_private_run(void)
{
    g_autofree char *cmd = NULL;
    g_auto(GStrv) argv = NULL;
    GString *err = g_string_new("");
    GPid pid;
    int errfd, status;
    gint64 end;

    if (!have_kvm()) {
        g_string_free(err, true);
        return;
    }
    cmd = g_strdup_printf("%s -accel kvm -cpu max -nodefaults -display none "
                          "-machine q35,memory-backend=m0 -m 32M -object "
                          "memory-backend-guest-memfd,id=m0,size=32M,"
                          "init-shared=off", g_getenv("QTEST_QEMU_BINARY"));
    g_assert(g_shell_parse_argv(cmd, NULL, &argv, NULL));
    g_assert(g_spawn_async_with_pipes(NULL, argv, NULL,
                                      G_SPAWN_DO_NOT_REAP_CHILD |
                                      G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL,
                                      &pid, NULL, NULL, &errfd, NULL));
    g_assert(fcntl(errfd, F_SETFL, O_NONBLOCK) == 0);
    end = g_get_monotonic_time() + GUEST_TIMEOUT_S * G_USEC_PER_SEC;
    while (!strstr(err->str, "the guest stopped where it needs it\n") &&
           g_get_monotonic_time() < end) {
        char buf[4096];
        ssize_t n = read(errfd, buf, sizeof(buf));

        if (n > 0) {
            g_string_append_len(err, buf, n);
        } else {
            g_usleep(50 * 1000);
        }
    }
    kill(pid, SIGKILL);
    g_assert(waitpid(pid, &status, 0) == pid);
    g_spawn_close_pid(pid);
    close(errfd);
    if (g_test_verbose()) {
        g_printerr("%s", err->str);
    }
    g_assert(g_str_has_prefix(err->str, "qemu-system-x86_64: warning: "
                              "memory 'm0' is private (init-shared=off) and "
                              "this VM cannot convert it: a guest cannot run "
                              "from it, nor QEMU read it\n"));
    /*
     * after an internal error (Linux 6.18) or a private memory fault that
     * QEMU cannot resolve (kernels with per-file attributes)
     */
    g_assert(strstr(err->str, "qemu-system-x86_64: memory 'm0' is private "
                    "(init-shared=off) and this VM cannot convert it: the "
                    "guest stopped where it needs it\n"));
    g_string_free(err, true);
}

/* One gdb remote protocol exchange: send $@cmd, return the reply */
static char *gdb_exchange(int fd, const char *cmd)
{
    g_autofree char *packet = NULL;
    GString *reply = g_string_new("");
    unsigned sum = 0;
    bool in_packet = false;
    char c;

    for (const char *p = cmd; *p; p++) {
        sum += (unsigned char)*p;
    }
    packet = g_strdup_printf("$%s#%02x", cmd, sum & 0xff);
    g_assert_cmpint(write(fd, packet, strlen(packet)), ==, strlen(packet));
    while (read(fd, &c, 1) == 1) {
        if (c == '$') {
            in_packet = true;
        } else if (c == '#' && in_packet) {
            break;
        } else if (in_packet) {
            g_string_append_c(reply, c);
        }
    }
    return g_string_free(reply, false);
}

static void assert_alive(QTestState *qts)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-status' }");

    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(rsp, "return"), "status"),
                    ==, "prelaunch");
    qobject_unref(rsp);
}

/*
 * Host accesses to private memory.  With init-shared=off every page of
 * the backend is private, and this host's kernel makes QEMU's mapping of
 * it fault (SIGBUS) on access.  Each way the host reaches guest memory
 * fails or skips it, and QEMU answers after each: it has not faulted.
 */
static void test_private_host_paths(void)
{
    g_autofree char *dir = NULL;
    g_autofree char *gdb = NULL;
    g_autofree char *file = NULL;
    g_autofree char *extra = NULL;
    g_autofree char *reply = NULL;
    g_autofree char *protocol = NULL;
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    struct stat st;
    QTestState *qts;
    QDict *rsp;
    char *out;
    int fd;

    if (!have_kvm()) {
        return;
    }
    dir = test_dir_new();
    gdb = g_build_filename(dir, "gdb", NULL);
    file = g_build_filename(dir, "mem", NULL);
    extra = g_strdup_printf("-S -gdb unix:%s,server=on,wait=off", gdb);
    qts = start_vm("q35", ",init-shared=off", extra);

    /* the monitor: physical and virtual reads, saves */
    out = qtest_hmp(qts, "xp /4x 0x100000");
    g_assert(strstr(out, "Cannot access memory"));
    g_free(out);
    assert_alive(qts);
    out = qtest_hmp(qts, "x /4x 0x100000");
    g_assert(strstr(out, "Cannot access memory"));
    g_free(out);
    assert_alive(qts);
    out = qtest_hmp(qts, "memsave 0x100000 4096 \"%s\"", file);
    g_assert(strstr(out, "Invalid addr"));
    g_free(out);
    assert_alive(qts);
    rsp = qtest_qmp(qts, "{ 'execute': 'pmemsave', 'arguments': { "
                    "'val': 1048576, 'size': 4096, 'filename': %s } }", file);
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(rsp, "error"), "desc"), ==,
                    "guest memory at 0x100000+0x400 cannot be read by the "
                    "host");
    qobject_unref(rsp);
    assert_alive(qts);
    /* ...also where the piece read is in part no memory at all */
    rsp = qtest_qmp(qts, "{ 'execute': 'pmemsave', 'arguments': { "
                    "'val': %d, 'size': 1024, 'filename': %s } }",
                    RAM_MB * 1024 * 1024 - 512, file);
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(rsp, "error"), "desc"), ==,
                    "guest memory at 0x1fffe00+0x400 cannot be read by the "
                    "host");
    qobject_unref(rsp);
    assert_alive(qts);

    /*
     * qtest itself: reads and writes that fail, not fault; a read gives
     * zeros, as a read of nothing does (qtest's own default is all ones)
     */
    g_assert_cmphex(qtest_readl(qts, 0x100000), ==, 0);
    qtest_writel(qts, 0x100000, 0x12345678);
    g_assert_cmphex(qtest_readl(qts, 0x100000), ==, 0);
    g_assert_cmphex(qtest_readq(qts, 0x1000), ==, 0);
    assert_alive(qts);

    /* the gdbstub */
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    g_assert(fd >= 0);
    g_strlcpy(sun.sun_path, gdb, sizeof(sun.sun_path));
    g_assert(connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0);
    reply = gdb_exchange(fd, "m100000,10");
    g_assert(reply[0] == 'E');
    close(fd);
    assert_alive(qts);

    /* a dump leaves private memory out: it holds the firmware only */
    protocol = g_strdup_printf("file:%s", file);
    qtest_qmp_assert_success(qts, "{ 'execute': 'dump-guest-memory', "
                             "'arguments': { 'paging': false, "
                             "'protocol': %s } }", protocol);
    g_assert(stat(file, &st) == 0);
    g_assert_cmpint(st.st_size, <, MiB);
    assert_alive(qts);

    /* migration is refused */
    rsp = qtest_qmp(qts, "{ 'execute': 'migrate', 'arguments': { "
                    "'uri': 'exec:cat >/dev/null' } }");
    g_assert(qdict_haskey(rsp, "error"));
    qobject_unref(rsp);
    assert_alive(qts);

    check_gmem_backend(qts, "m0", 0, RAM_MB * MiB);
    qtest_quit(qts);
    test_dir_remove(dir);
}

static bool virtio_broken(QTestState *qts)
{
    QDict *resp = qtest_qmp(qts, "{ 'execute': 'x-query-virtio-status', "
                            "'arguments': { 'path': "
                            "'/machine/peripheral/rng0/virtio-backend' } }");
    bool broken = qdict_get_bool(qdict_get_qdict(resp, "return"), "broken");

    qobject_unref(resp);
    return broken;
}

/*
 * A device's rings and buffers in private memory.  The VM's RAM is shared
 * guest_memfd, and a DIMM all private guest_memfd (init-shared=off: the
 * host's kernel makes QEMU's mapping of it fault).  With the guest
 * running, the test drives a legacy virtio-rng as a guest driver would:
 * a buffer in shared memory is filled; a buffer in private memory breaks
 * the device, as DMA to unassigned memory does; a ring in private memory
 * cannot be read.  QEMU answers after each, and the guest, which ran all
 * the while, has lost nothing.
 */
static void test_private_virtio(void)
{
    g_autofree char *dir = NULL;
    g_autofree char *log = NULL;
    g_autofree char *extra = NULL;
    QTestState *qts;
    uint64_t priv, used;
    uint16_t io;
    gint64 deadline;

    if (!have_kvm()) {
        return;
    }
    if (!have_guest()) {
        return;
    }
    dir = test_dir_new();
    log = g_build_filename(dir, "console", NULL);
    extra = g_strdup_printf("-m %dM,slots=1,maxmem=1G "
                            "-object memory-backend-guest-memfd,id=priv,"
                            "size=2M,init-shared=off "
                            "-device pc-dimm,id=dimm0,memdev=priv "
                            "-device virtio-rng-pci,id=rng0,"
                            "disable-modern=on,addr=04.0", RAM_MB);
    qts = guest_vm_start("memory-backend-guest-memfd",
                         "mode=loop loop=64 mb=0", log, extra);
    /* the firmware has set up PCI: the guest is running */
    wait_loop_passes(qts, 1, log);
    priv = dimm_addr(qts, "dimm0");
    check_gmem_backend(qts, "priv", 0, 2 * MiB);

    io = pci_cfg_readl(qts, VIRTIO_DEVFN, PCI_BASE_ADDRESS_0) &
         PCI_BASE_ADDRESS_IO_MASK;
    g_assert(io);
    pci_cfg_writel(qts, VIRTIO_DEVFN, PCI_COMMAND,
                   PCI_COMMAND_IO | PCI_COMMAND_MASTER);

    /* shared ring, shared buffer: the device fills it */
    used = virtio_legacy_start(qts, io, RING_GPA, BUF_GPA, true);
    deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    while (qtest_readw(qts, used + 2) != 1) {
        g_assert(g_get_monotonic_time() < deadline);
        g_usleep(10 * 1000);
    }
    g_assert_cmpint(qtest_readl(qts, used + 8), ==, BUF_LEN);
    g_assert_false(virtio_broken(qts));

    /* shared ring, private buffer: the device fails, QEMU does not */
    used = virtio_legacy_start(qts, io, RING_GPA, priv, true);
    deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    while (!virtio_broken(qts)) {
        g_assert(g_get_monotonic_time() < deadline);
        g_usleep(10 * 1000);
    }
    g_assert_cmpint(qtest_readw(qts, used + 2), ==, 0);
    qtest_qmp_assert_success(qts, "{ 'execute': 'query-status' }");

    /* the ring in private memory: it reads as unassigned memory would */
    virtio_legacy_start(qts, io, priv, priv + VRING_ALIGN, false);
    g_usleep(200 * 1000);
    qtest_qmp_assert_success(qts, "{ 'execute': 'query-status' }");
    check_gmem_backend(qts, "priv", 0, 2 * MiB);

    stop_loop(qts, log);
    qtest_quit(qts);
    test_dir_remove(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    qtest_add_func("/guest-memfd/shared-data", test_shared_data);
    qtest_add_func("/guest-memfd/init-private/run", test_init_private_run);
    qtest_add_func("/guest-memfd/private/host-paths",
                   test_private_host_paths);
    qtest_add_func("/guest-memfd/private/virtio", test_private_virtio);
    return g_test_run();
}
