#include "core/simd.h"

#include <cstdlib>
#include <string>

namespace ts {
namespace simd {

Isa best() {
  static const Isa found = [] {
#ifdef TS_X86_KERNELS
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")) return Isa::avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::avx2;
#endif
    return Isa::generic;
  }();
  return found;
}

Isa chosen() {
  static const Isa isa = [] {
    const char* env = std::getenv("TORCH_SALIENCY_SIMD");
    const std::string want = env ? env : "";
    if (want == "generic") return Isa::generic;
    if (want == "avx2" && best() != Isa::generic) return Isa::avx2;
    return best();
  }();
  return isa;
}

const char* name(Isa isa) {
  switch (isa) {
    case Isa::avx512:
      return "avx512";
    case Isa::avx2:
      return "avx2";
    default:
      return "generic";
  }
}

}  // namespace simd
}  // namespace ts
