// Native checks of the extremal-perturbation step's fused CPU kernels against their composed ATen
// formulations (the reference: TorchRay's own ops), values and gradients, on cases chosen to reach every
// branch: random values, many exact ties (masks full of 0s and 1s), k = 0 and k = n, negative values
// (the penalty's fallback), mirrored apply, masks at the ends of [0, 1], several geometries.
// Run by test/integration/native-kernels.test.ts; prints one line per check and exits 1 on a failure.
#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>

#include <torch/csrc/autograd/autograd.h>

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

  std::printf("%d failure(s)\n", failures);
  return failures == 0 ? 0 : 1;
}
