/* SPDX-License-Identifier: MIT */
/*
 * main: the command line of blazebot-sim, the set-up of the lws context on
 * one address (ws:// and http://, or wss:// and https:// with --tls-cert),
 * the service loop and an orderly exit. Whatever ends the run (a signal,
 * --exit-when-acked, --timeout, the end of a chat), the stats JSON is printed
 * as one line on stdout (on stderr with --chat and --interactive, whose
 * transcript owns stdout) and written to --stats-file, after every
 * connection is closed and before everything is freed. Exit codes: 0 normal,
 * 1 set-up failure or a --chat line never acknowledged, 2 bad command line,
 * 3 --timeout reached.
 */
#include "sim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keygen.h"
#include "log.h"

#define TICK_MS 50

/* The signal that asked us to stop: written by the handler, read by the
 * tick on the service thread (sig_atomic_t, so no other synchronisation). */
static volatile sig_atomic_t g_signal;

static void on_signal(int signo) {
  g_signal = signo;
}

static void usage(FILE *f) {
  fprintf(
      f,
      "usage: blazebot-sim --keystore FILE [options]\n"
      "       blazebot-sim keygen [--type ed25519|ed25519-legacy|rsa] -o FILE ...\n"
      "       blazebot-sim gen-tls --dir DIR [--cn NAME]\n"
      "\n"
      "A local Blaze server (Mixin-Blaze-1 WebSocket + REST) for blazebot tests.\n"
      "\n"
      "  --keystore FILE       the bot's keystore: its key verifies the bot's JWTs\n"
      "  --listen ADDR:PORT    address to serve on (default 127.0.0.1:7600; port 0 =\n"
      "                        any free port)\n"
      "  --port-file FILE      write the bound port to FILE once listening\n"
      "  --tls-cert PEM --tls-key PEM\n"
      "                        serve wss:// and https:// instead of ws:// and http://\n"
      "  --preload N           start with N pending PLAIN_TEXT messages\n"
      "  --prebuilt-pushes     gzip the preloaded messages' first pushes at start-up\n"
      "                        (benchmarks: the simulator is then not the cap)\n"
      "  --users N             simulated users writing to the bot (default 3)\n"
      "  --fault SPEC          arm a fault (repeatable): NAME[@N][:ARG] with NAME one\n"
      "                        of drop reject401[:K] error401 garbage text badjson bomb\n"
      "                        badbase64 missing silent create_error:CODE[xCOUNT]\n"
      "                        ack_batch_error; @N = after N more message pushes; or\n"
      "                        api_error:ENDPOINT:CODE[xCOUNT] (answer COUNT calls with\n"
      "                        that error: 401 as a refused token, 500..599, 7000 and\n"
      "                        7001 as HTTP 500, others as Mixin errors in HTTP 202;\n"
      "                        S3-style on upload and view) or\n"
      "                        api_slow:ENDPOINT:MS[xCOUNT] (answer COUNT calls MS ms\n"
      "                        late, MS 1..60000); ENDPOINT is me user users_fetch\n"
      "                        conversation_create conversation attachment_create\n"
      "                        attachment messages acknowledgements upload view or any\n"
      "  --stats-file FILE     also write the final stats JSON to FILE\n"
      "  --exit-when-acked     exit 0 once every stored message is acknowledged\n"
      "  --timeout SECONDS     exit 3 after SECONDS (a safety net for tests)\n"
      "  --ping-interval SECONDS\n"
      "                        send a WebSocket ping every SECONDS (default 0 = off)\n"
      "  --chat FILE           chat with the bot from a script: one message per line\n"
      "                        (blank lines and #comments skipped; \"as NAME: text\"\n"
      "                        speaks as NAME, else alice). Each line goes out once\n"
      "                        the bot is listening and the last one is acknowledged\n"
      "                        and answered; the transcript goes to stdout; exits 0\n"
      "                        after the last line, 1 if one was never acknowledged\n"
      "  --chat-timeout MS     longest wait for the bot per --chat line (default 5000)\n"
      "  --interactive         chat with the bot from stdin, line by line (\"as NAME:\"\n"
      "                        too; lines before the bot connects wait as pending);\n"
      "                        /quit or end of input exits 0. In both chat modes the\n"
      "                        stats JSON goes to stderr\n"
      "  -v, --verbose         debug logging (lws notices too)\n"
      "  -h, --help            this text\n"
      "\n"
      "REST (each call with a fresh token): GET /me, GET /users/:id, POST /users/fetch,\n"
      "POST /conversations, GET /conversations/:id, POST /attachments, GET\n"
      "/attachments/:id, POST /messages, POST /acknowledgements. An attachment's\n"
      "upload_url takes one PUT of at most 10 MiB with Content-Type:\n"
      "application/octet-stream and x-amz-acl: public-read and no token; its view_url\n"
      "serves the bytes.\n"
      "\n"
      "Control API (no auth): GET /_sim/stats, POST /_sim/push {\"count\",\"category\",\n"
      "\"text\",\"user_id\",\"conversation_id\"}, POST /_sim/fault {\"fault\":SPEC},\n"
      "GET /_sim/sent, GET /_sim/messages, GET /_sim/conversations, GET /_sim/users,\n"
      "GET /_sim/attachments.\n"
      "\n"
      "Strictness: on ws:// and http:// the method and request-target are read off\n"
      "the request line as sent, before libwebsockets parses (and normalises) it, and\n"
      "each connection carries one request (answers say Connection: close). The\n"
      "upgrade must be GET / (a query may follow) over HTTP/1.1, else 404, 405 or\n"
      "400; every request needs one Host header, and a port in it must be the one\n"
      "served (400); the upgrade needs Sec-WebSocket-Version: 13, a 16-byte\n"
      "Sec-WebSocket-Key and Mixin-Blaze-1 offered (400). A token is checked against\n"
      "the request received: sig = sha256(METHOD + target as sent + body), uid and\n"
      "sid of the keystore, exp not passed, iat within 300 s, jti never seen before;\n"
      "else 401. The request line must arrive within 1 s of connecting (else 408;\n"
      "the simulator serves nothing else while it waits) and fit in 8 KiB (else\n"
      "414).\n"
      "\n"
      "Leniencies (what the real server may refuse and this one lets pass):\n"
      "  - wss:// and https:// (--tls-cert): the request line is encrypted when it\n"
      "    arrives, so paths and sig use libwebsockets' reading of it: \"//\", \"/./\"\n"
      "    and \"/../\" collapsed, %%XX decoded, \"+\" in the query read as a space and\n"
      "    \";\" as \"&\"; and a keep-alive connection may carry several requests\n"
      "  - Host: the name is not checked, and without a port it passes on any port\n"
      "  - tokens: scp and the header's typ are not checked, jti need not be a UUID,\n"
      "    uid and sid compare without regard to case\n"
      "  - REST bodies up to 1 MiB (the real POST /messages takes 128 KB); any\n"
      "    acknowledgement status string (real: READ or DELIVERED); any message\n"
      "    category; messages to conversations never created or never written to,\n"
      "    or naming attachments never made or uploaded\n"
      "  - GET /attachments/:id adds size and mime_type once uploaded (the real\n"
      "    answer is not documented to carry them)\n"
      "  - the control API under /_sim/ needs no token\n"
      "Stricter than the real server: one request per plain-TCP connection; POST\n"
      "needs Content-Length (411); paths are compared as sent (\"/m%%65\" is not\n"
      "\"/me\"); Sec-WebSocket-Protocol must offer Mixin-Blaze-1. Perhaps stricter\n"
      "(undocumented): POST /users/fetch takes at most 100 ids; GET /users/:id takes\n"
      "a user id, not an identity number; an upload_url needs exactly Content-Type:\n"
      "application/octet-stream and x-amz-acl: public-read (what the SDKs send) and\n"
      "expires after an hour.\n");
}

/* Parses a whole decimal in [lo, hi]. Returns 0 or -1. */
static int parse_num(const char *s, long lo, long hi, long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi)
    return -1;
  *out = v;
  return 0;
}

/* "ADDR:PORT", "[V6]:PORT" or "PORT". Returns 0 or -1. */
static int parse_listen(const char *s, struct sim_config *cfg) {
  const char *colon = strrchr(s, ':');
  const char *port = colon ? colon + 1 : s;
  long p;
  if (parse_num(port, 0, 65535, &p) < 0)
    return -1;
  cfg->port = (int)p;
  if (!colon)
    return 0;
  size_t n = (size_t)(colon - s);
  if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
    s++;
    n -= 2;
  }
  if (n == 0 || n >= sizeof cfg->listen_addr)
    return -1;
  memcpy(cfg->listen_addr, s, n);
  cfg->listen_addr[n] = 0;
  if (!strcmp(cfg->listen_addr, "localhost"))
    strcpy(cfg->listen_addr, "127.0.0.1");
  unsigned char tmp[16];
  if (inet_pton(AF_INET, cfg->listen_addr, tmp) != 1 &&
      inet_pton(AF_INET6, cfg->listen_addr, tmp) != 1)
    return -1;
  return 0;
}

enum {
  OPT_KEYSTORE = 256,
  OPT_LISTEN,
  OPT_PORT_FILE,
  OPT_TLS_CERT,
  OPT_TLS_KEY,
  OPT_PRELOAD,
  OPT_PREBUILT,
  OPT_USERS,
  OPT_FAULT,
  OPT_STATS_FILE,
  OPT_EXIT_WHEN_ACKED,
  OPT_TIMEOUT,
  OPT_PING_INTERVAL,
  OPT_CHAT,
  OPT_CHAT_TIMEOUT,
  OPT_INTERACTIVE,
};

static int bad_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int bad_usage(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "blazebot-sim: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n\n");
  va_end(ap);
  usage(stderr);
  return 2;
}

/* Fills cfg and the faults. Returns -1 to go on, else an exit code. */
static int parse_args(int argc, char **argv, struct sim_config *cfg,
                      struct sim_fault *faults, size_t *nfaults) {
  static const struct option opts[] = {
      {"keystore", required_argument, NULL, OPT_KEYSTORE},
      {"listen", required_argument, NULL, OPT_LISTEN},
      {"port-file", required_argument, NULL, OPT_PORT_FILE},
      {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
      {"tls-key", required_argument, NULL, OPT_TLS_KEY},
      {"preload", required_argument, NULL, OPT_PRELOAD},
      {"prebuilt-pushes", no_argument, NULL, OPT_PREBUILT},
      {"users", required_argument, NULL, OPT_USERS},
      {"fault", required_argument, NULL, OPT_FAULT},
      {"stats-file", required_argument, NULL, OPT_STATS_FILE},
      {"exit-when-acked", no_argument, NULL, OPT_EXIT_WHEN_ACKED},
      {"timeout", required_argument, NULL, OPT_TIMEOUT},
      {"ping-interval", required_argument, NULL, OPT_PING_INTERVAL},
      {"chat", required_argument, NULL, OPT_CHAT},
      {"chat-timeout", required_argument, NULL, OPT_CHAT_TIMEOUT},
      {"interactive", no_argument, NULL, OPT_INTERACTIVE},
      {"verbose", no_argument, NULL, 'v'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  strcpy(cfg->listen_addr, "127.0.0.1");
  cfg->port = 7600;
  cfg->users = 3;
  cfg->chat_timeout_ms = 5000;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, ":vh", opts, NULL)) != -1) {
    char err[200];
    switch (c) {
    case OPT_KEYSTORE:
      cfg->keystore = optarg;
      break;
    case OPT_LISTEN:
      if (parse_listen(optarg, cfg) < 0)
        return bad_usage("--listen %s: want ADDR:PORT with an IP address", optarg);
      break;
    case OPT_PORT_FILE:
      cfg->port_file = optarg;
      break;
    case OPT_TLS_CERT:
      cfg->tls_cert = optarg;
      break;
    case OPT_TLS_KEY:
      cfg->tls_key = optarg;
      break;
    case OPT_PRELOAD:
      if (parse_num(optarg, 0, 100000000L, &cfg->preload) < 0)
        return bad_usage("--preload %s: want a count", optarg);
      break;
    case OPT_PREBUILT:
      cfg->prebuilt_pushes = 1;
      break;
    case OPT_USERS:
      if (parse_num(optarg, 1, 100000L, &cfg->users) < 0)
        return bad_usage("--users %s: want 1..100000", optarg);
      break;
    case OPT_FAULT:
      if (*nfaults >= SIM_MAX_FAULTS)
        return bad_usage("%s: too many --fault options", optarg);
      if (faults_parse(optarg, &faults[*nfaults], err, sizeof err) < 0)
        return bad_usage("--fault: %s", err);
      (*nfaults)++;
      break;
    case OPT_STATS_FILE:
      cfg->stats_file = optarg;
      break;
    case OPT_EXIT_WHEN_ACKED:
      cfg->exit_when_acked = 1;
      break;
    case OPT_TIMEOUT:
      if (parse_num(optarg, 1, 100000000L, &cfg->timeout_s) < 0)
        return bad_usage("--timeout %s: want seconds", optarg);
      break;
    case OPT_PING_INTERVAL:
      if (parse_num(optarg, 0, 86400L, &cfg->ping_interval_s) < 0)
        return bad_usage("--ping-interval %s: want seconds", optarg);
      break;
    case OPT_CHAT:
      cfg->chat_file = optarg;
      break;
    case OPT_CHAT_TIMEOUT:
      if (parse_num(optarg, 1, 86400000L, &cfg->chat_timeout_ms) < 0)
        return bad_usage("--chat-timeout %s: want milliseconds", optarg);
      break;
    case OPT_INTERACTIVE:
      cfg->interactive = 1;
      break;
    case 'v':
      cfg->verbose = 1;
      break;
    case 'h':
      usage(stdout);
      return 0;
    case ':':
      return bad_usage("%s needs a value", argv[optind - 1]);
    default:
      return bad_usage("unknown option %s", argv[optind - 1]);
    }
  }
  if (optind < argc)
    return bad_usage("unexpected argument %s", argv[optind]);
  if (!cfg->keystore)
    return bad_usage("%s", "--keystore FILE is required");
  if (!cfg->tls_cert != !cfg->tls_key)
    return bad_usage("%s", "--tls-cert and --tls-key go together");
  if (cfg->chat_file && cfg->interactive)
    return bad_usage("%s", "--chat and --interactive exclude each other");
  /* A chat ends on its own; --exit-when-acked would end it at the first
   * acknowledged line. */
  if ((cfg->chat_file || cfg->interactive) && cfg->exit_when_acked)
    return bad_usage("%s", "--exit-when-acked does not go with --chat or --interactive");
  return -1;
}

static int write_port_file(const char *path, int port) {
  char tmp[4096];
  int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  if (n < 0 || (size_t)n >= sizeof tmp)
    return -1;
  FILE *f = fopen(tmp, "w");
  if (!f)
    return -1;
  int ok = fprintf(f, "%d\n", port) > 0;
  ok = fclose(f) == 0 && ok;
  /* Renamed into place so that a test polling for the file reads it whole. */
  if (!ok || rename(tmp, path) < 0) {
    unlink(tmp);
    return -1;
  }
  return 0;
}

/* Ends the service loop. lws runs timers before it polls, so without the
 * cancel the loop would sleep in poll until the next socket event. */
static void stop(struct sim *sim, int code) {
  sim->stop = 1;
  sim->exit_code = code;
  lws_cancel_service(sim->ctx);
}

static void tick(lws_sorted_usec_list_t *sul) {
  struct sim *sim = lws_container_of(sul, struct sim, tick_sul);
  int64_t now = now_ms();
  if (g_signal) {
    log_info("signal %d: exiting", (int)g_signal);
    stop(sim, 0);
    return;
  }
  if (sim->cfg.timeout_s > 0 && now - sim->start_ms >= sim->cfg.timeout_s * 1000) {
    log_warn("--timeout of %ld s reached; exiting with 3", sim->cfg.timeout_s);
    stop(sim, 3);
    return;
  }
  /* --exit-when-acked: let the last replies reach the bot first, briefly. */
  if (sim->exit_pending && (ws_replies_flushed(sim) || now >= sim->exit_deadline_ms)) {
    stop(sim, 0);
    return;
  }
  if (chat_enabled(sim)) {
    int rc = chat_tick(sim, now);
    if (rc >= 0) {
      stop(sim, rc);
      return;
    }
  }
  ws_reap_silent(sim);
  lws_sul_schedule(sim->ctx, 0, &sim->tick_sul, tick, TICK_MS * LWS_US_PER_MS);
}

static const struct lws_protocols protocols[] = {
    {SIM_HTTP_PROTOCOL, http_callback, sizeof(struct http_req), 0, 0, NULL, 0},
    {SIM_SUBPROTOCOL, ws_callback, sizeof(struct sim_conn), 65536, 0, NULL, 0},
    {SIM_STDIN_PROTOCOL, chat_stdin_callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static int start_server(struct sim *sim) {
  struct lws_context_creation_info info;
  memset(&info, 0, sizeof info);
  info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
  if (sim->cfg.tls_cert)
    info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
  info.user = sim;
  info.max_http_header_data = 16384;
  info.server_string = "blazebot-sim";
  sim->ctx = lws_create_context(&info);
  if (!sim->ctx) {
    log_error("cannot create the lws context");
    return -1;
  }

  int v6 = strchr(sim->cfg.listen_addr, ':') != NULL;
  struct lws_context_creation_info vi;
  memset(&vi, 0, sizeof vi);
  vi.vhost_name = "blazebot-sim";
  vi.port = sim->cfg.port;
  vi.iface = sim->cfg.listen_addr;
  vi.protocols = protocols;
  vi.options = info.options | LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND;
  if (!v6)
    vi.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
  vi.keepalive_timeout = 30;
  vi.timeout_secs = 20;
  vi.server_string = "blazebot-sim";
  if (sim->cfg.tls_cert) {
    vi.ssl_cert_filepath = sim->cfg.tls_cert;
    vi.ssl_private_key_filepath = sim->cfg.tls_key;
    vi.alpn = "http/1.1"; /* never h2: Blaze clients force the HTTP/1.1 upgrade */
  }
  sim->vhost = lws_create_vhost(sim->ctx, &vi);
  if (!sim->vhost) {
    log_error("cannot listen on %s%s%s:%d%s", v6 ? "[" : "", sim->cfg.listen_addr,
              v6 ? "]" : "", sim->cfg.port,
              sim->cfg.tls_cert ? " (or the TLS certificate/key did not load)" : "");
    return -1;
  }
  int port = lws_get_vhost_listen_port(sim->vhost);
  if (sim->cfg.port_file && write_port_file(sim->cfg.port_file, port) < 0) {
    log_error("cannot write the port file %s: %s", sim->cfg.port_file, strerror(errno));
    return -1;
  }
  const char *scheme = sim->cfg.tls_cert ? "wss" : "ws";
  log_info("listening on %s://%s%s%s:%d/ (bot %s, %zu message(s), %zu user(s))", scheme,
           v6 ? "[" : "", sim->cfg.listen_addr, v6 ? "]" : "", port, sim->bot_id,
           sim->nmsgs, sim->nusers);
  return 0;
}

static int preload(struct sim *sim) {
  char text[48];
  for (long i = 0; i < sim->cfg.preload; i++) {
    int n = snprintf(text, sizeof text, "message %ld", i);
    size_t idx =
        store_add(sim, store_next_user(sim), "PLAIN_TEXT", NULL, text, (size_t)n, 0);
    if (idx == SIM_MSG_INDEX_NONE ||
        (sim->cfg.prebuilt_pushes && ws_prebuild_push(sim, &sim->msgs[idx]) < 0))
      return -1;
  }
  return 0;
}

static int setup(struct sim *sim, const struct sim_fault *faults, size_t nfaults) {
  char err[256];
  if (keystore_load(sim->cfg.keystore, 0, &sim->ks, err, sizeof err) < 0) {
    log_error("%s", err);
    return -1;
  }
  sim->pub = keystore_public_key(sim->ks);
  if (!sim->pub) {
    log_error("cannot take the public key of %s", sim->cfg.keystore);
    return -1;
  }
  memcpy(sim->bot_id, sim->ks->user_id, sizeof sim->bot_id);
  memcpy(sim->session_id, sim->ks->session_id, sizeof sim->session_id);
  sim->codec = codec_new(SIM_MAX_INFLATED, 3);
  if (sim->codec) /* every frame compressed, as Blaze's server does */
    codec_set_store_max(sim->codec, 0);
  if (!sim->codec || store_init(sim) < 0 || files_init(sim) < 0 || preload(sim) < 0) {
    log_error("out of memory");
    return -1;
  }
  if (chat_enabled(sim) && chat_init(sim) < 0)
    return -1;
  for (size_t i = 0; i < nfaults; i++) {
    if (faults_arm(sim, &faults[i]) < 0)
      return -1;
  }
  if (start_server(sim) < 0)
    return -1;
  return chat_enabled(sim) ? chat_start(sim) : 0;
}

static void teardown(struct sim *sim) {
  sim->stop = 1; /* the close callbacks below see that the run is over */
  if (sim->ctx) {
    log_info("shutting down (%zu live connection(s))", sim->nconns);
    lws_sul_cancel(&sim->tick_sul);
    /* Closes every connection; their CLOSED callbacks free their state. */
    lws_context_destroy(sim->ctx);
    sim->ctx = NULL;
  }
  log_debug("lws context destroyed");
  stats_write(sim);
  if (chat_enabled(sim))
    chat_fini(sim);
  store_fini(sim);
  files_fini(sim);
  reqline_fini(sim);
  codec_free(sim->codec);
  buf_fini(&sim->scratch);
  buf_fini(&sim->inflated);
  buf_fini(&sim->text);
  EVP_PKEY_free(sim->pub);
  keystore_free(sim->ks);
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "keygen"))
    return sim_keygen_main(argc - 1, argv + 1);
  if (argc > 1 && !strcmp(argv[1], "gen-tls"))
    return sim_gentls_main(argc - 1, argv + 1);

  struct sim sim;
  struct sim_fault faults[SIM_MAX_FAULTS];
  size_t nfaults = 0;
  memset(&sim, 0, sizeof sim);
  int rc = parse_args(argc, argv, &sim.cfg, faults, &nfaults);
  if (rc >= 0)
    return rc;

  log_set_level(sim.cfg.verbose ? LOGL_DEBUG : LOGL_INFO);
  lws_set_log_level(
      sim.cfg.verbose ? LLL_ERR | LLL_WARN | LLL_NOTICE : LLL_ERR | LLL_WARN, NULL);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  sim.start_ms = now_ms();
  if (setup(&sim, faults, nfaults) < 0) {
    teardown(&sim);
    return 1;
  }
  lws_sul_schedule(sim.ctx, 0, &sim.tick_sul, tick, TICK_MS * LWS_US_PER_MS);
  while (!sim.stop && !g_signal) {
    if (lws_service(sim.ctx, 0) < 0) {
      log_error("the lws service loop failed");
      sim.exit_code = 1;
      break;
    }
  }
  if (g_signal && !sim.stop)
    log_info("signal %d: exiting", (int)g_signal);
  rc = sim.exit_code;
  teardown(&sim);
  return rc;
}
