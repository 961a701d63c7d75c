#include "http1/request_encoder.h"

#include <array>
#include <charconv>

namespace uvf {
namespace http1 {

namespace {

// ---- byte classes (one 256-entry table) -------------------------------------------------

enum : uint8_t {
  kTchar = 1u << 0,   // RFC 9110 tchar
  kValue = 1u << 1,   // field-value byte: HTAB, SP, VCHAR, obs-text
  kTarget = 1u << 2,  // request-target / host byte: 0x21..0x7E
};

constexpr bool is_tchar_byte(unsigned c) {
  if ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

constexpr std::array<uint8_t, 256> make_class_table() {
  std::array<uint8_t, 256> t{};
  for (unsigned c = 0; c < 256; ++c) {
    uint8_t v = 0;
    if (is_tchar_byte(c)) v |= kTchar;
    if (c == '\t' || c == ' ' || (c >= 0x21 && c <= 0x7E) || c >= 0x80) v |= kValue;
    if (c >= 0x21 && c <= 0x7E) v |= kTarget;
    t[c] = v;
  }
  return t;
}

constexpr std::array<uint8_t, 256> kClass = make_class_table();

inline bool all_in_class(std::string_view s, uint8_t cls) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(s.data());
  const unsigned char* end = p + s.size();
  uint8_t acc = cls;
  for (; p != end; ++p) acc &= kClass[*p];
  return acc == cls;
}

inline char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

// `s` equals the lowercase literal `lower`, ASCII case-insensitively.
inline bool iequals(std::string_view s, std::string_view lower) {
  if (s.size() != lower.size()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (ascii_lower(s[i]) != lower[i]) return false;
  }
  return true;
}

inline bool is_ows(char c) { return c == ' ' || c == '\t'; }

// ---- managed header names -----------------------------------------------------------------

enum class Managed : uint8_t { Other, Host, ContentLength, TransferEncoding, Connection, Upgrade, UserAgent, AcceptEncoding };

inline Managed classify(std::string_view name) {
  switch (name.size()) {
    case 4:
      if (iequals(name, "host")) return Managed::Host;
      break;
    case 7:
      if (iequals(name, "upgrade")) return Managed::Upgrade;
      break;
    case 10:
      if (iequals(name, "connection")) return Managed::Connection;
      if (iequals(name, "user-agent")) return Managed::UserAgent;
      break;
    case 14:
      if (iequals(name, "content-length")) return Managed::ContentLength;
      break;
    case 15:
      if (iequals(name, "accept-encoding")) return Managed::AcceptEncoding;
      break;
    case 17:
      if (iequals(name, "transfer-encoding")) return Managed::TransferEncoding;
      break;
    default:
      break;
  }
  return Managed::Other;
}

// Parses a Content-Length value: 1*DIGIT, no sign, no whitespace, fits in uint64.
inline bool parse_content_length(std::string_view v, uint64_t* n) {
  if (v.empty()) return false;
  uint64_t acc = 0;
  for (char ch : v) {
    if (ch < '0' || ch > '9') return false;
    uint64_t d = static_cast<uint64_t>(ch - '0');
    if (acc > (UINT64_MAX - d) / 10) return false;
    acc = acc * 10 + d;
  }
  *n = acc;
  return true;
}

// Scans a Connection value's comma-separated tokens (OWS-trimmed, case-insensitive).
// Returns false if it names "upgrade"; sets *close when it names "close".
inline bool scan_connection(std::string_view v, bool* close) {
  size_t i = 0;
  while (i <= v.size()) {
    size_t comma = v.find(',', i);
    if (comma == std::string_view::npos) comma = v.size();
    size_t b = i, e = comma;
    while (b < e && is_ows(v[b])) ++b;
    while (e > b && is_ows(v[e - 1])) --e;
    std::string_view tok = v.substr(b, e - b);
    if (iequals(tok, "close")) *close = true;
    else if (iequals(tok, "upgrade")) return false;
    i = comma + 1;
  }
  return true;
}

inline bool method_needs_zero_length(std::string_view m) {
  return m == "POST" || m == "PUT" || m == "PATCH";
}

inline void append_decimal(uint64_t n, std::string* out) {
  char buf[20];
  auto r = std::to_chars(buf, buf + sizeof(buf), n);
  out->append(buf, static_cast<size_t>(r.ptr - buf));
}

constexpr std::string_view kHttpVersionCrlf = " HTTP/1.1\r\n";
constexpr std::string_view kHostPrefix = "Host: ";
constexpr std::string_view kUserAgentPrefix = "user-agent: ";
constexpr std::string_view kAcceptEncodingPrefix = "accept-encoding: ";
constexpr std::string_view kContentLengthPrefix = "content-length: ";
constexpr std::string_view kTeChunked = "transfer-encoding: chunked\r\n";
constexpr std::string_view kColonSp = ": ";
constexpr std::string_view kCrlf = "\r\n";
constexpr size_t kMaxDecimalU64 = 20;

inline Error fail(EncodeError* err, Error code, const char* reason, size_t index = SIZE_MAX) {
  if (err) {
    err->code = code;
    err->reason = reason;
    err->header_index = index;
  }
  return code;
}

}  // namespace

bool is_token(std::string_view s) { return !s.empty() && all_in_class(s, kTchar); }

bool is_valid_header_value(std::string_view s) { return all_in_class(s, kValue); }

bool is_valid_request_target(std::string_view s) { return !s.empty() && all_in_class(s, kTarget); }

bool method_is_idempotent(std::string_view m) {
  switch (m.size()) {
    case 3: return m == "GET" || m == "PUT";
    case 4: return m == "HEAD";
    case 5: return m == "TRACE";
    case 6: return m == "DELETE";
    case 7: return m == "OPTIONS";
    default: return false;
  }
}

Error validate_request_head(const RequestHead& req, EncodeResult* res, EncodeError* err) {
  return encode_request_head(req, nullptr, res, err);
}

void append_chunk_header(uint64_t len, std::string* out) {
  char buf[16 + 2];
  auto r = std::to_chars(buf, buf + 16, len, 16);  // lowercase hex digits
  char* p = r.ptr;
  *p++ = '\r';
  *p++ = '\n';
  out->append(buf, static_cast<size_t>(p - buf));
}

Error encode_request_head(const RequestHead& req, std::string* out, EncodeResult* res,
                          EncodeError* err) {
  if (res) res->connection_close = false;
  if (err) *err = EncodeError{};

  // Bytes already checked by validate_request_head (the same request) are not scanned again.
  const bool scan = !req.validated;
  if (scan && !is_token(req.method)) return fail(err, Error::InvalidMethod, "invalid request method");
  if (scan && !is_valid_request_target(req.target)) return fail(err, Error::InvalidUrl, "invalid request target");
  // An empty authority is legal (Host header with an empty value); otherwise visible ASCII only.
  if (scan && !all_in_class(req.host, kTarget)) return fail(err, Error::InvalidUrl, "invalid host");

  const std::string_view* h = req.headers;
  const size_t pairs = h ? req.header_pairs : 0;

  // ---- pass 1: validate, classify, size ----
  size_t host_index = SIZE_MAX;
  size_t cl_index = SIZE_MAX;
  bool has_user_agent = false;
  bool has_accept_encoding = false;
  bool close = false;
  size_t headers_bytes = 0;

  for (size_t i = 0; i < pairs; ++i) {
    std::string_view name = h[2 * i];
    std::string_view value = h[2 * i + 1];
    if (scan && !is_token(name)) return fail(err, Error::InvalidHeader, "invalid header name", i);
    if (scan && !is_valid_header_value(value))
      return fail(err, Error::InvalidHeader, "invalid character in header value", i);
    headers_bytes += name.size() + value.size() + 4;

    switch (classify(name)) {
      case Managed::Other:
        break;
      case Managed::Host:
        if (host_index != SIZE_MAX) return fail(err, Error::InvalidHeader, "duplicate host header", i);
        host_index = i;
        break;
      case Managed::ContentLength: {
        if (cl_index != SIZE_MAX)
          return fail(err, Error::InvalidHeader, "duplicate content-length header", i);
        cl_index = i;
        uint64_t n = 0;
        if (!parse_content_length(value, &n))
          return fail(err, Error::InvalidHeader, "content-length must be a non-negative integer", i);
        switch (req.body_mode) {
          case BodyMode::Length:
            if (n != req.content_length)
              return fail(err, Error::InvalidHeader, "content-length does not match the body", i);
            break;
          case BodyMode::None:
            if (n != 0)
              return fail(err, Error::InvalidHeader, "content-length does not match the body", i);
            break;
          case BodyMode::Chunked:
            return fail(err, Error::InvalidHeader,
                        "content-length given for a streamed body of unknown length", i);
        }
        break;
      }
      case Managed::TransferEncoding:
        return fail(err, Error::InvalidHeader, "transfer-encoding is managed by uvfetch", i);
      case Managed::Upgrade:
        return fail(err, Error::InvalidHeader, "protocol upgrade is not supported", i);
      case Managed::Connection:
        if (!scan_connection(value, &close))
          return fail(err, Error::InvalidHeader, "protocol upgrade is not supported", i);
        break;
      case Managed::UserAgent:
        has_user_agent = true;
        break;
      case Managed::AcceptEncoding:
        has_accept_encoding = true;
        break;
    }
  }

  const bool add_user_agent = !has_user_agent && !req.user_agent.empty();
  const bool add_accept_encoding = !has_accept_encoding && !req.accept_encoding.empty();
  if (scan && add_accept_encoding && !is_valid_header_value(req.accept_encoding))
    return fail(err, Error::InvalidHeader, "invalid character in header value");
  if (scan && add_user_agent && !is_valid_header_value(req.user_agent))
    return fail(err, Error::InvalidHeader, "invalid character in header value");

  // Framing line to add (if any).
  enum class Framing : uint8_t { None, Length, Chunked } framing = Framing::None;
  uint64_t framing_length = 0;
  switch (req.body_mode) {
    case BodyMode::None:
      if (cl_index == SIZE_MAX && method_needs_zero_length(req.method)) framing = Framing::Length;
      break;
    case BodyMode::Length:
      if (cl_index == SIZE_MAX) {
        framing = Framing::Length;
        framing_length = req.content_length;
      }
      break;
    case BodyMode::Chunked:
      framing = Framing::Chunked;
      break;
  }

  if (out == nullptr) {  // validate_request_head(): no bytes wanted
    if (res) res->connection_close = close;
    return Error::Ok;
  }

  // ---- pass 2: one reserve, append-only writes ----
  size_t total = req.method.size() + 1 + req.target.size() + kHttpVersionCrlf.size();
  if (host_index == SIZE_MAX) total += kHostPrefix.size() + req.host.size() + kCrlf.size();
  total += headers_bytes;
  if (add_user_agent) total += kUserAgentPrefix.size() + req.user_agent.size() + kCrlf.size();
  if (add_accept_encoding) total += kAcceptEncodingPrefix.size() + req.accept_encoding.size() + kCrlf.size();
  if (framing == Framing::Length) total += kContentLengthPrefix.size() + kMaxDecimalU64 + kCrlf.size();
  if (framing == Framing::Chunked) total += kTeChunked.size();
  total += kCrlf.size();
  out->reserve(out->size() + total);

  out->append(req.method);
  out->push_back(' ');
  out->append(req.target);
  out->append(kHttpVersionCrlf);

  // Host first (RFC 9112 §3.2): the user's own host header, as given, or the default one.
  if (host_index == SIZE_MAX) {
    out->append(kHostPrefix);
    out->append(req.host);
  } else {
    out->append(h[2 * host_index]);
    out->append(kColonSp);
    out->append(h[2 * host_index + 1]);
  }
  out->append(kCrlf);

  for (size_t i = 0; i < pairs; ++i) {
    if (i == host_index) continue;
    out->append(h[2 * i]);
    out->append(kColonSp);
    out->append(h[2 * i + 1]);
    out->append(kCrlf);
  }

  if (add_user_agent) {
    out->append(kUserAgentPrefix);
    out->append(req.user_agent);
    out->append(kCrlf);
  }
  if (add_accept_encoding) {
    out->append(kAcceptEncodingPrefix);
    out->append(req.accept_encoding);
    out->append(kCrlf);
  }

  if (framing == Framing::Length) {
    out->append(kContentLengthPrefix);
    append_decimal(framing_length, out);
    out->append(kCrlf);
  } else if (framing == Framing::Chunked) {
    out->append(kTeChunked);
  }
  out->append(kCrlf);

  if (res) res->connection_close = close;
  return Error::Ok;
}

}  // namespace http1
}  // namespace uvf
