/*
 * QTest for memory-backend-guest-memfd
 *
 * The VMs here run under KVM on the host kernel, with all of their RAM in
 * one guest_memfd, from which the gmem-guest test program boots: the
 * backend's properties, what QEMU reports of it, dumps, memory hotplug,
 * q35's SMRAM alias, and the configurations it refuses.
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
#include "elf.h"
#include "migration/migration-qmp.h"
#include "migration/migration-util.h"
#include "guest-memfd-util.h"
#include "gmem-guest/gmem-guest.h"

/* The test guest boots from guest_memfd RAM and exits with success */
static void test_boot(const void *data)
{
    const char *machine = data;
    g_autofree char *dir = test_dir_new();
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
    test_dir_remove(dir);
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
    g_autofree char *dir = test_dir_new();
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
    test_dir_remove(dir);
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
    dir = test_dir_new();
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
    test_dir_remove(dir);
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
    dir = test_dir_new();
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
    test_dir_remove(dir);
}

/* -object memory-backend-guest-memfd,help lists the properties */
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
    const char *args;
    const char *message;
    const char *hint;       /* the hint QEMU prints after the line, if any */
} Refusal;

#define MACHINE_ARGS \
    "-cpu max -nodefaults -display none -S -machine q35,memory-backend=m0 "
#define BACKEND "-object memory-backend-guest-memfd,id=m0"

static const Refusal refusals[] = {
    { "tcg", false,
      "-accel tcg " MACHINE_ARGS BACKEND ",size=32M",
      "memory-backend-guest-memfd 'm0' needs the KVM accelerator: "
      "use -accel kvm" },
    { "share-off", true,
      "-accel kvm " MACHINE_ARGS BACKEND ",size=32M,share=off",
      "memory-backend-guest-memfd 'm0' is always shared with KVM: "
      "remove share=off" },
    { "merge-on", true,
      "-accel kvm " MACHINE_ARGS BACKEND ",size=32M,merge=on",
      "memory-backend-guest-memfd 'm0' cannot be merged by KSM: "
      "remove merge=on" },
    { "size-zero", false,
      "-accel tcg " MACHINE_ARGS BACKEND ",size=0",
      "property 'size' of memory-backend-guest-memfd doesn't take "
      "value '0'" },
    { "size-missing", false,
      "-accel tcg " MACHINE_ARGS BACKEND,
      "Parameter 'size' is missing" },
    { "size-unaligned", true,
      "-accel kvm " MACHINE_ARGS BACKEND ",size=33554433",
      "memory-backend-guest-memfd 'm0' size 0x2000001 is not a multiple "
      "of the page size 0x1000: round it up" },
    { "prealloc-noreserve", false,
      "-accel tcg " MACHINE_ARGS BACKEND ",size=32M,reserve=off,prealloc=on",
      "'prealloc=on' and 'reserve=off' are incompatible" },
    /* absurd sizes */
    { "size-absurd", true,
      "-accel kvm " MACHINE_ARGS "-m 32M " BACKEND ",size=1E",
      "memory-backend-guest-memfd 'm0' size 1099511627776 MiB exceeds the "
      "host's memory (",
      "Use a size that the host can hold." },
    { "size-negative", false,
      "-accel tcg " MACHINE_ARGS BACKEND ",size=-1",
      "Parameter 'size' expects a size value" },
    { "size-machine-mismatch", true,
      "-accel kvm " MACHINE_ARGS "-m 64M " BACKEND ",size=32M",
      "Machine memory size does not match the size of the memory backend" },
    /* other properties */
    { "init-shared-value", false,
      "-accel tcg " MACHINE_ARGS BACKEND ",size=32M,init-shared=maybe",
      "Parameter 'init-shared' expects 'on' or 'off'" },
    { "prealloc-threads-zero", false,
      "-accel tcg " MACHINE_ARGS BACKEND ",size=32M,prealloc-threads=0",
      "property 'prealloc-threads' of memory-backend-guest-memfd doesn't "
      "take value '0'" },
    { "hugetlb", false,
      "-accel tcg " MACHINE_ARGS BACKEND ",size=32M,hugetlb=on",
      "Invalid parameter 'hugetlb'" },
    /* memory the host does not have: the OOM killer would pick a victim */
    { "prealloc-beyond-host", true,
      "-accel kvm " MACHINE_ARGS "-m 64T " BACKEND ",size=64T,prealloc=on",
      "cannot preallocate memory-backend-guest-memfd 'm0': 67108864 MiB "
      "asked, ",
      "guest_memfd memory cannot be swapped or reclaimed: use a smaller "
      "size, or prealloc=off to allocate as the guest touches memory." },
    { "size-beyond-host", true,
      "-accel kvm " MACHINE_ARGS "-m 64T " BACKEND ",size=64T",
      "memory-backend-guest-memfd 'm0' size 67108864 MiB exceeds the host's "
      "memory (",
      "Use a size that the host can hold." },
    /* virtio-mem cannot manage memory whose shared state KVM tracks */
    { "virtio-mem", true,
      "-accel kvm " MACHINE_ARGS "-m 32M,maxmem=64M " BACKEND ",size=32M "
      "-object memory-backend-guest-memfd,id=vm0,size=32M "
      "-device virtio-mem-pci,id=vmem0,memdev=vm0",
      "virtio-mem cannot use memory-backend-guest-memfd 'vm0': "
      "KVM tracks which of its memory is shared, and virtio-mem cannot "
      "plug and unplug it",
      "Give virtio-mem another memory backend, such as "
      "memory-backend-memfd, or hotplug guest_memfd memory with "
      "pc-dimm." },
    { "policy-without-nodes", true,
      "-accel kvm " MACHINE_ARGS "-m 32M " BACKEND ",size=32M,policy=bind",
      "host-nodes must be set for policy bind" },
    { "host-node-absent", true,
      "-accel kvm " MACHINE_ARGS "-m 32M " BACKEND
      ",size=32M,policy=bind,host-nodes=63",
      "cannot bind memory to host NUMA nodes: Invalid argument" },
    /* machine combinations and aliasing */
    { "backend-missing", false,
      "-accel tcg " MACHINE_ARGS "-m 32M",
      "Memory backend 'm0' not found" },
    { "backend-duplicate-id", false,
      "-accel tcg " MACHINE_ARGS "-m 32M " BACKEND ",size=32M " BACKEND
      ",size=32M",
      "Duplicate ID 'm0' for object" },
    { "mem-path-and-backend", false,
      "-accel tcg " MACHINE_ARGS "-m 32M -mem-path /dev/shm " BACKEND
      ",size=32M",
      "'-mem-path' can't be used together with'-machine memory-backend'" },
    { "numa-and-machine-backend", true,
      "-accel kvm " MACHINE_ARGS "-m 32M " BACKEND ",size=32M "
      "-numa node,memdev=m0",
      "'-machine memory-backend' and '-numa memdev' properties are mutually "
      "exclusive" },
    { "numa-memdev-twice", true,
      "-accel kvm -cpu max -nodefaults -display none -S -machine q35 "
      "-m 64M " BACKEND ",size=32M -numa node,memdev=m0 "
      "-numa node,memdev=m0",
      "memory backend m0 can't be used multiple times." },
    /* hotplug misuse */
    { "dimm-busy-memdev", true,
      "-accel kvm " MACHINE_ARGS "-m 32M,slots=2,maxmem=128M " BACKEND
      ",size=32M -device pc-dimm,memdev=m0",
      "can't use already busy memdev: m0" },
    { "dimm-without-slots", true,
      "-accel kvm " MACHINE_ARGS "-m 32M " BACKEND ",size=32M "
      "-object memory-backend-guest-memfd,id=m1,size=32M "
      "-device pc-dimm,memdev=m1",
      "no slots where allocated, please specify the 'slots' option" },
    /* confidential guest options */
    { "cgs-missing", false,
      "-accel tcg " MACHINE_ARGS "-m 32M " BACKEND ",size=32M "
      "-machine confidential-guest-support=nope",
      "Device 'nope' not found" },
};

static void test_refusal(const void *data)
{
    const Refusal *r = data;
    g_auto(GStrv) envp = g_get_environ();
    g_autofree char *err = NULL;
    char *nl;

    if (r->kvm && !have_kvm()) {
        return;
    }
    err = refused(r->args, envp, r->name);
    /* one line that names the problem, then at most the hint */
    nl = strchr(err, '\n');
    *nl = 0;
    g_assert(strstr(err, r->message));
    if (r->hint) {
        g_assert(g_str_has_prefix(nl + 1, r->hint));
    } else {
        g_assert_cmpstr(nl + 1, ==, "");
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    qtest_add_data_func("/guest-memfd/boot/q35", "q35", test_boot);
    qtest_add_data_func("/guest-memfd/boot/pc", "pc", test_boot);
    qtest_add_func("/guest-memfd/prealloc", test_prealloc);
    qtest_add_func("/guest-memfd/query", test_query);
    qtest_add_func("/guest-memfd/policy-bind", test_policy_bind);
    qtest_add_func("/guest-memfd/init-private", test_init_private);
    qtest_add_func("/guest-memfd/object-add", test_object_add);
    qtest_add_func("/guest-memfd/object-add-migrating",
                   test_object_add_migrating);
    qtest_add_func("/guest-memfd/help", test_help);
    qtest_add_func("/guest-memfd/dump", test_dump);
    qtest_add_func("/guest-memfd/hotplug", test_hotplug);
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
