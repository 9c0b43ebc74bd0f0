// Tiny randomly initialised BERT, GPT-2, OPT and Llama classifiers and a padded input batch, shared by the
// compression and quantization unit tests.
#pragma once
#include "io/json_file.h"
#include "models/registry.h"

namespace sqz::testing {

inline io::json tiny_bert_config(int64_t vocab = 97, int64_t hidden = 32) {
  return {{"model_type", "bert"}, {"vocab_size", vocab}, {"hidden_size", hidden}, {"num_hidden_layers", 2},
          {"num_attention_heads", 4}, {"intermediate_size", 48}, {"max_position_embeddings", 40}, {"num_labels", 3},
          {"architectures", {"BertForSequenceClassification"}}};
}

inline io::json tiny_gpt2_config() {
  return {{"model_type", "gpt2"}, {"vocab_size", 97}, {"n_embd", 32}, {"n_layer", 2}, {"n_head", 4}, {"n_inner", 48},
          {"n_positions", 40}, {"pad_token_id", 0}, {"num_labels", 3}, {"architectures", {"GPT2ForSequenceClassification"}}};
}

// Pre-LN OPT with word_embed_proj_dim written out as HF's configs do (equal to hidden_size).
inline io::json tiny_opt_config() {
  return {{"model_type", "opt"}, {"vocab_size", 97}, {"hidden_size", 32}, {"word_embed_proj_dim", 32}, {"num_hidden_layers", 2},
          {"num_attention_heads", 4}, {"ffn_dim", 48}, {"max_position_embeddings", 40}, {"pad_token_id", 1}, {"num_labels", 3},
          {"do_layer_norm_before", true}, {"architectures", {"OPTForSequenceClassification"}}};
}

// Llama with as many K/V heads as query heads (kv_heads = 4), or grouped-query (kv_heads = 2).
inline io::json tiny_llama_config(int64_t kv_heads = 4) {
  return {{"model_type", "llama"}, {"vocab_size", 97}, {"hidden_size", 32}, {"num_hidden_layers", 2}, {"num_attention_heads", 4},
          {"num_key_value_heads", kv_heads}, {"intermediate_size", 48}, {"max_position_embeddings", 40}, {"pad_token_id", 0},
          {"num_labels", 3}, {"architectures", {"LlamaForSequenceClassification"}}};
}

inline std::shared_ptr<models::TransformerModel> tiny_model(const io::json& config, uint64_t seed = 3) {
  torch::manual_seed(seed);
  auto m = models::build_model(io::JsonFields(config, "test config"), config["architectures"][0].get<std::string>());
  models::init_weights(*m);
  m->eval();
  return m;
}

inline std::shared_ptr<models::TransformerModel> tiny_bert(const io::json& config = tiny_bert_config(), uint64_t seed = 3) {
  return tiny_model(config, seed);
}

inline io::json arch_config(const std::string& arch) {
  if (arch == "llama") return tiny_llama_config();
  if (arch == "qwen2") {  // Llama with q/k/v biases
    auto c = tiny_llama_config();
    c["model_type"] = "qwen2";
    c["architectures"] = {"Qwen2ForSequenceClassification"};
    return c;
  }
  if (arch == "gpt_neox")  // per-head fused QKV, partial rotary, parallel residual
    return {{"model_type", "gpt_neox"}, {"vocab_size", 97}, {"hidden_size", 32}, {"intermediate_size", 48}, {"num_hidden_layers", 2},
            {"num_attention_heads", 4}, {"rotary_pct", 0.5}, {"max_position_embeddings", 40}, {"pad_token_id", 0}, {"num_labels", 3},
            {"architectures", {"GPTNeoXForSequenceClassification"}}};
  if (arch == "distilbert")
    return {{"model_type", "distilbert"}, {"vocab_size", 97}, {"dim", 32}, {"n_layers", 2}, {"n_heads", 4}, {"hidden_dim", 48},
            {"max_position_embeddings", 40}, {"num_labels", 3}, {"architectures", {"DistilBertForSequenceClassification"}}};
  return arch == "gpt2" ? tiny_gpt2_config() : arch == "opt" ? tiny_opt_config() : tiny_bert_config();
}

inline models::ModelInputs inputs(uint64_t seed = 5) {
  torch::manual_seed(seed);
  models::ModelInputs in;
  in.input_ids = torch::randint(2, 97, {3, 12}, torch::kLong);
  in.attention_mask = torch::ones({3, 12}, torch::kLong);
  in.attention_mask[1].slice(0, 7).fill_(0);  // right padding
  return in;
}

}  // namespace sqz::testing
