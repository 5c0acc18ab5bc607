// A received file whose data is all in memory, put in place in one call: the temp file beside
// its target created (O_EXCL, never through a symlink), written, chowned (when asked), chmodded,
// its times set to the nanosecond, closed and renamed over the target. With a callback it runs
// on libuv's threadpool, so the pull goes on reading the stream meanwhile (rsync's receiver is a
// process of its own for the same reason): the files queued while a batch runs are the next
// batch, one pool thread at a time, in the order given. Without a callback it runs here and
// throws. The queue lives in the env's instance data (the addon's only use of it).
// docs/protocol.md [pull-receive]; counterpart rsync receiver.c receive_data + finish_transfer
// (rsync.c set_file_attrs, util1.c robust_rename); JS side: src/transfer/whole-commits.ts.
//
// JS API:
//   commitFile(tmp: Buffer, target: Buffer, data: Buffer, mode: number, flags: number,
//              sec: number, nsec: number, uid: number, gid: number,
//              callback?: (err: Error | null) => void): void
//     flags: 1 = set mtime/atime (sec, nsec); 2 = fchown(uid, gid) (-1 leaves one alone;
//     its failure is ignored, as rsync's receiver only mentions it with -v).
//     tmp's last 6 bytes are replaced by fresh random letters when the name exists (EEXIST).
// A failure leaves no temp file behind and is an Error shaped like Node's fs errors
// (code, errno, syscall, path; dest for rename) plus `strerror`, the C library's text.
#include <napi.h>
#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace {

const int kSetTimes = 1;
const int kChown = 2;
// mkstemp's alphabet, as src/transfer/dest-tree.ts tempSuffix uses.
const char kSuffixChars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

struct CommitJob {
  std::string tmp;
  std::string target;
  const uint8_t* data = nullptr;
  size_t length = 0;
  mode_t mode = 0600;
  int flags = 0;
  struct timespec times[2] = {};
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
  // The failure: errno and the call (null when it worked).
  int err = 0;
  const char* syscall = nullptr;
};

int Fail(CommitJob& job, const char* syscall, int err) {
  job.err = err;
  job.syscall = syscall;
  return -1;
}

// A fresh random suffix for a temp name that exists already (O_EXCL said EEXIST).
void Reroll(std::string& tmp, unsigned* seed) {
  if (tmp.size() < 6) return;
  for (size_t i = tmp.size() - 6; i < tmp.size(); i++) tmp[i] = kSuffixChars[rand_r(seed) % (sizeof(kSuffixChars) - 1)];
}

// rsync/receiver.c: receive_data + finish_transfer (one small file, all of it at once)
void CommitOne(CommitJob& job) {
  int fd = -1;
  unsigned seed = static_cast<unsigned>(reinterpret_cast<uintptr_t>(&job)) ^ static_cast<unsigned>(job.length);
  for (int attempt = 0;; attempt++) {
    fd = open(job.tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0) break;
    if (errno == EINTR) continue;
    if (errno == EEXIST && attempt < 10) {
      Reroll(job.tmp, &seed);
      continue;
    }
    Fail(job, "open", errno);
    return;
  }
  const char* failed = nullptr;
  int err = 0;
  for (size_t at = 0; at < job.length;) {
    ssize_t n = write(fd, job.data + at, job.length - at);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      failed = "write";
      err = n < 0 ? errno : ENOSPC;
      break;
    }
    at += static_cast<size_t>(n);
  }
  if (!failed && (job.flags & kChown)) (void)fchown(fd, job.uid, job.gid);
  if (!failed && fchmod(fd, job.mode) != 0) failed = "fchmod", err = errno;
  if (!failed && (job.flags & kSetTimes) && futimens(fd, job.times) != 0) failed = "futimens", err = errno;
  if (close(fd) != 0 && !failed && errno != EINTR) failed = "close", err = errno;
  if (!failed && rename(job.tmp.c_str(), job.target.c_str()) != 0) failed = "rename", err = errno;
  if (failed) {
    unlink(job.tmp.c_str());
    Fail(job, failed, err);
  }
}

Napi::Error CommitError(Napi::Env env, const CommitJob& job) {
  const char* code = uv_err_name(-job.err);
  bool renaming = strcmp(job.syscall, "rename") == 0;
  std::string msg = std::string(code) + ": " + uv_strerror(-job.err) + ", " + job.syscall + " '" + job.tmp + "'";
  if (renaming) msg += " -> '" + job.target + "'";
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, code));
  e.Set("errno", Napi::Number::New(env, -job.err));
  e.Set("syscall", Napi::String::New(env, job.syscall));
  // The C library's words, as rsync's messages show them ("No space left on device").
  e.Set("strerror", Napi::String::New(env, strerror(job.err)));
  e.Set("path", Napi::Buffer<char>::Copy(env, job.tmp.data(), job.tmp.size()));
  if (renaming) e.Set("dest", Napi::Buffer<char>::Copy(env, job.target.data(), job.target.size()));
  return e;
}

// One file waiting for, or in, a batch: its job, its data kept alive, its callback.
struct PendingCommit {
  CommitJob job;
  Napi::Reference<Napi::Buffer<uint8_t>> data;
  Napi::FunctionReference callback;
};

// The files queued while a batch runs (touched only on the JS thread), and whether one runs.
// One pool thread at a time, woken once per batch: a thread woken per file costs the JS thread
// its time slice on a busy machine, and files of one directory would contend for its lock.
struct CommitState {
  std::vector<PendingCommit> waiting;
  bool running = false;
};

void StartBatch(Napi::Env env);

class BatchWorker : public Napi::AsyncWorker {
 public:
  BatchWorker(Napi::Env env, std::vector<PendingCommit> batch) : Napi::AsyncWorker(env, "lsyncd.commitFile"), batch_(std::move(batch)) {}

  void Execute() override {
    for (PendingCommit& p : batch_) CommitOne(p.job);
  }

  void OnOK() override {
    Napi::Env env = Env();
    env.GetInstanceData<CommitState>()->running = false;
    std::vector<PendingCommit> done = std::move(batch_);
    // The next batch goes to the pool first: it is written while the callbacks run.
    StartBatch(env);
    for (PendingCommit& p : done) {
      p.data.Reset();
      Napi::HandleScope scope(env);
      p.callback.Call({p.job.err ? CommitError(env, p.job).Value() : env.Null()});
    }
  }

 private:
  std::vector<PendingCommit> batch_;
};

void StartBatch(Napi::Env env) {
  CommitState* state = env.GetInstanceData<CommitState>();
  if (state->running || state->waiting.empty()) return;
  state->running = true;
  (new BatchWorker(env, std::move(state->waiting)))->Queue();
  state->waiting.clear();
}

std::string PathArg(const Napi::Value& v) {
  Napi::Buffer<char> raw = v.As<Napi::Buffer<char>>();
  return std::string(raw.Data(), raw.Length());
}

}  // namespace

Napi::Value CommitFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 9 || !info[0].IsBuffer() || !info[1].IsBuffer() || !info[2].IsBuffer()) {
    Napi::TypeError::New(env, "commitFile(tmp, target, data, mode, flags, sec, nsec, uid, gid[, callback])").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  for (size_t i = 3; i < 9; i++) {
    if (!info[i].IsNumber()) {
      Napi::TypeError::New(env, "commitFile: mode, flags, sec, nsec, uid and gid are numbers").ThrowAsJavaScriptException();
      return env.Undefined();
    }
  }
  CommitJob job;
  job.tmp = PathArg(info[0]);
  job.target = PathArg(info[1]);
  if (job.tmp.find('\0') != std::string::npos || job.target.find('\0') != std::string::npos) {
    Napi::TypeError::New(env, "commitFile: a path holds a NUL byte").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Buffer<uint8_t> data = info[2].As<Napi::Buffer<uint8_t>>();
  job.data = data.Data();
  job.length = data.Length();
  job.mode = static_cast<mode_t>(info[3].As<Napi::Number>().Uint32Value() & 07777);
  job.flags = info[4].As<Napi::Number>().Int32Value();
  job.times[1].tv_sec = static_cast<time_t>(info[5].As<Napi::Number>().Int64Value());
  job.times[1].tv_nsec = static_cast<long>(info[6].As<Napi::Number>().Int64Value());
  if (job.times[1].tv_nsec < 0 || job.times[1].tv_nsec > 999999999) {
    Napi::RangeError::New(env, "commitFile: nsec out of range").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  job.times[0] = job.times[1];
  job.uid = static_cast<uid_t>(info[7].As<Napi::Number>().Int32Value());
  job.gid = static_cast<gid_t>(info[8].As<Napi::Number>().Int32Value());
  if (info.Length() > 9 && info[9].IsFunction()) {
    CommitState* state = env.GetInstanceData<CommitState>();
    if (!state) {
      state = new CommitState();
      env.SetInstanceData(state);
    }
    state->waiting.push_back(PendingCommit{std::move(job), Napi::Persistent(data), Napi::Persistent(info[9].As<Napi::Function>())});
    StartBatch(env);
    return env.Undefined();
  }
  CommitOne(job);
  if (job.err) CommitError(env, job).ThrowAsJavaScriptException();
  return env.Undefined();
}
