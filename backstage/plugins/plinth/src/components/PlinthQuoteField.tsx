/*
 * PlinthQuoteField.tsx - the scaffolder form field `PlinthQuote`: given the
 * form's team, GPU type, GPU count and runtime (other fields of the same
 * form, read from formContext.formData), it asks Plinth for a quote (POST
 * /v1/quotes through the proxy route `/plinth-quote`; changes nothing) and
 * shows the estimated cost, the team's available budget, whether Plinth
 * would approve the job now and, when it would not, Plinth's reasons and
 * what would fit.  Its value is the quote, so the scaffolder's review step
 * lists it beside the other answers; the validation keeps the user on the
 * page while the quote is missing, stale (the inputs changed) or a refusal
 * (unless `ui:options.allowRefused`): a job Plinth would refuse is not
 * submitted only to fail.  The submit step still decides atomically; the
 * quote is what the user sees before it.
 */
import React, { useEffect, useState } from 'react';
import { parseEntityRef } from '@backstage/catalog-model';
import { discoveryApiRef, fetchApiRef, useApi } from '@backstage/core-plugin-api';
import type { CustomFieldValidator, FieldExtensionComponentProps } from '@backstage/plugin-scaffolder-react';
import { PlinthQuote, plinthCall } from '../api';
import { refusalDetail } from '../quote';

/** The field's value (form data); `request` names the inputs it was quoted for. */
export interface PlinthQuoteValue {
  verdict: 'pending' | 'error' | 'would approve' | 'would refuse';
  estimatedCost?: string;
  available?: string;
  detail?: string;
  request?: string;
}

/** `ui:options` of the field (a type, not an interface: the scaffolder wants an index signature). */
export type PlinthQuoteUiOptions = {
  /** The proxy route that reaches POST /v1/quotes (default `/plinth-quote`). */
  proxyPath?: string;
  /** Let the user go on to review and create with a quote Plinth would refuse. */
  allowRefused?: boolean;
};

interface Request {
  team: string;
  gpu_type: string;
  gpu_count: number;
  max_runtime_hours: number;
}

/** The quote request from the form's answers, or what is still missing. */
export function quoteRequest(form: Record<string, unknown> | undefined): Request | string {
  const f = form ?? {};
  const missing = ['team', 'gpuType', 'gpuCount', 'maxRuntimeHours'].filter(k => f[k] === undefined || f[k] === '');
  if (missing.length) return `Fill in ${missing.join(', ')} first.`;
  let team: string;
  try {
    // MyGroupsPicker answers a group entity ref; Plinth's team id is its name.
    team = parseEntityRef(String(f.team), { defaultKind: 'group', defaultNamespace: 'default' }).name;
  } catch (e) {
    return `The team is not an entity reference: ${(e as Error).message}`;
  }
  return {
    team,
    gpu_type: String(f.gpuType),
    gpu_count: Number(f.gpuCount),
    max_runtime_hours: Number(f.maxRuntimeHours),
  };
}

const key = (r: Request) => `${r.team}|${r.gpu_type}|${r.gpu_count}|${r.max_runtime_hours}`;

export const PlinthQuoteField = (props: FieldExtensionComponentProps<PlinthQuoteValue, PlinthQuoteUiOptions>) => {
  const { onChange, formContext, uiSchema, formData } = props;
  const discovery = useApi(discoveryApiRef);
  const fetchApi = useApi(fetchApiRef);
  const req = quoteRequest(formContext?.formData);
  const reqKey = typeof req === 'string' ? undefined : key(req);
  const proxyPath = uiSchema?.['ui:options']?.proxyPath ?? '/plinth-quote';
  const [quote, setQuote] = useState<PlinthQuote>();

  useEffect(() => {
    if (typeof req === 'string') return undefined;
    let live = true;
    setQuote(undefined);
    onChange({ verdict: 'pending', request: reqKey });
    plinthCall<PlinthQuote>(discovery, fetchApi, 'POST', proxyPath, 'POST /v1/quotes', req).then(
      q => {
        if (!live) return;
        setQuote(q);
        onChange({
          verdict: q.approved ? 'would approve' : 'would refuse',
          estimatedCost: q.estimated_cost,
          available: q.available,
          detail: q.approved ? 'Plinth would approve this job now.' : refusalDetail(q, req.max_runtime_hours),
          request: reqKey,
        });
      },
      (e: Error) => {
        if (live) onChange({ verdict: 'error', detail: e.message, request: reqKey });
      },
    );
    return () => {
      live = false;
    };
    // Quote again only when the inputs change (onChange is a new function every render).
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [reqKey, proxyPath, discovery, fetchApi]);

  const row = (id: string, label: string, value: React.ReactNode) => (
    <tr data-testid={`plinth-quote-${id}`}>
      <td style={{ padding: '4px 8px' }}>{label}</td>
      <td style={{ padding: '4px 8px', textAlign: 'right' }}>{value}</td>
    </tr>
  );
  let body: React.ReactNode;
  if (typeof req === 'string') {
    body = <div data-testid="plinth-quote-missing">{req}</div>;
  } else if (formData?.verdict === 'error' && formData.request === reqKey) {
    body = (
      <div data-testid="plinth-quote-error" role="alert">
        Cannot get a quote from Plinth: {formData.detail}. Check the <code>proxy.endpoints.{proxyPath}</code> route
        (target Plinth, path rewritten to /v1/quotes, method POST, a service token) in app-config.
      </div>
    );
  } else if (!quote || formData?.request !== reqKey) {
    body = <div data-testid="plinth-quote-loading">Asking Plinth for a quote…</div>;
  } else {
    body = (
      <>
        <table data-testid="plinth-quote" style={{ borderCollapse: 'collapse', width: '100%' }}>
          <tbody>
            {row('job', 'Job', `${quote.gpu_count} × ${quote.gpu_type} for ${quote.max_runtime_hours} h at ${quote.price_per_gpu_hour} per GPU-hour`)}
            {row('cost', 'Estimated cost', quote.estimated_cost)}
            {row('available', `Available budget (${quote.team})`, quote.available)}
            {row('verdict', "Plinth's answer", quote.approved ? 'would approve' : 'would refuse')}
          </tbody>
        </table>
        <p data-testid="plinth-quote-detail" role={quote.approved ? undefined : 'alert'} style={{ margin: '8px' }}>
          {formData?.detail}
        </p>
      </>
    );
  }
  return (
    <fieldset style={{ border: '1px solid #ccc', borderRadius: 4, padding: 8 }}>
      <legend>{props.schema?.title ?? "Plinth's quote"}</legend>
      {body}
    </fieldset>
  );
};

/** Keeps the form on this page until there is a current quote Plinth would approve. */
export const validatePlinthQuote: CustomFieldValidator<PlinthQuoteValue, PlinthQuoteUiOptions> = (
  value,
  validation,
  context,
) => {
  const req = quoteRequest(context.formData as Record<string, unknown>);
  if (typeof req === 'string') {
    validation.addError(req);
  } else if (!value || value.request !== key(req) || value.verdict === 'pending') {
    validation.addError("Wait for Plinth's quote for these values.");
  } else if (value.verdict === 'error') {
    validation.addError(`Cannot get a quote from Plinth: ${value.detail}`);
  } else if (value.verdict === 'would refuse' && !context.uiSchema?.['ui:options']?.allowRefused) {
    validation.addError(`Plinth would refuse this job: ${value.detail}`);
  }
};
