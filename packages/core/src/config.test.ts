// Parsing a user's config and a request's stored config.
import { describe, expect, it } from 'vitest';
import { parseConfig, parseStoredConfig, type SheepdogConfig, toStoredConfig } from './config.js';
import { isSheepdogError } from './errors.js';

function invalid(input: unknown): unknown {
  try {
    parseConfig(input as SheepdogConfig);
  } catch (error) {
    return error;
  }
  throw new Error('parseConfig accepted the config');
}

describe('parseConfig', () => {
  it('carries every problem of INVALID_CONFIG as an issue, and as a line of the message', () => {
    const error = invalid({ port: -1, geOpts: ['-V', 3], nonsense: true });
    expect(isSheepdogError(error, 'INVALID_CONFIG')).toBe(true);
    const { issues, message } = error as { issues: unknown; message: string };
    expect(issues).toEqual([
      { path: 'port', message: expect.stringContaining('Too small') },
      { path: 'geOpts.1', message: expect.stringContaining('expected string') },
      { path: '(config)', message: 'Unrecognized key: "nonsense"' },
    ]);
    expect(message.split('\n')).toEqual([
      'invalid config, fix these and try again:',
      ...(issues as { path: string; message: string }[]).map((i) => `  ${i.path}: ${i.message}`),
    ]);
  });

  it('names host when a cluster backend has none', () => {
    const error = invalid({ backend: 'slurm' });
    expect(error).toMatchObject({
      code: 'INVALID_CONFIG',
      issues: [{ path: 'host', message: expect.stringContaining('the slurm backend needs') }],
    });
  });
});

describe('parseStoredConfig', () => {
  const worker = { port: 4000, localhost: 'me.example' };

  it('reads back what toStoredConfig wrote, through JSON, without filling in defaults', () => {
    const stored = toStoredConfig(parseConfig({ host: 'head', retries: 2 }), 'gridengine', worker);
    expect(parseStoredConfig(JSON.parse(JSON.stringify(stored)))).toEqual(stored);
    expect(parseStoredConfig({ backend: 'local', ...worker })).toEqual({
      backend: 'local',
      ...worker,
    });
  });

  it('drops keys it does not know, and refuses what says not where the workers report', () => {
    expect(parseStoredConfig({ backend: 'local', ...worker, later: 1 })).toEqual({
      backend: 'local',
      ...worker,
    });
    expect(parseStoredConfig(null)).toBeUndefined();
    expect(parseStoredConfig({ backend: 'local', localhost: 'me.example' })).toBeUndefined();
    expect(parseStoredConfig({ backend: 'local', ...worker, retries: 'two' })).toBeUndefined();
  });
});
