#include "pool/shared_budget.h"

#include <algorithm>

namespace uvf {

SharedBudget::MemberId SharedBudget::join(std::function<void()> wake) {
  std::lock_guard<std::mutex> g(mu_);
  MemberId id = next_id_++;
  if (next_id_ == 0) next_id_ = 1;
  members_[id].wake = std::move(wake);
  return id;
}

void SharedBudget::leave(MemberId m) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = members_.find(m);
  if (it == members_.end()) return;
  Member me = std::move(it->second);
  members_.erase(it);
  // Evictions asked of it will not happen: their requesters must look elsewhere.
  for (const Eviction& e : me.evictions) {
    cancel_reservation(e.for_member);
    if (Member* r = find(e.for_member)) {
      r->asked = false;
      r->wake();
    }
  }
  // Its reservations: a slot released for it later is free instead.
  reservations_.erase(std::remove(reservations_.begin(), reservations_.end(), m), reservations_.end());
  size_t back = me.held + me.grants;
  for (size_t i = 0; i < back; ++i) free_slot();
  update_waiting_any();
}

SharedBudget::Member* SharedBudget::find(MemberId m) {
  auto it = members_.find(m);
  return it == members_.end() ? nullptr : &it->second;
}
const SharedBudget::Member* SharedBudget::find(MemberId m) const {
  auto it = members_.find(m);
  return it == members_.end() ? nullptr : &it->second;
}

size_t SharedBudget::used() const {
  std::lock_guard<std::mutex> g(mu_);
  return used_;
}

size_t SharedBudget::held(MemberId m) const {
  std::lock_guard<std::mutex> g(mu_);
  const Member* me = find(m);
  return me == nullptr ? 0 : me->held;
}

bool SharedBudget::take(MemberId m) {
  std::lock_guard<std::mutex> g(mu_);
  Member* me = find(m);
  if (me == nullptr) return false;
  if (me->grants > 0) {
    --me->grants;  // already counted in used_
    ++me->held;
    return true;
  }
  if (used_ < total_) {
    ++used_;
    ++me->held;
    return true;
  }
  start_waiting(m, me);
  return false;
}

void SharedBudget::start_waiting(MemberId m, Member* me) {
  if (me->waiting) return;
  me->waiting = true;
  bool first = !waiting_any_.load(std::memory_order_relaxed);
  update_waiting_any();
  // Someone starts waiting: the others publish their idle sockets (they may be idle themselves,
  // with no loop turn to publish at).
  if (first) {
    for (auto& kv : members_) {
      if (kv.first != m) kv.second.wake();
    }
  }
}

void SharedBudget::release(MemberId m) {
  std::lock_guard<std::mutex> g(mu_);
  Member* me = find(m);
  if (me == nullptr || me->held == 0) return;
  --me->held;
  free_slot();
}

void SharedBudget::free_slot() {
  while (!reservations_.empty()) {
    MemberId to = reservations_.front();
    reservations_.pop_front();
    Member* r = find(to);
    if (r == nullptr) continue;
    --r->reserved;
    r->asked = false;
    ++r->grants;  // stays counted in used_
    r->wake();
    return;
  }
  if (used_ > 0) --used_;
  wake_waiters();
}

void SharedBudget::wake_waiters() {
  for (auto& kv : members_) {
    Member& w = kv.second;
    if (!w.waiting) continue;
    w.waiting = false;
    w.wake();
  }
  update_waiting_any();
}

void SharedBudget::update_waiting_any() {
  bool any = false;
  for (auto& kv : members_) {
    if (kv.second.waiting || kv.second.asked) {
      any = true;
      break;
    }
  }
  waiting_any_.store(any, std::memory_order_relaxed);
}

bool SharedBudget::has_room(MemberId m) const {
  std::lock_guard<std::mutex> g(mu_);
  const Member* me = find(m);
  if (me == nullptr) return false;
  return me->grants > 0 || used_ < total_;
}

bool SharedBudget::wait_unless_room(MemberId m) {
  std::lock_guard<std::mutex> g(mu_);
  Member* me = find(m);
  if (me == nullptr) return true;  // gone: nothing will come
  if (me->grants > 0 || used_ < total_) return false;
  start_waiting(m, me);
  return true;
}

void SharedBudget::drop_grants(MemberId m) {
  std::lock_guard<std::mutex> g(mu_);
  Member* me = find(m);
  if (me == nullptr) return;
  size_t n = me->grants;
  me->grants = 0;
  for (size_t i = 0; i < n; ++i) free_slot();
}

void SharedBudget::reserve(MemberId m) {
  std::lock_guard<std::mutex> g(mu_);
  Member* me = find(m);
  if (me == nullptr) return;
  ++me->reserved;
  reservations_.push_back(m);
  update_waiting_any();
}

void SharedBudget::cancel_reservation(MemberId m) {
  auto it = std::find(reservations_.begin(), reservations_.end(), m);
  if (it == reservations_.end()) return;
  reservations_.erase(it);
  if (Member* me = find(m)) --me->reserved;
}

void SharedBudget::publish_idle(MemberId m, size_t idle, uint64_t oldest_idle_at) {
  std::lock_guard<std::mutex> g(mu_);
  Member* me = find(m);
  if (me == nullptr) return;
  bool news = idle > 0 && (me->idle == 0 || oldest_idle_at != me->oldest_idle_at);
  me->idle = idle;
  me->oldest_idle_at = idle > 0 ? oldest_idle_at : UINT64_MAX;
  if (!news) return;
  // Members waiting for room may now ask this one to evict.
  for (auto& kv : members_) {
    Member& w = kv.second;
    if (kv.first == m || !w.waiting) continue;
    w.waiting = false;
    w.wake();
  }
  update_waiting_any();
}

uint64_t SharedBudget::oldest_idle_elsewhere(MemberId m) const {
  std::lock_guard<std::mutex> g(mu_);
  uint64_t best = UINT64_MAX;
  for (const auto& kv : members_) {
    if (kv.first == m || kv.second.idle == 0) continue;
    best = std::min(best, kv.second.oldest_idle_at);
  }
  return best;
}

bool SharedBudget::request_eviction(MemberId m, bool cold_only, uint64_t cold_before) {
  std::lock_guard<std::mutex> g(mu_);
  Member* me = find(m);
  if (me == nullptr || me->asked) return false;
  Member* victim = nullptr;
  for (auto& kv : members_) {
    Member& v = kv.second;
    if (kv.first == m || v.idle == 0) continue;
    if (cold_only && v.oldest_idle_at > cold_before) continue;
    if (victim == nullptr || v.oldest_idle_at < victim->oldest_idle_at) victim = &v;
  }
  if (victim == nullptr) return false;
  me->asked = true;
  ++me->reserved;
  reservations_.push_back(m);
  // Until the victim publishes again, count the socket as gone (another requester looks elsewhere).
  --victim->idle;
  victim->evictions.push_back({m, cold_only, cold_before});
  update_waiting_any();
  victim->wake();
  return true;
}

void SharedBudget::take_evictions(MemberId m, std::vector<Eviction>* out) {
  out->clear();
  std::lock_guard<std::mutex> g(mu_);
  Member* me = find(m);
  if (me == nullptr) return;
  out->swap(me->evictions);
}

void SharedBudget::eviction_failed(const Eviction& e) {
  std::lock_guard<std::mutex> g(mu_);
  cancel_reservation(e.for_member);
  Member* r = find(e.for_member);
  if (r == nullptr) return;
  r->asked = false;
  r->wake();
  update_waiting_any();
}

void SharedBudget::fd_wait(MemberId m) {
  std::lock_guard<std::mutex> g(mu_);
  fd_blocked_.store(true, std::memory_order_release);
  if (Member* me = find(m)) me->fd_waiting = true;
}

void SharedBudget::fd_returned() {
  if (!fd_blocked_.load(std::memory_order_acquire)) return;
  std::lock_guard<std::mutex> g(mu_);
  fd_blocked_.store(false, std::memory_order_release);
  for (auto& kv : members_) {
    Member& w = kv.second;
    if (!w.fd_waiting) continue;
    w.fd_waiting = false;
    w.wake();
  }
}

}  // namespace uvf
