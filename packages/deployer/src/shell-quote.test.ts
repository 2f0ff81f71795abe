import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { shellQuote } from './shell-quote.js';

describe('shellQuote', () => {
  it('leaves plain words alone and quotes everything else', () => {
    expect(shellQuote('qsub')).toBe('qsub');
    expect(shellQuote('/home/u/.sheepdog/sheepdog-1.cjs')).toBe('/home/u/.sheepdog/sheepdog-1.cjs');
    expect(shellQuote('')).toBe("''");
    expect(shellQuote('a b')).toBe("'a b'");
    expect(shellQuote('//$')).toBe("'//$'");
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    expect(shellQuote('~/x')).toBe("'~/x'");
  });

  it('round-trips hostile strings through a real POSIX shell', () => {
    const hostile = [
      "it's",
      '$(touch /tmp/pwned)',
      '`id`',
      'a\nb',
      '"double" \\back',
      '*',
      '-t 1-3',
      "''",
      '$HOME $PATH',
      ['$', '{PATH}'].join(''),
      '!event',
      'tab\there',
      'ünïcødé',
    ];
    for (const arg of hostile) {
      const echoed = execFileSync('/bin/sh', ['-c', `printf %s ${shellQuote(arg)}`], {
        encoding: 'utf8',
      });
      expect(echoed).toBe(arg);
    }
  });
});
