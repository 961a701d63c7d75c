// A socket-less stand-in for TcpSocket, for benchmarks of everything above the kernel: it
// "connects" at once, answers every complete request head written to it with one canned response,
// and delivers bytes from a uv_idle callback (never from inside write(), like a real socket).
// Injected through EngineOptions::socket_factory = memory_socket_factory(response) (bench/micro.mjs:
// the submit→complete crossing with the socket faked out; the fuzzers; the TSan tests). Requests
// with bodies are not supported.
#pragma once
#include <string>

#include "net/tcp_socket.h"

namespace uvf {

class MemorySocket final : public TcpSocket {
 public:
  MemorySocket(uv_loop_t* loop, Handler* handler, const std::string* response);
  ~MemorySocket() override;

  int connect(const sockaddr* addr, const SocketOptions& opts) override;
  int write(const char* a, size_t alen, const char* b = nullptr, size_t blen = 0) override;
  size_t queued_bytes() const override { return 0; }
  int read_start() override;
  void read_stop() override;
  bool probe_idle_alive() const override { return initialized_ && !closing_; }
  ssize_t read_now(char* buf, size_t cap) override {
    (void)buf, (void)cap;
    return initialized_ && !closing_ ? 0 : UV_EOF;
  }
  void set_ref(bool ref) override;
  void close(bool abortive) override;

 private:
  static void on_idle(uv_idle_t* h);
  void feed(const char* p, size_t n);
  void wake();

  const std::string* response_;
  uv_idle_t idle_;
  std::string partial_;  // request bytes not yet ending in CRLF CRLF
  size_t owed_ = 0;      // responses to deliver
  bool connect_pending_ = false;
  bool ref_ = true;
};

// A factory of MemorySockets that all answer with `response` (non-empty), for
// EngineOptions::socket_factory.
SocketFactory memory_socket_factory(std::string response);

}  // namespace uvf
