// The sender's walk reads directories ahead on a thread of its own (docs/bench.md "Round 6"):
// while JS turns one directory's records into list entries and sends them, this thread already
// reads the next directories (readdir and an fstatat per name: dirstat.cc ReadDirRecords), so the
// kernel's part of the walk runs on the second core. The walk stays in charge of the order: it
// names the subdirectories it will descend into as soon as it has read their parent, and the
// thread reads the newest such batch first, from its end, while the walk reads from its front
// (the two meet in the middle when the walk is the faster). The generator's walk of a received
// list names its directories in list order instead, a window at a time (`inOrder`: front to
// back). Before a walk starts (while the program is still loading), `explore` lets the thread go
// down a tree on its own in the walk's order (depth first, subdirectories as if their names
// ended in '/'), until the walk names its first batch or the bound is reached. A directory the walk asks for is handed over when read, waited for while it is being
// read, and otherwise left to the walk (take() answers null: it reads the directory itself, as
// it does when the read fails, so that its error is worded in one place). Results wait in
// memory up to a bound (count and bytes), and the thread waits while the walk catches up.
// Counterpart: none in rsync (flist.c send_directory reads each directory when it gets to it).
//
// JS API:
//   new DirPrefetch(maxDirs: number, maxBytes: number, noFollow = false)   (noFollow: as readDirStats')
//   want(paths: Buffer[], inOrder = false): void   a batch the walk will read next, in its order
//   explore(root: Buffer): void           read down from root on the thread's own, until the first want()
//   take(path: Buffer): Buffer | null     the directory's records (dirstat.cc format), or null
//   close(): void                         stop the thread (also done when collected)
#include <napi.h>
#include <sys/stat.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "dirstat.h"

namespace {

class DirPrefetch : public Napi::ObjectWrap<DirPrefetch> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "DirPrefetch", {
      InstanceMethod("want", &DirPrefetch::Want),
      InstanceMethod("explore", &DirPrefetch::Explore),
      InstanceMethod("take", &DirPrefetch::Take),
      InstanceMethod("close", &DirPrefetch::Close),
    });
  }

  explicit DirPrefetch(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DirPrefetch>(info) {
    if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
      Napi::TypeError::New(info.Env(), "DirPrefetch(maxDirs, maxBytes)").ThrowAsJavaScriptException();
      return;
    }
    int64_t dirs = info[0].As<Napi::Number>().Int64Value();
    int64_t bytes = info[1].As<Napi::Number>().Int64Value();
    maxDirs_ = dirs < 1 ? 1 : static_cast<size_t>(dirs);
    maxBytes_ = bytes < 1 ? 1 : static_cast<size_t>(bytes);
    noFollow_ = info.Length() > 2 && info[2].ToBoolean().Value();
  }

  ~DirPrefetch() override { Stop(); }

 private:
  struct Read {
    bool ok;
    std::vector<char> records;
  };

  struct Batch {
    std::deque<std::string> paths;
    bool inOrder;
  };

  // The thread: the newest batch's next path (its last, or its first when in order), else the
  // next one exploring found; read unless the walk took it over or it is read already.
  void Run() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      changed_.wait(lock, [this] { return closing_ || ((!batches_.empty() || !explore_.empty()) && ready_.size() < maxDirs_ && readyBytes_ < maxBytes_); });
      if (closing_) return;
      std::string path;
      bool exploring = batches_.empty();
      if (exploring) {
        path = std::move(explore_.back());
        explore_.pop_back();
      } else {
        Batch& batch = batches_.back();
        if (batch.inOrder) {
          path = std::move(batch.paths.front());
          batch.paths.pop_front();
        } else {
          path = std::move(batch.paths.back());
          batch.paths.pop_back();
        }
        if (batch.paths.empty()) batches_.pop_back();
      }
      queued_.erase(path);
      if (takenOver_.erase(path) || ready_.count(path)) continue;
      reading_ = path;
      lock.unlock();
      Read read;
      const char* call = nullptr;
      read.ok = ReadDirRecords(path, read.records, &call, noFollow_) == 0;
      std::vector<std::string> below;
      if (exploring && read.ok && exploreBudget_ > 0) below = Subdirectories(path, read.records);
      lock.lock();
      reading_.clear();
      readyBytes_ += read.records.size();
      ready_.emplace(path, std::move(read));
      // Still exploring (no batch named yet): the subdirectories next, the first on top.
      if (!below.empty() && exploreBudget_ > 0) {
        size_t count = std::min(below.size(), exploreBudget_);
        exploreBudget_ -= count;
        for (size_t i = count; i-- > 0;) {
          queued_.insert(below[i]);
          explore_.push_back(std::move(below[i]));
        }
      }
      changed_.notify_all();
    }
  }

  // The real directories among a read's records, as paths, in the walk's order (names compared
  // as if they ended in '/': rsync's order of a directory's subdirectories).
  static std::vector<std::string> Subdirectories(const std::string& dir, const std::vector<char>& records) {
    std::vector<std::string> names;
    const char* data = records.data();
    for (size_t at = 0; at + kDirRecordFixed <= records.size();) {
      uint32_t err, mode;
      uint16_t len;
      memcpy(&err, data + at, 4);
      memcpy(&mode, data + at + 4, 4);
      memcpy(&len, data + at + 64, 2);
      if (err == 0 && S_ISDIR(mode)) names.emplace_back(std::string(data + at + kDirRecordFixed, len) + '/');
      at += kDirRecordFixed + len;
    }
    std::sort(names.begin(), names.end());
    const bool slash = !dir.empty() && dir.back() == '/';
    for (std::string& n : names) {
      n.pop_back();
      n = dir + (slash ? "" : "/") + n;
    }
    return names;
  }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      closing_ = true;
    }
    changed_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  Napi::Value Want(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsArray()) {
      Napi::TypeError::New(env, "want(paths: Buffer[])").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Array list = info[0].As<Napi::Array>();
    Batch batch{{}, info.Length() > 1 && info[1].ToBoolean().Value()};
    for (uint32_t i = 0; i < list.Length(); i++) {
      Napi::Value v = list.Get(i);
      if (!v.IsBuffer()) continue;
      Napi::Buffer<char> b = v.As<Napi::Buffer<char>>();
      std::string path(b.Data(), b.Length());
      if (path.find('\0') == std::string::npos) batch.paths.push_back(std::move(path));
    }
    if (batch.paths.empty()) return env.Undefined();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (closing_) return env.Undefined();
      // The walk has begun: exploring ends, and what it already read (or is reading) is not read again.
      for (const std::string& p : explore_) {
        queued_.erase(p);
        takenOver_.erase(p);
      }
      explore_.clear();
      exploreBudget_ = 0;
      Batch fresh{{}, batch.inOrder};
      for (std::string& p : batch.paths) {
        if (ready_.count(p) || p == reading_ || queued_.count(p)) continue;
        queued_.insert(p);
        fresh.paths.push_back(std::move(p));
      }
      if (fresh.paths.empty()) return env.Undefined();
      batches_.push_back(std::move(fresh));
      if (!thread_.joinable()) thread_ = std::thread(&DirPrefetch::Run, this);
    }
    changed_.notify_all();
    return env.Undefined();
  }

  Napi::Value Explore(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsBuffer()) {
      Napi::TypeError::New(env, "explore(root: Buffer)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Buffer<char> b = info[0].As<Napi::Buffer<char>>();
    std::string root(b.Data(), b.Length());
    if (root.empty() || root.find('\0') != std::string::npos) return env.Undefined();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (closing_ || !batches_.empty()) return env.Undefined();
      exploreBudget_ = maxDirs_;
      queued_.insert(root);
      explore_.push_back(std::move(root));
      if (!thread_.joinable()) thread_ = std::thread(&DirPrefetch::Run, this);
    }
    changed_.notify_all();
    return env.Undefined();
  }

  Napi::Value Take(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsBuffer()) return env.Null();
    Napi::Buffer<char> b = info[0].As<Napi::Buffer<char>>();
    std::string path(b.Data(), b.Length());
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return reading_ != path; });
    auto found = ready_.find(path);
    if (found == ready_.end()) {
      // Not read yet: the walk reads it now, and the thread passes it by if it is still queued.
      if (!closing_ && queued_.count(path)) takenOver_.insert(std::move(path));
      return env.Null();
    }
    Read read = std::move(found->second);
    ready_.erase(found);
    readyBytes_ -= read.records.size();
    lock.unlock();
    changed_.notify_all();
    if (!read.ok) return env.Null();
    return Napi::Buffer<char>::Copy(env, read.records.data(), read.records.size());
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Stop();
    std::lock_guard<std::mutex> lock(mutex_);
    batches_.clear();
    explore_.clear();
    queued_.clear();
    ready_.clear();
    takenOver_.clear();
    readyBytes_ = 0;
    return info.Env().Undefined();
  }

  size_t maxDirs_ = 1;
  size_t maxBytes_ = 1;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::thread thread_;
  bool closing_ = false;
  bool noFollow_ = false;
  std::vector<Batch> batches_;                    // newest last
  std::vector<std::string> explore_;              // exploring: the next directories, the next on top
  size_t exploreBudget_ = 0;                      // how many more directories exploring may queue
  std::unordered_set<std::string> queued_;        // every path in batches_ and explore_
  std::unordered_map<std::string, Read> ready_;
  size_t readyBytes_ = 0;
  std::unordered_set<std::string> takenOver_;
  std::string reading_;
};

}  // namespace

Napi::Function DirPrefetchClass(Napi::Env env) { return DirPrefetch::Define(env); }
