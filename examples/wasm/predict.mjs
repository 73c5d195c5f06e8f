// predict.mjs: run model.wasm from Node.js (18 or later) through the generated loader.
//   timber compile model.json --target wat --wasm -o model/
//   node predict.mjs
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const TimberModel = require("./model/model.js");

const model = await TimberModel.load(await readFile(new URL("./model/model.wasm", import.meta.url)));
const rows = [
  [0.25, -1.5, 0.75, 2.0],
  [-0.5, 0.125, -2.25, 0.0],
  [1.0, NaN, 0.5, -0.75], // NaN: a missing value
];
const y = model.predict(rows); // Float32Array, TIMBER_N_OUTPUTS values per row
// Exact text: the bits of each float32 result (0x3f000000 is 0.5); console.log(y) prints decimals.
for (let r = 0; r < rows.length; r++) {
  console.log(`row ${r}: 0x${new Uint32Array(y.buffer)[r].toString(16).padStart(8, "0")}`);
}
