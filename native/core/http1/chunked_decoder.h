// Incremental decoder for the HTTP/1.1 chunked transfer coding (RFC 9112 §7.1).
//
// Works on whatever slices the socket hands us, down to one byte at a time, without buffering:
// body bytes are returned as views into the caller's input. Only a trailer section, if the
// response has one, is kept (its field lines, within max_trailer_size) for trailers(). Like the head parser it is
// strict, since a lenient chunk parser is the other half of most request-smuggling bugs.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "http1/response_parser.h"

namespace uvf::http1 {

struct ChunkLimits {
  size_t max_line = 1024;  // chunk-size line incl. extensions (CRLF not counted)
  size_t max_trailer_size = 64 * 1024;  // trailer section incl. its final CRLF
  size_t max_trailer_count = 200;
};

class ChunkedDecoder {
 public:
  explicit ChunkedDecoder(ChunkLimits limits = {});
  void reset();
  void set_limits(const ChunkLimits& limits) { limits_ = limits; }

  struct Step {
    size_t consumed;
    const char* data;  // body bytes inside the input, nullptr when none
    size_t data_len;
  };
  // Consumes a prefix of [p, p+n). Returns how much it consumed and at most one span of body bytes
  // found in it (data == nullptr / data_len 0 when none). The caller loops until n is used up or
  // done()/failed(). Never consumes bytes past the end of the message (bytes after the final CRLF are
  // left to the caller). Once done() or failed(), consumes nothing.
  Step feed(const char* p, size_t n);

  bool done() const { return state_ == State::Done; }      // last chunk and trailers fully consumed
  bool failed() const { return state_ == State::Failed; }  // after an error; error() tells which
  // Error offsets count bytes since construction/reset(), i.e. from the start of the chunked body.
  const ParseError& error() const { return error_; }
  uint64_t body_bytes() const { return body_bytes_; }  // decoded bytes so far
  // The trailer field lines received ("name: value\r\n" each, as sent; empty when none), complete
  // once done().
  const std::string& trailers() const { return trailers_; }
  std::string take_trailers() { return std::move(trailers_); }

 private:
  enum class State : uint8_t {
    Size,          // chunk-size hex digits
    SizeWs,        // BWS between chunk-size and ';'
    Ext,           // ";ext..." up to CR
    SizeLf,        // LF ending the chunk-size line
    Data,          // chunk data
    DataCr,        // CR after chunk data
    DataLf,        // LF after chunk data
    // Trailer states: keep contiguous, TrailerStart..FinalLf (feed() range-checks them).
    TrailerStart,  // start of a trailer line (or the final CRLF)
    TrailerName,
    TrailerNameCr,  // CR inside a trailer name: either "no colon" (CRLF) or a bare CR
    TrailerValue,
    TrailerLf,  // LF ending a trailer line
    FinalLf,    // LF of the final CRLF
    Done,
    Failed,
  };

  Step fail(Error code, const char* reason, size_t consumed);

  ChunkLimits limits_;
  State state_ = State::Size;
  uint64_t remaining_ = 0;  // chunk size while parsing the size line, then data bytes still due
  uint64_t body_bytes_ = 0;
  uint64_t offset_ = 0;  // bytes consumed before the current feed() call
  size_t line_len_ = 0;  // bytes of the current chunk-size line so far
  unsigned digits_ = 0;  // hex digits seen in the current chunk-size
  size_t trailer_bytes_ = 0;
  size_t trailer_count_ = 0;
  std::string trailers_;
  ParseError error_;
};

}  // namespace uvf::http1
