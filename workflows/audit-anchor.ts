import { proxyActivities, upsertMemo, workflowInfo } from '@temporalio/workflow';
import type { AuditAnchorActivities, AnchorWritten } from '../activities/audit-anchor';

const act = proxyActivities<AuditAnchorActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '5 minutes', maximumAttempts: 10 },
});

/**
 * Started by the audit-anchor Schedule (workers/schedules.ts): one signed checkpoint of every
 * audit chain's head, written outside the database, so `loyalty verify` can tell a rewritten row,
 * a truncated tail or a deleted chain from the books (docs/audit.md).
 */
export async function auditAnchorCheckpoint(): Promise<AnchorWritten | null> {
  const written = await act.writeAuditAnchorCheckpoint({ label: `schedule:${workflowInfo().workflowId}` });
  upsertMemo({
    summary: written
      ? `anchored ${written.chains} audit chains of ${written.database} at ${written.at}, digest ${written.digest}`
      : 'audit anchors are off (LOYALTY_AUDIT_ANCHORS=off): nothing written',
  });
  return written;
}
