import { useState } from 'preact/hooks';
import { TextField } from './field';
import { api, failureOf, setKey } from './api';
import { explainRefusal } from './explain';

export interface Session {
  principal: string;
  kind: 'person' | 'service';
  roles: string[];
  programs: string[] | null;
  /** the programs the key may reach, as GET /v1/programs lists them (the first page): the pages offer them */
  known: string[];
}

/** The program a page opens on: the key's first, else the first listed. */
export const firstProgram = (s: Session) => s.programs?.[0] ?? s.known[0] ?? '';
/** How many programs the console offers in its program fields (the first page of the list). */
const PROGRAMS_OFFERED = 500;

/** Sign-in with an API key: checked with GET /v1/whoami, then held in memory only (api.ts). */
export function SignIn(props: { onSignedIn: (s: Session) => void }) {
  const [key, setKeyInput] = useState('');
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    setKey(key.trim());
    const answer = await api.GET('/v1/whoami').catch(() => null);
    if (!answer) {
      setKey(null);
      setError('The API did not answer: check that it is running, then sign in again.');
      return;
    }
    const { data, error: failure, response } = answer;
    if (!data) {
      setKey(null);
      setError(explainRefusal(failureOf(failure, response.status), 'signing in'));
      return;
    }
    const listed = await api.GET('/v1/programs', { params: { query: { limit: PROGRAMS_OFFERED } } });
    setKeyInput('');
    props.onSignedIn({
      principal: data.principal,
      kind: data.kind,
      roles: data.roles,
      programs: data.programs,
      known: (listed.data?.items ?? []).map((p) => p.programId),
    });
  };
  return (
    <main class="sign-in">
      <h1>Loyalty Ledger console</h1>
      <form onSubmit={submit}>
        <TextField
          id="api-key"
          label="API key"
          type="password"
          autocomplete="off"
          required
          value={key}
          onValue={setKeyInput}
        />
        <button type="submit">Sign in</button>
        <p class="hint">The key stays in this tab's memory; signing out or closing the tab forgets it.</p>
        {error && (
          <p role="alert" class="error">
            {error}
          </p>
        )}
      </form>
    </main>
  );
}
