/* SPDX-License-Identifier: MIT */
/*
 * welcome: greets whoever joins a group. On a SYSTEM_CONVERSATION message
 * whose data is {"action":"ADD"|"JOIN","participant_id":"<uuid>",...} it
 * sends `text` into that conversation (to the group: a send without a
 * recipient, tied to the system message), with the new participant's
 * profile in the placeholders {full_name}, {identity_number} and {user_id}
 * (the participant's id):
 *
 *   [plugin.welcome]
 *   text = Welcome, {full_name}!
 *   text_unknown = Welcome!
 *
 * Keys: `text` (default "Welcome, {full_name}!"), `text_unknown` (sent when
 * the profile cannot be had: an error, no answer, a body that is not one, or
 * a daemon without api_request; default "Welcome!"; {user_id} only),
 * `profile_ttl_s` (seconds a looked-up profile is reused, default 600, 0 = no
 * cache) and `profile_cache_max` (profiles kept, default 1000, least
 * recently used out first). In values, \n is a line break, \t a tab and \\ a
 * backslash. The greeting is PLAIN_TEXT, names are not escaped.
 *
 * For {full_name} and {identity_number} the plugin takes a hold on the system
 * message, asks GET /users/{participant_id} (ABI minor 1) and greets when the
 * answer comes, so other messages keep flowing meanwhile. The bot being added
 * itself is not greeted, nor other actions (REMOVE, EXIT, ROLE, CREATE, ...).
 * Every message is passed on (PASS): other plugins may want the event too.
 * When the greeting cannot be queued the message comes again (RETRY).
 */
/* Loads on minor-0 daemons too: every minor-1 service is checked with
 * BLAZEBOT_HOST_HAS (profile_host_can_lookup) before it is used. */
#define BLAZEBOT_TARGET_MINOR 0
#include <blazebot/plugin.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/profile.h"

#define TEXT_DEFAULT "Welcome, {full_name}!"
#define TEXT_UNKNOWN_DEFAULT "Welcome!"

struct config {
  char *text, *text_unknown;
  unsigned uses; /* TPL_USES_* of text */
  int64_t ttl_ms;
  size_t cache_max;
};

struct lookup;

struct welcome {
  blazebot_ctx *ctx;
  const struct blazebot_host *host;
  struct config *cfg;
  struct profile_cache cache;
  struct lookup *lookups; /* waiting for their answer */
};

/* A greeting waiting for the participant's profile, with its own copies of
 * the texts (a reconfigure may come meanwhile). */
struct lookup {
  struct lookup *prev, *next;
  blazebot_hold *hold;
  const struct blazebot_message *msg; /* valid while held */
  char participant[BLAZEBOT_ID_LEN];
  char *text, *text_unknown;
};

/* ---- configuration --------------------------------------------------------------- */

/* A copy of an ini value with \n, \t and \\ decoded. */
static char *unescape(const char *v) {
  char *out = malloc(strlen(v) + 1), *o = out;
  if (!out)
    return NULL;
  while (*v) {
    if (v[0] == '\\' && (v[1] == 'n' || v[1] == 't' || v[1] == '\\')) {
      *o++ = v[1] == 'n' ? '\n' : v[1] == 't' ? '\t' : '\\';
      v += 2;
    } else {
      *o++ = *v++;
    }
  }
  *o = '\0';
  return out;
}

static void config_free(struct config *c) {
  if (c) {
    free(c->text);
    free(c->text_unknown);
    free(c);
  }
}

static struct config *config_load(struct welcome *w, char *err, size_t errlen) {
  struct config *c = calloc(1, sizeof *c);
  const char *text, *unknown;
  if (!c)
    goto oom;
  text = w->host->config_get(w->ctx, "text");
  unknown = w->host->config_get(w->ctx, "text_unknown");
  if (text && !text[0]) {
    snprintf(err, errlen, "text must not be empty");
    goto fail;
  }
  if (unknown && !unknown[0]) {
    snprintf(err, errlen, "text_unknown must not be empty");
    goto fail;
  }
  if (unknown && (tpl_scan(unknown) & TPL_USES_PROFILE)) {
    snprintf(err, errlen, "text_unknown cannot use {full_name} or {identity_number}");
    goto fail;
  }
  c->text = unescape(text ? text : TEXT_DEFAULT);
  c->text_unknown = unescape(unknown ? unknown : TEXT_UNKNOWN_DEFAULT);
  if (!c->text || !c->text_unknown)
    goto oom;
  c->uses = tpl_scan(c->text);
  if (profile_config(w->ctx, w->host, &c->ttl_ms, &c->cache_max, err, errlen) != 0)
    goto fail;
  return c;
oom:
  snprintf(err, errlen, "out of memory");
fail:
  config_free(c);
  return NULL;
}

/* ---- greeting -------------------------------------------------------------------- */

static void lookup_free(struct welcome *w, struct lookup *lk) {
  if (lk->prev)
    lk->prev->next = lk->next;
  else if (w->lookups == lk)
    w->lookups = lk->next;
  if (lk->next)
    lk->next->prev = lk->prev;
  free(lk->text);
  free(lk->text_unknown);
  free(lk);
}

/* Sends tpl, expanded for participant, into msg's conversation: tied to msg
 * (inside on_message when hold is NULL, else under hold). Returns PASS, or
 * RETRY when it could not be queued. */
static int greet(struct welcome *w, const struct blazebot_message *msg,
                 blazebot_hold *hold, const char *tpl, const char *participant,
                 const struct profile *p) {
  struct blazebot_outgoing o;
  char *text = tpl_expand(tpl, participant, p, 0);
  int rc;
  if (!text) {
    w->host->log(w->ctx, BLAZEBOT_LOG_ERROR, "out of memory");
    return BLAZEBOT_RETRY;
  }
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  o.conversation_id = msg->conversation_id;
  o.category = "PLAIN_TEXT";
  o.data = text;
  o.data_len = strlen(text);
  o.hold = hold;
  rc = w->host->send(w->ctx, &o, NULL);
  free(text);
  if (rc != 0) {
    w->host->log(w->ctx, BLAZEBOT_LOG_WARN, "greeting for %s not queued, will retry",
                 msg->message_id);
    return BLAZEBOT_RETRY;
  }
  return BLAZEBOT_PASS;
}

static void on_profile(void *state, void *arg, const struct blazebot_api_response *r) {
  struct welcome *w = state;
  struct lookup *lk = arg;
  struct profile p;
  const char *why;
  int result;
  if (profile_from_response(r, lk->participant, &p, &why) == 0) {
    profile_cache_put(&w->cache, &p, w->host->now_ms(w->ctx, BLAZEBOT_CLOCK_MONOTONIC));
    result = greet(w, lk->msg, lk->hold, lk->text, lk->participant, &p);
    profile_clear(&p);
  } else {
    w->host->log(w->ctx, BLAZEBOT_LOG_WARN,
                 "profile of %s not available: %s (HTTP %d, error %d)", lk->participant,
                 why, (int)r->http_status, (int)r->error_code);
    result = greet(w, lk->msg, lk->hold, lk->text_unknown, lk->participant, NULL);
  }
  w->host->release(w->ctx, lk->hold, result);
  lookup_free(w, lk);
}

static int welcome_on_message(void *state, const struct blazebot_message *msg) {
  static const char *const keys[] = {"action", "participant_id"};
  struct welcome *w = state;
  const struct blazebot_host *host = w->host;
  const struct config *c = w->cfg;
  const char *self = host->bot_id(w->ctx);
  const struct profile *cached;
  char *v[2], participant[BLAZEBOT_ID_LEN];
  struct lookup *lk;
  int join, valid, rc;
  size_t i;

  if (strcmp(msg->category, "SYSTEM_CONVERSATION") != 0)
    return BLAZEBOT_PASS;
  rc = pj_strings((const char *)msg->data, msg->data_len, NULL, keys, 2, v);
  if (rc != 0) {
    host->log(w->ctx, BLAZEBOT_LOG_DEBUG, "%s: data is not a JSON object",
              msg->message_id);
    return BLAZEBOT_PASS;
  }
  join = v[0] && (strcmp(v[0], "ADD") == 0 || strcmp(v[0], "JOIN") == 0);
  valid = v[1] && profile_valid_id(v[1]);
  if (valid) {
    for (i = 0; i < BLAZEBOT_ID_LEN; i++)
      participant[i] =
          (char)(v[1][i] >= 'A' && v[1][i] <= 'Z' ? v[1][i] - 'A' + 'a' : v[1][i]);
  }
  if (join && !valid)
    host->log(w->ctx, BLAZEBOT_LOG_WARN, "%s: %s without a valid participant_id",
              msg->message_id, v[0]);
  free(v[0]);
  free(v[1]);
  if (!join || !valid)
    return BLAZEBOT_PASS;
  if (self && profile_same_id(participant, self))
    return BLAZEBOT_PASS; /* the bot itself was added */

  if (!(c->uses & TPL_USES_PROFILE))
    return greet(w, msg, NULL, c->text, participant, NULL);
  if (!profile_host_can_lookup(host)) {
    host->log(w->ctx, BLAZEBOT_LOG_DEBUG, "no profile lookup on this host");
    return greet(w, msg, NULL, c->text_unknown, participant, NULL);
  }
  cached = profile_cache_get(&w->cache, participant,
                             host->now_ms(w->ctx, BLAZEBOT_CLOCK_MONOTONIC));
  if (cached)
    return greet(w, msg, NULL, c->text, participant, cached);

  lk = calloc(1, sizeof *lk);
  if (!lk || !(lk->text = profile_strdup(c->text)) ||
      !(lk->text_unknown = profile_strdup(c->text_unknown))) {
    if (lk) {
      free(lk->text);
      free(lk);
    }
    host->log(w->ctx, BLAZEBOT_LOG_ERROR, "out of memory");
    return BLAZEBOT_RETRY;
  }
  memcpy(lk->participant, participant, sizeof participant);
  lk->msg = msg;
  if (!(lk->hold = host->hold(w->ctx, msg))) {
    host->log(w->ctx, BLAZEBOT_LOG_WARN, "no hold on %s, will retry", msg->message_id);
    lookup_free(w, lk);
    return BLAZEBOT_RETRY;
  }
  lk->next = w->lookups;
  if (w->lookups)
    w->lookups->prev = lk;
  w->lookups = lk;
  if (profile_request(w->ctx, host, participant, on_profile, lk) != 0) {
    host->log(w->ctx, BLAZEBOT_LOG_WARN, "profile of %s not available: request refused",
              participant);
    rc = greet(w, msg, NULL, c->text_unknown, participant, NULL);
    host->release(w->ctx, lk->hold, rc);
    lookup_free(w, lk);
    return rc;
  }
  return BLAZEBOT_PASS;
}

/* ---- lifecycle ------------------------------------------------------------------- */

static int welcome_init(blazebot_ctx *ctx, const struct blazebot_host *host,
                        void **state) {
  struct welcome *w = calloc(1, sizeof *w);
  char err[256];
  if (!w) {
    host->set_error(ctx, "out of memory");
    return -1;
  }
  w->ctx = ctx;
  w->host = host;
  if (!(w->cfg = config_load(w, err, sizeof err))) {
    host->set_error(ctx, "%s", err);
    free(w);
    return -1;
  }
  profile_cache_limit(&w->cache, w->cfg->cache_max, w->cfg->ttl_ms);
  *state = w;
  return 0;
}

static int welcome_reconfigure(void *state) {
  struct welcome *w = state;
  char err[256];
  struct config *c = config_load(w, err, sizeof err);
  if (!c) {
    w->host->log(w->ctx, BLAZEBOT_LOG_ERROR, "new configuration refused: %s", err);
    return -1;
  }
  config_free(w->cfg);
  w->cfg = c;
  profile_cache_limit(&w->cache, c->cache_max, c->ttl_ms);
  return 0;
}

static void welcome_shutdown(void *state) {
  struct welcome *w = state;
  /* The host answered every lookup before this: the list is empty. */
  while (w->lookups)
    lookup_free(w, w->lookups);
  profile_cache_free(&w->cache);
  config_free(w->cfg);
  free(w);
}

static const struct blazebot_subscription subs[] = {{"SYSTEM_CONVERSATION", 0, 0},
                                                    {NULL, 0, 0}};

BLAZEBOT_PLUGIN(.flags = BLAZEBOT_FLAG_UNLOAD_SAFE, .name = "welcome", .version = "1.0",
                .description = "Greets new group members by name", .subscriptions = subs,
                .init = welcome_init, .on_message = welcome_on_message,
                .shutdown = welcome_shutdown, .reconfigure = welcome_reconfigure);
