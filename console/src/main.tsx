import { render } from 'preact';
import { useState } from 'preact/hooks';
import { setKey } from './api';
import { ClosePage } from './close';
import { InboxPage } from './inbox';
import { MemberPage } from './member';
import { SignIn, type Session } from './sign-in';

type Page = 'inbox' | 'member' | 'close';
const PAGES: Array<[Page, string]> = [
  ['inbox', 'Approval inbox'],
  ['member', 'Members'],
  ['close', 'Close'],
];

function App() {
  const [session, setSession] = useState<Session | null>(null);
  const [page, setPage] = useState<Page>('inbox');
  if (session === null) return <SignIn onSignedIn={setSession} />;
  const signOut = () => {
    setKey(null);
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
      <main>
        {page === 'inbox' && <InboxPage session={session} />}
        {page === 'member' && <MemberPage session={session} />}
        {page === 'close' && <ClosePage session={session} />}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
