#include "layers/layer_util.h"

#include <optional>
#include <string>

#include "core/error.h"
#include "ops/ops.h"

namespace kiln::layers {

int64_t known_dim(const Layer &l, const PartialShape &s, size_t axis, const char *what) {
  if (axis >= s.size() || s[axis] < 0)
    fail(Code::kInvalidArgument, "layer '", l.name(), "' (", l.class_name(), "): input shape ",
         partial_shape_string(s), " needs a known ", what);
  return s[axis];
}

const PartialShape &single_input(const Layer &l, const std::vector<PartialShape> &shapes) {
  if (shapes.size() != 1)
    fail(Code::kInvalidArgument, "layer '", l.name(), "' (", l.class_name(), "): got ", shapes.size(),
         " inputs; expected 1");
  return shapes[0];
}

const Tensor &single_input(const Layer &l, const std::vector<Tensor> &inputs) {
  if (inputs.size() != 1)
    fail(Code::kInvalidArgument, "layer '", l.name(), "' (", l.class_name(), "): got ", inputs.size(),
         " inputs; expected 1");
  return inputs[0];
}

std::string tuple_string(const std::vector<int64_t> &v) {
  std::string s = "(";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + (v.size() == 1 ? ",)" : ")");
}

std::vector<int64_t> tuple_of(const ConfigReader &r, const char *key, std::vector<int64_t> v, size_t n,
                              int64_t min_value) {
  if (v.size() == 1 && n > 1) v.assign(n, v[0]);
  if (v.size() != n)
    fail(Code::kInvalidArgument, r.owner(), ": ", key, " must be an int or a tuple of ", n, " ints; got ",
         tuple_string(v));
  for (int64_t d : v)
    if (d < min_value)
      fail(Code::kInvalidArgument, r.owner(), ": ", key, " values must be >= ", min_value, "; got ",
           tuple_string(v));
  return v;
}

bool read_channels_first(ConfigReader &r) {
  const std::optional<std::string> f = r.get_optional_string("data_format");
  if (!f || *f == "channels_last") return false;
  if (*f == "channels_first") return true;
  fail(Code::kInvalidArgument, r.owner(), ": data_format '", *f,
       "' must be 'channels_last' or 'channels_first'");
}

double read_rate(ConfigReader &r) {
  const double rate = r.get_float("rate", -1);
  if (!(rate >= 0 && rate < 1))
    fail(Code::kInvalidArgument, r.owner(), ": rate must be in [0, 1); got ", rate,
         r.has("rate") ? "" : " (rate is required)");
  return rate;
}

int64_t read_seed(ConfigReader &r) {
  const int64_t seed = r.get_int("seed", -1);
  if (seed < 0 && r.has("seed"))
    fail(Code::kInvalidArgument, r.owner(), ": seed must be an int >= 0, or None for none; got ", seed);
  return seed;
}

void write_seed(Config &c, int64_t seed) {
  if (seed >= 0)
    c.set("seed", seed);
  else
    c.set_null("seed");
}

InitializerPtr initializer_or(const Config &config, ConfigReader &r, const char *key, const char *def) {
  return r.has(key) ? initializer_from_value(config, key) : get_initializer(def);
}

void set_regularizer(Config &c, const char *key, const RegularizerPtr &r) {
  if (r)
    c.set(key, serialize_regularizer(*r));
  else
    c.set_null(key);
}

void reject_constraints(ConfigReader &r, std::initializer_list<const char *> keys) {
  for (const char *k : keys)
    if (r.has(k))
      fail(Code::kUnimplemented, r.owner(), ": '", k, "' (weight constraints) is not supported yet");
}

KernelBiasSettings KernelBiasSettings::read(const Config &config, ConfigReader &r) {
  KernelBiasSettings s;
  s.kernel_init = initializer_or(config, r, "kernel_initializer", "glorot_uniform");
  s.bias_init = initializer_or(config, r, "bias_initializer", "zeros");
  s.kernel_reg = regularizer_from_value(config, "kernel_regularizer");
  s.bias_reg = regularizer_from_value(config, "bias_regularizer");
  s.activity_reg = regularizer_from_value(config, "activity_regularizer");
  r.accept({"kernel_regularizer", "bias_regularizer", "activity_regularizer"});
  reject_constraints(r, {"kernel_constraint", "bias_constraint"});
  return s;
}

void KernelBiasSettings::write(Config &c) const {
  c.set("kernel_initializer", serialize_initializer(*kernel_init));
  c.set("bias_initializer", serialize_initializer(*bias_init));
  set_regularizer(c, "kernel_regularizer", kernel_reg);
  set_regularizer(c, "bias_regularizer", bias_reg);
  set_regularizer(c, "activity_regularizer", activity_reg);
  c.set_null("kernel_constraint").set_null("bias_constraint");
}

IntOrList IntOrList::read(ConfigReader &r, const char *key, const std::vector<int64_t> &def) {
  IntOrList v;
  v.list = r.config().has(key) && r.config().type(key) == Config::Type::kList;
  v.values = r.get_int_list(key, def);
  return v;
}

void IntOrList::write(Config &c, const char *key) const {
  if (list || values.size() != 1)
    c.set(key, values);
  else
    c.set(key, values[0]);
}

Tensor activity_loss(const Regularizer &reg, const Tensor &y) {
  const Tensor loss = reg(y);
  if (y.shape().rank() == 0) return loss;
  const int64_t batch = y.shape()[0];
  return batch == 0 ? ops::mul(loss, ops::fill(Shape({}), 0.0, loss.dtype()))
                    : ops::div(loss, ops::fill(Shape({}), static_cast<double>(batch), loss.dtype()));
}

Config wrapped_config(ConfigReader &r, const char *key) {
  const bool is_config = r.config().has(key) && r.config().type(key) == Config::Type::kConfig;
  const std::optional<Config> c = is_config ? r.get_optional_config(key) : std::nullopt;
  if (!c || !c->has("class_name"))
    fail(Code::kInvalidArgument, r.owner(), ": '", key,
         "' must be a serialized layer ({\"class_name\": ..., \"config\": {...}})");
  return *c;
}

Tensor to_channels_last(const Tensor &x, bool channels_first) {
  if (!channels_first) return x;
  return ops::transpose(x, x.rank() == 4 ? std::vector<int64_t>{0, 2, 3, 1} : std::vector<int64_t>{1, 2, 0});
}

Tensor from_channels_last(const Tensor &y, bool channels_first) {
  if (!channels_first) return y;
  return ops::transpose(y, y.rank() == 4 ? std::vector<int64_t>{0, 3, 1, 2} : std::vector<int64_t>{2, 0, 1});
}

const Tensor &image_input(const Layer &l, const std::vector<Tensor> &inputs) {
  const Tensor &x = single_input(l, inputs);
  if (x.rank() != 3 && x.rank() != 4)
    l.bad_input("input has shape ", x.shape().to_string(),
                "; expected rank 4 (a batch of images) or 3 (one image)");
  return x;
}

Tensor compute_images(const Layer &l, const std::vector<Tensor> &inputs, bool channels_first) {
  const Tensor &images = image_input(l, inputs);
  if (images.dtype() == DType::kBool || (!is_floating(images.dtype()) && !is_integer(images.dtype())))
    l.bad_input("the images are ", images.description(), "; expected numbers");
  return to_channels_last(ops::cast(images, l.compute_dtype()), channels_first);
}

Tensor crop_window(const Tensor &x, int64_t top, int64_t left, int64_t height, int64_t width) {
  const size_t h_axis = size_t(x.rank() - 3);
  std::vector<int64_t> begin(size_t(x.rank()), 0), size(size_t(x.rank()), -1);
  begin[h_axis] = top;
  begin[h_axis + 1] = left;
  size[h_axis] = height;
  size[h_axis + 1] = width;
  return ops::slice(x, begin, size);
}

PartialShape image_output_shape(const Layer &l, PartialShape s, int64_t height, int64_t width,
                                bool channels_first) {
  if (s.size() != 3 && s.size() != 4)
    l.bad_input("input shape ", partial_shape_string(s),
                " must have rank 4 (a batch of images) or 3 (one image)");
  const size_t h_axis = s.size() - (channels_first ? 2 : 3);
  s[h_axis] = height;
  s[h_axis + 1] = width;
  return s;
}

std::pair<int64_t, int64_t> read_image_size(ConfigReader &r) {
  const int64_t height = r.get_int("height"), width = r.get_int("width");
  if (height < 1 || width < 1)
    fail(Code::kInvalidArgument, r.owner(), ": height ", height, " and width ", width, " must be positive");
  return {height, width};
}

Tensor encode_categorical(const Tensor &ids, const std::string &mode, int64_t depth, DType out,
                          const Tensor &weights) {
  const Tensor v = ids.rank() == 0 ? ops::reshape(ids, {1}) : ids;
  if (mode == "one_hot") {
    const Tensor rows = v.rank() > 1 && v.shape()[v.rank() - 1] == 1 ? ops::squeeze(v, {-1}) : v;
    return ops::one_hot(rows, depth, 1.0, 0.0, -1, out);
  }
  Tensor hot = ops::one_hot(v, depth, 1.0, 0.0, -1, out);  // [..., depth]
  if (weights.defined()) hot = ops::mul(hot, ops::expand_dims(weights, -1));
  const Tensor counts = ops::sum(hot, {v.rank() > 1 ? 1 : 0});
  return mode == "count" ? counts : ops::minimum(counts, ops::fill(Shape{}, 1.0, out));
}

PartialShape encoded_shape(PartialShape s, const std::string &mode, int64_t depth) {
  if (s.empty()) return mode == "one_hot" ? PartialShape{1, depth} : PartialShape{depth};  // one sample
  if (mode == "one_hot") {
    if (s.size() > 1 && s.back() == 1) s.pop_back();
  } else {
    s.erase(s.begin() + (s.size() > 1 ? 1 : 0));
  }
  s.push_back(depth);
  return s;
}

}  // namespace kiln::layers
