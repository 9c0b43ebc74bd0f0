// libtorch's dynamic int8 Linear (quantized::linear_dynamic: weights int8 per channel, inputs
// quantized per call) as a `sqz bench` peer, one per quantized engine this libtorch has (fbgemm,
// qnnpack, onednn, ...). While a peer is attached every block Linear of the model runs through it;
// detached, the model's own sites are back.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "models/model.h"

namespace sqz::eval {

struct LibtorchInt8Peer {
  std::string name;    // "libtorch-int8-dynamic-<engine>"
  std::string engine;  // "fbgemm", "qnnpack", ...
  std::function<void()> attach, detach;
};

std::vector<LibtorchInt8Peer> libtorch_int8_peers(models::TransformerModel& model);

}  // namespace sqz::eval
