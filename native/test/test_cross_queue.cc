// loop/cross_queue.h: the queue commands cross threads through (Session ioThreads). Producers on
// several threads, one consumer woken only when the queue goes from empty to not empty; run
// under ThreadSanitizer by `npm run test:native:tsan` (and plainly by `npm run test:native`).
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "check.h"
#include "loop/cross_queue.h"

namespace {

using Queue = uvf::CrossQueue<uint64_t>;

// A consumer's wake-up, as a uv_async would give it: coalescing, never lost.
struct Waker {
  std::mutex mu;
  std::condition_variable cv;
  bool pending = false;
  std::atomic<int> sends{0};
  void send() {
    sends.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard<std::mutex> g(mu);
    pending = true;
    cv.notify_one();
  }
  void wait() {
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return pending; });
    pending = false;
  }
};

}  // namespace

TEST(cross_queue_wakes_only_when_it_was_empty) {
  Queue q;
  std::vector<uint64_t> out;
  CHECK(!q.take(&out));
  CHECK(q.push(1) == Queue::Push::Wake);
  CHECK(q.push(2) == Queue::Push::Queued);
  CHECK(q.take(&out));
  CHECK_EQ(out.size(), 2u);
  CHECK_EQ(out[0], 1u);
  CHECK_EQ(out[1], 2u);
  CHECK(q.push(3) == Queue::Push::Wake);  // empty again after the take
  std::vector<uint64_t> rest;
  q.close(&rest);
  CHECK_EQ(rest.size(), 1u);
  uint64_t v = 4;
  CHECK(q.push(v) == Queue::Push::Closed);
  CHECK_EQ(v, 4u);  // refused: still the caller's
  CHECK(q.closed());
}

TEST(cross_queue_four_producers_one_consumer_nothing_lost_order_kept) {
  constexpr int kProducers = 4;
  constexpr uint64_t kEach = 20000;
  Queue q;
  Waker w;
  std::atomic<int> running{kProducers};
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (uint64_t i = 0; i < kEach; ++i) {
        uint64_t v = (static_cast<uint64_t>(p) << 32) | i;
        q.push(v, [&] { w.send(); });
      }
      running.fetch_sub(1);
      w.send();  // so the consumer rechecks `running`
    });
  }
  std::vector<uint64_t> next(kProducers, 0);
  uint64_t got = 0;
  bool ordered = true;
  std::vector<uint64_t> batch;
  while (true) {
    w.wait();
    bool last = running.load() == 0;
    while (q.take(&batch)) {
      for (uint64_t v : batch) {
        auto p = static_cast<size_t>(v >> 32);
        if ((v & 0xffffffffu) != next[p]) ordered = false;
        next[p] = (v & 0xffffffffu) + 1;
        ++got;
      }
    }
    if (last) break;
  }
  for (auto& t : producers) t.join();
  CHECK_EQ(got, kProducers * kEach);
  CHECK(ordered);
  // One wake-up per time the queue went from empty to not empty (plus each producer's last).
  CHECK(w.sends.load() <= static_cast<int>(kProducers * kEach + kProducers));
}

TEST(cross_queue_close_races_with_producers_every_item_accounted_for) {
  for (int round = 0; round < 20; ++round) {
    Queue q;
    std::atomic<uint64_t> refused{0}, pushed{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> producers;
    for (int p = 0; p < 3; ++p) {
      producers.emplace_back([&] {
        while (!go.load()) std::this_thread::yield();
        for (int i = 0; i < 2000; ++i) {
          uint64_t v = 1;
          if (q.push(v) == Queue::Push::Closed) {
            refused.fetch_add(1);
          } else {
            pushed.fetch_add(1);
          }
        }
      });
    }
    go.store(true);
    uint64_t taken = 0;
    std::vector<uint64_t> batch;
    for (int i = 0; i < 50; ++i) {
      if (q.take(&batch)) taken += batch.size();
    }
    q.close(&batch);
    taken += batch.size();
    for (auto& t : producers) t.join();
    CHECK(!q.take(&batch));  // nothing gets in after close()
    CHECK_EQ(taken, pushed.load());
    CHECK_EQ(taken + refused.load(), 6000u);
  }
}
