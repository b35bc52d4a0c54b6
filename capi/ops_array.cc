// Indexing and padding entry points: gather (axis, batch_dims), gather_nd, scatter_nd,
// tensor_scatter_nd_add, boolean_mask, one_hot, pad, and image resizing (gathers too).
#include <vector>

#include "capi/handles.h"
#include "ops/image.h"
#include "ops/ops.h"

using kiln::Tensor;
using kiln::capi::new_tensor;
using kiln::capi::require_not_null;
using kiln::capi::tensor_of;
namespace ops = kiln::ops;

extern "C" {

kiln_status *kiln_gather(kiln_tensor **out, const kiln_tensor *params, const kiln_tensor *indices,
                         int64_t axis, int64_t batch_dims) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_gather";
  require_not_null(out, fn, "out");
  const Tensor &p = tensor_of(params, fn, "params");
  *out = new_tensor(ops::gather(p, tensor_of(indices, fn, "indices"), axis, batch_dims));
  KILN_CAPI_END
}

kiln_status *kiln_gather_nd(kiln_tensor **out, const kiln_tensor *params, const kiln_tensor *indices,
                            int64_t batch_dims) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_gather_nd";
  require_not_null(out, fn, "out");
  const Tensor &p = tensor_of(params, fn, "params");
  *out = new_tensor(ops::gather_nd(p, tensor_of(indices, fn, "indices"), batch_dims));
  KILN_CAPI_END
}

kiln_status *kiln_scatter_nd(kiln_tensor **out, const kiln_tensor *indices, const kiln_tensor *updates,
                             const int64_t *dims, size_t rank) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_scatter_nd";
  require_not_null(out, fn, "out");
  const Tensor &i = tensor_of(indices, fn, "indices");
  const Tensor &u = tensor_of(updates, fn, "updates");
  *out = new_tensor(ops::scatter_nd(i, u, kiln::capi::shape_from_c(dims, rank, fn)));
  KILN_CAPI_END
}

kiln_status *kiln_tensor_scatter_nd_add(kiln_tensor **out, const kiln_tensor *tensor,
                                        const kiln_tensor *indices, const kiln_tensor *updates) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_tensor_scatter_nd_add";
  require_not_null(out, fn, "out");
  const Tensor &t = tensor_of(tensor, fn, "tensor");
  const Tensor &i = tensor_of(indices, fn, "indices");
  *out = new_tensor(ops::tensor_scatter_nd_add(t, i, tensor_of(updates, fn, "updates")));
  KILN_CAPI_END
}

kiln_status *kiln_boolean_mask(kiln_tensor **out, const kiln_tensor *tensor, const kiln_tensor *mask,
                               int64_t axis) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_boolean_mask";
  require_not_null(out, fn, "out");
  const Tensor &t = tensor_of(tensor, fn, "tensor");
  *out = new_tensor(ops::boolean_mask(t, tensor_of(mask, fn, "mask"), axis));
  KILN_CAPI_END
}

kiln_status *kiln_one_hot(kiln_tensor **out, const kiln_tensor *indices, int64_t depth, double on_value,
                          double off_value, int64_t axis, kiln_dtype dtype) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_one_hot";
  require_not_null(out, fn, "out");
  const Tensor &i = tensor_of(indices, fn, "indices");
  *out = new_tensor(ops::one_hot(i, depth, on_value, off_value, axis, kiln::capi::dtype_from_c(dtype, fn)));
  KILN_CAPI_END
}

kiln_status *kiln_pad(kiln_tensor **out, const kiln_tensor *x, const int64_t *paddings, size_t num_dims,
                      kiln_pad_mode mode, double constant_value) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_pad";
  require_not_null(out, fn, "out");
  const Tensor &t = tensor_of(x, fn, "x");
  if (num_dims != static_cast<size_t>(t.rank()))
    kiln::fail(kiln::Code::kInvalidArgument, fn, ": num_dims is ", num_dims, " for x ", t.description(),
               "; expected its rank, ", t.rank());
  if (num_dims > 0) require_not_null(paddings, fn, "paddings");
  const int m = static_cast<int>(mode);
  if (m < KILN_PAD_MODE_CONSTANT || m > KILN_PAD_MODE_SYMMETRIC)
    kiln::fail(kiln::Code::kInvalidArgument, fn, ": mode ", m,
               " is not a kiln_pad_mode; expected KILN_PAD_MODE_CONSTANT (0), KILN_PAD_MODE_REFLECT (1) or "
               "KILN_PAD_MODE_SYMMETRIC (2)");
  std::vector<int64_t> p(paddings, paddings + 2 * num_dims);
  *out = new_tensor(ops::pad(t, p, static_cast<ops::PadMode>(m), constant_value));
  KILN_CAPI_END
}

kiln_status *kiln_image_resize(kiln_tensor **out, const kiln_tensor *images, int64_t height, int64_t width,
                               kiln_resize_method method) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_image_resize";
  require_not_null(out, fn, "out");
  const Tensor &t = tensor_of(images, fn, "images");
  const int m = static_cast<int>(method);
  if (m != KILN_RESIZE_BILINEAR && m != KILN_RESIZE_NEAREST)
    kiln::fail(kiln::Code::kInvalidArgument, fn, ": method ", m,
               " is not a kiln_resize_method; expected KILN_RESIZE_BILINEAR (0) or KILN_RESIZE_NEAREST (1)");
  *out = new_tensor(ops::resize(t, height, width, static_cast<ops::ResizeMethod>(m)));
  KILN_CAPI_END
}

// An interpolation of the image transforms, checked.
static ops::ResizeMethod resize_method_of(kiln_resize_method interpolation, const char *fn) {
  const int i = static_cast<int>(interpolation);
  if (i != KILN_RESIZE_BILINEAR && i != KILN_RESIZE_NEAREST)
    kiln::fail(kiln::Code::kInvalidArgument, fn, ": interpolation ", i,
               " is not a kiln_resize_method; expected KILN_RESIZE_BILINEAR (0) or KILN_RESIZE_NEAREST (1)");
  return static_cast<ops::ResizeMethod>(i);
}

kiln_status *kiln_image_affine_transform(kiln_tensor **out, const kiln_tensor *images,
                                         const kiln_tensor *transform, kiln_resize_method interpolation,
                                         kiln_fill_mode fill_mode, double fill_value) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_image_affine_transform";
  require_not_null(out, fn, "out");
  const Tensor &t = tensor_of(images, fn, "images");
  const Tensor &m = tensor_of(transform, fn, "transform");
  const int f = static_cast<int>(fill_mode);
  const ops::ResizeMethod method = resize_method_of(interpolation, fn);
  if (f < KILN_FILL_REFLECT || f > KILN_FILL_NEAREST)
    kiln::fail(kiln::Code::kInvalidArgument, fn, ": fill_mode ", f,
               " is not a kiln_fill_mode; expected KILN_FILL_REFLECT (0), KILN_FILL_WRAP (1), "
               "KILN_FILL_CONSTANT (2) "
               "or KILN_FILL_NEAREST (3)");
  *out = new_tensor(ops::projective_transform(t, m, method, static_cast<ops::FillMode>(f), fill_value));
  KILN_CAPI_END
}

kiln_status *kiln_image_perspective_transform(kiln_tensor **out, const kiln_tensor *images,
                                              const kiln_tensor *start_points, const kiln_tensor *end_points,
                                              kiln_resize_method interpolation, double fill_value) {
  KILN_CAPI_BEGIN
  const char *fn = "kiln_image_perspective_transform";
  require_not_null(out, fn, "out");
  const Tensor &t = tensor_of(images, fn, "images");
  const Tensor &s = tensor_of(start_points, fn, "start_points");
  const Tensor &e = tensor_of(end_points, fn, "end_points");
  *out = new_tensor(ops::perspective_transform(t, s, e, resize_method_of(interpolation, fn), fill_value));
  KILN_CAPI_END
}

// The colour conversions: one images tensor in, one out.
static kiln_status *image_colour(kiln_tensor **out, const kiln_tensor *images, const char *fn,
                                 Tensor (*op)(const Tensor &)) {
  KILN_CAPI_BEGIN
  require_not_null(out, fn, "out");
  *out = new_tensor(op(tensor_of(images, fn, "images")));
  KILN_CAPI_END
}

kiln_status *kiln_image_rgb_to_hsv(kiln_tensor **out, const kiln_tensor *images) {
  return image_colour(out, images, "kiln_image_rgb_to_hsv", ops::rgb_to_hsv);
}

kiln_status *kiln_image_hsv_to_rgb(kiln_tensor **out, const kiln_tensor *images) {
  return image_colour(out, images, "kiln_image_hsv_to_rgb", ops::hsv_to_rgb);
}

kiln_status *kiln_image_rgb_to_grayscale(kiln_tensor **out, const kiln_tensor *images) {
  return image_colour(out, images, "kiln_image_rgb_to_grayscale", ops::rgb_to_grayscale);
}

}  // extern "C"
