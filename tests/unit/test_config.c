/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of config: defaults, every key, path resolution against the
 * ini's folder, [plugin.NAME] sections kept verbatim, and every kind of
 * mistake reported as "file:line: message" — all of them in one pass. The
 * log goes to stderr, so each load runs with fd 2 redirected to a file that
 * is read back.
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

int main(void) {
  make_tmpdir();
  test_defaults();
  test_all_keys();
  test_relative_ini();
  test_plugins();
  test_errors();
  test_many_errors();
  scratch_remove(tmpdir);
  return check_done("config");
}
