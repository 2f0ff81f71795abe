import { lookup, lookupService } from 'node:dns/promises';
import { hostname } from 'node:os';

/**
 * This machine's fully qualified name, as Python's `socket.getfqdn()` finds it: the name the
 * resolver gives for this host's address when that name has a dot, else the plain host name.
 */
export async function fqdn(): Promise<string> {
  const name = hostname();
  if (name.includes('.')) return name;
  try {
    const { address } = await lookup(name);
    const { hostname: canonical } = await lookupService(address, 0);
    return canonical.includes('.') ? canonical : name;
  } catch {
    return name;
  }
}
