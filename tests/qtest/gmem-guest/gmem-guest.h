/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * gmem-guest: definitions shared between the freestanding 32-bit x86
 * test guest and the host-side tests that drive it.
 *
 * This header must build both with "-m32 -ffreestanding" and as normal
 * 64-bit host C, so it only relies on fixed-width <stdint.h> types.
 */

#ifndef GMEM_GUEST_H
#define GMEM_GUEST_H

#include <stddef.h>
#include <stdint.h>

/*
 * Exit codes written to isa-debug-exit (iobase=0xf4, iosize=0x04).
 * QEMU exits with status (value << 1) | 1.
 */
#define GMEM_GUEST_DEBUG_EXIT_PORT      0xf4
#define GMEM_GUEST_EXIT_PASS            0x10
#define GMEM_GUEST_EXIT_FAIL            0x11
#define GMEM_GUEST_STATUS_PASS          33  /* (0x10 << 1) | 1 */
#define GMEM_GUEST_STATUS_FAIL          35  /* (0x11 << 1) | 1 */

/* isa-debugcon output port */
#define GMEM_GUEST_DEBUGCON_PORT        0xe9

/* Defaults for the "seed=" and "mode=" command line options */
#define GMEM_GUEST_DEFAULT_SEED         0x5eed0001u
/* guest_seed = seed ^ GMEM_GUEST_SEED_XOR */
#define GMEM_GUEST_SEED_XOR             0xa5a5a5a5u

/*
 * Fixed guest-physical layout (all outside the guest image, which is
 * linked at 1 MiB):
 *   15 MiB       mailbox page
 *   16 MiB       host-data region (filled by the host before boot)
 *   17 MiB       guest-data region (filled by the guest after its test)
 * The guest needs at least GMEM_GUEST_MIN_RAM of RAM.
 */
#define GMEM_GUEST_LOAD_GPA             0x00100000u
#define GMEM_GUEST_MAILBOX_GPA          0x00F00000u
#define GMEM_GUEST_MAILBOX_SIZE         0x00001000u
#define GMEM_GUEST_HOST_DATA_GPA        0x01000000u
#define GMEM_GUEST_HOST_DATA_SIZE       0x00100000u
#define GMEM_GUEST_GUEST_DATA_GPA       0x01100000u
#define GMEM_GUEST_GUEST_DATA_SIZE      0x00100000u
#define GMEM_GUEST_MIN_RAM              0x01800000u  /* 24 MiB */

/* Magic values in the mailbox */
#define GMEM_GUEST_HOST_MAGIC           0x484f5354u  /* "HOST" */
#define GMEM_GUEST_DONE_MAGIC           0x444f4e45u  /* "DONE" */

/* Values of the mailbox "status" field (0 means pass) */
#define GMEM_GUEST_ERR_NONE             0
#define GMEM_GUEST_ERR_BOOT             1  /* bad multiboot magic */
#define GMEM_GUEST_ERR_CMDLINE          2  /* invalid command line value */
#define GMEM_GUEST_ERR_NO_MEMINFO       3  /* no memory info from loader */
#define GMEM_GUEST_ERR_RAM_TOO_SMALL    4  /* regions not in usable RAM */
#define GMEM_GUEST_ERR_HOST_LEN         5  /* bad host_len */
#define GMEM_GUEST_ERR_HOST_DATA        6  /* host-data mismatch */
#define GMEM_GUEST_ERR_RAM_TEST         7  /* RAM test mismatch */
#define GMEM_GUEST_ERR_GUEST_DATA       8  /* guest-data readback failed */
#define GMEM_GUEST_ERR_LOOP             9  /* mode=loop: data lost */
#define GMEM_GUEST_ERR_SMP              10 /* stress: the APs did not start */

/*
 * mode=loop: after its RAM test, the guest rewrites the first loop=N KiB
 * of the guest-data region over and over, pass p (from 1) with the seed
 * gmem_guest_loop_seed(guest_seed, p), and counts the passes in
 * loop_passes, until the host writes GMEM_GUEST_LOOP_STOP to loop_cmd.
 * It then stops where it is and verifies all it wrote: the words of this
 * pass so far, the rest from the pass before, the RAM test and the rest
 * of the guest-data region.  It finishes as in the other modes (exit).
 */
#define GMEM_GUEST_LOOP_STOP            0x53544f50u  /* "STOP" */

/*
 * serve=1: after its first requests, the guest makes the requests in the
 * mailbox each time the host writes GMEM_GUEST_SERVE_GO to serve_cmd, and
 * writes 0 there when done, until the host writes GMEM_GUEST_SERVE_STOP.
 */
#define GMEM_GUEST_SERVE_GO             0x00474f21u  /* "!GO" */
#define GMEM_GUEST_SERVE_STOP           GMEM_GUEST_LOOP_STOP

static inline uint32_t gmem_guest_loop_seed(uint32_t guest_seed,
                                            uint32_t pass)
{
    return guest_seed + pass * 0x9e3779b9u;
}

/*
 * Conversion requests.  Before the RAM test, the guest makes each request
 * the host left in the mailbox with "in eax, GMEM_GUEST_MODEL_PORT",
 * eax = kind, ebx = gpa, ecx = size, esi = attributes, and stores what
 * eax reads back in "result".  The KVM model of the guest-memfd qtests turns
 * these into the exits a confidential guest's requests produce; without
 * it, the port reads as all ones.  With "hc=1" on its command line, the
 * guest makes GMEM_GUEST_REQ_MAP_GPA_RANGE requests as real hypercalls
 * instead (eax = 12, ebx = gpa, ecx = pages, edx = attributes), and
 * answers GMEM_GUEST_RESULT_UNSUPPORTED to the others.  It makes the
 * whole list "repeat" times (0 counts as 1), printing it only if once.
 */
#define GMEM_GUEST_MODEL_PORT           0x99
#define GMEM_GUEST_REQ_MAP_GPA_RANGE    12      /* size in pages */
#define GMEM_GUEST_REQ_MEMORY_FAULT     0xfa17  /* size in bytes */
#define GMEM_GUEST_MAX_REQUESTS         32
#define GMEM_GUEST_RESULT_UNSUPPORTED   0xfffffffeu

typedef struct GmemGuestRequest {
    uint32_t kind;          /* GMEM_GUEST_REQ_* */
    uint32_t gpa;
    uint32_t size;
    uint32_t attributes;    /* KVM_MAP_GPA_RANGE_* or memory fault flags */
    uint32_t result;        /* written by the guest */
    uint32_t done;          /* 1 once made */
} GmemGuestRequest;

/*
 * Conversion stress.  When the host sets "count", the guest starts its
 * application processors (INIT-SIPI-SIPI to a real-mode trampoline below
 * 1 MiB, then the same flat 32-bit mode), and each of the "cpus" vCPUs,
 * the bootstrap processor included, makes "count" KVM_HC_MAP_GPA_RANGE
 * requests at once with the others: random ranges of 1 to
 * GMEM_GUEST_STRESS_MAX_PAGES pages inside the "pages" pages at "gpa",
 * toward private or shared at random, from a generator seeded with
 * "seed" and the vCPU's index.  Each vCPU counts what it made and what
 * read back an error; "started" is how many vCPUs took part.
 */
#define GMEM_GUEST_MAX_CPUS             8
#define GMEM_GUEST_STRESS_MAX_PAGES     16

typedef struct GmemGuestStress {
    uint32_t cpus;          /* vCPUs to take part, from the host */
    uint32_t count;         /* requests per vCPU, from the host */
    uint32_t seed;          /* from the host */
    uint32_t gpa;           /* the window converted, from the host */
    uint32_t pages;         /* its size, from the host */
    uint32_t started;       /* vCPUs that took part, by the guest */
    uint32_t reserved[2];
    uint32_t made[GMEM_GUEST_MAX_CPUS];     /* requests made, per vCPU */
    uint32_t failed[GMEM_GUEST_MAX_CPUS];   /* of those, errors */
} GmemGuestStress;

/*
 * Mailbox at GMEM_GUEST_MAILBOX_GPA; all fields little-endian uint32_t.
 *
 * The host may write host_magic/host_seed/host_len before the guest
 * starts (or leave host_magic 0).  The guest writes the remaining
 * fields and writes guest_magic = GMEM_GUEST_DONE_MAGIC last.
 */
typedef struct GmemGuestMailbox {
    uint32_t host_magic;    /* GMEM_GUEST_HOST_MAGIC if host data valid */
    uint32_t host_seed;     /* seed of the host-data pattern */
    uint32_t host_len;      /* bytes of host data, multiple of 4 */
    uint32_t guest_magic;   /* GMEM_GUEST_DONE_MAGIC, written last */
    uint32_t status;        /* GMEM_GUEST_ERR_* (0 = pass) */
    uint32_t host_checked;  /* 1 if the host data was checked */
    uint32_t tested_mib;    /* MiB covered by the RAM test */
    uint32_t guest_seed;    /* seed of the guest-data pattern */
    uint32_t guest_len;     /* bytes of guest data */
    uint32_t nr_requests;   /* conversion requests the host left below */
    uint32_t loop_passes;   /* mode=loop: passes over the region so far */
    uint32_t loop_cmd;      /* mode=loop: GMEM_GUEST_LOOP_* from the host */
    uint32_t serve_cmd;     /* serve=1: GMEM_GUEST_SERVE_* from the host */
    uint32_t repeat;        /* passes over the requests (0: one) */
    uint32_t reserved[2];
    GmemGuestRequest requests[GMEM_GUEST_MAX_REQUESTS];
    GmemGuestStress stress;
} GmemGuestMailbox;

#define GMEM_GUEST_MB_HOST_MAGIC        0x00
#define GMEM_GUEST_MB_HOST_SEED         0x04
#define GMEM_GUEST_MB_HOST_LEN          0x08
#define GMEM_GUEST_MB_GUEST_MAGIC       0x0c
#define GMEM_GUEST_MB_STATUS            0x10
#define GMEM_GUEST_MB_HOST_CHECKED      0x14
#define GMEM_GUEST_MB_TESTED_MIB        0x18
#define GMEM_GUEST_MB_GUEST_SEED        0x1c
#define GMEM_GUEST_MB_GUEST_LEN         0x20
#define GMEM_GUEST_MB_NR_REQUESTS       0x24
#define GMEM_GUEST_MB_LOOP_PASSES       0x28
#define GMEM_GUEST_MB_LOOP_CMD          0x2c
#define GMEM_GUEST_MB_SERVE_CMD         0x30
#define GMEM_GUEST_MB_REPEAT            0x34
#define GMEM_GUEST_MB_REQUESTS          0x40
#define GMEM_GUEST_MB_STRESS            0x340

_Static_assert(offsetof(GmemGuestMailbox, host_magic) ==
               GMEM_GUEST_MB_HOST_MAGIC, "mailbox layout");
_Static_assert(offsetof(GmemGuestMailbox, host_seed) ==
               GMEM_GUEST_MB_HOST_SEED, "mailbox layout");
_Static_assert(offsetof(GmemGuestMailbox, host_len) ==
               GMEM_GUEST_MB_HOST_LEN, "mailbox layout");
_Static_assert(offsetof(GmemGuestMailbox, guest_magic) ==
               GMEM_GUEST_MB_GUEST_MAGIC, "mailbox layout");
_Static_assert(offsetof(GmemGuestMailbox, status) ==
               GMEM_GUEST_MB_STATUS, "mailbox layout");
_Static_assert(offsetof(GmemGuestMailbox, host_checked) ==
               GMEM_GUEST_MB_HOST_CHECKED, "mailbox layout");
_Static_assert(offsetof(GmemGuestMailbox, tested_mib) ==
               GMEM_GUEST_MB_TESTED_MIB, "mailbox layout");
_Static_assert(offsetof(GmemGuestMailbox, guest_seed) ==
               GMEM_GUEST_MB_GUEST_SEED, "mailbox layout");
_Static_assert(offsetof(GmemGuestMailbox, guest_len) ==
               GMEM_GUEST_MB_GUEST_LEN, "mailbox layout");
_Static_assert(offsetof(GmemGuestMailbox, nr_requests) ==
               GMEM_GUEST_MB_NR_REQUESTS, "mailbox layout");
_Static_assert(offsetof(GmemGuestMailbox, loop_passes) ==
               GMEM_GUEST_MB_LOOP_PASSES, "mailbox layout");
_Static_assert(offsetof(GmemGuestMailbox, loop_cmd) ==
               GMEM_GUEST_MB_LOOP_CMD, "mailbox layout");
_Static_assert(offsetof(GmemGuestMailbox, serve_cmd) ==
               GMEM_GUEST_MB_SERVE_CMD, "mailbox layout");
_Static_assert(offsetof(GmemGuestMailbox, repeat) ==
               GMEM_GUEST_MB_REPEAT, "mailbox layout");
_Static_assert(offsetof(GmemGuestMailbox, requests) ==
               GMEM_GUEST_MB_REQUESTS, "mailbox layout");
_Static_assert(offsetof(GmemGuestMailbox, stress) ==
               GMEM_GUEST_MB_STRESS, "mailbox layout");
_Static_assert(sizeof(GmemGuestRequest) == 24, "request layout");
_Static_assert(sizeof(GmemGuestMailbox) <= GMEM_GUEST_MAILBOX_SIZE,
               "mailbox size");

/*
 * Test pattern for the 32-bit word at guest-physical address @addr.
 * Cheap, different for every word and every seed.
 */
static inline uint32_t gmem_guest_pattern(uint32_t addr, uint32_t seed)
{
    return addr ^ seed ^ ((addr >> 7) * 0x9e3779b1u);
}

#ifdef GMEM_GUEST_BUILD
/* The end of the guest image, from the linker script (gmem-guest.ld) */
extern char gmem_guest_image_end[];
/* The application processors' real-mode entry, copied below 1 MiB */
extern const char gmem_guest_ap_start[], gmem_guest_ap_end[];
#endif

#endif /* GMEM_GUEST_H */
