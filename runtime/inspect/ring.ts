/**
 * A fixed-capacity ring buffer: pushing onto a full buffer overwrites the oldest item, so a
 * connection that steps forever (keep-alive pings on a long-lived connection) costs `capacity`
 * slots, never more. The slots are allocated lazily, so a short connection costs what it used.
 */
export class RingBuffer<T> {
  readonly capacity: number;
  private readonly _items: T[] = [];
  /** Index of the oldest item once the buffer has wrapped. */
  private _head = 0;
  /** How many items were overwritten since the buffer was made. */
  private _dropped = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`ring buffer capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
  }

  push(item: T): void {
    if (this._items.length < this.capacity) {
      this._items.push(item);
      return;
    }
    this._items[this._head] = item;
    this._head = (this._head + 1) % this.capacity;
    this._dropped++;
  }

  /** The number of items held (at most `capacity`). */
  get size(): number {
    return this._items.length;
  }

  /** The number of items pushed and then overwritten by newer ones. */
  get dropped(): number {
    return this._dropped;
  }

  /** The newest item, if any. */
  last(): T | undefined {
    if (this._items.length === 0) return undefined;
    return this._items[(this._head + this._items.length - 1) % this._items.length];
  }

  /** The items, oldest first. */
  toArray(): T[] {
    if (this._head === 0) return this._items.slice();
    return this._items.slice(this._head).concat(this._items.slice(0, this._head));
  }
}
