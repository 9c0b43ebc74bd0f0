"""sqz against the real transformers, live: for every family sqz supports, the pinned transformers
builds small random models at test time (BERT, RoBERTa, DistilBERT, GPT-2, OPT, Llama, Qwen2,
GPT-NeoX, BART, T5, ViT; several seeds and shapes: odd head counts, grouped-query attention, rope scaling, partial
rotary, parallel residual, post-LN and projected OPT, tied and untied embeddings, left and right
padding; encoder-decoders with explicit padded decoder inputs and, for BART, ones derived from
input_ids), saves them, and
- `sqz forward --hidden-states` must give its logits (or hidden states) and every hidden state
  (both stacks' for encoder-decoders) within 1e-4 at the real (unpadded) positions;
- greedy `sqz generate` must give the tokens transformers' greedy decoding gives (encoder-decoders:
  from decoder_start_token_id, with the generation config's forced BOS/EOS), and beam search the
  tokens of transformers' own generate(num_beams=...) over beam counts, length penalties and
  early stopping;
- BART and T5 on the runtime's encoder-decoder engine (`--engine runtime`, from the model dir and
  packed by `sqz pack`) must give the logits and encoder output within 1e-4 relative and the same
  greedy tokens;
- a config sqz does not implement (rope_scaling 'dynamic') must be refused by name;
and the fixtures' WordPiece and byte-level BPE tokenizers must give transformers' fast tokenizers'
ids and tokens on a corpus of hard strings, and SentencePiece models trained here by the real
`sentencepiece` the ids of transformers' LlamaTokenizer.
Weights are drawn with initializer_range 0.2 so activations are O(1) and 1e-4 is a real bound.

The ViT checks live in live_parity_vision.py.

Usage: python live_parity_test.py SQZ_BINARY
"""
import json
import os
import shutil
import tempfile

import numpy as np
import torch

from live_parity_vision import TOL, check_image_processor, check_vision
from sqz_cli import SHARED, greedy, sqz, sqz_forward

FIXTURES = os.path.join(SHARED, "fixtures")
BERT_TOK = os.path.join(FIXTURES, "bert-mlm", "model")  # WordPiece, 791 ids, [PAD] = 0
GPT2_TOK = os.path.join(FIXTURES, "gpt2-lm", "model")   # byte-level BPE, 857 ids, <|endoftext|> = 856
HARD = ["", " ", "Hello world", "café naïve Résumé", "cafe\u0301 (NFD) vs café (NFC)", "数字と漢字の混在テキスト", "한국어 문장",
        "emoji 🤖🎉 and flags 🇫🇷", "control\x07chars\x1b[0m", "  many   spaces\t\ttabs\n\nnewlines  ", "x" * 300,
        "supercalifragilisticexpialidocious" * 3, "don't stop-believing, it's 3.14 (or $5)!", "UPPER lower MiXeD",
        "Ünïcödé ßtraße ǅ", "\u200bzero\u200dwidth", "a.b,c;d:e!f?g", "<|endoftext|> as text"]


def max_diff(got, want, real):
    """Largest |got - want| over the real positions (real: [B, T] of 0/1)."""
    assert got.shape == want.shape, f"shape {got.shape} vs transformers {want.shape}"
    return float(np.abs(got - want)[real.astype(bool)].max())


def batch(vocab, seed, lengths, pad_id, left):
    """Random ids for sequences of the given lengths, padded to the longest on one side."""
    g = np.random.default_rng(seed)
    t = max(lengths)
    ids = np.full((len(lengths), t), pad_id, dtype=np.int64)
    mask = np.zeros((len(lengths), t), dtype=np.int64)
    for i, n in enumerate(lengths):
        sl = slice(t - n, t) if left else slice(0, n)
        ids[i, sl] = g.integers(3, vocab - 1, n)
        mask[i, sl] = 1
    return ids, mask


def save(model, tmp, name, tokenizer_dir):
    d = os.path.join(tmp, name)
    shutil.rmtree(d, ignore_errors=True)
    model.save_pretrained(d, safe_serialization=True)
    for f in os.listdir(tokenizer_dir):
        if f not in ("config.json", "model.safetensors", "generation_config.json"):
            shutil.copy(os.path.join(tokenizer_dir, f), d)
    return d


def compare_forward(name, model, d, tmp, ids, mask, extra=None, hf_kwargs=None):
    arrays = {"input_ids": ids, "attention_mask": mask, **(extra or {})}
    outs = sqz_forward(d, tmp, "--hidden-states", **arrays)
    with torch.no_grad():
        ref = model(**{k: torch.from_numpy(v) for k, v in arrays.items()}, **(hf_kwargs or {}), output_hidden_states=True)
    worst = 0.0
    main = "logits" if hasattr(ref, "logits") else "last_hidden_state"
    want = getattr(ref, main).numpy()
    if want.ndim == 2:  # sequence classification: one row per example
        worst = max(worst, float(np.abs(outs[main] - want).max()))
    else:
        worst = max(worst, max_diff(outs[main], want, mask))
    if "hidden_states" in outs:
        hs = outs["hidden_states"]
    else:  # states of different widths (OPT's project_out): one file each
        hs = [outs[f"hidden_states_{i}"] for i in range(sum(k.startswith("hidden_states_") for k in outs))]
    assert len(hs) == len(ref.hidden_states), f"{name}: {len(hs)} hidden states, transformers {len(ref.hidden_states)}"
    for i, h in enumerate(ref.hidden_states):
        worst = max(worst, max_diff(hs[i], h.numpy(), mask))
    assert worst <= TOL, f"{name}: max |sqz - transformers| = {worst:.3g} > {TOL}"
    return worst


def encoder_cases():
    from transformers import (BertConfig, BertForMaskedLM, BertForSequenceClassification, BertModel, DistilBertConfig,
                              DistilBertForMaskedLM, RobertaConfig, RobertaForMaskedLM)
    common = dict(vocab_size=791, num_hidden_layers=2, max_position_embeddings=64, initializer_range=0.2, pad_token_id=0)
    yield "bert MaskedLM 4 heads", BertForMaskedLM(BertConfig(hidden_size=64, num_attention_heads=4, intermediate_size=96, **common))
    yield "bert SequenceClassification 3 heads of 20", BertForSequenceClassification(
        BertConfig(hidden_size=60, num_attention_heads=3, intermediate_size=80, num_labels=3, **common))
    yield "bert Model (pooler) 5 heads of 12, gelu_new", BertModel(
        BertConfig(hidden_size=60, num_attention_heads=5, intermediate_size=64, hidden_act="gelu_new", **common))
    yield "roberta MaskedLM", RobertaForMaskedLM(RobertaConfig(
        hidden_size=48, num_attention_heads=4, intermediate_size=64, type_vocab_size=1,
        **{**common, "max_position_embeddings": 66, "pad_token_id": 0}))
    dc = dict(vocab_size=791, n_layers=2, max_position_embeddings=64, initializer_range=0.2, pad_token_id=0)
    yield "distilbert MaskedLM", DistilBertForMaskedLM(DistilBertConfig(dim=64, n_heads=4, hidden_dim=96, **dc))
    yield "distilbert MaskedLM sinusoidal positions", DistilBertForMaskedLM(
        DistilBertConfig(dim=48, n_heads=3, hidden_dim=64, sinusoidal_pos_embds=True, **dc))


def decoder_cases():
    from transformers import (GPT2Config, GPT2LMHeadModel, GPTNeoXConfig, GPTNeoXForCausalLM, LlamaConfig, LlamaForCausalLM,
                              OPTConfig, OPTForCausalLM, Qwen2Config, Qwen2ForCausalLM)
    v = dict(vocab_size=857, bos_token_id=856, eos_token_id=856, initializer_range=0.2)
    yield "gpt2 5 heads of 12", GPT2LMHeadModel(GPT2Config(n_embd=60, n_head=5, n_layer=2, n_positions=64, **v)), True
    yield "opt pre-LN", OPTForCausalLM(OPTConfig(hidden_size=64, num_attention_heads=4, ffn_dim=128, num_hidden_layers=2,
                                                 max_position_embeddings=64, word_embed_proj_dim=64, pad_token_id=1, init_std=0.2,
                                                 **{k: x for k, x in v.items() if k != "initializer_range"})), False
    yield "opt post-LN, projected embeddings (350m-style)", OPTForCausalLM(OPTConfig(
        hidden_size=64, num_attention_heads=4, ffn_dim=128, num_hidden_layers=2, max_position_embeddings=64,
        word_embed_proj_dim=32, do_layer_norm_before=False, pad_token_id=1, init_std=0.2,
        **{k: x for k, x in v.items() if k != "initializer_range"})), False
    lc = dict(num_hidden_layers=2, max_position_embeddings=128, rms_norm_eps=1e-6, **v)
    yield "llama MHA, tied embeddings", LlamaForCausalLM(LlamaConfig(
        hidden_size=64, num_attention_heads=4, num_key_value_heads=4, intermediate_size=96, tie_word_embeddings=True, **lc)), True
    yield "llama GQA 4/2, untied, rope linear x2", LlamaForCausalLM(LlamaConfig(
        hidden_size=64, num_attention_heads=4, num_key_value_heads=2, intermediate_size=96, tie_word_embeddings=False,
        rope_scaling={"type": "linear", "factor": 2.0}, **lc)), True
    yield "llama GQA 6/2 heads of 12, attention bias, rope llama3", LlamaForCausalLM(LlamaConfig(
        hidden_size=72, num_attention_heads=6, num_key_value_heads=2, intermediate_size=80, attention_bias=True,
        rope_theta=500000.0, rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                           "high_freq_factor": 4.0, "original_max_position_embeddings": 32}, **lc)), True
    yield "qwen2 GQA 4/2, q/k/v biases, tied", Qwen2ForCausalLM(Qwen2Config(
        hidden_size=64, num_attention_heads=4, num_key_value_heads=2, intermediate_size=96, tie_word_embeddings=True, **lc)), True
    yield "qwen2 MHA 6 heads, untied, rope_theta 1e6", Qwen2ForCausalLM(Qwen2Config(
        hidden_size=72, num_attention_heads=6, num_key_value_heads=6, intermediate_size=80, tie_word_embeddings=False,
        rope_theta=1e6, **lc)), True
    nc = dict(num_hidden_layers=2, max_position_embeddings=128, **v)
    yield "gpt_neox parallel residual, rotary 25%", GPTNeoXForCausalLM(GPTNeoXConfig(
        hidden_size=64, num_attention_heads=4, intermediate_size=128, rotary_pct=0.25, **nc)), True
    yield "gpt_neox sequential residual, rotary 50%, 3 heads of 24", GPTNeoXForCausalLM(GPTNeoXConfig(
        hidden_size=72, num_attention_heads=3, intermediate_size=96, rotary_pct=0.5, use_parallel_residual=False, **nc)), True


def seq2seq_cases():
    from transformers import (BartConfig, BartForConditionalGeneration, BartForQuestionAnswering, BartForSequenceClassification,
                              BartModel)
    bc = dict(vocab_size=857, max_position_embeddings=64, init_std=0.2, pad_token_id=1, bos_token_id=0, eos_token_id=2,
              decoder_start_token_id=2)
    yield "bart ConditionalGeneration 4/4 heads, tied", BartForConditionalGeneration(BartConfig(
        d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4,
        encoder_ffn_dim=96, decoder_ffn_dim=80, **bc))
    yield "bart ConditionalGeneration 3/6 heads, 1+3 layers, scaled embeddings, untied, relu", BartForConditionalGeneration(
        BartConfig(d_model=72, encoder_layers=1, decoder_layers=3, encoder_attention_heads=3, decoder_attention_heads=6,
                   encoder_ffn_dim=64, decoder_ffn_dim=96, scale_embedding=True, tie_word_embeddings=False,
                   activation_function="relu", **bc))
    yield "bart SequenceClassification", BartForSequenceClassification(BartConfig(
        d_model=48, encoder_layers=2, decoder_layers=1, encoder_attention_heads=4, decoder_attention_heads=2,
        encoder_ffn_dim=64, decoder_ffn_dim=64, num_labels=3, **bc))
    yield "bart QuestionAnswering", BartForQuestionAnswering(BartConfig(
        d_model=48, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
        encoder_ffn_dim=64, decoder_ffn_dim=64, **bc))
    yield "bart Model", BartModel(BartConfig(
        d_model=48, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4,
        encoder_ffn_dim=64, decoder_ffn_dim=64, **bc))
    from transformers import T5Config, T5EncoderModel, T5ForConditionalGeneration, T5Model
    tc = dict(vocab_size=857, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    yield "t5 ConditionalGeneration v1.0 (relu, tied, rescaled head), 4 heads of 16", T5ForConditionalGeneration(T5Config(
        d_model=64, d_kv=16, d_ff=96, num_layers=2, num_heads=4, relative_attention_num_buckets=8,
        relative_attention_max_distance=12, **tc))
    yield "t5 ConditionalGeneration v1.1 (gated-gelu, untied), 1+3 layers, 3 heads of 20", T5ForConditionalGeneration(T5Config(
        d_model=48, d_kv=20, d_ff=80, num_layers=1, num_decoder_layers=3, num_heads=3, feed_forward_proj="gated-gelu",
        tie_word_embeddings=False, **tc))
    yield "t5 Model", T5Model(T5Config(d_model=48, d_kv=12, d_ff=64, num_layers=2, num_heads=4, **tc))
    yield "t5 EncoderModel", T5EncoderModel(T5Config(d_model=48, d_kv=12, d_ff=64, num_layers=2, num_heads=4,
                                                     relative_attention_num_buckets=6, relative_attention_max_distance=7, **tc))


def greedy_seq2seq(model, ids, n):
    """Greedy decoding from decoder_start_token_id by full forwards, with the forced first/last tokens
    of the model's generation config (what generate's logits processors do)."""
    g = model.generation_config
    dec, new = torch.tensor([[g.decoder_start_token_id]]), []
    with torch.no_grad():
        for i in range(n):
            nxt = int(model(input_ids=torch.from_numpy(ids), decoder_input_ids=dec).logits[0, -1].argmax())
            if i == 0 and g.forced_bos_token_id is not None:
                nxt = g.forced_bos_token_id
            if i == n - 1 and g.forced_eos_token_id is not None:
                nxt = g.forced_eos_token_id
            new.append(nxt)
            if nxt == g.eos_token_id:
                break
            dec = torch.cat([dec, torch.tensor([[nxt]])], dim=1)
    return new


def check_seq2seq_runtime(name, seed, model, d, tmp, arrays, greedy_ids):
    """BART and T5 on the runtime's encoder-decoder engine (fp32), from the model dir and packed: logits
    and encoder output at real positions within TOL relative of transformers, greedy tokens equal."""
    packed = os.path.join(tmp, "seq2seq-packed")
    sqz("pack", d, "--precision", "fp32", "--out", packed, "--overwrite")
    with torch.no_grad():
        ref = model(**{k: torch.from_numpy(v) for k, v in arrays.items()})
    rt = 0.0
    for where in (d, packed):
        got = sqz_forward(where, tmp, "--engine", "runtime", **arrays)
        for key, real in (("logits", arrays["decoder_attention_mask"]), ("encoder_last_hidden_state", arrays["attention_mask"])):
            want = getattr(ref, key).numpy()
            rt = max(rt, max_diff(got[key], want, real) / float(np.abs(want).max()))
        out = json.loads(sqz("generate", where, "--engine", "runtime", "--prompt", "the old man and the sea", "--max-new-tokens", "8", "--ids"))
        assert out["new_ids"] == greedy_ids, f"{name} (seed {seed}): runtime greedy ({where}) {out['new_ids']} transformers {greedy_ids}"
    assert rt <= TOL, f"{name} (seed {seed}): runtime engine relative error {rt:.3g} > {TOL}"
    return f"; runtime engine fp32 (model dir and packed) within {rt:.2g} relative, greedy tokens equal"


def check_seq2seq(tmp, seeds):
    """Encoder-decoders: every output and both stacks' hidden states at real positions, with explicit
    (padded) decoder inputs and with the decoder inputs derived from input_ids (shifted right)."""
    lines = []
    for seed in seeds:
        torch.manual_seed(seed)
        for name, model in seq2seq_cases():
            model.eval()
            d = save(model, tmp, "model", GPT2_TOK)
            cfg = model.config
            ids, mask = batch(cfg.vocab_size, seed, [7, 12, 3], cfg.pad_token_id, False)
            ids[ids == cfg.eos_token_id] = 5
            ids[np.arange(len(ids)), mask.sum(1) - 1] = cfg.eos_token_id  # classification pools at the last EOS
            dec, dec_mask = batch(cfg.vocab_size, seed + 7, [5, 2, 9], cfg.pad_token_id, False)
            worst = 0.0
            explicit = {"input_ids": ids, "attention_mask": mask, "decoder_input_ids": dec, "decoder_attention_mask": dec_mask}
            plain = {"input_ids": ids, "attention_mask": mask}
            if "EncoderModel" in name:
                variants = [plain]
            elif "SequenceClassification" in name:  # it reads the decoder at input_ids' EOS: same lengths only
                variants = [plain]
            elif cfg.model_type == "t5":  # T5 does not derive decoder inputs from input_ids
                variants = [explicit]
            else:
                variants = [explicit, plain]
            for arrays in variants:
                outs = sqz_forward(d, tmp, "--hidden-states", **arrays)
                with torch.no_grad():
                    ref = model(**{k: torch.from_numpy(v) for k, v in arrays.items()}, output_hidden_states=True)
                real_dec = arrays.get("decoder_attention_mask", mask if "EncoderModel" in name else np.ones_like(ids))
                for key in ("logits", "start_logits", "end_logits", "last_hidden_state", "encoder_last_hidden_state"):
                    want = getattr(ref, key, None)
                    if want is None:
                        continue
                    want = want.numpy()
                    if want.ndim == 2 and key == "logits":  # one row per example
                        worst = max(worst, float(np.abs(outs[key] - want).max()))
                    else:
                        worst = max(worst, max_diff(outs[key], want, mask if key.startswith("encoder") else real_dec))
                stacks = ((("hidden_states", ref.decoder_hidden_states, real_dec), ("encoder_hidden_states", ref.encoder_hidden_states, mask))
                          if hasattr(ref, "decoder_hidden_states") else (("hidden_states", ref.hidden_states, mask),))
                for file, states, real in stacks:
                    assert len(outs[file]) == len(states), f"{name}: {len(outs[file])} {file}, transformers {len(states)}"
                    for i, h in enumerate(states):
                        worst = max(worst, max_diff(outs[file][i], h.numpy(), real))
            assert worst <= TOL, f"{name} (seed {seed}): max |sqz - transformers| = {worst:.3g} > {TOL}"
            gen = ""
            if "ConditionalGeneration" in name:
                out = json.loads(sqz("generate", d, "--prompt", "the old man and the sea", "--max-new-tokens", "8", "--ids"))
                want = greedy_seq2seq(model, np.array([out["prompt_ids"]], dtype=np.int64), 8)
                assert out["new_ids"] == want, f"{name} (seed {seed}): greedy sqz {out['new_ids']} transformers {want}"
                gen = f", greedy {len(want)} tokens equal"
                gen += check_seq2seq_runtime(name, seed, model, d, tmp, explicit, want)
            lines.append(f"ok {name} (seed {seed}): max |diff| {worst:.2g} ({len(variants)} input set{'s' if len(variants) > 1 else ''}){gen}")
    return lines


def hf_generate(model, ids, **kwargs):
    """transformers' own generate. Its FSDP probe imports torch.distributed.fsdp, which fails on Debian's
    torch 1.13 under Python 3.11; no model here is FSDP-wrapped, so the probe is answered directly."""
    import transformers.generation.utils as generation_utils
    generation_utils.is_fsdp_managed_module = lambda module: False
    with torch.no_grad():
        return model.generate(torch.tensor(ids), **kwargs)[0].tolist()


BEAM_SETTINGS = [(3, 1.0, False), (4, 0.6, True), (2, 2.0, False), (4, -0.5, False)]


def check_beam_search(tmp, seeds):
    """`sqz generate --num-beams` against transformers' generate(num_beams=...), for encoder-decoders
    (BART with its EOS logit raised so hypotheses finish at different lengths, and T5) and decoders,
    over beam counts, length penalties and early stopping."""
    lines = []
    for seed in seeds:
        torch.manual_seed(seed)
        cases = [(n, m) for n, m in seq2seq_cases() if "ConditionalGeneration" in n]
        cases += [(n, m) for n, m, _ in decoder_cases() if n.split()[0] in ("gpt2", "llama", "qwen2", "gpt_neox")]
        for name, model in cases:
            model.eval()
            if hasattr(model, "final_logits_bias"):
                with torch.no_grad():
                    model.final_logits_bias[0, model.config.eos_token_id] = 5.0
            d = save(model, tmp, "model", GPT2_TOK)
            runs = 0
            for beams, penalty, early in BEAM_SETTINGS:
                args = ["generate", d, "--prompt", "the old man and the sea", "--max-new-tokens", "8", "--ids",
                        "--num-beams", str(beams), "--length-penalty", str(penalty)] + (["--early-stopping"] if early else [])
                out = json.loads(sqz(*args))
                ids = [out["prompt_ids"]]
                want = hf_generate(model, ids, num_beams=beams, max_new_tokens=8, length_penalty=penalty, early_stopping=early,
                                   pad_token_id=model.config.pad_token_id or model.config.eos_token_id)
                want = want[1:] if model.config.is_encoder_decoder else want[len(ids[0]):]
                assert out["new_ids"] == want, (f"{name} (seed {seed}) beams {beams} length_penalty {penalty} early_stopping {early}: "
                                                f"sqz {out['new_ids']} transformers {want}")
                runs += 1
            lines.append(f"ok {name} (seed {seed}): beam search equals transformers' generate in {runs} settings")
    return lines


def check_family(tmp, cases, seeds, tokenizer_dir, decoder):
    lines = []
    for seed in seeds:
        torch.manual_seed(seed)
        for case in cases():
            name, model = case[0], case[1].eval()
            d = save(model, tmp, "model", tokenizer_dir)
            vocab = model.config.vocab_size
            worst = 0.0
            for left in ([False, True] if decoder else [False]):
                ids, mask = batch(vocab, seed, [7, 12, 3], 0 if not decoder else model.config.eos_token_id, left)
                extra, hf = {}, {}
                if decoder and case[2]:  # GPT-2 and Llama take explicit positions: count real tokens only
                    pos = np.clip(np.cumsum(mask, axis=1) - 1, 0, None).astype(np.int64)
                    extra["position_ids"] = pos
                if not decoder and model.config.model_type == "bert":
                    extra["token_type_ids"] = (np.arange(ids.shape[1])[None, :] >= 4).astype(np.int64).repeat(len(ids), 0) * mask
                worst = max(worst, compare_forward(f"{name} (seed {seed}, {'left' if left else 'right'} padding)",
                                                   model, d, tmp, ids, mask, extra, hf))
            gen = ""
            if decoder:
                prompt = "the old man and the sea"
                out = json.loads(sqz("generate", d, "--prompt", prompt, "--max-new-tokens", "8", "--ids"))
                want = greedy(model, np.array([out["prompt_ids"]], dtype=np.int64), 8, model.config.eos_token_id)
                assert out["new_ids"] == want, f"{name} (seed {seed}): greedy sqz {out['new_ids']} transformers {want}"
                gen = f", greedy {len(want)} tokens equal"
            lines.append(f"ok {name} (seed {seed}): max |diff| {worst:.2g}{gen}")
    return lines


def check_refusals(tmp):
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(0)
    m = LlamaForCausalLM(LlamaConfig(vocab_size=857, hidden_size=32, num_attention_heads=2, num_hidden_layers=1,
                                     intermediate_size=48, rope_scaling={"rope_type": "dynamic", "factor": 2.0}))
    d = save(m, tmp, "refused", GPT2_TOK)
    err = sqz("info", d, expect_fail=True)
    assert "rope_scaling type 'dynamic' is not supported" in err, err
    return ["ok llama rope_scaling 'dynamic': refused by name"]


def check_tokenizers():
    from transformers import AutoTokenizer
    lines = []
    for name, d in (("WordPiece (bert-mlm)", BERT_TOK), ("byte-level BPE (gpt2-lm)", GPT2_TOK)):
        hf = AutoTokenizer.from_pretrained(d, use_fast=True)
        args = ["tokenize", d]
        for t in HARD:
            args += ["--text", t]
        got = [json.loads(line) for line in sqz(*args).splitlines()]
        assert len(got) == len(HARD), f"{name}: {len(got)} lines for {len(HARD)} texts"
        for text, g in zip(HARD, got):
            want = hf(text)["input_ids"]
            assert g["input_ids"] == want, f"{name} {text!r}: sqz {g['input_ids']} transformers {want}"
            want_tokens = hf.tokenize(text)  # sqz lists the text's tokens, without the special ones
            assert g["tokens"] == want_tokens, f"{name} {text!r}: sqz tokens {g['tokens']} transformers {want_tokens}"
        lines.append(f"ok {name}: ids and tokens equal transformers' fast tokenizer on {len(HARD)} hard strings")
    return lines


def check_sentencepiece(tmp):
    """SentencePiece models trained here by the real sentencepiece on lm-books (unigram; BPE with
    byte fallback, as Llama's): sqz's ids equal HF's slow LlamaTokenizer's (legacy mode, the
    convention sqz follows)."""
    import sentencepiece as spm
    from transformers import LlamaTokenizer
    corpus = os.path.join(SHARED, "data", "lm-books", "train.txt")
    with open(corpus, encoding="utf-8") as f:
        text = f.read()[:300000]
    src = os.path.join(tmp, "spm-corpus.txt")
    with open(src, "w", encoding="utf-8") as f:
        f.write(text)
    lines = []
    for kind, extra in (("unigram", {}), ("bpe", {"byte_fallback": True})):
        d = os.path.join(tmp, f"spm-{kind}")
        os.makedirs(d, exist_ok=True)
        spm.SentencePieceTrainer.train(input=src, model_prefix=os.path.join(d, "tokenizer"), vocab_size=400, model_type=kind,
                                       bos_id=1, eos_id=2, unk_id=0, minloglevel=2, **extra)
        with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
            json.dump({"tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "add_eos_token": False, "bos_token": "<s>",
                       "eos_token": "</s>", "unk_token": "<unk>", "legacy": True}, f)
        hf = LlamaTokenizer(vocab_file=os.path.join(d, "tokenizer.model"), legacy=True)
        args = ["tokenize", d]
        for t in HARD:
            args += ["--text", t]
        got = [json.loads(line)["input_ids"] for line in sqz(*args).splitlines()]
        for t, g in zip(HARD, got):
            want = hf(t)["input_ids"]
            assert g == want, f"SentencePiece {kind} {t!r}: sqz {g} transformers {want}"
        lines.append(f"ok SentencePiece {kind}{' (byte fallback)' if extra else ''}: ids equal transformers' LlamaTokenizer "
                     f"on {len(HARD)} hard strings")
    return lines


def main():
    seeds = [0, 1]
    lines = check_tokenizers()
    with tempfile.TemporaryDirectory() as tmp:
        lines += check_family(tmp, encoder_cases, seeds, BERT_TOK, decoder=False)
        lines += check_family(tmp, decoder_cases, seeds, GPT2_TOK, decoder=True)
        lines += check_seq2seq(tmp, seeds)
        lines += check_beam_search(tmp, seeds)
        lines += check_vision(tmp, seeds)
        lines += check_image_processor(tmp, seeds)
        lines += check_refusals(tmp)
        lines += check_sentencepiece(tmp)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
