// Input-agnostic saliency (Akhtar & Jalwana, "Rethinking interpretation: input-agnostic saliency mapping
// of deep visual classifiers", AAAI 2023). A class's map is computed from the model alone: i.i.d. samples of
// an unrestricted distribution are nudged toward the class's loss minimum by gradient steps; the gradient
// information of the nudges is integrated over steps and samples and projected onto a norm-bounded set; the
// result is scaled into an image and refined without letting the model's confidence on it drop below a target.
//
// Every job (one per target class) runs in the same batch: jobs x samples images per step, one forward and
// one backward, no host synchronisation inside the loops (progress reads one number every progressEvery steps).
// The paper publishes no code; each choice below is documented in docs/methods/input-agnostic.md.
#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/script.h>

#include <cmath>
#include <limits>
#include <mutex>
#include <string>
#include <vector>

#include "core/explain.h"
#include "core/postprocess.h"

namespace ts {
namespace {

struct Settings {
  int64_t samples;
  int64_t iterations;
  double step;               // nudge step, in units of the per-sample RMS of the normalised gradient
  std::string distribution;  // "uniform" | "gaussian"
  std::string norm;          // "linf" | "l2"
  double epsilon;            // linf: max |value|; l2: RMS bound (radius epsilon * sqrt(C H W))
  int64_t refine_steps;
  double refine_step;
  double refine_blur;  // sigma in pixels of the smoothing applied at each refinement step
  double fidelity_target;
  int64_t seed;
};

Settings read_settings(const Options& o) {
  Settings s;
  s.samples = o.integer("samples");
  s.iterations = o.integer("iterations");
  s.step = o.number("stepSize");
  s.distribution = o.string("distribution");
  s.norm = o.string("norm");
  s.epsilon = o.number("epsilon");
  s.refine_steps = o.integer("refineSteps");
  s.refine_step = o.number("refineStepSize");
  s.refine_blur = o.number("refineBlur");
  s.fidelity_target = o.number("fidelityTarget");
  s.seed = o.integer("seed");
  return s;
}

// Per-sample root mean square, B x 1 x 1 x 1, floored so that a zero gradient stays zero.
at::Tensor rms(const at::Tensor& x) { return x.pow(2).flatten(1).mean(1).sqrt().clamp_min(1e-12).view({-1, 1, 1, 1}); }

// Projection onto the norm ball: linf clamps each value; l2 scales down when the RMS exceeds epsilon.
at::Tensor project(const at::Tensor& r, const Settings& s) {
  if (s.norm == "linf") return r.clamp(-s.epsilon, s.epsilon);
  at::Tensor n = r.pow(2).flatten(1).mean(1).sqrt().view({-1, 1, 1, 1});
  return r * (s.epsilon / n.clamp_min(s.epsilon));
}

// Gaussian smoothing that keeps the borders' brightness (zero padding divided by the blurred ones).
at::Tensor smooth(const at::Tensor& v, double sigma) {
  if (sigma <= 0) return v;
  at::Tensor ones = at::ones({1, 1, v.size(2), v.size(3)}, v.options());
  return gaussian_blur(v, sigma) / gaussian_blur(ones, sigma);
}

// A generator of the run's device seeded with the run's seed: the user's global generator is left alone,
// and the same seed gives the same samples.
at::Generator seeded_generator(const at::Device& device, int64_t seed) {
  at::Generator gen = at::globalContext().defaultGenerator(device).clone();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_current_seed(static_cast<uint64_t>(seed));
  return gen;
}

// Cross-entropy per row and softmax probability of the target, for scores N x K.
std::pair<at::Tensor, at::Tensor> loss_and_confidence(const at::Tensor& scores, const at::Tensor& targets) {
  at::Tensor logp = at::log_softmax(scores, 1);
  at::Tensor picked = logp.gather(1, targets.view({-1, 1})).squeeze(1);
  return {picked.neg(), picked.exp()};
}

ExplainResult input_agnostic(Model& model, const ExplainRequest& request, RunContext& context) {
  c10::AutoGradMode grad_mode(true);
  const Settings s = read_settings(request.options);
  const at::Device device = model.device();
  const auto f = at::TensorOptions().dtype(at::kFloat).device(device);
  const int64_t jobs = static_cast<int64_t>(request.job_target.size());
  const int64_t channels = request.images.size(1), height = request.images.size(2), width = request.images.size(3);
  const int64_t batch = jobs * s.samples;
  const int64_t chunk = request.options.integer("batchSize");
  const int64_t total = s.iterations + s.refine_steps + 1;

  at::Tensor targets = at::tensor(request.job_target, at::kLong).to(device);
  at::Tensor sample_targets = targets.repeat_interleave(s.samples);
  at::Generator gen = seeded_generator(device, s.seed);

  // rho: the current nudge of each class (jobs x C x H x W); integral: the sum over steps of the mean over
  // samples of the normalised descent directions (the gradient information the saliency map is made of).
  at::Tensor rho = at::zeros({jobs, channels, height, width}, f);
  at::Tensor integral = at::zeros_like(rho);
  at::Tensor loss_history = at::zeros({jobs, s.iterations}, f);
  const std::vector<int64_t> shape{batch, channels, height, width};

  // Runs the model on `input` in chunks of the batchSize option; returns d(sum of losses)/d(input),
  // the per-row losses and the per-row confidences.
  auto gradient = [&](const at::Tensor& input, const at::Tensor& rows_targets, bool backward) {
    std::vector<at::Tensor> grads, losses, confidences;
    for (auto [b, e] : chunks(input.size(0), chunk)) {
      at::Tensor z = input.slice(0, b, e).detach().requires_grad_(backward);
      at::Tensor scores = model.scores(model.differentiable(), model.prepare(z));
      auto [loss, confidence] = loss_and_confidence(scores, rows_targets.slice(0, b, e));
      if (backward) grads.push_back(torch::autograd::grad({loss.sum()}, {z})[0]);
      losses.push_back(loss.detach());
      confidences.push_back(confidence.detach());
    }
    return std::make_tuple(backward ? at::cat(grads) : at::Tensor(), at::cat(losses), at::cat(confidences));
  };

  for (int64_t it = 0; it < s.iterations; ++it) {
    context.check_cancelled();
    // Fresh i.i.d. samples every step; each is nudged by its class's current rho.
    at::Tensor x = s.distribution == "uniform" ? at::rand(shape, gen, f) : at::randn(shape, gen, f).mul_(0.25).add_(0.5);
    at::Tensor nudged = x.view({jobs, s.samples, channels, height, width}).add(rho.unsqueeze(1)).view(shape);
    auto [grad, loss, confidence] = gradient(nudged, sample_targets, true);
    // Descent direction per sample, normalised to unit RMS so that every sample weighs the same and the
    // step size is in image units; averaged over the samples of a class.
    at::Tensor direction = grad.neg().div(rms(grad)).view({jobs, s.samples, channels, height, width}).mean(1);
    integral.add_(direction);
    rho = project(rho + s.step * direction, s);
    loss_history.select(1, it).copy_(loss.view({jobs, s.samples}).mean(1));
    if (context.wants_progress(it, total)) context.report({it, total, loss.mean().item<double>()});
  }

  // Saliency: per pixel, the norm over channels of the integrated gradient information, scaled to [0, 1].
  at::Tensor saliency = integral.pow(2).sum(1).sqrt();
  saliency = saliency / saliency.flatten(1).amax(1).clamp_min(1e-12).view({-1, 1, 1});

  // Scaling: the average nudged sample is grey (the distribution's mean, 0.5) plus rho. Candidate pictures
  // stretch rho's contrast to fractions of the full [0, 1] range, sign kept (zero nudge = mid grey); each class
  // keeps the candidate the model is most confident on (one forward of jobs x candidates, no host sync).
  const std::vector<double> contrasts{0.25, 0.5, 0.75, 1.0};
  const int64_t nc = static_cast<int64_t>(contrasts.size());
  at::Tensor peak = rho.abs().flatten(1).amax(1).clamp_min(1e-12).view({-1, 1, 1, 1, 1});
  at::Tensor factors = at::tensor(std::vector<float>(contrasts.begin(), contrasts.end()), f).mul(0.5).view({1, nc, 1, 1, 1});
  at::Tensor candidates = (rho.unsqueeze(1) * factors / peak).add(0.5).clamp(0, 1);  // jobs x nc x C x H x W
  at::Tensor v;
  {
    auto [unused, closs, cconf] = gradient(candidates.view({jobs * nc, channels, height, width}), targets.repeat_interleave(nc), false);
    at::Tensor best = cconf.view({jobs, nc}).argmax(1);
    v = candidates.gather(1, best.view({jobs, 1, 1, 1, 1}).expand({jobs, 1, channels, height, width})).squeeze(1).contiguous();
  }

  // Refinement: smooth and take a fidelity step, keeping the most refined iterate whose confidence is at
  // least the target (or, until one reaches it, the most confident one). Fidelity is measured at every step.
  at::Tensor history = at::zeros({jobs, s.refine_steps + 1}, f);
  at::Tensor kept = v.clone();
  at::Tensor kept_fidelity = at::full({jobs}, -1.0, f);
  at::Tensor kept_step = at::zeros({jobs}, f);
  for (int64_t k = 0; k <= s.refine_steps; ++k) {
    context.check_cancelled();
    const bool last = k == s.refine_steps;
    auto [grad, loss, confidence] = gradient(v, targets, !last);
    history.select(1, k).copy_(confidence);
    at::Tensor take = confidence.ge(s.fidelity_target).logical_or(confidence.gt(kept_fidelity));
    kept = at::where(take.view({-1, 1, 1, 1}), v, kept);
    kept_fidelity = at::where(take, confidence, kept_fidelity);
    kept_step = at::where(take, at::full_like(kept_step, static_cast<double>(k)), kept_step);
    if (!last) v = (smooth(v, s.refine_blur) - s.refine_step * grad.div(rms(grad))).clamp(0, 1).detach();
    const int64_t step = s.iterations + k;
    if (context.wants_progress(step, total)) context.report({step, total, loss.mean().item<double>()});
  }

  ExplainResult result;
  result.maps = postprocess(saliency, request.options);
  result.add("visualization", kept);
  result.add("perturbation", rho);
  result.add("fidelity", kept_fidelity);
  result.add("fidelityInitial", history.select(1, 0));
  result.add("fidelityHistory", history);
  result.add("refinedSteps", kept_step);
  result.add("lossHistory", loss_history);
  return result;
}

}  // namespace

TS_REGISTER_METHOD("input-agnostic", input_agnostic);

}  // namespace ts
