/*
 * Launching SEV-SNP and TDX guests in place on guest_memfd
 *
 * With guest RAM that is guest_memfd mapped in place, the launch needs no
 * second copy: QEMU writes the initial contents through the shared
 * mapping, converts each range to private, and has the firmware measure
 * (and encrypt) it where it is.  What to do is decided by a pure planner,
 * from the memory layout, the host's conversion table and the launch
 * phase; sev.c and tdx.c carry the plan out.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef I386_GMEM_LAUNCH_H
#define I386_GMEM_LAUNCH_H

#include "exec/hwaddr.h"
#include "system/kvm-gmem.h"

typedef enum GmemLaunchTarget {
    GMEM_LAUNCH_SNP,
    GMEM_LAUNCH_TDX,
} GmemLaunchTarget;

/* What the launch puts into a range of guest memory */
typedef enum GmemLaunchKind {
    /* SEV-SNP page types */
    GMEM_LAUNCH_SNP_NORMAL,     /* written by QEMU, measured */
    GMEM_LAUNCH_SNP_ZERO,       /* zeroed by the firmware, measured */
    GMEM_LAUNCH_SNP_UNMEASURED, /* written by QEMU, not measured */
    GMEM_LAUNCH_SNP_SECRETS,    /* filled by the firmware */
    GMEM_LAUNCH_SNP_CPUID,      /* written by QEMU, checked by the firmware */
    /* TDVF sections */
    GMEM_LAUNCH_TDX_BFV,        /* firmware volume */
    GMEM_LAUNCH_TDX_CFV,        /* configuration volume */
    GMEM_LAUNCH_TDX_TD_HOB,     /* hand-off blocks, written by QEMU */
    GMEM_LAUNCH_TDX_TEMP_MEM,   /* zeroed working memory */
    GMEM_LAUNCH_KIND__MAX,
} GmemLaunchKind;

typedef struct GmemLaunchItem {
    GmemLaunchKind kind;
    hwaddr gpa;
    uint64_t size;
    /* TDX: extend the measurement with it (TDVF MR_EXTEND) */
    bool measure;
    /*
     * Its contents are at @gpa in guest memory already, where the launch
     * reads them in place.  False when QEMU holds them somewhere else,
     * such as a firmware section that its image does not map at @gpa.
     */
    bool staged;
} GmemLaunchItem;

/* A range of guest RAM, firmware included */
typedef struct GmemLaunchRegion {
    const char *name;
    hwaddr gpa;
    uint64_t size;
    /* guest_memfd converted in place */
    bool in_place;
} GmemLaunchRegion;

typedef struct GmemLaunchLayout {
    GmemLaunchTarget target;
    /* In the order the launch produced them */
    GmemLaunchItem *items;
    size_t nr_items;
    GmemLaunchRegion *regions;
    size_t nr_regions;
} GmemLaunchLayout;

typedef enum GmemLaunchOpType {
    /* Zero the range through the shared mapping */
    GMEM_LAUNCH_OP_CLEAR,
    /* Convert the range to private with the engine */
    GMEM_LAUNCH_OP_CONVERT,
    /* KVM_SEV_SNP_LAUNCH_UPDATE or KVM_TDX_INIT_MEM_REGION */
    GMEM_LAUNCH_OP_UPDATE,
    /* KVM_SEV_SNP_LAUNCH_FINISH or KVM_TDX_FINALIZE_VM */
    GMEM_LAUNCH_OP_FINISH,
} GmemLaunchOpType;

/* Where a launch update reads the contents it measures */
typedef enum GmemLaunchSource {
    /* From the private page itself (NULL uaddr or source_addr) */
    GMEM_LAUNCH_SOURCE_IN_PLACE,
    /*
     * From a copy QEMU takes before the conversion: the SEV-SNP firmware
     * writes its corrections of a rejected CPUID page back to the source,
     * and QEMU reports them.
     */
    GMEM_LAUNCH_SOURCE_COPY,
} GmemLaunchSource;

typedef struct GmemLaunchOp {
    GmemLaunchOpType type;
    hwaddr gpa;
    uint64_t size;
    /* The item it is done for; NULL for the rest of guest RAM */
    const GmemLaunchItem *item;
    /* CONVERT: the content request and how the host meets it */
    KvmGuestMemfdContent content;
    KvmGuestMemfdMeans means;
    /* UPDATE */
    GmemLaunchSource source;
    bool measure;
} GmemLaunchOp;

typedef struct GmemLaunchPlan {
    GmemLaunchOp *ops;
    size_t nr_ops;
} GmemLaunchPlan;

/**
 * gmem_launch_conversion: how a conversion is done, or why it cannot be
 * @table: the host's conversion table
 * @phase: the launch phase
 * @to_private: the direction
 * @content: the content request
 * @what: what is converted, for the error message
 * @means: set to the means the table gives
 * @errp: pointer to Error*, to store the refusal
 *
 * Returns: true if the host can do it.
 */
bool gmem_launch_conversion(const KvmGmemTable *table,
                            KvmGuestMemfdPhase phase, bool to_private,
                            KvmGuestMemfdContent content, const char *what,
                            KvmGuestMemfdMeans *means, Error **errp);

/**
 * gmem_launch_plan: plan the launch of a guest whose memory is converted
 * in place
 * @layout: guest RAM and what the launch puts into it
 * @table: the host's conversion table
 * @phase: the launch phase
 * @errp: pointer to Error*, to store the refusal
 *
 * The plan, in order: for each item, the conversion of its range to
 * private (after zeroing it through the shared mapping if the launch must
 * measure zeros) and its launch update; then the conversion to private of
 * the rest of guest RAM, which the guest finds private as it would with
 * two backings; then the end of the launch.  Nothing is planned if any of
 * it cannot be done: the layout or the host are refused with the reason.
 *
 * A pure function, so that every target and kernel generation can be
 * tested.
 *
 * Returns: the plan, or NULL.
 */
GmemLaunchPlan *gmem_launch_plan(const GmemLaunchLayout *layout,
                                 const KvmGmemTable *table,
                                 KvmGuestMemfdPhase phase, Error **errp);
void gmem_launch_plan_free(GmemLaunchPlan *plan);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GmemLaunchPlan, gmem_launch_plan_free)

/* One line describing @op, for traces and tests */
char *gmem_launch_op_str(const GmemLaunchOp *op);

/* Carrying a plan out (gmem-launch.c) */

/**
 * gmem_launch_layout_new: the layout of this machine's guest RAM
 * @target: the confidential guest type
 *
 * Every RAM region mapped in the guest's address space that has a
 * guest_memfd, and whether it is converted in place.  Items are added with
 * gmem_launch_layout_add().
 */
GmemLaunchLayout *gmem_launch_layout_new(GmemLaunchTarget target);
void gmem_launch_layout_free(GmemLaunchLayout *layout);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GmemLaunchLayout, gmem_launch_layout_free)

/*
 * Add an item whose contents QEMU wrote at @hva (NULL if the firmware
 * fills it): it is staged if that is where guest memory has @gpa.
 */
void gmem_launch_layout_add(GmemLaunchLayout *layout, GmemLaunchKind kind,
                            hwaddr gpa, uint64_t size, bool measure,
                            const void *hva);

/*
 * The host address of [@gpa, @gpa + @size) if it is in one region of
 * guest RAM, or NULL.
 */
void *gmem_launch_host_ptr(hwaddr gpa, uint64_t size);

/*
 * Carry out @op if it is a CLEAR or CONVERT; UPDATE and FINISH belong to
 * the caller.  Returns 0 or -errno.
 */
int gmem_launch_run(const GmemLaunchOp *op, Error **errp);

#endif
