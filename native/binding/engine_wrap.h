// JS wrapper of one core Engine (node-addon-api). Converts arguments, owns the batch of events
// raised during a loop turn and delivers it to JS in one call (one crossing per turn, not per
// response). Keeps the JS object alive while requests are in flight; closes every handle on
// environment teardown (worker exit) through an async cleanup hook.
// With ioThreads N ≥ 1 the requests run on N EngineThreads (client/engine_thread.h), origins
// assigned by their pool key; their batches reach JS through a uv_async on the JS thread. Raw
// sockets stay on an engine on the JS thread's loop (created at the first raw connect).
#pragma once
#include <napi.h>

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "client/engine.h"
#include "client/engine_thread.h"
#include "client/event_batch.h"

namespace uvf {

class EngineWrap : public Napi::ObjectWrap<EngineWrap>, public EngineSink {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit EngineWrap(const Napi::CallbackInfo& info);
  ~EngineWrap() override;

  // EngineSink
  void on_complete(RequestId id, const ResponseMeta& m, std::string&& head, std::string&& body) override;
  void on_head(RequestId id, const ResponseMeta& m, std::string&& head) override;
  void on_data(RequestId id, const char* p, size_t n) override;
  void on_end(RequestId id) override;
  void on_error(RequestId id, Error e, const char* detail, int sys_error) override;
  void on_drain(RequestId id) override;
  void on_timings(RequestId id, const RequestTimings& t) override;
  void on_tls_info(uint32_t id, const tls::SessionInfo& info) override;
  void on_tls_forget(uint32_t id) override;
  void on_h2_info(uint32_t id, const std::string& fingerprint) override;
  void on_trailers(RequestId id, std::string&& fields) override;
  void on_h2_forget(uint32_t id) override;
  void on_dns_lookup(uint64_t lookup_id, const std::string& host, int family) override;
  void on_dns_result(uint32_t query_id, Error e, const std::vector<dns::Address>& addrs,
                     size_t rotate_from) override;
  void on_raw_open(RawId id, const RawOpenInfo& info) override;
  void on_raw_data(RawId id, const char* p, size_t n) override;
  void on_raw_block(RawId id, char* block, size_t n) override;
  void on_raw_end(RawId id) override;
  void on_raw_error(RawId id, Error e, const char* detail, int sys_error) override;
  void on_raw_drain(RawId id) override;
  void on_raw_finished(RawId id) override;
  void on_raw_closed(RawId id) override;
  void on_closed() override;
  void flush() override;

 private:
  Napi::Value Submit(const Napi::CallbackInfo& info);
  Napi::Value Abort(const Napi::CallbackInfo& info);
  Napi::Value Pause(const Napi::CallbackInfo& info);
  Napi::Value Resume(const Napi::CallbackInfo& info);
  Napi::Value WriteBody(const Napi::CallbackInfo& info);
  Napi::Value EndBody(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Destroy(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value OriginStats(const Napi::CallbackInfo& info);
  Napi::Value LastError(const Napi::CallbackInfo& info);
  Napi::Value DnsAnswer(const Napi::CallbackInfo& info);
  Napi::Value DnsQuery(const Napi::CallbackInfo& info);
  Napi::Value DnsClear(const Napi::CallbackInfo& info);
  Napi::Value RawConnect(const Napi::CallbackInfo& info);
  Napi::Value RawWrite(const Napi::CallbackInfo& info);
  Napi::Value RawEnd(const Napi::CallbackInfo& info);
  Napi::Value RawDestroy(const Napi::CallbackInfo& info);
  Napi::Value RawPause(const Napi::CallbackInfo& info);
  Napi::Value RawResume(const Napi::CallbackInfo& info);

  void request_started();
  void request_settled();
  void pin(bool on);
  void deliver(bool closed);
  void drop_batch();
  napi_ref self_ref() { return static_cast<napi_ref>(*static_cast<Napi::Reference<Napi::Object>*>(this)); }
  static void on_env_teardown(napi_async_cleanup_hook_handle handle, void* arg);

  Napi::Env env_;
  Engine* engine_ = nullptr;   // owned; released (self-deleting) or deleted after on_closed
  // The JS callback, held weakly unless requests are in flight or a close is pending: the
  // callback's closure reaches back to this object, and a strong reference from native code
  // would make an abandoned Session uncollectable.
  napi_ref callback_ = nullptr;
  bool pinned_ = false;   // self and callback held strongly
  std::unique_ptr<Napi::AsyncContext> async_context_;
  EventBatch batch_;                        // records of this turn (large payloads as bigs)
  size_t in_flight_ = 0;
  bool closed_ = false;
  bool closing_ = false;
  napi_async_cleanup_hook_handle cleanup_hook_ = nullptr;
  std::string last_error_;
  EngineStats final_stats_;                 // kept after close so stats() stays truthful
  std::vector<std::string> scratch_;        // header bytes of the request being submitted
  std::vector<std::string_view> header_views_;

  // --- ioThreads ≥ 1 ---
  bool threaded() const { return !threads_.empty(); }
  uint32_t thread_index(const std::string& key) const {
    return static_cast<uint32_t>(std::hash<std::string>()(key) % threads_.size());
  }
  int owner_of(RequestId id);                    // its thread's index; -1: unknown (settled, or never submitted)
  void forget_settled(const EventBatch& b);      // N > 1: drops owner_ entries of settled requests
  bool ensure_main_engine();  // raw sockets: an engine on the JS thread's loop
  static void on_wake(uv_async_t* a);
  void take_thread_batches();
  void maybe_all_closed();
  void release_threads();  // silent teardown: every thread released and joined
  // The JS thread's handles for the I/O threads: wake (their batches arrived) and a check + idle
  // pair that sends the commands staged during a JS turn at its end (one wake-up per thread per
  // turn, and a burst of calls — an AbortSignal aborting many requests — arrives as one).
  struct MainHandles {
    uv_async_t wake;
    uv_check_t check;
    uv_idle_t idle;
    int open = 3;
    std::function<void()> done;  // after all three closed
  };
  void close_main_handles(std::function<void()> done = nullptr);
  void stage(uint32_t t, EngineThread::Command c);
  void flush_staged();
  static void on_stage_check(uv_check_t* c);
  MainHandles* handles_ = nullptr;
  std::vector<std::vector<EngineThread::Command>> staged_;
  bool staged_armed_ = false;
  std::vector<std::unique_ptr<EngineThread>> threads_;
  std::unordered_map<RequestId, uint32_t> owner_;  // N > 1: the thread of each request in flight
  uv_async_t* wake_ = nullptr;      // on the JS thread's loop; referenced while pinned
  size_t threads_open_ = 0;         // threads whose closed batch has not arrived
  bool main_closed_ = true;         // the main-loop engine (raw sockets) is closed or was never made
  bool close_requested_ = false;    // close() or destroy() was called
  bool destroy_requested_ = false;
  EngineOptions opts_;              // for validation on this thread and the main-loop engine
};

}  // namespace uvf
