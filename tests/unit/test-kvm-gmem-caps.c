/*
 * Unit tests of the guest_memfd capability table: for each generation of
 * the kernel interface, what KVM reports and the table QEMU must derive,
 * written out by hand.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/error-internal.h"
#include "system/kvm-gmem.h"
#include "system/kvm-gmem-uapi.h"

#define PRIV KVM_MEMORY_ATTRIBUTE_PRIVATE
#define MMAP_SHARED (GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED)
#define ZERO KVM_SET_MEMORY_ATTRIBUTES2_ZERO
#define PRESERVE KVM_SET_MEMORY_ATTRIBUTES2_PRESERVE

typedef struct Generation {
    const char *name;
    KvmGmemCaps caps;
    KvmGuestMemfdMode mode;
    /*
     * One letter per conversion, phase by phase (pre-launch, runtime),
     * then direction (to-private, to-shared), then content (unspecified,
     * zero, preserve), in groups of three:
     *   U unsupported, P plain, K kernel flag, L launch update (populate),
     *   S userspace (hole punch), I inherent (two backings)
     */
    const char *table;
    /* What the VM type does with memory */
    KvmGmemVmType vm;
} Generation;

static const Generation generations[] = {
    { "linux-6.7", { .guest_memfd = false },
      KVM_GUEST_MEMFD_MODE_NONE, "UUU UUU UUU UUU" },
    { "linux-6.8-default-vm", { .guest_memfd = true },
      KVM_GUEST_MEMFD_MODE_NONE, "UUU UUU UUU UUU" },
    /* these machines */
    { "linux-6.18", { .guest_memfd = true, .gmem_flags = MMAP_SHARED },
      KVM_GUEST_MEMFD_MODE_SHARED_ONLY, "UUU UUU UUU UUU" },
    { "legacy-snp", { .guest_memfd = true, .vm_attrs = PRIV },
      KVM_GUEST_MEMFD_MODE_LEGACY, "PUL PIU PUU PIU",
      { .launch_update = true } },
    { "legacy-sw-protected", { .guest_memfd = true, .vm_attrs = PRIV },
      KVM_GUEST_MEMFD_MODE_LEGACY, "PUU PIU PUU PIU" },
    { "legacy-snp-6.18", { .guest_memfd = true, .vm_attrs = PRIV,
                           .gmem_flags = MMAP_SHARED },
      KVM_GUEST_MEMFD_MODE_LEGACY, "PUL PIU PUU PIU",
      { .launch_update = true } },
    /* v4/v5: one mask of content flags; the seed rule for SNP/TDX */
    { "v5-snp", { .guest_memfd = true, .gmem_flags = MMAP_SHARED,
                  .gmem_attrs = PRIV, .attr2_flags = ZERO | PRESERVE },
      KVM_GUEST_MEMFD_MODE_IN_PLACE, "PUK PKU PUU PKU",
      { .launch_update = true } },
    { "v5-sw-protected", { .guest_memfd = true, .gmem_flags = MMAP_SHARED,
                           .gmem_attrs = PRIV,
                           .attr2_flags = ZERO | PRESERVE },
      KVM_GUEST_MEMFD_MODE_IN_PLACE, "PUK PKK PUK PKK" },
    { "v5-snp-zero-only", { .guest_memfd = true, .gmem_flags = MMAP_SHARED,
                            .gmem_attrs = PRIV, .attr2_flags = ZERO },
      KVM_GUEST_MEMFD_MODE_IN_PLACE, "PUU PKU PUU PKU",
      { .launch_update = true } },
    /* v6-v8: flags must be 0; NULL-source launch updates */
    { "v8-snp", { .guest_memfd = true, .gmem_flags = MMAP_SHARED,
                  .gmem_attrs = PRIV },
      KVM_GUEST_MEMFD_MODE_IN_PLACE, "PUL PSU PUU PSU",
      { .launch_update = true } },
    { "v8-tdx-no-init-shared", { .guest_memfd = true,
                                 .gmem_flags = GUEST_MEMFD_FLAG_MMAP,
                                 .gmem_attrs = PRIV },
      KVM_GUEST_MEMFD_MODE_IN_PLACE, "PUL PSU PUU PSU",
      { .launch_update = true } },
    { "v8-sw-protected", { .guest_memfd = true, .gmem_flags = MMAP_SHARED,
                           .gmem_attrs = PRIV },
      KVM_GUEST_MEMFD_MODE_IN_PLACE, "PUI PSI PUI PSI",
      { .private_plain = true } },
    /* a VM type whose private memory is encrypted, but no launch update */
    { "v8-encrypted-no-launch", { .guest_memfd = true,
                                  .gmem_flags = MMAP_SHARED,
                                  .gmem_attrs = PRIV },
      KVM_GUEST_MEMFD_MODE_IN_PLACE, "PUU PSU PUU PSU" },
    /* the per-phase capabilities proposed in review; they win over one mask */
    { "per-phase-snp", { .guest_memfd = true, .gmem_flags = MMAP_SHARED,
                         .gmem_attrs = PRIV, .attr2_flags = ZERO | PRESERVE,
                         .pre_launch_flags = ZERO | PRESERVE,
                         .post_launch_flags = ZERO },
      KVM_GUEST_MEMFD_MODE_IN_PLACE, "PUK PKU PUU PKU",
      { .launch_update = true } },
    { "per-phase-sw-protected", { .guest_memfd = true,
                                  .gmem_flags = MMAP_SHARED,
                                  .gmem_attrs = PRIV,
                                  .pre_launch_flags = PRESERVE,
                                  .post_launch_flags = ZERO | PRESERVE },
      KVM_GUEST_MEMFD_MODE_IN_PLACE, "PUK PSK PUK PKK" },
    { "per-phase-snp-no-preserve", { .guest_memfd = true,
                                     .gmem_flags = MMAP_SHARED,
                                     .gmem_attrs = PRIV,
                                     .pre_launch_flags = ZERO,
                                     .post_launch_flags = ZERO },
      KVM_GUEST_MEMFD_MODE_IN_PLACE, "PUU PKU PUU PKU",
      { .launch_update = true } },
};

/*
 * Real kernels: what KVM_CHECK_EXTENSION answers on the VM (numbers not
 * listed answer 0) and what the conversion ioctl does with a page, and
 * what QEMU must make of it.  The numbers are those of the revisions
 * (../shared/docs/kernel-uapi.md, section 2): v4 and v5 put
 * KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES at 249 and
 * KVM_CAP_MEMORY_ATTRIBUTES2_FLAGS at 250, v7 the first at 249 alone, v8
 * at 250; a later work tree at 251; trees since gave 250 and 251 to
 * KVM_CAP_PPC_COMPAT_CAPS and KVM_CAP_ARM_PMU_V3_STRICT.
 */
static char letter(KvmGuestMemfdMeans means);
static void table_letters(const KvmGmemTable *table, GString *got);

#define BASE "231=1,234=1,244=3"

typedef struct Kernel {
    const char *name;
    const char *answers;
    bool private_plain;         /* a software-protected VM */
    bool launch_update;         /* SEV-SNP or TDX */
    int ioctl_error;            /* what every conversion returns, or 0 */
    uint64_t flags_accepted;    /* content flags conversions accept */
    /* expected */
    KvmGuestMemfdMode mode;
    unsigned int attrs_cap;
    uint64_t attr2_flags;
    bool warned;
    const char *table;
} Kernel;

static const Kernel kernels[] = {
    /* these machines */
    { "linux-6.18", BASE, true, false, -ENOTTY, 0,
      KVM_GUEST_MEMFD_MODE_SHARED_ONLY, 0, 0, false, "UUU UUU UUU UUU" },
    { "v4-sw-protected", BASE ",248=1,249=8,250=3", true, false, 0, 3,
      KVM_GUEST_MEMFD_MODE_IN_PLACE, 249, 3, false, "PUK PKK PUK PKK" },
    { "v5-snp", BASE ",249=8,250=3", false, true, 0, 3,
      KVM_GUEST_MEMFD_MODE_IN_PLACE, 249, 3, false, "PUK PKU PUU PKU" },
    /* v5 with only PRESERVE advertised for this VM type */
    { "v5-tdx-preserve", BASE ",249=8,250=2", false, true, 0, 2,
      KVM_GUEST_MEMFD_MODE_IN_PLACE, 249, 2, false, "PUK PSU PUU PSU" },
    { "v7-sw-protected", BASE ",249=8", true, false, 0, 0,
      KVM_GUEST_MEMFD_MODE_IN_PLACE, 249, 0, false, "PUI PSI PUI PSI" },
    { "v8-sw-protected", BASE ",250=8", true, false, 0, 0,
      KVM_GUEST_MEMFD_MODE_IN_PLACE, 250, 0, false, "PUI PSI PUI PSI" },
    { "v8-snp", BASE ",250=8", false, true, 0, 0,
      KVM_GUEST_MEMFD_MODE_IN_PLACE, 250, 0, false, "PUL PSU PUU PSU" },
    /* v8 reads 0 for a VM type without private memory */
    { "v8-default-vm", BASE, false, false, -EINVAL, 0,
      KVM_GUEST_MEMFD_MODE_SHARED_ONLY, 0, 0, false, "UUU UUU UUU UUU" },
    /* CONFIG_KVM_VM_MEMORY_ATTRIBUTES=y, parameter left off */
    { "v8-vm-attributes", BASE ",233=8", false, true, -ENOTTY, 0,
      KVM_GUEST_MEMFD_MODE_LEGACY, 0, 0, false, "PUL PIU PUU PIU" },
    { "later-tree", BASE ",250=0,251=8", true, false, 0, 0,
      KVM_GUEST_MEMFD_MODE_IN_PLACE, 251, 0, false, "PUI PSI PUI PSI" },
    /* numbers given to other capabilities, which x86 answers with 0 */
    { "mainline-x86", BASE, false, false, -ENOTTY, 0,
      KVM_GUEST_MEMFD_MODE_SHARED_ONLY, 0, 0, false, "UUU UUU UUU UUU" },
    /* ... and other architectures with other values */
    { "arm-pmu-v3-strict-251", BASE ",251=1", false, false, -ENOTTY, 0,
      KVM_GUEST_MEMFD_MODE_SHARED_ONLY, 0, 0, false, "UUU UUU UUU UUU" },
    { "ppc-compat-caps-250", BASE ",250=3", false, false, -ENOTTY, 0,
      KVM_GUEST_MEMFD_MODE_SHARED_ONLY, 0, 0, false, "UUU UUU UUU UUU" },
    /* a capability that lies is ignored, with a warning */
    { "lying-attributes", BASE ",250=8", false, false, -ENOTTY, 0,
      KVM_GUEST_MEMFD_MODE_SHARED_ONLY, 0, 0, true, "UUU UUU UUU UUU" },
    { "lying-attributes-all-bits", BASE ",251=0xffffffff", true, false,
      -EINVAL, 0,
      KVM_GUEST_MEMFD_MODE_SHARED_ONLY, 0, 0, true, "UUU UUU UUU UUU" },
    /* something at 250 beside v7's 249, which takes no flags */
    { "lying-flags", BASE ",249=8,250=1", true, false, 0, 0,
      KVM_GUEST_MEMFD_MODE_IN_PLACE, 249, 0, true, "PUI PSI PUI PSI" },
    { "lying-zero-flag", BASE ",249=8,250=3", true, false, 0, 2,
      KVM_GUEST_MEMFD_MODE_IN_PLACE, 249, 2, true, "PUK PSK PUK PSK" },
};

typedef struct FakeKernel {
    const Kernel *k;
    bool shared;
    unsigned calls;
} FakeKernel;

static uint64_t fake_check(void *opaque, unsigned int cap)
{
    const char *p = ((FakeKernel *)opaque)->k->answers;

    while (p && *p) {
        char *end;
        uint64_t n = g_ascii_strtoull(p, &end, 10);

        g_assert(*end == '=');
        if (n == cap) {
            return g_ascii_strtoull(end + 1, NULL, 0);
        }
        p = strchr(end, ',');
        p = p ? p + 1 : NULL;
    }
    return 0;
}

static int fake_try(void *opaque, bool to_private, uint64_t flags)
{
    FakeKernel *f = opaque;

    f->calls++;
    if (f->k->ioctl_error) {
        return f->k->ioctl_error;
    }
    /* the probe converts to the other state only, so no early return */
    g_assert_cmpint(f->shared, ==, to_private);
    if (flags & ~f->k->flags_accepted) {
        return -EINVAL;
    }
    /* v5: ZERO toward private is refused (EOPNOTSUPP) */
    if (to_private && (flags & ZERO)) {
        return -EOPNOTSUPP;
    }
    f->shared = !to_private;
    return 0;
}

static void test_kernel(const void *data)
{
    const Kernel *k = data;
    FakeKernel fake = { .k = k, .shared = true };
    g_autoptr(GString) got = g_string_new("");
    KvmGmemVmType vm = {
        .private_plain = k->private_plain,
        .launch_update = k->launch_update,
    };
    KvmGmemCaps caps = {};
    Error *err = NULL;
    KvmGmemTable table;
    bool ok;

    kvm_gmem_caps_read(&caps, fake_check, &fake);
    ok = kvm_gmem_caps_confirm(&caps, true, fake_try, &fake, &err);
    g_assert_cmpint(!ok, ==, k->warned);
    g_assert_cmpint(!err, ==, !k->warned);
    if (err) {
        g_test_message("warning: %s", error_get_pretty(err));
        error_free(err);
    }
    kvm_gmem_caps_table(&caps, &vm, &table);
    table_letters(&table, got);
    g_assert_cmpint(table.mode, ==, k->mode);
    g_assert_cmpuint(caps.gmem_attrs_cap, ==, k->attrs_cap);
    g_assert_cmpuint(caps.attr2_flags, ==, k->attr2_flags);
    g_assert_cmpstr(got->str, ==, k->table);
    /* no page is converted where nothing claims conversions */
    if (!k->attrs_cap && !k->warned) {
        g_assert_cmpuint(fake.calls, ==, 0);
    }
}

/* A page that starts private is converted to shared first */
static void test_confirm_private_start(void)
{
    static const Kernel k = { .answers = BASE ",250=8" };
    FakeKernel fake = { .k = &k, .shared = false };
    KvmGmemCaps caps = {};

    kvm_gmem_caps_read(&caps, fake_check, &fake);
    g_assert_true(kvm_gmem_caps_confirm(&caps, false, fake_try, &fake,
                                        &error_abort));
    g_assert_cmpuint(fake.calls, ==, 2);
    g_assert_false(fake.shared);
}

/* The refusal names the module parameter of the running kernel */
static void test_hint(void)
{
    static const struct {
        KvmGmemParam param;
        const char *names;
        const char *not;
    } cases[] = {
        { KVM_GMEM_PARAM_GMEM_IN_PLACE, "kvm.gmem_in_place_conversion=1",
          "vm_memory_attributes" },
        { KVM_GMEM_PARAM_VM_MEMORY_ATTRS, "kvm.vm_memory_attributes=0",
          "gmem_in_place_conversion" },
        { KVM_GMEM_PARAM_UNKNOWN, "kvm.gmem_in_place_conversion=1 (v8 "
          "and later) or kvm.vm_memory_attributes=0", NULL },
    };

    for (int i = 0; i < ARRAY_SIZE(cases); i++) {
        KvmGmemCaps caps = { .guest_memfd = true, .gmem_flags = 3,
                             .param = cases[i].param };
        KvmGmemVmType vm = {};
        KvmGmemTable table;
        Error *err = NULL;

        kvm_gmem_caps_table(&caps, &vm, &table);
        g_assert_false(kvm_gmem_check_in_place(&table, &err));
        g_assert_nonnull(err);
        g_assert_nonnull(strstr(error_get_pretty(err), "(mode shared-only)"));
        g_assert_nonnull(err->hint);
        g_assert_nonnull(strstr(err->hint->str, cases[i].names));
        if (cases[i].not) {
            g_assert_null(strstr(err->hint->str, cases[i].not));
        }
        error_free(err);
    }
}

static char letter(KvmGuestMemfdMeans means)
{
    static const char letters[KVM_GUEST_MEMFD_MEANS__MAX] = {
        [KVM_GUEST_MEMFD_MEANS_UNSUPPORTED] = 'U',
        [KVM_GUEST_MEMFD_MEANS_PLAIN] = 'P',
        [KVM_GUEST_MEMFD_MEANS_KERNEL_FLAG] = 'K',
        [KVM_GUEST_MEMFD_MEANS_POPULATE] = 'L',
        [KVM_GUEST_MEMFD_MEANS_USERSPACE] = 'S',
        [KVM_GUEST_MEMFD_MEANS_INHERENT] = 'I',
    };

    g_assert(means < KVM_GUEST_MEMFD_MEANS__MAX && letters[means]);
    return letters[means];
}

/* The table as letters, phase by phase, direction by direction */
static void table_letters(const KvmGmemTable *table, GString *got)
{
    for (int p = 0; p < KVM_GUEST_MEMFD_PHASE__MAX; p++) {
        for (int d = 0; d < KVM_GUEST_MEMFD_DIRECTION__MAX; d++) {
            if (got->len) {
                g_string_append_c(got, ' ');
            }
            for (int c = 0; c < KVM_GUEST_MEMFD_CONTENT__MAX; c++) {
                g_string_append_c(got, letter(table->means[p][d][c]));
            }
        }
    }
}

static void test_generation(const void *data)
{
    const Generation *g = data;
    g_autoptr(GString) got = g_string_new("");
    KvmGmemTable table;

    kvm_gmem_caps_table(&g->caps, &g->vm, &table);
    table_letters(&table, got);
    g_assert_cmpint(table.mode, ==, g->mode);
    g_assert_cmpstr(got->str, ==, g->table);
}

/* Never a silent downgrade: a content request is honoured or refused */
static void test_invariants(void)
{
    for (int i = 0; i < ARRAY_SIZE(generations); i++) {
        KvmGmemTable t;

        kvm_gmem_caps_table(&generations[i].caps, &generations[i].vm, &t);
        for (int p = 0; p < KVM_GUEST_MEMFD_PHASE__MAX; p++) {
            for (int d = 0; d < KVM_GUEST_MEMFD_DIRECTION__MAX; d++) {
                KvmGuestMemfdMeans *m = t.means[p][d];

                /* only a request without guarantee is plain */
                g_assert(m[KVM_GUEST_MEMFD_CONTENT_ZERO] !=
                         KVM_GUEST_MEMFD_MEANS_PLAIN);
                g_assert(m[KVM_GUEST_MEMFD_CONTENT_PRESERVE] !=
                         KVM_GUEST_MEMFD_MEANS_PLAIN);
                /* no guarantee where no conversion at all */
                if (m[KVM_GUEST_MEMFD_CONTENT_UNSPECIFIED] ==
                    KVM_GUEST_MEMFD_MEANS_UNSUPPORTED) {
                    g_assert(m[KVM_GUEST_MEMFD_CONTENT_ZERO] ==
                             KVM_GUEST_MEMFD_MEANS_UNSUPPORTED);
                    g_assert(m[KVM_GUEST_MEMFD_CONTENT_PRESERVE] ==
                             KVM_GUEST_MEMFD_MEANS_UNSUPPORTED);
                }
            }
        }
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    for (int i = 0; i < ARRAY_SIZE(generations); i++) {
        g_autofree char *path = g_strdup_printf("/kvm-gmem-caps/%s",
                                                generations[i].name);

        g_test_add_data_func(path, &generations[i], test_generation);
    }
    g_test_add_func("/kvm-gmem-caps/invariants", test_invariants);
    for (int i = 0; i < ARRAY_SIZE(kernels); i++) {
        g_autofree char *path = g_strdup_printf("/kvm-gmem-caps/kernel/%s",
                                                kernels[i].name);

        g_test_add_data_func(path, &kernels[i], test_kernel);
    }
    g_test_add_func("/kvm-gmem-caps/confirm-private-start",
                    test_confirm_private_start);
    g_test_add_func("/kvm-gmem-caps/hint", test_hint);
    return g_test_run();
}
