import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** The simulators' own Idempotency-Key handling, like a real service's: replay, or 409 on a new body. */
export class IdempotencyStore {
  private seen = new Map<string, { hash: string; status: number; body: unknown }>();

  /** Returns true when it answered the request (a replay or a conflict). */
  async replay(operation: string, req: FastifyRequest, reply: FastifyReply): Promise<boolean> {
    const key = req.headers['idempotency-key'];
    if (typeof key !== 'string' || key.length === 0 || key.length > 255) {
      await reply
        .status(400)
        .send({ error: { code: 'idempotency_key_required', message: 'send an Idempotency-Key header' } });
      return true;
    }
    const prior = this.seen.get(`${operation}\n${key}`);
    if (!prior) return false;
    if (prior.hash !== this.hash(req)) {
      await reply
        .status(409)
        .send({ error: { code: 'idempotency_key_reused', message: 'this key was used with another request' } });
      return true;
    }
    await reply.status(prior.status).header('Idempotent-Replayed', 'true').send(prior.body);
    return true;
  }

  remember(operation: string, req: FastifyRequest, status: number, body: unknown): void {
    this.seen.set(`${operation}\n${String(req.headers['idempotency-key'])}`, { hash: this.hash(req), status, body });
  }

  private hash(req: FastifyRequest): string {
    return createHash('sha256')
      .update(req.url)
      .update(JSON.stringify(req.body ?? null))
      .digest('hex');
  }
}
