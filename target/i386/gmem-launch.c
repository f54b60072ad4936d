/*
 * Launching SEV-SNP and TDX guests in place: the machine's side
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "system/address-spaces.h"
#include "system/kvm_int.h"
#include "system/memory.h"
#include "system/ramblock.h"
#include "target/i386/gmem-launch.h"

typedef struct GmemLaunchWalk {
    GArray *regions;
    const MemoryRegion *last;
} GmemLaunchWalk;

static bool gmem_launch_add_region(Int128 start, Int128 len,
                                   const MemoryRegion *mr,
                                   hwaddr offset_in_region, void *opaque)
{
    GmemLaunchWalk *w = opaque;
    GmemLaunchRegion *prev = w->regions->len ?
        &g_array_index(w->regions, GmemLaunchRegion, w->regions->len - 1) :
        NULL;
    GmemLaunchRegion r;

    /* Guest RAM has a guest_memfd; device memory is shared and stays so */
    if (!memory_region_is_ram((MemoryRegion *)mr) || !mr->ram_block ||
        mr->ram_block->guest_memfd < 0) {
        return false;
    }
    r = (GmemLaunchRegion) {
        .name = memory_region_name(mr),
        .gpa = int128_get64(start),
        .size = int128_get64(len),
        .in_place = qemu_ram_is_guest_memfd_inplace(mr->ram_block),
    };
    /* A flat view splits a region where others overlap it: join it up */
    if (prev && prev->gpa + prev->size == r.gpa && w->last == mr) {
        prev->size += r.size;
    } else {
        g_array_append_val(w->regions, r);
    }
    w->last = mr;
    return false;
}

GmemLaunchLayout *gmem_launch_layout_new(GmemLaunchTarget target)
{
    GmemLaunchLayout *layout = g_new0(GmemLaunchLayout, 1);
    GmemLaunchWalk w = {
        .regions = g_array_new(false, true, sizeof(GmemLaunchRegion)),
    };
    FlatView *fv;

    layout->target = target;
    RCU_READ_LOCK_GUARD();
    fv = address_space_to_flatview(&address_space_memory);
    flatview_for_each_range(fv, gmem_launch_add_region, &w);
    layout->nr_regions = w.regions->len;
    layout->regions = (GmemLaunchRegion *)g_array_free(w.regions, false);
    return layout;
}

void gmem_launch_layout_free(GmemLaunchLayout *layout)
{
    if (layout) {
        g_free(layout->items);
        g_free(layout->regions);
        g_free(layout);
    }
}

void *gmem_launch_host_ptr(hwaddr gpa, uint64_t size)
{
    MemoryRegionSection section = memory_region_find(get_system_memory(),
                                                     gpa, size);
    void *ptr = NULL;

    if (!section.mr) {
        return NULL;
    }
    if (memory_region_is_ram(section.mr) &&
        int128_get64(section.size) == size) {
        ptr = (uint8_t *)memory_region_get_ram_ptr(section.mr) +
              section.offset_within_region;
    }
    memory_region_unref(section.mr);
    return ptr;
}

void gmem_launch_layout_add(GmemLaunchLayout *layout, GmemLaunchKind kind,
                            hwaddr gpa, uint64_t size, bool measure,
                            const void *hva)
{
    GmemLaunchItem *item;

    layout->items = g_renew(GmemLaunchItem, layout->items,
                            layout->nr_items + 1);
    item = &layout->items[layout->nr_items++];
    *item = (GmemLaunchItem) {
        .kind = kind,
        .gpa = gpa,
        .size = size,
        .measure = measure,
        .staged = !hva || hva == gmem_launch_host_ptr(gpa, size),
    };
}

int gmem_launch_run(const GmemLaunchOp *op, Error **errp)
{
    switch (op->type) {
    case GMEM_LAUNCH_OP_CLEAR: {
        /* Still shared, and so mapped */
        void *ptr = gmem_launch_host_ptr(op->gpa, op->size);

        if (!ptr) {
            error_setg(errp, "cannot clear 0x%" HWADDR_PRIx "+0x%" PRIx64
                       ": it is not in one region of guest RAM", op->gpa,
                       op->size);
            return -EINVAL;
        }
        memset(ptr, 0, op->size);
        return 0;
    }
    case GMEM_LAUNCH_OP_CONVERT:
        return kvm_gmem_convert_range(op->gpa, op->size, true, op->content,
                                      errp);
    default:
        g_assert_not_reached();
    }
}
