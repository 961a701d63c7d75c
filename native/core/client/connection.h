// What the engine and the pool know of a connection, whatever its protocol: it connects, carries
// up to capacity() requests at a time, and has its own deadlines. HTTP/1.1 (client/
// http1_connection.h) carries one request at a time; a multiplexing protocol carries many. The
// engine and the pool never branch on the protocol: everything protocol-specific (encoding the
// request, what abort does to the socket, which timeouts apply) is the connection's decision.
//
// Lifetime: created by new_connection(), started once; it reports to the engine (connected,
// connect failed, has room again, closing, closed) and is freed by the engine after the loop
// turn in which it reported closed. Callbacks never free.
#pragma once
#include <cstddef>
#include <cstdint>

#include "base/errors.h"
#include "loop/deadline_queue.h"
#include "pool/connection_pool.h"

namespace uvf {

class Engine;
class Connection;
struct Request;
using PoolKey = KeyedPool<Connection, Request>;

class Connection {
 public:
  enum class Stage { Connecting, Open, Closing };

  virtual ~Connection() = default;

  // The protocol this connection speaks ("http/1.1"), fixed once it is open.
  virtual const char* protocol() const = 0;
  // Requests it can carry at once (1 for HTTP/1.1; a peer's stream limit may lower it later).
  virtual size_t capacity() const = 0;
  // Requests it carries now.
  virtual size_t active() const = 0;
  bool has_room() const { return stage() == Stage::Open && active() < capacity(); }
  virtual Stage stage() const = 0;

  // Connects (resolve, dial, tunnel, TLS) within the timeouts of the request that asked for it.
  virtual void start(uint32_t connect_timeout_ms, uint32_t tls_timeout_ms) = 0;
  // Open with no request: waits (idle) until one is assigned or its idle timeout.
  virtual void park(uint64_t now) = 0;
  // Takes the request (the connection has room): encodes and sends it.
  virtual void assign(Request* r) = 0;
  // The user gave up on r: forget it without reporting anything. The connection decides what
  // that costs (HTTP/1.1: the socket may hold half a response, so it is destroyed).
  virtual void abort(Request* r) = 0;
  // Fails r with e (reported to the sink; no transparent retry).
  virtual void fail(Request* r, Error e, const char* detail) = 0;
  // Fails every request it carries with e, then closes (abortively): the engine is going away.
  virtual void fail_all(Error e, const char* detail) = 0;
  // Stream mode flow control for r's response; unthrottle: the loop turn ended (reading
  // stopped by the per-turn cap may start again unless paused).
  virtual void pause(Request* r) = 0;
  virtual void resume(Request* r) = 0;
  virtual void unthrottle(Request* r) = 0;
  // r's streamed body has more bytes (or its end).
  virtual void body_ready(Request* r) = 0;
  // Before an idle connection is reused: false when it died meanwhile (the pool discards it).
  virtual bool probe_alive() = 0;
  // When on_deadline() is next due (ms on the engine's clock), 0 for never: a phase timeout,
  // the idle expiry, a Happy Eyeballs race. An earlier one is announced with Engine::wake();
  // a later one is found when the engine asks again at the earlier time.
  virtual uint64_t deadline() const = 0;
  // The engine's timer reached deadline(): fail, race or expire as due.
  virtual void on_deadline(uint64_t now) = 0;
  // Closes (RST if abortive). Requests must already be detached or failed.
  virtual void close(bool abortive) = 0;
  // It made a socket (so its close gives a descriptor back).
  virtual bool had_fd() const = 0;
  // Engine::defer_output() asked for it: write what was encoded during the turn.
  virtual void flush_output() {}
  bool output_deferred = false;  // in the engine's pending_output_

  // For the pool and the engine's bookkeeping.
  PoolKey* key() const { return key_; }
  uint64_t idle_since() const { return idle_since_; }  // ms; when it last had no request
  uint32_t served() const { return served_; }          // requests it has carried
  size_t index() const { return index_; }              // position in the engine's live list
  void set_index(size_t i) { index_ = static_cast<uint32_t>(i); }
  DeadlineEntry timer;  // in the engine's deadline queue (Engine::wake)

 protected:
  explicit Connection(PoolKey* key) : key_(key) {}
  PoolKey* key_;
  uint64_t idle_since_ = 0;
  uint32_t served_ = 0;
  uint32_t index_ = 0;
};

// A new connection for `key` (not started). It connects as HTTP/1.1; when ALPN (or prior
// knowledge) picks HTTP/2 it hands its transport to an Http2Connection (Engine::replace_connection).
Connection* new_connection(Engine* engine, PoolKey* key);

}  // namespace uvf
