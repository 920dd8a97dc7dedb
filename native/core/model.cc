#include "core/model.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <link.h>
#include <sched.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "core/archive_check.h"
#include "core/errors.h"
#include "core/fused_attention.h"
#include "core/module_clone.h"

namespace ts {
namespace {

std::string first_line(const std::string& s) {
  auto end = s.find('\n');
  return end == std::string::npos ? s : s.substr(0, end);
}

// The reason in a libtorch message. When the TorchScript interpreter wraps an exception the model itself
// raised ("The following operation failed in the TorchScript interpreter.", a traceback, then the
// exception's own line), the model's own words are the last line; otherwise the first line.
std::string reason_line(const std::string& msg) {
  if (msg.rfind("The following operation failed", 0) != 0) return first_line(msg);
  size_t end = msg.find_last_not_of(" \n");
  if (end == std::string::npos) return first_line(msg);
  size_t start = msg.rfind('\n', end);
  std::string last = msg.substr(start == std::string::npos ? 0 : start + 1, end + 1 - (start == std::string::npos ? 0 : start + 1));
  const std::string builtins = "builtins.";
  if (last.rfind(builtins, 0) == 0) last = last.substr(builtins.size());
  return last;
}

std::string c10_message(const std::exception& e) {
  if (auto* ce = dynamic_cast<const c10::Error*>(&e)) return ce->what_without_backtrace();
  return e.what();
}

// Turns libtorch's load failures into messages that say what is wrong with the file and what to do.
[[noreturn]] void throw_load_error(const std::exception& e, const std::string& what) {
  std::string msg = c10_message(e);
  std::string reason;
  if (msg.find("maximum supported version") != std::string::npos || msg.find("kMaxSupportedFileFormatVersion") != std::string::npos ||
      msg.find("Unknown builtin op") != std::string::npos || msg.find("schema not found") != std::string::npos) {
    reason = "it was exported by a PyTorch newer than this addon's libtorch " + torch_version() +
             " can read (export it with an older torch, or build torch-saliency against a newer libtorch)";
  } else if (msg.find("constants.pkl") != std::string::npos || msg.find("file not found") != std::string::npos) {
    reason = "it is a torch.save() checkpoint, not a TorchScript export (use torch.jit.trace or torch.jit.script, then .save())";
  } else if (msg.find("zip archive") != std::string::npos || msg.find("central directory") != std::string::npos ||
             msg.find("PytorchStreamReader") != std::string::npos || msg.find("reader failed") != std::string::npos) {
    reason = "it is not a TorchScript archive, or it is truncated or corrupt";
  } else {
    reason = "libtorch could not load it";
  }
  throw Error("ERR_MODEL_LOAD", "Cannot load " + what + ": " + reason + ". libtorch said: " + first_line(msg), "model");
}

std::atomic<int64_t> g_live_models{0};

}  // namespace

std::string torch_version() { return TORCH_VERSION; }

bool cuda_available() { return torch::cuda::is_available(); }
int cuda_device_count() { return static_cast<int>(torch::cuda::device_count()); }

at::Device resolve_device(const std::string& device) {
  if (device == "auto") return cuda_available() ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
  if (device == "cpu") return at::Device(at::kCPU);
  if (device.rfind("cuda", 0) == 0) {
    int index = 0;
    if (device.size() > 4) {
      if (device[4] != ':')
        throw Error("ERR_INVALID_ARG_VALUE", "Expected 'cpu', 'cuda', 'cuda:N' or 'auto' for options.device but received '" + device + "'", "options.device");
      try {
        index = std::stoi(device.substr(5));
      } catch (...) {
        throw Error("ERR_INVALID_ARG_VALUE", "Expected 'cpu', 'cuda', 'cuda:N' or 'auto' for options.device but received '" + device + "'", "options.device");
      }
    }
    if (!cuda_available()) {
      throw Error("ERR_CUDA_UNAVAILABLE",
                  "CUDA was asked for (device '" + device + "') but " +
                      (at::hasCUDA() ? std::string("no CUDA device is visible") : "this addon's libtorch " + torch_version() + " was built without CUDA") +
                      "; use device 'cpu' or 'auto'",
                  "options.device");
    }
    if (index < 0 || index >= cuda_device_count()) {
      throw Error("ERR_OUT_OF_RANGE",
                  "Expected a CUDA device index below " + std::to_string(cuda_device_count()) + " for options.device but received '" + device + "'",
                  "options.device");
    }
    return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  throw Error("ERR_INVALID_ARG_VALUE", "Expected 'cpu', 'cuda', 'cuda:N' or 'auto' for options.device but received '" + device + "'", "options.device");
}

int available_cores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

namespace {

// OpenBLAS's pthread build (Debian's libtorch links it) registers a fork handler that stops its thread pool in
// the parent before every fork(). If another thread is inside a threaded BLAS call at that moment, the forking
// thread waits forever: in Node that thread is the event loop, and it forks for every child_process.spawn.
// Measured here: an extremal-perturbation run with spawns every 5 ms hung the process within the first run.
// With OpenBLAS single-threaded no call ever waits on its pool, and the parallelism comes from libtorch's own
// intra-op threads (about 5% slower on batch-1 gradients at 2 cores). A user who sets OPENBLAS_NUM_THREADS
// keeps their setting (and the risk).
int limit_openblas(struct dl_phdr_info* info, size_t, void*) {
  if (info->dlpi_name == nullptr || std::strstr(info->dlpi_name, "blas") == nullptr) return 0;
  void* handle = dlopen(info->dlpi_name, RTLD_LAZY | RTLD_NOLOAD);
  if (handle == nullptr) return 0;
  using SetThreads = void (*)(int);
  if (auto set = reinterpret_cast<SetThreads>(dlsym(handle, "openblas_set_num_threads"))) set(1);
  dlclose(handle);
  return 0;
}

void make_blas_fork_safe() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (std::getenv("OPENBLAS_NUM_THREADS") == nullptr) dl_iterate_phdr(limit_openblas, nullptr);
  });
}

}  // namespace

// The process's intra-op thread count as last set. libtorch's OpenMP build keeps the count per OS thread
// (omp_set_num_threads changes the calling thread's only, and a thread reads the global value once, at its
// first parallel op), while the addon's work runs on whichever libuv thread is free: a count set on one
// thread after others had already worked did not reach them (`threads: 1` ran on 2 cores). Every native
// call therefore applies this count to its own thread first (sync_threads).
std::atomic<int> g_threads{0};

void set_threads(int threads) {
  make_blas_fork_safe();
  int n = threads > 0 ? threads : available_cores();
  g_threads.store(n);
  if (at::get_num_threads() != n) at::set_num_threads(n);
}

void sync_threads() {
  const int n = g_threads.load();
  if (n > 0 && at::get_num_threads() != n) at::set_num_threads(n);
}

int get_threads() {
  const int n = g_threads.load();
  return n > 0 ? n : at::get_num_threads();
}

Model::Model(torch::jit::Module module, const ModelOptions& options, at::Device device) : module_(std::move(module)), device_(device) {
  ++g_live_models;
  mean_score_maps_ = options.mean_score_maps;
  if (!options.mean.empty()) {
    auto f = at::TensorOptions().dtype(at::kFloat);
    int64_t c = static_cast<int64_t>(options.mean.size());
    mean_ = at::tensor(std::vector<float>(options.mean.begin(), options.mean.end()), f).view({1, c, 1, 1}).to(device);
    std_ = at::tensor(std::vector<float>(options.std.begin(), options.std.end()), f).view({1, c, 1, 1}).to(device);
  }
  for (const auto& p : module_.parameters()) {
    num_parameters_ += p.numel();
    if (input_channels_ < 0 && p.dim() == 4) input_channels_ = p.size(1);
  }
  input_size_hint_ = size_from_parameters();
}

std::pair<int64_t, int64_t> Model::size_from_parameters() const {
  const std::pair<int64_t, int64_t> none{-1, -1};
  at::Tensor pos, first_linear;
  bool any_conv = false;
  for (const auto& np : module_.named_parameters(/*recurse=*/true)) {
    const at::Tensor& p = np.value;
    const std::string& name = np.name;
    if (!pos.defined() && p.dim() == 3 && p.size(0) == 1 &&
        (name.find("pos_embed") != std::string::npos || name.find("position_embedding") != std::string::npos))
      pos = p;
    if (p.dim() == 4) any_conv = true;
    if (!first_linear.defined() && p.dim() == 2 && name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0) first_linear = p;
  }
  if (pos.defined()) {
    const int64_t tokens = pos.size(1), width = pos.size(2);
    int64_t kernel = -1;
    for (const auto& np : module_.named_parameters(true)) {
      if (np.value.dim() == 4 && np.value.size(0) == width && np.value.size(2) == np.value.size(3)) {
        kernel = np.value.size(2);
        break;
      }
    }
    if (kernel < 1) return none;
    for (int64_t prefix = 0; prefix <= 5 && prefix < tokens; ++prefix) {
      const int64_t side = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(tokens - prefix))));
      if (side * side == tokens - prefix) return {side * kernel, side * kernel};
    }
    return none;
  }
  if (!any_conv && first_linear.defined()) {
    const int64_t channels = input_channels_ > 0 ? input_channels_ : 3;
    const int64_t in = first_linear.size(1);
    if (in % channels) return none;
    const int64_t side = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(in / channels))));
    if (side * side == in / channels) return {side, side};
  }
  return none;
}

Model::~Model() { --g_live_models; }

int64_t Model::live() { return g_live_models.load(); }

// Run the twin with gradients on only: its graph executor specialises on its first runs, and a later run
// under InferenceMode then failed ("Inference tensors cannot be saved for backward", seen in extremal
// perturbation's final scores); passes that need no gradient use module().
torch::jit::Module& Model::differentiable() {
  std::call_once(differentiable_made_, [this] {
    if (!has_fused_attention(module_)) return;
    torch::jit::Module twin = clone_module(module_);
    decompose_fused_attention(twin);
    differentiable_ = std::move(twin);
  });
  return differentiable_ ? *differentiable_ : module_;
}

std::shared_ptr<Model> Model::finish(torch::jit::Module module, const ModelOptions& options, at::Device device) {
  // Explanations are of the model as deployed: dropout off, batch norm on running statistics.
  module.eval();
  return std::shared_ptr<Model>(new Model(std::move(module), options, device));
}

std::shared_ptr<Model> Model::with_module(torch::jit::Module module) const {
  std::shared_ptr<Model> copy(new Model(std::move(module), ModelOptions{}, device_));
  copy->mean_ = mean_;
  copy->std_ = std_;
  copy->mean_score_maps_ = mean_score_maps_;
  return copy;
}

std::shared_ptr<Model> Model::load_file(const std::string& path, const ModelOptions& options) {
  at::Device device = resolve_device(options.device);
  {
    std::ifstream probe(path, std::ios::binary);
    if (!probe) throw Error("ERR_MODEL_LOAD", "Cannot load model '" + path + "': the file does not exist or cannot be read", "model");
    probe.seekg(0, std::ios::end);
    const auto size = static_cast<uint64_t>(std::max<std::streamoff>(0, probe.tellg()));
    check_archive(
        size,
        [&](uint64_t offset, char* buf, size_t n) {
          probe.clear();
          probe.seekg(static_cast<std::streamoff>(offset));
          probe.read(buf, static_cast<std::streamsize>(n));
          return static_cast<size_t>(probe.gcount()) == n;
        },
        "model '" + path + "'");
  }
  torch::jit::Module module;
  try {
    module = torch::jit::load(path, device);
  } catch (const std::exception& e) {
    throw_load_error(e, "model '" + path + "'");
  }
  return finish(std::move(module), options, device);
}

std::shared_ptr<Model> Model::load_bytes(const std::string& bytes, const ModelOptions& options) {
  at::Device device = resolve_device(options.device);
  check_archive(
      bytes.size(),
      [&](uint64_t offset, char* buf, size_t n) {
        if (offset > bytes.size() || n > bytes.size() - offset) return false;
        std::memcpy(buf, bytes.data() + offset, n);
        return true;
      },
      "model from a Buffer of " + std::to_string(bytes.size()) + " bytes");
  torch::jit::Module module;
  try {
    std::istringstream in(bytes);
    module = torch::jit::load(in, device);
  } catch (const std::exception& e) {
    throw_load_error(e, "model from a Buffer of " + std::to_string(bytes.size()) + " bytes");
  }
  return finish(std::move(module), options, device);
}

at::Tensor Model::prepare(const at::Tensor& images) const {
  at::Tensor x = images.to(device_, at::kFloat);
  if (mean_.defined()) {
    if (x.dim() != 4 || x.size(1) != mean_.size(1)) {
      throw Error("ERR_INPUT_SHAPE",
                  "Expected " + std::to_string(mean_.size(1)) + " channels (the length of mean/std) for image but received " +
                      std::to_string(x.dim() == 4 ? x.size(1) : -1),
                  "image");
    }
    x = (x - mean_) / std_;
  }
  return x;
}

namespace {
at::Tensor first_tensor(const c10::IValue& v) {
  if (v.isTensor()) return v.toTensor();
  if (v.isTuple()) {
    for (const auto& e : v.toTupleRef().elements()) {
      if (e.isTensor()) return e.toTensor();
    }
  }
  if (v.isList()) {
    for (const auto& e : v.toListRef()) {
      if (e.isTensor()) return e.toTensor();
    }
  }
  if (v.isGenericDict()) {
    for (const auto& kv : v.toGenericDict()) {
      if (kv.value().isTensor()) return kv.value().toTensor();
    }
  }
  throw Error("ERR_MODEL_OUTPUT", "The model's output holds no tensor (got " + v.tagKind() + "); expected class scores");
}
}  // namespace

namespace {
std::string shape_of(const at::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}

// A classifier's output for n images: N x K floating-point scores, K >= 1 (dimensions after K, a fully
// convolutional model's score maps, are averaged by scores() when the model was loaded with scoreMaps: 'mean').
void check_scores(const at::Tensor& y, int64_t n) {
  auto fail = [&](const std::string& why) {
    throw Error("ERR_MODEL_OUTPUT", "Expected N x K floating-point class scores (N = " + std::to_string(n) + " images, K >= 1 classes) from the model for " +
                                        std::to_string(n) + " images but received " + c10::toString(y.scalar_type()) + " of shape " + shape_of(y) + why);
  };
  if (!at::isFloatingType(y.scalar_type())) fail(" (not floating point)");
  if (y.dim() < 2) fail(" (one number per image or per batch, not one per class)");
  if (y.size(0) != n) fail(" (not one row per image)");
  if (y.size(1) == 0) fail(" (0 classes)");
}
}  // namespace

void check_finite_input(const at::Tensor& images) {
  if (images.numel() == 0 || at::isfinite(images).all().item<bool>()) return;
  at::Tensor bad = at::logical_not(at::isfinite(images)).flatten().nonzero();
  const int64_t first = bad[0].item<int64_t>(), per = images.numel() / std::max<int64_t>(1, images.size(0));
  throw Error("ERR_NON_FINITE_INPUT",
              "Expected finite values for image but received NaN or Infinity (" + std::to_string(bad.size(0)) + " values; the first in image " +
                  std::to_string(first / per) + " at index " + std::to_string(first % per) + ")",
              "image");
}

void check_finite_result(const at::Tensor& values, const std::string& what) {
  if (values.numel() == 0 || at::isfinite(values).all().item<bool>()) return;
  throw Error("ERR_NON_FINITE_RESULT", "The " + what +
                                           " went non-finite (NaN or Infinity) on finite input: the model's scores, or an option that makes the "
                                           "computation overflow, produced them");
}

at::Tensor Model::forward(const at::Tensor& images) {
  check_finite_input(images);
  at::Tensor y = scores(module_, prepare(images));
  check_finite_result(y, "model's scores");
  return y;
}

at::Tensor Model::scores(torch::jit::Module& module, const at::Tensor& input) const {
  c10::IValue out;
  try {
    out = module.forward({input});
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    rethrow_run_error(e, input, input_channels_);
  }
  at::Tensor y = first_tensor(out);
  check_scores(y, input.size(0));
  if (y.dim() > 2) {
    // Score maps (a fully convolutional classifier, or a model that is not a classifier at all, such as a
    // segmenter): averaged over space only when the caller said so at load.
    if (!mean_score_maps_) {
      throw Error("ERR_MODEL_OUTPUT", "Expected N x K class scores from the model but received score maps of shape " + shape_of(y) +
                                          "; if they are a classifier's per-place class scores, load the model with scoreMaps: 'mean' "
                                          "(--score-maps mean) to average them over space");
    }
    y = y.flatten(2).mean(2);
  }
  return y;
}

void rethrow_run_error(const std::exception& e, const at::Tensor& input, int64_t expected_channels) {
  std::string msg = c10_message(e);
  std::ostringstream shape;
  shape << input.sizes();
  std::string what = "The model rejected an input of shape " + shape.str();
  if (expected_channels > 0 && input.dim() == 4 && input.size(1) != expected_channels) {
    throw Error("ERR_INPUT_SHAPE", what + ": expected " + std::to_string(expected_channels) + " channels but received " + std::to_string(input.size(1)),
                "image");
  }
  // Keep the part of TorchScript's message that names the failing operation.
  for (const char* key : {"size mismatch", "shapes cannot be multiplied", "Expected", "must match", "Given groups", "Calculated padded input size",
                          "Kernel size can't be greater", "Sizes of tensors must match", "Output size is too small", "Padding size should be less than"}) {
    auto pos = msg.find(key);
    if (pos != std::string::npos) {
      const size_t line = msg.rfind('\n', pos);
      std::string said = first_line(msg.substr(line == std::string::npos ? 0 : line + 1));
      if (said.rfind("RuntimeError: ", 0) == 0) said = said.substr(14);
      throw Error("ERR_INPUT_SHAPE", what + " (wrong size for this model?): " + said, "image");
    }
  }
  throw Error("ERR_MODEL_RUN", "The model failed on an input of shape " + shape.str() + ": " + reason_line(msg));
}

std::vector<std::string> Model::submodule_names() const {
  std::vector<std::string> names;
  for (const auto& m : module_.named_modules()) {
    if (!m.name.empty()) names.push_back(m.name);
  }
  return names;
}

std::vector<bool> Model::requires_grad_flags() const {
  std::vector<bool> flags;
  for (const auto& p : module_.parameters()) flags.push_back(p.requires_grad());
  return flags;
}

}  // namespace ts
