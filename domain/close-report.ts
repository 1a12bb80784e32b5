/**
 * The close's disclosure report (API.md, Finance): its shape, how it is made from the period's
 * sums (db/close-report.ts reads them from the books), and its CSV and HTML renderings. Pure
 * functions; the HTML is one self-contained page (inline SVG, no external assets).
 */

export interface CohortReportRow {
  cohort: string;
  pointsIssued: number;
  allocatedMinor: number;
  pointsRedeemed: number;
  pointsExpired: number;
  ultimateRedemptionRate: number;
  recognizedMinor: number;
  deferredMinor: number;
  /** what the deferred amount is: a contract liability (relative SSP), or a provision (incremental cost, never revenue) */
  measurement?: 'contract_liability' | 'provision';
}

export interface CohortAssumption {
  cohort: string;
  rate: number;
  priorRate: number;
  /** the estimate's source: the chain ladder, the prior estimate kept, or finance's override */
  method: 'chain_ladder' | 'prior' | 'override';
  /** why that source (a prior kept: the development not observed), and why a bound moved it */
  reason: string | null;
  /** R/N and (R + outstanding)/N (null: no points, or a proposal made before the bounds) */
  lowerBound: number | null;
  upperBound: number | null;
  /** the source's estimate lay outside the bounds and was brought to this one */
  bounded: 'lower' | 'upper' | null;
  catchUpMinor: number;
  /** cumulative share of the cohort's points redeemed, by quarters since issue */
  development: number[];
}

export interface RollForward {
  openingMinor: number;
  issuedMinor: number;
  recognizedMinor: number;
  recognized: { redemptionsMinor: number; breakageMinor: number; estimateChangeMinor: number };
  adjustedMinor: number;
  closingMinor: number;
}

export interface CloseReport {
  programId: string;
  period: string;
  currency: string;
  status: string;
  liability: {
    openingMinor: number;
    issuedMinor: number;
    recognizedMinor: number;
    recognized: { redemptionsMinor: number; breakageMinor: number; estimateChangeMinor: number };
    adjustedMinor: number;
    closingMinor: number;
  };
  points: { opening: number; issued: number; redeemed: number; expired: number; adjusted: number; closing: number };
  /**
   * The provision of incremental-cost cohorts, the same roll-forward apart from the contract
   * liability (`liability` holds the contract liability only): its releases go back to
   * loyalty_expense, never revenue. Absent from reports stored before it was reported apart.
   */
  provision?: RollForward;
  /** revenue recognised in the period from the opening contract liability (ASC 606-10-50-8(b)); provisions none */
  revenueFromOpeningBalanceMinor: number;
  cohorts: CohortReportRow[];
  liabilityByJurisdiction: Array<{ jurisdiction: string; deferredMinor: number }>;
  liabilityByStore: Array<{ storeId: string; deferredMinor: number }>;
  /**
   * The tax effect of the period's redemptions by jurisdiction and treatment: the redemptions and
   * credits dated in it, and the output tax booked in it out of the released liability (revenue
   * net of tax, `consideration` only). Absent from reports stored before it was reported.
   */
  taxEffect?: TaxEffectRow[];
  assumptions: {
    factors: Array<{ age: number; factor: number | null; cohorts: number; sufficient: boolean }>;
    /** the estimation policy (docs/close.md); null for a proposal made before it was recorded */
    policy: EstimationPolicy | null;
    cohorts: CohortAssumption[];
    override: { rate: number; justification: string } | null;
    startedBy: string;
    approvedBy: string | null;
    approvedAt: string | null;
  };
}

export interface TaxEffectRow {
  jurisdiction: string;
  treatment: 'discount' | 'consideration';
  redemptions: number;
  creditMinor: number;
  outputTaxMinor: number;
}

/** The minimum of cohorts backing a factor, and the approved tail factor (null: none). */
export interface EstimationPolicy {
  minCohortsPerFactor: number;
  tailFactor: number | null;
}

/** What the close proposes (estimated by activities/close.ts, stored on the close, the report's assumptions). */
export interface CloseProposal {
  period: string;
  cohorts: Array<{
    cohort: string;
    rate: string;
    priorRate: string;
    method: string;
    reason: string | null;
    /** decimals; absent from proposals stored before the bounds */
    lowerBound?: string | null;
    upperBound?: string | null;
    bounded?: 'lower' | 'upper' | null;
    catchUpMinor: number;
    development: number[];
  }>;
  factors: Array<{ age: number; factor: number | null; cohorts: number; sufficient: boolean }>;
  totalCatchUpMinor: number;
  /** absent from proposals stored before it was recorded */
  policy?: EstimationPolicy;
  override: { rate: number; justification: string } | null;
}

/** A sum as PostgreSQL answers it: numeric as a decimal string, null over no rows. */
type SqlSum = string | null;

/** The period's sums from the books, in minor units, as db/close-report.ts reads them. */
export interface AccountSums {
  opening: SqlSum;
  issued: SqlSum;
  estimateChange: SqlSum;
  breakage: SqlSum;
  redemptions: SqlSum;
  adjusted: SqlSum;
  fromOpening: SqlSum;
  closing: SqlSum;
}

export interface PeriodBooks {
  /** the contract liability (loyalty_contract_liability): before the period, its movements in it, at its end */
  liability: AccountSums;
  /** the provision of incremental-cost cohorts (loyalty_provision), the same way (absent: none) */
  provision?: AccountSums;
  /** points, the same way */
  points: { opening: SqlSum; issued: SqlSum; redeemed: SqlSum; expired: SqlSum; adjusted: SqlSum; closing: SqlSum };
  /** every cohort as of the period's end */
  cohorts: Array<{
    cohort: string;
    pointsIssued: bigint;
    allocatedMinor: bigint;
    pointsRedeemed: bigint;
    pointsExpired: bigint;
    recognizedMinor: bigint;
    /** the account the cohort's allocation is held on (cohorts.liability_account) */
    liabilityAccount?: string | null;
  }>;
  /** each cohort's ultimate redemption rate in force, as a decimal string */
  rates: Array<{ cohort: string; rate: string }>;
  /** per cohort and jurisdiction, the points outstanding at the end (what the deferred amount is split by) */
  outstandingByJurisdiction: DeferredWeight[];
  /** per cohort and store, the allocations their sales made */
  allocatedByStore: DeferredWeight[];
  /** the tax effect of the period's redemptions (absent: not read) */
  taxEffect?: TaxEffectRow[];
  /** output tax booked in the period out of the opening cohorts' revenue (absent: none read) */
  taxFromOpening?: SqlSum;
}

export interface DeferredWeight {
  cohort: string;
  key: string | null;
  weight: string;
}

export type PeriodFigures = Omit<CloseReport, 'status' | 'assumptions' | 'currency' | 'programId'>;

const n = (v: SqlSum) => Number(v ?? 0);

/** The period's figures from its sums. The roll-forwards foot by construction and are asserted. */
function rollForward(money: AccountSums): RollForward {
  const recognized = {
    redemptionsMinor: n(money.redemptions),
    breakageMinor: n(money.breakage),
    estimateChangeMinor: n(money.estimateChange),
  };
  return {
    openingMinor: n(money.opening),
    issuedMinor: n(money.issued),
    recognizedMinor: recognized.redemptionsMinor + recognized.breakageMinor + recognized.estimateChangeMinor,
    recognized,
    adjustedMinor: n(money.adjusted),
    closingMinor: n(money.closing),
  };
}

const NO_SUMS: AccountSums = {
  opening: null,
  issued: null,
  estimateChange: null,
  breakage: null,
  redemptions: null,
  adjusted: null,
  fromOpening: null,
  closing: null,
};

const foots = (l: RollForward) =>
  l.openingMinor + l.issuedMinor - l.recognizedMinor + l.adjustedMinor === l.closingMinor;

export function periodFigures(programId: string, period: string, books: PeriodBooks): PeriodFigures {
  const money = books.liability;
  const liability = rollForward(money);
  const provision = rollForward(books.provision ?? NO_SUMS);
  const p = books.points;
  const pts = {
    opening: n(p.opening),
    issued: n(p.issued),
    redeemed: n(p.redeemed),
    expired: n(p.expired),
    adjusted: n(p.adjusted),
    closing: n(p.closing),
  };
  // The books must foot: a failure here is a bug, never a report.
  if (!foots(liability)) {
    throw new Error(`liability roll-forward of ${programId} ${period} does not foot: ${JSON.stringify(liability)}`);
  }
  if (!foots(provision)) {
    throw new Error(`provision roll-forward of ${programId} ${period} does not foot: ${JSON.stringify(provision)}`);
  }
  if (pts.opening + pts.issued - pts.redeemed - pts.expired + pts.adjusted !== pts.closing) {
    throw new Error(`points roll-forward of ${programId} ${period} does not foot: ${JSON.stringify(pts)}`);
  }

  const cohorts: CohortReportRow[] = books.cohorts.map((c) => ({
    cohort: c.cohort,
    pointsIssued: Number(c.pointsIssued),
    allocatedMinor: Number(c.allocatedMinor),
    pointsRedeemed: Number(c.pointsRedeemed),
    pointsExpired: Number(c.pointsExpired),
    ultimateRedemptionRate: Number(books.rates.find((r) => r.cohort === c.cohort)?.rate ?? 0),
    recognizedMinor: Number(c.recognizedMinor),
    deferredMinor: Number(c.allocatedMinor - c.recognizedMinor),
    measurement: c.liabilityAccount === 'loyalty_provision' ? ('provision' as const) : ('contract_liability' as const),
  }));
  // Each cohort's contract liability split over jurisdictions by the points outstanding there at
  // the end, and over stores by the allocations their sales made (what created the liability); a
  // provision is no contract liability and is not split.
  const contract = cohorts.filter((c) => c.measurement === 'contract_liability');
  const byJurisdiction = splitDeferred(contract, books.outstandingByJurisdiction, 'no points outstanding');
  const byStore = splitDeferred(contract, books.allocatedByStore, 'no allocation recorded');
  return {
    period,
    liability,
    provision,
    points: pts,
    // revenue, so net of the output tax booked out of what the opening cohorts released (ASC 606-10-32-2A)
    revenueFromOpeningBalanceMinor: n(money.fromOpening) - n(books.taxFromOpening ?? null),
    cohorts,
    liabilityByStore: byStore.map(([storeId, deferredMinor]) => ({ storeId, deferredMinor })),
    liabilityByJurisdiction: byJurisdiction.map(([jurisdiction, deferredMinor]) => ({ jurisdiction, deferredMinor })),
    taxEffect: books.taxEffect ?? [],
  };
}

/** Splits each cohort's deferred amount over keys by their weights in it (exactly); sums per key, zeros left out. */
function splitDeferred(cohorts: CohortReportRow[], rows: DeferredWeight[], none: string): Array<[string, number]> {
  const total = new Map<string, number>();
  for (const c of cohorts) {
    const parts = rows.filter((r) => r.cohort === c.cohort);
    if (parts.length === 0) parts.push({ cohort: c.cohort, key: none, weight: '1' });
    const split = splitByWeights(
      BigInt(c.deferredMinor),
      parts.map((p) => BigInt(p.weight)),
    );
    parts.forEach((p, i) => total.set(p.key ?? 'unknown', (total.get(p.key ?? 'unknown') ?? 0) + Number(split[i])));
  }
  return [...total.entries()].filter(([, v]) => v !== 0).sort();
}

/** The report: the period's figures with the close's assumptions (its proposal, who started and approved it). */
export function closeReport(r: {
  programId: string;
  currency: string;
  status: string;
  figures: PeriodFigures;
  close: { proposal: CloseProposal | null; startedBy: string; approvedBy: string | null; approvedAt: string | null };
}): CloseReport {
  const proposal = r.close.proposal;
  return {
    programId: r.programId,
    currency: r.currency,
    status: r.status,
    ...r.figures,
    assumptions: {
      factors: proposal?.factors ?? [],
      policy: proposal?.policy ?? null,
      cohorts: (proposal?.cohorts ?? []).map((c) => ({
        ...c,
        rate: Number(c.rate),
        priorRate: Number(c.priorRate),
        method: c.method as CohortAssumption['method'],
        lowerBound: c.lowerBound == null ? null : Number(c.lowerBound),
        upperBound: c.upperBound == null ? null : Number(c.upperBound),
        bounded: c.bounded ?? null,
      })),
      override: proposal?.override ?? null,
      startedBy: r.close.startedBy,
      approvedBy: r.close.approvedBy,
      approvedAt: r.close.approvedAt,
    },
  };
}

/** Splits `total` over weights exactly (largest remainder; the parts add up to total). */
export function splitByWeights(total: bigint, weights: bigint[]): bigint[] {
  const sum = weights.reduce((a, b) => a + b, 0n);
  if (weights.length === 0) return [];
  if (sum === 0n) return weights.map((_, i) => (i === 0 ? total : 0n));
  const neg = total < 0n;
  const t = neg ? -total : total;
  const parts = weights.map((w) => (t * w) / sum);
  let left = t - parts.reduce((a, b) => a + b, 0n);
  const order = weights
    .map((w, i) => ({ i, rem: (t * w) % sum }))
    .sort((a, b) => (b.rem > a.rem ? 1 : b.rem < a.rem ? -1 : a.i - b.i));
  for (const o of order) {
    if (left === 0n) break;
    parts[o.i]! += 1n;
    left -= 1n;
  }
  return neg ? parts.map((p) => -p) : parts;
}

/** Minor units as a decimal string with the currency's digits: 92593 -> "925.93". */
export function formatMinor(minor: number, digits: number): string {
  const neg = minor < 0;
  const s = String(Math.abs(minor)).padStart(digits + 1, '0');
  const whole = digits ? s.slice(0, -digits) : s;
  const out = digits ? `${whole}.${s.slice(-digits)}` : whole;
  return neg ? `-${out}` : out;
}

/**
 * One CSV cell. Text that a spreadsheet would run as a formula (it starts with `=`, `+`, `-`, `@`,
 * a tab or a carriage return: OWASP's list) gets a leading `'`, so that a reason, a cohort or a
 * store id typed by someone cannot run when finance opens the file. Numbers, and text that is only
 * a signed decimal number (a negative catch-up), are left alone: they are values, not formulas.
 */
export const csvCell = (v: unknown) => {
  let s = String(v ?? '');
  if (typeof v !== 'number' && /^[=+\-@\t\r]/.test(s) && !/^[+-]?\d+(\.\d+)?$/.test(s)) s = `'${s}`;
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

/** The same figures for a spreadsheet: one section per table, a header row each. */
export function reportToCsv(r: CloseReport): string {
  const rows: unknown[][] = [
    ['section', 'item', 'value'],
    ...Object.entries({ ...r.liability, ...r.liability.recognized })
      .filter(([, v]) => typeof v === 'number')
      .map(([k, v]) => ['liability', k, v]),
    ...Object.entries(r.points).map(([k, v]) => ['points', k, v]),
    ...(r.provision
      ? Object.entries({ ...r.provision, ...r.provision.recognized })
          .filter(([, v]) => typeof v === 'number')
          .map(([k, v]) => ['provision', k, v])
      : []),
    ['revenue', 'revenueFromOpeningBalanceMinor', r.revenueFromOpeningBalanceMinor],
    [],
    [
      'cohort',
      'pointsIssued',
      'allocatedMinor',
      'pointsRedeemed',
      'pointsExpired',
      'ultimateRedemptionRate',
      'recognizedMinor',
      'deferredMinor',
      'method',
      'catchUpMinor',
      'reason',
      'lowerBound',
      'upperBound',
    ],
    ...r.cohorts.map((c) => {
      const a = r.assumptions.cohorts.find((x) => x.cohort === c.cohort);
      return [
        c.cohort,
        c.pointsIssued,
        c.allocatedMinor,
        c.pointsRedeemed,
        c.pointsExpired,
        c.ultimateRedemptionRate,
        c.recognizedMinor,
        c.deferredMinor,
        a?.method ?? '',
        a?.catchUpMinor ?? 0,
        a?.reason ?? '',
        a?.lowerBound ?? '',
        a?.upperBound ?? '',
      ];
    }),
    [],
    ['jurisdiction', 'deferredMinor'],
    ...r.liabilityByJurisdiction.map((j) => [j.jurisdiction, j.deferredMinor]),
    [],
    ['store', 'deferredMinor'],
    ...(r.liabilityByStore ?? []).map((j) => [j.storeId, j.deferredMinor]),
    [],
    ['taxJurisdiction', 'treatment', 'redemptions', 'creditMinor', 'outputTaxMinor'],
    ...(r.taxEffect ?? []).map((t) => [t.jurisdiction, t.treatment, t.redemptions, t.creditMinor, t.outputTaxMinor]),
  ];
  return rows.map((row) => row.map(csvCell).join(',')).join('\n') + '\n';
}

const esc = (s: unknown) =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** The roll-forward as a waterfall: opening, + issued, - each recognised part, + adjusted, = closing. */
function rollForwardSvg(r: CloseReport, digits: number): string {
  const l = r.liability;
  const steps: Array<[string, number, 'total' | 'delta']> = [
    ['Opening', l.openingMinor, 'total'],
    ['Issued', l.issuedMinor, 'delta'],
    ['Redemptions', -l.recognized.redemptionsMinor || 0, 'delta'],
    ['Breakage', -l.recognized.breakageMinor || 0, 'delta'],
    ['Estimate change', -l.recognized.estimateChangeMinor || 0, 'delta'],
    ['Adjusted', l.adjustedMinor, 'delta'],
    ['Closing', l.closingMinor, 'total'],
  ];
  const W = 720;
  const H = 260;
  const pad = 40;
  const bw = (W - 2 * pad) / steps.length;
  let run = 0;
  const bars = steps.map(([label, v, kind]) => {
    const from = kind === 'total' ? 0 : run;
    const to = kind === 'total' ? v : run + v;
    run = kind === 'total' ? v : to;
    return { label, v, from, to, kind };
  });
  const max = Math.max(1, ...bars.flatMap((b) => [b.from, b.to]));
  const min = Math.min(0, ...bars.flatMap((b) => [b.from, b.to]));
  const y = (v: number) => pad + ((max - v) / (max - min)) * (H - 2 * pad);
  const rects = bars
    .map((b, i) => {
      const top = y(Math.max(b.from, b.to));
      const h = Math.max(1, Math.abs(y(b.from) - y(b.to)));
      const fill = b.kind === 'total' ? '#4a6fa5' : b.v >= 0 ? '#6aa56a' : '#c0605a';
      const x = pad + i * bw + 6;
      return (
        `<rect x="${x}" y="${top}" width="${bw - 12}" height="${h}" fill="${fill}"><title>${esc(b.label)}: ${formatMinor(b.v, digits)}</title></rect>` +
        `<text x="${x + (bw - 12) / 2}" y="${H - 12}" font-size="11" text-anchor="middle">${esc(b.label)}</text>` +
        `<text x="${x + (bw - 12) / 2}" y="${top - 4}" font-size="10" text-anchor="middle" data-figure="${esc(b.label)}">${formatMinor(b.v, digits)}</text>`
      );
    })
    .join('');
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" role="img" aria-label="Contract liability roll-forward">` +
    `<line x1="${pad}" x2="${W - pad}" y1="${y(0)}" y2="${y(0)}" stroke="#999"/>${rects}</svg>`
  );
}

/** Each cohort's cumulative share redeemed by quarters since issue, one line per cohort. */
function curvesSvg(r: CloseReport): string {
  const W = 720;
  const H = 260;
  const pad = 40;
  const right = 90; // room for the cohort labels
  const curves = r.assumptions.cohorts.filter((c) => c.development.length > 0);
  const maxAge = Math.max(1, ...curves.map((c) => c.development.length - 1));
  const x = (age: number) => pad + (age / maxAge) * (W - pad - right);
  const y = (share: number) => H - pad - Math.min(1, share) * (H - 2 * pad);
  const colors = ['#4a6fa5', '#c0605a', '#6aa56a', '#b08a3c', '#7a5aa5', '#3ca5a0', '#a55a8a', '#5a5a5a'];
  const lines = curves
    .map((c, i) => {
      const pts = c.development.map((s, age) => `${x(age)},${y(s)}`).join(' ');
      const color = colors[i % colors.length];
      return (
        `<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts}"><title>${esc(c.cohort)}</title></polyline>` +
        `<text x="${x(c.development.length - 1) + 4}" y="${y(c.development[c.development.length - 1]!)}" font-size="10" fill="${color}">${esc(c.cohort)}</text>`
      );
    })
    .join('');
  const axis = [0, 0.25, 0.5, 0.75, 1]
    .map(
      (s) =>
        `<text x="4" y="${y(s) + 3}" font-size="10">${s * 100}%</text><line x1="${pad}" x2="${W - right}" y1="${y(s)}" y2="${y(s)}" stroke="#eee"/>`,
    )
    .join('');
  const ages = Array.from(
    { length: maxAge + 1 },
    (_, a) => `<text x="${x(a)}" y="${H - 12}" font-size="10" text-anchor="middle">${a}</text>`,
  ).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" role="img" aria-label="Cohort redemption curves">${axis}${ages}${lines}</svg>`;
}

/** The provision of incremental-cost cohorts, apart from the contract liability (none: nothing). */
function provisionHtml(r: CloseReport, digits: number): string {
  const p = r.provision;
  if (!p || Object.values({ ...p, ...p.recognized }).every((v) => typeof v !== 'number' || v === 0)) return '';
  const neg = (v: number) => (v === 0 ? 0 : -v);
  const rows = [
    ['Opening provision', p.openingMinor],
    ['Provided (cost of points issued)', p.issuedMinor],
    ['Released on redemption', neg(p.recognized.redemptionsMinor)],
    ['Released on expiry', neg(p.recognized.breakageMinor)],
    ['Change of estimate', neg(p.recognized.estimateChangeMinor)],
    ['Adjustments (refunds)', p.adjustedMinor],
    ['Closing provision', p.closingMinor],
  ]
    .map(([k, v]) => `<tr><th>${esc(k as string)}</th><td class="num">${formatMinor(v as number, digits)}</td></tr>`)
    .join('');
  return `<h2>Provision (incremental cost; not a contract liability, its releases are not revenue)</h2><table id="provision">${rows}</table>`;
}

/** A page finance can hand to an auditor: the figures, the two charts, the assumptions. */
export function reportToHtml(r: CloseReport, digits: number): string {
  const m = (v: number) => `<td class="num">${formatMinor(v, digits)}</td>`;
  const neg = (v: number) => (v === 0 ? 0 : -v); // no "-0" on the page
  const l = r.liability;
  const rf = [
    ['Opening balance', l.openingMinor],
    ['Issued (allocated to points)', l.issuedMinor],
    [
      'Released on redemption (revenue before any output tax: see the tax effect below)',
      neg(l.recognized.redemptionsMinor),
    ],
    ['Breakage recognised', neg(l.recognized.breakageMinor)],
    ['Change of estimate (cumulative catch-up)', neg(l.recognized.estimateChangeMinor)],
    ['Adjustments (refunds)', l.adjustedMinor],
    ['Closing balance', l.closingMinor],
  ]
    .map(([k, v]) => `<tr><th>${esc(k)}</th>${m(v as number)}</tr>`)
    .join('');
  const p = r.points;
  const pr = [
    ['Opening', p.opening],
    ['Issued', p.issued],
    ['Redeemed', neg(p.redeemed)],
    ['Expired', neg(p.expired)],
    ['Adjusted', p.adjusted],
    ['Closing', p.closing],
  ]
    .map(([k, v]) => `<tr><th>${k}</th><td class="num">${(v as number).toLocaleString('en-US')}</td></tr>`)
    .join('');
  const cohorts = r.cohorts
    .map((c) => {
      const a = r.assumptions.cohorts.find((x) => x.cohort === c.cohort);
      return (
        `<tr><td>${esc(c.cohort)}</td><td class="num">${c.pointsIssued.toLocaleString('en-US')}</td>${m(c.allocatedMinor)}<td class="num">${c.pointsRedeemed.toLocaleString('en-US')}</td>` +
        `<td class="num">${c.pointsExpired.toLocaleString('en-US')}</td><td class="num">${(c.ultimateRedemptionRate * 100).toFixed(4)}%</td>` +
        `${m(c.recognizedMinor)}${m(c.deferredMinor)}<td>${esc(a?.method ?? '')}${a?.reason ? `: ${esc(a.reason)}` : ''}</td>${m(a?.catchUpMinor ?? 0)}</tr>`
      );
    })
    .join('');
  const jur = r.liabilityByJurisdiction
    .map((j) => `<tr><td>${esc(j.jurisdiction)}</td>${m(j.deferredMinor)}</tr>`)
    .join('');
  const stores = (r.liabilityByStore ?? [])
    .map((j) => `<tr><td>${esc(j.storeId)}</td>${m(j.deferredMinor)}</tr>`)
    .join('');
  const factors = r.assumptions.factors
    .map(
      (f) =>
        `<tr><td>${f.age} → ${f.age + 1}</td><td class="num">${f.factor === null ? '–' : f.factor.toFixed(6)}</td><td class="num">${f.cohorts}</td><td>${f.sufficient ? 'used' : 'too little data'}</td></tr>`,
    )
    .join('');
  const tax = (r.taxEffect ?? [])
    .map(
      (t) =>
        `<tr><td>${esc(t.jurisdiction)}</td><td>${esc(t.treatment)}</td><td class="num">${t.redemptions.toLocaleString('en-US')}</td>${m(t.creditMinor)}${m(t.outputTaxMinor)}</tr>`,
    )
    .join('');
  const o = r.assumptions.override;
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Loyalty liability ${esc(r.programId)} ${esc(r.period)}</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:72rem;color:#222;font-size:14px}table{border-collapse:collapse;margin:0 0 1.5rem}th,td{padding:.25rem .6rem;border-bottom:1px solid #ddd;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}.meta{color:#555}</style></head><body>
<h1>Contract liability for loyalty points: ${esc(r.programId)}, ${esc(r.period)}</h1>
<p class="meta">Status <strong id="status">${esc(r.status)}</strong>; amounts in ${esc(r.currency)}. Started by ${esc(r.assumptions.startedBy)}; approved by ${esc(r.assumptions.approvedBy ?? '(not yet)')}${r.assumptions.approvedAt ? ` at ${esc(r.assumptions.approvedAt)}` : ''}.</p>
<h2>Roll-forward</h2><table id="rollforward">${rf}</table>${rollForwardSvg(r, digits)}
<p>Revenue recognised in the period that was in the opening contract liability: <strong id="from-opening">${formatMinor(r.revenueFromOpeningBalanceMinor, digits)}</strong></p>${provisionHtml(r, digits)}
<h2>Points</h2><table id="points">${pr}</table>
<h2>Cohorts</h2><table id="cohorts"><tr><th>cohort</th><th>points issued</th><th>allocated</th><th>redeemed</th><th>expired</th><th>ultimate redemption</th><th>recognised</th><th>deferred</th><th>estimate</th><th>catch-up</th></tr>${cohorts}</table>
<h2>Redemption curves</h2>${curvesSvg(r)}
<h2>Liability by jurisdiction</h2><table id="jurisdictions"><tr><th>jurisdiction</th><th>deferred</th></tr>${jur}</table>
<h2>Liability by store</h2><table id="stores"><tr><th>store</th><th>deferred</th></tr>${stores}</table>
<h2>Tax effect of redemptions</h2><p>Where the part of an invoice paid with points is consideration (tax on the full price), its output tax is booked out of the released liability: revenue from redemptions is net of it. Where it is a discount, the credit lowers the taxable base and no output tax falls on it.</p>
<table id="tax-effect"><tr><th>jurisdiction</th><th>treatment</th><th>redemptions</th><th>credits</th><th>output tax on points</th></tr>${tax}</table>
<h2>Assumptions</h2><p>Ultimate redemption rates projected with volume-weighted chain-ladder factors from the cohort-by-age triangle; a cohort whose development beyond its age has not been observed (no factor, or one backed by fewer than ${r.assumptions.policy?.minCohortsPerFactor ?? 2} cohorts) keeps its prior estimate${r.assumptions.policy?.tailFactor ? `, unless the approved tail factor ${r.assumptions.policy.tailFactor} carries it to ultimate` : ' (no tail factor is approved)'}. Every estimate, an override included, lies within R/N &le; u &le; (R + outstanding)/N.</p>
<table id="factors"><tr><th>age</th><th>factor</th><th>cohorts</th><th></th></tr>${factors}</table>
${o ? `<p id="override">Finance override: ${(o.rate * 100).toFixed(4)}%. Justification: ${esc(o.justification)}</p>` : ''}
</body></html>
`;
}
