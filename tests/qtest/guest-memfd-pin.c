/*
 * guest-memfd-pin: pin a page of QEMU's guest memory on request, for the
 * real-kernel tests of guest-memfd-convert-test.
 *
 * An LD_PRELOAD library that models nothing: every ioctl goes to the
 * kernel unchanged.  It only notes where QEMU maps each memory slot, and
 * pins one page of guest memory when the test asks, through the kernel's
 * own long-term pin (/sys/kernel/debug/gup_test, CONFIG_GUP_TEST), as a
 * device doing DMA to that page would hold it.  A kernel that converts
 * guest_memfd memory in place then refuses to make the page private
 * (EAGAIN) until it is unpinned.
 *
 *   GMEM_PIN_GPA   the guest-physical address of the page
 *   GMEM_PIN_CTL   a file the test writes "pin" or "unpin" to; the
 *                  library answers in GMEM_PIN_CTL.ack with "pin 0",
 *                  "unpin 0" or the command and an errno value
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/kvm.h>

/* mm/gup_test.h: pin pages until told to unpin them */
struct pin_longterm_test {
    uint64_t addr;
    uint64_t size;
    uint32_t flags;
};
#define PIN_LONGTERM_TEST_START     _IOW('g', 7, struct pin_longterm_test)
#define PIN_LONGTERM_TEST_STOP      _IO('g', 8)
#define PIN_LONGTERM_TEST_FLAG_USE_WRITE 1

#define PAGE_SIZE_4K    4096ULL

static int (*real_ioctl)(int, unsigned long, void *);
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t pin_gpa;
static uint64_t pin_hva;    /* 0 until QEMU maps the slot holding it */

static void answer(const char *ctl, const char *cmd, int err)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s.ack", ctl);
    f = fopen(path, "w");
    if (f) {
        fprintf(f, "%s %d\n", cmd, err);
        fclose(f);
    }
}

static void *control(void *opaque)
{
    const char *ctl = opaque;
    int gup = -1;

    for (;;) {
        char cmd[16] = "";
        FILE *f = fopen(ctl, "r");
        int err = 0;

        if (f) {
            if (!fgets(cmd, sizeof(cmd), f)) {
                cmd[0] = 0;
            }
            fclose(f);
            unlink(ctl);
        }
        cmd[strcspn(cmd, "\n")] = 0;
        if (!strcmp(cmd, "pin")) {
            struct pin_longterm_test t = {
                .size = PAGE_SIZE_4K,
                .flags = PIN_LONGTERM_TEST_FLAG_USE_WRITE,
            };

            pthread_mutex_lock(&lock);
            t.addr = pin_hva;
            pthread_mutex_unlock(&lock);
            if (gup < 0) {
                gup = open("/sys/kernel/debug/gup_test", O_RDWR);
            }
            if (!t.addr) {
                err = ENXIO;
            } else if (gup < 0 ||
                       real_ioctl(gup, PIN_LONGTERM_TEST_START, &t)) {
                err = errno;
            }
            answer(ctl, cmd, err);
        } else if (!strcmp(cmd, "unpin")) {
            if (gup < 0 || real_ioctl(gup, PIN_LONGTERM_TEST_STOP, NULL)) {
                err = gup < 0 ? EBADF : errno;
            }
            answer(ctl, cmd, err);
        }
        usleep(10 * 1000);
    }
    return NULL;
}

__attribute__((constructor))
static void pin_init(void)
{
    const char *gpa = getenv("GMEM_PIN_GPA");
    const char *ctl = getenv("GMEM_PIN_CTL");
    pthread_t thread;

    real_ioctl = dlsym(RTLD_NEXT, "ioctl");
    if (!gpa || !ctl) {
        return;
    }
    if (sscanf(gpa, "%" SCNi64, &pin_gpa) != 1) {
        return;
    }
    pthread_create(&thread, NULL, control, strdup(ctl));
    pthread_detach(thread);
}

int ioctl(int fd, unsigned long request, ...)
{
    va_list ap;
    void *arg;
    int ret;

    va_start(ap, request);
    arg = va_arg(ap, void *);
    va_end(ap);
    ret = real_ioctl(fd, request, arg);
    if (!ret && request == KVM_SET_USER_MEMORY_REGION2) {
        const struct kvm_userspace_memory_region2 *m = arg;

        pthread_mutex_lock(&lock);
        if (m->memory_size && pin_gpa >= m->guest_phys_addr &&
            pin_gpa - m->guest_phys_addr < m->memory_size &&
            !(m->slot >> 16)) {
            /* address space 0: the guest's view of memory */
            pin_hva = m->userspace_addr + (pin_gpa - m->guest_phys_addr);
        }
        pthread_mutex_unlock(&lock);
    }
    return ret;
}
