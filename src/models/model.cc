#include "models/model.h"

#include <numeric>
#include <set>

#include "core/error.h"

namespace sqz::models {

std::pair<torch::Tensor, torch::Tensor> KVCache::update(size_t layer, const torch::Tensor& k, const torch::Tensor& v) {
  if (keys.size() <= layer) {
    keys.resize(layer + 1);
    values.resize(layer + 1);
  }
  if (keys[layer].defined()) {
    keys[layer] = torch::cat({keys[layer], k}, 2);
    values[layer] = torch::cat({values[layer], v}, 2);
  } else {
    keys[layer] = k;
    values[layer] = v;
  }
  return {keys[layer], values[layer]};
}

std::pair<torch::Tensor, torch::Tensor> cross_keys_values(KVCache* cache, size_t layer,
                                                          const std::function<std::pair<torch::Tensor, torch::Tensor>()>& project) {
  if (cache && layer < cache->cross_keys.size() && cache->cross_keys[layer].defined())
    return {cache->cross_keys[layer], cache->cross_values[layer]};
  auto kv = project();
  if (cache) {
    cache->cross_keys.resize(std::max(cache->cross_keys.size(), layer + 1));
    cache->cross_values.resize(cache->cross_keys.size());
    cache->cross_keys[layer] = kv.first;
    cache->cross_values[layer] = kv.second;
  }
  return kv;
}

const torch::Tensor& ModelOutputs::at(const std::string& name) const {
  auto it = tensors.find(name);
  if (it == tensors.end()) fail_not_found("model produced no output named '", name, "'");
  return it->second;
}

torch::Tensor AttentionBlock::head_row_indices(size_t i) const {
  const int64_t width = group_rows(i), stride = row_stride > 0 ? row_stride : width;
  auto starts = torch::arange(groups(), torch::kLong) * stride + row_offset(i);
  return (starts.unsqueeze(1) + torch::arange(width, torch::kLong).unsqueeze(0)).reshape({-1});
}

std::vector<nn::Linear> ModelStructure::block_linears() const {
  std::vector<nn::Linear> out;
  std::set<const void*> seen;
  auto add = [&](const nn::Linear& l) {
    if (seen.insert(l.get()).second) out.push_back(l);
  };
  for (const auto& a : attention) {
    for (const auto& l : a.head_rows) add(l);
    add(a.head_cols);
  }
  for (const auto& f : ffn) {
    for (const auto& l : f.neuron_rows) add(l);
    add(f.neuron_cols);
  }
  return out;
}

std::string hf_name(const ModelInfo& info, const std::string& name) {
  const std::string prefix = info.base_prefix + ".";
  if (info.base_is_root && name.rfind(prefix, 0) == 0) return name.substr(prefix.size());
  return name;
}

std::optional<int64_t> config_token_id(const io::JsonFields& config, const std::string& key) {
  if (!config.has(key)) return std::nullopt;
  const auto& v = config.value()[key];
  if (v.is_array()) {
    if (v.empty() || !v[0].is_number_integer()) config.fail_field(key, "an integer or a list of integers");
    return v[0].get<int64_t>();
  }
  return config.get_int(key);
}

int64_t config_input_token_id(const io::JsonFields& config, const std::string& key, int64_t fallback, int64_t vocab_size) {
  const int64_t id = config_token_id(config, key).value_or(fallback);
  if (id < 0 || id >= vocab_size) config.fail_field(key, to_text("a token id in [0, ", vocab_size, ") (vocab_size)"));
  return id;
}

std::string stack_config_key(ShapeKey key, const std::string& stack) {
  if (stack.empty()) return key == ShapeKey::kPrunedHeads ? "pruned_heads" : "sqz_intermediate_sizes";
  return "sqz_" + stack + (key == ShapeKey::kPrunedHeads ? "_pruned_heads" : "_intermediate_sizes");
}

std::string sqz_only_shape(TransformerModel& model, const io::json& config) {
  for (const auto& [key, value] : config.items()) {
    const bool shape = key == "sqz_attention_head_size" || key.find("_intermediate_sizes") != std::string::npos ||
                       key.find("_pruned_heads") != std::string::npos;
    if (key.rfind("sqz_", 0) == 0 && shape) return "config.json field '" + key + "' is a shape only sqz reads";
  }
  if (config.contains("pruned_heads") && config["pruned_heads"].is_object() && !config["pruned_heads"].empty() &&
      !model.structure().shape_keys.hf_pruned_heads)
    return "config.json field 'pruned_heads': transformers does not apply it to " + model.info().model_type + " models";
  return "";
}

LayerShapes parse_layer_shapes(const io::JsonFields& j, int64_t num_layers, int64_t num_heads, int64_t ffn_width,
                               const std::string& stack) {
  // Each layer lists its kept heads: 2^31 heads would take 16 GB per layer before any size check.
  constexpr int64_t kMaxHeads = int64_t{1} << 16;
  if (num_heads > kMaxHeads)
    fail_invalid(j.source(), ": ", num_heads, " attention heads per layer", stack.empty() ? "" : " (" + stack + ")", "; expected at most ",
                 kMaxHeads);
  LayerShapes c;
  c.heads.assign(num_layers, num_heads);
  c.ffn.assign(num_layers, ffn_width);
  std::vector<int64_t> all(num_heads);
  std::iota(all.begin(), all.end(), int64_t{0});
  c.kept_heads.assign(num_layers, all);
  const std::string heads_key = stack_config_key(ShapeKey::kPrunedHeads, stack);
  if (j.has(heads_key) && !j.value().at(heads_key).is_null()) {
    const auto& ph = j.value().at(heads_key);
    if (!ph.is_object()) j.fail_field(heads_key, "an object {\"layer\": [head indices]}");
    for (const auto& [layer, heads] : ph.items()) {
      int64_t l = -1;
      try {
        l = std::stoll(layer);
      } catch (const std::exception&) {
      }
      if (l < 0 || l >= num_layers || !heads.is_array())
        j.fail_field(heads_key, to_text("layer keys in [0, ", num_layers, ") with lists of heads, got '", layer, "'"));
      std::set<int64_t> unique;
      for (const auto& h : heads) {
        if (!h.is_number_integer() || h.get<int64_t>() < 0 || h.get<int64_t>() >= num_heads)
          j.fail_field(heads_key, to_text("head indices in [0, ", num_heads, ") for layer ", l));
        unique.insert(h.get<int64_t>());
      }
      c.heads[l] = num_heads - static_cast<int64_t>(unique.size());
      c.kept_heads[l].clear();
      for (int64_t h = 0; h < num_heads; ++h)
        if (!unique.count(h)) c.kept_heads[l].push_back(h);
    }
  }
  const std::string sizes_key = stack_config_key(ShapeKey::kIntermediateSizes, stack);
  if (j.has(sizes_key)) {
    const auto& sizes = j.value().at(sizes_key);
    if (!sizes.is_array() || static_cast<int64_t>(sizes.size()) != num_layers)
      j.fail_field(sizes_key, to_text("a list of ", num_layers, " FFN widths (one per layer)"));
    for (int64_t l = 0; l < num_layers; ++l) {
      if (!sizes[l].is_number_integer() || sizes[l].get<int64_t>() < 0) j.fail_field(sizes_key, "non-negative integers");
      c.ffn[l] = sizes[l].get<int64_t>();
    }
  }
  return c;
}

int64_t config_head_dim(const io::JsonFields& j, const std::string& hidden_key, int64_t hidden, const std::string& heads_key,
                        int64_t heads) {
  if (j.has("sqz_attention_head_size")) return j.get_positive_int("sqz_attention_head_size");
  if (heads <= 0 || hidden % heads != 0) j.fail_field(hidden_key, to_text("a multiple of ", heads_key, " (", heads, ")"));
  return hidden / heads;
}

int64_t config_num_labels(const io::JsonFields& config) {
  if (config.has("id2label") && config.value()["id2label"].is_object()) return config.value()["id2label"].size();
  return config.get_positive_int("num_labels", 2);
}

torch::Tensor pool_last_token(const torch::Tensor& scores, const torch::Tensor& ids, std::optional<int64_t> pad) {
  int64_t b = ids.size(0), t = ids.size(1);
  torch::Tensor last;
  if (pad) {
    last = (ids.eq(*pad).to(torch::kInt).argmax(-1) - 1).remainder(t);
  } else {
    if (b != 1) fail_invalid("config.json: pad_token_id is not set, so sequence classification needs batch size 1");
    last = torch::full({b}, t - 1, torch::kLong);
  }
  return scores.index({torch::arange(b), last.to(torch::kLong)});
}

torch::Tensor default_positions(const ModelInputs& in) {
  int64_t past = in.cache ? in.cache->length() : 0;
  int64_t t = in.input_ids.size(1);
  return torch::arange(past, past + t, torch::kLong).unsqueeze(0).expand({in.input_ids.size(0), t});
}

torch::Tensor shift_tokens_right(const torch::Tensor& ids, std::optional<int64_t> pad, int64_t start, const std::string& source) {
  if (!pad) fail_invalid(source, ": pad_token_id is not set, so decoder_input_ids cannot be derived from input_ids; give them");
  auto shifted = torch::empty_like(ids);
  shifted.select(1, 0).fill_(start);
  if (ids.size(1) > 1) shifted.slice(1, 1).copy_(ids.slice(1, 0, -1));
  return shifted.masked_fill_(shifted.eq(-100), *pad);
}

namespace {

void check_ids(const ModelInfo& info, const torch::Tensor& ids, const char* name, const std::string& source) {
  if (ids.dim() != 2) fail_invalid(source, ": ", name, " must have rank 2 [batch, seq], got shape ", ids.sizes());
  if (ids.scalar_type() != torch::kLong && ids.scalar_type() != torch::kInt)
    fail_invalid(source, ": ", name, " must be int64 (or int32), got ", c10::toString(ids.scalar_type()));
  if (ids.numel() > 0) {
    int64_t lo = ids.min().item<int64_t>(), hi = ids.max().item<int64_t>();
    if (lo < 0 || hi >= info.vocab_size)
      fail_invalid(source, ": ", name, " contain ", (lo < 0 ? lo : hi), ", outside the vocabulary [0, ", info.vocab_size, ")");
  }
}

void check_length(const ModelInfo& info, int64_t total, const std::string& source) {
  if (info.max_positions > 0 && total > info.max_positions)
    fail_invalid(source, ": sequence length ", total, " exceeds max_position_embeddings ", info.max_positions);
}

void validate_pixels(const ModelInfo& info, const ModelInputs& in, const std::string& source) {
  if (!in.pixel_values.defined()) fail_invalid(source, ": pixel_values is required (", info.model_type, " reads images)");
  if (in.input_ids.defined()) fail_invalid(source, ": input_ids given, but ", info.model_type, " reads pixel_values");
  const auto& p = in.pixel_values;
  if (!p.is_floating_point()) fail_invalid(source, ": pixel_values must be floating point, got ", c10::toString(p.scalar_type()));
  if (p.dim() != 4 || p.size(1) != info.num_channels || p.size(2) != info.image_size || p.size(3) != info.image_size)
    fail_invalid(source, ": pixel_values must have shape [batch, ", info.num_channels, ", ", info.image_size, ", ", info.image_size,
                 "] (no position interpolation), got ", p.sizes());
}

}  // namespace

void validate_inputs(const ModelInfo& info, const ModelInputs& in, const std::string& source) {
  if (info.image_size > 0) return validate_pixels(info, in, source);
  if (in.pixel_values.defined()) fail_invalid(source, ": pixel_values given, but ", info.model_type, " reads token ids");
  if (!in.input_ids.defined()) fail_invalid(source, ": input_ids is required");
  check_ids(info, in.input_ids, "input_ids", source);
  const bool seq2seq = in.decoder_input_ids.defined();
  if (seq2seq && !info.is_encoder_decoder)
    fail_invalid(source, ": decoder_input_ids given, but ", info.model_type, " is not an encoder-decoder");
  // With a cache, past positions are the decoder's (an encoder-decoder's encoder sees input_ids whole).
  int64_t past = in.cache ? in.cache->length() : 0;
  int64_t total = (seq2seq ? 0 : past) + in.input_ids.size(1);
  check_length(info, total, source);
  auto check_same = [&](const torch::Tensor& t, const char* name, int64_t len) {
    if (!t.defined()) return;
    if (t.dim() != 2 || t.size(0) != in.input_ids.size(0) || t.size(1) != len)
      fail_invalid(source, ": ", name, " must have shape [", in.input_ids.size(0), ", ", len, "], got ", t.sizes());
    if (!t.is_floating_point() && t.scalar_type() != torch::kLong && t.scalar_type() != torch::kInt &&
        t.scalar_type() != torch::kBool)
      fail_invalid(source, ": ", name, " has unsupported dtype ", c10::toString(t.scalar_type()));
  };
  check_same(in.attention_mask, "attention_mask", total);
  check_same(in.token_type_ids, "token_type_ids", in.input_ids.size(1));
  check_same(in.position_ids, "position_ids", in.input_ids.size(1));
  if (seq2seq) {
    check_ids(info, in.decoder_input_ids, "decoder_input_ids", source);
    if (in.decoder_input_ids.size(0) != in.input_ids.size(0))
      fail_invalid(source, ": decoder_input_ids has batch ", in.decoder_input_ids.size(0), ", input_ids ", in.input_ids.size(0));
    const int64_t decoded = past + in.decoder_input_ids.size(1);
    check_length(info, decoded, source);
    check_same(in.decoder_attention_mask, "decoder_attention_mask", decoded);
  } else if (in.decoder_attention_mask.defined()) {
    fail_invalid(source, ": decoder_attention_mask given without decoder_input_ids");
  }
}

}  // namespace sqz::models
