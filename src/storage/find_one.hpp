// storage: FindOne, the lookup that may miss — a query whose first row, if
// any, is decoded into a value. Where Tx::QueryOne treats no row as an error
// (kNotFound), FindOne answers nullopt and leaves the meaning to the caller.
// Runs inside the caller's transaction; thread-safety is the Tx's.
#pragma once

#include <optional>
#include <string_view>
#include <type_traits>

#include "common/result.hpp"
#include "storage/database.hpp"

namespace clozit::storage {

/// The first row of `sql` decoded by `decode` (Row → T), or nullopt when there is none.
template <class Decode>
auto FindOne(Tx& tx, std::string_view sql, const Params& params, Decode&& decode)
    -> Result<std::optional<std::decay_t<std::invoke_result_t<Decode&, const Row&>>>> {
  using Found = std::optional<std::decay_t<std::invoke_result_t<Decode&, const Row&>>>;
  CLOZIT_ASSIGN_OR_RETURN(auto rows, tx.Query(sql, params));
  if (rows.empty()) return Found();
  return Found(decode(rows.front()));
}

}  // namespace clozit::storage
