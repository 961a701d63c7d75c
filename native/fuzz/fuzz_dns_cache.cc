// Fuzz target: the dns::DnsCache state machine driven by a fuzzed sequence of operations.
//
// Input (FuzzedDataProvider): cache options, then ops until the input runs out: lookup (host,
// port, family, what the waiter does from its callback), cancel, complete an outstanding resolver
// call (addresses + TTL, or an error), complete an unknown id, advance time, clear one host or
// all, switch the fake resolver between answering later and answering from inside resolve(),
// set or remove an override. At the end every outstanding call is answered (or, when the input
// says so, the cache is destroyed with lookups still pending).
//
// Invariants:
//   - every waiter is called at most once, never after cancel() (a cancelled waiter is deleted,
//     so a late call is also an ASan use-after-free); lookup() returns 0 iff it answered the
//     waiter from inside the call; once everything is answered, every waiter not cancelled has
//     been called exactly once; destroying the cache calls no one;
//   - an answer is well formed: Ok with >= 1 address and rotate_from < count, or an error with
//     none; only the requested family; only addresses produced for that host (by the resolver,
//     an override or the literal itself); errors only from the set the resolver can give;
//   - resolver calls out == stats.in_flight <= max_in_flight; lookups are queued only while the
//     cap is reached; entries <= max_entries + lookups pending; stats add up.
#include <fuzzer/FuzzedDataProvider.h>

#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "dns/dns_cache.h"
#include "fuzz_util.h"

using namespace uvf::dns;
using uvf::Error;

namespace {

// Hosts looked up: names differing only in case share a key; literals of both families; a
// bracketed form that is not a literal; the empty name.
const char* const kHosts[] = {"a.test", "A.Test", "b.test", "c.test", "d.test",
                              "127.0.0.1", "::1", "10.9.8.7", "[::1]", ""};
// Override keys and the host each applies to.
struct OverrideKey {
  const char* key;
  const char* host;
};
const OverrideKey kOverrides[] = {{"a.test", "a.test"}, {"A.TEST:443", "a.test"},
                                  {"b.test:80", "b.test"}, {"[::1]:80", "::1"},
                                  {"127.0.0.1", "127.0.0.1"}};
const uint16_t kPorts[] = {80, 443, 8080};
const Error kErrors[] = {Error::DnsNotFound, Error::DnsTemporary, Error::DnsFailed};

std::string lower(const std::string& s) {
  std::string out = s;
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  return out;
}

Address v4(unsigned i) {
  Address a;
  FUZZ_CHECK(parse_ip_literal("10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256), &a));
  return a;
}
Address v6(unsigned i) {
  Address a;
  FUZZ_CHECK(parse_ip_literal("fd00::" + std::to_string(i % 10000), &a));
  return a;
}

struct Harness;

struct Slot;

struct FuzzWaiter : Waiter {
  Harness* h;
  size_t slot;
  void on_dns(Error e, const std::vector<Address>& addrs, size_t rotate_from) override;
};

struct Slot {
  std::unique_ptr<FuzzWaiter> waiter;  // reset on cancel: calling it afterwards is a UAF
  std::string host;                    // lowercased
  int family = 0;
  uint64_t ticket = 0;
  bool in_lookup = false;
  bool cancelled = false;
  int answers = 0;
  uint8_t reentry = 0;  // what the waiter does from on_dns
};

struct Outstanding {
  uint64_t id;
  std::string host;
  int family;
};

struct FakeResolver : Resolver {
  Harness* h;
  void resolve(const std::string& host, int family, uint64_t id) override;
};

struct Harness {
  FuzzedDataProvider& in;
  Options opts;
  FakeResolver resolver;
  std::unique_ptr<DnsCache> cache;
  std::vector<Slot> slots;
  std::vector<Outstanding> out;
  std::vector<uint64_t> done_ids;  // completed resolver calls
  std::unordered_map<std::string, std::set<std::string>> produced;  // host -> addresses
  uint64_t now = 0;
  uint64_t resolves = 0;
  bool sync = false;
  int reentry_budget = 64;
  unsigned next_addr = 1;

  explicit Harness(FuzzedDataProvider& p) : in(p) {
    resolver.h = this;
    opts.ttl_ms = in.ConsumeIntegralInRange<uint64_t>(0, 5000);
    opts.min_ttl_ms = in.ConsumeIntegralInRange<uint64_t>(0, 100);
    opts.max_ttl_ms = in.ConsumeBool() ? UINT64_MAX : in.ConsumeIntegralInRange<uint64_t>(0, 10000);
    opts.negative_ttl_ms = in.ConsumeIntegralInRange<uint64_t>(0, 2000);
    opts.stale_ttl_ms = in.ConsumeBool() ? 0 : in.ConsumeIntegralInRange<uint64_t>(0, 5000);
    opts.max_entries = in.ConsumeIntegralInRange<size_t>(0, 6);
    opts.max_in_flight = in.ConsumeIntegralInRange<size_t>(0, 3);
    cache = std::make_unique<DnsCache>(opts, &resolver);
    for (const char* lit : {"127.0.0.1", "::1", "10.9.8.7"}) {
      Address a;
      FUZZ_CHECK(parse_ip_literal(lit, &a));
      produced[lit].insert(address_to_string(a));
    }
  }

  // Addresses for an answer to `host`, of the requested family (0: both), recorded as produced.
  std::vector<Address> make_addrs(const std::string& host, int family, size_t count) {
    std::vector<Address> v;
    for (size_t i = 0; i < count; ++i) {
      bool six = family == 6 || (family == 0 && in.ConsumeBool());
      v.push_back(six ? v6(next_addr) : v4(next_addr));
      ++next_addr;
      produced[host].insert(address_to_string(v.back()));
    }
    return v;
  }

  Answer make_answer(const std::string& host, int family) {
    Answer a;
    uint8_t kind = in.ConsumeIntegral<uint8_t>();
    if (kind % 4 == 0) {
      a.error = kErrors[(kind >> 2) % 3];
    } else {
      // Ok with no addresses is allowed (read as DnsNotFound).
      a.addrs = make_addrs(host, family, in.ConsumeIntegralInRange<size_t>(kind % 4 == 1 ? 0 : 1, 4));
      a.ttl_ms = in.ConsumeBool() ? -1 : in.ConsumeIntegralInRange<int64_t>(0, 3000);
    }
    return a;
  }

  void lookup(uint8_t reentry) {
    const char* host = kHosts[in.ConsumeIntegralInRange<size_t>(0, std::size(kHosts) - 1)];
    uint16_t port = kPorts[in.ConsumeIntegralInRange<size_t>(0, std::size(kPorts) - 1)];
    int family = in.PickValueInArray({0, 4, 6, 5});
    size_t i = slots.size();
    slots.emplace_back();
    slots[i].waiter = std::make_unique<FuzzWaiter>();
    slots[i].waiter->h = this;
    slots[i].waiter->slot = i;
    slots[i].host = lower(host);
    slots[i].family = family == 4 || family == 6 ? family : 0;
    slots[i].reentry = reentry;
    slots[i].in_lookup = true;
    FuzzWaiter* w = slots[i].waiter.get();
    uint64_t t = cache->lookup(host, port, family, now, w);
    // slots may have grown (reentrant lookups): index again.
    Slot& s = slots[i];
    s.in_lookup = false;
    s.ticket = t;
    if (t == 0) {
      FUZZ_CHECK(s.answers == 1);
    } else {
      FUZZ_CHECK(s.answers == 0 && !s.cancelled);
    }
  }

  void cancel(size_t i) {
    if (slots.empty()) return;
    Slot& s = slots[i % slots.size()];
    if (s.in_lookup) return;  // its ticket is not known yet
    cache->cancel(s.ticket);  // ticket 0 / answered tickets must be ignored
    if (s.answers == 0 && !s.cancelled) {
      s.cancelled = true;
      s.waiter.reset();
    }
  }

  void complete(size_t i) {
    if (out.empty()) return;
    Outstanding o = out[i % out.size()];
    out.erase(out.begin() + static_cast<long>(i % out.size()));
    Answer a = make_answer(o.host, o.family);
    done_ids.push_back(o.id);
    cache->complete(o.id, a, now);
  }

  // complete() for an id the resolver does not hold: one already completed (a resolver answering
  // twice) or a made-up one (possibly a queued lookup's). Must be ignored: no waiter is called.
  void complete_stale() {
    uint64_t id;
    if (!done_ids.empty() && in.ConsumeBool()) {
      id = done_ids[in.ConsumeIntegralInRange<size_t>(0, done_ids.size() - 1)];
    } else {
      id = in.ConsumeIntegral<uint64_t>();
      for (const Outstanding& o : out) {
        if (o.id == id) return;
      }
    }
    std::vector<int> before;
    for (const Slot& s : slots) before.push_back(s.answers);
    Answer a = make_answer("", 0);
    cache->complete(id, a, now);
    for (size_t i = 0; i < before.size(); ++i) FUZZ_CHECK(slots[i].answers == before[i]);
  }

  void clear() {
    if (in.ConsumeBool()) {
      cache->clear();
    } else {
      cache->clear(kHosts[in.ConsumeIntegralInRange<size_t>(0, std::size(kHosts) - 1)]);
    }
  }

  void set_override() {
    const OverrideKey& k = kOverrides[in.ConsumeIntegralInRange<size_t>(0, std::size(kOverrides) - 1)];
    size_t count = in.ConsumeIntegralInRange<size_t>(0, 3);
    cache->set_override(k.key, make_addrs(k.host, 0, count));
  }

  // Called from a waiter's on_dns: the cache must cope with being re-entered.
  void reenter(uint8_t action) {
    if (reentry_budget <= 0) return;
    --reentry_budget;
    switch (action % 5) {
      case 1: lookup(0); break;
      case 2: cancel(in.ConsumeIntegral<uint8_t>()); break;
      case 3: clear(); break;
      case 4: set_override(); break;
      default: break;
    }
  }

  void check_state() {
    Stats st = cache->stats();
    FUZZ_CHECK(st.lookups == st.hits + st.stale_served + st.negative_hits + st.misses + st.static_answers);
    FUZZ_CHECK(st.coalesced <= st.misses);
    FUZZ_CHECK(st.resolves == resolves);
    FUZZ_CHECK(st.in_flight == out.size());
    if (opts.max_in_flight > 0) FUZZ_CHECK(st.in_flight <= opts.max_in_flight);
    if (st.queued > 0) FUZZ_CHECK(opts.max_in_flight > 0 && st.in_flight == opts.max_in_flight);
    FUZZ_CHECK(st.entries <= opts.max_entries + st.in_flight + st.queued);
    size_t waiting = 0;
    for (const Slot& s : slots) {
      FUZZ_CHECK(s.answers <= 1 && !(s.cancelled && s.answers));
      if (!s.cancelled && s.answers == 0) ++waiting;
    }
    if (waiting > 0) FUZZ_CHECK(st.in_flight + st.queued > 0);
  }
};

void FuzzWaiter::on_dns(Error e, const std::vector<Address>& addrs, size_t rotate_from) {
  Slot& s = h->slots[slot];
  FUZZ_CHECK(!s.cancelled);
  FUZZ_CHECK(++s.answers == 1);
  if (e == Error::Ok) {
    FUZZ_CHECK(!addrs.empty() && rotate_from < addrs.size());
  } else {
    FUZZ_CHECK(addrs.empty() && rotate_from == 0);
    FUZZ_CHECK(e == Error::DnsNotFound || e == Error::DnsTemporary || e == Error::DnsFailed);
  }
  const std::set<std::string>& ok = h->produced[s.host];
  for (const Address& a : addrs) {
    if (s.family == 4) FUZZ_CHECK(address_family(a) == AF_INET);
    if (s.family == 6) FUZZ_CHECK(address_family(a) == AF_INET6);
    FUZZ_CHECK(ok.count(address_to_string(a)) == 1);
  }
  if (s.reentry) h->reenter(s.reentry);
}

void FakeResolver::resolve(const std::string& host, int family, uint64_t id) {
  FUZZ_CHECK(family == 0 || family == 4 || family == 6);
  for (const Outstanding& o : h->out) FUZZ_CHECK(o.id != id);
  ++h->resolves;
  if (h->sync && h->reentry_budget > 0) {
    --h->reentry_budget;
    Answer a = h->make_answer(host, family);
    h->done_ids.push_back(id);
    h->cache->complete(id, a, h->now);
    return;
  }
  h->out.push_back({id, host, family});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  Harness h(in);
  for (int ops = 0; ops < 256 && in.remaining_bytes() > 0; ++ops) {
    uint8_t op = in.ConsumeIntegral<uint8_t>();
    switch (op % 9) {
      case 0:
      case 1: h.lookup(static_cast<uint8_t>(op >> 4)); break;
      case 2: h.cancel(in.ConsumeIntegral<uint8_t>()); break;
      case 3:
      case 4: h.complete(in.ConsumeIntegral<uint8_t>()); break;
      case 5: h.complete_stale(); break;
      case 6: h.now += uint64_t{1} << in.ConsumeIntegralInRange<unsigned>(0, 12); break;
      case 7:
        if (op & 0x80) h.sync = !h.sync;
        else if (op & 0x40) h.set_override();
        else h.clear();
        break;
      default: break;  // no-op: state is checked after every op anyway
    }
    h.check_state();
  }

  if (size > 0 && (data[0] & 7) == 7) {
    // Destroyed with lookups pending: nobody is called.
    std::vector<int> before;
    for (const Slot& s : h.slots) before.push_back(s.answers);
    h.cache.reset();
    for (size_t i = 0; i < before.size(); ++i) FUZZ_CHECK(h.slots[i].answers == before[i]);
    return 0;
  }

  // Drain: answer every outstanding call (answers may start queued lookups and reentrant ones).
  h.sync = false;
  while (!h.out.empty()) {
    Outstanding o = h.out.front();
    h.out.erase(h.out.begin());
    Answer a;
    a.addrs = h.make_addrs(o.host, o.family, 1);
    h.cache->complete(o.id, a, h.now);
    h.check_state();
  }
  Stats st = h.cache->stats();
  FUZZ_CHECK(st.in_flight == 0 && st.queued == 0);
  for (const Slot& s : h.slots) FUZZ_CHECK(s.cancelled || s.answers == 1);
  return 0;
}
