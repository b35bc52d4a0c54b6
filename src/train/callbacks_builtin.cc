// The built-in Keras callbacks. (To be filled: EarlyStopping, LearningRateScheduler,
// ReduceLROnPlateau, CSVLogger, TerminateOnNaN, ProgbarLogger, LambdaCallback.)
#include "train/callbacks.h"
#include "train/progbar.h"

namespace kiln::train {

void register_builtin_callbacks() {
  register_callback("ProgbarLogger", [](const Config &c) -> CallbackPtr {
    ConfigReader r(c, "ProgbarLogger");
    r.accept({"count_mode", "stateful_metrics"});  // Keras 2's arguments; fit counts steps
    r.finish();
    return make_progbar_logger();
  });
}

}  // namespace kiln::train
