/* SPDX-License-Identifier: MIT */
/*
 * How the daemon routes messages through plugins, seen from outside: the
 * real daemon against the real simulator, with copies of the probe plugin
 * (tests/abi/probe.c) that log every call with a CLOCK_MONOTONIC stamp.
 * Because a message visits its subscribers strictly one after another, the
 * stamps give the exact order of calls per message. Three runs check exact,
 * PLAIN_* and * matching with priorities, ties in ini order and the
 * `categories`/`priority` overrides; HANDLED stopping lower priorities (with
 * replies in the sender's conversation); and RETRY with backoff, giving up
 * after max_attempts, errors not stopping the others, and acknowledgement
 * only after the whole route is done - every message acked exactly once.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "harness.h"
#include "keystore.h"
#include "util.h"

#ifndef PROBE_DIR
#error "PROBE_DIR must name the folder of the probe plugins"
#endif

#define NPROBES 7
static const char *const probe_names[NPROBES] = {
    "probe_a", "probe_b", "probe_c", "probe_d", "probe_e", "probe_f", "probe_g"};

/* One probe's [plugin.NAME] keys (each line ending in \n); log is added. */
struct spec {
  const char *name;
  const char *keys;
};

struct world {
  char dir[512], ks[600], ini[700], plugins[600];
  char bot[UUID_STR_LEN]; /* the bot's user id, from the keystore */
  struct sim sim;
  struct proc d;
};

struct msgref {
  char id[UUID_STR_LEN];
  char category[48];
};

struct msgs {
  struct msgref v[256];
  int n;
};

struct call {
  char name[32];
  char mid[64];
  unsigned attempt;
  char category[64];
  long long t;
  char conv[64], user[64], reply[64];
};

struct calls {
  struct call *v;
  size_t n, cap;
};

static int world_setup(struct world *w, const char *tag, const struct spec *specs,
                       size_t n) {
  memset(w, 0, sizeof *w);
  const char *d = h_dir(tag);
  if (!d)
    return -1;
  snprintf(w->dir, sizeof w->dir, "%s", d);
  snprintf(w->plugins, sizeof w->plugins, "%s/plugins", w->dir);
  if (mkdir(w->plugins, 0755) < 0 || chmod(w->plugins, 0755) < 0)
    return -1;
  for (int i = 0; i < NPROBES; i++) {
    char src[1024], dst[1024];
    snprintf(src, sizeof src, "%s/%s.so", PROBE_DIR, probe_names[i]);
    snprintf(dst, sizeof dst, "%s/%s.so", w->plugins, probe_names[i]);
    if (h_copy_file(src, dst, 0644) < 0) {
      fprintf(stderr, "cannot install %s\n", src);
      return -1;
    }
  }
  if (h_keygen(w->dir, "ed25519", w->ks, sizeof w->ks) < 0)
    return -1;
  struct keystore *ks = NULL;
  char err[512];
  if (keystore_load(w->ks, 1, &ks, err, sizeof err) < 0) {
    fprintf(stderr, "%s\n", err);
    return -1;
  }
  memcpy(w->bot, ks->user_id, sizeof w->bot);
  keystore_free(ks);
  if (h_sim_start(&w->sim, w->dir, w->ks, NULL) < 0)
    return -1;
  char extra[3000];
  size_t len = (size_t)snprintf(extra, sizeof extra, "plugin_dir = plugins\n");
  for (size_t i = 0; i < n && len < sizeof extra; i++)
    len += (size_t)snprintf(extra + len, sizeof extra - len,
                            "[plugin.%s]\nlog = %s/%s.log\n%s", specs[i].name, w->dir,
                            specs[i].name, specs[i].keys);
  if (h_config(w->dir, &w->sim, w->ks, extra, w->ini, sizeof w->ini) < 0)
    return -1;
  if (h_daemon_start(&w->d, w->dir, "daemon", w->ini) < 0)
    return -1;
  return h_sim_wait(&w->sim, "connections", 1, 30000);
}

/* A scratch folder with every probe installed, a simulator, and the daemon
 * running with the given [plugin.*] sections. On failure whatever started
 * is killed and -1 returned. */
static int world_start(struct world *w, const char *tag, const struct spec *specs,
                       size_t n) {
  if (world_setup(w, tag, specs, n) == 0)
    return 0;
  fprintf(stderr, "%s: could not start the daemon and simulator\n", tag);
  if (w->d.pid > 0)
    h_reap(&w->d);
  if (w->sim.p.pid > 0)
    h_reap(&w->sim.p);
  return -1;
}

/* Stops the daemon (SIGTERM, must exit 0) and the simulator; returns the
 * daemon's stats. */
static json_t *world_stop(struct world *w) {
  h_kill(&w->d, SIGTERM);
  CHECK(h_wait(&w->d, 30000) == 0);
  CHECK_INT(w->d.status, 0);
  h_reap(&w->d);
  h_sim_stop(&w->sim);
  CHECK(h_no_sanitizer_report(w->dir, "daemon.err"));
  return h_daemon_stats(w->dir, "daemon");
}

/* POST /_sim/push of count messages of category; records their ids. */
static int push(struct world *w, const char *category, int count, struct msgs *m) {
  char body[256];
  snprintf(body, sizeof body, "{\"count\":%d,\"category\":\"%s\",\"text\":\"%s %%d\"}",
           count, category, category);
  json_t *r = h_sim_post(&w->sim, "/_sim/push", body);
  json_t *ids = json_object_get(r, "message_ids");
  int got = (int)json_array_size(ids);
  for (int i = 0; i < got && m->n < (int)(sizeof m->v / sizeof m->v[0]); i++) {
    snprintf(m->v[m->n].id, sizeof m->v[m->n].id, "%s",
             json_string_value(json_array_get(ids, (size_t)i)));
    snprintf(m->v[m->n].category, sizeof m->v[m->n].category, "%s", category);
    m->n++;
  }
  json_decref(r);
  return got == count ? 0 : -1;
}

/* Appends the complete lines of one probe log; returns 1 if the probe ever
 * saw two of its own calls overlap. */
static int load_log(const char *path, struct calls *c) {
  char *s = h_read(path);
  int overlap = 0;
  for (char *line = s; line && *line;) {
    char *nl = strchr(line, '\n');
    if (!nl)
      break; /* a line still being written */
    *nl = 0;
    if (strcmp(line, "OVERLAP") == 0) {
      overlap = 1;
    } else {
      if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 256;
        c->v = realloc(c->v, c->cap * sizeof *c->v);
      }
      struct call *k = &c->v[c->n];
      if (sscanf(line, "%31s %63s %u %63s %lld %63s %63s %63s", k->name, k->mid,
                 &k->attempt, k->category, &k->t, k->conv, k->user, k->reply) == 8)
        c->n++;
      else
        fprintf(stderr, "bad probe line: %s\n", line);
    }
    line = nl + 1;
  }
  free(s);
  return overlap;
}

static int load_calls(struct world *w, struct calls *c) {
  int overlap = 0;
  c->n = 0;
  for (int i = 0; i < NPROBES; i++) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s.log", w->dir, probe_names[i]);
    overlap |= load_log(path, c);
  }
  return overlap;
}

/* The calls for message mid in time order, as "name@attempt name@attempt". */
static void route_of(const struct calls *c, const char *mid, char *out, size_t cap) {
  const struct call *sel[64];
  int n = 0;
  for (size_t i = 0; i < c->n && n < 64; i++) {
    if (strcmp(c->v[i].mid, mid) != 0)
      continue;
    int j = n++;
    while (j > 0 && sel[j - 1]->t > c->v[i].t) {
      sel[j] = sel[j - 1];
      j--;
    }
    sel[j] = &c->v[i];
  }
  size_t len = 0;
  out[0] = 0;
  for (int i = 0; i < n && len < cap; i++)
    len += (size_t)snprintf(out + len, cap - len, "%s%s@%u", i ? " " : "", sel[i]->name,
                            sel[i]->attempt);
}

static const struct call *find_call(const struct calls *c, const char *name,
                                    const char *mid, unsigned attempt) {
  for (size_t i = 0; i < c->n; i++)
    if (!strcmp(c->v[i].name, name) && !strcmp(c->v[i].mid, mid) &&
        c->v[i].attempt == attempt)
      return &c->v[i];
  return NULL;
}

typedef const char *(*expect_fn)(const char *category);

/* Every message's route must be exactly the expected one; returns the
 * number of calls those routes account for. */
static size_t check_routes(const struct calls *c, const struct msgs *m,
                           expect_fn expect) {
  size_t calls = 0;
  for (int i = 0; i < m->n; i++) {
    char got[1024];
    const char *want = expect(m->v[i].category);
    route_of(c, m->v[i].id, got, sizeof got);
    if (strcmp(got, want) != 0)
      fprintf(stderr, "message %s (%s): route \"%s\", want \"%s\"\n", m->v[i].id,
              m->v[i].category, got, want);
    CHECK_STR(got, want);
    for (const char *p = want; *p; p++)
      calls += *p == '@';
  }
  return calls;
}

/* Every pushed message acknowledged exactly once, none delivered twice. */
static void check_acked_once(struct world *w, int total) {
  json_t *st = h_sim_stats(&w->sim);
  CHECK_INT(h_stat(st, "messages"), total);
  CHECK_INT(h_stat(st, "acked"), total);
  CHECK_INT(h_stat(st, "unacked"), 0);
  CHECK_INT(h_stat(st, "acked_twice"), 0);
  CHECK_INT(h_stat(st, "acks_unknown"), 0);
  json_decref(st);
  json_t *ms = h_sim_get(&w->sim, "/_sim/messages");
  CHECK_INT(json_array_size(ms), total);
  size_t i;
  json_t *e;
  json_array_foreach(ms, i, e) {
    CHECK_INT(json_integer_value(json_object_get(e, "ack_count")), 1);
    CHECK_INT(json_integer_value(json_object_get(e, "push_count")), 1);
  }
  json_decref(ms);
}

/* The replies the simulator accepted: exactly n. */
static void check_created(struct world *w, long n) {
  json_t *st = h_sim_stats(&w->sim);
  CHECK_INT(h_stat(st, "created"), n);
  CHECK_INT(h_stat(st, "created_duplicates"), 0);
  json_decref(st);
}

/* ---- 1: matching, priorities, ties, overrides ------------------------------- */

static const char *expect_match(const char *category) {
  if (!strcmp(category, "PLAIN_TEXT"))
    return "probe_f@1 probe_b@1 probe_c@1 probe_d@1 probe_e@1 probe_g@1";
  if (!strcmp(category, "PLAIN_IMAGE"))
    return "probe_a@1 probe_b@1 probe_c@1 probe_d@1";
  if (!strcmp(category, "SYSTEM_CONVERSATION"))
    return "probe_c@1 probe_d@1 probe_g@1";
  if (!strcmp(category, "PLAIN_TEXTUAL"))
    return "probe_b@1 probe_c@1 probe_d@1";
  return "?";
}

static void scenario_match(void) {
  /* a: exact PLAIN_IMAGE (50); b: PLAIN_* (40); c and d: * at the same
   * priority (30), c first in the ini; e: no overrides (its own table:
   * PLAIN_TEXT at 0); f: its own table with priority 45; g: a list of two
   * patterns at -5. */
  static const struct spec specs[] = {
      {"probe_a", "categories = PLAIN_IMAGE\npriority = 50\n"},
      {"probe_b", "categories = PLAIN_*\npriority = 40\n"},
      {"probe_c", "categories = *\npriority = 30\n"},
      {"probe_d", "categories = *\npriority = 30\n"},
      {"probe_e", ""},
      {"probe_f", "priority = 45\n"},
      {"probe_g", "categories = SYSTEM_*, PLAIN_TEXT\npriority = -5\nresult = pass\n"},
  };
  struct world w;
  struct msgs m = {.n = 0};
  if (world_start(&w, "plugins-routing-match", specs, 7) < 0) {
    CHECK(0);
    return;
  }
  CHECK(push(&w, "PLAIN_TEXT", 12, &m) == 0);
  CHECK(push(&w, "PLAIN_IMAGE", 8, &m) == 0);
  CHECK(push(&w, "SYSTEM_CONVERSATION", 6, &m) == 0);
  /* Exact patterns are not prefixes: PLAIN_TEXT must not catch this one. */
  CHECK(push(&w, "PLAIN_TEXTUAL", 4, &m) == 0);
  CHECK(h_sim_wait(&w.sim, "acked", m.n, 60000) == 0);
  json_t *ds = world_stop(&w);

  struct calls c = {0};
  CHECK(!load_calls(&w, &c));
  size_t want = check_routes(&c, &m, expect_match);
  CHECK_INT(c.n, want); /* no call for anything else, nothing twice */
  CHECK(h_plugin_stopped(w.dir, "probe_a", 8, 0));
  CHECK(h_plugin_stopped(w.dir, "probe_b", 24, 0));
  CHECK(h_plugin_stopped(w.dir, "probe_c", 30, 0));
  CHECK(h_plugin_stopped(w.dir, "probe_d", 30, 0));
  CHECK(h_plugin_stopped(w.dir, "probe_e", 12, 0));
  CHECK(h_plugin_stopped(w.dir, "probe_f", 12, 0));
  CHECK(h_plugin_stopped(w.dir, "probe_g", 18, 0));
  CHECK(h_plugins_reported(ds, 7));
  CHECK_INT(h_plugin_stat(ds, "probe_a", "delivered"), 8);
  CHECK_INT(h_plugin_stat(ds, "probe_b", "delivered"), 24);
  CHECK_INT(h_plugin_stat(ds, "probe_c", "delivered"), 30);
  CHECK_INT(h_plugin_stat(ds, "probe_e", "delivered"), 12);
  CHECK_INT(h_plugin_stat(ds, "probe_g", "passed"), 18);
  CHECK_INT(h_stat(ds, "processed"), 30);
  json_decref(ds);
  free(c.v);
  /* The simulator is stopped; its stats file holds the final counters. */
  char path[700];
  snprintf(path, sizeof path, "%s/sim-stats.json", w.dir);
  json_t *st = json_load_file(path, 0, NULL);
  CHECK_INT(h_stat(st, "acked"), 30);
  CHECK_INT(h_stat(st, "acked_twice"), 0);
  CHECK_INT(h_stat(st, "unacked"), 0);
  CHECK_INT(h_stat(st, "created"), 0); /* no probe here replies */
  json_decref(st);
}

/* ---- 2: HANDLED stops lower priorities ---------------------------------------- */

static const char *expect_handled(const char *category) {
  if (!strcmp(category, "PLAIN_TEXT"))
    return "probe_a@1 probe_b@1";
  return "probe_a@1 probe_c@1";
}

static void scenario_handled(void) {
  static const struct spec specs[] = {
      {"probe_a", "categories = *\npriority = 20\n"},
      {"probe_b", "categories = PLAIN_TEXT\npriority = 10\nresult = handled\n"
                  "reply = handled by b\n"},
      {"probe_c", "categories = *\npriority = 0\n"},
  };
  struct world w;
  struct msgs m = {.n = 0};
  if (world_start(&w, "plugins-routing-handled", specs, 3) < 0) {
    CHECK(0);
    return;
  }
  CHECK(push(&w, "PLAIN_TEXT", 10, &m) == 0);
  CHECK(push(&w, "PLAIN_IMAGE", 5, &m) == 0);
  CHECK(h_sim_wait(&w.sim, "acked", m.n, 60000) == 0);
  check_acked_once(&w, m.n);
  check_created(&w, 10); /* acked only after the replies: all are in */

  /* Each reply went to the sender, in the conversation of the message it
   * answers, and is the one probe_b was told it sent. */
  struct calls c = {0};
  CHECK(!load_calls(&w, &c));
  json_t *sent = h_sim_get(&w.sim, "/_sim/sent");
  CHECK_INT(json_array_size(sent), 10);
  size_t i;
  json_t *e;
  json_array_foreach(sent, i, e) {
    const char *id = json_string_value(json_object_get(e, "message_id"));
    const struct call *k = NULL;
    for (size_t j = 0; j < c.n && id; j++)
      if (!strcmp(c.v[j].reply, id))
        k = &c.v[j];
    CHECK(k != NULL);
    if (!k)
      continue;
    CHECK_STR(k->name, "probe_b");
    CHECK_STR(json_string_value(json_object_get(e, "text")), "handled by b");
    CHECK_STR(json_string_value(json_object_get(e, "category")), "PLAIN_TEXT");
    CHECK_STR(json_string_value(json_object_get(e, "conversation_id")), k->conv);
    CHECK_STR(json_string_value(json_object_get(e, "recipient_id")), k->user);
    /* A 1:1 conversation between the bot and the sender. */
    char want[UUID_STR_LEN];
    CHECK(uuid_unique_conversation(w.bot, k->user, want) == 0);
    CHECK_STR(k->conv, want);
  }
  json_decref(sent);

  json_t *ds = world_stop(&w);
  size_t want_calls = check_routes(&c, &m, expect_handled);
  CHECK_INT(c.n, want_calls);
  CHECK(h_plugin_stopped(w.dir, "probe_a", 15, 0));
  CHECK(h_plugin_stopped(w.dir, "probe_b", 10, 0));
  CHECK(h_plugin_stopped(w.dir, "probe_c", 5, 0)); /* never a handled text */
  CHECK(h_plugins_reported(ds, 3));
  CHECK_INT(h_plugin_stat(ds, "probe_b", "handled"), 10);
  CHECK_INT(h_plugin_stat(ds, "probe_c", "delivered"), 5);
  CHECK_INT(h_stat(ds, "replies_accepted"), 10);
  json_decref(ds);
  free(c.v);
}

/* ---- 3: RETRY, giving up, errors, ack after the whole route ------------------------ */

static const char *expect_retry(const char *category) {
  if (!strcmp(category, "PLAIN_TEXT"))
    return "probe_a@1 probe_a@2 probe_b@1 probe_b@2 probe_c@1 probe_d@1";
  return "probe_c@1";
}

/* Reads the simulator's acks first, then the logs: a message acked before
 * the snapshot must show its complete route. Returns the violations;
 * *partial counts messages caught mid-route and (rightly) not yet acked. */
static int ack_invariant(struct world *w, const struct msgs *m, int *partial) {
  json_t *ms = h_sim_get(&w->sim, "/_sim/messages");
  struct calls c = {0};
  int overlap = load_calls(w, &c);
  int bad = overlap;
  size_t i;
  json_t *e;
  json_array_foreach(ms, i, e) {
    const char *id = json_string_value(json_object_get(e, "message_id"));
    int acked = json_is_true(json_object_get(e, "acked"));
    const char *cat = NULL;
    for (int k = 0; k < m->n && id; k++)
      if (!strcmp(m->v[k].id, id))
        cat = m->v[k].category;
    if (!cat)
      continue;
    char got[1024];
    route_of(&c, id, got, sizeof got);
    int done = strcmp(got, expect_retry(cat)) == 0;
    if (acked && !done) {
      fprintf(stderr, "message %s acked with its route at \"%s\"\n", id, got);
      bad++;
    }
    if (!acked && !done && got[0])
      (*partial)++;
  }
  json_decref(ms);
  free(c.v);
  return bad;
}

static void scenario_retry(void) {
  /* a: RETRY once (default max_attempts); b: RETRY always, max 2 attempts;
   * c: always an error; d: passes and replies (plain texts only), so images
   * end their route with c's error. */
  static const struct spec specs[] = {
      {"probe_a", "categories = PLAIN_TEXT\npriority = 30\nresult = retry_then_pass\n"},
      {"probe_b", "categories = PLAIN_TEXT\npriority = 20\nresult = retry\n"
                  "max_attempts = 2\n"},
      {"probe_c", "categories = *\npriority = 10\nresult = error\n"},
      {"probe_d", "categories = PLAIN_TEXT\nresult = pass\nreply = done\n"},
  };
  struct world w;
  struct msgs m = {.n = 0};
  if (world_start(&w, "plugins-routing-retry", specs, 4) < 0) {
    CHECK(0);
    return;
  }
  CHECK(push(&w, "PLAIN_TEXT", 8, &m) == 0);
  CHECK(push(&w, "PLAIN_IMAGE", 4, &m) == 0);

  /* While the retries run (each text takes two 500 ms backoffs), nothing is
   * acknowledged before its route is complete. */
  int partial = 0, violations = 0, polls = 0;
  for (; polls < 300; polls++) {
    violations += ack_invariant(&w, &m, &partial);
    json_t *st = h_sim_stats(&w.sim);
    long acked = h_stat(st, "acked");
    json_decref(st);
    if (acked >= m.n)
      break;
    h_sleep_ms(50);
  }
  CHECK_INT(violations, 0);
  CHECK(partial > 0); /* the check did see messages mid-route */
  CHECK(h_sim_wait(&w.sim, "acked", m.n, 30000) == 0);
  check_acked_once(&w, m.n);
  check_created(&w, 8); /* acked only after the whole route: all replies are in */
  json_t *ds = world_stop(&w);

  struct calls c = {0};
  CHECK(!load_calls(&w, &c));
  size_t want = check_routes(&c, &m, expect_retry);
  CHECK_INT(c.n, want);
  /* The second attempt waits out the host's first backoff step (500 ms). */
  for (int i = 0; i < m.n; i++) {
    if (strcmp(m.v[i].category, "PLAIN_TEXT"))
      continue;
    for (int p = 0; p < 2; p++) {
      const struct call *a1 = find_call(&c, probe_names[p], m.v[i].id, 1);
      const struct call *a2 = find_call(&c, probe_names[p], m.v[i].id, 2);
      CHECK(a1 && a2);
      if (a1 && a2) {
        long long gap_ms = (a2->t - a1->t) / 1000000;
        if (gap_ms < 490 || gap_ms > 10000)
          fprintf(stderr, "%s %s: attempt 2 came %lld ms after attempt 1\n",
                  probe_names[p], m.v[i].id, gap_ms);
        CHECK(gap_ms >= 490 && gap_ms <= 10000);
      }
    }
  }
  CHECK(h_plugin_stopped(w.dir, "probe_a", 16, 0));
  CHECK(h_plugin_stopped(w.dir, "probe_b", 16, 8)); /* gave up = an error */
  CHECK(h_plugin_stopped(w.dir, "probe_c", 12, 12));
  CHECK(h_plugin_stopped(w.dir, "probe_d", 8, 0));
  CHECK(h_plugins_reported(ds, 4));
  CHECK_INT(h_plugin_stat(ds, "probe_a", "retried"), 8);
  CHECK_INT(h_plugin_stat(ds, "probe_a", "passed"), 8);
  CHECK_INT(h_plugin_stat(ds, "probe_a", "gave_up"), 0);
  CHECK_INT(h_plugin_stat(ds, "probe_b", "delivered"), 16);
  CHECK_INT(h_plugin_stat(ds, "probe_b", "retried"), 8);
  CHECK_INT(h_plugin_stat(ds, "probe_b", "gave_up"), 8);
  CHECK_INT(h_plugin_stat(ds, "probe_b", "errors"), 8);
  CHECK_INT(h_plugin_stat(ds, "probe_c", "errors"), 12);
  CHECK_INT(h_plugin_stat(ds, "probe_d", "passed"), 8);
  CHECK_INT(h_stat(ds, "processed"), 12);
  CHECK_INT(h_stat(ds, "replies_accepted"), 8);
  json_decref(ds);
  char path[700];
  snprintf(path, sizeof path, "%s/daemon.err", w.dir);
  CHECK_INT(h_count(path, "plugin probe_b: gave up on message"), 8);
  free(c.v);
}

int main(void) {
  scenario_match();
  scenario_handled();
  scenario_retry();
  return check_done("integration.plugins_routing");
}
