#include "storage/detail/tx_base.hpp"

#include <cstring>
#include <string>

namespace clozit::storage::detail {

std::optional<Error> TxBase::Refuse(const Params& params) const {
  if (first_error_) {
    return Error::Internal("transaction aborted by an earlier failed statement: " + first_error_->message);
  }
  for (size_t index = 0; index < params.size(); ++index) {
    const auto* text = std::get_if<std::string>(&params[index]);
    // PostgreSQL text cannot hold NUL; refusing it on SQLite too keeps the backends alike.
    if (text != nullptr && std::memchr(text->data(), '\0', text->size()) != nullptr) {
      return Error::InvalidArgument("", "text parameter $" + std::to_string(index + 1) + " contains a NUL byte");
    }
  }
  return std::nullopt;
}

template <typename T>
T TxBase::Track(T result) {
  if (!result.ok() && !first_error_) first_error_ = result.error();
  return result;
}

Result<Rows> TxBase::Query(std::string_view sql, const Params& params) {
  if (auto refusal = Refuse(params)) return Track(Result<Rows>(*refusal));
  return Track(DoQuery(sql, params));
}

Result<int64_t> TxBase::Exec(std::string_view sql, const Params& params) {
  if (auto refusal = Refuse(params)) return Track(Result<int64_t>(*refusal));
  return Track(DoExec(sql, params));
}

Result<void> TxBase::ExecScript(std::string_view sql) {
  if (auto refusal = Refuse({})) return Track(Result<void>(*refusal));
  return Track(DoExecScript(sql));
}

Error TxBase::AbortedError() const {
  return Error::Internal("work returned success after a failed statement; rolled back: " +
                         (first_error_ ? first_error_->message : std::string("unknown error")));
}

namespace {
thread_local const Database* current_database = nullptr;
}  // namespace

WorkScope::WorkScope(const Database* database) : previous_(current_database) { current_database = database; }

WorkScope::~WorkScope() { current_database = previous_; }

bool WorkScope::Inside(const Database* database) { return current_database == database; }

Error WorkScope::NestedCallError() {
  return Error::Internal("Database::Write or Read called from inside a work function of the same database; use its Tx");
}

}  // namespace clozit::storage::detail
