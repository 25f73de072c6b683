/* SPDX-License-Identifier: MIT */
/*
 * scratch: a private scratch folder for one unit test, made with mkdtemp
 * under $BLAZEBOT_TEST_TMP (or /tmp), and removed with everything in it at
 * the end. The "XXXXXX" in the name is mkdtemp's template, filled in by it.
 */
#ifndef BLAZEBOT_TEST_SCRATCH_H
#define BLAZEBOT_TEST_SCRATCH_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static int scratch_rm_(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(p);
}

/* Creates BASE/NAME.<random> into out (cap bytes). Returns 0 or -1. */
static inline int scratch_make(const char *name, char *out, size_t cap) {
  const char *base = getenv("BLAZEBOT_TEST_TMP");
  if (!base || !*base)
    base = "/tmp";
  mkdir(base, 0755); /* one level is enough: the build tree makes the parent */
  snprintf(out, cap, "%s/%s.XXXXXX", base, name);
  return mkdtemp(out) ? 0 : -1;
}

/* Removes dir and everything below it (not following symlinks). */
static inline void scratch_remove(const char *dir) {
  nftw(dir, scratch_rm_, 8, FTW_DEPTH | FTW_PHYS);
}

#endif
