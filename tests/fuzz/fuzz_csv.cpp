// libFuzzer target for the contacts CSV reader (untrusted uploads).
//
// The first byte picks the options (delimiter given or detected, header or
// not, tiny limits so the size checks are reached, the chunk size the source
// hands out); the rest is the file. Besides memory errors (ASan) and undefined
// behaviour (UBSan), it checks the reader's promises: every record is bounded
// by the limits, row numbers count up by one, offsets never run past the input
// and end where the input ends, an error always comes with a message, and the
// result does not depend on how the input is chunked.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "contacts/csv_reader.hpp"

namespace {

using clozit::contacts::CsvOptions;
using clozit::contacts::CsvReader;
using clozit::contacts::CsvRecord;
using clozit::contacts::MemorySource;

void CheckAt(bool condition, const char* what, int line) {
  if (condition) return;
  std::fprintf(stderr, "fuzz_csv.cpp:%d: check failed: %s\n", line, what);
  std::abort();
}
#define Check(condition) CheckAt((condition), #condition, __LINE__)

struct Summary {
  std::vector<std::vector<std::string>> rows;
  std::vector<int> errors;
  uint64_t consumed = 0;
};

Summary Run(std::string_view input, const CsvOptions& options, size_t chunk) {
  MemorySource source(input, chunk);
  CsvReader reader(source, options);
  CsvRecord record;
  Summary summary;
  uint64_t previous_end = 0;
  while (reader.Next(record)) {
    Check(record.row == summary.rows.size() + 1);
    Check(record.size() <= options.max_fields);
    size_t total = 0;
    for (size_t i = 0; i < record.size(); ++i) {
      Check(record.field(i).size() <= options.max_field_bytes);
      total += record.field(i).size();
    }
    Check(total <= options.max_record_bytes);
    Check(record.ok() == record.error_message.empty());
    Check(record.begin_offset >= previous_end && record.begin_offset <= record.end_offset);
    Check(record.end_offset <= input.size());
    if (record.ok() && record.size() > 0) Check(clozit::IsValidUtf8(std::string(record.field(0))));
    previous_end = record.end_offset;
    summary.rows.push_back(record.Fields());
    summary.errors.push_back(static_cast<int>(record.error));
  }
  Check(reader.bytes_consumed() <= input.size());
  summary.consumed = reader.bytes_consumed();
  return summary;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  uint8_t flags = data[0];
  std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  CsvOptions options;
  static constexpr char kDelimiters[] = {'\0', ',', ';', '\t'};
  options.delimiter = kDelimiters[flags & 3];
  options.header = (flags & 4) == 0;
  options.max_field_bytes = (flags & 8) ? 16 : 256;
  options.max_record_bytes = (flags & 16) ? 64 : 4096;
  options.max_fields = (flags & 32) ? 3 : 64;
  options.chunk_bytes = 16;
  size_t chunk = (flags & 64) ? 1 : 7;

  Summary small_chunks = Run(input, options, chunk);
  options.chunk_bytes = 1 << 16;
  Summary whole = Run(input, options, SIZE_MAX);
  Check(small_chunks.rows == whole.rows);
  Check(small_chunks.errors == whole.errors);
  Check(small_chunks.consumed == whole.consumed);
  return 0;
}
