/* SPDX-License-Identifier: MIT */
/*
 * profile: what the commands and welcome plugins share to answer with a
 * Mixin user's profile, compiled into each plugin's .so (blazebot_add_plugin
 * with two sources: hidden visibility keeps these symbols local).
 *
 *  - A strict JSON reader that picks string members out of one object and
 *    rejects any malformed document (libc only: plugins link nothing else).
 *  - struct profile and its reading from the answer of GET /users/{id}.
 *  - Templates with the placeholders {full_name}, {identity_number} and
 *    {user_id}; any other text, braces included, is literal.
 *  - An in-memory cache of profiles with a TTL and a size cap (LRU).
 *  - The ini keys profile_ttl_s and profile_cache_max.
 */
#ifndef BLAZEBOT_PLUGINS_PROFILE_H
#define BLAZEBOT_PLUGINS_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include <blazebot/plugin.h>

/* ---- JSON ------------------------------------------------------------------------ */

/* How deep objects and arrays may nest in a document pj_strings accepts. */
#define PJ_MAX_DEPTH 64

/* Reads json[0..len) as one complete JSON document (RFC 8259, UTF-8) and
 * picks string members out of one object: the top-level value when container
 * is NULL, else the top-level object's member named container. out[i] gets a
 * malloc'd, NUL-terminated copy of the string value of member keys[i] (escapes
 * decoded, \uXXXX surrogate pairs joined, as UTF-8), or NULL when that member
 * is missing, is not a string, or holds U+0000; a repeated member counts
 * once, the last one. Returns 0; PJ_MALFORMED for anything that is not
 * exactly one valid JSON value (invalid UTF-8, a lone surrogate, a raw
 * control character in a string, trailing bytes, nesting deeper than
 * PJ_MAX_DEPTH) or when memory runs out; PJ_NO_OBJECT when the document is
 * valid but the object is not there (then, as with PJ_MALFORMED, every out[i]
 * is NULL). */
#define PJ_MALFORMED (-1)
#define PJ_NO_OBJECT (-2)
int pj_strings(const char *json, size_t len, const char *container,
               const char *const *keys, size_t nkeys, char **out);

/* ---- profiles -------------------------------------------------------------------- */

struct profile {
  char *user_id; /* lowercase */
  char *identity_number;
  char *full_name;
};

/* Frees the strings of p and sets them to NULL. */
void profile_clear(struct profile *p);
/* A malloc'ed copy of s (strdup is not C99); NULL when out of memory. */
char *profile_strdup(const char *s);

/* Whether id looks like a Mixin user id: a UUID, 8-4-4-4-12 hex digits. Only
 * such ids are put into a request path. */
int profile_valid_id(const char *id);

/* Whether two ids are equal, ignoring ASCII case. */
int profile_same_id(const char *a, const char *b);

/* Whether host offers what a lookup needs: api_request, hold, release and
 * now_ms (ABI minor 1). */
int profile_host_can_lookup(const struct blazebot_host *host);

/* Asks for GET /users/{user_id} (user_id must pass profile_valid_id): done
 * gets the answer, for profile_from_response. Returns api_request's 0/-1. */
int profile_request(blazebot_ctx *ctx, const struct blazebot_host *host,
                    const char *user_id, blazebot_api_fn done, void *arg);

/* Reads the answer of GET /users/{user_id} into *out: a 2xx without a Mixin
 * error, whose body is {"data":{...}} with the string members user_id (the
 * one asked for), identity_number and full_name, none of them empty. Returns
 * 0, or -1 with *out cleared and *why, a static reason for the log. */
int profile_from_response(const struct blazebot_api_response *r, const char *user_id,
                          struct profile *out, const char **why);

/* ---- templates ------------------------------------------------------------------- */

#define TPL_USES_USER_ID 0x1u /* {user_id} */
#define TPL_USES_PROFILE 0x2u /* {full_name} or {identity_number}: needs a lookup */

/* Which placeholders tpl uses (TPL_USES_*). */
unsigned tpl_scan(const char *tpl);

/* A malloc'd copy of tpl with {user_id} replaced by user_id and, when p is
 * not NULL, {full_name} and {identity_number} by p's. Without p those two
 * become "" (callers check tpl_scan first). markdown: the substituted values
 * get Markdown's special characters backslash-escaped (for PLAIN_POST);
 * otherwise nothing is escaped. NULL when memory runs out. */
char *tpl_expand(const char *tpl, const char *user_id, const struct profile *p,
                 int markdown);

/* ---- the cache ------------------------------------------------------------------- */

struct profile_cache_entry {
  struct profile p;
  int64_t fetched_ms; /* now_ms(BLAZEBOT_CLOCK_MONOTONIC) when stored */
  uint64_t used;      /* the cache's tick when last read or stored */
};

/* Zero-initialised = empty and off (max 0). */
struct profile_cache {
  struct profile_cache_entry *v;
  size_t n, cap, max;
  int64_t ttl_ms;
  uint64_t tick;
};

/* Sets the cap (0 = cache nothing) and the TTL (<= 0 = cache nothing); drops
 * the least recently used entries beyond the new cap. */
void profile_cache_limit(struct profile_cache *c, size_t max, int64_t ttl_ms);
/* The fresh profile of user_id (stored less than ttl_ms before now_ms), or
 * NULL; an expired one is dropped. Borrowed until the next call on c. */
const struct profile *profile_cache_get(struct profile_cache *c, const char *user_id,
                                        int64_t now_ms);
/* Stores a copy of p (replacing user_id's entry; evicting the least recently
 * used when full). Nothing happens when the cache is off or memory runs out. */
void profile_cache_put(struct profile_cache *c, const struct profile *p, int64_t now_ms);
void profile_cache_free(struct profile_cache *c);

/* ---- configuration --------------------------------------------------------------- */

#define PROFILE_TTL_S_DEFAULT 600
#define PROFILE_TTL_S_MAX (30 * 24 * 3600)
#define PROFILE_CACHE_MAX_DEFAULT 1000
#define PROFILE_CACHE_MAX_LIMIT 100000

/* Reads profile_ttl_s (seconds, 0-PROFILE_TTL_S_MAX) and profile_cache_max
 * (entries, 0-PROFILE_CACHE_MAX_LIMIT) of the plugin's section. Returns 0, or
 * -1 with a reason in err. */
int profile_config(blazebot_ctx *ctx, const struct blazebot_host *host, int64_t *ttl_ms,
                   size_t *cache_max, char *err, size_t errlen);

#endif
