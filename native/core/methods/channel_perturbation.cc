// 'channel-perturbation': extremal perturbation over the channels of a layer (Fong et al. 2019, Sec. 4
// "intermediate activations"). A mask m in [0, 1]^C blends the layer's activation a towards a perturbed
// version p(a) (fade: zero; mean: each channel's spatial mean): a' = m a + (1 - m) p(a), through a probe
// on a clone of the model. The mask maximises  y_c(a') - lambda * mean((sort(m) - r)^2), r being
// (1 - area) C zeros then area C ones (the area constraint over channels), lambda growing over the
// iterations; SGD with momentum on m, clamped to [0, 1].
// Departure from the spatial method: a channel mask is small (C of 64..2048, against ~10^4 mask
// pixels), so TorchRay's fixed lambda = 300 on the mean penalty would swamp the reward and let the
// sort's tie-breaking pick the channels. Here the ascent direction is unit-free: the reward's gradient
// divided by its mean size at the first step, minus lambda (C / 2) times the penalty's gradient, so
// lambda = 1 balances the two at the start (the mask starts at 0.5); lambda then grows geometrically to
// lambda * lambdaGrowth by the last iteration.
// Mode 'image': one mask per job (which channels this decision needs); mode 'class': one mask per
// distinct target, shared by all the images asking for that target (which channels the class needs
// across them). Outputs per job: the mask (channel scores, ranked by the JavaScript side) and a map of
// what the kept channels respond to: sum_c m_c relu(a_c) / sum_c m_c on the unperturbed activation,
// resized like every other map.
// Token layers (N x T x C, N x H x W x C; core/tokens.h) are read as the layer methods read them: their
// last dimension is the channels, the mask scales every token's channel (prefix tokens too), 'mean' is
// the channel's mean over all the layer's tokens, and the map is drawn over the grid tokens.
#include <torch/csrc/autograd/autograd.h>

#include <cmath>
#include <map>

#include "core/explain.h"
#include "core/layers.h"
#include "core/methods/extremal_perturbation/area_penalty.h"
#include "core/postprocess.h"
#include "core/tokens.h"

namespace ts {
namespace {

ExplainResult channel_perturbation(Model& model, const ExplainRequest& request, RunContext& context) {
  torch::AutoGradMode enable(true);
  const Options& o = request.options;
  const std::string& layer = o.string("layer");
  const double area = o.number("area");
  const int64_t iterations = o.integer("maxIter");
  const double lr = o.number("learningRate");
  const double lambda = o.number("lambda");
  const double growth = o.number("lambdaGrowth");
  const bool class_mode = o.string("mode") == "class";
  const bool mean_perturbation = o.string("perturbation") == "mean";

  ProbedModule probed(model, {{layer, "options.layer"}});
  const int64_t jobs = static_cast<int64_t>(request.job_image.size());
  at::Tensor x = model.prepare(job_images(request, 0, jobs)).detach();
  at::Tensor targets = at::tensor(request.job_target, at::kLong).to(x.device());

  // Clean pass: the activation's shape, and the picture's input.
  at::Tensor clean;
  {
    at::NoGradGuard no_grad;
    model.scores(probed.module(), x);
    clean = probed.activation().detach();
  }
  // The channels' dimension of the layer's own output (1, or the last for tokens), and the clean
  // activation as N x C x h x w for the picture (typed errors for shapes that fit no layout).
  const TokenLayout tokens = TokenLayout::from(o);
  const std::string kind = resolve_layout(clean, tokens, x.size(2), x.size(3), layer);
  const int64_t channel_dim = kind == "nchw" ? 1 : clean.dim() - 1;
  const at::Tensor clean_spatial = to_spatial(clean, tokens, x.size(2), x.size(3), layer);
  const int64_t channels = clean.size(channel_dim);
  std::vector<int64_t> spread_dims;  // the dimensions a channel spreads over (all but the batch and the channels)
  std::vector<int64_t> mask_shape{jobs};
  for (int64_t d = 1; d < clean.dim(); ++d) {
    if (d != channel_dim) spread_dims.push_back(d);
    mask_shape.push_back(d == channel_dim ? channels : 1);
  }

  // Groups: one per job, or one per distinct target.
  std::vector<int64_t> group_of(jobs);
  int64_t groups = 0;
  {
    std::map<int64_t, int64_t> by_target;
    for (int64_t j = 0; j < jobs; ++j) {
      if (!class_mode) {
        group_of[j] = groups++;
      } else {
        auto it = by_target.find(request.job_target[j]);
        if (it == by_target.end()) it = by_target.emplace(request.job_target[j], groups++).first;
        group_of[j] = it->second;
      }
    }
  }
  at::Tensor group_index = at::tensor(group_of, at::kLong).to(x.device());
  at::Tensor group_size = at::zeros({groups}, x.options()).index_add_(0, group_index, at::ones({jobs}, x.options()));

  // Start half way: a saturated start (all ones) ties every channel, and the sort's tie-breaking would
  // then decide which channels are counted as kept.
  at::Tensor m = at::full({groups, channels}, 0.5, x.options()).requires_grad_(true);
  at::Tensor row_mask;  // jobs x C x 1 x 1 (jobs x 1 x C for tokens...), set before each forward
  probed.set_transform(0, [&](const at::Tensor& a) {
    at::Tensor p = mean_perturbation ? a.mean(spread_dims, true).expand_as(a) : at::zeros_like(a);
    return row_mask * a + (1 - row_mask) * p;
  });
  const int64_t keep = static_cast<int64_t>(std::llround(area * static_cast<double>(channels)));
  const std::vector<int64_t> zeros(static_cast<size_t>(m.size(0)), channels - keep);  // per mask: channels to drop

  at::Tensor velocity = at::zeros_like(m);
  at::Tensor reward_hist = at::zeros({iterations, groups}, x.options());
  at::Tensor scale;  // groups x 1: mean |d reward / d m| at the start (makes lambda unit-free)
  for (int64_t it = 0; it < iterations; ++it) {
    context.check_cancelled();
    row_mask = m.index_select(0, group_index).view(mask_shape);
    at::Tensor y = model.scores(probed.module(), x).gather(1, targets.view({-1, 1})).view({-1});
    at::Tensor reward = at::zeros({groups}, x.options()).index_add(0, group_index, y) / group_size;
    at::Tensor g_reward = torch::autograd::grad({reward.sum()}, {m})[0];
    at::Tensor penalty = area_penalty(m, zeros);  // mean((sort(m) - r)^2), by selection
    at::Tensor g_penalty = torch::autograd::grad({penalty.sum()}, {m})[0];
    {
      at::NoGradGuard no_grad;
      if (!scale.defined()) scale = g_reward.abs().mean(1, true).clamp_min(1e-12);
      // lambda grows geometrically by `lambdaGrowth` overall across the iterations.
      double weight = lambda * std::pow(growth, static_cast<double>(it) / static_cast<double>(std::max<int64_t>(1, iterations - 1)));
      // Unit-free ascent direction: the reward's gradient in units of its mean size at the start, the
      // penalty's (2 (m - r) / C per channel) times C / 2.
      at::Tensor g = g_reward / scale - weight * (static_cast<double>(channels) / 2.0) * g_penalty;
      reward_hist[it].copy_(reward.detach());
      // SGD with momentum (magnitudes matter: a sign-like optimiser would move tied channels together).
      velocity.mul_(0.9).add_(g);
      m.add_(velocity, lr).clamp_(0, 1);
    }
    if (context.wants_progress(it, iterations)) context.report({it + 1, iterations, std::nan("")});
  }
  probed.set_transform(0, nullptr);
  row_mask = at::Tensor();

  at::NoGradGuard no_grad;
  at::Tensor scores = m.detach().index_select(0, group_index);  // jobs x C
  at::Tensor weights = scores.view({jobs, channels, 1, 1});
  at::Tensor picture = (weights * clean_spatial.clamp_min(0)).sum(1) / scores.sum(1).clamp_min(1e-12).view({jobs, 1, 1});
  ExplainResult result;
  result.maps = postprocess(picture, request.options).to(at::kCPU).contiguous();
  result.add("channelScores", scores);
  result.add("channelRanking", std::get<1>(scores.sort(1, /*descending=*/true)).to(at::kInt));
  result.add("groups", group_index.to(at::kInt));
  result.add("rewardHistory", reward_hist);
  return result;
}

}  // namespace
TS_REGISTER_METHOD("channel-perturbation", channel_perturbation);
}  // namespace ts
