// Writes the API's OpenAPI document and the typed client generated from it (api/client/generate.ts).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generatedClient, SPEC_FILE, TYPES_FILE } from '../api/client/generate';

void generatedClient().then(({ spec, types }) => {
  const root = join(__dirname, '..');
  writeFileSync(join(root, SPEC_FILE), spec);
  writeFileSync(join(root, TYPES_FILE), types);
  process.stdout.write(`wrote ${SPEC_FILE} and ${TYPES_FILE}\n`);
});
