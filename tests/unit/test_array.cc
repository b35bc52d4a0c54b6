// Array ops: reference checks against plain index loops (every dtype, odd sizes,
// sizes on both sides of the parallel threshold), the gradient table, errors.
#include <gtest/gtest.h>

#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "core/error.h"
#include "ops/array_internal.h"
#include "ops/ops.h"
#include "test_util.h"

namespace kiln {
namespace {

using testing::expect_error;
using testing::make;
using testing::make_typed;
using testing::random_tensor;
using Dims = std::vector<int64_t>;

const DType kAllDTypes[] = {DType::kFloat32, DType::kBFloat16, DType::kInt32,
                            DType::kInt64,   DType::kUInt8,    DType::kBool};

// Counting integers from `start` (exact in every dtype but bool) in row-major order.
Tensor iota(const Shape &shape, DType dtype = DType::kFloat32, int64_t start = 0) {
  Tensor t = Tensor::empty(dtype, shape);
  dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    T *p = t.mutable_data<T>();
    // Wide types count without wrapping; narrow ones wrap below 256 to stay exact.
    const int64_t wrap = sizeof(T) >= 4 ? int64_t{1} << 24 : 251;
    for (int64_t i = 0; i < t.num_elements(); ++i)
      p[i] = static_cast<T>(static_cast<float>((i + start) % wrap + 1));
  });
  return t;
}

std::vector<double> as_doubles(const Tensor &t) {
  std::vector<double> v(static_cast<size_t>(t.num_elements()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = t.item_as_double(static_cast<int64_t>(i));
  return v;
}

Dims unravel(int64_t flat, const Shape &s) {
  Dims idx(static_cast<size_t>(s.rank()));
  for (int k = s.rank() - 1; k >= 0; --k) {
    idx[static_cast<size_t>(k)] = flat % s[k];
    flat /= s[k];
  }
  return idx;
}

int64_t ravel(const Dims &idx, const Shape &s) {
  int64_t flat = 0;
  for (int k = 0; k < s.rank(); ++k) flat = flat * s[k] + idx[static_cast<size_t>(k)];
  return flat;
}

// Expects out to have `shape` and out[idx] == in[source(idx)] for every output index.
void expect_mapping(const Tensor &out, const Shape &shape, const Tensor &in,
                    const std::function<Dims(const Dims &)> &source, const std::string &what) {
  ASSERT_EQ(out.shape(), shape) << what;
  ASSERT_EQ(out.dtype(), in.dtype()) << what;
  std::vector<double> got = as_doubles(out), src = as_doubles(in);
  int bad = 0;
  for (int64_t o = 0; o < out.num_elements() && bad < 5; ++o) {
    double want = src[static_cast<size_t>(ravel(source(unravel(o, shape)), in.shape()))];
    if (got[static_cast<size_t>(o)] != want) {
      ++bad;
      ADD_FAILURE() << what << ": element " << o << " is " << got[static_cast<size_t>(o)] << ", expected "
                    << want;
    }
  }
}

// ---------------- reshape family ----------------

TEST(ArrayReshape, InfersAndSharesStorage) {
  Tensor x = iota({2, 3, 4});
  Tensor y = ops::reshape(x, {4, -1});
  EXPECT_EQ(y.shape(), Shape({4, 6}));
  EXPECT_EQ(y.raw_data(), x.raw_data());
  EXPECT_NE(y.id(), x.id());
  EXPECT_EQ(ops::reshape(x, {-1}).shape(), Shape({24}));
  EXPECT_EQ(ops::reshape(iota({0, 3}), {3, 0}).shape(), Shape({3, 0}));
  EXPECT_EQ(ops::reshape(iota({1}), {}).shape(), Shape({}));
}

TEST(ArrayReshape, ExpandDimsAndSqueeze) {
  Tensor x = iota({2, 3});
  EXPECT_EQ(ops::expand_dims(x, 0).shape(), Shape({1, 2, 3}));
  EXPECT_EQ(ops::expand_dims(x, 2).shape(), Shape({2, 3, 1}));
  EXPECT_EQ(ops::expand_dims(x, -1).shape(), Shape({2, 3, 1}));
  EXPECT_EQ(ops::expand_dims(x, -2).shape(), Shape({2, 1, 3}));
  EXPECT_EQ(ops::expand_dims(x, -3).shape(), Shape({1, 2, 3}));
  Tensor y = iota({1, 2, 1, 3, 1});
  EXPECT_EQ(ops::squeeze(y).shape(), Shape({2, 3}));
  EXPECT_EQ(ops::squeeze(y, {0, -1}).shape(), Shape({2, 1, 3}));
  EXPECT_EQ(ops::squeeze(y, {2, 2}).shape(), Shape({1, 2, 3, 1}));
  EXPECT_EQ(as_doubles(ops::squeeze(y)), as_doubles(y));
}

TEST(ArrayReshape, StopGradientSharesStorageAndRecordsNothing) {
  Tensor x = random_tensor({3, 5}, 1);
  autodiff::Tape tape(false, false);
  tape.watch(x);
  Tensor y = ops::stop_gradient(x);
  EXPECT_EQ(y.raw_data(), x.raw_data());
  EXPECT_NE(y.id(), x.id());
  std::vector<Tensor> g = tape.gradient(y, {x}, autodiff::Unconnected::kNone);
  EXPECT_FALSE(g[0].defined());
}

// ---------------- copies vs reference loops ----------------

TEST(ArrayTranspose, MatchesReferenceForEveryDType) {
  struct Case {
    Shape shape;
    Dims perm;
  };
  std::vector<Case> cases = {{{3, 5}, {1, 0}},
                             {{7}, {0}},
                             {{2, 3, 5}, {}},
                             {{2, 3, 5}, {0, 2, 1}},
                             {{2, 3, 5, 7}, {2, 0, 3, 1}},
                             {{4, 1, 3}, {-1, 0, 1}},
                             {{3, 5}, {0, 1}},
                             {{3, 131, 257}, {2, 0, 1}},
                             {{67, 1031}, {1, 0}},
                             {{5, 3, 2, 4, 3}, {4, 3, 2, 1, 0}},
                             {{4, 9, 10}, {0, 2, 1}},
                             {{9, 3, 10}, {2, 1, 0}},
                             {{2, 40, 3, 33}, {0, 3, 2, 1}}};
  for (DType dt : kAllDTypes) {
    for (const Case &c : cases) {
      Tensor x = iota(c.shape, dt);
      Dims perm = c.perm;
      if (perm.empty())
        for (int i = c.shape.rank() - 1; i >= 0; --i) perm.push_back(i);
      for (int64_t &p : perm) p = p < 0 ? p + c.shape.rank() : p;
      Shape out_shape;
      for (int64_t p : perm) out_shape.push_back(c.shape[static_cast<int>(p)]);
      expect_mapping(
          ops::transpose(x, c.perm), out_shape, x,
          [&](const Dims &o) {
            Dims i(o.size());
            for (size_t k = 0; k < o.size(); ++k) i[static_cast<size_t>(perm[k])] = o[k];
            return i;
          },
          std::string("transpose ") + dtype_name(dt) + c.shape.to_string());
    }
  }
}

TEST(ArrayBroadcastTo, MatchesReference) {
  std::vector<std::pair<Shape, Shape>> cases = {{{3, 1}, {3, 5}},
                                                {{5}, {3, 5}},
                                                {{1}, {7}},
                                                {{}, {2, 3}},
                                                {{2, 1, 3}, {4, 2, 5, 3}},
                                                {{3, 5}, {3, 5}},
                                                {{1, 257}, {300, 257}},
                                                {{131, 1}, {131, 600}}};
  for (DType dt : {DType::kFloat32, DType::kInt64, DType::kUInt8}) {
    for (auto &[in, out] : cases) {
      Tensor x = iota(in, dt);
      int lead = out.rank() - in.rank();
      expect_mapping(
          ops::broadcast_to(x, out), out, x,
          [&](const Dims &o) {
            Dims i;
            for (int k = 0; k < in.rank(); ++k)
              i.push_back(in[k] == 1 ? 0 : o[static_cast<size_t>(k + lead)]);
            return i;
          },
          "broadcast_to " + in.to_string() + " -> " + out.to_string());
    }
  }
}

TEST(ArrayTile, MatchesReference) {
  std::vector<std::pair<Shape, Dims>> cases = {
      {{3}, {4}}, {{2, 3}, {2, 3}}, {{3, 5}, {1, 1}},   {{2, 1, 3}, {3, 4, 1}},
      {{}, {}},   {{2, 3}, {0, 2}}, {{7, 33}, {40, 5}}, {{5, 3, 2, 3, 1}, {1, 2, 1, 2, 3}}};
  for (DType dt : {DType::kFloat32, DType::kBFloat16, DType::kBool}) {
    for (auto &[in, mult] : cases) {
      Tensor x = iota(in, dt);
      Shape out;
      for (int k = 0; k < in.rank(); ++k) out.push_back(in[k] * mult[static_cast<size_t>(k)]);
      expect_mapping(
          ops::tile(x, mult), out, x,
          [&](const Dims &o) {
            Dims i(o.size());
            for (size_t k = 0; k < o.size(); ++k) i[k] = o[k] % in[static_cast<int>(k)];
            return i;
          },
          "tile " + in.to_string());
    }
  }
}

TEST(ArraySlice, MatchesReference) {
  struct Case {
    Shape shape;
    Dims begin, size;
  };
  std::vector<Case> cases = {{{7}, {2}, {3}},
                             {{7}, {2}, {-1}},
                             {{3, 5}, {1, 1}, {2, 3}},
                             {{3, 5}, {0, 4}, {-1, 1}},
                             {{2, 3, 5}, {1, 0, 2}, {1, 3, 3}},
                             {{3, 5}, {3, 5}, {0, 0}},
                             {{9, 300, 61}, {2, 7, 3}, {7, 290, -1}}};
  for (DType dt : {DType::kFloat32, DType::kInt32, DType::kBool}) {
    for (const Case &c : cases) {
      Tensor x = iota(c.shape, dt);
      Shape out;
      for (size_t k = 0; k < c.size.size(); ++k)
        out.push_back(c.size[k] < 0 ? c.shape[static_cast<int>(k)] - c.begin[k] : c.size[k]);
      expect_mapping(
          ops::slice(x, c.begin, c.size), out, x,
          [&](const Dims &o) {
            Dims i(o.size());
            for (size_t k = 0; k < o.size(); ++k) i[k] = o[k] + c.begin[k];
            return i;
          },
          "slice " + c.shape.to_string());
    }
  }
}

TEST(ArrayConcat, ConcatSplitAndStackMatchReference) {
  struct Case {
    std::vector<Shape> parts;
    int64_t axis;
  };
  std::vector<Case> cases = {{{{3}, {4}}, 0},
                             {{{2, 3}, {2, 1}, {2, 5}}, 1},
                             {{{2, 3}, {1, 3}, {4, 3}}, -2},
                             {{{2, 0, 3}, {2, 3, 3}, {2, 1, 3}}, 1},
                             {{{3, 5, 7}, {3, 5, 2}}, 2},
                             {{{101, 300}, {101, 7}, {101, 301}}, 1}};
  for (DType dt : {DType::kFloat32, DType::kInt64, DType::kUInt8}) {
    for (const Case &c : cases) {
      std::vector<Tensor> parts;
      Dims sizes;
      int a = c.axis < 0 ? c.axis + c.parts[0].rank() : static_cast<int>(c.axis);
      for (size_t i = 0; i < c.parts.size(); ++i) {
        parts.push_back(iota(c.parts[i], dt, static_cast<int64_t>(i) * 60));
        sizes.push_back(c.parts[i][a]);
      }
      Tensor y = ops::concat(parts, c.axis);
      Shape out = c.parts[0];
      out.set_dim(a, std::accumulate(sizes.begin(), sizes.end(), int64_t{0}));
      ASSERT_EQ(y.shape(), out);
      std::vector<double> got = as_doubles(y);
      for (int64_t o = 0; o < y.num_elements(); ++o) {
        Dims idx = unravel(o, out);
        size_t p = 0;
        while (idx[static_cast<size_t>(a)] >= sizes[p]) idx[static_cast<size_t>(a)] -= sizes[p++];
        ASSERT_EQ(got[static_cast<size_t>(o)], parts[p].item_as_double(ravel(idx, c.parts[p])))
            << "concat at " << o;
      }
      std::vector<Tensor> back = ops::split(y, sizes, 0, c.axis);
      ASSERT_EQ(back.size(), parts.size());
      for (size_t p = 0; p < parts.size(); ++p) {
        EXPECT_EQ(back[p].shape(), parts[p].shape());
        EXPECT_EQ(as_doubles(back[p]), as_doubles(parts[p])) << "split part " << p;
      }
    }
  }
  // Equal parts, an inferred size, and stack on every axis.
  Tensor x = iota({6, 5});
  std::vector<Tensor> thirds = ops::split(x, {}, 3, 0);
  ASSERT_EQ(thirds.size(), 3u);
  EXPECT_EQ(as_doubles(thirds[1]), as_doubles(ops::slice(x, {2, 0}, {2, -1})));
  std::vector<Tensor> inferred = ops::split(x, {1, -1, 2}, 0, 1);
  EXPECT_EQ(inferred[1].shape(), Shape({6, 2}));
  EXPECT_EQ(as_doubles(inferred[2]), as_doubles(ops::slice(x, {0, 3}, {6, 2})));
  Tensor a = iota({2, 3}), b = iota({2, 3}, DType::kFloat32, 100);
  Tensor ab = ops::concat({a, b}, 0);  // stacked element (k, i, j) is ab[k * 2 + i, j]
  for (int64_t axis : {0, 1, 2, -1, -3}) {
    int ax = static_cast<int>(axis < 0 ? axis + 3 : axis);
    Dims dims = {2, 3};
    dims.insert(dims.begin() + ax, 2);
    expect_mapping(
        ops::stack({a, b}, axis), Shape(dims), ab,
        [&](const Dims &o) {
          Dims rest = o;
          rest.erase(rest.begin() + ax);
          return Dims{o[static_cast<size_t>(ax)] * 2 + rest[0], rest[1]};
        },
        "stack axis " + std::to_string(axis));
  }
}

TEST(ArrayGather, MatchesReference) {
  struct Case {
    Shape params, indices;
    int64_t axis;
  };
  std::vector<Case> cases = {{{7}, {4}, 0},          {{5, 3}, {2, 3}, 0},       {{5, 3}, {4}, 1},
                             {{2, 5, 3}, {6}, -2},   {{4, 3}, {}, 0},           {{4, 3}, {0}, 0},
                             {{1000, 65}, {700}, 0}, {{3, 401, 129}, {2, 3}, 1}};
  for (DType dt : {DType::kFloat32, DType::kInt64, DType::kBFloat16}) {
    for (const Case &c : cases) {
      int a = c.axis < 0 ? c.axis + c.params.rank() : static_cast<int>(c.axis);
      int64_t n = c.params[a];
      std::vector<int64_t> idx64(static_cast<size_t>(c.indices.num_elements()));
      for (size_t i = 0; i < idx64.size(); ++i)
        idx64[i] = static_cast<int64_t>((i * 7 + 3) % static_cast<size_t>(n));
      std::vector<int32_t> idx32(idx64.begin(), idx64.end());
      Tensor x = iota(c.params, dt);
      Shape out;
      for (int k = 0; k < a; ++k) out.push_back(c.params[k]);
      for (int k = 0; k < c.indices.rank(); ++k) out.push_back(c.indices[k]);
      for (int k = a + 1; k < c.params.rank(); ++k) out.push_back(c.params[k]);
      auto source = [&](const Dims &o) {
        Dims i(o.begin(), o.begin() + a);
        Dims ipos(o.begin() + a, o.begin() + a + c.indices.rank());
        i.push_back(idx64[static_cast<size_t>(ravel(ipos, c.indices))]);
        i.insert(i.end(), o.begin() + a + c.indices.rank(), o.end());
        return i;
      };
      expect_mapping(ops::gather(x, make_typed<int64_t>(c.indices, idx64), c.axis), out, x, source,
                     "gather i64");
      expect_mapping(ops::gather(x, make_typed<int32_t>(c.indices, idx32), c.axis), out, x, source,
                     "gather i32");
    }
  }
}

TEST(ArrayGather, ScatterAddSumsRepeatedIndices) {
  Tensor updates = make({2, 4}, {1, 2, 3, 4, 10, 20, 30, 40});
  Tensor idx = make_typed<int32_t>({4}, {2, 0, 2, 2});
  testing::expect_near(ops::internal::scatter_add(updates, idx, {2, 3}, 1), {2, 0, 8, 20, 0, 80});
  Tensor big = random_tensor({1000, 70}, 3);
  std::vector<int64_t> iv(1000);
  for (size_t i = 0; i < iv.size(); ++i) iv[i] = static_cast<int64_t>(i * i % 13);
  Tensor s = ops::internal::scatter_add(big, make_typed<int64_t>({1000}, iv), {13, 70}, 0);
  std::vector<float> want(13 * 70, 0.0f);
  const float *b = big.data<float>();
  for (size_t i = 0; i < 1000; ++i)
    for (size_t c = 0; c < 70; ++c) want[static_cast<size_t>(iv[i]) * 70 + c] += b[i * 70 + c];
  testing::expect_near(s, want, 1e-4f);
}

// A wide embedding's gradient: the columns split into blocks among the threads, each block zeroed
// and summed in index order, so every element equals the in-order reference sum exactly, untouched
// rows are 0 (the buffer may come from the allocator's cache with old values), at 1 and 2 threads.
TEST(ArrayGather, ScatterAddSplitsWideRowsByColumnsWithTheSameBits) {
  const int64_t m = 3000, n = 50, inner = 300;
  const Tensor updates = random_tensor({m, inner}, 4);
  std::vector<int32_t> iv(static_cast<size_t>(m));
  for (size_t i = 0; i < iv.size(); ++i) iv[i] = static_cast<int32_t>(i * i % 47);  // rows 47..49 untouched
  const Tensor idx = make_typed<int32_t>({m}, iv);
  std::vector<float> want(static_cast<size_t>(n * inner), 0.0f);
  const float *u = updates.data<float>();
  for (size_t i = 0; i < iv.size(); ++i)
    for (size_t c = 0; c < static_cast<size_t>(inner); ++c)
      want[static_cast<size_t>(iv[i]) * inner + c] += u[i * inner + c];
  for (int threads : {1, 2}) {
    const int saved = num_threads();
    set_num_threads(threads);
    ops::fill(Shape({n, inner}), 7.0, DType::kFloat32);  // leaves a dirty buffer of this size in the cache
    const std::vector<float> got = testing::values(ops::internal::scatter_add(updates, idx, {n, inner}, 0));
    set_num_threads(saved);
    for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(got[i], want[i]) << i << ", " << threads << " threads";
  }
}

TEST(ArrayOneHot, MatchesReferenceWithOutOfRangeRowsOff) {
  std::vector<int64_t> iv = {0, 3, -1, 4, 2, 7};
  for (bool wide : {false, true}) {
    Tensor idx = wide ? make_typed<int64_t>({2, 3}, iv) : make_typed<int32_t>({2, 3}, {iv.begin(), iv.end()});
    Tensor y = ops::one_hot(idx, 4, 5.0f, -1.0f);
    ASSERT_EQ(y.shape(), Shape({2, 3, 4}));
    std::vector<float> want;
    for (int64_t k : iv)
      for (int64_t d = 0; d < 4; ++d) want.push_back(k == d ? 5.0f : -1.0f);
    testing::expect_near(y, want);
  }
  std::vector<int32_t> many(40000);
  for (size_t i = 0; i < many.size(); ++i) many[i] = static_cast<int32_t>(i % 11);
  Tensor y = ops::one_hot(make_typed<int32_t>({40000}, many), 10);
  const float *p = y.data<float>();
  for (size_t i = 0; i < many.size(); ++i)
    for (int32_t d = 0; d < 10; ++d)
      ASSERT_EQ(p[i * 10 + static_cast<size_t>(d)], many[i] == d ? 1.0f : 0.0f);
}

// ---------------- gradients ----------------

using GradCase = testing::ShapeGradCase;

TEST(ArrayGradients, Table) {
  using V = const std::vector<Tensor> &;
  Tensor idx = make_typed<int32_t>({5}, {2, 0, 2, 4, 1});
  Tensor idx2 = make_typed<int64_t>({2, 2}, {1, 1, 0, 2});
  std::vector<GradCase> cases = {
      {"reshape",
       {{3, 5}},
       [](V x) {
         return ops::reshape(x[0], {5, -1});
       }},
      {"expand_dims", {{3, 5}}, [](V x) { return ops::expand_dims(x[0], -2); }},
      {"squeeze", {{3, 1, 5}}, [](V x) { return ops::squeeze(x[0]); }},
      {"transpose_2d", {{3, 5}}, [](V x) { return ops::transpose(x[0]); }},
      {"transpose_3d",
       {{2, 3, 4}},
       [](V x) {
         return ops::transpose(x[0], {2, 0, 1});
       }},
      {"broadcast_to",
       {{3, 1}},
       [](V x) {
         return ops::broadcast_to(x[0], {2, 3, 5});
       }},
      {"broadcast_to_vec",
       {{5}},
       [](V x) {
         return ops::broadcast_to(x[0], {3, 5});
       }},
      {"tile",
       {{2, 3}},
       [](V x) {
         return ops::tile(x[0], {3, 2});
       }},
      {"tile_3d",
       {{2, 1, 3}},
       [](V x) {
         return ops::tile(x[0], {1, 4, 2});
       }},
      {"concat",
       {{2, 3}, {2, 1}, {2, 4}},
       [](V x) {
         return ops::concat({x[0], x[1], x[2]}, 1);
       }},
      {"concat_axis0",
       {{1, 3}, {3, 3}},
       [](V x) {
         return ops::concat({x[0], x[1]}, 0);
       }},
      {"split_reordered",
       {{3, 7}},
       [](V x) {
         std::vector<Tensor> p = ops::split(x[0], {2, -1, 1}, 0, 1);
         return ops::concat({p[2], p[0]}, 1);  // p[1] unused: its gradient is zero
       }},
      {"split_equal", {{6, 2}}, [](V x) { return ops::split(x[0], {}, 3, 0)[1]; }},
      {"slice",
       {{3, 5}},
       [](V x) {
         return ops::slice(x[0], {1, 1}, {2, -1});
       }},
      {"slice_3d",
       {{2, 3, 5}},
       [](V x) {
         return ops::slice(x[0], {1, 0, 2}, {1, 2, 3});
       }},
      {"pad_zeros",
       {{2, 3}},
       [](V x) {
         return ops::internal::pad_zeros(x[0], {1, 0}, {4, 5});
       }},
      {"stack",
       {{3}, {3}, {3}},
       [](V x) {
         return ops::stack({x[0], x[1], x[2]}, 1);
       }},
      {"gather_axis0", {{5, 3}}, [&](V x) { return ops::gather(x[0], idx, 0); }},
      {"gather_axis1", {{2, 3, 2}}, [&](V x) { return ops::gather(x[0], idx2, 1); }},
      {"scatter_add",
       {{5, 3}},
       [&](V x) {
         return ops::internal::scatter_add(x[0], idx, {6, 3}, 0);
       }},
      {"gather_then_transpose", {{5, 3}}, [&](V x) { return ops::transpose(ops::gather(x[0], idx, 0)); }},
  };
  testing::check_gradient_table(cases, 10u);
}

TEST(ArrayGradients, GatherGradientIsScatterAddOfTheOutputGradient) {
  Tensor params = random_tensor({4, 2}, 5);
  Tensor idx = make_typed<int64_t>({3}, {3, 3, 0});
  autodiff::Tape tape(false, false);
  tape.watch(params);
  Tensor y = ops::gather(params, idx, 0);
  std::vector<Tensor> g =
      tape.gradient(y, {params}, autodiff::Unconnected::kNone, make({3, 2}, {1, 2, 3, 4, 5, 6}));
  testing::expect_near(g[0], {5, 6, 0, 0, 0, 0, 4, 6});
}

// The gradients of gather and slice are ops with gradients of their own, so an
// outer tape differentiates them again: for y = sum(square(f(x))), the inner
// gradient is f^T(2 f(x)) and d/dx sum(w * that) = 2 f^T f (w).
TEST(ArrayGradients, SecondOrderThroughGatherAndSlice) {
  Tensor idx = make_typed<int32_t>({4}, {3, 0, 3, 3});
  std::vector<std::pair<std::string, std::function<Tensor(const Tensor &)>>> cases = {
      {"gather", [&](const Tensor &x) { return ops::gather(x, idx, 0); }},
      {"slice",
       [](const Tensor &x) {
         return ops::slice(x, {1, 1}, {3, -1});
       }},
  };
  for (auto &[name, f] : cases) {
    Tensor x = random_tensor({5, 3}, 8), w = random_tensor({5, 3}, 9);
    autodiff::Tape outer(false, false);
    outer.watch(x);
    Tensor g;
    {
      autodiff::Tape inner(false, false);
      inner.watch(x);
      Tensor y = ops::sum(ops::square(f(x)));
      g = inner.gradient(y, {x}, autodiff::Unconnected::kZero)[0];
    }
    Tensor h = outer.gradient(ops::sum(ops::mul(g, w)), {x}, autodiff::Unconnected::kNone)[0];
    ASSERT_TRUE(h.defined()) << name;
    // f^T f is diagonal: entry r is how many outputs read element r.
    Tensor reads;
    {
      autodiff::Tape t(false, false);
      t.watch(x);
      reads = t.gradient(f(x), {x}, autodiff::Unconnected::kZero)[0];
    }
    std::vector<float> want(15);
    for (size_t i = 0; i < 15; ++i) want[i] = 2.0f * reads.data<float>()[i] * w.data<float>()[i];
    testing::expect_near(h, want, 1e-5f, name);
  }
}

// ---------------- errors ----------------

TEST(ArrayErrors, EveryOpNamesItselfAndTheInput) {
  const Code kBad = Code::kInvalidArgument;
  Tensor x = iota({2, 3});
  expect_error([&] { ops::reshape(x, {4, -1}); }, kBad, {"reshape", "float32[2, 3]", "[4, -1]"});
  expect_error([&] { ops::reshape(x, {5}); }, kBad, {"reshape", "float32[2, 3]", "[5]"});
  expect_error([&] { ops::reshape(x, {-1, -1}); }, kBad, {"reshape", "more than one -1"});
  expect_error([&] { ops::reshape(x, {-2, 3}); }, kBad, {"reshape", "negative"});
  expect_error([&] { ops::reshape(Tensor(), {1}); }, kBad, {"reshape", "undefined"});
  expect_error([&] { ops::expand_dims(x, 3); }, kBad, {"expand_dims", "float32[2, 3]", "[-3, 2]"});
  expect_error([&] { ops::expand_dims(iota({1, 1, 1, 1, 1, 1, 1, 1}), 0); }, kBad, {"expand_dims", "rank 9"});
  expect_error([&] { ops::squeeze(x, {1}); }, kBad, {"squeeze", "float32[2, 3]", "size is 3"});
  expect_error([&] { ops::squeeze(x, {2}); }, kBad, {"squeeze", "axis 2"});
  expect_error([&] { ops::stop_gradient(Tensor()); }, kBad, {"stop_gradient", "undefined"});
  expect_error([&] { ops::transpose(x, {0}); }, kBad, {"transpose", "float32[2, 3]", "[0]"});
  expect_error([&] { ops::transpose(x, {1, 1}); }, kBad, {"transpose", "repeats axis 1"});
  expect_error([&] { ops::transpose(x, {0, 2}); }, kBad, {"transpose", "axis 2"});
  expect_error([&] { ops::broadcast_to(x, {3, 3}); }, kBad, {"broadcast_to", "float32[2, 3]", "[3, 3]"});
  expect_error([&] { ops::broadcast_to(x, {3}); }, kBad, {"broadcast_to", "float32[2, 3]", "[3]"});
  expect_error([&] { ops::tile(x, {2}); }, kBad, {"tile", "float32[2, 3]", "[2]"});
  expect_error([&] { ops::tile(x, {2, -1}); }, kBad, {"tile", "negative"});
  expect_error([&] { ops::concat({}, 0); }, kBad, {"concat", "empty"});
  expect_error(
      [&] {
        ops::concat({x, iota({3, 3})}, 1);
      },
      kBad, {"concat", "float32[3, 3]", "float32[2, 3]"});
  expect_error([&] { ops::concat({x, iota({2, 3}, DType::kInt32)}, 0); }, kBad, {"concat", "int32[2, 3]"});
  expect_error([&] { ops::concat({x, x}, 2); }, kBad, {"concat", "axis 2"});
  expect_error([&] { ops::concat({iota({})}, 0); }, kBad, {"concat", "scalars", "float32[]"});
  expect_error([&] { ops::split(x, {}, 2, 1); }, kBad, {"split", "float32[2, 3]", "2 equal parts"});
  expect_error([&] { ops::split(x, {1, 1}, 0, 1); }, kBad, {"split", "[1, 1]", "float32[2, 3]"});
  expect_error([&] { ops::split(x, {4, -1}, 0, 1); }, kBad, {"split", "[4, -1]"});
  expect_error([&] { ops::split(x, {-1, -1}, 0, 1); }, kBad, {"split", "negative"});
  expect_error([&] { ops::split(iota({}), {}, 1, 0); }, kBad, {"split", "scalar"});
  expect_error([&] { ops::slice(x, {0}, {1}); }, kBad, {"slice", "float32[2, 3]", "one entry per dim"});
  expect_error([&] { ops::slice(x, {1, 2}, {1, 2}); }, kBad, {"slice", "[2, 3]", "dim 1"});
  expect_error([&] { ops::slice(x, {-1, 0}, {1, 1}); }, kBad, {"slice", "[-1, 0]"});
  expect_error([&] { ops::stack({}, 0); }, kBad, {"stack", "empty"});
  expect_error([&] { ops::stack({x, iota({3, 2})}, 0); }, kBad, {"stack", "float32[3, 2]", "float32[2, 3]"});
  expect_error([&] { ops::stack({x, x}, 3); }, kBad, {"stack", "axis 3", "float32[2, 3]"});
  Tensor idx = make_typed<int32_t>({3}, {0, 5, 1});
  expect_error([&] { ops::gather(x, idx, 1); }, kBad, {"gather", "indices[1] = 5", "[0, 3)", "[2, 3]"});
  expect_error([&] { ops::gather(x, make_typed<int64_t>({1}, {-1}), 0); }, kBad, {"gather", "-1", "[0, 2)"});
  expect_error([&] { ops::gather(x, x, 0); }, kBad, {"gather", "indices", "float32[2, 3]", "int32 or int64"});
  expect_error([&] { ops::gather(iota({}), idx, 0); }, kBad, {"gather", "params shape []", "scalar"});
  expect_error([&] { ops::gather(x, idx, 2); }, kBad, {"gather", "axis 2"});
  expect_error([&] { ops::one_hot(x, 3); }, kBad, {"one_hot", "float32[2, 3]"});
  expect_error([&] { ops::one_hot(idx, -1); }, kBad, {"one_hot", "depth is -1", "int32[3]"});
  Tensor idx3 = make_typed<int32_t>({3}, {0, 1, 1});
  expect_error(
      [&] {
        ops::internal::scatter_add(x, idx3, {4, 2}, 0);
      },
      kBad, {"scatter_add", "float32[2, 3]", "expected shape [3, 2]"});
  expect_error(
      [&] {
        ops::internal::scatter_add(x, idx, {6, 3}, 1);
      },
      kBad, {"scatter_add", "indices[1] = 5"});
  expect_error([&] { ops::internal::pad_zeros(x, {1, 1}, {2, 3}); }, kBad, {"pad_zeros", "[2, 3]"});
}

}  // namespace
}  // namespace kiln
