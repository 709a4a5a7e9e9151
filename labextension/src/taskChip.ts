/**
 * The task chip on a task notebook's toolbar: which task the notebook is (a dropdown when a grid
 * makes several tasks of it), its pipeline, its state as the panel shows it, and whether its
 * parameters are loaded in the kernel.
 */
import { Widget } from '@lumino/widgets';

import type { FileTask } from './api';
import type { PipelineController } from './controller';
import { pipelineIcon } from './icons';
import type { ILoaded } from './taskParameters';

export interface ITaskChipOptions {
  controller: PipelineController;
  /** The tasks the notebook is the source of (several for a grid). */
  tasks: FileTask[];
  /** The user picked another of `tasks`. */
  onSelect: (task: FileTask) => void;
  /** The user clicked the pipeline's name. */
  onShowPipeline: (pipeline: string) => void;
}

export class TaskChip extends Widget {
  constructor(private readonly _options: ITaskChipOptions) {
    super();
    this.addClass('jp-nbpipe-chip');
    this._selected = _options.tasks[0];
    const node = this.node;
    node.appendChild(pipelineIcon.element({ tag: 'span', className: 'jp-nbpipe-chip-icon' }));

    if (_options.tasks.length > 1) {
      const select = document.createElement('select');
      select.className = 'jp-nbpipe-chip-task';
      select.setAttribute('aria-label', 'Task whose parameters the kernel gets');
      for (const task of _options.tasks) {
        const option = document.createElement('option');
        option.value = task.task;
        option.textContent = task.task;
        select.appendChild(option);
      }
      select.addEventListener('change', () => {
        const task = _options.tasks.find(t => t.task === select.value);
        if (task) {
          this._selected = task;
          this._render();
          _options.onSelect(task);
        }
      });
      node.appendChild(select);
    } else {
      const name = document.createElement('span');
      name.className = 'jp-nbpipe-chip-task';
      name.textContent = this._selected.task;
      node.appendChild(name);
    }

    this._pipeline = document.createElement('button');
    this._pipeline.className = 'jp-nbpipe-chip-pipeline';
    this._pipeline.addEventListener('click', () =>
      _options.onShowPipeline(this._selected.pipeline)
    );
    node.appendChild(this._pipeline);

    this._state = document.createElement('span');
    this._state.className = 'jp-nbpipe-chip-state';
    node.appendChild(this._state);

    this._params = document.createElement('span');
    this._params.className = 'jp-nbpipe-chip-params';
    node.appendChild(this._params);

    _options.controller.changed.connect(this._render, this);
    this._render();
  }

  get selected(): FileTask {
    return this._selected;
  }

  /** Shows the outcome of the last run of the parameters in the kernel. */
  setLoaded(loaded: ILoaded): void {
    this._loaded = loaded;
    this._loads += 1;
    this._render();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._options.controller.changed.disconnect(this._render, this);
    super.dispose();
  }

  private _render(): void {
    const task = this._selected;
    this._pipeline.textContent = task.pipeline;
    this._pipeline.title = `Task ${task.task} of ${task.pipeline}: show it in the Pipelines panel`;
    const state = this._options.controller.taskState(task.pipeline, task.task);
    this._state.textContent = state?.label ?? '';
    this._state.dataset.display = state?.display ?? 'unknown';
    this.node.dataset.task = task.task;
    this.node.dataset.state = state?.label ?? '';
    const build = this._options.controller.state.build;
    this.node.dataset.build = build && build.pipeline === task.pipeline ? build.state : '';
    const loaded = this._loaded && this._loaded.task === task.task ? this._loaded : null;
    this._params.textContent = loaded
      ? loaded.ok
        ? 'parameters loaded'
        : 'parameters failed'
      : '';
    this._params.title = loaded?.message ?? '';
    this._params.dataset.ok = loaded ? String(loaded.ok) : '';
    this.node.dataset.loaded = loaded?.ok ? task.task : '';
    this.node.dataset.loads = String(this._loads); // runs in the kernel so far (scripts, tests)
  }

  private _selected: FileTask;
  private _pipeline: HTMLButtonElement;
  private _state: HTMLSpanElement;
  private _params: HTMLSpanElement;
  private _loaded: ILoaded | null = null;
  private _loads = 0;
}
