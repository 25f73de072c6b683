/* SPDX-License-Identifier: MIT */
/*
 * rest: Mixin's HTTPS API on the daemon's lws context (I/O thread only). One
 * request per connection, each with a freshly signed JWT whose sig claim
 * covers METHOD + PATH + BODY exactly as sent, Content-Type application/json
 * and an X-Request-Id that is also the token's jti. Mixin answers errors as
 * HTTP 202 with {"error":{...}}; rest folds that into one result code so the
 * callers see: ok, a Mixin error code, or a transport failure.
 */
#ifndef BLAZEBOT_REST_H
#define BLAZEBOT_REST_H

#include <libwebsockets.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "keystore.h"

struct rest_result {
  int http_status;  /* 0 when no response arrived */
  int error_code;   /* Mixin error code from {"error":{"code"}}; 0 if none */
  const char *body; /* response body (NUL-terminated), borrowed for the call */
  size_t body_len;
};

/* Called exactly once per request, never synchronously from rest_post. ok is
 * 1 for a 2xx answer without an error object. */
typedef void (*rest_done_fn)(void *ud, int ok, const struct rest_result *res);

struct rest;

extern const struct lws_protocols rest_protocol;

struct rest *rest_new(struct lws_context *ctx, const struct config *cfg,
                      const struct keystore *ks);
/* Fails every outstanding request (callbacks run) and frees. */
void rest_free(struct rest *r);
void rest_set_config(struct rest *r, const struct config *cfg, const struct keystore *ks);

/* Sends METHOD path with body (copied). Returns 0, or -1 when the request
 * could not even be started (then cb is not called). */
int rest_request(struct rest *r, const char *method, const char *path, const char *body,
                 size_t len, rest_done_fn cb, void *ud);
/* PUTs body to url, an attachment's presigned upload URL (https; http only
 * to loopback), without a token and with the headers S3 checks
 * (Content-Type: application/octet-stream, x-amz-acl: public-read).
 * Returns 0, or -1 with a reason in err (then cb is not called). */
int rest_upload(struct rest *r, const char *url, const void *body, size_t len,
                rest_done_fn cb, void *ud, char *err, size_t errlen);
/* Requests finished, by endpoint ("POST /messages", "GET /users", "PUT
 * upload": the method and the first path segment, ids left out) and HTTP
 * status (0: no answer). I/O thread. */
#define REST_COUNTS 64
struct rest_count {
  char endpoint[48];
  int status;
  uint64_t n;
};
/* The table and its length (entries past REST_COUNTS are not counted). */
const struct rest_count *rest_counts(const struct rest *r, size_t *n);
/* Enforces per-request deadlines (request_timeout_ms); call from the tick. */
void rest_tick(struct rest *r, int64_t now);

#endif
