// HTTP/2 client session codec: memory in, memory out, on nghttp2 (looked up at run time, see
// nghttp2_decl.h). No sockets, no event loop, no N-API: the engine feeds received bytes, writes what
// output() returns, and gets events through H2Listener.
//
// What it adds to nghttp2:
//   - the preface exactly as configured: SETTINGS in the given order (only those given), the
//     connection WINDOW_UPDATE right after it, PRIORITY frames after that, a priority field on every
//     HEADERS frame (or none), the pseudo-header order. nghttp2 >= 1.65 (Node 22/24) ignores RFC 7540
//     priorities entirely, so PRIORITY frames and the HEADERS priority field are written by this codec
//     into the output stream itself, the same way on every nghttp2 version;
//   - the Akamai HTTP/2 fingerprint of the bytes actually sent (fingerprint());
//   - per-stream flow control that a paused consumer can hold (its WINDOW_UPDATE is withheld) while
//     the connection window and the other streams keep flowing;
//   - request bodies pushed in by the engine, sent as the peer's windows allow (deferred when empty);
//   - limits nghttp2 lacks or has only in newer versions: decoded header-list size (HPACK bomb),
//     CONTINUATION count per header block, per-second caps on SETTINGS / PING / RST_STREAM /
//     WINDOW_UPDATE / PRIORITY / PUSH_PROMISE / empty frames, an output high-water mark (a peer that
//     does not read our ACKs hits nghttp2's outbound-ACK limit), and the time our SETTINGS have been
//     waiting for an ACK (the engine times out on it);
//   - stable uvfetch error codes for every way a stream or the connection can end.
//
// Threading: one session is used from one thread. Listener callbacks run inside feed(), output()
// and the submit/reset calls; a listener may call back into the session (submit, reset, pause,
// write_body, ...) but must not destroy it from inside a callback.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/errors.h"
#include "http2/nghttp2_decl.h"

namespace uvf::http2 {

struct Setting {
  uint16_t id;
  uint32_t value;
};

// "HEADER_TABLE_SIZE" (also "SETTINGS_HEADER_TABLE_SIZE", any case) or a decimal id ("1").
// False for an unknown name or an id outside 1..65535.
bool setting_id_from_name(std::string_view name, uint16_t* id);

struct PrioritySpec {
  int32_t stream_id = 0;   // PRIORITY frames only: the stream the frame is about (odd or even, > 0)
  int32_t depends_on = 0;  // stream dependency
  uint16_t weight = 16;    // 1..256 (sent as weight - 1)
  bool exclusive = false;
};

struct Header {
  std::string_view name;
  std::string_view value;
};
using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct SessionOptions {
  // First SETTINGS frame, in this order; settings not listed are not sent.
  std::vector<Setting> settings = {{2, 0}, {4, 4194304}, {6, 262144}};
  // WINDOW_UPDATE on stream 0 right after SETTINGS; 0 = none.
  uint32_t connection_window_increment = 16711681;  // connection window 16 MiB
  // PRIORITY frames sent after the WINDOW_UPDATE, before any request.
  std::vector<PrioritySpec> priority_frames;
  // Priority field on each HEADERS frame (stream_id ignored), unless a request overrides it.
  bool headers_priority = false;
  PrioritySpec headers_priority_spec;
  // Pseudo-header order: a permutation of 'm' (:method), 'a' (:authority), 's' (:scheme), 'p' (:path).
  std::array<char, 4> pseudo_order = {'m', 'a', 's', 'p'};
  // First request's stream id (odd). 0 = 1, or past the highest odd id named in priority_frames.
  int32_t first_stream_id = 0;

  // Limits.
  size_t max_header_list_size = 262144;  // decoded: sum of name + value + 32 per field (RFC 9113 §6.5.2)
  uint32_t max_continuations = 32;       // CONTINUATION frames per header block
  size_t max_settings_entries = 32;      // entries in one SETTINGS frame (nghttp2 option)
  size_t max_outbound_ack = 1000;        // ACKs / RSTs queued unsent (nghttp2 option)
  uint32_t flood_window_ms = 1000;       // counters below are per window
  uint32_t max_settings_frames = 100;
  uint32_t max_ping_frames = 100;
  uint32_t max_rst_frames = 1000;
  uint32_t max_window_update_frames = 20000;
  uint32_t max_priority_frames = 1000;
  uint32_t max_push_promise_frames = 100;
  uint32_t max_empty_frames = 100;  // DATA without payload or END_STREAM, empty CONTINUATION
  size_t output_high_water = 1 << 20;  // output() stops pulling frames from nghttp2 above this

  // Clock for the flood windows and settings_ack_pending_since(); null = steady clock, in ms.
  uint64_t (*clock_ms)() = nullptr;
};

// "NO_ERROR", "PROTOCOL_ERROR", ... (RFC 9113 §7); "UNKNOWN" beyond the registry.
const char* h2_code_name(uint32_t code);

// ERR_INVALID_OPTION with the reason in *why when the options cannot be sent as given.
Error validate_options(const SessionOptions& o, std::string* why);

// How a stream ended.
struct StreamEnd {
  Error error = Error::Ok;  // Ok: the response arrived complete
  uint32_t h2_code = 0;     // RST_STREAM / GOAWAY code involved, else 0
  bool retryable = false;   // the server did not process the request (REFUSED_STREAM, above GOAWAY's last id, never sent)
  std::string detail;
};

struct RequestHead {
  std::string_view method;
  std::string_view scheme;
  std::string_view authority;
  std::string_view path;
  const Header* headers = nullptr;  // regular headers in the order to send (names lower-cased here)
  size_t header_count = 0;
  bool has_body = false;  // body bytes follow through write_body()
  enum class Priority : uint8_t { SessionDefault, None, Explicit } priority = Priority::SessionDefault;
  PrioritySpec priority_spec;  // for Explicit (stream_id ignored)
};

class H2Listener {
 public:
  virtual ~H2Listener() = default;
  // 1xx (status < 200, other than 101) and the final response head.
  virtual void on_informational(int32_t /*stream_id*/, int /*status*/, const HeaderList& /*headers*/) {}
  virtual void on_response_headers(int32_t stream_id, int status, const HeaderList& headers) = 0;
  virtual void on_data(int32_t stream_id, const uint8_t* data, size_t len) = 0;
  virtual void on_trailers(int32_t /*stream_id*/, const HeaderList& /*trailers*/) {}
  // Exactly once per submitted stream, complete or not.
  virtual void on_stream_close(int32_t stream_id, const StreamEnd& end) = 0;
  // Body bytes of a stream were taken for sending; `queued` remain buffered.
  virtual void on_body_sent(int32_t /*stream_id*/, size_t /*queued*/) {}
  virtual void on_goaway(int32_t /*last_stream_id*/, uint32_t /*h2_code*/, std::string_view /*debug*/) {}
  // Peer's SETTINGS received (ack = false) or our SETTINGS acknowledged (ack = true).
  virtual void on_settings(bool /*ack*/) {}
  virtual void on_ping(bool /*ack*/, uint64_t /*opaque*/) {}
  // The connection failed (after every open stream got on_stream_close with the same error).
  virtual void on_connection_error(Error /*e*/, uint32_t /*h2_code*/, const std::string& /*detail*/) {}
};

class H2Session {
 public:
  // Builds the session and queues the preface. Null with *err / *why when nghttp2 is unavailable
  // (ERR_HTTP2_UNAVAILABLE) or the options are invalid (ERR_INVALID_OPTION).
  static std::unique_ptr<H2Session> create(const SessionOptions& opts, H2Listener* listener, Error* err,
                                           std::string* why);
  ~H2Session();
  H2Session(const H2Session&) = delete;
  H2Session& operator=(const H2Session&) = delete;

  // Received bytes. False once the connection has failed (see failed()); output() may still hold a
  // GOAWAY to flush before closing.
  bool feed(const uint8_t* data, size_t len);
  // Bytes to write (pulled from nghttp2 up to the high-water mark), then consume_output(n).
  std::pair<const uint8_t*, size_t> output();
  void consume_output(size_t n);
  bool want_write();
  // Nothing left to do on this connection: failed, or GOAWAY both ways / no stream left to finish.
  bool finished() const;

  // Returns the stream id (> 0), or -1 with *err / *why (ERR_INVALID_HEADER, ERR_SESSION_CLOSED, ...).
  int32_t submit_request(const RequestHead& req, Error* err, std::string* why);
  // Request body bytes (copied); end = last piece. False when the stream is gone.
  bool write_body(int32_t stream_id, const uint8_t* data, size_t len, bool end);
  size_t body_queued(int32_t stream_id) const;
  // RST_STREAM (CANCEL by default); on_stream_close follows with Error::Aborted.
  void reset_stream(int32_t stream_id, uint32_t h2_code = kH2Cancel);
  // Paused: received DATA is still delivered, but the stream's window is not reopened until resumed.
  void set_paused(int32_t stream_id, bool paused);
  // PING with 8 opaque bytes; the ACK comes as on_ping(true, opaque).
  bool ping(uint64_t opaque);
  // GOAWAY (graceful: NO_ERROR); no new request after this.
  void goaway(uint32_t h2_code = kH2NoError, std::string_view debug = {});
  // The transport ended (EOF, reset, ...): every open stream ends with `e`, except that streams the
  // server never processed (above a received GOAWAY's last id) are retryable.
  void transport_closed(Error e, std::string_view detail = {});

  // State.
  bool failed() const { return dead_; }
  Error error() const { return fail_error_; }
  uint32_t error_h2_code() const { return fail_h2_; }
  const std::string& error_detail() const { return fail_detail_; }
  bool goaway_received() const { return goaway_received_; }
  int32_t goaway_last_stream_id() const { return goaway_last_id_; }
  uint32_t goaway_error_code() const { return goaway_received_code_; }  // of the GOAWAY received
  bool can_submit() const;  // not failed, no GOAWAY either way, stream ids left
  size_t active_streams() const { return streams_.size(); }
  uint32_t remote_max_concurrent_streams() const;
  int32_t stream_remote_window(int32_t stream_id) const;
  int32_t connection_remote_window() const;
  // Clock time (options.clock_ms) of the oldest SETTINGS frame sent and not yet ACKed; 0 = none.
  uint64_t settings_ack_pending_since() const { return settings_sent_at_.empty() ? 0 : settings_sent_at_.front(); }
  // Akamai format of what this connection actually sent (SETTINGS|WINDOW_UPDATE|PRIORITY|pseudo order);
  // the last part is empty until the first HEADERS frame has been produced.
  std::string fingerprint() const;

 private:
  struct Stream;
  H2Session(const SessionOptions& opts, H2Listener* listener);
  bool start(Error* err, std::string* why);
  void pull_output(bool ignore_high_water);
  void fail(Error e, uint32_t h2_code, std::string detail);
  void finish_failure();
  void close_stream(int32_t id, StreamEnd end);
  Stream* find(int32_t id) const;
  bool count_frame(int kind);
  uint64_t now() const;

  // output framing: rewrites HEADERS for priority, records the fingerprint
  void frame_in(const uint8_t* p, size_t n);
  void emit(const uint8_t* p, size_t n);
  void emit_frame_header(uint32_t len, uint8_t type, uint8_t flags, int32_t sid);
  void observe_header(uint32_t len, uint8_t type, uint8_t flags, int32_t sid);
  void observe_payload(const uint8_t* p, size_t n);
  void observe_done();
  void append_priority_frame(const PrioritySpec& p);

  // nghttp2 callbacks
  static int cb_begin_frame(nghttp2_session*, const nghttp2_frame_hd*, void*);
  static int cb_begin_headers(nghttp2_session*, const nghttp2_frame*, void*);
  static int cb_header(nghttp2_session*, const nghttp2_frame*, const uint8_t*, size_t, const uint8_t*, size_t,
                       uint8_t, void*);
  static int cb_frame_recv(nghttp2_session*, const nghttp2_frame*, void*);
  static int cb_invalid_frame_recv(nghttp2_session*, const nghttp2_frame*, int, void*);
  static int cb_data_chunk(nghttp2_session*, uint8_t, int32_t, const uint8_t*, size_t, void*);
  static int cb_frame_send(nghttp2_session*, const nghttp2_frame*, void*);
  static int cb_frame_not_send(nghttp2_session*, const nghttp2_frame*, int, void*);
  static int cb_stream_close(nghttp2_session*, int32_t, uint32_t, void*);
  static int cb_error(nghttp2_session*, int, const char*, size_t, void*);
  static ssize_t cb_read_body(nghttp2_session*, int32_t, uint8_t*, size_t, uint32_t*, nghttp2_data_source*, void*);

  const Nghttp2Api& ng_;
  SessionOptions opts_;
  H2Listener* listener_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<int32_t, std::unique_ptr<Stream>> streams_;
  mutable int32_t last_id_ = 0;            // find()'s one-entry cache
  mutable Stream* last_stream_ = nullptr;

  std::vector<uint8_t> out_;
  size_t out_off_ = 0;

  // failure
  bool dead_ = false;  // nghttp2 is not called any more (except session_del)
  bool fail_reported_ = false;
  Error fail_error_ = Error::Ok;
  uint32_t fail_h2_ = 0;
  std::string fail_detail_;
  std::string last_lib_error_;

  // GOAWAY
  bool goaway_received_ = false;
  int32_t goaway_last_id_ = 0;
  uint32_t goaway_received_code_ = 0;
  bool goaway_sent_ = false;
  bool goaway_submitted_ = false;  // by us (goaway()); any other GOAWAY sent is nghttp2's connection error
  uint32_t goaway_code_ = 0;

  // flood counters
  uint64_t window_start_ = 0;
  std::array<uint32_t, 8> counts_{};
  uint32_t continuations_ = 0;

  // SETTINGS ACK wait
  std::deque<uint64_t> settings_sent_at_;

  // output framer state
  size_t magic_left_ = 24;
  uint8_t fh_[9];
  size_t fh_have_ = 0;
  size_t payload_left_ = 0;  // of the current nghttp2 frame still to pass through
  size_t split_left_ = 0;    // > 0: after this many more payload bytes, emit split_hdr_ then the rest
  uint8_t split_hdr_[9];
  bool split_pending_ = false;

  // fingerprint (observer over the final output)
  std::string fp_settings_;
  std::string fp_window_ = "00";  // Akamai: "00" when no WINDOW_UPDATE was sent
  std::string fp_priority_;
  std::string fp_pseudo_;
  bool fp_seen_settings_ = false;
  bool fp_seen_headers_ = false;
  bool fp_done_ = false;
  uint8_t ob_type_ = 0, ob_flags_ = 0;
  int32_t ob_sid_ = 0;
  size_t ob_left_ = 0;
  bool ob_capture_ = false;
  std::string ob_buf_;
  std::string fp_block_;  // first request's header block fragments
};

}  // namespace uvf::http2
