import { describe, expect, it } from 'vitest';
import { settleClaim } from '../../api/validate';

// Storing an answer (or releasing a claim) that fails while PostgreSQL restarts must be tried again:
// given up at once, the claim stays in progress for its whole lease and every retry of the key
// answers 409 (the fault suite's redemptions whose answers were lost).
describe('settleClaim', () => {
  const refused = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });

  it('writes again while the database does not answer, until it does', async () => {
    let calls = 0;
    await settleClaim(async () => {
      calls++;
      if (calls < 3) throw refused();
    });
    expect(calls).toBe(3);
  });

  it('does not retry an error that is an answer (a constraint, a bug)', async () => {
    let calls = 0;
    const err = Object.assign(new Error('duplicate key value'), { code: '23505' });
    await expect(
      settleClaim(async () => {
        calls++;
        throw err;
      }),
    ).rejects.toBe(err);
    expect(calls).toBe(1);
  });
});
