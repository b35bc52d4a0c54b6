// Built-in layers registered by register_attention_layers().
#include "layers/builtins.h"
#include "layers/layer.h"

namespace kiln::layers {

void register_attention_layers() {}

}  // namespace kiln::layers
