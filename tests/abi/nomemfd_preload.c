/* SPDX-License-Identifier: MIT */
/*
 * An LD_PRELOAD shim for abi.refusals: memfd_create fails with ENOSYS, as
 * on a kernel without it, so the daemon takes its staged-file fallback.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/mman.h>

int memfd_create(const char *name, unsigned int flags) {
  (void)name;
  (void)flags;
  errno = ENOSYS;
  return -1;
}
