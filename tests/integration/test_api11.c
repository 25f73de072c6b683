/* SPDX-License-Identifier: MIT */
/*
 * Plugin API 1.1 under the real daemon, through the probe plugin:
 *   hold      on_message holds each message and returns; a timer replies
 *             under the hold and releases it HANDLED. Later messages reach
 *             the plugin while earlier ones are held, each message is
 *             answered once and acknowledged, and a second release of a
 *             hold is refused;
 *   reload    holds survive a reload's swap; those the old instance never
 *             released are released as RETRY before its shutdown, and the
 *             new instance answers each message once;
 *   held      a message held at shutdown is not acknowledged: the hold is
 *             released as RETRY, the daemon exits cleanly at once, and after
 *             a restart the message comes again and is answered;
 *   state_dir each instance gets <state_dir>/<instance> (0700) and its name;
 *             a folder open to other users is refused (state_dir() NULL);
 *   timer_at  a wall-clock timer fires, not early;
 *   api       api_request under a hold: GET /me answers 200 with the data,
 *             an unknown path the Mixin error 404, each message answered
 *             from the callback and acknowledged after it;
 *   upload    bytes become an attachment the reply names; a refused POST
 *             /attachments is reported with its code;
 *   twice     one .so under two sections: two instances, each answering;
 *   blocking  sends from run_blocking work (the blocking pool's thread)
 *             while the plugin's queue goes on with later messages: each
 *             goes out once, not tied to its message (under ThreadSanitizer
 *             this is the path where a send off the queue meets on_message);
 *   result    send_result reports accepted, refused with the Mixin code, and
 *             given up (a send still retried when the daemon stops), each
 *             before the plugin's shutdown.
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

/* The number of HOLD lines before the first RELEASE line of log. */
static int holds_before_first_release(const char *log) {
  char *s = h_read(log);
  int n = 0;
  for (char *line = s; line && *line;) {
    if (!strncmp(line, "RELEASE ", 8))
      break;
    n += !strncmp(line, "HOLD ", 5);
    char *nl = strchr(line, '\n');
    line = nl ? nl + 1 : NULL;
  }
  free(s);
  return n;
}

static long replies_with(struct sim *sim, const char *text) {
  json_t *sent = h_sim_get(sim, "/_sim/sent");
  size_t i;
  json_t *e;
  long n = 0;
  json_array_foreach(sent, i, e) {
    const char *t = json_string_value(json_object_get(e, "text"));
    n += t && !strcmp(t, text);
  }
  json_decref(sent);
  return n;
}

int main(void) {
  char dir[512], ks[600], ini[700], plugins[600], so[700], src[700], extra[2000];
  char log[700], path[900];
  snprintf(dir, sizeof dir, "%s", h_dir("api11"));
  snprintf(plugins, sizeof plugins, "%s/plugins", dir);
  snprintf(so, sizeof so, "%s/probe_a.so", plugins);
  snprintf(src, sizeof src, "%s/probe_a.so", PROBE_DIR);
  snprintf(log, sizeof log, "%s/probe.log", dir);
  CHECK(mkdir(plugins, 0755) == 0 && chmod(plugins, 0755) == 0);
  CHECK(h_copy_file(src, so, 0644) == 0);
  CHECK(h_keygen(dir, "ed25519", ks, sizeof ks) == 0);
  struct sim sim;
  if (h_sim_start(&sim, dir, ks, NULL) < 0) {
    CHECK(!"simulator started");
    return check_done("integration.api11");
  }
  struct proc d;

  /* hold: 20 messages held 300 ms each */
  snprintf(extra, sizeof extra,
           "plugin_dir = plugins\nstate_dir = state\n"
           "[plugin.probe_a]\nhold_ms = 300\nresult = handled\nreply = held reply\n"
           "timer_at_ms = 500\nreport_state_dir = true\nlog = %s\n",
           log);
  CHECK(h_config(dir, &sim, ks, extra, ini, sizeof ini) == 0);
  CHECK(h_daemon_start(&d, dir, "hold", ini) == 0);
  CHECK(h_sim_wait(&sim, "connections", 1, 30000) == 0);
  push(&sim, 20, "hold");
  CHECK(h_sim_wait(&sim, "acked", 20, 60000) == 0);
  CHECK_INT(h_count(log, "HOLD "), 20);
  CHECK_INT(h_count(log, "RELEASE "), 20);
  CHECK(holds_before_first_release(log) >= 2); /* not one at a time */
  CHECK_INT(h_count(log, "HOLD_FAILED"), 0);
  CHECK_INT(h_count(log, "RELEASE_FAILED"), 0);
  CHECK_INT(h_count(log, "DOUBLE_RELEASE_ACCEPTED"), 0);
  CHECK_INT(h_count(log, "OVERLAP"), 0);
  CHECK_INT(replies_with(&sim, "held reply"), 20);
  json_t *s = h_sim_stats(&sim);
  CHECK_INT(h_stat(s, "created"), 20);
  json_decref(s);

  /* state_dir and timer_at, from the same run */
  snprintf(path, sizeof path, "%s/state/probe_a", dir);
  struct stat st;
  CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700);
  CHECK(h_contains(log, path));
  snprintf(path, sizeof path, "%s/state/probe_a/instance", dir);
  CHECK(h_contains(path, "probe_a"));
  snprintf(path, sizeof path, "%s", log);
  CHECK(h_wait_count(path, "TIMER_AT ", 1, 30000) == 0);
  CHECK_INT(h_count(log, "TIMER_AT -"), 0); /* never early */

  h_kill(&d, SIGTERM);
  CHECK(h_wait(&d, 30000) == 0);
  CHECK_INT(d.status, 0);
  CHECK(h_no_sanitizer_report(dir, "hold.err"));
  json_t *ds = h_daemon_stats(dir, "hold");
  CHECK_INT(h_plugin_stat(ds, "probe_a", "handled"), 20);
  json_decref(ds);
  h_reap(&d);

  /* reload with messages held: the old instance's holds survive the swap
   * (its timers are cancelled, so it never releases them); just before its
   * shutdown they are released as RETRY and the new instance answers */
  remove(log);
  snprintf(extra, sizeof extra,
           "plugin_dir = plugins\n"
           "[plugin.probe_a]\nhold_ms = 4000\nresult = handled\nreply = old reply\n"
           "log = %s\n",
           log);
  CHECK(h_config(dir, &sim, ks, extra, ini, sizeof ini) == 0);
  CHECK(h_daemon_start(&d, dir, "reload", ini) == 0);
  CHECK(h_sim_wait(&sim, "connections", 2, 30000) == 0);
  push(&sim, 3, "reload");
  CHECK(h_wait_count(log, "HOLD ", 3, 30000) == 0);
  snprintf(extra, sizeof extra,
           "plugin_dir = plugins\n"
           "[plugin.probe_a]\nhold_ms = 100\nresult = handled\nreply = new reply\n"
           "log = %s\n",
           log);
  CHECK(h_config(dir, &sim, ks, extra, ini, sizeof ini) == 0);
  h_kill(&d, SIGHUP);
  CHECK(h_sim_wait(&sim, "acked", 23, 60000) == 0);
  CHECK_INT(replies_with(&sim, "new reply"), 3);
  CHECK_INT(replies_with(&sim, "old reply"), 0);
  snprintf(path, sizeof path, "%s/reload.err", dir);
  CHECK_INT(h_count(path, "still held at shutdown"), 3);
  h_kill(&d, SIGTERM);
  CHECK(h_wait(&d, 30000) == 0);
  CHECK_INT(d.status, 0);
  CHECK(h_no_sanitizer_report(dir, "reload.err"));
  json_t *rs = h_daemon_stats(dir, "reload");
  CHECK_INT(h_stat(rs, "processed"), 3);
  CHECK_INT(h_stat(rs, "duplicates"), 0);
  json_decref(rs);
  h_reap(&d);

  /* held at shutdown: released as RETRY, not acknowledged */
  remove(log);
  snprintf(extra, sizeof extra,
           "plugin_dir = plugins\n"
           "[plugin.probe_a]\nhold_ms = 600000\nresult = handled\nreply = late reply\n"
           "log = %s\n",
           log);
  CHECK(h_config(dir, &sim, ks, extra, ini, sizeof ini) == 0);
  CHECK(h_daemon_start(&d, dir, "held", ini) == 0);
  CHECK(h_sim_wait(&sim, "connections", 3, 30000) == 0);
  push(&sim, 3, "held");
  CHECK(h_wait_count(log, "HOLD ", 3, 30000) == 0);
  h_sleep_ms(1000); /* acks would be flushed by now */
  s = h_sim_stats(&sim);
  CHECK_INT(h_stat(s, "acked"), 23);
  json_decref(s);
  h_kill(&d, SIGTERM);
  CHECK(h_wait(&d, 30000) == 0);
  CHECK_INT(d.status, 0);
  snprintf(path, sizeof path, "%s/held.err", dir);
  CHECK_INT(h_count(path, "still held at shutdown"), 3);
  CHECK(h_no_sanitizer_report(dir, "held.err"));
  h_reap(&d);
  s = h_sim_stats(&sim);
  CHECK_INT(h_stat(s, "acked"), 23);
  json_decref(s);
  CHECK_INT(replies_with(&sim, "late reply"), 0);

  /* ... and answered after the restart (with an open state folder) */
  snprintf(path, sizeof path, "%s/open", dir);
  CHECK(mkdir(path, 0700) == 0);
  snprintf(path, sizeof path, "%s/open/probe_a", dir);
  CHECK(mkdir(path, 0700) == 0 && chmod(path, 0777) == 0);
  snprintf(extra, sizeof extra,
           "plugin_dir = plugins\nstate_dir = open\n"
           "[plugin.probe_a]\nhold_ms = 100\nresult = handled\nreply = late reply\n"
           "report_state_dir = true\nlog = %s\n",
           log);
  CHECK(h_config(dir, &sim, ks, extra, ini, sizeof ini) == 0);
  CHECK(h_daemon_start(&d, dir, "again", ini) == 0);
  CHECK(h_sim_wait(&sim, "acked", 26, 60000) == 0);
  CHECK_INT(replies_with(&sim, "late reply"), 3);
  CHECK(h_contains(log, "STATE_DIR none"));
  snprintf(path, sizeof path, "%s/again.err", dir);
  CHECK(h_contains(path, "is open to other users"));
  h_kill(&d, SIGTERM);
  CHECK(h_wait(&d, 30000) == 0);
  CHECK_INT(d.status, 0);
  CHECK(h_no_sanitizer_report(dir, "again.err"));
  h_reap(&d);

  /* api_request: GET /me under a hold, then an unknown path */
  remove(log);
  snprintf(extra, sizeof extra,
           "plugin_dir = plugins\n[plugin.probe_a]\napi_get = /me\nlog = %s\n", log);
  CHECK(h_config(dir, &sim, ks, extra, ini, sizeof ini) == 0);
  CHECK(h_daemon_start(&d, dir, "api", ini) == 0);
  CHECK(h_sim_wait(&sim, "connections", 5, 30000) == 0);
  push(&sim, 5, "who");
  CHECK(h_sim_wait(&sim, "acked", 31, 60000) == 0);
  CHECK_INT(replies_with(&sim, "api 200 0"), 5);
  CHECK_INT(h_count(log, "API 200 0 {\"data\":"), 5);
  CHECK_INT(h_count(log, "RELEASE_FAILED"), 0);
  /* faults: two 500s are retried (a GET), a 401 is not, a slow answer past
   * the call's 5 s deadline is no answer */
  json_t *st0 = h_sim_stats(&sim);
  long me0 =
      (long)json_integer_value(json_object_get(json_object_get(st0, "api_calls"), "me"));
  json_decref(st0);
  json_decref(h_sim_post(&sim, "/_sim/fault", "{\"fault\":\"api_error:me:500x2\"}"));
  push(&sim, 1, "who");
  CHECK(h_sim_wait(&sim, "acked", 32, 60000) == 0);
  CHECK_INT(replies_with(&sim, "api 200 0"), 6);
  st0 = h_sim_stats(&sim);
  CHECK_INT(
      (long)json_integer_value(json_object_get(json_object_get(st0, "api_calls"), "me")),
      me0 + 3);
  json_decref(st0);
  json_decref(h_sim_post(&sim, "/_sim/fault", "{\"fault\":\"api_error:me:401\"}"));
  push(&sim, 1, "who");
  CHECK(h_sim_wait(&sim, "acked", 33, 60000) == 0);
  CHECK_INT(replies_with(&sim, "api 401 401"), 1);
  json_decref(h_sim_post(&sim, "/_sim/fault", "{\"fault\":\"api_slow:me:8000\"}"));
  push(&sim, 1, "who");
  CHECK(h_sim_wait(&sim, "acked", 34, 60000) == 0);
  CHECK_INT(replies_with(&sim, "api 0 0"), 1);
  h_kill(&d, SIGTERM);
  CHECK(h_wait(&d, 30000) == 0);
  CHECK_INT(d.status, 0);
  CHECK(h_no_sanitizer_report(dir, "api.err"));
  h_reap(&d);

  remove(log);
  snprintf(extra, sizeof extra,
           "plugin_dir = plugins\n[plugin.probe_a]\napi_get = /no/such/endpoint\n"
           "log = %s\n",
           log);
  CHECK(h_config(dir, &sim, ks, extra, ini, sizeof ini) == 0);
  CHECK(h_daemon_start(&d, dir, "api404", ini) == 0);
  CHECK(h_sim_wait(&sim, "connections", 6, 30000) == 0);
  push(&sim, 2, "nowhere");
  CHECK(h_sim_wait(&sim, "acked", 36, 60000) == 0);
  CHECK_INT(h_count(log, " 404 {\"error\":"), 2); /* the Mixin error code */
  h_kill(&d, SIGTERM);
  CHECK(h_wait(&d, 30000) == 0);
  CHECK_INT(d.status, 0);
  CHECK(h_no_sanitizer_report(dir, "api404.err"));
  h_reap(&d);

  /* two instances of one plugin: [plugin.second] loads probe_a.so again */
  remove(log);
  snprintf(extra, sizeof extra,
           "plugin_dir = plugins\nstate_dir = state\n"
           "[plugin.probe_a]\nreply = from one\n"
           "[plugin.second]\npath = probe_a.so\nreply = from two\n"
           "report_state_dir = true\nlog = %s\n",
           log);
  CHECK(h_config(dir, &sim, ks, extra, ini, sizeof ini) == 0);
  CHECK(h_daemon_start(&d, dir, "twice", ini) == 0);
  CHECK(h_sim_wait(&sim, "connections", 7, 30000) == 0);
  push(&sim, 4, "twice");
  CHECK(h_sim_wait(&sim, "acked", 40, 60000) == 0);
  CHECK_INT(replies_with(&sim, "from one"), 4);
  CHECK_INT(replies_with(&sim, "from two"), 4);
  snprintf(path, sizeof path, "%s/state/second/instance", dir);
  CHECK(h_contains(path, "second"));
  h_kill(&d, SIGTERM);
  CHECK(h_wait(&d, 30000) == 0);
  CHECK_INT(d.status, 0);
  CHECK(h_no_sanitizer_report(dir, "twice.err"));
  json_t *tw = h_daemon_stats(dir, "twice");
  CHECK_INT(h_plugin_stat(tw, "probe_a", "delivered"), 4);
  CHECK_INT(h_plugin_stat(tw, "second", "delivered"), 4);
  json_decref(tw);
  h_reap(&d);

  /* upload: 100,000 bytes, then a PLAIN_DATA reply naming the attachment;
   * then POST /attachments refused (10002): the plugin is told why */
  remove(log);
  snprintf(extra, sizeof extra,
           "plugin_dir = plugins\n[plugin.probe_a]\nupload_bytes = 100000\nlog = %s\n",
           log);
  CHECK(h_config(dir, &sim, ks, extra, ini, sizeof ini) == 0);
  CHECK(h_daemon_start(&d, dir, "upload", ini) == 0);
  CHECK(h_sim_wait(&sim, "connections", 8, 30000) == 0);
  push(&sim, 1, "upload");
  CHECK(h_sim_wait(&sim, "acked", 41, 60000) == 0);
  CHECK_INT(h_count(log, "UPLOAD OK "), 1);
  s = h_sim_stats(&sim);
  CHECK_INT(h_stat(s, "uploads"), 1);
  CHECK_INT(h_stat(s, "uploaded_bytes"), 100000);
  json_decref(s);
  json_t *sent = h_sim_get(&sim, "/_sim/sent");
  size_t si;
  json_t *se;
  long data_msgs = 0;
  json_array_foreach(sent, si, se) {
    const char *cat = json_string_value(json_object_get(se, "category"));
    data_msgs += cat && !strcmp(cat, "PLAIN_DATA");
  }
  json_decref(sent);
  CHECK_INT(data_msgs, 1);
  /* the PUT failing once with a 500 is retried */
  json_decref(h_sim_post(&sim, "/_sim/fault", "{\"fault\":\"api_error:upload:500\"}"));
  push(&sim, 1, "upload");
  CHECK(h_sim_wait(&sim, "acked", 42, 60000) == 0);
  CHECK_INT(h_count(log, "UPLOAD OK "), 2);
  s = h_sim_stats(&sim);
  CHECK_INT(h_stat(s, "uploads"), 2);
  json_decref(s);
  json_decref(h_sim_post(&sim, "/_sim/fault",
                         "{\"fault\":\"api_error:attachment_create:10002\"}"));
  push(&sim, 1, "refused");
  CHECK(h_sim_wait(&sim, "acked", 43, 60000) == 0);
  CHECK_INT(h_count(log, "UPLOAD FAIL 202 10002 POST /attachments failed"), 1);
  h_kill(&d, SIGTERM);
  CHECK(h_wait(&d, 30000) == 0);
  CHECK_INT(d.status, 0);
  CHECK(h_no_sanitizer_report(dir, "upload.err"));
  h_reap(&d);

  /* blocking: 10 messages, each answered on the queue and sent to from
   * the blocking pool */
  remove(log);
  snprintf(extra, sizeof extra,
           "plugin_dir = plugins\n[plugin.probe_a]\nreply = on the queue\n"
           "blocking_send = true\nlog = %s\n",
           log);
  CHECK(h_config(dir, &sim, ks, extra, ini, sizeof ini) == 0);
  CHECK(h_daemon_start(&d, dir, "blocking", ini) == 0);
  CHECK(h_sim_wait(&sim, "connections", 9, 30000) == 0);
  push(&sim, 10, "blocking");
  CHECK(h_sim_wait(&sim, "acked", 53, 60000) == 0);
  CHECK(h_wait_count(log, "BLOCKING_DONE ", 10, 30000) == 0);
  CHECK_INT(h_count(log, "BLOCKING_FAILED"), 0);
  CHECK_INT(replies_with(&sim, "on the queue"), 10);
  for (int i = 0; i < 300 && replies_with(&sim, "from blocking work") < 10; i++)
    h_sleep_ms(100);
  CHECK_INT(replies_with(&sim, "from blocking work"), 10);
  h_kill(&d, SIGTERM);
  CHECK(h_wait(&d, 30000) == 0);
  CHECK_INT(d.status, 0);
  CHECK(h_no_sanitizer_report(dir, "blocking.err"));
  h_reap(&d);

  /* send_result: accepted, refused (10002), and given up at shutdown */
  remove(log);
  snprintf(extra, sizeof extra,
           "plugin_dir = plugins\nshutdown_timeout_ms = 1000\n"
           "[plugin.probe_a]\nsend_result = true\nreply = with result\nlog = %s\n",
           log);
  CHECK(h_config(dir, &sim, ks, extra, ini, sizeof ini) == 0);
  json_decref(h_sim_post(&sim, "/_sim/fault", "{\"fault\":\"create_error:10002x1\"}"));
  CHECK(h_daemon_start(&d, dir, "result", ini) == 0);
  CHECK(h_sim_wait(&sim, "connections", 10, 30000) == 0);
  push(&sim, 3, "result");
  CHECK(h_sim_wait(&sim, "acked", 56, 60000) == 0);
  CHECK(h_wait_count(log, "RESULT ", 3, 30000) == 0);
  CHECK_INT(h_count(log, "RESULT 0 0 "), 2);
  CHECK_INT(h_count(log, "RESULT 1 10002 "), 1);
  CHECK_INT(replies_with(&sim, "with result"), 2);
  /* Retryable failures from now on: a send still unsettled when the daemon
   * stops is reported as given up, before the plugin's shutdown. */
  json_decref(h_sim_post(&sim, "/_sim/fault", "{\"fault\":\"create_error:7000x1000\"}"));
  push(&sim, 1, "stuck");
  CHECK(h_wait_count(log, "probe_a ", 4, 30000) == 0);
  h_kill(&d, SIGTERM);
  CHECK(h_wait(&d, 30000) == 0);
  CHECK_INT(d.status, 0);
  CHECK_INT(h_count(log, "RESULT 2 0 "), 1);
  char *text = h_read(log);
  char *gave = text ? strstr(text, "RESULT 2 0 ") : NULL;
  CHECK(gave && strstr(gave, "SHUTDOWN")); /* reported before the shutdown */
  free(text);
  CHECK(h_no_sanitizer_report(dir, "result.err"));
  h_reap(&d);

  h_sim_stop(&sim);
  return check_done("integration.api11");
}
