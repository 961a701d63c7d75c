// DNS cache: "resolve each host once". Pure bookkeeping and decisions: no libuv, no sockets, no
// threads of its own, no clock (time is passed in as `now_ms`); its EntryStore (the answers) may
// be shared by caches on several threads, behind the store's mutex. The engine supplies a Resolver that does the
// real lookups (getaddrinfo on the thread pool, later c-ares) and answers via complete(); tests use
// a fake resolver.
//
// What it does:
//   - caches answers per key = (lowercased host, family 0/4/6); positive answers for a clamped TTL,
//     errors (with their code) for negative_ttl_ms;
//   - coalesces concurrent misses of one key into one resolver call (all waiters answered, in
//     arrival order);
//   - stale-while-revalidate: within stale_ttl_ms after expiry an entry is still served and one
//     background refresh is started (one per key); a refresh that fails keeps the stale entry
//     (RFC 8767) until its stale window ends;
//   - bounds the resolver: at most max_in_flight lookups out, the rest wait in a FIFO;
//   - bounds memory: LRU eviction beyond max_entries (never an entry whose key has a lookup
//     pending);
//   - answers IP literals (and static overrides, curl --resolve) synchronously;
//   - spreads connections: every answer carries rotate_from, a per-entry counter advanced on each
//     answer, so callers starting at addrs[rotate_from] (wrapping) use all of a host's addresses.
//
// Reentrancy: Waiter::on_dns may call lookup(), cancel() or clear() on the same cache, and the
// Resolver may call complete() synchronously from resolve(). Waiters are never called after
// cancel(); pending waiters are never called once the cache is destroyed.
#pragma once
#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <netinet/in.h>
#include <sys/socket.h>
#endif

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/errors.h"

namespace uvf::dns {

struct Address {
  sockaddr_storage addr;  // AF_INET or AF_INET6, port 0: callers set the port
};

// AF_INET / AF_INET6 (or whatever ss_family holds).
int address_family(const Address& a);
// "1.2.3.4" / "::1" (no brackets, no port). Empty for other families.
std::string address_to_string(const Address& a);
// Parses an IPv4 dotted quad or an unbracketed IPv6 literal (no zone id). False if not a literal.
bool parse_ip_literal(const std::string& host, Address* out);

// RFC 8305 §4: starting at rotate_from (wrapping), interleave address families, IPv6 first
// (first address family count 1), keeping each family's relative order. Addresses of other
// families go last.
std::vector<Address> ordered_for_happy_eyeballs(const std::vector<Address>& addrs,
                                                size_t rotate_from);
// The same order, appended to *out as socket addresses with `port` set (AF_INET/AF_INET6), with
// no temporary allocations: what a connection does on every cache hit.
void append_for_happy_eyeballs(const std::vector<Address>& addrs, size_t rotate_from, uint16_t port,
                               std::vector<sockaddr_storage>* out);

struct Answer {
  Error error = Error::Ok;       // Ok with no addrs is treated as DnsNotFound
  std::vector<Address> addrs;
  int64_t ttl_ms = -1;           // -1: the resolver gave none (use Options::ttl_ms)
};

struct Options {
  uint64_t ttl_ms = 10'000;            // positive TTL when the resolver gives none
  uint64_t min_ttl_ms = 0;             // clamp of every positive TTL
  uint64_t max_ttl_ms = UINT64_MAX;
  uint64_t negative_ttl_ms = 1'000;    // errors are cached this long (0: not cached)
  uint64_t stale_ttl_ms = 0;           // serve-stale window after expiry (0: off)
  size_t max_entries = 1000;           // LRU bound (0: nothing is cached)
  size_t max_in_flight = 256;          // resolver calls out at once (0: no limit)
};

struct Stats {
  // Every lookup() call is exactly one of: hits, stale_served, negative_hits, misses, static_answers.
  uint64_t lookups = 0;
  uint64_t hits = 0;            // fresh positive entry
  uint64_t stale_served = 0;    // expired entry within stale_ttl (a refresh is pending)
  uint64_t negative_hits = 0;   // cached error
  uint64_t misses = 0;          // had to wait for the resolver
  uint64_t coalesced = 0;       // misses that joined a lookup already pending for the key
  uint64_t static_answers = 0;  // IP literals and overrides
  uint64_t resolves = 0;        // Resolver::resolve() calls (misses + background refreshes)
  uint64_t errors = 0;          // completions with an error
  uint64_t evictions = 0;       // entries dropped by the LRU bound
  size_t in_flight = 0;         // resolver calls out now
  size_t queued = 0;            // lookups waiting for max_in_flight
  size_t entries = 0;           // cached entries (positive and negative)
};

class Resolver {
 public:
  virtual ~Resolver() = default;
  // family: 0 (any), 4 or 6. Answer later (or synchronously) with DnsCache::complete(lookup_id, ..).
  virtual void resolve(const std::string& host, int family, uint64_t lookup_id) = 0;
};

class Waiter {
 public:
  virtual ~Waiter() = default;
  // addrs is only valid during the call. rotate_from < addrs.size() (0 when empty).
  // May be called synchronously from lookup() (hit, IP literal, override, synchronous resolver).
  virtual void on_dns(Error e, const std::vector<Address>& addrs, size_t rotate_from) = 0;
};

// The cached answers (positive and negative, LRU-ordered) behind a DnsCache. Each cache makes its
// own, or several caches on their own threads (Session ioThreads) share one: it is behind a
// mutex, so a name resolved on one thread is a hit on every other and no two threads hold
// answers for a key that disagree. In-flight lookups (coalescing, the resolver bound, waiters)
// stay per cache.
class EntryStore {
 public:
  using AddrList = std::shared_ptr<const std::vector<Address>>;
  struct Found {
    enum Kind { Miss, Negative, Fresh, Stale } kind = Miss;
    Error error = Error::Ok;  // Negative
    AddrList addrs;           // Fresh / Stale
    size_t rotate = 0;        // < addrs->size()
  };
  // The entry for key at now_ms (a dead one is dropped: Miss). A hit is touched (LRU); a positive
  // one advances its rotation.
  Found find(const std::string& key, uint64_t now_ms);
  // A positive answer handed to n waiters: stored; returns the rotation the first starts at.
  size_t put_positive(const std::string& key, AddrList addrs, uint64_t expires_at, uint64_t stale_until, size_t n);
  // An error: stored for negative_ttl_ms (0: the entry is dropped), unless a positive entry is
  // still servable stale (RFC 8767: it is kept).
  void put_negative(const std::string& key, Error e, uint64_t now_ms, uint64_t negative_ttl_ms);
  // Drops the entries of one host (any case; every family) or, with "", all; and changes
  // generation() for them.
  void clear(const std::string& host);
  // Changes with every clear() that covers the host: a lookup started under another generation
  // is not cached (a clear on one thread is a barrier for lookups pending on the others).
  uint64_t generation(const std::string& lowered_host) const;
  // LRU eviction down to max_entries, never an entry keep(key) says is wanted. Returns how many.
  size_t evict(size_t max_entries, const std::function<bool(const std::string&)>& keep);
  size_t size() const;

  // The resolver bound (Options::max_in_flight) across the caches sharing this store: each joins
  // (DnsCache::share_bound) with a `wake` (thread-safe, called under the store's lock: post to
  // the cache's own thread, then call DnsCache::pump_shared() there). try_start() counts one call
  // out, or registers the member as waiting; finished() counts it back and wakes the waiting
  // others; leave() gives back whatever the member still had out.
  using MemberId = uint32_t;
  MemberId join(std::function<void()> wake);
  void leave(MemberId m);
  bool try_start(MemberId m, size_t max_in_flight);
  void finished(MemberId m);
  size_t in_flight() const;

 private:
  struct BoundMember {
    std::function<void()> wake;
    size_t out = 0;
    bool waiting = false;
  };
  struct Entry {
    Error error = Error::Ok;     // != Ok: negative entry
    AddrList addrs;              // positive entries only
    uint64_t expires_at = 0;     // fresh while now < expires_at
    uint64_t stale_until = 0;    // servable stale while now < stale_until (positive only)
    size_t rotate = 0;
    std::list<std::string>::iterator lru;  // front = most recently used
  };
  Entry& put(const std::string& key);  // under mu_
  void erase(const std::string& key);  // under mu_

  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> lru_;
  uint64_t gen_ = 0;      // every clear()
  uint64_t all_gen_ = 0;  // gen_ at the last clear-all
  std::unordered_map<std::string, uint64_t> host_gen_;  // clear(host) since the last clear-all
  std::unordered_map<MemberId, BoundMember> members_;
  MemberId next_member_ = 1;
  size_t out_ = 0;  // resolver calls out, every member's
};

class DnsCache {
 public:
  // store: shared with other caches, or null (the cache makes its own).
  DnsCache(Options opts, Resolver* resolver, std::shared_ptr<EntryStore> store = nullptr);
  DnsCache(const DnsCache&) = delete;
  DnsCache& operator=(const DnsCache&) = delete;

  const Options& options() const { return opts_; }

  // Static override: "host", "host:port" or "[v6]:port" → addrs (empty addrs removes it). A
  // host:port override wins over a host one. Overrides are consulted before the cache and before
  // IP-literal parsing, filtered by the requested family (nothing left → DnsNotFound), and are not
  // affected by clear().
  void set_override(const std::string& host_or_host_port, std::vector<Address> addrs);

  // family: 4 or 6 restrict, anything else means 0 (any). An IP literal of the other family is
  // DnsNotFound (as getaddrinfo does). Returns a ticket for cancel(), or 0 when the waiter has
  // already been answered (synchronously, from this call).
  uint64_t lookup(const std::string& host, uint16_t port, int family, uint64_t now_ms, Waiter* w);

  // The waiter will not be called (it may be destroyed). Unknown / answered tickets are ignored.
  // A queued (not yet started) lookup left with no waiters is dropped.
  void cancel(uint64_t ticket);

  // The resolver's answer for lookup_id (unknown ids are ignored). Positive answers are cached for
  // clamp(ttl_ms >= 0 ? ttl_ms : options.ttl_ms, min_ttl_ms, max_ttl_ms); errors for
  // negative_ttl_ms with their code (unless a still-servable stale entry exists: it is kept).
  // Every waiter of the lookup is then answered in arrival order.
  void complete(uint64_t lookup_id, const Answer& a, uint64_t now_ms);

  // Drops cached entries of one host (all families) or of every host. Lookups pending for those
  // keys are detached: they still complete and answer their own waiters, but their answer is not
  // cached, and later lookups of the key start a new resolver call (the clear() is a barrier:
  // nothing resolved before it is cached after it).
  void clear(const std::string& host = "");

  Stats stats() const;
  const std::shared_ptr<EntryStore>& store() const { return store_; }
  // Caches sharing a store also share max_in_flight, as member m of its bound (EntryStore::join).
  void share_bound(EntryStore::MemberId m) { member_ = m; }
  // The store woke this member: a resolver call of another cache finished, there may be room.
  void pump_shared() { pump(); }

 private:
  using AddrList = EntryStore::AddrList;

  struct Pending {
    uint64_t ticket;
    Waiter* waiter;
  };

  struct Lookup {
    std::string key;
    std::string host;            // lowercased
    int family = 0;
    std::vector<Pending> waiters;  // arrival order; cancelled ones are skipped (see tickets_)
    size_t live = 0;             // waiters not cancelled
    bool started = false;
    bool detached = false;       // cleared meanwhile: answer not cached
    bool background = false;     // started as a stale refresh
    uint64_t generation = 0;     // the store's, for the host, when the lookup was made
  };

  struct Override {
    std::vector<Address> addrs;
    size_t rotate = 0;
  };

  bool answer_static(const std::string& host, uint16_t port, int family, Waiter* w);
  uint64_t new_lookup(const std::string& key, const std::string& host, int family, bool background);
  void start(uint64_t id);
  void pump();
  void maybe_drop(uint64_t id);
  void detach(const std::string& key);
  void evict();
  bool may_start();  // room under max_in_flight for one more resolver call (counted if shared)

  Options opts_;
  Resolver* resolver_;
  std::shared_ptr<EntryStore> store_;
  EntryStore::MemberId member_ = 0;  // of the store's resolver bound; 0: the bound is this cache's
  std::unordered_map<uint64_t, Lookup> lookups_;       // pending: queued or started
  std::unordered_map<std::string, uint64_t> pending_by_key_;  // not detached
  std::unordered_map<uint64_t, uint64_t> tickets_;     // live ticket -> lookup id
  std::deque<uint64_t> queue_;                         // lookups waiting for max_in_flight
  std::unordered_map<std::string, Override> overrides_;  // "host" or "host:port", lowercased
  uint64_t next_lookup_ = 1;
  uint64_t next_ticket_ = 1;
  size_t in_flight_ = 0;
  size_t queued_ = 0;
  bool pumping_ = false;
  const std::vector<Address> empty_;
  Stats stats_;
};

}  // namespace uvf::dns
