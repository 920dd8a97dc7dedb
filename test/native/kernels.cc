// Native checks of the extremal-perturbation step's fused CPU kernels against their composed ATen
// formulations (the reference: TorchRay's own ops), values and gradients, on cases chosen to reach every
// branch: random values, many exact ties (masks full of 0s and 1s), k = 0 and k = n, negative values
// (the penalty's fallback), mirrored apply, masks at the ends of [0, 1], several geometries; and the process's thread count reaching every worker thread.
// Run by test/integration/native-kernels.test.ts; prints one line per check and exits 1 on a failure.
#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/autograd.h>

#include "core/loop_module.h"
#include "core/methods/extremal_perturbation/area_penalty.h"
#include "core/methods/extremal_perturbation/mask_generator.h"
#include "core/methods/extremal_perturbation/perturbation.h"
#include "core/model.h"

namespace {

int failures = 0;

// Max abs difference relative to the reference's largest magnitude (at least 1).
void check(const std::string& name, const at::Tensor& got, const at::Tensor& want, double tol) {
  const double scale = std::max(1.0, want.abs().max().item<double>());
  const double err = (got - want).abs().max().item<double>() / scale;  // NaN fails
  const bool ok = err <= tol;
  std::printf("%s %s: max difference %.3g of the largest value %.3g (tolerance %.3g)\n", ok ? "ok  " : "FAIL", name.c_str(), err, scale, tol);
  if (!ok) ++failures;
}

// Value and gradient (for a fixed random incoming gradient) of f_fused and f_ref at the same input.
void compare(const std::string& name, const at::Tensor& input, const std::function<at::Tensor(const at::Tensor&)>& fused,
             const std::function<at::Tensor(const at::Tensor&)>& reference, double tol, double grad_tol) {
  at::Tensor a = input.detach().clone().requires_grad_(true), b = input.detach().clone().requires_grad_(true);
  at::Tensor ya = fused(a), yb = reference(b);
  at::Tensor w = at::rand_like(ya);
  at::Tensor ga = torch::autograd::grad({ya}, {a}, {w})[0], gb = torch::autograd::grad({yb}, {b}, {w})[0];
  check(name + " value", ya, yb, tol);
  check(name + " gradient", ga, gb, grad_tol);
}

at::Tensor saturate(const at::Tensor& p, double zeros, double ones) {
  at::Tensor r = at::rand_like(p);
  return at::where(r < zeros, at::zeros_like(p), at::where(r < zeros + ones, at::ones_like(p), p));
}

// A small CNN with everything freezing removes: BatchNorm with non-trivial statistics after each
// convolution (one with a bias, one without), an eval-mode dropout, ReLU6 (hardtanh) as EfficientNet's.
torch::jit::Module loop_test_net() {
  torch::jit::Module m("LoopTestNet");
  auto bn = [&](const std::string& n, int64_t c) {
    m.register_parameter("g" + n, at::rand({c}).add(0.5), false);
    m.register_parameter("b" + n, at::randn({c}).mul(0.2), false);
    m.register_buffer("rm" + n, at::randn({c}).mul(0.3));
    m.register_buffer("rv" + n, at::rand({c}).add(0.3));
  };
  m.register_parameter("w1", at::randn({8, 3, 3, 3}).mul(0.4), false);
  bn("1", 8);
  m.register_parameter("w2", at::randn({16, 8, 3, 3}).mul(0.2), false);
  m.register_parameter("c2", at::randn({16}).mul(0.1), false);
  bn("2", 16);
  m.register_parameter("fw", at::randn({5, 16}).mul(0.3), false);
  m.register_parameter("fb", at::zeros({5}), false);
  m.define(R"(
def forward(self, x):
    x = torch.conv2d(x, self.w1, None, [1, 1], [1, 1])
    x = torch.batch_norm(x, self.g1, self.b1, self.rm1, self.rv1, False, 0.1, 1e-5, True)
    x = torch.relu(x)
    x = torch.dropout(x, 0.5, False)
    x = torch.conv2d(x, self.w2, self.c2, [2, 2], [1, 1])
    x = torch.batch_norm(x, self.g2, self.b2, self.rm2, self.rv2, False, 0.1, 1e-5, True)
    x = torch.hardtanh(x, 0.0, 6.0)
    x = torch.flatten(torch.adaptive_avg_pool2d(x, [1, 1]), 1)
    return torch.linear(x, self.fw, self.fb)
)");
  m.eval();
  return m;
}

int count_nodes(torch::jit::Block* block, const char* kind) {
  int n = 0;
  for (torch::jit::Node* node : block->nodes()) {
    for (torch::jit::Block* sub : node->blocks()) n += count_nodes(sub, kind);
    if (std::string(node->kind().toQualString()) == kind) ++n;
  }
  return n;
}

}  // namespace

int main() {
  torch::AutoGradMode grad_mode(true);
  at::manual_seed(7);

  // Area penalty: mean((sort(m) - r)^2), r = k zeros then ones.
  for (int64_t n : {1000, 67600}) {
    const std::vector<int64_t> ks = {0, n / 10, n / 2, n - 1, n};
    const auto run = [&](const std::string& what, const at::Tensor& m) {
      std::vector<int64_t> zeros(m.size(0));
      for (size_t i = 0; i < zeros.size(); ++i) zeros[i] = ks[i % ks.size()];
      compare(
          "penalty " + what + " n=" + std::to_string(n), m, [&](const at::Tensor& x) { return ts::area_penalty(x, zeros, true); },
          [&](const at::Tensor& x) { return ts::area_penalty(x, zeros, false); }, 1e-6, 1e-7);
    };
    run("uniform", at::rand({5, n}));
    run("ties at 0 and 1", saturate(at::rand({5, n}), 0.45, 0.45));
    run("all zeros", at::zeros({5, n}));
    run("all ones", at::ones({5, n}));
    run("few distinct values", at::randint(0, 4, {5, n}).to(at::kFloat).div(3));
    run("negative values", at::randn({5, n}));
    run("-0 and +0", at::where(at::rand({5, n}) < 0.5, at::full({5, n}, -0.0), at::zeros({5, n})).add(at::rand({5, n}).gt(0.7).to(at::kFloat)));
  }

  // With hints kept across calls (the optimisation loop's use): masks drifting a little per step (the
  // window around the last threshold holds the rank), a jump (it misses: radix select), ties at 0 and 1.
  {
    ts::PenaltyHints hints;
    const int64_t n = 67600;
    const std::vector<int64_t> zeros = {n / 10, n / 2, n - 1, n / 3, 1};
    at::Tensor m = at::rand({5, n});
    for (int step = 0; step < 7; ++step) {
      if (step == 4)
        m = at::rand_like(m).pow(3);
      else
        m = m.add(at::randn_like(m), 0.002).clamp(0, 1);
      if (step == 6) m = saturate(m, 0.45, 0.45);
      compare(
          "penalty with hints, step " + std::to_string(step), m, [&](const at::Tensor& x) { return ts::area_penalty(x, zeros, true, &hints); },
          [&](const at::Tensor& x) { return ts::area_penalty(x, zeros, false); }, 1e-6, 1e-7);
    }
  }

  // Pyramid apply: fused op against gather-based composed ops, both jitter states.
  for (int64_t size : {7, 37, 64}) {  // 7: narrower than one 16-pixel run
    at::Tensor images = at::rand({2, 3, size, size});
    ts::Perturbation pert(images, "blur", 8, 20);
    const std::vector<int64_t> index = {1, 0, 1};
    for (bool flip : {false, true}) {
      const auto ref = [&](const at::Tensor& m) { return pert.apply(m, index, false, flip); };
      const auto fused = [&](const at::Tensor& m) { return pert.apply(m, index, true, flip); };
      const std::string tag = " size=" + std::to_string(size) + (flip ? " flipped" : "");
      compare("apply uniform" + tag, at::rand({3, 1, size, size}), fused, ref, 1e-6, 1e-5);
      compare("apply 0s and 1s" + tag, saturate(at::rand({3, 1, size, size}), 0.3, 0.3), fused, ref, 1e-6, 1e-5);
      compare("apply on level boundaries" + tag, at::randint(0, 8, {3, 1, size, size}).to(at::kFloat).div(7), fused, ref, 1e-6, 1e-5);
    }
  }

  // Apply from the crop of full masks, with inverted rows and masks used twice ('dual'): the gradient of
  // the full masks sums both rows' parts and is zero outside the crop.
  {
    at::Tensor images = at::rand({2, 3, 29, 35});
    ts::Perturbation pert(images, "fade", 6, 20);
    const std::vector<int64_t> mask = {0, 1, 0, 1, 2}, image = {1, 0, 1, 1, 0};
    const std::vector<bool> invert = {false, false, true, true, false};
    for (bool flip : {false, true}) {
      const auto ref = [&](const at::Tensor& f) { return pert.apply_crop(f, 4, 6, mask, invert, image, false, flip); };
      const auto fused = [&](const at::Tensor& f) { return pert.apply_crop(f, 4, 6, mask, invert, image, true, flip); };
      compare(std::string("apply crop, inverted and shared rows") + (flip ? " flipped" : ""), at::rand({3, 1, 40, 47}), fused, ref, 1e-6, 1e-5);
    }
  }

  // Mask generator: fused kernels against the composed ATen ops (unfold, upsampling, softmax).
  struct Geo {
    int64_t h, w, step;
    double sigma;
  };
  // Every inner kernel this CPU runs (AVX-512, AVX2, portable), whichever the process would pick.
  std::vector<ts::simd::Isa> isas = {ts::simd::Isa::generic};
  if (ts::simd::best() != ts::simd::Isa::generic) isas.push_back(ts::simd::Isa::avx2);
  if (ts::simd::best() == ts::simd::Isa::avx512) isas.push_back(ts::simd::Isa::avx512);
  for (ts::simd::Isa isa : isas)
    for (const Geo& geo : {Geo{224, 224, 7, 21}, Geo{64, 48, 3, 7}, Geo{50, 61, 5, 9}, Geo{40, 40, 4, 4}, Geo{33, 70, 7, 1}}) {
      ts::MaskGenerator fused_gen(ts::MaskGeometry::make(geo.h, geo.w, geo.step, geo.sigma), true, isa);
      ts::MaskGenerator composed_gen(ts::MaskGeometry::make(geo.h, geo.w, geo.step, geo.sigma), false);
      const ts::MaskGeometry& g = fused_gen.geometry();
      const std::string tag = " " + std::to_string(geo.h) + "x" + std::to_string(geo.w) + " step " + std::to_string(geo.step) + " sigma " +
                              std::to_string(static_cast<int>(geo.sigma)) + " " + ts::simd::name(isa);
      const auto fused = [&](const at::Tensor& p) { return fused_gen.full(p); };
      const auto ref = [&](const at::Tensor& p) { return composed_gen.full(p); };
      compare("generator uniform" + tag, at::rand({3, 1, g.in_h, g.in_w}), fused, ref, 1e-5, 5e-5);
      compare("generator 0s and 1s" + tag, saturate(at::rand({3, 1, g.in_h, g.in_w}), 0.4, 0.4), fused, ref, 1e-5, 5e-5);
    }

  // Mirrored vectors (smooth_max::mirror_plan: a row's vectors at -dx take their terms from those at dx by
  // a permute): masks and gradients bit-identical to the kernels without it, on parameters mixing exact 0s,
  // exact 1s and values in (0, 1), for every inner kernel this CPU runs; the plan must engage at the
  // default geometry (224 px, step 7, sigma 21) for the vector kernels. Geometries where it does not engage
  // (other support widths) check that the fallback is the kernel itself.
  for (ts::simd::Isa isa : isas)
    for (const Geo& geo : {Geo{224, 224, 7, 21}, Geo{61, 50, 7, 21}, Geo{64, 48, 3, 7}, Geo{50, 61, 5, 9}}) {
      const ts::MaskGeometry geometry = ts::MaskGeometry::make(geo.h, geo.w, geo.step, geo.sigma);
      ts::MaskGenerator mirrored(geometry, true, isa, true), plain(geometry, true, isa, false);
      const ts::MaskGeometry& g = mirrored.geometry();
      const std::string tag = " " + std::to_string(geo.h) + "x" + std::to_string(geo.w) + " step " + std::to_string(geo.step) + " sigma " +
                              std::to_string(static_cast<int>(geo.sigma)) + " " + ts::simd::name(isa) + " (mirrored vectors per row " +
                              std::to_string(mirrored.support().mirrored) + ")";
      if (geo.step == 7 && geo.sigma == 21 && isa != ts::simd::Isa::generic && mirrored.support().mirrored == 0) {
        std::printf("FAIL mirror plan%s: expected mirrored vectors at the default geometry\n", tag.c_str());
        ++failures;
      }
      at::Tensor params = saturate(at::rand({4, 1, g.in_h, g.in_w}), 0.3, 0.3);
      at::Tensor a = params.clone().requires_grad_(true), b = params.clone().requires_grad_(true);
      at::Tensor ya = mirrored.full(a), yb = plain.full(b);
      at::Tensor w = at::rand_like(ya);
      at::Tensor ga = torch::autograd::grad({ya}, {a}, {w})[0], gb = torch::autograd::grad({yb}, {b}, {w})[0];
      const bool same = at::equal(ya, yb) && at::equal(ga, gb);
      std::printf("%s generator mirrored = plain, bit for bit%s: masks %d, gradients %d\n", same ? "ok  " : "FAIL", tag.c_str(), at::equal(ya, yb),
                  at::equal(ga, gb));
      if (!same) ++failures;
      ts::MaskGenerator composed_gen(geometry, false);
      compare(
          "generator mirrored, 0s, 1s and values between" + tag, params, [&](const at::Tensor& p) { return mirrored.full(p); },
          [&](const at::Tensor& p) { return composed_gen.full(p); }, 1e-5, 5e-5);
    }

  // The loop's copy of the model (core/loop_module.h): channels-last and/or frozen, its output and its
  // gradient to the input equal the user's module's within float rounding, folding really happened, and
  // the user's module keeps its tensors, values, layout and graph.
  {
    torch::jit::Module net = loop_test_net();
    std::vector<at::Tensor> before;
    for (const at::Tensor& p : net.parameters()) before.push_back(p.clone());
    const at::Tensor x = at::rand({3, 3, 20, 20});
    for (const auto& [cl, frozen] : std::vector<std::pair<bool, bool>>{{true, false}, {false, true}, {true, true}}) {
      ts::LoopModule loop = ts::make_loop_module(net, cl, frozen);
      const std::string tag = std::string(" loop copy") + (cl ? " channels-last" : "") + (frozen ? " frozen" : "");
      if (loop.channels_last != cl || loop.frozen != frozen) {
        std::printf("FAIL%s: asked channels-last %d frozen %d, got %d %d (%s)\n", tag.c_str(), cl, frozen, loop.channels_last, loop.frozen,
                    loop.frozen_error.c_str());
        ++failures;
        continue;
      }
      compare(
          tag + " output and input gradient", x,
          [&](const at::Tensor& in) { return loop.module.forward({cl ? in.contiguous(at::MemoryFormat::ChannelsLast) : in}).toTensor(); },
          [&](const at::Tensor& in) { return net.forward({in}).toTensor(); }, 1e-5, 1e-5);
      if (frozen) {
        auto graph = loop.module.get_method("forward").graph();
        const int bn = count_nodes(graph->block(), "aten::batch_norm"), dropout = count_nodes(graph->block(), "aten::dropout");
        std::printf("%s%s: batch_norm nodes %d, dropout nodes %d (want 0 and 0)\n", bn == 0 && dropout == 0 ? "ok  " : "FAIL", tag.c_str(), bn, dropout);
        if (bn != 0 || dropout != 0) ++failures;
      }
    }
    // the user's module: same tensors, values and (contiguous) layout, its BatchNorms still in its graph
    size_t i = 0;
    bool same = true;
    for (const at::Tensor& p : net.parameters()) same = same && p.is_contiguous() && at::equal(p, before[i++]);
    const int bn = count_nodes(net.get_method("forward").graph()->block(), "aten::batch_norm");
    std::printf("%s loop copy leaves the module alone: parameters unchanged %d, batch_norm nodes %d (want 2)\n", same && bn == 2 ? "ok  " : "FAIL", same, bn);
    if (!same || bn != 2) ++failures;
  }

  // The thread count set on one thread reaches a thread that had already run parallel work at another
  // count, once that thread calls sync_threads (as every native call does first). Without it, OpenMP kept
  // that thread's own count: `threads: 1` ran some calls on every core.
  {
    ts::set_threads(2);
    int before = 0, after = 0;
    std::mutex mu;
    std::condition_variable cv;
    int stage = 0;
    std::thread worker([&] {
      at::parallel_for(0, 1024, 1, [](int64_t, int64_t) {});
      before = at::get_num_threads();
      std::unique_lock<std::mutex> lock(mu);
      stage = 1;
      cv.notify_all();
      cv.wait(lock, [&] { return stage == 2; });
      ts::sync_threads();
      after = at::get_num_threads();
    });
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return stage == 1; });
      ts::set_threads(1);
      stage = 2;
      cv.notify_all();
    }
    worker.join();
    const bool ok = before == 2 && after == 1 && ts::get_threads() == 1;
    std::printf("%s thread count set elsewhere reaches a working thread: %d before, %d after sync (want 2, 1), get_threads %d\n", ok ? "ok  " : "FAIL", before,
                after, ts::get_threads());
    if (!ok) ++failures;
    ts::set_threads(0);
  }

  std::printf("%d failure(s)\n", failures);
  return failures == 0 ? 0 : 1;
}
