// An Engine on a native thread of its own (Session ioThreads): the thread owns a libuv loop and
// the engine on it. Other threads talk to it only through
//   - commands (post): closures run on the I/O thread with its engine, in order, drained from a
//     CrossQueue by a uv_async (one wake-up per burst);
//   - events: the engine's sink encodes them into an EventBatch (the same wire as the main-loop
//     binding) and, at the end of each loop turn that raised any, puts it in a BatchMailbox and
//     calls `wake` (the consumer's uv_async_send); the consumer take()s them.
// Lifecycle: close()/destroy() as Engine's; the last batch the thread puts is closed() (the
// engine reported on_closed, every handle is closed, the loop is closed), then the thread ends:
// join() after taking it returns at once. release() (an owner going away) tears everything down
// reporting nothing; the destructor releases and joins if needed. No N-API: the binding wraps it.
#pragma once
#include <uv.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "client/engine.h"
#include "client/event_batch.h"
#include "loop/cross_queue.h"

namespace uvf {

class EngineThread final : private EngineSink {
 public:
  // Runs on the I/O thread; `e` is null once the engine is gone (closed or released): the
  // command then does nothing, or reports what it must (a query answers empty).
  using Command = std::function<void(Engine* e, EventBatch& out)>;

  // Creates the loop and the engine (here, so option errors come back at once) and starts the
  // thread. `index`/`count`: this engine's id space among `count` (EventBatch::set_id_space).
  // `wake` is called on the I/O thread when the mailbox goes from idle to holding events.
  static std::unique_ptr<EngineThread> start(const EngineOptions& opts, uint32_t index, uint32_t count,
                                             std::function<void()> wake, Error* err, const char** detail);
  ~EngineThread() override;
  EngineThread(const EngineThread&) = delete;
  EngineThread& operator=(const EngineThread&) = delete;

  // Any thread. Runs `c` on the I/O thread; once the thread has finished, runs it here with a
  // null engine (so every command runs exactly once). post_many: in order, one wake-up.
  void post(Command c);
  void post_many(std::vector<Command>& cs);
  // The consumer: appends the events put so far to *out. False if there were none.
  // *resume_due: some stream waits for this take; post taken_command() once the consumer has
  // handled the batch (after its own pause commands, so those win).
  bool take(EventBatch* out, bool* resume_due = nullptr);
  Command taken_command();

  // Stream-mode flow control. The thread pauses a response's reading by itself at the end of a
  // turn that delivered body bytes the consumer has not taken yet, and resumes it once they are
  // taken (unless the consumer paused it): at most one turn's bytes (kStreamTurnBytes) wait in
  // the mailbox per stream, as one turn's do on the main loop. The consumer's own pause/resume
  // and abort go through these commands, so the two kinds of pause do not undo each other.
  Command pause_command(RequestId id);
  Command resume_command(RequestId id);
  Command abort_command(RequestId id);  // settles the request in the batch if it was still running

  // Streamed request bodies. The producer (any one thread per request) hands a chunk over with
  // body_write(): it returns the command that gives the chunk to the engine (post or stage it, in
  // order with the request's other commands) and says in *more whether another chunk may follow
  // at once. Chunks cross without waiting for each other while fewer than kBodyHighWater bytes
  // are crossing and the engine's own high-water mark (Engine::write_body) is not reached;
  // otherwise *more is false and a drain event for the request follows once both have room again.
  Command body_write(RequestId id, std::string&& chunk, bool* more);
  // Synchronous snapshot from the I/O thread (waits for its current turn); the final stats once
  // the engine is gone.
  EngineStats stats();
  // One snapshot of several threads at the same instant: each stops at a barrier until all have
  // come to it, takes its own, and goes on once all have (so no socket closes on one thread and
  // opens on another between two of them: counts under a shared budget never add up beyond it).
  // The threads wait for each other only for that long. Finished threads give their final stats.
  static std::vector<EngineStats> stats_together(const std::vector<EngineThread*>& threads);
  std::vector<Engine::OriginStat> origin_stats();
  // Abortive and silent: destroys the engine, reports nothing more (no closed batch), stops the
  // thread and joins it. For an owner going away (GC, environment teardown).
  void release_and_join();
  // Waits for the thread to end (after its closed batch, or a release).
  void join();
  bool finished() const { return finished_.load(std::memory_order_acquire); }

 private:
  EngineThread(uint32_t index, uint32_t count, std::function<void()> wake);
  void run();
  static void on_async(uv_async_t* a);
  void drain_commands();
  void engine_gone();  // the engine reported on_closed or finished releasing: stop the loop
  void hand_over();    // puts cur_ in the mailbox, waking the consumer if needed
  void taken(Engine* e);  // the consumer took a batch: auto-paused streams resume
  void forget_flow(RequestId id);
  void body_written(Engine* e, EventBatch& out, RequestId id, size_t n, bool room);
  void forget_body(RequestId id);

  // EngineSink (I/O thread)
  void on_complete(RequestId id, const ResponseMeta& m, std::string&& head, std::string&& body) override;
  void on_head(RequestId id, const ResponseMeta& m, std::string&& head) override;
  void on_data(RequestId id, const char* p, size_t n) override;
  void on_trailers(RequestId id, std::string&& fields) override;
  void on_end(RequestId id) override;
  void on_error(RequestId id, Error e, const char* detail, int sys_error) override;
  void on_drain(RequestId id) override;
  void on_timings(RequestId id, const RequestTimings& t) override;
  void on_tls_info(uint32_t id, const tls::SessionInfo& info) override;
  void on_tls_forget(uint32_t id) override;
  void on_h2_info(uint32_t id, const std::string& fingerprint) override;
  void on_h2_forget(uint32_t id) override;
  void on_dns_lookup(uint64_t lookup_id, const std::string& host, int family) override;
  void on_dns_result(uint32_t query_id, Error e, const std::vector<dns::Address>& addrs, size_t rotate_from) override;
  void on_closed() override;
  void flush() override;

  std::function<void()> wake_;
  uv_loop_t loop_;
  uv_async_t async_;
  Engine* engine_ = nullptr;  // I/O thread only (after start)
  EventBatch cur_;            // I/O thread only: this turn's events
  BatchMailbox mailbox_;
  CrossQueue<Command> commands_;
  std::vector<Command> draining_;  // I/O thread only
  std::vector<Command> late_;      // queued when the engine went; run after the loop ends
  EngineStats final_stats_;        // written on the I/O thread before finished_
  bool released_ = false;          // I/O thread: no closed batch at the end
  std::atomic<bool> finished_{false};
  struct Flow {
    bool auto_paused = false;
    bool consumer_paused = false;
  };
  std::unordered_map<RequestId, Flow> flows_;  // I/O thread: stream responses with body bytes out
  std::vector<RequestId> to_pause_;             // I/O thread: auto-pause at the end of this turn
  std::atomic<uint32_t> auto_paused_{0};        // streams paused by the thread, waiting for a take
  // Streamed request bodies being written (body_write): both threads, under body_mu_.
  struct BodyFlow {
    size_t crossing = 0;       // bytes handed over, not yet given to the engine
    bool engine_full = false;  // the engine's write_body() said wait (its on_drain follows)
    bool waiting = false;      // the producer was told to wait for a drain event
  };
  std::mutex body_mu_;
  std::unordered_map<RequestId, BodyFlow> bodies_;
  std::thread thread_;
};

}  // namespace uvf
