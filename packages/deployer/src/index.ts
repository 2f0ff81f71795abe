export {
  Deployer,
  type DeployerOptions,
  type ExecOptions,
  type ExecResult,
  jobFileName,
  type SubmitOptions,
} from './deployer.js';
export {
  DEPLOYER_ERROR_CODES,
  DeployerError,
  type DeployerErrorCode,
  type DeployerErrorDetails,
  isDeployerError,
} from './deployer-error.js';
export {
  parseQsubJobId,
  type QsubCommandOptions,
  qacctCommand,
  qdelCommand,
  qstatCommand,
  qstatJobCommand,
  qsubCommand,
} from './gridengine.js';
export { shellQuote } from './shell-quote.js';
export {
  parseSbatchJobId,
  type SlurmJobs,
  sacctCommand,
  sbatchArgv,
  sbatchCommand,
  scancelCommand,
  scontrolConfigCommand,
  squeueCommand,
} from './slurm.js';
