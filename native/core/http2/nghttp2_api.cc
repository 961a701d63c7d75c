#include <dlfcn.h>

#include <mutex>

#include "http2/nghttp2_decl.h"

namespace uvf::http2 {

namespace {
void* default_lookup(const char* sym) { return dlsym(RTLD_DEFAULT, sym); }
}  // namespace

Nghttp2Api resolve_api(void* (*lookup)(const char* symbol)) {
  if (lookup == nullptr) lookup = default_lookup;
  Nghttp2Api a;
  const void* base = nullptr;  // the object the first symbol came from: every other must match
  bool mixed = false;
  auto look = [&](const char* sym, bool required, auto& slot) {
    void* p = lookup(sym);
    if (p == nullptr) {
      if (required && a.missing[0] == '\0') a.missing = sym;
      return;
    }
    Dl_info info;
    if (dladdr(p, &info) != 0) {
      if (base == nullptr) base = info.dli_fbase;
      else if (info.dli_fbase != base) mixed = true;
    }
    slot = reinterpret_cast<std::remove_reference_t<decltype(slot)>>(p);
  };
#define UVF_NGHTTP2_LOOKUP(ret, name, args, required) look("nghttp2_" #name, required, a.name);
  UVF_NGHTTP2_API(UVF_NGHTTP2_LOOKUP)
#undef UVF_NGHTTP2_LOOKUP
  // The *2 variants (nghttp2 >= 1.60) have the same ABI on Linux; prefer them where present
  // (the ssize_t ones are deprecated and may go in a later major version).
  if (void* r2 = lookup("nghttp2_session_mem_recv2")) {
    if (void* s2 = lookup("nghttp2_session_mem_send2")) {
      a.session_mem_recv = reinterpret_cast<decltype(a.session_mem_recv)>(r2);
      a.session_mem_send = reinterpret_cast<decltype(a.session_mem_send)>(s2);
      a.has_v2 = true;
    }
  }
  if (a.missing[0] == '\0' && mixed) a.missing = "nghttp2 symbols come from more than one library";
  a.ok = a.missing[0] == '\0';
  return a;
}

const Nghttp2Api& api() {
  static const Nghttp2Api table = resolve_api(nullptr);  // C++11 magic statics: resolved once, thread-safe
  return table;
}

bool h2_available() { return api().ok; }

}  // namespace uvf::http2
