// Keras's image augmentation layers: RandomFlip, RandomCrop, RandomContrast, RandomBrightness,
// RandomRotation, RandomTranslation, RandomZoom, RandomShear and RandomPerspective, and Keras 3's colour
// layers Solarization, RandomInvert, RandomGrayscale, RandomPosterization, RandomColorDegeneration,
// RandomSharpness, RandomSaturation, RandomHue, RandomColorJitter, RandomErasing, RandomGaussianBlur and
// Equalization, RandAugment of them, and MixUp and CutMix (images, or images and labels), all active only in
// training; and AutoContrast, active always. Images [N, H, W, C] or [H, W, C] (channels first: C before H
// and W); the output is in the compute dtype (float32), as Keras casts the images, also outside training.
// Each image of a batch draws its own values; RandomCrop crops the whole batch at one place, as Keras.
// Seeds are TF's op seeds (see GaussianNoise).
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

// The channels an augmentation layer takes: any, 3 or 1 (grayscale), or 3 (hue and saturation).
enum class Channels { kAny, kGrayOrRgb, kRgb };

// What the augmentation layers share: the images in, as channels-last [N, H, W, C] in the compute
// dtype (a single image as a batch of one), and back out in the input's layout.
class ImageAugmentation : public Layer {
 protected:
  // seeded: the layer takes Keras's seed (AutoContrast draws nothing).
  ImageAugmentation(const char *class_name, ConfigReader &r, bool seeded = true)
      : Layer(class_name, r), seeded_(seeded) {
    channels_first_ = read_channels_first(r);
    if (seeded) seed_ = read_seed(r);
    set_autocast(false);  // cast below, integer images too
  }

  Tensor images_in(const std::vector<Tensor> &inputs) const {
    const Tensor x = compute_images(*this, inputs, channels_first_);
    return x.rank() == 3 ? ops::expand_dims(x, 0) : x;
  }
  Tensor images_out(const Tensor &y, int input_rank) const {
    return from_channels_last(input_rank == 3 ? ops::squeeze(y, {0}) : y, channels_first_);
  }
  // Keras's layers that touch the images only in training (Equalization, MixUp) return integer images as
  // they came outside it (autocast casts only floats).
  static bool integers_kept(const std::vector<Tensor> &inputs, const CallContext &ctx) {
    return !ctx.training && !inputs.empty() && is_integer(inputs[0].dtype());
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
  // The images' shape, of rank 4 or 3 and of the channels the layer takes where known (RandomCrop gives
  // its own).
  std::vector<PartialShape> compute_output_shape(const std::vector<PartialShape> &shapes) override {
    const PartialShape &s = single_input(*this, shapes);
    if (s.size() != 3 && s.size() != 4)
      bad_input("input shape ", partial_shape_string(s),
                " must have rank 4 (a batch of images) or 3 (one image)");
    check_channels(s[channels_first_ ? s.size() - 3 : s.size() - 1], "of shape " + partial_shape_string(s));
    return {s};
  }
  void check_channels(int64_t channels, const std::string &images) const {
    const bool gray_ok = channels_ == Channels::kGrayOrRgb && channels == 1;
    if (channels_ != Channels::kAny && channels >= 0 && channels != 3 && !gray_ok)
      bad_input("the images ", images, " have ", channels, " channels; expected 3 (RGB)",
                channels_ == Channels::kGrayOrRgb ? " or 1 (grayscale)" : "");
  }
  void add_config(Config &c) const override {
    if (seeded_) write_seed(c, seed_);
    c.set("data_format", data_format_name(channels_first_));
  }

  bool seeded_ = true;
  bool channels_first_ = false;
  Channels channels_ = Channels::kAny;
  int64_t seed_ = -1;
};

// A float32 tensor's values.
std::vector<float> host_floats(const Tensor &t) {
  return std::vector<float>(t.data<float>(), t.data<float>() + t.num_elements());
}

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
std::array<double, 2> read_contrast_factor(ConfigReader &r, const char *key = "factor") {
  if (!r.has(key)) fail(Code::kInvalidArgument, r.owner(), ": config key '", key, "' is required");
  const std::vector<double> v = r.config().get_float_list(key);
  const bool listed = r.config().json().at(key).is_array();
  std::array<double, 2> f{};
  if (v.size() == 1 && !listed) f = {v[0], v[0]};
  if (v.size() == 2) f = {std::min(v[0], v[1]), std::max(v[0], v[1])};
  if ((v.size() != 1 && v.size() != 2) || (listed && v.size() != 2) || !(f[0] >= 0.0 && f[0] <= 1.0) ||
      !(v.size() == 2 || f[1] <= 1.0) || !std::isfinite(f[1]))
    fail(Code::kInvalidArgument, r.owner(), ": ", key,
         " must be a number in [0, 1] or two numbers (lower, upper), lower in [0, 1] and upper >= 0; got ",
         r.config().json().at(key).dump());
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

// Keras's value_range of the Keras 3 colour layers (AutoContrast, Solarization, ...): two finite numbers,
// sorted as Keras sorts them (default [0, 255]); they must differ, as images are mapped from them to [0, 255]
// and back.
std::array<double, 2> read_sorted_value_range(ConfigReader &r) {
  std::array<double, 2> v = {0.0, 255.0};
  if (r.has("value_range")) {
    const std::vector<double> got = r.config().get_float_list("value_range");
    if (got.size() != 2 || !std::isfinite(got[0]) || !std::isfinite(got[1]) || got[0] == got[1])
      fail(Code::kInvalidArgument, r.owner(),
           ": value_range must be two different finite numbers (low, high); got ",
           r.config().json().at("value_range").dump());
    v = {std::min(got[0], got[1]), std::max(got[0], got[1])};
  }
  return v;
}

// How a factor's two numbers (lower, upper) are checked: each in [0, 1] or each in [-1, 1] (Solarization's
// and RandomShear's check; RandomShear's written [-f, f] reads back), or by Keras's base layer rule, which
// refuses them only when lower > 1 or upper < 0 (or < -1, where Keras's bounds are [-1, 1]: it writes
// RandomColorDegeneration's and RandomSaturation's f as [-f, f]).
enum class Lists { kEachInUnit, kEachSigned, kOverlapUnit, kOverlapSigned };

// Keras's factor under `key` (def when absent): a number f in [0, 1], read as [0, f] (symmetric: [-f, f]),
// or two finite numbers (lower, upper), sorted, checked by `lists`.
std::array<double, 2> read_unit_factor(ConfigReader &r, const char *key, std::optional<double> def,
                                       Lists lists, bool symmetric = false) {
  if (!r.has(key)) {
    if (!def) fail(Code::kInvalidArgument, r.owner(), ": config key '", key, "' is required");
    return {symmetric ? -*def : 0.0, *def};
  }
  const std::vector<double> v = r.config().get_float_list(key);
  const bool listed = r.config().json().at(key).is_array();
  const bool each = lists == Lists::kEachInUnit || lists == Lists::kEachSigned;
  const double low = lists == Lists::kEachSigned || lists == Lists::kOverlapSigned ? -1.0 : 0.0;
  std::array<double, 2> f{};
  if (v.size() == 1 && !listed) f = {symmetric ? -v[0] : 0.0, v[0]};
  if (v.size() == 2) f = {std::min(v[0], v[1]), std::max(v[0], v[1])};
  const bool pair_ok = v.size() == 2 && std::isfinite(f[0]) && std::isfinite(f[1]) &&
                       (each ? f[0] >= low && f[1] <= 1.0 : f[0] <= 1.0 && f[1] >= low);
  if (listed ? !pair_ok : !(v.size() == 1 && v[0] >= 0.0 && v[0] <= 1.0))
    fail(Code::kInvalidArgument, r.owner(), ": ", key,
         " must be a number in [0, 1] or two numbers (lower, upper) ",
         each ? "in [" : "with lower <= 1 and upper >= ", low, each ? ", 1]" : "", "; got ",
         r.config().json().at(key).dump());
  return f;
}

// ------------------------------------------------------------------ RandomContrast, RandomBrightness

// RandomContrast's adjustment: each image's channels (x - mean) * c + mean, the mean over height and width.
Tensor scale_contrast(const Tensor &x, const Tensor &c) {
  const Tensor mean = ops::mean(x, {1, 2}, true);
  return ops::add(ops::mul(ops::sub(x, mean), c), mean);
}

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
  Tensor adjust(const Tensor &x, const Tensor &c) const override { return scale_contrast(x, c); }
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
  // fill_modes: the layer takes Keras's fill_mode (RandomPerspective fills with fill_value only).
  AffineAugmentation(const char *class_name, ConfigReader &r, bool fill_modes = true)
      : ImageAugmentation(class_name, r), fill_modes_(fill_modes) {
    fill_mode_name_ = fill_modes ? r.get_string("fill_mode", "reflect") : "constant";
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
  // The [N, 8] transforms of a batch of N images of h x w, from per_image draws. A layer that leaves
  // some images as they are (not resampled through an identity, which would spread a NaN or inf to the
  // neighbours) fills `kept` with one flag per image, 1 for those.
  virtual std::vector<float> transforms(const Tensor &x, int64_t h, int64_t w,
                                        std::vector<uint8_t> &kept) const = 0;

  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &ctx) override {
    Tensor x = images_in(inputs);
    if (ctx.training && x.num_elements() > 0) {
      const int64_t n = x.shape()[0];
      std::vector<uint8_t> kept;
      const std::vector<float> t = transforms(x, x.shape()[1], x.shape()[2], kept);
      const Tensor tt = Tensor::from_data(DType::kFloat32, Shape({n, 8}), t.data(), t.size() * sizeof(float));
      const Tensor moved = ops::projective_transform(
          x, tt, bilinear_ ? ops::ResizeMethod::kBilinear : ops::ResizeMethod::kNearest, fill_mode_,
          fill_value_);
      x = kept.empty()
              ? moved
              : ops::where(Tensor::from_data(DType::kBool, Shape({n, 1, 1, 1}), kept.data(), kept.size()), x,
                           moved);
    }
    return {images_out(x, inputs[0].rank())};
  }
  // Per image, `columns` draws in [0, 1) as floats: row i holds image i's.
  std::vector<float> draws(const Tensor &x, int64_t columns) const {
    return host_floats(per_image(x, columns));
  }
  static float between(float u, const std::array<double, 2> &range) {  // Keras's uniform(minval, maxval)
    const auto lo = static_cast<float>(range[0]), hi = static_cast<float>(range[1]);
    return u * (hi - lo) + lo;
  }
  void add_config(Config &c) const override {
    if (fill_modes_) c.set("fill_mode", fill_mode_name_);
    c.set("interpolation", bilinear_ ? "bilinear" : "nearest");
    c.set("fill_value", fill_value_);
    ImageAugmentation::add_config(c);
  }
  bool fill_modes_ = true;
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
  std::vector<float> transforms(const Tensor &x, int64_t h, int64_t w,
                                std::vector<uint8_t> &) const override {
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
  std::vector<float> transforms(const Tensor &x, int64_t h, int64_t w,
                                std::vector<uint8_t> &) const override {
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
  std::vector<float> transforms(const Tensor &x, int64_t h, int64_t w,
                                std::vector<uint8_t> &) const override {
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

// keras.layers.RandomShear(x_factor=0.0, y_factor=0.0, interpolation="bilinear", fill_mode="reflect",
// fill_value=0.0, data_format=None, seed=None): each image sheared, the output pixel (x, y) read from
// (x + sx y, sy x + y) (about the top-left corner, as Keras's matrix), sx drawn in x_factor's
// [lower, upper] and sy in y_factor's (f: [-f, f]; f and two numbers in [0, 1]), both negated for
// half the images.
class RandomShear final : public AffineAugmentation {
 public:
  explicit RandomShear(const Config &config) : RandomShear(ConfigReader(config, "RandomShear")) {}

 private:
  explicit RandomShear(ConfigReader &&r) : AffineAugmentation("RandomShear", r) {
    x_ = read_unit_factor(r, "x_factor", 0.0, Lists::kEachSigned, true);
    y_ = read_unit_factor(r, "y_factor", 0.0, Lists::kEachSigned, true);
    r.finish();
  }
  std::vector<float> transforms(const Tensor &x, int64_t, int64_t, std::vector<uint8_t> &) const override {
    const std::vector<float> u = draws(x, 3);
    std::vector<float> t;
    for (size_t i = 0; i < u.size(); i += 3) {
      const float sign = u[i] > 0.5f ? -1.0f : 1.0f;
      t.insert(t.end(), {1.0f, between(u[i + 1], x_) * sign, 0.0f, between(u[i + 2], y_) * sign, 1.0f, 0.0f,
                         0.0f, 0.0f});
    }
    return t;
  }
  void add_config(Config &c) const override {
    c.set("x_factor", std::vector<double>{x_[0], x_[1]});
    c.set("y_factor", std::vector<double>{y_[0], y_[1]});
    AffineAugmentation::add_config(c);
  }
  std::array<double, 2> x_{}, y_{};
};

// keras.layers.RandomPerspective(factor=1.0, scale=1.0, interpolation="bilinear", fill_value=0.0,
// seed=None, data_format=None): per image, with a probability drawn in factor's range (Keras's base factor
// rule), the corners (0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1) each moved to p + p f, the eight f
// drawn in [-scale / 2, scale / 2], and the image resampled through the perspective transform taking the
// corners to their new places (Keras's homography), points outside reading fill_value. The other images
// are left as they are, as are those of one row or column, whose corners define no transform (Keras's
// solve fails there).
class RandomPerspective final : public AffineAugmentation {
 public:
  explicit RandomPerspective(const Config &config)
      : RandomPerspective(ConfigReader(config, "RandomPerspective")) {}

 private:
  explicit RandomPerspective(ConfigReader &&r) : AffineAugmentation("RandomPerspective", r, false) {
    factor_ = read_unit_factor(r, "factor", 1.0, Lists::kOverlapUnit);
    scale_ = r.get_float("scale", 1.0);
    if (!(scale_ >= 0.0 && scale_ <= 1.0))
      fail(Code::kInvalidArgument, "RandomPerspective: scale must be a number in [0, 1]; got ", scale_);
    r.finish();
  }
  std::vector<float> transforms(const Tensor &x, int64_t h, int64_t w,
                                std::vector<uint8_t> &kept) const override {
    constexpr int64_t kDraws = 10;  // Keras's order: the probability, the threshold, the eight factors
    const std::vector<float> u = draws(x, kDraws);
    const auto fw = static_cast<float>(w - 1), fh = static_cast<float>(h - 1);
    const std::array<float, 8> corners = {0.0f, 0.0f, fw, 0.0f, 0.0f, fh, fw, fh};
    const std::array<double, 2> shift = {-0.5 * scale_, 0.5 * scale_};
    std::vector<float> t;
    for (size_t i = 0; i < u.size(); i += kDraws) {
      std::array<float, 8> moved = corners;
      for (size_t k = 0; k < 8; ++k) moved[k] = corners[k] + corners[k] * between(u[i + 2 + k], shift);
      const auto m = ops::homography(corners, moved);
      const bool applied = u[i + 1] < between(u[i], factor_) && m;
      kept.push_back(applied ? 0 : 1);
      const std::array<float, 8> identity = {1.0f, 0.0f, 0.0f, 0.0f, 1.0f, 0.0f, 0.0f, 0.0f};
      const std::array<float, 8> &row = applied ? *m : identity;
      t.insert(t.end(), row.begin(), row.end());
    }
    return t;
  }
  void add_config(Config &c) const override {
    c.set("factor", std::vector<double>{factor_[0], factor_[1]}).set("scale", scale_);
    AffineAugmentation::add_config(c);
  }
  std::array<double, 2> factor_{};
  double scale_ = 1.0;
};

// ------------------------------------------------------------------ the colour layers of Keras 3

// Keras's _transform_value_range: x mapped linearly from the range `from` to `to` (unchanged when they
// are the same), in x's dtype.
Tensor map_range(const Tensor &x, const std::array<double, 2> &from, const std::array<double, 2> &to) {
  if (from == to) return x;
  const auto s = [&](double v) { return ops::fill(Shape({}), v, x.dtype()); };
  const Tensor unit = ops::div(ops::sub(x, s(from[0])), ops::sub(s(from[1]), s(from[0])));
  return ops::add(ops::mul(unit, ops::sub(s(to[1]), s(to[0]))), s(to[0]));
}
constexpr std::array<double, 2> kByteRange = {0.0, 255.0};

// Keras's rgb_to_grayscale of channels-last images of 3 channels or 1 (the image itself).
Tensor grayscale(const Tensor &x) { return x.shape()[3] == 1 ? x : ops::rgb_to_grayscale(x); }

// images in value_range seen in [0, 1]: fn of them, mapped back (in float32 for bfloat16 images).
template <typename Fn>
Tensor in_unit_range(const Tensor &x, const std::array<double, 2> &value_range, Fn fn) {
  const Tensor f = x.dtype() == DType::kBFloat16 ? ops::cast(x, DType::kFloat32) : x;
  const Tensor y = map_range(fn(map_range(f, value_range, {0.0, 1.0})), {0.0, 1.0}, value_range);
  return ops::cast(y, x.dtype());
}

// The colour layers' common part: value_range, and in training each image's `draws` uniform numbers
// (a [N, draws] tensor) handed to adjust.
class ColorTransform : public ImageAugmentation {
 protected:
  ColorTransform(const char *class_name, ConfigReader &r, bool seeded = true)
      : ImageAugmentation(class_name, r, seeded) {}
  virtual Tensor adjust(const Tensor &x, const Tensor &draws) const = 0;
  virtual int64_t draws() const { return 1; }
  virtual bool always() const { return false; }  // active outside training too

  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &ctx) override {
    Tensor x = images_in(inputs);
    check_channels(x.shape()[3], inputs[0].description());
    // A layer that draws nothing (AutoContrast) takes no step of the random stream.
    if (ctx.training || always()) x = adjust(x, draws() > 0 ? per_image(x, draws()) : Tensor());
    return {images_out(x, inputs[0].rank())};
  }
  Tensor scalar(double v) const { return ops::fill(Shape({}), v, compute_dtype()); }
  // Column `index` of the draws mapped to [range[0], range[1]), [N, 1, 1, 1] in the compute dtype.
  Tensor drawn(const Tensor &draws, int64_t index, const std::array<double, 2> &range) const {
    return ops::add(ops::mul(column(draws, index), scalar(range[1] - range[0])), scalar(range[0]));
  }
  // Keras's per-image choice: true where the threshold draw (column `threshold`) is below a probability
  // drawn in `range` (column `probability`).
  Tensor chosen(const Tensor &draws, int64_t probability, int64_t threshold,
                const std::array<double, 2> &range) const {
    return ops::less(column(draws, threshold), drawn(draws, probability, range));
  }
  Tensor clip_to_range(const Tensor &x) const {
    return ops::clip_by_value(x, scalar(value_range_[0]), scalar(value_range_[1]));
  }
  void write_value_range(Config &c) const {
    c.set("value_range", std::vector<double>{value_range_[0], value_range_[1]});
  }
  static void write_factor(Config &c, const char *key, const std::array<double, 2> &f) {
    c.set(key, std::vector<double>{f[0], f[1]});
  }
  std::array<double, 2> value_range_ = kByteRange;
};

// The colour layers of one factor in [0, 1] (see read_unit_factor) and a value_range, written in that order.
class FactorColorTransform : public ColorTransform {
 protected:
  FactorColorTransform(const char *class_name, ConfigReader &r, std::optional<double> def,
                       Lists lists = Lists::kOverlapUnit)
      : ColorTransform(class_name, r) {
    factor_ = read_unit_factor(r, "factor", def, lists);
    value_range_ = read_sorted_value_range(r);
    r.finish();
  }
  void add_config(Config &c) const override {
    write_factor(c, "factor", factor_);
    write_value_range(c);
    ImageAugmentation::add_config(c);
  }
  std::array<double, 2> factor_{};
};

// keras.layers.Equalization(value_range=(0, 255), bins=256, data_format=None): in training, the histogram of
// each channel equalized over the whole batch, as Keras's code does (a single image: over the image). By
// Keras's arithmetic: values mapped to [0, 255] in float32; a value v in bin trunc(v (bins - 1) / 255),
// clipped to [0, bins - 1]; with more than one bin in use, the cumulative counts c give the table
// round((c - c_min) 255 / (c_last - c_min)) (c_min the first non-zero count, half to even, clipped to
// [0, 255]), read at trunc(clip(v / 255 (bins - 1))) and mapped back to value_range; with one bin or none,
// the values are kept. Under a bfloat16 compute dtype the images' steps round to bfloat16, as Keras's. A NaN
// is counted in no bin and stays NaN (Keras's gather fails there); infinities and huge values fall in the
// end bins (TF's float-to-int cast puts them in bin 0). Outside training integer images come back as they
// are, as Keras returns them.
class Equalization final : public ColorTransform {
 public:
  explicit Equalization(const Config &config) : Equalization(ConfigReader(config, "Equalization")) {}

 private:
  explicit Equalization(ConfigReader &&r) : ColorTransform("Equalization", r, false) {
    value_range_ = read_sorted_value_range(r);
    bins_ = r.get_int("bins", 256);
    constexpr int64_t kMaxBins = int64_t{1} << 24;  // float32 indices tell no more bins apart
    if (bins_ < 1 || bins_ > kMaxBins)
      fail(Code::kInvalidArgument, "Equalization: bins must be a whole number in [1, ", kMaxBins, "]; got ",
           bins_);
    r.finish();
  }
  int64_t draws() const override { return 0; }
  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &ctx) override {
    if (integers_kept(inputs, ctx)) return {inputs[0]};
    return ColorTransform::call_impl(inputs, ctx);
  }
  Tensor adjust(const Tensor &x, const Tensor &) const override {
    if (x.num_elements() == 0) return x;
    const bool wide = x.dtype() == DType::kFloat64;
    const Tensor in = wide ? x : ops::cast(x, DType::kFloat32);
    Tensor out = Tensor::empty(DType::kFloat64, x.shape());
    if (wide)
      equalize<double>(in.data<double>(), x.shape()[3], x.num_elements(), false, out.mutable_data<double>());
    else
      equalize<float>(in.data<float>(), x.shape()[3], x.num_elements(), x.dtype() == DType::kBFloat16,
                      out.mutable_data<double>());
    return ops::cast(out, x.dtype());
  }
  // Each of the `channels` interleaved channels of `size` values, equalized into out (float64, as Keras's
  // table); T is the images' compute type, and bf16 rounds each step of the images' arithmetic to
  // bfloat16, as Keras computes under a bfloat16 compute dtype (the histogram itself is float32's).
  template <typename T>
  void equalize(const T *x, int64_t channels, int64_t size, bool bf16, double *out) const {
    const auto q = [bf16](T v) {
      return bf16 ? static_cast<T>(static_cast<float>(bfloat16(static_cast<float>(v)))) : v;
    };
    const double lo = value_range_[0], hi = value_range_[1];
    const T in_scale = q(static_cast<T>(255.0 / (hi - lo))),
            in_offset = q(static_cast<T>(0.0 - lo * (255.0 / (hi - lo))));
    const double out_scale = (hi - lo) / 255.0;
    const auto last = static_cast<float>(bins_ - 1);
    const auto bin_of = [&](float v) {  // saturating; a NaN is left out by the callers
      return v >= last ? bins_ - 1 : v > 0.0f ? static_cast<int64_t>(v) : int64_t{0};
    };
    const T top = q(static_cast<T>(last));  // the table's last index as the images' type holds it
    std::vector<int64_t> hist(static_cast<size_t>(bins_)), cdf(static_cast<size_t>(bins_));
    for (int64_t c = 0; c < channels; ++c) {
      std::fill(hist.begin(), hist.end(), 0);
      for (int64_t i = c; i < size; i += channels) {
        const T v = q(q(x[i] * in_scale) + in_offset);
        if (!std::isnan(v)) ++hist[size_t(bin_of(static_cast<float>(v) * last / 255.0f))];
      }
      int64_t used = 0, total = 0, first = 0;
      for (size_t b = 0; b < hist.size(); ++b) {
        used += hist[b] != 0;
        total += hist[b];
        if (first == 0) first = total;
        cdf[b] = total;
      }
      const double denominator = total == first ? 1.0 : static_cast<double>(total - first);
      for (int64_t i = c; i < size; i += channels) {
        const T v = q(q(x[i] * in_scale) + in_offset);
        double e = static_cast<double>(v);
        if (used > 1 && !std::isnan(v)) {
          const T at = std::min(q(q(v / T(255)) * top), top);
          const int64_t b = bin_of(static_cast<float>(at));
          e = std::clamp(std::nearbyint(static_cast<double>((cdf[size_t(b)] - first) * 255) / denominator),
                         0.0, 255.0);
        }
        out[i] = e * out_scale + lo;
      }
    }
  }
  void add_config(Config &c) const override {
    c.set("bins", bins_);
    write_value_range(c);
    ImageAugmentation::add_config(c);
  }
  int64_t bins_ = 256;
};

// keras.layers.AutoContrast(value_range=(0, 255)): in training and inference, each channel of each
// image stretched linearly so that its minimum becomes value_range's low and its maximum the high
// (computed in [0, 255] as Keras: scale 255 / (max - min), clipped); a channel whose result is NaN
// (a constant channel, or one holding NaN) keeps its values.
class AutoContrast final : public ColorTransform {
 public:
  explicit AutoContrast(const Config &config) : AutoContrast(ConfigReader(config, "AutoContrast")) {}

 private:
  explicit AutoContrast(ConfigReader &&r) : ColorTransform("AutoContrast", r, false) {
    value_range_ = read_sorted_value_range(r);
    r.finish();
  }
  bool always() const override { return true; }
  int64_t draws() const override { return 0; }
  Tensor adjust(const Tensor &original, const Tensor &) const override {
    const Tensor x = map_range(original, value_range_, kByteRange);
    const Tensor low = ops::min(x, {1, 2}, true), high = ops::max(x, {1, 2}, true);
    const Tensor scale = ops::div(scalar(255.0), ops::sub(high, low));
    const Tensor offset = ops::mul(ops::neg(low), scale);
    const Tensor y =
        map_range(ops::clip_by_value(ops::add(ops::mul(x, scale), offset), scalar(0.0), scalar(255.0)),
                  kByteRange, value_range_);
    return ops::where(ops::not_equal(y, y), original, y);
  }
  void add_config(Config &c) const override {
    write_value_range(c);
    ImageAugmentation::add_config(c);
  }
};

// keras.layers.Solarization(addition_factor=0.0, threshold_factor=0.0, value_range=(0, 255),
// seed=None): in training each image, in [0, 255], gets an addition drawn in addition_factor * 255
// added (clipped to [0, 255]); values at or above a threshold drawn in threshold_factor * 255 become
// 255 - value. Factors: f is [0, f], or (lower, upper), in [0, 1]. Both bounds are scaled by 255, as
// Keras documents (its code leaves the lower one unscaled).
class Solarization final : public ColorTransform {
 public:
  explicit Solarization(const Config &config) : Solarization(ConfigReader(config, "Solarization")) {}

 private:
  explicit Solarization(ConfigReader &&r) : ColorTransform("Solarization", r) {
    addition_ = read_unit_factor(r, "addition_factor", 0.0, Lists::kEachInUnit);
    threshold_ = read_unit_factor(r, "threshold_factor", 0.0, Lists::kEachInUnit);
    value_range_ = read_sorted_value_range(r);
    r.finish();
  }
  int64_t draws() const override { return 2; }
  Tensor adjust(const Tensor &x, const Tensor &u) const override {
    const Tensor added = ops::add(map_range(x, value_range_, kByteRange),
                                  drawn(u, 0, {addition_[0] * 255.0, addition_[1] * 255.0}));
    const Tensor y = ops::clip_by_value(added, scalar(0.0), scalar(255.0));
    const Tensor threshold = drawn(u, 1, {threshold_[0] * 255.0, threshold_[1] * 255.0});
    return map_range(ops::where(ops::less(y, threshold), y, ops::sub(scalar(255.0), y)), kByteRange,
                     value_range_);
  }
  void add_config(Config &c) const override {
    write_value_range(c);
    write_factor(c, "addition_factor", addition_);
    write_factor(c, "threshold_factor", threshold_);
    ImageAugmentation::add_config(c);
  }
  std::array<double, 2> addition_{}, threshold_{};
};

// keras.layers.RandomInvert(factor=1.0, value_range=(0, 255), seed=None): in training each image is
// inverted (value_range's high - x) with a probability drawn in factor's [lower, upper] (f: [0, f]).
class RandomInvert final : public FactorColorTransform {
 public:
  explicit RandomInvert(const Config &config) : RandomInvert(ConfigReader(config, "RandomInvert")) {}

 private:
  explicit RandomInvert(ConfigReader &&r) : FactorColorTransform("RandomInvert", r, 1.0) {}
  int64_t draws() const override { return 2; }
  Tensor adjust(const Tensor &x, const Tensor &u) const override {
    const Tensor invert = chosen(u, 0, 1, factor_);
    return ops::where(invert, ops::sub(scalar(value_range_[1]), x), x);
  }
};

// keras.layers.RandomGrayscale(factor=0.5, data_format=None, seed=None): in training each image, with
// probability factor, becomes its grayscale (0.2989 r + 0.5870 g + 0.1140 b) in every channel. The
// images have 3 channels or 1.
class RandomGrayscale final : public ColorTransform {
 public:
  explicit RandomGrayscale(const Config &config) : RandomGrayscale(ConfigReader(config, "RandomGrayscale")) {}

 private:
  explicit RandomGrayscale(ConfigReader &&r) : ColorTransform("RandomGrayscale", r) {
    channels_ = Channels::kGrayOrRgb;
    factor_ = r.get_float("factor", 0.5);
    if (!(factor_ >= 0.0 && factor_ <= 1.0))
      fail(Code::kInvalidArgument, "RandomGrayscale: factor must be a number in [0, 1]; got ", factor_);
    r.finish();
  }
  Tensor adjust(const Tensor &x, const Tensor &u) const override {
    return ops::where(ops::less(column(u, 0), scalar(factor_)), ops::broadcast_to(grayscale(x), x.shape()),
                      x);
  }
  void add_config(Config &c) const override {
    c.set("factor", factor_);
    ImageAugmentation::add_config(c);
  }
  double factor_ = 0.5;
};

// keras.layers.RandomPosterization(factor, value_range=(0, 255), data_format=None, seed=None): in
// training each image, in [0, 255] and truncated to whole numbers (NaN as 0), keeps only its top b bits
// per value. factor is a whole number of bits in [1, 8] (f: [1, f]) or two (lower, upper); b is lower
// when they are equal, else drawn among lower .. upper - 1 as Keras's randint draws it.
class RandomPosterization final : public ColorTransform {
 public:
  explicit RandomPosterization(const Config &config)
      : RandomPosterization(ConfigReader(config, "RandomPosterization")) {}

 private:
  explicit RandomPosterization(ConfigReader &&r) : ColorTransform("RandomPosterization", r) {
    if (!r.has("factor"))
      fail(Code::kInvalidArgument, "RandomPosterization: config key 'factor' is required");
    const std::vector<double> v = r.config().get_float_list("factor");
    const bool listed = r.config().json().at("factor").is_array();
    const auto bits = [](double b) { return b >= 1.0 && b <= 8.0 && b == std::floor(b); };
    if (v.size() == 1 && !listed && bits(v[0])) bits_ = {1, static_cast<int64_t>(v[0])};
    if (v.size() == 2 && bits(v[0]) && bits(v[1]))
      bits_ = {static_cast<int64_t>(std::min(v[0], v[1])), static_cast<int64_t>(std::max(v[0], v[1]))};
    if (bits_[0] == 0)
      fail(Code::kInvalidArgument,
           "RandomPosterization: factor must be a whole number of bits in [1, 8] or two (lower, upper); got ",
           r.config().json().at("factor").dump());
    value_range_ = read_sorted_value_range(r);
    r.finish();
  }
  Tensor adjust(const Tensor &x, const Tensor &u) const override {
    const Tensor f = map_range(ops::cast(x, DType::kFloat32), value_range_, kByteRange);
    const Tensor whole =
        ops::floor(ops::clip_by_value(ops::where(ops::not_equal(f, f), ops::zeros_like(f), f), 0.0f, 255.0f));
    // b drawn, then step = 2^(8 - b) per image.
    const Tensor b =
        bits_[0] == bits_[1]
            ? ops::fill(Shape({u.shape()[0], 1, 1, 1}), static_cast<double>(bits_[0]), DType::kFloat32)
            : ops::add(
                  ops::floor(ops::mul(ops::cast(column(u, 0), DType::kFloat32),
                                      ops::fill(Shape({}), double(bits_[1] - bits_[0]), DType::kFloat32))),
                  ops::fill(Shape({}), double(bits_[0]), DType::kFloat32));
    const Tensor step = ops::pow(ops::fill(Shape({}), 2.0, DType::kFloat32),
                                 ops::sub(ops::fill(Shape({}), 8.0, DType::kFloat32), b));
    const Tensor kept = ops::mul(ops::floor(ops::div(whole, step)), step);
    return ops::cast(map_range(kept, kByteRange, value_range_), compute_dtype());
  }
  void add_config(Config &c) const override {
    c.set("factor", std::vector<int64_t>{bits_[0], bits_[1]});
    write_value_range(c);
    ImageAugmentation::add_config(c);
  }
  std::array<int64_t, 2> bits_{};
};

// keras.layers.RandomColorDegeneration(factor, value_range=(0, 255), data_format=None, seed=None): in
// training each image moves towards its grayscale by f drawn in factor's [lower, upper]: x + f * (gray - x),
// clipped to value_range. A number f in [0, 1] is [0, f], as Keras documents; two numbers may be in [-1, 1]
// (a negative f moves away from gray), as Keras's code reads them and writes its configs.
class RandomColorDegeneration final : public FactorColorTransform {
 public:
  explicit RandomColorDegeneration(const Config &config)
      : RandomColorDegeneration(ConfigReader(config, "RandomColorDegeneration")) {}

 private:
  explicit RandomColorDegeneration(ConfigReader &&r)
      : FactorColorTransform("RandomColorDegeneration", r, std::nullopt, Lists::kOverlapSigned) {
    channels_ = Channels::kGrayOrRgb;
  }
  Tensor adjust(const Tensor &x, const Tensor &u) const override {
    return clip_to_range(ops::add(x, ops::mul(drawn(u, 0, factor_), ops::sub(grayscale(x), x))));
  }
};

// Channels-last images [N, H, W, C] filtered per channel by the kh x kw filter (row-major) with TF's
// "same" zero padding, as a depthwise convolution, in any float dtype: the sum of the padded image's
// shifted windows times their weights.
Tensor filter_same(const Tensor &x, const std::vector<double> &filter, int64_t kh, int64_t kw) {
  const Shape &d = x.shape();
  const int64_t top = (kh - 1) / 2, left = (kw - 1) / 2;
  const Tensor padded = ops::pad(x, {0, 0, top, kh - 1 - top, left, kw - 1 - left, 0, 0});
  Tensor sum;
  for (int64_t i = 0; i < kh; ++i)
    for (int64_t j = 0; j < kw; ++j) {
      const Tensor w = ops::mul(ops::slice(padded, {0, i, j, 0}, {d[0], d[1], d[2], d[3]}),
                                ops::fill(Shape({}), filter[size_t(i * kw + j)], x.dtype()));
      sum = sum.defined() ? ops::add(sum, w) : w;
    }
  return sum;
}

// keras.layers.RandomSharpness(factor, value_range=(0, 255), data_format=None, seed=None): in training
// each image is x + (1 - 2 f) * (smoothed - x), f drawn in factor's [lower, upper] (f: [0, f], in
// [0, 1]), smoothed the 3x3 filter [[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13 per channel with zero
// padding ("same"); clipped to value_range. f = 0.5 keeps the image; above sharpens, below blurs.
class RandomSharpness final : public FactorColorTransform {
 public:
  explicit RandomSharpness(const Config &config) : RandomSharpness(ConfigReader(config, "RandomSharpness")) {}

 private:
  explicit RandomSharpness(ConfigReader &&r) : FactorColorTransform("RandomSharpness", r, std::nullopt) {}
  Tensor adjust(const Tensor &x, const Tensor &u) const override {
    const double a = 1.0 / 13.0, b = 5.0 / 13.0;
    const Tensor smoothed = filter_same(x, {a, a, a, a, b, a, a, a, a}, 3, 3);
    const Tensor s = ops::mul(drawn(u, 0, factor_), scalar(2.0));
    return clip_to_range(ops::add(x, ops::mul(ops::sub(scalar(1.0), s), ops::sub(smoothed, x))));
  }
};

// Images in [0, 1] through HSV, channel c (0: hue, 1: saturation) replaced by fn of it.
template <typename Fn>
Tensor through_hsv(const Tensor &x, int64_t c, Fn fn) {
  std::vector<Tensor> hsv = ops::split(ops::rgb_to_hsv(x), {}, 3, 3);
  hsv[size_t(c)] = fn(hsv[size_t(c)]);
  return ops::hsv_to_rgb(ops::concat(hsv, 3));
}

// Keras's RandomSaturation of images in value_range by a draw f ([N, 1, 1, 1]): the saturation scaled by
// f / (1 - f + epsilon) (computed in float32, as Keras draws it) and clipped to [0, 1], so 0.5 keeps it, 0
// makes gray and 1 saturates fully.
Tensor saturate(const Tensor &x, const Tensor &f_draw, const std::array<double, 2> &value_range) {
  const Tensor f = ops::cast(f_draw, DType::kFloat32);
  const Tensor one = ops::fill(Shape({}), 1.0, DType::kFloat32);
  const Tensor k = ops::div(f, ops::add(ops::sub(one, f), ops::fill(Shape({}), 1e-7, DType::kFloat32)));
  return in_unit_range(x, value_range, [&](const Tensor &y) {
    return through_hsv(y, 1, [&](const Tensor &s) {
      return ops::clip_by_value(ops::mul(s, ops::cast(k, y.dtype())), ops::zeros_like(s), ops::ones_like(s));
    });
  });
}

// Keras's RandomHue of images in value_range by draws ([N, 1, 1, 1]): the hue shifted by f * 0.5, negated
// when the sign draw is above 0.5, wrapped once into [0, 1]; the result clipped to [0, 1].
Tensor turn_hue(const Tensor &x, const Tensor &sign_draw, const Tensor &f_draw,
                const std::array<double, 2> &value_range) {
  const Tensor f = ops::cast(f_draw, DType::kFloat32), half = ops::fill(Shape({}), 0.5, DType::kFloat32);
  const Tensor shift =
      ops::mul(ops::where(ops::greater(ops::cast(sign_draw, DType::kFloat32), half), ops::neg(f), f), half);
  return in_unit_range(x, value_range, [&](const Tensor &y) {
    const Tensor zero = ops::fill(Shape({}), 0.0, y.dtype()), one = ops::fill(Shape({}), 1.0, y.dtype());
    const Tensor rgb = through_hsv(y, 0, [&](const Tensor &hue) {
      const Tensor h = ops::add(hue, ops::cast(shift, y.dtype()));
      const Tensor below = ops::where(ops::greater(h, one), ops::sub(h, one), h);
      return ops::where(ops::less(below, zero), ops::add(below, one), below);
    });
    return ops::clip_by_value(rgb, zero, one);
  });
}

// keras.layers.RandomSaturation(factor, value_range=(0, 255), data_format=None, seed=None): in training
// each image, seen in [0, 1], has its saturation scaled by f / (1 - f + 1e-7), f drawn in factor's
// [lower, upper] (a number f in [0, 1] is [0, f]; two numbers within [-1, 1], as Keras writes them): 0.5
// keeps the image, 0 makes it gray, 1 saturates it fully. The saturation is clipped to [0, 1] (Keras clips
// it to value_range, which is the same for images in [0, 1]). The images have 3 channels.
class RandomSaturation final : public FactorColorTransform {
 public:
  explicit RandomSaturation(const Config &config)
      : RandomSaturation(ConfigReader(config, "RandomSaturation")) {}

 private:
  explicit RandomSaturation(ConfigReader &&r)
      : FactorColorTransform("RandomSaturation", r, std::nullopt, Lists::kOverlapSigned) {
    channels_ = Channels::kRgb;
  }
  Tensor adjust(const Tensor &x, const Tensor &u) const override {
    return saturate(x, drawn(u, 0, factor_), value_range_);
  }
};

// keras.layers.RandomHue(factor, value_range=(0, 255), data_format=None, seed=None): in training each
// image, seen in [0, 1], has its hue moved by f * 0.5 (f drawn in factor's [lower, upper], a number f in
// [0, 1] being [0, f]), in either direction with probability 1/2, wrapped into [0, 1]; the result is clipped
// to value_range. The images have 3 channels.
class RandomHue final : public FactorColorTransform {
 public:
  explicit RandomHue(const Config &config) : RandomHue(ConfigReader(config, "RandomHue")) {}

 private:
  explicit RandomHue(ConfigReader &&r) : FactorColorTransform("RandomHue", r, std::nullopt) {
    channels_ = Channels::kRgb;
  }
  int64_t draws() const override { return 2; }
  Tensor adjust(const Tensor &x, const Tensor &u) const override {
    return turn_hue(x, column(u, 0), drawn(u, 1, factor_), value_range_);
  }
};

// keras.layers.RandomColorJitter(value_range=(0, 255), brightness_factor=None, contrast_factor=None,
// saturation_factor=None, hue_factor=None, seed=None, data_format=None): in training, in this order,
// RandomBrightness, RandomContrast, RandomSaturation and RandomHue with the factors given (each as that
// layer reads it; None: that step is skipped), each image drawing its own values for every step.
class RandomColorJitter final : public ColorTransform {
 public:
  explicit RandomColorJitter(const Config &config)
      : RandomColorJitter(ConfigReader(config, "RandomColorJitter")) {}

 private:
  explicit RandomColorJitter(ConfigReader &&r) : ColorTransform("RandomColorJitter", r) {
    value_range_ = read_sorted_value_range(r);
    const auto given = [&](const char *key) { return r.has(key) && !r.config().is_null(key); };
    if (given("brightness_factor")) brightness_ = read_signed_factor(r, "brightness_factor");
    if (given("contrast_factor")) contrast_ = read_contrast_factor(r, "contrast_factor");
    if (given("saturation_factor"))
      saturation_ = read_unit_factor(r, "saturation_factor", std::nullopt, Lists::kOverlapSigned);
    if (given("hue_factor")) hue_ = read_unit_factor(r, "hue_factor", std::nullopt, Lists::kOverlapUnit);
    if (saturation_ || hue_) channels_ = Channels::kRgb;
    r.finish();
  }
  int64_t draws() const override { return 5; }
  Tensor adjust(const Tensor &images, const Tensor &u) const override {
    Tensor x = images;
    const double span = value_range_[1] - value_range_[0];
    if (brightness_)
      x = clip_to_range(ops::add(x, drawn(u, 0, {(*brightness_)[0] * span, (*brightness_)[1] * span})));
    if (contrast_)
      x = clip_to_range(scale_contrast(x, drawn(u, 1, {1.0 - (*contrast_)[0], 1.0 + (*contrast_)[1]})));
    if (saturation_) x = saturate(x, drawn(u, 2, *saturation_), value_range_);
    if (hue_) x = turn_hue(x, column(u, 3), drawn(u, 4, *hue_), value_range_);
    return x;
  }
  void add_config(Config &c) const override {
    write_value_range(c);
    for (const auto &[key, f] :
         {std::pair{"brightness_factor", &brightness_}, std::pair{"contrast_factor", &contrast_},
          std::pair{"saturation_factor", &saturation_}, std::pair{"hue_factor", &hue_}}) {
      if (*f)
        write_factor(c, key, **f);
      else
        c.set_null(key);
    }
    ImageAugmentation::add_config(c);
  }
  std::optional<std::array<double, 2>> brightness_, contrast_, saturation_, hue_;
};

// keras.layers.RandomErasing(factor=1.0, scale=(0.02, 0.33), fill_value=None, value_range=(0, 255),
// seed=None): in training each image, with a probability drawn in factor's range (f: [0, f]), has a box
// replaced: its width sqrt(s) W and height sqrt(s') H for s, s' drawn in scale's range, at a random place
// (pixels x0 <= x < x0 + width, likewise y); filled with normal noise times value_range's high (fill_value
// None), or fill_value (a number, or one per channel of 3), clipped to value_range.
class RandomErasing final : public ColorTransform {
 public:
  explicit RandomErasing(const Config &config) : RandomErasing(ConfigReader(config, "RandomErasing")) {}

 private:
  explicit RandomErasing(ConfigReader &&r) : ColorTransform("RandomErasing", r) {
    factor_ = read_unit_factor(r, "factor", 1.0, Lists::kOverlapUnit);
    scale_ = r.has("scale") ? read_unit_factor(r, "scale", std::nullopt, Lists::kOverlapUnit)
                            : std::array<double, 2>{0.02, 0.33};
    if (r.has("fill_value") && !r.config().is_null("fill_value")) {
      fill_ = r.config().get_float_list("fill_value");
      const bool listed = r.config().json().at("fill_value").is_array();
      if ((listed && fill_->size() != 3) || (!listed && fill_->size() != 1))
        fail(Code::kInvalidArgument,
             "RandomErasing: fill_value must be null, a number or three numbers (one per "
             "channel); got ",
             r.config().json().at("fill_value").dump());
      listed_fill_ = listed;
    }
    value_range_ = read_sorted_value_range(r);
    r.finish();
  }
  int64_t draws() const override { return 6; }
  Tensor adjust(const Tensor &x, const Tensor &u) const override {
    const Shape &d = x.shape();
    const DType dt = compute_dtype();
    // The box along one axis of n pixels: start and end from the size draw and the place draw.
    const auto box = [&](int64_t size_col, int64_t place_col, int64_t n,
                         const std::vector<int64_t> &grid_shape) {
      // In float32 for bfloat16 layers (the pixel grid has no bfloat16 range).
      const DType bt = dt == DType::kBFloat16 ? DType::kFloat32 : dt;
      const auto k = [&](double v) { return ops::fill(Shape({}), v, bt); };
      const Tensor length = ops::mul(ops::sqrt(ops::cast(drawn(u, size_col, scale_), bt)), k(double(n)));
      const Tensor start = ops::mul(ops::cast(column(u, place_col), bt), ops::sub(k(double(n)), length));
      const Tensor grid = ops::reshape(ops::range(0, double(n), 1, bt), grid_shape);
      return ops::logical_and(ops::greater_equal(grid, start), ops::less(grid, ops::add(start, length)));
    };
    const Tensor inside =
        ops::logical_and(box(0, 2, d[2], {1, 1, d[2], 1}), box(1, 3, d[1], {1, d[1], 1, 1}));
    const Tensor erase = ops::logical_and(inside, chosen(u, 4, 5, factor_));
    Tensor fill;
    if (!fill_) {
      fill = ops::mul(ops::cast(ops::random_normal(d, 0.0f, 1.0f, seed_), dt), scalar(value_range_[1]));
    } else if (listed_fill_) {
      if (d[3] != 3)
        bad_input("fill_value has one value per channel of 3; the images have ", d[3], " channels");
      const std::vector<float> v(fill_->begin(), fill_->end());
      fill = ops::cast(
          Tensor::from_data(DType::kFloat32, Shape({1, 1, 1, 3}), v.data(), v.size() * sizeof(float)), dt);
    } else {
      fill = scalar((*fill_)[0]);
    }
    return ops::where(erase, clip_to_range(fill), x);
  }
  void add_config(Config &c) const override {
    write_factor(c, "factor", factor_);
    write_factor(c, "scale", scale_);
    if (!fill_)
      c.set_null("fill_value");
    else if (listed_fill_)
      c.set("fill_value", *fill_);
    else
      c.set("fill_value", (*fill_)[0]);
    write_value_range(c);
    ImageAugmentation::add_config(c);
  }
  std::array<double, 2> factor_{}, scale_{};
  std::optional<std::vector<double>> fill_;
  bool listed_fill_ = false;
};

// keras.layers.RandomGaussianBlur(factor=1.0, kernel_size=3, sigma=1.0, value_range=(0, 255),
// data_format=None, seed=None): in training each image is blurred with a probability drawn in factor's
// range (f: [0, f]) by a Gaussian filter of kernel_size (odd: k, or (a, b)) with "same" zero padding, its
// two sigmas drawn once per call in sigma's range (f in [0, 1]: [0, f]) plus 1e-6; then every image is
// clipped to value_range. The filter is Keras's: the outer product of the normalized 1-D Gaussians
// (b, sigma_y) and (a, sigma_x), laid out as a x b.
class RandomGaussianBlur final : public ColorTransform {
 public:
  explicit RandomGaussianBlur(const Config &config)
      : RandomGaussianBlur(ConfigReader(config, "RandomGaussianBlur")) {}

 private:
  explicit RandomGaussianBlur(ConfigReader &&r) : ColorTransform("RandomGaussianBlur", r) {
    factor_ = read_unit_factor(r, "factor", 1.0, Lists::kOverlapUnit);
    const std::vector<int64_t> k = tuple_of(r, "kernel_size", r.get_int_list("kernel_size", {3}), 2, 1);
    if (k[0] % 2 == 0 || k[1] % 2 == 0 || k[0] > 1023 || k[1] > 1023)
      fail(Code::kInvalidArgument, "RandomGaussianBlur: kernel_size must be odd (and at most 1023); got ",
           tuple_string(k));
    kernel_ = {k[0], k[1]};
    sigma_ = read_unit_factor(r, "sigma", 1.0, Lists::kOverlapUnit);
    value_range_ = read_sorted_value_range(r);
    r.finish();
  }
  int64_t draws() const override { return 2; }
  // Keras's normalized 1-D Gaussian of `size` taps, in F (the compute dtype's precision).
  template <typename F>
  static std::vector<F> gaussian(int64_t size, F sigma) {
    std::vector<F> g;
    F sum = 0;
    for (int64_t i = 0; i < size; ++i) {
      const F x = (static_cast<F>(i) - static_cast<F>(size - 1) / 2) / sigma;
      g.push_back(std::exp(F(-0.5) * (x * x)));
      sum += g.back();
    }
    for (F &v : g) v /= sum;
    return g;
  }
  // Keras's filter: outer(gy, gx) row-major, read as kernel_[0] x kernel_[1].
  template <typename F>
  std::vector<double> filter(F sigma_x, F sigma_y) const {
    const std::vector<F> gx = gaussian(kernel_[0], sigma_x), gy = gaussian(kernel_[1], sigma_y);
    std::vector<double> f;
    for (F a : gy)
      for (F b : gx) f.push_back(double(a * b));
    return f;
  }
  Tensor adjust(const Tensor &x, const Tensor &u) const override {
    Tensor y = x;
    if (x.num_elements() > 0) {
      const Tensor s = ops::random_uniform(Shape({2}), 0.0f, 1.0f, seed_);
      const auto sigma = [&](int64_t i) {  // drawn in float32 (Keras draws in the compute dtype)
        const auto lo = static_cast<float>(sigma_[0]), hi = static_cast<float>(sigma_[1]);
        return s.data<float>()[i] * (hi - lo) + lo + 1e-6f;
      };
      const std::vector<double> f = compute_dtype() == DType::kFloat64 ? filter<double>(sigma(0), sigma(1))
                                                                       : filter<float>(sigma(0), sigma(1));
      // float64 sums the shifted windows (no float64 convolution kernel); the others convolve.
      Tensor blurred;
      if (compute_dtype() == DType::kFloat64) {
        blurred = filter_same(x, f, kernel_[0], kernel_[1]);
      } else {
        std::vector<float> k;
        for (double v : f) k.insert(k.end(), static_cast<size_t>(x.shape()[3]), static_cast<float>(v));
        const Tensor kernel =
            Tensor::from_data(DType::kFloat32, Shape({kernel_[0], kernel_[1], x.shape()[3], 1}), k.data(),
                              k.size() * sizeof(float));
        blurred = ops::depthwise_conv2d(x, ops::cast(kernel, x.dtype()), {1, 1}, {1, 1}, ops::Padding::kSame);
      }
      y = ops::where(chosen(u, 0, 1, factor_), blurred, x);
    }
    return clip_to_range(y);
  }
  void add_config(Config &c) const override {
    write_factor(c, "factor", factor_);
    c.set("kernel_size", std::vector<int64_t>{kernel_[0], kernel_[1]});
    write_factor(c, "sigma", sigma_);
    write_value_range(c);
    ImageAugmentation::add_config(c);
  }
  std::array<double, 2> factor_{}, sigma_{};
  std::array<int64_t, 2> kernel_{3, 3};
};

// ------------------------------------------------------------------ MixUp, CutMix

// Keras's layers that mix each image with another of the batch (a random permutation): images, or images
// and their labels ([N, ...] floats, mixed by each image's weight: w labels + (1 - w) labels[perm]).
// A single image (rank 3) has no other to mix with and comes back as it is.
class ImageMix : public ImageAugmentation {
 protected:
  using ImageAugmentation::ImageAugmentation;
  struct Mixed {
    Tensor images;   // [N, H, W, C]
    Tensor weights;  // [N] float32, the share of each image's own labels
    Tensor perm;     // [N] int64
  };
  virtual Mixed mix(const Tensor &x) const = 0;
  virtual bool casts_outside_training() const { return true; }  // MixUp's Keras code does not

  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &ctx) override {
    if (inputs.size() != 1 && inputs.size() != 2)
      bad_input("got ", inputs.size(), " inputs; expected the images, or the images and their labels");
    if (!casts_outside_training() && integers_kept(inputs, ctx)) return inputs;
    Tensor x = images_in({inputs[0]});
    std::optional<Tensor> labels;
    if (inputs.size() == 2) labels = inputs[1];
    if (ctx.training && inputs[0].rank() == 4 && x.shape()[0] > 0) {
      if (labels) labels = checked_labels(*labels, x.shape()[0]);
      Mixed m = mix(x);
      x = m.images;
      if (labels) {
        std::vector<int64_t> column(size_t(labels->rank()), 1);
        column[0] = x.shape()[0];
        const Tensor w = ops::cast(ops::reshape(m.weights, column), labels->dtype());
        const Tensor one = ops::fill(Shape({}), 1.0, labels->dtype());
        labels = ops::add(ops::mul(w, *labels), ops::mul(ops::sub(one, w), ops::gather(*labels, m.perm, 0)));
      }
    }
    std::vector<Tensor> out = {images_out(x, inputs[0].rank())};
    if (labels) out.push_back(*labels);
    return out;
  }
  // The labels mixed in training: floats with the images' batch of n first (outside it they pass as given).
  Tensor checked_labels(const Tensor &labels, int64_t n) const {
    if (!is_floating(labels.dtype()) || labels.rank() < 1 || labels.shape()[0] != n)
      bad_input("the labels ", labels.description(),
                " must be floats (one-hot or soft) with the images' batch of ", n, " first");
    return labels;
  }
  std::vector<PartialShape> compute_output_shape(const std::vector<PartialShape> &shapes) override {
    if (shapes.size() != 1 && shapes.size() != 2)
      bad_input("got ", shapes.size(), " inputs; expected the images, or the images and their labels");
    std::vector<PartialShape> out = ImageAugmentation::compute_output_shape({shapes[0]});
    if (shapes.size() == 2) out.push_back(shapes[1]);
    return out;
  }
  // The images of a permutation of the batch, and the permutation.
  static std::pair<Tensor, Tensor> partners(const Tensor &x, int64_t seed) {
    const Tensor perm = ops::random_permutation(x.shape()[0], seed);
    return {ops::gather(x, perm, 0), perm};
  }
};

// keras.layers.MixUp(alpha=0.2, data_format=None, seed=None): in training each image becomes
// w x + (1 - w) x[perm], w drawn from Beta(alpha, alpha) per image, perm a random permutation of the batch;
// labels given beside the images are mixed alike.
class MixUp final : public ImageMix {
 public:
  explicit MixUp(const Config &config) : MixUp(ConfigReader(config, "MixUp")) {}

 private:
  explicit MixUp(ConfigReader &&r) : ImageMix("MixUp", r) {
    alpha_ = r.get_float("alpha", 0.2);
    if (!(alpha_ > 0.0) || !std::isfinite(alpha_))
      fail(Code::kInvalidArgument, "MixUp: alpha must be a positive number; got ", alpha_);
    r.finish();
  }
  Mixed mix(const Tensor &x) const override {
    const auto [other, perm] = partners(x, seed_);
    const int64_t n = x.shape()[0];
    const Tensor w = ops::random_beta(Shape({n}), alpha_, alpha_, seed_);
    const Tensor wc = ops::cast(ops::reshape(w, {n, 1, 1, 1}), x.dtype());
    const Tensor one = ops::fill(Shape({}), 1.0, x.dtype());
    return {ops::add(ops::mul(wc, x), ops::mul(ops::sub(one, wc), other)), w, perm};
  }
  bool casts_outside_training() const override { return false; }
  void add_config(Config &c) const override {
    c.set("alpha", alpha_);
    ImageAugmentation::add_config(c);
  }
  double alpha_ = 0.2;
};

// keras.layers.CutMix(factor=1.0, seed=None, data_format=None): in training, with alpha drawn once in
// factor's range (Keras's base rule) plus 1e-6 and w from Beta(alpha, alpha) per image, a box of
// sqrt(1 - w) of each side at a random place of each image is replaced by the same box of another image
// of the batch (a random permutation); labels given beside the images are mixed by the box's share,
// w' = 1 - box area / image area. Computed in float32 as Keras.
class CutMix final : public ImageMix {
 public:
  explicit CutMix(const Config &config) : CutMix(ConfigReader(config, "CutMix")) {}

 private:
  explicit CutMix(ConfigReader &&r) : ImageMix("CutMix", r) {
    factor_ = read_unit_factor(r, "factor", 1.0, Lists::kOverlapUnit);
    r.finish();
  }
  Mixed mix(const Tensor &x) const override {
    const int64_t n = x.shape()[0], h = x.shape()[1], w = x.shape()[2];
    const std::vector<float> u = host_floats(ops::random_uniform(Shape({1 + 2 * n}), 0, 1, seed_));
    // Keras's base rule lets a factor's lower bound be negative; alpha below 0 (a NaN draw in Keras) is 0.
    const float alpha =
        std::max(0.0f, static_cast<float>(factor_[0] + u[0] * (factor_[1] - factor_[0]))) + 1e-6f;
    const std::vector<float> beta = host_floats(ops::random_beta(Shape({n}), alpha, alpha, seed_));
    const auto [other, perm] = partners(x, seed_);
    std::vector<uint8_t> mask(static_cast<size_t>(n * h * w));
    std::vector<float> weights(static_cast<size_t>(n));
    const auto fw = static_cast<float>(w), fh = static_cast<float>(h);
    for (int64_t i = 0; i < n; ++i) {
      const float ratio = std::sqrt(1.0f - beta[size_t(i)]);
      const float cw = ratio * fw, ch = ratio * fh;
      const float x0 = u[size_t(1 + i)] * (fw - cw), x1 = x0 + cw;
      const float y0 = u[size_t(1 + n + i)] * (fh - ch), y1 = y0 + ch;
      weights[size_t(i)] = 1.0f - (x1 - x0) * (y1 - y0) / static_cast<float>(w * h);
      for (int64_t yy = 0; yy < h; ++yy)
        for (int64_t xx = 0; xx < w; ++xx) {
          const auto gx = static_cast<float>(xx), gy = static_cast<float>(yy);
          mask[size_t((i * h + yy) * w + xx)] = gx >= x0 && gx < x1 && gy >= y0 && gy < y1;
        }
    }
    const Tensor m = Tensor::from_data(DType::kBool, Shape({n, h, w, 1}), mask.data(), mask.size());
    return {ops::where(m, other, x),
            Tensor::from_data(DType::kFloat32, Shape({n}), weights.data(), weights.size() * sizeof(float)),
            perm};
  }
  void add_config(Config &c) const override {
    c.set("factor", std::vector<double>{factor_[0], factor_[1]});
    ImageAugmentation::add_config(c);
  }
  std::array<double, 2> factor_{};
};

// ------------------------------------------------------------------ RandAugment

// keras.layers.RandAugment(value_range=(0, 255), num_ops=2, factor=0.5, interpolation="bilinear", seed=None,
// data_format=None): in training, num_ops times, one of Keras's eleven layers, drawn for the whole batch, is
// applied to it: RandomShear (x_factor and y_factor = factor), RandomTranslation (both factors = factor),
// RandomRotation, RandomBrightness, RandomColorDegeneration, RandomContrast, RandomSharpness (each factor =
// factor), RandomPosterization (max(1, trunc(8 upper)) bits), Solarization (both factors = factor),
// AutoContrast and Equalization, each with value_range, the geometric ones with interpolation, all with
// seed. factor follows Keras's base rule (f: [0, f]). A layer drawn twice in one call draws its values
// again (Keras applies the same values twice).
class RandAugment final : public ImageAugmentation {
 public:
  explicit RandAugment(const Config &config) : RandAugment(ConfigReader(config, "RandAugment")) {}

 private:
  explicit RandAugment(ConfigReader &&r) : ImageAugmentation("RandAugment", r) {
    value_range_ = read_sorted_value_range(r);
    num_ops_ = r.get_int("num_ops", 2);
    if (num_ops_ < 0) fail(Code::kInvalidArgument, "RandAugment: num_ops must be >= 0; got ", num_ops_);
    factor_ = read_unit_factor(r, "factor", 0.5, Lists::kOverlapUnit);
    interpolation_ = r.get_string("interpolation", "bilinear");
    if (interpolation_ != "bilinear" && interpolation_ != "nearest")
      fail(Code::kInvalidArgument, "RandAugment: interpolation '", interpolation_,
           "' is not one of 'bilinear', 'nearest'");
    r.finish();
    // RandomColorDegeneration takes 3 channels or 1; Keras computes every layer's transform in each call,
    // so other images fail in every call, not only when it is drawn.
    channels_ = Channels::kGrayOrRgb;
    const std::vector<double> factor = {factor_[0], factor_[1]},
                              value_range = {value_range_[0], value_range_[1]};
    const auto add = [&](const char *cls, Config c, bool geometric) {
      if (geometric)
        c.set("interpolation", interpolation_);
      else
        c.set("value_range", value_range);
      if (std::string(cls) != "AutoContrast" && std::string(cls) != "Equalization") write_seed(c, seed_);
      c.set("dtype", dtype_policy().name).set("data_format", "channels_last");
      ops_.push_back(create_layer(cls, c));
    };
    add("RandomShear", Config().set("x_factor", factor).set("y_factor", factor), true);
    add("RandomTranslation", Config().set("height_factor", factor).set("width_factor", factor), true);
    add("RandomRotation", Config().set("factor", factor), true);
    add("RandomBrightness", Config().set("factor", factor), false);
    add("RandomColorDegeneration", Config().set("factor", factor), false);
    add("RandomContrast", Config().set("factor", factor), false);
    add("RandomSharpness", Config().set("factor", factor), false);
    add("RandomPosterization",
        Config().set("factor", std::max<int64_t>(1, static_cast<int64_t>(8.0 * factor_[1]))), false);
    add("Solarization", Config().set("addition_factor", factor).set("threshold_factor", factor), false);
    add("AutoContrast", Config(), false);
    add("Equalization", Config(), false);
  }
  std::vector<Tensor> call_impl(const std::vector<Tensor> &inputs, const CallContext &ctx) override {
    Tensor x = images_in(inputs);
    check_channels(x.shape()[3], inputs[0].description());
    if (ctx.training && x.num_elements() > 0 && num_ops_ > 0) {
      const Tensor u = ops::random_uniform(Shape({num_ops_}), 0.0f, 1.0f, seed_);
      const auto n = static_cast<int64_t>(ops_.size());
      for (int64_t i = 0; i < num_ops_; ++i) {
        const int64_t chosen =
            std::min(n - 1, static_cast<int64_t>(u.data<float>()[i] * static_cast<float>(n)));
        x = (*ops_[size_t(chosen)])({x}, ctx)[0];
      }
    }
    return {images_out(x, inputs[0].rank())};
  }
  void add_config(Config &c) const override {
    c.set("value_range", std::vector<double>{value_range_[0], value_range_[1]}).set("num_ops", num_ops_);
    c.set("factor", std::vector<double>{factor_[0], factor_[1]}).set("interpolation", interpolation_);
    ImageAugmentation::add_config(c);
  }
  std::array<double, 2> value_range_ = kByteRange, factor_{};
  int64_t num_ops_ = 2;
  std::string interpolation_;
  std::vector<LayerPtr> ops_;  // Keras's _AUGMENT_LAYERS, in its order
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
  register_class<RandomShear>("RandomShear");
  register_class<RandomPerspective>("RandomPerspective");
  register_class<Equalization>("Equalization");
  register_class<RandAugment>("RandAugment");
  register_class<MixUp>("MixUp");
  register_class<CutMix>("CutMix");
  register_class<AutoContrast>("AutoContrast");
  register_class<Solarization>("Solarization");
  register_class<RandomInvert>("RandomInvert");
  register_class<RandomGrayscale>("RandomGrayscale");
  register_class<RandomPosterization>("RandomPosterization");
  register_class<RandomColorDegeneration>("RandomColorDegeneration");
  register_class<RandomSharpness>("RandomSharpness");
  register_class<RandomSaturation>("RandomSaturation");
  register_class<RandomHue>("RandomHue");
  register_class<RandomColorJitter>("RandomColorJitter");
  register_class<RandomErasing>("RandomErasing");
  register_class<RandomGaussianBlur>("RandomGaussianBlur");
}

}  // namespace kiln::layers
