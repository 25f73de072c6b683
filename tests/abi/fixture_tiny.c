/* SPDX-License-Identifier: MIT */
/*
 * fixture_tiny: an entry point whose descriptor cannot be a v1 descriptor.
 * By default it claims size = 16 (the four uint32_t header fields, nothing
 * after), which the loader must refuse before reading any pointer; with
 * NULL_DESC the entry returns no descriptor at all. The 16 bytes are all the
 * memory there is, so a loader that read further would read past the object.
 */
#include <stddef.h>
#include <stdint.h>

#include <blazebot/plugin.h>

#ifndef NULL_DESC
static const struct {
  uint32_t size, abi_major, abi_minor, flags;
} tiny = {16, BLAZEBOT_ABI_MAJOR, BLAZEBOT_ABI_MINOR, 0};
#endif

BLAZEBOT_EXPORT const struct blazebot_plugin *blazebot_plugin_v1(void);

BLAZEBOT_EXPORT const struct blazebot_plugin *blazebot_plugin_v1(void) {
#ifdef NULL_DESC
  return NULL;
#else
  return (const struct blazebot_plugin *)(const void *)&tiny;
#endif
}
