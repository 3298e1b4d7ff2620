// The mining worker's entry point (copied as is into dist/ by `cargo xtask build-web` or trunk; see index.html).
//
// gloo-worker starts a worker with `importScripts("<page>/worker.js");
// wasm_bindgen("<page>/worker_bg.wasm")`, and wasm-bindgen 0.2.130 deprecates that positional
// argument: every worker printed "using deprecated parameters for the initialization function"
// on every page load. So the build writes the real glue as miner.js and miner_bg.wasm
// (`data-target-name="miner"`), and this script stands in for it: it loads the glue and starts
// it with the object form. The glue's top-level `let wasm_bindgen` then shadows this function.
self.wasm_bindgen = function startMiner(wasmUrl) {
  const base = new URL('.', wasmUrl);
  importScripts(new URL('miner.js', base).href);
  return wasm_bindgen({ module_or_path: new URL('miner_bg.wasm', base).href });
};
