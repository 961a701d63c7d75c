// Connecting to one of a host's addresses, shared by HTTP and raw connections: the addresses in
// order (the next one once an attempt fails), and Happy Eyeballs (RFC 8305): while an attempt is
// still connecting, a second one to the other address family starts after
// happy_eyeballs_delay_ms, and whichever connects first wins.
//
// The owner (the connection) keeps its socket in a unique_ptr the dialer may swap with a winning
// racer's, and forwards its socket's on_connect / on_closed here. Callbacks never free.
#pragma once
#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "net/tcp_socket.h"

namespace uvf {

class Engine;

class Dialer {
 public:
  // The owner is also its socket's handler (a winning racer's socket is handed over to it).
  class Owner : public TcpSocket::Handler {
   public:
    // The owner's socket is connected (to addresses()[index()]).
    virtual void dial_connected() = 0;
    // Giving up: every address failed (status: the last error), or EMFILE/ENFILE (no other
    // address can help). The owner's socket is still to be closed by the owner.
    virtual void dial_failed(int status) = 0;
    // A racer's socket finished closing (an owner waiting to report its own close goes on).
    virtual void dial_racer_closed() = 0;
    // A race is due at `at` (race_at()): the owner's deadline sweep must come by then.
    virtual void dial_wake_at(uint64_t at) = 0;
  };

  // sock: the owner's socket slot.
  Dialer(Engine* engine, Owner* owner, std::unique_ptr<TcpSocket>* sock)
      : engine_(engine), owner_(owner), sock_(sock) {}
  ~Dialer();
  Dialer(const Dialer&) = delete;
  Dialer& operator=(const Dialer&) = delete;

  // Filled by the owner before start().
  std::vector<sockaddr_storage>& addresses() { return addrs_; }
  // How sockets are made (before start()).
  void set_socket_options(const SocketOptions& so) { so_ = so; }
  // Connects to the first address.
  void start();
  // Connects to the current address again (the owner's socket was closed and reset: a retry
  // after EMFILE).
  void retry();
  // The owner's socket reported on_connect (the owner checks it is still connecting).
  void on_connect(int status);
  // The owner's socket closed. True when the dialer took it over: the next address is being
  // tried, and the owner must not report a close.
  bool on_closed();
  // Stops dialing (the owner is closing): no more races; a racing attempt is closed.
  void stop(bool abortive);

  size_t index() const { return addr_index_; }
  bool racer_closing() const { return racer_ != nullptr && racer_->closing; }
  // When the race is due (0: none armed); the owner's deadline sweep calls on_race_deadline().
  uint64_t race_at() const { return race_at_; }
  void on_race_deadline();

 private:
  struct Racer final : TcpSocket::Handler {
    Dialer* dialer = nullptr;
    std::unique_ptr<TcpSocket> sock;
    size_t index = 0;       // the address it connects to
    bool connecting = false;
    bool closing = false;   // sock is closing (a failed attempt, or the loser of a race)
    void on_connect(int status) override { dialer->on_racer_connect(status); }
    void on_data(const char*, size_t) override {}
    void on_read_end(int) override {}
    void on_write_drained(int) override {}
    void on_closed() override { dialer->on_racer_closed(); }
  };
  void connect_current();
  void arm_race();
  void on_racer_connect(int status);
  void on_racer_closed();
  // The racer's socket becomes the owner's; the owner's old socket goes to the racer, closing.
  void hand_over_racer(bool abortive_close);

  Engine* engine_;
  Owner* owner_;
  std::unique_ptr<TcpSocket>* sock_;
  SocketOptions so_;
  std::vector<sockaddr_storage> addrs_;
  uint32_t addr_index_ = 0;  // the address the owner's socket connects to
  uint32_t next_addr_ = 0;   // the first address not tried yet
  std::unique_ptr<Racer> racer_;
  uint64_t race_at_ = 0;
  bool dialing_ = false;
  bool retrying_ = false;  // the owner's socket is closing; then the next address
};

}  // namespace uvf
