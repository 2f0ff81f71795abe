import { describe, expect, it } from 'vitest';
import { gridEngineCommands, parseQsubJobId } from './gridengine.js';

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

describe('Grid Engine command lines', () => {
  it('submits from the job file folder, with the directive prefix and quoted arguments', () => {
    expect(gridEngineCommands.submit('~/.sheepdog', 'sheepdog-42.cjs')).toBe(
      "cd .sheepdog && qsub -terse -C '//$' sheepdog-42.cjs",
    );
    expect(
      gridEngineCommands.submit('/scratch/my jobs', 'f.cjs', {
        args: ['-l', 'h_rt=0:10:0', "it's"],
        directivePrefix: '//#',
        qsub: '/opt/sge/bin/qsub',
      }),
    ).toBe(
      "cd '/scratch/my jobs' && /opt/sge/bin/qsub -terse -C '//#' -l h_rt=0:10:0 'it'\\''s' f.cjs",
    );
  });

  it('asks for status, detail, accounting and cancels a job or one of its tasks', () => {
    expect(gridEngineCommands.status()).toBe('qstat -g d');
    expect(gridEngineCommands.job('143')).toBe('qstat -j 143');
    expect(gridEngineCommands.accounting('143')).toBe('qacct -j 143');
    expect(gridEngineCommands.cancel('143')).toBe('qdel 143');
    expect(gridEngineCommands.cancel('143', 7)).toBe('qdel 143 -t 7');
    expect(gridEngineCommands.cancel('1; rm -rf ~')).toBe("qdel '1; rm -rf ~'");
  });
});
