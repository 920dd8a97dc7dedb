// Conversions between JavaScript values and core types. Only runs on the main thread.
#pragma once
#include <napi.h>

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "core/explain.h"

namespace tsn {

// Float32Array + shape -> a float tensor that owns a copy of the data (safe to use off-thread).
at::Tensor tensor_from_float32(const Napi::TypedArrayOf<float>& data, const std::vector<int64_t>& shape);
// A contiguous CPU tensor -> Float32Array (float) or Int32Array (integer) holding a copy.
Napi::Value typed_array_from_tensor(Napi::Env env, const at::Tensor& t);
// { data, shape } for a tensor.
Napi::Object tensor_to_js(Napi::Env env, const at::Tensor& t);
std::vector<int64_t> int_list(const Napi::Value& v);
std::vector<double> number_list(const Napi::Value& v);
// A plain object of numbers, booleans, strings, number arrays and nulls -> Options; any other value throws
// ERR_INVALID_ARG_TYPE naming its key.
ts::Options options_from_js(const Napi::Object& o);

// A JS Error carrying `code` and `argument`, as lib/errors.ts expects.
Napi::Error make_error(Napi::Env env, const std::string& code, const std::string& message, const std::string& argument = "");

// Runs `convert` (reading a call's arguments, on the main thread) and throws a ts::Error it raises as the
// JS error make_error builds.
template <typename F>
auto converting(Napi::Env env, F&& convert) -> decltype(convert()) {
  try {
    return convert();
  } catch (const ts::Error& e) {
    throw make_error(env, e.code(), e.what(), e.argument());
  }
}

// The images of a call: a Float32Array and its shape (N x C x H x W) as a tensor, or the JS error.
inline at::Tensor images_from_js(Napi::Env env, const Napi::Value& data, const Napi::Value& shape) {
  return converting(env, [&] { return tensor_from_float32(data.As<Napi::TypedArrayOf<float>>(), int_list(shape)); });
}

}  // namespace tsn
