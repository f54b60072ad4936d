/*
 * Unit tests of in-place guest_memfd conversion, against the model of
 * the kernel in kvm-gmem-model.h
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/module.h"
#include "kvm-gmem-model.h"

static void test_order(void)
{
    Fixture x;
    TestListener a, b;
    TestListener *ls[] = { &a, &b };

    fixture_init(&x, &caps_v8);
    listener_add(&x.f, &a, &x.m, 'A', 0, FILE_SIZE);
    listener_add(&x.f, &b, &x.m, 'B', 8 * PAGE, 8 * PAGE);
    check_state(&x, ls, 2);
    g_string_truncate(x.m.log, 0);

    /* to private: listeners first, then the kernel */
    g_assert_cmpint(kvm_gmem_convert(&x.f, 4 * PAGE, 8 * PAGE, true, RUNTIME,
                                     UNSPEC, &error_abort), ==, 0);
    g_assert_cmpstr(x.m.log->str, ==,
                    "DB 8000+4000;DA 4000+8000;KP 4000+8000;");
    check_state(&x, ls, 2);
    g_string_truncate(x.m.log, 0);

    /* to shared: the kernel first, then listeners, for what changed */
    g_assert_cmpint(kvm_gmem_convert(&x.f, 0, 16 * PAGE, false, RUNTIME,
                                     UNSPEC, &error_abort), ==, 0);
    g_assert_cmpstr(x.m.log->str, ==,
                    "KS 0+10000;PB 8000+4000;PA 4000+8000;");
    check_state(&x, ls, 2);
    g_assert_cmpuint(x.f.conversions, ==, 2);

    fixture_destroy_listeners(&x, ls, 2);
}

/* A kernel failure toward private gives the listeners their memory back */
static void test_rollback_kernel(void)
{
    Fixture x;
    TestListener a;
    TestListener *ls[] = { &a };
    Error *err = NULL;

    fixture_init(&x, &caps_v8);
    listener_add(&x.f, &a, &x.m, 'A', 0, FILE_SIZE);
    g_string_truncate(x.m.log, 0);

    x.m.fail_next = ENOMEM;
    g_assert_cmpint(kvm_gmem_convert(&x.f, 0, 2 * PAGE, true, RUNTIME, UNSPEC,
                                     &err), ==, -ENOMEM);
    error_free_or_abort(&err);
    g_assert_cmpstr(x.m.log->str, ==, "DA 0+2000;KP 0+2000;PA 0+2000;");
    check_state(&x, ls, 1);
    g_assert_cmpuint(x.f.failures, ==, 1);

    /* toward shared, nothing to undo */
    g_assert_cmpint(kvm_gmem_convert(&x.f, 0, 2 * PAGE, true, RUNTIME, UNSPEC,
                                     &error_abort), ==, 0);
    g_string_truncate(x.m.log, 0);
    x.m.fail_next = EINVAL;
    g_assert_cmpint(kvm_gmem_convert(&x.f, 0, 2 * PAGE, false, RUNTIME,
                                     UNSPEC, &err), ==, -EINVAL);
    error_free_or_abort(&err);
    g_assert_cmpstr(x.m.log->str, ==, "KS 0+2000;");
    check_state(&x, ls, 1);

    fixture_destroy_listeners(&x, ls, 1);
}

/*
 * ...to all of them: one that fails to take it back goes without, and
 * the others still get it
 */
static void test_rollback_kernel_listener(void)
{
    Fixture x;
    TestListener a, b;
    TestListener *ls[] = { &a, &b };
    Error *err = NULL;

    fixture_init(&x, &caps_v8);
    listener_add(&x.f, &a, &x.m, 'A', 0, FILE_SIZE);
    listener_add(&x.f, &b, &x.m, 'B', 0, FILE_SIZE);
    g_string_truncate(x.m.log, 0);

    /* B, told first, fails to take the memory back */
    x.m.fail_next = ENOMEM;
    b.fail_in = 1;
    g_assert_cmpint(kvm_gmem_convert(&x.f, 0, 2 * PAGE, true, RUNTIME, UNSPEC,
                                     &err), ==, -ENOMEM);
    error_free_or_abort(&err);
    g_assert_cmpstr(x.m.log->str, ==,
                    "DB 0+2000;DA 0+2000;KP 0+2000;PB 0+2000;PA 0+2000;");
    check_state(&x, ls, 1);
    g_assert_false(b.mapped[0] || b.mapped[1]);
    g_assert_true(b.mapped[2]);

    /* B is told of pages 0-1 when it goes, as of all shared memory */
    b.mapped[0] = b.mapped[1] = true;
    fixture_destroy_listeners(&x, ls, 2);
}

/* A listener failure toward shared converts the kernel back */
static void test_rollback_listener(void)
{
    Fixture x;
    TestListener a, b;
    TestListener *ls[] = { &a, &b };
    Error *err = NULL;

    fixture_init(&x, &caps_v8);
    listener_add(&x.f, &a, &x.m, 'A', 0, FILE_SIZE);
    listener_add(&x.f, &b, &x.m, 'B', 0, FILE_SIZE);
    /* private: pages 0-1 and 4-5; 2-3 stay shared */
    g_assert_cmpint(kvm_gmem_convert(&x.f, 0, 6 * PAGE, true, RUNTIME,
                                     UNSPEC, &error_abort), ==, 0);
    g_assert_cmpint(kvm_gmem_convert(&x.f, 2 * PAGE, 2 * PAGE, false,
                                     RUNTIME, UNSPEC, &error_abort), ==, 0);
    check_state(&x, ls, 2);
    g_string_truncate(x.m.log, 0);

    /* A (told second) fails on the second run */
    a.fail_in = 2;
    g_assert_cmpint(kvm_gmem_convert(&x.f, 0, 6 * PAGE, false, RUNTIME,
                                     UNSPEC, &err), ==, -ENOMEM);
    error_free_or_abort(&err);
    g_assert_cmpstr(x.m.log->str, ==,
                    "KS 0+6000;PB 0+2000;PA 0+2000;PB 4000+2000;PA 4000+2000;"
                    "DB 0+2000;DA 0+2000;DB 4000+2000;"
                    "KP 0+2000;KP 4000+2000;");
    check_state(&x, ls, 2);

    fixture_destroy_listeners(&x, ls, 2);
}

/* Converting back retries busy pages as any conversion does */
static void test_rollback_busy(void)
{
    Fixture x;
    TestListener a;
    TestListener *ls[] = { &a };
    Error *err = NULL;

    fixture_init(&x, &caps_v8);
    listener_add(&x.f, &a, &x.m, 'A', 0, FILE_SIZE);
    g_assert_cmpint(kvm_gmem_convert(&x.f, 0, 2 * PAGE, true, RUNTIME,
                                     UNSPEC, &error_abort), ==, 0);
    g_string_truncate(x.m.log, 0);

    /* A fails; page 1 is busy for the first two calls that convert back */
    a.fail_in = 1;
    x.m.busy_page = 1;
    x.m.busy_tries = 2;
    x.m.busy_from = x.m.calls + 2;
    g_assert_cmpint(kvm_gmem_convert(&x.f, 0, 2 * PAGE, false, RUNTIME,
                                     UNSPEC, &err), ==, -ENOMEM);
    error_free_or_abort(&err);
    g_assert_cmpstr(x.m.log->str, ==,
                    "KS 0+2000;PA 0+2000;KP 0+2000;KP 0+2000;KP 0+2000;");
    g_assert_cmpuint(x.f.retries, ==, 2);
    g_assert(ram_block_attributes_range_is(x.f.attr, 0, 2 * PAGE, false));
    check_state(&x, ls, 1);

    fixture_destroy_listeners(&x, ls, 1);
}

/* Busy pages: bounded retries, then a clear failure */
static void test_eagain(void)
{
    Fixture x;
    TestListener a;
    TestListener *ls[] = { &a };
    Error *err = NULL;

    fixture_init(&x, &caps_v8);
    listener_add(&x.f, &a, &x.m, 'A', 0, FILE_SIZE);

    x.m.busy_page = 5;
    x.m.busy_tries = 3;
    g_string_truncate(x.m.log, 0);
    g_assert_cmpint(kvm_gmem_convert(&x.f, 0, 8 * PAGE, true, RUNTIME,
                                     UNSPEC, &error_abort), ==, 0);
    g_assert_cmpuint(x.f.retries, ==, 3);
    g_assert_cmpuint(x.m.backoffs, ==, 3);
    /* while it waits, which may let other threads run, A has it back */
    g_assert_cmpstr(x.m.log->str, ==,
                    "DA 0+8000;KP 0+8000;PA 0+8000;DA 0+8000;KP 0+8000;"
                    "PA 0+8000;DA 0+8000;KP 0+8000;PA 0+8000;DA 0+8000;"
                    "KP 0+8000;");
    check_state(&x, ls, 1);

    /* toward shared, the kernel checks no references: no EAGAIN */
    x.m.busy_tries = INT_MAX;
    g_assert_cmpint(kvm_gmem_convert(&x.f, 0, 8 * PAGE, false, RUNTIME,
                                     UNSPEC, &error_abort), ==, 0);
    g_assert_cmpuint(x.f.retries, ==, 3);
    check_state(&x, ls, 1);

    /* a page that stays busy: the conversion to private fails, undone */
    g_assert_cmpint(kvm_gmem_convert(&x.f, 0, 8 * PAGE, true, RUNTIME,
                                     UNSPEC, &err), ==, -EAGAIN);
    g_assert(strstr(error_get_pretty(err), "offset 0x5000 is still in use"));
    error_free(err);
    err = NULL;
    g_assert_cmpuint(x.f.retries, ==, 3 + KVM_GMEM_CONVERT_TRIES - 1);
    check_state(&x, ls, 1);
    g_assert(ram_block_attributes_range_is(x.f.attr, 0, 8 * PAGE, true));

    fixture_destroy_listeners(&x, ls, 1);
}

/* An unexpected EAGAIN toward shared fails at once, and nothing changes */
static void test_eagain_shared(void)
{
    Fixture x;
    TestListener a;
    TestListener *ls[] = { &a };
    Error *err = NULL;
    unsigned calls;

    fixture_init(&x, &caps_v8);
    listener_add(&x.f, &a, &x.m, 'A', 0, FILE_SIZE);
    g_assert_cmpint(kvm_gmem_convert(&x.f, 0, 4 * PAGE, true, RUNTIME,
                                     UNSPEC, &error_abort), ==, 0);
    calls = x.m.calls;
    x.m.fail_next = EAGAIN;
    g_assert_cmpint(kvm_gmem_convert(&x.f, 0, 4 * PAGE, false, RUNTIME,
                                     UNSPEC, &err), ==, -EAGAIN);
    g_assert_null(strstr(error_get_pretty(err), "still in use"));
    error_free(err);
    g_assert_cmpuint(x.m.calls, ==, calls + 1);
    g_assert_cmpuint(x.f.retries, ==, 0);
    g_assert_cmpuint(x.m.backoffs, ==, 0);
    g_assert(ram_block_attributes_range_is(x.f.attr, 0, 4 * PAGE, false));
    check_state(&x, ls, 1);
    fixture_destroy_listeners(&x, ls, 1);
}

/*
 * A range already in the requested state: the kernel returns 0 at once,
 * busy page or not, and nothing is retried
 */
static void test_already(void)
{
    Fixture x;
    TestListener a;
    TestListener *ls[] = { &a };
    unsigned calls;

    fixture_init(&x, &caps_v8);
    listener_add(&x.f, &a, &x.m, 'A', 0, FILE_SIZE);
    g_assert_cmpint(kvm_gmem_convert(&x.f, 0, 4 * PAGE, true, RUNTIME,
                                     UNSPEC, &error_abort), ==, 0);
    calls = x.m.calls;
    x.m.busy_page = 1;
    x.m.busy_tries = INT_MAX;
    g_assert_cmpint(kvm_gmem_convert(&x.f, 0, 4 * PAGE, true, RUNTIME,
                                     UNSPEC, &error_abort), ==, 0);
    g_assert_cmpuint(x.m.calls, ==, calls + 1);
    g_assert_cmpuint(x.f.retries, ==, 0);
    check_state(&x, ls, 1);
    fixture_destroy_listeners(&x, ls, 1);
}

/* What the model answers, case by case (see kvm-gmem-model.h) */
static void test_model(void)
{
    Model m = { .busy_page = -1 };
    uint64_t eo = 0;

    /* v8 check order: flags first, then the VM type, then attributes */
    m.default_vm = true;
    g_assert_cmpint(model_set_attributes(&m, 0, 1, 0, 1 << 4, ZERO, &eo),
                    ==, -EINVAL);
    g_assert_cmpint(model_set_attributes(&m, 0, 0, PAGE, 8, 0, &eo), ==,
                    -EINVAL);
    m.default_vm = false;
    g_assert_cmpint(model_set_attributes(&m, 0, 0, PAGE, 8, ZERO, &eo), ==,
                    -EINVAL);
    g_assert_cmpint(model_set_attributes(&m, 0, 0, PAGE, 1 << 4, 0, &eo),
                    ==, -EINVAL);
    g_assert_cmpint(model_set_attributes(&m, 0, 0, 0, 8, 0, &eo), ==,
                    -EINVAL);
    g_assert_cmpint(model_set_attributes(&m, 0, PAGE, -PAGE, 8, 0, &eo), ==,
                    -EINVAL);
    g_assert_cmpint(model_set_attributes(&m, 0, 1, PAGE, 8, 0, &eo), ==,
                    -EINVAL);
    g_assert_cmpint(model_set_attributes(&m, 0, FILE_SIZE, PAGE, 8, 0, &eo),
                    ==, -EINVAL);
    /* in-place conversion off: no such ioctl */
    m.in_place_off = true;
    g_assert_cmpint(model_set_attributes(&m, 0, 0, PAGE, 8, 0, &eo), ==,
                    -ENOTTY);
    m.in_place_off = false;
    /* EAGAIN toward private only, at the busy page */
    m.busy_page = 3;
    m.busy_tries = INT_MAX;
    g_assert_cmpint(model_set_attributes(&m, 0, 0, 8 * PAGE, 8, 0, &eo), ==,
                    -EAGAIN);
    g_assert_cmpuint(eo, ==, 3 * PAGE);
    g_assert_false(m.private[0]);
    g_assert_cmpint(model_set_attributes(&m, 0, 4 * PAGE, PAGE, 8, 0, &eo),
                    ==, 0);
    g_assert_cmpint(model_set_attributes(&m, 0, 0, 8 * PAGE, 0, 0, &eo), ==,
                    0);
    /* ENOMEM reports the start of the range */
    m.fail_next = ENOMEM;
    eo = 0;
    g_assert_cmpint(model_set_attributes(&m, 0, 5 * PAGE, PAGE, 8, 0, &eo),
                    ==, -ENOMEM);
    g_assert_cmpuint(eo, ==, 5 * PAGE);
    g_assert_false(m.private[5]);

    /* v5: flags advertised; ZERO toward private refused */
    m = (Model) { .busy_page = -1, .flags_supported = ZERO | PRESERVE };
    g_assert_cmpint(model_set_attributes(&m, 0, 0, PAGE, 8, ZERO, &eo), ==,
                    -EOPNOTSUPP);
    g_assert_cmpint(model_set_attributes(&m, 0, 0, PAGE, 8,
                                         ZERO | PRESERVE, &eo), ==, -EINVAL);
    m.flags_supported = PRESERVE;
    g_assert_cmpint(model_set_attributes(&m, 0, 0, PAGE, 0, ZERO, &eo), ==,
                    -EOPNOTSUPP);
    /* ...and a content mode applies to the whole range */
    m.flags_supported = ZERO | PRESERVE;
    m.content[0] = m.content[1] = 5;
    m.private[1] = true;
    g_assert_cmpint(model_set_attributes(&m, 0, 0, 2 * PAGE, 0, ZERO, &eo),
                    ==, 0);
    g_assert_cmpuint(m.content[0], ==, 0);
    g_assert_cmpuint(m.content[1], ==, 0);
}

/* Content requests: honoured by the means the table gives, or refused */
static void test_content(void)
{
    Fixture x;
    Error *err = NULL;
    unsigned calls;

    /* v8: zeroing toward shared is a hole punched by QEMU */
    fixture_init(&x, &caps_v8);
    g_assert_cmpint(kvm_gmem_convert(&x.f, 0, 4 * PAGE, true, RUNTIME, UNSPEC,
                                     &error_abort), ==, 0);
    g_string_truncate(x.m.log, 0);
    g_assert_cmpint(kvm_gmem_convert(&x.f, 0, 8 * PAGE, false, RUNTIME,
                                     C_ZERO, &error_abort), ==, 0);
    g_assert_cmpstr(x.m.log->str, ==, "KS 0+8000;H 0+4000;");
    for (int i = 0; i < 4; i++) {
        g_assert_cmpuint(x.m.content[i], ==, 0);
    }
    /* and v8 cannot preserve at runtime: refused, the kernel untouched */
    calls = x.m.calls;
    g_assert_cmpint(kvm_gmem_convert(&x.f, 0, PAGE, true, RUNTIME,
                                     C_PRESERVE, &err), ==, -ENOTSUP);
    g_assert_cmpstr(error_get_pretty(err), ==, "cannot convert guest_memfd "
                    "memory to private at runtime, preserving its contents: "
                    "the host kernel does not support it");
    error_free(err);
    err = NULL;
    g_assert_cmpuint(x.m.calls, ==, calls);
    /* nor zero toward private */
    g_assert_cmpint(kvm_gmem_convert(&x.f, 0, PAGE, true, RUNTIME, C_ZERO,
                                     &err), ==, -ENOTSUP);
    error_free_or_abort(&err);
    g_assert_cmpuint(x.m.calls, ==, calls);
    fixture_destroy(&x);

    /* v5: kernel flags, contents as asked */
    fixture_init(&x, &caps_v5);
    for (int i = 0; i < NR_PAGES; i++) {
        x.m.content[i] = 1000 + i;
    }
    g_assert_cmpint(kvm_gmem_convert(&x.f, 0, 2 * PAGE, true, RUNTIME,
                                     C_PRESERVE, &error_abort), ==, 0);
    g_assert_cmpuint(x.m.content[1], ==, 1001);
    g_assert_cmpint(kvm_gmem_convert(&x.f, 0, 2 * PAGE, false, RUNTIME,
                                     C_PRESERVE, &error_abort), ==, 0);
    g_assert_cmpuint(x.m.content[1], ==, 1001);
    g_assert_cmpint(kvm_gmem_convert(&x.f, 0, 2 * PAGE, true, RUNTIME, UNSPEC,
                                     &error_abort), ==, 0);
    g_assert_cmpint(kvm_gmem_convert(&x.f, 0, 2 * PAGE, false, RUNTIME,
                                     C_ZERO, &error_abort), ==, 0);
    g_assert_cmpuint(x.m.content[1], ==, 0);
    g_assert_cmpuint(x.m.punches, ==, 0);
    fixture_destroy(&x);

    /* v5 SNP: PRESERVE before launch toward private only */
    fixture_init(&x, &caps_v5_snp);
    x.m.content[0] = 77;
    g_assert_cmpint(kvm_gmem_convert(&x.f, 0, PAGE, true, PRE_LAUNCH,
                                     C_PRESERVE, &error_abort), ==, 0);
    g_assert_cmpuint(x.m.content[0], ==, 77);
    g_assert_cmpint(kvm_gmem_convert(&x.f, PAGE, PAGE, true, RUNTIME,
                                     C_PRESERVE, &err), ==, -ENOTSUP);
    error_free_or_abort(&err);
    g_assert_cmpint(kvm_gmem_convert(&x.f, 0, PAGE, false, PRE_LAUNCH,
                                     C_PRESERVE, &err), ==, -ENOTSUP);
    error_free_or_abort(&err);
    fixture_destroy(&x);

    /* v8, software-protected: the page converts in place, as it is */
    fixture_init(&x, &caps_v8_sw);
    x.m.content[2] = 42;
    g_assert_cmpint(kvm_gmem_convert(&x.f, 2 * PAGE, PAGE, true, RUNTIME,
                                     C_PRESERVE, &error_abort), ==, 0);
    g_assert_cmpuint(x.m.content[2], ==, 42);
    g_assert_cmpint(kvm_gmem_convert(&x.f, 2 * PAGE, PAGE, false, RUNTIME,
                                     C_PRESERVE, &error_abort), ==, 0);
    g_assert_cmpuint(x.m.content[2], ==, 42);
    g_assert_cmpstr(x.m.log->str, ==, "KP 2000+1000;KS 2000+1000;");
    fixture_destroy(&x);
}

/* Bad ranges fail before anything is done */
static void test_invalid(void)
{
    static const struct { uint64_t offset, size; } bad[] = {
        { 0, 0 }, { 1, PAGE }, { 0, PAGE + 1 }, { FILE_SIZE, PAGE },
        { FILE_SIZE - PAGE, 2 * PAGE }, { PAGE, UINT64_MAX - PAGE + 1 },
        { UINT64_MAX & ~(PAGE - 1), PAGE },
    };
    Fixture x;

    fixture_init(&x, &caps_v8);
    for (int i = 0; i < ARRAY_SIZE(bad); i++) {
        Error *err = NULL;

        g_assert_cmpint(kvm_gmem_convert(&x.f, bad[i].offset, bad[i].size,
                                         i & 1, RUNTIME, UNSPEC, &err), ==,
                        -EINVAL);
        error_free_or_abort(&err);
    }
    g_assert_cmpuint(x.m.calls, ==, 0);
    g_assert_cmpuint(x.f.attr->nr_populated, ==, NR_PAGES);
    fixture_destroy(&x);
}

/* A new listener hears about shared memory one run at a time */
static void test_replay(void)
{
    Fixture x;
    TestListener a, b;
    TestListener *ls[] = { &a };

    fixture_init(&x, &caps_v8);
    /* every third page private: 2-page shared runs */
    for (int i = 2; i < NR_PAGES; i += 3) {
        g_assert_cmpint(kvm_gmem_convert(&x.f, i * PAGE, PAGE, true, RUNTIME,
                                         UNSPEC, &error_abort), ==, 0);
    }
    listener_add(&x.f, &a, &x.m, 'A', 0, FILE_SIZE);
    g_assert_cmpuint(a.populates, ==, (NR_PAGES + 2) / 3);
    check_state(&x, ls, 1);

    /* a second one hears the same runs, one call each */
    g_string_truncate(x.m.log, 0);
    listener_add(&x.f, &b, &x.m, 'B', 0, 8 * PAGE);
    g_assert_cmpstr(x.m.log->str, ==, "PB 0+2000;PB 3000+2000;PB 6000+2000;");
    g_string_truncate(x.m.log, 0);
    listener_del(&x.f, &b);
    g_assert_cmpstr(x.m.log->str, ==, "DB 0+2000;DB 3000+2000;DB 6000+2000;");
    for (int i = 0; i < NR_PAGES; i++) {
        g_assert_false(b.mapped[i]);
    }

    listener_del(&x.f, &a);
    for (int i = 0; i < NR_PAGES; i++) {
        g_assert_false(a.mapped[i]);
    }
    fixture_destroy(&x);
}

/*
 * Many random conversions, good and bad, with injected failures: after
 * each, QEMU's state equals the model kernel's, the counts equal a
 * recount, and every listener maps exactly the shared memory it follows.
 */
static void test_random(const void *data)
{
    const KvmGmemCaps *caps = data;
    const int ops = g_test_slow() ? 1000000 : 100000;
    Fixture x;
    TestListener a, b;
    TestListener *ls[] = { &a, &b };
    GRand *r = g_rand_new_with_seed(0x9e3779b9);
    unsigned ok = 0;

    fixture_init(&x, caps);
    listener_add(&x.f, &a, &x.m, 'A', 0, FILE_SIZE);
    listener_add(&x.f, &b, &x.m, 'B', 100 * PAGE, 300 * PAGE);

    for (int i = 0; i < ops; i++) {
        uint64_t offset = g_rand_int_range(r, 0, NR_PAGES) * PAGE;
        uint64_t size = g_rand_int_range(r, 1, 64) * PAGE;
        bool to_private = g_rand_boolean(r);
        int content = g_rand_int_range(r, 0, KVM_GUEST_MEMFD_CONTENT__MAX);
        Error *err = NULL;
        int ret;

        switch (g_rand_int_range(r, 0, 16)) {
        case 0:
            offset += g_rand_int_range(r, 1, PAGE);       /* misaligned */
            break;
        case 1:
            size = UINT64_MAX - offset + 1;               /* overflows */
            break;
        case 2:
            x.m.fail_next = g_rand_boolean(r) ? ENOMEM : EFAULT;
            break;
        case 3:
            x.m.busy_page = offset / PAGE + g_rand_int_range(r, 0, 64);
            x.m.busy_tries = g_rand_boolean(r) ? 2 : INT_MAX;
            break;
        case 4:
            a.fail_in = g_rand_int_range(r, 1, 3);
            break;
        case 5:
            b.fail_in = g_rand_int_range(r, 1, 3);
            break;
        case 6:
            x.m.punch_fail = EIO;
            break;
        }
        if (g_rand_int_range(r, 0, 8) == 0) {
            /* a large range */
            size = g_rand_int_range(r, 1, NR_PAGES) * PAGE;
        }
        ret = kvm_gmem_convert(&x.f, offset, size, to_private, RUNTIME,
                               content, &err);
        g_assert(!ret == !err);
        error_free(err);
        ok += !ret;
        x.m.fail_next = 0;
        x.m.busy_tries = 0;
        x.m.punch_fail = 0;
        a.fail_in = 0;
        b.fail_in = 0;
        check_state(&x, ls, 2);
    }
    g_assert_cmpuint(x.f.conversions, ==, ok);
    g_assert_cmpuint(x.f.failures, ==, ops - ok);
    /* a third of the requests cannot be honoured on v8 (PRESERVE) */
    g_assert_cmpuint(ok, >, ops / 4);
    fixture_destroy_listeners(&x, ls, 2);
    g_rand_free(r);
}

/* Hold (RamDiscardManagerClass.hold_populated) a range of @x's file */
static bool hold(Fixture *x, uint64_t offset, uint64_t size, bool release)
{
    RamDiscardManager *rdm = RAM_DISCARD_MANAGER(x->f.attr);
    RamDiscardManagerClass *rdmc = RAM_DISCARD_MANAGER_GET_CLASS(rdm);
    MemoryRegionSection s = {
        .mr = &x->mr, .offset_within_region = offset,
        .size = int128_make64(size),
    };

    if (release) {
        rdmc->release_populated(rdm, &s);
        return true;
    }
    return rdmc->hold_populated(rdm, &s);
}

/*
 * Memory a device holds cannot become private, and nobody is told about
 * it; memory that is private, or becoming so, cannot be held
 */
static void test_held(void)
{
    Fixture x;
    TestListener a;
    TestListener *ls[] = { &a };
    Error *err = NULL;

    fixture_init(&x, &caps_v8);
    listener_add(&x.f, &a, &x.m, 'A', 0, FILE_SIZE);
    g_assert_true(hold(&x, 4 * PAGE, 2 * PAGE, false));
    g_string_truncate(x.m.log, 0);
    g_assert_cmpint(kvm_gmem_convert(&x.f, 0, 8 * PAGE, true, RUNTIME, UNSPEC,
                                     &err), ==, -EBUSY);
    g_assert_nonnull(strstr(error_get_pretty(err), "a device has it mapped"));
    error_free(err);
    g_assert_cmpstr(x.m.log->str, ==, "");
    g_assert_cmpuint(x.m.calls, ==, 0);
    g_assert_cmpuint(x.f.failures, ==, 1);
    check_state(&x, ls, 1);

    /* next to it is fine; private memory cannot be held */
    g_assert_cmpint(kvm_gmem_convert(&x.f, 6 * PAGE, 2 * PAGE, true, RUNTIME,
                                     UNSPEC, &error_abort), ==, 0);
    g_assert_false(hold(&x, 7 * PAGE, PAGE, false));
    g_assert_false(hold(&x, 5 * PAGE, 2 * PAGE, false));

    /* nor memory that is on its way */
    g_assert_cmpint(ram_block_attributes_discard_begin(x.f.attr, 16 * PAGE,
                                                       4 * PAGE), ==, 0);
    g_assert_false(hold(&x, 19 * PAGE, PAGE, false));
    ram_block_attributes_discard_end(x.f.attr, 16 * PAGE, 4 * PAGE, false);
    check_state(&x, ls, 1);
    g_assert_true(hold(&x, 19 * PAGE, PAGE, false));
    hold(&x, 19 * PAGE, PAGE, true);

    /* let go, and it converts */
    hold(&x, 4 * PAGE, 2 * PAGE, true);
    g_assert_cmpint(kvm_gmem_convert(&x.f, 0, 8 * PAGE, true, RUNTIME, UNSPEC,
                                     &error_abort), ==, 0);
    check_state(&x, ls, 1);
    fixture_destroy_listeners(&x, ls, 1);
}

/*
 * The two-backing path (kvm_convert_memory() without in-place
 * conversion) changes the state in one step: runs are told in one call
 * each, and a listener that fails leaves everything as it was
 */
static void test_state_change(void)
{
    Fixture x;
    TestListener a, b;
    RamBlockAttributes *attr;

    memset(&x, 0, sizeof(x));
    x.m.log = g_string_new("");
    /* created private, as RAM with a second backing is */
    attr = fixture_attributes(&x.mr, &x.rb, FILE_SIZE, false);
    x.f.attr = attr;
    g_assert_cmpuint(attr->nr_populated, ==, 0);
    g_assert_cmpint(ram_block_attributes_state_change(attr, 2 * PAGE,
                                                      2 * PAGE, false), ==, 0);
    listener_add(&x.f, &a, &x.m, 'A', 0, FILE_SIZE);
    listener_add(&x.f, &b, &x.m, 'B', 0, FILE_SIZE);
    g_assert_cmpuint(attr->nr_populated, ==, 2);

    /* B fails on the second of the two runs that become shared */
    b.fail_in = 2;
    g_string_truncate(x.m.log, 0);
    g_assert_cmpint(ram_block_attributes_state_change(attr, 0, 8 * PAGE,
                                                      false), ==, -ENOMEM);
    g_assert_cmpstr(x.m.log->str, ==, "PB 0+2000;PA 0+2000;PB 4000+4000;"
                    "DB 0+2000;DA 0+2000;");
    g_assert_cmpuint(attr->nr_populated, ==, 2);
    g_assert_true(ram_block_attributes_range_is(attr, 2 * PAGE, 2 * PAGE,
                                                true));
    g_assert_true(ram_block_attributes_range_is(attr, 4 * PAGE, 4 * PAGE,
                                                false));
    for (int i = 0; i < NR_PAGES; i++) {
        g_assert_cmpint(a.mapped[i], ==, i == 2 || i == 3);
        g_assert_cmpint(b.mapped[i], ==, i == 2 || i == 3);
    }

    /* then it works: one call per run and listener, and counts follow */
    g_string_truncate(x.m.log, 0);
    g_assert_cmpint(ram_block_attributes_state_change(attr, 0, 8 * PAGE,
                                                      false), ==, 0);
    g_assert_cmpstr(x.m.log->str, ==, "PB 0+2000;PA 0+2000;PB 4000+4000;"
                    "PA 4000+4000;");
    g_assert_cmpuint(attr->nr_populated, ==, 8);
    g_assert_cmpuint(ram_block_attributes_populated_size(attr), ==, 8 * PAGE);
    g_string_truncate(x.m.log, 0);
    g_assert_cmpint(ram_block_attributes_state_change(attr, 4 * PAGE,
                                                      8 * PAGE, true), ==, 0);
    g_assert_cmpstr(x.m.log->str, ==, "DB 4000+4000;DA 4000+4000;");
    g_assert_cmpuint(attr->nr_populated, ==, 4);

    /* a range already in the state asked for: nobody is told */
    g_string_truncate(x.m.log, 0);
    g_assert_cmpint(ram_block_attributes_state_change(attr, 8 * PAGE,
                                                      4 * PAGE, true), ==, 0);
    g_assert_cmpint(ram_block_attributes_state_change(attr, 0, 4 * PAGE,
                                                      false), ==, 0);
    g_assert_cmpstr(x.m.log->str, ==, "");
    g_assert_cmpuint(attr->nr_populated, ==, 4);

    listener_del(&x.f, &a);
    listener_del(&x.f, &b);
    ram_block_attributes_destroy(attr);
    g_string_free(x.m.log, true);
}

int main(int argc, char **argv)
{
    module_call_init(MODULE_INIT_QOM);
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/kvm-gmem-convert/held", test_held);
    g_test_add_func("/kvm-gmem-convert/state-change", test_state_change);
    g_test_add_func("/kvm-gmem-convert/order", test_order);
    g_test_add_func("/kvm-gmem-convert/rollback-kernel", test_rollback_kernel);
    g_test_add_func("/kvm-gmem-convert/rollback-kernel-listener",
                    test_rollback_kernel_listener);
    g_test_add_func("/kvm-gmem-convert/rollback-listener",
                    test_rollback_listener);
    g_test_add_func("/kvm-gmem-convert/rollback-busy", test_rollback_busy);
    g_test_add_func("/kvm-gmem-convert/eagain-shared", test_eagain_shared);
    g_test_add_func("/kvm-gmem-convert/already", test_already);
    g_test_add_func("/kvm-gmem-convert/model", test_model);
    g_test_add_func("/kvm-gmem-convert/eagain", test_eagain);
    g_test_add_func("/kvm-gmem-convert/content", test_content);
    g_test_add_func("/kvm-gmem-convert/invalid", test_invalid);
    g_test_add_func("/kvm-gmem-convert/replay", test_replay);
    g_test_add_data_func("/kvm-gmem-convert/random/v5", &caps_v5,
                         test_random);
    g_test_add_data_func("/kvm-gmem-convert/random/v8", &caps_v8,
                         test_random);
    return g_test_run();
}
