// ConnectionPool decisions, driven by a fake driver (no sockets): LIFO reuse, FIFO waiters,
// per-key and total limits, eviction of another key's idle connection, liveness checks,
// fresh-only retries, and the blocked-key queue.
#include <string>
#include <vector>

#include "check.h"
#include "pool/connection_pool.h"

namespace {

struct FakeConn {
  int id;
  uint64_t since = 0;
  bool alive = true;
  uint32_t uses = 1;
  uint64_t idle_since() const { return since; }
  uint32_t served() const { return uses; }
};
struct FakeReq {
  int id;
  bool fresh = false;
};

using Pool = uvf::ConnectionPool<FakeConn, FakeReq>;

struct FakeDriver : Pool::Driver {
  Pool* pool = nullptr;
  std::vector<std::string> log;
  std::vector<FakeConn*> discarded;
  std::vector<std::pair<FakeConn*, FakeReq*>> assigned;
  int opened = 0;
  bool is_alive(FakeConn* c) override { return c->alive; }
  void discard(Pool::Key& k, FakeConn* c) override {
    discarded.push_back(c);
    log.push_back("discard " + std::to_string(c->id) + " " + k.key);
  }
  void open_connection(Pool::Key& k, FakeReq* r) override {
    ++opened;
    log.push_back("open " + k.key + " for " + std::to_string(r->id));
  }
  void assign(Pool::Key&, FakeConn* c, FakeReq* r) override { assigned.emplace_back(c, r); }
  bool wants_fresh(FakeReq* r) override { return r->fresh; }
  bool fds_available = true;
  bool can_open() override { return fds_available; }
  uint64_t clock = 0;
  uint64_t now_ms() override { return clock; }
  uint64_t wake = 0;
  void wake_at(uint64_t at) override { wake = at; }
};

uvf::PoolKeyInfo info(const char* host, uint16_t port) {
  uvf::PoolKeyInfo i;
  i.host = host;
  i.port = port;
  i.authority = host;
  return i;
}

}  // namespace

TEST(pool_key_includes_scheme_host_port) {
  auto a = info("a.test", 80);
  auto b = info("a.test", 81);
  auto c = info("a.test", 80);
  c.tls = true;
  CHECK(a.key() != b.key());
  CHECK(a.key() != c.key());
  CHECK_EQ(a.key(), info("a.test", 80).key());
}

TEST(pool_opens_one_connection_per_waiter_up_to_per_key_limit) {
  Pool pool({10, 2});
  FakeDriver d;
  auto& k = pool.key("k", info("h", 1));
  FakeReq r1{1}, r2{2}, r3{3};
  pool.enqueue(k, &r1);
  pool.enqueue(k, &r2);
  pool.enqueue(k, &r3);
  pool.dispatch(k, d);
  CHECK_EQ(d.opened, 2);
  CHECK_EQ(k.open, 2u);
  CHECK_EQ(k.connecting, 2u);
  CHECK_EQ(pool.total_waiting(), 3u);  // connections are still being opened
  // Dispatching again must not open more while those connects are pending.
  pool.dispatch(k, d);
  CHECK_EQ(d.opened, 2);
}

TEST(pool_reuses_idle_lifo_and_serves_waiters_fifo) {
  Pool pool({10, 10});
  FakeDriver d;
  auto& k = pool.key("k", info("h", 1));
  FakeConn c1{1, 100}, c2{2, 200};
  pool.connection_opened(k);
  pool.connect_finished(k);
  pool.connection_opened(k);
  pool.connect_finished(k);
  pool.park_idle(k, &c1);
  pool.park_idle(k, &c2);
  FakeReq r1{1}, r2{2};
  pool.enqueue(k, &r1);
  pool.enqueue(k, &r2);
  pool.dispatch(k, d);
  CHECK_EQ(d.assigned.size(), 2u);
  CHECK(d.assigned[0].first == &c2);  // most recently used first
  CHECK(d.assigned[0].second == &r1);  // oldest waiter first
  CHECK(d.assigned[1].first == &c1);
  CHECK(d.assigned[1].second == &r2);
  CHECK_EQ(pool.total_idle(), 0u);
  CHECK_EQ(d.opened, 0);
}

TEST(pool_discards_dead_idle_connections_before_reuse) {
  Pool pool({10, 10});
  FakeDriver d;
  auto& k = pool.key("k", info("h", 1));
  FakeConn c1{1, 1}, c2{2, 2};
  c2.alive = false;
  for (int i = 0; i < 2; ++i) {
    pool.connection_opened(k);
    pool.connect_finished(k);
  }
  pool.park_idle(k, &c1);
  pool.park_idle(k, &c2);
  FakeReq r{1};
  pool.enqueue(k, &r);
  pool.dispatch(k, d);
  CHECK_EQ(d.discarded.size(), 1u);
  CHECK(d.discarded[0] == &c2);
  CHECK_EQ(d.assigned.size(), 1u);
  CHECK(d.assigned[0].first == &c1);
}

TEST(pool_total_limit_evicts_oldest_idle_of_another_key) {
  Pool pool({2, 10});
  FakeDriver d;
  auto& a = pool.key("a", info("a", 1));
  auto& b = pool.key("b", info("b", 1));
  FakeConn a1{1, 50}, a2{2, 10};
  for (int i = 0; i < 2; ++i) {
    pool.connection_opened(a);
    pool.connect_finished(a);
  }
  pool.park_idle(a, &a2);
  pool.park_idle(a, &a1);
  FakeReq r{1};
  pool.enqueue(b, &r);
  pool.dispatch(b, d);
  // a2 has been idle longest: it goes; the new connection waits for its close to be counted.
  CHECK_EQ(d.discarded.size(), 1u);
  CHECK(d.discarded[0] == &a2);
  CHECK_EQ(pool.evictions(), 1u);
  CHECK_EQ(d.opened, 0);
  CHECK(b.blocked_on_total);  // it waits for the victim's close, first in line
  pool.connection_closed(a);
  pool.serve_blocked(d);
  CHECK_EQ(d.opened, 1);
  CHECK(!b.blocked_on_total);
}

TEST(pool_blocked_key_evicts_a_connection_that_turned_idle) {
  Pool pool({1, 10});
  FakeDriver d;
  auto& a = pool.key("a", info("a", 1));
  auto& b = pool.key("b", info("b", 1));
  FakeConn a1{1, 5};
  pool.connection_opened(a);
  pool.connect_finished(a);  // a1 busy
  FakeReq rb{2};
  pool.enqueue(b, &rb);
  pool.dispatch(b, d);
  CHECK(b.blocked_on_total);
  pool.park_idle(a, &a1);  // a1's request finished: now idle
  pool.serve_blocked(d);
  CHECK_EQ(d.discarded.size(), 1u);
  CHECK(d.discarded[0] == &a1);
  CHECK(b.blocked_on_total);  // until a1's close is counted
  pool.connection_closed(a);
  pool.serve_blocked(d);
  CHECK_EQ(d.opened, 1);
}

TEST(pool_blocked_key_is_served_when_capacity_frees) {
  Pool pool({1, 10});
  FakeDriver d;
  auto& a = pool.key("a", info("a", 1));
  auto& b = pool.key("b", info("b", 1));
  FakeReq ra{1}, rb{2};
  pool.enqueue(a, &ra);
  pool.dispatch(a, d);
  CHECK_EQ(d.opened, 1);
  pool.enqueue(b, &rb);
  pool.dispatch(b, d);  // total limit, nothing idle: b is blocked
  CHECK_EQ(d.opened, 1);
  CHECK(b.blocked_on_total);
  pool.connect_finished(a);
  pool.connection_closed(a);
  pool.serve_blocked(d);
  CHECK_EQ(d.opened, 2);
  CHECK(!b.blocked_on_total);
}

TEST(pool_fresh_only_waiter_skips_idle_connections) {
  Pool pool({10, 1});
  FakeDriver d;
  auto& k = pool.key("k", info("h", 1));
  FakeConn c{1, 1};
  pool.connection_opened(k);
  pool.connect_finished(k);
  pool.park_idle(k, &c);
  FakeReq retry{1};
  retry.fresh = true;
  pool.enqueue(k, &retry, /*front=*/true);
  pool.dispatch(k, d);
  // Per-key limit 1 is taken by the idle connection: it is displaced for a fresh one.
  CHECK_EQ(d.assigned.size(), 0u);
  CHECK_EQ(d.discarded.size(), 1u);
  pool.connection_closed(k);
  pool.dispatch(k, d);
  CHECK_EQ(d.opened, 1);
}

TEST(pool_remove_waiter_and_unpark) {
  Pool pool({10, 10});
  auto& k = pool.key("k", info("h", 1));
  FakeReq r1{1}, r2{2};
  pool.enqueue(k, &r1);
  pool.enqueue(k, &r2);
  CHECK(pool.remove_waiter(k, &r1));
  CHECK(!pool.remove_waiter(k, &r1));
  CHECK_EQ(pool.total_waiting(), 1u);
  CHECK(pool.pop_waiter(k) == &r2);
  FakeConn c{1, 0};
  pool.park_idle(k, &c);
  CHECK(pool.unpark(k, &c));
  CHECK(!pool.unpark(k, &c));
  CHECK_EQ(pool.total_idle(), 0u);
}

TEST(pool_prunes_only_empty_keys) {
  Pool pool({10, 10});
  auto& a = pool.key("a", info("a", 1));
  pool.key("b", info("b", 1));
  FakeReq r{1};
  pool.enqueue(a, &r);
  pool.prune_empty_keys();
  CHECK_EQ(pool.key_count(), 1u);
}

TEST(pool_without_file_descriptors_keys_wait_blocked) {
  Pool pool({10, 10});
  FakeDriver d;
  d.fds_available = false;
  auto& k = pool.key("k", info("h", 1));
  FakeReq r{1};
  pool.enqueue(k, &r);
  pool.dispatch(k, d);
  CHECK_EQ(d.opened, 0);
  CHECK(k.blocked_on_total);
  CHECK_EQ(pool.total_waiting(), 1u);  // the request waits; it does not fail
  d.fds_available = true;
  pool.serve_blocked(d);
  CHECK_EQ(d.opened, 1);
}

TEST(pool_external_slots_share_the_total_limit) {
  Pool pool({2, 10});
  FakeDriver d;
  auto& a = pool.key("a", info("a", 1));
  // Two external sockets (raw connections) fill the total: a pooled key must wait.
  CHECK(pool.take_external(d));
  CHECK(pool.take_external(d));
  CHECK(pool.total_full());
  CHECK(!pool.take_external(d));  // nothing idle to evict: the caller waits
  CHECK(d.discarded.empty());
  FakeReq r{1};
  pool.enqueue(a, &r);
  pool.dispatch(a, d);
  CHECK_EQ(d.opened, 0);
  CHECK(a.blocked_on_total);
  pool.release_external();
  pool.serve_blocked(d);
  CHECK_EQ(d.opened, 1);
  CHECK_EQ(pool.external(), 1u);
}

TEST(pool_external_slot_evicts_the_oldest_idle_connection) {
  Pool pool({1, 10});
  FakeDriver d;
  auto& a = pool.key("a", info("a", 1));
  FakeConn a1{1, 7};
  pool.connection_opened(a);
  pool.connect_finished(a);
  pool.park_idle(a, &a1);
  CHECK_EQ(pool.evictions(), 0u);
  CHECK(!pool.take_external(d));  // the idle connection goes; its close frees the slot
  CHECK_EQ(d.discarded.size(), 1u);
  CHECK_EQ(pool.evictions(), 1u);
  CHECK(d.discarded[0] == &a1);
  CHECK_EQ(pool.total_idle(), 0u);
  pool.connection_closed(a);
  CHECK(pool.take_external(d));
  CHECK_EQ(pool.external(), 1u);
  pool.release_external();
  pool.release_external();  // never below zero
  CHECK_EQ(pool.external(), 0u);
}

TEST(pool_key_with_busy_connections_waits_instead_of_evicting_warm_idle) {
  // The crawl case: the total limit equals the requests in flight. b already has a (busy)
  // connection: it queues behind it rather than closing a's just-idled socket.
  Pool pool({2, 10});
  FakeDriver d;
  d.clock = 5000;
  auto& a = pool.key("a", info("a", 1));
  auto& b = pool.key("b", info("b", 1));
  FakeConn a1{1, 4900}, b1{2, 0};
  pool.connection_opened(a);
  pool.connect_finished(a);
  pool.park_idle(a, &a1);  // idle 100 ms: warm
  pool.connection_opened(b);
  pool.connect_finished(b);  // b1 busy
  FakeReq r{1};
  pool.enqueue(b, &r);
  pool.dispatch(b, d);
  CHECK(d.discarded.empty());
  CHECK_EQ(d.opened, 0);
  CHECK(b.blocked_on_total);
  CHECK_EQ(pool.next_cold_at(), 5900u);
  CHECK_EQ(d.wake, 5900u);  // the driver is asked to come back when a1 turns cold
  // b's own connection finishes its request: the waiter takes it.
  pool.park_idle(b, &b1);
  pool.dispatch(b, d);
  CHECK_EQ(d.assigned.size(), 1u);
  CHECK(d.assigned[0].first == &b1);
  CHECK(d.discarded.empty());
}

TEST(pool_key_with_busy_connections_takes_a_cold_idle_socket) {
  Pool pool({2, 10});
  FakeDriver d;
  auto& a = pool.key("a", info("a", 1));
  auto& b = pool.key("b", info("b", 1));
  FakeConn a1{1, 1000};
  pool.connection_opened(a);
  pool.connect_finished(a);
  pool.park_idle(a, &a1);
  pool.connection_opened(b);
  pool.connect_finished(b);  // busy
  FakeReq r{1};
  pool.enqueue(b, &r);
  d.clock = 1999;  // idle 999 ms: still warm
  pool.dispatch(b, d);
  CHECK(d.discarded.empty());
  CHECK(b.blocked_on_total);
  d.clock = 2000;  // cold now: any key may take it
  pool.serve_blocked(d);
  CHECK_EQ(d.discarded.size(), 1u);
  CHECK(d.discarded[0] == &a1);
  pool.connection_closed(a);
  pool.serve_blocked(d);
  CHECK_EQ(d.opened, 1);
}

TEST(pool_key_without_connections_evicts_from_the_key_with_most_idle) {
  Pool pool({3, 10});
  FakeDriver d;
  d.clock = 100;
  auto& a = pool.key("a", info("a", 1));
  auto& b = pool.key("b", info("b", 1));
  auto& c = pool.key("c", info("c", 1));
  FakeConn a1{1, 10}, b1{2, 50}, b2{3, 60};
  for (int i = 0; i < 1; ++i) {
    pool.connection_opened(a);
    pool.connect_finished(a);
  }
  for (int i = 0; i < 2; ++i) {
    pool.connection_opened(b);
    pool.connect_finished(b);
  }
  pool.park_idle(a, &a1);  // oldest overall, but a's only socket
  pool.park_idle(b, &b1);
  pool.park_idle(b, &b2);
  FakeReq r{1};
  pool.enqueue(c, &r);
  pool.dispatch(c, d);
  CHECK_EQ(d.discarded.size(), 1u);
  CHECK(d.discarded[0] == &b1);  // b has two idle: its oldest goes
}

TEST(pool_room_an_eviction_makes_is_held_for_the_evicting_key) {
  Pool pool({2, 10});
  FakeDriver d;
  d.clock = 100;
  auto& a = pool.key("a", info("a", 1));
  auto& b = pool.key("b", info("b", 1));
  auto& c = pool.key("c", info("c", 1));
  FakeConn a1{1, 10}, a2{2, 20};
  for (int i = 0; i < 2; ++i) {
    pool.connection_opened(a);
    pool.connect_finished(a);
  }
  pool.park_idle(a, &a1);
  pool.park_idle(a, &a2);
  FakeReq rb{1}, rb2{2}, rc{3};
  pool.enqueue(b, &rb);
  pool.dispatch(b, d);  // b has nothing: it closes one of a's idle sockets and waits for the room
  CHECK_EQ(d.discarded.size(), 1u);
  CHECK(d.discarded[0] == &a1);
  CHECK_EQ(b.pending, 1u);
  CHECK_EQ(pool.pending_victims(), 1u);
  pool.enqueue(b, &rb2);
  pool.dispatch(b, d);  // dispatched again while its room is on its way: nothing more closed
  CHECK_EQ(d.discarded.size(), 1u);
  pool.connection_closed(a, &a1, false);  // the victim is gone: one slot free, held for b
  CHECK_EQ(b.held, 1u);
  CHECK_EQ(pool.held(), 1u);
  pool.enqueue(c, &rc);
  pool.dispatch(c, d);  // c, submitted before the blocked keys are served, must not take it
  CHECK_EQ(d.opened, 0);
  CHECK_EQ(d.discarded.size(), 2u);  // c closes a's other idle socket for its own room
  CHECK_EQ(c.pending, 1u);
  pool.serve_blocked(d);
  CHECK_EQ(d.opened, 1);  // b, in the room it made (its second request waits behind it)
  CHECK_EQ(b.reserved(), 0u);
  CHECK(!b.evicted);
  pool.connection_closed(a, &a2, false);
  pool.serve_blocked(d);
  CHECK_EQ(d.opened, 2);  // c
  CHECK_EQ(pool.held(), 0u);
  CHECK_EQ(pool.pending_victims(), 0u);
  CHECK_EQ(pool.evictions(), 2u);
}

TEST(pool_held_room_goes_back_when_the_evicting_key_no_longer_waits) {
  Pool pool({1, 10});
  FakeDriver d;
  auto& a = pool.key("a", info("a", 1));
  auto& b = pool.key("b", info("b", 1));
  auto& c = pool.key("c", info("c", 1));
  FakeConn a1{1, 10};
  pool.connection_opened(a);
  pool.connect_finished(a);
  pool.park_idle(a, &a1);
  FakeReq rb{1}, rc{2};
  pool.enqueue(b, &rb);
  pool.dispatch(b, d);
  CHECK_EQ(b.pending, 1u);
  CHECK(!pool.take_released());
  pool.connection_closed(a, &a1, false);
  CHECK_EQ(b.held, 1u);
  pool.enqueue(c, &rc);
  pool.dispatch(c, d);  // the room is b's
  CHECK_EQ(d.opened, 0);
  CHECK(pool.remove_waiter(b, &rb));  // b's request was aborted
  CHECK_EQ(b.reserved(), 0u);
  CHECK_EQ(pool.held(), 0u);
  CHECK(pool.take_released());  // the driver serves the blocked keys
  CHECK(!pool.take_released());
  pool.serve_blocked(d);
  CHECK_EQ(d.opened, 1);  // c
}

TEST(pool_victim_closing_after_its_key_was_served_otherwise_holds_nothing) {
  Pool pool({2, 10});
  FakeDriver d;
  auto& a = pool.key("a", info("a", 1));
  auto& b = pool.key("b", info("b", 1));
  FakeConn a1{1, 10}, a2{2, 20};
  for (int i = 0; i < 2; ++i) {
    pool.connection_opened(a);
    pool.connect_finished(a);
  }
  pool.park_idle(a, &a1);  // a2 is busy
  FakeReq rb{1};
  pool.enqueue(b, &rb);
  pool.dispatch(b, d);
  CHECK_EQ(b.pending, 1u);
  pool.connection_closed(a, &a2, false);  // a's busy connection closed first (the server's doing)
  pool.serve_blocked(d);
  CHECK_EQ(d.opened, 1);  // b opens in that room
  CHECK_EQ(b.pending, 0u);
  pool.connection_closed(a, &a1, false);  // the victim's slot is nobody's
  CHECK_EQ(pool.held(), 0u);
  CHECK_EQ(pool.pending_victims(), 0u);
  CHECK(!pool.total_full());
}

TEST(pool_room_made_by_an_eviction_goes_to_the_key_that_evicted) {
  Pool pool({2, 10});
  FakeDriver d;
  d.clock = 100;
  auto& a = pool.key("a", info("a", 1));
  auto& b = pool.key("b", info("b", 1));
  auto& c = pool.key("c", info("c", 1));
  FakeConn b1{2, 90};
  pool.connection_opened(a);
  pool.connect_finished(a);  // a's connection is busy
  pool.connection_opened(b);
  pool.connect_finished(b);  // b1 busy
  FakeReq ra{1}, rc{2};
  pool.enqueue(a, &ra);
  pool.dispatch(a, d);  // a waits behind its own busy connection
  CHECK(a.blocked_on_total);
  pool.park_idle(b, &b1);  // b1 idle, warm
  pool.enqueue(c, &rc);
  pool.dispatch(c, d);  // c has nothing: it evicts b1 and waits for the room
  CHECK_EQ(d.discarded.size(), 1u);
  CHECK(c.evicted);
  pool.connection_closed(b);
  pool.serve_blocked(d);  // a blocked first, but the room is c's
  CHECK_EQ(d.opened, 1);
  CHECK_EQ(d.log.back(), std::string("open c for 2"));
  CHECK(!c.evicted);
  CHECK(a.blocked_on_total);  // still behind its own connection; nothing else was evicted
  CHECK_EQ(d.discarded.size(), 1u);
}

TEST(pool_warm_eviction_spares_a_connection_that_never_carried_a_request) {
  Pool pool({3, 10});
  FakeDriver d;
  d.clock = 100;
  auto& a = pool.key("a", info("a", 1));
  auto& c = pool.key("c", info("c", 1));
  FakeConn fresh{1, 10}, used1{2, 50}, used2{3, 60};
  fresh.uses = 0;  // opened for a waiter another connection served first
  for (int i = 0; i < 3; ++i) {
    pool.connection_opened(a);
    pool.connect_finished(a);
  }
  pool.park_idle(a, &fresh);
  pool.park_idle(a, &used1);
  pool.park_idle(a, &used2);
  FakeReq r{1};
  pool.enqueue(c, &r);
  pool.dispatch(c, d);
  CHECK_EQ(d.discarded.size(), 1u);
  CHECK(d.discarded[0] == &used1);  // the oldest that has carried a request
  // Once it is cold, a never-used connection is fair game like any other.
  FakeReq r2{2};
  auto& e = pool.key("e", info("e", 1));
  pool.enqueue(e, &r2);
  d.clock = 1010;
  pool.dispatch(e, d);
  CHECK_EQ(d.discarded.size(), 2u);
  CHECK(d.discarded[1] == &fresh);
}

TEST(pool_closing_connections_leave_open_now_but_keep_their_slot) {
  Pool pool({2, 10});
  auto& a = pool.key("a", info("a", 1));
  pool.connection_opened(a);
  pool.connect_finished(a);
  pool.connection_opened(a);
  pool.connect_finished(a);
  pool.connection_closing(a);
  CHECK_EQ(pool.total_open(), 2u);      // the descriptor is not released yet
  CHECK_EQ(pool.total_open_now(), 1u);  // but nobody should see it as open
  CHECK(pool.total_full());
  pool.connection_closed(a, /*was_closing=*/true);
  CHECK_EQ(pool.total_open(), 1u);
  CHECK_EQ(pool.total_open_now(), 1u);
  CHECK_EQ(a.closing, 0u);
}
