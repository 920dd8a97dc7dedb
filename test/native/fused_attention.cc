// Native checks of core/fused_attention's rewrite, op by op, on graphs made from IR text: each fused node is
// taken apart and the rewritten graph is run against the fused op itself (_native_multi_head_attention and
// _transformer_encoder_layer_fwd, which every supported libtorch has: masks of each type, need_weights,
// averaged weights, pre- and post-norm, GELU and ReLU) and against scaled_dot_product_attention's documented
// reference written out here (its op is missing from libtorch 1.13: boolean and additive masks, is_causal,
// a given scale, grouped query heads).
// Run by test/integration/native-kernels.test.ts; prints one line per check and exits 1 on a failure.
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/ir/irparser.h>
#include <torch/script.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "core/fused_attention.h"

namespace {

int failures = 0;

void check(const std::string& name, const at::Tensor& got, const at::Tensor& want, double tol) {
  const double scale = std::max(1.0, want.abs().max().item<double>());
  const double err = (got - want).abs().max().item<double>() / scale;  // NaN fails
  const bool ok = err <= tol && got.sizes() == want.sizes();
  std::printf("%s %s: max difference %.3g of the largest value %.3g (tolerance %.3g)\n", ok ? "ok  " : "FAIL", name.c_str(), err, scale, tol);
  if (!ok) ++failures;
}

void expect(const std::string& name, bool ok) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", name.c_str());
  if (!ok) ++failures;
}

std::shared_ptr<torch::jit::Graph> parse(const std::string& ir) {
  auto graph = std::make_shared<torch::jit::Graph>();
  torch::jit::parseIR(ir, graph.get());
  return graph;
}

std::vector<c10::IValue> run(const std::shared_ptr<torch::jit::Graph>& graph, std::vector<c10::IValue> inputs) {
  torch::jit::GraphFunction fn("f", graph->copy(), nullptr);
  c10::IValue out = fn(std::move(inputs));
  if (out.isTuple()) return out.toTupleRef().elements().vec();
  return {out};
}

// The rewritten copy of `graph`, after checking that `count` nodes were taken apart and no fused node is left.
std::shared_ptr<torch::jit::Graph> rewritten(const std::string& name, const std::shared_ptr<torch::jit::Graph>& graph, size_t count) {
  auto copy = graph->copy();
  auto done = ts::decompose_fused_attention(*copy);
  bool left = false;
  for (torch::jit::Node* n : copy->nodes()) {
    const std::string kind = n->kind().toQualString();
    left =
        left || kind == "aten::_native_multi_head_attention" || kind == "aten::_transformer_encoder_layer_fwd" || kind == "aten::scaled_dot_product_attention";
  }
  expect(name + " rewrite takes apart " + std::to_string(count) + " node(s)", done.size() == count && !left);
  return copy;
}

std::string flag(bool b) { return b ? "1" : "0"; }

// Runs the fused op itself into `out`; false (and a "skip" line) when this libtorch's op refuses the case
// (libtorch 1.13's _native_multi_head_attention takes no L x S or per-head mask: a graph of 1.13 never has one).
bool reference_runs(const std::string& name, const std::shared_ptr<torch::jit::Graph>& graph, const std::vector<c10::IValue>& inputs,
                    std::vector<c10::IValue>& out) {
  try {
    out = run(graph, inputs);
    return true;
  } catch (const std::exception& e) {
    std::string why = e.what();
    const size_t at = why.find("RuntimeError: ");
    why = at == std::string::npos ? why.substr(0, why.find('\n')) : why.substr(at, why.find('\n', at) - at);
    std::printf("skip %s: this libtorch's op refuses it (%s)\n", name.c_str(), why.c_str());
    return false;
  }
}

// softmax(q k^T * scale + bias) v, the documented reference of scaled_dot_product_attention.
at::Tensor sdpa_reference(const at::Tensor& q, at::Tensor k, at::Tensor v, const c10::optional<at::Tensor>& mask, bool causal, c10::optional<double> scale,
                          bool gqa) {
  if (gqa) {
    k = k.repeat_interleave(q.size(-3) / k.size(-3), -3);
    v = v.repeat_interleave(q.size(-3) / v.size(-3), -3);
  }
  const double s = scale ? *scale : 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  at::Tensor bias = at::zeros({q.size(-2), k.size(-2)}, q.options());
  const double inf = std::numeric_limits<double>::infinity();
  if (causal) bias = bias.masked_fill(at::ones({q.size(-2), k.size(-2)}, q.options().dtype(at::kBool)).tril().logical_not(), -inf);
  if (mask) bias = mask->scalar_type() == at::kBool ? bias.masked_fill(mask->logical_not(), -inf) : bias + *mask;
  return at::matmul(at::softmax(at::matmul(q, k.transpose(-2, -1)) * s + bias, -1), v);
}

void sdpa_cases() {
  const int64_t B = 2, H = 4, L = 5, S = 7, D = 8;
  for (int c = 0; c < 6; ++c) {
    const bool causal = c == 1 || c == 4, gqa = c == 5;
    const bool bool_mask = c == 2 || c == 4, float_mask = c == 3;
    c10::optional<double> scale = c == 3 ? c10::optional<double>(0.3) : c10::nullopt;
    const int64_t kv_heads = gqa ? 2 : H;
    const int64_t s = causal ? L : S;
    at::Tensor q = at::randn({B, H, L, D}), k = at::randn({B, kv_heads, s, D}), v = at::randn({B, kv_heads, s, D});
    c10::optional<at::Tensor> mask;
    if (bool_mask) {
      mask = at::rand({B, 1, L, s}) > 0.3;
      mask->select(-1, 0).fill_(true);  // no empty row
    } else if (float_mask) {
      mask = at::randn({L, s});
    }
    const std::string ir = std::string("graph(%q : Tensor, %k : Tensor, %v : Tensor, %mask : Tensor?):\n") + "  %p : float = prim::Constant[value=0.]()\n" +
                           "  %causal : bool = prim::Constant[value=" + flag(causal) + "]()\n" +
                           (scale ? "  %scale : float = prim::Constant[value=0.3]()\n" : "  %scale : NoneType = prim::Constant()\n") +
                           "  %gqa : bool = prim::Constant[value=" + flag(gqa) + "]()\n" +
                           "  %out : Tensor = aten::scaled_dot_product_attention(%q, %k, %v, %mask, %p, %causal, %scale, %gqa)\n  return (%out)\n";
    const std::string name = "sdpa case " + std::to_string(c) + (causal ? " causal" : "") + (bool_mask ? " bool-mask" : "") +
                             (float_mask ? " float-mask scale" : "") + (gqa ? " gqa" : "");
    auto graph = rewritten(name, parse(ir), 1);
    const c10::IValue m = mask ? c10::IValue(*mask) : c10::IValue();
    check(name, run(graph, {q, k, v, m})[0].toTensor(), sdpa_reference(q, k, v, mask, causal, scale, gqa), 1e-5);
  }
  // The 6-input form of torch 2.0 (no scale, no enable_gqa).
  at::Tensor q = at::randn({2, 3, 4, 8}), k = at::randn({2, 3, 4, 8}), v = at::randn({2, 3, 4, 8});
  auto graph = rewritten("sdpa 6 inputs", parse(R"IR(graph(%q : Tensor, %k : Tensor, %v : Tensor):
  %none : NoneType = prim::Constant()
  %p : float = prim::Constant[value=0.]()
  %causal : bool = prim::Constant[value=0]()
  %out : Tensor = aten::scaled_dot_product_attention(%q, %k, %v, %none, %p, %causal)
  return (%out))IR"),
                         1);
  check("sdpa 6 inputs", run(graph, {q, k, v})[0].toTensor(), sdpa_reference(q, k, v, c10::nullopt, false, c10::nullopt, false), 1e-5);
}

void mha_cases() {
  const int64_t B = 2, T = 6, E = 16, H = 4;
  at::Tensor w = at::randn({3 * E, E}) * 0.3, b = at::randn({3 * E}) * 0.1, pw = at::randn({E, E}) * 0.3, pb = at::randn({E}) * 0.1;
  for (int c = 0; c < 6; ++c) {
    // c: 0 no mask, 1 L x S mask (type 0), 2 key padding (type 1), 3 B x H x L x S (type 2), 4 cross-attention, 5 float key padding.
    const bool need_weights = c % 2 == 0, average = c == 2;
    at::Tensor q = at::randn({B, T, E});
    at::Tensor k = c == 4 ? at::randn({B, T + 2, E}) : q, v = c == 4 ? at::randn({B, T + 2, E}) : q;
    c10::IValue mask;
    int64_t mask_type = -1;
    if (c == 1) {
      mask = at::rand({T, T}) > 0.7, mask_type = 0;
    } else if (c == 2) {
      at::Tensor m = at::zeros({B, T}, at::kBool);
      m.slice(1, T - 2).fill_(true);
      mask = m, mask_type = 1;
    } else if (c == 3) {
      mask = at::rand({B, H, T, T}) > 0.7, mask_type = 2;
    } else if (c == 5) {
      at::Tensor m = at::zeros({B, T});
      m.slice(1, 0, 2).fill_(-std::numeric_limits<float>::infinity());
      mask = m, mask_type = 1;
    }
    if (mask.isTensor()) mask.toTensor().select(-1, 3).fill_(0);  // a key every query keeps (false; 0 added)
    const std::string ir =
        std::string("graph(%q : Tensor, %k : Tensor, %v : Tensor, %w : Tensor, %b : Tensor, %pw : Tensor, %pb : Tensor, %mask : Tensor?):\n") +
        "  %E : int = prim::Constant[value=" + std::to_string(E) + "]()\n" + "  %H : int = prim::Constant[value=" + std::to_string(H) + "]()\n" +
        "  %need : bool = prim::Constant[value=" + flag(need_weights) + "]()\n" + "  %avg : bool = prim::Constant[value=" + flag(average) + "]()\n" +
        (mask_type >= 0 ? "  %mt : int = prim::Constant[value=" + std::to_string(mask_type) + "]()\n" : "  %mt : NoneType = prim::Constant()\n") +
        "  %out : Tensor, %weights : Tensor = aten::_native_multi_head_attention(%q, %k, %v, %E, %H, %w, %b, %pw, %pb, %mask, %need, %avg, "
        "%mt)\n"
        "  %both : (Tensor, Tensor) = prim::TupleConstruct(%out, %weights)\n  return (%both)\n";
    const std::string name = "mha case " + std::to_string(c) + (need_weights ? " need_weights" : "") + (average ? " averaged" : "") +
                             (mask_type >= 0 ? " mask type " + std::to_string(mask_type) : "");
    auto graph = parse(ir);
    std::vector<c10::IValue> inputs{q, k, v, w, b, pw, pb, mask};
    std::vector<c10::IValue> want;
    if (!reference_runs(name, graph, inputs, want)) continue;
    auto got = run(rewritten(name, graph, 1), inputs);
    check(name + " output", got[0].toTensor(), want[0].toTensor(), 1e-5);
    if (need_weights) check(name + " weights", got[1].toTensor(), want[1].toTensor(), 1e-5);
  }
}

void encoder_cases() {
  const int64_t B = 2, T = 5, E = 16, H = 4, F = 24;
  auto r = [](std::vector<int64_t> shape, double s) { return at::randn(shape) * s; };
  std::vector<c10::IValue> weights{r({3 * E, E}, 0.3), r({3 * E}, 0.1), r({E, E}, 0.3), r({E}, 0.1), 1 + r({E}, 0.1), r({E}, 0.1),
                                   1 + r({E}, 0.1),    r({E}, 0.1),     r({F, E}, 0.3), r({F}, 0.1), r({E, F}, 0.3),  r({E}, 0.1)};
  for (int c = 0; c < 4; ++c) {
    const bool norm_first = c % 2 == 0, gelu = c < 2;
    const bool masked = c == 3;
    at::Tensor src = at::randn({B, T, E});
    c10::IValue mask;
    if (masked) {  // a key padding mask (type 1): libtorch 1.13's op takes no other
      at::Tensor m = at::zeros({B, T}, at::kBool);
      m.select(1, T - 1).fill_(true);
      m.select(0, 1).select(0, 1).fill_(true);
      mask = m;
    }
    const std::string ir = std::string(
                               "graph(%src : Tensor, %w : Tensor, %b : Tensor, %pw : Tensor, %pb : Tensor, %n1w : Tensor, %n1b : Tensor, %n2w : Tensor, "
                               "%n2b : Tensor, %f1w : Tensor, %f1b : Tensor, %f2w : Tensor, %f2b : Tensor, %mask : Tensor?):\n") +
                           "  %E : int = prim::Constant[value=" + std::to_string(E) + "]()\n" + "  %H : int = prim::Constant[value=" + std::to_string(H) +
                           "]()\n" + "  %gelu : bool = prim::Constant[value=" + flag(gelu) + "]()\n" +
                           "  %first : bool = prim::Constant[value=" + flag(norm_first) + "]()\n" +
                           "  %eps : float = prim::Constant[value=1.0000000000000001e-05]()\n" +
                           (masked ? "  %mt : int = prim::Constant[value=1]()\n" : "  %mt : NoneType = prim::Constant()\n") +
                           "  %out : Tensor = aten::_transformer_encoder_layer_fwd(%src, %E, %H, %w, %b, %pw, %pb, %gelu, %first, %eps, %n1w, %n1b, %n2w, "
                           "%n2b, %f1w, %f1b, %f2w, %f2b, %mask, %mt)\n  return (%out)\n";
    const std::string name = std::string("encoder ") + (norm_first ? "pre-norm" : "post-norm") + (gelu ? " gelu" : " relu") + (masked ? " key padding" : "");
    auto graph = parse(ir);
    std::vector<c10::IValue> inputs{src};
    inputs.insert(inputs.end(), weights.begin(), weights.end());
    inputs.push_back(mask);
    at::Tensor want = run(graph, inputs)[0].toTensor();
    check(name, run(rewritten(name, graph, 1), inputs)[0].toTensor(), want, 1e-5);
    // The rewrite is not the op itself: the same graph with the blocks' order of operations changed would differ.
    expect(name + " output differs from its input", (want - src).abs().max().item<double>() > 1e-3);
  }
}

}  // namespace

void guarded(const char* family, void (*cases)()) {
  try {
    cases();
  } catch (const std::exception& e) {
    std::printf("FAIL %s: %s\n", family, e.what());
    ++failures;
  }
}

int main() {
  at::NoGradGuard no_grad;  // the fused ops run without a gradient, as where PyTorch takes them
  at::manual_seed(3);
  guarded("sdpa", sdpa_cases);
  guarded("mha", mha_cases);
  guarded("encoder", encoder_cases);
  std::printf("%s: %d failure(s)\n", failures ? "FAIL" : "ok  ", failures);
  return failures ? 1 : 0;
}
