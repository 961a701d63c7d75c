#include "client/engine_thread.h"

#include <future>

namespace uvf {

EngineThread::EngineThread(uint32_t index, uint32_t count, std::function<void()> wake)
    : index_(index), count_(count), wake_(std::move(wake)) {
  cur_.set_id_space(index, count);
}

std::unique_ptr<EngineThread> EngineThread::start(const EngineOptions& opts, uint32_t index, uint32_t count,
                                                  std::function<void()> wake, Error* err, const char** detail) {
  std::unique_ptr<EngineThread> t(new EngineThread(index, count, std::move(wake)));
  if (uv_loop_init(&t->loop_) != 0) {
    *err = Error::Internal;
    *detail = "uv_loop_init failed";
    return nullptr;
  }
  auto e = Engine::create(&t->loop_, t.get(), opts, err, detail);
  if (!e) {
    uv_run(&t->loop_, UV_RUN_NOWAIT);  // nothing was started; closes whatever create() opened
    uv_loop_close(&t->loop_);
    return nullptr;
  }
  t->engine_ = e.release();
  uv_async_init(&t->loop_, &t->async_, on_async);
  t->async_.data = t.get();
  // The thread starts after everything above is written (std::thread's start synchronises).
  t->thread_ = std::thread([self = t.get()] { self->run(); });
  return t;
}

EngineThread::~EngineThread() {
  if (thread_.joinable()) release_and_join();
}

void EngineThread::run() {
  uv_run(&loop_, UV_RUN_DEFAULT);
  // The engine is gone and the async handle closed: nothing is active any more.
  uv_loop_close(&loop_);
  // Commands that raced with the end run now, with no engine (queries answer empty).
  for (auto& c : late_) c(nullptr, cur_);
  late_.clear();
  if (!released_) {
    cur_.set_closed();
    hand_over();
  } else {
    cur_.clear();
  }
  finished_.store(true, std::memory_order_release);
}

void EngineThread::post(Command c) {
  // The wake-up is sent under the queue's lock: engine_gone() closes the queue before the
  // async handle, so no send can reach a closed handle.
  switch (commands_.push(c, [this] { uv_async_send(&async_); })) {
    case CrossQueue<Command>::Push::Wake:
    case CrossQueue<Command>::Push::Queued:
      break;
    case CrossQueue<Command>::Push::Closed: {
      // The thread has ended (or is ending and has drained): run it here, with no engine.
      EventBatch sink;
      c(nullptr, sink);
      break;
    }
  }
}

void EngineThread::on_async(uv_async_t* a) { static_cast<EngineThread*>(a->data)->drain_commands(); }

void EngineThread::drain_commands() {
  if (!commands_.take(&draining_)) return;
  for (auto& c : draining_) c(engine_, cur_);
  draining_.clear();
  // Events raised synchronously by a command (a validation failure, a DNS cache hit) are
  // flushed by the engine at the end of this turn; records a command wrote itself go now.
  if (!cur_.idle()) hand_over();
}

void EngineThread::hand_over() {
  EventBatch b;
  b.swap(cur_);
  if (mailbox_.put(std::move(b)) && wake_) wake_();
}

void EngineThread::engine_gone() {
  engine_ = nullptr;
  commands_.close(&late_);  // later posts run on their own thread, with no engine
  uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
}

EngineStats EngineThread::stats() {
  if (finished()) return final_stats_;
  auto p = std::make_shared<std::promise<EngineStats>>();
  std::future<EngineStats> f = p->get_future();
  post([this, p](Engine* e, EventBatch&) { p->set_value(e != nullptr ? e->stats() : final_stats_); });
  return f.get();
}

std::vector<Engine::OriginStat> EngineThread::origin_stats() {
  if (finished()) return {};
  auto p = std::make_shared<std::promise<std::vector<Engine::OriginStat>>>();
  auto f = p->get_future();
  post([p](Engine* e, EventBatch&) { p->set_value(e != nullptr ? e->origin_stats() : std::vector<Engine::OriginStat>{}); });
  return f.get();
}

void EngineThread::release_and_join() {
  post([this](Engine* e, EventBatch&) {
    if (e == nullptr) return;  // already gone: the loop is ending by itself
    released_ = true;
    e->release([this] { engine_gone(); });
  });
  join();
}

void EngineThread::join() {
  if (thread_.joinable()) thread_.join();
}

// --- EngineSink, on the I/O thread ---

void EngineThread::on_complete(RequestId id, const ResponseMeta& m, std::string&& head, std::string&& body) {
  cur_.complete(id, m, std::move(head), std::move(body));
}
void EngineThread::on_head(RequestId id, const ResponseMeta& m, std::string&& head) { cur_.head(id, m, head); }
void EngineThread::on_data(RequestId id, const char* p, size_t n) { cur_.data(id, p, n); }
void EngineThread::on_trailers(RequestId id, std::string&& fields) { cur_.trailers(id, fields); }
void EngineThread::on_end(RequestId id) { cur_.end(id); }
void EngineThread::on_error(RequestId id, Error e, const char* detail, int sys_error) {
  cur_.error(id, e, detail, sys_error);
}
void EngineThread::on_drain(RequestId id) { cur_.drain(id); }
void EngineThread::on_timings(RequestId id, const RequestTimings& t) { cur_.timings(id, t); }
void EngineThread::on_tls_info(uint32_t id, const tls::SessionInfo& info) { cur_.tls_info(id, info); }
void EngineThread::on_tls_forget(uint32_t id) { cur_.tls_forget(id); }
void EngineThread::on_h2_info(uint32_t id, const std::string& fingerprint) { cur_.h2_info(id, fingerprint); }
void EngineThread::on_h2_forget(uint32_t id) { cur_.h2_forget(id); }
void EngineThread::on_dns_lookup(uint64_t lookup_id, const std::string& host, int family) {
  cur_.dns_lookup(lookup_id, host, family);
}
void EngineThread::on_dns_result(uint32_t query_id, Error e, const std::vector<dns::Address>& addrs,
                                 size_t rotate_from) {
  cur_.dns_result(query_id, e, addrs, rotate_from);
}

void EngineThread::on_closed() {
  Engine* e = engine_;
  final_stats_ = e->stats();
  delete e;  // every handle is closed; the engine does nothing after calling on_closed
  engine_gone();
}

void EngineThread::flush() {
  if (!cur_.idle()) hand_over();
}

}  // namespace uvf
