/* SPDX-License-Identifier: MIT */
/*
 * fuzz_answer: answers to the daemon's requests, as core/session.c matches
 * them: every frame is read by envelope_scan (core/jscan.c, no tree) and,
 * when it has an id, handed to pending_answer (core/pending.c), whose owner
 * reads it the way its real owner does: LIST_PENDING_MESSAGES (the session:
 * an error, a 401), CREATE_MESSAGE (the outbox: accepted, retryable with
 * backoff, or refused for good; a retry is a new request from inside the
 * callback) and ACKNOWLEDGE_MESSAGE_RECEIPTS (acks: a refused batch switches
 * to REST). The input is one frame (inflated JSON) per line; a line
 * "!e<digit>", "!d", "!r" or "!f" instead expires the requests due by then,
 * disowns the acks' requests, refreshes deadlines, or fails everything (a
 * reconnect, which sends the requests again). Checked: every request ends
 * exactly once (answer, deadline, disown or failure), and an owner gets the
 * answer with its own id and without an error code when it has no error
 * object. Each line is also read by jansson, and the two readings must
 * agree: jscan accepts what jansson accepts (but nesting deeper than
 * JSCAN_MAX_DEPTH) and only that (but numbers out of jansson's range), each
 * member jscan hands out is the text of the value jansson has under that
 * key, with the same string or integer decoded, and envelope_scan reads the
 * id, action, error and data that envelope_parse reads (short strings, no
 * repeated keys). Last, the frame's id, action and params go back through
 * envelope_request (the request writer, which copies plain ids itself) and
 * parse to the same.
 */
#include <jansson.h>
#include <string.h>

#include "buf.h"
#include "envelope.h"
#include "fuzz.h"
#include "jscan.h"
#include "pending.h"

/* The ids of the requests in flight (what session_request made). */
#define ID_LIST "0a6e2a2c-8a5b-4c3d-9e1f-0000000000a1"
#define ID_CREATE1 "0a6e2a2c-8a5b-4c3d-9e1f-0000000000c1"
#define ID_CREATE2 "0a6e2a2c-8a5b-4c3d-9e1f-0000000000c2"
#define ID_ACKS "0a6e2a2c-8a5b-4c3d-9e1f-0000000000b1"

enum { ERR_DISCONNECTED = -1, ERR_TIMEOUT = -2, ERR_HELD = -5 };

struct owner {
  const char *id;
  int64_t deadline;
  int issued, ended; /* requests made, callbacks run */
  int retries, accepted, refused, auth_failures, to_rest;
};

static struct pending_table *table;
static struct owner list_o, create1_o, create2_o, acks_o;

static void issue(struct owner *o, pending_fn cb) {
  struct pending *p = pending_new(table, o->id);
  FUZZ_ASSERT(p != NULL);
  pending_add(table, p, o->deadline, cb, o);
  o->issued++;
}

/* What every owner checks first. Returns 1 when there is an answer. */
static int got(struct owner *o, const struct envelope *env, int err) {
  o->ended++;
  FUZZ_ASSERT(o->ended <= o->issued);
  if (err < 0) {
    FUZZ_ASSERT(env == NULL);
    return 0;
  }
  FUZZ_ASSERT(err == 0 && env != NULL && strcmp(env->id, o->id) == 0);
  FUZZ_ASSERT(env->has_error || (!env->error_code && !env->error_status));
  FUZZ_ASSERT(strlen(env->error_description) < (size_t)-1);
  return 1;
}

/* core/session.c on_list_reply */
static void on_list(void *ud, const struct envelope *env, int err) {
  struct owner *o = ud;
  if (got(o, env, err) && env->has_error && env->error_code == 401)
    o->auth_failures++;
}

/* core/outbox.c retryable and on_reply_settle */
static int retryable(int code) {
  return code == 401 || code == 429 || code == 7000 || code == 7001 ||
         (code >= 500 && code < 600);
}

static void on_create(void *ud, const struct envelope *env, int err) {
  struct owner *o = ud;
  int retry = 0;
  if (!got(o, env, err)) {
    retry = err != ERR_HELD; /* held: it goes over REST instead */
  } else if (env->has_error) {
    int code = env->error_code ? env->error_code : env->error_status;
    if (retryable(code))
      retry = 1;
    else
      o->refused++;
  } else {
    o->accepted++;
  }
  /* Sent again from inside the callback, as the outbox may (bounded here). */
  if (retry && o->retries < 3) {
    o->retries++;
    issue(o, on_create);
  }
}

/* core/acks.c on_ws_reply */
static void on_acks(void *ud, const struct envelope *env, int err) {
  struct owner *o = ud;
  if (got(o, env, err) && env->has_error)
    o->to_rest = 1;
}

static void issue_all(void) {
  issue(&list_o, on_list);
  issue(&create1_o, on_create);
  issue(&create2_o, on_create);
  issue(&acks_o, on_acks);
}

static void control(const char *line, size_t len) {
  char c = len > 1 ? line[1] : 0;
  if (c == 'e') {
    int64_t now = len > 2 && line[2] >= '0' && line[2] <= '9' ? (line[2] - '0') * 10 : 0;
    pending_expire(table, now, ERR_TIMEOUT, NULL, NULL);
  } else if (c == 'd') {
    pending_disown(table, on_acks, ERR_HELD);
  } else if (c == 'r') {
    pending_refresh(table, 50);
  } else if (c == 'f') {
    pending_fail_all(table, ERR_DISCONNECTED);
    issue_all();
  }
}

/* The request writer on what the frame holds: it must parse back. */
static void request_round_trip(const struct envelope *env) {
  struct buf b = {0};
  if (envelope_request(&b, env->id, env->action, env->params) < 0) {
    buf_fini(&b);
    return;
  }
  struct envelope back;
  char err[256];
  FUZZ_ASSERT(envelope_parse(b.data, b.len, &back, err, sizeof err) == 0);
  FUZZ_ASSERT(strcmp(back.id, env->id) == 0);
  FUZZ_ASSERT(strcmp(back.action, env->action) == 0);
  FUZZ_ASSERT(env->params ? back.params && json_equal(back.params, env->params)
                          : back.params == NULL);
  envelope_fini(&back);
  buf_fini(&b);
}

/* ---- jscan against jansson ---- */

struct member {
  const char *key, *val;
  size_t klen, vlen;
  int kesc, type;
};

struct members {
  struct member *m;
  size_t n, cap;
};

static int collect(void *ud, const char *key, size_t klen, int kesc, const char *val,
                   size_t vlen, int type) {
  struct members *ms = ud;
  if (ms->n == ms->cap) {
    ms->cap = ms->cap ? 2 * ms->cap : 16;
    ms->m = realloc(ms->m, ms->cap * sizeof *ms->m);
    FUZZ_ASSERT(ms->m != NULL);
  }
  ms->m[ms->n++] = (struct member){key, val, klen, vlen, kesc, type};
  return 0;
}

/* The nesting of v: 1 for a scalar or an empty container. */
static int depth(json_t *v) {
  int d = 0;
  size_t i;
  const char *k;
  json_t *e;
  if (json_is_object(v)) {
    json_object_foreach(v, k, e) {
      int de = depth(e);
      d = de > d ? de : d;
    }
  } else if (json_is_array(v)) {
    json_array_foreach(v, i, e) {
      int de = depth(e);
      d = de > d ? de : d;
    }
  }
  return d + 1;
}

/* A member as jscan gives it against jansson's value for its key. */
static void same_member(const struct member *m, const char *key, json_t *jv) {
  FUZZ_ASSERT(jv != NULL);
  switch (m->type) {
  case JSCAN_OBJECT:
    FUZZ_ASSERT(json_is_object(jv));
    break;
  case JSCAN_ARRAY:
    FUZZ_ASSERT(json_is_array(jv));
    break;
  case JSCAN_STRING:
    FUZZ_ASSERT(json_is_string(jv));
    break;
  case JSCAN_NUMBER:
    FUZZ_ASSERT(json_is_number(jv));
    break;
  default:
    FUZZ_ASSERT(m->type == JSCAN_LITERAL && (json_is_boolean(jv) || json_is_null(jv)));
  }
  json_t *slice = json_loadb(m->val, m->vlen, JSON_DECODE_ANY, NULL);
  FUZZ_ASSERT(slice != NULL && json_equal(slice, jv));
  json_decref(slice);
  if (m->type == JSCAN_STRING) {
    char *buf = malloc(m->vlen + 5);
    FUZZ_ASSERT(buf != NULL);
    long n = jscan_string(m->val, m->vlen, buf, m->vlen + 5);
    FUZZ_ASSERT(n >= 0 && (size_t)n == json_string_length(jv));
    FUZZ_ASSERT(memcmp(buf, json_string_value(jv), (size_t)n) == 0);
    free(buf);
  }
  long long v;
  if (m->type == JSCAN_NUMBER && json_is_integer(jv))
    FUZZ_ASSERT(jscan_int(m->val, m->vlen, &v) == 0 && v == json_integer_value(jv));
  else
    FUZZ_ASSERT(jscan_int(m->val, m->vlen, &v) == -1);
  if (strlen(key) < 48)
    FUZZ_ASSERT(jscan_key_is(m->key, m->klen, m->kesc, key) == 1);
  FUZZ_ASSERT(jscan_key_is(m->key, m->klen, m->kesc, "id") == !strcmp(key, "id"));
}

static void jscan_vs_jansson(const char *text, size_t len) {
  json_error_t je;
  json_t *root = json_loadb(text, len, 0, &je);
  struct members ms = {0};
  size_t where = 0;
  int rc = jscan_object(text, len, collect, &ms, &where);
  if (rc < 0) {
    FUZZ_ASSERT(where <= len);
    /* jansson allows deeper nesting (2048), and it drops a NUL byte that
     * follows a number ({"a":1\0} loads): jscan refuses every NUL byte. */
    FUZZ_ASSERT(!json_is_object(root) || depth(root) > JSCAN_MAX_DEPTH ||
                memchr(text, 0, len));
  } else if (!root) {
    /* jscan does not read numbers: jansson's ranges are its own */
    FUZZ_ASSERT(strstr(je.text, "too big") || strstr(je.text, "overflow"));
  } else {
    FUZZ_ASSERT(rc == 0 && json_is_object(root));
    /* Each key's last member is the one jansson keeps. */
    json_t *seen = json_object();
    for (size_t i = ms.n; i-- > 0;) {
      const struct member *m = &ms.m[i];
      char *key = malloc(m->klen + 5);
      FUZZ_ASSERT(key != NULL);
      FUZZ_ASSERT(jscan_string(m->key, m->klen, key, m->klen + 5) >= 0);
      if (!json_object_get(seen, key)) {
        same_member(m, key, json_object_get(root, key));
        json_object_set_new(seen, key, json_true());
      }
      free(key);
    }
    FUZZ_ASSERT(json_object_size(seen) == json_object_size(root));
    json_decref(seen);
  }
  free(ms.m);
  json_decref(root);
}

/* ---- envelope_scan against envelope_parse ---- */

/* s as envelope_scan keeps it: short strings only (it has fixed room). */
static int short_str(const char *s) {
  return strlen(s) < 40;
}

static void same_envelope(const char *text, size_t len, const struct envelope *sc,
                          const struct envelope *tr) {
  /* With a repeated key the two may keep different occurrences. */
  json_t *strict = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
  if (!strict)
    return;
  json_decref(strict);
  if (short_str(tr->action))
    FUZZ_ASSERT(strcmp(sc->action, tr->action) == 0);
  if (short_str(tr->id))
    FUZZ_ASSERT(strcmp(sc->id, tr->id) == 0);
  FUZZ_ASSERT(sc->has_error == tr->has_error);
  FUZZ_ASSERT(sc->error_code == tr->error_code && sc->error_status == tr->error_status);
  /* envelope_parse takes "description" whenever it is a string, even "";
   * envelope_scan takes "desciption" then: compare when they agree. */
  if (tr->error_description[0] && short_str(tr->error_description))
    FUZZ_ASSERT(strcmp(sc->error_description, tr->error_description) == 0);
  FUZZ_ASSERT((sc->data_raw != NULL) == json_is_object(tr->data));
  if (sc->data_raw) {
    json_t *d = json_loadb(sc->data_raw, sc->data_raw_len, 0, NULL);
    FUZZ_ASSERT(d != NULL && json_equal(d, tr->data));
    json_decref(d);
    json_t *src = json_object_get(tr->data, "source");
    if (json_is_string(src) && short_str(json_string_value(src)))
      FUZZ_ASSERT(strcmp(sc->data_source, json_string_value(src)) == 0);
    else if (!json_is_string(src))
      FUZZ_ASSERT(sc->data_source[0] == 0);
  }
}

static void frame(const char *line, size_t len) {
  struct envelope sc, tr;
  char err[256], err2[256];
  int rs = envelope_scan(line, len, &sc, err, sizeof err);
  int rt = envelope_parse(line, len, &tr, err2, sizeof err2);
  if (rs < 0)
    FUZZ_ASSERT(err[0] && !sc.id[0] && !sc.action[0] && !sc.data_raw);
  if (rt < 0)
    FUZZ_ASSERT(err2[0] && tr.root == NULL);
  /* core/session.c handle_frame: an id-matched frame ends its request. */
  if (rs == 0 && sc.id[0])
    pending_answer(table, sc.id, &sc);
  jscan_vs_jansson(line, len);
  if (rs == 0 && rt == 0)
    same_envelope(line, len, &sc, &tr);
  if (rt == 0) {
    request_round_trip(&tr);
    envelope_fini(&tr);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  table = calloc(1, sizeof *table);
  FUZZ_ASSERT(table != NULL);
  list_o = (struct owner){.id = ID_LIST, .deadline = 10};
  create1_o = (struct owner){.id = ID_CREATE1, .deadline = 30};
  create2_o = (struct owner){.id = ID_CREATE2, .deadline = 60};
  acks_o = (struct owner){.id = ID_ACKS, .deadline = 90};
  issue_all();

  const char *p = (const char *)data, *end = p + size;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
    if (len && p[0] == '!')
      control(p, len);
    else if (len)
      frame(p, len);
    p += len + 1;
  }

  /* The link goes down: whatever is left ends now (retries made meanwhile
   * stay in the table and end in the next round). */
  for (int round = 0; table->n; round++) {
    FUZZ_ASSERT(round < 8);
    pending_fail_all(table, ERR_DISCONNECTED);
  }
  struct owner *all[] = {&list_o, &create1_o, &create2_o, &acks_o};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    FUZZ_ASSERT(all[i]->ended == all[i]->issued);
  pending_fini(table);
  free(table);
  return 0;
}
