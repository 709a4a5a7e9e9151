/**
 * A task's parameters in a notebook's kernel, never in its file.
 *
 * A build runs a task notebook with an injected-parameters cell after its `parameters` cell
 * (`upstream` with the upstream products' paths, `product`, the params and grid values). When
 * the notebook is opened to work on it, the same code (the server renders it with the engine's
 * own function: `GET tasks-of`) is run silently in the kernel when the kernel starts or
 * restarts, and on demand. Nothing is added to the document, so saving writes the file as it
 * was, and no absolute path ends up in version control. A failure (a param the kernel cannot
 * take) is shown as a notification, not only logged.
 *
 * Running the cell tagged `parameters` (its placeholders: `upstream = ['clean']`,
 * `product = None`) would undo them, so, as a build's injected cell follows that cell, the
 * parameters run again after it: just before the next cell's code is sent to the kernel (so "Run
 * All" sees them in order), or when it finishes if no cell follows.
 */
import { ISessionContext, Notification } from '@jupyterlab/apputils';
import type { Kernel, KernelMessage } from '@jupyterlab/services';
import { Notebook, NotebookActions } from '@jupyterlab/notebook';
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import type { FileTask } from './api';

/** What is read of a notebook cell (its tags). */
interface ITaggedCell {
  model: { getMetadata(key: string): unknown };
}

/** When the parameters were last run in the kernel, and for which task. */
export interface ILoaded {
  task: string;
  ok: boolean;
  message: string;
}

export class TaskParameters implements IDisposable {
  constructor(
    private readonly _session: ISessionContext,
    private readonly _notebook: Notebook
  ) {
    _session.kernelChanged.connect(this._onKernelChanged, this);
    _session.statusChanged.connect(this._onStatus, this);
    NotebookActions.executionScheduled.connect(this._onScheduled, this);
    NotebookActions.executed.connect(this._onExecuted, this);
  }

  /** The task whose parameters the kernel gets (null: none, nothing is run). */
  get task(): FileTask | null {
    return this._task;
  }

  /** Sets the task; a different task's parameters run in the kernel now, if one runs. */
  set task(task: FileTask | null) {
    const changed = task?.task !== this._task?.task || task?.pipeline !== this._task?.pipeline;
    this._task = task;
    if (changed && task && this._session.session?.kernel) {
      this._pending = false;
      void this.load();
    }
  }

  /** Emitted after each run of the parameters in the kernel. */
  get loaded(): ISignal<this, ILoaded> {
    return this._loaded;
  }

  get lastLoaded(): ILoaded | null {
    return this._last;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    NotebookActions.executionScheduled.disconnect(this._onScheduled, this);
    NotebookActions.executed.disconnect(this._onExecuted, this);
    Signal.clearData(this);
  }

  /**
   * Runs the task's injected parameters in the kernel (silently: no output, no history, no
   * execution count). Resolves to whether it worked; a failure is also notified.
   */
  async load(): Promise<boolean> {
    const task = this._task;
    const kernel = this._session.session?.kernel;
    if (!task || !kernel) {
      return false;
    }
    if (!task.injected_code) {
      return this._report(
        task,
        false,
        `The parameters of ${task.task} cannot be loaded: ${task.injected_error ?? 'none were rendered'}`
      );
    }
    let reply: KernelMessage.IExecuteReplyMsg;
    try {
      reply = await kernel.requestExecute(
        { code: task.injected_code, silent: true, store_history: false },
        true
      ).done;
    } catch (error) {
      return this._report(
        task,
        false,
        `The parameters of ${task.task} were not loaded: ${(error as Error)?.message ?? error}`
      );
    }
    const content = reply.content as { status: string; ename?: string; evalue?: string };
    if (content.status !== 'ok') {
      const why = content.ename ? `${content.ename}: ${content.evalue}` : content.status;
      return this._report(task, false, `Loading the parameters of ${task.task} failed: ${why}`);
    }
    const names = task.injected_code
      .split('\n')
      .map(line => /^([A-Za-z_]\w*)\s*(<-|=)/.exec(line)?.[1])
      .filter(name => !!name);
    return this._report(task, true, `Loaded ${task.task}'s parameters: ${names.join(', ')}`);
  }

  private _report(task: FileTask, ok: boolean, message: string): boolean {
    if (this._disposed) {
      return ok;
    }
    if (!ok) {
      Notification.error(message, { autoClose: false });
    }
    this._last = { task: task.task, ok, message };
    this._loaded.emit(this._last);
    return ok;
  }

  /** A new kernel (the notebook's first, or another one picked): load once it is idle. */
  private _onKernelChanged(
    _: ISessionContext,
    change: { newValue: Kernel.IKernelConnection | null }
  ): void {
    if (!change.newValue) {
      return;
    }
    this._pending = true;
    if (change.newValue.status === 'idle') {
      this._loadPending();
    }
  }

  /** A restart (asked or automatic) leaves a kernel without the parameters: load them again
   * once it is idle. */
  private _onStatus(_: ISessionContext, status: Kernel.Status): void {
    if (status === 'restarting' || status === 'autorestarting' || status === 'starting') {
      this._pending = true;
    } else if (status === 'idle') {
      this._loadPending();
    }
  }

  /** A cell of this notebook is about to be sent to the kernel. */
  private _onScheduled(_: unknown, args: { notebook: Notebook; cell: ITaggedCell }): void {
    if (args.notebook !== this._notebook || !this._task) {
      return;
    }
    if (this._pending) {
      // A kernel that (re)started and is not idle yet: the parameters go before this cell.
      this._pending = false;
      void this.load();
    }
    if (isParametersCell(args.cell)) {
      this._afterParameters = true;
    } else if (this._afterParameters) {
      this._afterParameters = false;
      void this.load(); // sent now, so the kernel runs it before this cell
    }
  }

  /** The parameters cell ran and no cell was sent after it: load the parameters again. */
  private _onExecuted(_: unknown, args: { notebook: Notebook; cell: ITaggedCell }): void {
    if (args.notebook === this._notebook && this._afterParameters && isParametersCell(args.cell)) {
      this._afterParameters = false;
      void this.load();
    }
  }

  private _loadPending(): void {
    if (this._pending && this._task) {
      this._pending = false;
      void this.load();
    }
  }

  private _task: FileTask | null = null;
  private _pending = false;
  private _afterParameters = false;
  private _last: ILoaded | null = null;
  private _loaded = new Signal<this, ILoaded>(this);
  private _disposed = false;
}

/** Whether `cell` is the one tagged `parameters` (where a build injects its cell after). */
function isParametersCell(cell: ITaggedCell): boolean {
  const tags = cell.model.getMetadata('tags');
  return Array.isArray(tags) && tags.includes('parameters');
}
