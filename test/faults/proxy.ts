import { createServer, connect, type Server, type Socket } from 'node:net';
import { sleep } from './rng';

/**
 * A TCP proxy in front of an in-process simulator, so that the simulator can "restart" the way a
 * service with durable storage does: every open connection is cut (a request may have been done
 * with its answer lost) and new ones are refused until it is back, while what it recorded stays.
 * Billing and the GL keep their state in memory; a real process restart would lose it, which is a
 * fault of the simulator, not one the ledger is meant to survive.
 */
export class RestartableProxy {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(private readonly targetPort: number) {}

  async listen(port = this.port): Promise<number> {
    for (let attempt = 1; ; attempt++) {
      try {
        this.port = await this.listenOnce(port);
        return this.port;
      } catch (e) {
        // the old listener's port can take a moment to be free again
        if (attempt >= 50 || (e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
        await sleep(100);
      }
    }
  }

  private listenOnce(port: number): Promise<number> {
    const server = createServer((client) => {
      const upstream = connect(this.targetPort, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        this.server = server;
        resolve((server.address() as { port: number }).port);
      });
    });
  }

  /** Cuts every connection and refuses new ones for downMs, then listens on the same port again. */
  async outage(downMs: number): Promise<void> {
    await this.close();
    await sleep(downMs);
    await this.listen(this.port);
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    const closed = server ? new Promise<void>((r) => server.close(() => r())) : Promise.resolve();
    for (const s of this.sockets) s.destroy();
    await closed;
  }
}
