// The README example in a browser bundle of sageattn; the test reads window.sageattnResult.
import * as api from "sageattn";
import { readmeExample } from "./readme-example.mjs";

readmeExample(api).then(
  (r) => (window.sageattnResult = r),
  (e) => (window.sageattnResult = { error: String(e) }),
);
