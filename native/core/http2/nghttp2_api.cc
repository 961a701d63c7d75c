#include <dlfcn.h>
#include <link.h>

#include <cstdint>
#include <mutex>
#include <vector>

#include "http2/nghttp2_decl.h"

namespace uvf::http2 {

namespace {
void* default_lookup(const char* sym) { return dlsym(RTLD_DEFAULT, sym); }

// The loaded objects' mapped segments, taken once: which object an address belongs to is then a
// scan of a few dozen ranges (dladdr searches the whole symbol table of a large binary like node,
// ~1 ms per call).
struct Segment {
  uintptr_t start, end;
  int object;
};

struct Segments {
  std::vector<Segment> list;
  int objects = 0;
};

int collect_segment(dl_phdr_info* info, size_t, void* data) {
  auto* all = static_cast<Segments*>(data);
  std::vector<Segment>* segs = &all->list;
  int object = all->objects++;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    uintptr_t start = info->dlpi_addr + ph.p_vaddr;
    segs->push_back({start, start + ph.p_memsz, object});
  }
  return 0;
}

int object_of(const std::vector<Segment>& segs, const void* p) {
  auto a = reinterpret_cast<uintptr_t>(p);
  for (const Segment& s : segs) {
    if (a >= s.start && a < s.end) return s.object;
  }
  return -1;
}
}  // namespace

Nghttp2Api resolve_api(void* (*lookup)(const char* symbol)) {
  if (lookup == nullptr) lookup = default_lookup;
  Nghttp2Api a;
  Segments all;
  dl_iterate_phdr(collect_segment, &all);
  const std::vector<Segment>& segs = all.list;
  int base = -1;  // the object the first symbol came from: every other must match
  bool mixed = false;
  auto same_object = [&](const void* p) {
    int o = object_of(segs, p);
    if (o < 0) return;  // not in a mapped object (a test's lookup table): nothing to compare
    if (base < 0) base = o;
    else if (o != base) mixed = true;
  };
  auto look = [&](const char* sym, bool required, auto& slot) {
    void* p = lookup(sym);
    if (p == nullptr) {
      if (required && a.missing[0] == '\0') a.missing = sym;
      return;
    }
    same_object(p);
    slot = reinterpret_cast<std::remove_reference_t<decltype(slot)>>(p);
  };
#define UVF_NGHTTP2_LOOKUP(ret, name, args, required) look("nghttp2_" #name, required, a.name);
  UVF_NGHTTP2_API(UVF_NGHTTP2_LOOKUP)
#undef UVF_NGHTTP2_LOOKUP
  // The *2 variants (nghttp2 >= 1.60) have the same ABI on Linux; prefer them where present
  // (the ssize_t ones are deprecated and may go in a later major version).
  if (void* r2 = lookup("nghttp2_session_mem_recv2")) {
    if (void* s2 = lookup("nghttp2_session_mem_send2")) {
      same_object(r2);
      same_object(s2);
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
