#include "client/raw_connection.h"

#include <sys/socket.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "client/engine.h"

namespace uvf {

namespace {

// "1.2.3.4" / "::1" and the port of a socket address ("" and 0 for anything else).
void describe_address(const sockaddr_storage& ss, std::string* ip, uint16_t* port) {
  char buf[64] = {0};
  if (ss.ss_family == AF_INET) {
    const auto* s4 = reinterpret_cast<const sockaddr_in*>(&ss);
    uv_ip4_name(s4, buf, sizeof buf);
    *port = ntohs(s4->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* s6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    uv_ip6_name(s6, buf, sizeof buf);
    *port = ntohs(s6->sin6_port);
  }
  ip->assign(buf);
}

}  // namespace

RawConnection::RawConnection(Engine* engine, RawId id, RawOptions&& opts)
    : engine_(engine), id_(id), opts_(std::move(opts)), transport_(engine, this, transport_options()) {}

RawConnection::~RawConnection() = default;

Transport::Options RawConnection::transport_options() {
  if (!opts_.local_address.empty()) {
    has_local_ = Engine::parse_local_address(opts_.local_address, &local_);
  } else if (const sockaddr* l = engine_->local_address()) {
    std::memcpy(&local_, l, l->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in));
    has_local_ = true;
  }
  Transport::Options o;
  o.any_alpn = true;  // the user's protocol, whatever the server picked
  o.raw_origin = true;
  o.read_blocks = true;
  o.socket.no_delay = opts_.no_delay;
  o.socket.keep_alive_ms = opts_.keep_alive_ms;
  o.socket.local = has_local_ ? reinterpret_cast<const sockaddr*>(&local_) : nullptr;
  return o;
}

Transport::Target RawConnection::transport_target() const {
  Transport::Target t;
  t.host = &opts_.host;
  t.port = opts_.port;
  if (opts_.tls_ctx) t.tls = &opts_.tls_ctx;
  t.servername = &opts_.servername;
  return t;
}

// ---------------------------------------------------------------------------------------------
// Connecting (the transport resolves, dials and handshakes; the slot, descriptor wait and
// deadlines are ours)

void RawConnection::start() {
  set_deadline(opts_.connect_timeout_ms);
  state_ = State::Connecting;
  transport_.start();
}

bool RawConnection::transport_may_dial() { return ready_to_dial(); }

void RawConnection::transport_wake_at(uint64_t at) { engine_->raw_wake(this, at); }

bool RawConnection::ready_to_dial() {
  if (!has_slot_) {
    // Raw sockets share the session's socket budget (`connections`) with pooled HTTP ones.
    if (!engine_->raw_take_slot(id_)) {
      slot_wait_ = true;  // Engine::raw_serve_slot_waiters() calls slot_granted()
      return false;
    }
    has_slot_ = true;
  }
  if (!engine_->can_open()) {
    // The engine is out of descriptors: wait (within the connect timeout) like HTTP connections.
    fd_wait_ = true;
    engine_->raw_out_of_fds(!fd_wait_counted_);
    fd_wait_counted_ = true;
    return false;
  }
  return true;
}

void RawConnection::retry_fd() {
  if (state_ != State::Connecting || !fd_wait_) return;
  fd_wait_ = false;
  if (ready_to_dial()) transport_.dial();
}

void RawConnection::slot_granted() {
  if (state_ != State::Connecting || !slot_wait_) return;
  slot_wait_ = false;
  has_slot_ = true;
  if (ready_to_dial()) transport_.dial();
}

void RawConnection::transport_fd_released() {
  engine_->raw_out_of_fds(!fd_wait_counted_);  // retry_fd() dials again
  fd_wait_counted_ = true;
}

void RawConnection::transport_handshaking() { set_deadline(opts_.tls_timeout_ms); }

void RawConnection::transport_connected(const std::string&) {
  state_ = State::Open;
  deadline_ = 0;
  RawOpenInfo info;
  info.tls_info = transport_.tls_info();
  int fd = transport_.fd();
  sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (fd >= 0 && getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    describe_address(ss, &info.remote_address, &info.remote_port);
  }
  len = sizeof ss;
  if (fd >= 0 && getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    describe_address(ss, &info.local_address, &info.local_port);
  }
  engine_->sink()->on_raw_open(id_, info);
  engine_->note_event();
  if (paused_) transport_.read_stop();
}

// ---------------------------------------------------------------------------------------------
// Bytes in

// Reads land in blocks of the connection's own (Engine::take_read_block): plain TCP reads and
// gathered TLS records alike; a large one goes to the sink as is, with no copy.
char* RawConnection::transport_take_block(size_t* size) {
  *size = Engine::kReadBlockSize;
  return engine_->take_read_block();
}

void RawConnection::transport_give_block(char* block) { engine_->give_read_block(block); }

// A read block of ours with n bytes: handed to the sink as is when it is worth a buffer of its
// own, else copied out (and the block kept as the engine's spare).
void RawConnection::transport_data_block(char* block, size_t n) {
  if (state_ == State::Open && n >= Engine::kHandOverBytes) {
    engine_->add_bytes(n, 0);
    engine_->sink()->on_raw_block(id_, block, n);
    engine_->note_event();
    account_delivered(n);
    return;
  }
  if (state_ == State::Open) deliver(block, n);
  engine_->give_read_block(block);
}

void RawConnection::transport_data(const char* p, size_t n) {
  if (state_ == State::Open) deliver(p, n);
}

void RawConnection::deliver(const char* p, size_t n) {
  engine_->add_bytes(n, 0);
  engine_->sink()->on_raw_data(id_, p, n);
  engine_->note_event();
  account_delivered(n);
}

void RawConnection::account_delivered(size_t n) {
  // libuv may read a busy socket many times in one poll phase, before JS has had a chance to
  // say "pause": cap what one socket delivers per loop turn.
  if (turn_ != engine_->turn()) {
    turn_ = engine_->turn();
    turn_bytes_ = 0;
  }
  turn_bytes_ += n;
  if (turn_bytes_ >= kStreamTurnBytes && !throttled_ && !paused_) {
    throttled_ = true;
    transport_.read_stop();
    engine_->raw_throttle(id_);
  }
}

void RawConnection::transport_read_end(int status) {
  if (state_ != State::Open) return;
  if (status == UV_EOF) {
    peer_ended();  // a FIN, or a TLS close_notify
    return;
  }
  fail(error_from_uv(status), uv_strerror(status), status);
}

void RawConnection::peer_ended() {
  if (peer_ended_) return;
  peer_ended_ = true;
  transport_.read_stop();
  engine_->sink()->on_raw_end(id_);
  engine_->note_event();
  maybe_finish();
}

void RawConnection::pause() {
  paused_ = true;
  if (state_ == State::Open) transport_.read_stop();
}

void RawConnection::resume() {
  paused_ = false;
  if (throttled_ || state_ != State::Open || peer_ended_) return;
  int r = transport_.read_start();
  if (r != 0) fail(error_from_uv(r), uv_strerror(r), r);
}

void RawConnection::unthrottle() {
  throttled_ = false;
  if (paused_ || state_ != State::Open || peer_ended_) return;
  int r = transport_.read_start();
  if (r != 0) fail(error_from_uv(r), uv_strerror(r), r);
}

// ---------------------------------------------------------------------------------------------
// Bytes out

int64_t RawConnection::write(const char* p, size_t n) {
  if (state_ != State::Open || ended_) return -1;
  if (n == 0) return static_cast<int64_t>(transport_.queued_bytes());
  int w = transport_.write(p, n);
  if (w != 0) {
    if (transport_.tls_write_failed()) {
      fail(transport_.tls_error(), transport_.tls_detail());
    } else {
      fail(error_from_uv(w), uv_strerror(w), w);
    }
    return -1;
  }
  engine_->add_bytes(0, n);
  size_t q = transport_.queued_bytes();
  if (q > 0) drain_wanted_ = true;
  return static_cast<int64_t>(q);
}

void RawConnection::transport_drained(int status) {
  if (state_ == State::Closing) return;
  if (status != 0) {
    fail(error_from_uv(status), uv_strerror(status), status);
    return;
  }
  if (drain_wanted_ && transport_.queued_bytes() == 0) {
    drain_wanted_ = false;
    engine_->sink()->on_raw_drain(id_);
    engine_->note_event();
  }
}

void RawConnection::end() {
  if (ended_ || state_ == State::Closing) return;
  ended_ = true;
  if (state_ != State::Open) return;  // connect()'s promise never resolved: nothing to end
  int r = transport_.shutdown();  // a close_notify under TLS, then the FIN
  if (r != 0) fail(error_from_uv(r), uv_strerror(r), r);
}

void RawConnection::transport_shutdown(int status) {
  if (state_ == State::Closing) return;
  if (status != 0) {
    fail(error_from_uv(status), uv_strerror(status), status);
    return;
  }
  shut_down_ = true;
  engine_->sink()->on_raw_finished(id_);
  engine_->note_event();
  maybe_finish();
}

// Both directions finished: nothing more can happen on this socket.
void RawConnection::maybe_finish() {
  if (peer_ended_ && shut_down_) close(false);
}

// ---------------------------------------------------------------------------------------------
// Errors, deadlines, closing

void RawConnection::transport_failed(Error e, const char* detail, int sys) {
  if (e == Error::FdExhausted && transport_.phase() == Transport::Phase::Connecting) {
    fd_wait_ = true;  // the socket closes; transport_fd_released() parks us until a descriptor is free
    transport_.release_fd();
    return;
  }
  fail(e, detail != nullptr ? detail : opts_.host.c_str(), sys);  // no detail: the name did not resolve
}

void RawConnection::fail(Error e, const char* detail, int sys) {
  if (state_ == State::Closing) return;
  if (transport_.phase() == Transport::Phase::Handshaking) engine_->tls_finished(false, false);
  engine_->sink()->on_raw_error(id_, e, detail, sys);
  engine_->note_event();
  close(true);
}

void RawConnection::fail_closed(Error reason) { fail(reason, error_message(reason)); }

void RawConnection::set_deadline(uint32_t ms) {
  if (ms == 0) {
    deadline_ = 0;
    return;
  }
  deadline_ = engine_->now() + ms;
  engine_->raw_wake(this, deadline_);
}

void RawConnection::on_deadline() {
  deadline_ = 0;
  if (state_ != State::Connecting) return;
  if (transport_.phase() == Transport::Phase::Handshaking) {
    fail(Error::TlsHandshakeTimeout, "no TLS handshake within the tls timeout");
  } else if (slot_wait_) {
    fail(Error::ConnectTimeout,
         "no socket became free under the session's connections limit within the connect timeout");
  } else if (fd_wait_) {
    fail(Error::FdExhausted, engine_->fd_wait_detail().c_str());
  } else {
    fail(Error::ConnectTimeout, "connect timed out");
  }
}

void RawConnection::destroy(bool abortive) { close(abortive); }

void RawConnection::close(bool abortive) {
  if (state_ == State::Closing) return;
  state_ = State::Closing;
  slot_wait_ = false;  // a stale entry in the engine's queue is skipped
  deadline_ = 0;
  transport_.close(abortive);  // reports transport_closed (synchronously when no descriptor was made)
}

void RawConnection::transport_closed() { engine_->raw_closed(this); }

// ---------------------------------------------------------------------------------------------
// The engine's side: a registry of raw connections (id → connection)

char* Engine::take_read_block() {
  if (spare_block_ != nullptr) {
    char* b = spare_block_;
    spare_block_ = nullptr;
    return b;
  }
  return static_cast<char*>(std::malloc(kReadBlockSize));  // uninitialized: the read fills it
}

void Engine::give_read_block(char* b) {
  if (spare_block_ == nullptr) {
    spare_block_ = b;
  } else {
    free_read_block(b);
  }
}

void Engine::free_read_block(char* b) { std::free(b); }

void EngineSink::on_raw_block(RawId id, char* block, size_t n) {
  on_raw_data(id, block, n);
  Engine::free_read_block(block);
}

bool Engine::parse_local_address(const std::string& ip, sockaddr_storage* out) {
  std::memset(out, 0, sizeof *out);
  return uv_ip4_addr(ip.c_str(), 0, reinterpret_cast<sockaddr_in*>(out)) == 0 ||
         uv_ip6_addr(ip.c_str(), 0, reinterpret_cast<sockaddr_in6*>(out)) == 0;
}

Error Engine::raw_open(RawId id, RawOptions&& o, const char** detail) {
  if (closing_) {
    *detail = "session is closed";
    return Error::SessionClosed;
  }
  if (raws_.count(id) != 0) {
    *detail = "duplicate raw socket id";
    return Error::Internal;
  }
  if (o.host.empty() || o.port == 0) {
    *detail = "a host and a port (1-65535) are required";
    return Error::InvalidOption;
  }
  sockaddr_storage ss;
  if (!o.local_address.empty() && !parse_local_address(o.local_address, &ss)) {
    *detail = "localAddress must be an IPv4 or IPv6 address";
    return Error::InvalidOption;
  }
  auto* c = new RawConnection(this, id, std::move(o));
  raws_.emplace(id, c);
  c->start();  // may fail (and even close) synchronously: reported as events
  return Error::Ok;
}

RawConnection* Engine::raw_find(RawId id) {
  auto it = raws_.find(id);
  return it == raws_.end() ? nullptr : it->second;
}

int64_t Engine::raw_write(RawId id, const char* p, size_t n) {
  RawConnection* c = raw_find(id);
  return c != nullptr ? c->write(p, n) : -1;
}

void Engine::raw_end(RawId id) {
  if (RawConnection* c = raw_find(id)) c->end();
}

void Engine::raw_destroy(RawId id, bool abortive) {
  if (RawConnection* c = raw_find(id)) c->destroy(abortive);
}

void Engine::raw_pause(RawId id) {
  if (RawConnection* c = raw_find(id)) c->pause();
}

void Engine::raw_resume(RawId id) {
  if (RawConnection* c = raw_find(id)) c->resume();
}

void Engine::raw_throttle(RawId id) {
  raw_throttled_.push_back(id);
  schedule_turn_end();
}

void Engine::raw_closed(RawConnection* c) {
  raw_timers_.cancel(c);
  if (c->has_slot()) pool_.release_external();
  raws_.erase(c->id());
  raw_dead_.push_back(c);
  sink_->on_raw_closed(c->id());
  note_event();
  if (c->had_fd()) {
    fd_exhausted_ = false;  // a descriptor just came back
    if (budget_ != nullptr) budget_->fd_returned();
  }
  capacity_freed_ = true;  // HTTP origins or raw sockets waiting for a descriptor may go on
  schedule_turn_end();     // run_turn_end continues a pending close()
}

void Engine::raw_turn_end() {
  if (!raw_throttled_.empty()) {
    std::vector<RawId> ids;
    ids.swap(raw_throttled_);
    for (RawId id : ids) {
      if (RawConnection* c = raw_find(id)) c->unthrottle();
    }
  }
  if (raw_fd_blocked_ && !fds_blocked()) {
    raw_fd_blocked_ = false;
    std::vector<RawConnection*> waiting;
    for (auto& kv : raws_) {
      if (kv.second->waiting_for_fd()) waiting.push_back(kv.second);
    }
    for (RawConnection* c : waiting) {
      if (fds_blocked()) {
        raw_fd_blocked_ = true;
        break;
      }
      c->retry_fd();
    }
  }
}

void Engine::raw_wake(RawConnection* c, uint64_t at) {
  if (c->state() == RawConnection::State::Closing) return;
  raw_timers_.schedule_no_later(c, at);
  arm_deadline(at);
}

// Raw connections whose deadline or race is due (closed ones wait in raw_dead_ until the turn ends).
void Engine::raw_sweep(uint64_t n) {
  while (RawConnection* c = raw_timers_.pop_due(n)) {
    if (c->state() == RawConnection::State::Closing) continue;
    uint64_t ra = c->race_at();
    if (ra != 0 && ra <= n) {
      c->on_race_deadline();
      if (c->state() == RawConnection::State::Closing) continue;
    }
    uint64_t d = c->deadline();
    if (d != 0 && d <= n) {
      c->on_deadline();
      if (c->state() == RawConnection::State::Closing) continue;
    }
    ra = c->race_at();
    d = c->deadline();
    uint64_t due = ra == 0 ? d : d == 0 ? ra : std::min(ra, d);
    if (due != 0) raw_timers_.schedule(c, std::max(due, n + 1));
  }
}

bool Engine::raw_close_all() {
  if (raws_.empty()) return true;
  std::vector<RawConnection*> open;
  for (auto& kv : raws_) {
    if (kv.second->state() != RawConnection::State::Closing) open.push_back(kv.second);
  }
  for (RawConnection* c : open) c->fail_closed(Error::SessionClosed);
  return raws_.empty();
}

}  // namespace uvf
