/* SPDX-License-Identifier: MIT */
/*
 * test_dlopen: the built plugin files themselves, loaded the way the daemon
 * loads them (dlopen RTLD_NOW|RTLD_LOCAL, then dlsym of the one entry
 * symbol), each under blazebot/testing.h's host: the descriptor's name is
 * the file's name, the ABI is 1.x, init succeeds with a minimal section,
 * one message goes through, shutdown, dlclose. Arguments: the .so paths;
 * archive gets a file under BLAZEBOT_TEST_TMP.
 */
#define _XOPEN_SOURCE 700

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <blazebot/testing.h>

#include "check.h"

typedef const struct blazebot_plugin *(*entry_fn)(void);

static void try_plugin(const char *path, const char *dir) {
  struct blazebot_test_host th;
  const struct blazebot_plugin *desc;
  const char *base = strrchr(path, '/');
  char name[64], archive[4200];
  entry_fn entry;
  void *h, *sym;
  int rc;

  base = base ? base + 1 : path;
  snprintf(name, sizeof name, "%.*s", (int)strcspn(base, "."), base);
  h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  CHECK(h != NULL);
  if (!h) {
    fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
    return;
  }
  sym = dlsym(h, BLAZEBOT_ENTRY_SYMBOL);
  CHECK(sym != NULL);
  if (!sym) {
    dlclose(h);
    return;
  }
  /* POSIX guarantees this conversion for dlsym results. */
  memcpy(&entry, &sym, sizeof entry);
  desc = entry();
  CHECK_STR(desc->name, name);
  CHECK_INT(desc->abi_major, BLAZEBOT_ABI_MAJOR);
  CHECK(desc->abi_minor <= BLAZEBOT_ABI_MINOR);
  CHECK_INT(desc->size, sizeof(struct blazebot_plugin));

  blazebot_test_init(&th);
  snprintf(archive, sizeof archive, "%s/%s.jsonl", dir, name);
  blazebot_test_set_config(&th, "file", archive);
  rc = blazebot_test_load(&th, desc);
  CHECK_INT(rc, 0);
  if (rc == 0) {
    rc = blazebot_test_deliver(&th, blazebot_test_message(&th, "PLAIN_TEXT", "/help"));
    CHECK(rc == BLAZEBOT_PASS || rc == BLAZEBOT_HANDLED);
  } else {
    fprintf(stderr, "%s: init failed: %s\n", path, th.error);
  }
  CHECK_INT(th.violations, 0);
  blazebot_test_unload(&th);
  unlink(archive);
  CHECK_INT(dlclose(h), 0);
}

int main(int argc, char **argv) {
  const char *tmp = getenv("BLAZEBOT_TEST_TMP");
  char tmpl[400], dir[4096];
  int i;
  if (argc < 2) {
    fprintf(stderr, "usage: %s plugin.so...\n", argv[0]);
    return 2;
  }
  if (tmp)
    mkdir(tmp, 0755);
  snprintf(tmpl, sizeof tmpl, "%s/dlopen-XXXXXX", tmp ? tmp : "/tmp");
  if (!mkdtemp(tmpl) || !realpath(tmpl, dir)) {
    perror(tmpl);
    return 1;
  }
  for (i = 1; i < argc; i++)
    try_plugin(argv[i], dir);
  rmdir(dir);
  return check_done("plugins.dlopen");
}
