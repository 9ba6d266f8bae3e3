// Sortable, typed identifiers.
//
// Ids are ULIDs (48-bit millisecond time + 80 random bits, Crockford base32)
// behind a short type prefix, e.g. "ten_01JDZ3...". They sort by creation
// time, which keeps cursor pagination and B-tree inserts cheap, and the
// prefix makes a tenant id impossible to pass where a user id is expected.
#pragma once

#include <string>
#include <string_view>

#include "common/clock.hpp"

namespace clozit {

/// A bare 26-character ULID at the clock's current millisecond.
std::string NewUlid(const Clock& clock, Random& random);
bool IsUlid(std::string_view text);

template <typename Tag>
class TypedId {
 public:
  TypedId() = default;
  explicit TypedId(std::string value) : value_(std::move(value)) {}
  static TypedId New(const Clock& clock, Random& random) {
    return TypedId(std::string(Tag::kPrefix) + "_" + NewUlid(clock, random));
  }
  /// True when `text` has this type's prefix and a well-formed ULID.
  static bool Valid(std::string_view text) {
    constexpr std::string_view prefix = Tag::kPrefix;
    return text.size() == prefix.size() + 1 + 26 && text.substr(0, prefix.size()) == prefix &&
           text[prefix.size()] == '_' && IsUlid(text.substr(prefix.size() + 1));
  }
  const std::string& str() const { return value_; }
  bool empty() const { return value_.empty(); }
  friend bool operator==(const TypedId&, const TypedId&) = default;
  friend auto operator<=>(const TypedId&, const TypedId&) = default;

 private:
  std::string value_;
};

// clang-format off
struct TenantTag { static constexpr const char* kPrefix = "ten"; };
struct UserTag { static constexpr const char* kPrefix = "usr"; };
struct ApiKeyTag { static constexpr const char* kPrefix = "key"; };
struct SessionTag { static constexpr const char* kPrefix = "ses"; };
struct InvitationTag { static constexpr const char* kPrefix = "inv"; };
struct OperatorTag { static constexpr const char* kPrefix = "opr"; };
struct AuditTag { static constexpr const char* kPrefix = "aud"; };
struct RequestTag { static constexpr const char* kPrefix = "req"; };
// clang-format on

using TenantId = TypedId<TenantTag>;
using UserId = TypedId<UserTag>;
using ApiKeyId = TypedId<ApiKeyTag>;
using InvitationId = TypedId<InvitationTag>;
using OperatorId = TypedId<OperatorTag>;

}  // namespace clozit
