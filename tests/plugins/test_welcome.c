/* SPDX-License-Identifier: MIT */
/*
 * test_welcome: the welcome plugin through blazebot/testing.h. ADD and JOIN
 * system messages greet the participant by full name in the group (a send
 * into the conversation without a recipient, tied to the system message,
 * after GET /users/{participant_id} under a hold, which is released as PASS);
 * other messages are delivered meanwhile; profiles are cached for
 * profile_ttl_s on the fake clock; every lookup failure greets with
 * text_unknown and never leaves a placeholder; REMOVE, EXIT, ROLE and the
 * like, the bot itself, malformed data and other categories are passed on
 * untouched; a minor-0 host greets without the name; bad sections are
 * refused; reconfigure swaps the texts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <blazebot/testing.h>

#include "check.h"

const struct blazebot_plugin *blazebot_plugin_v1(void);

#define BOB "77777777-7777-4777-8777-777777777777"
#define EVE "88888888-8888-4888-8888-888888888888"
#define BOB_PATH "/users/" BOB
#define EVE_PATH "/users/" EVE

/* A GET /users answer as Mixin sends it; name is JSON string content. */
static const char *profile_body(const char *user_id, const char *name) {
  static char body[1024];
  snprintf(body, sizeof body,
           "{\"data\":{\"type\":\"user\",\"user_id\":\"%s\",\"identity_number\":"
           "\"7000104321\",\"full_name\":\"%s\",\"avatar_url\":\"\",\"app\":null,"
           "\"is_verified\":false,\"created_at\":\"2024-01-01T00:00:00Z\"}}",
           user_id, name);
  return body;
}

/* Delivers a SYSTEM_CONVERSATION message with action and participant_id
 * (NULL: none), done by BLAZEBOT_TEST_USER_ID. */
static int event(struct blazebot_test_host *th, const char *action,
                 const char *participant) {
  char data[512];
  if (participant)
    snprintf(
        data, sizeof data,
        "{\"action\":\"%s\",\"participant_id\":\"%s\",\"user_id\":\"%s\",\"role\":\"\"}",
        action, participant, BLAZEBOT_TEST_USER_ID);
  else
    snprintf(data, sizeof data, "{\"action\":\"%s\",\"user_id\":\"%s\",\"role\":\"\"}",
             action, BLAZEBOT_TEST_USER_ID);
  return blazebot_test_deliver(th,
                               blazebot_test_message(th, "SYSTEM_CONVERSATION", data));
}

static int raw_event(struct blazebot_test_host *th, const char *data) {
  return blazebot_test_deliver(th,
                               blazebot_test_message(th, "SYSTEM_CONVERSATION", data));
}

/* The text of the last outgoing message, or "" when there is none. */
static const char *last(const struct blazebot_test_host *th) {
  size_t n = blazebot_test_reply_count(th);
  return n ? blazebot_test_reply_text(th, n - 1) : "";
}

/* No greeting ever shows a profile placeholder. */
static void check_no_leftovers(const struct blazebot_test_host *th) {
  size_t i;
  for (i = 0; i < blazebot_test_reply_count(th); i++) {
    const char *t = blazebot_test_reply_text(th, i);
    CHECK(!strstr(t, "{full_name}") && !strstr(t, "{identity_number}"));
  }
}

/* The latest delivery ended, with result. */
static void check_ended(const struct blazebot_test_host *th, int result) {
  int r = -99;
  CHECK_INT(blazebot_test_outcome(th, NULL, &r), 1);
  CHECK_INT(r, result);
}

static void test_greets(void) {
  struct blazebot_test_host th;
  const struct blazebot_test_sent *s;
  int32_t prio = -1;
  char held[64];
  blazebot_test_init(&th);
  CHECK_INT(blazebot_test_load(&th, blazebot_plugin_v1()), 0);
  CHECK(blazebot_test_subscribes(&th, "SYSTEM_CONVERSATION", &prio));
  CHECK_INT(prio, 0);
  CHECK(!blazebot_test_subscribes(&th, "PLAIN_TEXT", NULL));
  CHECK(th.desc.reconfigure != NULL);

  /* ADD: looked up under a hold, greeted when the answer comes. */
  blazebot_test_api_script(&th, "GET", BOB_PATH, 200, 0, profile_body(BOB, "Bob"), 300);
  CHECK_INT(event(&th, "ADD", BOB), BLAZEBOT_PASS);
  snprintf(held, sizeof held, "%s", th.msg.message_id);
  CHECK_INT(blazebot_test_api_count(&th), 1);
  CHECK_STR(blazebot_test_api(&th, 0)->method, "GET");
  CHECK_STR(blazebot_test_api(&th, 0)->path, BOB_PATH);
  CHECK_INT(blazebot_test_reply_count(&th), 0);
  CHECK_INT(blazebot_test_holds(&th, held), 1);
  CHECK_INT(blazebot_test_outcome(&th, held, NULL), 0);

  /* Meanwhile: a JOIN of someone else, answered first. */
  blazebot_test_api_script(&th, "GET", EVE_PATH, 200, 0, profile_body(EVE, "Eve"), 100);
  CHECK_INT(event(&th, "JOIN", EVE), BLAZEBOT_PASS);
  CHECK_INT(blazebot_test_hold_count(&th), 2);
  CHECK_INT(event(&th, "REMOVE", BOB), BLAZEBOT_PASS);
  check_ended(&th, BLAZEBOT_PASS);
  CHECK_INT(blazebot_test_hold_count(&th), 2);

  blazebot_test_fire_timers(&th, 100);
  CHECK_INT(blazebot_test_reply_count(&th), 1);
  CHECK_STR(last(&th), "Welcome, Eve!");
  CHECK_INT(blazebot_test_hold_count(&th), 1);
  blazebot_test_fire_timers(&th, 200);
  CHECK_INT(blazebot_test_reply_count(&th), 2);
  s = blazebot_test_reply(&th, 1);
  CHECK_STR(s->data, "Welcome, Bob!");
  /* To the group: a send, no recipient, tied to the system message. */
  CHECK(!s->is_reply);
  CHECK_STR(s->conversation_id, BLAZEBOT_TEST_CONVERSATION_ID);
  CHECK_STR(s->recipient_id, "");
  CHECK_STR(s->category, "PLAIN_TEXT");
  CHECK_STR(s->tied_to, held);
  CHECK_INT(s->ordinal, 1);
  CHECK_INT(blazebot_test_holds(&th, held), 0);
  {
    int r = -99;
    CHECK_INT(blazebot_test_outcome(&th, held, &r), 1);
    CHECK_INT(r, BLAZEBOT_PASS);
  }
  CHECK_INT(blazebot_test_hold_count(&th), 0);

  /* Bob again within the TTL (left and came back): from the cache, at once.
   * His profile came at 300 ms; the default TTL is 600 s. */
  CHECK_INT(blazebot_test_now(&th, BLAZEBOT_CLOCK_MONOTONIC), 300);
  blazebot_test_fire_timers(&th, 600 * 1000 - 1);
  CHECK_INT(event(&th, "JOIN", BOB), BLAZEBOT_PASS);
  CHECK_STR(last(&th), "Welcome, Bob!");
  CHECK_INT(blazebot_test_find_delivery(&th, NULL)->taken, 0);
  CHECK_STR(blazebot_test_reply(&th, 2)->tied_to, th.msg.message_id);
  CHECK_INT(blazebot_test_api_count(&th), 2);
  /* At the default TTL (600 s after the answer): asked again. */
  blazebot_test_fire_timers(&th, 1);
  blazebot_test_api_script(&th, "GET", BOB_PATH, 200, 0, profile_body(BOB, "Robert"), 0);
  CHECK_INT(event(&th, "ADD", BOB), BLAZEBOT_PASS);
  CHECK_INT(blazebot_test_api_count(&th), 3);
  CHECK_STR(last(&th), "Welcome, Robert!");
  check_ended(&th, BLAZEBOT_PASS);
  CHECK_INT(blazebot_test_scripts_left(&th), 0);
  check_no_leftovers(&th);
  CHECK_INT(th.violations, 0);
  blazebot_test_unload(&th);
}

static void test_ignored(void) {
  static const char *const actions[] = {
      "REMOVE", "EXIT", "ROLE", "CREATE", "UPDATE", "DISAPPEARING", "add", "Join", ""};
  static const char *const bad_data[] = {
      "",
      "not json",
      "{\"action\":\"ADD\",\"participant_id\":\"" BOB "\"",
      "[\"ADD\"]",
      "{\"action\":\"ADD\",\"participant_id\":null}",
      "{\"action\":\"ADD\",\"participant_id\":\"../../me\"}",
      "{\"action\":\"ADD\",\"participant_id\":\"" BOB "/x\"}",
      "{\"action\":\"ADD\",\"participant_id\":42}",
      "{\"action\":null,\"participant_id\":\"" BOB "\"}",
  };
  struct blazebot_test_host th;
  size_t i;
  blazebot_test_init(&th);
  blazebot_test_api_default(&th, 200, 0, profile_body(BOB, "Bob"), 0);
  CHECK_INT(blazebot_test_load(&th, blazebot_plugin_v1()), 0);
  for (i = 0; i < sizeof actions / sizeof actions[0]; i++) {
    CHECK_INT(event(&th, actions[i], BOB), BLAZEBOT_PASS);
    check_ended(&th, BLAZEBOT_PASS);
  }
  CHECK_INT(event(&th, "ADD", NULL), BLAZEBOT_PASS);
  for (i = 0; i < sizeof bad_data / sizeof bad_data[0]; i++)
    CHECK_INT(raw_event(&th, bad_data[i]), BLAZEBOT_PASS);
  /* The bot itself added to a group: nobody to greet. */
  CHECK_INT(event(&th, "ADD", BLAZEBOT_TEST_BOT_ID), BLAZEBOT_PASS);
  /* Other categories (through an ini `categories`) are not system messages. */
  CHECK_INT(blazebot_test_deliver(
                &th, blazebot_test_message(&th, "PLAIN_TEXT",
                                           "{\"action\":\"ADD\",\"participant_id\":\"" BOB
                                           "\"}")),
            BLAZEBOT_PASS);
  CHECK_INT(blazebot_test_reply_count(&th), 0);
  CHECK_INT(blazebot_test_api_count(&th), 0);
  CHECK_INT(blazebot_test_hold_count(&th), 0);
  /* An upper-case participant id is the same user. */
  CHECK_INT(event(&th, "ADD", "77777777-7777-4777-8777-77777777777A"), BLAZEBOT_PASS);
  CHECK_STR(blazebot_test_api(&th, 0)->path,
            "/users/77777777-7777-4777-8777-77777777777a");
  CHECK_INT(th.violations, 0);
  blazebot_test_unload(&th);
}

static void test_failures(void) {
  static const struct {
    int32_t status, code;
    const char *body;
    uint32_t delay_ms;
  } bad[] = {
      {404, 10404, "{\"error\":{\"status\":404,\"code\":10404}}", 0},
      {500, 0, "", 0},
      {0, 0, NULL, 0},
      {200, 0, NULL, 60000}, /* past the 10 s deadline */
      {200, 0, "<html>oops</html>", 0},
      {200, 0, "{\"data\":{\"user_id\":\"" BOB "\",\"identity_number\":\"1\"}}", 0},
      {200, 0,
       "{\"data\":{\"user_id\":\"" EVE
       "\",\"identity_number\":\"1\",\"full_name\":\"Eve\"}}",
       0},
      {200, 0,
       "{\"data\":{\"user_id\":\"" BOB
       "\",\"identity_number\":\"1\",\"full_name\":\"B\\q\"}}",
       0},
  };
  size_t i;
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int pass;
    for (pass = 0; pass < 2; pass++) {
      struct blazebot_test_host th;
      const char *want = pass ? "Hello, friend " BOB "!" : "Welcome!";
      blazebot_test_init(&th);
      if (pass)
        blazebot_test_set_config(&th, "text_unknown", "Hello, friend {user_id}!");
      CHECK_INT(blazebot_test_load(&th, blazebot_plugin_v1()), 0);
      blazebot_test_api_script(&th, "GET", BOB_PATH, bad[i].status, bad[i].code,
                               bad[i].body, bad[i].delay_ms);
      CHECK_INT(event(&th, "ADD", BOB), BLAZEBOT_PASS);
      blazebot_test_fire_timers(&th, 60000);
      CHECK_INT(blazebot_test_reply_count(&th), 1);
      CHECK_STR(last(&th), want);
      if (strcmp(last(&th), want) != 0)
        fprintf(stderr, "  case %zu\n", i);
      CHECK(!blazebot_test_reply(&th, 0)->is_reply);
      CHECK(blazebot_test_log_contains(&th, "profile of " BOB " not available"));
      check_ended(&th, BLAZEBOT_PASS);
      CHECK_INT(blazebot_test_hold_count(&th), 0);
      check_no_leftovers(&th);
      CHECK_INT(th.violations, 0);
      blazebot_test_unload(&th);
    }
  }
}

static void test_texts_and_unicode(void) {
  struct blazebot_test_host th;
  /* Escapes and unicode in the name; PLAIN_TEXT, so nothing is escaped. */
  blazebot_test_init(&th);
  blazebot_test_set_config(&th, "text",
                           "\\u263a {full_name} (#{identity_number}, {user_id})\\nHi!");
  CHECK_INT(blazebot_test_load(&th, blazebot_plugin_v1()), 0);
  blazebot_test_api_script(&th, "GET", BOB_PATH, 200, 0,
                           profile_body(BOB, "\\\"Bobby\\\" \\u0026 \\u00c9mile "
                                             "\\ud83c\\udf89 *_x_* \xE4\xB8\xAD"),
                           0);
  CHECK_INT(event(&th, "JOIN", BOB), BLAZEBOT_PASS);
  CHECK_STR(last(&th),
            "\\u263a \"Bobby\" & \xC3\x89mile \xF0\x9F\x8E\x89 *_x_* \xE4\xB8\xAD"
            " (#7000104321, " BOB ")\nHi!");
  blazebot_test_unload(&th);

  /* A text without profile placeholders needs no lookup and no hold. */
  blazebot_test_init(&th);
  blazebot_test_set_config(&th, "text", "Hello {user_id}, {name}!");
  CHECK_INT(blazebot_test_load(&th, blazebot_plugin_v1()), 0);
  CHECK_INT(event(&th, "ADD", BOB), BLAZEBOT_PASS);
  CHECK_STR(last(&th), "Hello " BOB ", {name}!");
  CHECK_INT(blazebot_test_find_delivery(&th, NULL)->taken, 0);
  CHECK_INT(blazebot_test_api_count(&th), 0);
  CHECK_INT(th.violations, 0);
  blazebot_test_unload(&th);
}

static void test_old_host_and_refusals(void) {
  struct blazebot_test_host th;
  /* A minor-0 daemon: loads, greets without the name. */
  blazebot_test_init(&th);
  CHECK_INT(blazebot_test_set_abi_minor(&th, 0), 0);
  CHECK_INT(blazebot_test_load(&th, blazebot_plugin_v1()), 0);
  CHECK_INT(event(&th, "ADD", BOB), BLAZEBOT_PASS);
  CHECK_STR(last(&th), "Welcome!");
  CHECK_STR(blazebot_test_reply(&th, 0)->tied_to, th.msg.message_id);
  CHECK_INT(th.violations, 0);
  blazebot_test_unload(&th);

  /* api_request refused: greeted without the name at once. */
  blazebot_test_init(&th);
  CHECK_INT(blazebot_test_load(&th, blazebot_plugin_v1()), 0);
  th.fail_api = 1;
  CHECK_INT(event(&th, "ADD", BOB), BLAZEBOT_PASS);
  CHECK_STR(last(&th), "Welcome!");
  check_ended(&th, BLAZEBOT_PASS);
  CHECK_INT(blazebot_test_hold_count(&th), 0);
  /* ... and the outbox full too: RETRY at once, the hold released. */
  th.fail_sends = 1;
  CHECK_INT(event(&th, "ADD", BOB), BLAZEBOT_RETRY);
  check_ended(&th, BLAZEBOT_RETRY);
  CHECK_INT(blazebot_test_hold_count(&th), 0);
  th.fail_api = 0;
  CHECK_INT(blazebot_test_reply_count(&th), 1);

  /* The outbox full when the answer comes: the hold goes as RETRY, and the
   * next attempt greets from the cache. */
  blazebot_test_api_script(&th, "GET", BOB_PATH, 200, 0, profile_body(BOB, "Bob"), 50);
  th.fail_sends = 0;
  {
    struct blazebot_message *m = blazebot_test_message(
        &th, "SYSTEM_CONVERSATION",
        "{\"action\":\"ADD\",\"participant_id\":\"" BOB "\",\"user_id\":\"\"}");
    CHECK_INT(blazebot_test_deliver(&th, m), BLAZEBOT_PASS);
    th.fail_sends = 1;
    blazebot_test_fire_timers(&th, 50);
    th.fail_sends = 0;
    check_ended(&th, BLAZEBOT_RETRY);
    m->attempt = 2;
    CHECK_INT(blazebot_test_deliver(&th, m), BLAZEBOT_PASS);
    CHECK_STR(last(&th), "Welcome, Bob!");
    CHECK_INT(blazebot_test_api_count(&th), 1);
  }
  CHECK_INT(blazebot_test_hold_count(&th), 0);
  CHECK_INT(th.violations, 0);
  blazebot_test_unload(&th);

  /* Unloaded while a lookup waits: no answer, greeted without the name,
   * the hold released before shutdown. */
  blazebot_test_init(&th);
  CHECK_INT(blazebot_test_load(&th, blazebot_plugin_v1()), 0);
  blazebot_test_api_script(&th, "GET", BOB_PATH, 200, 0, profile_body(BOB, "Bob"), 5000);
  CHECK_INT(event(&th, "ADD", BOB), BLAZEBOT_PASS);
  CHECK_INT(blazebot_test_hold_count(&th), 1);
  blazebot_test_unload(&th);
  CHECK_INT(blazebot_test_hold_count(&th), 0);
  check_ended(&th, BLAZEBOT_PASS);
  CHECK_INT(th.violations, 0);
}

static void test_sections(void) {
  static const struct {
    const char *key, *value, *why;
  } bad[] = {
      {"text", "", "text must not be empty"},
      {"text_unknown", "", "text_unknown must not be empty"},
      {"text_unknown", "Hi {full_name}", "text_unknown cannot use"},
      {"profile_ttl_s", "-1", "profile_ttl_s"},
      {"profile_cache_max", "x", "profile_cache_max"},
  };
  struct blazebot_test_host th;
  size_t i;
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    blazebot_test_init(&th);
    blazebot_test_set_config(&th, bad[i].key, bad[i].value);
    CHECK_INT(blazebot_test_load(&th, blazebot_plugin_v1()), -1);
    CHECK(strstr(th.error, bad[i].why) != NULL);
    if (!strstr(th.error, bad[i].why))
      fprintf(stderr, "  error was: %s\n", th.error);
    blazebot_test_unload(&th);
  }

  /* Reconfigure: new texts; a bad section is refused and the old one stays;
   * profile_cache_max = 0 empties the cache. */
  blazebot_test_init(&th);
  CHECK_INT(blazebot_test_load(&th, blazebot_plugin_v1()), 0);
  blazebot_test_api_script(&th, "GET", BOB_PATH, 200, 0, profile_body(BOB, "Bob"), 0);
  CHECK_INT(event(&th, "ADD", BOB), BLAZEBOT_PASS);
  blazebot_test_set_config(&th, "text", "Hey {full_name}");
  CHECK_INT(blazebot_test_reconfigure(&th), 0);
  CHECK_INT(event(&th, "ADD", BOB), BLAZEBOT_PASS);
  CHECK_STR(last(&th), "Hey Bob");
  CHECK_INT(blazebot_test_api_count(&th), 1);
  blazebot_test_set_config(&th, "text_unknown", "{identity_number}");
  CHECK_INT(blazebot_test_reconfigure(&th), -1);
  CHECK(blazebot_test_log_contains(&th, "text_unknown cannot use"));
  blazebot_test_set_config(&th, "text_unknown", NULL);
  blazebot_test_set_config(&th, "profile_cache_max", "0");
  CHECK_INT(blazebot_test_reconfigure(&th), 0);
  blazebot_test_api_script(&th, "GET", BOB_PATH, 404, 10404, NULL, 0);
  CHECK_INT(event(&th, "ADD", BOB), BLAZEBOT_PASS);
  CHECK_INT(blazebot_test_api_count(&th), 2);
  CHECK_STR(last(&th), "Welcome!");
  CHECK_INT(th.violations, 0);
  blazebot_test_unload(&th);
}

int main(void) {
  test_greets();
  test_ignored();
  test_failures();
  test_texts_and_unicode();
  test_old_host_and_refusals();
  test_sections();
  return check_done("plugins.welcome");
}
