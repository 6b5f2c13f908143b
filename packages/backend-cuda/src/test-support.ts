// For the tests that compile csrc/ headers with the host C++ compiler ($CXX, else c++); not part of the package.
import { execSync } from "node:child_process";

export const CXX = process.env.CXX ?? "c++";

/** Whether $CXX runs here (the tests that need it are skipped, visibly, where it does not). */
export const hasCxx = (() => {
  try {
    execSync(`command -v ${CXX}`, { stdio: "ignore", shell: "/bin/sh" });
    return true;
  } catch {
    return false;
  }
})();
