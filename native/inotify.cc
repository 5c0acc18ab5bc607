// The kernel boundary of the watcher: one inotify instance, polled on Node's
// own event loop. Everything else (recursion, paths, move pairing, overflow
// handling) lives in TypeScript (src/watcher/), where it is tested.
//
// JS API (class Inotify):
//   new Inotify(onBatch: (raw: Buffer) => void)   // inotify_init1(IN_NONBLOCK|IN_CLOEXEC)
//   addWatch(path: string|Buffer, mask: number): number   // inotify_add_watch -> wd
//   removeWatch(wd: number): void                          // inotify_rm_watch
//   pause() / resume()   stop / start polling the fd (events queue up in the kernel)
//   ref() / unref()      whether the watcher keeps the event loop alive
//   close()              stop polling, close the fd; the uv handle is freed in the uv_close callback
//   fd: number           (-1 once closed)
// onBatch receives the raw bytes of every `struct inotify_event` read in one
// readable callback (read(2) until EAGAIN), decoded in src/watcher/decode.ts.
// No threads and no locks: uv_poll_t runs on the main loop.
#include <napi.h>
#include <uv.h>

#include <errno.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace {

// An Error shaped like Node's fs errors: message "CODE: description, syscall 'path'",
// plus code, errno (negative, as libuv reports it), syscall and path.
Napi::Error FsError(Napi::Env env, int err, const char* syscall, Napi::Value path) {
  const char* code = uv_err_name(-err);
  std::string msg = std::string(code) + ": " + uv_strerror(-err) + ", " + syscall;
  if (!path.IsEmpty() && !path.IsUndefined()) {
    std::string p = path.IsBuffer() ? std::string(path.As<Napi::Buffer<char>>().Data(),
                                                  path.As<Napi::Buffer<char>>().Length())
                                    : path.ToString().Utf8Value();
    msg += " '" + p + "'";
  }
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, code));
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("syscall", Napi::String::New(env, syscall));
  if (!path.IsEmpty() && !path.IsUndefined()) e.Set("path", path);
  return e;
}

class Inotify : public Napi::ObjectWrap<Inotify> {
 public:
  static Napi::Object Init(Napi::Env env, Napi::Object exports) {
    Napi::Function ctor = DefineClass(env, "Inotify", {
        InstanceMethod<&Inotify::AddWatch>("addWatch"),
        InstanceMethod<&Inotify::RemoveWatch>("removeWatch"),
        InstanceMethod<&Inotify::Pause>("pause"),
        InstanceMethod<&Inotify::Resume>("resume"),
        InstanceMethod<&Inotify::RefHandle>("ref"),
        InstanceMethod<&Inotify::UnrefHandle>("unref"),
        InstanceMethod<&Inotify::Close>("close"),
        InstanceAccessor<&Inotify::GetFd>("fd"),
    });
    exports.Set("Inotify", ctor);
    return exports;
  }

  explicit Inotify(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Inotify>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsFunction()) {
      Napi::TypeError::New(env, "Inotify(onBatch): onBatch must be a function").ThrowAsJavaScriptException();
      return;
    }
    fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd_ < 0) {
      FsError(env, errno, "inotify_init1", Napi::Value()).ThrowAsJavaScriptException();
      return;
    }
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    poll_ = new uv_poll_t;
    if (uv_poll_init(loop, poll_, fd_) != 0) {
      delete poll_;
      poll_ = nullptr;
      ::close(fd_);
      fd_ = -1;
      Napi::Error::New(env, "uv_poll_init failed").ThrowAsJavaScriptException();
      return;
    }
    poll_->data = this;
    onBatch_ = Napi::Persistent(info[0].As<Napi::Function>());
    context_ = new Napi::AsyncContext(env, "lsyncd:inotify");
    Ref();  // an open watcher must not be collected while the kernel can still report to it
    Start();
  }

  ~Inotify() override { Shutdown(); delete context_; }

 private:
  void Start() {
    if (poll_ != nullptr && !polling_) {
      uv_poll_start(poll_, UV_READABLE, OnReadable);
      polling_ = true;
    }
  }

  // Stop polling, close the fd, hand the handle to uv_close (freed in its callback).
  void Shutdown() {
    if (poll_ == nullptr) return;
    uv_poll_stop(poll_);
    polling_ = false;
    ::close(fd_);  // safe: the handle no longer polls this fd
    fd_ = -1;
    poll_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(poll_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
  }

  static void OnReadable(uv_poll_t* handle, int status, int /*events*/) {
    Inotify* self = static_cast<Inotify*>(handle->data);
    if (self != nullptr) self->Drain(status);
  }

  // read(2) until EAGAIN, then deliver everything as one Buffer.
  void Drain(int status) {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    int err = status < 0 ? -status : 0;
    if (err == 0) {
      // A read must fit at least one event with a NAME_MAX name, or it fails with EINVAL.
      alignas(struct inotify_event) char chunk[64 * 1024];
      for (;;) {
        ssize_t n = ::read(fd_, chunk, sizeof chunk);
        if (n > 0) { batch_.insert(batch_.end(), chunk, chunk + n); continue; }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno != EAGAIN) err = errno;
        break;
      }
    }
    Napi::Value arg;
    if (err != 0) {
      arg = FsError(env, err, "read", Napi::Value()).Value();
    } else if (batch_.empty()) {
      return;
    } else {
      arg = Napi::Buffer<char>::Copy(env, batch_.data(), batch_.size());
      batch_.clear();
    }
    onBatch_.MakeCallback(Value(), {arg}, *context_);
    if (env.IsExceptionPending()) {
      // Nothing on the JS stack to catch it: make it an uncaught exception, as Node does.
      Napi::Error e = env.GetAndClearPendingException();
      napi_fatal_exception(env, e.Value());
    }
  }

  Napi::Value AddWatch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (fd_ < 0) return Closed(env, "inotify_add_watch");
    if (info.Length() < 2 || !(info[0].IsString() || info[0].IsBuffer()) || !info[1].IsNumber()) {
      Napi::TypeError::New(env, "addWatch(path: string|Buffer, mask: number)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    std::string path;  // Buffer paths keep non-UTF-8 names byte-exact
    if (info[0].IsBuffer()) {
      auto b = info[0].As<Napi::Buffer<char>>();
      path.assign(b.Data(), b.Length());
    } else {
      path = info[0].As<Napi::String>().Utf8Value();
    }
    uint32_t mask = info[1].As<Napi::Number>().Uint32Value();
    int wd = inotify_add_watch(fd_, path.c_str(), mask);
    if (wd < 0) {
      FsError(env, errno, "inotify_add_watch", info[0]).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    return Napi::Number::New(env, wd);
  }

  Napi::Value RemoveWatch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (fd_ < 0) return Closed(env, "inotify_rm_watch");
    if (info.Length() < 1 || !info[0].IsNumber()) {
      Napi::TypeError::New(env, "removeWatch(wd: number)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (inotify_rm_watch(fd_, info[0].As<Napi::Number>().Int32Value()) < 0) {
      FsError(env, errno, "inotify_rm_watch", Napi::Value()).ThrowAsJavaScriptException();
    }
    return env.Undefined();
  }

  Napi::Value Pause(const Napi::CallbackInfo& info) {
    if (poll_ != nullptr && polling_) { uv_poll_stop(poll_); polling_ = false; }
    return info.Env().Undefined();
  }

  Napi::Value Resume(const Napi::CallbackInfo& info) {
    Start();
    return info.Env().Undefined();
  }

  Napi::Value RefHandle(const Napi::CallbackInfo& info) {
    if (poll_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
    return info.Env().Undefined();
  }

  Napi::Value UnrefHandle(const Napi::CallbackInfo& info) {
    if (poll_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (poll_ != nullptr) {
      Shutdown();
      Unref();  // balance the Ref() taken in the constructor
    }
    return info.Env().Undefined();
  }

  Napi::Value GetFd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

  Napi::Value Closed(Napi::Env env, const char* syscall) {
    FsError(env, EBADF, syscall, Napi::Value()).ThrowAsJavaScriptException();
    return env.Undefined();
  }

  int fd_ = -1;
  uv_poll_t* poll_ = nullptr;
  bool polling_ = false;
  std::vector<char> batch_;
  Napi::FunctionReference onBatch_;
  Napi::AsyncContext* context_ = nullptr;
};

}  // namespace

Napi::Value ReleaseMemory(const Napi::CallbackInfo& info);  // memory.cc
Napi::Value LimitMallocArenas(const Napi::CallbackInfo& info);  // memory.cc
Napi::Value QuickAck(const Napi::CallbackInfo& info);       // quickack.cc
Napi::Value InputPending(const Napi::CallbackInfo& info);   // quickack.cc
Napi::Value SetTimesFd(const Napi::CallbackInfo& info);     // times.cc
Napi::Value SetTimesPath(const Napi::CallbackInfo& info);   // times.cc
Napi::Value OpenSyslog(const Napi::CallbackInfo& info);     // syslog.cc
Napi::Value Syslog(const Napi::CallbackInfo& info);         // syslog.cc
Napi::Value ReadDirStats(const Napi::CallbackInfo& info);   // dirstat.cc
Napi::Value CompressLibs(const Napi::CallbackInfo& info);   // compress-libs.cc
Napi::Object XattrFunctions(Napi::Env env);                 // xattr.cc
Napi::Value PunchHole(const Napi::CallbackInfo& info);      // punch-hole.cc
Napi::Value ReadSmallFile(const Napi::CallbackInfo& info);  // read-small.cc
Napi::Value CommitFile(const Napi::CallbackInfo& info);     // file-commit.cc
Napi::Value CopyFileRange(const Napi::CallbackInfo& info);  // copy-range.cc

Napi::Value XxhashOnce(const Napi::CallbackInfo& info);     // xxhash.cc
Napi::Function XxHashStreamClass(Napi::Env env);           // xxhash.cc
Napi::Function DirPrefetchClass(Napi::Env env);            // dir-prefetch.cc

static Napi::Object InitAll(Napi::Env env, Napi::Object exports) {
  exports.Set("releaseMemory", Napi::Function::New(env, ReleaseMemory, "releaseMemory"));
  exports.Set("limitMallocArenas", Napi::Function::New(env, LimitMallocArenas, "limitMallocArenas"));
  exports.Set("quickAck", Napi::Function::New(env, QuickAck, "quickAck"));
  exports.Set("inputPending", Napi::Function::New(env, InputPending, "inputPending"));
  exports.Set("setTimesFd", Napi::Function::New(env, SetTimesFd, "setTimesFd"));
  exports.Set("setTimesPath", Napi::Function::New(env, SetTimesPath, "setTimesPath"));
  exports.Set("openSyslog", Napi::Function::New(env, OpenSyslog, "openSyslog"));
  exports.Set("syslog", Napi::Function::New(env, Syslog, "syslog"));
  exports.Set("readDirStats", Napi::Function::New(env, ReadDirStats, "readDirStats"));
  exports.Set("compressLibs", Napi::Function::New(env, CompressLibs, "compressLibs"));
  exports.Set("xattr", XattrFunctions(env));
  exports.Set("punchHole", Napi::Function::New(env, PunchHole, "punchHole"));
  exports.Set("readSmallFile", Napi::Function::New(env, ReadSmallFile, "readSmallFile"));
  exports.Set("commitFile", Napi::Function::New(env, CommitFile, "commitFile"));
  exports.Set("copyFileRange", Napi::Function::New(env, CopyFileRange, "copyFileRange"));
  exports.Set("xxhashOnce", Napi::Function::New(env, XxhashOnce, "xxhashOnce"));
  exports.Set("XxHashStream", XxHashStreamClass(env));
  exports.Set("DirPrefetch", DirPrefetchClass(env));
  return Inotify::Init(env, exports);
}

NODE_API_MODULE(inotify, InitAll)
