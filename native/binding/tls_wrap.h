// JS wrappers of the TLS core: NativeCaStore (a parsed set of trust anchors) and NativeTlsContext
// (one validated, compiled TlsProfile). Engines take a NativeTlsContext per https request; its
// identity is part of the pool key.
#pragma once
#include <napi.h>

#include <memory>

#include "tls/tls_context.h"

namespace uvf {

class CaStoreWrap : public Napi::ObjectWrap<CaStoreWrap> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit CaStoreWrap(const Napi::CallbackInfo& info);
  const std::shared_ptr<tls::CaStore>& store() const { return store_; }
  static CaStoreWrap* From(napi_env env, napi_value v);  // nullptr unless a NativeCaStore

 private:
  Napi::Value Count(const Napi::CallbackInfo& info);
  std::shared_ptr<tls::CaStore> store_;
};

class TlsContextWrap : public Napi::ObjectWrap<TlsContextWrap> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit TlsContextWrap(const Napi::CallbackInfo& info);
  const std::shared_ptr<tls::Context>& context() const { return ctx_; }
  static TlsContextWrap* From(napi_env env, napi_value v);  // nullptr unless a NativeTlsContext

 private:
  Napi::Value Id(const Napi::CallbackInfo& info);
  Napi::Value CachedSessions(const Napi::CallbackInfo& info);
  std::shared_ptr<tls::Context> ctx_;
};

// fingerprintHello(bytes: Uint8Array) → { ja3, ja3Hash, ja4, ja4r } | null
Napi::Value FingerprintHello(const Napi::CallbackInfo& info);
Napi::Value TlsCapabilities(const Napi::CallbackInfo& info);

}  // namespace uvf
