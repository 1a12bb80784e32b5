/**
 * A failure of the local stack that the person starting it can act on: its message is one line that
 * says what is wrong and what to do. `loyalty start` prints it alone (no stack trace) and exits 1.
 */
export class StackError extends Error {
  override readonly name = 'StackError';
}

/** One line for any error: a StackError's message, else the first line of the message. */
export function oneLine(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  return (
    message
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)[0] ?? String(e)
  );
}
