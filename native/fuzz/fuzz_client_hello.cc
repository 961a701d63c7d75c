// Fuzz target: TLS ClientHello parsing and JA3 / JA4 fingerprints over arbitrary bytes.
//
// Input: raw bytes, either TLS records (0x16 ...) or one handshake message (0x01 ...); both
// parse entry points, the completeness check and fingerprint_from_bytes() see every input.
//
// Invariants:
//   - fingerprint_from_bytes() succeeds iff the entry point for the input's first byte does, and
//     then equals the fingerprints computed from that parse;
//   - client_hello_records_length() agrees with parse_client_hello_records() (same length on
//     success), is 0 on every strict prefix of a complete hello, ignores bytes after it, and an
//     input it calls incomplete has no prefix it rejects;
//   - the records and the handshake message they carry parse to the same ClientHello;
//   - JA3 = five comma-separated fields, each a dash-separated list of decimal numbers (<= 65535,
//     point formats <= 255) without GREASE values, first = legacy_version; its hash is 32 hex;
//   - JA4 = [tqd] + version code + [di] + two 2-digit counts + 2 alphanumerics, then "_" + 12 hex
//     + "_" + 12 hex; counts and SNI flag match the parse; JA4_r shares the first part and lists
//     sorted 4-hex-digit values.
// Every prefix parsed is copied to an exact-size heap block, so over-reads are ASan reports.
#include <algorithm>
#include <cctype>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "tls/client_hello.h"

using namespace uvf::tls;

namespace {

bool is_hex_lower(const std::string& s, size_t from, size_t n) {
  if (s.size() < from + n) return false;
  for (size_t i = from; i < from + n; ++i) {
    char c = s[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t i = s.find(sep, start);
    out.push_back(s.substr(start, i == std::string::npos ? std::string::npos : i - start));
    if (i == std::string::npos) return out;
    start = i + 1;
  }
}

// A dash-separated list of canonical decimal numbers <= max ("" = empty list).
std::vector<unsigned> decimal_list(const std::string& s, unsigned max) {
  std::vector<unsigned> out;
  if (s.empty()) return out;
  for (const std::string& item : split(s, '-')) {
    FUZZ_CHECK(!item.empty() && item.size() <= 5);
    FUZZ_CHECK(item == "0" || item[0] != '0');
    unsigned v = 0;
    for (char c : item) {
      FUZZ_CHECK(c >= '0' && c <= '9');
      v = v * 10 + static_cast<unsigned>(c - '0');
    }
    FUZZ_CHECK(v <= max);
    out.push_back(v);
  }
  return out;
}

template <typename T>
std::vector<unsigned> no_grease(const std::vector<T>& v) {
  std::vector<unsigned> out;
  for (T x : v) {
    if (sizeof(T) == 1 || !is_grease(static_cast<uint16_t>(x))) out.push_back(x);
  }
  return out;
}

// A comma-separated list of 4-digit lowercase hex values, ascending when `sorted`.
size_t hex4_list(const std::string& s, bool sorted) {
  if (s.empty()) return 0;
  std::vector<std::string> items = split(s, ',');
  for (size_t i = 0; i < items.size(); ++i) {
    FUZZ_CHECK(items[i].size() == 4 && is_hex_lower(items[i], 0, 4));
    if (sorted && i > 0) FUZZ_CHECK(items[i - 1] <= items[i]);
  }
  return items.size();
}

void check_ja3(const ClientHello& ch, const std::string& ja3, const std::string& hash) {
  std::vector<std::string> f = split(ja3, ',');
  FUZZ_CHECK(f.size() == 5);
  std::vector<unsigned> version = decimal_list(f[0], 65535);
  FUZZ_CHECK(version.size() == 1 && version[0] == ch.legacy_version);
  FUZZ_CHECK(decimal_list(f[1], 65535) == no_grease(ch.cipher_suites));
  FUZZ_CHECK(decimal_list(f[2], 65535) == no_grease(ch.extensions));
  FUZZ_CHECK(decimal_list(f[3], 65535) == no_grease(ch.supported_groups));
  FUZZ_CHECK(decimal_list(f[4], 255) == no_grease(ch.ec_point_formats));
  FUZZ_CHECK(hash.size() == 32 && is_hex_lower(hash, 0, 32));
  FUZZ_CHECK(hash == ja3_hash(ja3));
}

void check_ja4(const ClientHello& ch, const std::string& ja4, const std::string& raw, char transport) {
  FUZZ_CHECK(ja4.size() == 10 + 1 + 12 + 1 + 12);
  FUZZ_CHECK(ja4[0] == transport);
  static const char* const kVersions[] = {"13", "12", "11", "10", "s3", "s2", "d1", "d2", "d3", "00"};
  bool known = false;
  for (const char* v : kVersions) known = known || ja4.compare(1, 2, v) == 0;
  FUZZ_CHECK(known);
  bool sni = std::find(ch.extensions.begin(), ch.extensions.end(), 0) != ch.extensions.end();
  FUZZ_CHECK(ja4[3] == (sni ? 'd' : 'i'));
  for (size_t i = 4; i < 8; ++i) FUZZ_CHECK(ja4[i] >= '0' && ja4[i] <= '9');
  size_t ciphers = no_grease(ch.cipher_suites).size();
  size_t exts = no_grease(ch.extensions).size();
  FUZZ_CHECK(std::stoul(ja4.substr(4, 2)) == std::min<size_t>(ciphers, 99));
  FUZZ_CHECK(std::stoul(ja4.substr(6, 2)) == std::min<size_t>(exts, 99));
  for (size_t i = 8; i < 10; ++i) FUZZ_CHECK(std::isalnum(static_cast<unsigned char>(ja4[i])));
  if (ch.alpn.empty() || ch.alpn[0].empty()) FUZZ_CHECK(ja4.compare(8, 2, "00") == 0);
  FUZZ_CHECK(ja4[10] == '_' && is_hex_lower(ja4, 11, 12) && ja4[23] == '_' && is_hex_lower(ja4, 24, 12));
  if (ciphers == 0) FUZZ_CHECK(ja4.compare(11, 12, "000000000000") == 0);

  // JA4_r: same first part, then the sorted cipher list, then sorted extensions [_ sigalgs].
  FUZZ_CHECK(raw.compare(0, 11, ja4, 0, 11) == 0);
  std::vector<std::string> parts = split(raw.substr(11), '_');
  FUZZ_CHECK(parts.size() == 2 || parts.size() == 3);
  FUZZ_CHECK(hex4_list(parts[0], true) == ciphers);
  hex4_list(parts[1], true);  // sni / alpn removed, so no count to compare
  if (parts.size() == 3) FUZZ_CHECK(hex4_list(parts[2], false) == no_grease(ch.signature_algorithms).size());
  else FUZZ_CHECK(no_grease(ch.signature_algorithms).empty());
}

void check_hello(const ClientHello& ch) {
  check_ja3(ch, ja3_string(ch), ja3_hash(ja3_string(ch)));
  for (char t : {'t', 'q', 'd'}) check_ja4(ch, ja4_string(ch, t), ja4_raw(ch, t), t);
  // Lists come straight from length-checked vectors.
  FUZZ_CHECK(ch.cipher_suites.size() >= 1);
  FUZZ_CHECK(ch.supported_versions.size() <= 127);
  if (!ch.has_server_name) FUZZ_CHECK(ch.server_name.empty());
}

bool same(const ClientHello& a, const ClientHello& b) {
  return a.legacy_version == b.legacy_version && a.cipher_suites == b.cipher_suites &&
         a.extensions == b.extensions && a.supported_groups == b.supported_groups &&
         a.ec_point_formats == b.ec_point_formats && a.signature_algorithms == b.signature_algorithms &&
         a.alpn == b.alpn && a.supported_versions == b.supported_versions &&
         a.key_share_groups == b.key_share_groups && a.has_server_name == b.has_server_name &&
         a.server_name == b.server_name;
}

size_t records_length_of_prefix(const uint8_t* p, size_t m) {
  std::vector<uint8_t> copy(p, p + m);
  return client_hello_records_length(m ? copy.data() : nullptr, m);
}

// The handshake bytes carried by the records in p[0..n) (already known to be well formed).
std::vector<uint8_t> reassemble(const uint8_t* p, size_t n) {
  std::vector<uint8_t> hs;
  size_t off = 0;
  while (off + 5 <= n) {
    size_t len = (size_t{p[off + 3]} << 8) | p[off + 4];
    FUZZ_CHECK(off + 5 + len <= n);
    hs.insert(hs.end(), p + off + 5, p + off + 5 + len);
    off += 5 + len;
  }
  FUZZ_CHECK(off == n);
  return hs;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ClientHello msg, rec;
  std::string msg_err, rec_err;
  bool msg_ok = parse_client_hello(data, size, &msg, &msg_err);
  size_t consumed = 0;
  bool rec_ok = parse_client_hello_records(data, size, &rec, &rec_err, &consumed);
  size_t total = client_hello_records_length(data, size);
  FUZZ_CHECK(msg_ok || !msg_err.empty());
  FUZZ_CHECK(rec_ok || !rec_err.empty());

  Fingerprint fp;
  fp.ja3 = "untouched";
  bool fp_ok = fingerprint_from_bytes(data, size, &fp);
  bool want = size > 0 && (data[0] == 0x16 ? rec_ok : msg_ok);
  FUZZ_CHECK(fp_ok == want);
  if (!fp_ok) FUZZ_CHECK(fp.ja3 == "untouched");

  if (msg_ok) {
    FUZZ_CHECK(size >= 4 && data[0] == 1);
    check_hello(msg);
  }

  if (rec_ok) {
    FUZZ_CHECK(total == consumed && consumed > 0 && consumed <= size);
    check_hello(rec);
    std::vector<uint8_t> hs = reassemble(data, consumed);
    ClientHello again;
    FUZZ_CHECK(parse_client_hello(hs.data(), hs.size(), &again, nullptr));
    FUZZ_CHECK(same(again, rec));
  }

  if (fp_ok) {
    const ClientHello& ch = data[0] == 0x16 ? rec : msg;
    FUZZ_CHECK(fp.ja3 == ja3_string(ch) && fp.ja3_hash == ja3_hash(fp.ja3));
    FUZZ_CHECK(fp.ja4 == ja4_string(ch) && fp.ja4_r == ja4_raw(ch));
  }

  if (total != 0 && total != SIZE_MAX) {
    FUZZ_CHECK(total <= size);
    // Completeness is decided by the records alone: the same length for just those bytes,
    // "need more" for every strict prefix (checked at a few cut points).
    FUZZ_CHECK(records_length_of_prefix(data, total) == total);
    for (size_t m : {total - 1, total / 2, size_t{5}, size_t{1}}) {
      if (m < total) FUZZ_CHECK(records_length_of_prefix(data, m) == 0);
    }
    // The hello parses from the records iff the message they carry does.
    std::vector<uint8_t> hs = reassemble(data, total);
    FUZZ_CHECK(rec_ok == parse_client_hello(hs.data(), hs.size(), &msg, nullptr));
  } else {
    FUZZ_CHECK(!rec_ok);
    if (total == 0) {
      for (size_t m : {size / 2, size > 0 ? size - 1 : 0}) FUZZ_CHECK(records_length_of_prefix(data, m) == 0);
    }
  }
  return 0;
}
