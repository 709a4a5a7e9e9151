/**
 * The toolbar of notebooks that belong to a pipeline, found with one `GET tasks-of` request:
 *
 *   - a task's source: the task chip (task, pipeline, state), "Load task parameters" (also run
 *     by itself when the kernel starts or restarts: `taskParameters.ts`) and a "Build task" menu
 *     (this task, up to here, their forced variants, the whole pipeline);
 *   - a task's product (an executed notebook): a "Build pipeline" button.
 *
 * The command "Load Task Parameters" (`CommandIDs.loadTaskParameters`) acts on the current
 * notebook.
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, Notification, ToolbarButton } from '@jupyterlab/apputils';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { INotebookModel, INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { DisposableDelegate, DisposableSet, IDisposable } from '@lumino/disposable';
import { Menu } from '@lumino/widgets';

import { ApiError, FileTask } from '../api';
import { PipelineController } from '../controller';
import { pipelineIcon } from '../icons';
import { TaskChip } from '../taskChip';
import { TaskParameters } from '../taskParameters';
import { CommandIDs, IBuildTaskArgs, IPipelineController } from '../tokens';

/** Widget factories that show notebooks (JupyterLab's, and jupytext's for percent scripts). */
const NOTEBOOK_FACTORIES = ['Notebook', 'Jupytext Notebook'];

/** Each open task notebook's "Load task parameters" action, for the command. */
const loaderOf = new WeakMap<NotebookPanel, () => Promise<void>>();

export const notebookToolbarPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyterlab-nbpipe:notebook-toolbar',
  description:
    "A task notebook's toolbar: the task chip, its parameters in the kernel, Build task / up to here.",
  autoStart: true,
  requires: [IPipelineController],
  optional: [INotebookTracker, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    controller: PipelineController,
    tracker: INotebookTracker | null,
    palette: ICommandPalette | null
  ) => {
    const extension = new NotebookTaskToolbar(controller, app.commands);
    for (const factory of NOTEBOOK_FACTORIES) {
      app.docRegistry.addWidgetExtension(factory, extension);
    }
    const current = () => {
      const panel = tracker?.currentWidget;
      return panel ? loaderOf.get(panel) : undefined;
    };
    app.commands.addCommand(CommandIDs.loadTaskParameters, {
      label: 'Load Task Parameters',
      caption:
        "Run the task's injected parameters (upstream, product, params) in the notebook's kernel, " +
        'as a build injects them; the file is not changed',
      isEnabled: () => !!current(),
      execute: async () => {
        await current()?.();
      }
    });
    palette?.addItem({ command: CommandIDs.loadTaskParameters, category: 'Pipelines' });
  }
};

class NotebookTaskToolbar implements DocumentRegistry.IWidgetExtension<
  NotebookPanel,
  INotebookModel
> {
  constructor(
    private readonly _controller: PipelineController,
    private readonly _commands: JupyterFrontEnd['commands']
  ) {}

  createNew(panel: NotebookPanel, context: DocumentRegistry.IContext<INotebookModel>): IDisposable {
    const items = new DisposableSet();
    let disposed = false;
    void context.ready
      .then(() => this._controller.tasksOf(context.path))
      .then(answer => {
        if (disposed || panel.isDisposed) {
          return;
        }
        // Tasks that inject parameters (notebooks, scripts), not a function's module.
        const sources = answer.tasks.filter(
          t => t.role === 'source' && (t.injected_code !== null || t.injected_error !== null)
        );
        if (sources.length) {
          this._taskItems(panel, context.path, sources, items);
        } else if (answer.tasks.length) {
          this._pipelineButton(panel, answer.tasks[0].pipeline, items);
        } else if (answer.errors.length) {
          const [first] = answer.errors;
          Notification.warning(
            `nbpipe: ${first.pipeline} cannot be loaded, so this notebook's task is unknown: ` +
              first.message,
            { autoClose: false }
          );
        }
      })
      .catch(reason => {
        if (reason instanceof ApiError && reason.status === 403) {
          console.info('nbpipe: no task parameters for', context.path, '-', reason.message);
        } else {
          console.warn('nbpipe: no task for', context.path, reason);
        }
      });
    return new DisposableDelegate(() => {
      disposed = true;
      items.dispose();
    });
  }

  /** The chip, "Load task parameters" and the "Build task" menu of a task's source. */
  private _taskItems(
    panel: NotebookPanel,
    path: string,
    tasks: FileTask[],
    items: DisposableSet
  ): void {
    const parameters = new TaskParameters(panel.sessionContext, panel.content);
    const menu = new Menu({ commands: this._commands });
    menu.addClass('jp-nbpipe-build-menu');
    const fillMenu = (task: FileTask) => {
      menu.clearItems();
      const args = (force: boolean, upToHere: boolean): IBuildTaskArgs => ({
        pipeline: task.pipeline,
        task: task.task,
        force,
        upToHere
      });
      menu.addItem({ command: CommandIDs.buildTask, args: { ...args(false, false) } });
      menu.addItem({ command: CommandIDs.buildTask, args: { ...args(false, true) } });
      menu.addItem({ type: 'separator' });
      menu.addItem({ command: CommandIDs.buildTask, args: { ...args(true, false) } });
      menu.addItem({ command: CommandIDs.buildTask, args: { ...args(true, true) } });
      menu.addItem({ type: 'separator' });
      menu.addItem({ command: CommandIDs.build, args: { path: task.pipeline } });
    };
    const chip = new TaskChip({
      controller: this._controller,
      tasks,
      onSelect: task => {
        fillMenu(task);
        parameters.task = task;
      },
      onShowPipeline: pipeline => {
        void this._commands.execute(CommandIDs.open).catch(() => undefined);
        void this._controller.show(pipeline);
      }
    });
    parameters.loaded.connect((_, loaded) => chip.setLoaded(loaded));
    /** On demand, the parameters as the server renders them now (after the notebook's
     * parameters cell or the spec was edited and saved), else as they were. */
    const reload = async (): Promise<void> => {
      const { pipeline, task } = chip.selected;
      const answer = await this._controller.tasksOf(path).catch(() => null);
      const fresh = answer?.tasks.find(t => t.pipeline === pipeline && t.task === task);
      if (fresh) {
        parameters.task = fresh;
      }
      await parameters.load();
    };
    fillMenu(tasks[0]);

    const load = new ToolbarButton({
      label: 'Load task parameters',
      tooltip:
        "Run this task's parameters (upstream, product, params) in the kernel, as a build " +
        'injects them (done when the kernel starts or restarts; the file is not changed)',
      className: 'jp-nbpipe-toolbar-load-parameters',
      onClick: () => void reload()
    });
    const build: ToolbarButton = new ToolbarButton({
      icon: pipelineIcon,
      label: 'Build task',
      tooltip: 'Build this task, or up to here (the task and what it needs), or the pipeline',
      className: 'jp-nbpipe-toolbar-build-task',
      onClick: () => {
        const box = build.node.getBoundingClientRect();
        menu.open(box.left, box.bottom);
      }
    });
    panel.toolbar.insertItem(10, 'nbpipe-task', chip);
    panel.toolbar.insertItem(11, 'nbpipe-load-parameters', load);
    panel.toolbar.insertItem(12, 'nbpipe-build-task', build);
    loaderOf.set(panel, reload);
    parameters.task = tasks[0];
    items.add(chip);
    items.add(load);
    items.add(build);
    items.add(menu);
    items.add(parameters);
    items.add(new DisposableDelegate(() => loaderOf.delete(panel)));
  }

  /** "Build pipeline" on an executed notebook (a task's product). */
  private _pipelineButton(panel: NotebookPanel, pipeline: string, items: DisposableSet): void {
    const button = new ToolbarButton({
      icon: pipelineIcon,
      label: 'Build pipeline',
      tooltip: `Build ${pipeline} (nbpipe)`,
      className: 'jp-nbpipe-toolbar-build',
      onClick: () => void this._commands.execute(CommandIDs.build, { path: pipeline })
    });
    panel.toolbar.insertItem(10, 'nbpipe-build', button);
    items.add(button);
  }
}
