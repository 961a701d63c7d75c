#include "errors.h"

#include <uv.h>

namespace uvf {

namespace {
struct ErrorInfo {
  const char* code;
  const char* message;
};
constexpr ErrorInfo kErrors[] = {
#define UVF_TABLE_ENTRY(name, code, msg) {code, msg},
    UVF_ERROR_CODES(UVF_TABLE_ENTRY)
#undef UVF_TABLE_ENTRY
};
static_assert(sizeof(kErrors) / sizeof(kErrors[0]) == static_cast<size_t>(Error::Count_),
              "error table out of sync");
}  // namespace

const char* error_code(Error e) {
  auto i = static_cast<size_t>(e);
  return i < static_cast<size_t>(Error::Count_) ? kErrors[i].code : "ERR_INTERNAL";
}

const char* error_message(Error e) {
  auto i = static_cast<size_t>(e);
  return i < static_cast<size_t>(Error::Count_) ? kErrors[i].message : "internal error";
}

Error error_from_uv(int s) {
  switch (s) {
    case 0: return Error::Ok;
    case UV_ECONNREFUSED: return Error::ConnectionRefused;
    case UV_ECONNRESET:
    case UV_EPIPE: return Error::ConnectionReset;
    case UV_EOF: return Error::SocketClosed;
    case UV_ETIMEDOUT: return Error::ConnectTimeout;
    case UV_EMFILE:
    case UV_ENFILE: return Error::FdExhausted;
    case UV_ENETUNREACH:
    case UV_EHOSTUNREACH:
    case UV_EADDRNOTAVAIL:
    case UV_EADDRINUSE:
    case UV_EAFNOSUPPORT: return Error::ConnectFailed;
    case UV_EAI_NONAME:
    case UV_EAI_NODATA: return Error::DnsNotFound;
    case UV_EAI_AGAIN: return Error::DnsTemporary;
    case UV_EAI_FAIL:
    case UV_EAI_FAMILY:
    case UV_EAI_SERVICE:
    case UV_EAI_SOCKTYPE: return Error::DnsFailed;
    case UV_ECANCELED: return Error::Aborted;
    default: return Error::Socket;
  }
}

}  // namespace uvf
