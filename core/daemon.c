/* SPDX-License-Identifier: MIT */
/*
 * daemon: see daemon.h. It wires the modules together and runs the loop;
 * the life of a message (push to ack) is the ingress module's. Everything
 * here runs on the I/O thread except the wake-up hook (it only calls
 * lws_cancel_service), host_send/daemon_reply (worker threads; they go
 * straight to ingress_send) and daemon_stop (an atomic flag plus a
 * wake-up).
 */
#include "daemon.h"

#include <errno.h>
#include <stddef.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "acks.h"
#include "apicall.h"
#include "buf.h"
#include "deadletter.h"
#include "dedupe.h"
#include "ingress.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "observe.h"
#include "plugins.h"
#include "rest.h"
#include "session.h"
#include "util.h"

#define TICK_US (100 * 1000)

struct daemon {
  struct config *cfg; /* the daemon's reference to the current snapshot */
  struct keystore *ks;
  struct lws_context *ctx;
  struct lws_protocols protocols[4];
  lws_sorted_usec_list_t tick;
  struct session *session;
  struct rest *rest;
  struct apicalls *api;    /* plugins' calls to the Mixin API */
  struct metrics *metrics; /* metrics_listen, or NULL */
  struct acks *acks;
  struct outbox *outbox;
  struct dispatch *dispatch;
  struct plugin_host *plugins; /* NULL in handler mode */
  struct deadletter *dl;       /* dead_letter_file, shared with the plugin host */
  struct dedupe *dedupe;
  struct ingress *ingress; /* every inbound message, from push to ack */
  struct notify *notify;   /* systemd (NOTIFY_SOCKET); NULL without it */
  daemon_handler_fn fn;
  void *fn_ud;

  int sigfd;
  atomic_int stop_requested; /* set by daemon_stop from any thread */
  atomic_int wake_pending;   /* a wake-up is on its way to the loop */
  int stopping;              /* I/O thread: graceful stop in progress */
  int64_t stop_deadline;
  int64_t close_deadline;
  int closing;   /* session_stop was called */
  int quit;      /* leave the loop */
  int forced;    /* a second stop signal: wait for nothing more */
  int abandoned; /* plugin code still ran at exit: workers not joined */
  int exit_code;
  struct buf plugin_stats; /* the plugins' counters, kept after they unload */
  /* Reload: a HUP sets hup_pending; the loop starts a reload when none is
   * in progress, so HUPs during a reload fold into one follow-up. */
  int hup_pending;
  int reloading;
  int64_t reload_started;
  char reload_core[600];      /* what the [blazebot] part of the reload did */
  struct observe_reloads rl;  /* reloads, refusals, the last one's time and outcome */
  struct observe_sources obs; /* what /metrics and /healthz read */
  char *last_reload_summary;
  uint64_t kept_mapped_at_exit;
};

/* ---- session events -------------------------------------------------------- */

/* Handler mode: the embedder's handler gets the daemon (for daemon_reply). */
static int run_handler(void *ud, struct job *job) {
  struct daemon *d = ud;
  return d->fn(d->fn_ud, d, job);
}

int daemon_reply(struct daemon *d, struct job *job, const struct outbox_msg *m,
                 char id_out[UUID_STR_LEN]) {
  return ingress_send(d->ingress, job, m, id_out);
}

static void on_push(void *ud, const struct envelope *env) {
  struct daemon *d = ud;
  ingress_push(d->ingress, env);
}

static void on_open(void *ud) {
  struct daemon *d = ud;
  int64_t now = now_ms();
  acks_tick(d->acks, now, 1);
  outbox_tick(d->outbox, now);
  notify_connected(d->notify, d->cfg->blaze_url, plugins_count(d->plugins));
}

static void on_fatal(void *ud, const char *why) {
  struct daemon *d = ud;
  log_error("%s", why);
  d->exit_code = strstr(why, "401") ? DAEMON_EXIT_AUTH : DAEMON_EXIT_FATAL;
  d->quit = 1;
  notify_stopping(d->notify, why);
}

/* ---- reload ------------------------------------------------------------------ */

/* The status file ([blazebot] status_file): the daemon's pid and the outcome
 * of the last reload, as one JSON object, replaced atomically. `blazebot
 * --reload` reads it. */
static void write_status(struct daemon *d) {
  if (!d->cfg->status_file)
    return;
  json_t *o = json_object();
  json_object_set_new(o, "pid", json_integer((json_int_t)getpid()));
  json_object_set_new(o, "reloads", json_integer((json_int_t)d->rl.reloads));
  json_object_set_new(o, "reloads_failed", json_integer((json_int_t)d->rl.failed));
  json_object_set_new(o, "reloading", json_boolean(d->reloading));
  json_object_set_new(o, "pending", json_boolean(d->hup_pending));
  json_object_set_new(o, "plugins", json_integer((json_int_t)plugins_count(d->plugins)));
  json_object_set_new(o, "plugins_kept_mapped",
                      json_integer((json_int_t)plugins_kept_mapped(d->plugins)));
  if (d->rl.reloads) {
    json_t *l = json_object();
    json_object_set_new(l, "time", json_integer((json_int_t)d->rl.last_time));
    json_object_set_new(l, "ok", json_boolean(d->rl.last_ok));
    json_object_set_new(
        l, "summary", json_string(d->last_reload_summary ? d->last_reload_summary : ""));
    json_object_set_new(o, "last_reload", l);
  }
  /* A fresh file made with O_EXCL (mkstemp) in the same folder, then
   * renamed over the old one: a symlink planted at any fixed name is never
   * followed, and readers see the old or the new file, never half of one. */
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.XXXXXX", d->cfg->status_file);
  int fd = mkstemp(tmp);
  int ok = fd >= 0 && fchmod(fd, 0644) == 0 && json_dumpfd(o, fd, JSON_COMPACT) == 0;
  if (fd >= 0 && close(fd) < 0)
    ok = 0;
  if (!ok || rename(tmp, d->cfg->status_file) < 0) {
    log_warn("cannot write the status file %s: %s", d->cfg->status_file, strerror(errno));
    if (fd >= 0)
      unlink(tmp);
  }
  json_decref(o);
}

/* Every reload ends here, with exactly one summary line. */
static void reload_end(struct daemon *d, int ok, const char *summary) {
  int64_t ms = now_ms() - d->reload_started;
  d->reloading = 0;
  d->rl.reloads++;
  d->rl.last_ok = ok;
  if (!ok)
    d->rl.failed++;
  d->rl.last_time = (int64_t)time(NULL);
  free(d->last_reload_summary);
  size_t n = strlen(d->reload_core) + strlen(summary) + 64;
  d->last_reload_summary = malloc(n);
  if (d->last_reload_summary)
    snprintf(d->last_reload_summary, n, "%s%s%s", d->reload_core,
             d->reload_core[0] && summary[0] ? "; plugins: " : "", summary);
  const char *line = d->last_reload_summary ? d->last_reload_summary : summary;
  if (ok)
    log_info("reload: done in %lld ms: %s", (long long)ms, line);
  else
    log_warn("reload: done with refusals in %lld ms: %s", (long long)ms, line);
  notify_reloaded(d->notify, ok, line);
  write_status(d);
}

static void on_plugins_reloaded(void *ud, int ok, const char *summary) {
  reload_end(ud, ok, summary);
}

/* A refused reload: nothing was changed. */
static void reload_refused(struct daemon *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void reload_refused(struct daemon *d, const char *fmt, ...) {
  char why[800];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  d->reloading = 0;
  d->rl.reloads++;
  d->rl.failed++;
  d->rl.last_ok = 0;
  d->rl.last_time = (int64_t)time(NULL);
  free(d->last_reload_summary);
  d->last_reload_summary = strdup(why);
  log_error("reload: refused: %s; keeping the running configuration", why);
  notify_reloaded(d->notify, -1, why);
  write_status(d);
}

/* SIGHUP, on the loop: re-reads the ini into a new snapshot, applies the
 * [blazebot] keys (a keystore or blaze_url change reconnects once), then
 * hands the plugin sections to the plugin host, which finishes the reload
 * over the next ticks (reload_end). Any ini error changes nothing. */
static void reload(struct daemon *d) {
  d->hup_pending = 0;
  d->reload_started = now_ms();
  notify_reloading(d->notify);
  d->reload_core[0] = 0;
  log_info("reload: re-reading %s", d->cfg->path);
  struct config *ncfg = NULL;
  int nerr = config_load(d->cfg->path, &ncfg);
  if (nerr) {
    reload_refused(d, "%d error(s) in %s", nerr, d->cfg->path);
    return;
  }
  /* The keystore is read again even under the same path: an operator may
   * replace the file in place (a rotated session). */
  struct keystore *nks = NULL;
  char kerr[512];
  if (keystore_load(ncfg->keystore, 1, &nks, kerr, sizeof kerr) < 0) {
    config_free(ncfg);
    reload_refused(d, "%s", kerr);
    return;
  }
  int ks_changed = !keystore_equal(nks, d->ks);
  if (!ks_changed) {
    keystore_free(nks);
    nks = NULL;
  }
  if ((ncfg->ca_file || d->cfg->ca_file) &&
      (!ncfg->ca_file || !d->cfg->ca_file || strcmp(ncfg->ca_file, d->cfg->ca_file) != 0))
    log_warn("reload: ca_file changed; it takes effect at the next restart");
  if (ncfg->workers != d->cfg->workers)
    log_warn("reload: workers changed; it takes effect at the next restart");
  if ((ncfg->metrics_listen || d->cfg->metrics_listen) &&
      (!ncfg->metrics_listen || !d->cfg->metrics_listen ||
       strcmp(ncfg->metrics_listen, d->cfg->metrics_listen) != 0))
    log_warn("reload: metrics_listen changed; it takes effect at the next restart");
  int url_changed = strcmp(ncfg->blaze_url, d->cfg->blaze_url) != 0;
  /* Only this thread reads the daemon's modules' snapshot; plugin
   * instances hold references of their own (their sections' strings are
   * borrowed from theirs), so the old one goes when its last user does. */
  struct config *ocfg = d->cfg;
  d->cfg = ncfg;
  log_set_level(ncfg->log_level);
  log_set_format(ncfg->log_format);
  struct keystore *oks = d->ks;
  if (nks)
    d->ks = nks;
  session_set_config(d->session, d->cfg, d->ks);
  rest_set_config(d->rest, d->cfg, d->ks);
  acks_set_config(d->acks, d->cfg);
  outbox_set_config(d->outbox, d->cfg);
  apicalls_set_config(d->api, d->cfg);
  deadletter_set_path(d->dl, d->cfg->dead_letter_file);
  config_free(ocfg);
  if (nks) {
    /* Workers never read the keystore: the plugins' bot id is interned by
     * the host (plugins_set_bot_id). */
    if (d->plugins)
      plugins_set_bot_id(d->plugins, d->ks->user_id);
    keystore_free(oks);
  }
  snprintf(d->reload_core, sizeof d->reload_core, "core: keystore %s, blaze_url %s%s",
           ks_changed ? "changed" : "unchanged", d->cfg->blaze_url,
           ks_changed || url_changed ? " (reconnecting once)" : "");
  d->reloading = 1;
  write_status(d);
  if (!d->plugins) {
    reload_end(d, 1, "");
    return;
  }
  if (plugins_reload_begin(d->plugins, d->cfg, now_ms(), on_plugins_reloaded, d) < 0)
    reload_end(d, 0, "the plugin host is stopping");
}

/* Starts a reload when one was asked for and none is in progress. */
static void maybe_reload(struct daemon *d) {
  if (d->hup_pending && !d->reloading && !d->stopping)
    reload(d);
}

/* ---- loop ---------------------------------------------------------------------- */

static void begin_stop(struct daemon *d, const char *why) {
  if (d->stopping)
    return;
  d->stopping = 1;
  d->stop_deadline = now_ms() + d->cfg->shutdown_timeout_ms;
  log_info("stopping (%s): finishing %zu message(s) in processing, then flushing acks",
           why, ingress_inflight(d->ingress));
  char st[160];
  snprintf(st, sizeof st, "stopping (%s): finishing %zu message(s) in processing", why,
           ingress_inflight(d->ingress));
  notify_stopping(d->notify, st);
  /* The socket is still read, for the answers to acks and replies already
   * sent; pushes read meanwhile are left unprocessed and unacknowledged
   * (the server delivers them after the restart). Reading resumes if back
   * pressure held it. */
  ingress_stop(d->ingress);
}

static void progress_stop(struct daemon *d, int64_t now) {
  if (!d->stopping || d->quit)
    return;
  if (!d->closing) {
    size_t inflight = ingress_inflight(d->ingress);
    int busy = inflight || acks_outstanding(d->acks);
    if (busy && now < d->stop_deadline)
      return;
    if (busy)
      log_warn("stop deadline passed with %zu message(s) in processing and %zu ack(s) "
               "unconfirmed; they will be redelivered",
               inflight, acks_outstanding(d->acks));
    outbox_close(d->outbox);
    session_stop(d->session);
    d->closing = 1;
    d->close_deadline = now + 2000;
  }
  if (session_is_closed(d->session) || now >= d->close_deadline)
    d->quit = 1;
}

static void tick(lws_sorted_usec_list_t *sul) {
  struct daemon *d = lws_container_of(sul, struct daemon, tick);
  int64_t now = now_ms();
  if (atomic_load(&d->stop_requested))
    begin_stop(d, "requested");
  ingress_tick(d->ingress, now);
  plugins_tick(d->plugins, now);
  maybe_reload(d);
  session_tick(d->session, now);
  outbox_tick(d->outbox, now);
  apicalls_tick(d->api, now);
  acks_tick(d->acks, now, d->stopping && !ingress_inflight(d->ingress));
  rest_tick(d->rest, now);
  progress_stop(d, now);
  notify_tick(d->notify, now, session_is_open(d->session),
              session_get_stats(d->session)->connect_errors);
  lws_sul_schedule(d->ctx, 0, &d->tick, tick, TICK_US);
}

static void on_signal(struct daemon *d) {
  struct signalfd_siginfo si;
  int hup = 0;
  while (read(d->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
    switch (si.ssi_signo) {
    case SIGTERM:
    case SIGINT:
      if (d->stopping) {
        log_warn("second stop signal: exiting now");
        d->quit = 1;
        d->forced = 1;
      }
      begin_stop(d, si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
      break;
    case SIGHUP:
      hup = 1; /* HUPs that queued up fold into one reload */
      break;
    default:
      break;
    }
  }
  if (hup && !d->stopping && !d->hup_pending) {
    /* The next tick reloads (maybe_reload): HUPs until then, and during a
     * reload in progress, fold into that one reload. */
    d->hup_pending = 1;
    write_status(d);
  }
}

static int loop_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                         void *in, size_t len) {
  struct daemon *d = lws_context_user(lws_get_context(wsi));
  switch (reason) {
  case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
    /* Workers finished jobs or queued messages: handle them now rather than
     * at the next tick. Cleared first: work queued from here on wakes the
     * loop again. */
    if (d)
      atomic_store(&d->wake_pending, 0);
    if (d && d->dispatch) {
      int64_t now = now_ms();
      ingress_drain(d->ingress);
      plugins_poll(d->plugins, now);
      outbox_tick(d->outbox, now);
      apicalls_tick(d->api, now);
      if (atomic_load(&d->stop_requested))
        begin_stop(d, "requested");
    }
    break;
  case LWS_CALLBACK_RAW_RX_FILE:
    if (d)
      on_signal(d);
    break;
  case LWS_CALLBACK_RAW_CLOSE_FILE:
    break;
  default:
    break;
  }
  (void)user;
  (void)in;
  (void)len;
  return 0;
}

/* Wakes the loop from another thread, coalesced like uv_async_send: one
 * wake-up (a pipe write and a loop pass) covers everything queued before
 * the loop takes it. */
static void wake(void *ud) {
  struct daemon *d = ud;
  if (!atomic_exchange(&d->wake_pending, 1))
    lws_cancel_service(d->ctx);
}

/* The plugin host's send (see plugin_host_services). */
static int host_send(void *ud, struct job *job, const struct outbox_msg *m,
                     char id_out[UUID_STR_LEN]) {
  struct daemon *d = ud;
  return ingress_send(d->ingress, job, m, id_out);
}

/* The plugin host's api (see plugin_host_services). */
static int host_api(void *ud, const char *method, const char *path, const void *body,
                    size_t len, int timeout_ms, apicall_done_fn done, void *arg) {
  struct daemon *d = ud;
  return apicalls_submit(d->api, method, path, body, len, timeout_ms, done, arg);
}

/* The plugin host's upload (see plugin_host_services). */
static int host_upload(void *ud, const void *data, size_t len, int timeout_ms,
                       apicall_upload_fn done, void *arg) {
  struct daemon *d = ud;
  return apicalls_upload(d->api, data, len, timeout_ms, done, arg);
}

static void on_settled(void *ud, void *owner, int accepted) {
  struct daemon *d = ud;
  ingress_settled(d->ingress, owner, accepted);
}

static void lws_log_emit(int level, const char *line) {
  size_t n = strlen(line);
  while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
    n--;
  log_msg(level == LLL_ERR ? LOGL_WARN : LOGL_DEBUG, "lws: %.*s", (int)n, line);
}

struct daemon *daemon_new(struct config *cfg, struct keystore *ks, daemon_handler_fn fn,
                          void *ud, int *exit_code) {
  *exit_code = DAEMON_EXIT_FATAL;
  struct daemon *d = calloc(1, sizeof *d);
  if (!d) {
    config_free(cfg);
    keystore_free(ks);
    return NULL;
  }
  d->cfg = cfg;
  d->ks = ks;
  d->fn = fn;
  d->fn_ud = ud;
  d->sigfd = -1;

  /* Signals go to the signalfd, so every thread must have them blocked:
   * block before any thread (lws, workers) starts. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);
  d->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (d->sigfd < 0) {
    log_error("signalfd: %s", strerror(errno));
    goto fail;
  }
  /* systemd's notification socket; READY=1 at the latest after the first
   * attempt could have connected and listed (see notify.h). */
  d->notify = notify_new(cfg->connect_timeout_ms + cfg->request_timeout_ms + 1000);

  lws_set_log_level(log_get_level() >= LOGL_DEBUG ? LLL_ERR | LLL_WARN : LLL_ERR,
                    lws_log_emit);
  d->protocols[0] = session_protocol;
  d->protocols[1] = rest_protocol;
  d->protocols[2] =
      (struct lws_protocols){.name = "blazebot-loop", .callback = loop_callback};
  struct lws_context_creation_info info;
  memset(&info, 0, sizeof info);
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.protocols = d->protocols;
  info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
  info.client_ssl_ca_filepath = cfg->ca_file;
  info.user = d;
  info.fd_limit_per_thread = 64;
  /* What one read takes from a socket: a backlog of pushes is read 64 KiB
   * (about 150 frames) a system call, not 4 KiB. */
  info.pt_serv_buf_size = 64 * 1024;
  d->ctx = lws_create_context(&info);
  if (!d->ctx) {
    log_error("cannot create the libwebsockets context (TLS setup failed? ca_file %s)",
              cfg->ca_file ? cfg->ca_file : "(system store)");
    goto fail;
  }

  static const struct session_callbacks cbs = {
      .on_open = on_open, .on_push = on_push, .on_fatal = on_fatal};
  d->session = session_new(d->ctx, cfg, ks, &cbs, d);
  d->rest = rest_new(d->ctx, cfg, ks);
  d->dedupe = dedupe_new((size_t)cfg->dedupe_capacity);
  if (!d->session || !d->rest || !d->dedupe)
    goto fail;
  d->api = apicalls_new(d->rest, cfg, wake, d);
  if (!d->api)
    goto fail;
  d->acks = acks_new(cfg, d->session, d->rest);
  d->outbox = outbox_new(cfg, d->session, d->rest, on_settled, d, wake, d);
  if (!d->acks || !d->outbox)
    goto fail;
  d->dl = deadletter_new(cfg->dead_letter_file);
  if (!d->dl)
    goto fail;
  d->dispatch = dispatch_new(cfg->workers, 2, wake, d);
  if (!d->dispatch)
    goto fail;
  const struct ingress_deps deps = {.session = d->session,
                                    .acks = d->acks,
                                    .outbox = d->outbox,
                                    .dedupe = d->dedupe,
                                    .dispatch = d->dispatch,
                                    .handler = fn ? run_handler : NULL,
                                    .handler_ud = d};
  d->ingress = ingress_new(&deps, cfg);
  if (!d->ingress)
    goto fail;
  if (!fn) {
    int refused = 0;
    const struct plugin_host_services svc = {
        .send = host_send, .wake = wake, .api = host_api, .upload = host_upload, .ud = d};
    d->plugins = plugins_new(cfg, &svc, d->dispatch, ks->user_id, &refused);
    if (!d->plugins)
      goto fail;
    plugins_set_deadletter(d->plugins, d->dl);
    ingress_set_plugins(d->ingress, d->plugins);
    if (refused) {
      /* At startup a missing plugin would mean messages acknowledged
       * without the processing the operator configured: refuse to run. */
      log_error("%d plugin(s) refused; not starting (fix the lines above)", refused);
      *exit_code = DAEMON_EXIT_CONFIG;
      goto fail;
    }
  }

  lws_sock_file_fd_type fd;
  fd.filefd = d->sigfd;
  struct lws_vhost *vh = lws_get_vhost_by_name(d->ctx, "default");
  if (!vh || !lws_adopt_descriptor_vhost(vh, LWS_ADOPT_RAW_FILE_DESC, fd, "blazebot-loop",
                                         NULL)) {
    log_error("cannot watch the signal descriptor");
    goto fail;
  }
  if (cfg->metrics_listen) {
    char merr[300];
    d->obs = (struct observe_sources){.ingress = d->ingress,
                                      .session = d->session,
                                      .acks = d->acks,
                                      .outbox = d->outbox,
                                      .rest = d->rest,
                                      .plugins = &d->plugins,
                                      .reload = &d->rl,
                                      .stopping = &d->stopping};
    d->metrics = metrics_new(d->ctx, cfg->metrics_listen, observe_metrics, observe_health,
                             &d->obs, merr, sizeof merr);
    if (!d->metrics) {
      log_error("%s", merr);
      *exit_code = DAEMON_EXIT_CONFIG;
      goto fail;
    }
  }
  return d;
fail:
  daemon_free(d);
  return NULL;
}

/* After plugins_shutdown_all: joins the workers, then unmaps the plugins,
 * in that order, so no worker is in a plugin's code when it goes. The
 * routing state of jobs that never finished goes back to the host first. */
static void unload_plugins(struct daemon *d) {
  if (d->dispatch) {
    dispatch_free(d->dispatch);
    d->dispatch = NULL;
  }
  if (d->ingress) {
    ingress_release_routes(d->ingress);
    ingress_set_plugins(d->ingress, NULL);
  }
  plugins_free(d->plugins);
  d->plugins = NULL;
}

void daemon_free(struct daemon *d) {
  if (!d)
    return;
  if (d->outbox)
    outbox_abandon(d->outbox);
  if (d->api)
    apicalls_abort(d->api);
  /* Shut the plugins down, join the workers, then unmap: in that order, so
   * no worker is in a plugin's code when it goes. */
  if (plugins_shutdown_all(d->plugins, now_ms() + 1000, NULL, NULL) < 0)
    d->abandoned = 1;
  if (d->abandoned)
    return; /* threads may still run plugin code: leave it all to exit */
  unload_plugins(d);
  if (d->ctx)
    lws_context_destroy(d->ctx); /* closes wsis: session/rest callbacks run */
  metrics_free(d->metrics);
  session_free(d->session);
  if (d->api)
    apicalls_abort(d->api); /* answered before rest_free, which frees orphans */
  rest_free(d->rest);
  apicalls_free(d->api);
  acks_free(d->acks);
  outbox_free(d->outbox);
  /* Jobs that did not finish are freed unacknowledged: the server will
   * redeliver them. */
  ingress_free(d->ingress);
  dedupe_free(d->dedupe);
  deadletter_free(d->dl);
  if (d->sigfd >= 0)
    close(d->sigfd);
  notify_free(d->notify);
  config_free(d->cfg);
  keystore_free(d->ks);
  buf_fini(&d->plugin_stats);
  free(d->last_reload_summary);
  free(d);
}

/* While plugins shut down after the loop: 1 once a stop signal arrives
 * (the operator's "now"). SIGHUP is dropped: there is nothing to reload. */
static int stop_signalled(void *ud) {
  struct daemon *d = ud;
  struct signalfd_siginfo si;
  while (!d->forced && read(d->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
    if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
      log_warn("stop signal while plugins shut down: exiting now");
      d->forced = 1;
    }
  }
  return d->forced;
}

int daemon_abandoned(const struct daemon *d) {
  return d->abandoned;
}

int daemon_run(struct daemon *d) {
  d->exit_code = DAEMON_EXIT_OK;
  session_start(d->session);
  write_status(d);
  lws_sul_schedule(d->ctx, 0, &d->tick, tick, 1);
  while (!d->quit) {
    if (lws_service(d->ctx, 0) < 0)
      break;
    /* A full batch of acks goes out as soon as a slot is free (an answer
     * came back, or messages finished), not at the next tick: waiting for
     * the tick capped acks at 8 batches a tick, 8,000 a second. */
    if (!d->stopping)
      acks_tick(d->acks, now_ms(), 0);
  }
  lws_sul_schedule(d->ctx, 0, &d->tick, NULL, LWS_SET_TIMER_USEC_CANCEL);
  /* Jobs still running are waited for (their acks cannot be sent any more,
   * so they will be redelivered); their memory is released here. */
  /* Plugins finish what they are running and shut down (timers cancelled,
   * blocking work waited for) while the workers still run; then the pool
   * stops. Unfinished jobs are not acknowledged and will be redelivered.
   * The plugins' counters are kept for daemon_stats_json. API calls still
   * pending are answered now (no answer), so plugins get every callback
   * they were promised before their shutdown. */
  outbox_abandon(d->outbox);
  apicalls_abort(d->api);
  /* After a second stop signal nothing more is waited for: plugins that are
   * idle now shut down, busy ones are abandoned. */
  int64_t wait =
      d->forced
          ? 0
          : (d->cfg->shutdown_timeout_ms > 1000 ? d->cfg->shutdown_timeout_ms : 1000);
  if (plugins_shutdown_all(d->plugins, now_ms() + wait, stop_signalled, d) < 0) {
    d->abandoned = 1;
    log_error("exiting with plugin code still running: its messages are not acknowledged "
              "and will be delivered again");
  }
  buf_reset(&d->plugin_stats);
  plugins_stats_json(d->plugins, &d->plugin_stats);
  d->kept_mapped_at_exit = plugins_kept_mapped(d->plugins);
  if (d->cfg->status_file)
    unlink(d->cfg->status_file);
  if (!d->abandoned)
    unload_plugins(d);
  return d->exit_code;
}

/* ---- replay ------------------------------------------------------------------- */

static int same_file(const char *a, const char *b) {
  struct stat sa, sb;
  return a && b && stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

/* Keeps lws_service returning at least every tick while replaying (the
 * loop in daemon_replay does the work; the session must not be ticked). */
static void replay_tick(lws_sorted_usec_list_t *sul) {
  struct daemon *d = lws_container_of(sul, struct daemon, tick);
  lws_sul_schedule(d->ctx, 0, &d->tick, replay_tick, TICK_US);
}

int daemon_replay(struct daemon *d, const char *path) {
  if (!d->plugins)
    return DAEMON_EXIT_FATAL;
  if (same_file(path, d->cfg->dead_letter_file)) {
    log_error("replay: %s is the dead_letter_file itself; move it aside first (messages "
              "that fail again are written there)",
              path);
    return DAEMON_EXIT_CONFIG;
  }
  FILE *f = fopen(path, "re");
  if (!f) {
    log_error("replay: cannot open %s: %s", path, strerror(errno));
    return DAEMON_EXIT_CONFIG;
  }
  /* No Blaze connection: replies go over REST (the session stays held and
   * is never started), and nothing is acknowledged. */
  session_pause_rx(d->session, 1);
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  long lineno = 0, posted = 0, skipped = 0;
  int rc = DAEMON_EXIT_OK;
  while ((n = getline(&line, &cap, f)) >= 0) {
    lineno++;
    if (n <= 1)
      continue;
    struct deadletter_record rec;
    char err[256];
    if (deadletter_parse(line, &rec, err, sizeof err) < 0) {
      log_error("replay: %s:%ld: %s", path, lineno, err);
      skipped++;
      continue;
    }
    int r = ingress_replay(d->ingress, rec.message, rec.plugin, lineno);
    json_decref(rec.message);
    if (r < 0) {
      rc = DAEMON_EXIT_FATAL;
      break;
    }
    if (r)
      posted++;
    else
      skipped++;
  }
  free(line);
  fclose(f);
  log_info("replay: %ld message(s) from %s delivered again, %ld skipped", posted, path,
           skipped);
  /* Until every replayed message was processed and its replies settled. */
  lws_sul_schedule(d->ctx, 0, &d->tick, replay_tick, TICK_US);
  while (!d->quit && (ingress_inflight(d->ingress) || outbox_outstanding(d->outbox))) {
    if (lws_service(d->ctx, 0) < 0)
      break;
    int64_t now = now_ms();
    ingress_drain(d->ingress);
    ingress_repost_due(d->ingress, now);
    plugins_tick(d->plugins, now);
    outbox_tick(d->outbox, now);
    apicalls_tick(d->api, now);
    rest_tick(d->rest, now);
    if (stop_signalled(d))
      break;
  }
  lws_sul_schedule(d->ctx, 0, &d->tick, NULL, LWS_SET_TIMER_USEC_CANCEL);
  size_t unfinished = ingress_inflight(d->ingress);
  const struct ingress_counters *c = ingress_get_counters(d->ingress);
  uint64_t failed = c->replay_failed;
  log_info("replay: %llu processed (%llu failed again), %zu unfinished",
           (unsigned long long)c->replayed, (unsigned long long)failed, unfinished);
  outbox_abandon(d->outbox);
  apicalls_abort(d->api);
  if (plugins_shutdown_all(d->plugins, now_ms() + 5000, stop_signalled, d) < 0)
    d->abandoned = 1;
  if (!d->abandoned)
    unload_plugins(d);
  if (rc == DAEMON_EXIT_OK && (skipped || failed || unfinished))
    rc = DAEMON_EXIT_CONFIG;
  return rc;
}

void daemon_stop(struct daemon *d) {
  atomic_store(&d->stop_requested, 1);
  lws_cancel_service(d->ctx);
}

void daemon_get_counters(struct daemon *d, struct daemon_counters *out) {
  const struct ingress_counters *c = ingress_get_counters(d->ingress);
  *out = (struct daemon_counters){.received = c->received,
                                  .processed = c->processed,
                                  .duplicates = c->duplicates,
                                  .malformed = c->malformed,
                                  .deferred = c->deferred,
                                  .holds = c->holds,
                                  .handler_errors = c->handler_errors,
                                  .acked = acks_get_stats(d->acks)->acked,
                                  .replies_accepted = c->replies_accepted,
                                  .replies_dropped = c->replies_dropped};
}

size_t daemon_plugin_count(const struct daemon *d) {
  return plugins_count(d->plugins);
}

const char *daemon_bot_id(const struct daemon *d) {
  return d->ks->user_id;
}

char *daemon_stats_json(struct daemon *d) {
  const struct session_stats *ss = session_get_stats(d->session);
  const struct acks_stats *as = acks_get_stats(d->acks);
  const struct ingress_counters *ic = ingress_get_counters(d->ingress);
  struct outbox_stats os;
  outbox_get_stats(d->outbox, &os);
  json_t *o = json_object();
  const struct {
    const char *k;
    uint64_t v;
  } f[] = {
      {"received", ic->received},
      {"processed", ic->processed},
      {"duplicates", ic->duplicates},
      {"malformed", ic->malformed},
      {"deferred", ic->deferred},
      {"holds", ic->holds},
      {"replies_sent_rest", os.sent_rest},
      {"handler_errors", ic->handler_errors},
      {"acked", as->acked},
      {"ack_batches", as->batches},
      {"ack_retries", as->retries},
      {"replies_sent", os.sent},
      {"replies_accepted", os.accepted},
      {"replies_dropped", os.dropped},
      {"replies_retried", os.retried},
      {"outbox_full", os.full},
      {"connects", ss->connects},
      {"connect_errors", ss->connect_errors},
      {"bad_frames", ss->bad_frames},
      {"too_big", ss->too_big},
      {"receipts", ss->receipts},
      {"error_frames", ss->error_frames},
      {"timeouts", ss->timeouts},
      {"dead_links", ss->dead_links},
      {"frames_in", ss->frames_in},
      {"frames_out", ss->frames_out},
      {"bytes_in", ss->bytes_in},
      {"bytes_out", ss->bytes_out},
      {"inflight", ingress_inflight(d->ingress)},
      {"reloads", d->rl.reloads},
      {"reloads_failed", d->rl.failed},
      {"plugins_kept_mapped", d->kept_mapped_at_exit},
  };
  for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
    json_object_set_new(o, f[i].k, json_integer((json_int_t)f[i].v));
  for (int c = 0; c < SESSION_CAUSE_COUNT; c++) {
    char k[48];
    snprintf(k, sizeof k, "reconnects_%s", session_cause_names[c]);
    json_object_set_new(o, k, json_integer((json_int_t)ss->reconnects[c]));
  }
  json_object_set_new(
      o, "ack_transport",
      json_string(as->transport == ACK_TRANSPORT_REST ? "rest" : "websocket"));
  struct buf pb = {0};
  if (d->plugins)
    plugins_stats_json(d->plugins, &pb);
  const struct buf *src = d->plugins ? &pb : &d->plugin_stats;
  json_t *pj = src->data ? json_loads(src->data, 0, NULL) : NULL;
  buf_fini(&pb);
  if (pj)
    json_object_set_new(o, "plugins", pj);
  char *s = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  return s;
}
