// A small file read whole in one call, for the sender (docs/bench.md "The sender's small
// files"): open (O_NOFOLLOW unless asked to follow), read until EOF or the buffer is full, close.
// The caller's buffer is the listed size plus one byte: a read that stops short exactly at the
// listed size is the end of the file (as rsync's map_file takes the listed length), so a file
// that did not change costs one read, not a second one that returns 0.
// From JS this replaces openSync, two readSync and closeSync, each with Node's argument checks.
// Counterpart: rsync sender.c send_files (do_open, then map_file's reads of the whole file).
//
// JS API:
//   readSmallFile(path: Buffer, follow: boolean, into: Buffer): number
// Returns the bytes read (into.length when the file holds at least that many: the caller then
// reads it the streaming way), or -errno when open or read failed (the caller redoes it with Node,
// which words the error). Never throws for a file system error.
#include <napi.h>

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <climits>
#include <cstring>

Napi::Value ReadSmallFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsBuffer() || !info[2].IsBuffer()) {
    Napi::TypeError::New(env, "readSmallFile(path: Buffer, follow: boolean, into: Buffer)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Buffer<char> pathBuf = info[0].As<Napi::Buffer<char>>();
  // The path NUL-terminated on the stack (no allocation per file).
  char path[PATH_MAX];
  if (pathBuf.Length() >= sizeof path) return Napi::Number::New(env, -ENAMETOOLONG);
  if (memchr(pathBuf.Data(), '\0', pathBuf.Length())) return Napi::Number::New(env, -EINVAL);
  memcpy(path, pathBuf.Data(), pathBuf.Length());
  path[pathBuf.Length()] = '\0';
  const bool follow = info[1].ToBoolean().Value();
  Napi::Buffer<char> into = info[2].As<Napi::Buffer<char>>();
  int fd = open(path, O_RDONLY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW));
  if (fd < 0) return Napi::Number::New(env, -errno);
  size_t got = 0;
  const size_t room = into.Length();
  while (got < room) {
    const size_t asked = room - got;
    ssize_t n = read(fd, into.Data() + got, asked);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      return Napi::Number::New(env, -err);
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
    if (static_cast<size_t>(n) < asked && got == room - 1) break;  // short at the listed size: its end
  }
  close(fd);
  return Napi::Number::New(env, static_cast<double>(got));
}
