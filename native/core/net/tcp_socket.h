// Non-blocking TCP socket on a borrowed uv_loop_t: connect (v4/v6, optional bind), reads into a
// shared per-loop buffer, writes that try the kernel first and queue only the unsent remainder,
// liveness probe, graceful or abortive close. Callbacks go to one Handler; the handler is told
// `on_closed` exactly once, after which the socket may be deleted (never earlier).
#pragma once
#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace uvf {

struct SocketOptions {
  bool no_delay = true;          // TCP_NODELAY
  unsigned keep_alive_ms = 0;    // TCP keep-alive initial delay; 0 = off
  const sockaddr* local = nullptr;  // optional local address to bind before connecting
};

// A read buffer shared by every socket of one engine: reads are consumed synchronously in
// the read callback, so one buffer per loop suffices and no per-read allocation happens.
struct ReadBuffer {
  static constexpr size_t kSize = 64 * 1024;
  char data[kSize];
  bool in_use = false;
};

class TcpSocket {
 public:
  class Handler {
   public:
    virtual ~Handler() = default;
    virtual void on_connect(int status) = 0;            // 0 or a negative uv error
    virtual void on_data(const char* p, size_t n) = 0;   // bytes are only valid during the call
    virtual void on_read_end(int status) = 0;            // UV_EOF or a negative uv error
    virtual void on_write_drained(int status) = 0;       // queued writes all done (or failed)
    virtual void on_closed() = 0;                        // handle closed; delete is now allowed
    // shutdown() finished: queued writes went out, then the FIN (0 or a negative uv error).
    virtual void on_shutdown(int status) { (void)status; }
    // Optional: a buffer of *size bytes of the handler's own for the next read (on_data then
    // points into it, and the handler owns it again), or nullptr for the shared ReadBuffer. A
    // block that received nothing comes back through read_block_unused.
    virtual char* read_block(size_t* size) {
      (void)size;
      return nullptr;
    }
    virtual void read_block_unused(char* block) { (void)block; }
  };

  TcpSocket(uv_loop_t* loop, Handler* handler, ReadBuffer* rbuf);
  virtual ~TcpSocket();
  TcpSocket(const TcpSocket&) = delete;
  TcpSocket& operator=(const TcpSocket&) = delete;

  // Creates the socket and starts connecting. Returns 0 or a negative uv error (then call close()).
  virtual int connect(const sockaddr* addr, const SocketOptions& opts);
  // Writes a then b (either may be empty). Returns 0 or a negative uv error. Data is copied only if
  // the kernel does not take it all at once, so callers may free their buffers after the call.
  virtual int write(const char* a, size_t alen, const char* b = nullptr, size_t blen = 0);
  virtual size_t queued_bytes() const { return queued_bytes_; }
  // Half-close: after the queued writes, sends a FIN (reading goes on); on_shutdown reports it.
  // Returns 0 or a negative uv error. Writes after it fail.
  int shutdown();
  virtual int read_start();
  virtual void read_stop();
  bool reading() const { return reading_; }
  // True when the peer has not closed or sent anything: a non-blocking MSG_PEEK sees EAGAIN.
  virtual bool probe_idle_alive() const;
  // Reads what the kernel holds right now, without waiting and outside libuv's read callback
  // (which later finds nothing and carries on). Returns the bytes read (> 0), 0 when nothing is
  // waiting, UV_EOF when the peer closed, or another negative uv error.
  virtual ssize_t read_now(char* buf, size_t cap);
  // Keeps (or stops keeping) the event loop alive on this socket's account.
  virtual void set_ref(bool ref);
  // Closes the handle. abortive=true sends RST (SO_LINGER 0) instead of FIN. Idempotent.
  virtual void close(bool abortive);
  bool closing() const { return closing_; }
  // A descriptor was created for this socket (connect() got past socket creation).
  bool opened() const { return initialized_; }
  // After on_closed, makes the object usable for a new connect() (next address of a host).
  void reset();
  // Routes later callbacks to h (a connection race hands its winning socket over).
  void set_handler(Handler* h) { handler_ = h; }
  int fd() const;

 protected:
  // For MemorySocket (net/memory_socket.h), the socket-less stand-in the benchmarks use.
  uv_loop_t* loop_;
  Handler* handler_;
  bool initialized_ = false;
  bool reading_ = false;
  bool closing_ = false;

 private:
  struct WriteReq;
  static void on_connect_cb(uv_connect_t* req, int status);
  static void on_alloc_cb(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void on_read_cb(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void on_write_cb(uv_write_t* req, int status);
  static void on_close_cb(uv_handle_t* h);
  static void on_shutdown_cb(uv_shutdown_t* req, int status);

  ReadBuffer* rbuf_;
  uv_tcp_t tcp_;
  uv_connect_t connect_req_;
  uv_shutdown_t shutdown_req_;
  size_t queued_bytes_ = 0;
  unsigned pending_writes_ = 0;
  bool shut_down_ = false;
};

// Makes the socket a connection dials through (EngineOptions::socket_factory): the seam where
// benchmarks and fuzzers put a socket-less stand-in (net/memory_socket.h) under the real stack.
using SocketFactory = std::function<std::unique_ptr<TcpSocket>(uv_loop_t* loop, TcpSocket::Handler* handler, ReadBuffer* rbuf)>;

}  // namespace uvf
