{
  "targets": [
    {
      "target_name": "sluice_native",
      "sources": [
        "native/addon.cc",
        "native/cgroup.cc",
        "native/dataplane.cc",
        "native/errors.cc",
        "native/inspect.cc",
        "native/layouts.cc",
        "native/mapops.cc",
        "native/maps.cc",
        "native/netns.cc",
        "native/testrun.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "bpf/out",
        "bpf/include"
      ],
      "defines": ["NAPI_CPP_EXCEPTIONS", "NAPI_VERSION=8"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
      "libraries": ["-lbpf", "-lelf", "-lz"]
    }
  ]
}
