/* SPDX-License-Identifier: MIT */
/*
 * files: attachments, the way Mixin keeps them on Amazon S3 (Mixin docs:
 * api/messages/attachment-upload). POST /attachments (rest.c) makes one and
 * hands out an upload_url and a view_url on the simulator itself. The
 * upload_url is presigned, as S3's are: it needs no Mixin token (one sent
 * anyway is refused, as S3 refuses two kinds of authentication), it expires
 * after SIM_UPLOAD_TTL_S, its signature (HMAC-SHA256 under a key drawn at
 * start) covers the method, the path and the expiry, and it takes a PUT of
 * at most SIM_MAX_UPLOAD bytes with exactly the headers every Mixin SDK
 * sends, which the real URL is signed with: "Content-Type:
 * application/octet-stream" and "x-amz-acl: public-read". The view_url is
 * public (the object is public-read) and serves the last bytes uploaded.
 * Errors on these URLs are S3's: an HTTP status and an XML <Error>. All the
 * bytes kept are bounded by SIM_MAX_UPLOAD_TOTAL.
 */
#include "sim.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "log.h"

#define UPLOAD_PREFIX "/_upload/"
#define VIEW_PREFIX "/_view/"
#define UPLOAD_TYPE "application/octet-stream"
#define UPLOAD_ACL "public-read"

int files_init(struct sim *sim) {
  return RAND_bytes(sim->url_key, sizeof sim->url_key) == 1 &&
                 strmap_init(&sim->attachment_index, 16) == 0
             ? 0
             : -1;
}

void files_fini(struct sim *sim) {
  for (size_t i = 0; i < sim->nattachments; i++)
    free(sim->attachments[i].data);
  free(sim->attachments);
  sim->attachments = NULL;
  sim->nattachments = sim->attachments_cap = 0;
  strmap_fini(&sim->attachment_index);
}

struct sim_attachment *files_create(struct sim *sim) {
  if (sim->nattachments == sim->attachments_cap) {
    size_t nc = sim->attachments_cap ? sim->attachments_cap * 2 : 16;
    struct sim_attachment *p = realloc(sim->attachments, nc * sizeof *p);
    if (!p)
      return NULL;
    sim->attachments = p;
    sim->attachments_cap = nc;
  }
  struct sim_attachment *a = &sim->attachments[sim->nattachments];
  memset(a, 0, sizeof *a);
  if (uuid_v4(a->id) < 0 ||
      strmap_put(&sim->attachment_index, a->id, (int64_t)sim->nattachments) < 0)
    return NULL;
  sim_timestamp(a->created_at);
  a->expires = wall_s() + SIM_UPLOAD_TTL_S;
  sim->nattachments++;
  sim->st.attachments++;
  return a;
}

struct sim_attachment *files_find(const struct sim *sim, const char *id) {
  char lid[UUID_STR_LEN];
  int64_t idx;
  size_t n = strlen(id);
  if (n != UUID_STR_LEN - 1)
    return NULL;
  for (size_t i = 0; i <= n; i++)
    lid[i] = (char)tolower((unsigned char)id[i]);
  if (!strmap_get(&sim->attachment_index, lid, &idx))
    return NULL;
  return &sim->attachments[idx];
}

/* ---- URLs ---- */

/* "http://127.0.0.1:PORT": where the simulator is reached. */
static void base_url(const struct sim *sim, char *out, size_t cap) {
  const char *host = sim->cfg.listen_addr;
  if (!strcmp(host, "0.0.0.0"))
    host = "127.0.0.1";
  else if (!strcmp(host, "::"))
    host = "::1";
  int v6 = strchr(host, ':') != NULL;
  snprintf(out, cap, "%s://%s%s%s:%d", sim->cfg.tls_cert ? "https" : "http",
           v6 ? "[" : "", host, v6 ? "]" : "", lws_get_vhost_listen_port(sim->vhost));
}

/* The signature of an upload URL: HMAC-SHA256 of "PUT <path> <expires>",
 * in hex. */
static void upload_sig(const struct sim *sim, const char *id, long long expires,
                       char out[65]) {
  char msg[384];
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  int n = snprintf(msg, sizeof msg, "PUT " UPLOAD_PREFIX "%s %lld", id, expires);
  if (n < 0 || (size_t)n >= sizeof msg ||
      !HMAC(EVP_sha256(), sim->url_key, (int)sizeof sim->url_key, (unsigned char *)msg,
            (size_t)n, md, &mdlen) ||
      mdlen != 32) {
    memset(out, '0', 64); /* matches no signature a client can present */
    out[64] = 0;
    return;
  }
  hex_encode(md, 32, out);
}

json_t *files_view(const struct sim *sim, const struct sim_attachment *a,
                   int with_upload) {
  char base[128], url[512];
  base_url(sim, base, sizeof base);
  snprintf(url, sizeof url, "%s" VIEW_PREFIX "%s", base, a->id);
  json_t *o = json_pack("{s:s,s:s,s:s,s:s}", "type", "attachment", "attachment_id", a->id,
                        "view_url", url, "created_at", a->created_at);
  if (o && with_upload) {
    char sig[65];
    upload_sig(sim, a->id, (long long)a->expires, sig);
    snprintf(url, sizeof url, "%s" UPLOAD_PREFIX "%s?expires=%lld&sig=%s", base, a->id,
             (long long)a->expires, sig);
    if (json_object_set_new(o, "upload_url", json_string(url)) < 0) {
      json_decref(o);
      return NULL;
    }
  }
  /* Not in the real answer: what the simulator knows of the upload. */
  if (o && a->uploaded &&
      (json_object_set_new(o, "size", json_integer((json_int_t)a->size)) < 0 ||
       json_object_set_new(o, "mime_type", json_string(a->mime_type)) < 0)) {
    json_decref(o);
    return NULL;
  }
  return o;
}

json_t *files_list_json(const struct sim *sim) {
  json_t *arr = json_array();
  for (size_t i = 0; arr && i < sim->nattachments; i++) {
    const struct sim_attachment *a = &sim->attachments[i];
    if (json_array_append_new(
            arr, json_pack("{s:s,s:s,s:b,s:I,s:s,s:I}", "attachment_id", a->id,
                           "created_at", a->created_at, "uploaded", a->uploaded, "size",
                           (json_int_t)a->size, "mime_type", a->mime_type, "uploads",
                           (json_int_t)a->uploads)) < 0) {
      json_decref(arr);
      return NULL;
    }
  }
  return arr;
}

int files_is_path(const char *path) {
  return !strncmp(path, UPLOAD_PREFIX, sizeof UPLOAD_PREFIX - 1) ||
         !strncmp(path, VIEW_PREFIX, sizeof VIEW_PREFIX - 1);
}

/* ---- requests ---- */

/* An S3 error: the status and <Error><Code/><Message/></Error>. */
static int s3_error(struct lws *wsi, struct http_req *r, unsigned int status,
                    const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int s3_error(struct lws *wsi, struct http_req *r, unsigned int status,
                    const char *code, const char *fmt, ...) {
  char msg[512], body[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  /* The message is the simulator's own text: no '<' or '&' to escape but
   * what a client sent, which is replaced. */
  for (char *p = msg; *p; p++) {
    if (*p == '<' || *p == '>' || *p == '&' || (unsigned char)*p < 0x20)
      *p = '?';
  }
  int n = snprintf(body, sizeof body,
                   "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code>"
                   "<Message>%s</Message></Error>",
                   code, msg);
  log_info("%s %s refused with %u %s: %s", r->method == LWSHUMETH_PUT ? "PUT" : "GET",
           r->path, status, code, msg);
  return http_respond(wsi, r, status, "application/xml", NULL, NULL, body,
                      n < 0                      ? 0
                      : (size_t)n >= sizeof body ? sizeof body - 1
                                                 : (size_t)n);
}

/* The value of name in the query of uri ("" when absent), into out. */
static void query_param(const char *uri, const char *name, char *out, size_t cap) {
  const char *q = strchr(uri, '?');
  size_t nl = strlen(name);
  out[0] = 0;
  while (q && *q) {
    q++;
    size_t l = strcspn(q, "&");
    if (l > nl && q[nl] == '=' && !strncmp(q, name, nl)) {
      size_t vl = l - nl - 1;
      snprintf(out, cap, "%.*s", (int)(vl < cap ? vl : cap - 1), q + nl + 1);
      return;
    }
    q += l;
  }
}

static int upload_check(struct sim *sim, struct lws *wsi, struct http_req *r) {
  const char *id = r->path + sizeof UPLOAD_PREFIX - 1;
  char expires[24], sig[80], want[65];
  if (r->auth)
    return s3_error(wsi, r, 400, "InvalidArgument",
                    "Only one auth mechanism allowed: the upload URL is presigned, so no "
                    "Authorization header (do not send the Mixin token here)");
  query_param(r->uri, "expires", expires, sizeof expires);
  query_param(r->uri, "sig", sig, sizeof sig);
  if (!expires[0] || !sig[0])
    return s3_error(wsi, r, 403, "AccessDenied",
                    "Query-string authentication requires the expires and sig parameters "
                    "of the upload_url, as given");
  char *end;
  long long exp = strtoll(expires, &end, 10);
  upload_sig(sim, id, *end ? -1 : exp, want);
  if (r->method != LWSHUMETH_PUT || strlen(sig) != 64 ||
      CRYPTO_memcmp(sig, want, 64) != 0)
    return s3_error(
        wsi, r, 403, "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you "
        "provided (the upload_url takes a PUT, used exactly as given)");
  if (exp < wall_s())
    return s3_error(wsi, r, 403, "AccessDenied", "Request has expired");
  if (strcmp(r->content_type, UPLOAD_TYPE) != 0 || strcmp(r->amz_acl, UPLOAD_ACL) != 0)
    return s3_error(wsi, r, 403, "SignatureDoesNotMatch",
                    "The upload_url is signed for the headers Content-Type: " UPLOAD_TYPE
                    " and x-amz-acl: " UPLOAD_ACL
                    " (what the Mixin SDKs send); this PUT has Content-Type: %.64s and "
                    "x-amz-acl: %.32s",
                    r->content_type[0] ? r->content_type : "(none)",
                    r->amz_acl[0] ? r->amz_acl : "(none)");
  if (!files_find(sim, id))
    return s3_error(wsi, r, 404, "NoSuchUpload", "No attachment %.40s", id);
  if (r->body_too_big)
    return s3_error(
        wsi, r, 400, "EntityTooLarge",
        "Your proposed upload exceeds the maximum allowed size: this simulator "
        "takes at most %d bytes per attachment",
        SIM_MAX_UPLOAD);
  return 1;
}

int files_dispatch(struct sim *sim, struct lws *wsi, struct http_req *r) {
  int upload = !strncmp(r->path, UPLOAD_PREFIX, sizeof UPLOAD_PREFIX - 1);
  r->endpoint = upload ? EP_UPLOAD : EP_VIEW;
  if (upload) {
    int rc = upload_check(sim, wsi, r);
    if (rc <= 0)
      return rc;
  } else if (r->method != LWSHUMETH_GET) {
    return s3_error(wsi, r, 405, "MethodNotAllowed",
                    "The specified method is not allowed against this resource");
  }
  return http_endpoint_start(sim, wsi, r);
}

/* An api_error fault in S3's terms: S3 throttles with 503 SlowDown and has
 * no 401 or 429; other codes are used as the HTTP status. */
static int s3_fault(struct lws *wsi, struct http_req *r, int code) {
  if (code == 429 || code == 503)
    return s3_error(wsi, r, 503, "SlowDown",
                    "Please reduce your request rate (api_error)");
  if (code == 401 || code == 403)
    return s3_error(wsi, r, 403, "AccessDenied", "Access Denied (api_error fault)");
  if (code >= 400 && code <= 599 && code != 500)
    return s3_error(wsi, r, (unsigned)code, "SimulatedError", "api_error fault %d", code);
  return s3_error(wsi, r, 500, "InternalError",
                  "We encountered an internal error. Please try again. (api_error)");
}

static void md5_hex(const void *p, size_t n, char out[35]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  char hex[33];
  if (EVP_Digest(p, n, md, &mdlen, EVP_md5(), NULL) != 1 || mdlen != 16)
    memset(md, 0, 16);
  hex_encode(md, 16, hex);
  snprintf(out, 35, "\"%s\"", hex);
}

int files_run(struct sim *sim, struct lws *wsi, struct http_req *r) {
  int code = faults_take_api_error(sim, r->endpoint);
  if (code)
    return s3_fault(wsi, r, code);
  int upload = r->endpoint == EP_UPLOAD;
  const char *id = r->path + (upload ? sizeof UPLOAD_PREFIX : sizeof VIEW_PREFIX) - 1;
  struct sim_attachment *a = files_find(sim, id);
  char etag[35];
  if (!upload) {
    if (!a || !a->uploaded)
      return s3_error(wsi, r, 404, "NoSuchKey", "The specified key does not exist.");
    md5_hex(a->data, a->size, etag);
    return http_respond(wsi, r, 200, a->mime_type, "etag:", etag, a->data, a->size);
  }
  if (!a)
    return s3_error(wsi, r, 404, "NoSuchUpload", "No attachment %.40s", id);
  size_t n = r->body.len;
  if (sim->attachment_bytes - a->size + n > SIM_MAX_UPLOAD_TOTAL)
    return s3_error(wsi, r, 400, "EntityTooLarge",
                    "The simulator keeps at most %llu bytes of attachments in all",
                    (unsigned long long)SIM_MAX_UPLOAD_TOTAL);
  unsigned char *copy = malloc(n + 1);
  if (!copy)
    return s3_error(wsi, r, 500, "InternalError", "out of memory");
  if (n)
    memcpy(copy, r->body.data, n);
  sim->attachment_bytes = sim->attachment_bytes - a->size + n;
  free(a->data);
  a->data = copy;
  a->size = n;
  snprintf(a->mime_type, sizeof a->mime_type, "%s", r->content_type);
  a->uploaded = 1;
  a->uploads++;
  sim->st.uploads++;
  sim->st.uploaded_bytes += n;
  log_info("attachment %s: %zu bytes uploaded", a->id, n);
  md5_hex(copy, n, etag);
  return http_respond(wsi, r, 200, "application/xml", "etag:", etag, "", 0);
}
