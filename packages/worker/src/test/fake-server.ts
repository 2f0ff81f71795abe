import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type AnyFunction,
  encodeArgs,
  encodeFunction,
  encodeNamespace,
  type ModuleFunction,
} from '@sheepdog/serialize';

interface StoredTask {
  func: Uint8Array;
  ns: Uint8Array;
  args: Uint8Array;
}

/** A node:http server speaking the Sheepdog wire protocol v1, for tests. */
export class FakeServer {
  readonly tasks = new Map<string, StoredTask>();
  readonly results = new Map<string, Uint8Array>();
  readonly errors = new Map<string, string>();
  /** Every request seen, as `METHOD /path`. */
  readonly hits: string[] = [];
  /** Answer this many of the next requests with `failStatus`. */
  failNext = 0;
  failStatus = 503;
  /** Accept requests but never answer them. */
  hang = false;
  private readonly waiters = new Map<string, () => void>();

  private constructor(
    private readonly server: Server,
    readonly token: string,
  ) {}

  static async start(token: string, port = 0): Promise<FakeServer> {
    const server = createServer();
    const fake = new FakeServer(server, token);
    server.on('request', (req, res) => fake.handle(req, res));
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    return fake;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/`;
  }

  addTask(
    requestId: number,
    jobIndex: number,
    f: AnyFunction | ModuleFunction,
    args: unknown,
    ns?: Record<string, unknown>,
  ): void {
    this.tasks.set(`${requestId}/${jobIndex}`, {
      func: encodeFunction(f),
      ns: encodeNamespace(ns),
      args: encodeArgs(args),
    });
  }

  /** Resolves when task `requestId/jobIndex` has posted a result or an error. */
  reported(requestId: number, jobIndex: number): Promise<void> {
    const key = `${requestId}/${jobIndex}`;
    if (this.results.has(key) || this.errors.has(key)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.set(key, resolve));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.hits.push(`${req.method} ${req.url}`);
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (this.hang) return;
    const send = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (this.failNext > 0) {
      this.failNext--;
      send(this.failStatus, { error: { code: 'BUSY', message: 'try again' } });
      return;
    }
    if (req.headers.authorization !== `Bearer ${this.token}`) {
      send(401, { error: { code: 'UNAUTHORIZED', message: 'bad token' } });
      return;
    }
    const match = /^\/v1\/requests\/(\d+)\/tasks\/(\d+)(\/result|\/error)?$/.exec(req.url ?? '');
    const key = match ? `${match[1]}/${match[2]}` : '';
    const task = this.tasks.get(key);
    if (!match || !task) {
      send(404, { error: { code: 'UNKNOWN_TASK', message: `no task ${key}` } });
      return;
    }
    if (req.method === 'GET' && !match[3]) {
      send(200, {
        func: Buffer.from(task.func).toString('base64'),
        ns: Buffer.from(task.ns).toString('base64'),
        args: Buffer.from(task.args).toString('base64'),
      });
      return;
    }
    if (req.method === 'POST' && match[3]) {
      const duplicate = this.results.has(key) || this.errors.has(key);
      if (!duplicate) {
        const body = Buffer.concat(chunks);
        if (match[3] === '/result') this.results.set(key, new Uint8Array(body));
        else this.errors.set(key, body.toString('utf8'));
      }
      send(200, { ok: true, duplicate });
      this.waiters.get(key)?.();
      return;
    }
    send(405, { error: { code: 'METHOD', message: 'no' } });
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    this.server.close();
    await once(this.server, 'close');
  }
}
