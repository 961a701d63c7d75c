// client/engine_thread.h and client/event_batch.h across threads (Session ioThreads), with real
// libuv loops and the engine's socket-less MemorySocket (EngineOptions::socket_factory): no
// network. Built only into the ThreadSanitizer binary (npm run test:native:tsan), which links libuv.
#include <atomic>
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
#include "net/memory_socket.h"

namespace {

using uvf::EngineThread;
using uvf::EventBatch;

struct Waker {
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

struct Counts {
  size_t complete = 0, error = 0, other = 0;
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
    } else {
      ++c->other;
    }
    off += 24 + static_cast<size_t>(h[4]) + h[5];
  }
}

uvf::EngineOptions memory_options() {
  uvf::EngineOptions o;
  o.socket_factory = uvf::memory_socket_factory("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
  o.pool.per_key = 8;
  return o;
}

// A submit command as the binding posts it: owns the bytes the spec views.
EngineThread::Command submit_command(uvf::RequestId id, uint16_t port) {
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

TEST(tsan_event_batch_append_renumbers_bigs) {
  EventBatch a, b;
  std::string big1(5000, 'a'), big2(6000, 'b');
  uvf::ResponseMeta m;
  m.status = 200;
  a.complete(1, m, "head1", std::string(big1));
  b.data(2, "x", 1);
  b.complete(3, m, "head3", std::string(big2));
  a.append(std::move(b));
  CHECK(b.idle());
  CHECK_EQ(a.bigs().size(), 2u);
  CHECK_EQ(a.settled(), 2u);
  // The second Complete's `b` word now names big 2.
  const std::string& r = a.records();
  size_t off = 0;
  std::vector<uint32_t> big_of_complete;
  while (off + 24 <= r.size()) {
    uint32_t h[6];
    std::memcpy(h, r.data() + off, sizeof h);
    if (h[0] == uvf::kEvComplete) big_of_complete.push_back(h[3]);
    off += 24 + static_cast<size_t>(h[4]) + h[5];
  }
  CHECK_EQ(big_of_complete.size(), 2u);
  if (big_of_complete.size() == 2) {
    CHECK_EQ(big_of_complete[0], 1u);
    CHECK_EQ(big_of_complete[1], 2u);
    CHECK_EQ(a.bigs()[1].size, 6000u);
  }
}

TEST(tsan_engine_thread_three_submitters_stats_reader_then_close) {
  Waker w;
  uvf::Error err;
  const char* detail = nullptr;
  auto t = EngineThread::start(memory_options(), 0, 1, [&] { w.send(); }, &err, &detail);
  CHECK(t != nullptr);
  if (!t) return;
  constexpr int kThreads = 3, kEach = 400;
  std::atomic<bool> stop_stats{false};
  std::thread stats_reader([&] {
    while (!stop_stats.load()) {
      uvf::EngineStats s = t->stats();
      (void)s;
      auto o = t->origin_stats();
      (void)o;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  std::vector<std::thread> submitters;
  for (int p = 0; p < kThreads; ++p) {
    submitters.emplace_back([&, p] {
      for (int i = 0; i < kEach; ++i) t->post(submit_command(static_cast<uvf::RequestId>(p * kEach + i + 1), 80 + p));
    });
  }
  Counts c;
  EventBatch got;
  size_t settled = 0;
  for (int spins = 0; spins < 2000 && settled < kThreads * kEach; ++spins) {
    w.wait_for_ms(10);
    while (t->take(&got)) {
      count_records(got, &c);
      settled += got.settled();
      got.clear();
    }
  }
  for (auto& s : submitters) s.join();
  CHECK_EQ(c.complete, static_cast<size_t>(kThreads * kEach));
  CHECK_EQ(c.error, 0u);
  if (c.error) std::fprintf(stderr, "  first error: %s\n", c.first_error.c_str());
  CHECK_EQ(settled, static_cast<size_t>(kThreads * kEach));
  uvf::EngineStats s = t->stats();
  CHECK_EQ(s.requests_completed, static_cast<uint64_t>(kThreads * kEach));
  stop_stats.store(true);
  stats_reader.join();
  // Graceful close: the last batch says closed, then the thread ends by itself.
  t->post([](uvf::Engine* e, EventBatch&) {
    if (e != nullptr) e->close();
  });
  bool closed = false;
  for (int spins = 0; spins < 500 && !closed; ++spins) {
    w.wait_for_ms(10);
    while (t->take(&got)) {
      closed = closed || got.closed();
      got.clear();
    }
  }
  CHECK(closed);
  t->join();
  CHECK(t->finished());
  CHECK_EQ(t->stats().requests_completed, static_cast<uint64_t>(kThreads * kEach));  // the final stats
  // Posting after the end runs the command here, with no engine.
  bool ran_without_engine = false;
  t->post([&](uvf::Engine* e, EventBatch&) { ran_without_engine = e == nullptr; });
  CHECK(ran_without_engine);
}

TEST(tsan_engine_thread_released_mid_flight_from_another_thread) {
  for (int round = 0; round < 5; ++round) {
    Waker w;
    uvf::Error err;
    const char* detail = nullptr;
    auto t = EngineThread::start(memory_options(), 1, 2, [&] { w.send(); }, &err, &detail);
    CHECK(t != nullptr);
    if (!t) return;
    std::thread submitter([&] {
      for (int i = 0; i < 300; ++i) t->post(submit_command(static_cast<uvf::RequestId>(i + 1), 80));
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(round));
    submitter.join();
    t->release_and_join();  // silent: whatever was in flight is dropped, every handle closed
    CHECK(t->finished());
    t.reset();
  }
}

TEST(tsan_engine_thread_bad_options_fail_at_start) {
  uvf::EngineOptions o = memory_options();
  o.pool.total = 0;
  uvf::Error err = uvf::Error::Ok;
  const char* detail = nullptr;
  auto t = EngineThread::start(o, 0, 1, nullptr, &err, &detail);
  CHECK(t == nullptr);
  CHECK(err == uvf::Error::InvalidOption);
}

TEST(tsan_engine_thread_post_many_and_stream_commands_in_order) {
  Waker w;
  uvf::Error err;
  const char* detail = nullptr;
  auto t = EngineThread::start(memory_options(), 0, 1, [&] { w.send(); }, &err, &detail);
  CHECK(t != nullptr);
  if (!t) return;
  // A burst staged on one thread (as the binding does per JS turn), sent with one wake-up,
  // including pause/resume/abort commands for ids that are running, finished or unknown.
  std::vector<EngineThread::Command> burst;
  for (uvf::RequestId id = 1; id <= 200; ++id) burst.push_back(submit_command(id, 80));
  for (uvf::RequestId id = 190; id <= 210; ++id) {
    burst.push_back(t->pause_command(id));
    burst.push_back(t->resume_command(id));
  }
  burst.push_back(t->abort_command(200));
  std::thread poster([&] { t->post_many(burst); });
  poster.join();
  CHECK(burst.empty());
  Counts c;
  EventBatch got;
  size_t settled = 0;
  for (int spins = 0; spins < 1000 && settled < 200; ++spins) {
    w.wait_for_ms(10);
    bool resume_due = false;
    while (t->take(&got, &resume_due)) {
      count_records(got, &c);
      settled += got.settled();
      got.clear();
      if (resume_due) t->post(t->taken_command());
    }
  }
  CHECK_EQ(settled, 200u);  // 199 or 200 completions, plus the abort if it came first
  CHECK(c.complete >= 199u);
  CHECK_EQ(c.error, 0u);
  t->release_and_join();
}

// Streamed request bodies across the crossing (EngineThread::body_write): a producer thread hands
// chunks over while the I/O thread gives them to the engine and the request settles (MemorySocket
// answers at once, so late chunks find it gone); the flow state is shared under its mutex.
TEST(tsan_engine_thread_streamed_body_chunks_cross_while_the_request_settles) {
  Waker w;
  uvf::Error err;
  const char* detail = nullptr;
  auto t = EngineThread::start(memory_options(), 0, 1, [&] { w.send(); }, &err, &detail);
  CHECK(t != nullptr);
  if (!t) return;
  constexpr int kRequests = 20;
  for (int k = 1; k <= kRequests; ++k) {
    auto id = static_cast<uvf::RequestId>(k);
    struct Owned {
      uvf::RequestSpec spec;
      std::string method = "POST", target = "/up";
    };
    auto o = std::make_shared<Owned>();
    o->spec.id = id;
    o->spec.origin.host = "127.0.0.1";
    o->spec.origin.port = 80;
    o->spec.origin.authority = "127.0.0.1:80";
    o->spec.streamed_body = true;
    t->post([o](uvf::Engine* e, EventBatch& out) {
      if (e == nullptr) return;
      o->spec.method = o->method;
      o->spec.target = o->target;
      const char* d = nullptr;
      uvf::Error er = e->submit(std::move(o->spec), &d);
      if (er != uvf::Error::Ok) out.error(o->spec.id, er, d, 0);
    });
  }
  std::atomic<int> refused{0};
  std::thread producer([&] {
    for (int i = 0; i < 300; ++i) {
      for (int k = 1; k <= kRequests; ++k) {
        bool more = true;
        t->post(t->body_write(static_cast<uvf::RequestId>(k), std::string(1024 + i, 'x'), &more));
        if (!more) ++refused;
      }
    }
    for (int k = 1; k <= kRequests; ++k) {
      auto id = static_cast<uvf::RequestId>(k);
      t->post([id](uvf::Engine* e, EventBatch&) {
        if (e != nullptr) e->end_body(id);
      });
    }
  });
  Counts c;
  EventBatch got;
  size_t settled = 0;
  for (int spins = 0; spins < 2000 && settled < kRequests; ++spins) {
    w.wait_for_ms(10);
    while (t->take(&got)) {
      count_records(got, &c);
      settled += got.settled();
      got.clear();
    }
  }
  producer.join();
  CHECK_EQ(settled, static_cast<size_t>(kRequests));
  CHECK_EQ(c.complete + c.error, static_cast<size_t>(kRequests));
  t->release_and_join();
}
