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
    : engine_(engine),
      id_(id),
      opts_(std::move(opts)),
      sock_(std::make_unique<TcpSocket>(engine->loop(), this, engine->read_buffer())) {}

RawConnection::~RawConnection() = default;

// ---------------------------------------------------------------------------------------------
// Resolve, connect, handshake

void RawConnection::start() {
  dns_waiter_.conn = this;
  if (!opts_.local_address.empty()) {
    has_local_ = Engine::parse_local_address(opts_.local_address, &local_);
  } else if (const sockaddr* l = engine_->local_address()) {
    std::memcpy(&local_, l, l->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in));
    has_local_ = true;
  }
  set_deadline(opts_.connect_timeout_ms);
  state_ = State::Resolving;
  // Literals, overrides and cache hits answer synchronously (ticket 0).
  dns_ticket_ = engine_->dns().lookup(opts_.host, opts_.port, engine_->options().dns.family, engine_->now(),
                                      &dns_waiter_);
}

void RawConnection::on_dns(Error e, const std::vector<dns::Address>& addrs, size_t rotate_from) {
  dns_ticket_ = 0;
  if (state_ != State::Resolving) return;
  if (e != Error::Ok) {
    fail(e, opts_.host.c_str());
    return;
  }
  std::vector<sockaddr_storage>& list = dialer_.addresses();
  list.clear();
  dns::append_for_happy_eyeballs(addrs, rotate_from, opts_.port, &list);
  if (list.empty()) {
    fail(Error::DnsNotFound, opts_.host.c_str());
    return;
  }
  state_ = State::Connecting;
  connect_next();
}

void RawConnection::connect_next() {
  if (!has_slot_) {
    // Raw sockets share the session's socket budget (`connections`) with pooled HTTP ones.
    if (!engine_->raw_take_slot(id_)) {
      slot_wait_ = true;  // Engine::raw_serve_slot_waiters() calls slot_granted()
      return;
    }
    has_slot_ = true;
  }
  if (!engine_->can_open()) {
    // The engine is out of descriptors: wait (within the connect timeout) like HTTP connections.
    fd_wait_ = true;
    engine_->raw_out_of_fds(!fd_wait_counted_);
    fd_wait_counted_ = true;
    return;
  }
  if (dial_started_) {
    dialer_.retry();  // the address that met EMFILE, again
    return;
  }
  dial_started_ = true;
  SocketOptions so;
  so.no_delay = opts_.no_delay;
  so.keep_alive_ms = opts_.keep_alive_ms;
  so.local = has_local_ ? reinterpret_cast<const sockaddr*>(&local_) : nullptr;
  dialer_.start(so);
}

void RawConnection::retry_fd() {
  if (state_ != State::Connecting || !fd_wait_) return;
  fd_wait_ = false;
  connect_next();
}

void RawConnection::slot_granted() {
  if (state_ != State::Connecting || !slot_wait_) return;
  slot_wait_ = false;
  has_slot_ = true;
  connect_next();
}

void RawConnection::on_connect(int status) {
  if (state_ != State::Connecting) return;
  dialer_.on_connect(status);
}

void RawConnection::dial_failed(int status) {
  if (status == UV_EMFILE || status == UV_ENFILE) {
    fd_wait_ = true;  // on_closed parks us until a descriptor is free
    sock_->close(true);
    return;
  }
  fail(error_from_uv(status), uv_strerror(status), status);
}

void RawConnection::dial_racer_closed() {
  if (!closed_pending_) return;
  closed_pending_ = false;
  engine_->raw_closed(this);
}

void RawConnection::dial_connected() {
  t_connected_ = uv_hrtime();
  int r = sock_->read_start();
  if (r != 0) {
    fail(error_from_uv(r), uv_strerror(r), r);
    return;
  }
  if (opts_.tls_ctx) {
    start_tls();
    return;
  }
  opened();
}

void RawConnection::start_tls() {
  state_ = State::Handshaking;
  set_deadline(opts_.tls_timeout_ms);
  tls_ = std::make_unique<tls::Channel>();
  if (!tls_->init(opts_.tls_ctx, opts_.servername.empty() ? opts_.host : opts_.servername, opts_.port)) {
    fail(tls_->error(), tls_->detail().c_str());
    return;
  }
  tls_->accept_any_alpn();  // the user's protocol, whatever the server picked
  continue_handshake();
}

void RawConnection::continue_handshake() {
  tls::Channel::Status st = tls_->handshake();
  int w = flush_tls();
  if (st == tls::Channel::Status::Failed) {
    fail(tls_->error(), tls_->detail().c_str());
    return;
  }
  if (w != 0) {
    fail(error_from_uv(w), uv_strerror(w), w);
    return;
  }
  if (st != tls::Channel::Status::Ok) return;
  engine_->tls_finished(true, tls_->resumed());
  tls::SessionInfo info;
  tls_->describe(&info);
  tls_->drop_client_hello();
  bool v6 = opts_.host.find(':') != std::string::npos;
  info.origin = std::string("tls://") + (v6 ? "[" : "") + opts_.host + (v6 ? "]:" : ":") + std::to_string(opts_.port);
  info.handshake_us = static_cast<uint32_t>((uv_hrtime() - t_connected_) / 1000);
  tls_info_ = engine_->next_tls_info();
  engine_->sink()->on_tls_info(tls_info_, info);
  engine_->note_event();
  opened();
}

void RawConnection::opened() {
  state_ = State::Open;
  deadline_ = 0;
  RawOpenInfo info;
  info.tls_info = tls_info_;
  int fd = sock_->fd();
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
  if (paused_) sock_->read_stop();
}

// ---------------------------------------------------------------------------------------------
// Bytes in

// Plain TCP reads land in a block of the connection's own (Engine::take_read_block): a large
// read goes to the sink as is, with no copy; under TLS the ciphertext uses the shared buffer.
char* RawConnection::read_block(size_t* size) {
  if (tls_ != nullptr || state_ != State::Open) return nullptr;
  *size = Engine::kReadBlockSize;
  return engine_->take_read_block();
}

void RawConnection::read_block_unused(char* block) { engine_->give_read_block(block); }

void RawConnection::on_data(const char* p, size_t n) {
  if (tls_ == nullptr) {
    // p is our read block when read_block() gave one (always, while Open).
    if (p != engine_->read_buffer()->data) {
      deliver_block(const_cast<char*>(p), n);
    } else if (state_ == State::Open) {
      deliver(p, n);
    }
    return;
  }
  if (state_ == State::Closing) return;
  if (!tls_->feed(p, n)) {
    fail(tls_->error(), tls_->detail().c_str());
    return;
  }
  if (state_ == State::Handshaking) {
    continue_handshake();
    if (state_ != State::Open) return;
  }
  read_tls();
}

// Decrypted records are gathered into one read block (up to its size) and delivered together:
// fewer events than one per 16 KiB record, and a full block goes to the sink without a copy.
void RawConnection::read_tls() {
  char* block = nullptr;
  size_t have = 0;
  while (state_ == State::Open) {
    if (block == nullptr) {
      block = engine_->take_read_block();
      have = 0;
      if (block == nullptr) {
        fail(Error::Internal, "out of memory for a read buffer");
        return;
      }
    }
    size_t got = 0;
    tls::Channel::Status st = tls_->read(block + have, Engine::kReadBlockSize - have, &got);
    if (st == tls::Channel::Status::Ok) {
      have += got;
      if (have == Engine::kReadBlockSize) {
        deliver_block(block, have);
        block = nullptr;
      }
      continue;
    }
    if (have > 0) {
      deliver_block(block, have);  // what came before the end, error or WantMore
    } else {
      engine_->give_read_block(block);
    }
    block = nullptr;
    if (state_ != State::Open) return;
    if (flush_tls() != 0 && st == tls::Channel::Status::WantMore) return;  // the read side will tell
    if (st == tls::Channel::Status::WantMore) return;
    if (st == tls::Channel::Status::Closed) {
      peer_ended();  // close_notify: the peer's end of stream
      return;
    }
    fail(tls_->error(), tls_->detail().c_str());
    return;
  }
  if (block != nullptr) engine_->give_read_block(block);
}

// A read block of ours with n bytes: handed to the sink as is when it is worth a buffer of its
// own, else copied out (and the block kept as the engine's spare).
void RawConnection::deliver_block(char* block, size_t n) {
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
    sock_->read_stop();
    engine_->raw_throttle(id_);
  }
}

void RawConnection::on_read_end(int status) {
  if (state_ == State::Handshaking) {
    fail(Error::TlsHandshake,
         status == UV_EOF ? "the server closed the connection during the TLS handshake" : uv_strerror(status),
         status == UV_EOF ? 0 : status);
    return;
  }
  if (state_ != State::Open) return;
  if (status == UV_EOF) {
    peer_ended();
    return;
  }
  fail(error_from_uv(status), uv_strerror(status), status);
}

void RawConnection::peer_ended() {
  if (peer_ended_) return;
  peer_ended_ = true;
  sock_->read_stop();
  engine_->sink()->on_raw_end(id_);
  engine_->note_event();
  maybe_finish();
}

void RawConnection::pause() {
  paused_ = true;
  if (state_ == State::Open) sock_->read_stop();
}

void RawConnection::resume() {
  paused_ = false;
  if (throttled_ || state_ != State::Open || peer_ended_) return;
  int r = sock_->read_start();
  if (r != 0) fail(error_from_uv(r), uv_strerror(r), r);
}

void RawConnection::unthrottle() {
  throttled_ = false;
  if (paused_ || state_ != State::Open || peer_ended_) return;
  int r = sock_->read_start();
  if (r != 0) fail(error_from_uv(r), uv_strerror(r), r);
}

// ---------------------------------------------------------------------------------------------
// Bytes out

int RawConnection::flush_tls() {
  const char* p = nullptr;
  size_t n = tls_->output(&p);
  if (n == 0) return 0;
  int w = sock_->write(p, n);
  tls_->consume_output();
  return w;
}

int64_t RawConnection::write(const char* p, size_t n) {
  if (state_ != State::Open || ended_) return -1;
  if (n == 0) return static_cast<int64_t>(sock_->queued_bytes());
  int w;
  if (tls_ != nullptr) {
    if (!tls_->write(p, n)) {
      fail(tls_->error() != Error::Ok ? tls_->error() : Error::TlsProtocol, tls_->detail().c_str());
      return -1;
    }
    w = flush_tls();
  } else {
    w = sock_->write(p, n);
  }
  if (w != 0) {
    fail(error_from_uv(w), uv_strerror(w), w);
    return -1;
  }
  engine_->add_bytes(0, n);
  size_t q = sock_->queued_bytes();
  if (q > 0) drain_wanted_ = true;
  return static_cast<int64_t>(q);
}

void RawConnection::on_write_drained(int status) {
  if (state_ == State::Closing) return;
  if (status != 0) {
    fail(error_from_uv(status), uv_strerror(status), status);
    return;
  }
  if (drain_wanted_ && sock_->queued_bytes() == 0) {
    drain_wanted_ = false;
    engine_->sink()->on_raw_drain(id_);
    engine_->note_event();
  }
}

void RawConnection::end() {
  if (ended_ || state_ == State::Closing) return;
  ended_ = true;
  if (state_ != State::Open) return;  // connect()'s promise never resolved: nothing to end
  if (tls_ != nullptr) {
    tls_->close_notify();  // a clean TLS end before the FIN
    int w = flush_tls();
    if (w != 0) {
      fail(error_from_uv(w), uv_strerror(w), w);
      return;
    }
  }
  int r = sock_->shutdown();
  if (r != 0) fail(error_from_uv(r), uv_strerror(r), r);
}

void RawConnection::on_shutdown(int status) {
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

void RawConnection::fail(Error e, const char* detail, int sys) {
  if (state_ == State::Closing) return;
  if (state_ == State::Handshaking) engine_->tls_finished(false, false);
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
  engine_->arm_deadline(deadline_);
}

void RawConnection::on_deadline() {
  deadline_ = 0;
  switch (state_) {
    case State::Resolving:
    case State::Connecting:
      if (slot_wait_) {
        fail(Error::ConnectTimeout,
             "no socket became free under the session's connections limit within the connect timeout");
      } else if (fd_wait_) {
        fail(Error::FdExhausted, engine_->fd_wait_detail().c_str());
      } else {
        fail(Error::ConnectTimeout, "connect timed out");
      }
      return;
    case State::Handshaking:
      fail(Error::TlsHandshakeTimeout, "no TLS handshake within the tls timeout");
      return;
    default:
      return;
  }
}

void RawConnection::destroy(bool abortive) { close(abortive); }

void RawConnection::close(bool abortive) {
  if (state_ == State::Closing) return;
  bool was_open = state_ == State::Open;
  state_ = State::Closing;
  slot_wait_ = false;  // a stale entry in the engine's queue is skipped
  deadline_ = 0;
  dialer_.stop(abortive);
  if (dns_ticket_ != 0) {
    engine_->dns().cancel(dns_ticket_);  // the lookup goes on for the cache; we are not told
    dns_ticket_ = 0;
  }
  if (tls_info_ != 0) {
    engine_->sink()->on_tls_forget(tls_info_);
    engine_->note_event();
    tls_info_ = 0;
  }
  if (was_open && tls_ != nullptr && !abortive && !ended_) {
    tls_->close_notify();
    flush_tls();
  }
  sock_->close(abortive);  // reports on_closed (synchronously when no descriptor was made)
}

void RawConnection::on_closed() {
  if (state_ == State::Connecting && dialer_.on_closed()) return;  // on to the host's next address
  if (state_ != State::Closing) {
    sock_->reset();
    if (fd_wait_) {
      engine_->raw_out_of_fds(!fd_wait_counted_);
      fd_wait_counted_ = true;
      return;
    }
    state_ = State::Closing;
  }
  if (dialer_.racer_closing()) {
    closed_pending_ = true;  // dial_racer_closed reports it: the engine frees both sockets with us
    return;
  }
  engine_->raw_closed(this);
}

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
  if (c->has_slot()) pool_.release_external();
  raws_.erase(c->id());
  raw_dead_.push_back(c);
  sink_->on_raw_closed(c->id());
  note_event();
  if (fd_exhausted_ && c->had_fd()) fd_exhausted_ = false;  // a descriptor just came back
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
  if (raw_fd_blocked_ && !fd_exhausted_) {
    raw_fd_blocked_ = false;
    std::vector<RawConnection*> waiting;
    for (auto& kv : raws_) {
      if (kv.second->waiting_for_fd()) waiting.push_back(kv.second);
    }
    for (RawConnection* c : waiting) {
      if (fd_exhausted_) {
        raw_fd_blocked_ = true;
        break;
      }
      c->retry_fd();
    }
  }
}

void Engine::raw_sweep(uint64_t n, uint64_t* next) {
  if (raws_.empty()) return;
  std::vector<RawConnection*> due, race;
  for (auto& kv : raws_) {
    uint64_t ra = kv.second->race_at();
    if (ra != 0) {
      if (ra <= n) {
        race.push_back(kv.second);
      } else {
        *next = std::min(*next, ra);
      }
    }
    uint64_t d = kv.second->deadline();
    if (d == 0) continue;
    if (d <= n) {
      due.push_back(kv.second);
    } else {
      *next = std::min(*next, d);
    }
  }
  for (RawConnection* c : race) c->on_race_deadline();
  for (RawConnection* c : due) c->on_deadline();  // closed ones wait in raw_dead_ until the turn ends
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
