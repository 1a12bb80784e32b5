// Numbers and times in the user's locale.
const locale = () => navigator.language || 'en-US';

export const formatPoints = (n: number) => new Intl.NumberFormat(locale()).format(n);

export const formatTime = (iso: string | null | undefined) =>
  iso ? new Intl.DateTimeFormat(locale(), { dateStyle: 'medium', timeStyle: 'short' }).format(new Date(iso)) : '—';
