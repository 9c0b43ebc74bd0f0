// Runs an ONNX decoder written by scripts/onnx_decoder.py with ONNX Runtime (npm onnxruntime-node,
// CPU) for `sqz bench`: prefill the prompt, then greedy decode steps feeding each step's
// present K/V back as the next past; one checked run, then warm-up and timed runs.
//   node scripts/ort_decode.js MODULE_DIR MODEL.onnx INPUTS.json OUT.json RUNS WARMUP THREADS
// INPUTS.json: {"batch": B, "seq": T, "input_ids": [...], "decode_steps": S, "layers": L, "heads": [K/V heads of each layer], "head_dim": D}
// OUT.json: {"values": [first prefill's last logits], "tokens": [[...]], "prefill_ms": [...],
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

async function generate(ort, session, input) {
  const {batch, seq, layers, heads, head_dim: hd} = input;
  const feeds = {input_ids: new ort.Tensor('int64', BigInt64Array.from(input.input_ids.map(BigInt)), [batch, seq])};
  for (let i = 0; i < layers; ++i)
    for (const kind of ['key', 'value']) feeds[`past_${kind}_${i}`] = new ort.Tensor('float32', new Float32Array(0), [batch, heads[i], 0, hd]);
  const t0 = process.hrtime.bigint();
  let out = await session.run(feeds);
  const t1 = process.hrtime.bigint();
  const first = Array.from(out.logits.data);
  const tokens = [];
  for (let s = 0; s < input.decode_steps; ++s) {
    const next = argmaxRows(out.logits.data, batch);
    tokens.push(Array.from(next, Number));
    const step = {input_ids: new ort.Tensor('int64', next, [batch, 1])};
    for (let i = 0; i < layers; ++i)
      for (const kind of ['key', 'value']) step[`past_${kind}_${i}`] = out[`present_${kind}_${i}`];
    out = await session.run(step);
  }
  const t2 = process.hrtime.bigint();
  return {first, tokens, prefill: Number(t1 - t0) / 1e6, decode: Number(t2 - t1) / 1e6 / Math.max(input.decode_steps, 1)};
}

async function main() {
  const [moduleDir, modelPath, inputsPath, outPath, runs, warmup, threads] = process.argv.slice(2);
  const ort = require(path.resolve(moduleDir));
  const input = JSON.parse(fs.readFileSync(inputsPath, 'utf8'));
  const session = await ort.InferenceSession.create(modelPath, {
    intraOpNumThreads: Number(threads), interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
  });
  const checked = await generate(ort, session, input);
  for (let i = 0; i < Number(warmup); ++i) await generate(ort, session, input);
  const prefill = [], decode = [];
  for (let i = 0; i < Number(runs); ++i) {
    const r = await generate(ort, session, input);
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
