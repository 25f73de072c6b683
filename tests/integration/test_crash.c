/* SPDX-License-Identifier: MIT */
/*
 * A crash answers nobody twice. The daemon runs the echo plugin on 3,000
 * pending messages and is killed with SIGKILL mid-stream, while many
 * messages are answered but not yet acknowledged (acks are held for a
 * second). A new daemon then processes those again. Their replies carry the
 * ids derived from the incoming id, plugin and ordinal, so the server keeps
 * the first copy and drops the second: the simulator's store must hold
 * exactly one reply per message, none under two ids, and every message must
 * end acknowledged exactly once.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "harness.h"

#ifndef ECHO_SO
#error "plugins_e2e.cmake sets ECHO_SO"
#endif

#define TOTAL 3000

int main(void) {
  char dir[512], ks[600], ini[700], plugins[600], so[700];
  snprintf(dir, sizeof dir, "%s", h_dir("crash"));
  snprintf(plugins, sizeof plugins, "%s/plugins", dir);
  snprintf(so, sizeof so, "%s/echo.so", plugins);
  CHECK(mkdir(plugins, 0755) == 0 && chmod(plugins, 0755) == 0);
  CHECK(h_copy_file(ECHO_SO, so, 0644) == 0);
  CHECK(h_keygen(dir, "ed25519", ks, sizeof ks) == 0);
  const char *args[] = {"--preload", "3000", NULL};
  struct sim sim;
  if (h_sim_start(&sim, dir, ks, args) < 0) {
    CHECK(!"simulator started");
    return check_done("integration.crash");
  }
  CHECK(h_config(dir, &sim, ks,
                 "plugin_dir = plugins\nack_interval_ms = 1000\nack_batch = 100\n"
                 "[plugin.echo]\n",
                 ini, sizeof ini) == 0);

  struct proc d;
  CHECK(h_daemon_start(&d, dir, "first", ini) == 0);
  CHECK(h_sim_wait(&sim, "created", 700, 60000) == 0);
  h_kill(&d, SIGKILL);
  CHECK(h_wait(&d, 10000) == 0);
  h_reap(&d);
  json_t *st = h_sim_stats(&sim);
  long answered = h_stat(st, "created"), acked = h_stat(st, "acked");
  json_decref(st);
  fprintf(stderr, "killed with %ld answered, %ld acknowledged\n", answered, acked);
  /* Mid-stream, with answered messages the server will deliver again. */
  CHECK(answered < TOTAL);
  CHECK(acked < answered);

  CHECK(h_daemon_start(&d, dir, "second", ini) == 0);
  CHECK(h_sim_wait(&sim, "acked", TOTAL, 120000) == 0);
  CHECK(h_sim_wait(&sim, "created", TOTAL, 30000) == 0);
  h_kill(&d, SIGTERM);
  CHECK(h_wait(&d, 30000) == 0);
  CHECK_INT(d.status, 0);
  h_reap(&d);
  CHECK(h_no_sanitizer_report(dir, "second.err"));

  st = h_sim_stats(&sim);
  CHECK_INT(h_stat(st, "messages"), TOTAL);
  CHECK_INT(h_stat(st, "acked"), TOTAL);
  CHECK_INT(h_stat(st, "acked_twice"), 0);
  CHECK_INT(h_stat(st, "created"), TOTAL);
  /* The reprocessed messages were answered again, under the same ids. */
  long resent = h_stat(st, "created_duplicates");
  fprintf(stderr, "replies sent again under their first id: %ld\n", resent);
  /* Every message answered but not acknowledged at the kill was processed
   * again, and its reply went out again under the same id. */
  CHECK(resent >= answered - acked);
  json_decref(st);

  /* One stored reply per message: "message I" answered exactly once. */
  json_t *sent = h_sim_get(&sim, "/_sim/sent");
  CHECK_INT(json_array_size(sent), TOTAL);
  static unsigned char seen[TOTAL];
  long twice = 0, bad = 0;
  size_t i;
  json_t *e;
  json_array_foreach(sent, i, e) {
    const char *text = json_string_value(json_object_get(e, "text"));
    int n = -1;
    if (!text || sscanf(text, "message %d", &n) != 1 || n < 0 || n >= TOTAL) {
      bad++;
      continue;
    }
    twice += seen[n]++ > 0;
  }
  json_decref(sent);
  CHECK_INT(bad, 0);
  CHECK_INT(twice, 0);
  h_sim_stop(&sim);
  return check_done("integration.crash");
}
