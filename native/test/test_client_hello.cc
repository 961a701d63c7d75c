// Tests for tls/client_hello: field extraction, JA3/JA4 against published vectors (JA3 README,
// FoxIO JA4 spec) and a real `openssl s_client` hello (expected strings cross-checked with the
// independent TypeScript implementation in test/helpers/client-hello.ts), the record-stream entry
// point split at every position, and strictness: every truncation, every one-byte corruption, and
// trailing garbage, with each input placed against a guard page.
#include <string>
#include <vector>

#include "check.h"
#include "guard_page.h"
#include "tls/client_hello.h"

using namespace uvf::tls;
using uvf_test::GuardedBuffer;

namespace {

GuardedBuffer& guard() {
  static GuardedBuffer g(256 * 1024);
  return g;
}

const uint8_t* placed(const std::string& s) { return reinterpret_cast<const uint8_t*>(guard().place(s)); }

bool parse(const std::string& msg, ClientHello* ch, std::string* err = nullptr) {
  return parse_client_hello(placed(msg), msg.size(), ch, err);
}
bool parse_records(const std::string& recs, ClientHello* ch, std::string* err = nullptr, size_t* used = nullptr) {
  return parse_client_hello_records(placed(recs), recs.size(), ch, err, used);
}

// ---- a tiny ClientHello builder -------------------------------------------------------------

std::string u8(unsigned v) { return std::string(1, static_cast<char>(v)); }
std::string u16(unsigned v) { return u8(v >> 8) + u8(v & 0xff); }
std::string vec8(const std::string& s) { return u8(static_cast<unsigned>(s.size())) + s; }
std::string vec16(const std::string& s) { return u16(static_cast<unsigned>(s.size())) + s; }
std::string u16s(const std::vector<uint16_t>& v) {
  std::string s;
  for (uint16_t x : v) s += u16(x);
  return s;
}

struct Ext {
  uint16_t type;
  std::string data;
};
Ext sni(const std::string& host) { return {0, vec16(u8(0) + vec16(host))}; }
Ext alpn(const std::vector<std::string>& protos) {
  std::string l;
  for (const auto& p : protos) l += vec8(p);
  return {16, vec16(l)};
}
Ext groups(const std::vector<uint16_t>& v) { return {10, vec16(u16s(v))}; }
Ext sigalgs(const std::vector<uint16_t>& v) { return {13, vec16(u16s(v))}; }
Ext versions(const std::vector<uint16_t>& v) { return {43, vec8(u16s(v))}; }
Ext point_formats(const std::string& v) { return {11, vec8(v)}; }
Ext key_share(const std::vector<uint16_t>& gs) {
  std::string l;
  for (uint16_t g : gs) l += u16(g) + vec16(std::string(32, 'k'));
  return {51, vec16(l)};
}

std::string hello_body(uint16_t version, const std::vector<uint16_t>& ciphers, const std::vector<Ext>& exts,
                       bool with_ext_block = true) {
  std::string b = u16(version) + std::string(32, 'r') + vec8(std::string(32, 's')) + vec16(u16s(ciphers)) +
                  vec8(u8(0));
  if (!with_ext_block) return b;
  std::string e;
  for (const Ext& x : exts) e += u16(x.type) + vec16(x.data);
  return b + vec16(e);
}
std::string handshake(const std::string& body, unsigned type = 1) {
  return u8(type) + u8(body.size() >> 16) + u16(body.size() & 0xffff) + body;
}
// Wraps a handshake message into records of at most `chunk` bytes.
std::string records(const std::string& msg, size_t chunk = 16384, unsigned minor = 1) {
  std::string out;
  for (size_t off = 0; off < msg.size(); off += chunk) {
    std::string frag = msg.substr(off, chunk);
    out += u8(22) + u8(3) + u8(minor) + vec16(frag);
  }
  return out;
}

std::string from_hex(const char* h) {
  std::string out;
  auto nib = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
  for (; h[0] && h[1]; h += 2) {
    out.push_back(static_cast<char>(nib(h[0]) << 4 | nib(h[1])));
  }
  return out;
}

// The FoxIO JA4 spec example: 15 ciphers and 16 extensions (plus GREASE everywhere) in the orders the
// spec lists them, SNI, ALPN h2, TLS 1.3 in supported_versions.
std::string spec_example_message() {
  std::vector<uint16_t> ciphers = {0x0a0a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9,
                                   0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035};
  std::vector<Ext> exts = {
      {0x1a1a, ""},
      {0x001b, vec8(u16(2))},
      sni("example.com"),
      key_share({0x2a2a, 0x001d}),
      alpn({"h2", "http/1.1"}),
      {0x4469, vec16(vec8("h2"))},
      {0x0017, ""},
      {0x002d, vec8(u8(1))},
      sigalgs({0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601}),
      {0x0005, u8(1) + u16(0) + u16(0)},
      {0x0023, ""},
      {0x0012, ""},
      versions({0x3a3a, 0x0304, 0x0303}),
      {0xff01, u8(0)},
      point_formats(u8(0)),
      groups({0x4a4a, 0x001d, 0x0017, 0x0018}),
      {0x0015, std::string(7, '\0')},
      {0x5a5a, u8(0)},
  };
  return handshake(hello_body(0x0303, ciphers, exts));
}

// `echo | openssl s_client -connect 127.0.0.1:P -servername localhost -alpn h2,http/1.1` (OpenSSL
// 3.0.19), the records exactly as the server read them.
const char* kOpensslHelloRecords =
    "16030101480100014403037bc5789dca1b18e75f8dd62f61fa58f3e24c3113ddea49ec491338859e77ccc720047db0b2"
    "2caa0b4d64f22a03373d14a52e62cb33971c0c1f9fa021cd42a5c22d003e130213031301c02cc030009fcca9cca8ccaa"
    "c02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c0035002f00ff010000bd"
    "0000000e000c0000096c6f63616c686f7374000b000403000102000a00160014001d0017001e00190018010001010102"
    "01030104002300000010000e000c02683208687474702f312e310016000000170000000d002a00280403050306030807"
    "08080809080a080b080408050806040105010601030303010302040205020602002b0009080304030303020301002d00"
    "020101003300260024001d00201c91137fefc5d9f29c82479f8560cde8d22f9ce88b9d9403ed2c76b9465ba97d";

std::string openssl_hello_records() { return from_hex(kOpensslHelloRecords); }

}  // namespace

TEST(client_hello_grease_table) {
  int n = 0;
  for (unsigned v = 0; v <= 0xffff; ++v) n += is_grease(static_cast<uint16_t>(v));
  CHECK_EQ(n, 16);
  CHECK(is_grease(0x0a0a));
  CHECK(is_grease(0xfafa));
  CHECK(!is_grease(0x0a1a));
  CHECK(!is_grease(0x1301));
}

TEST(client_hello_ja3_readme_vector_md5) {
  // The worked example in the salesforce/ja3 README.
  CHECK_EQ(ja3_hash("769,47-53-5-10-49161-49162-49171-49172-50-56-19-4,0-10-11,23-24-25,0"),
           std::string("ada70206e40642a3e4461f35503241d5"));
}

TEST(client_hello_ja4_spec_example) {
  ClientHello ch;
  std::string err;
  CHECK(parse(spec_example_message(), &ch, &err));
  CHECK_EQ(err, std::string());
  CHECK_EQ(ch.legacy_version, 0x0303);
  CHECK_EQ(ch.cipher_suites.size(), size_t{16});
  CHECK_EQ(ch.extensions.size(), size_t{18});
  CHECK(ch.has_server_name);
  CHECK_EQ(ch.server_name, std::string("example.com"));
  CHECK(ch.alpn == std::vector<std::string>({"h2", "http/1.1"}));
  CHECK(ch.supported_versions == std::vector<uint16_t>({0x3a3a, 0x0304, 0x0303}));
  CHECK(ch.key_share_groups == std::vector<uint16_t>({0x2a2a, 0x001d}));
  CHECK(ch.ec_point_formats == std::vector<uint8_t>({0}));
  CHECK_EQ(ja4_string(ch), std::string("t13d1516h2_8daaf6152771_e5627efa2ab1"));
  CHECK_EQ(ja4_raw(ch),
           std::string("t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9_"
                       "0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01_"
                       "0403,0804,0401,0503,0805,0501,0806,0601"));
  CHECK_EQ(ja3_string(ch),
           std::string("771,4865-4866-4867-49195-49199-49196-49200-52393-52392-49171-49172-156-157-47-53,"
                       "27-0-51-16-17513-23-45-13-5-35-18-43-65281-11-10-21,29-23-24,0"));
  CHECK_EQ(ja4_string(ch, 'q').substr(0, 4), std::string("q13d"));

  // Spec: without signature algorithms the string ends without '_' (hash 6d807ffa2a79).
  ch.signature_algorithms.clear();
  CHECK_EQ(ja4_string(ch), std::string("t13d1516h2_8daaf6152771_6d807ffa2a79"));
}

TEST(client_hello_ja4_a_section_rules) {
  auto ja4_of = [](const std::vector<uint16_t>& ciphers, const std::vector<Ext>& exts, uint16_t v = 0x0303) {
    ClientHello ch;
    std::string err;
    if (!parse(handshake(hello_body(v, ciphers, exts)), &ch, &err)) return "PARSE: " + err;
    return ja4_string(ch);
  };
  // No SNI, no ALPN, no supported_versions: legacy version, 'i', "00"; no ciphers besides GREASE
  // is impossible (cipher_suites must be non-empty), so check the sorted-extension zero case.
  CHECK_EQ(ja4_of({0x002f}, {}).substr(0, 10), std::string("t12i010000"));
  CHECK_EQ(ja4_of({0x002f}, {}).substr(24), std::string("000000000000"));
  CHECK_EQ(ja4_of({0x002f}, {sni("a")}).substr(24), std::string("000000000000"));  // only SNI → empty list
  CHECK_EQ(ja4_of({0x002f}, {}, 0x0301).substr(0, 3), std::string("t10"));
  CHECK_EQ(ja4_of({0x002f}, {}, 0x0300).substr(0, 3), std::string("ts3"));
  CHECK_EQ(ja4_of({0x002f}, {}, 0x1234).substr(0, 3), std::string("t00"));
  CHECK_EQ(ja4_of({0x002f}, {versions({0x0303, 0x0304})}).substr(0, 3), std::string("t13"));
  CHECK_EQ(ja4_of({0x002f}, {versions({0xfafa})}).substr(0, 3), std::string("t12"));  // only GREASE
  // ALPN rules from the spec.
  CHECK_EQ(ja4_of({0x002f}, {alpn({"http/1.1"})}).substr(8, 2), std::string("h1"));
  CHECK_EQ(ja4_of({0x002f}, {alpn({"x"})}).substr(8, 2), std::string("xx"));
  CHECK_EQ(ja4_of({0x002f}, {alpn({"\xab"})}).substr(8, 2), std::string("ab"));
  CHECK_EQ(ja4_of({0x002f}, {alpn({"\xab\xcd"})}).substr(8, 2), std::string("ad"));
  CHECK_EQ(ja4_of({0x002f}, {alpn({"0\xab"})}).substr(8, 2), std::string("3b"));
  CHECK_EQ(ja4_of({0x002f}, {alpn({"01\xab\xcd"})}).substr(8, 2), std::string("3d"));
  CHECK_EQ(ja4_of({0x002f}, {alpn({"0\xab\xcd" "1"})}).substr(8, 2), std::string("01"));
  // Counts are capped at 99.
  std::vector<uint16_t> many;
  for (uint16_t c = 1; c <= 120; ++c) many.push_back(c);
  CHECK_EQ(ja4_of(many, {}).substr(4, 2), std::string("99"));
  // Empty cipher list (built directly: the wire grammar forbids it) → zero hash.
  ClientHello empty;
  empty.legacy_version = 0x0303;
  CHECK_EQ(ja4_string(empty), std::string("t12i000000_000000000000_000000000000"));
  CHECK_EQ(ja3_string(empty), std::string("771,,,,"));
}

TEST(client_hello_openssl_s_client_capture) {
  std::string recs = openssl_hello_records();
  CHECK_EQ(recs.size(), size_t{333});
  CHECK_EQ(client_hello_records_length(placed(recs), recs.size()), size_t{333});
  ClientHello ch;
  std::string err;
  size_t used = 0;
  CHECK(parse_records(recs, &ch, &err, &used));
  CHECK_EQ(err, std::string());
  CHECK_EQ(used, size_t{333});
  CHECK_EQ(ch.cipher_suites.size(), size_t{31});
  CHECK_EQ(ch.cipher_suites.front(), 0x1302);
  CHECK_EQ(ch.cipher_suites.back(), 0x00ff);
  CHECK(ch.extensions ==
        std::vector<uint16_t>({0x0000, 0x000b, 0x000a, 0x0023, 0x0010, 0x0016, 0x0017, 0x000d, 0x002b, 0x002d, 0x0033}));
  CHECK(ch.supported_groups ==
        std::vector<uint16_t>({0x001d, 0x0017, 0x001e, 0x0019, 0x0018, 0x0100, 0x0101, 0x0102, 0x0103, 0x0104}));
  CHECK(ch.ec_point_formats == std::vector<uint8_t>({0, 1, 2}));
  CHECK_EQ(ch.signature_algorithms.size(), size_t{20});
  CHECK(ch.supported_versions == std::vector<uint16_t>({0x0304, 0x0303, 0x0302, 0x0301}));
  CHECK(ch.key_share_groups == std::vector<uint16_t>({0x001d}));
  CHECK(ch.alpn == std::vector<std::string>({"h2", "http/1.1"}));
  CHECK_EQ(ch.server_name, std::string("localhost"));

  // Expected values computed by test/helpers/client-hello.ts from the same bytes.
  Fingerprint fp;
  CHECK(fingerprint_from_bytes(placed(recs), recs.size(), &fp));
  CHECK_EQ(fp.ja3, std::string("771,4866-4867-4865-49196-49200-159-52393-52392-52394-49195-49199-158-49188-49192-107-49187-49191-103-"
                            "49162-49172-57-49161-49171-51-157-156-61-60-53-47-255,0-11-10-35-16-22-23-13-43-45-51,"
                            "29-23-30-25-24-256-257-258-259-260,0-1-2"));
  CHECK_EQ(fp.ja3_hash, std::string("5a1edc7f170af1014fc65c994878e63c"));
  CHECK_EQ(fp.ja4, std::string("t13d3111h2_e8f1e7e78f70_1f22a2ca17c4"));
  CHECK_EQ(fp.ja4_r, std::string("t13d3111h2_002f,0033,0035,0039,003c,003d,0067,006b,009c,009d,009e,009f,00ff,1301,1302,1303,c009,"
                              "c00a,c013,c014,c023,c024,c027,c028,c02b,c02c,c02f,c030,cca8,cca9,ccaa_000a,000b,000d,0016,"
                              "0017,0023,002b,002d,0033_0403,0503,0603,0807,0808,0809,080a,080b,0804,0805,0806,0401,0501,"
                              "0601,0303,0301,0302,0402,0502,0602"));

  // The handshake-message form (what OpenSSL's msg callback delivers) gives the same fingerprint.
  std::string msg = recs.substr(5);
  Fingerprint fp2;
  CHECK(fingerprint_from_bytes(placed(msg), msg.size(), &fp2));
  CHECK_EQ(fp2.ja4, fp.ja4);
  CHECK_EQ(fp2.ja3_hash, fp.ja3_hash);
}

TEST(client_hello_records_split_everywhere) {
  std::string msg = spec_example_message();
  ClientHello ref;
  CHECK(parse(msg, &ref));
  std::string want = ja4_raw(ref) + "|" + ja3_string(ref);
  // Every record size from 1 byte (the 4-byte handshake header spans four records) up.
  for (size_t chunk = 1; chunk <= msg.size(); ++chunk) {
    std::string recs = records(msg, chunk);
    ClientHello ch;
    std::string err;
    size_t used = 0;
    if (!parse_records(recs, &ch, &err, &used)) {
      std::fprintf(stderr, "  chunk %zu: %s\n", chunk, err.c_str());
      CHECK(false);
      continue;
    }
    CHECK_EQ(used, recs.size());
    CHECK_EQ(ja4_raw(ch) + "|" + ja3_string(ch), want);
    // Every proper prefix is "need more", never an error, never a read past the end.
    if (chunk == 1 || chunk == 7 || chunk == msg.size()) {
      for (size_t k = 0; k < recs.size(); ++k) {
        CHECK_EQ(client_hello_records_length(placed(recs.substr(0, k)), k), size_t{0});
      }
    }
  }
  // Bytes after the hello's last record (e.g. the next flight) are left alone.
  std::string recs = records(msg, 100) + records(handshake("x", 2));
  ClientHello ch;
  size_t used = 0;
  CHECK(parse_records(recs, &ch, nullptr, &used));
  CHECK_EQ(used, recs.size() - 10);
}

TEST(client_hello_records_rejects) {
  std::string msg = spec_example_message();
  auto length_of = [](const std::string& s) { return client_hello_records_length(placed(s), s.size()); };
  CHECK_EQ(length_of(records(msg)), records(msg).size());
  CHECK_EQ(length_of(records(msg, 16384, 3)), records(msg).size());  // record version 0x0303 is fine
  CHECK_EQ(length_of("\x17\x03\x01"), SIZE_MAX);                     // application data
  CHECK_EQ(length_of("GET / HTTP/1.1\r\n"), SIZE_MAX);               // plaintext HTTP
  CHECK_EQ(length_of(records(msg, 16384, 5)), SIZE_MAX);             // record version 0x0305
  CHECK_EQ(length_of(u8(22) + u8(2) + u8(0) + u16(1) + "\x01"), SIZE_MAX);
  CHECK_EQ(length_of(u8(22) + u8(3) + u8(1) + u16(0)), SIZE_MAX);    // empty handshake fragment
  CHECK_EQ(length_of(u8(22) + u8(3) + u8(1) + u16(16385)), SIZE_MAX);  // oversized record
  CHECK_EQ(length_of(records(handshake("x", 2))), SIZE_MAX);         // a ServerHello
  CHECK_EQ(length_of(u8(22) + u8(3) + u8(1) + u16(100) + "\x02"), SIZE_MAX);  // known early
  CHECK_EQ(length_of(u8(22) + u8(3) + u8(1) + u16(5) + "\x01\xff\xff\xff" + "z"),
           SIZE_MAX);  // body length larger than any ClientHello
  // The hello ends in the middle of a record: something else shares it.
  CHECK_EQ(length_of(records(msg + "tail")), SIZE_MAX);
  ClientHello ch;
  std::string err;
  CHECK(!parse_records(records(msg).substr(0, 50), &ch, &err));
  CHECK_EQ(err, std::string("incomplete ClientHello records"));
}

TEST(client_hello_strict_vectors) {
  std::vector<uint16_t> c = {0x1301};
  auto rejects = [](const std::string& body, unsigned type = 1) {
    ClientHello ch;
    std::string err;
    bool ok = parse(handshake(body, type), &ch, &err);
    if (!ok && err.empty()) std::fprintf(stderr, "  rejected without a reason\n");
    return !ok && !err.empty();
  };
  // Valid baselines.
  ClientHello ch;
  CHECK(parse(handshake(hello_body(0x0303, c, {}, false)), &ch));  // no extension block at all
  CHECK(ch.extensions.empty());
  CHECK(parse(handshake(hello_body(0x0303, c, {})), &ch));  // empty extension block

  CHECK(rejects(hello_body(0x0303, c, {}), 2));                          // not a ClientHello
  CHECK(rejects(hello_body(0x0303, {}, {})));                            // empty cipher_suites
  CHECK(rejects(u16(0x0303) + std::string(32, 'r') + vec8(std::string(33, 's')) + vec16(u16(1)) + vec8(u8(0))));
  CHECK(rejects(u16(0x0303) + std::string(32, 'r') + vec8("") + vec16("\x13") + vec8(u8(0))));  // odd length
  CHECK(rejects(u16(0x0303) + std::string(32, 'r') + vec8("") + vec16(u16(1)) + vec8("")));     // no compression
  CHECK(rejects(hello_body(0x0303, c, {}, false) + "x"));                // 1 stray byte instead of a block
  CHECK(rejects(hello_body(0x0303, c, {}) + "x"));                       // bytes after the block
  CHECK(rejects(hello_body(0x0303, c, {{0x0017, ""}, {0x0017, ""}})));   // duplicate extension
  CHECK(rejects(hello_body(0x0303, c, {{0, ""}})));                      // empty SNI
  CHECK(rejects(hello_body(0x0303, c, {{0, vec16(u8(0) + vec16("a")) + "x"}})));  // trailing in SNI ext
  CHECK(rejects(hello_body(0x0303, c, {{0, vec16(u8(0) + vec16("a") + "x")}})));  // trailing in SNI list
  CHECK(rejects(hello_body(0x0303, c, {{0, vec16(u8(0) + vec16(""))}})));        // empty host name
  CHECK(rejects(hello_body(0x0303, c, {{16, vec16(vec8("h2") + vec8(""))}})));    // empty ALPN name
  CHECK(rejects(hello_body(0x0303, c, {{16, vec16("")}})));                       // empty ALPN list
  CHECK(rejects(hello_body(0x0303, c, {{16, vec16(vec8("h2")) + "x"}})));
  CHECK(rejects(hello_body(0x0303, c, {{10, vec16(u16(29)) + "x"}})));
  CHECK(rejects(hello_body(0x0303, c, {{10, vec16("\x00\x1d\x00")}})));           // odd groups
  CHECK(rejects(hello_body(0x0303, c, {{11, vec8("")}})));
  CHECK(rejects(hello_body(0x0303, c, {{13, vec16("")}})));
  CHECK(rejects(hello_body(0x0303, c, {{43, vec8(u16(0x0304) + "x")}})));
  CHECK(rejects(hello_body(0x0303, c, {{51, vec16(u16(29) + vec16(""))}})));      // empty key share
  CHECK(rejects(hello_body(0x0303, c, {{51, vec16(u16(29) + vec16("k") + "x")}})));
  // Handshake length must match the message exactly.
  std::string good = handshake(hello_body(0x0303, c, {}));
  CHECK(!parse(good + "x", &ch));
  CHECK(!parse(good.substr(0, good.size() - 1), &ch));
  // Unknown extensions are opaque but their length is still checked.
  CHECK(parse(handshake(hello_body(0x0303, c, {{0x7777, "anything"}})), &ch));
  std::string body = hello_body(0x0303, c, {{0x7777, "anything"}});
  body[body.size() - 9] = 9;  // declared ext length 9 > the 8 bytes left
  CHECK(rejects(body));
  // A key share with a zero-length list is allowed (HelloRetryRequest flow).
  CHECK(parse(handshake(hello_body(0x0303, c, {{51, vec16("")}})), &ch));
  // SNI value: the first host_name entry; other name types are skipped.
  CHECK(parse(handshake(hello_body(0x0303, c, {{0, vec16(u8(7) + vec16("zz") + u8(0) + vec16("h") + u8(0) + vec16("i"))}})),
              &ch));
  CHECK_EQ(ch.server_name, std::string("h"));
}

// Every truncation and every single-byte corruption of real hellos: no crash, no read past the end
// (the guard page faults), no error without a reason; truncations always fail.
TEST(client_hello_truncate_and_corrupt_everywhere) {
  std::vector<std::string> inputs = {spec_example_message(), openssl_hello_records().substr(5)};
  for (const std::string& msg : inputs) {
    for (size_t k = 0; k < msg.size(); ++k) {
      ClientHello ch;
      std::string err;
      CHECK(!parse(msg.substr(0, k), &ch, &err));
      CHECK(!err.empty());
    }
    static const uint8_t kValues[] = {0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff};
    for (size_t i = 0; i < msg.size(); ++i) {
      for (uint8_t v : kValues) {
        std::string m = msg;
        m[i] = static_cast<char>(v);
        ClientHello ch;
        std::string err;
        if (!parse(m, &ch, &err)) {
          CHECK(!err.empty());
        } else {
          // Whatever parses must fingerprint without trouble.
          CHECK(!ja4_string(ch).empty());
          CHECK_EQ(ja3_hash(ja3_string(ch)).size(), size_t{32});
        }
        std::string recs = records(m, 61);
        Fingerprint fp;
        fingerprint_from_bytes(placed(recs), recs.size(), &fp);
        fingerprint_from_bytes(placed(m), m.size(), &fp);
      }
    }
  }
  Fingerprint fp;
  CHECK(!fingerprint_from_bytes(placed(""), 0, &fp));
  CHECK(fp.ja4.empty());
}
