// 'attention-relevance' (Chefer, Gur & Wolf, ICCV 2021, "Generic attention-model explainability"): each
// block's attention A weighted by the gradient of the target score with respect to it, the positive part
// averaged over heads, Ā = E_h[(∇A ⊙ A)+], accumulated from the first block to the last as
// R <- R + Ā R from R = I; the map is the class token's row of R over the grid tokens.
#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include "core/attention.h"
#include "core/backprop.h"
#include "core/explain.h"
#include "core/postprocess.h"

namespace ts {
namespace {

ExplainResult attention_relevance(Model& model, const ExplainRequest& request, RunContext& context) {
  const Options& o = request.options;
  const TokenLayout tokens = TokenLayout::from(o, /*with_layout=*/false);
  const int64_t jobs = static_cast<int64_t>(request.job_image.size());
  AttentionProbe probe(model, o.string_or_null("attentionLayers"), model.prepare(job_images(request, 0, 1)), /*with_grad=*/true);
  torch::AutoGradMode enable(true);
  std::vector<at::Tensor> maps;
  int64_t done = 0;
  for (auto [b, e] : chunks(jobs, o.integer("batchSize"))) {
    context.check_cancelled();
    // The input requires grad so that the attention does even when the model's parameters do not.
    at::Tensor x = model.prepare(job_images(request, b, e)).detach().requires_grad_(true);
    at::Tensor targets = at::tensor(std::vector<int64_t>(request.job_target.begin() + b, request.job_target.begin() + e), at::kLong).to(x.device());
    at::Tensor score = target_score_sum(model.scores(probe.module(), x), targets);
    std::vector<at::Tensor> attention = probe.outputs();
    std::vector<at::Tensor> grads = torch::autograd::grad({score}, attention, {}, c10::nullopt, false, /*allow_unused=*/true);
    at::NoGradGuard no_grad;
    at::Tensor relevance;
    for (size_t l = 0; l < attention.size(); ++l) {
      at::Tensor a = attention_heads(attention[l].detach(), x.size(0));
      at::Tensor g = grads[l].defined() ? attention_heads(grads[l], x.size(0)) : at::zeros_like(a);  // a block the score does not reach
      at::Tensor cam = (g * a).clamp_min(0).mean(1).to(at::kDouble);
      if (!relevance.defined()) relevance = at::eye(cam.size(1), cam.options()).expand({cam.size(0), -1, -1});
      relevance = relevance + at::matmul(cam, relevance);
    }
    const TokenGrid grid = token_grid(relevance.size(1), tokens, x.size(2), x.size(3), "the attention layers");
    maps.push_back(class_row_map(relevance, grid).to(at::kFloat));
    done += e - b;
    if (context.wants_progress(done, jobs)) context.report({done, jobs, std::nan("")});
  }
  ExplainResult result;
  at::NoGradGuard no_grad;
  result.maps = postprocess(at::cat(maps), o).to(at::kCPU).contiguous();
  probe.add_details(result);
  return result;
}

}  // namespace
TS_REGISTER_METHOD("attention-relevance", attention_relevance);
}  // namespace ts
