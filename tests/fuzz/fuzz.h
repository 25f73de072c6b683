/* SPDX-License-Identifier: MIT */
/*
 * fuzz: what the fuzz targets share. FUZZ_ASSERT aborts (a crash for
 * libFuzzer, a failed run for the corpus driver) with the expression and
 * its place; fuzz_once makes sure descriptors 0-2 are open (libFuzzer's
 * -close_fd_mask closes them, and a memfd that landed on descriptor 2 would
 * then receive the daemon's log lines while it is being parsed); fuzz_file
 * is a memfd rewritten with each input, for the loaders that read a path.
 * Header-only: each target is one .c file plus this.
 */
#ifndef BLAZEBOT_FUZZ_H
#define BLAZEBOT_FUZZ_H

#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* The sanitizers' summary line, where libFuzzer's report goes even when its
 * -close_fd_mask hides the target's stderr; absent without a sanitizer. */
void __sanitizer_report_error_summary(const char *summary) __attribute__((weak));

__attribute__((noreturn)) static inline void fuzz_fail(const char *file, int line,
                                                       const char *what) {
  char msg[512];
  snprintf(msg, sizeof msg, "%s:%d: FUZZ_ASSERT failed: %s", file, line, what);
  fprintf(stderr, "%s\n", msg);
  if (__sanitizer_report_error_summary)
    __sanitizer_report_error_summary(msg);
  abort();
}

#define FUZZ_ASSERT(cond)                                                                \
  do {                                                                                   \
    if (!(cond))                                                                         \
      fuzz_fail(__FILE__, __LINE__, #cond);                                              \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Opens /dev/null on every closed descriptor among 0, 1 and 2. */
static inline void fuzz_std_fds(void) {
  for (int fd = 0; fd < 3; fd++) {
    if (fcntl(fd, F_GETFD) < 0) {
      int n = open("/dev/null", fd ? O_WRONLY : O_RDONLY);
      if (n >= 0 && n != fd) {
        dup2(n, fd);
        close(n);
      }
    }
  }
}

/* A file that holds one input at a time, named by path. */
struct fuzz_file {
  int fd;
  char path[64];
};

/* Makes f (an anonymous memfd, mode 0600) once; aborts when it cannot. */
static inline void fuzz_file_open(struct fuzz_file *f, const char *name) {
  fuzz_std_fds();
  f->fd = memfd_create(name, MFD_CLOEXEC);
  FUZZ_ASSERT(f->fd >= 0);
  FUZZ_ASSERT(fchmod(f->fd, 0600) == 0);
  snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
}

/* Replaces the file's contents with data[0..size). */
static inline void fuzz_file_write(struct fuzz_file *f, const void *data, size_t size) {
  FUZZ_ASSERT(ftruncate(f->fd, 0) == 0);
  size_t off = 0;
  while (off < size) {
    ssize_t n = pwrite(f->fd, (const char *)data + off, size - off, (off_t)off);
    FUZZ_ASSERT(n > 0);
    off += (size_t)n;
  }
}

/* A NUL-terminated copy of data[0..size) (free it). */
static inline char *fuzz_strndup(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  FUZZ_ASSERT(s != NULL);
  for (size_t i = 0; i < size; i++)
    s[i] = (char)data[i];
  s[size] = 0;
  return s;
}

#endif
