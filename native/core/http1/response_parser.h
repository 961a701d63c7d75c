// HTTP/1.x response-head parser (RFC 9112 §2–§6, RFC 9110 §5).
//
// Pure functions over caller-owned bytes, in the spirit of picohttpparser: no allocation, no
// exceptions, no I/O, no hidden state between calls. Field views point into the caller's buffer,
// so they stay valid exactly as long as that buffer does.
//
// The parser is deliberately strict: anything that two HTTP implementations could plausibly frame
// differently (bare CR/LF, obs-fold, odd Content-Length / Transfer-Encoding combinations) is rejected,
// because a client that guesses is a request-smuggling / response-splitting vector.
#pragma once
#include <cstddef>
#include <cstdint>

#include "base/errors.h"

namespace uvf::http1 {

struct HeaderField {
  const char* name;
  size_t name_len;
  const char* value;  // leading/trailing SP/HTAB already trimmed
  size_t value_len;
};

struct ParseLimits {
  size_t max_header_size = 64 * 1024;  // whole head, status line and final CRLF CRLF included (min 9)
  size_t max_header_count = 200;
};

struct ParseError {
  Error code = Error::Ok;
  const char* reason = nullptr;  // static string, never freed
  size_t offset = 0;             // byte offset of the offending input (relative to the parser's input)
};

enum class ParseStatus { Done, NeedMore, Error };
enum class Framing { None, Length, Chunked, UntilClose };

struct ResponseHead {
  int version_minor;  // 0 or 1
  int status;         // 3 digits, 100..599
  const char* reason;
  size_t reason_len;
  size_t head_len;  // bytes of the head including the final CRLF CRLF
  size_t header_count;
  int64_t content_length;      // -1 if absent
  bool has_transfer_encoding;  // (only "chunked" is accepted)
  bool chunked;
  bool connection_close;       // "Connection: close" token, or HTTP/1.0 without "keep-alive"
  bool connection_keep_alive;  // explicit keep-alive token
  int keep_alive_timeout_s;    // from "Keep-Alive: timeout=N", -1 if absent/unparseable
  const char* content_encoding;  // value of the first Content-Encoding field (nullptr if none)
  size_t content_encoding_len;
  int content_encoding_count;    // Content-Encoding fields seen (their values form one list)
};

// Parses one response head from buf[0..len). `prev_len` is the length passed on the previous call for
// the same response (0 first time): bytes before it are known not to contain the end of the head, so the
// search for CRLFCRLF resumes there (no quadratic rescans when headers arrive in small pieces).
// Done: *out filled, out->head_len bytes consumed. NeedMore: no complete head yet. Error: *err set.
// `fields` may be null (then only framing info is produced); otherwise it has room for fields_cap entries
// and a head with more than fields_cap fields fails like one over limits.max_header_count.
// `out` and `fields` are only meaningful after Done. `err` may be null.
ParseStatus parse_response_head(const char* buf, size_t len, size_t prev_len, const ParseLimits& limits,
                                ResponseHead* out, HeaderField* fields, size_t fields_cap, ParseError* err);

// RFC 9112 §6.3 body framing for a parsed head, given whether the request was HEAD.
// 1xx, 204, 304 and HEAD responses → None; chunked → Chunked; content_length >= 0 → Length;
// else UntilClose.
Framing response_framing(const ResponseHead& head, bool request_was_head);

// Character classes shared by the head parser and the chunked decoder's trailer section.
namespace detail {
enum : uint8_t {
  kTchar = 1,       // RFC 9110 token character
  kFieldChar = 2,   // HTAB, SP, VCHAR, obs-text: allowed in field values and reason phrases
  kHexDigit = 4,
};
struct CharClassTable {
  uint8_t v[256];
};
extern const CharClassTable kCharClass;

inline bool is_tchar(unsigned char c) { return kCharClass.v[c] & kTchar; }
inline bool is_field_char(unsigned char c) { return kCharClass.v[c] & kFieldChar; }
inline bool is_hex_digit(unsigned char c) { return kCharClass.v[c] & kHexDigit; }
}  // namespace detail

}  // namespace uvf::http1
