// Response body decoding (Content-Encoding: gzip, deflate, br, zstd), streaming and bounded.
//
// Pure C++ over caller-owned bytes: zlib and brotli are the copies Node exports (in the addon) or
// the system's runtime libraries (in the native tests); zstd is used only when the running Node
// exports it (looked up at run time, so one binary works on Node 20, 22 and 24).
//
// Limits (a decompression bomb never allocates beyond them):
//   - max_output: decoded bytes in all (the buffered response's maxBodySize);
//   - max_ratio: past the first `ratio_grace` decoded bytes, decoded/encoded may not exceed it.
// Output goes to a sink in pieces of at most kChunk bytes, checked against the limits before each
// piece is handed over.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "base/errors.h"

namespace uvf::http1 {

enum class Coding : uint8_t { Identity, Gzip, Deflate, Brotli, Zstd };

constexpr size_t kMaxCodings = 5;

// Parses a Content-Encoding field value ("gzip", "x-gzip", "deflate", "br", "zstd", "identity",
// comma-separated, case-insensitive) and appends the codings in the order they were applied.
// Returns false for an unknown coding (the caller then leaves the body as it is) and sets
// *too_many when more than kMaxCodings would be listed.
bool parse_content_encoding(std::string_view value, std::vector<Coding>* out, bool* too_many);

// Whether this process can decode zstd (the running Node exports it).
bool zstd_available();
// The Accept-Encoding value matching what can be decoded: "gzip, deflate, br" (+ ", zstd").
std::string_view default_accept_encoding();

class ContentDecoder {
 public:
  static constexpr size_t kChunk = 64 * 1024;
  using Sink = bool (*)(void* ctx, const char* p, size_t n);  // false stops decoding

  struct Limits {
    uint64_t max_output = UINT64_MAX;
    double max_ratio = 100.0;         // 0 = no ratio limit
    uint64_t ratio_grace = 1 << 20;   // decoded bytes allowed before the ratio applies
  };

  ContentDecoder();
  ~ContentDecoder();
  ContentDecoder(const ContentDecoder&) = delete;
  ContentDecoder& operator=(const ContentDecoder&) = delete;

  // `codings` in the order applied by the server (decoded in reverse). False if one is unavailable.
  bool init(const std::vector<Coding>& codings, const Limits& limits);
  bool active() const { return !stages_.empty(); }

  // Decodes encoded bytes, handing decoded pieces to sink(ctx, ...). False on error (see error()),
  // or when the sink returned false (then error() is Ok).
  bool feed(const char* p, size_t n, Sink sink, void* ctx);
  // The encoded body ended: false if a stage's stream is incomplete (truncated data).
  bool finish(Sink sink, void* ctx);

  Error error() const { return error_; }
  const char* detail() const { return detail_; }
  uint64_t decoded_bytes() const { return decoded_; }

  class Stage;

 private:
  friend class Stage;
  bool push(size_t stage, const char* p, size_t n, bool last);
  bool emit(const char* p, size_t n);
  bool fail(Error e, const char* detail);
  bool named_failure();

  std::vector<std::unique_ptr<Stage>> stages_;  // stage 0 decodes the outermost coding
  Limits limits_;
  uint64_t encoded_ = 0, decoded_ = 0;
  Sink sink_ = nullptr;
  void* ctx_ = nullptr;
  bool stopped_ = false;
  Error error_ = Error::Ok;
  const char* detail_ = nullptr;
};

}  // namespace uvf::http1
