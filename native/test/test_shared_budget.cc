// pool/shared_budget.h on one thread (the cross-thread runs are in tsan_shared_budget.cc): slots,
// waiting and wake-ups, reservations and grants, evictions asked of another member, leaving with
// slots held, the descriptor state; and two ConnectionPools sharing one budget, driven by fake
// drivers: the total holds across them, a key blocked in one pool gets a slot freed in the other,
// and an idle socket of the other pool is closed for it by the pool's own (cold) rules.
#include <string>
#include <vector>

#include "check.h"
#include "pool/connection_pool.h"
#include "pool/shared_budget.h"

namespace {

using uvf::SharedBudget;

struct Wakes {
  int n = 0;
  std::function<void()> fn() {
    return [this] { ++n; };
  }
};

struct FakeConn {
  int id;
  uint64_t since = 0;
  uint32_t uses = 1;
  uint64_t idle_since() const { return since; }
  uint32_t served() const { return uses; }
};
struct FakeReq {
  int id;
};
using Pool = uvf::ConnectionPool<FakeConn, FakeReq>;

struct FakeDriver : Pool::Driver {
  std::vector<FakeConn*> discarded;
  std::vector<std::string> opened;
  bool is_alive(FakeConn*) override { return true; }
  void discard(Pool::Key&, FakeConn* c) override { discarded.push_back(c); }
  void open_connection(Pool::Key& k, FakeReq*) override { opened.push_back(k.key); }
  void assign(Pool::Key&, FakeConn*, FakeReq*) override {}
  bool wants_fresh(FakeReq*) override { return false; }
  bool can_open() override { return true; }
  uint64_t clock = 0;
  uint64_t now_ms() override { return clock; }
  uint64_t wake = 0;
  void wake_at(uint64_t at) override { wake = at; }
};

uvf::PoolKeyInfo info(const char* host) {
  uvf::PoolKeyInfo i;
  i.host = host;
  i.port = 80;
  i.authority = host;
  return i;
}

}  // namespace

TEST(shared_budget_slots_up_to_total_then_waiting_and_woken) {
  SharedBudget b(2);
  Wakes wa, wb;
  auto a = b.join(wa.fn());
  auto c = b.join(wb.fn());
  CHECK(b.take(a));
  CHECK(b.take(c));
  CHECK_EQ(b.used(), 2u);
  CHECK(!b.has_room(a));
  CHECK(!b.take(a));  // a waits; the others were woken to publish their idle sockets
  CHECK(b.anyone_waiting());
  CHECK_EQ(wb.n, 1);
  CHECK_EQ(wa.n, 0);
  CHECK(!b.take(a));  // still waiting: no second round of wake-ups
  CHECK_EQ(wb.n, 1);
  b.release(c);  // the free slot wakes the waiter
  CHECK_EQ(wa.n, 1);
  CHECK(!b.anyone_waiting());
  CHECK(b.take(a));
  CHECK_EQ(b.held(a), 2u);
  CHECK_EQ(b.used(), 2u);
  b.release(a);
  b.release(a);
  b.release(a);  // more than held: ignored
  CHECK_EQ(b.used(), 0u);
}

TEST(shared_budget_wait_unless_room_registers_only_when_full) {
  SharedBudget b(1);
  Wakes wa, wb;
  auto a = b.join(wa.fn());
  auto c = b.join(wb.fn());
  CHECK(!b.wait_unless_room(a));  // a free slot: retry instead of waiting
  CHECK(b.take(c));
  CHECK(b.wait_unless_room(a));
  b.release(c);
  CHECK_EQ(wa.n, 1);
}

TEST(shared_budget_reserved_room_goes_to_the_member_that_evicted) {
  SharedBudget b(2);
  Wakes wa, wb;
  auto a = b.join(wa.fn());
  auto c = b.join(wb.fn());
  CHECK(b.take(a));
  CHECK(b.take(a));
  CHECK(!b.take(c));  // c waits for room
  b.reserve(a);       // a closes one of its idle sockets for a key of its own
  b.release(a);       // that slot is a's, not free
  CHECK_EQ(b.used(), 2u);
  CHECK(!b.has_room(c));
  CHECK(b.has_room(a));
  CHECK(!b.take(c));
  CHECK(b.take(a));  // the grant
  CHECK_EQ(b.held(a), 2u);
  // A grant a no longer needs goes back, and the waiter is woken.
  b.reserve(a);
  b.release(a);
  int before = wb.n;
  b.drop_grants(a);
  CHECK_EQ(b.used(), 1u);
  CHECK(wb.n > before);
  CHECK(b.take(c));
}

TEST(shared_budget_eviction_goes_to_the_member_with_the_oldest_idle_socket) {
  SharedBudget b(3);
  Wakes w1, w2, w3;
  auto m1 = b.join(w1.fn());
  auto m2 = b.join(w2.fn());
  auto m3 = b.join(w3.fn());
  CHECK(b.take(m1));
  CHECK(b.take(m2));
  CHECK(b.take(m2));
  b.publish_idle(m1, 1, 500);
  b.publish_idle(m2, 2, 300);
  CHECK_EQ(b.oldest_idle_elsewhere(m3), 300u);
  CHECK_EQ(b.oldest_idle_elsewhere(m2), 500u);
  // Cold only (the requester's key has connections of its own): nothing idle since before 200.
  CHECK(!b.request_eviction(m3, true, 200));
  int w2_before = w2.n;
  CHECK(b.request_eviction(m3, true, 400));
  CHECK(w2.n > w2_before);
  CHECK(!b.request_eviction(m3, false, 0));  // one at a time
  std::vector<SharedBudget::Eviction> ev;
  b.take_evictions(m1, &ev);
  CHECK(ev.empty());
  b.take_evictions(m2, &ev);
  CHECK_EQ(ev.size(), 1u);
  CHECK(ev[0].for_member == m3);
  CHECK(ev[0].cold_only);
  // m2 closes the socket: its slot is m3's.
  int w3_before = w3.n;
  b.release(m2);
  CHECK(w3.n > w3_before);
  CHECK_EQ(b.used(), 3u);
  CHECK(b.take(m3));
  CHECK(b.request_eviction(m3, false, 0));  // settled: may ask again
}

TEST(shared_budget_failed_eviction_wakes_the_requester_and_frees_its_turn) {
  SharedBudget b(1);
  Wakes w1, w2;
  auto m1 = b.join(w1.fn());
  auto m2 = b.join(w2.fn());
  CHECK(b.take(m1));
  b.publish_idle(m1, 1, 10);
  CHECK(b.request_eviction(m2, false, 0));
  std::vector<SharedBudget::Eviction> ev;
  b.take_evictions(m1, &ev);
  CHECK_EQ(ev.size(), 1u);
  int before = w2.n;
  b.eviction_failed(ev[0]);  // the idle socket was reused meanwhile
  CHECK(w2.n > before);
  b.release(m1);  // no reservation left: the slot is free
  CHECK_EQ(b.used(), 0u);
}

TEST(shared_budget_leave_returns_slots_and_settles_evictions) {
  SharedBudget b(2);
  Wakes w1, w2;
  auto m1 = b.join(w1.fn());
  auto m2 = b.join(w2.fn());
  CHECK(b.take(m1));
  CHECK(b.take(m1));
  b.publish_idle(m1, 2, 10);
  CHECK(b.request_eviction(m2, false, 0));
  int before = w2.n;
  b.leave(m1);  // its two slots come back; the eviction asked of it will not happen
  CHECK(w2.n > before);
  CHECK_EQ(b.used(), 0u);
  CHECK(b.take(m2));
  CHECK(b.take(m2));
  b.leave(m2);
  CHECK_EQ(b.used(), 0u);
}

TEST(shared_budget_descriptor_state_is_shared) {
  SharedBudget b(4);
  Wakes w1, w2;
  auto m1 = b.join(w1.fn());
  b.join(w2.fn());
  CHECK(!b.fd_blocked());
  b.fd_wait(m1);
  CHECK(b.fd_blocked());
  b.fd_returned();  // a descriptor came back anywhere: the members that waited look again
  CHECK(!b.fd_blocked());
  CHECK_EQ(w1.n, 1);
  CHECK_EQ(w2.n, 0);
}

TEST(shared_budget_two_pools_hold_one_total) {
  SharedBudget b(3);
  Wakes w1, w2;
  Pool p1({100, 10}), p2({100, 10});  // their own totals are not consulted
  p1.share(&b, b.join(w1.fn()));
  p2.share(&b, b.join(w2.fn()));
  FakeDriver d1, d2;
  auto& a = p1.key("a", info("a"));
  auto& x = p2.key("x", info("x"));
  FakeReq ra[2] = {{1}, {2}}, rx[2] = {{3}, {4}};
  for (auto& r : ra) p1.enqueue(a, &r);
  p1.dispatch(a, d1);
  CHECK_EQ(d1.opened.size(), 2u);
  for (auto& r : rx) p2.enqueue(x, &r);
  p2.dispatch(x, d2);
  CHECK_EQ(d2.opened.size(), 1u);  // the third slot; the fourth request waits
  CHECK(x.blocked_on_total);
  CHECK_EQ(b.used(), 3u);
  // One of p1's connections closes: the slot frees, p2 is woken and takes it.
  int before = w2.n;
  p1.connect_finished(a);
  p1.connection_closed(a);
  CHECK(w2.n > before);
  p2.serve_blocked(d2);
  CHECK_EQ(d2.opened.size(), 2u);
  CHECK_EQ(b.used(), 3u);
}

TEST(shared_budget_blocked_key_gets_another_pools_cold_idle_socket) {
  SharedBudget b(2);
  Wakes w1, w2;
  Pool p1({100, 10, 1000}), p2({100, 10, 1000});
  auto m1 = b.join(w1.fn());
  auto m2 = b.join(w2.fn());
  p1.share(&b, m1);
  p2.share(&b, m2);
  FakeDriver d1, d2;
  auto& a = p1.key("a", info("a"));
  auto& x = p2.key("x", info("x"));
  FakeReq ra{1}, rx1{2}, rx2{3};
  p1.enqueue(a, &ra);
  p1.dispatch(a, d1);
  p2.enqueue(x, &rx1);
  p2.dispatch(x, d2);
  CHECK_EQ(b.used(), 2u);
  // a's connection finishes its request and parks idle at t=100; x's stays busy.
  FakeConn a1{1, 100};
  p1.connect_finished(a);
  p1.park_idle(a, &a1);
  b.publish_idle(m1, 1, p1.oldest_idle_at());
  p2.connect_finished(x);
  // x wants a second connection: it has one of its own, so only a cold socket may go.
  d2.clock = 600;
  p2.enqueue(x, &rx2);
  p2.dispatch(x, d2);
  CHECK(x.blocked_on_total);
  CHECK(d1.discarded.empty());
  CHECK_EQ(d2.wake, 1100u);  // when a1 turns cold
  // At 1100 it is cold: x asks p1 for it.
  d2.clock = 1100;
  d1.clock = 1100;
  p2.serve_blocked(d2);
  CHECK(x.evicted);
  std::vector<SharedBudget::Eviction> ev;
  b.take_evictions(m1, &ev);
  CHECK_EQ(ev.size(), 1u);
  CHECK(ev[0].cold_before == 100u);
  CHECK(p1.evict_for_other(ev[0].cold_only, ev[0].cold_before, d1));
  CHECK_EQ(d1.discarded.size(), 1u);
  CHECK(d1.discarded[0] == &a1);
  // a1's close frees the slot, reserved for p2: p1 cannot take it back.
  p1.connection_closing(a);
  p1.connection_closed(a, true);
  CHECK(!b.has_room(m1));
  p2.serve_blocked(d2);
  CHECK_EQ(d2.opened.size(), 2u);
  CHECK_EQ(b.used(), 2u);
}

TEST(shared_budget_warm_sockets_of_another_pool_go_only_to_a_key_with_nothing) {
  SharedBudget b(1);
  Wakes w1, w2;
  Pool p1({100, 10, 1000}), p2({100, 10, 1000});
  auto m1 = b.join(w1.fn());
  auto m2 = b.join(w2.fn());
  p1.share(&b, m1);
  p2.share(&b, m2);
  FakeDriver d1, d2;
  auto& a = p1.key("a", info("a"));
  auto& y = p2.key("y", info("y"));
  FakeReq ra{1}, ry{2};
  p1.enqueue(a, &ra);
  p1.dispatch(a, d1);
  FakeConn a1{1, 100, 0};  // never carried a request
  p1.connect_finished(a);
  p1.park_idle(a, &a1);
  b.publish_idle(m1, 1, 100);
  // y has no connection: it may take a warm one elsewhere (here the only one, never used: the
  // pool's rule takes it anyway when it is all there is).
  d2.clock = 200;
  d1.clock = 200;
  p2.enqueue(y, &ry);
  p2.dispatch(y, d2);
  CHECK(y.evicted);
  std::vector<SharedBudget::Eviction> ev;
  b.take_evictions(m1, &ev);
  CHECK_EQ(ev.size(), 1u);
  CHECK(!ev[0].cold_only);
  CHECK(p1.evict_for_other(ev[0].cold_only, ev[0].cold_before, d1));
  p1.connection_closed(a);
  p2.serve_blocked(d2);
  CHECK_EQ(d2.opened.size(), 1u);
}

TEST(shared_budget_external_slots_count_against_the_shared_total) {
  SharedBudget b(2);
  Wakes w1, w2;
  Pool p1({100, 10}), raw({100, 10});
  p1.share(&b, b.join(w1.fn()));
  raw.share(&b, b.join(w2.fn()));
  FakeDriver d1, d2;
  CHECK(raw.take_external(d2));
  CHECK(raw.take_external(d2));
  CHECK(!raw.take_external(d2));
  auto& a = p1.key("a", info("a"));
  FakeReq ra{1};
  p1.enqueue(a, &ra);
  p1.dispatch(a, d1);
  CHECK(d1.opened.empty());
  CHECK(a.blocked_on_total);
  int before = w1.n;
  raw.release_external();
  CHECK(w1.n > before);
  p1.serve_blocked(d1);
  CHECK_EQ(d1.opened.size(), 1u);
}

TEST(shared_budget_cold_eviction_uses_the_requesters_clock) {
  Pool p({100, 10, 1000});
  SharedBudget b(4);
  Wakes w;
  p.share(&b, b.join(w.fn()));
  FakeDriver d;
  auto& a = p.key("a", info("a"));
  FakeReq r{1};
  p.enqueue(a, &r);
  p.dispatch(a, d);
  FakeConn a1{1, 500};
  p.connect_finished(a);
  p.park_idle(a, &a1);
  d.clock = 100;  // this loop's clock lags; the requester's said 500 is cold
  CHECK(!p.evict_for_other(true, 499, d));  // idle since 500: not before 499
  CHECK(d.discarded.empty());
  CHECK(p.evict_for_other(true, 500, d));
  CHECK_EQ(d.discarded.size(), 1u);
}
