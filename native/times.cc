// Nanosecond file times. Node's utimes/futimes/lutimes take a number of seconds and keep
// microseconds only; rsync (protocol 31+) carries mtimes to the nanosecond, and a pull must set
// them exactly as rsync's receiver does (utimensat/futimens).
//
// JS API (atime = mtime, as rsync sets them without --atimes):
//   setTimesFd(fd: number, sec: number, nsec: number): void              futimens
//   setTimesPath(path: Buffer, sec: number, nsec: number, follow: boolean): void
//                                              utimensat(AT_FDCWD, ..., follow ? 0 : AT_SYMLINK_NOFOLLOW)
// Failures throw an Error whose `code` is the errno name (ENOENT, EPERM, ...), like Node's fs.
#include <napi.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include <string>

namespace {

const char* ErrnoName(int err) {
  switch (err) {
    case ENOENT: return "ENOENT";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case EBADF: return "EBADF";
    case ELOOP: return "ELOOP";
    case ENOTDIR: return "ENOTDIR";
    case EROFS: return "EROFS";
    case EINVAL: return "EINVAL";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    default: return "EIO";
  }
}

Napi::Value Fail(Napi::Env env, int err, const char* call) {
  Napi::Error e = Napi::Error::New(env, std::string(call) + ": " + strerror(err));
  e.Set("code", Napi::String::New(env, ErrnoName(err)));
  e.Set("errno", Napi::Number::New(env, -err));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

bool TimesFrom(const Napi::CallbackInfo& info, size_t at, struct timespec ts[2]) {
  if (info.Length() < at + 2 || !info[at].IsNumber() || !info[at + 1].IsNumber()) return false;
  ts[1].tv_sec = static_cast<time_t>(info[at].As<Napi::Number>().Int64Value());
  ts[1].tv_nsec = static_cast<long>(info[at + 1].As<Napi::Number>().Int64Value());
  if (ts[1].tv_nsec < 0 || ts[1].tv_nsec > 999999999) return false;
  ts[0] = ts[1];
  return true;
}

}  // namespace

Napi::Value SetTimesFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct timespec ts[2];
  if (info.Length() < 1 || !info[0].IsNumber() || !TimesFrom(info, 1, ts)) return Fail(env, EINVAL, "futimens");
  if (futimens(info[0].As<Napi::Number>().Int32Value(), ts) != 0) return Fail(env, errno, "futimens");
  return env.Undefined();
}

Napi::Value SetTimesPath(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct timespec ts[2];
  if (info.Length() < 4 || !info[0].IsBuffer() || !TimesFrom(info, 1, ts)) return Fail(env, EINVAL, "utimensat");
  Napi::Buffer<char> raw = info[0].As<Napi::Buffer<char>>();
  std::string path(raw.Data(), raw.Length());
  if (path.find('\0') != std::string::npos) return Fail(env, EINVAL, "utimensat");
  int flags = info[3].ToBoolean().Value() ? 0 : AT_SYMLINK_NOFOLLOW;
  if (utimensat(AT_FDCWD, path.c_str(), ts, flags) != 0) return Fail(env, errno, "utimensat");
  return env.Undefined();
}
