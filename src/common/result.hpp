// Result<T> and Error: how expected failures cross module boundaries.
//
// Every error carries a stable machine code (ErrorCode, rendered by CodeName)
// that the API maps to an HTTP status and a problem+json `code`, a human
// message, and, for input errors, the name of the offending field.
// Result is a value type; it is not thread-safe beyond what its T is.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace clozit {

enum class ErrorCode {
  kInvalidArgument,      // input failed validation; `field` names it
  kNotFound,             // no such resource visible to the caller
  kAlreadyExists,        // a unique key is taken (storage unique violation)
  kConflict,             // state does not allow the operation (e.g. request in flight)
  kUnauthenticated,      // no or bad credentials
  kPermissionDenied,     // authenticated but not allowed
  kRateLimited,          // too many requests; retry later
  kPayloadTooLarge,      // body over the limit
  kMethodNotAllowed,     // the path exists, not with this method
  kIdempotencyMismatch,  // same Idempotency-Key, different request
  kInsufficientCredits,  // balance does not cover the operation
  kUnavailable,          // dependency down (database, provider)
  kInternal,             // broken invariant; a bug
};

/// The stable snake_case code, e.g. "invalid_argument". Never changes once published.
std::string_view CodeName(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
  std::string field;  // empty unless an input field is at fault

  static Error InvalidArgument(std::string field, std::string message) {
    return {ErrorCode::kInvalidArgument, std::move(message), std::move(field)};
  }
  static Error NotFound(std::string message) { return {ErrorCode::kNotFound, std::move(message), {}}; }
  static Error Internal(std::string message) { return {ErrorCode::kInternal, std::move(message), {}}; }
  static Error Make(ErrorCode code, std::string message, std::string field = {}) {
    return {code, std::move(message), std::move(field)};
  }
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : state_(std::in_place_index<1>, std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok() && "Result::value() on an error");
    return std::get<0>(state_);
  }
  const T& value() const& {
    assert(ok() && "Result::value() on an error");
    return std::get<0>(state_);
  }
  T&& value() && {
    assert(ok() && "Result::value() on an error");
    return std::get<0>(std::move(state_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const {
    assert(!ok() && "Result::error() on a value");
    return std::get<1>(state_);
  }

 private:
  std::variant<T, Error> state_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT(google-explicit-constructor)
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const {
    assert(!ok_ && "Result<void>::error() on success");
    return error_;
  }

 private:
  Error error_;
  bool ok_ = true;
};

inline Result<void> Ok() { return {}; }

}  // namespace clozit

// Propagates an error out of a function returning Result<...>.
#define CLOZIT_TRY(expr)                                        \
  do {                                                          \
    auto&& clozit_try_result_ = (expr);                         \
    if (!clozit_try_result_) return clozit_try_result_.error(); \
  } while (false)

#define CLOZIT_CONCAT_INNER(a, b) a##b
#define CLOZIT_CONCAT(a, b) CLOZIT_CONCAT_INNER(a, b)
// Declares `lhs` from the value of a Result expression or returns its error.
#define CLOZIT_ASSIGN_OR_RETURN(lhs, expr)                                                              \
  auto CLOZIT_CONCAT(clozit_result_, __LINE__) = (expr);                                                \
  if (!CLOZIT_CONCAT(clozit_result_, __LINE__)) return CLOZIT_CONCAT(clozit_result_, __LINE__).error(); \
  lhs = std::move(CLOZIT_CONCAT(clozit_result_, __LINE__)).value()
