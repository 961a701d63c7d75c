// Tests for http1/chunked_decoder: every strictness rule (valid and invalid), split/byte-at-a-time
// equivalence, never consuming past the message, and overreads (each piece ends at a guard page).
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "check.h"
#include "guard_page.h"
#include "http1/chunked_decoder.h"

using namespace uvf;
using namespace uvf::http1;
using uvf_test::GuardedBuffer;

namespace {


GuardedBuffer& guard() {
  static GuardedBuffer g(256 * 1024);
  return g;
}

// Feeds `s` cut at the given positions (each piece placed against the guard page) and renders the
// outcome: decoded body, state, total consumed, error. Also checks the Step contract on the way.
std::string decode(const std::string& s, const std::vector<size_t>& cuts, const ChunkLimits& lim = {},
                   ChunkedDecoder* reuse = nullptr) {
  ChunkedDecoder local(lim);
  ChunkedDecoder& d = reuse ? *reuse : local;
  std::string body;
  size_t consumed = 0;
  size_t start = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(s.size());
  for (size_t end : ends) {
    if (end < start) continue;
    const char* piece = guard().place(s.data() + start, end - start);
    size_t n = end - start, off = 0;
    while (off < n && !d.done() && !d.failed()) {
      ChunkedDecoder::Step st = d.feed(piece + off, n - off);
      if (st.consumed == 0 && !d.done() && !d.failed()) return "STALL";
      if (st.consumed > n - off) return "OVERCONSUMED";
      if (st.data != nullptr) {
        // The span must lie inside what this call consumed.
        if (st.data < piece + off || st.data + st.data_len > piece + off + st.consumed || st.data_len == 0) {
          return "BAD SPAN";
        }
        body.append(st.data, st.data_len);
      } else if (st.data_len != 0) {
        return "BAD SPAN";
      }
      off += st.consumed;
      consumed += st.consumed;
    }
    start = end;
  }
  if (d.body_bytes() != body.size()) return "BAD body_bytes";
  std::string o = "body=[" + body + "] consumed=" + std::to_string(consumed);
  if (d.done()) o += " done";
  if (d.failed()) {
    o += std::string(" failed ") + error_code(d.error().code) + " '" + d.error().reason + "' @" +
         std::to_string(d.error().offset);
  }
  return o;
}

std::string whole(const std::string& s, const ChunkLimits& lim = {}) { return decode(s, {}, lim); }

// Same result for every two-piece split and for one byte at a time.
void check_splits(const std::string& s, const ChunkLimits& lim = {}) {
  std::string w = whole(s, lim);
  for (size_t k = 0; k <= s.size(); ++k) {
    std::string got = decode(s, {k}, lim);
    if (got != w) {
      std::fprintf(stderr, "  split at %zu of %zu\n", k, s.size());
      CHECK_EQ(got, w);
      return;
    }
  }
  std::vector<size_t> every;
  for (size_t k = 1; k < s.size(); ++k) every.push_back(k);
  CHECK_EQ(decode(s, every, lim), w);
}

void ok(const std::string& s, const std::string& body, const ChunkLimits& lim = {}) {
  CHECK_EQ(whole(s, lim), "body=[" + body + "] consumed=" + std::to_string(s.size()) + " done");
  check_splits(s, lim);
}

// Expects failure with this code and reason; `at` is the offending byte's offset (or -1: any).
void bad(const std::string& s, Error code, const std::string& reason, long at = -1, const ChunkLimits& lim = {}) {
  std::string w = whole(s, lim);
  std::string want = std::string(" failed ") + error_code(code) + " '" + reason + "' @";
  size_t p = w.find(want);
  if (p == std::string::npos) {
    std::fprintf(stderr, "  input [%s]\n", s.c_str());
    CHECK_EQ(w, want);
  } else if (at >= 0) {
    CHECK_EQ(w.substr(p + want.size()), std::to_string(at));
  }
  check_splits(s, lim);
}

void bad(const std::string& s, const std::string& reason, long at = -1) { bad(s, Error::BadResponse, reason, at); }

}  // namespace

TEST(cd_basic) {
  ok("5\r\nhello\r\n0\r\n\r\n", "hello");
  ok("0\r\n\r\n", "");
  ok("3\r\nabc\r\n4\r\ndefg\r\n1\r\nh\r\n0\r\n\r\n", "abcdefgh");
  ok("a\r\n0123456789\r\nA\r\nabcdefghij\r\n0\r\n\r\n", "0123456789abcdefghij");
  ok("0005\r\nhello\r\n000\r\n\r\n", "hello");
  ok("1F\r\n" + std::string(31, 'x') + "\r\n0\r\n\r\n", std::string(31, 'x'));
  ok(std::string("5\r\n\r\n\r\n\0\r\n0\r\n\r\n", 15), std::string("\r\n\r\n\0", 5));  // chunk data is opaque
}

TEST(cd_one_span_per_call) {
  std::string s = "3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n";
  const char* p = guard().place(s.data(), s.size());
  ChunkedDecoder d;
  ChunkedDecoder::Step st = d.feed(p, s.size());
  CHECK_EQ(st.consumed, 6u);  // size line + data, stops after the first span
  CHECK(st.data == p + 3);
  CHECK_EQ(st.data_len, 3u);
  CHECK_EQ(d.body_bytes(), 3u);
  st = d.feed(p + 6, s.size() - 6);
  CHECK_EQ(st.consumed, 8u);
  CHECK(st.data == p + 11);
  CHECK_EQ(std::string(st.data, st.data_len), "def");
  st = d.feed(p + 14, s.size() - 14);
  CHECK_EQ(st.consumed, s.size() - 14);
  CHECK(st.data == nullptr && st.data_len == 0);
  CHECK(d.done() && !d.failed());
  CHECK_EQ(d.body_bytes(), 6u);
}

TEST(cd_stops_at_message_end) {
  std::string s = "2\r\nhi\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n";
  CHECK_EQ(whole(s), "body=[hi] consumed=12 done");
  check_splits(s);
  // After done, nothing more is consumed.
  ChunkedDecoder d;
  const char* p = guard().place("0\r\n\r\nXYZ", 8);
  ChunkedDecoder::Step st = d.feed(p, 8);
  CHECK_EQ(st.consumed, 5u);
  CHECK(d.done());
  st = d.feed(p + 5, 3);
  CHECK_EQ(st.consumed, 0u);
  CHECK(st.data == nullptr);
  CHECK(d.done());
  st = d.feed(p, 0);
  CHECK_EQ(st.consumed, 0u);
}

TEST(cd_large_chunk_single_span) {
  std::string data(100000, 'z');
  std::string s = "186a0\r\n" + data + "\r\n0\r\n\r\n";
  const char* p = guard().place(s.data(), s.size());
  ChunkedDecoder d;
  ChunkedDecoder::Step st = d.feed(p, s.size());
  CHECK_EQ(st.data_len, 100000u);
  CHECK(st.data == p + 7);
  CHECK_EQ(whole(s), "body=[" + data + "] consumed=" + std::to_string(s.size()) + " done");
}

TEST(cd_extensions) {
  ok("5;foo=bar\r\nhello\r\n0;last\r\n\r\n", "hello");
  ok("5;a=\"q s\\\"t\";b\r\nhello\r\n0\r\n\r\n", "hello");
  ok("5 ;x\r\nhello\r\n0\t \t;y=1\r\n\r\n", "hello");  // BWS before ';'
  ok("5;\xe9\xff\r\nhello\r\n0\r\n\r\n", "hello");
  bad("5;a\x01\r\nhello\r\n0\r\n\r\n", "invalid character in chunk extension", 3);
  bad(std::string("5;a\0\r\nhello\r\n0\r\n\r\n", 19), "invalid character in chunk extension", 3);
  bad("5;a\x7f\r\nhello\r\n0\r\n\r\n", "invalid character in chunk extension", 3);
  bad("5;a\nhello\r\n0\r\n\r\n", "bare LF", 3);
  bad("5;a\rhello\r\n0\r\n\r\n", "bare CR", 4);

  ChunkLimits lim;
  lim.max_line = 16;
  std::string at_limit = "5;" + std::string(14, 'e');  // 16 bytes before CRLF
  ok(at_limit + "\r\nhello\r\n0\r\n\r\n", "hello", lim);
  bad(at_limit + "e\r\nhello\r\n0\r\n\r\n", Error::BadResponse, "chunk extension too long", 16, lim);
  bad("5" + std::string(16, ' ') + ";\r\nhello\r\n0\r\n\r\n", Error::BadResponse, "chunk extension too long", 16, lim);
  // Default limit: 1024.
  ok("5;" + std::string(1022, 'e') + "\r\nhello\r\n0\r\n\r\n", "hello");
  bad("5;" + std::string(1023, 'e') + "\r\nhello\r\n0\r\n\r\n", "chunk extension too long", 1024);
  // An endless extension fails at the limit, without waiting for a CRLF.
  CHECK(whole("5;" + std::string(5000, 'e')).find("chunk extension too long") != std::string::npos);
}

TEST(cd_invalid_size) {
  bad("\r\n\r\n", "invalid chunk size", 0);
  bad("0x5\r\nhello\r\n0\r\n\r\n", "invalid chunk size", 1);
  bad(" 5\r\nhello\r\n0\r\n\r\n", "invalid chunk size", 0);
  bad("\t5\r\nhello\r\n0\r\n\r\n", "invalid chunk size", 0);
  bad("+5\r\nhello\r\n0\r\n\r\n", "invalid chunk size", 0);
  bad("-5\r\nhello\r\n0\r\n\r\n", "invalid chunk size", 0);
  bad("g\r\n\r\n", "invalid chunk size", 0);
  bad("5g\r\nhello\r\n0\r\n\r\n", "invalid chunk size", 1);
  bad("5 \r\nhello\r\n0\r\n\r\n", "invalid chunk size", 2);  // trailing whitespace without ';'
  bad("5 x\r\nhello\r\n0\r\n\r\n", "invalid chunk size", 2);
  bad(";x\r\n\r\n", "invalid chunk size", 0);
  bad("5\r\nhello\r\nz\r\n\r\n", "invalid chunk size", 10);
}

TEST(cd_size_overflow) {
  // 15 hex digits is the most accepted (2^60 - 1 here); the decoder then waits for data.
  CHECK_EQ(whole("fffffffffffffff\r\nabc"), "body=[abc] consumed=20");
  CHECK_EQ(whole("000000000000001\r\na\r\n0\r\n\r\n"), "body=[a] consumed=25 done");
  bad("1000000000000000\r\n", "chunk size overflow", 15);
  bad("0000000000000001\r\nx\r\n0\r\n\r\n", "chunk size overflow", 15);
  bad("ffffffffffffffffffff\r\n", "chunk size overflow", 15);
  bad("5\r\nhello\r\n10000000000000000\r\n", "chunk size overflow", 25);
}

TEST(cd_missing_crlf_after_data) {
  bad("5\r\nhelloX\r\n0\r\n\r\n", "missing CRLF after chunk data", 8);
  bad("5\r\nhello\n0\r\n\r\n", "missing CRLF after chunk data", 8);
  bad("5\r\nhello\rX\n0\r\n\r\n", "missing CRLF after chunk data", 9);
  bad("5\r\nhello\r\r\n0\r\n\r\n", "missing CRLF after chunk data", 9);
  bad("5\r\nhello0\r\n\r\n", "missing CRLF after chunk data", 8);
  bad("3\r\nhello\r\n0\r\n\r\n", "missing CRLF after chunk data", 6);  // chunk longer than declared
}

TEST(cd_bare_lf_cr_in_size_line) {
  bad("5\nhello\r\n0\r\n\r\n", "bare LF", 1);
  bad("5\rhello\r\n0\r\n\r\n", "bare CR", 2);
  bad("5\r\r\nhello\r\n0\r\n\r\n", "bare CR", 2);
  bad("5\r\nhello\r\n0\n\r\n", "bare LF", 11);
  bad("5\r\nhello\r\n0\r\n\n", "bare LF", 13);
  bad("5\r\nhello\r\n0\r\n\rX", "bare CR", 14);
  bad("5 \n", "bare LF", 2);
}

TEST(cd_trailers_valid) {
  ok("5\r\nhello\r\n0\r\nExpires: never\r\n\r\n", "hello");
  ok("0\r\nA: b\r\nX-!#$%&'*+-.^_`|~09aZ:\r\nC:  \t d e \xe9\r\n\r\n", "");
  std::string s = "0\r\nA: b\r\n\r\nNEXT";
  CHECK_EQ(whole(s), "body=[] consumed=" + std::to_string(s.size() - 4) + " done");
}

TEST(cd_trailers_kept_for_trailers) {
  // Field lines as sent, final CRLF not included, whatever the split; reset() forgets them.
  std::string s = "5\r\nhello\r\n0\r\nX-Checksum: abc\r\nB:c\r\n\r\n";
  for (size_t cut = 0; cut <= s.size(); ++cut) {
    ChunkedDecoder d;
    std::string r = decode(s, {cut}, {}, &d);
    CHECK_EQ(r, "body=[hello] consumed=" + std::to_string(s.size()) + " done");
    CHECK_EQ(d.trailers(), "X-Checksum: abc\r\nB:c\r\n");
  }
  ChunkedDecoder d;
  decode(s, {}, {}, &d);
  CHECK_EQ(d.take_trailers(), "X-Checksum: abc\r\nB:c\r\n");
  CHECK(d.trailers().empty());
  decode(s, {}, {}, &d);
  d.reset();
  CHECK(d.trailers().empty());
  ChunkedDecoder none;
  decode("3\r\nabc\r\n0\r\n\r\n", {}, {}, &none);
  CHECK(none.done());
  CHECK(none.trailers().empty());
}

TEST(cd_trailers_invalid) {
  bad("0\r\nA: b\r\n c\r\n\r\n", "obs-fold", 9);
  bad("0\r\n\tA: b\r\n\r\n", "obs-fold", 3);
  bad("0\r\nA: b\n\r\n", "bare LF", 7);
  bad("0\r\nA: b\rc\r\n\r\n", "bare CR", 8);
  bad("0\r\nA\n\r\n", "bare LF", 4);
  bad("0\r\nA\r\n\r\n", "header line without colon", 5);
  bad("0\r\nA\rB: c\r\n\r\n", "bare CR", 5);
  bad("0\r\n: b\r\n\r\n", "empty header name", 3);
  bad("0\r\nA : b\r\n\r\n", "whitespace before colon", 4);
  bad("0\r\nA@: b\r\n\r\n", "invalid character in header name", 4);
  bad("0\r\n@A: b\r\n\r\n", "invalid character in header name", 3);
  bad(std::string("0\r\nA: b\0\r\n\r\n", 12), "invalid character in header value", 7);
  bad("0\r\nA: b\x7f\r\n\r\n", "invalid character in header value", 7);
  bad("0\r\nA: b\x01\r\n\r\n", "invalid character in header value", 7);
  bad("0\r\n\rX", "bare CR", 4);
}

TEST(cd_trailer_limits) {
  ChunkLimits lim;
  lim.max_trailer_count = 2;
  ok("0\r\nA: 1\r\nB: 2\r\n\r\n", "", lim);
  bad("0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", Error::HeadersTooLarge, "too many trailers", 15, lim);
}

TEST(cd_trailer_size_limit) {
  ChunkLimits sz;
  sz.max_trailer_size = 12;
  ok("0\r\nA: 12345\r\n\r\n", "", sz);  // exactly 12 trailer bytes, final CRLF included
  bad("0\r\nA: 123456\r\n\r\n", Error::HeadersTooLarge, "trailer section too large", 15, sz);
  // Endless trailers fail at the limit, with no terminator in sight.
  CHECK(whole("0\r\nA: " + std::string(70000, 'x')).find("trailer section too large") != std::string::npos);
  std::string many = "0\r\n";
  for (int i = 0; i < 201; ++i) many += "T: v\r\n";
  CHECK(whole(many + "\r\n").find("'too many trailers'") != std::string::npos);
}

TEST(cd_reset_and_reuse) {
  ChunkedDecoder d;
  CHECK_EQ(decode("3\r\nabc\r\n0\r\n\r\n", {}, {}, &d), "body=[abc] consumed=13 done");
  d.reset();
  CHECK(!d.done() && !d.failed());
  CHECK_EQ(d.body_bytes(), 0u);
  CHECK_EQ(decode("2\r\nxy\r\n0\r\n\r\n", {}, {}, &d), "body=[xy] consumed=12 done");
  d.reset();
  CHECK_EQ(decode("x", {}, {}, &d), "body=[] consumed=0 failed ERR_BAD_RESPONSE 'invalid chunk size' @0");
  CHECK(d.failed());
  d.reset();
  CHECK(!d.failed());
  CHECK(d.error().code == Error::Ok);
  CHECK_EQ(decode("1\r\nz\r\n0\r\n\r\n", {}, {}, &d), "body=[z] consumed=11 done");
}

TEST(cd_failed_is_sticky) {
  ChunkedDecoder d;
  const char* p = guard().place("5\r\nhelloX0\r\n\r\n", 14);
  size_t off = 0;
  while (off < 14 && !d.failed()) off += d.feed(p + off, 14 - off).consumed;
  CHECK(d.failed());
  CHECK_EQ(off, 8u);
  ChunkedDecoder::Step st = d.feed(p + off, 14 - off);
  CHECK_EQ(st.consumed, 0u);
  CHECK_EQ(std::string(d.error().reason), "missing CRLF after chunk data");
  CHECK_EQ(d.error().offset, 8u);
}

TEST(cd_incomplete_then_more) {
  // Partial input is not an error; the decoder simply waits.
  CHECK_EQ(whole("5\r\nhel"), "body=[hel] consumed=6");
  CHECK_EQ(whole("5"), "body=[] consumed=1");
  CHECK_EQ(whole("5;ext"), "body=[] consumed=5");
  CHECK_EQ(whole("0\r\nA: b\r\n"), "body=[] consumed=9");
  CHECK_EQ(whole("0\r\n\r"), "body=[] consumed=4");
}

TEST(cd_split_equivalence) {
  // ok()/bad() split every case above already; one longer realistic body on top.
  std::string s;
  for (int i = 1; i <= 12; ++i) {
    char size[8];
    std::snprintf(size, sizeof size, "%x", i * 7);
    s += std::string(size) + (i % 3 == 0 ? ";name=\"v\"" : "") + "\r\n" + std::string(i * 7, char('a' + i)) + "\r\n";
  }
  s += "0\r\nServer-Timing: db;dur=53\r\nX-Checksum: abc\r\n\r\n";
  check_splits(s);
  check_splits(s + "trailing");
}
