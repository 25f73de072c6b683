/* SPDX-License-Identifier: MIT */
/*
 * probe: a scriptable plugin for the routing and end-to-end tests, built
 * several times with -DPROBE_NAME=... so that every copy has its own
 * descriptor name. Its behaviour comes from its [plugin.NAME] section:
 * `result` = pass | handled | retry | error | retry_then_pass (RETRY on
 * attempt 1, PASS after), `reply` = a text sent back with host->reply,
 * `sleep_ms` = time spent in every call, and `log` = an absolute path to
 * which every call appends one line
 *
 *   NAME MESSAGE_ID ATTEMPT CATEGORY T_NS CONVERSATION_ID USER_ID REPLY_ID
 *
 * with T_NS the CLOCK_MONOTONIC time at entry and REPLY_ID "-" when no reply
 * was sent. Each line is one write() on an O_APPEND descriptor. Calls of one
 * instance are serialised by the host; if two ever overlap the probe writes
 * an "OVERLAP" line, which the tests look for.
 *
 * Plugin API 1.1 keys: `hold_ms` = N takes a hold on every message and
 * returns PASS at once; a timer N ms later replies under the hold and
 * releases it with `result` (log lines "HOLD ID" and "RELEASE ID REPLY_ID").
 * With `report_state_dir = true` the probe writes "STATE_DIR PATH|none" at
 * init and, with state_dir, a file `instance` holding instance_name() in it;
 * `timer_at_ms` = N schedules a timer_at N ms ahead on the wall clock that
 * logs "TIMER_AT LATE_MS". `api_get` = PATH holds every message, calls
 * api_request GET PATH, and in the answer's callback replies "api STATUS
 * CODE" and releases HANDLED (log line "API STATUS CODE BODY").
 * `send_result = true` sends `reply` with send_result instead of reply and
 * logs "RESULT STATUS CODE MESSAGE_ID" when the host reports its fate.
 * `upload_bytes` = N holds every message, uploads N bytes, and answers with
 * a PLAIN_DATA message naming the attachment (log "UPLOAD OK ID" or
 * "UPLOAD FAIL STATUS CODE ERROR"), then releases HANDLED.
 * `blocking_send = true` also hands every message to run_blocking, whose
 * work sends "from blocking work" to its conversation from the blocking
 * pool's thread (a send not tied to the message, made while later calls may
 * run on the plugin's queue); the done callback logs "BLOCKING_DONE ID" or
 * "BLOCKING_FAILED ID".
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <blazebot/plugin.h>

#ifndef PROBE_NAME
#define PROBE_NAME "probe"
#endif

enum probe_result { R_PASS, R_HANDLED, R_RETRY, R_ERROR, R_RETRY_THEN_PASS };

struct probe {
  blazebot_ctx *ctx;
  const struct blazebot_host *host;
  int result; /* enum probe_result */
  const char *reply;
  int64_t sleep_ms;
  int64_t hold_ms;
  const char *api_get;
  int64_t upload_bytes;
  int send_result;
  int blocking_send;
  int64_t timer_at_target;
  struct held *held; /* holds whose timer has not fired */
  int fd;
  int busy; /* in on_message: overlap detector (GNU atomics) */
};

static int parse_result(const char *s, int *out) {
  static const char *const names[] = {"pass", "handled", "retry", "error",
                                      "retry_then_pass"};
  for (int i = 0; i < 5; i++) {
    if (strcmp(s, names[i]) == 0) {
      *out = i;
      return 0;
    }
  }
  return -1;
}

static void probe_free(struct probe *p) {
  if (p) {
    if (p->fd >= 0)
      close(p->fd);
    free(p);
  }
}

static void log_line(struct probe *p, const char *line, size_t n) {
  if (p->fd >= 0 && write(p->fd, line, n) != (ssize_t)n)
    p->host->log(p->ctx, BLAZEBOT_LOG_ERROR, "probe log write failed");
}

/* "STATE_DIR PATH|none"; with a folder, writes instance_name() to
 * PATH/instance. */
static void probe_state_dir(struct probe *p) {
  int report = 0;
  if (!BLAZEBOT_HOST_HAS(p->host, state_dir) ||
      p->host->config_bool(p->ctx, "report_state_dir", 0, &report) != 0 || !report)
    return;
  const char *dir = p->host->state_dir(p->ctx);
  char line[1200];
  int n = snprintf(line, sizeof line, "STATE_DIR %s\n", dir ? dir : "none");
  if (n > 0 && (size_t)n < sizeof line)
    log_line(p, line, (size_t)n);
  if (!dir)
    return;
  snprintf(line, sizeof line, "%s/instance", dir);
  FILE *f = fopen(line, "w");
  if (f) {
    fputs(p->host->instance_name(p->ctx), f);
    fclose(f);
  }
}

static void probe_timer_at(void *state, void *arg) {
  struct probe *p = state;
  char line[64];
  (void)arg;
  int n = snprintf(
      line, sizeof line, "TIMER_AT %lld\n",
      (long long)(p->host->now_ms(p->ctx, BLAZEBOT_CLOCK_WALL) - p->timer_at_target));
  if (n > 0 && (size_t)n < sizeof line)
    log_line(p, line, (size_t)n);
}

static int probe_init(blazebot_ctx *ctx, const struct blazebot_host *host, void **state) {
  struct probe *p = calloc(1, sizeof *p);
  if (!p) {
    host->set_error(ctx, "out of memory");
    return -1;
  }
  p->ctx = ctx;
  p->host = host;
  p->fd = -1;
  const char *result = host->config_get(ctx, "result");
  if (result && parse_result(result, &p->result) < 0) {
    host->set_error(ctx,
                    "result '%s' is not pass, handled, retry, error or "
                    "retry_then_pass",
                    result);
    probe_free(p);
    return -1;
  }
  p->reply = host->config_get(ctx, "reply"); /* valid until shutdown */
  if (host->config_int(ctx, "sleep_ms", 0, &p->sleep_ms) != 0 || p->sleep_ms < 0 ||
      p->sleep_ms > 60000) {
    host->set_error(ctx, "sleep_ms must be 0..60000");
    probe_free(p);
    return -1;
  }
  const char *log = host->config_get(ctx, "log");
  if (log) {
    p->fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (p->fd < 0) {
      host->set_error(ctx, "cannot open %s: %s", log, strerror(errno));
      probe_free(p);
      return -1;
    }
  }
  if (host->config_int(ctx, "hold_ms", 0, &p->hold_ms) != 0 || p->hold_ms < 0 ||
      p->hold_ms > 600000) {
    host->set_error(ctx, "hold_ms must be 0..600000");
    probe_free(p);
    return -1;
  }
  p->api_get = host->config_get(ctx, "api_get");
  if (host->config_int(ctx, "upload_bytes", 0, &p->upload_bytes) != 0 ||
      p->upload_bytes < 0 || p->upload_bytes > (32 << 20) ||
      (p->upload_bytes && !BLAZEBOT_HOST_HAS(host, upload))) {
    host->set_error(ctx, "upload_bytes must be 0..32 MiB, on a host with upload");
    probe_free(p);
    return -1;
  }
  if (host->config_bool(ctx, "send_result", 0, &p->send_result) != 0 ||
      (p->send_result && !BLAZEBOT_HOST_HAS(host, send_result))) {
    host->set_error(ctx, "send_result needs a boolean and a host with plugin API 1.1");
    probe_free(p);
    return -1;
  }
  if (host->config_bool(ctx, "blocking_send", 0, &p->blocking_send) != 0) {
    host->set_error(ctx, "blocking_send must be true or false");
    probe_free(p);
    return -1;
  }
  int64_t at_ms = 0;
  if (host->config_int(ctx, "timer_at_ms", 0, &at_ms) != 0 || at_ms < 0) {
    host->set_error(ctx, "timer_at_ms must be >= 0");
    probe_free(p);
    return -1;
  }
  if ((p->hold_ms || at_ms || p->api_get) && !BLAZEBOT_HOST_HAS(host, timer_at)) {
    host->set_error(ctx, "hold_ms and timer_at_ms need a host with plugin API 1.1");
    probe_free(p);
    return -1;
  }
  *state = p;
  probe_state_dir(p);
  if (at_ms) {
    p->timer_at_target = host->now_ms(ctx, BLAZEBOT_CLOCK_WALL) + at_ms;
    if (host->timer_at(ctx, p->timer_at_target, probe_timer_at, NULL, NULL) != 0) {
      host->set_error(ctx, "timer_at failed");
      probe_free(p);
      return -1;
    }
  }
  return 0;
}

/* A message held until a timer fires (hold_ms). */
struct held {
  struct held *next, *prev; /* the probe's list: freed at shutdown if pending */
  struct probe *p;
  const struct blazebot_message *msg; /* valid while held */
  blazebot_hold *hold;
};

static int result_code(struct probe *p, const struct blazebot_message *msg) {
  switch (p->result) {
  case R_HANDLED:
    return BLAZEBOT_HANDLED;
  case R_RETRY:
    return BLAZEBOT_RETRY;
  case R_ERROR:
    return BLAZEBOT_ERROR;
  case R_RETRY_THEN_PASS:
    return msg->attempt == 1 ? BLAZEBOT_RETRY : BLAZEBOT_PASS;
  default:
    return BLAZEBOT_PASS;
  }
}

static void held_unlink(struct probe *p, struct held *hd);

static void probe_api_done(void *state, void *arg,
                           const struct blazebot_api_response *r) {
  struct probe *p = state;
  struct held *hd = arg;
  char text[64], line[400];
  snprintf(text, sizeof text, "api %d %d", (int)r->http_status, (int)r->error_code);
  if (p->host->reply(p->ctx, hd->msg, "PLAIN_TEXT", text, strlen(text), NULL) != 0)
    log_line(p, "API_REPLY_FAILED\n", 17);
  int n = snprintf(line, sizeof line, "API %d %d %.300s\n", (int)r->http_status,
                   (int)r->error_code, r->body);
  if (n > 0 && (size_t)n < sizeof line)
    log_line(p, line, (size_t)n);
  if (p->host->release(p->ctx, hd->hold, BLAZEBOT_HANDLED) != 0)
    log_line(p, "RELEASE_FAILED\n", 15);
  held_unlink(p, hd);
  free(hd);
}

static void probe_uploaded(void *state, void *arg,
                           const struct blazebot_upload_result *r) {
  struct probe *p = state;
  struct held *hd = arg;
  char line[400];
  int n;
  if (r->ok) {
    char data[300];
    int dn = snprintf(data, sizeof data,
                      "{\"attachment_id\":\"%s\",\"mime_type\":\"application/"
                      "octet-stream\",\"size\":%lld,\"name\":\"probe.bin\"}",
                      r->attachment_id, (long long)p->upload_bytes);
    if (p->host->reply(p->ctx, hd->msg, "PLAIN_DATA", data, (size_t)dn, NULL) != 0)
      log_line(p, "UPLOAD_REPLY_FAILED\n", 20);
    n = snprintf(line, sizeof line, "UPLOAD OK %s\n", r->attachment_id);
  } else {
    n = snprintf(line, sizeof line, "UPLOAD FAIL %d %d %s\n", (int)r->http_status,
                 (int)r->error_code, r->error);
  }
  if (n > 0 && (size_t)n < sizeof line)
    log_line(p, line, (size_t)n);
  if (p->host->release(p->ctx, hd->hold, BLAZEBOT_HANDLED) != 0)
    log_line(p, "RELEASE_FAILED\n", 15);
  held_unlink(p, hd);
  free(hd);
}

static void held_unlink(struct probe *p, struct held *hd) {
  if (hd->prev)
    hd->prev->next = hd->next;
  else
    p->held = hd->next;
  if (hd->next)
    hd->next->prev = hd->prev;
}

static void probe_release(void *state, void *arg) {
  struct probe *p = state;
  struct held *hd = arg;
  char reply_id[BLAZEBOT_ID_LEN] = "-", line[256];
  int rc = result_code(p, hd->msg);
  if (p->reply && p->host->reply(p->ctx, hd->msg, "PLAIN_TEXT", p->reply,
                                 strlen(p->reply), reply_id) != 0) {
    snprintf(reply_id, sizeof reply_id, "FAILED");
    rc = BLAZEBOT_ERROR;
  }
  int n = snprintf(line, sizeof line, "RELEASE %s %s\n", hd->msg->message_id, reply_id);
  if (n > 0 && (size_t)n < sizeof line)
    log_line(p, line, (size_t)n);
  if (p->host->release(p->ctx, hd->hold, rc) != 0)
    log_line(p, "RELEASE_FAILED\n", 15);
  /* A second release of the same hold must be refused. */
  if (p->host->release(p->ctx, hd->hold, rc) == 0)
    log_line(p, "DOUBLE_RELEASE_ACCEPTED\n", 24);
  held_unlink(p, hd);
  free(hd);
}

/* One blocking_send: what the work needs of the message, copied (the view
 * is borrowed for the on_message call only). */
struct blocking {
  struct probe *p; /* read-only in the work: ctx, host, fd */
  char message_id[BLAZEBOT_ID_LEN], conversation_id[BLAZEBOT_ID_LEN],
      user_id[BLAZEBOT_ID_LEN];
  int ok;
};

/* On the blocking pool's thread, not the plugin's queue. */
static void blocking_work(void *arg) {
  struct blocking *b = arg;
  static const char text[] = "from blocking work";
  struct blazebot_outgoing o = {.size = sizeof o,
                                .conversation_id = b->conversation_id,
                                .recipient_id = b->user_id,
                                .category = "PLAIN_TEXT",
                                .data = text,
                                .data_len = sizeof text - 1};
  b->ok = b->p->host->send(b->p->ctx, &o, NULL) == 0;
}

static void blocking_done(void *state, void *arg) {
  struct probe *p = state;
  struct blocking *b = arg;
  char line[128];
  int n = snprintf(line, sizeof line, "%s %s\n",
                   b->ok ? "BLOCKING_DONE" : "BLOCKING_FAILED", b->message_id);
  if (n > 0 && (size_t)n < sizeof line)
    log_line(p, line, (size_t)n);
  free(b);
}

static int blocking_post(struct probe *p, const struct blazebot_message *msg) {
  struct blocking *b = calloc(1, sizeof *b);
  if (!b)
    return -1;
  b->p = p;
  snprintf(b->message_id, sizeof b->message_id, "%s", msg->message_id);
  snprintf(b->conversation_id, sizeof b->conversation_id, "%s", msg->conversation_id);
  snprintf(b->user_id, sizeof b->user_id, "%s", msg->user_id);
  if (p->host->run_blocking(p->ctx, blocking_work, blocking_done, b) != 0) {
    free(b);
    return -1;
  }
  return 0;
}

/* Set by shutdown. A call after it is a host bug: it is reported on stderr
 * (the state is freed by then, so nothing else is touched). */
static int probe_shut;

static void probe_sent(void *state, void *arg, const struct blazebot_send_result *r) {
  struct probe *p = state;
  char line[160];
  (void)arg;
  int n = snprintf(line, sizeof line, "RESULT %u %d %s\n", (unsigned)r->status,
                   (int)r->code, r->message_id);
  if (n > 0 && (size_t)n < sizeof line)
    log_line(p, line, (size_t)n);
}

/* reply, or send_result tied to msg (send_result = true). */
static int probe_reply(struct probe *p, const struct blazebot_message *msg,
                       char id[BLAZEBOT_ID_LEN]) {
  if (!p->send_result)
    return p->host->reply(p->ctx, msg, "PLAIN_TEXT", p->reply, strlen(p->reply), id);
  struct blazebot_outgoing o = {.size = sizeof o,
                                .conversation_id = msg->conversation_id,
                                .recipient_id = msg->user_id,
                                .category = "PLAIN_TEXT",
                                .data = p->reply,
                                .data_len = strlen(p->reply)};
  return p->host->send_result(p->ctx, &o, probe_sent, NULL, id);
}

static int probe_on_message(void *state, const struct blazebot_message *msg) {
#if defined(__GNUC__)
  if (__atomic_load_n(&probe_shut, __ATOMIC_SEQ_CST)) {
    fprintf(stderr, "%s: AFTER_SHUTDOWN on_message\n", PROBE_NAME);
    return BLAZEBOT_ERROR;
  }
#endif
  struct probe *p = state;
  struct timespec t0;
  char line[512], reply_id[BLAZEBOT_ID_LEN] = "-";
  clock_gettime(CLOCK_MONOTONIC, &t0);
#if defined(__GNUC__)
  if (__atomic_fetch_add(&p->busy, 1, __ATOMIC_SEQ_CST) != 0)
    log_line(p, "OVERLAP\n", 8);
#endif
  if (p->sleep_ms > 0) {
    struct timespec d = {(time_t)(p->sleep_ms / 1000),
                         (long)(p->sleep_ms % 1000) * 1000000L};
    while (nanosleep(&d, &d) != 0 && errno == EINTR) {
    }
  }
  if (p->hold_ms || p->api_get || p->upload_bytes) {
    struct held *hd = calloc(1, sizeof *hd);
    int ok = hd != NULL;
    if (ok) {
      hd->p = p;
      hd->msg = msg;
      hd->hold = p->host->hold(p->ctx, msg);
      if (p->upload_bytes) {
        unsigned char *bytes = malloc((size_t)p->upload_bytes);
        ok = hd->hold && bytes;
        if (ok) {
          for (int64_t i = 0; i < p->upload_bytes; i++)
            bytes[i] = (unsigned char)(i * 7 + 3);
          ok =
              p->host->upload(p->ctx, bytes, (size_t)p->upload_bytes,
                              "application/octet-stream", 10000, probe_uploaded, hd) == 0;
        }
        free(bytes); /* the host copied it */
      } else if (p->api_get)
        ok = hd->hold && p->host->api_request(p->ctx, "GET", p->api_get, NULL, 0, 5000,
                                              probe_api_done, hd) == 0;
      else
        ok = hd->hold && p->host->timer_add(p->ctx, (uint32_t)p->hold_ms, 0,
                                            probe_release, hd, NULL) == 0;
    }
    int n = snprintf(line, sizeof line, "%s %s\n", ok ? "HOLD" : "HOLD_FAILED",
                     msg->message_id);
    if (n > 0 && (size_t)n < sizeof line)
      log_line(p, line, (size_t)n);
#if defined(__GNUC__)
    __atomic_fetch_sub(&p->busy, 1, __ATOMIC_SEQ_CST);
#endif
    if (!ok) {
      if (hd && hd->hold)
        p->host->release(p->ctx, hd->hold, BLAZEBOT_ERROR);
      free(hd);
      return BLAZEBOT_ERROR;
    }
    hd->next = p->held;
    if (p->held)
      p->held->prev = hd;
    p->held = hd;
    return BLAZEBOT_PASS;
  }
  int rc = result_code(p, msg);
  if (p->reply && probe_reply(p, msg, reply_id) != 0) {
    snprintf(reply_id, sizeof reply_id, "FAILED");
    rc = BLAZEBOT_ERROR;
  }
  if (p->blocking_send && blocking_post(p, msg) != 0)
    rc = BLAZEBOT_ERROR;
  int n = snprintf(line, sizeof line, "%s %s %u %s %lld %s %s %s\n", PROBE_NAME,
                   msg->message_id, (unsigned)msg->attempt, msg->category,
                   (long long)t0.tv_sec * 1000000000LL + t0.tv_nsec, msg->conversation_id,
                   msg->user_id, reply_id);
  if (n > 0 && (size_t)n < sizeof line)
    log_line(p, line, (size_t)n);
#if defined(__GNUC__)
  __atomic_fetch_sub(&p->busy, 1, __ATOMIC_SEQ_CST);
#endif
  return rc;
}

static void probe_shutdown(void *state) {
  struct probe *p = state;
#if defined(__GNUC__)
  if (__atomic_load_n(&p->busy, __ATOMIC_SEQ_CST) != 0)
    fprintf(stderr, "%s: SHUTDOWN_DURING_CALL\n", PROBE_NAME);
  __atomic_store_n(&probe_shut, 1, __ATOMIC_SEQ_CST);
#endif
  log_line(p, "SHUTDOWN\n", 9);
  /* Holds whose timer never fired: the host released them as RETRY. */
  while (p->held) {
    struct held *hd = p->held;
    p->held = hd->next;
    free(hd);
  }
  probe_free(p);
}

/* Without a `categories` key a probe gets plain texts only. */
static const struct blazebot_subscription subs[] = {{"PLAIN_TEXT", 0, 0}, {NULL, 0, 0}};

BLAZEBOT_PLUGIN(.flags = BLAZEBOT_FLAG_UNLOAD_SAFE, .name = PROBE_NAME, .version = "1.0",
                .description = "scriptable test plugin", .subscriptions = subs,
                .init = probe_init, .on_message = probe_on_message,
                .shutdown = probe_shutdown);
