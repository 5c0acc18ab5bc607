// Extended attributes of a path, never following a final symlink (rsync's -X on Linux reads and
// writes them with the l* calls: lib/sysxattrs.c sys_llistxattr, sys_lgetxattr, sys_lsetxattr,
// sys_lremovexattr). Node has none of these calls.
//
// JS API, the object `xattr` of the addon (paths are Buffers: names on disk are bytes):
//   list(path: Buffer): Buffer      llistxattr: the names, each ending in a NUL ("" when the
//                                         filesystem has no xattrs: ENOTSUP, as rsync treats it)
//   get(path: Buffer, name: Buffer): Buffer | null   lgetxattr (null: ENODATA, the name is gone)
//   set(path: Buffer, name: Buffer, value: Buffer): void   lsetxattr
//   remove(path: Buffer, name: Buffer): void               lremovexattr (ENODATA ignored)
// Sizes are bounded (a list or value over the kernel's 64 KiB XATTR_SIZE_MAX cannot exist on Linux,
// the bound is kept explicit): a larger answer is E2BIG. Failures throw an Error whose `code` is the
// errno name, like Node's fs.
#include <napi.h>

#include <errno.h>
#include <string.h>
#include <sys/xattr.h>

#include <string>
#include <vector>

namespace {

// The largest name list or value we read: Linux's XATTR_LIST_MAX and XATTR_SIZE_MAX are 64 KiB.
constexpr size_t kMaxXattrBytes = 64 * 1024;

const char* XattrErrnoName(int err) {
  switch (err) {
    case ENOENT: return "ENOENT";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ENOTDIR: return "ENOTDIR";
    case ELOOP: return "ELOOP";
    case EROFS: return "EROFS";
    case EINVAL: return "EINVAL";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ENOTSUP: return "ENOTSUP";
    case ENODATA: return "ENODATA";
    case ERANGE: return "ERANGE";
    case E2BIG: return "E2BIG";
    case ENOSPC: return "ENOSPC";
    case EDQUOT: return "EDQUOT";
    default: return "EIO";
  }
}

Napi::Value XattrFail(Napi::Env env, int err, const char* call, const std::string& path) {
  Napi::Error e = Napi::Error::New(env, std::string(call) + ": " + strerror(err));
  e.Set("code", Napi::String::New(env, XattrErrnoName(err)));
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("syscall", Napi::String::New(env, call));
  e.Set("path", Napi::String::New(env, path));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

// A Buffer argument as a C string; false when it is missing or holds a NUL.
bool CString(const Napi::CallbackInfo& info, size_t at, std::string* out) {
  if (info.Length() <= at || !info[at].IsBuffer()) return false;
  Napi::Buffer<char> raw = info[at].As<Napi::Buffer<char>>();
  out->assign(raw.Data(), raw.Length());
  return out->find('\0') == std::string::npos && !out->empty();
}

}  // namespace

Napi::Value ListXattrs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (!CString(info, 0, &path)) return XattrFail(env, EINVAL, "llistxattr", path);
  std::vector<char> buf(1024);
  for (int tries = 0; tries < 4; tries++) {
    ssize_t len = llistxattr(path.c_str(), buf.data(), buf.size());
    if (len >= 0) return Napi::Buffer<char>::Copy(env, buf.data(), static_cast<size_t>(len));
    if (errno == ENOTSUP) return Napi::Buffer<char>::New(env, 0);
    if (errno != ERANGE) return XattrFail(env, errno, "llistxattr", path);
    len = llistxattr(path.c_str(), nullptr, 0);
    if (len < 0) return XattrFail(env, errno, "llistxattr", path);
    if (static_cast<size_t>(len) > kMaxXattrBytes) return XattrFail(env, E2BIG, "llistxattr", path);
    buf.resize(static_cast<size_t>(len) + 1024);
  }
  return XattrFail(env, ERANGE, "llistxattr", path);
}

Napi::Value GetXattr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path, name;
  if (!CString(info, 0, &path) || !CString(info, 1, &name)) return XattrFail(env, EINVAL, "lgetxattr", path);
  std::vector<char> buf(256);
  for (int tries = 0; tries < 4; tries++) {
    ssize_t len = lgetxattr(path.c_str(), name.c_str(), buf.data(), buf.size());
    if (len >= 0) return Napi::Buffer<char>::Copy(env, buf.data(), static_cast<size_t>(len));
    if (errno == ENODATA) return env.Null();
    if (errno != ERANGE) return XattrFail(env, errno, "lgetxattr", path);
    len = lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
    if (len < 0) return errno == ENODATA ? env.Null() : XattrFail(env, errno, "lgetxattr", path);
    if (static_cast<size_t>(len) > kMaxXattrBytes) return XattrFail(env, E2BIG, "lgetxattr", path);
    buf.resize(static_cast<size_t>(len) + 1);
  }
  return XattrFail(env, ERANGE, "lgetxattr", path);
}

Napi::Value SetXattr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path, name;
  if (!CString(info, 0, &path) || !CString(info, 1, &name) || info.Length() < 3 || !info[2].IsBuffer()) {
    return XattrFail(env, EINVAL, "lsetxattr", path);
  }
  Napi::Buffer<char> value = info[2].As<Napi::Buffer<char>>();
  if (value.Length() > kMaxXattrBytes) return XattrFail(env, E2BIG, "lsetxattr", path);
  if (lsetxattr(path.c_str(), name.c_str(), value.Data(), value.Length(), 0) != 0) {
    return XattrFail(env, errno, "lsetxattr", path);
  }
  return env.Undefined();
}

Napi::Value RemoveXattr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path, name;
  if (!CString(info, 0, &path) || !CString(info, 1, &name)) return XattrFail(env, EINVAL, "lremovexattr", path);
  if (lremovexattr(path.c_str(), name.c_str()) != 0 && errno != ENODATA) {
    return XattrFail(env, errno, "lremovexattr", path);
  }
  return env.Undefined();
}

// The four calls as one object, the addon's `xattr`.
Napi::Object XattrFunctions(Napi::Env env) {
  Napi::Object calls = Napi::Object::New(env);
  calls.Set("list", Napi::Function::New(env, ListXattrs, "list"));
  calls.Set("get", Napi::Function::New(env, GetXattr, "get"));
  calls.Set("set", Napi::Function::New(env, SetXattr, "set"));
  calls.Set("remove", Napi::Function::New(env, RemoveXattr, "remove"));
  return calls;
}
