// The inner loops of the fused mask generator (mask_generator.cc) for a parameter strictly between
// the saturated values: its exponentials exp(20 w m) over its folded support, added into the forward's
// sums or dotted with the backward's folded gradient planes. Three builds of the same arithmetic: AVX-512
// and AVX2 (x86-64, explicit vectors, a table-based 2^x) and a portable one the compiler vectorises
// (polynomial 2^x); MaskGenerator takes simd::chosen() unless told otherwise (tests name each).
//
// Units: every kernel takes its exponent y in units of 1/K of log2 (y = m wK with wK = 20 K log2(e) w, the
// table MaskGenerator builds for the chosen kernel's K), so 2^(y / K) = exp(20 w m) needs no multiply
// before the range reduction; the forward's T sums y e and the backward's scale plane is divided by
// 20 K log2(e) to match (see mask_generator.cc).
#pragma once
#include <cstdint>

#include "core/simd.h"

namespace ts {
namespace smooth_max {

using simd::Isa;

// K: 2^x is 2^n 2^(j / K) p(f), a K-entry table lookup and a short polynomial (K = 1: no table).
int resolution(Isa isa);

// A parameter's folded support: `rows` rows of `length` columns (stored `padded` apart, padded with zero
// weights; `padded` is a multiple of 16): wk holds 20 K log2(e) w, w the weight itself.
struct Support {
  const float* wk;
  const float* w;
  int64_t rows, length, padded;
  float unit;          // wk / w = 20 K log2(e) (the backward loads w alone and scales m instead)
  const float* valid;  // padded: 1 below length, 0 in the padding
  // Mirrored vectors (see mirror_plan): the first `mirrored` vectors of every row take their terms from
  // the two vectors at the other end by a permute (lane l from lane idx[l] of the pair), 0: none.
  int64_t mirrored = 0;
  const int32_t* mirror_idx = nullptr;
};

// The weight is radial, so the terms at dx and -dx of a row are the same numbers: a vector whose columns
// mirror into lanes of two other vectors need not compute its exponentials. Returns how many vectors of a
// row the `isa` kernel can take by a permute (0 where its layout does not allow it, or for the portable
// kernel) and fills `idx` (one entry per lane); every row's wk and w must be equal at the mirrored
// columns, bit for bit (checked). Per row of `length` columns whose column u is at dx = u + off0. The
// terms, and so the masks and gradients, are bit-identical with and without it.
int64_t mirror_plan(Isa isa, const float* wk, const float* w, int64_t rows, int64_t length, int64_t padded, int64_t off0, int32_t* idx);

// Forward: S[a][u] += e and T[a][u] += y e for u < length, with y = m wk[a][u] and e = 2^(y / K); rows of
// S and T are `stride` apart. Lanes in the padding are left unchanged.
void forward(Isa isa, float m, const Support& s, float* S, float* T, int64_t stride);

// The sum of 16 per-lane partial sums in a fixed pairwise order: the portable backward kernel's, and
// that of the saturated parameters' dot products in mask_generator.cc.
inline float sum_lanes(float (&lanes)[16]) {
  for (int l = 0; l < 8; ++l) lanes[l] += lanes[l + 8];
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

// Backward: sum over the support of w e (B + SC y), with B and SC rows `stride` apart.
float backward(Isa isa, float m, const Support& s, const float* B, const float* SC, int64_t stride);

}  // namespace smooth_max
}  // namespace ts
