// The kiln_dataset handle: one shared reference to a core dataset (fit, evaluate and predict in
// training.cc take the dataset a user's handle names).
#pragma once

#include "data/dataset.h"

struct kiln_dataset {
  kiln::data::DatasetPtr dataset;
};
