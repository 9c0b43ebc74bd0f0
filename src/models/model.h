// The interface every architecture implements: HF argument names in, HF output names out.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <map>

#include "io/json_file.h"
#include "nn/layers.h"

namespace sqz::models {

// Per-layer keys and values of past positions, [B, Hkv, S, D] each.
struct KVCache {
  std::vector<torch::Tensor> keys, values;
  int64_t length() const { return keys.empty() || !keys[0].defined() ? 0 : keys[0].size(2); }
  // Appends this step's k/v for `layer` and returns the full k/v to attend over.
  std::pair<torch::Tensor, torch::Tensor> update(size_t layer, const torch::Tensor& k, const torch::Tensor& v);
  // Encoder-decoders: each decoder layer's cross-attention keys and values, projected from the
  // encoder output at the first step and reused at every later one.
  std::vector<torch::Tensor> cross_keys, cross_values;
};

// Decoder layer `layer`'s cross-attention keys and values: `project` (of the encoder output) at the
// first step, then what the cache kept. Without a cache, projected every call.
std::pair<torch::Tensor, torch::Tensor> cross_keys_values(KVCache* cache, size_t layer,
                                                          const std::function<std::pair<torch::Tensor, torch::Tensor>()>& project);

struct ModelInputs {
  torch::Tensor input_ids;       // [B, T] int64
  torch::Tensor attention_mask;  // [B, S] (S = past + T for decoders with a cache), 1 = real token
  torch::Tensor token_type_ids;  // [B, T]
  torch::Tensor position_ids;    // [B, T]
  // [B, T] bool. When set, masked-LM heads score only these positions and return logits
  // [N, V] in row-major order: MLM training labels ~15% of positions, and the vocabulary
  // projection everywhere would be ~40% of a small model's step.
  torch::Tensor logit_rows;
  KVCache* cache = nullptr;      // decoders: read and extended in place
  // Encoder-decoders: the decoder's tokens (when absent, input_ids shifted right as HF does) and
  // its padding mask [B, past + Td]; with a cache, past counts decoder positions.
  torch::Tensor decoder_input_ids, decoder_attention_mask;
  // The encoder's output from an earlier call (generation encodes once): the encoder is skipped.
  torch::Tensor encoder_last_hidden_state;
  torch::Tensor pixel_values;  // vision families: [B, C, H, W] float, instead of input_ids
  bool output_hidden_states = false;
  bool output_attentions = false;
};

struct ModelOutputs {
  // HF output names: logits, last_hidden_state, pooler_output, start_logits, end_logits.
  std::map<std::string, torch::Tensor> tensors;
  std::vector<torch::Tensor> hidden_states;  // embeddings output, then each layer's (the decoder's in an encoder-decoder)
  std::vector<torch::Tensor> encoder_hidden_states;  // encoder-decoders: the encoder's, likewise
  std::vector<torch::Tensor> attentions;     // per layer [B, H, T, S]
  const torch::Tensor& at(const std::string& name) const;
};

// Facts about a built model that the CLI, tokenizers and trainers need.
struct ModelInfo {
  std::string model_type;
  std::string head_class;
  std::string base_prefix;  // HF base_model_prefix ("bert", "transformer", "model", ...)
  // The base class (BertModel, GPT2Model, ...) is saved by HF without the prefix; modules here
  // always sit under it, and hf_name() drops it.
  bool base_is_root = false;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_layers = 0;
  int64_t max_positions = 0;  // 0 = no learned limit (rotary)
  bool is_decoder = false;
  bool is_encoder_decoder = false;  // BART, T5: forward takes decoder_input_ids
  int64_t decoder_layers = 0;       // encoder-decoders: the decoder's (hidden_states and attentions are its)
  int64_t image_size = 0, num_channels = 0;  // vision families (ViT): pixel_values [B, C, S, S]; 0 = text
  bool uses_token_type_ids = false;
  double init_std = 0.02;
  std::optional<int64_t> pad_token_id, bos_token_id, eos_token_id, decoder_start_token_id;
};

// Dependency groups for structured pruning: head h of a block is rows [h*head_dim, (h+1)*head_dim)
// of every `head_rows` Linear plus the same columns of `head_cols` (grouped-query attention: see
// AttentionBlock::groups); neuron j of an FFN is row j of every `neuron_rows` Linear plus column j
// of `neuron_cols`. Removing a whole group changes no
// other output, which is what lets SpeedUp cut it out.
//
// `layer` numbers the model's layers (encoder-decoders: encoder 0..E-1, then decoder E..). Each
// group also names its stack ("" for single-stack models; "encoder", "decoder", and "cross" for a
// decoder layer's cross-attention) and its layer within it: the config keys that record a pruned
// shape are per stack (stack_config_key).
struct AttentionBlock {
  int64_t layer = 0;
  int64_t num_heads = 0, head_dim = 0;
  std::vector<nn::Linear> head_rows;  // query, key, value (a fused QKV Linear appears three times)
  std::vector<int64_t> row_offsets;   // where each entry's head rows start (fused: 0, A, 2A); empty = 0
  nn::Linear head_cols{nullptr};      // attention output projection
  // Grouped-query attention: K and V hold this many heads, each shared by num_heads / kv_heads
  // query heads (0 = as many as the queries). The pruning group is then one K/V head with the
  // query heads that read it (head_rows[0] must be the query Linear).
  int64_t kv_heads = 0;
  std::string stack;
  int64_t stack_layer = -1;  // -1: same as `layer`
  // Rows from one head to the next within an entry: head_dim when each segment holds its heads
  // side by side (GPT-2's [q|k|v, heads, d]); 3 * head_dim for GPT-NeoX's [heads, q|k|v, d].
  int64_t row_stride = 0;  // 0 = head_dim
  int64_t row_offset(size_t i) const { return row_offsets.empty() ? 0 : row_offsets[i]; }
  // The rows of head_rows[i] that hold the groups, group by group: [groups() * group_rows(i)].
  torch::Tensor head_row_indices(size_t i) const;
  bool grouped_query() const { return kv_heads > 0 && kv_heads != num_heads; }
  int64_t cache_heads() const { return kv_heads > 0 ? kv_heads : num_heads; }  // the K/V heads a cache holds
  // What structured pruning removes whole: a head, or under grouped-query attention a K/V head
  // together with its query heads (a query head alone would leave its K/V head half used).
  int64_t groups() const { return grouped_query() ? kv_heads : num_heads; }
  int64_t query_heads_per_group() const { return grouped_query() ? num_heads / kv_heads : 1; }
  int64_t group_rows(size_t i) const { return head_dim * (i == 0 ? query_heads_per_group() : 1); }
  int64_t group_cols() const { return head_dim * query_heads_per_group(); }
  int64_t index_in_stack() const { return stack_layer < 0 ? layer : stack_layer; }
};
struct FfnBlock {
  int64_t layer = 0;
  std::vector<nn::Linear> neuron_rows;  // FFN input (and gate)
  nn::Linear neuron_cols{nullptr};      // FFN output
  std::string stack;
  int64_t stack_layer = -1;
  int64_t index_in_stack() const { return stack_layer < 0 ? layer : stack_layer; }
};
// The config keys SpeedUp rewrites when it cuts groups out; a family that names none is not shrunk.
struct ShapeKeys {
  std::map<std::string, std::string> ffn;  // stack -> its FFN width key (two stacks may share one, as T5's d_ff)
  std::string hidden;                      // the residual width
  bool hf_pruned_heads = false;            // transformers applies config.pruned_heads to this family
  io::json pin_on_hidden_cut = io::json::object();  // config entries that keep what HF derives from the hidden size
};
// Hidden dimension d of the residual stream: column d of every embedding, entry d of every norm
// on the stream, input column d of every Linear reading it, output row d of every one writing it.
struct HiddenGroup {
  std::vector<nn::Embedding> embeddings;
  std::vector<nn::LayerNorm> norms;
  std::vector<nn::Linear> readers, writers;
};
// A norm whose output reaches nothing but `readers` (pre-LN blocks): dividing its output channel j
// by s_j and multiplying every reader's input column j by s_j leaves the float model unchanged,
// which is how SmoothQuant moves activation outliers into the weights. Post-LN norms (BERT) also
// feed the residual stream, so they are never listed.
struct NormReaders {
  torch::Tensor weight, bias;  // the norm's affine parameters (bias undefined for RMSNorm)
  std::vector<nn::Linear> readers;
};
struct ModelStructure {
  std::vector<AttentionBlock> attention;
  std::vector<FfnBlock> ffn;
  HiddenGroup hidden;
  std::vector<NormReaders> smoothable;
  ShapeKeys shape_keys;
  // Every Linear of the blocks (attention and FFN), once each: a fused QKV Linear is listed three
  // times in `attention`.
  std::vector<nn::Linear> block_linears() const;
};

class TransformerModel : public torch::nn::Module {
 public:
  explicit TransformerModel(ModelInfo info) : info_(std::move(info)) {}
  virtual ModelOutputs forward(const ModelInputs& inputs) = 0;
  const ModelInfo& info() const { return info_; }
  // HF's _init_weights beyond the generic rule (normal(init_std) for Linear and Embedding, zero
  // bias, unit norms, zero padding row): e.g. GPT-2's scaled residual projections.
  virtual void init_weights_extra() {}
  // The dependency groups. Every registered family describes them (structured pruners, SpeedUp
  // and the narrower student read them); a family that returns none gets no structured pruning.
  virtual ModelStructure structure() { return {}; }
  // Rotary families: the inverse frequency of each rotated pair (after rope_scaling), [head_dim / 2];
  // undefined for models with learned or no positions.
  virtual torch::Tensor rotary_inv_freq() const { return {}; }

 protected:
  ModelInfo info_;
};

// The checkpoint key HF uses for one of our parameter names.
std::string hf_name(const ModelInfo& info, const std::string& name);

// A special token id field; HF allows a list (several EOS ids): the first is taken.
std::optional<int64_t> config_token_id(const io::JsonFields& config, const std::string& key);
// A token id the model feeds itself (an encoder-decoder's decoder start, or the pad that replaces
// ignored labels): `fallback` when absent, refused by name unless it is below `vocab_size`.
int64_t config_input_token_id(const io::JsonFields& config, const std::string& key, int64_t fallback, int64_t vocab_size);

// Per-layer shapes after structured pruning: heads kept (HF's config.pruned_heads, original
// numbering) and FFN width (sqz_intermediate_sizes; HF configs hold one width for all layers).
// Encoder-decoders keep one pair of keys per stack: sqz_encoder_pruned_heads,
// sqz_decoder_intermediate_sizes, sqz_cross_pruned_heads, ...
struct LayerShapes {
  std::vector<int64_t> heads, ffn;
  std::vector<std::vector<int64_t>> kept_heads;  // per layer, the original indices of the heads kept
};
enum class ShapeKey { kPrunedHeads, kIntermediateSizes };
std::string stack_config_key(ShapeKey key, const std::string& stack);
LayerShapes parse_layer_shapes(const io::JsonFields& config, int64_t num_layers, int64_t num_heads, int64_t ffn_width,
                               const std::string& stack = "");

// Why `transformers` cannot load this config as it is ("" when it can): a shape only sqz's keys
// describe (per-layer FFN widths, per-stack pruned heads, a pruned hidden size), or pruned_heads in
// a family whose HF model does not apply them (ShapeKeys::hf_pruned_heads).
std::string sqz_only_shape(TransformerModel& model, const io::json& config);

// hidden / heads, or sqz_attention_head_size once hidden dimensions were pruned.
int64_t config_head_dim(const io::JsonFields& config, const std::string& hidden_key, int64_t hidden, const std::string& heads_key,
                        int64_t heads);

// The value HF reads from a config for the number of labels: len(id2label), else num_labels, else 2.
int64_t config_num_labels(const io::JsonFields& config);

// Decoder sequence classification: the score at each row's last token before the first pad,
// exactly as HF picks it (argmax of the pad test, minus one, modulo the length).
torch::Tensor pool_last_token(const torch::Tensor& scores, const torch::Tensor& input_ids, std::optional<int64_t> pad_token_id);

// HF's shift_tokens_right: the decoder's inputs for teacher forcing, start token first, -100 as pad.
torch::Tensor shift_tokens_right(const torch::Tensor& ids, std::optional<int64_t> pad_token_id, int64_t decoder_start_token_id,
                                 const std::string& source);

// Position ids 0.. for the new tokens of a decoder, continuing after the cache.
torch::Tensor default_positions(const ModelInputs& in);

// Checks ids against the vocabulary and the sequence against the position table.
void validate_inputs(const ModelInfo& info, const ModelInputs& inputs, const std::string& source);

}  // namespace sqz::models
