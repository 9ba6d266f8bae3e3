#include "storage/database.hpp"

#include <cassert>
#include <charconv>
#include <string>

#include "storage/postgres/postgres_database.hpp"
#include "storage/sqlite/sqlite_database.hpp"

namespace clozit::storage {
namespace {

const Value* At(const std::vector<Value>& values, size_t column) {
  assert(column < values.size() && "Row column index out of range");
  return column < values.size() ? &values[column] : nullptr;
}

std::optional<int64_t> ParseInt(std::string_view text) {
  int64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

bool StartsWith(std::string_view text, std::string_view prefix) { return text.substr(0, prefix.size()) == prefix; }

}  // namespace

bool Row::IsNull(size_t column) const {
  const Value* value = At(values_, column);
  return value == nullptr || std::holds_alternative<std::nullptr_t>(*value);
}

int64_t Row::Int(size_t column) const {
  const Value* value = At(values_, column);
  if (value == nullptr) return 0;
  if (const auto* number = std::get_if<int64_t>(value)) return *number;
  if (const auto* text = std::get_if<std::string>(value)) return ParseInt(*text).value_or(0);
  return 0;
}

std::string Row::Text(size_t column) const {
  const Value* value = At(values_, column);
  if (value == nullptr) return {};
  if (const auto* text = std::get_if<std::string>(value)) return *text;
  if (const auto* number = std::get_if<int64_t>(value)) return std::to_string(*number);
  return {};
}

std::optional<std::string> Row::OptionalText(size_t column) const {
  if (IsNull(column)) return std::nullopt;
  return Text(column);
}

std::optional<int64_t> Row::OptionalInt(size_t column) const {
  if (IsNull(column)) return std::nullopt;
  return Int(column);
}

// Not pure, so test doubles of Tx elsewhere need not implement it.
Result<void> Tx::ExecScript(std::string_view /*sql*/) {
  return Error::Internal("this transaction type cannot run SQL scripts");
}

Result<Row> Tx::QueryOne(std::string_view sql, const Params& params) {
  CLOZIT_ASSIGN_OR_RETURN(Rows rows, Query(sql, params));
  if (rows.empty()) return Error::NotFound("no matching row");
  return std::move(rows.front());
}

Result<Rows> Database::Query(std::string_view sql, const Params& params) {
  Rows rows;
  CLOZIT_TRY(Read([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(rows, tx.Query(sql, params));
    return Ok();
  }));
  return rows;
}

Result<std::unique_ptr<Database>> Open(const OpenOptions& options) {
  if (options.pool_size < 1) return Error::InvalidArgument("database.pool_size", "must be at least 1");
  if (options.write_batch_max < 1) return Error::InvalidArgument("database.write_batch_max", "must be at least 1");
  if (options.busy_timeout_ms < 0) return Error::InvalidArgument("database.busy_timeout_ms", "must not be negative");
  if (options.sqlite_checkpoint_pages < 100 || options.sqlite_checkpoint_pages > 10'000'000) {
    return Error::InvalidArgument("database.sqlite_checkpoint_pages", "must be 100..10,000,000");
  }

  // The URL is never echoed back: a PostgreSQL URL may carry a password.
  constexpr std::string_view kSqlitePrefix = "sqlite:";
  if (StartsWith(options.url, kSqlitePrefix)) {
    std::string path = options.url.substr(kSqlitePrefix.size());
    if (path.empty())
      return Error::InvalidArgument("database.url", "sqlite: URL needs a file path, e.g. sqlite:var/clozit.db");
    if (path == ":memory:" || StartsWith(path, "file:")) {
      return Error::InvalidArgument("database.url",
                                    "sqlite: URL must name a plain file (readers use their own connections)");
    }
    return sqlite::OpenSqliteDatabase(path, options);
  }
  if (StartsWith(options.url, "postgresql://") || StartsWith(options.url, "postgres://")) {
    return postgres::OpenPostgresDatabase(options);
  }
  return Error::InvalidArgument("database.url", "unsupported database URL: use sqlite:PATH or postgresql://...");
}

}  // namespace clozit::storage
