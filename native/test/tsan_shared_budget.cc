// pool/shared_budget.h across threads (Session ioThreads' one connections budget), under
// ThreadSanitizer: members on their own threads take and release slots, wait for wake-ups (none
// may be lost: a member that waits is woken within a bound), reserve, publish idle sockets, ask
// each other for evictions and leave; and two EngineThreads (real libuv loops, MemorySocket
// connections, no network) sharing one budget of 2 across 8 origins: every request completes,
// the budget is never exceeded, and it is empty once both have closed.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "check.h"
#include "client/engine_thread.h"
#include "client/event_batch.h"
#include "dns/dns_cache.h"
#include "net/memory_socket.h"
#include "pool/shared_budget.h"

namespace {

using uvf::EngineThread;
using uvf::EventBatch;
using uvf::SharedBudget;

struct Signal {
  std::mutex mu;
  std::condition_variable cv;
  bool pending = false;
  void send() {
    std::lock_guard<std::mutex> g(mu);
    pending = true;
    cv.notify_one();
  }
  bool wait_for_ms(int ms) {
    std::unique_lock<std::mutex> l(mu);
    bool ok = cv.wait_for(l, std::chrono::milliseconds(ms), [&] { return pending; });
    pending = false;
    return ok;
  }
};

}  // namespace

TEST(tsan_shared_budget_members_on_threads_never_exceed_the_total_and_no_wake_up_is_lost) {
  constexpr size_t kTotal = 3;
  constexpr int kMembers = 5, kRounds = 3000;
  SharedBudget b(kTotal);
  std::atomic<int> holding{0}, max_holding{0}, lost{0};
  std::vector<std::unique_ptr<Signal>> sig;
  std::vector<SharedBudget::MemberId> ids;
  for (int i = 0; i < kMembers; ++i) {
    sig.push_back(std::make_unique<Signal>());
    Signal* s = sig.back().get();
    ids.push_back(b.join([s] { s->send(); }));
  }
  std::vector<std::thread> ts;
  for (int i = 0; i < kMembers; ++i) {
    ts.emplace_back([&, i] {
      SharedBudget::MemberId me = ids[i];
      std::vector<SharedBudget::Eviction> ev;
      for (int r = 0; r < kRounds; ++r) {
        while (!b.take(me)) {
          // Registered as waiting with the refusal: a release must wake us well within this.
          if (!sig[i]->wait_for_ms(5000)) {
            ++lost;
            break;
          }
        }
        int h = ++holding;
        int m = max_holding.load();
        while (h > m && !max_holding.compare_exchange_weak(m, h)) {
        }
        // Some of the other traffic members cause: idle publishing, evictions asked and refused,
        // reservations (the slot this release frees goes to ourselves as a grant), grants dropped.
        b.publish_idle(me, r % 3, static_cast<uint64_t>(r));
        if (r % 7 == 0) b.request_eviction(me, r % 2 == 0, static_cast<uint64_t>(r));
        b.take_evictions(me, &ev);
        for (const auto& e : ev) b.eviction_failed(e);
        if (r % 11 == 0) b.reserve(me);
        --holding;
        b.release(me);
        if (r % 13 == 0) b.drop_grants(me);
        (void)b.oldest_idle_elsewhere(me);
        (void)b.anyone_waiting();
      }
      b.publish_idle(me, 0, UINT64_MAX);
      b.take_evictions(me, &ev);
      for (const auto& e : ev) b.eviction_failed(e);
      b.drop_grants(me);
    });
  }
  for (auto& t : ts) t.join();
  CHECK_EQ(lost.load(), 0);
  CHECK(max_holding.load() <= static_cast<int>(kTotal));
  for (auto id : ids) b.leave(id);
  CHECK_EQ(b.used(), 0u);
}

TEST(tsan_shared_budget_leave_while_others_wait) {
  for (int round = 0; round < 20; ++round) {
    SharedBudget b(1);
    Signal s1, s2;
    auto m1 = b.join([&] { s1.send(); });
    auto m2 = b.join([&] { s2.send(); });
    CHECK(b.take(m1));
    std::atomic<bool> got{false};
    std::thread waiter([&] {
      for (int i = 0; i < 100 && !got.load(); ++i) {
        if (b.take(m2)) {
          got.store(true);
          break;
        }
        s2.wait_for_ms(50);
      }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(round % 3));
    b.leave(m1);  // its slot comes back: the waiter gets it
    waiter.join();
    CHECK(got.load());
    b.leave(m2);
    CHECK_EQ(b.used(), 0u);
  }
}

namespace {

struct Counts {
  size_t complete = 0, error = 0;
  std::string first_error;
};

void count_records(const EventBatch& b, Counts* c) {
  const std::string& r = b.records();
  size_t off = 0;
  while (off + 24 <= r.size()) {
    uint32_t h[6];
    std::memcpy(h, r.data() + off, sizeof h);
    if (h[0] == uvf::kEvComplete) {
      ++c->complete;
    } else if (h[0] == uvf::kEvError) {
      if (c->error++ == 0) c->first_error = std::string(r.data() + off + 24, h[4]);
    }
    off += 24 + static_cast<size_t>(h[4]) + h[5];
  }
}

EngineThread::Command submit(uvf::RequestId id, uint16_t port) {
  struct Owned {
    uvf::RequestSpec spec;
    std::string method = "GET", target;
  };
  auto o = std::make_shared<Owned>();
  o->target = "/r" + std::to_string(id);
  o->spec.id = id;
  o->spec.origin.host = "127.0.0.1";
  o->spec.origin.port = port;
  o->spec.origin.authority = "127.0.0.1:" + std::to_string(port);
  return [o](uvf::Engine* e, EventBatch& out) {
    if (e == nullptr) {
      out.error(o->spec.id, uvf::Error::SessionClosed, "session is closed", 0);
      return;
    }
    o->spec.method = o->method;
    o->spec.target = o->target;
    const char* d = nullptr;
    uvf::Error err = e->submit(std::move(o->spec), &d);
    if (err != uvf::Error::Ok) out.error(o->spec.id, err, d, 0);
  };
}

}  // namespace

TEST(tsan_shared_budget_two_engine_threads_share_two_slots_over_eight_origins) {
  uvf::EngineOptions o;
  o.socket_factory = uvf::memory_socket_factory("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
  o.pool.per_key = 4;
  o.pool.total = 2;
  o.shared_budget = std::make_shared<SharedBudget>(2);
  SharedBudget* budget = o.shared_budget.get();
  Signal w;
  uvf::Error err;
  const char* detail = nullptr;
  auto t0 = EngineThread::start(o, 0, 2, [&] { w.send(); }, &err, &detail);
  auto t1 = EngineThread::start(o, 1, 2, [&] { w.send(); }, &err, &detail);
  CHECK(t0 != nullptr && t1 != nullptr);
  if (!t0 || !t1) return;
  constexpr int kEach = 300;
  std::atomic<bool> stop{false};
  std::atomic<size_t> max_used{0}, max_open{0};
  std::thread sampler([&] {
    while (!stop.load()) {
      size_t u = budget->used();
      if (u > max_used.load()) max_used.store(u);
      // Both threads' snapshots at one instant: their open sockets never add up beyond the budget.
      auto both = EngineThread::stats_together({t0.get(), t1.get()});
      size_t open = both[0].open + both[1].open;
      if (open > max_open.load()) max_open.store(open);
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  // Four origins per thread, submitted from two threads at once: keys with no connection of their
  // own take idle sockets of other keys, on their own thread or (through the budget) the other.
  std::thread a([&] {
    for (int i = 0; i < kEach; ++i) t0->post(submit(static_cast<uvf::RequestId>(i + 1), static_cast<uint16_t>(80 + i % 4)));
  });
  std::thread c([&] {
    for (int i = 0; i < kEach; ++i) t1->post(submit(static_cast<uvf::RequestId>(i + 1), static_cast<uint16_t>(90 + i % 4)));
  });
  Counts n;
  EventBatch got;
  size_t settled = 0;
  for (int spins = 0; spins < 3000 && settled < 2 * kEach; ++spins) {
    w.wait_for_ms(10);
    for (auto* t : {t0.get(), t1.get()}) {
      while (t->take(&got)) {
        count_records(got, &n);
        settled += got.settled();
        got.clear();
      }
    }
  }
  a.join();
  c.join();
  stop.store(true);
  sampler.join();
  CHECK_EQ(n.complete, static_cast<size_t>(2 * kEach));
  CHECK_EQ(n.error, 0u);
  if (n.error) std::fprintf(stderr, "  first error: %s\n", n.first_error.c_str());
  CHECK(max_used.load() <= 2u);
  CHECK(max_open.load() <= 2u);
  uvf::EngineStats s0 = t0->stats(), s1 = t1->stats();
  CHECK(s0.open + s1.open <= 2u);
  // Only two slots for eight origins: sockets were closed to make room for other origins.
  CHECK(s0.connections_created + s1.connections_created > 2u);
  for (auto* t : {t0.get(), t1.get()}) {
    t->post([](uvf::Engine* e, EventBatch&) {
      if (e != nullptr) e->close();
    });
  }
  int closed = 0;
  for (int spins = 0; spins < 500 && closed < 2; ++spins) {
    w.wait_for_ms(10);
    for (auto* t : {t0.get(), t1.get()}) {
      while (t->take(&got)) {
        if (got.closed()) ++closed;
        got.clear();
      }
    }
  }
  CHECK_EQ(closed, 2);
  t0->join();
  t1->join();
  CHECK_EQ(budget->used(), 0u);
  // Ended threads answer with their final stats, without waiting for each other.
  auto final = EngineThread::stats_together({t0.get(), t1.get()});
  CHECK_EQ(final[0].requests_completed + final[1].requests_completed, static_cast<uint64_t>(2 * kEach));
}

// dns/dns_cache.h's EntryStore shared by two caches on two threads (one per I/O thread), with a
// resolver that answers synchronously: lookups, hits, clears and evictions race on the store.
TEST(tsan_dns_entry_store_shared_by_caches_on_two_threads) {
  auto store = std::make_shared<uvf::dns::EntryStore>();
  struct SyncResolver : uvf::dns::Resolver {
    uvf::dns::DnsCache* cache = nullptr;
    void resolve(const std::string&, int, uint64_t id) override {
      uvf::dns::Answer a;
      uvf::dns::Address x;
      uvf::dns::parse_ip_literal("10.1.2.3", &x);
      a.addrs = {x};
      cache->complete(id, a, 0);
    }
  };
  struct Sink : uvf::dns::Waiter {
    size_t ok = 0;
    void on_dns(uvf::Error e, const std::vector<uvf::dns::Address>&, size_t) override { ok += e == uvf::Error::Ok; }
  };
  std::atomic<size_t> answered{0};
  auto run = [&](int seed) {
    SyncResolver r;
    uvf::dns::Options opts;
    opts.max_entries = 16;
    opts.max_in_flight = 1;  // shared: a synchronous call finishes before the next starts anywhere
    uvf::dns::DnsCache c(opts, &r, store);
    r.cache = &c;
    // Woken when the other cache's call finishes; this loop pumps at its next lookup anyway.
    auto m = store->join([] {});
    c.share_bound(m);
    Sink w;
    for (int i = 0; i < 4000; ++i) {
      c.lookup("h" + std::to_string((i * 7 + seed) % 40) + ".test", 80, 0, static_cast<uint64_t>(i), &w);
      if (i % 97 == 0) c.clear(i % 2 ? "" : "h3.test");
    }
    // Lookups that were queued behind the other cache's call: started now, all answered.
    for (int spins = 0; spins < 10000 && c.stats().queued > 0; ++spins) {
      c.pump_shared();
      std::this_thread::yield();
    }
    answered += w.ok;
    store->leave(m);
  };
  std::thread a(run, 0), b(run, 1);
  a.join();
  b.join();
  CHECK_EQ(answered.load(), 8000u);
  CHECK(store->size() <= 16u);
  CHECK_EQ(store->in_flight(), 0u);
}
