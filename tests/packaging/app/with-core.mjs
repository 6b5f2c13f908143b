// A plain install: @sageattn/core finds the installed backend packages by itself.
import * as api from "@sageattn/core";
import { readmeExample } from "./readme-example.mjs";

console.log(`RESULT ${JSON.stringify(await readmeExample(api))}`);
// Only while Deno's workers still keep the process alive (DENO_NEEDS_DISPOSE in the packaging tests).
if (globalThis.process?.env?.SAGEATTN_TEST_DISPOSE === "1") await api.dispose();
