{
  "targets": [
    {
      "target_name": "uvfetch",
      "sources": [
        "native/core/base/errors.cc",
        "native/core/base/fd_limits.cc",
        "native/core/net/tcp_socket.cc",
        "native/core/net/memory_socket.cc",
        "native/core/dns/dns_cache.cc",
        "native/core/dns/resolver_uv.cc",
        "native/core/http1/response_parser.cc",
        "native/core/http1/chunked_decoder.cc",
        "native/core/http1/request_encoder.cc",
        "native/core/http1/content_decoder.cc",
        "native/core/http2/h2_session.cc",
        "native/core/http2/nghttp2_api.cc",
        "native/core/client/dialer.cc",
        "native/core/client/engine.cc",
        "native/core/client/engine_thread.cc",
        "native/core/client/event_batch.cc",
        "native/core/client/http1_connection.cc",
        "native/core/client/http2_connection.cc",
        "native/core/client/raw_connection.cc",
        "native/core/client/transport.cc",
        "native/core/proxy/tunnel.cc",
        "native/core/tls/client_hello.cc",
        "native/core/tls/tls_context.cc",
        "native/core/tls/tls_channel.cc",
        "native/binding/engine_wrap.cc",
        "native/binding/tls_wrap.cc",
        "native/binding/addon.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native/core"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_DISABLE_CPP_EXCEPTIONS",
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED"
      ],
      "cflags_cc": ["-std=c++17", "-O2", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc!": ["-std=gnu++1y", "-std=gnu++17"],
      "xcode_settings": {
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "GCC_SYMBOLS_PRIVATE_EXTERN": "YES"
      }
    }
  ]
}
