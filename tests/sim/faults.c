/* SPDX-License-Identifier: MIT */
/*
 * faults: the failure modes the simulator can inject, so that the tests can
 * prove the daemon survives them. A SPEC is NAME[@N][:ARG], from --fault or
 * POST /_sim/fault. Faults that act on the WebSocket stream (drop, error401,
 * garbage, text, badjson, bomb, badbase64, missing, silent) wait for N more
 * pushes of stored messages, counted across connections, and then fire once
 * on whichever live connection writes next. The others change how requests
 * are answered: reject401[:K] refuses handshakes, create_error:CODE[xCOUNT]
 * fails sends, ack_batch_error (persistent) fails batched WebSocket acks,
 * api_error:ENDPOINT:CODE[xCOUNT] answers REST calls (or uploads and
 * downloads) of one endpoint, or of "any", with an error, and
 * api_slow:ENDPOINT:MS[xCOUNT] answers them MS milliseconds late. Arming
 * one of these replaces what was left of the same kind for that endpoint;
 * an endpoint's own fault is used before an "any" one.
 */
#include "sim.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static const struct {
  const char *name;
  int kind;
  int counted; /* takes @N */
} names[] = {
    {"drop", FAULT_DROP, 1},
    {"reject401", FAULT_REJECT401, 0},
    {"error401", FAULT_ERROR401, 1},
    {"garbage", FAULT_GARBAGE, 1},
    {"text", FAULT_TEXT, 1},
    {"badjson", FAULT_BADJSON, 1},
    {"bomb", FAULT_BOMB, 1},
    {"badbase64", FAULT_BADBASE64, 1},
    {"missing", FAULT_MISSING, 1},
    {"silent", FAULT_SILENT, 1},
    {"create_error", FAULT_CREATE_ERROR, 0},
    {"ack_batch_error", FAULT_ACK_BATCH_ERROR, 0},
    {"api_error", FAULT_API_ERROR, 0},
    {"api_slow", FAULT_API_SLOW, 0},
};

/* Endpoint names, in enum sim_endpoint order, then "any". */
static const char *const endpoint_names[SIM_EP_COUNT + 1] = {
    "me",
    "user",
    "users_fetch",
    "conversation_create",
    "conversation",
    "attachment_create",
    "attachment",
    "messages",
    "acknowledgements",
    "upload",
    "view",
    "any",
};

const char *faults_endpoint_name(int endpoint) {
  return endpoint >= 0 && endpoint <= SIM_EP_COUNT ? endpoint_names[endpoint] : "?";
}

/* Parses a decimal in [lo, hi] from s[0..n). Returns 0 or -1. */
static int parse_long(const char *s, size_t n, long lo, long hi, long *out) {
  char tmp[24];
  if (n == 0 || n >= sizeof tmp)
    return -1;
  memcpy(tmp, s, n);
  tmp[n] = 0;
  for (size_t i = 0; i < n; i++) {
    if (tmp[i] < '0' || tmp[i] > '9')
      return -1;
  }
  errno = 0;
  long v = strtol(tmp, NULL, 10);
  if (errno || v < lo || v > hi)
    return -1;
  *out = v;
  return 0;
}

int faults_parse(const char *spec, struct sim_fault *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  if (!spec || !*spec || strlen(spec) >= sizeof out->spec) {
    snprintf(err, errlen, "fault spec is empty or too long");
    return -1;
  }
  snprintf(out->spec, sizeof out->spec, "%s", spec);
  size_t nlen = strcspn(spec, "@:");
  const char *at = spec[nlen] == '@' ? spec + nlen + 1 : NULL;
  const char *colon = strchr(spec + nlen, ':');
  if (colon && at && colon < at) {
    snprintf(err, errlen, "fault %s: write NAME@N:ARG", spec);
    return -1;
  }
  int idx = -1;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    if (strlen(names[i].name) == nlen && strncmp(names[i].name, spec, nlen) == 0)
      idx = (int)i;
  }
  if (idx < 0) {
    snprintf(err, errlen,
             "unknown fault \"%.*s\" (drop reject401 error401 garbage text badjson bomb "
             "badbase64 missing silent create_error ack_batch_error api_error api_slow)",
             (int)nlen, spec);
    return -1;
  }
  out->kind = names[idx].kind;
  if (at) {
    size_t n = colon ? (size_t)(colon - at) : strlen(at);
    if (!names[idx].counted) {
      snprintf(err, errlen, "fault %s does not take @N", names[idx].name);
      return -1;
    }
    if (parse_long(at, n, 0, 1000000000L, &out->after) < 0) {
      snprintf(err, errlen, "fault %s: @N must be a count 0..1000000000", spec);
      return -1;
    }
  }
  const char *arg = colon ? colon + 1 : NULL;
  switch (out->kind) {
  case FAULT_REJECT401:
    out->arg = -1;
    if (arg && parse_long(arg, strlen(arg), 1, 1000000000L, &out->arg) < 0) {
      snprintf(err, errlen, "fault %s: K must be a positive count", spec);
      return -1;
    }
    return 0;
  case FAULT_CREATE_ERROR: {
    if (!arg) {
      snprintf(err, errlen, "fault create_error needs :CODE[xCOUNT]");
      return -1;
    }
    size_t cl = strcspn(arg, "x");
    out->count = 1;
    if (parse_long(arg, cl, 1, 99999999L, &out->arg) < 0 ||
        (arg[cl] == 'x' && parse_long(arg + cl + 1, strlen(arg + cl + 1), 1, 1000000000L,
                                      &out->count) < 0)) {
      snprintf(err, errlen, "fault %s: write create_error:CODE[xCOUNT]", spec);
      return -1;
    }
    return 0;
  }
  case FAULT_API_ERROR:
  case FAULT_API_SLOW: {
    int slow = out->kind == FAULT_API_SLOW;
    const char *form =
        slow ? "api_slow:ENDPOINT:MS[xCOUNT]" : "api_error:ENDPOINT:CODE[xCOUNT]";
    size_t el = arg ? strcspn(arg, ":") : 0;
    out->endpoint = -1;
    for (int i = 0; arg && i <= SIM_EP_COUNT; i++) {
      if (strlen(endpoint_names[i]) == el && !strncmp(arg, endpoint_names[i], el))
        out->endpoint = i;
    }
    if (out->endpoint < 0) {
      snprintf(err, errlen,
               "fault %s: write %s with ENDPOINT one of me user users_fetch "
               "conversation_create conversation attachment_create attachment messages "
               "acknowledgements upload view any",
               spec, form);
      return -1;
    }
    const char *v = arg[el] == ':' ? arg + el + 1 : "";
    size_t vl = strcspn(v, "x");
    out->count = 1;
    if (parse_long(v, vl, slow ? 1 : 100, slow ? SIM_MAX_SLOW_MS : 99999999L, &out->arg) <
            0 ||
        (v[vl] == 'x' &&
         parse_long(v + vl + 1, strlen(v + vl + 1), 1, 1000000000L, &out->count) < 0)) {
      snprintf(err, errlen, "fault %s: write %s (%s)", spec, form,
               slow ? "MS 1..60000" : "CODE 100..99999999");
      return -1;
    }
    return 0;
  }
  default:
    if (arg) {
      snprintf(err, errlen, "fault %s takes no :ARG", names[idx].name);
      return -1;
    }
    return 0;
  }
}

int faults_arm(struct sim *sim, const struct sim_fault *f) {
  switch (f->kind) {
  case FAULT_REJECT401:
    sim->reject_remaining = f->arg;
    break;
  case FAULT_CREATE_ERROR:
    sim->create_error_code = (int)f->arg;
    sim->create_error_count = f->count;
    break;
  case FAULT_ACK_BATCH_ERROR:
    sim->ack_batch_error = 1;
    break;
  case FAULT_API_ERROR:
    sim->api_faults[f->endpoint].error_code = (int)f->arg;
    sim->api_faults[f->endpoint].error_count = f->count;
    break;
  case FAULT_API_SLOW:
    sim->api_faults[f->endpoint].slow_ms = f->arg;
    sim->api_faults[f->endpoint].slow_count = f->count;
    break;
  default:
    if (sim->nfaults >= SIM_MAX_FAULTS) {
      log_warn("fault %s not armed: %d already armed", f->spec, SIM_MAX_FAULTS);
      return -1;
    }
    sim->faults[sim->nfaults++] = *f;
    if (f->after == 0 && sim->ctx)
      ws_wake_all(sim);
    break;
  }
  log_info("fault %s armed", f->spec);
  return 0;
}

void faults_note_push(struct sim *sim) {
  for (size_t i = 0; i < sim->nfaults; i++) {
    if (sim->faults[i].after > 0)
      sim->faults[i].after--;
  }
}

int faults_due(const struct sim *sim) {
  for (size_t i = 0; i < sim->nfaults; i++) {
    if (sim->faults[i].after == 0)
      return (int)i;
  }
  return -1;
}

struct sim_fault faults_take(struct sim *sim, int i) {
  struct sim_fault f = sim->faults[i];
  memmove(&sim->faults[i], &sim->faults[i + 1],
          (sim->nfaults - (size_t)i - 1) * sizeof sim->faults[0]);
  sim->nfaults--;
  return f;
}

int faults_take_create_error(struct sim *sim) {
  if (sim->create_error_count <= 0)
    return 0;
  sim->create_error_count--;
  faults_fired(sim, "create_error");
  return sim->create_error_code;
}

int faults_take_reject(struct sim *sim) {
  if (sim->reject_remaining == 0)
    return 0;
  if (sim->reject_remaining > 0)
    sim->reject_remaining--;
  faults_fired(sim, "reject401");
  return 1;
}

int faults_take_api_error(struct sim *sim, int endpoint) {
  struct sim_api_fault *f = &sim->api_faults[endpoint];
  if (f->error_count <= 0)
    f = &sim->api_faults[SIM_EP_ANY];
  if (f->error_count <= 0)
    return 0;
  f->error_count--;
  sim->st.faults_fired++;
  log_info("fault api_error:%s:%d fired on %s",
           faults_endpoint_name((int)(f - sim->api_faults)), f->error_code,
           faults_endpoint_name(endpoint));
  return f->error_code;
}

long faults_take_api_slow(struct sim *sim, int endpoint) {
  struct sim_api_fault *f = &sim->api_faults[endpoint];
  if (f->slow_count <= 0)
    f = &sim->api_faults[SIM_EP_ANY];
  if (f->slow_count <= 0)
    return 0;
  f->slow_count--;
  sim->st.faults_fired++;
  log_info("fault api_slow:%s:%ld fired on %s",
           faults_endpoint_name((int)(f - sim->api_faults)), f->slow_ms,
           faults_endpoint_name(endpoint));
  return f->slow_ms;
}

void faults_fired(struct sim *sim, const char *what) {
  sim->st.faults_fired++;
  log_info("fault %s fired", what);
}

const char *faults_error_description(int code) {
  switch (code) {
  case 400:
    return "The request body can't be parsed as valid data.";
  case 401:
    return "Unauthorized, maybe invalid token.";
  case 403:
    return "Forbidden.";
  case 404:
    return "The endpoint is not found.";
  case 429:
    return "Too Many Requests.";
  case 500:
    return "Internal Server Error.";
  case 7000:
    return "Blaze server error.";
  case 7001:
    return "The blaze operation timeout.";
  case 10002:
    return "invalid field";
  case 20121:
    return "Authorization code expired.";
  default:
    return "Simulated error.";
  }
}
