#include "client/engine_thread.h"

#include <condition_variable>
#include <future>
#include <mutex>

namespace uvf {

EngineThread::EngineThread(uint32_t index, uint32_t count, std::function<void()> wake)
    : wake_(std::move(wake)) {
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

void EngineThread::post_many(std::vector<Command>& cs) {
  if (cs.empty()) return;
  std::vector<Command> late;
  commands_.push_many(cs, [this] { uv_async_send(&async_); }, &late);
  for (auto& c : late) {
    EventBatch sink;
    c(nullptr, sink);
  }
  cs.clear();
}

bool EngineThread::take(EventBatch* out, bool* resume_due) {
  if (!mailbox_.take(out)) return false;
  // A stream the thread paused has its bytes in what was just taken (the pause is counted
  // before its batch is put): it may read again once the consumer has seen them.
  if (resume_due != nullptr) *resume_due = auto_paused_.load(std::memory_order_acquire) > 0;
  return true;
}

EngineThread::Command EngineThread::taken_command() {
  return [this](Engine* e, EventBatch&) { taken(e); };
}

void EngineThread::taken(Engine* e) {
  for (auto& kv : flows_) {
    Flow& f = kv.second;
    if (!f.auto_paused) continue;
    f.auto_paused = false;
    auto_paused_.fetch_sub(1, std::memory_order_acq_rel);
    if (!f.consumer_paused && e != nullptr) e->resume(kv.first);
  }
}

void EngineThread::forget_flow(RequestId id) {
  auto it = flows_.find(id);
  if (it == flows_.end()) return;
  if (it->second.auto_paused) auto_paused_.fetch_sub(1, std::memory_order_acq_rel);
  flows_.erase(it);
}

EngineThread::Command EngineThread::pause_command(RequestId id) {
  return [this, id](Engine* e, EventBatch&) {
    if (e == nullptr) return;
    auto it = flows_.find(id);
    if (it != flows_.end()) it->second.consumer_paused = true;
    e->pause(id);
  };
}

EngineThread::Command EngineThread::resume_command(RequestId id) {
  return [this, id](Engine* e, EventBatch&) {
    if (e == nullptr) return;
    auto it = flows_.find(id);
    if (it != flows_.end()) {
      it->second.consumer_paused = false;
      if (it->second.auto_paused) return;  // resumes when its bytes are taken
    }
    e->resume(id);
  };
}

EngineThread::Command EngineThread::abort_command(RequestId id) {
  return [this, id](Engine* e, EventBatch& out) {
    if (e == nullptr) return;
    forget_flow(id);
    forget_body(id);
    if (e->abort(id)) out.settle();
  };
}

EngineThread::Command EngineThread::body_write(RequestId id, std::string&& chunk, bool* more) {
  size_t n = chunk.size();
  {
    std::lock_guard<std::mutex> g(body_mu_);
    BodyFlow& f = bodies_[id];
    f.crossing += n;
    *more = !f.engine_full && f.crossing < kBodyHighWater;
    if (!*more) f.waiting = true;
  }
  auto c = std::make_shared<std::string>(std::move(chunk));
  return [this, id, c](Engine* e, EventBatch& out) {
    bool room = true;
    bool known = e != nullptr && e->has_request(id);
    if (known) {
      Error err;
      room = e->write_body(id, c->data(), c->size(), &err);
    }
    body_written(known ? e : nullptr, out, id, c->size(), room);
  };
}

void EngineThread::body_written(Engine* e, EventBatch& out, RequestId id, size_t n, bool room) {
  bool drain = false;
  {
    std::lock_guard<std::mutex> g(body_mu_);
    auto it = bodies_.find(id);
    if (it == bodies_.end()) return;
    if (e == nullptr) {
      // The request is gone (settled, or no engine): its events say so; nothing more to wait for.
      bodies_.erase(it);
      return;
    }
    BodyFlow& f = it->second;
    f.crossing -= n;
    f.engine_full = !room;
    if (f.waiting && room && f.crossing < kBodyHighWater) {
      f.waiting = false;
      drain = true;
    }
  }
  if (drain) out.drain(id);
}

void EngineThread::forget_body(RequestId id) {
  std::lock_guard<std::mutex> g(body_mu_);
  if (!bodies_.empty()) bodies_.erase(id);
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

std::vector<EngineStats> EngineThread::stats_together(const std::vector<EngineThread*>& threads) {
  struct Rendezvous {
    std::mutex mu;
    std::condition_variable cv;
    size_t n = 0, arrived = 0, done = 0;
    std::vector<EngineStats> out;
  };
  auto rv = std::make_shared<Rendezvous>();
  rv->n = threads.size();
  rv->out.resize(threads.size());
  for (size_t i = 0; i < threads.size(); ++i) {
    EngineThread* t = threads[i];
    // Runs on t's thread, or (t has ended) on this one with no engine: every command runs once.
    t->post([rv, i, t](Engine* e, EventBatch&) {
      std::unique_lock<std::mutex> l(rv->mu);
      if (e == nullptr) {
        // The engine is gone: its numbers are final and it holds nothing. No waiting (this may
        // run inside post(), on the caller's thread, before the other threads have been asked).
        rv->out[i] = t->final_stats_;
        ++rv->arrived;
        ++rv->done;
        rv->cv.notify_all();
        return;
      }
      if (++rv->arrived == rv->n) rv->cv.notify_all();
      rv->cv.wait(l, [&] { return rv->arrived == rv->n; });
      l.unlock();
      EngineStats s = e->stats();
      l.lock();
      rv->out[i] = s;
      if (++rv->done == rv->n) rv->cv.notify_all();
      rv->cv.wait(l, [&] { return rv->done == rv->n; });
    });
  }
  std::unique_lock<std::mutex> l(rv->mu);
  rv->cv.wait(l, [&] { return rv->done == rv->n; });
  return rv->out;
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
  forget_body(id);
  cur_.complete(id, m, std::move(head), std::move(body));
}
void EngineThread::on_head(RequestId id, const ResponseMeta& m, std::string&& head) { cur_.head(id, m, head); }
void EngineThread::on_data(RequestId id, const char* p, size_t n) {
  cur_.data(id, p, n);
  Flow& f = flows_[id];
  if (!f.auto_paused) {
    // Counted now, before the batch holding these bytes is put (flush): the take that gets
    // them sees the count and posts the resume.
    f.auto_paused = true;
    auto_paused_.fetch_add(1, std::memory_order_acq_rel);
    to_pause_.push_back(id);
  }
}
void EngineThread::on_trailers(RequestId id, std::string&& fields) { cur_.trailers(id, fields); }
void EngineThread::on_end(RequestId id) {
  forget_flow(id);
  forget_body(id);
  cur_.end(id);
}
void EngineThread::on_error(RequestId id, Error e, const char* detail, int sys_error) {
  forget_flow(id);
  forget_body(id);
  cur_.error(id, e, detail, sys_error);
}
void EngineThread::on_drain(RequestId id) {
  // The engine's queue went below its mark: the producer goes on if it waits and few enough
  // bytes are still crossing (else body_written() sends the drain when they arrive).
  {
    std::lock_guard<std::mutex> g(body_mu_);
    auto it = bodies_.find(id);
    if (it != bodies_.end()) {
      BodyFlow& f = it->second;
      f.engine_full = false;
      if (!f.waiting || f.crossing >= kBodyHighWater) return;
      f.waiting = false;
    }
  }
  cur_.drain(id);
}
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
  // Called at the end of the engine's turn, where a consumer's pause() is also safe.
  for (RequestId id : to_pause_) {
    auto it = flows_.find(id);
    if (it != flows_.end() && it->second.auto_paused && engine_ != nullptr) engine_->pause(id);
  }
  to_pause_.clear();
  if (!cur_.idle()) hand_over();
}

}  // namespace uvf
