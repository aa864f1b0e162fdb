{
  "targets": [
    {
      "target_name": "nrt_native",
      "sources": [
        "src/addon.cc",
        "src/model.cc",
        "src/layer.cc",
        "src/sampler.cc",
        "src/optim.cc",
        "src/kernels/matmul.cc",
        "src/kernels/lora.cc",
        "src/kernels/rmsnorm.cc",
        "src/kernels/rope.cc",
        "src/kernels/attention.cc",
        "src/kernels/swiglu.cc",
        "src/kernels/xent.cc",
        "src/kernels/embedding.cc"
      ],
      "include_dirs": [
        "<!@(node -p \"require('node-addon-api').include\")",
        "/usr/include/x86_64-linux-gnu/openblas-openmp"
      ],
      "dependencies": ["<!(node -p \"require('node-addon-api').gyp\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-O2"],
      "cflags_cc": ["-std=c++17", "-O3", "-march=native", "-fopenmp", "-fexceptions", "-fno-math-errno"],
      "ldflags": ["-fopenmp", "-Wl,-rpath,/usr/lib/x86_64-linux-gnu/openblas-openmp"],
      "libraries": ["-L/usr/lib/x86_64-linux-gnu/openblas-openmp", "-lopenblas", "-lgomp"]
    }
  ]
}
