/* SPDX-License-Identifier: MIT */
/*
 * test_testing: the fake host of blazebot/testing.h, which plugin authors
 * trust to behave like the daemon. MD5 against RFC 1321's vectors, the 1:1
 * conversation id against protocol.md §6.3's vector (both orders, any case),
 * typed config getters, deterministic uuids, the fake clock's timers
 * (order, repeat, cancel, cancelled at unload), run_blocking completions
 * deferred until the current callback returns, the contract checks, the
 * reload hand-over of save_state/state_get, and a refused descriptor.
 */
#include <stdio.h>
#include <string.h>

#include <blazebot/testing.h>

#include "check.h"

static void hex(const unsigned char *d, size_t n, char *out) {
  size_t i;
  for (i = 0; i < n; i++)
    sprintf(out + 2 * i, "%02x", d[i]);
}

static void test_md5(void) {
  static const struct {
    const char *in, *out;
  } v[] = {
      {"", "d41d8cd98f00b204e9800998ecf8427e"},
      {"a", "0cc175b9c0f1b6a831c399e269772661"},
      {"abc", "900150983cd24fb0d6963f7d28e17f72"},
      {"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
      {"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"},
      {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
       "d174ab98d277d9f5a5611c2c9f419d9f"},
      {"1234567890123456789012345678901234567890123456789012345678901234567890123456789"
       "0",
       "57edf4a22be3c955ac49da2e2107b67a"},
  };
  unsigned char d[16];
  char h[33];
  size_t i;
  for (i = 0; i < sizeof v / sizeof v[0]; i++) {
    blazebot_test_md5(v[i].in, strlen(v[i].in), d);
    hex(d, 16, h);
    CHECK_STR(h, v[i].out);
  }
}

static void test_unique_conversation_id(void) {
  const char *a = "6a8f6e6f-2c5d-4b0f-9c6e-0c0b2d7f3a11";
  const char *b = "e8e5b807-fa8b-455a-8dfa-b189d28310ff";
  const char *want = "c16cbc88-40bb-31ea-9d45-99ca0a683bb5";
  struct blazebot_test_host th;
  char out[BLAZEBOT_ID_LEN];
  blazebot_test_init(&th);
  CHECK_INT(th.host.unique_conversation_id((blazebot_ctx *)(void *)&th, a, b, out), 0);
  CHECK_STR(out, want);
  CHECK_INT(blazebot_test_unique_conversation_id(b, a, out), 0);
  CHECK_STR(out, want);
  CHECK_INT(blazebot_test_unique_conversation_id("6A8F6E6F-2C5D-4B0F-9C6E-0C0B2D7F3A11",
                                                 b, out),
            0);
  CHECK_STR(out, want);
  CHECK_INT(blazebot_test_unique_conversation_id(NULL, b, out), -1);
  blazebot_test_unload(&th);
}

/* ---- a toy plugin that exercises the services ------------------------------------ */

struct toy {
  blazebot_ctx *ctx;
  const struct blazebot_host *host;
  int ticks, works, dones, in_callback;
  int restored; /* the value state_get handed over, or -1 */
  char order[32];
};

static void toy_mark(struct toy *t, char c) {
  size_t n = strlen(t->order);
  if (n + 1 < sizeof t->order) {
    t->order[n] = c;
    t->order[n + 1] = '\0';
  }
}

static void toy_tick(void *state, void *arg) {
  struct toy *t = state;
  t->ticks++;
  toy_mark(t, *(const char *)arg);
}

static void toy_work(void *arg) {
  ((struct toy *)arg)->works++;
}

static void toy_done(void *state, void *arg) {
  struct toy *t = state;
  CHECK(t == arg);
  CHECK(!t->in_callback); /* never nested inside on_message */
  t->dones++;
}

static struct toy *g_last_toy;

static int toy_init(blazebot_ctx *ctx, const struct blazebot_host *host, void **state) {
  struct toy *t = (struct toy *)calloc(1, sizeof *t);
  const void *blob;
  size_t len;
  if (!t)
    return -1;
  t->ctx = ctx;
  t->host = host;
  t->restored = -1;
  if (host->state_get(ctx, &blob, &len) == 0 && len == sizeof(int))
    memcpy(&t->restored, blob, sizeof(int));
  if (host->config_get(ctx, "refuse")) {
    host->set_error(ctx, "refused: %s", host->config_get(ctx, "refuse"));
    free(t);
    return -1;
  }
  g_last_toy = t;
  *state = t;
  return 0;
}

static int toy_on_message(void *state, const struct blazebot_message *msg) {
  struct toy *t = state;
  t->in_callback = 1;
  CHECK_INT(t->host->run_blocking(t->ctx, toy_work, toy_done, t), 0);
  CHECK_INT(t->works, 1); /* the work ran at once... */
  CHECK_INT(t->dones, 0); /* ...its completion waits for the callback to return */
  t->in_callback = 0;
  return msg->data_len ? BLAZEBOT_HANDLED : BLAZEBOT_PASS;
}

static int toy_save(void *state) {
  struct toy *t = state;
  int v = 42;
  return t->host->state_put(t->ctx, &v, sizeof v);
}

static void toy_shutdown(void *state) {
  free(state);
}

static const struct blazebot_subscription toy_subs[] = {
    {"PLAIN_*", 5, 0}, {"SYSTEM_CONVERSATION", 7, 0}, {NULL, 0, 0}};

static const struct blazebot_plugin toy_desc = {.size = sizeof(struct blazebot_plugin),
                                                .abi_major = BLAZEBOT_ABI_MAJOR,
                                                .abi_minor = BLAZEBOT_ABI_MINOR,
                                                .name = "toy",
                                                .version = "1",
                                                .subscriptions = toy_subs,
                                                .init = toy_init,
                                                .on_message = toy_on_message,
                                                .shutdown = toy_shutdown,
                                                .save_state = toy_save};

static void test_config(void) {
  struct blazebot_test_host th;
  blazebot_ctx *ctx = (blazebot_ctx *)(void *)&th;
  int64_t i;
  int b;
  blazebot_test_init(&th);
  blazebot_test_set_config(&th, "n", "-42");
  blazebot_test_set_config(&th, "big", "9223372036854775807");
  blazebot_test_set_config(&th, "over", "9223372036854775808");
  blazebot_test_set_config(&th, "junk", "12abc");
  blazebot_test_set_config(&th, "yes", "On");
  blazebot_test_set_config(&th, "no", "false");
  blazebot_test_set_config(&th, "maybe", "perhaps");
  CHECK_INT(th.host.config_int(ctx, "n", 7, &i), 0);
  CHECK_INT(i, -42);
  CHECK_INT(th.host.config_int(ctx, "absent", 7, &i), 0);
  CHECK_INT(i, 7);
  CHECK_INT(th.host.config_int(ctx, "big", 7, &i), 0);
  CHECK(i == INT64_MAX);
  CHECK_INT(th.host.config_int(ctx, "over", 7, &i), -1);
  CHECK_INT(th.host.config_int(ctx, "junk", 7, &i), -1);
  CHECK(blazebot_test_log_contains(&th, "junk = 12abc"));
  CHECK_INT(th.host.config_bool(ctx, "yes", 0, &b), 0);
  CHECK_INT(b, 1);
  CHECK_INT(th.host.config_bool(ctx, "no", 1, &b), 0);
  CHECK_INT(b, 0);
  CHECK_INT(th.host.config_bool(ctx, "maybe", 1, &b), -1);
  /* Replacing and removing. */
  blazebot_test_set_config(&th, "n", "5");
  CHECK_STR(th.host.config_get(ctx, "n"), "5");
  blazebot_test_set_config(&th, "n", NULL);
  CHECK(th.host.config_get(ctx, "n") == NULL);
  CHECK_STR(th.host.config_get(ctx, "no"), "false");
  blazebot_test_unload(&th);
}

static void test_services(void) {
  struct blazebot_test_host th;
  blazebot_ctx *ctx = (blazebot_ctx *)(void *)&th;
  struct blazebot_message *m;
  struct toy *t;
  char id[BLAZEBOT_ID_LEN];
  uint64_t tid;
  int32_t prio = 0;
  blazebot_test_init(&th);
  CHECK_INT(blazebot_test_load(&th, &toy_desc), 0);
  t = g_last_toy;
  CHECK(blazebot_test_subscribes(&th, "PLAIN_TEXT", &prio));
  CHECK_INT(prio, 5);
  CHECK(blazebot_test_subscribes(&th, "SYSTEM_CONVERSATION", &prio));
  CHECK_INT(prio, 7);
  CHECK(!blazebot_test_subscribes(&th, "SYSTEM_USER", NULL));

  /* uuids: deterministic. */
  th.host.uuid(ctx, id);
  CHECK_STR(id, "00000000-0000-4000-8000-000000000001");
  th.host.uuid(ctx, id);
  CHECK_STR(id, "00000000-0000-4000-8000-000000000002");
  CHECK_STR(th.host.bot_id(ctx), BLAZEBOT_TEST_BOT_ID);

  /* The message and run_blocking. */
  m = blazebot_test_message(&th, "PLAIN_TEXT", "hi");
  CHECK_STR(m->message_id, "11111111-1111-4111-8111-000000000001");
  CHECK_INT(m->data_len, 2);
  CHECK_INT(m->data[2], 0);
  CHECK(strstr(m->raw_json, "\"data_base64\":\"aGk\"") != NULL);
  CHECK_STR(m->representative_id, "");
  CHECK_INT(blazebot_test_deliver(&th, m), BLAZEBOT_HANDLED);
  CHECK_INT(t->dones, 1);

  /* Timers: earliest first, repeats, cancel. */
  CHECK_INT(th.host.timer_add(ctx, 30, 0, toy_tick, (void *)"c", NULL), 0);
  CHECK_INT(th.host.timer_add(ctx, 10, 20, toy_tick, (void *)"r", NULL), 0);
  CHECK_INT(th.host.timer_add(ctx, 5, 0, toy_tick, (void *)"x", &tid), 0);
  CHECK_INT(th.host.timer_cancel(ctx, tid), 0);
  CHECK_INT(th.host.timer_cancel(ctx, tid), -1);
  CHECK_INT(blazebot_test_fire_timers(&th, 9), 0);
  CHECK_INT(blazebot_test_fire_timers(&th, 1), 1); /* r at 10 */
  CHECK_INT(blazebot_test_fire_timers(&th, 40),
            3); /* c and r at 30 (c added first), r at 50 */
  CHECK_STR(t->order, "rcrr");
  CHECK_INT(blazebot_test_timer_count(&th), 1);

  /* Contract checks: reply outside on_message, set_error outside init,
   * state_put outside save_state. */
  CHECK_INT(th.host.reply(ctx, m, "PLAIN_TEXT", "x", 1, NULL), -1);
  th.host.set_error(ctx, "late");
  CHECK_INT(th.host.state_put(ctx, "x", 1), -1);
  CHECK_INT(th.violations, 3);
  CHECK(blazebot_test_log_contains(&th, "reply outside on_message"));
  CHECK(!th.has_error);

  /* send works anywhere and keeps what it was given. */
  {
    struct blazebot_outgoing o;
    memset(&o, 0, sizeof o);
    o.size = sizeof o;
    o.conversation_id = "c";
    o.category = "PLAIN_POST";
    o.data = "**b**";
    o.data_len = 5;
    o.message_id = "m-1";
    o.flags = BLAZEBOT_SEND_SILENT;
    CHECK_INT(th.host.send(ctx, &o, id), 0);
    CHECK_STR(id, "m-1");
    CHECK_INT(blazebot_test_reply_count(&th), 1);
    CHECK_STR(blazebot_test_reply(&th, 0)->category, "PLAIN_POST");
    CHECK_INT(blazebot_test_reply(&th, 0)->flags, BLAZEBOT_SEND_SILENT);
    CHECK_INT(blazebot_test_reply(&th, 0)->is_reply, 0);
    CHECK_STR(blazebot_test_reply_text(&th, 0), "**b**");
    th.fail_sends = 1;
    CHECK_INT(th.host.send(ctx, &o, NULL), -1);
  }

  /* Reload: save_state's blob reaches the next init; the old timers go. */
  CHECK_INT(blazebot_test_reload(&th, &toy_desc), 0);
  CHECK(g_last_toy != t);
  CHECK_INT(g_last_toy->restored, 42);
  CHECK_INT(blazebot_test_timer_count(&th), 0);

  /* A failed re-init keeps the old instance. */
  t = g_last_toy;
  blazebot_test_set_config(&th, "refuse", "no thanks");
  CHECK_INT(blazebot_test_reload(&th, &toy_desc), -1);
  CHECK(th.has_error);
  CHECK_STR(th.error, "refused: no thanks");
  CHECK(th.state == t);
  CHECK_INT(th.violations, 3);
  blazebot_test_unload(&th);
  CHECK_INT(th.loaded, 0);
  CHECK_INT(blazebot_test_reply_count(&th), 0);
  blazebot_test_unload(&th); /* twice is fine */
}

static void test_refused_descriptor(void) {
  struct blazebot_test_host th;
  struct blazebot_plugin bad = toy_desc;
  blazebot_test_init(&th);
  bad.abi_major = 2;
  CHECK_INT(blazebot_test_load(&th, &bad), -1);
  bad = toy_desc;
  bad.on_message = NULL;
  CHECK_INT(blazebot_test_load(&th, &bad), -1);
  CHECK_INT(th.violations, 2);
  CHECK_INT(th.loaded, 0);
  /* A failing init is not a violation; its reason is kept. */
  blazebot_test_set_config(&th, "refuse", "because");
  CHECK_INT(blazebot_test_load(&th, &toy_desc), -1);
  CHECK_STR(th.error, "refused: because");
  CHECK_INT(th.violations, 2);
  blazebot_test_unload(&th);
}

int main(void) {
  test_md5();
  test_unique_conversation_id();
  test_config();
  test_services();
  test_refused_descriptor();
  return check_done("plugins.testing");
}
