/**
 * Errors for work that never reached the server, so the caller may safely retry it. A module of
 * its own, so that the Deployer can tell them apart without loading the SSH layer (and ssh2).
 */
export const notStarted: WeakSet<Error> = new WeakSet();
