// Fuzz target: the HTTP/2 client codec's receive path (http2::H2Session over nghttp2) with
// arbitrary server bytes.
//
// Input: 4 control bytes, then the bytes "the server" sends.
//   [0] bit 0: chrome-like preface (HEADERS priority, PRIORITY frames) else defaults
//       bit 1: small limits (max header list 600, 4 CONTINUATIONs, flood caps 8, high water 512)
//       bit 2: stream 3 paused from the start (resumed half-way)
//       bit 3: ENABLE_PUSH not sent (pushes are refused by RST_STREAM)
//       bit 4: reset stream 1 half-way;  bit 5: GOAWAY from us half-way
//       bit 6: the client does not drain its output (the peer "does not read")
//   [1] how much request body stream 5 sends (x 97 bytes), in two writes
//   [2..3] seed of the split plan
// Streams 1, 3 (GET) and 5 (POST with a body) are submitted before the server bytes arrive.
//
// Invariants:
//   - every submitted stream gets on_stream_close exactly once, no event for a stream after it,
//     none for a stream never submitted; error codes come from the documented set;
//   - header lists delivered never exceed max_header_list_size (decoded, RFC accounting);
//   - a failed connection reports on_connection_error once, after closing every stream, and takes
//     no more input; transport_closed() at the end closes whatever is left;
//   - everything the client writes is the 24-byte magic followed by whole frames no larger than
//     16384 bytes (checked by a frame walker independent of the codec).
#include <algorithm>
#include <cstring>
#include <set>
#include <string>

#include "fuzz_util.h"
#include "http2/h2_session.h"

using namespace uvf;
using namespace uvf::http2;
using uvf_fuzz::Splitter;

namespace {

uint64_t g_now = 0;
uint64_t fake_clock() { return g_now; }

struct Checker : H2Listener {
  std::set<int32_t> submitted, closed;
  size_t max_list = 0;
  int conn_errors = 0;
  bool closed_all_before_conn_error = true;

  void stream_event(int32_t id) {
    FUZZ_CHECK(submitted.count(id) == 1);
    FUZZ_CHECK(closed.count(id) == 0);
  }
  void check_list(const HeaderList& h) {
    size_t n = 0;
    for (auto& kv : h) n += kv.first.size() + kv.second.size() + 32;
    FUZZ_CHECK(n <= max_list);
  }
  void on_informational(int32_t id, int status, const HeaderList& h) override {
    stream_event(id);
    FUZZ_CHECK(status >= 100 && status < 200);
    check_list(h);
  }
  void on_response_headers(int32_t id, int status, const HeaderList& h) override {
    stream_event(id);
    FUZZ_CHECK(status >= 200 && status <= 599);
    check_list(h);
  }
  void on_data(int32_t id, const uint8_t*, size_t len) override {
    stream_event(id);
    FUZZ_CHECK(len > 0);
  }
  void on_trailers(int32_t id, const HeaderList& h) override {
    stream_event(id);
    check_list(h);
  }
  void on_stream_close(int32_t id, const StreamEnd& e) override {
    stream_event(id);
    closed.insert(id);
    switch (e.error) {
      case Error::Ok:
      case Error::Http2Protocol:
      case Error::Http2StreamReset:
      case Error::Http2Goaway:
      case Error::HeadersTooLarge:
      case Error::Aborted:
      case Error::SocketClosed:
        break;
      default:
        FUZZ_CHECK(!"unexpected stream error code");
    }
  }
  void on_connection_error(Error e, uint32_t, const std::string& d) override {
    ++conn_errors;
    FUZZ_CHECK(e == Error::Http2Protocol);
    FUZZ_CHECK(!d.empty());
    if (closed.size() != submitted.size()) closed_all_before_conn_error = false;
  }
};

// Walks the client's output: magic, then whole frames of at most 16384 bytes.
struct OutWalker {
  size_t magic = 24;
  size_t hdr_have = 0;
  uint8_t hdr[9];
  size_t left = 0;
  void walk(const uint8_t* p, size_t n) {
    size_t m = std::min(n, magic);
    static const char kMagic[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    FUZZ_CHECK(std::memcmp(p, &kMagic[24 - magic], m) == 0);
    magic -= m;
    p += m;
    n -= m;
    while (n > 0) {
      if (left == 0) {
        size_t t = std::min(n, 9 - hdr_have);
        std::memcpy(hdr + hdr_have, p, t);
        hdr_have += t;
        p += t;
        n -= t;
        if (hdr_have < 9) return;
        hdr_have = 0;
        left = (size_t{hdr[0]} << 16) | (size_t{hdr[1]} << 8) | hdr[2];
        FUZZ_CHECK(left <= 16384);
        FUZZ_CHECK(hdr[3] <= 9);  // the client sends no extension frame
        continue;
      }
      size_t t = std::min(n, left);
      left -= t;
      p += t;
      n -= t;
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  const uint8_t c0 = data[0], c1 = data[1];
  Splitter split(static_cast<uint16_t>((data[2] << 8) | data[3]));
  data += 4;
  size -= 4;
  g_now = 1000;

  SessionOptions o;
  o.clock_ms = fake_clock;
  if (c0 & 1) {
    o.settings = {{1, 65536}, {2, 0}, {4, 6291456}, {6, 262144}};
    o.connection_window_increment = 15663105;
    o.headers_priority = true;
    o.headers_priority_spec = {0, 0, 256, true};
    o.priority_frames = {{3, 0, 201, false}, {5, 0, 101, false}};
    o.first_stream_id = 1;
  }
  if (c0 & 2) {
    o.max_header_list_size = 600;
    o.max_continuations = 4;
    o.max_settings_frames = o.max_ping_frames = o.max_rst_frames = o.max_window_update_frames = 8;
    o.max_priority_frames = o.max_push_promise_frames = o.max_empty_frames = 8;
    o.output_high_water = 512;
  }
  if (c0 & 8) o.settings = {{4, 65535}};
  Checker ck;
  ck.max_list = o.max_header_list_size;
  Error err;
  std::string why;
  auto s = H2Session::create(o, &ck, &err, &why);
  FUZZ_CHECK(s != nullptr);

  OutWalker walker;
  auto drain = [&](bool force) {
    if ((c0 & 64) && !force) return;
    auto out = s->output();
    walker.walk(out.first, out.second);
    s->consume_output(out.second);
  };
  Header hs[] = {{"user-agent", "fuzz"}, {"accept", "*/*"}};
  for (int i = 0; i < 3; ++i) {
    RequestHead r;
    r.method = i == 2 ? "POST" : "GET";
    r.scheme = "https";
    r.authority = "fuzz.test";
    r.path = "/x";
    r.headers = hs;
    r.header_count = 2;
    r.has_body = i == 2;
    int32_t id = s->submit_request(r, &err, &why);
    FUZZ_CHECK(id == 1 + 2 * i);
    ck.submitted.insert(id);
  }
  if (c0 & 4) s->set_paused(3, true);
  std::string body(size_t{c1} * 97, 'b');
  s->write_body(5, reinterpret_cast<const uint8_t*>(body.data()), body.size() / 2, false);
  drain(true);

  size_t off = 0;
  bool half_done = false;
  while (off < size) {
    size_t n = std::min(split.next_piece(), size - off);
    bool alive = s->feed(data + off, n);
    off += n;
    g_now += 7;
    if (!alive) {
      FUZZ_CHECK(s->failed());
      FUZZ_CHECK(!s->feed(data, 0));  // dead: input refused
      break;
    }
    drain(false);
    if (!half_done && off >= size / 2) {
      half_done = true;
      if (c0 & 4) s->set_paused(3, false);
      if (c0 & 16) s->reset_stream(1);
      if (c0 & 32) s->goaway();
      s->write_body(5, reinterpret_cast<const uint8_t*>(body.data()) + body.size() / 2, body.size() - body.size() / 2,
                    true);
      s->ping(42);
    }
  }
  drain(true);
  if (s->failed() && s->error() != Error::SocketClosed) {
    FUZZ_CHECK(ck.conn_errors == 1);
    FUZZ_CHECK(ck.closed_all_before_conn_error);
  }
  FUZZ_CHECK(ck.conn_errors <= 1);
  (void)s->fingerprint();
  s->transport_closed(Error::SocketClosed, "fuzz input ended");
  FUZZ_CHECK(ck.closed == ck.submitted);
  drain(true);
  return 0;
}
