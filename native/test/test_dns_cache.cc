// DnsCache decisions, driven by a fake resolver and an explicit clock: coalescing, TTLs (clamped,
// resolver-supplied), negative caching, stale-while-revalidate, LRU bound, max_in_flight queueing,
// IP literals, overrides, rotation, happy-eyeballs ordering, cancel, clear, reentrancy, stats.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "check.h"
#include "dns/dns_cache.h"

using uvf::Error;
using namespace uvf::dns;

namespace {

struct Call {
  std::string host;
  int family;
  uint64_t id;
};

struct FakeResolver : Resolver {
  std::vector<Call> calls;
  // When set, answers synchronously from resolve().
  std::function<void(const Call&)> sync;
  void resolve(const std::string& host, int family, uint64_t id) override {
    calls.push_back({host, family, id});
    if (sync) sync(calls.back());
  }
};

struct Got {
  Error error;
  std::vector<std::string> addrs;
  size_t rotate;
};

struct Rec : Waiter {
  std::vector<Got> got;
  std::function<void()> then;  // runs inside on_dns (reentrancy); once set, runs on every call
  void on_dns(Error e, const std::vector<Address>& addrs, size_t rotate_from) override {
    Got g{e, {}, rotate_from};
    for (const Address& a : addrs) g.addrs.push_back(address_to_string(a));
    got.push_back(g);
    if (then) then();
  }
  size_t n() const { return got.size(); }
};

Address ip(const char* s) {
  Address a;
  bool ok = parse_ip_literal(s, &a);
  CHECK(ok);
  return a;
}

Answer ok(std::vector<const char*> ips, int64_t ttl = -1) {
  Answer a;
  for (const char* s : ips) a.addrs.push_back(ip(s));
  a.ttl_ms = ttl;
  return a;
}

Answer fail(Error e) {
  Answer a;
  a.error = e;
  return a;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) {
    if (!s.empty()) s += ",";
    s += x;
  }
  return s;
}

std::string join(const std::vector<Address>& v) {
  std::vector<std::string> s;
  for (const auto& a : v) s.push_back(address_to_string(a));
  return join(s);
}

}  // namespace

TEST(dns_ip_literals_never_touch_resolver) {
  FakeResolver r;
  DnsCache c({}, &r);
  Rec w;
  CHECK_EQ(c.lookup("127.0.0.1", 80, 0, 0, &w), 0u);
  CHECK_EQ(c.lookup("::1", 80, 0, 0, &w), 0u);
  CHECK_EQ(c.lookup("2001:DB8::A", 80, 6, 0, &w), 0u);
  CHECK_EQ(c.lookup("10.0.0.1", 80, 4, 0, &w), 0u);
  CHECK_EQ(c.lookup("10.0.0.1", 80, 6, 0, &w), 0u);  // family mismatch
  CHECK_EQ(c.lookup("::1", 80, 4, 0, &w), 0u);
  CHECK_EQ(r.calls.size(), 0u);
  CHECK_EQ(w.n(), 6u);
  CHECK(w.got[0].error == Error::Ok);
  CHECK_EQ(join(w.got[0].addrs), "127.0.0.1");
  CHECK_EQ(join(w.got[1].addrs), "::1");
  CHECK_EQ(join(w.got[2].addrs), "2001:db8::a");
  CHECK_EQ(join(w.got[3].addrs), "10.0.0.1");
  CHECK(w.got[4].error == Error::DnsNotFound);
  CHECK(w.got[5].error == Error::DnsNotFound);
  CHECK(w.got[4].addrs.empty());
  Stats s = c.stats();
  CHECK_EQ(s.lookups, 6u);
  CHECK_EQ(s.static_answers, 6u);
  CHECK_EQ(s.misses, 0u);
  CHECK_EQ(s.entries, 0u);

  // Not literals: names, bracketed v6, v4 with junk, zone ids go to the resolver.
  Address a;
  CHECK(!parse_ip_literal("[::1]", &a));
  CHECK(!parse_ip_literal("1.2.3", &a));
  CHECK(!parse_ip_literal("1.2.3.4.5", &a));
  CHECK(!parse_ip_literal("example.com", &a));
  CHECK(!parse_ip_literal("", &a));
  CHECK(c.lookup("[::1]", 80, 0, 0, &w) != 0u);
  CHECK_EQ(r.calls.size(), 1u);
}

TEST(dns_coalesces_10000_concurrent_misses) {
  FakeResolver r;
  DnsCache c({}, &r);
  std::vector<Rec> ws(10000);
  for (auto& w : ws) CHECK(c.lookup("Example.COM", 443, 0, 5, &w) != 0u);
  CHECK_EQ(r.calls.size(), 1u);
  CHECK_EQ(r.calls[0].host, "example.com");
  CHECK_EQ(r.calls[0].family, 0);
  Stats s = c.stats();
  CHECK_EQ(s.misses, 10000u);
  CHECK_EQ(s.coalesced, 9999u);
  CHECK_EQ(s.in_flight, 1u);
  for (auto& w : ws) CHECK_EQ(w.n(), 0u);
  c.complete(r.calls[0].id, ok({"192.0.2.1", "192.0.2.2"}), 6);
  size_t answered = 0, first = 0;
  for (size_t i = 0; i < ws.size(); ++i) {
    if (ws[i].n() == 1 && ws[i].got[0].error == Error::Ok &&
        join(ws[i].got[0].addrs) == "192.0.2.1,192.0.2.2") {
      ++answered;
    }
    if (ws[i].n() == 1 && ws[i].got[0].rotate == 0) ++first;
  }
  CHECK_EQ(answered, 10000u);
  CHECK_EQ(first, 5000u);  // coalesced waiters are spread across the addresses too
  s = c.stats();
  CHECK_EQ(s.in_flight, 0u);
  CHECK_EQ(s.entries, 1u);
  CHECK_EQ(s.resolves, 1u);
  // Now cached: no more resolver calls.
  Rec w;
  CHECK_EQ(c.lookup("example.com", 443, 0, 7, &w), 0u);
  CHECK_EQ(w.n(), 1u);
  CHECK_EQ(r.calls.size(), 1u);
}

TEST(dns_ttl_expiry_and_refresh) {
  FakeResolver r;
  Options o;
  o.ttl_ms = 100;
  DnsCache c(o, &r);
  Rec w;
  c.lookup("a.test", 80, 0, 1000, &w);
  c.complete(r.calls[0].id, ok({"192.0.2.1"}), 1000);
  CHECK_EQ(w.n(), 1u);
  CHECK_EQ(c.lookup("a.test", 80, 0, 1099, &w), 0u);  // fresh until 1100 (exclusive)
  CHECK_EQ(w.n(), 2u);
  CHECK_EQ(r.calls.size(), 1u);
  CHECK(c.lookup("a.test", 80, 0, 1100, &w) != 0u);  // expired: miss
  CHECK_EQ(w.n(), 2u);
  CHECK_EQ(r.calls.size(), 2u);
  c.complete(r.calls[1].id, ok({"192.0.2.9"}), 1150);
  CHECK_EQ(w.n(), 3u);
  CHECK_EQ(join(w.got[2].addrs), "192.0.2.9");
  CHECK_EQ(c.lookup("a.test", 80, 0, 1249, &w), 0u);  // new TTL counts from the completion
  CHECK_EQ(join(w.got[3].addrs), "192.0.2.9");
  CHECK(c.lookup("a.test", 80, 0, 1250, &w) != 0u);
  CHECK_EQ(r.calls.size(), 3u);
  Stats s = c.stats();
  CHECK_EQ(s.hits, 2u);
  CHECK_EQ(s.misses, 3u);
}

TEST(dns_ttl_clamping_and_resolver_ttl) {
  FakeResolver r;
  Options o;
  o.ttl_ms = 10'000;
  o.min_ttl_ms = 50;
  o.max_ttl_ms = 500;
  DnsCache c(o, &r);
  Rec w;
  auto fresh_until = [&](const char* host, int64_t ttl) -> uint64_t {
    // Resolve at t=0 with the given answer TTL, then probe for the first miss.
    size_t before = r.calls.size();
    c.lookup(host, 80, 0, 0, &w);
    c.complete(r.calls[before].id, ok({"192.0.2.1"}, ttl), 0);
    for (uint64_t t = 0; t < 20'000; t += 1) {
      size_t calls = r.calls.size();
      c.lookup(host, 80, 0, t, &w);
      if (r.calls.size() != calls) return t;
    }
    return UINT64_MAX;
  };
  CHECK_EQ(fresh_until("default.test", -1), 500u);  // options.ttl_ms 10s clamped to max
  CHECK_EQ(fresh_until("given.test", 200), 200u);   // resolver TTL used
  CHECK_EQ(fresh_until("low.test", 0), 50u);        // raised to min
  CHECK_EQ(fresh_until("high.test", 3'600'000), 500u);

  // Unclamped defaults: the resolver TTL wins over options.ttl_ms.
  FakeResolver r2;
  Options o2;
  o2.ttl_ms = 100;
  DnsCache c2(o2, &r2);
  c2.lookup("x.test", 80, 0, 10, &w);
  c2.complete(r2.calls[0].id, ok({"192.0.2.1"}, INT64_MAX), 10);
  c2.lookup("x.test", 80, 0, static_cast<uint64_t>(INT64_MAX), &w);
  CHECK_EQ(r2.calls.size(), 1u);
  // TTL 0: answered, never fresh.
  c2.lookup("zero.test", 80, 0, 10, &w);
  c2.complete(r2.calls[1].id, ok({"192.0.2.1"}, 0), 10);
  c2.lookup("zero.test", 80, 0, 10, &w);
  CHECK_EQ(r2.calls.size(), 3u);

  // A huge TTL saturates instead of wrapping around.
  FakeResolver r3;
  Options o3;
  o3.ttl_ms = UINT64_MAX;
  o3.stale_ttl_ms = UINT64_MAX;
  DnsCache c3(o3, &r3);
  c3.lookup("big.test", 80, 0, 10, &w);
  c3.complete(r3.calls[0].id, ok({"192.0.2.1"}), 10);
  c3.lookup("big.test", 80, 0, UINT64_MAX - 1, &w);
  CHECK_EQ(r3.calls.size(), 1u);
  CHECK_EQ(c3.stats().hits, 1u);
}

TEST(dns_negative_caching_keeps_code_and_expires) {
  FakeResolver r;
  Options o;
  o.negative_ttl_ms = 300;
  DnsCache c(o, &r);
  Rec w;
  c.lookup("nx.test", 80, 0, 0, &w);
  c.lookup("nx.test", 80, 0, 0, &w);
  c.complete(r.calls[0].id, fail(Error::DnsTemporary), 100);
  CHECK_EQ(w.n(), 2u);
  CHECK(w.got[0].error == Error::DnsTemporary);
  CHECK(w.got[1].error == Error::DnsTemporary);
  CHECK_EQ(c.lookup("nx.test", 80, 0, 399, &w), 0u);
  CHECK_EQ(w.n(), 3u);
  CHECK(w.got[2].error == Error::DnsTemporary);
  CHECK(w.got[2].addrs.empty());
  CHECK_EQ(r.calls.size(), 1u);
  CHECK(c.lookup("nx.test", 80, 0, 400, &w) != 0u);  // expired
  CHECK_EQ(r.calls.size(), 2u);
  c.complete(r.calls[1].id, fail(Error::DnsNotFound), 400);
  CHECK(w.got[3].error == Error::DnsNotFound);
  c.lookup("nx.test", 80, 0, 401, &w);
  CHECK(w.got[4].error == Error::DnsNotFound);

  // Ok with no addresses is a not-found; other families are other keys.
  c.lookup("empty.test", 80, 4, 0, &w);
  c.complete(r.calls[2].id, Answer{}, 0);
  CHECK(w.got[5].error == Error::DnsNotFound);
  c.lookup("empty.test", 80, 6, 0, &w);
  CHECK_EQ(r.calls.size(), 4u);
  CHECK_EQ(r.calls[3].family, 6);

  Stats s = c.stats();
  CHECK_EQ(s.negative_hits, 2u);
  CHECK_EQ(s.errors, 3u);

  // negative_ttl 0: errors are not cached.
  FakeResolver r2;
  Options o2;
  o2.negative_ttl_ms = 0;
  DnsCache c2(o2, &r2);
  c2.lookup("nx.test", 80, 0, 0, &w);
  c2.complete(r2.calls[0].id, fail(Error::DnsFailed), 0);
  CHECK(w.got.back().error == Error::DnsFailed);
  c2.lookup("nx.test", 80, 0, 0, &w);
  CHECK_EQ(r2.calls.size(), 2u);
  CHECK_EQ(c2.stats().entries, 0u);
}

TEST(dns_stale_while_revalidate) {
  FakeResolver r;
  Options o;
  o.ttl_ms = 100;
  o.stale_ttl_ms = 50;
  DnsCache c(o, &r);
  Rec w;
  c.lookup("s.test", 80, 0, 0, &w);
  c.complete(r.calls[0].id, ok({"192.0.2.1"}), 0);
  // Stale within the window: served now, one background refresh.
  CHECK_EQ(c.lookup("s.test", 80, 0, 120, &w), 0u);
  CHECK_EQ(w.n(), 2u);
  CHECK_EQ(join(w.got[1].addrs), "192.0.2.1");
  CHECK_EQ(r.calls.size(), 2u);
  CHECK_EQ(c.lookup("s.test", 80, 0, 130, &w), 0u);
  CHECK_EQ(c.lookup("s.test", 80, 0, 149, &w), 0u);
  CHECK_EQ(w.n(), 4u);
  CHECK_EQ(r.calls.size(), 2u);  // still exactly one refresh
  Stats s = c.stats();
  CHECK_EQ(s.stale_served, 3u);
  CHECK_EQ(s.in_flight, 1u);
  c.complete(r.calls[1].id, ok({"192.0.2.2"}), 140);
  CHECK_EQ(w.n(), 4u);  // a background refresh has no waiters
  CHECK_EQ(c.lookup("s.test", 80, 0, 200, &w), 0u);
  CHECK_EQ(join(w.got[4].addrs), "192.0.2.2");
  CHECK_EQ(c.stats().hits, 1u);

  // Beyond the stale window: a miss (and the miss joins a refresh that is still pending).
  CHECK_EQ(c.lookup("s.test", 80, 0, 250, &w), 0u);  // stale (expired 240): refresh #3
  CHECK_EQ(r.calls.size(), 3u);
  CHECK(c.lookup("s.test", 80, 0, 290, &w) != 0u);  // beyond 290: miss, joins refresh #3
  CHECK_EQ(r.calls.size(), 3u);
  CHECK_EQ(c.stats().coalesced, 1u);
  c.complete(r.calls[2].id, ok({"192.0.2.3"}), 300);
  CHECK_EQ(join(w.got.back().addrs), "192.0.2.3");
  CHECK(c.lookup("s.test", 80, 0, 1000, &w) != 0u);  // far beyond: plain miss
  CHECK_EQ(r.calls.size(), 4u);
}

TEST(dns_failed_refresh_keeps_stale_entry) {
  FakeResolver r;
  Options o;
  o.ttl_ms = 100;
  o.stale_ttl_ms = 100;
  DnsCache c(o, &r);
  Rec w;
  c.lookup("s.test", 80, 0, 0, &w);
  c.complete(r.calls[0].id, ok({"192.0.2.1"}), 0);
  c.lookup("s.test", 80, 0, 110, &w);  // stale → refresh
  CHECK_EQ(r.calls.size(), 2u);
  c.complete(r.calls[1].id, fail(Error::DnsTemporary), 120);
  c.lookup("s.test", 80, 0, 130, &w);  // still served stale, a new refresh
  CHECK(w.got.back().error == Error::Ok);
  CHECK_EQ(r.calls.size(), 3u);
  c.complete(r.calls[2].id, fail(Error::DnsTemporary), 210);  // window ended: negative now
  c.lookup("s.test", 80, 0, 211, &w);
  CHECK(w.got.back().error == Error::DnsTemporary);
  CHECK_EQ(c.stats().negative_hits, 1u);
}

TEST(dns_lru_bound_and_eviction_order) {
  FakeResolver r;
  Options o;
  o.max_entries = 3;
  o.ttl_ms = 1000;
  o.stale_ttl_ms = 1000;
  DnsCache c(o, &r);
  Rec w;
  auto resolve = [&](const char* host, uint64_t now) {
    size_t i = r.calls.size();
    c.lookup(host, 80, 0, now, &w);
    c.complete(r.calls[i].id, ok({"192.0.2.1"}), now);
  };
  resolve("a", 0);
  resolve("b", 0);
  resolve("c", 0);
  c.lookup("a", 80, 0, 1, &w);  // a is now most recently used
  resolve("d", 1);              // evicts b (least recently used)
  CHECK_EQ(c.stats().entries, 3u);
  CHECK_EQ(c.stats().evictions, 1u);
  size_t calls = r.calls.size();
  c.lookup("a", 80, 0, 2, &w);
  c.lookup("c", 80, 0, 2, &w);
  c.lookup("d", 80, 0, 2, &w);
  CHECK_EQ(r.calls.size(), calls);
  c.lookup("b", 80, 0, 2, &w);
  CHECK_EQ(r.calls.size(), calls + 1);
  c.complete(r.calls.back().id, ok({"192.0.2.1"}), 2);  // b back, evicts a (LRU: a,c,d → a)
  CHECK_EQ(c.stats().entries, 3u);
  calls = r.calls.size();
  c.lookup("a", 80, 0, 3, &w);
  CHECK_EQ(r.calls.size(), calls + 1);
  c.complete(r.calls.back().id, ok({"192.0.2.1"}), 3);  // evicts c
  calls = r.calls.size();
  c.lookup("c", 80, 0, 3, &w);
  CHECK_EQ(r.calls.size(), calls + 1);
  c.complete(r.calls.back().id, ok({"192.0.2.1"}), 3);  // evicts d; now b, a, c

  // An entry being refreshed is never evicted, even when least recently used.
  c.lookup("b", 80, 0, 1500, &w);  // b expired at 1002: stale → refresh pending
  uint64_t b_refresh = r.calls.back().id;
  CHECK_EQ(r.calls.back().host, "b");
  c.lookup("a", 80, 0, 1500, &w);  // stale → refresh (touches a)
  c.lookup("c", 80, 0, 1500, &w);  // stale → refresh
  // LRU order: c, a, b — b is the oldest but refreshing.
  for (const char* h : {"e", "f"}) {
    c.lookup(h, 80, 0, 1500, &w);
    c.complete(r.calls.back().id, ok({"192.0.2.1"}), 1500);
  }
  // a, b, c are refreshing, so the bound falls on the newcomers e and f themselves.
  CHECK_EQ(c.stats().entries, 3u);
  CHECK_EQ(c.stats().evictions, 6u);
  uint64_t stale_before = c.stats().stale_served;
  c.lookup("b", 80, 0, 1500, &w);  // still cached (stale), not evicted
  CHECK_EQ(c.stats().stale_served, stale_before + 1);
  calls = r.calls.size();
  c.complete(b_refresh, ok({"192.0.2.2"}), 1501);
  c.lookup("b", 80, 0, 1502, &w);
  CHECK_EQ(r.calls.size(), calls);  // b survived its refresh
  CHECK_EQ(join(w.got.back().addrs), "192.0.2.2");

  // max_entries 0: nothing cached, waiters still answered.
  FakeResolver r0;
  Options o0;
  o0.max_entries = 0;
  DnsCache c0(o0, &r0);
  Rec w0;
  c0.lookup("a", 80, 0, 0, &w0);
  c0.complete(r0.calls[0].id, ok({"192.0.2.1"}), 0);
  CHECK_EQ(w0.n(), 1u);
  CHECK_EQ(c0.stats().entries, 0u);
}

TEST(dns_max_in_flight_queues_fifo) {
  FakeResolver r;
  Options o;
  o.max_in_flight = 2;
  DnsCache c(o, &r);
  Rec wa, wb, wc, wd, wc2;
  c.lookup("a", 80, 0, 0, &wa);
  c.lookup("b", 80, 0, 0, &wb);
  uint64_t tc = c.lookup("c", 80, 0, 0, &wc);
  c.lookup("d", 80, 0, 0, &wd);
  c.lookup("c", 80, 0, 0, &wc2);  // coalesces with the queued lookup of c
  CHECK(tc != 0u);
  CHECK_EQ(r.calls.size(), 2u);
  Stats s = c.stats();
  CHECK_EQ(s.in_flight, 2u);
  CHECK_EQ(s.queued, 2u);
  CHECK_EQ(s.coalesced, 1u);
  c.complete(r.calls[1].id, ok({"192.0.2.2"}), 1);  // b done → c starts (FIFO)
  CHECK_EQ(r.calls.size(), 3u);
  CHECK_EQ(r.calls[2].host, "c");
  CHECK_EQ(wb.n(), 1u);
  c.complete(r.calls[0].id, ok({"192.0.2.1"}), 1);  // a done → d starts
  CHECK_EQ(r.calls[3].host, "d");
  c.complete(r.calls[2].id, ok({"192.0.2.3"}), 1);
  CHECK_EQ(wc.n(), 1u);
  CHECK_EQ(wc2.n(), 1u);
  s = c.stats();
  CHECK_EQ(s.in_flight, 1u);
  CHECK_EQ(s.queued, 0u);

  // A queued lookup whose waiters all cancel is dropped, never reaching the resolver.
  Rec we, wf;
  c.lookup("x", 80, 0, 2, &we);  // starts (1 + 1 in flight)
  uint64_t tf = c.lookup("y", 80, 0, 2, &wf);  // queued
  CHECK_EQ(c.stats().queued, 1u);
  c.cancel(tf);
  CHECK_EQ(c.stats().queued, 0u);
  size_t calls = r.calls.size();
  c.complete(r.calls[3].id, ok({"192.0.2.4"}), 3);
  CHECK_EQ(r.calls.size(), calls);
  CHECK_EQ(wf.n(), 0u);
  // ... and a later lookup of y starts afresh.
  c.lookup("y", 80, 0, 3, &wf);
  CHECK_EQ(r.calls.back().host, "y");
}

TEST(dns_overrides_host_and_host_port) {
  FakeResolver r;
  DnsCache c({}, &r);
  c.set_override("API.test", {ip("192.0.2.10"), ip("2001:db8::10")});
  c.set_override("api.test:8443", {ip("192.0.2.20")});
  c.set_override("[::1]:9000", {ip("192.0.2.30")});
  Rec w;
  CHECK_EQ(c.lookup("api.TEST", 80, 0, 0, &w), 0u);
  CHECK_EQ(join(w.got[0].addrs), "192.0.2.10,2001:db8::10");
  CHECK_EQ(c.lookup("api.test", 8443, 0, 0, &w), 0u);  // host:port wins
  CHECK_EQ(join(w.got[1].addrs), "192.0.2.20");
  c.lookup("api.test", 80, 6, 0, &w);  // family filtered
  CHECK_EQ(join(w.got[2].addrs), "2001:db8::10");
  c.lookup("api.test", 8443, 6, 0, &w);  // nothing left of that family
  CHECK(w.got[3].error == Error::DnsNotFound);
  c.lookup("::1", 9000, 0, 0, &w);  // bracketed v6 host:port override beats the literal
  CHECK_EQ(join(w.got[4].addrs), "192.0.2.30");
  c.lookup("::1", 9001, 0, 0, &w);
  CHECK_EQ(join(w.got[5].addrs), "::1");
  CHECK_EQ(r.calls.size(), 0u);
  c.clear();  // overrides survive clear()
  c.lookup("api.test", 80, 4, 0, &w);
  CHECK_EQ(join(w.got[6].addrs), "192.0.2.10");
  c.set_override("api.test", {});  // removed
  CHECK(c.lookup("api.test", 80, 0, 0, &w) != 0u);
  CHECK_EQ(r.calls.size(), 1u);
  CHECK_EQ(c.stats().static_answers, 7u);
}

TEST(dns_rotation_across_addresses) {
  FakeResolver r;
  DnsCache c({}, &r);
  Rec w;
  c.lookup("r.test", 80, 0, 0, &w);
  c.complete(r.calls[0].id, ok({"192.0.2.1", "192.0.2.2", "192.0.2.3"}), 0);
  for (int i = 0; i < 5; ++i) c.lookup("r.test", 80, 0, 1, &w);
  std::vector<size_t> rot;
  for (auto& g : w.got) rot.push_back(g.rotate);
  CHECK_EQ(rot.size(), 6u);
  std::vector<size_t> want{0, 1, 2, 0, 1, 2};
  CHECK(rot == want);
  // Overrides rotate too.
  c.set_override("o.test", {ip("192.0.2.1"), ip("192.0.2.2")});
  Rec wo;
  for (int i = 0; i < 3; ++i) c.lookup("o.test", 80, 0, 0, &wo);
  CHECK_EQ(wo.got[0].rotate, 0u);
  CHECK_EQ(wo.got[1].rotate, 1u);
  CHECK_EQ(wo.got[2].rotate, 0u);
}

TEST(dns_happy_eyeballs_ordering) {
  std::vector<Address> mixed{ip("192.0.2.1"), ip("192.0.2.2"), ip("2001:db8::1"),
                             ip("192.0.2.3"), ip("2001:db8::2")};
  CHECK_EQ(join(ordered_for_happy_eyeballs(mixed, 0)),
           "2001:db8::1,192.0.2.1,2001:db8::2,192.0.2.2,192.0.2.3");
  // rotate_from 3: 192.0.2.3, 2001:db8::2, 192.0.2.1, 192.0.2.2, 2001:db8::1
  CHECK_EQ(join(ordered_for_happy_eyeballs(mixed, 3)),
           "2001:db8::2,192.0.2.3,2001:db8::1,192.0.2.1,192.0.2.2");
  CHECK_EQ(join(ordered_for_happy_eyeballs(mixed, 8)),  // wraps (8 % 5 == 3)
           join(ordered_for_happy_eyeballs(mixed, 3)));
  std::vector<Address> v4{ip("192.0.2.1"), ip("192.0.2.2")};
  CHECK_EQ(join(ordered_for_happy_eyeballs(v4, 1)), "192.0.2.2,192.0.2.1");
  std::vector<Address> v6{ip("::1"), ip("::2"), ip("192.0.2.1")};
  CHECK_EQ(join(ordered_for_happy_eyeballs(v6, 0)), "::1,192.0.2.1,::2");
  CHECK(ordered_for_happy_eyeballs({}, 7).empty());
}

TEST(dns_cancel_including_from_another_callback) {
  FakeResolver r;
  DnsCache c({}, &r);
  Rec w1, w3;
  auto w2 = std::make_unique<Rec>();
  uint64_t t1 = c.lookup("c.test", 80, 0, 0, &w1);
  uint64_t t2 = c.lookup("c.test", 80, 0, 0, w2.get());
  uint64_t t3 = c.lookup("c.test", 80, 0, 0, &w3);
  CHECK(t1 != 0u && t2 != 0u && t3 != 0u && t1 != t2 && t2 != t3);
  c.cancel(t2);
  w2.reset();  // may be destroyed after cancel
  w1.then = [&] { c.cancel(t3); };  // cancels a later waiter of the same lookup
  c.complete(r.calls[0].id, ok({"192.0.2.1"}), 0);
  CHECK_EQ(w1.n(), 1u);
  CHECK_EQ(w3.n(), 0u);
  c.cancel(t1);  // already answered: no-op
  c.cancel(12345);

  // A started lookup whose waiters all cancel still completes and is cached.
  Rec w4;
  uint64_t t4 = c.lookup("d.test", 80, 0, 0, &w4);
  c.cancel(t4);
  CHECK_EQ(c.stats().in_flight, 1u);
  c.complete(r.calls[1].id, ok({"192.0.2.4"}), 0);
  CHECK_EQ(w4.n(), 0u);
  c.lookup("d.test", 80, 0, 1, &w4);
  CHECK_EQ(w4.n(), 1u);
  CHECK_EQ(r.calls.size(), 2u);
}

TEST(dns_reentrant_lookups_from_callbacks) {
  FakeResolver r;
  DnsCache c({}, &r);
  Rec retry, other, late;
  Rec first;
  // The first waiter retries the same host (a hit now) and asks for another (a new lookup).
  bool done = false;
  first.then = [&] {
    if (done) return;
    done = true;
    CHECK_EQ(c.lookup("re.test", 80, 0, 0, &retry), 0u);
    CHECK(c.lookup("other.test", 80, 0, 0, &other) != 0u);
  };
  c.lookup("re.test", 80, 0, 0, &first);
  c.lookup("re.test", 80, 0, 0, &late);
  c.complete(r.calls[0].id, ok({"192.0.2.1", "192.0.2.2"}), 0);
  CHECK_EQ(first.n(), 1u);
  CHECK_EQ(retry.n(), 1u);
  CHECK_EQ(late.n(), 1u);
  CHECK_EQ(r.calls.size(), 2u);
  CHECK_EQ(r.calls[1].host, "other.test");
  // Every answer for the entry got its own rotation slot.
  CHECK_EQ(first.got[0].rotate, 0u);
  CHECK_EQ(late.got[0].rotate, 1u);
  CHECK_EQ(retry.got[0].rotate, 0u);

  // A waiter that clears the cache from its callback, and a hit whose waiter clears it.
  Rec clearer;
  clearer.then = [&] { c.clear(); };
  c.lookup("re.test", 80, 0, 0, &clearer);  // hit; the entry is dropped during the callback
  CHECK_EQ(join(clearer.got[0].addrs), "192.0.2.1,192.0.2.2");
  CHECK_EQ(c.stats().entries, 0u);

  // A synchronous resolver: answered from inside lookup(), ticket 0.
  FakeResolver rs;
  DnsCache cs({}, &rs);
  rs.sync = [&](const Call& call) { cs.complete(call.id, ok({"192.0.2.7"}), 0); };
  Rec ws;
  CHECK_EQ(cs.lookup("sync.test", 80, 0, 0, &ws), 0u);
  CHECK_EQ(ws.n(), 1u);
  CHECK_EQ(cs.lookup("sync.test", 80, 0, 1, &ws), 0u);
  CHECK_EQ(rs.calls.size(), 1u);
  CHECK_EQ(cs.stats().in_flight, 0u);
}

TEST(dns_clear_host_and_all) {
  FakeResolver r;
  DnsCache c({}, &r);
  Rec w;
  c.lookup("a.test", 80, 4, 0, &w);
  c.lookup("A.test", 80, 6, 0, &w);
  c.lookup("b.test", 80, 0, 0, &w);
  c.complete(r.calls[0].id, ok({"192.0.2.1"}), 0);
  c.complete(r.calls[1].id, ok({"2001:db8::1"}), 0);
  c.complete(r.calls[2].id, ok({"192.0.2.2"}), 0);
  CHECK_EQ(c.stats().entries, 3u);
  c.clear("A.TEST");  // both families of a.test
  CHECK_EQ(c.stats().entries, 1u);
  c.lookup("b.test", 80, 0, 1, &w);
  CHECK_EQ(r.calls.size(), 3u);
  c.lookup("a.test", 80, 4, 1, &w);
  CHECK_EQ(r.calls.size(), 4u);

  // A lookup pending across clear(): its waiters are answered, its answer is not cached, and a
  // lookup after the clear starts a new resolver call.
  Rec before, after;
  c.clear();
  CHECK_EQ(c.stats().entries, 0u);
  c.lookup("a.test", 80, 4, 1, &before);  // call #3 was detached by clear(): a new call
  CHECK_EQ(r.calls.size(), 5u);
  uint64_t stale_id = r.calls[3].id;
  c.clear("a.test");
  c.lookup("a.test", 80, 4, 1, &after);
  CHECK_EQ(r.calls.size(), 6u);
  c.complete(stale_id, ok({"192.0.2.99"}), 2);
  CHECK_EQ(w.got.back().addrs.size(), 1u);
  CHECK_EQ(join(w.got.back().addrs), "192.0.2.99");  // waiter of call #4 answered
  CHECK_EQ(c.stats().entries, 0u);                   // not cached
  c.complete(r.calls[4].id, ok({"192.0.2.98"}), 2);  // also detached
  CHECK_EQ(join(before.got[0].addrs), "192.0.2.98");
  CHECK_EQ(c.stats().entries, 0u);
  c.complete(r.calls[5].id, ok({"192.0.2.3"}), 2);
  CHECK_EQ(join(after.got[0].addrs), "192.0.2.3");
  CHECK_EQ(c.stats().entries, 1u);
  c.lookup("a.test", 80, 4, 3, &w);
  CHECK_EQ(join(w.got.back().addrs), "192.0.2.3");
  CHECK_EQ(r.calls.size(), 6u);
  CHECK_EQ(c.stats().in_flight, 0u);
}

TEST(dns_complete_ignores_unknown_and_repeated_ids) {
  FakeResolver r;
  DnsCache c({}, &r);
  Rec w;
  c.lookup("a.test", 80, 0, 0, &w);
  c.complete(999, ok({"192.0.2.1"}), 0);
  CHECK_EQ(w.n(), 0u);
  c.complete(r.calls[0].id, ok({"192.0.2.1"}), 0);
  c.complete(r.calls[0].id, ok({"192.0.2.2"}), 0);
  CHECK_EQ(w.n(), 1u);
  CHECK_EQ(c.stats().in_flight, 0u);
  c.lookup("a.test", 80, 0, 1, &w);
  CHECK_EQ(join(w.got.back().addrs), "192.0.2.1");
}

TEST(dns_stats_counters_exact) {
  FakeResolver r;
  Options o;
  o.ttl_ms = 100;
  o.stale_ttl_ms = 100;
  o.negative_ttl_ms = 100;
  o.max_entries = 10;
  DnsCache c(o, &r);
  Rec w;
  c.lookup("a", 80, 0, 0, &w);         // miss
  c.lookup("a", 80, 0, 0, &w);         // miss, coalesced
  c.lookup("b", 80, 0, 0, &w);         // miss
  c.lookup("10.0.0.1", 80, 0, 0, &w);  // static
  c.complete(r.calls[0].id, ok({"192.0.2.1"}), 0);
  c.complete(r.calls[1].id, fail(Error::DnsNotFound), 0);
  c.lookup("a", 80, 0, 50, &w);   // hit
  c.lookup("b", 80, 0, 50, &w);   // negative hit
  c.lookup("a", 80, 0, 150, &w);  // stale served + refresh
  c.lookup("a", 80, 0, 160, &w);  // stale served
  c.lookup("b", 80, 0, 150, &w);  // miss (negative expired)
  Stats s = c.stats();
  CHECK_EQ(s.lookups, 9u);
  CHECK_EQ(s.misses, 4u);
  CHECK_EQ(s.coalesced, 1u);
  CHECK_EQ(s.hits, 1u);
  CHECK_EQ(s.negative_hits, 1u);
  CHECK_EQ(s.stale_served, 2u);
  CHECK_EQ(s.static_answers, 1u);
  CHECK_EQ(s.lookups, s.hits + s.stale_served + s.negative_hits + s.misses + s.static_answers);
  CHECK_EQ(s.resolves, 4u);
  CHECK_EQ(s.errors, 1u);
  CHECK_EQ(s.in_flight, 2u);
  CHECK_EQ(s.queued, 0u);
  CHECK_EQ(s.entries, 1u);  // b's expired negative entry was dropped by its miss
  CHECK_EQ(s.evictions, 0u);
  CHECK_EQ(w.n(), 8u);
}

TEST(dns_append_for_happy_eyeballs_matches_ordering_and_sets_port) {
  std::vector<Address> mixed{ip("192.0.2.1"), ip("192.0.2.2"), ip("2001:db8::1"),
                             ip("192.0.2.3"), ip("2001:db8::2")};
  for (size_t rot = 0; rot < 7; ++rot) {
    std::vector<sockaddr_storage> out;
    append_for_happy_eyeballs(mixed, rot, 8080, &out);
    std::vector<Address> as;
    for (const auto& ss : out) {
      Address a;
      a.addr = ss;
      as.push_back(a);
      uint16_t port = ss.ss_family == AF_INET
                          ? ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port)
                          : ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);
      CHECK_EQ(port, 8080);
    }
    CHECK_EQ(join(as), join(ordered_for_happy_eyeballs(mixed, rot)));
  }
  std::vector<sockaddr_storage> out;
  append_for_happy_eyeballs({}, 3, 80, &out);
  CHECK(out.empty());
  std::vector<Address> v4{ip("192.0.2.1"), ip("192.0.2.2"), ip("192.0.2.3")};
  append_for_happy_eyeballs(v4, 2, 80, &out);  // appends: rotation kept, one family
  CHECK_EQ(out.size(), 3u);
  Address first;
  first.addr = out[0];
  CHECK_EQ(address_to_string(first), "192.0.2.3");
}

// Two caches sharing one EntryStore (Session ioThreads: one per I/O thread): an answer resolved
// by one is a hit on the other, rotation is one per entry, and a clear on either is a barrier for
// lookups pending on both.
namespace {
struct StoreResolver : uvf::dns::Resolver {
  std::vector<std::pair<std::string, uint64_t>> calls;
  void resolve(const std::string& host, int, uint64_t id) override { calls.emplace_back(host, id); }
};
struct StoreWaiter : uvf::dns::Waiter {
  int calls = 0;
  uvf::Error err = uvf::Error::Ok;
  size_t rotate = 0;
  size_t n = 0;
  void on_dns(uvf::Error e, const std::vector<uvf::dns::Address>& a, size_t r) override {
    ++calls;
    err = e;
    rotate = r;
    n = a.size();
  }
};
uvf::dns::Answer two_addresses() {
  uvf::dns::Answer a;
  uvf::dns::Address x, y;
  uvf::dns::parse_ip_literal("10.0.0.1", &x);
  uvf::dns::parse_ip_literal("10.0.0.2", &y);
  a.addrs = {x, y};
  a.ttl_ms = 5000;
  return a;
}
}  // namespace

TEST(dns_shared_store_answer_of_one_cache_is_a_hit_on_the_other) {
  auto store = std::make_shared<uvf::dns::EntryStore>();
  StoreResolver r1, r2;
  uvf::dns::DnsCache c1({}, &r1, store), c2({}, &r2, store);
  StoreWaiter w1, w2, w3;
  CHECK(c1.lookup("Host.Example", 80, 0, 0, &w1) != 0);
  CHECK_EQ(r1.calls.size(), 1u);
  c1.complete(r1.calls[0].second, two_addresses(), 10);
  CHECK_EQ(w1.calls, 1);
  CHECK_EQ(w1.rotate, 0u);
  // The other cache: a hit, no resolver call, the next rotation.
  CHECK_EQ(c2.lookup("host.example", 80, 0, 20, &w2), 0u);
  CHECK(r2.calls.empty());
  CHECK_EQ(w2.calls, 1);
  CHECK_EQ(w2.n, 2u);
  CHECK_EQ(w2.rotate, 1u);
  CHECK_EQ(c2.stats().hits, 1u);
  CHECK_EQ(c1.stats().entries, 1u);
  CHECK_EQ(c2.stats().entries, 1u);
  // Cleared through either cache: gone for both.
  c2.clear("HOST.example");
  CHECK(c1.lookup("host.example", 80, 0, 30, &w3) != 0);
  CHECK_EQ(r1.calls.size(), 2u);
}

TEST(dns_shared_store_clear_on_one_cache_is_a_barrier_for_the_others_pending_lookup) {
  auto store = std::make_shared<uvf::dns::EntryStore>();
  StoreResolver r1, r2;
  uvf::dns::DnsCache c1({}, &r1, store), c2({}, &r2, store);
  StoreWaiter w1, w2, w3, w4;
  c1.lookup("a.example", 80, 0, 0, &w1);
  c1.lookup("b.example", 80, 0, 0, &w3);
  c2.clear("a.example");  // c1's lookup of a was made before: its answer must not be cached
  c1.complete(r1.calls[0].second, two_addresses(), 5);
  c1.complete(r1.calls[1].second, two_addresses(), 5);
  CHECK_EQ(w1.calls, 1);  // its own waiter is still answered
  CHECK(c2.lookup("a.example", 80, 0, 6, &w2) != 0);  // a miss: a new resolver call
  CHECK_EQ(r2.calls.size(), 1u);
  CHECK_EQ(c2.lookup("b.example", 80, 0, 6, &w4), 0u);  // another host's answer was cached
  store->clear("");
  StoreWaiter w5;
  c2.complete(r2.calls[0].second, two_addresses(), 7);  // made before the clear-all: not cached
  CHECK(c1.lookup("a.example", 80, 0, 8, &w5) != 0);
}

TEST(dns_shared_store_max_in_flight_bounds_the_caches_together) {
  auto store = std::make_shared<uvf::dns::EntryStore>();
  StoreResolver r1, r2;
  uvf::dns::Options o;
  o.max_in_flight = 2;
  uvf::dns::DnsCache c1(o, &r1, store), c2(o, &r2, store);
  int woke1 = 0, woke2 = 0;
  auto m1 = store->join([&] { ++woke1; });
  auto m2 = store->join([&] { ++woke2; });
  c1.share_bound(m1);
  c2.share_bound(m2);
  StoreWaiter w[6];
  c1.lookup("a.test", 80, 0, 0, &w[0]);
  c1.lookup("b.test", 80, 0, 0, &w[1]);
  c2.lookup("c.test", 80, 0, 0, &w[2]);  // the bound is reached by c1's two: queued
  c2.lookup("d.test", 80, 0, 0, &w[3]);
  CHECK_EQ(r1.calls.size(), 2u);
  CHECK(r2.calls.empty());
  CHECK_EQ(store->in_flight(), 2u);
  CHECK_EQ(c2.stats().queued, 2u);
  // One of c1's finishes: c2 is woken (on its own thread, it then pumps) and starts one.
  c1.complete(r1.calls[0].second, two_addresses(), 1);
  CHECK_EQ(woke2, 1);
  CHECK_EQ(woke1, 0);
  c2.pump_shared();
  CHECK_EQ(r2.calls.size(), 1u);
  CHECK_EQ(store->in_flight(), 2u);
  c2.pump_shared();  // no room: nothing more starts
  CHECK_EQ(r2.calls.size(), 1u);
  // A cache leaving with calls out gives them back and wakes the others.
  store->leave(m1);
  CHECK_EQ(store->in_flight(), 1u);
  CHECK_EQ(woke2, 2);
  c2.pump_shared();
  CHECK_EQ(r2.calls.size(), 2u);
  c2.complete(r2.calls[0].second, two_addresses(), 2);
  c2.complete(r2.calls[1].second, two_addresses(), 2);
  CHECK_EQ(store->in_flight(), 0u);
  CHECK_EQ(w[2].calls + w[3].calls, 2);
}
