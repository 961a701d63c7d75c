#include "tls/tls_channel.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <cstring>

#include "tls/client_hello.h"

namespace uvf::tls {

namespace {

struct ClearErrors {
  ClearErrors() { ERR_clear_error(); }
  ~ClearErrors() { ERR_clear_error(); }
};

bool is_ip_literal(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

std::string name_entry(X509_NAME* name, int nid) {
  if (name == nullptr) return {};
  int i = X509_NAME_get_index_by_NID(name, nid, -1);
  if (i < 0) return {};
  ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, s);
  if (len < 0) return {};
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

// "CN=example.com, O=Example" (RFC 2253 order, one line).
std::string name_line(X509_NAME* name) {
  if (name == nullptr) return {};
  BIO* b = BIO_new(BIO_s_mem());
  if (b == nullptr) return {};
  X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  char* p = nullptr;
  long n = BIO_get_mem_data(b, &p);
  std::string out(p, static_cast<size_t>(n > 0 ? n : 0));
  BIO_free(b);
  return out;
}

std::string time_line(const ASN1_TIME* t) {
  BIO* b = BIO_new(BIO_s_mem());
  if (b == nullptr) return {};
  ASN1_TIME_print(b, t);
  char* p = nullptr;
  long n = BIO_get_mem_data(b, &p);
  std::string out(p, static_cast<size_t>(n > 0 ? n : 0));
  BIO_free(b);
  return out;
}

// "DNS:localhost, IP Address:127.0.0.1", as node:tls spells subjectaltname.
std::string alt_names(X509* cert) {
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return {};
  std::string out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* g = sk_GENERAL_NAME_value(names, i);
    std::string item;
    if (g->type == GEN_DNS) {
      item = "DNS:" + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(g->d.dNSName)),
                                  static_cast<size_t>(ASN1_STRING_length(g->d.dNSName)));
    } else if (g->type == GEN_IPADD) {
      const unsigned char* d = ASN1_STRING_get0_data(g->d.iPAddress);
      int len = ASN1_STRING_length(g->d.iPAddress);
      char buf[64] = {0};
      if (len == 4) {
        inet_ntop(AF_INET, d, buf, sizeof buf);
      } else if (len == 16) {
        inet_ntop(AF_INET6, d, buf, sizeof buf);
      }
      item = std::string("IP Address:") + buf;
    } else if (g->type == GEN_EMAIL) {
      item = "email:" + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(g->d.rfc822Name)),
                                    static_cast<size_t>(ASN1_STRING_length(g->d.rfc822Name)));
    } else if (g->type == GEN_URI) {
      item = "URI:" + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(g->d.uniformResourceIdentifier)),
                                  static_cast<size_t>(ASN1_STRING_length(g->d.uniformResourceIdentifier)));
    } else {
      continue;
    }
    if (!out.empty()) out.append(", ");
    out.append(item);
  }
  GENERAL_NAMES_free(names);
  return out;
}

std::string hex_colon(const unsigned char* p, size_t n) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  out.reserve(n * 3);
  for (size_t i = 0; i < n; ++i) {
    if (i) out.push_back(':');
    out.push_back(kHex[p[i] >> 4]);
    out.push_back(kHex[p[i] & 15]);
  }
  return out;
}

}  // namespace

Channel::~Channel() {
  if (ssl_ != nullptr) SSL_free(ssl_);  // frees both BIOs
}

bool Channel::init(std::shared_ptr<Context> ctx, const std::string& host, uint16_t port) {
  ClearErrors clear;
  ctx_ = std::move(ctx);
  const ProfileConfig& cfg = ctx_->config();
  ssl_ = SSL_new(ctx_->ctx());
  rbio_ = BIO_new(BIO_s_mem());
  wbio_ = BIO_new(BIO_s_mem());
  if (ssl_ == nullptr || rbio_ == nullptr || wbio_ == nullptr) {
    if (rbio_ != nullptr) BIO_free(rbio_);
    if (wbio_ != nullptr) BIO_free(wbio_);
    rbio_ = wbio_ = nullptr;
    error_ = Error::Internal;
    detail_ = "could not allocate TLS state";
    return false;
  }
  // An empty read BIO means "no more bytes yet", not end of file.
  BIO_set_mem_eof_return(rbio_, -1);
  SSL_set_bio(ssl_, rbio_, wbio_);
  SSL_set_connect_state(ssl_);
  const std::string& name = cfg.servername.empty() ? host : cfg.servername;
  bool ip = is_ip_literal(name);
  if (cfg.sni && !ip && !name.empty()) {
    sni_ = name;
    SSL_set_tlsext_host_name(ssl_, sni_.c_str());
  }
  if (cfg.reject_unauthorized && cfg.check_hostname) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str()) : X509_VERIFY_PARAM_set1_host(param, name.c_str(), 0);
    if (ok != 1) {
      error_ = Error::TlsConfig;
      detail_ = "cannot verify against host name \"" + name + "\"";
      return false;
    }
  }
  origin_ = name + ":" + std::to_string(port);
  SSL_set_app_data(ssl_, const_cast<char*>(origin_.c_str()));
  if (cfg.session_cache_size > 0) {
    if (SSL_SESSION* s = ctx_->take_session(origin_)) {
      SSL_set_session(ssl_, s);
      SSL_SESSION_free(s);  // SSL_set_session took its own reference
    }
  }
  SSL_set_msg_callback(ssl_, on_message);
  SSL_set_msg_callback_arg(ssl_, this);
  return true;
}

void Channel::on_message(int write_p, int, int content_type, const void* buf, size_t len, SSL*, void* arg) {
  auto* self = static_cast<Channel*>(arg);
  if (write_p != 1 || content_type != SSL3_RT_HANDSHAKE || len == 0 || !self->hello_.empty()) return;
  const auto* b = static_cast<const unsigned char*>(buf);
  if (b[0] == SSL3_MT_CLIENT_HELLO) self->hello_.assign(static_cast<const char*>(buf), len);
}

Channel::Status Channel::fail_from(int ret, bool in_handshake) {
  int err = SSL_get_error(ssl_, ret);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return Status::WantMore;
  if (err == SSL_ERROR_ZERO_RETURN) return Status::Closed;
  if (in_handshake) {
    long v = SSL_get_verify_result(ssl_);
    if (v != X509_V_OK && ctx_->config().reject_unauthorized) {
      error_ = verify_error_code(v);
      detail_ = X509_verify_cert_error_string(v);
      return Status::Failed;
    }
  }
  unsigned long e = ERR_peek_last_error();
  const char* reason = e != 0 ? ERR_reason_error_string(e) : nullptr;
  // An alert or error before any response byte: the server refused this handshake (TLS 1.3
  // servers reject a client certificate only after the client has finished its side).
  error_ = (in_handshake || plain_in_ == 0) ? Error::TlsHandshake : Error::TlsProtocol;
  detail_ = reason != nullptr ? reason : (err == SSL_ERROR_SYSCALL ? "unexpected end of the TLS stream" : "TLS error");
  return Status::Failed;
}

Channel::Status Channel::handshake() {
  ClearErrors clear;
  int r = SSL_do_handshake(ssl_);
  if (r == 1) {
    done_ = true;
    SSL_set_msg_callback(ssl_, nullptr);  // only the handshake was worth watching
    const unsigned char* sel = nullptr;
    unsigned sel_len = 0;
    SSL_get0_alpn_selected(ssl_, &sel, &sel_len);
    bool h11 = sel_len == 8 && std::memcmp(sel, "http/1.1", 8) == 0;
    bool h2 = accept_h2_ && sel_len == 2 && std::memcmp(sel, "h2", 2) == 0;
    if (sel_len > 0 && !any_alpn_ && !h11 && !h2) {
      error_ = Error::TlsAlpn;
      detail_ = "the server selected \"" + std::string(reinterpret_cast<const char*>(sel), sel_len) +
                (accept_h2_ ? "\"; HTTP connections speak h2 or http/1.1" : "\"; this session speaks only http/1.1 (http2: false)");
      return Status::Failed;
    }
    return Status::Ok;
  }
  Status s = fail_from(r, true);
  if (s == Status::Closed) {
    error_ = Error::TlsHandshake;
    detail_ = "the server closed the TLS session during the handshake";
    return Status::Failed;
  }
  return s;
}

bool Channel::feed(const char* p, size_t n) {
  int w = BIO_write(rbio_, p, static_cast<int>(n));  // memory BIOs take everything or fail on OOM
  if (w != static_cast<int>(n)) {
    error_ = Error::Internal;
    detail_ = "out of memory buffering TLS records";
    return false;
  }
  return true;
}

Channel::Status Channel::read(char* buf, size_t cap, size_t* got) {
  ClearErrors clear;
  *got = 0;
  size_t n = 0;
  int r = SSL_read_ex(ssl_, buf, cap, &n);
  if (r == 1) {
    *got = n;
    plain_in_ += n;
    return Status::Ok;
  }
  return fail_from(r, false);
}

bool Channel::write(const char* p, size_t n) {
  ClearErrors clear;
  if (n == 0) return true;
  size_t written = 0;
  if (SSL_write_ex(ssl_, p, n, &written) != 1 || written != n) {
    unsigned long e = ERR_peek_last_error();
    const char* reason = e != 0 ? ERR_reason_error_string(e) : nullptr;
    error_ = Error::TlsProtocol;
    detail_ = reason != nullptr ? reason : "TLS write failed";
    return false;
  }
  return true;
}

size_t Channel::output(const char** p) const {
  char* data = nullptr;
  long n = BIO_get_mem_data(wbio_, &data);
  *p = data;
  return n > 0 ? static_cast<size_t>(n) : 0;
}

void Channel::consume_output() { (void)BIO_reset(wbio_); }

void Channel::close_notify() {
  ClearErrors clear;
  if (ssl_ != nullptr && done_ && (SSL_get_shutdown(ssl_) & SSL_SENT_SHUTDOWN) == 0) SSL_shutdown(ssl_);
}

bool Channel::resumed() const { return ssl_ != nullptr && SSL_session_reused(ssl_) == 1; }

std::string Channel::alpn() const {
  if (ssl_ == nullptr) return std::string();
  const unsigned char* sel = nullptr;
  unsigned sel_len = 0;
  SSL_get0_alpn_selected(ssl_, &sel, &sel_len);
  return std::string(reinterpret_cast<const char*>(sel), sel_len);
}

void Channel::describe(SessionInfo* out) const {
  ClearErrors clear;
  out->protocol = SSL_get_version(ssl_);
  const SSL_CIPHER* c = SSL_get_current_cipher(ssl_);
  if (c != nullptr) {
    out->cipher = SSL_CIPHER_get_name(c);
    const char* std_name = SSL_CIPHER_standard_name(c);
    out->cipher_standard = std_name != nullptr ? std_name : "";
  }
  out->alpn = alpn();
  int nid = SSL_get_negotiated_group(ssl_);
  if (nid > 0) {
    const char* g = SSL_group_to_name(ssl_, nid);
    out->group = g != nullptr ? g : "";
  }
  out->resumed = resumed();
  long v = SSL_get_verify_result(ssl_);
  out->authorized = v == X509_V_OK;
  if (!out->authorized) out->authorization_error = X509_verify_cert_error_string(v);
  out->servername = sni_;
  Fingerprint fp;
  if (!hello_.empty() && fingerprint_from_bytes(reinterpret_cast<const uint8_t*>(hello_.data()), hello_.size(), &fp)) {
    out->ja3 = std::move(fp.ja3);
    out->ja3_hash = std::move(fp.ja3_hash);
    out->ja4 = std::move(fp.ja4);
  }
  X509* cert = SSL_get1_peer_certificate(ssl_);
  if (cert != nullptr) {
    out->subject = name_line(X509_get_subject_name(cert));
    out->issuer = name_line(X509_get_issuer_name(cert));
    if (out->subject.empty()) out->subject = name_entry(X509_get_subject_name(cert), NID_commonName);
    out->subject_alt_names = alt_names(cert);
    out->valid_from = time_line(X509_get0_notBefore(cert));
    out->valid_to = time_line(X509_get0_notAfter(cert));
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    if (X509_digest(cert, EVP_sha256(), md, &md_len) == 1) out->fingerprint256 = hex_colon(md, md_len);
    const ASN1_INTEGER* serial = X509_get0_serialNumber(cert);
    BIGNUM* bn = ASN1_INTEGER_to_BN(serial, nullptr);
    if (bn != nullptr) {
      char* hex = BN_bn2hex(bn);
      if (hex != nullptr) {
        out->serial = hex;
        OPENSSL_free(hex);
      }
      BN_free(bn);
    }
    X509_free(cert);
  }
}

}  // namespace uvf::tls
