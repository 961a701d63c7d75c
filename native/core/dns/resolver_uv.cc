#include "dns/resolver_uv.h"

#include <cstring>
#include <vector>

namespace uvf::dns {

void UvResolver::resolve(const std::string& host, int family, uint64_t lookup_id) {
  if (cancelled_) {
    Answer a;
    a.error = Error::Aborted;
    listener_->on_answer(lookup_id, a);
    return;
  }
  auto* r = new Req{};
  r->owner = this;
  r->lookup_id = lookup_id;
  addrinfo hints{};
  hints.ai_family = family == 4 ? AF_INET : family == 6 ? AF_INET6 : AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int rc = uv_getaddrinfo(loop_, &r->req, on_getaddrinfo, host.c_str(), nullptr, &hints);
  if (rc != 0) {
    delete r;
    Answer a;
    a.error = error_from_uv(rc);
    if (a.error != Error::DnsNotFound && a.error != Error::DnsTemporary) a.error = Error::DnsFailed;
    listener_->on_answer(lookup_id, a);
    return;
  }
  reqs_.insert(r);
  listener_->on_request_started();
}

void UvResolver::cancel_all() {
  cancelled_ = true;
  for (Req* r : reqs_) uv_cancel(reinterpret_cast<uv_req_t*>(&r->req));  // fails if already running
}

void UvResolver::on_getaddrinfo(uv_getaddrinfo_t* req, int status, addrinfo* res) {
  auto* r = reinterpret_cast<Req*>(req);  // req is the first member
  UvResolver* self = r->owner;
  const uint64_t id = r->lookup_id;
  self->reqs_.erase(r);
  delete r;
  if (!self->cancelled_) {
    Answer a;
    if (status != 0) {
      a.error = error_from_uv(status);
      if (a.error != Error::DnsNotFound && a.error != Error::DnsTemporary) a.error = Error::DnsFailed;
    } else {
      for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
        if (ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
        Address addr;
        std::memset(&addr, 0, sizeof addr);
        std::memcpy(&addr.addr, ai->ai_addr, ai->ai_addrlen);
        bool dup = false;  // getaddrinfo repeats an address per socktype/protocol on some systems
        for (const Address& x : a.addrs) {
          if (std::memcmp(&x.addr, &addr.addr, sizeof addr.addr) == 0) dup = true;
        }
        if (!dup) a.addrs.push_back(addr);
      }
      if (a.addrs.empty()) a.error = Error::DnsNotFound;
    }
    uv_freeaddrinfo(res);
    self->listener_->on_answer(id, a);
  } else {
    uv_freeaddrinfo(res);
  }
  self->listener_->on_request_done();  // last: the owner may finish closing from here
}

}  // namespace uvf::dns
