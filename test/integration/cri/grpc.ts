/**
 * The gRPC side of the CRI integration tests: clients for a daemon's CRI socket and unary calls
 * as promises with a deadline (clients made by loadPackageDefinition have untyped methods).
 */
import assert from "node:assert/strict";
import { credentials, type Client, type ServiceError } from "@grpc/grpc-js";
import { loadCriServices } from "../../../src/cri/proto.js";

/** Deadline of one unary call. */
export const CALL_TIMEOUT_MS = 60_000;

export type Message = Record<string, unknown>;
export type Method = (request: Message, options: { deadline: number }, ...rest: unknown[]) => unknown;

/** A method of a client, bound to it (fails when the service has no such method). */
export function method(client: Client, name: string): Method {
  const fn = (client as unknown as Record<string, Method | undefined>)[name];
  if (fn === undefined) throw new Error(`no method ${name}`);
  return fn.bind(client);
}

/** A unary call as a promise, with a deadline. */
export function call(client: Client, name: string, request: Message = {}): Promise<Message> {
  const fn = method(client, name);
  return new Promise((resolve, reject) => {
    fn(
      request,
      { deadline: Date.now() + CALL_TIMEOUT_MS },
      (error: ServiceError | null, response: Message) => (error ? reject(error) : resolve(response)),
    );
  });
}

/** The error a call fails with (fails the test when it succeeds). */
export async function refusal(promise: Promise<unknown>): Promise<ServiceError> {
  try {
    await promise;
  } catch (e) {
    return e as ServiceError;
  }
  assert.fail("the call succeeded");
}

/** Runtime and image service clients on the CRI socket at `socket` (a path). */
export function criClients(socket: string): { runtime: Client; images: Client } {
  const services = loadCriServices();
  return {
    runtime: new services.RuntimeService(`unix:${socket}`, credentials.createInsecure()),
    images: new services.ImageService(`unix:${socket}`, credentials.createInsecure()),
  };
}
