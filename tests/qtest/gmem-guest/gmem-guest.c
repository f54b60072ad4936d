/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * gmem-guest: a freestanding 32-bit x86 multiboot (v1) test kernel.
 *
 * Booted with "-kernel gmem-guest.elf" on the pc or q35 machine.  It
 * runs flat 32-bit protected mode without paging, as set up by the
 * multiboot loader, and:
 *
 *  - optionally verifies a host-data region the host filled before boot
 *    (see the mailbox in gmem-guest.h),
 *  - makes the conversion requests the host left in the mailbox,
 *  - fills every 32-bit word of the usable RAM above its own image and
 *    below 4 GiB with a pattern, then verifies it,
 *  - fills a guest-data region for the host to verify,
 *  - reports on isa-debugcon (port 0xe9) and in the mailbox, then exits
 *    through isa-debug-exit (port 0xf4) or halts.
 *
 * Command line (multiboot cmdline, QEMU -append), space-separated:
 *   mode=exit|halt|loop
 *                    exit through isa-debug-exit (default) or halt when
 *                    done, or first rewrite memory until told to stop
 *                    (GMEM_GUEST_LOOP_STOP in gmem-guest.h), then exit
 *   loop=N           mode=loop rewrites N KiB (default 256, at most 1024)
 *   seed=N           pattern seed, decimal or 0x hex (default 0x5eed0001)
 *   mb=N             test at most N MiB (default: all usable RAM)
 *   serve=1          make conversion requests whenever the host says so
 *                    (GMEM_GUEST_SERVE_GO), before the RAM test
 *   hc=1             make KVM_HC_MAP_GPA_RANGE requests as real hypercalls
 *                    (vmmcall on AMD, vmcall on Intel), for a kernel that
 *                    converts in place, instead of through the KVM model's
 *                    port
 *
 * When the host asks for a conversion stress in the mailbox, the guest
 * starts its other vCPUs for it, before the RAM test; they halt after it.
 */

#include <stdarg.h>
#include <stdint.h>
#include "gmem-guest.h"

/* Multiboot v1 */
#define MB_HEADER_MAGIC         0x1BADB002u
#define MB_HEADER_FLAGS         0x00000002u  /* bit 1: want memory info */
#define MB_BOOT_MAGIC           0x2BADB002u

#define MBI_FLAG_MEM            (1u << 0)
#define MBI_FLAG_CMDLINE        (1u << 2)
#define MBI_FLAG_MMAP           (1u << 6)

#define MBI_FLAGS               0
#define MBI_MEM_UPPER           8
#define MBI_CMDLINE             16
#define MBI_MMAP_LENGTH         44
#define MBI_MMAP_ADDR           48

#define MMAP_TYPE_RAM           1

#define STACK_SIZE              16384
#define CMDLINE_MAX             256
#define MAX_RAM_RANGES          32
#define MAX_CHUNKS              64

#define PAGE_SHIFT              12
#define PAGE_SIZE               (1u << PAGE_SHIFT)
#define PFN(addr)               ((uint32_t)(addr) >> PAGE_SHIFT)
#define PFN_4G                  0x100000u
#define PFN_1M                  0x100u

#define ARRAY_SIZE(a)           (sizeof(a) / sizeof((a)[0]))
#define STR_(x)                 #x
#define STR(x)                  STR_(x)

typedef struct PfnRange {
    uint32_t start;             /* first page frame */
    uint32_t end;               /* first page frame after the range */
} PfnRange;

enum {
    MODE_EXIT,
    MODE_HALT,
    MODE_LOOP,
};

/* Multiboot header: must be within the first 8 KiB of the file */
static const uint32_t mb_header[3]
    __attribute__((section(".multiboot"), used, aligned(4))) = {
    MB_HEADER_MAGIC,
    MB_HEADER_FLAGS,
    -(MB_HEADER_MAGIC + MB_HEADER_FLAGS),
};

static uint8_t guest_stack[STACK_SIZE] __attribute__((aligned(16), used));


void gmem_guest_main(uint32_t magic, uint32_t mbi)
    __attribute__((noreturn, used));

/*
 * Entry point.  The loader leaves us in flat 32-bit protected mode with
 * interrupts off, eax = boot magic and ebx = multiboot info.  Clear
 * .bss (the stack lives there), set up the stack and call C.
 */
__asm__(
    ".section .text.entry, \"ax\"\n"
    ".globl gmem_guest_start\n"
    ".type gmem_guest_start, @function\n"
    "gmem_guest_start:\n"
    "    cli\n"
    "    cld\n"
    "    movl %eax, %esi\n"
    "    movl %ebx, %ebp\n"
    "    movl $gmem_guest_bss_start, %edi\n"
    "    movl $gmem_guest_bss_end, %ecx\n"
    "    subl %edi, %ecx\n"
    "    shrl $2, %ecx\n"
    "    xorl %eax, %eax\n"
    "    rep stosl\n"
    "    movl $guest_stack + " STR(STACK_SIZE) ", %esp\n"
    "    subl $8, %esp\n"
    "    pushl %ebp\n"
    "    pushl %esi\n"
    "    call gmem_guest_main\n"
    "1:  cli\n"
    "    hlt\n"
    "    jmp 1b\n"
    ".previous\n");

/* Configuration */
static int mode = MODE_EXIT;
static uint32_t seed = GMEM_GUEST_DEFAULT_SEED;
static uint32_t limit_mib;
static int have_limit;
static int serve;
static int hypercall;  /* 0: the model's port, 1: vmcall, 2: vmmcall */
static uint32_t loop_kib = 256;

/* Copied boot information */
static char cmdline[CMDLINE_MAX];
static PfnRange ram[MAX_RAM_RANGES];
static unsigned int nr_ram;

/* RAM test plan */
static PfnRange chunks[MAX_CHUNKS];
static unsigned int nr_chunks;
static uint32_t budget_pages;
static uint32_t tested_pages;

/* Result */
static uint32_t status;
static const char *fail_reason;
static int mailbox_ok;
static uint32_t host_checked;

/* The host reads and writes the mailbox behind the compiler's back */
static volatile GmemGuestMailbox *const mailbox =
    (void *)(uintptr_t)GMEM_GUEST_MAILBOX_GPA;

static inline void outb(uint16_t port, uint8_t val)
{
    __asm__ volatile("outb %0, %1" : : "a"(val), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t val)
{
    __asm__ volatile("outl %0, %1" : : "a"(val), "Nd"(port));
}

static inline void barrier(void)
{
    __asm__ volatile("" : : : "memory");
}

static inline uint32_t *gpa_ptr(uint32_t addr)
{
    return (uint32_t *)(uintptr_t)addr;
}

/*
 * Console output
 */

static void put_char(char c)
{
    outb(GMEM_GUEST_DEBUGCON_PORT, (uint8_t)c);
}

static void put_str(const char *s)
{
    while (*s) {
        put_char(*s++);
    }
}

static void put_uint(uint32_t v, uint32_t base, int width, char pad)
{
    char buf[12];
    int n = 0;

    do {
        uint32_t d = v % base;

        buf[n++] = d < 10 ? '0' + d : 'a' + d - 10;
        v /= base;
    } while (v);
    while (width > n) {
        put_char(pad);
        width--;
    }
    while (n) {
        put_char(buf[--n]);
    }
}

/* Supports %s %c %d %u %x %% with an optional '0' flag and width */
static void gprintf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static void gprintf(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    while (*fmt) {
        char pad = ' ';
        int width = 0;

        if (*fmt != '%') {
            put_char(*fmt++);
            continue;
        }
        fmt++;
        if (*fmt == '0') {
            pad = '0';
            fmt++;
        }
        while (*fmt >= '0' && *fmt <= '9') {
            width = width * 10 + (*fmt++ - '0');
        }
        switch (*fmt) {
        case 's': {
            const char *s = va_arg(ap, const char *);

            put_str(s ? s : "(null)");
            break;
        }
        case 'c':
            put_char((char)va_arg(ap, int));
            break;
        case 'd': {
            int v = va_arg(ap, int);

            if (v < 0) {
                put_char('-');
                put_uint(-(uint32_t)v, 10, width ? width - 1 : 0, pad);
            } else {
                put_uint(v, 10, width, pad);
            }
            break;
        }
        case 'u':
            put_uint(va_arg(ap, uint32_t), 10, width, pad);
            break;
        case 'x':
            put_uint(va_arg(ap, uint32_t), 16, width, pad);
            break;
        case '%':
            put_char('%');
            break;
        case '\0':
            fmt--;
            break;
        default:
            put_char('%');
            put_char(*fmt);
            break;
        }
        fmt++;
    }
    va_end(ap);
}

static void set_fail(uint32_t code, const char *reason)
{
    if (!status) {
        status = code;
        fail_reason = reason;
    }
}

/*
 * Command line
 */

static int word_is(const char *s, uint32_t len, const char *lit)
{
    uint32_t i;

    for (i = 0; i < len; i++) {
        if (lit[i] != s[i]) {
            return 0;
        }
    }
    return lit[len] == '\0';
}

/* Parse a decimal or 0x-prefixed hexadecimal 32-bit number */
static int parse_u32(const char *s, uint32_t len, uint32_t *out)
{
    uint32_t v = 0;
    uint32_t i = 0;

    if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        for (i = 2; i < len; i++) {
            char c = s[i];
            uint32_t d;

            if (c >= '0' && c <= '9') {
                d = c - '0';
            } else if (c >= 'a' && c <= 'f') {
                d = c - 'a' + 10;
            } else if (c >= 'A' && c <= 'F') {
                d = c - 'A' + 10;
            } else {
                return -1;
            }
            if (v >> 28) {
                return -1;
            }
            v = (v << 4) | d;
        }
    } else {
        if (len == 0) {
            return -1;
        }
        for (i = 0; i < len; i++) {
            char c = s[i];

            if (c < '0' || c > '9') {
                return -1;
            }
            if (v > 429496729u || (v == 429496729u && c > '5')) {
                return -1;
            }
            v = v * 10 + (c - '0');
        }
    }
    *out = v;
    return 0;
}

static void bad_option(const char *w, uint32_t len)
{
    uint32_t i;

    put_str("gmem-guest: bad option '");
    for (i = 0; i < len; i++) {
        put_char(w[i]);
    }
    put_str("'\n");
    set_fail(GMEM_GUEST_ERR_CMDLINE, "bad command line");
}

static void parse_option(const char *w, uint32_t len)
{
    uint32_t klen, vlen, v;
    const char *val;

    for (klen = 0; klen < len && w[klen] != '='; klen++) {
        /* find '=' */
    }
    if (klen == len) {
        /* QEMU passes the kernel file name as the first word */
        return;
    }
    val = w + klen + 1;
    vlen = len - klen - 1;

    if (word_is(w, klen, "mode")) {
        if (word_is(val, vlen, "exit")) {
            mode = MODE_EXIT;
        } else if (word_is(val, vlen, "halt")) {
            mode = MODE_HALT;
        } else if (word_is(val, vlen, "loop")) {
            mode = MODE_LOOP;
        } else {
            bad_option(w, len);
        }
    } else if (word_is(w, klen, "seed")) {
        if (parse_u32(val, vlen, &v) < 0) {
            bad_option(w, len);
        } else {
            seed = v;
        }
    } else if (word_is(w, klen, "loop")) {
        if (parse_u32(val, vlen, &v) < 0 || !v ||
            v > GMEM_GUEST_GUEST_DATA_SIZE >> 10) {
            bad_option(w, len);
        } else {
            loop_kib = v;
        }
    } else if (word_is(w, klen, "serve")) {
        if (parse_u32(val, vlen, &v) < 0 || v > 1) {
            bad_option(w, len);
        } else {
            serve = v;
        }
    } else if (word_is(w, klen, "hc")) {
        if (parse_u32(val, vlen, &v) < 0 || v > 1) {
            bad_option(w, len);
        } else {
            hypercall = v;
        }
    } else if (word_is(w, klen, "mb")) {
        if (parse_u32(val, vlen, &v) < 0) {
            bad_option(w, len);
        } else {
            limit_mib = v;
            have_limit = 1;
        }
    } else {
        bad_option(w, len);
    }
}

static void parse_cmdline(void)
{
    const char *p = cmdline;

    while (*p) {
        const char *w;

        while (*p == ' ' || *p == '\t') {
            p++;
        }
        w = p;
        while (*p && *p != ' ' && *p != '\t') {
            p++;
        }
        if (p != w) {
            parse_option(w, p - w);
        }
    }
}

/*
 * Boot information
 */

static void add_ram(uint64_t base, uint64_t len)
{
    uint64_t end = base + len;
    uint32_t spfn, epfn;

    if (base >= 0x100000000ull || len == 0) {
        return;
    }
    if (end > 0x100000000ull || end < base) {
        end = 0x100000000ull;
    }
    spfn = (uint32_t)((base + PAGE_SIZE - 1) >> PAGE_SHIFT);
    epfn = (uint32_t)(end >> PAGE_SHIFT);
    if (spfn >= epfn) {
        return;
    }
    if (nr_ram == ARRAY_SIZE(ram)) {
        gprintf("gmem-guest: too many RAM ranges, ignoring the rest\n");
        return;
    }
    ram[nr_ram].start = spfn;
    ram[nr_ram].end = epfn;
    nr_ram++;
}

static uint32_t rd32(uint32_t addr)
{
    /* Memory the host wrote: read it, do not let the compiler assume */
    return *(volatile uint32_t *)gpa_ptr(addr);
}

/*
 * Copy everything we need out of the multiboot info: QEMU puts parts of
 * it right after the image, where the RAM test will write.
 */
static void read_mbi(uint32_t mbi)
{
    uint32_t flags = rd32(mbi + MBI_FLAGS);

    gprintf("gmem-guest: multiboot info at 0x%08x, flags 0x%08x\n",
            mbi, flags);

    if (flags & MBI_FLAG_CMDLINE) {
        const char *s = (const char *)(uintptr_t)rd32(mbi + MBI_CMDLINE);
        uint32_t i;

        for (i = 0; i < CMDLINE_MAX - 1 && s[i]; i++) {
            cmdline[i] = s[i];
        }
        cmdline[i] = '\0';
        if (s[i]) {
            gprintf("gmem-guest: command line truncated\n");
        }
    }

    if (flags & MBI_FLAG_MMAP) {
        uint32_t addr = rd32(mbi + MBI_MMAP_ADDR);
        uint32_t end = addr + rd32(mbi + MBI_MMAP_LENGTH);

        while (addr + 24 <= end) {
            uint32_t size = rd32(addr);
            uint64_t base = rd32(addr + 4) |
                            ((uint64_t)rd32(addr + 8) << 32);
            uint64_t len = rd32(addr + 12) |
                           ((uint64_t)rd32(addr + 16) << 32);
            uint32_t type = rd32(addr + 20);

            gprintf("gmem-guest: mmap 0x%08x%08x len 0x%08x%08x type %u\n",
                    (uint32_t)(base >> 32), (uint32_t)base,
                    (uint32_t)(len >> 32), (uint32_t)len, type);
            if (type == MMAP_TYPE_RAM) {
                add_ram(base, len);
            }
            if (size < 20) {
                break;
            }
            addr += size + 4;
        }
    } else if (flags & MBI_FLAG_MEM) {
        uint32_t upper_kib = rd32(mbi + MBI_MEM_UPPER);

        gprintf("gmem-guest: no mmap, mem_upper %u KiB\n", upper_kib);
        add_ram(0x100000, (uint64_t)upper_kib << 10);
    }
}

/* Is [spfn, epfn) inside one usable RAM range? */
static int range_usable(uint32_t spfn, uint32_t epfn)
{
    unsigned int i;

    for (i = 0; i < nr_ram; i++) {
        if (ram[i].start <= spfn && epfn <= ram[i].end) {
            return 1;
        }
    }
    return 0;
}

/*
 * Host data
 */

static void check_host_data(void)
{
    uint32_t magic = mailbox->host_magic;
    uint32_t hseed = mailbox->host_seed;
    uint32_t hlen = mailbox->host_len;
    uint32_t addr, end;

    /* Invalidate any stale result from an earlier boot */
    mailbox->guest_magic = 0;

    if (magic != GMEM_GUEST_HOST_MAGIC) {
        gprintf("gmem-guest: no host data (host_magic 0x%08x)\n", magic);
        return;
    }
    gprintf("gmem-guest: host data: seed 0x%08x len %u\n", hseed, hlen);
    if (hlen > GMEM_GUEST_HOST_DATA_SIZE || (hlen & 3)) {
        gprintf("gmem-guest: bad host_len %u\n", hlen);
        set_fail(GMEM_GUEST_ERR_HOST_LEN, "bad host_len");
        return;
    }

    host_checked = 1;
    end = GMEM_GUEST_HOST_DATA_GPA + hlen;
    for (addr = GMEM_GUEST_HOST_DATA_GPA; addr < end; addr += 4) {
        uint32_t expect = gmem_guest_pattern(addr, hseed);
        uint32_t found = *gpa_ptr(addr);

        if (found != expect) {
            gprintf("gmem-guest: host data mismatch at 0x%08x: "
                    "expected 0x%08x found 0x%08x\n", addr, expect, found);
            set_fail(GMEM_GUEST_ERR_HOST_DATA, "host data mismatch");
            return;
        }
    }
    gprintf("gmem-guest: host data verified (%u bytes)\n", hlen);
}

/*
 * RAM test
 */

/* Fixed regions the RAM test must not touch, sorted by address */
static const PfnRange excluded[] = {
    {
        PFN(GMEM_GUEST_MAILBOX_GPA),
        PFN(GMEM_GUEST_MAILBOX_GPA + GMEM_GUEST_MAILBOX_SIZE),
    },
    {
        PFN(GMEM_GUEST_HOST_DATA_GPA),
        PFN(GMEM_GUEST_HOST_DATA_GPA + GMEM_GUEST_HOST_DATA_SIZE),
    },
    {
        PFN(GMEM_GUEST_GUEST_DATA_GPA),
        PFN(GMEM_GUEST_GUEST_DATA_GPA + GMEM_GUEST_GUEST_DATA_SIZE),
    },
};

static void add_chunk(uint32_t spfn, uint32_t epfn)
{
    if (spfn >= epfn || budget_pages == 0) {
        return;
    }
    if (epfn - spfn > budget_pages) {
        epfn = spfn + budget_pages;
    }
    if (nr_chunks == ARRAY_SIZE(chunks)) {
        gprintf("gmem-guest: too many test ranges, skipping 0x%08x\n",
                spfn << PAGE_SHIFT);
        return;
    }
    chunks[nr_chunks].start = spfn;
    chunks[nr_chunks].end = epfn;
    nr_chunks++;
    budget_pages -= epfn - spfn;
    tested_pages += epfn - spfn;
}

/* Plan the test of [spfn, epfn), leaving out the excluded ranges */
static void plan_range(uint32_t spfn, uint32_t epfn, uint32_t low_pfn)
{
    unsigned int i;

    if (spfn < low_pfn) {
        spfn = low_pfn;
    }
    for (i = 0; i < ARRAY_SIZE(excluded) && spfn < epfn; i++) {
        if (excluded[i].end <= spfn) {
            continue;
        }
        if (excluded[i].start >= epfn) {
            break;
        }
        add_chunk(spfn, excluded[i].start);
        spfn = excluded[i].end;
    }
    add_chunk(spfn, epfn);
}

/*
 * Fill and verify @nwords words from @addr, which is 128-byte aligned
 * and @nwords a multiple of 32.  Within a 128-byte block the
 * (addr >> 7) term of the pattern is constant, so compute it once per
 * block; the result is the same as gmem_guest_pattern() per word.
 */
#define BLOCK_WORDS             32

static void __attribute__((noinline))
fill_words(uint32_t addr, uint32_t nwords, uint32_t pseed)
{
    uint32_t *p = gpa_ptr(addr);
    uint32_t nblocks = nwords / BLOCK_WORDS;

    while (nblocks--) {
        uint32_t h = gmem_guest_pattern(addr, pseed) ^ addr;
        uint32_t *end = p + BLOCK_WORDS;

        while (p != end) {
            *p++ = addr ^ h;
            addr += 4;
        }
    }
}

/* Returns the address of the first mismatch, or 0 */
static uint32_t __attribute__((noinline))
verify_words(uint32_t addr, uint32_t nwords, uint32_t pseed)
{
    const uint32_t *p = gpa_ptr(addr);
    uint32_t nblocks = nwords / BLOCK_WORDS;

    while (nblocks--) {
        uint32_t h = gmem_guest_pattern(addr, pseed) ^ addr;
        const uint32_t *end = p + BLOCK_WORDS;

        while (p != end) {
            if (*p++ != (addr ^ h)) {
                return addr;
            }
            addr += 4;
        }
    }
    return 0;
}

/* The first word of the RAM test's chunks not as written, or 0 */
static uint32_t verify_chunks(void)
{
    unsigned int i;

    for (i = 0; i < nr_chunks; i++) {
        uint32_t bad = verify_words(chunks[i].start << PAGE_SHIFT,
                                    (chunks[i].end - chunks[i].start) <<
                                    (PAGE_SHIFT - 2), seed);

        if (bad) {
            return bad;
        }
    }
    return 0;
}

static void ram_test(void)
{
    uint32_t low_pfn = PFN((uintptr_t)gmem_guest_image_end + PAGE_SIZE - 1);
    unsigned int i;
    uint32_t bad;

    if (low_pfn < PFN_1M) {
        low_pfn = PFN_1M;
    }
    budget_pages = PFN_4G;
    if (have_limit && limit_mib < (PFN_4G >> 8)) {
        budget_pages = limit_mib << 8;
    }
    for (i = 0; i < nr_ram; i++) {
        plan_range(ram[i].start, ram[i].end, low_pfn);
    }

    gprintf("gmem-guest: RAM test: seed 0x%08x, %u MiB in %u ranges\n",
            seed, tested_pages >> 8, nr_chunks);
    for (i = 0; i < nr_chunks; i++) {
        gprintf("gmem-guest:   0x%08x-0x%08x\n",
                chunks[i].start << PAGE_SHIFT,
                (chunks[i].end << PAGE_SHIFT) - 1);
    }

    for (i = 0; i < nr_chunks; i++) {
        fill_words(chunks[i].start << PAGE_SHIFT,
                   (chunks[i].end - chunks[i].start) << (PAGE_SHIFT - 2),
                   seed);
    }
    barrier();
    bad = verify_chunks();
    if (bad) {
        gprintf("gmem-guest: RAM mismatch at 0x%08x: "
                "expected 0x%08x found 0x%08x\n", bad,
                gmem_guest_pattern(bad, seed), *gpa_ptr(bad));
        set_fail(GMEM_GUEST_ERR_RAM_TEST, "RAM mismatch");
        return;
    }
    gprintf("gmem-guest: RAM test passed: %u MiB (%u KiB)\n",
            tested_pages >> 8, tested_pages << 2);
}

static void fill_guest_data(void)
{
    uint32_t gseed = seed ^ GMEM_GUEST_SEED_XOR;
    uint32_t nwords = GMEM_GUEST_GUEST_DATA_SIZE / 4;
    uint32_t bad;

    fill_words(GMEM_GUEST_GUEST_DATA_GPA, nwords, gseed);
    barrier();
    bad = verify_words(GMEM_GUEST_GUEST_DATA_GPA, nwords, gseed);
    if (bad) {
        gprintf("gmem-guest: guest data readback mismatch at 0x%08x\n", bad);
        set_fail(GMEM_GUEST_ERR_GUEST_DATA, "guest data mismatch");
        return;
    }
    gprintf("gmem-guest: guest data filled (%u bytes, seed 0x%08x)\n",
            GMEM_GUEST_GUEST_DATA_SIZE, gseed);
}

/* Verify the chunks of the RAM test again: they must be as written */
static void reverify_ram(void)
{
    uint32_t bad = verify_chunks();

    if (bad) {
        gprintf("gmem-guest: RAM lost at 0x%08x: expected 0x%08x "
                "found 0x%08x\n", bad, gmem_guest_pattern(bad, seed),
                *gpa_ptr(bad));
        set_fail(GMEM_GUEST_ERR_LOOP, "RAM lost");
    }
}

static void loop_check(uint32_t addr, uint32_t nwords, uint32_t pseed,
                       uint32_t pass)
{
    uint32_t bad = verify_words(addr, nwords, pseed);

    if (bad) {
        gprintf("gmem-guest: loop data of pass %u lost at 0x%08x: "
                "expected 0x%08x found 0x%08x\n", pass, bad,
                gmem_guest_pattern(bad, pseed), *gpa_ptr(bad));
        set_fail(GMEM_GUEST_ERR_LOOP, "loop data lost");
    }
}

/*
 * mode=loop: rewrite the region block by block until the host says stop,
 * then check that nothing was lost (see gmem-guest.h)
 */
static void loop(void)
{
    uint32_t gseed = seed ^ GMEM_GUEST_SEED_XOR;
    uint32_t base = GMEM_GUEST_GUEST_DATA_GPA;
    uint32_t nblocks = (loop_kib << 10) / (BLOCK_WORDS * 4);
    uint32_t pass, b = 0, stop_at;

    gprintf("gmem-guest: loop over %u KiB at 0x%08x\n", loop_kib, base);
    for (pass = 1; ; pass++) {
        uint32_t pseed = gmem_guest_loop_seed(gseed, pass);

        for (b = 0; b < nblocks; b++) {
            if (mailbox->loop_cmd == GMEM_GUEST_LOOP_STOP) {
                goto stop;
            }
            fill_words(base + b * BLOCK_WORDS * 4, BLOCK_WORDS, pseed);
        }
        barrier();
        mailbox->loop_passes = pass;
    }
stop:
    stop_at = base + b * BLOCK_WORDS * 4;
    gprintf("gmem-guest: stopped in pass %u at 0x%08x\n", pass, stop_at);
    loop_check(base, b * BLOCK_WORDS, gmem_guest_loop_seed(gseed, pass),
               pass);
    loop_check(stop_at, (nblocks - b) * BLOCK_WORDS,
               pass > 1 ? gmem_guest_loop_seed(gseed, pass - 1) : gseed,
               pass - 1);
    loop_check(base + nblocks * BLOCK_WORDS * 4,
               (GMEM_GUEST_GUEST_DATA_SIZE >> 2) - nblocks * BLOCK_WORDS,
               gseed, 0);
    reverify_ram();
    mailbox->loop_passes = pass;
    if (!status) {
        gprintf("gmem-guest: loop data verified after %u passes\n", pass);
    }
}

static void __attribute__((noreturn)) finish(void)
{
    if (mailbox_ok) {
        mailbox->status = status;
        mailbox->host_checked = host_checked;
        mailbox->tested_mib = tested_pages >> 8;
        mailbox->guest_seed = seed ^ GMEM_GUEST_SEED_XOR;
        mailbox->guest_len = GMEM_GUEST_GUEST_DATA_SIZE;
    }
    if (mode == MODE_HALT) {
        gprintf("gmem-guest: mode=halt, result in mailbox at 0x%08x\n",
                GMEM_GUEST_MAILBOX_GPA);
    }
    if (status) {
        gprintf("gmem-guest: FAIL (%s)\n", fail_reason);
    } else {
        gprintf("gmem-guest: PASS\n");
    }
    if (mailbox_ok) {
        barrier();
        mailbox->guest_magic = GMEM_GUEST_DONE_MAGIC;
    }
    if (mode != MODE_HALT) {
        /*
         * QEMU handles the exit request asynchronously, so the guest
         * keeps running for a moment; if isa-debug-exit is absent,
         * nothing happens.  Either way, halt below.
         */
        outl(GMEM_GUEST_DEBUG_EXIT_PORT,
             status ? GMEM_GUEST_EXIT_FAIL : GMEM_GUEST_EXIT_PASS);
    }
    for (;;) {
        __asm__ volatile("cli; hlt");
    }
}

/*
 * Conversion requests
 */

static uint32_t model_request(uint32_t kind, uint32_t gpa, uint32_t size,
                              uint32_t attributes)
{
    uint32_t ret;

    __asm__ volatile("inl %1, %0"
                     : "=a"(ret)
                     : "Nd"((uint16_t)GMEM_GUEST_MODEL_PORT), "0"(kind),
                       "b"(gpa), "c"(size), "S"(attributes)
                     : "memory");
    return ret;
}

/* hc=1: vmmcall on AMD ("AuthenticAMD"), vmcall elsewhere */
static void choose_hypercall(void)
{
    uint32_t a = 0, b, c, d;

    __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "=c"(c), "=d"(d));
    hypercall = b == 0x68747541u && d == 0x69746e65u && c == 0x444d4163u ?
                2 : 1;
    gprintf("gmem-guest: hypercalls through %s\n",
            hypercall == 2 ? "vmmcall" : "vmcall");
}

/*
 * A KVM hypercall from 32-bit code: the number in eax, the arguments in
 * ebx, ecx, edx, the result in eax.
 */
static uint32_t kvm_hypercall3(uint32_t nr, uint32_t a0, uint32_t a1,
                               uint32_t a2)
{
    uint32_t ret;

    if (hypercall == 2) {
        __asm__ volatile("vmmcall"
                         : "=a"(ret)
                         : "0"(nr), "b"(a0), "c"(a1), "d"(a2)
                         : "memory");
    } else {
        __asm__ volatile("vmcall"
                         : "=a"(ret)
                         : "0"(nr), "b"(a0), "c"(a1), "d"(a2)
                         : "memory");
    }
    return ret;
}

static uint32_t request(uint32_t kind, uint32_t gpa, uint32_t size,
                        uint32_t attributes)
{
    if (!hypercall) {
        return model_request(kind, gpa, size, attributes);
    }
    if (kind != GMEM_GUEST_REQ_MAP_GPA_RANGE) {
        /* a memory fault is not something a guest can ask for */
        return GMEM_GUEST_RESULT_UNSUPPORTED;
    }
    return kvm_hypercall3(kind, gpa, size, attributes);
}

/*
 * The requests in the mailbox, in order, the whole list "repeat" times
 * (at least once), printing them when made once only (a line on the
 * debug console costs an exit per character)
 */
static void make_requests(void)
{
    uint32_t n = mailbox->nr_requests;
    uint32_t passes = mailbox->repeat;
    uint32_t i, pass;

    if (n > GMEM_GUEST_MAX_REQUESTS) {
        n = GMEM_GUEST_MAX_REQUESTS;
    }
    for (pass = 0; pass < passes || !pass; pass++) {
        for (i = 0; i < n; i++) {
            volatile GmemGuestRequest *r = &mailbox->requests[i]; /* host's */

            r->result = request(r->kind, r->gpa, r->size, r->attributes);
            barrier();
            r->done = 1;
            if (passes <= 1) {
                gprintf("gmem-guest: request %u: kind 0x%x gpa 0x%08x "
                        "size 0x%x attributes 0x%x: 0x%08x\n", i, r->kind,
                        r->gpa, r->size, r->attributes, r->result);
            }
        }
    }
}

/*
 * Conversion stress on several vCPUs (GmemGuestStress in gmem-guest.h)
 */

#define LAPIC_BASE              0xfee00000u
#define LAPIC_SVR               0xf0
#define LAPIC_SVR_ENABLE        (1u << 8)
#define LAPIC_ICR_LOW           0x300
#define LAPIC_ICR_HIGH          0x310
#define LAPIC_ICR_BUSY          (1u << 12)
/* INIT and STARTUP, level assert, to all but self */
#define LAPIC_ICR_INIT_OTHERS   0x000c4500u
#define LAPIC_ICR_SIPI_OTHERS   0x000c4600u

#define AP_TRAMPOLINE           0x8000u     /* real-mode entry, page-aligned */
#define AP_STACK_SIZE           4096
#define AP_START_CYCLES         (4000ull * 1000 * 1000)  /* a second or two */

#define MAP_GPA_RANGE_ENCRYPTED (1u << 4)   /* KVM_MAP_GPA_RANGE_ENCRYPTED */

void gmem_guest_ap_main(uint32_t cpu) __attribute__((noreturn, used));

static uint8_t ap_stacks[GMEM_GUEST_MAX_CPUS][AP_STACK_SIZE]
    __attribute__((aligned(16), used));
/* The index the next AP takes; taken with "lock xadd" by the trampoline */
static volatile uint32_t ap_next __attribute__((used)) = 1;

/*
 * The APs' entry, copied to AP_TRAMPOLINE: from real mode (CS =
 * AP_TRAMPOLINE >> 4, IP = 0) to flat 32-bit protected mode with a GDT of
 * its own, then a stack per AP and gmem_guest_ap_main(index).  It runs
 * away from where it is linked: only offsets within it, absolute
 * addresses and indirect calls.
 */
__asm__(
    ".section .text.ap, \"ax\"\n"
    ".code16\n"
    ".globl gmem_guest_ap_start\n"
    "gmem_guest_ap_start:\n"
    "    cli\n"
    "    cld\n"
    "    movw %cs, %ax\n"
    "    movw %ax, %ds\n"
    "    lgdtl ap_gdt_desc - gmem_guest_ap_start\n"
    "    movl %cr0, %eax\n"
    "    orl $1, %eax\n"
    "    movl %eax, %cr0\n"
    "    ljmpl $0x08, $" STR(AP_TRAMPOLINE) " + ap_flat - gmem_guest_ap_start\n"
    ".code32\n"
    "ap_flat:\n"
    "    movl $0x10, %eax\n"
    "    movw %ax, %ds\n"
    "    movw %ax, %es\n"
    "    movw %ax, %fs\n"
    "    movw %ax, %gs\n"
    "    movw %ax, %ss\n"
    "    movl $1, %eax\n"
    "    lock xaddl %eax, ap_next\n"
    "    cmpl $" STR(GMEM_GUEST_MAX_CPUS) ", %eax\n"
    "    jae 1f\n"
    "    movl %eax, %ebx\n"
    "    shll $12, %eax\n"
    "    leal ap_stacks(%eax), %esp\n"
    "    pushl %ebx\n"
    "    movl $gmem_guest_ap_main, %eax\n"
    "    call *%eax\n"
    "1:  cli\n"
    "    hlt\n"
    "    jmp 1b\n"
    "    .p2align 3\n"
    "ap_gdt:\n"
    "    .quad 0\n"
    "    .quad 0x00cf9a000000ffff\n"         /* 0x08: flat code */
    "    .quad 0x00cf92000000ffff\n"         /* 0x10: flat data */
    "ap_gdt_desc:\n"
    "    .word ap_gdt_desc - ap_gdt - 1\n"
    "    .long " STR(AP_TRAMPOLINE) " + ap_gdt - gmem_guest_ap_start\n"
    ".globl gmem_guest_ap_end\n"
    "gmem_guest_ap_end:\n"
    ".previous\n");

_Static_assert(AP_STACK_SIZE == 1 << 12, "the trampoline shifts by 12");

static inline uint32_t lapic_read(uint32_t reg)
{
    return *(volatile uint32_t *)(uintptr_t)(LAPIC_BASE + reg); /* MMIO */
}

static inline void lapic_write(uint32_t reg, uint32_t val)
{
    *(volatile uint32_t *)(uintptr_t)(LAPIC_BASE + reg) = val; /* MMIO */
}

static void lapic_ipi(uint32_t icr)
{
    lapic_write(LAPIC_ICR_HIGH, 0);
    lapic_write(LAPIC_ICR_LOW, icr);
    while (lapic_read(LAPIC_ICR_LOW) & LAPIC_ICR_BUSY) {
        __asm__ volatile("pause");
    }
}

static uint64_t rdtsc(void)
{
    uint32_t lo, hi;

    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

static void spin(uint32_t n)
{
    while (n--) {
        __asm__ volatile("pause");
    }
}

/* Copy the trampoline and send INIT, STARTUP, STARTUP to the other vCPUs */
static void start_aps(void)
{
    /* not a memcpy() call, which the guest does not have */
    volatile uint8_t *dst = (volatile uint8_t *)(uintptr_t)AP_TRAMPOLINE;
    const char *src;

    for (src = gmem_guest_ap_start; src < gmem_guest_ap_end; src++) {
        *dst++ = *src;
    }
    lapic_write(LAPIC_SVR, lapic_read(LAPIC_SVR) | LAPIC_SVR_ENABLE);
    lapic_ipi(LAPIC_ICR_INIT_OTHERS);
    spin(100000);
    lapic_ipi(LAPIC_ICR_SIPI_OTHERS | AP_TRAMPOLINE >> PAGE_SHIFT);
    spin(10000);
    lapic_ipi(LAPIC_ICR_SIPI_OTHERS | AP_TRAMPOLINE >> PAGE_SHIFT);
}

static uint32_t xorshift32(uint32_t *state)
{
    uint32_t x = *state;

    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

/* vCPU @cpu's share of the stress */
static void stress_run(uint32_t cpu)
{
    volatile GmemGuestStress *st = &mailbox->stress; /* shared */
    uint32_t state = (st->seed ^ (cpu + 1) * 0x9e3779b9u) | 1;
    uint32_t count = st->count, pages = st->pages, gpa = st->gpa;
    uint32_t i;

    for (i = 0; i < count; i++) {
        uint32_t first = xorshift32(&state) % pages;
        uint32_t max = pages - first < GMEM_GUEST_STRESS_MAX_PAGES ?
                       pages - first : GMEM_GUEST_STRESS_MAX_PAGES;
        uint32_t n = 1 + xorshift32(&state) % max;
        uint32_t attributes = xorshift32(&state) & 1 ?
                              MAP_GPA_RANGE_ENCRYPTED : 0;

        if (request(GMEM_GUEST_REQ_MAP_GPA_RANGE, gpa + (first << PAGE_SHIFT),
                    n, attributes)) {
            st->failed[cpu]++;
        }
        barrier();
        st->made[cpu] = i + 1;
    }
}

void gmem_guest_ap_main(uint32_t cpu)
{
    if (cpu < mailbox->stress.cpus) {
        stress_run(cpu);
    }
    for (;;) {
        __asm__ volatile("cli; hlt");
    }
}

static void stress(void)
{
    volatile GmemGuestStress *st = &mailbox->stress; /* shared */
    uint32_t cpus = st->cpus, failed = 0, i;
    uint64_t start;

    if (!st->count) {
        return;
    }
    if (!cpus || cpus > GMEM_GUEST_MAX_CPUS || !st->pages) {
        gprintf("gmem-guest: stress: bad parameters\n");
        set_fail(GMEM_GUEST_ERR_SMP, "bad stress parameters");
        return;
    }
    gprintf("gmem-guest: stress: %u vCPUs, %u requests each, "
            "0x%08x+%u pages\n", cpus, st->count, st->gpa, st->pages);
    if (cpus > 1) {
        start_aps();
    }
    start = rdtsc();
    while (ap_next < cpus && rdtsc() - start < AP_START_CYCLES) {
        __asm__ volatile("pause");
    }
    st->started = ap_next;
    if (ap_next < cpus) {
        gprintf("gmem-guest: stress: %u of %u vCPUs started\n", ap_next,
                cpus);
        set_fail(GMEM_GUEST_ERR_SMP, "APs did not start");
        return;
    }
    stress_run(0);
    for (i = 0; i < cpus; i++) {
        while (st->made[i] < st->count) {
            __asm__ volatile("pause" : : : "memory");
        }
        failed += st->failed[i];
    }
    gprintf("gmem-guest: stress: %u requests made, %u failed\n",
            cpus * st->count, failed);
}

void gmem_guest_main(uint32_t magic, uint32_t mbi)
{
    uint32_t image_end = (uintptr_t)gmem_guest_image_end;
    uint32_t top = 0;
    unsigned int i;

    gprintf("gmem-guest: start, image 0x%08x-0x%08x\n",
            GMEM_GUEST_LOAD_GPA, image_end - 1);
    if (magic != MB_BOOT_MAGIC) {
        gprintf("gmem-guest: bad multiboot magic 0x%08x\n", magic);
        set_fail(GMEM_GUEST_ERR_BOOT, "bad multiboot magic");
        finish();
    }

    read_mbi(mbi);
    gprintf("gmem-guest: command line '%s'\n", cmdline);
    parse_cmdline();
    gprintf("gmem-guest: mode=%s seed=0x%08x",
            mode == MODE_HALT ? "halt" : mode == MODE_LOOP ? "loop" : "exit",
            seed);
    if (have_limit) {
        gprintf(" mb=%u\n", limit_mib);
    } else {
        gprintf(" mb=all\n");
    }

    if (nr_ram == 0) {
        gprintf("gmem-guest: no usable memory information from loader\n");
        set_fail(GMEM_GUEST_ERR_NO_MEMINFO, "no memory info");
        finish();
    }
    for (i = 0; i < nr_ram; i++) {
        if (ram[i].end > top) {
            top = ram[i].end;
        }
    }
    mailbox_ok = range_usable(PFN(GMEM_GUEST_MAILBOX_GPA),
                              PFN(GMEM_GUEST_MAILBOX_GPA +
                                  GMEM_GUEST_MAILBOX_SIZE));
    if (top < PFN(GMEM_GUEST_MIN_RAM) || !mailbox_ok ||
        !range_usable(PFN(GMEM_GUEST_HOST_DATA_GPA),
                      PFN(GMEM_GUEST_GUEST_DATA_GPA +
                          GMEM_GUEST_GUEST_DATA_SIZE))) {
        gprintf("gmem-guest: not enough RAM: usable RAM ends at %u KiB, "
                "need %u KiB (%u MiB)\n", top << 2,
                GMEM_GUEST_MIN_RAM >> 10, GMEM_GUEST_MIN_RAM >> 20);
        mailbox_ok = 0;
        set_fail(GMEM_GUEST_ERR_RAM_TOO_SMALL, "not enough RAM");
        finish();
    }
    if (image_end > GMEM_GUEST_MAILBOX_GPA) {
        /* Also enforced by the linker script */
        gprintf("gmem-guest: image overlaps the mailbox\n");
        set_fail(GMEM_GUEST_ERR_BOOT, "image too large");
        finish();
    }

    if (hypercall) {
        choose_hypercall();
    }
    /* Must happen before the RAM test touches anything */
    check_host_data();
    make_requests();
    stress();
    while (serve) {
        uint32_t cmd = mailbox->serve_cmd;

        if (cmd == GMEM_GUEST_SERVE_STOP) {
            break;
        }
        if (cmd == GMEM_GUEST_SERVE_GO) {
            make_requests();
            barrier();
            mailbox->serve_cmd = 0;
        }
        __asm__ volatile("pause" : : : "memory");
    }

    if (!status) {
        ram_test();
    }
    fill_guest_data();
    if (mode == MODE_LOOP && !status) {
        loop();
    }
    finish();
}
