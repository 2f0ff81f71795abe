// The single-file worker (dist/worker.cjs): esbuild exposes these as the global SheepdogWorker,
// which the job file's last line calls.
export { Client, EXIT_CODES, main, WorkerError } from './index.js';
