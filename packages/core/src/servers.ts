import { getServer, type SheepdogServer } from '@sheepdog/server';
import type { ResolvedConfig } from './config.js';

// A server is shared by every run in this process that asks for the same port and dbfile;
// it stops when the last of them lets go, so a finished map leaves no open port behind.
const users = new Map<SheepdogServer, number>();

/** Gets (starting if needed) the server for this config and counts one more user of it. */
export async function acquireServer(config: ResolvedConfig): Promise<SheepdogServer> {
  const server = await getServer({
    dbfile: config.dbfile,
    hostname: config.bindHost,
    ...(config.port === undefined || config.port === 0 ? {} : { port: config.port }),
  });
  users.set(server, (users.get(server) ?? 0) + 1);
  return server;
}

/** Counts one user less; stops the server when none is left. */
export function releaseServer(server: SheepdogServer): void {
  const left = (users.get(server) ?? 1) - 1;
  if (left > 0) {
    users.set(server, left);
    return;
  }
  users.delete(server);
  void server.stop();
}
