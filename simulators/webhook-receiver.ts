/**
 * A webhook receiver for tests and the bench: node:http on loopback, recording every request it
 * reads, answering as told (200, 500, or nothing at all), and able to go away and come back on the
 * same port (a receiver's restart).
 */
import http from 'node:http';
import type { Socket } from 'node:net';

export type ReceiverAnswer = 'ok' | 'fail' | 'hang';

export interface ReceivedRequest {
  eventId: string;
  signature: string;
  body: string;
  /** Date.now() when the whole body had arrived */
  at: number;
  answer: ReceiverAnswer;
}

export class WebhookReceiver {
  readonly received: ReceivedRequest[] = [];
  /** what to answer a request (default: 200) */
  decide: (r: { eventId: string; body: string; n: number }) => ReceiverAnswer = () => 'ok';
  onRequest?: (r: ReceivedRequest) => void;
  private server: http.Server | null = null;
  private readonly sockets = new Set<Socket>();
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }

  async start(port = this.port): Promise<void> {
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const eventId = String(req.headers['loyalty-event-id'] ?? '');
        const answer = this.decide({ eventId, body, n: this.received.length });
        const r = { eventId, signature: String(req.headers['loyalty-signature'] ?? ''), body, at: Date.now(), answer };
        this.received.push(r);
        this.onRequest?.(r);
        if (answer === 'hang') return; // no answer: the sender's timeout decides
        res.writeHead(answer === 'ok' ? 200 : 500, { 'content-type': 'text/plain' });
        res.end(answer === 'ok' ? 'ok' : 'receiver failing on purpose');
      });
    });
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as { port: number }).port;
  }

  /** Gone: the listening socket closed and every connection cut (a hanging request too). */
  async close(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  /** Back on the same port. */
  async restart(): Promise<void> {
    await this.close();
    await this.start(this.port);
  }
}
