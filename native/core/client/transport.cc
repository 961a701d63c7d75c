#include "client/transport.h"

#include <algorithm>
#include <cstring>

#include "client/engine.h"

namespace uvf {

namespace {
std::unique_ptr<TcpSocket> make_socket(Engine* engine, TcpSocket::Handler* h, const SocketFactory* factory) {
  if (factory != nullptr && *factory) return (*factory)(engine->loop(), h, engine->read_buffer());
  return std::make_unique<TcpSocket>(engine->loop(), h, engine->read_buffer());
}
}  // namespace

Transport::Transport(Engine* engine, Owner* owner, const Options& opts)
    : engine_(engine),
      owner_(owner),
      sock_(make_socket(engine, this, opts.socket_factory)),
      any_alpn_(opts.any_alpn),
      accept_h2_(opts.accept_h2),
      raw_origin_(opts.raw_origin),
      read_blocks_(opts.read_blocks),
      dial_started_(false),
      closed_pending_(false),
      fd_releasing_(false),
      shut_down_(false),
      tls_write_failed_(false) {
  dialer_.set_socket_options(opts.socket);
}

uint32_t Transport::since_start_us() const {
  uint64_t us = (uv_hrtime() - t_start_) / 1000;
  return us > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(us);
}

Transport::~Transport() = default;

// ---------------------------------------------------------------------------------------------
// Resolve and dial

void Transport::start() {
  t_start_ = uv_hrtime();
  phase_ = Phase::Resolving;
  // IP literals, overrides and cache hits answer synchronously (ticket 0); a miss answers later.
  // Through a proxy, the proxy's address is what we resolve and connect to (SOCKS5 and CONNECT
  // hand the origin's name to the proxy).
  Target t = owner_->transport_target();
  bool via = via_proxy(t);
  dns_ticket_ = engine_->dns().lookup(via ? t.proxy->host : *t.host, via ? t.proxy->port : t.port,
                                      engine_->options().dns.family, engine_->now(), this);
}

void Transport::on_dns(Error e, const std::vector<dns::Address>& addrs, size_t rotate_from) {
  bool waited = dns_ticket_ != 0;  // answered from the cache (or a literal) at once: no DNS time
  dns_ticket_ = 0;
  if (phase_ != Phase::Resolving) return;
  if (waited) resolved_us_ = since_start_us();
  if (e != Error::Ok) {
    fail(e, nullptr, 0);
    return;
  }
  std::vector<sockaddr_storage>& list = dialer_.addresses();
  list.clear();
  list.reserve(addrs.size());
  Target t = owner_->transport_target();
  dns::append_for_happy_eyeballs(addrs, rotate_from, via_proxy(t) ? t.proxy->port : t.port, &list);
  if (list.empty()) {
    fail(Error::DnsNotFound, nullptr, 0);
    return;
  }
  phase_ = Phase::Connecting;
  if (owner_->transport_may_dial()) dial();
}

void Transport::dial() {
  if (phase_ != Phase::Connecting) return;
  if (dial_started_) {
    dialer_.retry();  // the address that met EMFILE, again
    return;
  }
  dial_started_ = true;
  dialer_.start();
}

void Transport::release_fd() {
  if (phase_ != Phase::Connecting) return;
  fd_releasing_ = true;
  sock_->close(true);  // on_closed resets it and tells the owner
}

void Transport::on_connect(int status) {
  if (phase_ != Phase::Connecting) return;
  dialer_.on_connect(status);
}

void Transport::dial_failed(int status) { fail(error_from_uv(status), uv_strerror(status), status); }

void Transport::dial_racer_closed() {
  if (!closed_pending_) return;
  closed_pending_ = false;
  owner_->transport_closed();
}

void Transport::dial_connected() {
  int r = sock_->read_start();
  if (r != 0) {
    fail(error_from_uv(r), uv_strerror(r), r);
    return;
  }
  Target t = owner_->transport_target();
  proxy::Kind k = t.proxy != nullptr ? t.proxy->kind : proxy::Kind::None;
  if (k == proxy::Kind::Socks5 || (k == proxy::Kind::Http && t.tls != nullptr)) {
    start_tunnel();
    return;
  }
  ready();
}

void Transport::ready() {
  connected_us_ = since_start_us();
  if (owner_->transport_target().tls != nullptr) {
    start_tls();
    return;
  }
  phase_ = Phase::Open;
  owner_->transport_connected(std::string());
}

// ---------------------------------------------------------------------------------------------
// Proxy tunnels (the owner's connect timeout keeps running until the tunnel is open)

void Transport::start_tunnel() {
  phase_ = Phase::Tunneling;
  Target t = owner_->transport_target();
  tunnel_ = std::make_unique<proxy::Tunnel>(*t.proxy, *t.host, t.port);
  std::string out;
  tunnel_->start(&out);
  int w = sock_->write(out.data(), out.size());
  if (w != 0) fail(error_from_uv(w), uv_strerror(w), w);
}

void Transport::tunnel_data(const char* p, size_t n) {
  std::string out;
  size_t used = 0;
  proxy::Tunnel::Status st = tunnel_->feed(p, n, &out, &used);
  if (!out.empty()) {
    int w = sock_->write(out.data(), out.size());
    if (w != 0) {
      fail(error_from_uv(w), uv_strerror(w), w);
      return;
    }
  }
  if (st == proxy::Tunnel::Status::NeedMore) return;
  if (st == proxy::Tunnel::Status::Failed) {
    fail(tunnel_->error(), tunnel_->detail().c_str(), tunnel_->proxy_status());
    return;
  }
  if (used < n) {
    // The origin cannot have spoken yet (we have not sent it anything).
    fail(Error::Proxy, "unexpected bytes after the proxy's answer", 0);
    return;
  }
  tunnel_.reset();
  ready();
}

// ---------------------------------------------------------------------------------------------
// TLS: the handshake once the byte stream is up, then every byte in and out through the channel

void Transport::start_tls() {
  phase_ = Phase::Handshaking;
  owner_->transport_handshaking();
  if (phase_ != Phase::Handshaking) return;
  tls_ = std::make_unique<tls::Channel>();
  Target t = owner_->transport_target();
  const std::string& name = t.servername != nullptr && !t.servername->empty() ? *t.servername : *t.host;
  if (!tls_->init(*t.tls, name, t.port)) {
    fail(tls_->error(), tls_->detail().c_str(), 0);
    return;
  }
  if (any_alpn_) tls_->accept_any_alpn();  // the user's protocol, whatever the server picked
  if (accept_h2_) tls_->accept_h2();
  continue_handshake();
}

void Transport::continue_handshake() {
  tls::Channel::Status st = tls_->handshake();
  int w = flush_tls();  // ClientHello, Finished, or the alert explaining a failure
  if (st == tls::Channel::Status::Failed) {
    fail(tls_->error(), tls_->detail().c_str(), 0);
    return;
  }
  if (w != 0) {
    fail(error_from_uv(w), uv_strerror(w), w);
    return;
  }
  if (st == tls::Channel::Status::Ok) handshake_finished();
}

void Transport::handshake_finished() {
  tls_us_ = std::max<uint32_t>(since_start_us(), 1);
  engine_->tls_finished(true, tls_->resumed());
  tls::SessionInfo info;
  tls_->describe(&info);
  tls_->drop_client_hello();  // fingerprinted: ~500 bytes less per kept-alive connection
  Target t = owner_->transport_target();
  bool v6 = t.host->find(':') != std::string::npos;
  info.origin = std::string(raw_origin_ ? "tls://" : "https://") + (v6 ? "[" : "") + *t.host + (v6 ? "]:" : ":") +
                std::to_string(t.port);
  info.handshake_us = tls_us_ - connected_us_;
  tls_info_ = engine_->next_tls_info();
  engine_->sink()->on_tls_info(tls_info_, info);
  engine_->note_event();
  phase_ = Phase::Open;
  owner_->transport_connected(info.alpn);
}

int Transport::flush_tls() {
  const char* p = nullptr;
  size_t n = tls_->output(&p);
  if (n == 0) return 0;
  int w = sock_->write(p, n);  // copies whatever the kernel does not take at once
  tls_->consume_output();
  return w;
}

Error Transport::tls_error() const {
  if (tls_ == nullptr || tls_->error() == Error::Ok) return Error::TlsProtocol;
  return tls_->error();
}

const char* Transport::tls_detail() const { return tls_ != nullptr ? tls_->detail().c_str() : ""; }

// ---------------------------------------------------------------------------------------------
// Bytes in

// Block mode, plain TCP: reads land in a block of the owner's (a large one goes up with no copy).
// Under TLS the ciphertext uses the shared buffer and the plaintext is gathered into blocks.
char* Transport::read_block(size_t* size) {
  if (!read_blocks_ || tls_ != nullptr || phase_ != Phase::Open) return nullptr;
  return owner_->transport_take_block(size);
}

void Transport::read_block_unused(char* block) { owner_->transport_give_block(block); }

void Transport::on_data(const char* p, size_t n) {
  if (phase_ == Phase::Tunneling) {
    tunnel_data(p, n);
    return;
  }
  if (tls_ == nullptr) {
    bool block = read_blocks_ && p != engine_->read_buffer()->data;  // read_block() lent it
    if (phase_ != Phase::Open) {
      if (block) owner_->transport_give_block(const_cast<char*>(p));
      return;
    }
    if (block) {
      owner_->transport_data_block(const_cast<char*>(p), n);
    } else {
      owner_->transport_data(p, n);
    }
    return;
  }
  if (phase_ == Phase::Closing) return;
  if (!tls_->feed(p, n)) {
    fail(tls_->error(), tls_->detail().c_str(), 0);
    return;
  }
  if (phase_ == Phase::Handshaking) {
    continue_handshake();
    if (phase_ != Phase::Open) return;
  }
  if (read_blocks_) {
    read_tls_blocks();
  } else {
    read_tls();
  }
}

// Each decrypted record goes up at once, from the engine's plaintext buffer.
void Transport::read_tls() {
  char* buf = engine_->plain_buffer();
  for (;;) {
    if (phase_ != Phase::Open) return;
    size_t got = 0;
    tls::Channel::Status st = tls_->read(buf, Engine::kPlainBufferSize, &got);
    if (st == tls::Channel::Status::Ok) {
      owner_->transport_data(buf, got);
      continue;
    }
    if (flush_tls() != 0 && st == tls::Channel::Status::WantMore) return;  // the read side will tell
    switch (st) {
      case tls::Channel::Status::WantMore:
        return;
      case tls::Channel::Status::Closed:  // close_notify: the peer's end of stream
        owner_->transport_read_end(UV_EOF);
        return;
      default:
        fail(tls_->error(), tls_->detail().c_str(), 0);
        return;
    }
  }
}

// Decrypted records are gathered into one of the owner's blocks (up to its size) and delivered
// together: fewer events than one per 16 KiB record, and a full block goes up without a copy.
void Transport::read_tls_blocks() {
  char* block = nullptr;
  size_t have = 0, cap = 0;
  while (phase_ == Phase::Open) {
    if (block == nullptr) {
      block = owner_->transport_take_block(&cap);
      have = 0;
      if (block == nullptr) {
        fail(Error::Internal, "out of memory for a read buffer", 0);
        return;
      }
    }
    size_t got = 0;
    tls::Channel::Status st = tls_->read(block + have, cap - have, &got);
    if (st == tls::Channel::Status::Ok) {
      have += got;
      if (have == cap) {
        owner_->transport_data_block(block, have);
        block = nullptr;
      }
      continue;
    }
    if (have > 0) {
      owner_->transport_data_block(block, have);  // what came before the end, error or WantMore
    } else {
      owner_->transport_give_block(block);
    }
    block = nullptr;
    if (phase_ != Phase::Open) return;
    if (flush_tls() != 0 && st == tls::Channel::Status::WantMore) return;  // the read side will tell
    if (st == tls::Channel::Status::WantMore) return;
    if (st == tls::Channel::Status::Closed) {
      owner_->transport_read_end(UV_EOF);  // close_notify: the peer's end of stream
      return;
    }
    fail(tls_->error(), tls_->detail().c_str(), 0);
    return;
  }
  if (block != nullptr) owner_->transport_give_block(block);
}

bool Transport::probe_alive() {
  if (tls_ == nullptr) return sock_->probe_idle_alive();
  if (phase_ != Phase::Open) return false;
  char cipher[16 * 1024];
  for (;;) {
    ssize_t r = sock_->read_now(cipher, sizeof cipher);
    if (r == 0) break;
    if (r < 0) return false;
    engine_->add_bytes(static_cast<uint64_t>(r), 0);
    if (!tls_->feed(cipher, static_cast<size_t>(r))) return false;
    if (static_cast<size_t>(r) < sizeof cipher) break;
  }
  // Not the engine's plain buffer: this may run while another connection is still parsing it.
  char plain[512];
  size_t got = 0;
  tls::Channel::Status st = tls_->read(plain, sizeof plain, &got);
  if (st != tls::Channel::Status::WantMore) return false;  // data out of turn, close_notify, alert
  return flush_tls() == 0;  // e.g. the reply to a KeyUpdate
}

void Transport::on_read_end(int status) {
  switch (phase_) {
    case Phase::Tunneling:
      fail(Error::Proxy,
           status == UV_EOF ? "the proxy closed the connection before the tunnel was open" : uv_strerror(status), 0);
      return;
    case Phase::Handshaking:
      fail(Error::TlsHandshake,
           status == UV_EOF ? "the server closed the connection during the TLS handshake" : uv_strerror(status),
           status == UV_EOF ? 0 : status);
      return;
    case Phase::Open:
      owner_->transport_read_end(status);
      return;
    default:
      return;
  }
}

// ---------------------------------------------------------------------------------------------
// Bytes out

int Transport::write(const char* a, size_t alen, const char* b, size_t blen) {
  if (tls_ == nullptr) return sock_->write(a, alen, b, blen);
  bool ok;
  if (blen > 0 && alen + blen <= 4096) {
    // A small head and body go out as one record (one MAC, one write).
    char joined[4096];
    std::memcpy(joined, a, alen);
    std::memcpy(joined + alen, b, blen);
    ok = tls_->write(joined, alen + blen);
  } else {
    ok = tls_->write(a, alen) && (blen == 0 || tls_->write(b, blen));
  }
  if (!ok) {
    tls_write_failed_ = true;
    return UV_EPROTO;
  }
  return flush_tls();
}

void Transport::on_write_drained(int status) { owner_->transport_drained(status); }

int Transport::shutdown() {
  shut_down_ = true;
  if (tls_ != nullptr) {
    tls_->close_notify();  // a clean TLS end before the FIN
    int w = flush_tls();
    if (w != 0) return w;
  }
  return sock_->shutdown();
}

void Transport::on_shutdown(int status) { owner_->transport_shutdown(status); }

// ---------------------------------------------------------------------------------------------
// Failing and closing

void Transport::fail(Error e, const char* detail, int sys) { owner_->transport_failed(e, detail, sys); }

void Transport::close(bool abortive) {
  if (phase_ == Phase::Closing) return;
  phase_ = Phase::Closing;
  if (dns_ticket_ != 0) {
    // The lookup goes on for the cache (and its other waiters); this transport is not told.
    engine_->dns().cancel(dns_ticket_);
    dns_ticket_ = 0;
  }
  if (tls_info_ != 0) {
    engine_->sink()->on_tls_forget(tls_info_);
    engine_->note_event();
    tls_info_ = 0;
  }
  if (tls_ != nullptr && !abortive && !shut_down_ && tls_->handshake_done()) {
    tls_->close_notify();  // a clean TLS end before the FIN
    flush_tls();
  }
  dialer_.stop(abortive);
  sock_->close(abortive);  // reports on_closed (synchronously when no descriptor was made)
}

void Transport::on_closed() {
  if (phase_ == Phase::Connecting && dialer_.on_closed()) return;  // on to the host's next address
  if (phase_ != Phase::Closing) {
    if (fd_releasing_) {
      fd_releasing_ = false;
      sock_->reset();
      owner_->transport_fd_released();
      return;
    }
    phase_ = Phase::Closing;
  }
  if (dialer_.racer_closing()) {
    closed_pending_ = true;  // dial_racer_closed reports it: both sockets are gone together
    return;
  }
  owner_->transport_closed();
}

}  // namespace uvf
