import { describeConformance } from "./conformance/index.js";
import { jsProvider } from "./js-backend.js";

// The TS oracle as a backend runs the same suite as every native backend (it is the last fallback).
await describeConformance(jsProvider, { maxN: 300 });
