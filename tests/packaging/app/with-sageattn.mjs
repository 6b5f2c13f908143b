// The sageattn package: backends imported statically, chosen by the runtime's export condition.
import * as api from "sageattn";
import { readmeExample } from "./readme-example.mjs";

console.log(`RESULT ${JSON.stringify(await readmeExample(api))}`);
