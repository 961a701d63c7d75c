#include "tls_wrap.h"

#include "tls/client_hello.h"

namespace uvf {

namespace {

// Type tags: an object from another addon (or a plain object) is never unwrapped as ours.
const napi_type_tag kCaStoreTag = {0x7576666574636801ull, 0x6361'7374'6f72'6501ull};
const napi_type_tag kTlsContextTag = {0x7576666574636802ull, 0x746c'7363'7478'7402ull};

void throw_code(Napi::Env env, Error code, const std::string& msg) {
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, error_code(code)));
  e.ThrowAsJavaScriptException();
}

std::string str_opt(const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
}

bool bool_opt(const Napi::Object& o, const char* name, bool def) {
  Napi::Value v = o.Get(name);
  return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : def;
}

bool has_tag(napi_env env, napi_value v, const napi_type_tag* tag) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_object) return false;
  bool ok = false;
  return napi_check_object_type_tag(env, v, tag, &ok) == napi_ok && ok;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

Napi::Function CaStoreWrap::Init(Napi::Env env) {
  return DefineClass(env, "NativeCaStore", {InstanceMethod<&CaStoreWrap::Count>("count")});
}

// new NativeCaStore(pems: string[])
CaStoreWrap::CaStoreWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CaStoreWrap>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) {
    Napi::TypeError::New(env, "NativeCaStore(pems: string[])").ThrowAsJavaScriptException();
    return;
  }
  Napi::Array arr = info[0].As<Napi::Array>();
  std::vector<std::string> pems;
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value v = arr.Get(i);
    if (!v.IsString()) {
      throw_code(env, Error::TlsConfig, "ca[" + std::to_string(i) + "] must be a PEM string");
      return;
    }
    pems.push_back(v.As<Napi::String>().Utf8Value());
  }
  std::string err;
  store_ = tls::CaStore::from_pem(pems, &err);
  if (!store_) {
    throw_code(env, Error::TlsConfig, err);
    return;
  }
  napi_type_tag_object(env, info.This(), &kCaStoreTag);
}

CaStoreWrap* CaStoreWrap::From(napi_env env, napi_value v) {
  if (!has_tag(env, v, &kCaStoreTag)) return nullptr;
  return Unwrap(Napi::Object(env, v));
}

Napi::Value CaStoreWrap::Count(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(store_ ? store_->count() : 0));
}

// ---------------------------------------------------------------------------------------------

Napi::Function TlsContextWrap::Init(Napi::Env env) {
  return DefineClass(env, "NativeTlsContext",
                     {InstanceMethod<&TlsContextWrap::Id>("id"),
                      InstanceMethod<&TlsContextWrap::CachedSessions>("cachedSessions")});
}

// new NativeTlsContext(options, caStore | null). Types were validated in JS; the core validates
// the values (unknown ciphers, groups, ...) and names the offending token.
TlsContextWrap::TlsContextWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TlsContextWrap>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsObject()) {
    Napi::TypeError::New(env, "NativeTlsContext(options, caStore)").ThrowAsJavaScriptException();
    return;
  }
  Napi::Object o = info[0].As<Napi::Object>();
  tls::ProfileConfig cfg;
  std::string minv = str_opt(o, "minVersion"), maxv = str_opt(o, "maxVersion");
  if (!minv.empty() && (cfg.min_version = tls::parse_version(minv)) == 0) {
    throw_code(env, Error::TlsConfig, "minVersion: unknown TLS version \"" + minv + "\"");
    return;
  }
  if (!maxv.empty() && (cfg.max_version = tls::parse_version(maxv)) == 0) {
    throw_code(env, Error::TlsConfig, "maxVersion: unknown TLS version \"" + maxv + "\"");
    return;
  }
  cfg.ciphers = str_opt(o, "ciphers");
  cfg.ciphersuites = str_opt(o, "ciphersuites");
  cfg.groups = str_opt(o, "groups");
  cfg.sigalgs = str_opt(o, "sigalgs");
  Napi::Value alpn = o.Get("alpn");
  if (alpn.IsArray()) {
    cfg.alpn.clear();
    Napi::Array a = alpn.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) cfg.alpn.push_back(a.Get(i).As<Napi::String>().Utf8Value());
  }
  cfg.servername = str_opt(o, "servername");
  cfg.sni = bool_opt(o, "sni", true);
  cfg.session_tickets = bool_opt(o, "sessionTickets", true);
  cfg.reject_unauthorized = bool_opt(o, "rejectUnauthorized", true);
  cfg.check_hostname = bool_opt(o, "checkHostname", true);
  cfg.partial_chain = bool_opt(o, "partialChain", false);
  Napi::Value depth = o.Get("verifyDepth");
  if (depth.IsNumber()) cfg.verify_depth = depth.As<Napi::Number>().Int32Value();
  Napi::Value cache = o.Get("sessionCacheSize");
  if (cache.IsNumber()) cfg.session_cache_size = cache.As<Napi::Number>().Uint32Value();
  cfg.cert_pem = str_opt(o, "cert");
  cfg.key_pem = str_opt(o, "key");
  cfg.passphrase = str_opt(o, "passphrase");
  cfg.grease = bool_opt(o, "grease", false);
  cfg.status_request = bool_opt(o, "statusRequest", false);
  cfg.sct = bool_opt(o, "signedCertificateTimestamps", false);
  cfg.encrypt_then_mac = bool_opt(o, "encryptThenMac", true);
  cfg.padding = bool_opt(o, "padding", false);
  cfg.ech_grease = bool_opt(o, "echGrease", false);
  Napi::Value rsl = o.Get("recordSizeLimit");
  if (rsl.IsNumber()) cfg.record_size_limit = rsl.As<Napi::Number>().Uint32Value();
  Napi::Value comp = o.Get("certCompression");
  if (comp.IsArray()) {
    cfg.cert_compression_set = true;
    Napi::Array a = comp.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) cfg.cert_compression.push_back(a.Get(i).As<Napi::String>().Utf8Value());
  }
  if (!info[1].IsNull() && !info[1].IsUndefined()) {
    CaStoreWrap* ca = CaStoreWrap::From(env, info[1]);
    if (ca == nullptr) {
      Napi::TypeError::New(env, "caStore must be a NativeCaStore").ThrowAsJavaScriptException();
      return;
    }
    cfg.ca = ca->store();
  }
  std::string detail;
  ctx_ = tls::Context::create(cfg, &detail);
  if (!ctx_) {
    throw_code(env, Error::TlsConfig, detail);
    return;
  }
  napi_type_tag_object(env, info.This(), &kTlsContextTag);
}

TlsContextWrap* TlsContextWrap::From(napi_env env, napi_value v) {
  if (!has_tag(env, v, &kTlsContextTag)) return nullptr;
  return Unwrap(Napi::Object(env, v));
}

Napi::Value TlsContextWrap::Id(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(ctx_ ? ctx_->id() : 0));
}

Napi::Value TlsContextWrap::CachedSessions(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(ctx_ ? ctx_->cached_sessions() : 0));
}

// ---------------------------------------------------------------------------------------------

Napi::Value FingerprintHello(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray()) {
    Napi::TypeError::New(env, "fingerprintHello(bytes: Uint8Array)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
  const auto* p = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  tls::Fingerprint fp;
  if (!tls::fingerprint_from_bytes(p, ta.ByteLength(), &fp)) return env.Null();
  Napi::Object o = Napi::Object::New(env);
  o.Set("ja3", fp.ja3);
  o.Set("ja3Hash", fp.ja3_hash);
  o.Set("ja4", fp.ja4);
  o.Set("ja4r", fp.ja4_r);
  return o;
}

// tlsCapabilities(): what the running OpenSSL can do for a profile.
Napi::Value TlsCapabilities(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  tls::Capabilities c = tls::capabilities();
  Napi::Object o = Napi::Object::New(env);
  o.Set("openssl", OpenSSL_version(OPENSSL_VERSION));
  o.Set("certCompression", c.cert_compression);
  Napi::Array algs = Napi::Array::New(env, c.cert_comp_algs.size());
  for (uint32_t i = 0; i < c.cert_comp_algs.size(); ++i) algs.Set(i, c.cert_comp_algs[i]);
  o.Set("certCompressionAlgorithms", algs);
  return o;
}

}  // namespace uvf
