/* SPDX-License-Identifier: MIT */
/*
 * No secret where a core dump, a log shipper or a scraper would find it.
 * For each keystore generation (Ed25519 hex, Ed25519 base64, RSA PEM), a
 * real daemon serves a session against the simulator: 10 messages echoed
 * and a REST call per message (the probe's GET /me), so the key has signed
 * a WebSocket token and many REST tokens. Then, while it runs, the test
 * reads the daemon's whole memory through /proc/PID/mem, region by region
 * as /proc/PID/smaps lists them, and looks for the key material: the seed's
 * bytes, its hex and base64 texts, any 16-character piece of the PEM.
 *   - No copy of it in any region a core dump would contain (every region
 *     without the "dd" (MADV_DONTDUMP) flag): the keystore's text, jansson's
 *     and OpenSSL's temporary copies were wiped, and the key itself lives
 *     in OpenSSL's secure heap.
 *   - Positive controls, so that the scan cannot pass by reading nothing:
 *     the bot's id (public, kept in the keystore struct) is found in
 *     dumpable memory, and the Ed25519 seed IS found, in a "dd" region.
 *   - /metrics and the status file hold no piece of the key and no token.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base64.h"
#include "check.h"
#include "harness.h"
#include "util.h"

#if !defined(ECHO_SO) || !defined(PROBE_DIR)
#error "plugins_e2e.cmake sets ECHO_SO and PROBE_DIR"
#endif

#define TEST_NAME "integration.secrets"
#define N 10
#define MAX_NEEDLES 64
#define SCAN_REGION_MAX (1L << 30) /* larger: reserved address space */

struct needle {
  unsigned char bytes[128];
  size_t len;
  char what[64];
};

struct needles {
  struct needle n[MAX_NEEDLES];
  int count;
};

static void add(struct needles *ns, const void *bytes, size_t len, const char *what) {
  if (ns->count >= MAX_NEEDLES || len > sizeof ns->n[0].bytes || len < 16)
    return;
  struct needle *n = &ns->n[ns->count++];
  memcpy(n->bytes, bytes, len);
  n->len = len;
  snprintf(n->what, sizeof n->what, "%s", what);
}

/* What must not be in dumpable memory, from the keystore file. seed gets
 * the Ed25519 seed (for the positive control), if the keystore has one. */
static void secrets_of(const char *ks, struct needles *ns, unsigned char seed[32],
                       int *has_seed) {
  *has_seed = 0;
  json_t *root = json_load_file(ks, 0, NULL);
  CHECK(root != NULL);
  const char *hex = json_string_value(json_object_get(root, "session_private_key"));
  const char *priv = json_string_value(json_object_get(root, "private_key"));
  unsigned char raw[64];
  if (hex && hex_decode(hex, strlen(hex), raw, sizeof raw) >= 32) {
    add(ns, hex, strlen(hex), "the seed's hex");
    char upper[129];
    size_t n = strlen(hex);
    for (size_t i = 0; i < n && i < 128; i++)
      upper[i] = (char)toupper((unsigned char)hex[i]);
    add(ns, upper, n < 128 ? n : 128, "the seed's hex, upper case");
    memcpy(seed, raw, 32);
    *has_seed = 1;
  } else if (priv && !strstr(priv, "BEGIN")) {
    add(ns, priv, strlen(priv), "the base64 private key");
    long got = base64_decode(priv, strlen(priv), raw, sizeof raw);
    CHECK_INT(got, 64);
    if (got == 64) {
      memcpy(seed, raw, 32);
      *has_seed = 1;
    }
  } else if (priv) {
    /* Every 16-character piece of the PEM body (the base64 of the DER). */
    for (const char *line = strchr(priv, '\n'); line && line[1] && line[1] != '-';
         line = strchr(line + 1, '\n')) {
      size_t len = strcspn(line + 1, "\n");
      for (size_t off = 0; off + 16 <= len && ns->count < MAX_NEEDLES - 2; off += 48)
        add(ns, line + 1 + off, 16, "a piece of the RSA PEM");
    }
  }
  if (*has_seed)
    add(ns, seed, 32, "the Ed25519 seed");
  json_decref(root);
}

/* Where one needle was found: in a dumpable region, in a "dd" one. */
struct found {
  int dumpable[MAX_NEEDLES];
  int dontdump[MAX_NEEDLES];
  char where[MAX_NEEDLES][160];
  long long bytes_dumpable;
  int regions_dd;
};

static void search(const unsigned char *buf, size_t len, const struct needles *ns, int dd,
                   const char *region, struct found *f) {
  for (int i = 0; i < ns->count; i++) {
    const struct needle *n = &ns->n[i];
    if (memmem(buf, len, n->bytes, n->len)) {
      if (dd) {
        f->dontdump[i]++;
      } else {
        if (!f->dumpable[i])
          snprintf(f->where[i], sizeof f->where[i], "%s", region);
        f->dumpable[i]++;
      }
    }
  }
}

/* Reads every readable region of pid (at most SCAN_REGION_MAX each, and only
 * small "dd" ones, which skips a sanitizer's shadow memory) and searches. */
static int scan(pid_t pid, const struct needles *ns, struct found *f) {
  memset(f, 0, sizeof *f);
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/smaps", (int)pid);
  FILE *smaps = fopen(path, "r");
  snprintf(path, sizeof path, "/proc/%d/mem", (int)pid);
  int mem = open(path, O_RDONLY | O_CLOEXEC);
  if (!smaps || mem < 0) {
    fprintf(stderr, "cannot read the daemon's memory (%s): %s\n", path, strerror(errno));
    if (smaps)
      fclose(smaps);
    if (mem >= 0)
      close(mem);
    return -1;
  }
  char line[512], region[160] = "";
  unsigned long lo = 0, hi = 0;
  int readable = 0;
  unsigned char *buf = NULL;
  size_t cap = 0;
  while (fgets(line, sizeof line, smaps)) {
    char perms[8];
    unsigned long a, b; /* a failed match may have set them */
    if (sscanf(line, "%lx-%lx %7s", &a, &b, perms) == 3) {
      lo = a;
      hi = b;
      readable = perms[0] == 'r';
      snprintf(region, sizeof region, "%.*s", (int)strcspn(line, "\n"), line);
      continue;
    }
    if (strncmp(line, "VmFlags:", 8) != 0 || !readable || hi - lo > SCAN_REGION_MAX ||
        strstr(region, "[vvar]") || strstr(region, "[vsyscall]"))
      continue;
    int dd = strstr(line, " dd") != NULL;
    if (dd && hi - lo > (1L << 20))
      continue;
    size_t len = hi - lo;
    if (len > cap) {
      free(buf);
      cap = len;
      buf = malloc(cap);
      if (!buf)
        break;
    }
    ssize_t got = pread(mem, buf, len, (off_t)lo);
    if (got <= 0)
      continue;
    if (dd)
      f->regions_dd++;
    else
      f->bytes_dumpable += got;
    search(buf, (size_t)got, ns, dd, region, f);
  }
  free(buf);
  fclose(smaps);
  close(mem);
  return 0;
}

/* 1 when text holds no piece of the keystore's secrets and no token. */
static int text_clean(const char *text, const struct needles *ns, const char *what) {
  int clean = 1;
  if (!text)
    return 1;
  if (strstr(text, "eyJhbGciOi") || strstr(text, "Bearer")) {
    fprintf(stderr, "%s holds a token\n", what);
    clean = 0;
  }
  for (int i = 0; i < ns->count; i++) {
    if (memmem(text, strlen(text), ns->n[i].bytes, ns->n[i].len)) {
      fprintf(stderr, "%s holds %s\n", what, ns->n[i].what);
      clean = 0;
    }
  }
  return clean;
}

static void run(const char *type) {
  char dir[512], ks[600], ini[700], plugins[600], so[700], extra[2000], path[800];
  snprintf(dir, sizeof dir, "%s", h_dir(type));
  snprintf(plugins, sizeof plugins, "%s/plugins", dir);
  CHECK(mkdir(plugins, 0755) == 0 && chmod(plugins, 0755) == 0);
  snprintf(so, sizeof so, "%s/echo.so", plugins);
  CHECK(h_copy_file(ECHO_SO, so, 0644) == 0);
  snprintf(so, sizeof so, "%s/probe_a.so", plugins);
  snprintf(path, sizeof path, "%s/probe_a.so", PROBE_DIR);
  CHECK(h_copy_file(path, so, 0644) == 0);
  if (h_keygen(dir, type, ks, sizeof ks) < 0)
    return;
  struct needles ns = {.count = 0};
  unsigned char seed[32];
  int has_seed = 0;
  secrets_of(ks, &ns, seed, &has_seed);
  CHECK(ns.count >= 1);
  /* The positive control in dumpable memory: the bot's id. */
  json_t *root = json_load_file(ks, 0, NULL);
  const char *uid = json_string_value(json_object_get(root, "app_id"));
  if (!uid)
    uid = json_string_value(json_object_get(root, "client_id"));
  CHECK(uid != NULL);
  char uid_lower[64] = "";
  for (size_t i = 0; uid && uid[i] && i < sizeof uid_lower - 1; i++)
    uid_lower[i] = (char)tolower((unsigned char)uid[i]);
  json_decref(root);

  struct sim sim;
  if (h_sim_start(&sim, dir, ks, NULL) < 0)
    return;
  snprintf(extra, sizeof extra,
           "plugin_dir = plugins\nstatus_file = status.json\n"
           "metrics_listen = 127.0.0.1:0\n"
           "[plugin.echo]\n[plugin.probe_a]\napi_get = /me\npriority = 10\n");
  CHECK(h_config(dir, &sim, ks, extra, ini, sizeof ini) == 0);
  struct proc d;
  if (h_daemon_start(&d, dir, "daemon", ini) < 0) {
    h_sim_stop(&sim);
    return;
  }
  CHECK(h_sim_wait(&sim, "connections", 1, 30000) == 0);
  snprintf(path, sizeof path, "%s/daemon.err", dir);
  int port = h_metrics_port(path);
  CHECK(port > 0);
  json_decref(
      h_sim_post(&sim, "/_sim/push", "{\"count\":10,\"text\":\"secret-test-%d\"}"));
  CHECK(h_sim_wait(&sim, "acked", N, 60000) == 0);

  struct found f;
  CHECK(scan(d.pid, &ns, &f) == 0);
  CHECK(f.bytes_dumpable > (1 << 20)); /* the scan read the daemon's memory */
  struct needles ids = {.count = 0};
  add(&ids, uid_lower, strlen(uid_lower), "the bot's id");
  struct found fid;
  CHECK(scan(d.pid, &ids, &fid) == 0);
  CHECK(fid.dumpable[0] > 0); /* positive control: the scan finds things */
  for (int i = 0; i < ns.count; i++) {
    if (f.dumpable[i])
      fprintf(stderr, "%s: %s found in dumpable memory (%d regions, first: %s)\n", type,
              ns.n[i].what, f.dumpable[i], f.where[i]);
    CHECK_INT(f.dumpable[i], 0);
  }
  if (has_seed) {
    /* The key is where it belongs: in OpenSSL's secure heap. */
    CHECK(f.regions_dd >= 1);
    CHECK(f.dontdump[ns.count - 1] >= 1);
  }

  /* What a scraper or a status reader sees. */
  struct h_response r;
  if (h_http(port, "GET", "/metrics", NULL, NULL, 0, &r) == 0) {
    CHECK_INT(r.status, 200);
    CHECK(text_clean(r.body, &ns, "/metrics"));
    h_response_free(&r);
  } else {
    CHECK(!"GET /metrics answered");
  }
  snprintf(path, sizeof path, "%s/status.json", dir);
  char *status = h_read(path); /* removed at exit */
  CHECK(status != NULL);
  CHECK(text_clean(status, &ns, "the status file"));
  free(status);
  h_kill(&d, SIGTERM);
  CHECK(h_wait(&d, 30000) == 0);
  CHECK_INT(d.status, 0);
  h_reap(&d);
  snprintf(path, sizeof path, "%s/daemon.err", dir);
  char *log = h_read(path);
  CHECK(text_clean(log, &ns, "the log"));
  free(log);
  CHECK(h_no_sanitizer_report(dir, "daemon.err"));
  h_sim_stop(&sim);
}

int main(void) {
  run("ed25519");
  run("ed25519-legacy");
  run("rsa");
  return check_done(TEST_NAME);
}
