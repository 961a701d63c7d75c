// A multi-producer, single-consumer queue between threads: producers push under a mutex, the
// consumer takes everything queued at once (one lock per wake-up, not per item). push() says
// when the queue was empty, i.e. when the consumer needs a wake-up (a uv_async_send, say): a
// consumer that drains the whole queue per wake-up then never misses an item and is never
// woken more than once per batch. The wake-up can run under the queue's lock (push(v, wake)),
// so that it never races with close(): after close() pushes are refused (the caller keeps the
// item) and no wake-up happens any more, so the consumer may then free what `wake` touches.
// No libuv: native/test/test_cross_queue.cc runs it under ThreadSanitizer.
#pragma once
#include <mutex>
#include <utility>
#include <vector>

namespace uvf {

template <class T>
class CrossQueue {
 public:
  enum class Push { Wake, Queued, Closed };

  // Any thread. Wake: the queue was empty (wake the consumer); Queued: a wake-up is already due;
  // Closed: refused, `v` is untouched.
  Push push(T& v) {
    return push(v, [] {});
  }
  Push push(T&& v) { return push(v); }
  // Same, calling wake() under the lock when the result is Wake.
  template <class Wake>
  Push push(T& v, Wake&& wake) {
    std::lock_guard<std::mutex> g(mu_);
    if (closed_) return Push::Closed;
    bool was_empty = items_.empty();
    items_.push_back(std::move(v));
    if (!was_empty) return Push::Queued;
    wake();
    return Push::Wake;
  }

  // Pushes every item of `vs` in order, one wake-up at most; if closed, hands them to *refused.
  template <class Wake>
  Push push_many(std::vector<T>& vs, Wake&& wake, std::vector<T>* refused) {
    std::lock_guard<std::mutex> g(mu_);
    if (closed_) {
      refused->swap(vs);
      return Push::Closed;
    }
    bool was_empty = items_.empty();
    for (auto& v : vs) items_.push_back(std::move(v));
    vs.clear();
    if (!was_empty) return Push::Queued;
    wake();
    return Push::Wake;
  }

  // The consumer: moves everything queued into *out (cleared first). False if there was nothing.
  bool take(std::vector<T>* out) {
    out->clear();
    std::lock_guard<std::mutex> g(mu_);
    if (items_.empty()) return false;
    out->swap(items_);
    return true;
  }

  // Refuses later pushes and hands over what is still queued (the consumer's last take).
  void close(std::vector<T>* out) {
    out->clear();
    std::lock_guard<std::mutex> g(mu_);
    closed_ = true;
    out->swap(items_);
  }

  bool closed() const {
    std::lock_guard<std::mutex> g(mu_);
    return closed_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<T> items_;
  bool closed_ = false;
};

}  // namespace uvf
