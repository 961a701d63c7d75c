// A raw byte stream for users' own protocols: the HTTP connection's transport (DNS through the
// engine's cache, dialing through client/dialer.h: address failover and Happy Eyeballs, a slot
// of the engine's connections limit, optional TLS through tls::Channel, connect and TLS timeouts
// from the engine's deadline sweep, EMFILE as backpressure) without HTTP on top.
// States: Resolving → Connecting → Handshaking (TLS) → Open → Closing. Half-close both ways:
// end() sends a FIN (after a close_notify under TLS) while reading goes on; the peer's FIN (or
// close_notify) is reported as an end while writing goes on. Callbacks never free: closing hands
// the connection to the engine, which frees it after the loop turn.
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
#include "tls/tls_channel.h"

namespace uvf {

class Engine;
using RawId = uint32_t;

struct RawOptions {
  std::string host;                        // name or IP literal (no brackets)
  uint16_t port = 0;
  std::shared_ptr<tls::Context> tls_ctx;   // null: plain TCP
  std::string servername;                  // TLS: SNI and verified name ("" = host)
  std::string local_address;               // IP to bind ("" = the engine's localAddress, if any)
  uint32_t connect_timeout_ms = 10'000;    // resolve + connect (+ waiting for a descriptor)
  uint32_t tls_timeout_ms = 10'000;
  bool no_delay = true;
  unsigned keep_alive_ms = 0;              // TCP keep-alive probes; 0 = off
};

// What the open event tells.
struct RawOpenInfo {
  std::string remote_address, local_address;
  uint16_t remote_port = 0, local_port = 0;
  uint32_t tls_info = 0;  // the TLS session info id (EngineSink::on_tls_info); 0 = plain
};

class RawConnection final : public TcpSocket::Handler, private Dialer::Owner {
 public:
  enum class State { Resolving, Connecting, Handshaking, Open, Closing };

  RawConnection(Engine* engine, RawId id, RawOptions&& opts);
  ~RawConnection() override;

  // Validates the options and starts resolving. Errors come later, as events (never from here).
  void start();
  // Plaintext to send. Returns the bytes now queued natively (0: all in the kernel), or -1 when
  // the connection cannot take bytes (not open, ended, failed: an error event follows if due).
  int64_t write(const char* p, size_t n);
  // Half-close our side once the queued bytes are out.
  void end();
  // Closes now (abortive: RST). Reports nothing but the closed event.
  void destroy(bool abortive);
  void pause();
  void resume();
  // End of the loop turn: reading stopped by the per-turn cap starts again (unless paused).
  void unthrottle();
  // A descriptor may be free again: retry a connect that hit EMFILE.
  void retry_fd();
  // The engine gave this connection a slot under the session's connections limit.
  void slot_granted();
  // The deadline passed: connect / TLS / descriptor wait timed out.
  void on_deadline();
  // Engine closing: an error event (reason), then close.
  void fail_closed(Error reason);

  RawId id() const { return id_; }
  State state() const { return state_; }
  uint64_t deadline() const { return deadline_; }
  bool waiting_for_fd() const { return fd_wait_; }
  bool waiting_for_slot() const { return slot_wait_; }
  bool has_slot() const { return has_slot_; }
  bool had_fd() const { return sock_->opened(); }
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
  struct DnsWaiter final : dns::Waiter {
    RawConnection* conn = nullptr;
    void on_dns(Error e, const std::vector<dns::Address>& addrs, size_t rotate_from) override {
      conn->on_dns(e, addrs, rotate_from);
    }
  };
  void on_dns(Error e, const std::vector<dns::Address>& addrs, size_t rotate_from);
  void connect_next();
  // Dialer::Owner
  void dial_connected() override;
  void dial_failed(int status) override;
  void dial_racer_closed() override;
  void opened();
  void start_tls();
  void continue_handshake();
  void deliver(const char* p, size_t n);
  void deliver_block(char* block, size_t n);
  void account_delivered(size_t n);
  void read_tls();
  int flush_tls();
  void peer_ended();
  void maybe_finish();
  void fail(Error e, const char* detail, int sys = 0);
  void set_deadline(uint32_t ms);
  void close(bool abortive);

  Engine* engine_;
  RawId id_;
  RawOptions opts_;
  std::unique_ptr<TcpSocket> sock_;
  State state_ = State::Resolving;
  DnsWaiter dns_waiter_;
  uint64_t dns_ticket_ = 0;
  Dialer dialer_{engine_, this, this, &sock_};
  bool dial_started_ = false;
  bool closed_pending_ = false;      // sock_ closed while a racer's socket was still closing
  bool fd_wait_ = false;             // EMFILE: waiting for a descriptor (sock_ closed, reset)
  bool fd_wait_counted_ = false;     // counted once in stats().fd.exhaustedWaits
  bool has_slot_ = false;            // holds one slot of the engine's connections limit
  bool slot_wait_ = false;           // queued for such a slot (Engine::raw_slot_waiters_)
  sockaddr_storage local_{};
  bool has_local_ = false;
  std::unique_ptr<tls::Channel> tls_;
  uint32_t tls_info_ = 0;
  uint64_t deadline_ = 0;
  uint64_t t_connected_ = 0;
  bool paused_ = false;
  bool throttled_ = false;
  uint64_t turn_ = 0;
  size_t turn_bytes_ = 0;
  bool drain_wanted_ = false;
  bool ended_ = false;       // end() called: no more writes
  bool shut_down_ = false;   // our FIN went out
  bool peer_ended_ = false;  // the peer's FIN / close_notify arrived
};

}  // namespace uvf
