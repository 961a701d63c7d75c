#include "client/http2_connection.h"

#include <strings.h>

#include <algorithm>
#include <cstring>

namespace uvf {

namespace {
// The socket's write queue above which no more frames are pulled from the session until it drains.
constexpr size_t kOutHighWater = 256 * 1024;
constexpr uint64_t kMaxBodyReserve = 1 << 20;

bool ieq(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}
}  // namespace

Http2Connection::Http2Connection(Engine* engine, PoolKey* key, std::unique_ptr<Transport> transport)
    : Connection(key), engine_(engine), transport_(std::move(transport)) {
  transport_->set_owner(this);
}

Http2Connection::~Http2Connection() = default;

Transport::Target Http2Connection::transport_target() const {
  const PoolKeyInfo& where = key_->info;
  Transport::Target t;
  t.host = &where.host;
  t.port = where.port;
  if (where.tls) t.tls = &where.tls_ctx;
  t.proxy = &where.proxy;
  return t;
}

Connection::Stage Http2Connection::stage() const { return stage_; }

size_t Http2Connection::capacity() const {
  if (stage_ != Stage::Open || session_ == nullptr || !session_->can_submit()) return 0;
  uint32_t peer = session_->remote_max_concurrent_streams();
  return std::min<size_t>(engine()->options().http2.max_streams, peer);
}

void Http2Connection::open() {
  const Http2EngineOptions& o = engine()->options().http2;
  Error err = Error::Ok;
  std::string why;
  session_ = http2::H2Session::create(o.session, this, &err, &why);
  if (session_ == nullptr) {
    // Fails the request that opened it (and closes): a session that offered h2 without nghttp2,
    // or options the codec cannot send.
    static thread_local std::string detail;
    detail = why;
    engine()->connection_connect_failed(this, err, 0, detail.c_str());
    return;
  }
  stage_ = Stage::Open;
  uint64_t now = engine()->now();
  if (o.settings_timeout_ms > 0) settings_deadline_ = now + o.settings_timeout_ms;
  if (o.ping_interval_ms > 0) ping_due_ = now + o.ping_interval_ms;
  uint64_t d = deadline();
  if (d != 0) engine()->wake(this, d);
  if (!transport_->reading()) {
    int rs = transport_->read_start();
    if (rs != 0) {
      connection_failed(error_from_uv(rs), uv_strerror(rs), rs);
      return;
    }
  }
  write_out();  // the preface
  if (stage_ != Stage::Open) return;
  first_batch_ = true;
  engine()->connection_connected(this);  // takes the key's waiters, up to capacity()
  first_batch_ = false;
}

void Http2Connection::park(uint64_t now) {
  idle_since_ = now;
  uint32_t ka = engine()->options().keep_alive_timeout_ms;
  idle_deadline_ = ka == 0 ? 0 : now + ka;
  if (idle_deadline_ != 0) engine()->wake(this, idle_deadline_);
  transport_->set_ref(false);  // an idle connection never keeps the process alive
}

bool Http2Connection::probe_alive() {
  return stage_ == Stage::Open && session_ != nullptr && session_->can_submit() && transport_->phase() == Transport::Phase::Open;
}

Http2Connection::Stream* Http2Connection::find(int32_t id) const {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second.get();
}

// ---------------------------------------------------------------------------------------------
// Requests

bool Http2Connection::encode(Request* r, std::vector<std::string>* storage, std::vector<http2::Header>* headers,
                             std::string* authority, const char** why) {
  (void)why;
  r->message.header_views(&fields_);
  headers->clear();
  *authority = key_->info.authority;
  bool has_ua = false, has_ae = false;
  for (size_t i = 0; i + 1 < fields_.size(); i += 2) {
    std::string_view n = fields_[i], v = fields_[i + 1];
    if (ieq(n, "host")) {
      *authority = std::string(v);  // the user's Host is the request's :authority
      continue;
    }
    if (ieq(n, "content-length")) continue;  // ours, from the body (below)
    if (ieq(n, "user-agent")) has_ua = true;
    if (ieq(n, "accept-encoding")) has_ae = true;
    headers->push_back({n, v});
  }
  const std::vector<std::string>& extra = engine()->options().http2.extra_headers;
  for (size_t i = 0; i + 1 < extra.size(); i += 2) {
    bool given = false;
    for (size_t j = 0; j + 1 < fields_.size() && !given; j += 2) given = ieq(fields_[j], extra[i]);
    if (!given) headers->push_back({extra[i], extra[i + 1]});
  }
  const std::vector<std::string>& order = engine()->options().http2.header_order;
  if (!order.empty() && headers->size() > 1) {
    auto rank = [&](std::string_view n) {
      for (size_t i = 0; i < order.size(); ++i) {
        if (ieq(n, order[i])) return i;
      }
      return order.size();
    };
    std::stable_sort(headers->begin(), headers->end(),
                     [&](const http2::Header& a, const http2::Header& b) { return rank(a.name) < rank(b.name); });
  }
  const std::string& ua = engine()->options().user_agent;
  if (!has_ua && !ua.empty()) headers->push_back({"user-agent", ua});
  if (!has_ae && r->limits.decompress) headers->push_back({"accept-encoding", http1::default_accept_encoding()});
  if (r->streamed_body ? r->streamed_length >= 0 : r->has_body) {
    storage->push_back(std::to_string(r->streamed_body ? static_cast<uint64_t>(r->streamed_length) : r->body.size()));
    headers->push_back({"content-length", storage->back()});
  }
  return true;
}

void Http2Connection::assign(Request* r) {
  r->conn = this;
  r->state = Request::State::Active;
  if (r->want_timings) {
    r->t_assigned = uv_hrtime();
    if (first_batch_) {  // these requests waited for the connection: its phases are theirs
      const Transport& t = *transport_;
      r->dns_us = t.resolved_us();
      r->connect_us = t.connected_us() - t.resolved_us();
      r->tls_us = t.tls_us() != 0 ? t.tls_us() - t.connected_us() : 0;
    }
  }
  std::vector<std::string> storage;
  storage.reserve(1);
  std::vector<http2::Header> headers;
  std::string authority;
  const char* why = nullptr;
  encode(r, &storage, &headers, &authority, &why);
  http2::RequestHead h;
  h.method = r->message.method();
  h.scheme = key_->info.tls ? "https" : "http";
  h.authority = authority;
  h.path = r->message.target();
  h.headers = headers.data();
  h.header_count = headers.size();
  bool empty_body = !r->streamed_body && (!r->has_body || r->body.empty());
  h.has_body = !empty_body;
  Error err = Error::Ok;
  std::string reason;
  int32_t id = session_->submit_request(h, &err, &reason);
  if (id < 0) {
    r->conn = nullptr;
    if (err == Error::Http2Goaway && r->attempts == 1 && engine()->try_retry(r)) return;
    report_error(r, err, reason.c_str(), 0);
    return;
  }
  auto st = std::make_unique<Stream>();
  Stream* s = st.get();
  s->req = r;
  s->id = id;
  s->reused = !first_batch_ && served_ > 0;
  r->stream_id = id;
  streams_.emplace(id, std::move(st));
  idle_deadline_ = 0;
  transport_->set_ref(true);
  if (!r->streamed_body && !empty_body) {
    session_->write_body(id, reinterpret_cast<const uint8_t*>(r->body.data()), r->body.size(), true);
    s->end_sent = true;
  } else if (r->streamed_body) {
    pump_body(s);
  }
  set_stream_deadline(s, r->timeouts.headers_ms);
  engine()->defer_output(this);
}

void Http2Connection::pump_body(Stream* s) {
  Request* r = s->req;
  if (r == nullptr || s->end_sent) return;
  bool progressed = false;
  while (!r->chunks.empty() && session_->body_queued(s->id) < kBodyHighWater) {
    std::string& c = r->chunks.front();
    session_->write_body(s->id, reinterpret_cast<const uint8_t*>(c.data()), c.size(), false);
    r->chunk_bytes -= c.size();
    r->chunks.pop_front();
    progressed = true;
  }
  if (r->body_ended && r->chunks.empty()) {
    session_->write_body(s->id, nullptr, 0, true);
    s->end_sent = true;
    progressed = true;
  }
  if (progressed) {
    if (!s->head_done) set_stream_deadline(s, r->timeouts.headers_ms);  // upload progress is not a late answer
    engine()->defer_output(this);
  }
  if (r->drain_wanted && r->chunks.empty() && session_->body_queued(s->id) < kBodyHighWater) {
    r->drain_wanted = false;
    engine()->respond_drain(r);
  }
}

void Http2Connection::body_ready(Request* r) {
  if (Stream* s = stream_of(r)) pump_body(s);
}

void Http2Connection::on_body_sent(int32_t stream_id, size_t) {
  Stream* s = find(stream_id);
  if (s != nullptr && s->req != nullptr && s->req->streamed_body) pump_body(s);
}

void Http2Connection::abort(Request* r) {
  Stream* s = stream_of(r);
  if (s == nullptr) return;
  s->req = nullptr;
  r->conn = nullptr;
  session_->reset_stream(s->id, http2::kH2Cancel);
  engine()->defer_output(this);
}

void Http2Connection::fail(Request* r, Error e, const char* detail) {
  if (Stream* s = stream_of(r)) fail_stream(s, e, detail);
}

void Http2Connection::fail_stream(Stream* s, Error e, const char* detail, int sys) {
  Request* r = s->req;
  if (r == nullptr) return;
  s->req = nullptr;
  r->conn = nullptr;
  s->deadline = 0;
  if (session_ != nullptr && !session_->failed()) {
    session_->reset_stream(s->id, http2::kH2Cancel);
    engine()->defer_output(this);
  }
  report_error(r, e, detail, sys);
}

void Http2Connection::report_error(Request* r, Error e, const char* detail, int sys) {
  engine()->respond_error(r, e, detail, sys);
}

// Every request still carried here is detached and fails with e (their streams' closes are then
// bookkeeping only).
void Http2Connection::fail_live(Error e, const char* detail, int sys) {
  std::vector<Stream*> live;
  for (auto& kv : streams_) {
    if (kv.second->req != nullptr) live.push_back(kv.second.get());
  }
  for (Stream* s : live) {
    Request* r = s->req;
    s->req = nullptr;
    r->conn = nullptr;
    report_error(r, e, detail, sys);
  }
}

void Http2Connection::fail_all(Error e, const char* detail) {
  fail_live(e, detail, 0);
  close(true);
}

void Http2Connection::pause(Request* r) {
  Stream* s = stream_of(r);
  r->paused = true;
  if (s == nullptr) return;
  session_->set_paused(s->id, true);
  if (s->body_phase) s->deadline = 0;  // waiting on our own consumer is not the server's fault
}

void Http2Connection::resume(Request* r) {
  Stream* s = stream_of(r);
  if (!r->paused) return;
  r->paused = false;
  if (s == nullptr) return;
  session_->set_paused(s->id, false);  // the withheld WINDOW_UPDATE goes out
  if (s->body_phase) set_stream_deadline(s, r->timeouts.body_ms);
  engine()->defer_output(this);
}

// ---------------------------------------------------------------------------------------------
// Responses

ResponseMeta Http2Connection::meta(const Stream& s) {
  ResponseMeta m;
  m.status = s.status;
  m.version_major = 2;
  m.version_minor = 0;
  m.reused = s.reused;
  m.attempts = s.req->attempts;
  m.tls_info = transport_->tls_info();
  announce();
  m.h2_info = h2_info_;
  return m;
}

void Http2Connection::announce() {
  if (h2_info_ != 0) return;
  h2_info_ = engine()->announce_h2(session_->fingerprint());
}

void Http2Connection::on_response_headers(int32_t stream_id, int status, const http2::HeaderList& headers) {
  Stream* s = find(stream_id);
  if (s == nullptr || s->req == nullptr) return;
  Request* r = s->req;
  if (r->want_timings && r->t_first_byte == 0) r->t_first_byte = uv_hrtime();
  if (headers.size() > r->limits.max_header_count) {
    fail_stream(s, Error::HeadersTooLarge, "the response has more header fields than maxHeaderCount");
    return;
  }
  s->status = static_cast<uint16_t>(status);
  std::string& h = s->head;
  h.reserve(64 + headers.size() * 32);
  h.append("HTTP/2 ");
  h.append(std::to_string(status));
  h.append("\r\n");
  std::vector<std::string_view> codings;
  int64_t content_length = -1;
  for (const auto& kv : headers) {
    h.append(kv.first);
    h.append(": ");
    h.append(kv.second);
    h.append("\r\n");
    if (kv.first == "content-encoding") {
      codings.push_back(kv.second);
    } else if (kv.first == "content-length") {
      content_length = 0;
      for (char c : kv.second) {
        if (c < '0' || c > '9' || content_length > (INT64_MAX - 9) / 10) {
          content_length = -1;
          break;
        }
        content_length = content_length * 10 + (c - '0');
      }
    }
  }
  h.append("\r\n");
  if (h.size() > r->limits.max_header_size) {
    fail_stream(s, Error::HeadersTooLarge, "the response header block exceeds maxHeaderSize");
    return;
  }
  s->head_done = true;
  s->body_phase = true;
  s->content_length = content_length;
  if (r->want_timings) r->t_head = uv_hrtime();
  if (!r->stream_response && content_length >= 0) {
    if (static_cast<uint64_t>(content_length) > r->limits.max_body_size) {
      fail_stream(s, Error::BodyTooLarge, "Content-Length exceeds maxBodySize");
      return;
    }
    s->body.reserve(static_cast<size_t>(std::min<uint64_t>(content_length, kMaxBodyReserve)));
  }
  if (r->limits.decompress && !codings.empty() && !r->is_head && !start_decoding(s, codings)) return;
  if (r->stream_response) {
    engine()->respond_head(r, meta(*s), std::move(s->head));
    s->head.clear();
  }
  if (!r->paused) {
    set_stream_deadline(s, r->timeouts.body_ms);
  } else {
    s->deadline = 0;
  }
}

bool Http2Connection::start_decoding(Stream* s, const std::vector<std::string_view>& fields) {
  std::vector<http1::Coding> codings;
  bool too_many = false;
  for (std::string_view f : fields) {
    if (!http1::parse_content_encoding(f, &codings, &too_many)) return true;  // unknown: left as is
    if (too_many) break;
  }
  if (too_many) {
    fail_stream(s, Error::Decompression, "more than 5 content codings");
    return false;
  }
  if (codings.empty()) return true;
  http1::ContentDecoder::Limits lim;
  lim.max_output = s->req->stream_response ? UINT64_MAX : s->req->limits.max_body_size;
  lim.max_ratio = s->req->limits.max_decompression_ratio;
  auto d = std::make_unique<http1::ContentDecoder>();
  if (!d->init(codings, lim)) {
    fail_stream(s, d->error(), d->detail());
    return false;
  }
  s->decoder = std::move(d);
  return true;
}

namespace {
struct SinkCtx {
  Http2Connection* self;
  void* stream;
};
}  // namespace

bool Http2Connection::decoded_sink(void* ctx, const char* p, size_t n) {
  auto* c = static_cast<SinkCtx*>(ctx);
  return c->self->deliver(static_cast<Stream*>(c->stream), p, n);
}

bool Http2Connection::deliver(Stream* s, const char* p, size_t n) {
  if (n == 0) return true;
  Request* r = s->req;
  s->body_bytes += n;
  if (r->stream_response) {
    engine()->respond_data(r, p, n);
    return true;
  }
  if (s->body_bytes > r->limits.max_body_size) {
    fail_stream(s, Error::BodyTooLarge, "response body exceeds maxBodySize");
    return false;
  }
  s->body.append(p, n);
  return true;
}

void Http2Connection::on_data(int32_t stream_id, const uint8_t* data, size_t len) {
  Stream* s = find(stream_id);
  if (s == nullptr || s->req == nullptr || len == 0) return;
  const char* p = reinterpret_cast<const char*>(data);
  s->wire_bytes += len;
  if (s->decoder != nullptr) {
    SinkCtx ctx{this, s};
    if (!s->decoder->feed(p, len, decoded_sink, &ctx)) {
      if (s->req != nullptr && s->decoder->error() != Error::Ok) fail_stream(s, s->decoder->error(), s->decoder->detail());
      return;
    }
  } else if (!deliver(s, p, len)) {
    return;
  }
  if (s->req != nullptr && !s->req->paused) set_stream_deadline(s, s->req->timeouts.body_ms);
}

void Http2Connection::on_trailers(int32_t stream_id, const http2::HeaderList& trailers) {
  Stream* s = find(stream_id);
  if (s == nullptr || s->req == nullptr) return;
  Request* r = s->req;
  if (trailers.size() > r->limits.max_header_count) {
    fail_stream(s, Error::HeadersTooLarge, "the response trailers have more fields than maxHeaderCount");
    return;
  }
  std::string& t = s->trailers;
  for (const auto& kv : trailers) {
    t.append(kv.first);
    t.append(": ");
    t.append(kv.second);
    t.append("\r\n");
  }
  if (t.size() > r->limits.max_header_size) fail_stream(s, Error::HeadersTooLarge, "the response trailers exceed maxHeaderSize");
}

void Http2Connection::complete(Stream* s) {
  Request* r = s->req;
  if (s->decoder != nullptr) {
    SinkCtx ctx{this, s};
    if (!s->decoder->finish(decoded_sink, &ctx)) {
      if (s->req != nullptr) {
        Error e = s->decoder->error() != Error::Ok ? s->decoder->error() : Error::Decompression;
        const char* d = s->decoder->error() != Error::Ok ? s->decoder->detail() : error_message(e);
        s->req = nullptr;
        r->conn = nullptr;
        report_error(r, e, d, 0);
      }
      return;
    }
    if (s->req == nullptr) return;  // delivering failed it
  }
  ResponseMeta m = meta(*s);
  s->req = nullptr;
  r->conn = nullptr;
  ++served_;
  if (!s->trailers.empty()) engine()->respond_trailers(r, std::move(s->trailers));
  if (r->stream_response) {
    engine()->respond_end(r);
  } else {
    engine()->respond_complete(r, m, std::move(s->head), std::move(s->body));
  }
}

void Http2Connection::on_stream_close(int32_t stream_id, const http2::StreamEnd& end) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return;
  std::unique_ptr<Stream> owned = std::move(it->second);
  streams_.erase(it);
  Stream* s = owned.get();
  Request* r = s->req;
  if (r != nullptr) {
    // RST_STREAM(NO_ERROR) after the whole response (its Content-Length, or none announced) ends
    // it as END_STREAM would: node:http2 servers end large responses so (RFC 9113 §8.1 allows it
    // after a complete response; nghttp2's own clients accept it).
    bool rst_done = end.error == Error::Http2StreamReset && end.h2_code == http2::kH2NoError && s->head_done &&
                    (s->content_length < 0 || static_cast<uint64_t>(s->content_length) == s->wire_bytes);
    if ((end.error == Error::Ok || rst_done) && s->head_done) {
      complete(s);
    } else {
      s->req = nullptr;
      r->conn = nullptr;
      if (end.retryable && r->replayable() && engine()->retry_unprocessed(r)) {
        // Not processed by the server (RFC 9113 §8.7): runs again, on this connection if it
        // still takes streams (REFUSED_STREAM before its SETTINGS lowered the limit), else another.
      } else {
        Error e = end.error == Error::Ok ? Error::Http2Protocol : end.error;
        const char* d = end.detail.empty() ? error_message(e) : end.detail.c_str();
        uint32_t code = end.h2_code != 0 ? end.h2_code : fail_h2_code_;
        report_error(r, e, d, static_cast<int>(code));
      }
    }
  }
  stream_ended();
}

void Http2Connection::stream_ended() {
  if (stage_ != Stage::Open) return;
  if (streams_.empty()) {
    if (session_ == nullptr || !session_->can_submit()) {
      close(false);  // GOAWAY either way and nothing left to finish
      return;
    }
    park(engine()->now());
  }
  if (has_room()) engine()->connection_idle(this);
}

// ---------------------------------------------------------------------------------------------
// Connection-level events

void Http2Connection::on_goaway(int32_t, uint32_t, std::string_view) {
  engine()->connection_full(this);  // no new stream; those above last-stream-id close as retryable
}

void Http2Connection::on_settings(bool ack) {
  if (ack) {
    if (session_->settings_ack_pending_since() == 0) settings_deadline_ = 0;
    return;
  }
  // The server's SETTINGS: its stream limit may have changed our room.
  if (stage_ != Stage::Open) return;
  if (has_room()) {
    engine()->connection_idle(this);
  } else {
    engine()->connection_full(this);
  }
}

void Http2Connection::on_ping(bool ack, uint64_t opaque) {
  if (ack && opaque == ping_seq_) ping_deadline_ = 0;
}

void Http2Connection::on_connection_error(Error, uint32_t, const std::string&) {
  // Every stream has been closed with the error already (on_stream_close); what is left is the
  // GOAWAY to flush and the close, done by whoever fed the session.
}

void Http2Connection::transport_data(const char* p, size_t n) {
  engine()->add_bytes(n, 0);
  if (session_ == nullptr || stage_ != Stage::Open) return;
  bool ok = session_->feed(reinterpret_cast<const uint8_t*>(p), n);
  if (stage_ != Stage::Open) return;
  if (!ok || session_->finished()) {
    write_out();  // the GOAWAY explaining it
    close(false);
    return;
  }
  engine()->defer_output(this);  // ACKs, WINDOW_UPDATEs, what the callbacks submitted
}

void Http2Connection::transport_read_end(int status) {
  Error e = status == UV_EOF ? Error::SocketClosed : error_from_uv(status);
  const char* why = status == UV_EOF ? "the server closed the HTTP/2 connection" : uv_strerror(status);
  connection_failed(e, why, status == UV_EOF ? 0 : status);
}

void Http2Connection::transport_failed(Error e, const char* detail, int sys) {
  connection_failed(e, detail != nullptr ? detail : error_message(e), sys);
}

void Http2Connection::transport_drained(int status) {
  if (status != 0) {
    connection_failed(error_from_uv(status), uv_strerror(status), status);
    return;
  }
  if (write_blocked_) {
    write_blocked_ = false;
    write_out();
  }
}

void Http2Connection::connection_failed(Error e, const char* detail, int sys) {
  if (stage_ == Stage::Closing) return;
  std::string d = detail != nullptr ? detail : "";
  if (session_ != nullptr && session_->goaway_received() &&
      (e == Error::SocketClosed || e == Error::ConnectionReset)) {
    // The server said why before it closed: the streams it kept (at or below the GOAWAY's last
    // stream id) end with that, not with a bare close.
    uint32_t code = session_->goaway_error_code();
    e = Error::Http2Goaway;
    d = std::string("the server sent GOAWAY (") + http2::h2_code_name(code) + ") and closed the connection";
    sys = static_cast<int>(code);
  }
  if (e == Error::Http2Protocol || e == Error::Http2Goaway || e == Error::Http2StreamReset) {
    fail_h2_code_ = static_cast<uint32_t>(sys);
  }
  if (session_ != nullptr) session_->transport_closed(e, d);  // each stream: on_stream_close
  // Whatever the session did not know about (none, normally).
  fail_live(e, d.c_str(), sys);
  if (stage_ == Stage::Connecting) {
    engine()->connection_connect_failed(this, e, sys, d.c_str());
    return;
  }
  close(true);
}

void Http2Connection::flush_output() {
  if (stage_ == Stage::Open) write_out();
}

void Http2Connection::write_out() {
  if (session_ == nullptr) return;
  while (!write_blocked_) {
    if (transport_->queued_bytes() > kOutHighWater) {
      write_blocked_ = true;  // transport_drained() resumes
      return;
    }
    auto out = session_->output();
    if (out.second == 0) return;
    int w = transport_->write(reinterpret_cast<const char*>(out.first), out.second);
    session_->consume_output(out.second);
    if (w != 0) {
      connection_failed(error_from_uv(w), transport_->tls_write_failed() ? transport_->tls_detail() : uv_strerror(w), w);
      return;
    }
    engine()->add_bytes(0, out.second);
  }
}

// ---------------------------------------------------------------------------------------------
// Deadlines and closing

void Http2Connection::set_stream_deadline(Stream* s, uint32_t ms) {
  if (ms == 0) {
    s->deadline = 0;
    return;
  }
  s->deadline = engine()->now() + ms;
  engine()->wake(this, s->deadline);
}

uint64_t Http2Connection::deadline() const {
  uint64_t d = 0;
  auto take = [&](uint64_t t) {
    if (t != 0 && (d == 0 || t < d)) d = t;
  };
  take(settings_deadline_);
  take(ping_due_);
  take(ping_deadline_);
  if (streams_.empty()) take(idle_deadline_);
  for (const auto& kv : streams_) take(kv.second->deadline);
  return d;
}

void Http2Connection::on_deadline(uint64_t now) {
  if (stage_ != Stage::Open) return;
  if ((settings_deadline_ != 0 && settings_deadline_ <= now) || (ping_deadline_ != 0 && ping_deadline_ <= now)) {
    bool settings = settings_deadline_ != 0 && settings_deadline_ <= now;
    settings_deadline_ = ping_deadline_ = 0;
    if (session_ != nullptr && !session_->failed()) {
      session_->goaway(settings ? http2::kH2SettingsTimeout : http2::kH2NoError);
      write_out();
    }
    connection_failed(Error::Http2Protocol,
                      settings ? "the server did not acknowledge our SETTINGS in time (SETTINGS_TIMEOUT)"
                               : "the server did not answer a keep-alive PING in time",
                      settings ? static_cast<int>(http2::kH2SettingsTimeout) : 0);
    return;
  }
  if (streams_.empty() && idle_deadline_ != 0 && idle_deadline_ <= now) {
    idle_deadline_ = 0;
    engine()->discard(*key_, this);
    return;
  }
  if (ping_due_ != 0 && ping_due_ <= now) {
    uint32_t every = engine()->options().http2.ping_interval_ms;
    ping_due_ = now + every;
    if (ping_deadline_ == 0 && session_->ping(++ping_seq_)) {
      ping_deadline_ = now + std::max<uint32_t>(every, 1000);
      engine()->defer_output(this);
    }
  }
  std::vector<int32_t> due;
  for (const auto& kv : streams_) {
    if (kv.second->deadline != 0 && kv.second->deadline <= now && kv.second->req != nullptr) due.push_back(kv.first);
  }
  for (int32_t id : due) {
    Stream* s = find(id);
    if (s == nullptr || s->req == nullptr) continue;
    if (s->body_phase) {
      fail_stream(s, Error::BodyTimeout, "no response body bytes within the body timeout");
    } else {
      fail_stream(s, Error::HeadersTimeout, "no complete response head within the headers timeout");
    }
  }
}

void Http2Connection::close(bool abortive) {
  if (stage_ == Stage::Closing) return;
  // Requests still here (none when the engine closes an idle connection) are not dropped silently.
  fail_live(Error::SocketClosed, "the HTTP/2 connection closed", 0);
  if (stage_ == Stage::Closing) return;
  if (!abortive && stage_ == Stage::Open && session_ != nullptr && !session_->failed()) {
    session_->goaway();  // graceful: the server learns we are done
    write_out();
  }
  stage_ = Stage::Closing;
  engine()->connection_closing(this);
  settings_deadline_ = ping_due_ = ping_deadline_ = idle_deadline_ = 0;
  transport_->close(abortive);
}

void Http2Connection::transport_closed() {
  if (h2_info_ != 0) {
    engine()->forget_h2(h2_info_);
  }
  engine()->connection_closed(this);
}

}  // namespace uvf
