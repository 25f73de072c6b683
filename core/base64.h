/* SPDX-License-Identifier: MIT */
/*
 * base64: both alphabets. Decoding accepts the standard (+/) and URL (-_)
 * alphabets, with or without '=' padding, and refuses anything else
 * (whitespace, misplaced padding, impossible lengths, non-zero trailing bits
 * are tolerated only where RFC 4648 allows). Encoding writes base64url
 * without padding (what Blaze's data_base64 uses) or standard with padding.
 */
#ifndef BLAZEBOT_BASE64_H
#define BLAZEBOT_BASE64_H

#include <stddef.h>

/* Upper bound of the decoded size of n input characters. */
static inline size_t base64_decoded_max(size_t n) {
  return n / 4 * 3 + 3;
}
/* Exact encoded length (without NUL) of n bytes. */
size_t base64_encoded_len(size_t n, int url_nopad);

/* Decodes in[0..len) into out (capacity cap); returns the byte count or -1
 * if the input is not valid base64 in either alphabet. */
long base64_decode(const char *in, size_t len, unsigned char *out, size_t cap);
/* Encodes into out, which must hold base64_encoded_len(n, url_nopad) + 1
 * bytes; NUL-terminates and returns the length. */
size_t base64_encode(const unsigned char *in, size_t n, int url_nopad, char *out);

#endif
