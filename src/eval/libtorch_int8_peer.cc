#include "eval/libtorch_int8_peer.h"

#include <ATen/core/dispatch/Dispatcher.h>


namespace sqz::eval {

namespace {

// Runs one Linear through quantized::linear_dynamic, in place of the model's own site.
class DynamicInt8Site : public nn::CompressionSite {
 public:
  explicit DynamicInt8Site(const nn::LinearImpl& layer) : out_(layer.out_features()) {
    auto w = layer.logical_weight().detach().contiguous();
    auto scales = (w.abs().amax(1) / 127.0).clamp_min(1e-8).to(torch::kDouble);
    auto qw = at::quantize_per_channel(w, scales, torch::zeros({w.size(0)}, torch::kLong), 0, at::kQInt8);
    static const auto prepack = c10::Dispatcher::singleton().findSchemaOrThrow("quantized::linear_prepack", "");
    // No bias (Llama's Linears) is None, not an undefined tensor, or the prepack reads its storage.
    torch::jit::Stack stack{qw, layer.bias.defined() ? c10::optional<at::Tensor>(layer.bias.detach()) : c10::optional<at::Tensor>()};
    prepack.callBoxed(&stack);
    packed_ = stack.at(0);
  }
  torch::Tensor run_linear(const torch::Tensor& input) override {
    static const auto op = c10::Dispatcher::singleton().findSchemaOrThrow("quantized::linear_dynamic", "");
    auto x = input.reshape({-1, input.size(-1)}).contiguous();
    torch::jit::Stack stack{x, packed_, false};
    op.callBoxed(&stack);
    auto sizes = input.sizes().vec();
    sizes.back() = out_;
    return stack.at(0).toTensor().reshape(sizes);
  }

 private:
  int64_t out_;
  c10::IValue packed_;
};

}  // namespace

std::vector<LibtorchInt8Peer> libtorch_int8_peers(models::TransformerModel& model) {
  std::vector<LibtorchInt8Peer> peers;
  for (auto engine : at::globalContext().supportedQEngines()) {
    if (engine == at::QEngine::NoQEngine) continue;
    std::string name = c10::toString(engine);
    for (auto& ch : name) ch = static_cast<char>(std::tolower(ch));
    auto saved = std::make_shared<std::vector<std::shared_ptr<nn::CompressionSite>>>();
    auto attach = [&model, engine, saved] {
      at::globalContext().setQEngine(engine);
      for (auto& l : model.structure().block_linears()) {
        saved->push_back(l->site);
        l->site = std::make_shared<DynamicInt8Site>(*l);
      }
    };
    auto detach = [&model, saved] {
      auto layers = model.structure().block_linears();
      for (size_t i = 0; i < layers.size() && i < saved->size(); ++i) layers[i]->site = (*saved)[i];
      saved->clear();
    };
    peers.push_back({"libtorch-int8-dynamic-" + name, name, attach, detach});
  }
  return peers;
}

}  // namespace sqz::eval
