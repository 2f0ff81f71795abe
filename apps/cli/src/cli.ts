#!/usr/bin/env node
/**
 * The `sheepdog` executable.
 * @module
 */
import { main } from './program.js';

const status = await main(process.argv);
// Leave nothing behind (an SSH connection, a timer): the answer has been written.
process.exitCode = status;
process.exit(status);
