/**
 * A small Prometheus text-format writer (exposition format 0.0.4,
 * https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format):
 * counters, gauges and histograms with a fixed set of label names each.
 *
 * Why not prom-client: kubesocks exposes about fifteen series with a few
 * labels of a handful of values each. prom-client would bring its default
 * registry (a process-global that two proxies in one test process share),
 * label objects hashed on every `inc()`, and collectors we do not want; this
 * file is the whole format we need, and `promtool check metrics` validates
 * its output in the tests (test/observe/metrics.test.ts). Updates are plain
 * number additions on a Map entry found by a string key: nothing per socket
 * beyond that.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram';

/** Metric and label names as the data model allows (https://prometheus.io/docs/concepts/data_model/). */
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

abstract class Metric<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  abstract readonly type: MetricType;

  constructor(name: string, help: string, labelNames: readonly L[]) {
    if (!METRIC_NAME.test(name)) throw new TypeError(`Expected a Prometheus metric name, got "${name}"`);
    for (const label of labelNames) {
      if (!LABEL_NAME.test(label) || label.startsWith('__')) throw new TypeError(`Expected a Prometheus label name, got "${label}"`);
    }
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
  }

  /** The sample lines (without HELP/TYPE). */
  abstract samples(): string[];

  /** The series key: label values joined by NUL (which no value of ours holds). A plain loop: it runs per connection. */
  protected key(labels: Record<L, string>): string {
    const names = this.labelNames;
    if (names.length === 0) return '';
    let key = labels[names[0] as L];
    for (let i = 1; i < names.length; i++) key += `\u0000${labels[names[i] as L]}`;
    return key;
  }

  protected labelText(key: string, extra = ''): string {
    const values = key === '' && this.labelNames.length === 0 ? [] : key.split('\u0000');
    const pairs = this.labelNames.map((name, i) => `${name}="${escapeLabelValue(values[i] ?? '')}"`);
    if (extra) pairs.push(extra);
    return pairs.length === 0 ? '' : `{${pairs.join(',')}}`;
  }
}

/** A value that only goes up (the name should end in `_total`). */
export class Counter<L extends string = never> extends Metric<L> {
  readonly type = 'counter';
  readonly #values = new Map<string, number>();

  inc(labels: Record<L, string>, by = 1): void {
    const key = this.key(labels);
    this.#values.set(key, (this.#values.get(key) ?? 0) + by);
  }

  /** Makes a series exist at 0, so rate() sees its first increase. */
  init(labels: Record<L, string>): void {
    const key = this.key(labels);
    if (!this.#values.has(key)) this.#values.set(key, 0);
  }

  get(labels: Record<L, string>): number {
    return this.#values.get(this.key(labels)) ?? 0;
  }

  samples(): string[] {
    return [...this.#values].map(([key, value]) => `${this.name}${this.labelText(key)} ${formatValue(value)}`);
  }
}

/** A value read when scraped (open connections and the like): nothing is kept between scrapes. */
export class Gauge<L extends string = never> extends Metric<L> {
  readonly type = 'gauge';
  readonly #read: () => Iterable<[Record<L, string>, number]>;

  constructor(name: string, help: string, labelNames: readonly L[], read: () => Iterable<[Record<L, string>, number]>) {
    super(name, help, labelNames);
    this.#read = read;
  }

  samples(): string[] {
    const lines: string[] = [];
    for (const [labels, value] of this.#read()) lines.push(`${this.name}${this.labelText(this.key(labels))} ${formatValue(value)}`);
    return lines;
  }
}

/** Cumulative buckets, `_sum` and `_count`, as the format prescribes. */
export class Histogram<L extends string = never> extends Metric<L> {
  readonly type = 'histogram';
  readonly buckets: readonly number[];
  readonly #series = new Map<string, { counts: number[]; sum: number; count: number }>();

  constructor(name: string, help: string, labelNames: readonly L[], buckets: readonly number[]) {
    super(name, help, labelNames);
    if (buckets.length === 0 || buckets.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= (buckets[i - 1] ?? -Infinity)))) {
      throw new TypeError(`Expected increasing finite histogram buckets for ${name}`);
    }
    this.buckets = buckets;
  }

  observe(labels: Record<L, string>, value: number): void {
    const key = this.key(labels);
    let series = this.#series.get(key);
    if (!series) {
      series = { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.#series.set(key, series);
    }
    // Per-bucket counts here; made cumulative when written.
    const { buckets, counts } = { buckets: this.buckets, counts: series.counts };
    for (let i = 0; i < buckets.length; i++) {
      if (value <= (buckets[i] as number)) {
        counts[i] = (counts[i] ?? 0) + 1;
        break;
      }
    }
    series.sum += value;
    series.count++;
  }

  /** Observations so far for these labels. */
  count(labels: Record<L, string>): number {
    return this.#series.get(this.key(labels))?.count ?? 0;
  }

  samples(): string[] {
    const lines: string[] = [];
    for (const [key, series] of this.#series) {
      let cumulative = 0;
      this.buckets.forEach((upper, i) => {
        cumulative += series.counts[i] ?? 0;
        lines.push(`${this.name}_bucket${this.labelText(key, `le="${formatValue(upper)}"`)} ${cumulative}`);
      });
      lines.push(`${this.name}_bucket${this.labelText(key, 'le="+Inf"')} ${series.count}`);
      lines.push(`${this.name}_sum${this.labelText(key)} ${formatValue(series.sum)}`);
      lines.push(`${this.name}_count${this.labelText(key)} ${series.count}`);
    }
    return lines;
  }
}

export type AnyMetric = Counter<string> | Gauge<string> | Histogram<string>;

/** The Content-Type of the text format. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Writes metrics in the text format: HELP, TYPE, then the samples of each. */
export function renderMetrics(metrics: Iterable<AnyMetric>): string {
  const out: string[] = [];
  for (const metric of metrics) {
    out.push(`# HELP ${metric.name} ${escapeHelp(metric.help)}`, `# TYPE ${metric.name} ${metric.type}`, ...metric.samples());
  }
  return `${out.join('\n')}\n`;
}

/** Label values escape backslash, double quote and line feed. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** HELP text escapes backslash and line feed. */
function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}
