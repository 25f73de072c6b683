/* SPDX-License-Identifier: MIT */
/*
 * test_echo: the echo plugin, compiled into this test and driven through
 * blazebot/testing.h. It echoes the exact bytes (even a NUL) into the same
 * conversation as PLAIN_TEXT and passes the message on; `prefix` is
 * prepended (surrounding quotes removed); `max_len` cuts long texts without splitting a
 * UTF-8 character; bad settings refuse the load with a reason; its own messages, receipts
 * and empty texts get no echo; a full outbox asks for redelivery.
 */
#include <stdio.h>
#include <string.h>

#include <blazebot/testing.h>

#include "check.h"

const struct blazebot_plugin *blazebot_plugin_v1(void);

/* Loads echo with max_len (NULL = default) and echoes text; returns the
 * reply (or NULL when there was none) in buf. */
static const char *echo_with(const char *max_len, const char *text, char *buf, size_t n) {
  struct blazebot_test_host th;
  const char *r;
  blazebot_test_init(&th);
  if (max_len)
    blazebot_test_set_config(&th, "max_len", max_len);
  CHECK_INT(blazebot_test_load(&th, blazebot_plugin_v1()), 0);
  CHECK_INT(blazebot_test_deliver(&th, blazebot_test_message(&th, "PLAIN_TEXT", text)),
            BLAZEBOT_PASS);
  r = blazebot_test_reply_text(&th, 0);
  if (r)
    snprintf(buf, n, "%s", r);
  CHECK_INT(th.violations, 0);
  blazebot_test_unload(&th);
  return r ? buf : NULL;
}

static void test_echoes_exactly(void) {
  struct blazebot_test_host th;
  const struct blazebot_test_sent *s;
  struct blazebot_message *m;
  int32_t prio = -1;
  blazebot_test_init(&th);
  CHECK_INT(blazebot_test_load(&th, blazebot_plugin_v1()), 0);
  CHECK_STR(th.desc.name, "echo");
  CHECK(th.desc.flags & BLAZEBOT_FLAG_UNLOAD_SAFE);
  CHECK(blazebot_test_subscribes(&th, "PLAIN_TEXT", &prio));
  CHECK_INT(prio, 0);
  CHECK(!blazebot_test_subscribes(&th, "PLAIN_IMAGE", NULL));

  m = blazebot_test_message(&th, "PLAIN_TEXT", "Hello, wörld 👋");
  CHECK_INT(blazebot_test_deliver(&th, m), BLAZEBOT_PASS);
  CHECK_INT(blazebot_test_reply_count(&th), 1);
  s = blazebot_test_reply(&th, 0);
  CHECK_STR(s->data, "Hello, wörld 👋");
  CHECK_INT(s->data_len, strlen("Hello, wörld 👋"));
  CHECK_STR(s->category, "PLAIN_TEXT");
  CHECK_STR(s->conversation_id, BLAZEBOT_TEST_CONVERSATION_ID);
  CHECK_STR(s->recipient_id, BLAZEBOT_TEST_USER_ID);
  CHECK_INT(s->is_reply, 1);

  /* Bytes, not C strings: an embedded NUL survives. */
  m = blazebot_test_message_data(&th, "PLAIN_TEXT", "a\0b", 3);
  CHECK_INT(blazebot_test_deliver(&th, m), BLAZEBOT_PASS);
  s = blazebot_test_reply(&th, 1);
  CHECK_INT(s->data_len, 3);
  CHECK(memcmp(s->data, "a\0b", 3) == 0);
  CHECK_INT(th.violations, 0);
  blazebot_test_unload(&th);
}

static void test_prefix(void) {
  struct blazebot_test_host th;
  blazebot_test_init(&th);
  blazebot_test_set_config(&th, "prefix", "echo: ");
  blazebot_test_set_config(&th, "max_len", "3");
  CHECK_INT(blazebot_test_load(&th, blazebot_plugin_v1()), 0);
  CHECK_INT(blazebot_test_deliver(&th, blazebot_test_message(&th, "PLAIN_TEXT", "hi")),
            BLAZEBOT_PASS);
  CHECK_STR(blazebot_test_reply_text(&th, 0), "echo: hi");
  /* max_len counts the echoed text, not the prefix. */
  CHECK_INT(blazebot_test_deliver(&th, blazebot_test_message(&th, "PLAIN_TEXT", "hello")),
            BLAZEBOT_PASS);
  CHECK_STR(blazebot_test_reply_text(&th, 1), "echo: hel");
  blazebot_test_unload(&th);

  /* Quotes keep the spaces that the ini parser would trim. */
  blazebot_test_init(&th);
  blazebot_test_set_config(&th, "prefix", "\"  > \"");
  CHECK_INT(blazebot_test_load(&th, blazebot_plugin_v1()), 0);
  blazebot_test_deliver(&th, blazebot_test_message(&th, "PLAIN_TEXT", "hi"));
  CHECK_STR(blazebot_test_reply_text(&th, 0), "  > hi");
  blazebot_test_unload(&th);
}

static void test_max_len_utf8(void) {
  char buf[256];
  /* "héllo": h, é (2 bytes), l, l, o = 6 bytes. */
  CHECK_STR(echo_with("6", "héllo", buf, sizeof buf), "héllo");
  CHECK_STR(echo_with("5", "héllo", buf, sizeof buf), "héll");
  CHECK_STR(echo_with("3", "héllo", buf, sizeof buf), "hé");
  CHECK_STR(echo_with("2", "héllo", buf, sizeof buf), "h"); /* not half an é */
  /* A 4-byte character is never split: "a😀b" cut at 2..4 leaves "a". */
  CHECK_STR(echo_with("2", "a😀b", buf, sizeof buf), "a");
  CHECK_STR(echo_with("4", "a😀b", buf, sizeof buf), "a");
  CHECK_STR(echo_with("5", "a😀b", buf, sizeof buf), "a😀");
  /* Nothing fits: no reply at all rather than an empty or broken one. */
  CHECK(echo_with("3", "😀", buf, sizeof buf) == NULL);
  /* The default is 4096 bytes. */
  {
    static char big[5000], want[4097];
    memset(big, 'x', sizeof big - 1);
    memset(want, 'x', sizeof want - 1);
    {
      struct blazebot_test_host th;
      blazebot_test_init(&th);
      CHECK_INT(blazebot_test_load(&th, blazebot_plugin_v1()), 0);
      blazebot_test_deliver(&th, blazebot_test_message(&th, "PLAIN_TEXT", big));
      CHECK_INT(blazebot_test_reply(&th, 0)->data_len, 4096);
      CHECK_STR(blazebot_test_reply_text(&th, 0), want);
      blazebot_test_unload(&th);
    }
  }
}

static void test_bad_config(void) {
  static const char *const bad[] = {"abc", "0", "-5", "1000000000"};
  size_t i;
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct blazebot_test_host th;
    blazebot_test_init(&th);
    blazebot_test_set_config(&th, "max_len", bad[i]);
    CHECK_INT(blazebot_test_load(&th, blazebot_plugin_v1()), -1);
    CHECK(th.has_error);
    CHECK(strstr(th.error, "max_len") != NULL);
    CHECK_INT(th.violations, 0);
    blazebot_test_unload(&th);
  }
}

static void test_no_echo(void) {
  struct blazebot_test_host th;
  struct blazebot_message *m;
  blazebot_test_init(&th);
  CHECK_INT(blazebot_test_load(&th, blazebot_plugin_v1()), 0);
  m = blazebot_test_message(&th, "PLAIN_TEXT", "");
  CHECK_INT(blazebot_test_deliver(&th, m), BLAZEBOT_PASS);
  m = blazebot_test_message(&th, "PLAIN_TEXT", "me");
  m->user_id = BLAZEBOT_TEST_BOT_ID;
  CHECK_INT(blazebot_test_deliver(&th, m), BLAZEBOT_PASS);
  m = blazebot_test_message(&th, "PLAIN_TEXT", "receipt");
  m->source = "ACKNOWLEDGE_MESSAGE_RECEIPT";
  CHECK_INT(blazebot_test_deliver(&th, m), BLAZEBOT_PASS);
  CHECK_INT(blazebot_test_reply_count(&th), 0);

  /* A full outbox: ask for the message again rather than lose the echo. */
  th.fail_sends = 1;
  m = blazebot_test_message(&th, "PLAIN_TEXT", "later");
  CHECK_INT(blazebot_test_deliver(&th, m), BLAZEBOT_RETRY);
  CHECK(blazebot_test_log_contains(&th, "will retry"));
  th.fail_sends = 0;
  m->attempt = 2;
  CHECK_INT(blazebot_test_deliver(&th, m), BLAZEBOT_PASS);
  CHECK_STR(blazebot_test_reply_text(&th, 0), "later");
  CHECK_INT(th.violations, 0);
  blazebot_test_unload(&th);
}

int main(void) {
  test_echoes_exactly();
  test_prefix();
  test_max_len_utf8();
  test_bad_config();
  test_no_echo();
  return check_done("plugins.echo");
}
