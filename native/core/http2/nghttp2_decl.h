// Our own declarations of the part of nghttp2's public C API that the HTTP/2 codec uses.
//
// Written from nghttp2's documented API (lib/includes/nghttp2/nghttp2.h); every type and function
// here has kept its layout and signature since nghttp2 1.x (the oldest we run against is Debian 12's
// 1.52.0; Node 20 bundles 1.61.0, Node 22 1.69.0, Node 24 1.70.0). No nghttp2 header or -dev package
// is needed.
//
// Nothing is linked against: every function is looked up at run time (dlsym, RTLD_DEFAULT) into one
// table, Nghttp2Api, so that
//   - the addon loads on a Node that exports no nghttp2 (HTTP/2 then fails with ERR_HTTP2_UNAVAILABLE,
//     HTTP/1.1 keeps working), whatever the loader's binding mode (lazy or -z now);
//   - all functions come from one copy of nghttp2 (the table checks that they share one object), so
//     two copies can never mix;
//   - the uvfetch binary defines no nghttp2 symbol of its own.
// In the addon the symbols come from Node's binary; the native tests and fuzzers link Debian's
// runtime library by soname (-l:libnghttp2.so.14, no -dev package).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

extern "C" {

typedef struct nghttp2_session nghttp2_session;
typedef struct nghttp2_session_callbacks nghttp2_session_callbacks;
typedef struct nghttp2_option nghttp2_option;
typedef struct nghttp2_hd_inflater nghttp2_hd_inflater;

typedef struct {
  size_t length;
  int32_t stream_id;
  uint8_t type;
  uint8_t flags;
  uint8_t reserved;
} nghttp2_frame_hd;

typedef struct {
  uint8_t* name;
  uint8_t* value;
  size_t namelen;
  size_t valuelen;
  uint8_t flags;
} nghttp2_nv;

typedef struct {
  int32_t stream_id;
  int32_t weight;
  uint8_t exclusive;
} nghttp2_priority_spec;

typedef struct {
  nghttp2_frame_hd hd;
  size_t padlen;
} nghttp2_data;

typedef enum {
  NGHTTP2_HCAT_REQUEST = 0,
  NGHTTP2_HCAT_RESPONSE = 1,
  NGHTTP2_HCAT_PUSH_RESPONSE = 2,
  NGHTTP2_HCAT_HEADERS = 3
} nghttp2_headers_category;

typedef struct {
  nghttp2_frame_hd hd;
  size_t padlen;
  nghttp2_priority_spec pri_spec;
  nghttp2_nv* nva;
  size_t nvlen;
  nghttp2_headers_category cat;
} nghttp2_headers;

typedef struct {
  nghttp2_frame_hd hd;
  nghttp2_priority_spec pri_spec;
} nghttp2_priority;

typedef struct {
  nghttp2_frame_hd hd;
  uint32_t error_code;
} nghttp2_rst_stream;

typedef struct {
  int32_t settings_id;
  uint32_t value;
} nghttp2_settings_entry;

typedef struct {
  nghttp2_frame_hd hd;
  size_t niv;
  nghttp2_settings_entry* iv;
} nghttp2_settings;

typedef struct {
  nghttp2_frame_hd hd;
  size_t padlen;
  nghttp2_nv* nva;
  size_t nvlen;
  int32_t promised_stream_id;
  uint8_t reserved;
} nghttp2_push_promise;

typedef struct {
  nghttp2_frame_hd hd;
  uint8_t opaque_data[8];
} nghttp2_ping;

typedef struct {
  nghttp2_frame_hd hd;
  int32_t last_stream_id;
  uint32_t error_code;
  uint8_t* opaque_data;
  size_t opaque_data_len;
  uint8_t reserved;
} nghttp2_goaway;

typedef struct {
  nghttp2_frame_hd hd;
  int32_t window_size_increment;
  uint8_t reserved;
} nghttp2_window_update;

typedef struct {
  nghttp2_frame_hd hd;
  void* payload;
} nghttp2_extension;

typedef union {
  nghttp2_frame_hd hd;
  nghttp2_data data;
  nghttp2_headers headers;
  nghttp2_priority priority;
  nghttp2_rst_stream rst_stream;
  nghttp2_settings settings;
  nghttp2_push_promise push_promise;
  nghttp2_ping ping;
  nghttp2_goaway goaway;
  nghttp2_window_update window_update;
  nghttp2_extension ext;
} nghttp2_frame;

typedef union {
  int fd;
  void* ptr;
} nghttp2_data_source;

// ssize_t here; nghttp2 >= 1.60's *2 variants return nghttp2_ssize (ptrdiff_t), the same type on
// every LP64 / ILP32 Linux target, so one pointer type serves both.
typedef ssize_t (*nghttp2_data_source_read_callback)(nghttp2_session* session, int32_t stream_id, uint8_t* buf,
                                                     size_t length, uint32_t* data_flags,
                                                     nghttp2_data_source* source, void* user_data);
typedef struct {
  nghttp2_data_source source;
  nghttp2_data_source_read_callback read_callback;
} nghttp2_data_provider;

typedef int (*nghttp2_on_frame_recv_callback)(nghttp2_session*, const nghttp2_frame*, void*);
typedef int (*nghttp2_on_invalid_frame_recv_callback)(nghttp2_session*, const nghttp2_frame*, int lib_error_code,
                                                      void*);
typedef int (*nghttp2_on_data_chunk_recv_callback)(nghttp2_session*, uint8_t flags, int32_t stream_id,
                                                   const uint8_t* data, size_t len, void*);
typedef int (*nghttp2_on_frame_send_callback)(nghttp2_session*, const nghttp2_frame*, void*);
typedef int (*nghttp2_on_frame_not_send_callback)(nghttp2_session*, const nghttp2_frame*, int lib_error_code,
                                                  void*);
typedef int (*nghttp2_on_stream_close_callback)(nghttp2_session*, int32_t stream_id, uint32_t error_code, void*);
typedef int (*nghttp2_on_begin_headers_callback)(nghttp2_session*, const nghttp2_frame*, void*);
typedef int (*nghttp2_on_header_callback)(nghttp2_session*, const nghttp2_frame*, const uint8_t* name,
                                          size_t namelen, const uint8_t* value, size_t valuelen, uint8_t flags,
                                          void*);
typedef int (*nghttp2_on_begin_frame_callback)(nghttp2_session*, const nghttp2_frame_hd*, void*);
typedef int (*nghttp2_error_callback2)(nghttp2_session*, int lib_error_code, const char* msg, size_t len, void*);

}  // extern "C"

namespace uvf::http2 {

// Frame types, flags, settings ids and error codes (RFC 9113 values; nghttp2 uses the same numbers).
enum : uint8_t {
  kFrameData = 0x0,
  kFrameHeaders = 0x1,
  kFramePriority = 0x2,
  kFrameRstStream = 0x3,
  kFrameSettings = 0x4,
  kFramePushPromise = 0x5,
  kFramePing = 0x6,
  kFrameGoaway = 0x7,
  kFrameWindowUpdate = 0x8,
  kFrameContinuation = 0x9,
};
enum : uint8_t {
  kFlagEndStream = 0x1,
  kFlagAck = 0x1,
  kFlagEndHeaders = 0x4,
  kFlagPadded = 0x8,
  kFlagPriority = 0x20,
};
enum : uint32_t {
  kH2NoError = 0x0,
  kH2ProtocolError = 0x1,
  kH2InternalError = 0x2,
  kH2FlowControlError = 0x3,
  kH2SettingsTimeout = 0x4,
  kH2StreamClosed = 0x5,
  kH2FrameSizeError = 0x6,
  kH2RefusedStream = 0x7,
  kH2Cancel = 0x8,
  kH2CompressionError = 0x9,
  kH2ConnectError = 0xa,
  kH2EnhanceYourCalm = 0xb,
  kH2InadequateSecurity = 0xc,
  kH2Http11Required = 0xd,
};
// nghttp2 library error codes we test for.
enum : int {
  kNgErrInvalidArgument = -501,
  kNgErrDeferred = -508,
  kNgErrStreamIdNotAvailable = -509,
  kNgErrHttpHeader = -531,
  kNgErrHttpMessaging = -532,
  kNgErrTemporalCallbackFailure = -521,
  kNgErrPause = -526,
  kNgErrFatal = -900,
  kNgErrCallbackFailure = -902,
  kNgErrFlooded = -904,
};
enum : uint32_t { kNgDataFlagEof = 0x1, kNgDataFlagNoEndStream = 0x2 };
enum : uint8_t { kNgNvFlagNone = 0, kNgNvFlagNoIndex = 0x1 };
enum : int { kNgHdInflateFinal = 0x1, kNgHdInflateEmit = 0x2 };

// X(return type, name without the nghttp2_ prefix, parameter list, required)
// "required = false": looked up if present (newer nghttp2 only), the codec works without it.
#define UVF_NGHTTP2_API(X)                                                                                   \
  X(int, session_callbacks_new, (nghttp2_session_callbacks**), true)                                        \
  X(void, session_callbacks_del, (nghttp2_session_callbacks*), true)                                        \
  X(void, session_callbacks_set_on_frame_recv_callback, (nghttp2_session_callbacks*, nghttp2_on_frame_recv_callback), true) \
  X(void, session_callbacks_set_on_invalid_frame_recv_callback,                                             \
    (nghttp2_session_callbacks*, nghttp2_on_invalid_frame_recv_callback), true)                            \
  X(void, session_callbacks_set_on_data_chunk_recv_callback,                                                \
    (nghttp2_session_callbacks*, nghttp2_on_data_chunk_recv_callback), true)                               \
  X(void, session_callbacks_set_on_frame_send_callback, (nghttp2_session_callbacks*, nghttp2_on_frame_send_callback), true) \
  X(void, session_callbacks_set_on_frame_not_send_callback,                                                 \
    (nghttp2_session_callbacks*, nghttp2_on_frame_not_send_callback), true)                                \
  X(void, session_callbacks_set_on_stream_close_callback,                                                   \
    (nghttp2_session_callbacks*, nghttp2_on_stream_close_callback), true)                                  \
  X(void, session_callbacks_set_on_begin_headers_callback,                                                  \
    (nghttp2_session_callbacks*, nghttp2_on_begin_headers_callback), true)                                 \
  X(void, session_callbacks_set_on_header_callback, (nghttp2_session_callbacks*, nghttp2_on_header_callback), true) \
  X(void, session_callbacks_set_on_begin_frame_callback, (nghttp2_session_callbacks*, nghttp2_on_begin_frame_callback), true) \
  X(void, session_callbacks_set_error_callback2, (nghttp2_session_callbacks*, nghttp2_error_callback2), true) \
  X(int, option_new, (nghttp2_option**), true)                                                              \
  X(void, option_del, (nghttp2_option*), true)                                                              \
  X(void, option_set_no_auto_window_update, (nghttp2_option*, int), true)                                   \
  X(void, option_set_peer_max_concurrent_streams, (nghttp2_option*, uint32_t), true)                        \
  X(void, option_set_max_reserved_remote_streams, (nghttp2_option*, uint32_t), true)                        \
  X(void, option_set_max_settings, (nghttp2_option*, size_t), true)                                         \
  X(void, option_set_max_outbound_ack, (nghttp2_option*, size_t), true)                                     \
  X(void, option_set_max_continuations, (nghttp2_option*, size_t), false)                                   \
  X(int, session_client_new2, (nghttp2_session**, const nghttp2_session_callbacks*, void*, const nghttp2_option*), true) \
  X(int, session_server_new2, (nghttp2_session**, const nghttp2_session_callbacks*, void*, const nghttp2_option*), true) \
  X(void, session_del, (nghttp2_session*), true)                                                            \
  X(ssize_t, session_mem_recv, (nghttp2_session*, const uint8_t*, size_t), true)                            \
  X(ssize_t, session_mem_send, (nghttp2_session*, const uint8_t**), true)                                   \
  X(int, session_want_read, (nghttp2_session*), true)                                                       \
  X(int, session_want_write, (nghttp2_session*), true)                                                      \
  X(int, submit_settings, (nghttp2_session*, uint8_t, const nghttp2_settings_entry*, size_t), true)         \
  X(int32_t, submit_request,                                                                                \
    (nghttp2_session*, const nghttp2_priority_spec*, const nghttp2_nv*, size_t, const nghttp2_data_provider*, void*), true) \
  X(int, submit_response, (nghttp2_session*, int32_t, const nghttp2_nv*, size_t, const nghttp2_data_provider*), true) \
  X(int, submit_trailer, (nghttp2_session*, int32_t, const nghttp2_nv*, size_t), true)                      \
  X(int, submit_rst_stream, (nghttp2_session*, uint8_t, int32_t, uint32_t), true)                           \
  X(int, submit_goaway, (nghttp2_session*, uint8_t, int32_t, uint32_t, const uint8_t*, size_t), true)      \
  X(int, submit_ping, (nghttp2_session*, uint8_t, const uint8_t*), true)                                    \
  X(int, submit_window_update, (nghttp2_session*, uint8_t, int32_t, int32_t), true)                         \
  X(int, session_consume_connection, (nghttp2_session*, size_t), true)                                      \
  X(int, session_consume_stream, (nghttp2_session*, int32_t, size_t), true)                                 \
  X(int, session_resume_data, (nghttp2_session*, int32_t), true)                                            \
  X(int, session_set_next_stream_id, (nghttp2_session*, int32_t), true)                                     \
  X(uint32_t, session_get_remote_settings, (nghttp2_session*, int), true)                                   \
  X(int32_t, session_get_remote_window_size, (nghttp2_session*), true)                                      \
  X(int32_t, session_get_stream_remote_window_size, (nghttp2_session*, int32_t), true)                      \
  X(int32_t, session_get_stream_effective_local_window_size, (nghttp2_session*, int32_t), true)             \
  X(int32_t, session_get_effective_local_window_size, (nghttp2_session*), true)                             \
  X(int32_t, session_get_last_proc_stream_id, (nghttp2_session*), true)                                     \
  X(int, session_terminate_session, (nghttp2_session*, uint32_t), true)                                     \
  X(const char*, strerror, (int), true)                                                                     \
  X(int, hd_inflate_new, (nghttp2_hd_inflater**), true)                                                     \
  X(void, hd_inflate_del, (nghttp2_hd_inflater*), true)                                                     \
  X(ssize_t, hd_inflate_hd2, (nghttp2_hd_inflater*, nghttp2_nv*, int*, const uint8_t*, size_t, int), true)  \
  X(int, hd_inflate_end_headers, (nghttp2_hd_inflater*), true)

struct Nghttp2Api {
#define UVF_NGHTTP2_MEMBER(ret, name, args, required) ret(*name) args = nullptr;
  UVF_NGHTTP2_API(UVF_NGHTTP2_MEMBER)
#undef UVF_NGHTTP2_MEMBER
  bool ok = false;
  // Why not ok (e.g. "nghttp2_session_client_new2 not found"); empty when ok.
  const char* missing = "";
  // nghttp2 >= 1.60 (mem_recv2/mem_send2 present, used in place of the deprecated ssize_t ones).
  bool has_v2 = false;
};

// Resolves the table through `lookup` (null: dlsym(RTLD_DEFAULT, ...)). For tests; use api().
Nghttp2Api resolve_api(void* (*lookup)(const char* symbol));

// The process-wide table, resolved once (thread-safe). Check api().ok (or h2_available()) first.
const Nghttp2Api& api();

// True when this process exports a usable nghttp2 (the addon's ERR_HTTP2_UNAVAILABLE check).
bool h2_available();

}  // namespace uvf::http2
