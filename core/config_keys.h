/* SPDX-License-Identifier: MIT */
/*
 * config_keys: the table of [blazebot] keys, shared by the parser
 * (config.c) and the printer (config_print.c). Private to those two; no
 * code, no thread.
 */
#ifndef BLAZEBOT_CONFIG_KEYS_H
#define BLAZEBOT_CONFIG_KEYS_H

#include <stddef.h>

enum kind {
  K_PATH,
  K_WS_URL,
  K_HTTP_URL,
  K_INT,
  K_SIZE,
  K_BOOL,
  K_LOG_LEVEL,
  K_ACK_TRANSPORT,
  K_LOG_FORMAT,
  K_LISTEN /* HOST:PORT, kept as written */
};

struct keydef {
  const char *name;
  int kind;
  size_t off; /* offset of the field in struct config */
  long long min, max;
};

/* In the order --print-config lists them. */
extern const struct keydef config_keys[];
extern const size_t config_nkeys;

/* A [plugin.NAME] name: letters, digits, '_' and '-'. */
int config_valid_plugin_name(const char *s);
/* The parser's idea of whitespace. */
int config_is_space(char c);

#endif
