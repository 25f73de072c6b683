/* SPDX-License-Identifier: MIT */
/*
 * test_envelope: a real-looking pushed message (the KT MsgData sample of
 * protocol.md §3.5) parses into a message view with the right fields and
 * payload; data_base64 wins over data; both base64 alphabets work; bad
 * frames are refused with the right code and a poison message still yields
 * its id for the ack; requests serialise to JSON that parses back. Finally
 * 20k random mutations of a valid frame must never crash (run under ASan).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "check.h"
#include "envelope.h"

#define MID "f3815c2a-4d2b-4f4e-9a55-8c9a1c2d3e4f"
#define CID "534d9d1e-3a4b-4c5d-8e6f-7a8b9c0d1e2f"
#define UID "53ba1c2d-1111-4222-8333-944455566677"
#define SID "6ab6c7d8-aaaa-4bbb-8ccc-ddddeeeeffff"
#define FID "0d7c3e4f-5a6b-4c7d-9e8f-90a1b2c3d4e5"

/* The data object of the sample, compact, as the server sends it. */
#define SAMPLE_DATA                                                                      \
  "{\"type\":\"message\",\"representative_id\":\"\",\"quote_message_id\":\"\","          \
  "\"conversation_id\":\"" CID "\",\"user_id\":\"" UID "\",\"session_id\":\"" SID "\","  \
  "\"message_id\":\"" MID "\",\"category\":\"PLAIN_TEXT\",\"data\":\"YWJj\","            \
  "\"data_base64\":\"YWJj\",\"status\":\"SENT\",\"source\":\"CREATE_MESSAGE\","          \
  "\"silent\":false,\"expire_in\":0,\"created_at\":\"2023-04-28T10:01:32.387507Z\","     \
  "\"updated_at\":\"2023-04-28T10:01:32.387507Z\"}"
#define SAMPLE_FRAME                                                                     \
  "{\"id\":\"" FID "\",\"action\":\"CREATE_MESSAGE\",\"data\":" SAMPLE_DATA "}"

/* Parses frame and builds its message; returns the envelope_message code. */
static int build(const char *frame, struct message **m, char mid[64], char *err,
                 size_t errlen) {
  struct envelope env;
  *m = NULL;
  if (envelope_parse(frame, strlen(frame), &env, err, errlen) != 0)
    return 99;
  int rc = envelope_message(env.data, m, mid, err, errlen);
  envelope_fini(&env);
  return rc;
}

static void test_sample(void) {
  struct envelope env;
  char err[256];
  CHECK_INT(envelope_parse(SAMPLE_FRAME, strlen(SAMPLE_FRAME), &env, err, sizeof err), 0);
  CHECK_STR(env.id, FID);
  CHECK_STR(env.action, "CREATE_MESSAGE");
  CHECK(env.data != NULL && json_is_object(env.data));
  CHECK(env.params == NULL);
  CHECK_INT(env.has_error, 0);
  CHECK_STR(env.error_description, "");

  struct message *m = NULL;
  char mid[64] = "junk";
  CHECK_INT(envelope_message(env.data, &m, mid, err, sizeof err), 0);
  CHECK_STR(mid, MID);
  CHECK(m != NULL);
  if (m) {
    CHECK_STR(m->message_id, MID);
    CHECK_STR(m->conversation_id, CID);
    CHECK_STR(m->user_id, UID);
    CHECK_STR(m->representative_id, "");
    CHECK_STR(m->quote_message_id, "");
    CHECK_STR(m->session_id, SID);
    CHECK_STR(m->category, "PLAIN_TEXT");
    CHECK_STR(m->source, "CREATE_MESSAGE");
    CHECK_STR(m->status, "SENT");
    CHECK_STR(m->created_at, "2023-04-28T10:01:32.387507Z");
    CHECK_STR(m->updated_at, "2023-04-28T10:01:32.387507Z");
    CHECK_INT(m->data_len, 3);
    CHECK(memcmp(m->data, "abc", 4) == 0); /* NUL-terminated too */
    /* raw_json is the compact dump, here byte for byte what was sent. */
    char *dump = json_dumps(env.data, JSON_COMPACT);
    CHECK_STR(m->raw_json, dump);
    CHECK_INT(m->raw_json_len, strlen(dump));
    CHECK_STR(m->raw_json, SAMPLE_DATA);
    free(dump);
    CHECK_INT(m->received_ms, 0);
    /* Everything lives in the one block: the envelope can go first. */
    envelope_fini(&env);
    CHECK_STR(m->message_id, MID);
    CHECK_STR(m->raw_json, SAMPLE_DATA);
    free(m);
  } else {
    envelope_fini(&env);
  }
}

/* A message frame with the given extra members after the required ones. */
static void frame_with(char *out, size_t cap, const char *mid, const char *extra) {
  snprintf(out, cap,
           "{\"id\":\"" FID
           "\",\"action\":\"CREATE_MESSAGE\",\"data\":{\"message_id\":\"%s\","
           "\"conversation_id\":\"" CID "\",\"user_id\":\"" UID "\"%s}}",
           mid, extra);
}

static void test_payloads(void) {
  char f[1024], err[256], mid[64];
  struct message *m;

  /* data_base64 wins when both are present and differ. */
  frame_with(f, sizeof f, MID,
             ",\"category\":\"PLAIN_TEXT\",\"data\":\"eHl6\",\"data_base64\":\"YWJj\"");
  CHECK_INT(build(f, &m, mid, err, sizeof err), 0);
  CHECK(m && m->data_len == 3 && memcmp(m->data, "abc", 3) == 0);
  free(m);

  /* Only data: standard alphabet with padding ("+/8=" is fb ff). */
  frame_with(f, sizeof f, MID, ",\"category\":\"PLAIN_DATA\",\"data\":\"+/8=\"");
  CHECK_INT(build(f, &m, mid, err, sizeof err), 0);
  CHECK(m && m->data_len == 2 && m->data[0] == 0xfb && m->data[1] == 0xff);
  free(m);

  /* data_base64: URL alphabet, no padding. */
  frame_with(f, sizeof f, MID, ",\"category\":\"PLAIN_DATA\",\"data_base64\":\"-_8\"");
  CHECK_INT(build(f, &m, mid, err, sizeof err), 0);
  CHECK(m && m->data_len == 2 && m->data[0] == 0xfb && m->data[1] == 0xff);
  free(m);

  /* An empty data_base64 falls back to data. */
  frame_with(f, sizeof f, MID,
             ",\"category\":\"PLAIN_TEXT\",\"data_base64\":\"\",\"data\":\"YWJj\"");
  CHECK_INT(build(f, &m, mid, err, sizeof err), 0);
  CHECK(m && m->data_len == 3 && memcmp(m->data, "abc", 3) == 0);
  free(m);

  /* Neither: an empty payload, still NUL-terminated; other fields "". */
  frame_with(f, sizeof f, MID, ",\"category\":\"SYSTEM_CONVERSATION\"");
  CHECK_INT(build(f, &m, mid, err, sizeof err), 0);
  CHECK(m && m->data_len == 0 && m->data && m->data[0] == 0);
  if (m) {
    CHECK_STR(m->session_id, "");
    CHECK_STR(m->created_at, "");
  }
  free(m);

  /* Wrong types in optional fields read as absent. */
  frame_with(f, sizeof f, MID,
             ",\"category\":\"PLAIN_TEXT\",\"session_id\":7,\"status\":null,\"data\":{}");
  CHECK_INT(build(f, &m, mid, err, sizeof err), 0);
  if (m) {
    CHECK_STR(m->session_id, "");
    CHECK_STR(m->status, "");
    CHECK_INT(m->data_len, 0);
  }
  free(m);

  /* Uppercase UUIDs are UUIDs. */
  frame_with(f, sizeof f, "F3815C2A-4D2B-4F4E-9A55-8C9A1C2D3E4F",
             ",\"category\":\"PLAIN_TEXT\"");
  CHECK_INT(build(f, &m, mid, err, sizeof err), 0);
  CHECK_STR(mid, "F3815C2A-4D2B-4F4E-9A55-8C9A1C2D3E4F");
  free(m);
}

static void test_bad_messages(void) {
  char f[1024], err[256], mid[64];
  struct message *m;

  /* Bad base64: refused, but the id is there for the ack. */
  frame_with(f, sizeof f, MID, ",\"category\":\"PLAIN_TEXT\",\"data_base64\":\"YW Jj\"");
  strcpy(mid, "junk");
  CHECK_INT(build(f, &m, mid, err, sizeof err), ENVELOPE_EBASE64);
  CHECK(m == NULL);
  CHECK_STR(mid, MID);
  CHECK(strstr(err, "base64") != NULL);
  frame_with(f, sizeof f, MID, ",\"category\":\"PLAIN_TEXT\",\"data\":\"Y\"");
  CHECK_INT(build(f, &m, mid, err, sizeof err), ENVELOPE_EBASE64);
  CHECK_STR(mid, MID);

  /* Missing category: EMISSING, id still reported. */
  frame_with(f, sizeof f, MID, ",\"data\":\"YWJj\"");
  strcpy(mid, "junk");
  CHECK_INT(build(f, &m, mid, err, sizeof err), ENVELOPE_EMISSING);
  CHECK(m == NULL);
  CHECK_STR(mid, MID);
  CHECK(strstr(err, "category") != NULL);
  frame_with(f, sizeof f, MID, ",\"category\":5");
  CHECK_INT(build(f, &m, mid, err, sizeof err), ENVELOPE_EMISSING);

  /* Not a UUID: no id to report. */
  frame_with(f, sizeof f, "f3815c2a-4d2b-4f4e-9a55-8c9a1c2d3e4",
             ",\"category\":\"PLAIN_TEXT\"");
  strcpy(mid, "junk");
  CHECK_INT(build(f, &m, mid, err, sizeof err), ENVELOPE_EMISSING);
  CHECK_STR(mid, "");
  CHECK(strstr(err, "message_id") != NULL);
  frame_with(f, sizeof f, "f3815c2a-4d2b-4f4e-9a55-8c9a1c2d3e4f0", ",\"category\":\"X\"");
  CHECK_INT(build(f, &m, mid, err, sizeof err), ENVELOPE_EMISSING);
  CHECK_STR(mid, "");
  snprintf(
      f, sizeof f,
      "{\"action\":\"CREATE_MESSAGE\",\"data\":{\"message_id\":12,\"conversation_id\":"
      "\"" CID "\",\"user_id\":\"" UID "\",\"category\":\"PLAIN_TEXT\"}}");
  CHECK_INT(build(f, &m, mid, err, sizeof err), ENVELOPE_EMISSING);
  CHECK_STR(mid, "");

  /* Valid message id, bad conversation id. */
  snprintf(f, sizeof f,
           "{\"action\":\"CREATE_MESSAGE\",\"data\":{\"message_id\":\"" MID "\","
           "\"conversation_id\":\"\",\"user_id\":\"" UID
           "\",\"category\":\"PLAIN_TEXT\"}}");
  CHECK_INT(build(f, &m, mid, err, sizeof err), ENVELOPE_EMISSING);
  CHECK_STR(mid, MID);
  CHECK(strstr(err, "conversation_id") != NULL);

  /* data not an object (absent, null, array, string). */
  const char *nodata[] = {"{\"action\":\"CREATE_MESSAGE\"}",
                          "{\"action\":\"CREATE_MESSAGE\",\"data\":null}",
                          "{\"action\":\"CREATE_MESSAGE\",\"data\":[1,2]}",
                          "{\"action\":\"CREATE_MESSAGE\",\"data\":\"" MID "\"}"};
  for (size_t i = 0; i < sizeof nodata / sizeof nodata[0]; i++) {
    strcpy(mid, "junk");
    CHECK_INT(build(nodata[i], &m, mid, err, sizeof err), ENVELOPE_EMISSING);
    CHECK_STR(mid, "");
    CHECK(m == NULL);
  }
  /* NULL message_id_out and err are allowed. */
  CHECK_INT(envelope_message(NULL, &m, NULL, NULL, 0), ENVELOPE_EMISSING);
}

static void test_frames(void) {
  struct envelope env;
  char err[256];

  /* An error reply, with the docs' misspelling. */
  const char *ef =
      "{\"id\":\"" FID "\",\"action\":\"CREATE_MESSAGE\",\"error\":{\"status\":202,"
      "\"code\":20121,\"desciption\":\"Authorization error.\"}}";
  CHECK_INT(envelope_parse(ef, strlen(ef), &env, err, sizeof err), 0);
  CHECK_INT(env.has_error, 1);
  CHECK_INT(env.error_status, 202);
  CHECK_INT(env.error_code, 20121);
  CHECK_STR(env.error_description, "Authorization error.");
  CHECK(env.data == NULL);
  envelope_fini(&env);
  /* The right spelling wins when both appear. */
  const char *ef2 = "{\"action\":\"ERROR\",\"error\":{\"code\":401,\"description\":\"a\","
                    "\"desciption\":\"b\"}}";
  CHECK_INT(envelope_parse(ef2, strlen(ef2), &env, err, sizeof err), 0);
  CHECK_INT(env.error_code, 401);
  CHECK_INT(env.error_status, 0);
  CHECK_STR(env.error_description, "a");
  CHECK_STR(env.id, "");
  envelope_fini(&env);

  /* A reply without data, and a request frame with params. */
  const char *rf =
      "{\"id\":\"" FID "\",\"action\":\"LIST_PENDING_MESSAGES\",\"data\":null}";
  CHECK_INT(envelope_parse(rf, strlen(rf), &env, err, sizeof err), 0);
  CHECK(env.data == NULL && env.has_error == 0);
  envelope_fini(&env);
  const char *pf = "{\"id\":\"" FID "\",\"action\":\"ACKNOWLEDGE_MESSAGE_RECEIPTS\","
                   "\"params\":{\"messages\":[]}}";
  CHECK_INT(envelope_parse(pf, strlen(pf), &env, err, sizeof err), 0);
  CHECK(json_is_object(env.params));
  envelope_fini(&env);
  envelope_fini(&env); /* harmless twice */

  /* Parse errors. */
  static const char *bad[] = {
      "",
      "not json",
      "{\"action\":\"X\"",
      "[{\"action\":\"X\"}]",
      "\"CREATE_MESSAGE\"",
      "42",
      "null",
      "{}",
      "{\"id\":\"" FID "\"}",
      "{\"action\":7}",
      "{\"action\":null}",
      "{\"action\":[\"X\"]}",
      "{\"action\":\"X\"} trailing",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    err[0] = 0;
    CHECK_INT(envelope_parse(bad[i], strlen(bad[i]), &env, err, sizeof err), -1);
    CHECK(err[0] != 0);
    CHECK(env.root == NULL);
    CHECK_STR(env.action, "");
  }
  /* Length is honoured: the bytes after len are not read. */
  const char *pre = "{\"action\":\"X\"}garbage";
  CHECK_INT(envelope_parse(pre, 14, &env, NULL, 0), 0);
  envelope_fini(&env);
}

static void test_request(void) {
  struct buf b = {0};
  json_error_t je;

  CHECK_INT(envelope_request(&b, FID, "LIST_PENDING_MESSAGES", NULL), 0);
  CHECK_STR(b.data, "{\"id\":\"" FID "\",\"action\":\"LIST_PENDING_MESSAGES\"}");

  json_t *params =
      json_pack("{s:[{s:s,s:s}]}", "messages", "message_id", MID, "status", "READ");
  size_t mark = b.len;
  CHECK_INT(envelope_request(&b, FID, "ACKNOWLEDGE_MESSAGE_RECEIPTS", params), 0);
  CHECK_STR(b.data + mark,
            "{\"id\":\"" FID "\",\"action\":\"ACKNOWLEDGE_MESSAGE_RECEIPTS\","
            "\"params\":{\"messages\":[{\"message_id\":\"" MID
            "\",\"status\":\"READ\"}]}}");
  json_t *back = json_loadb(b.data + mark, b.len - mark, 0, &je);
  CHECK(back != NULL);
  CHECK(json_equal(json_object_get(back, "params"), params));
  CHECK_STR(json_string_value(json_object_get(back, "id")), FID);
  json_decref(back);

  /* Strings that need escaping go through jansson and still parse back. */
  buf_reset(&b);
  const char *odd = "a\"b\\c\n\x01/\xc3\xa9";
  CHECK_INT(envelope_request(&b, odd, "ACTION", params), 0);
  back = json_loadb(b.data, b.len, 0, &je);
  CHECK(back != NULL);
  CHECK_STR(json_string_value(json_object_get(back, "id")), odd);
  json_decref(back);

  /* Invalid UTF-8 is refused and leaves the buffer as it was. */
  buf_reset(&b);
  buf_append(&b, "keep", 4);
  CHECK_INT(envelope_request(&b, FID, "BAD\xff", params), -1);
  CHECK_INT(b.len, 4);
  CHECK_STR(b.data, "keep");
  CHECK_INT(envelope_request(&b, NULL, "X", NULL), -1);
  CHECK_INT(b.len, 4);
  json_decref(params);
  buf_fini(&b);
}

static uint64_t rng = 0x2545f4914f6cdd1dULL;
static uint32_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng >> 16);
}

/* Byte-level mutations: flips, JSON punctuation, deletions, duplications. */
static size_t mutate(char *s, size_t n, size_t cap) {
  static const char punct[] = "{}[]\":,\\0-=+/_nte ";
  int k = 1 + (int)(rnd() % 4);
  for (int i = 0; i < k && n > 0; i++) {
    size_t pos = rnd() % n;
    switch (rnd() % 5) {
    case 0:
      s[pos] = (char)rnd();
      break;
    case 1:
      s[pos] = punct[rnd() % (sizeof punct - 1)];
      break;
    case 2: {
      size_t len = 1 + rnd() % 16;
      if (pos + len > n)
        len = n - pos;
      memmove(s + pos, s + pos + len, n - pos - len);
      n -= len;
      break;
    }
    case 3: {
      size_t len = 1 + rnd() % 32;
      if (pos + len > n)
        len = n - pos;
      if (n + len <= cap) {
        memmove(s + pos + len, s + pos, n - pos);
        n += len;
      }
      break;
    }
    default:
      if (n < cap) {
        memmove(s + pos + 1, s + pos, n - pos);
        s[pos] = punct[rnd() % (sizeof punct - 1)];
        n++;
      }
      break;
    }
  }
  return n;
}

static void test_fuzz(void) {
  const size_t base = strlen(SAMPLE_FRAME);
  size_t cap = base * 3;
  char *s = malloc(cap + 1);
  char err[128], mid[64];
  int parsed = 0, built = 0;
  for (int iter = 0; iter < 20000; iter++) {
    memcpy(s, SAMPLE_FRAME, base);
    size_t n = mutate(s, base, cap);
    struct envelope env;
    if (envelope_parse(s, n, &env, err, sizeof err) == 0) {
      parsed++;
      struct message *m = NULL;
      if (envelope_message(env.data, &m, mid, err, sizeof err) == 0) {
        built++;
        /* Touch every field so ASan sees any bad pointer. */
        size_t sum = strlen(m->message_id) + strlen(m->conversation_id) +
                     strlen(m->user_id) + strlen(m->representative_id) +
                     strlen(m->quote_message_id) + strlen(m->session_id) +
                     strlen(m->category) + strlen(m->source) + strlen(m->status) +
                     strlen(m->created_at) + strlen(m->updated_at) + strlen(m->raw_json) +
                     m->data_len + m->data[m->data_len];
        CHECK(sum > 0);
        CHECK(strlen(m->raw_json) == m->raw_json_len);
        free(m);
      }
      envelope_fini(&env);
    }
  }
  /* Structural mutations: each member of data replaced by other types. */
  json_t *kinds[] = {json_null(),     json_true(),       json_integer(-1), json_real(1.5),
                     json_string(""), json_string("=="), json_array(),     json_object()};
  const char *keys[] = {"message_id", "conversation_id", "user_id",    "category",
                        "data",       "data_base64",     "session_id", "created_at"};
  for (int iter = 0; iter < 5000; iter++) {
    struct envelope env;
    CHECK_INT(envelope_parse(SAMPLE_FRAME, base, &env, err, sizeof err), 0);
    int k = 1 + (int)(rnd() % 3);
    for (int i = 0; i < k; i++)
      json_object_set(env.data, keys[rnd() % 8], kinds[rnd() % 8]);
    struct message *m = NULL;
    int rc = envelope_message(env.data, &m, mid, err, sizeof err);
    CHECK(rc == 0 || rc == ENVELOPE_EMISSING || rc == ENVELOPE_EBASE64);
    CHECK((rc == 0) == (m != NULL));
    free(m);
    envelope_fini(&env);
  }
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
    json_decref(kinds[i]);
  printf("fuzz: %d of 20000 mutants parsed, %d built a message\n", parsed, built);
  free(s);
}

int main(void) {
  test_sample();
  test_payloads();
  test_bad_messages();
  test_frames();
  test_request();
  test_fuzz();
  return check_done("envelope");
}
