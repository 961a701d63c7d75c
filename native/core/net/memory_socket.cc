#include "net/memory_socket.h"

#include <cstring>

namespace uvf {

MemorySocket::MemorySocket(uv_loop_t* loop, Handler* handler, const std::string* response)
    : TcpSocket(loop, handler, nullptr), response_(response) {
  uv_idle_init(loop, &idle_);
  idle_.data = this;
}

MemorySocket::~MemorySocket() = default;  // only deleted after on_closed (the idle handle is closed)

void MemorySocket::wake() {
  if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&idle_))) uv_idle_start(&idle_, on_idle);
  if (!ref_) uv_unref(reinterpret_cast<uv_handle_t*>(&idle_));
}

int MemorySocket::connect(const sockaddr*, const SocketOptions&) {
  initialized_ = true;
  connect_pending_ = true;
  wake();
  return 0;
}

int MemorySocket::write(const char* a, size_t alen, const char* b, size_t blen) {
  if (closing_) return UV_EPIPE;
  feed(a, alen);
  if (blen > 0) feed(b, blen);
  if (owed_ > 0) wake();
  return 0;
}

// Counts complete request heads (CRLF CRLF), across writes.
void MemorySocket::feed(const char* p, size_t n) {
  partial_.append(p, n);
  size_t pos;
  while ((pos = partial_.find("\r\n\r\n")) != std::string::npos) {
    ++owed_;
    partial_.erase(0, pos + 4);
  }
}

int MemorySocket::read_start() {
  reading_ = true;
  if (owed_ > 0) wake();
  return 0;
}

void MemorySocket::read_stop() { reading_ = false; }

void MemorySocket::set_ref(bool ref) {
  ref_ = ref;
  if (ref) {
    uv_ref(reinterpret_cast<uv_handle_t*>(&idle_));
  } else {
    uv_unref(reinterpret_cast<uv_handle_t*>(&idle_));
  }
}

void MemorySocket::on_idle(uv_idle_t* h) {
  auto* self = static_cast<MemorySocket*>(h->data);
  uv_idle_stop(h);
  if (self->closing_) return;
  if (self->connect_pending_) {
    self->connect_pending_ = false;
    self->handler_->on_connect(0);
    if (self->closing_) return;
  }
  while (self->owed_ > 0 && self->reading_ && !self->closing_) {
    --self->owed_;
    self->handler_->on_data(self->response_->data(), self->response_->size());
  }
}

void MemorySocket::close(bool) {
  if (closing_) return;
  closing_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&idle_), [](uv_handle_t* h) {
    auto* self = static_cast<MemorySocket*>(h->data);
    self->handler_->on_closed();
  });
}

SocketFactory memory_socket_factory(std::string response) {
  auto shared = std::make_shared<const std::string>(std::move(response));
  return [shared](uv_loop_t* loop, TcpSocket::Handler* handler, ReadBuffer*) -> std::unique_ptr<TcpSocket> {
    return std::make_unique<MemorySocket>(loop, handler, shared.get());
  };
}

}  // namespace uvf
