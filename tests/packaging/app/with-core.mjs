// A plain install: @sageattn/core finds the installed backend packages by itself.
import * as api from "@sageattn/core";
import { readmeExample } from "./readme-example.mjs";

console.log(`RESULT ${JSON.stringify(await readmeExample(api))}`);
