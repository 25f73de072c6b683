/* SPDX-License-Identifier: MIT */
/*
 * fuzz_sim_request: what blazebot-sim (tests/sim/) reads from a client,
 * through its own parsing functions, without lws. The input is one of:
 *   - a gzip member (1f 8b ...): one WebSocket request frame as ws.c's
 *     handle_message gets it, inflated with the simulator's cap;
 *   - text starting with '{': WebSocket request frames, one JSON object
 *     per line, not compressed;
 *   - anything else: an HTTP request, "METHOD TARGET VERSION", header
 *     lines, an empty line, the body.
 * A frame is parsed by envelope_parse and handled by action the way ws.c
 * does: ACKNOWLEDGE_MESSAGE_RECEIPTS by store_check_acks then store_ack,
 * ACKNOWLEDGE_MESSAGE_RECEIPT, CREATE_MESSAGE by sent_parse then sent_add
 * and sent_reply_view; the reply is gzipped by ws_gzip_json and must
 * inflate and parse back with the request's id and action. An HTTP request
 * line is peeked from a socketpair by reqline_peek (when it has its line
 * end, so that the peek never waits) and taken by reqline_take, split by
 * reqline_split, routed by rest_route and files_is_path; its Authorization
 * header goes through http_auth_check, and so does a token signed here for
 * exactly that request (accepted once, then refused as a replay, and
 * refused for another uid); bodies of POST /acknowledgements, POST
 * /messages and POST /_sim/fault go through http_body_json,
 * store_check_acks, sent_parse and faults_parse like rest.c and http.c.
 * Each input gets a fresh simulator state.
 */
#include "sim.h"

#include <ctype.h>
#include <jansson.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "auth.h"
#include "envelope.h"
#include "fuzz.h"

static struct keystore bot, stranger;
static EVP_PKEY *bot_pub;
static struct codec *codec;
static struct buf inflated;

static void cleanup(void) {
  EVP_PKEY_free(bot.pkey);
  EVP_PKEY_free(bot_pub);
  codec_free(codec);
  buf_fini(&inflated);
}

static void init(void) {
  unsigned char seed[32];
  for (int i = 0; i < 32; i++)
    seed[i] = (unsigned char)(0xa5 ^ i * 13);
  bot = (struct keystore){.alg = KEYSTORE_ED25519,
                          .generation = 'C',
                          .user_id = "7e1c5b0a-93d2-4f6e-8a41-2b9c0d3e5f70",
                          .session_id = "c4a3b2d1-0e9f-4a8b-b7c6-d5e4f3a2b1c0"};
  bot.pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof seed);
  FUZZ_ASSERT(bot.pkey != NULL);
  bot_pub = keystore_public_key(&bot);
  FUZZ_ASSERT(bot_pub != NULL);
  /* The bot's key under another user's id. */
  stranger = bot;
  memcpy(stranger.user_id, "5d4c3b2a-1f0e-4d9c-8b7a-695847362514", UUID_STR_LEN);
  codec = codec_new(SIM_MAX_INFLATED, 3);
  FUZZ_ASSERT(codec != NULL);
  fuzz_std_fds();
  atexit(cleanup);
}

static struct sim *sim_new(void) {
  struct sim *sim = calloc(1, sizeof *sim);
  FUZZ_ASSERT(sim != NULL);
  sim->pub = bot_pub;
  memcpy(sim->bot_id, bot.user_id, UUID_STR_LEN);
  memcpy(sim->session_id, bot.session_id, UUID_STR_LEN);
  sim->codec = codec;
  FUZZ_ASSERT(store_init(sim) == 0);
  return sim;
}

static void sim_free(struct sim *sim) {
  store_fini(sim);
  reqline_fini(sim);
  buf_fini(&sim->scratch);
  free(sim);
}

/* ---- WebSocket ---- */

/* The reply as ws.c builds it, gzipped by ws_gzip_json: it must come back. */
static void reply(struct sim *sim, const struct envelope *env, json_t *data, int code) {
  json_t *o = json_pack("{s:s,s:s}", "id", env->id, "action", env->action);
  FUZZ_ASSERT(o != NULL);
  if (code)
    json_object_set_new(o, "error",
                        json_pack("{s:i,s:i,s:s}", "status", 202, "code", code,
                                  "description", "invalid field"));
  else if (data)
    json_object_set(o, "data", data);
  FUZZ_ASSERT(ws_gzip_json(sim, o, &sim->scratch) == 0);
  json_decref(o);
  FUZZ_ASSERT(sim->scratch.len >= LWS_PRE);
  buf_reset(&inflated);
  FUZZ_ASSERT(codec_inflate(codec, sim->scratch.data + LWS_PRE,
                            sim->scratch.len - LWS_PRE, &inflated) == CODEC_OK);
  struct envelope back;
  char err[256];
  FUZZ_ASSERT(envelope_parse(inflated.data, inflated.len, &back, err, sizeof err) == 0);
  FUZZ_ASSERT(strcmp(back.id, env->id) == 0 && strcmp(back.action, env->action) == 0);
  FUZZ_ASSERT(back.has_error == (code != 0) && back.error_code == code);
  FUZZ_ASSERT(!data || (back.data && json_equal(back.data, data)));
  envelope_fini(&back);
}

static void on_create(struct sim *sim, const struct envelope *env) {
  struct sim_sent s;
  char why[160];
  if (sent_parse(env->params, "ws", &s, why, sizeof why) < 0) {
    FUZZ_ASSERT(why[0] && s.data == NULL);
    reply(sim, env, NULL, 10002);
    return;
  }
  FUZZ_ASSERT(uuid_valid(s.message_id) && uuid_valid(s.conversation_id));
  FUZZ_ASSERT(!strpbrk(s.message_id, "ABCDEF") && s.category[0]);
  FUZZ_ASSERT(s.data && s.data[s.data_len] == 0);
  size_t before = sim->nsent;
  int dup;
  size_t idx = sent_add(sim, &s, &dup);
  FUZZ_ASSERT(idx < sim->nsent && sim->nsent == before + !dup && s.data == NULL);
  json_t *view = sent_reply_view(sim, &sim->sent[idx]);
  FUZZ_ASSERT(view != NULL);
  reply(sim, env, view, 0);
  json_decref(view);
}

static void ws_frame(struct sim *sim, const char *text, size_t len) {
  struct envelope env;
  char err[200], why[160];
  if (envelope_parse(text, len, &env, err, sizeof err) < 0) {
    FUZZ_ASSERT(err[0]);
    return;
  }
  if (!strcmp(env.action, "LIST_PENDING_MESSAGES")) {
    store_advance_unacked(sim);
    reply(sim, &env, NULL, 0);
  } else if (!strcmp(env.action, "ACKNOWLEDGE_MESSAGE_RECEIPTS")) {
    json_t *msgs = env.params ? json_object_get(env.params, "messages") : NULL;
    int code = store_check_acks(msgs, why, sizeof why);
    FUZZ_ASSERT(code == 0 || (code == 10002 && why[0]));
    size_t i;
    json_t *e;
    if (!code) {
      json_array_foreach(msgs, i, e) {
        store_ack(sim, json_string_value(json_object_get(e, "message_id")));
      }
    }
    reply(sim, &env, NULL, code);
  } else if (!strcmp(env.action, "ACKNOWLEDGE_MESSAGE_RECEIPT")) {
    json_t *id = env.params ? json_object_get(env.params, "message_id") : NULL;
    json_t *st = env.params ? json_object_get(env.params, "status") : NULL;
    int ok = json_is_string(id) && uuid_valid(json_string_value(id)) &&
             (!st || json_is_string(st));
    if (ok)
      store_ack(sim, json_string_value(id));
    reply(sim, &env, NULL, ok ? 0 : 10002);
  } else if (!strcmp(env.action, "CREATE_MESSAGE")) {
    on_create(sim, &env);
  } else {
    reply(sim, &env, NULL, 400);
  }
  envelope_fini(&env);
}

static void ws_gzip(struct sim *sim, const uint8_t *data, size_t size) {
  if (size > SIM_MAX_FRAME)
    return;
  buf_reset(&inflated);
  if (codec_inflate(codec, data, size, &inflated) != CODEC_OK)
    return;
  /* inflated is reused by reply(): parse a copy. */
  char *text = fuzz_strndup((const uint8_t *)inflated.data, inflated.len);
  ws_frame(sim, text, inflated.len);
  free(text);
}

static void ws_lines(struct sim *sim, const uint8_t *data, size_t size) {
  const char *p = (const char *)data, *end = p + size;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
    if (len)
      ws_frame(sim, p, len);
    p += len + 1;
  }
}

/* ---- HTTP ---- */

static int method_code(const char *m) {
  static const struct {
    const char *name;
    int code;
  } t[] = {{"GET", LWSHUMETH_GET},        {"POST", LWSHUMETH_POST},
           {"PUT", LWSHUMETH_PUT},        {"PATCH", LWSHUMETH_PATCH},
           {"DELETE", LWSHUMETH_DELETE},  {"HEAD", LWSHUMETH_HEAD},
           {"OPTIONS", LWSHUMETH_OPTIONS}};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    if (!strcmp(m, t[i].name))
      return t[i].code;
  return -1;
}

/* The request line as reqline.c records it at accept: from a socketpair
 * holding the input, when the peek cannot wait (a line end within the
 * limit, or the limit reached); else cut here the same way. NULL when the
 * line is refused (a NUL in it). */
static char *request_line(struct sim *sim, const uint8_t *data, size_t size) {
  size_t head = size < SIM_MAX_REQLINE ? size : SIM_MAX_REQLINE;
  const uint8_t *nl = memchr(data, '\n', head);
  if (nl || size >= SIM_MAX_REQLINE) {
    int sv[2];
    FUZZ_ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    FUZZ_ASSERT(write(sv[0], data, head) == (ssize_t)head);
    char *line = NULL, *again = NULL;
    FUZZ_ASSERT(reqline_peek(sim, sv[1]) == 0);
    int st = reqline_take(sim, sv[1], &line);
    /* A second request on the connection gets no line. */
    FUZZ_ASSERT(reqline_take(sim, sv[1], &again) == REQLINE_TAKEN && again == NULL);
    close(sv[0]);
    close(sv[1]);
    if (!nl) {
      FUZZ_ASSERT(st == REQLINE_TOO_LONG);
      return NULL;
    }
    size_t len = (size_t)(nl - data);
    if (len && data[len - 1] == '\r')
      len--;
    if (memchr(data, 0, len)) {
      FUZZ_ASSERT(st == REQLINE_BAD);
      return NULL;
    }
    FUZZ_ASSERT(st == REQLINE_SEEN && strlen(line) == len &&
                memcmp(line, data, len) == 0);
    return line;
  }
  if (memchr(data, 0, size))
    return NULL;
  return fuzz_strndup(data, size);
}

/* A token signed here for exactly this request: accepted once. */
static void signed_request(struct sim *sim, const char *method, const char *target,
                           const char *body, size_t blen) {
  char *tok = NULL, err[512];
  FUZZ_ASSERT(auth_sign(&bot, method, target, body, blen, 60, "fuzz-jti-1", &tok) == 0);
  size_t n = strlen(tok) + 16;
  char *authz = malloc(n);
  FUZZ_ASSERT(authz != NULL);
  snprintf(authz, n, "Bearer %s", tok);
  FUZZ_ASSERT(http_auth_check(sim, authz, method, target, body, blen, err, sizeof err) ==
              0);
  FUZZ_ASSERT(http_auth_check(sim, authz, method, target, body, blen, err, sizeof err) ==
              -1);
  FUZZ_ASSERT(strstr(err, "already used") != NULL);
  free(tok);
  FUZZ_ASSERT(auth_sign(&stranger, method, target, body, blen, 60, "fuzz-jti-2", &tok) ==
              0);
  snprintf(authz, n, "Bearer %s", tok);
  FUZZ_ASSERT(http_auth_check(sim, authz, method, target, body, blen, err, sizeof err) ==
              -1);
  FUZZ_ASSERT(strncmp(err, "uid ", 4) == 0);
  free(tok);
  free(authz);
}

static void rest_body(struct sim *sim, const struct http_req *r) {
  char why[200];
  json_t *root = http_body_json(r);
  if (r->endpoint == EP_ACKNOWLEDGEMENTS && root) {
    int code = store_check_acks(root, why, sizeof why);
    FUZZ_ASSERT(code == 0 || (code == 10002 && why[0]));
    size_t i;
    json_t *e;
    if (!code) {
      json_array_foreach(root, i, e) {
        store_ack(sim, json_string_value(json_object_get(e, "message_id")));
      }
    }
  } else if (r->endpoint == EP_MESSAGES && root) {
    size_t n = json_array_size(root);
    for (size_t i = 0; json_is_array(root) && n <= SIM_MAX_BATCH && i < n; i++) {
      struct sim_sent s;
      if (sent_parse(json_array_get(root, i), "rest", &s, why, sizeof why) < 0)
        break;
      int dup;
      FUZZ_ASSERT(sent_add(sim, &s, &dup) < sim->nsent);
    }
  } else if (r->method == LWSHUMETH_POST && !strcmp(r->path, "/_sim/fault")) {
    const char *spec = json_string_value(json_object_get(root, "fault"));
    struct sim_fault f;
    if (spec && faults_parse(spec, &f, why, sizeof why) == 0) {
      FUZZ_ASSERT(f.kind >= FAULT_DROP && f.kind <= FAULT_API_SLOW);
      faults_arm(sim, &f);
    } else if (spec) {
      FUZZ_ASSERT(why[0]);
    }
  }
  json_decref(root);
}

static void http_request(struct sim *sim, const uint8_t *data, size_t size) {
  char *line = request_line(sim, data, size);
  if (!line)
    return;
  const uint8_t *nl = memchr(data, '\n', size);
  const char *rest = nl ? (const char *)nl + 1 : (const char *)data + size;
  const char *end = (const char *)data + size;
  const char *method, *target, *version;
  if (reqline_split(line, &method, &target, &version) < 0 || target[0] != '/') {
    free(line);
    return;
  }
  FUZZ_ASSERT(!strncmp(version, "HTTP/", 5) &&
              strspn(method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == strlen(method));

  /* Header lines up to an empty one; the rest is the body. */
  char *authz = NULL;
  while (rest < end) {
    const char *e = memchr(rest, '\n', (size_t)(end - rest));
    size_t len = e ? (size_t)(e - rest) : (size_t)(end - rest);
    const char *next = e ? e + 1 : end;
    if (len && rest[len - 1] == '\r')
      len--;
    if (!len) {
      rest = next;
      break;
    }
    if (len > 14 && !strncasecmp(rest, "Authorization:", 14) && !authz) {
      const char *v = rest + 14;
      authz = fuzz_strndup((const uint8_t *)v, len - 14);
    }
    rest = next;
  }
  const char *body = rest;
  size_t blen = (size_t)(end - rest);

  struct http_req r;
  memset(&r, 0, sizeof r);
  r.method = method_code(method);
  size_t plen = strcspn(target, "?");
  if (plen < sizeof r.path) {
    memcpy(r.path, target, plen);
    r.path[plen] = 0;
    r.endpoint = rest_route(&r);
    FUZZ_ASSERT(r.endpoint >= -1 && r.endpoint < SIM_EP_COUNT);
    if (files_is_path(r.path))
      FUZZ_ASSERT(r.endpoint == -1);
    char err[512];
    if (http_auth_check(sim, authz, method, target, body, blen, err, sizeof err) < 0)
      FUZZ_ASSERT(err[0]);
    signed_request(sim, method, target, body, blen);
    if (blen <= SIM_MAX_BODY) {
      r.body.data = (char *)body;
      r.body.len = blen;
      rest_body(sim, &r);
    }
  }
  free(authz);
  free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!codec)
    init();
  struct sim *sim = sim_new();
  if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b)
    ws_gzip(sim, data, size);
  else if (size && data[0] == '{')
    ws_lines(sim, data, size);
  else if (size)
    http_request(sim, data, size);
  sim_free(sim);
  buf_fini(&inflated);
  return 0;
}
