/* SPDX-License-Identifier: MIT */
/*
 * config_print: see config_print in config.h: the effective configuration
 * as an ini that reads back, secrets of plugin sections masked. Pure: it
 * only reads the snapshot.
 */
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_keys.h"
#include "log.h"

/* ---- config_print ---- */

/* s contains part, ignoring case. */
static int contains_ci(const char *s, const char *part) {
  size_t n = strlen(part);
  for (; *s; s++) {
    if (strncasecmp(s, part, n) == 0)
      return 1;
  }
  return 0;
}

static int is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

int config_secret_key(const char *name) {
  static const char *const parts[] = {"secret",     "token",   "passw",
                                      "passphrase", "private", "credential"};
  static const char *const ends[] = {"key", "keys", "pin", "pins", "pwd"};
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
    if (contains_ci(name, parts[i]))
      return 1;
  }
  for (const char *s = name; *s;) {
    if (!is_alnum(*s)) {
      s++;
      continue;
    }
    const char *b = s;
    while (is_alnum(*s))
      s++;
    const char *e = s; /* the word is [b, e), without trailing digits */
    while (e > b && e[-1] >= '0' && e[-1] <= '9')
      e--;
    for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++) {
      size_t n = strlen(ends[i]);
      if ((size_t)(e - b) >= n && strncasecmp(e - n, ends[i], n) == 0)
        return 1;
    }
  }
  return 0;
}

struct printer {
  FILE *out;
  size_t max_line; /* longest line config_load reads (inih's buffer, less its NUL) */
  int bad;         /* values written as comments: they would not read back */
};

/* Writes s with control characters as \xHH: for comments, which must stay on
 * one line. */
static void put_escaped(FILE *out, const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c < 0x20 || c == 0x7f)
      fprintf(out, "\\x%02x", c);
    else
      fputc(c, out);
  }
}

/* s has a ';' right after whitespace: inih reads it as the start of a comment. */
static int has_inline_comment(const char *s) {
  for (; *s && s[1]; s++) {
    if (config_is_space(s[0]) && s[1] == ';')
      return 1;
  }
  return 0;
}

/* Why the line "key = value ; comment" (comment NULL: none) would not be
 * read back by config_load as this key and value, or NULL when it would.
 * The reader strips the line, splits it at the first '=' or ':' (the value
 * may hold both), ends the value at a ';' after whitespace and strips it: so
 * there is no quoting, and nothing needs escaping but what cannot be
 * written at all. */
static const char *unreadable(const struct printer *pr, const char *key,
                              const char *value, const char *comment, char *why,
                              size_t cap) {
  size_t klen = strlen(key);
  if (!klen || strpbrk(key, "=:\n") || config_is_space(key[0]) ||
      config_is_space(key[klen - 1]) || strchr(";#[", key[0]) || has_inline_comment(key))
    return "the key name cannot be written in an ini file";
  size_t vlen = strlen(value);
  if (strchr(value, '\n'))
    return "the value holds a line break";
  if (vlen && (config_is_space(value[0]) || config_is_space(value[vlen - 1])))
    return "the value starts or ends with whitespace, which is stripped";
  if (has_inline_comment(value))
    return "the value holds a ';' after whitespace, which starts a comment";
  /* "key = value", "key =" or "key =;value" (see put_line), then " ; comment". */
  size_t len = klen + (vlen && value[0] != ';' ? 3 : 2) + vlen;
  if (comment)
    len += 3 + strlen(comment);
  if (len > pr->max_line) {
    snprintf(why, cap, "the line would be longer than %zu characters", pr->max_line);
    return why;
  }
  return NULL;
}

/* Writes "key = value", with " ; comment" after it when comment is set, or
 * a comment line saying why that would not read back. */
static void put_line(struct printer *pr, const char *key, const char *value,
                     const char *comment) {
  char buf[80];
  const char *why = unreadable(pr, key, value, comment, buf, sizeof buf);
  if (why) {
    fputs("; ", pr->out);
    put_escaped(pr->out, key);
    fputs(" = ", pr->out);
    put_escaped(pr->out, value);
    fprintf(pr->out, " ; not written: %s\n", why);
    pr->bad++;
    return;
  }
  /* A value that starts with ';' follows the '=' directly: after a space it
   * would be a comment. An empty one leaves nothing after the '='. */
  const char *sep = !*value || value[0] == ';' ? " =" : " = ";
  fprintf(pr->out, "%s%s%s%s%s\n", key, sep, value, comment ? " ; " : "",
          comment ? comment : "");
}

/* What a path key that is not set means; NULL for one that is required. */
static const char *unset_meaning(const char *name) {
  static const char *const meanings[][2] = {
      {"ca_file", "the system's CA store"},
      {"plugin_dir", "none, so no plugin can be loaded"},
      {"status_file", "none, so blazebot --reload cannot find the daemon"},
      {"dead_letter_file", "none, so messages given up on are only logged"},
      {"state_dir", "none, so plugins get no private folder"},
      {"metrics_listen", "none, so no /metrics or /healthz endpoint"},
  };
  for (size_t i = 0; i < sizeof meanings / sizeof meanings[0]; i++) {
    if (strcmp(meanings[i][0], name) == 0)
      return meanings[i][1];
  }
  return strcmp(name, "keystore") == 0 ? NULL : "none";
}

/* A byte count as config_load reads it: with the largest exact suffix. */
static void format_size(size_t v, char *buf, size_t cap) {
  static const char suffix[] = "GMK";
  for (int i = 0; i < 3; i++) {
    size_t unit = (size_t)1 << (10 * (3 - i));
    if (v && v % unit == 0) {
      snprintf(buf, cap, "%zu%c", v / unit, suffix[i]);
      return;
    }
  }
  snprintf(buf, cap, "%zu", v);
}

static void print_blazebot(struct printer *pr, const struct config *cfg) {
  static const char *const levels[] = {"error", "warn", "info", "debug"};
  fputs("[blazebot]\n", pr->out);
  for (size_t i = 0; i < config_nkeys; i++) {
    const struct keydef *k = &config_keys[i];
    const void *field = (const char *)cfg + k->off;
    int dflt = !(cfg->keys_set >> i & 1);
    char num[32];
    const char *v = NULL;
    switch ((enum kind)k->kind) {
    case K_PATH:
    case K_WS_URL:
    case K_HTTP_URL:
    case K_LISTEN:
      v = *(char *const *)field;
      break;
    case K_LOG_FORMAT:
      v = *(const int *)field == LOG_FORMAT_JSON ? "json" : "text";
      break;
    case K_INT:
      snprintf(num, sizeof num, "%d", *(const int *)field);
      v = num;
      break;
    case K_SIZE:
      format_size(*(const size_t *)field, num, sizeof num);
      v = num;
      break;
    case K_BOOL:
      v = *(const int *)field ? "true" : "false";
      break;
    case K_LOG_LEVEL: {
      int l = *(const int *)field;
      if (l < 0 || l > 3) {
        fprintf(pr->out, "; %s = %d ; not written: not a log level\n", k->name, l);
        pr->bad++;
        continue;
      }
      v = levels[l];
      break;
    }
    case K_ACK_TRANSPORT:
      v = *(const int *)field == ACK_TRANSPORT_REST ? "rest" : "websocket";
      break;
    }
    if (!v) {
      const char *meaning = unset_meaning(k->name);
      if (!meaning) {
        fprintf(pr->out, "; %s = (not set) ; not written: it is required\n", k->name);
        pr->bad++;
      } else {
        fprintf(pr->out, "; %s = (not set) ; %s%s\n", k->name, dflt ? "default: " : "",
                meaning);
      }
      continue;
    }
    put_line(pr, k->name, v, dflt ? "default" : NULL);
  }
}

static const struct config_kv *plugin_kv(const struct config_plugin *p, const char *key) {
  for (size_t i = 0; i < p->nkv; i++) {
    if (strcmp(p->kv[i].key, key) == 0)
      return &p->kv[i];
  }
  return NULL;
}

static void print_plugin(struct printer *pr, const struct config_plugin *p) {
  if (!config_valid_plugin_name(p->name)) {
    fputs("; [plugin.", pr->out);
    put_escaped(pr->out, p->name);
    fputs("] ; not written, nor its keys: not a valid section name\n", pr->out);
    pr->bad++;
    return;
  }
  fprintf(pr->out, "[plugin.%s]\n", p->name);
  for (size_t i = 0; i < p->nkv; i++) {
    const struct config_kv *kv = &p->kv[i];
    /* An empty value gives nothing away: it stays visible. */
    if (*kv->value && config_secret_key(kv->key))
      put_line(pr, kv->key, "********", "masked");
    else
      put_line(pr, kv->key, kv->value, NULL);
  }
  /* The host's keys left to their defaults (see loader.c). */
  if (!plugin_kv(p, "path")) {
    size_t n = strlen(p->name) + 4;
    char *file = malloc(n);
    if (file) {
      snprintf(file, n, "%s.so", p->name);
      put_line(pr, "path", file, "default");
      free(file);
    }
  }
  if (!plugin_kv(p, "enabled"))
    put_line(pr, "enabled", "true", "default");
  if (!plugin_kv(p, "categories"))
    fputs("; categories = (not set) ; default: the plugin's own subscriptions\n",
          pr->out);
  if (!plugin_kv(p, "priority"))
    fputs("; priority = (not set) ; default: the plugin's own\n", pr->out);
  if (!plugin_kv(p, "max_attempts"))
    fputs("; max_attempts = (not set) ; default: 5, or 0 (never give up) for a plugin "
          "flagged to retry forever\n",
          pr->out);
}

int config_print(const struct config *cfg, FILE *out) {
  struct printer pr = {.out = out,
                       .max_line = ini_max_line > 1 ? (size_t)ini_max_line - 1 : 0};
  fputs("; effective configuration of ", out);
  put_escaped(out, cfg->path ? cfg->path : "(unnamed)");
  fputs("\n"
        "; Every [blazebot] key is listed; \"; default\" marks a value the file does\n"
        "; not set. Paths are resolved (absolute): a relative path would resolve\n"
        "; against the folder of whichever ini it is read from. Values of plugin keys\n"
        "; that look secret (token, password, key, ...) are masked as ********.\n"
        "\n",
        out);
  print_blazebot(&pr, cfg);
  for (size_t i = 0; i < cfg->nplugins; i++) {
    fputc('\n', out);
    print_plugin(&pr, &cfg->plugins[i]);
  }
  return fflush(out) != 0 || ferror(out) ? -1 : pr.bad;
}
