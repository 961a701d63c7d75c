#include "tls/tls_context.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <dlfcn.h>
#include <openssl/rand.h>

#include <atomic>
#include <cstring>

namespace uvf::tls {

namespace {

std::atomic<uint64_t> g_next_id{1};

// OpenSSL's error queue is per thread and shared with Node's own crypto code: whatever we
// leave in it would show up in an unrelated Node error later. Every entry point clears it.
struct ClearErrors {
  ClearErrors() { ERR_clear_error(); }
  ~ClearErrors() { ERR_clear_error(); }
};

std::string openssl_reason() {
  unsigned long e = ERR_peek_last_error();
  if (e == 0) return "unknown OpenSSL error";
  const char* r = ERR_reason_error_string(e);
  return r != nullptr ? r : "unknown OpenSSL error";
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(':', start);
    if (end == std::string::npos) end = s.size();
    std::string tok = s.substr(start, end - start);
    // trim spaces
    size_t a = tok.find_first_not_of(" \t");
    size_t b = tok.find_last_not_of(" \t");
    out.push_back(a == std::string::npos ? std::string() : tok.substr(a, b - a + 1));
    start = end + 1;
  }
  return out;
}

// Checks every token of a ':'-list on its own with `apply` (on a scratch SSL_CTX), so an
// unknown name is reported by name instead of being silently dropped from the list.
template <class Apply>
bool check_tokens(const char* option, const std::string& list, Apply apply, bool allow_operators,
                  std::string* detail) {
  SSL_CTX* probe = SSL_CTX_new(TLS_client_method());
  if (probe == nullptr) {
    *detail = "could not create an OpenSSL context";
    return false;
  }
  bool ok = true;
  for (const std::string& tok : split_list(list)) {
    if (tok.empty()) {
      *detail = std::string(option) + ": empty entry in \"" + list + "\"";
      ok = false;
      break;
    }
    if (allow_operators && (tok[0] == '!' || tok[0] == '-' || tok[0] == '+' || tok[0] == '@')) continue;
    if (!apply(probe, tok.c_str())) {
      *detail = std::string(option) + ": unknown or unsupported entry \"" + tok + "\"";
      ok = false;
      break;
    }
  }
  SSL_CTX_free(probe);
  return ok;
}

const char* version_name(int v) {
  switch (v) {
    case TLS1_VERSION: return "TLSv1";
    case TLS1_1_VERSION: return "TLSv1.1";
    case TLS1_2_VERSION: return "TLSv1.2";
    case TLS1_3_VERSION: return "TLSv1.3";
    default: return "?";
  }
}

int new_session_cb(SSL* ssl, SSL_SESSION* sess);

// ---- ClientHello shaping ----------------------------------------------------------------------

// The groups list with '?'-prefixed names (optional, as OpenSSL 3.5 spells it) resolved here for
// every OpenSSL: an optional name the running OpenSSL does not know is dropped, silently.
std::string resolve_optional_groups(const std::string& list) {
  if (list.find('?') == std::string::npos) return list;
  SSL_CTX* probe = SSL_CTX_new(TLS_client_method());
  std::string out;
  for (const std::string& tok : split_list(list)) {
    std::string name = tok;
    if (!name.empty() && name[0] == '?') {
      name.erase(0, 1);
      if (probe == nullptr || SSL_CTX_set1_groups_list(probe, name.c_str()) != 1) continue;
    }
    if (!out.empty()) out.push_back(':');
    out += name;
  }
  if (probe != nullptr) SSL_CTX_free(probe);
  ERR_clear_error();
  return out;
}

// OpenSSL 3.2+ only; Node's headers may be older than the OpenSSL it runs with (an addon built
// on Node 20 runs on Node 24), so it is looked up at run time.
using CertCompPrefFn = int (*)(SSL_CTX*, int*, size_t);
CertCompPrefFn cert_comp_pref_fn() {
  static CertCompPrefFn fn =
      reinterpret_cast<CertCompPrefFn>(dlsym(RTLD_DEFAULT, "SSL_CTX_set1_cert_comp_preference"));
  return fn;
}

int cert_comp_id(const std::string& name) {
  if (name == "zlib") return 1;    // TLSEXT_comp_cert_zlib
  if (name == "brotli") return 2;  // TLSEXT_comp_cert_brotli
  if (name == "zstd") return 3;    // TLSEXT_comp_cert_zstd
  return 0;
}

constexpr unsigned kGreaseValues[16] = {0x0a0a, 0x1a1a, 0x2a2a, 0x3a3a, 0x4a4a, 0x5a5a, 0x6a6a, 0x7a7a,
                                        0x8a8a, 0x9a9a, 0xaaaa, 0xbaba, 0xcaca, 0xdada, 0xeaea, 0xfafa};
constexpr unsigned kEchType = 0xfe0d;           // encrypted_client_hello
constexpr unsigned kRecordSizeLimitType = 28;   // record_size_limit (RFC 8449)
const unsigned char kOneZero[1] = {0};

// GREASE extensions: the first empty, the last one byte (as Chrome sends them).
int grease_add(SSL*, unsigned, unsigned, const unsigned char** out, size_t* outlen, X509*, size_t, int*, void* arg) {
  *out = kOneZero;
  *outlen = arg != nullptr ? 1 : 0;
  return 1;
}

// An ECH GREASE (draft-ietf-tls-esni §6.2): outer type, HKDF-SHA256/AES-128-GCM, a random config
// id, a random 32-byte X25519 "enc" and a random 208-byte payload: indistinguishable from real ECH
// to a server without the (non-existent) key, which then just uses the outer hello. Made once per
// connection (kept in the SSL's ex-data): a second ClientHello after a HelloRetryRequest repeats it.
constexpr size_t kEchEnc = 32, kEchPayload = 208, kEchLen = 1 + 4 + 1 + 2 + kEchEnc + 2 + kEchPayload;

void ech_ex_free(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) { OPENSSL_free(ptr); }

int ech_ex_index() {
  static int idx = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, ech_ex_free);
  return idx;
}

int ech_add(SSL* s, unsigned, unsigned, const unsigned char** out, size_t* outlen, X509*, size_t, int* al, void*) {
  auto* b = static_cast<unsigned char*>(SSL_get_ex_data(s, ech_ex_index()));
  if (b == nullptr) {
    b = static_cast<unsigned char*>(OPENSSL_malloc(kEchLen));
    size_t i = 0;
    bool ok = b != nullptr;
    if (ok) {
      b[i++] = 0;              // ECHClientHelloType outer
      b[i++] = 0, b[i++] = 1;  // kdf_id HKDF-SHA256
      b[i++] = 0, b[i++] = 1;  // aead_id AES-128-GCM
      ok = RAND_bytes(b + i, 1) == 1;  // config_id
      i += 1;
      b[i++] = 0, b[i++] = kEchEnc;
      ok = ok && RAND_bytes(b + i, kEchEnc) == 1;
      i += kEchEnc;
      b[i++] = 0, b[i++] = kEchPayload;
      ok = ok && RAND_bytes(b + i, kEchPayload) == 1;
    }
    if (!ok || SSL_set_ex_data(s, ech_ex_index(), b) != 1) {
      OPENSSL_free(b);
      *al = SSL_AD_INTERNAL_ERROR;
      return -1;
    }
  }
  *out = b;
  *outlen = kEchLen;
  return 1;
}
// A server that knows ECH but not our (GREASE) config answers with retry_configs in
// EncryptedExtensions: a GREASE client ignores them.
int ech_parse(SSL*, unsigned, unsigned, const unsigned char*, size_t, X509*, size_t, int*, void*) { return 1; }

int rsl_add(SSL*, unsigned, unsigned, const unsigned char** out, size_t* outlen, X509*, size_t, int*, void* arg) {
  *out = static_cast<const unsigned char*>(arg);
  *outlen = 2;
  return 1;
}
// The server's own limit applies to what we send: honoured through max_send_fragment (TLS 1.3
// counts the inner content type byte). OpenSSL cannot send records under 512 bytes: a smaller
// limit fails the handshake rather than being ignored.
int rsl_parse(SSL* s, unsigned, unsigned context, const unsigned char* in, size_t inlen, X509*, size_t, int* al, void*) {
  if (inlen != 2) {
    *al = SSL_AD_DECODE_ERROR;
    return 0;
  }
  unsigned v = (static_cast<unsigned>(in[0]) << 8) | in[1];
  if (v < 64) {
    *al = SSL_AD_ILLEGAL_PARAMETER;
    return 0;
  }
  unsigned limit = (context & SSL_EXT_TLS1_3_ENCRYPTED_EXTENSIONS) != 0 ? v - 1 : v;
  if (limit > SSL3_RT_MAX_PLAIN_LENGTH) limit = SSL3_RT_MAX_PLAIN_LENGTH;
  if (limit < 512 || SSL_set_max_send_fragment(s, limit) != 1) {
    *al = SSL_AD_HANDSHAKE_FAILURE;
    return 0;
  }
  return 1;
}

bool add_ext(SSL_CTX* ctx, unsigned type, unsigned context, SSL_custom_ext_add_cb_ex add, SSL_custom_ext_free_cb_ex fr,
             void* add_arg, SSL_custom_ext_parse_cb_ex parse) {
  return SSL_CTX_add_custom_ext(ctx, type, context, add, fr, add_arg, parse, nullptr) == 1;
}

}  // namespace

Capabilities capabilities() {
  Capabilities c;
  CertCompPrefFn fn = cert_comp_pref_fn();
  c.cert_compression = fn != nullptr;
  if (fn == nullptr) return c;
  SSL_CTX* probe = SSL_CTX_new(TLS_client_method());
  if (probe == nullptr) return c;
  for (const char* name : {"zlib", "brotli", "zstd"}) {
    int id = cert_comp_id(name);
    if (fn(probe, &id, 1) == 1) c.cert_comp_algs.push_back(name);
  }
  SSL_CTX_free(probe);
  ERR_clear_error();
  return c;
}

namespace {

}  // namespace

// ---------------------------------------------------------------------------------------------
// CaStore

std::shared_ptr<CaStore> CaStore::from_pem(const std::vector<std::string>& pems, std::string* err) {
  ClearErrors clear;
  auto store = std::shared_ptr<CaStore>(new CaStore());
  store->store_ = X509_STORE_new();
  if (store->store_ == nullptr) {
    *err = "could not create a certificate store";
    return nullptr;
  }
  for (size_t i = 0; i < pems.size(); ++i) {
    const std::string& pem = pems[i];
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    if (bio == nullptr) {
      *err = "out of memory";
      return nullptr;
    }
    size_t here = 0;
    for (;;) {
      X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
      if (x == nullptr) break;
      // A certificate listed twice is not an error (the bundled roots and NODE_EXTRA_CA_CERTS may overlap).
      X509_STORE_add_cert(store->store_, x);
      X509_free(x);
      ++here;
    }
    BIO_free(bio);
    unsigned long last = ERR_peek_last_error();
    bool clean_end = last == 0 || (ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE);
    if (here == 0 || !clean_end) {
      *err = "ca[" + std::to_string(i) + "]: " + (here == 0 ? "no PEM certificate found" : openssl_reason());
      return nullptr;
    }
    ERR_clear_error();
    store->count_ += here;
  }
  return store;
}

CaStore::~CaStore() {
  if (store_ != nullptr) X509_STORE_free(store_);
}

// ---------------------------------------------------------------------------------------------
// Context

int Context::ex_index() {
  static int idx = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return idx;
}

Context::Context(const ProfileConfig& cfg) : cfg_(cfg), id_(g_next_id.fetch_add(1)) {}

Context::~Context() {
  for (auto& c : lru_) SSL_SESSION_free(c.session);
  if (ctx_ != nullptr) SSL_CTX_free(ctx_);
}

std::shared_ptr<Context> Context::create(const ProfileConfig& given, std::string* detail) {
  ClearErrors clear;
  ProfileConfig cfg = given;
  cfg.groups = resolve_optional_groups(given.groups);
  if (!given.groups.empty() && cfg.groups.empty()) {
    *detail = "groups: none of the optional groups is known to this OpenSSL";
    return nullptr;
  }
  if (cfg.record_size_limit != 0 && (cfg.record_size_limit < 64 || cfg.record_size_limit > 16385)) {
    *detail = "recordSizeLimit: expected 64 to 16385";
    return nullptr;
  }
  for (const std::string& a : cfg.cert_compression) {
    if (cert_comp_id(a) == 0) {
      *detail = "certCompression: unknown algorithm \"" + a + "\" (zlib, brotli or zstd)";
      return nullptr;
    }
  }
  if (cfg.min_version < TLS1_VERSION || cfg.min_version > TLS1_3_VERSION || cfg.max_version < TLS1_VERSION ||
      cfg.max_version > TLS1_3_VERSION) {
    *detail = "minVersion/maxVersion: unsupported TLS version";
    return nullptr;
  }
  if (cfg.min_version > cfg.max_version) {
    *detail = std::string("minVersion ") + version_name(cfg.min_version) + " is above maxVersion " +
              version_name(cfg.max_version);
    return nullptr;
  }
  if (cfg.reject_unauthorized && !cfg.ca) {
    *detail = "no trust anchors: verification is on but no CA store was given";
    return nullptr;
  }
  if (!cfg.ciphers.empty() &&
      !check_tokens("ciphers", cfg.ciphers, [](SSL_CTX* c, const char* t) { return SSL_CTX_set_cipher_list(c, t) == 1; },
                    true, detail)) {
    return nullptr;
  }
  if (!cfg.ciphersuites.empty() &&
      !check_tokens("ciphersuites", cfg.ciphersuites,
                    [](SSL_CTX* c, const char* t) { return SSL_CTX_set_ciphersuites(c, t) == 1; }, false, detail)) {
    return nullptr;
  }
  if (!cfg.groups.empty() &&
      !check_tokens("groups", cfg.groups, [](SSL_CTX* c, const char* t) { return SSL_CTX_set1_groups_list(c, t) == 1; },
                    false, detail)) {
    return nullptr;
  }
  if (!cfg.sigalgs.empty() &&
      !check_tokens("sigalgs", cfg.sigalgs,
                    [](SSL_CTX* c, const char* t) { return SSL_CTX_set1_sigalgs_list(c, t) == 1; }, false, detail)) {
    return nullptr;
  }
  std::string alpn_wire;
  for (const std::string& p : cfg.alpn) {
    if (p.empty() || p.size() > 255) {
      *detail = "alpn: protocol names must be 1 to 255 bytes";
      return nullptr;
    }
    alpn_wire.push_back(static_cast<char>(p.size()));
    alpn_wire.append(p);
  }
  if (cfg.key_pem.empty() != cfg.cert_pem.empty()) {
    *detail = cfg.cert_pem.empty() ? "key given without cert" : "cert given without key";
    return nullptr;
  }

  std::shared_ptr<Context> self(new Context(cfg));
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) {
    *detail = "could not create an OpenSSL context: " + openssl_reason();
    return nullptr;
  }
  self->ctx_ = ctx;
  SSL_CTX_set_ex_data(ctx, ex_index(), self.get());
  SSL_CTX_set_min_proto_version(ctx, cfg.min_version);
  SSL_CTX_set_max_proto_version(ctx, cfg.max_version);
  // Idle keep-alive connections hold no 34 KiB record buffers.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  if (!cfg.session_tickets) SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  // Whole lists (order kept as given); every token was checked above.
  if ((!cfg.ciphers.empty() && SSL_CTX_set_cipher_list(ctx, cfg.ciphers.c_str()) != 1) ||
      (!cfg.ciphersuites.empty() && SSL_CTX_set_ciphersuites(ctx, cfg.ciphersuites.c_str()) != 1) ||
      (!cfg.groups.empty() && SSL_CTX_set1_groups_list(ctx, cfg.groups.c_str()) != 1) ||
      (!cfg.sigalgs.empty() && SSL_CTX_set1_sigalgs_list(ctx, cfg.sigalgs.c_str()) != 1)) {
    *detail = "OpenSSL rejected the list: " + openssl_reason();
    return nullptr;
  }
  if (!alpn_wire.empty() &&
      SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(alpn_wire.data()),
                              static_cast<unsigned>(alpn_wire.size())) != 0) {  // 0 = success here
    *detail = "alpn: " + openssl_reason();
    return nullptr;
  }

  // ClientHello shaping.
  if (!cfg.encrypt_then_mac) SSL_CTX_set_options(ctx, SSL_OP_NO_ENCRYPT_THEN_MAC);
  if (cfg.padding) SSL_CTX_set_options(ctx, SSL_OP_TLSEXT_PADDING);
  if (cfg.status_request) SSL_CTX_set_tlsext_status_type(ctx, TLSEXT_STATUSTYPE_ocsp);
  // Permissive: SCTs are requested and parsed, never enforced (no CT log list is loaded).
  if (cfg.sct && SSL_CTX_enable_ct(ctx, SSL_CT_VALIDATION_PERMISSIVE) != 1) {
    *detail = "signedCertificateTimestamps: " + openssl_reason();
    return nullptr;
  }
  if (cfg.cert_compression_set) {
    CertCompPrefFn fn = cert_comp_pref_fn();
    std::vector<int> ids;
    for (const std::string& a : cfg.cert_compression) ids.push_back(cert_comp_id(a));
    // Unsupported algorithms are skipped by OpenSSL; none left (or no API) = none offered.
    if (fn != nullptr && (ids.empty() || fn(ctx, ids.data(), ids.size()) != 1)) fn(ctx, nullptr, 0);
    ERR_clear_error();
  }
  // Custom extensions go out before OpenSSL's own, in the order added.
  if (cfg.grease) {
    unsigned char r[2] = {0, 0};
    RAND_bytes(r, 2);
    unsigned first = kGreaseValues[r[0] & 15], last = kGreaseValues[r[1] & 15];
    if (last == first) last = kGreaseValues[((r[1] & 15) + 1) & 15];
    self->grease_last_ = last;
    if (!add_ext(ctx, first, SSL_EXT_CLIENT_HELLO, grease_add, nullptr, nullptr, nullptr)) {
      *detail = "grease: " + openssl_reason();
      return nullptr;
    }
  }
  if (cfg.ech_grease && !add_ext(ctx, kEchType, SSL_EXT_CLIENT_HELLO | SSL_EXT_TLS1_3_ENCRYPTED_EXTENSIONS, ech_add,
                                 nullptr, nullptr, ech_parse)) {
    *detail = "echGrease: this OpenSSL handles encrypted_client_hello itself: " + openssl_reason();
    return nullptr;
  }
  if (cfg.record_size_limit != 0) {
    self->rsl_[0] = static_cast<unsigned char>(cfg.record_size_limit >> 8);
    self->rsl_[1] = static_cast<unsigned char>(cfg.record_size_limit & 0xff);
    if (!add_ext(ctx, kRecordSizeLimitType,
                 SSL_EXT_CLIENT_HELLO | SSL_EXT_TLS1_2_SERVER_HELLO | SSL_EXT_TLS1_3_ENCRYPTED_EXTENSIONS, rsl_add,
                 nullptr, self->rsl_, rsl_parse)) {
      *detail = "recordSizeLimit: this OpenSSL handles record_size_limit itself: " + openssl_reason();
      return nullptr;
    }
  }
  if (cfg.grease && !add_ext(ctx, self->grease_last_, SSL_EXT_CLIENT_HELLO, grease_add, nullptr,
                             const_cast<unsigned char*>(kOneZero), nullptr)) {
    *detail = "grease: " + openssl_reason();
    return nullptr;
  }
  if (cfg.ca) SSL_CTX_set1_cert_store(ctx, cfg.ca->store());
  SSL_CTX_set_verify(ctx, cfg.reject_unauthorized ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  if (cfg.verify_depth >= 0) SSL_CTX_set_verify_depth(ctx, cfg.verify_depth);
  if (cfg.partial_chain) X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx), X509_V_FLAG_PARTIAL_CHAIN);

  if (!cfg.cert_pem.empty()) {
    BIO* bio = BIO_new_mem_buf(cfg.cert_pem.data(), static_cast<int>(cfg.cert_pem.size()));
    X509* leaf = bio != nullptr ? PEM_read_bio_X509_AUX(bio, nullptr, nullptr, nullptr) : nullptr;
    if (leaf == nullptr || SSL_CTX_use_certificate(ctx, leaf) != 1) {
      if (leaf != nullptr) X509_free(leaf);
      if (bio != nullptr) BIO_free(bio);
      *detail = "cert: " + openssl_reason();
      return nullptr;
    }
    X509_free(leaf);
    while (X509* extra = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
      if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) {
        X509_free(extra);
        BIO_free(bio);
        *detail = "cert: " + openssl_reason();
        return nullptr;
      }
    }
    BIO_free(bio);
    ERR_clear_error();  // the end of the PEM chain reads as an error
    bio = BIO_new_mem_buf(cfg.key_pem.data(), static_cast<int>(cfg.key_pem.size()));
    // With no callback, OpenSSL uses the user pointer as the NUL-terminated passphrase. An empty
    // string must not make OpenSSL prompt on a terminal: pass a callback that refuses instead.
    EVP_PKEY* pkey = nullptr;
    if (bio != nullptr) {
      if (cfg.passphrase.empty()) {
        pkey = PEM_read_bio_PrivateKey(bio, nullptr, [](char*, int, int, void*) { return 0; }, nullptr);
      } else {
        pkey = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, const_cast<char*>(cfg.passphrase.c_str()));
      }
      BIO_free(bio);
    }
    if (pkey == nullptr) {
      *detail = "key: " + openssl_reason() + (cfg.passphrase.empty() ? " (encrypted key without passphrase?)" : "");
      return nullptr;
    }
    int used = SSL_CTX_use_PrivateKey(ctx, pkey);
    EVP_PKEY_free(pkey);
    if (used != 1 || SSL_CTX_check_private_key(ctx) != 1) {
      *detail = "key does not match cert: " + openssl_reason();
      return nullptr;
    }
  }

  if (cfg.session_cache_size > 0) {
    // Client sessions go to our per-origin cache, not OpenSSL's internal (server-style) one.
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
  } else {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  }
  return self;
}

SSL_SESSION* Context::take_session(const std::string& origin) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = sessions_.find(origin);
  if (it == sessions_.end()) return nullptr;
  SSL_SESSION* s = it->second->session;
  if (SSL_SESSION_is_resumable(s) == 1 && SSL_SESSION_get_protocol_version(s) < TLS1_3_VERSION) {
    // TLS 1.2 (a session id or a ticket): reusable for every later connection until the server
    // stops accepting it. A resumed 1.2 handshake brings no new session to put back (unless the
    // server renews its ticket), so taking it out would cost every second connection a full
    // handshake. It stays cached, and most recently used.
    lru_.splice(lru_.begin(), lru_, it->second);
    SSL_SESSION_up_ref(s);
    return s;
  }
  // TLS 1.3 tickets are single-use (RFC 8446 §C.4): the handshake's own NewSessionTickets
  // replace it.
  lru_.erase(it->second);
  sessions_.erase(it);
  if (SSL_SESSION_is_resumable(s) != 1) {
    SSL_SESSION_free(s);
    return nullptr;
  }
  return s;
}

void Context::put_session(const std::string& origin, SSL_SESSION* s) {
  if (cfg_.session_cache_size == 0) {
    SSL_SESSION_free(s);
    return;
  }
  std::lock_guard<std::mutex> g(mu_);
  auto it = sessions_.find(origin);
  if (it != sessions_.end()) {
    SSL_SESSION_free(it->second->session);
    lru_.erase(it->second);
    sessions_.erase(it);
  }
  lru_.push_front(Cached{origin, s});
  sessions_[origin] = lru_.begin();
  while (sessions_.size() > cfg_.session_cache_size) {
    Cached& old = lru_.back();
    SSL_SESSION_free(old.session);
    sessions_.erase(old.origin);
    lru_.pop_back();
  }
}

namespace {
int new_session_cb(SSL* ssl, SSL_SESSION* sess) {
  auto* ctx = static_cast<Context*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), Context::ex_index()));
  const char* origin = static_cast<const char*>(SSL_get_app_data(ssl));
  if (ctx == nullptr || origin == nullptr) return 0;  // not ours to keep: OpenSSL frees it
  ctx->put_session(origin, sess);
  return 1;  // we own the reference now
}
}  // namespace

int parse_version(const std::string& s) {
  if (s == "TLSv1.3") return TLS1_3_VERSION;
  if (s == "TLSv1.2") return TLS1_2_VERSION;
  if (s == "TLSv1.1") return TLS1_1_VERSION;
  if (s == "TLSv1" || s == "TLSv1.0") return TLS1_VERSION;
  return 0;
}

Error verify_error_code(long v) {
  switch (v) {
    case X509_V_OK:
      return Error::Ok;
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CRL_HAS_EXPIRED:
      return Error::TlsCertExpired;
    case X509_V_ERR_CERT_NOT_YET_VALID:
    case X509_V_ERR_CRL_NOT_YET_VALID:
      return Error::TlsCertNotYetValid;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
    case X509_V_ERR_EMAIL_MISMATCH:
      return Error::TlsHostnameMismatch;
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_UNTRUSTED:
    case X509_V_ERR_CERT_CHAIN_TOO_LONG:
      return Error::TlsCertUntrusted;
    default:
      return Error::TlsCertInvalid;
  }
}

}  // namespace uvf::tls
