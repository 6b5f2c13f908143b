// A workerd test worker: the README example through sageattn's workerd entry (cpu-simd on precompiled wasm).
import * as api from "sageattn";
import { readmeExample } from "./readme-example.mjs";

export default {
  async test() {
    console.log(`RESULT ${JSON.stringify(await readmeExample(api))}`);
  },
};
