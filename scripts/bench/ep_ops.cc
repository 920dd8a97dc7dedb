// Per-op timing of one extremal-perturbation step's own work (no model), at the bench geometry:
//   ts_bench_ep_ops [SIZE] [MASKS] [ITERS]
// Times the mask generator, the pyramid apply and the area penalty, each forward+backward, on mask
// parameters drawn uniformly in [0, 1] (no parameter at 0 or 1: the generator's slowest case), and the
// same with 80% of the parameters at 0 or 1 (their fast paths). Best of 5 rounds per figure. The generator
// is timed twice, with and without mirrored vectors (smooth_max::mirror_plan; the same numbers), in
// interleaved rounds: "genFwdBwdNoMirror" and "genFwdNoMirror" are the kernels without it.
// Prints one JSON line. Used to see where the step's overhead over the model goes.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <torch/csrc/autograd/autograd.h>

#include "core/methods/extremal_perturbation/area_penalty.h"
#include "core/methods/extremal_perturbation/mask_generator.h"
#include "core/methods/extremal_perturbation/perturbation.h"
#include "core/model.h"

// Best of 5 rounds of iters/5 calls each (the machine is shared: the least disturbed round is the op's cost).
template <typename F>
double time_ms(F&& f, int64_t iters) {
  for (int i = 0; i < 3; ++i) f();
  const int64_t per_round = std::max<int64_t>(1, iters / 5);
  double best = 1e300;
  for (int round = 0; round < 5; ++round) {
    auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < per_round; ++i) f();
    best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / per_round);
  }
  return best;
}

int main(int argc, char** argv) {
  const int64_t size = argc > 1 ? std::stoll(argv[1]) : 224, masks = argc > 2 ? std::stoll(argv[2]) : 4, iters = argc > 3 ? std::stoll(argv[3]) : 50;
  ts::set_threads(0);
  torch::AutoGradMode grad_mode(true);
  at::manual_seed(0);
  ts::MaskGenerator gen(ts::MaskGeometry::make(size, size, 7, 21), true);
  ts::MaskGenerator gen_plain(ts::MaskGeometry::make(size, size, 7, 21), true, ts::simd::chosen(), false);
  const ts::MaskGeometry& g = gen.geometry();
  at::Tensor image = at::rand({1, 3, size, size});
  ts::Perturbation pert(image, "blur", 8, 20);
  std::vector<int64_t> index(masks, 0), zeros(masks, g.out_h * g.out_w * 9 / 10);
  // Each op alone, from a leaf input, with a fixed random incoming gradient (as the model's backward gives).
  auto fwd_bwd = [](const at::Tensor& leaf0, auto&& op) {
    at::Tensor leaf = leaf0.detach().requires_grad_(true);
    at::Tensor out = op(leaf);
    torch::autograd::grad({out}, {leaf}, {at::ones_like(out)});
  };
  std::string json = "{";
  for (int state = 0; state < 2; ++state) {
    at::Tensor params = at::rand({masks, 1, g.in_h, g.in_w});
    if (state == 1) {
      at::Tensor r = at::rand_like(params);
      params = at::where(r < 0.4, at::zeros_like(params), at::where(r < 0.8, at::ones_like(params), params));
    }
    at::Tensor full, crop;
    {
      at::NoGradGuard ng;
      full = gen.full(params);
      crop = gen.crop(full).contiguous();
    }
    // Interleaved: each of 3 rounds times both generators (best of each side kept).
    double gen_f = 1e300, gen_fb = 1e300, plain_f = 1e300, plain_fb = 1e300;
    for (int round = 0; round < 3; ++round)
      for (const ts::MaskGenerator* gp : {&gen, &gen_plain}) {
        const double f = time_ms(
            [&] {
              at::NoGradGuard ng;
              gp->full(params);
            },
            iters);
        const double fb = time_ms([&] { fwd_bwd(params, [&](const at::Tensor& p) { return gp->full(p); }); }, iters);
        double& bf = gp == &gen ? gen_f : plain_f;
        double& bfb = gp == &gen ? gen_fb : plain_fb;
        bf = std::min(bf, f);
        bfb = std::min(bfb, fb);
      }
    const double app_fb = time_ms([&] { fwd_bwd(crop, [&](const at::Tensor& m) { return pert.apply(m, index, true, true); }); }, iters);
    const double pen_fb = time_ms([&] { fwd_bwd(full, [&](const at::Tensor& m) { return ts::area_penalty(m, zeros, true); }); }, iters);
    const char* name = state == 0 ? "uniform" : "saturated";
    char buf[512];
    std::snprintf(
        buf, sizeof buf,
        "%s\"%s\":{\"genFwd\":%.3f,\"genFwdBwd\":%.3f,\"genFwdNoMirror\":%.3f,\"genFwdBwdNoMirror\":%.3f,\"applyFwdBwd\":%.3f,\"penaltyFwdBwd\":%.3f}",
        state ? "," : "", name, gen_f, gen_fb, plain_f, plain_fb, app_fb, pen_fb);
    json += buf;
  }
  // The inner kernels alone, per parameter (m = 0.37, one folded support), with and without mirrored
  // vectors: 400 alternating blocks of 200 calls, the fastest block of each side (on a loaded machine the
  // least disturbed blocks are the kernels' cost), in ns per call.
  {
    const ts::MaskGenerator::Support& sm = gen.support();
    const ts::MaskGenerator::Support& sp = gen_plain.support();
    const int64_t stride = sm.padded + 32;
    std::vector<float> S(sm.quad * stride, 1.0f), T(sm.quad * stride, 0.0f), B(sm.quad * stride, 0.25f), SC(sm.quad * stride, 0.5f);
    const ts::smooth_max::Support km = sm.kernel_rows(), kp = sp.kernel_rows();
    double best[2][2] = {{1e300, 1e300}, {1e300, 1e300}};  // [mirrored, plain][forward, backward]
    volatile float sink = 0;
    for (int block = 0; block < 400; ++block)
      for (int side = 0; side < 2; ++side) {
        const ts::smooth_max::Support& k = side == 0 ? km : kp;
        auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < 200; ++i) ts::smooth_max::forward(sm.isa, 0.37f, k, S.data(), T.data(), stride);
        auto t1 = std::chrono::steady_clock::now();
        float acc = 0;
        for (int i = 0; i < 200; ++i) acc += ts::smooth_max::backward(sm.isa, 0.37f, k, B.data(), SC.data(), stride);
        auto t2 = std::chrono::steady_clock::now();
        sink = sink + acc;
        best[side][0] = std::min(best[side][0], std::chrono::duration<double, std::nano>(t1 - t0).count() / 200);
        best[side][1] = std::min(best[side][1], std::chrono::duration<double, std::nano>(t2 - t1).count() / 200);
      }
    char buf[256];
    std::snprintf(buf, sizeof buf, ",\"kernelNs\":{\"forward\":%.1f,\"forwardNoMirror\":%.1f,\"backward\":%.1f,\"backwardNoMirror\":%.1f}", best[0][0],
                  best[1][0], best[0][1], best[1][1]);
    json += buf;
  }
  std::printf("%s,\"size\":%lld,\"masks\":%lld,\"threads\":%d,\"isa\":\"%s\",\"mirroredVectorsPerRow\":%lld}\n", json.c_str(), static_cast<long long>(size),
              static_cast<long long>(masks), ts::get_threads(), ts::simd::name(ts::simd::chosen()), static_cast<long long>(gen.support().mirrored));
  return 0;
}
