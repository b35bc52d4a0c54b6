#include "kernels/pool.h"

#include "core/error.h"
#include "kernels/engine.h"

namespace kiln::kernels {

namespace {

using dnnl::memory;
using PoolFwd = dnnl::pooling_forward;
using PoolBwd = dnnl::pooling_backward;

memory::desc nhwc_md(int64_t n, int64_t c, int64_t h, int64_t w) {
  return memory::desc({n, c, h, w}, memory::data_type::f32, memory::format_tag::nhwc);
}
memory::desc src_md(const Window2d &g) { return nhwc_md(g.n, g.c, g.h, g.w); }
memory::desc dst_md(const Window2d &g) { return nhwc_md(g.n, g.c, g.oh, g.ow); }

dnnl::algorithm algorithm_of(PoolKind kind) {
  return kind == PoolKind::kMax ? dnnl::algorithm::pooling_max : dnnl::algorithm::pooling_avg_exclude_padding;
}

PoolFwd::primitive_desc forward_pd(PoolKind kind, const Window2d &g, dnnl::prop_kind prop) {
  PoolFwd::desc d(prop, algorithm_of(kind), src_md(g), dst_md(g), {g.sh, g.sw}, {g.kh, g.kw},
                  {g.pad_top, g.pad_left}, {g.pad_bottom, g.pad_right});
  return PoolFwd::primitive_desc(d, user_scratchpad_attr(), engine());
}

PrimitiveKey key_for(PrimitiveKind what, PoolKind kind, const Window2d &g) {
  PrimitiveKey key(what);
  key.add(static_cast<int64_t>(kind));
  append_key(key, g);
  return key;
}

}  // namespace

std::shared_ptr<Storage> pool2d_forward(PoolKind kind, const Window2d &g, const float *x, float *y,
                                        bool keep_workspace) {
  bool with_workspace = keep_workspace && kind == PoolKind::kMax;
  dnnl::prop_kind prop =
      with_workspace ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference;
  dnnl::primitive p = cached_primitive(
      key_for(with_workspace ? PrimitiveKind::kPoolForwardTraining : PrimitiveKind::kPoolForward, kind, g),
      [&] { return PoolFwd(forward_pd(kind, g, prop)); });
  if (!with_workspace) {
    execute(p, {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}});
    return nullptr;
  }
  std::shared_ptr<Storage> ws = Storage::allocate(arg_md(p, DNNL_ARG_WORKSPACE).get_size());
  execute(p, {{DNNL_ARG_SRC, x}, {DNNL_ARG_DST, y}, {DNNL_ARG_WORKSPACE, ws->data()}});
  return ws;
}

void pool2d_backward(PoolKind kind, const Window2d &g, const float *dy, const Storage *workspace, float *dx) {
  if (kind == PoolKind::kMax && !workspace)
    fail(Code::kInternal, "max_pool2d backward: the forward pass kept no workspace");
  dnnl::primitive p = cached_primitive(key_for(PrimitiveKind::kPoolBackward, kind, g), [&] {
    PoolBwd::desc d(algorithm_of(kind), src_md(g), dst_md(g), {g.sh, g.sw}, {g.kh, g.kw},
                    {g.pad_top, g.pad_left}, {g.pad_bottom, g.pad_right});
    return PoolBwd(PoolBwd::primitive_desc(d, user_scratchpad_attr(), engine(),
                                           forward_pd(kind, g, dnnl::prop_kind::forward_training)));
  });
  if (kind != PoolKind::kMax) return execute(p, {{DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_DIFF_SRC, dx}});
  const size_t ws_bytes = arg_md(p, DNNL_ARG_WORKSPACE).get_size();
  if (ws_bytes > workspace->bytes())
    fail(Code::kInternal, "max_pool2d backward: workspace of ", workspace->bytes(), " bytes, expected ",
         ws_bytes);
  execute(p, {{DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_DIFF_SRC, dx}, {DNNL_ARG_WORKSPACE, workspace->data()}});
}

}  // namespace kiln::kernels
