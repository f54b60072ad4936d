/*
 * libFuzzer harness for the guest_memfd conversion engine
 * (accel/kvm/kvm-gmem-convert.c), through its kernel seam, against the
 * model of the kernel in kvm-gmem-model.h
 *
 * Each input is a host generation, then a sequence of operations:
 * conversions of any range (unaligned, empty, past the end, wrapping),
 * in either direction, with any content request and launch phase, with
 * failures injected into the kernel (ENOMEM, EINVAL, EFAULT, EIO, EAGAIN
 * for a few tries or for good) and into listeners (toward shared);
 * listeners added and removed; and ranges held shared, as a device that
 * maps guest memory holds them, and let go.  After each operation: QEMU's
 * state (the RamBlockAttributes) equals the model's, counts equal a
 * recount, listeners map exactly the shared memory they follow, a failed
 * conversion leaves every page's state as it was, a successful one
 * changes its range only, with the contents it asked for, and held memory
 * is shared.
 *
 * Built as tests/unit/fuzz-kvm-gmem-convert when QEMU is configured
 * with clang and --enable-fuzzing (and --enable-asan --enable-ubsan).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/module.h"
#include "kvm-gmem-model.h"

typedef struct Input {
    const uint8_t *p;
    size_t left;
} Input;

static uint64_t take(Input *in, int bytes)
{
    uint64_t v = 0;

    for (int i = 0; i < bytes && in->left; i++, in->left--) {
        v |= (uint64_t)*in->p++ << (8 * i);
    }
    return v;
}

/* A range of the file, often a sensible one, sometimes not */
static void take_range(Input *in, uint64_t *offset, uint64_t *size)
{
    uint8_t kind = take(in, 1);

    *offset = (take(in, 2) % (NR_PAGES + 4)) * PAGE;
    *size = (take(in, 2) % (NR_PAGES / 4 + 1)) * PAGE;
    switch (kind % 8) {
    case 0:
        *offset += take(in, 2) % PAGE;      /* unaligned start */
        break;
    case 1:
        *size += take(in, 2) % PAGE;        /* unaligned size */
        break;
    case 2:
        *size = -*offset - PAGE * (kind >> 3);  /* wraps around */
        break;
    case 3:
        *size = take(in, 8);                /* anything */
        break;
    default:
        break;
    }
}

static void do_convert(Input *in, Fixture *x, TestListener **ls, int nr_ls)
{
    static const int errnos[] = { 0, ENOMEM, EINVAL, EFAULT, EIO };
    bool before[NR_PAGES];
    uint32_t content[NR_PAGES];
    uint64_t offset, size;
    uint8_t how = take(in, 1), inject = take(in, 1);
    bool to_private = how & 1;
    KvmGuestMemfdPhase phase = (how >> 1) & 1;
    KvmGuestMemfdContent req = ((how >> 2) & 3) % KVM_GUEST_MEMFD_CONTENT__MAX;
    Error *err = NULL;
    int ret;

    take_range(in, &offset, &size);
    x->m.fail_next = errnos[(inject & 7) % ARRAY_SIZE(errnos)];
    x->m.busy_page = (inject >> 3) & 1 ? offset / PAGE : -1;
    x->m.busy_tries = (inject >> 4) & 0xf;   /* 15: beyond the retries */
    /*
     * A listener that fails to take memory back after a failed conversion
     * to private goes without it, by design: listener failures are
     * injected where the engine undoes them, toward shared.
     */
    for (int i = 0; i < nr_ls; i++) {
        /* one of them, once: the engine can then give memory back */
        ls[i]->fail_in = !to_private && (inject >> 7) & 1 &&
                         i == ((inject >> 6) & 1) % nr_ls ?
                         1 + ((inject >> 5) & 1) : 0;
    }
    memcpy(before, x->m.private, sizeof(before));
    memcpy(content, x->m.content, sizeof(content));

    ret = kvm_gmem_convert(&x->f, offset, size, to_private, phase, req, &err);

    g_assert((ret == 0) == (err == NULL));
    error_free(err);
    for (uint64_t i = 0; i < NR_PAGES; i++) {
        bool requested = i >= offset / PAGE && i < (offset + size) / PAGE;
        bool in_range = !ret && requested;

        if (!in_range) {
            /*
             * a failure changes nothing, a success nothing outside; but
             * memory made shared before a listener failed stays shared
             * when converting it back fails too (a page busy throughout)
             */
            if (!(requested && !to_private && before[i] &&
                  !x->m.private[i])) {
                g_assert_cmpint(x->m.private[i], ==, before[i]);
            }
            /*
             * ...but the contents of private memory that the kernel made
             * shared before a listener failed and the engine converted it
             * back: the conversion back to private leaves them unspecified
             * (see kvm_gmem_convert()).
             */
            if (!(requested && !to_private && before[i])) {
                /*
                 * ...and v5's ZERO flag zeroes the whole range, pages
                 * shared already included, before a listener can fail:
                 * what the guest asked to have zeroed may be zeroed
                 */
                g_assert_cmpint(x->m.content[i], ==,
                                requested && !to_private &&
                                req == KVM_GUEST_MEMFD_CONTENT_ZERO &&
                                x->table.means[phase][!to_private][req] ==
                                KVM_GUEST_MEMFD_MEANS_KERNEL_FLAG &&
                                !x->m.content[i] ? 0 : content[i]);
            }
            continue;
        }
        g_assert_cmpint(x->m.private[i], ==, to_private);
        if (before[i] == to_private) {
            /*
             * already there: untouched, but by v5's ZERO flag, which
             * applies to the whole range
             */
            g_assert_cmpint(x->m.content[i], ==,
                            req == KVM_GUEST_MEMFD_CONTENT_ZERO &&
                            x->table.means[phase][!to_private][req] ==
                            KVM_GUEST_MEMFD_MEANS_KERNEL_FLAG ?
                            0 : content[i]);
        } else if (req == KVM_GUEST_MEMFD_CONTENT_ZERO) {
            g_assert_cmpint(x->m.content[i], ==, 0);
        } else if (req == KVM_GUEST_MEMFD_CONTENT_PRESERVE &&
                   x->table.means[phase][!to_private][req] ==
                   KVM_GUEST_MEMFD_MEANS_KERNEL_FLAG) {
            g_assert_cmpint(x->m.content[i], ==, content[i]);
        }
    }
    x->m.fail_next = 0;
    x->m.busy_tries = 0;
    for (int i = 0; i < nr_ls; i++) {
        ls[i]->fail_in = 0;
    }
    check_state(x, ls, nr_ls);
}

/* A range held shared, as address_space_map() holds one */
typedef struct Hold {
    bool held;
    MemoryRegionSection section;
} Hold;

static void do_hold(Input *in, Fixture *x, Hold *h)
{
    RamDiscardManager *rdm = RAM_DISCARD_MANAGER(x->f.attr);
    RamDiscardManagerClass *rdmc = RAM_DISCARD_MANAGER_GET_CLASS(rdm);
    uint64_t first = take(in, 2) % NR_PAGES;
    uint64_t n = 1 + take(in, 1) % (NR_PAGES - first);
    bool shared = true;

    if (h->held) {
        rdmc->release_populated(rdm, &h->section);
        h->held = false;
        return;
    }
    h->section = (MemoryRegionSection) {
        .mr = &x->mr, .offset_within_region = first * PAGE,
        .size = int128_make64(n * PAGE),
    };
    for (uint64_t i = first; i < first + n; i++) {
        shared &= !x->m.private[i];
    }
    /* only shared memory can be held */
    h->held = rdmc->hold_populated(rdm, &h->section);
    g_assert_cmpint(h->held, ==, shared);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const KvmGmemCaps *const hosts[] = {
        &caps_v8, &caps_v5, &caps_v5_snp,
    };
    Input in = { data, size };
    TestListener listeners[2];
    TestListener *ls[2];
    int nr_ls = 0;
    Hold h = { 0 };
    static bool qom_ready;
    Fixture x;

    if (!qom_ready) {
        module_call_init(MODULE_INIT_QOM);
        qom_ready = true;
    }
    fixture_init(&x, hosts[take(&in, 1) % ARRAY_SIZE(hosts)]);
    g_string_free(x.m.log, true);
    x.m.log = NULL;
    for (int ops = 0; in.left && ops < 32; ops++) {
        uint8_t op = take(&in, 1);

        if (op % 8 < 5) {
            do_convert(&in, &x, ls, nr_ls);
        } else if (op % 8 == 5) {
            do_hold(&in, &x, &h);
        } else if (op % 8 == 6 && nr_ls < 2) {
            uint64_t first = take(&in, 2) % NR_PAGES;
            uint64_t n = 1 + take(&in, 2) % (NR_PAGES - first);
            TestListener *t = &listeners[nr_ls];

            listener_add(&x.f, t, &x.m, 'A' + nr_ls, first * PAGE, n * PAGE);
            ls[nr_ls++] = t;
            check_state(&x, ls, nr_ls);
        } else if (op % 8 == 7 && nr_ls) {
            listener_del(&x.f, ls[--nr_ls]);
            for (int i = 0; i < NR_PAGES; i++) {
                g_assert_false(ls[nr_ls]->mapped[i]);
            }
            check_state(&x, ls, nr_ls);
        }
        if (h.held) {
            uint64_t first = h.section.offset_within_region / PAGE;

            for (uint64_t i = first;
                 i < first + int128_get64(h.section.size) / PAGE; i++) {
                g_assert_false(x.m.private[i]);
            }
        }
    }
    if (h.held) {
        do_hold(&in, &x, &h);
    }
    fixture_destroy_listeners(&x, ls, nr_ls);
    return 0;
}
