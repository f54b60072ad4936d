/*
 * Unit tests of the guest_memfd capability table: for each generation of
 * the kernel interface, what KVM reports and the table QEMU must derive,
 * written out by hand.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
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
} Generation;

static const Generation generations[] = {
    { "linux-6.7", { .guest_memfd = false },
      KVM_GUEST_MEMFD_MODE_NONE, "UUU UUU UUU UUU" },
    { "linux-6.8-default-vm", { .guest_memfd = true },
      KVM_GUEST_MEMFD_MODE_NONE, "UUU UUU UUU UUU" },
    /* these machines */
    { "linux-6.18", { .guest_memfd = true, .gmem_flags = MMAP_SHARED },
      KVM_GUEST_MEMFD_MODE_SHARED_ONLY, "UUU UUU UUU UUU" },
    { "legacy-snp", { .guest_memfd = true, .vm_attrs = PRIV,
                      .launch_update = true },
      KVM_GUEST_MEMFD_MODE_LEGACY, "PUL PIU PUU PIU" },
    { "legacy-sw-protected", { .guest_memfd = true, .vm_attrs = PRIV },
      KVM_GUEST_MEMFD_MODE_LEGACY, "PUU PIU PUU PIU" },
    { "legacy-snp-6.18", { .guest_memfd = true, .vm_attrs = PRIV,
                           .gmem_flags = MMAP_SHARED, .launch_update = true },
      KVM_GUEST_MEMFD_MODE_LEGACY, "PUL PIU PUU PIU" },
    /* v4/v5: one mask of content flags; the seed rule for SNP/TDX */
    { "v5-snp", { .guest_memfd = true, .gmem_flags = MMAP_SHARED,
                  .gmem_attrs = PRIV, .attr2_flags = ZERO | PRESERVE,
                  .launch_update = true },
      KVM_GUEST_MEMFD_MODE_IN_PLACE, "PUK PKU PUU PKU" },
    { "v5-sw-protected", { .guest_memfd = true, .gmem_flags = MMAP_SHARED,
                           .gmem_attrs = PRIV,
                           .attr2_flags = ZERO | PRESERVE },
      KVM_GUEST_MEMFD_MODE_IN_PLACE, "PUK PKK PUK PKK" },
    { "v5-snp-zero-only", { .guest_memfd = true, .gmem_flags = MMAP_SHARED,
                            .gmem_attrs = PRIV, .attr2_flags = ZERO,
                            .launch_update = true },
      KVM_GUEST_MEMFD_MODE_IN_PLACE, "PUU PKU PUU PKU" },
    /* v6-v8: flags must be 0; NULL-source launch updates */
    { "v8-snp", { .guest_memfd = true, .gmem_flags = MMAP_SHARED,
                  .gmem_attrs = PRIV, .launch_update = true },
      KVM_GUEST_MEMFD_MODE_IN_PLACE, "PUL PSU PUU PSU" },
    { "v8-tdx-no-init-shared", { .guest_memfd = true,
                                 .gmem_flags = GUEST_MEMFD_FLAG_MMAP,
                                 .gmem_attrs = PRIV, .launch_update = true },
      KVM_GUEST_MEMFD_MODE_IN_PLACE, "PUL PSU PUU PSU" },
    { "v8-sw-protected", { .guest_memfd = true, .gmem_flags = MMAP_SHARED,
                           .gmem_attrs = PRIV },
      KVM_GUEST_MEMFD_MODE_IN_PLACE, "PUU PSU PUU PSU" },
    /* the per-phase capabilities proposed in review; they win over one mask */
    { "per-phase-snp", { .guest_memfd = true, .gmem_flags = MMAP_SHARED,
                         .gmem_attrs = PRIV, .attr2_flags = ZERO | PRESERVE,
                         .pre_launch_flags = ZERO | PRESERVE,
                         .post_launch_flags = ZERO, .launch_update = true },
      KVM_GUEST_MEMFD_MODE_IN_PLACE, "PUK PKU PUU PKU" },
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
                                     .post_launch_flags = ZERO,
                                     .launch_update = true },
      KVM_GUEST_MEMFD_MODE_IN_PLACE, "PUU PKU PUU PKU" },
};

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

static void test_generation(const void *data)
{
    const Generation *g = data;
    g_autoptr(GString) got = g_string_new("");
    KvmGmemTable table;

    kvm_gmem_caps_table(&g->caps, &table);
    for (int p = 0; p < KVM_GUEST_MEMFD_PHASE__MAX; p++) {
        for (int d = 0; d < KVM_GUEST_MEMFD_DIRECTION__MAX; d++) {
            if (got->len) {
                g_string_append_c(got, ' ');
            }
            for (int c = 0; c < KVM_GUEST_MEMFD_CONTENT__MAX; c++) {
                g_string_append_c(got, letter(table.means[p][d][c]));
            }
        }
    }
    g_assert_cmpint(table.mode, ==, g->mode);
    g_assert_cmpstr(got->str, ==, g->table);
}

/* Never a silent downgrade: a content request is honoured or refused */
static void test_invariants(void)
{
    for (int i = 0; i < ARRAY_SIZE(generations); i++) {
        KvmGmemTable t;

        kvm_gmem_caps_table(&generations[i].caps, &t);
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
    return g_test_run();
}
