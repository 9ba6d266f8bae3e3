// A bounded pool of database connections, shared by the SQLite readers and
// the PostgreSQL backend.
//
// Acquire blocks until a connection is idle or one more may be opened; a
// Lease hands it back when it goes out of scope. Connections are opened
// lazily by the factory, outside the lock. Thread-safe; the pool must outlive
// every Lease.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "common/result.hpp"

namespace clozit::storage::detail {

template <typename Connection>
class ConnectionPool {
 public:
  using Factory = std::function<Result<std::unique_ptr<Connection>>()>;

  class Lease {
   public:
    Lease(Lease&& other) noexcept : pool_(other.pool_), connection_(std::move(other.connection_)) {}
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (connection_) pool_->Release(std::move(connection_));
    }
    Connection& operator*() const { return *connection_; }
    Connection* operator->() const { return connection_.get(); }
    /// Closes the connection instead of reusing it, e.g. when its state is unknown.
    void Discard() {
      if (!connection_) return;
      connection_.reset();
      pool_->Forget();
    }

   private:
    friend class ConnectionPool;
    Lease(ConnectionPool* pool, std::unique_ptr<Connection> connection)
        : pool_(pool), connection_(std::move(connection)) {}
    ConnectionPool* pool_;
    std::unique_ptr<Connection> connection_;
  };

  ConnectionPool(size_t capacity, Factory factory) : capacity_(capacity), factory_(std::move(factory)) {}
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  /// Adds a connection opened elsewhere (Open checks the server that way).
  void Seed(std::unique_ptr<Connection> connection) {
    std::lock_guard lock(mutex_);
    ++open_;
    idle_.push_back(std::move(connection));
  }

  Result<Lease> Acquire() {
    {
      std::unique_lock lock(mutex_);
      available_.wait(lock, [&] { return !idle_.empty() || open_ < capacity_; });
      if (!idle_.empty()) {
        auto connection = std::move(idle_.back());
        idle_.pop_back();
        return Lease(this, std::move(connection));
      }
      ++open_;  // reserve the slot; connect without holding the lock
    }
    auto opened = factory_();
    if (!opened) {
      Forget();
      return opened.error();
    }
    return Lease(this, std::move(opened).value());
  }

 private:
  void Release(std::unique_ptr<Connection> connection) {
    {
      std::lock_guard lock(mutex_);
      idle_.push_back(std::move(connection));
    }
    available_.notify_one();
  }
  void Forget() {
    {
      std::lock_guard lock(mutex_);
      --open_;
    }
    available_.notify_one();
  }

  const size_t capacity_;
  const Factory factory_;

  std::mutex mutex_;
  std::condition_variable available_;
  // State below is protected by mutex_.
  std::vector<std::unique_ptr<Connection>> idle_;
  size_t open_ = 0;  // idle + leased + being opened
};

}  // namespace clozit::storage::detail
