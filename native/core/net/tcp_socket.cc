#include "net/tcp_socket.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace uvf {

struct TcpSocket::WriteReq {
  uv_write_t req;
  TcpSocket* owner;
  size_t len;
  char data[1];  // flexible tail holding the unsent bytes
};

TcpSocket::TcpSocket(uv_loop_t* loop, Handler* handler, ReadBuffer* rbuf)
    : loop_(loop), handler_(handler), rbuf_(rbuf) {
  std::memset(&tcp_, 0, sizeof(tcp_));
  std::memset(&connect_req_, 0, sizeof(connect_req_));
  std::memset(&shutdown_req_, 0, sizeof(shutdown_req_));
}

TcpSocket::~TcpSocket() = default;

void TcpSocket::reset() {
  std::memset(&tcp_, 0, sizeof(tcp_));
  std::memset(&connect_req_, 0, sizeof(connect_req_));
  queued_bytes_ = 0;
  pending_writes_ = 0;
  initialized_ = false;
  reading_ = false;
  closing_ = false;
  shut_down_ = false;
}

int TcpSocket::connect(const sockaddr* addr, const SocketOptions& opts) {
  int r = uv_tcp_init_ex(loop_, &tcp_, addr->sa_family);
  if (r != 0) return r;
  initialized_ = true;
  tcp_.data = this;
  if (opts.no_delay) uv_tcp_nodelay(&tcp_, 1);
  if (opts.keep_alive_ms > 0) uv_tcp_keepalive(&tcp_, 1, (opts.keep_alive_ms + 999) / 1000);
  if (opts.local != nullptr) {
    r = uv_tcp_bind(&tcp_, opts.local, 0);
    if (r != 0) return r;
  }
  connect_req_.data = this;
  return uv_tcp_connect(&connect_req_, &tcp_, addr, on_connect_cb);
}

void TcpSocket::on_connect_cb(uv_connect_t* req, int status) {
  auto* self = static_cast<TcpSocket*>(req->data);
  if (status == UV_ECANCELED || self->closing_) return;  // closed while connecting
  self->handler_->on_connect(status);
}

int TcpSocket::write(const char* a, size_t alen, const char* b, size_t blen) {
  if (closing_ || shut_down_) return UV_EPIPE;
  uv_buf_t bufs[2];
  unsigned n = 0;
  if (alen) bufs[n++] = uv_buf_init(const_cast<char*>(a), static_cast<unsigned>(alen));
  if (blen) bufs[n++] = uv_buf_init(const_cast<char*>(b), static_cast<unsigned>(blen));
  if (n == 0) return 0;
  size_t total = alen + blen;
  size_t done = 0;
  // Only try the kernel directly when nothing is queued: otherwise bytes would be reordered.
  if (pending_writes_ == 0) {
    int w = uv_try_write(reinterpret_cast<uv_stream_t*>(&tcp_), bufs, n);
    if (w >= 0) {
      done = static_cast<size_t>(w);
    } else if (w != UV_EAGAIN && w != UV_ENOSYS) {
      return w;
    }
    if (done == total) return 0;
  }
  size_t rest = total - done;
  auto* wr = static_cast<WriteReq*>(std::malloc(sizeof(WriteReq) + rest));
  if (wr == nullptr) return UV_ENOMEM;
  wr->owner = this;
  wr->len = rest;
  // Copy the unsent remainder (skipping `done` bytes across the two source buffers).
  char* dst = wr->data;
  if (done < alen) {
    std::memcpy(dst, a + done, alen - done);
    dst += alen - done;
    if (blen) std::memcpy(dst, b, blen);
  } else {
    std::memcpy(dst, b + (done - alen), blen - (done - alen));
  }
  uv_buf_t one = uv_buf_init(wr->data, static_cast<unsigned>(rest));
  int r = uv_write(&wr->req, reinterpret_cast<uv_stream_t*>(&tcp_), &one, 1, on_write_cb);
  if (r != 0) {
    std::free(wr);
    return r;
  }
  ++pending_writes_;
  queued_bytes_ += rest;
  return 0;
}

void TcpSocket::on_write_cb(uv_write_t* req, int status) {
  auto* wr = reinterpret_cast<WriteReq*>(req);
  TcpSocket* self = wr->owner;
  self->queued_bytes_ -= wr->len;
  --self->pending_writes_;
  std::free(wr);
  if (self->closing_) return;
  if (status != 0 || self->pending_writes_ == 0) self->handler_->on_write_drained(status);
}

int TcpSocket::shutdown() {
  if (closing_ || !initialized_) return UV_ENOTCONN;
  if (shut_down_) return 0;
  shutdown_req_.data = this;
  int r = uv_shutdown(&shutdown_req_, reinterpret_cast<uv_stream_t*>(&tcp_), on_shutdown_cb);
  if (r == 0) shut_down_ = true;
  return r;
}

void TcpSocket::on_shutdown_cb(uv_shutdown_t* req, int status) {
  auto* self = static_cast<TcpSocket*>(req->data);
  if (status == UV_ECANCELED || self->closing_) return;  // closed before the FIN went out
  self->handler_->on_shutdown(status);
}

int TcpSocket::read_start() {
  if (closing_) return UV_EPIPE;
  if (reading_) return 0;
  int r = uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), on_alloc_cb, on_read_cb);
  if (r == 0) reading_ = true;
  return r;
}

void TcpSocket::read_stop() {
  if (!reading_ || closing_) return;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
  reading_ = false;
}

void TcpSocket::on_alloc_cb(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* self = static_cast<TcpSocket*>(h->data);
  size_t n = 0;
  if (char* own = self->handler_->read_block(&n)) {
    *buf = uv_buf_init(own, static_cast<unsigned>(n));
    return;
  }
  // The shared buffer is free whenever no read callback is running (reads are not re-entrant).
  *buf = uv_buf_init(self->rbuf_->data, static_cast<unsigned>(ReadBuffer::kSize));
}

void TcpSocket::on_read_cb(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<TcpSocket*>(s->data);
  const bool own = buf != nullptr && buf->base != nullptr && buf->base != self->rbuf_->data;
  if (self->closing_ || nread <= 0) {
    if (own) self->handler_->read_block_unused(buf->base);
    if (self->closing_) return;
  }
  if (nread > 0) {
    self->handler_->on_data(buf->base, static_cast<size_t>(nread));
  } else if (nread < 0) {
    self->read_stop();
    self->handler_->on_read_end(static_cast<int>(nread));
  }
}

bool TcpSocket::probe_idle_alive() const {
  if (closing_ || !initialized_) return false;
  uv_os_fd_t fd;
  if (uv_fileno(reinterpret_cast<const uv_handle_t*>(&tcp_), &fd) != 0) return false;
  char c;
  ssize_t r;
  do {
    r = ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  } while (r < 0 && errno == EINTR);
  // 0 = orderly shutdown by the peer; >0 = unsolicited bytes; error other than EAGAIN = dead.
  return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

ssize_t TcpSocket::read_now(char* buf, size_t cap) {
  if (closing_ || !initialized_) return UV_EOF;
  uv_os_fd_t fd;
  if (uv_fileno(reinterpret_cast<const uv_handle_t*>(&tcp_), &fd) != 0) return UV_EBADF;
  ssize_t r;
  do {
    r = ::recv(fd, buf, cap, MSG_DONTWAIT);
  } while (r < 0 && errno == EINTR);
  if (r > 0) return r;
  if (r == 0) return UV_EOF;
  if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
  return uv_translate_sys_error(errno);
}

void TcpSocket::set_ref(bool ref) {
  if (!initialized_ || closing_) return;
  if (ref) {
    uv_ref(reinterpret_cast<uv_handle_t*>(&tcp_));
  } else {
    uv_unref(reinterpret_cast<uv_handle_t*>(&tcp_));
  }
}

int TcpSocket::fd() const {
  uv_os_fd_t fd;
  if (!initialized_ || uv_fileno(reinterpret_cast<const uv_handle_t*>(&tcp_), &fd) != 0) return -1;
  return fd;
}

void TcpSocket::close(bool abortive) {
  if (closing_) return;
  closing_ = true;
  reading_ = false;
  if (!initialized_) {
    // Nothing was ever opened: report closure on the next close-callback-equivalent path.
    // Callers treat on_closed uniformly, so call it directly; it must not re-enter close().
    handler_->on_closed();
    return;
  }
  auto* h = reinterpret_cast<uv_handle_t*>(&tcp_);
  if (abortive && uv_tcp_close_reset(&tcp_, on_close_cb) == 0) return;
  uv_close(h, on_close_cb);
}

void TcpSocket::on_close_cb(uv_handle_t* h) {
  auto* self = static_cast<TcpSocket*>(h->data);
  self->handler_->on_closed();
}

}  // namespace uvf
