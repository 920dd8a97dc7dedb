// Neural Cleanse (Wang et al., "Neural Cleanse: identifying and mitigating backdoor attacks in neural
// networks", IEEE S&P 2019): per target class t, the smallest mask m (H x W, in [0, 1]) and pattern p
// (C x H x W, in [0, 1]) such that stamping x' = (1 - m) x + m p sends the call's images to t:
//   minimise  mean_x loss(f(x'), t) + lambda_t |m|_1 / (H W)
// with m = (tanh(a) + 1) / 2 and p = (tanh(b) + 1) / 2 (unconstrained parameters, as the paper), m and p
// starting uniform at random in [0, 1] (NC's initialisation), Adam, and NC's schedule for lambda_t: 0 until the
// stamped images have reached t for `patience` steps in a row (NC's reset_cost_to_zero), then `initialCost` on
// the mask's L1 sum, raised after `patience` successful steps in a row, lowered after as many failures; a class
// is done when lambda has gone both up and down and its best norm has not improved for `earlyStopPatience`
// steps, and the run stops when every class is done. The smallest mask that reached `successThreshold` is kept
// per class; the anomaly test over the classes' mask norms is the caller's (lib/backdoor).
//
// mask 'whole' (ours, for whole-image blended triggers): the mask is one scalar per class, the opacity alpha of
// a pattern blended over the whole image, x' = (1 - alpha) x + alpha p; its L1 sum is alpha H W, so the loss,
// lambda's schedule and the reported norm (alpha) are NC's unchanged. `noise` > 0 adds Gaussian noise of that
// standard deviation to every stamped image (clamped to [0, 1]) at every step, the success test included: a
// per-pixel adversarial pattern does not survive it, a trained trigger does.
//
// Every distinct target of the call is one job of the same run: the classes' stamped batches go through the
// model together (chunked by whole classes to batchSize images), every image of the call is an input of every
// class, and no value is read back to the host inside the loop except the progress figure.
#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/script.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <mutex>
#include <vector>

#include "core/explain.h"
#include "core/postprocess.h"

namespace ts {
namespace {

struct Settings {
  int64_t steps;
  double learning_rate;
  double initial_cost;
  double cost_multiplier;
  int64_t patience;
  double success_threshold;
  int64_t early_stop_patience;  // 0: run every step
  bool sigmoid;                 // head: 'sigmoid' (per-class binary cross-entropy) or 'softmax' (cross-entropy)
  bool whole;                   // mask: 'whole' (one opacity per class) or 'pixel' (NC's H x W mask)
  double noise;                 // standard deviation of the Gaussian noise added to the stamped images (0: none)
  int64_t seed;
};

Settings read_settings(const Options& o) {
  Settings s;
  s.steps = o.integer("steps");
  s.learning_rate = o.number("learningRate");
  s.initial_cost = o.number("initialCost");
  s.cost_multiplier = o.number("costMultiplier");
  s.patience = o.integer("patience");
  s.success_threshold = o.number("successThreshold");
  s.early_stop_patience = o.integer("earlyStopPatience");
  s.sigmoid = o.string("head") == "sigmoid";
  s.whole = o.string("mask") == "whole";
  s.noise = o.number("noise");
  s.seed = o.integer("seed");
  return s;
}

ExplainResult neural_cleanse(Model& model, const ExplainRequest& request, RunContext& context) {
  c10::AutoGradMode grad_mode(true);
  const Settings s = read_settings(request.options);
  const at::Device device = model.device();
  const auto f = at::TensorOptions().dtype(at::kFloat).device(device);

  // The distinct targets (in first-seen order) and, per job, which of them it is.
  std::vector<int64_t> classes;
  std::map<int64_t, int64_t> slot;
  std::vector<int64_t> job_slot;
  for (int64_t t : request.job_target) {
    auto [it, added] = slot.emplace(t, static_cast<int64_t>(classes.size()));
    if (added) classes.push_back(t);
    job_slot.push_back(it->second);
  }
  const int64_t k = static_cast<int64_t>(classes.size());
  at::Tensor images = request.images.to(device);
  const int64_t n = images.size(0), channels = images.size(1), height = images.size(2), width = images.size(3);
  const double pixels = static_cast<double>(height * width);
  // Whole classes per forward: as many as fit batchSize images (at least one).
  const int64_t batch_size = request.options.integer("batchSize");
  const int64_t per_chunk = batch_size > 0 ? std::max<int64_t>(1, batch_size / n) : k;

  // Parameters, seeded: mask and pattern uniform at random in [0, 1], as NC's initialisation, mapped to the
  // tanh parameters (kept off +-1 so that atanh stays finite).
  at::Generator gen = at::globalContext().defaultGenerator(device).clone();
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_current_seed(static_cast<uint64_t>(s.seed));
  }
  const double span = 2 - 1e-4;
  const int64_t mask_h = s.whole ? 1 : height, mask_w = s.whole ? 1 : width;
  at::Tensor a = at::rand({k, 1, mask_h, mask_w}, gen, f).sub_(0.5).mul_(span).atanh_();
  at::Tensor b = at::rand({k, channels, height, width}, gen, f).sub_(0.5).mul_(span).atanh_();
  at::Tensor ma = at::zeros_like(a), va = at::zeros_like(a), mb = at::zeros_like(b), vb = at::zeros_like(b);
  const double beta1 = 0.5, beta2 = 0.9, eps = 1e-8;  // Adam as NC's reference (betas 0.5, 0.9)

  at::Tensor targets = at::tensor(classes, at::kLong).to(device);
  // lambda per class: 0 during the warm-up (`set` counts its successful steps), then NC's schedule; `raised`
  // and `lowered` record whether it went up and down, `stale` the steps since the best norm last improved.
  at::Tensor cost = at::zeros({k}, f);
  at::Tensor up = at::zeros({k}, f), down = at::zeros({k}, f), set = at::zeros({k}, f);
  at::Tensor raised = at::zeros({k}, f), lowered = at::zeros({k}, f), stale = at::zeros({k}, f);
  at::Tensor best_norm = at::full({k}, std::numeric_limits<float>::infinity(), f);
  at::Tensor best_mask = at::zeros({k, 1, height, width}, f);
  at::Tensor best_pattern = at::zeros({k, channels, height, width}, f);
  at::Tensor best_success = at::zeros({k}, f);
  at::Tensor last_success = at::zeros({k}, f);
  at::Tensor loss_history = at::zeros({k, s.steps}, f);
  at::Tensor norm_history = at::zeros({k, s.steps}, f);
  const double up_factor = s.cost_multiplier, down_factor = std::pow(s.cost_multiplier, 1.5);

  for (int64_t step = 0; step < s.steps; ++step) {
    context.check_cancelled();
    at::Tensor ga = at::zeros_like(a), gb = at::zeros_like(b);
    at::Tensor success = at::zeros({k}, f), class_loss = at::zeros({k}, f), norm = at::zeros({k}, f);
    for (auto [c0, c1] : chunks(k, per_chunk)) {
      at::Tensor pa = a.slice(0, c0, c1).detach().requires_grad_(true);
      at::Tensor pb = b.slice(0, c0, c1).detach().requires_grad_(true);
      const int64_t kc = c1 - c0;
      at::Tensor mask = pa.tanh().add(1).mul(0.5).expand({kc, 1, height, width});  // kc x 1 x H x W
      at::Tensor pattern = pb.tanh().add(1).mul(0.5);                              // kc x C x H x W
      // kc x n stamped images: (1 - m) x + m p.
      at::Tensor stamped = (images.unsqueeze(0) * (1 - mask.unsqueeze(1)) + (mask * pattern).unsqueeze(1)).view({kc * n, channels, height, width});
      if (s.noise > 0) stamped = stamped.add(at::randn(stamped.sizes(), gen, f).mul_(s.noise)).clamp(0, 1);
      at::Tensor scores = model.scores(model.differentiable(), model.prepare(stamped));  // kc n x K
      at::Tensor t = targets.slice(0, c0, c1).repeat_interleave(n);
      at::Tensor per_image, hit;
      if (s.sigmoid) {
        at::Tensor z = scores.gather(1, t.view({-1, 1})).squeeze(1);
        per_image = at::softplus(z.neg());  // -log sigmoid(z)
        hit = z.gt(0);
      } else {
        per_image = at::log_softmax(scores, 1).gather(1, t.view({-1, 1})).squeeze(1).neg();
        hit = scores.argmax(1).eq(t);
      }
      at::Tensor ce = per_image.view({kc, n}).mean(1);
      at::Tensor l1 = mask.reshape({kc, -1}).sum(1);  // |m|_1, the regulariser as NC's (its weight is lambda)
      at::Tensor area = l1.detach() / pixels;         // reported: the mask's area fraction
      at::Tensor total = (ce + cost.slice(0, c0, c1) * l1).sum();
      auto grads = torch::autograd::grad({total}, {pa, pb});
      ga.slice(0, c0, c1).copy_(grads[0]);
      gb.slice(0, c0, c1).copy_(grads[1]);
      success.slice(0, c0, c1).copy_(hit.to(at::kFloat).view({kc, n}).mean(1));
      class_loss.slice(0, c0, c1).copy_(ce.detach());
      norm.slice(0, c0, c1).copy_(area.detach());
    }
    // Keep the smallest mask that reached the threshold (the masks and patterns of this step's forward).
    {
      at::NoGradGuard no_grad;
      at::Tensor mask = a.tanh().add(1).mul(0.5).expand({k, 1, height, width}), pattern = b.tanh().add(1).mul(0.5);
      at::Tensor better = success.ge(s.success_threshold).logical_and(norm.lt(best_norm));
      // Early stop as NC's: a step that does not lower the best norm counts once a mask has been found.
      stale = at::where(better, at::zeros_like(stale), at::where(best_norm.isfinite(), stale + 1, stale));
      best_norm = at::where(better, norm, best_norm);
      best_success = at::where(better, success, best_success);
      best_mask = at::where(better.view({-1, 1, 1, 1}), mask, best_mask);
      best_pattern = at::where(better.view({-1, 1, 1, 1}), pattern, best_pattern);
      last_success = success;
      loss_history.select(1, step).copy_(class_loss);
      norm_history.select(1, step).copy_(norm);
      // Adam on both parameters.
      const double t1 = 1 - std::pow(beta1, step + 1), t2 = 1 - std::pow(beta2, step + 1);
      ma.mul_(beta1).add_(ga, 1 - beta1);
      va.mul_(beta2).addcmul_(ga, ga, 1 - beta2);
      mb.mul_(beta1).add_(gb, 1 - beta1);
      vb.mul_(beta2).addcmul_(gb, gb, 1 - beta2);
      a.sub_(ma.div(t1).div(va.div(t2).sqrt().add(eps)).mul(s.learning_rate));
      b.sub_(mb.div(t1).div(vb.div(t2).sqrt().add(eps)).mul(s.learning_rate));
      // Lambda schedule (NC's): while lambda is 0, `patience` successful steps in a row set it to
      // initialCost and restart the counters; then `patience` steps in a row at or above the threshold raise
      // it, as many below lower it (by the multiplier to the 1.5th power), and the counter starts again.
      at::Tensor reached = success.ge(s.success_threshold).to(at::kFloat);
      const double patience = static_cast<double>(s.patience);
      at::Tensor warm = cost.eq(0).to(at::kFloat);
      set = (set + 1) * reached * warm;
      at::Tensor start = set.ge(patience);
      cost = at::where(start, at::full_like(cost, s.initial_cost), cost);
      up = at::where(start, at::zeros_like(up), up);
      down = at::where(start, at::zeros_like(down), down);
      raised = at::where(start, at::zeros_like(raised), raised);
      lowered = at::where(start, at::zeros_like(lowered), lowered);
      up = (up + 1) * reached;
      down = (down + 1) * (1 - reached);
      at::Tensor raise = up.ge(patience), lower = down.ge(patience);
      cost = at::where(raise, cost * up_factor, at::where(lower, cost / down_factor, cost));
      raised = at::where(raise.logical_and(cost.gt(0)), at::ones_like(raised), raised);
      lowered = at::where(lower.logical_and(cost.gt(0)), at::ones_like(lowered), lowered);
      up = at::where(raise, at::zeros_like(up), up);
      down = at::where(lower, at::zeros_like(down), down);
    }
    if (context.wants_progress(step, s.steps)) context.report({step, s.steps, class_loss.mean().item<double>()});
    // Every class done (lambda went both ways, no better mask for earlyStopPatience steps): stop. Read back
    // once every `patience` steps only.
    if (s.early_stop_patience > 0 && (step + 1) % s.patience == 0) {
      at::NoGradGuard no_grad;
      at::Tensor done = raised.gt(0).logical_and(lowered.gt(0)).logical_and(stale.ge(static_cast<double>(s.early_stop_patience)));
      if (done.all().item<bool>()) {
        loss_history = loss_history.slice(1, 0, step + 1);
        norm_history = norm_history.slice(1, 0, step + 1);
        break;
      }
    }
  }

  // A class that never reached the threshold keeps its last mask, with its norm, flagged as not reached.
  at::Tensor reached = best_norm.isfinite();
  {
    at::NoGradGuard no_grad;
    at::Tensor mask = a.tanh().add(1).mul(0.5).expand({k, 1, height, width}), pattern = b.tanh().add(1).mul(0.5);
    at::Tensor last_norm = mask.reshape({k, -1}).sum(1) / pixels;
    best_mask = at::where(reached.view({-1, 1, 1, 1}), best_mask, mask);
    best_pattern = at::where(reached.view({-1, 1, 1, 1}), best_pattern, pattern);
    best_norm = at::where(reached, best_norm, last_norm);
    best_success = at::where(reached, best_success, last_success);
  }

  at::Tensor index = at::tensor(job_slot, at::kLong).to(device);
  ExplainResult result;
  result.maps = postprocess(best_mask.index_select(0, index).squeeze(1), request.options);
  result.add("mask", best_mask.index_select(0, index));
  result.add("pattern", best_pattern.index_select(0, index));
  result.add("norm", best_norm.index_select(0, index));
  result.add("attackSuccess", best_success.index_select(0, index));
  result.add("reached", reached.to(at::kFloat).index_select(0, index));
  result.add("cost", cost.index_select(0, index));
  result.add("lossHistory", loss_history.index_select(0, index));
  result.add("normHistory", norm_history.index_select(0, index));
  return result;
}

}  // namespace

TS_REGISTER_METHOD("neural-cleanse", neural_cleanse);

}  // namespace ts
