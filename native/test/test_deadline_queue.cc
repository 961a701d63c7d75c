// loop/deadline_queue.h: the engine's deadlines (connections, requests) on one timer, driven here
// by a fake clock. Each tick handles only what is due.
#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <vector>

#include "check.h"
#include "loop/deadline_queue.h"

namespace {

struct Item {
  int id = 0;
  uvf::DeadlineEntry entry;
  uvf::DeadlineEntry other;  // a second queue's entry, independent of the first
};
using Queue = uvf::DeadlineQueue<Item, &Item::entry>;
using OtherQueue = uvf::DeadlineQueue<Item, &Item::other>;

// A fake clock and a timer that fires at the queue's next deadline.
struct FakeLoop {
  uint64_t now = 1000;
  std::vector<int> fired;
  size_t examined = 0;  // objects the ticks looked at
  // Advances the clock to `to`, firing each deadline at its time, in order.
  void run_until(Queue& q, uint64_t to) {
    while (q.next() <= to) {
      now = q.next();
      while (Item* it = q.pop_due(now)) {
        ++examined;
        fired.push_back(it->id);
      }
    }
    now = to;
  }
};

}  // namespace

TEST(deadline_queue_fires_in_order_with_an_injected_clock) {
  Queue q;
  FakeLoop loop;
  std::vector<Item> items(5);
  uint64_t at[5] = {300, 100, 500, 200, 400};
  for (int i = 0; i < 5; ++i) {
    items[i].id = i;
    q.schedule(&items[i], loop.now + at[i]);
  }
  CHECK_EQ(q.size(), size_t{5});
  CHECK_EQ(q.next(), loop.now + 100);
  CHECK(q.pop_due(loop.now) == nullptr);  // nothing due yet
  loop.run_until(q, 1250);
  CHECK_EQ(loop.fired.size(), size_t{2});
  CHECK_EQ(loop.fired[0], 1);
  CHECK_EQ(loop.fired[1], 3);
  loop.run_until(q, 2000);
  std::vector<int> want = {1, 3, 0, 4, 2};
  CHECK(loop.fired == want);
  CHECK(q.empty());
  CHECK_EQ(q.next(), UINT64_MAX);
  for (auto& it : items) CHECK(!it.entry.queued());
}

TEST(deadline_queue_move_cancel_and_no_later) {
  Queue q;
  Item a, b, c;
  a.id = 1, b.id = 2, c.id = 3;
  q.schedule(&a, 100);
  q.schedule(&b, 200);
  q.schedule(&c, 300);
  q.schedule(&c, 50);  // earlier
  CHECK_EQ(q.next(), uint64_t{50});
  q.schedule(&c, 250);  // later again
  CHECK_EQ(q.next(), uint64_t{100});
  q.schedule_no_later(&a, 150);  // already sooner: unchanged
  CHECK_EQ(a.entry.at, uint64_t{100});
  q.schedule_no_later(&b, 120);  // sooner: moved
  CHECK_EQ(b.entry.at, uint64_t{120});
  q.cancel(&a);
  q.cancel(&a);  // twice is harmless
  CHECK(!a.entry.queued());
  CHECK_EQ(q.size(), size_t{2});
  CHECK(q.pop_due(130) == &b);
  CHECK(q.pop_due(130) == nullptr);
  CHECK(q.pop_due(250) == &c);
  CHECK(q.empty());
}

TEST(deadline_queue_two_queues_share_an_object) {
  Queue q;
  OtherQueue o;
  Item x;
  x.id = 7;
  q.schedule(&x, 10);
  o.schedule(&x, 20);
  CHECK(o.pop_due(15) == nullptr);
  CHECK(q.pop_due(15) == &x);
  CHECK(x.other.queued());
  CHECK(o.pop_due(20) == &x);
}

// Against a reference model: random schedules, moves, cancels and ticks.
TEST(deadline_queue_matches_a_reference_model) {
  std::mt19937 rng(12345);
  Queue q;
  std::vector<Item> items(200);
  std::map<int, uint64_t> model;  // id → deadline
  for (int i = 0; i < 200; ++i) items[i].id = i;
  uint64_t now = 0;
  for (int step = 0; step < 20000; ++step) {
    int id = static_cast<int>(rng() % 200);
    switch (rng() % 4) {
      case 0:
      case 1: {
        uint64_t at = now + 1 + rng() % 1000;
        q.schedule(&items[id], at);
        model[id] = at;
        break;
      }
      case 2:
        q.cancel(&items[id]);
        model.erase(id);
        break;
      case 3: {
        now += rng() % 50;
        std::vector<int> got;
        while (Item* it = q.pop_due(now)) {
          CHECK(it->entry.at <= now);
          got.push_back(it->id);
        }
        std::vector<int> want;
        for (auto itm = model.begin(); itm != model.end();) {
          if (itm->second <= now) {
            want.push_back(itm->first);
            itm = model.erase(itm);
          } else {
            ++itm;
          }
        }
        std::sort(got.begin(), got.end());
        CHECK(got == want);
        break;
      }
    }
    CHECK_EQ(q.size(), model.size());
    uint64_t next = UINT64_MAX;
    for (auto& kv : model) next = std::min(next, kv.second);
    CHECK_EQ(q.next(), next);
  }
}

// The point of it: a tick looks at what is due, not at everything queued.
TEST(deadline_queue_tick_cost_is_what_expires) {
  Queue q;
  FakeLoop loop;
  std::vector<Item> items(10000);
  for (int i = 0; i < 10000; ++i) {
    items[i].id = i;
    q.schedule(&items[i], loop.now + 60'000 + static_cast<uint64_t>(i));  // idle timeouts, far away
  }
  Item soon;
  soon.id = -1;
  q.schedule(&soon, loop.now + 10);
  loop.run_until(q, loop.now + 100);
  CHECK_EQ(loop.examined, size_t{1});
  CHECK_EQ(q.size(), size_t{10000});
}
