// Tests for proxy/tunnel: the CONNECT request and answer (any split, refusals, malformed and
// oversized answers), the SOCKS5 greeting/auth/connect exchange for names and IP literals, reply
// codes, and where the handshake ends in the input.
#include <string>

#include "check.h"
#include "proxy/tunnel.h"

using namespace uvf;
using namespace uvf::proxy;

namespace {

ProxyInfo http_proxy(const std::string& user = "", const std::string& pass = "") {
  ProxyInfo p;
  p.kind = Kind::Http;
  p.host = "127.0.0.1";
  p.port = 3128;
  p.user = user;
  p.pass = pass;
  return p;
}

ProxyInfo socks(const std::string& user = "", const std::string& pass = "") {
  ProxyInfo p = http_proxy(user, pass);
  p.kind = Kind::Socks5;
  return p;
}

// Feeds `answer` in pieces of `step`; returns the final status and the bytes the tunnel sent.
Tunnel::Status run(Tunnel& t, const std::string& answer, size_t step, std::string* sent, size_t* used_last) {
  t.start(sent);
  Tunnel::Status st = Tunnel::Status::NeedMore;
  for (size_t pos = 0; pos < answer.size() && st == Tunnel::Status::NeedMore; pos += step) {
    size_t n = std::min(step, answer.size() - pos);
    st = t.feed(answer.data() + pos, n, sent, used_last);
  }
  return st;
}

}  // namespace

TEST(tunnel_http_connect) {
  for (size_t step : {size_t(1), size_t(5), size_t(1000)}) {
    Tunnel t(http_proxy("alice", "s3cret"), "example.test", 443);
    std::string sent;
    size_t used = 0;
    auto st = run(t, "HTTP/1.1 200 Connection Established\r\nVia: x\r\n\r\n", step, &sent, &used);
    CHECK(st == Tunnel::Status::Done);
    CHECK(sent.find("CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n") == 0);
    CHECK(sent.find("Proxy-Authorization: Basic YWxpY2U6czNjcmV0\r\n") != std::string::npos);
  }
  Tunnel v6(http_proxy(), "::1", 8443);
  std::string sent;
  v6.start(&sent);
  CHECK(sent.find("CONNECT [::1]:8443 HTTP/1.1") == 0);
  CHECK(sent.find("Proxy-Authorization") == std::string::npos);
}

TEST(tunnel_http_refusals_and_junk) {
  Tunnel t(http_proxy(), "h", 1);
  std::string sent;
  size_t used = 0;
  CHECK(run(t, "HTTP/1.1 407 Proxy Authentication Required\r\n\r\n", 3, &sent, &used) == Tunnel::Status::Failed);
  CHECK(t.error() == Error::Proxy);
  CHECK_EQ(t.proxy_status(), 407);
  Tunnel g(http_proxy(), "h", 1);
  CHECK(run(g, "garbage\r\n\r\n", 100, &sent, &used) == Tunnel::Status::Failed);
  CHECK_EQ(g.proxy_status(), 0);
  Tunnel big(http_proxy(), "h", 1);
  std::string huge = "HTTP/1.1 200 OK\r\n" + std::string(20000, 'a');
  CHECK(run(big, huge, 4096, &sent, &used) == Tunnel::Status::Failed);
  // Bytes after the answer are reported as not used.
  Tunnel extra(http_proxy(), "h", 1);
  std::string s2;
  extra.start(&s2);
  std::string ans = "HTTP/1.1 200 OK\r\n\r\nEXTRA";
  CHECK(extra.feed(ans.data(), ans.size(), &s2, &used) == Tunnel::Status::Done);
  CHECK_EQ(used, ans.size() - 5);
}

TEST(tunnel_socks5_no_auth_name_and_literals) {
  for (size_t step : {size_t(1), size_t(3), size_t(100)}) {
    Tunnel t(socks(), "example.test", 80);
    std::string sent;
    size_t used = 0;
    std::string answer = std::string("\x05\x00", 2) + std::string("\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x50", 10);
    auto st = run(t, answer, step, &sent, &used);
    CHECK(st == Tunnel::Status::Done);
    std::string expect = std::string("\x05\x01\x00", 3) + std::string("\x05\x01\x00\x03\x0c", 5) + "example.test" +
                         std::string("\x00\x50", 2);
    CHECK(sent == expect);
  }
  Tunnel v4(socks(), "10.1.2.3", 443);
  std::string sent;
  size_t used = 0;
  std::string ok = std::string("\x05\x00", 2) + std::string("\x05\x00\x00\x04", 4) + std::string(16, '\0') + "\x01\xbb";
  CHECK(run(v4, ok, 100, &sent, &used) == Tunnel::Status::Done);
  CHECK(sent.substr(3) == std::string("\x05\x01\x00\x01\x0a\x01\x02\x03\x01\xbb", 10));
  Tunnel v6(socks(), "::1", 443);
  std::string s6;
  CHECK(run(v6, ok, 7, &s6, &used) == Tunnel::Status::Done);
  CHECK_EQ(s6[6], '\x04');
}

TEST(tunnel_socks5_auth_and_failures) {
  Tunnel t(socks("carol", "pa55"), "h", 80);
  std::string sent;
  size_t used = 0;
  std::string answer = std::string("\x05\x02", 2) + std::string("\x01\x00", 2) +
                       std::string("\x05\x00\x00\x03\x01x\x00\x50", 8);
  CHECK(run(t, answer, 1, &sent, &used) == Tunnel::Status::Done);
  CHECK(sent.find(std::string("\x05\x02\x00\x02", 4)) == 0);
  CHECK(sent.find(std::string("\x01\x05", 2) + "carol" + std::string("\x04", 1) + "pa55") != std::string::npos);
  Tunnel bad(socks("carol", "x"), "h", 80);
  std::string s2;
  CHECK(run(bad, std::string("\x05\x02\x01\x01", 4), 1, &s2, &used) == Tunnel::Status::Failed);
  CHECK(bad.error() == Error::Proxy);
  Tunnel needs(socks(), "h", 80);
  CHECK(run(needs, std::string("\x05\x02", 2), 2, &s2, &used) == Tunnel::Status::Failed);
  Tunnel refused(socks(), "h", 80);
  CHECK(run(refused, std::string("\x05\x00\x05\x05\x00\x01", 6), 2, &s2, &used) == Tunnel::Status::Failed);
  CHECK_EQ(refused.proxy_status(), 5);
  Tunnel notsocks(socks(), "h", 80);
  CHECK(run(notsocks, "HTTP/1.1 400 Bad\r\n\r\n", 50, &s2, &used) == Tunnel::Status::Failed);
  Tunnel badtype(socks(), "h", 80);
  CHECK(run(badtype, std::string("\x05\x00\x05\x00\x00\x09\x00", 7), 50, &s2, &used) == Tunnel::Status::Failed);
}

TEST(tunnel_basic_credentials) {
  CHECK_EQ(basic_credentials("a", ""), std::string("Basic YTo="));
  CHECK_EQ(basic_credentials("ab", "c"), std::string("Basic YWI6Yw=="));
  CHECK_EQ(basic_credentials("user", "pass"), std::string("Basic dXNlcjpwYXNz"));
}
