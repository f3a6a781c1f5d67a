/**
 * Address allocation for the simulated cluster: service cluster IPs (as the
 * API server's allocator does from --service-cluster-ip-range), pod IPs (as a
 * CNI does from the pod CIDR) and node ports. Addresses a scenario names
 * explicitly are reserved so allocation never hands them out twice.
 */

function toNumber(ip: string): number {
  return ip.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
}

function toIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff].join('.');
}

/** A pool of values handed out in order, skipping reserved ones, wrapping around. */
export class Pool<T> {
  readonly #used = new Set<T>();
  #cursor = 0;

  constructor(
    private readonly size: number,
    private readonly valueAt: (offset: number) => T,
    private readonly what: string,
  ) {}

  reserve(value: T): void {
    this.#used.add(value);
  }

  release(value: T): void {
    this.#used.delete(value);
  }

  allocate(): T {
    for (let tries = 0; tries < this.size; tries++) {
      const value = this.valueAt(this.#cursor);
      this.#cursor = (this.#cursor + 1) % this.size;
      if (!this.#used.has(value)) {
        this.#used.add(value);
        return value;
      }
    }
    throw new Error(`simulated cluster: no free ${this.what} left`);
  }
}

/** IPv4 addresses `base + first` … `base + first + size - 1`. */
export class Ipv4Pool extends Pool<string> {
  constructor(base: string, first: number, size: number, what: string) {
    const start = toNumber(base) + first;
    super(size, (offset) => toIp(start + offset), what);
  }
}

/** Service cluster IPs from 10.96.0.0/16 (10.96.0.1 is `kubernetes`, 10.96.0.10 kube-dns in real clusters). */
export function serviceIpPool(): Ipv4Pool {
  return new Ipv4Pool('10.96.0.0', 100, 65_000, 'service cluster IP in 10.96.0.0/16');
}

/** Pod IPs from 10.244.128.0/17, clear of the 10.244.0.x addresses scenarios tend to pick. */
export function podIpPool(): Ipv4Pool {
  return new Ipv4Pool('10.244.128.0', 2, 32_000, 'pod IP in 10.244.128.0/17');
}

/** Node ports 30000–32767 (the default --service-node-port-range). */
export function nodePortPool(): Pool<number> {
  return new Pool(2768, (offset) => 30000 + offset, 'node port in 30000-32767');
}
