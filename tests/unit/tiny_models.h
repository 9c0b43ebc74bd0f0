// Tiny randomly initialised models of every family (BERT, GPT-2, OPT and Llama classifiers; T5, BART,
// ViT) and a padded input batch, shared by the unit tests.
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

// Encoder-decoders (vocab 41). T5 v1.0: ReLU, tied head rescaled by d_model^-0.5; 8 buckets up to
// distance 12. BART with two heads of 16: the runtime folds 1/sqrt(head_dim) into Q's weights
// before bf16 rounding, which equals rounding first only when that factor is a power of two.
inline io::json tiny_t5_config() {
  return {{"model_type", "t5"}, {"vocab_size", 41}, {"d_model", 32}, {"d_kv", 16}, {"d_ff", 40}, {"num_layers", 2},
          {"num_heads", 2}, {"relative_attention_num_buckets", 8}, {"relative_attention_max_distance", 12}, {"pad_token_id", 1},
          {"eos_token_id", 2}, {"decoder_start_token_id", 2}, {"architectures", {"T5ForConditionalGeneration"}}};
}

inline io::json tiny_bart_config() {
  return {{"model_type", "bart"},         {"vocab_size", 41},           {"d_model", 32},
          {"encoder_layers", 2},          {"decoder_layers", 2},        {"encoder_attention_heads", 2},
          {"decoder_attention_heads", 2}, {"encoder_ffn_dim", 48},      {"decoder_ffn_dim", 40},
          {"max_position_embeddings", 24}, {"scale_embedding", true},    {"pad_token_id", 1},
          {"bos_token_id", 0},            {"eos_token_id", 2},          {"decoder_start_token_id", 2},
          {"architectures", {"BartForConditionalGeneration"}}};
}

// ViT on 16 x 16 images in 4 x 4 patches; two heads of 16 (see BART above).
inline io::json tiny_vit_config() {
  return {{"model_type", "vit"}, {"hidden_size", 32},       {"num_hidden_layers", 2}, {"num_attention_heads", 2},
          {"intermediate_size", 48}, {"image_size", 16},     {"patch_size", 4},        {"num_labels", 3},
          {"architectures", {"ViTForImageClassification"}}};
}

inline std::shared_ptr<models::TransformerModel> tiny_model(const io::json& config, uint64_t seed = 3) {
  torch::manual_seed(seed);
  auto m = models::build_model(io::JsonFields(config, "test config"), config["architectures"][0].get<std::string>());
  models::init_weights(*m);
  m->eval();
  return m;
}

// `model` with its config as the runtime engines take it (no tokenizer).
inline models::LoadedModel loaded_model(std::shared_ptr<models::TransformerModel> model, const io::json& config) {
  return {std::move(model), io::JsonFields(config, "test config"), {}};
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
