// zstd and lz4 for rsync's compressed token formats (docs/protocol.md [token-zstd] [token-lz4]),
// from the system's libzstd.so.1 and liblz4.so.1 opened with dlopen at first use: nothing links at
// build time and no headers are needed (the few entry points used are declared below, from the
// libraries' stable ABI). A library that is missing is reported as such, and the caller leaves its
// name out of the compressions it offers, as an rsync built without it does.
// Counterpart: rsync token.c send_zstd_token / recv_zstd_token, send_compressed_token /
// recv_compressed_token (what it calls of the two libraries).
//
// JS API: compressLibs() → { zstd: ZstdLib | { error }, lz4: Lz4Lib | { error } } (src/addon.ts)
//   zstd.createCompressor(level) → handle; zstd.compress(handle, input, inPos, out, flush) →
//     [inPos, outPos, remaining]   (ZSTD_compressStream2, ZSTD_e_flush or ZSTD_e_continue)
//   zstd.createDecompressor(windowLogMax) → handle; zstd.decompress(handle, input, inPos, inEnd, out) →
//     [inPos, outPos, hint]        (ZSTD_decompressStream)
//   lz4.compressBound(n); lz4.compress(src, dst) → bytes (0: failed); lz4.decompress(src, dst) → bytes (< 0: bad data)
#include <napi.h>

#include <dlfcn.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace {

// The ABI of zstd (stable since 1.4.0) and lz4 (stable since 1.7): the few types and calls used.
struct ZstdInBuffer {
  const void* src;
  size_t size;
  size_t pos;
};
struct ZstdOutBuffer {
  void* dst;
  size_t size;
  size_t pos;
};
constexpr int ZSTD_C_COMPRESSION_LEVEL = 100;  // ZSTD_c_compressionLevel
constexpr int ZSTD_D_WINDOW_LOG_MAX = 100;     // ZSTD_d_windowLogMax
constexpr int ZSTD_E_CONTINUE = 0;
constexpr int ZSTD_E_FLUSH = 1;

// What V8 is told one zstd context holds (a level-3 compressor with its 2 MiB window and tables,
// a decompressor with its window), so that contexts of finished sessions are collected soon.
constexpr int64_t ZSTD_CONTEXT_COST = 4 << 20;

struct Zstd {
  void* (*createCCtx)();
  size_t (*freeCCtx)(void*);
  size_t (*cctxSetParameter)(void*, int, int);
  size_t (*compressStream2)(void*, ZstdOutBuffer*, ZstdInBuffer*, int);
  void* (*createDCtx)();
  size_t (*freeDCtx)(void*);
  size_t (*dctxSetParameter)(void*, int, int);
  size_t (*decompressStream)(void*, ZstdOutBuffer*, ZstdInBuffer*);
  unsigned (*isError)(size_t);
  const char* (*getErrorName)(size_t);
  int (*minCLevel)();
  int (*maxCLevel)();
  int (*defaultCLevel)();  // 1.5.0+; absent before (then 3, ZSTD_CLEVEL_DEFAULT)
  unsigned (*versionNumber)();
  size_t (*dStreamOutSize)();
};

struct Lz4 {
  int (*compressDefault)(const char*, char*, int, int);
  int (*decompressSafe)(const char*, char*, int, int);
  int (*compressBound)(int);
  int (*versionNumber)();
};

// Each library is opened once per process; `error` says why it could not be.
struct Loaded {
  bool tried = false;
  void* handle = nullptr;
  std::string error;
};
Loaded zstdLib, lz4Lib;
Zstd zstd;
Lz4 lz4;

template <typename F>
bool Symbol(Loaded& lib, const char* name, F& out, bool optional = false) {
  out = reinterpret_cast<F>(dlsym(lib.handle, name));
  if (out == nullptr && !optional) {
    lib.error = std::string("symbol ") + name + " missing";
    return false;
  }
  return true;
}

bool Open(Loaded& lib, const char* soname) {
  if (lib.tried) return lib.handle != nullptr;
  lib.tried = true;
  lib.handle = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (lib.handle == nullptr) {
    const char* why = dlerror();
    lib.error = why != nullptr ? why : (std::string(soname) + ": cannot open");
    return false;
  }
  return true;
}

bool LoadZstd() {
  if (zstdLib.tried) return zstdLib.handle != nullptr && zstdLib.error.empty();
  if (!Open(zstdLib, "libzstd.so.1")) return false;
  bool ok = Symbol(zstdLib, "ZSTD_createCCtx", zstd.createCCtx) && Symbol(zstdLib, "ZSTD_freeCCtx", zstd.freeCCtx) &&
            Symbol(zstdLib, "ZSTD_CCtx_setParameter", zstd.cctxSetParameter) &&
            Symbol(zstdLib, "ZSTD_compressStream2", zstd.compressStream2) && Symbol(zstdLib, "ZSTD_createDCtx", zstd.createDCtx) &&
            Symbol(zstdLib, "ZSTD_freeDCtx", zstd.freeDCtx) && Symbol(zstdLib, "ZSTD_DCtx_setParameter", zstd.dctxSetParameter) &&
            Symbol(zstdLib, "ZSTD_decompressStream", zstd.decompressStream) && Symbol(zstdLib, "ZSTD_isError", zstd.isError) &&
            Symbol(zstdLib, "ZSTD_getErrorName", zstd.getErrorName) && Symbol(zstdLib, "ZSTD_minCLevel", zstd.minCLevel) &&
            Symbol(zstdLib, "ZSTD_maxCLevel", zstd.maxCLevel) && Symbol(zstdLib, "ZSTD_defaultCLevel", zstd.defaultCLevel, true) &&
            Symbol(zstdLib, "ZSTD_versionNumber", zstd.versionNumber) && Symbol(zstdLib, "ZSTD_DStreamOutSize", zstd.dStreamOutSize);
  return ok;
}

bool LoadLz4() {
  if (lz4Lib.tried) return lz4Lib.handle != nullptr && lz4Lib.error.empty();
  if (!Open(lz4Lib, "liblz4.so.1")) return false;
  return Symbol(lz4Lib, "LZ4_compress_default", lz4.compressDefault) && Symbol(lz4Lib, "LZ4_decompress_safe", lz4.decompressSafe) &&
         Symbol(lz4Lib, "LZ4_compressBound", lz4.compressBound) && Symbol(lz4Lib, "LZ4_versionNumber", lz4.versionNumber);
}

Napi::Value Fail(Napi::Env env, const std::string& message) {
  Napi::Error::New(env, message).ThrowAsJavaScriptException();
  return env.Undefined();
}

// A typed array argument's bytes; false (and a thrown TypeError) when it is not a Uint8Array.
bool Bytes(const Napi::CallbackInfo& info, size_t i, uint8_t*& data, size_t& length) {
  if (info.Length() <= i || !info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    Napi::TypeError::New(info.Env(), "expected a Uint8Array").ThrowAsJavaScriptException();
    return false;
  }
  auto array = info[i].As<Napi::Uint8Array>();
  data = array.Data();
  length = array.ElementLength();
  return true;
}

// An offset argument in [0, limit]; false (and a thrown RangeError) otherwise.
bool Offset(const Napi::CallbackInfo& info, size_t i, size_t limit, size_t& out) {
  if (info.Length() <= i || !info[i].IsNumber()) {
    Napi::TypeError::New(info.Env(), "expected an offset").ThrowAsJavaScriptException();
    return false;
  }
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= 0 && v <= static_cast<double>(limit))) {
    Napi::RangeError::New(info.Env(), "offset out of range").ThrowAsJavaScriptException();
    return false;
  }
  out = static_cast<size_t>(v);
  return true;
}

Napi::Array Triple(Napi::Env env, size_t a, size_t b, size_t c) {
  Napi::Array r = Napi::Array::New(env, 3);
  r.Set(uint32_t(0), Napi::Number::New(env, static_cast<double>(a)));
  r.Set(uint32_t(1), Napi::Number::New(env, static_cast<double>(b)));
  r.Set(uint32_t(2), Napi::Number::New(env, static_cast<double>(c)));
  return r;
}

// rsync/token.c: send_zstd_token (the ZSTD_createCCtx and ZSTD_CCtx_setParameter part)
Napi::Value ZstdCreateCompressor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int level = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 3;
  void* cctx = zstd.createCCtx();
  if (cctx == nullptr) return Fail(env, "ZSTD_createCCtx failed");
  size_t r = zstd.cctxSetParameter(cctx, ZSTD_C_COMPRESSION_LEVEL, level);
  if (zstd.isError(r)) {
    zstd.freeCCtx(cctx);
    return Fail(env, std::string("ZSTD_CCtx_setParameter: ") + zstd.getErrorName(r));
  }
  Napi::MemoryManagement::AdjustExternalMemory(env, ZSTD_CONTEXT_COST);
  return Napi::External<void>::New(env, cctx, [](Napi::Env env, void* p) {
    zstd.freeCCtx(p);
    Napi::MemoryManagement::AdjustExternalMemory(env, -ZSTD_CONTEXT_COST);
  });
}

// rsync/token.c: send_zstd_token (one ZSTD_compressStream2 call)
Napi::Value ZstdCompress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 5 || !info[0].IsExternal()) return Fail(env, "zstd.compress(handle, input, inPos, out, flush)");
  void* cctx = info[0].As<Napi::External<void>>().Data();
  uint8_t *input, *out;
  size_t inLength, outLength, inPos;
  if (!Bytes(info, 1, input, inLength) || !Offset(info, 2, inLength, inPos) || !Bytes(info, 3, out, outLength)) return env.Undefined();
  ZstdInBuffer in{input, inLength, inPos};
  ZstdOutBuffer o{out, outLength, 0};
  size_t r = zstd.compressStream2(cctx, &o, &in, info[4].ToBoolean().Value() ? ZSTD_E_FLUSH : ZSTD_E_CONTINUE);
  if (zstd.isError(r)) return Fail(env, std::string("ZSTD_compressStream2: ") + zstd.getErrorName(r));
  return Triple(env, in.pos, o.pos, r);
}

// rsync/token.c: recv_zstd_token (ZSTD_createDCtx), with the window a peer may ask for bounded
Napi::Value ZstdCreateDecompressor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int windowLogMax = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 27;
  void* dctx = zstd.createDCtx();
  if (dctx == nullptr) return Fail(env, "ZSTD_createDCtx failed");
  size_t r = zstd.dctxSetParameter(dctx, ZSTD_D_WINDOW_LOG_MAX, windowLogMax);
  if (zstd.isError(r)) {
    zstd.freeDCtx(dctx);
    return Fail(env, std::string("ZSTD_DCtx_setParameter: ") + zstd.getErrorName(r));
  }
  Napi::MemoryManagement::AdjustExternalMemory(env, ZSTD_CONTEXT_COST);
  return Napi::External<void>::New(env, dctx, [](Napi::Env env, void* p) {
    zstd.freeDCtx(p);
    Napi::MemoryManagement::AdjustExternalMemory(env, -ZSTD_CONTEXT_COST);
  });
}

// rsync/token.c: recv_zstd_token (one ZSTD_decompressStream call)
Napi::Value ZstdDecompress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 5 || !info[0].IsExternal()) return Fail(env, "zstd.decompress(handle, input, inPos, inEnd, out)");
  void* dctx = info[0].As<Napi::External<void>>().Data();
  uint8_t *input, *out;
  size_t inLength, outLength, inPos, inEnd;
  if (!Bytes(info, 1, input, inLength) || !Offset(info, 3, inLength, inEnd) || !Offset(info, 2, inEnd, inPos) ||
      !Bytes(info, 4, out, outLength)) {
    return env.Undefined();
  }
  ZstdInBuffer in{input, inEnd, inPos};
  ZstdOutBuffer o{out, outLength, 0};
  size_t r = zstd.decompressStream(dctx, &o, &in);
  if (zstd.isError(r)) return Fail(env, std::string("ZSTD_decompressStream: ") + zstd.getErrorName(r));
  return Triple(env, in.pos, o.pos, r);
}

// rsync/token.c: send_compressed_token (LZ4_compress_default)
Napi::Value Lz4Compress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint8_t *src, *dst;
  size_t srcLength, dstLength;
  if (!Bytes(info, 0, src, srcLength) || !Bytes(info, 1, dst, dstLength)) return env.Undefined();
  if (srcLength > 0x7e000000 || dstLength > 0x7fffffff) return Fail(env, "lz4: buffer too large");
  int n = lz4.compressDefault(reinterpret_cast<const char*>(src), reinterpret_cast<char*>(dst), static_cast<int>(srcLength),
                              static_cast<int>(dstLength));
  return Napi::Number::New(env, n);
}

// rsync/token.c: recv_compressed_token (LZ4_decompress_safe: never writes past dst)
Napi::Value Lz4Decompress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint8_t *src, *dst;
  size_t srcLength, dstLength;
  if (!Bytes(info, 0, src, srcLength) || !Bytes(info, 1, dst, dstLength)) return env.Undefined();
  if (srcLength > 0x7fffffff || dstLength > 0x7fffffff) return Fail(env, "lz4: buffer too large");
  int n = lz4.decompressSafe(reinterpret_cast<const char*>(src), reinterpret_cast<char*>(dst), static_cast<int>(srcLength),
                             static_cast<int>(dstLength));
  return Napi::Number::New(env, n);
}

Napi::Value Lz4CompressBound(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int n = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0;
  return Napi::Number::New(env, lz4.compressBound(n));
}

Napi::Object ErrorObject(Napi::Env env, const std::string& why) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("error", Napi::String::New(env, why));
  return o;
}

}  // namespace

// The two libraries, each as its functions or as why it could not be opened.
Napi::Value CompressLibs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
  if (LoadZstd()) {
    Napi::Object z = Napi::Object::New(env);
    unsigned v = zstd.versionNumber();
    z.Set("version", Napi::String::New(env, std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." + std::to_string(v % 100)));
    z.Set("minLevel", Napi::Number::New(env, zstd.minCLevel()));
    z.Set("maxLevel", Napi::Number::New(env, zstd.maxCLevel()));
    z.Set("defaultLevel", Napi::Number::New(env, zstd.defaultCLevel != nullptr ? zstd.defaultCLevel() : 3));
    z.Set("outSize", Napi::Number::New(env, static_cast<double>(zstd.dStreamOutSize())));
    z.Set("createCompressor", Napi::Function::New(env, ZstdCreateCompressor, "createCompressor"));
    z.Set("compress", Napi::Function::New(env, ZstdCompress, "compress"));
    z.Set("createDecompressor", Napi::Function::New(env, ZstdCreateDecompressor, "createDecompressor"));
    z.Set("decompress", Napi::Function::New(env, ZstdDecompress, "decompress"));
    result.Set("zstd", z);
  } else {
    result.Set("zstd", ErrorObject(env, zstdLib.error));
  }
  if (LoadLz4()) {
    Napi::Object l = Napi::Object::New(env);
    int v = lz4.versionNumber();
    l.Set("version", Napi::String::New(env, std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." + std::to_string(v % 100)));
    l.Set("compressBound", Napi::Function::New(env, Lz4CompressBound, "compressBound"));
    l.Set("compress", Napi::Function::New(env, Lz4Compress, "compress"));
    l.Set("decompress", Napi::Function::New(env, Lz4Decompress, "decompress"));
    result.Set("lz4", l);
  } else {
    result.Set("lz4", ErrorObject(env, lz4Lib.error));
  }
  return result;
}
