#include "http1/response_parser.h"

#include <climits>
#include <cstring>

namespace uvf::http1 {

namespace detail {
namespace {
constexpr CharClassTable build_char_classes() {
  CharClassTable t{};
  // RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
  //                         "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
  const char* const kTcharPunct = "!#$%&'*+-.^_`|~";
  for (int c = 0; c < 256; ++c) {
    uint8_t f = 0;
    bool digit = c >= '0' && c <= '9';
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    bool punct = false;
    for (const char* s = kTcharPunct; *s; ++s) punct |= (*s == c);
    if (digit || alpha || punct) f |= kTchar;
    // field-vchar / obs-text plus the two whitespace bytes that may appear inside a value.
    if (c == '\t' || (c >= 0x20 && c != 0x7f)) f |= kFieldChar;
    if (digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) f |= kHexDigit;
    t.v[c] = f;
  }
  return t;
}
}  // namespace

// constexpr-built, so it is constant-initialised: no static-init-order hazard for other TUs.
constexpr CharClassTable kCharClassInit = build_char_classes();
const CharClassTable kCharClass = kCharClassInit;
}  // namespace detail

namespace {

using detail::is_field_char;
using detail::is_tchar;

constexpr int64_t kMaxContentLength = INT64_MAX;

inline bool is_ows(char c) { return c == ' ' || c == '\t'; }
inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
inline unsigned char ascii_lower(unsigned char c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

// Case-insensitive comparison against a lower-case literal. Only called on the few names/values
// whose length already matches, so the byte loop here is not on the per-byte hot path.
template <size_t N>
inline bool ieq(const char* s, size_t n, const char (&lit)[N]) {
  if (n != N - 1) return false;
  for (size_t i = 0; i < n; ++i) {
    if (ascii_lower(static_cast<unsigned char>(s[i])) != static_cast<unsigned char>(lit[i])) return false;
  }
  return true;
}

inline void trim_ows(const char*& s, size_t& n) {
  while (n > 0 && is_ows(s[0])) ++s, --n;
  while (n > 0 && is_ows(s[n - 1])) --n;
}

// Splits a comma-separated list (RFC 9110 §5.6.1) one element at a time, OWS trimmed.
// Returns false once the list is exhausted. Empty elements are reported (as n == 0) so that callers
// which must reject them can.
inline bool next_list_element(const char*& p, const char* end, const char** elem, size_t* elem_len) {
  if (p == nullptr) return false;
  const char* comma = static_cast<const char*>(std::memchr(p, ',', static_cast<size_t>(end - p)));
  const char* stop = comma ? comma : end;
  const char* s = p;
  size_t n = static_cast<size_t>(stop - p);
  trim_ows(s, n);
  *elem = s;
  *elem_len = n;
  p = comma ? comma + 1 : nullptr;  // nullptr marks "no more elements"
  return true;
}

// Returns the first byte in [p, end) that may not appear in a field value or reason phrase (a CTL
// other than HTAB, or DEL), or end. This is the parser's hottest loop, so it tests 8 bytes at a
// time: a word is clean when no byte is < 0x20 and none is 0x7F (obs-text >= 0x80 is allowed).
// A word failing that test (which includes one holding an HTAB) is re-checked byte by byte.
inline const char* find_invalid_field_char(const char* p, const char* end) {
  constexpr uint64_t kOnes = 0x0101010101010101ull;
  constexpr uint64_t kHigh = 0x8080808080808080ull;
  while (end - p >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    uint64_t below_space = (w - kOnes * 0x20) & ~w & kHigh;  // nonzero iff some byte < 0x20
    uint64_t x = w ^ (kOnes * 0x7f);
    uint64_t is_del = (x - kOnes) & ~x & kHigh;  // nonzero iff some byte == 0x7F
    if ((below_space | is_del) != 0) {
      for (int i = 0; i < 8; ++i) {
        if (!is_field_char(static_cast<unsigned char>(p[i]))) return p + i;
      }
    }
    p += 8;
  }
  for (; p < end; ++p) {
    if (!is_field_char(static_cast<unsigned char>(*p))) return p;
  }
  return end;
}

inline ParseStatus fail(ParseError* err, Error code, const char* reason, size_t offset) {
  err->code = code;
  err->reason = reason;
  err->offset = offset;
  return ParseStatus::Error;
}

// Validates the first n (<= 9) bytes of a status line against "HTTP/1.0 " or "HTTP/1.1 ".
// Runs on every call, even before the head is complete, so that a peer that is not speaking
// HTTP/1.x is rejected at once instead of after max_header_size bytes or a timeout. The same check
// runs on partial and complete input, which keeps results independent of how the bytes were split.
const char* check_version_prefix(const char* buf, size_t n, size_t* offset) {
  static const char kPrefix[] = "HTTP/1.";
  for (size_t i = 0; i < n; ++i) {
    char c = buf[i];
    bool ok = i < 7 ? c == kPrefix[i] : i == 7 ? (c == '0' || c == '1') : c == ' ';
    if (ok) continue;
    *offset = i;
    if (i < 5) return "invalid status line";
    // "HTTP/2 ", "HTTP/1.2", "HTTP/1.10": a version, just not one we speak.
    if (i < 8 || is_digit(c) || c == '.') return "unsupported HTTP version";
    return "invalid status line";
  }
  return nullptr;
}

// Per-response state accumulated while walking the header lines.
struct HeadState {
  bool has_content_length = false;
  int64_t content_length = -1;
  bool has_te = false;
  bool close = false;
  bool keep_alive = false;
  int keep_alive_timeout = -1;
};

// Content-Length = 1*DIGIT; RFC 9110 §8.6 lets a recipient accept a list of identical values
// ("5, 5", or repeated lines) as that value. Anything else is fatal for a response.
const char* handle_content_length(const char* v, size_t vlen, HeadState* st) {
  const char* p = v;
  const char* end = v + vlen;
  const char* e;
  size_t n;
  while (next_list_element(p, end, &e, &n)) {
    if (n == 0) return "invalid Content-Length";
    int64_t val = 0;
    for (size_t i = 0; i < n; ++i) {
      if (!is_digit(e[i])) return "invalid Content-Length";
      int d = e[i] - '0';
      if (val > (kMaxContentLength - d) / 10) return "Content-Length overflow";
      val = val * 10 + d;
    }
    if (st->has_content_length && st->content_length != val) return "conflicting Content-Length";
    st->has_content_length = true;
    st->content_length = val;
  }
  return nullptr;
}

void handle_connection(const char* v, size_t vlen, HeadState* st) {
  const char* p = v;
  const char* end = v + vlen;
  const char* e;
  size_t n;
  while (next_list_element(p, end, &e, &n)) {
    if (ieq(e, n, "close")) st->close = true;
    else if (ieq(e, n, "keep-alive")) st->keep_alive = true;
  }
}

// Keep-Alive: timeout=5, max=1000 (RFC 2068 §19.7.1.1, still what servers send). Only timeout is
// used; an unparseable timeout reads as "absent" rather than failing the response.
void handle_keep_alive(const char* v, size_t vlen, HeadState* st) {
  const char* p = v;
  const char* end = v + vlen;
  const char* e;
  size_t n;
  while (next_list_element(p, end, &e, &n)) {
    const char* eq = static_cast<const char*>(std::memchr(e, '=', n));
    if (!eq) continue;
    const char* name = e;
    size_t name_len = static_cast<size_t>(eq - e);
    trim_ows(name, name_len);
    if (!ieq(name, name_len, "timeout")) continue;
    const char* val = eq + 1;
    size_t val_len = static_cast<size_t>(e + n - val);
    trim_ows(val, val_len);
    int64_t t = val_len == 0 ? -1 : 0;
    for (size_t i = 0; i < val_len; ++i) {
      if (!is_digit(val[i])) {
        t = -1;
        break;
      }
      if (t < INT_MAX) t = t * 10 + (val[i] - '0');  // saturate: "very long" is still meaningful
    }
    st->keep_alive_timeout = t < 0 ? -1 : (t > INT_MAX ? INT_MAX : static_cast<int>(t));
  }
}

// Phase 2: the head is known to be complete and end at buf[end-1]. Walks it line by line.
ParseStatus parse_complete_head(const char* buf, size_t end, const ParseLimits& limits, ResponseHead* out,
                                HeaderField* fields, size_t fields_cap, ParseError* err) {
  // --- status line. Phase 0 already guaranteed buf[0..9) == "HTTP/1.x " (and so no CR/LF there).
  const char* lf = static_cast<const char*>(std::memchr(buf, '\n', end));
  size_t k = static_cast<size_t>(lf - buf);
  if (buf[k - 1] != '\r') return fail(err, Error::BadResponse, "bare LF", k);
  size_t le = k - 1;  // index of the CR ending the status line

  ResponseHead h{};
  h.version_minor = buf[7] - '0';
  // status-code = 3DIGIT, followed by SP reason-phrase; a missing SP (no reason at all) is tolerated.
  if (le < 12 || !is_digit(buf[9]) || !is_digit(buf[10]) || !is_digit(buf[11]) || (le > 12 && buf[12] != ' ')) {
    return fail(err, Error::BadResponse, "invalid status code", 9);
  }
  h.status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
  if (h.status < 100 || h.status > 599) return fail(err, Error::BadResponse, "invalid status code", 9);
  size_t rs = le > 12 ? 13 : 12;
  if (const char* bad = find_invalid_field_char(buf + rs, buf + le); bad != buf + le) {
    return fail(err, Error::BadResponse, *bad == '\r' ? "bare CR" : "invalid character in reason phrase",
                static_cast<size_t>(bad - buf));
  }
  h.reason = buf + rs;
  h.reason_len = le - rs;

  // --- header lines, until the empty line.
  size_t max_count = limits.max_header_count;
  if (fields != nullptr && fields_cap < max_count) max_count = fields_cap;
  HeadState st;
  size_t count = 0;
  size_t pos = le + 2;
  for (;;) {
    lf = static_cast<const char*>(std::memchr(buf + pos, '\n', end - pos));
    // Cannot happen: phase 1 saw CRLF CRLF at the end. Kept so a broken caller cannot make us overrun.
    if (lf == nullptr) return fail(err, Error::BadResponse, "incomplete header block", pos);
    k = static_cast<size_t>(lf - buf);
    // Re-checked here (phase 1 only scanned bytes after prev_len) so a caller passing a wrong
    // prev_len still cannot sneak a bare LF through.
    if (buf[k - 1] != '\r') return fail(err, Error::BadResponse, "bare LF", k);
    le = k - 1;
    if (le == pos) {  // empty line: end of head
      pos = k + 1;
      break;
    }

    // RFC 9112 §5.2: obs-fold must be rejected (or replaced) by a recipient; we reject.
    if (is_ows(buf[pos])) return fail(err, Error::BadResponse, "obs-fold", pos);

    size_t p = pos;
    while (p < le && is_tchar(static_cast<unsigned char>(buf[p]))) ++p;
    if (p == le) return fail(err, Error::BadResponse, "header line without colon", p);
    if (buf[p] != ':') {
      unsigned char c = static_cast<unsigned char>(buf[p]);
      if (c == '\r') return fail(err, Error::BadResponse, "bare CR", p);
      // Only now (error path) look for a colon at all, to give the more useful message.
      if (std::memchr(buf + p, ':', le - p) == nullptr) {
        return fail(err, Error::BadResponse, "header line without colon", p);
      }
      // RFC 9112 §5.1: no whitespace allowed between field name and colon.
      if (is_ows(static_cast<char>(c))) return fail(err, Error::BadResponse, "whitespace before colon", p);
      return fail(err, Error::BadResponse, "invalid character in header name", p);
    }
    if (p == pos) return fail(err, Error::BadResponse, "empty header name", p);
    const char* name = buf + pos;
    size_t name_len = p - pos;

    ++p;  // ':'
    while (p < le && is_ows(buf[p])) ++p;
    size_t vs = p;
    if (const char* bad = find_invalid_field_char(buf + vs, buf + le); bad != buf + le) {
      return fail(err, Error::BadResponse, *bad == '\r' ? "bare CR" : "invalid character in header value",
                  static_cast<size_t>(bad - buf));
    }
    size_t ve = le;
    while (ve > vs && is_ows(buf[ve - 1])) --ve;
    const char* value = buf + vs;
    size_t value_len = ve - vs;

    if (++count > max_count) return fail(err, Error::HeadersTooLarge, "too many headers", pos);
    if (fields != nullptr) fields[count - 1] = HeaderField{name, name_len, value, value_len};

    // Framing-relevant fields. Dispatch on length first so ordinary headers cost one switch.
    switch (name_len) {
      case 10:
        if (ieq(name, name_len, "connection")) {
          handle_connection(value, value_len, &st);
        } else if (ieq(name, name_len, "keep-alive")) {
          handle_keep_alive(value, value_len, &st);
        }
        break;
      case 14:
        if (ieq(name, name_len, "content-length")) {
          if (st.has_te) {
            return fail(err, Error::BadResponse, "both Content-Length and Transfer-Encoding", pos);
          }
          if (const char* r = handle_content_length(value, value_len, &st)) {
            return fail(err, Error::BadResponse, r, vs);
          }
        }
        break;
      case 16:
        if (ieq(name, name_len, "content-encoding")) {
          if (h.content_encoding_count++ == 0) {
            h.content_encoding = value;
            h.content_encoding_len = value_len;
          }
        }
        break;
      case 17:
        if (ieq(name, name_len, "transfer-encoding")) {
          // Only a lone "chunked" has one unambiguous meaning for us. A second Transfer-Encoding line
          // is a list too (RFC 9110 §5.3), so it is rejected like "chunked, chunked".
          if (st.has_te || !ieq(value, value_len, "chunked")) {
            return fail(err, Error::BadResponse, "unsupported transfer-coding", vs);
          }
          // RFC 9112 §6.1: chunked framing does not exist in HTTP/1.0; a 1.0 message carrying it
          // is a smuggling attempt or a broken intermediary.
          if (h.version_minor == 0) {
            return fail(err, Error::BadResponse, "Transfer-Encoding in HTTP/1.0 response", pos);
          }
          if (st.has_content_length) {
            return fail(err, Error::BadResponse, "both Content-Length and Transfer-Encoding", pos);
          }
          st.has_te = true;
        }
        break;
      default:
        break;
    }
    pos = k + 1;
  }

  h.head_len = pos;
  h.header_count = count;
  h.content_length = st.has_content_length ? st.content_length : -1;
  h.has_transfer_encoding = st.has_te;
  h.chunked = st.has_te;
  h.connection_keep_alive = st.keep_alive;
  h.connection_close = st.close || (h.version_minor == 0 && !st.keep_alive);
  h.keep_alive_timeout_s = st.keep_alive_timeout;
  *out = h;
  return ParseStatus::Done;
}

}  // namespace

ParseStatus parse_response_head(const char* buf, size_t len, size_t prev_len, const ParseLimits& limits,
                                ResponseHead* out, HeaderField* fields, size_t fields_cap, ParseError* err) {
  ParseError scratch;
  if (err == nullptr) err = &scratch;

  // Phase 0: reject non-HTTP/1.x peers as early as their first bytes.
  size_t off = 0;
  if (const char* r = check_version_prefix(buf, len < 9 ? len : 9, &off)) {
    return fail(err, Error::BadResponse, r, off);
  }

  // Phase 1: find the end of the head. Every LF must be preceded by CR, and the head ends at the
  // first LF that completes CR LF CR LF. Only bytes from prev_len on are new: the final LF of the
  // terminator cannot lie before prev_len, or the previous call would have returned Done. The
  // search never goes past max_header_size, so an oversized buffer costs nothing extra.
  // A limit below the 9-byte "HTTP/1.x " prefix acts as 9, so the outcome never depends on how
  // the bytes were split (phase 0 must see the prefix before the size limit can fire).
  const size_t max_size = limits.max_header_size < 9 ? 9 : limits.max_header_size;
  size_t limit = len < max_size ? len : max_size;
  size_t i = prev_len <= len ? prev_len : 0;
  size_t end = 0;
  while (i < limit) {
    const char* lf = static_cast<const char*>(std::memchr(buf + i, '\n', limit - i));
    if (lf == nullptr) break;
    size_t k = static_cast<size_t>(lf - buf);
    if (k == 0 || buf[k - 1] != '\r') return fail(err, Error::BadResponse, "bare LF", k);
    if (k >= 3 && buf[k - 2] == '\n' && buf[k - 3] == '\r') {
      end = k + 1;
      break;
    }
    i = k + 1;
  }
  if (end == 0) {
    // No terminator in the first min(len, max) bytes: if we already hold max bytes, the head is
    // necessarily longer than the limit.
    if (len >= max_size) return fail(err, Error::HeadersTooLarge, "header block too large", max_size);
    return ParseStatus::NeedMore;
  }

  // Phase 2: validate and extract.
  return parse_complete_head(buf, end, limits, out, fields, fields_cap, err);
}

Framing response_framing(const ResponseHead& head, bool request_was_head) {
  // RFC 9112 §6.3 rule 1: these never carry content, whatever their headers claim.
  if (request_was_head || head.status < 200 || head.status == 204 || head.status == 304) return Framing::None;
  if (head.chunked) return Framing::Chunked;
  if (head.content_length >= 0) return Framing::Length;
  return Framing::UntilClose;
}

}  // namespace uvf::http1
