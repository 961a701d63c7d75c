// TLS client contexts: one validated, immutable profile (versions, ciphers, groups, sigalgs,
// ALPN, SNI, tickets, trust, client certificate) compiled into an OpenSSL SSL_CTX, plus the
// per-origin session cache used for resumption. No libuv, no sockets: the OpenSSL that Node
// exports (headers from Node's include dir) and plain bytes.
//
// Threading: a Context may be used by engines on several threads at once (Session ioThreads, and
// one profile shared by sessions): its session cache is behind a mutex; the SSL_CTX and CA
// store themselves are only read after creation.
#pragma once
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/errors.h"

namespace uvf::tls {

// A set of trusted certificates (OpenSSL X509_STORE), shared by the contexts that use it.
class CaStore {
 public:
  // Parses PEM blocks (each string may hold several certificates). Returns nullptr and sets
  // *err when a string holds no certificate or cannot be parsed.
  static std::shared_ptr<CaStore> from_pem(const std::vector<std::string>& pems, std::string* err);
  ~CaStore();
  X509_STORE* store() const { return store_; }
  size_t count() const { return count_; }

 private:
  X509_STORE* store_ = nullptr;
  size_t count_ = 0;
};

struct ProfileConfig {
  int min_version = TLS1_2_VERSION;  // TLS1_VERSION .. TLS1_3_VERSION
  int max_version = TLS1_3_VERSION;
  std::string ciphers;       // TLS <= 1.2 cipher names, ':'-separated, in offer order ("" = OpenSSL's)
  std::string ciphersuites;  // TLS 1.3 suites, ':'-separated, in offer order ("" = OpenSSL's)
  std::string groups;        // ':'-separated, in offer order ("" = OpenSSL's)
  std::string sigalgs;       // ':'-separated ("" = OpenSSL's)
  std::vector<std::string> alpn{"http/1.1"};  // offer order; empty = no ALPN extension
  std::string servername;    // SNI and verified name override ("" = the request's host)
  bool sni = true;           // send SNI for names (never for IP literals)
  bool session_tickets = true;
  bool reject_unauthorized = true;
  bool check_hostname = true;  // verify the name/IP against the certificate (when rejecting)
  int verify_depth = -1;       // max chain depth; -1 = OpenSSL's default (100)
  bool partial_chain = false;  // trust an intermediate in the CA store as an anchor
  std::shared_ptr<CaStore> ca;  // trust anchors (required when reject_unauthorized)
  std::string cert_pem;         // client certificate chain (leaf first)
  std::string key_pem;          // its private key
  std::string passphrase;       // for an encrypted key
  size_t session_cache_size = 256;  // origins with a resumable session kept; 0 = no resumption

  // ClientHello shaping (browser profiles). Only what the stack can then handle is ever sent.
  bool grease = false;            // two GREASE extensions (RFC 8701), first and last, as Chrome/Safari
  bool status_request = false;    // status_request (OCSP stapling request)
  bool sct = false;               // signed_certificate_timestamp (OpenSSL's CT, permissive: never fails)
  bool encrypt_then_mac = true;   // false = SSL_OP_NO_ENCRYPT_THEN_MAC (no extension 22)
  bool padding = false;           // SSL_OP_TLSEXT_PADDING (extension 21, when the hello is 256..511 bytes)
  unsigned record_size_limit = 0; // record_size_limit (RFC 8449) to announce, 64..16385; 0 = not sent
  bool ech_grease = false;        // an encrypted_client_hello GREASE (no real ECH: retry_configs ignored)
  // Certificate compression algorithms offered (compress_certificate), e.g. {"brotli"}: only
  // those the running OpenSSL can decompress (3.2+ built with them); none where it cannot.
  std::vector<std::string> cert_compression;
  bool cert_compression_set = false;  // false = OpenSSL's default (3.5 offers every built-in one)
};

// What the running OpenSSL can do for a profile (OpenSSL is Node's: known only at run time).
struct Capabilities {
  bool cert_compression = false;           // SSL_CTX_set1_cert_comp_preference exists
  std::vector<std::string> cert_comp_algs; // those it can decompress: "zlib", "brotli", "zstd"
};
Capabilities capabilities();

// Handshake results the engine reports (per context).
struct TlsCounters {
  uint64_t handshakes = 0, resumed = 0, failures = 0;
};

class Context {
 public:
  // Validates and compiles the profile. On failure returns nullptr with *err = TlsConfig and a
  // message naming the offending option and token in *detail.
  static std::shared_ptr<Context> create(const ProfileConfig& cfg, std::string* detail);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  SSL_CTX* ctx() const { return ctx_; }
  const ProfileConfig& config() const { return cfg_; }
  // Process-unique identity: part of the connection pool key.
  uint64_t id() const { return id_; }

  // Session cache, keyed by the origin string the connection passes (servername + port).
  // take_session returns an owned reference (caller frees with SSL_SESSION_free) or nullptr.
  // A TLS 1.3 ticket leaves the cache (single use; the handshake brings new ones); a TLS 1.2
  // session stays, reusable by every later connection (a resumed 1.2 handshake brings none).
  SSL_SESSION* take_session(const std::string& origin);
  void put_session(const std::string& origin, SSL_SESSION* s);  // takes ownership of s
  size_t cached_sessions() const {
    std::lock_guard<std::mutex> g(mu_);
    return sessions_.size();
  }

  // The SSL_CTX ex-data slot that points back at the Context (for callbacks).
  static int ex_index();

 private:
  explicit Context(const ProfileConfig& cfg);
  ProfileConfig cfg_;
  SSL_CTX* ctx_ = nullptr;
  uint64_t id_;
  struct Cached {
    std::string origin;
    SSL_SESSION* session;
  };
  mutable std::mutex mu_;  // guards lru_ and sessions_
  std::list<Cached> lru_;  // most recent first
  unsigned char rsl_[2] = {0, 0};  // record_size_limit extension body
  unsigned grease_last_ = 0;
  std::unordered_map<std::string, std::list<Cached>::iterator> sessions_;
};

// "TLSv1.2" → TLS1_2_VERSION; 0 if unknown. Accepts "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3".
int parse_version(const std::string& s);
// Maps an X509_V_ERR_* verify result to a core code.
Error verify_error_code(long verify_result);

}  // namespace uvf::tls
