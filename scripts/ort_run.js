// Runs an ONNX model with ONNX Runtime (npm onnxruntime-node, CPU) for `sqz bench`: one checked
// run, then warm-up and timed runs, in this process and nothing else.
//   node scripts/ort_run.js MODULE_DIR MODEL.onnx INPUTS.json OUT.json RUNS WARMUP THREADS
// INPUTS.json: {"batch": B, "seq": T, "input_ids": [...], "attention_mask": [...], "token_type_ids": [...]}
// OUT.json: {"output": name, "values": [...first run's output...], "times_ms": [...], "version": ...}
'use strict';
const fs = require('fs');
const path = require('path');

async function main() {
  const [moduleDir, modelPath, inputsPath, outPath, runs, warmup, threads] = process.argv.slice(2);
  const ort = require(path.resolve(moduleDir));
  const input = JSON.parse(fs.readFileSync(inputsPath, 'utf8'));
  const shape = [input.batch, input.seq];
  const feeds = {};
  for (const name of ['input_ids', 'attention_mask', 'token_type_ids'])
    feeds[name] = new ort.Tensor('int64', BigInt64Array.from(input[name].map(BigInt)), shape);
  const session = await ort.InferenceSession.create(modelPath, {
    intraOpNumThreads: Number(threads), interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
  });
  const outName = session.outputNames[0];
  const first = await session.run(feeds);
  for (let i = 0; i < Number(warmup); ++i) await session.run(feeds);
  const times = [];
  for (let i = 0; i < Number(runs); ++i) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const version = require(path.join(path.resolve(moduleDir), 'package.json')).version;
  fs.writeFileSync(outPath, JSON.stringify({output: outName, values: Array.from(first[outName].data), times_ms: times, version}));
}

main().catch((e) => {
  console.error(String(e && e.stack || e));
  process.exit(1);
});
