// The shared conformance suite. Without a GPU (CI) the backend is unavailable, which the suite records as a visible
// skip plus a test that the reason is one this machine explains: NoDevice (no GPU or driver), FeatureMissing (Node,
// which has no FFI), LibraryNotFound (no nvcc, so nothing was built).
import { describeConformance } from "@sageattn/core/conformance";
import { provider } from "./index.js";

await describeConformance(provider, { maxN: 1000, unavailableOk: ["NoDevice", "FeatureMissing", "LibraryNotFound"] });
