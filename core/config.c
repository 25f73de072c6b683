/* SPDX-License-Identifier: MIT */
/*
 * config: see config.h. inih does the key = value splitting, but it reports
 * neither line numbers to the handler (Debian builds it without
 * INI_HANDLER_LINENO) nor more than the first syntax error, so lines reach it
 * through our own reader, which counts them, handles section headers itself
 * and refuses malformed lines with a message of its own. Only well-formed
 * key = value lines, stripped of leading whitespace (which also turns off
 * inih's multi-line continuation), are handed to inih.
 */
#include "config.h"

#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "config_keys.h"
#include "url.h"
#include "util.h"

/* Hostile or broken files get a precise error, not a pathological run:
 * a line longer than CONFIG_LINE_MAX is reported and skipped without being
 * stored, a file over CONFIG_FILE_MAX (a device, a runaway generator) stops
 * the read, and after CONFIG_ERRORS_SHOWN errors the rest are only counted. */
#define CONFIG_LINE_MAX 4096
#define CONFIG_FILE_MAX (4 << 20)
#define CONFIG_ERRORS_SHOWN 20
#define CONFIG_PLUGINS_MAX 256
#define CONFIG_PLUGIN_KEYS_MAX 1000

#define KEY(name, kind, min, max)                                                        \
  { #name, kind, offsetof(struct config, name), min, max }

/* The [blazebot] keys. Ranges not fixed by config.h are chosen to catch
 * typos (a missing "000" or an extra one) rather than to limit tuning. */
const struct keydef config_keys[] = {
    KEY(keystore, K_PATH, 0, 0),
    KEY(blaze_url, K_WS_URL, 0, 0),
    KEY(api_url, K_HTTP_URL, 0, 0),
    KEY(ca_file, K_PATH, 0, 0),
    KEY(plugin_dir, K_PATH, 0, 0),
    KEY(ack_transport, K_ACK_TRANSPORT, 0, 0),
    KEY(ack_batch, K_INT, 1, 100),
    KEY(ack_interval_ms, K_INT, 1, 60000),
    KEY(max_frame_bytes, K_SIZE, 1024, 1024LL * 1024 * 1024),
    KEY(log_level, K_LOG_LEVEL, 0, 0),
    KEY(log_format, K_LOG_FORMAT, 0, 0),
    KEY(ping_interval_ms, K_INT, 1000, 60000),
    KEY(idle_timeout_ms, K_INT, 2000, 600000),
    KEY(request_timeout_ms, K_INT, 100, 600000),
    KEY(connect_timeout_ms, K_INT, 100, 600000),
    KEY(reconnect_min_ms, K_INT, 10, 3600000),
    KEY(reconnect_max_ms, K_INT, 10, 3600000),
    KEY(outbox_capacity, K_INT, 1, 10000000),
    KEY(send_rate_per_min, K_INT, 0, 100000),
    KEY(dedupe_capacity, K_INT, 1, 10000000),
    KEY(workers, K_INT, 1, 64),
    KEY(shutdown_timeout_ms, K_INT, 0, 3600000),
    KEY(reload_timeout_ms, K_INT, 10, 3600000),
    KEY(status_file, K_PATH, 0, 0),
    KEY(dead_letter_file, K_PATH, 0, 0),
    KEY(state_dir, K_PATH, 0, 0),
    KEY(metrics_listen, K_LISTEN, 0, 0),
    KEY(allow_insecure_transport, K_BOOL, 0, 1),
};

#define NKEYS (sizeof config_keys / sizeof config_keys[0])
const size_t config_nkeys = NKEYS;
_Static_assert(NKEYS <= 64, "struct config's keys_set has one bit per key");

static int key_index(const char *name) {
  for (size_t i = 0; i < NKEYS; i++) {
    if (strcmp(config_keys[i].name, name) == 0)
      return (int)i;
  }
  return -1;
}

enum section { SEC_NONE, SEC_SKIP, SEC_BLAZEBOT, SEC_PLUGIN };

/* State shared by the reader and the inih handler of one config_load. */
struct loader {
  const char *path;
  FILE *f;
  char line[CONFIG_LINE_MAX + 2]; /* the current line, NUL-terminated */
  size_t total;                   /* bytes read so far */
  int lineno;                     /* physical line last read */
  int nerr;
  int stop;    /* the file is unusable (too large, a read error): read no further */
  int section; /* enum section */
  int blazebot_line;
  int key_line[NKEYS]; /* where each [blazebot] key was set, 0 = not set */
  int key_ok[NKEYS];   /* its value was valid */
  struct config *cfg;
};

__attribute__((format(printf, 3, 4))) static void fail(struct loader *ld, int line,
                                                       const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (ld->nerr < CONFIG_ERRORS_SHOWN)
    log_error("%s:%d: %s", ld->path, line, msg);
  ld->nerr++;
}

static int *int_field(struct config *cfg, const struct keydef *k) {
  return (int *)(void *)((char *)cfg + k->off);
}

static char **str_field(struct config *cfg, const struct keydef *k) {
  return (char **)(void *)((char *)cfg + k->off);
}

/* The folder of path as an absolute path, so that resolved paths survive a
 * later chdir. */
static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir;
  if (!slash)
    dir = strdup(".");
  else if (slash == path)
    dir = strdup("/");
  else
    dir = strndup(path, (size_t)(slash - path));
  if (!dir || dir[0] == '/')
    return dir;
  char *cwd = getcwd(NULL, 0);
  char *abs = NULL;
  if (cwd) {
    size_t n = strlen(cwd) + strlen(dir) + 2;
    abs = malloc(n);
    if (abs && strcmp(dir, ".") == 0)
      snprintf(abs, n, "%s", cwd);
    else if (abs)
      snprintf(abs, n, "%s%s%s", cwd, strcmp(cwd, "/") == 0 ? "" : "/", dir);
  }
  free(cwd);
  free(dir);
  return abs;
}

static char *resolve(const char *dir, const char *p) {
  if (p[0] == '/')
    return strdup(p);
  size_t n = strlen(dir) + strlen(p) + 2;
  char *out = malloc(n);
  if (out)
    snprintf(out, n, "%s%s%s", dir, strcmp(dir, "/") == 0 ? "" : "/", p);
  return out;
}

/* Parses a decimal integer with an optional K/M/G (binary) suffix when
 * suffix is set. Returns 0 or -1 if s is not such a number or overflows. */
static int parse_number(const char *s, int suffix, long long *out) {
  if (*s < '0' || *s > '9')
    return -1;
  errno = 0;
  char *end;
  long long v = strtoll(s, &end, 10);
  if (errno)
    return -1;
  if (suffix && *end) {
    int shift = 0;
    switch (*end) {
    case 'K':
    case 'k':
      shift = 10;
      break;
    case 'M':
    case 'm':
      shift = 20;
      break;
    case 'G':
    case 'g':
      shift = 30;
      break;
    default:
      return -1;
    }
    if (v > (LLONG_MAX >> shift))
      return -1;
    v <<= shift;
    end++;
  }
  if (*end)
    return -1;
  *out = v;
  return 0;
}

/* Stores one [blazebot] value; returns 0 or -1 after reporting why not. */
static int set_key(struct loader *ld, const struct keydef *k, const char *value) {
  struct config *cfg = ld->cfg;
  int line = ld->lineno;
  if (!*value && k->kind != K_INT && k->kind != K_SIZE) {
    fail(ld, line, "%s: empty value", k->name);
    return -1;
  }
  switch (k->kind) {
  case K_PATH:
  case K_WS_URL:
  case K_HTTP_URL: {
    char *v;
    if (k->kind == K_PATH) {
      v = resolve(cfg->dir, value);
    } else {
      struct url u;
      char why[200];
      if (url_parse(value, &u, why, sizeof why) < 0) {
        fail(ld, line, "%s: %s", k->name, why);
        return -1;
      }
      if (u.websocket != (k->kind == K_WS_URL)) {
        fail(ld, line, "%s: expected a %s URL, got '%s'", k->name,
             k->kind == K_WS_URL ? "wss:// (or ws://)" : "https:// (or http://)", value);
        return -1;
      }
      if (k->kind == K_HTTP_URL && strchr(u.target, '?')) {
        fail(ld, line, "%s: a query is not allowed in the API base URL", k->name);
        return -1;
      }
      v = strdup(value);
      if (v && k->kind == K_HTTP_URL) {
        /* The base of every API path: a trailing '/' would double. */
        size_t n = strlen(v), min = (size_t)(strstr(v, "://") - v) + 4;
        while (n > min && v[n - 1] == '/')
          v[--n] = 0;
      }
    }
    if (!v) {
      fail(ld, line, "out of memory");
      return -1;
    }
    char **field = str_field(cfg, k);
    free(*field);
    *field = v;
    return 0;
  }
  case K_INT:
  case K_SIZE: {
    long long v;
    if (parse_number(value, k->kind == K_SIZE, &v) < 0) {
      fail(ld, line, "%s: expected %s, got '%s'", k->name,
           k->kind == K_SIZE ? "a byte count such as 4M (suffix K, M or G)"
                             : "a non-negative integer",
           value);
      return -1;
    }
    if (v < k->min || v > k->max) {
      fail(ld, line, "%s = %s is out of range (%lld..%lld)", k->name, value, k->min,
           k->max);
      return -1;
    }
    if (k->kind == K_SIZE)
      *(size_t *)(void *)((char *)cfg + k->off) = (size_t)v;
    else
      *int_field(cfg, k) = (int)v;
    return 0;
  }
  case K_BOOL:
    if (!strcmp(value, "true") || !strcmp(value, "yes") || !strcmp(value, "on") ||
        !strcmp(value, "1")) {
      *int_field(cfg, k) = 1;
    } else if (!strcmp(value, "false") || !strcmp(value, "no") || !strcmp(value, "off") ||
               !strcmp(value, "0")) {
      *int_field(cfg, k) = 0;
    } else {
      fail(ld, line, "%s: expected true or false, got '%s'", k->name, value);
      return -1;
    }
    return 0;
  case K_LOG_LEVEL:
    if (log_level_parse(value, int_field(cfg, k)) < 0) {
      fail(ld, line, "%s: expected error, warn, info or debug, got '%s'", k->name, value);
      return -1;
    }
    return 0;
  case K_LOG_FORMAT:
    if (log_format_parse(value, int_field(cfg, k)) < 0) {
      fail(ld, line, "%s: expected text or json, got '%s'", k->name, value);
      return -1;
    }
    return 0;
  case K_LISTEN: {
    /* HOST:PORT with a numeric port; the host is checked when binding. */
    const char *colon = strrchr(value, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon == value || !colon[1] || *end || port < 0 || port > 65535 ||
        strchr(value, ' ')) {
      fail(ld, line, "%s: expected HOST:PORT such as 127.0.0.1:9464, got '%s'", k->name,
           value);
      return -1;
    }
    char *v = strdup(value);
    if (!v) {
      fail(ld, line, "out of memory");
      return -1;
    }
    char **field = str_field(cfg, k);
    free(*field);
    *field = v;
    return 0;
  }
  case K_ACK_TRANSPORT:
    if (strcmp(value, "websocket") == 0) {
      *int_field(cfg, k) = ACK_TRANSPORT_WEBSOCKET;
    } else if (strcmp(value, "rest") == 0) {
      *int_field(cfg, k) = ACK_TRANSPORT_REST;
    } else {
      fail(ld, line, "%s: expected websocket or rest, got '%s'", k->name, value);
      return -1;
    }
    return 0;
  }
  return -1;
}

static void plugin_key(struct loader *ld, const char *name, const char *value) {
  struct config_plugin *p = &ld->cfg->plugins[ld->cfg->nplugins - 1];
  for (size_t i = 0; i < p->nkv; i++) {
    if (strcmp(p->kv[i].key, name) == 0) {
      fail(ld, ld->lineno, "duplicate key '%s' in [plugin.%s] (first set at line %d)",
           name, p->name, p->kv[i].line);
      return;
    }
  }
  if (p->nkv >= CONFIG_PLUGIN_KEYS_MAX) {
    fail(ld, ld->lineno, "too many keys in [plugin.%s] (at most %d)", p->name,
         CONFIG_PLUGIN_KEYS_MAX);
    return;
  }
  struct config_kv *kv = realloc(p->kv, (p->nkv + 1) * sizeof *kv);
  if (!kv) {
    fail(ld, ld->lineno, "out of memory");
    return;
  }
  p->kv = kv;
  kv = &kv[p->nkv];
  kv->key = strdup(name);
  kv->value = strdup(value);
  kv->line = ld->lineno;
  if (!kv->key || !kv->value) {
    free(kv->key);
    free(kv->value);
    fail(ld, ld->lineno, "out of memory");
    return;
  }
  p->nkv++;
}

/* The inih handler: called for every key = value line the reader let
 * through. The section comes from the reader's state, not from inih (which
 * truncates long section names). Always returns 1: errors are counted here. */
static int on_key(void *user, const char *section, const char *name, const char *value) {
  (void)section;
  struct loader *ld = user;
  if (!*name) {
    fail(ld, ld->lineno, "missing key name before '='");
    return 1;
  }
  switch (ld->section) {
  case SEC_NONE:
    fail(ld, ld->lineno, "key '%s' outside of any section", name);
    break;
  case SEC_SKIP:
    break; /* the section header was already reported */
  case SEC_PLUGIN:
    plugin_key(ld, name, value);
    break;
  case SEC_BLAZEBOT: {
    int i = key_index(name);
    if (i < 0) {
      fail(ld, ld->lineno, "unknown key '%s' in [blazebot]", name);
    } else if (ld->key_line[i]) {
      fail(ld, ld->lineno, "duplicate key '%s' (first set at line %d)", name,
           ld->key_line[i]);
    } else {
      ld->key_line[i] = ld->lineno;
      ld->cfg->keys_set |= 1ULL << i;
      ld->key_ok[i] = set_key(ld, &config_keys[i], value) == 0;
    }
    break;
  }
  }
  return 1;
}

int config_valid_plugin_name(const char *s) {
  if (!*s)
    return 0;
  for (; *s; s++) {
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
          (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
      return 0;
  }
  return 1;
}

/* Handles a "[name]" line (name already trimmed). */
static void on_section(struct loader *ld, const char *name) {
  struct config *cfg = ld->cfg;
  ld->section = SEC_SKIP;
  if (strcmp(name, "blazebot") == 0) {
    if (ld->blazebot_line) {
      fail(ld, ld->lineno, "duplicate section [blazebot] (first at line %d)",
           ld->blazebot_line);
      return;
    }
    ld->blazebot_line = ld->lineno;
    ld->section = SEC_BLAZEBOT;
    return;
  }
  if (strncmp(name, "plugin.", 7) != 0) {
    fail(ld, ld->lineno, "unknown section [%s] (expected [blazebot] or [plugin.NAME])",
         name);
    return;
  }
  const char *pname = name + 7;
  if (!config_valid_plugin_name(pname)) {
    fail(ld, ld->lineno, "bad plugin name in [%s]: use only letters, digits, '_' and '-'",
         name);
    return;
  }
  for (size_t i = 0; i < cfg->nplugins; i++) {
    if (strcmp(cfg->plugins[i].name, pname) == 0) {
      fail(ld, ld->lineno, "duplicate section [%s] (first at line %d)", name,
           cfg->plugins[i].line);
      return;
    }
  }
  if (cfg->nplugins >= CONFIG_PLUGINS_MAX) {
    fail(ld, ld->lineno, "too many [plugin.NAME] sections (at most %d)",
         CONFIG_PLUGINS_MAX);
    return;
  }
  struct config_plugin *p = realloc(cfg->plugins, (cfg->nplugins + 1) * sizeof *p);
  if (!p) {
    fail(ld, ld->lineno, "out of memory");
    return;
  }
  cfg->plugins = p;
  p = &p[cfg->nplugins];
  memset(p, 0, sizeof *p);
  p->line = ld->lineno;
  p->name = strdup(pname);
  if (!p->name) {
    fail(ld, ld->lineno, "out of memory");
    return;
  }
  cfg->nplugins++;
  ld->section = SEC_PLUGIN;
}

int config_is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* inih's rule: the first of chars, or an inline ';' comment preceded by
 * whitespace, or the end of s. */
static char *find_chars_or_comment(char *s, const char *chars) {
  int was_space = 0;
  while (*s && !strchr(chars, *s) && !(was_space && *s == ';')) {
    was_space = config_is_space(*s);
    s++;
  }
  return s;
}

/* Reads one physical line into ld->line without its '\n'. Returns its
 * length (at most CONFIG_LINE_MAX + 1: one more means "too long", the rest
 * was consumed and dropped), or -1 at the end of the file or when reading
 * must stop. Byte by byte, so that nothing unbounded is ever allocated. */
static long next_line(struct loader *ld, int *has_nul) {
  size_t n = 0;
  int c = EOF;
  *has_nul = 0;
  if (ld->stop)
    return -1;
  while ((c = getc(ld->f)) != EOF) {
    if (++ld->total > CONFIG_FILE_MAX) {
      fail(ld, ld->lineno + 1, "file too large (over %d MiB): not a config file?",
           CONFIG_FILE_MAX >> 20);
      ld->stop = 1;
      return -1;
    }
    if (c == '\n')
      break;
    if (c == 0)
      *has_nul = 1;
    if (n <= CONFIG_LINE_MAX)
      ld->line[n++] = (char)c;
  }
  if (c == EOF && (n == 0 || ferror(ld->f)))
    return -1;
  ld->line[n] = 0;
  return (long)n;
}

/* The ini_reader: returns the next line for inih, counting physical lines.
 * Blank, comment, section and malformed lines are dealt with here and given
 * to inih as empty lines. */
static char *read_line(char *str, int num, void *stream) {
  struct loader *ld = stream;
  int has_nul;
  long n = next_line(ld, &has_nul);
  if (n < 0)
    return NULL;
  ld->lineno++;
  char *s = ld->line;
  str[0] = 0;
  if (n > CONFIG_LINE_MAX) {
    fail(ld, ld->lineno, "line too long (at most %d characters)",
         num - 1 < CONFIG_LINE_MAX ? num - 1 : CONFIG_LINE_MAX);
    return str;
  }
  if (has_nul) {
    fail(ld, ld->lineno, "line contains a NUL byte");
    return str;
  }
  if (!utf8_valid((const unsigned char *)s, (size_t)n)) {
    fail(ld, ld->lineno, "line is not valid UTF-8");
    return str;
  }
  if (ld->lineno == 1 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
    s += 3;
  while (config_is_space(*s))
    s++;
  size_t len = strlen(s);
  while (len && config_is_space(s[len - 1]))
    s[--len] = 0;
  if (!*s || *s == ';' || *s == '#')
    return str;
  if (*s == '[') {
    char *end = find_chars_or_comment(s + 1, "]");
    if (*end != ']') {
      fail(ld, ld->lineno, "section header without closing ']'");
      ld->section = SEC_SKIP;
      return str;
    }
    *end = 0;
    char *rest = end + 1;
    while (config_is_space(*rest))
      rest++;
    if (*rest && *rest != ';' && *rest != '#') {
      fail(ld, ld->lineno, "unexpected text after section header");
      ld->section = SEC_SKIP;
      return str;
    }
    char *name = s + 1;
    while (config_is_space(*name))
      name++;
    for (size_t k = strlen(name); k && config_is_space(name[k - 1]);)
      name[--k] = 0;
    on_section(ld, name);
    return str;
  }
  char *eq = find_chars_or_comment(s, "=:");
  if (*eq != '=' && *eq != ':') {
    fail(ld, ld->lineno, "expected 'key = value', '[section]' or a comment");
    return str;
  }
  if (ld->section == SEC_SKIP)
    return str; /* the section header was already reported */
  if (num < 1 || len > (size_t)num - 1) {
    fail(ld, ld->lineno, "line too long (at most %d characters)", num - 1);
    return str;
  }
  memcpy(str, s, len + 1);
  return str;
}

/* A key takes part in a cross-check if it holds a valid value or the
 * default; a bad value was reported already. */
static int usable(const struct loader *ld, int i) {
  return !ld->key_line[i] || ld->key_ok[i];
}

/* The line to blame for a problem between keys a and b: where a was set,
 * else where b was, else the [blazebot] header. */
static int blame(const struct loader *ld, int a, int b) {
  if (ld->key_line[a])
    return ld->key_line[a];
  if (ld->key_line[b])
    return ld->key_line[b];
  return ld->blazebot_line ? ld->blazebot_line : 1;
}

/* Checks that need more than one key, once the whole file is read. */
static void check_all(struct loader *ld) {
  const struct config *cfg = ld->cfg;
  int ks = key_index("keystore"), ping = key_index("ping_interval_ms"),
      idle = key_index("idle_timeout_ms"), rmin = key_index("reconnect_min_ms"),
      rmax = key_index("reconnect_max_ms");
  if (!ld->key_line[ks]) {
    if (ld->blazebot_line)
      fail(ld, ld->blazebot_line, "missing required key 'keystore' in [blazebot]");
    else
      fail(ld, 1, "missing [blazebot] section with the required key 'keystore'");
  }
  if (usable(ld, ping) && usable(ld, idle) &&
      cfg->idle_timeout_ms <= cfg->ping_interval_ms)
    fail(ld, blame(ld, idle, ping),
         "idle_timeout_ms (%d) must be greater than ping_interval_ms (%d)",
         cfg->idle_timeout_ms, cfg->ping_interval_ms);
  /* Plain ws:// and http:// carry the bot's tokens and messages in the
   * clear: only to this machine, unless the operator said otherwise. */
  int insecure = key_index("allow_insecure_transport");
  if (usable(ld, insecure) && !cfg->allow_insecure_transport) {
    const int urls[] = {key_index("blaze_url"), key_index("api_url")};
    for (size_t i = 0; i < 2; i++) {
      const char *v = i ? cfg->api_url : cfg->blaze_url;
      struct url u;
      if (ld->key_line[urls[i]] && ld->key_ok[urls[i]] &&
          url_parse(v, &u, NULL, 0) == 0 && !u.tls && !url_is_loopback(&u))
        fail(ld, ld->key_line[urls[i]],
             "%s: unencrypted %s to a host other than this machine; use %s, or set "
             "allow_insecure_transport = true",
             config_keys[urls[i]].name, i ? "http://" : "ws://",
             i ? "https://" : "wss://");
    }
  }
  if (usable(ld, rmin) && usable(ld, rmax) &&
      cfg->reconnect_min_ms > cfg->reconnect_max_ms)
    fail(ld, blame(ld, rmax, rmin),
         "reconnect_min_ms (%d) must not exceed reconnect_max_ms (%d)",
         cfg->reconnect_min_ms, cfg->reconnect_max_ms);
}

static struct config *config_new(const char *path) {
  struct config *cfg = calloc(1, sizeof *cfg);
  if (!cfg)
    return NULL;
  atomic_init(&cfg->refs, 1);
  cfg->path = strdup(path);
  cfg->dir = dir_of(path);
  cfg->blaze_url = strdup("wss://blaze.mixin.one/");
  cfg->api_url = strdup("https://api.mixin.one");
  cfg->ack_transport = ACK_TRANSPORT_WEBSOCKET;
  cfg->ack_batch = 100;
  cfg->ack_interval_ms = 200;
  cfg->max_frame_bytes = 4u << 20;
  cfg->log_level = LOGL_INFO;
  cfg->ping_interval_ms = 12000;
  cfg->idle_timeout_ms = 30000;
  cfg->request_timeout_ms = 10000;
  cfg->connect_timeout_ms = 10000;
  cfg->reconnect_min_ms = 1000;
  cfg->reconnect_max_ms = 60000;
  cfg->outbox_capacity = 10000;
  cfg->send_rate_per_min = 90000;
  cfg->dedupe_capacity = 100000;
  cfg->workers = 2;
  cfg->shutdown_timeout_ms = 10000;
  cfg->reload_timeout_ms = 5000;
  if (!cfg->path || !cfg->dir || !cfg->blaze_url || !cfg->api_url) {
    config_free(cfg);
    return NULL;
  }
  return cfg;
}

int config_load(const char *path, struct config **out) {
  *out = NULL;
  struct loader ld = {.path = path, .section = SEC_NONE};
  ld.f = fopen(path, "re");
  struct stat st;
  if (ld.f && fstat(fileno(ld.f), &st) == 0 && S_ISDIR(st.st_mode)) {
    fclose(ld.f);
    ld.f = NULL;
    errno = EISDIR;
  }
  if (!ld.f) {
    log_error("%s: cannot open: %s", path, strerror(errno));
    return 1;
  }
  ld.cfg = config_new(path);
  if (!ld.cfg) {
    fclose(ld.f);
    log_error("%s: out of memory (or the current directory is unreadable)", path);
    return 1;
  }
  int rc = ini_parse_stream(read_line, &ld, on_key, &ld);
  if (ferror(ld.f))
    fail(&ld, ld.lineno, "read error: %s", strerror(errno));
  else if (rc == -2)
    fail(&ld, ld.lineno, "out of memory");
  else if (rc > 0)
    fail(&ld, rc, "syntax error"); /* a line the reader let through but inih refused */
  fclose(ld.f);
  if (!ld.stop)
    check_all(&ld);
  if (ld.nerr > CONFIG_ERRORS_SHOWN)
    log_error("%s: %d more errors not shown", path, ld.nerr - CONFIG_ERRORS_SHOWN);
  if (ld.nerr) {
    config_free(ld.cfg);
    return ld.nerr;
  }
  *out = ld.cfg;
  return 0;
}

const struct config *config_ref(const struct config *cfg) {
  atomic_fetch_add(&((struct config *)cfg)->refs, 1);
  return cfg;
}

void config_free(const struct config *ccfg) {
  struct config *cfg = (struct config *)ccfg;
  if (!cfg || atomic_fetch_sub(&cfg->refs, 1) != 1)
    return;
  for (size_t i = 0; i < cfg->nplugins; i++) {
    struct config_plugin *p = &cfg->plugins[i];
    for (size_t j = 0; j < p->nkv; j++) {
      free(p->kv[j].key);
      free(p->kv[j].value);
    }
    free(p->kv);
    free(p->name);
  }
  free(cfg->plugins);
  free(cfg->path);
  free(cfg->dir);
  free(cfg->keystore);
  free(cfg->blaze_url);
  free(cfg->api_url);
  free(cfg->ca_file);
  free(cfg->plugin_dir);
  free(cfg->status_file);
  free(cfg->dead_letter_file);
  free(cfg->state_dir);
  free(cfg->metrics_listen);
  free(cfg);
}

const struct config_plugin *config_find_plugin(const struct config *cfg,
                                               const char *name) {
  for (size_t i = 0; i < cfg->nplugins; i++) {
    if (strcmp(cfg->plugins[i].name, name) == 0)
      return &cfg->plugins[i];
  }
  return NULL;
}
