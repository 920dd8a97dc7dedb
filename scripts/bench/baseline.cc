// Bare libtorch loop: the reference the addon is measured against in `npm run bench`.
//   ts_bench_baseline MODEL MODE BATCH SIZE ITERS
// MODE: forward (inference mode) | fwdbwd (forward, then backward of the summed scores to the input).
// Prints one JSON line: {"mode":..., "batch":..., "msPerIter":...}.
#include <chrono>
#include <cstdio>
#include <string>

#include <torch/csrc/autograd/autograd.h>

#include "core/model.h"

int main(int argc, char** argv) {
  if (argc < 6) {
    std::fprintf(stderr, "usage: %s MODEL forward|fwdbwd BATCH SIZE ITERS\n", argv[0]);
    return 2;
  }
  ts::set_threads(0);
  ts::ModelOptions options;
  auto model = ts::Model::load_file(argv[1], options);
  std::string mode = argv[2];
  int64_t batch = std::stoll(argv[3]), size = std::stoll(argv[4]), iters = std::stoll(argv[5]);
  int64_t channels = model->input_channels() > 0 ? model->input_channels() : 3;
  at::Tensor x = at::rand({batch, channels, size, size});
  auto step = [&] {
    if (mode == "forward") {
      c10::InferenceMode guard;
      model->forward(x);
    } else {
      at::Tensor xi = x.clone().requires_grad_(true);
      at::Tensor y = model->forward(xi).sum();
      auto g = torch::autograd::grad({y}, {xi});
    }
  };
  for (int i = 0; i < 3; ++i) step();
  auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < iters; ++i) step();
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / iters;
  std::printf("{\"mode\":\"%s\",\"batch\":%lld,\"size\":%lld,\"msPerIter\":%.6f,\"threads\":%d}\n", mode.c_str(),
              static_cast<long long>(batch), static_cast<long long>(size), ms, ts::get_threads());
  return 0;
}
