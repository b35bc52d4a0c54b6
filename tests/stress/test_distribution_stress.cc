// The overlapped gradient allreduce under threads (and TSan): each rank's backward walk hands
// buckets to its background thread while it goes on, and the main thread takes over the buckets
// the worker has not started. Over many steps, with 3 ranks that are threads, every rank must get
// the sums of one reduction after the walk, to the bit.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

#include "autodiff/tape.h"
#include "ops/ops.h"
#include "test_util.h"
#include "thread_communicator.h"

namespace kiln::train {
namespace {

int iterations() {
  const char *env = std::getenv("KILN_STRESS_ITERATIONS");
  return env ? std::max(1, std::atoi(env)) * 10 : 30;
}

TEST(DistributionStress, OverlappedBucketsMatchTheSumAfterTheWalk) {
  const int steps = iterations();
  run_ranks(3, [&](int rank, const std::shared_ptr<ThreadCommunicator> &comm) {
    // Per gradient buckets (threshold 0) and fused ones (64 bytes): many hand-overs per step.
    GradientAllreduce per_gradient(comm, true, 0), fused(comm, false, 64);
    for (int step = 0; step < steps; ++step) {
      const float f = static_cast<float>(rank + step) * 0.25f;
      std::vector<Tensor> ws;
      for (int layer = 0; layer < 6; ++layer)
        ws.push_back(testing::make(Shape{3, 3}, {f, 1, -1, 0.5f, 2, f, -f, 0.25f, 1}));
      autodiff::Tape tape(true, true);
      for (const Tensor &w : ws) tape.watch(w);
      Tensor h = testing::make(Shape{2, 3}, {1, f, -2, 0.5f, 3, -1});
      for (const Tensor &w : ws) h = ops::tanh(ops::matmul(h, w));
      Tensor y = ops::sum(ops::mul(h, h));
      tape.stop_recording();
      const autodiff::GradientSources sources(ws);
      for (GradientAllreduce *a : {&per_gradient, &fused}) {
        const std::vector<Tensor> got = a->gradient(tape, {y}, sources, autodiff::Unconnected::kNone);
        const std::vector<Tensor> want = a->reduce(tape.gradient(y, sources, autodiff::Unconnected::kNone));
        ASSERT_EQ(got.size(), want.size());
        for (size_t i = 0; i < got.size(); ++i)
          ASSERT_EQ(std::memcmp(got[i].raw_data(), want[i].raw_data(), got[i].byte_size()), 0)
              << "step " << step << " gradient " << i;
      }
    }
  });
}

}  // namespace
}  // namespace kiln::train
