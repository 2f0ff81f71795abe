import { type Agent, request } from 'node:http';

/** An HTTP answer, body read in full. */
export interface Answer {
  readonly status: number;
  readonly body: Buffer;
}

/**
 * One HTTP exchange on `agent` (node:http, as the worker bundle uses; never fetch, whose undici
 * start-up and per-request cost would be measured instead of the server).
 *
 * @param onSend - called just before the request is written: the moment it is "posted"
 */
export function exchange(
  agent: Agent,
  base: URL,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: Uint8Array,
  onSend?: () => void,
): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    const req = request(
      {
        agent,
        hostname: base.hostname,
        port: base.port,
        method,
        path,
        headers:
          body === undefined ? headers : { ...headers, 'content-length': String(body.byteLength) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    onSend?.();
    req.end(body);
  });
}
