import { backendContract } from '../../test/contract.js';
import { local } from './local.js';

// Two at a time, so that the cancel case has tasks running and tasks still queued.
backendContract('local', () => local({ concurrency: 2 }));
