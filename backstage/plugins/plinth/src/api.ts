/*
 * api.ts - what the card reads from Plinth, through the Backstage proxy
 * (`proxy.endpoints./plinth`, which adds the service token on the server
 * side: the browser never holds a Plinth token).  Answers are typed as the
 * API prints them; money stays a decimal string, never a float.
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
  const base = `${await discovery.getBaseUrl('proxy')}${proxyPath}`;
  let res: Response;
  try {
    res = await fetchApi.fetch(`${base}${path}`, { headers: { accept: 'application/json' } });
  } catch (e) {
    throw new PlinthCardError(`Cannot reach ${base}: ${(e as Error).message}`);
  }
  const text = await res.text();
  let body: any;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (!res.ok) {
    const detail = body && (body.detail || body.title || body.error?.message);
    throw new PlinthCardError(`GET ${path} answered ${res.status}${detail ? `: ${detail}` : ''}`, res.status);
  }
  if (body === undefined) throw new PlinthCardError(`GET ${path} did not answer JSON`);
  return body as T;
}
