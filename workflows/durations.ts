import { ApplicationFailure, patched } from '@temporalio/workflow';
import { durationMsFrom, nominalMs } from '../domain/duration';

/**
 * How long a workflow waits for a duration from `fromMs`: calendar months in UTC, as the database
 * reads the same durations (domain/duration.ts). Histories recorded before the patch counted a
 * month as 30 days and a year as 365 and replay that way. The API validated the duration; one that
 * is not ISO 8601 all the same fails the workflow rather than waiting 0 ms.
 */
export function waitMs(fromMs: number, duration: string): number {
  if (!patched('durations-calendar-utc')) return nominalMs(duration) ?? 0;
  try {
    return durationMsFrom(fromMs, duration);
  } catch (e) {
    throw ApplicationFailure.nonRetryable((e as Error).message, 'bad_duration');
  }
}
