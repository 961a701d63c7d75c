// Module entry: context-aware (one instance per environment, worker_threads included); no static
// JS handles. Exports the engine class and the table of error codes.
#include <napi.h>

#include <cerrno>
#include <cmath>
#include <cstring>

#include "base/errors.h"
#include "base/fd_limits.h"
#include "engine_wrap.h"
#include "http1/content_decoder.h"
#include "http2/nghttp2_decl.h"
#include "tls_wrap.h"

namespace {

Napi::Value ThrowCode(Napi::Env env, uvf::Error code, const std::string& msg, int sys) {
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, uvf::error_code(code)));
  if (sys != 0) e.Set("errno", Napi::Number::New(env, sys));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

double limit_to_js(uint64_t v) { return v == UINT64_MAX ? INFINITY : static_cast<double>(v); }

// getFdLimit() → { soft, hard } (Infinity for "unlimited").
Napi::Value GetFdLimit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uvf::FdLimit l;
  int r = uvf::get_fd_limit(&l);
  if (r != 0) return ThrowCode(env, uvf::Error::FdLimit, std::string("getrlimit: ") + std::strerror(r), r);
  Napi::Object o = Napi::Object::New(env);
  o.Set("soft", limit_to_js(l.soft));
  o.Set("hard", limit_to_js(l.hard));
  return o;
}

// setFdSoftLimit(n) → the new soft limit. Raising above the hard limit needs privilege.
Napi::Value SetFdSoftLimit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double want = info[0].As<Napi::Number>().DoubleValue();
  int r = uvf::set_fd_soft_limit(static_cast<uint64_t>(want));
  if (r != 0) {
    return ThrowCode(env, uvf::Error::FdLimit,
                     std::string("setrlimit(RLIMIT_NOFILE, ") + std::to_string(static_cast<uint64_t>(want)) +
                         "): " + std::strerror(r) + (r == EPERM ? " (raising the hard limit needs privilege)" : ""),
                     r);
  }
  uvf::FdLimit l;
  uvf::get_fd_limit(&l);
  return Napi::Number::New(env, limit_to_js(l.soft));
}

Napi::Value OpenFds(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(uvf::count_open_fds()));
}

#if defined(__SANITIZE_ADDRESS__)
extern "C" int __lsan_do_recoverable_leak_check();
// Sanitizer builds only (scripts/leak-check.mjs): runs LeakSanitizer now, while the process is
// alive (Node's own exit path skips LSan's atexit check). Returns 1 if leaks were reported.
// leakCheck(true) first leaks one allocation on purpose: the self-test that proves the check
// (and the script's filter for our frames) can fail.
volatile void* g_planted = nullptr;
Napi::Value LeakCheck(const Napi::CallbackInfo& info) {
  if (info.Length() > 0 && info[0].ToBoolean().Value()) {
    g_planted = new std::string(1000, 'x');
    g_planted = nullptr;
  }
  return Napi::Number::New(info.Env(), __lsan_do_recoverable_leak_check());
}
#endif

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeEngine", uvf::EngineWrap::Init(env));
  exports.Set("NativeCaStore", uvf::CaStoreWrap::Init(env));
  exports.Set("NativeTlsContext", uvf::TlsContextWrap::Init(env));
  exports.Set("fingerprintHello", Napi::Function::New(env, uvf::FingerprintHello, "fingerprintHello"));
  exports.Set("tlsCapabilities", Napi::Function::New(env, uvf::TlsCapabilities, "tlsCapabilities"));
  // The Accept-Encoding the engine can decode ("gzip, deflate, br" + ", zstd" where Node has it).
  exports.Set("acceptEncoding", Napi::Function::New(
                                    env,
                                    [](const Napi::CallbackInfo& info) -> Napi::Value {
                                      std::string_view v = uvf::http1::default_accept_encoding();
                                      return Napi::String::New(info.Env(), v.data(), v.size());
                                    },
                                    "acceptEncoding"));
  // Whether this Node exports nghttp2 (HTTP/2 works); else HTTP/2 fails with ERR_HTTP2_UNAVAILABLE.
  exports.Set("http2Available", Napi::Function::New(
                                    env,
                                    [](const Napi::CallbackInfo& info) -> Napi::Value {
                                      return Napi::Boolean::New(info.Env(), uvf::http2::h2_available());
                                    },
                                    "http2Available"));
  auto n = static_cast<uint32_t>(uvf::Error::Count_);
  Napi::Array codes = Napi::Array::New(env, n);
  Napi::Array messages = Napi::Array::New(env, n);
  for (uint32_t i = 0; i < n; ++i) {
    codes.Set(i, uvf::error_code(static_cast<uvf::Error>(i)));
    messages.Set(i, uvf::error_message(static_cast<uvf::Error>(i)));
  }
  exports.Set("errorCodes", codes);
  exports.Set("errorMessages", messages);
  exports.Set("napiVersion", Napi::Number::New(env, NAPI_VERSION));
  exports.Set("getFdLimit", Napi::Function::New(env, GetFdLimit, "getFdLimit"));
  exports.Set("setFdSoftLimit", Napi::Function::New(env, SetFdSoftLimit, "setFdSoftLimit"));
  exports.Set("openFds", Napi::Function::New(env, OpenFds, "openFds"));
#if defined(__SANITIZE_ADDRESS__)
  exports.Set("leakCheck", Napi::Function::New(env, LeakCheck, "leakCheck"));
#endif
  return exports;
}

}  // namespace

NODE_API_MODULE(uvfetch, Init)
