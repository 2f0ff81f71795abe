// The real suite: every test here talks to the project's test cluster (a loopback sshd with
// Grid Engine behind it, started by scripts/test-cluster.sh). Without it the suite fails.
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clusterSsh, loadCluster, type TestCluster } from '@sheepdog/test-cluster';
import ssh2 from 'ssh2';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Deployer, type DeployerOptions } from './deployer.js';
import type { DeployerError } from './deployer-error.js';
import { fingerprint, parseKnownHosts } from './internal/known-hosts.js';
import { shellQuote } from './shell-quote.js';

let cluster: TestCluster;
let hostKey: Buffer;
const local = mkdtempSync(join(tmpdir(), 'deployer-test-'));
const remoteBase = `.sheepdog-deployer-test/run-${process.pid}-${Date.now()}`;
const open: Deployer[] = [];

function deployer(extra: Partial<DeployerOptions> = {}): Deployer {
  const created = new Deployer({ ...clusterSsh(cluster), ...extra });
  open.push(created);
  return created;
}

function localFile(name: string, text: string): string {
  const file = join(local, name);
  writeFileSync(file, text, { mode: 0o600 });
  return file;
}

function otherEd25519(): { privateKey: string; publicBlob: string } {
  const pair = ssh2.utils.generateKeyPairSync('ed25519');
  return { privateKey: pair.private, publicBlob: pair.public.split(' ')[1] ?? '' };
}

async function failure(promise: Promise<unknown>): Promise<DeployerError> {
  try {
    await promise;
  } catch (error) {
    return error as DeployerError;
  }
  throw new Error('expected the call to fail');
}

const clientPort = async (d: Deployer): Promise<string> =>
  (await d.run('echo "$SSH_CLIENT"')).stdout.trim();

beforeAll(() => {
  cluster = loadCluster();
  const [entry] = parseKnownHosts(readFileSync(cluster.knownHosts, 'utf8'), cluster.knownHosts);
  if (!entry) throw new Error(`${cluster.knownHosts} holds no host key`);
  hostKey = entry.key;
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((d) => d.close()));
});

afterAll(async () => {
  if (cluster) {
    const cleaner = deployer();
    // The parent is shared with concurrent runs: remove it only when empty.
    await cleaner
      .run(`rm -rf ${shellQuote(remoteBase)}; rmdir .sheepdog-deployer-test 2>/dev/null || true`)
      .catch(() => undefined);
    await cleaner.close();
  }
  rmSync(local, { recursive: true, force: true });
});

describe('exec and run', () => {
  it('returns stdout, stderr and the exit code without throwing', async () => {
    const d = deployer();
    await expect(d.exec('echo out; echo err >&2; exit 3')).resolves.toEqual({
      stdout: 'out\n',
      stderr: 'err\n',
      code: 3,
    });
    await expect(d.exec('cat', { stdin: 'in\n' })).resolves.toMatchObject({
      stdout: 'in\n',
      code: 0,
    });
  });

  it('run throws COMMAND_FAILED with stderr, stdout and exit code', async () => {
    const error = await failure(deployer().run('echo partial; echo broken >&2; exit 4'));
    expect(error).toMatchObject({
      code: 'COMMAND_FAILED',
      exitCode: 4,
      stdout: 'partial\n',
      stderr: 'broken\n',
    });
    expect(error.message).toContain('exit code 4');
    expect(error.message).toContain('broken');
  });

  it('says plainly when a command is not found (COMMAND_NOT_FOUND)', async () => {
    const error = await failure(deployer().run('sheepdog-no-such-command --x'));
    expect(error.code).toBe('COMMAND_NOT_FOUND');
    expect(error.exitCode).toBe(127);
    expect(error.message).toContain('`sheepdog-no-such-command` was not found on');
    expect(error.message).toContain('bash -lc');
  });

  it('kills a command that outlives timeoutMs (COMMAND_TIMEOUT)', async () => {
    const d = deployer();
    const marker = `sheepdog-timeout-${process.pid}`;
    const error = await failure(d.exec(`exec -a ${marker} sleep 30`, { timeoutMs: 300 }));
    expect(error.code).toBe('COMMAND_TIMEOUT');
    await new Promise((resolve) => setTimeout(resolve, 500));
    // '^' keeps pgrep from matching the shell that runs it (its own command line names the marker).
    const left = await d.exec(`pgrep -f '^${marker}' || true`);
    expect(left.stdout.trim()).toBe('');
  });
});

describe('connections', () => {
  it('reuses one connection across calls, including concurrent first calls', async () => {
    const d = deployer();
    const ports = await Promise.all([1, 2, 3, 4, 5].map(() => clientPort(d)));
    expect(new Set(ports).size).toBe(1);
    expect(await clientPort(d)).toBe(ports[0]);
  });

  it('reconnects on the next call after the connection drops', async () => {
    const d = deployer();
    const before = await clientPort(d);
    // Kill this connection's sshd process from inside: a real drop, seen by the client.
    const dropped = await failure(d.exec('kill $PPID; sleep 5'));
    expect(dropped.code).toBe('CONNECTION_LOST');
    const after = await clientPort(d);
    expect(after).not.toBe(before);
    expect(await clientPort(d)).toBe(after);
  });

  it('opens a new connection after close()', async () => {
    const d = deployer();
    const before = await clientPort(d);
    await d.close();
    await d.close();
    expect(await clientPort(d)).not.toBe(before);
  });

  it('refuses a wrong key with AUTH_FAILED naming what was tried', async () => {
    const keyfile = localFile('wrong_ed25519', otherEd25519().privateKey);
    const error = await failure(deployer({ keyfile }).exec('true'));
    expect(error.code).toBe('AUTH_FAILED');
    expect(error.message).toContain(`publickey ${keyfile}`);
    expect(error.message).toContain(cluster.user);
  });
});

describe('host keys', () => {
  const name = (): string => `[${cluster.host}]:${cluster.port}`;

  it('refuses an unknown host key with HOST_KEY_UNKNOWN, showing the fingerprint and the fix', async () => {
    const knownHostsFile = localFile('empty_known_hosts', '');
    const error = await failure(deployer({ knownHostsFile }).exec('true'));
    expect(error.code).toBe('HOST_KEY_UNKNOWN');
    expect(error.fingerprint).toBe(fingerprint(hostKey));
    expect(error.message).toContain(fingerprint(hostKey));
    expect(error.message).toContain(
      `ssh-keyscan -p ${cluster.port} ${cluster.host} >> ${knownHostsFile}`,
    );
    expect(error.message).toContain('acceptNewHostKey');
    expect(readFileSync(knownHostsFile, 'utf8')).toBe('');
  });

  it('refuses a changed host key with HOST_KEY_CHANGED, even with acceptNewHostKey', async () => {
    const knownHostsFile = localFile(
      'changed_known_hosts',
      `${name()} ssh-ed25519 ${otherEd25519().publicBlob}\n`,
    );
    for (const acceptNewHostKey of [false, true]) {
      const error = await failure(deployer({ knownHostsFile, acceptNewHostKey }).exec('true'));
      expect(error.code).toBe('HOST_KEY_CHANGED');
      expect(error.message).toContain(fingerprint(hostKey));
      expect(error.message).toContain(`ssh-keygen -R '${name()}' -f ${knownHostsFile}`);
    }
  });

  it('refuses a host key marked @revoked', async () => {
    const knownHostsFile = localFile(
      'revoked_known_hosts',
      `${name()} ssh-ed25519 ${hostKey.toString('base64')}\n@revoked * ssh-ed25519 ${hostKey.toString('base64')}\n`,
    );
    const error = await failure(deployer({ knownHostsFile }).exec('true'));
    expect(error.code).toBe('HOST_KEY_REVOKED');
  });

  it('accepts a hashed known_hosts entry', async () => {
    const salt = randomBytes(20);
    const hash = createHmac('sha1', salt).update(name()).digest('base64');
    const knownHostsFile = localFile(
      'hashed_known_hosts',
      `|1|${salt.toString('base64')}|${hash} ssh-ed25519 ${hostKey.toString('base64')}\n`,
    );
    await expect(deployer({ knownHostsFile }).run('true')).resolves.toMatchObject({ code: 0 });
  });

  it('records an unknown key with acceptNewHostKey, then trusts it without the flag', async () => {
    const knownHostsFile = join(local, 'new', 'known_hosts');
    await deployer({ knownHostsFile, acceptNewHostKey: true }).run('true');
    expect(readFileSync(knownHostsFile, 'utf8')).toBe(
      `${name()} ssh-ed25519 ${hostKey.toString('base64')}\n`,
    );
    await expect(deployer({ knownHostsFile }).run('true')).resolves.toMatchObject({ code: 0 });
  });
});

describe('deploy', () => {
  it('creates the directory with 0700 and writes the file with 0600, returning its absolute path', async () => {
    const d = deployer();
    const home = (await d.run('printf %s "$HOME"')).stdout;
    const dir = `${remoteBase}/deploy/nested`;
    const path = await d.deploy('console.log("token")\n', 7, dir);
    expect(path).toBe(`${home}/${dir}/sheepdog-7.cjs`);
    const modes = await d.run(
      `stat -c '%a %n' ${shellQuote(`${remoteBase}/deploy`)} ${shellQuote(dir)} ${shellQuote(path)}`,
    );
    expect(modes.stdout).toBe(`700 ${remoteBase}/deploy\n700 ${dir}\n600 ${path}\n`);
    expect((await d.run(`cat ${shellQuote(path)}`)).stdout).toBe('console.log("token")\n');
  });

  it('replaces an existing file and tightens its mode to 0600; accepts ~/ and absolute directories', async () => {
    const d = deployer();
    const home = (await d.run('printf %s "$HOME"')).stdout;
    const dir = `${remoteBase}/redeploy`;
    const first = await d.deploy('old contents that are longer\n', 'r', `~/${dir}`, 'job.cjs');
    await d.run(`chmod 644 ${shellQuote(first)}`);
    const second = await d.deploy('new\n', 'r', `${home}/${dir}`, 'job.cjs');
    expect(second).toBe(first);
    expect(
      (await d.run(`stat -c %a ${shellQuote(second)}; cat ${shellQuote(second)}`)).stdout,
    ).toBe('600\nnew\n');
  });

  it('fails with SFTP_FAILED where the user may not write', async () => {
    const error = await failure(deployer().deploy('x', 1, '/root/sheepdog-not-allowed'));
    expect(error.code).toBe('SFTP_FAILED');
  });
});

describe('submit to Grid Engine', () => {
  it('submits a real array job and returns its numeric id; the tasks run', async () => {
    expect(cluster.gridEngine, 'SHEEPDOG_TEST_GRIDENGINE=1 is required for this suite').toBe(true);
    const d = deployer();
    const home = (await d.run('printf %s "$HOME"')).stdout;
    const dir = `${remoteBase}/submit`;
    const absolute = `${home}/${dir}`;
    await d.run(`mkdir -p ${shellQuote(`${dir}/out`)}`);
    const job = [
      `#!${cluster.node}`,
      `//$ -S ${cluster.node}`,
      '//$ -N sdtest',
      '//$ -t 1-2',
      `//$ -o ${absolute}/out`,
      `//$ -e ${absolute}/out`,
      "const fs = require('node:fs');",
      `fs.writeFileSync(${JSON.stringify(`${absolute}/done.`)} + process.env.SGE_TASK_ID, 'task ' + process.env.SGE_TASK_ID);`,
      '',
    ].join('\n');
    await d.deploy(job, 'ge', dir);
    const jobId = await d.submit('ge', dir);
    expect(jobId).toMatch(/^\d+$/);

    const deadline = Date.now() + 60_000;
    let done = '';
    while (Date.now() < deadline) {
      done = (await d.exec(`cd ${shellQuote(dir)} && cat done.1 done.2 2>/dev/null`)).stdout;
      if (done === 'task 1task 2') break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect(done).toBe('task 1task 2');
  }, 90_000);

  it('raises COMMAND_FAILED with qsub stderr and exit code for a bad option', async () => {
    const d = deployer();
    const dir = `${remoteBase}/submit-bad`;
    await d.deploy('//\n', 'bad', dir);
    const error = await failure(d.submit('bad', dir, { args: ['-bogus-option'] }));
    expect(error.code).toBe('COMMAND_FAILED');
    expect(error.exitCode).not.toBe(0);
    expect(error.stderr).toMatch(/bogus-option/);
    expect(error.message).toContain('qsub failed on');
    expect(error.message).toContain(error.stderr?.trim() ?? '');
  });

  it('says plainly when qsub is not found (COMMAND_NOT_FOUND)', async () => {
    const d = deployer();
    const error = await failure(d.submit('x', '.', { qsub: 'qsub-not-installed' }));
    expect(error.code).toBe('COMMAND_NOT_FOUND');
    expect(error.message).toContain('`qsub-not-installed` was not found on');
    expect(error.message).toContain('PATH');
  });
});

describe('ssh config, ProxyJump and ProxyCommand', () => {
  const sshConfig = (): string => {
    const direct = [
      `  HostName ${cluster.host}`,
      `  Port ${cluster.port}`,
      `  User ${cluster.user}`,
      `  IdentityFile ${cluster.key}`,
    ].join('\n');
    const sshCommand = [
      'ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes',
      `-o UserKnownHostsFile=${cluster.knownHosts} -i ${cluster.key} -p %p -W %h:%p %r@%h`,
    ].join(' ');
    return localFile(
      'ssh_config',
      [
        `Host cluster-alias\n${direct}`,
        `Host jumpbox\n${direct}`,
        `Host via-jump\n${direct}\n  ProxyJump jumpbox`,
        `Host via-two-jumps\n${direct}\n  ProxyJump jumpbox,${cluster.user}@${cluster.host}:${cluster.port}`,
        `Host ${cluster.host}\n  IdentityFile ${cluster.key}`,
        `Host via-broken-jump\n${direct}\n  ProxyJump ${cluster.user}@${cluster.host}:1`,
        `Host via-command\n${direct}\n  ProxyCommand ${sshCommand}`,
        `Host via-broken-command\n${direct}\n  ProxyCommand sh -c 'echo proxy says no >&2; exit 3'`,
        '',
      ].join('\n\n'),
    );
  };

  const viaConfig = (host: string): Deployer =>
    deployer({
      host,
      port: undefined,
      user: undefined,
      keyfile: undefined,
      sshConfigFile: sshConfig(),
    });

  it('takes HostName, Port, User and IdentityFile from the ssh config', async () => {
    await expect(viaConfig('cluster-alias').run('whoami')).resolves.toMatchObject({
      stdout: `${cluster.user}\n`,
    });
  });

  it('connects through a ProxyJump host', async () => {
    const d = viaConfig('via-jump');
    await expect(d.run('whoami')).resolves.toMatchObject({ stdout: `${cluster.user}\n` });
    const path = await d.deploy('via jump\n', 'jump', `${remoteBase}/jump`);
    expect((await d.run(`cat ${shellQuote(path)}`)).stdout).toBe('via jump\n');
    const error = await failure(d.run('exit 9'));
    expect(error.message).toContain('via jump host');
  });

  it('connects through two ProxyJump hops', async () => {
    const error = await failure(viaConfig('via-two-jumps').run('exit 5'));
    expect(error.code).toBe('COMMAND_FAILED');
    expect(error.message).toMatch(/via jump host .* via jump host/);
  });

  it('reports a jump host that cannot be reached as CONNECT_FAILED', async () => {
    const error = await failure(viaConfig('via-broken-jump').exec('true'));
    expect(error.code).toBe('CONNECT_FAILED');
    expect(error.message).toContain(':1');
  });

  it('connects through a ProxyCommand (ssh -W %h:%p)', async () => {
    const d = viaConfig('via-command');
    await expect(d.run('whoami')).resolves.toMatchObject({ stdout: `${cluster.user}\n` });
    const error = await failure(d.run('exit 9'));
    expect(error.message).toContain('via ProxyCommand ssh -F /dev/null');
  });

  it('reports a failing ProxyCommand with its stderr as CONNECT_FAILED', async () => {
    const error = await failure(viaConfig('via-broken-command').exec('true'));
    expect(error.code).toBe('CONNECT_FAILED');
    expect(error.message).toContain('proxy says no');
    expect(error.message).toContain('exit code 3');
  });
});
