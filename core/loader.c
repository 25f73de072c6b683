/* SPDX-License-Identifier: MIT */
/*
 * loader: see loader.h. Everything here runs on the thread that loads (the
 * main thread at startup, the I/O thread during a reload) and touches only
 * the instance being opened, the host's staging folder and generation count,
 * and the slot list.
 */
#include "loader.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "dispatch.h"
#include "log.h"
#include "plugin_host.h"

#define V1_MIN_DESC_SIZE                                                                 \
  (offsetof(struct blazebot_plugin, shutdown) + sizeof(void (*)(void *)))

int loader_parse_bool(const char *s, int *out) {
  static const char *const t[] = {"1", "true", "yes", "on"};
  static const char *const f[] = {"0", "false", "no", "off"};
  for (int i = 0; i < 4; i++) {
    if (strcasecmp(s, t[i]) == 0) {
      *out = 1;
      return 0;
    }
    if (strcasecmp(s, f[i]) == 0) {
      *out = 0;
      return 0;
    }
  }
  return -1;
}

static int safe_mode(const struct stat *st, const char *what, const char *path, char *err,
                     size_t errlen) {
  if (st->st_mode & (S_IWGRP | S_IWOTH)) {
    snprintf(err, errlen,
             "%s %s is writable by group or others (mode %04o); refusing to load", what,
             path, (unsigned)(st->st_mode & 07777));
    return -1;
  }
  if (st->st_uid != 0 && st->st_uid != geteuid()) {
    snprintf(err, errlen, "%s %s belongs to uid %u, neither root nor the daemon's user",
             what, path, (unsigned)st->st_uid);
    return -1;
  }
  return 0;
}

/* Copies the plugin file (opened without following links, checked on the
 * open descriptor) to a private staged file: glibc would hand back the old
 * handle for a path it already has loaded, and the copy cannot be changed
 * under us after the checks. */
static int stage(struct plugin_host *h, const char *name, const char *src, char *dst,
                 size_t dstlen, struct stat *id, char *err, size_t errlen) {
  int in = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (in < 0) {
    snprintf(err, errlen, "cannot open %s: %s", src,
             errno == ELOOP ? "it is a symbolic link" : strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(in, &st) < 0 || !S_ISREG(st.st_mode)) {
    snprintf(err, errlen, "%s is not a regular file", src);
    close(in);
    return -1;
  }
  if (safe_mode(&st, "plugin file", src, err, errlen) < 0) {
    close(in);
    return -1;
  }
  *id = st;
  snprintf(dst, dstlen, "%s/%s.%u.so", h->stage_dir, name, ++h->gen);
  int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700);
  if (out < 0) {
    snprintf(err, errlen, "cannot stage %s: %s", src, strerror(errno));
    close(in);
    return -1;
  }
  char buf[65536];
  ssize_t n;
  int rc = 0;
  while ((n = read(in, buf, sizeof buf)) > 0) {
    if (write(out, buf, (size_t)n) != n) {
      rc = -1;
      break;
    }
  }
  if (n < 0)
    rc = -1;
  close(in);
  if (close(out) < 0)
    rc = -1;
  if (rc < 0) {
    snprintf(err, errlen, "cannot stage %s: %s", src, strerror(errno));
    unlink(dst);
  }
  return rc;
}

/* The subscriptions of in under section sec: the ini's categories/priority
 * override the descriptor's table. */
int loader_parse_subs(const struct instance *in, const struct config_plugin *sec,
                      const struct config *cfg, struct sub *subs, int *nout, char *err,
                      size_t errlen) {
  const struct config_kv *cats = NULL, *prio = NULL;
  for (size_t i = 0; i < sec->nkv; i++) {
    if (strcmp(sec->kv[i].key, "categories") == 0)
      cats = &sec->kv[i];
    else if (strcmp(sec->kv[i].key, "priority") == 0)
      prio = &sec->kv[i];
  }
  int32_t prio_v = 0;
  if (prio) {
    char *end;
    long v = strtol(prio->value, &end, 10);
    if (end == prio->value || *end || v < -1000000 || v > 1000000) {
      snprintf(err, errlen, "%s:%d: priority must be an integer", cfg->path, prio->line);
      return -1;
    }
    prio_v = (int32_t)v;
  }
  int n = 0;
  if (cats) {
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", cats->value);
    char *save = NULL;
    for (char *tok = strtok_r(tmp, ", \t", &save); tok && n < MAX_SUBSCRIPTIONS;
         tok = strtok_r(NULL, ", \t", &save)) {
      snprintf(subs[n].pat, sizeof subs[n].pat, "%s", tok);
      subs[n++].prio = prio_v;
    }
  } else if (in->desc.subscriptions) {
    for (const struct blazebot_subscription *s = in->desc.subscriptions;
         s->category && n < MAX_SUBSCRIPTIONS; s++) {
      snprintf(subs[n].pat, sizeof subs[n].pat, "%s", s->category);
      subs[n++].prio = prio ? prio_v : s->priority;
    }
  }
  for (int i = 0; i < n; i++) {
    char *star = strchr(subs[i].pat, '*');
    if (!subs[i].pat[0] || (star && star[1])) {
      snprintf(err, errlen, "bad category pattern '%s' (exact, PREFIX_* or *)",
               subs[i].pat);
      return -1;
    }
  }
  *nout = n;
  return 0;
}

int loader_parse_max_attempts(const struct config_plugin *sec, const struct config *cfg,
                              int *out, char *err, size_t errlen) {
  *out = -1; /* not set: the plugin's default (see loader_max_attempts_for) */
  for (size_t i = 0; i < sec->nkv; i++) {
    const struct config_kv *kv = &sec->kv[i];
    if (strcmp(kv->key, "max_attempts") != 0)
      continue;
    char *end;
    long v = strtol(kv->value, &end, 10);
    if (end == kv->value || *end || v < 0 || v > 100) {
      snprintf(err, errlen, "%s:%d: max_attempts must be 0 (never give up) .. 100",
               cfg->path, kv->line);
      return -1;
    }
    *out = (int)v;
  }
  return 0;
}

/* The ini's max_attempts, or the plugin's default: 0 (never give up) for a
 * plugin flagged RETRY_FOREVER, else 5. */
int loader_max_attempts_for(int parsed, const struct blazebot_plugin *desc) {
  if (parsed >= 0)
    return parsed;
  return (desc->flags & BLAZEBOT_FLAG_RETRY_FOREVER) ? 0 : 5;
}

/* Drops an instance whose init never ran or failed: nothing of it is
 * registered with the host any more (see host_cancel_timers). */
void loader_close(struct instance *in, int may_unload) {
  if (!in)
    return;
  if (in->dl && may_unload)
    dlclose(in->dl);
  config_free(in->cfg);
  free(in);
}

int loader_is_enabled(const struct config *cfg, const struct config_plugin *sec,
                      int *bad) {
  int on = 1;
  if (bad)
    *bad = 0;
  for (size_t k = 0; k < sec->nkv; k++) {
    if (strcmp(sec->kv[k].key, "enabled") == 0 &&
        loader_parse_bool(sec->kv[k].value, &on) < 0) {
      if (bad) {
        log_error("%s:%d: [plugin.%s] enabled must be true or false", cfg->path,
                  sec->kv[k].line, sec->name);
        *bad = 1;
      }
      on = 0;
    }
  }
  return on;
}

/* The section's enabled key is present but not a boolean. */
int loader_enabled_bad(const struct config_plugin *sec) {
  int on;
  for (size_t k = 0; k < sec->nkv; k++)
    if (strcmp(sec->kv[k].key, "enabled") == 0 &&
        loader_parse_bool(sec->kv[k].value, &on) < 0)
      return 1;
  return 0;
}

/* plugin_dir/file of a section, checked to stay inside plugin_dir. */
int loader_plugin_src(const struct config *cfg, const struct config_plugin *sec,
                      char *src, size_t srclen, char *err, size_t errlen) {
  const struct config_kv *kv = NULL;
  for (size_t i = 0; i < sec->nkv; i++)
    if (strcmp(sec->kv[i].key, "path") == 0)
      kv = &sec->kv[i];
  char file[512];
  if (kv)
    snprintf(file, sizeof file, "%s", kv->value);
  else
    snprintf(file, sizeof file, "%s.so", sec->name);
  if (strchr(file, '/') || strcmp(file, "..") == 0 || file[0] == '.' || !file[0]) {
    snprintf(
        err, errlen,
        "%s:%d: path '%s' must be a file name inside plugin_dir (plugins load only from "
        "there)",
        cfg->path, kv ? kv->line : sec->line, file);
    return -1;
  }
  snprintf(src, srclen, "%s/%s", cfg->plugin_dir, file);
  return 0;
}

int loader_check_plugin_dir(const struct config *cfg, char *err, size_t errlen) {
  struct stat st;
  if (!cfg->plugin_dir) {
    snprintf(err, errlen,
             "%s: plugins are configured but [blazebot] plugin_dir is not set",
             cfg->path);
    return -1;
  }
  if (stat(cfg->plugin_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
    snprintf(err, errlen, "plugin_dir %s is not a directory", cfg->plugin_dir);
    return -1;
  }
  return safe_mode(&st, "plugin_dir", cfg->plugin_dir, err, errlen);
}

int loader_ensure_stage_dir(struct plugin_host *h, char *err, size_t errlen) {
  if (h->stage_dir[0])
    return 0;
  const char *tmp = getenv("TMPDIR");
  snprintf(h->stage_dir, sizeof h->stage_dir, "%s/blazebot-plugins.XXXXXX",
           tmp && tmp[0] == '/' ? tmp : "/tmp");
  if (!mkdtemp(h->stage_dir)) {
    snprintf(err, errlen, "cannot create a staging folder in %s: %s", tmp ? tmp : "/tmp",
             strerror(errno));
    h->stage_dir[0] = 0;
    return -1;
  }
  return 0;
}

/* Stages, opens and checks the plugin of [plugin.NAME] sec (no init, no
 * slot). On refusal returns NULL with the reason in err. */
struct instance *loader_open(struct plugin_host *h, const struct config *cfg,
                             const struct config_plugin *sec, char *err, size_t errlen) {
  struct instance *in = calloc(1, sizeof *in);
  if (!in) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  snprintf(in->name, sizeof in->name, "%s", sec->name);
  in->section = sec;
  in->cfg = config_ref(cfg); /* the section's strings are borrowed from it */
  in->h = h;
  in->ctx.inst = in;
  int max_attempts;
  if (loader_parse_max_attempts(sec, cfg, &max_attempts, err, errlen) < 0)
    goto fail;
  char staged[600];
  const char *src = in->src;
  struct stat id;
  if (loader_plugin_src(cfg, sec, in->src, sizeof in->src, err, errlen) < 0 ||
      loader_ensure_stage_dir(h, err, errlen) < 0 ||
      stage(h, sec->name, src, staged, sizeof staged, &id, err, errlen) < 0)
    goto fail;
  in->dev = id.st_dev;
  in->ino = id.st_ino;
  in->size = id.st_size;
  in->mtime = id.st_mtim;
  in->dl = dlopen(staged, RTLD_NOW | RTLD_LOCAL);
  unlink(staged); /* the mapping stays; nothing is left on disk */
  if (!in->dl) {
    const char *e = dlerror();
    /* dlerror names the staged copy, which is already gone: drop it. */
    size_t sl = strlen(staged);
    if (e && strncmp(e, staged, sl) == 0 && strncmp(e + sl, ": ", 2) == 0)
      e += sl + 2;
    snprintf(err, errlen, "%s: cannot load: %s", src, e ? e : "unknown error");
    goto fail;
  }
  typedef const struct blazebot_plugin *(*entry_fn)(void);
  entry_fn entry;
  *(void **)&entry = dlsym(in->dl, BLAZEBOT_ENTRY_SYMBOL);
  if (!entry) {
    for (int major = 2; major < 10; major++) {
      char sym[32];
      snprintf(sym, sizeof sym, "blazebot_plugin_v%d", major);
      if (dlsym(in->dl, sym)) {
        snprintf(err, errlen,
                 "%s: built for plugin ABI major %d; this daemon speaks major %d", src,
                 major, BLAZEBOT_ABI_MAJOR);
        goto fail;
      }
    }
    snprintf(err, errlen, "%s: no %s entry symbol (not a blazebot plugin?)", src,
             BLAZEBOT_ENTRY_SYMBOL);
    goto fail;
  }
  const struct blazebot_plugin *desc = entry();
  if (!desc) {
    snprintf(err, errlen, "%s: %s() returned no descriptor", src, BLAZEBOT_ENTRY_SYMBOL);
    goto fail;
  }
  if (desc->size < V1_MIN_DESC_SIZE) {
    snprintf(err, errlen,
             "%s: descriptor too small (%u bytes; ABI 1.0 needs at least %zu)", src,
             desc->size, (size_t)V1_MIN_DESC_SIZE);
    goto fail;
  }
  if (desc->abi_major != BLAZEBOT_ABI_MAJOR) {
    snprintf(err, errlen,
             "%s: built for plugin ABI major %u; this daemon speaks major %d", src,
             desc->abi_major, BLAZEBOT_ABI_MAJOR);
    goto fail;
  }
  if (desc->abi_minor > BLAZEBOT_ABI_MINOR) {
    snprintf(
        err, errlen,
        "%s: built for plugin ABI 1.%u, newer than this daemon's 1.%d; upgrade blazebot",
        src, desc->abi_minor, BLAZEBOT_ABI_MINOR);
    goto fail;
  }
  memcpy(&in->desc, desc, desc->size < sizeof in->desc ? desc->size : sizeof in->desc);
  atomic_init(&in->max_attempts, loader_max_attempts_for(max_attempts, &in->desc));
  if (!in->desc.name || !in->desc.name[0]) {
    snprintf(err, errlen, "%s: the descriptor has no name", src);
    goto fail;
  }
  const char *missing = !in->desc.init         ? "init"
                        : !in->desc.on_message ? "on_message"
                        : !in->desc.shutdown   ? "shutdown"
                                               : NULL;
  if (missing) {
    snprintf(err, errlen, "%s: missing required callback %s", src, missing);
    goto fail;
  }
  if (loader_parse_subs(in, sec, cfg, in->subs, &in->nsubs, err, errlen) < 0)
    goto fail;
  return in;
fail:
  /* No plugin callback ran (only its constructors, if any): safe to close. */
  loader_close(in, 1);
  return NULL;
}

struct slot *loader_slot_find(struct plugin_host *h, const char *name) {
  for (struct slot *sl = h->slots; sl; sl = sl->next)
    if (strcmp(sl->name, name) == 0)
      return sl;
  return NULL;
}

struct slot *loader_slot_get(struct plugin_host *h, const char *name) {
  struct slot *sl = loader_slot_find(h, name);
  if (sl)
    return sl;
  sl = calloc(1, sizeof *sl);
  if (!sl || !(sl->strand = dispatch_strand_new(h->disp))) {
    free(sl);
    return NULL;
  }
  snprintf(sl->name, sizeof sl->name, "%s", name);
  /* Appended: stats and ties keep the order slots appeared in. */
  struct slot **pp = &h->slots;
  while (*pp)
    pp = &(*pp)->next;
  *pp = sl;
  h->nslots++;
  return sl;
}

void loader_log_loaded(const struct instance *in) {
  log_info("plugin %s loaded: %s %s from %s%s", in->name, in->desc.name,
           in->desc.version ? in->desc.version : "", in->src,
           (in->desc.flags & BLAZEBOT_FLAG_UNLOAD_SAFE) ? " (unload-safe)" : "");
}
