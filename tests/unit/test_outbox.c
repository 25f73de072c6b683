/* SPDX-License-Identifier: MIT */
/*
 * outbox: what is refused at the door, before anything is queued. A message
 * over the server's 128 KB limit (its JSON, base64 data included) and
 * messages with invalid ids return -1 at once; one just under the limit is
 * queued. No link is needed: sending happens later, on the I/O thread.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config.h"
#include "outbox.h"

int main(void) {
  struct config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.outbox_capacity = 10;
  cfg.send_rate_per_min = 1000;
  struct outbox *o = outbox_new(&cfg, NULL, NULL, NULL, NULL, NULL, NULL);
  CHECK(o != NULL);
  if (!o)
    return check_done("unit.outbox");
  size_t big = 100 * 1024; /* 136,534 bytes of base64 */
  char *data = malloc(big);
  memset(data, 'x', big);
  struct outbox_msg m = {.conversation_id = "3f1c7b0e-1111-4a2b-8c3d-000000000001",
                         .category = "PLAIN_TEXT",
                         .data = data,
                         .len = big};
  char id[UUID_STR_LEN];
  CHECK_INT(outbox_send(o, &m, NULL, id, 0), -1);
  CHECK_INT(outbox_outstanding(o), 0);
  /* 96 KiB of data is 131,072 bytes of base64: with the other fields, over. */
  m.len = 96 * 1024;
  CHECK_INT(outbox_send(o, &m, NULL, id, 0), -1);
  /* 95 KiB fits with room for the fields. */
  m.len = 95 * 1024;
  CHECK_INT(outbox_send(o, &m, NULL, id, 0), 0);
  CHECK_INT(outbox_outstanding(o), 1);
  /* An explicit id is kept (lowercased); a bad one is refused. */
  m.len = 5;
  m.message_id = "AAAAAAAA-1111-4A2B-8C3D-000000000009";
  CHECK_INT(outbox_send(o, &m, NULL, id, 0), 0);
  CHECK_STR(id, "aaaaaaaa-1111-4a2b-8c3d-000000000009");
  m.message_id = "nope";
  CHECK_INT(outbox_send(o, &m, NULL, id, 0), -1);
  CHECK_INT(outbox_outstanding(o), 2);
  outbox_free(o);
  free(data);
  return check_done("unit.outbox");
}
