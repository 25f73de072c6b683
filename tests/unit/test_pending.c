/* SPDX-License-Identifier: MIT */
/*
 * test_pending: the session's table of requests awaiting answers. An answer
 * reaches its owner once and only by its id; deadlines expire exactly the
 * due entries (owned ones counted and reported); a disowned entry still
 * swallows its late answer; refresh only moves deadlines forward; fail_all
 * ends everything there was (entries owners add meanwhile stay); and 20,000
 * random operations agree with a brute-force model (entries are pooled, so
 * ASan sees no leak and no use after release).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "pending.h"

struct owner {
  int calls;
  int last_err;
  const struct envelope *last_env;
};

static void owner_cb(void *ud, const struct envelope *env, int err) {
  struct owner *o = ud;
  o->calls++;
  o->last_err = err;
  o->last_env = env;
}

static void other_cb(void *ud, const struct envelope *env, int err) {
  owner_cb(ud, env, err);
}

static void add(struct pending_table *t, const char *id, int64_t deadline, pending_fn cb,
                void *ud) {
  struct pending *p = pending_new(t, id);
  CHECK(p != NULL);
  if (p)
    pending_add(t, p, deadline, cb, ud);
}

static int expired_seen;
static void note(void *ctx, const char *id) {
  (void)ctx;
  (void)id;
  expired_seen++;
}

static void test_basic(void) {
  struct pending_table t;
  memset(&t, 0, sizeof t);
  struct owner a = {0}, b = {0};
  struct envelope env;
  memset(&env, 0, sizeof env);
  add(&t, "a", 100, owner_cb, &a);
  add(&t, "b", 200, owner_cb, &b);
  CHECK_INT(t.n, 2);
  CHECK_INT(pending_answer(&t, "c", &env), 0);
  CHECK_INT(pending_answer(&t, "a", &env), 1);
  CHECK_INT(a.calls, 1);
  CHECK(a.last_env == &env && a.last_err == 0);
  CHECK_INT(pending_answer(&t, "a", &env), 0); /* once */
  CHECK_INT(a.calls, 1);
  /* expiry: only due entries */
  expired_seen = 0;
  CHECK_INT(pending_expire(&t, 199, -2, note, NULL), 0);
  CHECK_INT(b.calls, 0);
  pending_refresh(&t, 150); /* never moves a deadline back */
  CHECK_INT(pending_expire(&t, 199, -2, note, NULL), 0);
  pending_refresh(&t, 500);
  CHECK_INT(pending_expire(&t, 499, -2, note, NULL), 0);
  CHECK_INT(pending_expire(&t, 500, -2, note, NULL), 1);
  CHECK_INT(expired_seen, 1);
  CHECK_INT(b.calls, 1);
  CHECK_INT(b.last_err, -2);
  CHECK(b.last_env == NULL);
  CHECK_INT(t.n, 0);
  /* too long an id */
  char longid[PENDING_ID_MAX + 1];
  memset(longid, 'x', sizeof longid - 1);
  longid[sizeof longid - 1] = 0;
  CHECK(pending_new(&t, longid) == NULL);
  pending_fini(&t);
}

static void test_disown(void) {
  struct pending_table t;
  memset(&t, 0, sizeof t);
  struct owner a = {0}, b = {0};
  struct envelope env;
  memset(&env, 0, sizeof env);
  add(&t, "a", 100, owner_cb, &a);
  add(&t, "b", 100, other_cb, &b);
  pending_disown(&t, owner_cb, -5);
  CHECK_INT(a.calls, 1);
  CHECK_INT(a.last_err, -5);
  CHECK_INT(b.calls, 0);
  CHECK_INT(t.n, 2);                           /* a stays, without an owner */
  CHECK_INT(pending_answer(&t, "a", &env), 1); /* its late answer is still one */
  CHECK_INT(a.calls, 1);
  expired_seen = 0;
  add(&t, "c", 50, owner_cb, &a);
  pending_disown(&t, owner_cb, -5);
  CHECK_INT(a.calls, 2);
  CHECK_INT(pending_expire(&t, 1000, -2, note, NULL), 1); /* b only is owned */
  CHECK_INT(expired_seen, 1);
  CHECK_INT(a.calls, 2);
  CHECK_INT(b.calls, 1);
  CHECK_INT(t.n, 0);
  pending_fini(&t);
}

/* An owner that adds a new entry from its callback (a retry). */
struct readder {
  struct pending_table *t;
  int calls;
};

static void readd_cb(void *ud, const struct envelope *env, int err) {
  struct readder *r = ud;
  (void)env;
  r->calls++;
  if (err < 0 && r->calls < 3) {
    char id[16];
    snprintf(id, sizeof id, "retry%d", r->calls);
    struct pending *p = pending_new(r->t, id);
    if (p)
      pending_add(r->t, p, 10, readd_cb, r);
  }
}

static void test_reentrant(void) {
  struct pending_table t;
  memset(&t, 0, sizeof t);
  struct readder r = {&t, 0};
  struct pending *p = pending_new(&t, "first");
  CHECK(p != NULL);
  pending_add(&t, p, 10, readd_cb, &r);
  pending_fail_all(&t, -1); /* ends first; the retry it adds stays */
  CHECK_INT(r.calls, 1);
  CHECK_INT(t.n, 1);
  pending_fail_all(&t, -1);
  CHECK_INT(r.calls, 2);
  CHECK_INT(t.n, 1);
  pending_fail_all(&t, -1);
  CHECK_INT(r.calls, 3);
  CHECK_INT(t.n, 0);
  pending_fini(&t);
}

static void count_cb(void *ud, const struct envelope *env, int err) {
  (void)env;
  (void)err;
  (*(int *)ud)++;
}

/* Random operations against a model: an array of live ids with deadlines. */
#define MODEL_MAX 512
static void test_model(void) {
  struct pending_table t;
  memset(&t, 0, sizeof t);
  struct model {
    char id[24];
    int64_t deadline;
    int live;
    int calls;
  } m[MODEL_MAX];
  memset(m, 0, sizeof m);
  unsigned seed = 12345;
  int64_t now = 0;
  long mismatches = 0;
  struct envelope env;
  memset(&env, 0, sizeof env);
  for (int step = 0; step < 20000; step++) {
    seed = seed * 1103515245u + 12345u;
    int k = (int)((seed >> 8) % MODEL_MAX);
    int op = (int)((seed >> 20) % 4);
    if (op == 0 && !m[k].live) {
      snprintf(m[k].id, sizeof m[k].id, "id-%d-%d", k, step);
      m[k].deadline = now + (int64_t)((seed >> 4) % 100);
      m[k].live = 1;
      struct pending *p = pending_new(&t, m[k].id);
      if (p)
        pending_add(&t, p, m[k].deadline, count_cb, &m[k].calls);
    } else if (op == 1) {
      int before = m[k].calls;
      int r = m[k].id[0] ? pending_answer(&t, m[k].id, &env) : 0;
      if (r != m[k].live || m[k].calls != before + m[k].live)
        mismatches++;
      m[k].live = 0;
    } else if (op == 2) {
      now += 5;
      size_t due = 0;
      for (int i = 0; i < MODEL_MAX; i++)
        due += m[i].live && m[i].deadline <= now;
      if (pending_expire(&t, now, -2, NULL, NULL) != due)
        mismatches++;
      for (int i = 0; i < MODEL_MAX; i++)
        if (m[i].live && m[i].deadline <= now)
          m[i].live = 0;
    }
    size_t live = 0;
    for (int i = 0; i < MODEL_MAX; i++)
      live += m[i].live;
    if (live != t.n)
      mismatches++;
  }
  CHECK_INT(mismatches, 0);
  pending_fail_all(&t, -1);
  CHECK_INT(t.n, 0);
  pending_fini(&t);
}

int main(void) {
  test_basic();
  test_disown();
  test_reentrant();
  test_model();
  return check_done("unit.pending");
}
