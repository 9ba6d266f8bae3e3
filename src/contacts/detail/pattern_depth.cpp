#include "contacts/detail/pattern_depth.hpp"

#include <algorithm>
#include <cstdint>

namespace clozit::contacts::detail {

struct PatternNode {
  enum class Kind { kEmpty, kSet, kSeq, kAlt, kRepeat };
  Kind kind = Kind::kEmpty;
  uint16_t digits = 0;  // kSet: bit d set when digit d matches
  std::vector<PatternPtr> children;
  int min = 0;
  int max = 0;  // kRepeat: -1 is unbounded
};

namespace {

using Kind = PatternNode::Kind;
constexpr uint16_t kAllDigits = 0x3ff;

// A null PatternPtr is the empty language: nothing matches.
PatternPtr Empty() {
  static const PatternPtr empty = std::make_shared<PatternNode>();
  return empty;
}

PatternPtr Set(uint16_t digits) {
  if (digits == 0) return nullptr;
  auto node = std::make_shared<PatternNode>();
  node->kind = Kind::kSet;
  node->digits = digits;
  return node;
}

PatternPtr Seq(std::vector<PatternPtr> items) {
  std::vector<PatternPtr> kept;
  for (auto& item : items) {
    if (!item) return nullptr;
    if (item->kind == Kind::kEmpty) continue;
    if (item->kind == Kind::kSeq) {
      kept.insert(kept.end(), item->children.begin(), item->children.end());
    } else {
      kept.push_back(std::move(item));
    }
  }
  if (kept.empty()) return Empty();
  if (kept.size() == 1) return kept.front();
  auto node = std::make_shared<PatternNode>();
  node->kind = Kind::kSeq;
  node->children = std::move(kept);
  return node;
}

PatternPtr Alt(std::vector<PatternPtr> branches) {
  std::vector<PatternPtr> kept;
  for (auto& branch : branches) {
    if (!branch) continue;
    if (branch->kind == Kind::kAlt) {
      kept.insert(kept.end(), branch->children.begin(), branch->children.end());
    } else {
      kept.push_back(std::move(branch));
    }
  }
  if (kept.empty()) return nullptr;
  if (kept.size() == 1) return kept.front();
  auto node = std::make_shared<PatternNode>();
  node->kind = Kind::kAlt;
  node->children = std::move(kept);
  return node;
}

PatternPtr Repeat(PatternPtr item, int min, int max) {
  if (max == 0) return Empty();
  if (!item) return min == 0 ? Empty() : nullptr;
  if (item->kind == Kind::kEmpty) return Empty();
  if (min == 1 && max == 1) return item;
  auto node = std::make_shared<PatternNode>();
  node->kind = Kind::kRepeat;
  node->children = {std::move(item)};
  node->min = min;
  node->max = max;
  return node;
}

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  std::optional<PatternPtr> Parse() {
    auto result = ParseAlt();
    if (!ok_ || position_ != text_.size()) return std::nullopt;
    return result;
  }

 private:
  bool AtEnd() const { return position_ >= text_.size(); }
  char Peek() const { return AtEnd() ? '\0' : text_[position_]; }
  bool Take(char c) {
    if (Peek() != c || AtEnd()) return false;
    ++position_;
    return true;
  }
  PatternPtr Fail() {
    ok_ = false;
    return nullptr;
  }

  PatternPtr ParseAlt() {
    std::vector<PatternPtr> branches{ParseSeq()};
    while (ok_ && Take('|')) branches.push_back(ParseSeq());
    if (!ok_) return nullptr;
    // An explicit alternation of parsable branches never yields "nothing".
    return Alt(std::move(branches));
  }

  PatternPtr ParseSeq() {
    std::vector<PatternPtr> items;
    while (ok_ && !AtEnd() && Peek() != '|' && Peek() != ')') {
      PatternPtr atom = ParseAtom();
      if (!ok_) return nullptr;
      for (;;) {
        int min = 0, max = 0;
        if (Take('?')) {
          min = 0, max = 1;
        } else if (Take('*')) {
          min = 0, max = -1;
        } else if (Take('+')) {
          min = 1, max = -1;
        } else if (Peek() == '{') {
          ++position_;
          if (!ParseNumber(min)) return Fail();
          max = min;
          if (Take(',')) {
            max = -1;
            if (Peek() != '}' && !ParseNumber(max)) return Fail();
          }
          if (!Take('}') || (max >= 0 && max < min)) return Fail();
        } else {
          break;
        }
        atom = Repeat(atom, min, max);
      }
      items.push_back(atom);
    }
    return Seq(std::move(items));
  }

  bool ParseNumber(int& out) {
    size_t start = position_;
    out = 0;
    while (!AtEnd() && Peek() >= '0' && Peek() <= '9' && position_ - start < 4)
      out = out * 10 + (text_[position_++] - '0');
    return position_ > start;
  }

  PatternPtr ParseAtom() {
    char c = Peek();
    if (c >= '0' && c <= '9') {
      ++position_;
      return Set(static_cast<uint16_t>(1u << (c - '0')));
    }
    if (Take('\\')) {
      if (!Take('d')) return Fail();
      return Set(kAllDigits);
    }
    if (Take('(')) {
      if (Take('?') && !Take(':')) return Fail();
      PatternPtr inner = ParseAlt();
      if (!ok_ || !Take(')')) return Fail();
      return inner;
    }
    if (Take('[')) {
      uint16_t digits = 0;
      while (!AtEnd() && Peek() != ']') {
        if (Take('\\')) {
          if (!Take('d')) return Fail();
          digits |= kAllDigits;
          continue;
        }
        char low = Peek();
        if (low < '0' || low > '9') return Fail();
        ++position_;
        char high = low;
        if (Peek() == '-' && position_ + 1 < text_.size() && text_[position_ + 1] != ']') {
          ++position_;
          high = Peek();
          if (high < low || high > '9') return Fail();
          ++position_;
        }
        for (char d = low; d <= high; ++d) digits |= static_cast<uint16_t>(1u << (d - '0'));
      }
      if (!Take(']') || digits == 0) return Fail();
      return Set(digits);
    }
    return Fail();
  }

  std::string_view text_;
  size_t position_ = 0;
  bool ok_ = true;
};

bool Nullable(const PatternPtr& node) {
  if (!node) return false;
  switch (node->kind) {
    case Kind::kEmpty:
      return true;
    case Kind::kSet:
      return false;
    case Kind::kSeq:
      return std::all_of(node->children.begin(), node->children.end(), Nullable);
    case Kind::kAlt:
      return std::any_of(node->children.begin(), node->children.end(), Nullable);
    case Kind::kRepeat:
      return node->min == 0 || Nullable(node->children.front());
  }
  return false;
}

PatternPtr DeriveOne(const PatternPtr& node, int digit) {
  if (!node) return nullptr;
  switch (node->kind) {
    case Kind::kEmpty:
      return nullptr;
    case Kind::kSet:
      return (node->digits >> digit) & 1 ? Empty() : nullptr;
    case Kind::kAlt: {
      std::vector<PatternPtr> branches;
      for (const auto& child : node->children) branches.push_back(DeriveOne(child, digit));
      return Alt(std::move(branches));
    }
    case Kind::kSeq: {
      const auto& first = node->children.front();
      std::vector<PatternPtr> rest(node->children.begin() + 1, node->children.end());
      PatternPtr through_first = Seq([&] {
        std::vector<PatternPtr> items{DeriveOne(first, digit)};
        items.insert(items.end(), rest.begin(), rest.end());
        return items;
      }());
      PatternPtr skipping_first = Nullable(first) ? DeriveOne(Seq(rest), digit) : nullptr;
      return Alt({through_first, skipping_first});
    }
    case Kind::kRepeat: {
      const auto& item = node->children.front();
      int max = node->max < 0 ? -1 : node->max - 1;
      return Seq({DeriveOne(item, digit), Repeat(item, std::max(node->min - 1, 0), max)});
    }
  }
  return nullptr;
}

int Saturate(int64_t value) { return static_cast<int>(std::min<int64_t>(value, kUnboundedDepth)); }

int MaxLength(const PatternPtr& node) {
  if (!node) return 0;
  switch (node->kind) {
    case Kind::kEmpty:
      return 0;
    case Kind::kSet:
      return 1;
    case Kind::kSeq: {
      int64_t total = 0;
      for (const auto& child : node->children) total += MaxLength(child);
      return Saturate(total);
    }
    case Kind::kAlt: {
      int longest = 0;
      for (const auto& child : node->children) longest = std::max(longest, MaxLength(child));
      return longest;
    }
    case Kind::kRepeat: {
      int item = MaxLength(node->children.front());
      if (item == 0) return 0;
      if (node->max < 0) return kUnboundedDepth;
      return Saturate(int64_t{item} * node->max);
    }
  }
  return 0;
}

}  // namespace

std::optional<PatternPtr> ParsePattern(std::string_view pattern, bool prefix_match) {
  auto parsed = Parser(pattern).Parse();
  if (!parsed) return std::nullopt;
  if (prefix_match) return Seq({*parsed, Repeat(Set(kAllDigits), 0, -1)});
  return parsed;
}

PatternPtr Derive(const PatternPtr& pattern, std::string_view digits) {
  PatternPtr current = pattern;
  for (char c : digits) {
    if (!current) return nullptr;
    if (c < '0' || c > '9') return nullptr;
    current = DeriveOne(current, c - '0');
  }
  return current;
}

int ConstrainedDepth(const PatternPtr& node) {
  if (!node) return 0;
  switch (node->kind) {
    case Kind::kEmpty:
      return 0;
    case Kind::kSet:
      return node->digits == kAllDigits ? 0 : 1;
    case Kind::kSeq: {
      int64_t deepest = 0;
      int64_t offset = 0;
      for (const auto& child : node->children) {
        int depth = ConstrainedDepth(child);
        if (depth > 0) deepest = std::max(deepest, offset + depth);
        offset = std::min<int64_t>(offset + MaxLength(child), kUnboundedDepth);
      }
      return Saturate(deepest);
    }
    case Kind::kAlt: {
      int deepest = 0;
      for (const auto& child : node->children) deepest = std::max(deepest, ConstrainedDepth(child));
      return deepest;
    }
    case Kind::kRepeat: {
      const auto& item = node->children.front();
      int depth = ConstrainedDepth(item);
      if (depth == 0) return 0;
      if (node->max < 0) return kUnboundedDepth;
      return Saturate(int64_t{node->max - 1} * MaxLength(item) + depth);
    }
  }
  return 0;
}

void PrefixDepth::Add(std::string_view pattern, bool prefix_match) {
  if (pattern.empty()) return;
  auto parsed = ParsePattern(pattern, prefix_match);
  if (!parsed) {
    supported_ = false;
    return;
  }
  if (*parsed) patterns_.push_back(*parsed);
}

std::optional<int> PrefixDepth::Depth(std::string_view national_number, size_t lookahead) const {
  if (!supported_) return std::nullopt;
  size_t known = std::min(lookahead, national_number.size());
  std::string_view prefix = national_number.substr(0, known);
  int64_t depth = static_cast<int64_t>(known);
  for (const auto& pattern : patterns_) {
    PatternPtr rest = Derive(pattern, prefix);
    if (!rest) continue;
    depth = std::max<int64_t>(depth, static_cast<int64_t>(known) + ConstrainedDepth(rest));
  }
  return Saturate(depth);
}

}  // namespace clozit::contacts::detail
