import { describe, expect, it } from 'vitest';
import { Deployer, jobFileName } from './deployer.js';

describe('Deployer options', () => {
  it('reports every invalid option at once with INVALID_CONFIG', () => {
    let thrown: unknown;
    try {
      new Deployer({ host: '', port: 70000, readyTimeoutMs: -1, agent: '' });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toMatchObject({ code: 'INVALID_CONFIG' });
    const message = (thrown as Error).message;
    expect(message).toMatch(/^invalid Deployer options/);
    for (const field of ['host:', 'port:', 'readyTimeoutMs:', 'agent:'])
      expect(message).toContain(field);
  });

  it('does not connect in the constructor', () => {
    const deployer = new Deployer({ host: 'never-resolved.invalid' });
    expect(deployer.host).toBe('never-resolved.invalid');
  });

  it('names job files sheepdog-<requestId>.cjs and rejects paths as file names', async () => {
    expect(jobFileName(42)).toBe('sheepdog-42.cjs');
    const deployer = new Deployer({ host: 'never-resolved.invalid' });
    await expect(deployer.deploy('x', 1, 'dir', 'a/b.cjs')).rejects.toMatchObject({
      code: 'INVALID_CONFIG',
    });
  });

  it('fails to connect to a closed port with CONNECT_FAILED naming host:port', async () => {
    const deployer = new Deployer({ host: '127.0.0.1', port: 1, sshConfigFile: false });
    const failure = deployer.exec('true');
    await expect(failure).rejects.toMatchObject({ code: 'CONNECT_FAILED', host: '127.0.0.1:1' });
    await expect(failure).rejects.toThrow(/127\.0\.0\.1:1.*ECONNREFUSED.*check the port/i);
    await deployer.close();
  });
});
