// syslog(3) for the live mirror and the daemon when they run detached without a log file, as
// lsyncd 2 and rsyncd log by default. Node has no Unix datagram sockets to reach /dev/log itself,
// and libc's syslog knows the local socket's quirks (reconnects, LOG_CONS off), so we use it.
//
// JS API: openSyslog(ident: string, facility: number): void    openlog(ident, LOG_PID|LOG_NDELAY, facility)
//         syslog(priority: number, message: string): void      syslog(priority, "%s", message)
#include <napi.h>

#include <string>
#include <syslog.h>

// openlog keeps the pointer it is given: the ident must outlive every later syslog call.
static std::string ident_;

Napi::Value OpenSyslog(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber()) {
    Napi::TypeError::New(env, "openSyslog(ident: string, facility: number)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  ident_ = info[0].As<Napi::String>().Utf8Value();
  openlog(ident_.c_str(), LOG_PID | LOG_NDELAY, info[1].As<Napi::Number>().Int32Value());
  return env.Undefined();
}

Napi::Value Syslog(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsString()) {
    Napi::TypeError::New(env, "syslog(priority: number, message: string)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string message = info[1].As<Napi::String>().Utf8Value();
  syslog(info[0].As<Napi::Number>().Int32Value(), "%s", message.c_str());
  return env.Undefined();
}
