// Keras 3's colour augmentation layers (AutoContrast, Solarization, RandomInvert, RandomGrayscale,
// RandomPosterization, RandomColorDegeneration, RandomSharpness, Equalization, RandAugment) and RandomShear,
// against values worked out by hand from Keras's definitions; fixed draws (lower == upper) make the random
// layers deterministic, and wide ranges check that each image draws its own value.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "autodiff/tape.h"
#include "core/error.h"
#include "core/rng.h"
#include "layers/layer.h"
#include "ops/image.h"
#include "ops/ops.h"
#include "ops/random.h"
#include "test_util.h"

namespace kiln {
namespace {

using layers::CallContext;
using layers::LayerPtr;
using testing::expect_error;
using testing::expect_near;
using testing::make;
using testing::make_typed;
using testing::values;

LayerPtr layer(const char *cls, const std::string &json) {
  return layers::create_layer(cls, Config::from_json(json));
}
CallContext training() {
  CallContext c;
  c.training = true;
  return c;
}
std::vector<float> run(const LayerPtr &l, const Tensor &x, bool train = true) {
  return values<float>((*l)({x}, train ? training() : CallContext())[0]);
}

// Two 2 x 2 images of 3 channels: channel c of image i holds distinct values.
const std::vector<float> kPixels = {10, 50, 90,  20, 60, 100, 30, 70, 110, 40, 80, 120,   // image 0
                                    5,  0,  200, 15, 0,  210, 25, 0,  220, 35, 0,  230};  // image 1

TEST(ColorAugmentation, AutoContrastStretchesEachChannel) {
  const Tensor x = make({2, 2, 2, 3}, kPixels);
  LayerPtr ac = layer("AutoContrast", "{}");
  // Each channel's min -> 0 and max -> 255: 10..40 -> 0, 85, 170, 255; image 1's constant green keeps 0s.
  const std::vector<float> want = {0, 0, 0, 85, 85, 85, 170, 170, 170, 255, 255, 255,
                                   0, 0, 0, 85, 0,  85, 170, 0,   170, 255, 0,   255};
  expect_near((*ac)({x}, CallContext())[0], want, 1e-3f);  // active outside training too
  EXPECT_EQ(run(ac, x, true), run(ac, x, false));

  // value_range (0, 1): the same stretch mapped back to [0, 1]; channels first gives the same per channel.
  std::vector<float> unit;
  for (float v : kPixels) unit.push_back(v / 255.0f);
  std::vector<float> want_unit;
  for (float v : want) want_unit.push_back(v / 255.0f);
  expect_near(
      (*layer("AutoContrast", R"({"value_range": [1, 0]})"))({make({2, 2, 2, 3}, unit)}, CallContext())[0],
      want_unit, 1e-5f);
  const Tensor first = ops::transpose(x, {0, 3, 1, 2});
  expect_near(ops::transpose(
                  (*layer("AutoContrast", R"({"data_format": "channels_first"})"))({first}, CallContext())[0],
                  {0, 2, 3, 1}),
              want, 1e-3f);

  // A NaN in a channel leaves that channel as it was; the others are stretched.
  std::vector<float> with_nan = kPixels;
  with_nan[0] = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> got = run(ac, make({2, 2, 2, 3}, with_nan), false);
  EXPECT_TRUE(std::isnan(got[0]));
  for (int k : {3, 6, 9}) EXPECT_EQ(got[size_t(k)], kPixels[size_t(k)]) << k;
  EXPECT_NEAR(got[1], 0.0f, 1e-3f);
  EXPECT_NEAR(got[10], 255.0f, 1e-3f);
  EXPECT_EQ(ac->get_config().get_float_list("value_range"), (std::vector<double>{0, 255}));
  EXPECT_FALSE(ac->get_config().has("seed"));
  // AutoContrast draws nothing, so it takes no step of the global random stream.
  set_global_seed(5);
  const std::vector<float> stream = values<float>(ops::random_uniform(Shape({3})));
  set_global_seed(5);
  run(ac, x, true);
  EXPECT_EQ(values<float>(ops::random_uniform(Shape({3}))), stream);
}

TEST(ColorAugmentation, SolarizationAddsThenInvertsAboveTheThreshold) {
  const Tensor x = make({2, 2, 2, 3}, kPixels);
  // addition 0.2 * 255 = 51, threshold 0.4 * 255 = 102: y = min(x + 51, 255); y < 102 ? y : 255 - y.
  LayerPtr s = layer("Solarization", R"({"addition_factor": [0.2, 0.2], "threshold_factor": [0.4, 0.4]})");
  std::vector<float> want;
  for (float v : kPixels) {
    const float y = std::min(v + 51.0f, 255.0f);
    want.push_back(y < 102.0f ? y : 255.0f - y);
  }
  expect_near((*s)({x}, training())[0], want, 1e-3f);
  EXPECT_EQ(run(s, x, false), kPixels);
  // The defaults invert everything (threshold 0): 255 - x; in value_range (-1, 1): -x.
  std::vector<float> inverted;
  for (float v : kPixels) inverted.push_back(255.0f - v);
  expect_near((*layer("Solarization", "{}"))({x}, training())[0], inverted, 1e-4f);
  expect_near((*layer("Solarization", R"({"value_range": [-1, 1]})"))({make({1, 1, 3}, {-1, 0.25f, 1})},
                                                                      training())[0],
              {1, -0.25f, -1}, 1e-6f);
  EXPECT_EQ(
      layer("Solarization", R"({"addition_factor": 0.5})")->get_config().get_float_list("addition_factor"),
      (std::vector<double>{0, 0.5}));
}

TEST(ColorAugmentation, RandomInvertWithItsProbability) {
  const Tensor x = make({2, 2, 2, 3}, kPixels);
  std::vector<float> inverted;
  for (float v : kPixels) inverted.push_back(255.0f - v);
  EXPECT_EQ(run(layer("RandomInvert", R"({"factor": [1, 1]})"), x), inverted);
  EXPECT_EQ(run(layer("RandomInvert", R"({"factor": [0, 0]})"), x), kPixels);
  EXPECT_EQ(run(layer("RandomInvert", "{}"), x, false), kPixels);
  // Probability 0.5: about half of 400 one-pixel images, each all or nothing.
  const Tensor many = ops::fill(Shape({400, 1, 1, 2}), 1.0, DType::kFloat32);
  const std::vector<float> got =
      run(layer("RandomInvert", R"({"factor": [0.5, 0.5], "value_range": [0, 1]})"), many);
  int flipped = 0;
  for (size_t i = 0; i < got.size(); i += 2) {
    EXPECT_EQ(got[i], got[i + 1]);
    flipped += got[i] == 0.0f;
  }
  EXPECT_GT(flipped, 150);
  EXPECT_LT(flipped, 250);
}

TEST(ColorAugmentation, GrayscaleAndColorDegeneration) {
  const Tensor x = make({2, 2, 2, 3}, kPixels);
  std::vector<float> gray;
  for (size_t i = 0; i < kPixels.size(); i += 3) {
    const float g = 0.2989f * kPixels[i] + 0.5870f * kPixels[i + 1] + 0.1140f * kPixels[i + 2];
    gray.insert(gray.end(), {g, g, g});
  }
  expect_near((*layer("RandomGrayscale", R"({"factor": 1})"))({x}, training())[0], gray, 1e-3f);
  EXPECT_EQ(run(layer("RandomGrayscale", R"({"factor": 0})"), x), kPixels);
  EXPECT_EQ(run(layer("RandomGrayscale", R"({"factor": 1})"), x, false), kPixels);
  const Tensor one = make({1, 2, 1}, {3, 4});  // one channel: itself
  EXPECT_EQ(run(layer("RandomGrayscale", R"({"factor": 1})"), one), (std::vector<float>{3, 4}));
  // About 30% of 400 images turn gray with factor 0.3.
  std::vector<float> many;
  for (int i = 0; i < 400; ++i) many.insert(many.end(), {0, 100, 200});
  const std::vector<float> g =
      run(layer("RandomGrayscale", R"({"factor": 0.3})"), make({400, 1, 1, 3}, many));
  int turned = 0;
  for (size_t i = 0; i < g.size(); i += 3) turned += g[i] == g[i + 2];
  EXPECT_GT(turned, 80);
  EXPECT_LT(turned, 160);

  // Degeneration by f = 0.5: halfway to gray; f = 1: gray; clipped to value_range.
  std::vector<float> half;
  for (size_t i = 0; i < kPixels.size(); ++i) half.push_back(kPixels[i] + 0.5f * (gray[i] - kPixels[i]));
  expect_near((*layer("RandomColorDegeneration", R"({"factor": [0.5, 0.5]})"))({x}, training())[0], half,
              1e-3f);
  expect_near((*layer("RandomColorDegeneration", R"({"factor": [1, 1]})"))({x}, training())[0], gray, 1e-3f);
  std::vector<float> clipped;
  for (float v : gray) clipped.push_back(std::min(v, 60.0f));
  expect_near((*layer("RandomColorDegeneration", R"({"factor": [1, 1], "value_range": [0, 60]})"))(
                  {x}, training())[0],
              clipped, 1e-3f);
  EXPECT_EQ(layer("RandomColorDegeneration", R"({"factor": 0.3})")->get_config().get_float_list("factor"),
            (std::vector<double>{0, 0.3}));
  // Keras writes a factor f as [-f, f]: a negative draw moves away from gray (2 x - gray at -1).
  std::vector<float> away;
  for (size_t i = 0; i < kPixels.size(); ++i)
    away.push_back(std::clamp(2 * kPixels[i] - gray[i], 0.0f, 255.0f));
  expect_near((*layer("RandomColorDegeneration", R"({"factor": [-1, -1]})"))({x}, training())[0], away,
              1e-3f);

  for (const char *cls : {"RandomGrayscale", "RandomColorDegeneration"})
    expect_error(
        [&] {
          run(layer(cls, R"({"factor": 1})"), ops::ones(Shape({1, 2, 2, 2})));
        },
        Code::kInvalidArgument, {cls, "2 channels", "3 (RGB) or 1"});
}

TEST(ColorAugmentation, PosterizationKeepsTheTopBits) {
  const Tensor x = make({1, 1, 5, 1}, {255, 200.7f, 127, 64, 3});
  EXPECT_EQ(run(layer("RandomPosterization", R"({"factor": [2, 2]})"), x),
            (std::vector<float>{192, 192, 64, 64, 0}));
  EXPECT_EQ(run(layer("RandomPosterization", R"({"factor": 1})"), x),
            (std::vector<float>{128, 128, 0, 0, 0}));
  EXPECT_EQ(run(layer("RandomPosterization", R"({"factor": 1})"), x, false),
            (std::vector<float>{255, 200.7f, 127, 64, 3}));
  // In value_range (0, 1): x * 255 truncated, posterized, back to [0, 1]; NaN counts as 0.
  const Tensor unit = make({1, 1, 3, 1}, {1.0f, 0.5f, std::numeric_limits<float>::quiet_NaN()});
  expect_near(
      (*layer("RandomPosterization", R"({"factor": [3, 3], "value_range": [0, 1]})"))({unit}, training())[0],
      {224.0f / 255, 96.0f / 255, 0}, 1e-6f);
  // factor 4 is [1, 4]: b drawn among 1, 2, 3 per image, so every value a multiple of 32, and more than
  // one b across a batch.
  std::vector<float> ramp;
  for (int i = 0; i < 64; ++i)
    for (int v = 0; v < 256; v += 8) ramp.push_back(float(v));
  const std::vector<float> got =
      run(layer("RandomPosterization", R"({"factor": 4})"), make({64, 1, 32, 1}, ramp));
  std::vector<int> levels;
  for (size_t i = 0; i < got.size(); i += 32) {
    EXPECT_EQ(std::fmod(got[i + 31], 32.0f), 0.0f);
    std::vector<float> image(got.begin() + long(i), got.begin() + long(i) + 32);
    std::sort(image.begin(), image.end());
    levels.push_back(int(std::unique(image.begin(), image.end()) - image.begin()));
  }
  std::sort(levels.begin(), levels.end());
  levels.erase(std::unique(levels.begin(), levels.end()), levels.end());
  EXPECT_EQ(levels, (std::vector<int>{2, 4, 8}));
  EXPECT_EQ(layer("RandomPosterization", R"({"factor": 4})")->get_config().get_int_list("factor"),
            (std::vector<int64_t>{1, 4}));
}

TEST(ColorAugmentation, SharpnessBlendsWithTheSmoothedImage) {
  std::vector<float> px;
  for (int i = 0; i < 9; ++i) px.push_back(float(i * 10));
  const Tensor x = make({1, 3, 3, 1}, px);
  // f = 0: the smoothed image, zero padded: each pixel (sum of neighbours + 5 x itself) / 13.
  std::vector<float> smooth;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) {
      float sum = 0;
      for (int dr = -1; dr <= 1; ++dr)
        for (int dc = -1; dc <= 1; ++dc) {
          const int rr = r + dr, cc = c + dc;
          if (rr < 0 || rr > 2 || cc < 0 || cc > 2) continue;
          sum += px[size_t(rr * 3 + cc)] * (dr == 0 && dc == 0 ? 5.0f : 1.0f);
        }
      smooth.push_back(sum / 13.0f);
    }
  expect_near((*layer("RandomSharpness", R"({"factor": [0, 0]})"))({x}, training())[0], smooth, 1e-3f);
  expect_near((*layer("RandomSharpness", R"({"factor": [0.5, 0.5]})"))({x}, training())[0], px, 1e-4f);
  std::vector<float> sharp;  // f = 1: x - (smoothed - x), clipped to [0, 255]
  for (size_t i = 0; i < px.size(); ++i) sharp.push_back(std::clamp(2 * px[i] - smooth[i], 0.0f, 255.0f));
  expect_near((*layer("RandomSharpness", R"({"factor": [1, 1]})"))({x}, training())[0], sharp, 1e-3f);
  EXPECT_EQ(run(layer("RandomSharpness", R"({"factor": 1})"), x, false), px);
  // float64 layers compute in float64.
  const Tensor x64 = ops::cast(x, DType::kFloat64);
  const Tensor y64 =
      (*layer("RandomSharpness", R"({"factor": [0, 0], "dtype": "float64"})"))({x64}, training())[0];
  ASSERT_EQ(y64.dtype(), DType::kFloat64);
  for (size_t i = 0; i < px.size(); ++i) EXPECT_NEAR(values<double>(y64)[i], smooth[i], 1e-4) << i;
}

TEST(ColorAugmentation, ShearIsEitherSignOfTheDraw) {
  std::vector<float> px;
  for (int i = 0; i < 25; ++i) px.push_back(float(i));
  const Tensor x = make({1, 5, 5, 1}, px);
  const auto sheared = [&](float sx, float sy) {
    return values<float>(ops::projective_transform(x, make({1, 8}, {1, sx, 0, sy, 1, 0, 0, 0}),
                                                   ops::ResizeMethod::kNearest, ops::FillMode::kReflect, 0));
  };
  LayerPtr shear = layer("RandomShear", R"({"x_factor": [0.5, 0.5], "y_factor": [0.25, 0.25],
                                             "interpolation": "nearest"})");
  int seen_plus = 0, seen_minus = 0;
  for (int call = 0; call < 40; ++call) {
    const std::vector<float> got = run(shear, x);
    seen_plus += got == sheared(0.5f, 0.25f);
    seen_minus += got == sheared(-0.5f, -0.25f);
  }
  EXPECT_EQ(seen_plus + seen_minus, 40);
  EXPECT_GT(seen_plus, 5);
  EXPECT_GT(seen_minus, 5);
  EXPECT_EQ(run(shear, x, false), px);
  const Config c = layer("RandomShear", R"({"x_factor": 0.3})")->get_config();
  EXPECT_EQ(c.get_float_list("x_factor"), (std::vector<double>{-0.3, 0.3}));
  EXPECT_EQ(c.get_float_list("y_factor"), (std::vector<double>{0, 0}));
  EXPECT_EQ(c.get_string("fill_mode"), "reflect");
}

// keras.layers.Equalization by hand: bins 3 put 0, 100, 200, 255, 255 in bins 0, 0, 1, 2, 2, the cumulative
// counts 2, 3, 5 give the table 0, 85, 255; a constant channel is kept; the histogram is the batch's; a NaN
// is in no bin and stays; value_range maps in and out; inference keeps the images.
TEST(ColorAugmentation, EqualizationAsKerasComputesIt) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> px = {0, 7,   100, 7,   200,
                                 7, 255, 7,   255, 7};  // channel 0, then the constant channel 1
  const std::vector<float> want = {0, 7, 0, 7, 85, 7, 255, 7, 255, 7};
  LayerPtr eq = layer("Equalization", R"({"bins": 3})");
  EXPECT_EQ(run(eq, make({1, 1, 5, 2}, px)), want);
  EXPECT_EQ(run(eq, make({5, 1, 1, 2}, px)), want);  // one histogram over the batch, as Keras's code
  EXPECT_EQ(run(eq, make({1, 5, 2}, px)), want);
  EXPECT_EQ(run(eq, make({1, 1, 5, 2}, px), false), px);
  std::vector<float> with_nan = px;
  with_nan[0] = nan;  // bins: -, 0, 1, 2, 2; counts 1, 2, 4; table 0, 85, 255
  const std::vector<float> got = run(eq, make({1, 1, 5, 2}, with_nan));
  EXPECT_TRUE(std::isnan(got[0]));
  EXPECT_EQ(std::vector<float>(got.begin() + 1, got.end()),
            (std::vector<float>{7, 0, 7, 85, 7, 255, 7, 255, 7}));
  std::vector<float> unit = px, unit_want = want;
  for (size_t i = 0; i < px.size(); i += 2) unit[i] /= 255.0f, unit_want[i] /= 255.0f;
  unit[1] = unit[3] = unit[5] = unit[7] = unit[9] = 0.5f;
  unit_want[1] = unit_want[3] = unit_want[5] = unit_want[7] = unit_want[9] = 0.5f;
  expect_near((*layer("Equalization", R"({"bins": 3, "value_range": [1, 0]})"))({make({1, 1, 5, 2}, unit)},
                                                                                training())[0],
              unit_want, 1e-6f);
  // Channels first; integer images are cast; 256 bins keep an image already spread evenly.
  const std::vector<float> ramp = {0, 85, 170, 255};
  EXPECT_EQ(run(layer("Equalization", R"({"data_format": "channels_first"})"), make({1, 1, 2, 2}, ramp)),
            ramp);
  const Tensor ints = make_typed<int32_t>({1, 2, 2, 1}, {0, 85, 170, 255});
  EXPECT_EQ(run(layer("Equalization", "{}"), ints), ramp);
  const Config c = layer("Equalization", R"({"bins": 64, "value_range": [1, -1]})")->get_config();
  EXPECT_EQ(c.get_int("bins"), 64);
  EXPECT_EQ(c.get_float_list("value_range"), (std::vector<double>{-1, 1}));
  EXPECT_FALSE(c.has("seed"));
  EXPECT_EQ(layers::create_layer("Equalization", c)->get_config().json(), c.json());
  expect_error([] { layer("Equalization", R"({"bins": 0})"); }, Code::kInvalidArgument,
               {"Equalization", "bins", "[1, "});
  expect_error([] { layer("Equalization", R"({"bins": 2.5})"); }, Code::kInvalidArgument, {"bins"});
  expect_error([] { layer("Equalization", R"({"value_range": [3, 3]})"); }, Code::kInvalidArgument,
               {"Equalization", "value_range"});
  expect_error([] { layer("Equalization", R"({"seed": 1})"); }, Code::kInvalidArgument, {"seed"});
}

// keras.layers.RandAugment with factor 0 and one op: each call's output is one of its eleven layers'
// outputs (each fixed at factor 0), several of them are drawn; inference and num_ops 0 keep the images.
TEST(ColorAugmentation, RandAugmentAppliesOneOfKerasLayers) {
  const Tensor x = make({2, 2, 2, 3}, kPixels);
  const std::vector<std::pair<const char *, std::string>> ops = {
      {"RandomShear", R"({"x_factor": [0, 0], "y_factor": [0, 0]})"},
      {"RandomTranslation", R"({"height_factor": [0, 0], "width_factor": [0, 0]})"},
      {"RandomRotation", R"({"factor": [0, 0]})"},
      {"RandomBrightness", R"({"factor": [0, 0]})"},
      {"RandomColorDegeneration", R"({"factor": [0, 0]})"},
      {"RandomContrast", R"({"factor": [0, 0]})"},
      {"RandomSharpness", R"({"factor": [0, 0]})"},
      {"RandomPosterization", R"({"factor": 1})"},
      {"Solarization", R"({"addition_factor": [0, 0], "threshold_factor": [0, 0]})"},
      {"AutoContrast", "{}"},
      {"Equalization", "{}"}};
  std::vector<std::vector<float>> candidates;
  for (const auto &[cls, json] : ops) candidates.push_back(run(layer(cls, json), x));
  LayerPtr ra = layer("RandAugment", R"({"factor": [0, 0], "num_ops": 1, "seed": 3})");
  std::set<size_t> seen;
  for (int call = 0; call < 40; ++call) {
    const std::vector<float> got = run(ra, x);
    const auto found = std::find(candidates.begin(), candidates.end(), got);
    ASSERT_NE(found, candidates.end()) << "call " << call;
    seen.insert(size_t(found - candidates.begin()));
  }
  EXPECT_GE(seen.size(), 5u);
  EXPECT_EQ(run(ra, x, false), kPixels);
  EXPECT_EQ(run(layer("RandAugment", R"({"num_ops": 0})"), x), kPixels);
  // Channels first: the same layers on the transposed images.
  LayerPtr first =
      layer("RandAugment", R"({"factor": [0, 0], "num_ops": 1, "data_format": "channels_first"})");
  const std::vector<float> got =
      values<float>(ops::transpose((*first)({ops::transpose(x, {0, 3, 1, 2})}, training())[0], {0, 2, 3, 1}));
  EXPECT_NE(std::find(candidates.begin(), candidates.end(), got), candidates.end());
  const Config c =
      layer("RandAugment", R"({"factor": 0.3, "num_ops": 3, "value_range": [1, 0]})")->get_config();
  EXPECT_EQ(c.get_float_list("factor"), (std::vector<double>{0, 0.3}));
  EXPECT_EQ(c.get_float_list("value_range"), (std::vector<double>{0, 1}));
  EXPECT_EQ(c.get_int("num_ops"), 3);
  EXPECT_EQ(c.get_string("interpolation"), "bilinear");
  EXPECT_EQ(layers::create_layer("RandAugment", c)->get_config().json(), c.json());
  // Images of 2 or 4 channels fail in every call (RandomColorDegeneration takes 3 or 1), and at build.
  expect_error(
      [&] {
        run(ra, make({1, 1, 1, 4}, {1, 2, 3, 4}));
      },
      Code::kInvalidArgument, {"RandAugment", "4 channels"});
  expect_error(
      [] {
        layer("RandAugment", "{}")->compute_output_shape({{-1, 8, 8, 2}});
      },
      Code::kInvalidArgument, {"RandAugment", "2 channels"});
  expect_error([] { layer("RandAugment", R"({"num_ops": -1})"); }, Code::kInvalidArgument,
               {"RandAugment", "num_ops", ">= 0"});
  expect_error([] { layer("RandAugment", R"({"factor": 1.5})"); }, Code::kInvalidArgument,
               {"RandAugment", "factor"});
  expect_error([] { layer("RandAugment", R"({"interpolation": "cubic"})"); }, Code::kInvalidArgument,
               {"RandAugment", "'cubic'"});
  expect_error([] { layer("RandAugment", R"({"value_range": [2, 2]})"); }, Code::kInvalidArgument,
               {"RandAugment", "value_range"});
}

// ops::random_permutation and ops::random_beta: permutations of 0 .. n - 1; Beta's mean and variance; tiny
// alphas give values at the ends, not NaN; bad parameters are errors.
TEST(ColorAugmentation, PermutationAndBetaDraws) {
  std::vector<int64_t> p = values<int64_t>(ops::random_permutation(50, 3)), sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 50; ++i) EXPECT_EQ(sorted[size_t(i)], i);
  int fixed = 0;
  for (int64_t i = 0; i < 50; ++i) fixed += p[size_t(i)] == i;
  EXPECT_LT(fixed, 10);
  EXPECT_EQ(ops::random_permutation(0).num_elements(), 0);
  EXPECT_EQ(values<int64_t>(ops::random_permutation(1)), (std::vector<int64_t>{0}));
  const auto moments = [](const Tensor &t) {
    const std::vector<float> v = values<float>(t);
    double mean = 0, var = 0;
    for (float x : v) mean += x;
    mean /= double(v.size());
    for (float x : v) var += (x - mean) * (x - mean);
    return std::pair<double, double>{mean, var / double(v.size())};
  };
  const auto [m22, v22] = moments(ops::random_beta(Shape({4000}), 2, 2, 1));
  EXPECT_NEAR(m22, 0.5, 0.02);
  EXPECT_NEAR(v22, 0.05, 0.005);
  const auto [m52, v52] = moments(ops::random_beta(Shape({4000}), 0.5, 2, 1));  // mean 0.2, variance 0.0457
  EXPECT_NEAR(m52, 0.2, 0.02);
  EXPECT_NEAR(v52, 0.0457, 0.006);
  for (float v : values<float>(ops::random_beta(Shape({200}), 1e-6, 1e-6)))
    EXPECT_TRUE(v == 0.0f || v == 1.0f) << v;
  for (double bad : {0.0, -1.0, std::numeric_limits<double>::infinity()})
    expect_error([&] { ops::random_beta(Shape({2}), bad, 1); }, Code::kInvalidArgument,
                 {"random_beta", "alpha"});
  // Gamma(alpha) / rate: mean alpha / rate, variance alpha / rate^2, below and above alpha 1.
  const auto [mg, vg] = moments(ops::random_gamma(Shape({8000}), 0.5, 2.0, 4));
  EXPECT_NEAR(mg, 0.25, 0.015);
  EXPECT_NEAR(vg, 0.125, 0.015);
  const auto [mg3, vg3] = moments(ops::random_gamma(Shape({8000}), 3.0));
  EXPECT_NEAR(mg3, 3.0, 0.08);
  EXPECT_NEAR(vg3, 3.0, 0.25);
  expect_error([] { ops::random_gamma(Shape({2}), 1.0, 0.0); }, Code::kInvalidArgument,
               {"random_gamma", "beta"});
  // The shuffle moves whole slices along the axis.
  const std::vector<float> rows =
      values<float>(ops::random_shuffle(make({3, 2}, {0, 1, 10, 11, 20, 21}), 0, 2));
  std::vector<float> firsts;
  for (size_t r = 0; r < 3; ++r) {
    EXPECT_EQ(rows[2 * r + 1], rows[2 * r] + 1);
    firsts.push_back(rows[2 * r]);
  }
  std::sort(firsts.begin(), firsts.end());
  EXPECT_EQ(firsts, (std::vector<float>{0, 10, 20}));
  EXPECT_EQ(ops::random_shuffle(make({2, 5}, std::vector<float>(10, 1)), -1).shape(), Shape({2, 5}));
  expect_error(
      [] {
        ops::random_shuffle(make({2}, {1, 2}), 1);
      },
      Code::kInvalidArgument, {"random_shuffle", "axis 1"});
}

// MixUp and CutMix over images that are each one constant value i, with one-hot labels: the mixed labels
// say exactly how much of which image each output holds. MixUp: the value is sum_j label_j j. CutMix: a box
// of the partner's value, the partner the label's other index. Inference and single images are kept.
TEST(ColorAugmentation, MixUpAndCutMixMixImagesAndLabelsAlike) {
  const int64_t n = 12;
  std::vector<float> px, onehot(size_t(n * n), 0.0f);
  for (int64_t i = 0; i < n; ++i) {
    for (int k = 0; k < 20; ++k) px.push_back(float(i));
    onehot[size_t(i * n + i)] = 1;
  }
  const Tensor x = make({n, 4, 5, 1}, px), labels = make({n, n}, onehot);
  LayerPtr mixup = layer("MixUp", R"({"alpha": 0.4, "seed": 2})");
  for (int call = 0; call < 3; ++call) {
    const std::vector<Tensor> out = (*mixup)({x, labels}, training());
    ASSERT_EQ(out.size(), 2u);
    const std::vector<float> img = values<float>(out[0]), lab = values<float>(out[1]);
    for (int64_t i = 0; i < n; ++i) {
      double value = 0, total = 0;
      for (int64_t j = 0; j < n; ++j)
        value += lab[size_t(i * n + j)] * double(j), total += lab[size_t(i * n + j)];
      EXPECT_NEAR(total, 1.0, 1e-6);
      for (int k = 0; k < 20; ++k) EXPECT_NEAR(img[size_t(i * 20 + k)], value, 1e-4) << i;
    }
  }
  LayerPtr cutmix = layer("CutMix", R"({"seed": 5})");
  int boxes = 0;
  for (int call = 0; call < 3; ++call) {
    const std::vector<Tensor> out = (*cutmix)({x, labels}, training());
    const std::vector<float> img = values<float>(out[0]), lab = values<float>(out[1]);
    for (int64_t i = 0; i < n; ++i) {
      int64_t partner = i;
      for (int64_t j = 0; j < n; ++j)
        if (j != i && lab[size_t(i * n + j)] > 0) partner = j;
      int theirs = 0;
      for (int k = 0; k < 20; ++k) {
        const float v = img[size_t(i * 20 + k)];
        EXPECT_TRUE(v == float(i) || v == float(partner)) << i << " " << v;
        theirs += v != float(i);
      }
      boxes += theirs > 0;
      EXPECT_NEAR(lab[size_t(i * n + i)] + (partner == i ? 0.0f : lab[size_t(i * n + partner)]), 1.0f, 1e-5f);
      if (theirs == 0) {
        EXPECT_GT(lab[size_t(i * n + i)], 0.5f);  // a box holding no pixel centre is small
      }
    }
  }
  EXPECT_GT(boxes, 10);
  // Inference, images alone, a single image.
  const std::vector<Tensor> kept = (*mixup)({x, labels}, CallContext());
  EXPECT_EQ(values<float>(kept[0]), px);
  EXPECT_EQ(values<float>(kept[1]), onehot);
  EXPECT_EQ((*cutmix)({x}, training()).size(), 1u);
  const Tensor one = make({4, 5, 1}, std::vector<float>(px.begin(), px.begin() + 20));
  EXPECT_EQ(run(mixup, one), std::vector<float>(px.begin(), px.begin() + 20));
  EXPECT_EQ(run(layer("MixUp", "{}"), make({2, 1, 1, 1}, {0, 1}), false), (std::vector<float>{0, 1}));

  const Config c = layer("CutMix", R"({"factor": 0.5})")->get_config();
  EXPECT_EQ(c.get_float_list("factor"), (std::vector<double>{0, 0.5}));
  EXPECT_EQ(layers::create_layer("CutMix", c)->get_config().json(), c.json());
  EXPECT_EQ(layer("MixUp", "{}")->get_config().get_float("alpha"), 0.2);
  expect_error(
      [&] {
        (*mixup)({x, ops::cast(labels, DType::kInt32)}, training());
      },
      Code::kInvalidArgument, {"MixUp", "labels", "floats"});
  expect_error(
      [&] {
        (*cutmix)({x, make({3, 2}, {0, 0, 0, 0, 0, 0})}, training());
      },
      Code::kInvalidArgument, {"CutMix", "labels", "batch of 12"});
  expect_error(
      [&] {
        (*cutmix)({x, labels, labels}, training());
      },
      Code::kInvalidArgument, {"CutMix", "3 inputs"});
  // Outside training MixUp returns integer images (and any labels) as they came, as Keras's code; CutMix
  // casts.
  const Tensor bytes = make_typed<uint8_t>({2, 1, 1, 1}, {3, 4});
  const std::vector<Tensor> as_given = (*mixup)({bytes, ops::cast(labels, DType::kInt32)}, CallContext());
  EXPECT_EQ(as_given[0].dtype(), DType::kUInt8);
  EXPECT_EQ(as_given[1].dtype(), DType::kInt32);
  EXPECT_EQ((*cutmix)({bytes}, CallContext())[0].dtype(), DType::kFloat32);
  // A factor with a negative lower bound (Keras's rule allows it) draws alpha 0 there, not an error.
  LayerPtr low = layer("CutMix", R"({"factor": [-0.9, 0.1]})");
  for (int call = 0; call < 20; ++call) EXPECT_EQ((*low)({x, labels}, training()).size(), 2u);
  expect_error([] { layer("MixUp", R"({"alpha": 0})"); }, Code::kInvalidArgument, {"MixUp", "alpha"});
  expect_error([] { layer("CutMix", R"({"factor": 1.5})"); }, Code::kInvalidArgument, {"CutMix", "factor"});
}

// TF's RGBToHSV and HSVToRGB at known colours; gray and black pixels have hue and saturation 0 and no NaN
// in the gradient; the round trip gives the colours back.
TEST(ColorAugmentation, HsvConversionsAsTf) {
  const Tensor rgb =
      make({6, 3}, {1, 0, 0, 0, 1, 0, 0, 0.5f, 1, 0.5f, 0.5f, 0.5f, 0, 0, 0, 0.2f, 0.7f, 0.7f});
  const Tensor hsv = ops::rgb_to_hsv(rgb);
  expect_near(hsv, {0, 1, 1, 1.0f / 3, 1, 1, 7.0f / 12, 1, 1, 0, 0, 0.5f, 0, 0, 0, 0.5f, 5.0f / 7, 0.7f},
              1e-6f);
  expect_near(ops::hsv_to_rgb(hsv), values<float>(rgb), 1e-6f);
  expect_near(ops::rgb_to_grayscale(make({1, 3}, {10, 20, 30})), {0.2989f * 10 + 0.5870f * 20 + 0.1140f * 30},
              1e-4f);
  EXPECT_EQ(ops::rgb_to_grayscale(ops::ones(Shape({2, 4, 3}))).shape(), Shape({2, 4, 1}));
  autodiff::Tape tape(false, true);
  tape.watch(rgb);
  const Tensor y = ops::sum(ops::add(ops::rgb_to_hsv(rgb), ops::hsv_to_rgb(rgb)));
  tape.stop_recording();
  const std::vector<float> g = values<float>(tape.gradient(y, {rgb}, autodiff::Unconnected::kZero)[0]);
  for (float gi : g) EXPECT_TRUE(std::isfinite(gi));
  // A spread below the smallest normal number is none: hue 0, not 1 / range overflowing to NaN or inf.
  const std::vector<float> tiny =
      values<float>(ops::rgb_to_hsv(make({2, 3}, {1e-40f, 0, 0, 1e-45f, 1e-45f, 0})));
  EXPECT_EQ(tiny[0], 0.0f);
  EXPECT_EQ(tiny[3], 0.0f);
  EXPECT_EQ(values<double>(ops::rgb_to_hsv(make_typed<double>(Shape({1, 3}), {1e-310, 0, 0})))[0], 0.0);
  const Tensor f64 = ops::rgb_to_hsv(ops::cast(rgb, DType::kFloat64));
  EXPECT_EQ(f64.dtype(), DType::kFloat64);
  EXPECT_NEAR(values<double>(f64)[15 + 1], (double(0.7f) - double(0.2f)) / double(0.7f), 1e-15);
  for (const Tensor &bad : {ops::ones(Shape({2, 4})), ops::cast(ops::ones(Shape({2, 3})), DType::kInt32)})
    expect_error([&] { ops::rgb_to_hsv(bad); }, Code::kInvalidArgument, {"rgb_to_hsv", "3 channels"});
}

// RandomSaturation: 0.5 keeps, 0 makes gray (every channel the max); RandomHue at f = 1 turns the hue by
// half a circle either way (both give the same); RandomColorJitter applies its steps in Keras's order.
TEST(ColorAugmentation, SaturationHueAndJitter) {
  const Tensor x = make({2, 2, 2, 3}, kPixels);
  expect_near((*layer("RandomSaturation", R"({"factor": [0.5, 0.5]})"))({x}, training())[0], kPixels, 1e-3f);
  std::vector<float> gray;
  for (size_t i = 0; i < kPixels.size(); i += 3) {
    const float m = std::max({kPixels[i], kPixels[i + 1], kPixels[i + 2]});
    gray.insert(gray.end(), {m, m, m});
  }
  expect_near((*layer("RandomSaturation", R"({"factor": [0, 0]})"))({x}, training())[0], gray, 1e-3f);
  EXPECT_EQ(run(layer("RandomSaturation", R"({"factor": 1})"), x, false), kPixels);
  // Half a turn of hue: (r, g, b) = (1, 0.5, 0) in [0, 1] becomes (0, 0.5, 1).
  const Tensor orange = make({1, 1, 1, 3}, {255, 127.5f, 0});
  expect_near((*layer("RandomHue", R"({"factor": [1, 1]})"))({orange}, training())[0], {0, 127.5f, 255},
              1e-3f);
  expect_near((*layer("RandomHue", R"({"factor": [0, 0], "value_range": [-1, 1]})"))(
                  {make({1, 1, 1, 3}, {-1, 0, 0.5f})}, training())[0],
              {-1, 0, 0.5f}, 1e-5f);
  // Jitter: brightness +0.1 * 255, then contrast 1 (no change), then saturation 0.5 and hue 0 (no change).
  LayerPtr jitter = layer("RandomColorJitter", R"({"brightness_factor": [0.1, 0.1], "contrast_factor": [0, 0],
                                                   "saturation_factor": [0.5, 0.5], "hue_factor": [0, 0]})");
  std::vector<float> brighter;
  for (float v : kPixels) brighter.push_back(std::min(v + 25.5f, 255.0f));
  expect_near((*jitter)({x}, training())[0], brighter, 1e-2f);
  EXPECT_EQ(run(jitter, x, false), kPixels);
  const Config c = layer("RandomColorJitter", R"({"contrast_factor": 0.3})")->get_config();
  EXPECT_TRUE(c.is_null("brightness_factor"));
  EXPECT_EQ(c.get_float_list("contrast_factor"), (std::vector<double>{0.3, 0.3}));
  EXPECT_EQ(layers::create_layer("RandomColorJitter", c)->get_config().json(), c.json());
  // Only brightness and contrast: any channel count; saturation or hue: 3.
  EXPECT_EQ(
      run(layer("RandomColorJitter", R"({"brightness_factor": 0})"), ops::ones(Shape({1, 2, 2, 2}))).size(),
      8u);
  for (const char *cls : {"RandomSaturation", "RandomHue"})
    expect_error(
        [&] {
          run(layer(cls, R"({"factor": 0.5})"), ops::ones(Shape({1, 2, 2, 1})));
        },
        Code::kInvalidArgument, {cls, "1 channels", "expected 3 (RGB)"});
  // Keras's rule for two numbers: refused only when lower > 1 or upper < 0.
  EXPECT_EQ(layer("RandomHue", R"({"factor": [-0.5, 1.5]})")->get_config().get_float_list("factor"),
            (std::vector<double>{-0.5, 1.5}));
  expect_error([] { layer("RandomHue", R"({"factor": [1.5, 2]})"); }, Code::kInvalidArgument,
               {"RandomHue", "lower <= 1 and upper >= 0", "[1.5,2]"});
  expect_error([] { layer("RandomColorJitter", R"({"contrast_factor": 2})"); }, Code::kInvalidArgument,
               {"RandomColorJitter", "contrast_factor"});
}

// RandomErasing: a box of sqrt(scale) of each side at a random place, all or nothing per image, filled with
// fill_value (per channel too) or clipped noise. RandomGaussianBlur: Keras's filter at a fixed sigma against
// a written-out zero-padded convolution; every image clipped to value_range.
TEST(ColorAugmentation, ErasingAndGaussianBlur) {
  const Tensor x = ops::fill(Shape({20, 6, 8, 2}), 100.0, DType::kFloat32);
  const std::vector<float> got =
      run(layer("RandomErasing", R"({"factor": [1, 1], "scale": [0.25, 0.25], "fill_value": 7})"), x);
  for (int64_t n = 0; n < 20; ++n) {
    int64_t erased = 0, rows_lo = 99, rows_hi = -1, cols_lo = 99, cols_hi = -1;
    for (int64_t r = 0; r < 6; ++r)
      for (int64_t c = 0; c < 8; ++c) {
        const float v = got[size_t(((n * 6 + r) * 8 + c) * 2)];
        ASSERT_TRUE(v == 7.0f || v == 100.0f);
        EXPECT_EQ(got[size_t(((n * 6 + r) * 8 + c) * 2 + 1)], v);  // every channel
        if (v != 7.0f) continue;
        ++erased;
        rows_lo = std::min(rows_lo, r), rows_hi = std::max(rows_hi, r);
        cols_lo = std::min(cols_lo, c), cols_hi = std::max(cols_hi, c);
      }
    EXPECT_EQ(erased, 3 * 4) << n;  // half of each side: 3 rows and 4 columns, one box
    EXPECT_EQ((rows_hi - rows_lo + 1) * (cols_hi - cols_lo + 1), 12) << n;
  }
  EXPECT_EQ(run(layer("RandomErasing", R"({"factor": [0, 0]})"), x), values<float>(x));
  const Tensor bf = (*layer("RandomErasing", R"({"factor": [1, 1], "scale": [1, 1], "fill_value": 0,
                                                  "dtype": "mixed_bfloat16"})"))({x}, training())[0];
  EXPECT_EQ(bf.dtype(), DType::kBFloat16);
  EXPECT_EQ(values<float>(ops::cast(bf, DType::kFloat32)),
            std::vector<float>(size_t(x.num_elements()), 0.0f));
  EXPECT_EQ(run(layer("RandomErasing", "{}"), x, false), values<float>(x));
  const std::vector<float> per_channel =
      run(layer("RandomErasing", R"({"factor": [1, 1], "scale": [1, 1], "fill_value": [1, 2, 300]})"),
          ops::ones(Shape({1, 2, 2, 3})));
  EXPECT_EQ(per_channel, (std::vector<float>{1, 2, 255, 1, 2, 255, 1, 2, 255, 1, 2, 255}));
  const std::vector<float> noise =
      run(layer("RandomErasing", R"({"factor": [1, 1], "scale": [1, 1], "value_range": [0, 1]})"), x);
  for (float v : noise) EXPECT_TRUE(v >= 0.0f && v <= 1.0f);
  EXPECT_GT(std::set<float>(noise.begin(), noise.end()).size(), 10u);
  expect_error(
      [&] {
        run(layer("RandomErasing", R"({"fill_value": [1, 2, 3]})"), ops::ones(Shape({1, 2, 2, 1})));
      },
      Code::kInvalidArgument, {"RandomErasing", "3", "1 channels"});

  // Blur: sigma 0.5 (+1e-6), a 3 x 3 filter, against the zero-padded sum.
  std::vector<float> px;
  for (int i = 0; i < 20; ++i) px.push_back(float((i * 37) % 11) * 20);
  const Tensor img = make({1, 4, 5, 1}, px);
  std::vector<double> g;
  double total = 0;
  for (int i = 0; i < 3; ++i) {
    const double d = (i - 1) / (0.5 + 1e-6);
    g.push_back(std::exp(-0.5 * d * d));
    total += g.back();
  }
  for (double &gi : g) gi /= total;
  std::vector<float> want;
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 5; ++c) {
      double sum = 0;
      for (int i = -1; i <= 1; ++i)
        for (int j = -1; j <= 1; ++j)
          if (r + i >= 0 && r + i < 4 && c + j >= 0 && c + j < 5)
            sum += g[size_t(i + 1)] * g[size_t(j + 1)] * px[size_t((r + i) * 5 + c + j)];
      want.push_back(float(sum));
    }
  expect_near(
      (*layer("RandomGaussianBlur", R"({"factor": [1, 1], "sigma": [0.5, 0.5]})"))({img}, training())[0],
      want, 1e-3f);
  std::vector<float> clipped;
  for (float v : px) clipped.push_back(std::min(v, 150.0f));
  EXPECT_EQ(run(layer("RandomGaussianBlur", R"({"factor": [0, 0], "value_range": [0, 150]})"), img), clipped);
  EXPECT_EQ(run(layer("RandomGaussianBlur", "{}"), img, false), px);
  EXPECT_EQ((*layer("RandomGaussianBlur", R"({"kernel_size": [3, 5]})"))({img}, training())[0].shape(),
            Shape({1, 4, 5, 1}));
  EXPECT_EQ(layer("RandomGaussianBlur", R"({"kernel_size": 5})")->get_config().get_int_list("kernel_size"),
            (std::vector<int64_t>{5, 5}));
  expect_error([] { layer("RandomGaussianBlur", R"({"kernel_size": 4})"); }, Code::kInvalidArgument,
               {"RandomGaussianBlur", "odd", "(4, 4)"});
  expect_error([] { layer("RandomGaussianBlur", R"({"sigma": 2})"); }, Code::kInvalidArgument,
               {"RandomGaussianBlur", "sigma"});
  expect_error([] { layer("RandomErasing", R"({"scale": [-0.5, -0.1]})"); }, Code::kInvalidArgument,
               {"RandomErasing", "scale"});
}

TEST(ColorAugmentation, ConfigsRoundTripAndBadArgumentsAreErrors) {
  for (const auto &[cls, json] : std::vector<std::pair<const char *, std::string>>{
           {"AutoContrast", R"({"value_range": [-1, 1]})"},
           {"Solarization", R"({"addition_factor": [0.1, 0.3], "threshold_factor": 0.5, "seed": 4})"},
           {"RandomInvert", R"({"factor": 0.4, "value_range": [0, 1]})"},
           {"RandomGrayscale", R"({"factor": 0.2, "data_format": "channels_first"})"},
           {"RandomPosterization", R"({"factor": [3, 6]})"},
           {"RandomColorDegeneration", R"({"factor": 0.7})"},
           {"RandomSharpness", R"({"factor": [0.2, 0.9]})"},
           {"RandomShear", R"({"x_factor": 0.2, "y_factor": [0.1, 0.3], "fill_mode": "constant"})"}}) {
    const Config c = layer(cls, json)->get_config();
    EXPECT_EQ(layers::create_layer(cls, c)->get_config().json(), c.json()) << cls;
  }
  expect_error([] { layer("RandomInvert", R"({"factor": 1.5})"); }, Code::kInvalidArgument,
               {"RandomInvert", "factor", "[0, 1]", "1.5"});
  expect_error([] { layer("RandomInvert", R"({"factor": -0.5})"); }, Code::kInvalidArgument,
               {"factor", "-0.5"});
  expect_error([] { layer("RandomSharpness", R"({"factor": [0.1, 0.2, 0.3]})"); }, Code::kInvalidArgument,
               {"RandomSharpness", "two numbers"});
  expect_error([] { layer("RandomSharpness", "{}"); }, Code::kInvalidArgument, {"factor", "required"});
  expect_error([] { layer("RandomColorDegeneration", R"({"factor": [-3, -1.5]})"); }, Code::kInvalidArgument,
               {"RandomColorDegeneration", "upper >= -1"});
  expect_error([] { layer("RandomColorDegeneration", R"({"factor": -0.2})"); }, Code::kInvalidArgument,
               {"RandomColorDegeneration", "-0.2"});
  expect_error(
      [] {
        layer("RandomGrayscale", "{}")->compute_output_shape({{-1, 8, 8, 4}});
      },
      Code::kInvalidArgument, {"RandomGrayscale", "4 channels", "3 (RGB) or 1"});
  expect_error(
      [] {
        layer("AutoContrast", "{}")->compute_output_shape({{-1, 8}});
      },
      Code::kInvalidArgument, {"AutoContrast", "rank 4"});
  EXPECT_EQ(layer("RandomColorDegeneration", R"({"factor": 1, "data_format": "channels_first"})")
                ->compute_output_shape({{-1, 3, 5, -1}})[0],
            (layers::PartialShape{-1, 3, 5, -1}));
  expect_error([] { layer("RandomShear", R"({"x_factor": -0.2})"); }, Code::kInvalidArgument,
               {"RandomShear", "x_factor", "-0.2"});
  expect_error([] { layer("RandomShear", R"({"y_factor": [0, 1.5]})"); }, Code::kInvalidArgument,
               {"y_factor", "[-1, 1]"});
  expect_error([] { layer("Solarization", R"({"threshold_factor": 2})"); }, Code::kInvalidArgument,
               {"Solarization", "threshold_factor"});
  expect_error([] { layer("AutoContrast", R"({"value_range": [1, 1]})"); }, Code::kInvalidArgument,
               {"AutoContrast", "value_range", "different"});
  expect_error([] { layer("AutoContrast", R"({"value_range": [0, 1, 2]})"); }, Code::kInvalidArgument,
               {"value_range"});
  expect_error([] { layer("AutoContrast", R"({"seed": 3})"); }, Code::kInvalidArgument, {"seed"});
  expect_error([] { layer("RandomGrayscale", R"({"factor": 1.2})"); }, Code::kInvalidArgument,
               {"RandomGrayscale", "[0, 1]"});
  for (const char *bad : {"0", "9", "2.5", "[0, 4]", "[2, 3, 4]"})
    expect_error([&] { layer("RandomPosterization", std::string(R"({"factor": )") + bad + "}"); },
                 Code::kInvalidArgument, {"RandomPosterization", "factor", "[1, 8]"});
  expect_error(
      [] {
        run(layer("AutoContrast", "{}"), ops::ones(Shape({2, 2})));
      },
      Code::kInvalidArgument, {"AutoContrast", "rank"});
}

}  // namespace
}  // namespace kiln
