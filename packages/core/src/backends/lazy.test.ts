// A local-only map must never load the cluster backends' code, nor with it ssh2 (its crypto and
// native parts). Each case runs in a fresh Node process against the built package, as a user's
// program imports it, and lists the ssh2 files Node's module cache holds at the end: ssh2 is
// CommonJS, so every file of it that was loaded is there.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const packageDir = join(import.meta.dirname, '..', '..');
const sheepdog = pathToFileURL(join(packageDir, 'dist', 'index.js')).href;
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sheepdog-lazy-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `body` (an ES module's statements) in a fresh process; its output, and the ssh2 files loaded. */
function run(body: string): { output: unknown; ssh2: string[] } {
  const script = `
    import { createRequire } from 'node:module';
    const sheepdog = await import(${JSON.stringify(sheepdog)});
    const output = await (async () => { ${body} })();
    const ssh2 = Object.keys(createRequire(import.meta.url).cache).filter((file) =>
      /[\\\\/]node_modules[\\\\/]ssh2[\\\\/]/.test(file),
    );
    console.log(JSON.stringify({ output, ssh2 }));
  `;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: packageDir,
    encoding: 'utf8',
  });
  expect(child.stderr).toBe('');
  return JSON.parse(child.stdout);
}

describe('lazy cluster backends', () => {
  it('a local map, with cluster backends made but never used, loads no ssh2', () => {
    const dbfile = JSON.stringify(join(dir, 'local.sqlite'));
    const { output, ssh2 } = run(`
      sheepdog.gridengine({ host: 'head.example.org' });
      sheepdog.slurm({ host: 'login.example.org', slurmOpts: ['--time=5'] });
      return sheepdog.map((x) => x * 2, [1, 2, 3], { dbfile: ${dbfile}, concurrency: 2 });
    `);
    expect(output).toEqual([2, 4, 6]);
    expect(ssh2).toEqual([]);
  }, 60_000);

  it('a cluster backend loads its code and ssh2 on first use (so the check above can see ssh2)', () => {
    const { output, ssh2 } = run(`
      const backend = sheepdog.gridengine({
        host: '127.0.0.1', port: 1, sshConfigFile: false, agent: false, connectTimeoutMs: 2000,
      });
      const submission = { backend: 'gridengine', jobId: '1', indices: [1], submittedAt: 0 };
      const failed = await backend.status(submission).then(() => false, (error) => error.code);
      await backend.dispose();
      return failed;
    `);
    expect(output).toBe('CONNECT_FAILED');
    expect(ssh2.length).toBeGreaterThan(0);
  }, 60_000);

  it('refuses bad options where the backend is made, before anything loads', () => {
    const { output, ssh2 } = run(`
      const codes = [];
      for (const make of [
        () => sheepdog.gridengine({ host: '' }),
        () => sheepdog.slurm({ host: 'login', slurmOpts: ['--array=1-3'] }),
      ]) {
        try { make(); codes.push('none'); } catch (error) { codes.push(error.code); }
      }
      return codes;
    `);
    expect(output).toEqual(['INVALID_CONFIG', 'INVALID_CONFIG']);
    expect(ssh2).toEqual([]);
  });
});
