// A hole punched into a file's old data, for -S with --inplace (src/transfer/sparse-write.ts):
// fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE), else FALLOC_FL_ZERO_RANGE, as rsync's
// do_punch_hole tries them. Node has no fallocate. Counterpart: rsync syscall.c do_punch_hole.
//
// JS API:
//   punchHole(fd: number, offset: number, length: number): boolean
// true when the range reads as zeros now (and its blocks are freed where the filesystem can);
// false when the filesystem does neither: the caller writes the zeros (rsync's last resort). The
// file's length never changes. Arguments that are not non-negative integers throw a TypeError.
#include <napi.h>

#include <fcntl.h>
#include <linux/falloc.h>

#include <cmath>
#include <cstdint>

namespace {

bool IsOffset(const Napi::Value& v) {
  if (!v.IsNumber()) return false;
  double d = v.As<Napi::Number>().DoubleValue();
  return d >= 0 && d <= 9007199254740991.0 && std::floor(d) == d;
}

}  // namespace

// rsync/syscall.c: do_punch_hole (without its lseek: our writes carry their offsets)
Napi::Value PunchHole(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsNumber() || !IsOffset(info[1]) || !IsOffset(info[2])) {
    Napi::TypeError::New(env, "punchHole(fd, offset, length): numbers expected").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  off_t offset = static_cast<off_t>(info[1].As<Napi::Number>().Int64Value());
  off_t length = static_cast<off_t>(info[2].As<Napi::Number>().Int64Value());
  if (length == 0) return Napi::Boolean::New(env, true);
  if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length) == 0) return Napi::Boolean::New(env, true);
  if (fallocate(fd, FALLOC_FL_ZERO_RANGE, offset, length) == 0) return Napi::Boolean::New(env, true);
  return Napi::Boolean::New(env, false);
}
