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
  used_ = true;
  return Track(DoQuery(sql, params));
}

Result<int64_t> TxBase::Exec(std::string_view sql, const Params& params) {
  if (auto refusal = Refuse(params)) return Track(Result<int64_t>(*refusal));
  used_ = true;
  return Track(DoExec(sql, params));
}

Error UnexpectedChanges(std::string_view sql, int64_t changed, int64_t expected) {
  return Error::Internal("statement changed " + std::to_string(changed) + " rows, not " + std::to_string(expected) +
                         ": " + std::string(sql.substr(0, 80)));
}

Result<void> TxBase::ExecLater(std::string_view sql, const Params& params, int64_t expected_changes) {
  if (auto refusal = Refuse(params)) return Track(Result<void>(*refusal));
  used_ = true;
  return Track(DoExecLater(sql, params, expected_changes));
}

Result<void> TxBase::Finish() {
  if (auto refusal = Refuse({})) return Track(Result<void>(*refusal));
  return Track(DoFinish());
}

Result<void> TxBase::DoExecLater(std::string_view sql, const Params& params, int64_t expected_changes) {
  CLOZIT_ASSIGN_OR_RETURN(int64_t changed, DoExec(sql, params));
  if (changed != expected_changes) return UnexpectedChanges(sql, changed, expected_changes);
  return Ok();
}

void Additions::AddTo(Sum& sum, const std::vector<int64_t>& deltas) {
  if (sum.deltas.size() != deltas.size()) {
    sum.overflowed = true;  // one (sql, key) always carries as many deltas; anything else is a caller's bug
    return;
  }
  for (size_t index = 0; index < deltas.size(); ++index) {
    if (__builtin_add_overflow(sum.deltas[index], deltas[index], &sum.deltas[index])) sum.overflowed = true;
  }
}

void Additions::Add(std::string_view sql, const std::string& key, const std::vector<int64_t>& deltas,
                    Tx::AdditionParams params) {
  auto [found, inserted] = sums_.try_emplace({sql, key});
  if (inserted) {
    found->second.deltas.assign(deltas.size(), 0);
    found->second.params = params;
  }
  AddTo(found->second, deltas);
}

void Additions::Merge(Additions other) {
  // Moves the nodes over: a batch merges every write's additions, mostly rows it has not seen yet.
  while (!other.sums_.empty()) {
    auto node = other.sums_.extract(other.sums_.begin());
    auto found = sums_.find(node.key());
    if (found == sums_.end()) {
      sums_.insert(std::move(node));
      continue;
    }
    AddTo(found->second, node.mapped().deltas);
    found->second.overflowed = found->second.overflowed || node.mapped().overflowed;
  }
}

Result<std::vector<std::pair<std::string_view, Params>>> Additions::Statements() const {
  std::vector<std::pair<std::string_view, Params>> statements;
  statements.reserve(sums_.size());
  for (const auto& [row, sum] : sums_) {
    if (sum.overflowed) return Error::InvalidArgument("", "additions to " + row.second + " overflow");
    statements.emplace_back(row.first, sum.params(row.second, sum.deltas));
  }
  return statements;
}

Result<void> TxBase::AddLater(std::string_view sql, const std::string& key, const std::vector<int64_t>& deltas,
                              AdditionParams params) {
  if (careful()) return ExecLater(sql, params(key, deltas), 1);
  if (auto refusal = Refuse({})) return Track(Result<void>(*refusal));
  // Not `used_`: until the batch sums it, dropping this Tx undoes it.
  additions_.Add(sql, key, deltas, params);
  return Ok();
}

Result<void> TxBase::ExecScript(std::string_view sql) {
  if (auto refusal = Refuse({})) return Track(Result<void>(*refusal));
  used_ = true;
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
