#include "client/dialer.h"

#include <algorithm>
#include <utility>

#include "client/engine.h"

namespace uvf {

Dialer::~Dialer() = default;

void Dialer::start() {
  addr_index_ = 0;
  next_addr_ = 0;
  connect_current();
}

void Dialer::retry() { connect_current(); }

void Dialer::connect_current() {
  dialing_ = true;
  next_addr_ = std::max(next_addr_, addr_index_ + 1);
  int r = (*sock_)->connect(reinterpret_cast<const sockaddr*>(&addrs_[addr_index_]), so_);
  if (r != 0) {
    on_connect(r);
    return;
  }
  arm_race();
}

void Dialer::on_connect(int status) {
  if (!dialing_) return;
  if (status != 0) {
    if (racer_ != nullptr && racer_->connecting) {
      // A racing attempt is still out: it becomes the only attempt.
      hand_over_racer(false);
      return;
    }
    if (next_addr_ < addrs_.size() && status != UV_EMFILE && status != UV_ENFILE) {
      // The host's next address, once this socket has closed (on_closed).
      addr_index_ = next_addr_;
      race_at_ = 0;
      retrying_ = true;
      (*sock_)->close(false);
      return;
    }
    dialing_ = false;
    race_at_ = 0;
    owner_->dial_failed(status);
    return;
  }
  dialing_ = false;
  stop(true);  // this attempt won: a racer still connecting is reset
  owner_->dial_connected();
}

bool Dialer::on_closed() {
  if (!retrying_) return false;
  retrying_ = false;
  (*sock_)->reset();
  connect_current();
  return true;
}

void Dialer::stop(bool abortive) {
  dialing_ = false;
  retrying_ = false;
  race_at_ = 0;
  if (racer_ == nullptr || !racer_->connecting) return;
  racer_->connecting = false;
  racer_->closing = true;
  racer_->sock->close(abortive);
}

// Only across families (a dual-stack answer), one racer at a time.
void Dialer::arm_race() {
  uint32_t delay = engine_->options().dns.happy_eyeballs_delay_ms;
  if (delay == 0 || race_at_ != 0 || !dialing_ || retrying_ || next_addr_ >= addrs_.size()) return;
  if (racer_ != nullptr && (racer_->connecting || racer_->closing)) return;  // re-armed once closed
  if (addrs_[next_addr_].ss_family == addrs_[addr_index_].ss_family) return;
  race_at_ = engine_->now() + delay;
  owner_->dial_wake_at(race_at_);
}

void Dialer::on_race_deadline() {
  race_at_ = 0;
  if (!dialing_ || retrying_ || next_addr_ >= addrs_.size()) return;
  if (racer_ != nullptr && (racer_->connecting || racer_->closing)) return;
  if (racer_ == nullptr) {
    racer_ = std::make_unique<Racer>();
    racer_->dialer = this;
  }
  racer_->sock = std::make_unique<TcpSocket>(engine_->loop(), racer_.get(), engine_->read_buffer());
  racer_->index = next_addr_++;
  racer_->connecting = true;
  int r = racer_->sock->connect(reinterpret_cast<const sockaddr*>(&addrs_[racer_->index]), so_);
  if (r != 0) on_racer_connect(r);
}

void Dialer::on_racer_connect(int status) {
  Racer& rc = *racer_;
  if (!rc.connecting) return;
  rc.connecting = false;
  if (status != 0) {
    // The first attempt carries on; once this socket has closed, a later address may race.
    rc.closing = true;
    rc.sock->close(false);
    return;
  }
  // The racer won: its socket becomes the owner's, the first attempt is reset.
  retrying_ = false;     // the first attempt may have been between two addresses
  hand_over_racer(true);
  on_connect(0);
}

void Dialer::hand_over_racer(bool abortive_close) {
  Racer& rc = *racer_;
  std::swap(*sock_, rc.sock);
  (*sock_)->set_handler(owner_);
  rc.sock->set_handler(&rc);
  addr_index_ = static_cast<uint32_t>(rc.index);
  race_at_ = 0;
  rc.connecting = false;
  rc.closing = true;
  rc.sock->close(abortive_close);
}

void Dialer::on_racer_closed() {
  racer_->closing = false;
  owner_->dial_racer_closed();
  if (dialing_ && !retrying_) arm_race();
}

}  // namespace uvf
