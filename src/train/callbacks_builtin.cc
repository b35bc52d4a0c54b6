// The built-in Keras callbacks. (To be filled: EarlyStopping, LearningRateScheduler,
// ReduceLROnPlateau, CSVLogger, TerminateOnNaN, ProgbarLogger, LambdaCallback.)
#include "train/callbacks.h"

namespace kiln::train {

void register_builtin_callbacks() {}

}  // namespace kiln::train
