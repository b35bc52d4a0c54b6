// tf.image.resize as gathers along the height and width axes (and, for bilinear, a lerp of two
// gathers per axis with TF's weights).
#include "ops/image.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/error.h"
#include "ops/op_util.h"

namespace kiln::ops {

namespace {

Tensor indices(const std::vector<int64_t> &v) {
  return Tensor::from_data(DType::kInt64, Shape{int64_t(v.size())}, v.data(), v.size() * sizeof(int64_t));
}

// TF's CalculateResizeScale without align_corners: in / out in float32.
float resize_scale(int64_t in, int64_t out) { return static_cast<float>(in) / static_cast<float>(out); }

// Bilinear along `axis` of x (rank 4): TF's compute_interpolation_weights with half-pixel centres.
Tensor lerp_axis(const Tensor &x, int64_t axis, int64_t out) {
  const int64_t in = x.shape()[static_cast<int>(axis)];
  const float scale = resize_scale(in, out);
  std::vector<int64_t> lo, hi;
  std::vector<float> t;
  lo.reserve(size_t(out));
  hi.reserve(size_t(out));
  t.reserve(size_t(out));
  for (int64_t o = 0; o < out; ++o) {
    const float src = (static_cast<float>(o) + 0.5f) * scale - 0.5f;
    const float f = std::floor(src);
    lo.push_back(std::max<int64_t>(static_cast<int64_t>(f), 0));
    hi.push_back(std::min<int64_t>(static_cast<int64_t>(std::ceil(src)), in - 1));
    t.push_back(src - f);
  }
  std::vector<int64_t> wshape(4, 1);
  wshape[static_cast<size_t>(axis)] = out;
  const Tensor w =
      cast(Tensor::from_data(DType::kFloat32, Shape(wshape), t.data(), t.size() * sizeof(float)), x.dtype());
  const Tensor a = gather(x, indices(lo), axis), b = gather(x, indices(hi), axis);
  return add(a, mul(sub(b, a), w));
}

// Nearest along `axis` of x: TF's half-pixel nearest neighbour, floor((o + 0.5) * scale).
Tensor nearest_axis(const Tensor &x, int64_t axis, int64_t out) {
  const int64_t in = x.shape()[static_cast<int>(axis)];
  const float scale = resize_scale(in, out);
  std::vector<int64_t> idx;
  idx.reserve(size_t(out));
  for (int64_t o = 0; o < out; ++o)
    idx.push_back(std::clamp<int64_t>(
        static_cast<int64_t>(std::floor((static_cast<float>(o) + 0.5f) * scale)), 0, in - 1));
  return gather(x, indices(idx), axis);
}

// The images of a colour conversion: floating, rank >= 1, 3 channels last.
void check_rgb(const Tensor &images, const char *op) {
  if (!is_floating(images.dtype()) || images.rank() < 1 || images.shape()[images.rank() - 1] != 3)
    fail(Code::kInvalidArgument, op, ": images ", images.description(),
         " must be floating (float32, float64, bfloat16) with 3 channels in the last axis");
}

// Channel c of the last axis, the axis kept (of size 1).
Tensor channel(const Tensor &x, int64_t c) {
  std::vector<int64_t> begin(size_t(x.rank()), 0), size = x.shape().to_vector();
  begin.back() = c;
  size.back() = 1;
  return slice(x, begin, size);
}

}  // namespace

Tensor resize(const Tensor &images, int64_t height, int64_t width, ResizeMethod method) {
  const char *op = "resize";
  require_defined(images, op, "images");
  if (method != ResizeMethod::kBilinear && method != ResizeMethod::kNearest)
    fail(Code::kInvalidArgument, op, ": method ", static_cast<int>(method),
         " is not a resize method; expected BILINEAR (0) or NEAREST (1)");
  const int rank = images.rank();
  if (rank != 3 && rank != 4)
    fail(Code::kInvalidArgument, op, ": images ", images.description(),
         " has the wrong rank; expected rank 4 [N, H, W, C] or 3 [H, W, C]");
  if (height < 1 || width < 1)
    fail(Code::kInvalidArgument, op, ": size [", height, ", ", width, "] must be positive");
  if (images.dtype() == DType::kBool)
    fail(Code::kInvalidArgument, op, ": images ", images.description(), " is bool; expected a number dtype");
  const Shape &s = images.shape();
  if (s[rank - 3] < 1 || s[rank - 2] < 1)
    fail(Code::kInvalidArgument, op, ": images ", images.description(),
         " has an empty height or width; expected both >= 1");
  // The output's buffer first: a size no memory can hold fails here, before the per-row tables.
  std::vector<int64_t> out_dims = s.to_vector();
  out_dims[size_t(rank - 3)] = height;
  out_dims[size_t(rank - 2)] = width;
  (void)Tensor::empty(images.dtype(), Shape(out_dims));
  Tensor x = rank == 3 ? expand_dims(images, 0) : images;
  if (method == ResizeMethod::kNearest) {
    x = nearest_axis(nearest_axis(x, 1, height), 2, width);
  } else {
    const DType dt = images.dtype();
    if (dt != DType::kFloat32 && dt != DType::kFloat64) x = cast(x, DType::kFloat32);
    x = lerp_axis(lerp_axis(x, 2, width), 1, height);  // the width first, as TF's kernel
    if (dt == DType::kBFloat16) x = cast(x, DType::kBFloat16);
  }
  return rank == 3 ? squeeze(x, {0}) : x;
}

Tensor projective_transform(const Tensor &images, const Tensor &transforms, ResizeMethod interpolation,
                            FillMode fill_mode, double fill_value) {
  const char *op = "projective_transform";
  require_defined(images, op, "images");
  require_defined(transforms, op, "transforms");
  const int rank = images.rank();
  if (rank != 3 && rank != 4)
    fail(Code::kInvalidArgument, op, ": images ", images.description(),
         " has the wrong rank; expected rank 4 [N, H, W, C] or 3 [H, W, C]");
  const DType dt = images.dtype();
  if (dt == DType::kBool || (!is_floating(dt) && !is_integer(dt)))
    fail(Code::kInvalidArgument, op, ": images ", images.description(), " must be numbers (not bool)");
  if (interpolation != ResizeMethod::kBilinear && interpolation != ResizeMethod::kNearest)
    fail(Code::kInvalidArgument, op, ": interpolation ", static_cast<int>(interpolation),
         " is not BILINEAR (0) or NEAREST (1)");
  if (fill_mode != FillMode::kReflect && fill_mode != FillMode::kWrap && fill_mode != FillMode::kConstant &&
      fill_mode != FillMode::kNearest)
    fail(Code::kInvalidArgument, op, ": fill_mode ", static_cast<int>(fill_mode),
         " is not REFLECT (0), WRAP (1), CONSTANT (2) or NEAREST (3)");
  const Tensor x = rank == 3 ? expand_dims(images, 0) : images;
  const int64_t n = x.shape()[0];
  Tensor t = transforms.rank() == 1 ? reshape(transforms, {1, transforms.shape()[0]}) : transforms;
  if (!is_floating(t.dtype()) || t.rank() != 2 || t.shape()[1] != 8 ||
      (t.shape()[0] != 1 && t.shape()[0] != n))
    fail(Code::kInvalidArgument, op, ": transforms ", transforms.description(), " must be floats of shape [",
         n, ", 8], [1, 8] or [8] for ", n, " images");
  t = cast(t, DType::kFloat32);
  // TF's kernel reads fill_value as a float32 and casts it to the images' type: integers truncate.
  fill_value = static_cast<float>(fill_value);
  if (is_integer(dt)) {  // clamped to the widest floats the type holds (the kernel blends in float32)
    const double low = dt == DType::kUInt8   ? 0.0
                       : dt == DType::kInt32 ? -2147483648.0
                                             : -9223372036854775808.0;
    const double high = dt == DType::kUInt8   ? 255.0
                        : dt == DType::kInt32 ? 2147483520.0
                                              : 9223371487098961920.0;
    fill_value = std::isnan(fill_value) ? 0.0 : std::clamp(std::trunc(fill_value), low, high);
  }
  const Tensor in = dt == DType::kFloat32 || dt == DType::kFloat64 ? x : cast(x, DType::kFloat32);
  Tensor out = Tensor::empty(in.dtype(), in.shape());
  if (in.num_elements() > 0)
    kernels::projective_transform(in.dtype(), in.raw_data(), n, in.shape()[1], in.shape()[2], in.shape()[3],
                                  t.data<float>(), t.shape()[0], interpolation == ResizeMethod::kBilinear,
                                  fill_mode, fill_value, out.raw_mutable_data());
  if (out.dtype() != dt) out = cast(out, dt);  // bfloat16 rounds once; integers truncate, as TF's T(value)
  return rank == 3 ? squeeze(out, {0}) : out;
}

std::optional<std::array<float, 8>> homography(const std::array<float, 8> &start,
                                               const std::array<float, 8> &end) {
  // Keras's system: per point, the rows (xe, ye, 1, 0, 0, 0, -xs xe, -xs ye | xs) and
  // (0, 0, 0, xe, ye, 1, -ys xe, -ys ye | ys), xs, ys the start point and xe, ye the end point.
  double m[8][9] = {};
  for (int p = 0; p < 4; ++p) {
    const double xs = start[size_t(2 * p)], ys = start[size_t(2 * p + 1)];
    const double xe = end[size_t(2 * p)], ye = end[size_t(2 * p + 1)];
    double *rx = m[2 * p], *ry = m[2 * p + 1];
    rx[0] = xe, rx[1] = ye, rx[2] = 1, rx[6] = -xs * xe, rx[7] = -xs * ye, rx[8] = xs;
    ry[3] = xe, ry[4] = ye, ry[5] = 1, ry[6] = -ys * xe, ry[7] = -ys * ye, ry[8] = ys;
  }
  for (int c = 0; c < 8; ++c) {
    int pivot = c;
    for (int r = c + 1; r < 8; ++r)
      if (std::fabs(m[r][c]) > std::fabs(m[pivot][c])) pivot = r;
    if (m[pivot][c] == 0.0) return std::nullopt;
    if (pivot != c) std::swap(m[pivot], m[c]);
    for (int r = c + 1; r < 8; ++r) {
      const double f = m[r][c] / m[c][c];
      for (int k = c; k < 9; ++k) m[r][k] -= f * m[c][k];
    }
  }
  std::array<double, 8> h{};
  for (int c = 7; c >= 0; --c) {
    double v = m[c][8];
    for (int k = c + 1; k < 8; ++k) v -= m[c][k] * h[size_t(k)];
    h[size_t(c)] = v / m[c][c];
  }
  std::array<float, 8> out{};
  for (size_t i = 0; i < 8; ++i) out[i] = static_cast<float>(h[i]);
  return out;
}

Tensor perspective_transform(const Tensor &images, const Tensor &start_points, const Tensor &end_points,
                             ResizeMethod interpolation, double fill_value) {
  const char *op = "perspective_transform";
  require_defined(images, op, "images");
  const auto points = [&](const Tensor &p, const char *name) {
    require_defined(p, op, name);
    bool shaped =
        (p.rank() == 2 || p.rank() == 3) && p.shape()[p.rank() - 2] == 4 && p.shape()[p.rank() - 1] == 2;
    if (!is_floating(p.dtype()) && !is_integer(p.dtype())) shaped = false;
    if (!shaped)
      fail(Code::kInvalidArgument, op, ": ", name, " ", p.description(),
           " must be numbers of shape [4, 2] (one image's four (x, y) points) or [N, 4, 2]");
    return cast(reshape(p, {-1, 8}), DType::kFloat32);
  };
  const Tensor start = points(start_points, "start_points"), end = points(end_points, "end_points");
  if (start_points.shape() != end_points.shape())
    fail(Code::kInvalidArgument, op, ": start_points ", start_points.description(), " and end_points ",
         end_points.description(), " must have the same shape");
  const int64_t n = start.shape()[0];
  const int64_t images_n = images.rank() == 4 ? images.shape()[0] : 1;
  if ((images.rank() == 3 || images.rank() == 4) && n != 1 && n != images_n)
    fail(Code::kInvalidArgument, op, ": start_points ", start_points.description(), " hold the points of ", n,
         " images, but images ", images.description(), " holds ", images_n,
         "; expected [4, 2], [1, 4, 2] or [", images_n, ", 4, 2]");
  const auto finite = [](const std::array<float, 8> &p) {
    return std::all_of(p.begin(), p.end(), [](float v) { return std::isfinite(v); });
  };
  std::vector<float> t;
  t.reserve(size_t(n) * 8);
  for (int64_t i = 0; i < n; ++i) {
    std::array<float, 8> s{}, e{};
    std::copy_n(start.data<float>() + i * 8, 8, s.begin());
    std::copy_n(end.data<float>() + i * 8, 8, e.begin());
    if (!finite(s) || !finite(e))
      fail(Code::kInvalidArgument, op, ": the points of image ", i,
           " hold a NaN or an infinity (in float32)");
    const auto h = homography(s, e);
    if (!h)
      fail(Code::kInvalidArgument, op, ": the points of image ", i,
           " define no perspective transform (the system is singular: two end points the same, or "
           "three on a line)");
    t.insert(t.end(), h->begin(), h->end());
  }
  const Tensor transforms =
      Tensor::from_data(DType::kFloat32, Shape({n, 8}), t.data(), t.size() * sizeof(float));
  return projective_transform(images, transforms, interpolation, FillMode::kConstant, fill_value);
}

Tensor rgb_to_hsv(const Tensor &images) {
  check_rgb(images, "rgb_to_hsv");
  const auto k = [&](double v) { return fill(Shape({}), v, images.dtype()); };
  const Tensor r = channel(images, 0), g = channel(images, 1), b = channel(images, 2), zero = k(0),
               one = k(1);
  const Tensor v = maximum(maximum(r, g), b);
  const Tensor range = sub(v, minimum(minimum(r, g), b));
  // A spread below the smallest normal number counts as none (hue 0), as with denormals flushed to zero:
  // 1 / range would overflow.
  const double smallest = images.dtype() == DType::kFloat64 ? std::numeric_limits<double>::min()
                                                            : double(std::numeric_limits<float>::min());
  const Tensor v_positive = greater(v, zero), has_range = greater_equal(range, k(smallest));
  const Tensor s = where(v_positive, div(range, where(v_positive, v, one)), zero);
  const Tensor norm = mul(div(one, where(has_range, range, one)), div(one, k(6)));
  Tensor h = where(equal(r, v), mul(norm, sub(g, b)),
                   where(equal(g, v), add(mul(norm, sub(b, r)), div(k(2), k(6))),
                         add(mul(norm, sub(r, g)), div(k(4), k(6)))));
  h = where(has_range, h, zero);
  h = where(less(h, zero), add(h, one), h);
  return concat({h, s, v}, -1);
}

Tensor hsv_to_rgb(const Tensor &images) {
  check_rgb(images, "hsv_to_rgb");
  const auto k = [&](double v) { return fill(Shape({}), v, images.dtype()); };
  const Tensor h = channel(images, 0), s = channel(images, 1), v = channel(images, 2);
  const Tensor dh = mul(h, k(6)), zero = k(0), one = k(1);
  const auto ramp = [&](const Tensor &d) { return clip_by_value(d, zero, one); };
  const Tensor dr = ramp(sub(abs(sub(dh, k(3))), one));
  const Tensor dg = ramp(sub(k(2), abs(sub(dh, k(2)))));
  const Tensor db = ramp(sub(k(2), abs(sub(dh, k(4)))));
  const Tensor one_s = sub(one, s);
  const auto out = [&](const Tensor &d) { return mul(add(one_s, mul(s, d)), v); };
  return concat({out(dr), out(dg), out(db)}, -1);
}

Tensor rgb_to_grayscale(const Tensor &images) {
  check_rgb(images, "rgb_to_grayscale");
  const auto weighted = [&](int64_t c, double w) {
    return mul(channel(images, c), fill(Shape({}), w, images.dtype()));
  };
  return add(add(weighted(0, 0.2989), weighted(1, 0.5870)), weighted(2, 0.1140));
}

}  // namespace kiln::ops
