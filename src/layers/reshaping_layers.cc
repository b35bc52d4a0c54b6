// Keras's spatial reshaping layers, for 1, 2 and 3 spatial axes: ZeroPadding1D/2D/3D,
// Cropping1D/2D/3D and UpSampling1D/2D/3D (nearest neighbour; UpSampling2D also bilinear), and the
// Resizing and CenterCrop preprocessing layers. Channels last by default; data_format
// "channels_first" takes the spatial axes after the channel axis, as Keras.
#include <array>
#include <cctype>
#include <string>
#include <tuple>

#include "core/error.h"
#include "layers/builtins.h"
#include "layers/layer.h"
#include "layers/layer_util.h"
#include "ops/image.h"
#include "ops/ops.h"

namespace kiln::layers {

namespace {

using Sides = std::vector<std::array<int64_t, 2>>;  // (before, after) of each spatial axis

// Keras's padding / cropping argument for n spatial axes: an int (both sides of every axis);
// for one axis, two ints (before, after); for more, n entries, each an int (both sides) or two.
Sides read_sides(ConfigReader &r, const char *key, size_t n, int64_t def) {
  Sides out(n, {def, def});
  if (!r.has(key)) return out;
  const Config::Json &v = r.config().json().at(key);
  auto bad = [&]() {
    fail(Code::kInvalidArgument, r.owner(), ": ", key, " must be an int, ",
         n == 1 ? "or a tuple of 2 ints (before, after)"
                : "or a tuple of " + std::to_string(n) + " ints or of " + std::to_string(n) +
                      " tuples of 2 ints",
         "; got ", v.dump());
  };
  auto side = [&](const Config::Json &e) {
    if (!e.is_number_integer()) bad();
    const int64_t x = e.get<int64_t>();
    if (x < 0) fail(Code::kInvalidArgument, r.owner(), ": ", key, " cannot be negative; got ", v.dump());
    return x;
  };
  auto pair = [&](const Config::Json &e) -> std::array<int64_t, 2> {
    if (!e.is_array()) return {side(e), side(e)};
    if (e.size() != 2) bad();
    return {side(e[0]), side(e[1])};
  };
  if (!v.is_array()) {
    out.assign(n, pair(v));
  } else if (n == 1) {
    out[0] = pair(v);
  } else {
    if (v.size() != n) bad();
    for (size_t i = 0; i < n; ++i) out[i] = pair(v[i]);
  }
  return out;
}

void write_sides(Config &c, const char *key, const Sides &sides) {
  std::string json = "{\"" + std::string(key) + "\": ";
  auto pair = [](const std::array<int64_t, 2> &p) {
    return "[" + std::to_string(p[0]) + ", " + std::to_string(p[1]) + "]";
  };
  if (sides.size() == 1) {
    json += pair(sides[0]);
  } else {
    json += "[";
    for (size_t i = 0; i < sides.size(); ++i) json += (i ? ", " : "") + pair(sides[i]);
    json += "]";
  }
  c.update(Config::from_json(json + "}"));
}

// What the three families share: n spatial axes of an input of rank n + 2, after the batch axis
// (channels last) or after the channel axis (channels first).
class SpatialLayer : public Layer {
 protected:
  SpatialLayer(const std::string &class_name, ConfigReader &r, size_t n, bool has_format)
      : Layer(class_name, r), has_format_(has_format) {
    if (has_format) channels_first_ = read_channels_first(r);
    input_spec_.ndim = static_cast<int64_t>(n + 2);
  }
  size_t axis(size_t i) const { return (channels_first_ ? 2 : 1) + i; }
  // The one input (its rank input_spec_ checked).
  const Tensor &input(const std::vector<Tensor> &inputs) const { return single_input(*this, inputs); }
  void add_format(Config &c) const {
    if (has_format_) c.set("data_format", data_format_name(channels_first_));
  }
  bool has_format_;
  bool channels_first_ = false;
};

std::string with_rank(const char *family, size_t n) { return family + std::to_string(n) + "D"; }

// Keras's interpolation argument of UpSampling2D and Resizing: "bilinear" or "nearest" (the others
// Keras knows are refused as not implemented).
ops::ResizeMethod read_interpolation(ConfigReader &r, const char *owner, const char *def) {
  std::string m = r.get_string("interpolation", def);
  for (char &ch : m) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (m == "bilinear") return ops::ResizeMethod::kBilinear;
  if (m == "nearest") return ops::ResizeMethod::kNearest;
  fail(m == "bicubic" || m == "lanczos3" || m == "lanczos5" || m == "area" ? Code::kUnimplemented
                                                                           : Code::kInvalidArgument,
       owner, ": interpolation '", m, "' is not supported; kiln has 'bilinear' and 'nearest'");
}

// ops::resize of x, whose spatial axes follow the channel axis when channels_first.
Tensor resize_images(const Tensor &x, int64_t height, int64_t width, ops::ResizeMethod m,
                     bool channels_first) {
  if (!channels_first) return ops::resize(x, height, width, m);
  return ops::transpose(ops::resize(ops::transpose(x, {0, 2, 3, 1}), height, width, m), {0, 3, 1, 2});
}

// ------------------------------------------------------------------ ZeroPadding

template <size_t N>
class ZeroPadding final : public SpatialLayer {
 public:
  explicit ZeroPadding(const Config &config)
      : ZeroPadding(ConfigReader(config, with_rank("ZeroPadding", N))) {}

 private:
  explicit ZeroPadding(ConfigReader &&r) : SpatialLayer(with_rank("ZeroPadding", N), r, N, true) {
    padding_ = read_sides(r, "padding", N, 1);
    r.finish();
  }
  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &) override {
    const Tensor &x = input(inputs);
    std::vector<int64_t> paddings(2 * (N + 2), 0);
    for (size_t i = 0; i < N; ++i) {
      paddings[2 * axis(i)] = padding_[i][0];
      paddings[2 * axis(i) + 1] = padding_[i][1];
    }
    return {ops::pad(x, paddings)};
  }
  void add_config(Config &c) const override {
    write_sides(c, "padding", padding_);
    add_format(c);
  }
  Sides padding_;
};

// ------------------------------------------------------------------ Cropping

template <size_t N>
class Cropping final : public SpatialLayer {
 public:
  explicit Cropping(const Config &config) : Cropping(ConfigReader(config, with_rank("Cropping", N))) {}

 private:
  // Cropping1D has no data_format (Keras).
  explicit Cropping(ConfigReader &&r) : SpatialLayer(with_rank("Cropping", N), r, N, N > 1) {
    cropping_ =
        read_sides(r, "cropping", N, N == 2 ? 0 : 1);  // Keras: (1, 1), ((0, 0), (0, 0)), ((1, 1),) * 3
    r.finish();
  }
  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &) override {
    const Tensor &x = input(inputs);
    std::vector<int64_t> begin(N + 2, 0), size(N + 2, -1);
    for (size_t i = 0; i < N; ++i) {
      begin[axis(i)] = cropping_[i][0];
      size[axis(i)] = cropped(x.shape()[static_cast<int>(axis(i))], i, x.description());
    }
    return {ops::slice(x, begin, size)};
  }
  // Keras checks the dims it knows; an unknown one stays unknown (the default would run call on
  // stand-in sizes of 2 and 3, which a crop of 2 or more does not fit).
  std::vector<PartialShape> compute_output_shape(const std::vector<PartialShape> &shapes) override {
    build(shapes);
    PartialShape s = single_input(*this, shapes);
    if (static_cast<int64_t>(s.size()) != input_spec().ndim)  // a shape other than the build's
      bad_input("input has shape ", partial_shape_string(s), "; expected rank ", input_spec().ndim);
    for (size_t i = 0; i < N; ++i)
      if (s[axis(i)] >= 0) s[axis(i)] = cropped(s[axis(i)], i, partial_shape_string(s));
    return {s};
  }
  // The size left of a spatial dim of `dim` along spatial axis i (INVALID_ARGUMENT, naming the
  // input, when the crops do not leave one).
  int64_t cropped(int64_t dim, size_t i, const std::string &input) const {
    const int64_t before = cropping_[i][0], after = cropping_[i][1];
    if (before >= dim || after >= dim - before)  // before + after >= dim, without overflow
      bad_input("cropping ", before, " + ", after, " must be smaller than the input's spatial dimension ",
                dim, " (axis ", axis(i), " of ", input, ")");
    return dim - before - after;
  }
  void add_config(Config &c) const override {
    write_sides(c, "cropping", cropping_);
    add_format(c);
  }
  Sides cropping_;
};

// ------------------------------------------------------------------ UpSampling

// Each spatial axis's entries repeated size times (Keras's ops.repeat, nearest neighbour).
// UpSampling1D has no data_format and an int size; UpSampling2D also an interpolation, of which
// kiln has "nearest".
template <size_t N>
class UpSampling final : public SpatialLayer {
 public:
  explicit UpSampling(const Config &config) : UpSampling(ConfigReader(config, with_rank("UpSampling", N))) {}

 private:
  explicit UpSampling(ConfigReader &&r) : SpatialLayer(with_rank("UpSampling", N), r, N, N > 1) {
    size_ = tuple_of(r, "size", r.get_int_list("size", {2}), N, 1);
    if (N == 2) bilinear_ = read_interpolation(r, "UpSampling2D", "nearest") == ops::ResizeMethod::kBilinear;
    r.finish();
  }
  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &) override {
    Tensor x = input(inputs);
    if (bilinear_) {  // Keras: ops.image.resize to (H * size[0], W * size[1])
      const Shape &s = x.shape();
      return {resize_images(x, s[int(axis(0))] * size_[0], s[int(axis(1))] * size_[1],
                            ops::ResizeMethod::kBilinear, channels_first_)};
    }
    for (size_t i = 0; i < N; ++i) {
      if (size_[i] == 1) continue;
      const int64_t a = static_cast<int64_t>(axis(i));
      std::vector<int64_t> dims = x.shape().to_vector();
      dims.insert(dims.begin() + a + 1, size_[i]);
      x = ops::broadcast_to(ops::expand_dims(x, a + 1), Shape(dims));
      dims[a] *= size_[i];
      dims.erase(dims.begin() + a + 1);
      x = ops::reshape(x, dims);
    }
    return {x};
  }
  void add_config(Config &c) const override {
    if (N == 1)
      c.set("size", size_[0]);
    else
      c.set("size", size_);
    add_format(c);
    if (N == 2) c.set("interpolation", bilinear_ ? "bilinear" : "nearest");
  }
  std::vector<int64_t> size_;
  bool bilinear_ = false;
};

// ------------------------------------------------------------------ Resizing, CenterCrop

// Keras's Resizing: images [N, H, W, C] or [H, W, C] (channels first: C before H and W) resized to
// height x width by ops::resize, after an optional centred crop or padding to the target's aspect
// ratio (Keras's arithmetic, in float32). The output keeps the input's dtype: integers are rounded
// and saturated, as Keras's _saturate_cast.
class Resizing final : public Layer {
 public:
  explicit Resizing(const Config &config) : Resizing(ConfigReader(config, "Resizing")) {}

 private:
  explicit Resizing(ConfigReader &&r) : Layer("Resizing", r) {
    std::tie(height_, width_) = read_image_size(r);
    method_ = read_interpolation(r, "Resizing", "bilinear");
    crop_ = r.get_bool("crop_to_aspect_ratio", false);
    pad_ = r.get_bool("pad_to_aspect_ratio", false);
    if (crop_ && pad_)
      fail(Code::kInvalidArgument,
           "Resizing: only one of pad_to_aspect_ratio and crop_to_aspect_ratio can be true");
    const std::string fill_mode = r.get_string("fill_mode", "constant");
    if (fill_mode != "constant")
      fail(Code::kInvalidArgument, "Resizing: fill_mode '", fill_mode,
           "' is not supported; expected 'constant'");
    fill_value_ = r.get_float("fill_value", 0.0);
    if (r.get_bool("antialias", false))
      fail(Code::kUnimplemented,
           "Resizing: antialias=True is not supported; kiln resizes without antialiasing");
    channels_first_ = read_channels_first(r);
    r.finish();
  }
  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &) override {
    Tensor x = to_channels_last(image_input(*this, inputs), channels_first_);
    const DType dt = x.dtype();
    if (crop_ || pad_) x = to_aspect_ratio(x);
    Tensor y = ops::resize(x, height_, width_, method_);
    if (y.dtype() != dt) {  // integer images: round and saturate back to their dtype, as Keras
      y = ops::round(y);
      if (dt == DType::kUInt8)
        y = ops::clip_by_value(y, 0.0f, 255.0f);
      else if (dt == DType::kInt32)
        y = ops::clip_by_value(y, -2147483648.0f, 2147483520.0f);
      y = ops::cast(y, dt);
    }
    return {from_channels_last(y, channels_first_)};
  }
  // Keras's crop_to_aspect_ratio / pad_to_aspect_ratio on channels-last x: the largest centred box of
  // the target's aspect ratio, or the smallest padding (fill_value, the same on both sides) that gives it.
  Tensor to_aspect_ratio(const Tensor &x) const {
    if (crop_) return crop_to_aspect<float>(x, height_, width_);
    const int h_axis = x.rank() - 3;
    const int64_t h = x.shape()[h_axis], w = x.shape()[h_axis + 1];
    auto trunc = [](float v) { return static_cast<int64_t>(v); };
    // In float, as Keras; a box beyond any tensor's size is clamped (the pad then fails on it).
    const auto box = [&](int64_t a, int64_t b, int64_t c) {
      return trunc(std::min(static_cast<float>(a) * static_cast<float>(b) / static_cast<float>(c), 4e18f));
    };
    const int64_t th = std::max(h, box(w, height_, width_));
    const int64_t tw = std::max(w, box(h, width_, height_));
    std::vector<int64_t> pads(size_t(2 * x.rank()), 0);
    const int64_t hs = trunc(static_cast<float>(th - h) / 2), ws = trunc(static_cast<float>(tw - w) / 2);
    pads[size_t(2 * h_axis)] = pads[size_t(2 * h_axis) + 1] = hs;
    pads[size_t(2 * h_axis) + 2] = pads[size_t(2 * h_axis) + 3] = ws;
    return ops::pad(x, pads, ops::PadMode::kConstant, fill_value_);
  }
  void add_config(Config &c) const override {
    // Keras's order: the base image layer's data_format first, then Resizing's own keys.
    c.set("data_format", data_format_name(channels_first_)).set("height", height_).set("width", width_);
    c.set("interpolation", method_ == ops::ResizeMethod::kBilinear ? "bilinear" : "nearest");
    c.set("crop_to_aspect_ratio", crop_).set("pad_to_aspect_ratio", pad_).set("fill_mode", "constant");
    c.set("fill_value", fill_value_).set("antialias", false);
  }
  int64_t height_ = 0, width_ = 0;
  ops::ResizeMethod method_ = ops::ResizeMethod::kBilinear;
  bool crop_ = false, pad_ = false, channels_first_ = false;
  double fill_value_ = 0.0;
};

// keras.layers.CenterCrop(height, width, data_format=None): the centred height x width window of
// images [N, H, W, C] or [H, W, C] (channels first: C before H and W), in the compute dtype (float32:
// Keras casts the images). The window starts at (H - height) // 2, (W - width) // 2. An image
// smaller than the target on either side is first cropped to the target's aspect ratio and resized
// to it (bilinear), as Keras's smart_resize.
class CenterCrop final : public Layer {
 public:
  explicit CenterCrop(const Config &config) : CenterCrop(ConfigReader(config, "CenterCrop")) {}

 private:
  explicit CenterCrop(ConfigReader &&r) : Layer("CenterCrop", r) {
    std::tie(height_, width_) = read_image_size(r);
    channels_first_ = read_channels_first(r);
    r.finish();
    set_autocast(false);  // cast below, integer images too
  }
  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &) override {
    const Tensor x = compute_images(*this, inputs, channels_first_);
    const int h_axis = x.rank() - 3;
    const int64_t h = x.shape()[h_axis], w = x.shape()[h_axis + 1];
    if (h >= height_ && w >= width_)
      return {from_channels_last(crop_window(x, (h - height_) / 2, (w - width_) / 2, height_, width_),
                                 channels_first_)};
    if (h < 1 || w < 1)
      bad_input("the images ", inputs[0].description(), " are empty; expected height and width >= 1");
    const Tensor y = ops::resize(crop_to_aspect<double>(x, height_, width_), height_, width_,
                                 ops::ResizeMethod::kBilinear);
    return {from_channels_last(y, channels_first_)};
  }
  std::vector<PartialShape> compute_output_shape(const std::vector<PartialShape> &shapes) override {
    return {image_output_shape(*this, single_input(*this, shapes), height_, width_, channels_first_)};
  }
  void add_config(Config &c) const override {
    c.set("height", height_).set("width", width_).set("data_format", data_format_name(channels_first_));
  }
  int64_t height_ = 0, width_ = 0;
  bool channels_first_ = false;
};

}  // namespace

void register_reshaping_layers() {
  register_class<ZeroPadding<1>>("ZeroPadding1D");
  register_class<ZeroPadding<2>>("ZeroPadding2D");
  register_class<ZeroPadding<3>>("ZeroPadding3D");
  register_class<Cropping<1>>("Cropping1D");
  register_class<Cropping<2>>("Cropping2D");
  register_class<Cropping<3>>("Cropping3D");
  register_class<UpSampling<1>>("UpSampling1D");
  register_class<UpSampling<2>>("UpSampling2D");
  register_class<UpSampling<3>>("UpSampling3D");
  register_class<Resizing>("Resizing");
  register_class<CenterCrop>("CenterCrop");
}

}  // namespace kiln::layers
