// One connected byte stream, whatever it takes to get one: resolve (the engine's DnsCache) →
// dial (client/dialer.h: address failover, Happy Eyeballs) → proxy tunnel (CONNECT or SOCKS5,
// proxy/tunnel.h) → TLS (tls::Channel) → open, with the ALPN result. HTTP connections (one
// protocol per transport, chosen from ALPN) and raw sockets sit on top; they see plaintext only.
// Phases: Idle → Resolving → Connecting → [Tunneling] → [Handshaking] → Open → Closing.
//
// The owner keeps the deadlines (the transport tells it when the handshake starts), decides what
// a failure means, and closes: the transport reports a failure and never closes by itself.
// Callbacks never free: closed() is reported once the socket (and any racing socket) is gone.
#pragma once
#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/errors.h"
#include "client/dialer.h"
#include "dns/dns_cache.h"
#include "net/tcp_socket.h"
#include "proxy/tunnel.h"
#include "tls/tls_channel.h"

namespace uvf {

class Engine;

class Transport final : public Dialer::Owner, private dns::Waiter {
 public:
  enum class Phase : uint8_t { Idle, Resolving, Connecting, Tunneling, Handshaking, Open, Closing };

  // Where to go. Asked for when needed (the transport keeps no copy): the pointers stay valid
  // as long as the transport. Through a proxy: a tunnel for SOCKS5 and for TLS through an HTTP
  // proxy; plain HTTP through a proxy just dials the proxy.
  struct Target {
    const std::string* host = nullptr;        // name or IP literal (no brackets)
    uint16_t port = 0;
    const std::shared_ptr<tls::Context>* tls = nullptr;  // TLS with this profile; null: plain
    const proxy::ProxyInfo* proxy = nullptr;  // null or Kind::None: direct
    const std::string* servername = nullptr;  // TLS name (SNI, verification); null or "": host
  };

  class Owner {
   public:
    virtual ~Owner() = default;
    // Where to connect (asked at start, dial, tunnel and handshake).
    virtual Target transport_target() const = 0;
    // Resolved: dial now (true), or later, when the owner calls dial() (waiting for a slot or
    // a descriptor).
    virtual bool transport_may_dial() { return true; }
    // A Happy Eyeballs race is due at `at`: the owner's deadline handling must call
    // on_race_deadline() by then.
    virtual void transport_wake_at(uint64_t at) = 0;
    // TCP (and the tunnel) are up and the TLS handshake starts: time for the TLS deadline.
    virtual void transport_handshaking() {}
    // Open: bytes may flow. alpn: the protocol the server selected ("" for none, or plain TCP).
    virtual void transport_connected(const std::string& alpn) = 0;
    // Plaintext received (valid during the call only).
    virtual void transport_data(const char* p, size_t n) = 0;
    // Block mode (Options::read_blocks): plaintext in a block the owner lent (transport_take_block);
    // the owner keeps it or gives it back.
    virtual void transport_data_block(char* block, size_t n) { transport_data(block, n), transport_give_block(block); }
    virtual char* transport_take_block(size_t* size) { (void)size; return nullptr; }
    virtual void transport_give_block(char* block) { (void)block; }
    // The peer's end of stream (UV_EOF, also for a TLS close_notify) or a read error, once open.
    virtual void transport_read_end(int status) = 0;
    // Everything queued was written (status 0), or a queued write failed.
    virtual void transport_drained(int status) = 0;
    // shutdown() completed: our FIN is out.
    virtual void transport_shutdown(int status) { (void)status; }
    // Could not get (or keep) the stream. detail may be null (resolving and dialing: the owner
    // words it); sys is the uv error or the proxy's status, 0 if none. The owner closes.
    virtual void transport_failed(Error e, const char* detail, int sys) = 0;
    // release_fd() finished: the socket is closed and reset; dial() tries the address again.
    virtual void transport_fd_released() {}
    // Every socket is closed: the owner may be freed (after the loop turn).
    virtual void transport_closed() = 0;
  };

  struct Options {
    bool any_alpn = false;     // accept whatever protocol the server selects (raw sockets)
    bool accept_h2 = false;    // HTTP connections that can hand over to HTTP/2: "h2" besides http/1.1
    bool raw_origin = false;   // SessionInfo::origin as "tls://host:port" (raw) or https://...
    bool read_blocks = false;  // deliver reads in the owner's blocks (transport_take_block)
    const SocketFactory* socket_factory = nullptr;  // null or empty: a TcpSocket
    SocketOptions socket;
  };

  Transport(Engine* engine, Owner* owner, const Options& opts);
  ~Transport() override;
  Transport(const Transport&) = delete;
  // Hands the stream to another owner (an HTTP connection whose protocol ALPN chose); open only.
  void set_owner(Owner* owner) { owner_ = owner; }
  Transport& operator=(const Transport&) = delete;

  // Resolves (synchronously for literals, overrides and cache hits) and, unless the owner holds
  // it (transport_may_dial), dials.
  void start();
  // Dials the resolved addresses (or the current one again, after release_fd()).
  void dial();
  // EMFILE while dialing: closes the socket so the descriptor wait holds none;
  // transport_fd_released() follows.
  void release_fd();

  // Plaintext to send (a and b as one TLS record when small). 0, or a uv error; UV_EPROTO with
  // tls_write_failed() when TLS refused it.
  int write(const char* a, size_t alen, const char* b = nullptr, size_t blen = 0);
  bool tls_write_failed() const { return tls_write_failed_; }
  Error tls_error() const;
  const char* tls_detail() const;
  // Half-close: a TLS close_notify, then the FIN once the queue is out (transport_shutdown).
  int shutdown();
  // Closes (RST if abortive; a close_notify first when graceful and TLS is up). Reports closed.
  void close(bool abortive);

  // Before an idle connection is reused: false when the peer closed it or sent bytes nobody
  // asked for. Over TLS the waiting records are read and processed first, so post-handshake
  // messages (TLS 1.3 session tickets, key updates) keep the connection usable; only
  // application data, a close_notify, EOF or an error make it dead.
  bool probe_alive();

  int read_start() { return sock_->read_start(); }
  void read_stop() { sock_->read_stop(); }
  bool reading() const { return sock_->reading(); }
  void set_ref(bool ref) { sock_->set_ref(ref); }
  size_t queued_bytes() const { return sock_->queued_bytes(); }
  int fd() const { return sock_->fd(); }
  bool had_fd() const { return sock_->opened(); }

  Engine* engine() const { return engine_; }
  Phase phase() const { return phase_; }
  bool secure() const { return tls_ != nullptr; }
  // The protocol the server selected ("" for none, or plain TCP).
  std::string alpn() const { return tls_ != nullptr ? tls_->alpn() : std::string(); }
  // The TLS session info id reported to the sink (EngineSink::on_tls_info); 0 = none.
  uint32_t tls_info() const { return tls_info_; }
  // Microseconds from start() to: resolved (0 when answered at once), TCP (and tunnel) up, the
  // TLS handshake done (0: none).
  uint32_t resolved_us() const { return resolved_us_; }
  uint32_t connected_us() const { return connected_us_; }
  uint32_t tls_us() const { return tls_us_; }
  // Happy Eyeballs: when the racing attempt is due (0: none).
  uint64_t race_at() const { return dialer_.race_at(); }
  void on_race_deadline() { dialer_.on_race_deadline(); }

  // TcpSocket::Handler
  void on_connect(int status) override;
  void on_data(const char* p, size_t n) override;
  char* read_block(size_t* size) override;
  void read_block_unused(char* block) override;
  void on_read_end(int status) override;
  void on_write_drained(int status) override;
  void on_shutdown(int status) override;
  void on_closed() override;

 private:
  // dns::Waiter: the engine's DnsCache answers (synchronously from start() on a hit).
  void on_dns(Error e, const std::vector<dns::Address>& addrs, size_t rotate_from) override;
  // Dialer::Owner
  void dial_connected() override;
  void dial_failed(int status) override;
  void dial_racer_closed() override;
  void dial_wake_at(uint64_t at) override { owner_->transport_wake_at(at); }
  static bool via_proxy(const Target& t) { return t.proxy != nullptr && t.proxy->kind != proxy::Kind::None; }
  uint32_t since_start_us() const;
  void start_tunnel();
  void tunnel_data(const char* p, size_t n);
  void ready();  // TCP (and tunnel) up: TLS, or open
  void start_tls();
  void continue_handshake();
  void handshake_finished();
  void read_tls();
  void read_tls_blocks();
  int flush_tls();
  void fail(Error e, const char* detail, int sys);

  Engine* engine_;
  Owner* owner_;
  std::unique_ptr<TcpSocket> sock_;  // a pointer so a Happy Eyeballs race can hand over its winner
  Dialer dialer_{engine_, this, &sock_};
  Phase phase_ = Phase::Idle;
  bool any_alpn_ : 1;
  bool accept_h2_ : 1;
  bool raw_origin_ : 1;
  bool read_blocks_ : 1;
  bool dial_started_ : 1;
  bool closed_pending_ : 1;  // the socket closed while a racer's socket was still closing
  bool fd_releasing_ : 1;    // release_fd(): the socket closes to free its descriptor
  bool shut_down_ : 1;       // shutdown() sent our close_notify / FIN
  bool tls_write_failed_ : 1;
  uint64_t dns_ticket_ = 0;  // lookup pending in the engine's cache (cancelled by close())
  uint64_t t_start_ = 0;  // uv_hrtime at start()
  uint32_t resolved_us_ = 0, connected_us_ = 0, tls_us_ = 0;
  std::unique_ptr<tls::Channel> tls_;
  std::unique_ptr<proxy::Tunnel> tunnel_;  // while Tunneling
  uint32_t tls_info_ = 0;
};

}  // namespace uvf
