// ConnectionPool with connections that carry many requests at once (capacity > 1): waiters count
// on connections still connecting, a connection with room stays listed while busy, and only
// connections carrying nothing are probed, evicted or counted idle. One-request connections are
// covered by test_connection_pool.cc.
#include <string>
#include <vector>

#include "check.h"
#include "pool/connection_pool.h"

namespace {

struct MuxConn {
  int id;
  size_t cap = 100;
  size_t streams = 0;
  bool open = true;
  uint64_t since = 0;
  uint32_t uses = 0;
  uint64_t idle_since() const { return since; }
  uint32_t served() const { return uses; }
  size_t capacity() const { return cap; }
  size_t active() const { return streams; }
  bool has_room() const { return open && streams < cap; }
};
struct Req {
  int id;
};

using Pool = uvf::ConnectionPool<MuxConn, Req>;

struct Driver : Pool::Driver {
  int opened = 0;
  int probes = 0;
  std::vector<std::pair<MuxConn*, Req*>> assigned;
  std::vector<MuxConn*> discarded;
  bool is_alive(MuxConn*) override {
    ++probes;
    return true;
  }
  void discard(Pool::Key&, MuxConn* c) override { discarded.push_back(c); }
  void open_connection(Pool::Key&, Req*) override { ++opened; }
  void assign(Pool::Key&, MuxConn* c, Req* r) override {
    ++c->streams;
    ++c->uses;
    assigned.emplace_back(c, r);
  }
  bool wants_fresh(Req*) override { return false; }
  bool can_open() override { return true; }
  uint64_t now_ms() override { return 0; }
  void wake_at(uint64_t) override {}
};

uvf::PoolKeyInfo info(const char* host) {
  uvf::PoolKeyInfo i;
  i.host = host;
  i.port = 443;
  i.tls = true;
  i.authority = host;
  return i;
}

}  // namespace

TEST(pool_capacity_100_waiters_at_once_open_one_connection) {
  Pool pool({256, 64});
  Driver d;
  auto& k = pool.key("k", info("h"));
  pool.learned_capacity(k, 100);  // e.g. an earlier connection of this origin carried 100
  std::vector<Req> reqs(101);
  for (int i = 0; i < 100; ++i) {
    reqs[i].id = i;
    pool.enqueue(k, &reqs[i]);
  }
  pool.dispatch(k, d);
  CHECK_EQ(d.opened, 1);
  CHECK_EQ(k.connecting, size_t{1});
  CHECK_EQ(pool.total_waiting(), size_t{100});
  // The 101st waiter does not fit on the connection being opened: one more.
  reqs[100].id = 100;
  pool.enqueue(k, &reqs[100]);
  pool.dispatch(k, d);
  CHECK_EQ(d.opened, 2);
  // The first connects: it takes 100 waiters (oldest first) and, full, is not listed.
  MuxConn c1{1};
  CHECK_EQ(pool.connected(k, &c1, d), size_t{100});
  CHECK_EQ(c1.streams, size_t{100});
  CHECK_EQ(d.assigned.front().second->id, 0);
  CHECK_EQ(d.assigned.back().second->id, 99);
  CHECK_EQ(k.idle.size(), size_t{0});
  CHECK_EQ(pool.total_waiting(), size_t{1});
  // The second takes the last one and stays listed: it has room for 99 more.
  MuxConn c2{2};
  CHECK_EQ(pool.connected(k, &c2, d), size_t{1});
  CHECK_EQ(k.idle.size(), size_t{1});
  CHECK_EQ(k.connecting, size_t{0});
  CHECK_EQ(d.probes, 0);  // just connected: nothing to probe
}

TEST(pool_capacity_learned_from_the_first_connection) {
  Pool pool({256, 64});
  Driver d;
  auto& k = pool.key("k", info("h"));
  // Capacity unknown: one waiter, one connection, which turns out to carry 100.
  Req first{0};
  pool.enqueue(k, &first);
  pool.dispatch(k, d);
  CHECK_EQ(d.opened, 1);
  MuxConn c1{1};
  CHECK_EQ(pool.connected(k, &c1, d), size_t{1});
  CHECK_EQ(k.capacity_hint, size_t{100});
  CHECK_EQ(k.idle.size(), size_t{1});  // busy, with room: listed
  // 150 more at once: 99 go to c1 without a probe (it carries requests), 51 wait on one new one.
  std::vector<Req> reqs(150);
  for (int i = 0; i < 150; ++i) {
    reqs[i].id = i + 1;
    pool.enqueue(k, &reqs[i]);
  }
  pool.dispatch(k, d);
  CHECK_EQ(c1.streams, size_t{100});
  CHECK_EQ(d.probes, 0);
  CHECK_EQ(k.idle.size(), size_t{0});  // full: no longer listed
  CHECK_EQ(d.opened, 2);
  CHECK_EQ(pool.total_waiting(), size_t{51});
}

TEST(pool_capacity_room_again_lists_once_and_idle_is_probed) {
  Pool pool({256, 64});
  Driver d;
  auto& k = pool.key("k", info("h"));
  pool.connection_opened(k);
  MuxConn c{1, 2};
  CHECK_EQ(pool.connected(k, &c, d), size_t{0});
  pool.park_idle(k, &c);  // the driver parks a connection that took nothing
  Req a{1}, b{2}, x{3};
  pool.enqueue(k, &a);
  pool.enqueue(k, &b);
  pool.enqueue(k, &x);
  pool.dispatch(k, d);
  CHECK_EQ(d.probes, 1);  // it carried nothing: probed once, before the first request
  CHECK_EQ(c.streams, size_t{2});
  CHECK_EQ(k.idle.size(), size_t{0});
  CHECK_EQ(d.opened, 1);  // c is full: x waits on a new connection (room for 2)
  CHECK_EQ(pool.total_waiting(), size_t{1});
  // One stream ends: c has room again, listed once even when told twice.
  --c.streams;
  pool.has_room_again(k, &c);
  pool.has_room_again(k, &c);
  CHECK_EQ(k.idle.size(), size_t{1});
  CHECK_EQ(pool.total_idle(), size_t{1});
  pool.dispatch(k, d);
  CHECK_EQ(c.streams, size_t{2});  // x went to the open connection first
  CHECK_EQ(d.probes, 1);  // busy with room: no probe
  CHECK_EQ(pool.total_waiting(), size_t{0});
  CHECK_EQ(k.idle.size(), size_t{0});
}

TEST(pool_capacity_busy_connections_are_never_evicted) {
  Pool pool({1, 64});
  Driver d;
  auto& a = pool.key("a", info("a"));
  auto& b = pool.key("b", info("b"));
  pool.connection_opened(a);
  MuxConn c{1, 10};
  Req r{1};
  pool.enqueue(a, &r);
  CHECK_EQ(pool.connected(a, &c, d), size_t{1});
  CHECK_EQ(a.idle.size(), size_t{1});  // listed: room for 9 more
  // Another key at the total limit finds no idle connection to evict (c carries a request).
  Req other{2};
  pool.enqueue(b, &other);
  pool.dispatch(b, d);
  CHECK_EQ(d.discarded.size(), size_t{0});
  CHECK(b.blocked_on_total);
  CHECK_EQ(pool.next_cold_at(), UINT64_MAX);
  CHECK(!pool.take_external(d));
  CHECK_EQ(d.discarded.size(), size_t{0});
  // Once it carries nothing it is idle like any other, and evictable.
  c.streams = 0;
  CHECK(pool.take_external(d) == false);
  CHECK_EQ(d.discarded.size(), size_t{1});
}
