/* SPDX-License-Identifier: MIT */
/*
 * sim: the shared state of blazebot-sim, the local Blaze server that the
 * tests, the demo and the benchmarks run the daemon against. Everything runs
 * on the one libwebsockets service thread, so nothing here is locked. One
 * struct sim owns all state (message store, sent log, replay cache, armed
 * faults, counters, live connections) and is reachable from every lws
 * callback through the context user pointer. Module prefixes: store_ and
 * sent_ (store.c), faults_ (faults.c), ws_ (ws.c, the Blaze WebSocket side),
 * http_ (http.c, HTTP transport, control API and the upgrade check), rest_
 * (rest.c, the Mixin REST endpoints), files_ (files.c, attachments and the
 * S3-like upload and view URLs), reqline_ (reqline.c, request lines as sent
 * on plain TCP), chat_ (chat.c, the --chat and --interactive conversations
 * and their transcript).
 */
#ifndef BLAZEBOT_SIM_H
#define BLAZEBOT_SIM_H

#include <jansson.h>
#include <libwebsockets.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "codec.h"
#include "keystore.h"
#include "util.h"

#define SIM_SUBPROTOCOL "Mixin-Blaze-1"
#define SIM_HTTP_PROTOCOL "blazebot-sim-http"
#define SIM_STDIN_PROTOCOL "blazebot-sim-stdin"
#define SIM_MAX_BODY (1024 * 1024)         /* REST and control request bodies */
#define SIM_MAX_FRAME (4 * 1024 * 1024)    /* a reassembled compressed frame */
#define SIM_MAX_INFLATED (4 * 1024 * 1024) /* an inflated client frame */
#define SIM_MAX_BATCH 100                  /* acks or messages per request */
#define SIM_MAX_AUTH 16384                 /* Authorization header bytes */
#define SIM_MAX_FAULTS 64                  /* armed push-counted faults */
#define SIM_MAX_PUSH 1000000               /* messages per control push */
#define SIM_JTI_MAX (1u << 20)             /* remembered token ids */
#define SIM_RECEIPT_DELAY_MS 20            /* CREATE_MESSAGE -> receipt push */
#define SIM_CATEGORY_MAX 48
#define SIM_TIME_LEN 32 /* "2024-01-02T03:04:05.123456Z" + NUL */
#define SIM_MSG_INDEX_NONE ((size_t)-1)
#define SIM_CHAT_QUIET_MS 300 /* no bot message for this long: a line is answered */
#define SIM_CHAT_NAME_MAX 32  /* bytes of a chat user's name */
#define SIM_FULL_NAME_MAX 64  /* bytes of a user's full_name */
#define SIM_MAX_FETCH 100     /* user ids per POST /users/fetch */
#define SIM_PAIR_USERS 64     /* users whose 1:1 conversations with each other exist */
#define SIM_MAX_UPLOAD (10 * 1024 * 1024)           /* bytes per attachment upload */
#define SIM_MAX_UPLOAD_TOTAL (256ull * 1024 * 1024) /* bytes of all attachments kept */
#define SIM_UPLOAD_TTL_S 3600                       /* lifetime of an upload_url */
#define SIM_MAX_SLOW_MS 60000                       /* longest api_slow delay */
#define SIM_MIME_MAX 128

/* A plain-TCP request line (reqline.c): its size, CRLF included, and how
 * long after accept it may take to arrive. */
#define SIM_MAX_REQLINE 8192
#define SIM_REQLINE_WAIT_MS 1000

/* A string -> int64 hash map with open addressing; keys are owned copies.
 * There is no delete: the replay cache is pruned by rebuilding. */
struct strmap_slot {
  char *key;
  uint64_t hash;
  int64_t val;
};

struct strmap {
  struct strmap_slot *slots;
  size_t cap; /* power of two, or 0 */
  size_t count;
};

int strmap_init(struct strmap *m, size_t hint);
void strmap_fini(struct strmap *m);
/* 1 and *val when key is present, else 0. */
int strmap_get(const struct strmap *m, const char *key, int64_t *val);
/* Inserts or overwrites. Returns 0 or -1 (out of memory). */
int strmap_put(struct strmap *m, const char *key, int64_t val);
/* Drops every entry whose value is below min_val. Returns 0 or -1. */
int strmap_prune_below(struct strmap *m, int64_t min_val);

/* A simulated Mixin user who writes to the bot. Its identity_number is
 * derived from its id, so a user with a stable id (a chat user) keeps it
 * from run to run. */
struct sim_user {
  char id[UUID_STR_LEN];
  char session_id[UUID_STR_LEN];
  char conversation_id[UUID_STR_LEN]; /* the 1:1 conversation with the bot */
  char full_name[SIM_FULL_NAME_MAX];
  char identity_number[16];
  char created_at[SIM_TIME_LEN];
  unsigned wrote : 1; /* has written to the bot: their 1:1 conversation exists */
};

/* What a conversation id names (store_conv_find). */
enum conv_kind {
  CONV_CREATED = 1, /* made by POST /conversations: index into sim.conversations */
  CONV_CONTACT,     /* a user's 1:1 with the bot after they wrote: user index */
  CONV_GROUP,       /* seen in a pushed message: index of its first message */
  CONV_FOREIGN,     /* the 1:1 of two simulated users: the bot is not in it */
};

/* An attachment made by POST /attachments. The bytes are what was PUT to
 * its upload_url (the last upload wins). */
struct sim_attachment {
  char id[UUID_STR_LEN];
  char created_at[SIM_TIME_LEN];
  char mime_type[SIM_MIME_MAX]; /* the upload's Content-Type */
  int64_t expires;              /* upload_url valid until (Unix seconds) */
  unsigned char *data;
  size_t size;
  uint32_t uploads;
  unsigned uploaded : 1;
};

/* The endpoints that count calls and take api_error / api_slow faults. */
enum sim_endpoint {
  EP_ME,                  /* GET /me */
  EP_USER,                /* GET /users/:id */
  EP_USERS_FETCH,         /* POST /users/fetch */
  EP_CONVERSATION_CREATE, /* POST /conversations */
  EP_CONVERSATION,        /* GET /conversations/:id */
  EP_ATTACHMENT_CREATE,   /* POST /attachments */
  EP_ATTACHMENT,          /* GET /attachments/:id */
  EP_MESSAGES,            /* POST /messages */
  EP_ACKNOWLEDGEMENTS,    /* POST /acknowledgements */
  EP_UPLOAD,              /* PUT upload_url */
  EP_VIEW,                /* GET view_url */
  SIM_EP_COUNT,
  SIM_EP_ANY = SIM_EP_COUNT, /* a fault slot that any endpoint takes from */
};

/* The armed api_error and api_slow faults of one endpoint (or of any). */
struct sim_api_fault {
  int error_code;
  long error_count;
  long slow_ms;
  long slow_count;
};

/* One message in the store (what the bot receives). */
struct sim_msg {
  char message_id[UUID_STR_LEN];
  char conversation_id[UUID_STR_LEN];
  char created_at[SIM_TIME_LEN];
  char category[SIM_CATEGORY_MAX];
  size_t user;         /* index into sim.users */
  unsigned char *data; /* payload bytes, or the literal data text if poison */
  size_t data_len;
  uint64_t skip_conn;    /* connection serial that got it as a fault push */
  int64_t visible_us;    /* a paced push: not pushed before (monotonic us) */
  int64_t first_push_us; /* when it was first written to the bot, 0 = never */
  uint32_t ack_count;
  uint32_t push_count;
  /* --prebuilt-pushes: its first push, gzipped at start-up (LWS_PRE
   * headroom first), freed once written or acked; NULL otherwise. */
  unsigned char *push;
  uint32_t push_len;
  unsigned acked : 1;
  unsigned answered : 1; /* a latency sample was taken for it */
  unsigned poison : 1;   /* fault message: not counted by --exit-when-acked */
};

/* One message the bot sent (CREATE_MESSAGE or POST /messages). */
struct sim_sent {
  char message_id[UUID_STR_LEN];
  char conversation_id[UUID_STR_LEN];
  char recipient_id[UUID_STR_LEN];
  char representative_id[UUID_STR_LEN];
  char quote_message_id[UUID_STR_LEN];
  char category[SIM_CATEGORY_MAX];
  char created_at[SIM_TIME_LEN];
  unsigned char *data; /* decoded payload, NUL-terminated */
  size_t data_len;
  int silent;
  const char *via; /* "ws" or "rest" (static string) */
};

enum fault_kind {
  FAULT_DROP = 1,
  FAULT_REJECT401,
  FAULT_ERROR401,
  FAULT_GARBAGE,
  FAULT_TEXT,
  FAULT_BADJSON,
  FAULT_BOMB,
  FAULT_BADBASE64,
  FAULT_MISSING,
  FAULT_SILENT,
  FAULT_CREATE_ERROR,
  FAULT_ACK_BATCH_ERROR,
  FAULT_API_ERROR,
  FAULT_API_SLOW,
};

struct sim_fault {
  int kind;      /* enum fault_kind */
  long after;    /* stored-message pushes still to go before it fires */
  long arg;      /* reject401: K (-1 = all); create_error, api_error: code;
                    api_slow: milliseconds */
  long count;    /* create_error, api_error, api_slow: how many */
  int endpoint;  /* api_error, api_slow: enum sim_endpoint or SIM_EP_ANY */
  char spec[64]; /* as armed, for the log */
};

/* The counters of GET /_sim/stats (which adds "messages" and "unacked"). */
struct sim_stats {
  uint64_t connections;        /* WebSocket upgrades accepted */
  uint64_t auth_failures;      /* bad JWTs, on upgrades and REST calls */
  uint64_t handshake_rejects;  /* upgrades refused for any reason */
  uint64_t list_pending;       /* LIST_PENDING_MESSAGES requests */
  uint64_t pushed;             /* CREATE_MESSAGE pushes of stored messages */
  uint64_t acked;              /* distinct stored messages acknowledged */
  uint64_t ack_receipts;       /* acknowledgement entries received, all kinds */
  uint64_t acked_twice;        /* stored messages acknowledged two or more times */
  uint64_t acks_unknown;       /* entries for ids the simulator never had */
  uint64_t receipt_acks;       /* entries for the bot's own sent messages */
  uint64_t ack_requests_ws;    /* ACKNOWLEDGE_MESSAGE_RECEIPT(S) frames accepted */
  uint64_t ack_requests_rest;  /* POST /acknowledgements requests accepted */
  uint64_t created;            /* distinct messages in the sent log */
  uint64_t created_duplicates; /* sends of a message_id already in the log */
  uint64_t create_errors;      /* sends refused (invalid or create_error) */
  uint64_t bad_frames;         /* client frames that did not decode */
  uint64_t faults_fired;
  uint64_t receipts_pushed;         /* ACKNOWLEDGE_MESSAGE_RECEIPT pushes written */
  uint64_t attachments;             /* made by POST /attachments */
  uint64_t uploads;                 /* PUTs to an upload_url accepted */
  uint64_t uploaded_bytes;          /* their bytes */
  uint64_t api_calls[SIM_EP_COUNT]; /* requests each endpoint accepted */
};

/* One prepared outgoing WebSocket message with LWS_PRE headroom. */
struct frame {
  struct frame *next;
  int64_t due_ms; /* not before (monotonic ms); 0 = now */
  size_t len;
  int write_protocol;  /* LWS_WRITE_BINARY or LWS_WRITE_TEXT */
  unsigned char buf[]; /* LWS_PRE + len bytes */
};

struct frameq {
  struct frame *head, *tail;
  size_t count;
};

/* Per-connection state of the Blaze protocol (lws per-session data, zeroed
 * by lws at ESTABLISHED and released at CLOSED). */
struct sim_conn {
  struct sim *sim;
  struct lws *wsi;
  struct sim_conn *prev, *next; /* sim.conns */
  uint64_t serial;
  struct frameq replies;  /* id-matched replies: always written first */
  struct frameq receipts; /* delayed ACKNOWLEDGE_MESSAGE_RECEIPT pushes */
  struct buf rx;          /* fragments of the message being received */
  int rx_in_message;      /* a message has started and not yet ended */
  int rx_binary;
  int rx_discard;   /* the current message passed SIM_MAX_FRAME */
  int listing;      /* LIST_PENDING_MESSAGES received: the cursor runs */
  size_t cursor;    /* next store index to consider */
  size_t list_mark; /* store size at LIST_PENDING_MESSAGES */
  int silent;       /* half-open fault: no reads, no writes */
  int flow_off;     /* rx paused for backpressure */
  int want_ping;
  int linked;  /* on sim.conns */
  int reaping; /* silent and the peer left: closing */
  uint64_t pushes;
  uint64_t pings;
  lws_sorted_usec_list_t wake_sul; /* delayed receipts */
  lws_sorted_usec_list_t ping_sul; /* --ping-interval */
};

/* What became of the request line of a plain-TCP connection (reqline.c). */
enum reqline_state {
  REQLINE_NONE,     /* never peeked (TLS, or not an accepted socket) */
  REQLINE_SEEN,     /* the line is there to take */
  REQLINE_TIMEOUT,  /* no whole line within SIM_REQLINE_WAIT_MS of accept */
  REQLINE_TOO_LONG, /* no line end within SIM_MAX_REQLINE bytes */
  REQLINE_BAD,      /* the line holds a NUL byte */
  REQLINE_TAKEN,    /* a request of this connection already took it */
};

struct reqline_slot {
  int state;  /* enum reqline_state */
  char *line; /* without the line end (owned); only when REQLINE_SEEN */
};

/* Per-request state of the HTTP protocol (REST and control API). */
struct http_req {
  int method;     /* LWSHUMETH_* */
  char path[256]; /* on plain TCP as sent, else as lws sanitised it */
  char *uri;      /* path plus query, as signed in the JWT (owned) */
  char *auth;     /* Authorization header value (owned) */
  char request_id[130];
  char content_type[SIM_MIME_MAX]; /* "" when absent */
  char amz_acl[32];                /* x-amz-acl, "" when absent */
  struct buf body;
  size_t body_limit; /* SIM_MAX_BODY, or SIM_MAX_UPLOAD for an upload */
  int body_too_big;
  int endpoint;     /* enum sim_endpoint once routed, else -1 */
  int delayed;      /* an api_slow fault holds the answer until LWS_CALLBACK_TIMER */
  int close_after;  /* close the connection once the response is out */
  unsigned refusal; /* an HTTP status to answer with once the body is in */
  char refusal_why[160];
  unsigned char *resp; /* LWS_PRE + resp_len bytes (owned) */
  size_t resp_len, resp_off;
};

struct sim_config {
  const char *keystore;
  char listen_addr[64];
  int port;
  const char *port_file;
  const char *tls_cert;
  const char *tls_key;
  long preload;
  int prebuilt_pushes; /* --prebuilt-pushes: gzip preloaded pushes at start-up */
  long users;
  const char *stats_file;
  int exit_when_acked;
  long timeout_s;
  long ping_interval_s;
  int verbose;
  const char *chat_file; /* --chat: the script */
  int interactive;       /* --interactive: lines from stdin */
  long chat_timeout_ms;  /* --chat-timeout: per script line */
};

/* A named user of --chat or --interactive ("alice", "bob"). */
struct chat_user {
  char name[SIM_CHAT_NAME_MAX + 1];
  size_t user; /* index into sim.users */
};

/* One message of a --chat script. */
struct chat_line {
  char *text; /* owned */
  size_t who; /* index into chat.users */
  int join;   /* "join: NAME": who joins the chat's group (SYSTEM_CONVERSATION) */
};

/* The group conversation of a chat script's "join:" lines. */
#define SIM_CHAT_GROUP_ID "5b0f2d4e-8c1a-4e6b-9f3d-2a7c6e1b0d94"

/* The state of --chat and --interactive. A script pushes one line at a time
 * and waits for it to be answered; interactive lines are pushed as they are
 * read. Every bot message to a chat user's conversation is printed. */
struct sim_chat {
  struct chat_user *users;
  size_t nusers, users_cap;
  struct chat_line *lines;
  size_t nlines, lines_cap, next_line;
  size_t *pushed; /* store indices of the messages pushed, in order */
  size_t npushed, pushed_cap;
  int waiting;     /* a script line is out and not yet answered */
  size_t current;  /* its store index */
  size_t speaker;  /* chat user of the last line pushed (SIZE_MAX: none) */
  int64_t line_ms; /* when the current line was pushed */
  int64_t last_ms; /* the last push, acknowledgement or bot message */
  uint64_t line_replies, replies, unanswered;
  int width; /* of the name column */
  int tty_in, tty_out, prompt_shown;
  int stdin_fd;      /* stdin opened again and adopted into lws, or -1 */
  int stdin_flags;   /* fd 0's file status flags at start ... */
  int restore_stdin; /* ... to be restored at exit */
  struct buf in;     /* stdin bytes after the last newline */
  int eof;           /* stdin ended: settle, then exit */
  int64_t eof_deadline_ms;
};

struct sim {
  struct sim_config cfg;
  struct keystore *ks;
  EVP_PKEY *pub;
  char bot_id[UUID_STR_LEN];
  char session_id[UUID_STR_LEN];
  struct lws_context *ctx;
  struct lws_vhost *vhost;
  struct codec *codec;
  struct buf scratch; /* frame building; reused */
  struct buf text;    /* a push's JSON text before it is gzipped; reused */
  struct buf inflated;
  /* Message and frame ids: distinct version 4 UUIDs from one random base,
   * without a call to the CSPRNG each (3 a message were 4% of the CPU). */
  struct uuid_series ids;

  struct sim_user *users;
  size_t nusers, users_cap, next_user;
  struct strmap user_index;
  struct strmap identity_index; /* identity_number -> user index */
  char bot_identity[16];        /* the bot's identity_number */
  char bot_created_at[SIM_TIME_LEN];

  struct sim_msg *msgs;
  size_t nmsgs, msgs_cap;
  struct strmap msg_index;
  size_t first_unacked; /* every message before it is acked */
  size_t nonpoison;     /* messages that count for --exit-when-acked */
  size_t acked_nonpoison;

  struct sim_sent *sent;
  size_t nsent, sent_cap;
  struct strmap sent_index;

  struct strmap jti; /* token id -> exp, against replays */

  /* Request lines of plain-TCP connections, indexed by descriptor. */
  struct reqline_slot *reqlines;
  size_t nreqlines;

  json_t *conversations;    /* made by POST /conversations, as answered */
  struct strmap conv_index; /* conversation id -> enum conv_kind << 48 | index */

  struct sim_attachment *attachments;
  size_t nattachments, attachments_cap;
  struct strmap attachment_index;
  uint64_t attachment_bytes; /* held by all attachments */
  unsigned char url_key[32]; /* signs upload URLs */

  struct sim_fault faults[SIM_MAX_FAULTS];
  size_t nfaults;
  long reject_remaining; /* reject401: handshakes still to refuse, -1 = all */
  int create_error_code; /* create_error: code, while count > 0 */
  long create_error_count;
  int ack_batch_error;
  struct sim_api_fault api_faults[SIM_EP_COUNT + 1]; /* + SIM_EP_ANY */

  struct sim_stats st;
  struct sim_conn *conns;
  size_t nconns;
  uint64_t next_serial;

  struct sim_chat chat;

  /* Push-to-reply latency: a reply whose text is "#N" answers message N
   * (pushed with the text "#%n"); one sample per message. */
  struct sim_latency {
    uint32_t index;    /* the message */
    uint32_t lat_us;   /* first push to the reply's arrival */
    int64_t pushed_us; /* monotonic */
  } * latency;
  size_t nlatency, latency_cap;

  lws_sorted_usec_list_t tick_sul;
  int64_t start_ms;
  int stop;
  int exit_code;
  int exit_pending; /* --exit-when-acked met; draining replies */
  int64_t exit_deadline_ms;
};

/* store.c */
int store_init(struct sim *sim);
void store_fini(struct sim *sim);
/* RFC 3339 UTC time with microseconds, now. */
void sim_timestamp(char out[SIM_TIME_LEN]);
/* The index of a user with this id, adding one if needed; SIZE_MAX on OOM. */
size_t store_user(struct sim *sim, const char *user_id);
/* The index of the user with this id (any case), or SIZE_MAX. */
size_t store_user_find(const struct sim *sim, const char *user_id);
/* Gives a user its display name (full_name). */
void store_user_name(struct sim *sim, size_t user, const char *full_name);
/* The user object of GET /users/:id and POST /users/fetch. */
json_t *store_user_view(const struct sim *sim, size_t user);
/* The bot's user object; with me set, GET /me's (adds session_id). */
json_t *store_bot_view(const struct sim *sim, int me);
/* GET /_sim/users. */
json_t *store_users_json(const struct sim *sim);
/* Records what a conversation id (lowercase) names; an entry already there
 * is replaced only with overwrite. Returns 0 or -1 (out of memory). */
int store_conv_note(struct sim *sim, const char *id, int kind, size_t idx, int overwrite);
/* 1 and what id (any case) names in *kind and *idx, or 0 when unknown. */
int store_conv_find(const struct sim *sim, const char *id, int *kind, size_t *idx);
/* Round-robin over the users made at start. */
size_t store_next_user(struct sim *sim);
/* Appends a message (the bytes are copied). conversation_id NULL = the
 * user's 1:1 conversation. Returns the index or SIM_MSG_INDEX_NONE. */
size_t store_add(struct sim *sim, size_t user, const char *category,
                 const char *conversation_id, const void *data, size_t len, int poison);
/* Records one acknowledgement of message_id (any case). */
void store_ack(struct sim *sim, const char *message_id);
/* The MessageView of a stored message as pushed with this source. */
json_t *store_msg_view(struct sim *sim, const struct sim_msg *m, const char *source);
/* The same view as JSON text, appended to out (no tree: the push path).
 * Returns 0/-1. */
int store_msg_text(struct sim *sim, const struct sim_msg *m, const char *source,
                   struct buf *out);
/* Advances first_unacked past acked messages (amortised O(1)). */
void store_advance_unacked(struct sim *sim);
/* 1 when --exit-when-acked is satisfied. */
int store_all_acked(const struct sim *sim);
/* Validates acknowledgement entries (an array of {"message_id","status"}).
 * Returns 0, or a Mixin error code with a reason in why. */
int store_check_acks(json_t *arr, char *why, size_t whylen);
/* Validates one message object (CREATE_MESSAGE params / REST item) into out.
 * Returns 0 or -1 with a reason in why. out->data is owned on success. */
int sent_parse(json_t *obj, const char *via, struct sim_sent *out, char *why,
               size_t whylen);
/* Adds a parsed message to the sent log, taking its data. Returns the index;
 * *dup is set when the id was already there (the new copy is freed). */
size_t sent_add(struct sim *sim, struct sim_sent *s, int *dup);
/* The data object of a successful CREATE_MESSAGE reply. */
json_t *sent_reply_view(const struct sim *sim, const struct sim_sent *s);
/* The same as JSON text, appended to out. Returns 0/-1. */
int sent_reply_text(const struct sim *sim, const struct sim_sent *s, struct buf *out);
json_t *sent_list_json(const struct sim *sim);
/* GET /_sim/latency: {"samples": [[index, pushed_us, latency_us], ...]}. */
json_t *store_latency_json(const struct sim *sim);
/* GET /_sim/messages as compact JSON appended to out. Returns 0/-1. */
int store_messages_json(const struct sim *sim, struct buf *out);
json_t *stats_json(const struct sim *sim);
/* Writes the stats line to stdout (stderr in chat modes, where stdout is
 * the transcript) and --stats-file. */
void stats_write(const struct sim *sim);

/* faults.c */
/* Parses SPEC (NAME[@N][:ARG]). Returns 0 or -1 with a reason in err. */
int faults_parse(const char *spec, struct sim_fault *out, char *err, size_t errlen);
/* Arms a parsed fault. Returns 0 or -1 (too many armed). */
int faults_arm(struct sim *sim, const struct sim_fault *f);
/* Counts one push of a stored message toward every armed fault. */
void faults_note_push(struct sim *sim);
/* The index of an armed fault that is due now, or -1. */
int faults_due(const struct sim *sim);
/* Removes and returns armed fault i. */
struct sim_fault faults_take(struct sim *sim, int i);
/* Consumes one create_error unit: returns its code, or 0 if none armed. */
int faults_take_create_error(struct sim *sim);
/* Consumes one reject401 unit: 1 when this handshake is to be refused. */
int faults_take_reject(struct sim *sim);
/* Counts and logs one firing. */
void faults_fired(struct sim *sim, const char *what);
/* The Mixin-style description of an error code. */
const char *faults_error_description(int code);
/* The name of an endpoint in api_error / api_slow specs and in the stats. */
const char *faults_endpoint_name(int endpoint);
/* Consume one api_error / api_slow unit of the endpoint (or of "any"):
 * the error code or the delay in ms, 0 when none is armed. */
int faults_take_api_error(struct sim *sim, int endpoint);
long faults_take_api_slow(struct sim *sim, int endpoint);

/* ws.c */
int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                size_t len);
/* Requests a writeable callback on every live connection (new messages,
 * newly armed faults). */
void ws_wake_all(struct sim *sim);
/* 1 when no connection has replies waiting. */
int ws_replies_flushed(const struct sim *sim);
/* Closes silent connections whose peer has gone away. */
void ws_reap_silent(struct sim *sim);
/* Queues the receipt push of a sent message on the newest live connection
 * (for messages sent over REST). */
void ws_queue_receipt(struct sim *sim, const struct sim_sent *s);
/* Gzips a JSON object into out (LWS_PRE headroom first). Returns 0/-1. */
int ws_gzip_json(struct sim *sim, json_t *obj, struct buf *out);

/* Gzips the first push of preloaded message m (source LIST_PENDING_MESSAGES)
 * into m->push. Returns 0/-1 (out of memory). */
int ws_prebuild_push(struct sim *sim, struct sim_msg *m);

/* http.c */
int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len);
/* The responses. Each builds the whole answer for r and asks for a writeable
 * callback; each returns 0 or -1 (out of memory, or lws refused the
 * headers). http_respond sends body as is with the content type ctype and,
 * when hname is set, one more header "hname: hval". */
int http_respond(struct lws *wsi, struct http_req *r, unsigned int status,
                 const char *ctype, const char *hname, const char *hval, const void *body,
                 size_t len);
/* obj (consumed) as compact JSON. */
int http_respond_json(struct lws *wsi, struct http_req *r, unsigned int status,
                      json_t *obj);
/* {"data": data} (consumed), HTTP 200. */
int http_respond_data(struct lws *wsi, struct http_req *r, json_t *data);
/* A Mixin error: {"error":{status,code,description[,extra.reason]}}. Codes
 * of server failures (500..599, 7000, 7001) go out as HTTP 500, the rest as
 * HTTP 202 the way the real API answers (protocol.md §4.3). */
int http_respond_mixin_error(struct lws *wsi, struct http_req *r, int code,
                             const char *reason);
/* The answer to a refused token: HTTP 401 with the code 401 error. */
int http_respond_unauthorized(struct lws *wsi, struct http_req *r);
/* A control API error: a plain HTTP status with {"error":"what"}. */
int http_respond_plain_error(struct lws *wsi, struct http_req *r, unsigned int status,
                             const char *what);
/* The request body as JSON, or NULL when it does not parse. */
json_t *http_body_json(const struct http_req *r);
/* Counts a call of r->endpoint, then answers it now (rest_run or
 * files_run) or, under an api_slow fault, once the delay has passed. */
int http_endpoint_start(struct sim *sim, struct lws *wsi, struct http_req *r);
/* Checks an "Authorization: Bearer <jwt>" value against the bot's key for
 * this request. Returns 0, or -1 with the reason in err. */
int http_auth_check(struct sim *sim, const char *authorization, const char *method,
                    const char *uri, const void *body, size_t body_len, char *err,
                    size_t errlen);

/* rest.c */
/* The endpoint of a Mixin API request (method and path), or -1. */
int rest_route(const struct http_req *r);
/* Checks the token of a Mixin API request, routes it and starts it. */
int rest_dispatch(struct sim *sim, struct lws *wsi, struct http_req *r);
/* Answers a routed request: an armed api_error first, else the endpoint. */
int rest_run(struct sim *sim, struct lws *wsi, struct http_req *r);

/* files.c */
/* Prepares the URL signing key. Returns 0 or -1. */
int files_init(struct sim *sim);
void files_fini(struct sim *sim);
/* A new attachment (POST /attachments). Returns it, or NULL on OOM. */
struct sim_attachment *files_create(struct sim *sim);
/* The attachment with this id (any case), or NULL. */
struct sim_attachment *files_find(const struct sim *sim, const char *id);
/* The attachment object of the Mixin API: type, attachment_id, view_url,
 * created_at, with upload_url when with_upload, and size and mime_type once
 * uploaded. NULL on OOM. */
json_t *files_view(const struct sim *sim, const struct sim_attachment *a,
                   int with_upload);
/* GET /_sim/attachments. */
json_t *files_list_json(const struct sim *sim);
/* 1 when path is an upload or view URL's (served without a Mixin token). */
int files_is_path(const char *path);
/* Checks a request to an upload or view URL and starts it. */
int files_dispatch(struct sim *sim, struct lws *wsi, struct http_req *r);
/* Answers a started one: an armed api_error first (S3-style), else the
 * upload or the download. */
int files_run(struct sim *sim, struct lws *wsi, struct http_req *r);

/* reqline.c */
/* Called at accept, before lws reads from fd: waits up to
 * SIM_REQLINE_WAIT_MS for the first line and records it (or why not) for
 * fd. Returns 0 to go on with the connection, -1 to drop it (the peer left,
 * or out of memory). Blocks the service thread for that wait. */
int reqline_peek(struct sim *sim, int fd);
/* Takes what was recorded for fd: returns an enum reqline_state and, when
 * REQLINE_SEEN, the line in *line (caller frees). fd is then REQLINE_TAKEN. */
int reqline_take(struct sim *sim, int fd, char **line);
/* Splits "METHOD SP TARGET SP HTTP/x.y" in place. Returns 0 or -1 when the
 * line is not of that form (one space each, upper-case method, no control
 * characters or spaces in the target). */
int reqline_split(char *line, const char **method, const char **target,
                  const char **version);
void reqline_fini(struct sim *sim);

/* chat.c */
/* 1 in --chat and --interactive mode. */
static inline int chat_enabled(const struct sim *sim) {
  return sim->cfg.chat_file != NULL || sim->cfg.interactive;
}
/* Loads the --chat script (or prepares --interactive) once the store is up.
 * Returns 0, or -1 with the reason logged. */
int chat_init(struct sim *sim);
/* --interactive: adopts stdin into the lws loop once the vhost exists.
 * Returns 0 or -1 (logged). */
int chat_start(struct sim *sim);
void chat_fini(struct sim *sim);
/* Drives the conversation from the service tick: pushes the next script
 * line when the last one is answered, notices per-line timeouts and the end.
 * Returns -1 to go on, or the exit code (0, or 1 when a line was never
 * acknowledged) after the closing summary is printed. */
int chat_tick(struct sim *sim, int64_t now);
/* Called by the store: a stored message was acknowledged for the first time;
 * a bot message was added to the sent log. */
void chat_on_ack(struct sim *sim);
void chat_on_sent(struct sim *sim, const struct sim_sent *s);
/* The lws protocol callback of the adopted stdin descriptor. */
int chat_stdin_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                        void *in, size_t len);

#endif
