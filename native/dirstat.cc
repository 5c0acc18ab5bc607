// One directory read and every entry's lstat in one call, for the sender's walk of big trees
// (docs/bench.md "big trees"): getdents64 through readdir(3), then fstatat(dirfd, name,
// AT_SYMLINK_NOFOLLOW) for each name, packed into one buffer. From JS this replaces a readdir
// plus one lstat call (and one Stats object with four Dates) per file. Counterpart: rsync flist.c
// send_directory (readdir) and make_file (link_stat).
//
// JS API:
//   readDirStats(path: Buffer, noFollow = false): Buffer   (noFollow: O_NOFOLLOW on `path` itself)
// Names come in strcmp order (as Node's readdir gives them), '.' and '..' left out. Each record,
// in host byte order:
//   u32 err (0, or the errno of that entry's fstatat), u32 mode, u32 uid, u32 gid,
//   u32 mtime_nsec, u32 nlink (capped), u32 rdev_major, u32 rdev_minor,
//   f64 size, f64 mtime_sec, u64 dev, u64 ino, u16 name_len, name bytes.
// A directory that cannot be opened or read throws an Error whose `code` is the errno name.
#include <napi.h>

#include "dirstat.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace {

const char* DirErrnoName(int err) {
  switch (err) {
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case ENOTDIR: return "ENOTDIR";
    case ELOOP: return "ELOOP";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENOMEM: return "ENOMEM";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    default: return "EIO";
  }
}

Napi::Value DirFail(Napi::Env env, int err, const char* call, const std::string& path) {
  Napi::Error e = Napi::Error::New(env, std::string(DirErrnoName(err)) + ": " + strerror(err) + ", " + call + " '" + path + "'");
  e.Set("code", Napi::String::New(env, DirErrnoName(err)));
  e.Set("errno", Napi::Number::New(env, -err));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

template <typename T>
void Put(std::vector<char>& out, size_t at, T value) {
  memcpy(out.data() + at, &value, sizeof value);
}

}  // namespace

int ReadDirRecords(const std::string& path, std::vector<char>& out, const char** failedCall, bool noFollow) {
  int dfd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | (noFollow ? O_NOFOLLOW : 0));
  if (dfd < 0) {
    *failedCall = "opendir";
    return errno;
  }
  DIR* dir = fdopendir(dfd);
  if (!dir) {
    int err = errno;
    close(dfd);
    *failedCall = "opendir";
    return err;
  }
  std::vector<std::string> names;
  for (;;) {
    errno = 0;
    struct dirent* de = readdir(dir);
    if (!de) break;
    const char* n = de->d_name;
    if (n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0'))) continue;
    names.emplace_back(n);
  }
  if (errno != 0) {
    int err = errno;
    closedir(dir);
    *failedCall = "scandir";
    return err;
  }
  std::sort(names.begin(), names.end());

  size_t total = 0;
  for (const std::string& n : names) total += kDirRecordFixed + n.size();
  out.resize(total);
  size_t at = 0;
  for (const std::string& n : names) {
    struct stat st;
    uint32_t err = fstatat(dfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : static_cast<uint32_t>(errno);
    if (err) memset(&st, 0, sizeof st);
    Put<uint32_t>(out, at + 0, err);
    Put<uint32_t>(out, at + 4, static_cast<uint32_t>(st.st_mode));
    Put<uint32_t>(out, at + 8, static_cast<uint32_t>(st.st_uid));
    Put<uint32_t>(out, at + 12, static_cast<uint32_t>(st.st_gid));
    Put<uint32_t>(out, at + 16, static_cast<uint32_t>(st.st_mtim.tv_nsec));
    Put<uint32_t>(out, at + 20, st.st_nlink > 0xffffffffu ? 0xffffffffu : static_cast<uint32_t>(st.st_nlink));
    Put<uint32_t>(out, at + 24, static_cast<uint32_t>(major(st.st_rdev)));
    Put<uint32_t>(out, at + 28, static_cast<uint32_t>(minor(st.st_rdev)));
    Put<double>(out, at + 32, static_cast<double>(st.st_size));
    Put<double>(out, at + 40, static_cast<double>(st.st_mtim.tv_sec));
    Put<uint64_t>(out, at + 48, static_cast<uint64_t>(st.st_dev));
    Put<uint64_t>(out, at + 56, static_cast<uint64_t>(st.st_ino));
    Put<uint16_t>(out, at + 64, static_cast<uint16_t>(n.size()));
    memcpy(out.data() + at + kDirRecordFixed, n.data(), n.size());
    at += kDirRecordFixed + n.size();
  }
  closedir(dir);  // closes dfd too
  return 0;
}

Napi::Value ReadDirStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsBuffer()) return DirFail(env, EINVAL, "opendir", "");
  Napi::Buffer<char> arg = info[0].As<Napi::Buffer<char>>();
  std::string path(arg.Data(), arg.Length());
  if (path.find('\0') != std::string::npos) return DirFail(env, EINVAL, "opendir", "");
  bool noFollow = info.Length() > 1 && info[1].ToBoolean().Value();
  std::vector<char> out;
  const char* call = "opendir";
  int err = ReadDirRecords(path, out, &call, noFollow);
  if (err) return DirFail(env, err, call, path);
  return Napi::Buffer<char>::Copy(env, out.data(), out.size());
}
