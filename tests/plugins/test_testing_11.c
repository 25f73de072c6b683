/* SPDX-License-Identifier: MIT */
/*
 * test_testing_11: the services of ABI minor 1 in blazebot/testing.h's fake
 * host, driven through a small plugin ("whois") defined here. api_request
 * answered from scripts (per method and path, or in order; an unscripted
 * call, the default, the deadline) with every call recorded; send results
 * scripted per message id or in order, after a delay, to send_result's done
 * and to the sent records; holds and releases (the strongest result wins
 * when the last hold goes, the held view outlives the test's message,
 * replies and sends under a hold are tied to it, double and unknown
 * releases fail); the fake clocks (now_ms, timer_at, stepping through due
 * timers and results, never two callbacks at once); state_dir and
 * instance_name; the retirement of an instance at reload and at unload
 * (pending results handed over, holds released as RETRY, nothing after
 * shutdown); and a minor-0 host and a minor-0 plugin. And upload: every
 * call recorded with a copy of its bytes, results scripted (success with an
 * id, failure with status, code and text) or the default (a fresh id),
 * after a delay or at the deadline, the daemon's validation, and pending
 * uploads failing with "the daemon is stopping" at unload.
 */
#define _XOPEN_SOURCE 700

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <blazebot/testing.h>

#include "check.h"
#include "scratch.h"

/* ---- what the plugin saw, kept across its instances ------------------------------- */

static struct {
  int inits, shutdowns, down; /* down: no instance is running */
  int in_cb, nested, after_shutdown;
  char trace[256];            /* one letter per callback: I init, S shutdown, A api done,
                                 P send done, T release timer, R reminder, U upload done */
  int minor1;                 /* init saw the minor-1 services */
  int64_t now_mono, now_wall; /* now_ms in the last callback */
  int32_t http_status, error_code;
  uint32_t send_status;
  int32_t send_code;
  char send_id[BLAZEBOT_ID_LEN];
  int self_ok;
  int late_reply_rc, late_send_rc;
  int probe; /* whois_done on no answer tries api_request and timer_add: */
  int retired_api_rc, retired_timer_rc;
  const char *state_dir;
  char instance[128];
  int counter; /* read from state_dir at init */
  /* upload_done: the last result, and (probe) an upload tried from it */
  int up_ok;
  int32_t up_status, up_code;
  char up_id[64], up_error[128];
  uint32_t up_size;
  int retired_upload_rc;
} g;

static void trace(char c) {
  size_t n = strlen(g.trace);
  if (n + 1 < sizeof g.trace) {
    g.trace[n] = c;
    g.trace[n + 1] = '\0';
  }
}

/* Every callback brackets itself, so a nested or late one is counted. */
static void enter(char c) {
  if (g.in_cb)
    g.nested++;
  if (g.down)
    g.after_shutdown++;
  g.in_cb = 1;
  trace(c);
}

static void leave(void) {
  g.in_cb = 0;
}

/* ---- the plugin ------------------------------------------------------------------- */

#define WHOIS_JOBS 16

struct whois;

/* One pending piece of work: an API call or a timer releasing a hold. */
struct job {
  struct whois *w;
  int used, kind, result;
  blazebot_hold *hold;
  const struct blazebot_message *msg;
};

enum { JOB_WHOIS, JOB_RELEASE, JOB_TIED, JOB_LATE_RELEASE, JOB_LATE_REPLY, JOB_UPLOAD };

struct whois {
  blazebot_ctx *ctx;
  const struct blazebot_host *host;
  struct job jobs[WHOIS_JOBS];
};

static struct job *job_new(struct whois *w, int kind, blazebot_hold *h,
                           const struct blazebot_message *msg) {
  size_t i;
  for (i = 0; i < WHOIS_JOBS; i++) {
    struct job *j = &w->jobs[i];
    if (!j->used) {
      memset(j, 0, sizeof *j);
      j->used = 1;
      j->w = w;
      j->kind = kind;
      j->hold = h;
      j->msg = msg;
      return j;
    }
  }
  return NULL;
}

static void note_time(struct whois *w) {
  g.now_mono = w->host->now_ms(w->ctx, BLAZEBOT_CLOCK_MONOTONIC);
  g.now_wall = w->host->now_ms(w->ctx, BLAZEBOT_CLOCK_WALL);
}

static int say(struct whois *w, blazebot_hold *h, const char *conv, const char *text) {
  struct blazebot_outgoing o;
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  o.conversation_id = conv;
  o.category = "PLAIN_TEXT";
  o.data = text;
  o.data_len = strlen(text);
  o.hold = h;
  return w->host->send(w->ctx, &o, NULL);
}

static void probe_done(void *state, void *arg, const struct blazebot_api_response *r) {
  (void)state;
  (void)arg;
  (void)r;
  enter('p');
  leave();
}

static void nop_timer(void *state, void *arg) {
  (void)state;
  (void)arg;
  enter('n');
  leave();
}

/* GET /users/<id> answered: greet by full_name, or say why not. */
static void whois_done(void *state, void *arg, const struct blazebot_api_response *r) {
  struct job *j = (struct job *)arg;
  struct whois *w = (struct whois *)state;
  const char *p;
  enter('A');
  CHECK(j->w == w);
  note_time(w);
  g.http_status = r->http_status;
  g.error_code = r->error_code;
  CHECK_INT(r->size, sizeof *r);
  CHECK_INT(r->body[r->body_len], 0);
  if (r->http_status == 0) {
    if (g.probe) {
      /* The host is stopping: nothing new may start. */
      g.retired_api_rc =
          w->host->api_request(w->ctx, "GET", "/me", NULL, 0, 0, probe_done, NULL);
      g.retired_timer_rc = w->host->timer_add(w->ctx, 10, 0, nop_timer, NULL, NULL);
    }
    w->host->release(w->ctx, j->hold, BLAZEBOT_RETRY);
  } else if (r->http_status == 200 && (p = strstr(r->body, "\"full_name\":\"")) != NULL) {
    char text[128];
    const char *end;
    p += strlen("\"full_name\":\"");
    end = strchr(p, '"');
    snprintf(text, sizeof text, "hello %.*s", end ? (int)(end - p) : 0, p);
    CHECK_INT(w->host->reply(w->ctx, j->msg, "PLAIN_TEXT", text, strlen(text), NULL), 0);
    w->host->release(w->ctx, j->hold, BLAZEBOT_HANDLED);
  } else {
    char text[64];
    snprintf(text, sizeof text, "no such user (%d)", (int)r->error_code);
    CHECK_INT(say(w, j->hold, j->msg->conversation_id, text), 0);
    w->host->release(w->ctx, j->hold, -2);
  }
  j->used = 0;
  leave();
}

/* An upload finished: say what became of it, release HANDLED. */
static void upload_done(void *state, void *arg, const struct blazebot_upload_result *r) {
  struct job *j = (struct job *)arg;
  struct whois *w = (struct whois *)state;
  char text[256];
  enter('U');
  CHECK(j->w == w);
  note_time(w);
  g.up_size = r->size;
  g.up_ok = (int)r->ok;
  g.up_status = r->http_status;
  g.up_code = r->error_code;
  snprintf(g.up_id, sizeof g.up_id, "%s", r->attachment_id);
  snprintf(g.up_error, sizeof g.up_error, "%s", r->error);
  if (g.probe)
    g.retired_upload_rc =
        w->host->upload(w->ctx, "x", 1, "text/plain", 0, upload_done, (void *)&g);
  if (r->ok)
    snprintf(text, sizeof text, "uploaded %s", r->attachment_id);
  else
    snprintf(text, sizeof text, "upload failed: %d %d %s", (int)r->http_status,
             (int)r->error_code, r->error);
  CHECK_INT(w->host->reply(w->ctx, j->msg, "PLAIN_TEXT", text, strlen(text), NULL), 0);
  CHECK_INT(w->host->release(w->ctx, j->hold, BLAZEBOT_HANDLED), 0);
  j->used = 0;
  leave();
}

static void send_done(void *state, void *arg, const struct blazebot_send_result *r) {
  (void)state;
  enter('P');
  CHECK(arg == (void *)&g);
  CHECK_INT(r->size, sizeof *r);
  g.send_status = r->status;
  g.send_code = r->code;
  snprintf(g.send_id, sizeof g.send_id, "%s", r->message_id);
  leave();
}

static void remind(void *state, void *arg) {
  struct whois *w = (struct whois *)state;
  enter('R');
  note_time(w);
  CHECK_INT(say(w, NULL, BLAZEBOT_TEST_CONVERSATION_ID, (const char *)arg), 0);
  leave();
}

static void job_timer(void *state, void *arg) {
  struct job *j = (struct job *)arg;
  struct whois *w = (struct whois *)state;
  enter('T');
  note_time(w);
  switch (j->kind) {
  case JOB_RELEASE:
    CHECK_INT(w->host->release(w->ctx, j->hold, j->result), 0);
    break;
  case JOB_TIED:
    /* Under the hold: a send with m->hold and a reply, both tied to it. */
    CHECK_INT(say(w, j->hold, j->msg->conversation_id, "two"), 0);
    CHECK_INT(w->host->reply(w->ctx, j->msg, "PLAIN_TEXT", "three", 5, NULL), 0);
    CHECK_INT(w->host->release(w->ctx, j->hold, BLAZEBOT_HANDLED), 0);
    /* Released: the hold is gone. */
    g.late_send_rc = say(w, j->hold, BLAZEBOT_TEST_CONVERSATION_ID, "four");
    break;
  case JOB_LATE_RELEASE:
    CHECK_INT(w->host->release(w->ctx, j->hold, BLAZEBOT_PASS), 0);
    break;
  case JOB_LATE_REPLY:
    /* The view is gone: only its address is passed, never read. */
    g.late_reply_rc = w->host->reply(w->ctx, j->msg, "PLAIN_TEXT", "x", 1, NULL);
    break;
  }
  j->used = 0;
  leave();
}

static int whois_init(blazebot_ctx *ctx, const struct blazebot_host *host, void **state) {
  struct whois *w = (struct whois *)calloc(1, sizeof *w);
  enter('I');
  g.down = 0;
  g.inits++;
  if (!w) {
    leave();
    return -1;
  }
  w->ctx = ctx;
  w->host = host;
  g.minor1 = BLAZEBOT_HOST_HAS(host, api_request) &&
             BLAZEBOT_HOST_HAS(host, send_result) && BLAZEBOT_HOST_HAS(host, hold) &&
             BLAZEBOT_HOST_HAS(host, release) && BLAZEBOT_HOST_HAS(host, now_ms) &&
             BLAZEBOT_HOST_HAS(host, timer_at) && BLAZEBOT_HOST_HAS(host, state_dir) &&
             BLAZEBOT_HOST_HAS(host, instance_name) && BLAZEBOT_HOST_HAS(host, upload);
  g.state_dir = NULL;
  g.instance[0] = '\0';
  if (g.minor1) {
    const char *dir = host->state_dir(ctx);
    g.state_dir = dir;
    snprintf(g.instance, sizeof g.instance, "%s", host->instance_name(ctx));
    if (dir) {
      /* A counter that survives restarts: read, bump, write back. */
      char path[BLAZEBOT_TEST_PATH_LEN + 16];
      FILE *f;
      int n = 0;
      snprintf(path, sizeof path, "%s/counter", dir);
      if ((f = fopen(path, "r")) != NULL) {
        if (fscanf(f, "%d", &n) != 1)
          n = 0;
        fclose(f);
      }
      g.counter = ++n;
      if ((f = fopen(path, "w")) != NULL) {
        fprintf(f, "%d\n", n);
        fclose(f);
      }
    }
  }
  *state = w;
  leave();
  return 0;
}

/* Commands, one per message:
 *   whois          hold; GET /users/<sender>; the answer greets and releases
 *   ping           send_result "pong"; HANDLED
 *   remind <ms>    timer_at the wall clock + ms: sends "reminder"
 *   hold <rc> <r>… one hold per r, released with r by timers 100 ms apart;
 *                  on_message returns rc
 *   self           hold and release inside on_message, then read msg
 *   tied           reply "one", hold; at 100 ms send "two" with the hold,
 *                  reply "three", release HANDLED, try "four" (fails)
 *   late           hold; released at 100 ms; reply(msg) at 200 ms (fails)
 *   keep           hold, never released
 *   upload <text>  hold; upload <text> as text/plain; the result is
 *                  replied ("uploaded <id>" or "upload failed: ...") and
 *                  the hold released HANDLED
 */
static int whois_on_message(void *state, const struct blazebot_message *msg) {
  struct whois *w = (struct whois *)state;
  const char *text = (const char *)msg->data;
  int rc = BLAZEBOT_PASS;
  enter('M');
  if (!g.minor1) {
    /* A minor-0 host: plain replies only. */
    rc = w->host->reply(w->ctx, msg, "PLAIN_TEXT", "old host", 8, NULL) == 0
             ? BLAZEBOT_HANDLED
             : BLAZEBOT_RETRY;
  } else if (strcmp(text, "whois") == 0) {
    blazebot_hold *h = w->host->hold(w->ctx, msg);
    struct job *j = job_new(w, JOB_WHOIS, h, msg);
    char path[128];
    snprintf(path, sizeof path, "/users/%s", msg->user_id);
    CHECK(h != NULL);
    CHECK(j != NULL);
    if (!j || w->host->api_request(w->ctx, "GET", path, NULL, 0, 0, whois_done, j) != 0) {
      w->host->release(w->ctx, h, BLAZEBOT_RETRY);
      if (j)
        j->used = 0;
    }
  } else if (strcmp(text, "ping") == 0) {
    struct blazebot_outgoing o;
    memset(&o, 0, sizeof o);
    o.size = sizeof o;
    o.conversation_id = msg->conversation_id;
    o.category = "PLAIN_TEXT";
    o.data = "pong";
    o.data_len = 4;
    CHECK_INT(w->host->send_result(w->ctx, &o, send_done, &g, NULL), 0);
    rc = BLAZEBOT_HANDLED;
  } else if (strncmp(text, "remind ", 7) == 0) {
    int64_t at =
        w->host->now_ms(w->ctx, BLAZEBOT_CLOCK_WALL) + strtol(text + 7, NULL, 10);
    CHECK_INT(w->host->timer_at(w->ctx, at, remind, (void *)"reminder", NULL), 0);
    rc = BLAZEBOT_HANDLED;
  } else if (strncmp(text, "hold ", 5) == 0) {
    char *p;
    long r;
    int i = 0;
    rc = (int)strtol(text + 5, &p, 10);
    while (*p) {
      blazebot_hold *h;
      struct job *j;
      char *end;
      r = strtol(p, &end, 10);
      if (end == p)
        break;
      p = end;
      h = w->host->hold(w->ctx, msg);
      j = job_new(w, JOB_RELEASE, h, msg);
      CHECK(h != NULL && j != NULL);
      if (!j)
        break;
      j->result = (int)r;
      i++;
      CHECK_INT(w->host->timer_add(w->ctx, 100u * (unsigned)i, 0, job_timer, j, NULL), 0);
    }
  } else if (strcmp(text, "self") == 0) {
    blazebot_hold *h = w->host->hold(w->ctx, msg);
    CHECK_INT(w->host->release(w->ctx, h, BLAZEBOT_HANDLED), 0);
    /* Released, but on_message still runs: msg is still valid. */
    g.self_ok = strcmp((const char *)msg->data, "self") == 0 && msg->data_len == 4;
  } else if (strcmp(text, "tied") == 0) {
    blazebot_hold *h;
    CHECK_INT(w->host->reply(w->ctx, msg, "PLAIN_TEXT", "one", 3, NULL), 0);
    h = w->host->hold(w->ctx, msg);
    CHECK_INT(
        w->host->timer_add(w->ctx, 100, 0, job_timer, job_new(w, JOB_TIED, h, msg), NULL),
        0);
  } else if (strcmp(text, "late") == 0) {
    blazebot_hold *h = w->host->hold(w->ctx, msg);
    CHECK_INT(w->host->timer_add(w->ctx, 100, 0, job_timer,
                                 job_new(w, JOB_LATE_RELEASE, h, msg), NULL),
              0);
    CHECK_INT(w->host->timer_add(w->ctx, 200, 0, job_timer,
                                 job_new(w, JOB_LATE_REPLY, NULL, msg), NULL),
              0);
  } else if (strcmp(text, "keep") == 0) {
    CHECK(w->host->hold(w->ctx, msg) != NULL);
  } else if (strncmp(text, "upload ", 7) == 0) {
    blazebot_hold *h = w->host->hold(w->ctx, msg);
    struct job *j = job_new(w, JOB_UPLOAD, h, msg);
    CHECK(h != NULL && j != NULL);
    if (!j || w->host->upload(w->ctx, text + 7, strlen(text + 7), "text/plain", 0,
                              upload_done, j) != 0) {
      w->host->release(w->ctx, h, BLAZEBOT_RETRY);
      if (j)
        j->used = 0;
    }
    rc = BLAZEBOT_HANDLED;
  }
  leave();
  return rc;
}

static void whois_shutdown(void *state) {
  enter('S');
  g.shutdowns++;
  free(state);
  leave();
  g.down = g.shutdowns == g.inits; /* the last instance is gone */
}

static const struct blazebot_subscription whois_subs[] = {{"PLAIN_TEXT", 0, 0},
                                                          {NULL, 0, 0}};

static const struct blazebot_plugin whois_desc = {.size = sizeof(struct blazebot_plugin),
                                                  .abi_major = BLAZEBOT_ABI_MAJOR,
                                                  .abi_minor = BLAZEBOT_ABI_MINOR,
                                                  .name = "whois",
                                                  .version = "1",
                                                  .subscriptions = whois_subs,
                                                  .init = whois_init,
                                                  .on_message = whois_on_message,
                                                  .shutdown = whois_shutdown};

/* ---- helpers ---------------------------------------------------------------------- */

static const char *USER_PATH = "/users/" BLAZEBOT_TEST_USER_ID;

static void reset(void) {
  memset(&g, 0, sizeof g);
}

static int load(struct blazebot_test_host *th) {
  reset();
  blazebot_test_init(th);
  return blazebot_test_load(th, &whois_desc);
}

/* Delivers text; its message id goes to id (BLAZEBOT_ID_LEN bytes). */
static int deliver(struct blazebot_test_host *th, const char *text, char *id) {
  struct blazebot_message *m = blazebot_test_message(th, "PLAIN_TEXT", text);
  if (!m)
    return -100;
  if (id)
    snprintf(id, BLAZEBOT_ID_LEN, "%s", m->message_id);
  return blazebot_test_deliver(th, m);
}

/* A done for calls the test makes itself. */
static struct {
  int n;
  int32_t status[8], code[8];
  char body[8][64];
  uint64_t at[8];
} calls;
static struct blazebot_test_host *g_th;

static void test_done(void *state, void *arg, const struct blazebot_api_response *r) {
  (void)state;
  (void)arg;
  enter('a');
  if (calls.n < 8) {
    calls.status[calls.n] = r->http_status;
    calls.code[calls.n] = r->error_code;
    snprintf(calls.body[calls.n], sizeof calls.body[0], "%s", r->body);
    calls.at[calls.n] = g_th ? g_th->now_ms : 0;
  }
  calls.n++;
  leave();
}

/* GET /first's answer asks for /second, whose answer asks for /third. */
static void chain_done(void *state, void *arg, const struct blazebot_api_response *r) {
  blazebot_ctx *ctx = (blazebot_ctx *)(void *)g_th;
  test_done(state, arg, r);
  if (strcmp(r->body, "1") == 0)
    CHECK_INT(g_th->host.api_request(ctx, "GET", "/second", NULL, 0, 0, chain_done, NULL),
              0);
  else if (strcmp(r->body, "2") == 0)
    CHECK_INT(g_th->host.api_request(ctx, "GET", "/third", NULL, 0, 0, chain_done, NULL),
              0);
}

/* A done for uploads the test makes itself. */
static struct {
  int n;
  int ok[8];
  int32_t status[8], code[8];
  char id[8][64], error[8][128];
  uint64_t at[8];
  void *arg[8];
} ups;

static void test_upload_done(void *state, void *arg,
                             const struct blazebot_upload_result *r) {
  (void)state;
  enter('u');
  CHECK_INT(r->size, sizeof *r);
  if (ups.n < 8) {
    ups.ok[ups.n] = (int)r->ok;
    ups.status[ups.n] = r->http_status;
    ups.code[ups.n] = r->error_code;
    snprintf(ups.id[ups.n], sizeof ups.id[0], "%s", r->attachment_id);
    snprintf(ups.error[ups.n], sizeof ups.error[0], "%s", r->error);
    ups.at[ups.n] = g_th ? g_th->now_ms : 0;
    ups.arg[ups.n] = arg;
  }
  ups.n++;
  leave();
}

/* ---- the tests -------------------------------------------------------------------- */

/* The host table, a minor-0 host, and a minor-0 plugin. */
static void test_abi(void) {
  struct blazebot_test_host th;
  struct blazebot_plugin old = whois_desc;
  blazebot_ctx *ctx = (blazebot_ctx *)(void *)&th;
  char id[BLAZEBOT_ID_LEN];
  CHECK_INT(load(&th), 0);
  CHECK_INT(th.host.abi_minor, 1);
  CHECK_INT(th.host.size, sizeof th.host);
  CHECK(g.minor1);
  CHECK_INT(blazebot_test_set_abi_minor(&th, 0), -1); /* loaded */
  blazebot_test_unload(&th);

  /* A minor-0 host: the new members are absent and NULL. */
  reset();
  blazebot_test_init(&th);
  CHECK_INT(blazebot_test_set_abi_minor(&th, 7), -1);
  CHECK_INT(blazebot_test_set_abi_minor(&th, 0), 0);
  CHECK_INT(th.host.abi_minor, 0);
  CHECK_INT(th.host.size, offsetof(struct blazebot_host, api_request));
  CHECK(!BLAZEBOT_HOST_HAS(&th.host, api_request));
  CHECK(!BLAZEBOT_HOST_HAS(&th.host, instance_name));
  CHECK(!BLAZEBOT_HOST_HAS(&th.host, upload));
  CHECK(th.host.hold == NULL && th.host.now_ms == NULL && th.host.upload == NULL);
  /* ... refuses a plugin built for minor 1 ... */
  CHECK_INT(blazebot_test_load(&th, &whois_desc), -1);
  CHECK_INT(th.violations, 1);
  CHECK(blazebot_test_log_contains(&th, "descriptor ABI 1.1, host 1.0"));
  /* ... and runs one built for minor 0, which falls back. */
  old.abi_minor = 0;
  CHECK_INT(blazebot_test_load(&th, &old), 0);
  CHECK(!g.minor1);
  CHECK_INT(deliver(&th, "whois", id), BLAZEBOT_HANDLED);
  CHECK_STR(blazebot_test_reply_text(&th, 0), "old host");
  CHECK_INT(blazebot_test_outcome(&th, id, NULL), 1);
  /* A minor-0 host copies no hold: a stray pointer there is ignored. */
  {
    struct blazebot_outgoing o;
    memset(&o, 0, sizeof o);
    o.size = sizeof o;
    o.conversation_id = "c";
    o.category = "PLAIN_TEXT";
    o.hold = (blazebot_hold *)(void *)&o;
    CHECK_INT(th.host.send(ctx, &o, NULL), 0);
    CHECK_STR(blazebot_test_reply(&th, 1)->tied_to, "");
  }
  blazebot_test_unload(&th);
  CHECK_INT(th.violations, 1);

  /* A minor-0 plugin on a minor-1 host: its smaller blazebot_outgoing ends
   * before hold, so whatever follows it is not read. */
  reset();
  blazebot_test_init(&th);
  CHECK_INT(blazebot_test_load(&th, &old), 0);
  CHECK(g.minor1); /* the host has them; the plugin may ignore them */
  {
    struct blazebot_outgoing o;
    memset(&o, 0, sizeof o);
    o.size = (uint32_t)offsetof(struct blazebot_outgoing, hold);
    o.conversation_id = "c";
    o.category = "PLAIN_TEXT";
    o.hold = (blazebot_hold *)(void *)&o; /* beyond size: garbage to the host */
    CHECK_INT(th.host.send(ctx, &o, NULL), 0);
    CHECK_STR(blazebot_test_reply(&th, 0)->tied_to, "");
  }
  CHECK_INT(th.violations, 0);
  blazebot_test_unload(&th);
}

/* whois: hold, GET /users/<id> answered after 300 ms, reply, release. */
static void test_whois(void) {
  struct blazebot_test_host th;
  const struct blazebot_test_api_call *c;
  const struct blazebot_test_sent *s;
  const struct blazebot_test_delivery *d;
  char id[BLAZEBOT_ID_LEN], id2[BLAZEBOT_ID_LEN];
  int result = 99;
  CHECK_INT(load(&th), 0);
  CHECK_INT(blazebot_test_api_script(
                &th, "GET", USER_PATH, 200, 0,
                "{\"data\":{\"user_id\":\"u\",\"full_name\":\"Alice\"}}", 300),
            0);
  CHECK_INT(blazebot_test_scripts_left(&th), 1);
  CHECK_INT(deliver(&th, "whois", id), BLAZEBOT_PASS);
  CHECK_INT(blazebot_test_scripts_left(&th), 0);
  CHECK_INT(blazebot_test_holds(&th, id), 1);
  CHECK_INT(blazebot_test_hold_count(&th), 1);
  CHECK_INT(blazebot_test_outcome(&th, id, &result), 0);
  CHECK_INT(result, BLAZEBOT_PASS);
  CHECK_INT(blazebot_test_results_pending(&th), 1);
  CHECK_INT(blazebot_test_api_count(&th), 1);
  c = blazebot_test_api(&th, 0);
  CHECK(c != NULL);
  if (c) {
    CHECK_STR(c->method, "GET");
    CHECK_STR(c->path, USER_PATH);
    CHECK_STR(c->body, "");
    CHECK_INT(c->body_len, 0);
    CHECK_INT(c->timeout_ms, 0);
    CHECK_INT(c->answered, 0);
  }
  CHECK(blazebot_test_api(&th, 1) == NULL);

  /* The test's message is replaced (its buffer freed): the plugin's view
   * is the host's copy and stays valid while held. */
  CHECK_INT(deliver(&th, "nothing", id2), BLAZEBOT_PASS);
  CHECK_INT(blazebot_test_outcome(&th, id2, &result), 1);
  CHECK(strcmp(id, id2) != 0);
  CHECK_INT(blazebot_test_holds(&th, id), 1);

  CHECK_INT(blazebot_test_fire_timers(&th, 299), 0);
  CHECK_INT(blazebot_test_reply_count(&th), 0);
  CHECK_INT(blazebot_test_fire_timers(&th, 1), 1);
  CHECK_INT(g.now_mono, 300);
  CHECK_INT(g.http_status, 200);
  CHECK_INT(blazebot_test_reply_count(&th), 1);
  s = blazebot_test_reply(&th, 0);
  CHECK(s != NULL);
  if (s) {
    CHECK_STR(s->data, "hello Alice");
    CHECK_INT(s->is_reply, 1);
    CHECK_STR(s->conversation_id, BLAZEBOT_TEST_CONVERSATION_ID);
    CHECK_STR(s->recipient_id, BLAZEBOT_TEST_USER_ID);
    CHECK_STR(s->tied_to, id);
    CHECK_INT(s->ordinal, 1);
    CHECK_INT(s->with_result, 0);
    CHECK_INT(s->settled, 1); /* accepted at once (the default) */
    CHECK_INT(s->status, BLAZEBOT_SEND_ACCEPTED);
  }
  CHECK_INT(blazebot_test_outcome(&th, id, &result), 1);
  CHECK_INT(result, BLAZEBOT_HANDLED);
  CHECK_INT(blazebot_test_holds(&th, id), 0);
  CHECK_INT(blazebot_test_hold_count(&th), 0);
  d = blazebot_test_find_delivery(&th, id);
  CHECK(d != NULL);
  if (d) {
    CHECK_INT(d->rc, BLAZEBOT_PASS);
    CHECK_INT(d->taken, 1);
    CHECK_INT(d->sends, 1);
    CHECK_INT(d->forced, 0);
    CHECK(d->view == NULL);
  }
  CHECK(blazebot_test_find_delivery(&th, NULL) == blazebot_test_find_delivery(&th, id2));
  CHECK(blazebot_test_find_delivery(&th, "nope") == NULL);
  CHECK_INT(blazebot_test_holds(&th, "nope"), -1);
  CHECK_INT(blazebot_test_outcome(&th, "nope", &result), -1);
  c = blazebot_test_api(&th, 0);
  if (c) {
    CHECK_INT(c->answered, 1);
    CHECK_INT(c->http_status, 200);
    CHECK_INT(c->called_ms, 0);
    CHECK_INT(c->answered_ms, 300);
  }

  /* An error answer: a send under the hold, tied, and an error outcome. */
  CHECK_INT(blazebot_test_api_script(&th, NULL, NULL, 404, 10404,
                                     "{\"error\":{\"code\":10404}}", 0),
            0);
  CHECK_INT(deliver(&th, "whois", id), BLAZEBOT_PASS);
  CHECK_INT(g.error_code, 10404);
  CHECK_INT(blazebot_test_outcome(&th, id, &result), 1);
  CHECK_INT(result, -2);
  s = blazebot_test_reply(&th, 1);
  if (s) {
    CHECK_STR(s->data, "no such user (10404)");
    CHECK_INT(s->is_reply, 0);
    CHECK_STR(s->tied_to, id);
    CHECK_INT(s->ordinal, 1);
  }

  /* No script: http_status 0 at once (logged); the plugin asks for RETRY. */
  CHECK_INT(deliver(&th, "whois", id), BLAZEBOT_PASS);
  CHECK_INT(g.http_status, 0);
  CHECK(blazebot_test_log_contains(&th, "no scripted answer"));
  CHECK_INT(blazebot_test_outcome(&th, id, &result), 1);
  CHECK_INT(result, BLAZEBOT_RETRY);
  CHECK_INT(th.violations, 0);
  CHECK_INT(g.nested, 0);
  blazebot_test_unload(&th);
  CHECK_INT(g.after_shutdown, 0);
}

/* Scripts by method and path or in order, the default, the deadline, bad
 * calls. */
static void test_api_scripts(void) {
  struct blazebot_test_host th;
  blazebot_ctx *ctx = (blazebot_ctx *)(void *)&th;
  const struct blazebot_test_api_call *c;
  CHECK_INT(load(&th), 0);
  g_th = &th;
  memset(&calls, 0, sizeof calls);
  /* A loose script first, then one naming GET /a: /a takes its own. */
  CHECK_INT(blazebot_test_api_script(&th, NULL, NULL, 500, 0, "any", 0), 0);
  CHECK_INT(blazebot_test_api_script(&th, "GET", "/a", 200, 0, "a", 0), 0);
  CHECK_INT(blazebot_test_api_script(&th, "POST", NULL, 201, 0, "posted", 0), 0);
  CHECK_INT(th.host.api_request(ctx, "GET", "/a", NULL, 0, 0, test_done, NULL), 0);
  CHECK_INT(th.host.api_request(ctx, "GET", "/b", NULL, 0, 0, test_done, NULL), 0);
  CHECK_INT(
      th.host.api_request(ctx, "POST", "/c?x=1", "{\"k\":1}", 7, 500, test_done, NULL),
      0);
  /* Called outside a callback: answered when the clock is next looked at. */
  CHECK_INT(calls.n, 0);
  CHECK_INT(blazebot_test_results_pending(&th), 3);
  CHECK_INT(blazebot_test_fire_timers(&th, 0), 3);
  CHECK_INT(calls.n, 3);
  CHECK_INT(calls.status[0], 200);
  CHECK_STR(calls.body[0], "a");
  CHECK_INT(calls.status[1], 500);
  CHECK_STR(calls.body[1], "any");
  CHECK_INT(calls.status[2], 201);
  CHECK_STR(calls.body[2], "posted");
  c = blazebot_test_api(&th, 2);
  if (c) {
    CHECK_STR(c->method, "POST");
    CHECK_STR(c->path, "/c?x=1");
    CHECK_STR(c->body, "{\"k\":1}");
    CHECK_INT(c->body_len, 7);
    CHECK_INT(c->timeout_ms, 500);
  }
  CHECK_INT(blazebot_test_scripts_left(&th), 0);

  /* Unscripted: http_status 0; then a configured default. */
  CHECK_INT(th.host.api_request(ctx, "GET", "/d", NULL, 0, 0, test_done, NULL), 0);
  CHECK_INT(blazebot_test_api_default(&th, 503, 0, "busy", 40), 0);
  CHECK_INT(th.host.api_request(ctx, "GET", "/e", NULL, 0, 0, test_done, NULL), 0);
  CHECK_INT(blazebot_test_fire_timers(&th, 39), 1);
  CHECK_INT(calls.status[3], 0);
  CHECK_STR(calls.body[3], "");
  CHECK_INT(blazebot_test_fire_timers(&th, 1), 1);
  CHECK_INT(calls.status[4], 503);
  CHECK_STR(calls.body[4], "busy");
  CHECK_INT(calls.at[4], 40);

  /* Too slow for the deadline: no answer, at the deadline (timeout_ms, or
   * api_timeout_ms when 0). */
  CHECK_INT(blazebot_test_api_script(&th, "GET", "/slow", 200, 0, "late", 5000), 0);
  CHECK_INT(th.host.api_request(ctx, "GET", "/slow", NULL, 0, 1000, test_done, NULL), 0);
  CHECK_INT(blazebot_test_api_script(&th, "GET", "/slower", 200, 0, "late", 20000), 0);
  CHECK_INT(th.host.api_request(ctx, "GET", "/slower", NULL, 0, 0, test_done, NULL), 0);
  CHECK_INT(blazebot_test_fire_timers(&th, 1000), 1);
  CHECK_INT(calls.status[5], 0);
  CHECK_INT(calls.at[5], 1040);
  CHECK_INT(blazebot_test_fire_timers(&th, 20000), 1);
  CHECK_INT(calls.status[6], 0);
  CHECK_INT(calls.at[6], 10040);
  CHECK_INT(blazebot_test_api_count(&th), 7);

  /* Bad calls fail, are not recorded, and count as violations. */
  CHECK_INT(th.host.api_request(ctx, "PUT", "/x", NULL, 0, 0, test_done, NULL), -1);
  CHECK_INT(th.host.api_request(ctx, "GET", "x", NULL, 0, 0, test_done, NULL), -1);
  CHECK_INT(th.host.api_request(ctx, "GET", "/x", NULL, 0, 0, NULL, NULL), -1);
  CHECK_INT(th.host.api_request(ctx, "POST", "/x", NULL, 3, 0, test_done, NULL), -1);
  CHECK_INT(th.host.api_request(ctx, NULL, "/x", NULL, 0, 0, test_done, NULL), -1);
  CHECK_INT(th.violations, 5);
  /* A failing host: -1, done never runs. */
  th.fail_api = 1;
  CHECK_INT(th.host.api_request(ctx, "GET", "/x", NULL, 0, 0, test_done, NULL), -1);
  th.fail_api = 0;
  CHECK_INT(blazebot_test_api_count(&th), 7);
  CHECK_INT(blazebot_test_fire_timers(&th, 100000), 0);
  CHECK_INT(calls.n, 7);
  CHECK_INT(blazebot_test_api_script(&th, "TOOLONGMETHOD", NULL, 200, 0, NULL, 0), -1);
  /* Unused scripts are counted, and freed at unload. */
  CHECK_INT(blazebot_test_api_script(&th, "GET", "/never", 200, 0, "x", 0), 0);
  CHECK_INT(blazebot_test_scripts_left(&th), 1);
  /* clear forgets the recorded calls. */
  blazebot_test_clear(&th);
  CHECK_INT(blazebot_test_api_count(&th), 0);
  CHECK_INT(g.nested, 0);
  blazebot_test_unload(&th);
  CHECK_INT(blazebot_test_scripts_left(&th), 0);
  g_th = NULL;
}

static struct blazebot_outgoing out(const char *id, const char *text) {
  struct blazebot_outgoing o;
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  o.conversation_id = BLAZEBOT_TEST_CONVERSATION_ID;
  o.category = "PLAIN_TEXT";
  o.message_id = id;
  o.data = text;
  o.data_len = strlen(text);
  return o;
}

/* Send results: scripted per id or in order, after a delay, the default. */
static void test_send_results(void) {
  struct blazebot_test_host th;
  blazebot_ctx *ctx = (blazebot_ctx *)(void *)&th;
  const struct blazebot_test_sent *s;
  struct blazebot_outgoing o;
  char id[BLAZEBOT_ID_LEN], sid[BLAZEBOT_ID_LEN];
  const char *x = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
  CHECK_INT(load(&th), 0);
  /* ping: send_result inside on_message, refused after 50 ms. */
  CHECK_INT(blazebot_test_send_script(&th, NULL, BLAZEBOT_SEND_REFUSED, 10002, 50), 0);
  CHECK_INT(deliver(&th, "ping", id), BLAZEBOT_HANDLED);
  s = blazebot_test_reply(&th, 0);
  CHECK(s != NULL);
  if (s) {
    CHECK_INT(s->with_result, 1);
    CHECK_STR(s->tied_to, id);
    CHECK_INT(s->ordinal, 1);
    CHECK_INT(s->settled, 0);
    CHECK_INT(s->serial, 1);
  }
  CHECK_INT(blazebot_test_outcome(&th, id, NULL), 1); /* no hold: ended */
  CHECK_INT(blazebot_test_fire_timers(&th, 49), 0);
  CHECK(strchr(g.trace, 'P') == NULL);
  CHECK_INT(blazebot_test_fire_timers(&th, 1), 1);
  CHECK_INT(g.send_status, BLAZEBOT_SEND_REFUSED);
  CHECK_INT(g.send_code, 10002);
  if (s) {
    CHECK_STR(g.send_id, s->message_id);
    CHECK_INT(s->settled, 1);
    CHECK_INT(s->status, BLAZEBOT_SEND_REFUSED);
    CHECK_INT(s->code, 10002);
  }

  /* By id: a script naming x wins over the loose one made before it. */
  CHECK_INT(blazebot_test_send_script(&th, NULL, BLAZEBOT_SEND_ACCEPTED, 77, 10), 0);
  CHECK_INT(blazebot_test_send_script(&th, x, BLAZEBOT_SEND_GAVE_UP, 0, 0), 0);
  o = out(x, "x");
  CHECK_INT(th.host.send_result(ctx, &o, send_done, &g, sid), 0);
  CHECK_STR(sid, x);
  CHECK_INT(blazebot_test_scripts_left(&th), 1);
  CHECK_INT(blazebot_test_fire_timers(&th, 0), 1);
  CHECK_INT(g.send_status, BLAZEBOT_SEND_GAVE_UP);
  CHECK_STR(g.send_id, x);
  o = out(NULL, "y");
  CHECK_INT(th.host.send_result(ctx, &o, send_done, &g, sid), 0);
  CHECK_STR(sid, BLAZEBOT_TEST_UUID_PREFIX "000000000002");
  CHECK_INT(blazebot_test_fire_timers(&th, 10), 1);
  CHECK_INT(g.send_status, BLAZEBOT_SEND_ACCEPTED);
  CHECK_INT(g.send_code, 0); /* a code is kept for REFUSED only */
  s = blazebot_test_reply(&th, 2);
  if (s) {
    CHECK_STR(s->tied_to, ""); /* outside on_message, no hold */
    CHECK_INT(s->ordinal, 0);
  }

  /* The default, and a send_result without done. */
  CHECK_INT(blazebot_test_send_default(&th, BLAZEBOT_SEND_REFUSED, 403, 20), 0);
  o = out(NULL, "z");
  CHECK_INT(th.host.send_result(ctx, &o, NULL, NULL, NULL), 0);
  CHECK_INT(th.host.send(ctx, &o, NULL), 0); /* plain sends get results too */
  CHECK_INT(blazebot_test_fire_timers(&th, 20), 0);
  s = blazebot_test_reply(&th, 3);
  if (s) {
    CHECK_INT(s->with_result, 1);
    CHECK_INT(s->settled, 1);
    CHECK_INT(s->status, BLAZEBOT_SEND_REFUSED);
    CHECK_INT(s->code, 403);
  }
  s = blazebot_test_reply(&th, 4);
  if (s) {
    CHECK_INT(s->with_result, 0);
    CHECK_INT(s->status, BLAZEBOT_SEND_REFUSED);
  }

  /* Failing: -1 and done never runs; bad scripts. */
  th.fail_sends = 1;
  CHECK_INT(th.host.send_result(ctx, &o, send_done, &g, NULL), -1);
  th.fail_sends = 0;
  CHECK_INT(blazebot_test_results_pending(&th), 0);
  CHECK_INT(blazebot_test_send_script(&th, NULL, 7, 0, 0), -1);
  CHECK_INT(blazebot_test_send_default(&th, 3, 0, 0), -1);
  CHECK_INT(blazebot_test_send_script(&th,
                                      "an id far too long to be a message id, really",
                                      BLAZEBOT_SEND_ACCEPTED, 0, 0),
            -1);
  CHECK_INT(th.host.send_result(ctx, NULL, send_done, &g, NULL), -1);
  CHECK_INT(th.violations, 1);
  CHECK_INT(g.nested, 0);
  blazebot_test_unload(&th);
}

/* Holds: the strongest result wins when the last hold is released. */
static void test_holds(void) {
  static const struct {
    const char *text;
    int after_first; /* the result so far after the first release */
    int outcome;
  } v[] = {
      {"hold 0 1 2", BLAZEBOT_HANDLED, BLAZEBOT_RETRY},
      {"hold 1 -3 0", -3, -3},
      {"hold 2 1", BLAZEBOT_RETRY, BLAZEBOT_RETRY},
      {"hold 0 1 0", BLAZEBOT_HANDLED, BLAZEBOT_HANDLED},
      {"hold 0 0", BLAZEBOT_PASS, BLAZEBOT_PASS},
      {"hold 0 7", BLAZEBOT_PASS, BLAZEBOT_PASS}, /* unknown: as PASS */
      {"hold 0 -1 -5 2", -1, BLAZEBOT_RETRY},     /* the first error, then RETRY */
      {"hold 1 0 0 0", BLAZEBOT_HANDLED, BLAZEBOT_HANDLED},
  };
  struct blazebot_test_host th;
  blazebot_ctx *ctx = (blazebot_ctx *)(void *)&th;
  char id[BLAZEBOT_ID_LEN];
  size_t i;
  int result, n, local;
  CHECK_INT(load(&th), 0);
  for (i = 0; i < sizeof v / sizeof v[0]; i++) {
    const char *p = v[i].text + 5;
    int holds = -1, k;
    while (*p) { /* count the results after rc */
      if (*p == ' ')
        holds++;
      p++;
    }
    holds++;
    (void)deliver(&th, v[i].text, id);
    CHECK_INT(blazebot_test_holds(&th, id), holds);
    CHECK_INT(blazebot_test_fire_timers(&th, 100), 1);
    n = blazebot_test_outcome(&th, id, &result);
    CHECK_INT(n, holds == 1 ? 1 : 0);
    CHECK_INT(result, v[i].after_first);
    for (k = 1; k < holds; k++)
      CHECK_INT(blazebot_test_fire_timers(&th, 100), 1);
    CHECK_INT(blazebot_test_outcome(&th, id, &result), 1);
    if (result != v[i].outcome)
      fprintf(stderr, "case %s\n", v[i].text);
    CHECK_INT(result, v[i].outcome);
    CHECK_INT(blazebot_test_find_delivery(&th, id)->taken, holds);
  }
  CHECK_INT(blazebot_test_hold_count(&th), 0);

  /* Released inside on_message: the view lasts until on_message returns. */
  CHECK_INT(deliver(&th, "self", id), BLAZEBOT_PASS);
  CHECK(g.self_ok);
  CHECK_INT(blazebot_test_outcome(&th, id, &result), 1);
  CHECK_INT(result, BLAZEBOT_HANDLED);

  /* Tied: a reply inside on_message, then a send with the hold and a reply
   * under it, counted in one sequence; after the release the hold is gone. */
  blazebot_test_clear(&th);
  CHECK_INT(deliver(&th, "tied", id), BLAZEBOT_PASS);
  CHECK_INT(blazebot_test_fire_timers(&th, 100), 1);
  CHECK_INT(blazebot_test_reply_count(&th), 3);
  for (i = 0; i < 3; i++) {
    const struct blazebot_test_sent *s = blazebot_test_reply(&th, i);
    static const char *const text[] = {"one", "two", "three"};
    CHECK_STR(s->data, text[i]);
    CHECK_STR(s->tied_to, id);
    CHECK_INT(s->ordinal, i + 1);
    CHECK_INT(s->is_reply, i != 1);
  }
  CHECK_INT(blazebot_test_find_delivery(&th, id)->sends, 3);
  CHECK_INT(g.late_send_rc, -1);
  CHECK_INT(th.violations, 1);
  CHECK(blazebot_test_log_contains(&th, "m->hold is already released"));

  /* A reply after the last release fails. */
  CHECK_INT(deliver(&th, "late", id), BLAZEBOT_PASS);
  CHECK_INT(blazebot_test_fire_timers(&th, 200), 2);
  CHECK_INT(g.late_reply_rc, -1);
  CHECK_INT(th.violations, 2);
  CHECK(blazebot_test_log_contains(&th, "reply outside on_message"));

  /* Double, unknown and NULL releases; hold outside on_message. */
  {
    struct blazebot_test_hold_rec *h = th.holds; /* the newest: late's, released */
    CHECK_INT(th.host.release(ctx, (blazebot_hold *)(void *)h, BLAZEBOT_PASS), -1);
    CHECK_INT(th.host.release(ctx, (blazebot_hold *)(void *)&local, BLAZEBOT_PASS), -1);
    CHECK_INT(th.host.release(ctx, NULL, BLAZEBOT_PASS), -1);
    CHECK_INT(th.violations, 5);
    CHECK(blazebot_test_log_contains(&th, "release of an already released hold"));
    CHECK(blazebot_test_log_contains(&th, "release of an unknown hold"));
    CHECK(th.host.hold(ctx, blazebot_test_message(&th, "PLAIN_TEXT", "x")) == NULL);
    CHECK_INT(th.violations, 6);
    CHECK(blazebot_test_log_contains(&th, "hold outside on_message"));
  }
  CHECK_INT(blazebot_test_hold_count(&th), 0);
  CHECK_INT(g.nested, 0);
  blazebot_test_unload(&th);
}

/* The fake clocks, timer_at, and stepping through what is due. */
static void test_clock(void) {
  struct blazebot_test_host th;
  blazebot_ctx *ctx = (blazebot_ctx *)(void *)&th;
  const struct blazebot_test_sent *s;
  uint64_t tid;
  char id[BLAZEBOT_ID_LEN];
  CHECK_INT(load(&th), 0);
  CHECK_INT(th.host.now_ms(ctx, BLAZEBOT_CLOCK_MONOTONIC), 0);
  CHECK(th.host.now_ms(ctx, BLAZEBOT_CLOCK_WALL) == BLAZEBOT_TEST_WALL_START);
  CHECK_INT(blazebot_test_fire_timers(&th, 1500), 0);
  CHECK_INT(blazebot_test_now(&th, BLAZEBOT_CLOCK_MONOTONIC), 1500);
  CHECK(blazebot_test_now(&th, BLAZEBOT_CLOCK_WALL) == BLAZEBOT_TEST_WALL_START + 1500);
  CHECK_INT(blazebot_test_now(&th, 9), -1);
  CHECK_INT(th.host.now_ms(ctx, 9), -1);
  CHECK_INT(th.violations, 1);
  /* The wall clock jumps either way; the monotonic one only forward. */
  CHECK_INT(blazebot_test_set_clock(&th, BLAZEBOT_CLOCK_WALL, 1000000), 0);
  CHECK_INT(th.host.now_ms(ctx, BLAZEBOT_CLOCK_WALL), 1000000);
  CHECK_INT(th.host.now_ms(ctx, BLAZEBOT_CLOCK_MONOTONIC), 1500);
  CHECK_INT(blazebot_test_set_clock(&th, BLAZEBOT_CLOCK_MONOTONIC, 1499), -1);
  CHECK_INT(blazebot_test_set_clock(&th, BLAZEBOT_CLOCK_MONOTONIC, 2000), 0);
  CHECK_INT(th.host.now_ms(ctx, BLAZEBOT_CLOCK_WALL), 1000500);
  CHECK_INT(blazebot_test_set_clock(&th, 5, 0), -1);

  /* remind 60000: timer_at one minute ahead on the wall clock. */
  CHECK_INT(deliver(&th, "remind 60000", id), BLAZEBOT_HANDLED);
  CHECK_INT(blazebot_test_timer_count(&th), 1);
  CHECK_INT(blazebot_test_fire_timers(&th, 59999), 0);
  CHECK_INT(blazebot_test_fire_timers(&th, 1), 1);
  CHECK_INT(g.now_wall, 1060500);
  s = blazebot_test_reply(&th, 0);
  if (s) {
    CHECK_STR(s->data, "reminder");
    CHECK_STR(s->tied_to, ""); /* from a timer: not tied */
  }
  CHECK_INT(blazebot_test_timer_count(&th), 0);

  /* Setting the wall clock moves timer_at timers with it. */
  CHECK_INT(deliver(&th, "remind 60000", id), BLAZEBOT_HANDLED);
  CHECK_INT(blazebot_test_set_clock(&th, BLAZEBOT_CLOCK_WALL, 1060500 - 60000), 0);
  CHECK_INT(blazebot_test_fire_timers(&th, 60000), 0); /* now 1 min before it */
  CHECK_INT(blazebot_test_set_clock(&th, BLAZEBOT_CLOCK_WALL, 1120500 + 5), 1);
  CHECK_INT(g.now_wall, 1120505);
  /* In the past: fires when the clock is next looked at. */
  CHECK_INT(deliver(&th, "remind -5000", id), BLAZEBOT_HANDLED);
  CHECK_INT(blazebot_test_timer_count(&th), 1);
  CHECK_INT(blazebot_test_fire_timers(&th, 0), 1);
  /* Cancelled like any timer. */
  CHECK_INT(th.host.timer_at(ctx, 2000000, NULL, NULL, NULL), -1);
  CHECK_INT(th.host.timer_at(ctx, 2000000, remind, (void *)"no", &tid), 0);
  CHECK_INT(th.host.timer_cancel(ctx, tid), 0);
  CHECK_INT(blazebot_test_set_clock(&th, BLAZEBOT_CLOCK_WALL, 3000000), 0);

  /* Stepping: each callback runs at its own time, so an answer that starts
   * another call gets the second answer within the same advance, and
   * timers and answers interleave by time (at equal times, timers first). */
  {
    int64_t t0 = blazebot_test_now(&th, BLAZEBOT_CLOCK_MONOTONIC);
    g_th = &th;
    memset(&calls, 0, sizeof calls);
    CHECK_INT(deliver(&th, "hold 0 1 1 1 1", id), BLAZEBOT_PASS); /* 100 .. 400 */
    CHECK_INT(blazebot_test_api_script(&th, "GET", "/first", 200, 0, "1", 250), 0);
    CHECK_INT(blazebot_test_api_script(&th, "GET", "/second", 200, 0, "2", 100), 0);
    CHECK_INT(blazebot_test_api_script(&th, "GET", "/third", 200, 0, "3", 0), 0);
    CHECK_INT(th.host.api_request(ctx, "GET", "/first", NULL, 0, 0, chain_done, &calls),
              0);
    memset(g.trace, 0, sizeof g.trace);
    CHECK_INT(blazebot_test_fire_timers(&th, 400), 7);
    CHECK_STR(g.trace, "TTaTaaT");
    CHECK_INT(calls.n, 3);
    CHECK_INT(calls.at[0], t0 + 250);
    CHECK_INT(calls.at[1], t0 + 350);
    CHECK_INT(calls.at[2], t0 + 350);
    CHECK_INT(g.now_mono, t0 + 400);
    CHECK_INT(blazebot_test_outcome(&th, id, NULL), 1);
    g_th = NULL;
  }
  CHECK_INT(g.nested, 0);
  blazebot_test_unload(&th);
}

/* state_dir and instance_name. */
static void test_state_dir(const char *scratch) {
  struct blazebot_test_host th;
  struct stat st;
  char own[600], root[BLAZEBOT_TEST_PATH_LEN], path[700];
  const char *slash;
  /* Defaults: the descriptor's name, a temporary folder made on demand. */
  CHECK_INT(load(&th), 0);
  CHECK_STR(g.instance, "whois");
  CHECK(g.state_dir != NULL);
  if (g.state_dir) {
    CHECK_STR(g.state_dir, th.state_path);
    CHECK_INT(strncmp(g.state_dir, scratch, strlen(scratch)), 0);
    slash = strrchr(g.state_dir, '/');
    CHECK_STR(slash ? slash + 1 : "", "whois");
    CHECK_INT(stat(g.state_dir, &st), 0);
    CHECK(S_ISDIR(st.st_mode));
    CHECK_INT(st.st_mode & 07777, 0700);
    snprintf(path, sizeof path, "%s/counter", g.state_dir);
    CHECK_INT(stat(path, &st), 0);
    CHECK_INT(g.counter, 1);
  }
  CHECK(blazebot_test_state_dir(&th) == g.state_dir);
  snprintf(root, sizeof root, "%s", th.state_root);
  CHECK_INT(blazebot_test_set_instance_name(&th, "x"), -1); /* loaded */
  CHECK_INT(blazebot_test_set_state_dir(&th, NULL), -1);
  blazebot_test_unload(&th);
  CHECK(stat(root, &st) != 0); /* removed, with what the plugin wrote */
  CHECK_STR(th.state_path, "");

  /* Set by the test: the instance's name, and a folder the test owns, which
   * survives unload, so the counter goes on. */
  reset();
  blazebot_test_init(&th);
  CHECK_INT(blazebot_test_set_instance_name(&th, ""), -1);
  CHECK_INT(blazebot_test_set_instance_name(&th, "whois-eu"), 0);
  snprintf(own, sizeof own, "%s/own", scratch);
  CHECK_INT(blazebot_test_set_state_dir(&th, own), 0);
  CHECK_INT(blazebot_test_load(&th, &whois_desc), 0);
  CHECK_STR(g.instance, "whois-eu");
  CHECK_STR(g.state_dir, own);
  CHECK_INT(g.counter, 1);
  blazebot_test_unload(&th);
  CHECK_INT(stat(own, &st), 0);
  CHECK_INT(blazebot_test_load(&th, &whois_desc), 0);
  CHECK_INT(g.counter, 2);
  CHECK_STR(g.instance, "whois-eu");
  blazebot_test_unload(&th);
  CHECK_INT(blazebot_test_set_instance_name(&th, NULL), 0);

  /* A temporary folder named after the instance; and none at all. */
  CHECK_INT(blazebot_test_set_state_dir(&th, NULL), 0);
  CHECK_INT(blazebot_test_set_instance_name(&th, "second"), 0);
  CHECK_INT(blazebot_test_load(&th, &whois_desc), 0);
  slash = g.state_dir ? strrchr(g.state_dir, '/') : NULL;
  CHECK_STR(slash ? slash + 1 : "", "second");
  blazebot_test_unload(&th);
  th.no_state_dir = 1;
  CHECK_INT(blazebot_test_load(&th, &whois_desc), 0);
  CHECK(g.state_dir == NULL);
  CHECK(blazebot_test_state_dir(&th) == NULL);
  blazebot_test_unload(&th);
  CHECK_INT(th.violations, 0);
}

/* Unload: pending results are handed over before shutdown (no answer,
 * GAVE_UP), nothing new can start, holds go as RETRY, nothing runs after. */
static void test_unload(void) {
  struct blazebot_test_host th;
  const struct blazebot_test_delivery *d;
  char w[BLAZEBOT_ID_LEN], k[BLAZEBOT_ID_LEN];
  int result;
  CHECK_INT(load(&th), 0);
  CHECK_INT(blazebot_test_api_script(&th, "GET", USER_PATH, 200, 0, "{}", 1000), 0);
  CHECK_INT(blazebot_test_send_default(&th, BLAZEBOT_SEND_ACCEPTED, 0, 1000), 0);
  CHECK_INT(deliver(&th, "whois", w), BLAZEBOT_PASS);
  CHECK_INT(deliver(&th, "ping", NULL), BLAZEBOT_HANDLED);
  CHECK_INT(deliver(&th, "keep", k), BLAZEBOT_PASS);
  CHECK_INT(blazebot_test_results_pending(&th), 2);
  CHECK_INT(blazebot_test_hold_count(&th), 2);
  memset(g.trace, 0, sizeof g.trace);
  g.probe = 1;
  g.retired_api_rc = g.retired_timer_rc = 99;
  blazebot_test_unload(&th);
  CHECK_STR(g.trace, "APS");
  CHECK_INT(g.http_status, 0);
  CHECK_INT(g.retired_api_rc, -1);
  CHECK_INT(g.retired_timer_rc, -1);
  CHECK_INT(g.send_status, BLAZEBOT_SEND_GAVE_UP);
  CHECK_INT(blazebot_test_outcome(&th, w, &result), 1);
  CHECK_INT(result, BLAZEBOT_RETRY);
  d = blazebot_test_find_delivery(&th, w);
  CHECK(d && !d->forced); /* the plugin released it itself */
  CHECK_INT(blazebot_test_outcome(&th, k, &result), 1);
  CHECK_INT(result, BLAZEBOT_RETRY);
  d = blazebot_test_find_delivery(&th, k);
  CHECK(d && d->forced && d->rc == BLAZEBOT_PASS);
  CHECK_INT(blazebot_test_results_pending(&th), 0);
  CHECK_INT(blazebot_test_hold_count(&th), 0);
  CHECK_INT(blazebot_test_fire_timers(&th, 5000), 0);
  CHECK_INT(g.after_shutdown, 0);
  CHECK_INT(g.nested, 0);
  CHECK_INT(th.violations, 0);
}

/* Reload: the old instance gets its answers (as scripted) before its
 * shutdown, its holds go as RETRY; the new one starts clean. */
static void test_reload(void) {
  struct blazebot_test_host th;
  char w[BLAZEBOT_ID_LEN], k[BLAZEBOT_ID_LEN];
  int result;
  CHECK_INT(load(&th), 0);
  CHECK_INT(blazebot_test_api_script(&th, "GET", USER_PATH, 200, 0,
                                     "{\"data\":{\"full_name\":\"Bob\"}}", 1000),
            0);
  CHECK_INT(deliver(&th, "whois", w), BLAZEBOT_PASS);
  CHECK_INT(deliver(&th, "keep", k), BLAZEBOT_PASS);
  CHECK_INT(deliver(&th, "remind 10", NULL), BLAZEBOT_HANDLED);
  CHECK_INT(blazebot_test_reload(&th, &whois_desc), 0);
  CHECK_STR(g.trace, "IMMMIAS");
  CHECK_STR(blazebot_test_reply_text(&th, 0), "hello Bob");
  CHECK_INT(g.now_mono, 0); /* handed over at once */
  CHECK_INT(blazebot_test_outcome(&th, w, &result), 1);
  CHECK_INT(result, BLAZEBOT_HANDLED);
  CHECK_INT(blazebot_test_outcome(&th, k, &result), 1);
  CHECK_INT(result, BLAZEBOT_RETRY);
  CHECK(blazebot_test_find_delivery(&th, k)->forced);
  CHECK_INT(blazebot_test_timer_count(&th), 0); /* the old reminder went */
  CHECK_INT(blazebot_test_results_pending(&th), 0);
  CHECK_INT(blazebot_test_fire_timers(&th, 100), 0);
  /* The new instance works. */
  CHECK_INT(blazebot_test_api_script(&th, NULL, NULL, 200, 0,
                                     "{\"data\":{\"full_name\":\"Eve\"}}", 0),
            0);
  CHECK_INT(deliver(&th, "whois", w), BLAZEBOT_PASS);
  CHECK_STR(blazebot_test_reply_text(&th, 1), "hello Eve");
  CHECK_INT(g.nested, 0);
  CHECK_INT(th.violations, 0);
  blazebot_test_unload(&th);
  CHECK_INT(g.inits, 2);
  CHECK_INT(g.shutdowns, 2);
  CHECK_INT(g.after_shutdown, 0);
}

/* upload: recorded with a copy of the bytes; the default result (a fresh
 * id), scripted ones in order (an id, a failure), delays, the deadline. */
static void test_upload(void) {
  struct blazebot_test_host th;
  blazebot_ctx *ctx = (blazebot_ctx *)(void *)&th;
  const struct blazebot_test_upload *u;
  const struct blazebot_test_sent *s;
  char id[BLAZEBOT_ID_LEN], buf[8], mime[140];
  int result;
  CHECK_INT(load(&th), 0);
  CHECK(g.minor1);
  CHECK(BLAZEBOT_HOST_HAS(&th.host, upload));
  g_th = &th;
  memset(&ups, 0, sizeof ups);

  /* The default: a success with a fresh id, as soon as on_message returns. */
  CHECK_INT(deliver(&th, "upload hello", id), BLAZEBOT_HANDLED);
  CHECK_INT(blazebot_test_upload_count(&th), 1);
  u = blazebot_test_upload(&th, 0);
  CHECK(u != NULL);
  if (u) {
    CHECK_INT(u->serial, 1);
    CHECK_INT(u->len, 5);
    CHECK_STR(u->data, "hello");
    CHECK_STR(u->mime_type, "text/plain");
    CHECK_INT(u->timeout_ms, 0);
    CHECK_INT(u->called_ms, 0);
    CHECK_INT(u->answered, 1);
    CHECK_INT(u->answered_ms, 0);
    CHECK_INT(u->ok, 1);
    CHECK_INT(u->http_status, 200);
    CHECK_INT(u->error_code, 0);
    CHECK_STR(u->attachment_id, BLAZEBOT_TEST_ATTACHMENT_ID_PREFIX "000000000001");
    CHECK_STR(u->error, "");
  }
  CHECK(blazebot_test_upload(&th, 1) == NULL);
  CHECK_INT(g.up_size, sizeof(struct blazebot_upload_result));
  CHECK_INT(g.up_ok, 1);
  CHECK_INT(g.up_status, 200);
  CHECK_STR(g.up_error, "");
  s = blazebot_test_reply(&th, 0);
  if (s) {
    CHECK_STR(s->data, "uploaded " BLAZEBOT_TEST_ATTACHMENT_ID_PREFIX "000000000001");
    CHECK_STR(s->tied_to, id);
  }
  CHECK_INT(blazebot_test_outcome(&th, id, &result), 1);
  CHECK_INT(result, BLAZEBOT_HANDLED);
  /* Ids come from their own counter, not uuid()'s. */
  CHECK_INT(deliver(&th, "upload x", NULL), BLAZEBOT_HANDLED);
  CHECK_STR(g.up_id, BLAZEBOT_TEST_ATTACHMENT_ID_PREFIX "000000000002");

  /* Scripts, used in order: an id after 300 ms, then failures. */
  CHECK_INT(
      blazebot_test_upload_script_ok(&th, "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa", 300),
      0);
  CHECK_INT(blazebot_test_upload_script_fail(&th, 403, 403, "the upload was refused", 0),
            0);
  CHECK_INT(blazebot_test_upload_script_fail(&th, 500, 0, NULL, 0), 0);
  CHECK_INT(blazebot_test_upload_script_fail(&th, 0, 0, "", 0), 0);
  CHECK_INT(blazebot_test_scripts_left(&th), 4);
  CHECK_INT(deliver(&th, "upload one", id), BLAZEBOT_HANDLED);
  CHECK_INT(blazebot_test_scripts_left(&th), 3);
  CHECK_INT(blazebot_test_results_pending(&th), 1);
  CHECK_INT(blazebot_test_holds(&th, id), 1);
  CHECK_INT(blazebot_test_fire_timers(&th, 299), 0);
  CHECK_INT(blazebot_test_upload(&th, 2)->answered, 0);
  CHECK_INT(blazebot_test_fire_timers(&th, 1), 1);
  CHECK_INT(g.now_mono, 300);
  CHECK_STR(g.up_id, "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa");
  CHECK_INT(blazebot_test_upload(&th, 2)->answered_ms, 300);
  CHECK_INT(blazebot_test_outcome(&th, id, &result), 1);
  CHECK_INT(result, BLAZEBOT_HANDLED);
  CHECK_INT(deliver(&th, "upload two", NULL), BLAZEBOT_HANDLED);
  CHECK_INT(g.up_ok, 0);
  CHECK_INT(g.up_status, 403);
  CHECK_INT(g.up_code, 403);
  CHECK_STR(g.up_id, "");
  CHECK_STR(g.up_error, "the upload was refused");
  CHECK_STR(blazebot_test_reply_text(&th, 3),
            "upload failed: 403 403 the upload was refused");
  u = blazebot_test_upload(&th, 3);
  if (u) {
    CHECK_INT(u->ok, 0);
    CHECK_INT(u->http_status, 403);
    CHECK_INT(u->error_code, 403);
    CHECK_STR(u->attachment_id, "");
    CHECK_STR(u->error, "the upload was refused");
  }
  /* Without a text, the daemon's. */
  CHECK_INT(deliver(&th, "upload three", NULL), BLAZEBOT_HANDLED);
  CHECK_STR(g.up_error, "POST /attachments failed");
  CHECK_INT(deliver(&th, "upload four", NULL), BLAZEBOT_HANDLED);
  CHECK_INT(g.up_status, 0);
  CHECK_STR(g.up_error, "no answer before the deadline");
  CHECK_INT(blazebot_test_scripts_left(&th), 0);

  /* Calls from outside a callback: results when the clock is next looked
   * at; the bytes are copied; a default failure, then a default success. */
  CHECK_INT(blazebot_test_upload_default_fail(&th, 502, 0, "bad gateway", 40), 0);
  memcpy(buf, "\x89PNG\0\1\2", 7);
  CHECK_INT(th.host.upload(ctx, buf, 7, "image/png", 500, test_upload_done, &ups), 0);
  memset(buf, 0, sizeof buf);
  u = blazebot_test_upload(&th, 6);
  if (u) {
    CHECK_INT(u->len, 7);
    CHECK_INT(memcmp(u->data, "\x89PNG\0\1\2", 7), 0);
    CHECK_INT(u->data[7], 0);
    CHECK_STR(u->mime_type, "image/png");
    CHECK_INT(u->timeout_ms, 500);
  }
  CHECK_INT(blazebot_test_upload_default_ok(&th, 10), 0);
  CHECK_INT(
      th.host.upload(ctx, "b", 1, "application/octet-stream", 0, test_upload_done, NULL),
      0);
  CHECK_INT(ups.n, 0);
  CHECK_INT(blazebot_test_results_pending(&th), 2);
  CHECK_INT(blazebot_test_fire_timers(&th, 10), 1);
  CHECK_INT(ups.n, 1);
  CHECK_INT(ups.ok[0], 1);
  CHECK_STR(ups.id[0], BLAZEBOT_TEST_ATTACHMENT_ID_PREFIX "000000000003");
  CHECK(ups.arg[0] == NULL);
  CHECK_INT(blazebot_test_fire_timers(&th, 30), 1);
  CHECK_INT(ups.ok[1], 0);
  CHECK_INT(ups.status[1], 502);
  CHECK_STR(ups.error[1], "bad gateway");
  CHECK(ups.arg[1] == (void *)&ups);
  CHECK_INT(ups.at[1] - ups.at[0], 30);

  /* Too slow for the deadline (timeout_ms, or upload_timeout_ms when 0):
   * no answer, at the deadline. */
  CHECK_INT(th.upload_timeout_ms, BLAZEBOT_TEST_UPLOAD_TIMEOUT_MS);
  CHECK_INT(blazebot_test_upload_script_ok(&th, NULL, 5000), 0);
  CHECK_INT(th.host.upload(ctx, "c", 1, "text/plain", 1000, test_upload_done, NULL), 0);
  CHECK_INT(blazebot_test_upload_default_ok(&th, 30000), 0);
  CHECK_INT(th.host.upload(ctx, "d", 1, "text/plain", 0, test_upload_done, NULL), 0);
  CHECK_INT(blazebot_test_fire_timers(&th, 1000), 1);
  CHECK_INT(ups.ok[2], 0);
  CHECK_INT(ups.status[2], 0);
  CHECK_STR(ups.id[2], "");
  CHECK_STR(ups.error[2], "no answer before the deadline");
  CHECK_INT(blazebot_test_fire_timers(&th, 19000), 1);
  CHECK_INT(ups.ok[3], 0);
  CHECK_INT(ups.at[3] - ups.at[2], 19000);
  CHECK_INT(blazebot_test_upload_default_ok(&th, 0), 0);
  CHECK_INT(blazebot_test_upload_count(&th), 10);

  /* Bad calls fail, are not recorded, and count as violations. */
  {
    static const char *const bad_mime[] = {
        NULL, "", "image", "/png", "image/", "image /png", "image/p\tg", "image/p\x7fg"};
    size_t i, v = th.violations;
    char *big = (char *)malloc(BLAZEBOT_TEST_MAX_UPLOAD_LEN + 1);
    for (i = 0; i < sizeof bad_mime / sizeof bad_mime[0]; i++)
      CHECK_INT(th.host.upload(ctx, "x", 1, bad_mime[i], 0, test_upload_done, NULL), -1);
    memset(mime, 'a', sizeof mime);
    mime[5] = '/';
    mime[128] = '\0'; /* 128 bytes: one too many */
    CHECK_INT(th.host.upload(ctx, "x", 1, mime, 0, test_upload_done, NULL), -1);
    mime[127] = '\0';
    CHECK_INT(th.host.upload(ctx, "x", 1, mime, 0, test_upload_done, NULL), 0);
    CHECK_INT(th.host.upload(ctx, NULL, 1, "text/plain", 0, test_upload_done, NULL), -1);
    CHECK_INT(th.host.upload(ctx, "x", 0, "text/plain", 0, test_upload_done, NULL), -1);
    CHECK_INT(th.host.upload(ctx, "x", 1, "text/plain", 0, NULL, NULL), -1);
    CHECK_INT(th.host.upload(ctx, "x", 1, "text/plain", 3600001, test_upload_done, NULL),
              -1);
    CHECK(big != NULL);
    if (big) {
      memset(big, 7, BLAZEBOT_TEST_MAX_UPLOAD_LEN + 1);
      CHECK_INT(th.host.upload(ctx, big, BLAZEBOT_TEST_MAX_UPLOAD_LEN + 1,
                               "application/octet-stream", 0, test_upload_done, NULL),
                -1);
      /* 16 MiB exactly is fine. */
      CHECK_INT(th.host.upload(ctx, big, BLAZEBOT_TEST_MAX_UPLOAD_LEN,
                               "application/octet-stream", 3600000, test_upload_done,
                               NULL),
                0);
      free(big);
    }
    CHECK_INT(th.violations - v, 14);
    CHECK(blazebot_test_log_contains(&th, "upload: data (1 byte to 16 MiB)"));
    u = blazebot_test_upload(&th, 11);
    if (u) {
      CHECK_INT(u->len, BLAZEBOT_TEST_MAX_UPLOAD_LEN);
      CHECK_INT((unsigned char)u->data[u->len - 1], 7);
    }
  }
  CHECK_INT(blazebot_test_upload_count(&th), 12);
  /* A failing host: -1, done never runs, nothing recorded. */
  th.fail_upload = 1;
  CHECK_INT(th.host.upload(ctx, "x", 1, "text/plain", 0, test_upload_done, NULL), -1);
  th.fail_upload = 0;
  CHECK_INT(blazebot_test_upload_count(&th), 12);
  CHECK_INT(blazebot_test_fire_timers(&th, 0), 2);
  CHECK_INT(ups.n, 6);
  CHECK_INT(blazebot_test_results_pending(&th), 0);
  /* Bad scripts. */
  CHECK_INT(blazebot_test_upload_script_ok(&th,
                                           "an attachment id far too long to be one, "
                                           "really, longer than 63 bytes",
                                           0),
            -1);
  memset(mime, 'e', sizeof mime);
  mime[sizeof mime - 1] = '\0';
  CHECK_INT(blazebot_test_upload_script_fail(&th, 500, 0, mime, 0), -1);
  CHECK_INT(blazebot_test_upload_default_fail(&th, 500, 0, mime, 0), -1);
  CHECK_INT(blazebot_test_scripts_left(&th), 0);
  /* clear forgets the recorded uploads; unused scripts are freed at unload. */
  blazebot_test_clear(&th);
  CHECK_INT(blazebot_test_upload_count(&th), 0);
  CHECK(blazebot_test_upload(&th, 0) == NULL);
  CHECK_INT(blazebot_test_upload_script_ok(&th, NULL, 0), 0);
  CHECK_INT(blazebot_test_scripts_left(&th), 1);
  CHECK_INT(g.nested, 0);
  blazebot_test_unload(&th);
  CHECK_INT(blazebot_test_scripts_left(&th), 0);
  CHECK_INT(blazebot_test_upload_count(&th), 0);
  CHECK_INT(th.violations, 14);
  g_th = NULL;
}

/* Pending uploads at unload fail with "the daemon is stopping" before
 * shutdown, and a new upload then fails; at a reload they are handed to the
 * old instance as scripted. */
static void test_upload_retire(void) {
  struct blazebot_test_host th;
  char id[BLAZEBOT_ID_LEN];
  int result;
  CHECK_INT(load(&th), 0);
  CHECK_INT(blazebot_test_upload_script_ok(&th, NULL, 1000), 0);
  CHECK_INT(deliver(&th, "upload late", id), BLAZEBOT_HANDLED);
  CHECK_INT(blazebot_test_results_pending(&th), 1);
  memset(g.trace, 0, sizeof g.trace);
  g.probe = 1;
  g.retired_upload_rc = 99;
  blazebot_test_unload(&th);
  CHECK_STR(g.trace, "US");
  CHECK_INT(g.up_ok, 0);
  CHECK_INT(g.up_status, 0);
  CHECK_INT(g.up_code, 0);
  CHECK_STR(g.up_id, "");
  CHECK_STR(g.up_error, "the daemon is stopping");
  CHECK_INT(g.retired_upload_rc, -1);
  CHECK_INT(blazebot_test_outcome(&th, id, &result), 1);
  CHECK_INT(result, BLAZEBOT_HANDLED); /* released by the plugin itself */
  CHECK(!blazebot_test_find_delivery(&th, id)->forced);
  CHECK_INT(blazebot_test_results_pending(&th), 0);
  CHECK_INT(g.after_shutdown, 0);
  CHECK_INT(th.violations, 0);

  CHECK_INT(load(&th), 0);
  CHECK_INT(
      blazebot_test_upload_script_ok(&th, "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb", 1000),
      0);
  CHECK_INT(deliver(&th, "upload reload", id), BLAZEBOT_HANDLED);
  CHECK_INT(blazebot_test_reload(&th, &whois_desc), 0);
  CHECK_STR(g.trace, "IMIUS");
  CHECK_INT(g.up_ok, 1);
  CHECK_STR(g.up_id, "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb");
  CHECK_INT(g.now_mono, 0); /* handed over at once */
  CHECK_INT(blazebot_test_upload(&th, 0)->answered, 1);
  CHECK_STR(blazebot_test_reply_text(&th, 0),
            "uploaded bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb");
  CHECK_INT(blazebot_test_outcome(&th, id, &result), 1);
  CHECK_INT(result, BLAZEBOT_HANDLED);
  CHECK_INT(blazebot_test_results_pending(&th), 0);
  CHECK_INT(g.nested, 0);
  CHECK_INT(th.violations, 0);
  blazebot_test_unload(&th);
  CHECK_INT(g.after_shutdown, 0);
}

int main(void) {
  char scratch[600];
  if (scratch_make("testing11", scratch, sizeof scratch) != 0) {
    perror("scratch");
    return 1;
  }
  /* The fake host's temporary state_dir folders go there. */
  setenv("TMPDIR", scratch, 1);
  test_abi();
  test_whois();
  test_api_scripts();
  test_send_results();
  test_holds();
  test_clock();
  test_state_dir(scratch);
  test_unload();
  test_reload();
  test_upload();
  test_upload_retire();
  {
    /* Every temporary folder is gone: only the test's own one is left. */
    char left[700];
    struct stat st;
    snprintf(left, sizeof left, "%s/own/counter", scratch);
    CHECK_INT(stat(left, &st), 0);
  }
  scratch_remove(scratch);
  return check_done("plugins.testing_11");
}
