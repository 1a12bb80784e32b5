import { z } from 'zod';
import { ROLES, type Role } from '../db/keys';
import {
  accrualSchema,
  chargebackSchema,
  createProgramSchema,
  invoiceAdjustmentSchema,
  mergeSchema,
  redemptionQuoteSchema,
  redemptionSchema,
  refundSchema,
  runReconciliationSchema,
  startCloseSchema,
  adjustmentSchema,
  adjustmentDecisionSchema,
  ruleChangeDecisionSchema,
  adjustmentsListQuery,
  approvalsQuery,
  closesListQuery,
  membersListQuery,
  redemptionsListQuery,
  ruleChangesListQuery,
} from '../domain/schemas';
import {
  createWebhookSchema,
  webhookCreatedResponse,
  webhookDeliveriesQuery,
  webhookDeliveriesResponse,
  webhookDeliveryParams,
  webhookListResponse,
  webhookParams,
  webhookRotatedResponse,
} from '../domain/webhooks';
import { ruleChangeProposalSchema } from '../domain/rule-change';

export interface RouteDoc {
  method: 'get' | 'post' | 'delete';
  path: string;
  summary: string;
  /** who may call it (admin may call everything but decisions): the endpoint x role table of docs/access.md */
  roles: readonly Role[] | 'any' | 'none';
  /** a decision on someone else's request: a person holding one of `roles` themselves; admin does not count (api/auth.ts requireRole) */
  decision?: true;
  body?: z.ZodType;
  /** the query string's schema (the lists): documented as query parameters */
  query?: z.ZodType;
  idempotent?: boolean;
  /** the path parameters' schema and the success answer's (the webhooks' routes name theirs in domain/webhooks.ts) */
  params?: z.ZodType;
  response?: z.ZodType;
  /**
   * waits on a workflow's answer and, past the API's wait (DEFAULT_WORKFLOW_WAIT_MS, api/server.ts),
   * answers 202 `{status: 'in_progress', workflowId, poll}` instead (api/context.ts stillRunning)
   */
  mayAnswerInProgress?: boolean;
}

/** The routes and the zod schemas that validate them: the same schemas are the docs. */
export const ROUTE_DOCS: RouteDoc[] = [
  {
    method: 'post',
    path: '/v1/programs',
    summary: 'Create a program (rule version 1)',
    roles: ['admin'],
    body: createProgramSchema,
    idempotent: true,
  },
  {
    method: 'get',
    path: '/v1/whoami',
    summary: "The caller's key: its principal (person or service), roles and programs",
    roles: 'any',
  },
  { method: 'get', path: '/v1/programs/{programId}', summary: 'A program with its active rule version', roles: 'any' },
  {
    method: 'post',
    path: '/v1/programs/{programId}/accruals',
    summary: 'Report a purchase: earn points, allocate, move the expiry deadline',
    roles: ['billing'],
    body: accrualSchema,
    idempotent: true,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/refunds',
    summary: 'Report a refund: revoke earned points pro rata, never below zero',
    roles: ['billing'],
    body: refundSchema,
    idempotent: true,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/members/{memberId}',
    summary: 'A member: balance, held, available, deadline, status',
    roles: ['billing', 'support', 'finance', 'controller'],
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/members/{memberId}/ledger',
    summary: "A member's ledger, oldest first (?after=&limit=)",
    roles: ['billing', 'support', 'finance', 'controller'],
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/members/{memberId}/merge',
    summary: 'Merge a duplicate member into a survivor',
    roles: ['support'],
    body: mergeSchema,
    idempotent: true,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/liability',
    summary: 'Point-in-time liability (?asOf=)',
    roles: ['finance', 'controller'],
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/redemptions',
    summary: 'Redeem points against an invoice: answers applied (credit in billing) or declined with a reason',
    roles: ['billing'],
    body: redemptionSchema,
    idempotent: true,
    mayAnswerInProgress: true,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/quotes/accrual',
    summary:
      "Quote an accrual, writing nothing: the points, the allocation and the member's deadline the accrual would set",
    roles: ['billing'],
    body: accrualSchema,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/quotes/redemption',
    summary:
      'Quote a redemption, writing nothing: the points and credit the invoice could take now, and what limits them',
    roles: ['billing'],
    body: redemptionQuoteSchema,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/redemptions/{invoiceId}',
    summary: "An invoice's redemption, current",
    roles: ['billing', 'support', 'finance', 'controller'],
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/chargebacks',
    summary: 'A chargeback on a redeemed invoice: opened freezes, won releases, lost reverses',
    roles: ['billing'],
    body: chargebackSchema,
    idempotent: true,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/redemptions/{invoiceId}/adjustments',
    summary: 'An invoice lowered after its redemption: the excess points go back, in proportion',
    roles: ['billing'],
    body: invoiceAdjustmentSchema,
    idempotent: true,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/reconciliations',
    summary: "Run a day's reconciliation now and answer its report",
    roles: ['finance'],
    body: runReconciliationSchema,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/reconciliations/{date}',
    summary: "A day's reconciliation report: redemptions against billing credits, postings against the GL",
    roles: ['finance', 'controller'],
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/closes',
    summary:
      "Start the close of an ended quarter (freeze, re-estimate breakage, propose); quarters close in order; an override outside a cohort's bounds R/N..(R + outstanding)/N: 422 override_out_of_bounds, nothing written",
    roles: ['finance'],
    body: startCloseSchema,
    idempotent: true,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/closes/{period}/approve',
    summary: 'Approve the proposed close (not its starter): book, post to the GL, lock',
    roles: ['controller'],
    decision: true,
    idempotent: true,
    mayAnswerInProgress: true,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/closes/{period}',
    summary: "A close's status and step",
    roles: ['finance', 'controller'],
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/closes/{period}/report',
    summary: 'The disclosure report (?format=json|csv|html)',
    roles: ['finance', 'controller'],
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/audit',
    summary: 'The audit trail: changes to points, rules, keys and periods (?memberId=&since=&limit=)',
    roles: ['finance'],
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/adjustments',
    summary: "A manual adjustment: applied at once up to the program's threshold, else it waits for finance",
    roles: ['support'],
    body: adjustmentSchema,
    idempotent: true,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/adjustments/{adjustmentId}/approvals',
    summary: 'Approve or reject an adjustment (not its requester)',
    roles: ['finance'],
    decision: true,
    body: adjustmentDecisionSchema,
    idempotent: true,
    mayAnswerInProgress: true,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/adjustments/{adjustmentId}',
    summary: 'An adjustment and its decision',
    roles: ['support', 'finance'],
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/rule-changes',
    summary: 'Propose a rule version: impact, approvals, notice, activation',
    roles: ['program_owner'],
    body: ruleChangeProposalSchema,
    idempotent: true,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/rule-changes/{changeId}/approvals',
    summary: 'Approve or reject a rule change for one required role (never the proposer, one role per person)',
    roles: ['finance', 'legal', 'controller', 'program_owner'],
    decision: true,
    body: ruleChangeDecisionSchema,
    idempotent: true,
    mayAnswerInProgress: true,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/rule-changes/{changeId}/withdraw',
    summary: 'Withdraw a change that has not taken effect',
    roles: ['program_owner'],
    idempotent: true,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/rule-changes/{changeId}',
    summary: 'A rule change: impact, approvals, status',
    roles: ['program_owner', 'finance', 'legal', 'controller'],
  },
  {
    method: 'post',
    path: '/codec/decode',
    summary: "The Temporal UI's codec server: decrypt payloads (Temporal's codec protocol, {payloads})",
    roles: ['support'],
  },
  {
    method: 'post',
    path: '/codec/encode',
    summary: "The Temporal UI's codec server: encrypt payloads",
    roles: ['support'],
  },
  { method: 'get', path: '/healthz', summary: 'The process is up', roles: 'none' },
  { method: 'get', path: '/readyz', summary: 'PostgreSQL and Temporal answer', roles: 'none' },
  { method: 'get', path: '/metrics', summary: 'Prometheus metrics', roles: 'none' },
  // the lists and the approval inbox (docs/api.md), last: the fuzz test's seeds of the routes before stay as they were
  {
    method: 'get',
    path: '/v1/approvals',
    summary:
      "The approval inbox: closes, adjustments, merges and rule changes awaiting a role the caller holds (?role=&programId=&limit=&cursor=), across the key's programs, the caller's own requests excluded",
    roles: 'any',
    query: approvalsQuery,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/members',
    summary: 'Members by id, or with points by deadline (?status=&expiringWithin=P30D|expiresBefore=&limit=&cursor=)',
    roles: ['support', 'finance', 'controller'],
    query: membersListQuery,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/redemptions',
    summary: 'Redemptions by business time (?from=&to= UTC dates, &status=&limit=&cursor=)',
    roles: ['billing', 'support', 'finance', 'controller'],
    query: redemptionsListQuery,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/closes',
    summary: 'Closes by period (?status=&limit=&cursor=)',
    roles: ['finance', 'controller'],
    query: closesListQuery,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/adjustments',
    summary: 'Manual adjustments and merges by request time (?status=&kind=&limit=&cursor=)',
    roles: ['support', 'finance'],
    query: adjustmentsListQuery,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/rule-changes',
    summary: 'Rule changes by proposal time (?status=&limit=&cursor=)',
    roles: ['program_owner', 'finance', 'legal', 'controller'],
    query: ruleChangesListQuery,
  },
  // webhooks (docs/api.md, "Webhooks")
  {
    method: 'post',
    path: '/v1/programs/{programId}/webhooks',
    summary: 'Create a webhook {url, events, description?}: answers its id and its signing secret, shown this once',
    roles: ['admin'],
    body: createWebhookSchema,
    response: webhookCreatedResponse,
    idempotent: true,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/webhooks',
    summary: "The program's webhooks (never their secrets)",
    roles: ['finance', 'support'],
    response: webhookListResponse,
  },
  {
    method: 'delete',
    path: '/v1/programs/{programId}/webhooks/{webhookId}',
    summary: 'Delete a webhook: nothing more is sent to it (its pending deliveries fail)',
    roles: ['admin'],
    params: webhookParams,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/webhooks/{webhookId}/rotate-secret',
    summary: 'A new signing secret, shown this once; the old one signs too (a second v1=) for 24 h',
    roles: ['admin'],
    params: webhookParams,
    response: webhookRotatedResponse,
    idempotent: true,
  },
  {
    method: 'get',
    path: '/v1/programs/{programId}/webhooks/{webhookId}/deliveries',
    summary: "A webhook's deliveries, newest first, with their attempts (?status=&limit=&before=)",
    roles: ['finance', 'support'],
    params: webhookParams,
    query: webhookDeliveriesQuery,
    response: webhookDeliveriesResponse,
  },
  {
    method: 'post',
    path: '/v1/programs/{programId}/webhooks/{webhookId}/deliveries/{deliveryId}/redeliver',
    summary: 'Send a delivered or failed delivery again: a new series of attempts, the same event id',
    roles: ['support'],
    params: webhookDeliveryParams,
    idempotent: true,
  },
];

export const rolesText = (roles: RouteDoc['roles'], decision = false) =>
  roles === 'any'
    ? 'any key'
    : roles === 'none'
      ? 'no key needed'
      : decision
        ? `${roles.join(', ')}: a person holding the role (not admin, not a service)`
        : [...new Set([...roles, 'admin'])].join(', ');

/** docs/access.md's table: every endpoint against every role (a test keeps the file and the code in step). */
export function accessTable(): string {
  const head = `| endpoint | ${ROLES.join(' | ')} |\n| --- | ${ROLES.map(() => '---').join(' | ')} |\n`;
  return (
    head +
    ROUTE_DOCS.filter((r) => r.roles !== 'none')
      .map((r) => {
        const cells = ROLES.map((role) =>
          r.roles === 'any' || (role === 'admin' && !r.decision) || r.roles.includes(role) ? 'yes' : '',
        );
        return `| \`${r.method.toUpperCase()} ${r.path}\` | ${cells.join(' | ')} |`;
      })
      .join('\n') +
    '\n'
  );
}

const errorSchema = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: { code: { type: 'string' }, message: { type: 'string' }, details: { type: 'object' } },
      required: ['code', 'message'],
    },
  },
};

/** A workflow that has not answered within the API's wait: where to poll for its outcome (not stored under the key). */
const inProgressResponse = {
  description:
    'The workflow has not answered within the API wait (30 s by default): the request was taken and is not stored under its Idempotency-Key; GET `poll` shows the outcome',
  content: {
    'application/json': {
      schema: {
        type: 'object',
        properties: {
          status: { const: 'in_progress' },
          workflowId: { type: 'string' },
          poll: { type: 'string', description: 'the GET path that shows the outcome' },
        },
        required: ['status', 'workflowId', 'poll'],
      },
    },
  },
};

/** Too many failed authentications from the address or on the key prefix (api/auth.ts): refused before any lookup. */
const throttledResponse = {
  description:
    'too_many_failed_attempts: too many failed authentications from this address or on this key; wait Retry-After seconds',
  headers: { 'Retry-After': { description: 'seconds until the counting window ends', schema: { type: 'integer' } } },
  content: { 'application/json': { schema: errorSchema } },
};

export function openApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of ROUTE_DOCS) {
    const params = [...r.path.matchAll(/\{(\w+)\}/g)].map((m) => ({
      name: m[1],
      in: 'path',
      required: true,
      schema: { type: 'string' },
    }));
    if (r.idempotent)
      params.push({ name: 'Idempotency-Key', in: 'header', required: true, schema: { type: 'string' } });
    if (r.query) {
      const q = z.toJSONSchema(r.query, { io: 'input', unrepresentable: 'any' }) as {
        properties?: Record<string, { type: string }>;
      };
      for (const [name, schema] of Object.entries(q.properties ?? {}))
        params.push({ name, in: 'query', required: false, schema } as (typeof params)[number]);
    }
    (paths[r.path] ??= {})[r.method] = {
      summary: r.summary,
      description: `Roles: ${rolesText(r.roles, r.decision)}.`,
      parameters: params,
      ...(r.body
        ? {
            requestBody: {
              required: true,
              content: {
                'application/json': { schema: z.toJSONSchema(r.body, { io: 'input', unrepresentable: 'any' }) },
              },
            },
          }
        : {}),
      responses: {
        ...(r.response
          ? {
              '200': {
                description: 'OK',
                content: { 'application/json': { schema: z.toJSONSchema(r.response, { unrepresentable: 'any' }) } },
              },
            }
          : {}),
        ...(r.mayAnswerInProgress ? { '202': inProgressResponse } : {}),
        ...(r.roles !== 'none' ? { '429': throttledResponse } : {}),
        default: {
          description: 'JSON; errors as {error: {code, message, details}}',
          content: { 'application/json': { schema: errorSchema } },
        },
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Loyalty Ledger API', version: '1' },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    security: [{ bearer: [] }],
    paths,
  };
}

export function docsPage(): string {
  const rows = ROUTE_DOCS.map(
    (r) =>
      `<tr><td><code>${r.method.toUpperCase()}</code></td><td><code>${r.path}</code></td><td>${r.summary}</td><td>${rolesText(r.roles, r.decision)}</td></tr>`,
  ).join('\n');
  return `<!doctype html><html><head><meta charset="utf-8"><title>Loyalty Ledger API</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}td{padding:.3rem .8rem;border-bottom:1px solid #ddd}</style></head>
<body><h1>Loyalty Ledger API v1</h1><p>Full schema: <a href="/openapi.json">/openapi.json</a>. Auth: <code>Authorization: Bearer &lt;key&gt;</code>.
Every state-changing POST needs an <code>Idempotency-Key</code>.</p>
<table><tr><th>method</th><th>path</th><th>what</th><th>roles</th></tr>${rows}</table></body></html>`;
}
