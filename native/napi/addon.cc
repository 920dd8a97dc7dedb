// Module entry: loadModel and process-wide settings. Everything model-specific is in model_wrap.cc.
#include <napi.h>

#include <cstdlib>
#include <cstring>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "core/cpu_cache.h"
#include "core/explain.h"
#include "core/model.h"
#include "core/simd.h"
#include "napi/convert.h"
#include "napi/model_wrap.h"
#include "napi/workers.h"

namespace tsn {
namespace {

class LoadWorker : public PromiseWorker {
 public:
  LoadWorker(Napi::Env env, std::string path, std::string bytes, bool from_bytes, ts::ModelOptions options, int threads)
      : PromiseWorker(env), path_(std::move(path)), bytes_(std::move(bytes)), from_bytes_(from_bytes), options_(std::move(options)), threads_(threads) {}

 protected:
  void Run() override {
    ts::set_threads(threads_);
    model_ = from_bytes_ ? ts::Model::load_bytes(bytes_, options_) : ts::Model::load_file(path_, options_);
    bytes_.clear();
  }
  Napi::Value Result(Napi::Env env) override { return ModelWrap::NewInstance(env, std::move(model_)); }

 private:
  std::string path_, bytes_;
  bool from_bytes_;
  ts::ModelOptions options_;
  int threads_;
  std::shared_ptr<ts::Model> model_;
};

// loadModel(pathOrBuffer, { device, mean, std, threads }) -> Promise<NativeModel>
Napi::Value LoadModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = info[1].As<Napi::Object>();
  ts::ModelOptions options;
  options.device = o.Get("device").As<Napi::String>().Utf8Value();
  // lib/model.ts checked these and always gives device and threads (0: the cores available); mean and std
  // come together or not at all (the model then normalises itself).
  if (o.Get("mean").IsArray()) options.mean = number_list(o.Get("mean"));
  if (o.Get("std").IsArray()) options.std = number_list(o.Get("std"));
  options.mean_score_maps = o.Get("scoreMaps").IsString() && o.Get("scoreMaps").As<Napi::String>().Utf8Value() == "mean";
  const int threads = o.Get("threads").As<Napi::Number>().Int32Value();
  std::string path, bytes;
  bool from_bytes = info[0].IsBuffer();
  if (from_bytes) {
    auto buf = info[0].As<Napi::Buffer<char>>();
    bytes.assign(buf.Data(), buf.Length());
  } else {
    path = info[0].As<Napi::String>().Utf8Value();
  }
  auto* worker = new LoadWorker(env, std::move(path), std::move(bytes), from_bytes, std::move(options), threads);
  worker->Queue();
  return worker->Promise();
}

// releaseCpuCache() -> bytes given back: the caching allocator's free blocks go back to malloc.
Napi::Value ReleaseCpuCache(const Napi::CallbackInfo& info) {
  const uint64_t before = ts::cpu_cache_stats().cached_bytes;
  ts::release_cpu_cache();
  return Napi::Number::New(info.Env(), static_cast<double>(before));
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  ts::set_threads(info[0].As<Napi::Number>().Int32Value());
  return Napi::Number::New(info.Env(), ts::get_threads());
}

Napi::Value Runtime(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("torchVersion", ts::torch_version());
  o.Set("threads", ts::get_threads());
  o.Set("availableCores", ts::available_cores());
  o.Set("cudaAvailable", ts::cuda_available());
  o.Set("cudaDevices", ts::cuda_device_count());
  o.Set("liveModels", static_cast<double>(ts::Model::live()));
  const ts::CpuCacheStats cache = ts::cpu_cache_stats();
  Napi::Object c = Napi::Object::New(env);
  c.Set("enabled", cache.installed && cache.limit_bytes > 0);
  c.Set("limitBytes", static_cast<double>(cache.limit_bytes));
  c.Set("cachedBytes", static_cast<double>(cache.cached_bytes));
  c.Set("hits", static_cast<double>(cache.hits));
  c.Set("misses", static_cast<double>(cache.misses));
  o.Set("cpuCache", c);
  o.Set("cpuKernels", ts::simd::name(ts::simd::chosen()));
  auto names = ts::method_names();
  Napi::Array methods = Napi::Array::New(env, names.size());
  for (size_t i = 0; i < names.size(); ++i) methods.Set(static_cast<uint32_t>(i), names[i]);
  o.Set("methods", methods);
  return o;
}

}  // namespace
}  // namespace tsn

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  using namespace tsn;
  // Default to every core available to the process; libtorch's own default counts physical cores
  // and picks 1 on small virtual machines.
  ts::set_threads(0);
  // libtorch's CPU tensors come from a caching allocator (core/cpu_cache.h): a loop's steps reuse mapped
  // memory instead of paying page faults on every step.
  ts::install_cpu_cache(ts::default_cpu_cache_limit());
#if defined(__GLIBC__)
  // What does not come from libtorch's allocator (oneDNN's convolution scratch buffers, for one) comes
  // from malloc, whose adaptive defaults give blocks of a few MB back to the system and map them fresh
  // on the next step. Blocks below 32 MB (glibc's ceiling here) now come from the heap, and up to 256 MB
  // of free memory at a heap's top stays (measured on an extremal-perturbation step at 224 px, on top
  // of the cache: 50.6-53.1 ms against 53.6-55.3 ms). TORCH_SALIENCY_MALLOC=default keeps glibc's settings.
  const char* malloc_policy = std::getenv("TORCH_SALIENCY_MALLOC");
  if (!(malloc_policy && std::strcmp(malloc_policy, "default") == 0)) {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
  }
#endif
  exports.Set("loadModel", Napi::Function::New(env, LoadModel));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("runtime", Napi::Function::New(env, Runtime));
  exports.Set("releaseCpuCache", Napi::Function::New(env, ReleaseCpuCache));
  exports.Set("NativeModel", ModelWrap::Define(env));
  exports.Set("CancelToken", CancelToken::Define(env));
  return exports;
}

NODE_API_MODULE(torch_saliency, InitAddon)
