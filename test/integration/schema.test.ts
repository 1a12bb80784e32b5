// db/schema.sql is the schema that the migrations and db/functions make: a migration or a function
// changed without `npm run db:schema` fails here. The database is a clone of the run's template,
// which test/global-setup.ts migrated from empty; the text is the same on PostgreSQL 15 and 18.
import { readFileSync } from 'node:fs';
import { expect, test } from 'vitest';
import { SCHEMA_FILE, schemaText } from '../../db/schema-dump';
import { freshDatabase } from '../helpers/stack';

test('db/schema.sql is current', async () => {
  const db = await freshDatabase();
  try {
    expect(await schemaText(db.pool), 'db/schema.sql is not the migrated schema: run npm run db:schema').toBe(
      readFileSync(SCHEMA_FILE, 'utf8'),
    );
  } finally {
    await db.drop();
  }
});
