/* SPDX-License-Identifier: MIT */
/*
 * jscan: JSON read without building a tree, for the frames whose few
 * top-level members are all the daemon needs (answers to its requests,
 * receipts), which made up most of its parsing. It validates like a full
 * parser (RFC 8259 syntax, UTF-8, escapes and surrogate pairs, no control
 * characters in strings, nothing after the value, nesting at most
 * JSCAN_MAX_DEPTH) and hands out the raw text of each member's value;
 * jscan_string and jscan_int decode the ones wanted. No allocation.
 */
#ifndef BLAZEBOT_JSCAN_H
#define BLAZEBOT_JSCAN_H

#include <stddef.h>

#define JSCAN_MAX_DEPTH 512

/* The value kinds, as the first character of their text. */
enum {
  JSCAN_OBJECT = '{',
  JSCAN_ARRAY = '[',
  JSCAN_STRING = '"',
  JSCAN_NUMBER = '0',
  JSCAN_LITERAL = 't', /* true, false or null */
};

/* Called for each member of the object, in order. key/klen is the key's
 * raw text with its quotes (key_escaped: it holds escapes); val/vlen the
 * value's text, type one of the JSCAN_* kinds. Returning
 * non-zero stops the scan, which then returns that value. */
typedef int (*jscan_member_fn)(void *ud, const char *key, size_t klen, int key_escaped,
                               const char *val, size_t vlen, int type);

/* Scans text (len bytes, surrounding whitespace allowed) that must be one
 * JSON object, calling on for its members. Returns 0, a non-zero value from
 * on, or -1 when text is not valid JSON or not an object; then *where (if
 * not NULL) is the byte offset of the problem. */
int jscan_object(const char *text, size_t len, jscan_member_fn on, void *ud,
                 size_t *where);

/* Decodes the string value val/vlen (with its quotes, as jscan gives it)
 * into out (cap bytes, NUL-terminated). Returns its length, or -1 when it
 * is not a string, holds a NUL (\u0000) or does not fit. */
long jscan_string(const char *val, size_t vlen, char *out, size_t cap);

/* The integer value val/vlen into *out. Returns 0, or -1 when it is not an
 * integer (a fraction, an exponent, out of range, not a number). */
int jscan_int(const char *val, size_t vlen, long long *out);

/* 1 when the key (raw text, with quotes) decodes to name. */
int jscan_key_is(const char *key, size_t klen, int key_escaped, const char *name);

#endif
