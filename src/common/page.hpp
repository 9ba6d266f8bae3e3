// Cursor pagination shared by every list endpoint: items are ordered by id
// (ULIDs, so newest first means id descending) and the cursor is the last id
// returned. Stable under inserts, O(log n) per page.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace clozit {

struct PageRequest {
  int64_t limit = 50;  // 1..200
  std::string cursor;  // empty: first page
  static constexpr int64_t kMaxLimit = 200;
  // Ids, or base64url where a cursor holds more than an id (statements).
  static constexpr size_t kMaxCursorLength = 512;
};

template <typename T>
struct Page {
  std::vector<T> items;
  std::string next_cursor;  // empty on the last page
};

}  // namespace clozit
