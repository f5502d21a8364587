/**
 * The clock the model-based tests pass as the `clock` option: the connection machine's timers run
 * on it, and a path's timer event (`xstate.after.<delay>.<state id>`) is turned into that timer
 * firing — nothing waits in real time.
 *
 * Why not XState's SimulatedClock as it is: SimulatedClock fires timers in the order of their due
 * times when it is advanced, whereas the model treats every armed timer as an independent event
 * that may come first (a path may let the idle timeout fire before the keep-alive interval even if
 * the settings make the interval shorter). Advancing time can only realize the orders the chosen
 * delays allow, so this clock keeps SimulatedClock's interface (setTimeout / clearTimeout / now)
 * and adds `elapse(delay)`: fire the one pending timer armed with that delay, as if exactly its
 * time had passed. The runtime gets each delay a distinct value, so the delay names the timer.
 */
export interface PendingTimer {
  readonly id: number;
  readonly delay: number;
  readonly due: number;
  readonly fn: () => void;
}

export class ModelClock {
  private readonly pending = new Map<number, PendingTimer>();
  private nextId = 1;
  private current = 0;

  now(): number {
    return this.current;
  }

  setTimeout(fn: (...args: unknown[]) => void, delay: number): number {
    const id = this.nextId++;
    this.pending.set(id, { id, delay, due: this.current + delay, fn: () => fn() });
    return id;
  }

  clearTimeout(id: unknown): void {
    this.pending.delete(id as number);
  }

  /** The timers armed and not yet fired or cleared. */
  timers(): PendingTimer[] {
    return [...this.pending.values()];
  }

  /**
   * Fires the pending timer armed with `delay` ms (time moves to its due time if that is later).
   * Exactly one such timer must be pending: none means the runtime did not arm the timer the model
   * says is running; two mean a timer leaked.
   */
  elapse(delay: number): void {
    const matching = this.timers().filter((timer) => timer.delay === delay);
    if (matching.length !== 1) {
      const armed = this.timers().map((timer) => `${timer.delay} ms`).join(', ') || 'none';
      throw new Error(`expected exactly one pending ${delay} ms timer, found ${matching.length} (armed: ${armed})`);
    }
    const timer = matching[0]!;
    this.pending.delete(timer.id);
    this.current = Math.max(this.current, timer.due);
    timer.fn();
  }
}

