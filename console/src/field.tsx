import type { JSX } from 'preact';

/** A labelled text input bound to a string (every form of the console): the label names the input. */
export function TextField(
  props: { id: string; label: string; value: string; onValue: (v: string) => void } & Omit<
    JSX.InputHTMLAttributes<HTMLInputElement>,
    'id' | 'value' | 'onInput'
  >,
) {
  const { id, label, value, onValue, ...input } = props;
  return (
    <>
      <label for={id}>{label}</label>
      <input {...input} id={id} value={value} onInput={(e) => onValue((e.target as HTMLInputElement).value)} />
    </>
  );
}
