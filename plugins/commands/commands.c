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

#include <blazebot/plugin.h>

#define NAME_MAX_LEN 64

struct command {
  char *name;     /* lowercase */
  char *reply;    /* NULL for help: generated */
  char *describe; /* may be NULL */
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
  char *help; /* the generated /help reply */
};

struct plugin {
  blazebot_ctx *ctx;
  const struct blazebot_host *host;
  struct config *cfg;
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
  }
  free(c->cmds);
  free(c->prefix);
  free(c->unknown_reply);
  free(c->bot_name);
  free(c->help);
  free(c);
}

/* The value of "stem.name", trying name as the user wrote it first. */
static const char *get_keyed(struct plugin *pl, const char *stem, const char *as_written,
                             size_t n, const char *lowered) {
  char key[16 + NAME_MAX_LEN];
  const char *v;
  snprintf(key, sizeof key, "%s.%.*s", stem, (int)n, as_written);
  v = pl->host->config_get(pl->ctx, key);
  if (!v) {
    snprintf(key, sizeof key, "%s.%s", stem, lowered);
    v = pl->host->config_get(pl->ctx, key);
  }
  return v;
}

/* Adds command name (n bytes as written) to c. Returns 0 or -1 with err. */
static int add_command(struct plugin *pl, struct config *c, const char *name, size_t n,
                       char *err, size_t errlen) {
  struct command *cmd, *grown;
  const char *reply, *describe;
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
  reply = get_keyed(pl, "command", name, n, lname);
  describe = get_keyed(pl, "describe", name, n, lname);
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
  if ((reply && !cmd->reply) || (describe && !cmd->describe))
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

static int commands_on_message(void *state, const struct blazebot_message *msg) {
  struct plugin *pl = state;
  const struct config *c = pl->cfg;
  const char *self = pl->host->bot_id(pl->ctx);
  const char *text = (const char *)msg->data, *end = text + msg->data_len, *name;
  const char *reply = NULL;
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
    if (k == n)
      reply = c->cmds[i].reply ? c->cmds[i].reply : c->help;
  }
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
  return 0;
}

static void commands_shutdown(void *state) {
  struct plugin *pl = state;
  config_free(pl->cfg);
  free(pl);
}

static const struct blazebot_subscription subs[] = {{"PLAIN_TEXT", 100, 0}, {NULL, 0, 0}};

BLAZEBOT_PLUGIN(.flags = BLAZEBOT_FLAG_UNLOAD_SAFE, .name = "commands", .version = "1.0",
                .description = "Answers /commands with replies from its ini section",
                .subscriptions = subs, .init = commands_init,
                .on_message = commands_on_message, .shutdown = commands_shutdown,
                .reconfigure = commands_reconfigure);
