// A loaded TorchScript classifier: loading, device placement, optional input normalisation, and a
// forward pass that always yields N x K class scores. Plain C++ on libtorch; no Node here.
#pragma once
#include <ATen/ATen.h>
#include <torch/script.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ts {

struct ModelOptions {
  std::string device = "cpu";  // "cpu" | "cuda" | "cuda:N"; "auto" is resolved before this point
  std::vector<double> mean;    // per channel; empty: the model normalises itself
  std::vector<double> std;
  // Scores of N x K x H x W (a fully convolutional classifier's score maps): false refuses them
  // (ERR_MODEL_OUTPUT), true averages them over space into N x K.
  bool mean_score_maps = false;
};

class Model {
 public:
  static std::shared_ptr<Model> load_file(const std::string& path, const ModelOptions& options);
  static std::shared_ptr<Model> load_bytes(const std::string& bytes, const ModelOptions& options);
  ~Model();
  // Models alive in this process (a leak check for tests).
  static int64_t live();

  const at::Device& device() const { return device_; }
  torch::jit::Module& module() { return module_; }
  const torch::jit::Module& module() const { return module_; }
  // The module to take gradients through: the model itself, or, when its graphs hold attention fused into one
  // op (PyTorch's fast paths, which have no derivative), a clone with those ops taken apart into plain ops
  // (core/fused_attention.h): the same outputs, the same parameter tensors. Made once, on first use.
  torch::jit::Module& differentiable();
  // A Model over `module` (a changed copy of this one's) with this one's device and normalisation.
  std::shared_ptr<Model> with_module(torch::jit::Module module) const;

  // Images in [0, 1] (N x C x H x W, any device) -> the model's input (normalised when mean/std are set).
  at::Tensor prepare(const at::Tensor& images) const;
  // Runs `module` (the model itself or a clone of it) on already prepared input and reduces the
  // output to N x K scores: the first tensor of a tuple/list/dict, spatial dimensions averaged. An output
  // that is not floating point, has fewer than 2 dimensions, not N rows or 0 classes is ERR_MODEL_OUTPUT.
  at::Tensor scores(torch::jit::Module& module, const at::Tensor& input) const;
  // prepare + scores on the model itself.
  // Inputs and scores are checked to be finite (ERR_NON_FINITE_INPUT, ERR_NON_FINITE_RESULT).
  at::Tensor forward(const at::Tensor& images);

  // Number of input channels the first convolution expects, or -1 if unknown.
  int64_t input_channels() const { return input_channels_; }
  // The input size [h, w] the model's parameters fix, or {-1, -1}: a positional embedding (a parameter
  // named *pos_embed* / *position_embedding* of 1 x T x C) read as prefix tokens (0..5) plus a square grid,
  // times the kernel of the first convolution with C outputs (the patch embedding); or, with no
  // convolution at all, the first linear layer's inputs as channels x side x side. A hint: callers check
  // that the model runs on it.
  std::pair<int64_t, int64_t> input_size_hint() const { return input_size_hint_; }
  int64_t num_parameters() const { return num_parameters_; }
  // Names of all submodules, depth first ("features", "features.0", ...).
  std::vector<std::string> submodule_names() const;
  // Which parameters require grad (to check that runs leave the model as they found it).
  std::vector<bool> requires_grad_flags() const;

 private:
  Model(torch::jit::Module module, const ModelOptions& options, at::Device device);
  static std::shared_ptr<Model> finish(torch::jit::Module module, const ModelOptions& options, at::Device device);

  torch::jit::Module module_;
  std::once_flag differentiable_made_;
  std::optional<torch::jit::Module> differentiable_;  // none: module_ itself
  at::Device device_;
  at::Tensor mean_, std_;  // 1 x C x 1 x 1 on device_, undefined when unset
  std::pair<int64_t, int64_t> size_from_parameters() const;
  int64_t input_channels_ = -1;
  bool mean_score_maps_ = false;
  std::pair<int64_t, int64_t> input_size_hint_{-1, -1};
  int64_t num_parameters_ = 0;
};

// Resolves a device string ("cpu", "cuda", "cuda:1", "auto") or throws ts::Error.
at::Device resolve_device(const std::string& device);
bool cuda_available();
int cuda_device_count();

// Intra-op threads for every libtorch op in this process. 0 picks the cores available to the process.
void set_threads(int threads);
// Applies the count set by set_threads to the calling thread (call it first on every thread that runs work).
void sync_threads();
int get_threads();
int available_cores();

// Version of the libtorch this addon was built against, e.g. "1.13.1".
std::string torch_version();

// ERR_NON_FINITE_INPUT (argument "image") if `images` holds NaN or Infinity, saying where the first is.
void check_finite_input(const at::Tensor& images);
// ERR_NON_FINITE_RESULT if `values` (named by `what`: "model's scores", "maps") hold NaN or Infinity.
void check_finite_result(const at::Tensor& values, const std::string& what);

// Wraps a libtorch failure while running the model on `input` into an ERR_INPUT_SHAPE / ERR_MODEL_RUN
// error that says what the model got and, when it can tell, what it expected.
[[noreturn]] void rethrow_run_error(const std::exception& e, const at::Tensor& input, int64_t expected_channels);

}  // namespace ts
