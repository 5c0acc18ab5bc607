// Bytes copied from one file to another inside the kernel: copy_file_range(2), for the receiver's
// runs of matched basis blocks (src/transfer/copy-range.ts) when nothing on the main thread needs
// to see them. Node has no copy_file_range with offsets. Counterpart: none (rsync's receiver
// reads each matched block through map_ptr and writes it, receiver.c receive_data).
//
// JS API:
//   copyFileRange(fdIn: number, offsetIn: number, fdOut: number, length: number): number
// Copies up to `length` bytes from `fdIn` at `offsetIn` (its file offset untouched) to `fdOut` at
// fdOut's file offset, which moves past them, as write(2) would. Returns the bytes copied (0: end
// of fdIn), or -errno (EXDEV, ENOSYS, EOPNOTSUPP, EINVAL...: the caller reads and writes instead).
// Arguments that are not non-negative integers throw a TypeError.
#include <napi.h>

#include <errno.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>

namespace {

bool IsCount(const Napi::Value& v) {
  if (!v.IsNumber()) return false;
  double d = v.As<Napi::Number>().DoubleValue();
  return d >= 0 && d <= 9007199254740991.0 && std::floor(d) == d;
}

}  // namespace

Napi::Value CopyFileRange(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsNumber() || !IsCount(info[1]) || !info[2].IsNumber() || !IsCount(info[3])) {
    Napi::TypeError::New(env, "copyFileRange(fdIn, offsetIn, fdOut, length): numbers expected").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int fdIn = info[0].As<Napi::Number>().Int32Value();
  loff_t offIn = static_cast<loff_t>(info[1].As<Napi::Number>().Int64Value());
  int fdOut = info[2].As<Napi::Number>().Int32Value();
  size_t length = static_cast<size_t>(info[3].As<Napi::Number>().Int64Value());
  for (;;) {
    ssize_t n = copy_file_range(fdIn, &offIn, fdOut, nullptr, length, 0);
    if (n >= 0) return Napi::Number::New(env, static_cast<double>(n));
    if (errno != EINTR) return Napi::Number::New(env, -errno);
  }
}
