/* SPDX-License-Identifier: MIT */
/*
 * fuzz_ini: the ini file. The input is written to a memfd and loaded by
 * config_load (core/config.c) by its /proc/self/fd path. A snapshot that
 * loads is checked against the cross-key rules, then every [plugin.NAME]
 * section is read the way the plugin host reads it: loader.c's enabled,
 * categories and priority, max_attempts and path, and host.c's typed
 * getters of the services table (config_get, config_int, config_bool) on an
 * instance of that section, for each of its keys and a missing one. Last,
 * config_print (--print-config) writes the snapshot back; that text must
 * load again to the same values (plugin secrets masked, values it says it
 * could not write left out). The harness stands in for the plugin loader,
 * which is why it alone outside the plugin host includes plugin_host.h.
 */
#include <blazebot/plugin.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"
#include "host.h"
#include "loader.h"
#include "log.h"
#include "plugin_host.h"

static struct fuzz_file ini, printed;
static struct plugin_host *host; /* only its mutex is used (find_kv) */
static int ready;

static void cleanup(void) {
  close(ini.fd);
  close(printed.fd);
  pthread_mutex_destroy(&host->mu);
  free(host);
}

static int same_str(const char *a, const char *b) {
  return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* loader.c's view of the section and host.c's getters on it. */
static void plugin_section(const struct config *cfg, const struct config_plugin *p) {
  FUZZ_ASSERT(config_find_plugin(cfg, p->name) == p);
  int bad = 0;
  int on = loader_is_enabled(cfg, p, &bad);
  FUZZ_ASSERT(bad == loader_enabled_bad(p));
  FUZZ_ASSERT(on == 0 || on == 1);
  FUZZ_ASSERT(!bad || !on);

  struct instance *in = calloc(1, sizeof *in);
  FUZZ_ASSERT(in != NULL);
  snprintf(in->name, sizeof in->name, "%s", p->name);
  in->section = p;
  in->cfg = cfg;
  in->h = host;
  in->ctx.inst = in;

  char err[512];
  struct sub subs[MAX_SUBSCRIPTIONS];
  int n = -1;
  if (loader_parse_subs(in, p, cfg, subs, &n, err, sizeof err) == 0) {
    FUZZ_ASSERT(n >= 0 && n <= MAX_SUBSCRIPTIONS);
    for (int i = 0; i < n; i++) {
      const char *star = strchr(subs[i].pat, '*');
      FUZZ_ASSERT(subs[i].pat[0] && (!star || !star[1]));
    }
  } else {
    FUZZ_ASSERT(err[0]);
  }
  int attempts = -2;
  if (loader_parse_max_attempts(p, cfg, &attempts, err, sizeof err) == 0)
    FUZZ_ASSERT(attempts >= -1 && attempts <= 100);
  char src[1100];
  if (loader_plugin_src(cfg, p, src, sizeof src, err, sizeof err) == 0)
    FUZZ_ASSERT(strchr(src, '/') != NULL);

  blazebot_ctx *ctx = &in->ctx;
  for (size_t i = 0; i <= p->nkv; i++) {
    const char *key = i < p->nkv ? p->kv[i].key : "fuzz-no-such-key";
    const char *val = host_table.config_get(ctx, key);
    FUZZ_ASSERT(i < p->nkv ? val == p->kv[i].value : val == NULL);
    int64_t iv = 0;
    int rc = host_table.config_int(ctx, key, -7, &iv);
    if (!val) {
      FUZZ_ASSERT(rc == 0 && iv == -7);
    } else if (rc == 0) {
      errno = 0;
      char *end;
      long long want = strtoll(val, &end, 10);
      FUZZ_ASSERT(!errno && end != val && !*end && iv == want);
    } else {
      FUZZ_ASSERT(rc == -1 && iv == -7);
    }
    int bv = -1, parsed = -1;
    rc = host_table.config_bool(ctx, key, 1, &bv);
    if (!val)
      FUZZ_ASSERT(rc == 0 && bv == 1);
    else if (loader_parse_bool(val, &parsed) == 0)
      FUZZ_ASSERT(rc == 0 && bv == parsed);
    else
      FUZZ_ASSERT(rc == -1 && bv == 1);
  }
  free(in);
}

/* The value of key in section p, or NULL. */
static const char *kv_get(const struct config_plugin *p, const char *key) {
  for (size_t i = 0; i < p->nkv; i++)
    if (strcmp(p->kv[i].key, key) == 0)
      return p->kv[i].value;
  return NULL;
}

/* b is a, written by config_print (which left out `bad` values) and read
 * back. */
static void same_config(const struct config *a, const struct config *b, int bad) {
  FUZZ_ASSERT(a->ack_transport == b->ack_transport && a->ack_batch == b->ack_batch);
  FUZZ_ASSERT(a->ack_interval_ms == b->ack_interval_ms);
  FUZZ_ASSERT(a->max_frame_bytes == b->max_frame_bytes);
  FUZZ_ASSERT(a->log_level == b->log_level && a->log_format == b->log_format);
  FUZZ_ASSERT(a->ping_interval_ms == b->ping_interval_ms);
  FUZZ_ASSERT(a->idle_timeout_ms == b->idle_timeout_ms);
  FUZZ_ASSERT(a->request_timeout_ms == b->request_timeout_ms);
  FUZZ_ASSERT(a->connect_timeout_ms == b->connect_timeout_ms);
  FUZZ_ASSERT(a->reconnect_min_ms == b->reconnect_min_ms);
  FUZZ_ASSERT(a->reconnect_max_ms == b->reconnect_max_ms);
  FUZZ_ASSERT(a->outbox_capacity == b->outbox_capacity);
  FUZZ_ASSERT(a->send_rate_per_min == b->send_rate_per_min);
  FUZZ_ASSERT(a->dedupe_capacity == b->dedupe_capacity && a->workers == b->workers);
  FUZZ_ASSERT(a->shutdown_timeout_ms == b->shutdown_timeout_ms);
  FUZZ_ASSERT(a->reload_timeout_ms == b->reload_timeout_ms);
  FUZZ_ASSERT(a->allow_insecure_transport == b->allow_insecure_transport);
  if (bad)
    return; /* some value may be missing: the rest is not comparable */
  FUZZ_ASSERT(same_str(a->keystore, b->keystore));
  FUZZ_ASSERT(same_str(a->blaze_url, b->blaze_url));
  FUZZ_ASSERT(same_str(a->api_url, b->api_url));
  FUZZ_ASSERT(same_str(a->ca_file, b->ca_file));
  FUZZ_ASSERT(same_str(a->plugin_dir, b->plugin_dir));
  FUZZ_ASSERT(same_str(a->status_file, b->status_file));
  FUZZ_ASSERT(same_str(a->dead_letter_file, b->dead_letter_file));
  FUZZ_ASSERT(same_str(a->state_dir, b->state_dir));
  FUZZ_ASSERT(same_str(a->metrics_listen, b->metrics_listen));
  FUZZ_ASSERT(a->nplugins == b->nplugins);
  for (size_t i = 0; i < a->nplugins; i++) {
    const struct config_plugin *pa = &a->plugins[i], *pb = &b->plugins[i];
    FUZZ_ASSERT(strcmp(pa->name, pb->name) == 0);
    for (size_t k = 0; k < pa->nkv; k++) {
      const struct config_kv *kv = &pa->kv[k];
      const char *v = kv_get(pb, kv->key);
      FUZZ_ASSERT(v != NULL);
      if (*kv->value && config_secret_key(kv->key))
        FUZZ_ASSERT(strcmp(v, "********") == 0);
      else
        FUZZ_ASSERT(strcmp(v, kv->value) == 0);
    }
    /* The host's keys the section left to their defaults are written out. */
    size_t extra = !kv_get(pa, "path") + !kv_get(pa, "enabled");
    FUZZ_ASSERT(pb->nkv == pa->nkv + extra);
  }
}

static void print_and_reload(const struct config *cfg) {
  char *text = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);
  FUZZ_ASSERT(out != NULL);
  int bad = config_print(cfg, out);
  FUZZ_ASSERT(fclose(out) == 0);
  FUZZ_ASSERT(bad >= 0);
  fuzz_file_write(&printed, text, len);
  free(text);
  struct config *again = NULL;
  int rc = config_load(printed.path, &again);
  /* Everything written reads back; a left-out keystore cannot. */
  if (!bad)
    FUZZ_ASSERT(rc == 0);
  if (rc == 0) {
    same_config(cfg, again, bad);
    config_free(again);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!ready) {
    fuzz_file_open(&ini, "fuzz.ini");
    fuzz_file_open(&printed, "fuzz-printed.ini");
    host = calloc(1, sizeof *host);
    FUZZ_ASSERT(host != NULL && pthread_mutex_init(&host->mu, NULL) == 0);
    atexit(cleanup);
    ready = 1;
  }
  fuzz_file_write(&ini, data, size);
  struct config *cfg = NULL;
  int rc = config_load(ini.path, &cfg);
  if (rc != 0) {
    FUZZ_ASSERT(rc > 0 && cfg == NULL);
    return 0;
  }
  FUZZ_ASSERT(cfg != NULL && cfg->keystore && cfg->keystore[0] == '/');
  FUZZ_ASSERT(cfg->idle_timeout_ms > cfg->ping_interval_ms);
  FUZZ_ASSERT(cfg->reconnect_min_ms <= cfg->reconnect_max_ms);
  FUZZ_ASSERT(cfg->log_level >= LOGL_ERROR && cfg->log_level <= LOGL_DEBUG);
  for (size_t i = 0; i < cfg->nplugins; i++)
    plugin_section(cfg, &cfg->plugins[i]);
  print_and_reload(cfg);
  /* A second reference outlives the first. */
  const struct config *ref = config_ref(cfg);
  config_free(cfg);
  FUZZ_ASSERT(ref->nplugins < 1000000);
  config_free(ref);
  return 0;
}
