#include "napi/convert.h"

#include <cstring>

namespace tsn {

at::Tensor tensor_from_float32(const Napi::TypedArrayOf<float>& data, const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  if (n != static_cast<int64_t>(data.ElementLength())) {
    throw ts::Error("ERR_INPUT_SHAPE", "Expected " + std::to_string(n) + " values for the given shape but received " + std::to_string(data.ElementLength()),
                    "image");
  }
  at::Tensor t = at::empty(shape, at::kFloat);
  std::memcpy(t.data_ptr<float>(), data.Data(), n * sizeof(float));
  return t;
}

Napi::Value typed_array_from_tensor(Napi::Env env, const at::Tensor& input) {
  at::Tensor t = input.to(at::kCPU).contiguous();
  if (at::isIntegralType(t.scalar_type(), /*includeBool=*/true)) {
    t = t.to(at::kInt).contiguous();
    auto arr = Napi::Int32Array::New(env, t.numel());
    if (t.numel()) std::memcpy(arr.Data(), t.data_ptr<int32_t>(), t.numel() * sizeof(int32_t));
    return arr;
  }
  t = t.to(at::kFloat).contiguous();
  auto arr = Napi::Float32Array::New(env, t.numel());
  if (t.numel()) std::memcpy(arr.Data(), t.data_ptr<float>(), t.numel() * sizeof(float));
  return arr;
}

Napi::Object tensor_to_js(Napi::Env env, const at::Tensor& t) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("data", typed_array_from_tensor(env, t));
  Napi::Array shape = Napi::Array::New(env, t.dim());
  for (int64_t i = 0; i < t.dim(); ++i) shape.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(t.size(i))));
  o.Set("shape", shape);
  return o;
}

std::vector<int64_t> int_list(const Napi::Value& v) {
  std::vector<int64_t> out;
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) out.push_back(a.Get(i).As<Napi::Number>().Int64Value());
  return out;
}

std::vector<double> number_list(const Napi::Value& v) {
  std::vector<double> out;
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) out.push_back(a.Get(i).As<Napi::Number>().DoubleValue());
  return out;
}

namespace {
const char* kind_of(const Napi::Value& v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsFunction()) return "a function";
  if (v.IsTypedArray()) return "a typed array";
  if (v.IsArray()) return "an array holding something other than numbers";
  if (v.IsObject()) return "an object";
  return "a value of another type";
}
}  // namespace

ts::Options options_from_js(const Napi::Object& o) {
  ts::Options options;
  Napi::Array keys = o.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    std::string key = keys.Get(i).As<Napi::String>().Utf8Value();
    Napi::Value v = o.Get(key);
    if (v.IsNumber()) {
      options.set(key, v.As<Napi::Number>().DoubleValue());
    } else if (v.IsBoolean()) {
      options.set(key, v.As<Napi::Boolean>().Value() ? 1.0 : 0.0);
    } else if (v.IsString()) {
      options.set(key, v.As<Napi::String>().Utf8Value());
    } else if (v.IsNull()) {
      options.set(key, std::monostate{});
    } else if (v.IsArray() && [&] {
                 Napi::Array a = v.As<Napi::Array>();
                 for (uint32_t k = 0; k < a.Length(); ++k)
                   if (!a.Get(k).IsNumber()) return false;
                 return true;
               }()) {
      options.set(key, number_list(v));
    } else {
      // What the binding cannot carry is refused, not dropped: a method would otherwise run without it.
      throw ts::Error("ERR_INVALID_ARG_TYPE",
                      "Expected a number, a boolean, a string, an array of numbers or null for options." + key + " but received " + kind_of(v),
                      "options." + key);
    }
  }
  return options;
}

Napi::Error make_error(Napi::Env env, const std::string& code, const std::string& message, const std::string& argument) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Value().Set("code", Napi::String::New(env, code));
  if (!argument.empty()) e.Value().Set("argument", Napi::String::New(env, argument));
  return e;
}

}  // namespace tsn
