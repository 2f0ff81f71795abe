import { describe, expect, it } from 'vitest';
import { commandError, isCommandNotFound, missingCommand } from './command-error.js';

describe('command errors', () => {
  it('recognises bash and dash "not found" messages and exit 127', () => {
    expect(missingCommand('bash: line 1: qsub: command not found\n')).toBe('qsub');
    expect(missingCommand('sh: 1: qsub: not found\n')).toBe('qsub');
    expect(missingCommand('qsub: invalid option argument "-bogus"')).toBeUndefined();
    expect(isCommandNotFound({ stdout: '', stderr: '', code: 127 })).toBe(true);
    expect(isCommandNotFound({ stdout: '', stderr: 'x: No such file', code: 1 })).toBe(false);
  });

  it('builds COMMAND_FAILED with stderr, stdout and exit code in properties and message', () => {
    const error = commandError(
      'u@h:22',
      'qsub -bogus x',
      {
        stdout: '',
        stderr: 'qsub: invalid option argument "-bogus"\n',
        code: 2,
      },
      { program: 'qsub' },
    );
    expect(error.code).toBe('COMMAND_FAILED');
    expect(error).toMatchObject({
      exitCode: 2,
      stderr: 'qsub: invalid option argument "-bogus"\n',
      command: 'qsub -bogus x',
      host: 'u@h:22',
    });
    expect(error.message).toMatch(/^qsub failed on u@h:22 \(exit code 2\): qsub: invalid option/);
  });

  it('builds COMMAND_NOT_FOUND naming the program and the ways out', () => {
    const error = commandError(
      'u@h:22',
      'cd d && qsub -terse f',
      {
        stdout: '',
        stderr: 'bash: line 1: qsub: command not found\n',
        code: 127,
      },
      { program: 'qsub', notFoundHint: 'or pass `qsub`' },
    );
    expect(error.code).toBe('COMMAND_NOT_FOUND');
    expect(error.message).toContain('`qsub` was not found on u@h:22');
    expect(error.message).toContain('bash -lc');
    expect(error.message).toContain('PATH');
    expect(error.message).toContain('or pass `qsub`');
  });
});
