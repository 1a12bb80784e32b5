// Where the console links workflows: the Temporal UI the API was told of (GET /console/config.json,
// served with the console, not an API route). Read once when the console loads; until then, and
// when the deployment names no UI, there are no links.
interface ConsoleConfig {
  temporalUiUrl: string | null;
  namespace: string;
}

let config: ConsoleConfig = { temporalUiUrl: null, namespace: 'default' };

export async function loadConsoleConfig(): Promise<void> {
  const res = await fetch(new URL('config.json', location.href.replace(/[^/]*$/, '')), { cache: 'no-store' }).catch(
    () => null,
  );
  if (res?.ok) config = (await res.json()) as ConsoleConfig;
}

/** The Temporal UI's page of a workflow, or null when no UI is configured. */
export function temporalLink(workflowId: string): string | null {
  // an address of the web only: a configured `javascript:` or `data:` URL is no link
  if (!config.temporalUiUrl || !/^https?:\/\//i.test(config.temporalUiUrl)) return null;
  const base = config.temporalUiUrl.replace(/\/+$/, '');
  return `${base}/namespaces/${encodeURIComponent(config.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

/** A link to a workflow in the Temporal UI; without a UI, the workflow's id to look up. */
export function WorkflowLink({ workflowId, label }: { workflowId: string; label: string }) {
  const href = temporalLink(workflowId);
  if (!href)
    return (
      <span>
        workflow <code>{workflowId}</code>
      </span>
    );
  return (
    <a href={href} target="_blank" rel="noreferrer">
      {label}
    </a>
  );
}
