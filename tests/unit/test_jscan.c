/* SPDX-License-Identifier: MIT */
/*
 * jscan against jansson, the parser it stands in for. Random JSON objects
 * (nested, with escapes, surrogate pairs, multi-byte UTF-8, numbers of
 * every form) are accepted, and each member's key and value text re-parse
 * to what jansson read. Then 60,000 mutations of them and of Blaze frames
 * (bytes flipped, inserted, deleted, truncated): jscan accepts exactly
 * the objects jansson accepts, bar two differences: jansson's number-range
 * refusals (jscan leaves ranges to the reader of the value) and raw NUL
 * bytes, which jansson skips and jscan refuses. envelope_scan reads the same
 * id, action, error and data source as envelope_parse on every frame both
 * accept, and refuses the ones envelope_parse refuses.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "check.h"
#include "envelope.h"
#include "jscan.h"

static uint64_t seed = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void) {
  seed ^= seed << 13;
  seed ^= seed >> 7;
  seed ^= seed << 17;
  return seed;
}

static const char *const pieces[] = {"a",
                                     "id",
                                     "é",
                                     "\xe4\xbd\xa0",
                                     "\xf0\x9f\x91\x8b",
                                     "\"",
                                     "\\",
                                     "/",
                                     "\n",
                                     "\t",
                                     "\x01",
                                     "\x1f",
                                     "{}[]:,",
                                     " ",
                                     "ACTION",
                                     "\xc3\xa9\xe2\x82\xac"};

static json_t *random_value(int depth);

static json_t *random_string(void) {
  char buf[64] = "";
  int n = (int)(rnd() % 5);
  for (int i = 0; i < n; i++)
    strncat(buf, pieces[rnd() % (sizeof pieces / sizeof pieces[0])],
            sizeof buf - strlen(buf) - 1);
  return json_string(buf);
}

static json_t *random_object(int depth) {
  json_t *o = json_object();
  int n = (int)(rnd() % 6);
  for (int i = 0; i < n; i++) {
    json_t *k = random_string();
    json_object_set_new(o, json_string_value(k), random_value(depth + 1));
    json_decref(k);
  }
  return o;
}

static json_t *random_value(int depth) {
  switch (rnd() % (depth > 4 ? 5 : 7)) {
  case 0:
    return random_string();
  case 1:
    return json_integer((json_int_t)(rnd() % 2000000) - 1000000);
  case 2:
    return json_real((double)(rnd() % 100000) / 7.0 * ((rnd() & 1) ? 1e-3 : 1e12));
  case 3:
    return (rnd() & 1) ? json_true() : json_false();
  case 4:
    return json_null();
  case 5: {
    json_t *a = json_array();
    int n = (int)(rnd() % 4);
    for (int i = 0; i < n; i++)
      json_array_append_new(a, random_value(depth + 1));
    return a;
  }
  default:
    return random_object(depth);
  }
}

/* What jscan hands over, checked member by member against jansson. */
struct cmp {
  json_t *obj;
  int members, bad;
};

static int on_member(void *ud, const char *key, size_t klen, int kesc, const char *val,
                     size_t vlen, int type) {
  struct cmp *c = ud;
  c->members++;
  char kbuf[256];
  long kn = jscan_string(key, klen, kbuf, sizeof kbuf);
  json_t *want = kn >= 0 ? json_object_get(c->obj, kbuf) : NULL;
  json_t *got = json_loadb(val, vlen, JSON_DECODE_ANY, NULL);
  int kind = val[0];
  if (kind == '-' || (kind >= '0' && kind <= '9'))
    kind = JSCAN_NUMBER;
  else if (kind == 'f' || kind == 'n')
    kind = JSCAN_LITERAL;
  if (!want || !got || !json_equal(want, got) || type != kind)
    c->bad++;
  if (json_is_string(want)) {
    char sbuf[512];
    long sn = jscan_string(val, vlen, sbuf, sizeof sbuf);
    if (sn != (long)json_string_length(want) ||
        memcmp(sbuf, json_string_value(want), (size_t)sn))
      c->bad++;
  }
  if (json_is_integer(want)) {
    long long v;
    if (jscan_int(val, vlen, &v) < 0 || v != json_integer_value(want))
      c->bad++;
  }
  json_decref(got);
  (void)kesc;
  return 0;
}

static void test_valid(void) {
  int bad = 0;
  for (int i = 0; i < 3000; i++) {
    json_t *o = random_object(0);
    /* jansson escapes every non-ASCII character with ENSURE_ASCII: both forms */
    char *s = json_dumps(o, (i & 1) ? JSON_ENSURE_ASCII : JSON_COMPACT);
    struct cmp c = {.obj = o};
    if (jscan_object(s, strlen(s), on_member, &c, NULL) != 0 || c.bad ||
        c.members != (int)json_object_size(o)) {
      if (bad++ < 5)
        fprintf(stderr, "  jscan disagrees on %s (members %d, bad %d)\n", s, c.members,
                c.bad);
    }
    free(s);
    json_decref(o);
  }
  CHECK_INT(bad, 0);
}

/* jansson's verdict on text: 1 object, 0 anything else, -1 a number-range
 * refusal (jscan leaves ranges to the reader). */
static int jansson_object(const char *text, size_t len) {
  json_error_t je;
  json_t *r = json_loadb(text, len, 0, &je);
  if (!r)
    return strstr(je.text, "too big") || strstr(je.text, "overflow") ? -1 : 0;
  int obj = json_is_object(r);
  json_decref(r);
  return obj;
}

static const char *const frames[] = {
    "{\"id\":\"6a8f6e6f-2c5d-4b0f-9c6e-0c0b2d7f3a11\",\"action\":\"CREATE_MESSAGE\","
    "\"data\":{\"type\":\"message\",\"message_id\":\"e8e5b807-fa8b-455a-8dfa-"
    "b189d28310ff\","
    "\"conversation_id\":\"0b2f3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d\",\"user_id\":"
    "\"1a2b3c4d-5e6f-4a1b-9c2d-3e4f5a6b7c8d\",\"category\":\"PLAIN_TEXT\",\"data_"
    "base64\":"
    "\"aGVsbG8\",\"source\":\"LIST_PENDING_MESSAGES\",\"status\":\"SENT\"}}",
    "{\"id\":\"x\",\"action\":\"CREATE_MESSAGE\",\"data\":{\"source\":"
    "\"ACKNOWLEDGE_MESSAGE_RECEIPT\",\"status\":\"READ\"}}",
    "{\"id\":\"6a8f6e6f-2c5d-4b0f-9c6e-0c0b2d7f3a11\",\"action\":\"ACKNOWLEDGE_MESSAGE_"
    "RECEIPTS\",\"error\":{\"status\":202,\"code\":401,\"description\":\"Unauthorized, "
    "maybe invalid token.\"}}",
    "{\"action\":\"ERROR\",\"error\":{\"status\":500,\"code\":7000,\"desciption\":"
    "\"Blaze "
    "\\u00e9\\ud83d\\udc4b\"}}",
    "{ \"action\" : \"LIST_PENDING_MESSAGES\" , \"id\" : \"\\u0061b\" , \"data\" : null "
    "}",
};

/* envelope_scan and envelope_parse agree on text. */
static int same_envelope(const char *text, size_t len) {
  struct envelope a, b;
  int ra = envelope_parse(text, len, &a, NULL, 0);
  int rb = envelope_scan(text, len, &b, NULL, 0);
  int same = ra == rb;
  if (same && ra == 0) {
    const char *src = "";
    if (a.data && json_is_string(json_object_get(a.data, "source")))
      src = json_string_value(json_object_get(a.data, "source"));
    same = !strcmp(a.id, b.id) && !strcmp(a.action, b.action) &&
           a.has_error == b.has_error && a.error_status == b.error_status &&
           a.error_code == b.error_code &&
           !strcmp(a.error_description, b.error_description) &&
           !!json_is_object(a.data) == !!b.data_raw && !strcmp(src, b.data_source);
  }
  if (ra == 0)
    envelope_fini(&a);
  return same;
}

static void test_mutations(void) {
  int disagree = 0, env_disagree = 0, accepted = 0;
  struct buf s = {0};
  for (int i = 0; i < 60000; i++) {
    buf_reset(&s);
    size_t nf = sizeof frames / sizeof frames[0];
    if (i % 3) {
      const char *f = frames[rnd() % nf];
      buf_append(&s, f, strlen(f));
    } else {
      json_t *o = random_object(0);
      char *t = json_dumps(o, JSON_COMPACT);
      buf_append(&s, t, strlen(t));
      free(t);
      json_decref(o);
    }
    int edits = 1 + (int)(rnd() % 3);
    for (int e = 0; e < edits && s.len; e++) {
      size_t at = rnd() % s.len;
      switch (rnd() % 4) {
      case 0:
        s.data[at] = (char)(rnd() & 0xff);
        break;
      case 1: {
        static const char bytes[] = "{}[]\",:\\u0123456789eE+-.tfn \x80\xc3\xff";
        s.data[at] = bytes[rnd() % (sizeof bytes - 1)];
      } break;
      case 2:
        memmove(s.data + at, s.data + at + 1, s.len - at - 1);
        s.len--;
        break;
      default:
        s.len = at;
        break;
      }
    }
    /* jansson skips raw NUL bytes (its stream reader takes one for "no
     * byte buffered"); jscan refuses them, as RFC 8259 does. */
    if (memchr(s.data, 0, s.len))
      continue;
    int want = jansson_object(s.data, s.len);
    if (want < 0)
      continue;
    int got = jscan_object(s.data, s.len, NULL, NULL, NULL) == 0;
    accepted += got;
    if (got != want && disagree++ < 5) {
      fprintf(stderr, "  jscan %s, jansson %s (%zu bytes):", got ? "accepts" : "refuses",
              want ? "accepts" : "refuses", s.len);
      for (size_t k = 0; k < s.len; k++)
        fprintf(stderr,
                (unsigned char)s.data[k] < 0x20 || (unsigned char)s.data[k] >= 0x7f
                    ? "<%02x>"
                    : "%c",
                (unsigned char)s.data[k]);
      fprintf(stderr, "\n");
    }
    if (!same_envelope(s.data, s.len) && env_disagree++ < 5)
      fprintf(stderr, "  envelope_scan differs from envelope_parse on %.*s\n", (int)s.len,
              s.data);
  }
  buf_fini(&s);
  CHECK_INT(disagree, 0);
  CHECK_INT(env_disagree, 0);
  CHECK(accepted > 1000); /* the mutations kept many frames valid */
  for (size_t i = 0; i < sizeof frames / sizeof frames[0]; i++)
    CHECK(same_envelope(frames[i], strlen(frames[i])));
}

static void test_edges(void) {
  /* Nesting: up to the limit, and one past it. */
  struct buf s = {0};
  buf_append(&s, "{\"a\":", 5);
  for (int i = 0; i < JSCAN_MAX_DEPTH - 1; i++)
    buf_append(&s, "[", 1);
  for (int i = 0; i < JSCAN_MAX_DEPTH - 1; i++)
    buf_append(&s, "]", 1);
  buf_append(&s, "}", 1);
  CHECK_INT(jscan_object(s.data, s.len, NULL, NULL, NULL), 0);
  buf_reset(&s);
  buf_append(&s, "{\"a\":", 5);
  for (int i = 0; i < JSCAN_MAX_DEPTH; i++)
    buf_append(&s, "[", 1);
  for (int i = 0; i < JSCAN_MAX_DEPTH; i++)
    buf_append(&s, "]", 1);
  buf_append(&s, "}", 1);
  CHECK_INT(jscan_object(s.data, s.len, NULL, NULL, NULL), -1);
  buf_fini(&s);
  /* What jansson refuses by default, jscan too. */
  static const char *const refused[] = {"{\"a\":\"\\u0000\"}",
                                        "{\"a\":\"\\ud800\"}",
                                        "{\"a\":\"\\udc00x\"}",
                                        "{\"a\":01}",
                                        "{\"a\":1.}",
                                        "{\"a\":.5}",
                                        "{\"a\":-}",
                                        "{\"a\":1e}",
                                        "{\"a\":tru}",
                                        "{\"a\":1,}",
                                        "{,}",
                                        "{\"a\"}",
                                        "{\"a\":1}x",
                                        "{\"a\":\"\xc0\xaf\"}",
                                        "{\"a\":\"\xed\xa0\x80\"}",
                                        "[1]",
                                        "\"s\"",
                                        ""};
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
    size_t where = 99;
    CHECK_INT(jscan_object(refused[i], strlen(refused[i]), NULL, NULL, &where), -1);
    CHECK(where <= strlen(refused[i]));
    CHECK_INT(jansson_object(refused[i], strlen(refused[i])), 0);
  }
  /* A NUL inside the text is refused, as jansson does. */
  CHECK_INT(jscan_object("{\"a\":\"x\0\"}", 10, NULL, NULL, NULL), -1);
  /* Decoding */
  char out[16];
  CHECK_INT(jscan_string("\"a\\u00e9\\n\"", 11, out, sizeof out), 4);
  CHECK(!strcmp(out, "a\xc3\xa9\n"));
  CHECK_INT(jscan_string("\"0123456789abcdef\"", 18, out, sizeof out), -1); /* no room */
  long long v;
  CHECK_INT(jscan_int("-42", 3, &v), 0);
  CHECK(v == -42);
  CHECK_INT(jscan_int("4.2", 3, &v), -1);
  CHECK_INT(jscan_int("99999999999999999999", 20, &v), -1);
  CHECK(jscan_key_is("\"id\"", 4, 0, "id"));
  CHECK(jscan_key_is("\"\\u0069d\"", 9, 1, "id"));
  CHECK(!jscan_key_is("\"idx\"", 5, 0, "id"));
}

/* envelope_message_raw keeps the text as sent and decodes escapes. */
static void test_message_raw(void) {
  const char *text =
      "{\"message_id\":\"e8e5b807-fa8b-455a-8dfa-b189d28310ff\",\"conversation_id\":"
      "\"0b2f3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d\", \"user_id\":"
      "\"1a2b3c4d-5e6f-4a1b-9c2d-3e4f5a6b7c8d\",\"category\":\"PLAIN\\u005fTEXT\","
      "\"data\":\"aGVsbG8\\/\",\"data_base64\":\"\",\"created_at\":\"t\\\"1\"}";
  struct message *m = NULL;
  char mid[64], err[200];
  CHECK_INT(envelope_message_raw(text, strlen(text), &m, mid, err, sizeof err), 0);
  if (m) {
    CHECK(!strcmp(m->raw_json, text));
    CHECK(!strcmp(m->category, "PLAIN_TEXT"));
    CHECK(!strcmp(m->created_at, "t\"1"));
    CHECK(!strcmp(m->quote_message_id, ""));
    CHECK_INT(m->data_len, 6); /* "aGVsbG8/" in the standard alphabet */
    CHECK(!strcmp(mid, "e8e5b807-fa8b-455a-8dfa-b189d28310ff"));
    free(m);
  }
}

/* Strings are checked eight bytes at a time: every kind of byte that ends
 * a plain run, at every offset in and past the first eight-byte step, and
 * where the string ends, gets jansson's verdict and the right length. */
static void test_string_steps(void) {
  static const char *const kinds[] = {
      "\"",   "\\n",          "\\u00e9",  "\x01",         "\x1f",
      "\x7f", "\x80",         "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x91\x8b",
      "\xc3", "\xed\xa0\x80", "\\x"};
  char text[96];
  int mismatches = 0;
  for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
    for (int at = 0; at < 20; at++) {
      for (int tail = 0; tail < 10; tail++) {
        int n = snprintf(text, sizeof text, "{\"k\":\"%.*s%s%.*s\",\"z\":1}", at,
                         "abcdefghijklmnopqrstuvwxyz", kinds[k], tail, "0123456789");
        int want = jansson_object(text, (size_t)n) == 1 ? 0 : -1;
        if (jscan_object(text, (size_t)n, NULL, NULL, NULL) != want) {
          if (!mismatches++)
            fprintf(stderr, "jscan and jansson differ on %s\n", text);
        }
      }
    }
  }
  CHECK_INT(mismatches, 0);
}

int main(void) {
  test_string_steps();
  test_valid();
  test_edges();
  test_message_raw();
  test_mutations();
  return check_done("unit.jscan");
}
