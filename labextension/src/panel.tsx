/**
 * The sidebar panel: a thin view of the controller's state (`model.ts` and the reducer decide
 * everything, `view.ts` computes what to show).
 */
import { ReactWidget, UseSignal } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import * as React from 'react';

import { PipelineController } from './controller';
import { pipelineIcon } from './icons';
import { GraphView } from './graph/view';
import { canBuild, canCancel, isActive, PanelState, TaskView } from './model';
import { Products } from './products';
import type { BuildSummary, TaskState } from './types';
import {
  buildElapsed,
  buildLabel,
  cellProgress,
  DISPLAY_LABEL,
  failureView,
  FailureView,
  formatDuration,
  TaskRow,
  taskElapsed,
  taskLayers
} from './view';

/** What the panel asks JupyterLab to do. */
export interface IPanelActions {
  /**
   * Open a file of the server root in JupyterLab (a notebook, a CSV...). `asNotebook`: a task's
   * source that is a notebook, maybe a percent script (opened as a notebook when jupytext is there).
   */
  open(path: string, asNotebook?: boolean): void;
  /** Open a file as the server serves it, in a new browser tab (an HTML report). */
  openInBrowserTab(path: string): void;
  /**
   * Build one task of the pipeline shown: with what it needs that is outdated (`upToHere`), or
   * alone; `force`: rebuild it (and with `upToHere`, what it needs) even if up to date.
   */
  buildTask(task: string, options: { force: boolean; upToHere: boolean }): void;
}

export class PipelinePanel extends ReactWidget {
  constructor(
    readonly controller: PipelineController,
    private readonly _actions: IPanelActions
  ) {
    super();
    this.id = 'nbpipe-panel';
    this.addClass('jp-nbpipe-panel');
    this.title.icon = pipelineIcon;
    this.title.caption = 'Pipelines (nbpipe)';
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', 'nbpipe pipelines');
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this.controller.refresh();
  }

  render(): JSX.Element {
    return (
      <UseSignal signal={this.controller.changed}>
        {() => <PanelView controller={this.controller} actions={this._actions} />}
      </UseSignal>
    );
  }
}

function PanelView(props: { controller: PipelineController; actions: IPanelActions }): JSX.Element {
  const { controller, actions } = props;
  const state = controller.state;
  const [force, setForce] = React.useState(false);
  const now = useClock(isActive(state.build));
  const layers = taskLayers(state);
  return (
    <div className="jp-nbpipe-body">
      <header className="jp-nbpipe-header">
        <h2 className="jp-nbpipe-title">Pipelines</h2>
      </header>
      <Picker state={state} onSelect={path => controller.select(path)} />
      <div className="jp-nbpipe-actions" role="toolbar" aria-label="Build actions">
        <button
          type="button"
          className="jp-mod-styled jp-mod-accept jp-nbpipe-build"
          disabled={!canBuild(state)}
          aria-label={force ? 'Build pipeline, forcing every task' : 'Build pipeline'}
          title="Build the outdated tasks (with Force: every task)"
          onClick={() => void controller.build({ force })}
        >
          {state.request === 'build' ? 'Starting…' : 'Build pipeline'}
        </button>
        <label className="jp-nbpipe-force" title="Rebuild every task, even those up to date">
          <input
            type="checkbox"
            checked={force}
            aria-label="Force: rebuild every task"
            onChange={event => setForce(event.target.checked)}
          />
          Force
        </label>
        <button
          type="button"
          className="jp-mod-styled jp-mod-warn jp-nbpipe-cancel"
          disabled={!canCancel(state)}
          aria-label="Cancel the build"
          title="Stop the running build: its kernels stop, unfinished products are discarded"
          onClick={() => void controller.cancel()}
        >
          {state.build?.state === 'cancelling' ? 'Cancelling…' : 'Cancel'}
        </button>
      </div>
      <BuildStatus state={state} now={now} />
      {state.notice && (
        <div className="jp-nbpipe-notice" role="alert">
          {state.notice}
        </div>
      )}
      {state.detailError && (
        <div className="jp-nbpipe-spec-error" role="alert">
          <strong>The pipeline cannot be loaded.</strong> {state.detailError}
        </div>
      )}
      {state.detail?.warnings.map(warning => (
        <div key={warning} className="jp-nbpipe-warning">
          {warning}
        </div>
      ))}
      <section className="jp-nbpipe-section" aria-label="Tasks">
        <div className="jp-nbpipe-section-head">
          <h3 className="jp-nbpipe-section-title">Tasks</h3>
          <ViewToggle view={state.view} onChange={view => controller.showAs(view)} />
        </div>
        {layers.length === 0 && state.selected && !state.detailError && (
          <div className="jp-nbpipe-empty">Loading…</div>
        )}
        {state.view === 'graph' && layers.length > 0 && (
          <GraphView rows={layers.flat()} state={state} now={now} actions={actions} />
        )}
        {state.view === 'list' && (
          <ol className="jp-nbpipe-dag" aria-label="Tasks, upstream first">
            {layers.map((layer, index) => (
              <li key={index} className="jp-nbpipe-layer" data-layer={index}>
                <ul className="jp-nbpipe-layer-tasks">
                  {layer.map(row => (
                    <TaskItem key={row.name} row={row} state={state} now={now} actions={actions} />
                  ))}
                </ul>
              </li>
            ))}
          </ol>
        )}
      </section>
      <History state={state} now={now} />
    </div>
  );
}

/** Graph or list: how the tasks are shown. */
function ViewToggle(props: { view: TaskView; onChange: (view: TaskView) => void }): JSX.Element {
  const options: [TaskView, string][] = [
    ['graph', 'Graph'],
    ['list', 'List']
  ];
  return (
    <div className="jp-nbpipe-view-toggle" role="radiogroup" aria-label="Show the tasks as">
      {options.map(([view, label]) => (
        <button
          key={view}
          type="button"
          role="radio"
          aria-checked={props.view === view}
          className={`jp-nbpipe-view-${view}${props.view === view ? ' jp-mod-active' : ''}`}
          onClick={() => props.onChange(view)}
        >
          {label}
        </button>
      ))}
    </div>
  );
}

/** Re-renders every second while `ticking` (running tasks show their elapsed time). */
function useClock(ticking: boolean): number {
  const [now, setNow] = React.useState(() => Date.now() / 1000);
  React.useEffect(() => {
    if (!ticking) {
      return;
    }
    const timer = setInterval(() => setNow(Date.now() / 1000), 1000);
    return () => clearInterval(timer);
  }, [ticking]);
  return ticking ? now : Date.now() / 1000;
}

function Picker(props: { state: PanelState; onSelect: (path: string) => void }): JSX.Element {
  const { state } = props;
  if (state.pipelines === null) {
    return <div className="jp-nbpipe-picker jp-nbpipe-empty">Looking for pipelines…</div>;
  }
  if (!state.pipelines.length) {
    return (
      <div className="jp-nbpipe-picker jp-nbpipe-empty">
        No <code>pipeline.yaml</code> under the server root.
      </div>
    );
  }
  return (
    <label className="jp-nbpipe-picker">
      <span className="jp-nbpipe-picker-label">Pipeline</span>
      <select
        className="jp-mod-styled"
        aria-label="Pipeline"
        value={state.selected ?? ''}
        onChange={event => props.onSelect(event.target.value)}
      >
        {state.pipelines.map(p => (
          <option key={p.path} value={p.path}>
            {p.path}
            {p.building ? ' (building)' : ''}
          </option>
        ))}
      </select>
    </label>
  );
}

function BuildStatus(props: { state: PanelState; now: number }): JSX.Element {
  const { state, now } = props;
  const build = state.build;
  let text = '';
  if (!state.connected) {
    text = 'Connection to the server lost';
  } else if (build) {
    const elapsed = formatDuration(buildElapsed(build, now, state.skew));
    const verb = isActive(build) ? 'Build' : 'Last build';
    text = `${verb} ${buildLabel(build.state)}${elapsed ? ` · ${elapsed}` : ''}`;
  } else if (state.detail) {
    text = 'Never built from JupyterLab';
  }
  const why = build ? build.message || build.stop_reason : null;
  const explain = build && !isActive(build) && why && build.state !== 'success' ? why : null;
  return (
    <div
      className="jp-nbpipe-status"
      role="status"
      aria-live="polite"
      data-build-state={build?.state ?? ''}
      data-connected={state.connected ? 'true' : 'false'}
    >
      <span>{text}</span>
      {build && isActive(build) && <DashboardLink build={build} />}
      {explain && <div className="jp-nbpipe-status-message">{explain}</div>}
    </div>
  );
}

function TaskItem(props: {
  row: TaskRow;
  state: PanelState;
  now: number;
  actions: IPanelActions;
}): JSX.Element {
  const { row, state, now, actions } = props;
  const run = row.run;
  const failure = run ? failureView(run) : null;
  const elapsed = run ? formatDuration(taskElapsed(run, now, state.skew)) : '';
  const cell = run ? cellProgress(run, now, state.skew) : null;
  const label = row.display === 'idle' ? (row.status ?? '') : DISPLAY_LABEL[row.display];
  // What the pipeline's status says now, when it differs from what the last build left.
  const stale =
    row.status && row.status !== 'up to date' && !isActive(state.build) && !state.detailStale;
  return (
    <li className="jp-nbpipe-task" data-task={row.name} data-state={row.display}>
      <div className="jp-nbpipe-task-line">
        <span className={`jp-nbpipe-dot jp-nbpipe-dot-${row.display}`} aria-hidden="true" />
        {row.source ? (
          <button
            type="button"
            className="jp-nbpipe-link jp-nbpipe-task-name"
            aria-label={`Open the source of task ${row.name}: ${row.source}`}
            title={`Open ${row.source}`}
            onClick={() => actions.open(row.source!, row.kind === 'notebook')}
          >
            {row.name}
          </button>
        ) : (
          <span className="jp-nbpipe-task-name">{row.name}</span>
        )}
        <span
          className="jp-nbpipe-task-state"
          title={row.display === 'skipped' ? 'Up to date: not rebuilt' : undefined}
        >
          {label}
          {elapsed &&
          (row.display === 'running' || row.display === 'done' || row.display === 'failed')
            ? ` · ${elapsed}`
            : ''}
        </span>
      </div>
      {cell && <div className="jp-nbpipe-task-cell">{cell}</div>}
      {run && run.output && row.display === 'running' && (
        <details className="jp-nbpipe-task-output">
          <summary>Output</summary>
          <pre aria-label={`Recent output of ${row.name}`}>{run.output}</pre>
        </details>
      )}
      {row.upstream.length > 0 && (
        <div className="jp-nbpipe-task-upstream">
          <span aria-hidden="true">↑ </span>
          <span className="jp-nbpipe-visually-hidden">upstream: </span>
          {row.upstream.join(', ')}
        </div>
      )}
      {stale && row.display !== 'idle' && row.status && (
        <div className="jp-nbpipe-task-now">now: {row.status}</div>
      )}
      {run && run.detail && row.display !== 'failed' && (
        <div className="jp-nbpipe-task-detail">{run.detail}</div>
      )}
      <Products task={row.name} products={row.products} actions={actions} />
      {run && failure && <Failure task={run} failure={failure} actions={actions} />}
    </li>
  );
}

function Failure(props: {
  task: TaskState;
  failure: FailureView;
  actions: IPanelActions;
}): JSX.Element {
  const { failure, actions } = props;
  const partial = failure.partialNotebook;
  return (
    <div className="jp-nbpipe-failure" role="group" aria-label={`Error of ${props.task.name}`}>
      <div className="jp-nbpipe-failure-summary">{failure.summary}</div>
      {failure.where && failure.code && (
        <div className="jp-nbpipe-failure-code">
          <span className="jp-nbpipe-failure-where">{failure.where}:</span>{' '}
          <code>{failure.code}</code>
        </div>
      )}
      {failure.traceback && (
        <details className="jp-nbpipe-traceback">
          <summary>Traceback</summary>
          <pre>{failure.traceback}</pre>
        </details>
      )}
      {partial && (
        <button
          type="button"
          className="jp-nbpipe-link"
          aria-label={`Open the partially executed notebook ${partial}`}
          onClick={() => actions.open(partial)}
        >
          Open the partially executed notebook
        </button>
      )}
    </div>
  );
}

function History(props: { state: PanelState; now: number }): JSX.Element | null {
  const { state, now } = props;
  if (!state.selected) {
    return null;
  }
  return (
    <section className="jp-nbpipe-section" aria-label="Build history">
      <h3 className="jp-nbpipe-section-title">History</h3>
      {state.history.length === 0 ? (
        <div className="jp-nbpipe-empty">No builds yet.</div>
      ) : (
        <ul className="jp-nbpipe-history">
          {state.history.map(build => (
            <HistoryItem key={build.id} build={build} now={now} skew={state.skew} />
          ))}
        </ul>
      )}
    </section>
  );
}

function HistoryItem(props: { build: BuildSummary; now: number; skew: number }): JSX.Element {
  const { build, now, skew } = props;
  const when = new Date(build.created * 1000);
  const duration = formatDuration(buildElapsed(build, now, skew));
  const why = build.message || build.stop_reason;
  const counts = Object.entries(build.counts ?? {})
    .filter(([, n]) => n > 0)
    .map(([state, n]) => `${n} ${state.replace('_', ' ')}`)
    .join(', ');
  return (
    <li className="jp-nbpipe-history-item" data-build={build.id} data-state={build.state}>
      <span className={`jp-nbpipe-dot jp-nbpipe-dot-build-${build.state}`} aria-hidden="true" />
      <span className="jp-nbpipe-history-state">{buildLabel(build.state)}</span>
      <time dateTime={when.toISOString()} title={when.toLocaleString()}>
        {when.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}
        {isToday(when) ? '' : ` ${when.toLocaleDateString()}`}
      </time>
      <span className="jp-nbpipe-history-duration">{duration}</span>
      {build.force && <span className="jp-nbpipe-tag">forced</span>}
      <DashboardLink build={build} />
      {(counts || why) && (
        <div className="jp-nbpipe-history-detail">
          {counts}
          {why && build.state !== 'success' ? ` — ${why}` : ''}
        </div>
      )}
    </li>
  );
}

/** The Dask dashboard of a build on a Dask cluster (build_started's link; http(s) only). */
function DashboardLink(props: { build: BuildSummary }): JSX.Element | null {
  const link = props.build.dashboard;
  if (!link || !/^https?:\/\//.test(link)) {
    return null;
  }
  return (
    <a className="jp-nbpipe-dashboard" href={link} target="_blank" rel="noopener noreferrer">
      Dask dashboard
    </a>
  );
}

function isToday(date: Date): boolean {
  return date.toDateString() === new Date().toDateString();
}
