/* SPDX-License-Identifier: MIT */
/* harness: see harness.h. Binaries come from BLAZEBOT_BIN / BLAZEBOT_SIM_BIN. */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long ms_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void h_sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

const char *h_dir(const char *name) {
  static char path[512];
  const char *base = getenv("BLAZEBOT_TEST_TMP");
  if (!base)
    base = "/tmp/blazebot-tests";
  char cmd[2048];
  snprintf(path, sizeof path, "%s/%s", base, name);
  snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s' && chmod 700 '%s'", path, path,
           path);
  if (system(cmd) != 0)
    return NULL;
  return path;
}

int h_write(const char *path, const char *content, int mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
  if (fd < 0)
    return -1;
  size_t n = strlen(content);
  int ok = write(fd, content, n) == (ssize_t)n;
  fchmod(fd, (mode_t)mode);
  close(fd);
  return ok ? 0 : -1;
}

char *h_read(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  if (s) {
    size_t r = fread(s, 1, (size_t)n, f);
    s[r] = 0;
  }
  fclose(f);
  return s;
}

int h_count(const char *path, const char *needle) {
  char *s = h_read(path);
  int n = 0;
  for (char *p = s; p && (p = strstr(p, needle)); p += strlen(needle))
    n++;
  free(s);
  return n;
}

int h_contains(const char *path, const char *needle) {
  return h_count(path, needle) > 0;
}

/* Prints the last lines of a file to stderr (a failed tool's own words). */
static void print_tail(const char *path, int lines) {
  char *t = h_read(path);
  if (!t) {
    fprintf(stderr, "  (%s: cannot read)\n", path);
    return;
  }
  size_t n = strlen(t);
  while (n > 0 && t[n - 1] == '\n')
    t[--n] = 0;
  char *from = t + n;
  int k = 0;
  while (from > t && !(from[-1] == '\n' && ++k == lines))
    from--;
  fprintf(stderr, "  --- %s%s ---\n%s\n  ---\n", from > t ? "end of " : "", path,
          *from ? from : "(empty)");
  free(t);
}

int h_spawn(struct proc *p, const char *dir, const char *tag, const char *const argv[]) {
  memset(p, 0, sizeof *p);
  snprintf(p->out, sizeof p->out, "%s/%s.out", dir, tag);
  snprintf(p->err, sizeof p->err, "%s/%s.err", dir, tag);
  if (!argv[0]) {
    fprintf(stderr, "h_spawn %s: no program to run\n", tag);
    return -1;
  }
  /* The child reports a failed set-up or exec (errno) on a close-on-exec
   * pipe: end of file means the program is running. */
  int report[2];
  if (pipe2(report, O_CLOEXEC) < 0) {
    fprintf(stderr, "h_spawn %s: pipe: %s\n", tag, strerror(errno));
    return -1;
  }
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "h_spawn %s: fork: %s\n", tag, strerror(errno));
    close(report[0]);
    close(report[1]);
    return -1;
  }
  if (pid == 0) {
    close(report[0]);
    int o = open(p->out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int e = open(p->err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int in = open("/dev/null", O_RDONLY);
    if (o >= 0 && e >= 0 && in >= 0) {
      dup2(in, 0);
      dup2(o, 1);
      dup2(e, 2);
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, NULL);
      execv(argv[0], (char *const *)argv);
    }
    int err = errno;
    ssize_t w = write(report[1], &err, sizeof err);
    (void)w;
    _exit(127);
  }
  close(report[1]);
  int err = 0;
  ssize_t r;
  do
    r = read(report[0], &err, sizeof err);
  while (r < 0 && errno == EINTR);
  close(report[0]);
  p->pid = pid;
  if (r == (ssize_t)sizeof err) {
    h_wait(p, 5000);
    fprintf(stderr, "h_spawn %s: cannot run %s: %s\n", tag, argv[0], strerror(err));
    return -1;
  }
  return 0;
}

/* ThreadSanitizer reports found in the stderr of exited child processes.
 * Each fails the test at exit (fail_on_tsan_reports), whatever the test
 * checked of that process: a daemon may exit with the status a test
 * expects, or be killed, after a report. Only a TSan build prints one. */
static int tsan_reports;

static void fail_on_tsan_reports(void) {
  if (!tsan_reports)
    return;
  fflush(stdout);
  fprintf(stderr, "harness: %d child process(es) had ThreadSanitizer reports: failing\n",
          tsan_reports);
  _exit(1);
}

/* p exited: its stderr is looked at before a later spawn can reuse the
 * file. The report (from its first line on) goes to this test's stderr. */
static void note_tsan_report(const struct proc *p) {
  char *t = h_read(p->err);
  char *w = t ? strstr(t, "WARNING: ThreadSanitizer") : NULL;
  if (!w && t)
    w = strstr(t, "ThreadSanitizer:");
  if (w) {
    if (tsan_reports++ == 0)
      atexit(fail_on_tsan_reports);
    fprintf(stderr, "harness: ThreadSanitizer report in %s (exit status %d):\n%.12000s\n",
            p->err, p->status, w);
  }
  free(t);
}

int h_wait(struct proc *p, int timeout_ms) {
  if (p->exited)
    return 0;
  long long end = ms_now() + timeout_ms;
  for (;;) {
    int st;
    pid_t r = waitpid(p->pid, &st, WNOHANG);
    if (r == p->pid) {
      p->exited = 1;
      p->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      note_tsan_report(p);
      return 0;
    }
    if (ms_now() >= end)
      return -1;
    h_sleep_ms(20);
  }
}

void h_kill(struct proc *p, int sig) {
  if (p->pid > 0 && !p->exited)
    kill(p->pid, sig);
}

void h_reap(struct proc *p) {
  if (p->pid > 0 && !p->exited) {
    kill(p->pid, SIGKILL);
    h_wait(p, 5000);
  }
}

int h_run(const char *dir, const char *tag, const char *const argv[], int timeout_ms) {
  struct proc p;
  if (h_spawn(&p, dir, tag, argv) < 0)
    return -1;
  if (h_wait(&p, timeout_ms) < 0) {
    h_reap(&p);
    return -1;
  }
  return p.status;
}

const char *h_sim_bin(void) {
  const char *b = getenv("BLAZEBOT_SIM_BIN");
  return b && *b ? b : "blazebot-sim";
}

const char *h_daemon_bin(void) {
  const char *b = getenv("BLAZEBOT_BIN");
  return b && *b ? b : "blazebot";
}

int h_keygen_(const char *dir, const char *type, char *path_out, size_t cap) {
  snprintf(path_out, cap, "%s/keystore-%s.json", dir, type);
  const char *argv[] = {h_sim_bin(), "keygen", "--type", type, "-o", path_out, NULL};
  int rc = h_run(dir, "keygen", argv, 30000);
  if (rc == 0)
    return 0;
  char err[700];
  snprintf(err, sizeof err, "%s/keygen.err", dir);
  fprintf(stderr, "%s keygen --type %s failed (%s %d)\n", h_sim_bin(), type,
          rc < 0 ? "did not run or timed out:" : "exit", rc);
  print_tail(err, 20);
  return -1;
}

int h_sim_start_(struct sim *s, const char *dir, const char *ks,
                 const char *const extra[]) {
  memset(s, 0, sizeof *s);
  snprintf(s->dir, sizeof s->dir, "%s", dir);
  snprintf(s->keystore, sizeof s->keystore, "%s", ks);
  char portfile[600], statsfile[600];
  snprintf(portfile, sizeof portfile, "%s/sim.port", dir);
  snprintf(statsfile, sizeof statsfile, "%s/sim-stats.json", dir);
  unlink(portfile);
  unlink(statsfile); /* a test reading it must not see an earlier run's */
  const char *argv[64];
  int n = 0;
  argv[n++] = h_sim_bin();
  argv[n++] = "--keystore";
  argv[n++] = ks;
  argv[n++] = "--listen";
  argv[n++] = "127.0.0.1:0";
  argv[n++] = "--port-file";
  argv[n++] = portfile;
  argv[n++] = "--stats-file";
  argv[n++] = statsfile;
  argv[n++] = "--timeout";
  argv[n++] = "600";
  for (int i = 0; extra && extra[i]; i++) {
    if (n >= 62) {
      fprintf(stderr, "h_sim_start: too many simulator arguments\n");
      return -1;
    }
    argv[n++] = extra[i];
  }
  argv[n] = NULL;
  if (h_spawn(&s->p, dir, "sim", argv) < 0)
    return -1;
  long long end = ms_now() + 20000;
  while (ms_now() < end) {
    char *t = h_read(portfile);
    if (t && atoi(t) > 0) {
      s->port = atoi(t);
      free(t);
      return 0;
    }
    free(t);
    if (h_wait(&s->p, 0) == 0)
      break;
    h_sleep_ms(20);
  }
  if (s->p.exited)
    fprintf(stderr, "the simulator exited with status %d before it listened\n",
            s->p.status);
  else
    fprintf(stderr, "the simulator wrote no port within 20 s; killing it\n");
  h_reap(&s->p);
  print_tail(s->p.err, 20);
  return -1;
}

static json_t *http(int port, const char *method, const char *path, const char *body) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return NULL;
  struct timeval tv = {10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    close(fd);
    return NULL;
  }
  size_t blen = body ? strlen(body) : 0;
  char head[1024];
  int hn = snprintf(head, sizeof head,
                    "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                    "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                    method, path, blen);
  if (write(fd, head, (size_t)hn) != hn ||
      (blen && write(fd, body, blen) != (ssize_t)blen)) {
    close(fd);
    return NULL;
  }
  size_t cap = 1 << 16, len = 0;
  char *resp = malloc(cap);
  for (;;) {
    if (len + 4096 > cap) {
      cap *= 2;
      resp = realloc(resp, cap);
    }
    ssize_t r = read(fd, resp + len, cap - len - 1);
    if (r <= 0)
      break;
    len += (size_t)r;
  }
  close(fd);
  resp[len] = 0;
  json_t *j = NULL;
  char *b = strstr(resp, "\r\n\r\n");
  if (b) {
    b += 4;
    /* Chunked bodies: strip the framing. */
    if (strstr(resp, "chunked") && strstr(resp, "chunked") < b) {
      size_t o = 0;
      char *p = b;
      for (;;) {
        long n = strtol(p, &p, 16);
        if (n <= 0)
          break;
        p = strstr(p, "\r\n");
        if (!p)
          break;
        p += 2;
        memmove(b + o, p, (size_t)n);
        o += (size_t)n;
        p += n + 2;
      }
      b[o] = 0;
    }
    j = json_loads(b, 0, NULL);
  }
  free(resp);
  return j;
}

json_t *h_sim_stats(struct sim *s) {
  return http(s->port, "GET", "/_sim/stats", NULL);
}

json_t *h_sim_post(struct sim *s, const char *path, const char *body) {
  return http(s->port, "POST", path, body);
}

json_t *h_sim_get(struct sim *s, const char *path) {
  return http(s->port, "GET", path, NULL);
}

long h_stat(json_t *stats, const char *key) {
  json_t *v = stats ? json_object_get(stats, key) : NULL;
  return json_is_integer(v) ? (long)json_integer_value(v) : -1;
}

int h_sim_wait(struct sim *s, const char *key, long value, int timeout_ms) {
  long long end = ms_now() + timeout_ms;
  long last = -1;
  while (ms_now() < end) {
    json_t *st = h_sim_stats(s);
    last = h_stat(st, key);
    json_decref(st);
    if (last >= value)
      return 0;
    h_sleep_ms(50);
  }
  fprintf(stderr, "timed out waiting for sim %s >= %ld (last %ld)\n", key, value, last);
  return -1;
}

void h_sim_stop(struct sim *s) {
  h_kill(&s->p, SIGTERM);
  if (h_wait(&s->p, 10000) < 0)
    h_reap(&s->p);
}

/* A test's extra lines win over the defaults below: a default whose key
 * appears in extra is left out (the ini refuses duplicate keys). */
static void add_default(char *ini, size_t cap, const char *extra, const char *key,
                        const char *line) {
  char probe[64];
  snprintf(probe, sizeof probe, "%s =", key);
  if (extra && strstr(extra, probe))
    return;
  strncat(ini, line, cap - strlen(ini) - 1);
}

int h_config(const char *dir, struct sim *s, const char *ks, const char *extra,
             char *path_out, size_t cap) {
  snprintf(path_out, cap, "%s/blazebot.ini", dir);
  char ini[4096], line[700];
  snprintf(ini, sizeof ini,
           "; written by the integration tests\n[blazebot]\nkeystore = %s\n", ks);
  snprintf(line, sizeof line, "blaze_url = ws://127.0.0.1:%d/\n", s ? s->port : 1);
  add_default(ini, sizeof ini, extra, "blaze_url", line);
  snprintf(line, sizeof line, "api_url = http://127.0.0.1:%d\n", s ? s->port : 1);
  add_default(ini, sizeof ini, extra, "api_url", line);
  add_default(ini, sizeof ini, extra, "reconnect_min_ms", "reconnect_min_ms = 200\n");
  add_default(ini, sizeof ini, extra, "reconnect_max_ms", "reconnect_max_ms = 2000\n");
  add_default(ini, sizeof ini, extra, "ack_interval_ms", "ack_interval_ms = 50\n");
  if (extra)
    strncat(ini, extra, sizeof ini - strlen(ini) - 1);
  return h_write(path_out, ini, 0600);
}

int h_daemon_start_(struct proc *p, const char *dir, const char *tag,
                    const char *config) {
  char stats[600];
  snprintf(stats, sizeof stats, "%s/stats-%s.json", dir, tag);
  unlink(stats);
  const char *argv[] = {h_daemon_bin(), "-c", config, "--stats-file", stats, NULL};
  if (h_spawn(p, dir, tag, argv) == 0)
    return 0;
  fprintf(stderr, "the daemon (%s, tag %s) did not start\n", h_daemon_bin(), tag);
  return -1;
}

json_t *h_daemon_stats(const char *dir, const char *tag) {
  char path[600];
  snprintf(path, sizeof path, "%s/stats-%s.json", dir, tag);
  return json_load_file(path, 0, NULL);
}

int h_no_sanitizer_report(const char *dir, const char *file) {
  char path[700];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  int clean = !h_contains(path, "runtime error") && !h_contains(path, "Sanitizer");
  if (!clean)
    fprintf(stderr, "sanitizer report in %s\n", path);
  return clean;
}

long h_plugin_stat(json_t *daemon_stats, const char *plugin, const char *key) {
  json_t *p = json_object_get(json_object_get(daemon_stats, "plugins"), plugin);
  return h_stat(p, key);
}

int h_plugins_reported(json_t *daemon_stats, size_t n) {
  return json_object_size(json_object_get(daemon_stats, "plugins")) == n;
}

int h_plugin_stopped(const char *dir, const char *name, long delivered, long errors) {
  char path[700], needle[200];
  snprintf(path, sizeof path, "%s/daemon.err", dir);
  snprintf(needle, sizeof needle, "plugin %s stopped (%ld delivered, %ld errors)", name,
           delivered, errors);
  int found = h_contains(path, needle);
  if (!found)
    fprintf(stderr, "%s lacks \"%s\"\n", path, needle);
  return found;
}

int h_wait_count(const char *path, const char *needle, int n, int timeout_ms) {
  long long end = ms_now() + timeout_ms;
  for (;;) {
    int have = h_count(path, needle);
    if (have >= n)
      return 0;
    if (ms_now() >= end) {
      fprintf(stderr, "timed out waiting for %d x \"%s\" in %s (have %d)\n", n, needle,
              path, have);
      return -1;
    }
    h_sleep_ms(20);
  }
}

int h_snapshot_take(struct sim *s, struct h_snapshot *snap) {
  snap->messages = h_sim_get(s, "/_sim/messages"); /* first: see harness.h */
  snap->sent = h_sim_get(s, "/_sim/sent");
  if (json_is_array(snap->messages) && json_is_array(snap->sent))
    return 0;
  fprintf(stderr, "cannot read /_sim/messages and /_sim/sent\n");
  h_snapshot_free(snap);
  return -1;
}

void h_snapshot_free(struct h_snapshot *snap) {
  json_decref(snap->messages);
  json_decref(snap->sent);
  snap->messages = snap->sent = NULL;
}

int h_copy_file(const char *src, const char *dst, int mode) {
  FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
  int rc = in && out ? 0 : -1;
  char buf[65536];
  size_t n;
  while (rc == 0 && (n = fread(buf, 1, sizeof buf, in)) > 0)
    rc = fwrite(buf, 1, n, out) == n ? 0 : -1;
  if (in)
    fclose(in);
  if (out && fclose(out) != 0)
    rc = -1;
  if (rc == 0 && chmod(dst, (mode_t)mode) < 0)
    rc = -1;
  if (rc < 0)
    fprintf(stderr, "cannot copy %s to %s\n", src, dst);
  return rc;
}

long h_rss_kib(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
  FILE *f = fopen(path, "re");
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld", &kb) == 1)
      break;
  if (f)
    fclose(f);
  return kb;
}

void h_asan_quarantine_mb(int mb) {
  char opts[1024];
  const char *old = getenv("ASAN_OPTIONS");
  snprintf(opts, sizeof opts, "%s%squarantine_size_mb=%d", old ? old : "", old ? ":" : "",
           mb);
  setenv("ASAN_OPTIONS", opts, 1);
}

int h_http(int port, const char *method, const char *target, const char *headers,
           const void *body, size_t len, struct h_response *resp) {
  memset(resp, 0, sizeof *resp);
  resp->status = -1;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  struct timeval tv = {10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  char head[8192];
  int hn = snprintf(head, sizeof head,
                    "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n"
                    "%sContent-Length: %zu\r\n\r\n",
                    method, target, port, headers ? headers : "", len);
  if (hn < 0 || (size_t)hn >= sizeof head ||
      connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    close(fd);
    return -1;
  }
  int ok = send(fd, head, (size_t)hn, MSG_NOSIGNAL) == hn;
  for (size_t off = 0; ok && off < len;) {
    ssize_t w = send(fd, (const char *)body + off, len - off, MSG_NOSIGNAL);
    if (w <= 0)
      ok = 0;
    else
      off += (size_t)w;
  }
  /* Read to the end even after a failed write: the server may have
   * answered early, and that answer is what the test wants to see. */
  size_t cap = 1 << 16, got = 0;
  char *b = malloc(cap + 1);
  for (;;) {
    if (!b)
      break;
    if (got == cap) {
      char *nb = cap < (64u << 20) ? realloc(b, cap * 2 + 1) : NULL;
      if (!nb)
        break;
      b = nb;
      cap *= 2;
    }
    ssize_t n = read(fd, b + got, cap - got);
    if (n <= 0)
      break;
    got += (size_t)n;
  }
  close(fd);
  if (!b)
    return -1;
  b[got] = 0;
  char *end = strstr(b, "\r\n\r\n");
  if (!end || (strncmp(b, "HTTP/1.1 ", 9) != 0 && strncmp(b, "HTTP/1.0 ", 9) != 0)) {
    free(b);
    return -1;
  }
  resp->status = atoi(b + 9);
  resp->head = strndup(b, (size_t)(end - b) + 2);
  resp->len = got - (size_t)(end + 4 - b);
  resp->body = malloc(resp->len + 1);
  if (resp->body) {
    memcpy(resp->body, end + 4, resp->len);
    resp->body[resp->len] = 0;
  }
  free(b);
  return resp->head && resp->body ? 0 : -1;
}

void h_response_free(struct h_response *resp) {
  free(resp->head);
  free(resp->body);
  memset(resp, 0, sizeof *resp);
}

int h_metrics_port(const char *errfile) {
  for (int i = 0; i < 100; i++) {
    char *t = h_read(errfile);
    const char *p = t ? strstr(t, "metrics: serving") : NULL;
    const char *on = p ? strstr(p, " on ") : NULL;
    const char *colon = on ? strchr(on + 4, ':') : NULL;
    int port = colon ? atoi(colon + 1) : 0;
    free(t);
    if (port > 0)
      return port;
    h_sleep_ms(100);
  }
  return 0;
}
