/* SPDX-License-Identifier: MIT */
/*
 * main: the blazebot command line. Parses options, loads and checks the
 * configuration and keystore (every problem printed), then hands both to the
 * daemon and returns its exit code (or only prints the configuration, or
 * signals a running daemon to reload). The only file that calls exit().
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "daemon.h"
#include "keystore.h"
#include "log.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: blazebot [-c FILE] [--check] [--stats-file FILE]\n"
          "       blazebot [-c FILE] --print-config\n"
          "       blazebot [-c FILE] --reload\n"
          "       blazebot [-c FILE] --replay DEAD_LETTER_FILE\n"
          "       blazebot --version | --help\n"
          "\n"
          "  -c, --config FILE    configuration (default /etc/blazebot/blazebot.ini)\n"
          "      --check          validate the configuration and keystore, print every\n"
          "                       problem, exit 0 if all is well and 1 otherwise\n"
          "      --print-config   print the effective configuration (every default\n"
          "                       filled in, paths absolute, plugin secrets masked) as\n"
          "                       an ini file on stdout; loads no keystore and no\n"
          "                       plugin; exit 0, or 1 with every problem on stderr\n"
          "      --stats-file F   write the run's counters as JSON to F at exit\n"
          "      --reload         ask the running daemon (found through the ini's\n"
          "                       status_file) to reload, wait, print the outcome; exit\n"
          "                       0 if all applied, 1 if anything was refused, 3 if no\n"
          "                       daemon answered\n"
          "      --replay FILE    deliver the messages of a dead-letter file again to\n"
          "                       the plugins named in it (replies go over REST, no\n"
          "                       Blaze connection is opened, nothing is acknowledged);\n"
          "                       exit 0 if all were processed, 1 otherwise\n"
          "  -V, --version        print the version\n"
          "  -h, --help           this text\n"
          "\n"
          "Signals: SIGTERM/SIGINT stop gracefully (in-flight messages finish and are\n"
          "acknowledged), SIGHUP reloads the configuration and the plugins.\n"
          "Exit codes: 0 clean stop, 1 configuration or keystore error, 2 Blaze refused\n"
          "the credentials (401), 3 other fatal error.\n");
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* 1 when pid is a running blazebot: the same executable as this one, or a
 * process whose name is blazebot. A stale status file can name a pid that
 * now belongs to another program, which must never get the SIGHUP. */
static int is_blazebot(long long pid) {
  char path[64], self[4096], other[4096];
  snprintf(path, sizeof path, "/proc/%lld/exe", pid);
  ssize_t a = readlink("/proc/self/exe", self, sizeof self - 1);
  ssize_t b = readlink(path, other, sizeof other - 1);
  if (a > 0 && b > 0 && a == b && memcmp(self, other, (size_t)a) == 0)
    return 1;
  snprintf(path, sizeof path, "/proc/%lld/comm", pid);
  FILE *f = fopen(path, "re");
  char comm[64] = "";
  if (f) {
    if (!fgets(comm, sizeof comm, f))
      comm[0] = 0;
    fclose(f);
  }
  comm[strcspn(comm, "\n")] = 0;
  return strcmp(comm, "blazebot") == 0;
}

/* blazebot --print-config: the ini as config_load reads it, on stdout. The
 * keystore is not read and no plugin is loaded: only the file itself. */
static int print_config(const char *path) {
  struct config *cfg = NULL;
  int nerr = config_load(path, &cfg);
  if (nerr) {
    log_error("%s: %d problem(s) found", path, nerr);
    return DAEMON_EXIT_CONFIG;
  }
  int bad = config_print(cfg, stdout);
  config_free(cfg);
  if (fflush(stdout) != 0 || ferror(stdout))
    bad = -1;
  if (bad < 0) {
    log_error("--print-config: cannot write to stdout: %s", strerror(errno));
    return DAEMON_EXIT_FATAL;
  }
  if (bad > 0) {
    log_error("%s: %d value(s) cannot be written so that they read back the same; "
              "they are commented out, with the reason",
              path, bad);
    return DAEMON_EXIT_CONFIG;
  }
  return DAEMON_EXIT_OK;
}

/* blazebot --reload: SIGHUP to the daemon named in the status file, then
 * wait until a reload that started after it ended, and report it. */
static int reload_running(const char *path) {
  struct config *cfg = NULL;
  int nerr = config_load(path, &cfg);
  if (nerr) {
    fprintf(stderr, "blazebot: %s: %d error(s) (above); not reloading\n", path, nerr);
    return 1;
  }
  if (!cfg->status_file) {
    fprintf(stderr, "blazebot: --reload needs [blazebot] status_file in %s\n", path);
    config_free(cfg);
    return 3;
  }
  char status[4096];
  snprintf(status, sizeof status, "%s", cfg->status_file);
  int wait_ms = cfg->reload_timeout_ms * 2 + 30000;
  config_free(cfg);
  json_t *st = json_load_file(status, 0, NULL);
  long long pid = st ? json_integer_value(json_object_get(st, "pid")) : 0;
  long long before = st ? json_integer_value(json_object_get(st, "reloads")) : 0;
  json_decref(st);
  if (pid > 0 && kill((pid_t)pid, 0) == 0 && !is_blazebot(pid)) {
    fprintf(stderr,
            "blazebot: %s names pid %lld, which is not a running blazebot (a stale "
            "status file?); not signalling it\n",
            status, pid);
    return 3;
  }
  if (pid <= 0 || kill((pid_t)pid, SIGHUP) < 0) {
    fprintf(stderr, "blazebot: no running daemon found through %s\n", status);
    return 3;
  }
  for (int waited = 0; waited < wait_ms; waited += 50) {
    sleep_ms(50);
    st = json_load_file(status, 0, NULL);
    if (!st) {
      if (kill((pid_t)pid, 0) < 0)
        break;
      continue;
    }
    long long n = json_integer_value(json_object_get(st, "reloads"));
    int busy = json_is_true(json_object_get(st, "reloading")) ||
               json_is_true(json_object_get(st, "pending"));
    json_t *last = json_object_get(st, "last_reload");
    if (n > before && !busy && last) {
      int ok = json_is_true(json_object_get(last, "ok"));
      printf("reload %s: %s\n", ok ? "done" : "refused in part",
             json_string_value(json_object_get(last, "summary")));
      json_decref(st);
      return ok ? 0 : 1;
    }
    json_decref(st);
  }
  fprintf(stderr, "blazebot: the daemon (pid %lld) did not report a reload\n", pid);
  return 3;
}

int main(int argc, char **argv) {
  /* First, before OpenSSL allocates anything: keys in the secure heap,
   * keystore parsing that leaves no copy behind. */
  keystore_protect();
  const char *path = "/etc/blazebot/blazebot.ini";
  const char *stats_file = NULL, *replay = NULL;
  int check = 0, reload = 0, print = 0;
  static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                       {"reload", no_argument, NULL, 'r'},
                                       {"replay", required_argument, NULL, 'p'},
                                       {"check", no_argument, NULL, 'k'},
                                       {"print-config", no_argument, NULL, 'P'},
                                       {"stats-file", required_argument, NULL, 's'},
                                       {"version", no_argument, NULL, 'V'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
    switch (c) {
    case 'c':
      path = optarg;
      break;
    case 'k':
      check = 1;
      break;
    case 'P':
      print = 1;
      break;
    case 'r':
      reload = 1;
      break;
    case 'p':
      replay = optarg;
      break;
    case 's':
      stats_file = optarg;
      break;
    case 'V':
      printf("blazebot %s\n", BLAZEBOT_VERSION);
      return 0;
    case 'h':
      usage(stdout);
      return 0;
    default:
      usage(stderr);
      return DAEMON_EXIT_CONFIG;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "blazebot: unexpected argument '%s'\n", argv[optind]);
    usage(stderr);
    return DAEMON_EXIT_CONFIG;
  }

  if (print && (check || reload || replay || stats_file)) {
    fprintf(stderr, "blazebot: --print-config takes no other option but -c\n");
    usage(stderr);
    return DAEMON_EXIT_CONFIG;
  }
  if (print)
    return print_config(path);
  if (reload)
    return reload_running(path);

  struct config *cfg = NULL;
  int nerr = config_load(path, &cfg);
  struct keystore *ks = NULL;
  if (cfg) {
    log_set_level(cfg->log_level);
    log_set_format(cfg->log_format);
    char err[512];
    if (keystore_load(cfg->keystore, 1, &ks, err, sizeof err) < 0) {
      log_error("%s", err);
      nerr++;
    }
  }
  if (nerr) {
    log_error("%s: %d problem(s) found", path, nerr);
    config_free(cfg);
    keystore_free(ks);
    return DAEMON_EXIT_CONFIG;
  }
  if (check) {
    /* Plugins are loaded and initialised exactly as for a run (and shut down
     * again), so a plugin that would be refused is reported here. */
    char line[512];
    snprintf(line, sizeof line,
             "%s: configuration OK (bot %s, session %s, keystore generation %c, %s", path,
             ks->user_id, ks->session_id, ks->generation,
             ks->alg == KEYSTORE_ED25519 ? "Ed25519" : "RSA");
    int exit_code = 0;
    struct daemon *d = daemon_new(cfg, ks, NULL, NULL, &exit_code);
    if (!d) {
      log_error("%s: the plugins above were refused", path);
      return DAEMON_EXIT_CONFIG;
    }
    printf("%s, %zu plugin(s) loaded)\n", line, daemon_plugin_count(d));
    daemon_free(d);
    return 0;
  }

  log_info("blazebot %s starting: bot %s, %s", BLAZEBOT_VERSION, ks->user_id,
           cfg->blaze_url);
  if (geteuid() == 0)
    log_warn("running as root: plugins run with root's rights; run blazebot as a "
             "dedicated user (see examples/systemd/)");
  int exit_code = 0;
  struct daemon *d = daemon_new(cfg, ks, NULL, NULL, &exit_code);
  if (!d)
    return exit_code;
  int rc = replay ? daemon_replay(d, replay) : daemon_run(d);
  char *stats = daemon_stats_json(d);
  if (stats) {
    log_info("stats: %s", stats);
    if (stats_file) {
      FILE *f = fopen(stats_file, "w");
      if (f) {
        fprintf(f, "%s\n", stats);
        fclose(f);
      } else {
        log_error("cannot write %s", stats_file);
      }
    }
    free(stats);
  }
  if (daemon_abandoned(d)) {
    /* Worker threads are still inside plugin code: joining them could
     * wait forever and unmapping it would crash them. The kernel reclaims
     * everything; unacknowledged messages are delivered again. */
    log_info("blazebot stopped (exit %d) with plugin code still running", rc);
    fflush(NULL);
    _exit(rc);
  }
  daemon_free(d);
  log_info("blazebot stopped (exit %d)", rc);
  return rc;
}
