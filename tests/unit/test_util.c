/* SPDX-License-Identifier: MIT */
/*
 * util: the derived reply ids. They are standard RFC 4122 version 5 UUIDs,
 * so any implementation (a worker in another language, a later blazebot)
 * computes the same id: the vectors below come from Python's uuid.uuid5
 * with the namespace and name layout documented in util.h.
 */
#include <string.h>

#include "check.h"
#include "util.h"

int main(void) {
  char a[UUID_STR_LEN], b[UUID_STR_LEN];
  const char *in = "3f1c7b0e-1111-4a2b-8c3d-000000000001";
  CHECK_INT(uuid_derive(in, "echo", 1, a), 0);
  CHECK_STR(a, "5cb28226-83c8-5d8d-a57c-dcb3c0e6c340");
  CHECK_INT(uuid_derive(in, "echo", 2, a), 0);
  CHECK_STR(a, "af710e19-9a03-570f-8584-2bde71c9870b");
  /* The incoming id's case does not matter; the plugin and ordinal do. */
  CHECK_INT(uuid_derive("3F1C7B0E-1111-4A2B-8C3D-000000000001", "echo", 2, b), 0);
  CHECK_STR(a, b);
  CHECK_INT(uuid_derive(in, "commands", 2, b), 0);
  CHECK(strcmp(a, b) != 0);
  CHECK(uuid_valid(b));
  CHECK_INT(uuid_derive("not-a-uuid", "echo", 1, a), -1);
  CHECK_INT(uuid_derive(in, "", 1, a), -1);
  CHECK_INT(uuid_derive(NULL, "echo", 1, a), -1);
  return check_done("unit.util");
}
