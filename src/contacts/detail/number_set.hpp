// contacts::detail: a set of phone numbers held as integers (E.164 digits),
// 8 bytes a number plus slack — the import's "seen in this file" and
// "on a do-not-call list" sets for millions of numbers.
//
// Open addressing with linear probing; grows at 50% load. Zero is not a
// number and cannot be stored. Not thread-safe.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace clozit::contacts::detail {

/// E.164 digits as an integer ("+14155552671" → 14155552671); 0 when not 1–18 digits.
inline uint64_t NumberKey(std::string_view e164) {
  uint64_t key = 0;
  size_t digits = 0;
  for (char c : e164) {
    if (c < '0' || c > '9') continue;
    if (++digits > 18) return 0;
    key = key * 10 + static_cast<uint64_t>(c - '0');
  }
  return key;
}

class NumberSet {
 public:
  /// True when `key` was not there yet.
  bool Insert(uint64_t key) {
    if (key == 0) return false;
    if ((size_ + 1) * 2 > slots_.size()) Grow();
    size_t slot = Find(key);
    if (slots_[slot] == key) return false;
    slots_[slot] = key;
    ++size_;
    return true;
  }
  bool Contains(uint64_t key) const { return key != 0 && !slots_.empty() && slots_[Find(key)] == key; }
  bool Erase(uint64_t key) {
    if (!Contains(key)) return false;
    // Backward-shift deletion keeps every probe chain unbroken.
    size_t mask = slots_.size() - 1;
    size_t hole = Find(key);
    size_t next = (hole + 1) & mask;
    while (slots_[next] != 0) {
      size_t home = Hash(slots_[next]) & mask;
      if (((next - home) & mask) >= ((next - hole) & mask)) {
        slots_[hole] = slots_[next];
        hole = next;
      }
      next = (next + 1) & mask;
    }
    slots_[hole] = 0;
    --size_;
    return true;
  }
  size_t size() const { return size_; }

 private:
  static uint64_t Hash(uint64_t key) {
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    return key;
  }
  size_t Find(uint64_t key) const {
    size_t mask = slots_.size() - 1;
    size_t slot = Hash(key) & mask;
    while (slots_[slot] != 0 && slots_[slot] != key) slot = (slot + 1) & mask;
    return slot;
  }
  void Grow() {
    std::vector<uint64_t> old = std::move(slots_);
    slots_.assign(old.empty() ? 1024 : old.size() * 2, 0);
    size_ = 0;
    for (uint64_t key : old) {
      if (key != 0) Insert(key);
    }
  }

  std::vector<uint64_t> slots_;
  size_t size_ = 0;
};

}  // namespace clozit::contacts::detail
