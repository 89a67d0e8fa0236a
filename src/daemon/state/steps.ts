/**
 * Steps are what a transition asks the world to do. The state owner hands them to the
 * executor map (runtime.ts); executors report back through events, never by touching state.
 */
import type { Notification, Response } from "../../protocol/messages.js";

export type Step =
  | { type: "reply"; response: Response }
  | { type: "notify"; notification: Notification }
  | { type: "shutdown"; reason: string };

export interface Transition<S> {
  state: S;
  steps: Step[];
}
