/*
 * EntityPlinthBudgetCard.tsx - the Plinth card on a Group (team) or
 * Component page: the team's budget for the current period (budget, spent,
 * reserved, available, forecast, the day the budget runs out), the running
 * allocations with their accrued cost (re-read every 30 s while the page is
 * open) and a link to the Plinth dashboard.  The team comes from the
 * entity's `plinth.io/team` annotation, an optional `plinth.io/project`
 * narrows the allocations.  Without the annotation, and when Plinth cannot
 * be read, the card says what to configure instead of showing numbers.
 */
import React, { useCallback, useEffect, useState } from 'react';
import { InfoCard } from '@backstage/core-components';
import { discoveryApiRef, fetchApiRef, useApi } from '@backstage/core-plugin-api';
import { useEntity } from '@backstage/plugin-catalog-react';
import { PlinthAllocation, PlinthTeam, plinthGet } from '../api';

export const TEAM_ANNOTATION = 'plinth.io/team';
export const PROJECT_ANNOTATION = 'plinth.io/project';

export interface EntityPlinthBudgetCardProps {
  /** The proxy endpoint configured for Plinth (default `/plinth`). */
  proxyPath?: string;
  /** Where the Plinth dashboard is, for the card's link. */
  dashboardUrl?: string;
  /** How often to re-read the numbers (ms); 0 = never. Default 30 s. */
  refreshMs?: number;
}

type State =
  | { kind: 'loading' }
  | { kind: 'error'; message: string }
  | { kind: 'ok'; team: PlinthTeam; running: PlinthAllocation[] };

const cell = { padding: '4px 8px', textAlign: 'right' as const };
const head = { ...cell, fontWeight: 600 };

function day(ts: string | null): string {
  return ts ? ts.slice(0, 10) : 'not at the current rate';
}

export const EntityPlinthBudgetCard = (props: EntityPlinthBudgetCardProps) => {
  const { entity } = useEntity();
  const discovery = useApi(discoveryApiRef);
  const fetchApi = useApi(fetchApiRef);
  const teamId = entity.metadata.annotations?.[TEAM_ANNOTATION];
  const project = entity.metadata.annotations?.[PROJECT_ANNOTATION];
  const [state, setState] = useState<State>({ kind: 'loading' });

  const load = useCallback(async () => {
    if (!teamId) return;
    try {
      const t = encodeURIComponent(teamId);
      const [team, list] = await Promise.all([
        plinthGet<PlinthTeam>(discovery, fetchApi, `/v1/teams/${t}`, props.proxyPath),
        plinthGet<{ items: PlinthAllocation[] }>(
          discovery, fetchApi, `/v1/allocations?team=${t}&status=running&limit=100`, props.proxyPath),
      ]);
      const running = list.items.filter(a => !project || a.project === project);
      setState({ kind: 'ok', team, running });
    } catch (e) {
      setState({ kind: 'error', message: (e as Error).message });
    }
  }, [teamId, project, discovery, fetchApi, props.proxyPath]);

  useEffect(() => {
    load();
    const every = props.refreshMs ?? 30_000;
    if (!teamId || every <= 0) return undefined;
    const timer = setInterval(load, every);
    return () => clearInterval(timer);
  }, [load, teamId, props.refreshMs]);

  if (!teamId) {
    return (
      <InfoCard title="Plinth GPU budget">
        <div data-testid="plinth-empty">
          No Plinth team for this entity. Add the annotation <code>{TEAM_ANNOTATION}: &lt;team id&gt;</code>{' '}
          (and optionally <code>{PROJECT_ANNOTATION}</code>) to its catalog-info.yaml.
        </div>
      </InfoCard>
    );
  }
  if (state.kind === 'loading') {
    return <InfoCard title="Plinth GPU budget"><div data-testid="plinth-loading">Loading…</div></InfoCard>;
  }
  if (state.kind === 'error') {
    return (
      <InfoCard title="Plinth GPU budget">
        <div data-testid="plinth-error" role="alert">
          Cannot read team <b>{teamId}</b> from Plinth: {state.message.replace(/\.$/, '')}. Check the{' '}
          <code>proxy.endpoints./plinth</code> target and its service token in app-config, and that the team exists
          in Plinth.
        </div>
      </InfoCard>
    );
  }
  const { team, running } = state;
  const cur = team.currency ?? 'USD';
  const rows: Array<[string, string, string]> = [
    ['budget', `Budget (${team.budget.period})`, team.budget.amount],
    ['spent', 'Spent', team.spent],
    ['reserved', 'Reserved', team.reserved],
    ['available', 'Available', team.available],
    ['forecast', 'Forecast for the period', team.forecast_period_end],
  ];
  const dashboard = props.dashboardUrl;
  return (
    <InfoCard
      title={`Plinth GPU budget: ${team.display_name ?? team.id}${project ? ` / ${project}` : ''}`}
      subheader={`${team.period_start.slice(0, 10)} to ${team.period_end.slice(0, 10)}, ${cur}`}
      deepLink={dashboard ? { title: 'Open the Plinth dashboard', link: dashboard } : undefined}
    >
      <table data-testid="plinth-numbers" style={{ borderCollapse: 'collapse', width: '100%' }}>
        <tbody>
          {rows.map(([key, label, value]) => (
            <tr key={key} data-testid={`plinth-${key}`}>
              <td style={{ padding: '4px 8px' }}>{label}</td>
              <td style={cell}>{value}</td>
            </tr>
          ))}
          <tr data-testid="plinth-runs-out">
            <td style={{ padding: '4px 8px' }}>Runs out on</td>
            <td style={cell}>{day(team.budget_exhausted_at)}</td>
          </tr>
        </tbody>
      </table>
      <h4 style={{ margin: '16px 8px 4px' }}>Running allocations ({running.length})</h4>
      {running.length === 0 ? (
        <div data-testid="plinth-no-running" style={{ padding: '0 8px' }}>Nothing running.</div>
      ) : (
        <table data-testid="plinth-running" style={{ borderCollapse: 'collapse', width: '100%' }}>
          <thead>
            <tr>
              <th style={{ ...head, textAlign: 'left' }}>Allocation</th>
              <th style={head}>Project</th>
              <th style={head}>GPUs</th>
              <th style={head}>Accrued</th>
              <th style={head}>Estimated</th>
            </tr>
          </thead>
          <tbody>
            {running.map(a => (
              <tr key={a.id} data-testid={`plinth-alloc-${a.id}`}>
                <td style={{ padding: '4px 8px' }}>{a.id}</td>
                <td style={cell}>{a.project}</td>
                <td style={cell}>{a.gpu_count} × {a.gpu_type}</td>
                <td style={cell}>{a.accrued_cost ?? '0.00'}</td>
                <td style={cell}>{a.estimated_cost}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </InfoCard>
  );
};
