/* SPDX-License-Identifier: MIT */
/*
 * commands: answers "/name" commands with replies taken from its ini
 * section, and /help with a list of them. The host cannot enumerate a
 * section's keys, so `commands` names them:
 *
 *   [plugin.commands]
 *   commands = about, ping
 *   command.about = A bot that answers commands.\nMade with blazebot.
 *   describe.about = What this bot is
 *   command.ping = pong
 *
 * Keys: `commands` (names of [A-Za-z0-9_-], 1-64 characters, separated by
 * commas or spaces; case-insensitive), `command.NAME` (the reply; required
 * for each listed name but help), `describe.NAME` (its line in /help),
 * `command.help` (the line above the generated list, default "Commands:"),
 * `prefix` (default "/"), `unknown_reply` (default "Unknown command /%s.
 * Try /help."; %s is the command's name, %% a percent sign; empty = let
 * unknown commands pass), `reply_category` (PLAIN_TEXT or PLAIN_POST for
 * Markdown) and `bot_name` (when set, "/cmd@other" is left to other bots).
 * In values, \n is a line break, \t a tab and \\ a backslash.
 *
 * Replies may use the sender's profile: {user_id} (the sender's id, no
 * lookup), {full_name} and {identity_number}. For the last two the plugin
 * takes a hold on the message, asks GET /users/{user_id} (ABI minor 1) and
 * replies when the answer comes, so other messages keep flowing meanwhile;
 * profiles are cached for `profile_ttl_s` seconds (default 600; 0 = no cache),
 * at most `profile_cache_max` of them (default 1000, least recently used
 * out first). When there is no profile (an error, no answer, a body that is
 * not one, or a daemon without api_request) the reply is
 * `command.NAME.unavailable`, else `profile_unavailable` (default "Sorry, I
 * could not look up your profile right now."); these may use {user_id} only.
 * Substituted values are escaped for Markdown with PLAIN_POST, else sent as
 * they are. Any other text in braces is literal.
 *
 * A message is a command when, trimmed, it is the prefix, a name, and then
 * nothing, white space (arguments, ignored) or "@botname". Commands are
 * answered and HANDLED, so lower-priority plugins such as echo skip them;
 * everything else is passed on. The configuration is immutable once built;
 * reconfigure builds a new one and swaps it in only if it is valid.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Loads on minor-0 daemons too: every minor-1 service is checked with
 * BLAZEBOT_HOST_HAS (profile_host_can_lookup) before it is used. */
#define BLAZEBOT_TARGET_MINOR 0
#include <blazebot/plugin.h>

#include "../common/profile.h"

#define NAME_MAX_LEN 64
#define PROFILE_UNAVAILABLE_DEFAULT "Sorry, I could not look up your profile right now."

struct command {
  char *name;        /* lowercase */
  char *reply;       /* NULL for help: generated */
  char *describe;    /* may be NULL */
  char *unavailable; /* command.NAME.unavailable, or NULL: the config's */
  unsigned uses;     /* TPL_USES_* of reply */
};

struct config {
  char *prefix;
  size_t prefix_len;
  char *unknown_reply; /* template; "" = pass unknown commands on */
  const char *category;
  int markdown;
  char *bot_name; /* lowercase, without '@'; NULL = accept any */
  struct command *cmds;
  size_t ncmds;
  char *help;        /* the generated /help reply */
  char *unavailable; /* profile_unavailable */
  int64_t ttl_ms;    /* profile_ttl_s */
  size_t cache_max;  /* profile_cache_max */
};

struct lookup;

struct plugin {
  blazebot_ctx *ctx;
  const struct blazebot_host *host;
  struct config *cfg;
  struct profile_cache cache;
  struct lookup *lookups; /* waiting for their answer */
};

/* A reply waiting for the sender's profile. It keeps its own copies of the
 * templates, so a reconfigure meanwhile does not pull them away. */
struct lookup {
  struct lookup *prev, *next;
  blazebot_hold *hold;
  const struct blazebot_message *msg; /* valid while held */
  char *reply, *unavailable;
  const char *category; /* a string literal */
  int markdown;
};

/* ---- a growable string ----------------------------------------------------------- */

struct str {
  char *p;
  size_t len, cap;
  int oom;
};

static void str_add(struct str *s, const char *p, size_t n) {
  if (s->oom)
    return;
  if (s->len + n + 1 > s->cap) {
    size_t cap = s->cap ? s->cap : 64;
    char *q;
    while (cap < s->len + n + 1)
      cap *= 2;
    q = realloc(s->p, cap);
    if (!q) {
      s->oom = 1;
      return;
    }
    s->p = q;
    s->cap = cap;
  }
  memcpy(s->p + s->len, p, n);
  s->len += n;
  s->p[s->len] = '\0';
}

static void str_cat(struct str *s, const char *p) {
  str_add(s, p, strlen(p));
}

/* Appends p to a template with its percent signs doubled. */
static void add_literal(struct str *s, const char *p) {
  for (; *p; p++)
    str_add(s, *p == '%' ? "%%" : p, *p == '%' ? 2 : 1);
}

/* ---- parsing --------------------------------------------------------------------- */

static int lower(int c) {
  return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int is_space(int c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static int is_name_char(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '_' || c == '-';
}

static char *dup_lower(const char *s, size_t n) {
  char *p = malloc(n + 1);
  size_t i;
  if (p) {
    for (i = 0; i < n; i++)
      p[i] = (char)lower((unsigned char)s[i]);
    p[n] = '\0';
  }
  return p;
}

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
  size_t i;
  if (!c)
    return;
  for (i = 0; i < c->ncmds; i++) {
    free(c->cmds[i].name);
    free(c->cmds[i].reply);
    free(c->cmds[i].describe);
    free(c->cmds[i].unavailable);
  }
  free(c->cmds);
  free(c->prefix);
  free(c->unknown_reply);
  free(c->bot_name);
  free(c->help);
  free(c->unavailable);
  free(c);
}

/* The value of "stem.name" + suffix, trying name as the user wrote it first. */
static const char *get_keyed(struct plugin *pl, const char *stem, const char *as_written,
                             size_t n, const char *lowered, const char *suffix) {
  char key[32 + NAME_MAX_LEN];
  const char *v;
  snprintf(key, sizeof key, "%s.%.*s%s", stem, (int)n, as_written, suffix);
  v = pl->host->config_get(pl->ctx, key);
  if (!v) {
    snprintf(key, sizeof key, "%s.%s%s", stem, lowered, suffix);
    v = pl->host->config_get(pl->ctx, key);
  }
  return v;
}

/* Adds command name (n bytes as written) to c. Returns 0 or -1 with err. */
static int add_command(struct plugin *pl, struct config *c, const char *name, size_t n,
                       char *err, size_t errlen) {
  struct command *cmd, *grown;
  const char *reply, *describe, *unavailable;
  size_t i;
  char *lname = dup_lower(name, n);
  if (!lname)
    goto oom;
  for (i = 0; i < c->ncmds; i++) {
    if (strcmp(c->cmds[i].name, lname) == 0) {
      snprintf(err, errlen, "commands: '%s' is listed twice", lname);
      free(lname);
      return -1;
    }
  }
  reply = get_keyed(pl, "command", name, n, lname, "");
  describe = get_keyed(pl, "describe", name, n, lname, "");
  unavailable = get_keyed(pl, "command", name, n, lname, ".unavailable");
  if (unavailable && (tpl_scan(unavailable) & TPL_USES_PROFILE)) {
    snprintf(err, errlen,
             "command.%s.unavailable cannot use {full_name} or {identity_number}", lname);
    free(lname);
    return -1;
  }
  if (strcmp(lname, "help") == 0) {
    if (!describe)
      describe = "Show this list";
    reply = NULL; /* command.help is the heading of the generated list */
  } else if (!reply) {
    snprintf(err, errlen, "commands lists '%s' but command.%s is not set", lname, lname);
    free(lname);
    return -1;
  }
  grown = realloc(c->cmds, (c->ncmds + 1) * sizeof *c->cmds);
  if (!grown) {
    free(lname);
    goto oom;
  }
  c->cmds = grown;
  cmd = &c->cmds[c->ncmds++];
  cmd->name = lname;
  cmd->reply = reply ? unescape(reply) : NULL;
  cmd->describe = describe ? unescape(describe) : NULL;
  cmd->unavailable = unavailable ? unescape(unavailable) : NULL;
  cmd->uses = cmd->reply ? tpl_scan(cmd->reply) : 0;
  if ((reply && !cmd->reply) || (describe && !cmd->describe) ||
      (unavailable && !cmd->unavailable))
    goto oom;
  return 0;
oom:
  snprintf(err, errlen, "out of memory");
  return -1;
}

static char *build_help(struct plugin *pl, const struct config *c) {
  const char *heading = pl->host->config_get(pl->ctx, "command.help");
  char *h = unescape(heading ? heading : "Commands:");
  struct str s = {NULL, 0, 0, 0};
  size_t i;
  if (!h)
    return NULL;
  str_cat(&s, h);
  free(h);
  /* Markdown joins adjacent lines into one paragraph: use a list. */
  str_cat(&s, c->markdown ? "\n\n" : "\n");
  for (i = 0; i < c->ncmds; i++) {
    if (c->markdown)
      str_cat(&s, "- ");
    str_cat(&s, c->prefix);
    str_cat(&s, c->cmds[i].name);
    if (c->cmds[i].describe) {
      str_cat(&s, " \xE2\x80\x94 "); /* an em dash */
      str_cat(&s, c->cmds[i].describe);
    }
    if (i + 1 < c->ncmds)
      str_cat(&s, "\n");
  }
  if (s.oom) {
    free(s.p);
    return NULL;
  }
  return s.p;
}

/* Reads the whole section into a new config. Returns it, or NULL with err. */
static struct config *config_load(struct plugin *pl, char *err, size_t errlen) {
  const struct blazebot_host *host = pl->host;
  struct config *c = calloc(1, sizeof *c);
  const char *v, *list, *p;
  int have_help = 0;
  size_t i;
  if (!c)
    goto oom;

  v = host->config_get(pl->ctx, "prefix");
  c->prefix = unescape(v ? v : "/");
  if (!c->prefix)
    goto oom;
  c->prefix_len = strlen(c->prefix);

  v = host->config_get(pl->ctx, "reply_category");
  if (!v || strcmp(v, "PLAIN_TEXT") == 0) {
    c->category = "PLAIN_TEXT";
  } else if (strcmp(v, "PLAIN_POST") == 0) {
    c->category = "PLAIN_POST";
    c->markdown = 1;
  } else {
    snprintf(err, errlen, "reply_category must be PLAIN_TEXT or PLAIN_POST, not '%s'", v);
    goto fail;
  }

  v = host->config_get(pl->ctx, "bot_name");
  if (v && v[0]) {
    if (v[0] == '@')
      v++;
    if (!(c->bot_name = dup_lower(v, strlen(v))))
      goto oom;
  }

  v = host->config_get(pl->ctx, "unknown_reply");
  if (v) {
    c->unknown_reply = unescape(v);
  } else {
    /* "Unknown command /%s. Try /help." with the configured prefix, whose
     * own percent signs must not read as placeholders. */
    struct str s = {NULL, 0, 0, 0};
    str_cat(&s, "Unknown command ");
    add_literal(&s, c->prefix);
    str_cat(&s, "%s. Try ");
    add_literal(&s, c->prefix);
    str_cat(&s, "help.");
    if (s.oom)
      free(s.p);
    else
      c->unknown_reply = s.p;
  }
  if (!c->unknown_reply)
    goto oom;

  v = host->config_get(pl->ctx, "profile_unavailable");
  if (v && (tpl_scan(v) & TPL_USES_PROFILE)) {
    snprintf(err, errlen,
             "profile_unavailable cannot use {full_name} or {identity_number}");
    goto fail;
  }
  if (!(c->unavailable = unescape(v ? v : PROFILE_UNAVAILABLE_DEFAULT)))
    goto oom;
  if (profile_config(pl->ctx, host, &c->ttl_ms, &c->cache_max, err, errlen) != 0)
    goto fail;

  list = host->config_get(pl->ctx, "commands");
  for (p = list ? list : ""; *p;) {
    const char *start;
    size_t n;
    if (*p == ',' || is_space((unsigned char)*p)) {
      p++;
      continue;
    }
    start = p;
    while (*p && *p != ',' && !is_space((unsigned char)*p))
      p++;
    n = (size_t)(p - start);
    for (i = 0; i < n && is_name_char((unsigned char)start[i]); i++)
      ;
    if (i < n || n > NAME_MAX_LEN) {
      snprintf(err, errlen,
               "commands: '%.*s' is not a command name (1-%d of A-Z a-z 0-9 _ -)",
               (int)(n > 80 ? 80 : n), start, NAME_MAX_LEN);
      goto fail;
    }
    if (add_command(pl, c, start, n, err, errlen) != 0)
      goto fail;
  }
  for (i = 0; i < c->ncmds; i++)
    have_help |= strcmp(c->cmds[i].name, "help") == 0;
  if (!have_help && add_command(pl, c, "help", 4, err, errlen) != 0)
    goto fail;
  if (!(c->help = build_help(pl, c)))
    goto oom;
  return c;
oom:
  snprintf(err, errlen, "out of memory");
fail:
  config_free(c);
  return NULL;
}

/* ---- answering ------------------------------------------------------------------- */

/* The unknown-command reply: tpl with %s replaced by name (Markdown-escaped
 * for PLAIN_POST) and %% by %. The template is never used as a printf
 * format, and name holds only [A-Za-z0-9_-]. */
static char *unknown_text(const struct config *c, const char *name, size_t n) {
  struct str s = {NULL, 0, 0, 0};
  const char *t = c->unknown_reply;
  size_t i;
  while (*t) {
    if (t[0] == '%' && t[1] == 's') {
      for (i = 0; i < n; i++) {
        if (c->markdown && name[i] == '_')
          str_cat(&s, "\\");
        str_add(&s, name + i, 1);
      }
      t += 2;
    } else if (t[0] == '%' && t[1] == '%') {
      str_cat(&s, "%");
      t += 2;
    } else {
      str_add(&s, t, 1);
      t++;
    }
  }
  if (s.oom) {
    free(s.p);
    return NULL;
  }
  return s.p;
}

/* ---- replies with the sender's profile ------------------------------------------- */

static void lookup_free(struct plugin *pl, struct lookup *lk) {
  if (lk->prev)
    lk->prev->next = lk->next;
  else if (pl->lookups == lk)
    pl->lookups = lk->next;
  if (lk->next)
    lk->next->prev = lk->prev;
  free(lk->reply);
  free(lk->unavailable);
  free(lk);
}

/* The answer of GET /users/{id}: the reply with the profile, or the
 * unavailable text; then the hold goes (RETRY when the reply could not be
 * queued: the next attempt finds the profile in the cache). */
static void on_profile(void *state, void *arg, const struct blazebot_api_response *r) {
  struct plugin *pl = state;
  struct lookup *lk = arg;
  const struct blazebot_message *msg = lk->msg;
  struct profile p;
  const char *why;
  char *text;
  int result = BLAZEBOT_HANDLED;
  if (profile_from_response(r, msg->user_id, &p, &why) == 0) {
    profile_cache_put(&pl->cache, &p,
                      pl->host->now_ms(pl->ctx, BLAZEBOT_CLOCK_MONOTONIC));
    text = tpl_expand(lk->reply, msg->user_id, &p, lk->markdown);
    profile_clear(&p);
  } else {
    pl->host->log(pl->ctx, BLAZEBOT_LOG_WARN,
                  "profile of %s not available: %s (HTTP %d, error %d)", msg->user_id,
                  why, (int)r->http_status, (int)r->error_code);
    text = tpl_expand(lk->unavailable, msg->user_id, NULL, lk->markdown);
  }
  if (!text) {
    pl->host->log(pl->ctx, BLAZEBOT_LOG_ERROR, "out of memory");
    result = BLAZEBOT_RETRY;
  } else if (pl->host->reply(pl->ctx, msg, lk->category, text, strlen(text), NULL) != 0) {
    pl->host->log(pl->ctx, BLAZEBOT_LOG_WARN, "reply to %s not queued, will retry",
                  msg->message_id);
    result = BLAZEBOT_RETRY;
  }
  free(text);
  pl->host->release(pl->ctx, lk->hold, result);
  lookup_free(pl, lk);
}

/* Sends tpl expanded for msg's sender, inside on_message. */
static int reply_now(struct plugin *pl, const struct blazebot_message *msg,
                     const char *tpl, const struct profile *p) {
  const struct config *c = pl->cfg;
  char *text = tpl_expand(tpl, msg->user_id, p, c->markdown);
  int rc;
  if (!text) {
    pl->host->log(pl->ctx, BLAZEBOT_LOG_ERROR, "out of memory");
    return BLAZEBOT_RETRY;
  }
  rc = pl->host->reply(pl->ctx, msg, c->category, text, strlen(text), NULL);
  free(text);
  if (rc != 0) {
    pl->host->log(pl->ctx, BLAZEBOT_LOG_WARN, "reply to %s not queued, will retry",
                  msg->message_id);
    return BLAZEBOT_RETRY;
  }
  return BLAZEBOT_HANDLED;
}

/* Answers cmd, whose reply uses {full_name} or {identity_number}: from the
 * cache, else under a hold once GET /users/{id} answered. */
static int answer_with_profile(struct plugin *pl, const struct blazebot_message *msg,
                               const struct command *cmd) {
  const struct blazebot_host *host = pl->host;
  const struct config *c = pl->cfg;
  const char *unavailable = cmd->unavailable ? cmd->unavailable : c->unavailable;
  const struct profile *cached;
  struct lookup *lk;

  if (!profile_host_can_lookup(host) || !profile_valid_id(msg->user_id)) {
    host->log(pl->ctx, BLAZEBOT_LOG_DEBUG, "no profile lookup for %s on this host",
              msg->user_id);
    return reply_now(pl, msg, unavailable, NULL);
  }
  cached = profile_cache_get(&pl->cache, msg->user_id,
                             host->now_ms(pl->ctx, BLAZEBOT_CLOCK_MONOTONIC));
  if (cached)
    return reply_now(pl, msg, cmd->reply, cached);

  lk = calloc(1, sizeof *lk);
  if (!lk || !(lk->reply = profile_strdup(cmd->reply)) ||
      !(lk->unavailable = profile_strdup(unavailable))) {
    if (lk) {
      free(lk->reply);
      free(lk);
    }
    host->log(pl->ctx, BLAZEBOT_LOG_ERROR, "out of memory");
    return BLAZEBOT_RETRY;
  }
  lk->category = c->category;
  lk->markdown = c->markdown;
  lk->msg = msg;
  if (!(lk->hold = host->hold(pl->ctx, msg))) {
    host->log(pl->ctx, BLAZEBOT_LOG_WARN, "no hold on %s, will retry", msg->message_id);
    lookup_free(pl, lk);
    return BLAZEBOT_RETRY;
  }
  lk->next = pl->lookups;
  if (pl->lookups)
    pl->lookups->prev = lk;
  pl->lookups = lk;
  if (profile_request(pl->ctx, host, msg->user_id, on_profile, lk) != 0) {
    int rc;
    host->log(pl->ctx, BLAZEBOT_LOG_WARN, "profile of %s not available: request refused",
              msg->user_id);
    rc = reply_now(pl, msg, unavailable, NULL);
    host->release(pl->ctx, lk->hold, rc);
    lookup_free(pl, lk);
    return rc;
  }
  return BLAZEBOT_HANDLED;
}

static int commands_on_message(void *state, const struct blazebot_message *msg) {
  struct plugin *pl = state;
  const struct config *c = pl->cfg;
  const char *self = pl->host->bot_id(pl->ctx);
  const char *text = (const char *)msg->data, *end = text + msg->data_len, *name;
  const char *reply = NULL;
  const struct command *cmd = NULL;
  char *owned = NULL;
  size_t n, i;
  int rc;

  if ((self && strcmp(msg->user_id, self) == 0) ||
      strcmp(msg->source, "ACKNOWLEDGE_MESSAGE_RECEIPT") == 0)
    return BLAZEBOT_PASS;
  while (text < end && is_space((unsigned char)*text))
    text++;
  while (end > text && is_space((unsigned char)end[-1]))
    end--;
  if ((size_t)(end - text) < c->prefix_len || memcmp(text, c->prefix, c->prefix_len) != 0)
    return BLAZEBOT_PASS;
  name = text + c->prefix_len;
  for (n = 0; name + n < end && is_name_char((unsigned char)name[n]); n++)
    ;
  if (n == 0 || n > NAME_MAX_LEN)
    return BLAZEBOT_PASS;
  if (name + n < end) {
    const char *at = name + n;
    if (*at == '@') {
      const char *who = at + 1, *wend = who;
      while (wend < end && !is_space((unsigned char)*wend))
        wend++;
      if (c->bot_name) {
        size_t wn = (size_t)(wend - who);
        if (wn != strlen(c->bot_name))
          return BLAZEBOT_PASS;
        for (i = 0; i < wn; i++)
          if (lower((unsigned char)who[i]) != c->bot_name[i])
            return BLAZEBOT_PASS;
      }
    } else if (!is_space((unsigned char)*at)) {
      return BLAZEBOT_PASS; /* "/usr/bin", "/help!" and the like */
    }
  }

  for (i = 0; i < c->ncmds && !reply; i++) {
    const char *cn = c->cmds[i].name;
    size_t k;
    if (strlen(cn) != n)
      continue;
    for (k = 0; k < n && lower((unsigned char)name[k]) == cn[k]; k++)
      ;
    if (k == n) {
      cmd = &c->cmds[i];
      reply = cmd->reply ? cmd->reply : c->help;
    }
  }
  if (cmd && (cmd->uses & TPL_USES_PROFILE))
    return answer_with_profile(pl, msg, cmd);
  if (cmd && (cmd->uses & TPL_USES_USER_ID))
    return reply_now(pl, msg, cmd->reply, NULL);
  if (!reply) {
    if (!c->unknown_reply[0])
      return BLAZEBOT_PASS;
    if (!(owned = unknown_text(c, name, n))) {
      pl->host->log(pl->ctx, BLAZEBOT_LOG_ERROR, "out of memory");
      return BLAZEBOT_RETRY;
    }
    reply = owned;
  }
  rc = pl->host->reply(pl->ctx, msg, c->category, reply, strlen(reply), NULL);
  free(owned);
  if (rc != 0) {
    pl->host->log(pl->ctx, BLAZEBOT_LOG_WARN, "reply to %s not queued, will retry",
                  msg->message_id);
    return BLAZEBOT_RETRY;
  }
  return BLAZEBOT_HANDLED;
}

/* ---- lifecycle ------------------------------------------------------------------- */

static int commands_init(blazebot_ctx *ctx, const struct blazebot_host *host,
                         void **state) {
  struct plugin *pl = calloc(1, sizeof *pl);
  char err[256];
  if (!pl) {
    host->set_error(ctx, "out of memory");
    return -1;
  }
  pl->ctx = ctx;
  pl->host = host;
  if (!(pl->cfg = config_load(pl, err, sizeof err))) {
    host->set_error(ctx, "%s", err);
    free(pl);
    return -1;
  }
  profile_cache_limit(&pl->cache, pl->cfg->cache_max, pl->cfg->ttl_ms);
  *state = pl;
  return 0;
}

static int commands_reconfigure(void *state) {
  struct plugin *pl = state;
  char err[256];
  struct config *c = config_load(pl, err, sizeof err);
  if (!c) {
    pl->host->log(pl->ctx, BLAZEBOT_LOG_ERROR, "new configuration refused: %s", err);
    return -1;
  }
  config_free(pl->cfg);
  pl->cfg = c;
  profile_cache_limit(&pl->cache, c->cache_max, c->ttl_ms);
  return 0;
}

static void commands_shutdown(void *state) {
  struct plugin *pl = state;
  /* The host answered every lookup before this: the list is empty. */
  while (pl->lookups)
    lookup_free(pl, pl->lookups);
  profile_cache_free(&pl->cache);
  config_free(pl->cfg);
  free(pl);
}

static const struct blazebot_subscription subs[] = {{"PLAIN_TEXT", 100, 0}, {NULL, 0, 0}};

BLAZEBOT_PLUGIN(.flags = BLAZEBOT_FLAG_UNLOAD_SAFE, .name = "commands", .version = "1.0",
                .description = "Answers /commands with replies from its ini section",
                .subscriptions = subs, .init = commands_init,
                .on_message = commands_on_message, .shutdown = commands_shutdown,
                .reconfigure = commands_reconfigure);
