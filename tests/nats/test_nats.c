/* SPDX-License-Identifier: MIT */
/*
 * The nats plugin end to end: the real daemon and simulator, nats-server
 * (started here on free loopback ports, with a store folder of its own, and
 * killed at the end) and the example worker (examples/nats-worker) as
 * separate processes. One scenario per run (the first argument):
 *   e2e      1 worker answers 3,000 messages, then 3 workers 10,000: every
 *            message is answered exactly once (its derived reply id once in
 *            the simulator, nothing else sent), acknowledged to Blaze, in the
 *            stream once with its reply, and both consumers are drained; the
 *            throughput of both runs is printed (NATS_TEST_WORK_MS: the
 *            workers' simulated work per message, default 2). Then malformed
 *            replies and one Mixin refuses are terminated with a log line each;
 *   worker   3 workers; one is SIGKILLed mid-stream: the messages it held are
 *            redelivered to the other two (they count redeliveries), and all
 *            are answered once;
 *   restart  nats-server is SIGKILLed mid-stream and started again on the same
 *            port and store: nothing lost, nothing answered twice;
 *   daemon   the daemon is SIGKILLed mid-stream and started again: the
 *            messages it had published come again from Blaze and are dropped
 *            by the stream (Nats-Msg-Id): the stream holds each message once;
 *   cluster  a 3-node JetStream cluster on loopback, the stream with 3
 *            replicas; the node leading the stream is SIGKILLed mid-stream;
 *   reload   the plugin's section changes and the daemon gets SIGHUP mid-stream:
 *            the old instance stops, the new one connects, nothing is lost;
 *            then a reload whose new instance cannot start: the running one
 *            goes on, its outbound side (paused for the reload) too;
 *   auth     nats-server secured three ways in turn, messages answered end to
 *            end each time: an auth token (--auth; the plugin's token, never
 *            in the daemon's log, masked by --print-config), TLS with a CA
 *            and a certificate for 127.0.0.1 made here (tls:// URLs and the
 *            plugin's ca_file), and operator mode with a memory resolver
 *            (operator, account and user nkeys and JWTs made here; the
 *            plugin's creds_file). Each time a reload to a setting that
 *            cannot connect first (a wrong token, a tls:// URL to a server
 *            without TLS, another CA, a user of an unknown account): the
 *            plugin logs why, and nothing is acknowledged nor lost meanwhile;
 *   node     the Node worker of examples/nats-worker/node (npm ci of its
 *            locked dependencies first) twice, beside a C worker on the same
 *            consumer; the C worker is SIGKILLed mid-stream and the Node
 *            ones answer the rest (skipped without node and npm, failed
 *            when CI=true).
 * In the disrupted scenarios half the messages are on their way back (their
 * replies being sent) and half on their way in when the fault hits. Every
 * scenario ends with the same checks: all acknowledged to Blaze, every
 * message answered once under its derived id, both consumers drained, the
 * stream holding each message and each reply once. A scenario that stalls
 * prints the simulator's counters, the consumers' state and the logs' ends.
 * Without nats-server the test is skipped (exit 77), except when CI=true:
 * then it fails. NATS_SERVER_BIN names another nats-server binary.
 * One thread; the processes it starts are reaped before it returns.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "base64.h"
#include "check.h"
#include "harness.h"
#include "util.h"

#if !defined(NATS_SO) || !defined(NATS_WORKER) || !defined(NODE_WORKER_DIR)
#error "tests/nats/nats.cmake sets NATS_SO, NATS_WORKER and NODE_WORKER_DIR"
#endif

#define LABEL "echo-worker" /* the worker's default --label */
#define TEXT_PREFIX "echo: "
#define MAX_WORKERS 3
#define MAX_NODES 3

struct node {
  struct proc p;
  int port, cport;
  char sd[600], name[16], url[48];
};

struct world {
  char dir[512], ks[600], ini[700], plugins[600];
  char servers[300]; /* nats://127.0.0.1:P[,...] */
  struct sim sim;
  struct proc d;
  int daemon_runs;
  struct node nodes[MAX_NODES];
  int nnodes;
  char routes[300];
  struct proc workers[MAX_WORKERS];
  int nworkers;
  natsConnection *nc;
  jsCtx *js;
  long expected; /* messages pushed so far */
};

/* How nats-server is secured (the auth scenario; none in the others), and
 * what the test's own connection and the workers present. The daemon's side
 * is its [plugin.nats]. */
static struct {
  const char *server_args[8]; /* more nats-server arguments */
  const char *token, *creds, *ca;
  int tls_urls; /* the daemon's servers as tls:// URLs */
} sec;

static void tail(const char *path, int lines);

static long long clock_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* ---- processes -------------------------------------------------------------------- */

/* An executable: $override when set, else the first `name` on $PATH,
 * /usr/sbin or /usr/local/bin; NULL when none. found: cap 600. */
static const char *find_exe(const char *name, const char *override, char *found) {
  const char *env = getenv(override);
  if (env && *env)
    return access(env, X_OK) == 0 ? env : NULL;
  const char *path = getenv("PATH");
  char buf[4096];
  snprintf(buf, sizeof buf, "%s:/usr/sbin:/usr/local/bin", path ? path : "/usr/bin:/bin");
  for (char *save = NULL, *d = strtok_r(buf, ":", &save); d;
       d = strtok_r(NULL, ":", &save)) {
    snprintf(found, 600, "%s/%s", d, name);
    if (access(found, X_OK) == 0)
      return found;
  }
  return NULL;
}

static const char *nats_server_bin(void) {
  static char found[600];
  return find_exe("nats-server", "NATS_SERVER_BIN", found);
}

/* A free loopback port below the kernel's ephemeral range (where outgoing
 * connections take their local ports), so that a restarted nats-server
 * finds its port still free; from the ephemeral range if none is. */
static int free_port(void) {
  static unsigned seed;
  int lo = 32768;
  FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
  if (f) {
    if (fscanf(f, "%d", &lo) != 1)
      lo = 32768;
    fclose(f);
  }
  if (!seed)
    seed = (unsigned)getpid() ^ (unsigned)clock_ms();
  for (int attempt = 0; attempt < 200; attempt++) {
    int port = attempt < 199 && lo > 12000
                   ? 10000 + (int)(rand_r(&seed) % (unsigned)(lo - 11000))
                   : 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int got = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
      got = ntohs(a.sin_port);
    if (fd >= 0)
      close(fd);
    if (got > 0)
      return got;
  }
  return -1;
}

static int port_open(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
  if (fd >= 0)
    close(fd);
  return ok;
}

/* Starts node i (again, with the same port and store when it ran before). */
static int node_start(struct world *w, int i) {
  struct node *n = &w->nodes[i];
  char port[16], cport[16], tag[32], cluster[64];
  snprintf(port, sizeof port, "%d", n->port);
  snprintf(cport, sizeof cport, "%d", n->cport);
  snprintf(tag, sizeof tag, "nats-%s-%d", n->name, n->p.pid ? 2 : 1);
  snprintf(cluster, sizeof cluster, "nats://127.0.0.1:%d", n->cport);
  const char *argv[32] = {nats_server_bin(),
                          "-js",
                          "-a",
                          "127.0.0.1",
                          "-p",
                          port,
                          "-sd",
                          n->sd,
                          "-n",
                          n->name};
  int k = 10;
  if (w->nnodes > 1) {
    argv[k++] = "--cluster_name";
    argv[k++] = "blazebot";
    argv[k++] = "--cluster";
    argv[k++] = cluster;
    argv[k++] = "--routes";
    argv[k++] = w->routes;
  }
  for (int a = 0; a < 8 && sec.server_args[a]; a++)
    argv[k++] = sec.server_args[a];
  argv[k] = NULL;
  if (h_spawn(&n->p, w->dir, tag, argv) < 0)
    return -1;
  for (long long end = clock_ms() + 20000; clock_ms() < end; h_sleep_ms(50))
    if (port_open(n->port))
      return 0;
  fprintf(stderr, "nats-server %s did not open port %d\n", n->name, n->port);
  tail(n->p.err, 10);
  return -1;
}

static int nodes_start(struct world *w, int count) {
  w->nnodes = count;
  w->servers[0] = w->routes[0] = 0;
  for (int i = 0; i < count; i++) {
    struct node *n = &w->nodes[i];
    memset(n, 0, sizeof *n);
    n->port = free_port();
    n->cport = free_port();
    char sd[sizeof n->sd]; /* not straight into n: GCC's -Wrestrict sees w twice */
    snprintf(n->name, sizeof n->name, "n%d", i + 1);
    snprintf(sd, sizeof sd, "%s/store-n%d", w->dir, i + 1);
    memcpy(n->sd, sd, sizeof sd);
    snprintf(n->url, sizeof n->url, "nats://127.0.0.1:%d", n->port);
    if (n->port < 0 || n->cport < 0 || mkdir(n->sd, 0700) < 0)
      return -1;
    char one[80];
    snprintf(one, sizeof one, "%snats://127.0.0.1:%d", i ? "," : "", n->port);
    strncat(w->servers, one, sizeof w->servers - strlen(w->servers) - 1);
    snprintf(one, sizeof one, "%snats://127.0.0.1:%d", i ? "," : "", n->cport);
    strncat(w->routes, one, sizeof w->routes - strlen(w->routes) - 1);
  }
  for (int i = 0; i < count; i++)
    if (node_start(w, i) < 0)
      return -1;
  return 0;
}

/* delay_ms: simulated work per message; ack_wait_s: the consumer's AckWait. */
static int worker_start(struct world *w, int delay_ms) {
  int i = w->nworkers;
  char tag[32], delay[16], out[700];
  snprintf(tag, sizeof tag, "worker%d", i + 1);
  snprintf(delay, sizeof delay, "%d", delay_ms);
  const char *argv[16] = {NATS_WORKER,     "--servers", w->servers,   "--ack-wait-s", "3",
                          "--text-prefix", TEXT_PREFIX, "--delay-ms", delay};
  int k = 9;
  const char *opt[][2] = {
      {"--token", sec.token}, {"--creds", sec.creds}, {"--ca-file", sec.ca}};
  for (int a = 0; a < 3; a++)
    if (opt[a][1]) {
      argv[k++] = opt[a][0];
      argv[k++] = opt[a][1];
    }
  argv[k] = NULL;
  if (h_spawn(&w->workers[i], w->dir, tag, argv) < 0)
    return -1;
  w->nworkers++;
  snprintf(out, sizeof out, "%s/%s.out", w->dir, tag);
  return h_wait_count(out, "ready", 1, 60000);
}

/* ---- the Node worker (examples/nats-worker/node) ----------------------------------- */

/* node and npm, from $NODE_BIN / $NPM_BIN or the PATH. */
static char node_bin[600], npm_bin[600];

static int node_found(void) {
  return find_exe("node", "NODE_BIN", node_bin) && find_exe("npm", "NPM_BIN", npm_bin);
}

/* Copies the Node worker into w->dir/node and installs its locked
 * dependencies there (npm ci: the exact versions of package-lock.json). */
static int node_setup(struct world *w) {
  static const char *files[] = {"worker.mjs", "package.json", "package-lock.json"};
  char dir[700], from[700], to[800];
  snprintf(dir, sizeof dir, "%s/node", w->dir);
  if (mkdir(dir, 0755) < 0)
    return -1;
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    snprintf(from, sizeof from, "%s/%s", NODE_WORKER_DIR, files[i]);
    snprintf(to, sizeof to, "%s/%s", dir, files[i]);
    if (h_copy_file(from, to, 0644) < 0)
      return -1;
  }
  const char *argv[] = {npm_bin,      "ci",        "--prefix",         dir,
                        "--no-audit", "--no-fund", "--prefer-offline", "--loglevel",
                        "warn",       NULL};
  struct proc npm;
  if (h_spawn(&npm, w->dir, "npm-ci", argv) < 0)
    return -1;
  int ok = h_wait(&npm, 300000) == 0 && npm.status == 0;
  if (!ok) {
    fprintf(stderr, "npm ci of the Node worker failed:\n");
    tail(npm.err, 20);
  }
  h_reap(&npm);
  return ok ? 0 : -1;
}

/* One more worker: the Node one, on the same consumer as the C workers. */
static int node_worker_start(struct world *w) {
  int i = w->nworkers;
  char tag[32], url[340], script[700], out[700];
  snprintf(tag, sizeof tag, "worker%d-node", i + 1);
  snprintf(url, sizeof url, "NATS_URL=%s", w->servers);
  snprintf(script, sizeof script, "%s/node/worker.mjs", w->dir);
  const char *argv[] = {"/usr/bin/env", url,    "WORKER_TEXT_PREFIX=" TEXT_PREFIX,
                        node_bin,       script, NULL};
  if (h_spawn(&w->workers[i], w->dir, tag, argv) < 0)
    return -1;
  w->nworkers++;
  snprintf(out, sizeof out, "%s/%s.out", w->dir, tag);
  return h_wait_count(out, "ready", 1, 60000);
}

/* Stops the running workers with SIGTERM: the sum of the redeliveries they
 * report, or -1 when one did not stop cleanly. */
static long workers_stop(struct world *w) {
  long redelivered = 0;
  for (int i = 0; i < w->nworkers; i++) {
    if (w->workers[i].exited)
      continue;
    h_kill(&w->workers[i], SIGTERM);
    if (h_wait(&w->workers[i], 20000) < 0 || w->workers[i].status != 0) {
      h_reap(&w->workers[i]);
      redelivered = -1;
      continue;
    }
    char *s = h_read(w->workers[i].out);
    const char *r = s ? strstr(s, "redelivered ") : NULL;
    if (r && redelivered >= 0)
      redelivered += atol(r + 12);
    free(s);
  }
  return redelivered;
}

/* ---- the daemon ----------------------------------------------------------------------
 */

static int write_config(struct world *w, const char *extra_plugin) {
  char extra[2000], servers[sizeof w->servers + 16] = "";
  for (const char *p = w->servers; *p && strlen(servers) + 8 < sizeof servers;) {
    size_t n = strlen(servers);
    if (sec.tls_urls && !strncmp(p, "nats://", 7)) { /* tls:// instead */
      memcpy(servers + n, "tls://", 7);
      p += 7;
    } else {
      servers[n] = *p++;
      servers[n + 1] = 0;
    }
  }
  snprintf(extra, sizeof extra,
           "plugin_dir = plugins\n"
           "[plugin.nats]\nservers = %s\nreplicas = %d\nout_ack_wait = 5s\n%s",
           servers, w->nnodes, extra_plugin ? extra_plugin : "");
  return h_config(w->dir, &w->sim, w->ks, extra, w->ini, sizeof w->ini);
}

static int daemon_start(struct world *w) {
  char tag[32];
  snprintf(tag, sizeof tag, "daemon%d", ++w->daemon_runs);
  return h_daemon_start(&w->d, w->dir, tag, w->ini);
}

/* SIGTERM: a clean exit, the plugin's own stop line, no sanitizer report. */
static void daemon_stop(struct world *w) {
  h_kill(&w->d, SIGTERM);
  CHECK(h_wait(&w->d, 60000) == 0);
  CHECK_INT(w->d.status, 0);
  CHECK(h_contains(w->d.err, "plugin nats: stopped:"));
  char tag[32];
  snprintf(tag, sizeof tag, "daemon%d.err", w->daemon_runs);
  CHECK(h_no_sanitizer_report(w->dir, tag));
  h_reap(&w->d);
}

/* ---- JetStream, seen from the test ---------------------------------------------------
 */

static int js_connect(struct world *w) {
  natsOptions *o = NULL;
  const char *urls[MAX_NODES];
  for (int i = 0; i < w->nnodes; i++)
    urls[i] = w->nodes[i].url;
  natsStatus s = natsOptions_Create(&o);
  if (s == NATS_OK)
    s = natsOptions_SetServers(o, urls, w->nnodes);
  if (s == NATS_OK)
    s = natsOptions_SetMaxReconnect(o, -1);
  if (s == NATS_OK)
    s = natsOptions_SetReconnectWait(o, 200);
  if (s == NATS_OK && sec.token)
    s = natsOptions_SetToken(o, sec.token);
  if (s == NATS_OK && sec.creds)
    s = natsOptions_SetUserCredentialsFromFiles(o, sec.creds, NULL);
  if (s == NATS_OK && sec.ca)
    s = natsOptions_SetSecure(o, true);
  if (s == NATS_OK && sec.ca)
    s = natsOptions_LoadCATrustedCertificates(o, sec.ca);
  /* A cluster node may take a moment to accept clients after its port opened. */
  long long end = clock_ms() + 30000;
  while (s == NATS_OK) {
    s = natsConnection_Connect(&w->nc, o);
    if (s == NATS_OK || clock_ms() > end)
      break;
    s = NATS_OK;
    h_sleep_ms(200);
  }
  natsOptions_Destroy(o);
  if (s == NATS_OK)
    s = natsConnection_JetStream(&w->js, w->nc, NULL);
  if (s != NATS_OK)
    fprintf(stderr, "test client: %s\n", nats_GetLastError(NULL));
  return s == NATS_OK ? 0 : -1;
}

/* The stream's message count, or -1. */
static long stream_msgs(struct world *w, char *leader, size_t cap) {
  jsStreamInfo *si = NULL;
  if (js_GetStreamInfo(&si, w->js, "BLAZEBOT", NULL, NULL) != NATS_OK)
    return -1;
  long n = (long)si->State.Msgs;
  if (leader)
    snprintf(leader, cap, "%s",
             si->Cluster && si->Cluster->Leader ? si->Cluster->Leader : "");
  jsStreamInfo_Destroy(si);
  return n;
}

static int wait_stream(struct world *w, int timeout_ms) {
  for (long long end = clock_ms() + timeout_ms; clock_ms() < end; h_sleep_ms(100))
    if (stream_msgs(w, NULL, 0) >= 0)
      return 0;
  fprintf(stderr, "the stream BLAZEBOT was not made\n");
  return -1;
}

/* Waits until consumer has nothing pending nor unacknowledged. */
static int consumer_drained(struct world *w, const char *consumer, int timeout_ms) {
  long long pending = -1, ackp = -1;
  for (long long end = clock_ms() + timeout_ms; clock_ms() < end; h_sleep_ms(100)) {
    jsConsumerInfo *ci = NULL;
    if (js_GetConsumerInfo(&ci, w->js, "BLAZEBOT", consumer, NULL, NULL) == NATS_OK) {
      pending = (long long)ci->NumPending;
      ackp = (long long)ci->NumAckPending;
      jsConsumerInfo_Destroy(ci);
      if (!pending && !ackp)
        return 0;
    }
  }
  fprintf(stderr, "consumer %s not drained: %lld pending, %lld unacknowledged\n",
          consumer, pending, ackp);
  return -1;
}

/* ---- the simulator
 * ---------------------------------------------------------------------- */

static long sim_stat(struct world *w, const char *key) {
  json_t *st = h_sim_stats(&w->sim);
  long v = h_stat(st, key);
  json_decref(st);
  return v;
}

static void tail(const char *path, int lines) {
  char *s = h_read(path);
  if (!s)
    return;
  size_t n = strlen(s);
  const char *p = s + n;
  while (p > s && lines >= 0)
    if (*--p == '\n')
      lines--;
  fprintf(stderr, "---- %s (end)\n%s\n", path, p);
  free(s);
}

static void consumer_report(struct world *w, const char *consumer) {
  jsConsumerInfo *ci = NULL;
  if (js_GetConsumerInfo(&ci, w->js, "BLAZEBOT", consumer, NULL, NULL) != NATS_OK) {
    fprintf(stderr, "consumer %s: no info (%s)\n", consumer, nats_GetLastError(NULL));
    return;
  }
  fprintf(stderr, "consumer %s: %llu pending, %lld unacknowledged, %lld redelivered\n",
          consumer, (unsigned long long)ci->NumPending, (long long)ci->NumAckPending,
          (long long)ci->NumRedelivered);
  jsConsumerInfo_Destroy(ci);
}

/* What a stuck scenario looks like, on stderr. */
static void diagnose(struct world *w) {
  json_t *st = h_sim_stats(&w->sim);
  char *s = st ? json_dumps(st, JSON_COMPACT) : NULL;
  fprintf(stderr, "simulator: %s\nstream: %ld messages\n", s ? s : "?",
          stream_msgs(w, NULL, 0));
  free(s);
  json_decref(st);
  consumer_report(w, "blazebot-worker");
  consumer_report(w, "blazebot-out");
  tail(w->d.err, 30);
  for (int i = 0; i < w->nnodes; i++)
    tail(w->nodes[i].p.err, 10);
  for (int i = 0; i < w->nworkers; i++)
    tail(w->workers[i].err, 5);
}

static void push(struct world *w, long n) {
  char body[200];
  snprintf(body, sizeof body, "{\"count\":%ld,\"text\":\"hello %%d\"}", n);
  json_decref(h_sim_post(&w->sim, "/_sim/push", body));
  w->expected += n;
}

/* Waits until the simulator accepted `created` messages; returns the time
 * it took in ms, or -1. */
static long long wait_created(struct world *w, long created, int timeout_ms) {
  long long t0 = clock_ms(), end = t0 + timeout_ms;
  long last = -1;
  while (clock_ms() < end) {
    last = sim_stat(w, "created");
    if (last >= created)
      return clock_ms() - t0;
    h_sleep_ms(50);
  }
  fprintf(stderr, "timed out waiting for %ld replies (last %ld)\n", created, last);
  diagnose(w);
  return -1;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Every message pushed was answered exactly once, under the reply id the
 * worker derives, with the worker's text, and acknowledged; nothing else
 * was sent (plus `extra` messages the test sent itself). */
static void check_exactly_once(struct world *w, long extra) {
  json_t *msgs = h_sim_get(&w->sim, "/_sim/messages");
  json_t *sent = h_sim_get(&w->sim, "/_sim/sent");
  CHECK_INT(json_array_size(msgs), w->expected);
  CHECK_INT(json_array_size(sent), w->expected + extra);
  size_t ns = json_array_size(sent);
  const char **ids = calloc(ns + 1, sizeof *ids);
  size_t i;
  json_t *e;
  long bad_text = 0;
  json_array_foreach(sent, i, e) {
    ids[i] = json_string_value(json_object_get(e, "message_id"));
    if (!ids[i])
      ids[i] = "";
    const char *t = json_string_value(json_object_get(e, "text"));
    bad_text += !t || strncmp(t, TEXT_PREFIX "hello ", strlen(TEXT_PREFIX "hello "));
  }
  qsort(ids, ns, sizeof *ids, cmp_str);
  long missing = 0, unacked = 0, twice = 0;
  json_array_foreach(msgs, i, e) {
    const char *id = json_string_value(json_object_get(e, "message_id"));
    char rid[UUID_STR_LEN];
    if (!id || uuid_derive(id, LABEL, 1, rid) < 0) {
      missing++;
      continue;
    }
    const char *key = rid;
    missing += !bsearch(&key, ids, ns, sizeof *ids, cmp_str);
    unacked += !json_is_true(json_object_get(e, "acked"));
    twice += json_integer_value(json_object_get(e, "ack_count")) > 1 &&
             json_integer_value(json_object_get(e, "push_count")) <= 1;
  }
  CHECK_INT(missing, 0);
  CHECK_INT(unacked, 0);
  CHECK_INT(twice, 0);
  CHECK_INT(bad_text, extra);
  free(ids);
  json_decref(msgs);
  json_decref(sent);
}

/* The end of every scenario: all acked to Blaze, both consumers drained, the
 * stream holding each message and each reply exactly once. */
static void check_settled(struct world *w) {
  CHECK(h_sim_wait(&w->sim, "acked", w->expected, 60000) == 0);
  CHECK(consumer_drained(w, "blazebot-worker", 60000) == 0);
  CHECK(consumer_drained(w, "blazebot-out", 60000) == 0);
  check_exactly_once(w, 0);
  CHECK_INT(stream_msgs(w, NULL, 0), 2 * w->expected);
}

/* ---- scenarios
 * --------------------------------------------------------------------------- */

static int world_start(struct world *w, const char *tag, int nodes, int workers,
                       int delay_ms, const char *extra_plugin) {
  memset(w, 0, sizeof *w);
  const char *d = h_dir(tag);
  if (!d)
    return -1;
  snprintf(w->dir, sizeof w->dir, "%s", d);
  snprintf(w->plugins, sizeof w->plugins, "%s/plugins", w->dir);
  char so[700];
  snprintf(so, sizeof so, "%s/nats.so", w->plugins);
  if (mkdir(w->plugins, 0755) < 0 || chmod(w->plugins, 0755) < 0 ||
      h_copy_file(NATS_SO, so, 0644) < 0)
    return -1;
  if (nodes_start(w, nodes) < 0) {
    CHECK(!"nats-server started");
    return -1;
  }
  if (h_keygen(w->dir, "ed25519", w->ks, sizeof w->ks) < 0 ||
      h_sim_start(&w->sim, w->dir, w->ks, NULL) < 0)
    return -1;
  if (write_config(w, extra_plugin) < 0 || daemon_start(w) < 0)
    return -1;
  CHECK(h_sim_wait(&w->sim, "connections", 1, 30000) == 0);
  if (js_connect(w) < 0 || wait_stream(w, 60000) < 0) {
    CHECK(!"the plugin made the stream");
    return -1;
  }
  for (int i = 0; i < workers; i++)
    if (worker_start(w, delay_ms) < 0) {
      CHECK(!"a worker started");
      return -1;
    }
  return 0;
}

static void world_stop(struct world *w) {
  if (w->d.pid && !w->d.exited)
    h_reap(&w->d);
  for (int i = 0; i < w->nworkers; i++)
    h_reap(&w->workers[i]);
  jsCtx_Destroy(w->js);
  natsConnection_Destroy(w->nc);
  w->js = NULL;
  w->nc = NULL;
  for (int i = 0; i < w->nnodes; i++)
    h_reap(&w->nodes[i].p);
  if (w->sim.p.pid)
    h_sim_stop(&w->sim);
}

/* The simulated work per message of the throughput runs (ms). */
static int work_ms(void) {
  const char *v = getenv("NATS_TEST_WORK_MS");
  return v ? atoi(v) : 2;
}

static void scenario_e2e(void) {
  struct world w;
  int delay = work_ms();
  if (world_start(&w, "nats_e2e", 1, 1, delay, NULL) == 0) {
    /* 1 worker */
    long n1 = 3000, n3 = 10000;
    push(&w, n1);
    long long t1 = wait_created(&w, w.expected, 150000);
    CHECK(t1 > 0);
    CHECK(consumer_drained(&w, "blazebot-worker", 30000) == 0);
    /* 3 workers */
    CHECK(worker_start(&w, delay) == 0);
    CHECK(worker_start(&w, delay) == 0);
    push(&w, n3);
    long long t3 = wait_created(&w, w.expected, 150000);
    CHECK(t3 > 0);
    check_settled(&w);
    printf("nats.e2e: %d ms of work per message, each message in and out of JetStream\n",
           delay);
    printf("nats.e2e: 1 worker:  %ld messages answered in %.2f s: %.0f msg/s\n", n1,
           t1 / 1000.0, t1 > 0 ? n1 * 1000.0 / t1 : 0);
    printf("nats.e2e: 3 workers: %ld messages answered in %.2f s: %.0f msg/s\n", n3,
           t3 / 1000.0, t3 > 0 ? n3 * 1000.0 / t3 : 0);

    /* Replies the plugin cannot send: terminated, each with a log line. */
    const char *bad[] = {"not json", "{\"conversation_id\":\"x\"}",
                         "{\"conversation_id\":\"6f8a3c1e-2b7d-4e59-9c0a-b1a2e0b0f00d\","
                         "\"message_id\":\"6f8a3c1e-2b7d-4e59-9c0a-b1a2e0b0f00e\",\"data_"
                         "base64\":\"***\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
      CHECK(js_Publish(NULL, w.js, "blazebot.out", bad[i], (int)strlen(bad[i]), NULL,
                       NULL) == NATS_OK);
    json_decref(h_sim_post(&w.sim, "/_sim/fault", "{\"fault\":\"create_error:403\"}"));
    const char *refused = "{\"conversation_id\":\"6f8a3c1e-2b7d-4e59-9c0a-b1a2e0b0f00d\","
                          "\"message_id\":\"6f8a3c1e-2b7d-4e59-9c0a-b1a2e0b0f0ff\","
                          "\"category\":\"PLAIN_TEXT\",\"data_base64\":\"aGk\"}";
    CHECK(js_Publish(NULL, w.js, "blazebot.out", refused, (int)strlen(refused), NULL,
                     NULL) == NATS_OK);
    CHECK(h_wait_count(w.d.err, "malformed", 3, 30000) == 0);
    CHECK(h_wait_count(w.d.err, "refused by Mixin (code 403): terminated", 1, 30000) ==
          0);
    CHECK(h_contains(w.d.err, "data_base64 is not base64"));
    CHECK(h_contains(w.d.err, "conversation_id is missing or not a UUID"));
    CHECK(consumer_drained(&w, "blazebot-out", 30000) == 0);
    CHECK_INT(sim_stat(&w, "created"), w.expected);

    CHECK(workers_stop(&w) >= 0);
    daemon_stop(&w);
    /* The plugin published and sent each message at least once; more only
     * when a machine this slow (sanitizers, a loaded CI box) let a publish
     * time out or an AckWait pass, and then under the same ids (the checks
     * above: each message answered once). The daemon itself may send a reply
     * again under its id when back pressure moves it to REST. */
    char *log = h_read(w.d.err);
    long n_published = -1, n_failures = -1, n_sent = -1, n_refused = -1, n_malformed = -1;
    int found = 0;
    for (const char *p = log; p && (p = strstr(p, "stopped: ")); p++) /* the last one */
      found |= sscanf(p,
                      "stopped: %ld published, %ld publish failures; %ld sent, %ld "
                      "refused, %ld malformed",
                      &n_published, &n_failures, &n_sent, &n_refused, &n_malformed) == 5;
    CHECK(found);
    free(log);
    CHECK(n_published >= w.expected);
    CHECK(n_sent >= w.expected);
    CHECK_INT(n_refused, 1);
    CHECK_INT(n_malformed, 3);
    if (n_published != w.expected || n_sent != w.expected || n_failures != 0)
      fprintf(stderr,
              "nats.e2e: %ld published, %ld failures, %ld sent for %ld messages "
              "(redeliveries on a slow machine)\n",
              n_published, n_failures, n_sent, w.expected);
  }
  world_stop(&w);
}

/* Pushes n/2 and waits for `at` replies, so that replies are on their way
 * back; pushes n/2 more, so that messages are on their way in; runs
 * disrupt() 150 ms later; then checks that everything settles. */
static void run_disrupted(struct world *w, long n, long at,
                          void (*disrupt)(struct world *w)) {
  push(w, n / 2);
  CHECK(wait_created(w, at, 120000) >= 0);
  push(w, n - n / 2);
  h_sleep_ms(150);
  disrupt(w);
  CHECK(wait_created(w, w->expected, 170000) >= 0);
  check_settled(w);
}

static void kill_worker(struct world *w) {
  h_kill(&w->workers[0], SIGKILL);
  CHECK(h_wait(&w->workers[0], 10000) == 0);
}

static void scenario_worker(void) {
  struct world w;
  if (world_start(&w, "nats_worker", 1, 3, 2, NULL) == 0) {
    run_disrupted(&w, 6000, 1000, kill_worker);
    long redelivered = workers_stop(&w);
    printf("nats.worker: %ld messages redelivered to the surviving workers\n",
           redelivered);
    CHECK(redelivered > 0);
    daemon_stop(&w);
  }
  world_stop(&w);
}

static void restart_server(struct world *w) {
  h_kill(&w->nodes[0].p, SIGKILL);
  CHECK(h_wait(&w->nodes[0].p, 10000) == 0);
  h_sleep_ms(1500);
  CHECK(node_start(w, 0) == 0);
}

static void scenario_restart(void) {
  struct world w;
  if (world_start(&w, "nats_restart", 1, 3, 0, NULL) == 0) {
    run_disrupted(&w, 6000, 1500, restart_server);
    CHECK(h_contains(w.d.err, "lost the connection to NATS"));
    CHECK(h_contains(w.d.err, "will come again")); /* the messages waited */
    CHECK(workers_stop(&w) >= 0);
    daemon_stop(&w);
  }
  world_stop(&w);
}

static void restart_daemon(struct world *w) {
  h_kill(&w->d, SIGKILL);
  CHECK(h_wait(&w->d, 10000) == 0);
  h_reap(&w->d);
  CHECK(daemon_start(w) == 0);
}

static void scenario_daemon(void) {
  struct world w;
  if (world_start(&w, "nats_daemon", 1, 3, 0, NULL) == 0) {
    run_disrupted(&w, 6000, 1500, restart_daemon);
    /* The messages the first daemon had published came again (they were
     * not acknowledged to Blaze yet) and were dropped by the stream. */
    json_t *msgs = h_sim_get(&w.sim, "/_sim/messages");
    size_t i;
    json_t *e;
    long again = 0;
    json_array_foreach(msgs, i, e) again +=
        json_integer_value(json_object_get(e, "push_count")) > 1;
    json_decref(msgs);
    printf("nats.daemon: %ld messages delivered again after the crash\n", again);
    CHECK(again > 0);
    CHECK(workers_stop(&w) >= 0);
    daemon_stop(&w);
  }
  world_stop(&w);
}

static void kill_leader(struct world *w) {
  char leader[32] = "";
  stream_msgs(w, leader, sizeof leader);
  int victim = 0;
  for (int i = 0; i < w->nnodes; i++)
    if (!strcmp(w->nodes[i].name, leader))
      victim = i;
  printf("nats.cluster: killing %s (stream leader: %s)\n", w->nodes[victim].name,
         leader[0] ? leader : "?");
  h_kill(&w->nodes[victim].p, SIGKILL);
  CHECK(h_wait(&w->nodes[victim].p, 10000) == 0);
}

static void scenario_cluster(void) {
  struct world w;
  if (world_start(&w, "nats_cluster", 3, 3, 0, NULL) == 0) {
    char leader[32] = "";
    for (long long end = clock_ms() + 30000; !leader[0] && clock_ms() < end;
         h_sleep_ms(200))
      stream_msgs(&w, leader, sizeof leader);
    CHECK(leader[0] != 0); /* the stream's replicas elected a leader */
    run_disrupted(&w, 6000, 1500, kill_leader);
    CHECK(workers_stop(&w) >= 0);
    daemon_stop(&w);
  }
  world_stop(&w);
}

static void reload_daemon(struct world *w) {
  CHECK(write_config(w, "publish_timeout_ms = 6000\n") == 0);
  h_kill(&w->d, SIGHUP);
}

static void scenario_reload(void) {
  struct world w;
  if (world_start(&w, "nats_reload", 1, 3, 0, NULL) == 0) {
    run_disrupted(&w, 6000, 1500, reload_daemon);
    /* the old instance stopped; the new one runs until the end */
    CHECK(h_wait_count(w.d.err, "plugin nats: stopped:", 1, 30000) == 0);
    CHECK_INT(h_count(w.d.err, "plugin nats: stopped:"), 1);
    CHECK(h_count(w.d.err, "plugin nats: bridging to") == 2);
    /* A reload whose new instance cannot start: the running one goes on
     * (its outbound side, paused for the reload, resumes). */
    CHECK(write_config(&w, "max_age = forever\n") == 0);
    h_kill(&w.d, SIGHUP);
    CHECK(h_wait_count(w.d.err, "'forever' is not a duration", 1, 30000) == 0);
    push(&w, 1000);
    CHECK(wait_created(&w, w.expected, 60000) >= 0);
    check_settled(&w);
    CHECK_INT(h_count(w.d.err, "plugin nats: stopped:"), 1);
    CHECK(workers_stop(&w) >= 0);
    daemon_stop(&w);
    CHECK_INT(h_count(w.d.err, "plugin nats: stopped:"), 2);
  }
  world_stop(&w);
}

/* The worker of the README's Node section, next to a C worker on the same
 * consumer: a worker in another language, from the contract alone. */
static void scenario_node(void) {
  if (!node_found()) {
    const char *ci = getenv("CI");
    CHECK(!ci || strcmp(ci, "true")); /* CI installs Node.js and npm */
    fprintf(stderr, "nats.node: node or npm not found: skipped\n");
    exit(ci && !strcmp(ci, "true") ? check_done("nats.node") : 77);
  }
  struct world w;
  if (world_start(&w, "nats_node", 1, 1, 0, NULL) == 0) {
    CHECK(node_setup(&w) == 0);
    CHECK(node_worker_start(&w) == 0);
    CHECK(node_worker_start(&w) == 0);
    /* kill the C worker half-way: the Node ones take over its messages */
    run_disrupted(&w, 3000, 500, kill_worker);
    long by_node = 0;
    for (int i = 1; i < w.nworkers; i++) {
      h_kill(&w.workers[i], SIGTERM);
      CHECK(h_wait(&w.workers[i], 20000) == 0);
      CHECK_INT(w.workers[i].status, 0);
      char *o = h_read(w.workers[i].out);
      const char *h = o ? strstr(o, "handled ") : NULL;
      CHECK(h != NULL);
      if (h)
        by_node += atol(h + 8);
      free(o);
    }
    printf("nats.node: the Node workers answered %ld of %ld messages\n", by_node,
           w.expected);
    CHECK(by_node >= w.expected / 2);
    daemon_stop(&w);
  }
  world_stop(&w);
}

/* ---- auth: a token, TLS with ca_file, creds in operator mode --------------------------
 */

/* Certificates and keys, made here with OpenSSL: EC P-256. */
static X509 *cert_make(const char *cn, EVP_PKEY *key, X509 *ca, EVP_PKEY *ca_key,
                       int is_ca) {
  X509 *x = X509_new();
  unsigned char serial[8];
  BIGNUM *bn = NULL;
  int ok = x && RAND_bytes(serial, sizeof serial) == 1;
  serial[0] &= 0x7f;
  if (ok)
    ok = (bn = BN_bin2bn(serial, sizeof serial, NULL)) &&
         BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) && X509_set_version(x, 2) &&
         X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
         X509_gmtime_adj(X509_getm_notAfter(x), 86400) && X509_set_pubkey(x, key) &&
         X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                    (const unsigned char *)cn, -1, -1, 0) &&
         X509_set_issuer_name(x, X509_get_subject_name(ca ? ca : x));
  BN_free(bn);
  struct {
    int nid;
    const char *value;
  } ext[] = {{NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE"},
             {NID_key_usage, is_ca ? "critical,keyCertSign,cRLSign"
                                   : "critical,digitalSignature,keyEncipherment"},
             {NID_subject_key_identifier, "hash"},
             {NID_authority_key_identifier, "keyid:always"},
             {NID_subject_alt_name, "IP:127.0.0.1"},
             {NID_ext_key_usage, "serverAuth"}};
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, ca ? ca : x, x, NULL, NULL, 0);
  for (size_t i = 0; ok && i < (is_ca ? 3 : sizeof ext / sizeof ext[0]); i++) {
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, ext[i].nid, ext[i].value);
    ok = e && X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
  }
  if (!ok || !X509_sign(x, ca_key ? ca_key : key, EVP_sha256())) {
    X509_free(x);
    return NULL;
  }
  return x;
}

static int pem_write(const char *path, X509 *x, EVP_PKEY *key) {
  FILE *f = fopen(path, "w");
  int ok = f && (x ? PEM_write_X509(f, x)
                   : PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL));
  if (f && fclose(f) != 0)
    ok = 0;
  return ok ? 0 : -1;
}

/* dir/ca.pem (a CA), dir/server-cert.pem and dir/server-key.pem (signed by
 * it, for 127.0.0.1: an IP SAN) and dir/other-ca.pem (a CA that did not
 * sign it). */
static int tls_files(const char *dir) {
  EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *key = EVP_EC_gen("P-256"),
           *other_key = EVP_EC_gen("P-256");
  X509 *ca = NULL, *cert = NULL, *other = NULL;
  char path[700];
  int rc = -1;
  if (ca_key && key && other_key &&
      (ca = cert_make("blazebot test CA", ca_key, NULL, NULL, 1)) &&
      (cert = cert_make("127.0.0.1", key, ca, ca_key, 0)) &&
      (other = cert_make("blazebot other CA", other_key, NULL, NULL, 1))) {
    rc = 0;
    snprintf(path, sizeof path, "%s/ca.pem", dir);
    rc |= pem_write(path, ca, NULL);
    snprintf(path, sizeof path, "%s/server-cert.pem", dir);
    rc |= pem_write(path, cert, NULL);
    snprintf(path, sizeof path, "%s/server-key.pem", dir);
    rc |= pem_write(path, NULL, key);
    snprintf(path, sizeof path, "%s/other-ca.pem", dir);
    rc |= pem_write(path, other, NULL);
  }
  if (rc < 0)
    fprintf(stderr, "making the TLS certificates failed: %s\n",
            ERR_error_string(ERR_get_error(), NULL));
  X509_free(ca);
  X509_free(cert);
  X509_free(other);
  EVP_PKEY_free(ca_key);
  EVP_PKEY_free(key);
  EVP_PKEY_free(other_key);
  return rc;
}

/* nkeys: an ed25519 key pair; its public key as the prefix byte, the 32
 * bytes and their CRC-16/XMODEM (little endian) in base32 without padding,
 * its seed likewise behind two bytes: 'S' and the prefix. */
#define NKEY_OPERATOR (14 << 3) /* O... */
#define NKEY_ACCOUNT 0          /* A... */
#define NKEY_USER (20 << 3)     /* U... */
#define NKEY_SEED (18 << 3)     /* S... */

struct nkey {
  EVP_PKEY *k;
  char pub[64];  /* 56 characters */
  char seed[64]; /* 58 characters */
};

static void base32(const unsigned char *in, size_t n, char *out) {
  static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    acc = acc << 8 | in[i];
    for (bits += 8; bits >= 5; bits -= 5)
      *out++ = a[acc >> (bits - 5) & 31];
  }
  if (bits)
    *out++ = a[acc << (5 - bits) & 31];
  *out = 0;
}

static uint16_t crc16_xmodem(const unsigned char *d, size_t n) {
  uint16_t crc = 0;
  for (size_t i = 0; i < n; i++) {
    crc ^= (uint16_t)(d[i] << 8);
    for (int b = 0; b < 8; b++)
      crc = crc & 0x8000 ? (uint16_t)(crc << 1 ^ 0x1021) : (uint16_t)(crc << 1);
  }
  return crc;
}

/* raw: n bytes and room for the CRC after them. */
static void nkey_encode(unsigned char *raw, size_t n, char *out) {
  uint16_t crc = crc16_xmodem(raw, n);
  raw[n] = (unsigned char)(crc & 0xff);
  raw[n + 1] = (unsigned char)(crc >> 8);
  base32(raw, n + 2, out);
}

static int nkey_new(struct nkey *nk, unsigned prefix) {
  unsigned char raw[40], pub[32], seed[32];
  size_t publen = sizeof pub, seedlen = sizeof seed;
  memset(nk, 0, sizeof *nk);
  nk->k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  if (!nk->k || EVP_PKEY_get_raw_public_key(nk->k, pub, &publen) != 1 ||
      EVP_PKEY_get_raw_private_key(nk->k, seed, &seedlen) != 1 || publen != 32 ||
      seedlen != 32)
    return -1;
  raw[0] = (unsigned char)prefix;
  memcpy(raw + 1, pub, 32);
  nkey_encode(raw, 33, nk->pub);
  raw[0] = (unsigned char)(NKEY_SEED | prefix >> 5);
  raw[1] = (unsigned char)((prefix & 31) << 3);
  memcpy(raw + 2, seed, 32);
  nkey_encode(raw, 34, nk->seed);
  OPENSSL_cleanse(seed, sizeof seed);
  OPENSSL_cleanse(raw, sizeof raw);
  return 0;
}

/* A JWT (v2) of the claims about subject, with the "nats" object nats
 * (taken), signed by issuer: header.payload.signature, each base64url
 * without padding; the signature is ed25519 over "header.payload". jti: the
 * base32 SHA-512/256 of the claims without it. Caller frees; NULL on
 * failure. */
static char *jwt_make(const struct nkey *issuer, const char *subject, const char *name,
                      json_t *nats) {
  static const char header[] = "{\"typ\":\"JWT\",\"alg\":\"ed25519-nkey\"}";
  json_t *c = json_pack("{s:I,s:s,s:s,s:s}", "iat", (json_int_t)time(NULL), "iss",
                        issuer->pub, "name", name, "sub", subject);
  char *plain = c ? json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  unsigned char h[64], sig[64];
  unsigned hlen = 0;
  size_t siglen = sizeof sig;
  char jti[128], *payload = NULL, *tok = NULL;
  if (plain && EVP_Digest(plain, strlen(plain), h, &hlen, EVP_sha512_256(), NULL) == 1) {
    base32(h, hlen, jti);
    json_object_set_new(c, "jti", json_string(jti));
    json_object_set(c, "nats", nats);
    payload = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
  }
  size_t cap = payload ? (strlen(header) + strlen(payload)) * 2 + 200 : 0;
  tok = cap ? malloc(cap) : NULL;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  if (tok && md) {
    base64_encode((const unsigned char *)header, strlen(header), 1, tok);
    size_t n = strlen(tok);
    tok[n++] = '.';
    base64_encode((const unsigned char *)payload, strlen(payload), 1, tok + n);
    n += strlen(tok + n);
    if (EVP_DigestSignInit(md, NULL, NULL, NULL, issuer->k) == 1 &&
        EVP_DigestSign(md, sig, &siglen, (const unsigned char *)tok, n) == 1) {
      tok[n++] = '.';
      base64_encode(sig, siglen, 1, tok + n);
    } else {
      free(tok);
      tok = NULL;
    }
  } else {
    free(tok);
    tok = NULL;
  }
  EVP_MD_CTX_free(md);
  free(plain);
  free(payload);
  json_decref(c);
  json_decref(nats);
  return tok;
}

/* An account's claims: no limit but those given; JetStream when js. */
static json_t *account_claims(int js) {
  json_t *lim =
      json_pack("{s:i,s:i,s:i,s:i,s:i,s:b,s:i,s:i}", "subs", -1, "data", -1, "payload",
                -1, "imports", -1, "exports", -1, "wildcards", 1, "conn", -1, "leaf", -1);
  if (lim && js) {
    json_object_set_new(lim, "mem_storage", json_integer(-1));
    json_object_set_new(lim, "disk_storage", json_integer(-1));
    json_object_set_new(lim, "streams", json_integer(-1));
    json_object_set_new(lim, "consumer", json_integer(-1));
  }
  return json_pack("{s:o,s:{s:{},s:{}},s:s,s:i}", "limits", lim, "default_permissions",
                   "pub", "sub", "type", "account", "version", 2);
}

/* path: a user of account (a new nkey, its JWT signed by the account's key)
 * as a .creds file. */
static int creds_write(const char *path, const struct nkey *account) {
  struct nkey user;
  char *jwt = NULL;
  int rc = -1;
  if (nkey_new(&user, NKEY_USER) == 0 &&
      (jwt = jwt_make(account, user.pub, "blazebot-test",
                      json_pack("{s:{},s:{},s:i,s:i,s:i,s:s,s:i}", "pub", "sub", "subs",
                                -1, "data", -1, "payload", -1, "type", "user", "version",
                                2)))) {
    char text[4096];
    snprintf(text, sizeof text,
             "-----BEGIN NATS USER JWT-----\n%s\n------END NATS USER JWT------\n\n"
             "************************* IMPORTANT *************************\n"
             "NKEY Seed printed below can be used to sign and prove identity.\n\n"
             "-----BEGIN USER NKEY SEED-----\n%s\n------END USER NKEY SEED------\n",
             jwt, user.seed);
    rc = h_write(path, text, 0600);
  }
  free(jwt);
  EVP_PKEY_free(user.k);
  return rc;
}

/* Operator mode (decentralized JWT auth) with a memory resolver: in dir,
 * operator.jwt, nats.conf (the operator, the system account and a JetStream
 * account preloaded), user.creds (a user of that account) and
 * stranger.creds (a user of an account the server does not know). */
static int creds_files(const char *dir) {
  struct nkey op, sys, acc, stranger;
  char *op_jwt = NULL, *sys_jwt = NULL, *acc_jwt = NULL, path[700], conf[8192];
  int rc = -1;
  memset(&sys, 0, sizeof sys);
  memset(&acc, 0, sizeof acc);
  memset(&stranger, 0, sizeof stranger);
  if (nkey_new(&op, NKEY_OPERATOR) == 0 && nkey_new(&sys, NKEY_ACCOUNT) == 0 &&
      nkey_new(&acc, NKEY_ACCOUNT) == 0 && nkey_new(&stranger, NKEY_ACCOUNT) == 0 &&
      (op_jwt = jwt_make(&op, op.pub, "blazebot-test-operator",
                         json_pack("{s:s,s:s,s:i}", "system_account", sys.pub, "type",
                                   "operator", "version", 2))) &&
      (sys_jwt = jwt_make(&op, sys.pub, "SYS", account_claims(0))) &&
      (acc_jwt = jwt_make(&op, acc.pub, "BLAZEBOT", account_claims(1)))) {
    snprintf(path, sizeof path, "%s/operator.jwt", dir);
    rc = h_write(path, op_jwt, 0600);
    /* JetStream: -js and -sd on the command line (node_start) */
    snprintf(conf, sizeof conf,
             "operator: \"%s\"\nsystem_account: %s\nresolver: MEMORY\n"
             "resolver_preload: {\n  %s: \"%s\"\n  %s: \"%s\"\n}\n",
             path, sys.pub, sys.pub, sys_jwt, acc.pub, acc_jwt);
    snprintf(path, sizeof path, "%s/nats.conf", dir);
    rc |= h_write(path, conf, 0600);
    snprintf(path, sizeof path, "%s/user.creds", dir);
    rc |= creds_write(path, &acc);
    snprintf(path, sizeof path, "%s/stranger.creds", dir);
    rc |= creds_write(path, &stranger);
  }
  if (rc < 0)
    fprintf(stderr, "making the operator, accounts and users failed\n");
  free(op_jwt);
  free(sys_jwt);
  free(acc_jwt);
  EVP_PKEY_free(op.k);
  EVP_PKEY_free(sys.k);
  EVP_PKEY_free(acc.k);
  EVP_PKEY_free(stranger.k);
  return rc;
}

/* A setting of [plugin.nats] the plugin cannot connect with, and what it
 * logs then. */
struct bad_setting {
  const char *plugin; /* the section's extra lines */
  int tls_urls;       /* servers as tls:// URLs */
  const char *why;
};

/* After world_start with the good setting (good, good_tls): 300 messages
 * answered. Then each bad setting in turn, by a reload: the plugin logs why
 * it cannot connect, 100 more messages wait, none acknowledged nor
 * answered. Then the good setting again, by a reload: every message
 * answered once, all acknowledged. */
static void auth_run(struct world *w, const char *part, const char *good, int good_tls,
                     const struct bad_setting *bad, size_t nbad) {
  push(w, 300);
  CHECK(wait_created(w, w->expected, 120000) >= 0);
  CHECK(h_sim_wait(&w->sim, "acked", w->expected, 60000) == 0);
  for (size_t i = 0; i < nbad; i++) {
    long acked = sim_stat(w, "acked"), created = sim_stat(w, "created");
    int waiting = h_count(w->d.err, "will come again");
    sec.tls_urls = bad[i].tls_urls;
    CHECK(write_config(w, bad[i].plugin) == 0);
    h_kill(&w->d, SIGHUP);
    CHECK(h_wait_count(w->d.err, "plugin nats: stopped:", (int)i + 1, 30000) == 0);
    CHECK(h_wait_count(w->d.err, bad[i].why, 1, 30000) == 0);
    push(w, 100);
    CHECK(h_wait_count(w->d.err, "will come again", waiting + 1, 30000) == 0);
    h_sleep_ms(2000);
    CHECK_INT(sim_stat(w, "acked"), acked);
    CHECK_INT(sim_stat(w, "created"), created);
    printf("nats.auth: %s: refused as expected: %s\n", part, bad[i].why);
  }
  sec.tls_urls = good_tls;
  CHECK(write_config(w, good) == 0);
  h_kill(&w->d, SIGHUP);
  CHECK(wait_created(w, w->expected, 120000) >= 0);
  check_settled(w);
  CHECK(workers_stop(w) >= 0);
  daemon_stop(w);
  printf("nats.auth: %s: %ld messages answered once\n", part, w->expected);
}

/* A secret never in the daemon's log, and masked by --print-config. */
static void check_secret_hidden(struct world *w, const char *key, const char *secret) {
  const char *argv[] = {h_daemon_bin(), "-c", w->ini, "--print-config", NULL};
  char out[700], line[200];
  CHECK_INT(h_run(w->dir, "print-config", argv, 30000), 0);
  snprintf(out, sizeof out, "%s/print-config.out", w->dir);
  snprintf(line, sizeof line, "%s = ********", key);
  CHECK(h_contains(out, line));
  CHECK(!h_contains(out, secret));
  for (int i = 1; i <= w->daemon_runs; i++) {
    snprintf(out, sizeof out, "%s/daemon%d.err", w->dir, i);
    CHECK(!h_contains(out, secret));
  }
}

/* An auth token: nats-server --auth, token in [plugin.nats], --token for the
 * workers. Wrong: an authorization error; a tls:// URL to this server
 * without TLS: refused, not sent in clear. */
static void auth_token(void) {
  unsigned char r[2][12];
  char token[40], wrong[40], good[100], bad_token[100];
  if (RAND_bytes(r[0], sizeof r[0]) != 1 || RAND_bytes(r[1], sizeof r[1]) != 1) {
    CHECK(!"random bytes");
    return;
  }
  strcpy(token, "tok-");
  base64_encode(r[0], sizeof r[0], 1, token + 4);
  strcpy(wrong, "wrong-");
  base64_encode(r[1], sizeof r[1], 1, wrong + 6);
  snprintf(good, sizeof good, "token = %s\n", token);
  snprintf(bad_token, sizeof bad_token, "token = %s\n", wrong);
  memset(&sec, 0, sizeof sec);
  sec.server_args[0] = "--auth";
  sec.server_args[1] = token;
  sec.token = token;
  const struct bad_setting bad[] = {
      {bad_token, 0, "the NATS connection was closed (Authorization Violation)"},
      {good, 1, "cannot connect to NATS (Secure Connection not available)"}};
  struct world w;
  if (world_start(&w, "nats_auth_token", 1, 1, 0, good) == 0) {
    auth_run(&w, "token", good, 0, bad, sizeof bad / sizeof bad[0]);
    check_secret_hidden(&w, "token", token);
    check_secret_hidden(&w, "token", wrong);
  }
  world_stop(&w);
}

/* TLS: nats-server with a certificate for 127.0.0.1 of a CA made here; the
 * daemon with tls:// URLs and ca_file, the workers with --ca-file. Another
 * CA's file: a TLS error, no connection. */
static void auth_tls(void) {
  const char *d = h_dir("nats_auth_tls_files");
  char dir[512], ca[600], other[600], cert[600], key[600], good[700], bad_ca[700];
  if (!d || (snprintf(dir, sizeof dir, "%s", d), tls_files(dir) < 0)) {
    CHECK(!"TLS certificates made");
    return;
  }
  snprintf(ca, sizeof ca, "%s/ca.pem", dir);
  snprintf(other, sizeof other, "%s/other-ca.pem", dir);
  snprintf(cert, sizeof cert, "%s/server-cert.pem", dir);
  snprintf(key, sizeof key, "%s/server-key.pem", dir);
  snprintf(good, sizeof good, "ca_file = %s\n", ca);
  snprintf(bad_ca, sizeof bad_ca, "ca_file = %s\n", other);
  memset(&sec, 0, sizeof sec);
  const char *args[] = {"--tls", "--tlscert", cert, "--tlskey", key};
  memcpy(sec.server_args, args, sizeof args);
  sec.ca = ca;
  sec.tls_urls = 1;
  const struct bad_setting bad[] = {
      {bad_ca, 1, "cannot connect to NATS (SSL handshake error: "}};
  struct world w;
  if (world_start(&w, "nats_auth_tls", 1, 1, 0, good) == 0) {
    CHECK(h_contains(w.d.err, "connected to tls://127.0.0.1:"));
    auth_run(&w, "tls", good, 1, bad, sizeof bad / sizeof bad[0]);
    CHECK(h_contains(w.d.err, "unable to get local issuer certificate"));
  }
  world_stop(&w);
}

/* creds_file: nats-server in operator mode, the daemon, the workers and the
 * test with a user's .creds; a user of an account the server does not know:
 * an authorization error. */
static void auth_creds(void) {
  const char *d = h_dir("nats_auth_creds_files");
  char dir[512], conf[600], creds[600], good[700], bad_creds[700];
  if (!d || (snprintf(dir, sizeof dir, "%s", d), creds_files(dir) < 0)) {
    CHECK(!"operator, account and user keys and JWTs made");
    return;
  }
  snprintf(conf, sizeof conf, "%s/nats.conf", dir);
  snprintf(creds, sizeof creds, "%s/user.creds", dir);
  snprintf(good, sizeof good, "creds_file = %s\n", creds);
  snprintf(bad_creds, sizeof bad_creds, "creds_file = %s/stranger.creds\n", dir);
  memset(&sec, 0, sizeof sec);
  sec.server_args[0] = "-c";
  sec.server_args[1] = conf;
  sec.creds = creds;
  const struct bad_setting bad[] = {
      {bad_creds, 0, "the NATS connection was closed (Authorization Violation)"}};
  struct world w;
  if (world_start(&w, "nats_auth_creds", 1, 1, 0, good) == 0)
    auth_run(&w, "creds", good, 0, bad, sizeof bad / sizeof bad[0]);
  world_stop(&w);
}

static void scenario_auth(void) {
  auth_token();
  auth_tls();
  auth_creds();
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "e2e";
  char name[64];
  snprintf(name, sizeof name, "nats.%s", mode);
  if (!nats_server_bin()) {
    const char *ci = getenv("CI");
    if (ci && !strcmp(ci, "true")) {
      check_fail_at(__FILE__, __LINE__,
                    "nats-server is installed (CI=true: not skipped)");
      return check_done(name);
    }
    fprintf(stderr, "%s: nats-server not found: skipped (apt-get install nats-server)\n",
            name);
    return 77;
  }
  signal(SIGPIPE, SIG_IGN);
  if (!strcmp(mode, "e2e"))
    scenario_e2e();
  else if (!strcmp(mode, "worker"))
    scenario_worker();
  else if (!strcmp(mode, "restart"))
    scenario_restart();
  else if (!strcmp(mode, "daemon"))
    scenario_daemon();
  else if (!strcmp(mode, "cluster"))
    scenario_cluster();
  else if (!strcmp(mode, "reload"))
    scenario_reload();
  else if (!strcmp(mode, "auth"))
    scenario_auth();
  else if (!strcmp(mode, "node"))
    scenario_node();
  else
    check_fail_at(__FILE__, __LINE__, "a known scenario");
  return check_done(name);
}
