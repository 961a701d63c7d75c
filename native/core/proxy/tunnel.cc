#include "proxy/tunnel.h"

#include <arpa/inet.h>

#include <cstring>

#include "http1/response_parser.h"

namespace uvf::proxy {

namespace {

constexpr size_t kMaxAnswer = 16 * 1024;  // a CONNECT answer head, or a SOCKS reply, never needs more

const char* socks_reply_text(int rep) {
  switch (rep) {
    case 1: return "general SOCKS server failure";
    case 2: return "connection not allowed by ruleset";
    case 3: return "network unreachable";
    case 4: return "host unreachable";
    case 5: return "connection refused";
    case 6: return "TTL expired";
    case 7: return "command not supported";
    case 8: return "address type not supported";
    default: return "unknown SOCKS reply";
  }
}

void put_port(std::string* out, uint16_t port) {
  out->push_back(static_cast<char>(port >> 8));
  out->push_back(static_cast<char>(port & 0xff));
}

}  // namespace

std::string basic_credentials(const std::string& user, const std::string& pass) {
  static const char* kB64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string in = user + ":" + pass;
  std::string out = "Basic ";
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (static_cast<uint8_t>(in[i]) << 16) | (static_cast<uint8_t>(in[i + 1]) << 8) | static_cast<uint8_t>(in[i + 2]);
    out.push_back(kB64[v >> 18]);
    out.push_back(kB64[(v >> 12) & 63]);
    out.push_back(kB64[(v >> 6) & 63]);
    out.push_back(kB64[v & 63]);
  }
  if (i + 1 == in.size()) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16;
    out.push_back(kB64[v >> 18]);
    out.push_back(kB64[(v >> 12) & 63]);
    out.append("==");
  } else if (i + 2 == in.size()) {
    uint32_t v = (static_cast<uint8_t>(in[i]) << 16) | (static_cast<uint8_t>(in[i + 1]) << 8);
    out.push_back(kB64[v >> 18]);
    out.push_back(kB64[(v >> 12) & 63]);
    out.push_back(kB64[(v >> 6) & 63]);
    out.push_back('=');
  }
  return out;
}

Tunnel::Tunnel(const ProxyInfo& proxy, const std::string& target_host, uint16_t target_port)
    : proxy_(proxy), host_(target_host), port_(target_port),
      step_(proxy.kind == Kind::Socks5 ? Step::SocksMethod : Step::HttpHead) {}

void Tunnel::start(std::string* out) {
  if (proxy_.kind == Kind::Http) {
    bool v6 = host_.find(':') != std::string::npos;
    std::string authority = v6 ? "[" + host_ + "]" : host_;
    authority += ":" + std::to_string(port_);
    out->append("CONNECT ").append(authority).append(" HTTP/1.1\r\nHost: ").append(authority).append("\r\n");
    if (!proxy_.user.empty() || !proxy_.pass.empty()) {
      out->append("Proxy-Authorization: ").append(basic_credentials(proxy_.user, proxy_.pass)).append("\r\n");
    }
    out->append("\r\n");
    return;
  }
  // SOCKS5 greeting: offer "no authentication", and username/password when we have credentials.
  bool creds = !proxy_.user.empty() || !proxy_.pass.empty();
  if (creds) {
    out->append("\x05\x02\x00\x02", 4);
  } else {
    out->append("\x05\x01\x00", 3);
  }
}

Tunnel::Status Tunnel::fail(Error e, std::string detail, int status) {
  step_ = Step::Failed;
  error_ = e;
  detail_ = std::move(detail);
  proxy_status_ = status;
  return Status::Failed;
}

Tunnel::Status Tunnel::feed(const char* p, size_t n, std::string* out, size_t* used) {
  *used = 0;
  if (step_ == Step::Failed) return Status::Failed;
  if (step_ == Step::Done) return Status::Done;
  size_t before = buf_.size();
  size_t take = std::min(n, kMaxAnswer - before);
  buf_.append(p, take);
  Status s = proxy_.kind == Kind::Http ? feed_http(used) : feed_socks(out, used);
  if (s == Status::Done) {
    // *used counts bytes of buf_; translate to bytes of this input.
    *used -= before;
    return s;
  }
  if (s == Status::NeedMore && buf_.size() >= kMaxAnswer) {
    return fail(Error::Proxy, "the proxy's answer is too large");
  }
  *used = take;
  return s;
}

Tunnel::Status Tunnel::feed_http(size_t* used) {
  http1::ParseLimits lim;
  lim.max_header_size = kMaxAnswer;
  lim.max_header_count = 100;
  http1::ResponseHead head{};
  http1::ParseError err;
  auto st = http1::parse_response_head(buf_.data(), buf_.size(), 0, lim, &head, nullptr, 0, &err);
  if (st == http1::ParseStatus::NeedMore) return Status::NeedMore;
  if (st == http1::ParseStatus::Error) {
    return fail(Error::Proxy, std::string("malformed answer to CONNECT: ") + (err.reason ? err.reason : "?"));
  }
  if (head.status < 200 || head.status > 299) {
    std::string reason(head.reason, head.reason_len);
    return fail(Error::Proxy, "the proxy refused the tunnel: " + std::to_string(head.status) + (reason.empty() ? "" : " " + reason),
                head.status);
  }
  // RFC 9110 §9.3.6: a 2xx answer to CONNECT has no body; whatever follows is the origin's.
  step_ = Step::Done;
  *used = head.head_len;
  return Status::Done;
}

void Tunnel::socks_connect_request(std::string* out) {
  out->append("\x05\x01\x00", 3);
  unsigned char a[16];
  if (inet_pton(AF_INET, host_.c_str(), a) == 1) {
    out->push_back('\x01');
    out->append(reinterpret_cast<const char*>(a), 4);
  } else if (inet_pton(AF_INET6, host_.c_str(), a) == 1) {
    out->push_back('\x04');
    out->append(reinterpret_cast<const char*>(a), 16);
  } else {
    out->push_back('\x03');
    out->push_back(static_cast<char>(host_.size()));
    out->append(host_);
  }
  put_port(out, port_);
}

Tunnel::Status Tunnel::feed_socks(std::string* out, size_t* used) {
  for (;;) {
    const auto* b = reinterpret_cast<const unsigned char*>(buf_.data()) + pos_;
    size_t avail = buf_.size() - pos_;
    switch (step_) {
      case Step::SocksMethod: {
        if (avail < 2) return Status::NeedMore;
        if (b[0] != 5) return fail(Error::Proxy, "not a SOCKS5 proxy");
        bool creds = !proxy_.user.empty() || !proxy_.pass.empty();
        if (b[1] == 0) {
          pos_ += 2;
          socks_connect_request(out);
          step_ = Step::SocksReply;
          continue;
        }
        if (b[1] == 2 && creds) {
          if (proxy_.user.size() > 255 || proxy_.pass.size() > 255) {
            return fail(Error::Proxy, "SOCKS5 username and password must be at most 255 bytes each");
          }
          pos_ += 2;
          out->push_back('\x01');
          out->push_back(static_cast<char>(proxy_.user.size()));
          out->append(proxy_.user);
          out->push_back(static_cast<char>(proxy_.pass.size()));
          out->append(proxy_.pass);
          step_ = Step::SocksAuth;
          continue;
        }
        return fail(Error::Proxy, creds ? "the SOCKS5 proxy accepts none of our authentication methods"
                                        : "the SOCKS5 proxy requires authentication",
                    b[1]);
      }
      case Step::SocksAuth:
        if (avail < 2) return Status::NeedMore;
        if (b[0] != 1) return fail(Error::Proxy, "malformed SOCKS5 authentication reply");
        if (b[1] != 0) return fail(Error::Proxy, "SOCKS5 authentication failed", b[1]);
        pos_ += 2;
        socks_connect_request(out);
        step_ = Step::SocksReply;
        continue;
      case Step::SocksReply: {
        // The reply code is known after two bytes: a refusing proxy may close right after it.
        if (avail < 2) return Status::NeedMore;
        if (b[0] != 5) return fail(Error::Proxy, "malformed SOCKS5 reply");
        if (b[1] != 0) return fail(Error::Proxy, std::string("the SOCKS5 proxy refused: ") + socks_reply_text(b[1]), b[1]);
        if (avail < 5) return Status::NeedMore;
        if (b[2] != 0) return fail(Error::Proxy, "malformed SOCKS5 reply");
        size_t len;
        switch (b[3]) {
          case 1: len = 4 + 4 + 2; break;
          case 4: len = 4 + 16 + 2; break;
          case 3: len = 4 + 1 + b[4] + 2; break;
          default: return fail(Error::Proxy, "malformed SOCKS5 reply (address type)");
        }
        if (avail < len) return Status::NeedMore;
        step_ = Step::Done;
        *used = pos_ + len;  // end of the handshake, as a position in buf_
        return Status::Done;
      }
      default:
        return Status::Failed;
    }
  }
}

}  // namespace uvf::proxy
