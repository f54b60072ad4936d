/*
 * Launching SEV-SNP and TDX guests in place: the planner
 *
 * SEV-SNP and TDX measure the initial private memory of a guest with
 * launch updates (KVM_SEV_SNP_LAUNCH_UPDATE, KVM_TDX_INIT_MEM_REGION).
 * In place, each range is written while shared, converted to private and
 * updated from the page itself.  Whether its contents survive the
 * conversion is the content request PRESERVE, which the host's table
 * meets with a kernel flag (in-place revisions v4/v5) or by the launch
 * update reading the page (v6 on), and only before the launch is finished.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "target/i386/gmem-launch.h"

#define GMEM_LAUNCH_PAGE_SIZE 4096ULL

typedef struct GmemLaunchKindInfo {
    const char *name;
    GmemLaunchTarget target;
    /* What the conversion to private must keep */
    KvmGuestMemfdContent content;
    /* Zeroed while shared, so that the launch measures zeros */
    bool clear;
    GmemLaunchSource source;
} GmemLaunchKindInfo;

static const GmemLaunchKindInfo gmem_launch_kinds[GMEM_LAUNCH_KIND__MAX] = {
    [GMEM_LAUNCH_SNP_NORMAL] = {
        "SEV-SNP page", GMEM_LAUNCH_SNP, KVM_GUEST_MEMFD_CONTENT_PRESERVE,
    },
    /*
     * The firmware zeroes it, whatever it held; QEMU writes zeros first, so
     * that nothing is populated in place from a page never written (the
     * kernel may refuse such pages)
     */
    [GMEM_LAUNCH_SNP_ZERO] = {
        "SEV-SNP zero page", GMEM_LAUNCH_SNP,
        KVM_GUEST_MEMFD_CONTENT_UNSPECIFIED, true,
    },
    [GMEM_LAUNCH_SNP_UNMEASURED] = {
        "SEV-SNP unmeasured page", GMEM_LAUNCH_SNP,
        KVM_GUEST_MEMFD_CONTENT_PRESERVE,
    },
    /* The firmware fills it; written with zeros first, as the zero page */
    [GMEM_LAUNCH_SNP_SECRETS] = {
        "SEV-SNP secrets page", GMEM_LAUNCH_SNP,
        KVM_GUEST_MEMFD_CONTENT_UNSPECIFIED, true,
    },
    /*
     * The firmware checks it, and writes its corrections back to the
     * source if it rejects it: the source is a copy, as with two backings.
     */
    [GMEM_LAUNCH_SNP_CPUID] = {
        "SEV-SNP CPUID page", GMEM_LAUNCH_SNP,
        KVM_GUEST_MEMFD_CONTENT_UNSPECIFIED, false, GMEM_LAUNCH_SOURCE_COPY,
    },
    [GMEM_LAUNCH_TDX_BFV] = {
        "TDVF BFV section", GMEM_LAUNCH_TDX, KVM_GUEST_MEMFD_CONTENT_PRESERVE,
    },
    [GMEM_LAUNCH_TDX_CFV] = {
        "TDVF CFV section", GMEM_LAUNCH_TDX, KVM_GUEST_MEMFD_CONTENT_PRESERVE,
    },
    [GMEM_LAUNCH_TDX_TD_HOB] = {
        "TDVF TD_HOB section", GMEM_LAUNCH_TDX,
        KVM_GUEST_MEMFD_CONTENT_PRESERVE,
    },
    /* Added from zeros, as from the zeroed buffer with two backings */
    [GMEM_LAUNCH_TDX_TEMP_MEM] = {
        "TDVF TEMP_MEM section", GMEM_LAUNCH_TDX,
        KVM_GUEST_MEMFD_CONTENT_PRESERVE, true,
    },
};

static const char *gmem_launch_target_name(GmemLaunchTarget target)
{
    return target == GMEM_LAUNCH_SNP ? "SEV-SNP" : "TDX";
}

bool gmem_launch_conversion(const KvmGmemTable *table,
                            KvmGuestMemfdPhase phase, bool to_private,
                            KvmGuestMemfdContent content, const char *what,
                            KvmGuestMemfdMeans *means, Error **errp)
{
    KvmGuestMemfdDirection dir = to_private ?
        KVM_GUEST_MEMFD_DIRECTION_TO_PRIVATE :
        KVM_GUEST_MEMFD_DIRECTION_TO_SHARED;
    bool pre_launch = phase == KVM_GUEST_MEMFD_PHASE_PRE_LAUNCH;
    KvmGuestMemfdMeans before = table->means[KVM_GUEST_MEMFD_PHASE_PRE_LAUNCH]
                                            [dir][content];

    *means = table->means[phase][dir][content];
    if (*means != KVM_GUEST_MEMFD_MEANS_UNSUPPORTED) {
        return true;
    }
    if (to_private && content == KVM_GUEST_MEMFD_CONTENT_ZERO) {
        error_setg(errp, "%s: a conversion to private cannot promise zeros: "
                   "only a launch update or the guest's acceptance zeroes "
                   "private memory", what);
    } else if (content == KVM_GUEST_MEMFD_CONTENT_PRESERVE && to_private &&
               !pre_launch && before != KVM_GUEST_MEMFD_MEANS_UNSUPPORTED) {
        error_setg(errp, "%s: cannot convert to private preserving its "
                   "contents at runtime: contents survive that conversion "
                   "only before the launch is finished", what);
    } else if (content == KVM_GUEST_MEMFD_CONTENT_PRESERVE && to_private) {
        error_setg(errp, "%s: cannot convert to private preserving its "
                   "contents: the host's KVM has neither the PRESERVE "
                   "conversion flag nor launch updates from the page "
                   "itself", what);
    } else {
        error_setg(errp, "%s: the host's KVM cannot convert it to %s%s %s",
                   what, to_private ? "private" : "shared",
                   content == KVM_GUEST_MEMFD_CONTENT_ZERO ? " zeroed" :
                   content == KVM_GUEST_MEMFD_CONTENT_PRESERVE ?
                   " preserving its contents" : "",
                   pre_launch ? "before launch" : "at runtime");
    }
    return false;
}

static char *gmem_launch_item_str(const GmemLaunchItem *item)
{
    return g_strdup_printf("%s at 0x%" HWADDR_PRIx "+0x%" PRIx64,
                           gmem_launch_kinds[item->kind].name, item->gpa,
                           item->size);
}

static const GmemLaunchRegion *
gmem_launch_find_region(const GmemLaunchLayout *layout, hwaddr gpa,
                        uint64_t size)
{
    for (size_t i = 0; i < layout->nr_regions; i++) {
        const GmemLaunchRegion *r = &layout->regions[i];

        if (gpa >= r->gpa && gpa - r->gpa < r->size &&
            size <= r->size - (gpa - r->gpa)) {
            return r;
        }
    }
    return NULL;
}

static bool gmem_launch_check(const GmemLaunchLayout *layout, Error **errp)
{
    for (size_t i = 0; i < layout->nr_regions; i++) {
        const GmemLaunchRegion *r = &layout->regions[i];

        if (!r->in_place) {
            error_setg(errp, "guest memory '%s' at 0x%" HWADDR_PRIx "+0x%"
                       PRIx64 " is not converted in place: back it with "
                       "memory-backend-guest-memfd", r->name, r->gpa,
                       r->size);
            return false;
        }
    }

    for (size_t i = 0; i < layout->nr_items; i++) {
        const GmemLaunchItem *item = &layout->items[i];
        g_autofree char *what = gmem_launch_item_str(item);

        assert(item->kind < GMEM_LAUNCH_KIND__MAX &&
               gmem_launch_kinds[item->kind].target == layout->target);
        if (!item->size || !QEMU_IS_ALIGNED(item->gpa | item->size,
                                            GMEM_LAUNCH_PAGE_SIZE)) {
            error_setg(errp, "%s is not a whole number of pages", what);
            return false;
        }
        if (!gmem_launch_find_region(layout, item->gpa, item->size)) {
            error_setg(errp, "%s is not inside one region of guest memory",
                       what);
            return false;
        }
        if (!item->staged) {
            error_setg(errp, "%s: its contents are not at that address in "
                       "guest memory, so it cannot be populated in place",
                       what);
            return false;
        }
        for (size_t j = 0; j < i; j++) {
            const GmemLaunchItem *other = &layout->items[j];

            if (item->gpa < other->gpa + other->size &&
                other->gpa < item->gpa + item->size) {
                g_autofree char *other_what = gmem_launch_item_str(other);

                error_setg(errp, "%s overlaps %s", what, other_what);
                return false;
            }
        }
    }
    return true;
}

static GmemLaunchOp *gmem_launch_add_op(GArray *ops, GmemLaunchOpType type,
                                        hwaddr gpa, uint64_t size,
                                        const GmemLaunchItem *item)
{
    GmemLaunchOp op = {
        .type = type,
        .gpa = gpa,
        .size = size,
        .item = item,
    };

    g_array_append_val(ops, op);
    return &g_array_index(ops, GmemLaunchOp, ops->len - 1);
}

static bool gmem_launch_add_convert(GArray *ops, const KvmGmemTable *table,
                                    KvmGuestMemfdPhase phase, hwaddr gpa,
                                    uint64_t size, KvmGuestMemfdContent content,
                                    const GmemLaunchItem *item,
                                    const char *what, Error **errp)
{
    KvmGuestMemfdMeans means;
    GmemLaunchOp *op;

    if (!gmem_launch_conversion(table, phase, true, content, what, &means,
                                errp)) {
        return false;
    }
    op = gmem_launch_add_op(ops, GMEM_LAUNCH_OP_CONVERT, gpa, size, item);
    op->content = content;
    op->means = means;
    return true;
}

static int gmem_launch_compare_items(gconstpointer a, gconstpointer b)
{
    const GmemLaunchItem *x = *(const GmemLaunchItem **)a;
    const GmemLaunchItem *y = *(const GmemLaunchItem **)b;

    return x->gpa < y->gpa ? -1 : x->gpa > y->gpa;
}

/* Convert what the items leave of @r to private, run by run */
static bool gmem_launch_add_rest(GArray *ops, const GmemLaunchLayout *layout,
                                 const KvmGmemTable *table,
                                 KvmGuestMemfdPhase phase,
                                 const GmemLaunchRegion *r, Error **errp)
{
    g_autoptr(GPtrArray) inside = g_ptr_array_new();
    g_autofree char *what = g_strdup_printf("guest memory '%s'", r->name);
    hwaddr pos = r->gpa, end = r->gpa + r->size;

    for (size_t i = 0; i < layout->nr_items; i++) {
        const GmemLaunchItem *item = &layout->items[i];

        if (gmem_launch_find_region(layout, item->gpa, item->size) == r) {
            g_ptr_array_add(inside, (gpointer)item);
        }
    }
    g_ptr_array_sort(inside, gmem_launch_compare_items);

    for (guint i = 0; i <= inside->len; i++) {
        const GmemLaunchItem *item = i < inside->len ?
                                     g_ptr_array_index(inside, i) : NULL;
        hwaddr next = item ? item->gpa : end;

        if (next > pos &&
            !gmem_launch_add_convert(ops, table, phase, pos, next - pos,
                                     KVM_GUEST_MEMFD_CONTENT_UNSPECIFIED,
                                     NULL, what, errp)) {
            return false;
        }
        if (item) {
            pos = item->gpa + item->size;
        }
    }
    return true;
}

GmemLaunchPlan *gmem_launch_plan(const GmemLaunchLayout *layout,
                                 const KvmGmemTable *table,
                                 KvmGuestMemfdPhase phase, Error **errp)
{
    const char *target = gmem_launch_target_name(layout->target);
    g_autoptr(GArray) ops = g_array_new(false, true, sizeof(GmemLaunchOp));
    GmemLaunchPlan *plan;

    if (!kvm_gmem_check_in_place(table, errp)) {
        error_prepend(errp, "cannot launch %s in place: ", target);
        return NULL;
    }
    if (phase != KVM_GUEST_MEMFD_PHASE_PRE_LAUNCH) {
        error_setg(errp, "cannot launch %s in place at runtime: the launch "
                   "is finished, and contents can no longer be carried into "
                   "private memory", target);
        return NULL;
    }
    if (!gmem_launch_check(layout, errp)) {
        return NULL;
    }

    for (size_t i = 0; i < layout->nr_items; i++) {
        const GmemLaunchItem *item = &layout->items[i];
        const GmemLaunchKindInfo *info = &gmem_launch_kinds[item->kind];
        g_autofree char *what = gmem_launch_item_str(item);
        GmemLaunchOp *op;

        if (info->clear) {
            gmem_launch_add_op(ops, GMEM_LAUNCH_OP_CLEAR, item->gpa,
                               item->size, item);
        }
        if (!gmem_launch_add_convert(ops, table, phase, item->gpa,
                                     item->size, info->content, item, what,
                                     errp)) {
            return NULL;
        }
        op = gmem_launch_add_op(ops, GMEM_LAUNCH_OP_UPDATE, item->gpa,
                                item->size, item);
        op->source = info->source;
        op->measure = item->measure;
    }

    for (size_t i = 0; i < layout->nr_regions; i++) {
        if (!gmem_launch_add_rest(ops, layout, table, phase,
                                  &layout->regions[i], errp)) {
            return NULL;
        }
    }
    gmem_launch_add_op(ops, GMEM_LAUNCH_OP_FINISH, 0, 0, NULL);

    plan = g_new0(GmemLaunchPlan, 1);
    plan->nr_ops = ops->len;
    plan->ops = (GmemLaunchOp *)g_array_free(g_steal_pointer(&ops), false);
    return plan;
}

void gmem_launch_plan_free(GmemLaunchPlan *plan)
{
    if (plan) {
        g_free(plan->ops);
        g_free(plan);
    }
}

char *gmem_launch_op_str(const GmemLaunchOp *op)
{
    const char *what = op->item ? gmem_launch_kinds[op->item->kind].name :
                                  "rest of RAM";

    switch (op->type) {
    case GMEM_LAUNCH_OP_CLEAR:
        return g_strdup_printf("clear 0x%" HWADDR_PRIx "+0x%" PRIx64 " (%s)",
                               op->gpa, op->size, what);
    case GMEM_LAUNCH_OP_CONVERT:
        return g_strdup_printf("convert 0x%" HWADDR_PRIx "+0x%" PRIx64
                               " %s %s (%s)", op->gpa, op->size,
                               KvmGuestMemfdContent_str(op->content),
                               KvmGuestMemfdMeans_str(op->means), what);
    case GMEM_LAUNCH_OP_UPDATE:
        return g_strdup_printf("update 0x%" HWADDR_PRIx "+0x%" PRIx64
                               " %s%s (%s)", op->gpa, op->size,
                               op->source == GMEM_LAUNCH_SOURCE_COPY ?
                               "from-copy" : "in-place",
                               op->measure ? " measured" : "", what);
    case GMEM_LAUNCH_OP_FINISH:
        return g_strdup("finish");
    default:
        g_assert_not_reached();
    }
}
