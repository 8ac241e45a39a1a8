// An ordered list of header fields, shared by the HTTP/2 (HPACK) and HTTP/1.1 readers. Names are
// stored as the reader produced them: lower case in both (HTTP/2 requires it; the HTTP/1.1 parser
// lower-cases). Repeated names are kept as separate entries, in order.

export class HeaderList {
  names: string[] = [];
  values: string[] = [];

  @inline get length(): i32 {
    return this.names.length;
  }

  add(name: string, value: string): void {
    this.names.push(name);
    this.values.push(value);
  }

  /** The value of the first field named exactly `name`, or null. */
  get(name: string): string | null {
    const names = this.names;
    for (let i = 0, n = names.length; i < n; i++) {
      if (unchecked(names[i]) == name) return this.values[i];
    }
    return null;
  }

  /** How many fields are named exactly `name`. */
  count(name: string): i32 {
    let c = 0;
    const names = this.names;
    for (let i = 0, n = names.length; i < n; i++) if (unchecked(names[i]) == name) c++;
    return c;
  }

  clear(): void {
    this.names.length = 0;
    this.values.length = 0;
  }
}
