#include "engine_wrap.h"

#include "net/memory_socket.h"
#include "tls_wrap.h"

#include <algorithm>
#include <cstring>

namespace uvf {

namespace {

// Submit flags (lib/native/wire.ts; test/unit/wire.test.ts checks they agree).
enum : uint32_t {
  kFlagStreamResponse = 1,
  kFlagStreamedBody = 2,
  kFlagHasBody = 4,
  kFlagTimings = 8,
};

// JS strings are UTF-16; HTTP heads are bytes. Code units above 0xFF cannot be sent and must not
// be truncated (U+010A would become LF): they make the value invalid.
bool to_latin1(napi_env env, napi_value v, std::string* out) {
  char16_t small[256];
  size_t len = 0;
  if (napi_get_value_string_utf16(env, v, small, 256, &len) != napi_ok) return false;
  const char16_t* src = small;
  std::u16string big;
  if (len >= 255) {
    if (napi_get_value_string_utf16(env, v, nullptr, 0, &len) != napi_ok) return false;
    big.resize(len + 1);
    if (napi_get_value_string_utf16(env, v, big.data(), len + 1, &len) != napi_ok) return false;
    src = big.data();
  }
  out->resize(len);
  bool ok = true;
  for (size_t i = 0; i < len; ++i) {
    char16_t c = src[i];
    if (c > 0xFF) ok = false;
    (*out)[i] = static_cast<char>(c & 0xFF);
  }
  if (!ok) out->clear();
  return ok;
}

// A request handed to an I/O thread: owns the bytes its RequestSpec views.
struct OwnedRequest {
  RequestSpec spec;
  std::string method, target;
  std::vector<std::string> headers;
  std::vector<std::string_view> views;
  void bind() {
    spec.method = method;
    spec.target = target;
    views.clear();
    views.reserve(headers.size());
    for (auto& h : headers) views.emplace_back(h);
    spec.headers = views.empty() ? nullptr : views.data();
  }
};

void add_stats(EngineStats* into, const EngineStats& s) {
  EngineStats& o = *into;
  o.requests_started += s.requests_started;
  o.requests_completed += s.requests_completed;
  o.requests_failed += s.requests_failed;
  o.connections_created += s.connections_created;
  o.connections_reused += s.connections_reused;
  o.connections_evicted += s.connections_evicted;
  o.retries += s.retries;
  o.fd_exhausted_waits += s.fd_exhausted_waits;
  o.bytes_in += s.bytes_in;
  o.bytes_out += s.bytes_out;
  o.tls_handshakes += s.tls_handshakes;
  o.tls_resumed += s.tls_resumed;
  o.tls_failures += s.tls_failures;
  o.in_flight += s.in_flight;
  o.queued += s.queued;
  o.open += s.open;
  o.idle += s.idle;
  o.connecting += s.connecting;
  o.h2_connections += s.h2_connections;
  o.streams += s.streams;
  o.raw_sockets += s.raw_sockets;
  o.raw_waiting += s.raw_waiting;
  dns::Stats& d = o.dns;
  d.lookups += s.dns.lookups;
  d.hits += s.dns.hits;
  d.stale_served += s.dns.stale_served;
  d.negative_hits += s.dns.negative_hits;
  d.misses += s.dns.misses;
  d.coalesced += s.dns.coalesced;
  d.static_answers += s.dns.static_answers;
  d.resolves += s.dns.resolves;
  d.errors += s.dns.errors;
  d.evictions += s.dns.evictions;
  d.in_flight += s.dns.in_flight;
  d.queued += s.dns.queued;
  d.entries = std::max(d.entries, s.dns.entries);  // ioThreads: every engine reports the one shared store
}

uint32_t opt_u32(const Napi::Object& o, const char* name, uint32_t def) {
  Napi::Value v = o.Get(name);
  return v.IsNumber() ? v.As<Napi::Number>().Uint32Value() : def;
}
double opt_num(const Napi::Object& o, const char* name, double def) {
  Napi::Value v = o.Get(name);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : def;
}

}  // namespace

Napi::Function EngineWrap::Init(Napi::Env env) {
  return DefineClass(env, "NativeEngine",
                     {
                         InstanceMethod<&EngineWrap::Submit>("submit"),
                         InstanceMethod<&EngineWrap::Abort>("abort"),
                         InstanceMethod<&EngineWrap::Pause>("pause"),
                         InstanceMethod<&EngineWrap::Resume>("resume"),
                         InstanceMethod<&EngineWrap::WriteBody>("writeBody"),
                         InstanceMethod<&EngineWrap::EndBody>("endBody"),
                         InstanceMethod<&EngineWrap::Close>("close"),
                         InstanceMethod<&EngineWrap::Destroy>("destroy"),
                         InstanceMethod<&EngineWrap::Stats>("stats"),
                         InstanceMethod<&EngineWrap::OriginStats>("originStats"),
                         InstanceMethod<&EngineWrap::LastError>("lastError"),
                         InstanceMethod<&EngineWrap::DnsAnswer>("dnsAnswer"),
                         InstanceMethod<&EngineWrap::DnsQuery>("dnsQuery"),
                         InstanceMethod<&EngineWrap::DnsClear>("dnsClear"),
                         InstanceMethod<&EngineWrap::RawConnect>("rawConnect"),
                         InstanceMethod<&EngineWrap::RawWrite>("rawWrite"),
                         InstanceMethod<&EngineWrap::RawEnd>("rawEnd"),
                         InstanceMethod<&EngineWrap::RawDestroy>("rawDestroy"),
                         InstanceMethod<&EngineWrap::RawPause>("rawPause"),
                         InstanceMethod<&EngineWrap::RawResume>("rawResume"),
                     });
}

// new NativeEngine(options, onEvents). Options are validated in JS; these are plain numbers.
EngineWrap::EngineWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EngineWrap>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction()) {
    Napi::TypeError::New(env, "NativeEngine(options, onEvents)").ThrowAsJavaScriptException();
    return;
  }
  Napi::Object o = info[0].As<Napi::Object>();
  EngineOptions eo;
  eo.pool.total = opt_u32(o, "connections", 256);
  eo.pool.per_key = opt_u32(o, "connectionsPerHost", 64);
  eo.keep_alive_timeout_ms = opt_u32(o, "keepAliveTimeout", 15'000);
  eo.timeouts.connect_ms = opt_u32(o, "connectTimeout", 10'000);
  eo.timeouts.tls_ms = opt_u32(o, "tlsTimeout", 10'000);
  eo.timeouts.headers_ms = opt_u32(o, "headersTimeout", 30'000);
  eo.timeouts.body_ms = opt_u32(o, "bodyTimeout", 30'000);
  eo.timeouts.total_ms = opt_u32(o, "totalTimeout", 0);
  eo.limits.max_header_size = opt_u32(o, "maxHeaderSize", 64 * 1024);
  eo.limits.max_header_count = opt_u32(o, "maxHeaderCount", 200);
  eo.limits.max_body_size = static_cast<uint64_t>(opt_num(o, "maxBodySize", 64.0 * 1024 * 1024));
  eo.limits.decompress = !o.Get("decompress").IsBoolean() || o.Get("decompress").As<Napi::Boolean>().Value();
  eo.limits.max_decompression_ratio = opt_num(o, "maxDecompressionRatio", 100.0);
  eo.no_delay = !o.Get("noDelay").IsBoolean() || o.Get("noDelay").As<Napi::Boolean>().Value();
  eo.tcp_keep_alive_ms = opt_u32(o, "tcpKeepAlive", 0);
  Napi::Value mr = o.Get("memoryResponse");  // benchmarks only (tools/bench-hooks.ts)
  if (mr.IsString() && mr.As<Napi::String>().Utf8Value().size() > 0) eo.socket_factory = memory_socket_factory(mr.As<Napi::String>().Utf8Value());
  Napi::Value la = o.Get("localAddress");
  if (la.IsString()) eo.local_address = la.As<Napi::String>().Utf8Value();
  Napi::Value ua = o.Get("userAgent");
  if (ua.IsString() && !to_latin1(env, ua, &eo.user_agent)) {
    Napi::Error e = Napi::Error::New(env, "userAgent must contain only Latin-1 characters");
    e.Set("code", Napi::String::New(env, error_code(Error::InvalidOption)));
    e.ThrowAsJavaScriptException();
    return;
  }

  Napi::Value hv = o.Get("http2");
  if (hv.IsObject()) {
    // Validated and normalised in JS (lib/session/options.ts): ids, numbers, 'masp' order.
    Napi::Object h = hv.As<Napi::Object>();
    Http2EngineOptions& h2 = eo.http2;
    h2.mode = static_cast<Http2EngineOptions::Mode>(std::min<uint32_t>(opt_u32(h, "mode", 1), 2));
    h2.max_streams = opt_u32(h, "maxStreams", h2.max_streams);
    h2.settings_timeout_ms = opt_u32(h, "settingsTimeout", h2.settings_timeout_ms);
    h2.ping_interval_ms = opt_u32(h, "pingInterval", 0);
    http2::SessionOptions& so = h2.session;
    Napi::Value sv = h.Get("settings");
    if (sv.IsArray()) {
      Napi::Array a = sv.As<Napi::Array>();
      so.settings.clear();
      for (uint32_t i = 0; i + 1 < a.Length(); i += 2) {
        so.settings.push_back({static_cast<uint16_t>(a.Get(i).As<Napi::Number>().Uint32Value()),
                               a.Get(i + 1).As<Napi::Number>().Uint32Value()});
      }
    }
    so.connection_window_increment = opt_u32(h, "connectionWindowIncrement", so.connection_window_increment);
    Napi::Value pv = h.Get("priorityFrames");  // flat: streamId, dependsOn, weight, exclusive, ...
    if (pv.IsArray()) {
      Napi::Array a = pv.As<Napi::Array>();
      for (uint32_t i = 0; i + 3 < a.Length(); i += 4) {
        http2::PrioritySpec ps;
        ps.stream_id = static_cast<int32_t>(a.Get(i).As<Napi::Number>().Uint32Value());
        ps.depends_on = static_cast<int32_t>(a.Get(i + 1).As<Napi::Number>().Uint32Value());
        ps.weight = static_cast<uint16_t>(a.Get(i + 2).As<Napi::Number>().Uint32Value());
        ps.exclusive = a.Get(i + 3).As<Napi::Number>().Uint32Value() != 0;
        so.priority_frames.push_back(ps);
      }
    }
    Napi::Value hp = h.Get("headersPriority");  // [dependsOn, weight, exclusive] or absent
    if (hp.IsArray() && hp.As<Napi::Array>().Length() == 3) {
      Napi::Array a = hp.As<Napi::Array>();
      so.headers_priority = true;
      so.headers_priority_spec.depends_on = static_cast<int32_t>(a.Get(0u).As<Napi::Number>().Uint32Value());
      so.headers_priority_spec.weight = static_cast<uint16_t>(a.Get(1u).As<Napi::Number>().Uint32Value());
      so.headers_priority_spec.exclusive = a.Get(2u).As<Napi::Number>().Uint32Value() != 0;
    }
    Napi::Value ho = h.Get("headerOrder");
    if (ho.IsArray()) {
      Napi::Array a = ho.As<Napi::Array>();
      for (uint32_t i = 0; i < a.Length(); ++i) h2.header_order.push_back(a.Get(i).As<Napi::String>().Utf8Value());
    }
    Napi::Value xh = h.Get("extraHeaders");
    if (xh.IsArray()) {
      Napi::Array a = xh.As<Napi::Array>();
      for (uint32_t i = 0; i < a.Length(); ++i) h2.extra_headers.push_back(a.Get(i).As<Napi::String>().Utf8Value());
    }
    Napi::Value po = h.Get("pseudoOrder");
    if (po.IsString()) {
      std::string s = po.As<Napi::String>().Utf8Value();
      if (s.size() == 4) std::copy(s.begin(), s.end(), so.pseudo_order.begin());
    }
  }
  // HPACK-decoded header lists are bounded like HTTP/1 heads.
  eo.http2.session.max_header_list_size = std::max<size_t>(eo.limits.max_header_size, 4096);
  {
    std::string why;
    if (http2::validate_options(eo.http2.session, &why) != Error::Ok) {
      Napi::Error e = Napi::Error::New(env, "h2: " + why);
      e.Set("code", Napi::String::New(env, error_code(Error::InvalidOption)));
      e.ThrowAsJavaScriptException();
      return;
    }
  }

  Napi::Value dv = o.Get("dns");
  if (dv.IsObject()) {
    // Validated in JS (lib/net/dns.ts); durations in ms, absent = the core's default.
    Napi::Object d = dv.As<Napi::Object>();
    dns::Options& c = eo.dns.cache;
    auto ms = [&](const char* name, uint64_t def) {
      double v = opt_num(d, name, -1);
      return v >= 0 ? static_cast<uint64_t>(v) : def;
    };
    c.ttl_ms = ms("ttl", c.ttl_ms);
    c.min_ttl_ms = ms("minTtl", c.min_ttl_ms);
    c.max_ttl_ms = ms("maxTtl", c.max_ttl_ms);
    c.negative_ttl_ms = ms("negativeTtl", c.negative_ttl_ms);
    c.stale_ttl_ms = ms("staleTtl", c.stale_ttl_ms);
    c.max_entries = static_cast<size_t>(ms("maxEntries", c.max_entries));
    c.max_in_flight = static_cast<size_t>(ms("maxInFlight", c.max_in_flight));
    eo.dns.family = static_cast<int>(opt_u32(d, "family", 0));
    eo.dns.happy_eyeballs_delay_ms = opt_u32(d, "happyEyeballsDelay", eo.dns.happy_eyeballs_delay_ms);
    eo.dns.external = d.Get("external").IsBoolean() && d.Get("external").As<Napi::Boolean>().Value();
    Napi::Value ov = d.Get("overrides");
    if (ov.IsArray()) {
      // [[key, [address, ...]], ...]
      Napi::Array arr = ov.As<Napi::Array>();
      for (uint32_t i = 0; i < arr.Length(); ++i) {
        Napi::Value ev = arr.Get(i);
        if (!ev.IsArray()) continue;
        Napi::Array pair = ev.As<Napi::Array>();
        Napi::Value k = pair.Get(0u), v = pair.Get(1u);
        if (!k.IsString() || !v.IsArray()) continue;
        std::vector<std::string> addrs;
        Napi::Array va = v.As<Napi::Array>();
        for (uint32_t j = 0; j < va.Length(); ++j) {
          Napi::Value a = va.Get(j);
          if (a.IsString()) addrs.push_back(a.As<Napi::String>().Utf8Value());
        }
        eo.dns.overrides.emplace_back(k.As<Napi::String>().Utf8Value(), std::move(addrs));
      }
    }
  }

  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
    Napi::Error::New(env, "no libuv loop for this environment").ThrowAsJavaScriptException();
    return;
  }
  opts_ = eo;
  Error err = Error::Ok;
  const char* detail = nullptr;
  uint32_t io_threads = std::min<uint32_t>(opt_u32(o, "ioThreads", 0), 64);  // validated in JS
  if (io_threads > 0) {
    // One `connections` budget and descriptor state for every thread's engine and for the
    // main-loop engine raw sockets use (made later, from opts_).
    eo.shared_budget = std::make_shared<SharedBudget>(eo.pool.total);
    // And one DNS cache: the answers in one store behind a mutex (lookups in flight stay per thread).
    eo.dns.shared_store = std::make_shared<dns::EntryStore>();
    opts_ = eo;
    // The engines run on their own threads; their batches wake this loop through wake_.
    handles_ = new MainHandles;
    wake_ = &handles_->wake;
    uv_async_init(loop, wake_, on_wake);
    wake_->data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(wake_));
    uv_check_init(loop, &handles_->check);
    handles_->check.data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(&handles_->check));
    uv_idle_init(loop, &handles_->idle);
    uv_unref(reinterpret_cast<uv_handle_t*>(&handles_->idle));
    staged_.resize(io_threads);
    uv_async_t* wake = wake_;
    // Id spaces (TLS / HTTP/2 info ids, DNS lookup ids): threads 0..N-1, and N for the
    // main-loop engine raw sockets use, so one JS dispatcher can tell them apart.
    batch_.set_id_space(io_threads, io_threads + 1);
    for (uint32_t i = 0; i < io_threads; ++i) {
      auto t = EngineThread::start(eo, i, io_threads + 1, [wake] { uv_async_send(wake); }, &err, &detail);
      if (!t) break;
      threads_.push_back(std::move(t));
    }
    if (threads_.size() != io_threads) {
      release_threads();
      close_main_handles();
      Napi::Error e = Napi::Error::New(env, detail != nullptr ? detail : error_message(err));
      e.Set("code", Napi::String::New(env, error_code(err)));
      e.ThrowAsJavaScriptException();
      return;
    }
    threads_open_ = threads_.size();
  } else {
    auto engine = Engine::create(loop, this, eo, &err, &detail);
    if (!engine) {
      Napi::Error e = Napi::Error::New(env, detail != nullptr ? detail : error_message(err));
      e.Set("code", Napi::String::New(env, error_code(err)));
      e.ThrowAsJavaScriptException();
      return;
    }
    engine_ = engine.release();
    main_closed_ = false;
  }
  napi_create_reference(env, info[1], 0, &callback_);
  async_context_ = std::make_unique<Napi::AsyncContext>(env, "uvfetch:engine");
  napi_add_async_cleanup_hook(env, on_env_teardown, this, &cleanup_hook_);
}

EngineWrap::~EngineWrap() {
  if (callback_ != nullptr) napi_delete_reference(env_, callback_);
  // Garbage-collected without close(): tear down natively, report nothing.
  release_threads();
  close_main_handles();
  if (engine_ != nullptr) {
    engine_->release();
    engine_ = nullptr;
  }
  batch_.clear();
  if (cleanup_hook_ != nullptr) {
    napi_remove_async_cleanup_hook(cleanup_hook_);
    cleanup_hook_ = nullptr;
  }
}

void EngineWrap::release_threads() {
  // Each thread destroys its engine silently and ends; join() waits for its last loop turn.
  flush_staged();
  for (auto& t : threads_) t->release_and_join();
  threads_.clear();
  threads_open_ = 0;
}

void EngineWrap::close_main_handles(std::function<void()> done) {
  if (handles_ == nullptr) return;
  MainHandles* h = handles_;
  handles_ = nullptr;
  wake_ = nullptr;
  h->done = std::move(done);
  auto closed = [](uv_handle_t* handle) {
    auto* m = static_cast<MainHandles*>(handle->data);
    if (--m->open > 0) return;
    auto d = std::move(m->done);
    delete m;
    if (d) d();
  };
  for (uv_handle_t* x : {reinterpret_cast<uv_handle_t*>(&h->wake), reinterpret_cast<uv_handle_t*>(&h->check),
                         reinterpret_cast<uv_handle_t*>(&h->idle)}) {
    x->data = h;
    uv_close(x, closed);
  }
}

void EngineWrap::stage(uint32_t t, EngineThread::Command c) {
  staged_[t].push_back(std::move(c));
  if (!staged_armed_ && handles_ != nullptr) {
    staged_armed_ = true;
    uv_check_start(&handles_->check, on_stage_check);
    uv_idle_start(&handles_->idle, [](uv_idle_t*) {});  // the loop must not block in poll first
  }
}

void EngineWrap::on_stage_check(uv_check_t* c) { static_cast<EngineWrap*>(c->data)->flush_staged(); }

void EngineWrap::flush_staged() {
  for (uint32_t t = 0; t < staged_.size() && t < threads_.size(); ++t) threads_[t]->post_many(staged_[t]);
  if (staged_armed_ && handles_ != nullptr) {
    uv_check_stop(&handles_->check);
    uv_idle_stop(&handles_->idle);
  }
  staged_armed_ = false;
}

// The environment is going away (worker exit, process teardown): close every socket and handle;
// Node keeps the loop running until we remove the hook.
void EngineWrap::on_env_teardown(napi_async_cleanup_hook_handle handle, void* arg) {
  auto* self = static_cast<EngineWrap*>(arg);
  self->cleanup_hook_ = nullptr;
  Engine* e = self->engine_;
  self->engine_ = nullptr;
  if (self->handles_ != nullptr) {
    // I/O threads: stopped and joined now; the hook goes once the JS thread's handles (and the
    // main-loop engine, if any) have closed.
    self->release_threads();
    struct Wait {
      napi_async_cleanup_hook_handle hook;
      int pending;
    };
    auto* w = new Wait{handle, e != nullptr ? 2 : 1};
    auto done = [w] {
      if (--w->pending > 0) return;
      napi_remove_async_cleanup_hook(w->hook);
      delete w;
    };
    self->close_main_handles(done);
    if (e != nullptr) e->release(done);
    return;
  }
  if (e == nullptr) {
    napi_remove_async_cleanup_hook(handle);
    return;
  }
  e->release([handle]() { napi_remove_async_cleanup_hook(handle); });
}

// ---------------------------------------------------------------------------------------------
// JS → native

// submit(id, host, port, tls, method, target, headers|null, body|null, flags, streamedLength,
//        overrides|null, proxy|null) → 0, or an error code index (details via lastError()).
Napi::Value EngineWrap::Submit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (threaded() ? close_requested_ : engine_ == nullptr) return Napi::Number::New(env, static_cast<double>(Error::SessionClosed));
  napi_env e = env;
  RequestSpec spec;
  spec.id = info[0].As<Napi::Number>().Uint32Value();
  std::string host, method, target;
  if (!to_latin1(e, info[1], &host)) {
    last_error_ = "host contains characters outside Latin-1";
    return Napi::Number::New(env, static_cast<double>(Error::InvalidUrl));
  }
  spec.origin.port = static_cast<uint16_t>(info[2].As<Napi::Number>().Uint32Value());
  if (info[3].IsObject()) {
    TlsContextWrap* tw = TlsContextWrap::From(e, info[3]);
    if (tw == nullptr || !tw->context()) {
      last_error_ = "tls must be a NativeTlsContext";
      return Napi::Number::New(env, static_cast<double>(Error::InvalidOption));
    }
    spec.origin.tls = true;
    spec.origin.tls_ctx = tw->context();
    spec.origin.tls_profile = tw->context()->id();
  }
  spec.origin.host = host;
  // Host header: bracket IPv6 literals; omit the scheme's default port.
  bool v6 = host.find(':') != std::string::npos;
  std::string& auth = spec.origin.authority;
  auth.reserve(host.size() + 8);
  if (v6) auth.push_back('[');
  auth.append(host);
  if (v6) auth.push_back(']');
  if (spec.origin.port != (spec.origin.tls ? 443 : 80)) {
    auth.push_back(':');
    auth.append(std::to_string(spec.origin.port));
  }
  if (!to_latin1(e, info[4], &method)) {
    last_error_ = "method contains characters outside Latin-1";
    return Napi::Number::New(env, static_cast<double>(Error::InvalidMethod));
  }
  if (!to_latin1(e, info[5], &target)) {
    last_error_ = "request target contains characters outside Latin-1";
    return Napi::Number::New(env, static_cast<double>(Error::InvalidUrl));
  }
  spec.method = method;
  spec.target = target;
  scratch_.clear();
  header_views_.clear();
  if (info[6].IsArray()) {
    Napi::Array arr = info[6].As<Napi::Array>();
    uint32_t n = arr.Length();
    scratch_.resize(n);
    for (uint32_t i = 0; i < n; ++i) {
      napi_value v;
      napi_get_element(e, arr, i, &v);
      if (!to_latin1(e, v, &scratch_[i])) {
        last_error_ = "header name or value contains characters outside Latin-1";
        return Napi::Number::New(env, static_cast<double>(Error::InvalidHeader));
      }
    }
    header_views_.reserve(n);
    for (auto& s : scratch_) header_views_.emplace_back(s);
    spec.headers = header_views_.data();
    spec.header_pairs = n / 2;
  }
  uint32_t flags = info[8].As<Napi::Number>().Uint32Value();
  if (flags & kFlagHasBody) {
    spec.has_body = true;
    Napi::Value b = info[7];
    if (b.IsString()) {
      spec.body = b.As<Napi::String>().Utf8Value();
    } else if (b.IsTypedArray()) {
      Napi::TypedArray ta = b.As<Napi::TypedArray>();
      Napi::ArrayBuffer ab = ta.ArrayBuffer();
      spec.body.assign(static_cast<const char*>(ab.Data()) + ta.ByteOffset(), ta.ByteLength());
    }
  }
  spec.streamed_body = (flags & kFlagStreamedBody) != 0;
  spec.stream_response = (flags & kFlagStreamResponse) != 0;
  spec.want_timings = (flags & kFlagTimings) != 0;
  spec.streamed_length = static_cast<int64_t>(info[9].As<Napi::Number>().Int64Value());
  spec.timeouts = opts_.timeouts;
  spec.limits = opts_.limits;
  if (info[10].IsTypedArray()) {
    // Float64Array [connect, headers, body, total, maxHeaderSize, maxHeaderCount, maxBodySize, tls,
    //               decompress (0/1), maxDecompressionRatio];
    // NaN = session default.
    Napi::Float64Array o = info[10].As<Napi::Float64Array>();
    auto pick = [&](size_t i, auto& field) {
      if (o.ElementLength() > i && o[i] == o[i]) field = static_cast<std::decay_t<decltype(field)>>(o[i]);
    };
    pick(0, spec.timeouts.connect_ms);
    pick(1, spec.timeouts.headers_ms);
    pick(2, spec.timeouts.body_ms);
    pick(3, spec.timeouts.total_ms);
    pick(4, spec.limits.max_header_size);
    pick(5, spec.limits.max_header_count);
    pick(6, spec.limits.max_body_size);
    pick(7, spec.timeouts.tls_ms);
    pick(8, spec.limits.decompress);
    pick(9, spec.limits.max_decompression_ratio);
  }
  if (info.Length() > 11 && info[11].IsArray()) {
    // [kind (1 HTTP, 2 SOCKS5), host, port, user, pass], validated in JS.
    Napi::Array px = info[11].As<Napi::Array>();
    auto& p = spec.origin.proxy;
    p.kind = static_cast<proxy::Kind>(px.Get(0u).As<Napi::Number>().Uint32Value());
    p.host = px.Get(1u).As<Napi::String>().Utf8Value();
    p.port = static_cast<uint16_t>(px.Get(2u).As<Napi::Number>().Uint32Value());
    p.user = px.Get(3u).As<Napi::String>().Utf8Value();
    p.pass = px.Get(4u).As<Napi::String>().Utf8Value();
    if (p.kind != proxy::Kind::Http && p.kind != proxy::Kind::Socks5) {
      last_error_ = "unknown proxy kind";
      return Napi::Number::New(env, static_cast<double>(Error::InvalidOption));
    }
  }
  const char* detail = nullptr;
  if (threaded()) {
    // Checked here, so a bad request fails at once as on the main loop; run on its origin's thread.
    Error err = Engine::validate(spec, opts_, &detail);
    if (err != Error::Ok) {
      last_error_ = detail != nullptr ? detail : error_message(err);
      return Napi::Number::New(env, static_cast<double>(err));
    }
    auto req = std::make_shared<OwnedRequest>();
    req->method = std::move(method);
    req->target = std::move(target);
    req->headers = std::move(scratch_);
    req->spec = std::move(spec);
    RequestId id = req->spec.id;
    uint32_t t = thread_index(req->spec.origin.key());
    if (threads_.size() > 1) owner_[id] = t;
    stage(t, [req](Engine* e, EventBatch& out) {
      RequestId rid = req->spec.id;
      if (e == nullptr) {
        out.error(rid, Error::SessionClosed, "session is closed", 0);
        return;
      }
      req->bind();
      const char* d = nullptr;
      Error er = e->submit(std::move(req->spec), &d);
      if (er != Error::Ok) out.error(rid, er, d, 0);
    });
    request_started();
    return Napi::Number::New(env, 0);
  }
  Error err = engine_->submit(std::move(spec), &detail);
  if (err != Error::Ok) {
    last_error_ = detail != nullptr ? detail : error_message(err);
    return Napi::Number::New(env, static_cast<double>(err));
  }
  request_started();
  return Napi::Number::New(env, 0);
}

int EngineWrap::owner_of(RequestId id) {
  if (threads_.size() == 1) return 0;
  auto it = owner_.find(id);
  return it == owner_.end() ? -1 : static_cast<int>(it->second);
}

void EngineWrap::forget_settled(const EventBatch& b) {
  const std::string& r = b.records();
  size_t off = 0;
  while (off + 24 <= r.size()) {
    uint32_t h[6];
    std::memcpy(h, r.data() + off, sizeof h);
    if (h[0] == kEvComplete || h[0] == kEvEnd || h[0] == kEvError) owner_.erase(h[1]);
    off += 24 + static_cast<size_t>(h[4]) + h[5];
  }
}

Napi::Value EngineWrap::Abort(const Napi::CallbackInfo& info) {
  RequestId id = info[0].As<Napi::Number>().Uint32Value();
  if (threaded()) {
    // Forgotten on its thread; counted as settled there if it was still running there.
    int t = owner_of(id);
    owner_.erase(id);
    if (t >= 0) stage(t, threads_[t]->abort_command(id));
    return Napi::Boolean::New(info.Env(), t >= 0);
  }
  bool found = engine_ != nullptr && engine_->abort(id);
  if (found) request_settled();
  return Napi::Boolean::New(info.Env(), found);
}

Napi::Value EngineWrap::Pause(const Napi::CallbackInfo& info) {
  RequestId id = info[0].As<Napi::Number>().Uint32Value();
  if (threaded()) {
    int t = owner_of(id);
    if (t >= 0) stage(t, threads_[t]->pause_command(id));
  } else if (engine_ != nullptr) {
    engine_->pause(id);
  }
  return info.Env().Undefined();
}

Napi::Value EngineWrap::Resume(const Napi::CallbackInfo& info) {
  RequestId id = info[0].As<Napi::Number>().Uint32Value();
  if (threaded()) {
    int t = owner_of(id);
    if (t >= 0) stage(t, threads_[t]->resume_command(id));
  } else if (engine_ != nullptr) {
    engine_->resume(id);
  }
  return info.Env().Undefined();
}

// writeBody(id, Uint8Array) → true (send more) | false (wait for the drain event).
// On an I/O thread every chunk waits for its drain: the thread drains as soon as its engine
// takes the chunk without reaching the high-water mark, else when the engine drains.
Napi::Value EngineWrap::WriteBody(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::TypedArray ta = info[1].As<Napi::TypedArray>();
  Napi::ArrayBuffer ab = ta.ArrayBuffer();
  RequestId id = info[0].As<Napi::Number>().Uint32Value();
  const char* p = static_cast<const char*>(ab.Data()) + ta.ByteOffset();
  if (threaded()) {
    int t = owner_of(id);
    if (t < 0) return Napi::Boolean::New(env, true);
    // Several chunks may be crossing at once, up to the native high-water mark (EngineThread::body_write).
    bool more = false;
    auto& th = threads_[static_cast<uint32_t>(t)];
    stage(static_cast<uint32_t>(t), th->body_write(id, std::string(p, ta.ByteLength()), &more));
    return Napi::Boolean::New(env, more);
  }
  if (engine_ == nullptr) return Napi::Boolean::New(env, true);
  Error err;
  bool more = engine_->write_body(id, p, ta.ByteLength(), &err);
  return Napi::Boolean::New(env, more);
}

Napi::Value EngineWrap::EndBody(const Napi::CallbackInfo& info) {
  RequestId id = info[0].As<Napi::Number>().Uint32Value();
  if (threaded()) {
    int t = owner_of(id);
    if (t >= 0) stage(t, [id](Engine* e, EventBatch&) {
        if (e != nullptr) e->end_body(id);
      });
  } else if (engine_ != nullptr) {
    engine_->end_body(id);
  }
  return info.Env().Undefined();
}

Napi::Value EngineWrap::Close(const Napi::CallbackInfo& info) {
  if (threaded()) {
    if (!close_requested_ && !closed_) {
      close_requested_ = true;
      closing_ = true;
      pin(true);  // until the closed event has been delivered
      for (uint32_t t = 0; t < threads_.size(); ++t) stage(t, [](Engine* e, EventBatch&) {
          if (e != nullptr) e->close();
        });
      if (engine_ != nullptr) engine_->close();
    }
    return info.Env().Undefined();
  }
  if (engine_ != nullptr) {
    closing_ = true;
    pin(true);  // until the closed event has been delivered
    engine_->close();
  }
  return info.Env().Undefined();
}

Napi::Value EngineWrap::Destroy(const Napi::CallbackInfo& info) {
  if (threaded()) {
    if (!destroy_requested_ && !closed_) {
      destroy_requested_ = close_requested_ = true;
      closing_ = true;
      pin(true);
      for (uint32_t t = 0; t < threads_.size(); ++t) stage(t, [](Engine* e, EventBatch&) {
          if (e != nullptr) e->destroy();
        });
      if (engine_ != nullptr) engine_->destroy();
    }
    return info.Env().Undefined();
  }
  if (engine_ != nullptr) {
    closing_ = true;
    pin(true);
    engine_->destroy();
  }
  return info.Env().Undefined();
}

// dnsAnswer(lookupId, addresses: string[] | null, ttlMs (-1: none), errorIndex): the answer to a
// DNS lookup event. Unparsable addresses are skipped; no address left is ERR_DNS_NOT_FOUND.
Napi::Value EngineWrap::DnsAnswer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if ((engine_ == nullptr && !threaded()) || info.Length() < 4 || !info[0].IsNumber()) return env.Undefined();
  double idv = info[0].As<Napi::Number>().DoubleValue();
  if (!(idv >= 1)) return env.Undefined();
  dns::Answer a;
  uint32_t ei = info[3].IsNumber() ? info[3].As<Napi::Number>().Uint32Value() : 0;
  Error e = ei < static_cast<uint32_t>(Error::Count_) ? static_cast<Error>(ei) : Error::DnsFailed;
  if (e != Error::Ok && e != Error::DnsNotFound && e != Error::DnsTemporary) e = Error::DnsFailed;
  a.error = e;
  if (e == Error::Ok && info[1].IsArray()) {
    Napi::Array arr = info[1].As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      Napi::Value v = arr.Get(i);
      dns::Address addr;
      if (v.IsString() && dns::parse_ip_literal(v.As<Napi::String>().Utf8Value(), &addr)) a.addrs.push_back(addr);
    }
  }
  double ttl = info[2].IsNumber() ? info[2].As<Napi::Number>().DoubleValue() : -1;
  a.ttl_ms = ttl >= 0 ? static_cast<int64_t>(ttl) : -1;
  if (threaded()) {
    // The lookup id names its thread (EventBatch::set_id_space).
    auto n = static_cast<uint32_t>(threads_.size());
    auto mapped = static_cast<uint64_t>(idv);
    uint64_t lookup = EventBatch::lookup_original(mapped, n + 1);
    uint32_t which = EventBatch::lookup_engine(mapped, n + 1);
    if (which == n) {  // the main-loop engine's (a raw socket's)
      if (engine_ != nullptr) engine_->dns_answer(lookup, a);
      return env.Undefined();
    }
    auto answer = std::make_shared<dns::Answer>(std::move(a));
    stage(which, [lookup, answer](Engine* e, EventBatch&) {
      if (e != nullptr) e->dns_answer(lookup, *answer);
    });
    return env.Undefined();
  }
  engine_->dns_answer(static_cast<uint64_t>(idv), a);
  return env.Undefined();
}

// dnsQuery(queryId, host, family): resolves through the cache; answered by a DNS result event.
Napi::Value EngineWrap::DnsQuery(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (threaded() ? close_requested_ : engine_ == nullptr) return Napi::Boolean::New(env, false);
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  std::string host = info[1].As<Napi::String>().Utf8Value();
  int family = static_cast<int>(info[2].As<Napi::Number>().Uint32Value());
  request_started();  // the answer event settles it
  if (threaded()) {
    stage(thread_index(host), [id, host, family](Engine* e, EventBatch& out) {
      if (e != nullptr) {
        e->dns_query(id, host, family);
      } else {
        out.dns_result(id, Error::SessionClosed, {}, 0);
      }
    });
    return Napi::Boolean::New(env, true);
  }
  engine_->dns_query(id, host, family);
  return Napi::Boolean::New(env, true);
}

// dnsClear(host?): drops cached answers of one host (every family) or of all.
Napi::Value EngineWrap::DnsClear(const Napi::CallbackInfo& info) {
  std::string host = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : std::string();
  // The shared answers go at once (a lookup after this call finds none, on any thread); each
  // thread's staged clear then detaches its own lookups in flight.
  if (opts_.dns.shared_store != nullptr) opts_.dns.shared_store->clear(host);
  for (uint32_t t = 0; t < threads_.size(); ++t) stage(t, [host](Engine* e, EventBatch&) {
      if (e != nullptr) e->dns().clear(host);
    });
  if (engine_ != nullptr) engine_->dns().clear(host);
  return info.Env().Undefined();
}

// rawConnect(id, host, port, tls: NativeTlsContext|null, options) → 0, or an error code index
// (details via lastError()). options: { servername, localAddress, connectTimeout, tlsTimeout,
// noDelay, keepAlive }, validated in JS (lib/raw/raw-socket.ts). Outcome: open or error, then closed.
Napi::Value EngineWrap::RawConnect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (threaded() && !ensure_main_engine()) return Napi::Number::New(env, static_cast<double>(Error::SessionClosed));
  if (engine_ == nullptr) return Napi::Number::New(env, static_cast<double>(Error::SessionClosed));
  if (info.Length() < 5 || !info[0].IsNumber() || !info[1].IsString() || !info[2].IsNumber() || !info[4].IsObject()) {
    last_error_ = "rawConnect(id, host, port, tls, options)";
    return Napi::Number::New(env, static_cast<double>(Error::Internal));
  }
  RawId id = info[0].As<Napi::Number>().Uint32Value();
  RawOptions ro;
  ro.host = info[1].As<Napi::String>().Utf8Value();
  uint32_t port = info[2].As<Napi::Number>().Uint32Value();
  ro.port = port <= 65535 ? static_cast<uint16_t>(port) : 0;
  if (info[3].IsObject()) {
    TlsContextWrap* tw = TlsContextWrap::From(env, info[3]);
    if (tw == nullptr || !tw->context()) {
      last_error_ = "tls must be a NativeTlsContext";
      return Napi::Number::New(env, static_cast<double>(Error::InvalidOption));
    }
    ro.tls_ctx = tw->context();
  }
  Napi::Object o = info[4].As<Napi::Object>();
  Napi::Value sn = o.Get("servername");
  if (sn.IsString()) ro.servername = sn.As<Napi::String>().Utf8Value();
  Napi::Value la = o.Get("localAddress");
  if (la.IsString()) ro.local_address = la.As<Napi::String>().Utf8Value();
  ro.connect_timeout_ms = opt_u32(o, "connectTimeout", ro.connect_timeout_ms);
  ro.tls_timeout_ms = opt_u32(o, "tlsTimeout", ro.tls_timeout_ms);
  ro.no_delay = !o.Get("noDelay").IsBoolean() || o.Get("noDelay").As<Napi::Boolean>().Value();
  ro.keep_alive_ms = opt_u32(o, "keepAlive", 0);
  const char* detail = nullptr;
  Error err = engine_->raw_open(id, std::move(ro), &detail);
  if (err != Error::Ok) {
    last_error_ = detail != nullptr ? detail : error_message(err);
    return Napi::Number::New(env, static_cast<double>(err));
  }
  request_started();  // settled by the closed event
  return Napi::Number::New(env, 0);
}

// rawWrite(id, Uint8Array) → bytes queued natively after this write (0: all in the kernel), or -1.
Napi::Value EngineWrap::RawWrite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (engine_ == nullptr || info.Length() < 2 || !info[1].IsTypedArray()) return Napi::Number::New(env, -1);
  Napi::TypedArray ta = info[1].As<Napi::TypedArray>();
  Napi::ArrayBuffer ab = ta.ArrayBuffer();
  int64_t q = engine_->raw_write(info[0].As<Napi::Number>().Uint32Value(),
                                 static_cast<const char*>(ab.Data()) + ta.ByteOffset(), ta.ByteLength());
  return Napi::Number::New(env, static_cast<double>(q));
}

Napi::Value EngineWrap::RawEnd(const Napi::CallbackInfo& info) {
  if (engine_ != nullptr) engine_->raw_end(info[0].As<Napi::Number>().Uint32Value());
  return info.Env().Undefined();
}

// rawDestroy(id, abortive): closes now (abortive: RST); only the closed event follows.
Napi::Value EngineWrap::RawDestroy(const Napi::CallbackInfo& info) {
  if (engine_ != nullptr) {
    bool abortive = info.Length() > 1 && info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value();
    engine_->raw_destroy(info[0].As<Napi::Number>().Uint32Value(), abortive);
  }
  return info.Env().Undefined();
}

Napi::Value EngineWrap::RawPause(const Napi::CallbackInfo& info) {
  if (engine_ != nullptr) engine_->raw_pause(info[0].As<Napi::Number>().Uint32Value());
  return info.Env().Undefined();
}

Napi::Value EngineWrap::RawResume(const Napi::CallbackInfo& info) {
  if (engine_ != nullptr) engine_->raw_resume(info[0].As<Napi::Number>().Uint32Value());
  return info.Env().Undefined();
}

Napi::Value EngineWrap::LastError(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), last_error_);
}

Napi::Value EngineWrap::OriginStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array arr = Napi::Array::New(env);
  std::vector<Engine::OriginStat> all;
  std::vector<uint32_t> thread_of;  // ioThreads: the I/O thread each origin runs on
  flush_staged();  // the snapshot includes what this turn already asked for
  for (uint32_t t = 0; t < threads_.size(); ++t) {
    auto v = threads_[t]->origin_stats();
    all.insert(all.end(), v.begin(), v.end());
    thread_of.resize(all.size(), t);
  }
  if (engine_ != nullptr) {
    auto v = engine_->origin_stats();
    all.insert(all.end(), v.begin(), v.end());
  }
  uint32_t i = 0;
  for (const auto& o : all) {
    Napi::Object x = Napi::Object::New(env);
    x.Set("origin", o.origin);
    x.Set("open", static_cast<double>(o.open));
    x.Set("idle", static_cast<double>(o.idle));
    x.Set("queued", static_cast<double>(o.queued));
    x.Set("streams", static_cast<double>(o.streams));
    if (threads_.size() > 1 && i < thread_of.size()) x.Set("thread", static_cast<double>(thread_of[i]));
    arr.Set(i++, x);
  }
  return arr;
}

Napi::Value EngineWrap::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  EngineStats s = engine_ != nullptr ? engine_->stats() : final_stats_;
  flush_staged();  // the snapshot includes what this turn already asked for
  // One snapshot of every I/O thread at the same instant (this engine, on this thread, holds still).
  std::vector<EngineThread*> ts;
  for (auto& t : threads_) ts.push_back(t.get());
  if (!ts.empty()) {
    for (const EngineStats& ts_stats : EngineThread::stats_together(ts)) add_stats(&s, ts_stats);
  }
  o.Set("started", static_cast<double>(s.requests_started));
  o.Set("completed", static_cast<double>(s.requests_completed));
  o.Set("failed", static_cast<double>(s.requests_failed));
  o.Set("inFlight", static_cast<double>(s.in_flight));
  o.Set("queued", static_cast<double>(s.queued));
  o.Set("open", static_cast<double>(s.open));
  o.Set("idle", static_cast<double>(s.idle));
  o.Set("connecting", static_cast<double>(s.connecting));
  o.Set("created", static_cast<double>(s.connections_created));
  o.Set("reused", static_cast<double>(s.connections_reused));
  o.Set("evicted", static_cast<double>(s.connections_evicted));
  o.Set("retries", static_cast<double>(s.retries));
  o.Set("fdExhaustedWaits", static_cast<double>(s.fd_exhausted_waits));
  o.Set("bytesIn", static_cast<double>(s.bytes_in));
  o.Set("bytesOut", static_cast<double>(s.bytes_out));
  o.Set("tlsHandshakes", static_cast<double>(s.tls_handshakes));
  o.Set("tlsResumed", static_cast<double>(s.tls_resumed));
  o.Set("tlsFailures", static_cast<double>(s.tls_failures));
  o.Set("h2Connections", static_cast<double>(s.h2_connections));
  o.Set("streams", static_cast<double>(s.streams));
  o.Set("rawSockets", static_cast<double>(s.raw_sockets));
  o.Set("rawWaiting", static_cast<double>(s.raw_waiting));
  Napi::Object d = Napi::Object::New(env);
  d.Set("queries", static_cast<double>(s.dns.lookups));
  d.Set("hits", static_cast<double>(s.dns.hits));
  d.Set("staleHits", static_cast<double>(s.dns.stale_served));
  d.Set("negativeHits", static_cast<double>(s.dns.negative_hits));
  d.Set("misses", static_cast<double>(s.dns.misses));
  d.Set("coalesced", static_cast<double>(s.dns.coalesced));
  d.Set("static", static_cast<double>(s.dns.static_answers));
  d.Set("lookups", static_cast<double>(s.dns.resolves));
  d.Set("errors", static_cast<double>(s.dns.errors));
  d.Set("evictions", static_cast<double>(s.dns.evictions));
  d.Set("inFlight", static_cast<double>(s.dns.in_flight));
  d.Set("queued", static_cast<double>(s.dns.queued));
  d.Set("entries", static_cast<double>(s.dns.entries));
  o.Set("dns", d);
  return o;
}

// ---------------------------------------------------------------------------------------------
// native → JS: one batch per loop turn

// Pending requests (or a pending close) keep the JS object and its callback alive. Plain N-API
// calls: these run from libuv callbacks, where a failing node-addon-api call would abort.
void EngineWrap::pin(bool on) {
  if (on == pinned_) return;
  pinned_ = on;
  uint32_t rc;
  // I/O threads: nothing on this loop holds it alive while their requests run, but this handle.
  if (wake_ != nullptr) {
    if (on) {
      uv_ref(reinterpret_cast<uv_handle_t*>(wake_));
    } else {
      uv_unref(reinterpret_cast<uv_handle_t*>(wake_));
    }
  }
  if (on) {
    napi_reference_ref(env_, self_ref(), &rc);
    napi_reference_ref(env_, callback_, &rc);
  } else {
    napi_reference_unref(env_, self_ref(), &rc);
    napi_reference_unref(env_, callback_, &rc);
  }
}

void EngineWrap::request_started() {
  ++in_flight_;
  pin(true);
}

void EngineWrap::request_settled() {
  if (in_flight_ > 0) --in_flight_;
  if (in_flight_ == 0 && !closing_) pin(false);
}

void EngineWrap::on_complete(RequestId id, const ResponseMeta& m, std::string&& head, std::string&& body) {
  request_settled();
  batch_.complete(id, m, std::move(head), std::move(body));
}
void EngineWrap::on_head(RequestId id, const ResponseMeta& m, std::string&& head) { batch_.head(id, m, head); }
void EngineWrap::on_data(RequestId id, const char* p, size_t n) { batch_.data(id, p, n); }
void EngineWrap::on_trailers(RequestId id, std::string&& fields) { batch_.trailers(id, fields); }
void EngineWrap::on_end(RequestId id) {
  request_settled();
  batch_.end(id);
}
void EngineWrap::on_error(RequestId id, Error e, const char* detail, int sys_error) {
  request_settled();
  batch_.error(id, e, detail, sys_error);
}
void EngineWrap::on_drain(RequestId id) { batch_.drain(id); }
void EngineWrap::on_timings(RequestId id, const RequestTimings& t) { batch_.timings(id, t); }
void EngineWrap::on_tls_info(uint32_t id, const tls::SessionInfo& i) { batch_.tls_info(id, i); }
void EngineWrap::on_tls_forget(uint32_t id) { batch_.tls_forget(id); }
void EngineWrap::on_h2_info(uint32_t id, const std::string& fingerprint) { batch_.h2_info(id, fingerprint); }
void EngineWrap::on_h2_forget(uint32_t id) { batch_.h2_forget(id); }
void EngineWrap::on_dns_lookup(uint64_t lookup_id, const std::string& host, int family) {
  batch_.dns_lookup(lookup_id, host, family);
}
void EngineWrap::on_dns_result(uint32_t query_id, Error e, const std::vector<dns::Address>& addrs,
                               size_t rotate_from) {
  request_settled();
  batch_.dns_result(query_id, e, addrs, rotate_from);
}
void EngineWrap::on_raw_open(RawId id, const RawOpenInfo& i) { batch_.raw_open(id, i); }
void EngineWrap::on_raw_data(RawId id, const char* p, size_t n) { batch_.raw_data(id, p, n); }
void EngineWrap::on_raw_block(RawId id, char* block, size_t n) { batch_.raw_block(id, block, n); }
void EngineWrap::on_raw_end(RawId id) { batch_.raw_end(id); }
void EngineWrap::on_raw_error(RawId id, Error e, const char* detail, int sys_error) {
  batch_.raw_error(id, e, detail, sys_error);
}
void EngineWrap::on_raw_drain(RawId id) { batch_.raw_drain(id); }
void EngineWrap::on_raw_finished(RawId id) { batch_.raw_finished(id); }
void EngineWrap::on_raw_closed(RawId id) {
  request_settled();
  batch_.raw_closed(id);
}

void EngineWrap::on_closed() {
  Engine* e = engine_;
  if (threaded()) {
    // The main-loop engine (raw sockets) closed; the session closes when the threads have too.
    final_stats_ = e->stats();
    engine_ = nullptr;
    main_closed_ = true;
    delete e;
    maybe_all_closed();
    return;
  }
  closed_ = true;
  final_stats_ = e->stats();
  engine_ = nullptr;
  batch_.closed_record();
  deliver(true);
  closing_ = false;
  in_flight_ = 0;
  pin(false);
  if (cleanup_hook_ != nullptr) {
    napi_remove_async_cleanup_hook(cleanup_hook_);
    cleanup_hook_ = nullptr;
  }
  delete e;  // every handle is closed; the engine does nothing after calling on_closed
}

void EngineWrap::flush() { deliver(false); }

// --- I/O threads ---

void EngineWrap::on_wake(uv_async_t* a) { static_cast<EngineWrap*>(a->data)->take_thread_batches(); }

void EngineWrap::take_thread_batches() {
  EventBatch got;
  std::vector<uint32_t> resume;
  for (uint32_t i = 0; i < threads_.size(); ++i) {
    auto& t = threads_[i];
    EventBatch b;
    bool resume_due = false;
    if (!t->take(&b, &resume_due)) continue;
    if (resume_due) resume.push_back(i);
    if (b.closed()) {
      t->join();  // its loop has ended: returns at once
      if (threads_open_ > 0) --threads_open_;
    }
    if (threads_.size() > 1) forget_settled(b);
    got.append(std::move(b));
  }
  size_t n = got.settled();
  in_flight_ -= std::min(n, in_flight_);
  batch_.append(std::move(got));  // after this loop turn's main-loop records, if any
  if (in_flight_ == 0 && !closing_) pin(false);
  deliver(false);
  // Streams the threads paused for this batch read on, unless JS paused them meanwhile (its
  // pause commands were staged during deliver(), so they go first).
  for (uint32_t i : resume) stage(i, threads_[i]->taken_command());
  maybe_all_closed();
}

void EngineWrap::maybe_all_closed() {
  if (closed_ || !close_requested_ || threads_open_ > 0 || !main_closed_) return;
  closed_ = true;
  owner_.clear();
  batch_.closed_record();
  deliver(true);
  closing_ = false;
  in_flight_ = 0;
  pin(false);
  close_main_handles();
  if (cleanup_hook_ != nullptr) {
    napi_remove_async_cleanup_hook(cleanup_hook_);
    cleanup_hook_ = nullptr;
  }
}

bool EngineWrap::ensure_main_engine() {
  if (engine_ != nullptr) return true;
  if (close_requested_ || closed_) return false;
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env_, &loop) != napi_ok || loop == nullptr) return false;
  Error err;
  const char* detail = nullptr;
  auto e = Engine::create(loop, this, opts_, &err, &detail);
  if (!e) return false;
  engine_ = e.release();
  main_closed_ = false;
  return true;
}

void EngineWrap::deliver(bool closed) {
  if (batch_.empty()) {
    batch_.clear();  // settlements without records (thread batches) are counted already
    return;
  }
  // Plain N-API calls with their statuses checked: while a worker is being terminated JS cannot
  // run and these calls fail; that must drop the batch quietly, never abort the process.
  napi_env env = env_;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) {
    drop_batch();
    return;
  }
  napi_value batch = nullptr, bigs = nullptr, fn = nullptr, recv = nullptr, result = nullptr;
  void* copy_data = nullptr;
  const std::string& records = batch_.records();
  bool ok = napi_create_buffer_copy(env, records.size(), records.data(), &copy_data, &batch) == napi_ok;
  std::vector<EventBatch::Big>& big_list = batch_.bigs();
  if (ok && !big_list.empty()) {
    ok = napi_create_array_with_length(env, big_list.size(), &bigs) == napi_ok;
    for (size_t i = 0; ok && i < big_list.size(); ++i) {
      EventBatch::Big& big = big_list[i];
      napi_value buf;
      if (big.str != nullptr) {
        ok = napi_create_external_buffer(
                 env, big.size, big.str->data(),
                 [](napi_env, void*, void* hint) { delete static_cast<std::string*>(hint); }, big.str, &buf) == napi_ok;
      } else {
        ok = napi_create_external_buffer(
                 env, big.size, big.block, [](napi_env, void* data, void*) { Engine::free_read_block(static_cast<char*>(data)); },
                 nullptr, &buf) == napi_ok;
      }
      if (ok) {
        big = EventBatch::Big{};  // owned by the Buffer now
        ok = napi_set_element(env, bigs, static_cast<uint32_t>(i), buf) == napi_ok;
      }
    }
  } else if (ok) {
    ok = napi_get_undefined(env, &bigs) == napi_ok;
  }
  drop_batch();
  // A weak callback that is gone means nobody can receive the batch any more.
  if (ok) ok = napi_get_reference_value(env, callback_, &fn) == napi_ok && fn != nullptr;
  if (ok) ok = napi_get_reference_value(env, self_ref(), &recv) == napi_ok;
  if (ok) {
    napi_value args[2] = {batch, bigs};
    napi_status st = napi_make_callback(env, *async_context_, recv != nullptr ? recv : fn, fn, 2, args, &result);
    if (st != napi_ok) {
      // The JS dispatcher catches user errors itself; anything escaping is a bug worth surfacing
      // as an uncaught exception rather than swallowing (unless JS cannot run at all any more).
      bool pending = false;
      if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
        napi_value ex;
        if (napi_get_and_clear_last_exception(env, &ex) == napi_ok && !closed) napi_fatal_exception(env, ex);
      }
    }
  }
  napi_close_handle_scope(env, scope);
}

void EngineWrap::drop_batch() { batch_.clear(); }

}  // namespace uvf
