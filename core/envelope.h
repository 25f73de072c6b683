/* SPDX-License-Identifier: MIT */
/*
 * envelope: Blaze frames as JSON (protocol.md §3) and the message view
 * (§3.5). Parsing never trusts the peer: every field is type-checked and a
 * frame that is not a JSON object or lacks what its kind needs yields an
 * error text for the log and a counter, never a crash. A parsed message is
 * one allocation that owns all of its strings and the decoded data, so it can
 * be handed to another thread and freed with one free().
 */
#ifndef BLAZEBOT_ENVELOPE_H
#define BLAZEBOT_ENVELOPE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* A decoded inbound frame. root is owned; the other pointers borrow it. */
struct envelope {
  json_t *root;
  const char *id;     /* "" when absent */
  const char *action; /* "" when absent */
  json_t *data;       /* NULL when absent or JSON null */
  json_t *params;     /* NULL when absent (frames the simulator receives) */
  /* error object, if present: */
  int has_error;
  int error_status;
  int error_code;
  const char *error_description; /* "" when absent; also reads "desciption" */
  /* envelope_scan only (root, data and params stay NULL): */
  const char *data_raw; /* the "data" member's text when it is an object */
  size_t data_raw_len;
  const char *data_source; /* its "source" when a string, else "" */
  char scan_buf[64 + 64 + 256 + 48];
};

/* Parses one frame (inflated JSON). Returns 0, or -1 with a reason in err
 * (not JSON, not an object, "action" missing or not a string). */
int envelope_parse(const char *json, size_t len, struct envelope *out, char *err,
                   size_t errlen);
void envelope_fini(struct envelope *env);

/* What the daemon's session needs of a frame, without building a tree
 * (most frames are answers and receipts, read for a few members): id,
 * action, the error object and where the "data" object lies, with its
 * "source". The whole frame is validated as JSON all the same (jscan.h).
 * Returns 0, or -1 with a reason in err like envelope_parse. out points
 * into json for data_raw: keep json until done with out. */
int envelope_scan(const char *json, size_t len, struct envelope *out, char *err,
                  size_t errlen);

/* One incoming message. All strings are NUL-terminated and never NULL ("" when
 * absent). data is the decoded payload (NUL-terminated one past data_len). */
struct message {
  const char *message_id;
  const char *conversation_id;
  const char *user_id;
  const char *representative_id;
  const char *quote_message_id;
  const char *session_id;
  const char *category;
  const char *source;
  const char *status;
  const char *created_at;
  const char *updated_at;
  const unsigned char *data;
  size_t data_len;
  const char *raw_json; /* the "data" object of the frame, as the server sent it */
  size_t raw_json_len;
  int64_t received_ms; /* set by the caller */
};

enum {
  ENVELOPE_EMISSING = -1, /* a required field is missing or has the wrong type */
  ENVELOPE_EBASE64 = -2,  /* data_base64 / data is not valid base64 */
  ENVELOPE_ENOMEM = -3,
};

/* Builds a message from a pushed frame's data object (a MessageView).
 * Required: message_id, conversation_id, user_id, category (strings, the ids
 * UUIDs). data_base64 is preferred, data is the fallback; both alphabets and
 * optional padding are accepted; neither present = empty payload. On success
 * *out is one malloc'd block (free with free()). On error returns an
 * ENVELOPE_E* code with a reason in err; *message_id_out (if not NULL) gets
 * the message id when the frame had a valid one, so the caller can still
 * acknowledge a poison message, else "". */
int envelope_message(json_t *data, struct message **out, char message_id_out[64],
                     char *err, size_t errlen);
/* The same from the data object's JSON text (an envelope's data_raw): no
 * tree is built, and raw_json is that text exactly as the server sent it. */
int envelope_message_raw(const char *text, size_t len, struct message **out,
                         char message_id_out[64], char *err, size_t errlen);

/* Appends {"id":id,"action":action[,"params":params]} as compact JSON to
 * out; params may be NULL. Returns 0/-1. */
struct buf;
int envelope_request(struct buf *out, const char *id, const char *action, json_t *params);
/* The same with params already JSON text (len bytes), spliced as is. */
int envelope_request_text(struct buf *out, const char *id, const char *action,
                          const char *params, size_t len);
/* Appends s as a JSON string (quoted, escaped). Returns 0, or -1 when s is
 * not valid UTF-8 or memory ran out. */
int envelope_append_string(struct buf *out, const char *s);

#endif
