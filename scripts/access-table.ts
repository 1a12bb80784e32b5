// Prints the endpoint x role table of docs/access.md from the API's route list (api/openapi.ts).
import { accessTable } from '../api/openapi';

process.stdout.write(accessTable());
