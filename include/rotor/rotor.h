// Everything a program built on rotor needs, in one include: tensors and their files (core),
// the differentiable ops and gradient checking (autograd), layers, the language model and
// training (nn). The raw kernels (rotor/kernels/...) are included only where they are wanted.
//
//   #include <rotor/rotor.h>
//   c++ -std=c++20 app.cpp $(pkg-config --cflags --libs rotor)
#pragma once

#include "rotor/version.h"

#include "rotor/core/dtype.h"
#include "rotor/core/error.h"
#include "rotor/core/generator.h"
#include "rotor/core/io.h"
#include "rotor/core/iter.h"
#include "rotor/core/json.h"
#include "rotor/core/npy.h"
#include "rotor/core/parallel.h"
#include "rotor/core/safetensors.h"
#include "rotor/core/shape.h"
#include "rotor/core/storage.h"
#include "rotor/core/tensor.h"
#include "rotor/core/view.h"

#include "rotor/autograd/attention.h"
#include "rotor/autograd/fused.h"
#include "rotor/autograd/gated_delta.h"
#include "rotor/autograd/gla.h"
#include "rotor/autograd/gradcheck.h"
#include "rotor/autograd/node.h"
#include "rotor/autograd/ops.h"
#include "rotor/autograd/rope.h"
#include "rotor/autograd/scan.h"

#include "rotor/nn/attention.h"
#include "rotor/nn/checkpoint.h"
#include "rotor/nn/containers.h"
#include "rotor/nn/copying.h"
#include "rotor/nn/data.h"
#include "rotor/nn/distributed.h"
#include "rotor/nn/functional.h"
#include "rotor/nn/gated_deltanet.h"
#include "rotor/nn/gla.h"
#include "rotor/nn/gradcheck_case.h"
#include "rotor/nn/init.h"
#include "rotor/nn/layers.h"
#include "rotor/nn/loss.h"
#include "rotor/nn/model.h"
#include "rotor/nn/module.h"
#include "rotor/nn/mqar.h"
#include "rotor/nn/optim.h"
#include "rotor/nn/recall.h"
#include "rotor/nn/rotary.h"
#include "rotor/nn/sampling.h"
#include "rotor/nn/state_tracking.h"
#include "rotor/nn/tasks.h"
#include "rotor/nn/text.h"
#include "rotor/nn/trainer.h"
