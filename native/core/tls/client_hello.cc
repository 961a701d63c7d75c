#include "tls/client_hello.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdint>

namespace uvf::tls {
namespace {

constexpr uint8_t kHandshakeRecord = 22;
constexpr uint8_t kClientHelloType = 1;
constexpr size_t kRecordHeader = 5;
constexpr size_t kHandshakeHeader = 4;
constexpr size_t kMaxPlaintextRecord = 16384;  // RFC 8446 §5.1: 2^14
// Largest body the ClientHello grammar allows: version, random, session_id<32>,
// cipher_suites<2^16-2>, compression_methods<2^8-1>, extensions<2^16-1>.
constexpr size_t kMaxClientHelloBody = 2 + 32 + (1 + 32) + (2 + 65534) + (1 + 255) + (2 + 65535);

constexpr uint16_t kExtServerName = 0;
constexpr uint16_t kExtSupportedGroups = 10;
constexpr uint16_t kExtEcPointFormats = 11;
constexpr uint16_t kExtSignatureAlgorithms = 13;
constexpr uint16_t kExtAlpn = 16;
constexpr uint16_t kExtSupportedVersions = 43;
constexpr uint16_t kExtKeyShare = 51;

// Bounds-checked cursor over [p, p+n). Every read either succeeds completely or fails without
// moving; sub() carves out a length-prefixed vector as its own reader.
class Reader {
 public:
  Reader() : p_(kEmpty), n_(0) {}
  Reader(const uint8_t* p, size_t n) : p_(n ? p : kEmpty), n_(n) {}
  size_t left() const { return n_ - off_; }
  bool empty() const { return off_ == n_; }

  bool u8(uint8_t* v) {
    if (left() < 1) return false;
    *v = p_[off_++];
    return true;
  }
  bool u16(uint16_t* v) {
    if (left() < 2) return false;
    *v = static_cast<uint16_t>((p_[off_] << 8) | p_[off_ + 1]);
    off_ += 2;
    return true;
  }
  bool u24(uint32_t* v) {
    if (left() < 3) return false;
    *v = (uint32_t{p_[off_]} << 16) | (uint32_t{p_[off_ + 1]} << 8) | p_[off_ + 2];
    off_ += 3;
    return true;
  }
  bool sub(size_t len, Reader* out) {
    if (left() < len) return false;
    *out = Reader(p_ + off_, len);
    off_ += len;
    return true;
  }
  // A vector with a 1- or 2-byte length prefix whose length must lie in [min, max].
  bool vec8(size_t min, size_t max, Reader* out) {
    uint8_t len;
    if (!u8(&len) || len < min || len > max) return false;
    return sub(len, out);
  }
  bool vec16(size_t min, size_t max, Reader* out) {
    uint16_t len;
    if (!u16(&len) || len < min || len > max) return false;
    return sub(len, out);
  }
  std::string str() const { return std::string(reinterpret_cast<const char*>(p_ + off_), left()); }

 private:
  static constexpr uint8_t kEmpty[1] = {0};  // never null, so p_ + 0 is always defined
  const uint8_t* p_;
  size_t n_;
  size_t off_ = 0;
};

bool fail(std::string* err, const char* why) {
  if (err) *err = why;
  return false;
}

size_t bad(std::string* err, const char* why) {
  if (err) *err = why;
  return SIZE_MAX;
}

// A vector of uint16 filling `r` exactly (its length prefix was already consumed).
bool read_u16_list(Reader r, std::vector<uint16_t>* out) {
  if (r.left() % 2 != 0) return false;
  out->clear();
  out->reserve(r.left() / 2);
  uint16_t v;
  while (r.u16(&v)) out->push_back(v);
  return true;
}

bool parse_server_name(Reader ext, ClientHello* out, std::string* err) {
  Reader list;
  if (!ext.vec16(1, 0xffff, &list) || !ext.empty()) return fail(err, "server_name: bad list length");
  bool have_host = false;
  while (!list.empty()) {
    uint8_t type;
    Reader name;
    if (!list.u8(&type) || !list.vec16(1, 0xffff, &name)) return fail(err, "server_name: truncated entry");
    if (type == 0 && !have_host) {
      out->server_name = name.str();
      have_host = true;
    }
  }
  return true;
}

bool parse_alpn(Reader ext, ClientHello* out, std::string* err) {
  Reader list;
  if (!ext.vec16(2, 0xffff, &list) || !ext.empty()) return fail(err, "alpn: bad list length");
  while (!list.empty()) {
    Reader proto;
    if (!list.vec8(1, 0xff, &proto)) return fail(err, "alpn: bad protocol name");
    out->alpn.push_back(proto.str());
  }
  return true;
}

bool parse_key_share(Reader ext, ClientHello* out, std::string* err) {
  Reader list;
  if (!ext.vec16(0, 0xffff, &list) || !ext.empty()) return fail(err, "key_share: bad list length");
  while (!list.empty()) {
    uint16_t group;
    Reader key;
    if (!list.u16(&group) || !list.vec16(1, 0xffff, &key)) return fail(err, "key_share: truncated entry");
    out->key_share_groups.push_back(group);
  }
  return true;
}

bool parse_extension(uint16_t type, Reader ext, ClientHello* out, std::string* err) {
  Reader v;
  switch (type) {
    case kExtServerName:
      out->has_server_name = true;
      return parse_server_name(ext, out, err);
    case kExtSupportedGroups:
      if (!ext.vec16(2, 0xffff, &v) || !ext.empty() || !read_u16_list(v, &out->supported_groups)) {
        return fail(err, "supported_groups: bad length");
      }
      return true;
    case kExtEcPointFormats:
      if (!ext.vec8(1, 0xff, &v) || !ext.empty()) return fail(err, "ec_point_formats: bad length");
      for (uint8_t f; v.u8(&f);) out->ec_point_formats.push_back(f);
      return true;
    case kExtSignatureAlgorithms:
      if (!ext.vec16(2, 0xfffe, &v) || !ext.empty() || !read_u16_list(v, &out->signature_algorithms)) {
        return fail(err, "signature_algorithms: bad length");
      }
      return true;
    case kExtAlpn:
      return parse_alpn(ext, out, err);
    case kExtSupportedVersions:
      if (!ext.vec8(2, 254, &v) || !ext.empty() || !read_u16_list(v, &out->supported_versions)) {
        return fail(err, "supported_versions: bad length");
      }
      return true;
    case kExtKeyShare:
      return parse_key_share(ext, out, err);
    default:
      return true;  // opaque to us; its length was already checked by the caller
  }
}

// Scans records for the hello without copying. Returns the records' byte length once the whole
// hello is there, 0 while more bytes are needed, SIZE_MAX (with a reason) on bytes that cannot be
// a ClientHello. With `hs` set, also appends the handshake bytes (the message) to it.
size_t scan_records(const uint8_t* p, size_t n, std::string* err, std::vector<uint8_t>* hs) {
  uint8_t head[kHandshakeHeader] = {};  // the handshake header may itself be split across records
  size_t hs_len = 0;               // handshake bytes seen so far
  size_t off = 0;
  for (;;) {
    if (n - off < kRecordHeader) {
      // Reject a wrong record type as soon as the first byte shows it.
      if (n > off && p[off] != kHandshakeRecord) return bad(err, "not a handshake record");
      return 0;
    }
    const uint8_t* r = p + off;
    size_t len = (size_t{r[3]} << 8) | r[4];
    if (r[0] != kHandshakeRecord) return bad(err, "not a handshake record");
    if (r[1] != 3 || r[2] > 4) return bad(err, "bad record version");
    if (len == 0 || len > kMaxPlaintextRecord) return bad(err, "bad record length");
    size_t avail = std::min(len, n - off - kRecordHeader);
    const uint8_t* frag = r + kRecordHeader;
    for (size_t i = 0; i < avail && hs_len + i < kHandshakeHeader; ++i) head[hs_len + i] = frag[i];
    size_t seen = hs_len + avail;
    if (seen >= 1 && head[0] != kClientHelloType) return bad(err, "not a ClientHello");
    if (seen >= kHandshakeHeader) {
      size_t body = (size_t{head[1]} << 16) | (size_t{head[2]} << 8) | head[3];
      if (body > kMaxClientHelloBody) return bad(err, "ClientHello too long");
      // The hello must end exactly at a record boundary: nothing else may share its last record.
      if (seen > kHandshakeHeader + body) return bad(err, "trailing bytes after ClientHello");
    }
    if (avail < len) return 0;  // this record is still arriving
    if (hs) hs->insert(hs->end(), frag, frag + len);
    hs_len = seen;
    off += kRecordHeader + len;
    if (hs_len >= kHandshakeHeader) {
      size_t body = (size_t{head[1]} << 16) | (size_t{head[2]} << 8) | head[3];
      if (hs_len == kHandshakeHeader + body) return off;
    }
  }
}

std::string hex_digest(const EVP_MD* md, const std::string& s) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(s.data(), s.size(), out, &len, md, nullptr) != 1) return std::string();
  static const char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    hex.push_back(kHex[out[i] >> 4]);
    hex.push_back(kHex[out[i] & 0xf]);
  }
  return hex;
}

template <typename T>
void append_dec_list(std::string* s, const std::vector<T>& v, bool skip_grease) {
  bool first = true;
  for (T x : v) {
    if (skip_grease && is_grease(x)) continue;
    if (!first) s->push_back('-');
    *s += std::to_string(unsigned{x});
    first = false;
  }
}

std::string hex4(uint16_t v) {
  static const char kHex[] = "0123456789abcdef";
  return {kHex[v >> 12], kHex[(v >> 8) & 0xf], kHex[(v >> 4) & 0xf], kHex[v & 0xf]};
}

std::string hex4_list(const std::vector<uint16_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s.push_back(',');
    s += hex4(v[i]);
  }
  return s;
}

std::vector<uint16_t> without_grease(const std::vector<uint16_t>& v) {
  std::vector<uint16_t> out;
  for (uint16_t x : v) {
    if (!is_grease(x)) out.push_back(x);
  }
  return out;
}

const char* version_code(uint16_t v) {
  switch (v) {
    case 0x0304: return "13";
    case 0x0303: return "12";
    case 0x0302: return "11";
    case 0x0301: return "10";
    case 0x0300: return "s3";
    case 0x0002: return "s2";
    case 0xfeff: return "d1";
    case 0xfefd: return "d2";
    case 0xfefc: return "d3";
    default: return "00";
  }
}

bool ascii_alnum(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

// JA4's ALPN pair: first and last character of the first protocol, or, when either is not
// alphanumeric, the first and last hex digit of the protocol's bytes; "00" when there is none.
std::string alpn_code(const ClientHello& ch) {
  if (ch.alpn.empty() || ch.alpn[0].empty()) return "00";
  unsigned char f = static_cast<unsigned char>(ch.alpn[0].front());
  unsigned char l = static_cast<unsigned char>(ch.alpn[0].back());
  if (ascii_alnum(f) && ascii_alnum(l)) return {static_cast<char>(f), static_cast<char>(l)};
  static const char kHex[] = "0123456789abcdef";
  return {kHex[f >> 4], kHex[l & 0xf]};
}

struct Ja4Parts {
  std::string a;          // t13d1516h2
  std::string ciphers;    // sorted, comma-joined hex
  std::string exts_sigs;  // sorted exts minus SNI/ALPN, then "_" + sigalgs when there are any
  bool no_ciphers;
  bool no_exts;
};

Ja4Parts ja4_parts(const ClientHello& ch, char transport) {
  Ja4Parts parts;
  std::vector<uint16_t> ciphers = without_grease(ch.cipher_suites);
  std::vector<uint16_t> exts = without_grease(ch.extensions);
  std::vector<uint16_t> versions = without_grease(ch.supported_versions);
  std::vector<uint16_t> sigs = without_grease(ch.signature_algorithms);

  uint16_t version = ch.legacy_version;
  if (!versions.empty()) version = *std::max_element(versions.begin(), versions.end());
  bool sni = std::find(ch.extensions.begin(), ch.extensions.end(), kExtServerName) != ch.extensions.end();
  char counts[5];
  auto two = [](size_t v, char* at) {
    v = std::min<size_t>(v, 99);
    at[0] = static_cast<char>('0' + v / 10);
    at[1] = static_cast<char>('0' + v % 10);
  };
  two(ciphers.size(), counts);
  two(exts.size(), counts + 2);
  counts[4] = '\0';
  parts.a = std::string(1, transport) + version_code(version) + (sni ? 'd' : 'i') + counts + alpn_code(ch);

  std::sort(ciphers.begin(), ciphers.end());
  parts.ciphers = hex4_list(ciphers);
  parts.no_ciphers = ciphers.empty();

  exts.erase(std::remove_if(exts.begin(), exts.end(),
                            [](uint16_t e) { return e == kExtServerName || e == kExtAlpn; }),
             exts.end());
  std::sort(exts.begin(), exts.end());
  parts.no_exts = exts.empty();
  parts.exts_sigs = hex4_list(exts);
  if (!sigs.empty()) parts.exts_sigs += "_" + hex4_list(sigs);
  return parts;
}

std::string hash12(const std::string& s) { return hex_digest(EVP_sha256(), s).substr(0, 12); }

}  // namespace

bool is_grease(uint16_t v) { return (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff); }

bool parse_client_hello(const uint8_t* p, size_t n, ClientHello* out, std::string* err) {
  *out = ClientHello();
  Reader msg(p, n);
  uint8_t type;
  uint32_t len;
  if (!msg.u8(&type) || !msg.u24(&len)) return fail(err, "truncated handshake header");
  if (type != kClientHelloType) return fail(err, "not a ClientHello");
  if (len != msg.left()) return fail(err, "handshake length does not match the message");

  Reader body = msg;
  Reader random, session_id, suites, compression;
  if (!body.u16(&out->legacy_version)) return fail(err, "truncated legacy_version");
  if (!body.sub(32, &random)) return fail(err, "truncated random");
  if (!body.vec8(0, 32, &session_id)) return fail(err, "bad legacy_session_id");
  if (!body.vec16(2, 0xfffe, &suites) || !read_u16_list(suites, &out->cipher_suites)) {
    return fail(err, "bad cipher_suites");
  }
  if (!body.vec8(1, 0xff, &compression)) return fail(err, "bad legacy_compression_methods");
  if (body.empty()) return true;  // no extensions block (pre-TLS 1.2 style hello)

  Reader exts;
  if (!body.vec16(0, 0xffff, &exts) || !body.empty()) return fail(err, "bad extensions length");
  while (!exts.empty()) {
    uint16_t ext_type;
    Reader ext;
    if (!exts.u16(&ext_type) || !exts.vec16(0, 0xffff, &ext)) return fail(err, "truncated extension");
    // RFC 8446 §4.2: no two extensions of the same type.
    if (std::find(out->extensions.begin(), out->extensions.end(), ext_type) != out->extensions.end()) {
      return fail(err, "duplicate extension");
    }
    out->extensions.push_back(ext_type);
    if (!parse_extension(ext_type, ext, out, err)) return false;
  }
  return true;
}

size_t client_hello_records_length(const uint8_t* p, size_t n) {
  return scan_records(p, n, nullptr, nullptr);
}

bool parse_client_hello_records(const uint8_t* p, size_t n, ClientHello* out, std::string* err,
                                size_t* consumed) {
  std::vector<uint8_t> hs;
  size_t used = scan_records(p, n, err, &hs);
  if (used == SIZE_MAX) return false;
  if (used == 0) return fail(err, "incomplete ClientHello records");
  if (consumed) *consumed = used;
  return parse_client_hello(hs.data(), hs.size(), out, err);
}

std::string ja3_string(const ClientHello& ch) {
  std::string s = std::to_string(unsigned{ch.legacy_version});
  s.push_back(',');
  append_dec_list(&s, ch.cipher_suites, true);
  s.push_back(',');
  append_dec_list(&s, ch.extensions, true);
  s.push_back(',');
  append_dec_list(&s, ch.supported_groups, true);
  s.push_back(',');
  append_dec_list(&s, ch.ec_point_formats, false);  // 8-bit values: nothing to GREASE-filter
  return s;
}

std::string ja3_hash(const std::string& ja3) { return hex_digest(EVP_md5(), ja3); }

std::string ja4_string(const ClientHello& ch, char transport) {
  Ja4Parts parts = ja4_parts(ch, transport);
  std::string b = parts.no_ciphers ? "000000000000" : hash12(parts.ciphers);
  std::string c = parts.no_exts ? "000000000000" : hash12(parts.exts_sigs);
  return parts.a + "_" + b + "_" + c;
}

std::string ja4_raw(const ClientHello& ch, char transport) {
  Ja4Parts parts = ja4_parts(ch, transport);
  return parts.a + "_" + parts.ciphers + "_" + parts.exts_sigs;
}

bool fingerprint_from_bytes(const uint8_t* p, size_t n, Fingerprint* out) {
  ClientHello ch;
  bool ok = n > 0 && (p[0] == kHandshakeRecord ? parse_client_hello_records(p, n, &ch, nullptr)
                                                : parse_client_hello(p, n, &ch, nullptr));
  if (!ok) return false;
  out->ja3 = ja3_string(ch);
  out->ja3_hash = ja3_hash(out->ja3);
  out->ja4 = ja4_string(ch);
  out->ja4_r = ja4_raw(ch);
  return true;
}

}  // namespace uvf::tls
