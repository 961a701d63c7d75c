// Fuzz target: http1::ChunkedDecoder over arbitrary bytes.
//
// Input: 4 control bytes, then the chunked body (and whatever follows it on the wire).
//   [0] bits 0-1: max_line (0: default, 1: c1%32, 2: c1, 3: 0); bit 2: max_trailer_size = c1;
//       bit 3: max_trailer_count = bits 4-7
//   [1] limit parameter
//   [2..3] seed of the split plan
//
// Invariants:
//   - every feed() consumes within its input, makes progress unless done/failed, returns at most
//     one body span lying inside what it consumed (body bytes delivered <= bytes received);
//   - body_bytes() equals the bytes delivered;
//   - once done or failed: consumes nothing more, state and error unchanged;
//   - an error's offset is the number of bytes consumed before the offending one;
//   - the same bytes give the same result (body, bytes consumed, done/failed, error) whether fed
//     at once, in fuzzer-chosen pieces or one byte at a time, and again after reset();
//   - when done, an independent minimal parser of the consumed bytes agrees on body and length.
// Each piece is copied to its own exact-size heap block, so a read past it (or before it) is an
// ASan report.
#include <cstring>
#include <memory>
#include <string>

#include "fuzz_util.h"
#include "http1/chunked_decoder.h"

using namespace uvf::http1;
using uvf_fuzz::Splitter;

namespace {

struct Outcome {
  std::string body;
  size_t consumed = 0;
  bool done = false;
  bool failed = false;
  ParseError err;
};

// Feeds one piece; returns bytes consumed from it.
size_t feed_piece(ChunkedDecoder& dec, const char* src, size_t n, Outcome* o) {
  std::unique_ptr<char[]> piece(new char[n]);
  std::memcpy(piece.get(), src, n);
  const char* p = piece.get();
  size_t off = 0;
  while (off < n) {
    const bool was_finished = dec.done() || dec.failed();
    const ParseError before = dec.error();
    ChunkedDecoder::Step s = dec.feed(p + off, n - off);
    FUZZ_CHECK(s.consumed <= n - off);
    if (s.data == nullptr) {
      FUZZ_CHECK(s.data_len == 0);
    } else {
      FUZZ_CHECK(s.data_len > 0 && s.data_len <= s.consumed);
      FUZZ_CHECK(s.data >= p + off && s.data + s.data_len <= p + off + s.consumed);
      o->body.append(s.data, s.data_len);
    }
    if (was_finished) {
      FUZZ_CHECK(s.consumed == 0 && s.data == nullptr);
      FUZZ_CHECK(dec.done() == o->done && dec.failed() == o->failed);
      FUZZ_CHECK(dec.error().code == before.code && dec.error().offset == before.offset);
      break;
    }
    FUZZ_CHECK(!(dec.done() && dec.failed()));
    o->consumed += s.consumed;
    off += s.consumed;
    FUZZ_CHECK(dec.body_bytes() == o->body.size());
    if (dec.failed()) {
      FUZZ_CHECK(dec.error().code != uvf::Error::Ok && dec.error().reason != nullptr);
      FUZZ_CHECK(dec.error().offset == o->consumed);
      FUZZ_CHECK(s.data == nullptr);
    } else {
      FUZZ_CHECK(dec.error().code == uvf::Error::Ok);
    }
    o->done = dec.done();
    o->failed = dec.failed();
    if (o->done || o->failed) continue;  // one more feed: must consume nothing
    FUZZ_CHECK(s.consumed > 0);
  }
  FUZZ_CHECK(o->body.size() <= o->consumed);
  return off;
}

template <typename NextPiece>
Outcome run(ChunkedDecoder& dec, const char* data, size_t n, NextPiece piece) {
  Outcome o;
  size_t pos = 0;
  while (pos < n) {
    size_t step = piece();
    size_t len = step == 0 || n - pos < step ? n - pos : step;
    feed_piece(dec, data + pos, len, &o);
    pos += len;
  }
  o.err = dec.error();
  return o;
}

void check_same(const Outcome& a, const Outcome& b) {
  FUZZ_CHECK(a.body == b.body);
  FUZZ_CHECK(a.consumed == b.consumed);
  FUZZ_CHECK(a.done == b.done && a.failed == b.failed);
  FUZZ_CHECK(a.err.code == b.err.code && a.err.offset == b.err.offset);
  if (a.failed) FUZZ_CHECK(std::strcmp(a.err.reason, b.err.reason) == 0);
}

bool hex(char c, unsigned* v) {
  if (c >= '0' && c <= '9') *v = static_cast<unsigned>(c - '0');
  else if (c >= 'a' && c <= 'f') *v = static_cast<unsigned>(c - 'a' + 10);
  else if (c >= 'A' && c <= 'F') *v = static_cast<unsigned>(c - 'A' + 10);
  else return false;
  return true;
}

// The body a plain reading of RFC 9112 §7.1 gives for bytes the decoder accepted as a complete
// chunked message: size line (extensions skipped to CRLF), data, CRLF; after the last chunk,
// trailer lines up to an empty line. Returns false if the bytes do not have that shape.
bool reference_decode(const std::string& m, std::string* body) {
  size_t pos = 0;
  auto line_end = [&](size_t from) { return m.find("\r\n", from); };
  for (;;) {
    uint64_t size = 0;
    size_t digits = 0;
    unsigned v;
    while (pos < m.size() && hex(m[pos], &v)) {
      if (++digits > 15) return false;
      size = size * 16 + v;
      ++pos;
    }
    if (digits == 0) return false;
    size_t e = line_end(pos);
    if (e == std::string::npos) return false;
    pos = e + 2;
    if (size == 0) break;
    if (m.size() - pos < size + 2) return false;
    body->append(m, pos, size);
    pos += size;
    if (m.compare(pos, 2, "\r\n") != 0) return false;
    pos += 2;
  }
  for (;;) {  // trailer section
    size_t e = line_end(pos);
    if (e == std::string::npos) return false;
    bool empty = e == pos;
    pos = e + 2;
    if (empty) break;
  }
  return pos == m.size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  const uint8_t c0 = data[0], c1 = data[1];
  const uint16_t seed = static_cast<uint16_t>(data[2] | (data[3] << 8));
  ChunkLimits lim;
  switch (c0 & 3) {
    case 1: lim.max_line = c1 % 32; break;
    case 2: lim.max_line = c1; break;
    case 3: lim.max_line = 0; break;
    default: break;
  }
  if (c0 & 4) lim.max_trailer_size = c1;
  if (c0 & 8) lim.max_trailer_count = c0 >> 4;

  const char* body = reinterpret_cast<const char*>(data + 4);
  const size_t n = size - 4;

  ChunkedDecoder dec(lim);
  Outcome whole = run(dec, body, n, [] { return size_t{0}; });
  // Feeding more after the end: nothing is consumed, nothing changes.
  if (whole.done || whole.failed) {
    Outcome again = whole;
    feed_piece(dec, "0\r\n\r\n", 5, &again);
    check_same(whole, again);
  }

  ChunkedDecoder split_dec(lim);
  Splitter split(seed);
  check_same(whole, run(split_dec, body, n, [&] { return split.next_piece(); }));

  ChunkedDecoder byte_dec(lim);
  check_same(whole, run(byte_dec, body, n, [] { return size_t{1}; }));

  dec.reset();
  FUZZ_CHECK(!dec.done() && !dec.failed() && dec.body_bytes() == 0);
  check_same(whole, run(dec, body, n, [] { return size_t{0}; }));

  if (whole.done) {
    std::string ref;
    FUZZ_CHECK(reference_decode(std::string(body, whole.consumed), &ref));
    FUZZ_CHECK(ref == whole.body);
  }
  return 0;
}
