/* SPDX-License-Identifier: MIT */
/*
 * envelope: see envelope.h. Parsing checks the type of every field it reads
 * and treats a wrong type like an absent field, except where the header
 * makes the field required. A message is laid out as one block: the struct,
 * then the JSON text of the data object as received, then the decoded
 * payload, then the strings. The daemon's session reads frames with jscan
 * (envelope_scan, envelope_message_raw), never building a jansson tree.
 * Requests are written into the caller's buffer directly, without building
 * a jansson tree, because acknowledgements are sent for every batch.
 */
#include "envelope.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "buf.h"
#include "jscan.h"
#include "util.h"

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t errlen,
                                                          const char *fmt, ...) {
  if (!err || errlen == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* The string value of key in obj, or "" when absent or not a string. */
static const char *get_str(json_t *obj, const char *key) {
  json_t *v = json_object_get(obj, key);
  return json_is_string(v) ? json_string_value(v) : "";
}

static int get_int(json_t *obj, const char *key) {
  json_t *v = json_object_get(obj, key);
  if (!json_is_integer(v))
    return 0;
  json_int_t i = json_integer_value(v);
  if (i > INT_MAX)
    return INT_MAX;
  if (i < INT_MIN)
    return INT_MIN;
  return (int)i;
}

int envelope_parse(const char *json, size_t len, struct envelope *out, char *err,
                   size_t errlen) {
  memset(out, 0, sizeof *out);
  out->id = "";
  out->action = "";
  out->error_description = "";
  set_err(err, errlen, "%s", "");

  json_error_t je;
  json_t *root = json_loadb(json, len, 0, &je);
  if (!root) {
    set_err(err, errlen, "not JSON: %s at line %d column %d", je.text, je.line,
            je.column);
    return -1;
  }
  if (!json_is_object(root)) {
    set_err(err, errlen, "frame is not a JSON object");
    json_decref(root);
    return -1;
  }
  json_t *action = json_object_get(root, "action");
  if (!json_is_string(action)) {
    set_err(err, errlen, "\"action\" is missing or not a string");
    json_decref(root);
    return -1;
  }

  out->root = root;
  out->action = json_string_value(action);
  out->id = get_str(root, "id");
  json_t *v = json_object_get(root, "data");
  out->data = json_is_null(v) ? NULL : v;
  v = json_object_get(root, "params");
  out->params = json_is_null(v) ? NULL : v;
  json_t *e = json_object_get(root, "error");
  if (json_is_object(e)) {
    out->has_error = 1;
    out->error_status = get_int(e, "status");
    out->error_code = get_int(e, "code");
    json_t *d = json_object_get(e, "description");
    if (!json_is_string(d))
      d = json_object_get(e, "desciption"); /* the spelling of the docs' example */
    if (json_is_string(d))
      out->error_description = json_string_value(d);
  }
  return 0;
}

void envelope_fini(struct envelope *env) {
  if (!env)
    return;
  json_decref(env->root);
  memset(env, 0, sizeof *env);
  env->id = "";
  env->action = "";
  env->error_description = "";
}

/* ---- envelope_scan ---- */

struct scan_state {
  struct envelope *env;
  char *id, *action, *desc, *source; /* into env->scan_buf */
  int have_action, action_bad;
  int have_description, have_desciption;
  char desc2[256]; /* "desciption" */
};

static int scan_error_member(void *ud, const char *key, size_t klen, int kesc,
                             const char *val, size_t vlen, int type) {
  struct scan_state *st = ud;
  struct envelope *env = st->env;
  long long v;
  if (type == JSCAN_NUMBER && jscan_key_is(key, klen, kesc, "status")) {
    env->error_status = jscan_int(val, vlen, &v) < 0 ? 0
                        : v > INT_MAX                ? INT_MAX
                        : v < INT_MIN                ? INT_MIN
                                                     : (int)v;
  } else if (type == JSCAN_NUMBER && jscan_key_is(key, klen, kesc, "code")) {
    env->error_code = jscan_int(val, vlen, &v) < 0 ? 0
                      : v > INT_MAX                ? INT_MAX
                      : v < INT_MIN                ? INT_MIN
                                                   : (int)v;
  } else if (type == JSCAN_STRING && jscan_key_is(key, klen, kesc, "description")) {
    /* like envelope_parse: "description" when it is a string, else the
     * docs' spelling "desciption" (the last of each, as jansson keeps) */
    st->have_description = 1;
    if (jscan_string(val, vlen, st->desc, 256) < 0)
      snprintf(st->desc, 256, "(description too long)");
    env->error_description = st->desc;
  } else if (type == JSCAN_STRING && jscan_key_is(key, klen, kesc, "desciption")) {
    if (jscan_string(val, vlen, st->desc2, 256) < 0)
      snprintf(st->desc2, 256, "(description too long)");
    st->have_desciption = 1;
  }
  return 0;
}

static int scan_data_member(void *ud, const char *key, size_t klen, int kesc,
                            const char *val, size_t vlen, int type) {
  struct scan_state *st = ud;
  if (type == JSCAN_STRING && jscan_key_is(key, klen, kesc, "source")) {
    if (jscan_string(val, vlen, st->source, 48) < 0)
      st->source[0] = 0;
    st->env->data_source = st->source;
  }
  return 0;
}

static int scan_member(void *ud, const char *key, size_t klen, int kesc, const char *val,
                       size_t vlen, int type) {
  struct scan_state *st = ud;
  struct envelope *env = st->env;
  if (jscan_key_is(key, klen, kesc, "id")) {
    env->id = "";
    if (type == JSCAN_STRING && jscan_string(val, vlen, st->id, 64) >= 0)
      env->id = st->id;
  } else if (jscan_key_is(key, klen, kesc, "action")) {
    st->have_action = type == JSCAN_STRING;
    st->action_bad = type == JSCAN_STRING && jscan_string(val, vlen, st->action, 64) < 0;
  } else if (jscan_key_is(key, klen, kesc, "data")) {
    env->data_raw = NULL;
    env->data_raw_len = 0;
    env->data_source = "";
    if (type == JSCAN_OBJECT) {
      env->data_raw = val;
      env->data_raw_len = vlen;
      jscan_object(val, vlen, scan_data_member, st, NULL);
    }
  } else if (jscan_key_is(key, klen, kesc, "error")) {
    env->has_error = type == JSCAN_OBJECT;
    env->error_status = env->error_code = 0;
    env->error_description = "";
    st->have_description = st->have_desciption = 0;
    if (type == JSCAN_OBJECT)
      jscan_object(val, vlen, scan_error_member, st, NULL);
    if (!st->have_description && st->have_desciption) {
      memcpy(st->desc, st->desc2, 256);
      env->error_description = st->desc;
    }
  }
  return 0;
}

int envelope_scan(const char *json, size_t len, struct envelope *out, char *err,
                  size_t errlen) {
  memset(out, 0, offsetof(struct envelope, scan_buf));
  out->id = "";
  out->action = "";
  out->error_description = "";
  out->data_source = "";
  set_err(err, errlen, "%s", "");
  struct scan_state st = {.env = out,
                          .id = out->scan_buf,
                          .action = out->scan_buf + 64,
                          .desc = out->scan_buf + 128,
                          .source = out->scan_buf + 384};
  size_t where = 0;
  if (jscan_object(json, len, scan_member, &st, &where) < 0) {
    /* the same reasons as envelope_parse, for the same frames */
    const char *p = json;
    while (p < json + len && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
      p++;
    if (p < json + len &&
        (*p == '[' || *p == '"' || *p == '-' || (*p >= '0' && *p <= '9') || *p == 't' ||
         *p == 'f' || *p == 'n'))
      set_err(err, errlen, "frame is not a JSON object");
    else
      set_err(err, errlen, "not JSON: invalid at byte %zu", where);
    memset(out, 0, offsetof(struct envelope, scan_buf));
    out->id = out->action = out->error_description = out->data_source = "";
    return -1;
  }
  if (!st.have_action || st.action_bad) {
    set_err(err, errlen, "\"action\" is missing or not a string");
    memset(out, 0, offsetof(struct envelope, scan_buf));
    out->id = out->action = out->error_description = out->data_source = "";
    return -1;
  }
  out->action = st.action;
  return 0;
}

/* The string fields of struct message, in order, with what they must be. */
enum { F_OPTIONAL, F_UUID, F_NONEMPTY };
#define FIELD(k, member, need)                                                           \
  { k, sizeof k - 1, offsetof(struct message, member), need }
static const struct {
  const char *key;
  size_t keylen;
  size_t offset;
  int need;
} fields[] = {
    FIELD("message_id", message_id, F_UUID),
    FIELD("conversation_id", conversation_id, F_UUID),
    FIELD("user_id", user_id, F_UUID),
    FIELD("representative_id", representative_id, F_OPTIONAL),
    FIELD("quote_message_id", quote_message_id, F_OPTIONAL),
    FIELD("session_id", session_id, F_OPTIONAL),
    FIELD("category", category, F_NONEMPTY),
    FIELD("source", source, F_OPTIONAL),
    FIELD("status", status, F_OPTIONAL),
    FIELD("created_at", created_at, F_OPTIONAL),
    FIELD("updated_at", updated_at, F_OPTIONAL),
};
#undef FIELD
#define NFIELDS (sizeof fields / sizeof fields[0])

/* a + b, or SIZE_MAX when that would overflow (which then fails malloc). */
static size_t add_sat(size_t a, size_t b) {
  return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

/* The members envelope_message_raw reads: the fields, then the payload's
 * two encodings. Each is the last string value under its key. */
enum { M_DATA_BASE64 = NFIELDS, M_DATA, M_COUNT };

struct msg_scan {
  const char *val[M_COUNT];
  size_t len[M_COUNT];
  int esc[M_COUNT];
};

static int msg_member(void *ud, const char *key, size_t klen, int kesc, const char *val,
                      size_t vlen, int type) {
  struct msg_scan *ms = ud;
  for (size_t i = 0; i < M_COUNT; i++) {
    const char *name = i < NFIELDS          ? fields[i].key
                       : i == M_DATA_BASE64 ? "data_base64"
                                            : "data";
    size_t nlen = i < NFIELDS ? fields[i].keylen : i == M_DATA_BASE64 ? 11 : 4;
    /* Plain keys (all of them in practice) by length, then bytes. */
    if (!kesc ? klen == nlen + 2 && !memcmp(key + 1, name, nlen)
              : jscan_key_is(key, klen, kesc, name)) {
      ms->val[i] = type == JSCAN_STRING ? val : NULL;
      ms->len[i] = type == JSCAN_STRING ? vlen : 0;
      ms->esc[i] = type == JSCAN_STRING && memchr(val, '\\', vlen) != NULL;
      break;
    }
  }
  return 0;
}

/* Decodes member i (a string's text with quotes) into out, which has room
 * for its raw length: decoding only shrinks it. Returns the length or -1. */
static long member_string(const struct msg_scan *ms, size_t i, char *out) {
  if (!ms->val[i]) {
    out[0] = 0;
    return 0;
  }
  if (!ms->esc[i]) {
    memcpy(out, ms->val[i] + 1, ms->len[i] - 2);
    out[ms->len[i] - 2] = 0;
    return (long)ms->len[i] - 2;
  }
  return jscan_string(ms->val[i], ms->len[i], out, ms->len[i] + 1);
}

int envelope_message_raw(const char *text, size_t textlen, struct message **out,
                         char message_id_out[64], char *err, size_t errlen) {
  *out = NULL;
  if (message_id_out)
    message_id_out[0] = 0;
  set_err(err, errlen, "%s", "");
  struct msg_scan ms;
  memset(&ms, 0, sizeof ms);
  if (!text || jscan_object(text, textlen, msg_member, &ms, NULL) < 0) {
    set_err(err, errlen, "message data is missing or not an object");
    return ENVELOPE_EMISSING;
  }

  /* One block: the struct, the raw JSON, the payload, then the strings
   * (each at most its raw length once decoded). */
  size_t datamax = 0;
  int b64i = ms.val[M_DATA_BASE64] && ms.len[M_DATA_BASE64] > 2 ? M_DATA_BASE64 : M_DATA;
  if (ms.val[b64i])
    datamax = base64_decoded_max(ms.len[b64i]);
  size_t total = sizeof(struct message);
  total = add_sat(total, add_sat(textlen, 1));
  total = add_sat(total, add_sat(datamax, 1));
  for (size_t i = 0; i < NFIELDS; i++)
    total = add_sat(total, add_sat(ms.len[i], 1));
  struct message *m = total == SIZE_MAX ? NULL : malloc(total);
  if (!m) {
    set_err(err, errlen, "out of memory for a %zu-byte message", total);
    return ENVELOPE_ENOMEM;
  }
  memset(m, 0, sizeof *m);
  char *p = (char *)(m + 1);
  char *strings = p + textlen + 1 + datamax + 1;

  /* message_id first, so that even a message failing later checks can be
   * acknowledged by its id instead of being redelivered forever. */
  for (size_t i = 0; i < NFIELDS; i++) {
    long n = member_string(&ms, i, strings);
    const char *v = ms.val[i] && n >= 0 ? strings : NULL;
    if (fields[i].need == F_UUID && !uuid_valid(v)) {
      set_err(err, errlen, "\"%s\" is missing or not a UUID", fields[i].key);
      free(m);
      return ENVELOPE_EMISSING;
    }
    if (fields[i].need == F_NONEMPTY && (!v || !v[0])) {
      set_err(err, errlen, "\"%s\" is missing, empty or not a string", fields[i].key);
      free(m);
      return ENVELOPE_EMISSING;
    }
    if (i == 0 && message_id_out)
      memcpy(message_id_out, v, UUID_STR_LEN);
    if (!v) {
      strings[0] = 0;
      n = 0;
    }
    memcpy((char *)m + fields[i].offset, &(const char *){strings}, sizeof(const char *));
    strings += n + 1;
  }

  memcpy(p, text, textlen);
  p[textlen] = 0;
  m->raw_json = p;
  m->raw_json_len = textlen;
  p += textlen + 1;

  /* data_base64 (URL alphabet) first; data (standard) when it is absent or
   * empty; neither means an empty payload. Escapes (never sent in base64,
   * but allowed) are decoded in place in the payload area first. */
  long n = 0;
  if (ms.val[b64i]) {
    const char *b64 = ms.val[b64i] + 1;
    size_t b64len = ms.len[b64i] - 2;
    char *tmp = NULL;
    if (ms.esc[b64i]) {
      tmp = malloc(ms.len[b64i] + 1);
      long k = tmp ? jscan_string(ms.val[b64i], ms.len[b64i], tmp, ms.len[b64i] + 1) : -1;
      b64 = tmp;
      b64len = k < 0 ? 0 : (size_t)k;
      if (k < 0)
        n = -1;
    }
    if (n == 0)
      n = base64_decode(b64, b64len, (unsigned char *)p, datamax);
    free(tmp);
    if (n < 0) {
      set_err(err, errlen, "\"%s\" is not valid base64 (%zu characters)",
              b64i == M_DATA_BASE64 ? "data_base64" : "data", ms.len[b64i] - 2);
      free(m);
      return ENVELOPE_EBASE64;
    }
  }
  p[n] = 0;
  m->data = (const unsigned char *)p;
  m->data_len = (size_t)n;
  *out = m;
  return 0;
}

int envelope_message(json_t *data, struct message **out, char message_id_out[64],
                     char *err, size_t errlen) {
  *out = NULL;
  if (message_id_out)
    message_id_out[0] = 0;
  if (!json_is_object(data)) {
    set_err(err, errlen, "message data is missing or not an object");
    return ENVELOPE_EMISSING;
  }
  char *text = json_dumps(data, JSON_COMPACT);
  if (!text) {
    set_err(err, errlen, "cannot serialise the message data");
    return ENVELOPE_ENOMEM;
  }
  int rc = envelope_message_raw(text, strlen(text), out, message_id_out, err, errlen);
  free(text);
  return rc;
}

/* json_dump_callback sink appending to a struct buf. */
static int dump_to_buf(const char *chunk, size_t size, void *ud) {
  return buf_append(ud, chunk, size);
}

/* Appends s as a JSON string. Ids and action names are plain ASCII, which is
 * copied as is; anything else goes through jansson, which escapes it and
 * refuses invalid UTF-8. */
static int append_json_string(struct buf *b, const char *s) {
  size_t n = 0;
  int plain = 1;
  for (; s[n]; n++) {
    unsigned char c = (unsigned char)s[n];
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
      plain = 0;
  }
  if (plain) {
    if (buf_reserve(b, n + 2) < 0)
      return -1;
    b->data[b->len++] = '"';
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len++] = '"';
    b->data[b->len] = 0;
    return 0;
  }
  json_t *j = json_stringn(s, n);
  if (!j)
    return -1;
  int rc = json_dump_callback(j, dump_to_buf, b, JSON_ENCODE_ANY);
  json_decref(j);
  return rc;
}

int envelope_append_string(struct buf *out, const char *s) {
  size_t base = out->len;
  if (append_json_string(out, s) == 0)
    return 0;
  out->len = base;
  if (out->data)
    out->data[base] = 0;
  return -1;
}

/* Writes the request with params from a tree (params_text NULL) or from
 * text. */
static int request(struct buf *out, const char *id, const char *action, json_t *params,
                   const char *params_text, size_t params_len) {
  size_t base = out->len;
  if (!id || !action)
    return -1;
  if (buf_append(out, "{\"id\":", 6) < 0 || append_json_string(out, id) < 0 ||
      buf_append(out, ",\"action\":", 10) < 0 || append_json_string(out, action) < 0)
    goto fail;
  if (params_text) {
    if (buf_append(out, ",\"params\":", 10) < 0 ||
        buf_append(out, params_text, params_len) < 0)
      goto fail;
  } else if (params) {
    if (buf_append(out, ",\"params\":", 10) < 0 ||
        json_dump_callback(params, dump_to_buf, out, JSON_COMPACT | JSON_ENCODE_ANY) < 0)
      goto fail;
  }
  if (buf_append(out, "}", 1) < 0)
    goto fail;
  return 0;
fail:
  out->len = base;
  if (out->data)
    out->data[base] = 0;
  return -1;
}

int envelope_request(struct buf *out, const char *id, const char *action,
                     json_t *params) {
  return request(out, id, action, params, NULL, 0);
}

int envelope_request_text(struct buf *out, const char *id, const char *action,
                          const char *params, size_t len) {
  return request(out, id, action, NULL, params ? params : "null", params ? len : 4);
}
