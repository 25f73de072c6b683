/* SPDX-License-Identifier: MIT */
/*
 * The operations endpoint (metrics_listen) of a real daemon with the echo
 * plugin: /healthz is 200 once connected and 503 with a reason when Blaze
 * is gone; /metrics is valid Prometheus text (every sample's family has
 * HELP and TYPE, names carry the blazebot_ prefix, values are numbers) and
 * counts what happened: 12 messages received and processed by category,
 * acknowledged, delivered to echo, replies accepted, the connection state,
 * and the push-to-ack and plugin call histograms.
 * Other paths are 404, other methods refused; a metrics_listen that cannot
 * be bound stops the start with exit 1. Every metric the Grafana dashboard
 * (examples/grafana/blazebot.json) queries is served.
 */
#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "harness.h"

#if !defined(ECHO_SO) || !defined(BLAZEBOT_SOURCE_DIR)
#error "plugins_e2e.cmake sets ECHO_SO and BLAZEBOT_SOURCE_DIR"
#endif

/* The value of the sample "name{labels}" (labels "" for none), or -1. */
static double sample(const char *text, const char *name, const char *labels) {
  char key[300];
  snprintf(key, sizeof key, "\n%s%s%s%s ", name, *labels ? "{" : "", labels,
           *labels ? "}" : "");
  const char *p = strstr(text, key);
  return p ? strtod(p + strlen(key), NULL) : -1;
}

/* Checks the text format line by line; returns the number of problems. */
static int format_problems(const char *text) {
  int bad = 0;
  char typed[200][80];
  int ntyped = 0;
  for (const char *line = text; line && *line;) {
    const char *nl = strchr(line, '\n');
    size_t len = nl ? (size_t)(nl - line) : strlen(line);
    char l[600];
    snprintf(l, sizeof l, "%.*s", (int)(len < sizeof l ? len : sizeof l - 1), line);
    if (!strncmp(l, "# TYPE ", 7)) {
      char name[80], type[20];
      if (sscanf(l + 7, "%79s %19s", name, type) != 2 ||
          (strcmp(type, "counter") && strcmp(type, "gauge") && strcmp(type, "histogram")))
        bad++;
      else if (ntyped < 200)
        snprintf(typed[ntyped++], sizeof typed[0], "%s", name);
    } else if (!strncmp(l, "# HELP ", 7)) {
      /* fine */
    } else if (l[0]) {
      size_t n = 0;
      while (isalnum((unsigned char)l[n]) || l[n] == '_')
        n++;
      int known = 0;
      for (int i = 0; i < ntyped; i++) {
        size_t t = strlen(typed[i]);
        known |= t == n && !strncmp(typed[i], l, n);
        /* a histogram's samples: NAME_bucket, NAME_sum, NAME_count */
        if (t < n && !strncmp(typed[i], l, t))
          known |= (n - t == 7 && !strncmp(l + t, "_bucket", 7)) ||
                   (n - t == 4 && !strncmp(l + t, "_sum", 4)) ||
                   (n - t == 6 && !strncmp(l + t, "_count", 6));
      }
      const char *v = strrchr(l, ' ');
      char *end = NULL;
      if (v)
        strtod(v + 1, &end);
      if (!known || strncmp(l, "blazebot_", 9) || !v || !end || *end ||
          (l[n] != ' ' && l[n] != '{')) {
        fprintf(stderr, "metrics: bad sample line: %s\n", l);
        bad++;
      }
    }
    line = nl ? nl + 1 : NULL;
  }
  return bad;
}

/* Every metric examples/grafana/blazebot.json queries must be served: the
 * number of names it uses that the scrape text lacks. */
static int dashboard_unknown(const char *text) {
  char *dash = h_read(BLAZEBOT_SOURCE_DIR "/examples/grafana/blazebot.json");
  CHECK(dash != NULL);
  int unknown = 0, names = 0;
  for (const char *p = dash; p && (p = strstr(p, "blazebot_")) != NULL;) {
    size_t n = 0;
    while (isalnum((unsigned char)p[n]) || p[n] == '_')
      n++;
    char name[100], key[104];
    snprintf(name, sizeof name, "%.*s", (int)(n < 99 ? n : 99), p);
    snprintf(key, sizeof key, "\n%s", name);
    names++;
    if (!strstr(text, key)) {
      fprintf(stderr, "metrics: the dashboard queries %s, which /metrics lacks\n", name);
      unknown++;
    }
    p += n;
  }
  free(dash);
  CHECK(names > 20);
  return unknown;
}

int main(void) {
  char dir[512], ks[600], ini[700], plugins[600], so[700], extra[1000], path[800];
  snprintf(dir, sizeof dir, "%s", h_dir("metrics"));
  snprintf(plugins, sizeof plugins, "%s/plugins", dir);
  CHECK(mkdir(plugins, 0755) == 0 && chmod(plugins, 0755) == 0);
  snprintf(so, sizeof so, "%s/echo.so", plugins);
  CHECK(h_copy_file(ECHO_SO, so, 0644) == 0);
  CHECK(h_keygen(dir, "ed25519", ks, sizeof ks) == 0);
  struct sim sim;
  if (h_sim_start(&sim, dir, ks, NULL) < 0) {
    CHECK(!"simulator started");
    return check_done("integration.metrics");
  }
  struct proc d;

  /* a port that cannot be bound (the simulator's): exit 1 */
  snprintf(extra, sizeof extra, "plugin_dir = plugins\nmetrics_listen = 127.0.0.1:%d\n",
           sim.port);
  CHECK(h_config(dir, &sim, ks, extra, ini, sizeof ini) == 0);
  CHECK(h_daemon_start(&d, dir, "inuse", ini) == 0);
  CHECK(h_wait(&d, 30000) == 0);
  CHECK_INT(d.status, 1);
  snprintf(path, sizeof path, "%s/inuse.err", dir);
  CHECK(h_contains(path, "cannot listen there"));
  h_reap(&d);

  snprintf(extra, sizeof extra,
           "plugin_dir = plugins\nmetrics_listen = 127.0.0.1:0\nack_transport = rest\n"
           "[plugin.echo]\n");
  CHECK(h_config(dir, &sim, ks, extra, ini, sizeof ini) == 0);
  CHECK(h_daemon_start(&d, dir, "run", ini) == 0);
  snprintf(path, sizeof path, "%s/run.err", dir);
  int port = h_metrics_port(path);
  CHECK(port > 0);
  CHECK(h_sim_wait(&sim, "connections", 1, 30000) == 0);
  struct h_response r;
  /* healthy once connected (poll: the first scrape may come before) */
  int healthy = 0;
  for (int i = 0; i < 50 && !healthy; i++) {
    if (h_http(port, "GET", "/healthz", NULL, NULL, 0, &r) == 0) {
      healthy = r.status == 200 && strstr(r.body, "\"status\":\"ok\"");
      h_response_free(&r);
    }
    if (!healthy)
      h_sleep_ms(100);
  }
  CHECK(healthy);

  json_decref(h_sim_post(&sim, "/_sim/push", "{\"count\":12,\"text\":\"m %d\"}"));
  CHECK(h_sim_wait(&sim, "acked", 12, 60000) == 0);
  CHECK(h_http(port, "GET", "/metrics", NULL, NULL, 0, &r) == 0);
  CHECK_INT(r.status, 200);
  CHECK(r.head && strstr(r.head, "text/plain; version=0.0.4"));
  if (r.body) {
    char *text = malloc(r.len + 2);
    text[0] = '\n'; /* so that sample() finds the first line too */
    memcpy(text + 1, r.body, r.len + 1);
    CHECK_INT(format_problems(r.body), 0);
    CHECK(sample(text, "blazebot_messages_received_total", "category=\"PLAIN_TEXT\"") ==
          12);
    CHECK(sample(text, "blazebot_messages_processed_total", "category=\"PLAIN_TEXT\"") ==
          12);
    CHECK(sample(text, "blazebot_messages_acked_total", "") >= 12);
    CHECK(sample(text, "blazebot_plugin_deliveries_total", "plugin=\"echo\"") == 12);
    CHECK(sample(text, "blazebot_plugin_results_total",
                 "plugin=\"echo\",result=\"pass\"") == 12);
    CHECK(sample(text, "blazebot_replies_accepted_total", "") == 12);
    CHECK(sample(text, "blazebot_connected", "") == 1);
    CHECK(sample(text, "blazebot_plugins_loaded", "") == 1);
    CHECK(sample(text, "blazebot_process_resident_memory_bytes", "") > 1e6);
    CHECK(sample(text, "blazebot_reloads_total", "outcome=\"ok\"") == 0);
    CHECK_INT(dashboard_unknown(text), 0);
    /* acks went over REST (ack_transport = rest): counted by endpoint and status */
    CHECK(sample(text, "blazebot_rest_requests_total",
                 "endpoint=\"POST /acknowledgements\",status=\"200\"") >= 1);
    /* histograms: every acknowledged message timed, every call of echo */
    double acked = sample(text, "blazebot_messages_acked_total", "");
    CHECK(sample(text, "blazebot_push_to_ack_seconds_count", "") == acked);
    CHECK(sample(text, "blazebot_push_to_ack_seconds_bucket", "le=\"+Inf\"") == acked);
    CHECK(sample(text, "blazebot_push_to_ack_seconds_sum", "") > 0);
    CHECK(sample(text, "blazebot_plugin_call_seconds_count", "plugin=\"echo\"") == 12);
    CHECK(sample(text, "blazebot_plugin_call_seconds_bucket",
                 "plugin=\"echo\",le=\"10\"") == 12);
    free(text);
  }
  h_response_free(&r);

  CHECK(h_http(port, "GET", "/nope", NULL, NULL, 0, &r) == 0);
  CHECK_INT(r.status, 404);
  h_response_free(&r);
  CHECK(h_http(port, "POST", "/metrics", NULL, "x", 1, &r) == 0);
  CHECK(r.status >= 400);
  h_response_free(&r);

  /* Blaze gone: 503 with the reason */
  h_sim_stop(&sim);
  int down = 0;
  for (int i = 0; i < 100 && !down; i++) {
    if (h_http(port, "GET", "/healthz", NULL, NULL, 0, &r) == 0) {
      down = r.status == 503 && strstr(r.body, "not connected to Blaze");
      h_response_free(&r);
    }
    if (!down)
      h_sleep_ms(100);
  }
  CHECK(down);
  h_kill(&d, SIGTERM);
  CHECK(h_wait(&d, 30000) == 0);
  CHECK(h_no_sanitizer_report(dir, "run.err"));
  h_reap(&d);
  return check_done("integration.metrics");
}
