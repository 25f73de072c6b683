/* SPDX-License-Identifier: MIT */
/*
 * blazebot-sim serves the Mixin REST API a plugin may call (Plugin API 1.1):
 * GET /me, GET /users/:id, POST /users/fetch, POST /conversations, GET
 * /conversations/:id, POST /attachments, GET /attachments/:id, and the
 * presigned upload_url and public view_url of an attachment. Each endpoint
 * is called with real signed tokens on loopback and judged by its status
 * and body: the success path, a token signed over another request (401), an
 * unknown id (404, or 403 for a conversation without the bot) and a
 * malformed body (400 or 10002). The upload round trip is checked byte for
 * byte, with each header the real presigned URL is signed with. Every fault
 * kind (api_error 500, 429, 401, any; api_slow) fires on at least one
 * endpoint, armed both on the command line and through POST /_sim/fault.
 * Last, --chat shows the images and files a bot sends, and chat users keep
 * their names and identity numbers from run to run.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "base64.h"
#include "check.h"
#include "harness.h"
#include "keystore.h"
#include "util.h"

#define ALICE "0a11ce00-0000-4000-8000-00000000a11c"
#define BOB "0b0b0000-0000-4000-8000-000000000b0b"
#define CAROL "0ca201e0-0000-4000-8000-0000000ca201"
#define NOBODY "deadbeef-0000-4000-8000-00000000dead"
#define GROUP2 "96a0c0d1-5d8c-4b0e-9a52-3c5f4f6b7a81"
#define UPLOAD_HEADERS                                                                   \
  "Content-Type: application/octet-stream\r\nx-amz-acl: public-read\r\n"
#define MAX_UPLOAD (10 * 1024 * 1024)

static int g_port;
static struct keystore *g_ks;
static struct sim g_sim;

static long long mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A Mixin API call with a fresh token signed over method, sign_uri (NULL:
 * the target sent) and sign_body (NULL: the body sent). Returns the HTTP
 * status; *out gets the parsed JSON answer (NULL when it is not JSON). */
static int api_signed(const char *method, const char *target, const char *body,
                      const char *sign_uri, const char *sign_body, json_t **out) {
  char *tok = NULL, hdr[4096];
  const char *sb = sign_body ? sign_body : body;
  struct h_response r;
  if (out)
    *out = NULL;
  if (auth_sign(g_ks, method, sign_uri ? sign_uri : target, sb, strlen(sb), 600, NULL,
                &tok) < 0)
    return -1;
  snprintf(hdr, sizeof hdr,
           "Authorization: Bearer %s\r\nContent-Type: application/json\r\n", tok);
  free(tok);
  h_http(g_port, method, target, hdr, body, strlen(body), &r);
  if (out && r.body)
    *out = json_loads(r.body, 0, NULL);
  int status = r.status;
  h_response_free(&r);
  return status;
}

static int api(const char *method, const char *target, const char *body, json_t **out) {
  return api_signed(method, target, body, NULL, NULL, out);
}

static json_t *data(json_t *j) {
  return json_object_get(j, "data");
}

static const char *dstr(json_t *j, const char *key) {
  return json_string_value(json_object_get(data(j), key));
}

static long err_code(json_t *j) {
  json_t *c = json_object_get(json_object_get(j, "error"), "code");
  return json_is_integer(c) ? (long)json_integer_value(c) : -1;
}

static long api_calls(const char *endpoint) {
  json_t *st = h_sim_stats(&g_sim);
  json_t *v = json_object_get(json_object_get(st, "api_calls"), endpoint);
  long n = json_is_integer(v) ? (long)json_integer_value(v) : -1;
  json_decref(st);
  return n;
}

static int arm(const char *spec) {
  char body[200];
  snprintf(body, sizeof body, "{\"fault\":\"%s\"}", spec);
  json_t *j = h_sim_post(&g_sim, "/_sim/fault", body);
  int ok = json_is_string(json_object_get(j, "armed"));
  json_decref(j);
  return ok;
}

static int all_digits(const char *s, size_t n) {
  if (!s || strlen(s) != n)
    return 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return 0;
  }
  return 1;
}

/* A user id in an answer's data array, at position i. */
static const char *user_at(json_t *j, size_t i) {
  return json_string_value(json_object_get(json_array_get(data(j), i), "user_id"));
}

/* 1 when the conversation's participants are exactly these ids (any order),
 * with the bot's role role_of_bot. */
static int has_participants(json_t *conv, const char *const ids[], size_t n,
                            const char *role_of_bot) {
  json_t *ps = json_object_get(conv, "participants");
  if (json_array_size(ps) != n)
    return 0;
  for (size_t i = 0; i < n; i++) {
    int found = 0;
    size_t k;
    json_t *p;
    json_array_foreach(ps, k, p) {
      const char *uid = json_string_value(json_object_get(p, "user_id"));
      const char *role = json_string_value(json_object_get(p, "role"));
      if (uid && !strcmp(uid, ids[i]) &&
          (strcmp(uid, g_ks->user_id) != 0 || (role && !strcmp(role, role_of_bot))))
        found = 1;
    }
    if (!found)
      return 0;
  }
  return 1;
}

static void push_from(const char *user, const char *conversation) {
  char body[300];
  if (conversation)
    snprintf(body, sizeof body, "{\"user_id\":\"%s\",\"conversation_id\":\"%s\"}", user,
             conversation);
  else
    snprintf(body, sizeof body, "{\"user_id\":\"%s\"}", user);
  json_t *j = h_sim_post(&g_sim, "/_sim/push", body);
  CHECK(json_integer_value(json_object_get(j, "count")) == 1);
  json_decref(j);
}

static void users(void) {
  json_t *j = NULL, *k = NULL;
  char path[128];
  push_from(ALICE, NULL);
  push_from(BOB, NULL);

  /* GET /me, and the bot as any user sees it. */
  CHECK_INT(api("GET", "/me", "", &j), 200);
  CHECK_STR(dstr(j, "type"), "user");
  CHECK_STR(dstr(j, "user_id"), g_ks->user_id);
  CHECK_STR(dstr(j, "app_id"), g_ks->user_id);
  CHECK_STR(dstr(j, "relationship"), "ME");
  CHECK(all_digits(dstr(j, "identity_number"), 10) &&
        !strncmp(dstr(j, "identity_number"), "7000", 4));
  CHECK(dstr(j, "full_name") && *dstr(j, "full_name"));
  snprintf(path, sizeof path, "/users/%s", g_ks->user_id);
  CHECK_INT(api("GET", path, "", &k), 200);
  CHECK_STR(dstr(k, "identity_number"), dstr(j, "identity_number"));
  CHECK_STR(dstr(k, "full_name"), dstr(j, "full_name"));
  json_decref(j);
  json_decref(k);
  CHECK_INT(api_signed("GET", "/me", "", "/me?x=1", NULL, &j), 401);
  CHECK_INT(err_code(j), 401);
  json_decref(j);

  /* GET /users/:id: a user who wrote, stable, as /_sim/users has it. */
  long calls = api_calls("user");
  CHECK_INT(api("GET", "/users/" ALICE, "", &j), 200);
  CHECK_STR(dstr(j, "type"), "user");
  CHECK_STR(dstr(j, "user_id"), ALICE);
  CHECK(all_digits(dstr(j, "identity_number"), 8));
  CHECK_STR(dstr(j, "relationship"), "STRANGER");
  CHECK(dstr(j, "avatar_url") && dstr(j, "created_at") && dstr(j, "biography"));
  CHECK_INT(api("GET", "/users/" ALICE, "", &k), 200);
  CHECK_STR(dstr(k, "identity_number"), dstr(j, "identity_number"));
  CHECK_STR(dstr(k, "full_name"), dstr(j, "full_name"));
  json_decref(k);
  k = h_sim_get(&g_sim, "/_sim/users");
  size_t i;
  json_t *u;
  int listed = 0;
  json_array_foreach(k, i, u) {
    if (!strcmp(json_string_value(json_object_get(u, "user_id")), ALICE))
      listed = !strcmp(json_string_value(json_object_get(u, "full_name")),
                       dstr(j, "full_name")) &&
               !strcmp(json_string_value(json_object_get(u, "identity_number")),
                       dstr(j, "identity_number"));
  }
  CHECK(listed);
  json_decref(k);
  json_decref(j);
  CHECK_INT(api("GET", "/users/" NOBODY, "", &j), 202);
  CHECK_INT(err_code(j), 404);
  json_decref(j);
  CHECK_INT(api("GET", "/users/alice", "", &j), 202);
  CHECK_INT(err_code(j), 404);
  json_decref(j);
  CHECK_INT(api_signed("GET", "/users/" ALICE, "", "/users/" BOB, NULL, &j), 401);
  CHECK_INT(err_code(j), 401);
  json_decref(j);
  /* Calls with an accepted token count, the 401 does not. */
  CHECK_INT(api_calls("user") - calls, 4);

  /* POST /users/fetch: known users once each, in the order asked. */
  char body[8192];
  snprintf(body, sizeof body, "[\"%s\",\"%s\",\"%s\",\"%s\",\"%s\"]", ALICE, NOBODY, BOB,
           ALICE, g_ks->user_id);
  CHECK_INT(api("POST", "/users/fetch", body, &j), 200);
  CHECK_INT(json_array_size(data(j)), 3);
  CHECK_STR(user_at(j, 0), ALICE);
  CHECK_STR(user_at(j, 1), BOB);
  CHECK_STR(user_at(j, 2), g_ks->user_id);
  json_decref(j);
  CHECK_INT(api("POST", "/users/fetch", "[]", &j), 200);
  CHECK(json_is_array(data(j)) && json_array_size(data(j)) == 0);
  json_decref(j);
  const struct {
    const char *body;
    long code;
  } bad[] = {
      {"{\"ids\":[\"" ALICE "\"]}", 400},
      {"not json", 400},
      {"[1]", 400},
      {"[\"alice\"]", 10002},
      {"[\"" ALICE "\",\"0a11ce00-0000-4000-8000\"]", 10002},
  };
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    CHECK_INT(api("POST", "/users/fetch", bad[i].body, &j), 202);
    CHECK_INT(err_code(j), bad[i].code);
    json_decref(j);
  }
  size_t o = (size_t)snprintf(body, sizeof body, "[");
  for (i = 0; i < 101; i++)
    o += (size_t)snprintf(body + o, sizeof body - o, "%s\"%s\"", i ? "," : "", ALICE);
  snprintf(body + o, sizeof body - o, "]");
  CHECK_INT(api("POST", "/users/fetch", body, &j), 202);
  CHECK_INT(err_code(j), 10002);
  json_decref(j);
  CHECK_INT(api_signed("POST", "/users/fetch", "[ ]", NULL, "[]", &j), 401);
  CHECK_INT(err_code(j), 401);
  json_decref(j);
}

static void conversations(void) {
  json_t *j = NULL, *k = NULL;
  char body[1024], path[128], cid[UUID_STR_LEN], gid[UUID_STR_LEN];
  const char *bot = g_ks->user_id;

  /* POST /conversations: CONTACT with a user who never wrote. */
  CHECK(uuid_unique_conversation(bot, CAROL, cid) == 0);
  snprintf(body, sizeof body,
           "{\"category\":\"CONTACT\",\"conversation_id\":\"%s\","
           "\"participants\":[{\"user_id\":\"%s\"}]}",
           cid, CAROL);
  CHECK_INT(api("POST", "/conversations", body, &j), 200);
  CHECK_STR(dstr(j, "type"), "conversation");
  CHECK_STR(dstr(j, "conversation_id"), cid);
  CHECK_STR(dstr(j, "category"), "CONTACT");
  CHECK_STR(dstr(j, "creator_id"), bot);
  const char *contact[] = {CAROL, bot};
  CHECK(has_participants(data(j), contact, 2, ""));
  snprintf(path, sizeof path, "/conversations/%s", cid);
  CHECK_INT(api("GET", path, "", &k), 200);
  CHECK_STR(dstr(k, "conversation_id"), cid);
  CHECK_STR(dstr(k, "created_at"), dstr(j, "created_at"));
  CHECK(has_participants(data(k), contact, 2, ""));
  json_decref(k);
  /* Creating it again returns the same one. */
  CHECK_INT(api("POST", "/conversations", body, &k), 200);
  CHECK_STR(dstr(k, "created_at"), dstr(j, "created_at"));
  json_decref(k);
  json_decref(j);

  /* A group: the bot owns it. */
  CHECK(uuid_v4(gid) == 0);
  snprintf(body, sizeof body,
           "{\"category\":\"GROUP\",\"conversation_id\":\"%s\",\"name\":\"team\","
           "\"participants\":[{\"user_id\":\"%s\"},{\"user_id\":\"%s\"}]}",
           gid, ALICE, BOB);
  CHECK_INT(api("POST", "/conversations", body, &j), 200);
  CHECK_STR(dstr(j, "name"), "team");
  const char *team[] = {bot, ALICE, BOB};
  CHECK(has_participants(data(j), team, 3, "OWNER"));
  json_decref(j);
  snprintf(path, sizeof path, "/conversations/%s", gid);
  CHECK_INT(api("GET", path, "", &j), 200);
  CHECK(has_participants(data(j), team, 3, "OWNER"));
  json_decref(j);

  /* GET: the 1:1 of a user who wrote exists without being created. */
  CHECK(uuid_unique_conversation(bot, ALICE, cid) == 0);
  snprintf(path, sizeof path, "/conversations/%s", cid);
  CHECK_INT(api("GET", path, "", &j), 200);
  CHECK_STR(dstr(j, "category"), "CONTACT");
  const char *alice_bot[] = {ALICE, bot};
  CHECK(has_participants(data(j), alice_bot, 2, ""));
  /* Creating it returns that one. */
  snprintf(body, sizeof body,
           "{\"category\":\"CONTACT\",\"conversation_id\":\"%s\","
           "\"participants\":[{\"user_id\":\"%s\"}]}",
           cid, ALICE);
  CHECK_INT(api("POST", "/conversations", body, &k), 200);
  CHECK_STR(dstr(k, "created_at"), dstr(j, "created_at"));
  CHECK(has_participants(data(k), alice_bot, 2, ""));
  json_decref(k);
  json_decref(j);
  /* A group the bot only got messages in. */
  push_from(ALICE, GROUP2);
  CHECK_INT(api("GET", "/conversations/" GROUP2, "", &j), 200);
  CHECK_STR(dstr(j, "category"), "GROUP");
  CHECK(has_participants(data(j), alice_bot, 2, ""));
  json_decref(j);
  /* Unknown: 404; the 1:1 of two other users: 403. */
  CHECK(uuid_unique_conversation(bot, NOBODY, cid) == 0);
  snprintf(path, sizeof path, "/conversations/%s", cid);
  CHECK_INT(api("GET", path, "", &j), 202);
  CHECK_INT(err_code(j), 404);
  json_decref(j);
  CHECK_INT(api("GET", "/conversations/not-an-id", "", &j), 202);
  CHECK_INT(err_code(j), 404);
  json_decref(j);
  CHECK(uuid_unique_conversation(ALICE, BOB, cid) == 0);
  snprintf(path, sizeof path, "/conversations/%s", cid);
  CHECK_INT(api("GET", path, "", &j), 202);
  CHECK_INT(err_code(j), 403);
  json_decref(j);
  CHECK_INT(api_signed("GET", "/conversations/" GROUP2, "", "/conversations", NULL, &j),
            401);
  json_decref(j);

  /* Malformed bodies. */
  CHECK_INT(api("POST", "/conversations", "[]", &j), 202);
  CHECK_INT(err_code(j), 400);
  json_decref(j);
  snprintf(body, sizeof body,
           "{\"category\":\"CONTACT\",\"conversation_id\":\"%s\","
           "\"participants\":[{\"user_id\":\"%s\"}]}",
           gid, CAROL);
  CHECK_INT(api("POST", "/conversations", body, &j), 202);
  CHECK_INT(err_code(j), 10002);
  json_decref(j);
}

/* The target (path and query) of a URL on the simulator. */
static const char *target_of(const char *url) {
  char prefix[64];
  int n = snprintf(prefix, sizeof prefix, "http://127.0.0.1:%d/", g_port);
  return url && !strncmp(url, prefix, (size_t)n) ? url + n - 1 : NULL;
}

static int put(const char *target, const char *headers, const void *body, size_t len,
               struct h_response *r) {
  h_http(g_port, "PUT", target ? target : "/", headers, body, len, r);
  return r->status;
}

static void attachments(void) {
  json_t *j = NULL;
  struct h_response r;
  char path[128];
  /* The first create meets the --fault armed on the command line. */
  CHECK_INT(api("POST", "/attachments", "", &j), 500);
  CHECK_INT(err_code(j), 500);
  json_decref(j);
  CHECK_INT(api("POST", "/attachments", "", &j), 200);
  CHECK_STR(dstr(j, "type"), "attachment");
  const char *id = dstr(j, "attachment_id");
  CHECK(id && uuid_valid(id));
  char aid[UUID_STR_LEN] = "", up[512] = "", view[512] = "";
  snprintf(aid, sizeof aid, "%s", id ? id : "");
  snprintf(up, sizeof up, "%s", dstr(j, "upload_url") ? dstr(j, "upload_url") : "");
  snprintf(view, sizeof view, "%s", dstr(j, "view_url") ? dstr(j, "view_url") : "");
  CHECK(dstr(j, "created_at") && *dstr(j, "created_at"));
  json_decref(j);
  const char *upt = target_of(up), *viewt = target_of(view);
  snprintf(path, sizeof path, "/_upload/%s?", aid);
  CHECK(upt && !strncmp(upt, path, strlen(path)));
  snprintf(path, sizeof path, "/_view/%s", aid);
  CHECK(viewt && !strcmp(viewt, path));

  /* GET /attachments/:id: known, nothing uploaded yet; unknown: 404. */
  snprintf(path, sizeof path, "/attachments/%s", aid);
  CHECK_INT(api("GET", path, "", &j), 200);
  CHECK_STR(dstr(j, "attachment_id"), aid);
  CHECK_STR(dstr(j, "view_url"), view);
  CHECK(!json_object_get(data(j), "size"));
  json_decref(j);
  CHECK_INT(api("GET", "/attachments/" NOBODY, "", &j), 202);
  CHECK_INT(err_code(j), 404);
  json_decref(j);
  CHECK_INT(api_signed("GET", path, "", "/attachments", NULL, &j), 401);
  json_decref(j);
  CHECK_INT(api_signed("POST", "/attachments", "", "/attachment", NULL, &j), 401);
  json_decref(j);

  /* The upload_url: no token, exactly the signed headers, as given. */
  static unsigned char bytes[12345];
  for (size_t i = 0; i < sizeof bytes; i++)
    bytes[i] = (unsigned char)(i * 7 + 3);
  CHECK_INT(put(upt, "Content-Type: image/png\r\nx-amz-acl: public-read\r\n", bytes,
                sizeof bytes, &r),
            403);
  CHECK(r.body && strstr(r.body, "<Code>SignatureDoesNotMatch</Code>"));
  h_response_free(&r);
  CHECK_INT(
      put(upt, "Content-Type: application/octet-stream\r\n", bytes, sizeof bytes, &r),
      403);
  h_response_free(&r);
  char *tok = NULL, hdr[4096];
  CHECK(auth_sign(g_ks, "PUT", upt ? upt : "/", bytes, sizeof bytes, 600, NULL, &tok) ==
        0);
  snprintf(hdr, sizeof hdr, "%sAuthorization: Bearer %s\r\n", UPLOAD_HEADERS, tok);
  free(tok);
  CHECK_INT(put(upt, hdr, bytes, sizeof bytes, &r), 400);
  CHECK(r.body && strstr(r.body, "<Code>InvalidArgument</Code>"));
  h_response_free(&r);
  char tampered[512];
  snprintf(tampered, sizeof tampered, "%s", upt ? upt : "/");
  size_t tl = strlen(tampered);
  tampered[tl - 1] = tampered[tl - 1] == '0' ? '1' : '0';
  CHECK_INT(put(tampered, UPLOAD_HEADERS, bytes, sizeof bytes, &r), 403);
  h_response_free(&r);
  snprintf(path, sizeof path, "/_upload/%s", aid);
  CHECK_INT(put(path, UPLOAD_HEADERS, bytes, sizeof bytes, &r), 403);
  CHECK(r.body && strstr(r.body, "<Code>AccessDenied</Code>"));
  h_response_free(&r);
  h_http(g_port, "GET", upt ? upt : "/", NULL, "", 0, &r);
  CHECK_INT(r.status, 403);
  h_response_free(&r);
  CHECK_INT(put(upt, UPLOAD_HEADERS, bytes, sizeof bytes, &r), 200);
  CHECK(r.head && strcasestr(r.head, "\r\netag: \""));
  h_response_free(&r);

  /* What GET /attachments/:id and the view_url show after it. */
  snprintf(path, sizeof path, "/attachments/%s", aid);
  CHECK_INT(api("GET", path, "", &j), 200);
  CHECK_INT(json_integer_value(json_object_get(data(j), "size")), sizeof bytes);
  CHECK_STR(dstr(j, "mime_type"), "application/octet-stream");
  json_decref(j);
  h_http(g_port, "GET", viewt ? viewt : "/", NULL, "", 0, &r);
  CHECK_INT(r.status, 200);
  CHECK(r.len == sizeof bytes && r.body && !memcmp(r.body, bytes, sizeof bytes));
  h_response_free(&r);

  /* A second attachment: no view before its upload, 10 MiB at most. */
  CHECK_INT(api("POST", "/attachments", "", &j), 200);
  char aid2[UUID_STR_LEN], up2[512];
  snprintf(aid2, sizeof aid2, "%s",
           dstr(j, "attachment_id") ? dstr(j, "attachment_id") : "");
  snprintf(up2, sizeof up2, "%s", dstr(j, "upload_url") ? dstr(j, "upload_url") : "");
  const char *view2 = target_of(dstr(j, "view_url"));
  h_http(g_port, "GET", view2 ? view2 : "/", NULL, "", 0, &r);
  CHECK_INT(r.status, 404);
  CHECK(r.body && strstr(r.body, "<Code>NoSuchKey</Code>"));
  h_response_free(&r);
  json_decref(j);
  unsigned char *big = calloc(1, MAX_UPLOAD + 1);
  CHECK(big != NULL);
  if (big) {
    CHECK_INT(put(target_of(up2), UPLOAD_HEADERS, big, MAX_UPLOAD + 1, &r), 400);
    CHECK(r.body && strstr(r.body, "<Code>EntityTooLarge</Code>"));
    h_response_free(&r);
    snprintf(path, sizeof path, "/attachments/%s", aid2);
    CHECK_INT(api("GET", path, "", &j), 200);
    CHECK(!json_object_get(data(j), "size"));
    json_decref(j);
    CHECK_INT(put(target_of(up2), UPLOAD_HEADERS, big, MAX_UPLOAD, &r), 200);
    h_response_free(&r);
    CHECK_INT(api("GET", path, "", &j), 200);
    CHECK_INT(json_integer_value(json_object_get(data(j), "size")), MAX_UPLOAD);
    json_decref(j);
    free(big);
  }

  json_t *st = h_sim_stats(&g_sim);
  CHECK_INT(h_stat(st, "attachments"), 2);
  CHECK_INT(h_stat(st, "uploads"), 2);
  CHECK_INT(h_stat(st, "uploaded_bytes"), (long)sizeof bytes + MAX_UPLOAD);
  json_t *calls = json_object_get(st, "api_calls");
  CHECK_INT(json_integer_value(json_object_get(calls, "attachment_create")), 3);
  CHECK_INT(json_integer_value(json_object_get(calls, "upload")), 2);
  CHECK_INT(json_integer_value(json_object_get(calls, "view")), 2);
  json_decref(st);
  json_t *list = h_sim_get(&g_sim, "/_sim/attachments");
  CHECK_INT(json_array_size(list), 2);
  CHECK_INT(json_integer_value(json_object_get(json_array_get(list, 0), "size")),
            sizeof bytes);
  json_decref(list);

  /* Faults on the S3 side: a 500 and a throttle, then the same URL works. */
  CHECK(arm("api_error:upload:500"));
  CHECK_INT(put(upt, UPLOAD_HEADERS, bytes, 10, &r), 500);
  CHECK(r.body && strstr(r.body, "<Code>InternalError</Code>"));
  h_response_free(&r);
  CHECK_INT(put(upt, UPLOAD_HEADERS, bytes, 10, &r), 200);
  h_response_free(&r);
  CHECK(arm("api_error:view:429"));
  h_http(g_port, "GET", viewt ? viewt : "/", NULL, "", 0, &r);
  CHECK_INT(r.status, 503);
  h_response_free(&r);
  h_http(g_port, "GET", viewt ? viewt : "/", NULL, "", 0, &r);
  CHECK(r.status == 200 && r.len == 10);
  h_response_free(&r);
}

/* A request that is answered late; returns its status and *ms. */
static int timed(const char *method, const char *target, const char *body,
                 long long *ms) {
  long long t0 = mono_ms();
  json_t *j = NULL;
  int st = api(method, target, body, &j);
  *ms = mono_ms() - t0;
  json_decref(j);
  return st;
}

static void faults(void) {
  json_t *j = NULL, *st0 = h_sim_stats(&g_sim);
  long long ms;
  long fired0 = h_stat(st0, "faults_fired");
  json_decref(st0);

  /* api_error: 500 (HTTP 500), 429 (Mixin error, twice), 401, any. */
  CHECK(arm("api_error:user:500"));
  CHECK_INT(api("GET", "/users/" ALICE, "", &j), 500);
  CHECK_INT(err_code(j), 500);
  json_decref(j);
  CHECK_INT(api("GET", "/users/" ALICE, "", NULL), 200);
  CHECK(arm("api_error:users_fetch:429x2"));
  for (int i = 0; i < 2; i++) {
    CHECK_INT(api("POST", "/users/fetch", "[\"" ALICE "\"]", &j), 202);
    CHECK_INT(err_code(j), 429);
    json_decref(j);
  }
  CHECK_INT(api("POST", "/users/fetch", "[\"" ALICE "\"]", NULL), 200);
  CHECK(arm("api_error:me:401"));
  CHECK_INT(api("GET", "/me", "", &j), 401);
  CHECK_INT(err_code(j), 401);
  json_decref(j);
  CHECK_INT(api("GET", "/me", "", NULL), 200);
  CHECK(arm("api_error:any:403"));
  CHECK_INT(api("GET", "/conversations/" GROUP2, "", &j), 202);
  CHECK_INT(err_code(j), 403);
  json_decref(j);
  CHECK_INT(api("GET", "/conversations/" GROUP2, "", NULL), 200);

  /* api_slow: the answer waits, then the next one does not. */
  CHECK(arm("api_slow:conversation:800"));
  CHECK_INT(timed("GET", "/conversations/" GROUP2, "", &ms), 200);
  CHECK(ms >= 750);
  CHECK_INT(timed("GET", "/conversations/" GROUP2, "", &ms), 200);
  CHECK(ms < 750);
  /* Slow and failing: the delay comes first. */
  CHECK(arm("api_slow:users_fetch:500"));
  CHECK(arm("api_error:users_fetch:500"));
  long long t0 = mono_ms();
  CHECK_INT(api("POST", "/users/fetch", "[]", &j), 500);
  CHECK(mono_ms() - t0 >= 450);
  json_decref(j);
  /* A client that leaves while its answer is held. */
  CHECK(arm("api_slow:me:400"));
  char *tok = NULL, req[4096];
  CHECK(auth_sign(g_ks, "GET", "/me", "", 0, 600, NULL, &tok) == 0);
  snprintf(req, sizeof req,
           "GET /me HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n\r\n",
           g_port, tok ? tok : "");
  free(tok);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)g_port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        send(fd, req, strlen(req), MSG_NOSIGNAL) == (ssize_t)strlen(req));
  h_sleep_ms(150); /* the request is in and held */
  if (fd >= 0)
    close(fd);
  h_sleep_ms(500);
  CHECK_INT(api("GET", "/me", "", NULL), 200);

  json_t *st = h_sim_stats(&g_sim);
  CHECK_INT(h_stat(st, "faults_fired") - fired0, 9);
  json_decref(st);

  /* Specs that do not parse are refused, and nothing is armed. */
  const char *bad[] = {"api_error:nope:500", "api_error:me",       "api_slow:me:0",
                       "api_slow:me:60001",  "api_error:me:500x0", "api_error@2:me:500",
                       "api_error:me:99"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char body[100];
    snprintf(body, sizeof body, "{\"fault\":\"%s\"}", bad[i]);
    json_t *e = h_sim_post(&g_sim, "/_sim/fault", body);
    CHECK(json_is_string(json_object_get(e, "error")));
    json_decref(e);
  }
  CHECK_INT(api("GET", "/me", "", NULL), 200);
}

/* --chat shows the media a bot sends; chat users keep name and number. */
static void chat_part(const char *ks) {
  char dir[512], script[600], body[2048], b64[512], mid[UUID_STR_LEN];
  snprintf(dir, sizeof dir, "%s", h_dir("sim-api-chat"));
  snprintf(script, sizeof script, "%s/script.txt", dir);
  CHECK(h_write(script, "hello\n", 0600) == 0);
  const char *args[] = {"--chat", script, NULL};
  char identity[2][16] = {"", ""};
  for (int run = 0; run < 2; run++) {
    if (h_sim_start(&g_sim, dir, ks, args) < 0)
      return;
    g_port = g_sim.port;
    char alice[UUID_STR_LEN] = "", conv[UUID_STR_LEN] = "";
    json_t *us = h_sim_get(&g_sim, "/_sim/users");
    size_t i;
    json_t *u;
    json_array_foreach(us, i, u) {
      if (!strcmp(json_string_value(json_object_get(u, "full_name")), "alice")) {
        snprintf(alice, sizeof alice, "%s",
                 json_string_value(json_object_get(u, "user_id")));
        snprintf(conv, sizeof conv, "%s",
                 json_string_value(json_object_get(u, "conversation_id")));
      }
    }
    json_decref(us);
    CHECK(uuid_valid(alice));
    json_t *j = NULL;
    char path[128];
    snprintf(path, sizeof path, "/users/%s", alice);
    CHECK_INT(api("GET", path, "", &j), 200);
    CHECK_STR(dstr(j, "full_name"), "alice");
    snprintf(identity[run], sizeof identity[run], "%s",
             dstr(j, "identity_number") ? dstr(j, "identity_number") : "");
    json_decref(j);
    if (run == 1)
      break;

    /* An uploaded image and a file whose attachment was never made. */
    CHECK_INT(api("POST", "/attachments", "", &j), 200);
    char aid[UUID_STR_LEN] = "";
    snprintf(aid, sizeof aid, "%s",
             dstr(j, "attachment_id") ? dstr(j, "attachment_id") : "");
    static unsigned char png[12288];
    struct h_response r;
    CHECK_INT(put(target_of(dstr(j, "upload_url")), UPLOAD_HEADERS, png, sizeof png, &r),
              200);
    h_response_free(&r);
    json_decref(j);
    char payloads[2][512];
    const char *categories[2] = {"PLAIN_IMAGE", "PLAIN_DATA"};
    snprintf(payloads[0], sizeof payloads[0],
             "{\"attachment_id\":\"%s\",\"mime_type\":\"image/png\",\"width\":640,"
             "\"height\":480,\"size\":12288}",
             aid);
    snprintf(payloads[1], sizeof payloads[1],
             "{\"attachment_id\":\"%s\",\"mime_type\":\"application/pdf\",\"size\":3072,"
             "\"name\":\"report.pdf\"}",
             NOBODY);
    for (i = 0; i < 2; i++) {
      base64_encode((const unsigned char *)payloads[i], strlen(payloads[i]), 1, b64);
      CHECK(uuid_v4(mid) == 0);
      snprintf(
          body, sizeof body,
          "[{\"conversation_id\":\"%s\",\"recipient_id\":\"%s\",\"message_id\":\"%s\","
          "\"category\":\"%s\",\"data_base64\":\"%s\"}]",
          conv, alice, mid, categories[i], b64);
      CHECK_INT(api("POST", "/messages", body, NULL), 200);
    }
    h_sim_stop(&g_sim);
    /* Nobody spoke yet, so each says whom it is for. */
    CHECK(
        h_contains(g_sim.p.out, "  bot  > (to alice) [image 640x480 image/png 12 KB]\n"));
    CHECK(h_contains(g_sim.p.out,
                     "  bot  > (to alice) [file report.pdf application/pdf 3 "
                     "KB; no such attachment]\n"));
  }
  h_sim_stop(&g_sim);
  CHECK(all_digits(identity[0], 8));
  CHECK_STR(identity[1], identity[0]);
  CHECK(h_no_sanitizer_report(dir, "sim.err"));
}

int main(void) {
  char dir[512], ks[600], err[256];
  snprintf(dir, sizeof dir, "%s", h_dir("sim-api"));
  CHECK(h_keygen(dir, "ed25519", ks, sizeof ks) == 0);
  CHECK(keystore_load(ks, 0, &g_ks, err, sizeof err) == 0);
  const char *args[] = {"--fault", "api_error:attachment_create:500", NULL};
  if (g_ks && h_sim_start(&g_sim, dir, ks, args) == 0) {
    g_port = g_sim.port;
    users();
    conversations();
    attachments();
    faults();
    CHECK(h_wait(&g_sim.p, 0) != 0); /* still running */
    h_sim_stop(&g_sim);
    CHECK(h_no_sanitizer_report(dir, "sim.err"));
    chat_part(ks);
  } else {
    CHECK(!"simulator started");
  }
  keystore_free(g_ks);
  return check_done("integration.sim_api");
}
