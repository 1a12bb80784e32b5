import type { ApiFailure } from './api';

// The API enforces segregation of duties and roles; the console only puts its refusal into words a
// person acts on. `what` names the thing being decided ("this close").
export function explainRefusal(f: ApiFailure, what: string): string {
  switch (f.code) {
    case 'segregation_of_duties':
      return `You requested ${what} yourself; another person with the approving role must decide it. (${f.message})`;
    case 'decision_needs_person':
      return `A service key cannot decide ${what}; sign in with a person's key.`;
    case 'forbidden':
      return `Your key does not hold the role needed for ${what}.`;
    case 'program_not_allowed':
      return `Your key is not allowed on this program.`;
    case 'unauthorized':
      return 'The key was not accepted: sign in again.';
    case 'too_many_failed_attempts':
      return 'Too many attempts: wait a moment and try again.';
    default:
      return f.message;
  }
}
