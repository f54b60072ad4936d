/*
 * QTest for memory-backend-guest-memfd
 *
 * The VMs here run under KVM on the host kernel, with all of their RAM in
 * one guest_memfd: the gmem-guest test program boots from it, and data
 * written by either side is read by the other.  Kernels that lack a
 * capability are modelled by guest-memfd-kvm-model.so, an LD_PRELOAD
 * library that hides KVM capabilities, as an older kernel would.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <linux/kvm_para.h>
#include "qemu/units.h"
#include "qemu/bswap.h"
#include "libqtest.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "system/kvm-gmem-uapi.h"
#include "elf.h"
#include "hw/pci/pci_regs.h"
#include "migration/migration-qmp.h"
#include "migration/migration-util.h"
#include "gmem-guest/gmem-guest.h"

#define RAM_MB          32
#define GUEST_TIMEOUT_S 300
#define HOST_DATA_LEN   (256 * KiB)

static const char *guest_elf(void)
{
    const char *elf = g_getenv("GMEM_GUEST_ELF");

    return elf ? elf : "tests/qtest/gmem-guest.elf";
}

/*
 * Skip, saying why, where the test guest was not built (meson builds it
 * only with a compiler for 32-bit x86)
 */
static bool have_guest(void)
{
    if (!g_file_test(guest_elf(), G_FILE_TEST_EXISTS)) {
        g_test_skip("no test guest (gmem-guest.elf): the build found no "
                    "compiler for 32-bit x86 (gcc -m32)");
        return false;
    }
    return true;
}

/* Skip, saying why, unless KVM and a mappable guest_memfd are here */
static bool have_kvm(void)
{
    if (!qtest_has_accel("kvm")) {
        g_test_skip("KVM is not available (/dev/kvm)");
        return false;
    }
    return true;
}

static QTestState *start_vm(const char *machine, const char *backend_opts,
                            const char *extra)
{
    return qtest_initf("-accel kvm -cpu max -nodefaults -display none "
                       "-machine %s,memory-backend=m0 -m %dM "
                       "-object memory-backend-guest-memfd,id=m0,size=%dM%s "
                       "%s",
                       machine, RAM_MB, RAM_MB, backend_opts, extra);
}

static void assert_kvm_accel(QTestState *qts)
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
static bool is_gmem_name(const char *name)
{
    return g_str_equal(name, "anon_inode:[kvm-gmem]") ||
           g_str_has_prefix(name, "/[kvm-gmem]");
}

/*
 * Find QEMU's mapping of guest RAM: the one mapping of the whole size from
 * a guest_memfd.  Returns its inode; its resident size in KiB goes to
 * @rss_kb.
 */
static uint64_t find_gmem_mapping(pid_t pid, uint64_t size, uint64_t *rss_kb)
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

/* Is the file with this inode among QEMU's open guest_memfds? */
static bool gmem_fd_open(pid_t pid, uint64_t inode)
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

static char *read_console(const char *path)
{
    char *text = NULL;

    if (!g_file_get_contents(path, &text, NULL, NULL)) {
        text = g_strdup("(no console output)");
    }
    return text;
}

/* The test guest boots from guest_memfd RAM and exits with success */
static void test_boot(const void *data)
{
    const char *machine = data;
    g_autofree char *dir = g_dir_make_tmp("gmem-XXXXXX", NULL);
    g_autofree char *log = g_build_filename(dir, "console", NULL);
    g_autofree char *text = NULL;
    g_autofree char *extra = NULL;
    QTestState *qts;

    if (!have_kvm()) {
        return;
    }
    if (!have_guest()) {
        return;
    }
    extra = g_strdup_printf("-kernel %s -append 'mode=exit mb=1' "
                            "-chardev file,id=dbg,path=%s "
                            "-device isa-debugcon,iobase=0xe9,chardev=dbg "
                            "-device isa-debug-exit,iobase=0xf4,iosize=4",
                            guest_elf(), log);
    qts = start_vm(machine, "", extra);
    qtest_set_expected_status(qts, GMEM_GUEST_STATUS_PASS);
    qtest_wait_qemu(qts);
    text = read_console(log);
    if (g_test_verbose()) {
        g_printerr("%s", text);
    }
    g_assert(strstr(text, "gmem-guest: RAM test passed"));
    g_assert(strstr(text, "gmem-guest: PASS"));
    qtest_quit(qts);
    unlink(log);
    rmdir(dir);
}

/* The state query-kvm-guest-memfd reports for backend @name */
static void check_gmem_backend(QTestState *qts, const char *name,
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
 * One backing: the host writes a pattern before the guest runs and the
 * guest verifies it; the guest writes one and the host reads it back.
 * QEMU's RAM mapping is the guest_memfd that KVM runs the guest from.
 */
static void test_shared_data(void)
{
    g_autofree char *dir = g_dir_make_tmp("gmem-XXXXXX", NULL);
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
    unlink(log);
    rmdir(dir);
}

/* prealloc=on: every page of the guest_memfd is resident in the mapping */
static void test_prealloc(void)
{
    uint64_t rss_kb = 0;
    QTestState *qts;

    if (!have_kvm()) {
        return;
    }
    qts = start_vm("q35", ",prealloc=on", "-S");
    find_gmem_mapping(qtest_pid(qts), RAM_MB * MiB, &rss_kb);
    g_assert_cmpint(rss_kb, ==, RAM_MB * 1024);
    qtest_quit(qts);

    /* and without it, next to nothing is */
    qts = start_vm("q35", "", "-S");
    find_gmem_mapping(qtest_pid(qts), RAM_MB * MiB, &rss_kb);
    g_assert_cmpint(rss_kb, <, RAM_MB * 1024 / 2);
    qtest_quit(qts);
}

static QDict *query_memdev(QTestState *qts, const char *id)
{
    QDict *resp = qtest_qmp(qts, "{ 'execute': 'query-memdev' }");
    QList *list = qdict_get_qlist(resp, "return");
    QListEntry *e;

    QLIST_FOREACH_ENTRY(list, e) {
        QDict *md = qobject_to(QDict, qlist_entry_obj(e));

        if (g_str_equal(qdict_get_str(md, "id"), id)) {
            qobject_ref(md);
            qobject_unref(resp);
            return md;
        }
    }
    g_assert_not_reached();
}

/* query-memdev, info memdev and qom-get describe the backend */
static void test_query(void)
{
    QTestState *qts;
    QDict *md;
    char *hmp;

    if (!have_kvm()) {
        return;
    }
    qts = start_vm("pc", ",prealloc=on,dump=off", "-S");
    md = query_memdev(qts, "m0");
    g_assert_cmpint(qdict_get_int(md, "size"), ==, RAM_MB * MiB);
    g_assert_true(qdict_get_bool(md, "share"));
    g_assert_false(qdict_get_bool(md, "merge"));
    g_assert_false(qdict_get_bool(md, "dump"));
    g_assert_true(qdict_get_bool(md, "prealloc"));
    g_assert_true(qdict_get_bool(md, "reserve"));
    g_assert_cmpstr(qdict_get_str(md, "policy"), ==, "default");
    qobject_unref(md);

    g_assert_true(qtest_qom_get_bool(qts, "/objects/m0", "init-shared"));
    check_gmem_backend(qts, "m0", RAM_MB * MiB, 0);
    hmp = qtest_hmp(qts, "info memdev");
    g_assert(strstr(hmp, "memory backend: m0"));
    g_assert(strstr(hmp, "share: true"));
    g_free(hmp);
    qtest_quit(qts);
}

/* The NUMA policy reaches the guest_memfd mapping (mbind) */
static void test_policy_bind(void)
{
    QTestState *qts;
    QDict *md;

    if (!have_kvm()) {
        return;
    }
    qts = qtest_initf("-accel kvm -cpu max -nodefaults -display none -S "
                      "-machine q35 -m %dM "
                      "-object memory-backend-guest-memfd,id=m0,size=%dM,"
                      "policy=bind,host-nodes=0,prealloc=on "
                      "-numa node,memdev=m0",
                      RAM_MB, RAM_MB);
    md = query_memdev(qts, "m0");
    g_assert_cmpstr(qdict_get_str(md, "policy"), ==, "bind");
    qobject_unref(md);

    /* what the kernel applies to QEMU's mapping of the file */
    {
        g_autofree char *path = g_strdup_printf("/proc/%d/numa_maps",
                                                qtest_pid(qts));
        g_autofree char *maps = NULL;
        g_auto(GStrv) lines = NULL;
        int found = 0;

        g_assert(g_file_get_contents(path, &maps, NULL, NULL));
        lines = g_strsplit(maps, "\n", -1);
        for (int i = 0; lines[i]; i++) {
            if (strstr(lines[i], "kvm-gmem")) {
                g_assert(strstr(lines[i], " bind:0 "));
                /* preallocated on node 0, and nowhere else */
                g_assert(strstr(lines[i], " N0="));
                g_assert_null(strstr(lines[i], " N1="));
                found++;
            }
        }
        g_assert_cmpint(found, ==, 1);
    }
    qtest_quit(qts);
}

/* init-shared=off creates the file private; nothing touches it */
static void test_init_private(void)
{
    QTestState *qts;

    if (!have_kvm()) {
        return;
    }
    qts = start_vm("q35", ",init-shared=off,prealloc=on", "-S");
    g_assert_false(qtest_qom_get_bool(qts, "/objects/m0", "init-shared"));
    qtest_qmp_assert_success(qts, "{ 'execute': 'query-status' }");
    check_gmem_backend(qts, "m0", 0, RAM_MB * MiB);
    qtest_quit(qts);
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
    dir = g_dir_make_tmp("gmem-XXXXXX", NULL);
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
    unlink(file);
    unlink(gdb);
    rmdir(dir);
}

/* object-add at runtime: creation works, bad properties are refused */
static void test_object_add(void)
{
    QTestState *qts;
    QDict *resp;

    if (!have_kvm()) {
        return;
    }
    qts = qtest_init("-accel kvm -cpu max -nodefaults -display none -S "
                     "-machine q35 -m 16M");
    qtest_qmp_assert_success(qts, "{ 'execute': 'object-add', 'arguments': {"
                             " 'qom-type': 'memory-backend-guest-memfd',"
                             " 'id': 'hp0', 'size': %d } }", 16 << 20);
    resp = qtest_qmp(qts, "{ 'execute': 'object-add', 'arguments': {"
                     " 'qom-type': 'memory-backend-guest-memfd',"
                     " 'id': 'hp1', 'size': %d, 'share': false } }",
                     16 << 20);
    g_assert(strstr(qdict_get_str(qdict_get_qdict(resp, "error"), "desc"),
                    "remove share=off"));
    qobject_unref(resp);
    /* a failed creation leaves QEMU able to create the next one */
    qtest_qmp_assert_success(qts, "{ 'execute': 'object-add', 'arguments': {"
                             " 'qom-type': 'memory-backend-guest-memfd',"
                             " 'id': 'hp2', 'size': %d } }", 16 << 20);
    qtest_qmp_assert_success(qts, "{ 'execute': 'object-del', 'arguments': {"
                             " 'id': 'hp0' } }");
    qtest_quit(qts);
}

/* How many backends query-kvm-guest-memfd reports */
static int count_gmem_backends(QTestState *qts)
{
    QDict *resp = qtest_qmp(qts, "{ 'execute': 'query-kvm-guest-memfd' }");
    QList *list = qdict_get_qlist(qdict_get_qdict(resp, "return"),
                                  "backends");
    int n = qlist_size(list);

    qobject_unref(resp);
    return n;
}

/*
 * A backend added while a migration runs cannot have its CPR blocker
 * (migration blockers cannot be added then): it is refused, nothing of it
 * is left, and it can be added once the migration is over.
 */
static void test_object_add_migrating(void)
{
    QTestState *qts;
    QDict *resp;
    char *status;

    if (!have_kvm()) {
        return;
    }
    qts = start_vm("pc", "", "-S");
    /* at 4 KiB/s, the migration is still running when the test ends it */
    migrate_set_parameter_int(qts, "max-bandwidth", 4096);
    qtest_qmp_assert_success(qts, "{ 'execute': 'migrate', 'arguments': "
                             "{ 'uri': 'exec:cat > /dev/null' } }");
    resp = qtest_qmp(qts, "{ 'execute': 'object-add', 'arguments': {"
                     " 'qom-type': 'memory-backend-guest-memfd',"
                     " 'id': 'm1', 'size': 1048576 } }");
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(resp, "error"), "desc"),
                    ==, "memory-backend-guest-memfd 'm1': disallowing "
                    "migration blocker (migration/snapshot in progress) for: "
                    "Memory region m1 uses guest_memfd, which is not "
                    "supported with CPR.");
    qobject_unref(resp);
    g_assert_cmpint(count_gmem_backends(qts), ==, 1);
    check_gmem_backend(qts, "m0", RAM_MB * MiB, 0);
    status = migrate_query_status(qts);
    g_assert(g_str_equal(status, "setup") || g_str_equal(status, "active"));
    g_free(status);

    migrate_cancel(qts);
    wait_for_migration_status(qts, "cancelled", NULL);
    qtest_qmp_assert_success(qts, "{ 'execute': 'object-add', 'arguments': {"
                             " 'qom-type': 'memory-backend-guest-memfd',"
                             " 'id': 'm1', 'size': 1048576 } }");
    g_assert_cmpint(count_gmem_backends(qts), ==, 2);
    check_gmem_backend(qts, "m1", MiB, 0);
    qtest_quit(qts);
}

static const char *kvm_model(void)
{
    const char *lib = g_getenv("GMEM_KVM_MODEL");

    return lib ? lib : "tests/qtest/guest-memfd-kvm-model.so";
}

/*
 * x86 SMM maps all of RAM in a second address space, but a guest_memfd
 * range can be bound to one memory slot only.  KVM has no SMM on some
 * hosts (this test's model adds it), so the model also keeps the second
 * address space's slots and enforces the binding rule, as the kernel does.
 */
static void test_smm_alias(const void *data)
{
    const char *machine = data;
    g_autofree char *preload = g_canonicalize_filename(kvm_model(), NULL);
    g_autofree char *dir = g_dir_make_tmp("gmem-XXXXXX", NULL);
    g_autofree char *log = g_build_filename(dir, "slots", NULL);
    g_autofree char *m = g_strdup_printf("%s,smm=on", machine);
    g_autofree char *slots = NULL;
    g_auto(GStrv) lines = NULL;
    int smm_ram = 0;
    QTestState *qts;

    if (!have_kvm()) {
        return;
    }
    g_setenv("LD_PRELOAD", preload, true);
    g_setenv("GMEM_KVM_MODEL_SMM", "1", true);
    g_setenv("GMEM_KVM_MODEL_LOG", log, true);
    qts = start_vm(m, "", "-S");
    g_unsetenv("LD_PRELOAD");
    g_unsetenv("GMEM_KVM_MODEL_SMM");
    g_unsetenv("GMEM_KVM_MODEL_LOG");

    qtest_qmp_assert_success(qts, "{ 'execute': 'query-status' }");
    g_assert(g_file_get_contents(log, &slots, NULL, NULL));
    lines = g_strsplit(slots, "\n", -1);
    for (int i = 0; lines[i]; i++) {
        unsigned as, slot, flags;
        unsigned long long gpa, size;
        int fd;

        if (sscanf(lines[i], "as=%u slot=%u flags=0x%x gpa=0x%llx "
                   "size=0x%llx guest_memfd=%d", &as, &slot, &flags, &gpa,
                   &size, &fd) != 6 || !size) {
            continue;
        }
        g_assert_cmpint(as, ==, 1);
        /* the SMM view of RAM reaches it through QEMU's mapping */
        g_assert_false(flags & 4);
        g_assert_cmpint(fd, ==, -1);
        smm_ram += gpa < RAM_MB * MiB;
    }
    g_assert_cmpint(smm_ram, >, 0);
    qtest_quit(qts);
    unlink(log);
    rmdir(dir);
}

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

/* A software-protected VM, on the KVM model */
#define SWPROT_ARGS \
    "-nodefaults -display none -S -m 32M " \
    "-object memory-backend-guest-memfd,id=m0,size=32M " \
    "-object sw-protected-guest,id=swp0 " \
    "-machine q35,memory-backend=m0,confidential-guest-support=swp0"

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

    vm->dir = g_dir_make_tmp("gmem-XXXXXX", NULL);
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

    vm->dir = g_dir_make_tmp("gmem-XXXXXX", NULL);
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

    *result = qtest_readl(vm->qts, r + offsetof(GmemGuestRequest, result));
    return qtest_readl(vm->qts, r + offsetof(GmemGuestRequest, done));
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
    unlink(vm->console);
    if (vm->model_log) {
        unlink(vm->model_log);
    }
    rmdir(vm->dir);
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
    dir = g_dir_make_tmp("gmem-XXXXXX", NULL);
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
    unlink(log);
    rmdir(dir);
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
 * KVM keeps no dirty log for memory slots bound to a guest_memfd (Linux
 * 6.18 refuses KVM_MEM_LOG_DIRTY_PAGES on them), which migration needs:
 * migration is refused with the reason, and the VM runs on.  Measuring
 * the dirty rate from the dirty log, which aborted QEMU, works.
 */
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
#define SNP_FW_SIZE 0x10000
#define SNP_FW_GPA (0x100000000ULL - SNP_FW_SIZE)

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

static uint8_t *snp_firmware(void)
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
#define TDX_HOB_GPA 0x809000
#define TDX_TEMP_GPA 0x800000

static uint8_t *tdx_firmware(bool bfv_moved)
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

static uint64_t fnv(uint64_t h, const void *buf, size_t n)
{
    const uint8_t *b = buf;

    for (size_t i = 0; i < n; i++) {
        h = (h ^ b[i]) * 0x100000001b3ULL;
    }
    return h;
}

#define FNV_INIT UINT64_C(0xcbf29ce484222325)

/*
 * The C-bit position QEMU compares the cbitpos property with: CPUID
 * 0x8000001f of the host, which QEMU reports when they differ.  A
 * memory backend that is not guest_memfd makes QEMU exit when they do not.
 */
static unsigned host_cbitpos(void)
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
    g_autofree char *fw_path = NULL;
    g_autofree uint8_t *fw = snp_firmware();
    g_autofree uint8_t *zeros = g_malloc0(0x9000);
    char cpuid[19], before[19];
    const char *p;
    QTestState *qts;
    QDict *b, *rsp;

    if (!have_kvm()) {
        return;
    }
    dir = g_dir_make_tmp("gmem-XXXXXX", NULL);
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
    unlink(log);
    fw_path = g_build_filename(dir, "fw.bin", NULL);
    unlink(fw_path);
    rmdir(dir);
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
    g_autofree char *dir = g_dir_make_tmp("gmem-XXXXXX", NULL);
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
    unlink(log);
    unlink(fw_path);
    rmdir(dir);
}

/*
 * The life of a VM on guest_memfd RAM: migration, dumps, memory hotplug.
 * The guest runs under KVM from the host's guest_memfd; in mode=loop it
 * rewrites part of its memory until told to stop, then checks that it
 * lost nothing.
 */

static uint32_t mailbox_readl(QTestState *qts, uint32_t field)
{
    return qtest_readl(qts, GMEM_GUEST_MAILBOX_GPA + field);
}

/* A VM whose RAM is backend @backend (a -object type), running the guest */
static QTestState *guest_vm_start(const char *backend, const char *append,
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

static void guest_fail(const char *log, const char *what)
{
    g_autofree char *text = read_console(log);

    g_printerr("guest console:\n%s", text);
    g_error("%s", what);
}

/* Wait until the guest in mode=loop has made @n passes */
static void wait_loop_passes(QTestState *qts, uint32_t n, const char *log)
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
static void wait_guest_pass(QTestState *qts, const char *log)
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
static unsigned stop_loop(QTestState *qts, const char *log)
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

typedef struct MigrateCase {
    const char *src;
    const char *dst;
} MigrateCase;

static const MigrateCase migrate_gmem = {
    "memory-backend-guest-memfd", "memory-backend-guest-memfd"
};
static const MigrateCase migrate_from_memfd = {
    "memory-backend-memfd", "memory-backend-guest-memfd"
};
static const MigrateCase migrate_to_memfd = {
    "memory-backend-guest-memfd", "memory-backend-memfd"
};

/*
 * Precopy live migration while the guest rewrites its memory.  The
 * bandwidth is held low until RAM has been copied twice, so that the
 * guest dirties pages that must be copied again; the guest, stopped on
 * the destination, finds all it wrote on the source.
 */
static void test_migrate(const void *data)
{
    const MigrateCase *c = data;
    g_autofree char *dir = NULL;
    g_autofree char *src_log = NULL;
    g_autofree char *dst_log = NULL;
    g_autofree char *uri = NULL;
    QTestMigrationState src_state = { };
    QTestState *src, *dst;
    unsigned passes;

    if (!have_kvm()) {
        return;
    }
    if (!have_guest()) {
        return;
    }
    dir = g_dir_make_tmp("gmem-XXXXXX", NULL);
    src_log = g_build_filename(dir, "src.log", NULL);
    dst_log = g_build_filename(dir, "dst.log", NULL);
    uri = g_strdup_printf("unix:%s/migsocket", dir);

    src = guest_vm_start(c->src, "mode=loop loop=256 mb=0", src_log, "");
    qtest_qmp_set_event_callback(src, migrate_watch_for_events, &src_state);
    wait_loop_passes(src, 2, src_log);
    dst = guest_vm_start(c->dst, "mode=loop loop=256 mb=0", dst_log,
                         "-incoming defer");
    migrate_incoming_qmp(dst, uri, NULL, "{}");

    migrate_ensure_non_converge(src);
    migrate_qmp(src, dst, uri, NULL, "{}");
    wait_for_migration_pass(src, &src_state);
    migrate_ensure_converge(src);
    wait_for_migration_complete(src);
    g_assert_cmpint(read_ram_property_int(src, "dirty-sync-count"), >=, 3);

    passes = stop_loop(dst, dst_log);
    g_test_message("the guest made %u passes", passes);
    qtest_quit(dst);
    qtest_quit(src);
    unlink(src_log);
    unlink(dst_log);
    rmdir(dir);
}

/*
 * While KVM logs dirty pages, guest_memfd memory slots are registered
 * without their file, and with it again afterwards: calc-dirty-rate
 * measures, and the guest runs on from the file and finds its data.
 */
static void test_dirty_rate(void)
{
    g_autofree char *dir = NULL;
    g_autofree char *log = NULL;
    g_autofree char *slots = NULL;
    g_autofree char *text = NULL;
    g_autofree char *preload = g_canonicalize_filename(kvm_model(), NULL);
    g_auto(GStrv) lines = NULL;
    QTestState *qts;
    QDict *resp, *ret = NULL;
    uint32_t passes;
    int step = 0;

    if (!have_kvm()) {
        return;
    }
    if (!have_guest()) {
        return;
    }
    dir = g_dir_make_tmp("gmem-XXXXXX", NULL);
    log = g_build_filename(dir, "console", NULL);
    slots = g_build_filename(dir, "slots", NULL);
    /* the model models nothing here: it logs the memory slots KVM took */
    g_setenv("LD_PRELOAD", preload, true);
    g_setenv("GMEM_KVM_MODEL_SLOT_LOG", slots, true);
    qts = guest_vm_start("memory-backend-guest-memfd",
                         "mode=loop loop=64 mb=0", log, "");
    g_unsetenv("LD_PRELOAD");
    g_unsetenv("GMEM_KVM_MODEL_SLOT_LOG");
    wait_loop_passes(qts, 1, log);
    qtest_qmp_assert_success(qts, "{ 'execute': 'calc-dirty-rate', "
                             "'arguments': { 'calc-time': 1, "
                             "'mode': 'dirty-bitmap' } }");
    for (int i = 0; i < 100 && !ret; i++) {
        g_usleep(100 * 1000);
        resp = qtest_qmp(qts, "{ 'execute': 'query-dirty-rate' }");
        ret = qdict_get_qdict(resp, "return");
        if (g_str_equal(qdict_get_str(ret, "status"), "measured")) {
            qobject_ref(ret);
        } else {
            ret = NULL;
        }
        qobject_unref(resp);
    }
    /*
     * The guest dirties too few pages for a rate in MiB/s: the test of
     * the dirty log is migration's (test_migrate)
     */
    g_assert(ret);
    qobject_unref(ret);

    /* it goes on from its guest_memfd, and has lost nothing */
    passes = mailbox_readl(qts, GMEM_GUEST_MB_LOOP_PASSES);
    wait_loop_passes(qts, passes + 1, log);
    stop_loop(qts, log);
    qtest_quit(qts);

    /*
     * the guest's RAM slot, bound to its file, was registered again
     * without it while the dirty log was on, then bound again
     */
    g_assert(g_file_get_contents(slots, &text, NULL, NULL));
    lines = g_strsplit(text, "\n", -1);
    for (int i = 0; lines[i]; i++) {
        unsigned as, slot, flags;
        bool bound;

        if (sscanf(lines[i], "as=%u slot=%u flags=0x%x", &as, &slot,
                   &flags) != 3 || as != 0 ||
            !strstr(lines[i], "gpa=0x100000 size=0x1f00000 ")) {
            continue;
        }
        bound = flags & KVM_MEM_GUEST_MEMFD;
        if (bound == !(step % 2)) {
            step++;
        }
    }
    g_assert_cmpint(step, >=, 3);
    unlink(slots);
    unlink(log);
    rmdir(dir);
}

/* Backends that QEMU cannot track are refused, the VM runs on */
static void test_migrate_blocked(void)
{
    QTestState *qts;
    QDict *resp;

    if (!have_kvm()) {
        return;
    }
    qts = start_vm("pc", ",init-shared=off", "-S");
    resp = qtest_qmp(qts, "{ 'execute': 'migrate', 'arguments': "
                     "{ 'uri': 'exec:cat > /dev/null' } }");
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(resp, "error"), "desc"),
                    ==, "memory-backend-guest-memfd 'm0' has init-shared=off: "
                    "QEMU cannot read or track its private pages, so the VM "
                    "cannot be migrated or snapshotted");
    qobject_unref(resp);
    /*
     * Nor can KVM log the guest's writes to it: calc-dirty-rate, which
     * runs in the background, reports that on stderr, and QEMU goes on
     */
    qtest_qmp_assert_success(qts, "{ 'execute': 'calc-dirty-rate', "
                             "'arguments': { 'calc-time': 1, "
                             "'mode': 'dirty-bitmap' } }");
    qtest_qmp_assert_success(qts, "{ 'execute': 'query-status' }");
    qtest_quit(qts);

    /* a backend that cannot be migrated cannot be created if all must be */
    qts = qtest_init("-accel kvm -machine none -only-migratable");
    resp = qtest_qmp(qts, "{ 'execute': 'object-add', 'arguments': "
                     "{ 'qom-type': 'memory-backend-guest-memfd', "
                     "'id': 'm1', 'size': 1048576, 'init-shared': false } }");
    g_assert(strstr(qdict_get_str(qdict_get_qdict(resp, "error"), "desc"),
                    "only-migratable"));
    qobject_unref(resp);
    qtest_qmp_assert_success(qts, "{ 'execute': 'object-add', 'arguments': "
                             "{ 'qom-type': 'memory-backend-guest-memfd', "
                             "'id': 'm2', 'size': 1048576 } }");
    qtest_quit(qts);
}

/* Postcopy is refused up front where RAM is guest_memfd */
static void test_postcopy_refused(void)
{
    QTestState *dst;
    QDict *resp;

    if (!have_kvm()) {
        return;
    }
    dst = start_vm("q35", "", "-incoming defer");
    resp = qtest_qmp(dst, "{ 'execute': 'migrate-set-capabilities', "
                     "'arguments': { 'capabilities': [ { "
                     "'capability': 'postcopy-ram', 'state': true } ] } }");
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(resp, "error"), "desc"),
                    ==, "Postcopy is not supported: RAM block 'm0' is a "
                    "guest_memfd, which userfaultfd cannot fill: back it "
                    "with memory-backend-memfd to use postcopy");
    qobject_unref(resp);
    qtest_qmp_assert_success(dst, "{ 'execute': 'query-status' }");
    qtest_quit(dst);
}

/*
 * cpr-transfer hands guest RAM to a new QEMU process by its file; a
 * guest_memfd belongs to the KVM VM that created it, which the new
 * process does not have, so it is refused with a migration blocker
 */
static void test_cpr_transfer_refused(void)
{
    g_autofree char *dir = g_dir_make_tmp("gmem-XXXXXX", NULL);
    g_autofree char *main_sock = g_build_filename(dir, "main", NULL);
    g_autofree char *cpr_sock = g_build_filename(dir, "cpr", NULL);
    QTestState *qts;
    QDict *resp;

    if (!have_kvm()) {
        rmdir(dir);
        return;
    }
    qts = qtest_initf("-accel kvm -cpu max -nodefaults -display none -S "
                      "-machine q35,memory-backend=m0,aux-ram-share=on "
                      "-m %dM -object memory-backend-guest-memfd,id=m0,"
                      "size=%dM", RAM_MB, RAM_MB);
    migrate_set_parameter_str(qts, "mode", "cpr-transfer");
    resp = qtest_qmp(qts, "{ 'execute': 'migrate', 'arguments': { "
                     "'channels': [ "
                     "{ 'channel-type': 'main', 'addr': { 'transport': "
                     "'socket', 'type': 'unix', 'path': %s } }, "
                     "{ 'channel-type': 'cpr', 'addr': { 'transport': "
                     "'socket', 'type': 'unix', 'path': %s } } ] } }",
                     main_sock, cpr_sock);
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(resp, "error"), "desc"),
                    ==, "Memory region m0 uses guest_memfd, which is not "
                    "supported with CPR.");
    qobject_unref(resp);
    qtest_qmp_assert_success(qts, "{ 'execute': 'query-status' }");
    qtest_quit(qts);
    rmdir(dir);
}

/*
 * dump-guest-memory of guest_memfd RAM: the ELF file holds all of RAM,
 * and in it what the guest wrote
 */
static void test_dump(void)
{
    g_autofree char *dir = NULL;
    g_autofree char *log = NULL;
    g_autofree char *file = NULL;
    g_autofree char *protocol = NULL;
    g_autofree uint8_t *buf = NULL;
    g_autofree uint8_t *mem = NULL;
    const Elf64_Ehdr *eh;
    uint64_t covered = 0, chunk;
    bool found = false;
    uint32_t seed;
    gsize len;
    QTestState *qts;

    if (!have_kvm()) {
        return;
    }
    if (!have_guest()) {
        return;
    }
    dir = g_dir_make_tmp("gmem-XXXXXX", NULL);
    log = g_build_filename(dir, "console", NULL);
    file = g_build_filename(dir, "dump", NULL);
    qts = guest_vm_start("memory-backend-guest-memfd", "mode=halt mb=0", log,
                         "");
    wait_guest_pass(qts, log);
    seed = mailbox_readl(qts, GMEM_GUEST_MB_GUEST_SEED);

    protocol = g_strdup_printf("file:%s", file);
    qtest_qmp_assert_success(qts, "{ 'execute': 'dump-guest-memory', "
                             "'arguments': { 'paging': false, "
                             "'protocol': %s } }", protocol);
    g_assert(g_file_get_contents(file, (char **)&buf, &len, NULL));
    eh = (const Elf64_Ehdr *)buf;
    g_assert(len >= sizeof(*eh) && !memcmp(eh->e_ident, ELFMAG, SELFMAG));
    g_assert_cmpint(eh->e_ident[EI_CLASS], ==, ELFCLASS64);
    g_assert_cmpint(eh->e_phentsize, ==, sizeof(Elf64_Phdr));
    g_assert_cmpint(eh->e_phoff + eh->e_phnum * sizeof(Elf64_Phdr), <=, len);

    mem = g_malloc(4 * KiB);
    for (int i = 0; i < eh->e_phnum; i++) {
        const Elf64_Phdr *ph = (const Elf64_Phdr *)(buf + eh->e_phoff) + i;

        if (ph->p_type != PT_LOAD || ph->p_paddr >= RAM_MB * MiB) {
            continue;
        }
        g_assert_cmpint(ph->p_offset + ph->p_filesz, <=, len);
        g_assert_cmpint(ph->p_paddr + ph->p_filesz, <=, RAM_MB * MiB);
        /* as QEMU's mapping of the file has it, at both ends */
        chunk = MIN(ph->p_filesz, 4 * KiB);
        qtest_memread(qts, ph->p_paddr, mem, chunk);
        g_assert(!memcmp(buf + ph->p_offset, mem, chunk));
        qtest_memread(qts, ph->p_paddr + ph->p_filesz - chunk, mem, chunk);
        g_assert(!memcmp(buf + ph->p_offset + ph->p_filesz - chunk, mem,
                         chunk));
        covered += ph->p_filesz;

        /* and the guest's own data where it wrote it */
        if (ph->p_paddr <= GMEM_GUEST_GUEST_DATA_GPA &&
            ph->p_paddr + ph->p_filesz >= GMEM_GUEST_GUEST_DATA_GPA +
                                          GMEM_GUEST_GUEST_DATA_SIZE) {
            const uint8_t *p = buf + ph->p_offset +
                               GMEM_GUEST_GUEST_DATA_GPA - ph->p_paddr;

            for (uint32_t a = 0; a < GMEM_GUEST_GUEST_DATA_SIZE; a += 4) {
                g_assert_cmphex((uint32_t)ldl_le_p(p + a), ==,
                                gmem_guest_pattern(GMEM_GUEST_GUEST_DATA_GPA +
                                                   a, seed));
            }
            found = true;
        }
    }
    /* all of RAM but the legacy VGA hole, the guest's data among it */
    g_assert_cmpint(covered, >=, (RAM_MB - 1) * MiB);
    g_assert_true(found);
    qtest_quit(qts);
    unlink(file);
    unlink(log);
    rmdir(dir);
}

/* The guest-physical address of pc-dimm @id */
static uint64_t dimm_addr(QTestState *qts, const char *id)
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

/* How many guest_memfds QEMU has open */
static int gmem_fds(pid_t pid)
{
    g_autofree char *dir = g_strdup_printf("/proc/%d/fd", pid);
    GDir *d = g_dir_open(dir, 0, NULL);
    const char *ent;
    int n = 0;

    g_assert(d);
    while ((ent = g_dir_read_name(d))) {
        g_autofree char *fd = g_build_filename(dir, ent, NULL);
        g_autofree char *link = g_file_read_link(fd, NULL);

        n += link && is_gmem_name(link);
    }
    g_dir_close(d);
    return n;
}

#define HP_SIZE         (64 * MiB)
#define ACPI_MHP_BASE   0xa00   /* docs/specs/acpi_mem_hotplug.rst */

/*
 * Memory hotplug of guest_memfd RAM into a running VM: object-add and
 * device_add pc-dimm, then device_del, with the test in the guest's ACPI
 * role (it ejects the DIMM), and object-del.  A guest_memfd the kernel
 * refuses to create (the KVM model fails it) fails object-add alone, and
 * leaves QEMU able to add the next one.
 */
static void test_hotplug(void)
{
    g_autofree char *preload = g_canonicalize_filename(kvm_model(), NULL);
    g_autofree char *dir = NULL;
    g_autofree char *log = NULL;
    g_autofree char *trace = NULL;
    g_autofree char *text = NULL;
    g_autofree char *slot = NULL;
    g_autofree char *extra = NULL;
    g_autofree char *fail = g_strdup_printf("%llu", (unsigned long long)
                                            (HP_SIZE + 2 * MiB));
    QTestState *qts;
    QDict *resp;
    uint64_t addr;
    int fds;

    if (!have_kvm()) {
        return;
    }
    if (!have_guest()) {
        return;
    }
    dir = g_dir_make_tmp("gmem-XXXXXX", NULL);
    log = g_build_filename(dir, "console", NULL);
    trace = g_build_filename(dir, "trace", NULL);
    extra = g_strdup_printf("-m %dM,slots=2,maxmem=1G "
                            "-trace kvm_set_user_memory,file=%s", RAM_MB,
                            trace);
    g_setenv("LD_PRELOAD", preload, true);
    g_setenv("GMEM_KVM_MODEL_CREATE_FAIL", fail, true);
    qts = guest_vm_start("memory-backend-guest-memfd",
                         "mode=loop loop=64 mb=0", log, extra);
    g_unsetenv("LD_PRELOAD");
    g_unsetenv("GMEM_KVM_MODEL_CREATE_FAIL");
    wait_loop_passes(qts, 1, log);
    fds = gmem_fds(qtest_pid(qts));

    /* the kernel refuses the file: object-add fails, and only it */
    resp = qtest_qmp(qts, "{ 'execute': 'object-add', 'arguments': {"
                     " 'qom-type': 'memory-backend-guest-memfd',"
                     " 'id': 'hp0', 'size': %llu } }",
                     (unsigned long long)HP_SIZE + 2 * MiB);
    g_assert(strstr(qdict_get_str(qdict_get_qdict(resp, "error"), "desc"),
                    "Cannot allocate memory"));
    qobject_unref(resp);
    g_assert_cmpint(gmem_fds(qtest_pid(qts)), ==, fds);

    qtest_qmp_assert_success(qts, "{ 'execute': 'object-add', 'arguments': {"
                             " 'qom-type': 'memory-backend-guest-memfd',"
                             " 'id': 'hp0', 'size': %llu } }",
                             (unsigned long long)HP_SIZE);
    qtest_qmp_assert_success(qts, "{ 'execute': 'device_add', 'arguments': {"
                             " 'driver': 'pc-dimm', 'id': 'dimm0',"
                             " 'memdev': 'hp0' } }");
    g_assert_cmpint(gmem_fds(qtest_pid(qts)), >, fds);
    addr = dimm_addr(qts, "dimm0");
    /* QEMU reaches the new memory through its mapping of the file */
    qtest_writeq(qts, addr, 0x0123456789abcdefULL);
    qtest_writeq(qts, addr + HP_SIZE - 8, 0xfedcba9876543210ULL);
    g_assert_cmphex(qtest_readq(qts, addr), ==, 0x0123456789abcdefULL);
    g_assert_cmphex(qtest_readq(qts, addr + HP_SIZE - 8), ==,
                    0xfedcba9876543210ULL);
    /* the backend is in use */
    resp = qtest_qmp(qts, "{ 'execute': 'object-del', "
                     "'arguments': { 'id': 'hp0' } }");
    g_assert(strstr(qdict_get_str(qdict_get_qdict(resp, "error"), "desc"),
                    "in use"));
    qobject_unref(resp);

    /* unplug: the guest's ACPI code would eject the DIMM, as here */
    qtest_qmp_assert_success(qts, "{ 'execute': 'device_del', "
                             "'arguments': { 'id': 'dimm0' } }");
    qtest_outl(qts, ACPI_MHP_BASE, 0);
    qtest_outb(qts, ACPI_MHP_BASE + 0x14, 1 << 3);
    qtest_qmp_eventwait(qts, "DEVICE_DELETED");
    qtest_qmp_assert_success(qts, "{ 'execute': 'object-del', "
                             "'arguments': { 'id': 'hp0' } }");
    /* the file goes with the RAM block, after an RCU grace period */
    for (int i = 0; i < 100 && gmem_fds(qtest_pid(qts)) != fds; i++) {
        g_usleep(50 * 1000);
    }
    g_assert_cmpint(gmem_fds(qtest_pid(qts)), ==, fds);

    /* the guest ran on all the while, and lost nothing */
    stop_loop(qts, log);
    qtest_quit(qts);

    /* KVM bound the DIMM's memory slot to its guest_memfd, then dropped it */
    g_assert(g_file_get_contents(trace, &text, NULL, NULL));
    slot = g_strdup_printf("flags=0x4 gpa=0x%" PRIx64 " size=0x%llx ", addr,
                           (unsigned long long)HP_SIZE);
    g_assert(strstr(text, slot));
    g_free(slot);
    slot = g_strdup_printf("gpa=0x%" PRIx64 " size=0x0 ", addr);
    g_assert(strstr(text, slot));
    unlink(trace);
    unlink(log);
    rmdir(dir);
}

/* Legacy virtio-pci (docs: the virtio 0.9.5 specification) */
#define VIRTIO_DEVFN            (4 << 3)    /* addr=04.0 */
#define VIRTIO_PCI_GUEST_FEATURES 0x04
#define VIRTIO_PCI_QUEUE_PFN    0x08
#define VIRTIO_PCI_QUEUE_NUM    0x0c
#define VIRTIO_PCI_QUEUE_SEL    0x0e
#define VIRTIO_PCI_QUEUE_NOTIFY 0x10
#define VIRTIO_PCI_STATUS       0x12
#define VRING_DESC_F_NEXT       1
#define VRING_DESC_F_WRITE      2
#define VRING_ALIGN             4096
#define RING_GPA                0x1400000   /* shared, past the guest's */
#define BUF_GPA                 0x1500000
#define BUF_LEN                 64

static uint32_t pci_cfg_readl(QTestState *qts, int devfn, int offset)
{
    qtest_outl(qts, 0xcf8, 0x80000000 | devfn << 8 | offset);
    return qtest_inl(qts, 0xcfc);
}

static void pci_cfg_writel(QTestState *qts, int devfn, int offset,
                           uint32_t val)
{
    qtest_outl(qts, 0xcf8, 0x80000000 | devfn << 8 | offset);
    qtest_outl(qts, 0xcfc, val);
}

/* Reset the legacy virtio device at I/O port @io; returns queue 0's size */
static uint16_t virtio_legacy_reset(QTestState *qts, uint16_t io)
{
    uint16_t num;

    qtest_outb(qts, io + VIRTIO_PCI_STATUS, 0);
    qtest_outb(qts, io + VIRTIO_PCI_STATUS, 1 | 2);   /* ACK, DRIVER */
    qtest_outl(qts, io + VIRTIO_PCI_GUEST_FEATURES, 0);
    qtest_outw(qts, io + VIRTIO_PCI_QUEUE_SEL, 0);
    num = qtest_inw(qts, io + VIRTIO_PCI_QUEUE_NUM);
    g_assert_cmpint(num, >, 0);
    return num;
}

/*
 * Reset the legacy virtio device at I/O port @io and give it queue 0 at
 * @ring with one device-writable buffer at @buf; returns the address of
 * the used ring
 */
static uint64_t virtio_legacy_start(QTestState *qts, uint16_t io,
                                    uint64_t ring, uint64_t buf,
                                    bool ring_shared)
{
    uint16_t num;
    uint64_t avail, used;

    num = virtio_legacy_reset(qts, io);
    avail = ring + 16 * num;
    used = ROUND_UP(avail + 4 + 2 * num + 2, VRING_ALIGN);
    if (ring_shared) {
        g_autofree uint8_t *zero = g_malloc0(used + VRING_ALIGN - ring);

        qtest_memwrite(qts, ring, zero, used + VRING_ALIGN - ring);
        qtest_writeq(qts, ring, buf);                   /* desc[0] */
        qtest_writel(qts, ring + 8, BUF_LEN);
        qtest_writew(qts, ring + 12, VRING_DESC_F_WRITE);
        qtest_writew(qts, avail + 4, 0);                /* ring[0] */
        qtest_writew(qts, avail + 2, 1);                /* idx */
    }
    qtest_outl(qts, io + VIRTIO_PCI_QUEUE_PFN, ring / VRING_ALIGN);
    qtest_outb(qts, io + VIRTIO_PCI_STATUS, 1 | 2 | 4);   /* DRIVER_OK */
    qtest_outw(qts, io + VIRTIO_PCI_QUEUE_NOTIFY, 0);
    return used;
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
    dir = g_dir_make_tmp("gmem-XXXXXX", NULL);
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
    unlink(log);
    rmdir(dir);
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
    g_autofree uint8_t *zero = NULL;
    uint16_t num;

    num = virtio_legacy_reset(qts, io);
    avail = ring + 16 * num;
    used = ROUND_UP(avail + 4 + 2 * num + 2, VRING_ALIGN);
    zero = g_malloc0(used + VRING_ALIGN - ring);
    qtest_memwrite(qts, ring, zero, used + VRING_ALIGN - ring);
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
    qtest_writew(qts, avail + 4, 0);                    /* ring[0] */
    qtest_writew(qts, avail + 2, 1);                    /* idx */
    qtest_outl(qts, io + VIRTIO_PCI_QUEUE_PFN, ring / VRING_ALIGN);
    qtest_outb(qts, io + VIRTIO_PCI_STATUS, 1 | 2 | 4);   /* DRIVER_OK */
    qtest_outw(qts, io + VIRTIO_PCI_QUEUE_NOTIFY, 0);
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
    dir = g_dir_make_tmp("gmem-XXXXXX", NULL);
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
    unlink(console);
    rmdir(dir);
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
    dir = g_dir_make_tmp("gmem-pin-XXXXXX", NULL);
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
    unlink(ack);
    rmdir(dir);
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

static void test_help(void)
{
    g_autofree char *cmd = g_strdup_printf("%s -object "
                                           "memory-backend-guest-memfd,help",
                                           g_getenv("QTEST_QEMU_BINARY"));
    g_autofree char *out = NULL;
    int status;

    g_assert(g_spawn_command_line_sync(cmd, &out, NULL, &status, NULL));
    g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    g_assert(strstr(out, "memory-backend-guest-memfd options:"));
    g_assert(strstr(out, "init-shared=<bool>"));
    g_assert(strstr(out, "prealloc=<bool>"));
}

/* Without KVM, object-add says what is missing (no KVM needed here) */
static void test_no_kvm_object_add(void)
{
    QTestState *qts = qtest_init("-machine none");
    QDict *resp;

    resp = qtest_qmp(qts, "{ 'execute': 'object-add', 'arguments': {"
                     " 'qom-type': 'memory-backend-guest-memfd',"
                     " 'id': 'm0', 'size': %d } }", 16 << 20);
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(resp, "error"), "desc"),
                    ==, "memory-backend-guest-memfd 'm0' needs the KVM "
                    "accelerator: use -accel kvm");
    qobject_unref(resp);
    qtest_quit(qts);
}

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
    { "tcg", false, NULL,
      "-accel tcg " MACHINE_ARGS BACKEND ",size=32M",
      "memory-backend-guest-memfd 'm0' needs the KVM accelerator: "
      "use -accel kvm" },
    { "share-off", true, NULL,
      "-accel kvm " MACHINE_ARGS BACKEND ",size=32M,share=off",
      "memory-backend-guest-memfd 'm0' is always shared with KVM: "
      "remove share=off" },
    { "merge-on", true, NULL,
      "-accel kvm " MACHINE_ARGS BACKEND ",size=32M,merge=on",
      "memory-backend-guest-memfd 'm0' cannot be merged by KSM: "
      "remove merge=on" },
    { "size-zero", false, NULL,
      "-accel tcg " MACHINE_ARGS BACKEND ",size=0",
      "property 'size' of memory-backend-guest-memfd doesn't take "
      "value '0'" },
    { "size-missing", false, NULL,
      "-accel tcg " MACHINE_ARGS BACKEND,
      "Parameter 'size' is missing" },
    { "size-unaligned", true, NULL,
      "-accel kvm " MACHINE_ARGS BACKEND ",size=33554433",
      "memory-backend-guest-memfd 'm0' size 0x2000001 is not a multiple "
      "of the page size 0x1000: round it up" },
    { "prealloc-noreserve", false, NULL,
      "-accel tcg " MACHINE_ARGS BACKEND ",size=32M,reserve=off,prealloc=on",
      "'prealloc=on' and 'reserve=off' are incompatible" },
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
    /* absurd sizes */
    { "size-absurd", true, NULL,
      "-accel kvm " MACHINE_ARGS "-m 32M " BACKEND ",size=1E",
      "memory-backend-guest-memfd 'm0' size 1099511627776 MiB exceeds the "
      "host's memory (", NULL, MODEL_NONE, NULL,
      "Use a size that the host can hold." },
    { "size-negative", false, NULL,
      "-accel tcg " MACHINE_ARGS BACKEND ",size=-1",
      "Parameter 'size' expects a size value" },
    { "size-machine-mismatch", true, NULL,
      "-accel kvm " MACHINE_ARGS "-m 64M " BACKEND ",size=32M",
      "Machine memory size does not match the size of the memory backend" },
    /* other properties */
    { "init-shared-value", false, NULL,
      "-accel tcg " MACHINE_ARGS BACKEND ",size=32M,init-shared=maybe",
      "Parameter 'init-shared' expects 'on' or 'off'" },
    { "prealloc-threads-zero", false, NULL,
      "-accel tcg " MACHINE_ARGS BACKEND ",size=32M,prealloc-threads=0",
      "property 'prealloc-threads' of memory-backend-guest-memfd doesn't "
      "take value '0'" },
    { "hugetlb", false, NULL,
      "-accel tcg " MACHINE_ARGS BACKEND ",size=32M,hugetlb=on",
      "Invalid parameter 'hugetlb'" },
    /* memory the host does not have: the OOM killer would pick a victim */
    { "prealloc-beyond-host", true, NULL,
      "-accel kvm " MACHINE_ARGS "-m 64T " BACKEND ",size=64T,prealloc=on",
      "cannot preallocate memory-backend-guest-memfd 'm0': 67108864 MiB "
      "asked, ", NULL, MODEL_NONE, NULL,
      "guest_memfd memory cannot be swapped or reclaimed: use a smaller "
      "size, or prealloc=off to allocate as the guest touches memory." },
    { "size-beyond-host", true, NULL,
      "-accel kvm " MACHINE_ARGS "-m 64T " BACKEND ",size=64T",
      "memory-backend-guest-memfd 'm0' size 67108864 MiB exceeds the host's "
      "memory (", NULL, MODEL_NONE, NULL,
      "Use a size that the host can hold." },
    /* fallocate() failing part way (the model): undone, one line */
    { "prealloc-enomem", true, NULL,
      "-accel kvm " MACHINE_ARGS "-m 32M " BACKEND ",size=32M,prealloc=on",
      "cannot preallocate memory-backend-guest-memfd 'm0' (32 MiB): "
      "Cannot allocate memory", NULL, MODEL_NONE, NULL,
      "The host ran out of memory: use a smaller size, or prealloc=off.",
      NULL, "GMEM_KVM_MODEL_FALLOCATE_FAIL=12" },
    /* virtio-mem cannot manage memory whose shared state KVM tracks */
    { "virtio-mem", true, NULL,
      "-accel kvm " MACHINE_ARGS "-m 32M,maxmem=64M " BACKEND ",size=32M "
      "-object memory-backend-guest-memfd,id=vm0,size=32M "
      "-device virtio-mem-pci,id=vmem0,memdev=vm0",
      "virtio-mem cannot use memory-backend-guest-memfd 'vm0': "
      "KVM tracks which of its memory is shared, and virtio-mem cannot "
      "plug and unplug it", NULL, MODEL_NONE, NULL,
      "Give virtio-mem another memory backend, such as "
      "memory-backend-memfd, or hotplug guest_memfd memory with "
      "pc-dimm." },
    { "policy-without-nodes", true, NULL,
      "-accel kvm " MACHINE_ARGS "-m 32M " BACKEND ",size=32M,policy=bind",
      "host-nodes must be set for policy bind" },
    { "host-node-absent", true, NULL,
      "-accel kvm " MACHINE_ARGS "-m 32M " BACKEND
      ",size=32M,policy=bind,host-nodes=63",
      "cannot bind memory to host NUMA nodes: Invalid argument" },
    /* machine combinations and aliasing */
    { "backend-missing", false, NULL,
      "-accel tcg " MACHINE_ARGS "-m 32M",
      "Memory backend 'm0' not found" },
    { "backend-duplicate-id", false, NULL,
      "-accel tcg " MACHINE_ARGS "-m 32M " BACKEND ",size=32M " BACKEND
      ",size=32M",
      "Duplicate ID 'm0' for object" },
    { "mem-path-and-backend", false, NULL,
      "-accel tcg " MACHINE_ARGS "-m 32M -mem-path /dev/shm " BACKEND
      ",size=32M",
      "'-mem-path' can't be used together with'-machine memory-backend'" },
    { "numa-and-machine-backend", true, NULL,
      "-accel kvm " MACHINE_ARGS "-m 32M " BACKEND ",size=32M "
      "-numa node,memdev=m0",
      "'-machine memory-backend' and '-numa memdev' properties are mutually "
      "exclusive" },
    { "numa-memdev-twice", true, NULL,
      "-accel kvm -cpu max -nodefaults -display none -S -machine q35 "
      "-m 64M " BACKEND ",size=32M -numa node,memdev=m0 "
      "-numa node,memdev=m0",
      "memory backend m0 can't be used multiple times." },
    /* hotplug misuse */
    { "dimm-busy-memdev", true, NULL,
      "-accel kvm " MACHINE_ARGS "-m 32M,slots=2,maxmem=128M " BACKEND
      ",size=32M -device pc-dimm,memdev=m0",
      "can't use already busy memdev: m0" },
    { "dimm-without-slots", true, NULL,
      "-accel kvm " MACHINE_ARGS "-m 32M " BACKEND ",size=32M "
      "-object memory-backend-guest-memfd,id=m1,size=32M "
      "-device pc-dimm,memdev=m1",
      "no slots where allocated, please specify the 'slots' option" },
    /* confidential guest options */
    { "cgs-missing", false, NULL,
      "-accel tcg " MACHINE_ARGS "-m 32M " BACKEND ",size=32M "
      "-machine confidential-guest-support=nope",
      "Device 'nope' not found" },
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
    const char *binary = g_getenv("QTEST_QEMU_BINARY");
    g_auto(GStrv) argv = NULL;
    g_auto(GStrv) envp = g_get_environ();
    g_autofree char *cmd = NULL;
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    g_autofree char *dir = NULL;
    g_autofree char *fw_path = NULL;
    g_autofree char *snp = NULL;
    g_autoptr(GError) gerr = NULL;
    char *nl;
    int status;

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

        dir = g_dir_make_tmp("gmem-XXXXXX", NULL);
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
    /* bounded: a refusal that hangs is killed, and fails the test */
    cmd = g_strdup_printf("timeout -s KILL 120 %s %s%s", binary, snp ?: "",
                          r->args);
    g_assert(g_shell_parse_argv(cmd, NULL, &argv, NULL));
    g_assert(g_spawn_sync(NULL, argv, envp, G_SPAWN_SEARCH_PATH, NULL, NULL,
                          &out, &err, &status, &gerr));
    if (g_test_verbose()) {
        g_printerr("%s: %s", r->name, err);
    }
    g_assert_false(WIFSIGNALED(status));
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 1);
    if (fw_path) {
        unlink(fw_path);
        rmdir(dir);
    }
    /* one line that names the problem, then at most the hint */
    g_assert(g_str_has_suffix(err, "\n"));
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

    qtest_add_data_func("/guest-memfd/boot/q35", "q35", test_boot);
    qtest_add_data_func("/guest-memfd/boot/pc", "pc", test_boot);
    qtest_add_func("/guest-memfd/shared-data", test_shared_data);
    qtest_add_func("/guest-memfd/prealloc", test_prealloc);
    qtest_add_func("/guest-memfd/query", test_query);
    qtest_add_func("/guest-memfd/policy-bind", test_policy_bind);
    qtest_add_func("/guest-memfd/init-private", test_init_private);
    qtest_add_func("/guest-memfd/init-private/run", test_init_private_run);
    qtest_add_func("/guest-memfd/private/host-paths",
                   test_private_host_paths);
    qtest_add_func("/guest-memfd/private/virtio", test_private_virtio);
    qtest_add_func("/guest-memfd/object-add", test_object_add);
    qtest_add_func("/guest-memfd/object-add-migrating",
                   test_object_add_migrating);
    qtest_add_func("/guest-memfd/help", test_help);
    qtest_add_func("/guest-memfd/convert-in-place/property",
                   test_convert_in_place_property);
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
    qtest_add_func("/guest-memfd/migrate-blocked", test_migrate_blocked);
    qtest_add_data_func("/guest-memfd/migrate/precopy", &migrate_gmem,
                        test_migrate);
    qtest_add_data_func("/guest-memfd/migrate/from-memfd",
                        &migrate_from_memfd, test_migrate);
    qtest_add_data_func("/guest-memfd/migrate/to-memfd", &migrate_to_memfd,
                        test_migrate);
    qtest_add_func("/guest-memfd/migrate/postcopy-refused",
                   test_postcopy_refused);
    qtest_add_func("/guest-memfd/migrate/cpr-transfer-refused",
                   test_cpr_transfer_refused);
    qtest_add_func("/guest-memfd/dirty-rate", test_dirty_rate);
    qtest_add_func("/guest-memfd/dump", test_dump);
    qtest_add_func("/guest-memfd/hotplug", test_hotplug);
    qtest_add_data_func("/guest-memfd/convert-in-place/snp-launch/v8",
                        &in_place_v8, test_snp_launch_in_place);
    qtest_add_data_func("/guest-memfd/convert-in-place/snp-launch/v5",
                        &in_place_v5, test_snp_launch_in_place);
    qtest_add_data_func("/guest-memfd/convert-in-place/tdx-launch/v8",
                        &in_place_v8, test_tdx_launch_in_place);
    qtest_add_data_func("/guest-memfd/convert-in-place/tdx-launch/v5",
                        &in_place_v5, test_tdx_launch_in_place);
    qtest_add_func("/guest-memfd/no-kvm-object-add", test_no_kvm_object_add);
    qtest_add_data_func("/guest-memfd/smm-alias/q35", "q35", test_smm_alias);
    qtest_add_data_func("/guest-memfd/smm-alias/pc", "pc", test_smm_alias);
    for (int i = 0; i < ARRAY_SIZE(refusals); i++) {
        g_autofree char *path = g_strdup_printf("/guest-memfd/refuse/%s",
                                                refusals[i].name);

        qtest_add_data_func(path, &refusals[i], test_refusal);
    }
    return g_test_run();
}
