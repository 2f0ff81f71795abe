import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MainOptions } from '../index.js';

/** The BUILT bundle, which the tests run as a scheduler would: `pnpm build` first. */
export const bundlePath = new URL('../../dist/worker.cjs', import.meta.url);

/** How one run of a job file went. */
export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** A temporary folder holding job files made of the built bundle, and runs of them in `node`. */
export class BundleRun {
  /** The bundle's text. */
  readonly bundle: string = readFileSync(bundlePath, 'utf8');
  /** Where the job files go; the working directory of each run. */
  readonly dir: string;
  #files = 0;

  constructor(prefix: string) {
    this.dir = mkdtempSync(join(tmpdir(), prefix));
  }

  /** A minimal job file: shebang, the bundle, the main() call (what @sheepdog/job-file renders). */
  jobFile(options: Omit<MainOptions, 'env' | 'exit'>): string {
    const path = join(this.dir, `sheepdog-${++this.#files}.cjs`);
    const text = `#!${process.execPath}\n${this.bundle}\nSheepdogWorker.main(${JSON.stringify(options)});\n`;
    writeFileSync(path, text, { mode: 0o600 });
    return path;
  }

  /** Runs a job file in plain `node` with only PATH and `env` in its environment. */
  run(file: string, env: Record<string, string>): Promise<Ran> {
    const started = Date.now();
    const child = spawn(process.execPath, [file], {
      cwd: this.dir,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    return new Promise((resolve) =>
      child.on('close', (code) => resolve({ code, stdout, stderr, ms: Date.now() - started })),
    );
  }
}
