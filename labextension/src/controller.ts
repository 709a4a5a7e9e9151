/**
 * The panel's controller: owns the state (`model.ts`), feeds it the server's answers and live
 * events, and carries out the effects the model asks for. No rendering here, no state logic
 * either: every change of state goes through a function of `model.ts` (and a build's events
 * through the reducer, `reducer.ts`).
 *
 * Live state comes from the server's event bus (`serviceManager.events.stream`). The REST API is
 * read when the panel opens, when the model finds a gap in a build's events, when a build ends
 * (the server's record is the last word), and when the page comes back into view. A watchdog
 * covers what the event socket cannot tell: while a build runs and no event has come for a while,
 * the build's snapshot is read (a server restart shows up as the build ending `interrupted`), and
 * while the server does not answer, it is asked again every few seconds until it does.
 */
import { Signal, ISignal } from '@lumino/signaling';
import { IDisposable } from '@lumino/disposable';

import { ApiError, NbpipeApi, TasksOfFile, UnreachableError } from './api';
import {
  applyBusEvent,
  applyDetail,
  applyDetailError,
  applyHistory,
  applyListing,
  applySnapshot,
  buildAccepted,
  canBuild,
  canCancel,
  Effects,
  initialPanelState,
  isActive,
  PanelState,
  reconnected,
  Result,
  select,
  showAs,
  snapshotFailed,
  TaskView
} from './model';
import { EVENT_SCHEMA_ID } from './types';
import { Display, DISPLAY_LABEL, taskLayers } from './view';
import type { Accepted, BuildEnvelope } from './types';

/** What the controller needs of JupyterLab's event manager (`serviceManager.events`). */
export interface IEventSource {
  stream: {
    connect(fn: (sender: any, emission: { [key: string]: any }) => void, thisArg?: any): boolean;
    disconnect(fn: (sender: any, emission: { [key: string]: any }) => void, thisArg?: any): boolean;
  };
}

export interface IControllerOptions {
  api: NbpipeApi;
  events: IEventSource;
  /** How many builds the history shows. */
  historySize?: number;
  /** Seconds without an event of a running build before its snapshot is read. */
  quietPeriod?: number;
  /** Seconds between tries while the server does not answer. */
  retryPeriod?: number;
}

export class PipelineController implements IDisposable {
  constructor(options: IControllerOptions) {
    this.api = options.api;
    this._events = options.events;
    this.historySize = options.historySize ?? 10;
    this._quietPeriod = (options.quietPeriod ?? 8) * 1000;
    this._retryPeriod = (options.retryPeriod ?? 3) * 1000;
    this._events.stream.connect(this._onEmission, this);
    this._timer = setInterval(() => this._watch(), 1000);
  }

  readonly api: NbpipeApi;
  historySize: number;

  get state(): PanelState {
    return this._state;
  }

  /** Emitted after every change of state. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    clearInterval(this._timer);
    this._events.stream.disconnect(this._onEmission, this);
    Signal.clearData(this);
  }

  // -- what the user does -------------------------------------------------------------------------

  /** Reads everything again from the server and reconciles (the panel opens, the page shows). */
  refresh(): Promise<void> {
    if (!this._refreshing) {
      this._refreshing = this._refresh().finally(() => {
        this._refreshing = null;
      });
    }
    return this._refreshing;
  }

  private async _refresh(): Promise<void> {
    try {
      const listing = await this.api.listPipelines();
      this._dispatch(applyListing(reconnected(this._state), listing.pipelines));
      const effects: Effects = { reloadDetail: true, reloadHistory: true };
      if (this._state.build) {
        effects.loadBuild = this._state.build.id;
      }
      this._perform(effects);
    } catch (error) {
      this._failed(error);
    }
  }

  select(path: string | null): void {
    this._dispatch(select(this._state, path));
  }

  /** Shows the tasks as a graph or as a list. */
  showAs(view: TaskView): void {
    this._set(showAs(this._state, view));
  }

  /** Shows `path` (reading the listing again if it is not in it: a new pipeline file). */
  async show(path: string): Promise<void> {
    if (!this._state.pipelines?.some(p => p.path === path)) {
      await this.refresh();
    }
    this.select(path);
  }

  /**
   * Builds the pipeline `path` (default: the one picked): every outdated task, or `task` and
   * what it needs, or with `skipUpstream` only `task`. The panel follows it like any build.
   */
  async build(
    options: { force?: boolean; path?: string; task?: string; skipUpstream?: boolean } = {}
  ): Promise<void> {
    if (options.path && options.path !== this._state.selected) {
      await this.show(options.path);
    }
    if (!canBuild(this._state)) {
      return;
    }
    const pipeline = this._state.selected!;
    this._set({ ...this._state, request: 'build', notice: null });
    let accepted: Accepted;
    try {
      accepted = await this.api.startBuild(
        pipeline,
        !!options.force,
        options.task,
        !!options.skipUpstream
      );
    } catch (error) {
      this._set({ ...this._state, request: null });
      if (error instanceof ApiError && error.status === 409 && error.body.build_id) {
        const shown = this._state.build;
        if (shown && shown.id === error.body.build_id && !isActive(shown)) {
          // Its outcome came (build_finished) but its process has not ended yet (build_ended):
          // the pipeline is free in a moment, so the build starts then rather than being lost.
          this._afterEnd = { ...options, path: pipeline };
          if (shown.exit_code !== null) {
            this._startAfterEnd(); // it ended while this request was on its way
          }
          return;
        }
        this._set({ ...this._state, notice: `${pipeline} is already building.` });
        this._perform({ loadBuild: error.body.build_id });
        return;
      }
      this._failed(error);
      return;
    }
    this._lastEvent = Date.now();
    this._dispatch(buildAccepted(this._state, accepted, Date.now() / 1000));
  }

  async cancel(): Promise<void> {
    const build = this._state.build;
    if (!build || !canCancel(this._state)) {
      return;
    }
    this._set({ ...this._state, request: 'cancel', notice: null });
    try {
      await this.api.cancelBuild(build.id);
      this._set({ ...this._state, request: null });
    } catch (error) {
      this._set({ ...this._state, request: null });
      if (error instanceof ApiError && error.status === 409) {
        this._perform({ loadBuild: build.id }); // it had ended: show how
        return;
      }
      this._failed(error);
    }
  }

  /**
   * The tasks a file is the source or a product of, with their injected parameters (one request:
   * the server finds the pipelines and caches what it loaded).
   */
  tasksOf(path: string): Promise<TasksOfFile> {
    return this.api.tasksOf(path);
  }

  /**
   * How the panel shows `task` of `pipeline` now (its state in the build shown, else its status:
   * "up to date", "outdated", ...), or null when the panel does not show that pipeline.
   */
  taskState(pipeline: string, task: string): { display: Display; label: string } | null {
    if (this._state.selected !== pipeline) {
      return null;
    }
    for (const row of taskLayers(this._state).flat()) {
      if (row.name === task) {
        const label = row.run ? DISPLAY_LABEL[row.display] : (row.status ?? '');
        return { display: row.display, label };
      }
    }
    return null;
  }

  // -- the server's answers -----------------------------------------------------------------------

  private _onEmission(_: unknown, emission: { [key: string]: any }): void {
    if (emission.schema_id !== EVENT_SCHEMA_ID) {
      return;
    }
    const envelope = emission as unknown as BuildEnvelope;
    if (!envelope.event || typeof envelope.event !== 'object') {
      return;
    }
    if (envelope.pipeline === this._state.selected) {
      this._lastEvent = Date.now();
    }
    this._dispatch(applyBusEvent(this._state, envelope, Date.now() / 1000));
    if (envelope.event.event === 'build_ended' && envelope.pipeline === this._afterEnd?.path) {
      this._startAfterEnd();
    }
  }

  /** Starts the build that was asked for while the pipeline's last build was ending. */
  private _startAfterEnd(): void {
    const options = this._afterEnd;
    this._afterEnd = null;
    if (options) {
      void this.build(options);
    }
  }

  private _perform(effects: Effects): void {
    if (effects.loadBuild) {
      const id = effects.loadBuild;
      void this._coalesced(`build:${id}`, () => this._loadBuild(id));
    }
    if (effects.reloadHistory) {
      void this._coalesced('history', () => this._loadHistory());
    }
    if (effects.reloadDetail) {
      void this._coalesced('detail', () => this._loadDetail());
    }
  }

  /** Runs `load` now, or once more after the run in flight (never two at once). */
  private async _coalesced(key: string, load: () => Promise<void>): Promise<void> {
    if (this._inflight.has(key)) {
      this._again.add(key);
      return;
    }
    this._inflight.add(key);
    try {
      await load();
    } finally {
      this._inflight.delete(key);
      if (this._again.delete(key)) {
        void this._coalesced(key, load);
      }
    }
  }

  private async _loadBuild(id: string): Promise<void> {
    try {
      const snapshot = await this.api.getBuild(id);
      this._lastEvent = Date.now();
      this._dispatch(applySnapshot(reconnected(this._state), snapshot));
    } catch (error) {
      const reachable = !(error instanceof UnreachableError);
      this._set(snapshotFailed(this._state, id, reachable));
    }
  }

  private async _loadHistory(): Promise<void> {
    const path = this._state.selected;
    if (!path) {
      return;
    }
    try {
      const page = await this.api.listBuilds(path, this.historySize);
      this._set(applyHistory(this._state, path, page.builds));
    } catch (error) {
      this._failed(error);
    }
  }

  private async _loadDetail(): Promise<void> {
    const path = this._state.selected;
    if (!path) {
      return;
    }
    try {
      const detail = await this.api.getPipeline(path);
      this._dispatch(applyDetail(this._state, detail));
    } catch (error) {
      if (error instanceof ApiError) {
        const where = error.body.error?.file
          ? ` (${error.body.error.file}${error.body.error.line ? `:${error.body.error.line}` : ''})`
          : '';
        this._set(applyDetailError(this._state, path, error.message + where));
      } else {
        this._failed(error);
      }
    }
  }

  private _failed(error: unknown): void {
    if (error instanceof UnreachableError) {
      this._set({
        ...this._state,
        connected: false,
        notice: 'The server does not answer; retrying…'
      });
    } else {
      this._set({ ...this._state, notice: (error as Error)?.message ?? String(error) });
    }
  }

  /** Once a second: reconnect while the server is away; check on quiet running builds. */
  private _watch(): void {
    const now = Date.now();
    if (!this._state.connected) {
      if (now - this._lastTry >= this._retryPeriod) {
        this._lastTry = now;
        void this.refresh();
      }
      return;
    }
    const build = this._state.build;
    if (isActive(build) && now - this._lastEvent >= this._quietPeriod && !this._state.loading) {
      this._lastEvent = now;
      this._perform({ loadBuild: build!.id });
    }
  }

  private _dispatch(result: Result): void {
    this._set(result.state);
    this._perform(result.effects);
  }

  private _set(state: PanelState): void {
    if (this._disposed || state === this._state) {
      return;
    }
    this._state = state;
    this._changed.emit();
  }

  private _state: PanelState = initialPanelState();
  private _changed = new Signal<this, void>(this);
  private _events: IEventSource;
  private _quietPeriod: number;
  private _retryPeriod: number;
  private _timer: ReturnType<typeof setInterval>;
  private _lastEvent = Date.now();
  private _lastTry = 0;
  private _inflight = new Set<string>();
  private _again = new Set<string>();
  private _refreshing: Promise<void> | null = null;
  private _afterEnd: {
    force?: boolean;
    path: string;
    task?: string;
    skipUpstream?: boolean;
  } | null = null;
  private _disposed = false;
}
