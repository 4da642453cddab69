/*
 * quote.ts - the arithmetic behind the quote field's "what would fit":
 * given Plinth's quote (price per GPU-hour, available budget, free GPUs),
 * the most GPUs that fit at the requested runtime and the longest runtime
 * (in hundredths of an hour) that fits at the requested GPU count.  Money
 * is integer micro-units (BigInt), and the cost is rounded exactly as
 * Plinth rounds it (src/core/cost.c: price x GPUs x hours, half up to a
 * micro-unit), so every suggestion is one Plinth would approve and one
 * step more is one it would refuse (the test asks Plinth both).
 */
import type { PlinthQuote } from './api';

const MICRO = 1_000_000n;

/** "12.34" / "-0.5" -> micro-units; Plinth's money strings have at most 6 decimals. */
export function toMicros(s: string): bigint {
  const m = /^(-?)(\d+)(?:\.(\d{1,6}))?$/.exec(s.trim());
  if (!m) throw new Error(`not a money amount: ${s}`);
  const v = BigInt(m[2]) * MICRO + BigInt((m[3] ?? '').padEnd(6, '0'));
  return m[1] ? -v : v;
}

/** Hours as typed (at most 6 decimals, as Plinth accepts) -> micro-hours. */
export function toMicroHours(hours: number): bigint {
  return BigInt(Math.round(hours * 1e6));
}

/** Plinth's cost of `count` GPUs for `microHours`: price x count x hours, half up. */
export function costMicros(price: bigint, count: bigint, microHours: bigint): bigint {
  return (price * count * microHours + MICRO / 2n) / MICRO;
}

/** The largest n in [0, limit] with fits(n), for a fits() true up to some n and false after. */
function largest(limit: bigint, fits: (n: bigint) => boolean): bigint {
  let lo = 0n;
  let hi = limit;
  while (lo < hi) {
    const mid = (lo + hi + 1n) / 2n;
    if (fits(mid)) lo = mid;
    else hi = mid - 1n;
  }
  return lo;
}

export interface Fit {
  /** The most GPUs of this type that fit now at the requested runtime (budget and free GPUs). */
  maxGpus: number;
  /** The longest runtime (hours, 2 decimals) that fits at the requested count, or null if none does. */
  maxHours: string | null;
}

/** What fits now, from a quote for `hours` hours. */
export function whatFits(q: PlinthQuote, hours: number): Fit {
  const price = toMicros(q.price_per_gpu_hour);
  const available = toMicros(q.available);
  const mh = toMicroHours(hours);
  const free = BigInt(q.gpus_available);
  const count = BigInt(q.gpu_count);
  const maxGpus = available < 0n ? 0n : largest(free, n => costMicros(price, n, mh) <= available);
  let maxHours: string | null = null;
  if (count <= free && available >= 0n) {
    // Runtime in hundredths of an hour (1e4 micro-hours), bounded by what one
    // micro-unit of price could buy: at most available x 100 hundredths.
    const bound = price * count === 0n ? 0n : (available * 100n) / (price * count) + 1n;
    const c = largest(bound, k => costMicros(price, count, k * 10_000n) <= available);
    if (c > 0n) maxHours = `${c / 100n}.${(c % 100n).toString().padStart(2, '0')}`;
  }
  return { maxGpus: Number(maxGpus), maxHours };
}

/** Plinth's reasons and what would fit, in one sentence for the form and the review. */
export function refusalDetail(q: PlinthQuote, hours: number): string {
  const fit = whatFits(q, hours);
  const options: string[] = [];
  if (fit.maxGpus > 0) options.push(`${fit.maxGpus} × ${q.gpu_type} for ${hours} h`);
  if (fit.maxHours !== null) options.push(`${q.gpu_count} × ${q.gpu_type} for up to ${fit.maxHours} h`);
  const fits = options.length
    ? `What fits now: ${options.join(', or ')}.`
    : `Nothing of ${q.gpu_type} fits now (${q.available} available, ${q.gpus_available} GPUs free).`;
  return `${q.reasons.join('; ')}. ${fits}`;
}
