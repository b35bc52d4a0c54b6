// Keras's random image augmentation layers, active only in training: RandomFlip, RandomCrop,
// RandomContrast, RandomBrightness, RandomRotation, RandomTranslation and RandomZoom. Images [N, H, W, C] or
// [H, W, C] (channels first: C before H and W); the output is in the compute dtype (float32), as Keras casts
// the images, also outside training. Each image of a batch draws its own flip, contrast, brightness or
// transform; RandomCrop crops the whole batch at one place, as Keras. Seeds are TF's op seeds (see
// GaussianNoise).
#include <algorithm>
#include <array>
#include <cmath>
#include <iterator>
#include <optional>
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

// What the augmentation layers share: the images in, as channels-last [N, H, W, C] in the compute
// dtype (a single image as a batch of one), and back out in the input's layout.
class ImageAugmentation : public Layer {
 protected:
  ImageAugmentation(const char *class_name, ConfigReader &r) : Layer(class_name, r) {
    channels_first_ = read_channels_first(r);
    seed_ = read_seed(r);
    set_autocast(false);  // cast below, integer images too
  }

  Tensor images_in(const std::vector<Tensor> &inputs) const {
    const Tensor x = compute_images(*this, inputs, channels_first_);
    return x.rank() == 3 ? ops::expand_dims(x, 0) : x;
  }
  Tensor images_out(const Tensor &y, int input_rank) const {
    return from_channels_last(input_rank == 3 ? ops::squeeze(y, {0}) : y, channels_first_);
  }
  // One uniform draw in [0, 1) per image and per column: [N, columns] in float32.
  Tensor per_image(const Tensor &x, int64_t columns) const {
    return ops::random_uniform(Shape({x.shape()[0], columns}), 0.0f, 1.0f, seed_);
  }
  // A [N, 1, 1, 1] column of per-image values, to broadcast over the images.
  Tensor column(const Tensor &values, int64_t index) const {
    const int64_t n = values.shape()[0];
    return ops::cast(ops::reshape(ops::slice(values, {0, index}, {n, 1}), {n, 1, 1, 1}), compute_dtype());
  }
  // The images' shape (RandomCrop gives its own).
  std::vector<PartialShape> compute_output_shape(const std::vector<PartialShape> &shapes) override {
    return {single_input(*this, shapes)};
  }
  void add_config(Config &c) const override {
    write_seed(c, seed_);
    c.set("data_format", data_format_name(channels_first_));
  }

  bool channels_first_ = false;
  int64_t seed_ = -1;
};

// ------------------------------------------------------------------ RandomFlip

// keras.layers.RandomFlip(mode="horizontal_and_vertical", seed=None): in training each image is
// flipped left-right ("horizontal") and / or upside down ("vertical"), each with probability 1/2
// (independently, as tf.keras's two random flips).
class RandomFlip final : public ImageAugmentation {
 public:
  explicit RandomFlip(const Config &config) : RandomFlip(ConfigReader(config, "RandomFlip")) {}

 private:
  explicit RandomFlip(ConfigReader &&r) : ImageAugmentation("RandomFlip", r) {
    mode_ = r.get_string("mode", "horizontal_and_vertical");
    if (mode_ != "horizontal" && mode_ != "vertical" && mode_ != "horizontal_and_vertical")
      fail(Code::kInvalidArgument, "RandomFlip: mode '", mode_,
           "' is not one of 'horizontal', 'vertical', 'horizontal_and_vertical'");
    r.finish();
  }
  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &ctx) override {
    Tensor x = images_in(inputs);
    if (ctx.training) {
      const Tensor draws = per_image(x, 2);
      const Tensor half = ops::fill(Shape({}), 0.5, compute_dtype());
      if (mode_ != "vertical") x = flip(x, 2, ops::less(column(draws, 0), half));
      if (mode_ != "horizontal") x = flip(x, 1, ops::less(column(draws, 1), half));
    }
    return {images_out(x, inputs[0].rank())};
  }
  // x reversed along axis where `which` ([N, 1, 1, 1] bool) holds.
  static Tensor flip(const Tensor &x, int64_t axis, const Tensor &which) {
    const int64_t n = x.shape()[int(axis)];
    const Tensor reversed = ops::range_int64(n - 1, -1, -1);
    return ops::where(which, ops::gather(x, reversed, axis), x);
  }
  void add_config(Config &c) const override {
    c.set("mode", mode_);
    ImageAugmentation::add_config(c);
  }
  std::string mode_;
};

// ------------------------------------------------------------------ RandomCrop

// keras.layers.RandomCrop(height, width, seed=None): in training, a height x width window at a
// random place (the same for every image of the batch), when the images are larger than that on
// both sides. Otherwise, and outside training, the largest centred window of the target's aspect
// ratio resized to height x width (bilinear), as Keras's smart_resize.
class RandomCrop final : public ImageAugmentation {
 public:
  explicit RandomCrop(const Config &config) : RandomCrop(ConfigReader(config, "RandomCrop")) {}

 private:
  explicit RandomCrop(ConfigReader &&r) : ImageAugmentation("RandomCrop", r) {
    std::tie(height_, width_) = read_image_size(r);
    r.finish();
  }
  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &ctx) override {
    const Tensor x = images_in(inputs);
    const int64_t h = x.shape()[1], w = x.shape()[2];
    if (h < 1 || w < 1)
      bad_input("the images ", inputs[0].description(), " are empty; expected height and width >= 1");
    Tensor y;
    if (ctx.training && h > height_ && w > width_) {
      const Tensor u = ops::random_uniform(Shape({2}), 0.0f, 1.0f, seed_);
      const float *p = u.data<float>();
      const auto offset = [](float v, int64_t room) {
        return std::min(static_cast<int64_t>(static_cast<double>(v) * static_cast<double>(room + 1)), room);
      };
      y = crop_window(x, offset(p[0], h - height_), offset(p[1], w - width_), height_, width_);
    } else {
      y = ops::resize(crop_to_aspect<double>(x, height_, width_), height_, width_,
                      ops::ResizeMethod::kBilinear);
    }
    return {images_out(y, inputs[0].rank())};
  }
  std::vector<PartialShape> compute_output_shape(const std::vector<PartialShape> &shapes) override {
    return {image_output_shape(*this, single_input(*this, shapes), height_, width_, channels_first_)};
  }
  void add_config(Config &c) const override {
    c.set("height", height_).set("width", width_);
    ImageAugmentation::add_config(c);
  }
  int64_t height_ = 0, width_ = 0;
};

// ------------------------------------------------------------------ factors and value ranges

// Keras's factor of a random layer under `key`: a number f, read as [-|f|, |f|], or two numbers
// (lower, upper), sorted; each in [-1, 1] (zoom: in (-1, 1], as a zoom of 1 + -1 has no image).
std::array<double, 2> read_signed_factor(ConfigReader &r, const char *key, bool zoom = false) {
  if (!r.has(key)) fail(Code::kInvalidArgument, r.owner(), ": config key '", key, "' is required");
  const std::vector<double> v = r.config().get_float_list(key);
  const bool listed = r.config().json().at(key).is_array();  // a list must hold two numbers, as Keras
  std::array<double, 2> f{};
  if (v.size() == 1 && !listed) f = {-std::abs(v[0]), std::abs(v[0])};
  if (v.size() == 2) f = {std::min(v[0], v[1]), std::max(v[0], v[1])};
  if ((v.size() != 1 && v.size() != 2) || (listed && v.size() != 2) || !(f[0] >= -1.0 && f[1] <= 1.0) ||
      (zoom && f[0] == -1.0))
    fail(Code::kInvalidArgument, r.owner(), ": ", key, " must be a number or two numbers (lower, upper) in ",
         zoom ? "(-1, 1]" : "[-1, 1]", "; got ", r.config().json().at(key).dump());
  return f;
}

// RandomContrast's factor: f in [0, 1] is lower = upper = f (as Keras documents); of two numbers
// (sorted) lower is in [0, 1] and upper >= 0.
std::array<double, 2> read_contrast_factor(ConfigReader &r) {
  if (!r.has("factor")) fail(Code::kInvalidArgument, r.owner(), ": config key 'factor' is required");
  const std::vector<double> v = r.config().get_float_list("factor");
  const bool listed = r.config().json().at("factor").is_array();
  std::array<double, 2> f{};
  if (v.size() == 1 && !listed) f = {v[0], v[0]};
  if (v.size() == 2) f = {std::min(v[0], v[1]), std::max(v[0], v[1])};
  if ((v.size() != 1 && v.size() != 2) || (listed && v.size() != 2) || !(f[0] >= 0.0 && f[0] <= 1.0) ||
      !(v.size() == 2 || f[1] <= 1.0) || !std::isfinite(f[1]))
    fail(Code::kInvalidArgument, r.owner(),
         ": factor must be a number in [0, 1] or two numbers (lower, upper), lower in [0, 1] and upper >= 0; "
         "got ",
         r.config().json().at("factor").dump());
  return f;
}

// Keras's value_range: two numbers, low <= high (default [0, 255]).
std::array<double, 2> read_value_range(ConfigReader &r) {
  if (!r.has("value_range")) return {0.0, 255.0};
  const std::vector<double> v = r.config().get_float_list("value_range");
  if (v.size() != 2 || !(v[0] <= v[1]) || !std::isfinite(v[0]) || !std::isfinite(v[1]))
    fail(Code::kInvalidArgument, r.owner(),
         ": value_range must be two finite numbers [low, high] with low <= high; got ",
         r.config().json().at("value_range").dump());
  return {v[0], v[1]};
}

// ------------------------------------------------------------------ RandomContrast, RandomBrightness

// The colour layers: a random per-image value in training, applied, then clipped to value_range.
class ColorAugmentation : public ImageAugmentation {
 protected:
  ColorAugmentation(const char *class_name, ConfigReader &r, bool brightness)
      : ImageAugmentation(class_name, r) {
    factor_ = brightness ? read_signed_factor(r, "factor") : read_contrast_factor(r);
    value_range_ = read_value_range(r);
    r.finish();
  }
  // x adjusted by a per-image value drawn uniformly in [lo, hi) ([N, 1, 1, 1]).
  virtual Tensor adjust(const Tensor &x, const Tensor &value) const = 0;
  virtual std::array<double, 2> draw_range() const = 0;

  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &ctx) override {
    Tensor x = images_in(inputs);
    if (ctx.training) {
      const auto [lo, hi] = draw_range();
      const Tensor u = column(per_image(x, 1), 0);
      const Tensor value = ops::add(ops::mul(u, scalar(hi - lo)), scalar(lo));
      x = ops::clip_by_value(adjust(x, value), scalar(value_range_[0]), scalar(value_range_[1]));
    }
    return {images_out(x, inputs[0].rank())};
  }
  Tensor scalar(double v) const { return ops::fill(Shape({}), v, compute_dtype()); }
  void add_config(Config &c) const override {
    c.set("factor", std::vector<double>{factor_[0], factor_[1]});
    c.set("value_range", std::vector<double>{value_range_[0], value_range_[1]});
    ImageAugmentation::add_config(c);
  }
  std::array<double, 2> factor_{}, value_range_{};
};

// keras.layers.RandomContrast(factor, value_range=(0, 255), seed=None): in training each image's
// channels are (x - mean) * c + mean (mean over the image's height and width), c drawn in
// [1 - lower, 1 + upper] (a single factor f is lower = upper = f, as Keras documents), then
// clipped to value_range. lower is in [0, 1].
class RandomContrast final : public ColorAugmentation {
 public:
  explicit RandomContrast(const Config &config) : RandomContrast(ConfigReader(config, "RandomContrast")) {}

 private:
  explicit RandomContrast(ConfigReader &&r) : ColorAugmentation("RandomContrast", r, false) {}
  std::array<double, 2> draw_range() const override { return {1.0 - factor_[0], 1.0 + factor_[1]}; }
  Tensor adjust(const Tensor &x, const Tensor &c) const override {
    const Tensor mean = ops::mean(x, {1, 2}, true);
    return ops::add(ops::mul(ops::sub(x, mean), c), mean);
  }
};

// keras.layers.RandomBrightness(factor, value_range=(0, 255), seed=None): in training each image
// gets delta * (high - low) added, delta drawn in [lower, upper] (a single factor f is [-f, f]),
// both in [-1, 1], then clipped to value_range.
class RandomBrightness final : public ColorAugmentation {
 public:
  explicit RandomBrightness(const Config &config)
      : RandomBrightness(ConfigReader(config, "RandomBrightness")) {}

 private:
  explicit RandomBrightness(ConfigReader &&r) : ColorAugmentation("RandomBrightness", r, true) {}
  std::array<double, 2> draw_range() const override {
    const double span = value_range_[1] - value_range_[0];
    return {factor_[0] * span, factor_[1] * span};
  }
  Tensor adjust(const Tensor &x, const Tensor &delta) const override { return ops::add(x, delta); }
};

// ------------------------------------------------------------------ RandomRotation, RandomTranslation,
// RandomZoom

// The geometric layers: in training each image is resampled through its own affine transform
// (ops::projective_transform, TF's ImageProjectiveTransformV3), points outside the image filled by
// fill_mode ("reflect", "wrap", "constant" with fill_value, "nearest") and read with interpolation
// ("bilinear", "nearest"). The transforms are computed in float32, as Keras computes them.
class AffineAugmentation : public ImageAugmentation {
 protected:
  AffineAugmentation(const char *class_name, ConfigReader &r) : ImageAugmentation(class_name, r) {
    fill_mode_name_ = r.get_string("fill_mode", "reflect");
    const char *const modes[] = {"reflect", "wrap", "constant", "nearest"};
    const auto *found = std::find(std::begin(modes), std::end(modes), fill_mode_name_);
    if (found == std::end(modes))
      fail(Code::kInvalidArgument, class_name, ": fill_mode '", fill_mode_name_,
           "' is not one of 'reflect', 'wrap', 'constant', 'nearest'");
    fill_mode_ = static_cast<ops::FillMode>(found - std::begin(modes));
    const std::string interpolation = r.get_string("interpolation", "bilinear");
    if (interpolation != "bilinear" && interpolation != "nearest")
      fail(Code::kInvalidArgument, class_name, ": interpolation '", interpolation,
           "' is not one of 'bilinear', 'nearest'");
    bilinear_ = interpolation == "bilinear";
    fill_value_ = r.get_float("fill_value", 0.0);
  }
  // The [N, 8] transforms of a batch of N images of h x w, from per_image draws.
  virtual std::vector<float> transforms(const Tensor &x, int64_t h, int64_t w) const = 0;

  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &ctx) override {
    Tensor x = images_in(inputs);
    if (ctx.training && x.num_elements() > 0) {
      const std::vector<float> t = transforms(x, x.shape()[1], x.shape()[2]);
      const Tensor tt =
          Tensor::from_data(DType::kFloat32, Shape({x.shape()[0], 8}), t.data(), t.size() * sizeof(float));
      x = ops::projective_transform(x, tt,
                                    bilinear_ ? ops::ResizeMethod::kBilinear : ops::ResizeMethod::kNearest,
                                    fill_mode_, fill_value_);
    }
    return {images_out(x, inputs[0].rank())};
  }
  // Per image, `columns` draws in [0, 1) as floats: row i holds image i's.
  std::vector<float> draws(const Tensor &x, int64_t columns) const {
    const Tensor u = per_image(x, columns);
    return std::vector<float>(u.data<float>(), u.data<float>() + u.num_elements());
  }
  static float between(float u, const std::array<double, 2> &range) {  // Keras's uniform(minval, maxval)
    const auto lo = static_cast<float>(range[0]), hi = static_cast<float>(range[1]);
    return u * (hi - lo) + lo;
  }
  void add_config(Config &c) const override {
    c.set("fill_mode", fill_mode_name_).set("interpolation", bilinear_ ? "bilinear" : "nearest");
    c.set("fill_value", fill_value_);
    ImageAugmentation::add_config(c);
  }
  std::string fill_mode_name_;
  ops::FillMode fill_mode_ = ops::FillMode::kReflect;
  bool bilinear_ = true;
  double fill_value_ = 0.0;
};

// keras.layers.RandomRotation(factor, fill_mode="reflect", interpolation="bilinear", seed=None,
// fill_value=0.0): each image turned about its centre by an angle drawn in [lower, upper] * 2 pi
// (factor f: [-f, f]; positive turns counter-clockwise), as Keras's affine matrix.
class RandomRotation final : public AffineAugmentation {
 public:
  explicit RandomRotation(const Config &config) : RandomRotation(ConfigReader(config, "RandomRotation")) {}

 private:
  explicit RandomRotation(ConfigReader &&r) : AffineAugmentation("RandomRotation", r) {
    factor_ = read_signed_factor(r, "factor");
    r.finish();
  }
  std::vector<float> transforms(const Tensor &x, int64_t h, int64_t w) const override {
    const std::vector<float> u = draws(x, 1);
    const std::array<double, 2> degrees = {factor_[0] * 360.0, factor_[1] * 360.0};
    const float cx = 0.5f * static_cast<float>(w - 1), cy = 0.5f * static_cast<float>(h - 1);
    std::vector<float> t;
    for (float ui : u) {
      const float angle = between(ui, degrees) * static_cast<float>(3.141592653589793 / 180.0);
      const float cos_a = std::cos(angle), sin_a = std::sin(angle);
      const float a0 = cos_a, a1 = -sin_a, b0 = sin_a, b1 = cos_a;
      t.insert(t.end(), {a0, a1, cx - cx * a0 - cy * a1, b0, b1, cy - cx * b0 - cy * b1, 0.0f, 0.0f});
    }
    return t;
  }
  void add_config(Config &c) const override {
    c.set("factor", std::vector<double>{factor_[0], factor_[1]});
    AffineAugmentation::add_config(c);
  }
  std::array<double, 2> factor_{};
};

// keras.layers.RandomTranslation(height_factor, width_factor, fill_mode="reflect",
// interpolation="bilinear", seed=None, fill_value=0.0): each image shifted down by a fraction of its
// height drawn in [lower, upper] of height_factor, and right by one of its width from width_factor
// (f: [-f, f]; negative shifts up or left).
class RandomTranslation final : public AffineAugmentation {
 public:
  explicit RandomTranslation(const Config &config)
      : RandomTranslation(ConfigReader(config, "RandomTranslation")) {}

 private:
  explicit RandomTranslation(ConfigReader &&r) : AffineAugmentation("RandomTranslation", r) {
    height_ = read_signed_factor(r, "height_factor");
    width_ = read_signed_factor(r, "width_factor");
    r.finish();
  }
  std::vector<float> transforms(const Tensor &x, int64_t h, int64_t w) const override {
    const std::vector<float> u = draws(x, 2);
    std::vector<float> t;
    for (size_t i = 0; i < u.size(); i += 2) {
      const float dy = between(u[i], height_) * static_cast<float>(h);
      const float dx = between(u[i + 1], width_) * static_cast<float>(w);
      t.insert(t.end(), {1.0f, 0.0f, -dx, 0.0f, 1.0f, -dy, 0.0f, 0.0f});
    }
    return t;
  }
  void add_config(Config &c) const override {
    c.set("height_factor", std::vector<double>{height_[0], height_[1]});
    c.set("width_factor", std::vector<double>{width_[0], width_[1]});
    AffineAugmentation::add_config(c);
  }
  std::array<double, 2> height_{}, width_{};
};

// keras.layers.RandomZoom(height_factor, width_factor=None, fill_mode="reflect",
// interpolation="bilinear", seed=None, fill_value=0.0): each image zoomed about its centre by
// 1 + a value drawn in [lower, upper] of height_factor vertically and of width_factor horizontally
// (None: the vertical zoom, keeping the aspect ratio); above 1 zooms out, below 1 in.
class RandomZoom final : public AffineAugmentation {
 public:
  explicit RandomZoom(const Config &config) : RandomZoom(ConfigReader(config, "RandomZoom")) {}

 private:
  explicit RandomZoom(ConfigReader &&r) : AffineAugmentation("RandomZoom", r) {
    height_ = read_signed_factor(r, "height_factor", true);
    if (r.has("width_factor")) width_ = read_signed_factor(r, "width_factor", true);
    r.finish();
  }
  std::vector<float> transforms(const Tensor &x, int64_t h, int64_t w) const override {
    const std::vector<float> u = draws(x, 2);
    const float half_w = (static_cast<float>(w) - 1.0f) / 2.0f,
                half_h = (static_cast<float>(h) - 1.0f) / 2.0f;
    std::vector<float> t;
    for (size_t i = 0; i < u.size(); i += 2) {
      const float zy = between(u[i], {1.0 + height_[0], 1.0 + height_[1]});
      const float zx = width_ ? between(u[i + 1], {1.0 + (*width_)[0], 1.0 + (*width_)[1]}) : zy;
      t.insert(t.end(), {zx, 0.0f, half_w * (1.0f - zx), 0.0f, zy, half_h * (1.0f - zy), 0.0f, 0.0f});
    }
    return t;
  }
  void add_config(Config &c) const override {
    c.set("height_factor", std::vector<double>{height_[0], height_[1]});
    if (width_)
      c.set("width_factor", std::vector<double>{(*width_)[0], (*width_)[1]});
    else
      c.set_null("width_factor");
    AffineAugmentation::add_config(c);
  }
  std::array<double, 2> height_{};
  std::optional<std::array<double, 2>> width_;
};

}  // namespace

void register_image_augmentation_layers() {
  register_class<RandomFlip>("RandomFlip");
  register_class<RandomCrop>("RandomCrop");
  register_class<RandomContrast>("RandomContrast");
  register_class<RandomBrightness>("RandomBrightness");
  register_class<RandomRotation>("RandomRotation");
  register_class<RandomTranslation>("RandomTranslation");
  register_class<RandomZoom>("RandomZoom");
}

}  // namespace kiln::layers
