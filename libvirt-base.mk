# The libvirt release the libvirt/ patches apply to: one place to retarget it.
LIBVIRT_VERSION     := 11.3.0
LIBVIRT_DEB_SOURCE  := libvirt=11.3.0-2~bpo12+1
LIBVIRT_ORIG        := libvirt_11.3.0.orig.tar.xz
LIBVIRT_ORIG_SIZE   := 9801572
LIBVIRT_ORIG_SHA256 := 6bcb0c42c4580436fea262ced56f68a6afe20f7390b1bea2116718cc034a0283
