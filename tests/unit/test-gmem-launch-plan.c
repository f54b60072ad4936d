/*
 * Unit tests of the in-place launch planner for SEV-SNP and TDX: for
 * typical layouts and each generation of the kernel interface, the
 * ordered operations or the refusal, written out by hand.  These machines
 * have neither SEV-SNP nor TDX, so this is where the launch is tested;
 * sev.c and tdx.c carry the plans out.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "system/kvm-gmem-uapi.h"
#include "target/i386/gmem-launch.h"

#define PRIV KVM_MEMORY_ATTRIBUTE_PRIVATE
#define MMAP_SHARED (GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED)
#define ZERO KVM_SET_MEMORY_ATTRIBUTES2_ZERO
#define PRESERVE KVM_SET_MEMORY_ATTRIBUTES2_PRESERVE

#define GiB (1ULL << 30)

typedef struct Generation {
    const char *name;
    KvmGmemCaps caps;
    /* How PRESERVE toward private is met before launch, or NULL */
    const char *preserve;
    /* Otherwise, the refusal of an SEV-SNP launch */
    const char *error;
} Generation;

#define NOT_IN_PLACE(mode) \
    "cannot launch SEV-SNP in place: the host's KVM cannot convert " \
    "guest_memfd memory in place (mode " mode "): it offers no per-file " \
    "memory attributes (KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES) for this VM"

#define NO_PRESERVE \
    "SEV-SNP page at 0xffc00000+0x400000: cannot convert to private " \
    "preserving its contents: the host's KVM has neither the PRESERVE " \
    "conversion flag nor launch updates from the page itself"

/* Every generation with the VM type of SEV-SNP */
static const KvmGmemVmType snp = { .launch_update = true };

static const Generation generations[] = {
    { "linux-6.8", { .guest_memfd = true },
      NULL, NOT_IN_PLACE("none") },
    /* these machines */
    { "linux-6.18", { .guest_memfd = true, .gmem_flags = MMAP_SHARED },
      NULL, NOT_IN_PLACE("shared-only") },
    { "legacy", { .guest_memfd = true, .vm_attrs = PRIV,
                  .gmem_flags = MMAP_SHARED },
      NULL, NOT_IN_PLACE("legacy") },
    /* v4/v5: one mask of content flags */
    { "v5", { .guest_memfd = true, .gmem_flags = MMAP_SHARED,
              .gmem_attrs = PRIV, .attr2_flags = ZERO | PRESERVE },
      "kernel-flag" },
    { "v5-zero-only", { .guest_memfd = true, .gmem_flags = MMAP_SHARED,
                        .gmem_attrs = PRIV, .attr2_flags = ZERO },
      NULL, NO_PRESERVE },
    /* the per-phase masks proposed in review of v5 */
    { "per-phase", { .guest_memfd = true, .gmem_flags = MMAP_SHARED,
                     .gmem_attrs = PRIV, .pre_launch_flags = ZERO | PRESERVE,
                     .post_launch_flags = ZERO },
      "kernel-flag" },
    { "per-phase-no-preserve", { .guest_memfd = true,
                                 .gmem_flags = MMAP_SHARED,
                                 .gmem_attrs = PRIV,
                                 .pre_launch_flags = ZERO,
                                 .post_launch_flags = ZERO },
      NULL, NO_PRESERVE },
    /* v6 to v8: no flags; the launch update reads the page in place */
    { "v8", { .guest_memfd = true, .gmem_flags = MMAP_SHARED,
              .gmem_attrs = PRIV },
      "populate" },
};

/* A 4 GiB guest: 2 GiB below 4 GiB, 2 GiB above, a 4 MiB firmware */
static const GmemLaunchRegion snp_regions[] = {
    { "ram", 0, 0xe0000, true },
    { "isa-bios", 0xe0000, 0x20000, true },
    { "ram", 0x100000, 2 * GiB - 0x100000, true },
    { "pc.bios", 4 * GiB - 0x400000, 0x400000, true },
    { "ram", 4 * GiB, 2 * GiB, true },
};

/*
 * In the order sev.c queues them: the firmware, then the pages of the
 * OVMF SEV metadata; the kernel hashes are a normal page with
 * kernel-hashes=on.
 */
static const GmemLaunchItem snp_items[] = {
    { GMEM_LAUNCH_SNP_NORMAL, 4 * GiB - 0x400000, 0x400000, false, true },
    { GMEM_LAUNCH_SNP_ZERO, 0x800000, 0x9000, false, true },
    { GMEM_LAUNCH_SNP_SECRETS, 0x809000, 0x1000, false, true },
    { GMEM_LAUNCH_SNP_CPUID, 0x80a000, 0x1000, false, true },
    { GMEM_LAUNCH_SNP_ZERO, 0x80b000, 0x2000, false, true },
    { GMEM_LAUNCH_SNP_NORMAL, 0x80d000, 0x1000, false, true },
};

/* %1$s: the means of PRESERVE */
static const char snp_plan[] =
    "convert 0xffc00000+0x400000 preserve %1$s (SEV-SNP page)\n"
    "update 0xffc00000+0x400000 in-place (SEV-SNP page)\n"
    "clear 0x800000+0x9000 (SEV-SNP zero page)\n"
    "convert 0x800000+0x9000 unspecified plain (SEV-SNP zero page)\n"
    "update 0x800000+0x9000 in-place (SEV-SNP zero page)\n"
    "clear 0x809000+0x1000 (SEV-SNP secrets page)\n"
    "convert 0x809000+0x1000 unspecified plain (SEV-SNP secrets page)\n"
    "update 0x809000+0x1000 in-place (SEV-SNP secrets page)\n"
    "convert 0x80a000+0x1000 unspecified plain (SEV-SNP CPUID page)\n"
    "update 0x80a000+0x1000 from-copy (SEV-SNP CPUID page)\n"
    "clear 0x80b000+0x2000 (SEV-SNP zero page)\n"
    "convert 0x80b000+0x2000 unspecified plain (SEV-SNP zero page)\n"
    "update 0x80b000+0x2000 in-place (SEV-SNP zero page)\n"
    "convert 0x80d000+0x1000 preserve %1$s (SEV-SNP page)\n"
    "update 0x80d000+0x1000 in-place (SEV-SNP page)\n"
    "convert 0x0+0xe0000 unspecified plain (rest of RAM)\n"
    "convert 0xe0000+0x20000 unspecified plain (rest of RAM)\n"
    "convert 0x100000+0x700000 unspecified plain (rest of RAM)\n"
    "convert 0x80e000+0x7f7f2000 unspecified plain (rest of RAM)\n"
    "convert 0x100000000+0x80000000 unspecified plain (rest of RAM)\n"
    "finish\n";

static const GmemLaunchRegion tdx_regions[] = {
    { "ram", 0, 2 * GiB, true },
    { "pc.bios", 4 * GiB - 0x400000, 0x400000, true },
    { "ram", 4 * GiB, 2 * GiB, true },
};

/* The sections of a TDVF image, in its metadata's order */
static const GmemLaunchItem tdx_items[] = {
    { GMEM_LAUNCH_TDX_BFV, 0xffc84000, 0x37c000, true, true },
    { GMEM_LAUNCH_TDX_CFV, 0xffc00000, 0x84000, false, true },
    { GMEM_LAUNCH_TDX_TD_HOB, 0x809000, 0x2000, false, true },
    { GMEM_LAUNCH_TDX_TEMP_MEM, 0x800000, 0x9000, false, true },
    { GMEM_LAUNCH_TDX_TEMP_MEM, 0x80b000, 0x15000, false, true },
};

static const char tdx_plan[] =
    "convert 0xffc84000+0x37c000 preserve %1$s (TDVF BFV section)\n"
    "update 0xffc84000+0x37c000 in-place measured (TDVF BFV section)\n"
    "convert 0xffc00000+0x84000 preserve %1$s (TDVF CFV section)\n"
    "update 0xffc00000+0x84000 in-place (TDVF CFV section)\n"
    "convert 0x809000+0x2000 preserve %1$s (TDVF TD_HOB section)\n"
    "update 0x809000+0x2000 in-place (TDVF TD_HOB section)\n"
    "clear 0x800000+0x9000 (TDVF TEMP_MEM section)\n"
    "convert 0x800000+0x9000 preserve %1$s (TDVF TEMP_MEM section)\n"
    "update 0x800000+0x9000 in-place (TDVF TEMP_MEM section)\n"
    "clear 0x80b000+0x15000 (TDVF TEMP_MEM section)\n"
    "convert 0x80b000+0x15000 preserve %1$s (TDVF TEMP_MEM section)\n"
    "update 0x80b000+0x15000 in-place (TDVF TEMP_MEM section)\n"
    "convert 0x0+0x800000 unspecified plain (rest of RAM)\n"
    "convert 0x820000+0x7f7e0000 unspecified plain (rest of RAM)\n"
    "convert 0x100000000+0x80000000 unspecified plain (rest of RAM)\n"
    "finish\n";

typedef struct Layout {
    GmemLaunchLayout layout;
    GmemLaunchRegion regions[8];
    GmemLaunchItem items[8];
} Layout;

static void layout_init(Layout *l, GmemLaunchTarget target)
{
    const GmemLaunchRegion *r = target == GMEM_LAUNCH_SNP ? snp_regions :
                                                            tdx_regions;
    const GmemLaunchItem *it = target == GMEM_LAUNCH_SNP ? snp_items :
                                                           tdx_items;

    memset(l, 0, sizeof(*l));
    l->layout.target = target;
    l->layout.regions = l->regions;
    l->layout.items = l->items;
    if (target == GMEM_LAUNCH_SNP) {
        l->layout.nr_regions = ARRAY_SIZE(snp_regions);
        l->layout.nr_items = ARRAY_SIZE(snp_items);
    } else {
        l->layout.nr_regions = ARRAY_SIZE(tdx_regions);
        l->layout.nr_items = ARRAY_SIZE(tdx_items);
    }
    memcpy(l->regions, r, l->layout.nr_regions * sizeof(*r));
    memcpy(l->items, it, l->layout.nr_items * sizeof(*it));
}

static char *plan_str(const GmemLaunchPlan *plan)
{
    GString *s = g_string_new("");

    for (size_t i = 0; i < plan->nr_ops; i++) {
        g_autofree char *op = gmem_launch_op_str(&plan->ops[i]);

        g_string_append_printf(s, "%s\n", op);
    }
    return g_string_free(s, false);
}

static void table_of(const char *name, KvmGmemTable *table)
{
    for (int i = 0; i < ARRAY_SIZE(generations); i++) {
        if (!strcmp(generations[i].name, name)) {
            kvm_gmem_caps_table(&generations[i].caps, &snp, table);
            return;
        }
    }
    g_assert_not_reached();
}

/* Plan @l before launch on the kernel generation @gen */
static GmemLaunchPlan *plan_on(const Layout *l, const char *gen,
                               KvmGuestMemfdPhase phase, Error **errp)
{
    KvmGmemTable table;

    table_of(gen, &table);
    return gmem_launch_plan(&l->layout, &table, phase, errp);
}

static void check_refused(const Layout *l, const char *gen,
                          KvmGuestMemfdPhase phase, const char *expected)
{
    Error *err = NULL;

    g_assert_null(plan_on(l, gen, phase, &err));
    g_assert_nonnull(err);
    g_assert_cmpstr(error_get_pretty(err), ==, expected);
    error_free(err);
}

static void test_generation(const void *data)
{
    const Generation *g = data;

    for (int t = GMEM_LAUNCH_SNP; t <= GMEM_LAUNCH_TDX; t++) {
        g_autoptr(GmemLaunchPlan) plan = NULL;
        g_autofree char *want = NULL;
        g_autofree char *got = NULL;
        Error *err = NULL;
        Layout l;

        layout_init(&l, t);
        plan = plan_on(&l, g->name, KVM_GUEST_MEMFD_PHASE_PRE_LAUNCH, &err);
        if (!g->preserve) {
            g_autofree char *expected = g_strdup(g->error);

            g_assert_null(plan);
            if (t == GMEM_LAUNCH_TDX) {
                /* The same refusal, for the first TDX item or target */
                if (strstr(expected, "SEV-SNP page")) {
                    g_free(expected);
                    expected = g_strdup(
                        "TDVF BFV section at 0xffc84000+0x37c000: cannot "
                        "convert to private preserving its contents: the "
                        "host's KVM has neither the PRESERVE conversion "
                        "flag nor launch updates from the page itself");
                } else {
                    g_autofree char *rest = g_strdup(
                        expected + strlen("cannot launch SEV-SNP"));

                    g_free(expected);
                    expected = g_strdup_printf("cannot launch TDX%s", rest);
                }
            }
            g_assert_cmpstr(error_get_pretty(err), ==, expected);
            error_free(err);
            continue;
        }
        g_assert_null(err);
        want = g_strdup_printf(t == GMEM_LAUNCH_SNP ? snp_plan : tdx_plan,
                               g->preserve);
        got = plan_str(plan);
        g_assert_cmpstr(got, ==, want);
    }
}

/* After LAUNCH_FINISH or FINALIZE_VM, nothing can be populated any more */
static void test_runtime(void)
{
    Layout l;

    layout_init(&l, GMEM_LAUNCH_SNP);
    check_refused(&l, "v8", KVM_GUEST_MEMFD_PHASE_RUNTIME,
                  "cannot launch SEV-SNP in place at runtime: the launch is "
                  "finished, and contents can no longer be carried into "
                  "private memory");
    layout_init(&l, GMEM_LAUNCH_TDX);
    check_refused(&l, "v5", KVM_GUEST_MEMFD_PHASE_RUNTIME,
                  "cannot launch TDX in place at runtime: the launch is "
                  "finished, and contents can no longer be carried into "
                  "private memory");
}

/* The decisions of the table, one by one, with their refusals */
static void test_conversions(void)
{
    static const struct {
        const char *gen;
        KvmGuestMemfdPhase phase;
        bool to_private;
        KvmGuestMemfdContent content;
        KvmGuestMemfdMeans means;
        const char *error;
    } cases[] = {
        /* before launch: PRESERVE by a flag or by the launch update */
        { "v5", KVM_GUEST_MEMFD_PHASE_PRE_LAUNCH, true,
          KVM_GUEST_MEMFD_CONTENT_PRESERVE, KVM_GUEST_MEMFD_MEANS_KERNEL_FLAG },
        { "v8", KVM_GUEST_MEMFD_PHASE_PRE_LAUNCH, true,
          KVM_GUEST_MEMFD_CONTENT_PRESERVE, KVM_GUEST_MEMFD_MEANS_POPULATE },
        /* after launch: never */
        { "v5", KVM_GUEST_MEMFD_PHASE_RUNTIME, true,
          KVM_GUEST_MEMFD_CONTENT_PRESERVE, KVM_GUEST_MEMFD_MEANS_UNSUPPORTED,
          "x: cannot convert to private preserving its contents at runtime: "
          "contents survive that conversion only before the launch is "
          "finished" },
        { "per-phase", KVM_GUEST_MEMFD_PHASE_RUNTIME, true,
          KVM_GUEST_MEMFD_CONTENT_PRESERVE, KVM_GUEST_MEMFD_MEANS_UNSUPPORTED,
          "x: cannot convert to private preserving its contents at runtime: "
          "contents survive that conversion only before the launch is "
          "finished" },
        { "v8", KVM_GUEST_MEMFD_PHASE_RUNTIME, true,
          KVM_GUEST_MEMFD_CONTENT_PRESERVE, KVM_GUEST_MEMFD_MEANS_UNSUPPORTED,
          "x: cannot convert to private preserving its contents at runtime: "
          "contents survive that conversion only before the launch is "
          "finished" },
        /* not before launch either */
        { "v5-zero-only", KVM_GUEST_MEMFD_PHASE_RUNTIME, true,
          KVM_GUEST_MEMFD_CONTENT_PRESERVE, KVM_GUEST_MEMFD_MEANS_UNSUPPORTED,
          "x: cannot convert to private preserving its contents: the host's "
          "KVM has neither the PRESERVE conversion flag nor launch updates "
          "from the page itself" },
        /* zeros are never promised toward private */
        { "v5", KVM_GUEST_MEMFD_PHASE_PRE_LAUNCH, true,
          KVM_GUEST_MEMFD_CONTENT_ZERO, KVM_GUEST_MEMFD_MEANS_UNSUPPORTED,
          "x: a conversion to private cannot promise zeros: only a launch "
          "update or the guest's acceptance zeroes private memory" },
        { "v8", KVM_GUEST_MEMFD_PHASE_RUNTIME, true,
          KVM_GUEST_MEMFD_CONTENT_ZERO, KVM_GUEST_MEMFD_MEANS_UNSUPPORTED,
          "x: a conversion to private cannot promise zeros: only a launch "
          "update or the guest's acceptance zeroes private memory" },
        /* toward shared at runtime: zeros by flag or hole, never contents */
        { "v5", KVM_GUEST_MEMFD_PHASE_RUNTIME, false,
          KVM_GUEST_MEMFD_CONTENT_ZERO, KVM_GUEST_MEMFD_MEANS_KERNEL_FLAG },
        { "v8", KVM_GUEST_MEMFD_PHASE_RUNTIME, false,
          KVM_GUEST_MEMFD_CONTENT_ZERO, KVM_GUEST_MEMFD_MEANS_USERSPACE },
        { "v8", KVM_GUEST_MEMFD_PHASE_RUNTIME, false,
          KVM_GUEST_MEMFD_CONTENT_PRESERVE, KVM_GUEST_MEMFD_MEANS_UNSUPPORTED,
          "x: the host's KVM cannot convert it to shared preserving its "
          "contents at runtime" },
        { "v8", KVM_GUEST_MEMFD_PHASE_RUNTIME, false,
          KVM_GUEST_MEMFD_CONTENT_UNSPECIFIED, KVM_GUEST_MEMFD_MEANS_PLAIN },
        /* no conversion at all on these machines */
        { "linux-6.18", KVM_GUEST_MEMFD_PHASE_RUNTIME, false,
          KVM_GUEST_MEMFD_CONTENT_UNSPECIFIED,
          KVM_GUEST_MEMFD_MEANS_UNSUPPORTED,
          "x: the host's KVM cannot convert it to shared at runtime" },
    };

    for (int i = 0; i < ARRAY_SIZE(cases); i++) {
        KvmGuestMemfdMeans means;
        KvmGmemTable table;
        Error *err = NULL;
        bool ok;

        table_of(cases[i].gen, &table);
        ok = gmem_launch_conversion(&table, cases[i].phase,
                                    cases[i].to_private, cases[i].content,
                                    "x", &means, &err);
        g_assert_cmpint(means, ==, cases[i].means);
        g_assert_cmpint(ok, ==, !cases[i].error);
        if (cases[i].error) {
            g_assert_cmpstr(error_get_pretty(err), ==, cases[i].error);
            error_free(err);
        }
    }
}

/*
 * A kernel that says it can preserve contents at runtime is believed,
 * whatever the VM type: the decision comes from capabilities.
 */
static void test_capabilities_decide(void)
{
    KvmGmemCaps caps = {
        .guest_memfd = true, .gmem_flags = MMAP_SHARED, .gmem_attrs = PRIV,
        .pre_launch_flags = PRESERVE, .post_launch_flags = PRESERVE,
    };
    KvmGuestMemfdMeans means;
    KvmGmemTable table;

    kvm_gmem_caps_table(&caps, &snp, &table);
    g_assert_true(gmem_launch_conversion(&table,
                                         KVM_GUEST_MEMFD_PHASE_RUNTIME, true,
                                         KVM_GUEST_MEMFD_CONTENT_PRESERVE,
                                         "x", &means, &error_abort));
    g_assert_cmpint(means, ==, KVM_GUEST_MEMFD_MEANS_KERNEL_FLAG);
}

/* Layouts that cannot be launched in place, whatever the kernel */
static void test_bad_layouts(void)
{
    Layout l;

    /* memory with a second backing: a non-guest_memfd backend */
    layout_init(&l, GMEM_LAUNCH_SNP);
    l.regions[4].in_place = false;
    check_refused(&l, "v8", KVM_GUEST_MEMFD_PHASE_PRE_LAUNCH,
                  "guest memory 'ram' at 0x100000000+0x80000000 is not "
                  "converted in place: back it with "
                  "memory-backend-guest-memfd");

    /* a page in the PCI hole */
    layout_init(&l, GMEM_LAUNCH_SNP);
    l.items[2].gpa = 0x90000000;
    check_refused(&l, "v8", KVM_GUEST_MEMFD_PHASE_PRE_LAUNCH,
                  "SEV-SNP secrets page at 0x90000000+0x1000 is not inside "
                  "one region of guest memory");

    /* across two regions: RAM and the ISA BIOS */
    layout_init(&l, GMEM_LAUNCH_SNP);
    l.items[1].gpa = 0xdf000;
    l.items[1].size = 0x2000;
    check_refused(&l, "v8", KVM_GUEST_MEMFD_PHASE_PRE_LAUNCH,
                  "SEV-SNP zero page at 0xdf000+0x2000 is not inside one "
                  "region of guest memory");

    /* past the end of RAM, and wrapping around */
    layout_init(&l, GMEM_LAUNCH_SNP);
    l.items[5].gpa = 6 * GiB - 0x1000;
    l.items[5].size = 0x2000;
    check_refused(&l, "v8", KVM_GUEST_MEMFD_PHASE_PRE_LAUNCH,
                  "SEV-SNP page at 0x17ffff000+0x2000 is not inside one "
                  "region of guest memory");
    l.items[5].gpa = 4 * GiB;
    l.items[5].size = -4 * GiB;
    check_refused(&l, "v8", KVM_GUEST_MEMFD_PHASE_PRE_LAUNCH,
                  "SEV-SNP page at 0x100000000+0xffffffff00000000 is not "
                  "inside one region of guest memory");

    /* not whole pages, or none */
    layout_init(&l, GMEM_LAUNCH_SNP);
    l.items[3].gpa = 0x80a800;
    check_refused(&l, "v8", KVM_GUEST_MEMFD_PHASE_PRE_LAUNCH,
                  "SEV-SNP CPUID page at 0x80a800+0x1000 is not a whole "
                  "number of pages");
    layout_init(&l, GMEM_LAUNCH_SNP);
    l.items[3].size = 0;
    check_refused(&l, "v8", KVM_GUEST_MEMFD_PHASE_PRE_LAUNCH,
                  "SEV-SNP CPUID page at 0x80a000+0x0 is not a whole "
                  "number of pages");

    /* two launch updates of one page */
    layout_init(&l, GMEM_LAUNCH_TDX);
    l.items[3].gpa = 0x808000;
    l.items[3].size = 0x2000;
    check_refused(&l, "v8", KVM_GUEST_MEMFD_PHASE_PRE_LAUNCH,
                  "TDVF TEMP_MEM section at 0x808000+0x2000 overlaps TDVF "
                  "TD_HOB section at 0x809000+0x2000");

    /* a firmware section its image does not map where it is measured */
    layout_init(&l, GMEM_LAUNCH_TDX);
    l.items[0].staged = false;
    check_refused(&l, "v8", KVM_GUEST_MEMFD_PHASE_PRE_LAUNCH,
                  "TDVF BFV section at 0xffc84000+0x37c000: its contents are "
                  "not at that address in guest memory, so it cannot be "
                  "populated in place");
}

/* No firmware metadata: only the firmware and the rest of RAM */
static void test_minimal(void)
{
    g_autoptr(GmemLaunchPlan) plan = NULL;
    g_autofree char *got = NULL;
    Layout l;

    layout_init(&l, GMEM_LAUNCH_SNP);
    l.layout.nr_items = 1;
    l.layout.nr_regions = 4;
    plan = plan_on(&l, "v8", KVM_GUEST_MEMFD_PHASE_PRE_LAUNCH, &error_abort);
    got = plan_str(plan);
    g_assert_cmpstr(got, ==,
        "convert 0xffc00000+0x400000 preserve populate (SEV-SNP page)\n"
        "update 0xffc00000+0x400000 in-place (SEV-SNP page)\n"
        "convert 0x0+0xe0000 unspecified plain (rest of RAM)\n"
        "convert 0xe0000+0x20000 unspecified plain (rest of RAM)\n"
        "convert 0x100000+0x7ff00000 unspecified plain (rest of RAM)\n"
        "finish\n");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    for (int i = 0; i < ARRAY_SIZE(generations); i++) {
        g_autofree char *path = g_strdup_printf("/gmem-launch-plan/kernel/%s",
                                                generations[i].name);

        g_test_add_data_func(path, &generations[i], test_generation);
    }
    g_test_add_func("/gmem-launch-plan/runtime", test_runtime);
    g_test_add_func("/gmem-launch-plan/conversions", test_conversions);
    g_test_add_func("/gmem-launch-plan/capabilities-decide",
                    test_capabilities_decide);
    g_test_add_func("/gmem-launch-plan/bad-layouts", test_bad_layouts);
    g_test_add_func("/gmem-launch-plan/minimal", test_minimal);
    return g_test_run();
}
