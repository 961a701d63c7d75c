// HTTP/1.1 request head encoder (pure: no libuv, no N-API, no exceptions).
//
// encode_request_head() validates a request (method, target, host, user headers, body
// framing) and appends its complete head to a caller-owned buffer:
//
//   METHOD SP target SP HTTP/1.1 CRLF
//   Host: <host> CRLF                   (or the user's own host header, moved first)
//   <user headers, in order, names as given> CRLF...
//   user-agent: <default> CRLF          (only when the user gave none and the default is non-empty)
//   accept-encoding: <default> CRLF     (likewise)
//   content-length: N CRLF | transfer-encoding: chunked CRLF   (framing, see BodyMode)
//   CRLF
//
// Everything is validated before anything is written, so on error the buffer is unchanged.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/errors.h"

namespace uvf {
namespace http1 {

enum class BodyMode : uint8_t {
  None,     // no body: nothing is added, except `content-length: 0` for POST/PUT/PATCH
  Length,   // body of known length `content_length`: `content-length: N` (unless the user gave it)
  Chunked,  // streamed body of unknown length: `transfer-encoding: chunked`
};

struct RequestHead {
  std::string_view method;                   // RFC 9110 token, e.g. "GET"
  std::string_view target;                   // "/path?q", "*", or absolute-form; bytes 0x21..0x7E
  std::string_view host;                     // authority for the default Host header ("" allowed)
  const std::string_view* headers = nullptr; // name,value,name,value,... (may be null)
  size_t header_pairs = 0;
  BodyMode body_mode = BodyMode::None;
  uint64_t content_length = 0;               // when body_mode == Length
  std::string_view user_agent;               // default user-agent; empty = none
  std::string_view accept_encoding;          // default accept-encoding (unless the user gave one); empty = none
  // validate_request_head() already accepted these very fields: the encoder does not scan their
  // bytes again (it still checks what depends on the body mode). Never set it otherwise.
  bool validated = false;
};

struct EncodeError {
  Error code = Error::Ok;
  const char* reason = nullptr;  // static string, never freed
  size_t header_index = SIZE_MAX;  // index of the offending name/value pair, SIZE_MAX if none
};

struct EncodeResult {
  bool connection_close = false;  // the user sent `Connection: close`
};

// Validates `req` and appends its head to *out. Returns Error::Ok, or:
//   InvalidMethod  method is not a token
//   InvalidUrl     target is empty / has bytes outside 0x21..0x7E, or host has such bytes
//   InvalidHeader  bad name/value, managed header misuse (see .cc); err->header_index says which pair
// On error nothing is appended. `res` and `err` may be null; `out` null: validate only.
Error encode_request_head(const RequestHead& req, std::string* out, EncodeResult* res,
                          EncodeError* err);
// The same checks (same errors) without encoding: a request is validated when it is submitted
// and encoded by the connection that takes it.
Error validate_request_head(const RequestHead& req, EncodeResult* res, EncodeError* err);

bool is_token(std::string_view s);                   // non-empty, RFC 9110 tchar only
bool is_valid_header_value(std::string_view s);      // HTAB, SP, VCHAR, obs-text only (may be empty)
bool is_valid_request_target(std::string_view s);    // non-empty, every byte 0x21..0x7E
bool method_is_idempotent(std::string_view method);  // GET HEAD OPTIONS TRACE PUT DELETE (case-sensitive)

// Appends "<lowercase hex len>\r\n". Follow the chunk data with kChunkEnd, end the body with kLastChunk.
void append_chunk_header(uint64_t len, std::string* out);
constexpr std::string_view kChunkEnd = "\r\n";
constexpr std::string_view kLastChunk = "0\r\n\r\n";

}  // namespace http1
}  // namespace uvf
