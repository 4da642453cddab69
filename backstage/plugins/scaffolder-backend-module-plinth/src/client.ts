/*
 * client.ts - the small Plinth HTTP client the scaffolder actions use.
 *
 * Talks to the daemon directly (plinth.baseUrl) with the service token from
 * the backend's configuration (plinth.token, normally `${PLINTH_TOKEN}`), so
 * the token never reaches the browser or a task's parameters.  Money stays a
 * decimal string exactly as Plinth prints it: nothing here does arithmetic.
 */
import { Config } from '@backstage/config';

/** An RFC 9457 problem answered by Plinth, kept whole for the task log. */
export class PlinthProblem extends Error {
  readonly status: number;
  readonly problem: Record<string, unknown>;

  constructor(status: number, problem: Record<string, unknown>) {
    super(PlinthProblem.describe(status, problem));
    this.name = 'PlinthProblem';
    this.status = status;
    this.problem = problem;
  }

  /** "Budget exceeded: <detail> (available 12.00, estimated 20.64)" and the field errors. */
  static describe(status: number, p: Record<string, unknown>): string {
    const title = typeof p.title === 'string' ? p.title : `HTTP ${status}`;
    let text = typeof p.detail === 'string' && p.detail ? `${title}: ${p.detail}` : title;
    const extra: string[] = [];
    for (const k of ['estimated_cost', 'available', 'gpus_available', 'step']) {
      if (p[k] !== undefined && p[k] !== null) extra.push(`${k} ${String(p[k])}`);
    }
    if (extra.length) text += ` (${extra.join(', ')})`;
    if (Array.isArray(p.errors)) {
      for (const e of p.errors as Array<{ field?: string; message?: string }>) {
        text += `; ${e.field || 'body'}: ${e.message}`;
      }
    }
    return text;
  }
}

export interface PlinthClientOptions {
  baseUrl: string;
  token: string;
  /** Milliseconds per request; POST /v1/jobs talks to MLflow and git, so it is generous. */
  timeoutMs?: number;
}

export class PlinthClient {
  readonly baseUrl: string;
  private readonly token: string;
  private readonly timeoutMs: number;

  constructor(opts: PlinthClientOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.token = opts.token;
    this.timeoutMs = opts.timeoutMs ?? 120_000;
  }

  /** Reads `plinth.baseUrl`, `plinth.token` and optional `plinth.timeoutMs`. */
  static fromConfig(config: Config): PlinthClient {
    return new PlinthClient({
      baseUrl: config.getString('plinth.baseUrl'),
      token: config.getString('plinth.token'),
      timeoutMs: config.getOptionalNumber('plinth.timeoutMs'),
    });
  }

  /** One call; 2xx answers return the parsed body, anything else throws PlinthProblem. */
  async call(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
    signal?: AbortSignal,
  ): Promise<any> {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const res = await fetch(this.baseUrl + path, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        accept: 'application/json',
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
    const text = await res.text();
    let parsed: any = undefined;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!res.ok) {
      throw new PlinthProblem(
        res.status,
        parsed && typeof parsed === 'object' ? parsed : { title: `HTTP ${res.status}`, detail: text.slice(0, 500) },
      );
    }
    if (parsed === undefined) {
      throw new PlinthProblem(res.status, { title: 'Unreadable answer', detail: `${method} ${path} did not answer JSON` });
    }
    return parsed;
  }
}
