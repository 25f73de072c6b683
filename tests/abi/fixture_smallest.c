/* SPDX-License-Identifier: MIT */
/*
 * fixture_smallest: the oldest plugin the v1 promise covers. Its descriptor
 * is written out by hand with only the fields of ABI 1.0's required prefix
 * (size through shutdown), so size = offsetof(struct blazebot_plugin,
 * reconfigure): a plugin compiled before any optional callback existed. It
 * must load and run. The descriptor is copied to the very end of a page
 * whose successor is mapped PROT_NONE, so a host that reads one byte past
 * `size` (instead of copying min(size, sizeof) into a zeroed struct) crashes
 * at load time rather than reading garbage as reconfigure or save_state.
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <blazebot/plugin.h>

/* ABI 1.0's required prefix, and nothing else. */
struct v1_0_descriptor {
  uint32_t size;
  uint32_t abi_major;
  uint32_t abi_minor;
  uint32_t flags;
  const char *name;
  const char *version;
  const char *description;
  const struct blazebot_subscription *subscriptions;
  int (*init)(blazebot_ctx *ctx, const struct blazebot_host *host, void **state);
  int (*on_message)(void *state, const struct blazebot_message *msg);
  void (*shutdown)(void *state);
};

_Static_assert(sizeof(struct v1_0_descriptor) ==
                   offsetof(struct blazebot_plugin, reconfigure),
               "the 1.0 prefix ends where reconfigure starts");

static int smallest_init(blazebot_ctx *ctx, const struct blazebot_host *host,
                         void **state) {
  *state = NULL;
  /* Proves init ran with a working host table: the test looks for it. */
  host->log(ctx, BLAZEBOT_LOG_INFO, "smallest v1 descriptor initialised (host minor %u)",
            (unsigned)host->abi_minor);
  return 0;
}

static int smallest_on_message(void *state, const struct blazebot_message *msg) {
  (void)state;
  (void)msg;
  return BLAZEBOT_PASS;
}

static void smallest_shutdown(void *state) {
  (void)state;
}

static const struct blazebot_subscription subs[] = {{"PLAIN_TEXT", 0, 0}, {NULL, 0, 0}};

static const struct v1_0_descriptor desc = {
    .size = sizeof(struct v1_0_descriptor),
    .abi_major = 1,
    .abi_minor = 0,
    .flags = 0,
    .name = "smallest",
    .version = "1.0",
    .description = "only the ABI 1.0 required prefix",
    .subscriptions = subs,
    .init = smallest_init,
    .on_message = smallest_on_message,
    .shutdown = smallest_shutdown,
};

BLAZEBOT_EXPORT const struct blazebot_plugin *blazebot_plugin_v1(void);

BLAZEBOT_EXPORT const struct blazebot_plugin *blazebot_plugin_v1(void) {
  /* Called once per load, on the main thread. The mapping is never unmapped
   * (the host may keep the pointer), and the plugin is not unload-safe. */
  static const void *placed;
  if (!placed) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    unsigned char *p =
        mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
      return NULL;
    unsigned char *at = p + page - sizeof desc;
    memcpy(at, &desc, sizeof desc);
    if (mprotect(p + page, page, PROT_NONE) != 0 || mprotect(p, page, PROT_READ) != 0)
      return NULL;
    placed = at;
  }
  return (const struct blazebot_plugin *)placed;
}
