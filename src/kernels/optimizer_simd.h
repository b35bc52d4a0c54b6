// Adam's float32 update as Highway vectors, compiled per instruction set and chosen at run time
// (GCC leaves loops calling std::sqrt scalar: it must keep errno). Every element goes through the
// same vector code (a partial last vector through padded copies), so its bits depend neither on
// its position nor on the thread count. The compiler may fuse a multiply and an add on targets
// with FMA, so the last bit may differ between machines (as kiln's other SIMD kernels).
#pragma once

#include <cstdint>

namespace kiln::kernels::optimizer_simd {

struct AdamSpan {
  float *w;
  const float *w0;
  float *m;
  const float *m0;
  float *v;
  const float *v0;
  float *vhat;  // amsgrad only
  const float *vhat0;
  const float *g;
};

struct AdamCoefficients {
  float scale, hi;  // g = clip(g * scale, -hi, hi)
  bool decay;       // w = w - w * wd * lr first
  float wd, lr;
  bool amsgrad;
  float alpha, one_b1, one_b2, eps;
};

// Updates [b, e); returns e (the caller's scalar loop has nothing left).
int64_t adam_f32(const AdamSpan &x, const AdamCoefficients &c, int64_t b, int64_t e);

}  // namespace kiln::kernels::optimizer_simd
