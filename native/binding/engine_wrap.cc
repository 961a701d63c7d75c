#include "engine_wrap.h"

#include "tls_wrap.h"

#include <cstring>

namespace uvf {

namespace {

// Record types of the batch delivered to JS (lib/native/wire.ts; test/unit/wire.test.ts checks they agree).
enum : uint32_t {
  kEvComplete = 1,
  kEvHead = 2,
  kEvData = 3,
  kEvEnd = 4,
  kEvError = 5,
  kEvDrain = 6,
  kEvClosed = 7,
  kEvTimings = 8,
  kEvTlsInfo = 9,    // id = TLS info id; payload = NUL-separated fields (lib/tls/info.ts)
  kEvTlsForget = 10, // id = TLS info id: its connection closed
  kEvTlsRef = 11,    // id = request id, a = TLS info id, b = HTTP/2 info id; precedes that request's Complete/Head
  kEvDnsLookup = 12,  // id/a = lookup id (low/high 32 bits), b = family, p1 = host
  kEvDnsResult = 13, // id = query id, a = error index, p1 = addresses, comma-separated
  kEvH2Info = 14,    // id = HTTP/2 info id; p1 = the connection's Akamai fingerprint
  kEvH2Forget = 15,  // id = HTTP/2 info id: its connection closed
  kEvTrailers = 16,  // id = request id, p1 = trailer fields ("name: value\r\n"); precedes Complete/End
  // Raw sockets (id = raw socket id):
  kEvRawOpen = 20,    // a = remote port | local port << 16, b = TLS info id, p1 = "remote\0local"
  kEvRawData = 21,    // b = big payload index (1-based) or 0 with the bytes in p2
  kEvRawEnd = 22,     // the peer's FIN / close_notify
  kEvRawError = 23,   // a = error index, b = system error, p1 = detail
  kEvRawDrain = 24,   // the native write queue is empty again
  kEvRawClosed = 25,  // the socket is closed; the id may be reused
  kEvRawFinished = 26,  // end(): every queued byte and the FIN went to the kernel
};

// Payloads above this size get their own external Buffer (no copy); smaller ones ride in the batch.
constexpr size_t kBigPayload = 4096;

// Submit flags (lib/native/wire.ts; test/unit/wire.test.ts checks they agree).
enum : uint32_t {
  kFlagStreamResponse = 1,
  kFlagStreamedBody = 2,
  kFlagHasBody = 4,
  kFlagTimings = 8,
};

// status (16 bits) | minor << 16 (4 bits) | major << 20 (4 bits) | reused << 24 | attempts << 25
uint32_t pack_meta(const ResponseMeta& m) {
  return static_cast<uint32_t>(m.status) | (static_cast<uint32_t>(m.version_minor & 0xf) << 16) |
         (static_cast<uint32_t>(m.version_major & 0xf) << 20) |
         (m.reused ? 1u << 24 : 0u) | (static_cast<uint32_t>(m.attempts) << 25);
}

void put_u32(std::string* s, uint32_t v) {
  char b[4];
  std::memcpy(b, &v, 4);  // little-endian on every platform Node supports
  s->append(b, 4);
}

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
  if (mr.IsString()) eo.memory_response = mr.As<Napi::String>().Utf8Value();
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
  Error err;
  const char* detail = nullptr;
  auto engine = Engine::create(loop, this, eo, &err, &detail);
  if (!engine) {
    Napi::Error e = Napi::Error::New(env, detail != nullptr ? detail : error_message(err));
    e.Set("code", Napi::String::New(env, error_code(err)));
    e.ThrowAsJavaScriptException();
    return;
  }
  engine_ = engine.release();
  napi_create_reference(env, info[1], 0, &callback_);
  async_context_ = std::make_unique<Napi::AsyncContext>(env, "uvfetch:engine");
  napi_add_async_cleanup_hook(env, on_env_teardown, this, &cleanup_hook_);
}

EngineWrap::~EngineWrap() {
  if (callback_ != nullptr) napi_delete_reference(env_, callback_);
  // Garbage-collected without close(): tear down natively, report nothing.
  if (engine_ != nullptr) {
    engine_->release();
    engine_ = nullptr;
  }
  for (auto& b : bigs_) b.free_now();
  if (cleanup_hook_ != nullptr) {
    napi_remove_async_cleanup_hook(cleanup_hook_);
    cleanup_hook_ = nullptr;
  }
}

// The environment is going away (worker exit, process teardown): close every socket and handle;
// Node keeps the loop running until we remove the hook.
void EngineWrap::on_env_teardown(napi_async_cleanup_hook_handle handle, void* arg) {
  auto* self = static_cast<EngineWrap*>(arg);
  self->cleanup_hook_ = nullptr;
  Engine* e = self->engine_;
  self->engine_ = nullptr;
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
  if (engine_ == nullptr) return Napi::Number::New(env, static_cast<double>(Error::SessionClosed));
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
  spec.timeouts = engine_->options().timeouts;
  spec.limits = engine_->options().limits;
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
  Error err = engine_->submit(std::move(spec), &detail);
  if (err != Error::Ok) {
    last_error_ = detail != nullptr ? detail : error_message(err);
    return Napi::Number::New(env, static_cast<double>(err));
  }
  request_started();
  return Napi::Number::New(env, 0);
}

Napi::Value EngineWrap::Abort(const Napi::CallbackInfo& info) {
  bool found = engine_ != nullptr && engine_->abort(info[0].As<Napi::Number>().Uint32Value());
  if (found) request_settled();
  return Napi::Boolean::New(info.Env(), found);
}

Napi::Value EngineWrap::Pause(const Napi::CallbackInfo& info) {
  if (engine_ != nullptr) engine_->pause(info[0].As<Napi::Number>().Uint32Value());
  return info.Env().Undefined();
}

Napi::Value EngineWrap::Resume(const Napi::CallbackInfo& info) {
  if (engine_ != nullptr) engine_->resume(info[0].As<Napi::Number>().Uint32Value());
  return info.Env().Undefined();
}

// writeBody(id, Uint8Array) → true (send more) | false (wait for the drain event).
Napi::Value EngineWrap::WriteBody(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (engine_ == nullptr) return Napi::Boolean::New(env, true);
  Napi::TypedArray ta = info[1].As<Napi::TypedArray>();
  Napi::ArrayBuffer ab = ta.ArrayBuffer();
  Error err;
  bool more = engine_->write_body(info[0].As<Napi::Number>().Uint32Value(),
                                  static_cast<const char*>(ab.Data()) + ta.ByteOffset(), ta.ByteLength(), &err);
  return Napi::Boolean::New(env, more);
}

Napi::Value EngineWrap::EndBody(const Napi::CallbackInfo& info) {
  if (engine_ != nullptr) engine_->end_body(info[0].As<Napi::Number>().Uint32Value());
  return info.Env().Undefined();
}

Napi::Value EngineWrap::Close(const Napi::CallbackInfo& info) {
  if (engine_ != nullptr) {
    closing_ = true;
    pin(true);  // until the closed event has been delivered
    engine_->close();
  }
  return info.Env().Undefined();
}

Napi::Value EngineWrap::Destroy(const Napi::CallbackInfo& info) {
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
  if (engine_ == nullptr || info.Length() < 4 || !info[0].IsNumber()) return env.Undefined();
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
  engine_->dns_answer(static_cast<uint64_t>(idv), a);
  return env.Undefined();
}

// dnsQuery(queryId, host, family): resolves through the cache; answered by a DNS result event.
Napi::Value EngineWrap::DnsQuery(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (engine_ == nullptr) return Napi::Boolean::New(env, false);
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  std::string host = info[1].As<Napi::String>().Utf8Value();
  int family = static_cast<int>(info[2].As<Napi::Number>().Uint32Value());
  request_started();  // the answer event settles it
  engine_->dns_query(id, host, family);
  return Napi::Boolean::New(env, true);
}

// dnsClear(host?): drops cached answers of one host (every family) or of all.
Napi::Value EngineWrap::DnsClear(const Napi::CallbackInfo& info) {
  if (engine_ != nullptr) {
    engine_->dns().clear(info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : std::string());
  }
  return info.Env().Undefined();
}

// rawConnect(id, host, port, tls: NativeTlsContext|null, options) → 0, or an error code index
// (details via lastError()). options: { servername, localAddress, connectTimeout, tlsTimeout,
// noDelay, keepAlive }, validated in JS (lib/raw/raw-socket.ts). Outcome: open or error, then closed.
Napi::Value EngineWrap::RawConnect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
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
  if (engine_ == nullptr) return arr;
  uint32_t i = 0;
  for (const auto& o : engine_->origin_stats()) {
    Napi::Object x = Napi::Object::New(env);
    x.Set("origin", o.origin);
    x.Set("open", static_cast<double>(o.open));
    x.Set("idle", static_cast<double>(o.idle));
    x.Set("queued", static_cast<double>(o.queued));
    x.Set("streams", static_cast<double>(o.streams));
    arr.Set(i++, x);
  }
  return arr;
}

Napi::Value EngineWrap::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  EngineStats s = engine_ != nullptr ? engine_->stats() : final_stats_;
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

void EngineWrap::push_record(uint32_t type, uint32_t id, uint32_t a, uint32_t b, const char* p1, size_t n1,
                             const char* p2, size_t n2) {
  if (batch_.capacity() == 0) batch_.reserve(16 * 1024);
  put_u32(&batch_, type);
  put_u32(&batch_, id);
  put_u32(&batch_, a);
  put_u32(&batch_, b);
  put_u32(&batch_, static_cast<uint32_t>(n1));
  put_u32(&batch_, static_cast<uint32_t>(n2));
  if (n1) batch_.append(p1, n1);
  if (n2) batch_.append(p2, n2);
}

uint32_t EngineWrap::push_big(std::string&& bytes) {
  Big b;
  b.str = new std::string(std::move(bytes));
  b.size = b.str->size();
  bigs_.push_back(b);
  return static_cast<uint32_t>(bigs_.size());  // 1-based: 0 means "inline"
}

uint32_t EngineWrap::push_block(char* block, size_t n) {
  Big b;
  b.block = block;
  b.size = n;
  bigs_.push_back(b);
  return static_cast<uint32_t>(bigs_.size());
}

void EngineWrap::Big::free_now() {
  delete str;
  Engine::free_read_block(block);
  str = nullptr;
  block = nullptr;
}

// Pending requests (or a pending close) keep the JS object and its callback alive. Plain N-API
// calls: these run from libuv callbacks, where a failing node-addon-api call would abort.
void EngineWrap::pin(bool on) {
  if (on == pinned_) return;
  pinned_ = on;
  uint32_t rc;
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
  if (m.tls_info != 0 || m.h2_info != 0) push_record(kEvTlsRef, id, m.tls_info, m.h2_info, nullptr, 0, nullptr, 0);
  if (body.size() > kBigPayload) {
    uint32_t big = push_big(std::move(body));
    push_record(kEvComplete, id, pack_meta(m), big, head.data(), head.size(), nullptr, 0);
  } else {
    push_record(kEvComplete, id, pack_meta(m), 0, head.data(), head.size(), body.data(), body.size());
  }
}

void EngineWrap::on_head(RequestId id, const ResponseMeta& m, std::string&& head) {
  if (m.tls_info != 0 || m.h2_info != 0) push_record(kEvTlsRef, id, m.tls_info, m.h2_info, nullptr, 0, nullptr, 0);
  push_record(kEvHead, id, pack_meta(m), 0, head.data(), head.size(), nullptr, 0);
}

void EngineWrap::on_data(RequestId id, const char* p, size_t n) {
  if (n > kBigPayload) {
    uint32_t big = push_big(std::string(p, n));
    push_record(kEvData, id, 0, big, nullptr, 0, nullptr, 0);
  } else {
    push_record(kEvData, id, 0, 0, nullptr, 0, p, n);
  }
}

void EngineWrap::on_trailers(RequestId id, std::string&& fields) {
  push_record(kEvTrailers, id, 0, 0, fields.data(), fields.size(), nullptr, 0);
}

void EngineWrap::on_end(RequestId id) {
  request_settled();
  push_record(kEvEnd, id, 0, 0, nullptr, 0, nullptr, 0);
}

void EngineWrap::on_error(RequestId id, Error e, const char* detail, int sys_error) {
  request_settled();
  size_t dl = detail != nullptr ? std::strlen(detail) : 0;
  push_record(kEvError, id, static_cast<uint32_t>(e), static_cast<uint32_t>(sys_error), detail, dl, nullptr, 0);
}

void EngineWrap::on_drain(RequestId id) { push_record(kEvDrain, id, 0, 0, nullptr, 0, nullptr, 0); }

void EngineWrap::on_timings(RequestId id, const RequestTimings& t) {
  uint32_t v[7] = {t.queued, t.dns, t.connect, t.ttfb, t.head, t.total, t.tls};
  push_record(kEvTimings, id, 0, 0, reinterpret_cast<const char*>(v), sizeof(v), nullptr, 0);
}

void EngineWrap::on_tls_info(uint32_t id, const tls::SessionInfo& i) {
  std::string p;
  p.reserve(512);
  for (const std::string* f :
       {&i.protocol, &i.cipher, &i.cipher_standard, &i.alpn, &i.group, &i.authorization_error, &i.servername, &i.ja3,
        &i.ja3_hash, &i.ja4, &i.subject, &i.issuer, &i.subject_alt_names, &i.valid_from, &i.valid_to,
        &i.fingerprint256, &i.serial, &i.origin}) {
    p.append(*f);
    p.push_back('\0');
  }
  uint32_t flags = (i.resumed ? 1u : 0u) | (i.authorized ? 2u : 0u);
  push_record(kEvTlsInfo, id, flags, i.handshake_us, p.data(), p.size(), nullptr, 0);
}

void EngineWrap::on_tls_forget(uint32_t id) { push_record(kEvTlsForget, id, 0, 0, nullptr, 0, nullptr, 0); }
void EngineWrap::on_h2_info(uint32_t id, const std::string& fingerprint) {
  push_record(kEvH2Info, id, 0, 0, fingerprint.data(), fingerprint.size(), nullptr, 0);
}
void EngineWrap::on_h2_forget(uint32_t id) { push_record(kEvH2Forget, id, 0, 0, nullptr, 0, nullptr, 0); }
void EngineWrap::on_dns_lookup(uint64_t lookup_id, const std::string& host, int family) {
  push_record(kEvDnsLookup, static_cast<uint32_t>(lookup_id), static_cast<uint32_t>(lookup_id >> 32),
              static_cast<uint32_t>(family), host.data(), host.size(), nullptr, 0);
}

void EngineWrap::on_dns_result(uint32_t query_id, Error e, const std::vector<dns::Address>& addrs,
                               size_t rotate_from) {
  request_settled();
  std::string list;
  const size_t n = addrs.size();
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) list.push_back(',');
    list.append(dns::address_to_string(addrs[(rotate_from + i) % n]));
  }
  push_record(kEvDnsResult, query_id, static_cast<uint32_t>(e), 0, list.data(), list.size(), nullptr, 0);
}

void EngineWrap::on_raw_open(RawId id, const RawOpenInfo& i) {
  std::string addrs = i.remote_address;
  addrs.push_back('\0');
  addrs.append(i.local_address);
  push_record(kEvRawOpen, id, static_cast<uint32_t>(i.remote_port) | (static_cast<uint32_t>(i.local_port) << 16),
              i.tls_info, addrs.data(), addrs.size(), nullptr, 0);
}

void EngineWrap::on_raw_data(RawId id, const char* p, size_t n) {
  if (n > kBigPayload) {
    uint32_t big = push_big(std::string(p, n));
    push_record(kEvRawData, id, 0, big, nullptr, 0, nullptr, 0);
  } else {
    push_record(kEvRawData, id, 0, 0, nullptr, 0, p, n);
  }
}

void EngineWrap::on_raw_block(RawId id, char* block, size_t n) {
  uint32_t big = push_block(block, n);
  push_record(kEvRawData, id, 0, big, nullptr, 0, nullptr, 0);
}

void EngineWrap::on_raw_end(RawId id) { push_record(kEvRawEnd, id, 0, 0, nullptr, 0, nullptr, 0); }

void EngineWrap::on_raw_error(RawId id, Error e, const char* detail, int sys_error) {
  size_t dl = detail != nullptr ? std::strlen(detail) : 0;
  push_record(kEvRawError, id, static_cast<uint32_t>(e), static_cast<uint32_t>(sys_error), detail, dl, nullptr, 0);
}

void EngineWrap::on_raw_drain(RawId id) { push_record(kEvRawDrain, id, 0, 0, nullptr, 0, nullptr, 0); }
void EngineWrap::on_raw_finished(RawId id) { push_record(kEvRawFinished, id, 0, 0, nullptr, 0, nullptr, 0); }

void EngineWrap::on_raw_closed(RawId id) {
  request_settled();
  push_record(kEvRawClosed, id, 0, 0, nullptr, 0, nullptr, 0);
}

void EngineWrap::on_closed() {
  closed_ = true;
  Engine* e = engine_;
  final_stats_ = e->stats();
  engine_ = nullptr;
  push_record(kEvClosed, 0, 0, 0, nullptr, 0, nullptr, 0);
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

void EngineWrap::deliver(bool closed) {
  if (batch_.empty()) return;
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
  bool ok = napi_create_buffer_copy(env, batch_.size(), batch_.data(), &copy_data, &batch) == napi_ok;
  batch_.clear();
  if (ok && !bigs_.empty()) {
    ok = napi_create_array_with_length(env, bigs_.size(), &bigs) == napi_ok;
    for (size_t i = 0; ok && i < bigs_.size(); ++i) {
      Big& big = bigs_[i];
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
        big = Big{};  // owned by the Buffer now
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

void EngineWrap::drop_batch() {
  batch_.clear();
  for (auto& b : bigs_) b.free_now();
  bigs_.clear();
}

}  // namespace uvf
