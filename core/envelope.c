/* SPDX-License-Identifier: MIT */
/*
 * envelope: see envelope.h. Parsing checks the type of every field it reads
 * and treats a wrong type like an absent field, except where the header
 * makes the field required. A message is laid out as one block: the struct,
 * then the compact JSON of the data object (serialised straight into the
 * block after a sizing pass), then the decoded payload, then the strings.
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

/* The string fields of struct message, in order, with what they must be. */
enum { F_OPTIONAL, F_UUID, F_NONEMPTY };
static const struct {
  const char *key;
  size_t offset;
  int need;
} fields[] = {
    {"message_id", offsetof(struct message, message_id), F_UUID},
    {"conversation_id", offsetof(struct message, conversation_id), F_UUID},
    {"user_id", offsetof(struct message, user_id), F_UUID},
    {"representative_id", offsetof(struct message, representative_id), F_OPTIONAL},
    {"quote_message_id", offsetof(struct message, quote_message_id), F_OPTIONAL},
    {"session_id", offsetof(struct message, session_id), F_OPTIONAL},
    {"category", offsetof(struct message, category), F_NONEMPTY},
    {"source", offsetof(struct message, source), F_OPTIONAL},
    {"status", offsetof(struct message, status), F_OPTIONAL},
    {"created_at", offsetof(struct message, created_at), F_OPTIONAL},
    {"updated_at", offsetof(struct message, updated_at), F_OPTIONAL},
};
#define NFIELDS (sizeof fields / sizeof fields[0])

/* a + b, or SIZE_MAX when that would overflow (which then fails malloc). */
static size_t add_sat(size_t a, size_t b) {
  return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

int envelope_message(json_t *data, struct message **out, char message_id_out[64],
                     char *err, size_t errlen) {
  *out = NULL;
  if (message_id_out)
    message_id_out[0] = 0;
  set_err(err, errlen, "%s", "");
  if (!json_is_object(data)) {
    set_err(err, errlen, "message data is missing or not an object");
    return ENVELOPE_EMISSING;
  }

  /* message_id first, so that even a message failing later checks can be
   * acknowledged by its id instead of being redelivered forever. */
  const char *val[NFIELDS];
  size_t len[NFIELDS];
  for (size_t i = 0; i < NFIELDS; i++) {
    json_t *v = json_object_get(data, fields[i].key);
    val[i] = json_is_string(v) ? json_string_value(v) : NULL;
    if (fields[i].need == F_UUID && !uuid_valid(val[i])) {
      set_err(err, errlen, "\"%s\" is missing or not a UUID", fields[i].key);
      return ENVELOPE_EMISSING;
    }
    if (fields[i].need == F_NONEMPTY && (!val[i] || !val[i][0])) {
      set_err(err, errlen, "\"%s\" is missing, empty or not a string", fields[i].key);
      return ENVELOPE_EMISSING;
    }
    if (i == 0 && message_id_out && val[0])
      memcpy(message_id_out, val[0], UUID_STR_LEN);
    if (!val[i])
      val[i] = "";
    len[i] = strlen(val[i]);
  }

  /* data_base64 (URL alphabet) first; data (standard) when it is absent or
   * empty; neither means an empty payload. */
  const char *b64 = "";
  size_t b64len = 0;
  const char *b64name = "data_base64";
  json_t *v = json_object_get(data, "data_base64");
  if (json_is_string(v) && json_string_length(v) > 0) {
    b64 = json_string_value(v);
    b64len = json_string_length(v);
  } else {
    v = json_object_get(data, "data");
    b64name = "data";
    if (json_is_string(v)) {
      b64 = json_string_value(v);
      b64len = json_string_length(v);
    }
  }
  size_t datamax = base64_decoded_max(b64len);

  size_t rawlen = json_dumpb(data, NULL, 0, JSON_COMPACT);
  if (rawlen == 0) {
    set_err(err, errlen, "cannot serialise the message data");
    return ENVELOPE_ENOMEM;
  }

  size_t total = sizeof(struct message);
  total = add_sat(total, add_sat(rawlen, 1));
  total = add_sat(total, add_sat(datamax, 1));
  for (size_t i = 0; i < NFIELDS; i++)
    total = add_sat(total, add_sat(len[i], 1));
  struct message *m = total == SIZE_MAX ? NULL : malloc(total);
  if (!m) {
    set_err(err, errlen, "out of memory for a %zu-byte message", total);
    return ENVELOPE_ENOMEM;
  }
  memset(m, 0, sizeof *m);
  char *p = (char *)(m + 1);

  if (json_dumpb(data, p, rawlen, JSON_COMPACT) != rawlen) {
    free(m);
    set_err(err, errlen, "cannot serialise the message data");
    return ENVELOPE_ENOMEM;
  }
  p[rawlen] = 0;
  m->raw_json = p;
  m->raw_json_len = rawlen;
  p += rawlen + 1;

  long n = base64_decode(b64, b64len, (unsigned char *)p, datamax);
  if (n < 0) {
    free(m);
    set_err(err, errlen, "\"%s\" is not valid base64 (%zu characters)", b64name, b64len);
    return ENVELOPE_EBASE64;
  }
  p[n] = 0;
  m->data = (const unsigned char *)p;
  m->data_len = (size_t)n;
  p += datamax + 1;

  for (size_t i = 0; i < NFIELDS; i++) {
    const char *copy = p;
    memcpy(p, val[i], len[i] + 1);
    /* Store the pointer into its member by offset (memcpy: no cast games). */
    memcpy((char *)m + fields[i].offset, &copy, sizeof copy);
    p += len[i] + 1;
  }
  *out = m;
  return 0;
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

int envelope_request(struct buf *out, const char *id, const char *action,
                     json_t *params) {
  size_t base = out->len;
  if (!id || !action)
    return -1;
  if (buf_append(out, "{\"id\":", 6) < 0 || append_json_string(out, id) < 0 ||
      buf_append(out, ",\"action\":", 10) < 0 || append_json_string(out, action) < 0)
    goto fail;
  if (params) {
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
