// One HTTP/1.1 client connection: an explicit state machine over a Transport (client/transport.h:
// resolve, dial, tunnel, TLS). Connection states: Connecting → Idle ⇄ Busy → Closing. While Busy, the response is
// tracked separately (Head → Body → Done) from the request write (head/body sent or not).
// One error path, fail(), routes by state. Callbacks never free: closing hands the connection
// to the engine, which frees it after the loop turn.
#pragma once
#include <uv.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "base/errors.h"
#include "client/engine.h"
#include "client/transport.h"
#include "http1/chunked_decoder.h"
#include "http1/content_decoder.h"
#include "http1/response_parser.h"

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
  Http1Connection* conn = nullptr;
  bool replayable() const { return !streamed_body; }
};

class Http1Connection final : private Transport::Owner {
 public:
  // Connecting covers everything the transport does before it is open (resolve, dial, tunnel, TLS).
  enum class State { Connecting, Idle, Busy, Closing };
  enum class Deadline { None, Connect, Tls, Headers, Body, Idle };

  Http1Connection(Engine* engine, Engine::Key* key);
  ~Http1Connection() override;

  // Resolves (unless an IP literal) and connects. Failures are reported via the engine.
  void start(uint32_t connect_timeout_ms);
  // https: the handshake's own timeout (from the request that opened the connection).
  void set_tls_timeout(uint32_t ms) { tls_timeout_ms_ = ms; }
  // Sends a request on this connection (state must be Idle or just connected).
  void assign(Request* r);
  // Called by the engine when the request is aborted by the user: drop it, destroy the socket.
  void abort_request();
  void pause_reading();
  void resume_reading();
  // End of the loop turn: reading stopped by the per-turn cap starts again (unless paused).
  void unthrottle();
  // Streamed body bytes became available / the body ended.
  void pump_body();
  // Before an idle keep-alive connection is reused: false when the server closed it or sent
  // bytes nobody asked for. Over TLS the waiting records are read and processed first, so
  // post-handshake messages (TLS 1.3 session tickets, key updates) keep the connection usable;
  // only application data, a close_notify, EOF or an error make it dead.
  bool probe_alive();
  bool had_fd() const { return transport_.had_fd(); }
  // Closes the socket (RST if abortive). The request, if any, must already be detached.
  void close(bool abortive);
  // Fails the current request (or the connect) with `e`; no transparent retry.
  void fail_request(Error e, const char* detail) { fail(e, detail, 0, /*allow_retry=*/false); }
  // The deadline passed (the engine checks it): fail or close according to `deadline_kind`.
  void on_deadline();
  // Happy Eyeballs: when to start a connection attempt racing the first one (0: none planned).
  uint64_t race_at() const { return transport_.race_at(); }
  void on_race_deadline() { transport_.on_race_deadline(); }

  State state() const { return state_; }
  Engine::Key* key() const { return key_; }
  Request* request() const { return req_; }
  uint64_t deadline() const { return deadline_; }
  Deadline deadline_kind() const { return deadline_kind_; }
  uint64_t idle_since() const { return idle_since_; }
  uint32_t served() const { return served_; }
  // Position in the engine's list of live connections (for O(1) removal).
  size_t index() const { return index_; }
  void set_index(size_t i) { index_ = i; }
  // Marks a just-connected connection idle without a request.
  void park(uint64_t now);


 private:
  enum class Phase { Head, Body, Done };
  Transport::Options transport_options() const;
  // Transport::Owner
  void transport_handshaking() override;
  void transport_connected(const std::string& alpn) override;
  void transport_data(const char* p, size_t n) override;
  void transport_read_end(int status) override;
  void transport_drained(int status) override;
  void transport_failed(Error e, const char* detail, int sys) override;
  void transport_closed() override;
  void set_deadline(Deadline kind, uint32_t ms);
  void fail(Error e, const char* detail, int sys = 0, bool allow_retry = true);
  void finish_response();
  // Returns false once the connection failed or the response completed with bytes left over.
  bool consume_head(const char*& p, size_t& n);
  bool consume_body(const char* p, size_t n);
  bool deliver_body(const char* p, size_t n);
  bool deliver_decoded(const char* p, size_t n);
  static bool decoded_sink(void* self, const char* p, size_t n);
  bool start_decoding();
  bool finish_decoding();
  void write_request();
  void reset_response_state();

  Engine* engine_;
  Engine::Key* key_;
  Transport transport_;
  State state_ = State::Connecting;
  Request* req_ = nullptr;

  // Response state (valid while Busy).
  Phase phase_ = Phase::Head;
  std::string hbuf_;            // head bytes gathered across reads (empty when parsed in place)
  size_t hprev_ = 0;
  unsigned interim_ = 0;        // 1xx responses skipped
  http1::ResponseHead head_{};
  http1::Framing framing_ = http1::Framing::None;
  uint64_t remaining_ = 0;
  http1::ChunkedDecoder chunked_;
  http1::ContentDecoder decoder_;  // Content-Encoding, when decoding (decoding_)
  bool decoding_ = false;
  std::string raw_head_;        // the final (non-1xx) response head, handed over on completion
  std::string body_;
  uint64_t body_bytes_ = 0;
  uint64_t streamed_out_ = 0;   // streamed request body bytes handed to the socket
  bool last_chunk_sent_ = false;
  bool retry_next_address_ = false;
  bool response_started_ = false;
  bool request_written_ = false;   // head + complete body handed to the socket
  bool write_failed_ = false;
  bool keep_alive_ok_ = true;

  uint64_t deadline_ = 0;
  Deadline deadline_kind_ = Deadline::None;
  uint64_t idle_since_ = 0;
  uint32_t idle_timeout_ms_ = 0;
  uint32_t served_ = 0;
  size_t index_ = 0;
  uint32_t tls_timeout_ms_ = 10'000;
};

}  // namespace uvf
