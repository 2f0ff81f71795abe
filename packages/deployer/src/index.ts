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
export { parseQsubJobId } from './qsub.js';
export { shellQuote } from './shell-quote.js';
