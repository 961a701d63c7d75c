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
#include "client/connection.h"
#include "client/engine.h"
#include "client/request.h"
#include "client/transport.h"
#include "http1/chunked_decoder.h"
#include "http1/content_decoder.h"
#include "http1/request_encoder.h"
#include "http1/response_parser.h"

namespace uvf {

class Http1Connection final : public Connection, private Transport::Owner {
 public:
  // Connecting covers everything the transport does before it is open (resolve, dial, tunnel, TLS).
  enum class State : uint8_t { Connecting, Idle, Busy, Closing };
  enum class Deadline : uint8_t { None, Connect, Tls, Headers, Body, Idle };

  Http1Connection(Engine* engine, PoolKey* key);
  ~Http1Connection() override;

  // Connection
  const char* protocol() const override { return "http/1.1"; }
  size_t capacity() const override { return 1; }
  size_t active() const override { return req_ != nullptr ? 1 : 0; }
  Stage stage() const override;
  void start(uint32_t connect_timeout_ms, uint32_t tls_timeout_ms) override;
  void park(uint64_t now) override;
  // Sends the request (state must be Idle, or just connected).
  void assign(Request* r) override;
  // The socket may hold a half-read response: it is destroyed, never reused.
  void abort(Request* r) override;
  void fail(Request* r, Error e, const char* detail) override;
  void fail_all(Error e, const char* detail) override;
  void pause(Request* r) override;
  void resume(Request* r) override;
  void unthrottle(Request* r) override;
  void body_ready(Request* r) override;
  // Before an idle keep-alive connection is reused: false when the server closed it or sent
  // bytes nobody asked for (over TLS, post-handshake records are processed first: see
  // Transport::probe_alive).
  bool probe_alive() override;
  // The phase deadline (connect, TLS, headers, body, idle) or the Happy Eyeballs race.
  uint64_t deadline() const override;
  void on_deadline(uint64_t now) override;
  void close(bool abortive) override;
  bool had_fd() const override { return transport_ != nullptr && transport_->had_fd(); }

  State state() const { return state_; }

 private:
  enum class Phase : uint8_t { Head, Body, Done };
  Transport::Options transport_options(Engine* engine) const;
  Engine* engine() const { return engine_; }
  // Transport::Owner
  Transport::Target transport_target() const override;
  void transport_wake_at(uint64_t at) override { engine()->wake(this, at); }
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
  bool encode_head(Request* r);
  void write_request();
  void reset_response_state();
  void pump_body();
  void phase_deadline();  // deadline_ passed: fail or close according to deadline_kind_

  Engine* engine_;
  std::unique_ptr<Transport> transport_;  // null once handed to an HTTP/2 connection
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
  bool response_started_ = false;
  bool request_written_ = false;   // head + complete body handed to the socket
  bool write_failed_ = false;
  bool keep_alive_ok_ = true;

  uint64_t deadline_ = 0;
  Deadline deadline_kind_ = Deadline::None;
  uint32_t idle_timeout_ms_ = 0;
  uint32_t tls_timeout_ms_ = 10'000;
};

}  // namespace uvf
