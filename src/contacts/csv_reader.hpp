// contacts: a streaming RFC 4180 CSV reader for contact imports.
//
// Reads records one at a time from a ByteSource (an std::istream, a memory
// buffer, or any chunked source) and never holds more than one chunk plus the
// current record: multi-gigabyte files stream through in bounded memory.
// Understands quoted fields with embedded delimiters, newlines and doubled
// quotes; a UTF-8 byte-order mark (stripped); CRLF, LF or lone CR line ends;
// and detects the delimiter (comma, semicolon or tab) from the header line.
//
// Malformed input never stops the reader: each record carries its own error
// (ragged row, broken or unterminated quote, invalid UTF-8, a field over
// `max_field_bytes`, too many fields) with its row and line number, and the
// reader carries on with the next record. Memory per record is bounded by
// `max_record_bytes`; oversized content is skipped, not stored. Error
// messages name positions only, never field contents (they are personal data).
//
// Not thread-safe: one reader is used by one thread at a time.
#pragma once

#include <cstdint>
#include <istream>
#include <string>
#include <string_view>
#include <vector>

#include "common/encoding.hpp"  // IsValidUtf8, used with the reader
#include "common/result.hpp"

namespace clozit::contacts {

/// Bytes read front to back in chunks.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  /// Copies up to `capacity` bytes into `buffer`; returns how many. 0 means the end.
  virtual Result<size_t> Read(char* buffer, size_t capacity) = 0;
};

/// Reads an std::istream (a file, a socket stream) as it is.
class IstreamSource final : public ByteSource {
 public:
  explicit IstreamSource(std::istream& in) : in_(in) {}
  Result<size_t> Read(char* buffer, size_t capacity) override;

 private:
  std::istream& in_;
};

/// Reads a buffer the caller keeps alive; `max_chunk` limits each read (tests use 1).
class MemorySource final : public ByteSource {
 public:
  explicit MemorySource(std::string_view data, size_t max_chunk = SIZE_MAX) : data_(data), max_chunk_(max_chunk) {}
  Result<size_t> Read(char* buffer, size_t capacity) override;

 private:
  std::string_view data_;
  size_t max_chunk_;
  size_t position_ = 0;
};

enum class CsvError {
  kNone,
  kRaggedRow,            // field count differs from the header's
  kBrokenQuote,          // a quote inside an unquoted field, or text after a closing quote
  kUnterminatedQuote,    // a quoted field still open at the end of the input
  kInvalidUtf8,          // a field is not valid UTF-8
  kFieldTooLarge,        // a field longer than max_field_bytes (its content is dropped)
  kRecordTooLarge,       // a record longer than max_record_bytes, or with more than max_fields fields
  kUnsupportedEncoding,  // UTF-16 or UTF-32 input; the reader stops
  kReadError,            // the source failed; the reader stops
};

/// A stable snake_case name, e.g. "ragged_row".
std::string_view CsvErrorName(CsvError error);

struct CsvOptions {
  /// ',', ';' or '\t'; '\0' detects it from the first record (most of them outside quotes; ties go to ',').
  char delimiter = '\0';
  size_t max_field_bytes = size_t{1} << 20;
  size_t max_record_bytes = size_t{4} << 20;
  size_t max_fields = 1024;
  size_t chunk_bytes = size_t{64} << 10;
  /// The first record is a header: every later record must have as many fields.
  bool header = true;

  /// To resume: the source is already positioned at `start_offset` (a record
  /// boundary a previous reader reported as end_offset), and these say where
  /// that reader stood. With expected_fields set no header is read again.
  uint64_t start_offset = 0;
  uint64_t start_row = 0;   // records already read (the header counts)
  uint64_t start_line = 1;  // physical line at start_offset
  size_t expected_fields = 0;
};

/// One record. Fields are views into the record's own storage and stay valid
/// until the next call to CsvReader::Next with this record.
class CsvRecord {
 public:
  uint64_t row = 0;           // 1-based record number; the header is row 1; blank lines are not counted
  uint64_t line = 0;          // 1-based physical line where the record starts
  uint64_t begin_offset = 0;  // byte offset of its first byte in the source
  uint64_t end_offset = 0;    // byte offset just past its line end
  CsvError error = CsvError::kNone;
  std::string error_message;  // positions only, e.g. "row 7: expected 5 fields, found 3"

  bool ok() const { return error == CsvError::kNone; }
  size_t size() const { return ends_.size(); }
  std::string_view field(size_t index) const {
    size_t begin = index == 0 ? 0 : ends_[index - 1];
    return std::string_view(storage_).substr(begin, ends_[index] - begin);
  }
  std::vector<std::string> Fields() const;

 private:
  friend class CsvReader;
  void Clear();
  std::string storage_;
  std::vector<size_t> ends_;
};

class CsvReader {
 public:
  explicit CsvReader(ByteSource& source, CsvOptions options = {});

  /// Reads the next record; false at the end of the input (or after a read or encoding error was reported).
  bool Next(CsvRecord& record);

  /// The delimiter in use (detected on the first call to Next when not given).
  char delimiter() const { return delimiter_; }
  /// The header's field count, once read (or as given to resume).
  size_t expected_fields() const { return expected_fields_; }
  /// Bytes of the source consumed so far, counted from the start of the file.
  uint64_t bytes_consumed() const { return consumed_offset_; }
  uint64_t rows_read() const { return row_; }
  uint64_t line() const { return line_; }

 private:
  enum class State { kFieldStart, kUnquoted, kQuoted, kQuoteInQuoted };

  bool Fill();                // reads more input after the unconsumed bytes; false at the end
  bool Ensure(size_t count);  // at least `count` unconsumed bytes, unless the input ends first
  void Start();               // BOM, encoding check, delimiter detection
  char DetectDelimiter();
  void Fail(CsvRecord& record, CsvError error, std::string message);
  void Append(CsvRecord& record, const char* data, size_t size);
  void EndField(CsvRecord& record);

  ByteSource& source_;
  CsvOptions options_;
  std::vector<char> buffer_;
  size_t position_ = 0;         // next unconsumed byte in buffer_
  size_t end_ = 0;              // one past the last valid byte in buffer_
  uint64_t buffer_offset_ = 0;  // source offset of buffer_[0]
  uint64_t consumed_offset_ = 0;
  bool eof_ = false;
  bool started_ = false;
  bool stopped_ = false;  // a fatal error was reported: no more records
  CsvError fatal_ = CsvError::kNone;
  std::string fatal_message_;
  char delimiter_ = '\0';
  size_t expected_fields_ = 0;
  uint64_t row_ = 0;
  uint64_t line_ = 1;

  // Per record being parsed.
  size_t field_bytes_ = 0;  // bytes seen in the current field (stored or not)
  bool field_dropped_ = false;
  bool record_full_ = false;  // max_fields or max_record_bytes reached: content is dropped
};

}  // namespace clozit::contacts
