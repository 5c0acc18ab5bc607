{
  "targets": [
    {
      "target_name": "inotify",
      "sources": ["native/inotify.cc", "native/memory.cc", "native/quickack.cc", "native/times.cc", "native/syslog.cc", "native/dirstat.cc", "native/compress-libs.cc", "native/xattr.cc", "native/punch-hole.cc", "native/read-small.cc", "native/file-commit.cc", "native/copy-range.cc", "native/xxhash.cc", "native/dir-prefetch.cc"],
      "libraries": ["-ldl"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra"],
      "conditions": [
        ["OS!='linux'", { "type": "none", "sources": [] }]
      ]
    }
  ]
}
