#include "contacts/csv_reader.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace clozit::contacts {
namespace {

struct Parsed {
  std::vector<std::vector<std::string>> rows;
  std::vector<CsvError> errors;
  std::vector<std::string> messages;
  std::vector<uint64_t> lines;
  char delimiter = 0;
};

Parsed ParseAll(std::string_view text, CsvOptions options = {}, size_t max_chunk = SIZE_MAX) {
  MemorySource source(text, max_chunk);
  CsvReader reader(source, options);
  CsvRecord record;
  Parsed out;
  while (reader.Next(record)) {
    out.rows.push_back(record.Fields());
    out.errors.push_back(record.error);
    out.messages.push_back(record.error_message);
    out.lines.push_back(record.line);
  }
  out.delimiter = reader.delimiter();
  return out;
}

using Rows = std::vector<std::vector<std::string>>;

TEST(CsvReader, ReadsPlainCommaSeparatedRows) {
  auto parsed = ParseAll("name,phone\nAda,+14155552671\nBob,4155550100\n");
  EXPECT_EQ(parsed.delimiter, ',');
  EXPECT_EQ(parsed.rows, (Rows{{"name", "phone"}, {"Ada", "+14155552671"}, {"Bob", "4155550100"}}));
  for (auto error : parsed.errors) EXPECT_EQ(error, CsvError::kNone);
}

TEST(CsvReader, QuotedFieldsKeepDelimitersNewlinesAndDoubledQuotes) {
  auto parsed = ParseAll("a,b,c\r\n\"x, y\",\"line1\r\nline2\",\"say \"\"hi\"\"\"\r\n\"\",,\"\"\"\"\r\n");
  ASSERT_EQ(parsed.rows.size(), 3u);
  EXPECT_EQ(parsed.rows[1], (std::vector<std::string>{"x, y", "line1\r\nline2", "say \"hi\""}));
  EXPECT_EQ(parsed.rows[2], (std::vector<std::string>{"", "", "\""}));
  EXPECT_EQ(parsed.lines, (std::vector<uint64_t>{1, 2, 4}));
  for (auto error : parsed.errors) EXPECT_EQ(error, CsvError::kNone);
}

TEST(CsvReader, StripsUtf8ByteOrderMark) {
  auto parsed = ParseAll("\xEF\xBB\xBFphone;name\n+1 415 555 2671;Zoë\n");
  EXPECT_EQ(parsed.delimiter, ';');
  EXPECT_EQ(parsed.rows, (Rows{{"phone", "name"}, {"+1 415 555 2671", "Zoë"}}));
}

TEST(CsvReader, DetectsDelimiterFromTheHeaderOnly) {
  EXPECT_EQ(ParseAll("a\tb\tc\n1,2\t3\t4\n").delimiter, '\t');
  EXPECT_EQ(ParseAll("a;b;c\n1,2;3;4\n").delimiter, ';');
  // Delimiters inside quotes do not count.
  EXPECT_EQ(ParseAll("\"a;b;c;d\",e,f\n").delimiter, ',');
  EXPECT_EQ(ParseAll("phone\n4155550100\n").delimiter, ',');
}

TEST(CsvReader, HonoursAGivenDelimiter) {
  CsvOptions options;
  options.delimiter = '\t';
  auto parsed = ParseAll("a,b\tc\n1,2\t3\n", options);
  EXPECT_EQ(parsed.rows, (Rows{{"a,b", "c"}, {"1,2", "3"}}));
}

TEST(CsvReader, AcceptsLfCrlfAndLoneCrAndSkipsBlankLines) {
  auto parsed = ParseAll("a,b\n1,2\r\n\r\n3,4\r5,6\n\n7,8");
  EXPECT_EQ(parsed.rows, (Rows{{"a", "b"}, {"1", "2"}, {"3", "4"}, {"5", "6"}, {"7", "8"}}));
  EXPECT_EQ(parsed.lines, (std::vector<uint64_t>{1, 2, 4, 5, 7}));
}

TEST(CsvReader, TrailingDelimiterMakesAnEmptyLastField) {
  auto parsed = ParseAll("a,b,\n1,2,");
  EXPECT_EQ(parsed.rows, (Rows{{"a", "b", ""}, {"1", "2", ""}}));
}

TEST(CsvReader, ReportsRaggedRowsAndCarriesOn) {
  auto parsed = ParseAll("a,b,c\n1,2\n1,2,3\n1,2,3,4\n");
  ASSERT_EQ(parsed.errors.size(), 4u);
  EXPECT_EQ(parsed.errors[1], CsvError::kRaggedRow);
  EXPECT_EQ(parsed.messages[1], "row 2 (line 2): expected 3 fields, found 2");
  EXPECT_EQ(parsed.errors[2], CsvError::kNone);
  EXPECT_EQ(parsed.errors[3], CsvError::kRaggedRow);
}

TEST(CsvReader, ReportsBrokenQuotes) {
  auto parsed = ParseAll("a,b\nab\"c,d\n\"x\"y,z\nok,ok\n");
  ASSERT_EQ(parsed.errors.size(), 4u);
  EXPECT_EQ(parsed.errors[1], CsvError::kBrokenQuote);
  EXPECT_NE(parsed.messages[1].find("quote inside the unquoted field 1"), std::string::npos);
  EXPECT_EQ(parsed.errors[2], CsvError::kBrokenQuote);
  EXPECT_NE(parsed.messages[2].find("after the closing quote of field 1"), std::string::npos);
  EXPECT_EQ(parsed.errors[3], CsvError::kNone);
  EXPECT_EQ(parsed.rows[3], (std::vector<std::string>{"ok", "ok"}));
}

TEST(CsvReader, ReportsAQuoteNeverClosed) {
  auto parsed = ParseAll("a,b\n1,\"open\n2,3\n");
  ASSERT_EQ(parsed.errors.size(), 2u);
  EXPECT_EQ(parsed.errors[1], CsvError::kUnterminatedQuote);
  EXPECT_EQ(parsed.messages[1], "row 2 (line 2): the quoted field 2 opened on line 2 is never closed");
}

TEST(CsvReader, ReportsInvalidUtf8PerField) {
  auto parsed = ParseAll("a,b\nok,\xC3\x28\n\xED\xA0\x80,x\n\xF0\x9F\x98\x80,\xC3\xA9\nover,\xC0\xAF\n");
  ASSERT_EQ(parsed.errors.size(), 5u);
  EXPECT_EQ(parsed.errors[1], CsvError::kInvalidUtf8);
  EXPECT_NE(parsed.messages[1].find("field 2 is not valid UTF-8"), std::string::npos);
  EXPECT_EQ(parsed.errors[2], CsvError::kInvalidUtf8);  // a UTF-16 surrogate
  EXPECT_EQ(parsed.errors[3], CsvError::kNone);         // emoji and é are fine
  EXPECT_EQ(parsed.errors[4], CsvError::kInvalidUtf8);  // overlong '/'
}

TEST(CsvReader, RefusesUtf16Input) {
  std::string utf16("\xFF\xFEp\0h\0o\0n\0e\0\n\0", 14);
  auto parsed = ParseAll(utf16);
  ASSERT_EQ(parsed.errors.size(), 1u);
  EXPECT_EQ(parsed.errors[0], CsvError::kUnsupportedEncoding);
}

TEST(CsvReader, FieldOverTheLimitIsDroppedAndReported) {
  CsvOptions options;
  options.max_field_bytes = 8;
  auto parsed = ParseAll("a,b\n123456789,x\n\"1234\n56789\",y\nshort,z\n", options);
  ASSERT_EQ(parsed.errors.size(), 4u);
  EXPECT_EQ(parsed.errors[1], CsvError::kFieldTooLarge);
  EXPECT_EQ(parsed.rows[1], (std::vector<std::string>{"", "x"}));
  EXPECT_EQ(parsed.errors[2], CsvError::kFieldTooLarge);
  EXPECT_EQ(parsed.errors[3], CsvError::kNone);
  EXPECT_EQ(parsed.lines[3], 5u);
}

TEST(CsvReader, TooManyFieldsIsBounded) {
  CsvOptions options;
  options.max_fields = 4;
  options.header = false;
  auto parsed = ParseAll(std::string(100000, ',') + "\nnext\n", options);
  ASSERT_EQ(parsed.errors.size(), 2u);
  EXPECT_EQ(parsed.errors[0], CsvError::kRecordTooLarge);
  EXPECT_EQ(parsed.rows[0].size(), 4u);
  EXPECT_EQ(parsed.rows[1], (std::vector<std::string>{"next"}));
}

TEST(CsvReader, SameResultWhateverTheChunking) {
  std::string text = "\xEF\xBB\xBFname;phone;note\r\n\"A;b\";\"1\r\n2\";\"q\"\"q\"\r\nc;d;e\r\nx;\"y\";z";
  auto whole = ParseAll(text);
  for (size_t chunk : {1, 2, 3, 5, 7}) {
    CsvOptions options;
    options.chunk_bytes = 16;
    auto parsed = ParseAll(text, options, chunk);
    EXPECT_EQ(parsed.rows, whole.rows) << "chunk " << chunk;
    EXPECT_EQ(parsed.lines, whole.lines) << "chunk " << chunk;
    EXPECT_EQ(parsed.delimiter, ';');
  }
}

TEST(CsvReader, OffsetsAllowResumingMidFile) {
  std::string text = "phone,name\n+14155550100,\"A\nB\"\n+14155550101,C\n+14155550102,D\n";
  MemorySource source(text);
  CsvReader reader(source);
  CsvRecord record;
  ASSERT_TRUE(reader.Next(record));
  ASSERT_TRUE(reader.Next(record));
  EXPECT_EQ(record.begin_offset, 11u);
  uint64_t offset = record.end_offset;
  EXPECT_EQ(text.substr(offset, 13), "+14155550101,");

  CsvOptions resume;
  resume.start_offset = offset;
  resume.start_row = reader.rows_read();
  resume.start_line = reader.line();
  resume.delimiter = reader.delimiter();
  resume.expected_fields = reader.expected_fields();
  MemorySource rest(std::string_view(text).substr(offset));
  CsvReader resumed(rest, resume);
  ASSERT_TRUE(resumed.Next(record));
  EXPECT_EQ(record.row, 3u);
  EXPECT_EQ(record.line, 4u);
  EXPECT_EQ(record.Fields(), (std::vector<std::string>{"+14155550101", "C"}));
  EXPECT_EQ(record.begin_offset, offset);
  ASSERT_TRUE(resumed.Next(record));
  ASSERT_FALSE(resumed.Next(record));
  EXPECT_EQ(resumed.bytes_consumed(), text.size());
}

// A source that produces a 100 MB quoted field without ever holding it.
class HugeFieldSource final : public ByteSource {
 public:
  explicit HugeFieldSource(size_t field_bytes) : remaining_(field_bytes) {}
  Result<size_t> Read(char* buffer, size_t capacity) override {
    size_t written = 0;
    auto put = [&](std::string_view text) {
      while (written < capacity && pending_ < text.size()) buffer[written++] = text[pending_++];
      if (pending_ == text.size()) {
        pending_ = 0;
        ++stage_;
      }
    };
    while (written < capacity) {
      if (stage_ == 0) {
        put("phone,note\n+14155550100,\"");
      } else if (stage_ == 1) {
        size_t n = std::min(capacity - written, remaining_);
        std::memset(buffer + written, 'x', n);
        written += n;
        remaining_ -= n;
        if (remaining_ == 0) ++stage_;
      } else if (stage_ == 2) {
        put("\"\n+14155550101,after\n");
      } else {
        break;
      }
    }
    return written;
  }

 private:
  size_t remaining_;
  size_t pending_ = 0;
  int stage_ = 0;
};

TEST(CsvReader, HundredMegabyteFieldStreamsInBoundedMemory) {
  HugeFieldSource source(size_t{100} << 20);
  CsvReader reader(source);
  CsvRecord record;
  ASSERT_TRUE(reader.Next(record));
  ASSERT_TRUE(reader.Next(record));
  EXPECT_EQ(record.error, CsvError::kFieldTooLarge);
  EXPECT_EQ(record.size(), 2u);
  EXPECT_EQ(record.field(0), "+14155550100");
  EXPECT_TRUE(record.field(1).empty());
  ASSERT_TRUE(reader.Next(record));
  EXPECT_TRUE(record.ok());
  EXPECT_EQ(record.Fields(), (std::vector<std::string>{"+14155550101", "after"}));
  EXPECT_FALSE(reader.Next(record));
}

TEST(CsvReader, BinaryGarbageNeverCrashesAndEveryRecordIsBounded) {
  std::mt19937_64 random(42);
  for (int round = 0; round < 200; ++round) {
    std::string garbage(static_cast<size_t>(random() % 20000), '\0');
    for (auto& c : garbage) {
      // Bias towards the characters the parser cares about.
      uint64_t pick = random() % 16;
      c = pick == 0 ? '"' : pick == 1 ? ',' : pick == 2 ? '\n' : pick == 3 ? '\r' : static_cast<char>(random());
    }
    CsvOptions options;
    options.max_field_bytes = 64;
    options.max_record_bytes = 512;
    options.max_fields = 16;
    MemorySource source(garbage, 1 + random() % 4096);
    CsvReader reader(source, options);
    CsvRecord record;
    uint64_t rows = 0;
    while (reader.Next(record)) {
      ++rows;
      ASSERT_LE(record.size(), options.max_fields);
      for (size_t i = 0; i < record.size(); ++i) ASSERT_LE(record.field(i).size(), options.max_field_bytes);
      ASSERT_EQ(record.row, rows);
      ASSERT_LE(record.end_offset, garbage.size());
      ASSERT_EQ(record.ok(), record.error_message.empty());
    }
    EXPECT_EQ(reader.bytes_consumed(), garbage.size());
  }
}

TEST(CsvReader, ReadsFromAnIstream) {
  std::istringstream in("phone\n+14155550100\n");
  IstreamSource source(in);
  CsvReader reader(source);
  CsvRecord record;
  ASSERT_TRUE(reader.Next(record));
  ASSERT_TRUE(reader.Next(record));
  EXPECT_EQ(record.field(0), "+14155550100");
  EXPECT_FALSE(reader.Next(record));
}

class FailingSource final : public ByteSource {
 public:
  Result<size_t> Read(char* buffer, size_t capacity) override {
    if (calls_++ == 0) {
      std::string_view text = "a,b\n1,";
      size_t n = std::min(capacity, text.size());
      std::memcpy(buffer, text.data(), n);
      return n;
    }
    return Error::Make(ErrorCode::kUnavailable, "disk gone");
  }

 private:
  int calls_ = 0;
};

TEST(CsvReader, ReadErrorEndsWithAnErrorRecord) {
  FailingSource source;
  CsvReader reader(source);
  CsvRecord record;
  ASSERT_TRUE(reader.Next(record));
  ASSERT_TRUE(reader.Next(record));
  EXPECT_EQ(record.error, CsvError::kReadError);
  EXPECT_FALSE(reader.Next(record));
}

TEST(Utf8, ValidatesTheTrickyCases) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii that is longer than eight bytes"));
  EXPECT_TRUE(IsValidUtf8("\xE2\x82\xAC \xF4\x8F\xBF\xBF"));  // € and U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));              // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xE0\x80\xAF"));                  // overlong
  EXPECT_FALSE(IsValidUtf8("abc\xE2\x82"));                   // truncated
  EXPECT_FALSE(IsValidUtf8("\x80"));
  EXPECT_FALSE(IsValidUtf8("\xFF"));
}

}  // namespace
}  // namespace clozit::contacts
