/* SPDX-License-Identifier: MIT */
/*
 * chat: talking to a bot without a Mixin account. --chat FILE plays a script
 * of user messages, one per line, and after each waits until the bot has
 * acknowledged it and then stayed quiet for SIM_CHAT_QUIET_MS (or until
 * --chat-timeout) before pushing the next; --interactive pushes lines from
 * stdin as they arrive. Users are named ("alice" unless a line starts with
 * "as NAME:") and their ids are version 5 UUIDs of the names, so a user keeps
 * its id, and its 1:1 conversation with the bot, from run to run. The
 * transcript (user lines, and bot messages to a chat user's conversation)
 * goes to stdout, one flushed line per event; logs stay on stderr. Media the
 * bot sends show as one bracketed line, such as "[image 640x480 image/png
 * 12 KB]" or "[file a.pdf application/pdf 3 KB]", with a remark when the
 * attachment was never made or uploaded, or holds another size.
 */
#include "sim.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "log.h"

#define DEFAULT_USER "alice"
#define NAME_WIDTH_MIN 5 /* the name column fits "alice" and "bot" at least */
#define NAME_WIDTH_MAX 16
#define STDIN_LINE_MAX (64 * 1024) /* a longer stdin line is sent in pieces */
#define PROMPT "you> "

/* The namespace of chat user ids: fixed, so that "alice" is the same user in
 * every run, whatever the bot. */
static const unsigned char user_namespace[16] = {0xf6, 0x84, 0xba, 0x7d, 0x47, 0x73,
                                                 0x47, 0xb5, 0xb0, 0x1b, 0x80, 0x8f,
                                                 0xb6, 0x5b, 0xe8, 0x54};

/* ---- users ---- */

/* The RFC 4122 version 5 (SHA-1) UUID of a name. Returns 0 or -1. */
static int name_uuid(const char *name, char out[UUID_STR_LEN]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  char hex[33];
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  int ok = c && EVP_DigestInit_ex(c, EVP_sha1(), NULL) == 1 &&
           EVP_DigestUpdate(c, user_namespace, sizeof user_namespace) == 1 &&
           EVP_DigestUpdate(c, name, strlen(name)) == 1 &&
           EVP_DigestFinal_ex(c, md, &mdlen) == 1 && mdlen >= 16;
  EVP_MD_CTX_free(c);
  if (!ok)
    return -1;
  md[6] = (unsigned char)((md[6] & 0x0f) | 0x50);
  md[8] = (unsigned char)((md[8] & 0x3f) | 0x80);
  hex_encode(md, 16, hex);
  snprintf(out, UUID_STR_LEN, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12,
           hex + 16, hex + 20);
  return 0;
}

/* The chat user with this name, made (with its simulated user) if new.
 * Returns its index or SIZE_MAX (out of memory, logged). */
static size_t chat_user(struct sim *sim, const char *name) {
  struct sim_chat *ch = &sim->chat;
  for (size_t i = 0; i < ch->nusers; i++) {
    if (!strcmp(ch->users[i].name, name))
      return i;
  }
  if (ch->nusers == ch->users_cap) {
    size_t nc = ch->users_cap ? ch->users_cap * 2 : 8;
    struct chat_user *p = realloc(ch->users, nc * sizeof *p);
    if (!p)
      goto oom;
    ch->users = p;
    ch->users_cap = nc;
  }
  char id[UUID_STR_LEN];
  struct chat_user *u = &ch->users[ch->nusers];
  snprintf(u->name, sizeof u->name, "%s", name);
  if (name_uuid(name, id) < 0 || (u->user = store_user(sim, id)) == SIZE_MAX)
    goto oom;
  store_user_name(sim, u->user, name); /* what GET /users/:id calls them */
  int w = (int)strlen(name);
  if (w > ch->width)
    ch->width = w > NAME_WIDTH_MAX ? NAME_WIDTH_MAX : w;
  log_info("chat user %s is %s (conversation %s)", name, id,
           sim->users[u->user].conversation_id);
  return ch->nusers++;
oom:
  log_error("out of memory");
  return SIZE_MAX;
}

/* 1 for the characters of a name: letters, digits, '_', '.', '-'. */
static int name_char(int c) {
  return isalnum(c) || c == '_' || c == '.' || c == '-';
}

/* Splits "as NAME: text" into NAME and text; any other line is the default
 * user's. White space around the text is dropped (line is modified); *text
 * points into line. */
static void split_line(char *line, char name[SIM_CHAT_NAME_MAX + 1], char **text) {
  char *end = line + strlen(line);
  while (end > line && isspace((unsigned char)end[-1]))
    *--end = 0;
  while (isspace((unsigned char)*line))
    line++;
  strcpy(name, DEFAULT_USER);
  *text = line;
  if (strncasecmp(line, "as", 2) != 0 || (line[2] != ' ' && line[2] != '\t'))
    return;
  char *p = line + 3;
  while (*p == ' ' || *p == '\t')
    p++;
  size_t n = 0;
  while (name_char((unsigned char)p[n]))
    n++;
  if (n == 0 || n > SIM_CHAT_NAME_MAX || p[n] != ':')
    return; /* "as I said: ..." is just text */
  memcpy(name, p, n);
  name[n] = 0;
  p += n + 1;
  while (isspace((unsigned char)*p))
    p++;
  *text = p;
}

/* ---- the transcript ---- */

/* The prompt goes where a person sees it: stdout on a terminal, else stderr
 * (so that a transcript piped to a file stays free of prompts). */
static FILE *prompt_stream(const struct sim_chat *ch) {
  return ch->tty_out ? stdout : stderr;
}

/* Takes the prompt off the screen before a transcript line. */
static void prompt_clear(struct sim_chat *ch) {
  if (!ch->prompt_shown)
    return;
  FILE *f = prompt_stream(ch);
  fputs(isatty(fileno(f)) ? "\r\033[K" : "\n", f);
  fflush(f);
  ch->prompt_shown = 0;
}

static void prompt_show(struct sim_chat *ch) {
  if (!ch->tty_in || ch->eof || ch->prompt_shown)
    return;
  FILE *f = prompt_stream(ch);
  fputs(PROMPT, f);
  fflush(f);
  ch->prompt_shown = 1;
}

/* Prints one transcript entry: the label in the name column (users on the
 * left, the bot on the right), "> ", an optional tag, then the text with
 * its later lines indented under the first. Control characters other than
 * tab and newline are shown as '?', so a reply cannot drive the terminal. */
static void say(struct sim_chat *ch, const char *label, int right, const char *tag,
                const char *text, size_t len) {
  prompt_clear(ch);
  while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
    len--;
  printf(right ? "%*s  > %s" : "%-*s  > %s", ch->width, label, tag);
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)text[i];
    if (c == '\r' && i + 1 < len && text[i + 1] == '\n')
      continue;
    if (c == '\n') {
      printf("\n%*s", ch->width + 4, "");
      continue;
    }
    putchar((c < 0x20 && c != '\t') || c == 0x7f ? '?' : c);
  }
  putchar('\n');
  fflush(stdout);
}

/* An indented remark such as "(no reply)". */
static void note(struct sim_chat *ch, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void note(struct sim_chat *ch, const char *fmt, ...) {
  va_list ap;
  prompt_clear(ch);
  fputs("  ", stdout);
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
}

/* "12 KB" and the like. */
static void human_size(long long n, char *out, size_t cap) {
  if (n < 1024)
    snprintf(out, cap, "%lld B", n);
  else if (n < 1024 * 1024)
    snprintf(out, cap, "%lld KB", (n + 512) / 1024);
  else
    snprintf(out, cap, "%.1f MB", (double)n / (1024.0 * 1024.0));
}

/* The one-line view of a PLAIN_IMAGE, _VIDEO, _AUDIO or _DATA payload (a JSON
 * object: attachment_id, mime_type, size, and width and height, duration or
 * name), into out. Returns 0, or -1 for another category. */
static int media_line(const struct sim *sim, const struct sim_sent *s, char *out,
                      size_t cap) {
  static const struct {
    const char *category, *label;
  } kinds[] = {{"PLAIN_IMAGE", "image"},
               {"PLAIN_VIDEO", "video"},
               {"PLAIN_AUDIO", "audio"},
               {"PLAIN_DATA", "file"}};
  const char *label = NULL;
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
    if (!strcmp(s->category, kinds[i].category))
      label = kinds[i].label;
  }
  if (!label)
    return -1;
  json_error_t je;
  json_t *o = json_loadb((const char *)s->data, s->data_len, 0, &je);
  if (!json_is_object(o)) {
    json_decref(o);
    snprintf(out, cap, "[%s, %zu bytes that are not a JSON object]", label, s->data_len);
    return 0;
  }
  const char *mime = json_string_value(json_object_get(o, "mime_type"));
  const char *name = json_string_value(json_object_get(o, "name"));
  const char *att = json_string_value(json_object_get(o, "attachment_id"));
  json_t *size = json_object_get(o, "size");
  char dims[48] = "", sz[32] = "?", note[96] = "";
  json_t *w = json_object_get(o, "width"), *h = json_object_get(o, "height");
  if (strcmp(label, "file") && strcmp(label, "audio"))
    snprintf(dims, sizeof dims, " %lldx%lld",
             json_is_integer(w) ? (long long)json_integer_value(w) : -1,
             json_is_integer(h) ? (long long)json_integer_value(h) : -1);
  if (json_is_integer(size))
    human_size((long long)json_integer_value(size), sz, sizeof sz);
  const struct sim_attachment *a = att ? files_find(sim, att) : NULL;
  if (!a)
    snprintf(note, sizeof note, "; no such attachment");
  else if (!a->uploaded)
    snprintf(note, sizeof note, "; attachment not uploaded");
  else if (!json_is_integer(size) ||
           (long long)json_integer_value(size) != (long long)a->size)
    snprintf(note, sizeof note, "; %zu bytes uploaded", a->size);
  if (!strcmp(label, "file"))
    snprintf(out, cap, "[file %.80s %.64s %s%s]", name ? name : "?", mime ? mime : "?",
             sz, note);
  else
    snprintf(out, cap, "[%s%s %.64s %s%s]", label, dims, mime ? mime : "?", sz, note);
  json_decref(o);
  return 0;
}

void chat_on_sent(struct sim *sim, const struct sim_sent *s) {
  struct sim_chat *ch = &sim->chat;
  size_t who = SIZE_MAX;
  for (size_t i = 0; i < ch->nusers; i++) {
    if (!strcmp(sim->users[ch->users[i].user].conversation_id, s->conversation_id)) {
      who = i;
      break;
    }
  }
  int group = who == SIZE_MAX && !strcasecmp(s->conversation_id, SIM_CHAT_GROUP_ID);
  if (group)
    who = ch->speaker;
  if (who == SIZE_MAX) {
    log_debug("bot message %s is for conversation %s, no chat user's: not shown",
              s->message_id, s->conversation_id);
    return;
  }
  ch->last_ms = now_ms();
  ch->line_replies++;
  ch->replies++;
  /* A reply to someone other than the last speaker says whom it is for. */
  char tag[SIM_CHAT_NAME_MAX + 16] = "";
  if (group)
    snprintf(tag, sizeof tag, "(in the group) ");
  else if (who != ch->speaker)
    snprintf(tag, sizeof tag, "(to %s) ", ch->users[who].name);
  char media[320];
  if (!strcmp(s->category, "PLAIN_TEXT") || !strcmp(s->category, "PLAIN_POST")) {
    say(ch, "bot", 1, tag, (const char *)s->data, s->data_len);
  } else if (media_line(sim, s, media, sizeof media) == 0) {
    say(ch, "bot", 1, tag, media, strlen(media));
  } else {
    char what[SIM_CATEGORY_MAX + 32];
    int n = snprintf(what, sizeof what, "[%s %zu bytes]", s->category, s->data_len);
    say(ch, "bot", 1, tag, what, (size_t)n);
  }
  prompt_show(ch);
}

void chat_on_ack(struct sim *sim) {
  sim->chat.last_ms = now_ms();
}

/* ---- pushing ---- */

/* Stores a PLAIN_TEXT from chat user who and wakes the connections: pushed
 * live when the bot is listing, else kept pending for its next
 * LIST_PENDING_MESSAGES. Returns 0 or -1 (out of memory, logged). */
static int push_text(struct sim *sim, size_t who, const char *text, int echo) {
  struct sim_chat *ch = &sim->chat;
  if (ch->npushed == ch->pushed_cap) {
    size_t nc = ch->pushed_cap ? ch->pushed_cap * 2 : 64;
    size_t *p = realloc(ch->pushed, nc * sizeof *p);
    if (!p)
      goto oom;
    ch->pushed = p;
    ch->pushed_cap = nc;
  }
  size_t idx =
      store_add(sim, ch->users[who].user, "PLAIN_TEXT", NULL, text, strlen(text), 0);
  if (idx == SIM_MSG_INDEX_NONE)
    goto oom;
  ch->pushed[ch->npushed++] = idx;
  ch->speaker = who;
  ch->last_ms = now_ms();
  if (echo)
    say(ch, ch->users[who].name, 0, "", text, strlen(text));
  log_debug("chat: %s says %s", ch->users[who].name, sim->msgs[idx].message_id);
  ws_wake_all(sim);
  return 0;
oom:
  log_error("out of memory");
  return -1;
}

/* Chat user who joins the chat's group: a SYSTEM_CONVERSATION JOIN from
 * them in SIM_CHAT_GROUP_ID, the way Mixin announces someone who joined by
 * a group link. Returns 0 or -1 (out of memory, logged). */
static int push_join(struct sim *sim, size_t who) {
  struct sim_chat *ch = &sim->chat;
  if (ch->npushed == ch->pushed_cap) {
    size_t nc = ch->pushed_cap ? ch->pushed_cap * 2 : 64;
    size_t *p = realloc(ch->pushed, nc * sizeof *p);
    if (!p)
      goto oom;
    ch->pushed = p;
    ch->pushed_cap = nc;
  }
  const char *uid = sim->users[ch->users[who].user].id;
  char data[256];
  int n = snprintf(data, sizeof data,
                   "{\"action\":\"JOIN\",\"participant_id\":\"%s\",\"user_id\":\"%s\","
                   "\"role\":\"\"}",
                   uid, uid);
  size_t idx = store_add(sim, ch->users[who].user, "SYSTEM_CONVERSATION",
                         SIM_CHAT_GROUP_ID, data, (size_t)n, 0);
  if (idx == SIM_MSG_INDEX_NONE)
    goto oom;
  ch->pushed[ch->npushed++] = idx;
  ch->speaker = who;
  ch->last_ms = now_ms();
  static const char joins[] = "(joins the group)";
  say(ch, ch->users[who].name, 0, "", joins, sizeof joins - 1);
  ws_wake_all(sim);
  return 0;
oom:
  log_error("out of memory");
  return -1;
}

/* 1 when a connection has listed its pending messages, so a push now goes
 * out live (source CREATE_MESSAGE). */
static int bot_listening(const struct sim *sim) {
  for (const struct sim_conn *c = sim->conns; c; c = c->next) {
    if (c->listing && !c->silent)
      return 1;
  }
  return 0;
}

static size_t unacked_count(const struct sim *sim) {
  size_t n = 0;
  for (size_t i = 0; i < sim->chat.npushed; i++)
    n += !sim->msgs[sim->chat.pushed[i]].acked;
  return n;
}

/* Prints the closing line and returns the exit code. */
static int finish(struct sim *sim) {
  struct sim_chat *ch = &sim->chat;
  size_t unacked = unacked_count(sim);
  char acks[48], late[48] = "";
  if (unacked)
    snprintf(acks, sizeof acks, "%zu not acknowledged", unacked);
  else
    snprintf(acks, sizeof acks, "all acknowledged");
  if (ch->unanswered)
    snprintf(late, sizeof late, "; %llu line%s timed out",
             (unsigned long long)ch->unanswered, ch->unanswered == 1 ? "" : "s");
  prompt_clear(ch);
  printf("-- %zu message%s sent, %llu repl%s, %s%s\n", ch->npushed,
         ch->npushed == 1 ? "" : "s", (unsigned long long)ch->replies,
         ch->replies == 1 ? "y" : "ies", acks, late);
  fflush(stdout);
  log_info("chat finished: %zu message(s), %llu repl(ies), %zu unacknowledged",
           ch->npushed, (unsigned long long)ch->replies, unacked);
  return sim->cfg.chat_file && ch->unanswered ? 1 : 0;
}

static int script_tick(struct sim *sim, int64_t now) {
  struct sim_chat *ch = &sim->chat;
  if (ch->waiting) {
    int acked = sim->msgs[ch->current].acked;
    if (acked && now - ch->last_ms >= SIM_CHAT_QUIET_MS) {
      if (!ch->line_replies)
        note(ch, "(no reply)");
    } else if (now - ch->line_ms >= sim->cfg.chat_timeout_ms) {
      if (!acked) {
        ch->unanswered++;
        note(ch, "(not acknowledged within %ld ms)", sim->cfg.chat_timeout_ms);
        log_warn("chat: message %s not acknowledged within %ld ms",
                 sim->msgs[ch->current].message_id, sim->cfg.chat_timeout_ms);
      } else if (!ch->line_replies) {
        note(ch, "(no reply)");
      }
    } else {
      return -1;
    }
    ch->waiting = 0;
  }
  if (ch->next_line == ch->nlines)
    return finish(sim);
  if (!bot_listening(sim))
    return -1;
  const struct chat_line *l = &ch->lines[ch->next_line++];
  if ((l->join ? push_join(sim, l->who) : push_text(sim, l->who, l->text, 1)) < 0)
    return 1;
  ch->waiting = 1;
  ch->current = ch->pushed[ch->npushed - 1];
  ch->line_ms = now;
  ch->line_replies = 0;
  return -1;
}

int chat_tick(struct sim *sim, int64_t now) {
  struct sim_chat *ch = &sim->chat;
  if (sim->cfg.chat_file)
    return script_tick(sim, now);
  /* --interactive after the end of stdin: the last answers are awaited as
   * in a script, but at most --chat-timeout. */
  if (!ch->eof)
    return -1;
  if ((unacked_count(sim) == 0 && now - ch->last_ms >= SIM_CHAT_QUIET_MS) ||
      now >= ch->eof_deadline_ms)
    return finish(sim);
  return -1;
}

/* ---- the script ---- */

static int load_script(struct sim *sim) {
  struct sim_chat *ch = &sim->chat;
  const char *path = sim->cfg.chat_file;
  FILE *f = fopen(path, "r");
  if (!f) {
    log_error("cannot open the chat script %s: %s", path, strerror(errno));
    return -1;
  }
  char *line = NULL, *text, name[SIM_CHAT_NAME_MAX + 1];
  size_t cap = 0;
  ssize_t n;
  int lineno = 0, rc = -1;
  while ((n = getline(&line, &cap, f)) >= 0) {
    lineno++;
    if (memchr(line, 0, (size_t)n)) {
      log_error("%s:%d: a NUL byte", path, lineno);
      goto done;
    }
    char *p = line;
    while (isspace((unsigned char)*p))
      p++;
    if (!*p || *p == '#')
      continue;
    int join = 0;
    if (!strncasecmp(p, "join:", 5)) {
      /* "join: NAME": NAME joins the chat's group. */
      char *q = p + 5;
      while (*q == ' ' || *q == '\t')
        q++;
      size_t len = 0;
      while (name_char((unsigned char)q[len]))
        len++;
      char *e = q + len;
      while (isspace((unsigned char)*e))
        e++;
      if (len == 0 || len > SIM_CHAT_NAME_MAX || *e) {
        log_error("%s:%d: write \"join: NAME\" (letters, digits, _ and -)", path, lineno);
        goto done;
      }
      memcpy(name, q, len);
      name[len] = 0;
      text = q + len; /* "" */
      join = 1;
    } else {
      split_line(p, name, &text);
    }
    if (!*text && !join) {
      log_error("%s:%d: no message after \"as %s:\"", path, lineno, name);
      goto done;
    }
    size_t who = chat_user(sim, name);
    if (who == SIZE_MAX)
      goto done;
    if (ch->nlines == ch->lines_cap) {
      size_t nc = ch->lines_cap ? ch->lines_cap * 2 : 16;
      struct chat_line *q = realloc(ch->lines, nc * sizeof *q);
      if (!q)
        goto oom;
      ch->lines = q;
      ch->lines_cap = nc;
    }
    ch->lines[ch->nlines].text = strdup(text);
    if (!ch->lines[ch->nlines].text)
      goto oom;
    ch->lines[ch->nlines].join = join;
    ch->lines[ch->nlines++].who = who;
  }
  if (ferror(f)) {
    log_error("cannot read the chat script %s: %s", path, strerror(errno));
    goto done;
  }
  if (ch->nlines == 0) {
    log_error("the chat script %s has no messages", path);
    goto done;
  }
  log_info("chat script %s: %zu message(s) from %zu user(s)", path, ch->nlines,
           ch->nusers);
  rc = 0;
  goto done;
oom:
  log_error("out of memory");
done:
  free(line);
  fclose(f);
  return rc;
}

/* ---- stdin ---- */

/* No more input: the run ends once the last answers are in (tick). */
static void stdin_end(struct sim *sim, int64_t deadline_ms) {
  struct sim_chat *ch = &sim->chat;
  if (ch->eof) {
    if (deadline_ms < ch->eof_deadline_ms)
      ch->eof_deadline_ms = deadline_ms;
    return;
  }
  prompt_clear(ch);
  ch->eof = 1;
  ch->eof_deadline_ms = deadline_ms;
  ch->last_ms = now_ms();
}

static void stdin_line(struct sim *sim, char *line) {
  struct sim_chat *ch = &sim->chat;
  char name[SIM_CHAT_NAME_MAX + 1], *text;
  if (ch->eof)
    return;
  split_line(line, name, &text);
  if (!*text)
    return;
  if (!strcmp(text, "/quit")) {
    stdin_end(sim, now_ms());
    return;
  }
  size_t who = chat_user(sim, name);
  /* On a terminal the line is already on the screen, as typed. */
  if (who != SIZE_MAX)
    push_text(sim, who, text, !(ch->tty_in && ch->tty_out));
}

static void stdin_bytes(struct sim *sim, const char *p, size_t n) {
  struct sim_chat *ch = &sim->chat;
  if (buf_append(&ch->in, p, n) < 0) {
    log_error("out of memory");
    buf_reset(&ch->in);
    return;
  }
  size_t start = 0;
  for (size_t i = 0; i < ch->in.len; i++) {
    if (ch->in.data[i] != '\n')
      continue;
    ch->in.data[i] = 0; /* a NUL inside a line ends it early */
    stdin_line(sim, ch->in.data + start);
    start = i + 1;
  }
  size_t rest = ch->in.len - start;
  memmove(ch->in.data, ch->in.data + start, rest);
  ch->in.len = rest;
  ch->in.data[rest] = 0;
  if (rest >= STDIN_LINE_MAX) {
    stdin_line(sim, ch->in.data);
    buf_reset(&ch->in);
  }
}

/* Sends what is left of an unterminated last line, then ends the input. */
static void stdin_eof(struct sim *sim) {
  struct sim_chat *ch = &sim->chat;
  if (ch->in.len) {
    stdin_line(sim, ch->in.data);
    buf_reset(&ch->in);
  }
  stdin_end(sim, now_ms() + sim->cfg.chat_timeout_ms);
}

int chat_stdin_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                        void *in, size_t len) {
  struct sim *sim = lws_context_user(lws_get_context(wsi));
  struct sim_chat *ch = &sim->chat;
  char b[4096];
  (void)user;
  (void)in;
  (void)len;
  switch (reason) {
  case LWS_CALLBACK_RAW_RX_FILE:
    /* Everything there is, now: with the writer gone lws closes the
     * descriptor after this callback, and unread bytes would be lost. */
    for (;;) {
      ssize_t n = read(ch->stdin_fd, b, sizeof b);
      if (n > 0) {
        ch->prompt_shown = 0; /* Enter ended the prompt line on the terminal */
        stdin_bytes(sim, b, (size_t)n);
        continue;
      }
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno == EAGAIN)
        break;
      if (n < 0)
        log_warn("cannot read stdin: %s", strerror(errno));
      stdin_eof(sim);
      return -1; /* closes the descriptor */
    }
    prompt_show(ch);
    return 0;
  case LWS_CALLBACK_RAW_CLOSE_FILE:
    /* Also where a hang-up without data ends up; at shutdown (a signal)
     * the input is simply dropped. */
    ch->stdin_fd = -1;
    if (sim->stop)
      prompt_clear(ch);
    else if (!ch->eof)
      stdin_eof(sim);
    return 0;
  default:
    return 0;
  }
}

/* ---- life cycle ---- */

int chat_init(struct sim *sim) {
  struct sim_chat *ch = &sim->chat;
  ch->width = NAME_WIDTH_MIN;
  ch->speaker = SIZE_MAX;
  ch->stdin_fd = -1;
  if (sim->cfg.chat_file)
    return load_script(sim);
  ch->tty_in = isatty(0);
  ch->tty_out = isatty(1);
  return chat_user(sim, DEFAULT_USER) == SIZE_MAX ? -1 : 0;
}

int chat_start(struct sim *sim) {
  struct sim_chat *ch = &sim->chat;
  if (!sim->cfg.interactive)
    return 0;
  /* lws makes an adopted descriptor non-blocking and closes it at the end.
   * On a terminal fd 0 usually shares one open file description with
   * stdout, stderr and the shell, which must all stay blocking, so stdin is
   * opened again as a description of its own; only where that cannot be
   * done (a socket) is fd 0 duplicated, and its flags are restored at exit. */
  lws_sock_file_fd_type u;
  ch->stdin_flags = fcntl(0, F_GETFL);
  ch->restore_stdin = ch->stdin_flags >= 0;
  u.filefd = open("/proc/self/fd/0", O_RDONLY | O_NOCTTY | O_CLOEXEC);
  if (u.filefd < 0)
    u.filefd = fcntl(0, F_DUPFD_CLOEXEC, 3);
  if (u.filefd < 0) {
    log_warn("no stdin (%s): nothing to send", strerror(errno));
    stdin_end(sim, now_ms());
    return 0;
  }
  ch->stdin_fd = u.filefd;
  if (!lws_adopt_descriptor_vhost(sim->vhost, LWS_ADOPT_RAW_FILE_DESC, u,
                                  SIM_STDIN_PROTOCOL, NULL)) {
    log_error("cannot watch stdin");
    return -1;
  }
  if (ch->tty_in) {
    FILE *f = prompt_stream(ch);
    fprintf(f, "-- you are %s; \"as NAME: text\" speaks as NAME; /quit or Ctrl-D ends\n",
            DEFAULT_USER);
    fflush(f);
    prompt_show(ch);
  }
  return 0;
}

void chat_fini(struct sim *sim) {
  struct sim_chat *ch = &sim->chat;
  for (size_t i = 0; i < ch->nlines; i++)
    free(ch->lines[i].text);
  free(ch->lines);
  free(ch->users);
  free(ch->pushed);
  buf_fini(&ch->in);
  if (ch->restore_stdin && fcntl(0, F_GETFL) != ch->stdin_flags)
    fcntl(0, F_SETFL, ch->stdin_flags);
  memset(ch, 0, sizeof *ch);
}
