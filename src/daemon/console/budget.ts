/**
 * The console's global memory budget: bytes buffered for all connections together, input (an
 * unfinished request line) and output (responses and notifications the peer has not read yet).
 * Each connection has one `BudgetAccount`; the budget only counts, the session decides what a
 * refusal means (see session.ts: an unfinished line that cannot grow closes its connection, a
 * connection with unread output is not read from while the budget is exceeded).
 *
 * INVARIANTS: `used` is the sum of every open account's input and output; a closed account
 * holds nothing. Growth of input is refused when it would take `used` past `limit`, so input
 * never takes the total past the limit; output is counted as it is (it has already been
 * written) and makes `exceeded` true, which stops the writers from reading more requests.
 */
import type { BufferAccount } from "../../protocol/framing.js";

export class ConsoleBudget {
  private usedBytes = 0;

  constructor(readonly limit: number) {}

  get used(): number {
    return this.usedBytes;
  }

  get exceeded(): boolean {
    return this.usedBytes > this.limit;
  }

  open(): BudgetAccount {
    return new BudgetAccount(this, (delta) => (this.usedBytes += delta));
  }
}

export class BudgetAccount implements BufferAccount {
  private input = 0;
  private output = 0;
  private closed = false;

  constructor(
    private readonly budget: ConsoleBudget,
    private readonly add: (delta: number) => void,
  ) {}

  /** Input held by the connection's line reader; growth past the budget is refused. */
  hold(bytes: number): boolean {
    if (this.closed) return bytes <= this.input;
    const delta = bytes - this.input;
    if (delta > 0 && this.budget.used + delta > this.budget.limit) return false;
    this.input = bytes;
    this.add(delta);
    return true;
  }

  /** Output the peer has not read yet (the socket's write buffer). */
  setOutput(bytes: number): void {
    if (this.closed) return;
    this.add(bytes - this.output);
    this.output = bytes;
  }

  /** The connection has ended: everything it held is released. */
  close(): void {
    if (this.closed) return;
    this.add(-this.input - this.output);
    this.input = 0;
    this.output = 0;
    this.closed = true;
  }
}
