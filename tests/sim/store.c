/* SPDX-License-Identifier: MIT */
/*
 * store: the simulator's data — the users (and the user objects of the REST
 * API), the message store (what the bot receives), the sent log (what the
 * bot sends), what each conversation id names, and the counters. Messages
 * live in one array in arrival order, which is the order pushes follow;
 * lookups by message id go through a hash map, so acknowledging 20,000
 * messages costs 20,000 hash probes, never a scan. Ids are kept lowercase;
 * ids from the bot are lowercased before lookup. A user's identity_number is
 * derived from its id (8 digits; the bot's is 7000 and 6 more), so it does
 * not change from run to run for a user whose id does not.
 */
#include "sim.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base64.h"
#include "envelope.h"
#include "log.h"

/* ---- strmap ---- */

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ull;
  }
  /* Final mix so that the low bits used for the slot depend on all input. */
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

int strmap_init(struct strmap *m, size_t hint) {
  size_t cap = 16;
  while (cap < hint * 2 && cap < ((size_t)1 << 40))
    cap *= 2;
  m->slots = calloc(cap, sizeof *m->slots);
  if (!m->slots)
    return -1;
  m->cap = cap;
  m->count = 0;
  return 0;
}

void strmap_fini(struct strmap *m) {
  for (size_t i = 0; i < m->cap; i++)
    free(m->slots[i].key);
  free(m->slots);
  m->slots = NULL;
  m->cap = m->count = 0;
}

/* The slot holding key, or the empty slot where it would go. */
static struct strmap_slot *find_slot(struct strmap_slot *slots, size_t cap,
                                     const char *key, uint64_t h) {
  size_t mask = cap - 1;
  for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
    struct strmap_slot *s = &slots[i];
    if (!s->key || (s->hash == h && strcmp(s->key, key) == 0))
      return s;
  }
}

int strmap_get(const struct strmap *m, const char *key, int64_t *val) {
  if (!m->cap)
    return 0;
  struct strmap_slot *s = find_slot(m->slots, m->cap, key, hash_str(key));
  if (!s->key)
    return 0;
  if (val)
    *val = s->val;
  return 1;
}

/* Moves every entry (that passes the filter) into a table of new_cap. */
static int rehash(struct strmap *m, size_t new_cap, int filter, int64_t min_val) {
  struct strmap_slot *ns = calloc(new_cap, sizeof *ns);
  if (!ns)
    return -1;
  size_t count = 0;
  for (size_t i = 0; i < m->cap; i++) {
    struct strmap_slot *s = &m->slots[i];
    if (!s->key)
      continue;
    if (filter && s->val < min_val) {
      free(s->key);
      continue;
    }
    *find_slot(ns, new_cap, s->key, s->hash) = *s;
    count++;
  }
  free(m->slots);
  m->slots = ns;
  m->cap = new_cap;
  m->count = count;
  return 0;
}

int strmap_put(struct strmap *m, const char *key, int64_t val) {
  if (!m->cap && strmap_init(m, 8) < 0)
    return -1;
  /* Keep the load at most one half so probe runs stay short. */
  if ((m->count + 1) * 2 > m->cap && rehash(m, m->cap * 2, 0, 0) < 0)
    return -1;
  uint64_t h = hash_str(key);
  struct strmap_slot *s = find_slot(m->slots, m->cap, key, h);
  if (s->key) {
    s->val = val;
    return 0;
  }
  s->key = strdup(key);
  if (!s->key)
    return -1;
  s->hash = h;
  s->val = val;
  m->count++;
  return 0;
}

int strmap_prune_below(struct strmap *m, int64_t min_val) {
  if (!m->cap)
    return 0;
  return rehash(m, m->cap, 1, min_val);
}

/* ---- helpers ---- */

void sim_timestamp(char out[SIM_TIME_LEN]) {
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(out, SIM_TIME_LEN, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, SIM_TIME_LEN - n, ".%06ldZ", (long)(ts.tv_nsec / 1000));
}

/* Lowercase copy of an id for lookups; 0, or -1 if it cannot be an id. */
static int lower_id(const char *in, char out[64]) {
  size_t n = strnlen(in, 64);
  if (n == 0 || n >= 64)
    return -1;
  for (size_t i = 0; i <= n; i++)
    out[i] = (char)tolower((unsigned char)in[i]);
  return 0;
}

static void copy_lower(char *dst, size_t cap, const char *src) {
  size_t i = 0;
  for (; src[i] && i + 1 < cap; i++)
    dst[i] = (char)tolower((unsigned char)src[i]);
  dst[i] = 0;
}

/* ---- users and messages ---- */

#define ZERO_TIME "0001-01-01T00:00:00Z" /* Mixin's "never" (mute_until) */
#define BOT_NAME "blazebot-sim bot"

int store_init(struct sim *sim) {
  if (uuid_series_init(&sim->ids) < 0)
    return -1;
  if (strmap_init(&sim->msg_index,
                  (size_t)(sim->cfg.preload > 0 ? sim->cfg.preload : 64)) < 0 ||
      strmap_init(&sim->sent_index, 64) < 0 || strmap_init(&sim->jti, 64) < 0 ||
      strmap_init(&sim->user_index, 16) < 0 ||
      strmap_init(&sim->identity_index, 16) < 0 || strmap_init(&sim->conv_index, 16) < 0)
    return -1;
  sim->conversations = json_array();
  if (!sim->conversations)
    return -1;
  snprintf(sim->bot_identity, sizeof sim->bot_identity, "7000%06llu",
           (unsigned long long)(hash_str(sim->bot_id) % 1000000u));
  sim_timestamp(sim->bot_created_at);
  for (long i = 0; i < sim->cfg.users; i++) {
    char id[UUID_STR_LEN];
    if (uuid_v4(id) < 0 || store_user(sim, id) == SIZE_MAX)
      return -1;
  }
  return 0;
}

void store_fini(struct sim *sim) {
  for (size_t i = 0; i < sim->nmsgs; i++) {
    free(sim->msgs[i].data);
    free(sim->msgs[i].push);
  }
  free(sim->msgs);
  sim->msgs = NULL;
  sim->nmsgs = sim->msgs_cap = 0;
  for (size_t i = 0; i < sim->nsent; i++)
    free(sim->sent[i].data);
  free(sim->sent);
  free(sim->latency);
  sim->sent = NULL;
  sim->nsent = sim->sent_cap = 0;
  free(sim->users);
  sim->users = NULL;
  sim->nusers = sim->users_cap = 0;
  strmap_fini(&sim->msg_index);
  strmap_fini(&sim->sent_index);
  strmap_fini(&sim->jti);
  strmap_fini(&sim->user_index);
  strmap_fini(&sim->identity_index);
  strmap_fini(&sim->conv_index);
  json_decref(sim->conversations);
  sim->conversations = NULL;
}

/* Grows an array of elem-sized items so that one more fits. */
static int grow(void **arr, size_t *cap, size_t n, size_t elem) {
  if (n < *cap)
    return 0;
  size_t nc = *cap ? *cap * 2 : 64;
  if (nc > ((size_t)-1) / elem)
    return -1;
  void *p = realloc(*arr, nc * elem);
  if (!p)
    return -1;
  *arr = p;
  *cap = nc;
  return 0;
}

/* Gives user idx an identity_number of 8 digits derived from its id, the
 * next free one when another user has it. Returns 0 or -1 (out of memory). */
static int assign_identity(struct sim *sim, size_t idx) {
  struct sim_user *u = &sim->users[idx];
  uint64_t n = hash_str(u->id) % 90000000u;
  for (;;) {
    snprintf(u->identity_number, sizeof u->identity_number, "%llu",
             (unsigned long long)(10000000u + n));
    if (!strmap_get(&sim->identity_index, u->identity_number, NULL))
      return strmap_put(&sim->identity_index, u->identity_number, (int64_t)idx);
    n = (n + 1) % 90000000u;
  }
}

size_t store_user(struct sim *sim, const char *user_id) {
  char id[UUID_STR_LEN];
  int64_t idx;
  copy_lower(id, sizeof id, user_id);
  if (strmap_get(&sim->user_index, id, &idx))
    return (size_t)idx;
  if (grow((void **)&sim->users, &sim->users_cap, sim->nusers, sizeof *sim->users) < 0)
    return SIZE_MAX;
  struct sim_user *u = &sim->users[sim->nusers];
  memset(u, 0, sizeof *u);
  memcpy(u->id, id, sizeof id);
  snprintf(u->full_name, sizeof u->full_name, "user %zu", sim->nusers + 1);
  sim_timestamp(u->created_at);
  if (uuid_v4(u->session_id) < 0 ||
      uuid_unique_conversation(sim->bot_id, u->id, u->conversation_id) < 0 ||
      strmap_put(&sim->user_index, u->id, (int64_t)sim->nusers) < 0 ||
      assign_identity(sim, sim->nusers) < 0)
    return SIZE_MAX;
  /* The first users' 1:1 conversations with each other exist, without the
   * bot: GET /conversations/:id answers 403 for them. */
  for (size_t j = 0; sim->nusers < SIM_PAIR_USERS && j < sim->nusers; j++) {
    char cid[UUID_STR_LEN];
    if (uuid_unique_conversation(sim->users[j].id, u->id, cid) < 0 ||
        store_conv_note(sim, cid, CONV_FOREIGN, 0, 0) < 0)
      return SIZE_MAX;
  }
  return sim->nusers++;
}

size_t store_user_find(const struct sim *sim, const char *user_id) {
  char id[64];
  int64_t idx;
  if (lower_id(user_id, id) < 0 || !strmap_get(&sim->user_index, id, &idx))
    return SIZE_MAX;
  return (size_t)idx;
}

void store_user_name(struct sim *sim, size_t user, const char *full_name) {
  snprintf(sim->users[user].full_name, sizeof sim->users[user].full_name, "%s",
           full_name);
}

/* The fields every user object has (Mixin docs: _resp.user; Node SDK
 * UserResponse; Go SDK User). */
static json_t *user_object(const char *id, const char *identity, const char *name,
                           const char *relationship, const char *created_at) {
  return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:b,s:b,s:b}", "type",
                   "user", "user_id", id, "identity_number", identity, "phone", "",
                   "full_name", name, "biography", "", "avatar_url", "", "relationship",
                   relationship, "mute_until", ZERO_TIME, "created_at", created_at,
                   "is_verified", 0, "is_scam", 0, "is_deactivated", 0);
}

json_t *store_user_view(const struct sim *sim, size_t user) {
  const struct sim_user *u = &sim->users[user];
  return user_object(u->id, u->identity_number, u->full_name, "STRANGER", u->created_at);
}

json_t *store_bot_view(const struct sim *sim, int me) {
  json_t *o =
      user_object(sim->bot_id, sim->bot_identity, BOT_NAME, "ME", sim->bot_created_at);
  if (o && json_object_set_new(o, "app_id", json_string(sim->bot_id)) < 0) {
    json_decref(o);
    return NULL;
  }
  if (o && me && json_object_set_new(o, "session_id", json_string(sim->session_id)) < 0) {
    json_decref(o);
    return NULL;
  }
  return o;
}

json_t *store_users_json(const struct sim *sim) {
  json_t *arr = json_array();
  for (size_t i = 0; arr && i < sim->nusers; i++) {
    const struct sim_user *u = &sim->users[i];
    if (json_array_append_new(
            arr, json_pack("{s:s,s:s,s:s,s:s,s:s,s:b}", "user_id", u->id, "full_name",
                           u->full_name, "identity_number", u->identity_number,
                           "session_id", u->session_id, "conversation_id",
                           u->conversation_id, "wrote", u->wrote)) < 0) {
      json_decref(arr);
      return NULL;
    }
  }
  return arr;
}

#define CONV_SHIFT 48

int store_conv_note(struct sim *sim, const char *id, int kind, size_t idx,
                    int overwrite) {
  if (!overwrite && strmap_get(&sim->conv_index, id, NULL))
    return 0;
  return strmap_put(&sim->conv_index, id, ((int64_t)kind << CONV_SHIFT) | (int64_t)idx);
}

int store_conv_find(const struct sim *sim, const char *id, int *kind, size_t *idx) {
  char lid[64];
  int64_t v;
  if (lower_id(id, lid) < 0 || !strmap_get(&sim->conv_index, lid, &v))
    return 0;
  *kind = (int)(v >> CONV_SHIFT);
  *idx = (size_t)(v & (((int64_t)1 << CONV_SHIFT) - 1));
  return 1;
}

size_t store_next_user(struct sim *sim) {
  size_t base = (size_t)sim->cfg.users;
  if (base == 0 || base > sim->nusers)
    base = sim->nusers;
  size_t u = sim->next_user % base;
  sim->next_user++;
  return u;
}

size_t store_add(struct sim *sim, size_t user, const char *category,
                 const char *conversation_id, const void *data, size_t len, int poison) {
  if (grow((void **)&sim->msgs, &sim->msgs_cap, sim->nmsgs, sizeof *sim->msgs) < 0)
    return SIM_MSG_INDEX_NONE;
  struct sim_msg *m = &sim->msgs[sim->nmsgs];
  memset(m, 0, sizeof *m);
  m->data = malloc(len + 1);
  if (!m->data)
    return SIM_MSG_INDEX_NONE;
  uuid_series_next(&sim->ids, m->message_id);
  if (len)
    memcpy(m->data, data, len);
  m->data[len] = 0;
  m->data_len = len;
  m->user = user;
  m->poison = poison ? 1 : 0;
  snprintf(m->category, sizeof m->category, "%s", category);
  snprintf(m->conversation_id, sizeof m->conversation_id, "%s",
           conversation_id ? conversation_id : sim->users[user].conversation_id);
  sim_timestamp(m->created_at);
  if (strmap_put(&sim->msg_index, m->message_id, (int64_t)sim->nmsgs) < 0) {
    free(m->data);
    return SIM_MSG_INDEX_NONE;
  }
  /* A user who wrote to the bot has a 1:1 conversation with it; a message
   * to any other conversation makes that a group the bot is in. */
  struct sim_user *u = &sim->users[user];
  if (!strcmp(m->conversation_id, u->conversation_id)) {
    if (!u->wrote &&
        store_conv_note(sim, u->conversation_id, CONV_CONTACT, user, 0) < 0) {
      free(m->data);
      return SIM_MSG_INDEX_NONE;
    }
    u->wrote = 1;
  } else if (store_conv_note(sim, m->conversation_id, CONV_GROUP, sim->nmsgs, 0) < 0) {
    free(m->data);
    return SIM_MSG_INDEX_NONE;
  }
  if (!poison)
    sim->nonpoison++;
  return sim->nmsgs++;
}

void store_advance_unacked(struct sim *sim) {
  while (sim->first_unacked < sim->nmsgs && sim->msgs[sim->first_unacked].acked)
    sim->first_unacked++;
}

int store_all_acked(const struct sim *sim) {
  return sim->nonpoison > 0 && sim->acked_nonpoison == sim->nonpoison;
}

void store_ack(struct sim *sim, const char *message_id) {
  char id[64];
  int64_t idx;
  sim->st.ack_receipts++;
  if (lower_id(message_id, id) < 0) {
    sim->st.acks_unknown++;
    return;
  }
  if (strmap_get(&sim->msg_index, id, &idx)) {
    struct sim_msg *m = &sim->msgs[idx];
    m->ack_count++;
    if (m->ack_count == 2)
      sim->st.acked_twice++;
    if (!m->acked) {
      m->acked = 1;
      free(m->push);
      m->push = NULL;
      sim->st.acked++;
      if (!m->poison)
        sim->acked_nonpoison++;
      store_advance_unacked(sim);
      if (chat_enabled(sim))
        chat_on_ack(sim);
    }
    if (sim->cfg.exit_when_acked && !sim->exit_pending && store_all_acked(sim)) {
      log_info("every stored message is acknowledged; exiting (--exit-when-acked)");
      sim->exit_pending = 1;
      sim->exit_deadline_ms = now_ms() + 300;
    }
    return;
  }
  if (strmap_get(&sim->sent_index, id, NULL)) {
    /* The bot acknowledged a receipt of its own message: protocol.md §3.4
     * says never to, so this is counted as a client bug. */
    sim->st.receipt_acks++;
    log_info("bot acknowledged a receipt of its own message %s", id);
    return;
  }
  sim->st.acks_unknown++;
  log_debug("ack for unknown message %s", id);
}

/* Appends "name":"value" (escaped), with a comma first unless first. */
static int text_member(struct buf *b, const char *name, const char *value) {
  /* Appends, not buf_appendf: a frame has a dozen members, and formatting
   * them was a tenth of the simulator's instructions. */
  return buf_append(b, ",\"", 2) < 0 || buf_append(b, name, strlen(name)) < 0 ||
                 buf_append(b, "\":", 2) < 0 || envelope_append_string(b, value) < 0
             ? -1
             : 0;
}

int store_msg_text(struct sim *sim, const struct sim_msg *m, const char *source,
                   struct buf *out) {
  const struct sim_user *u = &sim->users[m->user];
  char small[512];
  const char *std = small, *url = small;
  char *heap = NULL;
  if (m->poison) {
    std = url = (const char *)m->data;
  } else {
    size_t need = base64_encoded_len(m->data_len, 0) + 1;
    char *a = small, *b = small + sizeof small / 2;
    if (need > sizeof small / 2) {
      heap = malloc(2 * need);
      if (!heap)
        return -1;
      a = heap;
      b = heap + need;
    }
    base64_encode(m->data, m->data_len, 0, a);
    base64_encode(m->data, m->data_len, 1, b);
    std = a;
    url = b;
  }
  static const char head[] = "{\"type\":\"message\",\"representative_id\":\"\","
                             "\"quote_message_id\":\"\"",
                    tail[] = ",\"silent\":false,\"expire_in\":0";
  int rc = buf_append(out, head, sizeof head - 1) < 0 ||
                   text_member(out, "conversation_id", m->conversation_id) < 0 ||
                   text_member(out, "user_id", u->id) < 0 ||
                   text_member(out, "session_id", u->session_id) < 0 ||
                   text_member(out, "message_id", m->message_id) < 0 ||
                   text_member(out, "category", m->category) < 0 ||
                   text_member(out, "data", std) < 0 ||
                   text_member(out, "data_base64", url) < 0 ||
                   text_member(out, "status", "SENT") < 0 ||
                   text_member(out, "source", source) < 0 ||
                   buf_append(out, tail, sizeof tail - 1) < 0 ||
                   text_member(out, "created_at", m->created_at) < 0 ||
                   text_member(out, "updated_at", m->created_at) < 0 ||
                   buf_append(out, "}", 1) < 0
               ? -1
               : 0;
  free(heap);
  return rc;
}

json_t *store_msg_view(struct sim *sim, const struct sim_msg *m, const char *source) {
  const struct sim_user *u = &sim->users[m->user];
  char small_std[512], small_url[512];
  char *std = small_std, *url = small_url, *heap = NULL;
  if (m->poison) {
    std = url = (char *)m->data;
  } else {
    size_t need = base64_encoded_len(m->data_len, 0) + 1;
    if (need > sizeof small_std) {
      heap = malloc(2 * need);
      if (!heap)
        return NULL;
      std = heap;
      url = heap + need;
    }
    base64_encode(m->data, m->data_len, 0, std);
    base64_encode(m->data, m->data_len, 1, url);
  }
  json_t *o = json_pack(
      "{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:b,s:i,s:s,s:s}", "type",
      "message", "representative_id", "", "quote_message_id", "", "conversation_id",
      m->conversation_id, "user_id", u->id, "session_id", u->session_id, "message_id",
      m->message_id, "category", m->category, "data", std, "data_base64", url, "status",
      "SENT", "source", source, "silent", 0, "expire_in", 0, "created_at", m->created_at,
      "updated_at", m->created_at);
  free(heap);
  return o;
}

int store_check_acks(json_t *arr, char *why, size_t whylen) {
  if (!json_is_array(arr)) {
    snprintf(why, whylen, "acknowledgements must be an array");
    return 10002;
  }
  if (json_array_size(arr) > SIM_MAX_BATCH) {
    snprintf(why, whylen, "%zu acknowledgements, at most %d allowed",
             json_array_size(arr), SIM_MAX_BATCH);
    return 10002;
  }
  size_t i;
  json_t *e;
  json_array_foreach(arr, i, e) {
    json_t *id = json_object_get(e, "message_id");
    json_t *st = json_object_get(e, "status");
    if (!json_is_object(e) || !json_is_string(id) || !uuid_valid(json_string_value(id))) {
      snprintf(why, whylen, "acknowledgement %zu: message_id is not a UUID", i);
      return 10002;
    }
    if (st && !json_is_string(st)) {
      snprintf(why, whylen, "acknowledgement %zu: status is not a string", i);
      return 10002;
    }
  }
  return 0;
}

/* ---- sent log ---- */

/* Copies an optional UUID field ("" when absent or empty). */
static int opt_uuid(json_t *obj, const char *name, char out[UUID_STR_LEN], char *why,
                    size_t whylen) {
  json_t *v = json_object_get(obj, name);
  out[0] = 0;
  if (!v || json_is_null(v))
    return 0;
  if (!json_is_string(v)) {
    snprintf(why, whylen, "%s is not a string", name);
    return -1;
  }
  const char *s = json_string_value(v);
  if (!*s)
    return 0;
  if (!uuid_valid(s)) {
    snprintf(why, whylen, "%s is not a UUID", name);
    return -1;
  }
  copy_lower(out, UUID_STR_LEN, s);
  return 0;
}

static int req_uuid(json_t *obj, const char *name, char out[UUID_STR_LEN], char *why,
                    size_t whylen) {
  json_t *v = json_object_get(obj, name);
  if (!json_is_string(v) || !uuid_valid(json_string_value(v))) {
    snprintf(why, whylen, "%s is missing or not a UUID", name);
    return -1;
  }
  copy_lower(out, UUID_STR_LEN, json_string_value(v));
  return 0;
}

int sent_parse(json_t *obj, const char *via, struct sim_sent *out, char *why,
               size_t whylen) {
  memset(out, 0, sizeof *out);
  out->via = via;
  if (!json_is_object(obj)) {
    snprintf(why, whylen, "message is not an object");
    return -1;
  }
  if (req_uuid(obj, "conversation_id", out->conversation_id, why, whylen) < 0 ||
      req_uuid(obj, "message_id", out->message_id, why, whylen) < 0 ||
      opt_uuid(obj, "recipient_id", out->recipient_id, why, whylen) < 0 ||
      opt_uuid(obj, "representative_id", out->representative_id, why, whylen) < 0 ||
      opt_uuid(obj, "quote_message_id", out->quote_message_id, why, whylen) < 0)
    return -1;
  json_t *cat = json_object_get(obj, "category");
  if (!json_is_string(cat) || json_string_length(cat) == 0 ||
      json_string_length(cat) >= SIM_CATEGORY_MAX) {
    snprintf(why, whylen, "category is missing or invalid");
    return -1;
  }
  snprintf(out->category, sizeof out->category, "%s", json_string_value(cat));
  json_t *silent = json_object_get(obj, "silent");
  if (silent && !json_is_null(silent) && !json_is_boolean(silent)) {
    snprintf(why, whylen, "silent is not a boolean");
    return -1;
  }
  out->silent = json_is_true(silent);

  /* data_base64 is preferred, data is the older alternative (protocol.md
   * §6.1); whichever is used must decode in one of the two alphabets. */
  const char *field = "data_base64";
  json_t *payload = json_object_get(obj, field);
  if (!payload || json_is_null(payload)) {
    field = "data";
    payload = json_object_get(obj, field);
  }
  if (!json_is_string(payload) || json_string_length(payload) == 0) {
    snprintf(why, whylen, "data_base64 (or data) is missing or empty");
    return -1;
  }
  size_t n = json_string_length(payload);
  size_t cap = base64_decoded_max(n);
  out->data = malloc(cap + 1);
  if (!out->data) {
    snprintf(why, whylen, "out of memory");
    return -1;
  }
  long got = base64_decode(json_string_value(payload), n, out->data, cap);
  if (got < 0) {
    free(out->data);
    out->data = NULL;
    snprintf(why, whylen, "%s is not base64", field);
    return -1;
  }
  out->data[got] = 0;
  out->data_len = (size_t)got;
  return 0;
}

/* A reply "#N" to message N (pushed as "#%n" with the same text): one
 * latency sample, from its first push to now. */
static void note_latency(struct sim *sim, const struct sim_sent *s) {
  const unsigned char *d = s->data;
  if (!d || s->data_len < 2 || s->data_len > 12 || d[0] != '#')
    return;
  size_t n = 0;
  for (size_t i = 1; i < s->data_len; i++) {
    if (d[i] < '0' || d[i] > '9')
      return;
    n = n * 10 + (size_t)(d[i] - '0');
  }
  if (n >= sim->nmsgs)
    return;
  struct sim_msg *m = &sim->msgs[n];
  if (m->answered || !m->first_push_us || m->data_len != s->data_len ||
      memcmp(m->data, d, s->data_len) != 0)
    return;
  if (grow((void **)&sim->latency, &sim->latency_cap, sim->nlatency,
           sizeof *sim->latency) < 0)
    return;
  int64_t lat = now_us() - m->first_push_us;
  sim->latency[sim->nlatency++] =
      (struct sim_latency){.index = (uint32_t)n,
                           .lat_us = (uint32_t)(lat < 0            ? 0
                                                : lat > UINT32_MAX ? UINT32_MAX
                                                                   : lat),
                           .pushed_us = m->first_push_us};
  m->answered = 1;
}

json_t *store_latency_json(const struct sim *sim) {
  json_t *a = json_array();
  for (size_t i = 0; a && i < sim->nlatency; i++) {
    const struct sim_latency *l = &sim->latency[i];
    json_array_append_new(a, json_pack("[I,I,I]", (json_int_t)l->index,
                                       (json_int_t)l->pushed_us, (json_int_t)l->lat_us));
  }
  return json_pack("{s:o}", "samples", a ? a : json_array());
}

size_t sent_add(struct sim *sim, struct sim_sent *s, int *dup) {
  int64_t idx;
  *dup = 0;
  if (strmap_get(&sim->sent_index, s->message_id, &idx)) {
    *dup = 1;
    free(s->data);
    s->data = NULL;
    sim->st.created_duplicates++;
    log_info("duplicate %s %s (not stored again)", s->category, s->message_id);
    return (size_t)idx;
  }
  if (grow((void **)&sim->sent, &sim->sent_cap, sim->nsent, sizeof *sim->sent) < 0 ||
      strmap_put(&sim->sent_index, s->message_id, (int64_t)sim->nsent) < 0) {
    free(s->data);
    s->data = NULL;
    return SIM_MSG_INDEX_NONE;
  }
  sim_timestamp(s->created_at);
  sim->sent[sim->nsent] = *s;
  s->data = NULL;
  sim->st.created++;
  log_debug("bot sent %s %s via %s", s->category, s->message_id, s->via);
  size_t at = sim->nsent++;
  note_latency(sim, &sim->sent[at]);
  if (chat_enabled(sim))
    chat_on_sent(sim, &sim->sent[at]);
  return at;
}

int sent_reply_text(const struct sim *sim, const struct sim_sent *s, struct buf *out) {
  static const char head[] = "{\"type\":\"message\"";
  return buf_append(out, head, sizeof head - 1) < 0 ||
                 text_member(out, "message_id", s->message_id) < 0 ||
                 text_member(out, "conversation_id", s->conversation_id) < 0 ||
                 text_member(out, "recipient_id", s->recipient_id) < 0 ||
                 text_member(out, "user_id", sim->bot_id) < 0 ||
                 text_member(out, "session_id", sim->session_id) < 0 ||
                 text_member(out, "category", s->category) < 0 ||
                 text_member(out, "status", "SENT") < 0 ||
                 text_member(out, "representative_id", s->representative_id) < 0 ||
                 text_member(out, "quote_message_id", s->quote_message_id) < 0 ||
                 buf_append(out, s->silent ? ",\"silent\":true" : ",\"silent\":false",
                            s->silent ? 14 : 15) < 0 ||
                 text_member(out, "created_at", s->created_at) < 0 ||
                 text_member(out, "updated_at", s->created_at) < 0 ||
                 buf_append(out, "}", 1) < 0
             ? -1
             : 0;
}

json_t *sent_reply_view(const struct sim *sim, const struct sim_sent *s) {
  return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:b,s:s,s:s}", "type",
                   "message", "message_id", s->message_id, "conversation_id",
                   s->conversation_id, "recipient_id", s->recipient_id, "user_id",
                   sim->bot_id, "session_id", sim->session_id, "category", s->category,
                   "status", "SENT", "representative_id", s->representative_id,
                   "quote_message_id", s->quote_message_id, "silent", s->silent,
                   "created_at", s->created_at, "updated_at", s->created_at);
}

json_t *sent_list_json(const struct sim *sim) {
  json_t *arr = json_array();
  if (!arr)
    return NULL;
  for (size_t i = 0; i < sim->nsent; i++) {
    const struct sim_sent *s = &sim->sent[i];
    size_t n = base64_encoded_len(s->data_len, 1);
    char *b64 = malloc(n + 1);
    if (!b64)
      goto oom;
    base64_encode(s->data, s->data_len, 1, b64);
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:b,s:s,s:s}", "message_id",
                          s->message_id, "conversation_id", s->conversation_id,
                          "recipient_id", s->recipient_id, "category", s->category,
                          "representative_id", s->representative_id, "quote_message_id",
                          s->quote_message_id, "data_base64", b64, "silent", s->silent,
                          "created_at", s->created_at, "via", s->via);
    free(b64);
    if (!o)
      goto oom;
    if (!strcmp(s->category, "PLAIN_TEXT") || !strcmp(s->category, "PLAIN_POST")) {
      /* Text that is not valid UTF-8 cannot be a JSON string: null then,
       * and data_base64 still has the bytes. */
      json_t *t = json_stringn((const char *)s->data, s->data_len);
      json_object_set_new(o, "text", t ? t : json_null());
    }
    if (json_array_append_new(arr, o) < 0)
      goto oom;
  }
  return arr;
oom:
  json_decref(arr);
  return NULL;
}

int store_messages_json(const struct sim *sim, struct buf *out) {
  if (buf_append(out, "[", 1) < 0)
    return -1;
  for (size_t i = 0; i < sim->nmsgs; i++) {
    const struct sim_msg *m = &sim->msgs[i];
    if (buf_appendf(out,
                    "%s{\"message_id\":\"%s\",\"category\":\"%s\",\"acked\":%s,"
                    "\"ack_count\":%u,\"push_count\":%u,\"poison\":%s}",
                    i ? "," : "", m->message_id, m->category, m->acked ? "true" : "false",
                    m->ack_count, m->push_count, m->poison ? "true" : "false") < 0)
      return -1;
  }
  return buf_append(out, "]", 1);
}

/* ---- stats ---- */

json_t *stats_json(const struct sim *sim) {
  const struct sim_stats *st = &sim->st;
  json_t *o = json_object();
  if (!o)
    return NULL;
  /* Exact keys, in this order; tests read them by name. */
  const struct {
    const char *k;
    uint64_t v;
  } kv[] = {
      {"connections", st->connections},
      {"auth_failures", st->auth_failures},
      {"handshake_rejects", st->handshake_rejects},
      {"list_pending", st->list_pending},
      {"messages", sim->nmsgs},
      {"pushed", st->pushed},
      {"acked", st->acked},
      {"unacked", sim->nmsgs - st->acked},
      {"ack_receipts", st->ack_receipts},
      {"acked_twice", st->acked_twice},
      {"acks_unknown", st->acks_unknown},
      {"receipt_acks", st->receipt_acks},
      {"ack_requests_ws", st->ack_requests_ws},
      {"ack_requests_rest", st->ack_requests_rest},
      {"created", st->created},
      {"created_duplicates", st->created_duplicates},
      {"create_errors", st->create_errors},
      {"bad_frames", st->bad_frames},
      {"faults_fired", st->faults_fired},
      {"receipts_pushed", st->receipts_pushed},
      {"attachments", st->attachments},
      {"uploads", st->uploads},
      {"uploaded_bytes", st->uploaded_bytes},
  };
  for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
    if (json_object_set_new(o, kv[i].k, json_integer((json_int_t)kv[i].v)) < 0) {
      json_decref(o);
      return NULL;
    }
  }
  /* Requests each REST endpoint (and upload or view URL) accepted. */
  json_t *calls = json_object();
  for (int i = 0; calls && i < SIM_EP_COUNT; i++) {
    if (json_object_set_new(calls, faults_endpoint_name(i),
                            json_integer((json_int_t)st->api_calls[i])) < 0) {
      json_decref(calls);
      calls = NULL;
    }
  }
  if (!calls || json_object_set_new(o, "api_calls", calls) < 0) {
    json_decref(o);
    return NULL;
  }
  return o;
}

void stats_write(const struct sim *sim) {
  json_t *o = stats_json(sim);
  char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  if (!s) {
    log_error("cannot build the stats JSON (out of memory)");
    return;
  }
  /* In chat modes stdout carries the transcript, which must stay readable. */
  FILE *out = chat_enabled(sim) ? stderr : stdout;
  fprintf(out, "%s\n", s);
  fflush(out);
  if (sim->cfg.stats_file) {
    /* Written to a temporary name and renamed, so that a test polling the
     * file never reads half a line. */
    char tmp[4096];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", sim->cfg.stats_file, (long)getpid());
    FILE *f = n > 0 && (size_t)n < sizeof tmp ? fopen(tmp, "w") : NULL;
    int ok = f != NULL;
    if (f) {
      ok = fprintf(f, "%s\n", s) >= 0;
      ok = fclose(f) == 0 && ok;
      ok = ok && rename(tmp, sim->cfg.stats_file) == 0;
      if (!ok)
        unlink(tmp);
    }
    if (!ok)
      log_error("cannot write %s: %s", sim->cfg.stats_file, strerror(errno));
  }
  free(s);
}
