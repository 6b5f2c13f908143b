import { describeConformance } from "@sageattn/core/conformance";
import { provider } from "./index.js";

await describeConformance(provider, { maxN: 1000 });
