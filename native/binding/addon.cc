// Module entry: context-aware (one instance per environment, worker_threads included); no static
// JS handles. Exports the engine class and the table of error codes.
#include <napi.h>

#include "base/errors.h"
#include "engine_wrap.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeEngine", uvf::EngineWrap::Init(env));
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
  return exports;
}

}  // namespace

NODE_API_MODULE(uvfetch, Init)
