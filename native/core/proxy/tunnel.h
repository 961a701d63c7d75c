// Proxy tunnels: the bytes a client exchanges with a proxy before it talks to the origin.
//   - HTTP CONNECT (RFC 9110 §9.3.6) for https targets through an HTTP proxy;
//   - SOCKS5 (RFC 1928) with optional username/password (RFC 1929), for any target; the target
//     name is sent to the proxy (remote resolution, "socks5h" semantics).
// Pure: no sockets, no loop. start() produces the first bytes to send; feed() takes what the
// proxy answered and may produce more bytes to send, until Done (tunnel open) or Failed.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "base/errors.h"

namespace uvf::proxy {

enum class Kind : uint8_t { None = 0, Http = 1, Socks5 = 2 };

struct ProxyInfo {
  Kind kind = Kind::None;
  std::string host;  // name or IP literal (no brackets)
  uint16_t port = 0;
  std::string user, pass;  // credentials, empty if none (HTTP: Basic; SOCKS5: RFC 1929)
};

class Tunnel {
 public:
  enum class Status { NeedMore, Done, Failed };

  // `target_host` is a name or an IP literal (no brackets).
  Tunnel(const ProxyInfo& proxy, const std::string& target_host, uint16_t target_port);

  // Bytes to send first (the CONNECT request, or the SOCKS5 greeting).
  void start(std::string* out);
  // Proxy bytes received. Appends bytes to send to *out. Done: the tunnel is open and `*used`
  // bytes of this input belonged to the handshake (the rest, if any, came from the origin).
  Status feed(const char* p, size_t n, std::string* out, size_t* used);

  Error error() const { return error_; }
  const std::string& detail() const { return detail_; }
  // The proxy's refusal: HTTP status of the CONNECT answer, or the SOCKS5 reply code (0 if none).
  int proxy_status() const { return proxy_status_; }

 private:
  enum class Step { HttpHead, SocksMethod, SocksAuth, SocksReply, Done, Failed };
  Status fail(Error e, std::string detail, int status = 0);
  Status feed_http(size_t* used);
  Status feed_socks(std::string* out, size_t* used);
  void socks_connect_request(std::string* out);

  ProxyInfo proxy_;
  std::string host_;
  uint16_t port_;
  Step step_;
  std::string buf_;  // answer bytes gathered so far (bounded)
  size_t pos_ = 0;   // SOCKS5: bytes of buf_ already handled
  Error error_ = Error::Ok;
  std::string detail_;
  int proxy_status_ = 0;
};

// "Basic base64(user:pass)".
std::string basic_credentials(const std::string& user, const std::string& pass);

}  // namespace uvf::proxy
