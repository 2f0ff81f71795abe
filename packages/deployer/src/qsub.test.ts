import { describe, expect, it } from 'vitest';
import { parseQsubJobId } from './qsub.js';

describe('parseQsubJobId', () => {
  it('reads plain and array job ids from qsub -terse (cluster-setup.md §1.9)', () => {
    expect(parseQsubJobId('142\n')).toBe('142');
    expect(parseQsubJobId('143.1-3:1\n')).toBe('143');
    expect(parseQsubJobId('144.1-10:2')).toBe('144');
    expect(parseQsubJobId('145.5-5:1\r\n')).toBe('145');
  });

  it('reads the last line when something printed a notice first', () => {
    expect(parseQsubJobId('warning: site notice\n\n146.1-5:2\n')).toBe('146');
  });

  it('returns undefined for anything that is not a job id', () => {
    expect(parseQsubJobId('')).toBeUndefined();
    expect(parseQsubJobId('Your job 140 ("true") has been submitted')).toBeUndefined();
    expect(parseQsubJobId('143.x')).toBeUndefined();
  });
});
