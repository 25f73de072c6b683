/* SPDX-License-Identifier: MIT */
/*
 * Logs an operator can ship and trust: a whole session (the echo and
 * commands plugins, 20 messages, a /whoami profile lookup, a dropped link)
 * at log_level = debug with log_format = json.
 *   - every line is one JSON object with time, level and event;
 *   - each message's steps are there, keyed by its id: received, delivered
 *     (plugin and result), reply queued and settled, done, acknowledged;
 *   - nothing secret or private is in the output: not the keystore's key
 *     material (any field), not a token (no "eyJ" JWT header anywhere), not
 *     one message payload or reply text;
 *   - the same session in text format has the same events as key=value.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "harness.h"

#if !defined(ECHO_SO) || !defined(PROBE_DIR)
#error "plugins_e2e.cmake sets ECHO_SO and PROBE_DIR"
#endif

#define N 20

/* Every string value of the keystore's JSON longer than 16 characters
 * (keys, tokens, PEM blocks; ids are public but harmless to check too) must
 * not appear in the log. Returns the number found. */
static int keystore_leaks(const char *ks, const char *logtext) {
  json_t *root = json_load_file(ks, 0, NULL);
  CHECK(root != NULL);
  int leaks = 0;
  const char *k;
  json_t *v;
  json_object_foreach(root, k, v) {
    const char *s = json_string_value(v);
    if (!s || strlen(s) < 16 || !strcmp(k, "app_id") || !strcmp(k, "client_id") ||
        !strcmp(k, "session_id"))
      continue;
    /* Any 16-character piece of it is a leak too (a PEM line, a prefix). */
    size_t len = strlen(s);
    for (size_t off = 0; off + 16 <= len; off += 8) {
      char piece[17];
      memcpy(piece, s + off, 16);
      piece[16] = 0;
      if (strchr(piece, '\n') || strstr(piece, "-----"))
        continue;
      if (strstr(logtext, piece)) {
        fprintf(stderr, "logs: keystore field %s leaked\n", k);
        leaks++;
        break;
      }
    }
  }
  json_decref(root);
  return leaks;
}

/* The number of lines of log that are JSON objects with the three
 * members; *bad counts the others. */
static long json_lines(const char *text, long *bad) {
  long ok = 0;
  *bad = 0;
  for (const char *line = text; line && *line;) {
    const char *nl = strchr(line, '\n');
    size_t len = nl ? (size_t)(nl - line) : strlen(line);
    json_t *o = json_loadb(line, len, 0, NULL);
    if (o && json_is_string(json_object_get(o, "time")) &&
        json_is_string(json_object_get(o, "level")) &&
        json_is_string(json_object_get(o, "event")))
      ok++;
    else {
      (*bad)++;
      fprintf(stderr, "logs: not a JSON log line: %.*s\n", (int)(len > 200 ? 200 : len),
              line);
    }
    json_decref(o);
    line = nl ? nl + 1 : NULL;
  }
  return ok;
}

/* The events logged for message id (JSON lines): a bit per step. */
static int steps_of(const char *text, const char *id) {
  static const char *const events[] = {"message.received", "message.delivered",
                                       "message.done", "message.acked"};
  int mask = 0;
  for (const char *line = text; line && *line;) {
    const char *nl = strchr(line, '\n');
    size_t len = nl ? (size_t)(nl - line) : strlen(line);
    json_t *o = json_loadb(line, len, 0, NULL);
    const char *ev = json_string_value(json_object_get(o, "event"));
    const char *mid = json_string_value(json_object_get(o, "message_id"));
    if (ev && mid && !strcmp(mid, id))
      for (int i = 0; i < 4; i++)
        if (!strcmp(ev, events[i]))
          mask |= 1 << i;
    json_decref(o);
    line = nl ? nl + 1 : NULL;
  }
  return mask;
}

int main(void) {
  char dir[512], ks[600], ini[700], plugins[600], so[700], extra[2000], path[800];
  snprintf(dir, sizeof dir, "%s", h_dir("logs"));
  snprintf(plugins, sizeof plugins, "%s/plugins", dir);
  CHECK(mkdir(plugins, 0755) == 0 && chmod(plugins, 0755) == 0);
  snprintf(so, sizeof so, "%s/echo.so", plugins);
  CHECK(h_copy_file(ECHO_SO, so, 0644) == 0);
  snprintf(so, sizeof so, "%s/probe_a.so", plugins);
  snprintf(path, sizeof path, "%s/probe_a.so", PROBE_DIR);
  CHECK(h_copy_file(path, so, 0644) == 0);
  CHECK(h_keygen(dir, "ed25519", ks, sizeof ks) == 0);
  struct sim sim;
  if (h_sim_start(&sim, dir, ks, NULL) < 0) {
    CHECK(!"simulator started");
    return check_done("integration.logs");
  }
  struct proc d;
  /* probe_a (priority above echo by ini) looks up GET /me under a hold for
   * "/me" ... it answers every message: keep it to a PASS-through lookup. */
  snprintf(extra, sizeof extra,
           "plugin_dir = plugins\nlog_level = debug\nlog_format = json\n"
           "[plugin.echo]\n"
           "[plugin.probe_a]\napi_get = /me\npriority = 10\n");
  CHECK(h_config(dir, &sim, ks, extra, ini, sizeof ini) == 0);
  CHECK(h_daemon_start(&d, dir, "json", ini) == 0);
  CHECK(h_sim_wait(&sim, "connections", 1, 30000) == 0);
  char body[200];
  snprintf(body, sizeof body, "{\"count\":%d,\"text\":\"PAYLOAD-c0ffee-%%d\"}", N / 2);
  json_decref(h_sim_post(&sim, "/_sim/push", body));
  json_decref(h_sim_post(&sim, "/_sim/fault", "{\"fault\":\"drop@2\"}"));
  json_decref(h_sim_post(&sim, "/_sim/push", body));
  CHECK(h_sim_wait(&sim, "acked", N, 60000) == 0);
  h_kill(&d, SIGTERM);
  CHECK(h_wait(&d, 30000) == 0);
  CHECK_INT(d.status, 0);
  h_reap(&d);

  snprintf(path, sizeof path, "%s/json.err", dir);
  char *text = h_read(path);
  CHECK(text != NULL);
  if (text) {
    long bad = 0;
    long ok = json_lines(text, &bad);
    CHECK(ok > 5 * N);
    CHECK_INT(bad, 0);
    CHECK(!strstr(text, "PAYLOAD-c0ffee")); /* no payload, no reply text */
    CHECK(!strstr(text, "api 200"));        /* the probe's reply text */
    CHECK(!strstr(text, "eyJ"));            /* no JWT */
    CHECK(!strstr(text, "Bearer"));
    CHECK_INT(keystore_leaks(ks, text), 0);
    /* Every message: received, delivered, done and acked, by its id. */
    json_t *ms = h_sim_get(&sim, "/_sim/messages");
    size_t i;
    json_t *e;
    long complete = 0;
    json_array_foreach(ms, i, e) {
      const char *id = json_string_value(json_object_get(e, "message_id"));
      complete += id && steps_of(text, id) == 15;
    }
    json_decref(ms);
    CHECK_INT(complete, N);
    CHECK(strstr(text, "\"event\":\"reply.queued\"") != NULL);
    CHECK(strstr(text, "\"event\":\"reply.settled\"") != NULL);
    CHECK(strstr(text, "\"event\":\"message.held\"") != NULL);
    CHECK(strstr(text, "\"plugin\":\"probe_a\"") != NULL);
  }
  free(text);

  /* text format: the same events, as key=value */
  snprintf(extra, sizeof extra,
           "plugin_dir = plugins\nlog_level = debug\nlog_format = text\n[plugin.echo]\n");
  CHECK(h_config(dir, &sim, ks, extra, ini, sizeof ini) == 0);
  CHECK(h_daemon_start(&d, dir, "text", ini) == 0);
  CHECK(h_sim_wait(&sim, "connections", 3, 30000) == 0);
  json_decref(
      h_sim_post(&sim, "/_sim/push", "{\"count\":2,\"text\":\"PAYLOAD-beef-%d\"}"));
  CHECK(h_sim_wait(&sim, "acked", N + 2, 60000) == 0);
  h_kill(&d, SIGTERM);
  CHECK(h_wait(&d, 30000) == 0);
  h_reap(&d);
  snprintf(path, sizeof path, "%s/text.err", dir);
  CHECK_INT(h_count(path, " message.received message_id="), 2);
  CHECK_INT(h_count(path, " message.acked message_id="), 2);
  CHECK_INT(h_count(path, "PAYLOAD-beef"), 0);
  CHECK_INT(h_count(path, "eyJ"), 0);
  CHECK(h_no_sanitizer_report(dir, "json.err"));
  CHECK(h_no_sanitizer_report(dir, "text.err"));

  h_sim_stop(&sim);
  return check_done("integration.logs");
}
