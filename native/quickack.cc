// TCP_QUICKACK for the daemon connection. The rsync daemon often writes twice without reading in
// between (greeting then MOTD then "@RSYNCD: OK"; its checksum list then the seed): with Nagle on
// its side, the second write waits for our ACK of the first, and Linux delays that ACK by up to
// 40 ms once the connection looks interactive. Leaving that "pingpong" mode after each of our
// writes makes the kernel ACK as soon as we read.
//
// JS API: quickAck(fd: number): boolean   setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, 1)
//         inputPending(fd: number): number  ioctl(fd, FIONREAD): bytes received, not yet read (-1: error)
// The second lets a writer see that the peer has spoken before it writes again: a daemon that
// refuses and closes leaves its reason there, and a write into the reset connection makes node
// close the descriptor with those bytes unread.
#include <napi.h>

#include <sys/ioctl.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

Napi::Value QuickAck(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) return Napi::Boolean::New(env, false);
  int fd = info[0].As<Napi::Number>().Int32Value();
  int one = 1;
#ifdef TCP_QUICKACK
  bool ok = setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one) == 0;
#else
  bool ok = false;
#endif
  return Napi::Boolean::New(env, ok);
}

Napi::Value InputPending(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) return Napi::Number::New(env, -1);
  int fd = info[0].As<Napi::Number>().Int32Value();
  int pending = 0;
  if (ioctl(fd, FIONREAD, &pending) != 0) return Napi::Number::New(env, -1);
  return Napi::Number::New(env, pending);
}
