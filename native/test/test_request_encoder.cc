// Tests for native/core/http1/request_encoder.*
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "check.h"
#include "http1/request_encoder.h"

using uvf::Error;
using uvf::http1::BodyMode;
using uvf::http1::EncodeError;
using uvf::http1::EncodeResult;
using uvf::http1::RequestHead;
using uvf::http1::encode_request_head;

namespace {

// Errors compared/printed through their stable code strings.
std::string_view N(Error e) { return uvf::error_code(e); }
// Reason strings, printable even when (wrongly) null.
std::string_view R(const char* reason) { return reason ? std::string_view(reason) : std::string_view("(null)"); }

struct Enc {
  std::vector<std::string> storage;  // name,value,... (owned)
  std::vector<std::string_view> hv;
  RequestHead req;
  std::string out;
  EncodeResult res{};
  EncodeError err{};
  Error rc = Error::Internal;

  Enc(std::string_view method, std::string_view target, std::initializer_list<std::string> headers = {},
      BodyMode mode = BodyMode::None, uint64_t len = 0, std::string_view ua = {})
      : storage(headers), hv(storage.begin(), storage.end()) {
    req.method = method;
    req.target = target;
    req.host = "127.0.0.1:8080";
    req.headers = hv.empty() ? nullptr : hv.data();
    req.header_pairs = hv.size() / 2;
    req.body_mode = mode;
    req.content_length = len;
    req.user_agent = ua;
  }
  Error run() {
    std::string before = out;
    rc = encode_request_head(req, &out, &res, &err);
    // Validation alone (at submit) agrees with the encoder (at assign).
    EncodeResult vres{};
    CHECK_EQ(N(uvf::http1::validate_request_head(req, &vres, nullptr)), N(rc));
    CHECK_EQ(vres.connection_close, res.connection_close);
    if (rc == Error::Ok) {  // encoding what was validated, without scanning again: same bytes
      RequestHead trusted = req;
      trusted.validated = true;
      std::string again = before;
      CHECK_EQ(N(encode_request_head(trusted, &again, nullptr, nullptr)), N(Error::Ok));
      CHECK_EQ(again, out);
    }
    return rc;
  }
  // Runs with a pre-filled buffer and checks it is left untouched on error.
  Error run_expect_error(Error expected, size_t index = SIZE_MAX) {
    out = "prefix-bytes";
    rc = encode_request_head(req, &out, &res, &err);
    CHECK_EQ(N(rc), N(expected));
    CHECK_EQ(N(err.code), N(expected));
    CHECK(err.reason != nullptr);
    CHECK_EQ(err.header_index, index);
    CHECK_EQ(out, std::string("prefix-bytes"));
    EncodeError verr{};
    CHECK_EQ(N(uvf::http1::validate_request_head(req, nullptr, &verr)), N(expected));
    CHECK_EQ(std::string(verr.reason != nullptr ? verr.reason : ""), std::string(err.reason));
    CHECK_EQ(verr.header_index, index);
    return rc;
  }
};

std::string byte_str(unsigned char c) { return std::string(1, static_cast<char>(c)); }

bool is_tchar_ref(unsigned c) {
  if (c >= '0' && c <= '9') return true;
  if (c >= 'a' && c <= 'z') return true;
  if (c >= 'A' && c <= 'Z') return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

}  // namespace

// ---------------------------------------------------------------- character classes

TEST(encoder_is_token_every_byte) {
  using uvf::http1::is_token;
  CHECK(!is_token(""));
  for (unsigned c = 0; c < 256; ++c) {
    std::string s = "X" + byte_str(static_cast<unsigned char>(c)) + "y";
    if (is_token(s) != is_tchar_ref(c)) {
      std::fprintf(stderr, "  byte 0x%02x\n", c);
      CHECK(false);
    }
  }
  CHECK(is_token("GET"));
  CHECK(is_token("x-custom_h.e~a^d`e|r!#$%&'*+"));
  CHECK(!is_token("a b"));
  CHECK(!is_token("a:b"));
  CHECK(!is_token("a\"b"));
  CHECK(!is_token("(a)"));
  CHECK(!is_token(std::string_view("a\0b", 3)));
}

TEST(encoder_is_valid_header_value_every_byte) {
  using uvf::http1::is_valid_header_value;
  CHECK(is_valid_header_value(""));
  for (unsigned c = 0; c < 256; ++c) {
    bool expected = c == 0x09 || (c >= 0x20 && c != 0x7F);
    std::string s = "ab" + byte_str(static_cast<unsigned char>(c)) + "cd";
    if (is_valid_header_value(s) != expected) {
      std::fprintf(stderr, "  byte 0x%02x\n", c);
      CHECK(false);
    }
    // The bad byte at the very start and very end is caught too.
    if (is_valid_header_value(byte_str(static_cast<unsigned char>(c))) != expected) {
      std::fprintf(stderr, "  lone byte 0x%02x\n", c);
      CHECK(false);
    }
  }
  CHECK(is_valid_header_value("text/html; charset=\"utf-8\"\t, q=0.1"));
  CHECK(is_valid_header_value("caf\xC3\xA9 \xFF\x80"));
  CHECK(!is_valid_header_value("a\r\nX-Injected: 1"));
}

TEST(encoder_is_valid_request_target_every_byte) {
  using uvf::http1::is_valid_request_target;
  CHECK(!is_valid_request_target(""));
  for (unsigned c = 0; c < 256; ++c) {
    bool expected = c >= 0x21 && c <= 0x7E;
    std::string s = "/a" + byte_str(static_cast<unsigned char>(c));
    if (is_valid_request_target(s) != expected) {
      std::fprintf(stderr, "  byte 0x%02x\n", c);
      CHECK(false);
    }
  }
  CHECK(is_valid_request_target("/"));
  CHECK(is_valid_request_target("*"));
  CHECK(is_valid_request_target("/p%20ath?q=1&r=%E2%82%AC#frag"));
  CHECK(is_valid_request_target("http://example.com:80/x"));
}

TEST(encoder_method_is_idempotent) {
  using uvf::http1::method_is_idempotent;
  for (const char* m : {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"}) CHECK(method_is_idempotent(m));
  for (const char* m : {"POST", "PATCH", "CONNECT", "get", "Get", "put", "delete", "", "GETS", "GE", "PROPFIND"})
    CHECK(!method_is_idempotent(m));
}

// ---------------------------------------------------------------- chunk helpers

TEST(encoder_chunk_helpers) {
  using uvf::http1::append_chunk_header;
  std::string s;
  append_chunk_header(0, &s);
  CHECK_EQ(s, std::string("0\r\n"));
  s.clear();
  append_chunk_header(1, &s);
  CHECK_EQ(s, std::string("1\r\n"));
  s.clear();
  append_chunk_header(10, &s);
  CHECK_EQ(s, std::string("a\r\n"));
  s.clear();
  append_chunk_header(255, &s);
  CHECK_EQ(s, std::string("ff\r\n"));
  s.clear();
  append_chunk_header(4096, &s);
  CHECK_EQ(s, std::string("1000\r\n"));
  s.clear();
  append_chunk_header(0xDEADBEEFull, &s);
  CHECK_EQ(s, std::string("deadbeef\r\n"));
  s.clear();
  append_chunk_header(UINT64_MAX, &s);
  CHECK_EQ(s, std::string("ffffffffffffffff\r\n"));
  // Appends, never overwrites.
  s = "abc";
  append_chunk_header(16, &s);
  CHECK_EQ(s, std::string("abc10\r\n"));

  CHECK(uvf::http1::kChunkEnd == "\r\n");
  CHECK(uvf::http1::kLastChunk == "0\r\n\r\n");

  // A whole chunked body assembled with the helpers.
  std::string body;
  append_chunk_header(5, &body);
  body += "hello";
  body += uvf::http1::kChunkEnd;
  append_chunk_header(11, &body);
  body += " world, hi!";
  body += uvf::http1::kChunkEnd;
  body += uvf::http1::kLastChunk;
  CHECK_EQ(body, std::string("5\r\nhello\r\nb\r\n world, hi!\r\n0\r\n\r\n"));
}

// ---------------------------------------------------------------- exact output

TEST(encoder_simple_get) {
  Enc e("GET", "/");
  CHECK_EQ(N(e.run()), N(Error::Ok));
  CHECK_EQ(e.out, std::string("GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"));
  CHECK(!e.res.connection_close);
  CHECK_EQ(N(e.err.code), N(Error::Ok));
  CHECK(e.err.reason == nullptr);
  CHECK_EQ(e.err.header_index, SIZE_MAX);
}

TEST(encoder_get_with_headers_and_user_agent) {
  Enc e("GET", "/search?q=a%20b&x=1", {"Accept", "application/json", "X-Trace-Id", "abc123", "accept-encoding", "gzip, br"},
        BodyMode::None, 0, "uvfetch/0.1");
  CHECK_EQ(N(e.run()), N(Error::Ok));
  CHECK_EQ(e.out, std::string("GET /search?q=a%20b&x=1 HTTP/1.1\r\n"
                              "Host: 127.0.0.1:8080\r\n"
                              "Accept: application/json\r\n"
                              "X-Trace-Id: abc123\r\n"
                              "accept-encoding: gzip, br\r\n"
                              "user-agent: uvfetch/0.1\r\n"
                              "\r\n"));
}

TEST(encoder_user_agent_given_by_user_suppresses_default) {
  Enc e("GET", "/", {"User-Agent", "mine/2"}, BodyMode::None, 0, "uvfetch/0.1");
  CHECK_EQ(N(e.run()), N(Error::Ok));
  CHECK_EQ(e.out, std::string("GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: mine/2\r\n\r\n"));
  // An empty user value still counts as "given".
  Enc e2("GET", "/", {"USER-AGENT", ""}, BodyMode::None, 0, "uvfetch/0.1");
  CHECK_EQ(N(e2.run()), N(Error::Ok));
  CHECK_EQ(e2.out, std::string("GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUSER-AGENT: \r\n\r\n"));
}

TEST(encoder_post_with_length) {
  Enc e("POST", "/api/items", {"Content-Type", "application/json"}, BodyMode::Length, 17);
  CHECK_EQ(N(e.run()), N(Error::Ok));
  CHECK_EQ(e.out, std::string("POST /api/items HTTP/1.1\r\n"
                              "Host: 127.0.0.1:8080\r\n"
                              "Content-Type: application/json\r\n"
                              "content-length: 17\r\n"
                              "\r\n"));
}

TEST(encoder_length_zero_and_huge) {
  Enc e("PUT", "/x", {}, BodyMode::Length, 0);
  CHECK_EQ(N(e.run()), N(Error::Ok));
  CHECK_EQ(e.out, std::string("PUT /x HTTP/1.1\r\nHost: 127.0.0.1:8080\r\ncontent-length: 0\r\n\r\n"));
  Enc e2("POST", "/x", {}, BodyMode::Length, UINT64_MAX);
  CHECK_EQ(N(e2.run()), N(Error::Ok));
  CHECK_EQ(e2.out,
           std::string("POST /x HTTP/1.1\r\nHost: 127.0.0.1:8080\r\ncontent-length: 18446744073709551615\r\n\r\n"));
}

TEST(encoder_chunked) {
  Enc e("POST", "/upload", {"Content-Type", "application/octet-stream"}, BodyMode::Chunked, 0, "ua");
  CHECK_EQ(N(e.run()), N(Error::Ok));
  CHECK_EQ(e.out, std::string("POST /upload HTTP/1.1\r\n"
                              "Host: 127.0.0.1:8080\r\n"
                              "Content-Type: application/octet-stream\r\n"
                              "user-agent: ua\r\n"
                              "transfer-encoding: chunked\r\n"
                              "\r\n"));
}

TEST(encoder_no_body_framing_by_method) {
  for (const char* m : {"POST", "PUT", "PATCH"}) {
    Enc e(m, "/");
    CHECK_EQ(N(e.run()), N(Error::Ok));
    CHECK_EQ(e.out, std::string(m) + " / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\ncontent-length: 0\r\n\r\n");
  }
  for (const char* m : {"GET", "HEAD", "DELETE", "OPTIONS", "TRACE", "post", "PROPFIND"}) {
    Enc e(m, "/");
    CHECK_EQ(N(e.run()), N(Error::Ok));
    CHECK_EQ(e.out, std::string(m) + " / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n");
  }
}

TEST(encoder_options_star_and_absolute_form) {
  Enc e("OPTIONS", "*");
  CHECK_EQ(N(e.run()), N(Error::Ok));
  CHECK_EQ(e.out, std::string("OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"));
  Enc e2("GET", "http://example.com/a?b");
  e2.req.host = "example.com";
  CHECK_EQ(N(e2.run()), N(Error::Ok));
  CHECK_EQ(e2.out, std::string("GET http://example.com/a?b HTTP/1.1\r\nHost: example.com\r\n\r\n"));
}

TEST(encoder_appends_to_existing_buffer) {
  Enc e("GET", "/a");
  e.out = "previous";
  CHECK_EQ(N(e.run()), N(Error::Ok));
  CHECK_EQ(e.out, std::string("previousGET /a HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"));
  // Two heads in a row (pipelining-style reuse of one buffer).
  Enc e2("HEAD", "/b");
  e2.out = e.out;
  CHECK_EQ(N(e2.run()), N(Error::Ok));
  CHECK_EQ(e2.out, e.out + "HEAD /b HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n");
}

TEST(encoder_empty_host_allowed) {
  Enc e("GET", "/");
  e.req.host = "";
  CHECK_EQ(N(e.run()), N(Error::Ok));
  CHECK_EQ(e.out, std::string("GET / HTTP/1.1\r\nHost: \r\n\r\n"));
}

TEST(encoder_null_headers_and_null_out_params) {
  Enc e("GET", "/");
  e.req.headers = nullptr;
  e.req.header_pairs = 3;  // ignored when headers is null
  CHECK_EQ(N(encode_request_head(e.req, &e.out, nullptr, nullptr)), N(Error::Ok));
  CHECK_EQ(e.out, std::string("GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"));
  Enc bad("G T", "/");
  CHECK_EQ(N(encode_request_head(bad.req, &bad.out, nullptr, nullptr)), N(Error::InvalidMethod));
  CHECK(bad.out.empty());
}

TEST(encoder_header_value_whitespace_and_obs_text_sent_as_given) {
  Enc e("GET", "/", {"X-Tab", "a\tb", "X-Obs", "caf\xC3\xA9\xFF", "x-empty", "", "X-Sp", " padded "});
  CHECK_EQ(N(e.run()), N(Error::Ok));
  CHECK_EQ(e.out, std::string("GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
                              "X-Tab: a\tb\r\nX-Obs: caf\xC3\xA9\xFF\r\nx-empty: \r\nX-Sp:  padded \r\n\r\n"));
}

TEST(encoder_duplicate_headers_kept) {
  Enc e("GET", "/", {"Accept", "a", "X-A", "1", "accept", "b", "Cookie", "x=1", "Cookie", "y=2"});
  CHECK_EQ(N(e.run()), N(Error::Ok));
  CHECK_EQ(e.out, std::string("GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
                              "Accept: a\r\nX-A: 1\r\naccept: b\r\nCookie: x=1\r\nCookie: y=2\r\n\r\n"));
}

// ---------------------------------------------------------------- host header

TEST(encoder_user_host_replaces_default_and_goes_first) {
  Enc e("GET", "/", {"Accept", "*/*", "HoSt", "virtual.example:81", "X-B", "2"});
  CHECK_EQ(N(e.run()), N(Error::Ok));
  CHECK_EQ(e.out, std::string("GET / HTTP/1.1\r\nHoSt: virtual.example:81\r\nAccept: */*\r\nX-B: 2\r\n\r\n"));
  CHECK(e.out.find("127.0.0.1") == std::string::npos);
}

TEST(encoder_user_host_validated) {
  Enc e("GET", "/", {"X-A", "1", "Host", "evil\r\nX-Injected: 1"});
  e.run_expect_error(Error::InvalidHeader, 1);
  CHECK_EQ(R(e.err.reason), std::string_view("invalid character in header value"));
}

TEST(encoder_duplicate_host_rejected) {
  Enc e("GET", "/", {"Host", "a", "X", "1", "host", "b"});
  e.run_expect_error(Error::InvalidHeader, 2);
  CHECK_EQ(R(e.err.reason), std::string_view("duplicate host header"));
}

TEST(encoder_default_host_crlf_injection) {
  for (const char* bad : {"a\r\nX-Injected: 1", "a\nb", "a\rb", "a b", "a\tb", "a\x7f", "a\xff"}) {
    Enc e("GET", "/");
    e.req.host = bad;
    e.run_expect_error(Error::InvalidUrl);
  }
  Enc nul("GET", "/");
  nul.req.host = std::string_view("a\0b", 3);
  nul.run_expect_error(Error::InvalidUrl);
}

// ---------------------------------------------------------------- method / target

TEST(encoder_invalid_method) {
  for (const char* bad : {"", "G ET", "GET ", " GET", "GET\r\nX: 1", "GET /x HTTP/1.1\r\n", "GE\nT", "GET\t",
                          "G(T)", "G/T", "G:T", "M\xc3\xa9"}) {
    Enc e(bad, "/");
    e.run_expect_error(Error::InvalidMethod);
  }
  for (unsigned c = 0; c < 0x20; ++c) {
    std::string m = "GE" + byte_str(static_cast<unsigned char>(c)) + "T";
    Enc e(m, "/");
    e.run_expect_error(Error::InvalidMethod);
  }
  {
    Enc e("GET\x7f", "/");
    e.run_expect_error(Error::InvalidMethod);
  }
  std::string nul("GE\0T", 4);
  Enc e(nul, "/");
  e.run_expect_error(Error::InvalidMethod);
  // Any token is a valid (extension) method; case is kept.
  Enc ok("m-search", "*");
  CHECK_EQ(N(ok.run()), N(Error::Ok));
  CHECK_EQ(ok.out.substr(0, 21), std::string("m-search * HTTP/1.1\r\n"));
}

TEST(encoder_invalid_target) {
  for (const char* bad : {"", "/a b", "/a\r\nX-Injected: 1", "/a\n", "/a\r", "/\t", "/\x7f", "/caf\xc3\xa9",
                          "/ HTTP/1.1\r\nHost: evil\r\n\r\nGET /"}) {
    Enc e("GET", bad);
    e.run_expect_error(Error::InvalidUrl);
  }
  for (unsigned c = 0; c <= 0x20; ++c) {
    std::string t = "/x" + byte_str(static_cast<unsigned char>(c));
    Enc e("GET", t);
    e.run_expect_error(Error::InvalidUrl);
  }
}

// ---------------------------------------------------------------- header names / values

TEST(encoder_control_bytes_rejected_in_header_names) {
  for (unsigned c = 0; c <= 0x7F; c = (c == 0x1F ? 0x7F : c + 1)) {
    std::string name = "X-" + byte_str(static_cast<unsigned char>(c)) + "a";
    Enc e("GET", "/", {"Accept", "*/*", name, "v"});
    e.run_expect_error(Error::InvalidHeader, 1);
    CHECK_EQ(R(e.err.reason), std::string_view("invalid header name"));
    if (c == 0x7F) break;
  }
}

TEST(encoder_control_bytes_rejected_in_header_values) {
  for (unsigned c = 0; c <= 0x7F; c = (c == 0x1F ? 0x7F : c + 1)) {
    std::string value = "v" + byte_str(static_cast<unsigned char>(c)) + "w";
    Enc e("GET", "/", {"Accept", "*/*", "X-A", "1", "X-V", value});
    if (c == '\t') {
      CHECK_EQ(N(e.run()), N(Error::Ok));
      CHECK(e.out.find("X-V: v\tw\r\n") != std::string::npos);
    } else {
      e.run_expect_error(Error::InvalidHeader, 2);
      CHECK_EQ(R(e.err.reason), std::string_view("invalid character in header value"));
    }
    if (c == 0x7F) break;
  }
}

TEST(encoder_obs_text_rejected_in_names_accepted_in_values) {
  for (unsigned c = 0x80; c < 0x100; ++c) {
    std::string b = byte_str(static_cast<unsigned char>(c));
    Enc bad("GET", "/", {"X-" + b, "v"});
    bad.run_expect_error(Error::InvalidHeader, 0);
    CHECK_EQ(R(bad.err.reason), std::string_view("invalid header name"));

    std::string value = "v" + b;
    Enc good("GET", "/", {"X-V", value});
    CHECK_EQ(N(good.run()), N(Error::Ok));
    CHECK(good.out.find("X-V: v" + b + "\r\n") != std::string::npos);
  }
}

TEST(encoder_other_bad_header_names) {
  for (const char* bad : {"", "X A", " X", "X ", "X:", "X-Inj: 1\r\nY", "(X)", "X\"", "X/Y", "X@Y", "X[1]",
                          "X{", "X=Y", "X;", "X,Y", "X?", "X\\"}) {
    Enc e("GET", "/", {bad, "v"});
    e.run_expect_error(Error::InvalidHeader, 0);
    CHECK_EQ(R(e.err.reason), std::string_view("invalid header name"));
  }
}

TEST(encoder_crlf_injection_in_values) {
  for (const char* bad : {"a\r\nX-Injected: 1", "a\r\n\r\nGET /smuggled HTTP/1.1", "\r\n", "a\n", "a\r",
                          "a\nX-Injected: 1"}) {
    Enc e("GET", "/", {"X-Val", bad});
    e.run_expect_error(Error::InvalidHeader, 0);
  }
  std::string nul("a\0b", 3);
  Enc e("GET", "/", {"X-Val", nul});
  e.run_expect_error(Error::InvalidHeader, 0);
}

TEST(encoder_invalid_default_user_agent) {
  Enc e("GET", "/", {}, BodyMode::None, 0, "ua\r\nX-Injected: 1");
  e.run_expect_error(Error::InvalidHeader, SIZE_MAX);
  // Not used (user gave one) -> not an error.
  Enc e2("GET", "/", {"user-agent", "mine"}, BodyMode::None, 0, "ua\r\nX-Injected: 1");
  CHECK_EQ(N(e2.run()), N(Error::Ok));
}

// ---------------------------------------------------------------- managed headers

TEST(encoder_transfer_encoding_managed) {
  for (const char* name : {"transfer-encoding", "Transfer-Encoding", "TRANSFER-ENCODING"}) {
    for (BodyMode mode : {BodyMode::None, BodyMode::Length, BodyMode::Chunked}) {
      Enc e("POST", "/", {"X", "1", name, "chunked"}, mode, 3);
      e.run_expect_error(Error::InvalidHeader, 1);
      CHECK_EQ(R(e.err.reason), std::string_view("transfer-encoding is managed by uvfetch"));
    }
  }
  // Similar-looking names are ordinary headers.
  Enc ok("GET", "/", {"transfer-encodings", "x", "te", "trailers"});
  CHECK_EQ(N(ok.run()), N(Error::Ok));
}

TEST(encoder_upgrade_rejected) {
  {
    Enc e("GET", "/", {"Upgrade", "websocket"});
    e.run_expect_error(Error::InvalidHeader, 0);
    CHECK_EQ(R(e.err.reason), std::string_view("protocol upgrade is not supported"));
  }
  for (const char* v : {"upgrade", "Upgrade", "keep-alive, Upgrade", "UPGRADE ,close", " \tupgrade\t ", ",,upgrade,"}) {
    Enc e("GET", "/", {"X", "1", "Connection", v});
    e.run_expect_error(Error::InvalidHeader, 1);
    CHECK_EQ(R(e.err.reason), std::string_view("protocol upgrade is not supported"));
  }
  Enc ok("GET", "/", {"Connection", "upgraded, upgrade-insecure"});
  CHECK_EQ(N(ok.run()), N(Error::Ok));
}

TEST(encoder_connection_close) {
  for (const char* v : {"close", "Close", "CLOSE", "keep-alive, close", " close ", "foo,\tclose\t,bar", ",close,"}) {
    Enc e("GET", "/", {"Connection", v});
    CHECK_EQ(N(e.run()), N(Error::Ok));
    CHECK(e.res.connection_close);
    CHECK_EQ(e.out, std::string("GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: ") + v + "\r\n\r\n");
  }
  for (const char* v : {"keep-alive", "", "closed", "clos", "close-ish", "x close"}) {
    Enc e("GET", "/", {"Connection", v});
    e.res.connection_close = true;  // must be reset by the encoder
    CHECK_EQ(N(e.run()), N(Error::Ok));
    CHECK(!e.res.connection_close);
  }
  // Several connection headers: any close counts.
  Enc e("GET", "/", {"connection", "keep-alive", "CONNECTION", "close"});
  CHECK_EQ(N(e.run()), N(Error::Ok));
  CHECK(e.res.connection_close);
  // On error, connection_close stays false.
  Enc bad("GET", "/", {"Connection", "close", "X\r", "1"});
  bad.run_expect_error(Error::InvalidHeader, 1);
  CHECK(!bad.res.connection_close);
}

TEST(encoder_user_content_length_with_length_body) {
  Enc e("POST", "/", {"Content-Length", "5", "X", "1"}, BodyMode::Length, 5);
  CHECK_EQ(N(e.run()), N(Error::Ok));
  CHECK_EQ(e.out, std::string("POST / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Length: 5\r\nX: 1\r\n\r\n"));
  Enc lead("POST", "/", {"content-length", "007"}, BodyMode::Length, 7);
  CHECK_EQ(N(lead.run()), N(Error::Ok));
  CHECK(lead.out.find("content-length: 007\r\n\r\n") != std::string::npos);
  Enc big("POST", "/", {"content-length", "18446744073709551615"}, BodyMode::Length, UINT64_MAX);
  CHECK_EQ(N(big.run()), N(Error::Ok));

  Enc mismatch("POST", "/", {"X", "1", "Content-Length", "6"}, BodyMode::Length, 5);
  mismatch.run_expect_error(Error::InvalidHeader, 1);
  CHECK_EQ(R(mismatch.err.reason), std::string_view("content-length does not match the body"));
}

TEST(encoder_user_content_length_must_be_digits) {
  for (const char* v : {"", " 5", "5 ", "+5", "-5", "5.0", "0x5", "5,5", "five", "1e3", "\t5",
                        "18446744073709551616", "18446744073709551621" /* 2^64 + 5 */, "99999999999999999999999"}) {
    Enc e("POST", "/", {"Content-Length", v}, BodyMode::Length, 5);
    e.run_expect_error(Error::InvalidHeader, 0);
  }
}

TEST(encoder_user_content_length_without_body) {
  for (const char* v : {"0", "00"}) {
    Enc e("POST", "/", {"content-length", v});
    CHECK_EQ(N(e.run()), N(Error::Ok));
    // No second, encoder-generated content-length.
    CHECK_EQ(e.out, std::string("POST / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\ncontent-length: ") + v + "\r\n\r\n");
  }
  Enc get("GET", "/", {"Content-Length", "0"});
  CHECK_EQ(N(get.run()), N(Error::Ok));
  CHECK_EQ(get.out, std::string("GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Length: 0\r\n\r\n"));

  Enc bad("GET", "/", {"Content-Length", "3"});
  bad.run_expect_error(Error::InvalidHeader, 0);
  CHECK_EQ(R(bad.err.reason), std::string_view("content-length does not match the body"));
}

TEST(encoder_user_content_length_with_chunked_body) {
  Enc e("POST", "/", {"X", "1", "Content-Length", "10"}, BodyMode::Chunked);
  e.run_expect_error(Error::InvalidHeader, 1);
  CHECK_EQ(R(e.err.reason), std::string_view("content-length given for a streamed body of unknown length"));
}

TEST(encoder_duplicate_content_length_rejected) {
  Enc e("POST", "/", {"Content-Length", "5", "content-length", "5"}, BodyMode::Length, 5);
  e.run_expect_error(Error::InvalidHeader, 1);
  CHECK_EQ(R(e.err.reason), std::string_view("duplicate content-length header"));
}

TEST(encoder_first_error_wins_and_index_reported) {
  Enc e("GET", "/", {"A", "1", "B", "2", "C", "bad\n", "D\r", "4"});
  e.run_expect_error(Error::InvalidHeader, 2);
  // Method is checked before target, target before headers.
  Enc e2("G T", "/ x", {"X\r", "1"});
  e2.run_expect_error(Error::InvalidMethod);
  Enc e3("GET", "/ x", {"X\r", "1"});
  e3.run_expect_error(Error::InvalidUrl);
}

TEST(encoder_error_struct_reset_on_success) {
  Enc e("GET", "/");
  e.err.code = Error::InvalidHeader;
  e.err.reason = "stale";
  e.err.header_index = 3;
  CHECK_EQ(N(e.run()), N(Error::Ok));
  CHECK_EQ(N(e.err.code), N(Error::Ok));
  CHECK(e.err.reason == nullptr);
  CHECK_EQ(e.err.header_index, SIZE_MAX);
}

TEST(encoder_many_headers) {
  std::vector<std::string> storage;
  storage.reserve(400);
  std::vector<std::string_view> hv;
  std::string expected = "PATCH /bulk HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n";
  for (int i = 0; i < 200; ++i) {
    storage.push_back("X-H" + std::to_string(i));
    storage.push_back(std::string(static_cast<size_t>(i), 'v'));
  }
  for (size_t i = 0; i < storage.size(); i += 2) {
    hv.push_back(storage[i]);
    hv.push_back(storage[i + 1]);
    expected += storage[i] + ": " + storage[i + 1] + "\r\n";
  }
  expected += "user-agent: u\r\ncontent-length: 123456\r\n\r\n";
  RequestHead req;
  req.method = "PATCH";
  req.target = "/bulk";
  req.host = "127.0.0.1:8080";
  req.headers = hv.data();
  req.header_pairs = hv.size() / 2;
  req.body_mode = BodyMode::Length;
  req.content_length = 123456;
  req.user_agent = "u";
  std::string out;
  EncodeResult res;
  EncodeError err;
  CHECK_EQ(N(encode_request_head(req, &out, &res, &err)), N(Error::Ok));
  CHECK_EQ(out, expected);
}
