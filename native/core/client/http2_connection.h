// One HTTP/2 client connection (RFC 9113): many requests at once, each on its own stream, over the
// Transport an Http1Connection connected (ALPN chose h2, or h2c by prior knowledge) and handed over.
// The frames are nghttp2's, through the codec in http2/h2_session.h (preface control, flood and
// HPACK limits, per-stream flow control); this class is the glue to the engine:
//   - requests are encoded here, from the semantic RequestMessage (lower-case names, no
//     connection-specific fields, :authority from Host);
//   - responses become the same events as HTTP/1.1 (a head in HTTP/1 text form "HTTP/2 200\r\n...",
//     body bytes, decoded by Content-Encoding exactly as there);
//   - per-stream deadlines (headers, body), the connection's idle timeout, the SETTINGS ACK wait;
//   - abort, timeouts and pause act on one stream (RST_STREAM(CANCEL), withheld WINDOW_UPDATE);
//     the other streams carry on;
//   - streams the server did not process (GOAWAY's last-stream-id, REFUSED_STREAM) run again on a
//     fresh connection once, whatever the method (RFC 9113 §8.7);
//   - output encoded during a loop turn is written once, at its end (Engine::defer_output).
#pragma once
#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/errors.h"
#include "client/connection.h"
#include "client/engine.h"
#include "client/request.h"
#include "client/transport.h"
#include "http1/content_decoder.h"
#include "http2/h2_session.h"

namespace uvf {

class Http2Connection final : public Connection, private Transport::Owner, private http2::H2Listener {
 public:
  // Takes over `transport`, which is open.
  Http2Connection(Engine* engine, PoolKey* key, std::unique_ptr<Transport> transport);
  ~Http2Connection() override;

  // Starts the session (the preface goes out) and reports connected; or, when the session cannot
  // be made (no nghttp2 in this Node, invalid options), fails the connect.
  void open();

  // Connection
  const char* protocol() const override { return "h2"; }
  size_t capacity() const override;
  size_t active() const override { return streams_.size(); }
  Stage stage() const override;
  void start(uint32_t, uint32_t) override {}  // born connected (open())
  void park(uint64_t now) override;
  void assign(Request* r) override;
  void abort(Request* r) override;  // RST_STREAM(CANCEL); the connection stays
  void fail(Request* r, Error e, const char* detail) override;
  void fail_all(Error e, const char* detail) override;
  void pause(Request* r) override;
  void resume(Request* r) override;
  void unthrottle(Request*) override {}  // flow control, not read stops, paces HTTP/2 streams
  void body_ready(Request* r) override;
  bool probe_alive() override;
  uint64_t deadline() const override;
  void on_deadline(uint64_t now) override;
  void close(bool abortive) override;
  bool had_fd() const override { return transport_->had_fd(); }
  void flush_output() override;

 private:
  struct Stream {
    Request* req = nullptr;  // null once the request was detached (aborted, failed by us)
    int32_t id = 0;
    bool reused = false;     // assigned after the connection's first batch
    bool head_done = false;
    bool end_sent = false;   // the request body's END_STREAM is queued
    uint16_t status = 0;
    std::string head;        // "HTTP/2 200\r\n" + fields, HTTP/1 text form
    std::string body;
    std::string trailers;    // "name: value\r\n" lines
    uint64_t body_bytes = 0;   // delivered (decoded)
    uint64_t wire_bytes = 0;   // received DATA payload
    int64_t content_length = -1;
    std::unique_ptr<http1::ContentDecoder> decoder;
    uint64_t deadline = 0;   // headers or body timeout (ms, engine clock); 0: none
    bool body_phase = false;
  };

  Engine* engine() const { return engine_; }
  // Transport::Owner (the transport is open: only the data path and the end matter)
  Transport::Target transport_target() const override;
  void transport_wake_at(uint64_t at) override { engine()->wake(this, at); }
  void transport_connected(const std::string&) override {}
  void transport_data(const char* p, size_t n) override;
  void transport_read_end(int status) override;
  void transport_drained(int status) override;
  void transport_failed(Error e, const char* detail, int sys) override;
  void transport_closed() override;
  // H2Listener
  void on_response_headers(int32_t stream_id, int status, const http2::HeaderList& headers) override;
  void on_data(int32_t stream_id, const uint8_t* data, size_t len) override;
  void on_trailers(int32_t stream_id, const http2::HeaderList& trailers) override;
  void on_stream_close(int32_t stream_id, const http2::StreamEnd& end) override;
  void on_body_sent(int32_t stream_id, size_t queued) override;
  void on_goaway(int32_t last_stream_id, uint32_t h2_code, std::string_view debug) override;
  void on_settings(bool ack) override;
  void on_ping(bool ack, uint64_t opaque) override;
  void on_connection_error(Error e, uint32_t h2_code, const std::string& detail) override;

  Stream* find(int32_t id) const;
  Stream* stream_of(const Request* r) const { return r->conn == this ? find(r->stream_id) : nullptr; }
  bool encode(Request* r, std::vector<std::string>* storage, std::vector<http2::Header>* headers,
              std::string* authority, const char** why);
  void pump_body(Stream* s);
  // Detaches s's request and reports e (the stream is reset; its close is bookkeeping only).
  void fail_stream(Stream* s, Error e, const char* detail, int sys = 0);
  void report_error(Request* r, Error e, const char* detail, int sys);
  void fail_live(Error e, const char* detail, int sys);
  void complete(Stream* s);
  bool deliver(Stream* s, const char* p, size_t n);
  static bool decoded_sink(void* self, const char* p, size_t n);
  bool start_decoding(Stream* s, const std::vector<std::string_view>& codings);
  void set_stream_deadline(Stream* s, uint32_t ms);
  void stream_ended();  // a stream closed: room again, idle, or the end of a draining connection
  void connection_failed(Error e, const char* detail, int sys);  // every stream fails, then close
  void write_out();
  ResponseMeta meta(const Stream& s);
  void announce();  // the connection's fingerprint to the sink, once

  Engine* engine_;
  std::unique_ptr<Transport> transport_;
  std::unique_ptr<http2::H2Session> session_;
  std::unordered_map<int32_t, std::unique_ptr<Stream>> streams_;
  Stage stage_ = Stage::Connecting;
  bool first_batch_ = true;     // requests assigned while reporting connected paid for it
  bool write_blocked_ = false;  // the socket's queue is long: resume on drained
  uint32_t h2_info_ = 0;
  uint32_t fail_h2_code_ = 0;   // the HTTP/2 code of the connection's failure, for its streams
  uint64_t idle_deadline_ = 0;
  uint64_t settings_deadline_ = 0;
  uint64_t ping_due_ = 0;       // next keep-alive PING (ping_interval_ms)
  uint64_t ping_deadline_ = 0;  // its ACK is due
  uint64_t ping_seq_ = 0;
  // Scratch for encoding requests (reused).
  std::vector<std::string_view> fields_;
};

}  // namespace uvf
