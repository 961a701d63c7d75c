// uvfetch core error codes: one closed set, shared by every layer of the native core.
// The core only ever returns these codes (plus an optional static detail string);
// the binding turns them into JS `UvfetchError`s whose `.code` is the string name below.
#pragma once
#include <cstdint>

namespace uvf {

// X(enum name, JS code string, default message)
#define UVF_ERROR_CODES(X)                                                                  \
  X(Ok, "OK", "no error")                                                                   \
  X(InvalidOption, "ERR_INVALID_OPTION", "invalid option")                                   \
  X(InvalidUrl, "ERR_INVALID_URL", "invalid URL")                                            \
  X(UnsupportedProtocol, "ERR_UNSUPPORTED_PROTOCOL", "unsupported URL scheme")                \
  X(InvalidMethod, "ERR_INVALID_METHOD", "invalid request method")                           \
  X(InvalidHeader, "ERR_INVALID_HEADER", "invalid header name or value")                     \
  X(InvalidBody, "ERR_INVALID_BODY", "invalid request body")                                 \
  X(BadResponse, "ERR_BAD_RESPONSE", "malformed HTTP response")                              \
  X(HeadersTooLarge, "ERR_HEADERS_TOO_LARGE", "response header block exceeds the limit")     \
  X(BodyTooLarge, "ERR_BODY_TOO_LARGE", "response body exceeds maxBodySize")                 \
  X(ConnectTimeout, "ERR_CONNECT_TIMEOUT", "connect timed out")                              \
  X(HeadersTimeout, "ERR_HEADERS_TIMEOUT", "timed out waiting for response headers")         \
  X(BodyTimeout, "ERR_BODY_TIMEOUT", "timed out waiting for response body bytes")            \
  X(TotalTimeout, "ERR_TIMEOUT", "request exceeded its total timeout")                       \
  X(Aborted, "ERR_ABORTED", "request aborted")                                               \
  X(SessionClosed, "ERR_SESSION_CLOSED", "session is closed")                                \
  X(ConnectionRefused, "ERR_CONNECTION_REFUSED", "connection refused")                       \
  X(ConnectionReset, "ERR_CONNECTION_RESET", "connection reset by peer")                     \
  X(SocketClosed, "ERR_SOCKET_CLOSED", "server closed the connection before the response completed") \
  X(ConnectFailed, "ERR_CONNECT", "could not connect")                                       \
  X(DnsNotFound, "ERR_DNS_NOT_FOUND", "host name not found")                                 \
  X(DnsTemporary, "ERR_DNS_TEMPORARY", "temporary DNS failure")                              \
  X(DnsFailed, "ERR_DNS", "DNS lookup failed")                                               \
  X(FdExhausted, "ERR_FD_EXHAUSTED", "out of file descriptors")                              \
  X(FdLimit, "ERR_FD_LIMIT", "could not change the file descriptor limit")                 \
  X(Decompression, "ERR_DECOMPRESSION", "response body could not be decoded")               \
  X(DecompressionBomb, "ERR_DECOMPRESSION_BOMB", "decoded body grew beyond maxDecompressionRatio") \
  X(Proxy, "ERR_PROXY", "the proxy refused or failed the tunnel")                          \
  X(TlsConfig, "ERR_TLS_CONFIG", "invalid TLS profile")                                     \
  X(TlsHandshake, "ERR_TLS_HANDSHAKE", "TLS handshake failed")                               \
  X(TlsHandshakeTimeout, "ERR_TLS_HANDSHAKE_TIMEOUT", "TLS handshake timed out")             \
  X(TlsCertUntrusted, "ERR_TLS_CERT_UNTRUSTED", "server certificate is not trusted")         \
  X(TlsCertExpired, "ERR_TLS_CERT_EXPIRED", "server certificate has expired")                \
  X(TlsCertNotYetValid, "ERR_TLS_CERT_NOT_YET_VALID", "server certificate is not yet valid") \
  X(TlsHostnameMismatch, "ERR_TLS_HOSTNAME_MISMATCH", "server certificate does not match the host") \
  X(TlsCertInvalid, "ERR_TLS_CERT_INVALID", "server certificate failed verification")       \
  X(TlsAlpn, "ERR_TLS_ALPN", "server selected an application protocol uvfetch cannot speak") \
  X(TlsProtocol, "ERR_TLS", "TLS protocol error")                                            \
  X(Socket, "ERR_SOCKET", "socket error")                                                    \
  X(Http2Protocol, "ERR_HTTP2_PROTOCOL", "HTTP/2 protocol error")                            \
  X(Http2StreamReset, "ERR_HTTP2_STREAM_RESET", "HTTP/2 stream reset by the server")         \
  X(Http2Goaway, "ERR_HTTP2_GOAWAY", "HTTP/2 connection shut down by the server (GOAWAY)")   \
  X(Http2Unavailable, "ERR_HTTP2_UNAVAILABLE", "HTTP/2 is unavailable: this Node exports no nghttp2") \
  X(Internal, "ERR_INTERNAL", "internal error")

enum class Error : uint16_t {
#define UVF_ENUM_ENTRY(name, code, msg) name,
  UVF_ERROR_CODES(UVF_ENUM_ENTRY)
#undef UVF_ENUM_ENTRY
  Count_
};

// Stable JS-visible code string, e.g. "ERR_BAD_RESPONSE". Never null.
const char* error_code(Error e);
// Default human-readable message for the code. Never null.
const char* error_message(Error e);

// Maps a negative libuv / errno-style status (UV_ECONNREFUSED, ...) to a core code.
Error error_from_uv(int uv_status);

}  // namespace uvf
