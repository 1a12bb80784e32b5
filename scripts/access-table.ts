// Prints the endpoint x role table of docs/access.md from the routes' own declarations (api/route.ts).
import { apiDescription } from '../api/description';
import { accessTable } from '../api/openapi';

void apiDescription().then(({ routes }) => process.stdout.write(accessTable(routes)));
