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
 *
 * Profile placeholders: {user_id} without a lookup; {full_name} and
 * {identity_number} through GET /users/{id} under a hold (other messages
 * answered meanwhile, the hold released HANDLED), cached for profile_ttl_s on
 * the fake clock and at most profile_cache_max (LRU); every failure (HTTP and
 * Mixin errors, no answer, bodies that are not valid JSON or not a profile)
 * gives the polite unavailable text and never a leftover placeholder; a
 * minor-0 host and a refused api_request too; JSON escapes and unicode names;
 * Markdown escaping with PLAIN_POST. The shared JSON reader (pj_strings) is
 * also tested directly.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <blazebot/testing.h>

#include "../../plugins/common/profile.h"
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
  /* Without profile placeholders: no lookup, no hold, answered at once. */
  CHECK_INT(blazebot_test_api_count(&th), 0);
  CHECK_INT(blazebot_test_find_delivery(&th, NULL)->taken, 0);
  CHECK_INT(blazebot_test_results_pending(&th), 0);
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

/* ---- profile placeholders ---------------------------------------------------------- */

#define USER_PATH "/users/" BLAZEBOT_TEST_USER_ID
#define OTHER_ID "66666666-6666-4666-8666-666666666666"
#define UNAVAILABLE "Sorry, I could not look up your profile right now."
#define PROFILE_OK_BODY                                                                  \
  "{\"data\":{\"user_id\":\"" BLAZEBOT_TEST_USER_ID "\",\"identity_number\":\"7\","      \
  "\"full_name\":\"Looks Fine\"}}"

/* A GET /users answer as Mixin sends it; name is JSON string content. */
static const char *profile_body(const char *user_id, const char *name) {
  static char body[2048];
  snprintf(
      body, sizeof body,
      "{\"data\":{\"type\":\"user\",\"user_id\":\"%s\",\"identity_number\":"
      "\"7000101234\",\"phone\":\"\",\"full_name\":\"%s\",\"biography\":\"a "
      "\\\"bio\\\"\","
      "\"avatar_url\":\"https:\\/\\/x\\/y.png\",\"relationship\":\"STRANGER\","
      "\"mute_until\":\"0001-01-01T00:00:00Z\",\"created_at\":\"2024-01-01T00:00:00Z\","
      "\"is_verified\":false,\"is_scam\":false,\"app\":null,\"badges\":[1,-2.5e3,"
      "{\"full_name\":\"nested\"},[]],\"membership\":{\"plan\":\"none\"}}}",
      user_id, name);
  return body;
}

/* No reply ever shows a profile placeholder. */
static void check_no_leftovers(const struct blazebot_test_host *th) {
  size_t i;
  for (i = 0; i < blazebot_test_reply_count(th); i++) {
    const char *t = blazebot_test_reply_text(th, i);
    CHECK(!strstr(t, "{full_name}") && !strstr(t, "{identity_number}"));
    if (strstr(t, "{full_name}") || strstr(t, "{identity_number}"))
      fprintf(stderr, "  leftover in reply %zu: %s\n", i, t);
  }
}

/* The outcome of the latest delivery: 1 and its result once it ended. */
static int ended_with(const struct blazebot_test_host *th, int *result) {
  return blazebot_test_outcome(th, NULL, result);
}

static void setup_profile(struct blazebot_test_host *th) {
  setup(th);
  blazebot_test_set_config(th, "commands", "about, ping, whoami, id, braces");
  blazebot_test_set_config(th, "command.whoami",
                           "You are {full_name} ({identity_number})");
  blazebot_test_set_config(th, "command.id", "Your id: {user_id}");
  blazebot_test_set_config(th, "command.braces", "{name} {} {full_name {USER_ID}");
}

static void test_json_reader(void) {
  static const char *const keys[] = {"a", "b"};
  static const struct {
    const char *json, *container;
    int rc;
    const char *a, *b; /* expected picks (NULL = none) */
  } cases[] = {
      {"{\"a\":\"x\",\"b\":\"y\"}", NULL, 0, "x", "y"},
      {" \t\r\n{ \"b\" : \"\" , \"a\" : \"1\" } \n", NULL, 0, "1", ""},
      {"{\"a\":1,\"b\":null}", NULL, 0, NULL, NULL},
      {"{\"a\":\"first\",\"a\":\"last\"}", NULL, 0, "last", NULL},
      {"{\"a\":\"first\",\"a\":2}", NULL, 0, NULL, NULL},
      {"{\"\\u0061\":\"esc key\"}", NULL, 0, "esc key", NULL},
      {"{\"a\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}", NULL, 0, "\"\\/\b\f\n\r\t", NULL},
      {"{\"a\":\"\\u00e9\\u4E2D\\ud83d\\ude00\"}", NULL, 0,
       "\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80", NULL},
      {"{\"a\":\"Zo\xC3\xAB \xF0\x9F\x8E\x89\"}", NULL, 0, "Zo\xC3\xAB \xF0\x9F\x8E\x89",
       NULL},
      {"{\"a\":\"nul\\u0000\",\"b\":\"ok\"}", NULL, 0, NULL, "ok"},
      {"{\"x\":{\"a\":\"deep\"},\"a\":[\"no\"],\"b\":\"top\"}", NULL, 0, NULL, "top"},
      {"{\"data\":{\"a\":\"in\"},\"a\":\"out\"}", "data", 0, "in", NULL},
      {"{\"data\":{\"x\":{\"a\":\"nested\"}}}", "data", 0, NULL, NULL},
      {"{\"data\":{\"a\":\"1\"},\"data\":{\"b\":\"2\"}}", "data", 0, NULL, "2"},
      {"{\"data\":null}", "data", PJ_NO_OBJECT, NULL, NULL},
      {"{\"error\":{\"code\":10404}}", "data", PJ_NO_OBJECT, NULL, NULL},
      {"[{\"a\":\"x\"}]", NULL, PJ_NO_OBJECT, NULL, NULL},
      {"\"a\"", NULL, PJ_NO_OBJECT, NULL, NULL},
      {"{\"n\":[-0,1.5,2e10,-3E-2,0.0e+1,true,false,null,{},[]],\"a\":\"ok\"}", NULL, 0,
       "ok", NULL},
      /* Malformed. */
      {"", NULL, PJ_MALFORMED, NULL, NULL},
      {"not json", NULL, PJ_MALFORMED, NULL, NULL},
      {"{\"a\":\"x\"", NULL, PJ_MALFORMED, NULL, NULL},
      {"{\"a\":\"x}", NULL, PJ_MALFORMED, NULL, NULL},
      {"{\"a\":\"x\"} x", NULL, PJ_MALFORMED, NULL, NULL},
      {"{\"a\":\"x\"}{}", NULL, PJ_MALFORMED, NULL, NULL},
      {"{\"a\":\"x\",}", NULL, PJ_MALFORMED, NULL, NULL},
      {"{,\"a\":\"x\"}", NULL, PJ_MALFORMED, NULL, NULL},
      {"{\"a\" \"x\"}", NULL, PJ_MALFORMED, NULL, NULL},
      {"{a:\"x\"}", NULL, PJ_MALFORMED, NULL, NULL},
      {"{'a':'x'}", NULL, PJ_MALFORMED, NULL, NULL},
      {"{\"a\":\"\\x\"}", NULL, PJ_MALFORMED, NULL, NULL},
      {"{\"a\":\"\\u12\"}", NULL, PJ_MALFORMED, NULL, NULL},
      {"{\"a\":\"\\u12G4\"}", NULL, PJ_MALFORMED, NULL, NULL},
      {"{\"a\":\"\\ud83d\"}", NULL, PJ_MALFORMED, NULL, NULL},
      {"{\"a\":\"\\ud83d\\u0041\"}", NULL, PJ_MALFORMED, NULL, NULL},
      {"{\"a\":\"\\ude00\"}", NULL, PJ_MALFORMED, NULL, NULL},
      {"{\"a\":\"tab\there\"}", NULL, PJ_MALFORMED, NULL, NULL},
      {"{\"a\":\"line\nbreak\"}", NULL, PJ_MALFORMED, NULL, NULL},
      {"{\"a\":\"\xC3\"}", NULL, PJ_MALFORMED, NULL, NULL},
      {"{\"a\":\"\xC0\xAF\"}", NULL, PJ_MALFORMED, NULL, NULL},
      {"{\"a\":\"\xED\xA0\x80\"}", NULL, PJ_MALFORMED, NULL, NULL},
      {"{\"a\":\"\xF4\x90\x80\x80\"}", NULL, PJ_MALFORMED, NULL, NULL},
      {"{\"a\":\"\xFF\"}", NULL, PJ_MALFORMED, NULL, NULL},
      {"{\"n\":01}", NULL, PJ_MALFORMED, NULL, NULL},
      {"{\"n\":1.}", NULL, PJ_MALFORMED, NULL, NULL},
      {"{\"n\":.5}", NULL, PJ_MALFORMED, NULL, NULL},
      {"{\"n\":+1}", NULL, PJ_MALFORMED, NULL, NULL},
      {"{\"n\":1e}", NULL, PJ_MALFORMED, NULL, NULL},
      {"{\"n\":tru}", NULL, PJ_MALFORMED, NULL, NULL},
      {"{\"n\":nul}", NULL, PJ_MALFORMED, NULL, NULL},
      {"{\"n\":[1,]}", NULL, PJ_MALFORMED, NULL, NULL},
      {"{\"n\":[1 2]}", NULL, PJ_MALFORMED, NULL, NULL},
      {"{\"data\":{\"a\":\"x\"}", "data", PJ_MALFORMED, NULL, NULL},
  };
  char deep[2 * PJ_MAX_DEPTH + 16], *out[2];
  size_t i, d;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int rc = pj_strings(cases[i].json, strlen(cases[i].json), cases[i].container, keys, 2,
                        out);
    CHECK_INT(rc, cases[i].rc);
    if (rc != cases[i].rc)
      fprintf(stderr, "  case %zu: %s\n", i, cases[i].json);
    CHECK(cases[i].a ? out[0] && strcmp(out[0], cases[i].a) == 0 : !out[0]);
    CHECK(cases[i].b ? out[1] && strcmp(out[1], cases[i].b) == 0 : !out[1]);
    free(out[0]);
    free(out[1]);
  }
  /* A NUL byte inside the length is not the end of the document. */
  CHECK_INT(pj_strings("{\"a\":\"x\"}\0", 10, NULL, keys, 2, out), PJ_MALFORMED);
  CHECK_INT(pj_strings("{\"a\":\"x\0y\"}", 11, NULL, keys, 2, out), PJ_MALFORMED);
  CHECK(!out[0] && !out[1]);
  /* Only len bytes are read: a prefix of a valid document is not one. */
  CHECK_INT(pj_strings("{\"a\":\"x\"}", 8, NULL, keys, 2, out), PJ_MALFORMED);
  /* Nesting: PJ_MAX_DEPTH levels are fine, one more is refused. */
  for (d = 0; d < 2; d++) {
    size_t n = PJ_MAX_DEPTH - 1 + d, o = 0;
    deep[o++] = '{';
    deep[o++] = '"';
    deep[o++] = 'x';
    deep[o++] = '"';
    deep[o++] = ':';
    for (i = 0; i < n; i++)
      deep[o++] = '[';
    for (i = 0; i < n; i++)
      deep[o++] = ']';
    deep[o++] = '}';
    deep[o] = '\0';
    CHECK_INT(pj_strings(deep, o, NULL, keys, 2, out), d ? PJ_MALFORMED : 0);
  }
}

static void test_templates(void) {
  struct profile p;
  char *t;
  p.user_id = OTHER_ID;
  p.identity_number = "7000";
  p.full_name = "A_b *c* [d](e) `f` \\g";
  CHECK_INT(tpl_scan("plain {name} {}"), 0);
  CHECK_INT(tpl_scan("{user_id}"), TPL_USES_USER_ID);
  CHECK_INT(tpl_scan("{identity_number}"), TPL_USES_PROFILE);
  CHECK_INT(tpl_scan("{{full_name}} {user_id}"), TPL_USES_PROFILE | TPL_USES_USER_ID);
  t = tpl_expand("{{full_name}} {identity_number}{user_id} {FULL_NAME} {", "U", &p, 0);
  CHECK_STR(t, "{A_b *c* [d](e) `f` \\g} 7000U {FULL_NAME} {");
  free(t);
  t = tpl_expand("**{full_name}** ({identity_number})", "U", &p, 1);
  CHECK_STR(t, "**A\\_b \\*c\\* \\[d\\](e) \\`f\\` \\\\g** (7000)");
  free(t);
  t = tpl_expand("", "U", NULL, 0);
  CHECK_STR(t, "");
  free(t);
  CHECK(profile_valid_id(BLAZEBOT_TEST_USER_ID));
  CHECK(profile_valid_id("ABCDEF01-2345-6789-abcd-ef0123456789"));
  CHECK(!profile_valid_id("../../me"));
  CHECK(!profile_valid_id(BLAZEBOT_TEST_USER_ID "0"));
  CHECK(!profile_valid_id("33333333-3333-4333-8333-33333333333"));
  CHECK(!profile_valid_id("33333333-3333-4333-8333_333333333333"));
  CHECK(!profile_valid_id("3333333g-3333-4333-8333-333333333333"));
  CHECK(!profile_valid_id(""));
}

static void test_profile_lookup(void) {
  struct blazebot_test_host th;
  const struct blazebot_test_api_call *call;
  const struct blazebot_test_sent *r;
  char held_id[64];
  int result = -99;
  setup_profile(&th);
  CHECK_INT(blazebot_test_load(&th, blazebot_plugin_v1()), 0);
  CHECK_INT(blazebot_test_api_script(
                &th, "GET", USER_PATH, 200, 0,
                profile_body(BLAZEBOT_TEST_USER_ID, "Alice \\\"A\\\" B\\\\C\\/D"), 500),
            0);

  /* The lookup: held, asked, no reply yet. */
  CHECK_INT(say(&th, "/whoami"), BLAZEBOT_HANDLED);
  snprintf(held_id, sizeof held_id, "%s", th.msg.message_id);
  CHECK_INT(blazebot_test_reply_count(&th), 0);
  CHECK_INT(blazebot_test_api_count(&th), 1);
  call = blazebot_test_api(&th, 0);
  CHECK_STR(call->method, "GET");
  CHECK_STR(call->path, USER_PATH);
  CHECK_INT(call->body_len, 0);
  CHECK_INT(blazebot_test_holds(&th, held_id), 1);
  CHECK_INT(blazebot_test_outcome(&th, held_id, &result), 0);

  /* Meanwhile other messages are answered at once, {user_id} without a
   * lookup, and text with other braces stays literal. */
  CHECK_INT(say(&th, "/ping"), BLAZEBOT_HANDLED);
  CHECK_STR(last(&th), "pong");
  CHECK_INT(ended_with(&th, &result), 1);
  CHECK_INT(say(&th, "/id"), BLAZEBOT_HANDLED);
  CHECK_STR(last(&th), "Your id: " BLAZEBOT_TEST_USER_ID);
  CHECK_INT(say(&th, "/braces"), BLAZEBOT_HANDLED);
  CHECK_STR(last(&th), "{name} {} {full_name {USER_ID}");
  CHECK_INT(say(&th, "hello"), BLAZEBOT_PASS);
  CHECK_INT(blazebot_test_api_count(&th), 1);
  CHECK_INT(blazebot_test_hold_count(&th), 1);

  /* The answer: the reply under the hold, then the hold goes as HANDLED. */
  blazebot_test_fire_timers(&th, 499);
  CHECK_INT(blazebot_test_reply_count(&th), 3);
  blazebot_test_fire_timers(&th, 1);
  CHECK_INT(blazebot_test_reply_count(&th), 4);
  r = blazebot_test_reply(&th, 3);
  CHECK_STR(r->data, "You are Alice \"A\" B\\C/D (7000101234)");
  CHECK(r->is_reply);
  CHECK_STR(r->category, "PLAIN_TEXT");
  CHECK_STR(r->recipient_id, BLAZEBOT_TEST_USER_ID);
  CHECK_STR(r->tied_to, held_id);
  CHECK_INT(blazebot_test_holds(&th, held_id), 0);
  CHECK_INT(blazebot_test_outcome(&th, held_id, &result), 1);
  CHECK_INT(result, BLAZEBOT_HANDLED);
  CHECK_INT(blazebot_test_hold_count(&th), 0);

  /* Within the TTL: from the cache, at once, no hold, no call. */
  blazebot_test_fire_timers(&th, 60 * 1000);
  CHECK_INT(say(&th, "/whoami"), BLAZEBOT_HANDLED);
  CHECK_STR(last(&th), "You are Alice \"A\" B\\C/D (7000101234)");
  CHECK_INT(blazebot_test_find_delivery(&th, NULL)->taken, 0);
  CHECK_INT(blazebot_test_api_count(&th), 1);
  CHECK_INT(blazebot_test_scripts_left(&th), 0);
  check_no_leftovers(&th);
  CHECK_INT(th.violations, 0);
  blazebot_test_unload(&th);
  CHECK_INT(blazebot_test_hold_count(&th), 0);
}

static void test_profile_cache_ttl(void) {
  struct blazebot_test_host th;
  int result = -99;
  setup_profile(&th);
  blazebot_test_set_config(&th, "profile_ttl_s", "60");
  CHECK_INT(blazebot_test_load(&th, blazebot_plugin_v1()), 0);
  blazebot_test_api_script(&th, "GET", USER_PATH, 200, 0,
                           profile_body(BLAZEBOT_TEST_USER_ID, "Old Name"), 0);
  CHECK_INT(say(&th, "/whoami"), BLAZEBOT_HANDLED);
  CHECK_STR(last(&th), "You are Old Name (7000101234)");
  CHECK_INT(ended_with(&th, &result), 1);
  CHECK_INT(result, BLAZEBOT_HANDLED);
  /* Just inside the TTL: cached. */
  blazebot_test_fire_timers(&th, 59999);
  CHECK_INT(say(&th, "/whoami"), BLAZEBOT_HANDLED);
  CHECK_STR(last(&th), "You are Old Name (7000101234)");
  CHECK_INT(blazebot_test_api_count(&th), 1);
  /* At the TTL: asked again, and the new name is used. */
  blazebot_test_fire_timers(&th, 1);
  blazebot_test_api_script(&th, "GET", USER_PATH, 200, 0,
                           profile_body(BLAZEBOT_TEST_USER_ID, "New Name"), 0);
  CHECK_INT(say(&th, "/whoami"), BLAZEBOT_HANDLED);
  CHECK_INT(blazebot_test_api_count(&th), 2);
  CHECK_STR(last(&th), "You are New Name (7000101234)");
  CHECK_INT(ended_with(&th, &result), 1);
  CHECK_INT(result, BLAZEBOT_HANDLED);
  blazebot_test_unload(&th);

  /* profile_ttl_s = 0: no cache at all. */
  setup_profile(&th);
  blazebot_test_set_config(&th, "profile_ttl_s", "0");
  CHECK_INT(blazebot_test_load(&th, blazebot_plugin_v1()), 0);
  blazebot_test_api_default(&th, 200, 0, profile_body(BLAZEBOT_TEST_USER_ID, "Bo"), 0);
  CHECK_INT(say(&th, "/whoami"), BLAZEBOT_HANDLED);
  CHECK_INT(say(&th, "/whoami"), BLAZEBOT_HANDLED);
  CHECK_INT(blazebot_test_api_count(&th), 2);
  CHECK_STR(last(&th), "You are Bo (7000101234)");
  CHECK_INT(th.violations, 0);
  blazebot_test_unload(&th);
}

/* /whoami from user_id, answered by its own scripted profile at once. */
static void whoami_from(struct blazebot_test_host *th, const char *user_id,
                        const char *name) {
  char path[64];
  struct blazebot_message *m = blazebot_test_message(th, "PLAIN_TEXT", "/whoami");
  snprintf(path, sizeof path, "/users/%s", user_id);
  blazebot_test_api_script(th, "GET", path, 200, 0, profile_body(user_id, name), 0);
  m->user_id = user_id;
  CHECK_INT(blazebot_test_deliver(th, m), BLAZEBOT_HANDLED);
}

static void test_profile_cache_cap(void) {
  static const char *const ids[] = {"aaaaaaaa-0000-4000-8000-000000000001",
                                    "aaaaaaaa-0000-4000-8000-000000000002",
                                    "aaaaaaaa-0000-4000-8000-000000000003"};
  struct blazebot_test_host th;
  setup_profile(&th);
  blazebot_test_set_config(&th, "profile_cache_max", "2");
  CHECK_INT(blazebot_test_load(&th, blazebot_plugin_v1()), 0);
  whoami_from(&th, ids[0], "One");
  whoami_from(&th, ids[1], "Two");
  CHECK_INT(blazebot_test_api_count(&th), 2);
  /* ids[0] used again: ids[1] is now the least recently used. */
  whoami_from(&th, ids[0], "One");
  CHECK_INT(blazebot_test_api_count(&th), 2);
  CHECK_STR(last(&th), "You are One (7000101234)");
  whoami_from(&th, ids[2], "Three"); /* evicts ids[1] */
  CHECK_INT(blazebot_test_api_count(&th), 3);
  whoami_from(&th, ids[0], "One");
  CHECK_INT(blazebot_test_api_count(&th), 3);
  whoami_from(&th, ids[2], "Three");
  CHECK_INT(blazebot_test_api_count(&th), 3);
  whoami_from(&th, ids[1], "Two");
  CHECK_INT(blazebot_test_api_count(&th), 4);
  CHECK_STR(last(&th), "You are Two (7000101234)");
  /* The scripts nobody asked for are the cached ones. */
  CHECK_INT(blazebot_test_scripts_left(&th), 3);
  CHECK_INT(blazebot_test_hold_count(&th), 0);
  CHECK_INT(th.violations, 0);
  blazebot_test_unload(&th);

  /* profile_cache_max = 0: nothing is kept. */
  setup_profile(&th);
  blazebot_test_set_config(&th, "profile_cache_max", "0");
  CHECK_INT(blazebot_test_load(&th, blazebot_plugin_v1()), 0);
  whoami_from(&th, ids[0], "One");
  whoami_from(&th, ids[0], "One");
  CHECK_INT(blazebot_test_api_count(&th), 2);
  blazebot_test_unload(&th);
}

static void test_profile_failures(void) {
  static const struct {
    int32_t status, code;
    const char *body;
    uint32_t delay_ms;
  } bad[] = {
      {404, 10404, "{\"error\":{\"status\":404,\"code\":10404,\"description\":\"x\"}}",
       0},
      {202, 10404, "{\"error\":{\"status\":202,\"code\":10404}}", 0},
      {500, 0, "{\"error\":{\"status\":500,\"code\":500}}", 0},
      {503, 0, "", 0},
      {0, 0, NULL, 0},        /* no answer */
      {200, 0, NULL, 20000},  /* past the deadline: no answer at 10 s */
      {200, 0, "garbage", 0}, /* not JSON */
      {200, 0, "", 0},        /* no body */
      {200, 0, "{\"data\":{\"user_id\":\"" BLAZEBOT_TEST_USER_ID "\",", 0}, /* cut */
      {200, 0, "{\"data\":null}", 0},
      {200, 0, "{\"data\":[]}", 0},
      {200, 0, "{\"data\":{}}", 0},
      {200, 0,
       "{\"data\":{\"user_id\":\"" BLAZEBOT_TEST_USER_ID
       "\",\"full_name\":\"No Number\"}}",
       0},
      {200, 0,
       "{\"data\":{\"user_id\":\"" BLAZEBOT_TEST_USER_ID "\",\"identity_number\":\"7\","
       "\"full_name\":\"\"}}",
       0},
      {200, 0,
       "{\"data\":{\"user_id\":\"" BLAZEBOT_TEST_USER_ID "\",\"identity_number\":7,"
       "\"full_name\":\"Number Is Int\"}}",
       0},
      {200, 0,
       "{\"data\":{\"user_id\":\"" OTHER_ID "\",\"identity_number\":\"7\","
       "\"full_name\":\"Someone Else\"}}",
       0},
      {200, 0,
       "{\"data\":{\"user_id\":\"" BLAZEBOT_TEST_USER_ID "\",\"identity_number\":\"7\","
       "\"full_name\":\"Lone \\ud800 surrogate\"}}",
       0},
      {200, 0,
       "{\"data\":{\"user_id\":\"" BLAZEBOT_TEST_USER_ID "\",\"identity_number\":\"7\","
       "\"full_name\":\"Bad \xFF byte\"}}",
       0},
      {200, 0,
       "{\"data\":{\"user_id\":\"" BLAZEBOT_TEST_USER_ID "\",\"identity_number\":\"7\","
       "\"full_name\":\"Trailing\"}} x",
       0},
      {200, 0,
       "{\"data\":{\"user_id\":\"" BLAZEBOT_TEST_USER_ID "\",\"identity_number\":\"7\","
       "\"full_name\":\"Ctl\x01\"}}",
       0},
      /* A Mixin error with a 200 body that still looks like a profile. */
      {200, 403, PROFILE_OK_BODY, 0},
  };
  size_t i;
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int pass;
    for (pass = 0; pass < 2; pass++) {
      struct blazebot_test_host th;
      int result = -99;
      const char *want = pass ? "No profile for " BLAZEBOT_TEST_USER_ID "." : UNAVAILABLE;
      setup_profile(&th);
      if (pass)
        blazebot_test_set_config(&th, "command.whoami.unavailable",
                                 "No profile for {user_id}.");
      CHECK_INT(blazebot_test_load(&th, blazebot_plugin_v1()), 0);
      blazebot_test_api_script(&th, "GET", USER_PATH, bad[i].status, bad[i].code,
                               bad[i].body, bad[i].delay_ms);
      CHECK_INT(say(&th, "/whoami"), BLAZEBOT_HANDLED);
      blazebot_test_fire_timers(&th, 30000);
      CHECK_INT(blazebot_test_reply_count(&th), 1);
      CHECK_STR(last(&th), want);
      if (strcmp(last(&th), want) != 0)
        fprintf(stderr, "  case %zu\n", i);
      CHECK(blazebot_test_log_contains(&th, "profile of " BLAZEBOT_TEST_USER_ID
                                            " not available"));
      CHECK_INT(ended_with(&th, &result), 1);
      CHECK_INT(result, BLAZEBOT_HANDLED);
      CHECK_INT(blazebot_test_hold_count(&th), 0);
      /* Failures are not cached: the next /whoami asks again. */
      blazebot_test_api_script(&th, "GET", USER_PATH, 200, 0,
                               profile_body(BLAZEBOT_TEST_USER_ID, "Later"), 0);
      CHECK_INT(say(&th, "/whoami"), BLAZEBOT_HANDLED);
      CHECK_STR(last(&th), "You are Later (7000101234)");
      CHECK_INT(blazebot_test_api_count(&th), 2);
      check_no_leftovers(&th);
      CHECK_INT(th.violations, 0);
      blazebot_test_unload(&th);
    }
  }
  /* profile_unavailable: the section's text for every command. */
  {
    struct blazebot_test_host th;
    setup_profile(&th);
    blazebot_test_set_config(&th, "profile_unavailable", "Nope, {user_id}.\\nLater!");
    CHECK_INT(blazebot_test_load(&th, blazebot_plugin_v1()), 0);
    blazebot_test_api_script(&th, "GET", USER_PATH, 404, 10404, NULL, 0);
    CHECK_INT(say(&th, "/whoami"), BLAZEBOT_HANDLED);
    CHECK_STR(last(&th), "Nope, " BLAZEBOT_TEST_USER_ID ".\nLater!");
    blazebot_test_unload(&th);
  }
}

static void test_profile_unicode_and_markdown(void) {
  struct blazebot_test_host th;
  setup_profile(&th);
  CHECK_INT(blazebot_test_load(&th, blazebot_plugin_v1()), 0);
  /* \u escapes (a surrogate pair among them) and raw UTF-8 alike. */
  blazebot_test_api_script(&th, "GET", USER_PATH, 200, 0,
                           profile_body(BLAZEBOT_TEST_USER_ID,
                                        "Zo\xC3\xAB \\u00e9\\u4e2d\\uD83D\\uDE00 *_x_*"),
                           0);
  CHECK_INT(say(&th, "/whoami"), BLAZEBOT_HANDLED);
  /* PLAIN_TEXT: nothing escaped. */
  CHECK_STR(last(&th),
            "You are Zo\xC3\xAB \xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80 *_x_* (7000101234)");
  blazebot_test_unload(&th);

  /* PLAIN_POST: the name cannot turn into Markdown. */
  setup_profile(&th);
  blazebot_test_set_config(&th, "reply_category", "PLAIN_POST");
  blazebot_test_set_config(&th, "command.whoami", "You are **{full_name}**");
  CHECK_INT(blazebot_test_load(&th, blazebot_plugin_v1()), 0);
  blazebot_test_api_script(&th, "GET", USER_PATH, 200, 0,
                           profile_body(BLAZEBOT_TEST_USER_ID, "*_x_* [a](b)"), 0);
  CHECK_INT(say(&th, "/whoami"), BLAZEBOT_HANDLED);
  CHECK_STR(last(&th), "You are **\\*\\_x\\_\\* \\[a\\](b)**");
  CHECK_STR(blazebot_test_reply(&th, 0)->category, "PLAIN_POST");
  CHECK_INT(th.violations, 0);
  blazebot_test_unload(&th);
}

static void test_profile_old_host_and_refusals(void) {
  struct blazebot_test_host th;
  int result = -99;
  /* A minor-0 daemon: the plugin loads (it targets minor 0), and answers
   * profile commands with the unavailable text, without a hold. */
  setup_profile(&th);
  CHECK_INT(blazebot_test_set_abi_minor(&th, 0), 0);
  CHECK_INT(blazebot_test_load(&th, blazebot_plugin_v1()), 0);
  CHECK_INT(th.desc.abi_minor, 0);
  CHECK_INT(say(&th, "/whoami"), BLAZEBOT_HANDLED);
  CHECK_STR(last(&th), UNAVAILABLE);
  CHECK_INT(blazebot_test_find_delivery(&th, NULL)->taken, 0);
  CHECK_INT(say(&th, "/id"), BLAZEBOT_HANDLED);
  CHECK_STR(last(&th), "Your id: " BLAZEBOT_TEST_USER_ID);
  CHECK_INT(say(&th, "/ping"), BLAZEBOT_HANDLED);
  CHECK_STR(last(&th), "pong");
  CHECK_INT(th.violations, 0);
  blazebot_test_unload(&th);

  /* api_request refused: the unavailable text at once, the hold released. */
  setup_profile(&th);
  CHECK_INT(blazebot_test_load(&th, blazebot_plugin_v1()), 0);
  th.fail_api = 1;
  CHECK_INT(say(&th, "/whoami"), BLAZEBOT_HANDLED);
  CHECK_STR(last(&th), UNAVAILABLE);
  CHECK_INT(ended_with(&th, &result), 1);
  CHECK_INT(result, BLAZEBOT_HANDLED);
  CHECK_INT(blazebot_test_hold_count(&th), 0);
  th.fail_api = 0;

  /* A sender id that is not a UUID is never put into a path. */
  {
    struct blazebot_message *m = blazebot_test_message(&th, "PLAIN_TEXT", "/whoami");
    m->user_id = "../../me";
    CHECK_INT(blazebot_test_deliver(&th, m), BLAZEBOT_HANDLED);
    CHECK_STR(last(&th), UNAVAILABLE);
    CHECK_INT(blazebot_test_api_count(&th), 0);
  }
  CHECK_INT(th.violations, 0);
  blazebot_test_unload(&th);
}

static void test_profile_retry_and_unload(void) {
  struct blazebot_test_host th;
  struct blazebot_message *m;
  int result = -99;
  setup_profile(&th);
  CHECK_INT(blazebot_test_load(&th, blazebot_plugin_v1()), 0);
  blazebot_test_api_script(&th, "GET", USER_PATH, 200, 0,
                           profile_body(BLAZEBOT_TEST_USER_ID, "Carol"), 100);
  m = blazebot_test_message(&th, "PLAIN_TEXT", "/whoami");
  CHECK_INT(blazebot_test_deliver(&th, m), BLAZEBOT_HANDLED);
  /* The outbox is full when the answer comes: the message comes again. */
  th.fail_sends = 1;
  blazebot_test_fire_timers(&th, 100);
  th.fail_sends = 0;
  CHECK_INT(blazebot_test_reply_count(&th), 0);
  CHECK_INT(blazebot_test_outcome(&th, m->message_id, &result), 1);
  CHECK_INT(result, BLAZEBOT_RETRY);
  CHECK_INT(blazebot_test_hold_count(&th), 0);
  /* The next attempt finds the profile cached. */
  m->attempt = 2;
  CHECK_INT(blazebot_test_deliver(&th, m), BLAZEBOT_HANDLED);
  CHECK_STR(last(&th), "You are Carol (7000101234)");
  CHECK_INT(blazebot_test_api_count(&th), 1);

  /* A reconfigure while a lookup waits: it keeps the template it started with. */
  blazebot_test_api_script(&th, "GET", "/users/" OTHER_ID, 200, 0,
                           profile_body(OTHER_ID, "Dave"), 100);
  m = blazebot_test_message(&th, "PLAIN_TEXT", "/whoami");
  m->user_id = OTHER_ID;
  CHECK_INT(blazebot_test_deliver(&th, m), BLAZEBOT_HANDLED);
  blazebot_test_set_config(&th, "command.whoami", "Hi {full_name}");
  CHECK_INT(blazebot_test_reconfigure(&th), 0);
  blazebot_test_fire_timers(&th, 100);
  CHECK_STR(last(&th), "You are Dave (7000101234)");
  /* The cache survived the reconfigure. */
  CHECK_INT(say(&th, "/whoami"), BLAZEBOT_HANDLED);
  CHECK_STR(last(&th), "Hi Carol");
  CHECK_INT(blazebot_test_api_count(&th), 2);

  /* Unloaded while a lookup waits: it gets no answer, says so, and the
   * hold is released before shutdown. */
  blazebot_test_api_script(&th, "GET", USER_PATH, 200, 0,
                           profile_body(BLAZEBOT_TEST_USER_ID, "Too Late"), 5000);
  blazebot_test_set_config(&th, "profile_ttl_s", "0");
  CHECK_INT(blazebot_test_reconfigure(&th), 0);
  m = blazebot_test_message(&th, "PLAIN_TEXT", "/whoami");
  CHECK_INT(blazebot_test_deliver(&th, m), BLAZEBOT_HANDLED);
  CHECK_INT(blazebot_test_hold_count(&th), 1);
  CHECK_INT(th.violations, 0);
  blazebot_test_unload(&th);
  CHECK_INT(blazebot_test_hold_count(&th), 0);
  CHECK_INT(blazebot_test_outcome(&th, NULL, &result), 1);
  CHECK_INT(result, BLAZEBOT_HANDLED);
  CHECK(blazebot_test_log_contains(&th, "not available: no answer"));
  CHECK_INT(th.violations, 0);
}

static void test_profile_bad_sections_and_reconfigure(void) {
  static const struct {
    const char *key, *value, *why;
  } bad[] = {
      {"command.whoami.unavailable", "Hi {full_name}",
       "command.whoami.unavailable cannot"},
      {"profile_unavailable", "{identity_number}?", "profile_unavailable cannot"},
      {"profile_ttl_s", "-1", "profile_ttl_s"},
      {"profile_ttl_s", "2592001", "profile_ttl_s"},
      {"profile_ttl_s", "ten", "profile_ttl_s"},
      {"profile_cache_max", "100001", "profile_cache_max"},
      {"profile_cache_max", "-5", "profile_cache_max"},
  };
  size_t i;
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct blazebot_test_host th;
    setup_profile(&th);
    blazebot_test_set_config(&th, bad[i].key, bad[i].value);
    CHECK_INT(blazebot_test_load(&th, blazebot_plugin_v1()), -1);
    CHECK(strstr(th.error, bad[i].why) != NULL);
    if (!strstr(th.error, bad[i].why))
      fprintf(stderr, "  error was: %s\n", th.error);
    blazebot_test_unload(&th);
  }
  /* The same on reconfigure: refused, the running section stays. */
  {
    struct blazebot_test_host th;
    setup_profile(&th);
    CHECK_INT(blazebot_test_load(&th, blazebot_plugin_v1()), 0);
    blazebot_test_set_config(&th, "profile_cache_max", "lots");
    CHECK_INT(blazebot_test_reconfigure(&th), -1);
    CHECK(blazebot_test_log_contains(&th, "profile_cache_max"));
    CHECK_INT(say(&th, "/id"), BLAZEBOT_HANDLED);
    CHECK_STR(last(&th), "Your id: " BLAZEBOT_TEST_USER_ID);
    blazebot_test_unload(&th);
  }
}

int main(void) {
  test_answers();
  test_unknown_reply_is_not_a_format();
  test_prefix_post_and_bot_name();
  test_bad_sections();
  test_reconfigure();
  test_json_reader();
  test_templates();
  test_profile_lookup();
  test_profile_cache_ttl();
  test_profile_cache_cap();
  test_profile_failures();
  test_profile_unicode_and_markdown();
  test_profile_old_host_and_refusals();
  test_profile_retry_and_unload();
  test_profile_bad_sections_and_reconfigure();
  return check_done("plugins.commands");
}
