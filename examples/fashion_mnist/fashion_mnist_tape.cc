// Fashion-MNIST with a TF2 custom training loop: a Dataset (from_tensor_slices -> shuffle ->
// batch), a GradientTape per step, optimizer.apply_gradients, a Mean metric for the loss and
// SparseCategoricalAccuracy, both reset every epoch; then the test accuracy and a few predictions.
//
//   fashion_mnist_tape [--epochs N] [--train-samples N] [--test-samples N] [--data-dir DIR]
//
// The data comes from Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist); without
// it the program says so and exits 77 (ctest's "skipped").
#include "fashion_mnist_common.hpp"

int main(int argc, char **argv) {
  using fashion_mnist::seconds_since;
  const fashion_mnist::Args args = fashion_mnist::parse_args(argc, argv);
  try {
    const std::optional<fashion_mnist::Data> data = fashion_mnist::load(args);
    if (!data) return 77;
    kiln::set_seed(42);
    kiln::Sequential model = fashion_mnist::build_model();

    kiln::optimizers::Optimizer optimizer = kiln::optimizers::Adam(1e-3);
    kiln::losses::SparseCategoricalCrossentropyOptions lo;
    lo.from_logits = true;
    kiln::Loss loss_fn = kiln::losses::SparseCategoricalCrossentropy(lo);
    kiln::Metric train_loss = kiln::metrics::Mean("loss");
    kiln::Metric train_accuracy = kiln::metrics::SparseCategoricalAccuracy("accuracy");
    const std::vector<kiln::Variable> vars = model.trainable_variables();
    kiln::data::Dataset train_ds =
        kiln::data::Dataset::from_tensor_slices({data->x_train, data->y_train}).shuffle(10000, 7).batch(64);

    // TensorBoard: with writer.as_default(), step = optimizer.iterations (TF2's metrics pattern).
    const std::string log_dir = fashion_mnist::log_dir_of(args);
    kiln::summary::SummaryWriter writer = kiln::summary::create_file_writer(log_dir + "/train");
    std::optional<kiln::summary::DefaultScope> log_scope(writer.as_default());
    kiln::summary::set_step(optimizer);
    kiln::Metric logged_loss = kiln::metrics::Mean("logged_loss");
    constexpr int64_t kLogEvery = 50;

    const auto start = std::chrono::steady_clock::now();
    for (int epoch = 0; epoch < args.epochs; ++epoch) {
      const auto t0 = std::chrono::steady_clock::now();
      train_loss.reset_state();
      train_accuracy.reset_state();
      for (const kiln::data::Element &batch : train_ds) {
        kiln::GradientTape tape;
        kiln::Tensor logits = model(batch[0], /*training=*/true);
        kiln::Tensor loss = loss_fn(batch[1], logits);
        tape.stop();
        optimizer.apply_gradients(tape.gradient(loss, vars), vars);
        train_loss.update_state_values(loss);
        train_accuracy.update_state(batch[1], logits);
        // Every kLogEvery optimizer steps: the mean loss since the last write, at step = iterations.
        logged_loss.update_state_values(loss);
        if (optimizer.iterations() % kLogEvery == 0) {
          kiln::summary::scalar("loss", logged_loss.result().item<float>());
          logged_loss.reset_state();
        }
      }
      std::printf("Epoch %d/%d - %.1fs - loss: %.4f - accuracy: %.4f\n", epoch + 1, args.epochs, seconds_since(t0),
                  train_loss.result().item<float>(), train_accuracy.result().item<float>());
      std::fflush(stdout);
      kiln::summary::scalar("epoch_accuracy", train_accuracy.result().item<float>(), epoch);
    }
    std::printf("training took %.1fs\n", seconds_since(start));
    kiln::summary::clear_step();
    log_scope.reset();

    // The test set in batches of 1000: accuracy, then the first five images' predicted classes.
    kiln::Metric test_accuracy = kiln::metrics::SparseCategoricalAccuracy("test_accuracy");
    kiln::Tensor first_logits;
    for (const kiln::data::Element &batch :
         kiln::data::Dataset::from_tensor_slices({data->x_test, data->y_test}).batch(1000)) {
      kiln::Tensor logits = model(batch[0]);
      test_accuracy.update_state(batch[1], logits);
      if (!first_logits.valid()) first_logits = logits;
    }
    std::printf("test accuracy: %.4f (%lld images)\n", test_accuracy.result().item<float>(),
                static_cast<long long>(data->y_test.shape()[0]));
    fashion_mnist::print_predictions(first_logits, data->y_test, 5);
    writer.close();
    std::printf("View the training curves: tensorboard --logdir %s\n", log_dir.c_str());
    return 0;
  } catch (const kiln::Error &e) {
    std::fprintf(stderr, "kiln error: %s\n", e.what());
    return 1;
  }
}
