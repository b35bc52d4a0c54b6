// The Fashion-MNIST demo (what `scripts/dev.sh demo` runs): a small conv net trained with Keras's
// fit, a validation split, the progress bar and a TensorBoard callback, evaluated on the 10,000
// test images, then a few predictions with their class names.
//
//   fashion_mnist [--epochs N] [--train-samples N] [--test-samples N] [--data-dir DIR] [--log-dir DIR]
//                 [--distributed]
//
// --distributed trains data-parallel over MPI (libkiln_mpi): run it as
// `mpirun -np 2 fashion_mnist --distributed`; each global batch of 64 is split over the processes,
// which end with the weights one process reaches, and only rank 0 prints and writes the logs.
//
// TensorBoard's logs (loss and accuracy per epoch, the learning rate, weight histograms, the
// model's graph) go to --log-dir, by default logs/fashion_mnist/<date-time>.
//
// The data comes from Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist); without
// it the program says so and exits 77 (ctest's "skipped").
#include "fashion_mnist_common.hpp"

int main(int argc, char **argv) {
  const fashion_mnist::Args args = fashion_mnist::parse_args(argc, argv);
  try {
    kiln::Communicator world;  // empty: one process
    bool chief = true;
    if (args.distributed) {
#ifdef KILN_DEMO_HAVE_MPI
      kiln::distributed::init();
      world = kiln::distributed::world();
      chief = world.rank() == 0;
      if (chief) std::printf("data-parallel over %d processes (MPI)\n", world.size());
#else
      std::fprintf(stderr, "--distributed: this kiln was built without MPI (install libopenmpi-dev)\n");
      return 2;
#endif
    }
    const std::optional<fashion_mnist::Data> data = fashion_mnist::load(args);
    if (!data) return 77;
    kiln::set_seed(42);
    kiln::Sequential model = fashion_mnist::build_model(chief);
    kiln::losses::SparseCategoricalCrossentropyOptions lo;
    lo.from_logits = true;
    model.compile(kiln::optimizers::Adam(1e-3), kiln::losses::SparseCategoricalCrossentropy(lo), {"accuracy"});

    // keras.callbacks.TensorBoard(log_dir, histogram_freq=1)
    const std::string log_dir = fashion_mnist::log_dir_of(args);
    kiln::Config tensorboard;
    tensorboard.set("log_dir", log_dir).set("histogram_freq", int64_t{1});

    const auto start = std::chrono::steady_clock::now();
    kiln::History history =
        model.fit(data->x_train, data->y_train,
                  kiln::FitOptions()
                      .with_batch_size(64)
                      .with_epochs(args.epochs)
                      .with_validation_split(0.1)
                      .with_callbacks({kiln::Callback::create("TensorBoard", tensorboard)})
                      .with_distribution(world));
    if (!chief) return 0;  // rank 0 reports
    std::printf("training took %.1fs; val_accuracy by epoch:", fashion_mnist::seconds_since(start));
    const std::map<std::string, std::vector<double>> logs = history.history();  // Keras's history.history
    for (double a : logs.at("val_accuracy")) std::printf(" %.4f", a);
    std::printf("\n");

    const std::map<std::string, double> results =
        model.evaluate(data->x_test, data->y_test, kiln::EvaluateOptions().with_batch_size(1000).with_verbose(0));
    std::printf("test loss: %.4f - test accuracy: %.4f (%lld images)\n", results.at("loss"), results.at("accuracy"),
                static_cast<long long>(data->y_test.shape()[0]));

    // model.predict on the first five test images.
    const int64_t shown = std::min<int64_t>(5, data->x_test.shape()[0]);
    kiln::Tensor logits = model.predict(kiln::slice(data->x_test, {0, 0, 0, 0}, {shown, 28, 28, 1}),
                                        kiln::PredictOptions().with_verbose(0));
    fashion_mnist::print_predictions(logits, data->y_test, static_cast<size_t>(shown));
    std::printf("View the training curves: tensorboard --logdir %s\n", log_dir.c_str());
    return 0;
  } catch (const kiln::Error &e) {
    std::fprintf(stderr, "kiln error: %s\n", e.what());
    return 1;
  }
}
