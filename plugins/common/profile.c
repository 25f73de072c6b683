/* SPDX-License-Identifier: MIT */
/*
 * profile: the JSON reader, profile lookups, templates and cache shared by
 * the commands and welcome plugins (see profile.h).
 */
#include "profile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a growable buffer ----------------------------------------------------------- */

struct buf {
  char *p;
  size_t len, cap;
  int oom;
};

static void buf_add(struct buf *b, const char *s, size_t n) {
  if (b->oom)
    return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    char *q;
    while (cap < b->len + n + 1)
      cap *= 2;
    q = realloc(b->p, cap);
    if (!q) {
      b->oom = 1;
      return;
    }
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

/* Hands the buffer's string over (never NULL unless out of memory). */
static char *buf_take(struct buf *b) {
  char *p;
  if (!b->oom && !b->p)
    buf_add(b, "", 0);
  if (b->oom) {
    free(b->p);
    p = NULL;
  } else {
    p = b->p;
  }
  b->p = NULL;
  b->len = b->cap = 0;
  b->oom = 0;
  return p;
}

static void buf_put_utf8(struct buf *b, uint32_t cp) {
  char u[4];
  size_t n;
  if (cp < 0x80) {
    u[0] = (char)cp;
    n = 1;
  } else if (cp < 0x800) {
    u[0] = (char)(0xC0 | (cp >> 6));
    u[1] = (char)(0x80 | (cp & 0x3F));
    n = 2;
  } else if (cp < 0x10000) {
    u[0] = (char)(0xE0 | (cp >> 12));
    u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    u[2] = (char)(0x80 | (cp & 0x3F));
    n = 3;
  } else {
    u[0] = (char)(0xF0 | (cp >> 18));
    u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    u[3] = (char)(0x80 | (cp & 0x3F));
    n = 4;
  }
  buf_add(b, u, n);
}

/* ---- JSON ------------------------------------------------------------------------ */

struct pj {
  const unsigned char *p, *end;
  int oom;
};

/* What a value is to the caller: skipped, the top-level object holding the
 * container, or the object whose members are picked. */
enum { PJ_SKIP, PJ_TOP, PJ_TARGET };

struct pj_pick {
  const char *container;
  const char *const *keys;
  size_t nkeys;
  char **out;
  int found;
};

static void pj_ws(struct pj *j) {
  while (j->p < j->end &&
         (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
    j->p++;
}

static int pj_hex4(const unsigned char *p, uint32_t *out) {
  uint32_t v = 0;
  int i;
  for (i = 0; i < 4; i++) {
    unsigned c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9')
      v |= c - '0';
    else if (c >= 'a' && c <= 'f')
      v |= c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      v |= c - 'A' + 10;
    else
      return -1;
  }
  *out = v;
  return 0;
}

/* The length of the well-formed UTF-8 sequence at p (p[0] >= 0x80), or 0:
 * no overlong forms, no encoded surrogates, nothing above U+10FFFF. */
static size_t pj_utf8_len(const unsigned char *p, const unsigned char *end) {
  unsigned c = p[0], lo = 0x80, hi = 0xBF;
  size_t n, i;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0)
      lo = 0xA0;
    else if (c == 0xED)
      hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0)
      lo = 0x90;
    else if (c == 0xF4)
      hi = 0x8F;
  } else {
    return 0;
  }
  if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
    return 0;
  for (i = 2; i < n; i++)
    if ((p[i] & 0xC0) != 0x80)
      return 0;
  return n;
}

/* A string at j->p (its opening quote). Decoded into b when b is not NULL;
 * *nul is set when it holds U+0000. Returns 0 or -1 (malformed). */
static int pj_string(struct pj *j, struct buf *b, int *nul) {
  j->p++; /* the opening quote */
  for (;;) {
    const unsigned char *run = j->p;
    while (j->p < j->end && *j->p >= 0x20 && *j->p != '"' && *j->p != '\\' &&
           *j->p < 0x80)
      j->p++;
    if (b && j->p > run)
      buf_add(b, (const char *)run, (size_t)(j->p - run));
    if (j->p >= j->end || *j->p < 0x20)
      return -1; /* unterminated, or a raw control character */
    if (*j->p == '"') {
      j->p++;
      return 0;
    }
    if (*j->p >= 0x80) {
      size_t n = pj_utf8_len(j->p, j->end);
      if (!n)
        return -1;
      if (b)
        buf_add(b, (const char *)j->p, n);
      j->p += n;
      continue;
    }
    /* A backslash. */
    if (j->end - j->p < 2)
      return -1;
    {
      unsigned e = j->p[1];
      const char *simple = NULL;
      uint32_t cp, lo;
      switch (e) {
      case '"':
        simple = "\"";
        break;
      case '\\':
        simple = "\\";
        break;
      case '/':
        simple = "/";
        break;
      case 'b':
        simple = "\b";
        break;
      case 'f':
        simple = "\f";
        break;
      case 'n':
        simple = "\n";
        break;
      case 'r':
        simple = "\r";
        break;
      case 't':
        simple = "\t";
        break;
      case 'u':
        break;
      default:
        return -1;
      }
      if (simple) {
        if (b)
          buf_add(b, simple, 1);
        j->p += 2;
        continue;
      }
      if (j->end - j->p < 6 || pj_hex4(j->p + 2, &cp) != 0)
        return -1;
      j->p += 6;
      if (cp >= 0xDC00 && cp <= 0xDFFF)
        return -1; /* a low surrogate first */
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        /* A high surrogate: a low one must follow, as \uXXXX. */
        if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u' ||
            pj_hex4(j->p + 2, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF)
          return -1;
        j->p += 6;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      }
      if (cp == 0)
        *nul = 1;
      if (b)
        buf_put_utf8(b, cp);
    }
  }
}

static int pj_number(struct pj *j) {
  const unsigned char *p = j->p, *e = j->end;
  if (p < e && *p == '-')
    p++;
  if (p >= e || *p < '0' || *p > '9')
    return -1;
  if (*p == '0')
    p++;
  else
    while (p < e && *p >= '0' && *p <= '9')
      p++;
  if (p < e && *p == '.') {
    p++;
    if (p >= e || *p < '0' || *p > '9')
      return -1;
    while (p < e && *p >= '0' && *p <= '9')
      p++;
  }
  if (p < e && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < e && (*p == '+' || *p == '-'))
      p++;
    if (p >= e || *p < '0' || *p > '9')
      return -1;
    while (p < e && *p >= '0' && *p <= '9')
      p++;
  }
  j->p = p;
  return 0;
}

static int pj_literal(struct pj *j, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
    return -1;
  j->p += n;
  return 0;
}

static int pj_value(struct pj *j, int depth, int role, struct pj_pick *k);

/* The index of the key key[0..n) among k->keys, or k->nkeys. */
static size_t pj_key_index(const struct pj_pick *k, const char *key, size_t n) {
  size_t i;
  for (i = 0; i < k->nkeys; i++)
    if (strlen(k->keys[i]) == n && memcmp(k->keys[i], key, n) == 0)
      return i;
  return k->nkeys;
}

static void pj_drop_all(struct pj_pick *k) {
  size_t i;
  for (i = 0; i < k->nkeys; i++) {
    free(k->out[i]);
    k->out[i] = NULL;
  }
}

/* An object at j->p ('{'). role PJ_TOP: the member named k->container, if
 * an object, is the target; PJ_TARGET: its string members go to k->out. */
static int pj_object(struct pj *j, int depth, int role, struct pj_pick *k) {
  struct buf key = {NULL, 0, 0, 0};
  int rc = -1;
  j->p++;
  pj_ws(j);
  if (j->p < j->end && *j->p == '}') {
    j->p++;
    return 0;
  }
  for (;;) {
    int key_nul = 0, sub = PJ_SKIP;
    size_t idx = k->nkeys;
    pj_ws(j);
    if (j->p >= j->end || *j->p != '"')
      goto out;
    key.len = 0;
    if (pj_string(j, role == PJ_SKIP ? NULL : &key, &key_nul) != 0)
      goto out;
    if (key.oom) {
      j->oom = 1;
      goto out;
    }
    pj_ws(j);
    if (j->p >= j->end || *j->p != ':')
      goto out;
    j->p++;
    pj_ws(j);
    if (j->p >= j->end)
      goto out;
    if (role != PJ_SKIP && !key_nul) {
      const char *kp = key.p ? key.p : "";
      if (role == PJ_TOP) {
        if (strlen(k->container) == key.len && memcmp(k->container, kp, key.len) == 0 &&
            *j->p == '{') {
          /* The last such member counts: forget an earlier one's picks. */
          pj_drop_all(k);
          k->found = 1;
          sub = PJ_TARGET;
        }
      } else {
        idx = pj_key_index(k, kp, key.len);
      }
    }
    if (idx < k->nkeys) {
      free(k->out[idx]);
      k->out[idx] = NULL;
    }
    if (idx < k->nkeys && *j->p == '"') {
      struct buf val = {NULL, 0, 0, 0};
      int nul = 0;
      if (pj_string(j, &val, &nul) != 0) {
        free(val.p);
        goto out;
      }
      if (val.oom) {
        free(val.p);
        j->oom = 1;
        goto out;
      }
      if (nul)
        free(val.p);
      else
        k->out[idx] = buf_take(&val);
      if (!nul && !k->out[idx]) {
        j->oom = 1;
        goto out;
      }
    } else if (pj_value(j, depth, sub, k) != 0) {
      goto out;
    }
    pj_ws(j);
    if (j->p < j->end && *j->p == ',') {
      j->p++;
      continue;
    }
    if (j->p < j->end && *j->p == '}') {
      j->p++;
      rc = 0;
    }
    goto out;
  }
out:
  free(key.p);
  return rc;
}

static int pj_array(struct pj *j, int depth, struct pj_pick *k) {
  j->p++;
  pj_ws(j);
  if (j->p < j->end && *j->p == ']') {
    j->p++;
    return 0;
  }
  for (;;) {
    pj_ws(j);
    if (pj_value(j, depth, PJ_SKIP, k) != 0)
      return -1;
    pj_ws(j);
    if (j->p < j->end && *j->p == ',') {
      j->p++;
      continue;
    }
    if (j->p < j->end && *j->p == ']') {
      j->p++;
      return 0;
    }
    return -1;
  }
}

/* One value at j->p (no white space before it). depth: of the containers
 * around it. */
static int pj_value(struct pj *j, int depth, int role, struct pj_pick *k) {
  int nul = 0;
  if (j->p >= j->end)
    return -1;
  switch (*j->p) {
  case '{':
    if (depth >= PJ_MAX_DEPTH)
      return -1;
    if (role == PJ_TARGET)
      k->found = 1;
    return pj_object(j, depth + 1, role, k);
  case '[':
    if (depth >= PJ_MAX_DEPTH)
      return -1;
    return pj_array(j, depth + 1, k);
  case '"':
    return pj_string(j, NULL, &nul);
  case 't':
    return pj_literal(j, "true");
  case 'f':
    return pj_literal(j, "false");
  case 'n':
    return pj_literal(j, "null");
  default:
    return pj_number(j);
  }
}

int pj_strings(const char *json, size_t len, const char *container,
               const char *const *keys, size_t nkeys, char **out) {
  struct pj j;
  struct pj_pick k;
  size_t i;
  int rc;
  for (i = 0; i < nkeys; i++)
    out[i] = NULL;
  if (!json)
    return PJ_MALFORMED;
  j.p = (const unsigned char *)json;
  j.end = j.p + len;
  j.oom = 0;
  k.container = container;
  k.keys = keys;
  k.nkeys = nkeys;
  k.out = out;
  k.found = 0;
  pj_ws(&j);
  /* The top-level value is the target itself, or holds it. */
  rc = pj_value(&j, 0, container ? PJ_TOP : PJ_TARGET, &k);
  pj_ws(&j);
  if (rc != 0 || j.oom || j.p != j.end) {
    pj_drop_all(&k);
    return PJ_MALFORMED;
  }
  if (!k.found) {
    pj_drop_all(&k);
    return PJ_NO_OBJECT;
  }
  return 0;
}

/* ---- profiles -------------------------------------------------------------------- */

void profile_clear(struct profile *p) {
  free(p->user_id);
  free(p->identity_number);
  free(p->full_name);
  p->user_id = p->identity_number = p->full_name = NULL;
}

static int is_hex(int c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int lower(int c) {
  return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

int profile_valid_id(const char *id) {
  size_t i;
  if (!id)
    return 0;
  for (i = 0; i < 36; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (id[i] != '-')
        return 0;
    } else if (!is_hex((unsigned char)id[i])) {
      return 0;
    }
  }
  return id[36] == '\0';
}

int profile_same_id(const char *a, const char *b) {
  for (; *a && *b; a++, b++)
    if (lower((unsigned char)*a) != lower((unsigned char)*b))
      return 0;
  return *a == *b;
}

int profile_host_can_lookup(const struct blazebot_host *host) {
  return BLAZEBOT_HOST_HAS(host, api_request) && BLAZEBOT_HOST_HAS(host, hold) &&
         BLAZEBOT_HOST_HAS(host, release) && BLAZEBOT_HOST_HAS(host, now_ms);
}

int profile_request(blazebot_ctx *ctx, const struct blazebot_host *host,
                    const char *user_id, blazebot_api_fn done, void *arg) {
  char path[64];
  if (!profile_valid_id(user_id) || !BLAZEBOT_HOST_HAS(host, api_request))
    return -1;
  snprintf(path, sizeof path, "/users/%s", user_id);
  return host->api_request(ctx, "GET", path, NULL, 0, 0, done, arg);
}

/* Longer names or numbers are not a profile we believe. */
#define PROFILE_FIELD_MAX 1024

int profile_from_response(const struct blazebot_api_response *r, const char *user_id,
                          struct profile *out, const char **why) {
  static const char *const keys[] = {"user_id", "identity_number", "full_name"};
  char *v[3];
  size_t i;
  int rc;
  memset(out, 0, sizeof *out);
  if (r->http_status == 0) {
    *why = "no answer (timed out or the link failed)";
    return -1;
  }
  if (r->http_status < 200 || r->http_status > 299) {
    *why = "HTTP error";
    return -1;
  }
  if (r->error_code != 0) {
    *why = "Mixin error";
    return -1;
  }
  rc = pj_strings(r->body, r->body_len, "data", keys, 3, v);
  if (rc == PJ_MALFORMED) {
    *why = "the body is not valid JSON";
    return -1;
  }
  if (rc == PJ_NO_OBJECT) {
    *why = "the body has no data object";
    return -1;
  }
  for (i = 0; i < 3; i++) {
    if (!v[i] || !v[i][0] || strlen(v[i]) > PROFILE_FIELD_MAX) {
      *why = "user_id, identity_number or full_name missing, empty or too long";
      goto fail;
    }
  }
  if (!profile_same_id(v[0], user_id)) {
    *why = "the profile is another user's";
    goto fail;
  }
  for (i = 0; v[0][i]; i++)
    v[0][i] = (char)lower((unsigned char)v[0][i]);
  out->user_id = v[0];
  out->identity_number = v[1];
  out->full_name = v[2];
  *why = "";
  return 0;
fail:
  for (i = 0; i < 3; i++)
    free(v[i]);
  return -1;
}

/* ---- templates ------------------------------------------------------------------- */

enum { PH_FULL_NAME, PH_IDENTITY_NUMBER, PH_USER_ID, PH_NONE };

static const char *const placeholders[] = {"{full_name}", "{identity_number}",
                                           "{user_id}"};

/* The placeholder at s, or PH_NONE. */
static int placeholder_at(const char *s, size_t *len) {
  int i;
  if (*s != '{')
    return PH_NONE;
  for (i = 0; i < PH_NONE; i++) {
    size_t n = strlen(placeholders[i]);
    if (strncmp(s, placeholders[i], n) == 0) {
      *len = n;
      return i;
    }
  }
  return PH_NONE;
}

unsigned tpl_scan(const char *tpl) {
  unsigned uses = 0;
  size_t n;
  for (; *tpl; tpl++) {
    switch (placeholder_at(tpl, &n)) {
    case PH_FULL_NAME:
    case PH_IDENTITY_NUMBER:
      uses |= TPL_USES_PROFILE;
      break;
    case PH_USER_ID:
      uses |= TPL_USES_USER_ID;
      break;
    default:
      break;
    }
  }
  return uses;
}

static void add_value(struct buf *b, const char *v, int markdown) {
  if (!markdown) {
    buf_add(b, v, strlen(v));
    return;
  }
  for (; *v; v++) {
    if (strchr("\\`*_[]<>~|#", *v))
      buf_add(b, "\\", 1);
    buf_add(b, v, 1);
  }
}

char *tpl_expand(const char *tpl, const char *user_id, const struct profile *p,
                 int markdown) {
  struct buf b = {NULL, 0, 0, 0};
  while (*tpl) {
    size_t n = 0;
    int ph = placeholder_at(tpl, &n);
    if (ph == PH_NONE) {
      const char *brace = strchr(tpl + 1, '{');
      size_t run = brace ? (size_t)(brace - tpl) : strlen(tpl);
      buf_add(&b, tpl, run);
      tpl += run;
      continue;
    }
    if (ph == PH_USER_ID)
      add_value(&b, user_id ? user_id : "", markdown);
    else if (p)
      add_value(&b, ph == PH_FULL_NAME ? p->full_name : p->identity_number, markdown);
    tpl += n;
  }
  return buf_take(&b);
}

/* ---- the cache ------------------------------------------------------------------- */

static void cache_drop(struct profile_cache *c, size_t i) {
  profile_clear(&c->v[i].p);
  c->v[i] = c->v[--c->n];
}

static size_t cache_find(const struct profile_cache *c, const char *user_id) {
  size_t i;
  for (i = 0; i < c->n; i++)
    if (profile_same_id(c->v[i].p.user_id, user_id))
      return i;
  return c->n;
}

static size_t cache_lru(const struct profile_cache *c) {
  size_t i, best = 0;
  for (i = 1; i < c->n; i++)
    if (c->v[i].used < c->v[best].used)
      best = i;
  return best;
}

void profile_cache_limit(struct profile_cache *c, size_t max, int64_t ttl_ms) {
  c->max = ttl_ms > 0 ? max : 0;
  c->ttl_ms = ttl_ms;
  while (c->n > c->max)
    cache_drop(c, cache_lru(c));
  if (!c->n) {
    free(c->v);
    c->v = NULL;
    c->cap = 0;
  }
}

const struct profile *profile_cache_get(struct profile_cache *c, const char *user_id,
                                        int64_t now_ms) {
  size_t i = cache_find(c, user_id);
  if (i == c->n)
    return NULL;
  /* A clock before fetched_ms cannot happen with a monotonic clock: treat
   * it as expired all the same. */
  if (now_ms < c->v[i].fetched_ms || now_ms - c->v[i].fetched_ms >= c->ttl_ms) {
    cache_drop(c, i);
    return NULL;
  }
  c->v[i].used = ++c->tick;
  return &c->v[i].p;
}

void profile_cache_put(struct profile_cache *c, const struct profile *p, int64_t now_ms) {
  struct profile_cache_entry e;
  size_t i;
  if (!c->max || !p->user_id || !p->identity_number || !p->full_name)
    return;
  memset(&e, 0, sizeof e);
  e.p.user_id = malloc(strlen(p->user_id) + 1);
  e.p.identity_number = malloc(strlen(p->identity_number) + 1);
  e.p.full_name = malloc(strlen(p->full_name) + 1);
  if (!e.p.user_id || !e.p.identity_number || !e.p.full_name) {
    profile_clear(&e.p);
    return;
  }
  strcpy(e.p.user_id, p->user_id);
  strcpy(e.p.identity_number, p->identity_number);
  strcpy(e.p.full_name, p->full_name);
  e.fetched_ms = now_ms;
  e.used = ++c->tick;
  if ((i = cache_find(c, p->user_id)) < c->n) {
    profile_clear(&c->v[i].p);
    c->v[i] = e;
    return;
  }
  if (c->n == c->max)
    cache_drop(c, cache_lru(c));
  if (c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 16;
    struct profile_cache_entry *v;
    if (cap > c->max)
      cap = c->max;
    v = realloc(c->v, cap * sizeof *v);
    if (!v) {
      profile_clear(&e.p);
      return;
    }
    c->v = v;
    c->cap = cap;
  }
  c->v[c->n++] = e;
}

void profile_cache_free(struct profile_cache *c) {
  while (c->n)
    cache_drop(c, c->n - 1);
  free(c->v);
  memset(c, 0, sizeof *c);
}

/* ---- configuration --------------------------------------------------------------- */

int profile_config(blazebot_ctx *ctx, const struct blazebot_host *host, int64_t *ttl_ms,
                   size_t *cache_max, char *err, size_t errlen) {
  int64_t ttl, max;
  if (host->config_int(ctx, "profile_ttl_s", PROFILE_TTL_S_DEFAULT, &ttl) != 0 ||
      ttl < 0 || ttl > PROFILE_TTL_S_MAX) {
    snprintf(err, errlen, "profile_ttl_s must be an integer from 0 to %d",
             PROFILE_TTL_S_MAX);
    return -1;
  }
  if (host->config_int(ctx, "profile_cache_max", PROFILE_CACHE_MAX_DEFAULT, &max) != 0 ||
      max < 0 || max > PROFILE_CACHE_MAX_LIMIT) {
    snprintf(err, errlen, "profile_cache_max must be an integer from 0 to %d",
             PROFILE_CACHE_MAX_LIMIT);
    return -1;
  }
  *ttl_ms = ttl * 1000;
  *cache_max = (size_t)max;
  return 0;
}

char *profile_strdup(const char *s) {
  char *p = malloc(strlen(s) + 1);
  if (p)
    strcpy(p, s);
  return p;
}
