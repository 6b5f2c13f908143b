import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A fresh npm project in a temp folder with some tarballs installed, offline. */
export interface Project {
  readonly dir: string;
  /** Runs a command there; returns its exit status, output and the RESULT line the example prints, parsed. */
  run(command: string, args: readonly string[], env?: Record<string, string>, timeoutMs?: number): Ran;
  remove(): void;
}

export interface ExampleResult {
  readonly backend: string;
  readonly rejected: readonly string[];
  readonly cosine: number;
  readonly relL1: number;
}

export interface Ran {
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly result?: ExampleResult;
}

export function parseResult(stdout: string): ExampleResult | undefined {
  const line = stdout.split("\n").find((l) => l.startsWith("RESULT "));
  return line ? (JSON.parse(line.slice("RESULT ".length)) as ExampleResult) : undefined;
}

/** Installs `tarballs` into a new project (no registry: every dependency is among them) and copies in the app files. */
export function installProject(label: string, tarballs: readonly string[]): Project {
  const dir = mkdtempSync(join(tmpdir(), `sageattn-${label}-`));
  writeFileSync(
    join(dir, "package.json"),
    JSON.stringify({ name: `packaging-${label}`, private: true, type: "module" }),
  );
  execFileSync("npm", ["install", "--offline", "--no-audit", "--no-fund", "--loglevel=error", ...tarballs], {
    cwd: dir,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const app = join(import.meta.dirname, "app");
  for (const f of readdirSync(app)) copyFileSync(join(app, f), join(dir, f));
  return {
    dir,
    run(command, args, env = {}, timeoutMs = 120_000) {
      const r = spawnSync(command, args, {
        cwd: dir,
        encoding: "utf8",
        env: { ...process.env, ...env },
        timeout: timeoutMs,
        killSignal: "SIGKILL",
      });
      return {
        status: r.status,
        signal: r.signal,
        stdout: r.stdout,
        stderr: r.stderr,
        result: parseResult(r.stdout ?? ""),
      };
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Bytes of regular files under a folder (what an install adds to disk, without block rounding). */
export function folderBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) total += folderBytes(p);
    else if (entry.isFile()) total += statSync(p).size;
  }
  return total;
}
