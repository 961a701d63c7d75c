// Fuzz target: http1::parse_response_head over arbitrary bytes.
//
// Input: 4 control bytes, then the response bytes.
//   [0] bits 0-1: max_header_size (0: default, 1: c1+9, 2: (c1+1)*16, 3: 9 + c1%16)
//       bit 2: max_header_count = bits 4-7 (else default); bit 3: the request was HEAD
//   [1] size parameter; its high nibble is also the fields_cap of the cap-equivalence check
//   [2..3] seed of the split plan
//
// Invariants:
//   - the same bytes give the same result (status, error code/reason/offset, every head field,
//     every header view) whether parsed at once, in fuzzer-chosen pieces or one byte at a time;
//   - no read outside buf[0..len) on any call: the bytes past the current prefix are poisoned;
//   - a Done head is well formed: ends in CRLF CRLF (its first), no bare CR/LF or NUL, one field
//     per header line, views inside the head, status 100..599, framing fields consistent, the
//     Content-Encoding view is the first such field and the count matches;
//   - fields_cap < max_header_count behaves exactly like max_header_count = fields_cap;
//   - a wrong prev_len never breaks the above well-formedness (only which terminator is found).
#include <sanitizer/asan_interface.h>

#include <strings.h>

#include <cstring>
#include <vector>

#include "fuzz_util.h"
#include "http1/response_parser.h"

using namespace uvf::http1;
using uvf::Error;
using uvf_fuzz::Splitter;

namespace {

constexpr size_t kFieldsCap = 256;  // above every max_header_count used here

struct Outcome {
  ParseStatus status = ParseStatus::NeedMore;
  ParseError err;
  ResponseHead head{};
  std::vector<HeaderField> fields;
};

bool is_tchar_ref(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c != 0 && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr);
}

// Checks one call's result against the bytes it was given (independently of the parser's code).
void check_call(const char* buf, size_t len, const ParseLimits& lim, ParseStatus st, const ParseError& err,
                const ResponseHead& h, const HeaderField* fields, bool request_was_head) {
  if (st == ParseStatus::Error) {
    FUZZ_CHECK(err.code == Error::BadResponse || err.code == Error::HeadersTooLarge);
    FUZZ_CHECK(err.reason != nullptr && err.reason[0] != '\0');
    FUZZ_CHECK(err.offset <= len);
    return;
  }
  if (st == ParseStatus::NeedMore) {
    FUZZ_CHECK(len < lim.max_header_size);
    return;
  }
  FUZZ_CHECK(h.head_len >= 4 && h.head_len <= len && h.head_len <= lim.max_header_size);
  FUZZ_CHECK(std::memcmp(buf + h.head_len - 4, "\r\n\r\n", 4) == 0);
  FUZZ_CHECK(std::memcmp(buf, "HTTP/1.", 7) == 0 && h.version_minor == buf[7] - '0');
  FUZZ_CHECK(h.version_minor == 0 || h.version_minor == 1);
  FUZZ_CHECK(h.status >= 100 && h.status <= 599);
  size_t crlf = 0;
  for (size_t i = 0; i < h.head_len; ++i) {
    unsigned char c = static_cast<unsigned char>(buf[i]);
    FUZZ_CHECK(c != 0);
    if (c == '\r') FUZZ_CHECK(i + 1 < h.head_len && buf[i + 1] == '\n');
    if (c == '\n') {
      FUZZ_CHECK(i > 0 && buf[i - 1] == '\r');
      ++crlf;
      // The first empty line ends the head.
      if (i >= 3 && buf[i - 2] == '\n') FUZZ_CHECK(i + 1 == h.head_len);
    }
  }
  FUZZ_CHECK(crlf >= 2 && h.header_count == crlf - 2);  // status line + one line per field + empty
  FUZZ_CHECK(h.header_count <= lim.max_header_count);
  FUZZ_CHECK(h.reason >= buf && h.reason + h.reason_len <= buf + h.head_len);
  if (fields != nullptr) {
    for (size_t i = 0; i < h.header_count; ++i) {
      const HeaderField& f = fields[i];
      FUZZ_CHECK(f.name_len > 0 && f.name >= buf && f.name + f.name_len <= buf + h.head_len);
      FUZZ_CHECK(f.value >= buf && f.value + f.value_len <= buf + h.head_len);
      for (size_t j = 0; j < f.name_len; ++j) FUZZ_CHECK(is_tchar_ref(static_cast<unsigned char>(f.name[j])));
      FUZZ_CHECK(f.name[f.name_len] == ':');
      for (size_t j = 0; j < f.value_len; ++j) {
        unsigned char c = static_cast<unsigned char>(f.value[j]);
        FUZZ_CHECK(c == '\t' || (c >= 0x20 && c != 0x7f));
      }
      if (f.value_len > 0) {
        FUZZ_CHECK(f.value[0] != ' ' && f.value[0] != '\t');
        FUZZ_CHECK(f.value[f.value_len - 1] != ' ' && f.value[f.value_len - 1] != '\t');
      }
      if (i > 0) FUZZ_CHECK(f.name > fields[i - 1].value);  // wire order
    }
  }
  FUZZ_CHECK(h.content_length >= -1);
  FUZZ_CHECK(h.chunked == h.has_transfer_encoding);
  FUZZ_CHECK(!(h.chunked && h.content_length >= 0));
  FUZZ_CHECK(!(h.chunked && h.version_minor == 0));
  if (h.version_minor == 0 && !h.connection_keep_alive) FUZZ_CHECK(h.connection_close);
  FUZZ_CHECK(h.keep_alive_timeout_s >= -1);
  FUZZ_CHECK(h.content_encoding_count >= 0 && static_cast<size_t>(h.content_encoding_count) <= h.header_count);
  FUZZ_CHECK((h.content_encoding_count == 0) == (h.content_encoding == nullptr));
  if (fields != nullptr) {
    int ce = 0;
    for (size_t i = 0; i < h.header_count; ++i) {
      const HeaderField& f = fields[i];
      if (f.name_len != 16 || strncasecmp(f.name, "content-encoding", 16) != 0) continue;
      if (ce++ == 0) FUZZ_CHECK(h.content_encoding == f.value && h.content_encoding_len == f.value_len);
    }
    FUZZ_CHECK(ce == h.content_encoding_count);
  }
  Framing fr = response_framing(h, request_was_head);
  if (request_was_head || h.status < 200 || h.status == 204 || h.status == 304) {
    FUZZ_CHECK(fr == Framing::None);
  } else {
    FUZZ_CHECK(fr == (h.chunked ? Framing::Chunked : h.content_length >= 0 ? Framing::Length : Framing::UntilClose));
  }
}

// Feeds buf[0..n) in growing prefixes, as a connection appending socket reads to its buffer does.
// piece(): length of the next piece, 0 = everything at once. Bytes not yet "received" are poisoned.
template <typename NextPiece>
Outcome run(char* buf, size_t n, const ParseLimits& lim, bool with_fields, size_t fields_cap,
            bool request_was_head, NextPiece piece) {
  Outcome o;
  HeaderField fields[kFieldsCap];
  ASAN_POISON_MEMORY_REGION(buf, n);
  size_t prev = 0;
  for (;;) {
    size_t step = piece();
    size_t len = step == 0 || n - prev < step ? n : prev + step;
    ASAN_UNPOISON_MEMORY_REGION(buf, len);
    ParseError err;
    ResponseHead h{};
    o.status = parse_response_head(buf, len, prev, lim, &h, with_fields ? fields : nullptr, fields_cap, &err);
    check_call(buf, len, lim, o.status, err, h, with_fields ? fields : nullptr, request_was_head);
    if (o.status == ParseStatus::Error) o.err = err;
    if (o.status == ParseStatus::Done) {
      o.head = h;
      if (with_fields) o.fields.assign(fields, fields + h.header_count);
    }
    if (o.status != ParseStatus::NeedMore || len == n) break;
    prev = len;
  }
  ASAN_UNPOISON_MEMORY_REGION(buf, n);
  return o;
}

void check_same(const Outcome& a, const Outcome& b, bool compare_fields) {
  FUZZ_CHECK(a.status == b.status);
  if (a.status == ParseStatus::Error) {
    FUZZ_CHECK(a.err.code == b.err.code);
    FUZZ_CHECK(std::strcmp(a.err.reason, b.err.reason) == 0);
    FUZZ_CHECK(a.err.offset == b.err.offset);
  }
  if (a.status != ParseStatus::Done) return;
  const ResponseHead& x = a.head;
  const ResponseHead& y = b.head;
  FUZZ_CHECK(x.version_minor == y.version_minor && x.status == y.status);
  FUZZ_CHECK(x.reason == y.reason && x.reason_len == y.reason_len);
  FUZZ_CHECK(x.head_len == y.head_len && x.header_count == y.header_count);
  FUZZ_CHECK(x.content_length == y.content_length);
  FUZZ_CHECK(x.has_transfer_encoding == y.has_transfer_encoding && x.chunked == y.chunked);
  FUZZ_CHECK(x.connection_close == y.connection_close && x.connection_keep_alive == y.connection_keep_alive);
  FUZZ_CHECK(x.keep_alive_timeout_s == y.keep_alive_timeout_s);
  FUZZ_CHECK(x.content_encoding == y.content_encoding && x.content_encoding_len == y.content_encoding_len);
  FUZZ_CHECK(x.content_encoding_count == y.content_encoding_count);
  if (!compare_fields) return;
  FUZZ_CHECK(a.fields.size() == b.fields.size());
  for (size_t i = 0; i < a.fields.size(); ++i) {
    FUZZ_CHECK(a.fields[i].name == b.fields[i].name && a.fields[i].name_len == b.fields[i].name_len);
    FUZZ_CHECK(a.fields[i].value == b.fields[i].value && a.fields[i].value_len == b.fields[i].value_len);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 5) return 0;  // the control bytes and at least one byte of response
  const uint8_t c0 = data[0], c1 = data[1];
  const uint16_t seed = static_cast<uint16_t>(data[2] | (data[3] << 8));
  ParseLimits lim;
  switch (c0 & 3) {
    // Never below 9 (the "HTTP/1.x " prefix): a smaller limit is unreachable from JS (>= 64) and
    // makes the result split-dependent, see crashes/README.md.
    case 1: lim.max_header_size = size_t{c1} + 9; break;
    case 2: lim.max_header_size = (size_t{c1} + 1) * 16; break;
    case 3: lim.max_header_size = 9 + c1 % 16; break;
    default: break;
  }
  if (c0 & 4) lim.max_header_count = c0 >> 4;
  const bool request_was_head = (c0 & 8) != 0;

  const size_t n = size - 4;
  std::vector<char> storage(data + 4, data + size);  // exact size: ASan sees the true end
  char* buf = storage.data();

  Outcome whole = run(buf, n, lim, true, kFieldsCap, request_was_head, [] { return size_t{0}; });
  Splitter split(seed);
  Outcome pieces = run(buf, n, lim, true, kFieldsCap, request_was_head, [&] { return split.next_piece(); });
  check_same(whole, pieces, true);
  Outcome bytes = run(buf, n, lim, false, 0, request_was_head, [] { return size_t{1}; });
  check_same(whole, bytes, false);

  // fields_cap below max_header_count fails exactly like that max_header_count (fields unused).
  const size_t cap = c1 >> 4;
  if (cap < lim.max_header_count) {
    Outcome capped = run(buf, n, lim, true, cap, request_was_head, [] { return size_t{0}; });
    ParseLimits lower = lim;
    lower.max_header_count = cap;
    Outcome limited = run(buf, n, lower, false, 0, request_was_head, [] { return size_t{0}; });
    check_same(capped, limited, false);
  }

  // A caller passing a wrong prev_len: may find a later terminator, must still never overrun or
  // return a malformed head.
  {
    ParseError err;
    ResponseHead h{};
    HeaderField fields[kFieldsCap];
    size_t wrong = seed % (n + 2);
    ParseStatus st = parse_response_head(buf, n, wrong, lim, &h, fields, kFieldsCap, &err);
    check_call(buf, n, lim, st, err, h, fields, request_was_head);
  }
  return 0;
}
