import { formatError } from 'sheepdog';
import { describe, expect, it } from 'vitest';
import { CliError } from '../errors.js';
import { runFailed } from './failure.js';

describe('runFailed', () => {
  it('explains a bare system error found anywhere in the cause chain', () => {
    const bare = Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:22'), {
      code: 'ECONNREFUSED',
    });
    const wrapped = new Error('request failed', { cause: bare });
    const error = runFailed('could not start ./t.mjs#f', wrapped);
    expect(error.code).toBe('RUN_FAILED');
    expect(error.exitStatus).toBe(1);
    expect(error.cause).toBe(wrapped);
    expect(formatError(error)).toBe(
      '[sheepdog] [cli] could not start ./t.mjs#f: request failed\n  ECONNREFUSED: nothing accepted the connection: check the host and port (--host, --ssh-port, --port) and that the service runs there',
    );
  });

  it("leaves sheepdog's own messages, which already say what to do, without a hint", () => {
    const own = Object.assign(new Error('cannot connect: check the port'), {
      code: 'ECONNREFUSED',
      origin: 'deployer',
    });
    expect(formatError(runFailed('could not cancel request 1', own))).toBe(
      '[sheepdog] [cli] could not cancel request 1: [deployer] cannot connect: check the port',
    );
  });

  it('passes CLI errors through and describes non-errors', () => {
    const usage = new CliError('USAGE', 'bad');
    expect(runFailed('x', usage)).toBe(usage);
    expect(formatError(runFailed('could not serve', 'boom'))).toBe(
      '[sheepdog] [cli] could not serve: boom',
    );
  });
});
