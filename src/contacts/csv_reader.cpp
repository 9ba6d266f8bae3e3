#include "contacts/csv_reader.hpp"

#include <algorithm>
#include <cstring>

namespace clozit::contacts {
namespace {

// Delimiter detection looks at no more than this much of the first record.
constexpr size_t kDetectLimit = size_t{1} << 20;

}  // namespace

Result<size_t> IstreamSource::Read(char* buffer, size_t capacity) {
  if (in_.eof()) return size_t{0};
  in_.read(buffer, static_cast<std::streamsize>(capacity));
  if (in_.bad()) return Error::Make(ErrorCode::kUnavailable, "cannot read the input");
  return static_cast<size_t>(in_.gcount());
}

Result<size_t> MemorySource::Read(char* buffer, size_t capacity) {
  size_t count = std::min({capacity, max_chunk_, data_.size() - position_});
  if (count > 0) std::memcpy(buffer, data_.data() + position_, count);
  position_ += count;
  return count;
}

std::string_view CsvErrorName(CsvError error) {
  switch (error) {
    case CsvError::kNone:
      return "none";
    case CsvError::kRaggedRow:
      return "ragged_row";
    case CsvError::kBrokenQuote:
      return "broken_quote";
    case CsvError::kUnterminatedQuote:
      return "unterminated_quote";
    case CsvError::kInvalidUtf8:
      return "invalid_utf8";
    case CsvError::kFieldTooLarge:
      return "field_too_large";
    case CsvError::kRecordTooLarge:
      return "record_too_large";
    case CsvError::kUnsupportedEncoding:
      return "unsupported_encoding";
    case CsvError::kReadError:
      return "read_error";
  }
  return "unknown";
}

std::vector<std::string> CsvRecord::Fields() const {
  std::vector<std::string> out;
  out.reserve(size());
  for (size_t i = 0; i < size(); ++i) out.emplace_back(field(i));
  return out;
}

void CsvRecord::Clear() {
  row = line = begin_offset = end_offset = 0;
  error = CsvError::kNone;
  error_message.clear();
  storage_.clear();
  ends_.clear();
}

CsvReader::CsvReader(ByteSource& source, CsvOptions options)
    : source_(source),
      options_(options),
      buffer_(std::max<size_t>(options.chunk_bytes, 16)),
      buffer_offset_(options.start_offset),
      consumed_offset_(options.start_offset),
      expected_fields_(options.expected_fields),
      row_(options.start_row),
      line_(std::max<uint64_t>(options.start_line, 1)) {
  options_.max_fields = std::max<size_t>(options_.max_fields, 1);
}

bool CsvReader::Fill() {
  if (eof_ || fatal_ != CsvError::kNone) return false;
  if (position_ > 0) {
    std::memmove(buffer_.data(), buffer_.data() + position_, end_ - position_);
    end_ -= position_;
    buffer_offset_ += position_;
    position_ = 0;
  }
  if (end_ == buffer_.size()) buffer_.resize(buffer_.size() * 2);
  auto read = source_.Read(buffer_.data() + end_, buffer_.size() - end_);
  if (!read) {
    fatal_ = CsvError::kReadError;
    fatal_message_ = read.error().message;
    return false;
  }
  if (*read == 0) {
    eof_ = true;
    return false;
  }
  end_ += *read;
  return true;
}

bool CsvReader::Ensure(size_t count) {
  while (end_ - position_ < count) {
    if (!Fill()) return false;
  }
  return true;
}

void CsvReader::Start() {
  started_ = true;
  if (options_.start_offset == 0) {
    Ensure(4);
    auto byte = [&](size_t i) { return static_cast<unsigned char>(buffer_[position_ + i]); };
    size_t available = end_ - position_;
    if (available >= 3 && byte(0) == 0xef && byte(1) == 0xbb && byte(2) == 0xbf) {
      position_ += 3;
      consumed_offset_ += 3;
    } else if (available >= 2 && ((byte(0) == 0xff && byte(1) == 0xfe) || (byte(0) == 0xfe && byte(1) == 0xff))) {
      fatal_ = CsvError::kUnsupportedEncoding;
      fatal_message_ = "the file is UTF-16 or UTF-32 encoded; save it as UTF-8 CSV";
      return;
    } else if (available >= 4 && byte(0) == 0 && byte(1) == 0 && byte(2) == 0xfe && byte(3) == 0xff) {
      fatal_ = CsvError::kUnsupportedEncoding;
      fatal_message_ = "the file is UTF-32 encoded; save it as UTF-8 CSV";
      return;
    }
  }
  char given = options_.delimiter;
  if (given != '\0' && given != '"' && given != '\n' && given != '\r') {
    delimiter_ = given;
  } else {
    delimiter_ = DetectDelimiter();
  }
}

char CsvReader::DetectDelimiter() {
  size_t commas = 0, semicolons = 0, tabs = 0;
  bool quoted = false;
  size_t scanned = 0;
  for (;;) {
    if (position_ + scanned == end_) {
      if (scanned >= kDetectLimit || !Fill()) break;
    }
    char c = buffer_[position_ + scanned];
    ++scanned;
    if (c == '"') {
      quoted = !quoted;
    } else if (!quoted) {
      if (c == '\n' || c == '\r') break;
      if (c == ',') ++commas;
      if (c == ';') ++semicolons;
      if (c == '\t') ++tabs;
    }
  }
  if (semicolons > commas && semicolons >= tabs) return ';';
  if (tabs > commas && tabs > semicolons) return '\t';
  return ',';
}

void CsvReader::Fail(CsvRecord& record, CsvError error, std::string message) {
  if (record.error != CsvError::kNone) return;
  record.error = error;
  record.error_message =
      "row " + std::to_string(record.row) + " (line " + std::to_string(record.line) + "): " + std::move(message);
}

void CsvReader::Append(CsvRecord& record, const char* data, size_t size) {
  if (size == 0) return;
  size_t field_before = field_bytes_;
  field_bytes_ += size;
  if (field_dropped_ || record_full_) return;
  size_t field_start = record.ends_.empty() ? 0 : record.ends_.back();
  // Whichever limit the bytes cross first decides the error, however the input was chunked.
  size_t field_room = options_.max_field_bytes - field_before;
  size_t record_room = options_.max_record_bytes - record.storage_.size();
  if (size <= field_room && size <= record_room) {
    record.storage_.append(data, size);
    return;
  }
  record.storage_.resize(field_start);
  if (field_room <= record_room) {
    field_dropped_ = true;
    Fail(record, CsvError::kFieldTooLarge,
         "field " + std::to_string(record.ends_.size() + 1) + " is longer than " +
             std::to_string(options_.max_field_bytes) + " bytes");
  } else {
    record_full_ = true;
    Fail(record, CsvError::kRecordTooLarge,
         "the record is longer than " + std::to_string(options_.max_record_bytes) + " bytes");
  }
}

void CsvReader::EndField(CsvRecord& record) {
  if (record.ends_.size() >= options_.max_fields) {
    if (!record_full_) {
      record_full_ = true;
      Fail(record, CsvError::kRecordTooLarge,
           "the record has more than " + std::to_string(options_.max_fields) + " fields");
    }
  } else {
    size_t begin = record.ends_.empty() ? 0 : record.ends_.back();
    record.ends_.push_back(record.storage_.size());
    if (!IsValidUtf8(std::string_view(record.storage_).substr(begin))) {
      Fail(record, CsvError::kInvalidUtf8, "field " + std::to_string(record.ends_.size()) + " is not valid UTF-8");
    }
  }
  field_bytes_ = 0;
  field_dropped_ = false;
}

bool CsvReader::Next(CsvRecord& record) {
  record.Clear();
  if (!started_) Start();
  if (stopped_) return false;

  // Skip blank lines; stop at the end of the input.
  for (;;) {
    if (fatal_ != CsvError::kNone) break;
    if (position_ == end_ && !Fill()) break;
    char c = buffer_[position_];
    if (c == '\n') {
      ++position_;
    } else if (c == '\r') {
      ++position_;
      if (Ensure(1) && buffer_[position_] == '\n') ++position_;
    } else {
      break;
    }
    ++line_;
    consumed_offset_ = buffer_offset_ + position_;
  }
  if (fatal_ != CsvError::kNone) {
    record.row = ++row_;
    record.line = line_;
    record.begin_offset = record.end_offset = consumed_offset_;
    Fail(record, fatal_, fatal_message_);
    stopped_ = true;
    return true;
  }
  if (position_ == end_) {
    stopped_ = true;
    return false;
  }

  record.row = ++row_;
  record.line = line_;
  record.begin_offset = buffer_offset_ + position_;
  field_bytes_ = 0;
  field_dropped_ = false;
  record_full_ = false;
  uint64_t quote_line = line_;
  State state = State::kFieldStart;
  const char delimiter = delimiter_;

  auto consume_line_end = [&] {
    if (buffer_[position_] == '\r') {
      ++position_;
      if (Ensure(1) && buffer_[position_] == '\n') ++position_;
    } else {
      ++position_;
    }
    ++line_;
  };

  bool done = false;
  while (!done) {
    if (position_ == end_ && !Fill()) {
      if (state == State::kQuoted) {
        Fail(record, CsvError::kUnterminatedQuote,
             "the quoted field " + std::to_string(record.ends_.size() + 1) + " opened on line " +
                 std::to_string(quote_line) + " is never closed");
      }
      EndField(record);
      break;
    }
    const char* begin = buffer_.data() + position_;
    const char* end = buffer_.data() + end_;
    switch (state) {
      case State::kFieldStart: {
        char c = *begin;
        if (c == '"') {
          state = State::kQuoted;
          quote_line = line_;
          ++position_;
        } else if (c == delimiter) {
          EndField(record);
          ++position_;
        } else if (c == '\n' || c == '\r') {
          EndField(record);
          consume_line_end();
          done = true;
        } else {
          state = State::kUnquoted;
        }
        break;
      }
      case State::kUnquoted: {
        const char* p = begin;
        while (p < end && *p != delimiter && *p != '\n' && *p != '\r' && *p != '"') ++p;
        Append(record, begin, static_cast<size_t>(p - begin));
        position_ += static_cast<size_t>(p - begin);
        if (p == end) break;
        if (*p == '"') {
          Fail(record, CsvError::kBrokenQuote,
               "a quote inside the unquoted field " + std::to_string(record.ends_.size() + 1));
          Append(record, p, 1);
          ++position_;
        } else if (*p == delimiter) {
          EndField(record);
          ++position_;
          state = State::kFieldStart;
        } else {
          EndField(record);
          consume_line_end();
          done = true;
        }
        break;
      }
      case State::kQuoted: {
        const char* p = begin;
        while (p < end && *p != '"') {
          if (*p == '\n') ++line_;
          ++p;
        }
        Append(record, begin, static_cast<size_t>(p - begin));
        position_ += static_cast<size_t>(p - begin);
        if (p < end) {
          ++position_;
          state = State::kQuoteInQuoted;
        }
        break;
      }
      case State::kQuoteInQuoted: {
        char c = *begin;
        if (c == '"') {
          Append(record, begin, 1);
          ++position_;
          state = State::kQuoted;
        } else if (c == delimiter) {
          EndField(record);
          ++position_;
          state = State::kFieldStart;
        } else if (c == '\n' || c == '\r') {
          EndField(record);
          consume_line_end();
          done = true;
        } else {
          Fail(record, CsvError::kBrokenQuote,
               "text after the closing quote of field " + std::to_string(record.ends_.size() + 1));
          state = State::kUnquoted;
        }
        break;
      }
    }
  }

  record.end_offset = buffer_offset_ + position_;
  consumed_offset_ = record.end_offset;
  if (fatal_ == CsvError::kReadError) {
    Fail(record, fatal_, fatal_message_);
    stopped_ = true;
    return true;
  }
  if (expected_fields_ == 0 && options_.header) {
    expected_fields_ = record.size();
  } else if (expected_fields_ != 0 && record.size() != expected_fields_ && !record_full_) {
    Fail(record, CsvError::kRaggedRow,
         "expected " + std::to_string(expected_fields_) + " fields, found " + std::to_string(record.size()));
  }
  return true;
}

}  // namespace clozit::contacts
