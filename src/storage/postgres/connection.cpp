#include "storage/postgres/connection.hpp"

#include "storage/detail/tx_base.hpp"

#include <charconv>
#include <string>
#include <utility>

namespace clozit::storage::postgres {
namespace {

// pg_type OIDs (server/catalog/pg_type_d.h is not in libpq-dev).
constexpr Oid kInt8Oid = 20;
constexpr Oid kUnknownOid = 0;  // lets the server infer the type from context, as SQLite's affinity does

// Bounds the prepared statements of one session. The SQL texts come from the code, so only statements
// built with a variable number of parameters (filters) add up; past the bound they run unprepared.
constexpr size_t kMaxPreparedStatements = 2000;

// A plan cached before a table's columns changed cannot return the new row type (SQLSTATE 0A000).
constexpr std::string_view kStalePlanState = "0A000";

// The row count of an INSERT, UPDATE or DELETE; PQcmdTuples is "" for statements that change no rows.
int64_t ChangedRows(PGresult* result) {
  std::string_view tuples = PQcmdTuples(result);
  int64_t changed = 0;
  std::from_chars(tuples.data(), tuples.data() + tuples.size(), changed);
  return changed;
}

std::string TrimTrailingSpace(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\r' || text.back() == '\t')) {
    text.pop_back();
  }
  return text;
}

// PostgreSQL notices (e.g. "relation already exists, skipping") would go to
// stderr; nothing in them needs acting on.
void IgnoreNotice(void* /*arg*/, const char* /*message*/) {}

bool StartsWith(std::string_view text, std::string_view prefix) { return text.substr(0, prefix.size()) == prefix; }

}  // namespace

std::string ConnectionParameters::Get(std::string_view keyword) const {
  for (size_t index = 0; index < keywords.size(); ++index) {
    if (keywords[index] == keyword) return values[index];
  }
  return {};
}

Result<ConnectionParameters> ParseConnectionUrl(const std::string& url, const std::string& password) {
  char* parse_error = nullptr;
  PQconninfoOption* options = PQconninfoParse(url.c_str(), &parse_error);
  if (options == nullptr) {
    std::string message = parse_error != nullptr ? TrimTrailingSpace(parse_error) : "cannot parse";
    PQfreemem(parse_error);
    // libpq quotes the URL in some messages; it may hold a password.
    for (size_t found = message.find(url); !url.empty() && found != std::string::npos; found = message.find(url)) {
      message.replace(found, url.size(), "<url>");
    }
    return Error::InvalidArgument("database.url", "invalid PostgreSQL URL: " + message);
  }
  ConnectionParameters parameters;
  for (PQconninfoOption* option = options; option->keyword != nullptr; ++option) {
    if (option->val == nullptr || option->val[0] == '\0') continue;
    parameters.keywords.emplace_back(option->keyword);
    parameters.values.emplace_back(option->val);
  }
  PQconninfoFree(options);

  auto add_default = [&](const char* keyword, const std::string& value) {
    if (value.empty() || !parameters.Get(keyword).empty()) return;
    parameters.keywords.emplace_back(keyword);
    parameters.values.push_back(value);
  };
  add_default("password", password);
  add_default("connect_timeout", "10");
  add_default("application_name", "clozit");
  add_default("client_encoding", "UTF8");
  return parameters;
}

bool IsRetryable(std::string_view sqlstate) { return sqlstate == "40001" || sqlstate == "40P01"; }

Result<std::unique_ptr<Connection>> Connection::Connect(const ConnectionParameters& parameters) {
  std::vector<const char*> keywords;
  std::vector<const char*> values;
  for (size_t index = 0; index < parameters.keywords.size(); ++index) {
    keywords.push_back(parameters.keywords[index].c_str());
    values.push_back(parameters.values[index].c_str());
  }
  keywords.push_back(nullptr);
  values.push_back(nullptr);
  PGconn* handle = PQconnectdbParams(keywords.data(), values.data(), /*expand_dbname=*/0);
  if (handle == nullptr) return Error::Make(ErrorCode::kUnavailable, "postgres cannot connect: out of memory");
  auto connection = std::make_unique<Connection>(Key(), handle);
  if (PQstatus(handle) != CONNECTION_OK) {
    return Error::Make(ErrorCode::kUnavailable,
                       "postgres cannot connect: " + TrimTrailingSpace(PQerrorMessage(handle)));
  }
  PQsetNoticeProcessor(handle, IgnoreNotice, nullptr);
  return connection;
}

Connection::~Connection() { PQfinish(connection_); }

bool Connection::broken() const { return PQstatus(connection_) != CONNECTION_OK; }

bool Connection::idle() const { return !broken() && PQtransactionStatus(connection_) == PQTRANS_IDLE; }

bool Connection::Reset() {
  prepared_.clear();  // a new session has none of the old one's prepared statements
  PQreset(connection_);
  if (broken()) return false;
  PQsetNoticeProcessor(connection_, IgnoreNotice, nullptr);
  return true;
}

Connection::Bound::Bound(std::string_view sql, const Params& params) : statement(sql) {
  rendered.reserve(params.size());  // no reallocation: values points into it
  for (const Value& param : params) {
    if (const auto* number = std::get_if<int64_t>(&param)) {
      rendered.push_back(std::to_string(*number));
      values.push_back(rendered.back().c_str());
      types.push_back(kInt8Oid);
    } else if (const auto* text = std::get_if<std::string>(&param)) {
      values.push_back(text->c_str());
      types.push_back(kUnknownOid);
    } else {
      values.push_back(nullptr);
      types.push_back(kUnknownOid);
    }
  }
  key = statement;
  key.push_back('\0');
  for (Oid type : types) key += std::to_string(type) + ",";
}

Connection::ResultPtr Connection::Prepare(const Bound& bound, const std::string** name) {
  *name = nullptr;
  if (auto found = prepared_.find(bound.key); found != prepared_.end()) {
    *name = &found->second;
    return nullptr;
  }
  if (prepared_.size() >= kMaxPreparedStatements) return nullptr;
  // Names are never reused within a session, so a statement dropped as stale cannot meet its successor.
  std::string prepared_name = "clozit_" + std::to_string(++prepared_count_);
  ResultPtr prepared(PQprepare(connection_, prepared_name.c_str(), bound.statement.c_str(),
                               static_cast<int>(bound.types.size()), bound.types.data()));
  // A statement the server refuses to parse reports that, exactly as running it unprepared would.
  if (prepared == nullptr || PQresultStatus(prepared.get()) != PGRES_COMMAND_OK) return prepared;
  *name = &prepared_.emplace(bound.key, std::move(prepared_name)).first->second;
  return nullptr;
}

void Connection::ForgetIfStale(const Bound& bound, const PGresult* result) {
  const char* state = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  // Prepared again on the next use; this call's transaction has failed either way.
  if (state != nullptr && state == kStalePlanState) prepared_.erase(bound.key);
}

Connection::ResultPtr Connection::Execute(std::string_view sql, const Params& params) {
  Bound bound(sql, params);
  const std::string* name = nullptr;
  if (ResultPtr failed = Prepare(bound, &name)) return failed;
  const int count = static_cast<int>(bound.values.size());
  ResultPtr result(name != nullptr
                       ? PQexecPrepared(connection_, name->c_str(), count, bound.values.data(), nullptr, nullptr, 0)
                       : PQexecParams(connection_, bound.statement.c_str(), count, bound.types.data(),
                                      bound.values.data(), nullptr, nullptr, /*resultFormat=text*/ 0));
  ForgetIfStale(bound, result.get());
  return result;
}

Result<Connection::ResultPtr> Connection::Pipeline(const std::vector<Deferred>& before, std::string_view sql,
                                                   const Params* params) {
  std::vector<Bound> bounds;
  bounds.reserve(before.size() + 1);
  for (const Deferred& deferred : before) bounds.emplace_back(deferred.sql, deferred.params);
  if (params != nullptr) bounds.emplace_back(sql, *params);
  // Statements new to this session are prepared first, outside the pipeline (once per session each).
  std::vector<const std::string*> names(bounds.size());
  for (size_t index = 0; index < bounds.size(); ++index) {
    if (ResultPtr failed = Prepare(bounds[index], &names[index])) return Failure(failed.get(), "exec");
  }
  if (PQenterPipelineMode(connection_) != 1) return Failure(nullptr, "pipeline");
  // Every statement goes out before any answer is read: one round trip. The batch is a handful of short
  // statements, far below what the socket buffers hold, so sending cannot block on unread answers.
  bool sent = true;
  for (size_t index = 0; index < bounds.size() && sent; ++index) {
    const Bound& bound = bounds[index];
    const int count = static_cast<int>(bound.values.size());
    sent = (names[index] != nullptr ? PQsendQueryPrepared(connection_, names[index]->c_str(), count,
                                                          bound.values.data(), nullptr, nullptr, 0)
                                    : PQsendQueryParams(connection_, bound.statement.c_str(), count, bound.types.data(),
                                                        bound.values.data(), nullptr, nullptr, 0)) == 1;
  }
  if (sent) sent = PQpipelineSync(connection_) == 1;
  if (!sent) return Failure(nullptr, "pipeline");
  std::vector<ResultPtr> results;
  results.reserve(bounds.size());
  for (size_t index = 0; index < bounds.size(); ++index) {
    ResultPtr result(PQgetResult(connection_));
    if (result == nullptr) return Failure(nullptr, "pipeline");
    while (PGresult* extra = PQgetResult(connection_)) PQclear(extra);  // up to the end of this statement
    ForgetIfStale(bounds[index], result.get());
    results.push_back(std::move(result));
  }
  ResultPtr sync(PQgetResult(connection_));
  if (sync == nullptr || PQresultStatus(sync.get()) != PGRES_PIPELINE_SYNC || PQexitPipelineMode(connection_) != 1) {
    return Failure(nullptr, "pipeline");
  }
  // The first failure is the one to report: the server skipped everything after it.
  for (size_t index = 0; index < before.size(); ++index) {
    const ExecStatusType status = PQresultStatus(results[index].get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) return Failure(results[index].get(), "exec");
    const int64_t changed = ChangedRows(results[index].get());
    if (changed != before[index].expected_changes) {
      return detail::UnexpectedChanges(before[index].sql, changed, before[index].expected_changes);
    }
  }
  if (params == nullptr) return ResultPtr();
  return std::move(results.back());
}

Error Connection::Failure(const PGresult* result, std::string_view during) {
  const char* state = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  last_sqlstate_ = state != nullptr ? state : "";
  if (broken()) {
    last_sqlstate_ = "08006";
    return Error::Make(ErrorCode::kUnavailable, "postgres connection lost during " + std::string(during) + ": " +
                                                    TrimTrailingSpace(PQerrorMessage(connection_)));
  }
  const char* primary = result != nullptr ? PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  // The DETAIL field is never used: it quotes row values ("Key (email)=(...)").
  std::string message = primary != nullptr ? primary : TrimTrailingSpace(PQerrorMessage(connection_));
  // Data exceptions quote the offending input in the primary message too.
  if (StartsWith(last_sqlstate_, "22")) message = "invalid value for the column or operator";
  ErrorCode code = ErrorCode::kInternal;
  if (last_sqlstate_ == "23505") {
    code = ErrorCode::kAlreadyExists;
  } else if (IsRetryable(last_sqlstate_) || StartsWith(last_sqlstate_, "53") || StartsWith(last_sqlstate_, "57P") ||
             (StartsWith(last_sqlstate_, "08") && last_sqlstate_ != "08P01")) {  // 08P01: wrong parameter count
    code = ErrorCode::kUnavailable;  // contention, resources, shutdown: worth retrying later
  }
  std::string text = "postgres " + std::string(during) + ": " + message;
  if (!last_sqlstate_.empty()) text += " (SQLSTATE " + last_sqlstate_ + ")";
  return Error::Make(code, std::move(text));
}

Result<Rows> Connection::Query(std::string_view sql, const Params& params) { return RowsOf(Execute(sql, params)); }

Result<Rows> Connection::Query(const std::vector<Deferred>& before, std::string_view sql, const Params& params) {
  CLOZIT_ASSIGN_OR_RETURN(ResultPtr result, Pipeline(before, sql, &params));
  return RowsOf(std::move(result));
}

Result<int64_t> Connection::Exec(std::string_view sql, const Params& params) { return ChangesOf(Execute(sql, params)); }

Result<int64_t> Connection::Exec(const std::vector<Deferred>& before, std::string_view sql, const Params& params) {
  CLOZIT_ASSIGN_OR_RETURN(ResultPtr result, Pipeline(before, sql, &params));
  return ChangesOf(std::move(result));
}

Result<void> Connection::Run(const std::vector<Deferred>& statements) {
  if (statements.empty()) return Ok();
  CLOZIT_TRY(Pipeline(statements, {}, nullptr));
  return Ok();
}

Result<Rows> Connection::RowsOf(ResultPtr result) {
  ExecStatusType status = result != nullptr ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status == PGRES_EMPTY_QUERY) return Error::Internal("postgres query: empty statement");
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) return Failure(result.get(), "query");
  last_sqlstate_.clear();
  int row_count = PQntuples(result.get());
  int column_count = PQnfields(result.get());
  Rows rows;
  rows.reserve(static_cast<size_t>(row_count));
  for (int row = 0; row < row_count; ++row) {
    std::vector<Value> values;
    values.reserve(static_cast<size_t>(column_count));
    for (int column = 0; column < column_count; ++column) {
      if (PQgetisnull(result.get(), row, column)) {
        values.emplace_back(nullptr);
      } else {
        values.emplace_back(std::string(PQgetvalue(result.get(), row, column),
                                        static_cast<size_t>(PQgetlength(result.get(), row, column))));
      }
    }
    rows.emplace_back(std::move(values));
  }
  return rows;
}

Result<int64_t> Connection::ChangesOf(ResultPtr result) {
  ExecStatusType status = result != nullptr ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status == PGRES_EMPTY_QUERY) return Error::Internal("postgres exec: empty statement");
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) return Failure(result.get(), "exec");
  last_sqlstate_.clear();
  return ChangedRows(result.get());
}

Result<void> Connection::ExecScript(std::string_view sql) {
  std::string script(sql);
  ResultPtr result(PQexec(connection_, script.c_str()));
  ExecStatusType status = result != nullptr ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK && status != PGRES_EMPTY_QUERY) {
    return Failure(result.get(), "script");
  }
  last_sqlstate_.clear();
  return Ok();
}

Result<void> Connection::Control(const char* sql, std::string_view expected_tag) {
  ResultPtr result(PQexec(connection_, sql));
  ExecStatusType status = result != nullptr ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK) return Failure(result.get(), sql);
  last_sqlstate_.clear();
  if (std::string_view(PQcmdStatus(result.get())) != expected_tag) {
    return Error::Internal("postgres " + std::string(sql) + " answered " + PQcmdStatus(result.get()));
  }
  return Ok();
}

}  // namespace clozit::storage::postgres
