// A request as the engine keeps it from submit() until it completes, fails or is aborted:
// queued on its pool key, then carried by a connection.
#pragma once
#include <cstdint>
#include <deque>
#include <string>

#include "client/connection.h"
#include "client/engine.h"

namespace uvf {

struct Request {
  enum class State { Queued, Active };
  RequestId id = 0;
  Engine::Key* key = nullptr;
  State state = State::Queued;
  std::string head;                 // encoded request head
  std::string body;                 // complete body, if any
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
  // Timing marks (uv_hrtime ns), only taken when want_timings.
  bool want_timings = false;
  uint64_t t_submit = 0, t_assigned = 0, t_first_byte = 0, t_head = 0;
  uint32_t dns_us = 0, connect_us = 0, tls_us = 0;
  Connection* conn = nullptr;      // the connection carrying it (Active), else null
  bool replayable() const { return !streamed_body; }
};

}  // namespace uvf
