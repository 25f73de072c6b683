/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of config: defaults, every key, path resolution against the
 * ini's folder, [plugin.NAME] sections kept verbatim, and every kind of
 * mistake reported as "file:line: message" — all of them in one pass. The
 * log goes to stderr, so each load runs with fd 2 redirected to a file that
 * is read back. config_print: every key with its default marked, secrets
 * masked, and a round trip through config_load of tricky values.
 */
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "scratch.h"
#include "config.h"
#include "log.h"

static char tmpdir[512];
static char logtext[16384];

static void make_tmpdir(void) {
  CHECK(scratch_make("config", tmpdir, sizeof tmpdir) == 0);
  /* The ini's folder is made absolute, so compare against a real path. */
  char *real = realpath(tmpdir, NULL);
  if (real) {
    snprintf(tmpdir, sizeof tmpdir, "%s", real);
    free(real);
  }
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  CHECK(f != NULL);
  if (!f)
    return;
  fputs(text, f);
  fclose(f);
}

/* config_load with stderr captured into logtext. */
static int load(const char *path, struct config **cfg) {
  char logpath[600];
  snprintf(logpath, sizeof logpath, "%s/log.txt", tmpdir);
  int fd = open(logpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
  int saved = dup(2);
  dup2(fd, 2);
  int rc = config_load(path, cfg);
  dup2(saved, 2);
  close(saved);
  ssize_t n = pread(fd, logtext, sizeof logtext - 1, 0);
  logtext[n > 0 ? n : 0] = 0;
  close(fd);
  unlink(logpath);
  return rc;
}

/* Writes text to DIR/name and loads it. */
static int load_text(const char *name, const char *text, struct config **cfg, char *path,
                     size_t pathlen) {
  snprintf(path, pathlen, "%s/%s", tmpdir, name);
  write_file(path, text);
  return load(path, cfg);
}

/* The log holds "path:line: ..." containing msg. */
static int logged(const char *path, int line, const char *msg) {
  char want[1024];
  snprintf(want, sizeof want, "%s:%d: ", path, line);
  for (const char *p = logtext; (p = strstr(p, want)); p++) {
    const char *eol = strchr(p, '\n');
    const char *m = strstr(p, msg);
    if (m && (!eol || m < eol))
      return 1;
  }
  fprintf(stderr, "  log lacks \"%s%s\"; log was:\n%s", want, msg, logtext);
  return 0;
}

/* Loads text expecting exactly one error, at line with msg. */
static void expect_error(const char *text, int line, const char *msg) {
  struct config *cfg = (struct config *)1;
  char path[600];
  CHECK_INT(load_text("bad.ini", text, &cfg, path, sizeof path), 1);
  CHECK(cfg == NULL);
  CHECK(logged(path, line, msg));
  if (cfg != (struct config *)1)
    config_free(cfg);
}

static void test_defaults(void) {
  struct config *cfg = NULL;
  char path[600], want[700];
  CHECK_INT(
      load_text("min.ini", "[blazebot]\nkeystore = ks.json\n", &cfg, path, sizeof path),
      0);
  CHECK(cfg != NULL);
  if (!cfg)
    return;
  CHECK_STR(cfg->path, path);
  CHECK_STR(cfg->dir, tmpdir);
  snprintf(want, sizeof want, "%s/ks.json", tmpdir);
  CHECK_STR(cfg->keystore, want);
  CHECK_STR(cfg->blaze_url, "wss://blaze.mixin.one/");
  CHECK_STR(cfg->api_url, "https://api.mixin.one");
  CHECK(cfg->ca_file == NULL);
  CHECK(cfg->plugin_dir == NULL);
  CHECK_INT(cfg->ack_transport, ACK_TRANSPORT_WEBSOCKET);
  CHECK_INT(cfg->ack_batch, 100);
  CHECK_INT(cfg->ack_interval_ms, 200);
  CHECK_INT(cfg->max_frame_bytes, 4 * 1024 * 1024);
  CHECK_INT(cfg->log_level, LOGL_INFO);
  CHECK_INT(cfg->ping_interval_ms, 12000);
  CHECK_INT(cfg->idle_timeout_ms, 30000);
  CHECK_INT(cfg->request_timeout_ms, 10000);
  CHECK_INT(cfg->connect_timeout_ms, 10000);
  CHECK_INT(cfg->reconnect_min_ms, 1000);
  CHECK_INT(cfg->reconnect_max_ms, 60000);
  CHECK_INT(cfg->outbox_capacity, 10000);
  CHECK_INT(cfg->send_rate_per_min, 90000);
  CHECK_INT(cfg->dedupe_capacity, 100000);
  CHECK_INT(cfg->workers, 2);
  CHECK_INT(cfg->shutdown_timeout_ms, 10000);
  CHECK_INT(cfg->nplugins, 0);
  CHECK(config_find_plugin(cfg, "x") == NULL);
  CHECK_STR(logtext, "");
  config_free(cfg);
}

static void test_all_keys(void) {
  struct config *cfg = NULL;
  char path[600], want[700];
  const char *text = "\xEF\xBB\xBF; a byte order mark, then a comment\n"
                     "# another\n"
                     "\n"
                     "[blazebot]\n"
                     "keystore = /etc/blazebot/ks.json\n"
                     "blaze_url = ws://127.0.0.1:7443/\n"
                     "api_url = http://127.0.0.1:7444///\n"
                     "  ca_file = tls/ca.pem\n" /* indented: a key, not a continuation */
                     "plugin_dir = plugins\n"
                     "ack_transport = rest\n"
                     "ack_batch = 50\n"
                     "ack_interval_ms = 500 ; inline comment\n"
                     "max_frame_bytes = 8M\n"
                     "log_level = debug\n"
                     "ping_interval_ms = 5000\n"
                     "idle_timeout_ms = 15000\n"
                     "request_timeout_ms = 3000\n"
                     "connect_timeout_ms = 4000\n"
                     "reconnect_min_ms = 200\n"
                     "reconnect_max_ms = 30000\n"
                     "outbox_capacity = 500\n"
                     "send_rate_per_min = 1000\n"
                     "dedupe_capacity = 2000\n"
                     "workers = 8\n"
                     "shutdown_timeout_ms = 2500\n";
  CHECK_INT(load_text("all.ini", text, &cfg, path, sizeof path), 0);
  CHECK(cfg != NULL);
  if (!cfg) {
    fprintf(stderr, "%s", logtext);
    return;
  }
  CHECK_STR(cfg->keystore, "/etc/blazebot/ks.json");
  CHECK_STR(cfg->blaze_url, "ws://127.0.0.1:7443/");
  CHECK_STR(cfg->api_url, "http://127.0.0.1:7444");
  snprintf(want, sizeof want, "%s/tls/ca.pem", tmpdir);
  CHECK_STR(cfg->ca_file, want);
  snprintf(want, sizeof want, "%s/plugins", tmpdir);
  CHECK_STR(cfg->plugin_dir, want);
  CHECK_INT(cfg->ack_transport, ACK_TRANSPORT_REST);
  CHECK_INT(cfg->ack_batch, 50);
  CHECK_INT(cfg->ack_interval_ms, 500);
  CHECK_INT(cfg->max_frame_bytes, 8 * 1024 * 1024);
  CHECK_INT(cfg->log_level, LOGL_DEBUG);
  CHECK_INT(cfg->ping_interval_ms, 5000);
  CHECK_INT(cfg->idle_timeout_ms, 15000);
  CHECK_INT(cfg->request_timeout_ms, 3000);
  CHECK_INT(cfg->connect_timeout_ms, 4000);
  CHECK_INT(cfg->reconnect_min_ms, 200);
  CHECK_INT(cfg->reconnect_max_ms, 30000);
  CHECK_INT(cfg->outbox_capacity, 500);
  CHECK_INT(cfg->send_rate_per_min, 1000);
  CHECK_INT(cfg->dedupe_capacity, 2000);
  CHECK_INT(cfg->workers, 8);
  CHECK_INT(cfg->shutdown_timeout_ms, 2500);
  config_free(cfg);

  /* Size suffixes and bounds. */
  const char *sizes[][2] = {
      {"1K", "1024"}, {"1k", "1024"}, {"1G", "1073741824"}, {"65536", "65536"}};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    char t[200];
    snprintf(t, sizeof t, "[blazebot]\nkeystore=k\nmax_frame_bytes=%s\n", sizes[i][0]);
    cfg = NULL;
    CHECK_INT(load_text("size.ini", t, &cfg, path, sizeof path), 0);
    CHECK(cfg && cfg->max_frame_bytes == (size_t)atoll(sizes[i][1]));
    config_free(cfg);
  }
}

static void test_relative_ini(void) {
  /* An ini given by a relative path still resolves to absolute paths. */
  char sub[600], cwd[600];
  snprintf(sub, sizeof sub, "%s/etc", tmpdir);
  CHECK(mkdir(sub, 0700) == 0);
  char ini[700];
  snprintf(ini, sizeof ini, "%s/bot.ini", sub);
  write_file(ini, "[blazebot]\nkeystore = ../keys/ks.json\nca_file = /abs/ca.pem\n");
  CHECK(getcwd(cwd, sizeof cwd) != NULL);
  CHECK(chdir(tmpdir) == 0);
  struct config *cfg = NULL;
  CHECK_INT(load("etc/bot.ini", &cfg), 0);
  CHECK(chdir(cwd) == 0);
  if (cfg) {
    char want[800];
    CHECK_STR(cfg->path, "etc/bot.ini");
    CHECK_STR(cfg->dir, sub);
    snprintf(want, sizeof want, "%s/../keys/ks.json", sub);
    CHECK_STR(cfg->keystore, want);
    CHECK_STR(cfg->ca_file, "/abs/ca.pem");
  }
  config_free(cfg);
  unlink(ini);
  rmdir(sub);
}

static void test_plugins(void) {
  struct config *cfg = NULL;
  char path[600];
  const char *text = "[plugin.echo]\n"             /* 1 */
                     "reply_prefix = you said: \n" /* 2 */
                     "\n"                          /* 3 */
                     "[blazebot]\n"                /* 4 */
                     "keystore = ks.json\n"        /* 5 */
                     "[plugin.stats-2_x]\n"        /* 6 */
                     "; comment\n"                 /* 7 */
                     "url = http://x/?a=b&c=d\n"   /* 8 */
                     "Mixed.Key = Some Value\n"    /* 9 */
                     "empty =\n"                   /* 10 */
                     "[plugin.bare]\n";            /* 11 */
  CHECK_INT(load_text("plugins.ini", text, &cfg, path, sizeof path), 0);
  CHECK(cfg != NULL);
  if (!cfg) {
    fprintf(stderr, "%s", logtext);
    return;
  }
  CHECK_INT(cfg->nplugins, 3);
  const struct config_plugin *p = config_find_plugin(cfg, "echo");
  CHECK(p && p->line == 1 && p->nkv == 1);
  if (p && p->nkv == 1) {
    CHECK_STR(p->kv[0].key, "reply_prefix");
    CHECK_STR(p->kv[0].value, "you said:");
    CHECK_INT(p->kv[0].line, 2);
  }
  p = config_find_plugin(cfg, "stats-2_x");
  CHECK(p && p->line == 6 && p->nkv == 3);
  if (p && p->nkv == 3) {
    CHECK_STR(p->kv[0].key, "url");
    CHECK_STR(p->kv[0].value, "http://x/?a=b&c=d");
    CHECK_INT(p->kv[0].line, 8);
    CHECK_STR(p->kv[1].key, "Mixed.Key");
    CHECK_STR(p->kv[1].value, "Some Value");
    CHECK_INT(p->kv[1].line, 9);
    CHECK_STR(p->kv[2].key, "empty");
    CHECK_STR(p->kv[2].value, "");
    CHECK_INT(p->kv[2].line, 10);
  }
  p = config_find_plugin(cfg, "bare");
  CHECK(p && p->line == 11 && p->nkv == 0);
  CHECK_STR(cfg->plugins[0].name, "echo");
  CHECK_STR(cfg->plugins[2].name, "bare");
  CHECK(config_find_plugin(cfg, "nope") == NULL);
  config_free(cfg);
}

static void test_errors(void) {
  expect_error("[blazebot]\nkeystore = k\nbogus = 1\n", 3, "unknown key 'bogus'");
  expect_error("[blazebot]\nkeystore = k\nworkers = two\n", 3, "workers: expected");
  expect_error("[blazebot]\nkeystore = k\nworkers = 4x\n", 3, "workers: expected");
  expect_error("[blazebot]\nkeystore = k\nworkers = -1\n", 3, "workers: expected");
  expect_error("[blazebot]\nkeystore = k\nworkers =\n", 3, "workers: expected");
  expect_error("[blazebot]\nkeystore = k\nworkers = 65\n", 3, "out of range (1..64)");
  expect_error("[blazebot]\nkeystore = k\nack_batch = 0\n", 3, "out of range (1..100)");
  expect_error("[blazebot]\nkeystore = k\nmax_frame_bytes = 512\n", 3, "out of range");
  expect_error("[blazebot]\nkeystore = k\nmax_frame_bytes = 2G\n", 3, "out of range");
  expect_error("[blazebot]\nkeystore = k\nmax_frame_bytes = 4X\n", 3, "byte count");
  expect_error("[blazebot]\nkeystore = k\nmax_frame_bytes = 99999999999999999999\n", 3,
               "byte count");
  expect_error("[blazebot]\nkeystore = k\nlog_level = loud\n", 3, "log_level: expected");
  expect_error("[blazebot]\nkeystore = k\nack_transport = smoke\n", 3,
               "websocket or rest");
  expect_error("[blazebot]\nkeystore = k\nblaze_url = https://x/\n", 3, "blaze_url");
  expect_error("[blazebot]\nkeystore = k\nblaze_url = wss://\n", 3, "blaze_url");
  expect_error("[blazebot]\nkeystore = k\napi_url = wss://x\n", 3, "api_url");
  /* Plain ws:// and http:// only to this machine, unless allowed. */
  expect_error("[blazebot]\nkeystore = k\nblaze_url = ws://10.1.2.3:7600/\n", 3,
               "blaze_url: unencrypted ws:// to a host other than this machine");
  expect_error("[blazebot]\nkeystore = k\n\napi_url = http://bots.example\n", 4,
               "allow_insecure_transport = true");
  expect_error("[blazebot]\nkeystore = k\nblaze_url = ws://h/\n"
               "allow_insecure_transport = maybe\n",
               4, "allow_insecure_transport: expected true or false");
  expect_error("[blazebot]\nkeystore = k\napi_url = http://127.0.0.1/?a=1\n", 3,
               "query is not allowed");
  expect_error("[blazebot]\nkeystore = k\nblaze_url = wss://h:0/\n", 3,
               "blaze_url: port 0 is out of range");
  {
    struct config *cfg = NULL;
    char path[600];
    CHECK_INT(
        load_text("insecure.ini",
                  "[blazebot]\nkeystore = k\nblaze_url = ws://10.1.2.3:7600/\n"
                  "api_url = http://10.1.2.3:7601\nallow_insecure_transport = true\n",
                  &cfg, path, sizeof path),
        0);
    CHECK(cfg && cfg->allow_insecure_transport == 1);
    config_free(cfg);
  }
  expect_error("[blazebot]\nkeystore = k\nca_file =\n", 3, "ca_file: empty value");
  expect_error("[blazebot]\nkeystore = a\n\nkeystore = b\n", 4,
               "duplicate key 'keystore' (first set at line 2)");
  expect_error("[blazebot]\nkeystore = k\n[blazebot]\n", 3,
               "duplicate section [blazebot]");
  expect_error("[blazebot]\nkeystore = k\n[daemon]\nx = 1\n", 3,
               "unknown section [daemon]");
  expect_error("[blazebot]\nkeystore = k\n[plugin.a b]\nx = 1\n", 3, "bad plugin name");
  expect_error("[blazebot]\nkeystore = k\n[plugin.]\n", 3, "bad plugin name");
  expect_error("[blazebot]\nkeystore = k\n[plugin.e]\n[plugin.e]\n", 4,
               "duplicate section [plugin.e] (first at line 3)");
  expect_error("[blazebot]\nkeystore = k\n[plugin.e]\na = 1\na = 2\n", 5,
               "duplicate key 'a' in [plugin.e] (first set at line 4)");
  expect_error("\n[blazebot]\nworkers = 2\n", 2, "missing required key 'keystore'");
  expect_error("[plugin.x]\na = b\n", 1, "missing [blazebot] section");
  expect_error("keystore = k\n[blazebot]\nkeystore = k\n", 1, "outside of any section");
  expect_error("[blazebot]\nkeystore = k\nthis is not ini\n", 3,
               "expected 'key = value'");
  expect_error("[blazebot]\nkeystore = k\n[plugin.x\n", 3, "without closing ']'");
  expect_error("[blazebot]\nkeystore = k\n[blazebot] junk\n", 3, "unexpected text");
  expect_error("[blazebot]\nkeystore = k\n= 5\n", 3, "missing key name");
  expect_error("[blazebot]\nkeystore = k\nping_interval_ms = 40000\n", 3,
               "idle_timeout_ms (30000) must be greater than ping_interval_ms (40000)");
  expect_error("[blazebot]\nkeystore = k\nidle_timeout_ms = 12000\n", 3,
               "must be greater");
  expect_error("[blazebot]\nkeystore = k\nreconnect_min_ms = 90000\n", 3,
               "reconnect_min_ms (90000) must not exceed reconnect_max_ms (60000)");

  char longline[400];
  snprintf(longline, sizeof longline,
           "[blazebot]\nkeystore = k\n[plugin.p]\nk = %0300d\n", 7);
  expect_error(longline, 4, "line too long");

  /* Keys of a refused section are not reported again. */
  expect_error("[blazebot]\nkeystore = k\n[nope]\na = 1\nb = 2\n", 3, "unknown section");

  /* A missing file is one error. */
  struct config *cfg = (struct config *)1;
  char path[600];
  snprintf(path, sizeof path, "%s/absent.ini", tmpdir);
  CHECK_INT(load(path, &cfg), 1);
  CHECK(cfg == NULL);
  char want[800];
  snprintf(want, sizeof want, "%s: cannot open: No such file or directory", path);
  CHECK(strstr(logtext, want) != NULL);
  cfg = (struct config *)1;
  CHECK_INT(load(tmpdir, &cfg), 1);
  CHECK(strstr(logtext, "cannot open: Is a directory") != NULL);
}

static void test_many_errors(void) {
  const char *text = "[blazebot]\n"    /* 1 */
                     "workers = 0\n"   /* 2 out of range */
                     "ack_batch = x\n" /* 3 bad number */
                     "workers = 3\n"   /* 4 duplicate */
                     "nonsense = 1\n"  /* 5 unknown key */
                     "garbage line\n"  /* 6 syntax */
                     "[other]\n"       /* 7 unknown section */
                     "a = 1\n"         /* (skipped) */
                     "[plugin.bad!]\n" /* 9 bad name */
                     "[plugin.ok]\n"   /* 10 */
                     "k = v\n"         /* 11 */
                     "k = w\n"         /* 12 duplicate */
                     "[plugin.ok]\n";  /* 13 duplicate section */
                                       /* + missing keystore at line 1 */
  struct config *cfg = (struct config *)1;
  char path[600];
  CHECK_INT(load_text("many.ini", text, &cfg, path, sizeof path), 10);
  CHECK(cfg == NULL);
  CHECK(logged(path, 2, "out of range"));
  CHECK(logged(path, 3, "ack_batch: expected"));
  CHECK(logged(path, 4, "duplicate key 'workers'"));
  CHECK(logged(path, 5, "unknown key 'nonsense'"));
  CHECK(logged(path, 6, "expected 'key = value'"));
  CHECK(logged(path, 7, "unknown section [other]"));
  CHECK(logged(path, 9, "bad plugin name"));
  CHECK(logged(path, 12, "duplicate key 'k'"));
  CHECK(logged(path, 13, "duplicate section [plugin.ok]"));
  CHECK(logged(path, 1, "missing required key 'keystore'"));
  /* One line per error. */
  int lines = 0;
  for (const char *p = logtext; *p; p++)
    lines += *p == '\n';
  CHECK_INT(lines, 10);

  /* CRLF line endings and tabs are fine. */
  cfg = NULL;
  CHECK_INT(load_text("crlf.ini", "[blazebot]\r\n\tkeystore\t=\tk\r\nworkers = 3\r\n",
                      &cfg, path, sizeof path),
            0);
  CHECK(cfg && cfg->workers == 3);
  config_free(cfg);
}

/* ---- config_print ---- */

/* Prints cfg into DIR/name (path out), returns config_print's result; the
 * text is in *text (free it). */
static int print_to(const struct config *cfg, const char *name, char *path, size_t cap,
                    char **text) {
  snprintf(path, cap, "%s/%s", tmpdir, name);
  FILE *f = fopen(path, "w+");
  CHECK(f != NULL);
  *text = NULL;
  if (!f)
    return -2;
  int rc = config_print(cfg, f);
  long n = ftell(f);
  *text = calloc(1, n > 0 ? (size_t)n + 1 : 1);
  rewind(f);
  if (*text && n > 0 && fread(*text, 1, (size_t)n, f) != (size_t)n)
    (*text)[0] = 0;
  fclose(f);
  return rc;
}

/* text has line as one whole line. */
static int has_line(const char *text, const char *line) {
  size_t n = strlen(line);
  for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
    if (strncmp(p, line, n) == 0 && (p[n] == '\n' || !p[n]))
      return 1;
  }
  fprintf(stderr, "  output lacks the line \"%s\"; it was:\n%s", line, text);
  return 0;
}

/* The [blazebot] keys in the table's order (a subsequence check: a key
 * added later does not break it). */
static const char *const print_order[] = {"keystore",
                                          "blaze_url",
                                          "api_url",
                                          "ca_file",
                                          "plugin_dir",
                                          "ack_transport",
                                          "ack_batch",
                                          "ack_interval_ms",
                                          "max_frame_bytes",
                                          "log_level",
                                          "ping_interval_ms",
                                          "idle_timeout_ms",
                                          "request_timeout_ms",
                                          "connect_timeout_ms",
                                          "reconnect_min_ms",
                                          "reconnect_max_ms",
                                          "outbox_capacity",
                                          "send_rate_per_min",
                                          "dedupe_capacity",
                                          "workers",
                                          "shutdown_timeout_ms",
                                          "reload_timeout_ms",
                                          "status_file",
                                          "dead_letter_file",
                                          "state_dir",
                                          "allow_insecure_transport"};

static void test_print_defaults(void) {
  struct config *cfg = NULL;
  char path[600], out[600], want[1400];
  CHECK_INT(
      load_text("pmin.ini", "[blazebot]\nkeystore = ks.json\n", &cfg, path, sizeof path),
      0);
  if (!cfg)
    return;
  char *text;
  CHECK_INT(print_to(cfg, "pmin.out", out, sizeof out, &text), 0);
  if (!text) {
    config_free(cfg);
    return;
  }
  snprintf(want, sizeof want, "; effective configuration of %s", path);
  CHECK(strncmp(text, want, strlen(want)) == 0 && text[strlen(want)] == '\n');
  CHECK(strstr(text, "Paths are resolved (absolute)") != NULL);
  CHECK(has_line(text, "[blazebot]"));
  /* The one key set has no marker; every other one says default. */
  snprintf(want, sizeof want, "keystore = %s/ks.json", tmpdir);
  CHECK(has_line(text, want));
  CHECK(has_line(text, "blaze_url = wss://blaze.mixin.one/ ; default"));
  CHECK(has_line(text, "api_url = https://api.mixin.one ; default"));
  CHECK(has_line(text, "; ca_file = (not set) ; default: the system's CA store"));
  CHECK(has_line(text, "ack_transport = websocket ; default"));
  CHECK(has_line(text, "ack_batch = 100 ; default"));
  CHECK(has_line(text, "max_frame_bytes = 4M ; default"));
  CHECK(has_line(text, "log_level = info ; default"));
  CHECK(has_line(text, "workers = 2 ; default"));
  CHECK(has_line(text, "allow_insecure_transport = false ; default"));
  /* Every key, in the table's order, each on a line of its own. */
  const char *at = text;
  for (size_t i = 0; i < sizeof print_order / sizeof print_order[0]; i++) {
    char a[100], b[100];
    snprintf(a, sizeof a, "\n%s = ", print_order[i]);
    snprintf(b, sizeof b, "\n; %s = (not set)", print_order[i]);
    const char *p = strstr(at, a), *q = strstr(at, b);
    const char *found = p && (!q || p < q) ? p : q;
    if (!found)
      fprintf(stderr, "  key %s missing or out of order\n", print_order[i]);
    CHECK(found != NULL);
    if (found)
      at = found + 1;
  }
  /* Every [blazebot] line but keystore's ends with the default marker. */
  int keylines = 0, marked = 0;
  const char *sec = strstr(text, "[blazebot]\n");
  for (const char *p = sec ? strchr(sec, '\n') + 1 : ""; *p && *p != '\n';) {
    const char *eol = strchr(p, '\n');
    size_t n = eol ? (size_t)(eol - p) : strlen(p);
    keylines++;
    marked += (n > 10 && memmem(p, n, " ; default", 10) != NULL);
    p += n + (eol != NULL);
  }
  CHECK(keylines >= (int)(sizeof print_order / sizeof print_order[0]));
  CHECK_INT(marked, keylines - 1);
  /* No plugin section: nothing after [blazebot]. */
  CHECK(strstr(text, "[plugin.") == NULL);
  free(text);
  config_free(cfg);
}

static void test_print_explicit(void) {
  struct config *cfg = NULL;
  char path[600], out[600], want[1400];
  const char *text_in = "[blazebot]\n"
                        "keystore = /etc/blazebot/ks.json\n"
                        "ca_file = tls/ca.pem\n"
                        "ack_transport = rest\n"
                        "max_frame_bytes = 1536\n"
                        "log_level = warning\n"
                        "workers = 2\n" /* the default value, but set */
                        "allow_insecure_transport = yes\n"
                        "state_dir = ./state\n";
  CHECK_INT(load_text("pexp.ini", text_in, &cfg, path, sizeof path), 0);
  if (!cfg)
    return;
  char *text;
  CHECK_INT(print_to(cfg, "pexp.out", out, sizeof out, &text), 0);
  if (text) {
    CHECK(has_line(text, "keystore = /etc/blazebot/ks.json"));
    snprintf(want, sizeof want, "ca_file = %s/tls/ca.pem", tmpdir);
    CHECK(has_line(text, want));
    snprintf(want, sizeof want, "state_dir = %s/./state", tmpdir);
    CHECK(has_line(text, want));
    CHECK(has_line(text, "ack_transport = rest"));
    CHECK(has_line(text, "max_frame_bytes = 1536"));
    CHECK(has_line(text, "log_level = warn"));
    CHECK(has_line(text, "workers = 2"));
    CHECK(has_line(text, "allow_insecure_transport = true"));
    CHECK(has_line(text, "ack_batch = 100 ; default"));
    CHECK(has_line(
        text, "; plugin_dir = (not set) ; default: none, so no plugin can be loaded"));
  }
  free(text);
  config_free(cfg);
}

static void test_secret_keys(void) {
  const char *secret[] = {"api_token", "TOKEN",         "client_secret", "db_password",
                          "passwd",    "Passphrase",    "private_key",   "credentials",
                          "api_key",   "apiKey",        "API-KEY",       "keys",
                          "pin",       "user_pin",      "pin2",          "signing.key",
                          "smtp_pwd",  "access_key_id", "key_file"};
  const char *plain[] = {"keystore",     "keyword", "ping_interval", "mapping",
                         "path",         "enabled", "categories",    "priority",
                         "max_attempts", "url",     "reply_prefix",  "monkeyshines"};
  for (size_t i = 0; i < sizeof secret / sizeof secret[0]; i++) {
    if (!config_secret_key(secret[i]))
      fprintf(stderr, "  %s should be masked\n", secret[i]);
    CHECK(config_secret_key(secret[i]));
  }
  for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
    if (config_secret_key(plain[i]))
      fprintf(stderr, "  %s should not be masked\n", plain[i]);
    CHECK(!config_secret_key(plain[i]));
  }
}

static void test_print_plugins(void) {
  struct config *cfg = NULL;
  char path[600], out[600];
  const char *text_in = "[blazebot]\n"
                        "keystore = ks.json\n"
                        "plugin_dir = plugins\n"
                        "[plugin.echo]\n"
                        "reply_prefix = you said:\n"
                        "api_token = tok-SECRET-1\n"
                        "Client_Secret = sec-SECRET-2\n"
                        "apiKey = key-SECRET-3\n"
                        "user_pin = 4711\n"
                        "empty_token =\n"
                        "keystore = /var/lib/echo/ks.json\n"
                        "ping_interval = 5\n"
                        "[plugin.archive]\n"
                        "path = archive2.so\n"
                        "enabled = no\n"
                        "categories = PLAIN_TEXT, PLAIN_*\n"
                        "priority = -3\n"
                        "max_attempts = 0\n";
  CHECK_INT(load_text("pplug.ini", text_in, &cfg, path, sizeof path), 0);
  if (!cfg)
    return;
  char *text;
  CHECK_INT(print_to(cfg, "pplug.out", out, sizeof out, &text), 0);
  if (text) {
    CHECK(has_line(text, "[plugin.echo]"));
    CHECK(has_line(text, "reply_prefix = you said:"));
    CHECK(has_line(text, "api_token = ******** ; masked"));
    CHECK(has_line(text, "Client_Secret = ******** ; masked"));
    CHECK(has_line(text, "apiKey = ******** ; masked"));
    CHECK(has_line(text, "user_pin = ******** ; masked"));
    CHECK(has_line(text, "empty_token ="));
    CHECK(has_line(text, "keystore = /var/lib/echo/ks.json"));
    CHECK(has_line(text, "ping_interval = 5"));
    CHECK(strstr(text, "SECRET") == NULL);
    CHECK(strstr(text, "4711") == NULL);
    /* The host's keys the section leaves to their defaults. */
    CHECK(has_line(text, "path = echo.so ; default"));
    CHECK(has_line(text, "enabled = true ; default"));
    CHECK(has_line(text,
                   "; categories = (not set) ; default: the plugin's own subscriptions"));
    CHECK(has_line(text, "; priority = (not set) ; default: the plugin's own"));
    CHECK(strstr(text, "\n; max_attempts = (not set) ; default: 5") != NULL);
    /* A section that sets them all: as written, nothing added. */
    const char *arch = strstr(text, "[plugin.archive]\n");
    CHECK(arch != NULL);
    if (arch) {
      CHECK(arch > strstr(text, "[plugin.echo]"));
      CHECK(!strcmp(arch, "[plugin.archive]\n"
                          "path = archive2.so\n"
                          "enabled = no\n"
                          "categories = PLAIN_TEXT, PLAIN_*\n"
                          "priority = -3\n"
                          "max_attempts = 0\n"));
    }
  }
  free(text);
  config_free(cfg);
}

static void expect_same_plugins(const struct config *a, const struct config *b) {
  CHECK_INT(a->nplugins, b->nplugins);
  for (size_t i = 0; i < a->nplugins && i < b->nplugins; i++) {
    const struct config_plugin *pa = &a->plugins[i], *pb = &b->plugins[i];
    CHECK_STR(pa->name, pb->name);
    /* Every key of a is in b with the same value (masked ones aside); b has
     * only the host's defaults besides. */
    for (size_t j = 0; j < pa->nkv; j++) {
      const struct config_kv *ka = &pa->kv[j], *kb = NULL;
      for (size_t k = 0; k < pb->nkv; k++)
        if (!strcmp(pb->kv[k].key, ka->key))
          kb = &pb->kv[k];
      CHECK(kb != NULL);
      if (!kb)
        continue;
      if (*ka->value && config_secret_key(ka->key))
        CHECK_STR(kb->value, "********");
      else
        CHECK_STR(kb->value, ka->value);
    }
    for (size_t k = 0; k < pb->nkv; k++) {
      int known = 0;
      for (size_t j = 0; j < pa->nkv; j++)
        known |= !strcmp(pa->kv[j].key, pb->kv[k].key);
      if (known)
        continue;
      char so[300];
      snprintf(so, sizeof so, "%s.so", pa->name);
      CHECK((!strcmp(pb->kv[k].key, "path") && !strcmp(pb->kv[k].value, so)) ||
            (!strcmp(pb->kv[k].key, "enabled") && !strcmp(pb->kv[k].value, "true")));
    }
  }
}

static int same_str(const char *a, const char *b) {
  return (!a && !b) || (a && b && !strcmp(a, b));
}

static void expect_same(const struct config *a, const struct config *b) {
  CHECK(same_str(a->keystore, b->keystore));
  CHECK(same_str(a->blaze_url, b->blaze_url));
  CHECK(same_str(a->api_url, b->api_url));
  CHECK(same_str(a->ca_file, b->ca_file));
  CHECK(same_str(a->plugin_dir, b->plugin_dir));
  CHECK(same_str(a->status_file, b->status_file));
  CHECK(same_str(a->dead_letter_file, b->dead_letter_file));
  CHECK(same_str(a->state_dir, b->state_dir));
  CHECK_INT(a->ack_transport, b->ack_transport);
  CHECK_INT(a->ack_batch, b->ack_batch);
  CHECK_INT(a->ack_interval_ms, b->ack_interval_ms);
  CHECK_INT(a->max_frame_bytes, b->max_frame_bytes);
  CHECK_INT(a->log_level, b->log_level);
  CHECK_INT(a->ping_interval_ms, b->ping_interval_ms);
  CHECK_INT(a->idle_timeout_ms, b->idle_timeout_ms);
  CHECK_INT(a->request_timeout_ms, b->request_timeout_ms);
  CHECK_INT(a->connect_timeout_ms, b->connect_timeout_ms);
  CHECK_INT(a->reconnect_min_ms, b->reconnect_min_ms);
  CHECK_INT(a->reconnect_max_ms, b->reconnect_max_ms);
  CHECK_INT(a->outbox_capacity, b->outbox_capacity);
  CHECK_INT(a->send_rate_per_min, b->send_rate_per_min);
  CHECK_INT(a->dedupe_capacity, b->dedupe_capacity);
  CHECK_INT(a->workers, b->workers);
  CHECK_INT(a->shutdown_timeout_ms, b->shutdown_timeout_ms);
  CHECK_INT(a->reload_timeout_ms, b->reload_timeout_ms);
  CHECK_INT(a->allow_insecure_transport, b->allow_insecure_transport);
  expect_same_plugins(a, b);
}

static void test_print_round_trip(void) {
  struct config *cfg = NULL, *back = NULL, *again = NULL;
  char path[600], out[600], out2[600], sub[600];
  const char *text_in = "[blazebot]\n"
                        "keystore = keys/ks.json\n"
                        "blaze_url = ws://127.0.0.1:7443/x;y\n"
                        "api_url = http://127.0.0.1:7444/a;b\n"
                        "plugin_dir = plug ins\n"
                        "status_file = run/status;1.json\n"
                        "dead_letter_file = #dead.jsonl\n"
                        "ack_transport = rest\n"
                        "max_frame_bytes = 3k\n"
                        "log_level = debug ; inline comment\n"
                        "reconnect_min_ms = 50\n"
                        "[plugin.tricky]\n"
                        "spaces = a   b\tc\n"
                        "quoted = \"a b\" 'c d'\n"
                        "dq = \"  padded  \"\n"
                        "semi = a;b;\n"
                        "lead_semi =;starts with a semicolon\n"
                        "lead_semi2 =;\n"
                        "hash = #not a comment\n"
                        "hash2 = a # b\n"
                        "eq = a=b=c\n"
                        "colon: x:y\n"
                        "url = http://x/?a=b&c=d\n"
                        "backslash = C:\\dir\\n \\\"\n"
                        "empty =\n"
                        "utf8 = h\xC3\xA9llo\n"
                        "after = value ; a comment, not the value\n"
                        "db_password = \"p ;w\"\n"
                        "[plugin.plain]\n"
                        "enabled = false\n";
  CHECK_INT(load_text("prt.ini", text_in, &cfg, path, sizeof path), 0);
  if (!cfg) {
    fprintf(stderr, "%s", logtext);
    return;
  }
  char *text = NULL, *text2 = NULL, *text3 = NULL;
  /* Printed into another folder: the paths must not resolve against it. */
  snprintf(sub, sizeof sub, "%s/elsewhere", tmpdir);
  CHECK(mkdir(sub, 0700) == 0);
  CHECK_INT(print_to(cfg, "elsewhere/prt.out", out, sizeof out, &text), 0);
  CHECK_INT(load(out, &back), 0);
  if (!back)
    fprintf(stderr, "%s\n---\n%s", logtext, text ? text : "");
  if (text) {
    CHECK(has_line(text, "lead_semi =;starts with a semicolon"));
    CHECK(has_line(text, "empty ="));
    CHECK(has_line(text, "colon = x:y"));
  }
  if (back) {
    expect_same(cfg, back);
    const struct config_plugin *p = config_find_plugin(back, "tricky");
    CHECK(p != NULL);
    if (p) {
      const struct config_plugin *o = config_find_plugin(cfg, "tricky");
      CHECK(o && o->nkv == 16);
      /* The values themselves, as the parser read them the first time. */
      for (size_t i = 0; o && i < o->nkv; i++) {
        static const char *const want[][2] = {{"spaces", "a   b\tc"},
                                              {"quoted", "\"a b\" 'c d'"},
                                              {"dq", "\"  padded  \""},
                                              {"semi", "a;b;"},
                                              {"lead_semi", ";starts with a semicolon"},
                                              {"lead_semi2", ";"},
                                              {"hash", "#not a comment"},
                                              {"hash2", "a # b"},
                                              {"eq", "a=b=c"},
                                              {"colon", "x:y"},
                                              {"url", "http://x/?a=b&c=d"},
                                              {"backslash", "C:\\dir\\n \\\""},
                                              {"empty", ""},
                                              {"utf8", "h\xC3\xA9llo"},
                                              {"after", "value"},
                                              {"db_password", "\"p"}};
        CHECK_STR(o->kv[i].key, want[i][0]);
        CHECK_STR(o->kv[i].value, want[i][1]);
      }
    }
    /* Printing what was read back, and reading that again, changes nothing
     * more: the text is the same but for the header's file name. */
    CHECK_INT(print_to(back, "elsewhere/prt2.out", out2, sizeof out2, &text2), 0);
    CHECK_INT(load(out2, &again), 0);
    if (again) {
      expect_same(back, again);
      char out3[600];
      CHECK_INT(print_to(again, "elsewhere/prt3.out", out3, sizeof out3, &text3), 0);
      const char *a = text2 ? strchr(text2, '\n') : NULL;
      const char *b = text3 ? strchr(text3, '\n') : NULL;
      CHECK(a && b && !strcmp(a, b));
      /* Everything is set now: no default marker left in [blazebot]. */
      const char *bz = text2 ? strstr(text2, "[blazebot]") : NULL;
      const char *pl = text2 ? strstr(text2, "[plugin.") : NULL;
      const char *mark = bz ? strstr(bz, " ; default\n") : NULL;
      CHECK(bz && pl && (!mark || mark > pl));
    }
  }
  free(text);
  free(text2);
  free(text3);
  config_free(again);
  config_free(back);
  config_free(cfg);
}

/* Replaces a loaded value (the snapshot is the test's own). */
static void set_value(struct config *cfg, const char *plugin, const char *key,
                      const char *value) {
  struct config_plugin *p = (struct config_plugin *)config_find_plugin(cfg, plugin);
  for (size_t i = 0; p && i < p->nkv; i++) {
    if (!strcmp(p->kv[i].key, key)) {
      free(p->kv[i].value);
      p->kv[i].value = strdup(value);
      return;
    }
  }
  CHECK(!"set_value: no such key");
}

static void test_print_unwritable(void) {
  struct config *cfg = NULL, *back = NULL;
  char path[600], out[600];
  /* A relative keystore that fits the line, but not once resolved. */
  char name[200], text_in[1200];
  size_t room = 199 - strlen("keystore = ") - 2;
  memset(name, 'k', sizeof name);
  name[room] = 0;
  snprintf(text_in, sizeof text_in,
           "[blazebot]\nkeystore = %s\n[plugin.p]\na = 1\nb = 2\nc = 3\nd = 4\n"
           "api_token = 5\n",
           name);
  CHECK_INT(load_text("pbad.ini", text_in, &cfg, path, sizeof path), 0);
  if (!cfg) {
    fprintf(stderr, "%s", logtext);
    return;
  }
  char longv[300];
  memset(longv, 'v', sizeof longv);
  longv[sizeof longv - 1] = 0;
  set_value(cfg, "p", "a", "two\nlines");
  set_value(cfg, "p", "b", " padded");
  set_value(cfg, "p", "c", "x ;y");
  set_value(cfg, "p", "d", longv);
  set_value(cfg, "p", "api_token", "hunter2\n"); /* masked: written as ******** */
  char *text;
  CHECK_INT(print_to(cfg, "pbad.out", out, sizeof out, &text), 5);
  if (text) {
    CHECK(strstr(text, "\n; keystore = /") != NULL);
    CHECK(has_line(text, "; a = two\\x0alines ; not written: the value holds a line "
                         "break"));
    CHECK(has_line(text, "; b =  padded ; not written: the value starts or ends with "
                         "whitespace, which is stripped"));
    CHECK(has_line(text, "; c = x ;y ; not written: the value holds a ';' after "
                         "whitespace, which starts a comment"));
    CHECK(strstr(text, "; not written: the line would be longer than 199 characters") !=
          NULL);
    CHECK(has_line(text, "api_token = ******** ; masked"));
    CHECK(strstr(text, "hunter2") == NULL);
  }
  /* What is left still reads (and misses the keystore it could not write). */
  CHECK_INT(load(out, &back), 1);
  CHECK(strstr(logtext, "missing required key 'keystore'") != NULL);
  config_free(back);
  free(text);

  /* A stream that cannot be written to. */
  FILE *ro = fopen("/dev/null", "r");
  CHECK(ro != NULL);
  if (ro) {
    CHECK_INT(config_print(cfg, ro), -1);
    fclose(ro);
  }
  config_free(cfg);
}

/* Writes n bytes of data to DIR/name and loads it. */
static int load_bytes(const char *name, const void *data, size_t n, struct config **cfg,
                      char *path, size_t pathlen) {
  snprintf(path, pathlen, "%s/%s", tmpdir, name);
  FILE *f = fopen(path, "w");
  CHECK(f != NULL);
  if (f) {
    CHECK(fwrite(data, 1, n, f) == n);
    fclose(f);
  }
  return load(path, cfg);
}

/* The text head, then count lines "<pre><index><post>". */
static char *repeat(const char *head, const char *pre, int count, const char *post) {
  size_t cap = strlen(head) + (size_t)count * (strlen(pre) + strlen(post) + 16) + 1;
  char *s = malloc(cap), *p = s;
  CHECK(s != NULL);
  if (!s)
    return NULL;
  p += sprintf(p, "%s", head);
  for (int i = 0; i < count; i++)
    p += sprintf(p, "%s%d%s", pre, i, post);
  return s;
}

/* Hostile files: each gets a precise error (file:line) and no crash, in
 * bounded memory and time. */
static void test_hostile(void) {
  struct config *cfg = (struct config *)1;
  char path[600];

  /* 10,000 unknown sections: 10,000 errors, the first 20 shown. */
  char *text = repeat("[blazebot]\nkeystore = k\n", "[s", 10000, "]\n");
  CHECK_INT(load_text("sections.ini", text, &cfg, path, sizeof path), 10000);
  CHECK(cfg == NULL);
  CHECK(logged(path, 3, "unknown section [s0]"));
  CHECK(logged(path, 22, "unknown section [s19]"));
  CHECK(strstr(logtext, "[s20]") == NULL);
  CHECK(strstr(logtext, ": 9980 more errors not shown") != NULL);
  free(text);

  /* 10,000 plugin sections: 256 are taken, the rest refused. */
  cfg = (struct config *)1;
  text = repeat("[blazebot]\nkeystore = k\n", "[plugin.p", 10000, "]\n");
  CHECK_INT(load_text("plugins.ini", text, &cfg, path, sizeof path), 10000 - 256);
  CHECK(logged(path, 2 + 257, "too many [plugin.NAME] sections (at most 256)"));
  free(text);

  /* 10,000 keys in one plugin section: 1,000 are taken. */
  cfg = (struct config *)1;
  text = repeat("[blazebot]\nkeystore = k\n[plugin.p]\n", "k", 10000, " = v\n");
  CHECK_INT(load_text("keys.ini", text, &cfg, path, sizeof path), 9000);
  CHECK(logged(path, 3 + 1001, "too many keys in [plugin.p] (at most 1000)"));
  free(text);

  /* A 1 MiB line, then a good file: the line is one error, and the lines
   * after it are still read and numbered right. */
  size_t big = 1u << 20;
  char *line = malloc(big + 64);
  CHECK(line != NULL);
  if (line) {
    int n = sprintf(line, "[blazebot]\nkeystore = k\nx = ");
    memset(line + n, 'a', big);
    n += (int)big;
    n += sprintf(line + n, "\nbogus = 1\n");
    cfg = (struct config *)1;
    CHECK_INT(load_bytes("longline.ini", line, (size_t)n, &cfg, path, sizeof path), 2);
    CHECK(logged(path, 3, "line too long"));
    CHECK(logged(path, 4, "unknown key 'bogus'"));
    free(line);
  }

  /* NUL bytes in a value, in a comment and in a key (+ the keystore
   * missing since its line was refused). */
  static const char nul[] = "[blazebot]\nkeystore = k\x00z\n; note \x00\nwork\x00"
                            "ers = 2\n";
  cfg = (struct config *)1;
  CHECK_INT(load_bytes("nul.ini", nul, sizeof nul - 1, &cfg, path, sizeof path), 4);
  CHECK(logged(path, 2, "line contains a NUL byte"));
  CHECK(logged(path, 3, "line contains a NUL byte"));
  CHECK(logged(path, 4, "line contains a NUL byte"));

  /* Invalid UTF-8: a stray continuation byte, an overlong '/', a UTF-16
   * surrogate, a sequence cut short, a byte that never starts one; valid
   * multi-byte text is fine. */
  static const char *const bad_utf8[] = {
      "v = a\x80z\n", "v = \xC0\xAF\n",   "v = \xED\xA0\x80\n",    "v = \xE2\x82\n",
      "v = \xFF\n",   "[plugin.\xC3(]\n", "v = \xF4\x90\x80\x80\n"};
  for (size_t i = 0; i < sizeof bad_utf8 / sizeof bad_utf8[0]; i++) {
    char buf[200];
    snprintf(buf, sizeof buf, "[blazebot]\nkeystore = k\n[plugin.u]\n%s", bad_utf8[i]);
    expect_error(buf, 4, "line is not valid UTF-8");
  }
  cfg = NULL;
  CHECK_INT(load_text("utf8.ini",
                      "[blazebot]\nkeystore = k\n[plugin.u]\n"
                      "greeting = Grüß dich, 你好 \xF0\x9F\x91\x8B\n",
                      &cfg, path, sizeof path),
            0);
  CHECK(cfg != NULL);
  if (cfg) {
    const struct config_plugin *p = config_find_plugin(cfg, "u");
    CHECK(p && p->nkv == 1 &&
          strcmp(p->kv[0].value, "Grüß dich, 你好 \xF0\x9F\x91\x8B") == 0);
    config_free(cfg);
  }

  /* Something that is not a config file at all: the read stops at 4 MiB. */
  cfg = (struct config *)1;
  CHECK_INT(load("/dev/zero", &cfg), 1);
  CHECK(cfg == NULL);
  CHECK(strstr(logtext, "/dev/zero:1: file too large (over 4 MiB)") != NULL);
}

int main(void) {
  make_tmpdir();
  test_defaults();
  test_all_keys();
  test_relative_ini();
  test_plugins();
  test_errors();
  test_many_errors();
  test_hostile();
  test_print_defaults();
  test_print_explicit();
  test_secret_keys();
  test_print_plugins();
  test_print_round_trip();
  test_print_unwritable();
  scratch_remove(tmpdir);
  return check_done("config");
}
