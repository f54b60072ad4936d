# SPDX-License-Identifier: GPL-2.0-or-later
#
# qemu-gmem: QEMU 10.2.2 + in-place guest_memfd, as a patch set.
#
#   make setup    install the Debian packages (root or sudo)
#   make build    fetch, extract, patch, configure and build QEMU
#   make run      boot a VM whose RAM is one guest_memfd (the main job)
#   make check    all tests
#   make series   the change as three git format-patch postings + checkpatch
#   make bench    benchmarks (ratios measured side by side)
#   make libvirt  libvirt 11.3.0 + the libvirt/ patches (guest-memfd domain XML)
#   make kernel-lab KERNEL_SRC=/path/to/linux
#                 boot a kernel with the in-place series under TCG, test in it
#
# QEMU_SRC=/path/to/qemu-10.2.2 or QEMU_TARBALL=/path/to/tarball use your
# own QEMU source instead of Debian's source package; LIBVIRT_SRC= and
# LIBVIRT_TARBALL= do the same for libvirt.

include qemu-base.mk

TOP    := $(CURDIR)
SRC    := $(TOP)/build/qemu
OBJ    := $(TOP)/build/obj
QEMU   := $(OBJ)/qemu-system-x86_64
PYTHON ?= /usr/bin/python3
JOBS   ?= $(shell nproc)
CCACHE := $(shell command -v ccache 2>/dev/null)

CONFIGURE_FLAGS := --target-list=x86_64-softmmu --without-default-features \
	--enable-kvm --enable-tcg --enable-tools --enable-slirp --enable-pixman \
	--enable-fdt=system --enable-vhost-user --enable-vhost-net --enable-numa \
	--disable-docs --disable-rust --disable-download --disable-install-blobs \
	--python=$(PYTHON) $(if $(CCACHE),--cc="ccache gcc")

OVERLAY := $(shell awk '!/^\#/ { for (i = 2; i <= NF; i++) print $$i }' patches/overlay)
INPUTS  := patches/series patches/overlay $(wildcard patches/*.patch) $(OVERLAY) \
	qemu-base.mk mk/prepare.sh

export QEMU_SRC QEMU_TARBALL LIBVIRT_SRC LIBVIRT_TARBALL

.PHONY: all setup fetch prepare configure build run check series fuzz \
	series-build print-configure-flags bench kernel-lab clean distclean \
	libvirt

all: build

# Packages are installed once (mk/setup.sh is idempotent); NO_SETUP=1 skips
# it on a machine that has them already.
SETUP_STAMP := $(TOP)/build/.setup
ifeq ($(NO_SETUP),1)
SETUP_DEP :=
else
SETUP_DEP := $(SETUP_STAMP)
endif

setup:
	mk/setup.sh
	mkdir -p $(TOP)/build && touch $(SETUP_STAMP)

$(SETUP_STAMP): mk/setup.sh
	mk/setup.sh
	mkdir -p $(TOP)/build && touch $@

fetch:
	mk/fetch.sh

$(TOP)/build/.prepared: $(INPUTS) | $(SETUP_DEP)
	mk/fetch.sh
	mk/prepare.sh
	touch $@

prepare: $(TOP)/build/.prepared

# Reconfigured from scratch when the flags here change; meson reconfigures
# by itself when the patched tree's build files change.
$(OBJ)/build.ninja: Makefile | $(TOP)/build/.prepared
	rm -rf $(OBJ) && mkdir -p $(OBJ)
	cd $(OBJ) && $(SRC)/configure $(CONFIGURE_FLAGS) >configure.log 2>&1 || \
		{ tail -30 configure.log; echo "configure failed: see $(OBJ)/configure.log"; exit 1; }

configure: $(OBJ)/build.ninja

build: $(TOP)/build/.prepared $(OBJ)/build.ninja
	ninja -C $(OBJ) -j$(JOBS) all
	$(MAKE) -C $(OBJ) -j$(JOBS) pc-bios/optionrom/all >/dev/null
	mk/firmware.sh $(OBJ)

run: build
	mk/run.sh $(OBJ)

check: build libvirt
	LIBVIRT_OBJ=$(LV_OBJ) mk/check.sh $(OBJ)

series: $(TOP)/build/.prepared
	mk/series.sh

# Build after each patch of the series (slow; not part of check)
series-build: $(TOP)/build/.prepared
	mk/series-build.sh

print-configure-flags:
	@echo '$(CONFIGURE_FLAGS)'

bench: build
	bench/run.sh $(OBJ)

# Not part of check: needs a kernel tree with the in-place series
kernel-lab:
	KERNEL_SRC="$(KERNEL_SRC)" QEMU_OBJ="$(or $(QEMU_OBJ),$(OBJ))" mk/kernel-lab.sh

# libFuzzer campaign on the conversion engine (ASan, UBSan): FUZZ_RUNS
# executions, 10^7 by default; make check runs a one-minute smoke of it
FUZZ_RUNS ?= 10000000
fuzz: build
	mk/fuzz.sh campaign $(FUZZ_RUNS)

# libvirt 11.3.0 with libvirt/patches (mk/libvirt-*.sh), the same way as QEMU:
# build/libvirt is a git tree, one commit per patch, built in build/libvirt-obj
LV_OBJ     := $(TOP)/build/libvirt-obj
LV_OVERLAY := $(addprefix libvirt/,$(shell awk '!/^\#/ { for (i = 2; i <= NF; i++) print $$i }' libvirt/patches/overlay))
LV_INPUTS  := libvirt/patches/series libvirt/patches/overlay \
	$(wildcard libvirt/patches/*.patch) $(LV_OVERLAY) libvirt-base.mk \
	mk/libvirt-prepare.sh

$(TOP)/build/.libvirt-prepared: $(LV_INPUTS) | $(SETUP_DEP)
	mk/libvirt-fetch.sh
	mk/libvirt-prepare.sh
	touch $@

$(LV_OBJ)/build.ninja: mk/libvirt-build.sh | $(TOP)/build/.libvirt-prepared
	mk/libvirt-build.sh configure

libvirt: $(TOP)/build/.libvirt-prepared $(LV_OBJ)/build.ninja
	JOBS=$(JOBS) mk/libvirt-build.sh build

clean:
	rm -rf $(OBJ) $(TOP)/build/.prepared $(TOP)/build/series
	rm -rf $(LV_OBJ) $(TOP)/build/.libvirt-prepared $(TOP)/build/libvirt-root

distclean:
	rm -rf $(TOP)/build
