/**
 * systemd's watchdog (`WatchdogSec=`), pure parts: whether it is meant for this process, how often
 * to send `WATCHDOG=1`, and whether the daemon's event loop still makes progress.
 *
 * A keep-alive is sent from a timer on Node's loop, so a loop busy in JavaScript sends none. That
 * is not enough: the daemon's own event loop (src/daemon/events/loop.ts) may be wedged on a
 * promise that never settles while Node's loop idles happily. So a tick also withholds the
 * keep-alive when events were waiting at the previous tick and none has been processed since:
 * the state owner is stuck, and systemd restarts the service after `WatchdogSec=`.
 */

/** The interval of keep-alives, or undefined when systemd asked for none (sd_watchdog_enabled(3)). */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv, pid: number): number | undefined {
  const usecText = env.WATCHDOG_USEC;
  if (usecText === undefined || !/^[1-9][0-9]{0,15}$/.test(usecText)) return undefined;
  // WATCHDOG_PID names the process the watchdog is for; absent, it is for whoever got it.
  const pidText = env.WATCHDOG_PID;
  if (pidText !== undefined && pidText !== String(pid)) return undefined;
  // Half the timeout, as sd_watchdog_enabled(3) recommends; never a busy timer.
  return Math.max(1, Math.floor(Number(usecText) / 2000));
}

/** What a keep-alive tick sees of the daemon's event loop. */
export interface LoopProgress {
  /** Events waiting in the queue. */
  queued: number;
  /** Events processed since start. */
  processed: number;
}

/**
 * Decides, tick by tick, whether the daemon's event loop is alive.
 *
 * INVARIANTS: `last` is the progress seen at the previous tick. The loop counts as wedged only
 * when it had work waiting then and has processed nothing since: an idle loop (nothing queued)
 * is alive, and a busy one that moves on is alive however long its queue.
 */
export class LoopLiveness {
  private last: LoopProgress | undefined;

  /** True when a keep-alive may be sent for this tick. */
  tick(now: LoopProgress): boolean {
    const previous = this.last;
    this.last = now;
    if (previous === undefined) return true;
    return !(previous.queued > 0 && now.processed === previous.processed);
  }
}
