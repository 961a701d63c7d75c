#include "client/event_batch.h"

#include <cstdlib>
#include <cstring>

#include "client/engine.h"

namespace uvf {

namespace {

void put_u32(std::string* s, uint32_t v) {
  char b[4];
  std::memcpy(b, &v, 4);  // little-endian on every platform Node supports
  s->append(b, 4);
}

}  // namespace

uint32_t pack_meta(const ResponseMeta& m) {
  return static_cast<uint32_t>(m.status) | (static_cast<uint32_t>(m.version_minor & 0xf) << 16) |
         (static_cast<uint32_t>(m.version_major & 0xf) << 20) | (m.reused ? 1u << 24 : 0u) |
         (static_cast<uint32_t>(m.attempts) << 25);
}

void EventBatch::Big::free_now() {
  delete str;
  std::free(block);  // read blocks are malloc'd (Engine::take_read_block)
  str = nullptr;
  block = nullptr;
}

void EventBatch::clear() {
  records_.clear();
  for (auto& b : bigs_) b.free_now();
  bigs_.clear();
  big_refs_.clear();
  settled_ = 0;
  closed_ = false;
}

void EventBatch::swap(EventBatch& o) {
  records_.swap(o.records_);
  bigs_.swap(o.bigs_);
  big_refs_.swap(o.big_refs_);
  std::swap(settled_, o.settled_);
  std::swap(closed_, o.closed_);
}

void EventBatch::append(EventBatch&& o) {
  if (records_.empty() && bigs_.empty()) {
    uint32_t settled = settled_ + o.settled_;
    bool closed = closed_ || o.closed_;
    swap(o);
    settled_ = settled;
    closed_ = closed;
    o.clear();
    return;
  }
  const size_t base_off = records_.size();
  const auto base_big = static_cast<uint32_t>(bigs_.size());
  records_.append(o.records_);
  for (size_t off : o.big_refs_) {
    uint32_t v;
    std::memcpy(&v, &records_[base_off + off], 4);
    v += base_big;
    std::memcpy(&records_[base_off + off], &v, 4);
    big_refs_.push_back(base_off + off);
  }
  bigs_.insert(bigs_.end(), o.bigs_.begin(), o.bigs_.end());
  o.bigs_.clear();  // owned here now
  settled_ += o.settled_;
  closed_ = closed_ || o.closed_;
  o.clear();
}

void EventBatch::record(uint32_t type, uint32_t id, uint32_t a, uint32_t b, const char* p1, size_t n1, const char* p2,
                        size_t n2) {
  if (records_.capacity() == 0) records_.reserve(16 * 1024);
  put_u32(&records_, type);
  put_u32(&records_, id);
  put_u32(&records_, a);
  put_u32(&records_, b);
  put_u32(&records_, static_cast<uint32_t>(n1));
  put_u32(&records_, static_cast<uint32_t>(n2));
  if (n1) records_.append(p1, n1);
  if (n2) records_.append(p2, n2);
}

void EventBatch::record_big(uint32_t type, uint32_t id, uint32_t a, uint32_t big, const char* p1, size_t n1) {
  big_refs_.push_back(records_.size() + 12);  // the `b` word
  record(type, id, a, big, p1, n1, nullptr, 0);
}

uint32_t EventBatch::push_big(std::string&& bytes) {
  Big b;
  b.str = new std::string(std::move(bytes));
  b.size = b.str->size();
  bigs_.push_back(b);
  return static_cast<uint32_t>(bigs_.size());  // 1-based: 0 means "inline"
}

uint32_t EventBatch::push_block(char* block, size_t n) {
  Big b;
  b.block = block;
  b.size = n;
  bigs_.push_back(b);
  return static_cast<uint32_t>(bigs_.size());
}

void EventBatch::complete(RequestId id, const ResponseMeta& m, std::string&& head, std::string&& body) {
  ++settled_;
  if (m.tls_info != 0 || m.h2_info != 0) record(kEvTlsRef, id, map_info(m.tls_info), map_info(m.h2_info), nullptr, 0, nullptr, 0);
  if (body.size() > kBigPayload) {
    uint32_t big = push_big(std::move(body));
    record_big(kEvComplete, id, pack_meta(m), big, head.data(), head.size());
  } else {
    record(kEvComplete, id, pack_meta(m), 0, head.data(), head.size(), body.data(), body.size());
  }
}

void EventBatch::head(RequestId id, const ResponseMeta& m, const std::string& head) {
  if (m.tls_info != 0 || m.h2_info != 0) record(kEvTlsRef, id, map_info(m.tls_info), map_info(m.h2_info), nullptr, 0, nullptr, 0);
  record(kEvHead, id, pack_meta(m), 0, head.data(), head.size(), nullptr, 0);
}

void EventBatch::data(RequestId id, const char* p, size_t n) {
  if (n > kBigPayload) {
    record_big(kEvData, id, 0, push_big(std::string(p, n)), nullptr, 0);
  } else {
    record(kEvData, id, 0, 0, nullptr, 0, p, n);
  }
}

void EventBatch::trailers(RequestId id, const std::string& fields) {
  record(kEvTrailers, id, 0, 0, fields.data(), fields.size(), nullptr, 0);
}

void EventBatch::end(RequestId id) {
  ++settled_;
  record(kEvEnd, id, 0, 0, nullptr, 0, nullptr, 0);
}

void EventBatch::error(RequestId id, Error e, const char* detail, int sys_error) {
  ++settled_;
  size_t dl = detail != nullptr ? std::strlen(detail) : 0;
  record(kEvError, id, static_cast<uint32_t>(e), static_cast<uint32_t>(sys_error), detail, dl, nullptr, 0);
}

void EventBatch::drain(RequestId id) { record(kEvDrain, id, 0, 0, nullptr, 0, nullptr, 0); }

void EventBatch::timings(RequestId id, const RequestTimings& t) {
  uint32_t v[7] = {t.queued, t.dns, t.connect, t.ttfb, t.head, t.total, t.tls};
  record(kEvTimings, id, 0, 0, reinterpret_cast<const char*>(v), sizeof(v), nullptr, 0);
}

void EventBatch::tls_info(uint32_t id, const tls::SessionInfo& i) {
  std::string p;
  p.reserve(512);
  for (const std::string* f :
       {&i.protocol, &i.cipher, &i.cipher_standard, &i.alpn, &i.group, &i.authorization_error, &i.servername, &i.ja3,
        &i.ja3_hash, &i.ja4, &i.subject, &i.issuer, &i.subject_alt_names, &i.valid_from, &i.valid_to,
        &i.fingerprint256, &i.serial, &i.origin}) {
    p.append(*f);
    p.push_back('\0');
  }
  uint32_t flags = (i.resumed ? 1u : 0u) | (i.authorized ? 2u : 0u);
  record(kEvTlsInfo, map_info(id), flags, i.handshake_us, p.data(), p.size(), nullptr, 0);
}

void EventBatch::tls_forget(uint32_t id) { record(kEvTlsForget, map_info(id), 0, 0, nullptr, 0, nullptr, 0); }

void EventBatch::h2_info(uint32_t id, const std::string& fingerprint) {
  record(kEvH2Info, map_info(id), 0, 0, fingerprint.data(), fingerprint.size(), nullptr, 0);
}

void EventBatch::h2_forget(uint32_t id) { record(kEvH2Forget, map_info(id), 0, 0, nullptr, 0, nullptr, 0); }

void EventBatch::dns_lookup(uint64_t lookup_id, const std::string& host, int family) {
  uint64_t l = lookup_id * count_ + index_;
  record(kEvDnsLookup, static_cast<uint32_t>(l), static_cast<uint32_t>(l >> 32), static_cast<uint32_t>(family),
         host.data(), host.size(), nullptr, 0);
}

void EventBatch::dns_result(uint32_t query_id, Error e, const std::vector<dns::Address>& addrs, size_t rotate_from) {
  ++settled_;
  std::string list;
  const size_t n = addrs.size();
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) list.push_back(',');
    list.append(dns::address_to_string(addrs[(rotate_from + i) % n]));
  }
  record(kEvDnsResult, query_id, static_cast<uint32_t>(e), 0, list.data(), list.size(), nullptr, 0);
}

void EventBatch::raw_open(RawId id, const RawOpenInfo& i) {
  std::string addrs = i.remote_address;
  addrs.push_back('\0');
  addrs.append(i.local_address);
  record(kEvRawOpen, id, static_cast<uint32_t>(i.remote_port) | (static_cast<uint32_t>(i.local_port) << 16),
         map_info(i.tls_info), addrs.data(), addrs.size(), nullptr, 0);
}

void EventBatch::raw_data(RawId id, const char* p, size_t n) {
  if (n > kBigPayload) {
    record_big(kEvRawData, id, 0, push_big(std::string(p, n)), nullptr, 0);
  } else {
    record(kEvRawData, id, 0, 0, nullptr, 0, p, n);
  }
}

void EventBatch::raw_block(RawId id, char* block, size_t n) { record_big(kEvRawData, id, 0, push_block(block, n), nullptr, 0); }

void EventBatch::raw_end(RawId id) { record(kEvRawEnd, id, 0, 0, nullptr, 0, nullptr, 0); }

void EventBatch::raw_error(RawId id, Error e, const char* detail, int sys_error) {
  size_t dl = detail != nullptr ? std::strlen(detail) : 0;
  record(kEvRawError, id, static_cast<uint32_t>(e), static_cast<uint32_t>(sys_error), detail, dl, nullptr, 0);
}

void EventBatch::raw_drain(RawId id) { record(kEvRawDrain, id, 0, 0, nullptr, 0, nullptr, 0); }
void EventBatch::raw_finished(RawId id) { record(kEvRawFinished, id, 0, 0, nullptr, 0, nullptr, 0); }

void EventBatch::raw_closed(RawId id) {
  ++settled_;
  record(kEvRawClosed, id, 0, 0, nullptr, 0, nullptr, 0);
}

void EventBatch::closed_record() { record(kEvClosed, 0, 0, 0, nullptr, 0, nullptr, 0); }

}  // namespace uvf
