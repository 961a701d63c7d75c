// The default DNS resolver: uv_getaddrinfo on libuv's thread pool (the system resolver: hosts
// file, nsswitch, search domains). Gives no record TTLs, so the cache applies its default TTL.
// Lives as long as its owner's loop handles; requests it started may outlive cancel_all() (a
// getaddrinfo already running on the thread pool cannot be cancelled) but never its owner: the
// owner waits for Listener::on_request_done of each before going away.
#pragma once
#include <uv.h>

#include <cstdint>
#include <string>
#include <unordered_set>

#include "dns/dns_cache.h"

namespace uvf::dns {

class UvResolver final : public Resolver {
 public:
  class Listener {
   public:
    virtual ~Listener() = default;
    // A getaddrinfo request was handed to the thread pool / came back from it (answered or not).
    virtual void on_request_started() = 0;
    virtual void on_request_done() = 0;
    // The answer for lookup_id. Not called after cancel_all().
    virtual void on_answer(uint64_t lookup_id, const Answer& a) = 0;
  };

  UvResolver(uv_loop_t* loop, Listener* listener) : loop_(loop), listener_(listener) {}
  UvResolver(const UvResolver&) = delete;
  UvResolver& operator=(const UvResolver&) = delete;
  ~UvResolver() override = default;

  // Resolver: family 0 (any), 4 or 6. Failing to even start answers synchronously with an error.
  void resolve(const std::string& host, int family, uint64_t lookup_id) override;
  // Asks libuv to cancel every request still queued; no answer is delivered from now on.
  void cancel_all();
  size_t outstanding() const { return reqs_.size(); }

 private:
  struct Req {
    uv_getaddrinfo_t req;  // first member: the callback casts back
    UvResolver* owner;
    uint64_t lookup_id;
  };
  static void on_getaddrinfo(uv_getaddrinfo_t* req, int status, addrinfo* res);

  uv_loop_t* loop_;
  Listener* listener_;
  std::unordered_set<Req*> reqs_;
  bool cancelled_ = false;
};

}  // namespace uvf::dns
