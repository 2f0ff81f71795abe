import { describe, expect, it } from 'vitest';
import { EXIT_CODE_NAMES, EXIT_CODES, isExitCode } from './exit-codes.js';

describe('exit codes', () => {
  it('are 0, 2 and 3, one per name', () => {
    expect(EXIT_CODES).toEqual({ reported: 0, badSetup: 2, unreported: 3 });
    expect(EXIT_CODE_NAMES).toEqual(Object.keys(EXIT_CODES));
  });

  it("tell the worker's own codes from a crash or a signal", () => {
    expect([0, 2, 3].map(isExitCode)).toEqual([true, true, true]);
    expect([1, 134, 137, null].map(isExitCode)).toEqual([false, false, false, false]);
  });
});
