// The request engine: queue → keyed pool → connection (client/connection.h) → transport, on a
// borrowed libuv loop. It never branches on the protocol a connection speaks.
// One Engine per Session (per JS environment; never shared across threads). The engine reports
// everything through an EngineSink; it never calls into JS itself. Events raised during one loop
// turn are flushed once, at the end of the turn (a uv_check), so the binding can batch them.
#pragma once
#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/errors.h"
#include "client/connection.h"
#include "client/request.h"
#include "client/raw_connection.h"
#include "dns/dns_cache.h"
#include "dns/resolver_uv.h"
#include "loop/deadline_queue.h"
#include "http1/request_encoder.h"
#include "http2/h2_session.h"
#include "net/tcp_socket.h"
#include "pool/connection_pool.h"
#include "tls/tls_channel.h"

namespace uvf {

struct DnsEngineOptions {
  dns::Options cache;
  int family = 0;                          // addresses used: 0 (any), 4 or 6
  uint32_t happy_eyeballs_delay_ms = 250;  // race the other family after this long; 0: no race
  bool external = false;                   // lookups go to the sink (on_dns_lookup), not getaddrinfo
  // Static answers ("host" or "host:port" → IP literals), like curl --resolve.
  std::vector<std::pair<std::string, std::vector<std::string>>> overrides;
  // The cached answers, shared with other engines (Session ioThreads: every I/O thread's and the
  // raw sockets' main-loop engine). Null: this engine's own.
  std::shared_ptr<dns::EntryStore> shared_store;
};

// HTTP/2 (client/http2_connection.h). Which protocols a TLS connection offers is its TLS profile's
// ALPN list; these say what the engine accepts and how its HTTP/2 connections behave.
struct Http2EngineOptions {
  enum class Mode : uint8_t {
    Off,             // never HTTP/2 (a server selecting h2 by ALPN fails the handshake)
    Alpn,            // HTTP/2 when the server selects h2 by ALPN (https)
    PriorKnowledge,  // also h2c on http: origins without asking (RFC 9113 §3.3); not through an HTTP proxy
  };
  Mode mode = Mode::Alpn;
  http2::SessionOptions session;  // the preface (SETTINGS, WINDOW_UPDATE, PRIORITY, pseudo order) and limits
  uint32_t max_streams = 100;     // per connection, also bounded by the server's SETTINGS_MAX_CONCURRENT_STREAMS
  uint32_t settings_timeout_ms = 10'000;  // our SETTINGS unacknowledged this long: ERR_HTTP2_PROTOCOL
  uint32_t ping_interval_ms = 0;  // PING an open connection this often (0: never); no ACK in time closes it
  // Regular header names (lower-case) in the order HTTP/2 requests send them (a browser profile's
  // HTTP/2 order); names not listed keep their relative order after these. Empty: as given.
  std::vector<std::string> header_order;
  // Headers HTTP/2 requests carry when the request has none of that name (a browser profile's
  // HTTP/2-only fields, e.g. Firefox's te: trailers): name, value, name, value, ...
  std::vector<std::string> extra_headers;
};

struct EngineOptions {
  PoolLimits pool;
  uint32_t keep_alive_timeout_ms = 15'000;
  Timeouts timeouts;
  ResponseLimits limits;
  bool no_delay = true;
  unsigned tcp_keep_alive_ms = 0;
  std::string local_address;  // optional IP to bind outgoing sockets to
  std::string user_agent;     // default User-Agent (empty: none)
  // Makes the socket of every HTTP connection (raw sockets always use TcpSocket). Empty: real
  // TCP sockets. Benchmarks, fuzzers and the TSan tests inject net/memory_socket.h's
  // memory_socket_factory() here (no socket, no kernel).
  SocketFactory socket_factory;
  DnsEngineOptions dns;
  Http2EngineOptions http2;
  // Engines on several threads (Session ioThreads) and the main-loop engine of their raw sockets:
  // one `connections` budget and one descriptor state for them all (pool.total is then this
  // budget's total, not each engine's). Null: the engine's own pool.total.
  std::shared_ptr<SharedBudget> shared_budget;
};

// Per-request settings decided by the caller.
struct RequestSpec {
  RequestId id = 0;
  PoolKeyInfo origin;
  std::string_view method;
  std::string_view target;
  const std::string_view* headers = nullptr;  // name,value pairs
  size_t header_pairs = 0;
  std::string body;                 // a complete body (moved in), or empty
  bool has_body = false;            // body present (possibly zero-length)
  bool streamed_body = false;       // body chunks follow via write_body()/end_body()
  int64_t streamed_length = -1;     // known length of a streamed body, or -1 (chunked)
  bool stream_response = false;     // deliver head/data/end events instead of one completion
  bool want_timings = false;        // report RequestTimings before the head/completion/error
  Timeouts timeouts;
  ResponseLimits limits;
};

// Phase durations of one request, in microseconds (only measured when the caller asks).
struct RequestTimings {
  uint32_t queued = 0;   // submitted → handed to a connection
  uint32_t dns = 0;      // the connection's name resolution (0 when reused or an IP literal)
  uint32_t connect = 0;  // the connection's TCP connect (0 when reused)
  uint32_t tls = 0;      // the connection's TLS handshake (0 when reused or plain http)
  uint32_t ttfb = 0;     // handed to the connection → first response byte
  uint32_t head = 0;     // handed to the connection → complete response head
  uint32_t total = 0;    // submitted → this report
};

struct ResponseMeta {
  uint16_t status = 0;
  uint8_t version_major = 1;  // 2: HTTP/2 (version_minor 0)
  uint8_t version_minor = 1;
  bool reused = false;    // served on a kept-alive connection
  uint8_t attempts = 1;   // 2 when transparently retried after a stale keep-alive socket
  uint32_t tls_info = 0;  // the connection's TLS session (see EngineSink::on_tls_info); 0 = plain
  uint32_t h2_info = 0;   // the HTTP/2 connection's info (see EngineSink::on_h2_info); 0 = HTTP/1
};

class EngineSink {
 public:
  virtual ~EngineSink() = default;
  virtual void on_complete(RequestId id, const ResponseMeta& m, std::string&& head, std::string&& body) = 0;
  virtual void on_head(RequestId id, const ResponseMeta& m, std::string&& head) = 0;  // stream mode
  virtual void on_data(RequestId id, const char* p, size_t n) = 0;                     // stream mode
  virtual void on_end(RequestId id) = 0;                                               // stream mode
  // The response's trailer fields ("name: value\r\n" lines), just before on_complete / on_end.
  virtual void on_trailers(RequestId id, std::string&& fields) { (void)id, (void)fields; }
  virtual void on_error(RequestId id, Error e, const char* detail, int sys_error) = 0;
  virtual void on_drain(RequestId id) = 0;   // a streamed request body may take more bytes
  // Just before on_head/on_complete/on_error of a request submitted with want_timings.
  virtual void on_timings(RequestId id, const RequestTimings& t) = 0;
  // A TLS handshake finished: `id` names its session info until on_tls_forget(id) (the
  // connection closed). Responses carry the id in ResponseMeta::tls_info.
  virtual void on_tls_info(uint32_t id, const tls::SessionInfo& info) { (void)id, (void)info; }
  virtual void on_tls_forget(uint32_t id) { (void)id; }
  // An HTTP/2 connection's first response: `id` names what it sent (the Akamai fingerprint of its
  // preface and first HEADERS) until on_h2_forget(id). Responses carry it in ResponseMeta::h2_info.
  virtual void on_h2_info(uint32_t id, const std::string& fingerprint) { (void)id, (void)fingerprint; }
  virtual void on_h2_forget(uint32_t id) { (void)id; }
  // External resolution (EngineOptions::dns.external): resolve `host` and answer with
  // Engine::dns_answer(lookup_id, ..). One call per real lookup (the cache coalesces).
  virtual void on_dns_lookup(uint64_t lookup_id, const std::string& host, int family) = 0;
  // The answer to Engine::dns_query (addrs empty on error; start at rotate_from, wrapping).
  virtual void on_dns_result(uint32_t query_id, Error e, const std::vector<dns::Address>& addrs,
                             size_t rotate_from) = 0;
  // Raw sockets (Engine::raw_open): open (after TLS, if any), bytes, the peer's end, an error
  // (then the socket closes), the write queue flushed after a write queued bytes, and closed
  // (the id is free again). Errors before open mean the connect failed.
  virtual void on_raw_open(RawId id, const RawOpenInfo& info) { (void)id, (void)info; }
  virtual void on_raw_data(RawId id, const char* p, size_t n) { (void)id, (void)p, (void)n; }
  // A large read handed over without copying: `block` (from Engine::take_read_block) is the
  // sink's to release with Engine::free_read_block. By default it is copied through on_raw_data.
  virtual void on_raw_block(RawId id, char* block, size_t n);
  virtual void on_raw_end(RawId id) { (void)id; }
  virtual void on_raw_error(RawId id, Error e, const char* detail, int sys_error) {
    (void)id, (void)e, (void)detail, (void)sys_error;
  }
  virtual void on_raw_drain(RawId id) { (void)id; }
  // end() completed: the queued bytes and the FIN (after a TLS close_notify) are in the kernel.
  virtual void on_raw_finished(RawId id) { (void)id; }
  virtual void on_raw_closed(RawId id) { (void)id; }
  virtual void on_closed() = 0;              // close()/destroy() finished: every handle closed
  virtual void flush() = 0;                  // end of a loop turn with events raised: deliver them
};

struct EngineStats {
  uint64_t requests_started = 0, requests_completed = 0, requests_failed = 0;
  uint64_t connections_created = 0, connections_reused = 0, retries = 0;
  uint64_t connections_evicted = 0;  // idle ones closed to make room for another origin (total limit)
  uint64_t fd_exhausted_waits = 0;  // requests that waited for a file descriptor
  uint64_t bytes_in = 0, bytes_out = 0;
  uint64_t tls_handshakes = 0, tls_resumed = 0, tls_failures = 0;
  size_t in_flight = 0, queued = 0, open = 0, idle = 0, connecting = 0;
  size_t h2_connections = 0;  // open HTTP/2 connections
  size_t streams = 0;         // requests carried on them now
  size_t raw_sockets = 0;  // raw connections not yet closed
  size_t raw_waiting = 0;  // of those, connects waiting for a slot (connections limit) or a descriptor
  dns::Stats dns;
};

class Engine : public ConnectionPool<Connection, Request>::Driver {
 public:
  using Pool = ConnectionPool<Connection, Request>;
  using Key = Pool::Key;

  // Validates options. Returns nullptr and sets *err / *detail on invalid options.
  static std::unique_ptr<Engine> create(uv_loop_t* loop, EngineSink* sink, const EngineOptions& opts,
                                        Error* err, const char** detail);
  ~Engine() override;

  // Queues a request. Validation failures (method, target, headers) return an error and send
  // nothing; the request then does not exist. *detail is a static reason string.
  Error submit(RequestSpec&& spec, const char** detail);
  // submit()'s checks of the method, target and headers, without an engine (another thread may
  // check a request before handing it to an engine's thread). *connection_close: it asks for one.
  static Error validate(const RequestSpec& spec, const EngineOptions& opts, const char** detail,
                        bool* connection_close = nullptr);
  // Forgets a request without reporting anything (the caller already settled it): a queued
  // request leaves the queue; an active one destroys its connection. False if unknown.
  bool abort(RequestId id);
  // Stream mode flow control: stop/restart reading the response body.
  void pause(RequestId id);
  void resume(RequestId id);
  // Streamed request bodies. write_body returns false when the caller should wait for on_drain.
  bool write_body(RequestId id, const char* p, size_t n, Error* err);
  void end_body(RequestId id);
  bool has_request(RequestId id) const { return requests_.count(id) != 0; }

  // Graceful: new submits fail; when every request has finished, idle sockets close, then
  // on_closed. destroy(): every request fails with SessionClosed, sockets are reset.
  void close();
  void destroy(Error reason = Error::SessionClosed);
  // For a binding whose owner is going away: destroys everything, reports nothing more, and
  // deletes the engine itself once its handles have closed. The pointer must not be used after.
  void release(std::function<void()> on_released = nullptr);
  bool closing() const { return closing_; }

  EngineStats stats() const;

  // DNS: one cache per engine, shared by every connection (and by dns_query).
  dns::DnsCache& dns() { return *dns_; }
  // The answer to an on_dns_lookup (external resolution). Unknown ids are ignored.
  void dns_answer(uint64_t lookup_id, const dns::Answer& a);
  // Resolves `host` through the cache and reports on_dns_result(query_id, ..) (maybe synchronously).
  // Pending queries fail with SessionClosed once the engine has nothing else left to close.
  void dns_query(uint32_t query_id, const std::string& host, int family);
  struct OriginStat {
    std::string origin;  // the pool key
    size_t open, idle, queued;
    size_t streams;  // requests carried on its HTTP/2 connections
  };
  std::vector<OriginStat> origin_stats();
  uv_loop_t* loop() const { return loop_; }

  // Raw sockets for users' own protocols (client/raw_connection.h), ids chosen by the caller.
  // raw_open validates and starts connecting (failures after that are events); the others
  // ignore unknown ids. raw_write returns the bytes queued natively, or -1 (not writable).
  // close() waits for requests, then fails every raw socket with SessionClosed.
  Error raw_open(RawId id, RawOptions&& opts, const char** detail);
  int64_t raw_write(RawId id, const char* p, size_t n);
  void raw_end(RawId id);
  void raw_destroy(RawId id, bool abortive);
  void raw_pause(RawId id);
  void raw_resume(RawId id);
  // --- for RawConnection ---
  static bool parse_local_address(const std::string& ip, sockaddr_storage* out);
  const sockaddr* local_address() const {
    return has_local_addr_ ? reinterpret_cast<const sockaddr*>(&local_addr_) : nullptr;
  }
  void raw_throttle(RawId id);
  void raw_wake(RawConnection* c, uint64_t at);  // like wake(): its deadline or race is due at `at`
  void raw_out_of_fds(bool first_wait);
  std::string fd_wait_detail() const;  // first_wait: count it in stats (once per connect)
  bool raw_take_slot(RawId id);  // false: queued; RawConnection::slot_granted() follows
  void raw_closed(RawConnection* c);

  // --- for connections (client/connection.h) ---
  uint64_t now() const { return uv_now(loop_); }
  const EngineOptions& options() const { return opts_; }
  ReadBuffer* read_buffer() { return &rbuf_; }
  // Decrypted bytes land here (consumed synchronously, like the socket read buffer).
  char* plain_buffer() { return plain_buf_.get(); }
  // Read blocks for raw sockets (kReadBlockSize bytes, malloc'd): a read that fills at least
  // kHandOverBytes of one is handed to the sink as is; a smaller one is copied out and its block
  // kept as the engine's one spare, so steady small reads allocate nothing.
  static constexpr size_t kReadBlockSize = 64 * 1024;
  static constexpr size_t kHandOverBytes = 16 * 1024;
  char* take_read_block();
  void give_read_block(char* b);
  static void free_read_block(char* b);
  static constexpr size_t kPlainBufferSize = 64 * 1024;
  uint32_t next_tls_info() { return ++tls_info_seq_ == 0 ? ++tls_info_seq_ : tls_info_seq_; }
  void tls_finished(bool ok, bool resumed) {
    if (ok) {
      ++stats_.tls_handshakes;
      if (resumed) ++stats_.tls_resumed;
    } else {
      ++stats_.tls_failures;
    }
  }
  EngineSink* sink() { return sink_; }
  // The engine's one timer fires at or before `at` (ms on now()'s clock).
  void arm_deadline(uint64_t at);
  // c's deadline() is due at `at` (or sooner than it was): the sweep asks c then. O(log n).
  void wake(Connection* c, uint64_t at);
  void note_event();  // an event went to the sink: make sure the turn ends with a flush
  void schedule_turn_end();
  void connection_connected(Connection* c);
  void connection_connect_failed(Connection* c, Error e, int sys, const char* detail = nullptr);
  void connection_idle(Connection* c);  // finished a request: room for another
  void connection_closing(Connection* c);  // close() started: no longer open for stats
  void connection_closed(Connection* c);  // after the handle closed
  // ALPN chose another protocol: `to` takes over from `from` (which gave it its transport and is
  // freed after the turn, reporting nothing). `to` then reports connected as usual.
  void replace_connection(Connection* from, Connection* to);
  // c has no room any more (GOAWAY, a lower stream limit): no request is handed to it.
  void connection_full(Connection* c);
  // c has output to write at the end of this loop turn (Connection::flush_output): requests
  // submitted in one turn go out in one write.
  void defer_output(Connection* c);
  void request_finished(Request* r, bool failed);
  // What a connection reports of the requests it carries (the engine hands it to the sink, counts
  // it, and flushes at the end of the turn). Connections never call the sink themselves.
  void respond_head(Request* r, const ResponseMeta& m, std::string&& head);  // stream mode; timings first
  void respond_data(Request* r, const char* p, size_t n);                   // stream mode
  void respond_trailers(Request* r, std::string&& fields);
  void respond_end(Request* r);                                              // stream mode; finishes r
  void respond_complete(Request* r, const ResponseMeta& m, std::string&& head, std::string&& body);  // finishes r
  void respond_error(Request* r, Error e, const char* detail, int sys);     // finishes r
  void respond_drain(Request* r);  // a streamed request body may take more bytes
  // An HTTP/2 connection's fingerprint for its responses (on_h2_info), and its end.
  uint32_t announce_h2(const std::string& fingerprint);
  void forget_h2(uint32_t id);
  void report_timings(Request* r);  // no-op unless the request asked for timings
  bool try_retry(Request* r);  // requeue an idempotent request on a fresh connection
  // Requeue a request the server did not process (HTTP/2 REFUSED_STREAM, or above a GOAWAY's
  // last stream id), whatever its method, on any connection with room; at most 3 more attempts.
  bool retry_unprocessed(Request* r);
  uint64_t turn() const { return turn_; }
  void throttle(RequestId id) {
    throttled_.push_back(id);
    schedule_turn_end();
  }
  void lookup_started() { ++pending_lookups_; }
  void lookup_finished() {
    --pending_lookups_;
    if (closing_ && pending_lookups_ == 0) maybe_finish_close();
  }
  void add_bytes(uint64_t in, uint64_t out) {
    stats_.bytes_in += in;
    stats_.bytes_out += out;
  }

  // Pool::Driver
  bool is_alive(Connection* c) override;
  void discard(Key& k, Connection* c) override;
  void open_connection(Key& k, Request* first) override;
  void assign(Key& k, Connection* c, Request* r) override;
  bool wants_fresh(Request* r) override;
  bool can_open() override { return !fds_blocked(); }
  uint64_t now_ms() override { return now(); }
  void wake_at(uint64_t at) override { arm_deadline(at); }

 private:
  Engine(uv_loop_t* loop, EngineSink* sink, const EngineOptions& opts);
  int init_handles();
  static void on_timer(uv_timer_t* t);
  static void on_check(uv_check_t* c);
  static void on_idle(uv_idle_t* i);
  static void on_handle_closed(uv_handle_t* h);
  void sweep_deadlines();
  // Out of descriptors, here or (a shared budget) in another engine sharing it.
  bool fds_blocked() const { return fd_exhausted_ || (budget_ != nullptr && budget_->fd_blocked()); }
  static void on_shared_wake(uv_async_t* a);
  void shared_wake();  // the shared budget or the shared DNS store woke this engine
  void publish_idle();
  void fail_queued(Request* r, Error e, const char* detail);
  void requeue(Request* r, bool fresh);
  void out_of_fds(Key& k);
  void maybe_finish_close();
  void free_deferred();
  class DnsBridge;
  struct DnsQuery;
  void dns_query_answered(DnsQuery* q, Error e, const std::vector<dns::Address>& addrs, size_t rotate_from);
  void fail_dns_queries(Error e);
  void run_turn_end();
  RawConnection* raw_find(RawId id);
  void raw_turn_end();
  void raw_serve_slot_waiters();
  void raw_sweep(uint64_t now);
  bool raw_close_all();  // true when none is left

  uv_loop_t* loop_;
  EngineSink* sink_;
  EngineOptions opts_;
  Pool pool_;
  ReadBuffer rbuf_;
  std::unique_ptr<char[]> plain_buf_{new char[kPlainBufferSize]};
  char* spare_block_ = nullptr;
  uint32_t tls_info_seq_ = 0;
  std::unordered_map<RequestId, Request*> requests_;
  std::vector<Connection*> conns_;          // every connection not yet closed
  std::vector<Connection*> dead_;           // closed; freed after the loop turn
  // Deadlines, each queue holding only what has one: a timer firing costs what expires.
  DeadlineQueue<Connection, &Connection::timer> conn_timers_;  // deadline() (lazy: re-asked when due)
  DeadlineQueue<Request, &Request::total_timer> total_timers_;  // total timeout, queued or carried
  DeadlineQueue<Request, &Request::fd_timer> fd_timers_;        // queued, waiting for a descriptor
  DeadlineQueue<RawConnection, &RawConnection::timer> raw_timers_;
  sockaddr_storage local_addr_{};
  bool has_local_addr_ = false;
  uv_timer_t timer_;
  uv_check_t check_;
  uv_idle_t idle_;
  std::vector<Key*> pending_dispatch_;           // keys to dispatch at the end of the turn
  std::vector<Connection*> pending_output_;      // defer_output(): flushed at the end of the turn
  void flush_outputs();
  std::vector<RequestId> throttled_;             // streams whose reading restarts at turn end
  uint64_t turn_ = 1;
  uint64_t timer_at_ = UINT64_MAX;
  bool check_active_ = false;
  bool capacity_freed_ = false;
  bool fd_exhausted_ = false;   // EMFILE/ENFILE seen: no new sockets until one closes (or a retry)
  uint64_t fd_retry_at_ = 0;
  bool self_delete_ = false;
  // The shared budget (EngineOptions::shared_budget) and this engine's membership, and its
  // membership of the shared DNS store's resolver bound: shared_async_ is how another thread's
  // release, grant, eviction request or finished resolver call reaches this loop.
  SharedBudget* budget_ = nullptr;
  SharedBudget::MemberId member_ = 0;
  dns::EntryStore::MemberId dns_member_ = 0;
  uv_async_t shared_async_;
  bool budget_woken_ = false;  // since the last turn end: grants may have come
  std::function<void()> on_released_;
  int open_handles_ = 0;
  int pending_lookups_ = 0;  // getaddrinfo requests still owned by the threadpool
  bool flush_pending_ = false;
  bool closing_ = false;
  bool closed_reported_ = false;
  bool handles_closing_ = false;
  EngineStats stats_;
  // Declared in this order so the cache goes first: it holds the resolver, the bridge is both.
  std::unique_ptr<DnsBridge> dns_bridge_;
  std::unique_ptr<dns::UvResolver> uv_resolver_;   // null with external resolution
  std::unique_ptr<dns::DnsCache> dns_;
  std::unordered_map<uint32_t, std::unique_ptr<DnsQuery>> dns_queries_;
  std::vector<std::unique_ptr<DnsQuery>> dns_queries_done_;  // answered; freed after the turn
  std::unordered_map<RawId, RawConnection*> raws_;  // raw connections not yet closed
  std::vector<RawConnection*> raw_dead_;            // closed; freed after the loop turn
  std::vector<RawId> raw_throttled_;                // reading restarts at the end of the turn
  std::deque<RawId> raw_slot_waiters_;              // raw connects waiting under `connections`
  bool raw_fd_blocked_ = false;                     // some raw connect waits for a descriptor
};

}  // namespace uvf
