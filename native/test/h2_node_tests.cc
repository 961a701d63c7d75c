// Runs the HTTP/2 codec's native tests (test_h2_session.cc) inside a Node process, against the
// nghttp2 that Node's own binary exports (no libnghttp2 linked), so each Node version's nghttp2 is
// tested as the addon will use it:
//   [NODE=/path/to/node] cmake --build build-native/plain --target h2-node
// Built as a plain N-API module (ABI-stable: one build loads in Node 20, 22 and 24).
#include <node_api.h>

#include "check.h"
#include "http2/nghttp2_decl.h"

namespace {

napi_value run(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  char only[128] = "";
  size_t len = 0;
  if (argc >= 1) napi_get_value_string_utf8(env, argv[0], only, sizeof only, &len);
  int passed = 0, failed = 0;
  for (auto& c : uvf_test::registry()) {
    if (only[0] && !std::strstr(c.name, only)) continue;
    uvf_test::failures_in_case() = 0;
    c.fn();
    if (uvf_test::failures_in_case() == 0) {
      ++passed;
    } else {
      ++failed;
      std::fprintf(stderr, "FAIL %s\n", c.name);
    }
  }
  std::printf("h2 tests in node: %d passed, %d failed\n", passed, failed);
  napi_value r;
  napi_create_int32(env, failed, &r);
  return r;
}

napi_value info(napi_env env, napi_callback_info) {
  const auto& a = uvf::http2::api();
  napi_value o, v;
  napi_create_object(env, &o);
  napi_get_boolean(env, a.ok, &v);
  napi_set_named_property(env, o, "available", v);
  napi_get_boolean(env, a.has_v2, &v);
  napi_set_named_property(env, o, "memRecv2", v);
  napi_create_string_utf8(env, a.missing, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, o, "missing", v);
  return o;
}

}  // namespace

NAPI_MODULE_INIT() {
  napi_value f;
  napi_create_function(env, "run", NAPI_AUTO_LENGTH, run, nullptr, &f);
  napi_set_named_property(env, exports, "run", f);
  napi_create_function(env, "info", NAPI_AUTO_LENGTH, info, nullptr, &f);
  napi_set_named_property(env, exports, "info", f);
  return exports;
}
