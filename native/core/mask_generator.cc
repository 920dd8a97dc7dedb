#include "core/mask_generator.h"

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "core/errors.h"

namespace ts {
namespace {

constexpr float kColdness = 20.0f;  // temperature of the smooth max (TorchRay's `coldness`)

// exp for arguments in [-87, 88] (the smooth max only sees [0, 20]; callers keep it in range): Cody-Waite
// range reduction and a degree-6 polynomial, within ~2 ulp of expf. Branch-free, so loops using it vectorise.
inline float fast_exp(float x) {
  const int32_t n = static_cast<int32_t>(x * 1.44269504088896341f + 128.5f) - 128;  // floor(x log2 e + 1/2)
  const float fn = static_cast<float>(n);
  float r = x - fn * 0.693359375f;
  r = r + fn * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r * r + r + 1.0f;
  const int32_t bits = (n + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return y * scale;
}

constexpr int kMaxTaps = 1024;  // (2r+1)^2 for r up to 15

// Gathers the taps of block (a, c) (the parameters around it, zero outside the grid) into `local`.
inline void gather_block(const float* params, const MaskGeometry& g, int64_t a, int64_t c, float* local) {
  const int64_t side = 2 * g.radius + 1;
  for (int64_t ky = 0; ky < side; ++ky) {
    const int64_t i = a + ky - g.padding;
    for (int64_t kx = 0; kx < side; ++kx) {
      const int64_t j = c + kx - g.padding;
      local[ky * side + kx] = (i >= 0 && i < g.in_h && j >= 0 && j < g.in_w) ? params[i * g.in_w + j] : 0.0f;
    }
  }
}

// The step x step pixels of one block share their taps' parameters; only the weights differ. So the
// kernels loop over taps outside and over the block's pixels inside (contiguous, vectorised), with
// tables laid out tap-major: w[k][r] and exp(20 w[k][r]) for r = ry * step + rx. A parameter at exactly
// 0 or 1 (the grid starts at 1 and the clamp pins many at 0 or 1) needs no exp: e = 1 or the table's.
// Per pixel: S = sum_k e_k, T = sum_k v_k e_k, out = T / S with v_k = w_k m_k and e_k = exp(20 v_k).
inline void block_sums(const float* table, const float* etable, const float* local, int64_t taps, int64_t block, float* S, float* T) {
  std::fill(S, S + block, 0.0f);
  std::fill(T, T + block, 0.0f);
  float zeros = 0;
  for (int64_t k = 0; k < taps; ++k) {
    const float m = std::min(std::max(local[k], -4.0f), 4.0f);  // keeps 20 w m inside fast_exp's range
    const float* w = table + k * block;
    if (m == 0.0f) {
      zeros += 1.0f;
    } else if (m == 1.0f) {
      const float* ew = etable + k * block;
      for (int64_t r = 0; r < block; ++r) {
        S[r] += ew[r];
        T[r] += w[r] * ew[r];
      }
    } else {
      for (int64_t r = 0; r < block; ++r) {
        const float vr = w[r] * m;
        const float er = fast_exp(kColdness * vr);
        S[r] += er;
        T[r] += vr * er;
      }
    }
  }
  for (int64_t r = 0; r < block; ++r) S[r] += zeros;
}

__attribute__((target_clones("avx2", "default"))) void forward_rows(const float* params, const MaskGeometry& g, const float* table,
                                                                      const float* etable, float* out, float* norm, int64_t begin, int64_t end) {
  const int64_t taps = g.taps(), step = g.step, block = step * step;
  float local[kMaxTaps];
  std::vector<float> S(block), T(block);
  for (int64_t task = begin; task < end; ++task) {
    const int64_t b = task / g.mid_h, a = task % g.mid_h;
    const float* p = params + b * g.in_h * g.in_w;
    float* o = out + b * g.out_h * g.out_w;
    float* n = norm + b * g.out_h * g.out_w;
    const int64_t y0 = a * step, y1 = std::min(g.out_h, y0 + step);
    for (int64_t c = 0; c < g.mid_w; ++c) {
      gather_block(p, g, a, c, local);
      block_sums(table, etable, local, taps, block, S.data(), T.data());
      const int64_t x0 = c * step, x1 = std::min(g.out_w, x0 + step);
      for (int64_t y = y0; y < y1; ++y) {
        for (int64_t x = x0; x < x1; ++x) {
          const int64_t r = (y - y0) * step + (x - x0);
          o[y * g.out_w + x] = std::min(std::max(T[r] / S[r], 0.0f), 1.0f);
          n[y * g.out_w + x] = S[r];
        }
      }
    }
  }
}

// Backward of block row a of mask b into `acc` (side x (in_w + 2 padding)): the gradient of each tap's
// parameter, sum over the block's pixels of g / S e_k (1 + 20 (v_k - out)) w_k.
__attribute__((target_clones("avx2", "default"))) void backward_rows(const float* params, const MaskGeometry& g, const float* table,
                                                                       const float* etable, const float* out, const float* norm, const float* grad,
                                                                       float* acc_all, int64_t begin, int64_t end) {
  const int64_t taps = g.taps(), step = g.step, side = 2 * g.radius + 1, block = step * step;
  const int64_t wide = g.in_w + 2 * g.padding;
  float local[kMaxTaps], blockgrad[kMaxTaps];
  std::vector<float> scale(block), value(block);
  for (int64_t task = begin; task < end; ++task) {
    const int64_t b = task / g.mid_h, a = task % g.mid_h;
    const float* p = params + b * g.in_h * g.in_w;
    const float* o = out + b * g.out_h * g.out_w;
    const float* n = norm + b * g.out_h * g.out_w;
    const float* gr = grad + b * g.out_h * g.out_w;
    float* acc = acc_all + task * side * wide;
    std::fill(acc, acc + side * wide, 0.0f);
    const int64_t y0 = a * step, y1 = std::min(g.out_h, y0 + step);
    for (int64_t c = 0; c < g.mid_w; ++c) {
      const int64_t x0 = c * step, x1 = std::min(g.out_w, x0 + step);
      // Incoming gradient over S per pixel (0 for pixels outside the mask and where the clamp is flat).
      std::fill(scale.begin(), scale.end(), 0.0f);
      std::fill(value.begin(), value.end(), 0.0f);
      bool any = false;
      for (int64_t y = y0; y < y1; ++y) {
        for (int64_t x = x0; x < x1; ++x) {
          const int64_t u = y * g.out_w + x, r = (y - y0) * step + (x - x0);
          if (gr[u] == 0.0f || o[u] < 0.0f || o[u] > 1.0f) continue;
          scale[r] = gr[u] / n[u];
          value[r] = o[u];
          any = true;
        }
      }
      if (!any) continue;
      gather_block(p, g, a, c, local);
      for (int64_t k = 0; k < taps; ++k) {
        const float m = std::min(std::max(local[k], -4.0f), 4.0f);
        const float* w = table + k * block;
        float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int64_t r = 0;
        if (m == 0.0f) {  // v = 0, e = 1
          for (; r + 8 <= block; r += 8)
            for (int l = 0; l < 8; ++l) lanes[l] += scale[r + l] * w[r + l] * (1.0f - kColdness * value[r + l]);
          for (; r < block; ++r) lanes[0] += scale[r] * w[r] * (1.0f - kColdness * value[r]);
        } else if (m == 1.0f) {
          const float* ew = etable + k * block;
          for (; r + 8 <= block; r += 8)
            for (int l = 0; l < 8; ++l) lanes[l] += scale[r + l] * w[r + l] * ew[r + l] * (1.0f + kColdness * (w[r + l] - value[r + l]));
          for (; r < block; ++r) lanes[0] += scale[r] * w[r] * ew[r] * (1.0f + kColdness * (w[r] - value[r]));
        } else {
          for (; r + 8 <= block; r += 8)
            for (int l = 0; l < 8; ++l) {
              const float vr = w[r + l] * m;
              lanes[l] += scale[r + l] * w[r + l] * fast_exp(kColdness * vr) * (1.0f + kColdness * (vr - value[r + l]));
            }
          for (; r < block; ++r) {
            const float vr = w[r] * m;
            lanes[0] += scale[r] * w[r] * fast_exp(kColdness * vr) * (1.0f + kColdness * (vr - value[r]));
          }
        }
        blockgrad[k] = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
      }
      for (int64_t ky = 0; ky < side; ++ky) {
        float* row = acc + ky * wide + c;
        for (int64_t kx = 0; kx < side; ++kx) row[kx] += blockgrad[ky * side + kx];
      }
    }
  }
}

class SmoothMaxFunction : public torch::autograd::Function<SmoothMaxFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& params, const MaskGenerator* gen) {
    const MaskGeometry& g = gen->geometry();
    at::Tensor p = params.contiguous();
    const int64_t masks = p.size(0);
    at::Tensor out = at::empty({masks, 1, g.out_h, g.out_w}, p.options());
    at::Tensor norm = at::empty({masks, 1, g.out_h, g.out_w}, p.options());
    const float* pp = p.data_ptr<float>();
    float* op = out.data_ptr<float>();
    float* np = norm.data_ptr<float>();
    const float* table = gen->weight_table().data();
    const float* etable = gen->exp_table().data();
    at::parallel_for(0, masks * g.mid_h, 1, [&](int64_t begin, int64_t end) { forward_rows(pp, g, table, etable, op, np, begin, end); });
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
    const int64_t masks = p.size(0), side = 2 * g.radius + 1, wide = g.in_w + 2 * g.padding;
    at::Tensor acc = at::empty({masks, g.mid_h, side, wide}, p.options());
    const float* pp = p.data_ptr<float>();
    const float* op = out.data_ptr<float>();
    const float* np = norm.data_ptr<float>();
    const float* gp = grad.data_ptr<float>();
    float* ap = acc.data_ptr<float>();
    const float* table = gen->weight_table().data();
    const float* etable = gen->exp_table().data();
    at::parallel_for(0, masks * g.mid_h, 1, [&](int64_t begin, int64_t end) { backward_rows(pp, g, table, etable, op, np, gp, ap, begin, end); });
    // Sum the block rows' partial gradients into the parameter grid (fixed order: deterministic).
    at::Tensor result = at::zeros_like(p);
    float* rp = result.data_ptr<float>();
    at::parallel_for(0, masks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        float* r = rp + b * g.in_h * g.in_w;
        for (int64_t a = 0; a < g.mid_h; ++a) {
          const float* blk = ap + (b * g.mid_h + a) * side * wide;
          for (int64_t ky = 0; ky < side; ++ky) {
            const int64_t i = a + ky - g.padding;
            if (i < 0 || i >= g.in_h) continue;
            const float* row = blk + ky * wide + g.padding;
            float* dst = r + i * g.in_w;
            for (int64_t j = 0; j < g.in_w; ++j) dst[j] += row[j];
          }
        }
      }
    });
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

MaskGenerator::MaskGenerator(const MaskGeometry& geometry, bool fused) : g_(geometry), fused_(fused) {
  const int64_t side = 2 * g_.radius + 1, taps = g_.taps(), step = g_.step;
  if (taps > kMaxTaps) throw Error("ERR_OUT_OF_RANGE", "sigma / step is too large for the mask generator", "sigma");
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
  // Weight of tap (ky, kx) at offset (ry, rx) in a block: kernel(|u - (margin + step * i)| / sigma), where
  // the tap's parameter i = block + k - padding, so the offset u - step i depends on (r, k) only.
  table_.resize(step * step * taps);
  const float sigma = static_cast<float>(g_.sigma);
  for (int64_t ry = 0; ry < step; ++ry)
    for (int64_t rx = 0; rx < step; ++rx)
      for (int64_t ky = 0; ky < side; ++ky)
        for (int64_t kx = 0; kx < side; ++kx) {
          const float dy = static_cast<float>(ry - g_.margin - step * (ky - g_.padding));
          const float dx = static_cast<float>(rx - g_.margin - step * (kx - g_.padding));
          const float z = std::sqrt(dy * dy + dx * dx) / sigma;
          const float t = std::max(z - 0.5f, 0.0f);
          table_[(ky * side + kx) * step * step + ry * step + rx] = std::exp(-2.0f * t * t);
        }
  etable_.resize(table_.size());
  for (size_t i = 0; i < table_.size(); ++i) etable_[i] = fast_exp(kColdness * table_[i]);
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

at::Tensor smooth_max_mask_fused(const at::Tensor& params, const MaskGenerator& generator) {
  return SmoothMaxFunction::apply(params, &generator);
}

}  // namespace ts
