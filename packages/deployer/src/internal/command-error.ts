import { DeployerError } from '../deployer-error.js';
import type { CommandOutput } from './connection.js';

const MAX_OUTPUT_IN_MESSAGE = 2000;

function clip(text: string): string {
  const trimmed = text.trim();
  return trimmed.length > MAX_OUTPUT_IN_MESSAGE
    ? `…${trimmed.slice(-MAX_OUTPUT_IN_MESSAGE)}`
    : trimmed;
}

/** The command a shell reported missing (`bash: line 1: qsub: command not found`, dash's `sh: 1: qsub: not found`). */
export function missingCommand(stderr: string): string | undefined {
  return /(?:^|: )([^\s:]+): (?:command )?not found\s*$/m.exec(stderr)?.[1];
}

/** Whether a result means the shell could not find the program (exit 127). */
export function isCommandNotFound(output: CommandOutput): boolean {
  return output.code === 127 || (output.code !== 0 && missingCommand(output.stderr) !== undefined);
}

/** Extra ways out that the not-found message offers, e.g. a `qsub` option. */
export interface CommandErrorOptions {
  /** What the command is, for the message: `qsub`, or the command line itself. */
  program?: string;
  /** One more sentence of advice for COMMAND_NOT_FOUND. */
  notFoundHint?: string;
}

/** The COMMAND_FAILED or COMMAND_NOT_FOUND error for a command that exited non-zero. */
export function commandError(
  host: string,
  command: string,
  output: CommandOutput,
  options: CommandErrorOptions = {},
): DeployerError {
  const details = {
    host,
    command,
    exitCode: output.code,
    stdout: output.stdout,
    stderr: output.stderr,
    ...(output.signal === undefined ? {} : { signal: output.signal }),
  };
  if (isCommandNotFound(output)) {
    const program =
      missingCommand(output.stderr) ?? options.program ?? command.split(' ')[0] ?? command;
    return new DeployerError(
      'COMMAND_NOT_FOUND',
      `\`${program}\` was not found on ${host} (exit ${output.code}: ${clip(output.stderr) || 'no output'}). Commands run over SSH get a minimal PATH (often /usr/local/bin:/usr/bin:/bin) and no login files. Find it with \`ssh <host> 'bash -lc "command -v ${program}"'\`, then pass \`loginShell: true\` (runs the command through \`bash -lc\`), or add its directory to PATH near the top of ~/.bashrc on the server (before the line that returns early for non-interactive shells)${options.notFoundHint ? `, ${options.notFoundHint}` : ''}. Command: ${command}`,
      details,
    );
  }
  const ending =
    output.signal === undefined ? `exit code ${output.code}` : `signal ${output.signal}`;
  const said = clip(output.stderr) || clip(output.stdout) || 'no output';
  return new DeployerError(
    'COMMAND_FAILED',
    `${options.program ?? 'command'} failed on ${host} (${ending}): ${said}. Command: ${command}`,
    details,
  );
}
