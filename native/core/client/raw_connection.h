// A raw byte stream for users' own protocols: the HTTP connection's transport (client/transport.h:
// DNS through the engine's cache, address failover and Happy Eyeballs, optional TLS) without HTTP
// on top, plus a slot of the engine's connections limit, connect and TLS timeouts from the
// engine's deadline sweep, and EMFILE as backpressure.
// States: Connecting (the transport resolves, dials, handshakes) → Open → Closing. Half-close both ways:
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
#include "client/transport.h"
#include "loop/deadline_queue.h"

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

class RawConnection final : private Transport::Owner {
 public:
  enum class State : uint8_t { Connecting, Open, Closing };

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
  bool had_fd() const { return transport_.had_fd(); }
  // Happy Eyeballs: when the racing attempt is due (0: none).
  uint64_t race_at() const { return transport_.race_at(); }
  void on_race_deadline() { transport_.on_race_deadline(); }
  DeadlineEntry timer;  // in the engine's deadline queue (Engine::raw_wake)

 private:
  // Transport::Owner
  Transport::Target transport_target() const override;
  bool transport_may_dial() override;
  void transport_wake_at(uint64_t at) override;
  void transport_handshaking() override;
  void transport_connected(const std::string& alpn) override;
  void transport_data(const char* p, size_t n) override;
  void transport_data_block(char* block, size_t n) override;
  char* transport_take_block(size_t* size) override;
  void transport_give_block(char* block) override;
  void transport_read_end(int status) override;
  void transport_drained(int status) override;
  void transport_shutdown(int status) override;
  void transport_failed(Error e, const char* detail, int sys) override;
  void transport_fd_released() override;
  void transport_closed() override;
  Transport::Options transport_options();  // (fills local_ first)
  // Holds the dial while waiting for a slot or a descriptor (false: slot_granted()/retry_fd() go on).
  bool ready_to_dial();
  void deliver(const char* p, size_t n);
  void account_delivered(size_t n);
  void peer_ended();
  void maybe_finish();
  void fail(Error e, const char* detail, int sys = 0);
  void set_deadline(uint32_t ms);
  void close(bool abortive);

  Engine* engine_;
  RawId id_;
  bool has_local_ = false;  // (before transport_: transport_options() sets it)
  RawOptions opts_;
  sockaddr_storage local_{};
  Transport transport_;
  uint64_t deadline_ = 0;
  uint64_t turn_ = 0;
  size_t turn_bytes_ = 0;
  State state_ = State::Connecting;
  bool fd_wait_ = false;             // EMFILE: waiting for a descriptor (the socket closed, reset)
  bool fd_wait_counted_ = false;     // counted once in stats().fd.exhaustedWaits
  bool has_slot_ = false;            // holds one slot of the engine's connections limit
  bool slot_wait_ = false;           // queued for such a slot (Engine::raw_slot_waiters_)
  bool paused_ = false;
  bool throttled_ = false;
  bool drain_wanted_ = false;
  bool ended_ = false;       // end() called: no more writes
  bool shut_down_ = false;   // our FIN went out
  bool peer_ended_ = false;  // the peer's FIN / close_notify arrived
};

}  // namespace uvf
