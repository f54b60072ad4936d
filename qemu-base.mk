# The QEMU release this patch set applies to: one place to retarget it.
QEMU_VERSION    := 10.2.2
QEMU_DEB_SOURCE := qemu=1:10.2.2+ds-1
QEMU_ORIG       := qemu_10.2.2+ds.orig.tar.xz
QEMU_ORIG_SIZE  := 38669728
QEMU_ORIG_SHA256 := be05230fe47a6937cd29f28f562932c8125f9c93c2a82c625198f7a4aa601dfb
