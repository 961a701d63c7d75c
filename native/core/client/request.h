// A request as the engine keeps it from submit() until it completes, fails or is aborted:
// queued on its pool key, then carried by a connection.
#pragma once
#include <cstdint>
#include <cstring>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "client/connection.h"
#include "loop/deadline_queue.h"

namespace uvf {

using RequestId = uint32_t;

// Streamed request bodies: bytes buffered natively (queued chunks plus the socket's write queue)
// above which write_body() asks the caller to wait for on_drain.
constexpr size_t kBodyHighWater = 64 * 1024;
// Stream-mode responses: most body bytes one request delivers per loop turn before its socket
// stops being read until the turn ends (so a consumer's pause always lands in time).
constexpr size_t kStreamTurnBytes = 256 * 1024;

struct Timeouts {
  uint32_t connect_ms = 10'000;
  uint32_t tls_ms = 10'000;      // TLS handshake (after the TCP connect)
  uint32_t headers_ms = 30'000;  // request assigned → response head complete
  uint32_t body_ms = 30'000;     // idle time between response body bytes
  uint32_t total_ms = 0;         // whole request including queueing; 0 = none
};

struct ResponseLimits {
  uint32_t max_header_size = 64 * 1024;
  uint32_t max_header_count = 200;
  uint64_t max_body_size = 64ull * 1024 * 1024;  // buffered responses only (decoded bytes)
  bool decompress = true;                        // send Accept-Encoding, decode gzip/deflate/br(/zstd)
  double max_decompression_ratio = 100.0;        // decoded/encoded past the first MiB; 0 = unlimited
};


// The request as HTTP semantics see it: method, target and the user's header fields in order,
// in one buffer (no protocol's wire format: each connection encodes its own head from this).
// Layout: each string as a 4-byte length then its bytes (one allocation per request).
class RequestMessage {
 public:
  void set(std::string_view method, std::string_view target, const std::string_view* fields, size_t pairs) {
    size_t total = 8 + method.size() + target.size();
    for (size_t i = 0; i < 2 * pairs; ++i) total += 4 + fields[i].size();
    bytes_.reserve(total);
    add(method);
    add(target);
    for (size_t i = 0; i < 2 * pairs; ++i) add(fields[i]);
    pairs_ = pairs;
  }
  std::string_view method() const { return at(0); }
  std::string_view target() const { return at(4 + len(0)); }
  size_t header_pairs() const { return pairs_; }
  // name, value, name, value, ... (views into this message)
  void header_views(std::vector<std::string_view>* out) const {
    out->clear();
    size_t pos = 4 + len(0);
    pos += 4 + len(pos);  // past the target
    while (pos < bytes_.size()) {
      std::string_view v = at(pos);
      out->push_back(v);
      pos += 4 + v.size();
    }
  }

 private:
  void add(std::string_view s) {
    uint32_t n = static_cast<uint32_t>(s.size());
    bytes_.append(reinterpret_cast<const char*>(&n), 4);
    bytes_.append(s);
  }
  uint32_t len(size_t pos) const {
    uint32_t n;
    std::memcpy(&n, bytes_.data() + pos, 4);
    return n;
  }
  std::string_view at(size_t pos) const { return std::string_view(bytes_.data() + pos + 4, len(pos)); }
  std::string bytes_;
  size_t pairs_ = 0;
};

struct Request {
  enum class State { Queued, Active };
  RequestId id = 0;
  PoolKey* key = nullptr;
  State state = State::Queued;
  RequestMessage message;           // what to send, validated at submit
  std::string head;                 // HTTP/1.1 head, encoded by the first connection that took it
                                    // (kept for a transparent retry)
  std::string body;                 // complete body, if any
  bool has_body = false;            // a complete body (possibly zero-length) is present
  int64_t streamed_length = -1;     // streamed body: its announced length, or -1 (unknown)
  bool streamed_body = false;
  bool body_chunked = false;        // streamed with chunked framing
  bool body_ended = false;          // end_body() called
  std::deque<std::string> chunks;   // streamed body bytes not yet handed to a socket
  size_t chunk_bytes = 0;
  bool drain_wanted = false;
  bool is_head = false;
  bool idempotent = false;
  bool stream_response = false;
  bool conn_close = false;          // the user asked for Connection: close
  bool fresh_only = false;          // retry: must not reuse an idle connection
  bool paused = false;              // the consumer asked us to stop reading (stream mode)
  bool throttled = false;           // reading stopped until the end of this loop turn
  uint64_t turn = 0;                // loop turn that turn_bytes counts
  size_t turn_bytes = 0;            // stream-mode body bytes delivered during `turn`
  uint8_t attempts = 1;
  Timeouts timeouts;
  ResponseLimits limits;
  uint64_t total_deadline = 0;      // 0 = none
  uint64_t fd_deadline = 0;         // waiting for a file descriptor until then; 0 = not waiting
  DeadlineEntry total_timer;        // in the engine's queues (client/engine.h) while due
  DeadlineEntry fd_timer;
  // Timing marks (uv_hrtime ns), only taken when want_timings.
  bool want_timings = false;
  uint64_t t_submit = 0, t_assigned = 0, t_first_byte = 0, t_head = 0;
  uint32_t dns_us = 0, connect_us = 0, tls_us = 0;
  Connection* conn = nullptr;      // the connection carrying it (Active), else null
  int32_t stream_id = 0;           // HTTP/2: its stream on conn
  bool replayable() const { return !streamed_body; }
};

}  // namespace uvf
