// The packed directory read of dirstat.cc, shared with dir-prefetch.cc (which runs it on its own
// thread): the records of `path` (format in dirstat.cc) into `out`; 0, or the errno of the call
// named in `failedCall` ("opendir" or "scandir"). `noFollow`: a symlink as `path` itself is not
// followed (ELOOP or ENOTDIR), as the receiver lists only what is a directory itself.
#pragma once

#include <string>
#include <vector>

// Bytes of a record before its name (u32 err at 0, u32 mode at 4, ..., u16 name_len at 64).
constexpr size_t kDirRecordFixed = 66;

int ReadDirRecords(const std::string& path, std::vector<char>& out, const char** failedCall, bool noFollow = false);
