/* SPDX-License-Identifier: MIT */
/*
 * nats-worker: an echo bot's logic as a NATS JetStream worker, for the nats
 * plugin (README.md here is the contract). Any number of copies share one
 * durable pull consumer on <prefix>.in.PLAIN_TEXT; each message is answered
 * with its text (after --text-prefix), published to <prefix>.out under a
 * reply id derived from the incoming id, and only then acknowledged. A
 * redelivery therefore publishes the same reply id again, which JetStream
 * (Nats-Msg-Id) and Mixin both drop.
 *
 * One thread: the main loop fetches, answers and acks; SIGTERM and SIGINT
 * set a flag it checks between fetches (a graceful stop loses nothing; a
 * killed worker's unacknowledged messages go to the others after AckWait).
 * libnats runs its own threads; no callback of this program runs on them.
 *
 *   nats-worker [--servers URLS] [--prefix blazebot] [--stream BLAZEBOT]
 *               [--durable blazebot-worker] [--ack-wait-s 30] [--label echo-worker]
 *               [--text-prefix TEXT] [--delay-ms 0] [--batch 32] [--creds FILE]
 *               [--token TOKEN] [--ca-file FILE]
 *
 * --servers defaults to $NATS_URL, else nats://127.0.0.1:4222. --creds (a
 * user's .creds file), --token and --ca-file (PEM CA certificates to verify
 * the server's TLS certificate with; TLS is then required, as it is for
 * tls:// URLs) are those of the plugin's creds_file, token and ca_file. Prints
 * "ready" once bound to its consumer and "handled N, redelivered R" when it
 * stops (R: messages it got that had been delivered before, to it or another).
 */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <nats/nats.h>

/* The namespace of reply ids: the same as the daemon's own derived ids. */
#define REPLY_NAMESPACE "6f8a3c1e-2b7d-4e59-9c0a-b1a2e0b0f00d"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
  (void)sig;
  stop_requested = 1;
}

/* ---- SHA-1 (FIPS 180-4), for the version 5 UUID ------------------------------- */

struct sha1 {
  uint32_t h[5];
  uint64_t len;
  unsigned char buf[64];
  size_t n;
};

static uint32_t rol(uint32_t x, int k) {
  return x << k | x >> (32 - k);
}

static void sha1_block(struct sha1 *s, const unsigned char *p) {
  uint32_t w[80], a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3], e = s->h[4];
  for (int i = 0; i < 16; i++)
    w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
           (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
  for (int i = 16; i < 80; i++)
    w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
  for (int i = 0; i < 80; i++) {
    uint32_t f, k;
    if (i < 20) {
      f = (b & c) | (~b & d);
      k = 0x5A827999;
    } else if (i < 40) {
      f = b ^ c ^ d;
      k = 0x6ED9EBA1;
    } else if (i < 60) {
      f = (b & c) | (b & d) | (c & d);
      k = 0x8F1BBCDC;
    } else {
      f = b ^ c ^ d;
      k = 0xCA62C1D6;
    }
    uint32_t t = rol(a, 5) + f + e + k + w[i];
    e = d;
    d = c;
    c = rol(b, 30);
    b = a;
    a = t;
  }
  s->h[0] += a;
  s->h[1] += b;
  s->h[2] += c;
  s->h[3] += d;
  s->h[4] += e;
}

static void sha1_init(struct sha1 *s) {
  static const uint32_t h0[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476,
                                 0xC3D2E1F0};
  memcpy(s->h, h0, sizeof h0);
  s->len = 0;
  s->n = 0;
}

static void sha1_update(struct sha1 *s, const void *data, size_t len) {
  const unsigned char *p = data;
  s->len += len;
  while (len--) {
    s->buf[s->n++] = *p++;
    if (s->n == 64) {
      sha1_block(s, s->buf);
      s->n = 0;
    }
  }
}

static void sha1_final(struct sha1 *s, unsigned char out[20]) {
  uint64_t bits = s->len * 8;
  unsigned char pad = 0x80;
  sha1_update(s, &pad, 1);
  pad = 0;
  while (s->n != 56)
    sha1_update(s, &pad, 1);
  unsigned char l[8];
  for (int i = 0; i < 8; i++)
    l[i] = (unsigned char)(bits >> (56 - 8 * i));
  sha1_update(s, l, 8);
  for (int i = 0; i < 20; i++)
    out[i] = (unsigned char)(s->h[i / 4] >> (24 - 8 * (i % 4)));
}

/* ---- ids and base64 ------------------------------------------------------------ */

static int hexval(int c) {
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int is_uuid(const char *s) {
  if (!s || strlen(s) != 36)
    return 0;
  for (int i = 0; i < 36; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23 ? s[i] != '-'
                                                : !isxdigit((unsigned char)s[i]))
      return 0;
  }
  return 1;
}

/* The reply id: a version 5 UUID of "<incoming id, lowercase>/<label>/1" in
 * REPLY_NAMESPACE (Python: uuid.uuid5(NS, f"{id.lower()}/{label}/1")). */
static void reply_id(const char *incoming, const char *label, char out[37]) {
  unsigned char ns[16], d[20];
  for (int i = 0, o = 0; REPLY_NAMESPACE[i]; i++) {
    if (REPLY_NAMESPACE[i] == '-')
      continue;
    ns[o++] =
        (unsigned char)(hexval(REPLY_NAMESPACE[i]) << 4 | hexval(REPLY_NAMESPACE[i + 1]));
    i++;
  }
  char lower[37];
  for (int i = 0; i < 37; i++)
    lower[i] = (char)tolower((unsigned char)incoming[i]);
  struct sha1 s;
  sha1_init(&s);
  sha1_update(&s, ns, sizeof ns);
  sha1_update(&s, lower, 36);
  sha1_update(&s, "/", 1);
  sha1_update(&s, label, strlen(label));
  sha1_update(&s, "/1", 2);
  sha1_final(&s, d);
  d[6] = (unsigned char)((d[6] & 0x0f) | 0x50);
  d[8] = (unsigned char)((d[8] & 0x3f) | 0x80);
  static const char hx[] = "0123456789abcdef";
  for (int i = 0, o = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      out[o++] = '-';
    out[o++] = hx[d[i] >> 4];
    out[o++] = hx[d[i] & 15];
  }
  out[36] = 0;
}

static int b64val(int c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  return c == '+' || c == '-' ? 62 : c == '/' || c == '_' ? 63 : -1;
}

/* Standard or URL alphabet, padding optional. Returns the length or -1. */
static long b64_decode(const char *in, unsigned char *out) {
  size_t len = strlen(in), n = 0;
  uint32_t acc = 0;
  int bits = 0;
  while (len && in[len - 1] == '=')
    len--;
  for (size_t i = 0; i < len; i++) {
    int v = b64val((unsigned char)in[i]);
    if (v < 0)
      return -1;
    acc = acc << 6 | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (unsigned char)(acc >> bits);
    }
  }
  return (long)n;
}

/* base64url without padding. */
static void b64url_encode(const unsigned char *in, size_t len, char *out) {
  static const char a[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  size_t o = 0;
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16;
    if (i + 1 < len)
      v |= (uint32_t)in[i + 1] << 8;
    if (i + 2 < len)
      v |= in[i + 2];
    out[o++] = a[v >> 18 & 63];
    out[o++] = a[v >> 12 & 63];
    if (i + 1 < len)
      out[o++] = a[v >> 6 & 63];
    if (i + 2 < len)
      out[o++] = a[v & 63];
  }
  out[o] = 0;
}

/* ---- the worker ------------------------------------------------------------------ */

struct opts {
  const char *servers, *prefix, *stream, *durable, *label, *text_prefix, *creds, *token,
      *ca_file;
  int ack_wait_s, delay_ms, batch;
};

/* Answers one inbound message. Returns 1 when it was answered (or needs no
 * answer) and may be acked, 0 when the publish failed, -1 when it is
 * malformed. */
static int answer(jsCtx *js, const struct opts *o, natsMsg *in, const char *out_subject) {
  json_error_t jerr;
  json_t *m =
      json_loadb(natsMsg_GetData(in), (size_t)natsMsg_GetDataLength(in), 0, &jerr);
  const char *id = json_string_value(json_object_get(m, "message_id"));
  const char *conv = json_string_value(json_object_get(m, "conversation_id"));
  const char *user = json_string_value(json_object_get(m, "user_id"));
  const char *data = json_string_value(json_object_get(m, "data_base64"));
  if (!data)
    data = json_string_value(json_object_get(m, "data"));
  if (!is_uuid(id) || !is_uuid(conv) || !data) {
    json_decref(m);
    return -1;
  }
  size_t plen = strlen(o->text_prefix), dlen = strlen(data);
  unsigned char *text = malloc(plen + dlen + 1);
  char *b64 = malloc((plen + dlen) * 4 / 3 + 8);
  char *body = NULL;
  long n = text ? b64_decode(data, text + plen) : -1;
  int rc = -1;
  if (text && b64 && n >= 0) {
    memcpy(text, o->text_prefix, plen);
    rc = 1;
    if (plen + (size_t)n > 0) {
      char rid[37];
      reply_id(id, o->label, rid);
      b64url_encode(text, plen + (size_t)n, b64);
      json_t *r = json_pack("{s:s,s:s,s:s,s:s}", "conversation_id", conv, "message_id",
                            rid, "category", "PLAIN_TEXT", "data_base64", b64);
      if (r && is_uuid(user))
        json_object_set_new(r, "recipient_id", json_string(user));
      body = r ? json_dumps(r, JSON_COMPACT) : NULL;
      json_decref(r);
      natsMsg *out = NULL;
      natsStatus s =
          body ? natsMsg_Create(&out, out_subject, NULL, body, (int)strlen(body))
               : NATS_NO_MEMORY;
      if (s == NATS_OK)
        s = natsMsgHeader_Set(out, "Nats-Msg-Id", rid);
      if (s == NATS_OK) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = 5000;
        s = js_PublishMsg(NULL, js, out, &po, NULL); /* waits for the broker's ack */
      }
      natsMsg_Destroy(out);
      if (s != NATS_OK) {
        fprintf(stderr, "nats-worker: reply to %s not published: %s\n", id,
                natsStatus_GetText(s));
        rc = 0;
      }
    }
  }
  free(body);
  free(b64);
  free(text);
  json_decref(m);
  return rc;
}

/* "nats://a:4222, nats://b:4222" as the server list of no. */
static natsStatus set_servers(natsOptions *no, const char *list) {
  char *copy = strdup(list), *save = NULL;
  const char *urls[32];
  int n = 0;
  if (!copy)
    return NATS_NO_MEMORY;
  for (char *t = strtok_r(copy, ", ", &save); t && n < 32;
       t = strtok_r(NULL, ", ", &save))
    urls[n++] = t;
  natsStatus s = n ? natsOptions_SetServers(no, urls, n) : NATS_INVALID_ARG;
  free(copy);
  return s;
}

static int usage(void) {
  fprintf(stderr,
          "usage: nats-worker [--servers URLS] [--prefix P] [--stream S] [--durable D]\n"
          "  [--ack-wait-s N] [--label L] [--text-prefix T] [--delay-ms N] [--batch N]\n"
          "  [--creds FILE] [--token TOKEN] [--ca-file FILE]\n");
  return 2;
}

int main(int argc, char **argv) {
  struct opts o = {getenv("NATS_URL") ? getenv("NATS_URL") : "nats://127.0.0.1:4222",
                   "blazebot",
                   "BLAZEBOT",
                   "blazebot-worker",
                   "echo-worker",
                   "",
                   NULL,
                   NULL,
                   NULL,
                   30,
                   0,
                   32};
  for (int i = 1; i < argc; i++) {
    const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v)
      return usage();
    if (!strcmp(k, "--servers"))
      o.servers = v;
    else if (!strcmp(k, "--prefix"))
      o.prefix = v;
    else if (!strcmp(k, "--stream"))
      o.stream = v;
    else if (!strcmp(k, "--durable"))
      o.durable = v;
    else if (!strcmp(k, "--label"))
      o.label = v;
    else if (!strcmp(k, "--text-prefix"))
      o.text_prefix = v;
    else if (!strcmp(k, "--creds"))
      o.creds = v;
    else if (!strcmp(k, "--token"))
      o.token = v;
    else if (!strcmp(k, "--ca-file"))
      o.ca_file = v;
    else if (!strcmp(k, "--ack-wait-s"))
      o.ack_wait_s = atoi(v);
    else if (!strcmp(k, "--delay-ms"))
      o.delay_ms = atoi(v);
    else if (!strcmp(k, "--batch"))
      o.batch = atoi(v);
    else
      return usage();
    i++;
  }
  if (o.ack_wait_s < 1 || o.batch < 1 || o.delay_ms < 0)
    return usage();
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  char in_subject[300], out_subject[300];
  snprintf(in_subject, sizeof in_subject, "%s.in.PLAIN_TEXT", o.prefix);
  snprintf(out_subject, sizeof out_subject, "%s.out", o.prefix);

  natsOptions *no = NULL;
  natsConnection *nc = NULL;
  jsCtx *js = NULL;
  natsSubscription *sub = NULL;
  natsStatus s = natsOptions_Create(&no);
  if (s == NATS_OK)
    s = set_servers(no, o.servers);
  if (s == NATS_OK)
    s = natsOptions_SetMaxReconnect(no, -1);
  if (s == NATS_OK)
    s = natsOptions_SetReconnectWait(no, 500);
  if (s == NATS_OK && o.creds)
    s = natsOptions_SetUserCredentialsFromFiles(no, o.creds, NULL);
  if (s == NATS_OK && o.token)
    s = natsOptions_SetToken(no, o.token);
  /* TLS: required with a CA file or a tls:// URL (libnats 3.4 would go on
   * in clear with a server that does not offer it). */
  if (s == NATS_OK && (o.ca_file || strstr(o.servers, "tls://")))
    s = natsOptions_SetSecure(no, true);
  if (s == NATS_OK && o.ca_file)
    s = natsOptions_LoadCATrustedCertificates(no, o.ca_file);
  /* The broker may come up after the worker: try again until it does. */
  while (s == NATS_OK && !stop_requested) {
    s = natsConnection_Connect(&nc, no);
    if (s == NATS_OK)
      break;
    fprintf(stderr, "nats-worker: cannot connect to %s (%s); trying again\n", o.servers,
            nats_GetLastError(NULL)); /* the reason: TLS, authorization, ... */
    s = NATS_OK;
    nanosleep(&(struct timespec){1, 0}, NULL);
  }
  if (s == NATS_OK && nc)
    s = natsConnection_JetStream(&js, nc, NULL);
  /* The consumer: created by the first worker (the same configuration from
   * every copy is accepted as is), once the plugin has made the stream. */
  while (s == NATS_OK && js && !stop_requested) {
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = o.durable;
    cc.FilterSubject = in_subject;
    cc.AckPolicy = js_AckExplicit;
    cc.DeliverPolicy = js_DeliverAll;
    cc.AckWait = (int64_t)o.ack_wait_s * 1000000000LL;
    cc.MaxDeliver = -1;
    cc.MaxAckPending = 10000;
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus cs = js_AddConsumer(&ci, js, o.stream, &cc, NULL, &jerr);
    jsConsumerInfo_Destroy(ci);
    if (cs == NATS_OK || jerr == JSConsumerNameExistErr) {
      jsSubOptions so;
      jsSubOptions_Init(&so);
      so.Stream = o.stream;
      so.Consumer = o.durable;
      cs = js_PullSubscribe(&sub, js, in_subject, o.durable, NULL, &so, &jerr);
      if (cs == NATS_OK)
        break;
    }
    fprintf(stderr,
            "nats-worker: consumer %s on stream %s not ready (%s); trying again\n",
            o.durable, o.stream, nats_GetLastError(NULL));
    nanosleep(&(struct timespec){1, 0}, NULL);
  }
  if (s != NATS_OK) {
    fprintf(stderr, "nats-worker: %s\n", nats_GetLastError(NULL));
    return 1;
  }
  printf("ready\n");
  fflush(stdout);

  unsigned long handled = 0, redelivered = 0;
  while (sub && !stop_requested) {
    natsMsgList list = {0};
    s = natsSubscription_Fetch(&list, sub, o.batch, 1000, NULL);
    if (s != NATS_OK) {
      natsMsgList_Destroy(&list);
      if (s != NATS_TIMEOUT)
        nanosleep(&(struct timespec){0, 200000000L}, NULL);
      continue;
    }
    for (int i = 0; i < list.Count; i++) {
      natsMsg *m = list.Msgs[i];
      if (o.delay_ms)
        nanosleep(
            &(struct timespec){o.delay_ms / 1000, (long)(o.delay_ms % 1000) * 1000000L},
            NULL);
      jsMsgMetaData *meta = NULL;
      if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
        redelivered += meta->NumDelivered > 1;
        jsMsgMetaData_Destroy(meta);
      }
      int rc = answer(js, &o, m, out_subject);
      if (rc > 0) {
        natsMsg_Ack(m, NULL); /* only now: the reply is in the stream */
        handled++;
      } else if (rc == 0) {
        natsMsg_NakWithDelay(m, 1000, NULL);
      } else {
        fprintf(stderr, "nats-worker: malformed message on %s: terminated\n",
                natsMsg_GetSubject(m));
        natsMsg_Term(m, NULL);
      }
    }
    natsMsgList_Destroy(&list);
  }
  if (nc)
    natsConnection_Flush(nc); /* the last acks */
  printf("handled %lu, redelivered %lu\n", handled, redelivered);
  natsSubscription_Destroy(sub);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  natsOptions_Destroy(no);
  nats_Close();
  return 0;
}
