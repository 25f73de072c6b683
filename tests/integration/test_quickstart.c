/* SPDX-License-Identifier: MIT */
/*
 * The configuration an operator starts from: examples/blazebot.ini (every
 * key of [blazebot] at its README default), the keystore beside it as
 * keystore.json (chmod 600), and only where Blaze lives changed: the default
 * blaze_url wss://blaze.mixin.one/ with its host replaced by the
 * simulator's, exactly ws://127.0.0.1:PORT/ (the trailing slash as in the
 * default), and api_url http://127.0.0.1:PORT. `blazebot --check` accepts
 * it, and the daemon connects on the FIRST try: with a few messages waiting,
 * the simulator counts one connection, no refused handshake and no failed
 * authentication, and every message acknowledged once.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "harness.h"

#ifndef EXAMPLE_INI
#error "integration.cmake sets EXAMPLE_INI to examples/blazebot.ini"
#endif

#define PRELOAD 5

/* The defaults the README and the example give for where Blaze lives. */
#define DEFAULT_BLAZE "blaze_url = wss://blaze.mixin.one/"
#define DEFAULT_API "api_url = https://api.mixin.one"

/* 1 when line (up to its end) sets key: "key =" or "key=" at its start. */
static int sets(const char *line, const char *key) {
  size_t n = strlen(key);
  if (strncmp(line, key, n) != 0)
    return 0;
  line += n;
  while (*line == ' ' || *line == '\t')
    line++;
  return *line == '=';
}

/* The example ini with blaze_url and api_url pointed at port; every other
 * line as shipped. Returns 0, or -1 when the example does not set both
 * exactly once to the documented defaults (then nothing may run: the daemon
 * would dial the real Blaze). */
static int quickstart_ini(const char *example, int port, char *out, size_t cap) {
  char *text = h_read(example);
  if (!text) {
    fprintf(stderr, "cannot read %s\n", example);
    return -1;
  }
  int blaze = 0, api = 0, keystore = 0;
  size_t len = 0;
  out[0] = 0;
  for (char *line = text; *line;) {
    char *nl = strchr(line, '\n');
    if (nl)
      *nl = 0;
    char mine[128];
    const char *put = line;
    if (sets(line, "blaze_url")) {
      blaze++;
      if (strcmp(line, DEFAULT_BLAZE) != 0)
        fprintf(stderr, "%s: \"%s\", want \"%s\"\n", example, line, DEFAULT_BLAZE);
      CHECK_STR(line, DEFAULT_BLAZE);
      snprintf(mine, sizeof mine, "blaze_url = ws://127.0.0.1:%d/", port);
      put = mine;
    } else if (sets(line, "api_url")) {
      api++;
      if (strcmp(line, DEFAULT_API) != 0)
        fprintf(stderr, "%s: \"%s\", want \"%s\"\n", example, line, DEFAULT_API);
      CHECK_STR(line, DEFAULT_API);
      snprintf(mine, sizeof mine, "api_url = http://127.0.0.1:%d", port);
      put = mine;
    } else if (sets(line, "keystore")) {
      keystore++;
      CHECK_STR(line, "keystore = keystore.json");
    }
    len += (size_t)snprintf(out + len, len < cap ? cap - len : 0, "%s\n", put);
    if (!nl)
      break;
    line = nl + 1;
  }
  free(text);
  CHECK_INT(blaze, 1);
  CHECK_INT(api, 1);
  CHECK_INT(keystore, 1);
  CHECK(len < cap);
  return blaze == 1 && api == 1 && len < cap ? 0 : -1;
}

int main(void) {
  char dir[512], ks[600], ini[700], path[800], text[16384];
  snprintf(dir, sizeof dir, "%s", h_dir("quickstart"));
  char preload[16];
  snprintf(preload, sizeof preload, "%d", PRELOAD);
  const char *args[] = {"--preload", preload, NULL};
  struct sim sim;
  if (h_keygen(dir, "ed25519", ks, sizeof ks) < 0 || h_sim_start(&sim, dir, ks, args) < 0)
    return check_done("integration.quickstart");

  /* keystore.json beside the ini, as the example names it. */
  snprintf(path, sizeof path, "%s/keystore.json", dir);
  CHECK(rename(ks, path) == 0);
  if (quickstart_ini(EXAMPLE_INI, sim.port, text, sizeof text) < 0) {
    h_sim_stop(&sim);
    return check_done("integration.quickstart");
  }
  snprintf(ini, sizeof ini, "%s/blazebot.ini", dir);
  CHECK(h_write(ini, text, 0600) == 0);

  /* The README's first step: --check. */
  const char *chk[] = {h_daemon_bin(), "-c", ini, "--check", NULL};
  CHECK_INT(h_run(dir, "check", chk, 30000), 0);
  snprintf(path, sizeof path, "%s/check.out", dir);
  CHECK(h_contains(path, "configuration OK"));

  struct proc d;
  if (h_daemon_start(&d, dir, "daemon", ini) < 0) {
    h_sim_stop(&sim);
    return check_done("integration.quickstart");
  }
  CHECK(h_sim_wait(&sim, "acked", PRELOAD, 30000) == 0);
  json_t *st = h_sim_stats(&sim);
  CHECK_INT(h_stat(st, "connections"), 1);
  CHECK_INT(h_stat(st, "handshake_rejects"), 0);
  CHECK_INT(h_stat(st, "auth_failures"), 0);
  CHECK_INT(h_stat(st, "list_pending"), 1);
  CHECK_INT(h_stat(st, "acked"), PRELOAD);
  CHECK_INT(h_stat(st, "unacked"), 0);
  CHECK_INT(h_stat(st, "acked_twice"), 0);
  json_decref(st);

  h_kill(&d, SIGTERM);
  CHECK(h_wait(&d, 30000) == 0);
  CHECK_INT(d.status, 0);
  h_reap(&d);
  h_sim_stop(&sim);
  json_t *ds = h_daemon_stats(dir, "daemon");
  CHECK_INT(h_stat(ds, "connects"), 1);
  CHECK_INT(h_stat(ds, "connect_errors"), 0);
  CHECK_INT(h_stat(ds, "processed"), PRELOAD);
  CHECK_INT(h_stat(ds, "acked"), PRELOAD);
  json_decref(ds);
  /* One attempt, to the address as written; nothing refused or retried. */
  snprintf(path, sizeof path, "%s/daemon.err", dir);
  char needle[128];
  snprintf(needle, sizeof needle, "blaze: connecting to ws://127.0.0.1:%d/", sim.port);
  CHECK_INT(h_count(path, needle), 1);
  CHECK_INT(h_count(path, "blaze: connecting to"), 1);
  CHECK_INT(h_count(path, "connection attempt failed"), 0);
  CHECK(h_no_sanitizer_report(dir, "daemon.err"));
  return check_done("integration.quickstart");
}
