import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { SEARCH_ATTRIBUTES } from './workflow-ids';

/** The typed search-attribute keys every starter of a workflow uses (registered by the stack). */
export const SA = {
  program: defineSearchAttributeKey(SEARCH_ATTRIBUTES.program, SearchAttributeType.KEYWORD),
  member: defineSearchAttributeKey(SEARCH_ATTRIBUTES.member, SearchAttributeType.KEYWORD),
  invoice: defineSearchAttributeKey(SEARCH_ATTRIBUTES.invoice, SearchAttributeType.KEYWORD),
  period: defineSearchAttributeKey(SEARCH_ATTRIBUTES.period, SearchAttributeType.KEYWORD),
  change: defineSearchAttributeKey(SEARCH_ATTRIBUTES.change, SearchAttributeType.KEYWORD),
};
