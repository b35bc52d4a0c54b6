// ops::resize (tf.image.resize without antialiasing) against loops written here with TF's half-pixel
// arithmetic, its dtypes and gradients, and the layers on it: Resizing (crop / pad to the aspect
// ratio, integer images, channels first, configs, errors) and UpSampling2D's bilinear interpolation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "autodiff/tape.h"
#include "core/error.h"
#include "layers/layer.h"
#include "ops/image.h"
#include "ops/ops.h"
#include "test_util.h"

namespace kiln {
namespace {

using layers::kUnknownDim;
using layers::PartialShape;
using ops::ResizeMethod;
using testing::expect_error;
using testing::random_tensor;
using testing::values;

// TF's bilinear resize of x [N, H, W, C] in float: the width lerps first, then the height.
std::vector<float> ref_resize(const Tensor &x, int64_t oh, int64_t ow, bool bilinear) {
  const Shape &s = x.shape();
  const int64_t n = s[0], h = s[1], w = s[2], c = s[3];
  auto at = [&](int64_t b, int64_t i, int64_t j, int64_t k) {
    return x.data<float>()[((b * h + i) * w + j) * c + k];
  };
  struct Tap {
    int64_t lo, hi;
    float t;
  };
  auto taps = [&](int64_t in, int64_t out) {
    const float scale = static_cast<float>(in) / static_cast<float>(out);
    std::vector<Tap> v;
    for (int64_t o = 0; o < out; ++o) {
      if (!bilinear) {
        const int64_t i = std::min<int64_t>(static_cast<int64_t>(std::floor((o + 0.5f) * scale)), in - 1);
        v.push_back({i, i, 0.0f});
        continue;
      }
      const float src = (o + 0.5f) * scale - 0.5f, f = std::floor(src);
      v.push_back(
          {std::max<int64_t>(int64_t(f), 0), std::min<int64_t>(int64_t(std::ceil(src)), in - 1), src - f});
    }
    return v;
  };
  const std::vector<Tap> ty = taps(h, oh), tx = taps(w, ow);
  std::vector<float> y;
  for (int64_t b = 0; b < n; ++b)
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j)
        for (int64_t k = 0; k < c; ++k) {
          const Tap &a = ty[size_t(i)], &e = tx[size_t(j)];
          const float top = at(b, a.lo, e.lo, k) + (at(b, a.lo, e.hi, k) - at(b, a.lo, e.lo, k)) * e.t;
          const float bottom = at(b, a.hi, e.lo, k) + (at(b, a.hi, e.hi, k) - at(b, a.hi, e.lo, k)) * e.t;
          y.push_back(top + (bottom - top) * a.t);
        }
  return y;
}

TEST(ImageResize, MatchesTfHalfPixelLoops) {
  const Tensor x = random_tensor({2, 5, 7, 3}, 1);
  for (const bool bilinear : {true, false})
    for (const auto &[oh, ow] :
         std::vector<std::pair<int64_t, int64_t>>{{5, 7}, {10, 14}, {3, 4}, {1, 1}, {8, 3}, {13, 2}}) {
      const Tensor y = ops::resize(x, oh, ow, bilinear ? ResizeMethod::kBilinear : ResizeMethod::kNearest);
      ASSERT_EQ(y.shape(), Shape({2, oh, ow, 3}));
      testing::expect_near(y, ref_resize(x, oh, ow, bilinear), 1e-6f);
    }
  // One image [H, W, C]: the same as a batch of one.
  const Tensor one = ops::resize(ops::squeeze(ops::slice(x, {0, 0, 0, 0}, {1, -1, -1, -1}), {0}), 4, 9,
                                 ResizeMethod::kBilinear);
  EXPECT_EQ(one.shape(), Shape({4, 9, 3}));
  testing::expect_near(one, ref_resize(ops::slice(x, {0, 0, 0, 0}, {1, -1, -1, -1}), 4, 9, true), 1e-6f);
}

TEST(ImageResize, DtypesAndGradients) {
  const Tensor x = random_tensor({1, 3, 4, 2}, 2);
  // bfloat16: the float32 result on its values, rounded once; integers give float32 (bilinear) or
  // keep their dtype (nearest).
  const Tensor xb = ops::cast(x, DType::kBFloat16);
  const Tensor yb = ops::resize(xb, 5, 6, ResizeMethod::kBilinear);
  EXPECT_EQ(yb.dtype(), DType::kBFloat16);
  EXPECT_EQ(
      values(ops::cast(yb, DType::kFloat32)),
      values(ops::cast(ops::cast(ops::resize(ops::cast(xb, DType::kFloat32), 5, 6, ResizeMethod::kBilinear),
                                 DType::kBFloat16),
                       DType::kFloat32)));
  const Tensor xi = testing::make_typed<uint8_t>({1, 2, 2, 1}, {0, 10, 20, 250});
  const Tensor yi = ops::resize(xi, 4, 4, ResizeMethod::kBilinear);
  EXPECT_EQ(yi.dtype(), DType::kFloat32);
  EXPECT_EQ(values(yi)[0], 0.0f);
  EXPECT_EQ(values(yi)[1], 2.5f);  // a quarter of the way to 10
  EXPECT_EQ(ops::resize(xi, 3, 3, ResizeMethod::kNearest).dtype(), DType::kUInt8);
  EXPECT_EQ(ops::resize(ops::cast(x, DType::kFloat64), 2, 2, ResizeMethod::kBilinear).dtype(),
            DType::kFloat64);
  testing::check_gradients(
      "resize bilinear",
      [](const std::vector<Tensor> &in) { return ops::resize(in[0], 5, 3, ResizeMethod::kBilinear); }, {x});
  testing::check_gradients(
      "resize nearest",
      [](const std::vector<Tensor> &in) { return ops::resize(in[0], 2, 7, ResizeMethod::kNearest); }, {x});
  const Code bad = Code::kInvalidArgument;
  expect_error(
      [&] {
        ops::resize(random_tensor({4, 4}, 1), 2, 2, ResizeMethod::kBilinear);
      },
      bad, {"resize", "[4, 4]", "rank 4"});
  expect_error([&] { ops::resize(x, 0, 2, ResizeMethod::kBilinear); }, bad, {"resize", "size [0, 2]"});
  expect_error(
      [&] {
        ops::resize(random_tensor({1, 0, 3, 1}, 1), 2, 2, ResizeMethod::kNearest);
      },
      bad, {"resize", "empty height or width"});
  expect_error([&] { ops::resize(ops::cast(x, DType::kBool), 2, 2, ResizeMethod::kNearest); }, bad,
               {"resize", "bool"});
  expect_error([&] { ops::resize(Tensor(), 2, 2, ResizeMethod::kNearest); }, bad, {"resize"});
}

TEST(ImageResize, ResizingAndUpSamplingLayers) {
  layers::clear_session();
  const Tensor x = random_tensor({2, 4, 6, 3}, 3);
  auto make = [](const char *cls, const std::string &json) {
    return layers::create_layer(cls, Config::from_json(json));
  };
  layers::LayerPtr r = make("Resizing", R"({"height": 3, "width": 5})");
  EXPECT_EQ(r->name(), "resizing");
  EXPECT_EQ(r->get_config().keys(),  // Keras's order
            (std::vector<std::string>{"name", "trainable", "dtype", "data_format", "height", "width",
                                      "interpolation", "crop_to_aspect_ratio", "pad_to_aspect_ratio",
                                      "fill_mode", "fill_value", "antialias"}));
  testing::expect_near((*r)(x), ref_resize(x, 3, 5, true), 1e-6f);
  EXPECT_EQ(r->compute_output_shape({{kUnknownDim, 4, 6, 3}}),
            (std::vector<PartialShape>{{kUnknownDim, 3, 5, 3}}));
  // crop_to_aspect_ratio: 3x3 from 4x6 keeps the centred 4x4 box (columns 1..4).
  layers::LayerPtr crop = make("Resizing", R"({"height": 3, "width": 3, "crop_to_aspect_ratio": true})");
  testing::expect_near((*crop)(x), ref_resize(ops::slice(x, {0, 0, 1, 0}, {-1, -1, 4, -1}), 3, 3, true),
                       1e-6f);
  // pad_to_aspect_ratio: 6x6 from 4x6 pads one row of fill_value on each side.
  layers::LayerPtr pad =
      make("Resizing", R"({"height": 6, "width": 6, "pad_to_aspect_ratio": true, "fill_value": 0.5})");
  testing::expect_near((*pad)(x), values(ops::pad(x, {0, 0, 1, 1, 0, 0, 0, 0}, ops::PadMode::kConstant, 0.5)),
                       1e-6f);
  // Integer images keep their dtype: rounded and saturated.
  const Tensor xi = testing::make_typed<uint8_t>({1, 2, 2, 1}, {0, 10, 20, 255});
  const Tensor yi = (*make("Resizing", R"({"height": 4, "width": 4})"))(xi);
  EXPECT_EQ(yi.dtype(), DType::kUInt8);
  EXPECT_EQ(values<uint8_t>(yi)[1], 2);  // 2.5 rounds half to even
  // channels_first: the same values, transposed.
  const Tensor xcf = ops::transpose(x, {0, 3, 1, 2});
  const Tensor ycf =
      (*make("Resizing", R"({"height": 3, "width": 5, "data_format": "channels_first"})"))(xcf);
  testing::expect_near(ops::transpose(ycf, {0, 2, 3, 1}), ref_resize(x, 3, 5, true), 1e-6f);
  // UpSampling2D(interpolation="bilinear") resizes to size times the height and width.
  layers::LayerPtr up = make("UpSampling2D", R"({"size": [2, 3], "interpolation": "bilinear"})");
  testing::expect_near((*up)(x), ref_resize(x, 8, 18, true), 1e-6f);
  EXPECT_EQ(up->get_config().get_string("interpolation"), "bilinear");
  // Errors name the class and the argument.
  expect_error([&] { make("Resizing", R"({"height": 3, "width": 5, "interpolation": "bicubic"})"); },
               Code::kUnimplemented, {"Resizing: interpolation 'bicubic'"});
  expect_error([&] { make("UpSampling2D", R"({"interpolation": "cubic"})"); }, Code::kInvalidArgument,
               {"UpSampling2D: interpolation 'cubic'"});
  expect_error(
      [&] {
        make("Resizing",
             R"({"height": 3, "width": 5, "crop_to_aspect_ratio": true, "pad_to_aspect_ratio": true})");
      },
      Code::kInvalidArgument, {"only one of"});
  expect_error([&] { make("Resizing", R"({"height": 3, "width": 5, "antialias": true})"); },
               Code::kUnimplemented, {"antialias"});
  expect_error([&] { make("Resizing", R"({"height": 0, "width": 5})"); }, Code::kInvalidArgument,
               {"must be positive"});
  expect_error(
      [&] {
        (*r)(random_tensor({4, 4}, 1));
      },
      Code::kInvalidArgument, {"(Resizing)", "expected rank 4"});
}

}  // namespace
}  // namespace kiln
