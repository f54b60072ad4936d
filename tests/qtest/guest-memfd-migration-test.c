/*
 * QTest for memory-backend-guest-memfd: migration
 *
 * Live migration of a running guest whose RAM is guest_memfd, to and
 * from other backends, and what cannot be migrated: init-shared=off
 * memory, postcopy, cpr-transfer.
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
#include "migration/migration-qmp.h"
#include "migration/migration-util.h"
#include "guest-memfd-util.h"
#include "gmem-guest/gmem-guest.h"

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
    dir = test_dir_new();
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
    test_dir_remove(dir);
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
    dir = test_dir_new();
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
    test_dir_remove(dir);
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
    g_autofree char *dir = test_dir_new();
    g_autofree char *main_sock = g_build_filename(dir, "main", NULL);
    g_autofree char *cpr_sock = g_build_filename(dir, "cpr", NULL);
    QTestState *qts;
    QDict *resp;

    if (!have_kvm()) {
        test_dir_remove(dir);
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
    test_dir_remove(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

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
    return g_test_run();
}
