import { DefaultFailureConverter } from '@temporalio/common';

/**
 * Failure messages and stack traces go into the failure's encoded attributes, so the payload codec
 * encrypts them too: a message naming a member or an invoice is not left in clear in a history.
 * Loaded by path (workflow bundles need it at bundle time): see FAILURE_CONVERTER_PATH.
 */
export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
