// 'rise' (Petsiuk et al. 2018): saliency as the expected class probability under random masks,
//   S_c(u) = 1 / (N p) * sum_i P_c(x * M_i) M_i(u),
// with M_i a numCells x numCells grid of Bernoulli(p) cells, bilinearly upsampled to
// (numCells + 1) * cell size and cropped at a random shift of up to one cell. The masks come from a
// generator of their own (seed), so a run is reproducible and leaves the global RNG alone; they multiply
// the model's input (after normalisation, as TorchRay), are drawn and made chunk by chunk on the CPU (memory
// does not grow with numMasks; the abort signal is read between chunks) and serve every image and every
// target of the call: one forward pass per (chunk of masks, image).
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "core/explain.h"
#include "core/postprocess.h"

namespace ts {
namespace {

// The random draws of some masks: grid cells and shifts.
struct MaskDraws {
  at::Tensor grid;    // count x 1 x cells x cells, 0/1
  at::Tensor dy, dx;  // count, shifts within one cell
};

// Masks are drawn from the seeded generator in blocks of kDrawBlock: a block's grid values, then its
// shifts, block after block. Mask i so depends only on the seed and i, never on batchSize, and memory
// holds one block of draws however many masks a call asks for.
constexpr int64_t kDrawBlock = 1024;

class MaskStream {
 public:
  MaskStream(uint64_t seed, int64_t count, int64_t cells, double p, int64_t ch, int64_t cw)
      : gen_(at::make_generator<at::CPUGeneratorImpl>(seed)), left_(count), cells_(cells), p_(p), ch_(ch), cw_(cw) {}

  // The draws of the next `count` masks.
  MaskDraws next(int64_t count) {
    std::vector<at::Tensor> grid, dy, dx;
    while (count > 0) {
      if (pos_ == size_) refill();
      const int64_t take = std::min(count, size_ - pos_);
      grid.push_back(block_.grid.slice(0, pos_, pos_ + take));
      dy.push_back(block_.dy.slice(0, pos_, pos_ + take));
      dx.push_back(block_.dx.slice(0, pos_, pos_ + take));
      pos_ += take;
      count -= take;
    }
    return {at::cat(grid), at::cat(dy), at::cat(dx)};
  }

 private:
  void refill() {
    size_ = std::min(kDrawBlock, left_);
    TORCH_CHECK(size_ > 0, "RISE drew more masks than asked for");
    left_ -= size_;
    pos_ = 0;
    block_.grid = at::rand({size_, 1, cells_, cells_}, gen_).lt(p_).to(at::kFloat);
    block_.dy = at::randint(ch_, {size_}, gen_, at::kLong);
    block_.dx = at::randint(cw_, {size_}, gen_, at::kLong);
  }

  at::Generator gen_;
  int64_t left_, cells_;
  double p_;
  int64_t ch_, cw_;
  MaskDraws block_;
  int64_t pos_ = 0, size_ = 0;
};

// The masks of `d`: bilinear upsampling of each grid to (cells + 1) cells, crop at its shift.
at::Tensor make_masks(const MaskDraws& d, int64_t cells, int64_t height, int64_t width) {
  const int64_t ch = (height + cells - 1) / cells, cw = (width + cells - 1) / cells;
  const int64_t count = d.grid.size(0);
  at::Tensor up = at::upsample_bilinear2d(d.grid, {(cells + 1) * ch, (cells + 1) * cw}, /*align_corners=*/false);
  auto ay = d.dy.accessor<int64_t, 1>();
  auto ax = d.dx.accessor<int64_t, 1>();
  std::vector<at::Tensor> crops;
  crops.reserve(count);
  for (int64_t i = 0; i < count; ++i) crops.push_back(up[i].slice(1, ay[i], ay[i] + height).slice(2, ax[i], ax[i] + width));
  return at::stack(crops);  // count x 1 x H x W
}

ExplainResult rise(Model& model, const ExplainRequest& request, RunContext& context) {
  c10::InferenceMode guard;
  const Options& o = request.options;
  const int64_t num_masks = o.integer("numMasks"), cells = o.integer("numCells");
  const double p = o.number("p");
  const std::string& activation = o.string("activation");
  const int64_t n = request.images.size(0), h = request.images.size(2), w = request.images.size(3);
  const int64_t batch = o.integer("batchSize");  // masks per forward pass (lib/methods/rise.ts sizes it)
  MaskStream draws(static_cast<uint64_t>(o.integer("seed")), num_masks, cells, p, (h + cells - 1) / cells, (w + cells - 1) / cells);

  // Jobs by image: one forward per image and chunk serves all of its targets.
  std::map<int64_t, std::vector<int64_t>> jobs_of;
  for (size_t j = 0; j < request.job_image.size(); ++j) jobs_of[request.job_image[j]].push_back(static_cast<int64_t>(j));
  std::vector<at::Tensor> inputs(n);
  for (const auto& kv : jobs_of) inputs[kv.first] = model.prepare(request.images.slice(0, kv.first, kv.first + 1));
  const int64_t jobs = static_cast<int64_t>(request.job_image.size());
  at::Tensor sal = at::zeros({jobs, h * w}, inputs[jobs_of.begin()->first].options());
  // Per image, once: its jobs' rows in `sal` and their targets' columns in the scores.
  std::map<int64_t, std::pair<at::Tensor, at::Tensor>> rows_of;
  for (const auto& kv : jobs_of) {
    std::vector<int64_t> targets;
    for (int64_t j : kv.second) targets.push_back(request.job_target[j]);
    rows_of[kv.first] = {at::tensor(kv.second, at::kLong).to(sal.device()), at::tensor(targets, at::kLong).to(sal.device())};
  }

  auto parts = chunks(num_masks, batch);
  for (size_t k = 0; k < parts.size(); ++k) {
    context.check_cancelled();
    auto [b, e] = parts[k];
    at::Tensor masks = make_masks(draws.next(e - b), cells, h, w).to(sal.device());
    at::Tensor flat = masks.view({e - b, h * w});
    for (const auto& kv : jobs_of) {
      at::Tensor y = model.scores(model.module(), inputs[kv.first] * masks);
      if (activation == "softmax")
        y = at::softmax(y, 1);
      else if (activation == "sigmoid")
        y = at::sigmoid(y);
      const auto& [idx, t] = rows_of.at(kv.first);
      sal.index_add_(0, idx, y.index_select(1, t).t().matmul(flat));
    }
    if (context.wants_progress(static_cast<int64_t>(k), static_cast<int64_t>(parts.size()))) {
      context.report({static_cast<int64_t>(k) + 1, static_cast<int64_t>(parts.size()), std::nan("")});
    }
  }
  ExplainResult result;
  result.maps = postprocess(sal.div(static_cast<double>(num_masks) * p).view({jobs, h, w}), request.options).to(at::kCPU).contiguous();
  return result;
}

}  // namespace
TS_REGISTER_METHOD("rise", rise);
}  // namespace ts
