// One `connections` budget (and one descriptor state) shared by several engines on their own
// threads (Session ioThreads), and by the main-loop engine that carries raw sockets. Pure
// bookkeeping behind one mutex: no libuv, no N-API. Each engine is a Member with a `wake`
// callback (thread-safe and cheap: a uv_async_send to its own loop); the budget calls it, under
// its lock, whenever the member should look again. A member's pool (pool/connection_pool.h)
// takes one slot per connection it opens (and per raw socket) and gives it back when the socket's
// handle is released.
//
//   take(m)      a slot, or false: m is then registered as waiting, atomically with the refusal,
//                so the release that frees the next slot wakes it (no lost wake-up). Woken
//                members retry; one that loses the race registers again.
//   release(m)   a slot back. If some member reserved the room an eviction makes (reserve(),
//                request_eviction()), the slot goes to the oldest such reservation as a grant
//                (only that member's take() gets it); otherwise it is free and every waiting
//                member is woken.
//
// Eviction across members: a member whose key is blocked on the total and has no idle socket of
// its own to close asks, through request_eviction(), the member that published the oldest idle
// socket (publish_idle) to close one for it. The budget reserves the slot for the requester and
// wakes the victim, which takes its evictions (take_evictions), closes an idle socket chosen by
// the pool's own rules (cold ones for a key with connections of its own; otherwise a warm used
// one, sparing never-used ones) and later releases its slot — to the requester; or, with nothing
// fit to close any more, says eviction_failed() (the reservation goes and the requester is woken).
// Idle sockets are published only while someone waits: when a member starts waiting, the others
// are woken to publish; a publish that shows new idle sockets wakes the waiting members.
//
// Descriptors: a member out of file descriptors (EMFILE) says fd_wait(); every member's
// fd_blocked() is then true until some member's socket gives a descriptor back (fd_returned()),
// which wakes every member that waited.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace uvf {

class SharedBudget {
 public:
  using MemberId = uint32_t;

  explicit SharedBudget(size_t total) : total_(total) {}
  SharedBudget(const SharedBudget&) = delete;
  SharedBudget& operator=(const SharedBudget&) = delete;

  // `wake` runs under the budget's lock, on whichever thread caused it: it must not call back
  // into the budget (post to the member's own thread instead).
  MemberId join(std::function<void()> wake);
  // After leave() the member's wake is never called again. Whatever it still holds (slots,
  // grants, reservations, evictions asked of it or by it) is settled: slots come back.
  void leave(MemberId m);

  size_t total() const { return total_; }
  // Slots held by members plus grants not yet taken: never above total().
  size_t used() const;
  size_t held(MemberId m) const;

  bool take(MemberId m);
  void release(MemberId m);
  // take() would succeed now (a grant for m, or a free slot). Racy by nature: only a hint.
  bool has_room(MemberId m) const;
  // Registers m as waiting unless a slot is free (or granted to m) now. False: room now, retry.
  bool wait_unless_room(MemberId m);
  // Grants m holds but no longer needs (its blocked keys were served otherwise) go back.
  void drop_grants(MemberId m);
  bool anyone_waiting() const { return waiting_any_.load(std::memory_order_relaxed); }

  // m closes one of its own idle sockets to make room for itself: the slot it frees is m's.
  void reserve(MemberId m);

  // m's idle sockets (open, carrying nothing): how many, and since when the oldest was idle
  // (ms on a steady clock every member shares), UINT64_MAX if none.
  void publish_idle(MemberId m, size_t idle, uint64_t oldest_idle_at);
  // The oldest idle socket any other member published (UINT64_MAX: none).
  uint64_t oldest_idle_elsewhere(MemberId m) const;

  struct Eviction {
    MemberId for_member = 0;
    bool cold_only = false;  // the requester's key has connections of its own: cold sockets only
    uint64_t cold_before = 0;  // cold_only: idle since at most this (the requester's clock)
  };
  // Asks another member to close an idle socket for m (cold_only: only one idle since before
  // cold_before). False if no member published a fit one, or m already has one asked and not
  // yet settled (one at a time per member).
  bool request_eviction(MemberId m, bool cold_only, uint64_t cold_before);
  // The victim's side: the evictions asked of m (cleared).
  void take_evictions(MemberId m, std::vector<Eviction>* out);
  // The victim closed nothing for e: the reservation goes, the requester is woken.
  void eviction_failed(const Eviction& e);

  // Descriptors (see above).
  void fd_wait(MemberId m);
  void fd_returned();
  bool fd_blocked() const { return fd_blocked_.load(std::memory_order_acquire); }

 private:
  struct Member {
    std::function<void()> wake;
    size_t held = 0;
    size_t grants = 0;
    size_t reserved = 0;          // entries of reservations_ naming this member
    bool asked = false;           // has a request_eviction() not yet settled
    bool waiting = false;
    bool fd_waiting = false;
    size_t idle = 0;
    uint64_t oldest_idle_at = UINT64_MAX;
    std::vector<Eviction> evictions;  // asked of this member
  };
  Member* find(MemberId m);
  const Member* find(MemberId m) const;
  void wake_waiters();       // under mu_
  void update_waiting_any();  // under mu_
  void start_waiting(MemberId m, Member* me);  // under mu_: m waits for room (once)
  void cancel_reservation(MemberId m);  // one of m's; under mu_
  void free_slot();          // under mu_: a slot came back with no reservation for it

  const size_t total_;
  mutable std::mutex mu_;
  size_t used_ = 0;
  MemberId next_id_ = 1;
  std::unordered_map<MemberId, Member> members_;
  std::deque<MemberId> reservations_;  // oldest first: the next slot released goes to the front
  std::atomic<bool> waiting_any_{false};
  std::atomic<bool> fd_blocked_{false};
};

}  // namespace uvf
