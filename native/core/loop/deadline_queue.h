// Deadlines of many objects (connections, requests) on one timer: an intrusive indexed min-heap.
// Scheduling, moving and cancelling cost O(log n); the next deadline is O(1); a timer firing
// handles only what is due (pop_due), never every object. Pure: no libuv, no clock of its own
// (the caller passes `now`, so tests drive it with a fake clock).
//
// Each object embeds one DeadlineEntry per queue it can be in; the queue keeps pointers to the
// objects, so an object must be cancelled (or popped) before it is freed.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace uvf {

struct DeadlineEntry {
  static constexpr uint32_t kNotQueued = UINT32_MAX;
  uint64_t at = 0;               // when it is due (valid while queued)
  uint32_t slot = kNotQueued;    // position in the heap
  bool queued() const { return slot != kNotQueued; }
};

template <class T, DeadlineEntry T::*E>
class DeadlineQueue {
 public:
  DeadlineQueue() = default;
  DeadlineQueue(const DeadlineQueue&) = delete;
  DeadlineQueue& operator=(const DeadlineQueue&) = delete;

  // Queues t at `at`, or moves it there.
  void schedule(T* t, uint64_t at) {
    DeadlineEntry& e = t->*E;
    if (!e.queued()) {
      e.at = at;
      e.slot = static_cast<uint32_t>(heap_.size());
      heap_.push_back(t);
      up(e.slot);
      return;
    }
    uint64_t was = e.at;
    e.at = at;
    if (at < was) {
      up(e.slot);
    } else {
      down(e.slot);
    }
  }
  // Queues t at `at` unless it is queued for sooner already (a later deadline is found when the
  // earlier entry fires and the owner is asked again: cheaper than moving on every change).
  void schedule_no_later(T* t, uint64_t at) {
    const DeadlineEntry& e = t->*E;
    if (e.queued() && e.at <= at) return;
    schedule(t, at);
  }
  // Takes t out (no-op when not queued).
  void cancel(T* t) {
    DeadlineEntry& e = t->*E;
    if (!e.queued()) return;
    size_t i = e.slot;
    e.slot = DeadlineEntry::kNotQueued;
    T* last = heap_.back();
    heap_.pop_back();
    if (i == heap_.size()) return;  // it was the last one
    heap_[i] = last;
    (last->*E).slot = static_cast<uint32_t>(i);
    up(i);
    down((last->*E).slot);
  }
  // The earliest deadline, or UINT64_MAX when nothing is queued.
  uint64_t next() const { return heap_.empty() ? UINT64_MAX : (heap_.front()->*E).at; }
  // Removes and returns the earliest object due at `now` or before, or nullptr.
  T* pop_due(uint64_t now) {
    if (heap_.empty() || (heap_.front()->*E).at > now) return nullptr;
    T* t = heap_.front();
    cancel(t);
    return t;
  }
  size_t size() const { return heap_.size(); }
  bool empty() const { return heap_.empty(); }

 private:
  uint64_t at(size_t i) const { return (heap_[i]->*E).at; }
  void place(size_t i, T* t) {
    heap_[i] = t;
    (t->*E).slot = static_cast<uint32_t>(i);
  }
  void up(size_t i) {
    T* t = heap_[i];
    uint64_t a = (t->*E).at;
    while (i > 0) {
      size_t parent = (i - 1) / 2;
      if (at(parent) <= a) break;
      place(i, heap_[parent]);
      i = parent;
    }
    place(i, t);
  }
  void down(size_t i) {
    T* t = heap_[i];
    uint64_t a = (t->*E).at;
    size_t n = heap_.size();
    for (;;) {
      size_t child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && at(child + 1) < at(child)) ++child;
      if (a <= at(child)) break;
      place(i, heap_[child]);
      i = child;
    }
    place(i, t);
  }

  std::vector<T*> heap_;
};

}  // namespace uvf
