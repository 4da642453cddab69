/*
 * api.ts - what the card reads from Plinth, through the Backstage proxy
 * (`proxy.endpoints./plinth`, which adds the service token on the server
 * side: the browser never holds a Plinth token).  Answers are typed as the
 * API prints them; money stays a decimal string, never a float.  The quote
 * field posts to its own proxy route (`/plinth-quote`), rewritten to exactly
 * POST /v1/quotes, so the browser reaches nothing else that writes.
 */
import { DiscoveryApi, FetchApi } from '@backstage/core-plugin-api';

export interface PlinthTeam {
  id: string;
  display_name?: string;
  currency?: string;
  budget: { amount: string; period: string };
  period_start: string;
  period_end: string;
  spent: string;
  reserved: string;
  accrued: string;
  available: string;
  burn_rate_per_day: string;
  forecast_period_end: string;
  budget_exhausted_at: string | null;
}

export interface PlinthAllocation {
  id: string;
  team: string;
  project: string;
  gpu_type: string;
  gpu_count: number;
  status: string;
  estimated_cost: string;
  accrued_cost: string | null;
  started_at: string | null;
}

/** POST /v1/quotes: what a job would cost and whether Plinth would approve it now. */
export interface PlinthQuote {
  team: string;
  gpu_type: string;
  gpu_count: number;
  max_runtime_hours: number;
  price_per_gpu_hour: string;
  estimated_cost: string;
  available: string;
  gpus_available: number;
  approved: boolean;
  reasons: string[];
}

/** A failed call, with what the user should check. */
export class PlinthCardError extends Error {
  constructor(message: string, readonly status?: number) {
    super(message);
    this.name = 'PlinthCardError';
  }
}

export async function plinthGet<T>(
  discovery: DiscoveryApi,
  fetchApi: FetchApi,
  path: string,
  proxyPath = '/plinth',
): Promise<T> {
  return plinthCall<T>(discovery, fetchApi, 'GET', `${proxyPath}${path}`, path);
}

/**
 * One call through the proxy: `route` is the proxy route plus path,
 * `what` names the Plinth call in errors.  Resolves the JSON answer;
 * rejects with Plinth's problem detail on a non-2xx status.
 */
export async function plinthCall<T>(
  discovery: DiscoveryApi,
  fetchApi: FetchApi,
  method: 'GET' | 'POST',
  route: string,
  what: string,
  body?: unknown,
): Promise<T> {
  const base = await discovery.getBaseUrl('proxy');
  let res: Response;
  try {
    res = await fetchApi.fetch(`${base}${route}`, {
      method,
      headers: body === undefined ? { accept: 'application/json' }
        : { accept: 'application/json', 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new PlinthCardError(`Cannot reach ${base}${route}: ${(e as Error).message}`);
  }
  const text = await res.text();
  let parsed: any;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!res.ok) {
    const detail = parsed && (parsed.detail || parsed.title || parsed.error?.message);
    throw new PlinthCardError(`${method} ${what} answered ${res.status}${detail ? `: ${detail}` : ''}`, res.status);
  }
  if (parsed === undefined) throw new PlinthCardError(`${method} ${what} did not answer JSON`);
  return parsed as T;
}
