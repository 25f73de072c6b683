/* SPDX-License-Identifier: MIT */
/*
 * fuzz_frame: one binary WebSocket message as core/session.c receives it,
 * down to what a plugin sees. The input is the frame's bytes: it is skipped
 * over max_frame_bytes as the session skips it, inflated by the codec with
 * the daemon's own cap (the default max_frame_bytes of a loaded ini), read
 * by envelope_scan, and the data object of a CREATE_MESSAGE push that is
 * not a receipt built into a message by envelope_message_raw (what
 * handle_frame and ingress_push do; here every data object is built). The
 * message becomes the struct blazebot_message a plugin gets, field for field
 * as core/router.c fills it (router_route needs loaded plugins and a
 * dispatch pool, so the mapping is repeated here), every byte of it is read
 * as a plugin may, and the reply a plugin would make to it (ids derived as
 * core/host.c derives them) goes through outbox_send's checks and copy. The
 * frame is also read the simulator's way, by envelope_parse and
 * envelope_message on jansson's tree, and when both readings succeed on a
 * frame without repeated keys they give the same message. Checked on the
 * way: the inflated text is NUL-terminated within the cap, a small frame
 * deflates and inflates back to itself, a message's required ids are
 * UUIDs, its data is NUL-terminated, its raw_json is the data object as
 * sent, and a reply to it is accepted. Under libFuzzer a custom mutator
 * mostly mutates the JSON inside the gzip member and compresses it again
 * (byte mutations of gzip rarely stay gzip), and sometimes the compressed
 * bytes themselves.
 */
#include <blazebot/plugin.h>

#include <jansson.h>
#include <string.h>

#include "buf.h"
#include "codec.h"
#include "config.h"
#include "envelope.h"
#include "fuzz.h"
#include "outbox.h"
#include "util.h"

static const struct config *cfg;
static struct codec *codec;
static struct buf inflated, deflated, again;

static void cleanup(void) {
  codec_free(codec);
  buf_fini(&inflated);
  buf_fini(&deflated);
  buf_fini(&again);
  config_free(cfg);
}

static void init(void) {
  static const char ini[] = "[blazebot]\nkeystore = keystore.json\n";
  struct fuzz_file f;
  fuzz_file_open(&f, "fuzz_frame.ini");
  fuzz_file_write(&f, ini, sizeof ini - 1);
  struct config *c = NULL;
  FUZZ_ASSERT(config_load(f.path, &c) == 0);
  close(f.fd);
  cfg = c;
  codec = codec_new(cfg->max_frame_bytes, 3);
  FUZZ_ASSERT(codec != NULL);
  atexit(cleanup);
}

/* Reads every byte of s as a plugin may (strlen, then each character). */
static unsigned long touch(const char *s) {
  FUZZ_ASSERT(s != NULL);
  unsigned long h = strlen(s);
  for (; *s; s++)
    h = h * 31 + (unsigned char)*s;
  return h;
}

/* The view of core/router.c's router_route, and what a plugin reads of it. */
static void plugin_view(const struct message *m) {
  struct blazebot_message v = {
      .size = sizeof(struct blazebot_message),
      .attempt = 1,
      .message_id = m->message_id,
      .conversation_id = m->conversation_id,
      .user_id = m->user_id,
      .representative_id = m->representative_id,
      .quote_message_id = m->quote_message_id,
      .session_id = m->session_id,
      .category = m->category,
      .source = m->source,
      .status = m->status,
      .created_at = m->created_at,
      .updated_at = m->updated_at,
      .data = m->data,
      .data_len = m->data_len,
      .raw_json = m->raw_json,
      .raw_json_len = m->raw_json_len,
  };
  const char *strs[] = {v.message_id,        v.conversation_id,  v.user_id,
                        v.representative_id, v.quote_message_id, v.session_id,
                        v.category,          v.source,           v.status,
                        v.created_at,        v.updated_at,       v.raw_json};
  unsigned long h = 0;
  for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
    h ^= touch(strs[i]);
  FUZZ_ASSERT(uuid_valid(v.message_id) && uuid_valid(v.conversation_id) &&
              uuid_valid(v.user_id));
  FUZZ_ASSERT(v.category[0] != 0);
  FUZZ_ASSERT(v.data[v.data_len] == 0);
  for (size_t i = 0; i < v.data_len; i++)
    h = h * 33 + v.data[i];
  FUZZ_ASSERT(strlen(v.raw_json) == v.raw_json_len);
  (void)h;

  /* Ids a plugin gets from the host for this message: a derived reply id
   * (core/host.c derive_id) and the 1:1 conversation with the sender. */
  char reply_id[UUID_STR_LEN], conv[UUID_STR_LEN];
  FUZZ_ASSERT(uuid_derive(v.message_id, "fuzz", 1, reply_id) == 0);
  FUZZ_ASSERT(uuid_valid(reply_id));
  FUZZ_ASSERT(uuid_unique_conversation(v.user_id, v.conversation_id, conv) == 0);

  /* An echo of it as core/host.c svc_reply sends it (-> ingress_send ->
   * outbox_send): the message's conversation and sender, the derived id,
   * its category and data. */
  struct outbox *o = outbox_new(cfg, NULL, NULL, NULL, NULL, NULL, NULL);
  FUZZ_ASSERT(o != NULL);
  struct outbox_msg out = {.conversation_id = v.conversation_id,
                           .recipient_id = v.user_id,
                           .category = v.category,
                           .data = v.data,
                           .len = v.data_len,
                           .message_id = reply_id};
  char id[UUID_STR_LEN];
  int rc = outbox_send(o, &out, NULL, id, 0);
  /* -2 is "full" or out of memory: neither can happen to a fresh outbox. A
   * refusal (-1) needs a category over 64 bytes or data near 96 KiB. */
  FUZZ_ASSERT(rc == 0 || rc == -1);
  if (strlen(v.category) <= 64 && v.data_len <= 64 * 1024)
    FUZZ_ASSERT(rc == 0);
  if (rc == 0)
    FUZZ_ASSERT(strcmp(id, reply_id) == 0);
  FUZZ_ASSERT(outbox_outstanding(o) == (rc == 0 ? 1u : 0u));
  outbox_free(o);
}

/* What both message builders guarantee; rc is theirs. */
static void check_message(int rc, const struct message *m, const char *mid,
                          const char *err) {
  if (rc < 0) {
    FUZZ_ASSERT(m == NULL && err[0]);
    /* The id of a poison message, for its acknowledgement. */
    FUZZ_ASSERT(!mid[0] || uuid_valid(mid));
    return;
  }
  FUZZ_ASSERT(rc == 0 && m != NULL && strcmp(mid, m->message_id) == 0);
}

static void same_message(const struct message *a, const struct message *b) {
  const char *fa[] = {a->message_id,        a->conversation_id,  a->user_id,
                      a->representative_id, a->quote_message_id, a->session_id,
                      a->category,          a->source,           a->status,
                      a->created_at,        a->updated_at};
  const char *fb[] = {b->message_id,        b->conversation_id,  b->user_id,
                      b->representative_id, b->quote_message_id, b->session_id,
                      b->category,          b->source,           b->status,
                      b->created_at,        b->updated_at};
  for (size_t i = 0; i < sizeof fa / sizeof fa[0]; i++)
    FUZZ_ASSERT(strcmp(fa[i], fb[i]) == 0);
  FUZZ_ASSERT(a->data_len == b->data_len && memcmp(a->data, b->data, a->data_len) == 0);
}

static void frame_json(const char *text, size_t len) {
  struct envelope sc, tr;
  char err[256], err2[256], mid[64] = "", mid2[64] = "";
  int rs = envelope_scan(text, len, &sc, err, sizeof err);
  int rt = envelope_parse(text, len, &tr, err2, sizeof err2);
  struct message *m = NULL, *mt = NULL;
  int rcm = 1, rct = 1;
  if (rs < 0) {
    FUZZ_ASSERT(err[0] && !sc.data_raw);
  } else {
    /* What core/session.c handle_frame reads of every frame. */
    (void)(touch(sc.id) ^ touch(sc.action) ^ touch(sc.error_description) ^
           touch(sc.data_source));
    FUZZ_ASSERT(sc.has_error || (sc.error_code == 0 && sc.error_status == 0));
  }
  if (rs == 0 && sc.data_raw) {
    rcm = envelope_message_raw(sc.data_raw, sc.data_raw_len, &m, mid, err, sizeof err);
    check_message(rcm, m, mid, err);
    if (m)
      FUZZ_ASSERT(m->raw_json_len == sc.data_raw_len &&
                  memcmp(m->raw_json, sc.data_raw, sc.data_raw_len) == 0);
  }
  if (rt < 0) {
    FUZZ_ASSERT(err2[0] && tr.root == NULL);
  } else if (tr.data) {
    rct = envelope_message(tr.data, &mt, mid2, err2, sizeof err2);
    check_message(rct, mt, mid2, err2);
    if (mt) {
      json_t *back = json_loadb(mt->raw_json, mt->raw_json_len, 0, NULL);
      FUZZ_ASSERT(back != NULL && json_equal(back, tr.data));
      json_decref(back);
    }
  }
  json_t *strict =
      rs == 0 && rt == 0 ? json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
  if (strict) {
    /* The same frame, the same message (a repeated key may be read from
     * another of its occurrences, so such frames are left out). */
    FUZZ_ASSERT((sc.data_raw != NULL) == json_is_object(tr.data));
    if (sc.data_raw) {
      FUZZ_ASSERT(rcm == rct && strcmp(mid, mid2) == 0);
      if (m)
        same_message(m, mt);
    }
    json_decref(strict);
  }
  if (m)
    plugin_view(m);
  else if (mt)
    plugin_view(mt);
  free(m);
  free(mt);
  if (rt == 0)
    envelope_fini(&tr);
}

#ifdef BLAZEBOT_LIBFUZZER
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
                               unsigned int seed);

static struct buf mut_text, mut_gz;

static void mutator_cleanup(void) {
  buf_fini(&mut_text);
  buf_fini(&mut_gz);
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
                               unsigned int seed) {
  if (!codec) {
    init();
    atexit(mutator_cleanup);
  }
  if (seed % 8 == 0)
    return LLVMFuzzerMutate(data, size, max_size);
  /* The JSON inside (or the bytes as they are, when they are not gzip). */
  buf_reset(&mut_text);
  if (codec_inflate(codec, data, size, &mut_text) != CODEC_OK ||
      mut_text.len > 64 * 1024) {
    buf_reset(&mut_text);
    FUZZ_ASSERT(buf_append(&mut_text, data, size) == 0);
  }
  size_t room = 4 * max_size + 64;
  FUZZ_ASSERT(buf_reserve(&mut_text, room) == 0);
  size_t n =
      LLVMFuzzerMutate((uint8_t *)mut_text.data, mut_text.len, mut_text.len + room);
  buf_reset(&mut_gz);
  if (codec_deflate(codec, mut_text.data, n, &mut_gz) != CODEC_OK ||
      mut_gz.len > max_size)
    return LLVMFuzzerMutate(data, size, max_size);
  memcpy(data, mut_gz.data, mut_gz.len);
  return mut_gz.len;
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!codec)
    init();
  /* core/session.c on_receive: a message over the cap is skipped unread. */
  if (size > cfg->max_frame_bytes)
    return 0;
  buf_reset(&inflated);
  int rc = codec_inflate(codec, data, size, &inflated);
  if (rc != CODEC_OK) {
    FUZZ_ASSERT(rc == CODEC_EFORMAT || rc == CODEC_ETOOBIG);
    buf_fini(&inflated);
    return 0;
  }
  FUZZ_ASSERT(inflated.len <= cfg->max_frame_bytes);
  FUZZ_ASSERT(inflated.data && inflated.data[inflated.len] == 0);
  if (inflated.len <= 64 * 1024) {
    buf_reset(&deflated);
    buf_reset(&again);
    FUZZ_ASSERT(codec_deflate(codec, inflated.data, inflated.len, &deflated) == CODEC_OK);
    FUZZ_ASSERT(codec_inflate(codec, deflated.data, deflated.len, &again) == CODEC_OK);
    FUZZ_ASSERT(again.len == inflated.len &&
                memcmp(again.data, inflated.data, inflated.len) == 0);
  }

  frame_json(inflated.data, inflated.len);
  /* The session keeps its buffers between frames; here each input starts
   * from none, so that a run does not depend on the inputs before it. */
  buf_fini(&inflated);
  buf_fini(&deflated);
  buf_fini(&again);
  return 0;
}
