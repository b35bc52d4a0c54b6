// Registration of the built-in layer classes. Each file of built-in layers has a function that
// registers its classes; register_builtin_layers() calls each once (explicit calls, because a
// static library drops object files that only hold static registrars).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "layers/layer.h"

namespace kiln::layers {

void register_builtin_layers();  // idempotent, thread-safe
// Adds to the registry without triggering the built-ins (what their registrars call).
void add_layer_factory(const std::string &class_name, LayerFactory factory);
// A built-in class made around layer objects given to it, not copies (Keras's RNN(cell) holds
// the cell it is given): RNN and StackedRNNCells. config holds the class's other keys.
using LayerAroundFactory = std::function<LayerPtr(const Config &config, const std::vector<LayerPtr> &layers)>;
void add_layer_around_factory(const std::string &class_name, LayerAroundFactory factory);

template <typename L>
void register_class(const char *name) {
  add_layer_factory(name, [](const Config &c) -> LayerPtr { return std::make_shared<L>(c); });
}

void register_core_layers();           // core_layers.cc
void register_normalization_layers();  // normalization_layers.cc
void register_sequential();            // sequential.cc
void register_conv_layers();           // conv_layers.cc: convolutions and pooling
void register_attention_layers();      // attention_layers.cc: MultiHeadAttention, then the merge layers
void register_merge_layers();          // merge_layers.cc: Add ... Concatenate, Permute, RepeatVector
void register_activation_layers();     // activation_layers.cc: ReLU, LeakyReLU, ELU, Softmax, PReLU
void register_reshaping_layers();      // reshaping_layers.cc: ZeroPadding, Cropping, UpSampling 1D-3D
void register_noise_layers();          // noise_layers.cc: GaussianNoise, GaussianDropout, SpatialDropout
void register_recurrent_layers();      // recurrent_layers.cc: SimpleRNN, GRU, LSTM, their cells, RNN
void register_conv_lstm_layers();      // conv_lstm_layers.cc: ConvLSTM1D, ConvLSTM2D, ConvLSTM3D
void register_wrapper_layers();        // wrapper_layers.cc: Bidirectional, TimeDistributed
void register_preprocessing_layers();  // preprocessing_layers.cc: Discretization
void register_lookup_layers();         // lookup_layers.cc: IntegerLookup, Hashing, HashedCrossing
void register_image_augmentation_layers();  // image_augmentation_layers.cc: RandomFlip, RandomCrop, ...

}  // namespace kiln::layers
