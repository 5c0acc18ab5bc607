// Give memory back to the system once a big transfer is over (the live mirror calls it when it
// goes idle after its startup sync or a large batch). V8 keeps the young generation it grew to
// and glibc keeps freed heap pages: a daemon that pushed 200 MB at startup would otherwise sit
// at twice its working size for the rest of its life.
//
// JS API: releaseMemory(): void
//   v8::Isolate::LowMemoryNotification()   full collections that also shrink the heap's spaces
//   malloc_trim(0)                          return free malloc pages (Buffers' backing stores)
//
// And, at the start of a command that handles a big list (src/process-memory.ts):
// JS API: limitMallocArenas(count: number): boolean
//   mallopt(M_ARENA_MAX, count)             glibc makes an arena per thread that mallocs at once
//                                           (libuv's pool, V8's workers): each keeps its freed
//                                           blocks, so a 2-core process held ~30 MB of them
#include <napi.h>
#include <v8.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

Napi::Value ReleaseMemory(const Napi::CallbackInfo& info) {
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  if (isolate != nullptr) isolate->LowMemoryNotification();
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
  return info.Env().Undefined();
}

Napi::Value LimitMallocArenas(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "limitMallocArenas(count: number)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int count = info[0].As<Napi::Number>().Int32Value();
  if (count < 1) {
    Napi::RangeError::New(env, "limitMallocArenas: count must be at least 1").ThrowAsJavaScriptException();
    return env.Undefined();
  }
#if defined(__GLIBC__)
  return Napi::Boolean::New(env, mallopt(M_ARENA_MAX, count) == 1);
#else
  return Napi::Boolean::New(env, false);
#endif
}
