// summary/histogram (TensorBoard 2.13's `_buckets`, expected values worked out by hand from its
// float64 arithmetic) and summary/image_encode (tf.summary.image's [width, height, png...] with
// tf.image.convert_image_dtype's float conversion).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "io/png.h"
#include "summary/histogram.h"
#include "summary/image_encode.h"
#include "test_util.h"

namespace kiln {
namespace {

using summary::histogram_buckets;
using summary::image_strings;
using testing::expect_error;
using testing::make_typed;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

Tensor doubles(const std::vector<double> &v) {
  return make_typed<double>(Shape{static_cast<int64_t>(v.size())}, v);
}

// Bit-for-bit comparison (NaN equal to NaN), since TensorBoard's edges are compared exactly.
void expect_buckets(const std::vector<double> &got, const std::vector<double> &want,
                    const std::string &what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i) {
    if (std::isnan(want[i])) {
      EXPECT_TRUE(std::isnan(got[i])) << what << " element " << i << " is " << got[i];
    } else {
      EXPECT_EQ(std::memcmp(&got[i], &want[i], sizeof(double)), 0)
          << what << " element " << i << ": " << got[i] << " != " << want[i];
    }
  }
}

double count_sum(const std::vector<double> &rows) {
  double s = 0;
  for (size_t i = 2; i < rows.size(); i += 3) s += rows[i];
  return s;
}

TEST(SummaryHistogram, HandComputedBuckets) {
  // min 0, max 4, k 4: width 1; 4 falls in bucket floor(4) = 4, clamped to 3.
  expect_buckets(histogram_buckets(doubles({0, 1, 1.5, 2, 3.99, 4}), 4), {0, 1, 1, 1, 2, 2, 2, 3, 1, 3, 4, 2},
                 "0..4 in 4");
  // Unsorted, negative: min -1, max 2, k 3: width 1; edges -1, -1 + 1*1, -1 + 1*2, 2.
  expect_buckets(histogram_buckets(doubles({2, -1, 0.5, -0.5, 1, 2}), 3), {-1, 0, 2, 0, 1, 1, 1, 2, 3},
                 "-1..2 in 3");
  // Edges are min + width * i, rounded twice, not linspace's exact decimals: 0.1 .. 0.7 in 3.
  const double lo = 0.1, hi = 0.7, w = (hi - lo) / 3;
  const std::vector<double> got = histogram_buckets(doubles({0.1, 0.3, 0.5, 0.7}), 3);
  const double e1 = lo + w * 1, e2 = lo + w * 2;
  // Buckets: floor((x - 0.1) / w) = 0 for 0.1; 0.3 -> (0.19999999999999998 / 0.19999999999999998) = 1;
  // 0.5 -> 0.4 / w = 2.0000000000000004 -> 2; 0.7 -> 3 clamped to 2.
  expect_buckets(got, {lo, e1, 1, e1, e2, 1, e2, hi, 2}, "0.1..0.7 in 3");
  EXPECT_EQ(count_sum(got), 4);
}

TEST(SummaryHistogram, DefaultThirtyBucketsSumToTheElementCount) {
  std::vector<double> v;
  for (int i = 0; i < 1000; ++i) v.push_back(std::sin(i * 0.37) * 3.0 + i * 1e-3);
  const std::vector<double> rows = histogram_buckets(doubles(v), 30);
  ASSERT_EQ(rows.size(), 90u);
  EXPECT_EQ(count_sum(rows), 1000);
  double lo = v[0], hi = v[0];
  for (double x : v) lo = std::min(lo, x), hi = std::max(hi, x);
  EXPECT_EQ(rows[0], lo);
  EXPECT_EQ(rows[89 - 1], hi);  // the last right edge is exactly max
  for (int i = 0; i + 1 < 30; ++i) EXPECT_EQ(rows[3 * i + 1], rows[3 * (i + 1)]) << i;  // edges shared
  const double width = (hi - lo) / 30;
  for (int i = 1; i < 30; ++i) EXPECT_EQ(rows[3 * i], lo + width * i) << i;
}

TEST(SummaryHistogram, EmptyDataGivesZeroRows) {
  expect_buckets(histogram_buckets(doubles({}), 3), std::vector<double>(9, 0.0), "empty");
  expect_buckets(histogram_buckets(make_typed<float>(Shape{0, 5}, {}), 30), std::vector<double>(90, 0.0),
                 "empty [0, 5]");
}

TEST(SummaryHistogram, SingleDistinctValue) {
  expect_buckets(histogram_buckets(doubles({2.5, 2.5, 2.5}), 4),
                 {2.5, 2.5, 0, 2.5, 2.5, 0, 2.5, 2.5, 0, 2.5, 2.5, 3}, "three 2.5s");
  expect_buckets(histogram_buckets(doubles({-7}), 1), {-7, -7, 1}, "one value, k 1");
}

TEST(SummaryHistogram, OneBucket) {
  expect_buckets(histogram_buckets(doubles({3, -1, 0, 5}), 1), {-1, 5, 4}, "k 1");
}

TEST(SummaryHistogram, ZeroOrNegativeBucketCountGivesNoRows) {
  // TensorBoard: "Treat a negative bucket count as zero", and zero buckets are a [0, 3] tensor.
  EXPECT_TRUE(histogram_buckets(doubles({1, 2, 3}), 0).empty());
  EXPECT_TRUE(histogram_buckets(doubles({1, 2, 3}), -5).empty());
  EXPECT_TRUE(histogram_buckets(doubles({}), 0).empty());
}

TEST(SummaryHistogram, BucketCountAboveInt32IsInvalid) {
  expect_error([] { histogram_buckets(doubles({1}), int64_t{1} << 31); }, Code::kInvalidArgument,
               {"summary.histogram: bucket_count is 2147483648", "expected at most 2147483647"});
  expect_error([] { histogram_buckets(Tensor(), 30); }, Code::kInvalidArgument,
               {"summary.histogram", "undefined"});
}

TEST(SummaryHistogram, EveryDtypeIsCastToFloat64) {
  const std::vector<double> want = {0, 1, 1, 1, 2, 1, 2, 3, 3};  // {0, 1, 3, 2, 3} in 3 buckets of 1
  expect_buckets(histogram_buckets(make_typed<int32_t>(Shape{5}, {0, 1, 3, 2, 3}), 3), want, "int32");
  expect_buckets(histogram_buckets(make_typed<int64_t>(Shape{5}, {0, 1, 3, 2, 3}), 3), want, "int64");
  expect_buckets(histogram_buckets(make_typed<uint8_t>(Shape{5}, {0, 1, 3, 2, 3}), 3), want, "uint8");
  expect_buckets(histogram_buckets(make_typed<float>(Shape{5}, {0, 1, 3, 2, 3}), 3), want, "float32");
  const std::vector<bfloat16> b = {bfloat16(0.f), bfloat16(1.f), bfloat16(3.f), bfloat16(2.f), bfloat16(3.f)};
  expect_buckets(histogram_buckets(make_typed<bfloat16>(Shape{5}, b), 3), want, "bfloat16");
  // bool: false 0, true 1; k 2, width 0.5.
  expect_buckets(histogram_buckets(testing::make_bool(Shape{4}, {1, 0, 1, 1}), 2), {0, 0.5, 1, 0.5, 1, 3},
                 "bool");
  // float32 values become float64 exactly (0.1f is not 0.1).
  const std::vector<double> got = histogram_buckets(make_typed<float>(Shape{2}, {0.1f, 0.2f}), 1);
  expect_buckets(got, {static_cast<double>(0.1f), static_cast<double>(0.2f), 2}, "float32 0.1f");
  // Large int64 values round to the nearest double, as tf.cast does.
  const int64_t big = (int64_t{1} << 53) + 1;
  expect_buckets(histogram_buckets(make_typed<int64_t>(Shape{2}, {big, big - 1}), 2),
                 {9007199254740992.0, 9007199254740992.0, 0, 9007199254740992.0, 9007199254740992.0, 2},
                 "2^53 + 1 and 2^53 are one double");
}

TEST(SummaryHistogram, NaNMakesEveryEdgeNaNAndEveryCountZero) {
  // TF's reduce_min/max propagate NaN; floor(NaN) cast to int32 is INT32_MIN, which one_hot drops.
  expect_buckets(histogram_buckets(doubles({1, kNaN, 3}), 2), {kNaN, kNaN, 0, kNaN, kNaN, 0}, "with NaN");
  expect_buckets(histogram_buckets(doubles({kNaN}), 1), {kNaN, kNaN, 0}, "only NaN");
  expect_buckets(histogram_buckets(make_typed<float>(Shape{2}, {std::nanf(""), 1.f}), 1), {kNaN, kNaN, 0},
                 "float32 NaN");
}

TEST(SummaryHistogram, Infinities) {
  // max +inf: width inf; finite offsets / inf = 0 -> bucket 0; inf / inf = NaN -> dropped.
  // Edges: min, then min + inf * i = inf, then max = inf.
  expect_buckets(histogram_buckets(doubles({1, 2, kInf, 5}), 3), {1, kInf, 3, kInf, kInf, 0, kInf, kInf, 0},
                 "+inf");
  // min -inf: every offset is inf (finite - -inf) or NaN (-inf - -inf): nothing counted.
  // Edges: -inf, -inf + inf = NaN, max.
  expect_buckets(histogram_buckets(doubles({-kInf, 0, 2}), 2), {-kInf, kNaN, 0, kNaN, 2, 0}, "-inf");
  // Both: range inf; offsets inf or NaN: nothing counted.
  expect_buckets(histogram_buckets(doubles({-kInf, 0, kInf}), 2), {-kInf, kNaN, 0, kNaN, kInf, 0}, "both");
  // All +inf: inf - inf = NaN is not 0, so not the single-value case; nothing counted.
  expect_buckets(histogram_buckets(doubles({kInf, kInf}), 2), {kInf, kNaN, 0, kNaN, kInf, 0}, "all +inf");
  // A finite range that overflows: -1e308 .. 1e308, range inf. Offsets of -1e308 and 0 are finite
  // (bucket 0); 1e308 - -1e308 overflows to inf and is dropped.
  expect_buckets(histogram_buckets(doubles({-1e308, 0, 1e308}), 2), {-1e308, kInf, 2, kInf, 1e308, 0},
                 "overflowing range");
}

TEST(SummaryHistogram, WidthUnderflowingToZeroDropsEverything) {
  // Range of one subnormal over 3 buckets: width 0, offsets / 0 are NaN (0/0) or inf.
  const double tiny = std::numeric_limits<double>::denorm_min();
  expect_buckets(histogram_buckets(doubles({0, tiny}), 3), {0, 0, 0, 0, 0, 0, 0, tiny, 0}, "subnormal");
}

// ---- real TensorFlow 2.13 output (../shared/fixtures, skipped when absent) ----

// Just enough protobuf wire format to walk Event{summary=5 {value=1 {tag=1, tensor=8 {dtype=1,
// tensor_shape=2, tensor_content=4, string_val=8}}}} in a TFRecord file; CRCs are not checked.
struct Field {
  uint32_t number = 0;
  uint64_t varint = 0;
  std::string bytes;
};

bool read_varint(const std::string &b, size_t &i, uint64_t &v) {
  v = 0;
  for (int shift = 0; i < b.size() && shift < 64; shift += 7) {
    const auto c = static_cast<uint8_t>(b[i++]);
    v |= static_cast<uint64_t>(c & 0x7f) << shift;
    if (c < 0x80) return true;
  }
  return false;
}

std::vector<Field> parse_fields(const std::string &b) {
  std::vector<Field> out;
  size_t i = 0;
  uint64_t key = 0;
  while (i < b.size() && read_varint(b, i, key)) {
    Field f;
    f.number = static_cast<uint32_t>(key >> 3);
    const int type = static_cast<int>(key & 7);
    if (type == 0) {
      if (!read_varint(b, i, f.varint)) break;
    } else if (type == 1 || type == 5) {
      const size_t n = type == 1 ? 8 : 4;
      if (b.size() - i < n) break;
      f.bytes = b.substr(i, n);
      i += n;
    } else if (type == 2) {
      uint64_t n = 0;
      if (!read_varint(b, i, n) || b.size() - i < n) break;
      f.bytes = b.substr(i, static_cast<size_t>(n));
      i += static_cast<size_t>(n);
    } else {
      break;
    }
    out.push_back(std::move(f));
  }
  return out;
}

struct TensorValue {
  std::string tag;
  int dtype = 0;
  std::vector<int64_t> dims;
  std::string content;
  std::vector<std::string> strings;
};

std::vector<TensorValue> tensor_values(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string file = ss.str();
  std::vector<TensorValue> out;
  for (size_t at = 0; file.size() - at >= 16;) {
    uint64_t n = 0;
    std::memcpy(&n, file.data() + at, 8);
    if (n > file.size() - at - 16) break;
    for (const Field &ev : parse_fields(file.substr(at + 12, static_cast<size_t>(n)))) {
      if (ev.number != 5) continue;
      for (const Field &value : parse_fields(ev.bytes)) {
        if (value.number != 1) continue;
        TensorValue tv;
        for (const Field &vf : parse_fields(value.bytes)) {
          if (vf.number == 1) tv.tag = vf.bytes;
          if (vf.number != 8) continue;
          for (const Field &tf : parse_fields(vf.bytes)) {
            if (tf.number == 1) tv.dtype = static_cast<int>(tf.varint);
            if (tf.number == 4) tv.content = tf.bytes;
            if (tf.number == 8) tv.strings.push_back(tf.bytes);
            if (tf.number == 2)
              for (const Field &dim : parse_fields(tf.bytes))
                if (dim.number == 2)
                  for (const Field &size : parse_fields(dim.bytes))
                    if (size.number == 1) tv.dims.push_back(static_cast<int64_t>(size.varint));
          }
        }
        if (tv.dtype != 0) out.push_back(std::move(tv));
      }
    }
    at += 12 + static_cast<size_t>(n) + 4;
  }
  return out;
}

std::string fixture_path(const std::string &relative) {
  return testing::source_dir() + "/../shared/fixtures/" + relative;
}

std::string first_file(const std::string &dir, const std::string &suffix) {
  if (!std::filesystem::is_directory(dir)) return "";
  for (const auto &entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().string();
    if (name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
      return name;
  }
  return "";
}

TEST(SummaryHistogram, EdgesMatchTensorFlowBitForBit) {
  // Keras's TensorBoard callback (TF 2.13) wrote weight histograms, not the weights; but the edges
  // depend only on min, max and k, so data {min, max} must give exactly TensorFlow's edges.
  const std::string path = first_file(fixture_path("tf2_events"), ".0.v2");
  if (path.empty()) GTEST_SKIP() << "fixture ../shared/fixtures/tf2_events is absent";
  int checked = 0;
  for (const TensorValue &tv : tensor_values(path)) {
    if (tv.dtype != 2 || tv.dims.size() != 2 || tv.dims[1] != 3) continue;
    const int64_t k = tv.dims[0];
    ASSERT_EQ(tv.content.size(), static_cast<size_t>(k * 3) * sizeof(double)) << tv.tag;
    std::vector<double> tf(static_cast<size_t>(k * 3));
    std::memcpy(tf.data(), tv.content.data(), tv.content.size());
    const double lo = tf[0], hi = tf[static_cast<size_t>(3 * k - 2)];
    const std::vector<double> ours = histogram_buckets(doubles({hi, lo}), k);
    ASSERT_EQ(ours.size(), tf.size());
    double total = 0;
    for (int64_t i = 0; i < k; ++i) {
      const auto row = static_cast<size_t>(3 * i);
      EXPECT_EQ(std::memcmp(&ours[row], &tf[row], 2 * sizeof(double)), 0)
          << tv.tag << " bucket " << i << ": ours [" << ours[row] << ", " << ours[row + 1]
          << "], TensorFlow [" << tf[row] << ", " << tf[row + 1] << "]";
      EXPECT_EQ(tf[row + 2], std::floor(tf[row + 2])) << tv.tag;
      total += tf[row + 2];
    }
    EXPECT_GT(total, 0) << tv.tag;
    ++checked;
  }
  EXPECT_GT(checked, 100);
}

TEST(SummaryImage, DecodesTensorFlowsPngs) {
  // tf.summary.image output of a TF 2.13 run: [width, height, png], gray weight images.
  const std::string path = first_file(
      fixture_path(
          "events_other_writers/TheCodeheadMT-TensorBoard-Tutorial/MNIST-extra-metrics1690486849/train"),
      ".v2");
  if (path.empty()) GTEST_SKIP() << "fixture ../shared/fixtures/events_other_writers is absent";
  int checked = 0;
  for (const TensorValue &tv : tensor_values(path)) {
    if (tv.dtype != 7 || tv.strings.size() < 3 || tv.strings[2].compare(0, 4, "\x89PNG") != 0) continue;
    for (size_t i = 2; i < tv.strings.size(); ++i) {
      const io::png::Image image = io::png::decode(tv.strings[i]);
      EXPECT_EQ(std::to_string(image.width), tv.strings[0]) << tv.tag;
      EXPECT_EQ(std::to_string(image.height), tv.strings[1]) << tv.tag;
      EXPECT_EQ(image.pixels.size(), static_cast<size_t>(image.width * image.height * image.channels));
      // Our encoder round-trips TensorFlow's pixels.
      const std::string again =
          io::png::encode(image.pixels.data(), image.height, image.width, image.channels);
      EXPECT_TRUE(io::png::decode(again).pixels == image.pixels) << tv.tag;
      ++checked;
    }
    if (checked >= 12) break;  // enough; the file has 40
  }
  EXPECT_GE(checked, 12);
}

// ---- image_strings ----

Tensor images_u8(const Shape &shape, const std::vector<uint8_t> &v) { return make_typed<uint8_t>(shape, v); }

TEST(SummaryImage, WidthFirstThenHeightThenPngs) {
  std::vector<uint8_t> pixels(2 * 3 * 5 * 3);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i * 7);
  const std::vector<std::string> out = image_strings(images_u8(Shape{2, 3, 5, 3}, pixels), 3);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0], "5");  // width
  EXPECT_EQ(out[1], "3");  // height
  for (int i = 0; i < 2; ++i) {
    const io::png::Image image = io::png::decode(out[static_cast<size_t>(2 + i)]);
    EXPECT_EQ(image.height, 3);
    EXPECT_EQ(image.width, 5);
    EXPECT_EQ(image.channels, 3);
    EXPECT_TRUE(image.pixels == std::vector<uint8_t>(pixels.begin() + i * 45, pixels.begin() + (i + 1) * 45))
        << i;
  }
}

TEST(SummaryImage, MaxOutputsLimitsTheImages) {
  const std::vector<uint8_t> pixels(4 * 2 * 2 * 1, 9);
  const Tensor t = images_u8(Shape{4, 2, 2, 1}, pixels);
  EXPECT_EQ(image_strings(t, 3).size(), 5u);
  EXPECT_EQ(image_strings(t, 4).size(), 6u);
  EXPECT_EQ(image_strings(t, 100).size(), 6u);
  EXPECT_EQ(image_strings(t, 1).size(), 3u);
  // 0 is allowed (TensorBoard asserts max_outputs >= 0): just the dimensions.
  EXPECT_EQ(image_strings(t, 0), (std::vector<std::string>{"2", "2"}));
  expect_error([&] { image_strings(t, -1); }, Code::kInvalidArgument,
               {"summary.image: max_outputs is -1", "expected >= 0"});
}

TEST(SummaryImage, NoImagesGiveJustTheDimensions) {
  EXPECT_EQ(image_strings(images_u8(Shape{0, 7, 4, 3}, {}), 3), (std::vector<std::string>{"4", "7"}));
  // Nothing to encode, so zero-sized images are fine too.
  EXPECT_EQ(image_strings(make_typed<float>(Shape{0, 0, 6, 1}, {}), 3), (std::vector<std::string>{"6", "0"}));
  expect_error(
      [] {
        image_strings(images_u8(Shape{1, 0, 4, 3}, {}), 3);
      },
      Code::kInvalidArgument, {"summary.image", "height 0 and width 4", "expected both >= 1"});
}

TEST(SummaryImage, EveryChannelCount) {
  for (int64_t c = 1; c <= 4; ++c) {
    std::vector<uint8_t> pixels(static_cast<size_t>(3 * 2 * c));
    for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(40 * i + 3);
    const auto out = image_strings(images_u8(Shape{1, 3, 2, c}, pixels), 3);
    ASSERT_EQ(out.size(), 3u);
    const io::png::Image image = io::png::decode(out[2]);
    EXPECT_EQ(image.channels, c);
    EXPECT_TRUE(image.pixels == pixels) << c;
  }
}

std::vector<uint8_t> converted(const Tensor &t) {
  const auto out = image_strings(t, 1);
  EXPECT_EQ(out.size(), 3u);
  return io::png::decode(out.at(2)).pixels;
}

TEST(SummaryImage, FloatConversionMatchesConvertImageDtype) {
  const float nan = std::nanf(""), inf = std::numeric_limits<float>::infinity();
  // x * 255.5 in float32, clamped to [0, 255], truncated; NaN -> 0.
  const std::vector<float> x = {0.f, 1.f, 0.5f, 2.f, -1.f, nan, inf, -inf, 0.998f, 1.f / 255.5f, 0.25f, -0.f};
  const std::vector<uint8_t> want = {0, 255, 127, 255, 0, 0, 255, 0, 254, 1, 63, 0};
  // 0.5 * 255.5 = 127.75 -> 127; 0.998 * 255.5 = 254.989 -> 254; 0.25 * 255.5 = 63.875 -> 63.
  EXPECT_EQ(converted(make_typed<float>(Shape{1, 3, 4, 1}, x)), want);
  // float64: the same, except that double(1.f / 255.5f) * 255.5 is 0.99999999... (in float32 the
  // product rounds to 1).
  std::vector<double> xd(x.begin(), x.end());
  std::vector<uint8_t> want_d = want;
  want_d[9] = 0;
  EXPECT_EQ(converted(make_typed<double>(Shape{1, 3, 4, 1}, xd)), want_d);
  // float32 rounding of the product: the largest float below 1 gives 255.49998 -> 255 in float32.
  const float below_one = std::nextafter(1.f, 0.f);
  EXPECT_EQ(converted(make_typed<float>(Shape{1, 1, 1, 1}, {below_one})), std::vector<uint8_t>{255});
  // Just below k / 255.5 for k = 100: the float32 product rounds up to exactly 100 or not,
  // matching the float32 multiply: compare with the same arithmetic.
  const float f = 100.f / 255.5f;
  const float p = f * 255.5f;
  EXPECT_EQ(converted(make_typed<float>(Shape{1, 1, 1, 1}, {f})),
            std::vector<uint8_t>{static_cast<uint8_t>(p >= 100.f ? 100 : 99)});
}

TEST(SummaryImage, BFloat16ScalesBy256) {
  // 255.5 rounds to 256 as a bfloat16, so 0.5 -> 128 (float32 gives 127) and 0.25 -> 64.
  const std::vector<bfloat16> x = {bfloat16(0.f),           bfloat16(1.f),        bfloat16(0.5f),
                                   bfloat16(0.25f),         bfloat16(2.f),        bfloat16(-1.f),
                                   bfloat16(std::nanf("")), bfloat16(0.99609375f)};
  const std::vector<uint8_t> want = {0, 255, 128, 64, 255, 0, 0, 255};
  EXPECT_EQ(converted(make_typed<bfloat16>(Shape{1, 2, 4, 1}, x)), want);
}

TEST(SummaryImage, RejectsOtherRanksDtypesAndChannels) {
  expect_error(
      [] {
        image_strings(make_typed<float>(Shape{2, 2, 1}, {0, 0, 0, 0}), 3);
      },
      Code::kInvalidArgument,
      {"summary.image: data is float32[2, 2, 1]", "expected a rank-4 [k, height, width, channels]"});
  expect_error(
      [] {
        image_strings(make_typed<int32_t>(Shape{1, 1, 1, 1}, {0}), 3);
      },
      Code::kInvalidArgument,
      {"summary.image: data is int32[1, 1, 1, 1]", "uint8", "float32, float64 or bfloat16"});
  expect_error(
      [] {
        image_strings(testing::make_bool(Shape{1, 1, 1, 1}, {1}), 3);
      },
      Code::kInvalidArgument, {"summary.image: data is bool"});
  expect_error(
      [] {
        image_strings(images_u8(Shape{1, 1, 1, 5}, {0, 0, 0, 0, 0}), 3);
      },
      Code::kInvalidArgument, {"summary.image", "with 5 channels", "expected 1 (grayscale)"});
  expect_error(
      [] {
        image_strings(images_u8(Shape{1, 1, 1, 0}, {}), 3);
      },
      Code::kInvalidArgument, {"with 0 channels"});
  expect_error([] { image_strings(Tensor(), 3); }, Code::kInvalidArgument, {"summary.image", "undefined"});
}

}  // namespace
}  // namespace kiln
