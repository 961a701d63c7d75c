// TLS ClientHello parser and JA3 / JA4 client fingerprints.
//
// Pure C++ (no Node, no libuv): used by the TLS layer to fingerprint the hello we actually sent
// (OpenSSL's message callback hands it over as one handshake message), by tests, and by the fuzzer.
// The parser is strict: every length is checked against its enclosing vector, trailing bytes inside
// a vector are an error, and it never reads past `n`. Fields it does not understand are skipped by
// length, so unknown extensions are fine.
//
// JA3: https://github.com/salesforce/ja3 (SSLVersion,Ciphers,Extensions,Curves,PointFormats).
// JA4: https://github.com/FoxIO-LLC/ja4/blob/main/technical_details/JA4.md (the TLS client part).
// GREASE values (RFC 8701: 0x0a0a, 0x1a1a, ... 0xfafa) are dropped from every list in both.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace uvf::tls {

struct ClientHello {
  uint16_t legacy_version = 0;            // ClientHello.legacy_version (0x0303 for TLS 1.2/1.3)
  std::vector<uint16_t> cipher_suites;    // in wire order, GREASE included
  std::vector<uint16_t> extensions;       // extension types in wire order, GREASE included
  std::vector<uint16_t> supported_groups;  // ext 10, wire order
  std::vector<uint8_t> ec_point_formats;   // ext 11
  std::vector<uint16_t> signature_algorithms;  // ext 13, wire order
  std::vector<std::string> alpn;               // ext 16, protocol names in wire order
  std::vector<uint16_t> supported_versions;    // ext 43, wire order
  std::vector<uint16_t> key_share_groups;      // ext 51, groups of the offered key shares
  bool has_server_name = false;                // ext 0 present
  std::string server_name;                     // first host_name entry of ext 0 (may be empty)
};

// True for the 16 GREASE code points of RFC 8701 (both bytes equal, low nibble 0xa).
bool is_grease(uint16_t v);

// Parses one handshake message: type 1 (ClientHello), 3-byte length, body, exactly `n` bytes (the
// form OpenSSL's msg callback delivers for content_type 22). On failure returns false and, when
// `err` is set, a short reason; `out` is then unspecified.
bool parse_client_hello(const uint8_t* p, size_t n, ClientHello* out, std::string* err);

// Parses a ClientHello from raw TLS records as read off the wire (0x16 0x03 0x0X len ...), the
// handshake message possibly split over several records. Bytes after the record that completes
// the hello are ignored; `consumed` (optional) receives the length of the records used.
bool parse_client_hello_records(const uint8_t* p, size_t n, ClientHello* out, std::string* err,
                                size_t* consumed = nullptr);

// Completeness check for a record stream that is still arriving: 0 while more bytes are needed,
// the byte length of the records carrying the whole hello once it is there, SIZE_MAX when the
// bytes cannot be a ClientHello (not a handshake record, bad version, oversized record, ...).
size_t client_hello_records_length(const uint8_t* p, size_t n);

// JA3 string: "771,4865-4866,0-11-10,29-23,0" (decimal, dash-separated, GREASE removed).
std::string ja3_string(const ClientHello& ch);
// MD5 of a JA3 string, 32 lowercase hex digits.
std::string ja3_hash(const std::string& ja3);

// JA4 ("t13d1516h2_8daaf6152771_e5627efa2ab1"). transport: 't' TCP, 'q' QUIC, 'd' DTLS.
std::string ja4_string(const ClientHello& ch, char transport = 't');
// JA4_r: the same with the two sorted lists (and the signature algorithms) instead of hashes.
std::string ja4_raw(const ClientHello& ch, char transport = 't');

struct Fingerprint {
  std::string ja3;
  std::string ja3_hash;
  std::string ja4;
  std::string ja4_r;
};

// Parses either form (a handshake message starting with 0x01 or records starting with 0x16) and
// fills every fingerprint. Returns false (and leaves `out` untouched) when the bytes do not parse.
bool fingerprint_from_bytes(const uint8_t* p, size_t n, Fingerprint* out);

}  // namespace uvf::tls
