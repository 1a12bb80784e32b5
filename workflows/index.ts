export { memberLifecycle, wakeSignal } from './member';
