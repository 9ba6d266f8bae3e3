// Facts that committed writes of this process established, kept in memory so a hot path need not read them
// back: accounts' fixed fields, an open pending transfer's rows, an open reservation. Only ever a shortcut:
// an entry is remembered once its transaction commits (never from one that rolls back), and whoever acts on
// an entry that may have gone stale (another node, an operator) writes statements that fail on a stale one,
// so the write runs again carefully and reads the database (storage::Tx::careful). Thread-safe.
#pragma once

#include <cstddef>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "storage/database.hpp"

namespace clozit::billing::detail {

template <typename T>
class CommittedFacts {
 public:
  /// Past `capacity` entries the oldest is dropped for each new one: facts nobody asks for again (an account
  /// seen once, a reservation another node settled, a hold that expired) must not grow the process without
  /// bound, and the oldest are the likeliest to be stale.
  explicit CommittedFacts(size_t capacity) : capacity_(capacity) {}

  std::optional<T> Find(const std::string& key) const {
    std::lock_guard lock(mutex_);
    auto found = facts_.find(key);
    if (found == facts_.end()) return std::nullopt;
    return found->second.fact;
  }

  /// Remembers `fact` under `key` once `tx` commits, replacing what was there.
  void RememberAfterCommit(storage::Tx& tx, std::string key, T fact) {
    tx.AfterCommit([this, key = std::move(key), fact = std::move(fact)] {
      std::lock_guard lock(mutex_);
      EraseLocked(key);
      if (facts_.size() >= capacity_ && !order_.empty()) EraseLocked(order_.front());
      order_.push_back(key);
      facts_.emplace(key, Entry{fact, std::prev(order_.end())});
    });
  }

  /// At once, not after commit: forgetting a fact that stays true only costs a read.
  void Forget(const std::string& key) {
    std::lock_guard lock(mutex_);
    EraseLocked(key);
  }

  /// Find and Forget in one step, without copying the fact: for a fact used once.
  std::optional<T> Take(const std::string& key) {
    std::lock_guard lock(mutex_);
    auto found = facts_.find(key);
    if (found == facts_.end()) return std::nullopt;
    std::optional<T> fact(std::move(found->second.fact));
    order_.erase(found->second.position);
    facts_.erase(found);
    return fact;
  }

 private:
  struct Entry {
    T fact;
    std::list<std::string>::iterator position;  // in order_
  };

  void EraseLocked(const std::string& key) {
    auto found = facts_.find(key);
    if (found == facts_.end()) return;
    order_.erase(found->second.position);
    facts_.erase(found);
  }

  const size_t capacity_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Entry> facts_;  // guarded by mutex_
  std::list<std::string> order_;                  // keys, oldest first; guarded by mutex_
};

}  // namespace clozit::billing::detail
