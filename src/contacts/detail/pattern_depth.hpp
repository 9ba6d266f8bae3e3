// contacts::detail: how many leading digits of a national number the
// libphonenumber metadata patterns can look at.
//
// libphonenumber decides validity, number type and region by matching the
// national significant number against regular expressions (the metadata of
// every region sharing a country calling code). Those patterns have the shape
// "constrained prefix, then any digits", e.g. `415[2-9]\d{6}`. If no pattern
// constrains a digit past position D, then every number of the same length
// that shares the first D digits gets the same answer — which lets the
// normaliser cache the (slow, ~20 µs) answer per prefix instead of per number,
// exactly.
//
// PrefixDepth parses the pattern dialect the metadata uses (digits, `\d`,
// classes, `(?:…)`, `|`, `?`, `*`, `+`, `{n}`, `{n,m}`), takes the regular-
// expression derivative by the number's first digits (so Barbados' deep
// `246521[0369]…` does not deepen Californian keys), and returns the largest
// position any surviving pattern still constrains. An unsupported construct
// makes the answer "unknown" and callers stop caching. Thread-safe after
// construction (immutable).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace clozit::contacts::detail {

struct PatternNode;
using PatternPtr = std::shared_ptr<const PatternNode>;

/// Parses one pattern; nullopt for anything outside the supported dialect.
/// `prefix_match` appends `\d*` (libphonenumber's leading-digits patterns match a prefix).
std::optional<PatternPtr> ParsePattern(std::string_view pattern, bool prefix_match = false);

/// The derivative of `pattern` by `digits`: what must follow them. Null when nothing can.
PatternPtr Derive(const PatternPtr& pattern, std::string_view digits);

/// The largest end position of a digit-constraining atom over every match
/// path (0 when only `\d` remain); a large number when unbounded.
int ConstrainedDepth(const PatternPtr& pattern);

constexpr int kUnboundedDepth = 1 << 20;

/// All the patterns of one country calling code.
class PrefixDepth {
 public:
  /// `patterns` as in the metadata; `prefix_match` for leading-digits patterns.
  void Add(std::string_view pattern, bool prefix_match);
  bool supported() const { return supported_; }
  /// Digits of `national_number` (a national significant number) that decide
  /// every pattern, looking `lookahead` digits in before measuring; nullopt
  /// when a pattern could not be parsed.
  std::optional<int> Depth(std::string_view national_number, size_t lookahead = 3) const;

 private:
  std::vector<PatternPtr> patterns_;
  bool supported_ = true;
};

}  // namespace clozit::contacts::detail
