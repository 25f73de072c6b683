/* SPDX-License-Identifier: MIT */
/*
 * observe: see observe.h. Reads only: counters the modules keep for their
 * own stats, on the I/O thread (the plugins' and the histograms' through
 * atomics).
 */
#include "observe.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "acks.h"
#include "hist.h"
#include "ingress.h"
#include "metrics.h"
#include "outbox.h"
#include "plugins.h"
#include "rest.h"
#include "session.h"
#include "util.h"

static void counter(struct buf *b, const char *name, const char *help, uint64_t v) {
  metrics_family(b, name, "counter", help);
  metrics_sample(b, name, "", (double)v);
}

static void gauge(struct buf *b, const char *name, const char *help, double v) {
  metrics_family(b, name, "gauge", help);
  metrics_sample(b, name, "", v);
}

/* The resident set size of this process, from /proc/self/statm. */
static double rss_bytes(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "re");
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
      resident = 0;
    fclose(f);
  }
  return (double)resident * (double)sysconf(_SC_PAGESIZE);
}

static void render_latency(void *ud, const char *name, const struct hist *lat) {
  char l[200] = "";
  metrics_label(l, sizeof l, "plugin", name);
  metrics_histogram(ud, "blazebot_plugin_call_seconds", l, lat);
}

/* Every family of GET /metrics (metrics.h), on the I/O thread. */
void observe_metrics(void *ud, struct buf *b) {
  const struct observe_sources *d = ud;
  const struct ingress_counters *ic = ingress_get_counters(d->ingress);
  const struct session_stats *ss = session_get_stats(d->session);
  const struct acks_stats *as = acks_get_stats(d->acks);
  struct outbox_stats os;
  outbox_get_stats(d->outbox, &os);
  char l[256];

  size_t ncat;
  const struct ingress_category *other;
  const struct ingress_category *cats = ingress_categories(d->ingress, &ncat, &other);
  static const char *const cat_names[2] = {"blazebot_messages_received_total",
                                           "blazebot_messages_processed_total"};
  static const char *const cat_help[2] = {
      "Messages pushed by Blaze and decoded, by category.",
      "Messages processed and queued for acknowledgement, by category."};
  for (int k = 0; k < 2; k++) {
    metrics_family(b, cat_names[k], "counter", cat_help[k]);
    for (size_t i = 0; i <= ncat; i++) {
      const struct ingress_category *c = i < ncat ? &cats[i] : other;
      if (!c)
        continue;
      l[0] = 0;
      metrics_label(l, sizeof l, "category", c->name);
      metrics_sample(b, cat_names[k], l, (double)(k ? c->processed : c->received));
    }
  }
  counter(b, "blazebot_messages_acked_total", "Acknowledgements the server confirmed.",
          as->acked);
  counter(b, "blazebot_messages_duplicates_total",
          "Redeliveries of messages already in processing or done (not processed again).",
          ic->duplicates);
  counter(b, "blazebot_messages_malformed_total",
          "Message pushes that could not be decoded.", ic->malformed);
  counter(b, "blazebot_messages_deferred_total",
          "Pushes left unprocessed during a stop, for redelivery after the restart.",
          ic->deferred);
  counter(b, "blazebot_processing_errors_total",
          "Messages whose processing ended with an error.", ic->handler_errors);
  counter(b, "blazebot_backpressure_holds_total",
          "Times the socket was held because processing fell behind.", ic->holds);
  counter(b, "blazebot_ack_batches_total", "Acknowledgement batches confirmed.",
          as->batches);
  counter(b, "blazebot_ack_retries_total", "Acknowledgement batches sent again.",
          as->retries);
  counter(b, "blazebot_replies_sent_total", "Outgoing messages sent (attempts).",
          os.sent);
  counter(b, "blazebot_replies_accepted_total", "Outgoing messages the server accepted.",
          os.accepted);
  counter(b, "blazebot_replies_retried_total",
          "Outgoing messages retried after an error.", os.retried);
  counter(b, "blazebot_replies_dropped_total",
          "Outgoing messages refused for good or given up.", os.dropped);
  counter(b, "blazebot_connects_total", "Blaze connections established.", ss->connects);
  metrics_family(b, "blazebot_link_failures_total", "counter",
                 "Failed connection attempts and links closed, by cause.");
  metrics_sample(b, "blazebot_link_failures_total", "cause=\"connect_error\"",
                 (double)ss->connect_errors);
  metrics_sample(b, "blazebot_link_failures_total", "cause=\"dead_link\"",
                 (double)ss->dead_links);
  metrics_sample(b, "blazebot_link_failures_total", "cause=\"server_error\"",
                 (double)ss->error_frames);
  metrics_family(b, "blazebot_reconnects_total", "counter",
                 "Connection attempts failed and links lost, by cause; each is "
                 "followed by a reconnect.");
  for (int c = 0; c < SESSION_CAUSE_COUNT; c++) {
    char label[48];
    snprintf(label, sizeof label, "cause=\"%s\"", session_cause_names[c]);
    metrics_sample(b, "blazebot_reconnects_total", label, (double)ss->reconnects[c]);
  }
  counter(b, "blazebot_request_timeouts_total",
          "Blaze requests that got no answer in time.", ss->timeouts);
  counter(b, "blazebot_frames_received_total", "WebSocket messages received.",
          ss->frames_in);
  counter(b, "blazebot_bytes_received_total", "Compressed bytes received from Blaze.",
          ss->bytes_in);
  counter(b, "blazebot_bytes_sent_total", "Compressed bytes sent to Blaze.",
          ss->bytes_out);
  size_t nrc;
  const struct rest_count *rc = rest_counts(d->rest, &nrc);
  metrics_family(b, "blazebot_rest_requests_total", "counter",
                 "Mixin REST API requests, by endpoint and HTTP status (0: no answer).");
  for (size_t i = 0; i < nrc; i++) {
    char st[16];
    snprintf(st, sizeof st, "%d", rc[i].status);
    l[0] = 0;
    metrics_label(l, sizeof l, "endpoint", rc[i].endpoint);
    metrics_label(l, sizeof l, "status", st);
    metrics_sample(b, "blazebot_rest_requests_total", l, (double)rc[i].n);
  }
  metrics_family(b, "blazebot_reloads_total", "counter", "Reloads (SIGHUP), by outcome.");
  metrics_sample(b, "blazebot_reloads_total", "outcome=\"ok\"",
                 (double)(d->reload->reloads - d->reload->failed));
  metrics_sample(b, "blazebot_reloads_total", "outcome=\"refused\"",
                 (double)d->reload->failed);

  /* Plugins: from the host's own counters (their JSON; a scrape is rare). */
  struct buf pb = {0};
  if (*d->plugins)
    plugins_stats_json(*d->plugins, &pb);
  json_t *pj = pb.data ? json_loads(pb.data, 0, NULL) : NULL;
  buf_fini(&pb);
  metrics_family(b, "blazebot_plugin_deliveries_total", "counter",
                 "Messages handed to each plugin (RETRY attempts included).");
  const char *pname;
  json_t *pv;
  json_object_foreach(pj, pname, pv) {
    l[0] = 0;
    metrics_label(l, sizeof l, "plugin", pname);
    metrics_sample(b, "blazebot_plugin_deliveries_total", l,
                   (double)json_integer_value(json_object_get(pv, "delivered")));
  }
  metrics_family(b, "blazebot_plugin_results_total", "counter",
                 "Deliveries by plugin and result.");
  static const char *const results[][2] = {{"handled", "handled"},
                                           {"passed", "pass"},
                                           {"retried", "retry"},
                                           {"errors", "error"},
                                           {"gave_up", "gave_up"}};
  json_object_foreach(pj, pname, pv) {
    for (size_t i = 0; i < sizeof results / sizeof results[0]; i++) {
      l[0] = 0;
      metrics_label(l, sizeof l, "plugin", pname);
      metrics_label(l, sizeof l, "result", results[i][1]);
      metrics_sample(b, "blazebot_plugin_results_total", l,
                     (double)json_integer_value(json_object_get(pv, results[i][0])));
    }
  }
  json_decref(pj);

  metrics_family(
      b, "blazebot_push_to_ack_seconds", "histogram",
      "From a message's push to the server's confirmation of its acknowledgement.");
  metrics_histogram(b, "blazebot_push_to_ack_seconds", "", &as->push_to_ack);
  metrics_family(b, "blazebot_plugin_call_seconds", "histogram",
                 "Time spent in a plugin's on_message, by plugin.");
  plugins_latency_foreach(*d->plugins, render_latency, b);

  gauge(b, "blazebot_connected", "1 while the Blaze connection is open.",
        session_is_open(d->session));
  gauge(b, "blazebot_socket_held", "1 while back pressure holds the socket.",
        ingress_held(d->ingress));
  gauge(b, "blazebot_jobs_processing",
        "Messages queued for or running in plugins (held ones included).",
        (double)ingress_processing(d->ingress));
  gauge(b, "blazebot_jobs_inflight", "Messages not yet acknowledged-ready.",
        (double)ingress_inflight(d->ingress));
  gauge(b, "blazebot_outbox_depth", "Outgoing messages not yet settled.",
        (double)outbox_outstanding(d->outbox));
  gauge(b, "blazebot_acks_outstanding", "Acknowledgements queued or not yet confirmed.",
        (double)acks_outstanding(d->acks));
  gauge(b, "blazebot_plugins_loaded", "Plugin instances loaded.",
        (double)plugins_count(*d->plugins));
  gauge(b, "blazebot_plugins_kept_mapped", "Old plugin generations left mapped.",
        (double)plugins_kept_mapped(*d->plugins));
  gauge(b, "blazebot_last_reload_timestamp_seconds",
        "Unix time of the last reload (0: none).", (double)d->reload->last_time);
  gauge(b, "blazebot_last_reload_success", "1 when the last reload refused nothing.",
        d->reload->reloads ? d->reload->last_ok : 1);
  gauge(b, "blazebot_process_resident_memory_bytes", "Resident memory of the daemon.",
        rss_bytes());
}

/* GET /healthz: connected, and acknowledgements confirmed within the last
 * minute whenever some are waiting. */
int observe_health(void *ud, char *reason, size_t cap) {
  const struct observe_sources *d = ud;
  if (*d->stopping) {
    snprintf(reason, cap, "stopping");
    return 0;
  }
  if (!session_is_open(d->session)) {
    snprintf(reason, cap, "not connected to Blaze");
    return 0;
  }
  int64_t age = now_ms() - acks_get_stats(d->acks)->last_ok_ms;
  size_t waiting = acks_outstanding(d->acks);
  if (waiting && age > 60000) {
    snprintf(reason, cap, "%zu acknowledgement(s) waiting; none confirmed for %lld s",
             waiting, (long long)(age / 1000));
    return 0;
  }
  snprintf(reason, cap, "connected; %zu message(s) in processing%s",
           ingress_processing(d->ingress),
           ingress_held(d->ingress) ? " (socket held)" : "");
  return 1;
}
