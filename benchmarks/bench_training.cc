// W3 through a GradientTape loop (the TF2 custom training loop): under a tape, the MLP's logits
// and the loss object's value, tape.gradient over the trainable variables, then Adam's
// apply_gradients. bench_training_fit.cc times the same step through train_on_batch;
// peer/mlp_torch.py the PyTorch step; peer/compare_training.py runs them interleaved.
#include <memory>

#include "bench_training.h"

namespace {

struct TapeStep {
  kiln::Sequential model = kiln_bench::w3_mlp();
  kiln::Loss loss_fn = kiln_bench::w3_loss();
  kiln::optimizers::Optimizer optimizer = kiln::optimizers::Adam(1e-3);
  std::vector<kiln::Variable> vars = model.trainable_variables();
  kiln_bench::W3Batch batch;

  TapeStep() {
    for (int i = 0; i < 5; ++i) run();  // the slots, the primitives, the allocator's cache
  }
  void run() {
    kiln::GradientTape tape;
    kiln::Tensor loss = loss_fn(batch.y, model(batch.x, /*training=*/true));
    tape.stop();
    optimizer.apply_gradients(tape.gradient(loss, vars), vars);
  }
};

void BM_KilnW3TapeStep(benchmark::State &state) {
  kiln::ThreadCountScope threads(2);
  kiln::set_seed(1234);
  static std::unique_ptr<TapeStep> step;  // built once, shared by the repetitions
  if (!step) step = std::make_unique<TapeStep>();
  for (auto _ : state) step->run();
}

}  // namespace

KILN_BENCH_PER_STEP(BM_KilnW3TapeStep);
