// 'attention-rollout' (Abnar & Zuidema, ACL 2020): per block, the attention's heads fused (mean, max or
// min), the smallest entries optionally dropped, the identity added for the residual path and the rows
// renormalised; the blocks' matrices multiplied from the first to the last; the map is the class token's
// row over the grid tokens. Independent of the target: one forward pass, no gradient.
#include <ATen/ATen.h>

#include "core/attention.h"
#include "core/explain.h"
#include "core/postprocess.h"

namespace ts {
namespace {

// Sets the `ratio` smallest entries of each image's fused matrix (N x T x T) to zero, never the class
// token's attention to itself (entry 0), as the reference implementation of the discard option does.
at::Tensor discard_lowest(const at::Tensor& fused, double ratio) {
  const int64_t n = fused.size(0), t = fused.size(1);
  const int64_t k = static_cast<int64_t>(static_cast<double>(t * t) * ratio);
  if (k <= 0) return fused;
  at::Tensor flat = fused.reshape({n, t * t});
  at::Tensor order = std::get<1>(at::sort(flat, /*stable=*/true, /*dim=*/1, /*descending=*/false)).slice(1, 0, k);
  at::Tensor drop = at::zeros_like(flat, flat.options().dtype(at::kBool)).scatter_(1, order, true);
  drop.select(1, 0).fill_(false);
  return flat.masked_fill(drop, 0).view({n, t, t});
}

ExplainResult attention_rollout(Model& model, const ExplainRequest& request, RunContext& context) {
  at::NoGradGuard no_grad;
  const Options& o = request.options;
  const std::string& fusion = o.string("headFusion");
  const double discard = o.number("discardRatio");
  const TokenLayout tokens = TokenLayout::from(o, /*with_layout=*/false);
  const int64_t jobs = static_cast<int64_t>(request.job_image.size());
  AttentionProbe probe(model, o.string_or_null("attentionLayers"), model.prepare(job_images(request, 0, 1)));
  std::vector<at::Tensor> maps;
  int64_t done = 0;
  for (auto [b, e] : chunks(jobs, o.integer("batchSize"))) {
    context.check_cancelled();
    at::Tensor x = model.prepare(job_images(request, b, e));
    model.scores(probe.module(), x);
    at::Tensor rollout;
    for (const at::Tensor& attention : probe.maps(x.size(0))) {
      at::Tensor a = fuse_heads(attention.to(at::kDouble), fusion);
      if (discard > 0) a = discard_lowest(a, discard);
      if (!rollout.defined()) rollout = at::eye(a.size(1), a.options()).expand({a.size(0), -1, -1});
      a = a + at::eye(a.size(1), a.options());
      a = a / a.sum(-1, /*keepdim=*/true);
      rollout = at::matmul(a, rollout);
    }
    const TokenGrid grid = token_grid(rollout.size(1), tokens, x.size(2), x.size(3), "the attention layers");
    maps.push_back(class_row_map(rollout, grid).to(at::kFloat));
    done += e - b;
    if (context.wants_progress(done, jobs)) context.report({done, jobs, std::nan("")});
  }
  ExplainResult result;
  result.maps = postprocess(at::cat(maps), o).to(at::kCPU).contiguous();
  probe.add_details(result);
  return result;
}

}  // namespace
TS_REGISTER_METHOD("attention-rollout", attention_rollout);
}  // namespace ts
