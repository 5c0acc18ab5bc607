// Give memory back to the system once a big transfer is over (the live mirror calls it when it
// goes idle after its startup sync or a large batch). V8 keeps the young generation it grew to
// and glibc keeps freed heap pages: a daemon that pushed 200 MB at startup would otherwise sit
// at twice its working size for the rest of its life.
//
// JS API: releaseMemory(dropFilePages?: boolean): number
//   v8::Isolate::LowMemoryNotification()   full collections that also shrink the heap's spaces
//   malloc_trim(0)                          return free malloc pages (Buffers' backing stores)
//   madvise(MADV_DONTNEED)                  with dropFilePages: unmap the clean pages of read-only
//                                           file mappings (the node binary's code and data, the
//                                           shared libraries); returns the bytes unmapped.
//   The pages stay in the page cache: the next use of one is a minor fault, no disk read. What
//   goes is this process's hold on them (its RSS counted them: 40+ MB for node's own binary after
//   a transfer ran TurboFan, zlib and the rest). Only a mapping that is private, not writable and
//   holds no copied-on-write page (smaps "Anonymous: 0 kB") qualifies: every page of it is the
//   file's, so dropping it loses nothing. A writable one, or a RELRO one the loader relocated,
//   is left as it is.
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

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include <sys/mman.h>

namespace {

struct Mapping {
  uintptr_t start = 0;
  uintptr_t end = 0;
  bool eligible = false;  // private, not writable, a file's pages
  long rssKb = 0;
  long anonymousKb = -1;  // -1: the line was not seen (then it is not dropped)
};

// A mapping's header line: "start-end perms offset dev inode [path]".
bool ParseHeader(const char* line, Mapping* m) {
  char perms[8] = {0};
  unsigned long inode = 0;
  unsigned long long start = 0, end = 0;
  int pathAt = 0;
  if (std::sscanf(line, "%llx-%llx %7s %*s %*s %lu %n", &start, &end, perms, &inode, &pathAt) < 4) return false;
  *m = Mapping();
  m->start = static_cast<uintptr_t>(start);
  m->end = static_cast<uintptr_t>(end);
  m->eligible = inode != 0 && perms[1] != 'w' && perms[3] == 'p' && pathAt > 0 && line[pathAt] == '/';
  return true;
}

// Unmap the resident pages of every eligible mapping (see the header); the bytes they held.
double DropCleanFilePages() {
  FILE* smaps = std::fopen("/proc/self/smaps", "re");
  if (smaps == nullptr) return 0;
  std::vector<Mapping> drop;
  Mapping current;
  bool inMapping = false;
  auto finish = [&]() {
    if (inMapping && current.eligible && current.anonymousKb == 0 && current.rssKb > 0) drop.push_back(current);
  };
  char line[4096];
  while (std::fgets(line, sizeof line, smaps) != nullptr) {
    if ((line[0] >= '0' && line[0] <= '9') || (line[0] >= 'a' && line[0] <= 'f')) {
      finish();
      inMapping = ParseHeader(line, &current);
    } else if (inMapping && std::strncmp(line, "Rss:", 4) == 0) {
      current.rssKb = std::strtol(line + 4, nullptr, 10);
    } else if (inMapping && std::strncmp(line, "Anonymous:", 10) == 0) {
      current.anonymousKb = std::strtol(line + 10, nullptr, 10);
    }
  }
  finish();
  std::fclose(smaps);
  double dropped = 0;
  for (const Mapping& m : drop) {
    if (madvise(reinterpret_cast<void*>(m.start), m.end - m.start, MADV_DONTNEED) == 0) dropped += m.rssKb * 1024.0;
  }
  return dropped;
}

}  // namespace

Napi::Value ReleaseMemory(const Napi::CallbackInfo& info) {
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  if (isolate != nullptr) isolate->LowMemoryNotification();
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
  double dropped = 0;
  if (info.Length() >= 1 && info[0].ToBoolean().Value()) dropped = DropCleanFilePages();
  return Napi::Number::New(info.Env(), dropped);
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
