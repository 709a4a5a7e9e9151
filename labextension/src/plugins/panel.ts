/**
 * The Pipelines panel in the left sidebar, and the command that shows it.
 */
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { IStateDB } from '@jupyterlab/statedb';

import { PipelineController } from '../controller';
import { pipelineIcon } from '../icons';
import { PipelinePanel } from '../panel';
import { CommandIDs, IBuildTaskArgs, IPipelineController } from '../tokens';

export const panelPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyterlab-nbpipe:panel',
  description: 'The Pipelines panel: pick a pipeline, build it, watch every task live.',
  autoStart: true,
  requires: [IPipelineController],
  optional: [ILayoutRestorer, IStateDB],
  activate: (
    app: JupyterFrontEnd,
    controller: PipelineController,
    restorer: ILayoutRestorer | null,
    stateDB: IStateDB | null
  ) => {
    const { commands, shell, docRegistry } = app;
    const open = (path: string, asNotebook = false) => {
      // A notebook task's percent script (clean.py) opens as a notebook when jupytext is there,
      // else in the editor; everything else opens with its default viewer.
      const script = asNotebook && !path.toLowerCase().endsWith('.ipynb');
      const factory =
        script && docRegistry.getWidgetFactory('Jupytext Notebook')
          ? 'Jupytext Notebook'
          : undefined;
      void commands.execute('docmanager:open', factory ? { path, factory } : { path });
    };
    const openInBrowserTab = (path: string) => {
      window.open(controller.api.filesUrl(path), '_blank', 'noopener');
    };

    // "Build this task" / "Build up to here" (and forced) from the graph's context menu.
    const buildTask = (task: string, options: { force: boolean; upToHere: boolean }) => {
      const args: IBuildTaskArgs = { task, ...options };
      if (controller.state.selected) {
        args.pipeline = controller.state.selected;
      }
      void commands.execute(CommandIDs.buildTask, { ...args });
    };

    const panel = new PipelinePanel(controller, { open, openInBrowserTab, buildTask });
    shell.add(panel, 'left', { rank: 650 });
    restorer?.add(panel, 'nbpipe-panel');

    commands.addCommand(CommandIDs.open, {
      label: 'Show Pipelines Panel',
      caption: 'Show the nbpipe pipelines panel',
      icon: pipelineIcon,
      execute: () => shell.activateById(panel.id)
    });

    rememberView(controller, stateDB);

    // Back in view (another browser tab, a laptop waking up): reconcile with the server.
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible' && panel.isVisible) {
        void controller.refresh();
      }
    });
  }
};

const VIEW_KEY = 'jupyterlab-nbpipe:view';

/** Graph or list: the user's last choice comes back with the page (JupyterLab's state database). */
function rememberView(controller: PipelineController, stateDB: IStateDB | null): void {
  if (!stateDB) {
    return;
  }
  let saved: string | null = null;
  void stateDB
    .fetch(VIEW_KEY)
    .then(value => {
      if (value === 'graph' || value === 'list') {
        saved = value;
        controller.showAs(value);
      }
    })
    .catch(() => undefined)
    .then(() => {
      controller.changed.connect(() => {
        const view = controller.state.view;
        if (view !== saved) {
          saved = view;
          void stateDB.save(VIEW_KEY, view).catch(() => undefined);
        }
      });
    });
}
