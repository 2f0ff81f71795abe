// Bundles the worker into ONE dependency-free CommonJS file (dist/worker.cjs) that a job file
// embeds: an IIFE that sets the global SheepdogWorker. Run after tsc (see package.json "build").
import { build } from 'esbuild';

const result = await build({
  entryPoints: ['src/bundle-entry.ts'],
  outfile: 'dist/worker.cjs',
  bundle: true,
  format: 'iife',
  globalName: 'SheepdogWorker',
  platform: 'node',
  target: 'node18',
  // Readable on purpose: the bundle ends up inside job files that people open to see what ran.
  minifyWhitespace: false,
  minifySyntax: true,
  legalComments: 'none',
  charset: 'utf8',
  metafile: true,
  logLevel: 'warning',
});
const bytes = Object.values(result.metafile.outputs)[0]?.bytes ?? 0;
console.log(`dist/worker.cjs: ${(bytes / 1024).toFixed(1)} KiB`);
