// The 3-D window ops as the 2-D ones over height and width and differentiable ops along depth:
// conv3d gathers each output depth's taps into the channels of one conv2d, conv3d_transpose runs one
// conv2d_transpose per input depth slice and scatters its taps onto the output depths, and the
// poolings pool each depth slice, then combine the slices of each depth window.
#include "ops/conv3d.h"

#include <algorithm>
#include <array>
#include <limits>

#include "core/count.h"
#include "core/error.h"
#include "ops/conv_internal.h"
#include "ops/op_util.h"

namespace kiln::ops {

namespace {

// One axis of a 3-D window op: input length, window, stride, dilation, and TF's output length and
// padding (internal::window_axis).
struct Axis {
  int64_t in = 0, k = 1, s = 1, d = 1, out = 0, before = 0, after = 0;
};
using Axes = std::array<Axis, 3>;  // depth, height, width

void require_triple(const std::vector<int64_t> &v, const char *op, const char *arg) {
  if (v.size() != 3 || *std::min_element(v.begin(), v.end()) < 1)
    fail(Code::kInvalidArgument, op, ": ", arg, " is ", list_string(v),
         "; expected 3 positive values (depth, height, width)");
}

void require_rank5(const Tensor &t, const char *op, const char *arg, const char *layout) {
  require_float32(t, op, arg);
  if (t.shape().rank() != 5)
    fail(Code::kInvalidArgument, op, ": ", arg, " has shape ", t.shape().to_string(), "; expected rank 5 ",
         layout);
}

// Validates the window arguments and computes the geometry over x_shape [N, D, H, W, C];
// INVALID_ARGUMENT naming op when the output would be empty or the padding absurd.
Axes window3d(const char *op, const Shape &x_shape, const std::vector<int64_t> &window,
              const std::vector<int64_t> &strides, const std::vector<int64_t> &dilations, Padding padding) {
  require_triple(strides, op, "strides");
  require_triple(dilations, op, "dilations");
  if (padding != Padding::kValid && padding != Padding::kSame)
    fail(Code::kInvalidArgument, op, ": padding is ", static_cast<int>(padding), "; expected VALID or SAME");
  Axes g;
  for (size_t i = 0; i < 3; ++i) {
    Axis &a = g[i];
    a.in = x_shape[int(i) + 1];
    a.k = window[i];
    a.s = strides[i];
    a.d = dilations[i];
    if (!internal::window_axis(a.in, a.k, a.s, a.d, padding, a.out, a.before, a.after))
      fail(Code::kInvalidArgument, op, ": a window of ", list_string(window), " with dilations ",
           list_string(dilations), " spans more than ", kMaxElements,
           " (2^62) cells; expected (size - 1) * dilation + 1 <= 2^62");
  }
  if (g[0].out < 1 || g[1].out < 1 || g[2].out < 1)
    fail(Code::kInvalidArgument, op, ": input of shape ", x_shape.to_string(), " with a window of ",
         list_string(window), ", strides ", list_string(strides), ", dilations ", list_string(dilations),
         " and ", padding == Padding::kSame ? "SAME" : "VALID", " padding gives an empty ", g[0].out, "x",
         g[1].out, "x", g[2].out, " output; expected a window that fits the input");
  const int64_t kMaxPad = std::numeric_limits<int32_t>::max();
  for (const Axis &a : g)
    if (std::max(a.before, a.after) > kMaxPad)
      fail(Code::kInvalidArgument, op, ": a window of ", list_string(window), " with dilations ",
           list_string(dilations), " and SAME padding over input ", x_shape.to_string(), " needs padding ",
           std::max(a.before, a.after), "; expected padding <= ", kMaxPad);
  return g;
}

Tensor int64_tensor(const std::vector<int64_t> &v, const Shape &shape) {
  return Tensor::from_data(DType::kInt64, shape, v.data(), v.size() * sizeof(int64_t));
}

// The window taps along depth: [OD, K] indices od * s + k * d into the input padded by a.before.
Tensor depth_taps(const Axis &a) {
  std::vector<int64_t> idx;
  idx.reserve(size_t(a.out * a.k));
  for (int64_t o = 0; o < a.out; ++o)
    for (int64_t k = 0; k < a.k; ++k) idx.push_back(o * a.s + k * a.d);
  return int64_tensor(idx, Shape{a.out, a.k});
}

// x [N, D, ...] padded along depth with zeros by the axis's padding.
Tensor pad_depth(const Tensor &x, const Axis &a) {
  if (a.before == 0 && a.after == 0) return x;
  std::vector<int64_t> p(size_t(2 * x.shape().rank()), 0);
  p[2] = a.before;
  p[3] = a.after;
  return pad(x, p);
}

// Whether depth maps one to one onto the output (a one-tap window of stride 1, no padding).
bool depth_is_identity(const Axis &a) { return a.k == 1 && a.s == 1 && a.before == 0 && a.after == 0; }

// [KD, KH, KW, A, B] -> [KH, KW, KD * A, B]: the depth taps moved into the channels before A.
Tensor depth_into_channels(const Tensor &filter) {
  const Shape &f = filter.shape();
  return reshape(transpose(filter, {1, 2, 0, 3, 4}), {f[1], f[2], f[0] * f[3], f[4]});
}

}  // namespace

Tensor conv3d(const Tensor &x, const Tensor &filter, const std::vector<int64_t> &strides,
              const std::vector<int64_t> &dilations, Padding padding) {
  const char *op = "conv3d";
  if (internal::all_bfloat16({&x, &filter}))
    return internal::as_bfloat16(
        conv3d(internal::as_float32(x), internal::as_float32(filter), strides, dilations, padding));
  require_rank5(x, op, "x", "[N, D, H, W, C]");
  require_rank5(filter, op, "filter", "[KD, KH, KW, C, O]");
  const Shape &xs = x.shape(), &fs = filter.shape();
  if (fs[0] < 1 || fs[1] < 1 || fs[2] < 1)
    fail(Code::kInvalidArgument, op, ": filter has shape ", fs.to_string(), "; expected KD, KH, KW >= 1");
  if (fs[3] != xs[4])
    fail(Code::kInvalidArgument, op, ": filter of shape ", fs.to_string(), " is for ", fs[3],
         " channels but x of shape ", xs.to_string(), " has ", xs[4], "; expected filter dim 3 == x dim 4");
  const Axes g = window3d(op, xs, {fs[0], fs[1], fs[2]}, strides, dilations, padding);
  const Axis &dz = g[0];
  // [N * OD, H, W, KD * C]: each output depth's taps side by side in the channels (tap-major), which
  // the filter's [KH, KW, KD * C, O] view matches.
  Tensor x2;
  if (depth_is_identity(dz)) {
    x2 = reshape(x, {xs[0] * dz.out, xs[2], xs[3], xs[4]});
  } else {
    const Tensor taps = gather(pad_depth(x, dz), depth_taps(dz), 1);  // [N, OD, KD, H, W, C]
    x2 = reshape(transpose(taps, {0, 1, 3, 4, 2, 5}), {xs[0] * dz.out, xs[2], xs[3], dz.k * xs[4]});
  }
  const Tensor y = conv2d(x2, depth_into_channels(filter), {g[1].s, g[2].s}, {g[1].d, g[2].d}, padding);
  return reshape(y, {xs[0], dz.out, g[1].out, g[2].out, fs[4]});
}

Tensor conv3d_transpose(const Tensor &x, const Tensor &filter, const std::vector<int64_t> &output_shape,
                        const std::vector<int64_t> &strides, const std::vector<int64_t> &dilations,
                        Padding padding) {
  const char *op = "conv3d_transpose";
  if (internal::all_bfloat16({&x, &filter}))
    return internal::as_bfloat16(conv3d_transpose(internal::as_float32(x), internal::as_float32(filter),
                                                  output_shape, strides, dilations, padding));
  require_rank5(x, op, "x", "[N, D, H, W, C]");
  require_rank5(filter, op, "filter", "[KD, KH, KW, O, C]");
  const Shape &xs = x.shape(), &fs = filter.shape();
  if (output_shape.size() != 5)
    fail(Code::kInvalidArgument, op, ": output_shape ", list_string(output_shape),
         " has the wrong rank; expected 5 values [N, OD, OH, OW, O]");
  for (int64_t d : output_shape)
    if (d < 0)
      fail(Code::kInvalidArgument, op, ": output_shape ", list_string(output_shape), " has a negative dim");
  const Shape out(output_shape, op);
  if (fs[0] < 1 || fs[1] < 1 || fs[2] < 1)
    fail(Code::kInvalidArgument, op, ": filter has shape ", fs.to_string(), "; expected KD, KH, KW >= 1");
  if (fs[4] != xs[4])
    fail(Code::kInvalidArgument, op, ": filter of shape ", fs.to_string(), " takes ", fs[4],
         " input channels but x of shape ", xs.to_string(), " has ", xs[4],
         "; expected filter dim 4 == x dim 4");
  if (out[4] != fs[3] || out[0] != xs[0])
    fail(Code::kInvalidArgument, op, ": output_shape ", out.to_string(), " for x ", xs.to_string(),
         " and filter ", fs.to_string(), "; expected batch ", xs[0], " and ", fs[3],
         " channels (filter dim 3)");
  // The forward convolution this op is the adjoint of must map output_shape onto x's shape.
  const Axes g = window3d(op, out, {fs[0], fs[1], fs[2]}, strides, dilations, padding);
  if (g[0].out != xs[1] || g[1].out != xs[2] || g[2].out != xs[3])
    fail(Code::kInvalidArgument, op, ": output_shape ", out.to_string(), " with a ", fs[0], "x", fs[1], "x",
         fs[2], " filter, strides ", list_string(strides), " and dilations ", list_string(dilations),
         " convolves to ", g[0].out, "x", g[1].out, "x", g[2].out, ", not x's ", xs[1], "x", xs[2], "x",
         xs[3], "; expected an output_shape whose convolution gives x's spatial size");
  const Axis &dz = g[0];
  const int64_t n = xs[0], id = xs[1], od = out[1], oh = out[2], ow = out[3], o = out[4];
  // Every input depth slice through the height-width transpose, with the KD taps' filters side by
  // side: [N * ID, OH, OW, KD * O].
  const Tensor z = conv2d_transpose(reshape(x, {n * id, xs[2], xs[3], xs[4]}), depth_into_channels(filter),
                                    {n * id, oh, ow, dz.k * o}, {g[1].s, g[2].s}, {g[1].d, g[2].d}, padding);
  if (depth_is_identity(dz)) return reshape(z, {n, od, oh, ow, o});
  // Tap k of input depth i lands on depth i * s + k * d of the padded output, whose cells
  // [before, before + OD) are the result (past the last tap, output_padding's cells stay zero).
  const Tensor taps =
      transpose(reshape(z, {n, id, oh, ow, dz.k, o}), {0, 1, 4, 2, 3, 5});  // [N, ID, KD, ...]
  const int64_t full = (id - 1) * dz.s + (dz.k - 1) * dz.d + 1;
  std::vector<int64_t> idx;
  idx.reserve(size_t(n * id * dz.k * 2));
  for (int64_t b = 0; b < n; ++b)
    for (int64_t i = 0; i < id; ++i)
      for (int64_t k = 0; k < dz.k; ++k) idx.insert(idx.end(), {b, i * dz.s + k * dz.d});
  const Tensor placed = scatter_nd(int64_tensor(idx, Shape{n, id, dz.k, 2}), taps, Shape{n, full, oh, ow, o});
  const int64_t kept = std::min(full - dz.before, od);
  const Tensor y = slice(placed, {0, dz.before, 0, 0, 0}, {n, kept, oh, ow, o});
  return kept == od ? y : pad(y, {0, 0, 0, od - kept, 0, 0, 0, 0, 0, 0});
}

namespace {

// A pooling over [N, D, H, W, C]: the 2-D one over every depth slice, reshaped to [N, D, OH, OW, C].
Tensor pool_slices(const char *op, const Tensor &x, const std::vector<int64_t> &ksize,
                   const std::vector<int64_t> &strides, Padding padding, bool max, Axes *geometry) {
  require_rank5(x, op, "x", "[N, D, H, W, C]");
  require_triple(ksize, op, "ksize");
  const Shape &xs = x.shape();
  const Axes g = window3d(op, xs, ksize, strides, {1, 1, 1}, padding);
  *geometry = g;
  const Tensor x4 = reshape(x, {xs[0] * xs[1], xs[2], xs[3], xs[4]});
  const std::vector<int64_t> k2 = {ksize[1], ksize[2]}, s2 = {strides[1], strides[2]};
  const Tensor y = max ? max_pool2d(x4, k2, s2, padding) : avg_pool2d(x4, k2, s2, padding);
  return reshape(y, {xs[0], xs[1], g[1].out, g[2].out, xs[4]});
}

}  // namespace

Tensor max_pool3d(const Tensor &x, const std::vector<int64_t> &ksize, const std::vector<int64_t> &strides,
                  Padding padding) {
  if (internal::all_bfloat16({&x}))
    return internal::as_bfloat16(max_pool3d(internal::as_float32(x), ksize, strides, padding));
  Axes g;
  const Tensor y = pool_slices("max_pool3d", x, ksize, strides, padding, true, &g);
  const Axis &dz = g[0];
  if (depth_is_identity(dz)) return y;
  // Tap k of every window, its padded cells replaced by a real cell of the same window (the first or
  // the last: windows are contiguous), which leaves the maximum as it is. maximum's gradient goes to
  // its first operand on ties, so folding the taps in order routes it to the window's first maximum.
  Tensor m;
  for (int64_t k = 0; k < dz.k; ++k) {
    std::vector<int64_t> idx;
    for (int64_t o = 0; o < dz.out; ++o)
      idx.push_back(std::clamp<int64_t>(o * dz.s + k - dz.before, 0, dz.in - 1));
    const Tensor tap = gather(y, int64_tensor(idx, Shape{dz.out}), 1);
    m = k == 0 ? tap : maximum(m, tap);
  }
  return m;
}

Tensor avg_pool3d(const Tensor &x, const std::vector<int64_t> &ksize, const std::vector<int64_t> &strides,
                  Padding padding) {
  if (internal::all_bfloat16({&x}))
    return internal::as_bfloat16(avg_pool3d(internal::as_float32(x), ksize, strides, padding));
  Axes g;
  const Tensor y = pool_slices("avg_pool3d", x, ksize, strides, padding, false, &g);
  const Axis &dz = g[0];
  if (depth_is_identity(dz)) return y;
  // Every window's slices (each already the mean of its height-width window, whose cell count is the
  // same in every slice) summed, over the number of slices inside the input.
  std::vector<float> counts;
  for (int64_t o = 0; o < dz.out; ++o) {
    const int64_t first = o * dz.s - dz.before;
    const int64_t inside = std::min(first + dz.k, dz.in) - std::max<int64_t>(first, 0);
    counts.push_back(float(inside));
  }
  const Tensor sums = sum(gather(pad_depth(y, dz), depth_taps(dz), 1), {2});
  return truediv(sums, Tensor::from_data(DType::kFloat32, Shape{1, dz.out, 1, 1, 1}, counts.data(),
                                         counts.size() * sizeof(float)));
}

}  // namespace kiln::ops
