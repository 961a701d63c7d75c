#include "http1/chunked_decoder.h"

namespace uvf::http1 {

namespace {

using detail::is_field_char;
using detail::is_hex_digit;
using detail::is_tchar;

// 15 hex digits already cap the value below 2^60; the explicit bound documents the contract with
// callers (a chunk size always fits comfortably in int64 arithmetic, even summed with others).
constexpr unsigned kMaxSizeDigits = 15;
constexpr uint64_t kMaxChunkSize = uint64_t{1} << 62;

inline unsigned hex_value(unsigned char c) {
  return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

}  // namespace

ChunkedDecoder::ChunkedDecoder(ChunkLimits limits) : limits_(limits) {}

void ChunkedDecoder::reset() {
  state_ = State::Size;
  remaining_ = 0;
  body_bytes_ = 0;
  offset_ = 0;
  line_len_ = 0;
  digits_ = 0;
  trailer_bytes_ = 0;
  trailer_count_ = 0;
  trailers_.clear();
  error_ = ParseError{};
}

ChunkedDecoder::Step ChunkedDecoder::fail(Error code, const char* reason, size_t consumed) {
  state_ = State::Failed;
  error_.code = code;
  error_.reason = reason;
  error_.offset = static_cast<size_t>(offset_ + consumed);
  offset_ += consumed;
  return Step{consumed, nullptr, 0};
}

ChunkedDecoder::Step ChunkedDecoder::feed(const char* p, size_t n) {
  size_t i = 0;
  while (i < n) {
    if (state_ == State::Data) {
      // Hand out as much of the current chunk as this input holds, then stop: one span per call.
      size_t avail = n - i;
      size_t take = remaining_ < avail ? static_cast<size_t>(remaining_) : avail;
      remaining_ -= take;
      body_bytes_ += take;
      if (remaining_ == 0) state_ = State::DataCr;
      offset_ += i + take;
      return Step{i + take, p + i, take};
    }

    unsigned char c = static_cast<unsigned char>(p[i]);
    // Trailers are bounded in bytes (and fields, below) like the head: otherwise a peer could
    // stream an endless trailer section. Relies on the trailer states being declared contiguously.
    if (state_ >= State::TrailerStart && state_ <= State::FinalLf &&
        ++trailer_bytes_ > limits_.max_trailer_size) {
      return fail(Error::HeadersTooLarge, "trailer section too large", i);
    }
    // Field lines are kept (a byte the switch below rejects fails the whole message anyway);
    // the final CRLF is not.
    if ((state_ > State::TrailerStart && state_ <= State::TrailerLf) || (state_ == State::TrailerStart && c != '\r')) {
      trailers_.push_back(static_cast<char>(c));
    }
    switch (state_) {
      case State::Size:
        if (is_hex_digit(c)) {
          if (++digits_ > kMaxSizeDigits) return fail(Error::BadResponse, "chunk size overflow", i);
          remaining_ = (remaining_ << 4) | hex_value(c);
          if (remaining_ > kMaxChunkSize) return fail(Error::BadResponse, "chunk size overflow", i);
          ++line_len_;
          break;
        }
        // chunk-size = 1*HEXDIG: no "0x", sign or leading whitespace, and never empty.
        if (digits_ == 0) return fail(Error::BadResponse, "invalid chunk size", i);
        if (c == '\r') {
          state_ = State::SizeLf;
        } else if (c == ';') {
          ++line_len_;
          state_ = State::Ext;
        } else if (c == ' ' || c == '\t') {
          // RFC 9112 §7.1.1 allows BWS before ';' (only there: "5 \r\n" is still invalid).
          ++line_len_;
          state_ = State::SizeWs;
        } else if (c == '\n') {
          return fail(Error::BadResponse, "bare LF", i);
        } else {
          return fail(Error::BadResponse, "invalid chunk size", i);
        }
        break;

      case State::SizeWs:
        if (++line_len_ > limits_.max_line) return fail(Error::BadResponse, "chunk extension too long", i);
        if (c == ';') {
          state_ = State::Ext;
        } else if (c == '\n') {
          return fail(Error::BadResponse, "bare LF", i);
        } else if (c != ' ' && c != '\t') {
          return fail(Error::BadResponse, "invalid chunk size", i);
        }
        break;

      case State::Ext:
        // Extensions are ignored, so only their byte range (no CTLs) and length are enforced.
        if (c == '\r') {
          state_ = State::SizeLf;
        } else if (c == '\n') {
          return fail(Error::BadResponse, "bare LF", i);
        } else if (!is_field_char(c)) {
          return fail(Error::BadResponse, "invalid character in chunk extension", i);
        } else if (++line_len_ > limits_.max_line) {
          return fail(Error::BadResponse, "chunk extension too long", i);
        }
        break;

      case State::SizeLf:
        if (c != '\n') return fail(Error::BadResponse, "bare CR", i);
        state_ = remaining_ == 0 ? State::TrailerStart : State::Data;
        break;

      case State::DataCr:
        if (c != '\r') return fail(Error::BadResponse, "missing CRLF after chunk data", i);
        state_ = State::DataLf;
        break;

      case State::DataLf:
        if (c != '\n') return fail(Error::BadResponse, "missing CRLF after chunk data", i);
        state_ = State::Size;
        remaining_ = 0;
        digits_ = 0;
        line_len_ = 0;
        break;

      // Trailer section (RFC 9112 §7.1.2): field lines validated like the head's, then CRLF.
      case State::TrailerStart:
        if (c == '\r') {
          state_ = State::FinalLf;
        } else if (is_tchar(c)) {
          if (++trailer_count_ > limits_.max_trailer_count) {
            return fail(Error::HeadersTooLarge, "too many trailers", i);
          }
          state_ = State::TrailerName;
        } else if (c == ' ' || c == '\t') {
          return fail(Error::BadResponse, "obs-fold", i);
        } else if (c == '\n') {
          return fail(Error::BadResponse, "bare LF", i);
        } else if (c == ':') {
          return fail(Error::BadResponse, "empty header name", i);
        } else {
          return fail(Error::BadResponse, "invalid character in header name", i);
        }
        break;

      case State::TrailerName:
        if (c == ':') {
          state_ = State::TrailerValue;
        } else if (c == '\r') {
          state_ = State::TrailerNameCr;
        } else if (c == '\n') {
          return fail(Error::BadResponse, "bare LF", i);
        } else if (c == ' ' || c == '\t') {
          return fail(Error::BadResponse, "whitespace before colon", i);
        } else if (!is_tchar(c)) {
          return fail(Error::BadResponse, "invalid character in header name", i);
        }
        break;

      case State::TrailerNameCr:
        return fail(Error::BadResponse, c == '\n' ? "header line without colon" : "bare CR", i);

      case State::TrailerValue:
        if (c == '\r') {
          state_ = State::TrailerLf;
        } else if (c == '\n') {
          return fail(Error::BadResponse, "bare LF", i);
        } else if (!is_field_char(c)) {
          return fail(Error::BadResponse, "invalid character in header value", i);
        }
        break;

      case State::TrailerLf:
        if (c != '\n') return fail(Error::BadResponse, "bare CR", i);
        state_ = State::TrailerStart;
        break;

      case State::FinalLf:
        if (c != '\n') return fail(Error::BadResponse, "bare CR", i);
        state_ = State::Done;
        break;

      // Done: stop right after the final LF, what follows belongs to the next response.
      case State::Done:
      case State::Failed:
      case State::Data:  // unreachable, handled above
        offset_ += i;
        return Step{i, nullptr, 0};
    }
    ++i;
  }
  offset_ += i;
  return Step{i, nullptr, 0};
}

}  // namespace uvf::http1
