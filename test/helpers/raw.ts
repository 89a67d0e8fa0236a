/** A raw NDJSON peer for protocol tests: send exact lines, read exact lines. */
import { connect, type Socket } from "node:net";
import { LineReader } from "../../src/protocol/framing.js";
import { within } from "./wait.js";

// A reply or the end of the connection: long enough for a loaded host, short of the test's own.
const NEXT_TIMEOUT_MS = 30_000;

export class RawPeer {
  readonly reader: LineReader;
  readonly closed: Promise<void>;

  private constructor(readonly socket: Socket) {
    this.reader = new LineReader(socket, 64 * 1024 * 1024);
    this.closed = new Promise((resolve) => socket.once("close", () => resolve()));
  }

  static async open(url: string): Promise<RawPeer> {
    const path = url.replace(/^unix:\/\//, "");
    const socket = connect({ path });
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    socket.on("error", () => undefined);
    return new RawPeer(socket);
  }

  send(line: string): void {
    this.socket.write(line + "\n");
  }

  /** The next line parsed as JSON, or null at EOF; fails when neither comes within the bound. */
  async next(timeoutMs = NEXT_TIMEOUT_MS): Promise<unknown> {
    const line = await within(this.reader.nextLine(), { timeoutMs, what: "the next line from the daemon" });
    return line === null ? null : JSON.parse(line);
  }

  /** Connects in Northstar's dialect, or in Skiff's with `dialect: "skiff"` (docs/console.md). */
  async handshake(version = "0.9.2", notifications = false, dialect?: "skiff"): Promise<unknown> {
    const connect = { version, subscribe_notifications: notifications, ...(dialect && { dialect }) };
    this.send(JSON.stringify({ connect }));
    return this.next();
  }

  close(): void {
    this.socket.destroy();
  }
}
