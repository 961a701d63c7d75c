// Tests for tls/tls_context's ClientHello shaping: the extensions a profile adds (GREASE, ECH
// GREASE, record_size_limit, status_request, SCT, no encrypt-then-MAC) as they appear in the
// bytes OpenSSL writes, optional '?groups', option validation, and the server side of
// record_size_limit in a real in-memory handshake (a server limit is honoured for what the client
// sends; one OpenSSL cannot honour fails the handshake instead of being ignored).
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <map>
#include <string>
#include <vector>

#include "check.h"
#include "tls/client_hello.h"
#include "tls/tls_context.h"

using namespace uvf::tls;

namespace {

std::shared_ptr<Context> make(ProfileConfig cfg, std::string* detail) {
  cfg.reject_unauthorized = false;
  return Context::create(cfg, detail);
}

std::string drain(BIO* b) {
  std::string out;
  char buf[4096];
  int n;
  while ((n = BIO_read(b, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

// The first flight of a client SSL over memory BIOs (the ClientHello records).
std::string client_hello_bytes(Context& ctx) {
  SSL* ssl = SSL_new(ctx.ctx());
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, rbio, wbio);
  SSL_set_connect_state(ssl);
  SSL_set_tlsext_host_name(ssl, "example.test");
  SSL_do_handshake(ssl);
  std::string out = drain(wbio);
  SSL_free(ssl);
  ERR_clear_error();
  return out;
}

// Extension type → data, walked from a single-record ClientHello (independently of client_hello.cc).
std::map<unsigned, std::string> extensions_of(const std::string& rec) {
  std::map<unsigned, std::string> out;
  auto u8 = [&](size_t i) { return static_cast<unsigned>(static_cast<uint8_t>(rec.at(i))); };
  auto u16 = [&](size_t i) { return (u8(i) << 8) | u8(i + 1); };
  size_t i = 5 + 4 + 2 + 32;
  i += 1 + u8(i);   // session id
  i += 2 + u16(i);  // cipher suites
  i += 1 + u8(i);   // compression methods
  size_t end = i + 2 + u16(i);
  i += 2;
  while (i + 4 <= end) {
    unsigned type = u16(i), len = u16(i + 2);
    out[type] = rec.substr(i + 4, len);
    i += 4 + len;
  }
  return out;
}

// A throwaway P-256 certificate for the in-memory server.
bool self_signed(EVP_PKEY** key, X509** cert) {
  *key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  *cert = X509_new();
  if (*key == nullptr || *cert == nullptr) return false;
  ASN1_INTEGER_set(X509_get_serialNumber(*cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(*cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(*cert), 3600);
  X509_set_pubkey(*cert, *key);
  X509_NAME* name = X509_get_subject_name(*cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("example.test"), -1, -1, 0);
  X509_set_issuer_name(*cert, name);
  return X509_sign(*cert, *key, EVP_sha256()) > 0;
}

unsigned char g_server_limit[2];
int server_rsl_add(SSL*, unsigned, unsigned, const unsigned char** out, size_t* outlen, X509*, size_t, int*, void*) {
  *out = g_server_limit;
  *outlen = 2;
  return 1;
}
int server_rsl_parse(SSL*, unsigned, unsigned, const unsigned char*, size_t, X509*, size_t, int*, void*) { return 1; }

struct Pair {
  SSL* client = nullptr;
  SSL* server = nullptr;
  BIO* c2s = nullptr;  // what the client wrote (server reads)
  BIO* s2c = nullptr;
  ~Pair() {
    SSL_free(client);
    SSL_free(server);
  }
};

// Runs a handshake between `ctx` and a server that answers record_size_limit with `limit`.
// Returns true when both sides completed it.
bool handshake_with_limit(Context& ctx, unsigned limit, Pair* p) {
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  if (!self_signed(&key, &cert)) return false;
  SSL_CTX* sctx = SSL_CTX_new(TLS_server_method());
  SSL_CTX_use_certificate(sctx, cert);
  SSL_CTX_use_PrivateKey(sctx, key);
  X509_free(cert);
  EVP_PKEY_free(key);
  g_server_limit[0] = static_cast<unsigned char>(limit >> 8);
  g_server_limit[1] = static_cast<unsigned char>(limit & 0xff);
  SSL_CTX_add_custom_ext(sctx, 28, SSL_EXT_CLIENT_HELLO | SSL_EXT_TLS1_3_ENCRYPTED_EXTENSIONS, server_rsl_add, nullptr,
                         nullptr, server_rsl_parse, nullptr);
  p->client = SSL_new(ctx.ctx());
  p->server = SSL_new(sctx);
  SSL_CTX_free(sctx);  // the SSL keeps its own reference
  // Each side reads what the other writes: two memory BIOs, each side owning its own pair.
  BIO* c_in = BIO_new(BIO_s_mem());
  BIO* c_out = BIO_new(BIO_s_mem());
  BIO* s_in = BIO_new(BIO_s_mem());
  BIO* s_out = BIO_new(BIO_s_mem());
  SSL_set_bio(p->client, c_in, c_out);
  SSL_set_bio(p->server, s_in, s_out);
  p->c2s = c_out;
  p->s2c = s_out;
  SSL_set_connect_state(p->client);
  SSL_set_accept_state(p->server);
  bool c_done = false, s_done = false;
  for (int round = 0; round < 20 && !(c_done && s_done); ++round) {
    if (!c_done) {
      int r = SSL_do_handshake(p->client);
      if (r == 1) c_done = true;
      else if (SSL_get_error(p->client, r) != SSL_ERROR_WANT_READ) return false;
    }
    std::string bytes = drain(c_out);
    BIO_write(s_in, bytes.data(), static_cast<int>(bytes.size()));
    if (!s_done) {
      int r = SSL_do_handshake(p->server);
      if (r == 1) s_done = true;
      else if (SSL_get_error(p->server, r) != SSL_ERROR_WANT_READ) return false;
    }
    bytes = drain(s_out);
    BIO_write(c_in, bytes.data(), static_cast<int>(bytes.size()));
  }
  return c_done && s_done;
}

// Sizes of the TLS records in `bytes`.
std::vector<size_t> record_sizes(const std::string& bytes) {
  std::vector<size_t> out;
  size_t i = 0;
  while (i + 5 <= bytes.size()) {
    size_t len = (static_cast<size_t>(static_cast<uint8_t>(bytes[i + 3])) << 8) | static_cast<uint8_t>(bytes[i + 4]);
    out.push_back(len);
    i += 5 + len;
  }
  return out;
}

}  // namespace

TEST(tls_context_shaping_extensions_in_the_hello) {
  ProfileConfig cfg;
  cfg.grease = true;
  cfg.status_request = true;
  cfg.sct = true;
  cfg.encrypt_then_mac = false;
  cfg.ech_grease = true;
  cfg.record_size_limit = 16385;
  std::string detail;
  auto ctx = make(cfg, &detail);
  CHECK(ctx != nullptr);
  if (!ctx) return;
  std::string rec = client_hello_bytes(*ctx);
  ClientHello ch;
  std::string err;
  CHECK(parse_client_hello_records(reinterpret_cast<const uint8_t*>(rec.data()), rec.size(), &ch, &err, nullptr));
  // Two GREASE extensions: the first one sent, the second one later, different values.
  std::vector<uint16_t> grease;
  for (uint16_t e : ch.extensions)
    if (is_grease(e)) grease.push_back(e);
  CHECK_EQ(grease.size(), 2u);
  CHECK(is_grease(ch.extensions.front()));
  if (grease.size() == 2) CHECK(grease[0] != grease[1]);
  auto exts = extensions_of(rec);
  CHECK(exts.count(5) == 1 && exts.count(18) == 1);
  CHECK(exts.count(22) == 0);  // no encrypt_then_mac
  CHECK(exts.count(28) == 1 && exts[28] == std::string("\x40\x01", 2));
  CHECK(exts.count(0xfe0d) == 1);
  const std::string& ech = exts[0xfe0d];
  CHECK_EQ(ech.size(), 1u + 4u + 1u + 2u + 32u + 2u + 208u);
  if (ech.size() > 40) {
    CHECK(ech.substr(0, 5) == std::string("\x00\x00\x01\x00\x01", 5));  // outer, HKDF-SHA256, AES-128-GCM
    CHECK(ech.substr(6, 2) == std::string("\x00\x20", 2));
  }
  if (grease.size() == 2) CHECK(exts[grease[1]] == std::string(1, '\0'));
  // The defaults change nothing: encrypt_then_mac present, none of the above.
  auto plain = make(ProfileConfig{}, &detail);
  CHECK(plain != nullptr);
  if (!plain) return;
  auto pexts = extensions_of(client_hello_bytes(*plain));
  CHECK(pexts.count(22) == 1);
  CHECK(pexts.count(5) == 0 && pexts.count(18) == 0 && pexts.count(28) == 0 && pexts.count(0xfe0d) == 0);
}

TEST(tls_context_optional_groups_and_validation) {
  std::string detail;
  ProfileConfig cfg;
  cfg.groups = "?NoSuchGroup:X25519:P-256";
  auto ctx = make(cfg, &detail);
  CHECK(ctx != nullptr);
  if (ctx) CHECK_EQ(ctx->config().groups, std::string("X25519:P-256"));
  cfg.groups = "?NoSuchGroup";
  CHECK(make(cfg, &detail) == nullptr);
  CHECK(detail.find("groups") != std::string::npos);
  cfg.groups = "NoSuchGroup:X25519";  // not optional: still an error naming it
  CHECK(make(cfg, &detail) == nullptr);
  CHECK(detail.find("NoSuchGroup") != std::string::npos);
  ProfileConfig r;
  r.record_size_limit = 63;
  CHECK(make(r, &detail) == nullptr);
  r.record_size_limit = 16386;
  CHECK(make(r, &detail) == nullptr);
  ProfileConfig c;
  c.cert_compression = {"lzma"};
  c.cert_compression_set = true;
  CHECK(make(c, &detail) == nullptr);
  CHECK(detail.find("lzma") != std::string::npos);
  // Algorithms this OpenSSL cannot decompress are simply not offered: no compress_certificate.
  c.cert_compression = {"brotli"};
  auto cc = make(c, &detail);
  CHECK(cc != nullptr);
  if (cc) {
    auto exts = extensions_of(client_hello_bytes(*cc));
    Capabilities caps = capabilities();
    bool brotli = false;
    for (const auto& a : caps.cert_comp_algs) brotli = brotli || a == "brotli";
    CHECK_EQ(exts.count(27), brotli ? 1u : 0u);
  }
}

TEST(tls_context_record_size_limit_from_the_server_is_honoured) {
  ProfileConfig cfg;
  cfg.record_size_limit = 16385;
  std::string detail;
  auto ctx = make(cfg, &detail);
  CHECK(ctx != nullptr);
  if (!ctx) return;
  Pair p;
  CHECK(handshake_with_limit(*ctx, 1024, &p));
  if (p.client == nullptr) return;
  CHECK_EQ(SSL_version(p.client), TLS1_3_VERSION);
  drain(p.c2s);
  std::string data(4000, 'x');
  CHECK_EQ(SSL_write(p.client, data.data(), static_cast<int>(data.size())), 4000);
  std::vector<size_t> sizes = record_sizes(drain(p.c2s));
  // 1023 bytes of data + the content type + a 16-byte tag per record, at most: four records.
  CHECK(sizes.size() >= 4);
  for (size_t s : sizes) CHECK(s <= 1024u + 16u);
}

TEST(tls_context_record_size_limit_too_small_fails_the_handshake) {
  ProfileConfig cfg;
  cfg.record_size_limit = 16385;
  std::string detail;
  auto ctx = make(cfg, &detail);
  CHECK(ctx != nullptr);
  if (!ctx) return;
  Pair p;
  CHECK(!handshake_with_limit(*ctx, 256, &p));  // OpenSSL cannot send records under 512 bytes
  ERR_clear_error();
}

TEST(tls_context_ech_grease_repeats_after_hello_retry_request) {
  ProfileConfig cfg;
  cfg.ech_grease = true;
  cfg.groups = "X25519:P-256";  // a key share for X25519 only
  std::string detail;
  auto ctx = make(cfg, &detail);
  CHECK(ctx != nullptr);
  if (!ctx) return;
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  CHECK(self_signed(&key, &cert));
  SSL_CTX* sctx = SSL_CTX_new(TLS_server_method());
  SSL_CTX_use_certificate(sctx, cert);
  SSL_CTX_use_PrivateKey(sctx, key);
  X509_free(cert);
  EVP_PKEY_free(key);
  SSL_CTX_set1_groups_list(sctx, "P-256");  // → HelloRetryRequest for P-256
  Pair p;
  p.client = SSL_new(ctx->ctx());
  p.server = SSL_new(sctx);
  SSL_CTX_free(sctx);
  BIO *c_in = BIO_new(BIO_s_mem()), *c_out = BIO_new(BIO_s_mem()), *s_in = BIO_new(BIO_s_mem()), *s_out = BIO_new(BIO_s_mem());
  SSL_set_bio(p.client, c_in, c_out);
  SSL_set_bio(p.server, s_in, s_out);
  SSL_set_connect_state(p.client);
  SSL_set_accept_state(p.server);
  SSL_do_handshake(p.client);
  std::string ch1 = drain(c_out);
  BIO_write(s_in, ch1.data(), static_cast<int>(ch1.size()));
  SSL_do_handshake(p.server);
  std::string hrr = drain(s_out);
  BIO_write(c_in, hrr.data(), static_cast<int>(hrr.size()));
  SSL_do_handshake(p.client);
  std::string flight2 = drain(c_out);
  // Skip a middlebox-compatibility ChangeCipherSpec record before the second ClientHello.
  size_t i = 0;
  while (i + 5 <= flight2.size() && flight2[i] != 0x16) i += 5 + ((static_cast<size_t>(static_cast<uint8_t>(flight2[i + 3])) << 8) | static_cast<uint8_t>(flight2[i + 4]));
  CHECK(i < flight2.size());
  if (i >= flight2.size()) return;
  auto e1 = extensions_of(ch1);
  auto e2 = extensions_of(flight2.substr(i));
  CHECK(e1.count(0xfe0d) == 1 && e2.count(0xfe0d) == 1);
  CHECK(e1[0xfe0d] == e2[0xfe0d]);
  // This is the second hello: its key share is for P-256 (0x0017) now.
  CHECK(e2[51].size() >= 4 && e2[51].substr(2, 2) == std::string("\x00\x17", 2));
  CHECK(e1[51].substr(2, 2) == std::string("\x00\x1d", 2));
  ERR_clear_error();
}
