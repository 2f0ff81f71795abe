import { getServer, type SheepdogServer } from '@sheepdog/server';
import type { ResolvedConfig } from './config.js';
import { SheepdogError } from './errors.js';

// A server is shared by every run in this process that asks for the same port and dbfile;
// it stops when the last of them lets go, so a finished map leaves no open port behind.
const users = new Map<SheepdogServer, number>();

/**
 * Gets (starting if needed) the server for this config and counts one more user of it.
 *
 * @param port - the port the request's workers were given (a resume); else `config.port`
 * @throws SheepdogError `PORT_IN_USE` when `port` is given and another process listens on it
 */
export async function acquireServer(
  config: ResolvedConfig,
  port?: number,
): Promise<SheepdogServer> {
  const wanted = port ?? (config.port === 0 ? undefined : config.port);
  let server: SheepdogServer;
  try {
    server = await getServer({
      dbfile: config.dbfile,
      hostname: config.bindHost,
      ...(wanted === undefined ? {} : { port: wanted }),
    });
  } catch (error) {
    if (port !== undefined && (error as { code?: unknown }).code === 'PORT_IN_USE') {
      throw new SheepdogError(
        'PORT_IN_USE',
        `port ${port}, where the request's workers report, is in use: most likely the process that started the request still serves it ` +
          `(wait for it, or read the results with getResults), or another program took the port (stop it, then try again)`,
        { cause: error },
      );
    }
    throw error;
  }
  users.set(server, (users.get(server) ?? 0) + 1);
  return server;
}

/** Counts one user less; stops the server when none is left, resolving once its port is free. */
export async function releaseServer(server: SheepdogServer): Promise<void> {
  const left = (users.get(server) ?? 1) - 1;
  if (left > 0) {
    users.set(server, left);
    return;
  }
  users.delete(server);
  await server.stop();
}
