/*
 * Helpers for the memory-backend-guest-memfd qtests: VMs whose RAM is a
 * guest_memfd, the gmem-guest test guest and its mailbox, and what /proc
 * shows of QEMU's guest_memfds
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef GUEST_MEMFD_UTIL_H
#define GUEST_MEMFD_UTIL_H

#include "libqtest.h"

#define RAM_MB          32
#define GUEST_TIMEOUT_S 300

const char *guest_elf(void);
bool have_guest(void);
bool have_kvm(void);
QTestState *start_vm(const char *machine, const char *backend_opts,
                     const char *extra);
void assert_kvm_accel(QTestState *qts);
bool is_gmem_name(const char *name);
uint64_t find_gmem_mapping(pid_t pid, uint64_t size, uint64_t *rss_kb);
bool gmem_fd_open(pid_t pid, uint64_t inode);
char *read_console(const char *path);
char *test_dir_new(void);
void test_dir_remove(const char *dir);

uint32_t mailbox_readl(QTestState *qts, uint32_t field);
QTestState *guest_vm_start(const char *backend, const char *append,
                           const char *log, const char *extra);
void guest_fail(const char *log, const char *what);
void wait_loop_passes(QTestState *qts, uint32_t n, const char *log);
void wait_guest_pass(QTestState *qts, const char *log);
unsigned stop_loop(QTestState *qts, const char *log);

char *refused(const char *args, char **envp, const char *name);

const char *kvm_model(void);
void check_gmem_backend(QTestState *qts, const char *name, uint64_t shared,
                        uint64_t private);

/* A software-protected VM, on the KVM model */
#define SWPROT_ARGS \
    "-nodefaults -display none -S -m 32M " \
    "-object memory-backend-guest-memfd,id=m0,size=32M " \
    "-object sw-protected-guest,id=swp0 " \
    "-machine q35,memory-backend=m0,confidential-guest-support=swp0"

/* Minimal OVMF (SEV-SNP) and TDVF images, of SNP_FW_SIZE bytes */
#define SNP_FW_SIZE 0x10000
#define SNP_FW_GPA (0x100000000ULL - SNP_FW_SIZE)
#define TDX_HOB_GPA 0x809000
#define TDX_TEMP_GPA 0x800000

uint8_t *snp_firmware(void);
uint8_t *tdx_firmware(bool bfv_moved);
unsigned host_cbitpos(void);

/* Legacy virtio-pci (docs: the virtio 0.9.5 specification) */
#define VIRTIO_DEVFN            (4 << 3)    /* addr=04.0 */
#define VIRTIO_PCI_GUEST_FEATURES 0x04
#define VIRTIO_PCI_QUEUE_PFN    0x08
#define VIRTIO_PCI_QUEUE_NUM    0x0c
#define VIRTIO_PCI_QUEUE_SEL    0x0e
#define VIRTIO_PCI_QUEUE_NOTIFY 0x10
#define VIRTIO_PCI_STATUS       0x12
#define VRING_DESC_F_NEXT       1
#define VRING_DESC_F_WRITE      2
#define VRING_ALIGN             4096
#define RING_GPA                0x1400000   /* shared, past the guest's */
#define BUF_GPA                 0x1500000
#define BUF_LEN                 64

uint64_t dimm_addr(QTestState *qts, const char *id);
uint32_t pci_cfg_readl(QTestState *qts, int devfn, int offset);
void pci_cfg_writel(QTestState *qts, int devfn, int offset, uint32_t val);
uint64_t virtio_legacy_queue(QTestState *qts, uint16_t io, uint64_t ring,
                             bool zero, uint64_t *used);
void virtio_legacy_kick(QTestState *qts, uint16_t io, uint64_t ring,
                        uint64_t avail);
uint64_t virtio_legacy_start(QTestState *qts, uint16_t io, uint64_t ring,
                             uint64_t buf, bool ring_shared);

#endif
