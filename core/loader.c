/* SPDX-License-Identifier: MIT */
/*
 * loader: see loader.h. Everything here runs on the thread that loads (the
 * main thread at startup, the I/O thread during a reload) and touches only
 * the instance being opened, the host's staging folder and generation count
 * (the fallback without memfds), and the slot list.
 */
#include "loader.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
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

/* Opens plugin_dir without following a symbolic link (O_NOFOLLOW: the last
 * component; the folders above it are the operator's) and checks the open
 * directory (fstat: owner, mode). Returns the descriptor, or -1 with err. */
static int open_plugin_dir(const struct config *cfg, char *err, size_t errlen) {
  if (!cfg->plugin_dir) {
    snprintf(err, errlen,
             "%s: plugins are configured but [blazebot] plugin_dir is not set",
             cfg->path);
    return -1;
  }
  int fd = open(cfg->plugin_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    struct stat lst;
    /* lstat only words the message; nothing is decided on it. */
    if (lstat(cfg->plugin_dir, &lst) == 0 && S_ISLNK(lst.st_mode))
      snprintf(err, errlen,
               "plugin_dir %s is a symbolic link; refusing to follow it (name the real "
               "directory)",
               cfg->plugin_dir);
    else if (e == ENOTDIR || e == ELOOP)
      snprintf(err, errlen, "plugin_dir %s is not a directory", cfg->plugin_dir);
    else
      snprintf(err, errlen, "plugin_dir %s: %s", cfg->plugin_dir, strerror(e));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode)) {
    snprintf(err, errlen, "plugin_dir %s is not a directory", cfg->plugin_dir);
    close(fd);
    return -1;
  }
  if (safe_mode(&st, "plugin_dir", cfg->plugin_dir, err, errlen) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Opens file inside the open plugin_dir without following a symbolic link
 * (nor blocking on a FIFO) and checks the open file: a regular file, owner,
 * mode. Everything after reads through this one descriptor. */
static int open_plugin_file(int dirfd, const char *file, const char *src, struct stat *st,
                            char *err, size_t errlen) {
  int fd = openat(dirfd, file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, errlen, "cannot open %s: %s", src,
             errno == ELOOP ? "it is a symbolic link; refusing to follow it"
                            : strerror(errno));
    return -1;
  }
  if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
    snprintf(err, errlen, "%s is not a regular file", src);
    close(fd);
    return -1;
  }
  if (safe_mode(st, "plugin file", src, err, errlen) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Writes all of buf[0..n) to fd. */
static int write_all(int fd, const char *buf, size_t n) {
  while (n) {
    ssize_t w = write(fd, buf, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    buf += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Copies everything readable from in (from its start) to out. */
static int copy_all(int in, int out) {
  char buf[65536];
  for (;;) {
    ssize_t n = read(in, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -1;
    if (n == 0)
      return 0;
    if (write_all(out, buf, (size_t)n) < 0)
      return -1;
  }
}

/* The daemon's own ELF header (defined by GNU ld, gold and lld): a plugin
 * must match its class, byte order and machine. */
extern const ElfW(Ehdr) __ehdr_start __attribute__((weak, visibility("hidden")));

static const char *machine_name(unsigned m) {
  switch (m) {
  case EM_X86_64:
    return "x86-64";
  case EM_386:
    return "i386";
  case EM_AARCH64:
    return "AArch64";
  case EM_ARM:
    return "ARM";
  case EM_RISCV:
    return "RISC-V";
  case EM_PPC64:
    return "PowerPC64";
  case EM_PPC:
    return "PowerPC";
  case EM_S390:
    return "s390";
  case EM_MIPS:
    return "MIPS";
  default:
    return NULL;
  }
}

static void describe_machine(char *out, size_t outlen, unsigned m) {
  const char *n = machine_name(m);
  if (n)
    snprintf(out, outlen, "%s", n);
  else
    snprintf(out, outlen, "ELF machine %u", m);
}

/* off + len, saturated. */
static uint64_t end_of(uint64_t off, uint64_t len) {
  return len > UINT64_MAX - off ? UINT64_MAX : off + len;
}

/* Checks the ELF headers of the private copy (fd, size bytes): the exact
 * bytes dlopen maps. Catches what dlopen reports vaguely or not at all: not
 * an ELF file, another architecture, not a shared object, a truncated file. */
static int check_elf(int fd, off_t size, const char *src, char *err, size_t errlen) {
  unsigned char ident[EI_NIDENT] = {0};
  ssize_t n = pread(fd, ident, sizeof ident, 0);
  if (n < SELFMAG || memcmp(ident, ELFMAG, SELFMAG) != 0) {
    snprintf(err, errlen, "%s: cannot load: not an ELF file (%lld bytes, no ELF header)",
             src, (long long)size);
    return -1;
  }
  if (n < EI_NIDENT) {
    snprintf(err, errlen,
             "%s: cannot load: truncated (%lld bytes; the ELF header alone needs %zu)",
             src, (long long)size, sizeof(ElfW(Ehdr)));
    return -1;
  }
  const unsigned char *me = (const unsigned char *)&__ehdr_start;
  if (me && (ident[EI_CLASS] != me[EI_CLASS] || ident[EI_DATA] != me[EI_DATA])) {
    const int c = ident[EI_CLASS], d = ident[EI_DATA];
    snprintf(err, errlen,
             "%s: cannot load: built for another architecture (%s %s ELF; this daemon is "
             "%d-bit %s)",
             src,
             c == ELFCLASS32   ? "32-bit"
             : c == ELFCLASS64 ? "64-bit"
                               : "unknown-class",
             d == ELFDATA2LSB   ? "little-endian"
             : d == ELFDATA2MSB ? "big-endian"
                                : "unknown-byte-order",
             (int)sizeof(void *) * 8,
             me[EI_DATA] == ELFDATA2MSB ? "big-endian" : "little-endian");
    return -1;
  }
  ElfW(Ehdr) eh;
  if (size < (off_t)sizeof eh || pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh) {
    snprintf(err, errlen,
             "%s: cannot load: truncated (%lld bytes; the ELF header alone needs %zu)",
             src, (long long)size, sizeof eh);
    return -1;
  }
  if (me && eh.e_machine != __ehdr_start.e_machine) {
    char theirs[64], ours[64];
    describe_machine(theirs, sizeof theirs, eh.e_machine);
    describe_machine(ours, sizeof ours, __ehdr_start.e_machine);
    snprintf(
        err, errlen,
        "%s: cannot load: built for another architecture (%s; this daemon runs on %s)",
        src, theirs, ours);
    return -1;
  }
  if (eh.e_type != ET_DYN) {
    snprintf(err, errlen, "%s: cannot load: not a shared object (ELF type: %s)", src,
             eh.e_type == ET_EXEC   ? "executable"
             : eh.e_type == ET_REL  ? "relocatable object file"
             : eh.e_type == ET_CORE ? "core dump"
                                    : "unknown");
    return -1;
  }
  if (eh.e_phnum == 0 || eh.e_phentsize != sizeof(ElfW(Phdr))) {
    snprintf(err, errlen,
             "%s: cannot load: malformed ELF file (no usable program headers)", src);
    return -1;
  }
  /* Everything the headers point at must lie inside the file. */
  const uint64_t fsize = (uint64_t)size;
  uint64_t need = sizeof eh;
  const uint64_t ph_end = end_of(eh.e_phoff, (uint64_t)eh.e_phnum * sizeof(ElfW(Phdr)));
  if (ph_end > need)
    need = ph_end;
  if (eh.e_shoff && eh.e_shnum) {
    uint64_t e = end_of(eh.e_shoff, (uint64_t)eh.e_shnum * eh.e_shentsize);
    if (e > need)
      need = e;
  }
  for (unsigned i = 0; ph_end <= fsize && i < eh.e_phnum; i++) {
    ElfW(Phdr) ph;
    if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + i * sizeof ph)) !=
        (ssize_t)sizeof ph)
      break;
    uint64_t e = end_of(ph.p_offset, ph.p_filesz);
    if (ph.p_type == PT_LOAD && e > need)
      need = e;
  }
  if (need > fsize) {
    snprintf(err, errlen,
             "%s: cannot load: truncated (%lld bytes; its ELF headers need %llu)", src,
             (long long)size, (unsigned long long)need);
    return -1;
  }
  return 0;
}

#define MEMFD_PATH "/proc/self/fd/"

/* The private copy of a plugin: its descriptor and the path dlopen gets. */
struct copy {
  int fd;
  int on_disk; /* the staged-file fallback: path is to be unlinked */
  char path[600];
};

/* The copy in memory: a sealed memfd, dlopened as /proc/self/fd/N. Returns
 * 0, 1 when memfds cannot be used here (the caller falls back to a staged
 * file), or -1 with err. */
static int stage_memfd(const char *name, int in, const char *src, struct copy *c,
                       char *err, size_t errlen) {
  if (access(MEMFD_PATH, X_OK) < 0)
    return 1; /* no /proc: the memfd could not be named to dlopen */
  char label[128];
  snprintf(label, sizeof label, "blazebot-plugin-%s", name);
  int fd = memfd_create(label, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) {
    if (errno == ENOSYS)
      return 1;
    snprintf(err, errlen, "cannot copy %s into memory: %s", src, strerror(errno));
    return -1;
  }
  if (copy_all(in, fd) < 0) {
    snprintf(err, errlen, "cannot copy %s into memory: %s", src, strerror(errno));
    close(fd);
    return -1;
  }
  if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) <
      0) {
    snprintf(err, errlen, "cannot seal the copy of %s: %s", src, strerror(errno));
    close(fd);
    return -1;
  }
  c->fd = fd;
  c->on_disk = 0;
  snprintf(c->path, sizeof c->path, MEMFD_PATH "%d", fd);
  return 0;
}

/* The fallback when memfds are unavailable: a private file in the host's
 * staging folder under $TMPDIR (which must then allow exec), named uniquely
 * (glibc hands back the old handle for a path it already has loaded). */
static int stage_file(struct plugin_host *h, const char *name, int in, const char *src,
                      struct copy *c, char *err, size_t errlen) {
  if (loader_ensure_stage_dir(h, err, errlen) < 0)
    return -1;
  snprintf(c->path, sizeof c->path, "%s/%s.%u.so", h->stage_dir, name, ++h->gen);
  int fd = open(c->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0700);
  if (fd < 0) {
    snprintf(err, errlen, "cannot stage %s: %s", src, strerror(errno));
    return -1;
  }
  if (copy_all(in, fd) < 0) {
    snprintf(err, errlen, "cannot stage %s: %s", src, strerror(errno));
    close(fd);
    unlink(c->path);
    return -1;
  }
  c->fd = fd;
  c->on_disk = 1;
  return 0;
}

/* Makes the private copy of the plugin file opened as in (already checked):
 * in memory, or staged on disk when memfds are unavailable. */
static int stage(struct plugin_host *h, const char *name, int in, const char *src,
                 struct copy *c, char *err, size_t errlen) {
  int rc = stage_memfd(name, in, src, c, err, errlen);
  if (rc <= 0)
    return rc;
  static atomic_int told;
  if (!atomic_exchange(&told, 1))
    log_warn("plugins: memfd_create or /proc/self/fd is unavailable; staging plugin "
             "copies in a private folder under $TMPDIR instead (it must not be noexec)");
  return stage_file(h, name, in, src, c, err, errlen);
}

/* The memfd behind a handle dlopened from /proc/self/fd/N, or -1. */
static int handle_memfd(void *dl) {
  struct link_map *lm = NULL;
  if (dlinfo(dl, RTLD_DI_LINKMAP, &lm) != 0 || !lm || !lm->l_name ||
      strncmp(lm->l_name, MEMFD_PATH, strlen(MEMFD_PATH)) != 0)
    return -1;
  char *end;
  long fd = strtol(lm->l_name + strlen(MEMFD_PATH), &end, 10);
  return *end || fd < 0 || fd > 1 << 30 ? -1 : (int)fd;
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
 * registered with the host any more (see host_cancel_timers). The memfd of
 * its copy stays open for as long as the mapping lives, so that no other
 * plugin's copy gets the same /proc/self/fd/N name while this one is
 * loaded (glibc would hand back this handle for that name); it is closed
 * once dlclose has really unmapped the copy. */
void loader_close(struct instance *in, int may_unload) {
  if (!in)
    return;
  if (in->dl && may_unload) {
    int fd = handle_memfd(in->dl);
    dlclose(in->dl);
    if (fd >= 0) {
      char path[64];
      snprintf(path, sizeof path, MEMFD_PATH "%d", fd);
      /* Still loaded (NODELETE, unique symbols): keep the name taken. */
      void *still = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
      if (still)
        dlclose(still);
      else
        close(fd);
    }
  }
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
  if ((size_t)snprintf(src, srclen, "%s/%s", cfg->plugin_dir ? cfg->plugin_dir : "",
                       file) >= srclen) {
    snprintf(err, errlen, "%s:%d: plugin_dir/path is too long", cfg->path,
             kv ? kv->line : sec->line);
    return -1;
  }
  return 0;
}

int loader_check_plugin_dir(const struct config *cfg, char *err, size_t errlen) {
  int fd = open_plugin_dir(cfg, err, errlen);
  if (fd < 0)
    return -1;
  close(fd);
  return 0;
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
  const char *src = in->src;
  if (loader_plugin_src(cfg, sec, in->src, sizeof in->src, err, errlen) < 0)
    goto fail;
  /* One descriptor from the check to the copy: plugin_dir is opened and
   * checked (no symlink, owner, mode), the file is opened relative to that
   * descriptor without following a link, checked with fstat on its own
   * descriptor, and copied from that same descriptor into a sealed memfd.
   * Replacing the file (or plugin_dir) after the checks changes nothing:
   * the descriptor keeps the checked inode, so the bytes copied are the
   * checked file's, and the sealed copy cannot change before or after
   * dlopen. Only its owner (root or the daemon's user, checked) could still
   * rewrite that inode in place while it is read. The ELF checks read the
   * sealed copy, the exact bytes dlopen maps. */
  int dirfd = open_plugin_dir(cfg, err, errlen);
  if (dirfd < 0)
    goto fail;
  struct stat id;
  int fd = open_plugin_file(dirfd, strrchr(in->src, '/') + 1, src, &id, err, errlen);
  close(dirfd);
  if (fd < 0)
    goto fail;
  in->dev = id.st_dev;
  in->ino = id.st_ino;
  in->size = id.st_size;
  in->mtime = id.st_mtim;
  struct copy copy;
  int rc = stage(h, sec->name, fd, src, &copy, err, errlen);
  close(fd);
  if (rc < 0)
    goto fail;
  struct stat cst;
  int bad = fstat(copy.fd, &cst) < 0;
  if (bad)
    snprintf(err, errlen, "cannot read the copy of %s: %s", src, strerror(errno));
  if (bad || check_elf(copy.fd, cst.st_size, src, err, errlen) < 0) {
    close(copy.fd);
    if (copy.on_disk)
      unlink(copy.path);
    goto fail;
  }
  in->dl = dlopen(copy.path, RTLD_NOW | RTLD_LOCAL);
  const char *e = in->dl ? NULL : dlerror();
  if (copy.on_disk) {
    unlink(copy.path); /* the mapping stays; nothing is left on disk */
    close(copy.fd);
  } else if (!in->dl) {
    close(copy.fd); /* on success the handle owns it (see loader_close) */
  }
  if (!in->dl) {
    /* dlerror names the private copy, which means nothing to the operator. */
    size_t sl = strlen(copy.path);
    if (e && strncmp(e, copy.path, sl) == 0 && strncmp(e + sl, ": ", 2) == 0)
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
