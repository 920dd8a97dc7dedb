#include "core/cpu_cache.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace ts {
namespace {

constexpr size_t kAlign = 64;                   // libtorch's CPU alignment
constexpr size_t kHeader = 64;                  // the block's size class, in front of the data (keeps the alignment)
constexpr size_t kMinCached = size_t{1} << 20;  // smaller blocks go straight back to malloc

// Size classes: sizes rounded up to an eighth of their power of two (at most 12.5% more memory).
size_t size_class(size_t n) {
  if (n < kMinCached) return n;
  size_t top = size_t{1} << (63 - __builtin_clzll(n));
  const size_t step = top / 8;
  return (n + step - 1) / step * step;
}

struct Cache {
  std::mutex mutex;
  std::unordered_map<size_t, std::vector<char*>> free;  // size class -> free blocks (their headers)
  uint64_t limit = 0, cached = 0, hits = 0, misses = 0;
};

Cache& cache() {
  static Cache* c = new Cache();  // never destroyed: tensors may be freed during process exit
  return *c;
}

// The raw deleter: takes the data pointer.
void give_back(void* data) {
  if (data == nullptr) return;
  char* base = static_cast<char*>(data) - kHeader;
  size_t bytes;
  std::memcpy(&bytes, base, sizeof bytes);
  if (bytes >= kMinCached) {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    if (c.cached + bytes <= c.limit) {
      c.free[bytes].push_back(base);
      c.cached += bytes;
      return;
    }
  }
  std::free(base);
}

void* take(size_t n) {
  if (n == 0) return nullptr;
  const size_t bytes = size_class(n);
  Cache& c = cache();
  if (bytes >= kMinCached) {
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.free.find(bytes);
    if (it != c.free.end() && !it->second.empty()) {
      char* base = it->second.back();
      it->second.pop_back();
      c.cached -= bytes;
      ++c.hits;
      return base + kHeader;
    }
    ++c.misses;
  }
  void* base = nullptr;
  if (posix_memalign(&base, kAlign, bytes + kHeader) != 0) {
    release_cpu_cache();  // memory is short: give the cache back and try once more
    if (posix_memalign(&base, kAlign, bytes + kHeader) != 0) throw std::bad_alloc();
  }
  std::memcpy(base, &bytes, sizeof bytes);
  return static_cast<char*>(base) + kHeader;
}

// Both signatures of allocate are declared: libtorch 1.x declares it const, 2.x not; the one the
// installed headers declare is the override. copy_data is pure virtual in 2.x only.
struct CachingAllocator final : public c10::Allocator {
  c10::DataPtr allocate(size_t n) const {
    void* data = take(n);
    return {data, data, &give_back, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DataPtr allocate(size_t n) { return static_cast<const CachingAllocator*>(this)->allocate(n); }
  c10::DeleterFnPtr raw_deleter() const override { return &give_back; }
  void copy_data(void* dest, const void* src, std::size_t count) const { std::memcpy(dest, src, count); }
};

std::atomic<bool> g_installed{false};

}  // namespace

uint64_t default_cpu_cache_limit() {
  if (const char* env = std::getenv("TORCH_SALIENCY_CPU_CACHE_MB")) {
    char* end = nullptr;
    const double mb = std::strtod(env, &end);
    if (end != env && mb >= 0) return static_cast<uint64_t>(mb * 1024 * 1024);
  }
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  const uint64_t memory = pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : (uint64_t{8} << 30);
  return std::min<uint64_t>(memory / 4, uint64_t{2} << 30);
}

void install_cpu_cache(uint64_t limit_bytes) {
  {
    std::lock_guard<std::mutex> lock(cache().mutex);
    cache().limit = limit_bytes;
  }
  if (limit_bytes == 0) {
    release_cpu_cache();
    return;
  }
  if (g_installed.exchange(true)) return;
  static CachingAllocator* allocator = new CachingAllocator();
  c10::SetCPUAllocator(allocator, /*priority=*/1);
}

void release_cpu_cache() {
  std::vector<char*> blocks;
  {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    for (auto& [bytes, list] : c.free) blocks.insert(blocks.end(), list.begin(), list.end());
    c.free.clear();
    c.cached = 0;
  }
  for (char* b : blocks) std::free(b);
}

CpuCacheStats cpu_cache_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return {g_installed.load(), c.limit, c.cached, c.hits, c.misses};
}

}  // namespace ts
