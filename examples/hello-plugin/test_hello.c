/* SPDX-License-Identifier: MIT */
/*
 * test_hello: unit tests of the hello plugin without the daemon, through
 * the SDK's fake host (blazebot/testing.h). hello.c is compiled into this
 * program, so blazebot_plugin_v1() is its descriptor.
 */
#include <stdio.h>
#include <string.h>

#include <blazebot/testing.h>

const struct blazebot_plugin *blazebot_plugin_v1(void);

static int failures;

static void expect(const char *text, int want_rc, const char *want_reply) {
  struct blazebot_test_host th;
  const char *got;
  int rc;
  blazebot_test_init(&th);
  if (blazebot_test_load(&th, blazebot_plugin_v1()) != 0) {
    printf("FAIL: load: %s\n", th.error);
    failures++;
    return;
  }
  rc = blazebot_test_deliver(&th, blazebot_test_message(&th, "PLAIN_TEXT", text));
  got = blazebot_test_reply_text(&th, 0);
  if (rc != want_rc ||
      (want_reply ? !got || strcmp(got, want_reply) != 0 : got != NULL)) {
    printf("FAIL: \"%s\" -> %d \"%s\", want %d \"%s\"\n", text, rc, got ? got : "(none)",
           want_rc, want_reply ? want_reply : "(none)");
    failures++;
  }
  blazebot_test_unload(&th);
}

int main(void) {
  expect("hello Alice", BLAZEBOT_HANDLED, "Hello, Alice!");
  expect("Hello, Bob  ", BLAZEBOT_HANDLED, "Hello, Bob!");
  expect("HELLO", BLAZEBOT_HANDLED, "Hello, world!");
  expect("helloworld", BLAZEBOT_PASS, NULL);
  expect("say hello", BLAZEBOT_PASS, NULL);
  expect("", BLAZEBOT_PASS, NULL);
  printf("test_hello: %s\n", failures ? "FAILED" : "ok");
  return failures != 0;
}
