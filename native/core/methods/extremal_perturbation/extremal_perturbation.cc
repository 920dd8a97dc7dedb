// Extremal perturbations (Fong, Patrick & Vedaldi, ICCV 2019), as TorchRay 1.0 implements them: for
// every (job, area) a smooth mask of the given area that maximises (preserve) or minimises (delete) the
// target's score, or both at once (dual), found by SGD with momentum on a coarse parameter grid under a
// growing area penalty. All masks of a chunk run through the model as ONE batch per iteration; the loop
// stays on the device with no host sync except for progress every `progressEvery` iterations.
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <string>

#include "core/explain.h"
#include "core/loop_module.h"
#include "core/methods/extremal_perturbation/area_penalty.h"
#include "core/methods/extremal_perturbation/mask_generator.h"
#include "core/methods/extremal_perturbation/perturbation.h"
#include "core/postprocess.h"

namespace ts {
namespace {

// Steps between two checks that the objective is still finite.
constexpr int64_t kFiniteCheckEvery = 16;

struct EpOptions {
  std::vector<double> areas;
  std::string perturbation, variant, reward;
  double max_blur, sigma, learning_rate, momentum, area_weight, area_weight_growth;
  int64_t levels, step, max_iter;
  int64_t batch_size;     // rows through the model per step, 0: all (lib/methods/extremal-perturbation.ts sizes it)
  double stop_tolerance;  // 0: run max_iter steps; else stop a chunk whose masks all moved less over a window
  int64_t stop_window;
  bool jitter, fused;
  std::string memory_format;  // "auto" | "contiguous" | "channels-last": the loop copy's layout
  bool freeze;                // run the loop on a frozen, BatchNorm-folded copy of the model
  bool bf16;                  // the model's copy in bfloat16 (mask parameters and optimiser stay float32)
};

EpOptions read_options(const Options& o) {
  EpOptions e;
  e.areas = o.list("areas");
  e.perturbation = o.string("perturbation");
  e.variant = o.string("variant");
  e.reward = o.string("reward");
  e.max_blur = o.number("maxBlur");
  e.levels = o.integer("numLevels");
  e.step = o.integer("step");
  e.sigma = o.number("sigma");
  e.max_iter = o.integer("maxIter");
  e.jitter = o.flag("jitter");
  e.learning_rate = o.number("learningRate");
  e.momentum = o.number("momentum");
  e.area_weight = o.number("areaWeight");
  e.area_weight_growth = o.number("areaWeightGrowth");
  e.fused = o.string("kernel") == "fused";
  e.batch_size = o.integer("batchSize");
  e.stop_tolerance = o.number("stopTolerance");
  e.stop_window = o.integer("stopWindow");
  e.memory_format = o.string("memoryFormat");
  e.freeze = o.flag("freeze");
  e.bf16 = o.string("precision") == "bf16";
  return e;
}

// Per-mask reward from the batch's scores (rows: the masks, then for 'dual' the deleted copies).
at::Tensor reward_of(const at::Tensor& y, const at::Tensor& target, const EpOptions& o, int64_t masks) {
  auto score = [&](const at::Tensor& s) {
    at::Tensor t = s.gather(1, target.view({-1, 1})).squeeze(1);
    if (o.reward != "contrastive") return t;
    // best other class: the target's column pushed down to -100, as TorchRay does
    at::Tensor others = s.scatter(1, target.view({-1, 1}), -100.0);
    return t - std::get<0>(others.max(1));
  };
  if (o.variant == "dual") return score(y.slice(0, 0, masks)) - score(y.slice(0, masks, 2 * masks));
  at::Tensor r = score(y);
  return o.variant == "delete" ? r.neg() : r;
}

ExplainResult extremal_perturbation(Model& model, const ExplainRequest& request, RunContext& context) {
  torch::AutoGradMode grad_mode(true);
  const auto t_start = std::chrono::steady_clock::now();
  const EpOptions o = read_options(request.options);
  if (o.bf16) {
    const std::string why = bf16_unsupported();
    if (!why.empty())
      throw Error("ERR_UNSUPPORTED", "Expected libtorch 2.x for options.precision 'bf16' but " + why + "; or use precision 'fp32'", "options.precision");
  }
  const at::Device device = model.device();
  const int64_t jobs = static_cast<int64_t>(request.job_image.size());
  const int64_t areas = static_cast<int64_t>(o.areas.size());
  const int64_t total = jobs * areas;
  const int64_t H = request.images.size(2), W = request.images.size(3);
  const bool dual = o.variant == "dual";

  // Per image once: the model's input and its pyramid.
  at::Tensor input;
  {
    at::NoGradGuard ng;
    input = model.prepare(request.images.to(device));
  }
  Perturbation pert(input, o.perturbation, o.levels, o.max_blur);
  // The loop runs on a copy of the model (the user's module is never touched): channels-last weights for
  // convolutional models, and frozen (BatchNorm folded) when asked; only the input's gradient is needed.
  const bool channels_last =
      o.memory_format == "channels-last" || (o.memory_format == "auto" && device.is_cpu() && input.dim() == 4 && has_conv_weights(model.module()));
  LoopModule loop = make_loop_module(model.differentiable(), channels_last, o.freeze, o.bf16);  // fused attention taken apart
  // TORCH_SALIENCY_EP_MIRROR=0: the generator's kernels without mirrored vectors (same numbers, bit for bit;
  // for the benchmark that measures what the mirroring saves).
  const char* mirror_env = std::getenv("TORCH_SALIENCY_EP_MIRROR");
  MaskGenerator gen(MaskGeometry::make(H, W, o.step, o.sigma), o.fused, simd::chosen(), !(mirror_env && std::string(mirror_env) == "0"));
  const MaskGeometry& g = gen.geometry();
  const int64_t full_size = g.out_h * g.out_w;

  // Chunk size in masks: batchSize counts rows through the model ('dual' sends two per mask).
  const int64_t rows = o.batch_size;
  const int64_t per_chunk = rows <= 0 ? total : std::max<int64_t>(1, rows / (dual ? 2 : 1));

  at::Tensor maps = at::empty({total, H, W}, at::kFloat);
  at::Tensor full_area = at::empty({total}, at::kFloat);    // mean of the full mask (what the penalty constrains)
  at::Tensor full_binary = at::empty({total}, at::kFloat);  // fraction of the full mask above 1/2
  at::Tensor reward_hist = at::zeros({total, o.max_iter}, input.options());
  at::Tensor penalty_hist = at::zeros({total, o.max_iter}, input.options());
  std::vector<int64_t> mask_job(total), mask_image(total), mask_target(total);
  std::vector<double> mask_area(total);
  std::vector<int64_t> mask_steps(total, o.max_iter);  // steps each mask ran (fewer with the stopping rule)
  int64_t most_steps = 0;
  for (int64_t j = 0; j < jobs; ++j)
    for (int64_t a = 0; a < areas; ++a) {
      mask_job[j * areas + a] = j;
      mask_image[j * areas + a] = request.job_image[j];
      mask_target[j * areas + a] = request.job_target[j];
      mask_area[j * areas + a] = o.areas[a];
    }
  const double setup_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_start).count();
  const auto t_loop = std::chrono::steady_clock::now();
  int64_t done_iterations = 0;
  // Where a step's time goes, summed over iterations (CPU only: on CUDA the host merely queues the work,
  // so per-phase host times would be launch times): mask generator, perturbation, model forward,
  // objective (reward and area penalty), backward (the model's and the mask ops'), update.
  const bool timed_phases = device.is_cpu();
  enum Phase { kMask, kPerturb, kForward, kObjective, kBackward, kUpdate, kPhases };
  const char* const phase_names[kPhases] = {"maskMs", "perturbMs", "forwardMs", "objectiveMs", "backwardMs", "updateMs"};
  std::array<double, kPhases> phase_ms{};
  using Clock = std::chrono::steady_clock;
  const auto lap = [&](Clock::time_point& since, Phase phase) {
    if (!timed_phases) return;
    const Clock::time_point now = Clock::now();
    phase_ms[phase] += std::chrono::duration<double, std::milli>(now - since).count();
    since = now;
  };
  const int64_t chunk_count = (total + per_chunk - 1) / per_chunk;

  for (auto [begin, end] : chunks(total, per_chunk)) {
    const int64_t m = end - begin;
    std::vector<int64_t> image(mask_image.begin() + begin, mask_image.begin() + end);
    std::vector<int64_t> target(mask_target.begin() + begin, mask_target.begin() + end);
    std::vector<int64_t> image_rows = image, row_mask(m);
    for (int64_t i = 0; i < m; ++i) row_mask[i] = i;
    std::vector<bool> row_invert(m, o.variant == "delete");
    if (dual) {
      image_rows.insert(image_rows.end(), image.begin(), image.end());
      for (int64_t i = 0; i < m; ++i) row_mask.push_back(i);
      row_invert.insert(row_invert.end(), m, true);
    }
    at::Tensor target_t = at::tensor(target, at::kLong).to(device);
    // Reference of the area penalty: (1 - a) N zeros, then ones.
    std::vector<int64_t> zeros(m);
    for (int64_t i = 0; i < m; ++i) zeros[i] = static_cast<int64_t>(static_cast<double>(full_size) * (1.0 - mask_area[begin + i]));
    at::Tensor params = at::ones({m, 1, g.in_h, g.in_w}, input.options());
    at::Tensor velocity;
    at::Tensor last_full;
    double lambda = o.area_weight;
    PenaltyHints hints;
    at::Tensor window_start;  // the chunk's full masks at the start of the current stopping window
    int64_t steps = o.max_iter;
    for (int64_t t = 0; t < o.max_iter; ++t) {
      context.check_cancelled();
      Clock::time_point since = timed_phases ? Clock::now() : Clock::time_point{};
      at::Tensor p = params.detach().requires_grad_(true);
      at::Tensor full = gen.full(p);
      lap(since, kMask);
      const bool flip = o.jitter && t % 2 == 0;  // jitter: the perturbed batch mirrored on even steps
      // preserve: the masks; delete: 1 - masks; dual: both, masks first (rows of the batch per mask).
      at::Tensor x = pert.apply_crop(full, g.margin, g.margin, row_mask, row_invert, image_rows, o.fused, flip);
      lap(since, kPerturb);
      if (loop.bf16) x = x.to(at::kBFloat16);
      if (loop.channels_last) x = x.contiguous(at::MemoryFormat::ChannelsLast);
      at::Tensor y = model.scores(loop.module, x);
      if (loop.bf16) y = y.to(at::kFloat);  // the reward, the penalty and the optimiser in float32
      lap(since, kForward);
      at::Tensor reward = reward_of(y, target_t, o, m);
      at::Tensor penalty = area_penalty(full, zeros, o.fused, &hints);
      at::Tensor weighted = penalty.mul(lambda);
      at::Tensor energy = reward - weighted;
      lap(since, kObjective);
      at::Tensor grad = torch::autograd::grad({energy.sum().neg()}, {p})[0];
      lap(since, kBackward);
      {
        at::NoGradGuard ng;
        // SGD with momentum and dampening (PyTorch's rule: the first step takes the gradient itself).
        if (!velocity.defined())
          velocity = grad.clone();
        else
          velocity.mul_(o.momentum).add_(grad, 1.0 - o.momentum);
        params = params.sub(velocity, o.learning_rate).clamp_(0, 1);
        reward_hist.slice(0, begin, end).select(1, t).copy_(reward.detach());
        penalty_hist.slice(0, begin, end).select(1, t).copy_(weighted.detach());
        last_full = full.detach();
      }
      lap(since, kUpdate);
      lambda *= o.area_weight_growth;
      const int64_t it = done_iterations + t;
      if (context.wants_progress(it, o.max_iter * chunk_count)) {
        context.report({it, o.max_iter * chunk_count, energy.detach().sum().item<double>()});
      }
      // A run that went non-finite (the model's scores, or an option such as areaWeightGrowth that overflows)
      // stops within kFiniteCheckEvery steps, instead of running on to NaN masks: one host sync per check.
      if ((t + 1) % kFiniteCheckEvery == 0 && !at::isfinite(energy.detach()).all().item<bool>()) {
        throw Error("ERR_NON_FINITE_RESULT", "The extremal perturbation's objective went non-finite (NaN or Infinity) by step " + std::to_string(t + 1) +
                                                 " on finite input: the model's scores, or an option that makes it overflow (areaWeight, "
                                                 "areaWeightGrowth), produced it");
      }
      // Opt-in stopping rule, checked every stop_window steps: stop once every mask of the chunk moved by at
      // most stop_tolerance (mean absolute change of its full mask) since the previous check.
      if (o.stop_tolerance > 0 && (t + 1) % o.stop_window == 0 && t + 1 < o.max_iter) {
        at::NoGradGuard ng;
        const bool settled = window_start.defined() && last_full.sub(window_start).abs_().flatten(1).mean(1).max().item<double>() <= o.stop_tolerance;
        window_start = last_full;
        if (settled) {
          steps = t + 1;
          break;
        }
      }
    }
    done_iterations += steps;
    most_steps = std::max(most_steps, steps);
    std::fill(mask_steps.begin() + begin, mask_steps.begin() + end, steps);
    if (steps < o.max_iter) {
      // Histories of the steps not run: NaN, not zero.
      reward_hist.slice(0, begin, end).slice(1, steps).fill_(std::nan(""));
      penalty_hist.slice(0, begin, end).slice(1, steps).fill_(std::nan(""));
    }
    maps.slice(0, begin, end).copy_(gen.crop(last_full).squeeze(1).to(at::kCPU));
    full_area.slice(0, begin, end).copy_(last_full.flatten(1).mean(1).to(at::kCPU));
    full_binary.slice(0, begin, end).copy_(last_full.flatten(1).gt(0.5).to(at::kFloat).mean(1).to(at::kCPU));
  }
  const double loop_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_loop).count();

  // Scores of the target on the original, preserved and deleted images (final masks, no jitter).
  ExplainResult result;
  {
    c10::InferenceMode guard;
    at::Tensor target_all = at::tensor(mask_target, at::kLong).to(device);
    at::Tensor masks_dev = maps.to(device).unsqueeze(1);
    std::vector<at::Tensor> kept, deleted;
    int64_t rows_final = rows <= 0 ? total : rows;
    for (auto [b, e] : chunks(total, rows_final)) {
      std::vector<int64_t> image(mask_image.begin() + b, mask_image.begin() + e);
      at::Tensor tg = target_all.slice(0, b, e).view({-1, 1});
      at::Tensor mk = masks_dev.slice(0, b, e);
      kept.push_back(model.scores(model.module(), pert.apply(mk, image, false)).gather(1, tg).squeeze(1));
      deleted.push_back(model.scores(model.module(), pert.apply(mk.neg().add(1), image, false)).gather(1, tg).squeeze(1));
    }
    at::Tensor job_targets = at::tensor(request.job_target, at::kLong).to(device).view({-1, 1});
    at::Tensor job_images = at::tensor(request.job_image, at::kLong).to(device);
    at::Tensor original = model.scores(model.module(), input.index_select(0, job_images)).gather(1, job_targets).squeeze(1);
    result.add("scoreOriginal", original);
    result.add("scorePreserved", at::cat(kept));
    result.add("scoreDeleted", at::cat(deleted));
  }
  result.add("areaReached", full_area);
  result.add("areaAboveHalf", full_binary);
  result.add("areaInImage", maps.flatten(1).mean(1));
  result.add("areas", at::tensor(mask_area, at::kDouble).to(at::kFloat));
  result.add("steps", at::tensor(mask_steps, at::kLong).to(at::kFloat));
  result.add("rewardHistory", reward_hist.slice(1, 0, most_steps).contiguous());
  result.add("penaltyHistory", penalty_hist.slice(1, 0, most_steps).contiguous());
  result.maps = postprocess(maps, request.options);
  const double total_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_start).count();
  const double iterations_run = static_cast<double>(std::max<int64_t>(1, done_iterations));
  if (timed_phases) {
    Record phases;
    for (int i = 0; i < kPhases; ++i) phases.emplace_back(phase_names[i], phase_ms[i] / iterations_run);
    result.add("phases", std::move(phases));
  }
  result.add("loop", Record{{"channelsLast", loop.channels_last ? 1.0 : 0.0}, {"frozen", loop.frozen ? 1.0 : 0.0}, {"bf16", loop.bf16 ? 1.0 : 0.0}});
  result.add("timings", Record{{"setupMs", setup_ms}, {"loopMs", loop_ms}, {"msPerIteration", loop_ms / iterations_run}, {"nativeMs", total_ms}});
  return result;
}

}  // namespace

TS_REGISTER_METHOD("extremal-perturbation", extremal_perturbation);

}  // namespace ts
