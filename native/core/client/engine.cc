#include "client/engine.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "base/fd_limits.h"

#include "client/request.h"
#include "http1/content_decoder.h"

namespace uvf {

namespace {
constexpr size_t kMaxIdleKeys = 1024;
// Out of descriptors and none of ours closes (others hold them): try again after this long.
constexpr uint64_t kFdRetryMs = 100;

class NullSink final : public EngineSink {
 public:
  void on_complete(RequestId, const ResponseMeta&, std::string&&, std::string&&) override {}
  void on_head(RequestId, const ResponseMeta&, std::string&&) override {}
  void on_data(RequestId, const char*, size_t) override {}
  void on_end(RequestId) override {}
  void on_error(RequestId, Error, const char*, int) override {}
  void on_drain(RequestId) override {}
  void on_timings(RequestId, const RequestTimings&) override {}
  void on_dns_lookup(uint64_t, const std::string&, int) override {}
  void on_dns_result(uint32_t, Error, const std::vector<dns::Address>&, size_t) override {}
  void on_closed() override {}
  void flush() override {}
};
NullSink g_null_sink;  // stateless: safe to share between engines and threads
}  // namespace

// The cache's resolver side: getaddrinfo requests counted as engine lookups (the engine does not
// finish closing while one is on the thread pool), or lookups handed to the sink (external).
class Engine::DnsBridge final : public dns::UvResolver::Listener, public dns::Resolver {
 public:
  explicit DnsBridge(Engine* e) : engine_(e) {}
  void on_request_started() override { engine_->lookup_started(); }
  void on_request_done() override { engine_->lookup_finished(); }
  void on_answer(uint64_t lookup_id, const dns::Answer& a) override { engine_->dns_answer(lookup_id, a); }
  // External resolution: one event per real lookup, delivered with the turn's batch.
  void resolve(const std::string& host, int family, uint64_t lookup_id) override {
    engine_->sink_->on_dns_lookup(lookup_id, host, family);
    engine_->note_event();
  }

 private:
  Engine* engine_;
};

// A session.dns.lookup(): waits on the cache like a connection does.
struct Engine::DnsQuery final : dns::Waiter {
  Engine* engine = nullptr;
  uint32_t id = 0;
  uint64_t ticket = 0;
  void on_dns(Error e, const std::vector<dns::Address>& addrs, size_t rotate_from) override {
    engine->dns_query_answered(this, e, addrs, rotate_from);
  }
};

std::unique_ptr<Engine> Engine::create(uv_loop_t* loop, EngineSink* sink, const EngineOptions& opts,
                                       Error* err, const char** detail) {
  *err = Error::Ok;
  if (opts.pool.total == 0) {
    *err = Error::InvalidOption;
    *detail = "connections must be at least 1";
    return nullptr;
  }
  if (opts.pool.per_key == 0) {
    *err = Error::InvalidOption;
    *detail = "connectionsPerHost must be at least 1";
    return nullptr;
  }
  std::unique_ptr<Engine> e(new Engine(loop, sink, opts));
  if (!opts.local_address.empty()) {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&e->local_addr_);
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&e->local_addr_);
    if (uv_ip4_addr(opts.local_address.c_str(), 0, s4) != 0 &&
        uv_ip6_addr(opts.local_address.c_str(), 0, s6) != 0) {
      *err = Error::InvalidOption;
      *detail = "localAddress must be an IPv4 or IPv6 address";
      return nullptr;
    }
    e->has_local_addr_ = true;
  }
  const DnsEngineOptions& d = opts.dns;
  if (d.family != 0 && d.family != 4 && d.family != 6) {
    *err = Error::InvalidOption;
    *detail = "dns.family must be 0, 4 or 6";
    return nullptr;
  }
  if (d.cache.min_ttl_ms > d.cache.max_ttl_ms) {
    *err = Error::InvalidOption;
    *detail = "dns.minTtl must not exceed dns.maxTtl";
    return nullptr;
  }
  e->dns_bridge_ = std::make_unique<DnsBridge>(e.get());
  dns::Resolver* resolver = e->dns_bridge_.get();
  if (!d.external) {
    e->uv_resolver_ = std::make_unique<dns::UvResolver>(loop, e->dns_bridge_.get());
    resolver = e->uv_resolver_.get();
  }
  e->dns_ = std::make_unique<dns::DnsCache>(d.cache, resolver, d.shared_store);
  for (const auto& o : d.overrides) {
    std::vector<dns::Address> addrs;
    for (const std::string& s : o.second) {
      dns::Address a;
      std::string lit = s.size() > 2 && s.front() == '[' && s.back() == ']' ? s.substr(1, s.size() - 2) : s;
      if (!dns::parse_ip_literal(lit, &a)) {
        *err = Error::InvalidOption;
        *detail = "dns.overrides values must be IP addresses";
        return nullptr;
      }
      addrs.push_back(a);
    }
    if (o.first.empty() || addrs.empty()) {
      *err = Error::InvalidOption;
      *detail = "dns.overrides entries need a host and at least one address";
      return nullptr;
    }
    e->dns_->set_override(o.first, std::move(addrs));
  }
  int r = e->init_handles();
  if (r != 0) {
    *err = Error::Internal;
    *detail = "could not initialise libuv handles";
    return nullptr;  // handles that did init are closed by init_handles itself: it inits all or none
  }
  return e;
}

Engine::Engine(uv_loop_t* loop, EngineSink* sink, const EngineOptions& opts)
    : loop_(loop), sink_(sink), opts_(opts), pool_(opts.pool) {}

Engine::~Engine() {
  // Only destroyed once every handle is closed (after on_closed), so nothing is left to free
  // but memory.
  for (auto* c : dead_) delete c;
  for (auto* c : raw_dead_) delete c;
  for (auto& kv : requests_) delete kv.second;
  free_read_block(spare_block_);
}

int Engine::init_handles() {
  // uv_timer_init/uv_check_init/uv_idle_init cannot fail on a valid loop.
  uv_timer_init(loop_, &timer_);
  uv_check_init(loop_, &check_);
  uv_idle_init(loop_, &idle_);
  timer_.data = this;
  check_.data = this;
  idle_.data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(&timer_));
  uv_unref(reinterpret_cast<uv_handle_t*>(&idle_));
  open_handles_ = 3;
  if (opts_.shared_budget != nullptr || opts_.dns.shared_store != nullptr) {
    if (uv_async_init(loop_, &shared_async_, on_shared_wake) != 0) {
      for (uv_handle_t* h : {reinterpret_cast<uv_handle_t*>(&timer_), reinterpret_cast<uv_handle_t*>(&check_),
                             reinterpret_cast<uv_handle_t*>(&idle_)}) {
        uv_close(h, nullptr);
      }
      uv_run(loop_, UV_RUN_NOWAIT);
      return -1;
    }
    shared_async_.data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(&shared_async_));
    open_handles_ = 4;
    // The wakes run under the budget's (the store's) lock on any thread; the async handle is
    // closed only after leave(), after which neither calls it.
    if (opts_.shared_budget != nullptr) {
      budget_ = opts_.shared_budget.get();
      member_ = budget_->join([this] { uv_async_send(&shared_async_); });
      pool_.share(budget_, member_);
    }
    if (opts_.dns.shared_store != nullptr) {
      dns_member_ = dns_->store()->join([this] { uv_async_send(&shared_async_); });
      dns_->share_bound(dns_member_);
    }
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Submitting and controlling requests

Error Engine::validate(const RequestSpec& spec, const EngineOptions& opts, const char** detail, bool* connection_close) {
  http1::RequestHead h;
  h.method = spec.method;
  h.target = spec.target;
  h.host = spec.origin.authority;
  h.headers = spec.headers;
  h.header_pairs = spec.header_pairs;
  h.user_agent = opts.user_agent;
  if (spec.limits.decompress) h.accept_encoding = http1::default_accept_encoding();
  if (spec.streamed_body) {
    h.body_mode = spec.streamed_length >= 0 ? http1::BodyMode::Length : http1::BodyMode::Chunked;
    h.content_length = spec.streamed_length >= 0 ? static_cast<uint64_t>(spec.streamed_length) : 0;
  } else if (spec.has_body) {
    h.body_mode = http1::BodyMode::Length;
    h.content_length = spec.body.size();
  }
  http1::EncodeResult res;
  http1::EncodeError eerr;
  Error e = http1::validate_request_head(h, &res, &eerr);
  if (e != Error::Ok) {
    *detail = eerr.reason != nullptr ? eerr.reason : error_message(e);
    return e;
  }
  if (connection_close != nullptr) *connection_close = res.connection_close;
  return Error::Ok;
}

Error Engine::submit(RequestSpec&& spec, const char** detail) {
  if (closing_) {
    *detail = "session is closed";
    return Error::SessionClosed;
  }
  if (requests_.count(spec.id) != 0) {
    *detail = "duplicate request id";
    return Error::Internal;
  }
  // Validated here (the caller learns of a bad request at once); encoded by the connection
  // that takes it, in its own protocol.
  bool connection_close = false;
  Error e = validate(spec, opts_, detail, &connection_close);
  if (e != Error::Ok) return e;
  auto* r = new Request;
  r->message.set(spec.method, spec.target, spec.headers, spec.header_pairs);
  r->has_body = spec.has_body;
  r->streamed_length = spec.streamed_body ? spec.streamed_length : -1;
  r->id = spec.id;
  r->body = std::move(spec.body);
  r->streamed_body = spec.streamed_body;
  r->body_chunked = spec.streamed_body && spec.streamed_length < 0;
  r->is_head = spec.method == "HEAD";
  r->idempotent = http1::method_is_idempotent(spec.method);
  r->stream_response = spec.stream_response;
  r->want_timings = spec.want_timings;
  if (r->want_timings) r->t_submit = uv_hrtime();
  r->conn_close = connection_close;
  r->timeouts = spec.timeouts;
  r->limits = spec.limits;
  bool fresh_key = false;
  Key& k = pool_.key(spec.origin.key(), spec.origin, &fresh_key);
  r->key = &k;
  if (fresh_key) {
    // An origin that may speak HTTP/2: a burst of requests waits for the first connection
    // (capacity learned at connect) instead of each dialling its own.
    const Http2EngineOptions& h2 = opts_.http2;
    bool via_http_proxy = k.info.proxy.kind == proxy::Kind::Http;
    bool may_h2 = k.info.tls ? h2.mode != Http2EngineOptions::Mode::Off && k.info.tls_ctx != nullptr &&
                                   std::find(k.info.tls_ctx->config().alpn.begin(), k.info.tls_ctx->config().alpn.end(),
                                             "h2") != k.info.tls_ctx->config().alpn.end()
                             : h2.mode == Http2EngineOptions::Mode::PriorKnowledge && !via_http_proxy;
    if (may_h2) pool_.learned_capacity(k, h2.max_streams);
  }
  if (r->timeouts.total_ms > 0) {
    r->total_deadline = now() + r->timeouts.total_ms;
    total_timers_.schedule(r, r->total_deadline);
    arm_deadline(r->total_deadline);
  }
  requests_.emplace(r->id, r);
  ++stats_.requests_started;
  pool_.enqueue(k, r);
  pool_.dispatch(k, *this);
  if (pool_.take_released()) {
    capacity_freed_ = true;
    schedule_turn_end();
  }
  return Error::Ok;
}

bool Engine::abort(RequestId id) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return false;
  Request* r = it->second;
  if (r->state == Request::State::Queued) {
    pool_.remove_waiter(*r->key, r);
    if (pool_.take_released()) {
      capacity_freed_ = true;  // room held for its key goes back to the others
      schedule_turn_end();
    }
  } else if (r->conn != nullptr) {
    r->conn->abort(r);  // the connection decides what that costs (HTTP/1.1: the socket goes)
  }
  request_finished(r, true);
  return true;
}

void Engine::pause(RequestId id) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  Request* r = it->second;
  if (r->conn != nullptr) {
    r->conn->pause(r);
  } else {
    r->paused = true;
  }
}

void Engine::resume(RequestId id) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  Request* r = it->second;
  if (r->conn != nullptr) {
    r->conn->resume(r);
  } else {
    r->paused = false;
  }
}

bool Engine::write_body(RequestId id, const char* p, size_t n, Error* err) {
  *err = Error::Ok;
  auto it = requests_.find(id);
  if (it == requests_.end()) return true;  // finished or failed meanwhile: the caller learns from its events
  Request* r = it->second;
  if (!r->streamed_body || r->body_ended) {
    *err = Error::InvalidBody;
    return true;
  }
  if (n > 0) {
    r->chunks.emplace_back(p, n);
    r->chunk_bytes += n;
    if (r->conn != nullptr) r->conn->body_ready(r);
  }
  if (r->chunk_bytes >= kBodyHighWater || (r->conn == nullptr && r->chunk_bytes > 0)) {
    r->drain_wanted = true;
    return false;
  }
  return true;
}

void Engine::end_body(RequestId id) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  Request* r = it->second;
  if (!r->streamed_body || r->body_ended) return;
  r->body_ended = true;
  if (r->conn != nullptr) r->conn->body_ready(r);
}

bool Engine::try_retry(Request* r) {
  if (closing_) return false;
  r->attempts = 2;
  requeue(r, /*fresh=*/true);
  return true;
}

// Back to the head of its key's queue, dispatched at the end of the turn.
void Engine::requeue(Request* r, bool fresh) {
  r->fresh_only = fresh;
  r->state = Request::State::Queued;
  ++stats_.retries;
  pool_.enqueue(*r->key, r, /*front=*/true);
  if (!r->key->dispatch_scheduled) {
    r->key->dispatch_scheduled = true;
    pending_dispatch_.push_back(r->key);
  }
  schedule_turn_end();
}

bool Engine::retry_unprocessed(Request* r) {
  if (closing_ || r->attempts >= 4) return false;
  ++r->attempts;
  requeue(r, /*fresh=*/false);
  return true;
}

void Engine::request_finished(Request* r, bool failed) {
  if (failed) {
    ++stats_.requests_failed;
  } else {
    ++stats_.requests_completed;
  }
  requests_.erase(r->id);
  total_timers_.cancel(r);
  fd_timers_.cancel(r);
  delete r;
  if (closing_) maybe_finish_close();
}

void Engine::respond_head(Request* r, const ResponseMeta& m, std::string&& head) {
  report_timings(r);
  sink_->on_head(r->id, m, std::move(head));
  note_event();
}

void Engine::respond_data(Request* r, const char* p, size_t n) {
  sink_->on_data(r->id, p, n);
  note_event();
}

void Engine::respond_trailers(Request* r, std::string&& fields) { sink_->on_trailers(r->id, std::move(fields)); }

void Engine::respond_end(Request* r) {
  sink_->on_end(r->id);
  note_event();
  request_finished(r, false);
}

void Engine::respond_complete(Request* r, const ResponseMeta& m, std::string&& head, std::string&& body) {
  report_timings(r);
  sink_->on_complete(r->id, m, std::move(head), std::move(body));
  note_event();
  request_finished(r, false);
}

void Engine::respond_error(Request* r, Error e, const char* detail, int sys) {
  report_timings(r);
  sink_->on_error(r->id, e, detail, sys);
  note_event();
  request_finished(r, true);
}

void Engine::respond_drain(Request* r) {
  sink_->on_drain(r->id);
  note_event();
}

uint32_t Engine::announce_h2(const std::string& fingerprint) {
  uint32_t id = next_tls_info();
  sink_->on_h2_info(id, fingerprint);
  note_event();
  return id;
}

void Engine::forget_h2(uint32_t id) {
  sink_->on_h2_forget(id);
  note_event();
}

void Engine::report_timings(Request* r) {
  if (!r->want_timings) return;
  auto us = [](uint64_t from, uint64_t to) -> uint32_t {
    if (from == 0 || to < from) return 0;
    uint64_t d = (to - from) / 1000;
    return d > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(d);
  };
  uint64_t n = uv_hrtime();
  RequestTimings t;
  t.queued = us(r->t_submit, r->t_assigned != 0 ? r->t_assigned : n);
  t.dns = r->dns_us;
  t.connect = r->connect_us;
  t.tls = r->tls_us;
  t.ttfb = us(r->t_assigned, r->t_first_byte);
  t.head = us(r->t_assigned, r->t_head);
  t.total = us(r->t_submit, n);
  sink_->on_timings(r->id, t);
}

void Engine::fail_queued(Request* r, Error e, const char* detail) {
  pool_.remove_waiter(*r->key, r);
  if (pool_.take_released()) capacity_freed_ = true;  // note_event() below ends the turn
  report_timings(r);
  sink_->on_error(r->id, e, detail, 0);
  note_event();
  request_finished(r, true);
}

// ---------------------------------------------------------------------------------------------
// Pool driver

bool Engine::is_alive(Connection* c) { return c->probe_alive(); }

void Engine::discard(Key& k, Connection* c) {
  pool_.unpark(k, c);  // no-op when the pool already took it out
  c->close(false);
}

void Engine::open_connection(Key& k, Request* first) {
  Connection* c = new_connection(this, &k);
  c->set_index(conns_.size());
  conns_.push_back(c);
  ++stats_.connections_created;
  c->start(first->timeouts.connect_ms, first->timeouts.tls_ms);
}

void Engine::assign(Key&, Connection* c, Request* r) {
  if (c->served() > 0) ++stats_.connections_reused;
  r->fresh_only = false;
  r->fd_deadline = 0;
  fd_timers_.cancel(r);
  c->assign(r);
}

bool Engine::wants_fresh(Request* r) { return r->fresh_only; }

// ---------------------------------------------------------------------------------------------
// Connection callbacks

void Engine::connection_connected(Connection* c) {
  Key& k = *c->key();
  // It takes waiters while it has room (one, for HTTP/1.1); with none it waits idle.
  if (pool_.connected(k, c, *this) == 0) {
    c->park(now());
    pool_.park_idle(k, c);
  }
  if (!k.waiters.empty()) pool_.dispatch(k, *this);
  if (pool_.take_released()) {
    capacity_freed_ = true;
    schedule_turn_end();
  }
  if (closing_) maybe_finish_close();
}

void Engine::connection_connect_failed(Connection* c, Error e, int sys, const char* why) {
  Key& k = *c->key();
  pool_.connect_finished(k);
  // No connection of this key ever connected: its capacity hint is the guess for an origin
  // that may speak HTTP/2 (submit), on which a burst waits for the first connection. That
  // connection failed, so the waiters that counted on it each get their own attempt now, side
  // by side as with HTTP/1.1, instead of one failed handshake after another.
  if (k.open == k.connecting + k.closing + 1) pool_.learned_capacity(k, 1);
  c->close(true);
  if (e == Error::FdExhausted) {
    out_of_fds(k);  // backpressure, not failure: the waiters stay queued
    return;
  }
  // One failed connect fails one waiter (the oldest); the others get their own attempt.
  Request* r = pool_.pop_waiter(k);
  if (r != nullptr) {
    const char* detail = why != nullptr ? why : sys != 0 ? uv_strerror(sys) : error_message(e);
    report_timings(r);
    sink_->on_error(r->id, e, detail, sys);
    note_event();
    request_finished(r, true);
  }
}

// EMFILE/ENFILE: stop making sockets; every queued request waits (at most its connect timeout)
// until one of our sockets closes or the periodic retry finds a descriptor free.
void Engine::out_of_fds(Key& k) {
  uint64_t n = now();
  if (!fd_exhausted_) {
    fd_exhausted_ = true;
    fd_retry_at_ = n + kFdRetryMs;
    arm_deadline(fd_retry_at_);
  }
  if (budget_ != nullptr) budget_->fd_wait(member_);
  pool_.block(k);
  pool_.for_each_key([&](Key& key) {
    for (Request* r : key.waiters) {
      if (r->fd_deadline != 0 || r->timeouts.connect_ms == 0) continue;
      r->fd_deadline = n + r->timeouts.connect_ms;
      ++stats_.fd_exhausted_waits;
      fd_timers_.schedule(r, r->fd_deadline);
      arm_deadline(r->fd_deadline);
    }
  });
}

// Why a wait for a descriptor ended in ERR_FD_EXHAUSTED, with the numbers to act on.
std::string Engine::fd_wait_detail() const {
  FdLimit lim;
  get_fd_limit(&lim);
  size_t raw_waiting = 0;
  for (const auto& kv : raws_) {
    if (kv.second->waiting_for_fd()) ++raw_waiting;
  }
  int64_t open = count_open_fds();  // -1 when not even one descriptor is free to count with
  return "no file descriptor became free within the connect timeout (open: " +
         (open < 0 ? std::string("all") : std::to_string(open)) + ", limit: " + std::to_string(lim.soft) +
         ", requests waiting: " + std::to_string(pool_.total_waiting()) +
         ", raw connects waiting: " + std::to_string(raw_waiting) + ")";
}

// A raw connect hit EMFILE (or found the engine out of descriptors): same backpressure.
void Engine::raw_out_of_fds(bool first_wait) {
  if (!fd_exhausted_) {
    fd_exhausted_ = true;
    fd_retry_at_ = now() + kFdRetryMs;
    arm_deadline(fd_retry_at_);
  }
  if (budget_ != nullptr) budget_->fd_wait(member_);
  raw_fd_blocked_ = true;
  if (first_wait) ++stats_.fd_exhausted_waits;
}

// FIFO: a slot goes to the oldest waiter; a newcomer never overtakes one.
bool Engine::raw_take_slot(RawId id) {
  if (raw_slot_waiters_.empty() && pool_.take_external(*this)) return true;
  raw_slot_waiters_.push_back(id);
  return false;
}

// Capacity was freed (a socket closed, or an idle pooled one may be evicted): slots to the
// queued raw connects, oldest first, before blocked HTTP origins get their turn.
void Engine::raw_serve_slot_waiters() {
  while (!raw_slot_waiters_.empty()) {
    RawConnection* c = raw_find(raw_slot_waiters_.front());
    if (c == nullptr || !c->waiting_for_slot()) {
      raw_slot_waiters_.pop_front();
      continue;
    }
    if (!pool_.take_external(*this)) return;  // evicted an idle socket if there was one
    raw_slot_waiters_.pop_front();
    c->slot_granted();
  }
}

void Engine::connection_idle(Connection* c) {
  Key& k = *c->key();
  pool_.has_room_again(k, c);
  if (closing_ && requests_.empty()) {
    maybe_finish_close();
    return;
  }
  if (!k.waiters.empty()) {
    pool_.dispatch(k, *this);
    if (pool_.take_released()) {
      capacity_freed_ = true;
      schedule_turn_end();
    }
  } else if (pool_.has_blocked() || !raw_slot_waiters_.empty()) {
    // Another origin (or a raw connect) is waiting for room under the total limit: this idle
    // socket can make it.
    capacity_freed_ = true;
    schedule_turn_end();
  }
}

void Engine::replace_connection(Connection* from, Connection* to) {
  size_t i = from->index();
  conns_[i] = to;
  to->set_index(i);
  conn_timers_.cancel(from);
  if (from->output_deferred) {
    pending_output_.erase(std::find(pending_output_.begin(), pending_output_.end(), from));
    from->output_deferred = false;
  }
  dead_.push_back(from);  // it is in no pool list (still connecting) and reports nothing more
}

void Engine::connection_full(Connection* c) { pool_.unpark(*c->key(), c); }

void Engine::defer_output(Connection* c) {
  if (c->output_deferred) return;
  c->output_deferred = true;
  pending_output_.push_back(c);
  schedule_turn_end();
}

void Engine::flush_outputs() {
  while (!pending_output_.empty()) {
    std::vector<Connection*> cs;
    cs.swap(pending_output_);
    for (Connection* c : cs) {
      c->output_deferred = false;
      c->flush_output();
    }
  }
}

void Engine::connection_closing(Connection* c) {
  // Counted as gone at once: an error delivered in this turn must not find it in stats().
  Key& k = *c->key();
  pool_.unpark(k, c);
  pool_.connection_closing(k);
  conn_timers_.cancel(c);
}

void Engine::connection_closed(Connection* c) {
  // Swap-remove from the live list.
  size_t i = c->index();
  Connection* last = conns_.back();
  conns_[i] = last;
  last->set_index(i);
  conns_.pop_back();
  conn_timers_.cancel(c);
  Key& k = *c->key();
  pool_.unpark(k, c);
  pool_.connection_closed(k, c, /*was_closing=*/true);
  if (c->output_deferred) {
    pending_output_.erase(std::find(pending_output_.begin(), pending_output_.end(), c));
    c->output_deferred = false;
  }
  dead_.push_back(c);
  if (c->had_fd()) {
    fd_exhausted_ = false;  // a descriptor just came back
    if (budget_ != nullptr) budget_->fd_returned();
  }
  if (!k.waiters.empty() && !k.dispatch_scheduled) {
    k.dispatch_scheduled = true;
    pending_dispatch_.push_back(&k);
  }
  capacity_freed_ = true;
  schedule_turn_end();
}

// ---------------------------------------------------------------------------------------------
// Timers and the end of the loop turn

void Engine::arm_deadline(uint64_t at) {
  if (at >= timer_at_ || handles_closing_) return;
  timer_at_ = at;
  uint64_t n = now();
  uv_timer_start(&timer_, on_timer, at > n ? at - n : 0, 0);
}

void Engine::on_timer(uv_timer_t* t) {
  auto* self = static_cast<Engine*>(t->data);
  self->timer_at_ = UINT64_MAX;
  self->sweep_deadlines();
}

void Engine::wake(Connection* c, uint64_t at) {
  if (c->stage() == Connection::Stage::Closing) return;
  conn_timers_.schedule_no_later(c, at);
  arm_deadline(at);
}

// What is due, queue by queue: each pop is one expired deadline, so a firing costs what expires
// (plus a re-ask for a connection whose deadline moved later meanwhile), not what is open.
void Engine::sweep_deadlines() {
  uint64_t n = now();
  // Requests past their total timeout, queued or carried. One at a time: failing one may finish
  // others, and their entries leave the queue with them.
  while (Request* r = total_timers_.pop_due(n)) {
    if (r->state == Request::State::Queued) {
      fail_queued(r, Error::TotalTimeout, "request exceeded its total timeout while queued");
    } else if (r->conn != nullptr) {
      r->conn->fail(r, Error::TotalTimeout, "request exceeded its total timeout");
    }
  }
  // Connections: an entry may be early (the deadline moved later) or stale (no deadline now).
  // Freed connections wait in dead_ until the turn ends.
  while (Connection* c = conn_timers_.pop_due(n)) {
    if (c->stage() == Connection::Stage::Closing) continue;
    uint64_t d = c->deadline();
    if (d != 0 && d <= n) {
      c->on_deadline(n);
      if (c->stage() == Connection::Stage::Closing) continue;
      d = c->deadline();
    }
    if (d != 0) conn_timers_.schedule(c, std::max(d, n + 1));
  }
  uint64_t next = UINT64_MAX;
  if (fd_exhausted_) {
    if (fd_retry_at_ <= n) {
      fd_exhausted_ = false;  // perhaps someone else closed a descriptor: try again
      if (budget_ != nullptr) budget_->fd_returned();
      capacity_freed_ = true;
      schedule_turn_end();
    } else {
      next = std::min(next, fd_retry_at_);
    }
  }
  // Queued requests past their wait for a descriptor (ids: failing one may finish others).
  std::vector<RequestId> fd_expired;
  while (Request* r = fd_timers_.pop_due(n)) fd_expired.push_back(r->id);
  if (!fd_expired.empty()) {
    std::string detail = fd_wait_detail();
    for (RequestId id : fd_expired) {
      auto it = requests_.find(id);
      if (it != requests_.end() && it->second->state == Request::State::Queued) {
        fail_queued(it->second, Error::FdExhausted, detail.c_str());
      }
    }
  }
  raw_sweep(n);
  if (pool_.has_blocked()) {
    // A key waiting under the total limit may take an idle socket once it has gone cold.
    uint64_t cold = pool_.next_cold_at();
    if (cold <= n) {
      capacity_freed_ = true;
      schedule_turn_end();
    } else {
      next = std::min(next, cold);
    }
  }
  next = std::min({next, total_timers_.next(), conn_timers_.next(), fd_timers_.next(), raw_timers_.next()});
  if (next != UINT64_MAX) arm_deadline(next);
}

void Engine::note_event() {
  flush_pending_ = true;
  schedule_turn_end();
}

void Engine::schedule_turn_end() {
  if (check_active_ || handles_closing_) return;
  check_active_ = true;
  uv_check_start(&check_, on_check);
  // An active idle handle keeps the next poll from blocking, so work scheduled outside a poll
  // callback (from JS, from close callbacks) still runs this turn or the next.
  uv_idle_start(&idle_, on_idle);
}

// Deliberately empty: the handle only has to be *active* while libuv computes the poll timeout
// (which happens after the idle phase); it is stopped at the end of the turn, in run_turn_end.
void Engine::on_idle(uv_idle_t*) {}

void Engine::on_check(uv_check_t* c) {
  auto* self = static_cast<Engine*>(c->data);
  self->run_turn_end();
}

void Engine::run_turn_end() {
  check_active_ = false;
  uv_check_stop(&check_);
  uv_idle_stop(&idle_);
  flush_outputs();
  // Deferred pool work first, so requests it fails are part of this flush.
  while (!pending_dispatch_.empty()) {
    std::vector<Key*> keys;
    keys.swap(pending_dispatch_);
    for (Key* k : keys) {
      k->dispatch_scheduled = false;
      if (!k->waiters.empty()) pool_.dispatch(*k, *this);
    }
  }
  // Room held for a key that no longer needs it (pool: Key::reserved) counts as freed too,
  // also when serving the blocked keys gives some back.
  for (int pass = 0; pass < 4 && (capacity_freed_ || pool_.take_released()); ++pass) {
    capacity_freed_ = false;
    raw_serve_slot_waiters();
    pool_.serve_blocked(*this);
  }
  if (budget_ != nullptr) {
    // Grants that came for keys served otherwise meanwhile go back to the other engines.
    if (budget_woken_ && !pool_.has_blocked() && raw_slot_waiters_.empty()) budget_->drop_grants(member_);
    budget_woken_ = false;
    if (budget_->anyone_waiting()) publish_idle();
  }
  free_deferred();
  // A crawler touches many origins: forget keys with nothing open or queued once there are many.
  if (pool_.key_count() > kMaxIdleKeys) pool_.prune_empty_keys();
  if (closing_) maybe_finish_close();
  if (flush_pending_) {
    flush_pending_ = false;
    sink_->flush();  // may re-enter submit(): everything above is settled by now
  }
  flush_outputs();  // what those submits encoded
  ++turn_;
  if (!throttled_.empty()) {
    std::vector<RequestId> ids;
    ids.swap(throttled_);
    for (RequestId id : ids) {
      auto it = requests_.find(id);
      if (it != requests_.end() && it->second->conn != nullptr) it->second->conn->unthrottle(it->second);
    }
  }
  raw_turn_end();
}

void Engine::free_deferred() {
  dns_queries_done_.clear();
  for (auto* c : raw_dead_) delete c;
  raw_dead_.clear();
  if (dead_.empty()) return;
  std::vector<Connection*> dead;
  dead.swap(dead_);
  for (auto* c : dead) delete c;
}

// ---------------------------------------------------------------------------------------------
// Closing

void Engine::close() {
  if (closing_) return;
  closing_ = true;
  maybe_finish_close();
}

void Engine::destroy(Error reason) {
  closing_ = true;
  // Queued requests first (they would otherwise be dispatched onto sockets being torn down).
  std::vector<Request*> queued;
  pool_.for_each_key([&](Key& k) {
    for (Request* r : k.waiters) queued.push_back(r);
  });
  for (Request* r : queued) fail_queued(r, reason, error_message(reason));
  std::vector<Connection*> snapshot(conns_);
  for (Connection* c : snapshot) c->fail_all(reason, error_message(reason));
  maybe_finish_close();
}

void Engine::release(std::function<void()> on_released) {
  on_released_ = std::move(on_released);
  sink_ = &g_null_sink;
  self_delete_ = true;
  destroy(Error::SessionClosed);
}

void Engine::maybe_finish_close() {
  if (!closing_ || !requests_.empty()) return;
  if (!raw_close_all()) return;  // raw_closed() brings us back here (at the end of the turn)
  if (!dns_queries_.empty()) fail_dns_queries(Error::SessionClosed);
  if (!conns_.empty()) {
    std::vector<Connection*> snapshot(conns_);
    for (Connection* c : snapshot) {
      if (c->stage() == Connection::Stage::Open && c->active() == 0) pool_.unpark(*c->key(), c);
      c->close(false);
    }
    return;  // connection_closed() brings us back here once they are gone
  }
  // A lookup may still be running in the threadpool; its callback needs the engine (and libuv
  // refuses to close a loop with requests outstanding). Queued ones are cancelled.
  if (pending_lookups_ > 0) {
    if (uv_resolver_ != nullptr) uv_resolver_->cancel_all();
    return;
  }
  if (handles_closing_) return;
  handles_closing_ = true;
  free_deferred();
  uv_timer_stop(&timer_);
  uv_check_stop(&check_);
  uv_idle_stop(&idle_);
  check_active_ = false;
  if (flush_pending_) {
    // Errors raised while tearing down still reach the caller before on_closed.
    flush_pending_ = false;
    sink_->flush();
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_handle_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&check_), on_handle_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&idle_), on_handle_closed);
  if (budget_ != nullptr || dns_member_ != 0) {
    // No wake-up after these; whatever this engine still held (slots, resolver calls) goes back.
    if (budget_ != nullptr) budget_->leave(member_);
    if (dns_member_ != 0) dns_->store()->leave(dns_member_);
    budget_ = nullptr;
    dns_member_ = 0;
    uv_close(reinterpret_cast<uv_handle_t*>(&shared_async_), on_handle_closed);
  }
}

// ---------------------------------------------------------------------------------------------
// The shared budget (EngineOptions::shared_budget), on this engine's loop

void Engine::on_shared_wake(uv_async_t* a) { static_cast<Engine*>(a->data)->shared_wake(); }

void Engine::shared_wake() {
  if (handles_closing_) return;
  // A resolver call of another engine sharing the DNS store finished: queued lookups may start.
  if (dns_member_ != 0) dns_->pump_shared();
  if (budget_ == nullptr) return;
  budget_woken_ = true;
  // Idle sockets another engine asked this one to close: the slot each frees is the asker's.
  std::vector<SharedBudget::Eviction> evictions;
  budget_->take_evictions(member_, &evictions);
  for (const auto& e : evictions) {
    if (!pool_.evict_for_other(e.cold_only, e.cold_before, *this)) budget_->eviction_failed(e);
  }
  publish_idle();
  // A slot freed, a grant came, or descriptors came back: blocked keys and raw connects look again.
  capacity_freed_ = true;
  schedule_turn_end();
}

void Engine::publish_idle() {
  uint64_t oldest = pool_.oldest_idle_at();
  budget_->publish_idle(member_, oldest == UINT64_MAX ? 0 : std::max<size_t>(1, pool_.total_idle()), oldest);
}

void Engine::on_handle_closed(uv_handle_t* h) {
  auto* self = static_cast<Engine*>(h->data);
  if (--self->open_handles_ > 0) return;
  if (self->self_delete_) {
    auto done = std::move(self->on_released_);
    delete self;
    if (done) done();  // libuv does not touch a handle after its close callback
    return;
  }
  self->sink_->on_closed();
}

std::vector<Engine::OriginStat> Engine::origin_stats() {
  std::vector<OriginStat> out;
  std::unordered_map<const Key*, size_t> at;
  pool_.for_each_key([&](Key& k) {
    size_t open = k.open - k.closing;
    if (open == 0 && k.waiters.empty()) return;
    at.emplace(&k, out.size());
    out.push_back({k.info.origin(), open, 0, k.waiters.size(), 0});
  });
  // Idle: open with nothing to carry (a multiplexed connection with room stays in the pool's
  // list while busy); streams: requests on HTTP/2 connections.
  for (Connection* c : conns_) {
    if (c->stage() != Connection::Stage::Open) continue;
    auto it = at.find(c->key());
    if (it == at.end()) continue;
    OriginStat& o = out[it->second];
    if (c->active() == 0) ++o.idle;
    if (std::strcmp(c->protocol(), "h2") == 0) o.streams += c->active();
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// DNS

void Engine::dns_answer(uint64_t lookup_id, const dns::Answer& a) { dns_->complete(lookup_id, a, now()); }

void Engine::dns_query(uint32_t query_id, const std::string& host, int family) {
  if (closing_) {
    static const std::vector<dns::Address> none;
    sink_->on_dns_result(query_id, Error::SessionClosed, none, 0);
    note_event();
    return;
  }
  if (dns_queries_.count(query_id) != 0) return;  // ids are unique per engine (the caller's job)
  auto q = std::make_unique<DnsQuery>();
  q->engine = this;
  q->id = query_id;
  DnsQuery* p = q.get();
  dns_queries_.emplace(query_id, std::move(q));
  uint64_t ticket = dns_->lookup(host, 0, family, now(), p);
  auto it = dns_queries_.find(query_id);
  if (it != dns_queries_.end() && it->second.get() == p) p->ticket = ticket;  // else answered already
}

void Engine::dns_query_answered(DnsQuery* q, Error e, const std::vector<dns::Address>& addrs,
                                size_t rotate_from) {
  sink_->on_dns_result(q->id, e, addrs, rotate_from);
  note_event();
  auto it = dns_queries_.find(q->id);
  if (it == dns_queries_.end()) return;
  dns_queries_done_.push_back(std::move(it->second));  // never freed inside its own callback
  dns_queries_.erase(it);
}

void Engine::fail_dns_queries(Error e) {
  std::vector<DnsQuery*> pending;
  for (auto& kv : dns_queries_) pending.push_back(kv.second.get());
  static const std::vector<dns::Address> none;
  for (DnsQuery* q : pending) {
    dns_->cancel(q->ticket);
    dns_query_answered(q, e, none, 0);
  }
}

EngineStats Engine::stats() const {
  EngineStats s = stats_;
  s.connections_evicted = pool_.evictions();
  s.dns = dns_->stats();
  s.queued = pool_.total_waiting();
  s.in_flight = requests_.size() - s.queued;
  s.open = pool_.total_open_now();
  s.idle = pool_.total_idle();
  s.connecting = 0;
  s.raw_sockets = raws_.size();
  for (auto& kv : raws_) {
    if (kv.second->waiting_for_slot() || kv.second->waiting_for_fd()) ++s.raw_waiting;
  }
  s.idle = 0;
  for (auto* c : conns_) {
    switch (c->stage()) {
      case Connection::Stage::Connecting:
        ++s.connecting;
        break;
      case Connection::Stage::Open:
        if (c->active() == 0) ++s.idle;
        if (std::strcmp(c->protocol(), "h2") == 0) {
          ++s.h2_connections;
          s.streams += c->active();
        }
        break;
      case Connection::Stage::Closing:
        break;
    }
  }
  return s;
}

}  // namespace uvf
