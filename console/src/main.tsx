import { render } from 'preact';
import { useState } from 'preact/hooks';
import { setKey } from './api';
import { ClosePage } from './close';
import { forgetCurrencies } from './currency';
import { DashboardPage } from './dashboard';
import { InboxPage } from './inbox';
import { loadConsoleConfig } from './links';
import { MemberPage } from './member';
import { RuleChangesPage } from './rule-changes';
import { SignIn, type Session } from './sign-in';

type Page = 'dashboard' | 'inbox' | 'close' | 'member' | 'rules';
const PAGES: Array<[Page, string]> = [
  ['dashboard', 'Dashboard'],
  ['inbox', 'Approval inbox'],
  ['close', 'Close'],
  ['member', 'Members'],
  ['rules', 'Rule changes'],
];
/** The first page: finance's dashboard for who reads the books, the inbox for who decides, members for support. */
const firstPage = (roles: string[]): Page =>
  roles.some((r) => r === 'finance' || r === 'controller')
    ? 'dashboard'
    : roles.includes('support')
      ? 'member'
      : roles.includes('program_owner')
        ? 'rules'
        : 'inbox';

function App() {
  const [session, setSession] = useState<Session | null>(null);
  const [page, setPage] = useState<Page>('inbox');
  if (session === null)
    return (
      <SignIn
        onSignedIn={(s) => {
          setPage(firstPage(s.roles));
          setSession(s);
        }}
      />
    );
  const signOut = () => {
    setKey(null);
    forgetCurrencies();
    setSession(null);
  };
  return (
    <>
      <header>
        <strong>Loyalty Ledger</strong>
        <nav aria-label="Console">
          {PAGES.map(([p, label]) => (
            <button type="button" key={p} aria-current={page === p ? 'page' : undefined} onClick={() => setPage(p)}>
              {label}
            </button>
          ))}
        </nav>
        <span class="who">
          Signed in as <span data-testid="principal">{session.principal}</span> ({session.roles.join(', ')})
        </span>
        <button type="button" onClick={signOut}>
          Sign out
        </button>
      </header>
      <datalist id="known-programs">
        {session.known.map((p) => (
          <option key={p} value={p} />
        ))}
      </datalist>
      <main>
        {page === 'dashboard' && <DashboardPage session={session} />}
        {page === 'inbox' && <InboxPage session={session} />}
        {page === 'member' && <MemberPage session={session} />}
        {page === 'close' && <ClosePage session={session} />}
        {page === 'rules' && <RuleChangesPage session={session} />}
      </main>
    </>
  );
}

// the deployment's Temporal UI first (links.tsx), then the console; without it, no links
void loadConsoleConfig().finally(() => render(<App />, document.getElementById('app')!));
