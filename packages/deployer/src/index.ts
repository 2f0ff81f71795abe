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
// The scheduler command lines: every export of these two modules is public.
export * from './gridengine.js';
export { shellQuote } from './shell-quote.js';
export * from './slurm.js';
