// The bits of relu's kernel as one vector function, for every loop that fuses a relu
// (simd_unary.cc's relu and relu6, gemv.cc's bias + relu, pool_simd.cc's bias + relu + max
// pool): +0 where x < 0, else x itself (so NaN stays NaN and -0 stays -0, as TF's
// relu, Eigen's max(x, 0), which returns x unless x < 0). A per-target header: include it after
// <hwy/highway.h> in a translation unit that Highway's foreach_target compiles once per
// instruction set (hence the toggling guard instead of #pragma once).
#if defined(KILN_KERNELS_SIMD_RELU_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef KILN_KERNELS_SIMD_RELU_INL_H_
#undef KILN_KERNELS_SIMD_RELU_INL_H_
#else
#define KILN_KERNELS_SIMD_RELU_INL_H_
#endif

#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace kiln::kernels::simd_relu {
namespace HWY_NAMESPACE {

template <class D, class V>
HWY_INLINE V ReluZero(D d, V x) {
  namespace hn = hwy::HWY_NAMESPACE;
  return hn::IfThenZeroElse(hn::Lt(x, hn::Zero(d)), x);
}

}  // namespace HWY_NAMESPACE
}  // namespace kiln::kernels::simd_relu
HWY_AFTER_NAMESPACE();

#endif  // KILN_KERNELS_SIMD_RELU_INL_H_
