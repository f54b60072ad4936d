/*
 * The few memory API functions that RamBlockAttributes needs, for unit
 * tests that link system/ram-block-attributes.c without the memory core:
 * memory regions here are plain structs, never QOM objects.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/module.h"
#include "system/memory.h"

int memory_region_set_ram_discard_manager(MemoryRegion *mr,
                                          RamDiscardManager *rdm)
{
    if (mr->rdm && rdm) {
        return -EBUSY;
    }
    mr->rdm = rdm;
    return 0;
}

uint64_t memory_region_size(MemoryRegion *mr)
{
    return int128_get64(mr->size);
}

MemoryRegionSection *memory_region_section_new_copy(MemoryRegionSection *s)
{
    return g_memdup2(s, sizeof(*s));
}

void memory_region_section_free_copy(MemoryRegionSection *s)
{
    g_free(s);
}

static const TypeInfo ram_discard_manager_info = {
    .parent = TYPE_INTERFACE,
    .name = TYPE_RAM_DISCARD_MANAGER,
    .class_size = sizeof(RamDiscardManagerClass),
};

static void ram_discard_manager_stubs_register_types(void)
{
    type_register_static(&ram_discard_manager_info);
}

type_init(ram_discard_manager_stubs_register_types)
