#include "dns/dns_cache.h"

#ifndef _WIN32
#include <arpa/inet.h>
#endif

#include <cstring>
#include <iterator>
#include <utility>

namespace uvf::dns {

namespace {

uint64_t sat_add(uint64_t a, uint64_t b) { return a + b < a ? UINT64_MAX : a + b; }

std::string lower(const std::string& s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

int normalize_family(int family) { return family == 4 || family == 6 ? family : 0; }

bool family_matches(int family, const Address& a) {
  if (family == 4) return address_family(a) == AF_INET;
  if (family == 6) return address_family(a) == AF_INET6;
  return true;
}

std::string cache_key(const std::string& lowered_host, int family) {
  std::string k;
  k.reserve(lowered_host.size() + 2);
  k.append(lowered_host);
  k.push_back('/');
  k.push_back(static_cast<char>('0' + family));
  return k;
}

std::string override_key(const std::string& lowered_host, uint16_t port) {
  return lowered_host + "|" + std::to_string(port);
}

bool parse_port(const std::string& s, uint16_t* out) {
  if (s.empty() || s.size() > 5) return false;
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v > 65535) return false;
  *out = static_cast<uint16_t>(v);
  return true;
}

}  // namespace

int address_family(const Address& a) { return a.addr.ss_family; }

std::string address_to_string(const Address& a) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (a.addr.ss_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&a.addr);
    if (inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf) == nullptr) return {};
  } else if (a.addr.ss_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&a.addr);
    if (inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof buf) == nullptr) return {};
  } else {
    return {};
  }
  return buf;
}

bool parse_ip_literal(const std::string& host, Address* out) {
  if (host.empty() || host.size() >= INET6_ADDRSTRLEN) return false;
  Address a;
  std::memset(&a, 0, sizeof a);
  auto* sin = reinterpret_cast<sockaddr_in*>(&a.addr);
  if (inet_pton(AF_INET, host.c_str(), &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    *out = a;
    return true;
  }
  std::memset(&a, 0, sizeof a);
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&a.addr);
  if (inet_pton(AF_INET6, host.c_str(), &sin6->sin6_addr) == 1) {
    sin6->sin6_family = AF_INET6;
    *out = a;
    return true;
  }
  return false;
}

std::vector<Address> ordered_for_happy_eyeballs(const std::vector<Address>& addrs,
                                                size_t rotate_from) {
  const size_t n = addrs.size();
  std::vector<Address> out;
  if (n == 0) return out;
  out.reserve(n);
  std::vector<const Address*> v6, v4, other;
  for (size_t i = 0; i < n; ++i) {
    const Address& a = addrs[(rotate_from % n + i) % n];
    int f = address_family(a);
    if (f == AF_INET6) {
      v6.push_back(&a);
    } else if (f == AF_INET) {
      v4.push_back(&a);
    } else {
      other.push_back(&a);
    }
  }
  size_t i6 = 0, i4 = 0;
  bool turn6 = true;
  while (i6 < v6.size() || i4 < v4.size()) {
    if ((turn6 && i6 < v6.size()) || i4 >= v4.size()) {
      out.push_back(*v6[i6++]);
    } else {
      out.push_back(*v4[i4++]);
    }
    turn6 = !turn6;
  }
  for (const Address* a : other) out.push_back(*a);
  return out;
}

void append_for_happy_eyeballs(const std::vector<Address>& addrs, size_t rotate_from, uint16_t port,
                               std::vector<sockaddr_storage>* out) {
  const size_t n = addrs.size();
  if (n == 0) return;
  const size_t r = rotate_from % n;
  auto at = [&](size_t k) -> const Address& { return addrs[(r + k) % n]; };
  auto put = [&](const Address& a) {
    out->push_back(a.addr);
    sockaddr_storage& ss = out->back();
    if (ss.ss_family == AF_INET) {
      reinterpret_cast<sockaddr_in*>(&ss)->sin_port = htons(port);
    } else if (ss.ss_family == AF_INET6) {
      reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port = htons(port);
    }
  };
  // Two cursors over the rotated list, one per family: each only moves forward.
  size_t k6 = 0, k4 = 0;
  auto next_of = [&](size_t k, int family) {
    while (k < n && address_family(at(k)) != family) ++k;
    return k;
  };
  k6 = next_of(k6, AF_INET6);
  k4 = next_of(k4, AF_INET);
  bool turn6 = true;
  while (k6 < n || k4 < n) {
    if ((turn6 && k6 < n) || k4 >= n) {
      put(at(k6));
      k6 = next_of(k6 + 1, AF_INET6);
    } else {
      put(at(k4));
      k4 = next_of(k4 + 1, AF_INET);
    }
    turn6 = !turn6;
  }
  for (size_t k = 0; k < n; ++k) {
    int f = address_family(at(k));
    if (f != AF_INET && f != AF_INET6) put(at(k));
  }
}

DnsCache::DnsCache(Options opts, Resolver* resolver, std::shared_ptr<EntryStore> store)
    : opts_(opts), resolver_(resolver), store_(store != nullptr ? std::move(store) : std::make_shared<EntryStore>()) {}

void DnsCache::set_override(const std::string& host_or_host_port, std::vector<Address> addrs) {
  const std::string& s = host_or_host_port;
  std::string host = s;
  bool has_port = false;
  uint16_t port = 0;
  if (!s.empty() && s[0] == '[') {
    size_t close = s.find(']');
    if (close != std::string::npos) {
      host = s.substr(1, close - 1);
      std::string rest = s.substr(close + 1);
      if (rest.size() > 1 && rest[0] == ':') has_port = parse_port(rest.substr(1), &port);
    }
  } else {
    size_t colon = s.find(':');
    if (colon != std::string::npos && s.find(':', colon + 1) == std::string::npos &&
        parse_port(s.substr(colon + 1), &port)) {
      host = s.substr(0, colon);
      has_port = true;
    }
  }
  host = lower(host);
  std::string key = has_port ? override_key(host, port) : host;
  if (addrs.empty()) {
    overrides_.erase(key);
    return;
  }
  Override& o = overrides_[key];
  o.addrs = std::move(addrs);
  o.rotate = 0;
}

bool DnsCache::answer_static(const std::string& host, uint16_t port, int family, Waiter* w) {
  if (!overrides_.empty()) {
    auto it = overrides_.find(override_key(host, port));
    if (it == overrides_.end()) it = overrides_.find(host);
    if (it != overrides_.end()) {
      ++stats_.static_answers;
      // A copy: the waiter may change the overrides from its callback.
      std::vector<Address> addrs;
      for (const Address& a : it->second.addrs) {
        if (family_matches(family, a)) addrs.push_back(a);
      }
      if (addrs.empty()) {
        w->on_dns(Error::DnsNotFound, addrs, 0);
      } else {
        size_t r = it->second.rotate++ % addrs.size();
        w->on_dns(Error::Ok, addrs, r);
      }
      return true;
    }
  }
  Address a;
  if (!parse_ip_literal(host, &a)) return false;
  ++stats_.static_answers;
  if (!family_matches(family, a)) {
    w->on_dns(Error::DnsNotFound, empty_, 0);
  } else {
    std::vector<Address> addrs{a};
    w->on_dns(Error::Ok, addrs, 0);
  }
  return true;
}

uint64_t DnsCache::lookup(const std::string& host, uint16_t port, int family, uint64_t now_ms,
                          Waiter* w) {
  ++stats_.lookups;
  family = normalize_family(family);
  const std::string h = lower(host);
  if (answer_static(h, port, family, w)) return 0;

  const std::string key = cache_key(h, family);
  // The found list is held: a synchronous refresh or the waiter itself may replace or drop the entry.
  EntryStore::Found f = store_->find(key, now_ms);
  switch (f.kind) {
    case EntryStore::Found::Negative:
      ++stats_.negative_hits;
      w->on_dns(f.error, empty_, 0);
      return 0;
    case EntryStore::Found::Fresh:
    case EntryStore::Found::Stale:
      if (f.kind == EntryStore::Found::Fresh) {
        ++stats_.hits;
      } else {
        ++stats_.stale_served;
        if (pending_by_key_.find(key) == pending_by_key_.end()) {
          uint64_t id = new_lookup(key, h, family, /*background=*/true);
          queue_.push_back(id);
          pump();
        }
      }
      w->on_dns(Error::Ok, *f.addrs, f.rotate);
      return 0;
    case EntryStore::Found::Miss:
      break;
  }

  ++stats_.misses;
  const uint64_t ticket = next_ticket_++;
  auto p = pending_by_key_.find(key);
  if (p != pending_by_key_.end()) {
    ++stats_.coalesced;
    Lookup& l = lookups_[p->second];
    l.waiters.push_back({ticket, w});
    ++l.live;
    tickets_[ticket] = p->second;
    return ticket;
  }
  uint64_t id = new_lookup(key, h, family, /*background=*/false);
  Lookup& l = lookups_[id];
  l.waiters.push_back({ticket, w});
  ++l.live;
  tickets_[ticket] = id;
  queue_.push_back(id);
  pump();  // a synchronous resolver may answer the waiter right here
  return tickets_.find(ticket) != tickets_.end() ? ticket : 0;
}

uint64_t DnsCache::new_lookup(const std::string& key, const std::string& host, int family,
                              bool background) {
  uint64_t id = next_lookup_++;
  Lookup& l = lookups_[id];
  l.key = key;
  l.host = host;
  l.family = family;
  l.background = background;
  l.generation = store_->generation(host);
  pending_by_key_[key] = id;
  ++queued_;
  return id;
}

void DnsCache::pump() {
  if (pumping_) return;  // the outer pump() keeps going
  pumping_ = true;
  while (!queue_.empty()) {
    uint64_t id = queue_.front();
    auto it = lookups_.find(id);
    if (it == lookups_.end() || it->second.started) {  // dropped meanwhile
      queue_.pop_front();
      continue;
    }
    if (!may_start()) break;
    queue_.pop_front();
    --queued_;
    start(id);
  }
  pumping_ = false;
}

bool DnsCache::may_start() {
  if (member_ != 0) return store_->try_start(member_, opts_.max_in_flight);
  return opts_.max_in_flight == 0 || in_flight_ < opts_.max_in_flight;
}

void DnsCache::start(uint64_t id) {
  Lookup& l = lookups_[id];
  l.started = true;
  ++in_flight_;
  ++stats_.resolves;
  // Copies: the resolver may complete() synchronously, which erases the lookup.
  const std::string host = l.host;
  const int family = l.family;
  resolver_->resolve(host, family, id);
}

void DnsCache::maybe_drop(uint64_t id) {
  auto it = lookups_.find(id);
  if (it == lookups_.end()) return;
  Lookup& l = it->second;
  if (l.started || l.live != 0 || (l.background && !l.detached)) return;
  if (!l.detached) {
    auto p = pending_by_key_.find(l.key);
    if (p != pending_by_key_.end() && p->second == id) pending_by_key_.erase(p);
  }
  lookups_.erase(it);
  --queued_;  // its id stays in queue_ and is skipped by pump()
}

void DnsCache::cancel(uint64_t ticket) {
  auto t = tickets_.find(ticket);
  if (t == tickets_.end()) return;
  uint64_t id = t->second;
  tickets_.erase(t);
  auto it = lookups_.find(id);
  if (it == lookups_.end()) return;  // being answered right now: complete() skips it
  --it->second.live;
  maybe_drop(id);
}

void DnsCache::complete(uint64_t lookup_id, const Answer& a, uint64_t now_ms) {
  auto it = lookups_.find(lookup_id);
  if (it == lookups_.end() || !it->second.started) return;
  Lookup l = std::move(it->second);
  lookups_.erase(it);
  --in_flight_;
  if (member_ != 0) store_->finished(member_);

  Error err = a.error;
  if (err == Error::Ok && a.addrs.empty()) err = Error::DnsNotFound;
  if (err != Error::Ok) ++stats_.errors;

  size_t base = 0;
  if (!l.detached) {
    auto p = pending_by_key_.find(l.key);
    if (p != pending_by_key_.end() && p->second == lookup_id) pending_by_key_.erase(p);
  }
  // Cached unless cleared meanwhile, here (detached) or by another cache sharing the store.
  if (!l.detached && store_->generation(l.host) == l.generation) {
    if (err == Error::Ok) {
      uint64_t ttl = a.ttl_ms >= 0 ? static_cast<uint64_t>(a.ttl_ms) : opts_.ttl_ms;
      if (ttl < opts_.min_ttl_ms) ttl = opts_.min_ttl_ms;
      if (ttl > opts_.max_ttl_ms) ttl = opts_.max_ttl_ms;
      uint64_t expires = sat_add(now_ms, ttl);
      base = store_->put_positive(l.key, std::make_shared<const std::vector<Address>>(a.addrs), expires,
                                  sat_add(expires, opts_.stale_ttl_ms), l.live);
    } else {
      store_->put_negative(l.key, err, now_ms, opts_.negative_ttl_ms);
    }
    evict();
  }

  pump();  // queued lookups go first, before waiters can add more

  // `a` belongs to the caller and outlives this call; the waiters' tickets say who is still live
  // (a waiter may cancel a later one from its callback).
  const size_t n = a.addrs.size();
  size_t k = 0;
  for (const Pending& pw : l.waiters) {
    auto t = tickets_.find(pw.ticket);
    if (t == tickets_.end()) continue;
    tickets_.erase(t);
    if (err == Error::Ok) {
      pw.waiter->on_dns(Error::Ok, a.addrs, (base + k++) % n);
    } else {
      pw.waiter->on_dns(err, empty_, 0);
    }
  }
}

void DnsCache::detach(const std::string& key) {
  auto p = pending_by_key_.find(key);
  if (p == pending_by_key_.end()) return;
  uint64_t id = p->second;
  pending_by_key_.erase(p);
  auto it = lookups_.find(id);
  if (it == lookups_.end()) return;
  it->second.detached = true;
  maybe_drop(id);
}

void DnsCache::clear(const std::string& host) {
  if (host.empty()) {
    std::vector<std::string> keys;
    keys.reserve(pending_by_key_.size());
    for (auto& kv : pending_by_key_) keys.push_back(kv.first);
    for (const std::string& k : keys) detach(k);
    store_->clear("");
    return;
  }
  const std::string h = lower(host);
  for (int family : {0, 4, 6}) detach(cache_key(h, family));
  store_->clear(h);
}

void DnsCache::evict() {
  stats_.evictions += store_->evict(opts_.max_entries, [this](const std::string& key) {
    return pending_by_key_.find(key) != pending_by_key_.end();  // a lookup is pending for it: keep
  });
}

// ---------------------------------------------------------------------------------------------
// EntryStore

EntryStore::Found EntryStore::find(const std::string& key, uint64_t now_ms) {
  Found f;
  std::lock_guard<std::mutex> g(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return f;
  Entry& e = it->second;
  if (e.error != Error::Ok) {
    if (now_ms < e.expires_at) {
      lru_.splice(lru_.begin(), lru_, e.lru);
      f.kind = Found::Negative;
      f.error = e.error;
      return f;
    }
    erase(key);
    return f;
  }
  if (now_ms >= e.stale_until) {
    erase(key);
    return f;
  }
  lru_.splice(lru_.begin(), lru_, e.lru);
  f.kind = now_ms < e.expires_at ? Found::Fresh : Found::Stale;
  f.addrs = e.addrs;
  f.rotate = e.rotate++ % e.addrs->size();
  return f;
}

EntryStore::Entry& EntryStore::put(const std::string& key) {
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return it->second;
  }
  Entry& e = entries_[key];
  lru_.push_front(key);
  e.lru = lru_.begin();
  return e;
}

void EntryStore::erase(const std::string& key) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  lru_.erase(it->second.lru);
  entries_.erase(it);
}

size_t EntryStore::put_positive(const std::string& key, AddrList addrs, uint64_t expires_at, uint64_t stale_until,
                                size_t n) {
  std::lock_guard<std::mutex> g(mu_);
  Entry& e = put(key);
  e.error = Error::Ok;
  e.addrs = std::move(addrs);
  e.expires_at = expires_at;
  e.stale_until = stale_until;
  size_t base = e.rotate;
  e.rotate += n;
  return base;
}

void EntryStore::put_negative(const std::string& key, Error err, uint64_t now_ms, uint64_t negative_ttl_ms) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = entries_.find(key);
  bool keep_stale = it != entries_.end() && it->second.error == Error::Ok && now_ms < it->second.stale_until;
  if (keep_stale) return;
  if (negative_ttl_ms > 0) {
    Entry& e = put(key);
    e.error = err;
    e.addrs.reset();
    e.expires_at = sat_add(now_ms, negative_ttl_ms);
    e.stale_until = e.expires_at;
  } else if (it != entries_.end()) {
    erase(key);
  }
}

void EntryStore::clear(const std::string& host) {
  const std::string lowered_host = lower(host);
  std::lock_guard<std::mutex> g(mu_);
  if (lowered_host.empty()) {
    entries_.clear();
    lru_.clear();
    host_gen_.clear();
    all_gen_ = ++gen_;
    return;
  }
  for (int family : {0, 4, 6}) erase(cache_key(lowered_host, family));
  host_gen_[lowered_host] = ++gen_;
}

uint64_t EntryStore::generation(const std::string& lowered_host) const {
  std::lock_guard<std::mutex> g(mu_);
  if (host_gen_.empty()) return all_gen_;  // no clear(host) since the last clear-all
  auto it = host_gen_.find(lowered_host);
  return it == host_gen_.end() ? all_gen_ : it->second;  // a host's clear is later than all_gen_
}

size_t EntryStore::evict(size_t max_entries, const std::function<bool(const std::string&)>& keep) {
  std::lock_guard<std::mutex> g(mu_);
  size_t n = 0;
  auto it = lru_.end();
  while (entries_.size() > max_entries && it != lru_.begin()) {
    auto cur = std::prev(it);
    if (keep(*cur)) {
      it = cur;
      continue;
    }
    entries_.erase(*cur);
    lru_.erase(cur);
    ++n;
  }
  return n;
}

EntryStore::MemberId EntryStore::join(std::function<void()> wake) {
  std::lock_guard<std::mutex> g(mu_);
  MemberId id = next_member_++;
  members_[id].wake = std::move(wake);
  return id;
}

void EntryStore::leave(MemberId m) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = members_.find(m);
  if (it == members_.end()) return;
  size_t back = it->second.out;
  members_.erase(it);
  out_ -= back;
  if (back == 0) return;
  for (auto& kv : members_) {
    if (!kv.second.waiting) continue;
    kv.second.waiting = false;
    kv.second.wake();
  }
}

bool EntryStore::try_start(MemberId m, size_t max_in_flight) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = members_.find(m);
  if (it == members_.end()) return false;
  if (max_in_flight != 0 && out_ >= max_in_flight) {
    it->second.waiting = true;  // finished() elsewhere wakes it
    return false;
  }
  ++out_;
  ++it->second.out;
  return true;
}

void EntryStore::finished(MemberId m) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = members_.find(m);
  if (it == members_.end() || it->second.out == 0) return;
  --it->second.out;
  --out_;
  // The finishing cache pumps its own queue next; the others waiting are woken to pump theirs.
  it->second.waiting = false;
  for (auto& kv : members_) {
    if (kv.first == m || !kv.second.waiting) continue;
    kv.second.waiting = false;
    kv.second.wake();
  }
}

size_t EntryStore::in_flight() const {
  std::lock_guard<std::mutex> g(mu_);
  return out_;
}

size_t EntryStore::size() const {
  std::lock_guard<std::mutex> g(mu_);
  return entries_.size();
}

Stats DnsCache::stats() const {
  Stats s = stats_;
  s.in_flight = in_flight_;
  s.queued = queued_;
  s.entries = store_->size();
  return s;
}

}  // namespace uvf::dns
