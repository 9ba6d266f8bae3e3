// One libpq connection, the parsing of PostgreSQL URLs into libpq keywords,
// and the mapping of SQLSTATEs to Clozit errors.
//
// Not thread-safe: a Connection is used by one thread at a time (whoever
// leased it from the pool).
#pragma once

#include <libpq-fe.h>

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "storage/database.hpp"

namespace clozit::storage::postgres {

/// libpq keyword/value pairs, ready for PQconnectdbParams.
struct ConnectionParameters {
  std::vector<std::string> keywords;
  std::vector<std::string> values;
  /// The value for `keyword`, or "" when absent.
  std::string Get(std::string_view keyword) const;
};

/// Parses a postgresql:// URL. `password` is added when the URL has none; a
/// connect timeout (10 s) is added when the URL has none, so an unreachable
/// server fails instead of hanging. Errors never repeat the URL (it may hold a
/// password).
Result<ConnectionParameters> ParseConnectionUrl(const std::string& url, const std::string& password);

class Connection {
  struct Key {};  // only Connect can make one, yet make_unique can still call the constructor

 public:
  static Result<std::unique_ptr<Connection>> Connect(const ConnectionParameters& parameters);

  Connection(Key /*key*/, PGconn* connection) : connection_(connection) {}
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// A statement held back by Tx::ExecLater: it must change exactly `expected_changes` rows.
  struct Deferred {
    std::string sql;
    Params params;
    int64_t expected_changes = 0;
  };

  Result<Rows> Query(std::string_view sql, const Params& params);
  Result<int64_t> Exec(std::string_view sql, const Params& params);
  /// The same, after `before`, all in one round trip (libpq pipeline mode). Fails with the first
  /// statement that fails, or with one of `before` that changed another number of rows.
  Result<Rows> Query(const std::vector<Deferred>& before, std::string_view sql, const Params& params);
  Result<int64_t> Exec(const std::vector<Deferred>& before, std::string_view sql, const Params& params);
  /// Runs `statements` in one round trip, with the checks above.
  Result<void> Run(const std::vector<Deferred>& statements);
  /// Several statements, no parameters (libpq's simple query protocol).
  Result<void> ExecScript(std::string_view sql);
  /// Runs a transaction-control statement and checks the server's command tag,
  /// e.g. "COMMIT" (a COMMIT of a failed transaction answers "ROLLBACK"). Several
  /// `;`-separated statements go in one round trip: they stop at the first that
  /// fails, and the tag checked is the last one's.
  Result<void> Control(const char* sql, std::string_view expected_tag);

  /// SQLSTATE of the last failed call, "" after a success.
  const std::string& last_sqlstate() const { return last_sqlstate_; }
  bool broken() const;
  bool idle() const;  // connected and outside any transaction
  /// Reconnects with the original parameters; true when that worked.
  bool Reset();

 private:
  struct ResultDeleter {
    void operator()(PGresult* result) const { PQclear(result); }
  };
  using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

  // A statement and its parameters in libpq's form; `key` names it in the prepared-statement cache.
  struct Bound {
    Bound(std::string_view sql, const Params& params);
    std::string statement;  // libpq wants it NUL-terminated
    std::vector<std::string> rendered;
    std::vector<const char*> values;
    std::vector<Oid> types;
    std::string key;  // SQL, NUL, parameter types
  };

  /// Points `name` at the statement's prepared name, preparing it on first use; leaves it null when the
  /// cache is full (run it unprepared). Returns the server's answer when it refused to prepare it.
  ResultPtr Prepare(const Bound& bound, const std::string** name);
  void ForgetIfStale(const Bound& bound, const PGresult* result);
  ResultPtr Execute(std::string_view sql, const Params& params);
  /// `before`, then the statement when `params` is given; returns the statement's result (null without one).
  Result<ResultPtr> Pipeline(const std::vector<Deferred>& before, std::string_view sql, const Params* params);
  Result<Rows> RowsOf(ResultPtr result);
  Result<int64_t> ChangesOf(ResultPtr result);
  Error Failure(const PGresult* result, std::string_view during);

  PGconn* connection_;
  std::string last_sqlstate_;
  // Prepared statements of this session, by SQL text and parameter types. The writer connection runs
  // every statement of the node's writes in series, so parsing and planning each one again would be
  // most of the server's work per round trip. Sessions end with the connection (Reset clears it).
  std::unordered_map<std::string, std::string> prepared_;  // Bound::key -> statement name
  uint64_t prepared_count_ = 0;
};

/// True for the SQLSTATEs after which re-running the whole transaction can succeed.
bool IsRetryable(std::string_view sqlstate);

}  // namespace clozit::storage::postgres
