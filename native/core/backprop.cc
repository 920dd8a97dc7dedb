#include "core/backprop.h"

#include <torch/csrc/autograd/autograd.h>

#include <memory>

#include "core/layers.h"
#include "core/module_clone.h"
#include "core/postprocess.h"

namespace ts {

at::Tensor target_score_sum(const at::Tensor& scores, const at::Tensor& targets) { return scores.gather(1, targets.view({-1, 1})).sum(); }

MethodFn backprop_method(BackwardRule rule, MapFn to_map) {
  return [rule, to_map](Model& model, const ExplainRequest& request, RunContext& context) {
    BackpropSpec spec;
    spec.rules.rule = rule;
    spec.layer = request.options.string_or_null("layer");
    spec.tokens = TokenLayout::from(request.options);
    spec.to_map = to_map;
    return run_backprop(model, request, context, spec);
  };
}

at::Tensor gradient_magnitude(const at::Tensor&, const at::Tensor& gradient) { return gradient.abs().amax(1); }

namespace {

struct Pass {
  torch::jit::Module module;
  std::unique_ptr<ProbedModule> probed;  // holds the clone when layers are probed
  int layer_slot = -1, contrast_slot = -1;
  torch::jit::Module& get() { return probed ? probed->module() : module; }
};

std::unique_ptr<Pass> make_pass(Model& model, const BackpropSpec& spec, bool negate) {
  auto pass = std::make_unique<Pass>();
  std::vector<LayerRef> layers;
  if (spec.layer) layers.push_back({*spec.layer, "options.layer"});
  if (spec.contrast_layer) layers.push_back({*spec.contrast_layer, "options.contrastLayer"});
  bool rules = spec.rules.rule != BackwardRule::kGradient;
  if (!layers.empty()) {
    pass->probed = std::make_unique<ProbedModule>(model, layers);
    int slot = 0;
    if (spec.layer) pass->layer_slot = slot++;
    if (spec.contrast_layer) pass->contrast_slot = slot++;
  } else if (rules) {
    pass->module = clone_module(model.differentiable());
  } else {
    pass->module = model.differentiable();  // plain gradient at the input: the model itself (fused attention taken apart)
  }
  if (rules) {
    RuleOptions r = spec.rules;
    r.negate_classifier = negate;
    apply_backward_rules(pass->get(), r);
  }
  return pass;
}

}  // namespace

ExplainResult run_backprop(Model& model, const ExplainRequest& request, RunContext& context, const BackpropSpec& spec) {
  torch::AutoGradMode enable(true);
  const bool contrastive = spec.contrast_layer.has_value();
  auto main = make_pass(model, spec, false);
  std::unique_ptr<Pass> contrast = contrastive ? make_pass(model, spec, true) : nullptr;
  const int64_t jobs = static_cast<int64_t>(request.job_image.size());
  auto parts = chunks(jobs, request.options.integer("batchSize"));
  std::vector<at::Tensor> maps;
  int64_t done = 0;
  for (auto [b, e] : parts) {
    context.check_cancelled();
    at::Tensor x = model.prepare(job_images(request, b, e)).detach().requires_grad_(true);
    at::Tensor targets = at::tensor(std::vector<int64_t>(request.job_target.begin() + b, request.job_target.begin() + e), at::kLong).to(x.device());
    at::Tensor activation, gradient;
    if (contrastive) {
      at::Tensor s0 = target_score_sum(model.scores(contrast->get(), x), targets);
      at::Tensor c0 = contrast->probed->activation(contrast->contrast_slot);
      at::Tensor reference = torch::autograd::grad({s0}, {c0})[0];
      at::Tensor s = target_score_sum(model.scores(main->get(), x), targets);
      at::Tensor c = main->probed->activation(main->contrast_slot);
      activation = main->layer_slot >= 0 ? main->probed->activation(main->layer_slot) : x;
      at::Tensor gc = torch::autograd::grad({s}, {c}, {}, /*retain_graph=*/true)[0];
      at::Tensor delta = (gc - reference).clamp_min(0);
      gradient = torch::autograd::grad({c}, {activation}, {delta}, c10::nullopt, false, /*allow_unused=*/true)[0];
      if (!gradient.defined()) {
        throw Error("ERR_INVALID_ARG_VALUE",
                    "Expected a layer below options.contrastLayer ('" + *spec.contrast_layer + "') for options.layer but received '" + spec.layer.value_or("") +
                        "' (the map is read on the way down from the contrast layer)",
                    "options.layer");
      }
    } else {
      at::Tensor s = target_score_sum(model.scores(main->get(), x), targets);
      activation = main->layer_slot >= 0 ? main->probed->activation(main->layer_slot) : x;
      gradient = torch::autograd::grad({s}, {activation}, {}, c10::nullopt, false, /*allow_unused=*/true)[0];
      if (!gradient.defined()) gradient = at::zeros_like(activation);  // the layer does not reach the scores
    }
    if (main->layer_slot >= 0) {
      // Token layers (N x T x C, N x H x W x C) as N x C x h x w; the gradient the same way.
      activation = to_spatial(activation, spec.tokens, x.size(2), x.size(3), *spec.layer);
      gradient = to_spatial(gradient, spec.tokens, x.size(2), x.size(3), *spec.layer);
    }
    {
      at::NoGradGuard no_grad;
      maps.push_back(spec.to_map(activation.detach(), gradient.detach()));
    }
    done += e - b;
    if (context.wants_progress(done, jobs)) context.report({done, jobs, std::nan("")});
  }
  ExplainResult result;
  at::NoGradGuard no_grad;
  result.maps = postprocess(at::cat(maps).to(at::kFloat), request.options).to(at::kCPU).contiguous();
  return result;
}

}  // namespace ts
