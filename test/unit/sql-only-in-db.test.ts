/**
 * SQL lives in db/ only (issue 12): activities, routes, the CLI, workers, workflows, domain, the
 * simulators, temporal/ and scripts/ call
 * functions of db/ and never hold a statement, a `.query(` on a pool or client, or a `pool.connect()`.
 * Parsed with the TypeScript compiler, so comments and identifiers never count, only what the code
 * calls and the text of its string and template literals.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { expect, test } from 'vitest';

const ROOT = join(__dirname, '..', '..');
// Everything the product runs, outside db/. test/ and bench/ hold their own SQL on purpose: they
// check and load the database directly.
const SCANNED = ['activities', 'api', 'cli', 'workers', 'workflows', 'domain', 'simulators', 'temporal', 'scripts'];

/** Files outside db/ allowed to hold SQL, each with its reason. */
const ALLOWED: Record<string, string> = {};

// Receivers of `.query(` / `.connect(` that are node-postgres pools or clients (Temporal's workflow
// handles also have `.query(`, always on a handle or a call, never on these names).
const PG_RECEIVER = /^(pool|client|db|tx|conn|connection|pg|\w*Pool|\w*Client)$/;
const POOL_RECEIVER = /^(pool|\w*Pool)$/;

// A select list as SQL writes it: one name, or names with SQL's punctuation (`a.b`, `f(x)`, `*`,
// `a, b`, `x::int`, `snake_case`); "a program" in "select a program from the list" is prose.
const selectFrom = (text: string) =>
  [...text.matchAll(/\bselect\s+(?:distinct\s+)?([\s\S]+?)\s+from\s+[a-z_"(]/gi)].some(
    (m) => /^[a-z_]\w*$/i.test(m[1]!) || /[*_.(),:'"=]/.test(m[1]!),
  );

// Shapes only SQL has; prose that says "select" or "update" does not match them.
const SQL_SHAPES: Array<{ name: string; test: (text: string) => boolean }> = [
  { name: 'select ... from', test: selectFrom },
  { name: 'select <value>', test: (t) => /^\s*select\s+(\*|\d+\s*$|\d+\s+from\b|[a-z_][a-z0-9_.]*\s*\()/i.test(t) },
  { name: 'insert into', test: (t) => /\binsert\s+into\s+[a-z_"]/i.test(t) },
  {
    name: 'update ... set',
    test: (t) => /\bupdate\s+[a-z_"][a-z0-9_"]*(\s+(as\s+)?[a-z_]+)?\s+set\s+[a-z_"]+\s*=/i.test(t),
  },
  { name: 'delete from', test: (t) => /\bdelete\s+from\s+[a-z_"]/i.test(t) },
  { name: 'set local', test: (t) => /\bset\s+local\s+[a-z_.]+/i.test(t) },
  {
    name: 'DDL',
    test: (t) =>
      /\b(create|drop|alter|truncate)\s+(table|database|index|function|trigger|schema|view|extension|role)\b/i.test(t),
  },
  { name: 'on conflict', test: (t) => /\bon\s+conflict\b/i.test(t) },
  { name: 'lock table', test: (t) => /\block\s+table\s+[a-z_"]/i.test(t) },
  { name: 'truncate', test: (t) => /^\s*truncate\s+(table\s+)?[a-z_"][a-z0-9_".]*\s*(,|;|$|cascade|restart)/i.test(t) },
  { name: 'a $n parameter', test: (t) => /\b(where|and|or|values\s*\(|limit|=)\s*\$\d+\b/i.test(t) },
];

function sqlShape(text: string): string | undefined {
  return SQL_SHAPES.find((s) => s.test(text))?.name;
}

function* tsFiles(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* tsFiles(path);
    else if (/\.(c|m)?tsx?$/.test(name) && !name.endsWith('.d.ts')) yield path;
  }
}

/** The last name of a call's receiver: `ctx.pool.query` -> pool; a call or element access -> null. */
function receiverName(e: ts.Expression): string | null {
  if (ts.isIdentifier(e)) return e.text;
  if (ts.isPropertyAccessExpression(e)) return e.name.text;
  if (ts.isNonNullExpression(e) || ts.isParenthesizedExpression(e)) return receiverName(e.expression);
  return null;
}

/** A literal's text; a template's parts joined by a placeholder that is no SQL. */
function literalText(node: ts.Node): string | null {
  if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) return node.text;
  if (ts.isTemplateExpression(node))
    return [node.head.text, ...node.templateSpans.map((s) => s.literal.text)].join(' x ');
  return null;
}

function findSql(file: string, source: string): string[] {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const at = (node: ts.Node, what: string) => {
    const { line } = sf.getLineAndCharacterOfPosition(node.getStart(sf));
    found.push(`${file}:${line + 1}: ${what}`);
  };
  // node-postgres's Pool and Client, by the names this file imports them under (Temporal has a Client too)
  const pgNames = new Set<string>();
  for (const st of sf.statements) {
    if (!ts.isImportDeclaration(st) || (st.moduleSpecifier as ts.StringLiteral).text !== 'pg') continue;
    const bindings = st.importClause?.namedBindings;
    if (bindings && ts.isNamedImports(bindings))
      for (const el of bindings.elements)
        if (/^(Pool|Client)$/.test((el.propertyName ?? el.name).text)) pgNames.add(el.name.text);
  }
  const visit = (node: ts.Node): void => {
    if (ts.isCallExpression(node) && ts.isPropertyAccessExpression(node.expression)) {
      const method = node.expression.name.text;
      const receiver = receiverName(node.expression.expression);
      const firstArg = node.arguments[0];
      if (
        method === 'query' &&
        ((receiver && PG_RECEIVER.test(receiver)) || (firstArg && literalText(firstArg) !== null))
      ) {
        at(node, `${node.expression.getText(sf)}(...): a query outside db/`);
      }
      if (method === 'connect' && receiver && POOL_RECEIVER.test(receiver))
        at(node, `${node.expression.getText(sf)}(): a pool's client outside db/ (db/tx.ts inTransaction)`);
    }
    if (ts.isNewExpression(node) && ts.isIdentifier(node.expression) && pgNames.has(node.expression.text))
      at(node, `new ${node.expression.text}(...): a PostgreSQL connection outside db/ (db/pool.ts createPool)`);
    const text = literalText(node);
    if (text !== null) {
      const shape = sqlShape(text);
      if (shape)
        at(node, `SQL in a string (${shape}): ${JSON.stringify(text.replace(/\s+/g, ' ').trim().slice(0, 80))}`);
      if (ts.isTemplateExpression(node)) node.templateSpans.forEach((s) => visit(s.expression));
      return;
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

test('no SQL outside db/: activities, api, cli, workers, workflows, domain, simulators, temporal, scripts', () => {
  const found: string[] = [];
  for (const folder of SCANNED) {
    for (const path of tsFiles(join(ROOT, folder))) {
      const file = relative(ROOT, path).split('\\').join('/');
      if (file in ALLOWED) continue;
      found.push(...findSql(file, readFileSync(path, 'utf8')));
    }
  }
  expect(found, `SQL belongs in a function of db/:\n${found.join('\n')}`).toEqual([]);
});

test('the scan finds what it must and leaves prose alone', () => {
  const caught = findSql(
    'x.ts',
    [
      "await pool.query('select 1');",
      'await ctx.pool.query(sql, params);',
      'const c = await pool.connect();',
      'await client.query(q);',
      'await handle.query(`update rule_changes set status = $3 where program_id = $1`);',
      'const q = `insert into notifications (program_id) values ($1)`;',
      "const s = 'delete from member_wakeups';",
      'const t = `select ${cols} from redemptions r where r.program_id = $1`;',
      "await c.query('begin');",
      'const l = `lock table members in exclusive mode`;',
      "const tr = 'truncate member_wakeups';",
      "import { Client as PgClient } from 'pg'; const admin = new PgClient({ connectionString: url });",
      'const k = `set local statement_timeout = ${ms}`;',
    ].join('\n'),
  );
  expect([...new Set(caught.map((c) => Number(c.split(':')[1])))]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);

  expect(
    findSql(
      'y.ts',
      [
        '// await pool.query("select * from members") in a comment',
        'const progress = await client.workflow.getHandle(id).query(progressQuery);',
        'const p = await handle.query(progressQuery);',
        'const q = parse(ledgerQuery, req.query, "query");',
        "const msg = 'select a program from the list, then update it';",
        "throw new Error('the update could not be delivered; begin again');",
        "const status = 'active'; const step = 'commit';",
        "const help = 'Rule changes: proposed, approved, activated on time';",
        'const conn = await Connection.connect({ address });',
        "import { Client } from '@temporalio/client'; const temporal = new Client({ connection });",
      ].join('\n'),
    ),
  ).toEqual([]);
});
