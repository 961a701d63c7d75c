// Micro-benchmarks of the HTTP/1 codec on recorded responses (no I/O, no Node):
// response-head parsing (MB/s and heads/s), chunked framing (the decoder hands back views of the
// data without touching it, so its MB/s is framing cost, not a copy), request-head encoding
// (requests/s). Built and run by `npm run bench:codec` (-O2 -DNDEBUG).
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "http1/chunked_decoder.h"
#include "http1/request_encoder.h"
#include "http1/response_parser.h"

using namespace uvf::http1;
using Clock = std::chrono::steady_clock;

namespace {

volatile size_t g_sink;  // keeps results observable so the work is not optimised away

template <typename F>
double seconds_for(size_t iterations, F&& f) {
  auto t0 = Clock::now();
  for (size_t i = 0; i < iterations; ++i) f();
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Runs f enough times to take at least ~0.5 s; returns iterations per second.
template <typename F>
double rate(F&& f) {
  size_t n = 1000;
  for (;;) {
    double s = seconds_for(n, f);
    if (s > 0.5) return static_cast<double>(n) / s;
    n *= 2;
  }
}

}  // namespace

int main() {
  const std::vector<std::pair<const char*, std::string>> heads = {
      {"minimal (2 headers)", "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\n"},
      {"typical (10 headers)",
       "HTTP/1.1 200 OK\r\nDate: Wed, 25 Nov 2026 12:00:00 GMT\r\nServer: nginx/1.22.1\r\n"
       "Content-Type: application/json; charset=utf-8\r\nContent-Length: 1234\r\nConnection: keep-alive\r\n"
       "Keep-Alive: timeout=5\r\nCache-Control: private, max-age=0, no-cache\r\nETag: \"5f2b-1a2b3c4d5e\"\r\n"
       "Vary: Accept-Encoding, Origin\r\nX-Request-Id: 7f9c2ba4e88f827d616045507605853e\r\n\r\n"},
      {"cookies (25 headers)", [] {
         std::string h = "HTTP/1.1 302 Found\r\nLocation: https://example.test/next?a=1&b=2\r\nContent-Length: 0\r\n";
         for (int i = 0; i < 23; ++i) {
           h += "Set-Cookie: session_" + std::to_string(i) +
                "=abcdefghijklmnopqrstuvwxyz0123456789; Path=/; HttpOnly; Secure; SameSite=Lax\r\n";
         }
         return h + "\r\n";
       }()},
  };
  std::printf("%-24s %12s %12s\n", "response head", "heads/s", "MB/s");
  for (const auto& [name, h] : heads) {
    ParseLimits lim;
    ResponseHead head{};
    double r = rate([&] {
      ParseError err;
      parse_response_head(h.data(), h.size(), 0, lim, &head, nullptr, 0, &err);
      g_sink = head.head_len;
    });
    std::printf("%-24s %12.0f %12.1f\n", name, r, r * static_cast<double>(h.size()) / 1e6);
  }

  // Chunked body: 64 KiB in 4 KiB chunks, decoded in one feed loop.
  std::string chunked;
  for (int i = 0; i < 16; ++i) chunked += "1000\r\n" + std::string(4096, 'x') + "\r\n";
  chunked += "0\r\n\r\n";
  double cr = rate([&] {
    ChunkedDecoder d;
    const char* p = chunked.data();
    size_t n = chunked.size();
    size_t body = 0;
    while (n > 0 && !d.done()) {
      auto s = d.feed(p, n);
      body += s.data_len;
      p += s.consumed;
      n -= s.consumed;
    }
    g_sink = body;
  });
  std::printf("%-24s %12.0f %12.1f\n", "chunked 64 KiB (views)", cr, cr * static_cast<double>(chunked.size()) / 1e6);

  // Request heads: a GET without user headers, and a POST with 6 headers.
  std::string out;
  out.reserve(1024);
  RequestHead get{};
  get.method = "GET";
  get.target = "/api/v1/items/12345?fields=id,name";
  get.host = "127.0.0.1:8080";
  get.user_agent = "uvfetch/0.1.0";
  double gr = rate([&] {
    out.clear();
    encode_request_head(get, &out, nullptr, nullptr);
    g_sink = out.size();
  });
  const std::string_view hv[] = {"content-type", "application/json", "accept", "application/json",
                                 "authorization", "Bearer abcdefghijklmnopqrstuvwxyz0123456789",
                                 "x-request-id", "7f9c2ba4e88f827d616045507605853e",
                                 "accept-language", "en-GB,en;q=0.9", "cache-control", "no-cache"};
  RequestHead post = get;
  post.method = "POST";
  post.headers = hv;
  post.header_pairs = 6;
  post.body_mode = BodyMode::Length;
  post.content_length = 512;
  double pr = rate([&] {
    out.clear();
    encode_request_head(post, &out, nullptr, nullptr);
    g_sink = out.size();
  });
  std::printf("%-24s %12s\n", "request head", "requests/s");
  std::printf("%-24s %12.0f\n", "GET, no user headers", gr);
  std::printf("%-24s %12.0f\n", "POST, 6 headers", pr);
  return 0;
}
