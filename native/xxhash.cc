// rsync's xxhash checksums (xxh64, xxh3, xxh128) in C: the whole-file sum of every transfer and
// the block sums of a delta, where hash-wasm's WebAssembly build runs at ~2.6 GB/s and the C
// library at memory speed (docs/bench.md "Round 5"). The library is xxHash 0.8.2, vendored as
// native/third_party/xxhash.h (BSD 2-Clause, its LICENSE beside it), compiled inline here.
// Counterpart: rsync checksum.c (get_checksum2 and sum_init/sum_update/sum_end for CSUM_XXH64,
// CSUM_XXH3_64, CSUM_XXH3_128), which link the same library.
//
// JS API (kind: 0 = xxh64, 1 = xxh3 (64-bit), 2 = xxh128; the 64-bit seed as two uint32 halves):
//   xxhashOnce(kind, seedLow, seedHigh, data: Uint8Array): Buffer
//   new XxHashStream(kind, seedLow, seedHigh): { init(): void, update(data): void, digest(): Buffer }
// Digests come in rsync's byte order (SIVAL64: little-endian; xxh128's low 64 bits first).
#include <napi.h>

#define XXH_INLINE_ALL
#include "third_party/xxhash.h"

#include <cstdint>

namespace {

enum Kind { kXxh64 = 0, kXxh3 = 1, kXxh128 = 2 };

void PutLE64(uint8_t* out, uint64_t v) {
  for (int i = 0; i < 8; i++) out[i] = static_cast<uint8_t>(v >> (8 * i));
}

bool ReadKindSeed(const Napi::CallbackInfo& info, int* kind, uint64_t* seed) {
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber()) return false;
  *kind = info[0].As<Napi::Number>().Int32Value();
  if (*kind < kXxh64 || *kind > kXxh128) return false;
  uint64_t low = info[1].As<Napi::Number>().Uint32Value();
  uint64_t high = info[2].As<Napi::Number>().Uint32Value();
  *seed = (high << 32) | low;
  return true;
}

Napi::Buffer<uint8_t> Digest(Napi::Env env, int kind, uint64_t h64, XXH128_hash_t h128) {
  if (kind == kXxh128) {
    Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, 16);
    PutLE64(out.Data(), h128.low64);
    PutLE64(out.Data() + 8, h128.high64);
    return out;
  }
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, 8);
  PutLE64(out.Data(), h64);
  return out;
}

class XxHashStream : public Napi::ObjectWrap<XxHashStream> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "XxHashStream", {
      InstanceMethod("init", &XxHashStream::Init),
      InstanceMethod("update", &XxHashStream::Update),
      InstanceMethod("digest", &XxHashStream::DigestNow),
    });
  }

  explicit XxHashStream(const Napi::CallbackInfo& info) : Napi::ObjectWrap<XxHashStream>(info) {
    if (!ReadKindSeed(info, &kind_, &seed_)) {
      Napi::TypeError::New(info.Env(), "XxHashStream(kind 0..2, seedLow, seedHigh)").ThrowAsJavaScriptException();
      return;
    }
    Reset();
  }

 private:
  void Reset() {
    if (kind_ == kXxh64) XXH64_reset(&h64_, seed_);
    else if (kind_ == kXxh3) XXH3_64bits_reset_withSeed(&h3_, seed_);
    else XXH3_128bits_reset_withSeed(&h3_, seed_);
  }

  Napi::Value Init(const Napi::CallbackInfo& info) {
    Reset();
    return info.Env().Undefined();
  }

  Napi::Value Update(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsTypedArray()) {
      Napi::TypeError::New(info.Env(), "update(data: Uint8Array)").ThrowAsJavaScriptException();
      return info.Env().Undefined();
    }
    Napi::Uint8Array data = info[0].As<Napi::Uint8Array>();
    if (kind_ == kXxh64) XXH64_update(&h64_, data.Data(), data.ByteLength());
    else if (kind_ == kXxh3) XXH3_64bits_update(&h3_, data.Data(), data.ByteLength());
    else XXH3_128bits_update(&h3_, data.Data(), data.ByteLength());
    return info.Env().Undefined();
  }

  Napi::Value DigestNow(const Napi::CallbackInfo& info) {
    if (kind_ == kXxh64) return Digest(info.Env(), kind_, XXH64_digest(&h64_), XXH128_hash_t{});
    if (kind_ == kXxh3) return Digest(info.Env(), kind_, XXH3_64bits_digest(&h3_), XXH128_hash_t{});
    return Digest(info.Env(), kind_, 0, XXH3_128bits_digest(&h3_));
  }

  int kind_ = kXxh128;
  uint64_t seed_ = 0;
  XXH64_state_t h64_;
  XXH3_state_t h3_;
};

}  // namespace

Napi::Value XxhashOnce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int kind;
  uint64_t seed;
  if (!ReadKindSeed(info, &kind, &seed) || info.Length() < 4 || !info[3].IsTypedArray()) {
    Napi::TypeError::New(env, "xxhashOnce(kind 0..2, seedLow, seedHigh, data: Uint8Array)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Uint8Array data = info[3].As<Napi::Uint8Array>();
  if (kind == kXxh64) return Digest(env, kind, XXH64(data.Data(), data.ByteLength(), seed), XXH128_hash_t{});
  if (kind == kXxh3) return Digest(env, kind, XXH3_64bits_withSeed(data.Data(), data.ByteLength(), seed), XXH128_hash_t{});
  return Digest(env, kind, 0, XXH3_128bits_withSeed(data.Data(), data.ByteLength(), seed));
}

Napi::Function XxHashStreamClass(Napi::Env env) {
  return XxHashStream::Define(env);
}
