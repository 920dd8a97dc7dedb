// Bare libtorch loop: the reference the addon is measured against in `npm run bench`.
//   ts_bench_baseline MODEL MODE BATCH SIZE ITERS [DEVICE]
// MODE: forward (inference mode) | fwdbwd (forward, then backward of the summed scores to the input);
// fwdbwd-cl, fwdbwd-frozen, fwdbwd-frozen-cl, fwdbwd-frozen-cl-bf16: the same on the copy extremal
// perturbation's loop runs (core/loop_module.h: channels-last weights and input, frozen with BatchNorm
// folded, both, both in bfloat16 (libtorch 2.x only)).
// DEVICE: cpu (default) | cuda | cuda:N; on CUDA the timing waits for the device before and after.
// Prints one JSON line: {"mode":..., "batch":..., "msPerIter":...}, on the CPU in fwdbwd mode also the
// forward's and the backward's shares ("forwardMs", "backwardMs").
//   ts_bench_baseline make-cnn PATH WIDTH
// writes the extremal-perturbation bench's CNN (five stride-2 3x3 convolutions with ReLU of 32, 64, 128,
// 256, 256 channels times WIDTH, global average pooling, a 10-class linear layer; He-initialised from a
// fixed seed) as TorchScript, so that the bench needs no Python.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>

#include <torch/csrc/autograd/autograd.h>
#include <torch/script.h>

#include "core/loop_module.h"

static int make_cnn(const std::string& path, double width) {
  at::manual_seed(1);
  torch::jit::Module m("BenchCNN");
  const int64_t base[5] = {32, 64, 128, 256, 256};
  int64_t in = 3;
  std::string body = "def forward(self, x):\n";
  for (int i = 0; i < 5; ++i) {
    const int64_t out = std::max<int64_t>(4, std::llround(base[i] * width));
    m.register_parameter("w" + std::to_string(i), at::randn({out, in, 3, 3}).mul(std::sqrt(2.0 / static_cast<double>(in * 9))), false);
    m.register_parameter("b" + std::to_string(i), at::zeros({out}), false);
    body += "    x = torch.relu(torch.conv2d(x, self.w" + std::to_string(i) + ", self.b" + std::to_string(i) + ", [2, 2], [1, 1]))\n";
    in = out;
  }
  m.register_parameter("fc_w", at::randn({10, in}).mul(std::sqrt(1.0 / static_cast<double>(in))), false);
  m.register_parameter("fc_b", at::zeros({10}), false);
  body += "    x = torch.flatten(torch.adaptive_avg_pool2d(x, [1, 1]), 1)\n";
  body += "    return torch.linear(x, self.fc_w, self.fc_b)\n";
  m.define(body);
  m.save(path);
  return 0;
}

#include "core/model.h"

static int run(int argc, char** argv);

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ts_bench_baseline: %s\n", e.what());
    return 1;
  }
}

static int run(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "make-cnn") return make_cnn(argv[2], std::stod(argv[3]));
  if (argc < 6) {
    std::fprintf(stderr, "usage: %s MODEL forward|fwdbwd BATCH SIZE ITERS [DEVICE]\n", argv[0]);
    return 2;
  }
  ts::set_threads(0);
  ts::ModelOptions options;
  if (argc > 6) options.device = argv[6];
  auto model = ts::Model::load_file(argv[1], options);
  std::string mode = argv[2];
  const bool cl = mode == "fwdbwd-cl" || mode == "fwdbwd-frozen-cl" || mode == "fwdbwd-frozen-cl-bf16";
  const bool frozen = mode == "fwdbwd-frozen" || mode == "fwdbwd-frozen-cl" || mode == "fwdbwd-frozen-cl-bf16";
  const bool bf16 = mode == "fwdbwd-frozen-cl-bf16";
  if (mode != "forward" && mode != "fwdbwd" && !cl && !frozen) {
    std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
    return 2;
  }
  if (bf16 && !ts::bf16_unsupported().empty()) {
    std::fprintf(stderr, "bf16: %s\n", ts::bf16_unsupported().c_str());
    return 1;
  }
  ts::LoopModule loop = mode == "fwdbwd" || mode == "forward" ? ts::LoopModule{} : ts::make_loop_module(model->module(), cl, frozen, bf16);
  if (frozen && !loop.frozen) {
    std::fprintf(stderr, "freezing failed: %s\n", loop.frozen_error.c_str());
    return 1;
  }
  int64_t batch = std::stoll(argv[3]), size = std::stoll(argv[4]), iters = std::stoll(argv[5]);
  int64_t channels = model->input_channels() > 0 ? model->input_channels() : 3;
  at::Tensor x = at::rand({batch, channels, size, size}).to(model->device());
  at::Tensor last;
  // On the CPU (synchronous) the forward's and the backward's shares are timed too.
  const bool split = model->device().is_cpu();
  double fwd_ms = 0, bwd_ms = 0;
  auto step = [&] {
    if (mode == "forward") {
      c10::InferenceMode guard;
      last = model->forward(x);
    } else {
      at::Tensor xi = x.clone().requires_grad_(true);
      const auto t0 = std::chrono::steady_clock::now();
      at::Tensor in = mode == "fwdbwd" ? xi : model->prepare(xi);
      if (bf16) in = in.to(at::kBFloat16);
      if (cl) in = in.contiguous(at::MemoryFormat::ChannelsLast);
      at::Tensor y = mode == "fwdbwd" ? model->forward(xi).sum() : model->scores(loop.module, in).to(at::kFloat).sum();
      const auto t1 = std::chrono::steady_clock::now();
      last = torch::autograd::grad({y}, {xi})[0];
      if (split) {
        fwd_ms += std::chrono::duration<double, std::milli>(t1 - t0).count();
        bwd_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t1).count();
      }
    }
  };
  auto wait = [&] {  // a host copy waits for the device's queue (no-op cost on the CPU)
    if (last.defined() && !last.device().is_cpu()) last.flatten()[0].item<float>();
  };
  for (int i = 0; i < 3; ++i) step();
  wait();
  fwd_ms = bwd_ms = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < iters; ++i) step();
  wait();
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / iters;
  std::printf("{\"mode\":\"%s\",\"batch\":%lld,\"size\":%lld,\"msPerIter\":%.6f,\"threads\":%d", mode.c_str(), static_cast<long long>(batch),
              static_cast<long long>(size), ms, ts::get_threads());
  if (split && mode != "forward") std::printf(",\"forwardMs\":%.6f,\"backwardMs\":%.6f", fwd_ms / iters, bwd_ms / iters);
  std::printf("}\n");
  return 0;
}
