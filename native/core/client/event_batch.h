// The native → JS event wire, encoder side (decoder: lib/native/wire.ts). An EventBatch holds the
// records raised during one or more loop turns; the binding hands it to JS in one call. Used by
// the binding on the main loop and by EngineThread on an I/O thread, so the format is one.
//
// A record is a 24-byte header of six little-endian u32 — type, id, a, b, n1, n2 — followed by n1
// bytes of payload 1 and n2 bytes of payload 2. A payload above kBigPayload travels as its own
// buffer in `bigs` and `b` holds its 1-based index there.
// No libuv, no N-API: plain bytes (test/unit/wire.test.ts reads the kEv constants below).
#pragma once
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "base/errors.h"
#include "client/request.h"

namespace uvf {

using RawId = uint32_t;  // as client/raw_connection.h
struct ResponseMeta;
struct RequestTimings;
struct RawOpenInfo;
namespace tls {
struct SessionInfo;
}
namespace dns {
struct Address;
}

// Record types of the batch delivered to JS (lib/native/wire.ts; test/unit/wire.test.ts checks they agree).
enum : uint32_t {
  kEvComplete = 1,
  kEvHead = 2,
  kEvData = 3,
  kEvEnd = 4,
  kEvError = 5,
  kEvDrain = 6,
  kEvClosed = 7,
  kEvTimings = 8,
  kEvTlsInfo = 9,    // id = TLS info id; payload = NUL-separated fields (lib/tls/info.ts)
  kEvTlsForget = 10, // id = TLS info id: its connection closed
  kEvTlsRef = 11,    // id = request id, a = TLS info id, b = HTTP/2 info id; precedes that request's Complete/Head
  kEvDnsLookup = 12,  // id/a = lookup id (low/high 32 bits), b = family, p1 = host
  kEvDnsResult = 13, // id = query id, a = error index, p1 = addresses, comma-separated
  kEvH2Info = 14,    // id = HTTP/2 info id; p1 = the connection's Akamai fingerprint
  kEvH2Forget = 15,  // id = HTTP/2 info id: its connection closed
  kEvTrailers = 16,  // id = request id, p1 = trailer fields ("name: value\r\n"); precedes Complete/End
  // Raw sockets (id = raw socket id):
  kEvRawOpen = 20,    // a = remote port | local port << 16, b = TLS info id, p1 = "remote\0local"
  kEvRawData = 21,    // b = big payload index (1-based) or 0 with the bytes in p2
  kEvRawEnd = 22,     // the peer's FIN / close_notify
  kEvRawError = 23,   // a = error index, b = system error, p1 = detail
  kEvRawDrain = 24,   // the native write queue is empty again
  kEvRawClosed = 25,  // the socket is closed; the id may be reused
  kEvRawFinished = 26,  // end(): every queued byte and the FIN went to the kernel
};

// Payloads above this size get their own buffer (no copy into the batch).
constexpr size_t kBigPayload = 4096;

// status (16 bits) | minor << 16 (4 bits) | major << 20 (4 bits) | reused << 24 | attempts << 25
uint32_t pack_meta(const ResponseMeta& m);

class EventBatch {
 public:
  // A large payload: a std::string, or a malloc'd read block (Engine::free_read_block).
  struct Big {
    std::string* str = nullptr;
    char* block = nullptr;
    size_t size = 0;
    void free_now();
  };

  EventBatch() = default;
  ~EventBatch() { clear(); }
  EventBatch(const EventBatch&) = delete;
  EventBatch& operator=(const EventBatch&) = delete;

  // With N engines feeding one JS dispatcher, engine `index` of `count` maps its TLS / HTTP/2
  // info ids and DNS lookup ids into a space of its own (identity for 1 engine):
  //   info id x (x ≠ 0) → (x - 1) * count + index + 1;  lookup id l → l * count + index.
  void set_id_space(uint32_t index, uint32_t count) {
    index_ = index;
    count_ = count == 0 ? 1 : count;
  }
  static uint32_t lookup_engine(uint64_t mapped, uint32_t count) { return static_cast<uint32_t>(mapped % count); }
  static uint64_t lookup_original(uint64_t mapped, uint32_t count) { return mapped / count; }

  bool empty() const { return records_.empty(); }
  // Nothing to hand over: no record, no settlement, not the last batch.
  bool idle() const { return records_.empty() && settled_ == 0 && !closed_; }
  const std::string& records() const { return records_; }
  std::vector<Big>& bigs() { return bigs_; }
  // Requests, DNS queries and raw sockets settled by these records (Complete, End, Error,
  // DnsResult, RawClosed), plus those settle() added.
  uint32_t settled() const { return settled_; }
  void settle(uint32_t n = 1) { settled_ += n; }
  bool closed() const { return closed_; }
  void set_closed() { closed_ = true; }
  void clear();  // frees the bigs still owned
  // Moves `other`'s records after these (their big indexes renumbered), its counts and flag.
  void append(EventBatch&& other);
  void swap(EventBatch& other);

  void record(uint32_t type, uint32_t id, uint32_t a, uint32_t b, const char* p1, size_t n1, const char* p2, size_t n2);

  // One per EngineSink event.
  void complete(RequestId id, const ResponseMeta& m, std::string&& head, std::string&& body);
  void head(RequestId id, const ResponseMeta& m, const std::string& head);
  void data(RequestId id, const char* p, size_t n);
  void trailers(RequestId id, const std::string& fields);
  void end(RequestId id);
  void error(RequestId id, Error e, const char* detail, int sys_error);
  void drain(RequestId id);
  void timings(RequestId id, const RequestTimings& t);
  void tls_info(uint32_t id, const tls::SessionInfo& info);
  void tls_forget(uint32_t id);
  void h2_info(uint32_t id, const std::string& fingerprint);
  void h2_forget(uint32_t id);
  void dns_lookup(uint64_t lookup_id, const std::string& host, int family);
  void dns_result(uint32_t query_id, Error e, const std::vector<dns::Address>& addrs, size_t rotate_from);
  void raw_open(RawId id, const RawOpenInfo& info);
  void raw_data(RawId id, const char* p, size_t n);
  void raw_block(RawId id, char* block, size_t n);  // takes the block
  void raw_end(RawId id);
  void raw_error(RawId id, Error e, const char* detail, int sys_error);
  void raw_drain(RawId id);
  void raw_finished(RawId id);
  void raw_closed(RawId id);
  void closed_record();

 private:
  uint32_t map_info(uint32_t x) const { return x == 0 || count_ == 1 ? x : (x - 1) * count_ + index_ + 1; }
  uint32_t push_big(std::string&& bytes);
  uint32_t push_block(char* block, size_t n);
  void record_big(uint32_t type, uint32_t id, uint32_t a, uint32_t big, const char* p1, size_t n1);

  std::string records_;
  std::vector<Big> bigs_;
  std::vector<size_t> big_refs_;  // offsets of the `b` words that name a big (for append)
  uint32_t settled_ = 0;
  bool closed_ = false;
  uint32_t index_ = 0, count_ = 1;
};

// One batch handed from a producer thread (an I/O thread's turns) to a consumer thread (JS):
// the producer puts each turn's events, appended to what the consumer has not taken yet.
class BatchMailbox {
 public:
  // True when the mailbox was idle: the consumer needs a wake-up.
  bool put(EventBatch&& b) {
    std::lock_guard<std::mutex> g(mu_);
    bool was_idle = ready_.idle();
    ready_.append(std::move(b));
    return was_idle;
  }
  // Appends what is there to *out; false if there was nothing.
  bool take(EventBatch* out) {
    std::lock_guard<std::mutex> g(mu_);
    if (ready_.idle()) return false;
    out->append(std::move(ready_));
    return true;
  }

 private:
  std::mutex mu_;
  EventBatch ready_;
};

}  // namespace uvf
