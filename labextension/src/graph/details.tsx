/**
 * Below the graph, what the node picked is: a task's state and time, its source, its failure's
 * summary and its products (links, as in the list); a folded grid's counts and a way to unfold it.
 */
import * as React from 'react';

import { PanelState } from '../model';
import type { IPanelActions } from '../panel';
import { Products } from '../products';
import { cellProgress, Display, failureView, formatDuration, taskElapsed } from '../view';
import { GraphNode, nodeStateLine } from './graph';

/** What the node picked is: its state, its source, its products, its failure. */
export function Details(props: {
  node: GraphNode;
  state: PanelState;
  now: number;
  actions: IPanelActions;
  onUnfold: (grid: string) => void;
  onFold: ((grid: string) => void) | null;
}): JSX.Element {
  const { node, state, now, actions, onUnfold, onFold } = props;
  if (node.kind === 'group') {
    return (
      <div className="jp-nbpipe-graph-details" role="group" aria-label={`Grid ${node.label}`}>
        <div className="jp-nbpipe-graph-details-title">
          {node.label} <span className="jp-nbpipe-graph-details-state">{nodeStateLine(node)}</span>
        </div>
        <button type="button" className="jp-nbpipe-link" onClick={() => onUnfold(node.grid!)}>
          Show its {node.members.length} tasks
        </button>
      </div>
    );
  }
  const row = node.members[0];
  const run = row.run;
  const elapsed = run ? formatDuration(taskElapsed(run, now, state.skew)) : '';
  const failure = run ? failureView(run) : null;
  const cell = run ? cellProgress(run, now, state.skew) : null;
  return (
    <div className="jp-nbpipe-graph-details" role="group" aria-label={`Task ${row.name}`}>
      <div className="jp-nbpipe-graph-details-title">
        {row.name}{' '}
        <span className="jp-nbpipe-graph-details-state">
          {nodeStateLine(node)}
          {elapsed && shownElapsed(row.display) ? ` · ${elapsed}` : ''}
        </span>
      </div>
      {row.source && (
        <button
          type="button"
          className="jp-nbpipe-link"
          aria-label={`Open the source of task ${row.name}: ${row.source}`}
          onClick={() => actions.open(row.source!, row.kind === 'notebook')}
        >
          {row.source}
        </button>
      )}
      {cell && <div className="jp-nbpipe-task-cell">{cell}</div>}
      {failure ? (
        <div className="jp-nbpipe-graph-details-failure">{failure.summary}</div>
      ) : (
        run?.detail && <div className="jp-nbpipe-task-detail">{run.detail}</div>
      )}
      <Products task={row.name} products={row.products} actions={actions} />
      {row.grid && onFold && (
        <button type="button" className="jp-nbpipe-link" onClick={() => onFold(row.grid!)}>
          Group the grid {row.grid}
        </button>
      )}
    </div>
  );
}

function shownElapsed(display: Display): boolean {
  return display === 'running' || display === 'done' || display === 'failed';
}
