export {
  Deployer,
  type DeployerOptions,
  type ExecOptions,
  type ExecResult,
  jobFileName,
  type SubmitOptions,
} from './deployer.js';
export {
  DeployerError,
  type DeployerErrorCode,
  type DeployerErrorDetails,
} from './deployer-error.js';
export { parseQsubJobId } from './qsub.js';
export { shellQuote } from './shell-quote.js';
