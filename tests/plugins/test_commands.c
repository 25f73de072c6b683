/* SPDX-License-Identifier: MIT */
/*
 * test_commands: the commands plugin through blazebot/testing.h. /help lists
 * every command with its description; known commands get their configured
 * reply (escapes decoded) whatever the case, spacing, arguments or
 * "@botname" suffix; unknown ones get unknown_reply with the name
 * substituted safely (never as a printf format); answered commands are
 * HANDLED and everything else PASSes; PLAIN_POST, a custom prefix and
 * bot_name work; bad sections refuse the load with a reason; reconfigure
 * swaps in a valid new section and keeps the old one otherwise.
 */
#include <stdio.h>
#include <string.h>

#include <blazebot/testing.h>

#include "check.h"

const struct blazebot_plugin *blazebot_plugin_v1(void);

/* Delivers text; returns the plugin's answer and leaves the reply, if any,
 * as the last recorded message. */
static int say(struct blazebot_test_host *th, const char *text) {
  return blazebot_test_deliver(th, blazebot_test_message(th, "PLAIN_TEXT", text));
}

/* The text of the last reply, or "" when there is none. */
static const char *last(const struct blazebot_test_host *th) {
  size_t n = blazebot_test_reply_count(th);
  return n ? blazebot_test_reply_text(th, n - 1) : "";
}

static void setup(struct blazebot_test_host *th) {
  blazebot_test_init(th);
  blazebot_test_set_config(th, "commands", "about,  Ping");
  blazebot_test_set_config(th, "command.about", "A test bot.\\nSecond line, C:\\\\path");
  blazebot_test_set_config(th, "describe.about", "What this is");
  blazebot_test_set_config(th, "command.ping", "pong");
}

static void test_answers(void) {
  struct blazebot_test_host th;
  int32_t prio = 0;
  setup(&th);
  CHECK_INT(blazebot_test_load(&th, blazebot_plugin_v1()), 0);
  CHECK(blazebot_test_subscribes(&th, "PLAIN_TEXT", &prio));
  CHECK_INT(prio, 100);
  CHECK(th.desc.reconfigure != NULL);

  CHECK_INT(say(&th, "/help"), BLAZEBOT_HANDLED);
  CHECK_STR(last(&th), "Commands:\n/about \xE2\x80\x94 What this is\n/ping\n"
                       "/help \xE2\x80\x94 Show this list");
  CHECK_STR(blazebot_test_reply(&th, 0)->category, "PLAIN_TEXT");
  CHECK_INT(say(&th, "/about"), BLAZEBOT_HANDLED);
  CHECK_STR(last(&th), "A test bot.\nSecond line, C:\\path");
  CHECK_INT(say(&th, "/PING"), BLAZEBOT_HANDLED);
  CHECK_STR(last(&th), "pong");
  CHECK_INT(say(&th, "  \t/Ping   with some args \n"), BLAZEBOT_HANDLED);
  CHECK_STR(last(&th), "pong");
  CHECK_INT(say(&th, "/ping@any_bot"), BLAZEBOT_HANDLED);
  CHECK_STR(last(&th), "pong");
  CHECK_INT(say(&th, "/ping@any_bot args"), BLAZEBOT_HANDLED);
  CHECK_INT(blazebot_test_reply_count(&th), 6);

  /* Unknown commands: named in the reply, still HANDLED. */
  CHECK_INT(say(&th, "/nope"), BLAZEBOT_HANDLED);
  CHECK_STR(last(&th), "Unknown command /nope. Try /help.");

  /* Not commands: passed on, no reply. */
  CHECK_INT(say(&th, "hello"), BLAZEBOT_PASS);
  CHECK_INT(say(&th, "/"), BLAZEBOT_PASS);
  CHECK_INT(say(&th, "/usr/bin is a folder"), BLAZEBOT_PASS);
  CHECK_INT(say(&th, "/%s%n%x"), BLAZEBOT_PASS);
  CHECK_INT(say(&th, "/ping!"), BLAZEBOT_PASS);
  CHECK_INT(say(&th, "please /ping"), BLAZEBOT_PASS);
  CHECK_INT(say(&th, ""), BLAZEBOT_PASS);
  CHECK_INT(blazebot_test_reply_count(&th), 7);

  /* The bot's own messages and receipts are never answered. */
  {
    struct blazebot_message *m = blazebot_test_message(&th, "PLAIN_TEXT", "/ping");
    m->user_id = BLAZEBOT_TEST_BOT_ID;
    CHECK_INT(blazebot_test_deliver(&th, m), BLAZEBOT_PASS);
  }
  /* A full outbox: redeliver rather than claim the command was answered. */
  th.fail_sends = 1;
  CHECK_INT(say(&th, "/ping"), BLAZEBOT_RETRY);
  th.fail_sends = 0;
  CHECK_INT(blazebot_test_reply_count(&th), 7);
  CHECK_INT(th.violations, 0);
  blazebot_test_unload(&th);
}

static void test_unknown_reply_is_not_a_format(void) {
  struct blazebot_test_host th;
  setup(&th);
  blazebot_test_set_config(&th, "unknown_reply", "No %s here (100%% sure) %d %n %s.");
  CHECK_INT(blazebot_test_load(&th, blazebot_plugin_v1()), 0);
  CHECK_INT(say(&th, "/x_y-Z"), BLAZEBOT_HANDLED);
  CHECK_STR(last(&th), "No x_y-Z here (100% sure) %d %n x_y-Z.");
  blazebot_test_unload(&th);

  /* Empty: unknown commands pass to the next plugin. */
  setup(&th);
  blazebot_test_set_config(&th, "unknown_reply", "");
  CHECK_INT(blazebot_test_load(&th, blazebot_plugin_v1()), 0);
  CHECK_INT(say(&th, "/nope"), BLAZEBOT_PASS);
  CHECK_INT(say(&th, "/ping"), BLAZEBOT_HANDLED);
  CHECK_INT(blazebot_test_reply_count(&th), 1);
  blazebot_test_unload(&th);
}

static void test_prefix_post_and_bot_name(void) {
  struct blazebot_test_host th;
  setup(&th);
  blazebot_test_set_config(&th, "prefix", "!");
  blazebot_test_set_config(&th, "reply_category", "PLAIN_POST");
  blazebot_test_set_config(&th, "bot_name", "@EchoBot");
  blazebot_test_set_config(&th, "command.help", "**Try these:**");
  CHECK_INT(blazebot_test_load(&th, blazebot_plugin_v1()), 0);
  CHECK_INT(say(&th, "/ping"), BLAZEBOT_PASS);
  CHECK_INT(say(&th, "!ping"), BLAZEBOT_HANDLED);
  CHECK_STR(blazebot_test_reply(&th, 0)->category, "PLAIN_POST");
  CHECK_INT(say(&th, "!help"), BLAZEBOT_HANDLED);
  CHECK_STR(last(&th), "**Try these:**\n\n- !about \xE2\x80\x94 What this is\n- !ping\n"
                       "- !help \xE2\x80\x94 Show this list");
  /* Markdown: the substituted name is escaped; the prefix is the real one. */
  CHECK_INT(say(&th, "!a_b_"), BLAZEBOT_HANDLED);
  CHECK_STR(last(&th), "Unknown command !a\\_b\\_. Try !help.");
  /* bot_name: ours (any case) is answered, another bot's is left alone. */
  CHECK_INT(say(&th, "!ping@echobot"), BLAZEBOT_HANDLED);
  CHECK_INT(say(&th, "!ping@OtherBot"), BLAZEBOT_PASS);
  CHECK_INT(say(&th, "!ping@echobots"), BLAZEBOT_PASS);
  CHECK_INT(blazebot_test_reply_count(&th), 4);
  blazebot_test_unload(&th);

  /* A prefix with a percent sign does not turn into a placeholder. */
  setup(&th);
  blazebot_test_set_config(&th, "prefix", "%");
  CHECK_INT(blazebot_test_load(&th, blazebot_plugin_v1()), 0);
  CHECK_INT(say(&th, "%zap"), BLAZEBOT_HANDLED);
  CHECK_STR(last(&th), "Unknown command %zap. Try %help.");
  blazebot_test_unload(&th);
}

static void test_bad_sections(void) {
  static const struct {
    const char *key, *value, *why;
  } bad[] = {
      {"commands", "about, ping, zap", "command.zap is not set"},
      {"commands", "about, a.b", "'a.b' is not a command name"},
      {"commands", "about, ping, ABOUT", "'about' is listed twice"},
      {"reply_category", "APP_CARD", "reply_category"},
  };
  size_t i;
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct blazebot_test_host th;
    setup(&th);
    blazebot_test_set_config(&th, bad[i].key, bad[i].value);
    CHECK_INT(blazebot_test_load(&th, blazebot_plugin_v1()), -1);
    CHECK(strstr(th.error, bad[i].why) != NULL);
    if (!strstr(th.error, bad[i].why))
      fprintf(stderr, "  error was: %s\n", th.error);
    CHECK_INT(th.violations, 0);
    blazebot_test_unload(&th);
  }
  /* No `commands` at all: still a working /help. */
  {
    struct blazebot_test_host th;
    blazebot_test_init(&th);
    CHECK_INT(blazebot_test_load(&th, blazebot_plugin_v1()), 0);
    CHECK_INT(say(&th, "/help"), BLAZEBOT_HANDLED);
    CHECK_STR(last(&th), "Commands:\n/help \xE2\x80\x94 Show this list");
    blazebot_test_unload(&th);
  }
}

static void test_reconfigure(void) {
  struct blazebot_test_host th;
  setup(&th);
  CHECK_INT(blazebot_test_load(&th, blazebot_plugin_v1()), 0);
  blazebot_test_set_config(&th, "command.ping", "PONG!");
  blazebot_test_set_config(&th, "commands", "ping, time");
  blazebot_test_set_config(&th, "command.time", "late");
  CHECK_INT(blazebot_test_reconfigure(&th), 0);
  CHECK_INT(say(&th, "/ping"), BLAZEBOT_HANDLED);
  CHECK_STR(last(&th), "PONG!");
  CHECK_INT(say(&th, "/time"), BLAZEBOT_HANDLED);
  CHECK_STR(last(&th), "late");
  CHECK_INT(say(&th, "/about"), BLAZEBOT_HANDLED);
  CHECK_STR(last(&th), "Unknown command /about. Try /help.");

  /* An invalid section is refused and the running one stays. */
  blazebot_test_set_config(&th, "commands", "ping, time, zap");
  CHECK_INT(blazebot_test_reconfigure(&th), -1);
  CHECK(blazebot_test_log_contains(&th, "command.zap is not set"));
  CHECK_INT(say(&th, "/time"), BLAZEBOT_HANDLED);
  CHECK_STR(last(&th), "late");
  CHECK_INT(th.violations, 0);
  blazebot_test_unload(&th);
}

int main(void) {
  test_answers();
  test_unknown_reply_is_not_a_format();
  test_prefix_post_and_bot_name();
  test_bad_sections();
  test_reconfigure();
  return check_done("plugins.commands");
}
