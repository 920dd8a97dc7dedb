#include "core/methods/extremal_perturbation/mask_generator.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "core/errors.h"
#include "core/methods/extremal_perturbation/smooth_max_kernels.h"
#include "core/simd.h"

namespace ts {
namespace {

constexpr float kColdness = 20.0f;  // temperature of the smooth max (TorchRay's `coldness`)
constexpr double kLog2e = 1.44269504088896340736;

constexpr int kMaxTaps = 1024;  // (2r+1)^2 for r up to 15

// Every output pixel u sees a parameter m_i at the offset d = u - c_i from its centre, and the kernel weight
// w(d) depends only on |d| (radial), so over a parameter's L x L support (L = (2r+1) step) the rows at dy and
// -dy carry the same terms exp(20 w m_i): (A+1) x L distinct ones per parameter, A the largest |dy| (35 x 63 =
// 2205 exponentials instead of 63 x 63 = 3969 at step 7, sigma 21). The kernels therefore loop over the
// parameters of one grid row and work on "folded" rows indexed by |dy|: the forward adds each parameter's
// terms into folded sums (one row per |dy|), then unfolds them into the pixel rows at dy and -dy once per
// grid row; the backward first folds the pixel rows' incoming gradients the same way, then takes each
// parameter's dot products with them. Support rows are padded to Lp (a multiple of 16) with zeros and the
// folded rows carry a margin of L on both sides, so every parameter's row operation is a run of full
// vectors with no clipping (clipping happens once per grid row, when folding or unfolding).
// Per pixel: S = sum_k e_k, T = sum_k y_k e_k, out = T / (20 K log2(e) S) with v_k = w_k m_k, e_k =
// exp(20 v_k) and y_k = 20 K log2(e) v_k, the exponent in the units of the chosen smooth_max kernel
// (core/methods/extremal_perturbation/smooth_max_kernels.h; K = 16 on AVX-512 CPUs); taps outside the parameter grid are zeros (e = 1,
// v = 0): S starts at their count. A parameter at 0 or 1 (common: the optimiser clamps to [0, 1]) adds
// precomputed terms; any other value runs the kernel.

// A folded row: column x of the mask is at x + L, with L = -base0 = step (2r - padding) >= step, so the
// support of parameter j starts at column step j; rows hold every parameter's padded support and the mask.
struct Padded {
  int64_t L, wide;
  Padded(const MaskGeometry& g, const MaskGenerator::Support& s)
      : L(-s.base0), wide((std::max(g.step * (g.in_w - 1) + s.padded, g.out_w + L) + 15) / 16 * 16) {}
};

// Adds the grid rows [row_begin, row_end) of mask b into S (norm) and T (out), which start as the
// out-of-grid tap counts and 0.
TS_CLONES void forward_rows(const float* params, const MaskGeometry& g, const MaskGenerator::Support& s, float* out, float* norm, int64_t b, int64_t row_begin,
                            int64_t row_end) {
  const int64_t L = s.length, Lp = s.padded, Q = s.quad, base0 = s.base0;
  const Padded pad(g, s);
  std::vector<float> SAv(Q * pad.wide), TAv(Q * pad.wide);
  float* SA = SAv.data();
  float* TA = TAv.data();
  const float* __restrict vr = s.valid.data();
  const smooth_max::Support sup = s.kernel_rows();
  const float* p = params + b * g.in_h * g.in_w;
  float* S = norm + b * g.out_h * g.out_w;  // S and T (in `out`) are summed in place
  float* T = out + b * g.out_h * g.out_w;
  for (int64_t i = row_begin; i < row_end; ++i) {
    std::fill(SAv.begin(), SAv.end(), 0.0f);
    std::fill(TAv.begin(), TAv.end(), 0.0f);
    for (int64_t j = 0; j < g.in_w; ++j) {
      const float m = std::min(std::max(p[i * g.in_w + j], -4.0f), 4.0f);  // keeps 20 w m inside the kernels' 2^x range
      const int64_t x0 = g.step * j + base0 + pad.L;                       // column in a folded row
      // The parameter's case is fixed: one loop per case over its folded rows.
      if (m == 0.0f) {  // e = 1, v = 0
        for (int64_t a = 0; a < Q; ++a) {
          float* __restrict Sr = SA + a * pad.wide + x0;
          for (int64_t u = 0; u < Lp; ++u) Sr[u] += vr[u];
        }
      } else if (m == 1.0f) {
        for (int64_t a = 0; a < Q; ++a) {
          const float* __restrict e1 = s.e1.data() + a * Lp;
          const float* __restrict ye1 = s.ye1.data() + a * Lp;
          float* __restrict Sr = SA + a * pad.wide + x0;
          float* __restrict Tr = TA + a * pad.wide + x0;
          for (int64_t u = 0; u < Lp; ++u) {
            Sr[u] += e1[u];
            Tr[u] += ye1[u];
          }
        }
      } else {
        smooth_max::forward(s.isa, m, sup, SA + x0, TA + x0, pad.wide);
      }
    }
    // Unfold: pixel row y0 + t gets the folded row |off0 + t| (columns shifted by the margin L).
    const int64_t y0 = g.step * i + base0;
    for (int64_t t = std::max<int64_t>(0, -y0); t < std::min<int64_t>(L, g.out_h - y0); ++t) {
      const int64_t a = std::abs(s.off0 + t);
      const float* __restrict sa = SA + a * pad.wide + pad.L;
      const float* __restrict ta = TA + a * pad.wide + pad.L;
      float* __restrict Sr = S + (y0 + t) * g.out_w;
      float* __restrict Tr = T + (y0 + t) * g.out_w;
      for (int64_t x = 0; x < g.out_w; ++x) {
        Sr[x] += sa[x];
        Tr[x] += ta[x];
      }
    }
  }
}

// out = clamp(T / (unit S), 0, 1) for pixel rows [begin, end) of all masks (row = mask * out_h + y), unit =
// 20 K log2(e).
TS_CLONES void finish_rows(float* out, const float* norm, float unit, int64_t width, int64_t begin, int64_t end) {
  for (int64_t q = begin * width; q < end * width; ++q) out[q] = std::min(std::max(out[q] / (unit * norm[q]), 0.0f), 1.0f);
}

// Backward for parameter rows [begin, end) (task = mask * in_h + row): the gradient of parameter k is the
// sum over its support's pixels of g / S e_k (1 + 20 (v_k - out)) w_k = w_k e_k (base + scale 20 v_k) with
// scale = g / S and base = scale (1 - 20 out) per pixel (padded planes, zero outside the mask), folded by
// |dy| for the task's grid row first.
// Per pixel, once per step: scale = g / S (0 where g is 0 or the clamp is flat) and base = scale (1 - 20
// out), for pixels [begin, end) of all masks; the scale plane is stored divided by K log2(e), so that it
// multiplies the kernel's y directly (20 v = y / (K log2(e))). (Computed inside the fold, each pixel's
// division ran once per grid row whose support holds it, about 9 times: a fifth of the backward.)
TS_CLONES void scale_rows(const float* out, const float* norm, const float* grad, float per_y, float* scale, float* base, int64_t begin, int64_t end) {
  for (int64_t q = begin; q < end; ++q) {
    const bool live = !(grad[q] == 0.0f || out[q] < 0.0f || out[q] > 1.0f);
    const float sc = live ? grad[q] / norm[q] : 0.0f;
    scale[q] = sc * per_y;
    base[q] = sc * (1.0f - kColdness * out[q]);
  }
}

TS_CLONES void backward_params(const float* params, const MaskGeometry& g, const MaskGenerator::Support& s, const float* scale, const float* base,
                               float* result, int64_t begin, int64_t end) {
  const int64_t L = s.length, Lp = s.padded, Q = s.quad, base0 = s.base0;
  const Padded pad(g, s);
  std::vector<float> SCv(Q * pad.wide), BAv(Q * pad.wide);
  float* SC = SCv.data();
  float* BA = BAv.data();
  const smooth_max::Support sup = s.kernel_rows();
  for (int64_t task = begin; task < end; ++task) {
    const int64_t b = task / g.in_h, i = task % g.in_h;
    // Fold the support's pixel rows by |dy| (scale and base planes, made once per step by scale_rows):
    // folded row a is the sum of the pixel rows at dy = a and dy = -a that exist, written over the
    // mask's columns (shifted by the margin L); the margins stay as allocated, zero.
    const int64_t y0 = g.step * i + base0;
    for (int64_t a = 0; a < Q; ++a) {
      const float* src[2][2] = {};  // [row][scale, base]
      int n = 0;
      for (const int64_t t : {a - s.off0, -a - s.off0}) {
        if (n > 0 && a == 0) break;
        const int64_t y = y0 + t;
        if (t < 0 || t >= L || y < 0 || y >= g.out_h) continue;
        src[n][0] = scale + (b * g.out_h + y) * g.out_w;
        src[n][1] = base + (b * g.out_h + y) * g.out_w;
        ++n;
      }
      float* __restrict sf = SC + a * pad.wide + pad.L;
      float* __restrict bf = BA + a * pad.wide + pad.L;
      if (n == 2) {
        const float* __restrict s0 = src[0][0], * __restrict s1 = src[1][0], * __restrict b0 = src[0][1], * __restrict b1 = src[1][1];
        for (int64_t x = 0; x < g.out_w; ++x) {
          sf[x] = s0[x] + s1[x];
          bf[x] = b0[x] + b1[x];
        }
      } else if (n == 1) {
        std::copy(src[0][0], src[0][0] + g.out_w, sf);
        std::copy(src[0][1], src[0][1] + g.out_w, bf);
      } else {
        std::fill(sf, sf + g.out_w, 0.0f);
        std::fill(bf, bf + g.out_w, 0.0f);
      }
    }
    for (int64_t j = 0; j < g.in_w; ++j) {
      const int64_t k = (b * g.in_h + i) * g.in_w + j;
      const float m = std::min(std::max(params[k], -4.0f), 4.0f);
      const int64_t x0 = g.step * j + base0 + pad.L;
      // The parameter's case is fixed: one loop per case over its folded rows, so that the accumulator
      // stays in registers across rows.
      float lanes[16] = {};
      const float* __restrict wh = s.wh.data();
      const float* __restrict e1t = s.e1.data();
      const float* __restrict wkt = s.wk.data();
      if (m == 0.0f) {  // v = 0, e = 1
        for (int64_t a = 0; a < Q; ++a) {
          const float* __restrict wr = wh + a * Lp;
          const float* __restrict br = BA + a * pad.wide + x0;
          for (int64_t u = 0; u < Lp; u += 16)
            for (int l = 0; l < 16; ++l) lanes[l] += wr[u + l] * br[u + l];
        }
      } else if (m == 1.0f) {
        for (int64_t a = 0; a < Q; ++a) {
          const float* __restrict wr = wh + a * Lp;
          const float* __restrict e1 = e1t + a * Lp;
          const float* __restrict wk = wkt + a * Lp;  // y at m = 1
          const float* __restrict br = BA + a * pad.wide + x0;
          const float* __restrict sr = SC + a * pad.wide + x0;
          for (int64_t u = 0; u < Lp; u += 16)
            for (int l = 0; l < 16; ++l) lanes[l] += wr[u + l] * e1[u + l] * (br[u + l] + sr[u + l] * wk[u + l]);
        }
      } else {
        result[k] = smooth_max::backward(s.isa, m, sup, BA + x0, SC + x0, pad.wide);
        continue;
      }
      result[k] = smooth_max::sum_lanes(lanes);
    }
  }
}

class SmoothMaxFunction : public torch::autograd::Function<SmoothMaxFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& params, const MaskGenerator* gen) {
    RECORD_FUNCTION("ts::SmoothMaxFunction::forward", std::vector<c10::IValue>());
    const MaskGeometry& g = gen->geometry();
    at::Tensor p = params.contiguous();
    const int64_t masks = p.size(0);
    at::Tensor out = at::empty({masks, 1, g.out_h, g.out_w}, p.options());
    at::Tensor norm = at::empty({masks, 1, g.out_h, g.out_w}, p.options());
    const float* pp = p.data_ptr<float>();
    float* op = out.data_ptr<float>();
    float* np = norm.data_ptr<float>();
    const MaskGenerator::Support& s = gen->support();
    // Grid rows in bands of 2r + 1: a band's pixel rows (its rows' supports) end before the band after
    // next begins, so the even bands of every mask run in parallel, then the odd ones. One mask alone
    // thus still spreads over the cores (parallel over masks only, one mask used one core). Two parallel
    // regions in all (each wakes the idle threads: 10-50 us here): the pixel rows from where band k's
    // support starts to where band k + 2's starts are band k's alone within its pass, so an even band's
    // task first initialises its share (S = the out-of-grid tap counts, T = 0), and an odd band's task
    // finishes its share after adding (every band touching those rows is done by then).
    const int64_t band = 2 * g.radius + 1, bands = (g.in_h + band - 1) / band, per_pass = (bands + 1) / 2;
    const int64_t base0 = s.base0;
    const auto share = [&](int64_t k) {  // pixel rows [first, last) of band k's pass-mates' partition
      const auto start = [&](int64_t j) { return std::min(g.out_h, std::max<int64_t>(0, g.step * j * band + base0)); };
      return std::make_pair(k < 2 ? int64_t{0} : start(k), k + 2 >= bands ? g.out_h : start(k + 2));
    };
    for (int64_t pass = 0; pass < 2; ++pass) {
      at::parallel_for(0, masks * per_pass, 1, [&](int64_t begin, int64_t end) {
        for (int64_t task = begin; task < end; ++task) {
          const int64_t b = task / per_pass, k = 2 * (task % per_pass) + pass;
          if (k >= bands) continue;
          const auto [first, last] = share(k);
          if (pass == 0) {
            for (int64_t y = first; y < last; ++y) {
              const int64_t row = b * g.out_h + y;
              std::copy(s.zcount.begin() + y * g.out_w, s.zcount.begin() + (y + 1) * g.out_w, np + row * g.out_w);
              std::fill(op + row * g.out_w, op + (row + 1) * g.out_w, 0.0f);
            }
          }
          forward_rows(pp, g, s, op, np, b, k * band, std::min(g.in_h, (k + 1) * band));
          if (pass == 1 || bands == 1) finish_rows(op, np, s.unit, g.out_w, b * g.out_h + first, b * g.out_h + last);
        }
      });
    }
    ctx->saved_data["gen"] = reinterpret_cast<int64_t>(gen);
    ctx->save_for_backward({p, out, norm});
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    const MaskGenerator* gen = reinterpret_cast<const MaskGenerator*>(ctx->saved_data["gen"].toInt());
    const MaskGeometry& g = gen->geometry();
    auto saved = ctx->get_saved_variables();
    at::Tensor p = saved[0], out = saved[1], norm = saved[2];
    at::Tensor grad = grads[0].contiguous();
    const int64_t masks = p.size(0);
    const MaskGenerator::Support& s = gen->support();
    at::Tensor result = at::empty_like(p);
    const float* pp = p.data_ptr<float>();
    const float* op = out.data_ptr<float>();
    const float* np = norm.data_ptr<float>();
    const float* gp = grad.data_ptr<float>();
    float* rp = result.data_ptr<float>();
    at::Tensor planes = at::empty({2, masks * g.out_h * g.out_w}, p.options());
    float* scale = planes.data_ptr<float>();
    float* base = scale + masks * g.out_h * g.out_w;
    const float per_y = static_cast<float>(1.0 / (s.resolution * kLog2e));
    at::parallel_for(0, masks * g.out_h * g.out_w, 4096, [&](int64_t begin, int64_t end) { scale_rows(op, np, gp, per_y, scale, base, begin, end); });
    at::parallel_for(0, masks * g.in_h, 1, [&](int64_t begin, int64_t end) { backward_params(pp, g, s, scale, base, rp, begin, end); });
    return {result, at::Tensor()};
  }
};

}  // namespace

MaskGeometry MaskGeometry::make(int64_t height, int64_t width, int64_t step, double sigma) {
  MaskGeometry g;
  g.height = height;
  g.width = width;
  g.step = step;
  g.sigma = sigma;
  g.margin = static_cast<int64_t>(std::llround(sigma));  // Python's round() is half-to-even; sigma is an integer in practice
  if (std::abs(sigma - std::round(sigma)) == 0.5) g.margin = static_cast<int64_t>(2 * std::round(sigma / 2));
  g.padding = 1 + static_cast<int64_t>(std::ceil((sigma + sigma) / static_cast<double>(step)));
  g.radius = 1 + static_cast<int64_t>(std::ceil(sigma / static_cast<double>(step)));
  g.in_h = (height + step - 1) / step;
  g.in_w = (width + step - 1) / step;
  g.mid_h = g.in_h + 2 * g.padding - 2 * g.radius;
  g.mid_w = g.in_w + 2 * g.padding - 2 * g.radius;
  g.out_h = step * g.mid_h - step + 1;
  g.out_w = step * g.mid_w - step + 1;
  return g;
}

MaskGenerator::MaskGenerator(const MaskGeometry& geometry, bool fused, simd::Isa isa, bool mirror) : g_(geometry), fused_(fused) {
  const int64_t side = 2 * g_.radius + 1, taps = g_.taps(), step = g_.step;
  if (taps > kMaxTaps) {
    throw Error("ERR_OUT_OF_RANGE",
                "Expected a number <= " + std::to_string(14 * g_.step) + " (14 x step) for options.sigma but received " + std::to_string(g_.sigma),
                "options.sigma");
  }
  // Block of each output row/column as nearest upsampling computes it (float32 scale, as TorchRay's
  // weights do): it is the integer division by step for every size we accept; checked here.
  auto blocks = [&](int64_t mid, int64_t out, std::vector<int32_t>& dst) {
    const float scale = static_cast<float>(mid) / static_cast<float>(step * mid);
    dst.resize(out);
    for (int64_t u = 0; u < out; ++u) {
      dst[u] = static_cast<int32_t>(std::floor(scale * static_cast<float>(u)));
      if (dst[u] != u / step) fused_ = false;  // never seen; the composed path follows the float rule exactly
    }
  };
  blocks(g_.mid_h, g_.out_h, row_block_);
  blocks(g_.mid_w, g_.out_w, col_block_);
  // Weights by (|dy|, |dx|) from a parameter's centre, as the composed path computes them (float).
  const float sigma = static_cast<float>(g_.sigma);
  Support& s = s_;
  s.length = side * step;
  s.base0 = step * (g_.padding - 2 * g_.radius);
  s.off0 = s.base0 - g_.margin;
  s.quad = std::max(-s.off0, s.off0 + s.length - 1) + 1;
  const int64_t L = s.length, Q = s.quad;  // rows by |dy| in [0, Q)
  if (s.off0 >= 0 || s.off0 + L - 1 < 0) throw std::logic_error("mask generator: unexpected support geometry");
  s.padded = (L + 15) / 16 * 16;
  const int64_t Lp = s.padded;
  auto weight = [&](int64_t dy, int64_t dx) {
    const float fy = static_cast<float>(dy), fx = static_cast<float>(dx);
    const float t = std::max(std::sqrt(fy * fy + fx * fx) / sigma - 0.5f, 0.0f);
    return std::exp(-2.0f * t * t);
  };
  s.wh.assign(Q * Lp, 0.0f);
  s.valid.assign(Lp, 0.0f);
  std::fill(s.valid.begin(), s.valid.begin() + L, 1.0f);
  s.isa = isa;
  s.resolution = smooth_max::resolution(isa);
  const double unit = kColdness * s.resolution * kLog2e;  // y = unit v
  s.unit = static_cast<float>(unit);
  s.wk.assign(Q * Lp, 0.0f);
  s.e1.assign(Q * Lp, 0.0f);
  s.ye1.assign(Q * Lp, 0.0f);
  for (int64_t a = 0; a < Q; ++a)
    for (int64_t u = 0; u < L; ++u) {
      const float w = weight(a, s.off0 + u);
      s.wh[a * Lp + u] = w;
      s.wk[a * Lp + u] = static_cast<float>(unit * w);
      s.e1[a * Lp + u] = std::exp(kColdness * w);
      s.ye1[a * Lp + u] = s.wk[a * Lp + u] * s.e1[a * Lp + u];
    }
  s.mirror_idx.assign(16, 0);
  if (mirror) s.mirrored = smooth_max::mirror_plan(isa, s.wk.data(), s.wh.data(), Q, L, Lp, s.off0, s.mirror_idx.data());
  // Taps of block a inside the grid: parameters a - padding .. a - padding + 2r within [0, in).
  auto inside = [&](int64_t block, int64_t in) {
    const int64_t lo = std::max<int64_t>(block - g_.padding, 0), hi = std::min<int64_t>(block - g_.padding + 2 * g_.radius, in - 1);
    return static_cast<float>(std::max<int64_t>(hi - lo + 1, 0));
  };
  s.zcount.resize(g_.out_h * g_.out_w);
  for (int64_t y = 0; y < g_.out_h; ++y)
    for (int64_t x = 0; x < g_.out_w; ++x) s.zcount[y * g_.out_w + x] = static_cast<float>(taps) - inside(y / step, g_.in_h) * inside(x / step, g_.in_w);
}

at::Tensor MaskGenerator::full(const at::Tensor& params) const {
  if (fused_ && params.device().is_cpu() && params.scalar_type() == at::kFloat) return SmoothMaxFunction::apply(params, this);
  return composed(params);
}

at::Tensor MaskGenerator::crop(const at::Tensor& full) const {
  return full.slice(2, g_.margin, g_.margin + g_.height).slice(3, g_.margin, g_.margin + g_.width);
}

at::Tensor MaskGenerator::composed_weight(const at::Device& device) const {
  if (weight_.defined() && weight_.device() == device) return weight_;
  const int64_t taps = g_.taps(), side = 2 * g_.radius + 1;
  at::Tensor w = at::empty({1, taps, g_.out_h, g_.out_w}, at::kFloat);
  float* wp = w.data_ptr<float>();
  const float sigma = static_cast<float>(g_.sigma);
  for (int64_t ky = 0; ky < side; ++ky)
    for (int64_t kx = 0; kx < side; ++kx) {
      float* plane = wp + (ky * side + kx) * g_.out_h * g_.out_w;
      for (int64_t y = 0; y < g_.out_h; ++y) {
        const float dy = static_cast<float>(y) - static_cast<float>(g_.margin + g_.step * (row_block_[y] + ky - g_.padding));
        for (int64_t x = 0; x < g_.out_w; ++x) {
          const float dx = static_cast<float>(x) - static_cast<float>(g_.margin + g_.step * (col_block_[x] + kx - g_.padding));
          const float t = std::max(std::sqrt(dy * dy + dx * dx) / sigma - 0.5f, 0.0f);
          plane[y * g_.out_w + x] = std::exp(-2.0f * t * t);
        }
      }
    }
  weight_ = w.to(device);
  return weight_;
}

at::Tensor MaskGenerator::composed(const at::Tensor& params) const {
  const int64_t side = 2 * g_.radius + 1, masks = params.size(0);
  at::Tensor cols = at::im2col(params, {side, side}, {1, 1}, {g_.padding, g_.padding}, {1, 1});
  cols = cols.reshape({masks, g_.taps(), g_.mid_h, g_.mid_w});
  at::Tensor up = at::upsample_nearest2d(cols, {g_.step * g_.mid_h, g_.step * g_.mid_w}, c10::nullopt, c10::nullopt);
  up = up.slice(2, 0, g_.out_h).slice(3, 0, g_.out_w);
  at::Tensor v = up.mul(composed_weight(params.device()));
  at::Tensor m = v.mul(at::softmax(v.mul(kColdness), 1)).sum(1, /*keepdim=*/true);
  return m.clamp(0, 1);
}

}  // namespace ts
