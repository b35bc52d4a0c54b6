// kiln::distributed (kiln.hpp over libkiln_mpi) under `mpirun -np 2` and alone: the collectives,
// a fit with FitOptions::with_distribution and a GradientTape loop with DistributedOptimizer
// ending where one process ends on the same global batches. Every rank runs every test in order.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kiln/kiln.hpp"

namespace {

using kiln::Tensor;

constexpr int64_t kN = 640, kF = 5, kC = 3, kBatch = 64;

struct Problem {
  Tensor x, y;
};

Problem problem() {
  std::vector<float> x(static_cast<size_t>(kN * kF));
  std::vector<int64_t> y(static_cast<size_t>(kN));
  uint32_t s = 3;
  for (float &v : x) {
    s = s * 1664525u + 1013904223u;
    v = static_cast<float>(s >> 8) / 8388608.0f - 1.0f;
  }
  for (int64_t i = 0; i < kN; ++i) {
    const float *r = x.data() + i * kF;
    y[size_t(i)] = std::max_element(r, r + kC) - r;
  }
  return {Tensor::from_vector(x, {kN, kF}), Tensor::from_vector(y, {kN})};
}

kiln::Sequential model() {
  kiln::set_seed(11);
  kiln::Sequential m({kiln::layers::Dense(12, "relu"), kiln::layers::Dense(kC, "softmax")});
  m(kiln::zeros({1, kF}));  // builds it
  return m;
}

float max_difference(const kiln::Layer &a, const kiln::Layer &b) {
  const auto va = a.variables(), vb = b.variables();
  EXPECT_EQ(va.size(), vb.size());
  float worst = 0;
  for (size_t i = 0; i < va.size() && i < vb.size(); ++i) {
    const std::vector<float> p = va[i].value().to_vector<float>(), q = vb[i].value().to_vector<float>();
    for (size_t k = 0; k < p.size(); ++k) worst = std::max(worst, std::fabs(p[k] - q[k]));
  }
  return worst;
}

TEST(HppDistributed, Collectives) {
  const int rank = kiln::distributed::rank(), size = kiln::distributed::size();
  ASSERT_GE(rank, 0);
  ASSERT_LT(rank, size);
  EXPECT_LT(kiln::distributed::local_rank(), kiln::distributed::local_size());
  const Tensor t = Tensor::from_vector({float(rank + 1), 2.0f}, {2});
  EXPECT_EQ(kiln::distributed::allreduce(t, "sum").to_vector<float>()[0], float(size * (size + 1) / 2));
  EXPECT_FLOAT_EQ(kiln::distributed::allreduce(t).to_vector<float>()[1], 2.0f);
  EXPECT_EQ(kiln::distributed::broadcast(t, size - 1).to_vector<float>()[0], float(size));
  EXPECT_EQ(kiln::distributed::allgather(t).to_vector<float>().size(), size_t(2 * size));
  kiln::Variable v(Tensor::from_vector({float(rank)}, {1}), "v");
  kiln::distributed::allreduce_(v, "sum");
  EXPECT_EQ(v.value().to_vector<float>()[0], float(size * (size - 1) / 2));
  kiln::distributed::barrier();
  EXPECT_THROW(kiln::distributed::allreduce(t, "min"), kiln::Error);
  kiln::Communicator world = kiln::distributed::world();
  EXPECT_EQ(world.size(), size);
  EXPECT_EQ(world.rank(), rank);
}

TEST(HppDistributed, FitWithDistributionMatchesOneProcess) {
  const Problem p = problem();
  auto train = [&](const kiln::Communicator &comm) {
    kiln::Sequential m = model();
    m.compile("adam", "sparse_categorical_crossentropy", {"accuracy"});
    m.fit(p.x, p.y, kiln::FitOptions().with_batch_size(kBatch).with_verbose(0).with_distribution(comm));
    return m;
  };
  const kiln::Sequential dist = train(kiln::distributed::world());
  const kiln::Sequential one = train(kiln::Communicator());
  EXPECT_LT(max_difference(dist, one), 2e-5f);
}

// distributed: 0 one process; 1 DistributedOptimizer; 2 DistributedGradientTape (one bucket per
// gradient, summed during the backward pass) with a plain optimizer.
void tape_loop_matches_one_process(int mode) {
  const Problem p = problem();
  const int rank = kiln::distributed::rank(), size = kiln::distributed::size();
  auto loop = [&](int distributed) {
    kiln::Sequential m = model();
    kiln::optimizers::Optimizer opt =
        kiln::optimizers::Optimizer::create("SGD", kiln::Config().set("learning_rate", 0.2));
    if (distributed == 1) {
      opt = kiln::distributed::DistributedOptimizer(opt);
      EXPECT_TRUE(opt.distributed().valid());
    }
    if (distributed) {
      kiln::distributed::broadcast_variables(m.variables());
    }
    kiln::losses::SparseCategoricalCrossentropyOptions lo;
    const kiln::Loss loss_fn = kiln::losses::SparseCategoricalCrossentropy(lo);
    for (int64_t step = 0; step < kN / kBatch; ++step) {
      int64_t lo_row = step * kBatch, rows = kBatch;
      if (distributed) {
        lo_row += kBatch * rank / size;
        rows = kBatch * (rank + 1) / size - kBatch * rank / size;
      }
      const Tensor x = kiln::slice(p.x, {lo_row, 0}, {rows, kF}), y = kiln::slice(p.y, {lo_row}, {rows});
      kiln::GradientTape tape;
      if (distributed == 2) kiln::distributed::DistributedGradientTape(tape, "mean", 0);
      const Tensor loss = loss_fn(y, m(x, true));
      const std::vector<kiln::Variable> vars = m.trainable_variables();
      opt.apply_gradients(tape.gradient(loss, vars), vars);
    }
    return m;
  };
  const kiln::Sequential dist = loop(mode), one = loop(0);
  EXPECT_LT(max_difference(dist, one), 2e-5f);
}

TEST(HppDistributed, GradientTapeLoopWithDistributedOptimizer) { tape_loop_matches_one_process(1); }

TEST(HppDistributed, GradientTapeLoopWithDistributedGradientTape) { tape_loop_matches_one_process(2); }

}  // namespace

int main(int argc, char **argv) {
  ::testing::InitGoogleTest(&argc, argv);
  kiln::distributed::init(120);
  const int rc = RUN_ALL_TESTS();
  kiln::distributed::finalize();
  return rc;
}
