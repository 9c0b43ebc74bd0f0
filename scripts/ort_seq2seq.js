// Runs an encoder-decoder written by scripts/onnx_seq2seq.py with ONNX Runtime (npm
// onnxruntime-node, CPU) for `sqz bench` and `sqz export`: per run, encode the sources (the
// encoder graph also projects every decoder layer's cross-attention K/V once) and take the first
// decoder step ("prefill"), then greedy decode steps feeding each step's present K/V back as the
// next past; one checked run, then warm-up and timed runs.
//   node scripts/ort_seq2seq.js MODULE_DIR GRAPH_DIR INPUTS.json OUT.json RUNS WARMUP THREADS
// GRAPH_DIR: encoder_model.onnx, decoder_model.onnx, cache_shapes.json (layers, heads per layer,
// head_dim, decoder_start_token_id).
// INPUTS.json: {"batch": B, "seq": T, "input_ids": [...], "decode_steps": S} (no padding).
// OUT.json: {"values": [the first step's logits], "tokens": [[...]], "prefill_ms": [...],
//            "decode_ms_per_token": [...], "version": ...}
'use strict';
const fs = require('fs');
const path = require('path');

function argmaxRows(logits, batch) {
  const vocab = logits.length / batch;
  const out = new BigInt64Array(batch);
  for (let b = 0; b < batch; ++b) {
    let best = 0;
    for (let j = 1; j < vocab; ++j) if (logits[b * vocab + j] > logits[b * vocab + best]) best = j;
    out[b] = BigInt(best);
  }
  return out;
}

async function generate(ort, encoder, decoder, shapes, input) {
  const {batch, seq} = input;
  const ids = new ort.Tensor('int64', BigInt64Array.from(input.input_ids.map(BigInt)), [batch, seq]);
  const mask = new ort.Tensor('int64', new BigInt64Array(batch * seq).fill(1n), [batch, seq]);
  const t0 = process.hrtime.bigint();
  const encoded = await encoder.run({input_ids: ids, attention_mask: mask});
  const feeds = {decoder_input_ids: new ort.Tensor('int64', new BigInt64Array(batch).fill(BigInt(shapes.decoder_start_token_id)), [batch, 1]),
                 encoder_attention_mask: mask};
  for (let i = 0; i < shapes.layers; ++i)
    for (const kind of ['key', 'value']) {
      feeds[`past_${kind}_${i}`] = new ort.Tensor('float32', new Float32Array(0), [batch, shapes.heads[i], 0, shapes.head_dim]);
      feeds[`cross_${kind}_${i}`] = encoded[`cross_${kind}_${i}`];
    }
  let out = await decoder.run(feeds);
  const t1 = process.hrtime.bigint();
  const first = Array.from(out.logits.data);
  const tokens = [];
  for (let s = 0; s < input.decode_steps; ++s) {
    const next = argmaxRows(out.logits.data, batch);
    tokens.push(Array.from(next, Number));
    feeds.decoder_input_ids = new ort.Tensor('int64', next, [batch, 1]);
    for (let i = 0; i < shapes.layers; ++i)
      for (const kind of ['key', 'value']) feeds[`past_${kind}_${i}`] = out[`present_${kind}_${i}`];
    out = await decoder.run(feeds);
  }
  const t2 = process.hrtime.bigint();
  return {first, tokens, prefill: Number(t1 - t0) / 1e6, decode: Number(t2 - t1) / 1e6 / Math.max(input.decode_steps, 1)};
}

async function main() {
  const [moduleDir, graphDir, inputsPath, outPath, runs, warmup, threads] = process.argv.slice(2);
  const ort = require(path.resolve(moduleDir));
  const input = JSON.parse(fs.readFileSync(inputsPath, 'utf8'));
  const shapes = JSON.parse(fs.readFileSync(path.join(graphDir, 'cache_shapes.json'), 'utf8'));
  const options = {intraOpNumThreads: Number(threads), interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all'};
  const encoder = await ort.InferenceSession.create(path.join(graphDir, 'encoder_model.onnx'), options);
  const decoder = await ort.InferenceSession.create(path.join(graphDir, 'decoder_model.onnx'), options);
  const checked = await generate(ort, encoder, decoder, shapes, input);
  for (let i = 0; i < Number(warmup); ++i) await generate(ort, encoder, decoder, shapes, input);
  const prefill = [], decode = [];
  for (let i = 0; i < Number(runs); ++i) {
    const r = await generate(ort, encoder, decoder, shapes, input);
    prefill.push(r.prefill);
    decode.push(r.decode);
  }
  const version = require(path.join(path.resolve(moduleDir), 'package.json')).version;
  fs.writeFileSync(outPath, JSON.stringify({values: checked.first, tokens: checked.tokens, prefill_ms: prefill,
                                            decode_ms_per_token: decode, version}));
}

main().catch((e) => {
  console.error(String(e && e.stack || e));
  process.exit(1);
});
