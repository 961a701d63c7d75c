#include "client/http1_connection.h"

#include <strings.h>

#include <algorithm>
#include <cstring>

#include "client/http2_connection.h"


namespace uvf {

namespace {
constexpr unsigned kMaxInterimResponses = 10;
constexpr uint32_t kServerKeepAliveMarginMs = 1000;
constexpr uint64_t kMaxBodyReserve = 1 << 20;
}  // namespace

Http1Connection::Http1Connection(Engine* engine, PoolKey* key)
    : Connection(key), engine_(engine), transport_(std::make_unique<Transport>(engine, static_cast<Transport::Owner*>(this), transport_options(engine))) {}

Http1Connection::~Http1Connection() = default;

Transport::Options Http1Connection::transport_options(Engine* engine) const {
  Transport::Options o;
  o.socket_factory = &engine->options().socket_factory;  // benchmarks and fuzzers: no socket, no kernel
  o.socket.no_delay = engine->options().no_delay;
  o.socket.keep_alive_ms = engine->options().tcp_keep_alive_ms;
  o.socket.local = engine->local_address();
  o.accept_h2 = engine->options().http2.mode != Http2EngineOptions::Mode::Off;
  return o;
}

Transport::Target Http1Connection::transport_target() const {
  const PoolKeyInfo& where = key_->info;
  Transport::Target t;
  t.host = &where.host;
  t.port = where.port;
  if (where.tls) t.tls = &where.tls_ctx;
  t.proxy = &where.proxy;
  return t;
}

// ---------------------------------------------------------------------------------------------
// Connecting (the transport resolves, dials, tunnels and handshakes; the deadlines are ours)

Connection* new_connection(Engine* engine, PoolKey* key) { return new Http1Connection(engine, key); }

Connection::Stage Http1Connection::stage() const {
  switch (state_) {
    case State::Connecting:
      return Stage::Connecting;
    case State::Closing:
      return Stage::Closing;
    default:
      return Stage::Open;
  }
}

void Http1Connection::start(uint32_t connect_timeout_ms, uint32_t tls_timeout_ms) {
  tls_timeout_ms_ = tls_timeout_ms;
  set_deadline(Deadline::Connect, connect_timeout_ms);
  state_ = State::Connecting;
  transport_->start();
}

void Http1Connection::transport_handshaking() { set_deadline(Deadline::Tls, tls_timeout_ms_); }

void Http1Connection::transport_connected(const std::string& alpn) {
  // The protocol, once per connection: the TLS channel accepts only http/1.1 or (when the engine
  // speaks it) h2; h2c by prior knowledge on plain http: origins (not through an HTTP proxy,
  // which gets absolute-form HTTP/1.1 requests).
  const Http2EngineOptions& h2 = engine()->options().http2;
  bool plain_direct = !transport_->secure() && (key_->info.proxy.kind == proxy::Kind::None ||
                                                key_->info.proxy.kind == proxy::Kind::Socks5);
  if (alpn == "h2" || (h2.mode == Http2EngineOptions::Mode::PriorKnowledge && plain_direct)) {
    deadline_ = 0;
    deadline_kind_ = Deadline::None;
    auto* next = new Http2Connection(engine(), key_, std::move(transport_));
    engine()->replace_connection(this, next);
    next->open();
    return;
  }
  state_ = State::Idle;
  deadline_ = 0;
  deadline_kind_ = Deadline::None;
  engine()->connection_connected(this);
}

void Http1Connection::transport_failed(Error e, const char* detail, int sys) { fail(e, detail, sys); }

bool Http1Connection::probe_alive() {
  if (transport_->secure() && state_ != State::Idle) return false;
  return transport_->probe_alive();
}

// ---------------------------------------------------------------------------------------------
// Requests

void Http1Connection::reset_response_state() {
  phase_ = Phase::Head;
  hbuf_.clear();
  hprev_ = 0;
  interim_ = 0;
  framing_ = http1::Framing::None;
  remaining_ = 0;
  chunked_.reset();
  decoding_ = false;
  raw_head_.clear();
  body_.clear();
  body_bytes_ = 0;
  streamed_out_ = 0;
  last_chunk_sent_ = false;
  response_started_ = false;
  request_written_ = false;
  write_failed_ = false;
  keep_alive_ok_ = true;
}

void Http1Connection::assign(Request* r) {
  state_ = State::Busy;
  req_ = r;
  r->conn = this;
  if (r->want_timings) {
    r->t_assigned = uv_hrtime();
    if (served_ == 0) {  // this request paid for the connection
      const Transport& t = *transport_;
      r->dns_us = t.resolved_us();
      r->connect_us = t.connected_us() - t.resolved_us();
      r->tls_us = t.tls_us() != 0 ? t.tls_us() - t.connected_us() : 0;
    }
  }
  r->state = Request::State::Active;
  reset_response_state();
  transport_->set_ref(true);
  if (!transport_->reading()) {
    int rs = transport_->read_start();
    if (rs != 0) {
      fail(error_from_uv(rs), uv_strerror(rs), rs);
      return;
    }
  }
  set_deadline(Deadline::Headers, r->timeouts.headers_ms);
  write_request();
}

// The HTTP/1.1 head from the request's message (validated at submit: this cannot fail but for
// memory). A retried request keeps the head its first connection encoded.
bool Http1Connection::encode_head(Request* r) {
  if (!r->head.empty()) return true;
  thread_local std::vector<std::string_view> fields;
  r->message.header_views(&fields);
  http1::RequestHead h;
  h.method = r->message.method();
  h.target = r->message.target();
  h.host = key_->info.authority;
  h.headers = fields.empty() ? nullptr : fields.data();
  h.header_pairs = fields.size() / 2;
  h.user_agent = engine()->options().user_agent;
  if (r->limits.decompress) h.accept_encoding = http1::default_accept_encoding();
  h.validated = true;  // at submit, with the same authority, user agent and accept-encoding
  if (r->streamed_body) {
    h.body_mode = r->streamed_length >= 0 ? http1::BodyMode::Length : http1::BodyMode::Chunked;
    h.content_length = r->streamed_length >= 0 ? static_cast<uint64_t>(r->streamed_length) : 0;
  } else if (r->has_body) {
    h.body_mode = http1::BodyMode::Length;
    h.content_length = r->body.size();
  }
  r->head.reserve(128 + h.target.size());
  http1::EncodeError err;
  Error e = http1::encode_request_head(h, &r->head, nullptr, &err);
  if (e == Error::Ok) return true;
  fail(e, err.reason != nullptr ? err.reason : error_message(e), 0, /*allow_retry=*/false);
  return false;
}

void Http1Connection::write_request() {
  Request* r = req_;
  if (!encode_head(r)) return;
  int w;
  if (!r->streamed_body) {
    w = transport_->write(r->head.data(), r->head.size(), r->body.data(), r->body.size());
    if (w == 0) {
      engine()->add_bytes(0, r->head.size() + r->body.size());
      request_written_ = true;
    }
  } else {
    w = transport_->write(r->head.data(), r->head.size());
    if (w == 0) engine()->add_bytes(0, r->head.size());
  }
  if (w != 0) {
    write_failed_ = true;
    fail(error_from_uv(w), uv_strerror(w), w);
    return;
  }
  if (r->streamed_body) pump_body();
}

void Http1Connection::pump_body() {
  Request* r = req_;
  if (r == nullptr || write_failed_ || request_written_) return;
  std::string framed;
  bool progressed = false;
  // Hand chunks to the socket only while its queue is short: the rest wait in the request, and
  // write_body() tells the producer to pause, so a server that stops reading stops the producer.
  while (!r->chunks.empty() && transport_->queued_bytes() < kBodyHighWater) {
    std::string& c = r->chunks.front();
    int w;
    if (r->body_chunked) {
      framed.clear();
      http1::append_chunk_header(c.size(), &framed);
      framed.append(c);
      framed.append(http1::kChunkEnd);
      w = transport_->write(framed.data(), framed.size());
      if (w == 0) engine()->add_bytes(0, framed.size());
    } else {
      w = transport_->write(c.data(), c.size());
      if (w == 0) engine()->add_bytes(0, c.size());
    }
    if (w != 0) {
      write_failed_ = true;
      r->chunks.clear();
      r->chunk_bytes = 0;
      // The read side decides the outcome: the server may already have answered.
      return;
    }
    streamed_out_ += c.size();
    r->chunk_bytes -= c.size();
    r->chunks.pop_front();
    progressed = true;
  }
  if (r->body_ended && !last_chunk_sent_ && r->chunks.empty()) {
    last_chunk_sent_ = true;
    if (r->body_chunked) {
      int w = transport_->write(http1::kLastChunk.data(), http1::kLastChunk.size());
      if (w != 0) {
        write_failed_ = true;
        return;
      }
      engine()->add_bytes(0, http1::kLastChunk.size());
    }
    request_written_ = true;
    progressed = true;
  }
  // The headers timeout counts from the last upload progress: a long upload is not a late answer.
  if (progressed && phase_ == Phase::Head) set_deadline(Deadline::Headers, r->timeouts.headers_ms);
  if (r->drain_wanted && r->chunks.empty() && transport_->queued_bytes() < kBodyHighWater) {
    r->drain_wanted = false;
    engine()->respond_drain(r);
  }
}

void Http1Connection::transport_drained(int status) {
  if (status != 0) {
    write_failed_ = true;
    // Keep reading: a server that rejects a request early (413, 401...) answers and closes;
    // its answer is worth more than our EPIPE. The read side ends the request either way.
    return;
  }
  if (state_ != State::Busy || req_ == nullptr) return;
  if (phase_ == Phase::Head && deadline_kind_ == Deadline::Headers) {
    set_deadline(Deadline::Headers, req_->timeouts.headers_ms);  // queued request bytes just went out
  }
  if (req_->streamed_body) pump_body();
}

void Http1Connection::park(uint64_t now) {
  state_ = State::Idle;
  idle_since_ = now;
  set_deadline(Deadline::Idle, engine()->options().keep_alive_timeout_ms);
  transport_->set_ref(false);
}

void Http1Connection::abort(Request* r) {
  if (r != req_) return;
  req_->conn = nullptr;
  req_ = nullptr;
  close(true);
}

void Http1Connection::fail(Request* r, Error e, const char* detail) {
  if (r == req_) fail(e, detail, 0, /*allow_retry=*/false);
}

void Http1Connection::fail_all(Error e, const char* detail) {
  if (req_ != nullptr) {
    fail(e, detail, 0, /*allow_retry=*/false);
  } else {
    close(true);
  }
}

void Http1Connection::body_ready(Request* r) {
  if (r == req_) pump_body();
}

void Http1Connection::pause(Request* r) {
  if (state_ != State::Busy || req_ == nullptr || r != req_) return;
  req_->paused = true;
  transport_->read_stop();
  if (deadline_kind_ == Deadline::Body) {
    // Waiting on our own consumer is not the server's fault: no body timeout while paused.
    deadline_ = 0;
    deadline_kind_ = Deadline::None;
  }
}

void Http1Connection::unthrottle(Request* r) {
  if (state_ != State::Busy || req_ == nullptr || r != req_) return;
  req_->throttled = false;
  if (req_->paused) return;  // the consumer's own pause wins; resume() restarts it
  int rs = transport_->read_start();
  if (rs != 0) fail(error_from_uv(rs), uv_strerror(rs), rs);
}

void Http1Connection::resume(Request* r) {
  if (state_ != State::Busy || req_ == nullptr || r != req_ || !req_->paused) return;
  req_->paused = false;
  if (req_->throttled) return;  // the end of the turn restarts reading
  int rs = transport_->read_start();
  if (rs != 0) {
    fail(error_from_uv(rs), uv_strerror(rs), rs);
    return;
  }
  if (phase_ == Phase::Body) set_deadline(Deadline::Body, req_->timeouts.body_ms);
}

// ---------------------------------------------------------------------------------------------
// Reading the response

void Http1Connection::transport_data(const char* p, size_t n) {
  engine()->add_bytes(n, 0);
  if (state_ == State::Idle) {
    // Bytes nobody asked for on an idle keep-alive socket: never let a later request read them
    // as its response (response-queue poisoning). The socket is discarded.
    engine()->discard(*key_, this);
    return;
  }
  if (state_ != State::Busy || req_ == nullptr) return;
  if (req_->want_timings && req_->t_first_byte == 0) req_->t_first_byte = uv_hrtime();
  response_started_ = true;
  if (phase_ == Phase::Head) {
    if (!consume_head(p, n)) return;
    if (phase_ != Phase::Body) return;  // still waiting for the head
  }
  consume_body(p, n);
}

bool Http1Connection::consume_head(const char*& p, size_t& n) {
  for (;;) {
    const char* buf;
    size_t len;
    bool gathered = !hbuf_.empty();
    if (gathered) {
      hbuf_.append(p, n);
      buf = hbuf_.data();
      len = hbuf_.size();
    } else {
      buf = p;
      len = n;
    }
    http1::ParseLimits lim;
    lim.max_header_size = req_->limits.max_header_size;
    lim.max_header_count = req_->limits.max_header_count;
    http1::ParseError err;
    auto st = http1::parse_response_head(buf, len, hprev_, lim, &head_, nullptr, 0, &err);
    if (st == http1::ParseStatus::Error) {
      fail(err.code, err.reason);
      return false;
    }
    if (st == http1::ParseStatus::NeedMore) {
      if (!gathered) hbuf_.assign(p, n);
      hprev_ = len;
      n = 0;
      return true;
    }
    // Done: bytes of this read that belonged to the head.
    size_t before = len - n;  // bytes gathered by earlier reads
    size_t used = head_.head_len - before;
    if (head_.status < 200) {
      if (head_.status == 101) {
        fail(Error::BadResponse, "unexpected 101 Switching Protocols (no upgrade was requested)");
        return false;
      }
      if (++interim_ > kMaxInterimResponses) {
        fail(Error::BadResponse, "too many 1xx interim responses");
        return false;
      }
      p += used;
      n -= used;
      hbuf_.clear();
      hprev_ = 0;
      if (n == 0) return true;
      continue;  // the next head may already be here
    }
    raw_head_.assign(buf, head_.head_len);
    // Views into the head must outlive the read buffer: point them into our copy.
    if (head_.content_encoding != nullptr) head_.content_encoding = raw_head_.data() + (head_.content_encoding - buf);
    p += used;
    n -= used;
    hbuf_.clear();
    hprev_ = 0;
    framing_ = http1::response_framing(head_, req_->is_head);
    keep_alive_ok_ = !head_.connection_close && framing_ != http1::Framing::UntilClose;
    if (head_.keep_alive_timeout_s >= 0) {
      // Give the socket back before the server's own timer fires: a margin of up to 1 s (half
      // the announced time for short timeouts) so a request is never written as it closes.
      uint64_t ms = std::min<uint64_t>(static_cast<uint64_t>(head_.keep_alive_timeout_s) * 1000, UINT32_MAX);
      uint64_t margin = std::min<uint64_t>(kServerKeepAliveMarginMs, ms / 2);
      idle_timeout_ms_ = static_cast<uint32_t>(ms - margin);
      if (idle_timeout_ms_ == 0) keep_alive_ok_ = false;  // "timeout=0": do not keep it at all
    }
    if (framing_ == http1::Framing::Length) {
      remaining_ = static_cast<uint64_t>(head_.content_length);
      if (!req_->stream_response && remaining_ > req_->limits.max_body_size) {
        fail(Error::BodyTooLarge, "Content-Length exceeds maxBodySize");
        return false;
      }
      // One allocation for the body instead of a growth series; bounded, since a server's
      // Content-Length is a claim, not bytes.
      if (!req_->stream_response) body_.reserve(static_cast<size_t>(std::min<uint64_t>(remaining_, kMaxBodyReserve)));
    }
    if (framing_ != http1::Framing::None && req_->limits.decompress && head_.content_encoding_count > 0 &&
        !start_decoding()) {
      return false;
    }
    phase_ = Phase::Body;
    if (req_->want_timings) req_->t_head = uv_hrtime();
    if (req_->stream_response) {
      ResponseMeta m;
      m.status = static_cast<uint16_t>(head_.status);
      m.version_minor = static_cast<uint8_t>(head_.version_minor);
      m.reused = served_ > 0;
      m.attempts = req_->attempts;
      m.tls_info = transport_->tls_info();
      engine()->respond_head(req_, m, std::move(raw_head_));
      raw_head_.clear();
    }
    if (framing_ != http1::Framing::None && !req_->paused) {
      set_deadline(Deadline::Body, req_->timeouts.body_ms);
    }
    return true;
  }
}

// Content-Encoding: the codings listed (over one or several fields) are undone in reverse order.
// An unknown coding leaves the body as it is (the header tells the user); more than five fail.
bool Http1Connection::start_decoding() {
  std::vector<http1::Coding> codings;
  bool too_many = false, known = true;
  if (head_.content_encoding_count == 1) {
    known = http1::parse_content_encoding(std::string_view(head_.content_encoding, head_.content_encoding_len),
                                          &codings, &too_many);
  } else {
    // Several Content-Encoding fields: parse the head again (rare) to visit each in order.
    std::vector<http1::HeaderField> fields(head_.header_count);
    http1::ResponseHead again;
    http1::ParseLimits lim;
    lim.max_header_size = raw_head_.size();
    lim.max_header_count = head_.header_count;
    http1::parse_response_head(raw_head_.data(), raw_head_.size(), 0, lim, &again, fields.data(), fields.size(),
                               nullptr);
    for (const auto& f : fields) {
      if (f.name_len != 16 || strncasecmp(f.name, "content-encoding", 16) != 0) continue;
      if (!http1::parse_content_encoding(std::string_view(f.value, f.value_len), &codings, &too_many)) known = false;
      if (too_many || !known) break;
    }
  }
  if (too_many) {
    fail(Error::Decompression, "more than 5 content codings");
    return false;
  }
  if (!known || codings.empty()) return true;
  http1::ContentDecoder::Limits lim;
  lim.max_output = req_->stream_response ? UINT64_MAX : req_->limits.max_body_size;
  lim.max_ratio = req_->limits.max_decompression_ratio;
  if (!decoder_.init(codings, lim)) {
    fail(decoder_.error(), decoder_.detail());
    return false;
  }
  decoding_ = true;
  return true;
}

bool Http1Connection::decoded_sink(void* self, const char* p, size_t n) {
  return static_cast<Http1Connection*>(self)->deliver_decoded(p, n);
}

bool Http1Connection::finish_decoding() {
  if (!decoding_) return true;
  if (decoder_.finish(decoded_sink, this)) return true;
  if (decoder_.error() != Error::Ok) fail(decoder_.error(), decoder_.detail());
  return false;
}

bool Http1Connection::deliver_body(const char* p, size_t n) {
  if (!decoding_) return deliver_decoded(p, n);
  if (n == 0) return true;
  if (decoder_.feed(p, n, decoded_sink, this)) return true;
  // Either the decoder failed, or delivering failed (and already failed the request).
  if (decoder_.error() != Error::Ok) fail(decoder_.error(), decoder_.detail());
  return false;
}

bool Http1Connection::deliver_decoded(const char* p, size_t n) {
  if (n == 0) return true;
  body_bytes_ += n;
  if (req_->stream_response) {
    engine()->respond_data(req_, p, n);
    // libuv may read a busy socket many times in one poll phase, before the consumer has had a
    // chance to say "pause": cap what one stream delivers per loop turn.
    if (req_->turn != engine()->turn()) {
      req_->turn = engine()->turn();
      req_->turn_bytes = 0;
    }
    req_->turn_bytes += n;
    if (req_->turn_bytes >= kStreamTurnBytes && !req_->throttled && !req_->paused) {
      req_->throttled = true;
      transport_->read_stop();
      engine()->throttle(req_->id);
    }
    return true;
  }
  if (body_bytes_ > req_->limits.max_body_size) {
    fail(Error::BodyTooLarge, "response body exceeds maxBodySize");
    return false;
  }
  body_.append(p, n);
  return true;
}

bool Http1Connection::consume_body(const char* p, size_t n) {
  bool complete = false;
  switch (framing_) {
    case http1::Framing::None:
      complete = true;
      break;
    case http1::Framing::Length: {
      size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, n));
      if (!deliver_body(p, take)) return false;
      remaining_ -= take;
      p += take;
      n -= take;
      complete = remaining_ == 0;
      break;
    }
    case http1::Framing::Chunked:
      while (n > 0 && !chunked_.done()) {
        auto step = chunked_.feed(p, n);
        if (chunked_.failed()) {
          fail(chunked_.error().code, chunked_.error().reason);
          return false;
        }
        if (step.data_len > 0 && !deliver_body(step.data, step.data_len)) return false;
        p += step.consumed;
        n -= step.consumed;
      }
      complete = chunked_.done();
      break;
    case http1::Framing::UntilClose:
      if (!deliver_body(p, n)) return false;
      n = 0;
      break;
  }
  if (complete) {
    // Anything after the response on a keep-alive socket was not asked for: do not reuse.
    if (n > 0) keep_alive_ok_ = false;
    if (!finish_decoding()) return false;
    finish_response();
    return false;
  }
  if (!req_->paused) set_deadline(Deadline::Body, req_->timeouts.body_ms);
  return true;
}

void Http1Connection::finish_response() {
  Request* r = req_;
  req_ = nullptr;
  r->conn = nullptr;
  phase_ = Phase::Done;
  ResponseMeta m;
  m.status = static_cast<uint16_t>(head_.status);
  m.version_minor = static_cast<uint8_t>(head_.version_minor);
  m.reused = served_ > 0;
  m.attempts = r->attempts;
  m.tls_info = transport_->tls_info();
  ++served_;
  bool reuse = keep_alive_ok_ && request_written_ && !write_failed_ && !r->conn_close;
  if (r->stream_response) {
    engine()->respond_end(r);
  } else {
    engine()->respond_complete(r, m, std::move(raw_head_), std::move(body_));
  }
  raw_head_.clear();
  body_.clear();
  // A closing session closes its connections as their last request finishes (inside
  // request_finished): this one must not be parked idle again.
  if (state_ == State::Closing) return;
  if (!reuse) {
    close(false);
    return;
  }
  state_ = State::Idle;
  idle_since_ = engine()->now();
  uint32_t ka = engine()->options().keep_alive_timeout_ms;
  if (idle_timeout_ms_ > 0) ka = std::min(ka, idle_timeout_ms_);
  set_deadline(Deadline::Idle, ka);
  transport_->set_ref(false);  // idle keep-alive sockets never keep the process alive
  if (!transport_->reading()) transport_->read_start();
  engine()->connection_idle(this);
}

void Http1Connection::transport_read_end(int status) {
  if (state_ == State::Idle) {
    engine()->discard(*key_, this);  // the server closed an idle keep-alive socket
    return;
  }
  if (state_ != State::Busy || req_ == nullptr) return;
  if (status == UV_EOF && phase_ == Phase::Body && framing_ == http1::Framing::UntilClose) {
    keep_alive_ok_ = false;
    if (!finish_decoding()) return;
    finish_response();
    return;
  }
  Error e = status == UV_EOF ? Error::SocketClosed : error_from_uv(status);
  const char* why;
  if (status != UV_EOF) {
    why = uv_strerror(status);
  } else if (phase_ == Phase::Body) {
    why = "connection closed before the response body was complete";
  } else if (response_started_) {
    why = "connection closed in the middle of the response head";
  } else {
    why = "connection closed before any response byte arrived";
  }
  fail(e, why, status == UV_EOF ? 0 : status);
}

// ---------------------------------------------------------------------------------------------
// Errors, deadlines, closing

void Http1Connection::fail(Error e, const char* detail, int sys, bool allow_retry) {
  switch (state_) {
    case State::Connecting:
      switch (transport_->phase()) {
        case Transport::Phase::Handshaking:
          engine()->tls_finished(false, false);
          engine()->connection_connect_failed(this, e, sys, detail);
          return;
        case Transport::Phase::Tunneling:
          engine()->connection_connect_failed(this, e, sys, detail);
          return;
        default:  // resolving or dialing: the engine words it from the error
          engine()->connection_connect_failed(this, e, sys);
          return;
      }
    case State::Idle:
      engine()->discard(*key_, this);
      return;
    case State::Closing:
      return;
    case State::Busy:
      break;
  }
  Request* r = req_;
  req_ = nullptr;
  bool stale = served_ > 0 && !response_started_ &&
               (e == Error::SocketClosed || e == Error::ConnectionReset);
  close(true);
  if (r == nullptr) return;
  r->conn = nullptr;
  if (allow_retry && stale && r->idempotent && r->replayable() && r->attempts == 1 &&
      engine()->try_retry(r)) {
    return;  // a stale keep-alive socket: the request runs again on a fresh connection
  }
  engine()->respond_error(r, e, detail, sys);
}

void Http1Connection::set_deadline(Deadline kind, uint32_t ms) {
  deadline_kind_ = kind;
  if (ms == 0) {
    deadline_ = 0;  // 0 = no timeout for this phase
    return;
  }
  deadline_ = engine()->now() + ms;
  engine()->wake(this, deadline_);
}

uint64_t Http1Connection::deadline() const {
  uint64_t race = transport_->race_at();
  if (race == 0) return deadline_;
  return deadline_ == 0 ? race : std::min(deadline_, race);
}

void Http1Connection::on_deadline(uint64_t now) {
  if (deadline_ != 0 && deadline_ <= now) phase_deadline();
  if (state_ == State::Closing) return;
  uint64_t race = transport_->race_at();
  if (race != 0 && race <= now) transport_->on_race_deadline();
}

void Http1Connection::phase_deadline() {
  Deadline kind = deadline_kind_;
  deadline_ = 0;
  deadline_kind_ = Deadline::None;
  switch (kind) {
    case Deadline::Connect:
      fail(Error::ConnectTimeout, transport_->phase() == Transport::Phase::Tunneling ? "the proxy tunnel was not open within the connect timeout" : "connect timed out", 0, false);
      break;
    case Deadline::Tls:
      fail(Error::TlsHandshakeTimeout, "no TLS handshake within the tls timeout", 0, false);
      break;
    case Deadline::Headers:
      fail(Error::HeadersTimeout, "no complete response head within the headers timeout", 0, false);
      break;
    case Deadline::Body:
      fail(Error::BodyTimeout, "no response body bytes within the body timeout", 0, false);
      break;
    case Deadline::Idle:
      engine()->discard(*key_, this);
      break;
    case Deadline::None:
      break;
  }
}

void Http1Connection::close(bool abortive) {
  if (state_ == State::Closing) return;
  state_ = State::Closing;
  engine()->connection_closing(this);
  deadline_ = 0;
  deadline_kind_ = Deadline::None;
  transport_->close(abortive);
}

void Http1Connection::transport_closed() { engine()->connection_closed(this); }

}  // namespace uvf
