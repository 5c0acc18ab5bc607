// Give memory back to the system once a big transfer is over (the live mirror calls it when it
// goes idle after its startup sync or a large batch). V8 keeps the young generation it grew to
// and glibc keeps freed heap pages: a daemon that pushed 200 MB at startup would otherwise sit
// at twice its working size for the rest of its life.
//
// JS API: releaseMemory(): void
//   v8::Isolate::LowMemoryNotification()   full collections that also shrink the heap's spaces
//   malloc_trim(0)                          return free malloc pages (Buffers' backing stores)
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
