// Keyed connection pool: limits (total and per key), LIFO reuse of idle connections, FIFO waiters
// per key, and a FIFO of keys blocked on the total limit. Pure bookkeeping and decisions: no I/O,
// no libuv. The engine supplies a Driver that does the real work (connect, assign, close), which
// also lets the decisions be unit-tested with a fake driver.
//
// Conn must provide: `uint64_t idle_since() const` (ms, set by the driver when parked idle) and
// `uint32_t served() const` (requests it has carried). A Conn that can carry more than one request
// at a time also provides `size_t capacity() const`, `size_t active() const` (requests it carries)
// and `bool has_room() const` (open and active() < capacity()); without them it carries one.
// Req carries no requirements beyond being a pointer the pool queues.
//
// Connections with room: each key lists its open connections that can take a request now
// (`idle`, LIFO). For one-request connections that is exactly the idle ones; a multiplexed one
// stays listed while it has room, busy or not. Only connections carrying nothing (active() == 0)
// are liveness-checked before reuse, idle for eviction, or counted as idle by the cold rules.
// Waiters count on connections still connecting: a key opens another connection only when the
// ones connecting will not have room for all its waiters (connecting × capacity_hint).
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "pool/shared_budget.h"
#include "proxy/tunnel.h"

namespace uvf {

struct PoolLimits {
  size_t total = 256;     // connections across all keys (connecting + busy + idle)
  size_t per_key = 64;    // connections for one key
  // Under the total limit, an idle connection of another key is taken (closed to make room) by a
  // key that already has connections of its own only once it has been idle this long ("cold").
  // A key with no connection at all may take a warm one. Stops a crawl whose in-flight count
  // equals the limit from trading one host's sockets for another's on every request.
  uint64_t cold_idle_ms = 1000;
};

// What a pool key stands for. Today: scheme + host + port. TLS profile, local address and proxy
// join it later; every field that changes how a socket is made or secured must be part of `key`.
namespace tls {
class Context;
}


struct PoolKeyInfo {
  bool tls = false;
  // https: the TLS profile every connection of this key uses. Its identity is part of key():
  // two profiles never share a socket.
  std::shared_ptr<tls::Context> tls_ctx;
  uint64_t tls_profile = 0;
  // Through a proxy (kind 0 = direct). Part of key(): the credentials too, so two users of
  // one proxy never share a socket.
  proxy::ProxyInfo proxy;
  std::string host;       // name or IP literal (no brackets)
  uint16_t port = 0;
  std::string authority;  // Host header value: host (bracketed if IPv6) plus ":port" unless default

  // "http://host:port" (IPv6 bracketed), as users write origins.
  std::string origin() const {
    std::string o = tls ? "https://" : "http://";
    bool v6 = host.find(':') != std::string::npos;
    if (v6) o.push_back('[');
    o.append(host);
    if (v6) o.push_back(']');
    o.push_back(':');
    o.append(std::to_string(port));
    return o;
  }

  std::string key() const {
    std::string k;
    k.reserve(host.size() + 16);
    k.append(tls ? "https://" : "http://");
    k.append(host);
    k.push_back('|');
    k.append(std::to_string(port));
    if (tls) {
      k.append("|p");
      k.append(std::to_string(tls_profile));
    }
    if (proxy.kind != proxy::Kind::None) {
      k.append("|x");
      k.push_back(static_cast<char>('0' + static_cast<int>(proxy.kind)));
      k.push_back('|');
      k.append(proxy.host);
      k.push_back('|');
      k.append(std::to_string(proxy.port));
      k.push_back('|');
      k.append(std::to_string(proxy.user.size()));
      k.push_back(':');
      k.append(proxy.user);
      k.append(proxy.pass);
    }
    return k;
  }
};

namespace pool_detail {
template <class C, class = void>
struct Multiplexed : std::false_type {};
template <class C>
struct Multiplexed<C, std::void_t<decltype(std::declval<const C&>().capacity())>> : std::true_type {};
}  // namespace pool_detail

template <class Conn, class Req>
struct KeyedPool {
  std::string key;
  PoolKeyInfo info;
  std::vector<Conn*> idle;    // open connections with room (see above), LIFO: back() is the most recently used
  std::deque<Req*> waiters;   // FIFO
  size_t open = 0;            // connecting + busy + idle (+ closing, until the handle is released)
  size_t connecting = 0;
  // Requests one connection of this key carries at once, as its last connection to open said:
  // what the waiters may count on from each connection still connecting.
  size_t capacity_hint = 1;
  size_t closing = 0;         // of open: closed by the driver, its handle not yet released
  bool blocked_on_total = false;
  // Closed another key's idle connection to make room: first in line for the capacity that frees.
  bool evicted = false;
  // Room this key made under the total limit by closing another key's idle connection (pools
  // without a shared budget): `pending` victims still closing, `held` slots they freed. Nobody
  // else opens into a held slot, and the key closes no second socket while one is on its way.
  size_t pending = 0;
  size_t held = 0;
  size_t reserved() const { return pending + held; }
  bool dispatch_scheduled = false;  // the engine will dispatch this key at the end of the turn
};

template <class Conn, class Req>
class ConnectionPool {
 public:
  using Key = KeyedPool<Conn, Req>;

  class Driver {
   public:
    virtual ~Driver() = default;
    // Liveness check of an idle connection about to be reused (e.g. MSG_PEEK).
    virtual bool is_alive(Conn* c) = 0;
    // A dead or evicted idle connection leaves the pool; the driver closes it and later calls
    // connection_closed().
    virtual void discard(Key& k, Conn* c) = 0;
    // Start a new connection for key k (the pool has already counted it as open + connecting).
    virtual void open_connection(Key& k, Req* first_waiter) = 0;
    // Hand the request to the (now busy) connection.
    virtual void assign(Key& k, Conn* c, Req* r) = 0;
    // A queued request asks for a brand-new connection (a retry after a stale reuse).
    virtual bool wants_fresh(Req* r) = 0;
    // False while new sockets cannot be made (out of file descriptors): keys wait, blocked.
    virtual bool can_open() = 0;
    // The clock idle_since() is measured on (ms).
    virtual uint64_t now_ms() = 0;
    // A key blocked while sockets are idle elsewhere: call serve_blocked() at `at` (ms), when the
    // oldest of them turns cold, even if no connection event comes first.
    virtual void wake_at(uint64_t at) = 0;
  };

  explicit ConnectionPool(PoolLimits limits) : limits_(limits) {}

  // What the pool asks of a connection (one-request connections: the defaults).
  static size_t active_of(const Conn* c) {
    if constexpr (pool_detail::Multiplexed<Conn>::value) {
      return c->active();
    } else {
      (void)c;
      return 0;  // listed means idle
    }
  }
  static size_t capacity_of(const Conn* c) {
    if constexpr (pool_detail::Multiplexed<Conn>::value) {
      return c->capacity();
    } else {
      (void)c;
      return 1;
    }
  }
  // After a request was assigned to c: may it take another one now?
  static bool room_left(const Conn* c) {
    if constexpr (pool_detail::Multiplexed<Conn>::value) {
      return c->has_room();
    } else {
      (void)c;
      return false;
    }
  }

  const PoolLimits& limits() const { return limits_; }
  void set_limits(PoolLimits l) { limits_ = l; }

  // The total limit is a budget shared with other pools (pool/shared_budget.h), as member m:
  // every connection opened and every external socket takes a slot of it, given back when the
  // connection is released; limits().total is then not consulted. Set before any connection.
  void share(SharedBudget* b, SharedBudget::MemberId m) {
    shared_ = b;
    member_ = m;
  }
  SharedBudget* shared() const { return shared_; }
  SharedBudget::MemberId member() const { return member_; }

  // The key k (made from info on first use); *created tells whether it is new.
  Key& key(const std::string& k, const PoolKeyInfo& info, bool* created = nullptr) {
    auto it = keys_.find(k);
    if (created != nullptr) *created = it == keys_.end();
    if (it != keys_.end()) return *it->second;
    auto owned = std::make_unique<Key>();
    owned->key = k;
    owned->info = info;
    Key& ref = *owned;
    keys_.emplace(k, std::move(owned));
    return ref;
  }

  bool has_key(const std::string& k) const { return keys_.count(k) != 0; }
  size_t total_open() const { return total_open_; }
  // Open and not being closed: what a user polling stats should see.
  size_t total_open_now() const { return total_open_ - total_closing_; }
  // Sockets outside the pool that share its total limit (the engine's raw sockets): each holds
  // one slot from take_external() until release_external().
  size_t external() const { return external_; }
  bool total_full() const {
    if (shared_ != nullptr) return !shared_->has_room(member_);
    return total_open_ + external_ + held_ >= limits_.total;
  }
  // Full for key k: the slots held for k (Key::held) are k's to use.
  bool total_full_for(const Key& k) const {
    if (shared_ != nullptr) return !shared_->has_room(member_);
    return total_open_ + external_ + held_ - k.held >= limits_.total;
  }
  // Slots held for keys that evicted (Key::held), and victims still closing for them.
  size_t held() const { return held_; }
  size_t pending_victims() const { return victims_.size(); }
  // A key gave up slots held for it (its waiters went away): true once, then false. The driver
  // then serves blocked keys, as for any capacity freed.
  bool take_released() {
    bool r = released_;
    released_ = false;
    return r;
  }
  // Takes a slot under the total limit. When the limit is reached, evicts the oldest idle pooled
  // connection instead (its close frees a slot later) and returns false: the caller waits for
  // capacity, like a blocked key.
  bool take_external(Driver& d) {
    if (shared_ != nullptr ? shared_->take(member_) : !total_full()) {
      ++external_;
      return true;
    }
    Key* victim_key = nullptr;
    Conn* victim = oldest_idle(&victim_key);
    if (victim != nullptr) {
      unpark(*victim_key, victim);
      if (shared_ != nullptr) shared_->reserve(member_);  // the slot it frees is ours
      d.discard(*victim_key, victim);
      ++evictions_;
    } else if (shared_ != nullptr) {
      shared_->request_eviction(member_, false, 0);  // an idle socket of another pool, if any
    }
    return false;
  }
  void release_external() {
    if (external_ == 0) return;
    --external_;
    if (shared_ != nullptr) shared_->release(member_);
  }
  size_t total_idle() const { return total_idle_; }
  size_t total_waiting() const { return total_waiting_; }
  // Idle connections closed to make room under the total limit for another key (or a raw socket).
  uint64_t evictions() const { return evictions_; }
  size_t key_count() const { return keys_.size(); }

  void enqueue(Key& k, Req* r, bool front = false) {
    if (front) {
      k.waiters.push_front(r);
    } else {
      k.waiters.push_back(r);
    }
    ++total_waiting_;
  }

  // Removes a queued request (abort/timeout). Returns false if it was not queued.
  bool remove_waiter(Key& k, Req* r) {
    for (auto it = k.waiters.begin(); it != k.waiters.end(); ++it) {
      if (*it == r) {
        k.waiters.erase(it);
        --total_waiting_;
        if (k.waiters.empty()) release_reserved(k);
        return true;
      }
    }
    return false;
  }

  Req* pop_waiter(Key& k) {
    if (k.waiters.empty()) return nullptr;
    Req* r = k.waiters.front();
    k.waiters.pop_front();
    --total_waiting_;
    return r;
  }

  // Bookkeeping for connections the driver creates and destroys.
  void connection_opened(Key& k) {
    ++k.open;
    ++k.connecting;
    ++total_open_;
  }
  void connect_finished(Key& k) { --k.connecting; }
  // The driver started closing a connection: it still holds its slot (and descriptor) until
  // connection_closed, but is no longer counted as open for anyone looking (open_now()).
  void connection_closing(Key& k) {
    ++k.closing;
    ++total_closing_;
  }
  // c closed: when it was closed to make room for another key, that key now holds the slot.
  void connection_closed(Key& k, const Conn* c, bool was_closing) {
    connection_closed(k, was_closing);
    for (size_t i = 0; i < victims_.size(); ++i) {
      if (victims_[i].conn != c) continue;
      Key* to = victims_[i].for_key;
      victims_.erase(victims_.begin() + static_cast<std::ptrdiff_t>(i));
      if (to != nullptr && to->pending > 0) {
        --to->pending;
        ++to->held;
        ++held_;
      }
      break;
    }
  }
  void connection_closed(Key& k, bool was_closing = false) {
    --k.open;
    --total_open_;
    if (shared_ != nullptr) shared_->release(member_);
    if (was_closing) {
      --k.closing;
      --total_closing_;
    }
  }

  // Parks a connection as idle (LIFO).
  void park_idle(Key& k, Conn* c) {
    k.idle.push_back(c);
    ++total_idle_;
  }
  // A connection finished a request and has room again: listed unless it already is (a
  // multiplexed one stays listed while it has room).
  void has_room_again(Key& k, Conn* c) {
    if constexpr (pool_detail::Multiplexed<Conn>::value) {
      if (!c->has_room()) return;  // e.g. an HTTP/2 connection after GOAWAY
    }
    if (capacity_of(c) > 1 && listed(k, c)) return;
    park_idle(k, c);
  }
  // The driver knows how many requests a connection of k will carry (a protocol negotiated
  // earlier): waiters count on that many per connection still connecting.
  void learned_capacity(Key& k, size_t capacity) { k.capacity_hint = std::max<size_t>(1, capacity); }
  bool listed(const Key& k, const Conn* c) const {
    return std::find(k.idle.begin(), k.idle.end(), c) != k.idle.end();
  }
  // c (of key k) finished connecting: it takes the key's waiters, oldest first, while it has
  // room; listed when room is left. Returns how many it took (0: the caller parks it idle).
  size_t connected(Key& k, Conn* c, Driver& d) {
    connect_finished(k);
    learned_capacity(k, capacity_of(c));
    size_t taken = 0;
    while (!k.waiters.empty()) {
      Req* r = pop_waiter(k);
      d.assign(k, c, r);
      ++taken;
      if (!room_left(c)) return taken;
    }
    if (taken > 0) park_idle(k, c);
    return taken;
  }
  // Takes a specific idle connection out (it died or expired). Returns false if not idle here.
  bool unpark(Key& k, Conn* c) {
    for (size_t i = k.idle.size(); i-- > 0;) {
      if (k.idle[i] == c) {
        k.idle.erase(k.idle.begin() + static_cast<std::ptrdiff_t>(i));
        --total_idle_;
        return true;
      }
    }
    return false;
  }

  // Serves as many waiters of k as possible: reuse idle connections (LIFO, liveness-checked),
  // else open new ones within the limits, else evict an idle connection of another key when the
  // total limit is what blocks, else mark k blocked until some connection closes.
  void dispatch(Key& k, Driver& d) {
    while (!k.waiters.empty()) {
      Req* r = k.waiters.front();
      if (!d.wants_fresh(r) && !k.idle.empty()) {
        Conn* c = k.idle.back();
        if (active_of(c) > 0 && !room_left(c)) {
          // Lost its room while listed (a GOAWAY, a lower stream limit): not a candidate.
          k.idle.pop_back();
          --total_idle_;
          continue;
        }
        if (active_of(c) > 0) {
          // A multiplexed connection with room: no liveness probe while it carries requests.
          pop_waiter(k);
          d.assign(k, c, r);
          if (!room_left(c)) unpark(k, c);
          continue;
        }
        k.idle.pop_back();
        --total_idle_;
        if (!d.is_alive(c)) {
          d.discard(k, c);
          continue;
        }
        pop_waiter(k);
        d.assign(k, c, r);
        if (room_left(c)) park_idle(k, c);
        continue;
      }
      // Every waiter beyond what the connections already being opened will carry wants one more.
      if (k.connecting * k.capacity_hint >= k.waiters.size()) return;
      if (k.open >= limits_.per_key) {
        // A fresh-only waiter at the head may displace an idle connection of its own key.
        if (d.wants_fresh(r)) {
          auto it = std::find_if(k.idle.begin(), k.idle.end(), [](const Conn* c) { return active_of(c) == 0; });
          if (it != k.idle.end()) {
            Conn* c = *it;
            k.idle.erase(it);
            --total_idle_;
            d.discard(k, c);
            continue;
          }
        }
        return;  // waits for a connection of this key to free up
      }
      if (total_full_for(k)) {
        if (k.reserved() > 0) {
          // The room a connection it closed frees is on its way: no second socket closed for
          // the same wait.
          block(k);
          return;
        }
        Key* victim_key = nullptr;
        uint64_t now = d.now_ms();
        Conn* victim = eviction_victim(k.open > 0, now, &victim_key);
        if (victim == nullptr) {
          if (shared_ != nullptr) {
            // Another pool's idle socket, by the same rules (cold only while k has its own).
            uint64_t cold_before = now >= limits_.cold_idle_ms ? now - limits_.cold_idle_ms : 0;
            if (shared_->request_eviction(member_, k.open > 0, cold_before)) {
              k.evicted = true;
              block(k);
              return;
            }
            // Registered as waiting, atomically with finding no room; room meanwhile: again.
            if (!shared_->wait_unless_room(member_)) continue;
          }
          // Nothing idle, or only warm sockets while k has connections of its own to wait for:
          // k is served by its own connections as they free up, or by capacity freed (or an idle
          // socket gone cold) elsewhere.
          block(k);
          uint64_t cold = next_cold_at();
          if (cold != UINT64_MAX) d.wake_at(cold);
          return;
        }
        unpark(*victim_key, victim);
        if (shared_ != nullptr) shared_->reserve(member_);  // the slot it frees is k's pool's
        d.discard(*victim_key, victim);
        ++evictions_;
        if (shared_ == nullptr) {
          // The room it makes is k's, whoever asks first once the victim is gone (a request
          // submitted meanwhile for another key must not take it, making k close another).
          ++k.pending;
          victims_.push_back(Victim{victim, &k});
        }
        if (total_full_for(k)) {
          // The victim closes asynchronously; this key goes first when its capacity is freed
          // (else another blocked key would take it and this one would evict again).
          k.evicted = true;
          block(k);
          return;
        }
        continue;
      }
      if (!d.can_open()) {
        block(k);
        return;
      }
      if (shared_ != nullptr && !shared_->take(member_)) {
        block(k);  // lost the free slot to another pool: woken when one frees
        return;
      }
      connection_opened(k);
      if (k.held > 0) {
        --k.held;
        --held_;
      } else if (k.pending > 0) {
        // Room came from elsewhere first: the victim's slot, when it frees, is no longer k's.
        --k.pending;
        disown_victim(k);
      }
      k.evicted = k.reserved() > 0;
      d.open_connection(k, r);
    }
    release_reserved(k);  // every waiter served: slots still held for k go back
  }

  // Capacity freed somewhere (a connection closed), or an idle connection appeared that a key
  // blocked on the total limit may evict: each blocked key, oldest first, gets one more dispatch
  // (a key that still cannot proceed blocks again, keeping its turn order).
  // Order: keys that evicted a connection for the room now freed, then keys with no connection
  // of their own (they cannot make progress otherwise), then keys waiting behind their own.
  void serve_blocked(Driver& d) {
    if (blocked_.empty()) return;
    std::deque<Key*> keys;
    keys.swap(blocked_);
    for (Key* k : keys) k->blocked_on_total = false;
    std::stable_partition(keys.begin(), keys.end(), [](const Key* k) { return k->open == 0 && !k->evicted; });
    std::stable_partition(keys.begin(), keys.end(), [](const Key* k) { return k->evicted; });
    for (Key* k : keys) dispatch(*k, d);
  }
  bool has_blocked() const { return !blocked_.empty(); }
  // When the oldest idle connection turns cold (evictable by any key), or UINT64_MAX if none is
  // idle: a blocked key may then make progress without any connection event.
  uint64_t next_cold_at() {
    uint64_t at = oldest_idle_at();
    if (shared_ != nullptr) at = std::min(at, shared_->oldest_idle_elsewhere(member_));
    return at == UINT64_MAX ? UINT64_MAX : at + limits_.cold_idle_ms;
  }
  // When the oldest idle connection (carrying nothing) went idle, or UINT64_MAX if none.
  uint64_t oldest_idle_at() {
    Key* kk = nullptr;
    Conn* c = oldest_idle(&kk);
    return c == nullptr ? UINT64_MAX : c->idle_since();
  }
  // Another pool sharing the budget asked for room (SharedBudget::request_eviction): closes an
  // idle connection by the rules a key of this pool would follow (cold_only: the requester's
  // key has connections of its own, so only one idle since cold_before, on the requester's
  // clock, may go). False if none fits any more.
  bool evict_for_other(bool cold_only, uint64_t cold_before, Driver& d) {
    Key* victim_key = nullptr;
    Conn* victim = nullptr;
    if (cold_only) {
      victim = oldest_idle(&victim_key);
      if (victim != nullptr && victim->idle_since() > cold_before) victim = nullptr;
    } else {
      victim = eviction_victim(false, d.now_ms(), &victim_key);
    }
    if (victim == nullptr) return false;
    unpark(*victim_key, victim);
    d.discard(*victim_key, victim);
    ++evictions_;
    return true;
  }

  template <class F>
  void for_each_key(F&& f) {
    for (auto& kv : keys_) f(*kv.second);
  }

  // Forgets keys with nothing open and nothing queued (keeps the map bounded for crawlers).
  void prune_empty_keys() {
    for (auto it = keys_.begin(); it != keys_.end();) {
      Key& k = *it->second;
      if (k.open == 0 && k.waiters.empty() && !k.blocked_on_total && k.reserved() == 0) {
        it = keys_.erase(it);
      } else {
        ++it;
      }
    }
  }

  // One victim closing for k no longer makes room for it (the newest such).
  void disown_victim(const Key& k) {
    for (size_t i = victims_.size(); i-- > 0;) {
      if (victims_[i].for_key == &k) {
        victims_[i].for_key = nullptr;
        return;
      }
    }
  }

  // Slots held for k that it no longer needs go back to everyone (take_released()).
  void release_reserved(Key& k) {
    if (k.reserved() == 0) return;
    held_ -= k.held;
    k.held = 0;
    while (k.pending > 0) {
      --k.pending;
      disown_victim(k);
    }
    k.evicted = false;
    released_ = true;
  }

  // Parks k until serve_blocked(): the total limit, or no file descriptors, keeps it waiting.
  void block(Key& k) {
    if (k.blocked_on_total) return;
    k.blocked_on_total = true;
    blocked_.push_back(&k);
  }

 private:
  // Which idle connection a key may close to make room under the total limit (has_open: the key
  // has connections of its own): the oldest one if it is cold; otherwise, only when the key has no
  // connection at all, the oldest idle connection of the key with the most idle ones (it loses
  // least). nullptr: the key waits.
  Conn* eviction_victim(bool has_open, uint64_t now, Key** out_key) {
    Conn* oldest = nullptr;
    Key* richest = nullptr;
    Conn* richest_conn = nullptr;
    for (auto& kv : keys_) {
      Key& kk = *kv.second;
      Conn* c = oldest_of(kk);
      if (c == nullptr) continue;
      if (oldest == nullptr || c->idle_since() < oldest->idle_since()) {
        oldest = c;
        *out_key = &kk;
      }
      if (has_open) continue;
      // A warm connection that has not carried a request yet (it was opened for a waiter that
      // another connection served first) is kept for its key's next request.
      Conn* used = nullptr;
      for (Conn* ic : kk.idle) {
        if (ic->served() > 0 && active_of(ic) == 0) {
          used = ic;
          break;
        }
      }
      if (used == nullptr) continue;
      if (richest == nullptr || kk.idle.size() > richest->idle.size() ||
          (kk.idle.size() == richest->idle.size() && used->idle_since() < richest_conn->idle_since())) {
        richest = &kk;
        richest_conn = used;
      }
    }
    if (oldest == nullptr) return nullptr;
    if (now >= oldest->idle_since() + limits_.cold_idle_ms) return oldest;
    if (richest == nullptr) {
      if (has_open) return nullptr;
      return oldest;  // only never-used ones are idle: k has nothing, so it takes one anyway
    }
    *out_key = richest;
    return richest_conn;
  }

  // The oldest connection of k carrying nothing (front of a LIFO is its oldest), or nullptr.
  static Conn* oldest_of(const Key& k) {
    for (Conn* c : k.idle) {
      if (active_of(c) == 0) return c;
    }
    return nullptr;
  }

  Conn* oldest_idle(Key** out_key) {
    Conn* best = nullptr;
    for (auto& kv : keys_) {
      Key& k = *kv.second;
      Conn* c = oldest_of(k);
      if (c == nullptr) continue;
      if (best == nullptr || c->idle_since() < best->idle_since()) {
        best = c;
        *out_key = &k;
      }
    }
    return best;
  }

  PoolLimits limits_;
  SharedBudget* shared_ = nullptr;
  SharedBudget::MemberId member_ = 0;
  size_t external_ = 0;
  std::unordered_map<std::string, std::unique_ptr<Key>> keys_;
  std::deque<Key*> blocked_;
  size_t total_open_ = 0;
  size_t total_closing_ = 0;
  size_t total_idle_ = 0;
  uint64_t evictions_ = 0;
  size_t held_ = 0;       // slots held for keys that evicted (non-shared pools): Key::held
  struct Victim {
    const Conn* conn;
    Key* for_key;  // nullptr: nobody waits for its room any more
  };
  std::vector<Victim> victims_;  // idle connections closed to make room, until closed
  bool released_ = false;  // a key gave slots back since take_released()
  size_t total_waiting_ = 0;
};

}  // namespace uvf
