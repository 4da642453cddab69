/*
 * actions.ts - the scaffolder actions `plinth:quote` and `plinth:job:submit`.
 *
 * plinth:quote prices a job (POST /v1/quotes; changes nothing), so a
 * template shows the price in its log and in a dry-run before anything is
 * reserved.  plinth:job:submit runs Plinth's self-service flow (POST
 * /v1/jobs: allocate, register the model in MLflow, commit the Job and the
 * Argo CD Application to GitOps).  Why the details:
 *  - the Idempotency-Key is the scaffolder task id, so a task that is run
 *    again (task recovery after a backend crash, `startOver`) gets Plinth's
 *    first answer back instead of a second allocation;
 *  - a dry-run (template editor, POST /v2/dry-run) only quotes: it must never
 *    reserve money;
 *  - a refusal (409 budget/capacity) fails the step with Plinth's own detail,
 *    which says how much was available, so the user sees why in the task log.
 */
import { createTemplateAction } from '@backstage/plugin-scaffolder-node';
import { PlinthClient, PlinthProblem } from './client';

/** `group:default/nlp` or `nlp` -> `nlp` (Plinth team ids are entity names). */
export function teamId(ref: string): string {
  const slash = ref.lastIndexOf('/');
  const colon = ref.indexOf(':');
  return ref.slice(Math.max(slash, colon) + 1);
}

/** The header that tells Plinth which Backstage user a service call is for. */
export const ON_BEHALF_HEADER = 'X-Plinth-On-Behalf-Of';

function failWith(e: unknown): never {
  if (e instanceof PlinthProblem) {
    // The step's error message is Plinth's own problem text.
    throw new Error(`Plinth refused (${e.status}) ${e.message}`);
  }
  throw e;
}

export function createPlinthQuoteAction(client: PlinthClient) {
  return createTemplateAction({
    id: 'plinth:quote',
    description: 'Prices a GPU job with Plinth (POST /v1/quotes). Changes nothing.',
    supportsDryRun: true,
    schema: {
      input: {
        team: z => z.string().describe('Team: a Plinth team id or a group entity ref'),
        gpuType: z => z.string().describe('GPU type id from GET /v1/gpu-types'),
        gpuCount: z => z.number().int().min(1).describe('Number of GPUs'),
        maxRuntimeHours: z => z.number().positive().describe('Maximum runtime in hours'),
        failIfRefused: z => z.boolean().optional().describe('Fail the step when the quote would be refused'),
      },
      output: {
        estimatedCost: z => z.string(),
        available: z => z.string(),
        approved: z => z.boolean(),
        reasons: z => z.array(z.string()),
      },
    },
    async handler(ctx) {
      const team = teamId(ctx.input.team);
      const body = {
        team,
        gpu_type: ctx.input.gpuType,
        gpu_count: ctx.input.gpuCount,
        max_runtime_hours: ctx.input.maxRuntimeHours,
      };
      const q = await client
        .call('POST', '/v1/quotes', body, onBehalf(ctx.user?.ref), ctx.signal)
        .catch(failWith);
      const reasons: string[] = Array.isArray(q.reasons) ? q.reasons.map(String) : [];
      ctx.logger.info(
        `Quote for team ${team}: ${ctx.input.gpuCount} x ${ctx.input.gpuType} for ` +
          `${ctx.input.maxRuntimeHours} h = ${q.estimated_cost}; available ${q.available}; ` +
          (q.approved ? 'would be approved' : `would be refused: ${reasons.join('; ')}`),
      );
      ctx.output('estimatedCost', String(q.estimated_cost));
      ctx.output('available', String(q.available));
      ctx.output('approved', q.approved === true);
      ctx.output('reasons', reasons);
      if (ctx.input.failIfRefused && q.approved !== true) {
        throw new Error(`Plinth would refuse this job: ${reasons.join('; ')}`);
      }
    },
  });
}

function onBehalf(ref: string | undefined): Record<string, string> {
  return ref ? { [ON_BEHALF_HEADER]: ref } : {};
}

export interface SubmitActionOptions {
  client: PlinthClient;
  /** Where the Plinth dashboard is (plinth.dashboardUrl; default plinth.baseUrl). */
  dashboardUrl: string;
  /** Argo CD's UI (plinth.argocdUrl); without it no Argo CD link is output. */
  argocdUrl?: string;
}

export function createPlinthJobSubmitAction(opts: SubmitActionOptions) {
  const { client } = opts;
  return createTemplateAction({
    id: 'plinth:job:submit',
    description:
      'Submits a GPU training job to Plinth (POST /v1/jobs): allocates at the quoted price, ' +
      'registers the model in MLflow and commits the Job and Argo CD Application to GitOps. ' +
      'The task id is the Idempotency-Key; a dry-run only quotes.',
    supportsDryRun: true,
    schema: {
      input: {
        team: z => z.string().describe('Team: a Plinth team id or a group entity ref'),
        project: z => z.string().describe('Project (DNS-1123 label)'),
        name: z => z.string().describe('Job name (DNS-1123 label)'),
        framework: z => z.enum(['pytorch', 'tensorflow', 'jax', 'custom']),
        gpuType: z => z.string(),
        gpuCount: z => z.number().int().min(1),
        maxRuntimeHours: z => z.number().positive(),
        modelName: z => z.string().optional(),
        image: z => z.string().optional(),
        command: z => z.array(z.string()).optional(),
      },
      output: {
        allocationId: z => z.string().optional(),
        status: z => z.string(),
        estimatedCost: z => z.string(),
        pricePerGpuHour: z => z.string().optional(),
        mlflowModel: z => z.string().optional(),
        mlflowUrl: z => z.string().optional(),
        gitopsPath: z => z.string().optional(),
        gitopsCommit: z => z.string().optional(),
        argocdApplication: z => z.string().optional(),
        argocdUrl: z => z.string().optional(),
        dashboardUrl: z => z.string(),
      },
    },
    async handler(ctx) {
      const i = ctx.input;
      const team = teamId(i.team);
      const headers = onBehalf(ctx.user?.ref);
      ctx.output('dashboardUrl', opts.dashboardUrl);
      if (ctx.isDryRun) {
        const q = await client
          .call('POST', '/v1/quotes',
            { team, gpu_type: i.gpuType, gpu_count: i.gpuCount, max_runtime_hours: i.maxRuntimeHours },
            headers, ctx.signal)
          .catch(failWith);
        ctx.logger.info(
          `Dry run: nothing submitted. Plinth quotes ${q.estimated_cost} (available ${q.available}); ` +
            (q.approved ? 'it would be approved' : `it would be refused: ${(q.reasons ?? []).join('; ')}`),
        );
        ctx.output('status', 'dry-run');
        ctx.output('estimatedCost', String(q.estimated_cost));
        return;
      }
      const body: Record<string, unknown> = {
        team,
        project: i.project,
        name: i.name,
        framework: i.framework,
        gpu_type: i.gpuType,
        gpu_count: i.gpuCount,
        max_runtime_hours: i.maxRuntimeHours,
      };
      if (i.modelName) body.model_name = i.modelName;
      if (i.image) body.image = i.image;
      if (i.command && i.command.length) body.command = i.command;
      const key = `backstage-task-${ctx.task.id}`;
      ctx.logger.info(
        `Submitting ${i.name} for team ${team} on behalf of ${ctx.user?.ref ?? 'an unknown user'} ` +
          `(Idempotency-Key ${key})`,
      );
      const res = await client
        .call('POST', '/v1/jobs', body, { ...headers, 'Idempotency-Key': key }, ctx.signal)
        .catch(failWith);
      const a = res.allocation ?? {};
      ctx.logger.info(
        `Plinth approved allocation ${a.id} at ${a.estimated_cost} ` +
          `(${a.price_per_gpu_hour} per GPU-hour); MLflow model ${res.mlflow?.registered_model ?? '-'}; ` +
          `GitOps commit ${res.gitops?.commit ?? '-'} in ${res.gitops?.path ?? '-'}; ` +
          `Argo CD application ${res.argocd?.application ?? '-'}`,
      );
      ctx.output('allocationId', String(a.id));
      ctx.output('status', String(a.status));
      ctx.output('estimatedCost', String(a.estimated_cost));
      if (a.price_per_gpu_hour !== undefined) ctx.output('pricePerGpuHour', String(a.price_per_gpu_hour));
      if (res.mlflow?.registered_model) ctx.output('mlflowModel', String(res.mlflow.registered_model));
      if (res.mlflow?.url) ctx.output('mlflowUrl', String(res.mlflow.url));
      if (res.gitops?.path) ctx.output('gitopsPath', String(res.gitops.path));
      if (res.gitops?.commit) ctx.output('gitopsCommit', String(res.gitops.commit));
      if (res.argocd?.application) {
        ctx.output('argocdApplication', String(res.argocd.application));
        if (opts.argocdUrl) {
          const app = encodeURIComponent(String(res.argocd.application));
          ctx.output('argocdUrl', `${opts.argocdUrl.replace(/\/+$/, '')}/applications/argocd/${app}`);
        }
      }
    },
  });
}
