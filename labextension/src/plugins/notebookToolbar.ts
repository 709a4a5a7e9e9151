/**
 * A "Build pipeline" button on the toolbar of notebooks that belong to a pipeline (a task's
 * source or one of its products), added once the controller knows which pipeline that is.
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ToolbarButton } from '@jupyterlab/apputils';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { INotebookModel, NotebookPanel } from '@jupyterlab/notebook';
import { DisposableDelegate, IDisposable } from '@lumino/disposable';

import { PipelineController } from '../controller';
import { pipelineIcon } from '../icons';
import { CommandIDs, IPipelineController } from '../tokens';

/** Widget factories that show notebooks (JupyterLab's, and jupytext's for percent scripts). */
const NOTEBOOK_FACTORIES = ['Notebook', 'Jupytext Notebook'];

export const notebookToolbarPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyterlab-nbpipe:notebook-toolbar',
  description: "A notebook's toolbar button that builds the pipeline it belongs to.",
  autoStart: true,
  requires: [IPipelineController],
  activate: (app: JupyterFrontEnd, controller: PipelineController) => {
    const button = new NotebookBuildButton(controller, app.commands);
    for (const factory of NOTEBOOK_FACTORIES) {
      app.docRegistry.addWidgetExtension(factory, button);
    }
  }
};

class NotebookBuildButton implements DocumentRegistry.IWidgetExtension<
  NotebookPanel,
  INotebookModel
> {
  constructor(
    private readonly _controller: PipelineController,
    private readonly _commands: JupyterFrontEnd['commands']
  ) {}

  createNew(panel: NotebookPanel, context: DocumentRegistry.IContext<INotebookModel>): IDisposable {
    let button: ToolbarButton | null = null;
    let disposed = false;
    void context.ready
      .then(() => this._controller.pipelineOf(context.path))
      .then(pipeline => {
        if (!pipeline || disposed || panel.isDisposed) {
          return;
        }
        button = new ToolbarButton({
          icon: pipelineIcon,
          label: 'Build pipeline',
          tooltip: `Build ${pipeline} (nbpipe)`,
          className: 'jp-nbpipe-toolbar-build',
          onClick: () => void this._commands.execute(CommandIDs.build, { path: pipeline })
        });
        panel.toolbar.insertItem(10, 'nbpipe-build', button);
      })
      .catch(reason => console.warn('nbpipe: no pipeline for', context.path, reason));
    return new DisposableDelegate(() => {
      disposed = true;
      button?.dispose();
    });
  }
}
