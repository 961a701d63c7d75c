// Drives the HTTP/2 codec against a real server (nghttpd, h2c with prior knowledge on 127.0.0.1)
// over a plain blocking socket with poll(): no uvfetch engine involved. Run by h2_peer_check.sh,
// which starts nghttpd, serves <docroot>, and afterwards checks nghttpd's own frame log.
//
//   h2_peer_check <port> <docroot>     exit status 0 when every check passed
//
// Scenarios, one connection:
//   1. 100 GETs in flight at once (small.txt, medium.bin), bodies compared with the files;
//   2. big.bin on two streams, one paused: the other completes while the paused one holds at most
//      one stream window; then resumed, it completes too;
//   3. a big download cancelled mid-way (RST_STREAM CANCEL), then one more request on the same
//      connection; 4. PING round trip; 5. GOAWAY from us and a clean end.
// Prints the codec's fingerprint() as "FINGERPRINT <akamai string>" for the script to compare with
// what nghttpd logged.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "http2/h2_session.h"

using namespace uvf;
using namespace uvf::http2;

namespace {

int failures = 0;
#define EXPECT(c)                                                        \
  do {                                                                   \
    if (!(c)) {                                                          \
      std::fprintf(stderr, "h2_peer_check:%d: FAILED %s\n", __LINE__, #c); \
      ++failures;                                                        \
    }                                                                    \
  } while (0)

std::string read_file(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct L : H2Listener {
  struct S {
    int status = 0;
    std::string body;
    bool closed = false;
    StreamEnd end;
  };
  std::map<int32_t, S> s;
  int pongs = 0;
  void on_response_headers(int32_t id, int st, const HeaderList&) override { s[id].status = st; }
  void on_data(int32_t id, const uint8_t* d, size_t n) override { s[id].body.append((const char*)d, n); }
  void on_stream_close(int32_t id, const StreamEnd& e) override {
    s[id].closed = true;
    s[id].end = e;
  }
  void on_ping(bool ack, uint64_t v) override {
    if (ack && v == 0x1122334455667788ull) ++pongs;
  }
};

int fd = -1;
bool eof = false;

// Moves bytes until done() or the deadline; false on timeout / socket error.
template <typename F>
bool run(H2Session& c, F done, int timeout_ms = 10000) {
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!done()) {
    if (std::chrono::steady_clock::now() > until || eof || c.failed()) return done();
    auto out = c.output();
    pollfd p{fd, short(POLLIN | (out.second ? POLLOUT : 0)), 0};
    if (poll(&p, 1, 100) < 0) return false;
    if ((p.revents & POLLOUT) && out.second) {
      ssize_t w = send(fd, out.first, out.second, MSG_NOSIGNAL);
      if (w < 0) return false;
      c.consume_output(size_t(w));
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      uint8_t buf[65536];
      ssize_t r = recv(fd, buf, sizeof buf, 0);
      if (r <= 0) {
        eof = true;
        c.transport_closed(Error::SocketClosed, "EOF");
        return done();
      }
      c.feed(buf, size_t(r));
    }
  }
  return true;
}

int32_t get(H2Session& c, const char* path) {
  RequestHead r;
  r.method = "GET";
  r.scheme = "http";
  r.authority = "127.0.0.1";
  r.path = path;
  Header hs[] = {{"User-Agent", "uvfetch-h2-peer-check"}, {"Accept", "*/*"}};
  r.headers = hs;
  r.header_count = 2;
  Error e;
  std::string why;
  int32_t id = c.submit_request(r, &e, &why);
  if (id < 0) std::fprintf(stderr, "submit failed: %s %s\n", error_code(e), why.c_str());
  return id;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: h2_peer_check <port> <docroot>\n");
    return 2;
  }
  std::string root = argv[2];
  std::string small = read_file(root + "/small.txt"), medium = read_file(root + "/medium.bin"),
              big = read_file(root + "/big.bin");
  fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(std::atoi(argv[1])));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (sockaddr*)&a, sizeof a) != 0) {
    std::perror("connect");
    return 1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  SessionOptions o;  // Chrome's Akamai fingerprint, with PRIORITY frames added to see them logged
  o.settings = {{1, 65536}, {2, 0}, {4, 6291456}, {6, 262144}};
  o.connection_window_increment = 15663105;
  o.headers_priority = true;
  o.headers_priority_spec = {0, 0, 256, true};
  o.priority_frames = {{3, 0, 201, false}, {5, 0, 101, false}};
  L l;
  Error e;
  std::string why;
  auto c = H2Session::create(o, &l, &e, &why);
  if (!c) {
    std::fprintf(stderr, "create: %s %s\n", error_code(e), why.c_str());
    return 1;
  }

  // 1. 100 streams at once
  std::map<int32_t, const std::string*> want;
  for (int i = 0; i < 100; ++i) {
    int32_t id = get(*c, i % 2 ? "/small.txt" : "/medium.bin");
    want[id] = i % 2 ? &small : &medium;
  }
  EXPECT(run(*c, [&] {
    for (auto& w : want)
      if (!l.s[w.first].closed) return false;
    return true;
  }));
  int ok = 0;
  for (auto& w : want)
    if (l.s[w.first].status == 200 && l.s[w.first].end.error == Error::Ok && l.s[w.first].body == *w.second) ++ok;
  std::printf("many streams: %d/100 ok, server max concurrent %u\n", ok, c->remote_max_concurrent_streams());
  EXPECT(ok == 100);

  // 2. paused stream
  int32_t pa = get(*c, "/big.bin");
  int32_t pb = get(*c, "/big.bin");
  c->set_paused(pa, true);
  EXPECT(run(*c, [&] { return l.s[pb].closed; }));
  // give the paused stream time to receive whatever the server would still send it
  run(*c, [] { return false; }, 300);
  size_t held = l.s[pa].body.size();
  std::printf("paused stream: other stream got %zu bytes, paused one holds %zu (window 6291456)\n",
              l.s[pb].body.size(), held);
  EXPECT(l.s[pb].body == big);
  EXPECT(!l.s[pa].closed);
  EXPECT(held <= 6291456);
  c->set_paused(pa, false);
  EXPECT(run(*c, [&] { return l.s[pa].closed; }));
  EXPECT(l.s[pa].body == big);

  // 3. cancel mid-way, the connection stays
  int32_t cx = get(*c, "/big.bin");
  EXPECT(run(*c, [&] { return l.s[cx].body.size() > 100000; }));
  c->reset_stream(cx);
  EXPECT(run(*c, [&] { return l.s[cx].closed; }));
  EXPECT(l.s[cx].end.error == Error::Aborted);
  int32_t after = get(*c, "/small.txt");
  EXPECT(run(*c, [&] { return l.s[after].closed; }));
  EXPECT(l.s[after].body == small && l.s[after].end.error == Error::Ok);

  // 4. PING
  EXPECT(c->ping(0x1122334455667788ull));
  EXPECT(run(*c, [&] { return l.pongs == 1; }));

  // 5. GOAWAY from us
  c->goaway();
  run(*c, [&] { return !c->want_write(); }, 2000);
  EXPECT(!c->failed());
  std::printf("FINGERPRINT %s\n", c->fingerprint().c_str());
  close(fd);
  std::printf("h2_peer_check: %s (%d failures)\n", failures ? "FAILED" : "ok", failures);
  return failures ? 1 : 0;
}
