/* SPDX-License-Identifier: MIT */
/*
 * check: the tiny assertion kit of the tests. A failed CHECK prints
 * file:line and the expression and counts a failure; the test goes on so one
 * run shows every broken expectation. check_done() prints a summary and
 * returns the exit status for main. The counters are per file: a helper
 * compiled on its own (the integration harness) reports through inline
 * functions and macros of its header, which count in the test's file.
 */
#ifndef BLAZEBOT_TEST_CHECK_H
#define BLAZEBOT_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures_ = 0;
static int check_passes_ = 0;

#define CHECK(cond)                                                                      \
  do {                                                                                   \
    if (cond) {                                                                          \
      check_passes_++;                                                                   \
    } else {                                                                             \
      check_failures_++;                                                                 \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);           \
    }                                                                                    \
  } while (0)

#define CHECK_INT(a, b)                                                                  \
  do {                                                                                   \
    long long va_ = (long long)(a), vb_ = (long long)(b);                                \
    if (va_ == vb_) {                                                                    \
      check_passes_++;                                                                   \
    } else {                                                                             \
      check_failures_++;                                                                 \
      fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n", __FILE__,        \
              __LINE__, #a, #b, va_, vb_);                                               \
    }                                                                                    \
  } while (0)

#define CHECK_STR(a, b)                                                                  \
  do {                                                                                   \
    const char *sa_ = (a), *sb_ = (b);                                                   \
    if (sa_ && sb_ && strcmp(sa_, sb_) == 0) {                                           \
      check_passes_++;                                                                   \
    } else {                                                                             \
      check_failures_++;                                                                 \
      fprintf(stderr, "%s:%d: CHECK failed: %s == %s (\"%s\" != \"%s\")\n", __FILE__,    \
              __LINE__, #a, #b, sa_ ? sa_ : "(null)", sb_ ? sb_ : "(null)");             \
    }                                                                                    \
  } while (0)

/* Counts one failed check at file:line, described by what: for set-up steps
 * (a helper process that did not start) whose failure must fail the test
 * even when the test then stops early. */
static inline void check_fail_at(const char *file, int line, const char *what) {
  check_failures_++;
  fprintf(stderr, "%s:%d: CHECK failed: %s\n", file, line, what);
}

/* The exit status for main: 1 when any check failed, and 1 when no check ran
 * at all (a test that checked nothing cannot pass). */
static inline int check_done(const char *name) {
  printf("%s: %d checks passed, %d failed\n", name, check_passes_, check_failures_);
  if (!check_failures_ && !check_passes_)
    fprintf(stderr, "%s: no check ran\n", name);
  return check_failures_ || !check_passes_ ? 1 : 0;
}

#endif
