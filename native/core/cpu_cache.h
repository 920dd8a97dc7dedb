// A caching CPU allocator for libtorch's tensors. Freed blocks of 1 MB and more are kept, by size class,
// for the next allocation of their class instead of going back to malloc: a step of a loop (an
// extremal-perturbation iteration, a batch of predictions) then runs on memory that is already mapped.
// Without it, the blocks freed by one step went back to the system and the next step paid the page
// faults again (measured: a ResNet forward+backward of 4 images at 224 px took 237 ms per step in the
// addon's worker threads against 196 ms with one warm heap). The cache keeps at most `limit` bytes of
// free blocks (TORCH_SALIENCY_CPU_CACHE_MB; 0 turns the cache off); runtime() reports its counters.
#pragma once
#include <cstddef>
#include <cstdint>

namespace ts {

struct CpuCacheStats {
  bool installed = false;
  uint64_t limit_bytes = 0;   // most free bytes kept
  uint64_t cached_bytes = 0;  // free bytes kept now
  uint64_t hits = 0;          // allocations served from the cache
  uint64_t misses = 0;        // cacheable allocations that went to malloc
};

// Makes the cache libtorch's CPU allocator (once; later calls only change the limit). limit_bytes 0
// leaves libtorch's allocator alone.
void install_cpu_cache(uint64_t limit_bytes);
// The limit from TORCH_SALIENCY_CPU_CACHE_MB, or the default: a quarter of the memory, at most 2 GB.
uint64_t default_cpu_cache_limit();
// Gives every cached free block back to malloc.
void release_cpu_cache();
CpuCacheStats cpu_cache_stats();

}  // namespace ts
