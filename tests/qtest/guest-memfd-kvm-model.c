/*
 * A model of older host kernels for guest-memfd-test, used with LD_PRELOAD
 *
 * The KVM capabilities listed in GMEM_KVM_MODEL_HIDE_CAPS (numbers,
 * separated by commas) read as 0 from KVM_CHECK_EXTENSION, as they do on
 * a kernel that predates them; every other ioctl reaches the kernel.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <dlfcn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>

static bool hidden(long cap)
{
    const char *p = getenv("GMEM_KVM_MODEL_HIDE_CAPS");

    while (p && *p) {
        long n = 0;

        while (*p >= '0' && *p <= '9') {
            n = n * 10 + (*p++ - '0');
        }
        if (n == cap) {
            return true;
        }
        p = *p == ',' ? p + 1 : NULL;
    }
    return false;
}

int ioctl(int fd, unsigned long request, ...)
{
    static int (*real_ioctl)(int, unsigned long, void *);
    va_list ap;
    void *arg;

    va_start(ap, request);
    arg = va_arg(ap, void *);
    va_end(ap);

    if (!real_ioctl) {
        real_ioctl = dlsym(RTLD_NEXT, "ioctl");
    }
    if (request == KVM_CHECK_EXTENSION && hidden((long)arg)) {
        return 0;
    }
    return real_ioctl(fd, request, arg);
}
