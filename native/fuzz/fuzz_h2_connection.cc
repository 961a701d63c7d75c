// Fuzz target: the HTTP/2 receive path through the engine's glue — Engine → pool →
// Http1Connection (connect, prior-knowledge handover) → Http2Connection → H2Session → nghttp2 —
// with arbitrary server bytes, on a real libuv loop and the socket-less MemorySocket.
//
// Input: 1 control byte, then the bytes "the server" sends (delivered once the client's preface
// is written, as MemorySocket answers a request head).
//   [0] bit 0: request 2 is a POST with a 3000-byte body;  bit 1: request 3 is streamed
//       bit 2: request 3 is paused (stream mode) after its head;  bit 3: abort request 1 half-way
//       bit 4: small limits (maxHeaderSize 600, maxBodySize 2000, maxHeaderCount 8)
//       bit 5: session close (graceful) instead of destroy at the end
// Three requests are submitted before any byte arrives (one connection: h2c by prior knowledge).
//
// Invariants (abort() on violation, so libFuzzer keeps the input):
//   - every request ends exactly once (complete, end or error), except the one aborted by us,
//     which never reports; nothing is reported for an unknown id;
//   - a buffered body never exceeds maxBodySize; a head never exceeds maxHeaderSize (+ status line);
//   - error codes are in the engine's closed set;
//   - teardown (destroy or close) ends with on_closed and every handle closed (ASan/LSan check the
//     rest: no leak, no use after free).
#include <uv.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>

#include "client/engine.h"
#include "net/memory_socket.h"

using namespace uvf;

namespace {

#define CHECK_OR_DIE(c)                                                        \
  do {                                                                         \
    if (!(c)) {                                                                \
      std::fprintf(stderr, "invariant failed: %s (line %d)\n", #c, __LINE__);  \
      std::abort();                                                            \
    }                                                                          \
  } while (0)

struct Sink final : EngineSink {
  std::map<RequestId, int> ended;  // id -> how many times it ended
  uint64_t max_body = 0;
  uint32_t max_head = 0;
  bool closed = false;
  void end(RequestId id) {
    CHECK_OR_DIE(id >= 1 && id <= 3);
    ++ended[id];
  }
  void on_complete(RequestId id, const ResponseMeta& m, std::string&& head, std::string&& body) override {
    CHECK_OR_DIE(m.version_major == 2);
    CHECK_OR_DIE(body.size() <= max_body);
    CHECK_OR_DIE(head.size() <= max_head + 16);
    end(id);
  }
  void on_head(RequestId id, const ResponseMeta&, std::string&& head) override {
    CHECK_OR_DIE(head.size() <= max_head + 16);
    CHECK_OR_DIE(id >= 1 && id <= 3);
  }
  void on_data(RequestId id, const char*, size_t) override { CHECK_OR_DIE(id >= 1 && id <= 3); }
  void on_end(RequestId id) override { end(id); }
  void on_error(RequestId id, Error e, const char*, int) override {
    CHECK_OR_DIE(static_cast<int>(e) > 0 && e < Error::Count_);
    end(id);
  }
  void on_drain(RequestId) override {}
  void on_timings(RequestId, const RequestTimings&) override {}
  void on_dns_lookup(uint64_t, const std::string&, int) override { CHECK_OR_DIE(false); }
  void on_dns_result(uint32_t, Error, const std::vector<dns::Address>&, size_t) override {}
  void on_closed() override { closed = true; }
  void flush() override {}
};

uv_loop_t* loop() {
  static uv_loop_t* l = [] {
    auto* x = new uv_loop_t;
    uv_loop_init(x);
    return x;
  }();
  return l;
}

void submit(Engine* e, RequestId id, std::string_view method, bool body, bool stream) {
  RequestSpec r;
  r.id = id;
  r.origin.host = "127.0.0.1";
  r.origin.port = 80;
  r.origin.authority = "127.0.0.1";
  r.method = method;
  r.target = "/";
  if (body) {
    r.body.assign(3000, 'b');
    r.has_body = true;
  }
  r.stream_response = stream;
  const char* detail = nullptr;
  CHECK_OR_DIE(e->submit(std::move(r), &detail) == Error::Ok);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  uint8_t ctl = data[0];
  EngineOptions o;
  std::string reply(reinterpret_cast<const char*>(data + 1), size - 1);
  if (reply.empty()) reply = std::string(1, '\0');  // MemorySocket needs one
  o.socket_factory = memory_socket_factory(std::move(reply));
  o.http2.mode = Http2EngineOptions::Mode::PriorKnowledge;
  o.http2.settings_timeout_ms = 0;
  o.timeouts.headers_ms = 0;
  o.timeouts.body_ms = 0;
  if (ctl & 16) {
    o.limits.max_header_size = 600;
    o.limits.max_body_size = 2000;
    o.limits.max_header_count = 8;
  }
  o.http2.session.max_header_list_size = o.limits.max_header_size;
  Sink sink;
  sink.max_body = o.limits.max_body_size;
  sink.max_head = o.limits.max_header_size;
  Error err = Error::Ok;
  const char* why = nullptr;
  std::unique_ptr<Engine> e = Engine::create(loop(), &sink, o, &err, &why);
  CHECK_OR_DIE(e != nullptr);
  submit(e.get(), 1, "GET", false, false);
  submit(e.get(), 2, (ctl & 1) ? "POST" : "GET", (ctl & 1) != 0, false);
  submit(e.get(), 3, "GET", false, (ctl & 2) != 0);
  for (int i = 0; i < 40; ++i) {
    uv_run(loop(), UV_RUN_NOWAIT);
    if (i == 3 && (ctl & 8) && sink.ended.count(1) == 0) e->abort(1);
    if (i == 5 && (ctl & 4)) e->pause(3);
    if (i == 20 && (ctl & 4)) e->resume(3);
  }
  if (ctl & 32) {
    e->close();
    for (int i = 0; i < 40 && !sink.closed; ++i) uv_run(loop(), UV_RUN_NOWAIT);
  }
  if (!sink.closed) e->destroy();
  for (int i = 0; i < 1000 && !sink.closed; ++i) uv_run(loop(), UV_RUN_NOWAIT);
  CHECK_OR_DIE(sink.closed);
  for (RequestId id = 1; id <= 3; ++id) {
    int n = sink.ended.count(id) ? sink.ended[id] : 0;
    bool aborted = id == 1 && (ctl & 8) != 0;
    CHECK_OR_DIE(aborted ? n <= 1 : n == 1);
  }
  e.reset();
  uv_run(loop(), UV_RUN_NOWAIT);  // the engine's handles are closed; nothing may be left
  return 0;
}
