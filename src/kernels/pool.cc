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
  return PoolFwd::primitive_desc(d, engine());
}

// The workspace layout of a created max-pooling primitive.
memory::desc workspace_md(const dnnl::primitive &p) {
  return memory::desc(*dnnl_primitive_desc_query_md(p.get_primitive_desc(), dnnl_query_workspace_md, 0));
}

std::string key_for(const char *what, PoolKind kind, const Window2d &g) {
  std::string key = what;
  key += kind == PoolKind::kMax ? "max;" : "avg;";
  append_key(key, g);
  return key;
}

}  // namespace

std::shared_ptr<Storage> pool2d_forward(PoolKind kind, const Window2d &g, const float *x, float *y,
                                        bool keep_workspace) {
  bool with_workspace = keep_workspace && kind == PoolKind::kMax;
  dnnl::prop_kind prop =
      with_workspace ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference;
  dnnl::primitive p = cached_primitive(key_for(with_workspace ? "pool2d_fwd_train;" : "pool2d_fwd;", kind, g),
                                       [&] { return PoolFwd(forward_pd(kind, g, prop)); });
  memory src(src_md(g), engine(), const_cast<float *>(x));
  memory dst(dst_md(g), engine(), y);
  if (!with_workspace) {
    execute(p, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
    return nullptr;
  }
  memory::desc ws_md = workspace_md(p);
  std::shared_ptr<Storage> ws = Storage::allocate(ws_md.get_size());
  execute(
      p,
      {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}, {DNNL_ARG_WORKSPACE, memory(ws_md, engine(), ws->data())}});
  return ws;
}

void pool2d_backward(PoolKind kind, const Window2d &g, const float *dy, const Storage *workspace, float *dx) {
  if (kind == PoolKind::kMax && !workspace)
    fail(Code::kInternal, "max_pool2d backward: the forward pass kept no workspace");
  dnnl::primitive p = cached_primitive(key_for("pool2d_bwd;", kind, g), [&] {
    PoolBwd::desc d(algorithm_of(kind), src_md(g), dst_md(g), {g.sh, g.sw}, {g.kh, g.kw},
                    {g.pad_top, g.pad_left}, {g.pad_bottom, g.pad_right});
    return PoolBwd(
        PoolBwd::primitive_desc(d, engine(), forward_pd(kind, g, dnnl::prop_kind::forward_training)));
  });
  memory diff_dst(dst_md(g), engine(), const_cast<float *>(dy));
  memory diff_src(src_md(g), engine(), dx);
  std::unordered_map<int, memory> args{{DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_DIFF_SRC, diff_src}};
  if (kind == PoolKind::kMax) {
    memory::desc ws_md = workspace_md(p);
    if (ws_md.get_size() > workspace->bytes())
      fail(Code::kInternal, "max_pool2d backward: workspace of ", workspace->bytes(), " bytes, expected ",
           ws_md.get_size());
    args.emplace(DNNL_ARG_WORKSPACE, memory(ws_md, engine(), workspace->data()));
  }
  execute(p, args);
}

}  // namespace kiln::kernels
