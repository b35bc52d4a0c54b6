// ops::projective_transform (TF's ImageProjectiveTransformV3) and the geometric random layers
// (RandomRotation, RandomTranslation, RandomZoom): fill modes worked out from TF's definitions
// ([dcba|abcd|dcba] reflect, [abcd|abcd|abcd] wrap, nearest, constant), interpolation against a
// written-out loop, a 90-degree turn against a transposition, thread invariance, errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/threads.h"
#include "layers/layer.h"
#include "ops/image.h"
#include "ops/ops.h"
#include "test_util.h"

namespace kiln {
namespace {

using ops::FillMode;
using ops::ResizeMethod;
using testing::expect_error;
using testing::make;
using testing::make_typed;
using testing::values;

// A translation by (dx, dy): output (x, y) reads input (x - dx, y - dy).
Tensor shift(float dx, float dy) { return make({8}, {1, 0, -dx, 0, 1, -dy, 0, 0}); }

TEST(ProjectiveTransform, FillModesAsTfDefinesThem) {
  const Tensor row = make({1, 1, 4, 1}, {1, 2, 3, 4});  // a b c d
  const auto run = [&](float dx, FillMode mode) {
    return values<float>(ops::projective_transform(row, shift(dx, 0), ResizeMethod::kNearest, mode, 9));
  };
  EXPECT_EQ(run(2, FillMode::kReflect), (std::vector<float>{2, 1, 1, 2}));   // b a | a b
  EXPECT_EQ(run(2, FillMode::kWrap), (std::vector<float>{3, 4, 1, 2}));      // c d | a b
  EXPECT_EQ(run(2, FillMode::kNearest), (std::vector<float>{1, 1, 1, 2}));   // a a | a b
  EXPECT_EQ(run(2, FillMode::kConstant), (std::vector<float>{9, 9, 1, 2}));  // fill
  EXPECT_EQ(run(-3, FillMode::kReflect), (std::vector<float>{4, 4, 3, 2}));  // d | d c b
  EXPECT_EQ(run(-6, FillMode::kReflect),
            (std::vector<float>{2, 1, 1, 2}));  // d c b a | a b: past one reflection
  // TF's wrap steps by len per (len - 1) of distance: 6 maps to 6 - 4 * 2 = -2, clamped to 0.
  EXPECT_EQ(run(-3, FillMode::kWrap), (std::vector<float>{4, 1, 2, 1}));
  EXPECT_EQ(run(0, FillMode::kConstant), (std::vector<float>{1, 2, 3, 4}));
  // Bilinear: half a pixel mixes neighbours; outside (constant) the fill value takes part.
  testing::expect_near(
      ops::projective_transform(row, shift(0.5f, 0), ResizeMethod::kBilinear, FillMode::kConstant, 9),
      {5, 1.5f, 2.5f, 3.5f}, 1e-6f);
  testing::expect_near(
      ops::projective_transform(row, shift(0.5f, 0), ResizeMethod::kBilinear, FillMode::kNearest, 9),
      {1, 1.5f, 2.5f, 3.5f}, 1e-6f);
  // k = c0 x + c1 y + 1 == 0 reads the fill value; NaN transforms too.
  const Tensor one = make({1, 1, 2, 1}, {5, 6});
  EXPECT_EQ(values<float>(ops::projective_transform(one, make({8}, {1, 0, 0, 0, 1, 0, -1, 0}),
                                                    ResizeMethod::kNearest, FillMode::kReflect, 7)),
            (std::vector<float>{5, 7}));
  EXPECT_EQ(values<float>(ops::projective_transform(one, make({8}, {NAN, 0, 0, 0, 1, 0, 0, 0}),
                                                    ResizeMethod::kBilinear, FillMode::kReflect, 7)),
            (std::vector<float>{7, 7}));
  // A 1-pixel axis reads its pixel whatever the point.
  EXPECT_EQ(values<float>(ops::projective_transform(make({1, 1, 1, 1}, {3}), shift(5, 5),
                                                    ResizeMethod::kBilinear, FillMode::kWrap, 0)),
            (std::vector<float>{3}));
}

// Against a written-out bilinear loop (constant fill 0) for a general affine map, per image, in
// float64 too; the same at 1 and 2 threads.
TEST(ProjectiveTransform, BilinearLoopAndThreads) {
  const int64_t n = 3, h = 40, w = 50, c = 3;
  const Tensor x = testing::random_tensor(Shape({n, h, w, c}), 3, -1, 1);
  std::vector<float> t;
  for (int64_t b = 0; b < n; ++b) {
    const float a = 0.3f * static_cast<float>(b + 1);
    t.insert(t.end(), {std::cos(a), -std::sin(a), 3.0f, std::sin(a), std::cos(a), -2.0f, 0.001f, 0.0f});
  }
  const Tensor tt = make({n, 8}, t);
  const std::vector<float> xv = values<float>(x);
  std::vector<float> want;
  for (int64_t b = 0; b < n; ++b)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t xx = 0; xx < w; ++xx) {
        const float *m = &t[size_t(8 * b)];
        const float fx = static_cast<float>(xx), fy = static_cast<float>(y);
        const float k = m[6] * fx + m[7] * fy + 1;
        const float sx = (m[0] * fx + m[1] * fy + m[2]) / k, sy = (m[3] * fx + m[4] * fy + m[5]) / k;
        const float x0 = std::floor(sx), y0 = std::floor(sy);
        for (int64_t ch = 0; ch < c; ++ch) {
          const auto at = [&](float r, float col) {
            const auto ri = static_cast<int64_t>(r), ci = static_cast<int64_t>(col);
            return ri >= 0 && ri < h && ci >= 0 && ci < w ? xv[size_t(((b * h + ri) * w + ci) * c + ch)]
                                                          : 0.0f;
          };
          const float top = (x0 + 1 - sx) * at(y0, x0) + (sx - x0) * at(y0, x0 + 1);
          const float bottom = (x0 + 1 - sx) * at(y0 + 1, x0) + (sx - x0) * at(y0 + 1, x0 + 1);
          want.push_back((y0 + 1 - sy) * top + (sy - y0) * bottom);
        }
      }
  set_num_threads(1);
  const Tensor one = ops::projective_transform(x, tt, ResizeMethod::kBilinear, FillMode::kConstant, 0);
  set_num_threads(2);
  const Tensor two = ops::projective_transform(x, tt, ResizeMethod::kBilinear, FillMode::kConstant, 0);
  EXPECT_EQ(values<float>(one), want);
  EXPECT_EQ(values<float>(two), want);
  const Tensor d = ops::projective_transform(ops::cast(x, DType::kFloat64), tt, ResizeMethod::kBilinear,
                                             FillMode::kConstant, 0);
  EXPECT_EQ(d.dtype(), DType::kFloat64);
  testing::expect_near(ops::cast(d, DType::kFloat32), want, 1e-5f);
  const Tensor bf = ops::projective_transform(ops::cast(x, DType::kBFloat16), tt, ResizeMethod::kNearest,
                                              FillMode::kReflect, 0);
  EXPECT_EQ(bf.dtype(), DType::kBFloat16);

  expect_error(
      [&] {
        ops::projective_transform(x, make({2, 8}, std::vector<float>(16)), ResizeMethod::kBilinear,
                                  FillMode::kConstant, 0);
      },
      Code::kInvalidArgument, {"projective_transform", "[3, 8]"});
  // Integers compute in float32 and truncate back, as TF's T(value): nearest reads exact pixels.
  const Tensor ints =
      ops::projective_transform(ops::cast(ops::mul(x, ops::fill(Shape({}), 100.0)), DType::kInt32), tt,
                                ResizeMethod::kNearest, FillMode::kConstant, 0);
  EXPECT_EQ(ints.dtype(), DType::kInt32);
  EXPECT_EQ(
      values<int32_t>(ints),
      values<int32_t>(ops::cast(
          ops::projective_transform(
              ops::cast(ops::cast(ops::mul(x, ops::fill(Shape({}), 100.0)), DType::kInt32), DType::kFloat32),
              tt, ResizeMethod::kNearest, FillMode::kConstant, 0),
          DType::kInt32)));
  expect_error(
      [&] {
        ops::projective_transform(ops::cast(x, DType::kBool), tt, ResizeMethod::kBilinear,
                                  FillMode::kConstant, 0);
      },
      Code::kInvalidArgument, {"numbers (not bool)"});
  expect_error(
      [&] {
        ops::projective_transform(make({4}, {1, 2, 3, 4}), tt, ResizeMethod::kBilinear, FillMode::kConstant,
                                  0);
      },
      Code::kInvalidArgument, {"rank 4"});
}

// The layers with a fixed draw (lower == upper): a quarter turn is NumPy's rot90, a translation by
// a quarter of the height a shift, a zoom of 0.5 reads the centre at half steps; outside training
// the images as float32.
TEST(ProjectiveTransform, GeometricRandomLayers) {
  std::vector<float> px;
  for (int i = 0; i < 25; ++i) px.push_back(static_cast<float>(i));
  const Tensor x = make({1, 5, 5, 1}, px);
  layers::CallContext train;
  train.training = true;
  const auto make_layer = [](const char *cls, const std::string &json) {
    return layers::create_layer(cls, Config::from_json(json));
  };
  layers::LayerPtr turn =
      make_layer("RandomRotation", R"({"factor": [0.25, 0.25], "interpolation": "nearest"})");
  std::vector<float> rot90;  // out[y][x] = in[x][4 - y]
  for (int y = 0; y < 5; ++y)
    for (int xx = 0; xx < 5; ++xx) rot90.push_back(px[size_t(xx * 5 + (4 - y))]);
  EXPECT_EQ(values<float>((*turn)({x}, train)[0]), rot90);
  EXPECT_EQ(values<float>((*turn)({x}, layers::CallContext())[0]), px);

  layers::LayerPtr down = make_layer(
      "RandomTranslation", R"({"height_factor": [0.4, 0.4], "width_factor": 0, "fill_mode": "constant"})");
  std::vector<float> shifted(10, 0.0f);  // two rows down, zeros above
  shifted.insert(shifted.end(), px.begin(), px.begin() + 15);
  EXPECT_EQ(values<float>((*down)({x}, train)[0]), shifted);

  layers::LayerPtr zoom = make_layer("RandomZoom", R"({"height_factor": [-0.5, -0.5]})");
  // zoom 0.5 about (2, 2): output (x, y) reads (0.5 x + 1, 0.5 y + 1)
  std::vector<float> zoomed;
  for (int y = 0; y < 5; ++y)
    for (int xx = 0; xx < 5; ++xx) zoomed.push_back(5.0f * (0.5f * y + 1) + (0.5f * xx + 1));
  testing::expect_near((*zoom)({x}, train)[0], zoomed, 1e-5f);
  EXPECT_TRUE(zoom->get_config().is_null("width_factor"));
  EXPECT_EQ(zoom->get_config().get_float_list("height_factor"), (std::vector<double>{-0.5, -0.5}));

  // Random draws: per image, within range (the quarter of a batch of zeros-but-one images moved).
  const Tensor batch = ops::ones(Shape({16, 6, 6, 2}));
  const Tensor moved = (*make_layer(
      "RandomTranslation", R"({"height_factor": 0.5, "width_factor": 0.5, "fill_mode": "constant"})"))(
      {batch}, train)[0];
  const std::vector<float> mv = values<float>(moved);
  EXPECT_LT(*std::min_element(mv.begin(), mv.end()), 1.0f);

  expect_error([&] { make_layer("RandomRotation", R"({"factor": 1.5})"); }, Code::kInvalidArgument,
               {"RandomRotation", "factor", "[-1, 1]"});
  expect_error([&] { make_layer("RandomZoom", R"({"height_factor": -1})"); }, Code::kInvalidArgument,
               {"RandomZoom", "(-1, 1]"});
  expect_error([&] { make_layer("RandomTranslation", R"({"height_factor": 0.1})"); }, Code::kInvalidArgument,
               {"width_factor", "required"});
  expect_error([&] { make_layer("RandomRotation", R"({"factor": [0.1]})"); }, Code::kInvalidArgument,
               {"two numbers", "[0.1]"});
  expect_error([&] { make_layer("RandomRotation", R"({"factor": 0.1, "seed": -5})"); },
               Code::kInvalidArgument, {"RandomRotation", "seed", ">= 0", "-5"});
  expect_error([&] { make_layer("Dropout", R"({"rate": 0.1, "seed": -1})"); }, Code::kInvalidArgument,
               {"seed"});
  expect_error([&] { make_layer("RandomRotation", R"({"factor": 0.1, "fill_mode": "mirror"})"); },
               Code::kInvalidArgument, {"'mirror'"});
  expect_error([&] { make_layer("RandomRotation", R"({"factor": 0.1, "interpolation": "cubic"})"); },
               Code::kInvalidArgument, {"'cubic'"});
}

// The homography of Keras's compute_homography_matrix: the identity for equal points, a known transform
// recovered from the points it moves, a shift as projective_transform's; the points apply per image or to
// all.
TEST(PerspectiveTransform, HomographyAsKeras) {
  const std::array<float, 8> corners = {0, 0, 4, 0, 0, 4, 4, 4};
  const auto same = ops::homography(corners, corners);
  ASSERT_TRUE(same);
  for (size_t i = 0; i < 8; ++i) EXPECT_NEAR((*same)[i], (i == 0 || i == 4) ? 1.0f : 0.0f, 1e-6f) << i;

  // A known transform h: each end point e reads start point h(e); solved back from the four pairs.
  const std::array<double, 8> h = {1.1, 0.1, 0.5, 0.05, 0.9, 0.2, 0.01, 0.02};
  const std::array<float, 8> end = {0.5f, 0.25f, 4.5f, -0.5f, -0.25f, 3.5f, 4.25f, 4.75f};
  std::array<float, 8> start{};
  for (size_t p = 0; p < 4; ++p) {
    const double x = end[2 * p], y = end[2 * p + 1], k = h[6] * x + h[7] * y + 1;
    start[2 * p] = static_cast<float>((h[0] * x + h[1] * y + h[2]) / k);
    start[2 * p + 1] = static_cast<float>((h[3] * x + h[4] * y + h[5]) / k);
  }
  const auto solved = ops::homography(start, end);
  ASSERT_TRUE(solved);
  for (size_t i = 0; i < 8; ++i) EXPECT_NEAR((*solved)[i], h[i], 2e-6) << i;

  std::vector<float> px;
  for (int i = 0; i < 25; ++i) px.push_back(static_cast<float>(i) - 3.5f);
  const Tensor x = make({1, 5, 5, 1}, px);
  const auto points = [](const std::array<float, 8> &p) {
    return make({4, 2}, std::vector<float>(p.begin(), p.end()));
  };
  // Every end point one to the right of its start: output (x, y) reads (x - 1, y), zeros brought in.
  std::array<float, 8> right = corners;
  for (size_t p = 0; p < 4; ++p) right[2 * p] += 1;
  EXPECT_EQ(values<float>(
                ops::perspective_transform(x, points(corners), points(right), ResizeMethod::kBilinear, 0)),
            values<float>(
                ops::projective_transform(x, shift(1, 0), ResizeMethod::kBilinear, FillMode::kConstant, 0)));
  // The known transform, against projective_transform through it; per image, and rank-3 images.
  const Tensor through = make({8}, std::vector<float>(solved->begin(), solved->end()));
  const Tensor expected =
      ops::projective_transform(x, through, ResizeMethod::kNearest, FillMode::kConstant, 7);
  EXPECT_EQ(
      values<float>(ops::perspective_transform(x, points(start), points(end), ResizeMethod::kNearest, 7)),
      values<float>(expected));
  const Tensor two = ops::concat({x, x}, 0);
  const Tensor starts = ops::stack({points(corners), points(start)}, 0),
               ends = ops::stack({points(corners), points(end)}, 0);
  const Tensor both = ops::perspective_transform(two, starts, ends, ResizeMethod::kNearest, 7);
  std::vector<float> want = px;
  const std::vector<float> e = values<float>(expected);
  want.insert(want.end(), e.begin(), e.end());
  EXPECT_EQ(values<float>(both), want);
  EXPECT_EQ(values<float>(ops::perspective_transform(ops::squeeze(x, {0}), points(start), points(end),
                                                     ResizeMethod::kNearest, 7)),
            e);

  // TF's kernel reads fill_value as a float32, truncated for integer images: 9.9 is 9 for uint8, so the
  // corner reading three fill neighbours and one 0 is trunc(0.75 * 9) = 6.
  const Tensor zeros8 = make_typed<uint8_t>({1, 2, 2, 1}, {0, 0, 0, 0});
  const Tensor half = make({8}, {1, 0, -0.5f, 0, 1, -0.5f, 0, 0});
  EXPECT_EQ(values<uint8_t>(
                ops::projective_transform(zeros8, half, ResizeMethod::kBilinear, FillMode::kConstant, 9.9)),
            (std::vector<uint8_t>{6, 4, 4, 0}));
  EXPECT_EQ(values<double>(ops::projective_transform(ops::cast(zeros8, DType::kFloat64), shift(1, 0),
                                                     ResizeMethod::kNearest, FillMode::kConstant, 0.1))[0],
            static_cast<double>(0.1f));
  // Out of the type's range the fill is clamped to the widest float it holds, not wrapped.
  EXPECT_EQ(values<int32_t>(ops::projective_transform(make_typed<int32_t>({1, 1, 2, 1}, {0, 0}), shift(1, 0),
                                                      ResizeMethod::kNearest, FillMode::kConstant, 1e10))[0],
            2147483520);
  EXPECT_EQ(values<uint8_t>(ops::projective_transform(zeros8, shift(1, 0), ResizeMethod::kNearest,
                                                      FillMode::kConstant, -1.5))[0],
            0);
  std::array<float, 8> not_finite = end;
  not_finite[3] = std::nanf("");
  expect_error(
      [&] { ops::perspective_transform(x, points(corners), points(not_finite), ResizeMethod::kBilinear, 0); },
      Code::kInvalidArgument, {"perspective_transform", "image 0", "NaN or an infinity"});
  const std::array<float, 8> line = {0, 0, 1, 1, 2, 2, 3, 4};
  EXPECT_FALSE(ops::homography(corners, line));
  expect_error(
      [&] { ops::perspective_transform(x, points(corners), points(line), ResizeMethod::kBilinear, 0); },
      Code::kInvalidArgument, {"perspective_transform", "image 0", "singular"});
  expect_error(
      [&] {
        ops::perspective_transform(x, make({4, 3}, std::vector<float>(12, 0)), points(end),
                                   ResizeMethod::kBilinear, 0);
      },
      Code::kInvalidArgument, {"start_points", "[4, 2]", "[N, 4, 2]"});
  expect_error([&] { ops::perspective_transform(x, starts, points(end), ResizeMethod::kBilinear, 0); },
               Code::kInvalidArgument, {"same shape"});
  expect_error(
      [&] {
        ops::perspective_transform(ops::concat({two, x}, 0), starts, ends, ResizeMethod::kBilinear, 0);
      },
      Code::kInvalidArgument, {"start_points", "2 images", "holds 3"});
  expect_error(
      [&] {
        ops::perspective_transform(make({5, 5}, px), points(corners), points(end), ResizeMethod::kBilinear,
                                   0);
      },
      Code::kInvalidArgument, {"projective_transform", "rank"});
}

// keras.layers.RandomPerspective: the corner (0, 0) stays; factor 0 or inference keeps every image as it
// is (a NaN stays where it was); images of one row have no transform and are kept; configs, errors.
TEST(PerspectiveTransform, RandomPerspectiveLayer) {
  const auto make_layer = [](const std::string &json) {
    return layers::create_layer("RandomPerspective", Config::from_json(json));
  };
  layers::CallContext train;
  train.training = true;
  std::vector<float> px;
  for (int i = 0; i < 4 * 36; ++i) px.push_back(static_cast<float>((i * 7) % 11));
  px[5] = std::nanf("");
  const Tensor x = make({4, 6, 6, 1}, px);
  const auto same_bits = [](const std::vector<float> &a, const std::vector<float> &b) {
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i)
      EXPECT_TRUE(a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i]))) << i << ": " << a[i] << " " << b[i];
  };
  same_bits(values<float>((*make_layer(R"({"factor": 0})"))({x}, train)[0]), px);
  layers::LayerPtr always = make_layer(R"({"factor": [1, 1], "seed": 5})");
  same_bits(values<float>((*always)({x}, layers::CallContext())[0]), px);
  int changed = 0;
  for (int call = 0; call < 5; ++call) {
    const std::vector<float> y = values<float>((*always)({x}, train)[0]);
    for (int i = 1; i < 4; ++i) {
      EXPECT_EQ(y[size_t(i * 36)], px[size_t(i * 36)]);  // the corner (0, 0) is a fixed point
      changed += !std::equal(y.begin() + i * 36, y.begin() + (i + 1) * 36, px.begin() + i * 36);
    }
  }
  EXPECT_EQ(changed, 15);
  // scale 0 moves no corner: every image is resampled through the identity, so finite images stay.
  const Tensor finite = make({1, 6, 6, 1}, std::vector<float>(px.begin() + 36, px.begin() + 72));
  EXPECT_EQ(values<float>((*make_layer(R"({"scale": 0})"))({finite}, train)[0]), values<float>(finite));
  // About half the images at factor [0.5, 0.5].
  const Tensor many = ops::random_uniform(Shape({200, 4, 4, 1}), 0, 1, 3);
  const std::vector<float> in = values<float>(many),
                           out = values<float>((*make_layer(R"({"factor": [0.5, 0.5]})"))({many}, train)[0]);
  int kept = 0;
  for (int i = 0; i < 200; ++i)
    kept += std::equal(in.begin() + i * 16, in.begin() + (i + 1) * 16, out.begin() + i * 16);
  EXPECT_GT(kept, 70);
  EXPECT_LT(kept, 130);
  const Tensor row = make({2, 1, 6, 1}, std::vector<float>(px.begin(), px.begin() + 12));
  same_bits(values<float>((*always)({row}, train)[0]), std::vector<float>(px.begin(), px.begin() + 12));

  const Config c = make_layer(R"({"factor": 0.4, "scale": 0.5, "interpolation": "nearest", "fill_value": 2})")
                       ->get_config();
  EXPECT_EQ(c.get_float_list("factor"), (std::vector<double>{0, 0.4}));
  EXPECT_EQ(c.get_float("scale"), 0.5);
  EXPECT_FALSE(c.has("fill_mode"));
  EXPECT_EQ(layers::create_layer("RandomPerspective", c)->get_config().json(), c.json());
  expect_error([&] { make_layer(R"({"scale": 1.5})"); }, Code::kInvalidArgument,
               {"RandomPerspective", "scale", "[0, 1]"});
  expect_error([&] { make_layer(R"({"factor": 1.5})"); }, Code::kInvalidArgument,
               {"RandomPerspective", "factor"});
  expect_error([&] { make_layer(R"({"fill_mode": "constant"})"); }, Code::kInvalidArgument, {"fill_mode"});
  expect_error([&] { make_layer(R"({"interpolation": "cubic"})"); }, Code::kInvalidArgument, {"'cubic'"});
}

}  // namespace
}  // namespace kiln
