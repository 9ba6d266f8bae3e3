#include "contacts/import_queue.hpp"

#include <filesystem>
#include <fstream>

namespace clozit::contacts {
namespace {

constexpr size_t kMaxQueued = 1000;

}  // namespace

ImportQueue::ImportQueue(Importer& importer, Random& random, std::string spool_directory)
    : importer_(importer), random_(random), spool_directory_(std::move(spool_directory)) {
  worker_ = std::thread([this] { Work(); });
}

ImportQueue::~ImportQueue() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  worker_.join();
}

Result<std::string> ImportQueue::Spool(std::string_view data) {
  std::error_code error;
  std::filesystem::create_directories(spool_directory_, error);
  if (error) return Error::Make(ErrorCode::kUnavailable, "cannot create the import spool directory");
  std::string path = spool_directory_ + "/upload_" + RandomToken(random_, 16) + ".csv";
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  out.close();
  if (!out) {
    std::filesystem::remove(path, error);
    return Error::Make(ErrorCode::kUnavailable, "cannot write the upload to the spool directory");
  }
  return path;
}

Result<std::string> ImportQueue::Adopt(const std::string& path) {
  std::error_code error;
  std::filesystem::create_directories(spool_directory_, error);
  if (error) return Error::Make(ErrorCode::kUnavailable, "cannot create the import spool directory");
  std::string target = spool_directory_ + "/upload_" + RandomToken(random_, 16) + ".csv";
  std::filesystem::rename(path, target, error);
  if (error) {
    // Another file system: copy, then drop the original.
    std::filesystem::copy_file(path, target, error);
    if (error) {
      std::filesystem::remove(target, error);
      return Error::Make(ErrorCode::kUnavailable, "cannot move the upload to the spool directory");
    }
    std::filesystem::remove(path, error);
  }
  return target;
}

Result<void> ImportQueue::Enqueue(const TenantId& tenant, const ImportId& id) {
  {
    std::lock_guard lock(mutex_);
    if (queue_.size() >= kMaxQueued) {
      return Error::Make(ErrorCode::kUnavailable, "too many imports are waiting; retry later");
    }
    queue_.emplace_back(tenant, id);
  }
  changed_.notify_all();
  return Ok();
}

Result<int> ImportQueue::ResumeUnfinished() {
  CLOZIT_ASSIGN_OR_RETURN(auto jobs, importer_.Unfinished());
  int queued = 0;
  for (const auto& job : jobs) {
    // Spooled files are local to the node that took the upload: leave other nodes' jobs alone.
    auto path = importer_.FilePath(job.tenant_id, job.id);
    std::error_code error;
    if (!path || !std::filesystem::exists(*path, error)) continue;
    CLOZIT_TRY(Enqueue(job.tenant_id, job.id));
    ++queued;
  }
  return queued;
}

void ImportQueue::WaitIdle() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return (queue_.empty() && !busy_) || stop_; });
}

void ImportQueue::Work() {
  for (;;) {
    std::pair<TenantId, ImportId> next;
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      next = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
    }
    // A failed job records its error in its row; nothing else to do here.
    auto result = importer_.Run(next.first, next.second, {}, &stop_);
    if (result && result->status == "completed") {
      // The spooled upload is no longer needed once every row is committed.
      auto path = importer_.FilePath(next.first, next.second);
      if (path && path->rfind(spool_directory_ + "/", 0) == 0) {
        std::error_code error;
        std::filesystem::remove(*path, error);
      }
    }
    {
      std::lock_guard lock(mutex_);
      busy_ = false;
    }
    changed_.notify_all();
  }
}

}  // namespace clozit::contacts
