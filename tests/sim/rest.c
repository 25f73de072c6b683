/* SPDX-License-Identifier: MIT */
/*
 * rest: the Mixin REST API as the simulator serves it (protocol.md §5, §6;
 * docs/simulator.md lists each endpoint and its answers). Every request
 * carries a fresh JWT signed over METHOD + URI + BODY, checked by
 * http_auth_check; then it is routed to one endpoint, counted, and started
 * through http_endpoint_start, which applies an armed api_slow delay before
 * rest_run applies an armed api_error and otherwise answers. Answers use
 * Mixin's envelope: {"data": ...} on success, {"error": {...}} on failure.
 * Objects (users, conversations, attachments) follow the shapes of the
 * official SDKs and the Mixin docs; what the simulator knows of users and
 * conversations comes from store.c, of attachments from files.c.
 */
#include "sim.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define ZERO_TIME "0001-01-01T00:00:00Z" /* Mixin's "never" (mute_until) */

static const char *method_name(int m) {
  return m == LWSHUMETH_GET ? "GET" : m == LWSHUMETH_POST ? "POST" : "?";
}

/* Lowercase copy of a UUID taken from a path; 0, or -1 when it is not one. */
static int path_uuid(const char *s, char out[UUID_STR_LEN]) {
  if (strlen(s) != UUID_STR_LEN - 1 || !uuid_valid(s))
    return -1;
  for (size_t i = 0; i < UUID_STR_LEN; i++)
    out[i] = (char)tolower((unsigned char)s[i]);
  return 0;
}

int rest_route(const struct http_req *r) {
  const char *p = r->path;
  if (r->method == LWSHUMETH_GET) {
    if (!strcmp(p, "/me"))
      return EP_ME;
    if (!strncmp(p, "/users/", 7) && p[7] && !strchr(p + 7, '/'))
      return EP_USER;
    if (!strncmp(p, "/conversations/", 15) && p[15] && !strchr(p + 15, '/'))
      return EP_CONVERSATION;
    if (!strncmp(p, "/attachments/", 13) && p[13] && !strchr(p + 13, '/'))
      return EP_ATTACHMENT;
  } else if (r->method == LWSHUMETH_POST) {
    if (!strcmp(p, "/acknowledgements"))
      return EP_ACKNOWLEDGEMENTS;
    if (!strcmp(p, "/messages"))
      return EP_MESSAGES;
    if (!strcmp(p, "/conversations"))
      return EP_CONVERSATION_CREATE;
    if (!strcmp(p, "/users/fetch"))
      return EP_USERS_FETCH;
    if (!strcmp(p, "/attachments"))
      return EP_ATTACHMENT_CREATE;
  }
  return -1;
}

/* ---- acknowledgements and messages ---- */

static int rest_acknowledgements(struct sim *sim, struct lws *wsi, struct http_req *r) {
  char why[160];
  json_t *root = http_body_json(r);
  if (!root)
    return http_respond_mixin_error(wsi, r, 400, "body is not JSON");
  int code = store_check_acks(root, why, sizeof why);
  if (code) {
    json_decref(root);
    log_info("POST /acknowledgements refused: %s", why);
    return http_respond_mixin_error(wsi, r, code, why);
  }
  sim->st.ack_requests_rest++;
  size_t i;
  json_t *e;
  json_array_foreach(root, i, e) {
    store_ack(sim, json_string_value(json_object_get(e, "message_id")));
  }
  json_decref(root);
  return http_respond_data(wsi, r, json_array());
}

static int rest_messages(struct sim *sim, struct lws *wsi, struct http_req *r) {
  char why[200];
  json_t *root = http_body_json(r);
  if (!root)
    return http_respond_mixin_error(wsi, r, 400, "body is not JSON");
  size_t n = json_array_size(root);
  if (!json_is_array(root) || n == 0 || n > SIM_MAX_BATCH) {
    json_decref(root);
    sim->st.create_errors++;
    return http_respond_mixin_error(wsi, r, 10002,
                                    "body must be an array of 1..100 messages");
  }
  struct sim_sent *items = calloc(n, sizeof *items);
  if (!items) {
    json_decref(root);
    return http_respond_mixin_error(wsi, r, 500, "out of memory");
  }
  size_t parsed = 0;
  int rc;
  for (; parsed < n; parsed++) {
    char item_why[160];
    if (sent_parse(json_array_get(root, parsed), "rest", &items[parsed], item_why,
                   sizeof item_why) < 0) {
      snprintf(why, sizeof why, "message %zu: %s", parsed, item_why);
      break;
    }
  }
  json_decref(root);
  if (parsed < n) {
    sim->st.create_errors++;
    log_info("POST /messages refused: %s", why);
    rc = http_respond_mixin_error(wsi, r, 10002, why);
    goto done;
  }
  /* create_error counts items: a batch that meets one fails as a whole. */
  int code = 0;
  for (size_t i = 0; i < n; i++) {
    int c = faults_take_create_error(sim);
    if (!c)
      break;
    code = c;
    sim->st.create_errors++;
  }
  if (code) {
    rc = http_respond_mixin_error(wsi, r, code, NULL);
    goto done;
  }
  for (size_t i = 0; i < n; i++) {
    int dup;
    size_t idx = sent_add(sim, &items[i], &dup);
    if (idx != SIM_MSG_INDEX_NONE && !dup)
      ws_queue_receipt(sim, &sim->sent[idx]);
  }
  rc = http_respond_data(wsi, r, json_array());
done:
  for (size_t i = 0; i < n; i++)
    free(items[i].data);
  free(items);
  return rc;
}

/* ---- users ---- */

static int rest_me(struct sim *sim, struct lws *wsi, struct http_req *r) {
  return http_respond_data(wsi, r, store_bot_view(sim, 1));
}

/* The user object of id (any case), or NULL when the simulator has no such
 * user. The bot is a user too. */
static json_t *user_view(const struct sim *sim, const char *id, int *oom) {
  *oom = 0;
  json_t *v = NULL;
  if (!strcasecmp(id, sim->bot_id)) {
    v = store_bot_view(sim, 0);
  } else {
    size_t u = store_user_find(sim, id);
    if (u == SIZE_MAX)
      return NULL;
    v = store_user_view(sim, u);
  }
  *oom = v == NULL;
  return v;
}

static int rest_user(struct sim *sim, struct lws *wsi, struct http_req *r) {
  char id[UUID_STR_LEN];
  int oom = 0;
  json_t *v = path_uuid(r->path + 7, id) < 0 ? NULL : user_view(sim, id, &oom);
  if (v)
    return http_respond_data(wsi, r, v);
  return http_respond_mixin_error(wsi, r, oom ? 500 : 404,
                                  oom ? "out of memory" : "no such user");
}

/* POST /users/fetch: a JSON array of user ids; the known users come back,
 * each once, in the order asked; unknown ids are left out (Mixin docs:
 * api/users/users). */
static int rest_users_fetch(struct sim *sim, struct lws *wsi, struct http_req *r) {
  char why[160];
  json_t *root = http_body_json(r);
  if (!json_is_array(root)) {
    json_decref(root);
    return http_respond_mixin_error(wsi, r, 400, "body must be a JSON array of user ids");
  }
  size_t n = json_array_size(root), i;
  json_t *e;
  int code = 0;
  if (n > SIM_MAX_FETCH) {
    code = 10002;
    snprintf(why, sizeof why, "%zu user ids, at most %d", n, SIM_MAX_FETCH);
  }
  json_array_foreach(root, i, e) {
    if (code)
      break;
    if (!json_is_string(e)) {
      code = 400;
      snprintf(why, sizeof why, "item %zu is not a string", i);
    } else if (!uuid_valid(json_string_value(e)) ||
               json_string_length(e) != UUID_STR_LEN - 1) {
      code = 10002;
      snprintf(why, sizeof why, "item %zu is not a UUID", i);
    }
  }
  if (code) {
    json_decref(root);
    log_info("POST /users/fetch refused: %s", why);
    return http_respond_mixin_error(wsi, r, code, why);
  }
  json_t *out = json_array();
  struct strmap seen = {0};
  int oom = !out;
  json_array_foreach(root, i, e) {
    char id[UUID_STR_LEN];
    if (oom)
      break;
    path_uuid(json_string_value(e), id);
    if (strmap_get(&seen, id, NULL))
      continue;
    json_t *v = user_view(sim, id, &oom);
    if (v && (strmap_put(&seen, id, 1) < 0 || json_array_append_new(out, v) < 0))
      oom = 1;
  }
  strmap_fini(&seen);
  json_decref(root);
  if (oom) {
    json_decref(out);
    return http_respond_mixin_error(wsi, r, 500, "out of memory");
  }
  return http_respond_data(wsi, r, out);
}

/* ---- conversations ---- */

static json_t *participant(const char *user_id, const char *role,
                           const char *created_at) {
  return json_pack("{s:s,s:s,s:s,s:s}", "type", "participant", "user_id", user_id, "role",
                   role, "created_at", created_at);
}

/* The conversation object (Mixin docs: api/conversations/read; Go and Node
 * SDKs), taking participants. participant_sessions lists the sessions the
 * simulator knows: the bot's and its simulated users'. */
static json_t *conv_view(const struct sim *sim, const char *id, const char *category,
                         const char *creator, const char *name, const char *announcement,
                         const char *created_at, json_t *participants) {
  json_t *sessions = json_array();
  size_t i;
  json_t *p;
  json_array_foreach(participants, i, p) {
    const char *uid = json_string_value(json_object_get(p, "user_id"));
    const char *sid = NULL;
    if (!strcmp(uid, sim->bot_id)) {
      sid = sim->session_id;
    } else {
      size_t u = store_user_find(sim, uid);
      sid = u == SIZE_MAX ? NULL : sim->users[u].session_id;
    }
    if (sid && sessions)
      json_array_append_new(sessions, json_pack("{s:s,s:s,s:s,s:s}", "type",
                                                "participant", "user_id", uid,
                                                "session_id", sid, "public_key", ""));
  }
  return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:i,s:o,s:o}", "type",
                   "conversation", "conversation_id", id, "creator_id", creator,
                   "category", category, "name", name, "icon_url", "", "announcement",
                   announcement, "created_at", created_at, "code_id", "", "code_url", "",
                   "mute_until", ZERO_TIME, "expire_in", 0, "participants", participants,
                   "participant_sessions", sessions);
}

/* The 1:1 conversation of the bot and a user who wrote to it. */
static json_t *contact_view(const struct sim *sim, const char *id, size_t user) {
  const struct sim_user *u = &sim->users[user];
  json_t *plist = json_pack("[o,o]", participant(u->id, "", u->created_at),
                            participant(sim->bot_id, "", u->created_at));
  return plist ? conv_view(sim, id, "CONTACT", u->id, "", "", u->created_at, plist)
               : NULL;
}

/* Keeps conv as the answer for id from now on. Returns 0 or -1 (OOM). */
static int conv_keep(struct sim *sim, const char *id, json_t *conv) {
  if (!conv || json_array_append(sim->conversations, conv) < 0)
    return -1;
  return store_conv_note(sim, id, CONV_CREATED, json_array_size(sim->conversations) - 1,
                         1);
}

static int rest_conversation_create(struct sim *sim, struct lws *wsi,
                                    struct http_req *r) {
  json_t *root = http_body_json(r);
  if (!json_is_object(root)) {
    json_decref(root);
    return http_respond_mixin_error(wsi, r, 400, "body is not a JSON object");
  }
  const char *why = NULL;
  const char *cat = json_string_value(json_object_get(root, "category"));
  const char *cid = json_string_value(json_object_get(root, "conversation_id"));
  json_t *parts = json_object_get(root, "participants");
  json_t *name = json_object_get(root, "name");
  json_t *ann = json_object_get(root, "announcement");
  if (!cat || (strcmp(cat, "CONTACT") != 0 && strcmp(cat, "GROUP") != 0))
    why = "category must be CONTACT or GROUP";
  else if (!cid || !uuid_valid(cid))
    why = "conversation_id is not a UUID";
  else if (!json_is_array(parts) || json_array_size(parts) == 0 ||
           json_array_size(parts) > 256)
    why = "participants must be an array of 1..256 users";
  else if (name && !json_is_null(name) &&
           (!json_is_string(name) || json_string_length(name) > 512))
    why = "name must be a string of at most 512 characters";
  else if (ann && !json_is_null(ann) &&
           (!json_is_string(ann) || json_string_length(ann) > 1024))
    why = "announcement must be a string of at most 1024 characters";
  size_t i;
  json_t *p;
  if (!why) {
    json_array_foreach(parts, i, p) {
      const char *uid = json_string_value(json_object_get(p, "user_id"));
      json_t *role = json_object_get(p, "role");
      if (!uid || !uuid_valid(uid)) {
        why = "participant user_id is not a UUID";
        break;
      }
      if (role && !json_is_null(role) && !json_is_string(role)) {
        why = "participant role is not a string";
        break;
      }
    }
  }
  if (!why && !strcmp(cat, "CONTACT")) {
    char want[UUID_STR_LEN];
    const char *uid =
        json_string_value(json_object_get(json_array_get(parts, 0), "user_id"));
    if (json_array_size(parts) != 1)
      why = "a CONTACT conversation has exactly one participant";
    else if (uuid_unique_conversation(sim->bot_id, uid, want) < 0 ||
             strcasecmp(want, cid))
      why = "conversation_id is not the 1:1 id of the bot and the participant";
  }
  if (why) {
    json_decref(root);
    log_info("POST /conversations refused: %s", why);
    return http_respond_mixin_error(wsi, r, 10002, why);
  }
  char id[UUID_STR_LEN];
  int kind = 0;
  size_t idx = 0;
  path_uuid(cid, id);
  /* Creating an existing conversation returns it, as the real API does:
   * one made before, or the 1:1 of a user who wrote (kept from now on). */
  if (store_conv_find(sim, id, &kind, &idx) && kind == CONV_CREATED) {
    json_decref(root);
    return http_respond_data(wsi, r,
                             json_deep_copy(json_array_get(sim->conversations, idx)));
  }
  if (kind == CONV_CONTACT) {
    json_decref(root);
    json_t *conv = contact_view(sim, id, idx);
    if (conv_keep(sim, id, conv) < 0) {
      json_decref(conv);
      return http_respond_mixin_error(wsi, r, 500, "out of memory");
    }
    return http_respond_data(wsi, r, conv);
  }
  int group = !strcmp(cat, "GROUP");
  char now[SIM_TIME_LEN];
  sim_timestamp(now);
  json_t *plist = json_array();
  int has_bot = 0;
  if (plist && group)
    has_bot = !json_array_append_new(plist, participant(sim->bot_id, "OWNER", now));
  json_array_foreach(parts, i, p) {
    char uid[UUID_STR_LEN];
    path_uuid(json_string_value(json_object_get(p, "user_id")), uid);
    if (!strcmp(uid, sim->bot_id) && has_bot)
      continue;
    const char *role = json_string_value(json_object_get(p, "role"));
    json_array_append_new(
        plist,
        participant(uid, group && role && !strcmp(role, "ADMIN") ? "ADMIN" : "", now));
  }
  if (!group)
    json_array_append_new(plist, participant(sim->bot_id, "", now));
  json_t *conv = conv_view(sim, id, cat, sim->bot_id,
                           json_is_string(name) ? json_string_value(name) : "",
                           json_is_string(ann) ? json_string_value(ann) : "", now, plist);
  json_decref(root);
  if (conv_keep(sim, id, conv) < 0) {
    json_decref(conv);
    return http_respond_mixin_error(wsi, r, 500, "out of memory");
  }
  log_info("conversation %s (%s) created", id, group ? "GROUP" : "CONTACT");
  return http_respond_data(wsi, r, conv);
}

/* A group conversation seen only in pushed messages: its members are the
 * bot and everyone who wrote in it. */
static json_t *group_view(const struct sim *sim, const char *id, size_t first) {
  json_t *plist = json_array();
  struct strmap seen = {0};
  const char *created = sim->msgs[first].created_at;
  if (plist)
    json_array_append_new(plist, participant(sim->bot_id, "", created));
  for (size_t i = first; plist && i < sim->nmsgs; i++) {
    const struct sim_msg *m = &sim->msgs[i];
    const char *uid = sim->users[m->user].id;
    if (strcmp(m->conversation_id, id) != 0 || strmap_get(&seen, uid, NULL))
      continue;
    if (strmap_put(&seen, uid, 1) < 0 ||
        json_array_append_new(plist, participant(uid, "", m->created_at)) < 0) {
      json_decref(plist);
      plist = NULL;
    }
  }
  strmap_fini(&seen);
  if (!plist)
    return NULL;
  return conv_view(sim, id, "GROUP", sim->users[sim->msgs[first].user].id, "", "",
                   created, plist);
}

/* GET /conversations/:id. 404 for a conversation that does not exist, 403
 * for one the bot is not in. */
static int rest_conversation(struct sim *sim, struct lws *wsi, struct http_req *r) {
  char id[UUID_STR_LEN];
  int kind = 0;
  size_t idx = 0;
  if (path_uuid(r->path + 15, id) < 0 || !store_conv_find(sim, id, &kind, &idx))
    return http_respond_mixin_error(wsi, r, 404, "no such conversation");
  json_t *v = NULL;
  switch (kind) {
  case CONV_CREATED:
    v = json_deep_copy(json_array_get(sim->conversations, idx));
    break;
  case CONV_CONTACT:
    v = contact_view(sim, id, idx);
    break;
  case CONV_GROUP:
    v = group_view(sim, id, idx);
    break;
  default:
    return http_respond_mixin_error(wsi, r, 403, "the bot is not a participant");
  }
  if (!v)
    return http_respond_mixin_error(wsi, r, 500, "out of memory");
  return http_respond_data(wsi, r, v);
}

/* ---- attachments ---- */

static int rest_attachment_create(struct sim *sim, struct lws *wsi, struct http_req *r) {
  /* The SDKs post no body (Go, fox) or an empty one (Node); none is read. */
  struct sim_attachment *a = files_create(sim);
  json_t *v = a ? files_view(sim, a, 1) : NULL;
  if (!v)
    return http_respond_mixin_error(wsi, r, 500, "out of memory");
  log_info("attachment %s created", a->id);
  return http_respond_data(wsi, r, v);
}

static int rest_attachment(struct sim *sim, struct lws *wsi, struct http_req *r) {
  char id[UUID_STR_LEN];
  struct sim_attachment *a = path_uuid(r->path + 13, id) < 0 ? NULL : files_find(sim, id);
  if (!a)
    return http_respond_mixin_error(wsi, r, 404, "no such attachment");
  json_t *v = files_view(sim, a, 0);
  return v ? http_respond_data(wsi, r, v) : http_respond_mixin_error(wsi, r, 500, "oom");
}

/* ---- dispatch ---- */

int rest_dispatch(struct sim *sim, struct lws *wsi, struct http_req *r) {
  char err[256];
  const char *m = method_name(r->method);
  /* On plain TCP both the signed URI and the path routed on are as sent:
   * "/me?x=1" signs differently from "/me", and "//me" is not "/me". */
  if (http_auth_check(sim, r->auth, m, r->uri, r->body.data ? r->body.data : "",
                      r->body.len, err, sizeof err) < 0) {
    sim->st.auth_failures++;
    log_info("%s %s refused with 401: %s", m, r->uri, err);
    return http_respond_unauthorized(wsi, r);
  }
  log_debug("%s %s (%zu bytes)", m, r->uri, r->body.len);
  r->endpoint = rest_route(r);
  if (r->endpoint < 0)
    return http_respond_mixin_error(wsi, r, 404, r->path);
  return http_endpoint_start(sim, wsi, r);
}

int rest_run(struct sim *sim, struct lws *wsi, struct http_req *r) {
  int code = faults_take_api_error(sim, r->endpoint);
  if (code == 401)
    return http_respond_unauthorized(wsi, r);
  if (code)
    return http_respond_mixin_error(wsi, r, code, "api_error fault");
  switch (r->endpoint) {
  case EP_ME:
    return rest_me(sim, wsi, r);
  case EP_USER:
    return rest_user(sim, wsi, r);
  case EP_USERS_FETCH:
    return rest_users_fetch(sim, wsi, r);
  case EP_CONVERSATION_CREATE:
    return rest_conversation_create(sim, wsi, r);
  case EP_CONVERSATION:
    return rest_conversation(sim, wsi, r);
  case EP_ATTACHMENT_CREATE:
    return rest_attachment_create(sim, wsi, r);
  case EP_ATTACHMENT:
    return rest_attachment(sim, wsi, r);
  case EP_MESSAGES:
    return rest_messages(sim, wsi, r);
  case EP_ACKNOWLEDGEMENTS:
    return rest_acknowledgements(sim, wsi, r);
  default:
    return http_respond_mixin_error(wsi, r, 404, r->path);
  }
}
