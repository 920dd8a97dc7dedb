// The area penalty of extremal perturbations: for each mask m (N values) and its target area a,
// mean((sort(m) - r)^2) where r is the sorted ideal mask, (1 - a) N zeros then a N ones (TorchRay's
// formulation). The sort is not needed: with k the number of zeros, the k smallest values are paired with
// 0 and the others with 1, so the penalty is (sum of v^2 over the k smallest + sum of (v - 1)^2 over the
// others) / N and its gradient is 2 v / N or 2 (v - 1) / N. A selection (radix select on the values'
// bits) finds the k-th smallest value in O(N); one more pass gives the penalty, one the gradient.
//
// Ties at the threshold: values equal to the k-th smallest are paired with 0 in index order until k
// zeros are used, then with 1 -- what a stable sort does. The penalty's value does not depend on this
// choice (tied values are equal); its gradient is the one a stable sort gives.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace ts {

// The thresholds found by the last call, per row, and how far around them the next call looks first (an
// optimisation loop's masks change little per step). Reset when the row count changes; results never
// depend on them, only the time taken.
struct PenaltyHints {
  std::vector<float> threshold, width;
};

// masks: M x ... (each row flattened, N values); zeros: for each row, k (0 <= k <= N). Returns M
// penalties (autograd flows to masks). fused: the selection op on CPU float tensors; otherwise (and on
// other devices) the composed formulation with a stable sort. hints: kept by the caller across calls.
at::Tensor area_penalty(const at::Tensor& masks, const std::vector<int64_t>& zeros, bool fused = true, PenaltyHints* hints = nullptr);

}  // namespace ts
