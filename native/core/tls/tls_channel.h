// One TLS client connection's record layer: an OpenSSL SSL object driven through memory BIOs.
// Ciphertext from the socket goes in with feed(); plaintext comes out of read(); plaintext to
// send goes in with write() and the records to put on the wire are read with output(). No
// sockets, no loop: the caller moves bytes (so the same code runs under tests and fuzzers).
#pragma once
#include <openssl/ssl.h>

#include <cstdint>
#include <memory>
#include <string>

#include "base/errors.h"
#include "tls/tls_context.h"

namespace uvf::tls {

// What a finished handshake negotiated, for users (res.tls) and stats.
struct SessionInfo {
  std::string protocol;        // "TLSv1.3"
  std::string cipher;          // OpenSSL name, "TLS_AES_128_GCM_SHA256" / "ECDHE-RSA-AES128-GCM-SHA256"
  std::string cipher_standard; // IANA name
  std::string alpn;            // selected protocol, "" if none
  std::string group;           // key exchange group, "" if unknown
  bool resumed = false;
  bool authorized = false;     // the chain and name verified (even when not enforced)
  std::string authorization_error;  // OpenSSL's verify message when not authorized
  std::string servername;      // SNI sent, "" if none
  std::string origin;          // "https://host:port" (filled by the connection)
  uint32_t handshake_us = 0;   // TCP connected → handshake finished (filled by the connection)
  // ClientHello fingerprint (of the hello this connection sent)
  std::string ja3, ja3_hash, ja4;
  // Peer certificate summary (empty when the server sent none)
  std::string subject, issuer, subject_alt_names, valid_from, valid_to, fingerprint256, serial;
};

class Channel {
 public:
  enum class Status { Ok, WantMore, Closed, Failed };

  Channel() = default;
  ~Channel();
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  // Prepares a client SSL for `host` (a name or an IP literal, no brackets) and `port`: SNI,
  // name verification, a cached session to resume. False (with error()/detail()) on failure.
  bool init(std::shared_ptr<Context> ctx, const std::string& host, uint16_t port);

  // Drives the handshake. Ok = finished (and verified, if the profile enforces it); WantMore =
  // feed more peer bytes; Failed = see error()/detail(). Records to send are left in output().
  Status handshake();
  bool handshake_done() const { return done_; }
  // The caller speaks whatever protocol the server selects via ALPN (raw sockets): without this,
  // a selection other than http/1.1 fails the handshake with TlsAlpn. Call before handshake().
  void accept_any_alpn() { any_alpn_ = true; }
  // HTTP connections that also speak HTTP/2: "h2" is accepted besides http/1.1.
  void accept_h2() { accept_h2_ = true; }
  // The protocol the server selected with ALPN ("" for none).
  std::string alpn() const;

  // Ciphertext received from the peer.
  bool feed(const char* p, size_t n);
  // Decrypts into buf. Ok with *got > 0, WantMore (nothing buffered), Closed (close_notify),
  // Failed (protocol error or alert; see error()/detail()).
  Status read(char* buf, size_t cap, size_t* got);
  // Encrypts plaintext into records in output(). False on failure.
  bool write(const char* p, size_t n);
  // Records waiting to be sent. consume_output() after handing them to the socket.
  size_t output(const char** p) const;
  void consume_output();
  // Queues a close_notify alert in output() (once; no wait for the peer's).
  void close_notify();

  Error error() const { return error_; }
  const std::string& detail() const { return detail_; }
  // Fills `out` after a finished handshake (computes the fingerprint of the captured hello).
  void describe(SessionInfo* out) const;
  bool resumed() const;
  const std::string& client_hello() const { return hello_; }
  // Frees the captured hello once it has been fingerprinted (describe()).
  void drop_client_hello() { std::string().swap(hello_); }
  // Bytes of plaintext the application has read (0 = no response byte yet on this connection).
  uint64_t plaintext_read() const { return plain_in_; }

 private:
  static void on_message(int write_p, int version, int content_type, const void* buf, size_t len, SSL* ssl,
                         void* arg);
  Status fail_from(int ssl_ret, bool in_handshake);

  std::shared_ptr<Context> ctx_;
  SSL* ssl_ = nullptr;
  BIO* rbio_ = nullptr;  // owned by ssl_
  BIO* wbio_ = nullptr;  // owned by ssl_
  std::string origin_;   // session cache key; SSL app data points at it
  std::string hello_;    // the first ClientHello handshake message we sent
  std::string sni_;
  bool done_ = false;
  bool any_alpn_ = false;
  bool accept_h2_ = false;
  uint64_t plain_in_ = 0;
  Error error_ = Error::Ok;
  std::string detail_;
};

}  // namespace uvf::tls
