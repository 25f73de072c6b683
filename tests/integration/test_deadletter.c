/* SPDX-License-Identifier: MIT */
/*
 * No silent loss when a plugin gives up:
 *   giveup   a probe that always answers RETRY, max_attempts = 2: each
 *            message goes to the dead-letter file (JSON Lines, 0600, with
 *            the message, plugin and attempts) before it is acknowledged;
 *   blocked  the dead-letter file cannot be written: the message is not
 *            given up on, so it is not acknowledged (it is retried);
 *   forever  max_attempts = 0: retried past any count, never given up;
 *   replay   `blazebot --replay FILE` delivers the recorded messages again
 *            to the plugin named in each record, whose replies go out over
 *            REST with no Blaze connection and nothing acknowledged; it
 *            refuses to replay the dead_letter_file itself.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "harness.h"

#ifndef PROBE_DIR
#error "plugins_e2e.cmake sets PROBE_DIR"
#endif

static void push(struct sim *sim, int n, const char *text) {
  char body[200];
  snprintf(body, sizeof body, "{\"count\":%d,\"text\":\"%s %%d\"}", n, text);
  json_decref(h_sim_post(sim, "/_sim/push", body));
}

int main(void) {
  char dir[512], ks[600], ini[700], plugins[600], so[700], src[700], extra[2000];
  char dead[700], replay[700], path[800];
  snprintf(dir, sizeof dir, "%s", h_dir("deadletter"));
  snprintf(plugins, sizeof plugins, "%s/plugins", dir);
  snprintf(so, sizeof so, "%s/probe_a.so", plugins);
  snprintf(src, sizeof src, "%s/probe_a.so", PROBE_DIR);
  snprintf(dead, sizeof dead, "%s/dead.jsonl", dir);
  snprintf(replay, sizeof replay, "%s/replay.jsonl", dir);
  CHECK(mkdir(plugins, 0755) == 0 && chmod(plugins, 0755) == 0);
  CHECK(h_copy_file(src, so, 0644) == 0);
  CHECK(h_keygen(dir, "ed25519", ks, sizeof ks) == 0);
  struct sim sim;
  if (h_sim_start(&sim, dir, ks, NULL) < 0) {
    CHECK(!"simulator started");
    return check_done("integration.deadletter");
  }
  struct proc d;

  /* giveup */
  snprintf(extra, sizeof extra,
           "plugin_dir = plugins\ndead_letter_file = dead.jsonl\n"
           "[plugin.probe_a]\nresult = retry\nmax_attempts = 2\n");
  CHECK(h_config(dir, &sim, ks, extra, ini, sizeof ini) == 0);
  CHECK(h_daemon_start(&d, dir, "giveup", ini) == 0);
  CHECK(h_sim_wait(&sim, "connections", 1, 30000) == 0);
  push(&sim, 5, "lost");
  CHECK(h_sim_wait(&sim, "acked", 5, 30000) == 0);
  CHECK_INT(h_count(dead, "\"plugin\":\"probe_a\""), 5);
  CHECK_INT(h_count(dead, "\"attempts\":2"), 5);
  CHECK_INT(h_count(dead, "\"message\":{"), 5);
  struct stat st;
  CHECK(stat(dead, &st) == 0 && (st.st_mode & 0777) == 0600);
  json_t *ms = h_sim_get(&sim, "/_sim/messages");
  size_t i;
  json_t *e;
  long recorded = 0;
  json_array_foreach(ms, i, e) {
    const char *id = json_string_value(json_object_get(e, "message_id"));
    recorded += id && h_contains(dead, id);
  }
  json_decref(ms);
  CHECK_INT(recorded, 5);
  h_kill(&d, SIGTERM);
  CHECK(h_wait(&d, 30000) == 0);
  CHECK_INT(d.status, 0);
  CHECK(h_no_sanitizer_report(dir, "giveup.err"));
  h_reap(&d);

  /* blocked: the dead-letter file's folder does not exist */
  snprintf(extra, sizeof extra,
           "plugin_dir = plugins\ndead_letter_file = missing/dead.jsonl\n"
           "[plugin.probe_a]\nresult = retry\nmax_attempts = 1\n");
  CHECK(h_config(dir, &sim, ks, extra, ini, sizeof ini) == 0);
  CHECK(h_daemon_start(&d, dir, "blocked", ini) == 0);
  CHECK(h_sim_wait(&sim, "connections", 2, 30000) == 0);
  push(&sim, 1, "kept");
  snprintf(path, sizeof path, "%s/blocked.err", dir);
  CHECK(h_wait_count(path, "not given up", 2, 30000) == 0);
  json_t *s = h_sim_stats(&sim);
  CHECK_INT(h_stat(s, "acked"), 5); /* the new one is not acknowledged */
  json_decref(s);
  h_kill(&d, SIGTERM);
  CHECK(h_wait(&d, 30000) == 0);
  h_reap(&d);

  /* forever: max_attempts = 0 (the "kept" message comes back first) */
  snprintf(extra, sizeof extra,
           "plugin_dir = plugins\ndead_letter_file = dead.jsonl\n"
           "[plugin.probe_a]\nresult = retry\nmax_attempts = 0\n");
  CHECK(h_config(dir, &sim, ks, extra, ini, sizeof ini) == 0);
  CHECK(h_daemon_start(&d, dir, "forever", ini) == 0);
  snprintf(path, sizeof path, "%s/forever.err", dir);
  h_sleep_ms(4000); /* attempts at 0, 0.5, 1.5 and 3.5 s */
  s = h_sim_stats(&sim);
  CHECK_INT(h_stat(s, "acked"), 5);
  json_decref(s);
  CHECK_INT(h_count(path, "gave up"), 0);
  CHECK_INT(h_count(dead, "\"plugin\""), 5);
  h_kill(&d, SIGTERM);
  CHECK(h_wait(&d, 30000) == 0);
  json_t *ds = h_daemon_stats(dir, "forever");
  CHECK(h_plugin_stat(ds, "probe_a", "retried") >= 3);
  CHECK_INT(h_plugin_stat(ds, "probe_a", "gave_up"), 0);
  json_decref(ds);
  h_reap(&d);

  /* replay: the plugin now succeeds and replies */
  snprintf(extra, sizeof extra,
           "plugin_dir = plugins\ndead_letter_file = dead.jsonl\n"
           "[plugin.probe_a]\nresult = pass\nreply = replayed\n");
  CHECK(h_config(dir, &sim, ks, extra, ini, sizeof ini) == 0);
  const char *same[] = {h_daemon_bin(), "-c", ini, "--replay", dead, NULL};
  CHECK_INT(h_run(dir, "replay-same", same, 60000), 1);
  snprintf(path, sizeof path, "%s/replay-same.err", dir);
  CHECK(h_contains(path, "is the dead_letter_file itself"));
  CHECK(rename(dead, replay) == 0);
  s = h_sim_stats(&sim);
  long conns = h_stat(s, "connections"), acked = h_stat(s, "acked");
  json_decref(s);
  const char *argv[] = {h_daemon_bin(), "-c", ini, "--replay", replay, NULL};
  CHECK_INT(h_run(dir, "replay", argv, 120000), 0);
  snprintf(path, sizeof path, "%s/replay.err", dir);
  CHECK(h_contains(path, "5 processed (0 failed again), 0 unfinished"));
  CHECK(h_no_sanitizer_report(dir, "replay.err"));
  s = h_sim_stats(&sim);
  CHECK_INT(h_stat(s, "connections"), conns); /* no Blaze connection */
  CHECK_INT(h_stat(s, "acked"), acked);       /* nothing acknowledged */
  json_decref(s);
  json_t *sent = h_sim_get(&sim, "/_sim/sent");
  long replayed = 0;
  json_array_foreach(sent, i, e) {
    const char *t = json_string_value(json_object_get(e, "text"));
    const char *via = json_string_value(json_object_get(e, "via"));
    replayed += t && via && !strcmp(t, "replayed") && !strcmp(via, "rest");
  }
  json_decref(sent);
  CHECK_INT(replayed, 5);
  struct stat nst;
  CHECK(stat(dead, &nst) != 0); /* none failed again */
  h_sim_stop(&sim);
  return check_done("integration.deadletter");
}
