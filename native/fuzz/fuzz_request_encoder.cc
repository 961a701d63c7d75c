// Fuzz target: http1::encode_request_head (and validate_request_head) with arbitrary method / target / host / header bytes.
//
// Input (FuzzedDataProvider): body mode, content length, header count and flags come from the
// end of the input; then method, target, host, user agent, (when a flag says so) the default
// accept-encoding, and the header name/value strings from
// the front, each ended by "\" followed by any byte other than "\" ("\\" is a literal backslash).
//
// Invariants:
//   - on error: the output buffer is untouched, the code says which part is wrong, and that part
//     really is invalid by an independent check; a request whose parts are all valid and that
//     names no managed header (host, content-length, transfer-encoding, connection, upgrade,
//     user-agent) is never rejected;
//   - on success: exactly the head is appended after the existing bytes, and re-parsing it finds
//     no CR, LF or NUL except the CRLFs that end its lines; the request line is
//     "method SP target SP HTTP/1.1"; Host comes first (the user's own or the default); the user's
//     other headers follow byte-for-byte in order; at most one framing header, consistent with the
//     body mode; connection_close is reported iff a Connection header names "close".
#include <fuzzer/FuzzedDataProvider.h>

#include <cstring>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "http1/request_encoder.h"

using namespace uvf::http1;
using uvf::Error;

namespace {

bool tchar(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c != 0 && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr);
}
bool token(const std::string& s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (!tchar(c)) return false;
  }
  return true;
}
bool visible(const std::string& s) {  // 0x21..0x7E only (may be empty)
  for (unsigned char c : s) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}
bool field_value(const std::string& s) {  // HTAB, SP, VCHAR, obs-text
  for (unsigned char c : s) {
    if (c != '\t' && (c < 0x20 || c == 0x7f)) return false;
  }
  return true;
}
std::string lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  return s;
}
bool managed(const std::string& name) {
  std::string n = lower(name);
  return n == "host" || n == "content-length" || n == "transfer-encoding" || n == "connection" ||
         n == "upgrade" || n == "user-agent";
}
// A comma-separated list (OWS-trimmed, case-insensitive) names `want` (lowercase).
bool names_token(const std::string& v, const char* want) {
  size_t i = 0;
  for (;;) {
    size_t comma = v.find(',', i);
    std::string tok = v.substr(i, comma == std::string::npos ? std::string::npos : comma - i);
    size_t b = tok.find_first_not_of(" \t");
    size_t e = tok.find_last_not_of(" \t");
    if (b != std::string::npos && lower(tok.substr(b, e - b + 1)) == want) return true;
    if (comma == std::string::npos) return false;
    i = comma + 1;
  }
}

// 1*DIGIT that fits in uint64.
bool decimal_u64(const std::string& s, uint64_t* out) {
  if (s.empty()) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const uint8_t mode = in.ConsumeIntegral<uint8_t>();
  const uint64_t content_length =
      (mode & 4) ? in.ConsumeIntegral<uint64_t>() : in.ConsumeIntegralInRange<uint64_t>(0, 20);
  const size_t pairs = in.ConsumeIntegralInRange<size_t>(0, 8);

  RequestHead req;
  const std::string method = in.ConsumeRandomLengthString(32);
  const std::string target = in.ConsumeRandomLengthString(64);
  const std::string host = in.ConsumeRandomLengthString(32);
  const std::string user_agent = in.ConsumeRandomLengthString(32);
  const std::string accept_encoding = (mode & 64) ? in.ConsumeRandomLengthString(32) : std::string();
  std::vector<std::string> strings;
  for (size_t i = 0; i < 2 * pairs; ++i) strings.push_back(in.ConsumeRandomLengthString(64));
  std::vector<std::string_view> views(strings.begin(), strings.end());

  req.method = method;
  req.target = target;
  req.host = host;
  req.user_agent = user_agent;
  req.accept_encoding = accept_encoding;
  req.headers = (mode & 8) && pairs == 0 ? nullptr : views.data();
  req.header_pairs = pairs;
  req.body_mode = static_cast<BodyMode>((mode & 3) % 3);
  req.content_length = content_length;

  const std::string prefix = (mode & 16) ? std::string("\r\n\0previous", 11) : std::string();
  std::string out = prefix;
  EncodeResult res;
  res.connection_close = (mode & 32) != 0;  // must be overwritten
  EncodeError err;
  Error e = encode_request_head(req, &out, &res, &err);

  // The same call without the optional out-parameters must agree.
  std::string out2 = prefix;
  FUZZ_CHECK(encode_request_head(req, &out2, nullptr, nullptr) == e);
  FUZZ_CHECK(out2 == out);

  // Validation alone (at submit; the connection encodes later) gives the same verdict, reason,
  // offending header and Connection: close flag.
  EncodeResult vres;
  EncodeError verr;
  FUZZ_CHECK(uvf::http1::validate_request_head(req, &vres, &verr) == e);
  FUZZ_CHECK(verr.reason == err.reason && verr.header_index == err.header_index);
  if (e == Error::Ok) {
    FUZZ_CHECK(vres.connection_close == res.connection_close);
    // Encoding what was validated, without scanning its bytes again, gives the same head.
    RequestHead trusted = req;
    trusted.validated = true;
    std::string out3 = prefix;
    FUZZ_CHECK(encode_request_head(trusted, &out3, nullptr, nullptr) == Error::Ok);
    FUZZ_CHECK(out3 == out);
  }

  // The default user agent / accept-encoding are only validated (and sent) when the user gave
  // no header of that name.
  bool parts_valid = token(method) && !target.empty() && visible(target) && visible(host);
  bool any_managed = false, has_ua_header = false, has_ae_header = false;
  for (size_t i = 0; i < pairs; ++i) {
    parts_valid = parts_valid && token(strings[2 * i]) && field_value(strings[2 * i + 1]);
    any_managed = any_managed || managed(strings[2 * i]);
    has_ua_header = has_ua_header || lower(strings[2 * i]) == "user-agent";
    has_ae_header = has_ae_header || lower(strings[2 * i]) == "accept-encoding";
  }
  const bool add_ua = !has_ua_header && !user_agent.empty();
  const bool add_ae = !has_ae_header && !accept_encoding.empty();
  if ((add_ua && !field_value(user_agent)) || (add_ae && !field_value(accept_encoding))) parts_valid = false;

  if (e != Error::Ok) {
    FUZZ_CHECK(out == prefix);
    FUZZ_CHECK(err.code == e && err.reason != nullptr && err.reason[0] != '\0');
    FUZZ_CHECK(!res.connection_close);
    FUZZ_CHECK(!(parts_valid && !any_managed));
    switch (e) {
      case Error::InvalidMethod:
        FUZZ_CHECK(!token(method));
        break;
      case Error::InvalidUrl:
        FUZZ_CHECK(token(method));
        FUZZ_CHECK(target.empty() || !visible(target) || !visible(host));
        break;
      case Error::InvalidHeader:
        FUZZ_CHECK(token(method) && !target.empty() && visible(target) && visible(host));
        if (err.header_index != SIZE_MAX) {
          FUZZ_CHECK(err.header_index < pairs);
          for (size_t j = 0; j < err.header_index; ++j) {  // the first offending pair is reported
            FUZZ_CHECK(token(strings[2 * j]) && field_value(strings[2 * j + 1]));
          }
          const std::string& n = strings[2 * err.header_index];
          FUZZ_CHECK(!token(n) || !field_value(strings[2 * err.header_index + 1]) || managed(n));
        } else {
          FUZZ_CHECK((add_ua && !field_value(user_agent)) || (add_ae && !field_value(accept_encoding)));
        }
        break;
      default:
        FUZZ_CHECK(false && "unexpected error code");
    }
    return 0;
  }

  FUZZ_CHECK(err.code == Error::Ok);
  FUZZ_CHECK(parts_valid);
  FUZZ_CHECK(out.compare(0, prefix.size(), prefix) == 0);
  const std::string head = out.substr(prefix.size());

  // Re-parse: CR only as part of CRLF, LF only after CR, no NUL; split into lines.
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t i = 0; i < head.size(); ++i) {
    char c = head[i];
    FUZZ_CHECK(c != '\0');
    if (c == '\r') FUZZ_CHECK(i + 1 < head.size() && head[i + 1] == '\n');
    if (c == '\n') {
      FUZZ_CHECK(i > 0 && head[i - 1] == '\r');
      lines.push_back(head.substr(start, i - 1 - start));
      start = i + 1;
    }
  }
  FUZZ_CHECK(start == head.size());  // ends with CRLF
  FUZZ_CHECK(lines.size() >= 3 && lines.back().empty());
  lines.pop_back();
  for (const std::string& l : lines) FUZZ_CHECK(!l.empty());  // only the final line is empty

  FUZZ_CHECK(lines[0] == method + " " + target + " HTTP/1.1");

  struct Field {
    std::string name, value;
  };
  std::vector<Field> fields;
  for (size_t i = 1; i < lines.size(); ++i) {
    size_t colon = lines[i].find(':');
    FUZZ_CHECK(colon != std::string::npos && lines[i].compare(colon, 2, ": ") == 0);
    Field f{lines[i].substr(0, colon), lines[i].substr(colon + 2)};
    FUZZ_CHECK(token(f.name) && field_value(f.value));
    fields.push_back(f);
  }

  // Host first: the user's own (one at most) or the default.
  size_t user_host = SIZE_MAX;
  for (size_t i = 0; i < pairs; ++i) {
    if (lower(strings[2 * i]) == "host") {
      FUZZ_CHECK(user_host == SIZE_MAX);
      user_host = i;
    }
  }
  if (user_host == SIZE_MAX) {
    FUZZ_CHECK(fields[0].name == "Host" && fields[0].value == host);
  } else {
    FUZZ_CHECK(fields[0].name == strings[2 * user_host] && fields[0].value == strings[2 * user_host + 1]);
  }
  // Then the user's other headers, as given.
  size_t f = 1;
  bool user_ua = false, user_cl = false, close = false;
  for (size_t i = 0; i < pairs; ++i) {
    std::string ln = lower(strings[2 * i]);
    FUZZ_CHECK(ln != "transfer-encoding" && ln != "upgrade");
    user_ua = user_ua || ln == "user-agent";
    if (ln == "connection") {
      FUZZ_CHECK(!names_token(strings[2 * i + 1], "upgrade"));
      close = close || names_token(strings[2 * i + 1], "close");
    }
    if (ln == "content-length") {
      FUZZ_CHECK(!user_cl && req.body_mode != BodyMode::Chunked);
      user_cl = true;
      uint64_t v = 0;
      FUZZ_CHECK(decimal_u64(strings[2 * i + 1], &v));
      FUZZ_CHECK(v == (req.body_mode == BodyMode::Length ? content_length : 0));
    }
    if (i == user_host) continue;
    FUZZ_CHECK(f < fields.size() && fields[f].name == strings[2 * i] && fields[f].value == strings[2 * i + 1]);
    ++f;
  }
  FUZZ_CHECK(res.connection_close == close);
  // Then what the encoder adds: user-agent, accept-encoding, framing.
  if (add_ua) {
    FUZZ_CHECK(!user_ua);
    FUZZ_CHECK(f < fields.size() && fields[f].name == "user-agent" && fields[f].value == user_agent);
    ++f;
  }
  if (add_ae) {
    FUZZ_CHECK(f < fields.size() && fields[f].name == "accept-encoding" && fields[f].value == accept_encoding);
    ++f;
  }
  const bool needs_zero = method == "POST" || method == "PUT" || method == "PATCH";
  if (req.body_mode == BodyMode::Chunked) {
    FUZZ_CHECK(f < fields.size() && fields[f].name == "transfer-encoding" && fields[f].value == "chunked");
    ++f;
  } else if (!user_cl && (req.body_mode == BodyMode::Length || needs_zero)) {
    uint64_t want = req.body_mode == BodyMode::Length ? content_length : 0;
    FUZZ_CHECK(f < fields.size() && fields[f].name == "content-length" && fields[f].value == std::to_string(want));
    ++f;
  }
  FUZZ_CHECK(f == fields.size());

  // Framing as a server would see it: never both, never twice.
  size_t cl = 0, te = 0;
  for (const Field& x : fields) {
    cl += lower(x.name) == "content-length";
    te += lower(x.name) == "transfer-encoding";
  }
  FUZZ_CHECK(cl <= 1 && te <= 1 && cl + te <= 1);
  return 0;
}
